//! Interop with ExaBGP 4.2: `exabgp` in the on-premises namespace is the
//! customer router (AS 65010) with an MD5-signed IPv4 and IPv6 session to
//! each MSEE link (each neighbour with the one family of its address).
//! Routes are announced and withdrawn through an ExaBGP `api` process (a
//! small Python script written by the test) that forwards the lines appended
//! to a command file in the test directory to ExaBGP and logs every message
//! ExaBGP sends it (received updates, parsed; state changes) to another file.
//! The scenarios are those of the BIRD and GoBGP tests, IPv6 included.
//! Then ExaBGP as a 2-octet-AS router (its 4-octet AS capability off,
//! RFC 6793): the sessions come up, routes with a 4-octet AS in their path
//! carry it through AS4_PATH, and prepending (the customer's, and drain's)
//! still moves traffic.
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use e2e_tests::{
    bgp_lab::{
        BgpLab, CUSTOMER_AS, CUSTOMER_NET, CUSTOMER_NET6, KEY, NsProcess, SESSION_PRIMARY,
        SESSION_SECONDARY, VNET6, WEST_EUROPE, customer_nets, read_logs, wait_for,
    },
    require_root,
};
use lab::Topology;

/// The api process: forwards complete lines appended to `argv[1]` to ExaBGP
/// (its stdout) and appends what ExaBGP writes to it (its stdin) to
/// `argv[2]`. It exits when ExaBGP closes its stdin or stdout.
const API_PY: &str = r#"import os, sys, threading, time
commands, received = sys.argv[1], sys.argv[2]
def log():
    with open(received, "a") as f:
        for line in sys.stdin:
            f.write(line)
            f.flush()
    os._exit(0)
threading.Thread(target=log, daemon=True).start()
pos = 0
while True:
    try:
        with open(commands) as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        data = ""
    if "\n" in data:
        data = data[: data.rindex("\n") + 1]
        try:
            sys.stdout.write(data)
            sys.stdout.flush()
        except BrokenPipeError:
            os._exit(0)
        pos += len(data)
    time.sleep(0.1)
"#;

/// exabgp's configuration; `secondary_key` is the secondary IPv4 session's
/// key. The hold time is 10 s; ExaBGP sends keepalives every hold/3 = 3 s.
/// The IPv6 neighbours negotiate IPv6 unicast only.
fn exabgp_conf(topo: &Topology, dir: &Path, secondary_key: &str) -> String {
    exabgp_conf_with(topo, dir, secondary_key, "")
}

/// [`exabgp_conf`] with `extra` in every neighbour block.
fn exabgp_conf_with(topo: &Topology, dir: &Path, secondary_key: &str, extra: &str) -> String {
    let neighbor = |msee: IpAddr, local: IpAddr, key: &str| {
        let family = if msee.is_ipv6() { "ipv6" } else { "ipv4" };
        format!(
            r#"
neighbor {msee} {{
    router-id {rid};
    local-address {local};
    local-as {CUSTOMER_AS};
    peer-as 12076;
    md5-password "{key}";
    hold-time 10;
    family {{ {family} unicast; }}
    {extra}
    api {{
        processes [ control ];
        neighbor-changes;
        receive {{ parsed; update; notification; }}
    }}
}}
"#,
            rid = topo.primary.customer,
        )
    };
    format!(
        r#"process control {{
    run /usr/bin/env python3 {api} {commands} {received};
    encoder text;
}}
{p}{s}{p6}{s6}"#,
        api = dir.join("exabgp-api.py").display(),
        commands = dir.join("exabgp.commands").display(),
        received = dir.join("exabgp.received").display(),
        p = neighbor(topo.primary.msee.into(), topo.primary.customer.into(), KEY),
        s = neighbor(
            topo.secondary.msee.into(),
            topo.secondary.customer.into(),
            secondary_key
        ),
        p6 = neighbor(
            topo.primary6.msee.into(),
            topo.primary6.customer.into(),
            KEY
        ),
        s6 = neighbor(
            topo.secondary6.msee.into(),
            topo.secondary6.customer.into(),
            KEY
        ),
    )
}

/// `exabgp`, stopped by PID when dropped (SIGTERM; it stops its api process).
struct ExaBgp {
    process: NsProcess,
    dir: PathBuf,
    topo: Topology,
}

impl ExaBgp {
    fn start(topo: &Topology, conf: &str, dir: &Path) -> Self {
        std::fs::write(dir.join("exabgp-api.py"), API_PY).unwrap();
        std::fs::write(dir.join("exabgp.conf"), conf).unwrap();
        // `env` execs exabgp (as does the pyenv shim, where there is one),
        // so the PID NsProcess holds is ExaBGP's. Not listening: ExaBGP
        // connects to the MSEEs; foreground; logs to a file; stays root.
        let args = [
            "exabgp.daemon.daemonize=false".to_owned(),
            "exabgp.daemon.user=root".to_owned(),
            "exabgp.tcp.bind=".to_owned(),
            format!(
                "exabgp.log.destination={}",
                dir.join("exabgp.log").display()
            ),
            "exabgp.log.level=DEBUG".to_owned(),
            "exabgp.log.packets=true".to_owned(),
            "exabgp".to_owned(),
            dir.join("exabgp.conf").display().to_string(),
        ];
        Self {
            process: NsProcess::spawn(&topo.ns_onprem(), "env", &args, dir, "exabgp"),
            dir: dir.to_owned(),
            topo: topo.clone(),
        }
    }

    /// Rewrite the configuration file and have ExaBGP reload it (SIGUSR1).
    /// A neighbour whose definition changed is re-established with it.
    fn reload(&self, conf: &str) {
        std::fs::write(self.dir.join("exabgp.conf"), conf).unwrap();
        nix::sys::signal::kill(self.process.pid(), nix::sys::signal::Signal::SIGUSR1).unwrap();
    }

    /// Hand `line` to ExaBGP through the api process.
    fn api(&self, line: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("exabgp.commands"))
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }

    /// The api's selector for the neighbours of `net`'s family (ExaBGP
    /// refuses, with an error in its log, a route for a neighbour without
    /// its family).
    fn peers(&self, net: &str) -> String {
        let t = &self.topo;
        if net.contains(':') {
            format!(
                "neighbor {} , neighbor {}",
                t.primary6.msee, t.secondary6.msee
            )
        } else {
            format!(
                "neighbor {} , neighbor {}",
                t.primary.msee, t.secondary.msee
            )
        }
    }

    fn announce(&self, net: &str) {
        let peers = self.peers(net);
        self.api(&format!("{peers} announce route {net} next-hop self"));
    }

    fn withdraw(&self, net: &str) {
        let peers = self.peers(net);
        self.api(&format!("{peers} withdraw route {net} next-hop self"));
    }

    /// What ExaBGP told the api process (lossy: a notification's data may
    /// carry any bytes).
    fn received(&self) -> String {
        let bytes = std::fs::read(self.dir.join("exabgp.received")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The last state change the api process was told for `peer` (text
    /// encoder: `neighbor <ip> connected|up|down ...`) is "up".
    fn up(&self, peer: impl Into<IpAddr>) -> bool {
        let peer: IpAddr = peer.into();
        let prefix = format!("neighbor {peer} ");
        self.received()
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .rfind(|rest| {
                ["connected", "up", "down"]
                    .iter()
                    .any(|s| rest.split_whitespace().next() == Some(s))
            })
            .is_some_and(|rest| rest.trim_end() == "up")
    }

    fn log(&self) -> String {
        read_logs(
            &self.dir,
            &[
                "exabgp.log",
                "exabgp.stdout",
                "exabgp.stderr",
                "exabgp.received",
            ],
        )
    }
}

#[test]
fn exabgp_customer_router_over_both_links() {
    if !require_root("exabgp_customer_router_over_both_links") {
        return;
    }
    let have = std::process::Command::new("exabgp")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ExaBGP"));
    if !have {
        panic!("exabgp is missing: install ExaBGP 4.2 (cargo xtask setup does)");
    }
    let lab = BgpLab::up("exabgp");
    let topo = &lab.topo;
    let exa = ExaBgp::start(topo, &exabgp_conf(topo, &lab.dir, KEY), &lab.dir);
    let ctx = |what: &str| lab.ctx(what, &exa.log());

    // 1. Both sessions come up, MD5-signed.
    lab.wait_both_established(Duration::from_secs(30), || exa.log());
    wait_for("ExaBGP sees both up", Duration::from_secs(10), || {
        exa.up(topo.primary.msee) && exa.up(topo.secondary.msee)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    exa.announce(CUSTOMER_NET);
    exa.announce(CUSTOMER_NET6);

    // 2. The announced route reaches both links and traffic follows it.
    lab.check_installed_and_forwarding(false, || exa.log());

    // 3. ExaBGP learned the VNet from both MSEEs with the region community.
    wait_for("VNet route at ExaBGP", Duration::from_secs(15), || {
        let received = exa.received();
        [topo.primary.msee, topo.secondary.msee].iter().all(|m| {
            received.lines().any(|l| {
                l.starts_with(&format!(
                    "neighbor {m} receive update announced 10.1.0.0/16 "
                )) && l.contains(WEST_EUROPE)
                    && l.contains("12076")
            })
        })
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // 2b. The same over IPv6: both IPv6 sessions up (MD5-signed),
    // fd00:c0::/48 on both links, traffic follows it, and ExaBGP learned the
    // VNet's IPv6 range from both MSEEs, AS path 12076, with the region
    // community and the MSEE's IPv6 address as next hop.
    lab.wait_ipv6_established(|| exa.log());
    wait_for(
        "ExaBGP sees both IPv6 sessions up",
        Duration::from_secs(10),
        || exa.up(topo.primary6.msee) && exa.up(topo.secondary6.msee),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    lab.check_installed_and_forwarding(true, || exa.log());
    wait_for("IPv6 VNet route at ExaBGP", Duration::from_secs(15), || {
        let received = exa.received();
        [topo.primary6.msee, topo.secondary6.msee].iter().all(|m| {
            received.lines().any(|l| {
                l.starts_with(&format!(
                    "neighbor {m} receive update announced {VNET6} next-hop {m} "
                )) && l.contains(WEST_EUROPE)
                    && l.contains("as-path [ 12076 ]")
            })
        })
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    lab.check_cli(200);
    lab.check_cli6();

    // AS-path prepending towards the secondary makes it the backup: the
    // route is re-announced to that neighbour alone with a longer AS path.
    let s = topo.secondary.msee;
    exa.api(&format!(
        "neighbor {s} announce route {CUSTOMER_NET} next-hop self as-path [ 65010 65010 65010 ]"
    ));
    wait_for(
        "prepended path on the secondary",
        Duration::from_secs(15),
        || lab.next_hops(CUSTOMER_NET) == vec![("primary".into(), 1), ("secondary".into(), 3)],
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(
        lab.send(7005, 50),
        50,
        "{}",
        ctx("traffic over the preferred link")
    );
    exa.api(&format!(
        "neighbor {s} announce route {CUSTOMER_NET} next-hop self"
    ));
    lab.wait_equal_paths(|| exa.log());

    // 4. Withdrawal, both families.
    exa.withdraw(CUSTOMER_NET);
    lab.check_withdrawn(7002, || exa.log());
    exa.withdraw(CUSTOMER_NET6);
    wait_for("fd00:c0::/48 removed", Duration::from_secs(15), || {
        lab.removed(CUSTOMER_NET6)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(
        lab.send6(7012, 20),
        0,
        "{}",
        ctx("no IPv6 route, no delivery")
    );

    // 5. Six prefixes over a limit of five: Cease / max-prefix, which
    // ExaBGP reports to the api process on both sessions; it keeps the
    // api's routes and re-sends them when the sessions return.
    for net in customer_nets(6) {
        exa.announce(&net);
    }
    lab.wait_max_prefix_teardown(Duration::from_secs(20), || exa.log());
    wait_for("ExaBGP got the Cease", Duration::from_secs(5), || {
        let received = exa.received();
        [topo.primary.msee, topo.secondary.msee].iter().all(|m| {
            received.lines().any(|l| {
                l.starts_with(&format!(
                    "neighbor {m} receive notification code 6 subcode 1 "
                ))
            })
        })
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let before = lab.established(SESSION_PRIMARY);
    exa.withdraw(&customer_nets(6)[5]);
    lab.wait_established_after(SESSION_PRIMARY, before, Duration::from_secs(45), || {
        exa.log()
    });
    wait_for("ExaBGP back up", Duration::from_secs(45), || {
        exa.up(topo.primary.msee) && exa.up(topo.secondary.msee)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    lab.wait_five_installed(Duration::from_secs(15), || exa.log());
    assert_eq!(
        lab.send(7003, 50),
        50,
        "{}",
        ctx("traffic follows the re-learned route")
    );

    // 6. A wrong MD5 key on the secondary never establishes; the primary
    // keeps carrying traffic.
    let before = lab.established(SESSION_SECONDARY);
    let refused = lab.md5_failures();
    exa.reload(&exabgp_conf(topo, &lab.dir, "wrong-key"));
    wait_for(
        "ExaBGP drops the secondary",
        Duration::from_secs(10),
        || !exa.up(topo.secondary.msee),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // ExaBGP does not listen: the daemon's attempts meet no socket.
    lab.wait_md5_refused(refused, false);
    assert_eq!(
        lab.established(SESSION_SECONDARY),
        before,
        "{}",
        ctx("no session with a wrong key")
    );
    assert!(!exa.up(topo.secondary.msee), "{}", ctx("ExaBGP side"));
    lab.check_secondary_down(&exa.log());
    assert!(exa.up(topo.primary.msee), "{}", ctx("ExaBGP side"));
    assert_eq!(
        lab.send(7004, 50),
        50,
        "{}",
        ctx("primary alone carries traffic")
    );
    // The right key again: back up.
    exa.reload(&exabgp_conf(topo, &lab.dir, KEY));
    lab.wait_established_after(SESSION_SECONDARY, before, Duration::from_secs(45), || {
        exa.log()
    });
    // ExaBGP re-sends the api's routes on the new session.
    lab.wait_five_installed(Duration::from_secs(15), || exa.log());
}

/// The last path ExaBGP was told for `prefix` from the MSEE at `msee`
/// (`as-path [ ... ]` of its latest `receive update announced` line).
fn received_path(exa: &ExaBgp, msee: impl Into<IpAddr>, prefix: &str) -> Option<String> {
    let start = format!(
        "neighbor {} receive update announced {prefix} ",
        msee.into()
    );
    exa.received()
        .lines()
        .rfind(|l| l.starts_with(&start))
        .and_then(|l| {
            let from = l.find("as-path [")?;
            let to = from + l[from..].find(']')?;
            Some(l[from + "as-path [".len()..to].trim().to_owned())
        })
}

/// Issue 19: a customer router without the 4-octet AS capability (RFC
/// 6793). Its sessions come up (AS 12076 fits in its OPEN's My AS); its
/// routes are read from 2-octet AS_PATHs, with AS4_PATH merged back for a
/// path through a 4-octet AS; ours reach it in 2-octet form; traffic
/// follows; and prepending moves traffic both ways: the customer's toward
/// the MSEE, and the MSEE's drain (AS 12076 three more times) toward the
/// customer.
#[test]
fn exabgp_two_octet_as_customer_router() {
    if !require_root("exabgp_two_octet_as_customer_router") {
        return;
    }
    let lab = BgpLab::up("exa2");
    let topo = &lab.topo;
    let conf = exabgp_conf_with(topo, &lab.dir, KEY, "capability { asn4 disable; }");
    let exa = ExaBgp::start(topo, &conf, &lab.dir);
    let ctx = |what: &str| lab.ctx(what, &exa.log());
    let (p, s) = (topo.primary.msee, topo.secondary.msee);

    // The sessions come up, negotiated without 4-octet AS on our side.
    lab.wait_both_established(Duration::from_secs(30), || exa.log());
    wait_for("ExaBGP sees both up", Duration::from_secs(10), || {
        exa.up(p) && exa.up(s)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let log = lab.daemon.log();
    let two_octet = log
        .lines()
        .filter(|l| l.contains("bgp session established") && l.contains("four_octet_as=false"))
        .count();
    assert!(two_octet >= 2, "{}", ctx("sessions without 4-octet AS"));
    assert!(
        !log.contains("four_octet_as=true"),
        "{}",
        ctx("no session with 4-octet AS")
    );

    // Its route, 2-octet AS_PATH: on both links, traffic follows.
    exa.announce(CUSTOMER_NET);
    lab.check_installed_and_forwarding(false, || exa.log());
    // Ours reach it with AS 12076 in the 2-octet AS_PATH.
    wait_for("VNet route at ExaBGP", Duration::from_secs(15), || {
        [p, s]
            .iter()
            .all(|m| received_path(&exa, *m, "10.1.0.0/16").as_deref() == Some("12076"))
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // A path through a 4-octet AS: ExaBGP sends AS_TRANS in AS_PATH and
    // the real path in AS4_PATH; the RIB has the whole path (3 ASes on
    // each link, as the API shows), first AS the customer's, and the
    // session's log shows the merged path.
    let path = "[ 65010 4200000001 65020 ]";
    exa.api(&format!(
        "{} announce route {CUSTOMER_NET} next-hop self as-path {path}",
        exa.peers(CUSTOMER_NET)
    ));
    wait_for(
        "the 3-AS path on both links",
        Duration::from_secs(15),
        || lab.next_hops(CUSTOMER_NET) == vec![("primary".into(), 3), ("secondary".into(), 3)],
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let merged = lab
        .daemon
        .log()
        .lines()
        .filter(|l| l.contains("bgp UPDATE from a 2-octet AS peer"))
        .filter(|l| l.contains("Sequence([65010, 4200000001, 65020])"))
        .count();
    assert!(merged >= 2, "{}", ctx("AS4_PATH merged on both links"));
    assert_eq!(
        lab.send(7021, 50),
        50,
        "{}",
        ctx("traffic over the 4-octet path")
    );

    // The customer prepends toward the secondary (2-octet AS_PATH): the
    // primary is preferred.
    exa.api(&format!(
        "neighbor {p} announce route {CUSTOMER_NET} next-hop self"
    ));
    exa.api(&format!(
        "neighbor {s} announce route {CUSTOMER_NET} next-hop self as-path [ 65010 65010 65010 ]"
    ));
    wait_for(
        "prepended path on the secondary",
        Duration::from_secs(15),
        || lab.next_hops(CUSTOMER_NET) == vec![("primary".into(), 1), ("secondary".into(), 3)],
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(
        lab.send(7022, 50),
        50,
        "{}",
        ctx("traffic over the primary")
    );
    exa.announce(CUSTOMER_NET);
    lab.wait_equal_paths(|| exa.log());

    // Drain the secondary: the MSEE makes it the backup, and re-advertises
    // on it with AS 12076 prepended three times, which the 2-octet router
    // receives as such (the primary's path unchanged).
    let drained = lab.cli(&["drain", "er-lab", "secondary"]);
    assert_eq!(drained["drained"], true, "{drained}");
    assert_eq!(
        lab.next_hops(CUSTOMER_NET),
        vec![("primary".into(), 1), ("secondary".into(), 1 + 65536)]
    );
    wait_for("drained path at ExaBGP", Duration::from_secs(15), || {
        received_path(&exa, s, "10.1.0.0/16").as_deref() == Some("12076 12076 12076 12076")
            && received_path(&exa, p, "10.1.0.0/16").as_deref() == Some("12076")
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(lab.send(7023, 50), 50, "{}", ctx("traffic while drained"));
    let undrained = lab.cli(&["undrain", "er-lab", "secondary"]);
    assert_eq!(undrained["drained"], false, "{undrained}");
    lab.wait_equal_paths(|| exa.log());
    wait_for("undrained path at ExaBGP", Duration::from_secs(15), || {
        received_path(&exa, s, "10.1.0.0/16").as_deref() == Some("12076")
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
}
