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
    /// `usage`: bytes in and out per peering and link over UTC days
    /// (`YYYY-MM-DD`, inclusive), what the SKU bills
    /// (`crate::usage::report::UsageView`).
    Usage {
        circuit: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// `availability`: uptime as the SLA counts it, per link, and the
    /// outages (`crate::usage::report::AvailabilityView`).
    Availability {
        circuit: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// `capture`: turns the capture of dropped frames on (reasons: all
    /// when empty; `link`: a link's name, all when absent) until `count`
    /// frames are taken; answers a `types::CaptureBatch` with its id.
    #[serde(rename = "capture-start")]
    CaptureStart {
        #[serde(default)]
        reasons: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
        count: u64,
        sample: u32,
        rate: u32,
        snap: u32,
    },
    /// The capture's frames since the last read (`types::CaptureBatch`).
    #[serde(rename = "capture-read")]
    CaptureRead { id: u64 },
    /// Ends the capture now.
    #[serde(rename = "capture-stop")]
    CaptureStop { id: u64 },
    /// The figures of the metrics endpoint, fresh
    /// (`crate::metrics::snapshot::Snapshot`): `msee-cli top` reads them.
    Snapshot,
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

/// What one client may take of the daemon: the API is root's (the socket
/// is 0600), but a stuck or misbehaving client must still not hold the
/// daemon's memory or its connection slots.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest request line, newline excluded.
    pub max_line: usize,
    /// A connection that sends no request for this long is closed.
    pub idle: Duration,
    /// Connections served at once; more are told so and closed.
    pub max_connections: usize,
    /// A reply the client does not read within this is dropped with the
    /// connection.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 64 * 1024,
            idle: Duration::from_secs(60),
            max_connections: 32,
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Binds `path` (replacing a stale socket) and hands each request to `calls`.
pub fn serve(path: &Path, calls: mpsc::Sender<Call>) -> Result<()> {
    serve_with(path, calls, Limits::default())
}

/// Binds the socket with mode 0600 from its first moment: it is made in a
/// private (0700) directory next to `path`, its mode set, and only then
/// renamed to `path`, so no other user ever finds it connectable.
fn bind_private(path: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!("removing stale socket {}: {e}", path.display())),
    }
    static STAGING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STAGING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staging = dir.join(format!(".msee-api-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    let bound = (|| -> Result<tokio::net::UnixListener> {
        let tmp = staging.join("api.sock");
        let listener = tokio::net::UnixListener::bind(&tmp)
            .with_context(|| format!("binding the API socket {}", path.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} root's only", path.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("moving the API socket to {}", path.display()))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    bound
}

/// [`serve`] with explicit [`Limits`].
pub fn serve_with(path: &Path, calls: mpsc::Sender<Call>, limits: Limits) -> Result<()> {
    let listener = bind_private(path)?;
    let shown = path.to_owned();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        loop {
            let mut stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(socket = %shown.display(), "API accept: {e}");
                    // EMFILE and the like: do not spin while they last.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                let busy = encode(Err(format!(
                    "too many API connections (at most {}): try again later",
                    limits.max_connections
                )));
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        limits.write_timeout,
                        stream.write_all(busy.as_bytes()),
                    )
                    .await;
                });
                continue;
            };
            let calls = calls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                connection(stream, calls, limits).await;
            });
        }
    });
    Ok(())
}

/// What reading one request line gave.
enum Line {
    Request(String),
    /// The client closed the connection (or it failed).
    Closed,
    Idle,
    TooLong,
}

/// Reads one line of at most `limits.max_line` bytes (newline excluded).
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(rd: &mut R, limits: &Limits) -> Line {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut bounded = rd.take(limits.max_line as u64 + 1);
    match tokio::time::timeout(limits.idle, bounded.read_until(b'\n', &mut buf)).await {
        Err(_) => Line::Idle,
        Ok(Err(_)) | Ok(Ok(0)) => Line::Closed,
        Ok(Ok(_)) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
            } else if buf.len() > limits.max_line {
                return Line::TooLong;
            }
            Line::Request(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}

/// Serves one client: a request per line, an answer per line, until it
/// closes, idles, or breaks a limit.
async fn connection(stream: tokio::net::UnixStream, calls: mpsc::Sender<Call>, limits: Limits) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    loop {
        let line = match read_line(&mut rd, &limits).await {
            Line::Request(line) => line,
            Line::Closed => return,
            Line::Idle => {
                debug!("API connection idle for {:?}: closed", limits.idle);
                return;
            }
            Line::TooLong => {
                let e = encode(Err(format!(
                    "request longer than {} bytes: connection closed",
                    limits.max_line
                )));
                let _ =
                    tokio::time::timeout(limits.write_timeout, wr.write_all(e.as_bytes())).await;
                return;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Err(e) => Err(format!("bad request {}: {e}", shorten(&line, 200))),
            Ok(request) => {
                debug!(?request, "API request");
                let (tx, rx) = oneshot::channel();
                if calls.send(Call { request, reply: tx }).await.is_err() {
                    return;
                }
                rx.await.unwrap_or_else(|_| Err("daemon stopping".into()))
            }
        };
        let answer = encode(answer);
        let sent = tokio::time::timeout(limits.write_timeout, wr.write_all(answer.as_bytes()));
        if !matches!(sent.await, Ok(Ok(()))) {
            return;
        }
    }
}

/// `s` quoted, cut to `max` characters.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{:?}...", &s[..i]),
        None => format!("{s:?}"),
    }
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

    /// A daemon stand-in answering `Sessions` on a socket served with
    /// `limits`; the runtime keeps it alive.
    fn echo_server(tag: &str, limits: Limits) -> (tokio::runtime::Runtime, PathBuf) {
        let path = temp_socket(tag);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, mut rx) = mpsc::channel::<Call>(4);
        rt.block_on(async { serve_with(&path, tx, limits) })
            .unwrap();
        rt.spawn(async move {
            while let Some(call) = rx.recv().await {
                let _ = call.reply.send(Ok(serde_json::json!("fine")));
            }
        });
        (rt, path)
    }

    fn connect(path: &Path) -> std::os::unix::net::UnixStream {
        let s = std::os::unix::net::UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    fn read_answer(s: &std::os::unix::net::UnixStream) -> String {
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line
    }

    #[test]
    fn the_socket_is_root_s_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let (rt, path) = echo_server("mode", Limits::default());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        // No staging directory is left behind.
        let dir = path.parent().unwrap();
        let prefix = format!(".msee-api-{}-", std::process::id());
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name();
            assert!(
                !name.to_string_lossy().starts_with(&prefix),
                "{name:?} left behind"
            );
        }
        drop(rt);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_request_over_the_line_limit_is_refused_and_the_connection_closed() {
        let limits = Limits {
            max_line: 1024,
            ..Limits::default()
        };
        let (rt, path) = echo_server("long", limits);
        // At the limit: answered.
        let mut s = connect(&path);
        let req = format!("{:<1024}", r#"{"cmd":"sessions"}"#);
        s.write_all(format!("{req}\n").as_bytes()).unwrap();
        assert!(read_answer(&s).contains(r#""ok":"fine""#));
        // One byte over, never ending: refused, closed, nothing buffered.
        let mut s = connect(&path);
        s.write_all(&[b' '; 1025]).unwrap();
        let answer = read_answer(&s);
        assert!(
            answer.contains("request longer than 1024 bytes"),
            "{answer}"
        );
        assert_eq!(read_answer(&s), "", "closed");
        drop(rt);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn an_idle_connection_is_closed() {
        let limits = Limits {
            idle: Duration::from_millis(200),
            ..Limits::default()
        };
        let (rt, path) = echo_server("idle", limits);
        let mut s = connect(&path);
        s.write_all(b"{\"cmd\":\"sessions\"}\n").unwrap();
        assert!(read_answer(&s).contains("fine"));
        let t = std::time::Instant::now();
        assert_eq!(read_answer(&s), "", "the daemon closed it");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        drop(rt);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn connections_are_bounded_and_a_slot_frees_when_one_closes() {
        let limits = Limits {
            max_connections: 2,
            ..Limits::default()
        };
        let (rt, path) = echo_server("bound", limits);
        let mut held: Vec<_> = (0..2)
            .map(|_| {
                let mut s = connect(&path);
                s.write_all(b"{\"cmd\":\"sessions\"}\n").unwrap();
                assert!(read_answer(&s).contains("fine"));
                s
            })
            .collect();
        let third = connect(&path);
        let answer = read_answer(&third);
        assert!(
            answer.contains("too many API connections (at most 2)"),
            "{answer}"
        );
        drop(held.pop());
        // The slot comes back once the server sees the close.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = connect(&path);
            s.write_all(b"{\"cmd\":\"sessions\"}\n").unwrap();
            if read_answer(&s).contains("fine") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no slot freed");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(rt);
        std::fs::remove_file(&path).ok();
    }
}
