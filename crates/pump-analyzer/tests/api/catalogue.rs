//! The bad-input catalogue: every route fed malformed, mistyped, oversized and hostile input
//! answers the documented 4xx with a message — never a 5xx — and the database is unchanged.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, bet, spawn_app};

const TABLES: [&str; 7] = ["streams", "bets", "rounds", "runs", "run_hits", "revealed_seeds", "stream_multipliers"];

async fn snapshot(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        counts.push(app.count(&format!("SELECT count(*) FROM {table}")).await);
    }
    counts
}

fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let nested = "[".repeat(5000) + &"]".repeat(5000);
    let long = "x".repeat(10_000);
    vec![
        ("malformed JSON", b"{\"id\": ".to_vec()),
        ("not JSON", b"id=1&nonce=2".to_vec()),
        ("empty", Vec::new()),
        ("invalid UTF-8", b"{\"id\": \"\xff\xfe\"}".to_vec()),
        ("deeply nested", nested.into_bytes()),
        ("over the limit", vec![b' '; 1024 * 1024 + 10]),
        ("a number", b"42".to_vec()),
        ("a string", b"\"hello\"".to_vec()),
        ("null", b"null".to_vec()),
        ("huge number", b"{\"nonce\": 1e400}".to_vec()),
        ("NaN string", json!({"nonce": "NaN", "start": "NaN", "end": "Infinity", "amount": "Infinity"}).to_string().into_bytes()),
        ("negative", json!({"nonce": -1, "start": -1, "end": -5, "amount": -2, "notes": -1}).to_string().into_bytes()),
        ("zero", json!({"nonce": 0, "start": 0, "end": 0, "targets": [0]}).to_string().into_bytes()),
        ("wrong types", json!({"id": [], "nonce": {}, "server_seed": 5, "notes": [1], "targets": "x", "difficulty": 3}).to_string().into_bytes()),
        ("10,000-character strings", json!({"id": long, "server_seed": long, "client_seed": long, "notes": long, "clientSeed": long, "serverSeedHashed": long, "difficulty": long}).to_string().into_bytes()),
    ]
}

#[tokio::test]
async fn hostile_bodies_and_parameters_get_4xx_and_change_nothing() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "0")]).await;
    let stream = app.ingest_ok(&bet("seed-bet", 1)).await;
    let (_, run) = app
        .send(
            Method::POST,
            "/runs",
            Some(&json!({"server_seed": "s", "client_seed": "c", "start": 1, "end": 100, "difficulty": "easy", "targets": [1.02]})),
        )
        .await;
    let run = run["id"].as_str().unwrap().to_string();
    let before = snapshot(&app).await;

    let writes = [
        (Method::POST, "/live/ingest".to_string()),
        (Method::PUT, format!("/live/streams/{stream}")),
        (Method::POST, "/live/seeds".to_string()),
        (Method::POST, "/runs".to_string()),
        (Method::POST, "/api/session/validate-csrf".to_string()),
    ];
    let mut tried = 0;
    for (method, path) in &writes {
        for (label, body) in bodies() {
            let response = app.write(method.clone(), path).await.body(body).send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert!((400..500).contains(&status), "{method} {path} with {label}: {status} {text}");
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let message = value["error"]["message"].as_str().or(value["message"].as_str());
            assert!(message.is_some_and(|m| !m.is_empty()), "{method} {path} with {label}: no message in {text}");
            tried += 1;
        }
    }

    let unknown = "6f1c2d3e-0000-4000-8000-000000000000";
    let long = "x".repeat(10_000);
    let reads = [
        format!("/live/streams/{unknown}"),
        "/live/streams/not-a-uuid".to_string(),
        format!("/live/streams/{}", "%FF%FE"),
        format!("/live/streams/{long}"),
        "/live/streams?limit=NaN".to_string(),
        "/live/streams?limit=99999999999999999999999".to_string(),
        "/live/streams?offset=-1".to_string(),
        format!("/live/streams/{stream}/bets?min_multiplier=Infinity"),
        format!("/live/streams/{stream}/bets?min_multiplier=1e400"),
        format!("/live/streams/{stream}/bets?limit=0"),
        format!("/live/streams/{stream}/bets?difficulty=nightmare"),
        format!("/live/streams/{stream}/tail?since_id=abc"),
        format!("/live/streams/{stream}/rounds?since_nonce=-5"),
        format!("/live/streams/{stream}/cadence?tiers=,,,"),
        format!("/live/streams/{stream}/cadence?tiers=NaN"),
        format!("/live/streams/{stream}/cadence?band=-1"),
        format!("/live/streams/{stream}/metrics?multipliers=-3"),
        format!("/live/streams/{stream}/metrics?multipliers={long}"),
        format!("/live/streams/{stream}/events?last_event_id=-1"),
        "/verify?server_seed=a&client_seed=b&nonce=0&difficulty=expert".to_string(),
        "/verify?server_seed=a&client_seed=b&nonce=1e3&difficulty=expert".to_string(),
        format!("/verify?server_seed={long}&client_seed=b&nonce=1&difficulty=expert"),
        "/verify".to_string(),
        "/runs?limit=-1".to_string(),
        "/runs?difficulty=x".to_string(),
        format!("/runs/{unknown}"),
        "/runs/zzz".to_string(),
        format!("/runs/{run}/hits?min_multiplier=-1"),
        format!("/runs/{run}/hits?limit=100000"),
        format!("/runs/{unknown}/export/full.csv"),
        "/no/such/route".to_string(),
    ];
    for path in &reads {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert!((400..500).contains(&status), "GET {path}: {status} {text}");
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(value["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "GET {path}: {text}");
        tried += 1;
    }
    for (method, path) in [
        (Method::DELETE, format!("/live/streams/{unknown}")),
        (Method::DELETE, format!("/runs/{unknown}")),
        (Method::DELETE, "/runs/zzz".to_string()),
    ] {
        let (status, _) = app.send(method.clone(), &path, None).await;
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        tried += 1;
    }
    assert_eq!(snapshot(&app).await, before, "nothing stored was lost or changed");
    assert!(tried > 100, "{tried} inputs tried");
    println!("bad-input catalogue: {tried} inputs over {} routes, all 4xx", writes.len() + reads.len() + 3);
}

#[tokio::test]
async fn metrics_count_ingest_outcomes_and_expose_gauges() {
    let app = spawn_app(&[("INGEST_TOKEN", "tok"), ("INGEST_RATE_LIMIT", "3")]).await;
    let post = |body: Value, token: Option<&'static str>| {
        let mut request = app.client.post(app.url("/live/ingest")).json(&body);
        if let Some(t) = token {
            request = request.header("X-Ingest-Token", t);
        }
        request.send()
    };
    assert_eq!(post(bet("m1", 1), Some("tok")).await.unwrap().status(), 200);
    assert_eq!(post(bet("m1", 1), Some("tok")).await.unwrap().status(), 200);
    assert_eq!(post(json!({"id": "x"}), Some("tok")).await.unwrap().status(), 422);
    assert_eq!(post(bet("m2", 2), None).await.unwrap().status(), 401);
    assert_eq!(post(bet("m3", 3), Some("tok")).await.unwrap().status(), 429);
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        "pump_ingest_requests_total{outcome=\"accepted\"} 1",
        "pump_ingest_requests_total{outcome=\"duplicate\"} 1",
        "pump_ingest_requests_total{outcome=\"rejected\"} 1",
        "pump_ingest_requests_total{outcome=\"unauthorized\"} 1",
        "pump_ingest_requests_total{outcome=\"rate_limited\"} 1",
        "pump_ingest_duration_seconds_count 5",
        "pump_runs_in_progress 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(text.contains("pump_sse_clients "));
    assert!(text.contains("pump_sessions_active "));
    // The SQLite writer's group-commit counters (PostgreSQL has no writer thread to count).
    let counter = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok());
    if std::env::var("PUMP_TEST_BACKEND").is_ok_and(|b| b == "postgres") {
        assert_eq!(counter("pump_store_commits_total"), None);
    } else {
        let commits = counter("pump_store_commits_total").expect("commits counted");
        let writes = counter("pump_store_committed_writes_total").expect("writes counted");
        assert!(commits >= 1.0 && writes >= commits, "{commits} commits carried {writes} writes");
        assert!(writes >= 2.0, "the two stored posts at least: {writes}");
        assert!(counter("pump_store_commit_seconds_total").expect("commit time") > 0.0);
    }
}
