//! Browser sessions and CSRF (SPEC §5, seed 004) over real HTTP.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, bet, spawn_app};

/// A client that handles its cookie by hand, to see and replay exactly what the server sets.
struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, http: reqwest::Client::new(), cookie: None }
    }

    async fn request(
        &mut self,
        method: Method,
        path: &str,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        // Like a browser: every request says where it comes from (here, the dashboard itself).
        let mut request = self.http.request(method, self.app.url(path)).header("Origin", self.app.address.as_str());
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", format!("pump_session={cookie}"));
        }
        if let Some(token) = csrf {
            request = request.header("X-CSRF-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        if let Some(set) = response.headers().get("set-cookie") {
            let set = set.to_str().unwrap();
            let value = set.split(';').next().unwrap().trim_start_matches("pump_session=").to_string();
            self.cookie = (!value.is_empty()).then_some(value);
        }
        response
    }

    async fn json(&mut self, method: Method, path: &str, csrf: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let response = self.request(method, path, csrf, body).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn token(&mut self) -> String {
        let (_, body) = self.json(Method::GET, "/api/session/csrf-token", None, None).await;
        body["csrf_token"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn the_first_api_request_creates_a_server_side_session_with_safe_cookie_flags() {
    let app = spawn_app(&[]).await;
    let response = reqwest::get(app.url("/api/session/info")).await.unwrap();
    assert_eq!(response.status(), 200);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("pump_session="));
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie} lacks {flag}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP with SESSION_COOKIE_SECURE=auto");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    let s = &body["session"];
    for field in ["session_id", "created_at", "last_activity", "elapsed_seconds", "remaining_seconds", "is_active"] {
        assert!(s.get(field).is_some(), "session lacks {field}");
    }
    assert_eq!(s["is_active"], true);
    assert_eq!(s["remaining_seconds"], 3600);
    let cookie_value = set_cookie.split(';').next().unwrap().trim_start_matches("pump_session=");
    let id = s["session_id"].as_str().unwrap();
    assert!(!cookie_value.contains(id), "the public id is not the cookie secret");
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
    let stored = app.row("SELECT secret_hash FROM sessions").await[0].clone().unwrap();
    assert!(!cookie_value.contains(&stored), "only a hash of the secret is stored");
}

#[tokio::test]
async fn writes_need_a_session_and_its_csrf_token_from_header_form_or_json() {
    let app = spawn_app(&[]).await;
    let path = "/api/session/extend";
    let mut browser = Browser::new(&app);
    let (status, body) = browser.json(Method::POST, path, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "SESSION_REQUIRED");
    assert_eq!(body["status"], "error");

    let token = browser.token().await;
    assert_eq!(token.len(), 64);
    assert_eq!(browser.token().await, token, "one token per session");
    let (status, body) = browser.json(Method::POST, path, None, None).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "CSRF_INVALID");
    let (status, _) = browser.json(Method::POST, path, Some("0".repeat(64).as_str()), None).await;
    assert_eq!(status, 403);
    let (status, body) = browser.json(Method::POST, path, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Session extended");

    let cookie = browser.cookie.clone().unwrap();
    let form = browser
        .http
        .post(app.url(path))
        .header("Cookie", format!("pump_session={cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={token}&x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let (status, _) = browser.json(Method::POST, path, None, Some(json!({"csrf_token": token}))).await;
    assert_eq!(status, 200);
    let (status, _) = browser.json(Method::POST, path, None, Some(json!({"csrf_token": "nope"}))).await;
    assert_eq!(status, 403);
}

/// Every state-changing route of the application refuses a request without a session, and one
/// with a session but without its token. New routes get this from the layer by default; the
/// unknown path at the end proves the layer sits in front of routing.
#[tokio::test]
async fn every_write_route_refuses_requests_without_a_valid_token() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "0")]).await;
    let stream = app.ingest_ok(&bet("w1", 1)).await;
    let run = "6f1c2d3e-0000-4000-8000-000000000000";
    let routes = [
        (Method::PUT, format!("/live/streams/{stream}")),
        (Method::DELETE, format!("/live/streams/{stream}")),
        (Method::POST, "/live/seeds".to_string()),
        (Method::POST, "/runs".to_string()),
        (Method::DELETE, format!("/runs/{run}")),
        (Method::POST, format!("/runs/{run}/cancel")),
        (Method::POST, "/api/session/extend".to_string()),
        (Method::POST, "/api/session/clear".to_string()),
        (Method::POST, "/api/session/login".to_string()),
        (Method::POST, "/api/session/logout".to_string()),
        (Method::PATCH, "/some/future/route".to_string()),
    ];
    let mut browser = Browser::new(&app);
    for (method, path) in &routes {
        let (status, body) = browser.json(method.clone(), path, None, Some(json!({"notes": "x"}))).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("SESSION_REQUIRED")), "{method} {path}");
    }
    browser.token().await;
    for (method, path) in &routes {
        let (status, body) = browser.json(method.clone(), path, Some("forged"), Some(json!({"csrf_token": "x"}))).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("CSRF_INVALID")), "{method} {path}");
    }
    assert_eq!(app.get(&format!("/live/streams/{stream}")).await.1["total_bets"], 1, "nothing changed");
    // Ingest is a machine route: no session, no CSRF, with or without a cookie.
    let (status, _) = browser.json(Method::POST, "/live/ingest", None, Some(bet("w2", 2))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn validate_csrf_checks_without_changing_anything_and_rejects_malformed_bodies() {
    let app = spawn_app(&[]).await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;
    let path = "/api/session/validate-csrf";
    let (status, body) = browser.json(Method::POST, path, None, Some(json!({"csrf_token": token}))).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "success", "valid": true}));
    let (_, body) = browser.json(Method::POST, path, None, Some(json!({"csrf_token": "wrong"}))).await;
    assert_eq!(body["valid"], false);
    for bad in [json!({}), json!({"csrf_token": ""}), json!({"csrf_token": null})] {
        let (status, body) = browser.json(Method::POST, path, None, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["message"], "CSRF token required");
        assert_eq!(body["status"], "error");
    }
    let cookie = browser.cookie.clone().unwrap();
    for raw in ["", "not json", "42", "{\"csrf_token\": \"tökén\"}", "[1]", "{\"csrf_token\": 5}"] {
        let response = browser
            .http
            .post(app.url(path))
            .header("Cookie", format!("pump_session={cookie}"))
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{raw:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "error", "{raw:?}");
    }
}

#[tokio::test]
async fn clearing_revokes_the_cookie_at_once() {
    let app = spawn_app(&[]).await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;
    let old = browser.cookie.clone().unwrap();
    let (status, body) = browser.json(Method::POST, "/api/session/clear", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "success", "message": "Session cleared"}));
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 0);
    browser.cookie = Some(old);
    let (status, body) = browser.json(Method::GET, "/api/session/info", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "SESSION_EXPIRED");
    // The refusal cleared the cookie; the next request starts a new session.
    assert_eq!(browser.cookie, None);
    assert_eq!(browser.json(Method::GET, "/api/session/info", None, None).await.0, 200);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_status_polling_is_not_activity() {
    let app = spawn_app(&[("SESSION_TIMEOUT", "2")]).await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;
    let (_, info) = browser.json(Method::GET, "/api/session/info", None, None).await;
    assert_eq!(info["session"]["remaining_seconds"], 2);
    // Extending is activity.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, extended) = browser.json(Method::POST, "/api/session/extend", Some(&token), None).await;
    assert_eq!(status, 200);
    assert!(extended["session"]["last_activity"].as_str() > info["session"]["last_activity"].as_str());
    // Polling the status for longer than the timeout does not keep it alive.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, _) = browser.json(Method::GET, "/api/session/info", None, None).await;
        if status == 401 {
            return;
        }
    }
    panic!("the session outlived its idle timeout while only being polled");
}

/// SPEC §5 checks CSRF on writes made with a session cookie. A cookie-less client that is not a
/// browser (no `Origin`) is served; a browser without a session is not.
#[tokio::test]
async fn cookie_less_machine_clients_write_but_browsers_need_a_session() {
    let app = spawn_app(&[]).await;
    let body =
        json!({"server_seed": "s", "client_seed": "c", "start": 1, "end": 10, "difficulty": "easy", "targets": [1.0]});
    let machine = reqwest::Client::new();
    let response = machine.post(app.url("/runs")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201, "a script posting without cookie or Origin");
    for origin in ["https://evil.example", app.address.as_str()] {
        let response = machine.post(app.url("/runs")).header("Origin", origin).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 401, "a browser request from {origin} without a session");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "SESSION_REQUIRED");
    }
    let response =
        machine.post(app.url("/runs")).header("Sec-Fetch-Site", "cross-site").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = machine.post(app.url("/api/session/extend")).send().await.unwrap();
    assert_eq!(response.status(), 401, "session endpoints always need a session");
    assert_eq!(app.count("SELECT count(*) FROM runs").await, 1);
}

/// The ingest token sits in plain text in the bot's script: with a dashboard password it
/// authorises `/live/ingest` and nothing else (SPEC §5). Every other write needs a login.
#[tokio::test]
async fn with_a_dashboard_password_the_ingest_token_authorises_ingest_only() {
    let app = spawn_app(&[("INGEST_TOKEN", "machine-token"), ("DASHBOARD_PASSWORD", "pw")]).await;
    let body =
        json!({"server_seed": "s", "client_seed": "c", "start": 1, "end": 10, "difficulty": "easy", "targets": [1.0]});
    let machine = reqwest::Client::new();
    let ingested =
        machine.post(app.url("/live/ingest")).header("X-Ingest-Token", "machine-token").json(&bet("t1", 1)).send();
    let ingested = ingested.await.unwrap();
    assert_eq!(ingested.status(), 200);
    let stream = ingested.json::<Value>().await.unwrap()["streamId"].as_str().unwrap().to_string();
    let writes = [
        (Method::POST, "/runs".to_string(), body.clone()),
        (Method::POST, "/live/seeds".to_string(), json!({"server_seed": "revealed"})),
        (Method::PUT, format!("/live/streams/{stream}"), json!({"notes": "hijacked"})),
        (Method::DELETE, format!("/live/streams/{stream}"), json!({})),
    ];
    for token in [None, Some("wrong"), Some("machine-token")] {
        for (method, path, body) in &writes {
            let mut request = machine.request(method.clone(), app.url(path)).json(body);
            if let Some(token) = token {
                request = request.header("X-Ingest-Token", token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with token {token:?}");
            let answer = response.json::<Value>().await.unwrap();
            assert_eq!(answer["code"], "LOGIN_REQUIRED", "{answer}");
            assert!(answer["message"].as_str().unwrap().contains("/live/ingest only"), "{answer}");
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM runs").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM revealed_seeds").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM streams WHERE notes IS NULL").await, 1, "the stream is untouched");
}

#[tokio::test]
async fn the_dashboard_password_gates_everything_but_ingest_and_rotates_the_session() {
    let app = spawn_app(&[("DASHBOARD_PASSWORD", "hunter22"), ("INGEST_RATE_LIMIT", "0")]).await;
    assert_eq!(app.ingest(&bet("p1", 1)).await.status(), 200, "ingest needs no login");
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
    let mut browser = Browser::new(&app);
    let (status, body) = browser.json(Method::GET, "/live/streams", None, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("LOGIN_REQUIRED")));
    let token = browser.token().await;
    let before = browser.cookie.clone().unwrap();
    let (status, body) =
        browser.json(Method::POST, "/api/session/login", Some(&token), Some(json!({"password": "nope"}))).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("LOGIN_FAILED")));
    let (status, body) =
        browser.json(Method::POST, "/api/session/login", Some(&token), Some(json!({"password": "hunter22"}))).await;
    assert_eq!(status, 200, "{body}");
    let after = browser.cookie.clone().unwrap();
    assert_ne!(before, after, "the session id rotates on login");
    assert_ne!(body["csrf_token"].as_str().unwrap(), token);
    assert_eq!(browser.json(Method::GET, "/live/streams", None, None).await.0, 200);
    // The pre-login cookie is dead.
    browser.cookie = Some(before);
    assert_eq!(browser.json(Method::GET, "/api/session/info", None, None).await.0, 401);
    browser.cookie = Some(after);
    let token = browser.token().await;
    let (status, _) = browser.json(Method::POST, "/api/session/logout", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(browser.json(Method::GET, "/live/streams", None, None).await.0, 401);
}

#[tokio::test]
async fn failed_logins_are_limited_per_ip() {
    let app = spawn_app(&[("DASHBOARD_PASSWORD", "hunter22")]).await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;
    for _ in 0..5 {
        let (status, _) =
            browser.json(Method::POST, "/api/session/login", Some(&token), Some(json!({"password": "x"}))).await;
        assert_eq!(status, 401);
    }
    let response =
        browser.request(Method::POST, "/api/session/login", Some(&token), Some(json!({"password": "hunter22"}))).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
}

#[tokio::test]
async fn the_secure_flag_follows_the_setting_and_trusted_https_proxies() {
    async fn set_cookie(app: &TestApp, forwarded_https: bool) -> String {
        let mut request = reqwest::Client::new().get(app.url("/api/session/info"));
        if forwarded_https {
            request = request.header("X-Forwarded-Proto", "https");
        }
        request.send().await.unwrap().headers()["set-cookie"].to_str().unwrap().to_string()
    }
    let proxied = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    assert!(set_cookie(&proxied, true).await.contains("; Secure"), "HTTPS through a trusted proxy");
    assert!(!set_cookie(&proxied, false).await.contains("Secure"));
    let direct = spawn_app(&[]).await;
    assert!(!set_cookie(&direct, true).await.contains("Secure"), "an untrusted client cannot claim HTTPS");
    let forced = spawn_app(&[("SESSION_COOKIE_SECURE", "true")]).await;
    assert!(set_cookie(&forced, false).await.contains("; Secure"));
}
