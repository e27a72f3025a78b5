//! `msee-lab`: the lab of your own estate, from its file (the project's
//! TOML or JSON, `az` output, ARM bodies or templates, several files
//! merged): a customer namespace per circuit with its router configured
//! from the file, the provider's switch, `msee-daemon` running every
//! circuit, a namespace per VNet and the Microsoft edge. `cargo xtask lab
//! up --config` runs it; `cargo xtask lab down` removes it.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use control::api::{self, Request, types::SessionView};
use lab::estate::{self, CustomerRouter, Customers, EstateLab, Pools};

#[derive(Parser)]
#[command(about = "Build or remove the lab of an ExpressRoute estate from its configuration")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the lab the files describe and start everything in it.
    Up {
        /// Configuration files (repeatable; merged): the project's TOML or
        /// JSON, `az network express-route show/list` output, ARM bodies,
        /// deployment templates.
        #[arg(long = "config", required = true)]
        config: Vec<PathBuf>,
        /// Instance prefix of the lab's namespaces.
        #[arg(long, default_value = "lab")]
        prefix: String,
        /// The customers' router: frr, bird, gobgp or none (you bring your
        /// own), for every circuit, or CIRCUIT=ROUTER for one (repeatable).
        #[arg(long = "customer", default_value = "frr")]
        customer: Vec<String>,
        /// Build only these circuits (repeatable; default: all).
        #[arg(long = "circuit")]
        circuits: Vec<String>,
        /// Seconds to wait for every BGP session (0: do not wait).
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
    /// Remove a lab `up` built.
    Down {
        #[arg(long, default_value = "lab")]
        prefix: String,
    },
}

fn customers(args: &[String]) -> Result<Customers> {
    let mut c = Customers::all(CustomerRouter::Frr);
    for a in args {
        match a.split_once('=') {
            Some((circuit, router)) => {
                c.per_circuit.insert(circuit.to_owned(), router.parse()?);
            }
            None => c.default = a.parse()?,
        }
    }
    Ok(c)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msee-lab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Down { prefix } => {
            let Some(state) = estate::State::load(&prefix)? else {
                println!("lab {prefix} is not up: nothing to remove");
                return Ok(());
            };
            estate::down(&state)?;
            println!("lab {prefix} removed");
            Ok(())
        }
        Cmd::Up {
            config,
            prefix,
            customer,
            circuits,
            wait,
        } => {
            if !msee_sys::host::is_root() {
                bail!("building a lab needs root (namespaces, XDP): run it with sudo");
            }
            let model = circuit::load_files(&config).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}",
                    config
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let customers = customers(&customer)?;
            for name in customers.per_circuit.keys() {
                if model.circuit(name).is_none() {
                    bail!("--customer {name}=...: no circuit {name} in the configuration");
                }
            }
            let lab = estate::plan(&model, &prefix, &Pools::default(), &circuits)?;
            let daemon = lab::daemon::workspace_bin("msee-daemon")?;
            let state = estate::up(
                &lab,
                &config,
                &customers,
                &traffic::vlan_switch::install_estate_switch,
                &daemon,
            )?;
            if wait > 0 {
                wait_sessions(&state.api_socket, Duration::from_secs(wait));
            }
            print!("{}", summary(&lab, &customers, &state));
            Ok(())
        }
    }
}

/// Waits for every session to be Established, printing where each stands.
fn wait_sessions(socket: &std::path::Path, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let sessions: Vec<SessionView> =
            api::query_as(socket, &Request::Sessions, Duration::from_secs(5)).unwrap_or_default();
        let up = sessions.iter().filter(|s| s.state == "Established").count();
        // Settled: up for 3 s (a customer's FRR resets BFD once as BGP
        // comes up, which takes the session down and up again).
        let settled = sessions
            .iter()
            .all(|s| s.state == "Established" && s.since_secs.unwrap_or(0) >= 3);
        if !sessions.is_empty() && settled {
            println!("BGP: all {up} sessions established");
            return;
        }
        if std::time::Instant::now() > deadline {
            println!(
                "BGP: {up} of {} sessions established after {timeout:?} (see `msee-cli sessions`); down: {}",
                sessions.len(),
                sessions
                    .iter()
                    .filter(|s| s.state != "Established")
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// What was built, and how to reach it.
fn summary(lab: &EstateLab, customers: &Customers, state: &estate::State) -> String {
    let mut out = format!("lab {} is up\n", lab.prefix);
    out += &format!(
        "  MSEE: namespace {} (msee-daemon, its log {})\n",
        lab.msee_ns,
        estate::state_dir(&lab.prefix).join("daemon.log").display()
    );
    out += &format!(
        "  msee-cli --socket {} sessions | links | routes CIRCUIT | counters ...\n",
        state.api_socket.display()
    );
    for c in &lab.customers {
        let router = match customers.of(&c.circuit) {
            CustomerRouter::Frr => "FRR".to_owned(),
            CustomerRouter::Bird => "BIRD".to_owned(),
            CustomerRouter::Gobgp => "GoBGP".to_owned(),
            CustomerRouter::None => "no router: bring your own".to_owned(),
        };
        out += &format!(
            "  circuit {}: namespace {} ({router}, AS {}), on-premises {} (host {})\n",
            c.circuit, c.ns, c.asn, c.onprem, c.host
        );
        for p in &c.peerings {
            let tags = if p.tags.1 == 0 {
                format!("VLAN {}", p.tags.0)
            } else {
                format!("S-tag {} C-tag {}", p.tags.0, p.tags.1)
            };
            out += &format!(
                "    {:?} on {tags}: {} {}/{} <-> MSEE {}, {} {}/{} <-> MSEE {}\n",
                p.peering_type,
                p.ifnames[0],
                p.customer[0].0,
                p.customer[0].1,
                p.msee[0],
                p.ifnames[1],
                p.customer[1].0,
                p.customer[1].1,
                p.msee[1]
            );
        }
    }
    for v in lab.vnets.iter().chain(&lab.microsoft) {
        let hosts: Vec<String> = v.hosts.iter().map(|(_, h)| h.to_string()).collect();
        out += &format!(
            "  {}: namespace {}, hosts {}\n",
            v.name,
            v.ns,
            hosts.join(", ")
        );
    }
    if let (Some(c), Some(v)) = (lab.customers.first(), lab.vnets.first())
        && let Some((_, h)) = v.hosts.first()
    {
        out += &format!(
            "  e.g. ip netns exec {} ping -c 3 -I {} {h}\n",
            c.ns, c.host
        );
    }
    out += &format!(
        "  remove it with: cargo xtask lab down --prefix {}\n",
        lab.prefix
    );
    out
}
