//! Every key → owning shard function, in one place (CORE.md §3).
//!
//! Strings (customers, endpoints, agents) are placed by 64-bit FNV-1a;
//! 128-bit keys (dedup, receipts, route keys) by their low 64 bits. A
//! message is owned by the shard that accepted it (in its id). None of
//! these placements is stored on disk: every owner's state is rebuilt from
//! the WALs at start-up, so they may change between versions, never within
//! a running process.

use crate::core::dedup::DedupKey;
use crate::core::receipts::ReceiptKey;
use crate::model::{hash128, MessageId};

/// The shard that owns a customer's limits (TPS windows, prepaid charges)
/// and sends its daily digest.
pub fn customer(group_code: &str, shards: usize) -> usize {
    modulo(fnv1a(&[group_code.as_bytes()]), shards)
}

/// The shard that owns a client's webhook endpoint queue.
pub fn endpoint(client_id: &str, shards: usize) -> usize {
    modulo(fnv1a(&[client_id.as_bytes()]), shards)
}

/// The shard that resumes a media file's registration and report after a
/// restart (at upload, the shard that took the file does that work).
pub fn file(file_id: &str, shards: usize) -> usize {
    modulo(fnv1a(&[file_id.as_bytes()]), shards)
}

/// The shard that owns a customer agent's heartbeats.
pub fn agent(group_code: &str, agent_id: &str, shards: usize) -> usize {
    modulo(
        fnv1a(&[group_code.as_bytes(), b"/", agent_id.as_bytes()]),
        shards,
    )
}

/// The shard that owns a route key's weighted round-robin state.
pub fn route(route_id: &str, carrier_key: &str, shards: usize) -> usize {
    modulo(
        hash128(&[route_id.as_bytes(), carrier_key.as_bytes()]) as u64,
        shards,
    )
}

/// The shard that owns a `src_msg_id` dedup key.
pub fn dedup(key: DedupKey, shards: usize) -> usize {
    modulo(key.0 as u64, shards)
}

/// The shard that owns a carrier id's receipt key.
pub fn receipt(key: ReceiptKey, shards: usize) -> usize {
    modulo(key.0 as u64, shards)
}

/// The shard that owns a message: the one that accepted it.
pub fn message(id: MessageId) -> usize {
    id.shard()
}

/// 64-bit FNV-1a over the concatenation of `parts`.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

fn modulo(h: u64, shards: usize) -> usize {
    (h % shards.max(1) as u64) as usize
}

/// `items` split by the shard `owner` names for each, one list per shard
/// of `n` (for the start-up restores, one request per owner).
pub fn group<T>(
    n: usize,
    items: impl IntoIterator<Item = T>,
    owner: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut per_owner: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    for item in items {
        per_owner[owner(&item)].push(item);
    }
    per_owner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&[b"foo", b"bar"]), fnv1a(&[b"foobar"]));
    }

    #[test]
    fn owners_stay_in_range_and_spread() {
        for shards in 1..=8 {
            for i in 0..64 {
                let g = format!("G{i}");
                assert!(customer(&g, shards) < shards);
                assert!(endpoint(&g, shards) < shards);
                assert!(agent(&g, "a", shards) < shards);
                assert!(route(&g, "KT", shards) < shards);
                assert!(dedup(DedupKey::new(&g, "x"), shards) < shards);
                assert!(receipt(ReceiptKey::new(&g, "x"), shards) < shards);
            }
        }
        let spread: std::collections::HashSet<usize> =
            (0..64).map(|i| customer(&format!("G{i}"), 4)).collect();
        assert_eq!(spread.len(), 4);
        let spread: std::collections::HashSet<usize> = (0..64)
            .map(|i| dedup(DedupKey::new("A1", &i.to_string()), 4))
            .collect();
        assert_eq!(spread.len(), 4, "dedup keys spread over the shards");
        assert_eq!(message(MessageId::new(3, 7)), 3);
    }

    #[test]
    fn a_message_id_names_its_node_shard_and_sequence() {
        let id = MessageId::on_node(7, 3, 42);
        assert_eq!((id.node(), id.shard(), id.seq()), (7, 3, 42));
        assert_eq!(id.to_string(), "070300000000002a");
        assert_eq!(MessageId::parse(&id.to_string()), Some(id));
        // One node: node 0, the ids of round 1 unchanged.
        assert_eq!(MessageId::new(1, 5), MessageId((1 << 48) | 5));
        assert_eq!(MessageId::new(1, 5).node(), 0);
        let last = MessageId::on_node(255, 255, (1 << 48) - 1);
        assert_eq!((last.node(), last.shard()), (255, 255));
        assert_eq!(message(last), 255);
    }

    #[test]
    fn an_agent_is_placed_by_customer_and_id_together() {
        assert_eq!(agent("A1", "x", 1024), customer("A1/x", 1024));
    }
}
