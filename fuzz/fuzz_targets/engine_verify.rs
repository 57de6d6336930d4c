//! The engine's verify path on arbitrary seeds, nonces and difficulties: the permutation is always
//! 1..=25 once each, the fast result agrees with the full verification, and the multiplier comes
//! from the table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pump_engine::{Difficulty, RoundDeriver, tables};

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let nonce = u64::from_le_bytes(data[..8].try_into().unwrap());
    let difficulty = [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard, Difficulty::Expert][data[8] as usize % 4];
    let rest = &data[9..];
    let split = rest.iter().position(|b| *b == 0).unwrap_or(rest.len() / 2);
    let server = String::from_utf8_lossy(&rest[..split]);
    let client = String::from_utf8_lossy(&rest[(split + 1).min(rest.len())..]);
    let full = pump_engine::verify(&server, &client, nonce, difficulty);
    let mut seen = [false; 26];
    for &p in &full.permutation {
        assert!((1..=25).contains(&p) && !seen[p as usize], "{:?}", full.permutation);
        seen[p as usize] = true;
    }
    let mut deriver = RoundDeriver::new(&server, &client);
    assert_eq!(deriver.result(nonce, difficulty), full.result);
    let table = tables::multipliers(difficulty);
    assert_eq!(table[full.result.max_pumps as usize], full.result.max_multiplier);
    assert!(full.result.max_pumps as usize <= 25 - difficulty.pops());
});
