//! One round (SPEC §4.1): HMAC-SHA256(server seed, `client:nonce:r`) for r = 0, 1, …, read as one
//! byte stream; each 4 bytes give u = x / 2³² with x the big-endian u32 (exact); the selection
//! shuffle takes j = ⌊u · len(pool)⌋ from the pool 1..=25. The first M picks are the pops.
//!
//! ⌊u · len⌋ is computed as `(x · len) >> 32`: u · len = x · len / 2³² is exact in f64 (both
//! factors are small integers and the division is by a power of two), so the integer form gives
//! the very same index without floating point.

use crate::Difficulty;
use crate::hmac::KeyedHmac;
use crate::tables::{max_pumps_limit, multipliers};

/// The result of one nonce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundResult {
    /// The smallest pop position (1..=25).
    pub pop_point: u8,
    /// Safe pumps: min(pop_point − 1, 25 − M).
    pub max_pumps: u8,
    /// `tables::multipliers(difficulty)[max_pumps]`.
    pub max_multiplier: f64,
}

/// A full verification: the result and the whole 25-position permutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub result: RoundResult,
    pub permutation: [u8; 25],
}

/// Derives rounds for one (server seed, client seed) pair; reusable across nonces.
#[derive(Clone)]
pub struct RoundDeriver {
    hmac: KeyedHmac,
    /// The CPU has a fast `pdep` (see [`fast_pdep`]).
    fast_pdep: bool,
    message: Vec<u8>,
    prefix_len: usize,
}

fn push_decimal(buffer: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buffer.extend_from_slice(&digits[i..]);
}

impl RoundDeriver {
    pub fn new(server_seed: &str, client_seed: &str) -> Self {
        let mut message = Vec::with_capacity(client_seed.len() + 32);
        message.extend_from_slice(client_seed.as_bytes());
        message.push(b':');
        let prefix_len = message.len();
        Self { hmac: KeyedHmac::new(server_seed.as_bytes()), fast_pdep: fast_pdep(), message, prefix_len }
    }

    fn digest(&mut self, nonce: u64, round: u64) -> [u8; 32] {
        self.message.truncate(self.prefix_len);
        push_decimal(&mut self.message, nonce);
        self.message.push(b':');
        push_decimal(&mut self.message, round);
        self.hmac.mac(&self.message)
    }

    /// Fills `out` with the first `out.len()` 32-bit words of the nonce's byte stream.
    fn words(&mut self, nonce: u64, out: &mut [u32]) {
        if self.words_one_block(nonce, out) {
            return;
        }
        for (round, chunk) in out.chunks_mut(8).enumerate() {
            let digest = self.digest(nonce, round as u64);
            for (word, bytes) in chunk.iter_mut().zip(digest.chunks_exact(4)) {
                *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
        }
    }

    /// Fast path for messages that fit one SHA-256 block (client seeds up to 33 bytes, the usual
    /// case): the padded block is written in place and the digest words are used as they come.
    fn words_one_block(&mut self, nonce: u64, out: &mut [u32]) -> bool {
        let rounds = out.len().div_ceil(8);
        let digits = {
            self.message.truncate(self.prefix_len);
            push_decimal(&mut self.message, nonce);
            self.message.len() - self.prefix_len
        };
        // message = prefix + digits + ':' + one round digit (rounds ≤ 4 for 25 words)
        let len = self.prefix_len + digits + 2;
        if len > 55 || rounds > 10 {
            return false;
        }
        let mut block = [0u8; 64];
        block[..len - 2].copy_from_slice(&self.message);
        block[len - 2] = b':';
        block[len] = 0x80;
        block[56..].copy_from_slice(&(((64 + len) as u64) * 8).to_be_bytes());
        for (round, chunk) in out.chunks_mut(8).enumerate() {
            block[len - 1] = b'0' + round as u8;
            let words = self.hmac.mac_padded_block(&block);
            chunk.copy_from_slice(&words[..chunk.len()]);
        }
        true
    }

    /// The result of `nonce`, computing only the HMAC rounds the difficulty needs
    /// (one for easy/medium/hard, two for expert).
    pub fn result(&mut self, nonce: u64, difficulty: Difficulty) -> RoundResult {
        let m = difficulty.pops();
        let mut words = [0u32; 10];
        self.words(nonce, &mut words[..m]);
        let pop_point = if self.fast_pdep {
            // SAFETY: `fast_pdep` is only set when the CPU reports BMI2.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                pop_point_bmi2(&words[..m])
            }
            #[cfg(not(target_arch = "x86_64"))]
            pop_point_portable(&words[..m])
        } else {
            pop_point_portable(&words[..m])
        };
        finish(difficulty, pop_point)
    }

    /// The result and the full permutation of `nonce`.
    pub fn verify(&mut self, nonce: u64, difficulty: Difficulty) -> Verification {
        let mut words = [0u32; 25];
        self.words(nonce, &mut words);
        let mut pool: Vec<u8> = (1..=25).collect();
        let mut permutation = [0u8; 25];
        for (slot, &x) in permutation.iter_mut().zip(&words) {
            let j = ((x as u64 * pool.len() as u64) >> 32) as usize;
            *slot = pool.remove(j);
        }
        let pop_point = permutation[..difficulty.pops()].iter().copied().min().unwrap_or(1);
        Verification { result: finish(difficulty, pop_point), permutation }
    }
}

/// The smallest of the positions drawn by `words`: the selection shuffle on a list 1..=25, each
/// draw removing its element.
fn pop_point_portable(words: &[u32]) -> u8 {
    let mut pool: [u8; 25] = std::array::from_fn(|i| i as u8 + 1);
    let mut len = 25usize;
    let mut pop_point = u8::MAX;
    for &x in words {
        let j = ((x as u64 * len as u64) >> 32) as usize;
        pop_point = pop_point.min(pool[j]);
        pool.copy_within(j + 1..len, j);
        len -= 1;
    }
    pop_point
}

/// The same draws on a bitmask of the positions still in the pool: the j-th remaining position
/// is the single bit `pdep(1 << j, remaining)` deposits. No memory moves, one instruction a draw.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi2")]
fn pop_point_bmi2(words: &[u32]) -> u8 {
    let mut remaining: u32 = 0x03ff_fffe; // bits 1..=25
    let mut pop_point = u32::MAX;
    for (drawn, &x) in words.iter().enumerate() {
        let j = ((x as u64 * (25 - drawn) as u64) >> 32) as u32;
        let position = core::arch::x86_64::_pdep_u32(1 << j, remaining).trailing_zeros();
        remaining &= !(1 << position);
        pop_point = pop_point.min(position);
    }
    pop_point as u8
}

/// Whether to draw with `pdep`: the CPU must have BMI2, and `pdep` must be fast on it (some
/// CPUs implement it in microcode, hundreds of cycles). Decided once per process by timing both
/// ways on the same draws.
fn fast_pdep() -> bool {
    static FAST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FAST.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("bmi2") {
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let draws: Vec<[u32; 10]> = (0..4096)
                .map(|_| {
                    std::array::from_fn(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u32
                    })
                })
                .collect();
            let time = |f: &dyn Fn(&[u32]) -> u8| {
                let started = std::time::Instant::now();
                let sum: u32 = draws.iter().map(|w| u32::from(f(std::hint::black_box(w)))).sum();
                std::hint::black_box(sum);
                started.elapsed()
            };
            // SAFETY: BMI2 was detected just above.
            let bmi2 = time(&|w| unsafe { pop_point_bmi2(w) });
            let portable = time(&|w| pop_point_portable(w));
            return bmi2 < portable;
        }
        false
    })
}

fn finish(difficulty: Difficulty, pop_point: u8) -> RoundResult {
    let max_pumps = (pop_point as usize - 1).min(max_pumps_limit(difficulty));
    RoundResult { pop_point, max_pumps: max_pumps as u8, max_multiplier: multipliers(difficulty)[max_pumps] }
}

/// Verifies one nonce (SPEC §4.5 `GET /verify`).
pub fn verify(server_seed: &str, client_seed: &str, nonce: u64, difficulty: Difficulty) -> Verification {
    RoundDeriver::new(server_seed, client_seed).verify(nonce, difficulty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_draw_methods_agree() {
        let mut seed = 42u64;
        for _ in 0..20_000 {
            let words: [u32; 10] = std::array::from_fn(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 32) as u32
            });
            for m in [1, 3, 5, 10] {
                let portable = pop_point_portable(&words[..m]);
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("bmi2") {
                    // SAFETY: BMI2 detected.
                    assert_eq!(unsafe { pop_point_bmi2(&words[..m]) }, portable, "{words:?} m={m}");
                }
                assert!((1..=25).contains(&portable));
            }
        }
    }

    const SERVER: &str = "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca";

    #[test]
    fn the_spec_vector_for_nonce_5663() {
        let v = verify(SERVER, "zXv1upuFns", 5663, Difficulty::Expert);
        assert_eq!(
            v.permutation,
            [16, 25, 20, 13, 15, 14, 23, 18, 19, 17, 9, 21, 5, 12, 10, 24, 6, 7, 2, 8, 4, 1, 11, 3, 22]
        );
        let cases = [
            (Difficulty::Expert, 13, 12, 11200.65),
            (Difficulty::Easy, 16, 15, 2.45),
            (Difficulty::Medium, 16, 15, 18.78),
            (Difficulty::Hard, 13, 12, 40.46),
        ];
        for (d, pop, pumps, multiplier) in cases {
            let full = verify(SERVER, "zXv1upuFns", 5663, d).result;
            let fast = RoundDeriver::new(SERVER, "zXv1upuFns").result(5663, d);
            assert_eq!(full, fast, "{d}");
            assert_eq!((full.pop_point, full.max_pumps, full.max_multiplier), (pop, pumps, multiplier), "{d}");
        }
    }

    #[test]
    fn the_test_seed_vectors() {
        let mut d = RoundDeriver::new("test_server_seed", "test_client");
        let expert = d.result(1, Difficulty::Expert);
        assert_eq!((expert.pop_point, expert.max_pumps, expert.max_multiplier), (4, 3, 4.95));
        assert_eq!(d.result(1, Difficulty::Easy).max_multiplier, 4.08);
        assert_eq!(d.result(1, Difficulty::Medium).max_multiplier, 112.70);
        assert_eq!(d.result(1, Difficulty::Hard).max_multiplier, 26.01);
        let mut v = RoundDeriver::new("verify_server", "verify_client");
        for diff in Difficulty::ALL {
            let r = v.result(1, diff);
            assert_eq!((r.pop_point, r.max_pumps, r.max_multiplier), (1, 0, 1.00), "{diff}");
        }
    }
}
