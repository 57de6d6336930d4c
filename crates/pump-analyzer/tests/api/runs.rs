//! Runs (SPEC §4.5) over real HTTP.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

const SERVER: &str = "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca";
const CLIENT: &str = "zXv1upuFns";

fn vector_run() -> Value {
    json!({"server_seed": SERVER, "client_seed": CLIENT, "start": 1, "end": 50000,
           "difficulty": "expert", "targets": [11200.65, 400.02, 11200.65]})
}

#[tokio::test]
async fn a_run_finds_the_vector_hits_and_is_stored_with_its_summary() {
    let app = spawn_app(&[]).await;
    let (status, run) = app.send(reqwest::Method::POST, "/runs", Some(&vector_run())).await;
    assert_eq!(status, 201, "{run}");
    for field in [
        "id",
        "created_at",
        "server_seed_sha256",
        "server_seed",
        "client_seed",
        "nonce_start",
        "nonce_end",
        "difficulty",
        "targets",
        "duration_ms",
        "engine_version",
        "summary",
    ] {
        assert!(run.get(field).is_some(), "run lacks {field}");
    }
    assert_eq!(run["targets"], json!([400.02, 11200.65]), "deduplicated and sorted");
    assert_eq!(run["nonce_start"], 1);
    assert_eq!(run["nonce_end"], 50000);
    assert_eq!(run["server_seed_sha256"].as_str().unwrap().len(), 64);
    // SPEC §4.5: the summary describes the whole scanned range, as the original engine's does.
    let summary = &run["summary"];
    assert_eq!(summary["counts_by_target"]["11200.65"], 6);
    assert_eq!(summary["counts_by_target"]["400.02"], 73);
    assert_eq!(summary["count"], 50000);
    assert_eq!(summary["max_multiplier"], 48536.13);
    assert_eq!(summary["median_multiplier"], 1.63);
    assert_eq!(
        summary["top_max"],
        json!([{"nonce": 45241, "max_pumps": 13, "max_multiplier": 48536.13, "pop_point": 14}]),
        "the first nonces at the range's maximum, whatever the targets"
    );

    let id = run["id"].as_str().unwrap();
    let (status, same) = app.get(&format!("/runs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(same["summary"], run["summary"]);

    let (_, hits) = app.get(&format!("/runs/{id}/hits?min_multiplier=11200&limit=10")).await;
    let nonces: Vec<i64> = hits["hits"].as_array().unwrap().iter().map(|h| h["nonce"].as_i64().unwrap()).collect();
    assert_eq!(nonces, vec![5663, 9030, 20962, 35134, 41372, 44319]);
    assert_eq!(hits["total"], 6);
    assert_eq!(hits["hits"][0], json!({"nonce": 5663, "max_pumps": 12, "max_multiplier": 11200.65, "pop_point": 13}));
    let (_, page) = app.get(&format!("/runs/{id}/hits?min_multiplier=11200&limit=2&offset=4")).await;
    assert_eq!(page["hits"][0]["nonce"], 41372);

    let text =
        app.client.get(app.url(&format!("/runs/{id}/export/hits.csv"))).send().await.unwrap().text().await.unwrap();
    assert_eq!(text.lines().next(), Some("nonce,max_pumps,max_multiplier,pop_point"));
    assert_eq!(text.lines().count(), 6 + 73 + 1, "a header and every hit");
    assert!(text.contains("\n5663,12,11200.65,13\n"));

    let (_, list) = app.get("/runs?search=zXv1&difficulty=expert").await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["runs"][0]["id"], id);
    let (_, list) = app.get("/runs?difficulty=easy").await;
    assert_eq!(list["total"], 0);
    let (_, list) = app.get("/runs?search=nothing-like-this").await;
    assert_eq!(list["total"], 0);

    let (status, body) = app.send(reqwest::Method::DELETE, &format!("/runs/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.get(&format!("/runs/{id}")).await.0, 404);
    assert_eq!(app.count("SELECT count(*) FROM run_hits").await, 0);
}

#[tokio::test]
async fn the_full_export_recomputes_every_nonce() {
    let app = spawn_app(&[]).await;
    let body = json!({"server_seed": SERVER, "client_seed": CLIENT, "start": 5660, "end": 5665,
                      "difficulty": "expert", "targets": [11200.65]});
    let (_, run) = app.send(reqwest::Method::POST, "/runs", Some(&body)).await;
    let id = run["id"].as_str().unwrap();
    let response = app.client.get(app.url(&format!("/runs/{id}/export/full.csv"))).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0], "nonce,max_pumps,max_multiplier,pop_point");
    assert_eq!(lines[4], "5663,12,11200.65,13");
}

#[tokio::test]
async fn bad_runs_get_422_naming_the_field_and_large_ranges_413() {
    let app = spawn_app(&[("MAX_NONCES", "1000")]).await;
    let with = |field: &str, value: Value| {
        let mut body = vector_run();
        body["end"] = json!(100);
        body[field] = value;
        body
    };
    let cases = [
        (with("end", json!(0)), "end"),
        (
            {
                let mut b = with("start", json!(50));
                b["end"] = json!(10);
                b
            },
            "end",
        ),
        (with("server_seed", json!(" ")), "server_seed"),
        (with("client_seed", json!("")), "client_seed"),
        (with("difficulty", json!("insane")), "difficulty"),
        (with("targets", json!([])), "targets"),
        (with("targets", json!(["abc"])), "targets"),
        (with("start", json!(0)), "start"),
        (with("start", json!(-5)), "start"),
        (with("start", json!("1e3")), "start"),
    ];
    for (body, field) in cases {
        let (status, response) = app.send(reqwest::Method::POST, "/runs", Some(&body)).await;
        assert_eq!(status, 422, "{body}: {response}");
        let fields: Vec<&str> =
            response["error"]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{body}: {response}");
    }
    let (status, response) = app.send(reqwest::Method::POST, "/runs", Some(&with("end", json!(1001)))).await;
    assert_eq!(status, 413, "{response}");
    assert!(response["error"]["message"].as_str().unwrap().contains("MAX_NONCES"));
    let (status, _) = app.send(reqwest::Method::POST, "/runs", Some(&with("end", json!(1000)))).await;
    assert_eq!(status, 201);
    assert_eq!(app.count("SELECT count(*) FROM runs").await, 1);

    for path in ["/runs/not-a-uuid", "/runs/not-a-uuid/hits"] {
        assert_eq!(app.get(path).await.0, 422, "{path}");
    }
    let unknown = "6f1c2d3e-0000-4000-8000-000000000000";
    for path in ["", "/hits", "/export/hits.csv", "/export/full.csv", "/progress"] {
        assert_eq!(app.get(&format!("/runs/{unknown}{path}")).await.0, 404, "{path}");
    }
    assert_eq!(app.get("/runs?limit=0").await.0, 400);
    assert_eq!(app.get("/runs?difficulty=insane").await.0, 400);
}

#[tokio::test]
async fn a_long_run_reports_progress_and_can_be_cancelled() {
    let app = spawn_app(&[]).await;
    let id = "0b0e7c5e-1111-4222-8333-444455556666";
    let body = json!({"id": id, "server_seed": SERVER, "client_seed": CLIENT, "start": 1, "end": 100_000_000,
                      "difficulty": "expert", "targets": [3203384.8]});
    let request = app.write(reqwest::Method::POST, "/runs").await.json(&body);
    let running = tokio::spawn(async move { request.send().await.unwrap() });

    let mut seen_progress = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (status, progress) = app.get(&format!("/runs/{id}/progress")).await;
        if status == 200 && progress["done"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(progress["status"], "running");
            assert_eq!(progress["total"], 100_000_000u64);
            seen_progress = true;
            break;
        }
    }
    assert!(seen_progress, "progress was never reported");
    let (_, active) = app.get("/runs/active").await;
    assert_eq!(active["runs"][0]["id"], id);
    let (status, _) = app.send(reqwest::Method::POST, &format!("/runs/{id}/cancel"), None).await;
    assert_eq!(status, 202);
    let response = running.await.unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("cancelled"));
    assert_eq!(app.count("SELECT count(*) FROM runs").await, 0);
    assert_eq!(app.get(&format!("/runs/{id}/progress")).await.0, 404);
}
