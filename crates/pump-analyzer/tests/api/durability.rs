//! "Acknowledged means durable" (SPEC §3.1): kill -9 the real server in the middle of a load and
//! check that every bet that got `accepted: true` is in the database after a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{bet, spawn_binary};

/// Loads a running server from 8 connections, kills it with SIGKILL mid-load, and returns the ids
/// it acknowledged. Half the connections send single bets, the others batches of 100 or 300.
/// By default every group is answered once its COMMIT has written it to the log, and the syncer
/// thread syncs the log after it; with `SQLITE_SYNC=full`, groups of 256 bets or more leave their
/// sync to the syncer, which answers them once it has returned, and the others sync in COMMIT.
async fn load_then_kill(server: &mut crate::helpers::BinaryServer, cycle: usize) -> Vec<String> {
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut workers = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        let url = server.url("/live/ingest");
        let acked = acked.clone();
        workers.push(tokio::spawn(async move {
            let batch = [1, 100, 1, 300][worker % 4];
            for n in 0.. {
                let ids: Vec<String> = (1..=batch).map(|i| format!("c{cycle}-w{worker}-{}", n * batch + i)).collect();
                let bets: Vec<Value> = ids.iter().zip(n * batch + 1..).map(|(id, nonce)| bet(id, nonce)).collect();
                let body = if batch == 1 { bets[0].clone() } else { Value::from(bets) };
                let Ok(response) = client.post(&url).json(&body).send().await else { break };
                let Ok(answer) = response.json::<Value>().await else { break };
                let accepted: Vec<bool> = match answer["results"].as_array() {
                    Some(results) => results.iter().map(|r| r["accepted"] == true).collect(),
                    None => vec![answer["accepted"] == true],
                };
                let mut acked = acked.lock().unwrap();
                acked.extend(ids.into_iter().zip(accepted).filter(|(_, ok)| *ok).map(|(id, _)| id));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    server.kill9();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "the load should have been acknowledged many times, got {}", acked.len());
    let deferred = metrics.lines().find_map(|l| l.strip_prefix("pump_store_deferred_syncs_total "));
    assert!(deferred.is_some_and(|n| n != "0"), "the batches of 300 were synced apart: {deferred:?}");
    let syncs = metrics.lines().find_map(|l| l.strip_prefix("pump_store_log_syncs_total "));
    assert!(syncs.is_some_and(|n| n != "0"), "the syncer synced the log: {syncs:?}");
    acked
}

#[tokio::test]
async fn every_acknowledged_bet_survives_kill_9_during_a_load() {
    kill_9_cycles(&[("INGEST_RATE_LIMIT", "0")]).await;
}

#[tokio::test]
async fn every_acknowledged_bet_survives_kill_9_with_full_sync_too() {
    kill_9_cycles(&[("INGEST_RATE_LIMIT", "0"), ("SQLITE_SYNC", "full")]).await;
}

async fn kill_9_cycles(vars: &[(&str, &str)]) {
    const CYCLES: usize = 3;
    let mut server = spawn_binary(vars, None);
    let mut acked = Vec::new();
    for cycle in 0..CYCLES {
        acked.extend(load_then_kill(&mut server, cycle).await);
        // Restart on the same database for the next cycle (and the final check).
        let dir = std::mem::replace(&mut server.dir, crate::helpers::TempDir::new());
        server = spawn_binary(vars, Some(dir));
    }

    // The database opens cleanly and holds every bet acknowledged in every cycle.
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let db = rusqlite::Connection::open(server.dir.path().join("pump.db")).unwrap();
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let mut stmt = db.prepare("SELECT antebot_bet_id FROM bets").unwrap();
    let stored: std::collections::HashSet<String> =
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged bets lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    println!("{CYCLES} kill -9 cycles: {} acknowledged bets, 0 lost", acked.len());
}

/// A full disk: ingest answers 503 with a message (never 500), and what was acknowledged before
/// is all still served.
#[tokio::test]
async fn a_full_disk_answers_503_and_keeps_what_was_acknowledged() {
    let dir = crate::helpers::TempDir::new();
    let mut vars = std::collections::HashMap::new();
    vars.insert("API_PORT".to_string(), "0".to_string());
    vars.insert("INGEST_RATE_LIMIT".to_string(), "0".to_string());
    vars.insert("DATABASE_URL".to_string(), format!("sqlite://{}", dir.path().join("full.db").display()));
    let settings = pump_analyzer::config::Settings::from_vars(&vars, &Default::default()).unwrap();
    let app = pump_analyzer::Application::build_with_database_limit(settings, Some(300)).await.unwrap();
    let url = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let mut acknowledged = 0;
    let mut refusal = None;
    for n in 1..=5000 {
        let response =
            client.post(format!("{url}/live/ingest")).json(&bet(&format!("full-{n}"), n)).send().await.unwrap();
        match response.status().as_u16() {
            200 => acknowledged += 1,
            status => {
                refusal = Some((status, response.json::<Value>().await.unwrap()));
                break;
            }
        }
    }
    let (status, body) = refusal.expect("the capped database filled up");
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unavailable"), "{body}");
    assert!(acknowledged > 10);
    let streams: Value = client.get(format!("{url}/live/streams")).send().await.unwrap().json().await.unwrap();
    assert_eq!(streams["streams"][0]["total_bets"], acknowledged, "every acknowledged bet is still there");
}
