//! `msee-daemon`: runs the emulated MSEE pair of every circuit of a
//! configuration on its ports.
use std::{collections::BTreeMap, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, ValueEnum};
use control::daemon::{self, DaemonConfig, PortMap, StaticRoute};
use dataplane::AttachMode;
use tracing_subscriber::EnvFilter;

/// `NAME=VALUE`.
fn named(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() && !v.is_empty() => Ok((n.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} must look like NAME=VALUE")),
    }
}

/// `NAME=PRIMARY,SECONDARY`.
fn named_pair(s: &str) -> Result<(String, [String; 2]), String> {
    let (n, v) = named(s)?;
    match v.split_once(',') {
        Some((p, q)) if !p.is_empty() && !q.is_empty() && !q.contains(',') => {
            Ok((n, [p.to_owned(), q.to_owned()]))
        }
        _ => Err(format!(
            "{s:?} must look like PORT=PRIMARY,SECONDARY (the port pair's two interfaces)"
        )),
    }
}

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Emulated ExpressRoute MSEE: XDP forwarding between customer links and the Azure side"
)]
struct Args {
    /// Network namespace to run in (a name under /run/netns).
    #[arg(long)]
    netns: Option<String>,
    /// Interface of the provider port pair's primary port (the customer
    /// links of every circuit without an ExpressRoute Direct port).
    #[arg(long, requires = "secondary")]
    primary: Option<String>,
    /// Interface of the provider port pair's secondary port.
    #[arg(long, requires = "primary")]
    secondary: Option<String>,
    /// An ExpressRoute Direct port pair of the configuration, by its name:
    /// NAME=PRIMARY,SECONDARY (repeatable).
    #[arg(long = "direct", value_parser = named_pair)]
    direct: Vec<(String, [String; 2])>,
    /// One Azure-side port for every VNet without one of its own (and, with
    /// no configuration, the Azure side of the static routes).
    #[arg(long)]
    azure: Option<String>,
    /// A VNet's own Azure-side port (its gateway): NAME=INTERFACE
    /// (repeatable). Its domain holds only the circuits linked to it.
    #[arg(long = "vnet", value_parser = named)]
    vnets: Vec<(String, String)>,
    /// The Microsoft edge: the services Microsoft peering reaches.
    #[arg(long)]
    microsoft: Option<String>,
    /// Static route PREFIX=NEXTHOP (repeatable), e.g. 10.1.0.0/16=10.255.0.2,
    /// installed in every routing domain over what the model and BGP give.
    #[arg(long = "route")]
    routes: Vec<StaticRoute>,
    /// Police each customer link, in each direction, at this circuit bandwidth (Mbit/s).
    #[arg(long)]
    bandwidth_mbps: Option<u64>,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    mode: Mode,
    /// Log level of the daemon and of the kernel side (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
    /// Write the final per-port counters here as JSON.
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    run_for_secs: Option<u64>,
    /// Circuit configuration: runs every circuit's peerings on its port
    /// pair, with their BGP and BFD sessions. The project's TOML or JSON,
    /// `az network express-route show/list` output, REST bodies or an ARM
    /// template (each file's kind is detected). Repeat it to merge files:
    /// what one lacks (VNets, route filters) comes from another; a
    /// template's parameters file follows its template.
    #[arg(long)]
    config: Vec<PathBuf>,
    /// Validate --config and print every error with its path, or a
    /// one-line summary; start nothing. Exit status 1 when invalid.
    #[arg(long, requires = "config")]
    check: bool,
    /// Run only this circuit of --config (repeatable; default: all).
    #[arg(long = "circuit", requires = "config")]
    circuits: Vec<String>,
    /// Override the per-session route limit of the model (labs, tests).
    #[arg(long, requires = "config")]
    max_prefixes: Option<u32>,
    /// Forwarding table: routing domains that can have a table of their
    /// own (256 KiB + 16 KiB each; default 256). Domains beyond it are
    /// looked up in the kernel's LPM trie.
    #[arg(long)]
    fib_slots: Option<u32>,
    /// Forwarding table: IPv4 lines of ranges shared by every domain (64
    /// bytes, 16 ranges each; default 131,072, 8 MiB). An IPv4 route longer
    /// than /16 takes at most two ranges, none where its neighbours share
    /// its route; /16 and shorter ones none: the default holds a million
    /// such routes of any next hops. A domain that runs out is looked up in
    /// the LPM trie (`msee-cli fib` and the metrics show it) until removals
    /// leave room for all its routes.
    #[arg(long)]
    fib_nodes_v4: Option<u32>,
    /// Forwarding table: IPv6 nodes shared by every domain (64 bytes each;
    /// default 65,536).
    #[arg(long)]
    fib_nodes_v6: Option<u32>,
    /// Serve the local API for msee-cli on this Unix socket.
    #[arg(long)]
    api_socket: Option<PathBuf>,
    /// Run each peering on its own VLAN (its vlanId, or its sTag/cTag
    /// pair), as ExpressRoute does, instead of one circuit's private peering
    /// untagged on the provider pair.
    #[arg(long, requires = "config")]
    tagged: bool,
    /// BGP ConnectRetry, seconds.
    #[arg(long, default_value_t = 30, requires = "config")]
    connect_retry_secs: u64,
    /// BGP graceful restart (RFC 4724) on every session, both roles, with
    /// this Restart Time advertised, seconds (1 to 4095; the default, 120,
    /// is what common routers use). 0 turns graceful restart off: the
    /// capability is not advertised and a peer's routes go as soon as its
    /// session is lost.
    #[arg(long, default_value_t = 120, requires = "config",
          value_parser = clap::value_parser!(u16).range(0..=4095))]
    graceful_restart_secs: u16,
    /// First IdleHold delay after a session error, seconds (doubles up to 300).
    #[arg(long, default_value_t = 5, requires = "config")]
    idle_hold_secs: u64,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g.
    /// 127.0.0.1:9477). An address in use stops the start.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// What this instance keeps across its restarts (one daemon at a time
    /// per directory). Default: /var/lib/msee/NETNS (or /var/lib/msee/host).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// At exit, detach from the ports and remove the pinned state. Without
    /// it, SIGTERM leaves forwarding running on the pinned program and
    /// maps, and the next daemon of this state directory adopts them (a
    /// restart without loss).
    #[arg(long)]
    detach_on_exit: bool,
    /// Remove what a daemon that exited left running in its state
    /// directory (--state-dir, or the default of --netns): its program on
    /// the ports, its pinned maps, the addresses it put on its ports. Then
    /// exit. Refused while a daemon runs there.
    #[arg(long, conflicts_with_all = ["config", "check", "primary", "azure", "direct"])]
    stop: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Native,
    Generic,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.check {
        return check(&args.config);
    }
    let filter = EnvFilter::try_from_default_env()
        // netlink-packet-route warns about every attribute newer than itself.
        .unwrap_or_else(|_| {
            EnvFilter::new(format!(
                "{},netlink_packet_route=error,netlink_proto=error",
                args.log_level.as_str().to_ascii_lowercase()
            ))
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Plain text when logging to a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msee-daemon: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: Args) -> anyhow::Result<()> {
    control::preflight::check_all()?;
    // Before any other thread exists: threads inherit the namespace.
    if let Some(ns) = &args.netns {
        msee_sys::netns::enter(ns)?;
    }
    if args.stop {
        let dir = args
            .state_dir
            .unwrap_or_else(|| control::state_dir::default_for(args.netns.as_deref()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stopped = runtime.block_on(daemon::adopt::stop(&dir))?;
        println!(
            "msee-daemon --stop: {}: {} ports detached, {}, {} addresses removed",
            dir.display(),
            stopped.ports,
            if stopped.maps {
                "pinned maps removed"
            } else {
                "no pinned maps"
            },
            stopped.addresses
        );
        return Ok(());
    }
    let kernel_log_level = match args.log_level {
        tracing::Level::ERROR => 1,
        tracing::Level::WARN => 2,
        tracing::Level::INFO => 3,
        tracing::Level::DEBUG => 4,
        tracing::Level::TRACE => 5,
    };
    let model = match args.config.as_slice() {
        [] => None,
        paths => {
            let model = daemon::load_model(paths).map_err(anyhow::Error::msg)?;
            Some(daemon::ModelConfig {
                model,
                paths: paths.to_vec(),
                only: args.circuits.clone(),
                max_prefixes: args.max_prefixes,
                timers: control::speaker::Timers {
                    connect_retry: Duration::from_secs(args.connect_retry_secs),
                    idle_hold: Duration::from_secs(args.idle_hold_secs),
                    graceful_restart: graceful_restart(args.graceful_restart_secs),
                },
            })
        }
    };
    let mut vnets = BTreeMap::new();
    for (name, ifname) in args.vnets {
        if vnets.insert(name.clone(), ifname).is_some() {
            anyhow::bail!("--vnet {name} given twice");
        }
    }
    let mut direct = BTreeMap::new();
    for (name, pair) in args.direct {
        if direct.insert(name.clone(), pair).is_some() {
            anyhow::bail!("--direct {name} given twice");
        }
    }
    let cfg = DaemonConfig {
        detach_on_exit: args.detach_on_exit,
        state_dir: args
            .state_dir
            .unwrap_or_else(|| control::state_dir::default_for(args.netns.as_deref())),
        metrics_listen: args.metrics_listen,
        model,
        api_socket: args.api_socket,
        tagged: args.tagged,
        netns: args.netns,
        ports: PortMap {
            provider: args.primary.zip(args.secondary).map(|(p, s)| [p, s]),
            direct,
            azure: args.azure,
            vnets,
            microsoft: args.microsoft,
        },
        routes: args.routes,
        mode: match args.mode {
            Mode::Native => AttachMode::Native,
            Mode::Generic => AttachMode::Generic,
        },
        bandwidth_bps: args.bandwidth_mbps.map(|m| m * 1_000_000),
        kernel_log_level,
        fib: dataplane::FibSizes {
            slots: args.fib_slots,
            nodes_v4: args.fib_nodes_v4,
            nodes_v6: args.fib_nodes_v6,
        },
        stats_file: args.stats_file,
        run_for: args.run_for_secs.map(Duration::from_secs),
    };
    // Built after entering the namespace so every worker thread is inside it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(daemon::run(cfg))
}

/// `--graceful-restart-secs`: 0 is off.
fn graceful_restart(restart_time: u16) -> Option<bgp::fsm::GracefulRestartConfig> {
    (restart_time > 0).then(|| bgp::fsm::GracefulRestartConfig {
        restart_time,
        ..Default::default()
    })
}

fn files(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn refused(paths: &[PathBuf], n: usize) -> ExitCode {
    let s = if n == 1 { "" } else { "s" };
    eprintln!("msee-daemon: {}: refused, {n} error{s}", files(paths));
    ExitCode::FAILURE
}

/// `--check`: import, merge and validate the files; print every error with
/// its path (stderr) or a one-line summary (stdout). Needs no privilege and
/// touches nothing: no BPF, no namespace, no socket.
fn check(paths: &[PathBuf]) -> ExitCode {
    let imported = match circuit::import::import_files(paths) {
        Ok(i) => i,
        Err(circuit::LoadError::Import(errors)) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            return refused(paths, errors.0.len());
        }
        Err(e) => {
            eprintln!("msee-daemon: {e}");
            return ExitCode::FAILURE;
        }
    };
    for n in &imported.notes {
        eprintln!("note: {n}");
    }
    match imported.validate(&circuit::Catalog::embedded()) {
        Ok(model) => {
            for w in &model.warnings {
                eprintln!("warning: {w}");
            }
            let peerings: usize = model.circuits.iter().map(|c| c.peerings.len()).sum();
            println!(
                "{}: valid: {} circuits, {peerings} peerings, {} BGP sessions, {} VNets, {} Global Reach links",
                files(paths),
                model.circuits.len(),
                model.sessions().len(),
                model.virtual_networks.len(),
                model.global_reach.len(),
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            refused(paths, errors.0.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart_time(args: &[&str]) -> Option<u16> {
        let argv = ["msee-daemon", "--config", "c.toml"].iter().chain(args);
        let args = Args::try_parse_from(argv).unwrap();
        graceful_restart(args.graceful_restart_secs).map(|g| g.restart_time)
    }

    #[test]
    fn graceful_restart_is_on_by_default_and_zero_turns_it_off() {
        assert_eq!(restart_time(&[]), Some(120));
        assert_eq!(restart_time(&["--graceful-restart-secs", "90"]), Some(90));
        assert_eq!(restart_time(&["--graceful-restart-secs", "0"]), None);
        let too_long = [
            "msee-daemon",
            "--config",
            "c.toml",
            "--graceful-restart-secs",
            "4096",
        ];
        assert!(Args::try_parse_from(too_long).is_err());
    }
}
