//! Seed reveal (SPEC §3.3): recorded bets are replayed through the engine once the seed is known.

use pump_engine::{Difficulty, verify};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{bet_on, spawn_app};

const OPEN: &[(&str, &str)] = &[("INGEST_RATE_LIMIT", "0")];
const SERVER: &str = "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca";
const CLIENT: &str = "zXv1upuFns";

fn hash(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

/// Bets as Stake would have reported them for `SERVER`/`CLIENT`.
fn honest_bets(nonces: std::ops::RangeInclusive<i64>, hashed: &str) -> Vec<Value> {
    nonces
        .map(|n| {
            let difficulty = if n % 2 == 0 { Difficulty::Expert } else { Difficulty::Medium };
            let result = verify(SERVER, CLIENT, n as u64, difficulty).result.max_multiplier;
            bet_on(hashed, CLIENT, &format!("bet-{n}"), n, result, difficulty.as_str())
        })
        .collect()
}

#[tokio::test]
async fn a_revealed_seed_verifies_every_bet_and_flags_the_altered_one() {
    let app = spawn_app(OPEN).await;
    // Upper-case hash as some bots send it: linking is case-insensitive.
    let hashed = hash(SERVER).to_uppercase();
    let mut bets = honest_bets(1..=200, &hashed);
    bets[76]["roundResult"] = json!(11200.65); // nonce 77 altered
    let response = app.ingest(&Value::Array(bets)).await;
    let id = response.json::<Value>().await.unwrap()["results"][0]["streamId"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/live/streams/{id}")).await.1["verified"], Value::Null);

    let (status, body) = app.send(reqwest::Method::POST, "/live/seeds", Some(&json!({"server_seed": SERVER}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["server_seed_hashed"], hash(SERVER));
    assert_eq!(body["streams"][0]["id"], id.as_str());

    let (_, detail) = app.get(&format!("/live/streams/{id}")).await;
    let v = &detail["verified"];
    assert_eq!(v["checked"], 200, "{v}");
    assert_eq!(v["matched"], 199);
    assert_eq!(v["mismatched"], 1);
    assert_eq!(v["first_mismatch"]["nonce"], 77);
    assert_eq!(v["first_mismatch"]["round_result"], 11200.65);

    let (_, page) = app.get(&format!("/live/streams/{id}/bets?limit=1&offset=76")).await;
    assert_eq!(page["bets"][0]["nonce"], 77);
    assert_eq!(page["bets"][0]["verified"], false);
    let (_, page) = app.get(&format!("/live/streams/{id}/bets?limit=1&offset=77")).await;
    assert_eq!(page["bets"][0]["verified"], true);

    // Bets arriving after the reveal are verified on arrival.
    let late = honest_bets(201..=210, &hashed);
    app.ingest(&Value::Array(late)).await;
    let (_, detail) = app.get(&format!("/live/streams/{id}")).await;
    assert_eq!(detail["verified"]["checked"], 210);
    assert_eq!(detail["verified"]["matched"], 209);

    // Revealing again changes nothing and says so.
    let (status, _) = app.send(reqwest::Method::POST, "/live/seeds", Some(&json!({"server_seed": SERVER}))).await;
    assert_eq!(status, 200);
    assert_eq!(app.get(&format!("/live/streams/{id}")).await.1["verified"]["checked"], 210);

    let (_, seeds) = app.get("/live/seeds").await;
    assert_eq!(seeds["seeds"][0]["server_seed"], SERVER);
    assert_eq!(seeds["seeds"][0]["streams"][0], id.as_str());
    assert!(seeds["seeds"][0]["first_seen"].is_string());
    assert!(seeds["seeds"][0]["last_seen"].is_string());
}

#[tokio::test]
async fn a_seed_revealed_before_its_stream_links_when_the_stream_appears() {
    let app = spawn_app(OPEN).await;
    let (status, body) = app.send(reqwest::Method::POST, "/live/seeds", Some(&json!({"server_seed": SERVER}))).await;
    assert_eq!(status, 201);
    assert_eq!(body["streams"], json!([]));
    let response = app.ingest(&Value::Array(honest_bets(1..=5, &hash(SERVER)))).await;
    let id = response.json::<Value>().await.unwrap()["results"][0]["streamId"].as_str().unwrap().to_string();
    let (_, detail) = app.get(&format!("/live/streams/{id}")).await;
    assert_eq!(detail["verified"]["checked"], 5);
    assert_eq!(detail["verified"]["matched"], 5);
    assert_eq!(detail["verified"]["first_mismatch"], Value::Null);
}

#[tokio::test]
async fn bad_reveals_are_refused_and_store_nothing() {
    let app = spawn_app(OPEN).await;
    for (body, status) in [
        (json!({}), 422),
        (json!({"server_seed": ""}), 422),
        (json!({"server_seed": "   "}), 422),
        (json!({"server_seed": 5}), 422),
        (json!({"server_seed": "x".repeat(300)}), 422),
        (json!(["x"]), 422),
    ] {
        let (got, response) = app.send(reqwest::Method::POST, "/live/seeds", Some(&body)).await;
        assert_eq!(got, status, "{body}: {response}");
        assert_eq!(response["error"]["field"], "server_seed");
    }
    let response = app.write(reqwest::Method::POST, "/live/seeds").await.body("{").send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(app.count("SELECT count(*) FROM revealed_seeds").await, 0);
}

/// A verification cut short (the server stopped after recording some chunks) resumes at the next
/// start. The bets it reads again include those already checked: PostgreSQL copies a chunk's
/// checks in and, when some exist, inserts the rest instead, so each bet counts once.
#[tokio::test]
async fn a_verification_resumed_on_postgresql_counts_every_bet_once() {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("SKIPPED: TEST_DATABASE_URL is needed for the PostgreSQL resume test");
        return;
    };
    let database = crate::helpers::PgDatabase::create(&admin).await;
    let url = database.url.clone();
    let first = crate::helpers::spawn_app_on(crate::helpers::TestDatabase::Shared(url.clone()), OPEN).await;
    let hashed = hash(SERVER);
    let mut bets = honest_bets(1..=300, &hashed);
    bets[9]["roundResult"] = json!(11200.65); // nonce 10 altered
    bets[249]["roundResult"] = json!(11200.65); // nonce 250 altered
    let id = first.ingest_ok(&Value::Array(bets)).await;
    let (status, body) = first.send(reqwest::Method::POST, "/live/seeds", Some(&json!({"server_seed": SERVER}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(first.get(&format!("/live/streams/{id}")).await.1["verified"]["checked"], 300);

    // As if the server had stopped after recording the checks of nonces 1..=150 only.
    let db = crate::helpers::pg_connect(&url).await;
    db.batch_execute(
        "DELETE FROM bet_checks WHERE nonce > 150;
         UPDATE streams SET verified_checked = 150, verified_matched = 149, verified_mismatched = 1",
    )
    .await
    .unwrap();
    let second = crate::helpers::spawn_app_on(crate::helpers::TestDatabase::Shared(url.clone()), OPEN).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let verified = loop {
        let (_, detail) = second.get(&format!("/live/streams/{id}")).await;
        if detail["verified"]["checked"] != 150 || std::time::Instant::now() > deadline {
            break detail["verified"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(verified["checked"], 300, "{verified}");
    assert_eq!(verified["matched"], 298, "{verified}");
    assert_eq!(verified["mismatched"], 2, "{verified}");
    assert_eq!(verified["first_mismatch"]["nonce"], 10, "{verified}");
    let row = db
        .query_one("SELECT count(*), count(*) FILTER (WHERE NOT verified), count(DISTINCT bet_id) FROM bet_checks", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (300, 2, 300));
    let (_, page) = second.get(&format!("/live/streams/{id}/bets?limit=1&offset=249")).await;
    assert_eq!(page["bets"][0]["nonce"], 250);
    assert_eq!(page["bets"][0]["verified"], false);
    drop(database);
}
