//! Runs one session: executes FSM actions on a socket and timer deadlines,
//! and turns socket reads, timer expiries and commands back into events.

use crate::fsm::{Action, DownReason, Event, Negotiated, Session, Timer};
use crate::wire::Update;
use std::collections::VecDeque;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where and how to reach the peer.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub peer: SocketAddr,
    pub local: Option<SocketAddr>,
    pub md5_key: Option<Vec<u8>>,
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
    Down(DownReason),
    Routes(Update),
    RouteRefreshRequested { afi: u16, safi: u8 },
}

const TIMERS: [Timer; 4] = [
    Timer::ConnectRetry,
    Timer::Hold,
    Timer::Keepalive,
    Timer::IdleHold,
];

struct Driver {
    session: Session,
    peer: PeerConfig,
    stream: Option<TcpStream>,
    deadlines: [Option<Instant>; 4],
    connecting: Option<JoinHandle<()>>,
    connected_tx: mpsc::Sender<std::io::Result<TcpStream>>,
    out: mpsc::Sender<SessionEvent>,
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
        stream: None,
        deadlines: [None; 4],
        connecting: None,
        connected_tx,
        out,
    };
    let mut buf = vec![0u8; 8192];
    loop {
        let next = d
            .deadlines
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (t, i)))
            .min();
        let event = tokio::select! {
            input = inbox.recv() => match input {
                None => {
                    d.apply(Event::ManualStop).await;
                    return;
                }
                Some(Input::Event(e)) => e,
                Some(Input::Incoming(s)) => {
                    if !d.session.accepts_connection() {
                        // One connection per peer (see fsm docs).
                        tracing::info!(peer = %d.peer.peer, "extra connection refused");
                        continue;
                    }
                    d.abort_connect();
                    d.stream = Some(s);
                    Event::TcpConnected
                }
            },
            r = connected_rx.recv() => match r {
                Some(Ok(s)) if d.session.accepts_connection() => {
                    d.stream = Some(s);
                    Event::TcpConnected
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    tracing::debug!(peer = %d.peer.peer, error = %e, "connect failed");
                    Event::TcpFailed
                }
                None => continue,
            },
            n = async { d.stream.as_mut().expect("guarded").read(&mut buf).await },
                if d.stream.is_some() => match n {
                Ok(0) | Err(_) => {
                    d.stream = None;
                    Event::TcpClosed
                }
                Ok(n) => Event::BytesReceived(buf[..n].to_vec()),
            },
            _ = tokio::time::sleep_until(next.map_or_else(Instant::now, |(t, _)| t)),
                if next.is_some() => {
                let i = next.expect("guarded").1;
                d.deadlines[i] = None;
                Event::TimerExpired(TIMERS[i])
            }
        };
        if !d.apply(event).await {
            return;
        }
    }
}

impl Driver {
    fn abort_connect(&mut self) {
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
                        let (p, tx) = (self.peer.clone(), self.connected_tx.clone());
                        self.connecting = Some(tokio::spawn(async move {
                            let r = super::connect(p.local, p.peer, p.md5_key.as_deref()).await;
                            let _ = tx.send(r).await;
                        }));
                    }
                    Action::Send(m) => {
                        let Some(s) = self.stream.as_mut() else {
                            continue;
                        };
                        match m.encode() {
                            Ok(bytes) => {
                                if s.write_all(&bytes).await.is_err() {
                                    self.stream = None;
                                    queue.push_back(Event::TcpClosed);
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "message not sent"),
                        }
                    }
                    Action::ArmTimer(t, dur) => {
                        self.deadlines[t as usize] = Some(Instant::now() + dur);
                    }
                    Action::CancelTimer(t) => self.deadlines[t as usize] = None,
                    Action::Close => {
                        self.abort_connect();
                        if let Some(mut s) = self.stream.take() {
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
                }
            }
        }
        true
    }
}
