//! A session driven by arbitrary events: each 25-octet chunk is one event
//! (the first octet picks the kind and the time step, the other 24 are a
//! packet's octets when it is a packet). Must never panic; the state and
//! timers must stay coherent.
#![no_main]

use bfd::session::{Action, Config, Event, Session, Timer};
use bfd::wire::{ControlPacket, State};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut s = Session::new(0x1234_5678, Config::default());
    let mut acts = s.start(now);
    for chunk in data.chunks(25) {
        let (op, rest) = (chunk[0], &chunk[1..]);
        now += Duration::from_millis(u64::from(op >> 3) * 10);
        let e = match op & 7 {
            0 | 1 | 2 => {
                let mut b = [0u8; 24];
                b[..rest.len()].copy_from_slice(rest);
                // Mostly well-formed, aimed at this session.
                b[0] = (b[0] & 0x1f) | 0x20;
                b[3] = 24;
                if op & 1 == 0 {
                    b[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
                }
                match ControlPacket::decode(&b) {
                    Ok(p) => Event::Received(p),
                    Err(_) => continue,
                }
            }
            3 => Event::TimerExpired(Timer::Transmit),
            4 => Event::TimerExpired(Timer::Detect),
            5 => Event::AdminDown,
            6 => Event::AdminUp,
            _ => Event::SetConfig(Config {
                desired_min_tx: Duration::from_millis(u64::from(rest.first().copied().unwrap_or(0))),
                required_min_rx: Duration::from_millis(u64::from(rest.get(1).copied().unwrap_or(0))),
                detect_mult: rest.get(2).copied().unwrap_or(0),
            }),
        };
        acts = s.handle(e, now);
        for a in &acts {
            if let Action::Send(p) = a {
                assert!(!(p.poll && p.fin), "never both P and F");
                assert_eq!(p.state, s.state());
                assert!(p.check().is_ok(), "we send only valid packets");
                if s.state() != State::Up {
                    assert!(p.desired_min_tx_us >= 1_000_000);
                }
            }
        }
    }
    let _ = (acts, s.status());
});
