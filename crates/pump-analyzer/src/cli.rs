//! The engine's command-line surfaces: `pump-analyzer verify` and `pump-analyzer scan`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use pump_engine::Difficulty;
use pump_engine::scan::{ScanControl, ScanRequest, scan as run_scan};
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
}

/// `pump-analyzer scan`: prints hits and a summary; a progress bar when stderr is a terminal.
pub fn scan(args: &ScanArgs) -> Result<String, String> {
    let control = ScanControl::default();
    let request = ScanRequest {
        server_seed: &args.server_seed,
        client_seed: &args.client_seed,
        start: args.start,
        end: args.end,
        difficulty: args.difficulty,
        targets: &args.targets,
        max_hits: 10_000_000,
    };
    let total = args.end.saturating_sub(args.start) + 1;
    let started = Instant::now();
    let hits = std::thread::scope(|scope| {
        let worker = scope.spawn(|| run_scan(&request, &control));
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
    })?
    .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let mut counts: BTreeMap<String, usize> = args.targets.iter().map(|t| (format!("{t:.2}"), 0)).collect();
    for hit in &hits {
        *counts.entry(format!("{:.2}", hit.max_multiplier)).or_default() += 1;
    }
    if args.json {
        let list: Vec<_> = hits
            .iter()
            .map(|h| json!({"nonce": h.nonce, "max_multiplier": h.max_multiplier, "max_pumps": h.max_pumps, "pop_point": h.pop_point}))
            .collect();
        return Ok(json!({
            "nonce_start": args.start,
            "nonce_end": args.end,
            "difficulty": args.difficulty.as_str(),
            "hits": list,
            "summary": {"count": hits.len(), "counts_by_target": counts, "duration_ms": elapsed.as_millis() as u64},
        })
        .to_string()
            + "\n");
    }
    let mut out = String::from("nonce\tmultiplier\n");
    for hit in &hits {
        out.push_str(&format!("{}\t{:.2}\n", hit.nonce, hit.max_multiplier));
    }
    out.push_str(&format!(
        "\n{} hits in {} nonces ({}) in {:.2} s, {:.0} nonces/s\n",
        hits.len(),
        total,
        args.difficulty,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(1e-9)
    ));
    for (target, count) in counts {
        out.push_str(&format!("  {target}x: {count}\n"));
    }
    Ok(out)
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
