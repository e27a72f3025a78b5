//! Runs one session: executes FSM actions on its (at most two) sockets and
//! timer deadlines, and turns socket reads, timer expiries and commands
//! back into events.

use crate::fsm::{Action, Conn, DownReason, Event, Negotiated, PurgeReason, Session, Timer};
use crate::wire::Update;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where and how to reach the peer.
#[derive(Clone)]
pub struct PeerConfig {
    pub peer: SocketAddr,
    pub local: Option<SocketAddr>,
    pub md5_key: Option<Vec<u8>>,
}

/// The key is a secret: Debug says whether there is one, never what it is.
impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("peer", &self.peer)
            .field("local", &self.local)
            .field("md5_key", &self.md5_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What the driver accepts: FSM events (ManualStart, AdminReset, SendUpdate,
/// ...) and connections accepted by a listener for this peer.
#[derive(Debug)]
pub enum Input {
    Event(Event),
    Incoming(TcpStream),
}

/// Reported to the owner (RIB, management).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Established(Negotiated),
    /// Down: every route of the peer goes, stale ones included.
    Down(DownReason),
    /// Down, but the peer's routes of `families` stay in use, stale
    /// (graceful restart helper: [`Action::SessionDownStale`]).
    DownStale {
        reason: DownReason,
        families: Vec<(u16, u8)>,
        restart_time: Duration,
    },
    /// Remove the peer's routes of a family still marked stale
    /// ([`Action::PurgeStale`]).
    PurgeStale {
        afi: u16,
        safi: u8,
        reason: PurgeReason,
    },
    /// The peer's End-of-RIB for a family ([`Action::EndOfRib`]).
    EndOfRib {
        afi: u16,
        safi: u8,
    },
    Routes(Update),
    RouteRefreshRequested {
        afi: u16,
        safi: u8,
    },
}

fn slot(c: Conn) -> usize {
    match c {
        Conn::Outgoing => 0,
        Conn::Incoming => 1,
    }
}

/// The longest a message may take to go out when no hold timer runs (a
/// session negotiated without one, or a NOTIFICATION on the way down).
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The result of connect attempt number `.0`.
type Connected = (u64, std::io::Result<TcpStream>);

struct Driver {
    session: Session,
    peer: PeerConfig,
    /// Outgoing and incoming connection (RFC 4271 §6.8 keeps both until
    /// the OPENs are compared).
    streams: [Option<TcpStream>; 2],
    deadlines: [Option<Instant>; Timer::ALL.len()],
    connecting: Option<JoinHandle<()>>,
    /// Number of the current connect attempt: the result of an abandoned
    /// one may already be queued, and is dropped.
    attempt: u64,
    connected_tx: mpsc::Sender<Connected>,
    out: mpsc::Sender<SessionEvent>,
}

async fn read(s: &mut Option<TcpStream>, buf: &mut [u8]) -> std::io::Result<usize> {
    s.as_mut().expect("guarded").read(buf).await
}

/// Runs until `inbox` is closed (then stops the session cleanly) or the
/// receiver of `out` is dropped.
pub async fn run(
    session: Session,
    peer: PeerConfig,
    mut inbox: mpsc::Receiver<Input>,
    out: mpsc::Sender<SessionEvent>,
) {
    let (connected_tx, mut connected_rx) = mpsc::channel(1);
    let mut d = Driver {
        session,
        peer,
        streams: [None, None],
        deadlines: [None; Timer::ALL.len()],
        connecting: None,
        attempt: 0,
        connected_tx,
        out,
    };
    let (mut buf_out, mut buf_in) = (vec![0u8; 8192], vec![0u8; 8192]);
    loop {
        let next = d
            .deadlines
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (t, i)))
            .min();
        let [out_stream, in_stream] = &mut d.streams;
        let (has_out, has_in) = (out_stream.is_some(), in_stream.is_some());
        let event = tokio::select! {
            input = inbox.recv() => match input {
                None => {
                    d.apply(Event::ManualStop).await;
                    return;
                }
                Some(Input::Event(e)) => e,
                Some(Input::Incoming(s)) => {
                    if !d.session.accepts_connection(Conn::Incoming) {
                        tracing::info!(peer = %d.peer.peer, state = ?d.session.state(),
                            "extra connection refused");
                        continue;
                    }
                    // Replaces (and so closes) the session's own incoming
                    // connection only when the FSM took the new one for a
                    // graceful-restart peer's restart.
                    d.streams[slot(Conn::Incoming)] = Some(s);
                    Event::TcpConnected(Conn::Incoming)
                }
            },
            r = connected_rx.recv() => match r {
                Some((n, _)) if n != d.attempt => continue,
                Some((_, Ok(s))) => {
                    d.connecting = None;
                    if !d.session.accepts_connection(Conn::Outgoing) {
                        continue;
                    }
                    d.streams[slot(Conn::Outgoing)] = Some(s);
                    Event::TcpConnected(Conn::Outgoing)
                }
                Some((_, Err(e))) => {
                    d.connecting = None;
                    tracing::debug!(peer = %d.peer.peer, error = %e, "connect failed");
                    Event::TcpFailed
                }
                None => continue,
            },
            n = read(out_stream, &mut buf_out), if has_out => match n {
                Ok(0) | Err(_) => {
                    d.streams[slot(Conn::Outgoing)] = None;
                    Event::TcpClosed(Conn::Outgoing)
                }
                Ok(n) => Event::BytesReceived(Conn::Outgoing, buf_out[..n].to_vec()),
            },
            n = read(in_stream, &mut buf_in), if has_in => match n {
                Ok(0) | Err(_) => {
                    d.streams[slot(Conn::Incoming)] = None;
                    Event::TcpClosed(Conn::Incoming)
                }
                Ok(n) => Event::BytesReceived(Conn::Incoming, buf_in[..n].to_vec()),
            },
            _ = tokio::time::sleep_until(next.map_or_else(Instant::now, |(t, _)| t)),
                if next.is_some() => {
                let i = next.expect("guarded").1;
                d.deadlines[i] = None;
                Event::TimerExpired(Timer::ALL[i])
            }
        };
        if !d.apply(event).await {
            return;
        }
    }
}

impl Driver {
    fn abort_connect(&mut self) {
        self.attempt += 1;
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
    }

    /// Feeds one event and executes the resulting actions, including the
    /// events those actions cause (a failed write closes the connection).
    /// Returns false once nobody listens to `out`.
    async fn apply(&mut self, event: Event) -> bool {
        let mut queue = VecDeque::from([event]);
        while let Some(e) = queue.pop_front() {
            for action in self.session.handle(e, std::time::Instant::now()) {
                match action {
                    Action::Connect => {
                        self.abort_connect();
                        let (p, tx, n) =
                            (self.peer.clone(), self.connected_tx.clone(), self.attempt);
                        self.connecting = Some(tokio::spawn(async move {
                            let r = super::connect(p.local, p.peer, p.md5_key.as_deref()).await;
                            let _ = tx.send((n, r)).await;
                        }));
                    }
                    Action::Send(c, m) => {
                        let Some(s) = self.streams[slot(c)].as_mut() else {
                            continue;
                        };
                        // 2-octet ASNs (and AS4_PATH) toward a peer
                        // without the 4-octet AS capability.
                        match m.encode_with(self.session.as_width()) {
                            Ok(bytes) => {
                                // A peer that stops reading fills the socket
                                // and the write waits; while it waits no
                                // timer fires here, so the wait ends when
                                // the hold timer would have.
                                let hold = self.deadlines[Timer::Hold as usize];
                                let until = hold.unwrap_or_else(|| Instant::now() + WRITE_TIMEOUT);
                                match tokio::time::timeout_at(until, s.write_all(&bytes)).await {
                                    Ok(Ok(())) => {}
                                    Ok(Err(_)) => {
                                        self.streams[slot(c)] = None;
                                        queue.push_back(Event::TcpClosed(c));
                                    }
                                    Err(_) => {
                                        tracing::warn!(peer = %self.peer.peer,
                                            "the peer reads nothing of what is sent: connection dropped");
                                        // Half a message may be out: nothing
                                        // more can go on this connection.
                                        self.streams[slot(c)] = None;
                                        queue.push_back(if hold.is_some() {
                                            self.deadlines[Timer::Hold as usize] = None;
                                            Event::TimerExpired(Timer::Hold)
                                        } else {
                                            Event::TcpClosed(c)
                                        });
                                    }
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "message not sent"),
                        }
                    }
                    Action::ArmTimer(t, dur) => {
                        self.deadlines[t as usize] = Some(Instant::now() + dur);
                    }
                    Action::CancelTimer(t) => self.deadlines[t as usize] = None,
                    Action::Close(c) => {
                        if c == Conn::Outgoing {
                            self.abort_connect();
                        }
                        if let Some(mut s) = self.streams[slot(c)].take() {
                            let _ = s.shutdown().await;
                        }
                    }
                    Action::Established(n) => {
                        if self.out.send(SessionEvent::Established(n)).await.is_err() {
                            return false;
                        }
                    }
                    Action::SessionDown(r) => {
                        if self.out.send(SessionEvent::Down(r)).await.is_err() {
                            return false;
                        }
                    }
                    Action::RoutesReceived(u) => {
                        if self.out.send(SessionEvent::Routes(u)).await.is_err() {
                            return false;
                        }
                    }
                    Action::RouteRefreshRequested { afi, safi } => {
                        let e = SessionEvent::RouteRefreshRequested { afi, safi };
                        if self.out.send(e).await.is_err() {
                            return false;
                        }
                    }
                    Action::SessionDownStale {
                        reason,
                        families,
                        restart_time,
                    } => {
                        let e = SessionEvent::DownStale {
                            reason,
                            families,
                            restart_time,
                        };
                        if self.out.send(e).await.is_err() {
                            return false;
                        }
                    }
                    Action::PurgeStale { afi, safi, reason } => {
                        let e = SessionEvent::PurgeStale { afi, safi, reason };
                        if self.out.send(e).await.is_err() {
                            return false;
                        }
                    }
                    Action::EndOfRib { afi, safi } => {
                        let e = SessionEvent::EndOfRib { afi, safi };
                        if self.out.send(e).await.is_err() {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_md5_key() {
        let p = PeerConfig {
            peer: "192.0.2.1:179".parse().unwrap(),
            local: None,
            md5_key: Some(b"s3cret-md5".to_vec()),
        };
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        // Nor the key's bytes as numbers.
        assert!(!shown.contains("115, 51"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("192.0.2.1:179"),
            "{shown}"
        );
    }
}
