//! Listener and connector with TCP-MD5 signatures and explicit local
//! address binding (an MSEE answers on the peering subnet address only).

use super::driver::Input;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// Linux `struct tcp_md5sig` (include/uapi/linux/tcp.h). With `flags` 0 the
/// kernel ignores `prefixlen` and `ifindex`, which also matches the older
/// layout (`__pad1`, `__pad2`).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

/// Installs (or, with an empty key, removes) the MD5 key used for segments
/// to and from `peer` on socket `fd`. `v6_socket` maps an IPv4 peer to
/// `::ffff:a.b.c.d`, the form the kernel sees on a dual-stack socket.
pub fn set_md5sig(fd: RawFd, peer: IpAddr, key: &[u8], v6_socket: bool) -> io::Result<()> {
    if key.len() > 80 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 key longer than 80 octets",
        ));
    }
    // SAFETY: all-zero is a valid bit pattern for this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let peer = match (peer, v6_socket) {
        (IpAddr::V4(a), true) => IpAddr::V6(a.to_ipv6_mapped()),
        (p, _) => p,
    };
    match peer {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut sig.addr).cast::<libc::sockaddr_in>(), sin) };
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut sig.addr).cast::<libc::sockaddr_in6>(), sin6) };
        }
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: fd is a socket owned by the caller; sig is a valid tcp_md5sig.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn socket_for(addr: &SocketAddr) -> io::Result<TcpSocket> {
    match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
}

/// Connects to `peer`, optionally from `local` and with an MD5 key. The key
/// is set before the SYN so the handshake itself is signed.
pub async fn connect(
    local: Option<SocketAddr>,
    peer: SocketAddr,
    md5_key: Option<&[u8]>,
) -> io::Result<TcpStream> {
    let sock = socket_for(&peer)?;
    if let Some(key) = md5_key {
        set_md5sig(sock.as_raw_fd(), peer.ip(), key, peer.is_ipv6())?;
    }
    if let Some(local) = local {
        sock.bind(local)?;
    }
    let stream = sock.connect(peer).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Listens on `local` with one MD5 key per peer address. Peers without a
/// key here connect unsigned; peers with one must sign or their SYNs are
/// dropped by the kernel.
pub fn listen(local: SocketAddr, md5_keys: &[(IpAddr, Vec<u8>)]) -> io::Result<TcpListener> {
    let sock = socket_for(&local)?;
    sock.set_reuseaddr(true)?;
    for (peer, key) in md5_keys {
        set_md5sig(sock.as_raw_fd(), *peer, key, local.is_ipv6())?;
    }
    sock.bind(local)?;
    sock.listen(64)
}

/// The sessions a listener serves, by peer address; the owner may change
/// it while the listener runs (sessions added, restarted or removed).
pub type PeerTable = std::sync::Arc<std::sync::Mutex<HashMap<IpAddr, mpsc::Sender<Input>>>>;

/// Accepts connections and hands each to the session of its source address;
/// connections from unknown addresses are closed at once.
pub async fn accept_loop(listener: TcpListener, sessions: PeerTable) -> io::Result<()> {
    loop {
        let (stream, from) = listener.accept().await?;
        let ip = match from.ip() {
            IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
            v4 => v4,
        };
        let session = sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ip)
            .cloned();
        match session {
            Some(tx) => {
                stream.set_nodelay(true)?;
                if tx.send(Input::Incoming(stream)).await.is_err() {
                    tracing::debug!(%from, "session gone; dropping connection");
                }
            }
            None => tracing::info!(%from, "connection from an unconfigured peer refused"),
        }
    }
}
