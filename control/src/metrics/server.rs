//! The HTTP side of the endpoint: hyper's HTTP/1 server on the daemon's
//! runtime, one task per connection. Each scrape encodes the latest
//! snapshot; nothing here reaches the main loop.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Bytes, service::service_fn};
use hyper_util::rt::TokioIo;
use tracing::{debug, warn};

use super::Published;

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a scrape waits for the main loop's fresh snapshot before it
/// takes the last one.
pub const FRESH_WAIT: Duration = Duration::from_millis(250);

/// A connection that sends no complete request in this long is closed, so
/// idle or stuck scrapers do not pile up.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `addr` (at the daemon's start, before anything is loaded: an
/// address in use is an error then, naming it).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("--metrics-listen {addr}: cannot listen there (is another process using it?)")
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `/metrics` from `published` on `listener`, on the current tokio
/// runtime. Returns the bound address (port 0 picks one).
pub fn serve(listener: std::net::TcpListener, published: Published) -> Result<SocketAddr> {
    let bound = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .with_context(|| format!("serving the metrics on {bound}"))?;
    let published = Arc::new(published);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!("metrics endpoint: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let published = published.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let published = published.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&req, &published).await) }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT);
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!(%peer, "metrics endpoint: connection: {e}");
                }
            });
        }
    });
    Ok(bound)
}

async fn answer<B>(req: &Request<B>, published: &Published) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, ctype: &str, body: String| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, ctype)
            .body(Full::new(Bytes::from(body)))
            .expect("static parts")
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => match super::encode(published.fresh(FRESH_WAIT).await) {
            Ok(body) => reply(StatusCode::OK, CONTENT_TYPE, body),
            Err(e) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("encoding the metrics: {e}\n"),
            ),
        },
        "/" => reply(
            StatusCode::OK,
            "text/plain",
            "msee-daemon: the metrics are at /metrics\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}
