//! Topologies for the packet engine's tests, in namespaces made here and
//! removed on drop (also when a test fails): a veth pair, and a triangle
//! whose middle forwards each flow over one of two links to the sink.
//!
//! ```text
//!   [g] ga ---- ma [m] m0 ---- s0 [s]
//!                      m1 ---- s1 [s, or t when split]
//! ```
//!
//! `m` runs `testfwd` on `ma`: UDP to the test ports leaves by the link its
//! flow is mapped to (one map entry per flow, flipped at run time); the
//! rest (ARP, ping) is `m`'s kernel's. IPv6 is off everywhere, so the
//! kernels send nothing unasked.
use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf,
    maps::{Array, DevMap, PerCpuArray},
    programs::{Xdp, XdpMode},
};
use lab::{ip, ip_ns};
use msee_sys::netns;
use traffic::{
    pacing::Rate,
    run::{Endpoint, RunConfig},
};
use traffic_abi::{
    FILTER_UDP_PORTS, TESTFWD_FILTER, TESTFWD_FLOW, TESTFWD_FLOWS, TESTFWD_MACS, TESTFWD_OUT,
    TESTFWD_PROGRAM, TESTFWD_STATS, TestFrameFilter, TestfwdLink,
};

use crate::unique_prefix;

/// Namespaces deleted on drop (which deletes their interfaces too).
pub struct Namespaces(Vec<String>);

impl Namespaces {
    /// Make fresh namespaces (an old one of the same name is removed
    /// first), with IPv6 off.
    pub fn new(names: &[&str]) -> Result<Self> {
        let mut this = Self(Vec::new());
        for n in names {
            if netns::exists(n) {
                ip(&["netns", "del", n])?;
            }
            ip(&["netns", "add", n])?;
            this.0.push((*n).to_owned());
            for key in [
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ] {
                lab::run("ip", &["netns", "exec", n, "sysctl", "-q", "-w", key])?;
            }
        }
        Ok(this)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            if netns::exists(n) {
                let _ = ip(&["netns", "del", n]);
            }
        }
    }
}

/// A veth `a_if` in `a` to `b_if` in `b`, addresses given with prefix
/// length, both up.
pub fn veth(a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) -> Result<()> {
    ip(&[
        "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
    ])?;
    ip_ns(a, &["addr", "add", a_addr, "dev", a_if])?;
    ip_ns(b, &["addr", "add", b_addr, "dev", b_if])?;
    ip_ns(a, &["link", "set", "dev", a_if, "up"])?;
    ip_ns(b, &["link", "set", "dev", b_if, "up"])?;
    Ok(())
}

/// One ICMP echo from namespace `ns` to `addr` (a raw socket: no ping
/// binary needed); true if the reply came within a second.
pub fn ping(ns: &str, addr: &str) -> bool {
    let dst: Ipv4Addr = addr.parse().expect("an IPv4 address");
    netns::on_thread(ns, move || icmp_echo(dst, Duration::from_secs(1))).unwrap_or(false)
}

fn icmp_echo(dst: Ipv4Addr, wait: Duration) -> bool {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    // SAFETY: plain socket calls on a descriptor owned below; buffers are
    // valid for their lengths.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        if fd < 0 {
            return false;
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as u32,
        );
        let id = (msee_sys::monotonic_ns() as u16) ^ (std::process::id() as u16);
        let mut pkt = [0u8; 16];
        pkt[0] = 8; // echo request
        pkt[4..6].copy_from_slice(&id.to_be_bytes());
        pkt[6..8].copy_from_slice(&1u16.to_be_bytes());
        pkt[8..].copy_from_slice(b"msee-eng");
        let c = !crate::packet::fold(crate::packet::ones_sum(&pkt, 0));
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        if libc::sendto(
            fd.as_raw_fd(),
            pkt.as_ptr().cast(),
            pkt.len(),
            0,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        ) < 0
        {
            return false;
        }
        let until = std::time::Instant::now() + wait;
        let mut buf = [0u8; 1500];
        while std::time::Instant::now() < until {
            let n = libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 20 {
                continue;
            }
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            let (ip, icmp) = buf[..n as usize].split_at(ihl.min(n as usize));
            if icmp.len() >= 8
                && icmp[0] == 0
                && icmp[4..6] == id.to_be_bytes()
                && ip[12..16] == dst.octets()
            {
                return true;
            }
        }
        false
    }
}

/// The link is up with a carrier (LOWER_UP).
pub fn carrier_up(ns: &str, ifname: &str) -> bool {
    ip_ns(ns, &["-o", "link", "show", "dev", ifname])
        .map(|s| s.contains("LOWER_UP"))
        .unwrap_or(false)
}

/// `a` (10.77.0.1, `ta`) and `b` (10.77.0.2, `tb`), IPv4 only.
pub struct Pair {
    pub a: String,
    pub b: String,
    _ns: Namespaces,
}

impl Pair {
    pub fn new(tag: &str) -> Result<Self> {
        let p = unique_prefix(tag);
        let (a, b) = (format!("{p}a"), format!("{p}b"));
        let ns = Namespaces::new(&[&a, &b])?;
        veth(&a, "ta", "10.77.0.1/24", &b, "tb", "10.77.0.2/24")?;
        Ok(Self { a, b, _ns: ns })
    }

    /// A run from `ta` to the sink on `tb`, one flow.
    pub fn config(&self, pps: f64, count: u64, duration: Duration) -> RunConfig {
        RunConfig::new(
            Endpoint::new(Some(&self.a), "ta"),
            vec![Endpoint::new(Some(&self.b), "tb")],
            "10.77.0.1".parse().unwrap(),
            "10.77.0.2".parse().unwrap(),
            Rate::Pps(pps),
            count,
            duration,
        )
    }
}

/// `testfwd` attached to one interface: per-flow egress slots.
pub struct Testfwd {
    ebpf: Ebpf,
}

impl Testfwd {
    /// Attach to `ifname` in `ns`, forwarding UDP to `ports` out of `outs`
    /// (slot i = outs[i]: egress interface in `ns`, and the MAC of the
    /// receiver behind it); every flow starts on slot 0.
    pub fn attach(
        ns: &str,
        ifname: &str,
        outs: &[(&str, [u8; 6])],
        ports: (u16, u16),
    ) -> Result<Self> {
        let mut links = Vec::new();
        for (dev, peer_mac) in outs {
            links.push((lab::ifindex_of(ns, dev)?, *peer_mac, lab::mac_of(ns, dev)?));
        }
        let ifindex = lab::ifindex_of(ns, ifname)?;
        let ebpf = netns::on_thread(ns, move || -> Result<Ebpf> {
            let mut ebpf = Ebpf::load(traffic::TESTFWD_OBJECT)?;
            let mut out = DevMap::try_from(
                ebpf.map_mut(TESTFWD_OUT)
                    .ok_or_else(|| anyhow!("no {TESTFWD_OUT}"))?,
            )?;
            for (slot, (ifx, _, _)) in links.iter().enumerate() {
                out.set(slot as u32, *ifx, None, 0)?;
            }
            let mut macs: Array<_, TestfwdLink> = Array::try_from(
                ebpf.map_mut(TESTFWD_MACS)
                    .ok_or_else(|| anyhow!("no {TESTFWD_MACS}"))?,
            )?;
            for (slot, (_, dst, src)) in links.iter().enumerate() {
                macs.set(
                    slot as u32,
                    TestfwdLink {
                        dst_mac: *dst,
                        src_mac: *src,
                    },
                    0,
                )?;
            }
            let mut f: Array<_, TestFrameFilter> = Array::try_from(
                ebpf.map_mut(TESTFWD_FILTER)
                    .ok_or_else(|| anyhow!("no {TESTFWD_FILTER}"))?,
            )?;
            f.set(
                0,
                TestFrameFilter {
                    flags: FILTER_UDP_PORTS,
                    port_lo: ports.0,
                    port_hi: ports.1,
                },
                0,
            )?;
            let p: &mut Xdp = ebpf
                .program_mut(TESTFWD_PROGRAM)
                .ok_or_else(|| anyhow!("no {TESTFWD_PROGRAM}"))?
                .try_into()?;
            p.load()?;
            p.attach_to_if_index(ifindex, XdpMode::Driver)?;
            Ok(ebpf)
        })??;
        Ok(Self { ebpf })
    }

    /// Send UDP to `port` out of `slot` (or `TESTFWD_DROP`).
    pub fn set(&mut self, port: u16, slot: u32) -> Result<()> {
        let mut flow: Array<_, u32> = Array::try_from(
            self.ebpf
                .map_mut(TESTFWD_FLOW)
                .ok_or_else(|| anyhow!("no {TESTFWD_FLOW}"))?,
        )?;
        flow.set(u32::from(port) % TESTFWD_FLOWS, slot, 0)?;
        Ok(())
    }

    /// Frames sent out of `slot` so far.
    pub fn forwarded(&self, slot: u32) -> u64 {
        self.ebpf
            .map(TESTFWD_STATS)
            .and_then(|m| PerCpuArray::<_, u64>::try_from(m).ok())
            .and_then(|m| m.get(&slot, 0).ok())
            .map_or(0, |v| v.iter().sum())
    }
}

pub const DST_PORT: u16 = 20000;

/// The triangle (see the module doc).
pub struct Triangle {
    pub g: String,
    pub m: String,
    /// Namespace of s0.
    pub s: String,
    /// Namespace of s1 (= `s` unless split).
    pub t: String,
    pub fwd: Testfwd,
    // Dropped last: the namespaces go after the program is detached.
    _ns: Namespaces,
}

impl Triangle {
    /// `split`: s1 in a namespace of its own. `flows` flows from port
    /// DST_PORT are forwarded, all by m0 to start with.
    pub fn new(tag: &str, split: bool, flows: u16) -> Result<Self> {
        let p = unique_prefix(tag);
        let (g, m, s, t) = (
            format!("{p}g"),
            format!("{p}m"),
            format!("{p}s"),
            if split {
                format!("{p}t")
            } else {
                format!("{p}s")
            },
        );
        let mut names = vec![g.as_str(), m.as_str(), s.as_str()];
        if split {
            names.push(t.as_str());
        }
        let ns = Namespaces::new(&names)?;
        veth(&g, "ga", "10.78.0.1/24", &m, "ma", "10.78.0.2/24")?;
        veth(&m, "m0", "10.78.1.1/24", &s, "s0", "10.78.1.2/24")?;
        veth(&m, "m1", "10.78.2.1/24", &t, "s1", "10.78.2.2/24")?;
        // The test destination is behind m.
        ip_ns(&g, &["route", "add", "10.78.9.0/24", "via", "10.78.0.2"])?;
        // Frames redirected into m0/m1 need NAPI at s0/s1 even before a
        // sink attaches there.
        for (n, dev) in [(&s, "s0"), (&t, "s1")] {
            lab::run(
                "ip",
                &["netns", "exec", n, "ethtool", "-K", dev, "gro", "on"],
            )
            .with_context(|| format!("GRO on {dev}"))?;
        }
        let outs = [
            ("m0", lab::mac_of(&s, "s0")?),
            ("m1", lab::mac_of(&t, "s1")?),
        ];
        let hi = DST_PORT + flows.max(1) - 1;
        let fwd = Testfwd::attach(&m, "ma", &outs, (DST_PORT, hi))?;
        Ok(Self {
            g,
            m,
            s,
            t,
            fwd,
            _ns: ns,
        })
    }

    /// Send flow `flow` (port DST_PORT + flow) by link `slot` (0 = m0/s0,
    /// 1 = m1/s1).
    pub fn route(&mut self, flow: u16, slot: u32) -> Result<()> {
        self.fwd.set(DST_PORT + flow, slot)
    }

    /// A run from g to the sink on s0 and s1, `flows` flows at `pps` in all.
    pub fn config(&self, flows: u16, pps: f64, count: u64, duration: Duration) -> RunConfig {
        let dst: IpAddr = "10.78.9.9".parse().unwrap();
        let mut c = RunConfig::new(
            Endpoint::new(Some(&self.g), "ga"),
            vec![
                Endpoint::new(Some(&self.s), "s0"),
                Endpoint::new(Some(&self.t), "s1"),
            ],
            "10.78.0.1".parse().unwrap(),
            dst,
            Rate::Pps(pps),
            count,
            duration,
        );
        c.flows = flows;
        c.dst_port = DST_PORT;
        c
    }
}
