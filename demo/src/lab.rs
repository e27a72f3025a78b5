//! `msee-lab`: the lab of your own estate, from its file (the project's
//! TOML or JSON, `az` output, ARM bodies or templates, several files
//! merged): a customer namespace per circuit with its router configured
//! from the file, the provider's switch, `msee-daemon` running every
//! circuit, a namespace per VNet and the Microsoft edge. `cargo xtask lab
//! up --config` runs it; `cargo xtask lab down` removes it.
#![forbid(unsafe_code)]
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
    /// Rehearse a failure of one circuit's primary link under traffic, as
    /// the real service would see it; measured, reported and drawn.
    Rehearse(RehearseArgs),
    /// Remove a lab `up` built.
    Down {
        #[arg(long, default_value = "lab")]
        prefix: String,
    },
}

#[derive(clap::Args)]
struct RehearseArgs {
    /// Configuration files (repeatable; merged), as for `up`.
    #[arg(long = "config", required = true)]
    config: Vec<PathBuf>,
    /// The circuit (default: the only one with the peering).
    #[arg(long)]
    circuit: Option<String>,
    /// private or microsoft.
    #[arg(long, default_value = "private")]
    peering: String,
    /// carrier, silent, bgp, drain or bfd-timers.
    #[arg(long)]
    failure: String,
    /// Traffic before the failure (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    at: String,
    /// How long the failure lasts.
    #[arg(long = "for", default_value = "3s")]
    hold: String,
    /// flows=N,rate=R,size=S,dir=D: R a share of the circuit's bandwidth
    /// (80%), bits/s (500Mbps) or packets/s (20kpps); S imix or 64..1518;
    /// D both or to-customer.
    #[arg(long, default_value = "flows=32,rate=20kpps,size=128,dir=both")]
    traffic: String,
    /// BFD timers for the rehearsed peering, INTERVALxMULT (e.g. 300x3).
    #[arg(long)]
    bfd: Option<String>,
    /// Rehearsals, reported with their medians.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Where the report (JSON) and the plot (SVG) go.
    #[arg(long, default_value = "results/rehearsal")]
    out: PathBuf,
    /// The lab's instance prefix (a lab already up with it is used as it is).
    #[arg(long, default_value = "rehearse")]
    prefix: String,
}

fn duration(s: &str) -> Result<Duration> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .ok_or_else(|| anyhow::anyhow!("{s:?}: a duration such as 5s or 500ms"))?;
    let n: f64 = n
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?}: a duration such as 5s or 500ms"))?;
    Ok(Duration::from_secs_f64(match unit {
        "s" => n,
        "ms" => n / 1000.0,
        other => bail!("{s:?}: unit {other:?}, s or ms"),
    }))
}

fn rehearse(a: RehearseArgs) -> Result<()> {
    use e2e_tests::rehearse::{self, Request};
    let peering = match a.peering.as_str() {
        "private" => circuit::model::PeeringType::AzurePrivatePeering,
        "microsoft" => circuit::model::PeeringType::MicrosoftPeering,
        other => bail!("--peering {other}: private or microsoft"),
    };
    let bfd = match &a.bfd {
        None => None,
        Some(b) => {
            let (i, m) = b
                .split_once('x')
                .ok_or_else(|| anyhow::anyhow!("--bfd {b}: INTERVALxMULTIPLIER, e.g. 300x3"))?;
            Some((
                i.parse()
                    .map_err(|_| anyhow::anyhow!("--bfd {b}: interval in ms"))?,
                m.parse()
                    .map_err(|_| anyhow::anyhow!("--bfd {b}: multiplier"))?,
            ))
        }
    };
    let req = Request {
        circuit: a.circuit.clone(),
        peering,
        failure: a.failure.parse()?,
        at: duration(&a.at)?,
        hold: duration(&a.hold)?,
        traffic: a.traffic.parse()?,
        bfd,
        repeat: a.repeat,
    };
    let imported = circuit::import::import_files(&a.config)?;
    let model = imported.validate(&circuit::Catalog::embedded())?;
    // Everything the user could get wrong is refused before anything starts.
    let resolved = rehearse::resolve(&model, &req)?;
    if !msee_sys::host::is_root() {
        bail!("a rehearsal builds a lab: run it as root (sudo)");
    }
    let mut config = imported.config.clone();
    if let Some(b) = bfd {
        config = rehearse::with_bfd(&config, &resolved.circuit, peering, b)?;
    }
    std::fs::create_dir_all(&a.out)?;
    let effective = a.out.join("rehearsal.toml");
    let (lab, config_path) = match estate::State::load(&a.prefix)? {
        Some(state) => {
            if req.failure == rehearse::Failure::BfdTimers || bfd.is_some() {
                bail!(
                    "lab {} is already up with its own configuration: --failure bfd-timers and --bfd need a lab of the rehearsal's own (another --prefix, or `cargo xtask lab down --prefix {}`)",
                    a.prefix,
                    a.prefix
                );
            }
            println!("using lab {}, already up", a.prefix);
            let path = state.config.first().cloned().unwrap_or_default();
            (e2e_tests::estate::EstateLabUp::adopt(state), path)
        }
        None => {
            std::fs::write(&effective, config.to_toml_string()?)?;
            let mut customers = Customers::all(CustomerRouter::Frr);
            customers
                .per_circuit
                .insert(resolved.circuit.clone(), CustomerRouter::Frr);
            println!("building lab {} ...", a.prefix);
            let lab = e2e_tests::estate::EstateLabUp::up_planned(
                &effective, &effective, &a.prefix, &customers,
            )?;
            (lab, effective.clone())
        }
    };
    let (report, runs) = rehearse::rehearse(&lab, &resolved, &config_path, &|s| println!("  {s}"))?;
    print!("{}", report.text());
    let (json, svg) = rehearse::write(&a.out, &report, &runs)?;
    println!("  report: {}\n  plot:   {}", json.display(), svg.display());
    drop(lab);
    Ok(())
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
        Cmd::Rehearse(a) => rehearse(a),
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
                Some(&daemon),
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
