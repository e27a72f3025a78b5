//! Carrier monitor: the kernel tells us (RTNLGRP_LINK multicast) the moment
//! a MSEE port's carrier or admin state changes, and the daemon flips that
//! link in the dataplane in one map write. Event-driven, no polling.
//!
//! Multicast is lossy: when the socket's buffer fills (a burst of link
//! events while this thread was busy), the kernel drops what does not fit
//! and the next read says so (ENOBUFS, an overrun). An event lost there
//! would leave a dead port carrying traffic, so after an overrun the
//! monitor reads every port's state again and reports what changed. If
//! the stream itself ends (the socket failed), it opens a new one, after a
//! short backoff, and resynchronises the same way: monitoring never stops
//! silently.
use std::{collections::HashMap, time::Duration};

use anyhow::{Context as _, Result};
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{RouteNetlinkMessage, link::LinkFlag};
use netlink_sys::{AsyncSocket as _, SocketAddr};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// A port whose carrier changed: `up` is admin up and lower layer up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarrierEvent {
    pub ifindex: u32,
    pub up: bool,
}

/// Whether the flags of a link say it can carry traffic.
pub fn carrier_up(flags: &[LinkFlag]) -> bool {
    flags.contains(&LinkFlag::Up) && flags.contains(&LinkFlag::LowerUp)
}

/// What the monitor reads from the kernel (netlink, or a script in tests).
pub trait LinkSource: Send + 'static {
    type Messages: Stream<Item = NetlinkMessage<RouteNetlinkMessage>> + Unpin + Send;
    /// A fresh subscription to link events.
    fn subscribe(&mut self) -> impl Future<Output = Result<Self::Messages>> + Send;
    /// Every link's carrier now, by ifindex.
    fn snapshot(&mut self) -> impl Future<Output = Result<HashMap<u32, bool>>> + Send;
}

/// The kernel's rtnetlink: a multicast socket for events, a request
/// socket for the state of every link.
struct Netlink {
    requests: Option<rtnetlink::Handle>,
}

/// The multicast socket's items, reduced to their messages.
type Messages = futures::stream::Map<
    futures::channel::mpsc::UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    fn((NetlinkMessage<RouteNetlinkMessage>, SocketAddr)) -> NetlinkMessage<RouteNetlinkMessage>,
>;

impl LinkSource for Netlink {
    type Messages = Messages;

    async fn subscribe(&mut self) -> Result<Self::Messages> {
        let (mut conn, _handle, messages) =
            rtnetlink::new_connection().context("opening an rtnetlink socket for link events")?;
        conn.socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))
            .context("subscribing to link events")?;
        tokio::spawn(conn);
        let message: fn(
            (NetlinkMessage<RouteNetlinkMessage>, SocketAddr),
        ) -> NetlinkMessage<RouteNetlinkMessage> = |(m, _)| m;
        Ok(messages.map(message))
    }

    async fn snapshot(&mut self) -> Result<HashMap<u32, bool>> {
        let handle = match &self.requests {
            Some(h) => h.clone(),
            None => {
                let (conn, h, _) =
                    rtnetlink::new_connection().context("opening an rtnetlink socket")?;
                tokio::spawn(conn);
                self.requests = Some(h.clone());
                h
            }
        };
        let mut links = handle.link().get().execute();
        let mut out = HashMap::new();
        loop {
            match links.try_next().await {
                Ok(Some(l)) => {
                    out.insert(l.header.index, carrier_up(&l.header.flags));
                }
                Ok(None) => return Ok(out),
                Err(e) => {
                    // The request socket may be what failed: a new one next time.
                    self.requests = None;
                    return Err(e).context("reading the links' state");
                }
            }
        }
    }
}

/// Watch the links of `ports` (ifindex -> carrier as last known; in the
/// current network namespace) and send an event for each change of their
/// carrier.
pub fn watch(ports: HashMap<u32, bool>) -> Result<mpsc::UnboundedReceiver<CarrierEvent>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let source = Netlink { requests: None };
    tokio::spawn(monitor(source, ports, tx, Duration::from_millis(100)));
    Ok(rx)
}

/// The monitor's loop: events from `source`, deduplicated against `known`;
/// after each subscription (the first one too: `known` is as of the
/// daemon's start, and the ports may have changed since) and after an
/// overrun, a snapshot of every port. Returns when nobody listens any more.
pub async fn monitor<S: LinkSource>(
    mut source: S,
    mut known: HashMap<u32, bool>,
    tx: mpsc::UnboundedSender<CarrierEvent>,
    backoff: Duration,
) {
    // Sends `up` for `ifindex` if it is a port and it changed; false when
    // nobody listens any more.
    let report = |known: &mut HashMap<u32, bool>, ifindex: u32, up: bool| -> bool {
        match known.get_mut(&ifindex) {
            Some(last) if *last != up => {
                *last = up;
                tx.send(CarrierEvent { ifindex, up }).is_ok()
            }
            _ => !tx.is_closed(),
        }
    };
    let mut delay = backoff;
    loop {
        let mut messages = match source.subscribe().await {
            Ok(m) => m,
            Err(e) => {
                warn!("carrier monitor: {e:#}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // Subscribed first, then read: nothing falls between the two.
        let mut resync = true;
        loop {
            if resync {
                match source.snapshot().await {
                    Ok(states) => {
                        resync = false;
                        delay = backoff;
                        let mut states: Vec<(u32, bool)> = states.into_iter().collect();
                        states.sort_unstable();
                        for (ifindex, up) in states {
                            if !report(&mut known, ifindex, up) {
                                return;
                            }
                        }
                        debug!("carrier monitor: every port's state read");
                    }
                    Err(e) => {
                        warn!("carrier monitor: {e:#}; retrying in {delay:?}");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let Some(msg) = messages.next().await else {
                warn!("carrier monitor: the kernel's event stream ended; subscribing again");
                tokio::time::sleep(delay).await;
                break;
            };
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link))
                    if !report(
                        &mut known,
                        link.header.index,
                        carrier_up(&link.header.flags),
                    ) =>
                {
                    return;
                }
                NetlinkPayload::Overrun(_) => {
                    warn!(
                        "carrier monitor: events lost (netlink overrun); reading every port's state"
                    );
                    resync = true;
                }
                _ => {}
            }
            if tx.is_closed() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        sync::{Arc, Mutex},
    };

    use netlink_packet_core::NetlinkHeader;
    use netlink_packet_route::link::LinkMessage;

    use super::*;

    #[test]
    fn carrier_needs_admin_and_lower_up() {
        assert!(carrier_up(&[
            LinkFlag::Up,
            LinkFlag::Broadcast,
            LinkFlag::LowerUp,
            LinkFlag::Running
        ]));
        assert!(!carrier_up(&[LinkFlag::Up, LinkFlag::Broadcast]));
        assert!(!carrier_up(&[LinkFlag::LowerUp]));
    }

    fn new_link(ifindex: u32, up: bool) -> NetlinkMessage<RouteNetlinkMessage> {
        let mut l = LinkMessage::default();
        l.header.index = ifindex;
        l.header.flags = if up {
            vec![LinkFlag::Up, LinkFlag::LowerUp]
        } else {
            vec![LinkFlag::Up]
        };
        NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)),
        )
    }

    fn overrun() -> NetlinkMessage<RouteNetlinkMessage> {
        NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::Overrun(Vec::new()),
        )
    }

    /// A kernel in a script: each subscription's messages (the stream ends
    /// after them), and the state each snapshot finds.
    #[derive(Clone, Default)]
    struct Script {
        subscriptions: Arc<Mutex<VecDeque<Vec<NetlinkMessage<RouteNetlinkMessage>>>>>,
        snapshots: Arc<Mutex<VecDeque<HashMap<u32, bool>>>>,
        subscribed: Arc<Mutex<usize>>,
    }

    impl LinkSource for Script {
        type Messages =
            futures::stream::Iter<std::vec::IntoIter<NetlinkMessage<RouteNetlinkMessage>>>;

        async fn subscribe(&mut self) -> Result<Self::Messages> {
            *self.subscribed.lock().unwrap() += 1;
            let next = self.subscriptions.lock().unwrap().pop_front();
            match next {
                Some(m) => Ok(futures::stream::iter(m)),
                // Nothing more to say: wait forever, as a quiet kernel does.
                None => futures::future::pending().await,
            }
        }

        async fn snapshot(&mut self) -> Result<HashMap<u32, bool>> {
            self.snapshots
                .lock()
                .unwrap()
                .pop_front()
                .ok_or_else(|| anyhow::anyhow!("no snapshot scripted"))
        }
    }

    fn run(script: Script, known: &[(u32, bool)], expect: usize) -> Vec<CarrierEvent> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(monitor(
                script,
                known.iter().copied().collect(),
                tx,
                Duration::from_millis(1),
            ));
            let mut got = Vec::new();
            while got.len() < expect {
                match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
                    Ok(Some(e)) => got.push(e),
                    _ => break,
                }
            }
            // Nothing more comes.
            assert!(
                tokio::time::timeout(Duration::from_millis(50), rx.recv())
                    .await
                    .is_err(),
                "only {expect} events"
            );
            task.abort();
            got
        })
    }

    #[test]
    fn changes_of_watched_ports_are_reported_once() {
        let s = Script::default();
        s.subscriptions.lock().unwrap().push_back(vec![
            new_link(3, true),  // no change
            new_link(3, false), // change
            new_link(3, false), // repeat
            new_link(9, false), // not a port
            new_link(4, true),
        ]);
        s.snapshots
            .lock()
            .unwrap()
            .push_back([(3, true), (4, false)].into());
        let got = run(s, &[(3, true), (4, false)], 2);
        assert_eq!(
            got,
            [
                CarrierEvent {
                    ifindex: 3,
                    up: false
                },
                CarrierEvent {
                    ifindex: 4,
                    up: true
                }
            ]
        );
    }

    #[test]
    fn an_overrun_reads_every_port_again() {
        let s = Script::default();
        // Port 4 went down and the event was among those lost.
        s.subscriptions
            .lock()
            .unwrap()
            .push_back(vec![new_link(3, false), overrun()]);
        s.snapshots
            .lock()
            .unwrap()
            .push_back([(3, true), (4, true)].into());
        s.snapshots
            .lock()
            .unwrap()
            .push_back([(3, false), (4, false), (9, true)].into());
        let got = run(s, &[(3, true), (4, true)], 2);
        assert_eq!(
            got,
            [
                CarrierEvent {
                    ifindex: 3,
                    up: false
                },
                CarrierEvent {
                    ifindex: 4,
                    up: false
                }
            ]
        );
    }

    #[test]
    fn what_changed_before_the_first_subscription_is_reported() {
        let s = Script::default();
        s.subscriptions.lock().unwrap().push_back(Vec::new());
        s.snapshots
            .lock()
            .unwrap()
            .push_back([(3, false), (4, true)].into());
        let got = run(s, &[(3, true), (4, true)], 1);
        assert_eq!(
            got,
            [CarrierEvent {
                ifindex: 3,
                up: false
            }]
        );
    }

    #[test]
    fn a_stream_that_ends_is_replaced_and_the_gap_read_again() {
        let s = Script::default();
        s.subscriptions
            .lock()
            .unwrap()
            .push_back(vec![new_link(3, false)]);
        s.snapshots
            .lock()
            .unwrap()
            .push_back([(3, true), (4, true)].into());
        // While no socket listened, port 3 came back and port 4 went down.
        s.snapshots
            .lock()
            .unwrap()
            .push_back([(3, true), (4, false)].into());
        s.subscriptions
            .lock()
            .unwrap()
            .push_back(vec![new_link(4, true)]);
        let subscribed = s.subscribed.clone();
        let got = run(s, &[(3, true), (4, true)], 4);
        assert_eq!(
            got.iter().map(|e| (e.ifindex, e.up)).collect::<Vec<_>>(),
            [(3, false), (3, true), (4, false), (4, true)]
        );
        assert!(*subscribed.lock().unwrap() >= 2);
    }
}
