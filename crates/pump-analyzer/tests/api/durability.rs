//! "Acknowledged means durable" (SPEC §3.1): kill -9 the real server in the middle of a load and
//! check that every bet that got `accepted: true` is in the database after a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{bet, spawn_binary};

/// Loads a running server from 8 connections, kills it with SIGKILL mid-load, and returns the ids
/// it acknowledged.
async fn load_then_kill(server: &mut crate::helpers::BinaryServer, cycle: usize) -> Vec<String> {
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut workers = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        let url = server.url("/live/ingest");
        let acked = acked.clone();
        workers.push(tokio::spawn(async move {
            for n in 1.. {
                let id = format!("c{cycle}-w{worker}-{n}");
                let Ok(response) = client.post(&url).json(&bet(&id, n)).send().await else { break };
                let Ok(body) = response.json::<Value>().await else { break };
                if body["accepted"] == true {
                    acked.lock().unwrap().push(id);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "the load should have been acknowledged many times, got {}", acked.len());
    acked
}

#[tokio::test]
async fn every_acknowledged_bet_survives_kill_9_during_a_load() {
    const CYCLES: usize = 3;
    let mut server = spawn_binary(&[("INGEST_RATE_LIMIT", "0")], None);
    let mut acked = Vec::new();
    for cycle in 0..CYCLES {
        acked.extend(load_then_kill(&mut server, cycle).await);
        // Restart on the same database for the next cycle (and the final check).
        let dir = std::mem::replace(&mut server.dir, crate::helpers::TempDir::new());
        server = spawn_binary(&[("INGEST_RATE_LIMIT", "0")], Some(dir));
    }

    // The database opens cleanly and holds every bet acknowledged in every cycle.
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let db = rusqlite::Connection::open(server.dir.path().join("pump.db")).unwrap();
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let mut stmt = db.prepare("SELECT 1 FROM bets WHERE antebot_bet_id = ?1").unwrap();
    let missing: Vec<&String> = acked.iter().filter(|id| !stmt.exists([id.as_str()]).unwrap()).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged bets lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    println!("{CYCLES} kill -9 cycles: {} acknowledged bets, 0 lost", acked.len());
}
