//! The Live Streams read side (SPEC §3.2) over real HTTP.

use serde_json::{Value, json};

use crate::helpers::{TestApp, bet_on, spawn_app};

const OPEN: &[(&str, &str)] = &[("INGEST_RATE_LIMIT", "0")];

/// One stream fed with bets at the given (nonce, multiplier) pairs, in the given order.
async fn stream_with(app: &TestApp, bets: &[(i64, f64)]) -> String {
    let items: Vec<Value> =
        bets.iter().map(|&(n, m)| bet_on("hash-a", "client-a", &format!("bet-{n}"), n, m, "expert")).collect();
    let response = app.ingest(&Value::Array(items)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["results"][0]["streamId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn list_is_newest_first_with_the_summary_fields_and_paging() {
    let app = spawn_app(OPEN).await;
    let first = app.ingest_ok(&bet_on("hash-1", "c1", "a", 1, 2.8, "expert")).await;
    let second = app.ingest_ok(&bet_on("hash-2", "c2", "b", 5, 400.02, "expert")).await;
    let (status, body) = app.get("/live/streams").await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 2);
    assert_eq!(body["limit"], 50);
    assert_eq!(body["offset"], 0);
    let streams = body["streams"].as_array().unwrap();
    assert_eq!(streams[0]["id"], second.as_str());
    assert_eq!(streams[1]["id"], first.as_str());
    let s = &streams[0];
    for field in [
        "id",
        "server_seed_hashed",
        "client_seed",
        "created_at",
        "last_seen_at",
        "total_bets",
        "highest_multiplier",
        "last_observed_nonce",
        "notes",
        "verified",
    ] {
        assert!(s.get(field).is_some(), "summary lacks {field}: {s}");
    }
    assert_eq!(s["server_seed_hashed"], "hash-2");
    assert_eq!(s["client_seed"], "c2");
    assert_eq!(s["total_bets"], 1);
    assert_eq!(s["highest_multiplier"], 400.02);
    assert_eq!(s["last_observed_nonce"], 5);
    assert_eq!(s["verified"], Value::Null);

    let (_, page) = app.get("/live/streams?limit=1&offset=1").await;
    assert_eq!(page["streams"].as_array().unwrap().len(), 1);
    assert_eq!(page["streams"][0]["id"], first.as_str());
}

#[tokio::test]
async fn out_of_range_parameters_are_400_naming_the_parameter() {
    let app = spawn_app(OPEN).await;
    let id = app.ingest_ok(&bet_on("h", "c", "a", 1, 2.8, "expert")).await;
    let cases = [
        ("/live/streams?limit=0".to_string(), "limit"),
        ("/live/streams?limit=101".to_string(), "limit"),
        ("/live/streams?limit=abc".to_string(), "limit"),
        ("/live/streams?offset=-1".to_string(), "offset"),
        (format!("/live/streams/{id}/bets?limit=0"), "limit"),
        (format!("/live/streams/{id}/bets?limit=1001"), "limit"),
        (format!("/live/streams/{id}/bets?min_multiplier=-1"), "min_multiplier"),
        (format!("/live/streams/{id}/bets?min_multiplier=NaN"), "min_multiplier"),
        (format!("/live/streams/{id}/bets?order=random"), "order"),
        (format!("/live/streams/{id}/tail?since_id=-1"), "since_id"),
        (format!("/live/streams/{id}/tail?limit=5001"), "limit"),
        (format!("/live/streams/{id}/rounds?limit=10001"), "limit"),
        (format!("/live/streams/{id}/cadence?tiers=abc"), "tiers"),
        (format!("/live/streams/{id}/cadence?k=0"), "k"),
    ];
    for (path, field) in cases {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field), "{path}: {body}");
        assert_eq!(body["detail"], body["error"]["message"]);
    }
}

#[tokio::test]
async fn unknown_ids_are_404_and_malformed_ones_422() {
    let app = spawn_app(OPEN).await;
    let unknown = "6f1c2d3e-0000-4000-8000-000000000000";
    for suffix in ["", "/bets", "/tail", "/rounds", "/cadence", "/metrics", "/export.csv", "/events"] {
        let (status, body) = app.get(&format!("/live/streams/{unknown}{suffix}")).await;
        assert_eq!(status, 404, "{suffix}: {body}");
        assert_eq!(body["error"]["code"], "NOT_FOUND");
        let (status, body) = app.get(&format!("/live/streams/not-a-uuid{suffix}")).await;
        assert_eq!(status, 422, "{suffix}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("UUID"));
    }
    let (status, _) = app.send(reqwest::Method::DELETE, &format!("/live/streams/{unknown}"), None).await;
    assert_eq!(status, 404);
    let (status, _) =
        app.send(reqwest::Method::PUT, &format!("/live/streams/{unknown}"), Some(&json!({"notes": "x"}))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn detail_has_aggregates_breakdown_and_recent_bets() {
    let app = spawn_app(OPEN).await;
    let mut items = Vec::new();
    for n in 1..=12 {
        let difficulty = if n % 3 == 0 { "hard" } else { "expert" };
        items.push(bet_on("hash-d", "client-d", &format!("b{n}"), n, n as f64, difficulty));
    }
    app.ingest(&Value::Array(items)).await;
    let (_, list) = app.get("/live/streams").await;
    let id = list["streams"][0]["id"].as_str().unwrap().to_string();
    let (status, d) = app.get(&format!("/live/streams/{id}")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["total_bets"], 12);
    assert_eq!(d["lowest_multiplier"], 1.0);
    assert_eq!(d["highest_multiplier"], 12.0);
    assert_eq!(d["average_multiplier"], 6.5);
    assert_eq!(d["total_amount"], 24.0);
    assert_eq!(d["total_payout"], 2.0 * 78.0);
    assert_eq!(d["difficulty_breakdown"], json!({"expert": 8, "hard": 4}));
    // The current difficulty is the one of the newest bet (b12).
    assert_eq!(d["difficulty"], "hard");
    let (_, hard) = app.get(&format!("/live/streams/{id}/bets?difficulty=hard")).await;
    assert_eq!(hard["total"], 4);
    let (_, hard_big) = app.get(&format!("/live/streams/{id}/bets?difficulty=hard&min_multiplier=6")).await;
    assert_eq!(hard_big["total"], 3);
    let nonces: Vec<i64> = hard_big["bets"].as_array().unwrap().iter().map(|b| b["nonce"].as_i64().unwrap()).collect();
    assert_eq!(nonces, vec![6, 9, 12]);
    let recent: Vec<i64> = d["recent_bets"].as_array().unwrap().iter().map(|b| b["nonce"].as_i64().unwrap()).collect();
    assert_eq!(recent, (3..=12).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn bets_carry_full_records_and_distance_prev_over_the_whole_stream() {
    let app = spawn_app(OPEN).await;
    // 400.02 at nonces 10, 25, 70; 2.8 at 12, 30; sent out of nonce order.
    let id = stream_with(&app, &[(70, 400.02), (10, 400.02), (30, 2.8), (12, 2.8), (25, 400.02)]).await;
    let (status, page) = app.get(&format!("/live/streams/{id}/bets")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 5);
    assert_eq!(page["limit"], 100);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["stream_id"], id.as_str());
    let bets = page["bets"].as_array().unwrap();
    let nonces: Vec<i64> = bets.iter().map(|b| b["nonce"].as_i64().unwrap()).collect();
    assert_eq!(nonces, vec![10, 12, 25, 30, 70]);
    let distances: Vec<Value> = bets.iter().map(|b| b["distance_prev"].clone()).collect();
    assert_eq!(distances, vec![Value::Null, Value::Null, json!(15), json!(18), json!(45)]);
    for field in [
        "id",
        "antebot_bet_id",
        "received_at",
        "date_time",
        "nonce",
        "amount",
        "payout",
        "payout_multiplier",
        "difficulty",
        "round_target",
        "round_result",
        "distance_prev",
    ] {
        assert!(bets[0].get(field).is_some(), "bet lacks {field}");
    }

    // The filter and the page do not change distances: they are against the whole stream.
    let (_, filtered) = app.get(&format!("/live/streams/{id}/bets?min_multiplier=100&limit=1&offset=2")).await;
    assert_eq!(filtered["total"], 3);
    assert_eq!(filtered["bets"][0]["nonce"], 70);
    assert_eq!(filtered["bets"][0]["distance_prev"], 45);

    // id_desc: arrival order, newest first.
    let (_, by_id) = app.get(&format!("/live/streams/{id}/bets?order=id_desc")).await;
    let nonces: Vec<i64> = by_id["bets"].as_array().unwrap().iter().map(|b| b["nonce"].as_i64().unwrap()).collect();
    assert_eq!(nonces, vec![25, 12, 30, 10, 70]);
    let ids: Vec<i64> = by_id["bets"].as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
}

#[tokio::test]
async fn tail_pages_in_id_order_with_a_truthful_has_more() {
    let app = spawn_app(OPEN).await;
    let pairs: Vec<(i64, f64)> = (1..=7).map(|n| (n, 1.63)).collect();
    let id = stream_with(&app, &pairs).await;
    let (_, first) = app.get(&format!("/live/streams/{id}/tail?limit=3")).await;
    assert_eq!(first["bets"].as_array().unwrap().len(), 3);
    assert_eq!(first["has_more"], true);
    let mut since = first["last_id"].as_i64().unwrap();
    let (_, second) = app.get(&format!("/live/streams/{id}/tail?since_id={since}&limit=4")).await;
    assert_eq!(second["bets"].as_array().unwrap().len(), 4);
    assert_eq!(second["has_more"], false, "exactly the remaining rows: no more wait");
    since = second["last_id"].as_i64().unwrap();
    let (_, empty) = app.get(&format!("/live/streams/{id}/tail?since_id={since}")).await;
    assert_eq!(empty["bets"], json!([]));
    assert_eq!(empty["has_more"], false);
    assert_eq!(empty["last_id"], since);
}

#[tokio::test]
async fn notes_are_trimmed_bounded_and_cleared() {
    let app = spawn_app(OPEN).await;
    let id = app.ingest_ok(&bet_on("h", "c", "a", 1, 2.8, "expert")).await;
    let path = format!("/live/streams/{id}");
    let (status, body) = app.send(reqwest::Method::PUT, &path, Some(&json!({"notes": "  chasing 11200  "}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["notes"], "chasing 11200");
    let (status, body) = app.send(reqwest::Method::PUT, &path, Some(&json!({"notes": "x".repeat(1001)}))).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "notes");
    assert_eq!(app.get(&path).await.1["notes"], "chasing 11200", "a refused update changes nothing");
    let (status, _) = app.send(reqwest::Method::PUT, &path, Some(&json!({"notes": "x".repeat(1000)}))).await;
    assert_eq!(status, 200);
    let (_, body) = app.send(reqwest::Method::PUT, &path, Some(&json!({"notes": "   "}))).await;
    assert_eq!(body["notes"], Value::Null);
    app.send(reqwest::Method::PUT, &path, Some(&json!({"notes": "again"}))).await;
    let (_, body) = app.send(reqwest::Method::PUT, &path, Some(&json!({"notes": null}))).await;
    assert_eq!(body["notes"], Value::Null);
    let (status, _) = app.send(reqwest::Method::PUT, &path, Some(&json!({"notes": 5}))).await;
    assert_eq!(status, 422);
    let response = app.write(reqwest::Method::PUT, &path).await.body("not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn delete_removes_the_stream_and_reports_its_bets() {
    let app = spawn_app(OPEN).await;
    let id = stream_with(&app, &[(1, 1.63), (2, 2.8), (3, 4.95)]).await;
    let other = app.ingest_ok(&bet_on("other", "c", "z", 1, 1.0, "easy")).await;
    let (status, body) = app.send(reqwest::Method::DELETE, &format!("/live/streams/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"deleted": true, "stream_id": id, "bets_deleted": 3}));
    assert_eq!(app.get(&format!("/live/streams/{id}")).await.0, 404);
    assert_eq!(app.get(&format!("/live/streams/{other}")).await.0, 200);
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM rounds WHERE stream_pk NOT IN (SELECT pk FROM streams)").await, 0);
    assert_eq!(
        app.get(&format!("/live/streams/{other}/rounds")).await.1["rounds"],
        json!([{"nonce": 1, "round_result": 1.0}])
    );
    // The same seed pair later starts a fresh stream.
    let again = stream_with(&app, &[(4, 1.63)]).await;
    assert_ne!(again, id);
    assert_eq!(app.get(&format!("/live/streams/{again}")).await.1["total_bets"], 1);
}

#[tokio::test]
async fn export_is_streamed_csv_in_nonce_order_with_a_safe_name() {
    let app = spawn_app(OPEN).await;
    let mut items = Vec::new();
    for n in (1..=100).rev() {
        items.push(bet_on("hash-x", "evil\"; filename=../../x\r\n", &format!("b{n}"), n, 1.63, "expert"));
    }
    app.ingest(&Value::Array(items)).await;
    let (_, list) = app.get("/live/streams").await;
    let id = list["streams"][0]["id"].as_str().unwrap().to_string();
    let response = app.client.get(app.url(&format!("/live/streams/{id}/export.csv"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment; filename=\""), "{disposition}");
    let name = disposition.trim_start_matches("attachment; filename=\"").trim_end_matches('"');
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{name}");
    assert!(name.ends_with(".csv"));
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 101);
    assert!(lines[0].starts_with("id,antebot_bet_id,"));
    let nonce_column = lines[0].split(',').position(|c| c == "nonce").unwrap();
    let nonces: Vec<i64> =
        lines[1..].iter().map(|l| l.split(',').nth(nonce_column).unwrap().parse().unwrap()).collect();
    assert_eq!(nonces, (1..=100).collect::<Vec<_>>());
    let distance_column = lines[0].split(',').position(|c| c == "distance_prev").unwrap();
    assert_eq!(lines[2].split(',').nth(distance_column), Some("1"));
}

#[tokio::test]
async fn rounds_and_cadence_follow_heartbeats_between_hits() {
    let app = spawn_app(OPEN).await;
    // Heartbeats 1..=5000; tier hits (≥ 1066.73) at 1000, 2100, 3150 (one of them bigger), 400.02 at 4000.
    let hits = [(1000, 1066.73), (2100, 3200.18), (3150, 1066.73), (4000, 400.02)];
    let mut id = String::new();
    for chunk_start in (1..=5000).step_by(1000) {
        let items: Vec<Value> = (chunk_start..chunk_start + 1000)
            .map(|n: i64| {
                let result = hits.iter().find(|h| h.0 == n).map_or(1.63, |h| h.1);
                json!({"type": "heartbeat", "nonce": n, "roundResult": result,
                       "clientSeed": "cad", "serverSeedHashed": "cad-hash"})
            })
            .collect();
        let response = app.ingest(&Value::Array(items)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["accepted"], 1000);
        id = body["results"][0]["streamId"].as_str().unwrap().to_string();
    }
    let (_, rounds) = app.get(&format!("/live/streams/{id}/rounds?limit=10")).await;
    let nonces: Vec<i64> = rounds["rounds"].as_array().unwrap().iter().map(|r| r["nonce"].as_i64().unwrap()).collect();
    assert_eq!(nonces, (4991..=5000).collect::<Vec<_>>());
    let (_, since) = app.get(&format!("/live/streams/{id}/rounds?since_nonce=3998&limit=3")).await;
    assert_eq!(
        since["rounds"],
        json!([
            {"nonce": 3999, "round_result": 1.63}, {"nonce": 4000, "round_result": 400.02}, {"nonce": 4001, "round_result": 1.63}
        ])
    );

    let (status, cadence) = app.get(&format!("/live/streams/{id}/cadence?tiers=1066.73,400.02&k=10&band=400")).await;
    assert_eq!(status, 200, "{cadence}");
    assert_eq!(cadence["difficulty"], "expert");
    let tiers = cadence["tiers"].as_array().unwrap();
    let t = tiers.iter().find(|t| t["tier"] == 1066.73).unwrap();
    assert_eq!(t["hits"], 3);
    assert_eq!(t["last_hit_nonce"], 3150);
    assert_eq!(t["current_streak"], 1850);
    let expected = 3_268_760.0 / 3003.0;
    assert!((t["expected_gap"].as_f64().unwrap() - expected).abs() < 1e-6);
    assert!((t["expected_gap"].as_f64().unwrap() - 1088.5).abs() < 0.05);
    assert!((t["delta_to_expected"].as_f64().unwrap() - (expected - 1850.0)).abs() < 1e-6);
    let gaps: Vec<(i64, i64)> = t["last_gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["gap"].as_i64().unwrap(), g["nonce"].as_i64().unwrap()))
        .collect();
    assert_eq!(gaps, vec![(1100, 2100), (1050, 3150)]);
    assert!((t["last_gaps"][0]["deviation"].as_f64().unwrap() - (1100.0 - expected)).abs() < 1e-6);
    assert_eq!(t["within_band"], 2);
    assert_eq!(t["mean_gap"], 1075.0);
    assert_eq!(t["median_gap"], 1075.0);
    // The last 1,000 rounds (4001..=5000) hold no hit of this tier.
    assert_eq!(t["hit_rate_last_1000"], 0.0);
    let t400 = tiers.iter().find(|t| t["tier"] == 400.02).unwrap();
    assert_eq!(t400["hits"], 4);
    assert_eq!(t400["current_streak"], 1000);

    // More heartbeats: the streak keeps growing in a dry stretch.
    app.ingest(&json!({"type": "heartbeat", "nonce": 5400, "roundResult": 1.0, "clientSeed": "cad", "serverSeedHashed": "cad-hash"}))
        .await;
    let (_, cadence) = app.get(&format!("/live/streams/{id}/cadence?tiers=1066.73")).await;
    assert_eq!(cadence["tiers"][0]["current_streak"], 2250);

    let (status, metrics) = app.get(&format!("/live/streams/{id}/metrics?multipliers=1066.73")).await;
    assert_eq!(status, 200, "{metrics}");
    let m = &metrics["multipliers"][0];
    assert_eq!(m["count"], 2, "exact multiplier only: {m}");
    assert_eq!(m["last_nonce"], 3150);
    assert_eq!(m["max_gap"], 2150);
    let p_exact = (3003.0 - 1001.0) / 3_268_760.0;
    assert!((m["theoretical_mean_gap"].as_f64().unwrap() - 1.0 / p_exact).abs() < 1e-6, "{m}");
}
