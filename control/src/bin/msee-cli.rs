//! `msee-cli`: asks a running `msee-daemon` (its `--api-socket`) for its
//! BGP sessions, a circuit's routes, or the dataplane counters.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use control::{
    api::{self, Request, az, types::*},
    cli::{self, table},
    stats::PortReport,
};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(version, about = "Query a running msee-daemon")]
struct Args {
    /// The daemon's API socket (msee-daemon --api-socket).
    #[arg(long, global = true, default_value = api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the daemon's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The circuits of the daemon's configuration: SKU, bandwidth, location,
    /// reach, peerings and their addresses.
    Circuits,
    /// Re-read the configuration file and apply what changed (as SIGHUP).
    /// An invalid file is refused whole and changes nothing.
    Reload,
    /// BGP sessions: peer, state, prefixes received.
    Sessions,
    /// A circuit's routes learned from the customer and their next-hop links.
    Routes { circuit: String },
    /// Per-port packet, byte and drop counters.
    Counters,
    /// The dataplane's routes: how many are installed, the batches
    /// written, and the writes the dataplane refused that wait for a retry
    /// (until they are written, the maps differ from the RIBs).
    Fib,
    /// Each link: carries traffic or not, and why (neighbour, carrier, BGP,
    /// BFD), with its last flips.
    Links,
    /// BFD sessions: state, negotiated timers, detection time, counters.
    Bfd,
    /// Maintenance drain, as Microsoft does it: the link's routes to the
    /// customer become the backup (traffic moves to the other link while
    /// this one keeps forwarding) and its advertisements get AS 12076
    /// prepended so the customer prefers the other link too.
    Drain {
        circuit: String,
        #[arg(value_parser = ["primary", "secondary"])]
        link: String,
    },
    /// Undo a drain: both links carry traffic again.
    Undrain {
        circuit: String,
        #[arg(value_parser = ["primary", "secondary"])]
        link: String,
    },
    /// Print the project TOML (with --json: JSON) equivalent to FILES,
    /// without asking the daemon: the project's own files, `az network
    /// express-route show/list` output, REST bodies, ARM templates (a
    /// parameters file after its template), each file's kind detected and
    /// all merged. Exit status 1 when they cannot be imported, or when the
    /// result does not validate (it is printed all the same, the errors go
    /// to stderr).
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Bytes in (toward Microsoft) and out (toward the customer) on each
    /// link, as `az network express-route get-stats` (its JSON with --json):
    /// the circuit's peerings added up, or one peering's.
    GetStats {
        circuit: String,
        /// e.g. AzurePrivatePeering, MicrosoftPeering.
        #[arg(long)]
        peering: Option<String>,
    },
    /// The routes learned on one link (or with --advertised, those the MSEE
    /// advertises there), as `az network express-route list-route-tables`.
    ListRouteTables {
        circuit: String,
        #[arg(long)]
        peering: String,
        /// primary or secondary.
        #[arg(long)]
        path: String,
        #[arg(long)]
        advertised: bool,
    },
    /// The BGP neighbours of one link, as `az network express-route
    /// list-route-tables-summary`.
    ListRouteTablesSummary {
        circuit: String,
        #[arg(long)]
        peering: String,
        #[arg(long)]
        path: String,
    },
    /// The ARP entries of one link (the MSEE's and the customer's router's),
    /// as `az network express-route list-arp-tables`.
    ListArpTables {
        circuit: String,
        #[arg(long)]
        peering: String,
        #[arg(long)]
        path: String,
    },
    /// Usage (billing): ingress and egress bytes per peering and link, and
    /// what the SKU bills (Metered: outbound per GB, inbound free;
    /// Unlimited and Local: nothing per GB), from the daemon's state
    /// directory (kept across restarts).
    Usage {
        circuit: String,
        /// First UTC day (YYYY-MM-DD), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Last UTC day (YYYY-MM-DD), inclusive.
        #[arg(long)]
        to: Option<String>,
    },
    /// Availability as the SLA counts it (the circuit is down only while
    /// both links of a peering cannot carry traffic), per link, with every
    /// outage and its cause (carrier, BFD, BGP, neighbour, drain), from
    /// the link history in the daemon's state directory.
    Availability {
        circuit: String,
        /// From this UTC day (YYYY-MM-DD) or RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// Until this UTC day or time (default: now).
        #[arg(long)]
        to: Option<String>,
    },
    /// Capture dropped frames into a pcapng file (tcpdump -r, Wireshark),
    /// each with a comment naming its drop reason, link and direction.
    /// Sampled and rate-limited in the dataplane; off again when done.
    Capture {
        /// Only this reason (repeatable): policer, no_route, out_of_reach,
        /// malformed, ttl_expired, link_down. Default: every reason.
        #[arg(long = "reason")]
        reasons: Vec<String>,
        /// Only this link, by name (e.g. er-ams/AzurePrivatePeering/primary).
        #[arg(long)]
        link: Option<String>,
        /// Frames to capture.
        #[arg(long, default_value_t = 100)]
        count: u64,
        /// The pcapng file to write.
        #[arg(short = 'w', long = "write")]
        file: PathBuf,
        /// Capture one selected drop in N.
        #[arg(long, default_value_t = 1)]
        sample: u32,
        /// At most this many frames per second per CPU.
        #[arg(long, default_value_t = cli::capture::DEFAULT_RATE)]
        rate: u32,
        /// Bytes kept of each frame (at most 256).
        #[arg(long, default_value_t = cli::capture::DEFAULT_SNAP)]
        snap: u32,
        /// Give up after this many seconds (the frames taken are written).
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
    /// A live view refreshed every second: each link, whether it carries
    /// and its rates in and out, drops by reason; BGP and BFD sessions.
    /// q, Esc or Ctrl-C quits.
    Top {
        /// Refresh period, milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Print one view (two snapshots one period apart) as text and exit.
        #[arg(long)]
        once: bool,
    },
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".to_owned(), ToString::to_string)
}

fn up_down(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "up",
        Some(false) => "down",
        None => "-",
    }
}

fn render_sessions(rows: &[SessionView]) -> String {
    table(
        &[
            "session",
            "link",
            "peer",
            "peer AS",
            "state",
            "for (s)",
            "prefixes",
            "advertised",
            "drained",
            "last down",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.link.clone(),
                    r.peer.to_string(),
                    r.peer_as.to_string(),
                    r.state.clone(),
                    opt(&r.since_secs),
                    format!("{}/{}", r.prefixes_received, r.max_prefixes),
                    r.prefixes_advertised.to_string(),
                    if r.drained { "yes" } else { "no" }.into(),
                    opt(&r.last_down),
                ]
            })
            .collect(),
    )
}

fn render_routes(rows: &[RouteView]) -> String {
    table(
        &[
            "peering",
            "prefix",
            "group",
            "next hops (link: AS-path length)",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.peering.clone(),
                    r.prefix.clone(),
                    opt(&r.group),
                    r.next_hops
                        .iter()
                        .map(|h| format!("{}: {}", h.link, h.as_path_len))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect(),
    )
}

fn render_counters(rows: &[PortReport]) -> String {
    table(
        &[
            "link", "ifname", "rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes", "drops",
        ],
        rows.iter()
            .map(|r| {
                let drops: Vec<String> = r
                    .drops
                    .iter()
                    .filter(|(_, n)| **n != 0)
                    .map(|(k, n)| format!("{k}={n}"))
                    .collect();
                vec![
                    r.port.clone(),
                    r.ifname.clone(),
                    r.rx_packets.to_string(),
                    r.rx_bytes.to_string(),
                    r.tx_packets.to_string(),
                    r.tx_bytes.to_string(),
                    drops.join(" "),
                ]
            })
            .collect(),
    )
}

fn render_circuits(rows: &[CircuitView]) -> String {
    let mut out = String::new();
    for c in rows {
        out += &format!(
            "{}{}: {} {} ({}), {} Mbit/s, {} at {} ({}), {}\n",
            c.name,
            if c.running { " (running here)" } else { "" },
            c.sku.tier,
            c.sku.family,
            c.service_key,
            c.bandwidth_in_mbps,
            c.service_provider_name,
            c.peering_location,
            c.area,
            c.service_provider_provisioning_state,
        );
        out += &format!("  reach: {}\n", c.reach.join(", "));
        if !c.global_reach.is_empty() {
            out += &format!("  global reach: {}\n", c.global_reach.join(", "));
        }
        for p in &c.peerings {
            let bfd = p.bfd.as_ref().map_or("off".to_owned(), |b| {
                format!("{} ms x {}", b.interval_ms, b.multiplier)
            });
            out += &format!(
                "  {} peer AS {} {} md5 {} bfd {}: primary {} secondary {}\n",
                p.peering_type,
                p.peer_asn,
                p.vlan,
                if p.md5 { "on" } else { "off" },
                bfd,
                p.primary.ipv4.subnet,
                p.secondary.ipv4.subnet,
            );
        }
    }
    out
}

fn render_reload(v: &ReloadView) -> String {
    let mut out = String::new();
    if !v.changed {
        out += &format!("{}: nothing changed\n", v.file);
    } else {
        out += &format!("{}: applied\n", v.file);
        for (key, list) in [
            ("circuit added", &v.circuits_added),
            ("circuit removed", &v.circuits_removed),
            ("restarted", &v.restarted),
            ("added", &v.added),
            ("removed", &v.removed),
        ] {
            for n in list {
                out += &format!("  {key}: {n}\n");
            }
        }
        for c in &v.in_place {
            out += &format!(
                "  changed in place: {} ({})\n",
                c.session,
                c.fields.join(", ")
            );
        }
        if let Some(b) = v.bandwidth_mbps {
            out += &format!("  bandwidth: {b} Mbit/s (policers changed in place)\n");
        }
    }
    for n in &v.notes {
        out += &format!("  note: {n}\n");
    }
    out
}

fn render_bfd(rows: &[BfdView]) -> String {
    let ms = |us: u64| format!("{:.0}", us as f64 / 1000.0);
    table(
        &[
            "session",
            "peer",
            "state",
            "remote",
            "diag",
            "tx ms",
            "rx ms",
            "detect ms",
            "up for ms",
            "pkts in",
            "pkts out",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.peer.to_string(),
                    r.state.clone(),
                    r.remote_state.clone(),
                    r.diag.clone(),
                    ms(r.tx_interval_us),
                    ms(r.rx_interval_us),
                    r.detection_time_us.map_or("-".into(), ms),
                    opt(&r.uptime_ms),
                    r.packets_in.to_string(),
                    r.packets_out.to_string(),
                ]
            })
            .collect(),
    )
}

fn render_drain(v: &DrainView) -> String {
    format!(
        "{} {} of {}: {} routes repointed, {} sessions re-advertised{}\n",
        if v.drained { "drained" } else { "undrained" },
        v.link,
        v.circuit,
        v.routes_repointed,
        v.sessions_readvertised,
        if v.drained {
            format!(" with AS 12076 prepended {} times", v.prepend)
        } else {
            String::new()
        }
    )
}

fn render_links(rows: &[LinkView]) -> String {
    table(
        &[
            "link",
            "carries",
            "neighbour",
            "carrier",
            "bgp",
            "bfd",
            "flips",
            "last flip",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    if r.carries { "yes" } else { "no" }.into(),
                    up_down(Some(r.neighbour)).into(),
                    up_down(Some(r.carrier)).into(),
                    up_down(r.bgp).into(),
                    up_down(r.bfd).into(),
                    r.flips.to_string(),
                    r.history.first().map_or("-".to_owned(), |f| {
                        format!("{} ({})", if f.up { "up" } else { "down" }, f.cause)
                    }),
                ]
            })
            .collect(),
    )
}

/// The daemon's answer, typed, then as a table.
fn render(command: &Command, v: Value) -> anyhow::Result<String> {
    use serde_json::from_value as read;
    Ok(match command {
        Command::Sessions => render_sessions(&read::<Vec<SessionView>>(v)?),
        Command::Routes { .. } => render_routes(&read::<Vec<RouteView>>(v)?),
        Command::Counters => render_counters(&read::<Vec<PortReport>>(v)?),
        Command::Circuits => render_circuits(&read::<Vec<CircuitView>>(v)?),
        Command::Reload => render_reload(&read::<ReloadView>(v)?),
        Command::Bfd => render_bfd(&read::<Vec<BfdView>>(v)?),
        Command::Drain { .. } | Command::Undrain { .. } => render_drain(&read::<DrainView>(v)?),
        Command::Links => render_links(&read::<Vec<LinkView>>(v)?),
        Command::Fib => render_fib(&read::<FibView>(v)?),
        Command::GetStats { .. } => cli::az::stats(&read::<az::CircuitStats>(v)?),
        Command::ListRouteTables { .. } => cli::az::route_table(&read(v)?),
        Command::ListRouteTablesSummary { .. } => cli::az::route_table_summary(&read(v)?),
        Command::ListArpTables { .. } => cli::az::arp_table(&read(v)?),
        Command::Usage { .. } => cli::reports::usage(&read(v)?),
        Command::Availability { .. } => cli::reports::availability(&read(v)?),
        Command::Import { .. } | Command::Capture { .. } | Command::Top { .. } => {
            anyhow::bail!("this verb renders no answer")
        }
    })
}

fn render_fib(v: &FibView) -> String {
    let r = &v.record;
    let mut out = format!(
        "{} routes, {} next-hop groups installed\n{} batches written ({} routes installed, {} removed), {} failed\n",
        v.routes, v.groups, r.batches, r.routes_upserted, r.routes_removed, r.failed_batches
    );
    if r.pending_writes == 0 {
        out += "in step: every route of the RIBs is in the dataplane\n";
    } else {
        out += &format!(
            "OUT OF STEP: {} route writes refused by the dataplane, retried with backoff ({} retries so far)\n",
            r.pending_writes, r.write_retries
        );
    }
    if let Some(e) = &r.last_write_error {
        out += &format!("last refusal: {e}\n");
    }
    let t = &v.table;
    out += &format!(
        "forwarding table: {} of {} domain slots in use; in use IPv4 {} of {} lines of ranges ({} B each), IPv6 {} of {} nodes ({} B each); {} MiB of maps\n",
        t.slots_used,
        t.slots,
        t.nodes_in_use[0],
        t.nodes[0],
        t.node_bytes[0],
        t.nodes_in_use[1],
        t.nodes[1],
        t.node_bytes[1],
        t.map_bytes >> 20
    );
    out += &format!(
        "looked up in the LPM tries (no table of the family): {} domains IPv4, {} IPv6; {} lookups IPv4, {} IPv6\n",
        t.domains_on_trie[0], t.domains_on_trie[1], t.fallback_lookups[0], t.fallback_lookups[1]
    );
    out
}

/// `msee-cli import`: prints the equivalent configuration.
fn import(files: &[PathBuf], json: bool) -> ExitCode {
    let imported = match circuit::import::import_files(files) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("msee-cli: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = if json {
        // JSON has no comments: the notes go to stderr.
        for n in &imported.notes {
            eprintln!("msee-cli: note: {n}");
        }
        serde_json::to_string_pretty(&imported.config)
            .map(|t| t + "\n")
            .map_err(|e| e.to_string())
    } else {
        imported.to_toml().map_err(|e| e.to_string())
    };
    match text {
        Ok(t) => print!("{t}"),
        Err(e) => {
            eprintln!("msee-cli: error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match imported.validate(&circuit::Catalog::embedded()) {
        Ok(model) => {
            for w in &model.warnings {
                eprintln!("msee-cli: warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("msee-cli: the printed configuration does not validate yet: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `msee-cli capture`: frames into a pcapng file.
fn capture(
    socket: &std::path::Path,
    file: &std::path::Path,
    a: &cli::capture::CaptureArgs,
) -> ExitCode {
    let r = cli::capture::run(socket, a).and_then(|(frames, lost)| {
        cli::capture::write_pcapng(file, &frames, a.snap)?;
        Ok((frames.len(), lost))
    });
    match r {
        Ok((n, lost)) => {
            println!(
                "{n} dropped frames written to {}{}",
                file.display(),
                if lost > 0 {
                    format!(" ({lost} selected drops not copied: over the rate, or the ring full)")
                } else {
                    String::new()
                }
            );
            if (n as u64) < a.count {
                eprintln!(
                    "msee-cli: error: only {n} of {} frames before the timeout",
                    a.count
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("msee-cli: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let request = match &args.command {
        Command::Import { files } => return import(files, args.json),
        Command::Top { interval_ms, once } => {
            let interval = Duration::from_millis((*interval_ms).max(100));
            let r = if *once {
                cli::top::once(&args.socket, interval).map(|t| print!("{t}"))
            } else {
                cli::top::run(&args.socket, interval)
            };
            return match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("msee-cli: error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Capture {
            reasons,
            link,
            count,
            file,
            sample,
            rate,
            snap,
            timeout_secs,
        } => {
            return capture(
                &args.socket,
                file,
                &cli::capture::CaptureArgs {
                    reasons: reasons.clone(),
                    link: link.clone(),
                    count: *count,
                    sample: *sample,
                    rate: *rate,
                    snap: *snap,
                    timeout: Duration::from_secs(*timeout_secs),
                },
            );
        }
        Command::GetStats { circuit, peering } => Request::Stats {
            circuit: circuit.clone(),
            peering: peering.clone(),
        },
        Command::ListRouteTables {
            circuit,
            peering,
            path,
            advertised,
        } => Request::RouteTable {
            circuit: circuit.clone(),
            peering: peering.clone(),
            path: path.clone(),
            advertised: *advertised,
        },
        Command::ListRouteTablesSummary {
            circuit,
            peering,
            path,
        } => Request::RouteTableSummary {
            circuit: circuit.clone(),
            peering: peering.clone(),
            path: path.clone(),
        },
        Command::ListArpTables {
            circuit,
            peering,
            path,
        } => Request::ArpTable {
            circuit: circuit.clone(),
            peering: peering.clone(),
            path: path.clone(),
        },
        Command::Usage { circuit, from, to } => Request::Usage {
            circuit: circuit.clone(),
            from: from.clone(),
            to: to.clone(),
        },
        Command::Availability { circuit, from, to } => Request::Availability {
            circuit: circuit.clone(),
            from: from.clone(),
            to: to.clone(),
        },
        Command::Sessions => Request::Sessions,
        Command::Routes { circuit } => Request::Routes {
            circuit: circuit.clone(),
        },
        Command::Counters => Request::Counters,
        Command::Fib => Request::Fib { lookup: Vec::new() },
        Command::Links => Request::Links,
        Command::Circuits => Request::Circuits,
        Command::Reload => Request::Reload,
        Command::Bfd => Request::Bfd,
        Command::Drain { circuit, link } | Command::Undrain { circuit, link } => Request::Drain {
            circuit: circuit.clone(),
            link: link.clone(),
            drain: matches!(args.command, Command::Drain { .. }),
        },
    };
    match api::query(&args.socket, &request, Duration::from_secs(5)) {
        Ok(v) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return ExitCode::SUCCESS;
            }
            match render(&args.command, v) {
                Ok(t) => {
                    print!("{t}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "msee-cli: error: the daemon's answer is not what this msee-cli reads (another version?): {e}"
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("msee-cli: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_each_row() {
        let v = serde_json::json!([{"circuit": "c", "peering": "AzurePrivatePeering", "prefix": "172.16.0.0/16", "group": 3,
            "next_hops": [{"link": "primary", "as_path_len": 1}, {"link": "secondary", "as_path_len": 3}]}]);
        let t = render(
            &Command::Routes {
                circuit: "c".into(),
            },
            v,
        )
        .unwrap();
        assert!(
            t.contains("172.16.0.0/16") && t.contains("primary: 1, secondary: 3"),
            "{t}"
        );
        let v = serde_json::json!([{"name": "c/p/primary", "circuit": "c", "peering": "AzurePrivatePeering",
            "link": "primary", "local": "192.168.100.130", "peer": "192.168.100.129",
            "peer_as": 65010, "state": "Established", "since_secs": 4, "last_down": null, "family": "Ipv4",
            "prefixes_received": 2, "prefixes_advertised": 1, "drained": false, "held_by_bfd": false,
            "held_by_carrier": false, "max_prefixes": 4000, "md5": true}]);
        let t = render(&Command::Sessions, v).unwrap();
        assert!(t.contains("Established") && t.contains("2/4000"), "{t}");
        let v = serde_json::json!({"file": "c.toml", "changed": true, "circuits_added": ["er-new"],
            "restarted": ["a/p/primary"], "added": [], "removed": [],
            "in_place": [{"session": "a/p/secondary", "fields": ["advertisements", "bfd"]}],
            "bandwidth_mbps": 2000, "notes": []});
        let t = render(&Command::Reload, v).unwrap();
        assert!(
            t.contains("restarted: a/p/primary")
                && t.contains("circuit added: er-new")
                && t.contains("a/p/secondary (advertisements, bfd)")
                && t.contains("2000 Mbit/s"),
            "{t}"
        );
        let v = serde_json::json!({"file": "c.toml", "changed": false, "restarted": [], "added": [],
            "removed": [], "in_place": [], "bandwidth_mbps": null, "notes": []});
        assert!(
            render(&Command::Reload, v)
                .unwrap()
                .contains("nothing changed")
        );
        let v = serde_json::json!([{"name": "er-lab", "running": true, "sku": {"tier": "Standard", "family": "MeteredData"},
            "serviceKey": "k", "bandwidthInMbps": 1000, "serviceProviderName": "Equinix", "peeringLocation": "Amsterdam",
            "metro": "Amsterdam", "area": "Europe", "serviceProviderProvisioningState": "Provisioned",
            "expressRoutePort": null, "reach": ["West Europe", "North Europe"], "vnetLinks": [], "globalReach": ["er-lon"],
            "peerings": [{"peeringType": "AzurePrivatePeering", "peerASN": 65010, "vlan": "vlan 100", "md5": true,
                "bfd": {"intervalMs": 300, "multiplier": 3},
                "primary": {"ipv4": {"subnet": "192.168.100.128/30", "customer": "192.168.100.129", "msee": "192.168.100.130"}, "ipv6": null},
                "secondary": {"ipv4": {"subnet": "192.168.100.132/30", "customer": "192.168.100.133", "msee": "192.168.100.134"}, "ipv6": null},
                "limits": {"fromCustomerIpv4": 4000, "fromCustomerIpv6": 100, "toCustomerIpv4": 1000, "toCustomerIpv6": 100}}]}]);
        let t = render(&Command::Circuits, v).unwrap();
        assert!(
            t.contains("er-lab (running here): Standard MeteredData")
                && t.contains("reach: West Europe, North Europe")
                && t.contains("global reach: er-lon")
                && t.contains("peer AS 65010 vlan 100 md5")
                && !t.contains("vlan vlan")
                && t.contains("bfd 300 ms x 3"),
            "{t}"
        );
        let v = serde_json::json!([{"link": 0, "name": "primary", "neighbour": true, "carrier": false,
            "bgp": true, "bfd": null, "carries": false, "flips": 3,
            "history": [{"up": false, "cause": "carrier lost", "at_mono_ns": 1}]}]);
        let t = render(&Command::Links, v).unwrap();
        assert!(
            t.contains("primary") && t.contains("no ") && t.contains("down (carrier lost)"),
            "{t}"
        );
        let v = serde_json::json!({"circuits": ["er-lab"], "now_ns": 1, "cpu_ns": 1, "routes": 12, "groups": 2,
            "lookup": [], "record": {"updates": 3, "prefixes_announced": 10, "prefixes_withdrawn": 0,
            "first_update_ns": null, "last_update_ns": null, "batches": 4, "failed_batches": 1,
            "routes_upserted": 12, "routes_removed": 0, "groups_added": 2, "groups_freed": 0,
            "first_write_ns": null, "last_write_ns": null, "pending_writes": 3, "write_retries": 2,
            "last_write_error": "domain 1: ENOMEM"}});
        let t = render(&Command::Fib, v).unwrap();
        assert!(
            t.contains("OUT OF STEP: 3 route writes")
                && t.contains("1 failed")
                && t.contains("ENOMEM"),
            "{t}"
        );
        // The forwarding table's occupancy and fallback counter.
        let v = serde_json::json!({"circuits": ["er-lab"], "now_ns": 1, "cpu_ns": 1, "routes": 12, "groups": 2,
            "lookup": [], "record": {"updates": 3, "prefixes_announced": 10, "prefixes_withdrawn": 0,
            "first_update_ns": null, "last_update_ns": null, "batches": 4, "failed_batches": 0,
            "routes_upserted": 12, "routes_removed": 0, "groups_added": 2, "groups_freed": 0,
            "first_write_ns": null, "last_write_ns": null},
            "table": {"fallback_lookups": [7, 0], "nodes_in_use": [5, 0], "nodes": [131072, 65536],
            "node_bytes": [64, 64], "slots": 256, "slots_used": 2, "domains_on_trie": [1, 0],
            "map_bytes": 200_000_000u64}});
        let t = render(&Command::Fib, v).unwrap();
        assert!(
            t.contains("2 of 256 domain slots")
                && t.contains("IPv4 5 of 131072 lines of ranges (64 B each)")
                && t.contains("1 domains IPv4, 0 IPv6; 7 lookups IPv4"),
            "{t}"
        );
        // An answer of another shape is an error, not a blank table.
        assert!(render(&Command::Links, serde_json::json!({"x": 1})).is_err());
    }
}
