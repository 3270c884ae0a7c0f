//! The accept loop: connections, their limits, and graceful shutdown.
//!
//! `axum::serve` sets no header-read timeout and no cap on connections: a client that sends
//! half its headers kept a connection (and a file descriptor) for minutes, and 1,100 of them
//! stopped the server from answering anyone. Here hyper reads each request's headers within
//! [`Limits::header_read_timeout`] (which also closes keep-alive connections idle that long),
//! and at most [`Limits::max_connections`] are open at once; past that a new connection is
//! answered 503 at once and closed, so a crowd of slow clients degrades into quick refusals
//! rather than a hang.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tracing::{info, warn};

use crate::config::Limits;

/// File descriptors kept for everything but client connections (database pool, log files,
/// the SQLite WAL).
const RESERVED_DESCRIPTORS: u64 = 64;
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The connection cap the process can honour: the configured one, lowered to what the
/// open-file limit leaves once it is raised as far as the OS allows.
fn effective_cap(configured: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let usable = limit.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    let cap = configured.min(usize::try_from(usable).unwrap_or(usize::MAX));
    if cap < configured {
        warn!(
            configured,
            cap,
            open_file_limit = limit,
            "the open-file limit lowers the connection cap"
        );
    }
    cap
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<crate::metrics::Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(effective_cap(limits.max_connections)));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_read_timeout));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was accepted: wait
                    // a moment rather than spin.
                    warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.rate_limited("connections");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let proxies = limits.trusted_proxies.clone();
        let service = router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                // Where the request comes from: the peer, or whom a trusted proxy says.
                let forwarded: Vec<&str> = request
                    .headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                let client =
                    SocketAddr::new(proxies.client(remote.ip(), &forwarded), remote.port());
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(client));
                request
            },
        );
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that went away or sent garbage: nothing to report.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        info!("requests still in flight after the shutdown grace period were dropped");
    }
    Ok(())
}

/// Answers a connection over the cap with a 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":"temporarily_unavailable","error_description":"too many connections; retry shortly"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         cache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
