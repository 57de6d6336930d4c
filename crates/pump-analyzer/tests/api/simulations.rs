//! The strategy simulator over HTTP (SPEC §9.4), on both storage backends.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const GOLDEN_SERVER: &str = "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca";

/// Polls until the simulation has ended; its final answer.
async fn finished(app: &TestApp, id: &str) -> Value {
    for _ in 0..300 {
        let (status, answer) = app.get(&format!("/simulations/{id}")).await;
        assert_eq!(status, 200, "{answer}");
        if answer["status"] != "running" {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("simulation {id} did not finish");
}

#[tokio::test]
async fn a_simulation_runs_off_the_runtime_and_its_result_is_stored() {
    let app = spawn_app(&[]).await;
    let script = "game = 'pump'; difficulty = 'expert'; rounds = 12; betSize = 1;\n\
                  engine.onBetPlaced(async (bet) => { if (bet.win) log('won', bet.nonce); });";
    let body = json!({"script": script, "server_seed": GOLDEN_SERVER, "client_seed": "zXv1upuFns",
                      "max_bets": 50000, "balance": 100000});
    let (status, started) = app.send(Method::POST, "/simulations", Some(&body)).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "running");
    let id = started["id"].as_str().unwrap().to_string();
    let done = finished(&app, &id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["progress"], json!({"bets": 50000, "of": 50000}));
    let result = &done["result"];
    assert_eq!(result["stop"], json!({"reason": "max_bets", "nonce": 50000}));
    assert_eq!(result["stats"]["wins"], 7);
    assert_eq!(result["logs"][6]["text"], "won 45241");
    assert_eq!(result["seed"]["start_nonce"], 1);
    assert!(result["expected_profit"].as_f64().unwrap() < 0.0);
    let (_, list) = app.get("/simulations").await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["simulations"][0]["id"], id.as_str());
    assert_eq!(app.count("SELECT count(*) FROM simulations WHERE status = 'done'").await, 1);

    let (status, deleted) = app.send(Method::DELETE, &format!("/simulations/{id}"), None).await;
    assert_eq!((status, deleted["deleted"].as_bool()), (200, Some(true)));
    assert_eq!(app.get(&format!("/simulations/{id}")).await.0, 404);
}

#[tokio::test]
async fn an_endless_script_is_cancelled_or_stopped_by_the_time_limit_while_others_are_served() {
    let app = spawn_app(&[("SIM_TIME_LIMIT", "2")]).await;
    let endless = json!({"script": "game = 'pump'; engine.onBetPlaced(() => { for (;;) {} });"});
    let (_, first) = app.send(Method::POST, "/simulations", Some(&endless)).await;
    let (_, second) = app.send(Method::POST, "/simulations", Some(&endless)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get("/healthz").await.0, 200, "the server answers while scripts spin");
    let second_id = second["id"].as_str().unwrap();
    let (status, cancelled) = app.send(Method::DELETE, &format!("/simulations/{second_id}"), None).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")));
    let done = finished(&app, second_id).await;
    assert_eq!(done["status"], "cancelled");
    let timed_out = finished(&app, first["id"].as_str().unwrap()).await;
    assert_eq!(timed_out["result"]["stop"]["reason"], "time_limit", "{timed_out}");
    assert_eq!(timed_out["result"]["stop"]["nonce"], 1);
}

#[tokio::test]
async fn bad_simulation_requests_get_422_naming_the_field_or_line() {
    let app = spawn_app(&[("MAX_NONCES", "1000")]).await;
    let cases = [
        (json!({}), "script"),
        (json!({"script": 5}), "script"),
        (json!({"script": "game = 'pump';\nlet = ;"}), "script"),
        (json!({"script": "x", "max_bets": 0}), "max_bets"),
        (json!({"script": "x", "max_bets": 1001}), "max_bets"),
        (json!({"script": "x", "balance": -1}), "balance"),
        (json!({"script": "x", "runs": 0}), "runs"),
        (json!({"script": "x", "runs": 3, "server_seed": "s"}), "runs"),
        (json!({"script": "x", "start_nonce": "one"}), "start_nonce"),
        (json!({"script": "x", "server_seed": ""}), "server_seed"),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.send(Method::POST, "/simulations", Some(&body)).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let (_, answer) = app.send(Method::POST, "/simulations", Some(&json!({"script": "game = 'pump';\nlet = ;"}))).await;
    assert!(answer["error"]["message"].as_str().unwrap().contains("line 2"), "{answer}");
    assert_eq!(app.count("SELECT count(*) FROM simulations").await, 0, "nothing stored");
    assert_eq!(app.get("/simulations/not-an-id").await.0, 422);
    assert_eq!(app.get("/simulations/6f1c2d3e-0000-4000-8000-000000000000").await.0, 404);
}

#[tokio::test]
async fn a_monte_carlo_reports_the_distribution_of_final_profits() {
    let app = spawn_app(&[]).await;
    let body = json!({"script": "game = 'pump'; difficulty = 'expert'; rounds = 10; betSize = 1;",
                      "runs": 12, "max_bets": 300, "balance": 50});
    let (status, started) = app.send(Method::POST, "/simulations", Some(&body)).await;
    assert_eq!(status, 202);
    let done = finished(&app, started["id"].as_str().unwrap()).await;
    let result = &done["result"];
    assert_eq!(result["runs"].as_array().unwrap().len(), 12);
    for key in ["mean", "p5", "p25", "p50", "p75", "p95"] {
        assert!(result["distribution"]["profit"][key].is_number(), "{key}");
    }
    assert!(result["distribution"]["p_bust"].as_f64().unwrap() > 0.5);
}

/// The README's two scripts through HTTP: the live feed sends nothing in a simulation, the
/// martingale stops at its stop-loss.
#[tokio::test]
async fn the_readme_scripts_run_through_http() {
    let app = spawn_app(&[]).await;
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let blocks: Vec<&str> = readme.split("```js\n").skip(1).filter_map(|b| b.split("```").next()).collect();
    assert_eq!(blocks.len(), 2);
    let mut answers = Vec::new();
    for (script, max_bets) in [(blocks[0], 5000), (blocks[1], 100_000)] {
        let body =
            json!({"script": script, "server_seed": GOLDEN_SERVER, "client_seed": "zXv1upuFns", "max_bets": max_bets});
        let (status, started) = app.send(Method::POST, "/simulations", Some(&body)).await;
        assert_eq!(status, 202, "{started}");
        answers.push(finished(&app, started["id"].as_str().unwrap()).await);
    }
    assert_eq!(answers[0]["result"]["stop"]["reason"], "max_bets");
    assert_eq!(answers[0]["result"]["fetch_calls"], 0);
    assert_eq!(answers[1]["result"]["stop"]["reason"], "stopped", "{}", answers[1]["result"]["stop"]);
    assert!(answers[1]["result"]["stats"]["profit"].as_f64().unwrap() <= -5.0);
}
