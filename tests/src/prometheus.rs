//! A real Prometheus server (Debian's `prometheus`, installed by `cargo
//! xtask setup`) for tests: started inside a lab namespace on loopback
//! with a generated configuration that scrapes one target, queried over its
//! HTTP API, stopped (by its PID) and its files removed when dropped.
use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

/// Where the server listens, inside the namespace.
pub const LISTEN: &str = "127.0.0.1:9090";

pub struct Prometheus {
    ns: String,
    dir: PathBuf,
    child: Child,
}

/// `GET path` on `addr` inside namespace `ns`: the body of a 200 answer.
pub fn http_get(ns: &str, addr: &str, path: &str) -> Result<String> {
    let addr: SocketAddr = addr.parse()?;
    let target = path.to_owned();
    let text = msee_sys::netns::on_thread(ns, move || -> Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET {target} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })??;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {addr}{path}: {head}");
    }
    Ok(body.to_owned())
}

/// Percent-encoding of a query parameter's value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Prometheus {
    /// Starts Prometheus in `ns`, scraping `target` (`host:port`) every
    /// `interval`, and waits until it is ready.
    pub fn start(ns: &str, target: &str, interval: Duration, tag: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("msee-prometheus-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let secs = format!("{}ms", interval.as_millis());
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: {secs}\n  evaluation_interval: {secs}\nscrape_configs:\n  - job_name: msee\n    scrape_interval: {secs}\n    scrape_timeout: {secs}\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )?;
        let log = std::fs::File::create(dir.join("prometheus.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "prometheus"])
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={LISTEN}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting prometheus (cargo xtask setup installs it)")?;
        let p = Self {
            ns: ns.to_owned(),
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&p.ns, LISTEN, "/-/ready").is_err() {
            if Instant::now() > deadline {
                bail!("prometheus not ready in 30 s:\n{}", p.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Prometheus applies its first target list some seconds after it is
        // ready (its discovery updates are throttled), so a caller's window
        // starting now could hold no scrape at all: wait for the first one.
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        while p.query("up == 1", now()).map_or(true, |r| r.is_empty()) {
            if Instant::now() > deadline {
                bail!("prometheus did not scrape {target} in 30 s:\n{}", p.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(p)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query evaluated at `at` (Unix seconds): its result vector.
    pub fn query(&self, q: &str, at: f64) -> Result<Vec<serde_json::Value>> {
        let body = http_get(
            &self.ns,
            LISTEN,
            &format!("/api/v1/query?query={}&time={at:.3}", encode(q)),
        )?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        if v["status"] != "success" {
            bail!("query {q}: {body}");
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The one value of an instant query's result.
    pub fn value(&self, q: &str, at: f64) -> Result<f64> {
        let r = self.query(q, at)?;
        let [one] = r.as_slice() else {
            bail!("{q} at {at}: {} series, not one: {r:?}", r.len());
        };
        one["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{q}: no value in {one}"))
    }
}

impl Prometheus {
    /// The raw samples Prometheus stored for a selector over `[from, to]`
    /// (Unix seconds), summed across its series scrape by scrape: series of
    /// one target share each scrape's timestamp. No `rate()` extrapolation,
    /// so what is compared is what the exposition said and when.
    pub fn samples(&self, selector: &str, from: f64, to: f64) -> Result<Vec<(f64, f64)>> {
        let span = (to - from).ceil().max(1.0) as u64;
        let series = self.query(&format!("{selector}[{span}s]"), to)?;
        let mut by_time = std::collections::BTreeMap::<i64, f64>::new();
        for one in &series {
            let values = one["values"]
                .as_array()
                .with_context(|| format!("{selector}: no samples in {one}"))?;
            for v in values {
                let ts = v[0].as_f64().with_context(|| format!("timestamp in {v}"))?;
                let x: f64 = v[1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .with_context(|| format!("value in {v}"))?;
                if ts >= from {
                    *by_time.entry((ts * 1000.0).round() as i64).or_default() += x;
                }
            }
        }
        Ok(by_time
            .into_iter()
            .map(|(ms, x)| (ms as f64 / 1000.0, x))
            .collect())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // `ip netns exec` execs prometheus itself: this PID is the server.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
