//! Hand-rolled deterministic generators shared by the codec tests
//! (no proptest: keeps the crate's test build small and MSRV-proof).

#![allow(dead_code)]

use bgp::wire::{
    AsSegment, Capability, GrFamily, GracefulRestart, Message, MpReach, MpUnreach, Notification,
    Open, Origin, PathAttribute, RouteRefresh, Update, update::flag,
};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// xorshift64*: tiny, deterministic, good enough for test inputs.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub(crate) fn u8(&mut self) -> u8 {
        self.next_u64() as u8
    }
    pub(crate) fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }
    pub(crate) fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    pub(crate) fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

pub(crate) fn v4_prefix(r: &mut Rng) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(r.u32()), r.below(33) as u8)
        .unwrap()
        .trunc()
}

pub(crate) fn v6_prefix(r: &mut Rng) -> Ipv6Net {
    let a = (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
    Ipv6Net::new(Ipv6Addr::from(a), r.below(129) as u8)
        .unwrap()
        .trunc()
}

fn v6_addr(r: &mut Rng) -> Ipv6Addr {
    Ipv6Addr::from((u128::from(r.next_u64()) << 64) | u128::from(r.next_u64()))
}

pub(crate) fn open(r: &mut Rng) -> Open {
    let asn = if r.bool() {
        r.u32()
    } else {
        u32::from(r.u16())
    };
    let mut families = Vec::new();
    if r.bool() {
        families.push((1, 1));
    }
    if r.bool() {
        families.push((2, 1));
    }
    let mut o = Open::new(asn, r.u16(), Ipv4Addr::from(r.u32()), &families);
    if r.bool() {
        let n = r.below(20);
        o.capabilities.push(Capability::Unknown {
            code: [69u8, 70, 71, 73][r.below(4)],
            value: r.bytes(n),
        });
    }
    if r.bool() {
        o.capabilities
            .push(Capability::GracefulRestart(graceful_restart(r)));
    }
    o
}

/// A Graceful Restart capability as it decodes: reserved bits clear, the
/// time within 12 bits.
pub(crate) fn graceful_restart(r: &mut Rng) -> GracefulRestart {
    GracefulRestart {
        restart_state: r.bool(),
        restart_time: r.u16() & 0x0fff,
        families: (0..r.below(4))
            .map(|_| GrFamily {
                afi: [1, 2, r.u16()][r.below(3)],
                safi: [1, r.u8()][r.below(2)],
                forwarding_state: r.bool(),
            })
            .collect(),
    }
}

/// A clean UPDATE: unique attribute types, mandatory attributes present
/// whenever something is announced, so decode(encode(u)) == u.
pub(crate) fn update(r: &mut Rng) -> Update {
    let withdrawn = (0..r.below(5)).map(|_| v4_prefix(r)).collect();
    let nlri = (0..r.below(5)).map(|_| v4_prefix(r)).collect();
    let mut u = Update {
        withdrawn,
        nlri,
        ..Update::default()
    };
    if r.below(3) == 0 {
        u.attributes.push(PathAttribute::MpUnreach(MpUnreach {
            withdrawn: (0..r.below(4)).map(|_| v6_prefix(r)).collect(),
        }));
    }
    let mp_reach = r.bool();
    if mp_reach {
        u.attributes.push(PathAttribute::MpReach(MpReach {
            next_hop: v6_addr(r),
            link_local: r.bool().then(|| v6_addr(r)),
            nlri: (0..r.below(4)).map(|_| v6_prefix(r)).collect(),
        }));
    }
    let announces = !u.nlri.is_empty() || mp_reach;
    if announces || r.bool() {
        u.attributes.push(PathAttribute::Origin(
            [Origin::Igp, Origin::Egp, Origin::Incomplete][r.below(3)],
        ));
        let segs = (0..r.below(3))
            .map(|_| {
                let asns = (0..1 + r.below(6)).map(|_| r.u32()).collect();
                if r.bool() {
                    AsSegment::Sequence(asns)
                } else {
                    AsSegment::Set(asns)
                }
            })
            .collect();
        u.attributes.push(PathAttribute::AsPath(segs));
    }
    if !u.nlri.is_empty() || r.bool() {
        u.attributes
            .push(PathAttribute::NextHop(Ipv4Addr::from(r.u32())));
    }
    if r.bool() {
        u.attributes.push(PathAttribute::Med(r.u32()));
    }
    if r.bool() {
        u.attributes.push(PathAttribute::LocalPref(r.u32()));
    }
    if r.below(4) == 0 {
        u.attributes.push(PathAttribute::AtomicAggregate);
    }
    if r.below(4) == 0 {
        u.attributes.push(PathAttribute::Aggregator {
            asn: r.u32(),
            address: Ipv4Addr::from(r.u32()),
        });
    }
    if r.bool() {
        // Sometimes > 255 octets, to exercise the extended length flag.
        let n = if r.below(4) == 0 {
            70 + r.below(20)
        } else {
            1 + r.below(5)
        };
        u.attributes.push(PathAttribute::Communities(
            (0..n).map(|_| r.u32()).collect(),
        ));
    }
    if r.below(4) == 0 {
        let n = r.below(300);
        u.attributes.push(PathAttribute::Unknown {
            flags: flag::OPTIONAL | flag::TRANSITIVE | if r.bool() { flag::PARTIAL } else { 0 },
            type_code: [16u8, 20, 32, 99, 200][r.below(5)],
            value: r.bytes(n),
        });
    }
    // Attribute order is free on the wire; shuffle to prove it.
    for i in (1..u.attributes.len()).rev() {
        let j = r.below(i + 1);
        u.attributes.swap(i, j);
    }
    u
}

pub(crate) fn message(r: &mut Rng) -> Message {
    match r.below(6) {
        0 => Message::Open(open(r)),
        1 => Message::Update(update(r)),
        2 => {
            let n = r.below(40);
            Message::Notification(Notification::new(r.u8(), r.u8(), r.bytes(n)))
        }
        3 => Message::Keepalive,
        4 => {
            let (afi, safi) = [(1, 1), (2, 1)][r.below(2)];
            Message::Update(Update::end_of_rib(afi, safi).expect("a family we carry"))
        }
        _ => Message::RouteRefresh(RouteRefresh {
            afi: r.u16(),
            reserved: r.u8(),
            safi: r.u8(),
        }),
    }
}
