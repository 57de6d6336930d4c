//! Settings: read once from the environment (with `./.env` loaded first) and command-line flags,
//! parsed into typed values at the edge. A malformed value stops start-up with a message naming the
//! variable (SPEC §1); nothing silently falls back. Also renders the start-up banner.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;

/// A value that must never be printed: `Debug` and `Display` show a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The wrapped value; call sites that use it say so explicitly.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (relative to the working directory) or `sqlite:///ABSOLUTE/PATH`.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(Secret<String>),
}

impl DatabaseUrl {
    fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw.strip_prefix("sqlite://").or_else(|| raw.strip_prefix("sqlite:")) {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("expected sqlite://PATH (for example sqlite://pump.db)".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(Secret::new(raw.to_string())));
        }
        Err("expected sqlite://PATH or postgres://USER@HOST:PORT/DATABASE".into())
    }

    /// A printable form: the SQLite path, or the PostgreSQL URL with its password masked.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => mask_url_password(url.expose()),
        }
    }
}

/// A URL with every credential it can carry masked (SPEC §2.7): the password of its user-info
/// (`scheme://user:****@host`, up to the *last* `@`, since a password may itself hold `@` or `/`)
/// and the value of any `password=` query parameter.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return mask_query_passwords(url) };
    // The query starts at the first '?' after the user-info.
    let info_end = rest.rfind('@').map_or(0, |at| at + 1);
    let query_start = rest[info_end..].find('?').map_or(rest.len(), |q| info_end + q);
    let (before_query, query) = rest.split_at(query_start);
    let before_query = match before_query.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:****@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => before_query.to_string(),
    };
    format!("{scheme}://{before_query}{}", mask_query_passwords(query))
}

/// `password=…` (and `sslpassword=…`) query parameters with their values masked.
fn mask_query_passwords(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_string() };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.to_ascii_lowercase().ends_with("password") => format!("{name}=****"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", masked.join("&"))
}

/// `SESSION_COOKIE_SECURE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    Always,
    Never,
    /// Secure when the request came over HTTPS (directly, or via a trusted proxy's
    /// `X-Forwarded-Proto`).
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// When the SQLite writer answers an ingest request (`SQLITE_SYNC`). Either way an answered bet
/// survives `kill -9` or a crash of the server (SPEC §3.1); they differ in a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    /// Answer once the commit is in the operating system's hands, and have a background thread
    /// sync the log to disk soon after, at most every 2 ms, each sync covering every commit
    /// before it: a power cut can lose only the last few milliseconds of answers. The default:
    /// the bot usually runs on the same machine, and a power cut stops it too.
    Background,
    /// Answer only after the log's sync to disk has returned: survives a power cut as well, at
    /// about a third fewer single-bet requests/s (docs/performance.md).
    Full,
}

/// The effective configuration of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    /// Every valid ingest token; empty = ingest is open (SPEC §2.1).
    pub ingest_tokens: Secret<Vec<String>>,
    /// Requests per rolling minute per client IP; 0 disables the limit.
    pub ingest_rate_limit: u32,
    pub cors_origins: Vec<String>,
    pub database: DatabaseUrl,
    pub redis_url: Option<Secret<String>>,
    /// Prefix of every Redis key, so deployments (or tests) can share one Redis.
    pub redis_key_prefix: String,
    pub secret_key: Option<Secret<String>>,
    pub session_timeout: u64,
    pub session_max_lifetime: u64,
    pub session_cookie_secure: CookieSecure,
    pub dashboard_password: Option<Secret<String>>,
    pub trusted_proxies: Vec<IpNet>,
    /// Extra `Host` names accepted when bound to loopback (SPEC §2.3).
    pub allowed_hosts: Vec<String>,
    pub max_nonces: u64,
    pub rounds_retention: u64,
    pub sqlite_sync: SqliteSync,
    pub log_format: LogFormat,
    pub log_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Live (SSE) subscribers held at once; beyond it 503 (SPEC §2.7).
    pub sse_max_clients: usize,
    /// Connections open at once; unset: what the open-file limit leaves after a reserve.
    pub max_connections: Option<usize>,
    /// Seconds one simulation may run (SPEC §9.3).
    pub sim_time_limit: u64,
}

/// A configuration error: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Command-line overrides of `serve` (they win over the environment).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<String>,
    pub database_url: Option<String>,
}

/// One environment variable: its name, its default, what it means.
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every variable the server reads (SPEC §1), in the order `config` prints them: the one list
/// that `serve --help`, `config` and the tests of `.env.example` are checked against.
pub const VARIABLES: &[Variable] = &[
    Variable { name: "API_HOST", default: "127.0.0.1", meaning: "bind address (0.0.0.0 or :: = every interface)" },
    Variable { name: "API_PORT", default: "8000", meaning: "bind port" },
    Variable {
        name: "INGEST_TOKEN",
        default: "(unset: ingest open)",
        meaning: "comma-separated tokens; X-Ingest-Token must match one",
    },
    Variable {
        name: "INGEST_RATE_LIMIT",
        default: "60",
        meaning: "ingest requests per rolling minute per client; 0 disables",
    },
    Variable {
        name: "API_CORS_ORIGINS",
        default: "http://localhost:5173",
        meaning: "comma-separated origins allowed to use the API (never with credentials)",
    },
    Variable {
        name: "DATABASE_URL",
        default: "sqlite://pump.db",
        meaning: "sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
    },
    Variable {
        name: "REDIS_URL",
        default: "(unset)",
        meaning: "redis://HOST:PORT: rate limits shared by every instance",
    },
    Variable { name: "REDIS_KEY_PREFIX", default: "pump:", meaning: "prefix of every Redis key" },
    Variable {
        name: "SECRET_KEY",
        default: "(generated, kept in the database)",
        meaning: "signs session cookies (alias FLASK_SECRET_KEY)",
    },
    Variable { name: "SESSION_TIMEOUT", default: "3600", meaning: "idle seconds before a browser session expires" },
    Variable { name: "SESSION_MAX_LIFETIME", default: "86400", meaning: "absolute session lifetime in seconds" },
    Variable { name: "SESSION_COOKIE_SECURE", default: "auto", meaning: "true, false or auto (Secure over HTTPS)" },
    Variable {
        name: "DASHBOARD_PASSWORD",
        default: "(unset: no login)",
        meaning: "when set, the dashboard needs a login",
    },
    Variable {
        name: "TRUSTED_PROXIES",
        default: "(unset)",
        meaning: "IPs/CIDRs whose X-Forwarded-For / -Proto are believed",
    },
    Variable { name: "ALLOWED_HOSTS", default: "(unset)", meaning: "extra Host names accepted when bound to loopback" },
    Variable {
        name: "MAX_NONCES",
        default: "100000000",
        meaning: "largest nonce range of one run, and most bets of one simulation",
    },
    Variable { name: "ROUNDS_RETENTION", default: "1000000", meaning: "heartbeat rounds kept per stream" },
    Variable {
        name: "SQLITE_SYNC",
        default: "background",
        meaning: "background or full: answer before or after the log's sync to disk",
    },
    Variable { name: "LOG_FORMAT", default: "text", meaning: "text or json" },
    Variable { name: "LOG_FILE", default: "(unset)", meaning: "also append logs to this file" },
    Variable {
        name: "TLS_CERT_FILE",
        default: "(unset)",
        meaning: "serve HTTPS with this PEM certificate (with TLS_KEY_FILE)",
    },
    Variable { name: "TLS_KEY_FILE", default: "(unset)", meaning: "the PEM private key for TLS_CERT_FILE" },
    Variable {
        name: "SSE_MAX_CLIENTS",
        default: "1000",
        meaning: "live (SSE) subscribers held at once; beyond it 503",
    },
    Variable { name: "MAX_CONNECTIONS", default: "(open-file limit - 128)", meaning: "HTTP connections open at once" },
    Variable { name: "SIM_TIME_LIMIT", default: "60", meaning: "seconds one simulation may run" },
];

/// The variables as `serve --help` lists them.
pub fn variables_help() -> String {
    let mut out =
        String::from("Environment (a ./.env file is read first; the real environment wins; flags win over both):\n");
    for v in VARIABLES {
        out.push_str(&format!("  {:<22} default {:<28} {}\n", v.name, v.default, v.meaning));
    }
    out
}

impl Settings {
    /// Loads `./.env` (only the working directory's, never a parent's; the real environment wins)
    /// and reads the process environment.
    pub fn from_process(overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Ok(iter) = dotenvy::from_path_iter(".env") {
            for (key, value) in iter.flatten() {
                vars.insert(key, value);
            }
        }
        for (key, value) in std::env::vars() {
            vars.insert(key, value);
        }
        Self::from_vars(&vars, overrides)
    }

    /// Parses settings from a map of variables; used directly by tests.
    pub fn from_vars(vars: &HashMap<String, String>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let get =
            |name: &str| -> Option<String> { vars.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) };
        let host_raw = overrides.host.clone().or_else(|| get("API_HOST"));
        let host = match host_raw {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(raw) => parse_host(&raw).map_err(|message| ConfigError { variable: "API_HOST", message })?,
        };
        let port = match overrides.port.clone().or_else(|| get("API_PORT")) {
            None => 8000,
            Some(raw) => raw.parse::<u16>().map_err(|_| ConfigError {
                variable: "API_PORT",
                message: format!("expected a port number 0-65535, got {raw:?}"),
            })?,
        };
        let ingest_tokens = get("INGEST_TOKEN").map(|raw| split_list(&raw)).unwrap_or_default();
        let ingest_rate_limit = parse_number::<u32>(get("INGEST_RATE_LIMIT"), "INGEST_RATE_LIMIT", 60)?;
        let cors_origins = match get("API_CORS_ORIGINS") {
            None => vec!["http://localhost:5173".to_string()],
            Some(raw) => split_list(&raw)
                .into_iter()
                .map(|origin| validate_origin(&origin).map(|_| origin.trim_end_matches('/').to_string()))
                .collect::<Result<_, _>>()
                .map_err(|message| ConfigError { variable: "API_CORS_ORIGINS", message })?,
        };
        let database_raw =
            overrides.database_url.clone().or_else(|| get("DATABASE_URL")).unwrap_or_else(|| "sqlite://pump.db".into());
        let database = DatabaseUrl::parse(&database_raw).map_err(|message| ConfigError {
            variable: "DATABASE_URL",
            message: format!("{message}, got {:?}", mask_url_password(&database_raw)),
        })?;
        let redis_url = match get("REDIS_URL") {
            None => None,
            // rediss://: TLS (rustls, the system's CAs; `#insecure` skips the certificate check).
            Some(raw) if raw.starts_with("redis://") || raw.starts_with("rediss://") => Some(Secret::new(raw)),
            Some(raw) => {
                return Err(ConfigError {
                    variable: "REDIS_URL",
                    message: format!(
                        "expected redis://HOST:PORT or rediss://HOST:PORT, got {:?}",
                        mask_url_password(&raw)
                    ),
                });
            }
        };
        let redis_key_prefix = get("REDIS_KEY_PREFIX").unwrap_or_else(|| "pump:".into());
        if redis_key_prefix.len() > 64 || redis_key_prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError {
                variable: "REDIS_KEY_PREFIX",
                message: format!("expected up to 64 characters without spaces, got {redis_key_prefix:?}"),
            });
        }
        let secret_key = get("SECRET_KEY").or_else(|| get("FLASK_SECRET_KEY")).map(Secret::new);
        let session_timeout = parse_positive(get("SESSION_TIMEOUT"), "SESSION_TIMEOUT", 3600)?;
        let session_max_lifetime = parse_positive(get("SESSION_MAX_LIFETIME"), "SESSION_MAX_LIFETIME", 86_400)?;
        let session_cookie_secure = parse_choice(
            get("SESSION_COOKIE_SECURE"),
            "SESSION_COOKIE_SECURE",
            "true, false or auto",
            CookieSecure::Auto,
            &[
                ("auto", CookieSecure::Auto),
                ("true", CookieSecure::Always),
                ("1", CookieSecure::Always),
                ("yes", CookieSecure::Always),
                ("false", CookieSecure::Never),
                ("0", CookieSecure::Never),
                ("no", CookieSecure::Never),
            ],
        )?;
        let dashboard_password = get("DASHBOARD_PASSWORD").map(Secret::new);
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(raw) => split_list(&raw)
                .iter()
                .map(|item| parse_net(item))
                .collect::<Result<_, _>>()
                .map_err(|message| ConfigError { variable: "TRUSTED_PROXIES", message })?,
        };
        let allowed_hosts = get("ALLOWED_HOSTS")
            .map(|raw| split_list(&raw).into_iter().map(|h| h.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        let max_nonces = parse_positive(get("MAX_NONCES"), "MAX_NONCES", 100_000_000)?;
        let rounds_retention = parse_positive(get("ROUNDS_RETENTION"), "ROUNDS_RETENTION", 1_000_000)?;
        let sqlite_sync = parse_choice(
            get("SQLITE_SYNC"),
            "SQLITE_SYNC",
            "background or full",
            SqliteSync::Background,
            &[("background", SqliteSync::Background), ("full", SqliteSync::Full)],
        )?;
        let log_format = parse_choice(
            get("LOG_FORMAT"),
            "LOG_FORMAT",
            "text or json",
            LogFormat::Text,
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )?;
        let log_file = get("LOG_FILE").map(PathBuf::from);
        let tls_cert_file = get("TLS_CERT_FILE").map(PathBuf::from);
        let tls_key_file = get("TLS_KEY_FILE").map(PathBuf::from);
        if tls_cert_file.is_some() != tls_key_file.is_some() {
            let variable = if tls_cert_file.is_some() { "TLS_KEY_FILE" } else { "TLS_CERT_FILE" };
            return Err(ConfigError {
                variable,
                message: "TLS_CERT_FILE and TLS_KEY_FILE must be set together".into(),
            });
        }
        let sse_max_clients = parse_positive(get("SSE_MAX_CLIENTS"), "SSE_MAX_CLIENTS", 1000)? as usize;
        let max_connections = match get("MAX_CONNECTIONS") {
            None => None,
            Some(raw) => Some(parse_positive(Some(raw), "MAX_CONNECTIONS", 0)? as usize),
        };
        let sim_time_limit = parse_positive(get("SIM_TIME_LIMIT"), "SIM_TIME_LIMIT", 60)?;
        Ok(Self {
            host,
            port,
            ingest_tokens: Secret::new(ingest_tokens),
            ingest_rate_limit,
            cors_origins,
            database,
            redis_url,
            redis_key_prefix,
            secret_key,
            session_timeout,
            session_max_lifetime,
            session_cookie_secure,
            dashboard_password,
            trusted_proxies,
            allowed_hosts,
            max_nonces,
            rounds_retention,
            sqlite_sync,
            log_format,
            log_file,
            tls_cert_file,
            tls_key_file,
            sse_max_clients,
            max_connections,
            sim_time_limit,
        })
    }

    /// Whether the server listens on a loopback address only.
    pub fn is_loopback(&self) -> bool {
        self.host.is_loopback()
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls_cert_file.is_some()
    }

    /// The effective configuration as `NAME=value` lines, secrets masked (`pump-analyzer config`).
    pub fn describe(&self) -> String {
        let mask = |set: bool| if set { "******** (set)".to_string() } else { "(unset)".to_string() };
        let opt_path =
            |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(unset)".into());
        let join = |items: &[String]| if items.is_empty() { "(unset)".to_string() } else { items.join(",") };
        let lines = [
            ("API_HOST", self.host.to_string()),
            ("API_PORT", self.port.to_string()),
            (
                "INGEST_TOKEN",
                match self.ingest_tokens.expose().len() {
                    0 => "(unset: ingest is open)".to_string(),
                    1 => "******** (1 token)".to_string(),
                    n => format!("******** ({n} tokens)"),
                },
            ),
            ("INGEST_RATE_LIMIT", self.ingest_rate_limit.to_string()),
            ("API_CORS_ORIGINS", self.cors_origins.join(",")),
            ("DATABASE_URL", self.database.display()),
            (
                "REDIS_URL",
                self.redis_url.as_ref().map(|u| mask_url_password(u.expose())).unwrap_or_else(|| "(unset)".into()),
            ),
            ("REDIS_KEY_PREFIX", self.redis_key_prefix.clone()),
            (
                "SECRET_KEY",
                if self.secret_key.is_some() {
                    mask(true)
                } else {
                    "(unset: generated and kept in the database)".into()
                },
            ),
            ("SESSION_TIMEOUT", self.session_timeout.to_string()),
            ("SESSION_MAX_LIFETIME", self.session_max_lifetime.to_string()),
            ("SESSION_COOKIE_SECURE", format!("{:?}", self.session_cookie_secure).to_ascii_lowercase()),
            ("DASHBOARD_PASSWORD", mask(self.dashboard_password.is_some())),
            ("TRUSTED_PROXIES", join(&self.trusted_proxies.iter().map(|n| n.to_string()).collect::<Vec<_>>())),
            ("ALLOWED_HOSTS", join(&self.allowed_hosts)),
            ("MAX_NONCES", self.max_nonces.to_string()),
            ("ROUNDS_RETENTION", self.rounds_retention.to_string()),
            ("SQLITE_SYNC", format!("{:?}", self.sqlite_sync).to_ascii_lowercase()),
            ("LOG_FORMAT", format!("{:?}", self.log_format).to_ascii_lowercase()),
            ("LOG_FILE", opt_path(&self.log_file)),
            ("TLS_CERT_FILE", opt_path(&self.tls_cert_file)),
            ("TLS_KEY_FILE", opt_path(&self.tls_key_file)),
            ("SSE_MAX_CLIENTS", self.sse_max_clients.to_string()),
            (
                "MAX_CONNECTIONS",
                self.max_connections.map_or_else(|| "(unset: from the open-file limit)".into(), |n| n.to_string()),
            ),
            ("SIM_TIME_LIMIT", self.sim_time_limit.to_string()),
        ];
        lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn parse_host(raw: &str) -> Result<IpAddr, String> {
    let unbracketed = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(raw);
    if unbracketed.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    unbracketed
        .parse::<IpAddr>()
        .map_err(|_| format!("expected an IP address such as 127.0.0.1, 0.0.0.0, ::1 or ::, got {raw:?}"))
}

fn parse_number<T: FromStr>(raw: Option<String>, variable: &'static str, default: T) -> Result<T, ConfigError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<T>()
            .map_err(|_| ConfigError { variable, message: format!("expected a whole number ≥ 0, got {raw:?}") }),
    }
}

/// One of a few words, in any case (`choices`: each word and its value); `default` when unset.
fn parse_choice<T: Copy>(
    raw: Option<String>,
    variable: &'static str,
    expected: &str,
    default: T,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let word = raw.to_ascii_lowercase();
    choices
        .iter()
        .find(|(name, _)| *name == word)
        .map(|&(_, value)| value)
        .ok_or_else(|| ConfigError { variable, message: format!("expected {expected}, got {word:?}") })
}

fn parse_positive(raw: Option<String>, variable: &'static str, default: u64) -> Result<u64, ConfigError> {
    match parse_number::<u64>(raw.clone(), variable, default)? {
        0 => Err(ConfigError {
            variable,
            message: format!("expected a whole number ≥ 1, got {:?}", raw.unwrap_or_default()),
        }),
        n => Ok(n),
    }
}

fn parse_net(raw: &str) -> Result<IpNet, String> {
    if let Ok(net) = raw.parse::<IpNet>() {
        return Ok(net);
    }
    raw.parse::<IpAddr>().map(IpNet::from).map_err(|_| format!("expected an IP address or CIDR, got {raw:?}"))
}

/// A CORS origin is `scheme://host[:port]`; a `*` would make the CORS layer panic (STACK.md).
fn validate_origin(origin: &str) -> Result<(), String> {
    let trimmed = origin.trim_end_matches('/');
    let valid = match trimmed.split_once("://") {
        Some(("http" | "https", rest)) => {
            !rest.is_empty()
                && !rest.contains(['/', '*', ' ', '?', '#', '@'])
                && http::HeaderValue::from_str(trimmed).is_ok()
        }
        _ => false,
    };
    if valid { Ok(()) } else { Err(format!("expected origins like http://localhost:5173, got {origin:?}")) }
}

/// Where the cookie-signing secret came from, for the banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKeySource {
    Environment,
    GeneratedAndStored,
    LoadedFromDatabase,
}

/// Renders the start-up banner (SPEC §1). `bound` is the real listening address.
pub fn banner(settings: &Settings, bound: std::net::SocketAddr, secret_source: SecretKeySource) -> String {
    let scheme = if settings.tls_enabled() { "https" } else { "http" };
    let url_host = match bound.ip() {
        ip if ip.is_unspecified() => "localhost".to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let url = format!("{scheme}://{url_host}:{}/", bound.port());
    let token_line = if settings.ingest_tokens.expose().is_empty() {
        "Not configured (open access)".to_string()
    } else if settings.ingest_tokens.expose().len() == 1 {
        "Configured".to_string()
    } else {
        format!("Configured ({} tokens accepted)", settings.ingest_tokens.expose().len())
    };
    let rate = if settings.ingest_rate_limit == 0 {
        "disabled".to_string()
    } else {
        format!("{} requests per minute per IP", settings.ingest_rate_limit)
    };
    let secret = match secret_source {
        SecretKeySource::Environment => "from the environment (SECRET_KEY)",
        SecretKeySource::GeneratedAndStored => "generated and stored in the database (set SECRET_KEY to choose one)",
        SecretKeySource::LoadedFromDatabase => "generated earlier, loaded from the database",
    };
    let proxies = if settings.trusted_proxies.is_empty() {
        "none (X-Forwarded-For ignored)".to_string()
    } else {
        settings.trusted_proxies.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
    };
    let mut out = String::new();
    out.push_str("==============================================================\n");
    out.push_str(&format!(" Pump Analyzer {}\n", env!("CARGO_PKG_VERSION")));
    out.push_str("==============================================================\n");
    out.push_str(&format!(" Host:            {}\n", bound.ip()));
    out.push_str(&format!(" Port:            {}\n", bound.port()));
    out.push_str(&format!(" Dashboard:       {url}\n"));
    out.push_str(&format!(" Ingest URL:      {url}live/ingest\n"));
    out.push_str(&format!(" CORS Origins:    {}\n", settings.cors_origins.join(", ")));
    out.push_str(&format!(" Ingest Token: {token_line}\n"));
    out.push_str(&format!(" Rate Limit:      {rate}\n"));
    out.push_str(&format!(
        " Session Timeout: {} s idle, {} s maximum\n",
        settings.session_timeout, settings.session_max_lifetime
    ));
    out.push_str(&format!(" Secret Key:      {secret}\n"));
    out.push_str(&format!(" Database:        {}\n", settings.database.display()));
    if matches!(settings.database, DatabaseUrl::Sqlite(_)) {
        out.push_str(match settings.sqlite_sync {
            SqliteSync::Background => {
                " Durability:      answered bets survive a crash at once; synced to disk in the background\n"
            }
            SqliteSync::Full => {
                " Durability:      answered bets are synced to disk before the answer (SQLITE_SYNC=full)\n"
            }
        });
    }
    if let Some(redis) = &settings.redis_url {
        out.push_str(&format!(" Redis:           {}\n", mask_url_password(redis.expose())));
    }
    out.push_str(&format!(" Trusted Proxies: {proxies}\n"));
    out.push_str(&format!(
        " Dashboard Login: {}\n",
        if settings.dashboard_password.is_some() { "password required" } else { "none" }
    ));
    if !bound.ip().is_loopback() {
        if settings.ingest_tokens.expose().is_empty() {
            out.push_str(" WARNING: listening on a non-loopback address WITHOUT an ingest token:\n");
            out.push_str("          anyone who can reach this machine can post bets. Set INGEST_TOKEN.\n");
        }
        if settings.dashboard_password.is_none() {
            out.push_str(" WARNING: listening on a non-loopback address WITHOUT a dashboard password:\n");
            out.push_str("          anyone who can reach this machine can read and change your data.\n");
            out.push_str("          Set DASHBOARD_PASSWORD.\n");
        }
    }
    if let DatabaseUrl::Postgres(url) = &settings.database
        && let Some(host) = remote_host(url.expose())
        && !["sslmode=require", "sslmode=verify-ca", "sslmode=verify-full"].iter().any(|m| url.expose().contains(m))
    {
        out.push_str(&format!(" WARNING: DATABASE_URL reaches {host} in plain text: add ?sslmode=verify-full\n"));
        out.push_str("          (and sslrootcert=/path/to/ca.pem for a private CA).\n");
    }
    if let Some(redis) = &settings.redis_url
        && redis.expose().starts_with("redis://")
        && let Some(host) = remote_host(redis.expose())
    {
        out.push_str(&format!(" WARNING: REDIS_URL reaches {host} in plain text: keep Redis on a private network\n"));
        out.push_str("          or use rediss:// (TLS).\n");
    }
    out.push_str("==============================================================\n");
    out
}

/// The host of a service URL when it is not this machine.
fn remote_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_string(),
    };
    let local = host.is_empty()
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    (!local).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_vars(&vars, &Overrides::default())
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(s.port, 8000);
        assert!(s.ingest_tokens.expose().is_empty());
        assert_eq!(s.ingest_rate_limit, 60);
        assert_eq!(s.cors_origins, vec!["http://localhost:5173"]);
        assert_eq!(s.database, DatabaseUrl::Sqlite(PathBuf::from("pump.db")));
        assert_eq!(s.session_timeout, 3600);
        assert_eq!(s.session_max_lifetime, 86_400);
        assert_eq!(s.max_nonces, 100_000_000);
        assert_eq!(s.rounds_retention, 1_000_000);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.sqlite_sync, SqliteSync::Background);
        assert_eq!(parse(&[("SQLITE_SYNC", "FULL")]).unwrap().sqlite_sync, SqliteSync::Full);
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let cases: &[(&str, &str)] = &[
            ("API_PORT", "abc"),
            ("API_PORT", "70000"),
            ("INGEST_RATE_LIMIT", "-5"),
            ("INGEST_RATE_LIMIT", "ten"),
            ("DATABASE_URL", "mysql://x"),
            ("REDIS_URL", "http://x"),
            ("API_HOST", "not a host"),
            ("API_CORS_ORIGINS", "*"),
            ("API_CORS_ORIGINS", "localhost:5173"),
            ("SESSION_TIMEOUT", "0"),
            ("SESSION_COOKIE_SECURE", "maybe"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("MAX_NONCES", "1e6"),
            ("LOG_FORMAT", "xml"),
            ("SQLITE_SYNC", "normal"),
            ("SSE_MAX_CLIENTS", "0"),
            ("MAX_CONNECTIONS", "many"),
        ];
        for (variable, value) in cases {
            let err = parse(&[(variable, value)]).expect_err(&format!("{variable}={value} must be refused"));
            assert_eq!(&err.variable, variable);
            assert!(err.to_string().contains(variable), "{err}");
        }
    }

    #[test]
    fn empty_values_mean_unset_and_lists_are_trimmed() {
        let s = parse(&[
            ("API_PORT", ""),
            ("INGEST_TOKEN", " a , b ,"),
            ("API_CORS_ORIGINS", " http://a:1 , https://b/ "),
            ("FLASK_SECRET_KEY", "k"),
            ("API_HOST", "::1"),
        ])
        .unwrap();
        assert_eq!(s.port, 8000);
        assert_eq!(s.ingest_tokens.expose(), &vec!["a".to_string(), "b".to_string()]);
        assert_eq!(s.cors_origins, vec!["http://a:1", "https://b"]);
        assert_eq!(s.secret_key.unwrap().expose(), "k");
        assert_eq!(s.host, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn flags_override_the_environment() {
        let vars = [("API_PORT".to_string(), "9000".to_string())].into_iter().collect();
        let overrides = Overrides { port: Some("9100".into()), host: Some("[::]".into()), database_url: None };
        let s = Settings::from_vars(&vars, &overrides).unwrap();
        assert_eq!(s.port, 9100);
        assert!(s.host.is_unspecified());
    }

    #[test]
    fn secrets_never_appear_in_debug_or_describe_output() {
        let s = parse(&[
            ("INGEST_TOKEN", "supersecrettoken"),
            ("DASHBOARD_PASSWORD", "hunter2hunter2"),
            ("DATABASE_URL", "postgres://u:pw123@h/db"),
        ])
        .unwrap();
        for text in [format!("{s:?}"), s.describe()] {
            assert!(!text.contains("supersecrettoken"));
            assert!(!text.contains("hunter2hunter2"));
            assert!(!text.contains("pw123"));
        }
    }

    #[test]
    fn every_credential_a_url_can_carry_is_masked() {
        let cases = [
            ("postgres://u:p@ss:w0rd@host:5432/db", "postgres://u:****@host:5432/db"),
            ("postgres://u:a/b?c@host/db?sslmode=require", "postgres://u:****@host/db?sslmode=require"),
            (
                "postgres://u@host/db?password=s3cret&sslmode=require",
                "postgres://u@host/db?password=****&sslmode=require",
            ),
            ("postgresql://host/db?sslpassword=k3y", "postgresql://host/db?sslpassword=****"),
            ("rediss://:r3dis@cache:6380/0", "rediss://:****@cache:6380/0"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ];
        for (url, masked) in cases {
            assert_eq!(mask_url_password(url), masked, "{url}");
        }
        let s = parse(&[
            ("DATABASE_URL", "postgres://u:p@ss:w0rd@host/db?password=other-secret"),
            ("REDIS_URL", "redis://:r3dis-pw@cache:6379"),
        ])
        .unwrap();
        let described = s.describe();
        for secret in ["p@ss", "ss:w0rd", "w0rd", "other-secret", "r3dis-pw"] {
            assert!(!described.contains(secret), "{secret} leaks in:\n{described}");
        }
    }

    #[test]
    fn every_variable_is_described_by_config_and_documented_in_env_example() {
        let described = parse(&[]).unwrap().describe();
        let example = include_str!("../../../.env.example");
        for v in VARIABLES {
            assert!(described.contains(&format!("{}=", v.name)), "config lacks {}", v.name);
            assert!(example.contains(&format!("{}=", v.name)), ".env.example lacks {}", v.name);
            assert!(variables_help().contains(v.name));
        }
    }

    #[test]
    fn the_banner_warns_when_a_service_is_reached_in_plain_text_over_the_network() {
        let bound = "127.0.0.1:8000".parse().unwrap();
        let warns = |vars: &[(&str, &str)]| banner(&parse(vars).unwrap(), bound, SecretKeySource::Environment);
        let text = warns(&[("DATABASE_URL", "postgres://u:pw@db.example:5432/pump")]);
        assert!(text.contains("DATABASE_URL reaches db.example in plain text"), "{text}");
        assert!(!text.contains("pw"), "{text}");
        let text = warns(&[("DATABASE_URL", "postgres://u@db.example/pump?sslmode=verify-full")]);
        assert!(!text.contains("plain text"), "{text}");
        let text = warns(&[("DATABASE_URL", "postgres://u@127.0.0.1/pump"), ("REDIS_URL", "redis://localhost:6379")]);
        assert!(!text.contains("plain text"), "{text}");
        let text = warns(&[("REDIS_URL", "redis://:pw@10.0.0.7:6379")]);
        assert!(text.contains("REDIS_URL reaches 10.0.0.7 in plain text"), "{text}");
    }

    #[test]
    fn banner_reports_token_state_and_warns_on_public_binding() {
        let open = parse(&[("API_HOST", "0.0.0.0")]).unwrap();
        let text = banner(&open, "0.0.0.0:8000".parse().unwrap(), SecretKeySource::GeneratedAndStored);
        assert!(text.contains("Ingest Token: Not configured (open access)"));
        assert!(text.contains("WARNING"));
        assert!(text.contains("http://localhost:8000/"));
        let closed = parse(&[("INGEST_TOKEN", "tok-123")]).unwrap();
        let text = banner(&closed, "127.0.0.1:8000".parse().unwrap(), SecretKeySource::Environment);
        assert!(text.contains("Ingest Token: Configured"));
        assert!(!text.contains("tok-123"));
        assert!(!text.contains("WARNING"));
        assert!(text.contains("60 requests per minute"));
        assert!(
            text.contains("Durability:      answered bets survive a crash at once; synced to disk in the background")
        );
        let strict = parse(&[("SQLITE_SYNC", "full")]).unwrap();
        let text = banner(&strict, "127.0.0.1:8000".parse().unwrap(), SecretKeySource::Environment);
        assert!(text.contains("synced to disk before the answer (SQLITE_SYNC=full)"), "{text}");
        let postgres = parse(&[("DATABASE_URL", "postgres://u@h/db")]).unwrap();
        let text = banner(&postgres, "127.0.0.1:8000".parse().unwrap(), SecretKeySource::Environment);
        assert!(!text.contains("Durability"), "{text}");
    }
}
