//! `msee-daemon`: runs one emulated MSEE on its three ports.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, ValueEnum};
use control::daemon::{self, DaemonConfig, StaticRoute};
use dataplane::AttachMode;
use msee_abi::LinkRole;
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Emulated ExpressRoute MSEE: XDP forwarding between customer links and the Azure side"
)]
struct Args {
    /// Network namespace to run in (a name under /run/netns).
    #[arg(long)]
    netns: Option<String>,
    /// Interface of the primary customer link.
    #[arg(long)]
    primary: String,
    /// Interface of the secondary customer link.
    #[arg(long)]
    secondary: String,
    /// Interface toward the Azure side.
    #[arg(long)]
    azure: String,
    /// Static route PREFIX=NEXTHOP (repeatable), e.g. 10.1.0.0/16=10.255.0.2.
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
    /// Circuit configuration (TOML, or JSON by extension): runs the BGP
    /// sessions of one circuit's peerings on the primary and secondary ports.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Which circuit of --config to run (default: the only one).
    #[arg(long, requires = "config")]
    circuit: Option<String>,
    /// Override the per-session route limit of the model (labs, tests).
    #[arg(long, requires = "config")]
    max_prefixes: Option<u32>,
    /// Serve the local API for msee-cli on this Unix socket.
    #[arg(long)]
    api_socket: Option<PathBuf>,
    /// Run each peering of the circuit on its own VLAN (its vlanId, or its
    /// sTag/cTag pair), as ExpressRoute does, instead of one untagged
    /// private peering per port.
    #[arg(long, requires = "config")]
    tagged: bool,
    /// BGP ConnectRetry, seconds.
    #[arg(long, default_value_t = 30, requires = "config")]
    connect_retry_secs: u64,
    /// First IdleHold delay after a session error, seconds (doubles up to 300).
    #[arg(long, default_value_t = 5, requires = "config")]
    idle_hold_secs: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Native,
    Generic,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
    let kernel_log_level = match args.log_level {
        tracing::Level::ERROR => 1,
        tracing::Level::WARN => 2,
        tracing::Level::INFO => 3,
        tracing::Level::DEBUG => 4,
        tracing::Level::TRACE => 5,
    };
    let bgp = match &args.config {
        None => None,
        Some(path) => {
            let model =
                circuit::load_file(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let circuit = match &args.circuit {
                Some(c) => c.clone(),
                None => match model.circuits.as_slice() {
                    [only] => only.name.clone(),
                    _ => anyhow::bail!(
                        "{} has {} circuits: choose one with --circuit",
                        path.display(),
                        model.circuits.len()
                    ),
                },
            };
            for w in &model.warnings {
                tracing::warn!("{}: {w}", path.display());
            }
            Some(daemon::BgpConfig {
                model,
                path: path.clone(),
                circuit,
                max_prefixes: args.max_prefixes,
                timers: control::speaker::Timers {
                    connect_retry: Duration::from_secs(args.connect_retry_secs),
                    idle_hold: Duration::from_secs(args.idle_hold_secs),
                },
            })
        }
    };
    let cfg = DaemonConfig {
        bgp,
        api_socket: args.api_socket,
        tagged: args.tagged,
        netns: args.netns,
        ports: vec![
            (LinkRole::Primary, args.primary),
            (LinkRole::Secondary, args.secondary),
            (LinkRole::Azure, args.azure),
        ],
        routes: args.routes,
        mode: match args.mode {
            Mode::Native => AttachMode::Native,
            Mode::Generic => AttachMode::Generic,
        },
        bandwidth_bps: args.bandwidth_mbps.map(|m| m * 1_000_000),
        kernel_log_level,
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
