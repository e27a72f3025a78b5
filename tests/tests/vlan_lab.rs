//! The VLAN shim end to end, in two namespaces joined by one veth: the
//! customer kernel (behind `vlan_pop` + `vlan_push`) and the MSEE kernel
//! (behind `msee` + `vlan_push`) speak TCP and UDP over IPv4 and IPv6 on three
//! peerings, 802.1Q 100 and 200 and QinQ 802.1ad 300 / 802.1Q 10, with
//! neither kernel knowing about VLANs
//! (this kernel has no 802.1Q). ARP and ND resolve through the shim, and
//! captures on both ends show every frame on the wire with its peering's tag.
use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use e2e_tests::{
    packet::{Tag, dot1q},
    require_root, unique_prefix,
    vlan_frames::{ETH_P_IPV4, Kind, PROTO_TCP, PROTO_UDP, classify, eth, ipv4, shim_address, udp},
    vlan_lab::{
        CUST_IFINDEX, Capture, MSEE_IFINDEX, PACKET_OUTGOING, Peering, ShimLab, peerings, send_raw,
        wait_for,
    },
};
use msee_abi::{Direction, GroupMember, Link, LinkRole, Route, vlan::VlanTags};
use msee_sys::netns;

const TCP_BYTES: usize = 256 * 1024;
const UDP_DATAGRAMS: usize = 20;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

macro_rules! root_only {
    ($name:literal) => {
        if !require_root($name) {
            return;
        }
    };
}

fn tag_list(t: VlanTags) -> Vec<Tag> {
    let mut v = vec![Tag {
        tpid: t.outer_tpid,
        vid: t.outer_vid,
    }];
    if t.inner_vid != 0 {
        v.push(dot1q(t.inner_vid));
    }
    v
}

/// A TCP connection from `client_ns` to `server` (in `server_ns`): the client
/// sends `TCP_BYTES`, the server echoes them back once the client is done.
/// Returns the client's local address.
fn tcp_echo(server_ns: &str, server: IpAddr, client_ns: &str) -> Result<SocketAddr> {
    let listener = netns::on_thread(server_ns, move || {
        TcpListener::bind(SocketAddr::new(server, 0))
    })??;
    let to = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let server_side = std::thread::spawn(move || -> Result<usize> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let (mut conn, _) = loop {
            match listener.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    ensure!(Instant::now() < deadline, "no connection to {to}");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e.into()),
            }
        };
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut data = Vec::new();
        conn.read_to_end(&mut data)?;
        conn.write_all(&data)?;
        Ok(data.len())
    });
    let mut conn = netns::on_thread(client_ns, move || {
        TcpStream::connect_timeout(&to, IO_TIMEOUT)
    })?
    .with_context(|| format!("connecting to {to}"))?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let local = conn.local_addr()?;
    let sent: Vec<u8> = (0..TCP_BYTES).map(|i| (i * 7 + i / 251) as u8).collect();
    conn.write_all(&sent)
        .with_context(|| format!("{local} -> {to}: sending"))?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut back = Vec::new();
    conn.read_to_end(&mut back)
        .with_context(|| format!("{local} -> {to}: reading the echo"))?;
    let got = server_side
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    ensure!(got == TCP_BYTES, "{local} -> {to}: server got {got} bytes");
    ensure!(
        back == sent,
        "{local} -> {to}: echo differs ({} bytes)",
        back.len()
    );
    Ok(local)
}

/// `UDP_DATAGRAMS` from `a` to `b` and each answered back.
fn udp_both_ways(a_ns: &str, a: IpAddr, b_ns: &str, b: IpAddr) -> Result<()> {
    let sa = netns::on_thread(a_ns, move || UdpSocket::bind(SocketAddr::new(a, 0)))??;
    let sb = netns::on_thread(b_ns, move || UdpSocket::bind(SocketAddr::new(b, 0)))??;
    for s in [&sa, &sb] {
        s.set_read_timeout(Some(IO_TIMEOUT))?;
    }
    let (to_a, to_b) = (sa.local_addr()?, sb.local_addr()?);
    let mut buf = [0u8; 2048];
    for i in 0..UDP_DATAGRAMS {
        let msg = format!("datagram {i} from {to_a}");
        sa.send_to(msg.as_bytes(), to_b)?;
        let (n, from) = sb.recv_from(&mut buf).context("UDP toward the second")?;
        ensure!(
            from == to_a && &buf[..n] == msg.as_bytes(),
            "{to_a} -> {to_b}"
        );
        let reply = format!("reply {i} from {to_b}");
        sb.send_to(reply.as_bytes(), to_a)?;
        let (n, from) = sa.recv_from(&mut buf).context("UDP back")?;
        ensure!(
            from == to_b && &buf[..n] == reply.as_bytes(),
            "{to_b} -> {to_a}"
        );
    }
    Ok(())
}

/// What kind of frame, for the tallies.
fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Arp { .. } => "ARP",
        Kind::Ipv4 {
            proto: PROTO_TCP, ..
        }
        | Kind::Ipv6 {
            next: PROTO_TCP, ..
        } => "TCP",
        Kind::Ipv4 {
            proto: PROTO_UDP, ..
        }
        | Kind::Ipv6 {
            next: PROTO_UDP, ..
        } => "UDP",
        Kind::Ipv6 {
            icmp_type: Some(135 | 136),
            ..
        } => "ND",
        _ => "other",
    }
}

/// Check every frame a side sent: a frame for a peering's address carries
/// exactly that peering's tags, any other frame none. Frames received are
/// checked to have reached the kernel untagged. Returns a tally of
/// (kind, VLAN id) of the frames sent.
fn check_wire(
    side: &str,
    frames: &[(u8, Vec<u8>)],
    peerings: &[Peering],
) -> HashMap<(&'static str, u16), usize> {
    let mut tally = HashMap::new();
    for (pkttype, frame) in frames {
        let Some((tags, kind)) = classify(frame) else {
            continue;
        };
        if *pkttype != PACKET_OUTGOING {
            assert!(
                tags.is_empty(),
                "{side}: {kind:?} reached the kernel tagged {tags:?}"
            );
            continue;
        }
        let peering = shim_address(&kind).and_then(|a| peerings.iter().find(|p| p.contains(a)));
        let expected = peering.map_or(vec![], |p| tag_list(p.tags));
        assert_eq!(tags, expected, "{side} sent {kind:?}");
        let vid = tags.first().map_or(0, |t| t.vid);
        *tally.entry((kind_name(&kind), vid)).or_insert(0) += 1;
    }
    tally
}

#[test]
fn kernels_speak_tcp_and_udp_over_three_peerings_through_the_shim() {
    root_only!("kernels_speak_tcp_and_udp_over_three_peerings_through_the_shim");
    let lab = ShimLab::up(&unique_prefix("vk")).expect("shim lab up");
    let (cust, msee) = (lab.ns.cust.clone(), lab.ns.msee.clone());
    let cust_cap = Capture::open(&cust, CUST_IFINDEX).unwrap();
    let msee_cap = Capture::open(&msee, MSEE_IFINDEX).unwrap();
    let ps = peerings();
    for p in &ps {
        for (c, m) in [
            (IpAddr::V4(p.customer4()), IpAddr::V4(p.msee4())),
            (IpAddr::V6(p.customer6()), IpAddr::V6(p.msee6())),
        ] {
            // Customer to MSEE (as BGP would be with the customer active),
            // and the other way round (the MSEE active).
            let local =
                tcp_echo(&msee, m, &cust).unwrap_or_else(|e| panic!("TCP {c} -> {m}: {e:#}"));
            assert_eq!(local.ip(), c, "the customer's source on the peering");
            let local =
                tcp_echo(&cust, c, &msee).unwrap_or_else(|e| panic!("TCP {m} -> {c}: {e:#}"));
            assert_eq!(local.ip(), m);
            udp_both_ways(&cust, c, &msee, m).unwrap_or_else(|e| panic!("UDP {c} <-> {m}: {e:#}"));
            udp_both_ways(&msee, m, &cust, c).unwrap_or_else(|e| panic!("UDP {m} <-> {c}: {e:#}"));
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let (cust_frames, msee_frames) = (cust_cap.drain(), msee_cap.drain());
    // TCP sends 64 KiB GSO packets: TC egress tags each once, and the
    // segments cut from it after TC carry the tag, each a full-size frame
    // of at most 1518 bytes (1500 + 14 + 4, or 1496 + 14 + 8 with QinQ).
    for (side, frames) in [("customer", &cust_frames), ("msee", &msee_frames)] {
        let longest = frames.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
        assert!(
            (1500..=1518).contains(&longest),
            "{side}: longest frame {longest} bytes"
        );
        let longest_qinq = frames
            .iter()
            .filter(|(_, f)| f[12..14] == [0x88, 0xa8])
            .map(|(_, f)| f.len())
            .max()
            .unwrap_or(0);
        assert_eq!(longest_qinq, 1518, "{side}: longest QinQ frame");
    }
    let cust_tally = check_wire("customer", &cust_frames, &ps);
    let msee_tally = check_wire("msee", &msee_frames, &ps);
    eprintln!("customer sent (kind, VLAN): {cust_tally:?}");
    eprintln!("msee sent (kind, VLAN): {msee_tally:?}");
    for (side, tally) in [("customer", &cust_tally), ("msee", &msee_tally)] {
        for p in &ps {
            for kind in ["ARP", "ND", "TCP", "UDP"] {
                assert!(
                    tally.get(&(kind, p.tags.outer_vid)).copied().unwrap_or(0) > 0,
                    "{side} sent no {kind} on VLAN {}",
                    p.tags.outer_vid
                );
            }
        }
    }

    // The counters agree: msee passed each peering's frames to the kernel
    // on its link; the shims tagged and dropped nothing; nothing unknown
    // reached vlan_pop.
    for p in &ps {
        let c = lab.msee.link_counters(p.link, Direction::Rx).unwrap();
        assert!(
            c.to_kernel > 0 && c.total_drops() == 0,
            "link {}: {c:?}",
            p.link
        );
    }
    let m = lab.msee_shim.counters(MSEE_IFINDEX).unwrap();
    let c = lab.cust_shim.counters(CUST_IFINDEX).unwrap();
    let pop = lab.cust_pop.counters(CUST_IFINDEX).unwrap();
    eprintln!("msee vlan_push {m:?}\ncustomer vlan_push {c:?}\ncustomer vlan_pop {pop:?}");
    assert!(
        m.tagged > 0 && m.dropped == 0 && m.already_tagged == 0,
        "{m:?}"
    );
    assert!(
        c.tagged > 0 && c.dropped == 0 && c.already_tagged == 0,
        "{c:?}"
    );
    assert!(
        pop.popped > 0 && pop.unknown == 0 && pop.malformed == 0,
        "{pop:?}"
    );
}

#[test]
fn forwarded_frames_skip_tc_egress_and_carry_one_tag() {
    root_only!("forwarded_frames_skip_tc_egress_and_carry_one_tag");
    let mut lab = ShimLab::up(&unique_prefix("vf")).expect("shim lab up");
    let cust = lab.ns.cust.clone();
    let [v100, v200, _] = peerings();
    // msee forwards 10.1.0.0/16 arriving on VLAN 100 back out of the same
    // port on VLAN 200 (link 2), to the customer's MAC.
    const FWD_LINK: u32 = 5;
    lab.msee
        .set_link(
            FWD_LINK,
            Link {
                ifindex: MSEE_IFINDEX,
                outer_vlan: v200.tags.outer_vid,
                outer_tpid: v200.tags.outer_tpid,
                role: LinkRole::Primary as u8,
                src_mac: lab.msee_mac,
                dst_mac: lab.cust_mac,
                circuit: 1,
                ..Default::default()
            },
        )
        .unwrap();
    lab.msee.set_link_state(FWD_LINK, true).unwrap();
    lab.msee
        .set_group(
            FWD_LINK,
            &[GroupMember {
                link: FWD_LINK,
                preference: 0,
            }],
        )
        .unwrap();
    lab.msee
        .upsert_route(
            v100.domain,
            "10.1.0.0/16".parse().unwrap(),
            Route {
                group: FWD_LINK,
                flags: 0,
            },
        )
        .unwrap();
    // Were TC egress to see the forwarded frames, this entry would match
    // them (and the already-tagged count would show it).
    lab.msee_shim
        .set_egress_tag(
            MSEE_IFINDEX,
            "10.1.0.0/16".parse().unwrap(),
            VlanTags::dot1q(300),
        )
        .unwrap();
    // The customer owns 10.1.0.4 and takes packets from an unknown source.
    lab::ip_ns(&cust, &["addr", "add", "10.1.0.4/32", "dev", "lo"]).unwrap();
    for key in ["all", "default", "port"] {
        lab::run(
            "ip",
            &[
                "netns",
                "exec",
                &cust,
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv4.conf.{key}.rp_filter=0"),
            ],
        )
        .unwrap();
    }
    let rx = netns::on_thread(&cust, || UdpSocket::bind("10.1.0.4:5001"))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();

    let n = 20;
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            eth(
                lab.msee_mac,
                lab.cust_mac,
                &tag_list(v100.tags),
                ETH_P_IPV4,
                &ipv4(
                    Ipv4Addr::new(172, 16, 0, 10),
                    Ipv4Addr::new(10, 1, 0, 4),
                    PROTO_UDP,
                    64,
                    &udp(40000, 5001, format!("forwarded {i}").as_bytes()),
                ),
            )
        })
        .collect();
    let msee_before = lab.msee_shim.counters(MSEE_IFINDEX).unwrap();
    let pop_before = lab.cust_pop.counters(CUST_IFINDEX).unwrap();
    send_raw(&cust, CUST_IFINDEX, frames).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + IO_TIMEOUT;
    while got < n && Instant::now() < deadline {
        if let Ok((len, from)) = rx.recv_from(&mut buf) {
            assert_eq!(from, "172.16.0.10:40000".parse().unwrap());
            assert!(buf[..len].starts_with(b"forwarded "));
            got += 1;
        }
    }
    assert_eq!(got, n, "forwarded datagrams delivered, with one tag popped");
    assert!(wait_for(Duration::from_secs(2), || {
        lab.msee
            .link_counters(FWD_LINK, Direction::Tx)
            .unwrap()
            .packets
            == n as u64
    }));
    // msee redirected them out of its port; TC egress never saw one (it
    // would have counted an already-tagged frame: the kernel's own are never).
    let msee_after = lab.msee_shim.counters(MSEE_IFINDEX).unwrap();
    assert_eq!(
        msee_after.already_tagged, msee_before.already_tagged,
        "{msee_after:?}"
    );
    assert_eq!(msee_after.already_tagged, 0);
    // They reached the customer with exactly VLAN 200: popped, none unknown.
    let pop_after = lab.cust_pop.counters(CUST_IFINDEX).unwrap();
    assert!(
        pop_after.popped - pop_before.popped >= n as u64,
        "{pop_after:?}"
    );
    assert_eq!(pop_after.unknown, 0);
    // The positive control: the raw tagged frames the customer sent did go
    // through its own TC egress, which left them alone as already tagged.
    assert_eq!(
        lab.cust_shim.counters(CUST_IFINDEX).unwrap().already_tagged,
        n as u64
    );
}

#[test]
fn the_shim_detaches_when_its_handles_drop() {
    root_only!("the_shim_detaches_when_its_handles_drop");
    use aya::programs::{SchedClassifier, TcAttachType};
    let lab = ShimLab::up(&unique_prefix("vd")).expect("shim lab up");
    let (cust, msee) = (lab.ns.cust.clone(), lab.ns.msee.clone());
    let attached = |ns: &str| {
        netns::on_thread(ns, || -> (usize, bool) {
            let tcx = SchedClassifier::query_tcx(e2e_tests::vlan_lab::PORT, TcAttachType::Egress)
                .map_or(0, |(_, progs)| progs.len());
            let xdp = lab::run(
                "ip",
                &["-d", "link", "show", "dev", e2e_tests::vlan_lab::PORT],
            )
            .unwrap_or_default()
            .contains("prog/xdp");
            (tcx, xdp)
        })
        .unwrap()
    };
    assert_eq!(
        attached(&cust),
        (1, true),
        "customer: vlan_push and vlan_pop"
    );
    assert_eq!(attached(&msee), (1, true), "msee: vlan_push and msee");
    let ShimLab {
        msee: m,
        msee_shim,
        cust_shim,
        cust_pop,
        ns,
        ..
    } = lab;
    drop((msee_shim, cust_shim, cust_pop, m));
    assert_eq!(attached(&cust), (0, false));
    assert_eq!(attached(&msee), (0, false));
    drop(ns);
}
