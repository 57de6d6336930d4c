//! Simulator speed: bets per second of one run for three typical scripts, and Monte Carlo on one
//! core against every core (SPEC §9.5). `cargo run --release --example simbench [BETS]`.

use std::sync::Arc;
use std::time::Duration;

use pump_analyzer::sim::{SimConfig, SimControl, monte_carlo, simulate};

const FLAT: &str = "game = 'pump'; difficulty = 'expert'; rounds = 1; betSize = 0.01;
engine.onBetPlaced(async () => {});";

const MARTINGALE: &str = "game = 'pump'; difficulty = 'medium'; rounds = 2; const base = 0.01; betSize = base;
const stopLoss = -200;
engine.onBetPlaced(async (bet) => {
  if (bet.win) betSize = base; else betSize = betSize * 2;
  if (profit < stopLoss || betSize > balance) { betSize = base; resetStats(); }
});";

const CADENCE: &str = "game = 'pump'; difficulty = 'expert'; rounds = 1; betSize = 0.01;
const WINDOW = 1000; const ring = new Float64Array(WINDOW); let at = 0; let big = 0;
let sinceHit = 0; let paused = 0;
engine.onBetPlaced(async (bet) => {
  const result = bet.state.roundResultMultiplier;
  if (ring[at] >= 164.72) big--;
  ring[at] = result; at = (at + 1) % WINDOW;
  if (result >= 164.72) big++;
  sinceHit = result >= 1066.73 ? 0 : sinceHit + 1;
  if (paused > 0) { paused--; betSize = 0; return; }
  betSize = sinceHit > 1500 ? 0.02 : 0.01;
  if (big > 12) paused = 50;
});";

fn main() {
    let bets: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    for (name, script) in [("flat", FLAT), ("martingale", MARTINGALE), ("cadence", CADENCE)] {
        let mut config = SimConfig::new(script);
        config.server_seed = Some("bench-server".into());
        config.client_seed = Some("bench-client".into());
        config.max_bets = bets;
        config.balance = 1e12;
        config.time_limit = Duration::from_secs(600);
        let result = simulate(&config, &Arc::new(SimControl::default()));
        println!(
            "{name}: bets={} stop={} bets/s={}",
            result["stats"]["bets"], result["stop"]["reason"], result["bets_per_second"]
        );
    }
    let mut config = SimConfig::new(FLAT);
    config.max_bets = bets / 10;
    config.balance = 1e12;
    let runs = 2 * rayon::current_num_threads() as u64;
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let single = one.install(|| monte_carlo(&config, runs, &Arc::new(SimControl::default())));
    let all = monte_carlo(&config, runs, &Arc::new(SimControl::default()));
    let (s, a) = (single["bets_per_second"].as_f64().unwrap(), all["bets_per_second"].as_f64().unwrap());
    println!(
        "monte carlo ({runs} runs): 1 core {s:.0} bets/s, {} cores {a:.0} bets/s, ratio {:.2}",
        rayon::current_num_threads(),
        a / s
    );
}
