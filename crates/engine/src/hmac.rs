//! HMAC-SHA256 with the key's inner and outer states computed once.
//!
//! A scan computes millions of HMACs under one key (the server seed). The generic `hmac` crate
//! re-runs the two key-block compressions on every clone or re-key; here they run once in
//! [`KeyedHmac::new`], and each message costs only its own blocks plus one outer block: two
//! SHA-256 compressions for the usual short `client:nonce:round` message. `sha2::compress256`
//! uses the CPU's SHA extensions when present (runtime detection).

use sha2::block_api::compress256;
use sha2::{Digest, Sha256};

/// The outer block after the 32-byte inner digest: 0x80, zeros, bit length (64 + 32) · 8.
const OUTER_TEMPLATE: [u8; 64] = {
    let mut block = [0u8; 64];
    block[32] = 0x80;
    block[62] = 0x03;
    block
};

const IV: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// An HMAC-SHA256 key, prepared for many messages.
#[derive(Clone)]
pub struct KeyedHmac {
    inner: [u32; 8],
    outer: [u32; 8],
}

fn state_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

impl KeyedHmac {
    pub fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = IV;
        compress256(&mut inner, &[block.map(|b| b ^ 0x36)]);
        let mut outer = IV;
        compress256(&mut outer, &[block.map(|b| b ^ 0x5c)]);
        Self { inner, outer }
    }

    /// HMAC-SHA256 of a message that fits one block, given already padded (message, 0x80,
    /// zeros, big-endian bit length of 64 + message length). Returns the digest as eight
    /// big-endian words, which is how the round derivation reads it anyway: two compressions,
    /// no byte shuffling.
    pub fn mac_padded_block(&self, block: &[u8; 64]) -> [u32; 8] {
        let mut inner = self.inner;
        compress256(&mut inner, std::slice::from_ref(block));
        let mut outer_block = OUTER_TEMPLATE;
        for (chunk, word) in outer_block[..32].chunks_exact_mut(4).zip(&inner) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        let mut outer = self.outer;
        compress256(&mut outer, &[outer_block]);
        outer
    }

    /// HMAC-SHA256(key, message).
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut state = self.inner;
        let mut chunks = message.chunks_exact(64);
        for chunk in &mut chunks {
            let block: &[u8; 64] = chunk.try_into().expect("64-byte chunk");
            compress256(&mut state, std::slice::from_ref(block));
        }
        let rest = chunks.remainder();
        let mut tail = [[0u8; 64]; 2];
        let flat = tail.as_flattened_mut();
        flat[..rest.len()].copy_from_slice(rest);
        flat[rest.len()] = 0x80;
        let blocks = if rest.len() + 9 <= 64 { 1 } else { 2 };
        let bit_len = ((64 + message.len()) as u64) * 8;
        flat[blocks * 64 - 8..blocks * 64].copy_from_slice(&bit_len.to_be_bytes());
        compress256(&mut state, &tail[..blocks]);

        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&state_bytes(&state));
        block[32] = 0x80;
        block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        let mut outer = self.outer;
        compress256(&mut outer, &[block]);
        state_bytes(&outer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{KeyInit, Mac};

    fn reference(key: &[u8], message: &[u8]) -> [u8; 32] {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn matches_the_hmac_crate_for_every_length_boundary() {
        let keys: [&[u8]; 4] = [b"", b"k", &[7u8; 64], &[9u8; 100]];
        for key in keys {
            let prepared = KeyedHmac::new(key);
            for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200, 300] {
                let message: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
                assert_eq!(prepared.mac(&message), reference(key, &message), "key {} len {len}", key.len());
                if len <= 55 {
                    let mut block = [0u8; 64];
                    block[..len].copy_from_slice(&message);
                    block[len] = 0x80;
                    block[56..].copy_from_slice(&(((64 + len) as u64) * 8).to_be_bytes());
                    let words = prepared.mac_padded_block(&block);
                    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
                    assert_eq!(bytes, reference(key, &message), "padded block, len {len}");
                }
            }
        }
    }
}
