//! The simulator's semantics, table-driven, with scripts written for the test (SPEC §9).

use super::*;

const GOLDEN_SERVER: &str = "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca";
const GOLDEN_CLIENT: &str = "zXv1upuFns";

fn golden(script: &str, max_bets: u64) -> Value {
    let mut config = SimConfig::new(script);
    config.server_seed = Some(GOLDEN_SERVER.into());
    config.client_seed = Some(GOLDEN_CLIENT.into());
    config.max_bets = max_bets;
    config.time_limit = Duration::from_secs(20);
    simulate(&config, &Arc::new(SimControl::default()))
}

#[test]
fn expert_twelve_pumps_wins_exactly_at_the_golden_nonces() {
    let script = "game = 'pump'; difficulty = 'expert'; rounds = 12; betSize = 0;
        const won = []; engine.onBetPlaced(() => { if (lastBet.win) won.push(lastBet.nonce); });
        engine.onBettingStopped(() => log(won.join(',')));";
    let result = golden(script, 50_000);
    assert_eq!(result["stop"]["reason"], "max_bets", "{}", result["stop"]);
    assert_eq!(result["stop"]["nonce"], 50_000);
    assert_eq!(result["stats"]["bets"], 50_000);
    assert_eq!(result["stats"]["wins"], 7);
    assert_eq!(result["logs"][0]["text"], "5663,9030,20962,35134,41372,44319,45241");
}

fn run_with(script: &str, max_bets: u64, balance: f64, limit: Duration) -> Value {
    let mut config = SimConfig::new(script);
    config.server_seed = Some(GOLDEN_SERVER.into());
    config.client_seed = Some(GOLDEN_CLIENT.into());
    config.max_bets = max_bets;
    config.balance = balance;
    config.time_limit = limit;
    simulate(&config, &Arc::new(SimControl::default()))
}

/// Every stat of SPEC §9.2 against a reference computed here from the known wins of expert
/// rounds=12 on the golden pair.
#[test]
fn every_stat_follows_its_definition() {
    let wins = [5663u64, 9030, 20962, 35134, 41372, 44319, 45241];
    let table = pump_engine::tables::multipliers(pump_engine::Difficulty::Expert);
    let script = "game = 'pump'; difficulty = 'expert'; rounds = 12; betSize = 1;";
    let result = run_with(script, 50_000, 1_000_000.0, Duration::from_secs(20));
    let (mut profit, mut high, mut low, mut max_dd, mut paid) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut balance = 1_000_000.0f64;
    let (mut streak, mut worst) = (0i64, 0i64);
    for nonce in 1..=50_000u64 {
        let win = wins.contains(&nonce);
        let payout = if win { table[12] } else { 0.0 };
        paid += payout;
        profit += payout - 1.0;
        balance += payout - 1.0;
        streak = if win {
            1
        } else if streak < 0 {
            streak - 1
        } else {
            -1
        };
        worst = worst.max(-streak);
        high = high.max(profit);
        low = low.min(profit);
        max_dd = max_dd.max(high - profit);
    }
    let s = &result["stats"];
    assert_eq!(s["bets"], 50_000);
    assert_eq!((s["wins"].as_u64(), s["losses"].as_u64()), (Some(7), Some(49_993)));
    assert_eq!(s["wagered"], 50_000.0);
    assert_eq!(s["profit"].as_f64().unwrap(), profit);
    assert_eq!(s["balance"].as_f64().unwrap(), balance);
    assert_eq!(s["highest_profit"].as_f64().unwrap(), high);
    assert_eq!(s["lowest_profit"].as_f64().unwrap(), low);
    assert_eq!(s["max_drawdown"].as_f64().unwrap(), max_dd);
    assert_eq!(s["rtp"].as_f64().unwrap(), 100.0 * paid / 50_000.0);
    assert_eq!((s["highest_bet"].as_f64(), s["highest_loss"].as_f64()), (Some(1.0), Some(1.0)));
    assert_eq!(s["best_win_streak"], 1);
    assert_eq!(s["worst_loss_streak"].as_i64().unwrap(), worst);
    assert_eq!(s["highest_multipliers"], json!(vec![table[12]; 7]));
    // P(win, R = 12, M = 10) = C(13, 10) / C(25, 10).
    let p = 286.0 / 3_268_760.0;
    let expected = 50_000.0 * (table[12] * p - 1.0);
    assert!((result["expected_profit"].as_f64().unwrap() - expected).abs() < 1e-6, "{}", result["expected_profit"]);
    let curve = result["curve"].as_array().unwrap();
    assert!(curve.len() <= 1000 && curve.len() > 500, "{}", curve.len());
    assert_eq!(curve[0]["bet"], 1);
    assert_eq!(curve.last().unwrap()["bet"], 50_000);
    assert_eq!(curve.last().unwrap()["profit"].as_f64().unwrap(), profit);
}

/// The stop reasons of SPEC §9.3, with the stop nonce, message and line.
#[test]
fn each_stop_reason_is_reported_with_its_nonce_message_and_line() {
    let base = "game = 'pump'; difficulty = 'expert'; rounds = 12; betSize = 1;\n";
    // (script, reason, stop nonce, part of the message, line)
    type Case<'a> = (&'a str, &'a str, Option<u64>, Option<&'a str>, Option<u64>);
    let cases: &[Case] = &[
        ("engine.onBetPlaced(() => { if (lastBet.nonce === 10) engine.stop(); });", "stopped", Some(10), None, None),
        ("engine.onBetPlaced(() => { if (lastBet.nonce === 7) engine.pause(); });", "paused", Some(7), None, None),
        ("", "max_bets", Some(100), None, None),
        ("setSimulationBalance(5);", "insufficient_balance", Some(5), None, None),
        (
            "engine.onBetPlaced(() => {\n  if (lastBet.nonce === 3) throw new Error('boom');\n});",
            "script_error",
            Some(3),
            Some("boom"),
            Some(3),
        ),
        (
            "engine.onBetPlaced(async () => {\n  await null;\n  if (lastBet.nonce === 4) throw new Error('async boom');\n});",
            "script_error",
            Some(4),
            Some("async boom"),
            Some(4),
        ),
        ("game = 'dice';", "script_error", None, Some("game must be pump"), None),
        ("rounds = 16;", "script_error", None, Some("rounds must be a whole number from 1 to 15 on expert"), None),
        ("undefinedFunction();", "script_error", None, Some("undefinedFunction"), Some(2)),
        ("let x = ;", "script_error", None, Some("unexpected"), Some(2)),
        ("engine.onBetPlaced(() => { if (lastBet.nonce === 5) for (;;) {} });", "time_limit", Some(5), None, None),
        ("for (;;) {}", "time_limit", None, None, None),
        ("engine.onBetPlaced(() => new Promise(() => {}));", "script_error", Some(1), Some("never settles"), None),
    ];
    for (script, reason, nonce, message, line) in cases {
        let result = run_with(&format!("{base}{script}"), 100, 1000.0, Duration::from_millis(700));
        let stop = &result["stop"];
        assert_eq!(stop["reason"], *reason, "{script}: {stop}");
        assert_eq!(stop["nonce"].as_u64(), *nonce, "{script}: {stop}");
        if let Some(message) = message {
            let text = stop["message"].as_str().unwrap_or_default().to_ascii_lowercase();
            assert!(text.contains(&message.to_ascii_lowercase()), "{script}: {stop}");
        }
        if let Some(line) = line {
            assert_eq!(stop["line"].as_u64(), Some(*line), "{script}: {stop}");
        }
    }
}

#[test]
fn a_cancelled_run_stops_with_cancelled() {
    let control = Arc::new(SimControl::default());
    let mut config = SimConfig::new("game = 'pump'; betSize = 0; engine.onBetPlaced(() => {});");
    config.max_bets = 100_000_000;
    let canceller = {
        let control = control.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            control.cancel();
        })
    };
    let result = simulate(&config, &control);
    canceller.join().unwrap();
    assert_eq!(result["stop"]["reason"], "cancelled");
    assert!(control.bets() > 0 && control.bets() == result["stats"]["bets"].as_u64().unwrap());
}

/// The sandbox: no require, process or network; a memory bomb ends its own run only.
#[test]
fn the_sandbox_has_no_way_out_and_contains_a_memory_bomb() {
    let script = "game = 'pump'; betSize = 0;
        log(typeof require, typeof process, typeof std, typeof os);
        fetch('https://example.com').then(() => log('reached'), (e) => log(e.message));
        engine.onBetPlaced(async () => { await fetch('http://127.0.0.1:8000/live/ingest').catch(() => {}); });";
    let result = run_with(script, 20, 1000.0, Duration::from_secs(5));
    assert_eq!(result["logs"][0]["text"], "undefined undefined undefined undefined");
    assert_eq!(result["logs"][1]["text"], "network is disabled in simulation");
    assert_eq!(result["fetch_calls"], 21);
    assert_eq!(result["stop"]["reason"], "max_bets", "a caught rejection is no script error");

    let bomb = "const hoard = []; for (;;) hoard.push(new Array(100000).fill(7));";
    let result = run_with(bomb, 20, 1000.0, Duration::from_secs(20));
    assert_eq!(result["stop"]["reason"], "script_error", "{}", result["stop"]);
    assert!(result["stop"]["message"].as_str().unwrap().contains("out of memory"), "{}", result["stop"]);
    let after = run_with("game = 'pump'; betSize = 0;", 10, 1.0, Duration::from_secs(5));
    assert_eq!(after["stop"]["reason"], "max_bets", "the next run is unaffected");
}

/// log, notification, playHitSound, logToFile, resetStats, resetSeed, setSimulationNonce,
/// setSimulationBalance, depositToVault, shuffle, chanceToMultiplier, getVipProgress.
#[test]
fn the_functions_of_the_script_world_behave_as_documented() {
    let script = "game = 'pump'; difficulty = 'easy'; rounds = 1; betSize = 1;
        log('#ff0000', 'red', 1, {a: 2}, [3]); log('#plain'); log(null, undefined, true);
        notification('hello'); notification('careful', 'warning'); playHitSound(); playHitSound();
        logToFile('a.txt', 'one'); logToFile('a.txt', 'two');
        log(chanceToMultiplier(49.5));
        getVipProgress().then((v) => log(v.flag, v.nextFlag));
        log(shuffle([1, 2, 3, 4, 5, 6, 7, 8]).length, typeof Math.random());
        engine.onBetPlaced(() => {
          if (lastBet.nonce === 3) { depositToVault(10); setSimulationNonce(1000); }
          if (lastBet.nonce === 1001) { resetStats(); setSimulationBalance(50); }
          if (lastBet.nonce === 1002) { resetSeed('fresh-client'); }
          if (lastBet.clientSeed === 'fresh-client' && lastBet.nonce === 2) engine.stop();
        });";
    let result = run_with(script, 100, 1000.0, Duration::from_secs(5));
    let logs: Vec<&str> = result["logs"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(result["logs"][0]["color"], "#ff0000");
    assert_eq!(logs[0], "red 1 {\"a\":2} [3]");
    assert_eq!((result["logs"][1]["color"].clone(), logs[1]), (Value::Null, "#plain"));
    assert_eq!(logs[2], "null undefined true");
    assert_eq!(logs[3], "2");
    assert_eq!(logs[4], "8 number");
    assert_eq!(logs[5], "None Bronze");
    assert_eq!(
        result["notifications"],
        json!([{"bet": 0, "type": "info", "message": "hello"}, {"bet": 0, "type": "warning", "message": "careful"}])
    );
    assert_eq!(result["hit_sounds"], 2);
    assert_eq!(result["files"], json!({"a.txt": "one\ntwo\n"}));
    let stop = &result["stop"];
    assert_eq!((stop["reason"].as_str(), stop["nonce"].as_u64()), (Some("stopped"), Some(2)));
    assert_eq!(result["seed"]["client_seed"], "fresh-client");
    assert_eq!(result["seed"]["server_seed"].as_str().unwrap().len(), 64);
    let s = &result["stats"];
    assert_eq!(s["vaulted"], 10.0);
    assert_eq!(s["bets"], 8, "nonces 1, 2, 3, then 1000, 1001, 1002, then the new pair's 1 and 2");
    assert_eq!(s["wins"].as_u64().unwrap() + s["losses"].as_u64().unwrap(), 3, "counted since resetStats");
}

/// Same script, seeds and options: the same result, byte for byte (timing aside), PRNG included.
#[test]
fn runs_are_deterministic() {
    let script = "game = 'pump'; difficulty = 'hard'; betSize = 1;
        engine.onBetPlaced(() => { rounds = 1 + Math.floor(Math.random() * 3); if (Math.random() < 0.001) resetSeed(); log(shuffle([1,2,3,4]).join('')); });";
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("duration_ms");
        v.as_object_mut().unwrap().remove("bets_per_second");
        v.to_string()
    };
    let a = strip(run_with(script, 5000, 100_000.0, Duration::from_secs(10)));
    let b = strip(run_with(script, 5000, 100_000.0, Duration::from_secs(10)));
    assert_eq!(a, b);
}

#[test]
fn logs_keep_the_first_and_last_five_hundred() {
    let script = "game = 'pump'; betSize = 0; engine.onBetPlaced(() => log('bet', lastBet.nonce));";
    let result = run_with(script, 3000, 1.0, Duration::from_secs(10));
    let logs = result["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1000);
    assert_eq!(result["logs_total"], 3000);
    assert_eq!(logs[499]["text"], "bet 500");
    assert_eq!(logs[500]["text"], "bet 2501");
    assert_eq!(logs[999]["text"], "bet 3000");
}

#[test]
fn syntax_errors_are_found_without_running_the_script_and_name_their_line() {
    assert_eq!(check_syntax("game = 'pump';\nfor (;;) {}"), Ok(()), "parsed, never run");
    let error = check_syntax("game = 'pump';\n\nlet x = ;").unwrap_err();
    assert_eq!(error.line, Some(3), "{error:?}");
    assert!(!error.message.is_empty());
}

#[test]
fn monte_carlo_gives_the_distribution_of_final_profits() {
    let config = SimConfig {
        max_bets: 200,
        balance: 50.0,
        time_limit: Duration::from_secs(10),
        ..SimConfig::new("game = 'pump'; difficulty = 'expert'; rounds = 10; betSize = 1;")
    };
    let result = monte_carlo(&config, 40, &Arc::new(SimControl::default()));
    let runs = result["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 40);
    let seeds: std::collections::HashSet<&str> =
        runs.iter().map(|r| r["seed"]["server_seed"].as_str().unwrap()).collect();
    assert_eq!(seeds.len(), 40, "independent random pairs");
    let d = &result["distribution"];
    let p = |k: &str| d["profit"][k].as_f64().unwrap();
    assert!(p("p5") <= p("p25") && p("p25") <= p("p50") && p("p50") <= p("p75") && p("p75") <= p("p95"));
    let busts = runs.iter().filter(|r| r["stop"]["reason"] == "insufficient_balance").count() as f64 / 40.0;
    assert_eq!(d["p_bust"].as_f64().unwrap(), busts);
    assert!(busts > 0.5, "50 units at 1 a bet on a 1-in-1,089 shot mostly bust: {busts}");
}
