//! The kernel's side of the `fibfwd` forwarder in the lab: the routes msee
//! gets, installed in a routing table of the msee namespace via the azure
//! peer out of the azure port, a permanent neighbour entry for that peer,
//! and IPv4 forwarding on (without it `bpf_fib_lookup` answers "forwarding
//! disabled"). The routes go with the namespace.
use std::{
    io::Write as _,
    net::Ipv4Addr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use ipnet::Ipv4Net;
use lab::{ip_ns, sysctl_ns};

/// The kernel's main table: `fibfwd` with table 0 looks up through the
/// policy rules, which (no rule added) answer from here.
pub const MAIN_TABLE: u32 = 254;

/// Forwarding on, and `peer` (with `peer_mac`) a permanent neighbour on
/// `dev`, in namespace `ns`.
pub fn prepare(ns: &str, dev: &str, peer: Ipv4Addr, peer_mac: [u8; 6]) -> Result<()> {
    sysctl_ns(ns, "net.ipv4.conf.all.forwarding", "1")?;
    let mac = peer_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    ip_ns(
        ns,
        &[
            "neigh",
            "replace",
            &peer.to_string(),
            "lladdr",
            &mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ],
    )?;
    Ok(())
}

/// Install `routes` via `peer` out of `dev` into routing table `table` of
/// namespace `ns`, in one `ip -batch` (one netlink request per route, no
/// process per route). Returns the time it took.
pub fn install(
    ns: &str,
    table: u32,
    routes: &[Ipv4Net],
    peer: Ipv4Addr,
    dev: &str,
) -> Result<Duration> {
    let mut script = String::with_capacity(routes.len() * 48);
    for r in routes {
        script.push_str(&format!(
            "route add {r} via {peer} dev {dev} table {table}\n"
        ));
    }
    let start = Instant::now();
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting `ip -batch`")?;
    child
        .stdin
        .take()
        .context("stdin of `ip -batch`")?
        .write_all(script.as_bytes())
        .context("writing routes to `ip -batch`")?;
    let out = child
        .wait_with_output()
        .context("waiting for `ip -batch`")?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "installing {} kernel routes in {ns} (table {table}): {}",
            routes.len(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// IPv4 routes in table `table` of namespace `ns`.
pub fn count(ns: &str, table: u32) -> Result<usize> {
    let out = Command::new("ip")
        .args(["-n", ns, "-4", "route", "show", "table", &table.to_string()])
        .output()
        .context("ip route show")?;
    if !out.status.success() {
        bail!("ip route show table {table} in {ns} failed");
    }
    Ok(out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count())
}

/// IPv4 datagrams the kernel of namespace `ns` forwarded itself so far
/// (`Ip: ForwDatagrams` of /proc/net/snmp): frames an XDP program passed
/// up rather than redirected, and the kernel then routed.
pub fn kernel_forwarded(ns: &str) -> Result<u64> {
    let snmp = lab::run("ip", &["netns", "exec", ns, "cat", "/proc/net/snmp"])?;
    parse_forwarded(&snmp).with_context(|| format!("no Ip: ForwDatagrams in {ns}'s /proc/net/snmp"))
}

fn parse_forwarded(snmp: &str) -> Option<u64> {
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip: "));
    let (names, values) = (ip.next()?, ip.next()?);
    let col = names
        .split_whitespace()
        .position(|n| n == "ForwDatagrams")?;
    values.split_whitespace().nth(col)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn forwarded_datagrams_are_read_by_column() {
        let snmp = "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos\n\
                    Ip: 1 64 100 0 0 42 0\n\
                    Icmp: InMsgs\nIcmp: 0\n";
        assert_eq!(super::parse_forwarded(snmp), Some(42));
        assert_eq!(super::parse_forwarded("Icmp: InMsgs\nIcmp: 0\n"), None);
    }
}
