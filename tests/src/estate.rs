//! An estate's lab for end-to-end tests: `lab::estate` with the provider's
//! switch (`vlan_switch`) installed, removed when dropped.
use std::{path::Path, time::Duration};

use anyhow::{Result, bail};
use lab::estate::{self, CustomerRouter, Customers, EstateLab, State};

/// A running estate lab; dropping it removes everything (unless it was
/// adopted: then it stays, as it was found).
pub struct EstateLabUp {
    pub state: State,
    adopted: bool,
}

impl EstateLabUp {
    pub fn up(model_path: &Path, prefix: &str, customers: CustomerRouter) -> Result<Self> {
        Self::up_with(model_path, prefix, &Customers::all(customers))
    }

    pub fn up_with(model_path: &Path, prefix: &str, customers: &Customers) -> Result<Self> {
        Self::up_planned(model_path, model_path, prefix, customers)
    }

    /// The lab `plan_from` needs, with the daemon running `config` (a
    /// reload may then bring in what only `plan_from` has).
    pub fn up_planned(
        plan_from: &Path,
        config: &Path,
        prefix: &str,
        customers: &Customers,
    ) -> Result<Self> {
        let model = circuit::load_files(&[plan_from])?;
        let lab = estate::plan(&model, prefix, &estate::Pools::default(), &[])?;
        let daemon = lab::daemon::workspace_bin("msee-daemon")?;
        let state = estate::up(
            &lab,
            &[config.to_owned()],
            customers,
            &traffic::vlan_switch::install_estate_switch,
            Some(&daemon),
        )?;
        Ok(Self {
            state,
            adopted: false,
        })
    }

    /// A lab `lab up --config` built earlier: used as it is, left up.
    pub fn adopt(state: State) -> Self {
        Self {
            state,
            adopted: true,
        }
    }

    pub fn customer(&self, circuit: &str) -> &estate::plan::Customer {
        self.state
            .lab
            .customers
            .iter()
            .find(|c| c.circuit == circuit)
            .unwrap_or_else(|| panic!("no customer {circuit} in the lab"))
    }

    /// The Azure-side namespace holding `host`.
    pub fn azure_ns_of(&self, host: std::net::IpAddr) -> String {
        self.state
            .lab
            .vnets
            .iter()
            .chain(&self.state.lab.microsoft)
            .find(|v| v.hosts.iter().any(|(_, h)| *h == host))
            .map(|v| v.ns.clone())
            .unwrap_or_else(|| panic!("no Azure-side host {host}"))
    }

    /// Stops the daemon cleanly, runs `between` with its state directory
    /// (no daemon runs then), and starts it again with the same arguments;
    /// waits until it is ready.
    pub fn restart_daemon(&mut self, between: impl FnOnce(&Path)) -> Result<()> {
        let daemon = lab::daemon::workspace_bin("msee-daemon")?;
        let dir = estate::daemon_state_dir(&self.state.lab.prefix);
        estate::restart_msee(&mut self.state, &daemon, || between(&dir))
    }

    /// vtysh to `circuit`'s bgpd, in configuration mode: each of `lines`
    /// (after `configure terminal`).
    pub fn vtysh_config(&self, circuit: &str, lines: &[&str]) -> String {
        let dir = estate::state_dir(&self.state.lab.prefix).join(circuit);
        let mut cmd = std::process::Command::new("vtysh");
        cmd.arg("--vty_socket")
            .arg(&dir)
            .args(["-d", "bgpd", "-c", "configure terminal"]);
        for l in lines {
            cmd.args(["-c", l]);
        }
        let out = cmd.output().expect("running vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// vtysh to `circuit`'s bgpd.
    pub fn vtysh(&self, circuit: &str, cmd: &str) -> String {
        let dir = estate::state_dir(&self.state.lab.prefix).join(circuit);
        let out = std::process::Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&dir)
            .args(["-d", "bgpd", "-c", cmd])
            .output()
            .expect("running vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What `circuit`'s router learned from AS 12076: prefix and AS path
    /// (FRR, BIRD or GoBGP, whichever the lab started for it).
    pub fn learned(&self, circuit: &str) -> Vec<(String, String)> {
        let dir = estate::state_dir(&self.state.lab.prefix).join(circuit);
        if dir.join("bird.ctl").exists() {
            let out = std::process::Command::new("birdc")
                .arg("-s")
                .arg(dir.join("bird.ctl"))
                .args(["show", "route", "all", "where", "bgp_path.first = 12076"])
                .output()
                .expect("running birdc");
            return bird_routes(&String::from_utf8_lossy(&out.stdout));
        }
        if dir.join("gobgpd.toml").exists() {
            let ns = &self.customer(circuit).ns;
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", ns, estate::routers::GOBGP, "-p"])
                .arg(estate::routers::GOBGP_API_PORT.to_string())
                .args(["global", "rib", "-j"])
                .output()
                .expect("running gobgp");
            return gobgp_routes(&String::from_utf8_lossy(&out.stdout));
        }
        let v: serde_json::Value =
            serde_json::from_str(&self.vtysh(circuit, "show bgp ipv4 unicast json"))
                .unwrap_or_default();
        let mut out = Vec::new();
        for (prefix, paths) in v["routes"].as_object().cloned().unwrap_or_default() {
            for p in paths.as_array().cloned().unwrap_or_default() {
                if let Some(path) = p["path"].as_str()
                    && path.starts_with("12076")
                {
                    out.push((prefix.clone(), path.to_owned()));
                    break;
                }
            }
        }
        out.sort();
        out
    }

    /// Waits until `circuit`'s router has learned exactly `prefixes` from AS
    /// 12076 and its kernel can forward to each (zebra or BIRD's kernel
    /// protocol installs a learned route a little after BGP has it; traffic
    /// sent in between is lost at the customer's router); returns what it
    /// learned.
    pub fn wait_learned(
        &self,
        circuit: &str,
        prefixes: &[&str],
        timeout: Duration,
    ) -> Vec<(String, String)> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let got = self.learned(circuit);
            let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
            let mut want = prefixes.to_vec();
            want.sort_unstable();
            let routed = || {
                let ns = &self.customer(circuit).ns;
                want.iter().all(|p| {
                    let addr = p.split('/').next().unwrap_or(p);
                    lab::ip_ns(ns, &["route", "get", addr]).is_ok()
                })
            };
            if (names == want && routed()) || std::time::Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The counters of `circuit`'s links summed: drops by `reason`.
    pub fn drops(&self, circuit: &str, reason: &str) -> u64 {
        self.cli(&["counters"])
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|p| p["circuit"] == circuit)
            .map(|p| p["drops"][reason].as_u64().unwrap_or(0))
            .sum()
    }

    pub fn lab(&self) -> &EstateLab {
        &self.state.lab
    }

    /// `msee-cli --json ARGS` against the lab's daemon.
    pub fn cli(&self, args: &[&str]) -> serde_json::Value {
        self.cli_result(args)
            .unwrap_or_else(|e| panic!("msee-cli {args:?}: {e}"))
    }

    /// `msee-cli --json ARGS`: its answer, or what it said on stderr when
    /// the daemon refused.
    pub fn cli_result(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let bin = lab::daemon::workspace_bin("msee-cli").expect("msee-cli is built");
        let out = std::process::Command::new(bin)
            .arg("--socket")
            .arg(&self.state.api_socket)
            .arg("--json")
            .args(args)
            .output()
            .expect("running msee-cli");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Waits until every session of the daemon has been Established for 3 s
    /// (FRR resets a BFD session once when its BGP session comes up: the
    /// first Established is not yet the settled state).
    pub fn wait_established(&self, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let s = self.cli(&["sessions"]);
            let all = s.as_array().cloned().unwrap_or_default();
            let unsettled: Vec<String> = all
                .iter()
                .filter(|x| {
                    x["state"] != "Established" || x["since_secs"].as_u64().unwrap_or(0) < 3
                })
                .map(|x| x["name"].as_str().unwrap_or("?").to_owned())
                .collect();
            if !all.is_empty() && unsettled.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "sessions not established for 3 s after {timeout:?}: {unsettled:?}\n{}",
                    self.daemon_log()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(estate::state_dir(&self.state.lab.prefix).join("daemon.log"))
            .unwrap_or_default()
    }
}

impl Drop for EstateLabUp {
    fn drop(&mut self) {
        // For a look at a failed test's lab: remove it with `cargo xtask
        // lab down --prefix PREFIX` afterwards.
        if self.adopted {
            return;
        }
        if std::env::var_os("MSEE_KEEP_LAB").is_some() {
            eprintln!("MSEE_KEEP_LAB: lab {} left up", self.state.lab.prefix);
            return;
        }
        if let Err(e) = estate::down(&self.state) {
            eprintln!("estate lab cleanup: {e:#}");
        }
    }
}

/// `birdc show route all` output: each prefix learned from AS 12076 with
/// its path (the `BGP.as_path` line).
fn bird_routes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut prefix = None;
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('/') && !line.starts_with(char::is_whitespace) {
            prefix = Some(first.to_owned());
        }
        if let Some(path) = line.trim().strip_prefix("BGP.as_path:")
            && let Some(p) = prefix.take()
        {
            out.push((p, path.trim().to_owned()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `gobgp global rib -j`: each prefix learned from AS 12076 with its path.
fn gobgp_routes(text: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let mut out = Vec::new();
    for (prefix, paths) in v.as_object().cloned().unwrap_or_default() {
        for p in paths.as_array().cloned().unwrap_or_default() {
            let asns: Vec<String> = p["attrs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|a| a["type"] == 2)
                .flat_map(|a| a["as_paths"].as_array().cloned().unwrap_or_default())
                .flat_map(|seg| seg["asns"].as_array().cloned().unwrap_or_default())
                .map(|n| n.to_string())
                .collect();
            if asns.first().map(String::as_str) == Some("12076") {
                out.push((prefix.clone(), asns.join(" ")));
                break;
            }
        }
    }
    out.sort();
    out
}
