//! An estate's lab for end-to-end tests: `lab::estate` with the provider's
//! switch (`vlan_switch`) installed, removed when dropped.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use dataplane::{AttachMode, VlanSwitch};
use lab::estate::{self, CustomerRouter, EstateLab, State};
use msee_abi::vlan::VlanTags;

/// Attaches `vlan_switch` to the switch namespace's trunks and access
/// ports, cross-connects each customer link with its peering's tags, and
/// pins it under `dir` so it outlives this process.
pub fn install_switch(lab: &EstateLab, dir: &Path) -> Result<Vec<PathBuf>> {
    let lab = lab.clone();
    let pins = dir.to_owned();
    lab::in_netns(&lab.switch_ns.clone(), move || -> Result<Vec<PathBuf>> {
        let mut sw = VlanSwitch::load()?;
        let index = |name: &str| -> Result<u32> {
            let c = std::ffi::CString::new(name)?;
            // SAFETY: a valid C string; returns 0 when there is no such interface.
            let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if i == 0 {
                bail!("no interface {name} in the switch namespace");
            }
            Ok(i)
        };
        for c in &lab.customers {
            for p in &c.peerings {
                let pair = &lab.pairs[p.pair];
                for k in 0..2 {
                    let access = index(&p.access[k])?;
                    let trunk = index(&pair.trunk[k])?;
                    let tags = if p.tags.1 == 0 {
                        VlanTags::dot1q(p.tags.0)
                    } else {
                        VlanTags::double_dot1q(p.tags.0, p.tags.1)
                    };
                    sw.attach(access, AttachMode::Native)?;
                    sw.attach(trunk, AttachMode::Native)?;
                    sw.connect(access, trunk, tags)
                        .with_context(|| format!("{} {}", c.circuit, p.access[k]))?;
                }
            }
        }
        Ok(sw.pin_links(&pins)?)
    })?
}

/// A running estate lab; dropping it removes everything.
pub struct EstateLabUp {
    pub state: State,
}

impl EstateLabUp {
    pub fn up(model_path: &Path, prefix: &str, customers: CustomerRouter) -> Result<Self> {
        let text = std::fs::read_to_string(model_path)?;
        let model = circuit::load_toml(&text)?;
        let lab = estate::plan(&model, prefix, &estate::Pools::default(), &[])?;
        let daemon = lab::daemon::workspace_bin("msee-daemon")?;
        let state = estate::up(
            &lab,
            &[model_path.to_owned()],
            customers,
            &install_switch,
            &daemon,
        )?;
        Ok(Self { state })
    }

    pub fn lab(&self) -> &EstateLab {
        &self.state.lab
    }

    /// `msee-cli --json ARGS` against the lab's daemon.
    pub fn cli(&self, args: &[&str]) -> serde_json::Value {
        let bin = lab::daemon::workspace_bin("msee-cli").expect("msee-cli is built");
        let out = std::process::Command::new(bin)
            .arg("--socket")
            .arg(&self.state.api_socket)
            .arg("--json")
            .args(args)
            .output()
            .expect("running msee-cli");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "msee-cli {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Waits until every session of the daemon is Established.
    pub fn wait_established(&self, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let s = self.cli(&["sessions"]);
            let all = s.as_array().cloned().unwrap_or_default();
            let down: Vec<String> = all
                .iter()
                .filter(|x| x["state"] != "Established")
                .map(|x| x["name"].as_str().unwrap_or("?").to_owned())
                .collect();
            if !all.is_empty() && down.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "sessions not established after {timeout:?}: {down:?}\n{}",
                    self.daemon_log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
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
        if std::env::var_os("MSEE_KEEP_LAB").is_some() {
            eprintln!("MSEE_KEEP_LAB: lab {} left up", self.state.lab.prefix);
            return;
        }
        if let Err(e) = estate::down(&self.state) {
            eprintln!("estate lab cleanup: {e:#}");
        }
    }
}
