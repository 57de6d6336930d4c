//! What a hostile web page or a local attacker can try (SPEC §2.4, §2.5, §2.7, §5), each through
//! real sockets on loopback with bounded loops. The catalogue of what was tried and what holds
//! is in `docs/reliability.md`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, bet, spawn_app};

fn socket_address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// Sends `request` on a fresh connection and resets it (RST) at once, as a page's aborted
/// `fetch` or a killed client does.
async fn send_and_reset(address: &str, request: &[u8]) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream.set_zero_linger().unwrap();
    drop(stream);
}

/// Reads until the server closes the connection (or `limit` passes); returns what came and how
/// long the server took to close.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, Some(started.elapsed())),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (received, None),
        }
    }
}

/// A browser-like client that logs in over one session: its cookie and CSRF token.
async fn session_token(client: &reqwest::Client, app: &TestApp) -> String {
    let answer: Value = client.get(app.url("/api/session/csrf-token")).send().await.unwrap().json().await.unwrap();
    answer["csrf_token"].as_str().unwrap().to_string()
}

async fn login(client: &reqwest::Client, app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    client
        .post(app.url("/api/session/login"))
        .header("X-CSRF-Token", token)
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap()
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).build().unwrap()
}

/// Hundreds of database reads reset by their clients mid-flight leave every read, and a login
/// with the right password, working.
#[tokio::test]
async fn reads_reset_by_their_clients_leave_the_database_readable() {
    let app = spawn_app(&[("DASHBOARD_PASSWORD", "right-password")]).await;
    let address = socket_address(&app);
    for n in 0..300 {
        let path = ["/healthz", "/metrics"][n % 2];
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        send_and_reset(&address, request.as_bytes()).await;
        if n % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..20 {
        let response = reqwest::get(app.url("/healthz")).await.unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    let client = cookie_client();
    let token = session_token(&client, &app).await;
    assert_eq!(login(&client, &app, &token, "right-password").await.status(), 200);
    assert_eq!(client.get(app.url("/live/streams")).send().await.unwrap().status(), 200);
}

/// Simultaneous wrong passwords from one address cannot outrun the limit: each attempt is
/// counted before its check, so exactly five get their 401 and the rest 429.
#[tokio::test]
async fn simultaneous_wrong_passwords_cannot_race_the_login_limit() {
    let app = spawn_app(&[("DASHBOARD_PASSWORD", "right-password")]).await;
    let client = cookie_client();
    let token = session_token(&client, &app).await;
    let attempts: Vec<_> = (0..120)
        .map(|n| {
            let (client, token, url) = (client.clone(), token.clone(), app.url("/api/session/login"));
            tokio::spawn(async move {
                let body = json!({ "password": format!("guess-{n}") });
                client.post(url).header("X-CSRF-Token", token).json(&body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((unauthorized, limited), (5, 115), "{statuses:?}");
    // The right password is refused too while the limit holds.
    assert_eq!(login(&client, &app, &token, "right-password").await.status(), 429);
}

/// A successful login gives its attempt back, and a body that is no guess does not count.
#[tokio::test]
async fn a_successful_login_does_not_use_up_an_attempt() {
    let app = spawn_app(&[("DASHBOARD_PASSWORD", "right-password")]).await;
    let client = cookie_client();
    let token = session_token(&client, &app).await;
    for _ in 0..4 {
        assert_eq!(login(&client, &app, &token, "wrong").await.status(), 401);
    }
    let malformed = client.post(app.url("/api/session/login")).header("X-CSRF-Token", &token).body("{");
    assert_eq!(malformed.send().await.unwrap().status(), 400);
    let answer: Value = login(&client, &app, &token, "right-password").await.json().await.unwrap();
    assert_eq!(answer["status"], "success");
    let token = answer["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(login(&client, &app, &token, "wrong").await.status(), 401, "the fifth failure");
    assert_eq!(login(&client, &app, &token, "wrong").await.status(), 429);
}

/// Every loopback address is the same client: 127.0.0.2, .3 and .4 share one ingest limit.
#[tokio::test]
async fn the_loopback_range_is_one_client_for_the_rate_limit() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "3")]).await;
    let mut statuses = Vec::new();
    for n in 2..=7u8 {
        let local: IpAddr = [127, 0, 0, n].into();
        let client = reqwest::Client::builder().local_address(local).build().unwrap();
        let response = client.post(app.url("/live/ingest")).json(&bet(&format!("l{n}"), n.into())).send();
        statuses.push(response.await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429, 429]);
}

/// A connection that never sends a byte is closed after the 10 s header timeout, and so is one
/// that opens with the HTTP/2 preface (h2c is not served, so it cannot dodge the timeout).
#[tokio::test]
async fn silent_and_http2_connections_are_closed() {
    let app = spawn_app(&[]).await;
    let address = socket_address(&app);
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut h2c = TcpStream::connect(&address).await.unwrap();
    h2c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let (_, h2c_closed) = read_until_closed(&mut h2c, Duration::from_secs(15)).await;
    assert!(h2c_closed.is_some(), "an HTTP/2 preface is not held open");
    let (received, closed) = read_until_closed(&mut silent, Duration::from_secs(15)).await;
    let closed = closed.expect("a silent connection is closed");
    assert!(closed >= Duration::from_secs(8), "closed after the timeout, not before: {closed:?}");
    assert!(String::from_utf8_lossy(&received).is_empty() || received.starts_with(b"HTTP/1.1 408"));
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
}

/// A body trickled a byte now and then is cut off once nothing arrives for 10 s: 408, and the
/// connection closes.
#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_closes() {
    let app = spawn_app(&[]).await;
    let mut stream = TcpStream::connect(socket_address(&app)).await.unwrap();
    let head = "POST /live/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"id\"";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(15)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("Request body not received in time"), "{text}");
    assert!(closed.is_some(), "the connection is closed");
    assert!(started.elapsed() >= Duration::from_secs(9), "{:?}", started.elapsed());
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 0);
}

/// At the connection cap the server stops accepting until a connection closes; silent ones are
/// closed by the header timeout, so the server comes back by itself.
#[tokio::test]
async fn open_connections_are_capped_and_the_server_recovers_by_itself() {
    let app = spawn_app(&[("MAX_CONNECTIONS", "4")]).await;
    let metrics = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pump_http_connections_max 4"), "{metrics}");
    // Let the connection of that request go (reqwest keeps it idle; the server closes it at 10 s
    // at the latest, so use a fresh client below and wait for the cap to fill with silence).
    let address = socket_address(&app);
    let mut silent = Vec::new();
    for _ in 0..6 {
        silent.push(TcpStream::connect(&address).await.unwrap());
    }
    let started = Instant::now();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(25)).build().unwrap();
    let response = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(5), "served only once a silent connection was closed: {waited:?}");
    assert!(waited <= Duration::from_secs(22), "{waited:?}");
}

/// The open-file limit is raised to its hard limit when the server is built.
#[tokio::test]
async fn the_open_file_limit_is_raised_at_start_up() {
    let _app = spawn_app(&[]).await;
    let (soft, hard) = pump_analyzer::serve::open_file_limit();
    assert_eq!(soft, hard);
}

/// A flood of cookie-less requests leaves at most a few hundred sessions, and the session a user
/// is using survives it, though it comes from the same address.
#[tokio::test]
async fn a_session_flood_stores_at_most_a_few_hundred_and_spares_sessions_in_use() {
    let app = spawn_app(&[]).await;
    let user = cookie_client();
    let info: Value = user.get(app.url("/api/session/info")).send().await.unwrap().json().await.unwrap();
    let id = info["session"]["session_id"].as_str().unwrap().to_string();
    let again: Value = user.get(app.url("/api/session/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["session"]["session_id"], id.as_str());
    let flood = reqwest::Client::new();
    for _ in 0..1500 {
        let response = flood.get(app.url("/api/session/info")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let stored = app.count("SELECT count(*) FROM sessions").await;
    assert!(stored <= 201, "{stored} sessions stored");
    let after: Value = user.get(app.url("/api/session/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["session"]["session_id"], id.as_str(), "the user's session survived: {after}");
}

/// An origin on `API_CORS_ORIGINS` may use the public API but never gets credentials, so it
/// cannot read a session's CSRF token.
#[tokio::test]
async fn allowed_origins_never_get_credentials() {
    let app = spawn_app(&[]).await;
    for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
        let response = reqwest::Client::new()
            .request(method.clone(), app.url("/api/session/csrf-token"))
            .header("Origin", "http://localhost:5173")
            .header("Access-Control-Request-Method", "GET")
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "http://localhost:5173", "{method}");
        assert!(headers.get("access-control-allow-credentials").is_none(), "{method}: {headers:?}");
    }
}

/// Live subscribers beyond `SSE_MAX_CLIENTS` get a 503 that says why; a closed one frees its place.
#[tokio::test]
async fn live_subscribers_are_capped() {
    let app = spawn_app(&[("SSE_MAX_CLIENTS", "3")]).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let response = reqwest::get(app.url("/live/events")).await.unwrap();
        assert_eq!(response.status(), 200);
        open.push(response);
    }
    let refused = reqwest::get(app.url("/live/events")).await.unwrap();
    assert_eq!(refused.status(), 503);
    let answer: Value = refused.json().await.unwrap();
    assert!(answer["error"]["message"].as_str().unwrap().contains("SSE_MAX_CLIENTS"), "{answer}");
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = reqwest::get(app.url("/live/events")).await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the closed subscriber's place was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The SQLite database holds the secret key and CSRF tokens: it and its log files are 0600.
#[tokio::test]
async fn the_database_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(&[]).await;
    let crate::helpers::TestDatabase::Sqlite { path, .. } = &app.database else {
        eprintln!("SKIPPED: file modes concern the SQLite backend");
        return;
    };
    app.ingest_ok(&bet("m1", 1)).await;
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
}
