//! Interface facts in a namespace, from iproute2 and ethtool (the same tools
//! an engineer replays by hand): ifindex, MAC, link speed, neighbours, and
//! the kernel's packet counters, which are what rates are read from.
use std::net::IpAddr;

use anyhow::{Context as _, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

fn ip(netns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut full: Vec<&str> = Vec::new();
    if let Some(ns) = netns {
        full.extend(["-n", ns]);
    }
    full.extend_from_slice(args);
    lab::run("ip", &full)
}

fn where_(netns: Option<&str>) -> String {
    netns.map_or_else(|| "this namespace".to_owned(), |n| format!("namespace {n}"))
}

fn link_json(netns: Option<&str>, ifname: &str, stats: bool) -> Result<serde_json::Value> {
    if let Some(ns) = netns
        && !msee_sys::netns::exists(ns)
    {
        bail!("network namespace {ns} not found (no /run/netns/{ns})");
    }
    let mut args = vec!["-j"];
    if stats {
        args.push("-s");
    }
    args.extend(["link", "show", "dev", ifname]);
    let out = ip(netns, &args)
        .map_err(|_| anyhow!("interface {ifname} not found in {}", where_(netns)))?;
    let v: serde_json::Value = serde_json::from_str(&out).context("parsing `ip -j link`")?;
    v.get(0)
        .cloned()
        .ok_or_else(|| anyhow!("interface {ifname} not found in {}", where_(netns)))
}

pub fn ifindex(netns: Option<&str>, ifname: &str) -> Result<u32> {
    link_json(netns, ifname, false)?["ifindex"]
        .as_u64()
        .map(|i| i as u32)
        .ok_or_else(|| anyhow!("no ifindex for {ifname}"))
}

/// The id of the XDP program attached to `ifname`, if any.
pub fn xdp_prog_id(netns: Option<&str>, ifname: &str) -> Result<Option<u32>> {
    let v = link_json(netns, ifname, false)?;
    Ok(v["xdp"]["prog"]["id"].as_u64().map(|i| i as u32))
}

pub fn mac(netns: Option<&str>, ifname: &str) -> Result<[u8; 6]> {
    let v = link_json(netns, ifname, false)?;
    let a = v["address"]
        .as_str()
        .ok_or_else(|| anyhow!("{ifname} has no Ethernet address"))?;
    lab::parse_mac(a)
}

/// Link speed in Mbit/s from ethtool; `None` if unknown.
pub fn speed_mbps(netns: Option<&str>, ifname: &str) -> Option<u64> {
    let out = match netns {
        Some(ns) => lab::run("ip", &["netns", "exec", ns, "ethtool", ifname]),
        None => lab::run("ethtool", &[ifname]),
    }
    .ok()?;
    let line = out.lines().find(|l| l.trim_start().starts_with("Speed:"))?;
    line.split(':')
        .nth(1)?
        .trim()
        .trim_end_matches("Mb/s")
        .parse()
        .ok()
}

/// The address whose MAC frames to `dst` out of `ifname` must carry: the
/// gateway of the kernel's route to `dst` through `ifname` (`ip route get
/// DST oif IFNAME`), or `dst` itself when it is on-link.
pub fn next_hop(netns: Option<&str>, ifname: &str, dst: IpAddr) -> Result<IpAddr> {
    let d = dst.to_string();
    let out = ip(netns, &["-j", "route", "get", &d, "oif", ifname]).map_err(|e| {
        anyhow!(
            "no route to {dst} out of {ifname} in {} ({e:#}); give --dst-mac",
            where_(netns)
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&out).context("parsing `ip -j route get`")?;
    let r = v
        .get(0)
        .ok_or_else(|| anyhow!("no route to {dst} out of {ifname} in {}", where_(netns)))?;
    if let Some(dev) = r["dev"].as_str()
        && dev != ifname
    {
        bail!(
            "the route to {dst} in {} leaves by {dev}, not {ifname}; give --dst-mac",
            where_(netns)
        );
    }
    if let Some(gw) = r["gateway"].as_str() {
        return gw
            .parse()
            .with_context(|| format!("gateway {gw} of the route to {dst} is not an address"));
    }
    // With `oif` the kernel answers "on-link" even where no route exists:
    // ask without it whether `dst` is reachable at all.
    ip(netns, &["-j", "route", "get", &d]).map_err(|e| {
        anyhow!(
            "no route to {dst} in {} ({e:#}); give --dst-mac",
            where_(netns)
        )
    })?;
    Ok(dst)
}

/// The MAC frames to `dst` out of `ifname` need: the neighbour entry of the
/// next hop ([`next_hop`]), resolved by the kernel if missing.
pub fn next_hop_mac(netns: Option<&str>, ifname: &str, dst: IpAddr) -> Result<[u8; 6]> {
    let hop = next_hop(netns, ifname, dst)?;
    neighbour_mac(netns, ifname, hop).with_context(|| {
        if hop == dst {
            format!("resolving {dst} on {ifname}")
        } else {
            format!("resolving {hop}, the gateway to {dst} on {ifname}")
        }
    })
}

/// The neighbour's MAC for `addr` on `ifname`. An empty entry is filled by
/// sending one UDP datagram to the discard port (the kernel then resolves
/// it), waiting up to a second.
pub fn neighbour_mac(netns: Option<&str>, ifname: &str, addr: IpAddr) -> Result<[u8; 6]> {
    let a = addr.to_string();
    let lookup = || -> Result<Option<[u8; 6]>> {
        let out = ip(netns, &["-j", "neigh", "show", &a, "dev", ifname])?;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        match v.get(0).and_then(|e| e["lladdr"].as_str()) {
            Some(mac) => Ok(Some(lab::parse_mac(mac)?)),
            None => Ok(None),
        }
    };
    if let Some(m) = lookup()? {
        return Ok(m);
    }
    let ns = netns.map(str::to_owned);
    let dev = ifname.to_owned();
    let _ = std::thread::spawn(move || -> Result<()> {
        super::enter_netns(ns.as_deref())?;
        let bind: std::net::SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse()?
        } else {
            "[::]:0".parse()?
        };
        let sock = std::net::UdpSocket::bind(bind)?;
        // SAFETY: valid fd and a NUL-free device name of its length.
        unsafe {
            use std::os::fd::AsRawFd as _;
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                dev.as_ptr().cast(),
                dev.len() as u32,
            );
        }
        sock.send_to(b"msee-traffic neighbour probe", (addr, 9))?;
        Ok(())
    })
    .join();
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if let Some(m) = lookup()? {
            return Ok(m);
        }
    }
    bail!(
        "no neighbour entry for {addr} on {ifname} in {} (give --dst-mac)",
        where_(netns)
    )
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_dropped: u64,
}

impl Counters {
    pub fn delta(&self, before: &Counters) -> Counters {
        Counters {
            rx_packets: self.rx_packets.wrapping_sub(before.rx_packets),
            rx_bytes: self.rx_bytes.wrapping_sub(before.rx_bytes),
            rx_dropped: self.rx_dropped.wrapping_sub(before.rx_dropped),
            tx_packets: self.tx_packets.wrapping_sub(before.tx_packets),
            tx_bytes: self.tx_bytes.wrapping_sub(before.tx_bytes),
            tx_dropped: self.tx_dropped.wrapping_sub(before.tx_dropped),
        }
    }
}

/// The kernel's counters of `ifname` (`ip -s link`).
pub fn counters(netns: Option<&str>, ifname: &str) -> Result<Counters> {
    let v = link_json(netns, ifname, true)?;
    let s = &v["stats64"];
    let g = |dir: &str, k: &str| s[dir][k].as_u64().unwrap_or(0);
    Ok(Counters {
        rx_packets: g("rx", "packets"),
        rx_bytes: g("rx", "bytes"),
        rx_dropped: g("rx", "dropped"),
        tx_packets: g("tx", "packets"),
        tx_bytes: g("tx", "bytes"),
        tx_dropped: g("tx", "dropped"),
    })
}
