//! The dashboard and `window.sessionManager` in a real headless Chromium, driven over the
//! WebDriver protocol (plain HTTP + JSON to `chromedriver`, so no extra client crate). Skipped,
//! with a message, on a machine without Debian's `chromium` and `chromium-driver`; `.ci/run`
//! installs them.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, bet_on, spawn_app};

struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
    _profile: crate::helpers::TempDir,
}

impl Drop for Browser {
    /// chromedriver runs in its own process group with the browsers it starts: the whole group
    /// goes, so no Chromium outlives its test.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.driver.id())]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `None` when they are not installed.
    async fn start() -> Option<Browser> {
        let driver_path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(driver_path) = driver_path.filter(|_| std::path::Path::new("/usr/bin/chromium").exists()) else {
            eprintln!(
                "SKIPPED browser test: chromium / chromium-driver not installed (apt-get install -y chromium chromium-driver)"
            );
            return None;
        };
        let port = free_port();
        let driver = Command::new(driver_path)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = crate::helpers::TempDir::new();
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _profile: profile,
        };
        for _ in 0..100 {
            if browser.http.get(format!("{}/status", browser.base)).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created: Value =
            browser.http.post(format!("{}/session", browser.base)).json(&caps).send().await.ok()?.json().await.ok()?;
        let session = created["value"]["sessionId"].as_str().expect("a WebDriver session").to_string();
        browser.base = format!("{}/session/{session}", browser.base);
        browser.command("timeouts", json!({"script": 30000, "pageLoad": 30000})).await;
        Some(browser)
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}/{path}", self.base)).json(&body).send().await.unwrap();
        let value: Value = response.json().await.unwrap();
        if let Some(error) = value["value"].get("error") {
            panic!("WebDriver {path} failed: {error} {}", value["value"]["message"]);
        }
        value["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        let value: Value = self.http.get(format!("{}/{path}", self.base)).send().await.unwrap().json().await.unwrap();
        value["value"].clone()
    }

    async fn resize(&self, width: u32, height: u32) {
        self.command("window/rect", json!({"width": width, "height": height})).await;
    }

    /// Severe browser console entries since the last call (script errors, failed loads, CSP).
    async fn console_errors(&self) -> Vec<String> {
        let logs = self.command("se/log", json!({"type": "browser"})).await;
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Saves a PNG of the page under `target/screenshots/` (a test artifact) and returns its size.
    async fn screenshot(&self, name: &str) -> usize {
        let encoded = self.get("screenshot").await;
        let png = base64_decode(encoded.as_str().unwrap_or_default());
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        png.len()
    }

    async fn text(&self) -> String {
        self.command("execute/sync", json!({"script": "return document.body.innerText;", "args": []}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn location(&self) -> String {
        self.get("url").await.as_str().unwrap_or_default().to_string()
    }

    async fn open(&self, url: &str) {
        self.command("url", json!({"url": url})).await;
    }

    /// Runs an async script: its body gets `done` to call with the result.
    async fn run(&self, body: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1]; (async () => {{ {body} }})().then(done, (e) => done({{error: String(e)}}));"
        );
        self.command("execute/async", json!({"script": script, "args": []})).await
    }

    /// Polls `condition` (a JS expression) until it is truthy.
    async fn wait_for(&self, condition: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let v = self
                .command("execute/sync", json!({"script": format!("return Boolean({condition});"), "args": []}))
                .await;
            if v == Value::Bool(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, d)| acc | (u32::from(*d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

async fn setup(vars: &[(&str, &str)]) -> Option<(TestApp, Browser)> {
    let browser = Browser::start().await?;
    let app = spawn_app(vars).await;
    Some((app, browser))
}

#[tokio::test]
async fn the_session_client_gets_a_token_passes_csrf_and_forged_requests_fail() {
    let Some((app, browser)) = setup(&[]).await else { return };
    browser.open(&app.url("/verify")).await;
    let result = browser
        .run(
            "await window.sessionManager.init();
             const token = window.sessionManager.getCSRFToken();
             const info = window.sessionManager.getSessionInfo();
             const ok = await window.sessionManager.fetch('/api/session/extend', { method: 'POST' });
             const forged = await fetch('/api/session/extend', { method: 'POST' });
             const forgedBody = await forged.json();
             return { token, info, ok: ok.status, forged: forged.status, code: forgedBody.code };",
        )
        .await;
    assert_eq!(result["token"].as_str().map(str::len), Some(64), "{result}");
    assert_eq!(result["info"]["is_active"], true);
    assert_eq!(result["ok"], 200, "{result}");
    assert_eq!(result["forged"], 403);
    assert_eq!(result["code"], "CSRF_INVALID");

    // A stale token is refreshed and the request retried once.
    let retried = browser
        .run(
            "window.sessionManager.csrfToken = 'stale';
             const r = await window.sessionManager.fetch('/api/session/extend', { method: 'POST' });
             return { status: r.status, token: window.sessionManager.getCSRFToken() };",
        )
        .await;
    assert_eq!(retried["status"], 200, "{retried}");
    assert_eq!(retried["token"], result["token"]);
}

#[tokio::test]
async fn warning_and_expiry_events_fire_and_auto_extend_keeps_the_session() {
    let Some((app, browser)) = setup(&[("SESSION_TIMEOUT", "4")]).await else { return };
    browser.open(&app.url("/verify")).await;
    let events = browser
        .run(
            "const seen = {};
             window.addEventListener('sessionWarning', (e) => { seen.warning = e.detail.remainingSeconds; });
             window.addEventListener('sessionExpired', (e) => { seen.expired = e.detail.message; });
             await window.sessionManager.init();
             window.sessionManager.setWarningThreshold(3);
             await new Promise((resolve) => setTimeout(resolve, 7000));
             return seen;",
        )
        .await;
    assert!(events["warning"].as_i64().is_some_and(|s| s <= 3), "{events}");
    assert!(events["expired"].is_string(), "{events}");
    assert!(browser.wait_for("document.querySelector('#session-banner.expired')", Duration::from_secs(2)).await);

    browser.open(&app.url("/verify")).await;
    let kept = browser
        .run(
            "await window.sessionManager.init();
             window.sessionManager.setWarningThreshold(3);
             window.sessionManager.setAutoExtend(true);
             await new Promise((resolve) => setTimeout(resolve, 7000));
             const r = await fetch('/api/session/info');
             return { status: r.status };",
        )
        .await;
    assert_eq!(kept["status"], 200, "auto-extend kept the session alive: {kept}");
}

#[tokio::test]
async fn the_dashboard_shows_streams_and_new_bets_live() {
    let Some((app, browser)) = setup(&[("INGEST_RATE_LIMIT", "0")]).await else { return };
    browser.open(&app.url("/")).await;
    assert!(browser.wait_for("document.querySelector('#ingest-url')", Duration::from_secs(5)).await, "empty state");
    let id = app.ingest_ok(&bet_on("browser-hash", "browser-client", "b1", 1, 2.8, "expert")).await;
    assert!(
        browser.wait_for(&format!("document.querySelector('tr[data-id=\"{id}\"]')"), Duration::from_secs(5)).await,
        "the new stream appears without reload"
    );

    browser.open(&app.url(&format!("/streams/{id}"))).await;
    assert!(browser.wait_for("document.querySelectorAll('#bets tbody tr').length === 1", Duration::from_secs(5)).await);
    assert!(browser.wait_for("document.querySelectorAll('.tier-card').length === 5", Duration::from_secs(5)).await);
    // Timing is measured by scripts/bench-read.sh sse (p99 26.6 ms); here only "live, no reload".
    app.ingest_ok(&bet_on("browser-hash", "browser-client", "b2", 2, 1066.73, "expert")).await;
    assert!(
        browser.wait_for("document.querySelectorAll('#bets tbody tr').length === 2", Duration::from_secs(10)).await,
        "the new bet appears without reload"
    );
    assert!(browser.wait_for("document.querySelectorAll('#tape span').length === 2", Duration::from_secs(3)).await);

    // Notes are saved through the session client (CSRF-protected PUT).
    browser
        .run("document.querySelector('#notes').value = 'from the browser'; document.querySelector('#save-notes').click(); return true;")
        .await;
    assert!(
        browser
            .wait_for("document.querySelector('#notes-status').textContent === 'Saved'", Duration::from_secs(5))
            .await
    );
    assert_eq!(app.get(&format!("/live/streams/{id}")).await.1["notes"], "from the browser");
}

#[tokio::test]
async fn the_verify_page_draws_the_board() {
    let Some((app, browser)) = setup(&[]).await else { return };
    browser.open(&app.url("/verify")).await;
    browser
        .run(
            "document.querySelector('#server_seed').value = '564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca';
             document.querySelector('#client_seed').value = 'zXv1upuFns';
             document.querySelector('#nonce').value = '5663';
             document.querySelector('#difficulty').value = 'expert';
             document.querySelector('#verify-form').requestSubmit();
             return true;",
        )
        .await;
    assert!(browser.wait_for("document.querySelectorAll('#board .cell').length === 25", Duration::from_secs(5)).await);
    let board = browser
        .run(
            "return { pops: document.querySelectorAll('#board .cell.pop').length,
                      first: document.querySelector('#board .cell.first-pop').dataset.position,
                      multiplier: document.querySelector('#result-multiplier').textContent };",
        )
        .await;
    assert_eq!(board, json!({"pops": 10, "first": "13", "multiplier": "11200.65×"}));
}

#[tokio::test]
async fn the_dashboard_end_to_end_at_desktop_and_phone_widths() {
    let Some((app, browser)) = setup(&[("INGEST_RATE_LIMIT", "0")]).await else { return };
    browser.resize(1440, 900).await;
    browser.open(&app.url("/")).await;
    assert!(browser.wait_for("document.querySelector('#ingest-url')", Duration::from_secs(5)).await);
    assert!(browser.screenshot("01-streams-empty").await > 5_000);
    for n in 1..=3 {
        app.ingest_ok(&bet_on(
            "e2e-hash",
            "e2e-client",
            &format!("e{n}"),
            n,
            [1.63, 400.02, 2.8][n as usize - 1],
            "expert",
        ))
        .await;
    }
    assert!(
        browser.wait_for("document.querySelectorAll('#streams tbody tr').length === 1", Duration::from_secs(5)).await
    );
    assert!(browser.text().await.contains("e2e-client"));
    assert!(browser.screenshot("02-streams").await > 5_000);

    // Stream view: live row within a second, filter, export, delete with confirmation.
    browser.run("document.querySelector('#streams tbody tr').click(); return true;").await;
    assert!(browser.wait_for("document.querySelectorAll('#bets tbody tr').length === 3", Duration::from_secs(5)).await);
    let id = browser.location().await.rsplit('/').next().unwrap().to_string();
    app.ingest_ok(&bet_on("e2e-hash", "e2e-client", "e4", 4, 1066.73, "expert")).await;
    assert!(
        browser.wait_for("document.querySelectorAll('#bets tbody tr').length === 4", Duration::from_secs(10)).await
    );
    browser
        .run("const f = document.querySelector('#f-min'); f.value = '100'; f.dispatchEvent(new Event('change')); return true;")
        .await;
    assert!(
        browser.wait_for("document.querySelectorAll('#bets tbody tr').length === 2", Duration::from_secs(5)).await,
        "min filter"
    );
    let csv =
        browser.run("const r = await fetch(document.querySelector('#export').href); return await r.text();").await;
    assert_eq!(csv.as_str().unwrap().lines().count(), 5, "{csv}");
    let text = browser.text().await;
    assert!(text.contains("expected gap (average)"));
    assert!(!text.contains("null") && !text.contains("undefined") && !text.contains("NaN"), "{text}");
    assert!(browser.screenshot("03-stream").await > 10_000);
    browser
        .run("document.querySelector('#delete').click(); return document.querySelector('#confirm-delete').open;")
        .await;
    browser.run("document.querySelector('#confirm-delete-button').click(); return true;").await;
    assert!(browser.wait_for("window.location.pathname === '/'", Duration::from_secs(5)).await, "back to the list");
    assert_eq!(app.get(&format!("/live/streams/{id}")).await.0, 404);

    // A run: client-side validation, then a scan that finishes and shows its summary.
    browser.open(&app.url("/runs/new")).await;
    browser.run("document.querySelector('#run-form').requestSubmit(); return true;").await;
    assert!(
        browser
            .wait_for(
                "document.querySelector('[data-for=server_seed]').textContent === 'Required'",
                Duration::from_secs(3)
            )
            .await
    );
    browser
        .run(
            "document.querySelector('#server_seed').value = '564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca';
             document.querySelector('#client_seed').value = 'zXv1upuFns';
             document.querySelector('#end').value = '50000';
             document.querySelector('#targets').value = '11200.65';
             document.querySelector('#run-form').requestSubmit();
             return true;",
        )
        .await;
    assert!(
        browser.wait_for("/^\\/runs\\/[0-9a-f-]{36}$/.test(window.location.pathname)", Duration::from_secs(20)).await
    );
    assert!(browser.wait_for("document.querySelectorAll('#hits tbody tr').length === 6", Duration::from_secs(5)).await);
    assert!(browser.screenshot("04-run").await > 10_000);
    browser.open(&app.url("/runs")).await;
    assert!(browser.wait_for("document.querySelectorAll('#runs tbody tr').length === 1", Duration::from_secs(5)).await);
    assert!(browser.screenshot("05-runs").await > 5_000);
    assert_eq!(browser.console_errors().await, Vec::<String>::new(), "no console errors at 1440 px");

    // Phone width: nothing overflows the viewport.
    browser.resize(360, 800).await;
    for path in ["/", "/runs", "/runs/new", "/verify"] {
        browser.open(&app.url(path)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let width = browser
            .command(
                "execute/sync",
                json!({"script": "return [document.documentElement.scrollWidth, window.innerWidth];", "args": []}),
            )
            .await;
        assert!(width[0].as_i64() <= width[1].as_i64(), "{path} overflows at 360 px: {width}");
    }
    assert!(browser.screenshot("06-verify-360").await > 3_000);
    assert_eq!(browser.console_errors().await, Vec::<String>::new(), "no console errors at 360 px");
}

impl Browser {
    /// Opens `url` in a new tab and switches to it; returns the tab's handle.
    async fn new_tab(&self, url: &str) -> String {
        let created = self.command("window/new", json!({"type": "tab"})).await;
        let handle = created["handle"].as_str().unwrap().to_string();
        self.switch_to(&handle).await;
        self.open(url).await;
        handle
    }

    async fn switch_to(&self, handle: &str) {
        self.command("window", json!({"handle": handle})).await;
    }

    async fn current_tab(&self) -> String {
        self.get("window").await.as_str().unwrap().to_string()
    }

    /// Closes the current tab; switch to another before the next command.
    async fn close_tab(&self) {
        self.http.delete(format!("{}/window", self.base)).send().await.unwrap();
    }
}

/// A heartbeat of the given stream.
fn heartbeat_on(server_hash: &str, client: &str, nonce: i64, result: f64) -> Value {
    json!({"type": "heartbeat", "nonce": nonce, "roundResult": result, "clientSeed": client, "serverSeedHashed": server_hash})
}

/// SPEC §7: the tabs of one browser share one live connection. Ten stream tabs and the streams
/// list all load (the 7th tab used to hang on the 6-connection limit), a bet ingested afterwards
/// reaches every tab within 2 s, the server sees one live subscriber, and closing the tab that
/// opened the connection keeps the others live.
#[tokio::test]
async fn ten_stream_tabs_and_the_list_share_one_live_connection() {
    let Some((app, browser)) = setup(&[("INGEST_RATE_LIMIT", "0")]).await else { return };
    let id = app.ingest_ok(&bet_on("tabs-hash", "tabs-client", "t1", 1, 2.0, "expert")).await;
    browser.open(&app.url("/")).await;
    let first = browser.current_tab().await;
    assert!(browser.wait_for(&format!("document.querySelector('tr[data-id=\"{id}\"]')"), Duration::from_secs(5)).await);
    let mut tabs = vec![first.clone()];
    for n in 0..10 {
        let tab = browser.new_tab(&app.url(&format!("/streams/{id}"))).await;
        assert!(
            browser.wait_for("document.querySelectorAll('#bets tbody tr').length === 1", Duration::from_secs(10)).await,
            "stream tab {n} loaded its data"
        );
        if n == 0 {
            // This stream only ever received full bets: the page says so, not "last heartbeat".
            let health = browser
                .command(
                    "execute/sync",
                    json!({"script": "return document.querySelector('#heartbeat-age').innerText;", "args": []}),
                )
                .await;
            let health = health.as_str().unwrap();
            assert!(health.contains("last bet received") && !health.contains("last heartbeat"), "{health}");
        }
        tabs.push(tab);
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\npump_sse_clients 1\n"), "one live connection for 11 tabs:\n{metrics}");

    app.ingest_ok(&bet_on("tabs-hash", "tabs-client", "t2", 2, 400.02, "expert")).await;
    for (n, tab) in tabs.iter().enumerate().skip(1) {
        browser.switch_to(tab).await;
        assert!(
            browser.wait_for("document.querySelectorAll('#bets tbody tr').length === 2", Duration::from_secs(2)).await,
            "tab {n} shows the new bet within 2 s"
        );
    }
    browser.switch_to(&first).await;
    assert!(
        browser
            .wait_for(
                &format!("document.querySelector('tr[data-id=\"{id}\"] td.bets').textContent === '2'"),
                Duration::from_secs(2)
            )
            .await,
        "the streams list counts the new bet"
    );

    // The first tab opened the shared connection; closing it leaves the others live.
    browser.close_tab().await;
    browser.switch_to(&tabs[1]).await;
    app.ingest_ok(&bet_on("tabs-hash", "tabs-client", "t3", 3, 1066.73, "expert")).await;
    for (n, tab) in tabs.iter().enumerate().skip(1) {
        browser.switch_to(tab).await;
        assert!(
            browser.wait_for("document.querySelectorAll('#bets tbody tr').length === 3", Duration::from_secs(2)).await,
            "tab {n} is still live after the first tab closed"
        );
    }
    assert!(browser.console_errors().await.iter().all(|e| !e.contains("live-worker")), "the worker loads cleanly");
}

/// What a page shows of its numbers, minus relative times, for comparison with a fresh load.
const STREAM_SNAPSHOT: &str = "
    const text = (s) => (document.querySelector(s) || {}).innerText || '';
    const rows = [...document.querySelectorAll('#bets tbody tr')].map((tr) => [...tr.cells].slice(0, -1).map((c) => c.innerText).join('|'));
    return JSON.stringify({
      stats: text('#stats'), nonce: text('#latest-nonce'), tiers: text('#tier-cards'), tape: text('#tape-count'),
      tapeCells: document.querySelectorAll('#tape span').length, total: text('#bets-total'), rows,
      pinned: text('#pinned tbody'),
    });";

/// SPEC §7: every number live events change equals what a fresh load of the page shows.
#[tokio::test]
async fn live_numbers_equal_a_fresh_load_after_heartbeats_and_bets() {
    let Some((app, browser)) = setup(&[("INGEST_RATE_LIMIT", "0")]).await else { return };
    let (hash, client) = ("live-hash", "live-client");
    let id = app.ingest_ok(&bet_on(hash, client, "l0", 1, 1.63, "expert")).await;
    browser.open(&app.url(&format!("/streams/{id}"))).await;
    assert!(browser.wait_for("document.querySelectorAll('.tier-card').length === 5", Duration::from_secs(5)).await);
    browser.new_tab(&app.url("/")).await;
    let list = browser.current_tab().await;
    assert!(browser.wait_for(&format!("document.querySelector('tr[data-id=\"{id}\"]')"), Duration::from_secs(5)).await);
    let stream_tab = {
        let handles = browser.get("window/handles").await;
        handles.as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).find(|h| *h != list).unwrap()
    };

    // 400 rounds: heartbeats, with bets of several tiers among them (and one pinned multiplier).
    let results = [400.02, 1066.73, 164.72, 11200.65, 1.0, 3200.18];
    let mut items = Vec::new();
    for nonce in 2..=401i64 {
        if nonce % 37 == 0 {
            let result = results[(nonce / 37) as usize % results.len()];
            items.push(bet_on(hash, client, &format!("l{nonce}"), nonce, result, "expert"));
        } else {
            items.push(heartbeat_on(hash, client, nonce, 1.0 + (nonce % 13) as f64));
        }
        if items.len() == 50 {
            app.ingest_ok(&json!({ "bets": std::mem::take(&mut items) })).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;

    browser.switch_to(&stream_tab).await;
    let live = browser.run(STREAM_SNAPSHOT).await;
    browser.open(&app.url(&format!("/streams/{id}"))).await;
    assert!(browser.wait_for("document.querySelectorAll('.tier-card').length === 5", Duration::from_secs(5)).await);
    assert!(browser.wait_for("document.querySelectorAll('#pinned tbody tr').length > 0", Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = browser.run(STREAM_SNAPSHOT).await;
    let (live, fresh): (Value, Value) =
        (serde_json::from_str(live.as_str().unwrap()).unwrap(), serde_json::from_str(fresh.as_str().unwrap()).unwrap());
    assert!(live["tape"].as_str().unwrap().contains("401"), "the tape counts every round: {live}");
    assert_eq!(live, fresh, "the live page equals a fresh load");

    browser.switch_to(&list).await;
    let row = format!(
        "[...document.querySelector('tr[data-id=\"{id}\"]').cells].filter((c) => !c.classList.contains('last-seen')).map((c) => c.innerText).join('|')"
    );
    let live_row = browser.command("execute/sync", json!({"script": format!("return {row};"), "args": []})).await;
    browser.open(&app.url("/")).await;
    assert!(browser.wait_for(&format!("document.querySelector('tr[data-id=\"{id}\"]')"), Duration::from_secs(5)).await);
    let fresh_row = browser.command("execute/sync", json!({"script": format!("return {row};"), "args": []})).await;
    assert_eq!(live_row, fresh_row, "the streams list equals a fresh load");
}

/// A minimal Antebot stand-in in plain Node: runs the script text it is given with `engine`,
/// `log` and the real `fetch`, plays `rounds` rounds of one seed pair through
/// `engine.onBetPlaced`, then calls `engine.onBettingStopped`.
const ANTEBOT_STAND_IN: &str = r#"
const fs = require('fs');
const [scriptPath, rounds] = process.argv.slice(2);
const script = fs.readFileSync(scriptPath, 'utf8');
const handlers = {};
const engine = {
  onBetPlaced: (cb) => { handlers.placed = cb; },
  onBettingStopped: (cb) => { handlers.stopped = cb; },
};
const log = (...args) => console.error(...args);
// Antebot defines isSimulationMode (false when betting for real).
new Function('engine', 'log', 'isSimulationMode', script)(engine, log, false);
(async () => {
  for (let nonce = 1; nonce <= Number(rounds); nonce++) {
    const result = nonce % 40 === 0 ? 400.02 : 1 + (nonce % 7) / 10;
    await handlers.placed({
      id: `bet-${nonce}`, nonce, amount: 0.01, payout: 0, dateTime: new Date().toISOString(),
      clientSeed: 'stand-in-client', serverSeedHashed: 'stand-in-hash',
      state: { difficulty: 'expert', roundTargetMultiplier: 2, roundResultMultiplier: result },
    });
  }
  if (handlers.stopped) await handlers.stopped(false, null);
})();
"#;

/// SPEC §7 first run: the empty streams page shows the complete script with this server's URL;
/// that exact text, run by a stand-in bot, flips the checklist to "receiving" with a link to the
/// stream, without a reload; and after the bot stops, nothing it played is missing.
#[tokio::test]
async fn the_empty_page_script_connects_a_bot_and_loses_no_round_when_betting_stops() {
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("SKIPPED: node is not installed");
        return;
    }
    let Some((app, browser)) = setup(&[]).await else { return };
    browser.open(&app.url("/")).await;
    assert!(browser.wait_for("document.querySelector('#antebot-script')", Duration::from_secs(5)).await);
    let shown = browser
        .command(
            "execute/sync",
            json!({"script": "return document.querySelector('#antebot-script').textContent;", "args": []}),
        )
        .await;
    let shown = shown.as_str().unwrap().to_string();
    let ingest = app.url("/live/ingest");
    assert!(shown.contains(&format!("const PUMP_URL = '{ingest}';")), "{shown}");
    assert!(shown.contains("engine.onBettingStopped"), "the script flushes when betting stops");
    let checklist = browser
        .command(
            "execute/sync",
            json!({"script": "return document.querySelector('#checklist-status').innerText;", "args": []}),
        )
        .await;
    assert!(checklist.as_str().unwrap().contains("waiting for your bot"), "{checklist}");

    let dir = crate::helpers::TempDir::new();
    let (script, stand_in) = (dir.path().join("pump-feed.js"), dir.path().join("antebot.js"));
    std::fs::write(&script, &shown).unwrap();
    std::fs::write(&stand_in, ANTEBOT_STAND_IN).unwrap();
    // 123 rounds: the script sends every 50 queued (or once a second); the last 23 go only
    // because it flushes when betting stops.
    let output = tokio::process::Command::new("node").arg(&stand_in).arg(&script).arg("123").output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    assert!(
        browser.wait_for("document.querySelector('#checklist-stream')", Duration::from_secs(5)).await,
        "the checklist links the new stream without a reload"
    );
    assert!(
        browser.wait_for("document.querySelector('#checklist-status').innerText.includes('Receiving: 123 rounds from seed stand-in-client')", Duration::from_secs(5)).await,
        "{}", browser.text().await
    );
    let (_, list) = app.get("/live/streams").await;
    let stream = &list["streams"][0];
    assert_eq!(stream["last_observed_nonce"], 123, "the last rounds arrived when betting stopped");
    assert_eq!(stream["total_bets"], 3, "the rounds at or above 164.72 came as full bets");
    let href = browser
        .command(
            "execute/sync",
            json!({"script": "return document.querySelector('#checklist-stream').getAttribute('href');", "args": []}),
        )
        .await;
    assert_eq!(href.as_str().unwrap(), format!("/streams/{}", stream["id"].as_str().unwrap()));
}

/// SPEC §7 first run without a bot: "Watch a demo" opens a demo stream, badged, whose nonce,
/// tape and tier cards move live; "Reveal seed and verify" shows every recorded bet verified.
#[tokio::test]
async fn watch_a_demo_feeds_a_badged_stream_live_and_its_reveal_verifies_every_bet() {
    let Some((app, browser)) = setup(&[]).await else { return };
    browser.open(&app.url("/")).await;
    assert!(browser.wait_for("document.querySelector('#watch-demo')", Duration::from_secs(5)).await);
    browser.run("document.querySelector('#watch-demo').click(); return true;").await;
    assert!(browser.wait_for("location.pathname.startsWith('/streams/')", Duration::from_secs(5)).await);
    let id = browser.location().await.rsplit('/').next().unwrap().to_string();
    assert!(browser.wait_for("document.querySelector('#demo-badge')", Duration::from_secs(5)).await, "the demo badge");
    assert!(browser.wait_for("document.querySelectorAll('.tier-card').length === 5", Duration::from_secs(5)).await);
    let tape = "document.querySelectorAll('#tape span').length";
    assert!(browser.wait_for(&format!("{tape} >= 15"), Duration::from_secs(5)).await, "the tape moves at ~10 rounds/s");
    let nonce = |text: Value| text.as_str().unwrap().replace(',', "").parse::<i64>().unwrap();
    let latest = "return document.querySelector('#latest-nonce').innerText;";
    let first = nonce(browser.command("execute/sync", json!({"script": latest, "args": []})).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = nonce(browser.command("execute/sync", json!({"script": latest, "args": []})).await);
    assert!(later >= first + 8, "the observed nonce advances at the demo's pace: {first} → {later}");

    browser.run("document.querySelector('#demo-reveal').click(); return true;").await;
    assert!(
        browser
            .wait_for(
                "(document.querySelector('#verification-summary') || {}).innerText?.includes('All checked bets match')",
                Duration::from_secs(10)
            )
            .await,
        "{}",
        browser.text().await
    );
    let (_, stream) = app.get(&format!("/live/streams/{id}")).await;
    assert_eq!(stream["demo"], true);
    assert_eq!(stream["verified"]["mismatched"], 0);
    assert_eq!(stream["verified"]["checked"], stream["total_bets"]);
    browser.open(&app.url("/")).await;
    assert!(
        browser
            .wait_for(&format!("document.querySelector('tr[data-id=\"{id}\"] .badge.demo')"), Duration::from_secs(5))
            .await,
        "badged in the list too"
    );
}

/// SPEC §9.4's page: the editor comes pre-filled with the README's script; the README's
/// martingale on the golden pair shows its stop, stats beside the expected profit, the curve and
/// the coloured console; a Monte Carlo shows the distribution.
#[tokio::test]
async fn the_simulate_page_runs_a_script_and_shows_its_result_and_a_monte_carlo() {
    let Some((app, browser)) = setup(&[]).await else { return };
    browser.open(&app.url("/simulate")).await;
    assert!(
        browser
            .wait_for(
                "document.querySelector('#script').value.includes('Pump Analyzer live feed for Antebot')",
                Duration::from_secs(5)
            )
            .await,
        "pre-filled with the README's script"
    );
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let martingale = readme.split("```js\n").nth(2).unwrap().split("```").next().unwrap().to_string();
    let fill = format!(
        "document.querySelector('#script').value = {script};
         const random = document.querySelector('#random-seeds'); random.checked = false; random.dispatchEvent(new Event('change'));
         document.querySelector('#server_seed').value = '564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca';
         document.querySelector('#client_seed').value = 'zXv1upuFns';
         document.querySelector('#max_bets').value = '100000';
         document.querySelector('#start-sim').click(); return true;",
        script = serde_json::to_string(&martingale).unwrap()
    );
    browser.run(&fill).await;
    assert!(browser.wait_for("location.pathname.startsWith('/simulations/')", Duration::from_secs(5)).await);
    assert!(
        browser
            .wait_for(
                "(document.querySelector('#sim-stop') || {}).innerText?.includes('Stopped: stopped')",
                Duration::from_secs(20)
            )
            .await,
        "{}",
        browser.text().await
    );
    assert!(
        browser
            .wait_for(
                "document.querySelector('#sim-expected') && document.querySelector('#curve')",
                Duration::from_secs(2)
            )
            .await
    );
    let last_line = browser
        .command("execute/sync", json!({"script": "const l = [...document.querySelectorAll('#sim-console .log-line')].pop(); return [l.innerText, l.style.color];", "args": []}))
        .await;
    assert!(last_line[0].as_str().unwrap().contains("stop-loss reached at nonce"), "{last_line}");
    assert_eq!(last_line[1], "rgb(255, 85, 85)", "the script's colour");

    browser.open(&app.url("/simulate")).await;
    assert!(browser.wait_for("document.querySelector('#script').value.length > 0", Duration::from_secs(5)).await);
    browser
        .run("document.querySelector('#script').value = \"game = 'pump'; difficulty = 'expert'; rounds = 10; betSize = 1;\"; document.querySelector('#runs').value = '20'; document.querySelector('#max_bets').value = '300'; document.querySelector('#balance').value = '50'; document.querySelector('#start-sim').click(); return true;")
        .await;
    assert!(
        browser
            .wait_for(
                "document.querySelector('#sim-p-bust') && document.querySelector('#histogram')",
                Duration::from_secs(20)
            )
            .await,
        "{}",
        browser.text().await
    );
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");
}
