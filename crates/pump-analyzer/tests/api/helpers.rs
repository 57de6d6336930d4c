//! Test harness: every test gets its own server on a random port with a fresh database, reached
//! over real HTTP. `spawn_app` runs it in-process; `spawn_binary` runs the real executable (for the
//! banner, logs, signals and `kill -9`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pump_analyzer::Application;
use pump_analyzer::config::{Overrides, Settings};
use serde_json::{Value, json};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("pump-test-{}-{n}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> String {
    pump_analyzer::security::random_hex(4)
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: TestDatabase,
}

/// The database a test server uses: a SQLite file in a fresh directory, or, when the suite runs
/// with `PUMP_TEST_BACKEND=postgres`, a fresh PostgreSQL database on `TEST_DATABASE_URL`
/// (created for the test and dropped after it).
pub enum TestDatabase {
    Sqlite {
        path: PathBuf,
        _dir: TempDir,
    },
    Postgres(PgDatabase),
    /// A database another test server owns (several instances sharing one database).
    Shared(String),
}

impl TestDatabase {
    /// A fresh database of the backend under test.
    pub async fn fresh() -> Self {
        if std::env::var("PUMP_TEST_BACKEND").is_ok_and(|b| b == "postgres") {
            let admin = std::env::var("TEST_DATABASE_URL").expect(
                "PUMP_TEST_BACKEND=postgres needs TEST_DATABASE_URL (scripts/test.sh sets it when PostgreSQL answers)",
            );
            return TestDatabase::Postgres(PgDatabase::create(&admin).await);
        }
        let dir = TempDir::new();
        TestDatabase::Sqlite { path: dir.path().join("pump.db"), _dir: dir }
    }

    pub fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            TestDatabase::Postgres(pg) => pg.url.clone(),
            TestDatabase::Shared(url) => url.clone(),
        }
    }
}

/// A PostgreSQL database made for one test; dropped (with its connections) when the test ends.
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    pub async fn create(admin: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("pump_t_{}_{n}_{}", std::process::id(), rand_suffix());
        let client = pg_connect(admin).await;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        PgDatabase { url: format!("{base}/{name}"), admin: admin.to_string(), name }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let client = pg_connect(&admin).await;
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            });
        })
        .join();
    }
}

pub async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Starts the application in-process with the given variables (on top of test defaults).
pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_on(TestDatabase::fresh().await, vars).await
}

/// Starts the application in-process on `database`.
pub async fn spawn_app_on(database: TestDatabase, vars: &[(&str, &str)]) -> TestApp {
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert("API_PORT".into(), "0".into());
    map.insert("DATABASE_URL".into(), database.url());
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_vars(&map, &Overrides::default()).expect("test settings");
    let app = Application::build(settings).await.expect("application builds");
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).cookie_store(true).build().unwrap();
    TestApp { address, client, database }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POSTs a JSON body to `/live/ingest`.
    pub async fn ingest(&self, body: &Value) -> reqwest::Response {
        self.client.post(self.url("/live/ingest")).json(body).send().await.unwrap()
    }

    /// The first row of `sql` (plain SQL both backends accept), every column as text (`None`
    /// for NULL), read straight from the database for assertions about what is stored.
    pub async fn row(&self, sql: &str) -> Vec<Option<String>> {
        match &self.database {
            TestDatabase::Sqlite { path, .. } => {
                let conn =
                    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
                let mut statement = conn.prepare(sql).unwrap();
                let columns = statement.column_count();
                statement
                    .query_row([], |r| {
                        (0..columns)
                            .map(|i| {
                                use rusqlite::types::ValueRef;
                                Ok(match r.get_ref(i)? {
                                    ValueRef::Null => None,
                                    ValueRef::Integer(v) => Some(v.to_string()),
                                    ValueRef::Real(v) => Some(v.to_string()),
                                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                                        Some(String::from_utf8_lossy(t).into_owned())
                                    }
                                })
                            })
                            .collect()
                    })
                    .unwrap()
            }
            TestDatabase::Postgres(PgDatabase { url, .. }) | TestDatabase::Shared(url) => {
                let client = pg_connect(url).await;
                let messages = client.simple_query(sql).await.unwrap();
                messages
                    .iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(row) => {
                            Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
                        }
                        _ => None,
                    })
                    .expect("a row")
            }
        }
    }

    /// The single integer `sql` returns.
    pub async fn count(&self, sql: &str) -> i64 {
        let row = self.row(sql).await;
        row[0].as_deref().expect("not NULL").parse().unwrap()
    }
}

/// A valid bet body.
pub fn bet(id: &str, nonce: i64) -> Value {
    json!({
        "id": id, "nonce": nonce, "amount": 1.0, "payout": 0.0, "difficulty": "expert",
        "clientSeed": "client-seed", "serverSeedHashed": "hash-1", "roundResult": 1.63,
        "dateTime": "2026-11-23T12:00:00Z",
    })
}

pub fn heartbeat(nonce: i64, round_result: f64) -> Value {
    json!({"type": "heartbeat", "nonce": nonce, "roundResult": round_result,
           "clientSeed": "client-seed", "serverSeedHashed": "hash-1"})
}

/// The real executable, started with `vars` in a fresh working directory.
pub struct BinaryServer {
    pub child: Child,
    pub address: String,
    pub banner: String,
    pub dir: TempDir,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pump-analyzer")
}

/// Starts the binary and waits for its banner; the port is read from the banner.
pub fn spawn_binary(vars: &[(&str, &str)], dir: Option<TempDir>) -> BinaryServer {
    let dir = dir.unwrap_or_else(TempDir::new);
    let mut command = Command::new(binary());
    command
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("API_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut port = None;
    while Instant::now() < deadline {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        banner.push_str(&line);
        if let Some(p) = line.trim().strip_prefix("Port:") {
            port = Some(p.trim().to_string());
        }
        if port.is_some() && line.starts_with("=====") && banner.matches("=====").count() >= 3 {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    let port = port.unwrap_or_else(|| panic!("no port in banner:\n{banner}"));
    BinaryServer { child, address: format!("http://127.0.0.1:{port}"), banner, dir }
}

impl BinaryServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The CSRF token of this client's session (the cookie store creates the session).
    pub async fn csrf(&self) -> String {
        let body: Value =
            self.client.get(self.url("/api/session/csrf-token")).send().await.unwrap().json().await.unwrap();
        body["csrf_token"].as_str().expect("a CSRF token").to_string()
    }

    /// A request builder for a write, with this client's session and CSRF token.
    pub async fn write(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let token = self.csrf().await;
        self.client.request(method, self.url(path)).header("X-CSRF-Token", token)
    }

    /// Sends a request as the dashboard would (writes carry the session's CSRF token).
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = if method == reqwest::Method::GET {
            self.client.request(method, self.url(path))
        } else {
            self.write(method, path).await
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Ingests and returns the stream id, asserting a 200.
    pub async fn ingest_ok(&self, body: &Value) -> String {
        let response = self.ingest(body).await;
        assert_eq!(response.status(), 200);
        let value: Value = response.json().await.unwrap();
        value["streamId"].as_str().or_else(|| value["results"][0]["streamId"].as_str()).unwrap().to_string()
    }
}

/// A bet with a chosen multiplier and seed pair.
pub fn bet_on(server_hash: &str, client: &str, id: &str, nonce: i64, result: f64, difficulty: &str) -> Value {
    json!({
        "id": id, "nonce": nonce, "amount": 2.0, "payout": 2.0 * result, "difficulty": difficulty,
        "clientSeed": client, "serverSeedHashed": server_hash, "roundResult": result,
    })
}

/// A minimal Server-Sent Events reader over a reqwest response.
pub struct SseReader {
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    buffer: String,
}

#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self { stream: Box::pin(response.bytes_stream()), buffer: String::new() }
    }

    /// The next event (comments skipped), or `None` on timeout / end.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { event: "message".into(), ..Default::default() };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event named `name`, skipping others.
    pub async fn next_named(&mut self, name: &str, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if event.event == name {
                return Some(event);
            }
        }
    }
}

/// Waits (up to 5 s) until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16) -> bool {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
