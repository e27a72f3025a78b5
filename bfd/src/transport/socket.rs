//! RFC 5881 sockets: receive on port 3784 with the TTL / hop limit of each
//! datagram (IP_RECVTTL / IPV6_RECVHOPLIMIT), send from a per-session
//! source port in 49152-65535 with TTL / hop limit 255 and DSCP CS6
//! (network control, as routers mark BFD), both bound to the local address
//! and, when given, to the interface (SO_BINDTODEVICE).

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashSet;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// TOS octet for DSCP CS6.
const TOS_CS6: u32 = 0xc0;

/// The socket address of `ip:port`, with the interface's scope for an
/// IPv6 link-local address.
pub(crate) fn sockaddr(ip: IpAddr, port: u16, ifname: Option<&str>) -> io::Result<SocketAddr> {
    Ok(match ip {
        IpAddr::V4(a) => SocketAddr::new(IpAddr::V4(a), port),
        IpAddr::V6(a) => {
            let scope = match ifname {
                Some(dev) if a.is_unicast_link_local() => {
                    nix::net::if_::if_nametoindex(dev).map_err(io::Error::from)?
                }
                _ => 0,
            };
            SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope))
        }
    })
}

fn new_socket(local: IpAddr, ifname: Option<&str>) -> io::Result<Socket> {
    let domain = if local.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    if local.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if let Some(dev) = ifname {
        s.bind_device(Some(dev.as_bytes()))
            .map_err(|e| io::Error::new(e.kind(), format!("SO_BINDTODEVICE {dev}: {e}")))?;
    }
    Ok(s)
}

/// The socket that receives Control packets for `local` (on `ifname`).
pub(crate) fn rx_socket(local: IpAddr, ifname: Option<&str>) -> io::Result<UdpSocket> {
    let s = new_socket(local, ifname)?;
    match local {
        IpAddr::V4(_) => setsockopt(&s, sockopt::Ipv4RecvTtl, &true)?,
        IpAddr::V6(_) => setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?,
    }
    let addr = sockaddr(local, crate::CONTROL_PORT, ifname)?;
    s.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    UdpSocket::from_std(s.into())
}

/// A sending socket on a free source port of RFC 5881's range, not in
/// `used`, trying from `first` on. Returns the socket and its port.
pub(crate) fn tx_socket(
    local: IpAddr,
    ifname: Option<&str>,
    used: &mut HashSet<(IpAddr, u16)>,
    first: u16,
) -> io::Result<(UdpSocket, u16)> {
    let s = new_socket(local, ifname)?;
    match local {
        IpAddr::V4(_) => {
            s.set_ttl_v4(255)?;
            s.set_tos_v4(TOS_CS6)?;
        }
        IpAddr::V6(_) => {
            s.set_unicast_hops_v6(255)?;
            s.set_tclass_v6(TOS_CS6)?;
        }
    }
    let (lo, hi) = (*crate::SOURCE_PORTS.start(), *crate::SOURCE_PORTS.end());
    let span = u32::from(hi - lo) + 1;
    let first = u32::from(first.clamp(lo, hi) - lo);
    let mut last_err = None;
    for i in 0..span {
        let port = lo + ((first + i) % span) as u16;
        if used.contains(&(local, port)) {
            continue;
        }
        match s.bind(&sockaddr(local, port, ifname)?.into()) {
            Ok(()) => {
                used.insert((local, port));
                return Ok((UdpSocket::from_std(s.into())?, port));
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// One received datagram.
pub(crate) struct Datagram {
    pub len: usize,
    pub src: IpAddr,
    /// IP TTL or hop limit; None if the kernel gave none.
    pub ttl: Option<i32>,
}

fn ip_of(a: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    let v6: Ipv6Addr = a.as_sockaddr_in6()?.ip();
    Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
}

/// Reads one datagram without waiting (WouldBlock when none is queued).
pub(crate) fn try_recv(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    sock.try_io(Interest::READABLE, || {
        let mut iov = [IoSliceMut::new(buf)];
        let mut cmsg = nix::cmsg_space!(libc_int, libc_int);
        let msg = recvmsg::<SockaddrStorage>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        let mut ttl = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                        ttl = Some(t);
                    }
                    _ => {}
                }
            }
        }
        let src = msg
            .address
            .as_ref()
            .filter(|a| a.family().is_some())
            .and_then(ip_of)
            .ok_or_else(|| io::Error::other("datagram without a source address"))?;
        Ok(Datagram {
            len: msg.bytes,
            src,
            ttl,
        })
    })
}

#[allow(non_camel_case_types)]
type libc_int = std::ffi::c_int;
