//! The engine's command-line surfaces: `pump-analyzer verify` and `pump-analyzer scan`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use pump_engine::Difficulty;
use pump_engine::scan::{ScanControl, ScanError, ScanRequest, scan_each as run_scan};
use serde_json::json;

/// The 25 positions as a 5×5 board; pop positions are shown as `XX`.
pub fn board(permutation: &[u8; 25], difficulty: Difficulty) -> String {
    let pops = &permutation[..difficulty.pops()];
    let mut out = String::new();
    for row in 0..5 {
        let cells: Vec<String> = (1..=5u8)
            .map(|col| {
                let position = row * 5 + col;
                if pops.contains(&position) { " XX".to_string() } else { format!("{position:>3}") }
            })
            .collect();
        out.push_str(&cells.join(" "));
        out.push('\n');
    }
    out
}

/// `pump-analyzer verify`.
pub fn verify(server_seed: &str, client_seed: &str, nonce: u64, difficulty: Difficulty, as_json: bool) -> String {
    let v = pump_engine::verify(server_seed, client_seed, nonce, difficulty);
    if as_json {
        return json!({
            "nonce": nonce,
            "difficulty": difficulty.as_str(),
            "max_pumps": v.result.max_pumps,
            "max_multiplier": v.result.max_multiplier,
            "pop_point": v.result.pop_point,
            "permutation": v.permutation,
        })
        .to_string()
            + "\n";
    }
    let order: Vec<String> = v.permutation.iter().map(u8::to_string).collect();
    format!(
        "nonce {nonce} ({difficulty})\npop point:      {}\nmax pumps:      {}\nmax multiplier: {:.2}x\npermutation:    {}\n\n{}",
        v.result.pop_point,
        v.result.max_pumps,
        v.result.max_multiplier,
        order.join(" "),
        board(&v.permutation, difficulty)
    )
}

/// Arguments of `pump-analyzer scan`, already parsed.
pub struct ScanArgs {
    pub server_seed: String,
    pub client_seed: String,
    pub start: u64,
    pub end: u64,
    pub difficulty: Difficulty,
    pub targets: Vec<f64>,
    pub json: bool,
    /// List at most this many hits (the summary still counts them all).
    pub max_hits: Option<u64>,
}

/// `pump-analyzer scan`: writes each hit to `out` as the scan finds it, in nonce order, then the
/// summary of the whole range (SPEC §4.5); a progress bar when stderr is a terminal. Memory stays
/// bounded whatever the range and targets: hits are never all held.
pub fn scan(args: &ScanArgs, out: &mut (dyn Write + Send)) -> Result<(), String> {
    let control = ScanControl::default();
    let request = ScanRequest {
        server_seed: &args.server_seed,
        client_seed: &args.client_seed,
        start: args.start,
        end: args.end,
        difficulty: args.difficulty,
        targets: &args.targets,
        max_hits: usize::MAX,
    };
    let total = args.end.saturating_sub(args.start) + 1;
    let started = Instant::now();
    let mut counts: BTreeMap<String, u64> = args.targets.iter().map(|t| (format!("{t:.2}"), 0)).collect();
    let mut listed = 0u64;
    let limit = args.max_hits.unwrap_or(u64::MAX);
    let io = |e: std::io::Error| format!("cannot write the output: {e}");
    if args.json {
        write!(
            out,
            "{{\"nonce_start\":{},\"nonce_end\":{},\"difficulty\":\"{}\",\"hits\":[",
            args.start,
            args.end,
            args.difficulty.as_str()
        )
        .map_err(io)?;
    } else {
        out.write_all(b"nonce\tmultiplier\n").map_err(io)?;
    }
    let mut write_error = None;
    let summary = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            run_scan(&request, &control, |hits| {
                for hit in hits {
                    *counts.entry(format!("{:.2}", hit.max_multiplier)).or_default() += 1;
                    if listed >= limit {
                        continue;
                    }
                    let written = if args.json {
                        let separator = if listed == 0 { "" } else { "," };
                        write!(out, "{separator}{}", hit_json(hit))
                    } else {
                        writeln!(out, "{}\t{:.2}", hit.nonce, hit.max_multiplier)
                    };
                    if let Err(e) = written {
                        // A closed pipe (`| head`) ends the scan; nothing more can be shown.
                        write_error = Some(e);
                        return Err(ScanError::Cancelled);
                    }
                    listed += 1;
                }
                Ok(())
            })
        });
        if std::io::stderr().is_terminal() && !args.json {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {percent:>3}% {human_pos}/{human_len} nonces, eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            while !worker.is_finished() {
                bar.set_position(control.done());
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        }
        worker.join().map_err(|_| "the scan panicked".to_string())
    })?;
    if let Some(e) = write_error {
        return Err(io(e));
    }
    let summary = summary.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let found: u64 = counts.values().sum();
    if args.json {
        let top: Vec<_> = summary.top.iter().map(hit_json).collect();
        let summary = json!({
            "count": summary.count(),
            "max_multiplier": summary.max_multiplier(),
            "median_multiplier": summary.median_multiplier(),
            "counts_by_target": counts,
            "top_max": top,
            "hits": found,
            "hits_listed": listed,
            "duration_ms": elapsed.as_millis() as u64,
        });
        writeln!(out, "],\"hits_truncated\":{},\"summary\":{summary}}}", listed < found).map_err(io)?;
        return out.flush().map_err(io);
    }
    let mut text = format!(
        "\n{found} hits in {total} nonces ({}) in {:.2} s, {:.0} nonces/s\n",
        args.difficulty,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    if listed < found {
        text.push_str(&format!("  (listed the first {listed}: --max-hits)\n"));
    }
    for (target, count) in counts.iter().filter(|(t, _)| args.targets.iter().any(|x| format!("{x:.2}") == **t)) {
        text.push_str(&format!("  {target}x: {count}\n"));
    }
    let multiplier = |m: Option<f64>| m.map_or_else(|| "-".to_string(), |m| format!("{m:.2}x"));
    text.push_str(&format!(
        "range: max {} (first at nonce {}), median {}\n",
        multiplier(summary.max_multiplier()),
        summary.top.first().map_or_else(|| "-".to_string(), |h| h.nonce.to_string()),
        multiplier(summary.median_multiplier()),
    ));
    out.write_all(text.as_bytes()).map_err(io)?;
    out.flush().map_err(io)
}

fn hit_json(h: &pump_engine::scan::Hit) -> serde_json::Value {
    json!({"nonce": h.nonce, "max_multiplier": h.max_multiplier, "max_pumps": h.max_pumps, "pop_point": h.pop_point})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_marks_the_pop_positions() {
        let v = pump_engine::verify("verify_server", "verify_client", 1, Difficulty::Expert);
        let text = board(&v.permutation, Difficulty::Expert);
        assert_eq!(text.matches("XX").count(), 10);
        assert_eq!(text.lines().count(), 5);
        assert!(text.starts_with(" XX"), "position 1 pops for this vector:\n{text}");
    }
}
