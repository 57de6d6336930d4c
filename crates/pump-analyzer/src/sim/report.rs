//! `pump-analyzer simulate`: one run or a Monte Carlo of the script, a progress bar on a terminal,
//! and the result as text or as the JSON object of SPEC §9.4.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{SimConfig, SimControl, check_syntax, monte_carlo, simulate};

/// Runs `config` (`runs` > 1: a Monte Carlo) and returns what to print.
pub fn run(config: &SimConfig, runs: u64, json: bool) -> Result<String, String> {
    check_syntax(&config.script).map_err(|e| format!("the script has a syntax error at {e}"))?;
    let control = Arc::new(SimControl::default());
    let total = config.max_bets.saturating_mul(runs);
    let result = std::thread::scope(|scope| {
        let worker =
            scope.spawn(|| if runs > 1 { monte_carlo(config, runs, &control) } else { simulate(config, &control) });
        if std::io::stderr().is_terminal() && !json {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} bets, {per_sec}, eta {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            while !worker.is_finished() {
                bar.set_position(control.bets());
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        }
        worker.join().map_err(|_| "the simulation panicked".to_string())
    })?;
    if json {
        return Ok(result.to_string() + "\n");
    }
    Ok(if runs > 1 { monte_carlo_text(&result, runs) } else { one_run_text(&result) })
}

fn money(v: &Value) -> String {
    format!("{:.8}", v.as_f64().unwrap_or(0.0)).trim_end_matches('0').trim_end_matches('.').to_string()
}

fn one_run_text(r: &Value) -> String {
    let s = &r["stats"];
    let stop = &r["stop"];
    let mut out = String::new();
    out.push_str(&format!(
        "seed pair: server {} (SHA-256 {}), client {}, from nonce {}\n",
        r["seed"]["server_seed"].as_str().unwrap_or("?"),
        r["seed"]["server_seed_hashed"].as_str().unwrap_or("?"),
        r["seed"]["client_seed"].as_str().unwrap_or("?"),
        r["seed"]["start_nonce"],
    ));
    out.push_str(&format!("stopped: {} at nonce {}", stop["reason"].as_str().unwrap_or("?"), stop["nonce"]));
    if let Some(message) = stop["message"].as_str() {
        out.push_str(&format!(" — {message}"));
    }
    if let Some(line) = stop["line"].as_u64() {
        out.push_str(&format!(" (line {line})"));
    }
    out.push('\n');
    out.push_str(&format!(
        "bets {}  wins {}  losses {}  wagered {}  rtp {:.2}%\n",
        s["bets"],
        s["wins"],
        s["losses"],
        money(&s["wagered"]),
        s["rtp"].as_f64().unwrap_or(0.0)
    ));
    out.push_str(&format!(
        "profit {}  (expected / average {})  balance {}  vaulted {}\n",
        money(&s["profit"]),
        money(&r["expected_profit"]),
        money(&s["balance"]),
        money(&s["vaulted"])
    ));
    out.push_str(&format!(
        "highest profit {}  lowest profit {}  max drawdown {}  highest bet {}  best win streak {}  worst loss streak {}\n",
        money(&s["highest_profit"]),
        money(&s["lowest_profit"]),
        money(&s["max_drawdown"]),
        money(&s["highest_bet"]),
        s["best_win_streak"],
        s["worst_loss_streak"]
    ));
    for line in r["logs"].as_array().into_iter().flatten().take(20) {
        out.push_str(&format!("  [bet {}] {}\n", line["bet"], line["text"].as_str().unwrap_or_default()));
    }
    out.push_str(&format!("{} ms, {} bets/s\n", r["duration_ms"], r["bets_per_second"]));
    out
}

fn monte_carlo_text(r: &Value, runs: u64) -> String {
    let d = &r["distribution"];
    let p = &d["profit"];
    format!(
        "{runs} runs on random seed pairs\nfinal profit: mean {}  p5 {}  p25 {}  median {}  p75 {}  p95 {}\n\
         P(profit > 0) {:.1}%  P(bust) {:.1}%\n{} ms, {} bets/s\n",
        money(&p["mean"]),
        money(&p["p5"]),
        money(&p["p25"]),
        money(&p["p50"]),
        money(&p["p75"]),
        money(&p["p95"]),
        100.0 * d["p_profit_positive"].as_f64().unwrap_or(0.0),
        100.0 * d["p_bust"].as_f64().unwrap_or(0.0),
        r["duration_ms"],
        r["bets_per_second"],
    )
}
