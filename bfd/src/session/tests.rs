//! Every path of the session through its event interface, on a fake clock.

use super::*;

const ME: u32 = 0x1111_1111;
const PEER: u32 = 0x2222_2222;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(tx: u64, rx: u64, mult: u8) -> Config {
    Config {
        desired_min_tx: ms(tx),
        required_min_rx: ms(rx),
        detect_mult: mult,
    }
}

/// A packet from the peer.
fn from_peer(state: State, your_disc: u32, tx: u64, rx: u64, mult: u8) -> ControlPacket {
    ControlPacket {
        state,
        my_disc: PEER,
        your_disc,
        detect_mult: mult,
        desired_min_tx_us: (tx * 1000) as u32,
        required_min_rx_us: (rx * 1000) as u32,
        ..ControlPacket::default()
    }
}

fn sent(acts: &[Action]) -> Vec<ControlPacket> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

/// The last duration `t` was armed with.
fn armed(acts: &[Action], t: Timer) -> Option<Duration> {
    acts.iter().rev().find_map(|a| match a {
        Action::ArmTimer(x, d) if *x == t => Some(*d),
        _ => None,
    })
}

fn cancelled(acts: &[Action], t: Timer) -> bool {
    acts.contains(&Action::CancelTimer(t))
}

fn changes(acts: &[Action]) -> Vec<(State, State, Diag)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, diag } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

/// Fake clock: a session plus the time it was last fed.
struct Harness {
    s: Session,
    t0: Instant,
    now: Instant,
}

impl Harness {
    fn new(c: Config) -> Self {
        let t0 = Instant::now();
        let mut s = Session::new(ME, c);
        s.start(t0);
        Self { s, t0, now: t0 }
    }

    fn at(&mut self, after_ms: u64) -> Instant {
        self.now = self.t0 + ms(after_ms);
        self.now
    }

    fn feed(&mut self, after_ms: u64, e: Event) -> Vec<Action> {
        let now = self.at(after_ms);
        self.s.handle(e, now)
    }

    fn recv(&mut self, after_ms: u64, p: ControlPacket) -> Vec<Action> {
        self.feed(after_ms, Event::Received(p))
    }

    /// Down -> Init -> Up against a peer at `tx`/`rx` x `mult`, then the
    /// peer's Final for our Up Poll. Returns the time of the last packet.
    fn handshake(&mut self, tx: u64, rx: u64, mult: u8) -> u64 {
        let a = self.recv(10, from_peer(State::Down, 0, 1000, rx, mult));
        assert_eq!(changes(&a), vec![(State::Down, State::Init, Diag::None)]);
        let a = self.recv(20, from_peer(State::Up, ME, 1000, rx, mult));
        assert_eq!(changes(&a), vec![(State::Init, State::Up, Diag::None)]);
        let mut fin = from_peer(State::Up, ME, tx, rx, mult);
        fin.fin = true;
        self.recv(30, fin);
        assert!(!self.s.status().polling);
        30
    }
}

#[test]
fn start_sends_down_with_the_one_second_floor() {
    let t0 = Instant::now();
    let mut s = Session::new(ME, Config::default());
    assert_eq!(s.state(), State::Down);
    let a = s.start(t0);
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0],
        ControlPacket {
            version: 1,
            diag: Diag::None,
            state: State::Down,
            detect_mult: 3,
            my_disc: ME,
            your_disc: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
            ..ControlPacket::default()
        }
    );
    let d = armed(&a, Timer::Transmit).unwrap();
    assert!((ms(750)..=ms(1000)).contains(&d), "{d:?}");
    assert!(s.start(t0).is_empty(), "start is idempotent");
}

#[test]
fn three_way_handshake_down_init_up() {
    let mut h = Harness::new(Config::default());
    // Peer Down (your disc 0): we go Init at once and name the peer.
    let a = h.recv(10, from_peer(State::Down, 0, 1000, 300, 3));
    assert_eq!(changes(&a), vec![(State::Down, State::Init, Diag::None)]);
    let p = sent(&a);
    assert_eq!(p.len(), 1, "one packet at once on the state change");
    assert_eq!((p[0].state, p[0].your_disc), (State::Init, PEER));
    assert_eq!(p[0].desired_min_tx_us, 1_000_000, "still the 1 s floor");
    assert!(
        matches!(a[0], Action::StateChanged { .. }),
        "StateChanged comes before the packet"
    );
    // Peer Up: we go Up, and the floor lifts through a Poll Sequence.
    let a = h.recv(20, from_peer(State::Up, ME, 1000, 300, 3));
    assert_eq!(changes(&a), vec![(State::Init, State::Up, Diag::None)]);
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].state, State::Up);
    assert!(p[0].poll && !p[0].fin);
    assert_eq!(p[0].desired_min_tx_us, 300_000);
    let st = h.s.status();
    assert!(st.polling);
    assert_eq!(
        st.tx_interval,
        ms(300),
        "a shorter interval applies at once"
    );
    // The peer's Final ends the Poll Sequence.
    let mut fin = from_peer(State::Up, ME, 300, 300, 3);
    fin.fin = true;
    let a = h.recv(30, fin);
    assert!(changes(&a).is_empty());
    let st = h.s.status();
    assert!(!st.polling);
    assert_eq!(st.state, State::Up);
    assert_eq!(st.remote_disc, PEER);
    assert_eq!(st.tx_interval, ms(300));
    assert_eq!(st.rx_interval, ms(300));
    assert_eq!(st.detection_time, Some(ms(900)));
    assert_eq!(st.counters.ups, 1);
    assert_eq!(st.counters.polls_sent, 1);
    assert_eq!(st.counters.finals_received, 1);
    assert_eq!(st.since, Some(h.t0 + ms(20)));
    // Periodic packets from now on carry no P.
    let a = h.feed(200, Event::TimerExpired(Timer::Transmit));
    assert!(!sent(&a)[0].poll);
}

#[test]
fn down_straight_to_up_on_a_peer_init() {
    let mut h = Harness::new(Config::default());
    let a = h.recv(10, from_peer(State::Init, ME, 1000, 300, 3));
    assert_eq!(changes(&a), vec![(State::Down, State::Up, Diag::None)]);
    // Init stays Init on a peer Down (the peer has not heard us yet).
    let mut h = Harness::new(Config::default());
    h.recv(10, from_peer(State::Down, 0, 1000, 300, 3));
    let a = h.recv(20, from_peer(State::Down, 0, 1000, 300, 3));
    assert!(changes(&a).is_empty());
    assert_eq!(h.s.state(), State::Init);
    // An Up peer while we are Down does not bring us Up (no three-way).
    let mut h = Harness::new(Config::default());
    let a = h.recv(10, from_peer(State::Up, ME, 1000, 300, 3));
    assert!(changes(&a).is_empty());
    assert_eq!(h.s.state(), State::Down);
}

#[test]
fn detection_time_expiry_goes_down_with_diag_1() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(300, 300, 3);
    assert_eq!(h.s.status().detection_time, Some(ms(900)));
    // An expiry before the deadline is re-armed, not acted on.
    let a = h.feed(last + 500, Event::TimerExpired(Timer::Detect));
    assert_eq!(armed(&a, Timer::Detect), Some(ms(400)));
    assert!(changes(&a).is_empty());
    // At the deadline: Down, diag 1, announced at once with your disc 0.
    let a = h.feed(last + 900, Event::TimerExpired(Timer::Detect));
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].state, p[0].diag, p[0].your_disc),
        (State::Down, Diag::ControlDetectionTimeExpired, 0)
    );
    assert_eq!(p[0].desired_min_tx_us, 1_000_000, "back to the 1 s floor");
    let d = armed(&a, Timer::Transmit).unwrap();
    assert!((ms(750)..=ms(1000)).contains(&d), "{d:?}");
    let st = h.s.status();
    assert_eq!(st.remote_disc, 0);
    assert_eq!(st.remote_state, State::Down);
    assert_eq!(st.diag, Diag::ControlDetectionTimeExpired);
    assert_eq!(st.last_down_diag, Diag::ControlDetectionTimeExpired);
    assert_eq!(st.counters.downs, 1);
    // A second expiry (not re-armed) does nothing.
    assert!(
        h.feed(last + 2000, Event::TimerExpired(Timer::Detect))
            .is_empty()
    );
}

#[test]
fn detect_timer_is_rearmed_on_every_valid_packet() {
    let mut h = Harness::new(Config::default());
    let mut last = h.handshake(300, 300, 3);
    for _ in 0..10 {
        last += 280;
        let a = h.recv(last, from_peer(State::Up, ME, 300, 300, 3));
        assert_eq!(armed(&a, Timer::Detect), Some(ms(900)));
    }
    // The deadline of an earlier packet has passed but not the latest one.
    let a = h.feed(last - 280 + 900, Event::TimerExpired(Timer::Detect));
    assert!(changes(&a).is_empty());
    assert_eq!(armed(&a, Timer::Detect), Some(ms(280)));
    assert_eq!(h.s.state(), State::Up);
    // A discarded packet does not count.
    let mut bad = from_peer(State::Up, ME, 300, 300, 3);
    bad.auth = true;
    let a = h.recv(last + 800, bad);
    assert!(a.is_empty());
    let a = h.feed(last + 900, Event::TimerExpired(Timer::Detect));
    assert_eq!(changes(&a).len(), 1);
}

#[test]
fn detection_time_uses_the_peer_multiplier_and_the_slower_side() {
    let mut h = Harness::new(cfg(100, 100, 3));
    h.handshake(400, 50, 5);
    let st = h.s.status();
    // 5 x max(our rx 100, their tx 400); we send at max(100, their rx 50).
    assert_eq!(st.detection_time, Some(ms(2000)));
    assert_eq!(st.rx_interval, ms(400));
    assert_eq!(st.tx_interval, ms(100));
    assert_eq!(st.remote_detect_mult, 5);
    // Their rx slower than our tx: we send at their pace.
    let a = h.recv(100, from_peer(State::Up, ME, 400, 250, 5));
    assert_eq!(h.s.status().tx_interval, ms(250));
    assert!(armed(&a, Timer::Transmit).is_none_or(|d| d <= ms(250)));
}

#[test]
fn detection_in_init_goes_down_and_in_down_forgets_the_peer() {
    let mut h = Harness::new(Config::default());
    let a = h.recv(10, from_peer(State::Down, 0, 1000, 300, 3));
    // Detection while the peer is at its 1 s floor: 3 x 1 s.
    assert_eq!(armed(&a, Timer::Detect), Some(ms(3000)));
    let a = h.feed(3010, Event::TimerExpired(Timer::Detect));
    assert_eq!(
        changes(&a),
        vec![(State::Init, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    // Down, with the peer heard (it signals AdminDown): the discriminator
    // is forgotten after Detection Time, without a state change.
    let mut h = Harness::new(Config::default());
    h.recv(10, from_peer(State::AdminDown, 0, 1000, 300, 3));
    assert_eq!(h.s.state(), State::Down);
    assert_eq!(h.s.status().remote_disc, PEER);
    let a = h.feed(3010, Event::TimerExpired(Timer::Detect));
    assert!(changes(&a).is_empty());
    assert_eq!(h.s.status().remote_disc, 0);
}

#[test]
fn neighbor_signaled_down_diag_3() {
    // Up, peer Down.
    let mut h = Harness::new(Config::default());
    h.handshake(300, 300, 3);
    let a = h.recv(100, from_peer(State::Down, ME, 1000, 300, 3));
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::Down, Diag::NeighborSignaledDown)]
    );
    assert_eq!(sent(&a)[0].diag, Diag::NeighborSignaledDown);
    // Up, peer AdminDown.
    let mut h = Harness::new(Config::default());
    h.handshake(300, 300, 3);
    let mut p = from_peer(State::AdminDown, ME, 1000, 300, 3);
    p.diag = Diag::AdminDown;
    let a = h.recv(100, p);
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::Down, Diag::NeighborSignaledDown)]
    );
    assert_eq!(h.s.status().remote_diag, Diag::AdminDown);
    // While the peer stays AdminDown we stay Down (never Init).
    let a = h.recv(200, p);
    assert!(changes(&a).is_empty());
    assert_eq!(h.s.state(), State::Down);
    // Init, peer AdminDown.
    let mut h = Harness::new(Config::default());
    h.recv(10, from_peer(State::Down, 0, 1000, 300, 3));
    let a = h.recv(20, from_peer(State::AdminDown, 0, 1000, 300, 3));
    assert_eq!(
        changes(&a),
        vec![(State::Init, State::Down, Diag::NeighborSignaledDown)]
    );
    // Peer back: the handshake runs again.
    let a = h.recv(30, from_peer(State::Down, 0, 1000, 300, 3));
    assert_eq!(changes(&a), vec![(State::Down, State::Init, Diag::None)]);
}

#[test]
fn admin_down_and_up() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(300, 300, 3);
    let a = h.feed(last + 10, Event::AdminDown);
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::AdminDown, Diag::AdminDown)]
    );
    let p = sent(&a);
    assert_eq!((p[0].state, p[0].diag), (State::AdminDown, Diag::AdminDown));
    assert_eq!(p[0].desired_min_tx_us, 1_000_000);
    assert!(cancelled(&a, Timer::Detect));
    assert!(h.feed(last + 20, Event::AdminDown).is_empty(), "idempotent");
    // Packets are discarded (counted), the detect timer stays off.
    let a = h.recv(last + 30, from_peer(State::Up, ME, 300, 300, 3));
    assert!(a.is_empty(), "{a:?}");
    let a = h.recv(last + 40, from_peer(State::Down, 0, 1000, 300, 3));
    assert!(a.is_empty());
    let st = h.s.status();
    assert_eq!(st.counters.discarded.get(DiscardReason::LocalAdminDown), 2);
    assert_eq!(st.state, State::AdminDown);
    assert_eq!(st.last_down_diag, Diag::AdminDown);
    assert!(
        h.feed(last + 5000, Event::TimerExpired(Timer::Detect))
            .is_empty()
    );
    // Periodic AdminDown packets at the 1 s floor.
    let a = h.feed(last + 1000, Event::TimerExpired(Timer::Transmit));
    assert_eq!(sent(&a)[0].state, State::AdminDown);
    assert!(armed(&a, Timer::Transmit).unwrap() >= ms(750));
    // AdminUp: Down, then the handshake again.
    let a = h.feed(last + 1100, Event::AdminUp);
    assert_eq!(
        changes(&a),
        vec![(State::AdminDown, State::Down, Diag::None)]
    );
    assert!(h.feed(last + 1110, Event::AdminUp).is_empty(), "idempotent");
    let a = h.recv(last + 1200, from_peer(State::Down, 0, 1000, 300, 3));
    assert_eq!(changes(&a), vec![(State::Down, State::Init, Diag::None)]);
    let a = h.recv(last + 1300, from_peer(State::Up, ME, 1000, 300, 3));
    assert_eq!(changes(&a), vec![(State::Init, State::Up, Diag::None)]);
    assert_eq!(h.s.status().counters.ups, 2);
}

#[test]
fn admin_down_from_down_and_init() {
    for pre in [false, true] {
        let mut h = Harness::new(Config::default());
        if pre {
            h.recv(10, from_peer(State::Down, 0, 1000, 300, 3));
        }
        let a = h.feed(50, Event::AdminDown);
        let from = if pre { State::Init } else { State::Down };
        assert_eq!(changes(&a), vec![(from, State::AdminDown, Diag::AdminDown)]);
    }
}

#[test]
fn answers_a_poll_with_a_final_at_once() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(300, 300, 3);
    // The peer slows down: rx 300 -> 500, tx 300 -> 500, with P.
    let mut p = from_peer(State::Up, ME, 500, 500, 3);
    p.poll = true;
    let a = h.recv(last + 100, p);
    let out = sent(&a);
    assert_eq!(out.len(), 1, "exactly the Final");
    assert!(out[0].fin && !out[0].poll);
    assert_eq!(out[0].state, State::Up);
    // Their new values apply at once on our side.
    let st = h.s.status();
    assert_eq!(st.tx_interval, ms(500));
    assert_eq!(st.detection_time, Some(ms(1500)));
    assert_eq!(armed(&a, Timer::Detect), Some(ms(1500)));
    assert_eq!(st.counters.polls_received, 1);
    assert_eq!(st.counters.finals_sent, 1);
    // The peer asks for packets every 2 s at most: the next periodic
    // packet is armed accordingly.
    let mut p = from_peer(State::Up, ME, 500, 2000, 3);
    p.poll = true;
    h.recv(last + 150, p);
    let a = h.feed(last + 320, Event::TimerExpired(Timer::Transmit));
    assert!(armed(&a, Timer::Transmit).unwrap() >= ms(1500));
    // It speeds up again: our next packet is brought forward.
    let mut p = from_peer(State::Up, ME, 50, 50, 3);
    p.poll = true;
    let a = h.recv(last + 400, p);
    let d = armed(&a, Timer::Transmit).expect("re-armed to the shorter interval");
    assert!(d <= ms(300), "{d:?}");
    assert_eq!(h.s.status().detection_time, Some(ms(900)));
    // While we poll ourselves, the Final we send carries no P; the
    // periodic packets do.
    h.feed(last + 500, Event::SetConfig(cfg(200, 300, 3)));
    let mut p = from_peer(State::Up, ME, 50, 50, 3);
    p.poll = true;
    let a = h.recv(last + 510, p);
    let f = sent(&a)[0];
    assert!(f.fin && !f.poll);
    let a = h.feed(last + 800, Event::TimerExpired(Timer::Transmit));
    assert!(sent(&a)[0].poll);
}

#[test]
fn poll_sequence_longer_tx_applies_after_the_final() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(300, 300, 3);
    let a = h.feed(last + 10, Event::SetConfig(cfg(600, 300, 3)));
    // The Poll goes out at once with the new value...
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert!(p[0].poll);
    assert_eq!(p[0].desired_min_tx_us, 600_000);
    // ...but we keep sending at 300 ms until the Final.
    assert_eq!(h.s.status().tx_interval, ms(300));
    let a = h.feed(last + 300, Event::TimerExpired(Timer::Transmit));
    assert!(sent(&a)[0].poll, "P on every packet until the Final");
    assert!(armed(&a, Timer::Transmit).unwrap() <= ms(300));
    // A packet without F changes nothing.
    h.recv(last + 310, from_peer(State::Up, ME, 300, 300, 3));
    assert!(h.s.status().polling);
    let mut fin = from_peer(State::Up, ME, 300, 300, 3);
    fin.fin = true;
    h.recv(last + 320, fin);
    let st = h.s.status();
    assert!(!st.polling);
    assert_eq!(st.tx_interval, ms(600));
    let a = h.feed(last + 600, Event::TimerExpired(Timer::Transmit));
    assert!(!sent(&a)[0].poll);
    let d = armed(&a, Timer::Transmit).unwrap();
    assert!((ms(450)..=ms(600)).contains(&d), "{d:?}");
}

#[test]
fn poll_sequence_shorter_rx_applies_after_the_final() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(100, 100, 3);
    assert_eq!(h.s.status().detection_time, Some(ms(900)));
    // Our rx 300 -> 100: a shorter Detection Time only after the Final.
    let a = h.feed(last + 10, Event::SetConfig(cfg(300, 100, 3)));
    assert_eq!(sent(&a)[0].required_min_rx_us, 100_000);
    assert_eq!(h.s.status().detection_time, Some(ms(900)));
    let a = h.recv(last + 20, from_peer(State::Up, ME, 100, 100, 3));
    assert_eq!(armed(&a, Timer::Detect), Some(ms(900)));
    let mut fin = from_peer(State::Up, ME, 100, 100, 3);
    fin.fin = true;
    let a = h.recv(last + 30, fin);
    assert_eq!(armed(&a, Timer::Detect), Some(ms(300)));
    assert_eq!(h.s.status().detection_time, Some(ms(300)));
}

#[test]
fn poll_sequence_safe_changes_apply_at_once() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(100, 100, 3);
    // tx 300 -> 100 (faster) and rx 300 -> 600 (longer detection).
    let a = h.feed(last + 10, Event::SetConfig(cfg(100, 600, 3)));
    let st = h.s.status();
    assert!(st.polling);
    assert_eq!(st.tx_interval, ms(100));
    assert_eq!(st.detection_time, Some(ms(1800)));
    assert!(armed(&a, Timer::Transmit).unwrap() <= ms(100));
    // The detect deadline moved with it: last packet + 1.8 s.
    assert_eq!(armed(&a, Timer::Detect), Some(ms(1800 - 10)));
    // An unchanged config starts no Poll.
    let mut fin = from_peer(State::Up, ME, 100, 100, 3);
    fin.fin = true;
    h.recv(last + 20, fin);
    let a = h.feed(last + 30, Event::SetConfig(cfg(100, 600, 3)));
    assert!(sent(&a).is_empty());
    assert!(!h.s.status().polling);
}

#[test]
fn a_change_during_a_poll_sequence_polls_again() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(300, 300, 3);
    h.feed(last + 10, Event::SetConfig(cfg(600, 300, 3)));
    h.feed(last + 20, Event::SetConfig(cfg(900, 300, 3)));
    assert_eq!(h.s.status().counters.polls_sent, 2, "handshake + first");
    let mut fin = from_peer(State::Up, ME, 300, 300, 3);
    fin.fin = true;
    // The first Final might answer a Poll with 600: poll again for 900,
    // from the next periodic packet on.
    let a = h.recv(last + 30, fin);
    assert!(sent(&a).is_empty());
    let a = h.feed(last + 300, Event::TimerExpired(Timer::Transmit));
    let p = sent(&a);
    assert!(p[0].poll);
    assert_eq!(p[0].desired_min_tx_us, 900_000);
    let st = h.s.status();
    assert!(st.polling);
    assert_eq!(st.tx_interval, ms(300), "nothing applied yet");
    h.recv(last + 40, fin);
    let st = h.s.status();
    assert!(!st.polling);
    assert_eq!(st.tx_interval, ms(900));
    assert_eq!(st.counters.polls_sent, 3);
}

#[test]
fn config_changes_while_not_up_apply_at_once_without_poll() {
    let mut h = Harness::new(Config::default());
    let a = h.feed(10, Event::SetConfig(cfg(2000, 300, 3)));
    assert!(sent(&a).is_empty());
    assert!(!h.s.status().polling);
    assert_eq!(h.s.status().tx_interval, ms(2000));
    // The armed transmit (within 1 s) stays: a longer interval applies
    // from the next packet.
    assert!(armed(&a, Timer::Transmit).is_none());
    let a = h.feed(1000, Event::TimerExpired(Timer::Transmit));
    assert!(armed(&a, Timer::Transmit).unwrap() >= ms(1500));
    assert_eq!(sent(&a)[0].desired_min_tx_us, 2_000_000);
}

#[test]
fn slow_start_one_second_while_not_up() {
    let mut h = Harness::new(cfg(50, 50, 3));
    let mut t = 0;
    // Down: every periodic packet advertises and keeps 1 s.
    for _ in 0..20 {
        t += 1000;
        let a = h.feed(t, Event::TimerExpired(Timer::Transmit));
        assert_eq!(sent(&a)[0].desired_min_tx_us, 1_000_000);
        assert_eq!(sent(&a)[0].required_min_rx_us, 50_000);
        let d = armed(&a, Timer::Transmit).unwrap();
        assert!((ms(750)..=ms(1000)).contains(&d), "{d:?}");
    }
    // Init: still 1 s.
    t += 10;
    let a = h.recv(t, from_peer(State::Down, 0, 1000, 50, 3));
    assert_eq!(sent(&a)[0].desired_min_tx_us, 1_000_000);
    assert!(armed(&a, Timer::Transmit).unwrap() >= ms(750));
    // Up: 50 ms.
    t += 10;
    let a = h.recv(t, from_peer(State::Up, ME, 1000, 50, 3));
    assert_eq!(sent(&a)[0].desired_min_tx_us, 50_000);
    assert!(armed(&a, Timer::Transmit).unwrap() <= ms(50));
    // Down again: 1 s again.
    t += 10;
    let a = h.recv(t, from_peer(State::Down, ME, 1000, 50, 3));
    assert_eq!(h.s.state(), State::Down);
    assert_eq!(sent(&a)[0].desired_min_tx_us, 1_000_000);
    assert!(armed(&a, Timer::Transmit).unwrap() >= ms(750));
    // A peer that asks for packets at most every 2 s gets them so.
    t += 10;
    let a = h.recv(t, from_peer(State::AdminDown, 0, 1000, 2000, 3));
    let _ = a;
    let a = h.feed(t + 1000, Event::TimerExpired(Timer::Transmit));
    assert!(armed(&a, Timer::Transmit).unwrap() >= ms(1500));
}

#[test]
fn jitter_stays_within_75_to_100_percent() {
    let mut s = Session::with_seed(ME, cfg(1000, 1000, 3), 42);
    let (mut lo, mut hi) = (u64::MAX, 0);
    for _ in 0..100_000 {
        let d = s.jittered(1_000_000).as_nanos() as u64;
        assert!((750_000_000..=1_000_000_000).contains(&d), "{d}");
        lo = lo.min(d);
        hi = hi.max(d);
    }
    // The whole range is used.
    assert!(lo < 752_000_000 && hi > 998_000_000, "{lo} {hi}");
    // Different sessions draw differently.
    let mut other = Session::with_seed(ME, cfg(1000, 1000, 3), 43);
    let mut again = Session::with_seed(ME, cfg(1000, 1000, 3), 42);
    let a: Vec<_> = (0..10).map(|_| other.jittered(1_000_000)).collect();
    let b: Vec<_> = (0..10).map(|_| again.jittered(1_000_000)).collect();
    assert_ne!(a, b);
}

#[test]
fn jitter_with_detect_mult_1_stays_within_75_to_90_percent() {
    let mut s = Session::with_seed(ME, cfg(1000, 1000, 1), 7);
    let (mut lo, mut hi) = (u64::MAX, 0);
    for _ in 0..100_000 {
        let d = s.jittered(300_000).as_nanos() as u64;
        assert!((225_000_000..=270_000_000).contains(&d), "{d}");
        lo = lo.min(d);
        hi = hi.max(d);
    }
    assert!(lo < 226_000_000 && hi > 269_000_000, "{lo} {hi}");
    // Through the event interface too.
    let mut h = Harness::new(cfg(100, 100, 1));
    h.handshake(100, 100, 3);
    for i in 0..1000 {
        let a = h.feed(100 + i * 100, Event::TimerExpired(Timer::Transmit));
        let d = armed(&a, Timer::Transmit).unwrap();
        assert!((ms(75)..=ms(90)).contains(&d), "{d:?}");
    }
}

#[test]
fn every_discard_rule_is_counted_and_changes_nothing() {
    let mut h = Harness::new(Config::default());
    h.handshake(300, 300, 3);
    // Each would bring the session down (or be answered: P is set) if it
    // were accepted.
    let base = ControlPacket {
        diag: Diag::PathDown,
        poll: true,
        ..from_peer(State::Down, ME, 300, 300, 3)
    };
    let cases = [
        (ControlPacket { version: 2, ..base }, DiscardReason::Version),
        (
            ControlPacket {
                detect_mult: 0,
                ..base
            },
            DiscardReason::DetectMultZero,
        ),
        (
            ControlPacket {
                multipoint: true,
                ..base
            },
            DiscardReason::Multipoint,
        ),
        (
            ControlPacket { my_disc: 0, ..base },
            DiscardReason::MyDiscriminatorZero,
        ),
        (
            ControlPacket {
                your_disc: 0,
                state: State::Init,
                ..base
            },
            DiscardReason::YourDiscriminatorZero,
        ),
        (
            ControlPacket {
                your_disc: 0,
                state: State::Up,
                ..base
            },
            DiscardReason::YourDiscriminatorZero,
        ),
        (
            ControlPacket {
                your_disc: ME + 1,
                ..base
            },
            DiscardReason::UnknownDiscriminator,
        ),
        (
            ControlPacket { auth: true, ..base },
            DiscardReason::Authentication,
        ),
    ];
    let before = h.s.status();
    for (i, (p, reason)) in cases.iter().enumerate() {
        let n = h.s.status().counters.discarded.get(*reason);
        let a = h.recv(100 + i as u64, *p);
        assert!(a.is_empty(), "{reason:?}: {a:?}");
        assert_eq!(h.s.status().counters.discarded.get(*reason), n + 1);
    }
    let st = h.s.status();
    assert_eq!(st.state, State::Up);
    assert_eq!(st.remote_diag, before.remote_diag);
    assert_eq!(st.last_rx, before.last_rx);
    assert_eq!(st.counters.packets_in, before.counters.packets_in);
    assert_eq!(st.counters.polls_received, 0);
    assert_eq!(st.counters.discarded.total(), cases.len() as u64);
    assert_eq!(
        st.counters
            .discarded
            .get(DiscardReason::YourDiscriminatorZero),
        2
    );
    // Counts from the transport's own checks land here too.
    h.s.count_discard(DiscardReason::Ttl);
    assert_eq!(h.s.status().counters.discarded.get(DiscardReason::Ttl), 1);
}

#[test]
fn no_periodic_packets_when_the_peer_wants_none() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(300, 300, 3);
    // Required Min RX 0: stop periodic packets, still answer Polls.
    let a = h.recv(last + 10, from_peer(State::Up, ME, 300, 0, 3));
    assert!(cancelled(&a, Timer::Transmit));
    assert!(
        h.feed(last + 400, Event::TimerExpired(Timer::Transmit))
            .is_empty()
    );
    let mut p = from_peer(State::Up, ME, 300, 0, 3);
    p.poll = true;
    let a = h.recv(last + 20, p);
    assert!(sent(&a)[0].fin);
    assert!(armed(&a, Timer::Transmit).is_none());
    // Non-zero again: periodic packets resume.
    let a = h.recv(last + 30, from_peer(State::Up, ME, 300, 300, 3));
    assert!(armed(&a, Timer::Transmit).unwrap() <= ms(300));
}

#[test]
fn peer_demand_mode_stops_our_periodic_packets_while_both_up() {
    let mut h = Harness::new(Config::default());
    let last = h.handshake(300, 300, 3);
    let mut p = from_peer(State::Up, ME, 300, 300, 3);
    p.demand = true;
    let a = h.recv(last + 10, p);
    assert!(cancelled(&a, Timer::Transmit));
    // We still expect their packets.
    assert_eq!(armed(&a, Timer::Detect), Some(ms(900)));
    let a = h.recv(last + 20, from_peer(State::Up, ME, 300, 300, 3));
    assert!(armed(&a, Timer::Transmit).is_some());
}

#[test]
fn stale_timer_expiries_are_ignored() {
    let t0 = Instant::now();
    let mut s = Session::new(ME, Config::default());
    assert!(
        s.handle(Event::TimerExpired(Timer::Transmit), t0)
            .is_empty(),
        "not started"
    );
    assert!(s.handle(Event::TimerExpired(Timer::Detect), t0).is_empty());
    s.start(t0);
    let a = s.handle(Event::TimerExpired(Timer::Transmit), t0 + ms(900));
    assert_eq!(sent(&a).len(), 1);
    // A packet received before start() is handled (no periodic packets yet).
    let mut s = Session::new(ME, Config::default());
    let a = s.handle(Event::Received(from_peer(State::Down, 0, 1000, 300, 3)), t0);
    assert_eq!(changes(&a), vec![(State::Down, State::Init, Diag::None)]);
    assert!(armed(&a, Timer::Transmit).is_none());
}

#[test]
fn config_is_validated_and_clamped() {
    assert_eq!(Config::default(), cfg(300, 300, 3));
    assert!(Config::default().validate().is_ok());
    assert_eq!(
        cfg(300, 300, 0).validate(),
        Err(ConfigError::DetectMultZero)
    );
    assert!(matches!(
        Config {
            desired_min_tx: Duration::ZERO,
            ..Config::default()
        }
        .validate(),
        Err(ConfigError::Interval {
            field: "desired_min_tx",
            ..
        })
    ));
    assert!(
        Config {
            required_min_rx: Duration::from_secs(5000),
            ..Config::default()
        }
        .validate()
        .is_err()
    );
    let s = Session::new(0, cfg(0, 0, 0));
    assert_eq!(s.my_disc(), 1);
    assert_eq!(s.config(), cfg(1, 1, 1));
}

#[test]
fn counters_follow_the_traffic() {
    let mut h = Harness::new(Config::default());
    h.handshake(300, 300, 3);
    let st = h.s.status();
    // start + Init + Up(Poll).
    assert_eq!(st.counters.packets_out, 3);
    assert_eq!(st.counters.packets_in, 3);
    assert_eq!(st.counters.discarded.total(), 0);
    assert_eq!(st.my_disc, ME);
    assert_eq!(st.config, Config::default());
}
