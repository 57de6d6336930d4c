//! The strategy simulator (SPEC §9): runs a player's Antebot script, unmodified, against the
//! provably-fair engine, offline, and reports what it would have done to the balance beside what
//! the game's odds predict.
//!
//! Why QuickJS (through `rquickjs`): it is a small C engine that builds here in about a minute,
//! starts a runtime in well under a millisecond (a Monte Carlo run gets a fresh one per seed
//! pair), and gives the two sandbox controls the simulator needs: a memory limit per runtime and
//! an interrupt handler, which ends an endless loop at the time limit and honours a cancel. The
//! pure-Rust `boa` builds slower and runs slower; V8 cannot be fetched here. The sandbox exposes
//! no module loader, no `require`, no `process`, no timers that touch the clock, and a `fetch`
//! that always rejects.
//!
//! The betting loop itself runs in JavaScript (`prelude.js`): per bet it crosses into Rust once,
//! for the round's `max_pumps`, and calls the script's callback directly, awaiting it only when
//! it returns a promise. Measured figures: `docs/performance.md`.

pub mod report;
mod sandbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

pub use sandbox::check_syntax;

/// Memory one run's JavaScript may use (the engine's own state is outside it).
pub const MEMORY_LIMIT: usize = 128 * 1024 * 1024;
/// Default and largest `max_bets` (the largest is also capped by `MAX_NONCES`).
pub const DEFAULT_MAX_BETS: u64 = 1_000_000;
pub const DEFAULT_BALANCE: f64 = 1000.0;
/// Largest `runs` of one Monte Carlo simulation.
pub const MAX_RUNS: u64 = 10_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub script: String,
    /// `None`: a fresh random pair is drawn.
    pub server_seed: Option<String>,
    pub client_seed: Option<String>,
    pub start_nonce: u64,
    pub max_bets: u64,
    pub balance: f64,
    pub time_limit: Duration,
}

impl SimConfig {
    pub fn new(script: impl Into<String>) -> Self {
        Self {
            script: script.into(),
            server_seed: None,
            client_seed: None,
            start_nonce: 1,
            max_bets: DEFAULT_MAX_BETS,
            balance: DEFAULT_BALANCE,
            time_limit: Duration::from_secs(60),
        }
    }
}

/// Shared with whoever watches a run: bets so far, and a cancel request.
#[derive(Debug, Default)]
pub struct SimControl {
    bets: AtomicU64,
    cancelled: AtomicBool,
}

impl SimControl {
    pub fn bets(&self) -> u64 {
        self.bets.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    fn add_bets(&self, n: u64) {
        self.bets.fetch_add(n, Ordering::Relaxed);
    }
}

/// A syntax error of a script, with its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptError {
    pub message: String,
    pub line: Option<u32>,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A fresh random seed pair: a 64-hex server seed and a 10-character client seed.
pub fn random_seed_pair() -> (String, String) {
    let server = crate::security::random_hex(32);
    let mut bytes = [0u8; 10];
    let _ = getrandom::fill(&mut bytes);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let client = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    (server, client)
}

/// Runs one simulation to its end; the result object of SPEC §9.4. `control.bets()` follows it.
pub fn simulate(config: &SimConfig, control: &Arc<SimControl>) -> Value {
    let (server, client) = match (&config.server_seed, &config.client_seed) {
        (Some(s), Some(c)) => (s.clone(), c.clone()),
        (Some(s), None) => (s.clone(), random_seed_pair().1),
        (None, Some(c)) => (random_seed_pair().0, c.clone()),
        (None, None) => random_seed_pair(),
    };
    let started = std::time::Instant::now();
    let mut result = sandbox::run(config, &server, &client, control);
    let elapsed = started.elapsed();
    let bets = result["stats"]["bets"].as_u64().unwrap_or(0);
    result["seed"]["start_nonce"] = json!(config.start_nonce);
    result["duration_ms"] = json!(elapsed.as_millis() as u64);
    result["bets_per_second"] = json!((bets as f64 / elapsed.as_secs_f64().max(1e-9)).round());
    result
}

/// `runs` independent simulations on random seed pairs, on every core: the compact runs and the
/// distribution of their final profits (SPEC §9.4).
pub fn monte_carlo(config: &SimConfig, runs: u64, control: &Arc<SimControl>) -> Value {
    use rayon::prelude::*;
    let started = std::time::Instant::now();
    let results: Vec<Value> = (0..runs)
        .into_par_iter()
        .map(|_| {
            let mut one = config.clone();
            let (server, client) = random_seed_pair();
            one.server_seed = Some(server);
            one.client_seed = Some(client);
            one.start_nonce = 1;
            let result = simulate(&one, control);
            json!({ "seed": result["seed"], "stop": result["stop"], "stats": result["stats"] })
        })
        .collect();
    let mut profits: Vec<f64> = results.iter().map(|r| r["stats"]["profit"].as_f64().unwrap_or(0.0)).collect();
    profits.sort_by(f64::total_cmp);
    let n = profits.len().max(1) as f64;
    let mean = profits.iter().sum::<f64>() / n;
    let positive = profits.iter().filter(|p| **p > 0.0).count() as f64 / n;
    let bust = results.iter().filter(|r| r["stop"]["reason"] == "insufficient_balance").count() as f64 / n;
    let total_bets: u64 = results.iter().map(|r| r["stats"]["bets"].as_u64().unwrap_or(0)).sum();
    let elapsed = started.elapsed();
    json!({
        "runs": results,
        "distribution": {
            "profit": {
                "mean": mean,
                "p5": percentile(&profits, 5.0),
                "p25": percentile(&profits, 25.0),
                "p50": percentile(&profits, 50.0),
                "p75": percentile(&profits, 75.0),
                "p95": percentile(&profits, 95.0),
            },
            "p_profit_positive": positive,
            "p_bust": bust,
        },
        "duration_ms": elapsed.as_millis() as u64,
        "bets_per_second": (total_bets as f64 / elapsed.as_secs_f64().max(1e-9)).round(),
    })
}

/// The `q`-th percentile of sorted values, interpolated linearly between ranks.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = q / 100.0 * (n - 1) as f64;
            let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
        }
    }
}

#[cfg(test)]
mod tests;
