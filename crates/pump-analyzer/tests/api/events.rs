//! Server-Sent Events over real HTTP: live delivery, resume without gaps, the global feed.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{SseReader, bet_on, spawn_app};

const OPEN: &[(&str, &str)] = &[("INGEST_RATE_LIMIT", "0")];
const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_connected_client_receives_bets_and_rounds_and_resumes_without_gaps() {
    let app = spawn_app(OPEN).await;
    let id = app.ingest_ok(&bet_on("h", "c", "b1", 1, 1.63, "expert")).await;

    let response = app.client.get(app.url(&format!("/live/streams/{id}/events"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = SseReader::new(response);

    app.ingest_ok(&bet_on("h", "c", "b2", 2, 400.02, "expert")).await;
    let bet = events.next_named("bet", WAIT).await.expect("a bet event");
    // On PostgreSQL the round of b1 may still be on its way from the other connection when this
    // client connects: the round of b2 is the one to find.
    let round = loop {
        let round = events.next_named("round", WAIT).await.expect("a round event");
        let round: Value = serde_json::from_str(&round.data).unwrap();
        if round["nonce"] != 1 {
            break round;
        }
    };
    assert_eq!(round["nonce"], 2);
    let record: Value = serde_json::from_str(&bet.data).unwrap();
    assert_eq!(record["antebot_bet_id"], "b2");
    assert_eq!(record["round_result"], 400.02);
    assert_eq!(record["distance_prev"], Value::Null);
    assert_eq!(bet.id.as_deref(), Some(record["id"].to_string().as_str()));
    let seen = record["id"].as_i64().unwrap();
    drop(events);

    // While disconnected: three more bets on this stream and one on another.
    for n in 3..=5 {
        app.ingest_ok(&bet_on("h", "c", &format!("b{n}"), n, 1.63, "expert")).await;
    }
    app.ingest_ok(&bet_on("other", "c", "x", 1, 1.63, "expert")).await;

    let response = app
        .client
        .get(app.url(&format!("/live/streams/{id}/events")))
        .header("Last-Event-ID", seen.to_string())
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(response);
    let mut missed = Vec::new();
    for _ in 0..3 {
        let e = events.next_named("bet", WAIT).await.expect("a missed bet");
        let record: Value = serde_json::from_str(&e.data).unwrap();
        missed.push(record["antebot_bet_id"].as_str().unwrap().to_string());
    }
    assert_eq!(missed, vec!["b3", "b4", "b5"]);
    // Then live again, with no duplicate of the replayed ones.
    app.ingest_ok(&bet_on("h", "c", "b6", 6, 1.63, "expert")).await;
    let e = events.next_named("bet", WAIT).await.expect("the live bet");
    let record: Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(record["antebot_bet_id"], "b6");
    assert_eq!(record["distance_prev"], 1);
}

#[tokio::test]
async fn the_global_feed_announces_a_new_pair_once_and_every_bet() {
    let app = spawn_app(OPEN).await;
    let response = app.client.get(app.url("/live/events")).send().await.unwrap();
    let mut events = SseReader::new(response);
    for n in 1..=3 {
        app.ingest_ok(&bet_on("new-hash", "new-client", &format!("n{n}"), n, 1.63, "expert")).await;
    }
    let mut streams = 0;
    let mut bets = 0;
    while let Some(e) = events.next(Duration::from_millis(800)).await {
        match e.event.as_str() {
            "stream" => {
                streams += 1;
                let s: Value = serde_json::from_str(&e.data).unwrap();
                assert_eq!(s["client_seed"], "new-client");
            }
            "bet" => {
                bets += 1;
                let b: Value = serde_json::from_str(&e.data).unwrap();
                assert!(b["stream_id"].is_string());
            }
            _ => {}
        }
    }
    assert_eq!(streams, 1);
    assert_eq!(bets, 3);
}

/// The dashboard's shared connection asks the global feed for every stream's rounds as well.
#[tokio::test]
async fn the_global_feed_carries_every_streams_rounds_on_request() {
    let app = spawn_app(OPEN).await;
    let (status, body) = app.get("/live/events?rounds=maybe").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "rounds");
    let plain = SseReader::new(app.client.get(app.url("/live/events")).send().await.unwrap());
    let mut with_rounds = SseReader::new(app.client.get(app.url("/live/events?rounds=1")).send().await.unwrap());
    for (n, pair) in [(1, "a"), (2, "b")] {
        let heartbeat = serde_json::json!({"type": "heartbeat", "nonce": n, "roundResult": 2.5,
            "clientSeed": format!("client-{pair}"), "serverSeedHashed": format!("hash-{pair}")});
        app.ingest_ok(&heartbeat).await;
    }
    let mut rounds = Vec::new();
    while let Some(e) = with_rounds.next(Duration::from_millis(800)).await {
        if e.event == "round" {
            let r: Value = serde_json::from_str(&e.data).unwrap();
            assert!(r["stream_id"].is_string());
            rounds.push(r["nonce"].as_i64().unwrap());
        }
    }
    assert_eq!(rounds, vec![1, 2], "rounds of both streams");
    let mut plain = plain;
    while let Some(e) = plain.next(Duration::from_millis(300)).await {
        assert_ne!(e.event, "round", "rounds only on request");
    }
}

#[tokio::test]
async fn subscribers_of_a_deleted_stream_are_told() {
    let app = spawn_app(OPEN).await;
    let id = app.ingest_ok(&bet_on("h", "c", "b1", 1, 1.63, "expert")).await;
    let response = app.client.get(app.url(&format!("/live/streams/{id}/events"))).send().await.unwrap();
    let mut events = SseReader::new(response);
    // Let the subscription settle before deleting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.send(reqwest::Method::DELETE, &format!("/live/streams/{id}"), None).await;
    let e = events.next_named("deleted", WAIT).await.expect("a deleted event");
    let data: Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(data["stream_id"], id.as_str());
    assert!(events.next(Duration::from_secs(1)).await.is_none(), "the stream ends after the deletion");
}

#[tokio::test]
async fn a_stalled_client_does_not_slow_ingest() {
    let app = spawn_app(OPEN).await;
    let id = app.ingest_ok(&bet_on("h", "c", "b0", 1, 1.63, "expert")).await;
    // Connected but never read.
    let _stalled = app.client.get(app.url(&format!("/live/streams/{id}/events"))).send().await.unwrap();
    let started = std::time::Instant::now();
    for chunk in 0..20 {
        let items: Vec<Value> =
            (0..250).map(|i| bet_on("h", "c", &format!("s{chunk}-{i}"), chunk * 250 + i + 2, 1.63, "expert")).collect();
        let response = app.ingest(&Value::Array(items)).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 5001);
    // Generous bound: only catches ingest blocking on the stalled client.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

#[tokio::test]
async fn an_idle_stream_gets_keep_alive_comments_well_within_15_seconds() {
    use futures_util::StreamExt;
    let app = spawn_app(OPEN).await;
    let response = app.client.get(app.url("/live/events")).send().await.unwrap();
    let mut body = response.bytes_stream();
    let started = std::time::Instant::now();
    let mut text = String::new();
    while started.elapsed() < Duration::from_secs(14) {
        match tokio::time::timeout(Duration::from_secs(14), body.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
        if text.contains(": keep-alive") {
            break;
        }
    }
    assert!(text.contains(": keep-alive"), "no keep-alive comment after {:?}: {text:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(14));
}
