//! Arbitrary octets into an Established session's byte stream, and into a
//! second connection pending a collision: the FSM must never panic,
//! whatever it receives.
#![no_main]

use bgp::fsm::{Config, Conn, Event, Session};
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
    let ours = Conn::Outgoing;
    s.handle(Event::ManualStart, now);
    s.handle(Event::TcpConnected(ours), now);
    // The peer connects too: a second connection, OPEN sent on it.
    s.handle(Event::TcpConnected(Conn::Incoming), now);
    let open = Open::new(65001, 90, Ipv4Addr::new(192, 0, 2, 2), &[(1, 1), (2, 1)]);
    s.handle(Event::MessageReceived(ours, Message::Open(open)), now);
    // The first octet picks the connection the input goes to.
    let to = match data.first() {
        Some(b) if b & 1 == 1 => Conn::Incoming,
        _ => ours,
    };
    if to == ours {
        s.handle(Event::MessageReceived(ours, Message::Keepalive), now);
    }
    // Split the input at a data-chosen point to exercise reassembly.
    let cut = data.get(1).map_or(0, |&b| usize::from(b)).min(data.len());
    s.handle(Event::BytesReceived(to, data[..cut].to_vec()), now);
    s.handle(Event::BytesReceived(to, data[cut..].to_vec()), now);
});
