//! The connection loop. `axum::serve` gives hyper no timer, so a client could hold a connection
//! forever by sending its request headers a byte at a time (slow loris). This loop is the same
//! idea with hyper's header-read timeout switched on, and the client address attached as
//! `ConnectInfo<SocketAddr>` for the security layers.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// A client must send a request's complete headers within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After shutdown begins, in-flight requests get this long to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then drains open connections.
pub async fn serve<L>(mut listener: L, app: Router, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let service = app.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open {DRAIN:?} after shutdown began; closing them");
    }
    Ok(())
}
