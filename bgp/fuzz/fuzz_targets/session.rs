//! Arbitrary octets into an Established session's byte stream: the FSM must
//! never panic, whatever it receives.
#![no_main]

use bgp::fsm::{Config, Event, Session};
use bgp::wire::{Message, Open};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let mut cfg = Config::new(Ipv4Addr::new(192, 0, 2, 1), 65001);
    cfg.max_prefixes_v4 = Some(50);
    cfg.max_prefixes_v6 = Some(50);
    let mut s = Session::new(cfg);
    let now = Instant::now();
    s.handle(Event::ManualStart, now);
    s.handle(Event::TcpConnected, now);
    let open = Open::new(65001, 90, Ipv4Addr::new(192, 0, 2, 2), &[(1, 1), (2, 1)]);
    s.handle(Event::MessageReceived(Message::Open(open)), now);
    s.handle(Event::MessageReceived(Message::Keepalive), now);
    // Split the input at a data-chosen point to exercise reassembly.
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    s.handle(Event::BytesReceived(data[..cut].to_vec()), now);
    s.handle(Event::BytesReceived(data[cut..].to_vec()), now);
});
