//! Pump Analyzer: the library builds the application; `main` only parses the command line.

pub mod cli;
pub mod config;
pub mod demo_client;
pub mod http;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod security;
pub mod serve;
pub mod session;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use config::{SecretKeySource, Settings};
use http::AppState;
use security::ingest_token::IngestTokens;
use security::rate_limit::{DEFAULT_MAX_KEYS, RateLimiter};
use security::shared_limit::{Limiter, RedisLimiter};
use store::{Store, StoreOptions};

/// Why the application could not start.
#[derive(Debug)]
pub enum StartError {
    Bind(std::io::Error),
    Store(store::StoreError),
    /// The certificate or key could not be used.
    Tls(String),
    /// Redis (`REDIS_URL`) could not be reached.
    Redis(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind(e) => write!(f, "cannot listen: {e}"),
            StartError::Store(e) => write!(f, "cannot open the database: {e}"),
            StartError::Tls(e) => write!(f, "cannot serve HTTPS: {e}"),
            StartError::Redis(e) => write!(f, "REDIS_URL: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A built application: database open and migrated, socket bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    connections: serve::ConnectionSlots,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    address: SocketAddr,
    state: AppState,
    secret_source: SecretKeySource,
}

impl Application {
    /// Opens the store and binds the socket (port 0 picks a free port, as tests do).
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        Self::build_with_database_limit(settings, None).await
    }

    /// [`build`](Self::build) with the SQLite file capped at `max_pages` pages: how tests
    /// reproduce a full disk exactly as SQLite reports it.
    pub async fn build_with_database_limit(settings: Settings, max_pages: Option<u64>) -> Result<Self, StartError> {
        let tls = match (&settings.tls_cert_file, &settings.tls_key_file) {
            (Some(cert), Some(key)) => Some(tls::load(cert, key).map_err(StartError::Tls)?),
            _ => None,
        };
        let options =
            StoreOptions { rounds_retention: settings.rounds_retention, sqlite_sync: settings.sqlite_sync, max_pages };
        let hub = store::hub::Hub::new();
        let store = Store::open(&settings.database, options, hub.clone()).await.map_err(StartError::Store)?;
        let (secret, secret_source) = store
            .secret_key(settings.secret_key.as_ref().map(|s| s.expose().as_str()))
            .await
            .map_err(StartError::Store)?;
        // A simulation left running by a previous process can never finish. On PostgreSQL
        // other instances may be running theirs: only those older than a day are given up.
        let cutoff = match settings.database {
            config::DatabaseUrl::Sqlite(_) => chrono::Utc::now().timestamp_micros(),
            config::DatabaseUrl::Postgres(_) => chrono::Utc::now().timestamp_micros() - 86_400_000_000,
        };
        store.fail_unfinished_simulations(cutoff).await.map_err(StartError::Store)?;
        let listener =
            TcpListener::bind(SocketAddr::new(settings.host, settings.port)).await.map_err(StartError::Bind)?;
        let address = listener.local_addr().map_err(StartError::Bind)?;
        let window = Duration::from_secs(60);
        let redis = match &settings.redis_url {
            Some(url) => Some(
                RedisLimiter::connect(url.expose(), &settings.redis_key_prefix, settings.ingest_rate_limit, window)
                    .await
                    .map_err(StartError::Redis)?,
            ),
            None => None,
        };
        let login = settings
            .dashboard_password
            .as_ref()
            .map(|p| Arc::new(session::login::Login::new(p.expose(), redis.as_ref())));
        let limiter = match (redis, settings.ingest_rate_limit) {
            (_, 0) => None,
            (Some(redis), _) => Some(Arc::new(Limiter::Redis(redis))),
            (None, limit) => Some(Arc::new(Limiter::Local(RateLimiter::new(limit, window, DEFAULT_MAX_KEYS)))),
        };
        let tokens = Arc::new(IngestTokens::new(settings.ingest_tokens.expose()));
        let sessions = Arc::new(session::Sessions::new(&secret, &settings));
        let open_files = serve::raise_open_file_limit();
        let connections = serve::ConnectionSlots::new(
            settings.max_connections.unwrap_or_else(|| serve::default_max_connections(open_files)),
        );
        let sse_slots = Arc::new(tokio::sync::Semaphore::new(settings.sse_max_clients));
        let state = AppState::new(http::SharedState {
            settings: Arc::new(settings),
            store,
            tokens,
            limiter,
            hub,
            runs: Arc::default(),
            sessions,
            login,
            metrics: Arc::default(),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
            sse_slots,
            demos: Arc::default(),
            simulations: Arc::default(),
            connections: connections.clone(),
        });
        Ok(Self { listener, connections, tls, address, state, secret_source })
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The start-up banner for this application.
    pub fn banner(&self) -> String {
        config::banner(&self.state.settings, self.address, self.secret_source)
    }

    /// Shared state, for tests and the signal handlers.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        if let Some(limiter) = self.state.limiter.clone() {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(30));
                loop {
                    tick.tick().await;
                    limiter.sweep();
                }
            });
        }
        // Expired sessions are refused as soon as they are presented; this only frees their rows.
        let (store, sessions) = (self.state.store.clone(), self.state.sessions.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                let now = chrono::Utc::now().timestamp_micros();
                if let Err(e) = store.purge_sessions(now - sessions.timeout, now - sessions.max_lifetime).await {
                    tracing::warn!(error = %e, "could not purge expired sessions");
                }
            }
        });
        // Bets stored before a seed reveal that a previous process did not finish verifying.
        tokio::spawn(live::verifier::resume_all(self.state.store.clone()));
        let app = http::router(self.state.clone());
        let closing = self.state.closing.clone();
        let shutdown = async move {
            shutdown.await;
            // End SSE responses so the graceful shutdown does not wait for them forever.
            closing.send_replace(true);
        };
        match self.tls {
            Some(config) => {
                serve::serve(tls::TlsListener::new(self.listener, config)?, app, self.connections, shutdown).await
            }
            None => serve::serve(self.listener, app, self.connections, shutdown).await,
        }
    }
}
