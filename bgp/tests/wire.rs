//! Codec tests: known vectors, round trips, one test per RFC 4271 /
//! RFC 7606 error class (session reset, treat-as-withdraw, attribute
//! discard), and RFC 6793's 2-octet-AS encoding and AS4_PATH merge.

mod generate;

use bgp::wire::{
    AS_TRANS, AsSegment, AsWidth, Capability, DecodeOptions, ErrorAction, GrFamily,
    GracefulRestart, Message, MpReach, MpUnreach, Notification, Open, Origin, PathAttribute,
    RouteRefresh, Update, error, update::attr,
};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

fn frame(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(msg_type);
    v.extend_from_slice(body);
    v
}

fn raw_update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    frame(2, &b)
}

/// ORIGIN IGP, AS_PATH [65001 65002], NEXT_HOP 192.0.2.1.
const GOOD_ATTRS: &[u8] = &[
    0x40, 1, 1, 0, //
    0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xea, //
    0x40, 3, 4, 192, 0, 2, 1,
];
const NLRI_10_1: &[u8] = &[16, 10, 1];

fn with(extra: &[u8]) -> Vec<u8> {
    [GOOD_ATTRS, extra].concat()
}

fn decode_update(buf: &[u8]) -> Update {
    match Message::decode(buf) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

fn reset(buf: &[u8]) -> Notification {
    Message::decode(buf)
        .expect_err("must reset the session")
        .notification
}

fn p4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn p6(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

// ---------------------------------------------------------------- vectors

#[test]
fn keepalive_is_19_octets() {
    let b = Message::Keepalive.encode().unwrap();
    assert_eq!(b, frame(4, &[]));
    assert_eq!(Message::decode(&b).unwrap(), Message::Keepalive);
}

#[test]
fn open_known_bytes() {
    let o = Open::new(12076, 180, Ipv4Addr::new(10, 0, 0, 1), &[(1, 1), (2, 1)]);
    let b = Message::Open(o.clone()).encode().unwrap();
    #[rustfmt::skip]
    let body = [
        4, 0x2f, 0x2c, 0, 180, 10, 0, 0, 1, 28,
        2, 6, 1, 4, 0, 1, 0, 1,
        2, 6, 1, 4, 0, 2, 0, 1,
        2, 2, 2, 0,
        2, 6, 65, 4, 0, 0, 0x2f, 0x2c,
    ];
    assert_eq!(b, frame(1, &body));
    let Message::Open(d) = Message::decode(&b).unwrap() else {
        panic!()
    };
    assert_eq!(d, o);
    assert!(d.supports_family(2, 1) && d.supports_route_refresh());
    assert_eq!(d.asn(), 12076);
}

#[test]
fn open_four_octet_as_uses_as_trans() {
    let o = Open::new(4_200_000_001, 90, Ipv4Addr::new(1, 1, 1, 1), &[(1, 1)]);
    assert_eq!(o.my_as, AS_TRANS);
    let Message::Open(d) = Message::decode(&Message::Open(o).encode().unwrap()).unwrap() else {
        panic!()
    };
    assert_eq!(d.my_as, 23456);
    assert_eq!(d.asn(), 4_200_000_001);
    assert_eq!(d.four_octet_as(), Some(4_200_000_001));
}

#[test]
fn open_several_capabilities_in_one_parameter() {
    // One optional parameter carrying MP(1/1), route refresh and an unknown cap.
    let body = [
        4, 0xfd, 0xe9, 0, 90, 1, 2, 3, 4, 13, 2, 11, 1, 4, 0, 1, 0, 1, 2, 0, 70, 1, 9,
    ];
    let Message::Open(o) = Message::decode(&frame(1, &body)).unwrap() else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::RouteRefresh,
            Capability::Unknown {
                code: 70,
                value: vec![9]
            }
        ]
    );
    assert_eq!(o.asn(), 65001);
}

// ------------------------------------------------------- graceful restart

/// An OPEN whose only optional parameter is one capability `code` with
/// `value`.
fn open_with_capability(code: u8, value: &[u8]) -> Vec<u8> {
    let mut body = vec![4, 0xfd, 0xe9, 0, 90, 1, 2, 3, 4];
    body.push(2 + 2 + value.len() as u8);
    body.extend_from_slice(&[2, 2 + value.len() as u8, code, value.len() as u8]);
    body.extend_from_slice(value);
    frame(1, &body)
}

fn decode_open(buf: &[u8]) -> Open {
    match Message::decode(buf) {
        Ok(Message::Open(o)) => o,
        other => panic!("expected an OPEN, got {other:?}"),
    }
}

#[test]
fn graceful_restart_capability_known_bytes() {
    let gr = GracefulRestart {
        restart_state: true,
        restart_time: 120,
        families: vec![
            GrFamily {
                afi: 1,
                safi: 1,
                forwarding_state: true,
            },
            GrFamily {
                afi: 2,
                safi: 1,
                forwarding_state: false,
            },
        ],
    };
    let mut o = Open::new(65001, 90, Ipv4Addr::new(1, 2, 3, 4), &[]);
    o.capabilities = vec![Capability::GracefulRestart(gr.clone())];
    let b = Message::Open(o).encode().unwrap();
    // Code 64, length 10: R bit and 120 s in 16 bits, then AFI/SAFI/flags
    // per family, F bit in the top bit of the flags.
    let value = [0x80, 120, 0, 1, 1, 0x80, 0, 2, 1, 0];
    assert_eq!(b, open_with_capability(64, &value));
    let d = decode_open(&b);
    assert_eq!(d.graceful_restart(), Some(&gr));
    assert_eq!(
        d.graceful_restart().unwrap().family(2, 1),
        Some(&GrFamily {
            afi: 2,
            safi: 1,
            forwarding_state: false
        })
    );
    assert_eq!(d.graceful_restart().unwrap().family(2, 128), None);
}

#[test]
fn graceful_restart_reserved_bits_are_ignored() {
    // Every reserved Restart Flags bit (the N bit of RFC 8538 among them,
    // which we do not implement) and every reserved family flag set; the
    // time uses all 12 bits.
    let value = [0x7f, 0xff, 0, 1, 1, 0x7f];
    let d = decode_open(&open_with_capability(64, &value));
    assert_eq!(
        d.graceful_restart(),
        Some(&GracefulRestart {
            restart_state: false,
            restart_time: 4095,
            families: vec![GrFamily {
                afi: 1,
                safi: 1,
                forwarding_state: false
            }],
        })
    );
    // ...and they go out as zero.
    let again = Message::Open(d).encode().unwrap();
    assert_eq!(again, open_with_capability(64, &[0x0f, 0xff, 0, 1, 1, 0]));
}

#[test]
fn graceful_restart_with_no_family_and_the_last_instance_wins() {
    // Helper-only speakers send the capability without families.
    let d = decode_open(&open_with_capability(64, &[0, 90]));
    assert_eq!(d.graceful_restart().unwrap().restart_time, 90);
    assert!(d.graceful_restart().unwrap().families.is_empty());
    // Two instances: the receiver keeps the last (RFC 4724 §3).
    let body = [
        4, 0xfd, 0xe9, 0, 90, 1, 2, 3, 4, 12, //
        2, 4, 64, 2, 0, 10, //
        2, 4, 64, 2, 0x80, 20,
    ];
    let d = decode_open(&frame(1, &body));
    let gr = d.graceful_restart().unwrap();
    assert_eq!((gr.restart_state, gr.restart_time), (true, 20));
}

#[test]
fn graceful_restart_malformed_lengths_are_open_errors() {
    for value in [
        &[][..],
        &[0][..],
        &[0, 90, 0, 1, 1][..],
        &[0, 90, 0, 1, 1, 0, 0][..],
    ] {
        let n = reset(&open_with_capability(64, value));
        assert_eq!(
            (n.code, n.subcode),
            (error::code::OPEN_MESSAGE, 0),
            "{value:?}"
        );
    }
}

#[test]
fn graceful_restart_time_over_12_bits_is_not_encoded() {
    let mut o = Open::new(65001, 90, Ipv4Addr::new(1, 2, 3, 4), &[]);
    o.capabilities = vec![Capability::GracefulRestart(GracefulRestart {
        restart_state: false,
        restart_time: 4096,
        families: vec![],
    })];
    assert!(Message::Open(o).encode().is_err());
}

#[test]
fn end_of_rib_markers() {
    // IPv4 unicast: the 23-octet UPDATE with nothing in it.
    let v4 = Update::end_of_rib(1, 1).unwrap();
    let b = Message::Update(v4).encode().unwrap();
    assert_eq!(b, frame(2, &[0, 0, 0, 0]));
    assert_eq!(decode_update(&b).end_of_rib_family(), Some((1, 1)));
    // IPv6 unicast: MP_UNREACH_NLRI (optional, type 15) with AFI 2, SAFI 1
    // and no prefixes.
    let v6 = Update::end_of_rib(2, 1).unwrap();
    let b = Message::Update(v6).encode().unwrap();
    assert_eq!(b, raw_update(&[], &[0x80, 15, 3, 0, 2, 1], &[]));
    assert_eq!(decode_update(&b).end_of_rib_family(), Some((2, 1)));
    assert_eq!(Update::end_of_rib(1, 2), None);
}

#[test]
fn updates_that_are_not_end_of_rib() {
    let with_prefix = decode_update(&raw_update(&[], GOOD_ATTRS, NLRI_10_1));
    assert_eq!(with_prefix.end_of_rib_family(), None);
    let withdrawal = decode_update(&raw_update(NLRI_10_1, &[], &[]));
    assert_eq!(withdrawal.end_of_rib_family(), None);
    let v6_withdrawal = Update {
        attributes: vec![PathAttribute::MpUnreach(MpUnreach {
            withdrawn: vec![p6("2001:db8::/32")],
        })],
        ..Update::default()
    };
    assert_eq!(v6_withdrawal.end_of_rib_family(), None);
    // Attributes but nothing announced: not a marker either.
    let attrs_only = decode_update(&raw_update(&[], GOOD_ATTRS, &[]));
    assert_eq!(attrs_only.end_of_rib_family(), None);
    // An UPDATE whose only attribute is malformed is emptied by RFC 7606
    // treat-as-withdraw; it still said something, so it is no marker.
    let bad_origin = decode_update(&raw_update(&[], &[0x40, 1, 1, 7], &[]));
    assert!(bad_origin.attributes.is_empty() && bad_origin.nlri.is_empty());
    assert_eq!(bad_origin.end_of_rib_family(), None);
}

#[test]
fn notification_and_route_refresh_round_trip() {
    for m in [
        Message::Notification(Notification::new(6, 1, vec![0, 1, 1, 0, 0, 0, 100])),
        Message::Notification(Notification::new(4, 0, vec![])),
        Message::RouteRefresh(RouteRefresh {
            afi: 2,
            reserved: 0,
            safi: 1,
        }),
    ] {
        assert_eq!(Message::decode(&m.encode().unwrap()).unwrap(), m);
    }
    assert_eq!(
        Message::RouteRefresh(RouteRefresh {
            afi: 1,
            reserved: 0,
            safi: 1
        })
        .encode()
        .unwrap(),
        frame(5, &[0, 1, 0, 1])
    );
}

#[test]
fn update_ipv4_known_bytes() {
    let b = raw_update(&[8, 11], GOOD_ATTRS, NLRI_10_1);
    let u = decode_update(&b);
    assert!(u.issues.is_empty());
    assert_eq!(u.withdrawn, vec![p4("11.0.0.0/8")]);
    assert_eq!(u.nlri, vec![p4("10.1.0.0/16")]);
    assert_eq!(
        u.attributes,
        vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![AsSegment::Sequence(vec![65001, 65002])]),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
        ]
    );
    assert_eq!(Message::Update(u).encode().unwrap(), b);
}

#[test]
fn update_ipv6_mp_reach_with_link_local() {
    let u = Update {
        attributes: vec![
            PathAttribute::MpReach(MpReach {
                next_hop: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
                nlri: vec![p6("2001:db8:100::/48"), p6("::/0")],
            }),
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![
                AsSegment::Sequence(vec![65001]),
                AsSegment::Set(vec![65010, 4_200_000_000]),
            ]),
            PathAttribute::Communities(vec![0xfde9_0064]),
        ],
        ..Update::default()
    };
    let b = Message::Update(u.clone()).encode().unwrap();
    let d = decode_update(&b);
    assert_eq!(d, u);
    assert_eq!(d.announced_v6().len(), 2);
    let r = d.mp_reach().unwrap();
    assert_eq!(r.link_local, Some("fe80::1".parse::<Ipv6Addr>().unwrap()));
}

#[test]
fn extended_length_attribute() {
    let u = Update {
        attributes: vec![PathAttribute::Communities((0..100).collect())],
        ..Update::default()
    };
    let b = Message::Update(u.clone()).encode().unwrap();
    // flags byte has Extended Length; length 400 in two octets.
    assert_eq!(&b[23..27], &[0xd0, 8, 1, 144]);
    assert_eq!(decode_update(&b), u);
}

#[test]
fn encode_refuses_oversized_messages() {
    let u = Update {
        nlri: (0..1100u32)
            .map(|i| Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap())
            .collect(),
        ..Update::default()
    };
    assert!(matches!(
        Message::Update(u).encode(),
        Err(bgp::wire::EncodeError::TooLong(_))
    ));
}

// ------------------------------------------------------ header / session reset

#[test]
fn header_errors() {
    let mut b = Message::Keepalive.encode().unwrap();
    b[3] = 0;
    assert_eq!(reset(&b), Notification::new(1, 1, vec![]));

    let mut b = frame(4, &[]);
    b[17] = 18;
    assert_eq!(reset(&b[..18]), Notification::new(1, 2, vec![0, 18]));
    assert_eq!(
        bgp::wire::frame_len(&b).unwrap_err().notification,
        Notification::new(1, 2, vec![0, 18])
    );
    b[16..18].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(
        bgp::wire::frame_len(&b).unwrap_err().notification,
        Notification::new(1, 2, vec![0x10, 0x01])
    );

    assert_eq!(reset(&frame(9, &[])), Notification::new(1, 3, vec![9]));
    assert_eq!(reset(&frame(4, &[0])), Notification::new(1, 2, vec![0, 20]));
    assert_eq!(
        reset(&frame(5, &[0, 1, 0, 1, 0])),
        Notification::new(1, 2, vec![0, 24])
    );
    assert_eq!(reset(&frame(3, &[6])), Notification::new(1, 2, vec![0, 20]));
    assert_eq!(
        reset(&frame(2, &[0, 0, 0])),
        Notification::new(1, 2, vec![0, 22])
    );
    assert_eq!(
        reset(&frame(1, &[4; 9])),
        Notification::new(1, 2, vec![0, 28])
    );
}

#[test]
fn open_errors() {
    let good = Message::Open(Open::new(65001, 90, Ipv4Addr::new(1, 2, 3, 4), &[(1, 1)]))
        .encode()
        .unwrap();
    let mut b = good.clone();
    b[19] = 3;
    assert_eq!(
        reset(&b),
        Notification::new(
            error::code::OPEN_MESSAGE,
            error::open::UNSUPPORTED_VERSION,
            vec![0, 4]
        )
    );
    // Optional parameter type 1 (authentication, deprecated).
    let mut b = good.clone();
    b[29] = 1;
    assert_eq!(
        reset(&b).subcode,
        error::open::UNSUPPORTED_OPTIONAL_PARAMETER
    );
    // Optional parameters length disagrees with the message.
    let mut b = good.clone();
    b[28] += 1;
    assert_eq!(reset(&b), Notification::new(2, 0, vec![]));
    // Capability length overruns its parameter.
    let body = [4, 0, 1, 0, 90, 1, 2, 3, 4, 4, 2, 2, 1, 4];
    assert_eq!(reset(&frame(1, &body)), Notification::new(2, 0, vec![]));
    // 4-octet AS capability of the wrong length.
    let body = [4, 0, 1, 0, 90, 1, 2, 3, 4, 5, 2, 3, 65, 1, 0];
    assert_eq!(reset(&frame(1, &body)), Notification::new(2, 0, vec![]));
}

#[test]
fn update_session_reset_cases() {
    use error::update::*;
    // Withdrawn Routes Length past the end.
    let mut b = raw_update(&[], &[], &[]);
    b[20] = 5;
    assert_eq!(
        reset(&b),
        Notification::new(3, MALFORMED_ATTRIBUTE_LIST, vec![])
    );
    // Total Path Attribute Length past the end.
    let mut b = raw_update(&[], GOOD_ATTRS, &[]);
    b[22] += 1;
    assert_eq!(
        reset(&b),
        Notification::new(3, MALFORMED_ATTRIBUTE_LIST, vec![])
    );
    // NLRI with prefix length 33, and NLRI running past the end.
    assert_eq!(
        reset(&raw_update(&[], GOOD_ATTRS, &[33, 1, 2, 3, 4, 5])),
        Notification::new(3, INVALID_NETWORK_FIELD, vec![])
    );
    assert_eq!(
        reset(&raw_update(&[], GOOD_ATTRS, &[24, 10, 1])),
        Notification::new(3, INVALID_NETWORK_FIELD, vec![])
    );
    assert_eq!(
        reset(&raw_update(&[25, 1], &[], &[])).subcode,
        INVALID_NETWORK_FIELD
    );
    // Unrecognised well-known attribute: data is the attribute.
    let unknown = [0x40, 99, 1, 7];
    assert_eq!(
        reset(&raw_update(&[], &with(&unknown), NLRI_10_1)),
        Notification::new(3, UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, unknown.to_vec())
    );
    // Overrun in the first attribute of an UPDATE without IPv4 NLRI: an
    // MP_REACH could hide in it, so reset (a truncated header too).
    for attrs in [&[0x40, 1, 5, 0][..], &[0x80, 14], &[0x90, 14, 0]] {
        assert_eq!(
            reset(&raw_update(&[8, 11], attrs, &[])),
            Notification::new(3, MALFORMED_ATTRIBUTE_LIST, vec![])
        );
    }
}

#[test]
fn mp_reach_errors_reset_with_optional_attribute_error() {
    use error::update::*;
    // Next hop length 8 is not valid for IPv6: the NLRI can't be located.
    let mp = [0x80, 14, 14, 0, 2, 1, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
    assert_eq!(
        reset(&raw_update(&[], &with(&mp), &[])),
        Notification::new(3, OPTIONAL_ATTRIBUTE_ERROR, mp.to_vec())
    );
    // Good next hop, NLRI prefix length 129.
    let mut mp = vec![0x80, 14, 23, 0, 2, 1, 16];
    mp.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    mp.extend_from_slice(&[0, 129, 0]);
    assert_eq!(
        reset(&raw_update(&[], &with(&mp), &[])),
        Notification::new(3, OPTIONAL_ATTRIBUTE_ERROR, mp.clone())
    );
    // MP_UNREACH overrun.
    let mpu = [0x80, 15, 5, 0, 2, 1, 64, 0x20];
    assert_eq!(
        reset(&raw_update(&[], &mpu, &[])).subcode,
        OPTIONAL_ATTRIBUTE_ERROR
    );
    // AFI/SAFI we never negotiate (IPv4 multicast).
    let mpu = [0x80, 15, 3, 0, 1, 2];
    assert_eq!(
        reset(&raw_update(&[], &mpu, &[])).subcode,
        OPTIONAL_ATTRIBUTE_ERROR
    );
    // MP_UNREACH twice (RFC 7606 §3.g).
    let mpu = [0x80, 15, 3, 0, 2, 1];
    assert_eq!(
        reset(&raw_update(&[], &[mpu, mpu].concat(), &[])),
        Notification::new(3, MALFORMED_ATTRIBUTE_LIST, vec![])
    );
}

// ---------------------------------------------------------- treat-as-withdraw

fn assert_withdrawn(u: &Update, type_code: u8) {
    assert!(u.treated_as_withdraw(), "{u:?}");
    assert!(u.nlri.is_empty());
    assert!(u.withdrawn.contains(&p4("10.1.0.0/16")));
    assert!(
        u.issues
            .iter()
            .any(|i| i.type_code == type_code && i.action == ErrorAction::TreatAsWithdraw),
        "{u:?}"
    );
    assert!(u.mp_reach().is_none());
}

#[test]
fn treat_as_withdraw_per_attribute() {
    let nh = [0x40, 3, 4, 192, 0, 2, 1];
    let asp = [0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
    let org = [0x40, 1, 1, 0];
    let cases: Vec<(u8, Vec<u8>)> = vec![
        // ORIGIN length 2, ORIGIN value 3.
        (attr::ORIGIN, [&[0x40, 1, 2, 0, 0][..], &asp, &nh].concat()),
        (attr::ORIGIN, [&[0x40, 1, 1, 3][..], &asp, &nh].concat()),
        // ORIGIN flagged optional.
        (attr::ORIGIN, [&[0xc0, 1, 1, 0][..], &asp, &nh].concat()),
        // AS_PATH: unknown segment type, zero-length segment, overrun, confed.
        (
            attr::AS_PATH,
            [&org[..], &[0x40, 2, 6, 9, 1, 0, 0, 0, 1], &nh].concat(),
        ),
        (attr::AS_PATH, [&org[..], &[0x40, 2, 2, 2, 0], &nh].concat()),
        (
            attr::AS_PATH,
            [&org[..], &[0x40, 2, 6, 2, 2, 0, 0, 0, 1], &nh].concat(),
        ),
        (
            attr::AS_PATH,
            [&org[..], &[0x40, 2, 6, 3, 1, 0, 0, 0, 1], &nh].concat(),
        ),
        // NEXT_HOP length 5.
        (
            attr::NEXT_HOP,
            [&org[..], &asp, &[0x40, 3, 5, 1, 2, 3, 4, 5]].concat(),
        ),
        // MED length 3, COMMUNITIES length 5 and 0, LOCAL_PREF length 2 (iBGP rules).
        (attr::MULTI_EXIT_DISC, with(&[0x80, 4, 3, 0, 0, 1])),
        (attr::COMMUNITIES, with(&[0xc0, 8, 5, 0, 0, 0, 1, 2])),
        (attr::COMMUNITIES, with(&[0xc0, 8, 0])),
        (attr::LOCAL_PREF, with(&[0x40, 5, 2, 0, 1])),
        // Missing well-known mandatory attributes.
        (attr::NEXT_HOP, [&org[..], &asp].concat()),
        (attr::ORIGIN, [&asp[..], &nh].concat()),
        (attr::AS_PATH, [&org[..], &nh].concat()),
        // Attribute overrun with IPv4 NLRI present (NLRI still locatable),
        // and fewer octets left than an attribute header (RFC 7606 §4).
        (attr::MULTI_EXIT_DISC, with(&[0x80, 4, 4, 0, 0])),
        (attr::MULTI_EXIT_DISC, with(&[0x80, 4])),
        (0, with(&[0x80])),
    ];
    for (t, attrs) in cases {
        let u = decode_update(&raw_update(&[8, 11], &attrs, NLRI_10_1));
        assert_withdrawn(&u, t);
        assert!(
            u.withdrawn.contains(&p4("11.0.0.0/8")),
            "keeps real withdrawals"
        );
        assert!(u.attributes.is_empty());
    }
}

#[test]
fn treat_as_withdraw_moves_mp_reach_to_unreach() {
    let u = Update {
        attributes: vec![
            PathAttribute::MpReach(MpReach {
                next_hop: "2001:db8::1".parse().unwrap(),
                link_local: None,
                nlri: vec![p6("2001:db8:1::/48")],
            }),
            PathAttribute::AsPath(vec![AsSegment::Sequence(vec![65001])]),
        ],
        ..Update::default()
    };
    let mut b = Message::Update(u).encode().unwrap();
    // Append a malformed ORIGIN (length 2) and fix the lengths.
    b.extend_from_slice(&[0x40, 1, 2, 0, 0]);
    let len = b.len() as u16;
    b[16..18].copy_from_slice(&len.to_be_bytes());
    let alen = u16::from_be_bytes([b[21], b[22]]) + 5;
    b[21..23].copy_from_slice(&alen.to_be_bytes());
    let d = decode_update(&b);
    assert!(d.treated_as_withdraw());
    assert!(d.announced_v6().is_empty());
    assert_eq!(d.withdrawn_v6(), &[p6("2001:db8:1::/48")]);

    // MP_REACH without ORIGIN: missing mandatory attribute.
    let u = Update {
        attributes: vec![PathAttribute::MpReach(MpReach {
            next_hop: "2001:db8::1".parse().unwrap(),
            link_local: None,
            nlri: vec![p6("2001:db8:2::/48")],
        })],
        ..Update::default()
    };
    let d = decode_update(&Message::Update(u).encode().unwrap());
    assert_eq!(d.withdrawn_v6(), &[p6("2001:db8:2::/48")]);
    assert!(d.issues.iter().any(|i| i.type_code == attr::ORIGIN));
}

#[test]
fn mp_reach_with_wrong_flags_is_parsed_then_withdrawn() {
    let mut mp = vec![0xc0, 14, 24, 0, 2, 1, 16];
    mp.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    mp.extend_from_slice(&[0, 16, 0x20, 0x01]);
    let d = decode_update(&raw_update(&[], &with(&mp), &[]));
    assert!(d.treated_as_withdraw());
    assert_eq!(d.withdrawn_v6(), &[p6("2001::/16")]);
}

#[test]
fn overrun_after_mp_attributes_withdraws_their_prefixes() {
    // MP_UNREACH first (RFC 7606 §5.1), then an ORIGIN overrunning the field.
    let mut attrs = vec![0x80, 15, 6, 0, 2, 1, 16, 0x20, 0x01];
    attrs.extend_from_slice(&[0x40, 1, 9, 0]);
    let u = decode_update(&raw_update(&[], &attrs, &[]));
    assert!(u.treated_as_withdraw());
    assert_eq!(u.withdrawn_v6(), &[p6("2001::/16")]);
    // Overrun after a non-MP attribute: no MP attribute can follow a
    // compliant first attribute, so withdraw rather than reset.
    let u = decode_update(&raw_update(&[8, 11], &[0x40, 1, 1, 0, 0x80, 4, 9], &[]));
    assert!(u.treated_as_withdraw());
    assert_eq!(u.withdrawn, vec![p4("11.0.0.0/8")]);
}

// ----------------------------------------------------------- attribute discard

#[test]
fn attribute_discard_cases() {
    let cases: Vec<(u8, Vec<u8>)> = vec![
        (attr::ATOMIC_AGGREGATE, with(&[0x40, 6, 1, 0])),
        (
            attr::AGGREGATOR,
            with(&[0xc0, 7, 6, 0, 0, 0xfd, 0xe9, 1, 2]),
        ),
        // AGGREGATOR flagged well-known: flags conflict, still only discard.
        (
            attr::AGGREGATOR,
            with(&[0x40, 7, 8, 0, 0, 0xfd, 0xe9, 1, 2, 3, 4]),
        ),
        // Second MED ignored, first kept.
        (
            attr::MULTI_EXIT_DISC,
            with(&[0x80, 4, 4, 0, 0, 0, 1, 0x80, 4, 4, 0, 0, 0, 2]),
        ),
    ];
    for (t, attrs) in cases {
        let u = decode_update(&raw_update(&[], &attrs, NLRI_10_1));
        assert!(!u.treated_as_withdraw(), "{u:?}");
        assert_eq!(u.nlri, vec![p4("10.1.0.0/16")]);
        assert_eq!(u.issues.len(), 1, "{u:?}");
        assert_eq!(u.issues[0].type_code, t);
        assert_eq!(u.issues[0].action, ErrorAction::AttributeDiscard);
        assert!(u.attribute(attr::ORIGIN).is_some());
    }
    let u = decode_update(&raw_update(
        &[],
        &with(&[0x80, 4, 4, 0, 0, 0, 1, 0x80, 4, 4, 0, 0, 0, 2]),
        NLRI_10_1,
    ));
    assert_eq!(
        u.attribute(attr::MULTI_EXIT_DISC),
        Some(&PathAttribute::Med(1))
    );
}

#[test]
fn local_pref_from_external_peer_is_discarded() {
    let b = raw_update(&[], &with(&[0x40, 5, 4, 0, 0, 0, 100]), NLRI_10_1);
    let ext = DecodeOptions {
        external_peer: true,
        ..DecodeOptions::default()
    };
    let Message::Update(u) = Message::decode_with(&b, ext).unwrap() else {
        panic!()
    };
    assert!(u.attribute(attr::LOCAL_PREF).is_none());
    assert_eq!(u.issues[0].action, ErrorAction::AttributeDiscard);
    assert_eq!(u.nlri.len(), 1);
    // Malformed too: still only discarded from an eBGP peer.
    let b = raw_update(&[], &with(&[0x40, 5, 1, 0]), NLRI_10_1);
    let Message::Update(u) = Message::decode_with(&b, ext).unwrap() else {
        panic!()
    };
    assert!(!u.treated_as_withdraw());
    // iBGP keeps a good one.
    let b = raw_update(&[], &with(&[0x40, 5, 4, 0, 0, 0, 100]), NLRI_10_1);
    assert_eq!(
        decode_update(&b).attribute(attr::LOCAL_PREF),
        Some(&PathAttribute::LocalPref(100))
    );
}

#[test]
fn unknown_optional_attributes() {
    // Optional transitive: kept verbatim (Partial bit preserved).
    let b = raw_update(&[], &with(&[0xe0, 99, 2, 7, 7]), NLRI_10_1);
    let u = decode_update(&b);
    assert_eq!(
        u.attribute(99),
        Some(&PathAttribute::Unknown {
            flags: 0xe0,
            type_code: 99,
            value: vec![7, 7]
        })
    );
    assert_eq!(Message::Update(u).encode().unwrap(), b);
    // Optional non-transitive: quietly dropped.
    let u = decode_update(&raw_update(&[], &with(&[0x80, 99, 1, 7]), NLRI_10_1));
    assert!(u.attribute(99).is_none() && u.issues.is_empty());
}

// ------------------------------------------------------------- properties

#[test]
fn round_trip_random_messages() {
    let mut r = generate::Rng::new(0x0005_eed1_2076);
    let mut checked = 0;
    for _ in 0..5000 {
        let m = generate::message(&mut r);
        let Ok(b) = m.encode() else { continue };
        assert_eq!(bgp::wire::frame_len(&b).unwrap(), Some(b.len()));
        let d = Message::decode(&b).unwrap_or_else(|e| panic!("{e} for {m:?}"));
        assert_eq!(d, m);
        assert_eq!(d.encode().unwrap(), b);
        checked += 1;
    }
    assert!(checked > 4900, "generator makes encodable messages");
}

#[test]
fn every_truncation_is_an_error() {
    let mut r = generate::Rng::new(42);
    let mut samples: Vec<Vec<u8>> = (0..200)
        .filter_map(|_| generate::message(&mut r).encode().ok())
        .collect();
    samples.push(raw_update(&[8, 11], GOOD_ATTRS, NLRI_10_1));
    for full in &samples {
        for len in 0..full.len() {
            let cut = &full[..len];
            assert!(Message::decode(cut).is_err(), "truncated to {len}: {cut:?}");
            // Same cut with the header length patched to match: body parsers
            // see a short body. Must not panic; a prefix-aligned cut of an
            // UPDATE or NOTIFICATION may legitimately decode.
            if len >= 19 {
                let mut patched = cut.to_vec();
                patched[16..18].copy_from_slice(&(len as u16).to_be_bytes());
                let _ = Message::decode(&patched);
            }
        }
    }
}

/// The fuzz seeds in `fuzz/seeds` are valid, clean messages (so the fuzzer
/// starts past the marker and length checks) and round-trip exactly.
#[test]
fn fuzz_seeds_are_valid_messages() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let b = std::fs::read(&path).unwrap();
        let m = Message::decode(&b).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Message::Update(u) = &m {
            assert!(u.issues.is_empty(), "{}: {u:?}", path.display());
        }
        assert_eq!(m.encode().unwrap(), b, "{}", path.display());
        n += 1;
    }
    assert_eq!(n, 7);
}

// ---------------------------------------------------- RFC 6793: 2-octet peers

const TWO: DecodeOptions = DecodeOptions {
    external_peer: true,
    as_width: AsWidth::Two,
};

fn decode_two(buf: &[u8]) -> Update {
    match Message::decode_with(buf, TWO) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

fn seq(v: &[u32]) -> AsSegment {
    AsSegment::Sequence(v.to_vec())
}

/// An MSEE advertisement with `path`, as speaker.rs builds them.
fn advert(path: Vec<AsSegment>) -> Update {
    Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(path),
            PathAttribute::NextHop(Ipv4Addr::new(192, 168, 100, 130)),
            PathAttribute::Communities(vec![(12076 << 16) | 51002]),
        ],
        nlri: vec![p4("10.1.0.0/16")],
        ..Update::default()
    }
}

/// The attribute block of an encoded UPDATE without withdrawals.
fn attrs_of(bytes: &[u8]) -> &[u8] {
    let alen = usize::from(u16::from_be_bytes([bytes[21], bytes[22]]));
    &bytes[23..23 + alen]
}

/// Our own route toward a 2-octet peer: AS 12076 fits, so AS_PATH in 2
/// octets and no AS4_PATH (RFC 6793 §4.2.2: SHOULD NOT when all fit).
/// Drain prepends it three more times: still 2 octets each.
#[test]
fn our_routes_toward_a_two_octet_peer_known_bytes() {
    for copies in [1usize, 4] {
        let u = advert(vec![seq(&vec![12076; copies])]);
        let b = Message::Update(u.clone())
            .encode_with(AsWidth::Two)
            .unwrap();
        let mut as_path = vec![0x40, 2, 2 + 2 * copies as u8, 2, copies as u8];
        for _ in 0..copies {
            as_path.extend_from_slice(&[0x2f, 0x2c]);
        }
        let a = attrs_of(&b);
        assert_eq!(&a[4..4 + as_path.len()], &as_path[..], "{a:?}");
        assert!(!a.windows(2).any(|w| w == [0xc0, attr::AS4_PATH]), "{a:?}");
        assert_eq!(decode_two(&b), u, "round trip");
        // The 4-octet encoding of the same route differs (and is what a
        // 4-octet peer gets).
        assert_ne!(Message::Update(u).encode().unwrap(), b);
    }
}

/// A path with another customer's 4-octet AS (Global Reach) toward a
/// 2-octet peer: AS_TRANS in the AS_PATH, the real path in AS4_PATH right
/// after it, and the 2-octet peer's view round-trips to the real path.
#[test]
fn four_octet_asns_toward_a_two_octet_peer_use_as_trans_and_as4_path() {
    let path = vec![seq(&[12076, 12076, 4_200_000_001, 65020])];
    let u = advert(path.clone());
    let b = Message::Update(u.clone())
        .encode_with(AsWidth::Two)
        .unwrap();
    let a = attrs_of(&b);
    let expected: &[u8] = &[
        0x40, 2, 10, 2, 4, 0x2f, 0x2c, 0x2f, 0x2c, 0x5b, 0xa0, 0xfd, 0xfc, //
        0xc0, 17, 18, 2, 4, 0, 0, 0x2f, 0x2c, 0, 0, 0x2f, 0x2c, 0xfa, 0x56, 0xea, 0x01, 0, 0, 0xfd,
        0xfc,
    ];
    assert_eq!(&a[4..4 + expected.len()], expected, "{a:?}");
    assert_eq!(decode_two(&b), u, "AS4_PATH merged back");
    // AGGREGATOR likewise: AS_TRANS in 6 octets, then AS4_AGGREGATOR.
    let mut u = u;
    u.attributes.push(PathAttribute::Aggregator {
        asn: 4_200_000_001,
        address: Ipv4Addr::new(198, 51, 100, 1),
    });
    let b = Message::Update(u.clone())
        .encode_with(AsWidth::Two)
        .unwrap();
    let a = attrs_of(&b);
    let tail: &[u8] = &[
        0xc0, 7, 6, 0x5b, 0xa0, 198, 51, 100, 1, //
        0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x01, 198, 51, 100, 1,
    ];
    assert!(a.ends_with(tail), "{a:?}");
    assert_eq!(decode_two(&b), u);
    // A 2-octet aggregator needs no AS4_AGGREGATOR.
    let small = PathAttribute::Aggregator {
        asn: 65020,
        address: Ipv4Addr::new(198, 51, 100, 1),
    };
    let u = Update {
        attributes: vec![small.clone()],
        ..advert(vec![seq(&[12076])])
    };
    let b = Message::Update(u).encode_with(AsWidth::Two).unwrap();
    assert_eq!(attrs_of(&b), [0xc0, 7, 6, 0xfd, 0xfc, 198, 51, 100, 1]);
}

/// A 2-octet-AS customer router's UPDATE: AS_PATH [65010 AS_TRANS 65020]
/// with AS4_PATH [4200000001 65020] (it learned the path from a 4-octet
/// AS): the decoded path is the real one.
#[test]
fn from_a_two_octet_peer_as4_path_is_merged() {
    let attrs: &[u8] = &[
        0x40, 1, 1, 0, //
        0x40, 2, 8, 2, 3, 0xfd, 0xf2, 0x5b, 0xa0, 0xfd, 0xfc, //
        0x40, 3, 4, 192, 0, 2, 1, //
        0xc0, 17, 10, 2, 2, 0xfa, 0x56, 0xea, 0x01, 0, 0, 0xfd, 0xfc,
    ];
    let u = decode_two(&raw_update(&[], attrs, NLRI_10_1));
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    assert_eq!(
        u.attributes,
        vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![seq(&[65010, 4_200_000_001, 65020])]),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
        ],
        "AS4_PATH consumed, not kept as an unknown attribute"
    );
    // Without AS4_PATH: just the 2-octet path.
    let u = decode_two(&raw_update(&[], &attrs[..22], NLRI_10_1));
    assert_eq!(
        u.attribute(attr::AS_PATH),
        Some(&PathAttribute::AsPath(vec![seq(&[65010, 23456, 65020])]))
    );
}

/// RFC 6793 §4.2.3's rules on AGGREGATOR / AS4_AGGREGATOR and the length
/// of AS4_PATH.
#[test]
fn as4_merge_rules() {
    // ORIGIN, AS_PATH [65010 AS_TRANS] (2-octet), NEXT_HOP.
    let base: &[u8] = &[
        0x40, 1, 1, 0, //
        0x40, 2, 6, 2, 2, 0xfd, 0xf2, 0x5b, 0xa0, //
        0x40, 3, 4, 192, 0, 2, 1,
    ];
    let as4_path: &[u8] = &[0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01];
    let agg = |asn: u16| {
        let mut v = vec![0xc0, 7, 6];
        v.extend_from_slice(&asn.to_be_bytes());
        v.extend_from_slice(&[198, 51, 100, 1]);
        v
    };
    let as4_agg: &[u8] = &[0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x02, 203, 0, 113, 9];
    let merged = PathAttribute::AsPath(vec![seq(&[65010, 4_200_000_001])]);
    let unmerged = PathAttribute::AsPath(vec![seq(&[65010, u32::from(AS_TRANS)])]);
    let decode = |parts: &[&[u8]]| decode_two(&raw_update(&[], &parts.concat(), NLRI_10_1));

    // AGGREGATOR AS_TRANS + AS4_AGGREGATOR: the latter is the aggregator,
    // and the AS4_PATH is merged.
    let u = decode(&[base, &agg(AS_TRANS), as4_agg, as4_path]);
    assert_eq!(u.attribute(attr::AS_PATH), Some(&merged));
    assert_eq!(
        u.attribute(attr::AGGREGATOR),
        Some(&PathAttribute::Aggregator {
            asn: 4_200_000_002,
            address: Ipv4Addr::new(203, 0, 113, 9)
        })
    );
    // AGGREGATOR with a real 2-octet AS next to AS4_AGGREGATOR: a 2-octet
    // speaker aggregated later, so both AS4 attributes are ignored.
    let u = decode(&[base, &agg(65030), as4_agg, as4_path]);
    assert_eq!(u.attribute(attr::AS_PATH), Some(&unmerged));
    assert_eq!(
        u.attribute(attr::AGGREGATOR),
        Some(&PathAttribute::Aggregator {
            asn: 65030,
            address: Ipv4Addr::new(198, 51, 100, 1)
        })
    );
    // AGGREGATOR without AS4_AGGREGATOR: AS4_PATH is still merged.
    let u = decode(&[base, &agg(65030), as4_path]);
    assert_eq!(u.attribute(attr::AS_PATH), Some(&merged));
    // AS4_AGGREGATOR without AGGREGATOR: ignored.
    let u = decode(&[base, as4_agg, as4_path]);
    assert_eq!(u.attribute(attr::AGGREGATOR), None);
    assert_eq!(u.attribute(attr::AS_PATH), Some(&merged));
    // An AS4_PATH longer than the AS_PATH is ignored.
    let long: &[u8] = &[
        0xc0, 17, 14, 2, 3, 0, 0, 0xfd, 0xf2, 0xfa, 0x56, 0xea, 0x01, 0, 0, 0, 1,
    ];
    let u = decode(&[base, long]);
    assert_eq!(u.attribute(attr::AS_PATH), Some(&unmerged));
    assert!(u.issues.is_empty());
}

/// Errors in the AS4 attributes are attribute discards (RFC 6793 §6):
/// the route stands on its AS_PATH. A 4-octet AGGREGATOR from a 2-octet
/// peer is malformed and discarded too.
#[test]
fn malformed_as4_attributes_are_discarded() {
    let base: &[u8] = &[
        0x40, 1, 1, 0, //
        0x40, 2, 6, 2, 2, 0xfd, 0xf2, 0x5b, 0xa0, //
        0x40, 3, 4, 192, 0, 2, 1,
    ];
    for (bad, type_code) in [
        (&[0xc0, 17, 5, 2, 1, 0xfa, 0x56, 0xea][..], attr::AS4_PATH),
        (
            &[0x40, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01][..],
            attr::AS4_PATH,
        ),
        (
            &[0xc0, 18, 6, 0, 1, 203, 0, 113, 9][..],
            attr::AS4_AGGREGATOR,
        ),
        (
            &[0xc0, 7, 8, 0, 0, 0xfd, 0xf2, 1, 2, 3, 4][..],
            attr::AGGREGATOR,
        ),
    ] {
        let u = decode_two(&raw_update(&[], &[base, bad].concat(), NLRI_10_1));
        assert!(!u.treated_as_withdraw(), "{bad:?}: {:?}", u.issues);
        assert_eq!(u.nlri, vec![p4("10.1.0.0/16")]);
        assert_eq!(u.issues.len(), 1, "{bad:?}");
        assert_eq!(
            (u.issues[0].type_code, u.issues[0].action),
            (type_code, ErrorAction::AttributeDiscard)
        );
        assert_eq!(
            u.attribute(attr::AS_PATH),
            Some(&PathAttribute::AsPath(vec![seq(&[65010, 23456])]))
        );
    }
}

/// Between 4-octet speakers AS4_PATH and AS4_AGGREGATOR are discarded on
/// receipt (RFC 6793 §4.1) and never relayed.
#[test]
fn as4_attributes_from_a_four_octet_peer_are_discarded() {
    let as4: &[u8] = &[
        0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01, //
        0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x02, 203, 0, 113, 9,
    ];
    let u = decode_update(&raw_update(&[], &with(as4), NLRI_10_1));
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    assert_eq!(u.attributes.len(), 3, "{:?}", u.attributes);
    assert_eq!(
        u.attribute(attr::AS_PATH),
        Some(&PathAttribute::AsPath(vec![seq(&[65001, 65002])]))
    );
    let mut relayed = u.clone();
    relayed.attributes.push(PathAttribute::Unknown {
        flags: 0xc0,
        type_code: attr::AS4_PATH,
        value: vec![2, 1, 0, 0, 0, 1],
    });
    assert_eq!(
        Message::Update(relayed).encode().unwrap(),
        Message::Update(u).encode().unwrap()
    );
}
