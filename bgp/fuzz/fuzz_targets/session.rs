//! The session FSM driven as its transport drives it, by a script read from
//! the input: start and stop, connections made, failed and closed on either
//! side, the peer's OPEN, KEEPALIVE, UPDATE, NOTIFICATION and ROUTE-REFRESH
//! built from input octets (handed in decoded, or as octets cut anywhere),
//! raw octets, the owner's UPDATEs and limits, BFD and carrier loss, and
//! time passing on a fake clock whose timers fire as the transport's do.
//!
//! After every event, on the actions and the state:
//! * nothing panics;
//! * an UPDATE goes out only in Established, and routes come in only in
//!   Established (as the owner sees it: from the Established action to the
//!   SessionDown, which must match the FSM's state after every event);
//! * a message goes out only on a connection that is open;
//! * the peer's prefixes held (the FSM's count, and the routes it handed
//!   to the owner) never exceed the configured limit of their family;
//! * in OpenSent, OpenConfirm and Established (hold time not 0) the Hold
//!   timer runs, no later than the hold time from now; and once the
//!   longest hold time (the OPEN's 240 s, or ours) has passed with nothing
//!   received the session is down. A negotiated hold time of 0 (the
//!   peer's OPEN may say so) means no Hold timer in OpenConfirm and
//!   Established, as RFC 4271 §8.2.2 has it.
#![no_main]

use bgp::fsm::{
    Action, Config, Conn, Event, GracefulRestartConfig, OPEN_HOLD_TIME, Session, State, Timer,
};
use bgp::wire::{
    AFI_IPV4, AFI_IPV6, AsSegment, Capability, GrFamily, GracefulRestart, Message, MpReach,
    MpUnreach, Notification, Open, Origin, PathAttribute, SAFI_UNICAST, Update,
};
use ipnet::{Ipv4Net, Ipv6Net};
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

const OUR_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// At most this many script steps per input (each is cheap; this bounds
/// one input's run time).
const MAX_STEPS: usize = 400;

/// Octets of the input, read front to back; zeros once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn bit(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn conn(b: bool) -> Conn {
    if b { Conn::Incoming } else { Conn::Outgoing }
}

fn slot(c: Conn) -> usize {
    match c {
        Conn::Outgoing => 0,
        Conn::Incoming => 1,
    }
}

/// A small pool of prefixes, so announcements repeat and withdrawals hit.
fn v4_prefix(b: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, b % 16, 0, 0), 16 + (b / 16) % 9)
        .unwrap()
        .trunc()
}

fn v6_prefix(b: u8) -> Ipv6Net {
    Ipv6Net::new(
        Ipv6Addr::new(0x2001, 0xdb8, u16::from(b % 16), 0, 0, 0, 0, 0),
        48,
    )
    .unwrap()
}

struct Harness {
    s: Session,
    t0: Instant,
    now: Instant,
    /// Timer deadlines as the transport keeps them (ArmTimer / CancelTimer).
    timers: BTreeMap<Timer, Instant>,
    /// Connections the transport holds open.
    open: [bool; 2],
    /// Our connection attempt is in flight.
    attempt: bool,
    /// Established, as the owner is told (Established, then SessionDown
    /// or SessionDownStale): one event may go through several states (a
    /// connection promoted, its held OPEN and queued messages read).
    established: bool,
    /// When the peer last brought a connection or octets.
    last_input: Instant,
    /// The owner's Adj-RIB-In, from RoutesReceived.
    rib_v4: HashSet<Ipv4Net>,
    rib_v6: HashSet<Ipv6Net>,
}

impl Harness {
    fn at(&self) -> Duration {
        self.now - self.t0
    }

    /// One event in, its actions executed and checked.
    fn handle(&mut self, e: Event) {
        let before = self.s.state();
        let what = format!("{e:?}");
        if matches!(
            e,
            Event::TcpConnected(_) | Event::BytesReceived(..) | Event::MessageReceived(..)
        ) {
            self.last_input = self.now;
        }
        let actions = self.s.handle(e, self.now);
        let at = self.at();
        let ctx = || format!("at {at:?} in {before:?}, event {what}: actions {actions:?}");
        for a in &actions {
            match a {
                Action::Connect => self.attempt = true,
                Action::Send(c, m) => {
                    assert!(
                        self.open[slot(*c)],
                        "sent on a closed connection {c:?}: {}",
                        ctx()
                    );
                    if let Message::Update(_) = m {
                        assert!(
                            self.established,
                            "UPDATE sent outside Established: {}",
                            ctx()
                        );
                    }
                }
                Action::ArmTimer(t, d) => {
                    self.timers.insert(*t, self.now + *d);
                }
                Action::CancelTimer(t) => {
                    self.timers.remove(t);
                }
                Action::Close(c) => {
                    self.open[slot(*c)] = false;
                    if *c == Conn::Outgoing {
                        self.attempt = false;
                    }
                }
                Action::RoutesReceived(u) => {
                    assert!(
                        self.established,
                        "routes received outside Established: {}",
                        ctx()
                    );
                    for p in &u.withdrawn {
                        self.rib_v4.remove(p);
                    }
                    for p in u.withdrawn_v6() {
                        self.rib_v6.remove(p);
                    }
                    self.rib_v4.extend(u.nlri.iter().copied());
                    self.rib_v6.extend(u.announced_v6().iter().copied());
                }
                Action::SessionDown(_) | Action::SessionDownStale { .. } => {
                    self.established = false;
                    self.rib_v4.clear();
                    self.rib_v6.clear();
                }
                Action::Established(_) => {
                    assert!(!self.established, "Established twice: {}", ctx());
                    self.established = true;
                }
                Action::PurgeStale { .. }
                | Action::EndOfRib { .. }
                | Action::RouteRefreshRequested { .. } => {}
            }
        }
        self.check(&ctx);
    }

    fn check(&self, ctx: &dyn Fn() -> String) {
        let s = &self.s;
        assert_eq!(
            self.established,
            s.state() == State::Established,
            "the owner was not told of a move into or out of Established: {}",
            ctx()
        );
        let cfg = s.config();
        for (afi, held, owner, limit) in [
            (
                AFI_IPV4,
                s.prefix_count(AFI_IPV4),
                self.rib_v4.len(),
                cfg.max_prefixes_v4,
            ),
            (
                AFI_IPV6,
                s.prefix_count(AFI_IPV6),
                self.rib_v6.len(),
                cfg.max_prefixes_v6,
            ),
        ] {
            if let Some(limit) = limit {
                let limit = limit as usize;
                assert!(
                    held <= limit,
                    "AFI {afi}: {held} prefixes held, limit {limit}: {}",
                    ctx()
                );
                assert!(
                    owner <= limit,
                    "AFI {afi}: {owner} routes accepted, limit {limit}: {}",
                    ctx()
                );
            }
        }
        let hold = match s.state() {
            State::OpenSent => Some(OPEN_HOLD_TIME),
            State::OpenConfirm | State::Established => {
                let n = s.negotiated().expect("negotiated past OpenSent");
                (n.hold_time > 0).then(|| Duration::from_secs(u64::from(n.hold_time)))
            }
            _ => None,
        };
        if let Some(hold) = hold {
            let deadline = self.timers.get(&Timer::Hold);
            assert!(
                deadline.is_some_and(|d| *d <= self.now + hold),
                "{:?}: Hold timer {:?} (hold {hold:?}, now {:?}): {}",
                s.state(),
                deadline.map(|d| *d - self.t0),
                self.at(),
                ctx()
            );
        }
        let longest = OPEN_HOLD_TIME.max(Duration::from_secs(u64::from(cfg.hold_time)));
        // A hold time of 0 (the peer's OPEN may say so) means no Hold
        // timer at all, in OpenConfirm too (RFC 4271 §8.2.2).
        if hold.is_some() {
            assert!(
                self.now - self.last_input <= longest,
                "{:?} with nothing received for {:?}: {}",
                s.state(),
                self.now - self.last_input,
                ctx()
            );
        }
    }

    /// Time passes: every timer due fires at its deadline, earliest first,
    /// as the transport fires them.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some((&t, &when)) = self
            .timers
            .iter()
            .filter(|(_, w)| **w <= until)
            .min_by_key(|(t, w)| (**w, **t))
        {
            self.timers.remove(&t);
            self.now = self.now.max(when);
            self.handle(Event::TimerExpired(t));
        }
        self.now = until;
        let at = self.at();
        self.check(&|| format!("at {at:?}, time advanced by {by:?}"));
    }
}

fn open(sc: &mut Script, peer_as: u32) -> Open {
    let asn = match sc.byte() % 8 {
        0 => 65002,
        1 => 4_200_000_009,
        _ => peer_as,
    };
    let hold = match sc.byte() % 10 {
        0 => 0,
        1 => 3,
        2 => 9,
        3 => 10,
        4 => 30,
        5 => 240,
        6 => u16::from_be_bytes([sc.byte(), sc.byte()]),
        _ => 90,
    };
    // Above or below ours (a collision's outcome), rarely 0.0.0.0 or ours.
    let id = match sc.byte() % 8 {
        0 => Ipv4Addr::new(192, 0, 2, 0),
        1 => OUR_ID,
        2 | 3 => Ipv4Addr::new(192, 0, 2, 200),
        _ => Ipv4Addr::new(192, 0, 2, 2),
    };
    let flags = sc.byte();
    let mut families = Vec::new();
    if flags & 1 != 0 {
        families.push((AFI_IPV4, SAFI_UNICAST));
    }
    if flags & 2 != 0 {
        families.push((AFI_IPV6, SAFI_UNICAST));
    }
    let mut o = Open::new(asn, hold, id, &families);
    if flags & 4 != 0 {
        // A 2-octet-AS speaker: no 4-octet AS capability.
        o.capabilities
            .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
    }
    if flags & 8 != 0 {
        o.capabilities.retain(|c| *c != Capability::RouteRefresh);
    }
    if flags & 16 != 0 {
        o.capabilities
            .push(Capability::GracefulRestart(GracefulRestart {
                restart_state: flags & 32 != 0,
                restart_time: u16::from(sc.byte()),
                families: families
                    .iter()
                    .map(|&(afi, safi)| GrFamily {
                        afi,
                        safi,
                        forwarding_state: flags & 64 != 0,
                    })
                    .collect(),
            }));
    }
    o
}

fn update(sc: &mut Script, peer_as: u32, local_as: u32) -> Update {
    let shape = sc.byte();
    let n = usize::from(shape % 8);
    let mut u = Update {
        withdrawn: (0..usize::from(shape / 8 % 4))
            .map(|_| v4_prefix(sc.byte()))
            .collect(),
        nlri: (0..n).map(|_| v4_prefix(sc.byte())).collect(),
        ..Update::default()
    };
    let v6 = sc.byte();
    let announce_v6: Vec<Ipv6Net> = (0..usize::from(v6 % 8))
        .map(|_| v6_prefix(sc.byte()))
        .collect();
    let withdraw_v6: Vec<Ipv6Net> = (0..usize::from(v6 / 8 % 4))
        .map(|_| v6_prefix(sc.byte()))
        .collect();
    if !withdraw_v6.is_empty() {
        u.attributes.push(PathAttribute::MpUnreach(MpUnreach {
            withdrawn: withdraw_v6,
        }));
    }
    if !announce_v6.is_empty() {
        u.attributes.push(PathAttribute::MpReach(MpReach {
            next_hop: Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2),
            link_local: None,
            nlri: announce_v6,
        }));
    }
    if !u.nlri.is_empty() || u.mp_reach().is_some() {
        let first = match sc.byte() % 8 {
            0 => 65099,    // not the peer: treated as withdraw
            1 => local_as, // a loop
            _ => peer_as,
        };
        u.attributes.push(PathAttribute::Origin(Origin::Igp));
        u.attributes
            .push(PathAttribute::AsPath(vec![AsSegment::Sequence(vec![
                first, 65100,
            ])]));
        if shape & 0x80 == 0 || !u.nlri.is_empty() {
            u.attributes
                .push(PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 2)));
        }
    }
    u
}

fuzz_target!(|data: &[u8]| {
    let mut sc = Script(data);
    let flags = sc.byte();
    let peer_as = if flags & 1 == 0 { 65001 } else { 4_200_000_001 };
    let mut cfg = Config::new(OUR_ID, peer_as);
    cfg.passive = flags & 2 != 0;
    cfg.ipv6_unicast = flags & 4 == 0;
    cfg.hold_time = [180, 90, 30, 10][usize::from(flags >> 3) % 4];
    if flags & 0x20 != 0 {
        cfg.graceful_restart = Some(GracefulRestartConfig {
            forwarding_preserved: flags & 0x40 != 0,
            ..GracefulRestartConfig::default()
        });
    }
    let limits = sc.byte();
    let limit = |b: u8| (b & 8 == 0).then_some(u32::from(b & 7));
    cfg.max_prefixes_v4 = limit(limits);
    cfg.max_prefixes_v6 = limit(limits >> 4);
    let local_as = cfg.local_as;
    let t0 = Instant::now();
    let mut h = Harness {
        s: Session::new(cfg),
        t0,
        now: t0,
        timers: BTreeMap::new(),
        open: [false; 2],
        attempt: false,
        established: false,
        last_input: t0,
        rib_v4: HashSet::new(),
        rib_v6: HashSet::new(),
    };
    for _ in 0..MAX_STEPS {
        if sc.is_empty() {
            break;
        }
        let op = sc.byte();
        // Most events name a connection: mostly the session's own.
        let c = match (op & 0x80 != 0, h.s.connection()) {
            (false, Some(c)) => c,
            (b, _) => conn(b),
        };
        match op & 0x1f {
            0 => h.handle(Event::ManualStart),
            1 => h.handle(Event::ManualStop),
            2 | 3 => {
                // A connection made, when the transport would hand it in.
                let c = conn(op & 1 == 1);
                let ready = c == Conn::Incoming || h.attempt;
                if ready && h.s.accepts_connection(c) {
                    if c == Conn::Outgoing {
                        h.attempt = false;
                    }
                    h.open[slot(c)] = true;
                    h.handle(Event::TcpConnected(c));
                }
            }
            4 if h.attempt => {
                h.attempt = false;
                h.handle(Event::TcpFailed);
            }
            5 if h.open[slot(c)] => {
                h.open[slot(c)] = false;
                h.handle(Event::TcpClosed(c));
            }
            6..=12 if h.open[slot(c)] => {
                let m = match op & 0x1f {
                    6 | 7 => Message::Open(open(&mut sc, peer_as)),
                    8 => Message::Keepalive,
                    9 | 10 => Message::Update(update(&mut sc, peer_as, local_as)),
                    11 => Message::Notification(Notification::new(
                        sc.byte() % 7,
                        sc.byte() % 12,
                        sc.bytes(2),
                    )),
                    _ => Message::RouteRefresh(bgp::wire::RouteRefresh {
                        afi: if sc.bit() { AFI_IPV6 } else { AFI_IPV4 },
                        reserved: 0,
                        safi: SAFI_UNICAST,
                    }),
                };
                // Decoded, or as octets in two pieces cut anywhere.
                if op & 0x40 == 0 {
                    h.handle(Event::MessageReceived(c, m));
                } else if let Ok(bytes) = m.encode_with(h.s.as_width()) {
                    let cut = usize::from(sc.byte()).min(bytes.len());
                    h.handle(Event::BytesReceived(c, bytes[..cut].to_vec()));
                    if h.open[slot(c)] {
                        h.handle(Event::BytesReceived(c, bytes[cut..].to_vec()));
                    }
                }
            }
            13 if h.open[slot(c)] => {
                let n = usize::from(sc.byte() % 64);
                h.handle(Event::BytesReceived(c, sc.bytes(n)));
            }
            14 => {
                // Time passes: up to ~4 minutes, in whole and part seconds.
                let s = u64::from(sc.byte());
                h.advance(Duration::from_millis(s * 1000 + u64::from(sc.byte()) * 4));
            }
            15 => {
                // Straight to the next deadline.
                if let Some(&when) = h.timers.values().min() {
                    let by = when.saturating_duration_since(h.now);
                    h.advance(by);
                }
            }
            16 => h.advance(Duration::from_secs(60 * u64::from(sc.byte() % 16))),
            17 => h.handle(Event::AdminReset),
            18 => h.handle(Event::BfdDown),
            19 => h.handle(Event::CarrierLost),
            20 => h.handle(Event::StopForRestart),
            21 | 22 => {
                let u = update(&mut sc, local_as, local_as);
                h.handle(Event::SendUpdate(u));
            }
            23 => h.handle(Event::InitialUpdateDone),
            24 => h.handle(Event::RequestRouteRefresh {
                afi: if sc.bit() { AFI_IPV6 } else { AFI_IPV4 },
                safi: SAFI_UNICAST,
            }),
            25 => {
                let l = sc.byte();
                h.handle(Event::SetMaxPrefixes {
                    v4: limit(l),
                    v6: limit(l >> 4),
                });
            }
            26 => {
                // A timer event the transport raced with its cancellation.
                let t = Timer::ALL[usize::from(sc.byte()) % Timer::ALL.len()];
                h.timers.remove(&t);
                h.handle(Event::TimerExpired(t));
            }
            27 => h.handle(Event::ManualStartPassive),
            _ => {}
        }
    }
});
