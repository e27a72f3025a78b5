//! Restarting `msee-daemon` under traffic (issue 21): the lab with FRR as
//! the customer (graceful restart on or off, BFD or not), traffic both
//! ways counted packet by packet, and the daemon stopped (SIGTERM) or
//! killed (SIGKILL) and started again on the same state directory. The
//! `restart` tests assert on it; `msee-bench faults` reports it.
use std::time::Duration;

use lab::{
    daemon::Daemon,
    traffic::{FlowResult, send_and_count_at},
};

use crate::{
    bgp_lab::{
        BgpLab, SESSION_PRIMARY, SESSION_SECONDARY, circuit_toml, circuit_toml_with, wait_for,
    },
    frr::{Frr, bfdd_conf, customer_conf, customer_conf_bfd},
};

/// How the daemon goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, as an upgrade.
    Term,
    /// SIGKILL, as a crash.
    Kill,
}

/// The customer's router.
#[derive(Clone, Copy, Debug)]
pub struct Customer {
    /// `bgp graceful-restart` (with forwarding state preserved); otherwise
    /// `bgp graceful-restart-disable` (FRR is a helper by default).
    pub graceful_restart: bool,
    /// BFD on both IPv4 sessions, 300 ms x 3, with `bfd
    /// check-control-plane-failure` (RFC 5882 §4.3.1).
    pub bfd: bool,
}

pub struct RestartLab {
    pub frr: Frr,
    pub lab: BgpLab,
    pub customer: Customer,
}

/// The XDP program id on `dev` in `ns` (`None`: no program).
pub fn xdp_prog(ns: &str, dev: &str) -> Option<u64> {
    let out = std::process::Command::new("ip")
        .args(["-j", "-d", "-n", ns, "link", "show", "dev", dev])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v[0]["xdp"]["prog"]["id"].as_u64()
}

/// One restart of a run: how, and what ran on the primary port before and
/// after (the new daemon's program swapped in).
#[derive(Clone, Debug)]
pub struct Restart {
    pub stop: Stop,
    pub prog_before: Option<u64>,
    pub prog_after: Option<u64>,
    /// The stopped daemon's log, and the log of the one that replaced it
    /// once it was back.
    pub old_log: String,
    pub new_log: String,
}

impl RestartLab {
    /// The lab, FRR up, both sessions established and forwarding (and BFD
    /// up with `customer.bfd`); the daemon run as the product runs by
    /// default (its exit leaves forwarding), with `daemon_extra`.
    pub fn up(tag: &str, customer: Customer, daemon_extra: &[&str]) -> Self {
        let toml = if customer.bfd {
            circuit_toml_with("bfd = { intervalMs = 300, multiplier = 3 }")
        } else {
            circuit_toml()
        };
        let lab = BgpLab::up_full(
            &crate::unique_prefix(tag),
            &toml,
            daemon_extra,
            |_| {},
            true,
        );
        let topo = lab.topo.clone();
        let graceful = if customer.graceful_restart {
            " bgp graceful-restart\n bgp graceful-restart preserve-fw-state\n"
        } else {
            " bgp graceful-restart-disable\n"
        };
        let frr = if customer.bfd {
            let dir = lab.dir.join("frr");
            std::fs::create_dir_all(&dir).unwrap();
            // After the neighbours' own lines (FRR refuses it before).
            let last = format!(" neighbor {} bfd profile lab\n", topo.secondary.msee);
            let check = format!(
                " neighbor {} bfd check-control-plane-failure\n neighbor {} bfd check-control-plane-failure\n",
                topo.primary.msee, topo.secondary.msee
            );
            let conf = customer_conf_bfd(&topo, &dir.join("bgpd.log"))
                .replace(
                    " timers bgp 3 10\n",
                    &format!(" timers bgp 3 10\n{graceful}"),
                )
                .replace(&last, &format!("{last}{check}"));
            assert!(conf.contains(&check), "{conf}");
            Frr::start_router(
                &topo.ns_onprem(),
                &conf,
                &bfdd_conf(&dir.join("bfdd.log"), 300, 3),
                &dir,
                true,
            )
        } else {
            let conf = customer_conf(&topo, &lab.dir.join("bgpd.log")).replace(
                " timers bgp 3 10\n",
                &format!(" timers bgp 3 10\n{graceful}"),
            );
            Frr::start(&topo.ns_onprem(), &conf, &lab.dir)
        };
        let me = Self { frr, lab, customer };
        assert!(
            !me.frr.log().contains("Config Failed"),
            "FRR refused part of its configuration:\n{}",
            me.frr.log()
        );
        me.lab
            .wait_both_established(Duration::from_secs(30), || me.frr.log());
        me.lab
            .check_installed_and_forwarding(false, || me.frr.log());
        if customer.bfd {
            me.wait_bfd_up();
            me.customer_routes_by_bgp_only();
        }
        me
    }

    /// With zebra installing BGP's routes (the BFD rig), the customer reaches the VNet by
    /// the routes its BGP learned from the MSEE only: the lab's static
    /// routes to it go, so that what the customer's router does with the
    /// MSEE's routes during a restart (keep them, with graceful restart,
    /// or drop them) is what its traffic to Azure sees.
    fn customer_routes_by_bgp_only(&self) {
        let ns = self.lab.topo.ns_onprem();
        let vnet = format!("{}/{}", self.lab.topo.vnet, self.lab.topo.vnet_len);
        let bgp_route = || {
            std::process::Command::new("ip")
                .args(["-n", &ns, "route", "show", &vnet, "proto", "bgp"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        // First: zebra prefers the kernel's own routes (distance 0) to
        // eBGP's, and installs BGP's only once they are gone.
        for metric in ["100", "200"] {
            lab::ip_ns(&ns, &["route", "del", &vnet, "metric", metric]).unwrap();
        }
        wait_for(
            "the VNet's route from BGP in the customer's kernel",
            Duration::from_secs(30),
            || !bgp_route().is_empty(),
        )
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e)));
    }

    pub fn ctx(&self, what: &str) -> String {
        self.lab.ctx(what, &self.frr.log())
    }

    /// Both links' BFD sessions up (in the running daemon's log).
    pub fn wait_bfd_up(&self) {
        for session in [SESSION_PRIMARY, SESSION_SECONDARY] {
            wait_for(
                &format!("{session}: BFD up"),
                Duration::from_secs(30),
                || self.lab.count("BFD up", session) > 0,
            )
            .unwrap_or_else(|e| panic!("{}", self.ctx(&e)));
        }
    }

    /// The running daemon is back: both sessions established, the
    /// customer's route on both links again, BFD up (with BFD), and, when
    /// the customer does graceful restart, the adopted state reconciled.
    fn wait_back(&self) {
        for session in [SESSION_PRIMARY, SESSION_SECONDARY] {
            self.lab
                .wait_established_after(session, 0, Duration::from_secs(60), || self.frr.log());
        }
        if self.customer.graceful_restart {
            wait_for(
                "the adopted state reconciled",
                Duration::from_secs(60),
                || self.lab.daemon.log().contains("adopted state reconciled"),
            )
            .unwrap_or_else(|e| panic!("{}", self.ctx(&e)));
        }
        wait_for(
            "the customer's route on both links",
            Duration::from_secs(30),
            || self.lab.next_hops(crate::bgp_lab::CUSTOMER_NET).len() == 2,
        )
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e)));
        if self.customer.bfd {
            self.wait_bfd_up();
        }
    }

    /// Traffic both ways (VNet host <-> customer host), `pps` each way for
    /// `secs`, through one restart per entry of `stops`: the first 1 s in,
    /// each next one once the daemon is back. Returns the flows (to the
    /// customer, from the customer) and the restarts.
    pub fn restarts_under_traffic(
        &mut self,
        stops: &[Stop],
        secs: u64,
        pps: u32,
    ) -> ([FlowResult; 2], Vec<Restart>) {
        let topo = self.lab.topo.clone();
        let count = secs * u64::from(pps);
        let flows: Vec<_> = self
            .lab
            .flows_both_ways(7500, None)
            .into_iter()
            .map(|f| std::thread::spawn(move || send_and_count_at(&f, count, Some(pps)).unwrap()))
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        let mut restarts = Vec::new();
        for stop in stops {
            let prog_before = xdp_prog(&topo.ns_msee(), "primary");
            match stop {
                Stop::Term => self.lab.daemon.stop().map(|_| ()).unwrap(),
                Stop::Kill => self.lab.daemon.kill_outright(),
            }
            let old_log = self.lab.daemon.log();
            self.lab.daemon = Daemon::start_hitless(self.lab.daemon_args(), &self.lab.dir)
                .unwrap_or_else(|e| panic!("{e:#}\n--- the stopped daemon\n{old_log}"));
            self.wait_back();
            restarts.push(Restart {
                stop: *stop,
                prog_before,
                prog_after: xdp_prog(&topo.ns_msee(), "primary"),
                old_log,
                new_log: self.lab.daemon.log(),
            });
        }
        let mut got = flows.into_iter().map(|f| f.join().unwrap());
        ([got.next().unwrap(), got.next().unwrap()], restarts)
    }
}
