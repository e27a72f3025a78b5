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
/// connections from unknown addresses are closed at once. An accept error
/// (a connection reset before it was taken, EMFILE for a while) never ends
/// the loop: only one that says the listening socket itself is unusable
/// does. A session that is not taking connections (its inbox full) gets
/// none: the peer retries, and no other session waits on it.
pub async fn accept_loop(listener: TcpListener, sessions: PeerTable) -> io::Result<()> {
    let listener = &listener;
    serve(move || listener.accept(), sessions).await
}

/// [`accept_loop`] with its `accept` given (tests inject errors).
async fn serve<F, A>(mut accept: A, sessions: PeerTable) -> io::Result<()>
where
    A: FnMut() -> F,
    F: std::future::Future<Output = io::Result<(TcpStream, SocketAddr)>>,
{
    const FIRST: std::time::Duration = std::time::Duration::from_millis(20);
    let mut backoff = FIRST;
    loop {
        let (stream, from) = match accept().await {
            Ok(c) => {
                backoff = FIRST;
                c
            }
            Err(e) if listener_broken(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "BGP accept failed; listening on");
                // EMFILE and the like last a while: do not spin on them.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                continue;
            }
        };
        let ip = match from.ip() {
            IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
            v4 => v4,
        };
        let session = sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&ip)
            .cloned();
        match session {
            Some(tx) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%from, error = %e, "TCP_NODELAY not set");
                }
                match tx.try_send(Input::Incoming(stream)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(%from, "session busy; connection dropped (the peer retries)");
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        tracing::debug!(%from, "session gone; dropping connection");
                    }
                }
            }
            None => tracing::info!(%from, "connection from an unconfigured peer refused"),
        }
    }
}

/// Errors of accept(2) that are about the listening socket, not about one
/// connection or a passing shortage.
fn listener_broken(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP | libc::EFAULT)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Issue 21: an accept error used to end the accept loop for good.
    #[tokio::test]
    async fn the_listener_survives_accept_errors_and_a_stuck_session() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let table = PeerTable::default();
        // A stuck session (inbox full) on 127.0.0.2, a live one on 127.0.0.1.
        let (stuck_tx, _stuck_rx) = mpsc::channel(1);
        stuck_tx
            .try_send(Input::Event(crate::fsm::Event::ManualStart))
            .unwrap();
        let (live_tx, mut live_rx) = mpsc::channel(4);
        table.lock().unwrap().extend([
            ("127.0.0.2".parse().unwrap(), stuck_tx),
            ("127.0.0.1".parse().unwrap(), live_tx),
        ]);
        let mut errors = vec![
            io::Error::from_raw_os_error(libc::EMFILE),
            io::Error::from_raw_os_error(libc::ECONNABORTED),
            io::Error::from_raw_os_error(libc::ENFILE),
        ];
        let listener = std::sync::Arc::new(listener);
        let l = listener.clone();
        let task = tokio::spawn(serve(
            move || {
                let next = errors.pop();
                let l = l.clone();
                async move {
                    match next {
                        Some(e) => Err(e),
                        None => l.accept().await,
                    }
                }
            },
            table,
        ));
        // First from the stuck session's address: dropped, not waited on.
        let stuck = TcpSocket::new_v4().unwrap();
        stuck.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let _stuck = stuck.connect(at).await.unwrap();
        let _live = TcpStream::connect(at).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(3), live_rx.recv())
            .await
            .expect("the connection reaches its session after three accept errors")
            .unwrap();
        assert!(matches!(got, Input::Incoming(_)));
        assert!(!task.is_finished(), "the loop runs on");
        task.abort();
    }

    #[test]
    fn only_errors_of_the_listening_socket_are_fatal() {
        for e in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::ECONNABORTED,
            libc::EPERM,
            libc::EPROTO,
        ] {
            assert!(!listener_broken(&io::Error::from_raw_os_error(e)), "{e}");
        }
        assert!(listener_broken(&io::Error::from_raw_os_error(libc::EBADF)));
    }
}
