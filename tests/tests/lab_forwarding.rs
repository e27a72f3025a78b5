//! End to end in a lab: the daemon attaches `msee` to the MSEE's ports and
//! UDP crosses both customer links to the Azure side and back, forwarded by
//! XDP (the kernel in the msee namespace does not forward).
use std::{
    net::{IpAddr, Ipv4Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use e2e_tests::{
    packet::{ParsedUdp, parse_udp},
    require_root, unique_prefix,
};
use lab::{
    IF_AZURE_PEER, IF_PRIMARY, IF_SECONDARY, Lab, Topology,
    daemon::{Daemon, lab_args, port},
    sysctl_get_ns,
    traffic::{Flow, send_and_count},
};
use msee_sys::netns;

const PACKETS: u64 = 500;

/// An AF_PACKET socket on `ifname` in `ns`, to see frames exactly as they arrive.
fn capture(ns: &str, ifname: &str) -> OwnedFd {
    let ifname = ifname.to_owned();
    // SAFETY: plain socket(2)/bind(2)/setsockopt(2) calls on the fd just made,
    // each pointer to a live local of the length passed.
    netns::on_thread(ns, move || unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            i32::from((libc::ETH_P_ALL as u16).to_be()),
        );
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let fd = OwnedFd::from_raw_fd(fd);
        let cname = std::ffi::CString::new(ifname).unwrap();
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = libc::if_nametoindex(cname.as_ptr()) as i32;
        let rc = libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as u32,
        );
        fd
    })
    .unwrap()
}

/// Received UDP frames to `dport` seen on a capture socket (bounded wait).
fn captured_to_port(fd: &OwnedFd, dport: u16) -> Vec<ParsedUdp> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let n = nix::sys::socket::recv(
            fd.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap_or(0);
        if n == 0 {
            if !out.is_empty() {
                break;
            }
            continue;
        }
        if let Some(p) = parse_udp(&buf[..n])
            && p.dport == dport
        {
            out.push(p);
        }
    }
    out
}

/// The source of the first ICMP time exceeded seen on a capture socket.
fn captured_icmp_time_exceeded(fd: &OwnedFd) -> Option<Ipv4Addr> {
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let n = nix::sys::socket::recv(
            fd.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap_or(0);
        if n < 14 + 28 {
            continue;
        }
        let f = &buf[..n];
        if f[12..14] == [0x08, 0x00] && f[14 + 9] == 1 && f[14 + 20] == 11 {
            return Some(Ipv4Addr::new(f[26], f[27], f[28], f[29]));
        }
    }
    None
}

/// Send a frame as-is out of `ifname` in `ns`.
fn inject(ns: &str, ifname: &str, frame: &[u8]) {
    let fd = capture(ns, ifname);
    let n = nix::sys::socket::send(fd.as_raw_fd(), frame, nix::sys::socket::MsgFlags::empty())
        .unwrap_or_else(|e| panic!("inject: {e}"));
    assert_eq!(n, frame.len(), "inject: a short send");
}

fn flow(
    src_ns: String,
    src: impl Into<IpAddr>,
    dev: Option<&str>,
    dst_ns: String,
    dst: impl Into<IpAddr>,
    port: u16,
) -> Flow {
    Flow {
        src_ns,
        src_addr: src.into(),
        src_dev: dev.map(str::to_owned),
        dst_ns,
        dst_addr: dst.into(),
        dst_port: port,
    }
}

fn check_forwarded(frames: &[ParsedUdp], what: &str) {
    assert!(!frames.is_empty(), "{what}: no frame captured");
    for p in frames {
        assert_eq!(p.ttl, 63, "{what}: TTL decremented by exactly one");
        assert!(p.ipv4_checksum_ok, "{what}: IPv4 header checksum valid");
        assert!(p.udp_checksum_ok, "{what}: UDP checksum valid");
    }
}

#[test]
fn udp_crosses_both_links_forwarded_by_xdp() {
    if !require_root("udp_crosses_both_links_forwarded_by_xdp") {
        return;
    }
    let topo = Topology::new(&unique_prefix("fwd")).unwrap();
    let lab = Lab::up(topo.clone()).unwrap();
    let dir = std::env::temp_dir().join(format!("msee-{}", topo.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = lab_args(&topo);
    args.extend(["--log-level".into(), "debug".into()]);
    let mut daemon = Daemon::start(&args, &dir).unwrap();

    // The kernel of the MSEE namespace must not be what forwards.
    assert_eq!(
        sysctl_get_ns(&topo.ns_msee(), "net.ipv4.ip_forward").unwrap(),
        "0"
    );

    let (onprem, azure) = (topo.ns_onprem(), topo.ns_azure());
    let flows = [
        (
            "onprem->azure over primary",
            flow(
                onprem.clone(),
                topo.primary.customer,
                Some(IF_PRIMARY),
                azure.clone(),
                topo.vnet_host,
                5001,
            ),
            (azure.clone(), IF_AZURE_PEER),
        ),
        (
            "onprem->azure over secondary",
            flow(
                onprem.clone(),
                topo.secondary.customer,
                Some(IF_SECONDARY),
                azure.clone(),
                topo.vnet_host,
                5002,
            ),
            (azure.clone(), IF_AZURE_PEER),
        ),
        (
            "azure->onprem over primary",
            flow(
                azure.clone(),
                topo.vnet_host,
                None,
                onprem.clone(),
                topo.primary.customer,
                6001,
            ),
            (onprem.clone(), IF_PRIMARY),
        ),
        (
            "azure->onprem over secondary",
            flow(
                azure.clone(),
                topo.vnet_host,
                None,
                onprem.clone(),
                topo.secondary.customer,
                6002,
            ),
            (onprem.clone(), IF_SECONDARY),
        ),
        // The same four over IPv6 (the /126s of the IPv6 peering).
        (
            "IPv6 onprem->azure over primary",
            flow(
                onprem.clone(),
                topo.primary6.customer,
                Some(IF_PRIMARY),
                azure.clone(),
                topo.vnet_host6,
                5011,
            ),
            (azure.clone(), IF_AZURE_PEER),
        ),
        (
            "IPv6 onprem->azure over secondary",
            flow(
                onprem.clone(),
                topo.secondary6.customer,
                Some(IF_SECONDARY),
                azure.clone(),
                topo.vnet_host6,
                5012,
            ),
            (azure.clone(), IF_AZURE_PEER),
        ),
        (
            "IPv6 azure->onprem over primary",
            flow(
                azure.clone(),
                topo.vnet_host6,
                None,
                onprem.clone(),
                topo.primary6.customer,
                6011,
            ),
            (onprem.clone(), IF_PRIMARY),
        ),
        (
            "IPv6 azure->onprem over secondary",
            flow(
                azure.clone(),
                topo.vnet_host6,
                None,
                onprem.clone(),
                topo.secondary6.customer,
                6012,
            ),
            (onprem.clone(), IF_SECONDARY),
        ),
    ];
    for (what, f, (cap_ns, cap_if)) in &flows {
        // A fresh capture per flow, so earlier traffic cannot fill its buffer.
        let cap = capture(cap_ns, cap_if);
        let r = send_and_count(f, PACKETS).unwrap();
        assert_eq!(r.sent, PACKETS, "{what}");
        assert_eq!(
            r.received,
            PACKETS,
            "{what}: every datagram arrives\n{}",
            daemon.log()
        );
        check_forwarded(&captured_to_port(&cap, f.dst_port), what);
    }

    // TTL 1 toward Azure: the MSEE answers time exceeded from its own
    // address on that link, so traceroute shows the MSEE hop.
    let cap = capture(&onprem, IF_PRIMARY);
    let probe =
        lab::traffic::udp_socket_in(&onprem, topo.primary.customer, Some(IF_PRIMARY)).unwrap();
    nix::sys::socket::setsockopt(&probe, nix::sys::socket::sockopt::Ipv4Ttl, &1).unwrap();
    probe
        .send_to(
            b"traceroute",
            std::net::SocketAddrV4::new(topo.vnet_host, 33434),
        )
        .unwrap();
    let icmp = captured_icmp_time_exceeded(&cap).expect("an ICMP time exceeded came back");
    assert_eq!(icmp, topo.primary.msee, "from the MSEE's primary address");

    // A frame cut inside its IPv4 header, addressed to the MSEE's primary port.
    let msee_mac = lab::mac_of(&topo.ns_msee(), IF_PRIMARY).unwrap();
    let mut runt = vec![0u8; 14 + 10];
    runt[0..6].copy_from_slice(&msee_mac);
    runt[6..12].copy_from_slice(&lab::mac_of(&onprem, IF_PRIMARY).unwrap());
    runt[12..14].copy_from_slice(&[0x08, 0x00]);
    runt[14] = 0x45;
    inject(&onprem, IF_PRIMARY, &runt);
    std::thread::sleep(Duration::from_millis(300));

    let stats = daemon.stop().unwrap();
    let (pri, sec, az) = (
        port(&stats, "primary"),
        port(&stats, "secondary"),
        port(&stats, "azure"),
    );
    // Each customer link carried one flow in and one flow out per address
    // family; the Azure port all of them.
    for (name, p) in [("primary", pri), ("secondary", sec)] {
        assert!(
            p["rx_packets"].as_u64().unwrap() >= 2 * PACKETS,
            "{name} rx: {p}"
        );
        assert_eq!(
            p["tx_packets"].as_u64().unwrap(),
            2 * PACKETS,
            "{name} tx: {p}"
        );
    }
    assert_eq!(
        az["tx_packets"].as_u64().unwrap(),
        4 * PACKETS,
        "azure tx: {az}"
    );
    assert!(
        az["rx_packets"].as_u64().unwrap() >= 4 * PACKETS,
        "azure rx: {az}"
    );
    assert_eq!(
        pri["drops"]["malformed"].as_u64().unwrap(),
        1,
        "the runt is dropped and counted: {pri}"
    );
    // The kernel-side log record of that drop reached the daemon's log.
    let log = daemon.log();
    assert!(
        log.contains("malformed frame"),
        "aya-log record in the daemon log:\n{log}"
    );

    drop(daemon);
    lab.down().unwrap();
    for ns in topo.namespaces() {
        assert!(!netns::exists(&ns), "{ns} removed");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wrong_setups_get_one_clear_line() {
    if !require_root("wrong_setups_get_one_clear_line") {
        return;
    }
    let topo = Topology::new(&unique_prefix("bad")).unwrap();
    let lab = Lab::up(topo.clone()).unwrap();
    let bin = lab::daemon::workspace_bin("msee-daemon").unwrap();
    // Its own state directory, removed at the end (not /var/lib/msee).
    let state = std::env::temp_dir().join(format!("msee-{}-state", topo.prefix));
    let out = std::process::Command::new(&bin)
        .args([
            "--netns",
            &topo.ns_msee(),
            "--primary",
            "primary",
            "--secondary",
            "secondary",
            "--azure",
            "nosuchif",
        ])
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("interface nosuchif does not exist"),
        "{stderr}"
    );

    let out = std::process::Command::new(&bin)
        .args([
            "--netns",
            "no-such-namespace",
            "--primary",
            "a",
            "--secondary",
            "b",
            "--azure",
            "c",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("network namespace no-such-namespace not found"),
        "{stderr}"
    );
    lab.down().unwrap();
    std::fs::remove_dir_all(&state).unwrap();
    assert!(
        !std::path::Path::new("/var/lib/msee")
            .join(topo.ns_msee())
            .exists(),
        "a refused start leaves nothing under /var/lib/msee"
    );
}

/// Azure sends `flows` flows (distinct source ports) of `per_flow` datagrams
/// to the on-prem LAN address; returns how many arrived.
fn azure_to_onprem_lan(topo: &Topology, lan: Ipv4Addr, flows: u16, per_flow: u64) -> u64 {
    use std::net::{SocketAddrV4, UdpSocket};
    let rx = netns::on_thread(&topo.ns_onprem(), move || {
        UdpSocket::bind(SocketAddrV4::new(lan, 7301))
    })
    .unwrap()
    .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for flow in 0..flows {
        let host = topo.vnet_host;
        let tx = netns::on_thread(&topo.ns_azure(), move || {
            UdpSocket::bind(SocketAddrV4::new(host, 21_000 + flow))
        })
        .unwrap()
        .unwrap();
        for _ in 0..per_flow {
            tx.send_to(b"lan", SocketAddrV4::new(lan, 7301)).unwrap();
        }
    }
    let mut got = 0;
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got < u64::from(flows) * per_flow && Instant::now() < deadline {
        if rx.recv(&mut buf).is_ok() {
            got += 1;
        }
    }
    got
}

#[test]
fn carrier_loss_on_a_link_moves_its_flows_to_the_other() {
    if !require_root("carrier_loss_on_a_link_moves_its_flows_to_the_other") {
        return;
    }
    let topo = Topology::new(&unique_prefix("car")).unwrap();
    let lab = Lab::up(topo.clone()).unwrap();
    let lan = Ipv4Addr::new(172, 16, 0, 10);
    let onprem = topo.ns_onprem();
    lab::ip_ns(&onprem, &["addr", "add", &format!("{lan}/32"), "dev", "lo"]).unwrap();
    for key in [
        "net.ipv4.conf.all.rp_filter",
        "net.ipv4.conf.default.rp_filter",
    ] {
        lab::run(
            "ip",
            &[
                "netns",
                "exec",
                &onprem,
                "sysctl",
                "-q",
                "-w",
                &format!("{key}=2"),
            ],
        )
        .unwrap();
    }
    lab::ip_ns(
        &topo.ns_azure(),
        &[
            "route",
            "add",
            "172.16.0.0/16",
            "via",
            &topo.azure_link_msee.to_string(),
        ],
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("msee-{}", topo.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = lab_args(&topo);
    args.extend([
        "--route".into(),
        format!(
            "172.16.0.0/16={},{}",
            topo.primary.customer, topo.secondary.customer
        ),
    ]);
    let mut daemon = Daemon::start(&args, &dir).unwrap();

    assert_eq!(azure_to_onprem_lan(&topo, lan, 32, 5), 160, "both links up");
    // The customer side of the primary goes down: the MSEE port loses carrier.
    lab::ip_ns(&onprem, &["link", "set", IF_PRIMARY, "down"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        azure_to_onprem_lan(&topo, lan, 32, 5),
        160,
        "every flow moved to the secondary\n{}",
        daemon.log()
    );
    lab::ip_ns(&onprem, &["link", "set", IF_PRIMARY, "up"]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        azure_to_onprem_lan(&topo, lan, 32, 5),
        160,
        "and back on both"
    );

    let stats = daemon.stop().unwrap();
    let log = daemon.log();
    assert!(
        log.contains("link flipped") && log.contains("carrier lost") && log.contains("carrier up"),
        "the daemon flipped the link on the carrier change and back:\n{log}"
    );
    // Phase 1 and 3 spread over both links, phase 2 only the secondary.
    let (pri, sec) = (port(&stats, "primary"), port(&stats, "secondary"));
    let (p, s) = (
        pri["tx_packets"].as_u64().unwrap(),
        sec["tx_packets"].as_u64().unwrap(),
    );
    assert_eq!(p + s, 480);
    assert!(p >= 40 && s >= 160 + 40, "primary {p}, secondary {s}");
    drop(daemon);
    lab.down().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
