//! A lab whose MSEE is programmed directly through the dataplane API, so a
//! test can set up circuits, flip links and read counters itself.
//!
//! Links: 0 = primary, 1 = secondary, 2 = Azure side (one per MSEE port).
//! The test decides which circuit, peering and routing domain each port's
//! attachment belongs to.
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use dataplane::{AttachMode, LoadOptions, Msee};
use lab::{IF_AZURE, IF_AZURE_PEER, IF_PRIMARY, IF_SECONDARY, Lab, Topology, ip_ns};
use msee_abi::{Attachment, AttachmentKey, GroupMember, Link, LinkRole, PeeringKind};
use msee_sys::netns;

pub const PRIMARY: u32 = 0;
pub const SECONDARY: u32 = 1;
pub const AZURE: u32 = 2;

/// An on-prem LAN address behind both customer links.
pub const ONPREM_LAN: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 10);

pub struct LabDataplane {
    pub msee: Msee,
    pub topo: Topology,
    pub port_mac: [[u8; 6]; 3],
    pub port_ifindex: [u32; 3],
    // Dropped last: the program detaches (with `msee`) before the lab goes.
    pub lab: Lab,
}

impl LabDataplane {
    /// Bring a lab up, load `msee`, describe the three links (untagged),
    /// and attach in native mode. Attachments and routes are the test's.
    pub fn up(prefix: &str) -> Result<Self> {
        Self::up_with(Topology::new(prefix)?)
    }

    /// The same on a topology of the caller's (e.g. with more queues).
    pub fn up_with(topo: Topology) -> Result<Self> {
        let lab = Lab::up(topo.clone())?;
        let (msee_ns, onprem, azure) = (topo.ns_msee(), topo.ns_onprem(), topo.ns_azure());
        let ports = [IF_PRIMARY, IF_SECONDARY, IF_AZURE];
        let mut port_mac = [[0u8; 6]; 3];
        let mut port_ifindex = [0u32; 3];
        for (i, ifname) in ports.iter().enumerate() {
            port_mac[i] = lab::mac_of(&msee_ns, ifname)?;
            port_ifindex[i] = lab::ifindex_of(&msee_ns, ifname)?;
        }
        let neighbours = [
            lab::mac_of(&onprem, IF_PRIMARY)?,
            lab::mac_of(&onprem, IF_SECONDARY)?,
            lab::mac_of(&azure, IF_AZURE_PEER)?,
        ];
        // The on-prem LAN, reachable over either link; Azure routes it via the MSEE.
        ip_ns(
            &onprem,
            &["addr", "add", &format!("{ONPREM_LAN}/32"), "dev", "lo"],
        )?;
        for key in [
            "net.ipv4.conf.all.rp_filter",
            "net.ipv4.conf.default.rp_filter",
        ] {
            lab::sysctl_ns(&onprem, key, "2")?;
        }
        ip_ns(
            &azure,
            &[
                "route",
                "add",
                "172.16.0.0/16",
                "via",
                &topo.azure_link_msee.to_string(),
            ],
        )?;

        let ifindexes = port_ifindex;
        let msee = netns::on_thread(&msee_ns, move || -> Result<Msee> {
            let mut m = Msee::load(&LoadOptions::default())?;
            for ifindex in ifindexes {
                m.add_port(ifindex)?;
                m.attach(ifindex, AttachMode::Native)?;
            }
            Ok(m)
        })??;
        let mut me = Self {
            msee,
            topo,
            port_mac,
            port_ifindex,
            lab,
        };
        for (link, role) in [
            (PRIMARY, LinkRole::Primary),
            (SECONDARY, LinkRole::Secondary),
            (AZURE, LinkRole::Azure),
        ] {
            me.msee.set_link(
                link,
                Link {
                    ifindex: me.port_ifindex[link as usize],
                    role: role as u8,
                    src_mac: me.port_mac[link as usize],
                    dst_mac: neighbours[link as usize],
                    circuit: 1,
                    ..Default::default()
                },
            )?;
            me.msee.set_link_state(link, true)?;
        }
        Ok(me)
    }

    /// Frames arriving on `link`'s port belong to `circuit`'s `peering`,
    /// routed in `domain`, where the port's own address is the MSEE's.
    pub fn attach_link(
        &mut self,
        link: u32,
        circuit: u32,
        peering: PeeringKind,
        domain: u32,
    ) -> Result<()> {
        let local = [
            self.topo.primary.msee,
            self.topo.secondary.msee,
            self.topo.azure_link_msee,
        ][link as usize];
        self.msee.add_local(domain, IpAddr::V4(local))?;
        let role = match link {
            PRIMARY => LinkRole::Primary,
            SECONDARY => LinkRole::Secondary,
            _ => LinkRole::Azure,
        };
        self.msee.set_attachment(
            AttachmentKey {
                ifindex: self.port_ifindex[link as usize],
                outer_vlan: 0,
                inner_vlan: 0,
            },
            Attachment {
                link,
                domain,
                circuit,
                peering: peering as u8,
                role: role as u8,
                mac: self.port_mac[link as usize],
                local_v4: [
                    self.topo.primary.msee,
                    self.topo.secondary.msee,
                    self.topo.azure_link_msee,
                ][link as usize]
                    .octets(),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Add one more port of the msee namespace: devmap entry, and `msee`
    /// attached in native mode.
    pub fn attach_port(&mut self, ifindex: u32) -> Result<()> {
        // Both resolve the ifindex in the caller's namespace: enter msee's.
        let attached = netns::within(&self.topo.ns_msee(), || {
            self.msee
                .add_port(ifindex)
                .and_then(|()| self.msee.attach(ifindex, AttachMode::Native))
        })?;
        Ok(attached?)
    }

    pub fn group(&mut self, id: u32, links: &[(u32, u32)]) -> Result<()> {
        let members: Vec<GroupMember> = links
            .iter()
            .map(|(link, preference)| GroupMember {
                link: *link,
                preference: *preference,
            })
            .collect();
        Ok(self.msee.set_group(id, &members)?)
    }
}

/// A UDP socket in `ns`, bound to `addr:port`, optionally to a device and a TOS.
pub fn udp_socket(
    ns: &str,
    addr: Ipv4Addr,
    port: u16,
    dev: Option<&str>,
    tos: Option<u8>,
) -> Result<UdpSocket> {
    let dev = dev.map(str::to_owned);
    netns::on_thread(ns, move || -> Result<UdpSocket> {
        let s = UdpSocket::bind(SocketAddrV4::new(addr, port))?;
        if let Some(dev) = &dev {
            lab::traffic::bind_to_device(&s, dev)?;
        }
        use nix::sys::socket::{setsockopt, sockopt};
        if let Some(tos) = tos {
            setsockopt(&s, sockopt::Ipv4Tos, &libc::c_int::from(tos)).context("IP_TOS")?;
        }
        setsockopt(&s, sockopt::RcvBuf, &(8 << 20)).context("SO_RCVBUF")?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(s)
    })?
    .context("creating a UDP socket")
}

/// Count datagrams arriving on `rx` until `expected` came or 2 s passed without any.
pub fn drain(rx: &UdpSocket, expected: u64) -> u64 {
    let mut buf = [0u8; 2048];
    let mut got = 0;
    let mut idle = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got < expected && idle.elapsed() < Duration::from_secs(2) && Instant::now() < deadline {
        if rx.recv(&mut buf).is_ok() {
            got += 1;
            idle = Instant::now();
        }
    }
    got
}
