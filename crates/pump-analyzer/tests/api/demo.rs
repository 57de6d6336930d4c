//! The demo stream (SPEC §7 "First run") through real HTTP: created on a fresh seed pair, fed
//! live at its pace through the ingest path, marked `demo`, adjustable, stoppable, revealed with
//! every bet verified, deleted like any other stream.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_demo_stream_is_fed_at_its_pace_marked_stopped_revealed_and_deleted() {
    let app = spawn_app(&[]).await;
    let (status, demo) = app.send(Method::POST, "/live/demo", Some(&json!({"rate": 40}))).await;
    assert_eq!(status, 201, "{demo}");
    let id = demo["stream_id"].as_str().unwrap().to_string();
    assert_eq!(demo["rate"], 40);
    assert_eq!(demo["running"], true);
    assert!(demo.get("server_seed").is_none(), "the seed stays hidden until the reveal");

    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (_, stream) = app.get(&format!("/live/streams/{id}")).await;
    assert_eq!(stream["demo"], true, "{stream}");
    let nonce = stream["last_observed_nonce"].as_i64().unwrap();
    assert!((40..=120).contains(&nonce), "about 40 rounds a second for 2 s, got {nonce}");
    assert_eq!(stream["rounds_count"].as_i64().unwrap(), nonce, "a round for every nonce");
    let (_, list) = app.get("/live/streams").await;
    assert_eq!(list["streams"][0]["demo"], true);

    // A faster pace, then a stop: the nonce stops advancing.
    let (status, faster) = app.send(Method::PUT, &format!("/live/demo/{id}"), Some(&json!({"rate": 200}))).await;
    assert_eq!((status, faster["rate"].as_i64()), (200, Some(200)));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (status, stopped) = app.send(Method::DELETE, &format!("/live/demo/{id}"), None).await;
    assert_eq!((status, stopped["running"].as_bool()), (200, Some(false)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, before) = app.get(&format!("/live/streams/{id}")).await;
    let reached = before["last_observed_nonce"].as_i64().unwrap();
    assert!(reached >= nonce + 150, "the faster pace moved it on: {nonce} → {reached}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, after) = app.get(&format!("/live/streams/{id}")).await;
    assert_eq!(after["last_observed_nonce"].as_i64().unwrap(), reached, "stopped");

    // The reveal verifies every recorded bet.
    let (status, revealed) = app.send(Method::POST, &format!("/live/demo/{id}/reveal"), None).await;
    assert_eq!(status, 201, "{revealed}");
    assert_eq!(revealed["server_seed_hashed"], demo["server_seed_hashed"]);
    let (_, verified) = app.get(&format!("/live/streams/{id}")).await;
    let v = &verified["verified"];
    assert_eq!(v["checked"], verified["total_bets"], "{verified}");
    assert_eq!(v["mismatched"], 0);
    assert_eq!(v["pending"], 0);

    let (status, deleted) = app.send(Method::DELETE, &format!("/live/streams/{id}"), None).await;
    assert_eq!((status, deleted["deleted"].as_bool()), (200, Some(true)));
    let (status, _) = app.send(Method::PUT, &format!("/live/demo/{id}"), Some(&json!({"rate": 5}))).await;
    assert_eq!(status, 404, "a deleted stream's demo is gone");
}

#[tokio::test]
async fn demo_requests_with_bad_fields_get_422_naming_them() {
    let app = spawn_app(&[]).await;
    for body in [json!({"rate": 0}), json!({"rate": 1001}), json!({"rate": "fast"}), json!({"rate": 2.5}), json!([1])] {
        let (status, answer) = app.send(Method::POST, "/live/demo", Some(&body)).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().is_some());
    }
    let (status, _) = app.send(Method::PUT, "/live/demo/not-a-uuid", Some(&json!({"rate": 5}))).await;
    assert_eq!(status, 422);
    assert_eq!(app.count("SELECT count(*) FROM streams").await, 0, "nothing was created");
    let (status, demo) = app.send(Method::POST, "/live/demo", None).await;
    assert_eq!((status, demo["rate"].as_i64()), (201, Some(10)), "no body: the default pace");
}
