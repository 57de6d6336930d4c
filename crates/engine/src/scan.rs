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

/// Nonces kept in [`RangeSummary::top`]: the first ones whose multiplier is the range's maximum.
pub const TOP: usize = 5;

/// What a scan tells about every nonce of its range, whatever the targets (SPEC §4.5): a
/// histogram per `max_pumps`, which gives the count, the maximum and the median in constant
/// memory, and the first nonces that reached the maximum.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSummary {
    pub difficulty: Difficulty,
    /// How many nonces had each `max_pumps` (index 0..=25).
    pub by_pumps: [u64; 26],
    /// The first (lowest-nonce) up to [`TOP`] nonces whose multiplier is the range's maximum.
    pub top: Vec<Hit>,
}

impl RangeSummary {
    fn new(difficulty: Difficulty) -> Self {
        Self { difficulty, by_pumps: [0; 26], top: Vec::new() }
    }

    /// Nonces scanned.
    pub fn count(&self) -> u64 {
        self.by_pumps.iter().sum()
    }

    /// The largest multiplier of the range.
    pub fn max_multiplier(&self) -> Option<f64> {
        let k = self.by_pumps.iter().rposition(|&n| n > 0)?;
        Some(multipliers(self.difficulty)[k])
    }

    /// The median multiplier of the range; for an even count the mean of the two middle values.
    pub fn median_multiplier(&self) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let nth = |rank: u64| -> f64 {
            let mut seen = 0;
            for (k, &n) in self.by_pumps.iter().enumerate() {
                seen += n;
                if rank < seen {
                    return multipliers(self.difficulty)[k];
                }
            }
            unreachable!("rank {rank} is below the count {count}")
        };
        Some(if count % 2 == 1 { nth(count / 2) } else { (nth(count / 2 - 1) + nth(count / 2)) / 2.0 })
    }

    /// Folds in the summary of the nonces right after those already folded.
    fn extend(&mut self, next: &RangeSummary) {
        for (total, n) in self.by_pumps.iter_mut().zip(next.by_pumps) {
            *total += n;
        }
        let best = |top: &[Hit]| top.first().map(|h| h.max_pumps);
        match (best(&self.top), best(&next.top)) {
            (_, None) => {}
            (Some(mine), Some(theirs)) if mine > theirs => {}
            (Some(mine), Some(theirs)) if mine == theirs => {
                let room = TOP - self.top.len();
                self.top.extend(next.top.iter().take(room).copied());
            }
            _ => self.top.clone_from(&next.top),
        }
    }
}

/// The range's summary and the hits, for callers that keep them all (bounded by `max_hits`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub hits: Vec<Hit>,
    pub summary: RangeSummary,
}

/// Scans the range on the current rayon pool, keeping every hit (at most `max_hits`, else
/// [`ScanError::TooManyHits`]). Hits come back in nonce order.
pub fn scan(request: &ScanRequest<'_>, control: &ScanControl) -> Result<Scan, ScanError> {
    let mut hits = Vec::new();
    let summary = scan_each(request, control, |found| {
        if hits.len() + found.len() > request.max_hits {
            return Err(ScanError::TooManyHits(request.max_hits));
        }
        hits.extend_from_slice(found);
        Ok(())
    })?;
    Ok(Scan { hits, summary })
}

/// Scans the range on the current rayon pool and hands the hits to `on_hits` as they are found,
/// in nonce order, a few chunks at a time: memory stays bounded whatever the range and targets.
/// An error from `on_hits` stops the scan and is returned. `max_hits` is not applied here.
pub fn scan_each<F>(request: &ScanRequest<'_>, control: &ScanControl, mut on_hits: F) -> Result<RangeSummary, ScanError>
where
    F: FnMut(&[Hit]) -> Result<(), ScanError>,
{
    if request.start == 0 || request.end < request.start {
        return Err(ScanError::InvalidRange);
    }
    let mut wanted = [false; 26];
    for &target in request.targets {
        if let Some(k) = pumps_for_multiplier(request.difficulty, target) {
            wanted[k] = true;
        }
    }
    let deriver = RoundDeriver::new(request.server_seed, request.client_seed);
    let chunks = (request.end - request.start) / CHUNK + 1;
    // Chunks are scanned a wave at a time, in parallel, and their hits handed on in order: a
    // wave holds a few chunks per thread, enough to keep every core busy, and its hits are all
    // that is held at once.
    let wave = 4 * rayon::current_num_threads().max(1) as u64;
    let mut summary = RangeSummary::new(request.difficulty);
    let mut first_chunk = 0;
    while first_chunk < chunks {
        let last_chunk = (first_chunk + wave).min(chunks);
        let results: Vec<(Vec<Hit>, RangeSummary)> = (first_chunk..last_chunk)
            .into_par_iter()
            .map_init(
                || deriver.clone(),
                |deriver, chunk| {
                    if control.is_cancelled() {
                        return (Vec::new(), RangeSummary::new(request.difficulty));
                    }
                    let first = request.start + chunk * CHUNK;
                    let last = (first + CHUNK - 1).min(request.end);
                    let found = scan_chunk(deriver, request.difficulty, &wanted, first, last);
                    control.hits.fetch_add(found.0.len() as u64, Ordering::Relaxed);
                    control.done.fetch_add(last - first + 1, Ordering::Relaxed);
                    found
                },
            )
            .collect();
        if control.is_cancelled() {
            return Err(ScanError::Cancelled);
        }
        for (hits, part) in &results {
            if !hits.is_empty() {
                on_hits(hits)?;
            }
            summary.extend(part);
        }
        first_chunk = last_chunk;
    }
    Ok(summary)
}

/// One chunk: its hits and its summary.
fn scan_chunk(
    deriver: &mut RoundDeriver,
    difficulty: Difficulty,
    wanted: &[bool; 26],
    first: u64,
    last: u64,
) -> (Vec<Hit>, RangeSummary) {
    let table = multipliers(difficulty);
    let mut hits = Vec::new();
    let mut summary = RangeSummary::new(difficulty);
    let mut best = 0u8;
    for nonce in first..=last {
        let r = deriver.result(nonce, difficulty);
        let k = r.max_pumps;
        summary.by_pumps[k as usize] += 1;
        let hit = || Hit { nonce, pop_point: r.pop_point, max_pumps: k, max_multiplier: table[k as usize] };
        if wanted[k as usize] {
            hits.push(hit());
        }
        if k >= best {
            if k > best || summary.top.is_empty() {
                best = k;
                summary.top.clear();
            }
            if summary.top.len() < TOP {
                summary.top.push(hit());
            }
        }
    }
    (hits, summary)
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
        let hits = scan(&request(&[11200.65]), &control).unwrap().hits;
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
        let stop = scan_each(&request(&[1.0]), &ScanControl::default(), |_| Err(ScanError::TooManyHits(0)));
        assert_eq!(stop, Err(ScanError::TooManyHits(0)), "an error of the sink stops the scan");
        let cancelled = ScanControl::default();
        cancelled.cancel();
        assert_eq!(scan(&request(&[2.80]), &cancelled), Err(ScanError::Cancelled));
    }

    #[test]
    fn several_targets_are_each_matched_exactly() {
        let control = ScanControl::default();
        let hits = scan(&request(&[11200.65, 48536.13, 1066.73]), &control).unwrap().hits;
        assert!(hits.iter().any(|h| h.nonce == 45241 && h.max_multiplier > 11200.65));
        assert!(hits.iter().all(|h| [11200.65, 48536.13, 1066.73].contains(&h.max_multiplier)));
        assert!(hits.windows(2).all(|w| w[0].nonce < w[1].nonce));
    }

    #[test]
    fn unreachable_targets_hit_nothing() {
        let mut r = request(&[1e12]);
        r.end = 10;
        assert_eq!(scan(&r, &ScanControl::default()).unwrap().hits, vec![]);
    }

    /// SPEC §4.5's figures for the range vector: the summary describes all 50,000 nonces.
    #[test]
    fn the_summary_describes_the_whole_range_whatever_the_targets() {
        for targets in [&[400.02][..], &[][..], &[1e12][..]] {
            let summary = scan(&request(targets), &ScanControl::default()).unwrap().summary;
            assert_eq!(summary.count(), 50_000);
            assert_eq!(summary.max_multiplier(), Some(48536.13));
            assert_eq!(summary.median_multiplier(), Some(1.63));
            let top: Vec<u64> = summary.top.iter().map(|h| h.nonce).collect();
            assert_eq!(top, vec![45241]);
        }
    }

    /// The streamed hits, histogram, median and top equal those computed from every nonce one by
    /// one, over ranges that end inside a chunk and span several waves.
    #[test]
    fn streamed_hits_and_summary_agree_with_a_nonce_by_nonce_count() {
        for (start, end, difficulty) in
            [(1, 70_000, Difficulty::Easy), (3, 600_001, Difficulty::Hard), (10, 10, Difficulty::Expert)]
        {
            let r = ScanRequest { start, end, difficulty, targets: &[1.0, 2.0, 1.5], ..request(&[]) };
            let mut streamed = Vec::new();
            let summary = scan_each(&r, &ScanControl::default(), |hits| {
                streamed.extend_from_slice(hits);
                Ok(())
            })
            .unwrap();
            let mut deriver = RoundDeriver::new(SERVER, "zXv1upuFns");
            let table = multipliers(difficulty);
            let mut expected = Vec::new();
            let mut all = Vec::new();
            let mut by_pumps = [0u64; 26];
            for nonce in start..=end {
                let result = deriver.result(nonce, difficulty);
                let m = table[result.max_pumps as usize];
                by_pumps[result.max_pumps as usize] += 1;
                all.push((m, nonce));
                if [1.0, 2.0, 1.5].contains(&m) {
                    expected.push(nonce);
                }
            }
            assert_eq!(streamed.iter().map(|h| h.nonce).collect::<Vec<_>>(), expected);
            assert_eq!(summary.by_pumps, by_pumps);
            let mut sorted: Vec<f64> = all.iter().map(|a| a.0).collect();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
            assert_eq!(summary.median_multiplier(), Some(median));
            let max = sorted[n - 1];
            let top: Vec<u64> = all.iter().filter(|a| a.0 == max).map(|a| a.1).take(TOP).collect();
            assert_eq!(summary.top.iter().map(|h| h.nonce).collect::<Vec<_>>(), top);
        }
    }
}
