//! A two-namespace lab for the VLAN shim: one veth between a "customer"
//! namespace and an "msee" namespace, both kernels holding the addresses
//! of three peerings (802.1Q 100, 802.1Q 200, and QinQ 802.1ad 300 /
//! 802.1Q 10) on that one untagged interface.
//!
//! ```text
//! [<p>-cust] port ==veth== port [<p>-msee]
//!   vlan_pop (XDP in)           msee (XDP in): attachments (port, 100), (port, 200), (port, 300/10)
//!   vlan_push (TC out)          vlan_push (TC out)
//! ```
//!
//! Everything is removed on drop, even when the test fails: the programs
//! detach, then the namespaces (and the veth in them) are deleted.
use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use dataplane::{AttachMode, LoadOptions, Msee, VlanShim};
use ipnet::IpNet;
use lab::{ip, ip_ns};
use msee_abi::{Attachment, AttachmentKey, Link, LinkRole, PeeringKind, vlan::VlanTags};
use msee_sys::netns;
use traffic::VlanPop;

pub const PORT: &str = "port";
pub const CUST_IFINDEX: u32 = 1101;
pub const MSEE_IFINDEX: u32 = 1102;

/// One peering on the port: its tag, /30 and /126, customer ::1/.1, MSEE ::2/.2.
#[derive(Clone, Copy, Debug)]
pub struct Peering {
    pub link: u32,
    pub domain: u32,
    pub tags: VlanTags,
    pub subnet4: Ipv4Addr,
    pub subnet6: Ipv6Addr,
}

impl Peering {
    pub fn customer4(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet4) + 1)
    }
    pub fn msee4(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet4) + 2)
    }
    pub fn customer6(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.subnet6) + 1)
    }
    pub fn msee6(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.subnet6) + 2)
    }
    pub fn net4(&self) -> IpNet {
        format!("{}/30", self.subnet4).parse().expect("a /30")
    }
    pub fn net6(&self) -> IpNet {
        format!("{}/126", self.subnet6).parse().expect("a /126")
    }
    pub fn contains(&self, a: IpAddr) -> bool {
        self.net4().contains(&a) || self.net6().contains(&a)
    }
}

/// A QinQ frame of a full 1500-byte packet is 1522 bytes, and a veth takes
/// at most its MTU + 18: the QinQ peering's routes carry an IP MTU of 1496
/// on both sides (TCP's MSS follows), as a user of this lab must do.
pub const QINQ_MTU: u32 = 1496;

pub fn peerings() -> [Peering; 3] {
    [
        Peering {
            link: 0,
            domain: 1,
            tags: VlanTags::dot1q(100),
            subnet4: Ipv4Addr::new(192, 168, 100, 128),
            subnet6: "fd00:100::".parse().expect("IPv6 literal"),
        },
        Peering {
            link: 1,
            domain: 2,
            tags: VlanTags::dot1q(200),
            subnet4: Ipv4Addr::new(192, 168, 200, 128),
            subnet6: "fd00:200::".parse().expect("IPv6 literal"),
        },
        Peering {
            link: 2,
            domain: 3,
            tags: VlanTags::qinq(300, 10),
            subnet4: Ipv4Addr::new(203, 0, 113, 0),
            subnet6: "2001:db8:300::".parse().expect("IPv6 literal"),
        },
    ]
}

/// The two namespaces; deleted on drop.
pub struct Namespaces {
    pub cust: String,
    pub msee: String,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.cust, &self.msee] {
            if netns::exists(ns)
                && let Err(e) = ip(&["netns", "del", ns])
            {
                eprintln!("vlan lab cleanup: {e:#}");
            }
        }
    }
}

pub struct ShimLab {
    pub msee: Msee,
    pub msee_shim: VlanShim,
    pub cust_shim: VlanShim,
    pub cust_pop: VlanPop,
    pub msee_mac: [u8; 6],
    pub cust_mac: [u8; 6],
    // Dropped last: the programs detach before the namespaces go.
    pub ns: Namespaces,
}

impl ShimLab {
    pub fn up(prefix: &str) -> Result<Self> {
        lab::validate_prefix(prefix)?;
        let ns = Namespaces {
            cust: format!("{prefix}-cust"),
            msee: format!("{prefix}-msee"),
        };
        for n in [&ns.cust, &ns.msee] {
            if netns::exists(n) {
                bail!("namespace {n} already exists");
            }
        }
        // From here on, `ns` removes whatever was made if anything fails.
        for n in [&ns.cust, &ns.msee] {
            ip(&["netns", "add", n])?;
            ip_ns(n, &["link", "set", "lo", "up"])?;
        }
        ip(&[
            "link",
            "add",
            PORT,
            "netns",
            &ns.cust,
            "index",
            &CUST_IFINDEX.to_string(),
            "type",
            "veth",
            "peer",
            "name",
            PORT,
            "netns",
            &ns.msee,
            "index",
            &MSEE_IFINDEX.to_string(),
        ])?;
        for p in peerings() {
            for (n, a4, a6) in [
                (&ns.cust, p.customer4(), p.customer6()),
                (&ns.msee, p.msee4(), p.msee6()),
            ] {
                ip_ns(n, &["addr", "add", &format!("{a4}/30"), "dev", PORT])?;
                ip_ns(
                    n,
                    &["addr", "add", &format!("{a6}/126"), "dev", PORT, "nodad"],
                )?;
            }
        }
        for n in [&ns.cust, &ns.msee] {
            ip_ns(n, &["link", "set", PORT, "up"])?;
        }
        for p in peerings().iter().filter(|p| p.tags.count() == 2) {
            for (n, a4) in [(&ns.cust, p.customer4()), (&ns.msee, p.msee4())] {
                let (net4, net6, mtu) = (
                    p.net4().to_string(),
                    p.net6().to_string(),
                    QINQ_MTU.to_string(),
                );
                ip_ns(
                    n,
                    &[
                        "route",
                        "replace",
                        &net4,
                        "dev",
                        PORT,
                        "proto",
                        "kernel",
                        "scope",
                        "link",
                        "src",
                        &a4.to_string(),
                        "mtu",
                        &mtu,
                    ],
                )?;
                ip_ns(
                    n,
                    &[
                        "-6", "route", "replace", &net6, "dev", PORT, "proto", "kernel", "metric",
                        "256", "mtu", &mtu,
                    ],
                )?;
            }
        }
        let msee_mac = lab::mac_of(&ns.msee, PORT)?;
        let cust_mac = lab::mac_of(&ns.cust, PORT)?;

        // Programs are attached from threads inside each namespace, where
        // the ifindexes mean these ports.
        let (mut msee, mut msee_shim) =
            netns::on_thread(&ns.msee, || -> Result<(Msee, VlanShim)> {
                let mut m = Msee::load(&LoadOptions::default())?;
                m.add_port(MSEE_IFINDEX)?;
                m.attach(MSEE_IFINDEX, AttachMode::Native)?;
                let mut s = VlanShim::load(&LoadOptions::default())?;
                s.attach_egress(MSEE_IFINDEX)?;
                Ok((m, s))
            })??;
        let (mut cust_shim, mut cust_pop) =
            netns::on_thread(&ns.cust, || -> Result<(VlanShim, VlanPop)> {
                let mut p = VlanPop::load(&LoadOptions::default())?;
                p.attach(CUST_IFINDEX, AttachMode::Native)?;
                let mut s = VlanShim::load(&LoadOptions::default())?;
                s.attach_egress(CUST_IFINDEX)?;
                Ok((s, p))
            })??;

        for p in peerings() {
            let t = p.tags;
            msee.set_attachment(
                AttachmentKey {
                    ifindex: MSEE_IFINDEX,
                    outer_vlan: t.outer_vid,
                    inner_vlan: t.inner_vid,
                },
                Attachment {
                    link: p.link,
                    domain: p.domain,
                    circuit: 1,
                    peering: PeeringKind::Private as u8,
                    role: LinkRole::Primary as u8,
                    mac: msee_mac,
                    local_v4: p.msee4().octets(),
                    local_v6: p.msee6().octets(),
                    ..Default::default()
                },
            )?;
            msee.set_link(
                p.link,
                Link {
                    ifindex: MSEE_IFINDEX,
                    outer_vlan: t.outer_vid,
                    inner_vlan: t.inner_vid,
                    outer_tpid: t.outer_tpid,
                    role: LinkRole::Primary as u8,
                    src_mac: msee_mac,
                    dst_mac: cust_mac,
                    circuit: 1,
                    ..Default::default()
                },
            )?;
            msee.set_link_state(p.link, true)?;
            msee.add_local(p.domain, IpAddr::V4(p.msee4()))?;
            msee.add_local(p.domain, IpAddr::V6(p.msee6()))?;
            for net in [p.net4(), p.net6()] {
                msee_shim.set_egress_tag(MSEE_IFINDEX, net, t)?;
                cust_shim.set_egress_tag(CUST_IFINDEX, net, t)?;
            }
            cust_pop.accept(CUST_IFINDEX, t)?;
        }
        Ok(Self {
            msee,
            msee_shim,
            cust_shim,
            cust_pop,
            msee_mac,
            cust_mac,
            ns,
        })
    }
}

/// `PACKET_OUTGOING`: a frame this host sent.
pub const PACKET_OUTGOING: u8 = 4;

/// An AF_PACKET socket on one interface: every frame sent and received
/// there, as the taps see them (outgoing after TC egress, incoming after XDP).
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    pub fn open(ns: &str, ifindex: u32) -> Result<Self> {
        netns::on_thread(ns, move || -> Result<Self> {
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: socket(2) takes no pointers.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
            if fd < 0 {
                return Err(io::Error::last_os_error()).context("AF_PACKET socket");
            }
            // SAFETY: `fd` is the socket just made; nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let big: libc::c_int = 32 << 20;
            // SAFETY: the value points at a live c_int of the length given.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&big as *const libc::c_int).cast(),
                    4,
                );
            }
            // SAFETY: sockaddr_ll is plain integers: all zeroes is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            // SAFETY: `sll` is a live sockaddr_ll of the length given.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error()).context("binding the capture");
            }
            Ok(Self { fd })
        })?
    }

    /// Every frame captured so far: (packet type, bytes).
    pub fn drain(&self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: sockaddr_ll is plain integers: all zeroes is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buffer and address are live and writable for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n <= 0 {
                return out;
            }
            out.push((sll.sll_pkttype, buf[..n as usize].to_vec()));
        }
    }
}

/// Send raw frames out of `ifindex` in `ns` through an AF_PACKET socket (they
/// take the kernel's transmit path, TC egress included).
pub fn send_raw(ns: &str, ifindex: u32, frames: Vec<Vec<u8>>) -> Result<()> {
    netns::on_thread(ns, move || -> Result<()> {
        // SAFETY: socket(2) takes no pointers.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("AF_PACKET socket");
        }
        // SAFETY: `fd` is the socket just made; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        for f in &frames {
            // SAFETY: sockaddr_ll is plain integers: all zeroes is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&f[..6]);
            // A full transmit queue (ENOBUFS, on a busy machine) is waited
            // out, within a bound: the frame is sent, not dropped here.
            let mut tries = 0;
            loop {
                // SAFETY: frame and address are live for the lengths given.
                let n = unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        f.as_ptr().cast(),
                        f.len(),
                        0,
                        (&sll as *const libc::sockaddr_ll).cast(),
                        size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                if n == f.len() as isize {
                    break;
                }
                let e = io::Error::last_os_error();
                tries += 1;
                if e.raw_os_error() != Some(libc::ENOBUFS) || tries > 1000 {
                    return Err(e).context("sending a raw frame");
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
        Ok(())
    })?
}

/// Wait until `f` holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
