//! Start `msee-daemon` for a lab and stop it by PID, whatever happens.
use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::{IF_AZURE, IF_PRIMARY, IF_SECONDARY, Topology};
use anyhow::{Context as _, Result, bail};

/// Path of a workspace binary built alongside the running one: next to it
/// (target/<profile>/xtask) or one level up for test executables
/// (target/<profile>/deps/<test>).
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    for candidate in [dir.join(name), dir.parent().unwrap_or(dir).join(name)] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!(
        "{name} is not built next to {}: run `cargo build --bins` first (cargo xtask test does)",
        exe.display()
    )
}

/// The daemon arguments that drive a default lab.
pub fn lab_args(topo: &Topology) -> Vec<String> {
    let mut args = vec![
        "--netns".into(),
        topo.ns_msee(),
        "--primary".into(),
        IF_PRIMARY.into(),
        "--secondary".into(),
        IF_SECONDARY.into(),
        "--azure".into(),
        IF_AZURE.into(),
    ];
    for (prefix, via) in [
        (format!("{}/30", topo.primary.subnet), topo.primary.customer),
        (
            format!("{}/30", topo.secondary.subnet),
            topo.secondary.customer,
        ),
        (
            format!("{}/{}", topo.vnet, topo.vnet_len),
            topo.azure_link_peer,
        ),
    ] {
        args.push("--route".into());
        args.push(format!("{prefix}={via}"));
    }
    for (prefix, via) in [
        (
            format!("{}/126", topo.primary6.subnet),
            topo.primary6.customer,
        ),
        (
            format!("{}/126", topo.secondary6.subnet),
            topo.secondary6.customer,
        ),
        (
            format!("{}/{}", topo.vnet6, topo.vnet6_len),
            topo.azure_link_peer6,
        ),
    ] {
        args.push("--route".into());
        args.push(format!("{prefix}={via}"));
    }
    args
}

/// A running daemon. Dropping it stops it (SIGTERM, then SIGKILL) by PID.
pub struct Daemon {
    child: Option<Child>,
    /// What the daemon printed on stdout after it was ready (its final report).
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    pub stderr_path: PathBuf,
    pub stats_path: PathBuf,
    /// Its state directory, and its network namespace: what `--stop`
    /// needs to remove what it left running.
    pub state_dir: PathBuf,
    netns: Option<String>,
    /// Started without `--detach-on-exit`: its exit leaves forwarding
    /// running for the next daemon of its state directory to adopt.
    hitless: bool,
}

impl Daemon {
    /// Start with `args` plus log/stats files in `dir` (and the state
    /// directory `dir/state` unless `args` name one), and wait until it
    /// says it is ready. It detaches and removes its pinned state at exit.
    pub fn start(args: &[String], dir: &std::path::Path) -> Result<Self> {
        Self::spawn(args, dir, false)
    }

    /// [`Daemon::start`] as the product runs by default: its exit leaves
    /// forwarding running on the pinned state, which the next daemon of
    /// the same state directory adopts (a restart without loss). Dropping
    /// the last one removes that state (`msee-daemon --stop`).
    pub fn start_hitless(args: &[String], dir: &std::path::Path) -> Result<Self> {
        Self::spawn(args, dir, true)
    }

    fn spawn(args: &[String], dir: &std::path::Path, hitless: bool) -> Result<Self> {
        let stderr_path = dir.join("daemon.log");
        let stats_path = dir.join("stats.json");
        let mut command = Command::new(workspace_bin("msee-daemon")?);
        command.args(args);
        let state_dir = match args.iter().position(|a| a == "--state-dir") {
            Some(i) => PathBuf::from(&args[i + 1]),
            None => {
                command.arg("--state-dir").arg(dir.join("state"));
                dir.join("state")
            }
        };
        let netns = args
            .iter()
            .position(|a| a == "--netns")
            .map(|i| args[i + 1].clone());
        if !hitless {
            command.arg("--detach-on-exit");
        }
        let log = std::fs::File::create(&stderr_path)?;
        let mut child = command
            .arg("--stats-file")
            .arg(&stats_path)
            // A bound on its life even if the test is killed before Drop runs.
            .args(["--run-for-secs", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting msee-daemon")?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = output.clone();
        let reader = std::thread::spawn(move || {
            let mut ready = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if ready {
                    collected.lock().unwrap().push(line);
                } else {
                    ready = line.contains("msee-daemon ready");
                    let _ = tx.send(line);
                }
            }
        });
        let mut daemon = Self {
            child: Some(child),
            output,
            reader: Some(reader),
            stderr_path,
            stats_path,
            state_dir,
            netns,
            hitless,
        };
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains("msee-daemon ready") => break,
                Ok(_) => continue,
                Err(_) => {
                    daemon.stop().ok();
                    bail!("msee-daemon did not become ready: {}", daemon.log());
                }
            }
        }
        Ok(daemon)
    }

    /// Lines the daemon printed after it was ready (complete once stopped).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// The daemon's process id (for signals such as SIGHUP).
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().map_or(0, |c| c.id() as i32))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the final counters the daemon wrote.
    pub fn stop(&mut self) -> Result<serde_json::Value> {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait()? {
                    if !status.success() {
                        bail!("msee-daemon exited with {status}: {}", self.log());
                    }
                    if let Some(reader) = self.reader.take() {
                        let _ = reader.join();
                    }
                    break;
                }
                if std::time::Instant::now() > deadline {
                    child.kill().ok();
                    child.wait().ok();
                    bail!("msee-daemon ignored SIGTERM for 10 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let text =
            std::fs::read_to_string(&self.stats_path).context("reading the daemon's stats file")?;
        Ok(serde_json::from_str(&text)?)
    }
}

impl Daemon {
    /// SIGKILL, as a crash: nothing of the daemon's own runs, whatever it
    /// left pinned stays (for a next daemon to adopt).
    pub fn kill_outright(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if let Some(reader) = self.reader.take() {
                let _ = reader.join();
            }
        }
    }

    /// `msee-daemon --stop`: removes what an exited daemon left running
    /// in its state directory (refused, harmlessly, while another daemon
    /// holds it).
    pub fn remove_left_state(&self) -> Result<String> {
        let mut command = Command::new(workspace_bin("msee-daemon")?);
        command
            .arg("--stop")
            .arg("--state-dir")
            .arg(&self.state_dir);
        if let Some(ns) = &self.netns {
            command.args(["--netns", ns]);
        }
        let out = command.stderr(Stdio::piped()).output()?;
        if !out.status.success() {
            bail!(
                "msee-daemon --stop: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let killed = if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            true
        } else {
            false
        };
        // A killed daemon, or one that left forwarding running, leaves
        // pins: nothing of a test may outlive it.
        if killed || self.hitless {
            let _ = self.remove_left_state();
        }
    }
}

/// The counters of one port from the daemon's stats JSON.
pub fn port<'a>(stats: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    stats
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["port"] == name))
        .unwrap_or_else(|| panic!("no port {name} in {stats}"))
}
