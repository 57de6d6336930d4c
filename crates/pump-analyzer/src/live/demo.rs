//! The demo stream (SPEC §7 "First run"): for a user without a bot running, a fresh random seed
//! pair whose rounds the engine derives and feeds live, at a set pace, through the same store
//! ingest a bot's requests go through (heartbeat every round, the full bet at or above the usual
//! threshold), so tier cards, tape, cadence and verification all show the real thing. The stream
//! is marked `demo` so it is never mistaken for real data. Its server seed stays in memory until
//! the user reveals it; a restart stops the feed (the stream stays).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pump_engine::{Difficulty, RoundDeriver};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ingest::message::{Heartbeat, Message, NewBet};
use crate::store::{Store, StoreError};

/// Rounds per second when none is asked for: about what a fast bot plays.
pub const DEFAULT_RATE: u32 = 10;
/// The fastest pace a demo may be set to.
pub const MAX_RATE: u32 = 1000;
/// Rounds at or above this multiplier are sent as full bets, as the README's script does.
pub const FULL_BET_ABOVE: f64 = 164.72;
/// The feed wakes this often and sends the rounds due since the last wake.
const TICK: Duration = Duration::from_millis(100);
const DIFFICULTY: Difficulty = Difficulty::Expert;

/// One demo feed.
pub struct Demo {
    pub stream_id: Uuid,
    pub server_seed_hashed: String,
    pub client_seed: String,
    server_seed: String,
    rate: AtomicU32,
    running: AtomicBool,
    /// The last nonce sent.
    last_nonce: AtomicI64,
    /// Wakes the feed when it is stopped; turns `true` once it has stored its last rounds.
    stopped: tokio::sync::Notify,
    finished: tokio::sync::watch::Sender<bool>,
}

/// What the API shows of a demo (never its server seed before the reveal).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = Demo)]
pub struct DemoStatus {
    pub stream_id: Uuid,
    pub server_seed_hashed: String,
    pub client_seed: String,
    #[schema(schema_with = crate::store::model::difficulty_schema)]
    pub difficulty: pump_engine::Difficulty,
    pub rate: u32,
    pub running: bool,
    pub last_nonce: i64,
}

impl Demo {
    pub fn status(&self) -> DemoStatus {
        DemoStatus {
            stream_id: self.stream_id,
            server_seed_hashed: self.server_seed_hashed.clone(),
            client_seed: self.client_seed.clone(),
            difficulty: DIFFICULTY,
            rate: self.rate.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            last_nonce: self.last_nonce.load(Ordering::Relaxed),
        }
    }

    pub fn set_rate(&self, rate: u32) {
        self.rate.store(rate, Ordering::Relaxed);
    }

    /// Stops the feed (the stream and its rounds stay).
    pub fn stop(&self) {
        self.running.store(false, Ordering::Relaxed);
        self.stopped.notify_one();
    }

    /// Stops the feed and waits (a few seconds at most) until rounds it was storing are stored,
    /// so that what the caller reads next no longer moves.
    pub async fn stop_and_wait(&self) {
        self.stop();
        let mut finished = self.finished.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), finished.wait_for(|done| *done)).await;
    }

    /// The server seed, for the reveal; the feed stops first so every bet can be verified.
    pub async fn reveal(&self) -> String {
        self.stop_and_wait().await;
        self.server_seed.clone()
    }
}

/// The demos of this process.
#[derive(Default)]
pub struct DemoRegistry {
    demos: Mutex<HashMap<Uuid, Arc<Demo>>>,
}

impl DemoRegistry {
    pub fn get(&self, stream_id: Uuid) -> Option<Arc<Demo>> {
        self.demos.lock().unwrap_or_else(|e| e.into_inner()).get(&stream_id).cloned()
    }

    pub fn list(&self) -> Vec<DemoStatus> {
        let demos = self.demos.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<DemoStatus> = demos.values().map(|d| d.status()).collect();
        list.sort_by_key(|d| std::cmp::Reverse(d.last_nonce));
        list
    }

    /// Stops and forgets the demo of a deleted stream.
    pub fn forget(&self, stream_id: Uuid) {
        if let Some(demo) = self.demos.lock().unwrap_or_else(|e| e.into_inner()).remove(&stream_id) {
            demo.stop();
        }
    }

    /// Creates a demo stream on a fresh random seed pair (its first round sent at once, so the
    /// stream exists when this returns) and starts feeding it `rate` rounds per second.
    pub async fn start(self: &Arc<Self>, store: Store, rate: u32) -> Result<Arc<Demo>, StoreError> {
        let server_seed = crate::security::random_hex(32);
        let client_seed = format!("demo-{}", crate::security::random_hex(5));
        let server_seed_hashed = hex::encode(Sha256::digest(server_seed.as_bytes()));
        let mut deriver = RoundDeriver::new(&server_seed, &client_seed);
        let first = rounds(&mut deriver, 1, 1, &server_seed_hashed, &client_seed);
        let outcome = store.ingest(first).await?.pop();
        let outcome = outcome.ok_or_else(|| StoreError::Internal("the demo's first round was not stored".into()))?;
        let key = store
            .stream_key(outcome.stream_id)
            .await?
            .ok_or_else(|| StoreError::Internal("the demo stream vanished".into()))?;
        store.mark_demo(key.pk).await?;
        let demo = Arc::new(Demo {
            stream_id: outcome.stream_id,
            server_seed_hashed,
            client_seed,
            server_seed,
            rate: AtomicU32::new(rate),
            running: AtomicBool::new(true),
            last_nonce: AtomicI64::new(1),
            stopped: tokio::sync::Notify::new(),
            finished: tokio::sync::watch::channel(false).0,
        });
        self.demos.lock().unwrap_or_else(|e| e.into_inner()).insert(demo.stream_id, demo.clone());
        tokio::spawn(feed(store, demo.clone(), deriver));
        Ok(demo)
    }
}

/// The messages a bot would send for nonces `from..=to`: a heartbeat each, and the full bet for
/// rounds at or above [`FULL_BET_ABOVE`].
fn rounds(deriver: &mut RoundDeriver, from: i64, to: i64, hashed: &str, client_seed: &str) -> Vec<Message> {
    let mut messages = Vec::new();
    for nonce in from..=to {
        let result = deriver.result(nonce as u64, DIFFICULTY).max_multiplier;
        if result >= FULL_BET_ABOVE {
            messages.push(Message::Bet(NewBet {
                antebot_bet_id: format!("demo-{nonce}"),
                nonce,
                amount: 0.0,
                payout: 0.0,
                difficulty: DIFFICULTY,
                client_seed: client_seed.to_string(),
                server_seed_hashed: hashed.to_string(),
                round_result: result,
                payout_multiplier: result,
                round_target: None,
                date_time: Some(chrono::Utc::now()),
            }));
        } else {
            messages.push(Message::Heartbeat(Heartbeat {
                nonce,
                round_result: result,
                client_seed: client_seed.to_string(),
                server_seed_hashed: hashed.to_string(),
            }));
        }
    }
    messages
}

/// Sends the rounds due at the demo's pace until it is stopped. The engine runs on the blocking
/// pool, never on the async executor.
async fn feed(store: Store, demo: Arc<Demo>, deriver: RoundDeriver) {
    let mut deriver = Some(deriver);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut started = tokio::time::Instant::now();
    let mut sent_since_start = 0u64;
    let mut rate = demo.rate.load(Ordering::Relaxed);
    while demo.running.load(Ordering::Relaxed) {
        tokio::select! {
            _ = tick.tick() => {}
            _ = demo.stopped.notified() => break,
        }
        let now_rate = demo.rate.load(Ordering::Relaxed);
        if now_rate != rate {
            // A new pace counts from now.
            rate = now_rate;
            started = tokio::time::Instant::now();
            sent_since_start = 0;
        }
        let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as u64;
        let count = due.saturating_sub(sent_since_start).min(u64::from(MAX_RATE));
        if count == 0 {
            continue;
        }
        let from = demo.last_nonce.load(Ordering::Relaxed) + 1;
        let to = from + count as i64 - 1;
        let (hashed, client_seed) = (demo.server_seed_hashed.clone(), demo.client_seed.clone());
        let mut engine = deriver.take().unwrap_or_else(|| RoundDeriver::new(&demo.server_seed, &demo.client_seed));
        let Ok((engine, messages)) = tokio::task::spawn_blocking(move || {
            let messages = rounds(&mut engine, from, to, &hashed, &client_seed);
            (engine, messages)
        })
        .await
        else {
            break;
        };
        deriver = Some(engine);
        if !demo.running.load(Ordering::Relaxed) {
            break;
        }
        match store.ingest(messages).await {
            Ok(_) => {
                demo.last_nonce.store(to, Ordering::Relaxed);
                sent_since_start += count;
            }
            Err(e) => {
                // The database is unavailable for now: the same rounds are tried again next tick.
                tracing::warn!(stream = %demo.stream_id, error = %e, "the demo feed could not store its rounds");
            }
        }
    }
    demo.running.store(false, Ordering::Relaxed);
    demo.finished.send_replace(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_is_a_heartbeat_or_a_full_bet_above_the_threshold() {
        let mut deriver = RoundDeriver::new("server", "client");
        let messages = rounds(&mut deriver, 1, 5000, "hash", "client");
        assert_eq!(messages.len(), 5000);
        let mut check = RoundDeriver::new("server", "client");
        for (nonce, message) in (1..=5000).zip(&messages) {
            let result = check.result(nonce as u64, Difficulty::Expert).max_multiplier;
            assert_eq!(message.nonce(), nonce);
            assert_eq!(message.round_result(), result);
            assert_eq!(matches!(message, Message::Bet(_)), result >= FULL_BET_ABOVE, "nonce {nonce}");
        }
        assert!(messages.iter().any(|m| matches!(m, Message::Bet(_))), "5000 expert rounds hold a big one");
    }
}
