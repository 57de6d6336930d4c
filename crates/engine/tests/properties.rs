//! Properties that must hold for any seeds and nonce.

use proptest::prelude::*;
use pump_engine::tables::{max_pumps_limit, multipliers};
use pump_engine::{Difficulty, RoundDeriver, verify};

fn difficulty() -> impl Strategy<Value = Difficulty> {
    prop_oneof![Just(Difficulty::Easy), Just(Difficulty::Medium), Just(Difficulty::Hard), Just(Difficulty::Expert)]
}

proptest! {
    #[test]
    fn the_permutation_holds_each_position_once(server in ".{0,80}", client in ".{1,300}", nonce in 1u64..u64::MAX, d in difficulty()) {
        let v = verify(&server, &client, nonce, d);
        let mut sorted = v.permutation;
        sorted.sort_unstable();
        prop_assert_eq!(sorted.to_vec(), (1..=25).collect::<Vec<u8>>());
    }

    #[test]
    fn results_are_deterministic_bounded_and_agree_with_the_full_verification(
        server in "[0-9a-f]{64}", client in "[A-Za-z0-9]{1,40}", nonce in 1u64..10_000_000, d in difficulty()
    ) {
        let mut deriver = RoundDeriver::new(&server, &client);
        let fast = deriver.result(nonce, d);
        prop_assert_eq!(fast, deriver.result(nonce, d));
        let full = verify(&server, &client, nonce, d);
        prop_assert_eq!(fast, full.result);
        prop_assert!(fast.max_pumps as usize <= max_pumps_limit(d));
        prop_assert_eq!(fast.max_pumps, (fast.pop_point - 1).min(max_pumps_limit(d) as u8));
        prop_assert_eq!(fast.max_multiplier, multipliers(d)[fast.max_pumps as usize]);
        prop_assert_eq!(fast.pop_point, *full.permutation[..d.pops()].iter().min().unwrap());
    }
}
