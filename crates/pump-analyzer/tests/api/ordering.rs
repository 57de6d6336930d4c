//! PostgreSQL ingest runs transactions side by side (several per instance, several instances),
//! so bet ids commit out of order. Bets are shown, live and on resume, only once every lower id
//! is final: these tests hold a transaction with a low id open while a higher one commits.
//! They need `TEST_DATABASE_URL`; without it each says SKIPPED and passes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{PgDatabase, SseReader, TestApp, TestDatabase, bet, pg_connect, spawn_app_on};

fn postgres() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok();
    if url.is_none() {
        eprintln!("SKIPPED: TEST_DATABASE_URL is needed for the PostgreSQL ordering tests");
    }
    url
}

async fn sse(app: &TestApp, path: &str, last_event_id: Option<i64>) -> SseReader {
    let mut request = app.client.get(app.url(path));
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    SseReader::new(response)
}

/// The next `bet` event's record.
async fn next_bet(events: &mut SseReader, within: Duration) -> Option<Value> {
    let event = events.next_named("bet", within).await?;
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(event.id.as_deref(), Some(data["id"].to_string().as_str()), "the SSE id is the bet id");
    Some(data)
}

#[tokio::test]
async fn a_bet_is_shown_only_after_every_lower_id_is_final() {
    let Some(admin) = postgres() else { return };
    let database = PgDatabase::create(&admin).await;
    let app = spawn_app_on(TestDatabase::Shared(database.url.clone()), &[]).await;
    let first: Value = app.ingest(&bet("first", 1)).await.json().await.unwrap();
    let stream = first["streamId"].as_str().unwrap().to_string();
    let first_id = app.count("SELECT max(id) FROM bets").await;
    let mut per_stream = sse(&app, &format!("/live/streams/{stream}/events"), Some(first_id)).await;
    let mut global = sse(&app, "/live/events", Some(first_id)).await;

    // A transaction that draws a bet id the way ingest does (marked, its transaction id taken
    // first) and notes it, but does not commit yet.
    let slow = pg_connect(&database.url).await;
    slow.batch_execute("BEGIN; SET LOCAL application_name = 'pump-analyzer ingest'; SELECT pg_current_xact_id()")
        .await
        .unwrap();
    let row = slow
        .query_one(
            "INSERT INTO bets (stream_pk, antebot_bet_id, received_at, nonce, amount, payout, payout_multiplier,
                               difficulty, round_result, mult_cents)
             SELECT pk, 'slow', 0, 2, 1, 0, 0, 'easy', 1.5, 150 FROM streams RETURNING id",
            &[],
        )
        .await
        .unwrap();
    let slow_id: i64 = row.get(0);
    slow.execute("SELECT pg_notify('pump_events', $1)", &[&json!({"t": "bets"}).to_string()]).await.unwrap();

    // A higher id commits meanwhile: it is not shown while the lower one may still appear.
    let fast: Value = app.ingest(&bet("fast", 3)).await.json().await.unwrap();
    assert_eq!(fast["accepted"], true, "{fast}");
    let fast_id = app.count("SELECT max(id) FROM bets").await;
    assert!(fast_id > slow_id, "{fast_id} > {slow_id}");
    let tail_url = app.url(&format!("/live/streams/{stream}/tail?since_id={first_id}"));
    let tail = tokio::spawn({
        let client = app.client.clone();
        async move { client.get(tail_url).send().await.unwrap().json::<Value>().await.unwrap() }
    });
    assert!(next_bet(&mut per_stream, Duration::from_millis(700)).await.is_none(), "held back");
    assert!(next_bet(&mut global, Duration::from_millis(100)).await.is_none(), "held back");
    assert!(!tail.is_finished(), "the tail waits for the open transaction");

    slow.batch_execute("COMMIT").await.unwrap();
    for events in [&mut per_stream, &mut global] {
        let one = next_bet(events, Duration::from_secs(5)).await.expect("the lower id");
        let two = next_bet(events, Duration::from_secs(5)).await.expect("the higher id");
        assert_eq!((one["id"].as_i64(), two["id"].as_i64()), (Some(slow_id), Some(fast_id)));
        assert_eq!((one["antebot_bet_id"].as_str(), two["antebot_bet_id"].as_str()), (Some("slow"), Some("fast")));
    }
    let tail = tail.await.unwrap();
    let ids: Vec<i64> = tail["bets"].as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![slow_id, fast_id], "{tail}");

    // Resuming from the first bet replays both, lower id first.
    let mut resumed = sse(&app, "/live/events", Some(first_id)).await;
    let one = next_bet(&mut resumed, Duration::from_secs(5)).await.unwrap();
    let two = next_bet(&mut resumed, Duration::from_secs(5)).await.unwrap();
    assert_eq!((one["id"].as_i64(), two["id"].as_i64()), (Some(slow_id), Some(fast_id)));
}

#[tokio::test]
async fn two_instances_ingesting_at_once_deliver_every_bet_once_in_id_order() {
    let Some(admin) = postgres() else { return };
    let database = PgDatabase::create(&admin).await;
    let vars = [("INGEST_RATE_LIMIT", "0")];
    let a = spawn_app_on(TestDatabase::Shared(database.url.clone()), &vars).await;
    let b = spawn_app_on(TestDatabase::Shared(database.url.clone()), &vars).await;
    let mut watchers = vec![sse(&a, "/live/events", None).await, sse(&b, "/live/events", None).await];

    // 16 posters, half on each instance, each on a seed pair of its own plus one shared pair.
    let posters: Vec<_> = (0..16)
        .map(|p| {
            let app = if p % 2 == 0 { a.url("/live/ingest") } else { b.url("/live/ingest") };
            let client = a.client.clone();
            tokio::spawn(async move {
                for n in 0..40 {
                    let seed = if n % 4 == 0 { "shared".to_string() } else { format!("pair-{p}") };
                    let body = json!({"id": format!("{p}-{n}"), "nonce": p * 1000 + n + 1, "amount": 1.0, "payout": 0.0,
                        "difficulty": "easy", "clientSeed": "c", "serverSeedHashed": seed, "roundResult": 1.5});
                    let response = client.post(&app).json(&body).send().await.unwrap();
                    let status = response.status();
                    assert_eq!(status, 200, "{}", response.text().await.unwrap());
                }
            })
        })
        .collect();
    for poster in posters {
        poster.await.unwrap();
    }
    let stored: BTreeSet<i64> = {
        let client = pg_connect(&database.url).await;
        client.query("SELECT id FROM bets", &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
    };
    assert_eq!(stored.len(), 640);
    for events in &mut watchers {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.len() < stored.len() && Instant::now() < deadline {
            match next_bet(events, Duration::from_secs(5)).await {
                Some(bet) => seen.push(bet["id"].as_i64().unwrap()),
                None => break,
            }
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "ids arrive in increasing order");
        assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), stored, "every stored bet, once");
    }
}
