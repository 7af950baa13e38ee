//! The hasher of the shard-local maps keyed by `u64` numbers the engine
//! makes itself (message sequence numbers): one rotate, xor and multiply
//! per word, where the standard SipHash spends ~20 ns defending against
//! keys an attacker chooses, which these are not. The multiply carries
//! every bit of the key into the top bits the map's control bytes use,
//! and sequential keys still spread over the low bits it indexes with.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// An odd constant with well-spread bits (2^64 / φ).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// See the module.
#[derive(Debug, Default, Clone, Copy)]
pub struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }
}

/// A map keyed by the engine's own `u64` numbers.
pub type SeqMap<V> = HashMap<u64, V, BuildHasherDefault<SeqHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher as _;

    #[test]
    fn sequential_keys_spread_over_low_and_high_bits() {
        let build = BuildHasherDefault::<SeqHasher>::default();
        let hashes: Vec<u64> = (0..4096u64).map(|n| build.hash_one(n)).collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        let top: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(low.len(), 4096, "every low-bit bucket once");
        assert_eq!(top.len(), 128, "every control byte value");
        let mut map: SeqMap<u64> = SeqMap::default();
        map.extend((0..1000).map(|n| (n, n * 2)));
        assert_eq!(map.get(&999), Some(&1998));
    }
}
