//! What the daemon asks the kernel over rtnetlink: a port's ifindex, MAC and
//! IPv4 and IPv6 addresses, and the MAC of a neighbour (asking the kernel to resolve
//! it with NTF_USE, so ARP stays the kernel's job).
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use futures::TryStreamExt as _;
use netlink_packet_route::{
    address::AddressAttribute,
    link::{LinkAttribute, LinkXdp},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlag, NeighbourState},
};
use rtnetlink::Handle;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// IPv4 addresses with their prefix lengths.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// Global IPv6 addresses with their prefix lengths (link-local ones are
    /// the kernel's business: ND).
    pub addrs6: Vec<(Ipv6Addr, u8)>,
    /// Admin up with carrier (kept current by the link monitor).
    pub carrier: bool,
    /// The id of an XDP program attached to it (native or generic), if any.
    pub xdp_prog: Option<u32>,
}

impl Interface {
    /// Whether `addr` is inside one of this interface's connected subnets.
    pub fn connects(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(addr) => self
                .addrs
                .iter()
                .any(|(a, len)| same_subnet(*a, addr, *len)),
            IpAddr::V6(addr) => self
                .addrs6
                .iter()
                .any(|(a, len)| same_subnet6(*a, addr, *len)),
        }
    }

    /// Every address on the port, both families.
    pub fn all_addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addrs
            .iter()
            .map(|(a, _)| IpAddr::V4(*a))
            .chain(self.addrs6.iter().map(|(a, _)| IpAddr::V6(*a)))
    }
}

pub fn same_subnet6(a: Ipv6Addr, b: Ipv6Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    };
    u128::from(a) & mask == u128::from(b) & mask
}

pub fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    u32::from(a) & mask == u32::from(b) & mask
}

pub fn connect() -> Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection().context("opening an rtnetlink socket")?;
    tokio::spawn(conn);
    Ok(handle)
}

/// Look an interface up by name in the current namespace.
pub async fn interface(handle: &Handle, name: &str) -> Result<Interface> {
    let link = handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("interface {name} does not exist in this network namespace"))?;
    let ifindex = link.header.index;
    let carrier = crate::linkmon::carrier_up(&link.header.flags);
    let mac = link
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(bytes) if bytes.len() == 6 => bytes.as_slice().try_into().ok(),
            _ => None,
        })
        .ok_or_else(|| anyhow!("interface {name} has no Ethernet address"))?;
    let xdp_prog = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Xdp(xdp) => xdp.iter().find_map(|x| match x {
            LinkXdp::ProgId(id) | LinkXdp::DrvProgId(id) | LinkXdp::SkbProgId(id) if *id != 0 => {
                Some(*id)
            }
            _ => None,
        }),
        _ => None,
    });
    let mut addrs = Vec::new();
    let mut addrs6 = Vec::new();
    let mut stream = handle
        .address()
        .get()
        .set_link_index_filter(ifindex)
        .execute();
    while let Some(msg) = stream.try_next().await.context("listing addresses")? {
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Address(IpAddr::V4(a)) => addrs.push((*a, msg.header.prefix_len)),
                AddressAttribute::Address(IpAddr::V6(a)) if !a.is_unicast_link_local() => {
                    addrs6.push((*a, msg.header.prefix_len));
                }
                _ => {}
            }
        }
    }
    Ok(Interface {
        name: name.to_owned(),
        ifindex,
        mac,
        addrs,
        addrs6,
        carrier,
        xdp_prog,
    })
}

/// The neighbour's MAC if the kernel has a usable entry for it.
pub async fn lookup_neighbour(
    handle: &Handle,
    ifindex: u32,
    addr: Ipv4Addr,
) -> Result<Option<[u8; 6]>> {
    let mut stream = handle.neighbours().get().execute();
    while let Some(msg) = stream.try_next().await.context("listing neighbours")? {
        if msg.header.ifindex != ifindex
            || matches!(
                msg.header.state,
                NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
            )
        {
            continue;
        }
        let mut dst = None;
        let mut lladdr = None;
        for attr in &msg.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => dst = Some(*a),
                NeighbourAttribute::LinkLocalAddress(l) if l.len() == 6 => {
                    lladdr = l.as_slice().try_into().ok();
                }
                _ => {}
            }
        }
        if dst == Some(addr) && lladdr.is_some() {
            return Ok(lladdr);
        }
    }
    Ok(None)
}

/// Ask the kernel to (re)resolve `addr` on `ifindex` without waiting
/// (NTF_USE: the kernel sends the ARP request itself).
pub async fn probe_neighbour(handle: &Handle, ifindex: u32, addr: Ipv4Addr) -> Result<()> {
    let mut req = handle.neighbours().add(ifindex, addr.into()).replace();
    req.message_mut().header.state = NeighbourState::None;
    req.message_mut().header.flags = vec![NeighbourFlag::Use];
    req.execute()
        .await
        .with_context(|| format!("asking the kernel to resolve {addr}"))
}

/// Ask the kernel to resolve `addr` on `ifindex` (NTF_USE: the kernel sends
/// the ARP request itself), then wait up to `timeout` for the answer.
pub async fn resolve_neighbour(
    handle: &Handle,
    ifindex: u32,
    addr: Ipv4Addr,
    timeout: Duration,
) -> Result<[u8; 6]> {
    if let Some(mac) = lookup_neighbour(handle, ifindex, addr).await? {
        return Ok(mac);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        probe_neighbour(handle, ifindex, addr).await?;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(mac) = lookup_neighbour(handle, ifindex, addr).await? {
                return Ok(mac);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("neighbour {addr} did not answer ARP within {timeout:?}");
        }
    }
}

/// Puts `addr`/`len` on `ifindex` (IPv6 without duplicate address
/// detection: the MSEE's BGP sockets bind to it at once).
pub async fn add_address(handle: &Handle, ifindex: u32, addr: IpAddr, len: u8) -> Result<()> {
    let mut req = handle.address().add(ifindex, addr, len);
    if addr.is_ipv6() {
        req.message_mut()
            .header
            .flags
            .push(netlink_packet_route::address::AddressHeaderFlag::Nodad);
    }
    req.execute()
        .await
        .with_context(|| format!("adding {addr}/{len} to ifindex {ifindex}"))
}

/// Takes `addr`/`len` off `ifindex`.
pub async fn del_address(handle: &Handle, ifindex: u32, addr: IpAddr, len: u8) -> Result<()> {
    use netlink_packet_route::{AddressFamily, address::AddressMessage};
    let mut msg = AddressMessage::default();
    msg.header.index = ifindex;
    msg.header.prefix_len = len;
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.attributes.push(AddressAttribute::Address(addr));
    if addr.is_ipv4() {
        msg.attributes.push(AddressAttribute::Local(addr));
    }
    handle
        .address()
        .del(msg)
        .execute()
        .await
        .with_context(|| format!("removing {addr}/{len} from ifindex {ifindex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let a = Ipv4Addr::new(192, 168, 100, 130);
        assert!(same_subnet(a, Ipv4Addr::new(192, 168, 100, 129), 30));
        assert!(!same_subnet(a, Ipv4Addr::new(192, 168, 100, 133), 30));
        assert!(same_subnet(a, Ipv4Addr::new(192, 168, 100, 133), 29));
        assert!(same_subnet(a, Ipv4Addr::new(8, 8, 8, 8), 0));
        assert!(!same_subnet(a, Ipv4Addr::new(192, 168, 100, 131), 32));
        let b: Ipv6Addr = "fd00:100::2".parse().unwrap();
        assert!(same_subnet6(b, "fd00:100::1".parse().unwrap(), 126));
        assert!(!same_subnet6(b, "fd00:100::5".parse().unwrap(), 126));
        assert!(same_subnet6(b, "fd00:100::5".parse().unwrap(), 125));
        assert!(same_subnet6(b, "::".parse().unwrap(), 0));
    }
}
