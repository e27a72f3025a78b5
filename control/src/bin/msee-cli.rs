//! `msee-cli`: asks a running `msee-daemon` (its `--api-socket`) for its
//! BGP sessions, a circuit's routes, or the dataplane counters.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use control::api::{self, Request};
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
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn render(command: &Command, v: &Value) -> String {
    let rows = v.as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    match command {
        Command::Sessions => {
            out += &format!(
                "{:<40} {:<10} {:<16} {:<8} {:<12} {:>8} {:>9} {:<7}  last down\n",
                "session", "link", "peer", "peer AS", "state", "for (s)", "prefixes", "drained"
            );
            for r in &rows {
                out += &format!(
                    "{:<40} {:<10} {:<16} {:<8} {:<12} {:>8} {:>4}/{:<4} {:<7}  {}\n",
                    s(&r["name"]),
                    s(&r["link"]),
                    s(&r["peer"]),
                    s(&r["peer_as"]),
                    s(&r["state"]),
                    s(&r["since_secs"]),
                    s(&r["prefixes_received"]),
                    s(&r["max_prefixes"]),
                    if r["drained"] == true { "yes" } else { "no" },
                    s(&r["last_down"]),
                );
            }
        }
        Command::Routes { .. } => {
            out += &format!(
                "{:<8} {:<20} {:>6}  next hops (link: AS-path length)\n",
                "peering", "prefix", "group"
            );
            for r in &rows {
                let hops: Vec<String> = r["next_hops"]
                    .as_array()
                    .map(|h| {
                        h.iter()
                            .map(|h| format!("{}: {}", s(&h["link"]), s(&h["as_path_len"])))
                            .collect()
                    })
                    .unwrap_or_default();
                out += &format!(
                    "{:<8} {:<20} {:>6}  {}\n",
                    s(&r["peering"]),
                    s(&r["prefix"]),
                    s(&r["group"]),
                    hops.join(", ")
                );
            }
        }
        Command::Counters => {
            out += &format!(
                "{:<10} {:<10} {:>10} {:>12} {:>10} {:>12}  drops\n",
                "port", "ifname", "rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes"
            );
            for r in &rows {
                let drops: Vec<String> = r["drops"]
                    .as_object()
                    .map(|d| {
                        d.iter()
                            .filter(|(_, n)| n.as_u64() != Some(0))
                            .map(|(k, n)| format!("{k}={n}"))
                            .collect()
                    })
                    .unwrap_or_default();
                out += &format!(
                    "{:<10} {:<10} {:>10} {:>12} {:>10} {:>12}  {}\n",
                    s(&r["port"]),
                    s(&r["ifname"]),
                    s(&r["rx_packets"]),
                    s(&r["rx_bytes"]),
                    s(&r["tx_packets"]),
                    s(&r["tx_bytes"]),
                    drops.join(" ")
                );
            }
        }
        Command::Circuits => {
            for c in &rows {
                out += &format!(
                    "{}{}: {} {} ({}), {} Mbit/s, {} at {} ({}), {}\n",
                    s(&c["name"]),
                    if c["running"] == true {
                        " (running here)"
                    } else {
                        ""
                    },
                    s(&c["sku"]["tier"]),
                    s(&c["sku"]["family"]),
                    s(&c["serviceKey"]),
                    s(&c["bandwidthInMbps"]),
                    s(&c["serviceProviderName"]),
                    s(&c["peeringLocation"]),
                    s(&c["area"]),
                    s(&c["serviceProviderProvisioningState"]),
                );
                let reach: Vec<String> = c["reach"]
                    .as_array()
                    .map(|r| r.iter().map(s).collect())
                    .unwrap_or_default();
                out += &format!("  reach: {}\n", reach.join(", "));
                for p in c["peerings"].as_array().cloned().unwrap_or_default() {
                    let bfd = if p["bfd"].is_null() {
                        "off".to_owned()
                    } else {
                        format!(
                            "{} ms x {}",
                            s(&p["bfd"]["intervalMs"]),
                            s(&p["bfd"]["multiplier"])
                        )
                    };
                    // `vlan` is the tag as the model prints it ("vlan 100",
                    // "s-tag 10 c-tag 20"): it names itself.
                    out += &format!(
                        "  {} peer AS {} {} md5 {} bfd {}: primary {} secondary {}\n",
                        s(&p["peeringType"]),
                        s(&p["peerASN"]),
                        s(&p["vlan"]),
                        if p["md5"] == true { "on" } else { "off" },
                        bfd,
                        s(&p["primary"]["ipv4"]["subnet"]),
                        s(&p["secondary"]["ipv4"]["subnet"]),
                    );
                }
            }
        }
        Command::Reload => {
            if v["changed"] == false {
                out += &format!("{}: nothing changed\n", s(&v["file"]));
            } else {
                out += &format!("{}: applied\n", s(&v["file"]));
                for key in ["restarted", "added", "removed"] {
                    for n in v[key].as_array().cloned().unwrap_or_default() {
                        out += &format!("  {key}: {}\n", s(&n));
                    }
                }
                for c in v["in_place"].as_array().cloned().unwrap_or_default() {
                    out += &format!(
                        "  changed in place: {} ({})\n",
                        s(&c["session"]),
                        c["fields"]
                            .as_array()
                            .map(|f| f.iter().map(s).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default()
                    );
                }
                if !v["bandwidth_mbps"].is_null() {
                    out += &format!(
                        "  bandwidth: {} Mbit/s (policers changed in place)\n",
                        s(&v["bandwidth_mbps"])
                    );
                }
            }
            for n in v["notes"].as_array().cloned().unwrap_or_default() {
                out += &format!("  note: {}\n", s(&n));
            }
        }
        Command::Bfd => {
            out += &format!(
                "{:<40} {:<16} {:<9} {:<9} {:<22} {:>7} {:>7} {:>9} {:>10} {:>9} {:>9}\n",
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
                "pkts out"
            );
            let ms = |v: &Value| {
                v.as_u64()
                    .map_or("-".to_owned(), |us| format!("{:.0}", us as f64 / 1000.0))
            };
            for r in &rows {
                out += &format!(
                    "{:<40} {:<16} {:<9} {:<9} {:<22} {:>7} {:>7} {:>9} {:>10} {:>9} {:>9}\n",
                    s(&r["name"]),
                    s(&r["peer"]),
                    s(&r["state"]),
                    s(&r["remote_state"]),
                    s(&r["diag"]),
                    ms(&r["tx_interval_us"]),
                    ms(&r["rx_interval_us"]),
                    ms(&r["detection_time_us"]),
                    s(&r["uptime_ms"]),
                    s(&r["packets_in"]),
                    s(&r["packets_out"]),
                );
            }
        }
        Command::Drain { .. } | Command::Undrain { .. } => {
            out += &format!(
                "{} {} of {}: {} routes repointed, {} sessions re-advertised{}\n",
                if v["drained"] == true {
                    "drained"
                } else {
                    "undrained"
                },
                s(&v["link"]),
                s(&v["circuit"]),
                s(&v["routes_repointed"]),
                s(&v["sessions_readvertised"]),
                if v["drained"] == true {
                    format!(" with AS 12076 prepended {} times", s(&v["prepend"]))
                } else {
                    String::new()
                }
            );
        }
        Command::Links => {
            out += &format!(
                "{:<10} {:<8} {:<9} {:<7} {:<5} {:<5} {:>5}  last flip\n",
                "link", "carries", "neighbour", "carrier", "bgp", "bfd", "flips"
            );
            let yes_no = |v: &Value| match v {
                Value::Bool(true) => "up".to_owned(),
                Value::Bool(false) => "down".to_owned(),
                _ => "-".to_owned(),
            };
            for r in &rows {
                let last = &r["history"][0];
                let last = if last.is_null() {
                    "-".to_owned()
                } else {
                    format!(
                        "{} ({})",
                        if last["up"] == true { "up" } else { "down" },
                        s(&last["cause"])
                    )
                };
                out += &format!(
                    "{:<10} {:<8} {:<9} {:<7} {:<5} {:<5} {:>5}  {}\n",
                    s(&r["name"]),
                    if r["carries"] == true { "yes" } else { "no" },
                    yes_no(&r["neighbour"]),
                    yes_no(&r["carrier"]),
                    yes_no(&r["bgp"]),
                    yes_no(&r["bfd"]),
                    s(&r["flips"]),
                    last
                );
            }
        }
    }
    out
}

fn main() -> ExitCode {
    let args = Args::parse();
    let request = match &args.command {
        Command::Sessions => Request::Sessions,
        Command::Routes { circuit } => Request::Routes {
            circuit: circuit.clone(),
        },
        Command::Counters => Request::Counters,
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
            } else {
                print!("{}", render(&args.command, &v));
            }
            ExitCode::SUCCESS
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
        let v = serde_json::json!([{"peering": "private", "prefix": "172.16.0.0/16", "group": 3,
            "next_hops": [{"link": "primary", "as_path_len": 1}, {"link": "secondary", "as_path_len": 3}]}]);
        let t = render(
            &Command::Routes {
                circuit: "c".into(),
            },
            &v,
        );
        assert!(
            t.contains("172.16.0.0/16") && t.contains("primary: 1, secondary: 3"),
            "{t}"
        );
        let v = serde_json::json!([{"name": "c/p/primary", "link": "primary", "peer": "192.168.100.129",
            "peer_as": 65010, "state": "Established", "since_secs": 4, "last_down": null,
            "prefixes_received": 2, "max_prefixes": 4000}]);
        let t = render(&Command::Sessions, &v);
        assert!(t.contains("Established") && t.contains("2/4000"), "{t}");
        let v = serde_json::json!({"file": "c.toml", "changed": true, "restarted": ["a/p/primary"],
            "added": [], "removed": [], "in_place": [{"session": "a/p/secondary", "fields": ["advertisements", "bfd"]}],
            "bandwidth_mbps": 2000, "notes": []});
        let t = render(&Command::Reload, &v);
        assert!(
            t.contains("restarted: a/p/primary")
                && t.contains("a/p/secondary (advertisements, bfd)")
                && t.contains("2000 Mbit/s"),
            "{t}"
        );
        let v = serde_json::json!({"file": "c.toml", "changed": false});
        assert!(render(&Command::Reload, &v).contains("nothing changed"));
        let v = serde_json::json!([{"name": "er-lab", "running": true, "sku": {"tier": "Standard", "family": "MeteredData"},
            "serviceKey": "k", "bandwidthInMbps": 1000, "serviceProviderName": "Equinix", "peeringLocation": "Amsterdam",
            "area": "Europe", "serviceProviderProvisioningState": "Provisioned", "reach": ["West Europe", "North Europe"],
            "peerings": [{"peeringType": "AzurePrivatePeering", "peerASN": 65010, "vlan": "vlan 100", "md5": true,
                "bfd": {"intervalMs": 300, "multiplier": 3},
                "primary": {"ipv4": {"subnet": "192.168.100.128/30"}}, "secondary": {"ipv4": {"subnet": "192.168.100.132/30"}}}]}]);
        let t = render(&Command::Circuits, &v);
        assert!(
            t.contains("er-lab (running here): Standard MeteredData")
                && t.contains("reach: West Europe, North Europe")
                && t.contains("peer AS 65010 vlan 100 md5 on")
                && t.contains("bfd 300 ms x 3"),
            "{t}"
        );
        assert!(!t.contains("vlan vlan"), "{t}");
        // A QinQ peering names both tags.
        let mut qinq = v.clone();
        qinq[0]["peerings"][0]["vlan"] = "s-tag 10 c-tag 20".into();
        let t = render(&Command::Circuits, &qinq);
        assert!(t.contains("peer AS 65010 s-tag 10 c-tag 20 md5 on"), "{t}");
        let v = serde_json::json!([{"link": 0, "name": "primary", "neighbour": true, "carrier": false,
            "bgp": true, "bfd": null, "carries": false, "flips": 3,
            "history": [{"up": false, "cause": "carrier lost", "at_mono_ns": 1}]}]);
        let t = render(&Command::Links, &v);
        assert!(
            t.contains("primary") && t.contains("no ") && t.contains("down (carrier lost)"),
            "{t}"
        );
    }
}
