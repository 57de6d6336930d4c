//! Scan throughput against the machine's own SHA-256 bound, measured in the same run.
//!
//! `cargo bench -p pump-engine --bench scan` (add `-- 20000000` for a longer range).
//!
//! The bound: raw SHA-256 compressions per second on every core (rayon), divided by the
//! compressions a nonce needs — 4 for expert (two HMACs), 2 for easy/medium/hard (one HMAC).

use std::hint::black_box;
use std::time::Instant;

use pump_engine::Difficulty;
use pump_engine::scan::{ScanControl, ScanRequest, scan};
use rayon::prelude::*;
use sha2::block_api::compress256;

fn compressions_per_second(total: u64) -> f64 {
    let threads = rayon::current_num_threads() as u64;
    let started = Instant::now();
    (0..threads).into_par_iter().for_each(|t| {
        let mut state = [t as u32; 8];
        let block = [[7u8; 64]];
        for _ in 0..total / threads {
            compress256(&mut state, &block);
        }
        black_box(state);
    });
    total as f64 / started.elapsed().as_secs_f64()
}

fn nonces_per_second(difficulty: Difficulty, nonces: u64) -> f64 {
    let request = ScanRequest {
        server_seed: "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca",
        client_seed: "zXv1upuFns",
        start: 1,
        end: nonces,
        difficulty,
        targets: &[pump_engine::tables::multipliers(difficulty).last().copied().unwrap_or(1.0)],
        max_hits: usize::MAX,
    };
    let started = Instant::now();
    black_box(scan(&request, &ScanControl::default()).unwrap().summary);
    nonces as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let nonces: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000_000);
    // Warm up (CPU frequency, page faults, thread pool).
    nonces_per_second(Difficulty::Expert, nonces / 10);
    let bound = compressions_per_second(nonces * 4);
    println!("threads={} sha256_compressions/s={:.0}", rayon::current_num_threads(), bound);
    for (difficulty, per_nonce) in [(Difficulty::Expert, 4.0), (Difficulty::Easy, 2.0)] {
        let rate = nonces_per_second(difficulty, nonces);
        let ceiling = bound / per_nonce;
        println!("{difficulty}: nonces/s={rate:.0} sha_bound={ceiling:.0} ratio_to_bound={:.2}", rate / ceiling);
    }
}
