//! The lab topology of one emulated circuit edge:
//!
//! ```text
//! [<p>-onprem] primary   ==veth== primary   [<p>-msee] azure ==veth== msee [<p>-azure]
//!              secondary ==veth== secondary
//! ```
//!
//! Every name carries the instance prefix `<p>`, so parallel labs never
//! collide; `Lab::down` removes exactly what `Lab::up` made (deleting a
//! namespace deletes the veth ends inside it). Built on iproute2 and ethtool,
//! the reference tools for this kernel's netns/veth features, which every
//! engineer can replay by hand from the printed commands.
#![forbid(unsafe_code)]
use std::{
    net::{Ipv4Addr, Ipv6Addr},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};
pub mod daemon;
pub mod estate;
pub mod traffic;

use msee_sys::netns;

/// Interface names inside the namespaces (namespaces isolate them, so they
/// need no prefix; the namespaces carry it).
pub const IF_PRIMARY: &str = "primary";
pub const IF_SECONDARY: &str = "secondary";
pub const IF_AZURE: &str = "azure";
pub const IF_AZURE_PEER: &str = "msee";

/// One customer link: a /30 where the customer takes the first usable
/// address and the MSEE the second (ExpressRoute's addressing rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkAddrs {
    pub subnet: Ipv4Addr,
    pub customer: Ipv4Addr,
    pub msee: Ipv4Addr,
}

impl LinkAddrs {
    /// The /30 at `subnet` (which must be /30-aligned).
    pub fn from_slash30(subnet: Ipv4Addr) -> Result<Self> {
        let base = u32::from(subnet);
        if base & 3 != 0 {
            bail!("{subnet} is not the start of a /30");
        }
        Ok(Self {
            subnet,
            customer: Ipv4Addr::from(base + 1),
            msee: Ipv4Addr::from(base + 2),
        })
    }
}

/// One customer link's IPv6 /126: the customer takes the first usable
/// address (::1) and the MSEE the second (::2), as for IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkAddrs6 {
    pub subnet: Ipv6Addr,
    pub customer: Ipv6Addr,
    pub msee: Ipv6Addr,
}

impl LinkAddrs6 {
    /// The /126 at `subnet` (which must be /126-aligned).
    pub fn from_slash126(subnet: Ipv6Addr) -> Result<Self> {
        let base = u128::from(subnet);
        if base & 3 != 0 {
            bail!("{subnet} is not the start of a /126");
        }
        Ok(Self {
            subnet,
            customer: Ipv6Addr::from(base + 1),
            msee: Ipv6Addr::from(base + 2),
        })
    }
}

/// Names and addresses of one lab instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub prefix: String,
    pub primary: LinkAddrs,
    pub secondary: LinkAddrs,
    /// The IPv6 peering: one /125 split in two /126s, like the IPv4 /29.
    pub primary6: LinkAddrs6,
    pub secondary6: LinkAddrs6,
    /// MSEE and Azure sides of the IPv6 /126 between msee and azure.
    pub azure_link_msee6: Ipv6Addr,
    pub azure_link_peer6: Ipv6Addr,
    /// The VNet's IPv6 range and its host.
    pub vnet6: Ipv6Addr,
    pub vnet6_len: u8,
    pub vnet_host6: Ipv6Addr,
    /// MSEE side and Azure side of the /30 between msee and azure.
    pub azure_link_msee: Ipv4Addr,
    pub azure_link_peer: Ipv4Addr,
    /// The emulated VNet and one host in it (on the azure namespace).
    pub vnet: Ipv4Addr,
    pub vnet_len: u8,
    pub vnet_host: Ipv4Addr,
    /// Queues of every veth (tx and rx, each end): with more than one,
    /// transmit queue k of onprem's and azure's ports is the one sockets on
    /// CPU k use (XPS), so traffic sent from two CPUs reaches msee on two
    /// receive queues and is forwarded on both CPUs.
    pub queues: u16,
}

impl Topology {
    /// The default addressing: peering subnet 192.168.100.128/29 split in two
    /// /30s (primary .128/30, secondary .132/30), as in Azure's docs example.
    pub fn new(prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        Ok(Self {
            prefix: prefix.to_owned(),
            primary: LinkAddrs::from_slash30(Ipv4Addr::new(192, 168, 100, 128))?,
            secondary: LinkAddrs::from_slash30(Ipv4Addr::new(192, 168, 100, 132))?,
            azure_link_msee: Ipv4Addr::new(10, 255, 0, 1),
            azure_link_peer: Ipv4Addr::new(10, 255, 0, 2),
            vnet: Ipv4Addr::new(10, 1, 0, 0),
            vnet_len: 16,
            vnet_host: Ipv4Addr::new(10, 1, 0, 4),
            primary6: LinkAddrs6::from_slash126(v6("fd00:100::"))?,
            secondary6: LinkAddrs6::from_slash126(v6("fd00:100::4"))?,
            azure_link_msee6: v6("fd00:ff::1"),
            azure_link_peer6: v6("fd00:ff::2"),
            vnet6: v6("fd00:a10::"),
            vnet6_len: 48,
            vnet_host6: v6("fd00:a10::4"),
            queues: 1,
        })
    }

    /// The same lab with `queues` queues on every veth (1 to 64).
    pub fn with_queues(mut self, queues: u16) -> Result<Self> {
        if !(1..=64).contains(&queues) {
            bail!("queues must be 1 to 64, not {queues}");
        }
        self.queues = queues;
        Ok(self)
    }

    /// The IPv6 peering subnet (both /126s).
    pub fn peering6(&self) -> String {
        format!("{}/125", self.primary6.subnet)
    }

    pub fn ns_onprem(&self) -> String {
        format!("{}-onprem", self.prefix)
    }
    pub fn ns_msee(&self) -> String {
        format!("{}-msee", self.prefix)
    }
    pub fn ns_azure(&self) -> String {
        format!("{}-azure", self.prefix)
    }
    pub fn namespaces(&self) -> [String; 3] {
        [self.ns_onprem(), self.ns_msee(), self.ns_azure()]
    }
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("a valid IPv6 literal")
}

/// Instance prefixes end up in namespace names: keep them short and plain.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 24
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("lab prefix {prefix:?} must be 1-24 characters of letters, digits, '-' or '_'");
    }
    Ok(())
}

/// A lab that is up. `down` (or drop) removes it.
pub struct Lab {
    pub topo: Topology,
    removed: bool,
}

impl Lab {
    /// Create the namespaces, links, addresses and routes. On any failure the
    /// parts already made are removed before the error is returned.
    pub fn up(topo: Topology) -> Result<Self> {
        for ns in topo.namespaces() {
            if netns::exists(&ns) {
                bail!(
                    "namespace {ns} already exists: run `cargo xtask lab down --prefix {}` first",
                    topo.prefix
                );
            }
        }
        let lab = Self {
            topo,
            removed: false,
        };
        lab.build().context("building the lab topology")?;
        Ok(lab)
    }

    /// Leave the lab up after this value is gone (for `cargo xtask lab up`).
    pub fn keep(mut self) -> Topology {
        self.removed = true;
        self.topo.clone()
    }

    /// Take charge of an existing lab (for `lab down` from another process).
    pub fn adopt(topo: Topology) -> Self {
        Self {
            topo,
            removed: false,
        }
    }

    fn build(&self) -> Result<()> {
        let t = &self.topo;
        let (onprem, msee, azure) = (t.ns_onprem(), t.ns_msee(), t.ns_azure());
        for ns in t.namespaces() {
            ip(&["netns", "add", &ns])?;
            ip_ns(&ns, &["link", "set", "lo", "up"])?;
        }
        // Create each veth pair directly inside its two namespaces, so nothing
        // is ever left in the root namespace.
        // Each end gets its own ifindex, distinct from its peer's. The
        // kernel treats a veth carrier change as urgent only when the
        // device's ifindex differs from its peer's (iflink); with equal
        // indexes (easy across namespaces) the event waits in linkwatch for
        // up to a second, and so would carrier-based failover.
        for (a_ns, a_if, a_index, b_ns, b_if, b_index) in [
            (&onprem, IF_PRIMARY, "101", &msee, IF_PRIMARY, "201"),
            (&onprem, IF_SECONDARY, "102", &msee, IF_SECONDARY, "202"),
            (&msee, IF_AZURE, "203", &azure, IF_AZURE_PEER, "301"),
        ] {
            let q = t.queues.to_string();
            let queues = ["numtxqueues", &q, "numrxqueues", &q];
            let mut args = vec!["link", "add", a_if, "netns", a_ns, "index", a_index];
            args.extend(queues);
            args.extend([
                "type", "veth", "peer", "name", b_if, "netns", b_ns, "index", b_index,
            ]);
            args.extend(queues);
            ip(&args)?;
        }
        if t.queues > 1 {
            for (ns, ifname) in [
                (&onprem, IF_PRIMARY),
                (&onprem, IF_SECONDARY),
                (&azure, IF_AZURE_PEER),
            ] {
                for q in 0..t.queues {
                    set_xps_cpu(ns, ifname, q, usize::from(q))?;
                }
            }
        }
        let addr = |a: Ipv4Addr, len: u8| format!("{a}/{len}");
        for (link, ifname) in [(t.primary, IF_PRIMARY), (t.secondary, IF_SECONDARY)] {
            ip_ns(
                &onprem,
                &["addr", "add", &addr(link.customer, 30), "dev", ifname],
            )?;
            ip_ns(&msee, &["addr", "add", &addr(link.msee, 30), "dev", ifname])?;
        }
        ip_ns(
            &msee,
            &["addr", "add", &addr(t.azure_link_msee, 30), "dev", IF_AZURE],
        )?;
        ip_ns(
            &azure,
            &[
                "addr",
                "add",
                &addr(t.azure_link_peer, 30),
                "dev",
                IF_AZURE_PEER,
            ],
        )?;
        ip_ns(
            &azure,
            &["addr", "add", &addr(t.vnet_host, 32), "dev", "lo"],
        )?;
        // IPv6 alongside, without duplicate address detection (nothing else
        // is on these links, and DAD would hold the addresses for a second).
        let addr6 = |a: Ipv6Addr, len: u8| format!("{a}/{len}");
        for (link, ifname) in [(t.primary6, IF_PRIMARY), (t.secondary6, IF_SECONDARY)] {
            ip_ns(
                &onprem,
                &[
                    "addr",
                    "add",
                    &addr6(link.customer, 126),
                    "dev",
                    ifname,
                    "nodad",
                ],
            )?;
            ip_ns(
                &msee,
                &[
                    "addr",
                    "add",
                    &addr6(link.msee, 126),
                    "dev",
                    ifname,
                    "nodad",
                ],
            )?;
        }
        ip_ns(
            &msee,
            &[
                "addr",
                "add",
                &addr6(t.azure_link_msee6, 126),
                "dev",
                IF_AZURE,
                "nodad",
            ],
        )?;
        ip_ns(
            &azure,
            &[
                "addr",
                "add",
                &addr6(t.azure_link_peer6, 126),
                "dev",
                IF_AZURE_PEER,
                "nodad",
            ],
        )?;
        ip_ns(
            &azure,
            &["addr", "add", &addr6(t.vnet_host6, 128), "dev", "lo"],
        )?;

        // The MSEE namespace must not forward in the kernel: XDP does.
        sysctl_ns(&msee, "net.ipv4.ip_forward", "0")?;
        sysctl_ns(&msee, "net.ipv6.conf.all.forwarding", "0")?;
        for (ns, ifname) in [
            (&onprem, IF_PRIMARY),
            (&onprem, IF_SECONDARY),
            (&msee, IF_PRIMARY),
            (&msee, IF_SECONDARY),
            (&msee, IF_AZURE),
            (&azure, IF_AZURE_PEER),
        ] {
            ip_ns(ns, &["link", "set", ifname, "up"])?;
        }
        // Receivers of XDP-redirected frames need NAPI (GRO on, or an XDP
        // program) or the frames vanish; senders must put full checksums in
        // the frame, since an XDP-redirected frame loses its offload state.
        for (ns, ifname) in [
            (&onprem, IF_PRIMARY),
            (&onprem, IF_SECONDARY),
            (&azure, IF_AZURE_PEER),
        ] {
            gro_on_tx_off(ns, ifname)?;
        }
        // VNet traffic leaves on-prem over the primary by default; a socket
        // bound to the secondary device uses the secondary route.
        let vnet = addr(t.vnet, t.vnet_len);
        ip_ns(
            &onprem,
            &[
                "route",
                "add",
                &vnet,
                "via",
                &t.primary.msee.to_string(),
                "dev",
                IF_PRIMARY,
                "metric",
                "100",
            ],
        )?;
        ip_ns(
            &onprem,
            &[
                "route",
                "add",
                &vnet,
                "via",
                &t.secondary.msee.to_string(),
                "dev",
                IF_SECONDARY,
                "metric",
                "200",
            ],
        )?;
        for (dev, via, metric) in [
            (IF_PRIMARY, t.primary6.msee, "100"),
            (IF_SECONDARY, t.secondary6.msee, "200"),
        ] {
            ip_ns(
                &onprem,
                &[
                    "-6",
                    "route",
                    "add",
                    &addr6(t.vnet6, t.vnet6_len),
                    "via",
                    &via.to_string(),
                    "dev",
                    dev,
                    "metric",
                    metric,
                ],
            )?;
        }
        ip_ns(
            &azure,
            &[
                "-6",
                "route",
                "add",
                &t.peering6(),
                "via",
                &t.azure_link_msee6.to_string(),
            ],
        )?;
        // Azure reaches the peering subnets through the MSEE.
        ip_ns(
            &azure,
            &[
                "route",
                "add",
                "192.168.100.128/29",
                "via",
                &t.azure_link_msee.to_string(),
            ],
        )?;
        Ok(())
    }

    /// Remove the namespaces (and with them every link inside). Idempotent.
    pub fn down(mut self) -> Result<()> {
        self.remove()
    }

    fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let mut first_err = None;
        for ns in self.topo.namespaces() {
            if netns::exists(&ns)
                && let Err(e) = ip(&["netns", "del", &ns])
            {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("lab cleanup: {e:#}");
        }
    }
}

/// Run a command and fail with its stderr if it fails.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    run_command(Command::new(program), program, args)
}

fn run_command(mut command: Command, program: &str, args: &[&str]) -> Result<String> {
    let out = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!("running {program} (is it installed? `cargo xtask setup` installs it)")
        })?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn ip(args: &[&str]) -> Result<String> {
    run("ip", args)
}

pub fn ip_ns(ns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// `ip_ns` at real-time priority (SCHED_FIFO, through `chrt`), for a
/// failure the lab injects while traffic is measured (a port taken down).
/// `ip` holds RTNL while the kernel closes the device, and the kernel's
/// carrier notification to the MSEE waits for it: at normal priority on a
/// busy machine, `ip` preempted half-way stretched a customer port going
/// down into tens of milliseconds of loss before the MSEE could hear of it
/// (two CPU-bound loops beside the failover test: 5-214 ms; the same at FIFO
/// priority: 0-3 ms). A real port goes down at once; so should the lab's.
/// `chrt` rather than a `pre_exec` hook: a hook makes the standard library
/// fork the whole caller (the packet engine's memory included) instead of
/// spawning, which cost the failover bench tens of milliseconds per
/// failure. Where real-time priority is not allowed, `ip` runs at normal
/// priority.
pub fn ip_ns_urgent(ns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-f", "30", "ip", "-n", ns];
    full.extend_from_slice(args);
    match run("chrt", &full) {
        // chrt's own complaint, before it ran `ip` (e.g. a cgroup without a
        // real-time budget).
        Err(e) if format!("{e:#}").contains("failed to set pid") => ip_ns(ns, args),
        other => other,
    }
}

/// Frames XDP redirects into a veth need its peer's NAPI (GRO on), and a
/// sender whose frames are redirected on their way must put whole
/// checksums in them (tx offload off): a redirected frame loses the
/// offload state that would have let the receiver trust a partial one.
pub fn gro_on_tx_off(ns: &str, dev: &str) -> Result<()> {
    run(
        "ip",
        &[
            "netns", "exec", ns, "ethtool", "-K", dev, "gro", "on", "tx", "off",
        ],
    )?;
    Ok(())
}

/// A veth `a` in `ns_a` to `b` in `ns_b` (which may be `ns_a`), both up.
pub fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<()> {
    ip_ns(
        ns_a,
        &[
            "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ],
    )?;
    ip_ns(ns_a, &["link", "set", a, "up"])?;
    ip_ns(ns_b, &["link", "set", b, "up"])?;
    Ok(())
}

/// Set a sysctl inside a namespace.
pub fn sysctl_ns(ns: &str, key: &str, value: &str) -> Result<String> {
    let kv = format!("{key}={value}");
    run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", &kv])
}

/// Transmit queue `queue` of `ifname` in `ns` is the one for sockets on
/// `cpu` (XPS; the kernel hashes flows over the queues otherwise).
pub fn set_xps_cpu(ns: &str, ifname: &str, queue: u16, cpu: usize) -> Result<()> {
    if cpu >= 64 {
        bail!("XPS masks here go up to CPU 63, not {cpu}");
    }
    let path = format!("/sys/class/net/{ifname}/queues/tx-{queue}/xps_cpus");
    // `ip netns exec` mounts the namespace's own /sys for the command.
    let cmd = format!("printf %x {} > {path}", 1u64 << cpu);
    run("ip", &["netns", "exec", ns, "sh", "-c", &cmd]).map(drop)
}

/// Read a sysctl inside a namespace.
pub fn sysctl_get_ns(ns: &str, key: &str) -> Result<String> {
    Ok(run("ip", &["netns", "exec", ns, "sysctl", "-n", key])?
        .trim()
        .to_owned())
}

/// The MAC address of `ifname` in namespace `ns`.
pub fn mac_of(ns: &str, ifname: &str) -> Result<[u8; 6]> {
    let out = ip_ns(ns, &["-o", "link", "show", "dev", ifname])?;
    let text = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .with_context(|| format!("{ifname} in {ns} has no Ethernet address"))?;
    parse_mac(text)
}

pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        bail!("bad MAC address {text:?}");
    }
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).with_context(|| format!("bad MAC address {text:?}"))?;
    }
    Ok(mac)
}

/// The ifindex of `ifname` in namespace `ns`.
pub fn ifindex_of(ns: &str, ifname: &str) -> Result<u32> {
    let out = ip_ns(ns, &["-o", "link", "show", "dev", ifname])?;
    out.split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("cannot read the ifindex of {ifname} in {ns}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressroute_addressing() {
        let t = Topology::new("t").unwrap();
        assert_eq!(t.primary.customer, Ipv4Addr::new(192, 168, 100, 129));
        assert_eq!(t.primary.msee, Ipv4Addr::new(192, 168, 100, 130));
        assert_eq!(t.secondary.customer, Ipv4Addr::new(192, 168, 100, 133));
        assert_eq!(t.secondary.msee, Ipv4Addr::new(192, 168, 100, 134));
        assert!(LinkAddrs::from_slash30(Ipv4Addr::new(10, 0, 0, 1)).is_err());
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(validate_prefix("lab1").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("a b").is_err());
        assert!(validate_prefix("../x").is_err());
        assert_eq!(Topology::new("x1").unwrap().ns_msee(), "x1-msee");
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:00:0a:ff:00:01").unwrap(),
            [2, 0, 10, 255, 0, 1]
        );
        assert!(parse_mac("02:00:0a").is_err());
        assert!(parse_mac("zz:00:0a:ff:00:01").is_err());
    }
}
