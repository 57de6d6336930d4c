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
