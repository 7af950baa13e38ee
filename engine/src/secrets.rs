//! Secrets at rest (SPEC §5.5): what the server keeps of a secret is a hash
//! of it, never the secret.
//!
//! - A secret that authenticates (a client secret, the admin token) is kept
//!   as its SHA-256, [`SecretHash`]: the secrets are random and long, so a
//!   fast hash is as good as a slow one, and checking one costs nothing.
//! - A secret that signs (a client secret for `X-MCMP-Signature`, a
//!   Standard Webhooks signing secret) is kept as an [`HmacKey`]: the two
//!   SHA-256 states HMAC starts from (RFC 2104, after the blocks
//!   key ⊕ ipad and key ⊕ opad). It signs exactly as the secret does, but
//!   the secret cannot be read back from it, and it is not the client
//!   secret, so it cannot get an access token.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest as _, Sha256};

/// SHA-256 of a secret that authenticates.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// The hash of `secret`.
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `presented` is the secret, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let other = SecretHash::of(presented);
        let diff = self
            .0
            .iter()
            .zip(other.0)
            .fold(0u8, |d, (a, b)| d | (a ^ b));
        diff == 0
    }

    /// Lower-case hex, as stored.
    pub fn to_hex(&self) -> String {
        crate::codec::hex(&self.0)
    }

    /// From [`SecretHash::to_hex`]'s form.
    pub fn from_hex(hex: &str) -> Option<SecretHash> {
        unhex::<32>(hex).map(SecretHash)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({})", self.to_hex())
    }
}

/// An HMAC-SHA256 key kept as the two hash states HMAC starts from.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

/// SHA-256's initial state (FIPS 180-4 §5.3.3).
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const BLOCK: usize = 64;

impl HmacKey {
    /// The key `key` (any length, as HMAC takes it).
    pub fn new(key: &[u8]) -> HmacKey {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let state = |pad: u8| {
            let mut padded = block;
            padded.iter_mut().for_each(|b| *b ^= pad);
            let mut state = IV;
            compress(&mut state, &padded);
            state
        };
        HmacKey {
            inner: state(0x36),
            outer: state(0x5c),
        }
    }

    /// HMAC-SHA256 of the concatenation of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let inner = finish(self.inner, parts);
        finish(self.outer, &[&inner])
    }

    /// Lower-case hex of both states, as stored.
    pub fn to_hex(&self) -> String {
        let bytes: Vec<u8> = self
            .inner
            .iter()
            .chain(&self.outer)
            .flat_map(|w| w.to_be_bytes())
            .collect();
        crate::codec::hex(&bytes)
    }

    /// From [`HmacKey::to_hex`]'s form.
    pub fn from_hex(hex: &str) -> Option<HmacKey> {
        let bytes = unhex::<64>(hex)?;
        let mut words = bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        let mut inner = [0u32; 8];
        let mut outer = [0u32; 8];
        inner.iter_mut().chain(&mut outer).for_each(|w| {
            *w = words.next().unwrap_or(0);
        });
        Some(HmacKey { inner, outer })
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(…)")
    }
}

/// SHA-256 of `parts`, going on from `state` after one block.
fn finish(mut state: [u32; 8], parts: &[&[u8]]) -> [u8; 32] {
    let mut buf = [0u8; BLOCK];
    let mut filled = 0usize;
    let mut total = BLOCK as u64;
    for part in parts {
        total += part.len() as u64;
        let mut rest: &[u8] = part;
        while !rest.is_empty() {
            let n = (BLOCK - filled).min(rest.len());
            buf[filled..filled + n].copy_from_slice(&rest[..n]);
            filled += n;
            rest = &rest[n..];
            if filled == BLOCK {
                compress(&mut state, &buf);
                filled = 0;
            }
        }
    }
    buf[filled] = 0x80;
    buf[filled + 1..].fill(0);
    if filled + 1 > BLOCK - 8 {
        compress(&mut state, &buf);
        buf.fill(0);
    }
    buf[BLOCK - 8..].copy_from_slice(&(total * 8).to_be_bytes());
    compress(&mut state, &buf);
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    sha2::compress256(state, &[GenericArray::clone_from_slice(block)]);
}

fn unhex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let hex = hex.as_bytes();
    if hex.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

macro_rules! hex_serde {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let hex = String::deserialize(d)?;
                <$t>::from_hex(&hex).ok_or_else(|| serde::de::Error::custom($what))
            }
        }
    };
}

hex_serde!(SecretHash, "a secret hash is 64 hex digits");
hex_serde!(HmacKey, "an HMAC key is 128 hex digits");

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    fn reference(key: &[u8], body: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any length");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn signs_as_hmac_sha256_does_for_every_key_and_body_length() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for key_len in [0, 1, 20, 32, 55, 63, 64, 65, 100, 200] {
            let key = HmacKey::new(&bytes[..key_len]);
            for body_len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 300] {
                let body = &bytes[..body_len];
                let want = reference(&bytes[..key_len], body);
                assert_eq!(key.mac(&[body]), want, "key {key_len}, body {body_len}");
                let (a, b) = body.split_at(body_len / 3);
                assert_eq!(key.mac(&[a, b]), want, "in two parts");
            }
        }
    }

    #[test]
    fn keys_and_hashes_round_trip_through_their_stored_form() {
        let key = HmacKey::new(b"client-secret");
        let stored = serde_json::to_string(&key).expect("json");
        assert_eq!(stored.len(), 128 + 2);
        assert!(!stored.contains(&crate::codec::hex(b"client-secret")));
        let back: HmacKey = serde_json::from_str(&stored).expect("back");
        assert_eq!(back.mac(&[b"body"]), reference(b"client-secret", b"body"));
        let hash = SecretHash::of("s3cret");
        let back: SecretHash =
            serde_json::from_str(&serde_json::to_string(&hash).expect("json")).expect("back");
        assert!(back.matches("s3cret"));
        assert!(!back.matches("s3cret "));
        assert!(!back.matches(""));
        assert!(serde_json::from_str::<HmacKey>("\"abc\"").is_err());
        assert!(serde_json::from_str::<SecretHash>(&format!("\"{}\"", "g".repeat(64))).is_err());
    }
}
