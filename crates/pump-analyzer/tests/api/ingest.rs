//! `POST /live/ingest`: the contract of SPEC §3.1 through real HTTP.

use serde_json::{Value, json};

use crate::helpers::{bet, heartbeat, spawn_app};

#[tokio::test]
async fn a_valid_bet_is_stored_and_answered_with_its_stream() {
    let app = spawn_app(&[]).await;
    let response = app.ingest(&bet("b1", 7)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], true);
    let stream_id = body["streamId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(stream_id).is_ok());
    let row = app
        .row("SELECT s.id, b.nonce, b.round_result, b.difficulty FROM bets b JOIN streams s ON s.pk = b.stream_pk")
        .await;
    let row: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap()).collect();
    assert_eq!(row, [stream_id, "7", "1.63", "expert"]);
}

#[tokio::test]
async fn the_same_bet_twice_is_accepted_once_and_changes_nothing() {
    let app = spawn_app(&[]).await;
    let first: Value = app.ingest(&bet("dup", 3)).await.json().await.unwrap();
    let mut changed = bet("dup", 3);
    changed["amount"] = json!(99.0);
    let second: Value = app.ingest(&changed).await.json().await.unwrap();
    assert_eq!(first["accepted"], true);
    assert_eq!(second["accepted"], false);
    assert_eq!(first["streamId"], second["streamId"]);
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 1);
    assert_eq!(app.count("SELECT CAST(amount AS INTEGER) FROM bets").await, 1);
    assert_eq!(app.count("SELECT total_bets FROM streams").await, 1);
}

#[tokio::test]
async fn bets_are_grouped_into_one_stream_per_seed_pair() {
    let app = spawn_app(&[]).await;
    let mut ids = Vec::new();
    for (i, (server, client)) in [("h1", "c1"), ("h1", "c1"), ("h1", "c2"), ("h2", "c1")].iter().enumerate() {
        let mut b = bet(&format!("b{i}"), i as i64 + 1);
        b["serverSeedHashed"] = json!(server);
        b["clientSeed"] = json!(client);
        let body: Value = app.ingest(&b).await.json().await.unwrap();
        ids.push(body["streamId"].as_str().unwrap().to_string());
    }
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_ne!(ids[0], ids[3]);
    assert_eq!(app.count("SELECT count(*) FROM streams").await, 3);
}

/// (body, status, fields that the message must name)
fn bad_single_bets() -> Vec<(Value, u16, Vec<&'static str>)> {
    let mut cases = Vec::new();
    let mut missing_nonce = bet("x", 1);
    missing_nonce.as_object_mut().unwrap().remove("nonce");
    cases.push((missing_nonce, 422, vec!["nonce"]));
    let mut zero_nonce = bet("x", 1);
    zero_nonce["nonce"] = json!(0);
    cases.push((zero_nonce, 422, vec!["nonce"]));
    let mut several = bet("x", 1);
    several["amount"] = json!(-1);
    several["difficulty"] = json!("insane");
    several["clientSeed"] = json!("");
    cases.push((several, 422, vec!["amount", "difficulty", "clientSeed"]));
    let mut no_multiplier = bet("x", 1);
    no_multiplier.as_object_mut().unwrap().remove("roundResult");
    cases.push((no_multiplier, 422, vec!["roundResult"]));
    let mut long_id = bet("x", 1);
    long_id["id"] = json!("i".repeat(129));
    cases.push((long_id, 422, vec!["id"]));
    let mut bad_target = bet("x", 1);
    bad_target["roundTarget"] = json!(0);
    cases.push((bad_target, 422, vec!["roundTarget"]));
    let mut string_number = bet("x", 1);
    string_number["payout"] = json!("Infinity");
    cases.push((string_number, 422, vec!["payout"]));
    cases.push((json!("just a string"), 422, vec!["body"]));
    cases.push((json!({"bets": "nope"}), 422, vec!["bets"]));
    cases
}

#[tokio::test]
async fn invalid_bets_get_422_naming_every_offending_field_and_store_nothing() {
    let app = spawn_app(&[]).await;
    for (body, status, fields) in bad_single_bets() {
        let response = app.ingest(&body).await;
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "VALIDATION_ERROR");
        let message = error["error"]["message"].as_str().unwrap();
        assert_eq!(error["detail"], message);
        for field in fields {
            assert!(message.contains(field), "{message} should name {field}");
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM streams").await, 0);
}

#[tokio::test]
async fn bodies_that_are_not_json_get_400_and_oversized_ones_413() {
    let app = spawn_app(&[]).await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "Invalid JSON"),
        (b"".to_vec(), 400, "empty"),
        (vec![0xff, 0xfe, 0x00], 400, "UTF-8"),
        (format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(), 400, "Invalid JSON"),
        (vec![b' '; 1024 * 1024 + 1], 413, "1 MiB"),
    ];
    for (raw, status, fragment) in cases {
        let response = app.client.post(app.url("/live/ingest")).body(raw).send().await.unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let error: Value = response.json().await.unwrap();
        assert!(error["detail"].as_str().unwrap().contains(fragment), "{error}");
    }
}

#[tokio::test]
async fn json_is_read_whatever_the_content_type() {
    let app = spawn_app(&[]).await;
    for (i, content_type) in ["text/plain", "application/x-www-form-urlencoded", "application/json"].iter().enumerate()
    {
        let response = app
            .client
            .post(app.url("/live/ingest"))
            .header("content-type", *content_type)
            .body(bet(&format!("ct{i}"), i as i64 + 1).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{content_type}");
    }
    let response = app.client.post(app.url("/live/ingest")).body(bet("none", 9).to_string()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 4);
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_payout_multiplier_is_the_fallback() {
    let app = spawn_app(&[]).await;
    let mut old_script = bet("old", 4);
    old_script.as_object_mut().unwrap().remove("roundResult");
    old_script["payoutMultiplier"] = json!(3.2);
    old_script["somethingNew"] = json!({"nested": [1, 2]});
    assert_eq!(app.ingest(&old_script).await.status(), 200);
    let row = app.row("SELECT round_result, payout_multiplier FROM bets").await;
    assert_eq!(row, [Some("3.2".to_string()), Some("3.2".to_string())]);
}

#[tokio::test]
async fn date_times_are_stored_in_utc_and_unreadable_ones_as_null() {
    let app = spawn_app(&[]).await;
    let cases: Vec<(Value, Option<&str>)> = vec![
        (json!("2026-11-23T12:00:00Z"), Some("2026-11-23T12:00:00+00:00")),
        (json!("2026-11-23T12:00:00+00:00"), Some("2026-11-23T12:00:00+00:00")),
        (json!("2026-11-23T12:00:00-05:00"), Some("2026-11-23T17:00:00+00:00")),
        (json!("2026-11-23T12:00:00"), Some("2026-11-23T12:00:00+00:00")),
        (json!("garbage"), None),
        (Value::Null, None),
    ];
    for (i, (raw, expected)) in cases.iter().enumerate() {
        let mut b = bet(&format!("dt{i}"), i as i64 + 1);
        b["dateTime"] = raw.clone();
        let response = app.ingest(&b).await;
        assert_eq!(response.status(), 200, "{raw}");
        let row = app.row(&format!("SELECT date_time FROM bets WHERE antebot_bet_id = 'dt{i}'")).await;
        let stored = row[0]
            .as_deref()
            .map(|micros| chrono::DateTime::from_timestamp_micros(micros.parse().unwrap()).unwrap().to_rfc3339());
        assert_eq!(stored.as_deref(), *expected, "{raw}");
    }
}

#[tokio::test]
async fn a_batch_stores_valid_items_and_reports_each_one() {
    let app = spawn_app(&[]).await;
    app.ingest(&bet("seen", 1)).await;
    let mut invalid = bet("bad", 2);
    invalid["nonce"] = json!(-1);
    let body = json!({"bets": [bet("new-1", 3), invalid, bet("seen", 1), heartbeat(4, 1.0), bet("new-2", 5)]});
    let response = app.ingest(&body).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["accepted"], 3);
    assert_eq!(report["duplicates"], 1);
    assert_eq!(report["rejected"], 1);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
    }
    assert_eq!(results[0]["accepted"], true);
    assert!(results[1]["error"].as_str().unwrap().contains("nonce"));
    assert_eq!(results[2]["accepted"], false);
    assert_eq!(results[3]["heartbeat"], true);
    assert_eq!(results[4]["accepted"], true);
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 3);
    // A bare array works as well.
    let report: Value = app.ingest(&json!([bet("arr", 6)])).await.json().await.unwrap();
    assert_eq!(report["accepted"], 1);
}

#[tokio::test]
async fn batches_over_1000_items_are_refused_whole() {
    let app = spawn_app(&[]).await;
    let items: Vec<Value> = (1..=1001).map(|n| bet(&format!("b{n}"), n)).collect();
    let response = app.ingest(&json!(items)).await;
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "bets");
    assert!(error["detail"].as_str().unwrap().contains("at most 1000"));
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 0);
    let items: Vec<Value> = (1..=1000).map(|n| bet(&format!("b{n}"), n)).collect();
    let report: Value = app.ingest(&json!(items)).await.json().await.unwrap();
    assert_eq!(report["accepted"], 1000);
}

#[tokio::test]
async fn heartbeats_record_rounds_idempotently_and_advance_the_observed_nonce() {
    let app = spawn_app(&[]).await;
    let response = app.ingest(&heartbeat(10, 1.02)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], true);
    assert_eq!(body["heartbeat"], true);
    assert!(body["streamId"].is_string());
    let again: Value = app.ingest(&heartbeat(10, 1.02)).await.json().await.unwrap();
    assert_eq!(again["accepted"], false);
    assert_eq!(again["streamId"], body["streamId"]);
    app.ingest(&heartbeat(12, 3.0)).await;
    app.ingest(&bet("b", 11)).await;
    assert_eq!(app.count("SELECT rounds_count FROM streams").await, 3);
    assert_eq!(app.count("SELECT last_observed_nonce FROM streams").await, 12);
    assert_eq!(app.count("SELECT total_bets FROM streams").await, 1);
    // A late round does not move the observed nonce backwards.
    app.ingest(&heartbeat(5, 1.0)).await;
    assert_eq!(app.count("SELECT last_observed_nonce FROM streams").await, 12);
}

#[tokio::test]
async fn heartbeats_do_not_need_bet_fields_but_do_need_round_fields() {
    let app = spawn_app(&[]).await;
    let response = app.ingest(&json!({"type": "heartbeat", "nonce": 1, "clientSeed": "c"})).await;
    assert_eq!(response.status(), 422);
    let message = response.json::<Value>().await.unwrap()["detail"].as_str().unwrap().to_string();
    assert!(message.contains("serverSeedHashed") && message.contains("roundResult"), "{message}");
    assert!(!message.contains("amount"), "{message}");
}

#[tokio::test]
async fn rounds_beyond_the_retention_drop_the_oldest_first() {
    let app = spawn_app(&[("ROUNDS_RETENTION", "100")]).await;
    let beats: Vec<Value> = (1..=150).map(|n| heartbeat(n, 1.0)).collect();
    app.ingest(&json!(beats[..120].to_vec())).await;
    for beat in &beats[120..] {
        app.ingest(beat).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM rounds").await, 100);
    assert_eq!(app.count("SELECT min(nonce) FROM rounds").await, 51);
    assert_eq!(app.count("SELECT max(nonce) FROM rounds").await, 150);
    assert_eq!(app.count("SELECT rounds_count FROM streams").await, 100);
}

#[tokio::test]
async fn fifty_simultaneous_posts_of_one_new_bet_accept_it_once_in_one_stream() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "0")]).await;
    let mut b = bet("race", 1);
    b["serverSeedHashed"] = json!("brand-new-pair");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/live/ingest");
            let body = b.clone();
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    let mut streams = std::collections::HashSet::new();
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        if body["accepted"] == true {
            accepted += 1;
        }
        streams.insert(body["streamId"].as_str().unwrap().to_string());
    }
    assert_eq!(accepted, 1);
    assert_eq!(streams.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM streams").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 1);
}

#[tokio::test]
async fn two_hundred_simultaneous_distinct_bets_are_all_stored() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "0")]).await;
    let tasks: Vec<_> = (1..=200)
        .map(|n| {
            let client = app.client.clone();
            let url = app.url("/live/ingest");
            let body = bet(&format!("bet-{n}"), n);
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
        })
        .collect();
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["accepted"], true);
    }
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 200);
    assert_eq!(app.count("SELECT total_bets FROM streams").await, 200);
    assert_eq!(app.count("SELECT last_observed_nonce FROM streams").await, 200);
}

/// Large batches may be written by different writers at once (on PostgreSQL each instance runs
/// one per lane): batches that share streams and bets, sent together, still store each bet once
/// and count it once.
#[tokio::test]
async fn simultaneous_batches_sharing_streams_store_and_count_each_bet_once() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "0")]).await;
    let stream_bets = |s: usize| -> Vec<Value> {
        (1..=40)
            .map(|n| {
                let mut b = bet(&format!("b-{s}-{n}"), n);
                b["serverSeedHashed"] = json!(format!("shared-{s}"));
                b["roundResult"] = json!(if n % 10 == 0 { 9.08 } else { 1.63 });
                b
            })
            .collect()
    };
    // Batch k: every bet of stream k, then every bet of stream k + 1; each bet is in two batches.
    let tasks: Vec<_> = (0..8)
        .map(|k| {
            let body = Value::Array([stream_bets(k), stream_bets((k + 1) % 8)].concat());
            let (client, url) = (app.client.clone(), app.url("/live/ingest"));
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
        })
        .collect();
    let (mut accepted, mut duplicates) = (0, 0);
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["rejected"], 0, "{body}");
        accepted += body["accepted"].as_i64().unwrap();
        duplicates += body["duplicates"].as_i64().unwrap();
    }
    assert_eq!((accepted, duplicates), (320, 320));
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 320);
    let (_, list) = app.get("/live/streams?limit=100").await;
    let streams = list["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 8, "{list}");
    for stream in streams {
        assert_eq!(stream["total_bets"], 40, "{stream}");
        assert_eq!(stream["last_observed_nonce"], 40, "{stream}");
        assert_eq!(stream["highest_multiplier"], 9.08, "{stream}");
        let (_, detail) = app.get(&format!("/live/streams/{}", stream["id"].as_str().unwrap())).await;
        assert_eq!(detail["difficulty_breakdown"]["expert"], 40, "{detail}");
        let (_, rounds) = app.get(&format!("/live/streams/{}/rounds", stream["id"].as_str().unwrap())).await;
        assert_eq!(rounds["rounds"].as_array().unwrap().len(), 40, "{rounds}");
    }
}

#[tokio::test]
async fn health_reports_ok() {
    let app = spawn_app(&[]).await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let missing = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["code"], "NOT_FOUND");
}

/// A stream's rounds are its heartbeats and its bets, once per nonce (the first message to bring
/// a nonce records it), and the retention drops the oldest of them whichever kind they are.
#[tokio::test]
async fn bets_and_heartbeats_are_one_sequence_of_rounds_under_one_retention() {
    let app = spawn_app(&[("ROUNDS_RETENTION", "6"), ("INGEST_RATE_LIMIT", "0")]).await;
    let on = |n: i64, result: f64| {
        let mut b = bet(&format!("b{n}"), n);
        b["roundResult"] = json!(result);
        b
    };
    let beat = heartbeat;
    let first = json!([beat(1, 1.5), on(2, 2.0), beat(3, 1.1), on(3, 9.0), beat(2, 5.0), on(4, 500.0), on(4, 500.0)]);
    let report: Value = app.ingest(&first).await.json().await.unwrap();
    let accepted: Vec<bool> = report["results"].as_array().unwrap().iter().map(|r| r["accepted"] == true).collect();
    // The bet at nonce 3 is stored (a new bet id) though its round was already recorded; the
    // heartbeat at nonce 2 and the repeated bet id are not.
    assert_eq!(accepted, [true, true, true, true, false, true, false]);
    let stream = report["results"][0]["streamId"].as_str().unwrap().to_string();
    let rounds = |body: &Value| -> Vec<(i64, f64)> {
        body["rounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["nonce"].as_i64().unwrap(), r["round_result"].as_f64().unwrap()))
            .collect()
    };
    let (status, body) = app.get(&format!("/live/streams/{stream}/rounds")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rounds(&body), [(1, 1.5), (2, 2.0), (3, 1.1), (4, 500.0)]);
    assert_eq!(app.get(&format!("/live/streams/{stream}")).await.1["rounds_count"], 4);

    // Second bets at a nonce (new ids) are stored; the round stays the first one's.
    let second = |id: &str, n: i64, result: f64| {
        let mut b = on(n, result);
        b["id"] = json!(id);
        b
    };
    for message in
        [beat(5, 1.0), on(6, 1066.73), second("x6", 6, 1.0), beat(7, 1.0), on(8, 2.0), second("x8", 8, 9000.0)]
    {
        assert_eq!(app.ingest(&message).await.status(), 200);
    }
    let expected = [(3, 1.1), (4, 500.0), (5, 1.0), (6, 1066.73), (7, 1.0), (8, 2.0)];
    assert_eq!(rounds(&app.get(&format!("/live/streams/{stream}/rounds")).await.1), expected);
    let since = app.get(&format!("/live/streams/{stream}/rounds?since_nonce=0&limit=2")).await.1;
    assert_eq!(rounds(&since), expected[..2]);
    let since = app.get(&format!("/live/streams/{stream}/rounds?since_nonce=5&limit=2")).await.1;
    assert_eq!(rounds(&since), expected[3..5]);
    assert_eq!(rounds(&app.get(&format!("/live/streams/{stream}/rounds?limit=2")).await.1), expected[4..]);
    assert_eq!(app.get(&format!("/live/streams/{stream}")).await.1["rounds_count"], 6);

    // A late bet in the dropped range is stored as a bet but is not a round any more.
    assert_eq!(app.ingest(&on(1, 3200.18)).await.json::<Value>().await.unwrap()["accepted"], true);
    assert_eq!(rounds(&app.get(&format!("/live/streams/{stream}/rounds")).await.1), expected);
    let (status, cadence) = app.get(&format!("/live/streams/{stream}/cadence?tiers=400.02,1066.73,3200.18")).await;
    assert_eq!(status, 200, "{cadence}");
    assert_eq!(cadence["rounds_observed"], 6);
    let tier = |t: f64| cadence["tiers"].as_array().unwrap().iter().find(|x| x["tier"] == t).unwrap().clone();
    assert_eq!(tier(400.02)["hits"], 2);
    assert_eq!(tier(400.02)["last_hit_nonce"], 6);
    assert_eq!(tier(1066.73)["hits"], 1);
    assert_eq!(tier(3200.18)["hits"], 0);
    assert_eq!(tier(1066.73)["current_streak"], 2);
}

/// A body sent in chunks, with no length announced, is cut off at 1 MiB all the same.
#[tokio::test]
async fn a_chunked_body_over_one_mebibyte_gets_413() {
    let app = crate::helpers::spawn_app(&[]).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..20).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = app.client.post(app.url("/live/ingest")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(answer["error"]["message"].as_str().unwrap().contains("1 MiB"), "{answer}");
}
