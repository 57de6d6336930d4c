//! Range scans ("runs"): every nonce of `start..=end` on all cores, keeping the nonces whose
//! multiplier *is* one of the targets (compared to two decimals, as the table prints them; SPEC
//! §4.4's range vector lists only the exact 11200.65 results, not the larger ones). Work is split into fixed chunks so progress can be
//! reported and a cancel request honoured between chunks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;

use crate::Difficulty;
use crate::round::RoundDeriver;
use crate::tables::{multipliers, pumps_for_multiplier};

/// Nonces per unit of work (progress and cancellation granularity).
pub const CHUNK: u64 = 1 << 16;

/// One nonce whose multiplier reached a target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub nonce: u64,
    pub pop_point: u8,
    pub max_pumps: u8,
    pub max_multiplier: f64,
}

/// What to scan.
#[derive(Debug, Clone)]
pub struct ScanRequest<'a> {
    pub server_seed: &'a str,
    pub client_seed: &'a str,
    /// First nonce (≥ 1).
    pub start: u64,
    /// Last nonce, inclusive.
    pub end: u64,
    pub difficulty: Difficulty,
    /// Multipliers of interest; a nonce is a hit when its multiplier equals one of them.
    pub targets: &'a [f64],
    /// Stop with [`ScanError::TooManyHits`] past this many hits (bounds memory).
    pub max_hits: usize,
}

/// Shared between a running scan and whoever watches it.
#[derive(Debug, Default)]
pub struct ScanControl {
    done: AtomicU64,
    hits: AtomicU64,
    cancelled: AtomicBool,
}

impl ScanControl {
    /// Nonces scanned so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Asks the scan to stop at the next chunk boundary.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// `start` is 0 or `end < start`.
    InvalidRange,
    /// [`ScanControl::cancel`] was called.
    Cancelled,
    /// More than `max_hits` nonces matched: pick a higher target or a shorter range.
    TooManyHits(usize),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::InvalidRange => f.write_str("the range must satisfy 1 ≤ start ≤ end"),
            ScanError::Cancelled => f.write_str("the scan was cancelled"),
            ScanError::TooManyHits(n) => {
                write!(f, "more than {n} hits; raise the smallest target or shorten the range")
            }
        }
    }
}

impl std::error::Error for ScanError {}

/// Scans the range on the current rayon pool. Hits come back in nonce order.
pub fn scan(request: &ScanRequest<'_>, control: &ScanControl) -> Result<Vec<Hit>, ScanError> {
    if request.start == 0 || request.end < request.start {
        return Err(ScanError::InvalidRange);
    }
    let mut wanted = [false; 26];
    for &target in request.targets {
        if let Some(k) = pumps_for_multiplier(request.difficulty, target) {
            wanted[k] = true;
        }
    }
    if !wanted.contains(&true) {
        // No target is a multiplier of this difficulty: nothing can hit.
        control.done.store(request.end - request.start + 1, Ordering::Relaxed);
        return Ok(Vec::new());
    }
    let deriver = RoundDeriver::new(request.server_seed, request.client_seed);
    let chunks = (request.end - request.start) / CHUNK + 1;
    let table = multipliers(request.difficulty);
    let per_chunk: Vec<Vec<Hit>> = (0..chunks)
        .into_par_iter()
        .map_init(
            || deriver.clone(),
            |deriver, chunk| {
                if control.is_cancelled() || control.hits.load(Ordering::Relaxed) > request.max_hits as u64 {
                    return Vec::new();
                }
                let first = request.start + chunk * CHUNK;
                let last = (first + CHUNK - 1).min(request.end);
                let mut hits = Vec::new();
                for nonce in first..=last {
                    let r = deriver.result(nonce, request.difficulty);
                    if wanted[r.max_pumps as usize] {
                        hits.push(Hit {
                            nonce,
                            pop_point: r.pop_point,
                            max_pumps: r.max_pumps,
                            max_multiplier: table[r.max_pumps as usize],
                        });
                    }
                }
                control.hits.fetch_add(hits.len() as u64, Ordering::Relaxed);
                control.done.fetch_add(last - first + 1, Ordering::Relaxed);
                hits
            },
        )
        .collect();
    if control.is_cancelled() {
        return Err(ScanError::Cancelled);
    }
    let total: usize = per_chunk.iter().map(Vec::len).sum();
    if total > request.max_hits {
        return Err(ScanError::TooManyHits(request.max_hits));
    }
    let mut hits = Vec::with_capacity(total);
    per_chunk.into_iter().for_each(|chunk| hits.extend(chunk));
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca";

    fn request(targets: &[f64]) -> ScanRequest<'_> {
        ScanRequest {
            server_seed: SERVER,
            client_seed: "zXv1upuFns",
            start: 1,
            end: 50_000,
            difficulty: Difficulty::Expert,
            targets,
            max_hits: 1_000_000,
        }
    }

    #[test]
    fn the_spec_range_vector_finds_the_six_hits() {
        let control = ScanControl::default();
        let hits = scan(&request(&[11200.65]), &control).unwrap();
        let nonces: Vec<u64> = hits.iter().map(|h| h.nonce).collect();
        assert_eq!(nonces, vec![5663, 9030, 20962, 35134, 41372, 44319]);
        assert!(hits.iter().all(|h| h.max_multiplier == 11200.65));
        assert_eq!(control.done(), 50_000);
    }

    #[test]
    fn invalid_ranges_cancellation_and_hit_caps_are_reported() {
        let control = ScanControl::default();
        let mut bad = request(&[2.80]);
        bad.start = 0;
        assert_eq!(scan(&bad, &control), Err(ScanError::InvalidRange));
        let mut capped = request(&[1.0, 1.63]);
        capped.max_hits = 10;
        assert_eq!(scan(&capped, &control), Err(ScanError::TooManyHits(10)));
        let cancelled = ScanControl::default();
        cancelled.cancel();
        assert_eq!(scan(&request(&[2.80]), &cancelled), Err(ScanError::Cancelled));
    }

    #[test]
    fn several_targets_are_each_matched_exactly() {
        let control = ScanControl::default();
        let hits = scan(&request(&[11200.65, 48536.13, 1066.73]), &control).unwrap();
        assert!(hits.iter().any(|h| h.nonce == 45241 && h.max_multiplier > 11200.65));
        assert!(hits.iter().all(|h| [11200.65, 48536.13, 1066.73].contains(&h.max_multiplier)));
        assert!(hits.windows(2).all(|w| w[0].nonce < w[1].nonce));
    }

    #[test]
    fn unreachable_targets_hit_nothing() {
        let mut r = request(&[1e12]);
        r.end = 10;
        assert_eq!(scan(&r, &ScanControl::default()).unwrap(), vec![]);
    }
}
