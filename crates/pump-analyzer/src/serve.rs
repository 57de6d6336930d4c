//! The connection loop. `axum::serve` gives hyper no timer, so a client could hold a connection
//! forever by sending nothing, or its request headers a byte at a time (slow loris). This loop is
//! the same idea with hyper's header-read timeout switched on, a cap on open connections, and the
//! client address attached as `ConnectInfo<SocketAddr>` for the security layers.
//!
//! Only HTTP/1.1 is served, in clear text and over TLS (whose ALPN offers `http/1.1` alone).
//! hyper's HTTP/2 server has no timeout for a connection that opens and then says nothing, so
//! an h2c preface would be a way around the header-read timeout (SPEC §2.7); the dashboard's
//! tabs share one live connection and need no multiplexing.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// A client must send each request's complete headers within this time, the first one counted
/// from the moment the connection is accepted: a connection that sends nothing, or stays idle
/// between requests, is closed after it.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After shutdown begins, in-flight requests get this long to finish.
const DRAIN: Duration = Duration::from_secs(10);
/// File descriptors kept free of connections: the database, its log, the listener, logs.
const RESERVED_FILES: u64 = 128;
/// Upper bound of the default connection cap, however high the open-file limit.
const MAX_DEFAULT_CONNECTIONS: u64 = 16_384;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (many desktops start programs with 1,024)
/// and returns the soft limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

/// The open-file limit as (soft, hard).
pub fn open_file_limit() -> (u64, u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (limit.rlim_cur, limit.rlim_max)
}

/// How many connections may be open at once with `open_files` descriptors: what is left after
/// the reserve, so that running out of descriptors can never stop the server accepting.
pub fn default_max_connections(open_files: u64) -> usize {
    open_files.saturating_sub(RESERVED_FILES).clamp(16, MAX_DEFAULT_CONNECTIONS) as usize
}

/// Open connections, shared with `/metrics`.
#[derive(Clone)]
pub struct ConnectionSlots {
    slots: Arc<Semaphore>,
    max: usize,
}

impl ConnectionSlots {
    pub fn new(max: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(max)), max }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains open connections.
/// At most `slots.max()` connections are open at once: at the cap the loop stops accepting until
/// one closes, and the kernel's backlog holds the newcomers.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    slots: ConnectionSlots,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.slots.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let service = app.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
        let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open {DRAIN:?} after shutdown began; closing them");
    }
    Ok(())
}
