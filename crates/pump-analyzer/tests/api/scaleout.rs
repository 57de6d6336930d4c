//! Several instances sharing one PostgreSQL database and one Redis (SPEC §6), and what happens
//! when either service goes away. Needs `TEST_DATABASE_URL` and `TEST_REDIS_URL` (`.ci/run`
//! exports them when the services answer); without them each test says SKIPPED and passes.
//! Every test uses its own database and its own Redis key prefix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{PgDatabase, SseReader, TestApp, TestDatabase, bet, spawn_app_on};

fn services() -> Option<(String, String)> {
    match (std::env::var("TEST_DATABASE_URL"), std::env::var("TEST_REDIS_URL")) {
        (Ok(pg), Ok(redis)) => Some((pg, redis)),
        _ => {
            eprintln!("SKIPPED: TEST_DATABASE_URL and TEST_REDIS_URL are needed for the scale-out tests");
            None
        }
    }
}

fn prefix() -> String {
    format!("pump-test-{}:", pump_analyzer::security::random_hex(6))
}

/// A TCP proxy the test controls: while blocked, open connections are cut and new ones are
/// closed at once, as when a service stops; unblocked, it forwards again.
struct Proxy {
    port: u16,
    blocked: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: String) -> Arc<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (blocked, watcher) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if *watcher.borrow() {
                    let _ = inbound.shutdown().await;
                    continue;
                }
                let target = target.clone();
                let mut watcher = watcher.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watcher.wait_for(|blocked| *blocked) => {}
                    }
                });
            }
        });
        Arc::new(Proxy { port, blocked })
    }

    fn block(&self, blocked: bool) {
        self.blocked.send_replace(blocked);
    }
}

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap().to_string()
}

fn via_proxy(url: &str, port: u16) -> String {
    url.replacen(&host_port(url), &format!("127.0.0.1:{port}"), 1)
}

async fn instance(database: &str, redis: &str, prefix: &str) -> TestApp {
    let vars = [("REDIS_URL", redis), ("REDIS_KEY_PREFIX", prefix), ("INGEST_RATE_LIMIT", "60")];
    spawn_app_on(TestDatabase::Shared(database.to_string()), &vars).await
}

#[tokio::test]
async fn two_instances_share_the_rate_limit_sessions_and_live_events() {
    let Some((pg, redis)) = services() else { return };
    let database = PgDatabase::create(&pg).await;
    let prefix = prefix();
    let a = instance(&database.url, &redis, &prefix).await;
    let b = instance(&database.url, &redis, &prefix).await;

    // A bet posted to A reaches an SSE client of B.
    let response = b.client.get(b.url("/live/events")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut events = SseReader::new(response);
    let posted: Value = a.ingest(&bet("crosses", 1)).await.json().await.unwrap();
    let bet_id = posted["betId"].as_i64().or_else(|| posted["bet_id"].as_i64());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        if let Some(event) = events.next(Duration::from_secs(5)).await
            && event.event == "bet"
        {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(data["antebot_bet_id"], "crosses", "{data}");
            if let Some(id) = bet_id {
                assert_eq!(data["id"], id);
            }
            seen = true;
        }
    }
    assert!(seen, "the bet posted to A arrived on B's event stream");

    // The limit is per client IP across the deployment: 59 more split across both are allowed
    // (60 with the one above), then the next on either instance is 429.
    for n in 0..59 {
        let app = if n % 2 == 0 { &b } else { &a };
        let response = app.ingest(&bet(&format!("split-{n}"), n + 2)).await;
        assert_eq!(response.status(), 200, "request {} of 60", n + 2);
        let remaining: i64 = response.headers()["x-ratelimit-remaining"].to_str().unwrap().parse().unwrap();
        assert_eq!(remaining, 60 - (n + 2), "remaining counts requests made to both instances");
    }
    for app in [&a, &b] {
        let response = app.ingest(&bet("one-too-many", 99)).await;
        assert_eq!(response.status(), 429);
        let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
    }
    assert_eq!(a.count("SELECT count(*) FROM bets").await, 60);

    // A session and its CSRF token from A work on B (one client: cookies are per host, not port).
    let token = a.csrf().await;
    let info_a: Value = a.client.get(a.url("/api/session/info")).send().await.unwrap().json().await.unwrap();
    let info_b: Value = a.client.get(b.url("/api/session/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info_a["session_id"], info_b["session_id"], "{info_a} {info_b}");
    let stream = posted["streamId"].as_str().unwrap();
    let response = a
        .client
        .put(b.url(&format!("/live/streams/{stream}")))
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"notes": "set through B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let (_, detail) = a.get(&format!("/live/streams/{stream}")).await;
    assert_eq!(detail["notes"], "set through B");
    let refused = a
        .client
        .put(b.url(&format!("/live/streams/{stream}")))
        .header("X-CSRF-Token", "not-the-token")
        .json(&serde_json::json!({"notes": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

/// Polls `/live/ingest` with fresh bets until one gets `status` (or the deadline passes).
async fn ingest_until(app: &TestApp, status: u16, tag: &str, start: i64, within: Duration) -> (i64, Value) {
    let deadline = Instant::now() + within;
    let mut nonce = start;
    loop {
        let response = app.ingest(&bet(&format!("{tag}-{nonce}"), nonce)).await;
        let got = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if got == status {
            return (nonce, body);
        }
        assert!(Instant::now() < deadline, "still {got} instead of {status}: {body}");
        nonce += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().or_else(|| body["detail"].as_str()).unwrap_or_default().to_string()
}

#[tokio::test]
async fn when_redis_goes_away_ingest_answers_503_and_recovers_by_itself() {
    let Some((pg, redis)) = services() else { return };
    let proxy = Proxy::start(host_port(&redis)).await;
    let database = PgDatabase::create(&pg).await;
    let app = instance(&database.url, &via_proxy(&redis, proxy.port), &prefix()).await;
    assert_eq!(app.ingest(&bet("before", 1)).await.status(), 200);

    proxy.block(true);
    let (_, body) = ingest_until(&app, 503, "down", 100, Duration::from_secs(15)).await;
    assert!(message(&body).contains("Redis"), "the 503 names the cause: {body}");
    let stored = app.count("SELECT count(*) FROM bets").await;

    proxy.block(false);
    ingest_until(&app, 200, "back", 1000, Duration::from_secs(20)).await;
    // Nothing refused was stored; everything acknowledged is there.
    assert_eq!(app.count("SELECT count(*) FROM bets").await, stored + 1);
    assert_eq!(app.count("SELECT count(*) FROM bets WHERE antebot_bet_id = 'before'").await, 1);
}

#[tokio::test]
async fn when_postgres_goes_away_requests_answer_503_and_the_instance_recovers() {
    let Some((pg, _)) = services() else { return };
    let proxy = Proxy::start(host_port(&pg)).await;
    let database = PgDatabase::create(&pg).await;
    let app = spawn_app_on(TestDatabase::Shared(via_proxy(&database.url, proxy.port)), &[]).await;
    let events = app.client.get(app.url("/live/events")).send().await.unwrap();
    let mut events = SseReader::new(events);
    let mut acknowledged = vec![];
    for n in 1..=5 {
        let response = app.ingest(&bet(&format!("ok-{n}"), n)).await;
        assert_eq!(response.status(), 200);
        acknowledged.push(format!("ok-{n}"));
    }

    proxy.block(true);
    let (_, body) = ingest_until(&app, 503, "down", 100, Duration::from_secs(30)).await;
    assert!(message(&body).contains("PostgreSQL") || message(&body).contains("database"), "{body}");
    let (status, body) = app.get("/live/streams").await;
    assert_eq!(status, 503, "reads fail cleanly too: {body}");

    proxy.block(false);
    let (nonce, _) = ingest_until(&app, 200, "back", 1000, Duration::from_secs(30)).await;
    acknowledged.push(format!("back-{nonce}"));
    // Every acknowledged bet is stored (read through a direct connection, not the proxy).
    let direct = spawn_app_on(TestDatabase::Shared(database.url.clone()), &[]).await;
    for id in &acknowledged {
        let sql = format!("SELECT count(*) FROM bets WHERE antebot_bet_id = '{id}'");
        assert_eq!(direct.count(&sql).await, 1, "{id}");
    }
    // Live events flow again once the LISTEN connection is back, and the bet acknowledged right
    // after recovery (perhaps before LISTEN was back) reaches the SSE client too.
    let recovered = format!("back-{nonce}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let (mut live_seen, mut recovered_seen) = (false, false);
    while Instant::now() < deadline && !(live_seen && recovered_seen) {
        n += 1;
        assert_eq!(app.ingest(&bet(&format!("live-{n}"), 5000 + n)).await.status(), 200);
        while let Some(event) = events.next(Duration::from_millis(500)).await {
            if event.event == "bet" {
                live_seen |= event.data.contains("\"live-");
                recovered_seen |= event.data.contains(&format!("\"{recovered}\""));
            }
        }
    }
    let delivered = live_seen && recovered_seen;
    assert!(delivered, "live events resume after PostgreSQL returns");
}

#[tokio::test]
async fn failed_logins_are_counted_across_instances() {
    let Some((pg, redis)) = services() else { return };
    let database = PgDatabase::create(&pg).await;
    let prefix = prefix();
    let vars =
        [("REDIS_URL", redis.as_str()), ("REDIS_KEY_PREFIX", prefix.as_str()), ("DASHBOARD_PASSWORD", "hunter22")];
    let a = spawn_app_on(TestDatabase::Shared(database.url.clone()), &vars).await;
    let b = spawn_app_on(TestDatabase::Shared(database.url.clone()), &vars).await;
    let token = a.csrf().await;
    let attempt = |app: &TestApp, password: &str| {
        a.client
            .post(app.url("/api/session/login"))
            .header("X-CSRF-Token", &token)
            .json(&serde_json::json!({"password": password}))
            .send()
    };
    for n in 0..5 {
        let app = if n < 3 { &a } else { &b };
        assert_eq!(attempt(app, "wrong").await.unwrap().status(), 401, "attempt {}", n + 1);
    }
    for app in [&a, &b] {
        let response = attempt(app, "hunter22").await.unwrap();
        assert_eq!(response.status(), 429, "5 failures in a minute on any instances lock the IP out everywhere");
        assert!(response.headers().contains_key("retry-after"));
    }
}

/// nginx from Debian's package, configured with the shipped `docs/deploy/nginx.conf` (ports
/// changed to the test's), started on loopback and stopped when dropped.
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: crate::helpers::TempDir,
}

impl Drop for Nginx {
    /// SIGTERM: the master stops its workers too (SIGKILL would leave them running).
    fn drop(&mut self) {
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(upstreams: &[&str]) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            eprintln!("SKIPPED: nginx is not installed (apt-get install -y nginx)");
            return None;
        };
        let dir = crate::helpers::TempDir::new();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let shipped = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy/nginx.conf"),
        )
        .unwrap();
        let site = shipped
            .replace("server 127.0.0.1:8001;", &format!("server {};", upstreams[0]))
            .replace("server 127.0.0.1:8002;", &format!("server {};", upstreams[1]))
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
        assert_ne!(site, shipped, "the shipped config has the expected upstream and listen lines");
        let d = dir.path().display();
        let config = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{site}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let child = std::process::Command::new(binary)
            .args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf"), "-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let error_log = dir.path().join("error.log");
        // Stopped by Drop on every path, a failed start included.
        let nginx = Nginx { child, port, _dir: dir };
        if crate::helpers::wait_for_port(port) {
            return Some(nginx);
        }
        panic!("nginx did not start: {}", std::fs::read_to_string(error_log).unwrap_or_default());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Two instances behind a real nginx with the shipped configuration: live events pass through
/// the proxy unbuffered and cross instances, a client's own X-Forwarded-For is replaced, and the
/// rate limit holds across instances.
#[tokio::test]
async fn two_instances_behind_nginx_serve_live_events_and_one_rate_limit() {
    let Some((pg, redis)) = services() else { return };
    let database = PgDatabase::create(&pg).await;
    let prefix = prefix();
    let vars = [
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("INGEST_RATE_LIMIT", "8"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let a = spawn_app_on(TestDatabase::Shared(database.url.clone()), &vars).await;
    let b = spawn_app_on(TestDatabase::Shared(database.url.clone()), &vars).await;
    let upstreams = [a.address.trim_start_matches("http://"), b.address.trim_start_matches("http://")];
    let Some(nginx) = Nginx::start(&upstreams) else { return };
    let client = reqwest::Client::new();

    // A live client through the proxy sees a bet ingested directly on each instance.
    let mut events = SseReader::new(client.get(nginx.url("/live/events")).send().await.unwrap());
    for (n, app) in [&a, &b].into_iter().enumerate() {
        let id = format!("via-proxy-{n}");
        assert_eq!(app.ingest(&bet(&id, n as i64 + 1)).await.status(), 200);
        let mut seen = false;
        while let Some(event) = events.next(Duration::from_secs(5)).await {
            if event.event == "bet" && event.data.contains(&id) {
                seen = true;
                break;
            }
        }
        assert!(seen, "bet {id} reached the client behind nginx");
    }

    // Through the proxy, requests alternate between the instances; each claims another client
    // address, which nginx replaces with the real one (this machine, which already used 2 of its
    // 8 above, directly): 6 more pass, the rest are refused whichever instance they reach.
    let mut statuses = Vec::new();
    for n in 0..10 {
        let response = client
            .post(nginx.url("/live/ingest"))
            .header("X-Forwarded-For", format!("203.0.113.{n}"))
            .json(&bet(&format!("limited-{n}"), n + 10))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 429, 429, 429, 429], "the limit of 8 holds across instances");
    assert_eq!(a.count("SELECT count(*) FROM bets").await, 8);
}
