//! The daemon's local API: one JSON request per line on a Unix socket, one
//! JSON reply per line (`{"ok": ...}` or `{"error": "..."}`). The daemon's
//! main loop answers, so replies read its live state without locks.
use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _},
    sync::{mpsc, oneshot},
};
use tracing::{debug, warn};

pub mod az;
pub mod types;

/// Default socket path of `msee-daemon --api-socket` and `msee-cli --socket`.
pub const DEFAULT_SOCKET: &str = "/run/msee/api.sock";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    /// The circuits of the configuration, and which run here.
    Circuits,
    /// Every BGP session and its state.
    Sessions,
    /// The routes a circuit's customer announced: prefixes and their
    /// next-hop links, per peering.
    Routes { circuit: String },
    /// Per-port dataplane counters.
    Counters,
    /// Each link's health signals, whether it carries traffic, its flips.
    Links,
    /// Every BFD session: state, timers, counters.
    Bfd,
    /// Re-read the circuit file and apply what changed (as SIGHUP does).
    Reload,
    /// Maintenance drain of one link of a circuit (`drain: false` undrains).
    Drain {
        circuit: String,
        link: String,
        drain: bool,
    },
    /// How the BGP side programmed the dataplane: CLOCK_MONOTONIC times of
    /// the first and last UPDATE received and of the first and last FIB
    /// write, with counts (the route-install benchmark reads these); routes
    /// and groups installed; and, for each address of `lookup` and each
    /// peering, the route the dataplane's map gives it (longest-prefix
    /// match, as `msee` does per packet).
    Fib {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lookup: Vec<std::net::IpAddr>,
    },
    // --- The operator's view (`control/src/daemon/ops/az.rs`).
    /// `az network express-route get-stats`: bytes in and out per link of
    /// the circuit (all peerings, or `peering`'s), as `az::CircuitStats`.
    Stats {
        circuit: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peering: Option<String>,
    },
    /// `list-route-tables`: the routes learned on one link (`path`:
    /// primary or secondary), or those the MSEE advertises there.
    #[serde(rename = "route-table")]
    RouteTable {
        circuit: String,
        peering: String,
        path: String,
        #[serde(default)]
        advertised: bool,
    },
    /// `list-route-tables-summary`: the BGP neighbours on one link.
    #[serde(rename = "route-table-summary")]
    RouteTableSummary {
        circuit: String,
        peering: String,
        path: String,
    },
    /// `list-arp-tables`: the ARP entries of one link.
    #[serde(rename = "arp-table")]
    ArpTable {
        circuit: String,
        peering: String,
        path: String,
    },
}

/// A request and where its answer goes.
pub struct Call {
    pub request: Request,
    pub reply: oneshot::Sender<Result<serde_json::Value, String>>,
}

fn encode(r: Result<serde_json::Value, String>) -> String {
    let v = match r {
        Ok(v) => serde_json::json!({ "ok": v }),
        Err(e) => serde_json::json!({ "error": e }),
    };
    format!("{v}\n")
}

/// Binds `path` (replacing a stale socket) and hands each request to `calls`.
pub fn serve(path: &Path, calls: mpsc::Sender<Call>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!("removing stale socket {}: {e}", path.display())),
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding the API socket {}", path.display()))?;
    let shown = path.to_owned();
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(socket = %shown.display(), "API accept: {e}");
                    continue;
                }
            };
            let calls = calls.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer = match serde_json::from_str::<Request>(&line) {
                        Err(e) => Err(format!("bad request {line:?}: {e}")),
                        Ok(request) => {
                            debug!(?request, "API request");
                            let (tx, rx) = oneshot::channel();
                            if calls.send(Call { request, reply: tx }).await.is_err() {
                                return;
                            }
                            rx.await.unwrap_or_else(|_| Err("daemon stopping".into()))
                        }
                    };
                    if wr.write_all(encode(answer).as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}

/// [`query`], the answer read into its typed view.
pub fn query_as<T: serde::de::DeserializeOwned>(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<T> {
    let v = query(path, request, timeout)?;
    serde_json::from_value(v).with_context(|| {
        format!("the daemon's answer to {request:?} is not what this msee-cli reads")
    })
}

/// Client side (blocking, for the CLI): one request, its answer.
pub fn query(path: &Path, request: &Request, timeout: Duration) -> Result<serde_json::Value> {
    let mut s = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to msee-daemon at {} (is it running with --api-socket {}?)",
            path.display(),
            path.display()
        )
    })?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&s)
        .read_line(&mut answer)
        .with_context(|| format!("reading the answer from {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&answer)
        .with_context(|| format!("answer from {} is not JSON: {answer:?}", path.display()))?;
    if let Some(e) = v.get("error") {
        return Err(anyhow!(
            "msee-daemon: {}",
            e.as_str().unwrap_or("unknown error")
        ));
    }
    v.get("ok")
        .cloned()
        .ok_or_else(|| anyhow!("answer from {} has neither ok nor error", path.display()))
}

/// A socket path for tests.
pub fn temp_socket(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("msee-api-{}-{tag}.sock", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_json_form() {
        assert_eq!(
            serde_json::to_string(&Request::Sessions).unwrap(),
            r#"{"cmd":"sessions"}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Routes {
                circuit: "er-lab".into()
            })
            .unwrap(),
            r#"{"cmd":"routes","circuit":"er-lab"}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Fib { lookup: vec![] }).unwrap(),
            r#"{"cmd":"fib"}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"fib","lookup":["10.1.0.1"]}"#).unwrap(),
            Request::Fib {
                lookup: vec!["10.1.0.1".parse().unwrap()]
            }
        );
    }

    #[test]
    fn round_trip_through_the_socket_with_errors_passed_on() {
        let path = temp_socket("rt");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, mut rx) = mpsc::channel::<Call>(4);
        rt.block_on(async { serve(&path, tx) }).unwrap();
        rt.spawn(async move {
            while let Some(call) = rx.recv().await {
                let answer = match call.request {
                    Request::Sessions => Ok(serde_json::json!([{"name": "s"}])),
                    Request::Routes { circuit } => Err(format!("unknown circuit {circuit}")),
                    Request::Counters => Ok(serde_json::json!([])),
                    other => Err(format!("{other:?} is not answered in this test")),
                };
                let _ = call.reply.send(answer);
            }
        });
        let v = query(&path, &Request::Sessions, Duration::from_secs(5)).unwrap();
        assert_eq!(v[0]["name"], "s");
        let e = query(
            &path,
            &Request::Routes {
                circuit: "x".into(),
            },
            Duration::from_secs(5),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown circuit x"), "{e}");
        drop(rt);
        std::fs::remove_file(&path).ok();
        let e = query(&path, &Request::Counters, Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is it running"), "{e}");
    }
}
