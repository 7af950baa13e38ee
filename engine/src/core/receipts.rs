//! Receipt keys this shard owns: carrier message id → message, so a
//! receipt arriving on any bind (also after a restart) finds its message.
//! A receipt can overtake the submit's own event across cores: it is then
//! kept as *early* until the key is indexed, at most
//! [`EARLY_RECEIPTS_BOUND`] of them; a full buffer first forgets early
//! receipts older than [`EARLY_RECEIPT_TTL_MS`], then drops new ones.
//!
//! A key leaves when its receipt comes, or [`INDEX_TTL_MS`] after it was
//! indexed: by then the message's validity (at most 3 days) has ended long
//! ago, so a receipt that never came no longer holds memory.

use std::collections::{HashMap, VecDeque};

use crate::model::{hash128, MessageId};

/// Receipts kept while their submit is not yet indexed.
pub const EARLY_RECEIPTS_BOUND: usize = 100_000;

/// How long an early receipt is sure to be kept: a full buffer forgets
/// those kept this long or longer.
pub const EARLY_RECEIPT_TTL_MS: i64 = 300_000;

/// How long a key waits for its receipt: the longest validity (3 days)
/// and a day for late receipts (SPEC §5.1).
pub const INDEX_TTL_MS: i64 = 4 * 86_400_000;

/// A receipt key: hash of sender name and carrier message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiptKey(pub u128);

impl ReceiptKey {
    /// The key of a carrier id at a sender.
    pub fn new(sender: &str, carrier_id: &str) -> ReceiptKey {
        ReceiptKey(hash128(&[sender.as_bytes(), carrier_id.as_bytes()]))
    }
}

/// A carrier's final word on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Delivered or not.
    pub delivered: bool,
    /// Unified code.
    pub code: u16,
}

/// What became of an arriving receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// It belongs to this message (the key is forgotten).
    Matched(MessageId),
    /// Kept until its key is indexed.
    Early,
    /// The early buffer is full: dropped.
    Dropped,
}

/// The receipt keys of one shard.
#[derive(Default)]
pub struct ReceiptIndex {
    index: HashMap<ReceiptKey, MessageId>,
    /// The keys indexed, oldest first: (when, key, message).
    order: VecDeque<(i64, ReceiptKey, MessageId)>,
    early: HashMap<ReceiptKey, (Receipt, i64)>,
}

impl ReceiptIndex {
    /// Indexes a carrier id. When its receipt came first, returns it: the
    /// message's final result.
    pub fn index(&mut self, now_ms: i64, key: ReceiptKey, id: MessageId) -> Option<Receipt> {
        self.forget_older_than(now_ms - INDEX_TTL_MS);
        if let Some((receipt, _)) = self.early.remove(&key) {
            return Some(receipt);
        }
        self.index.insert(key, id);
        self.order.push_back((now_ms, key, id));
        None
    }

    /// Forgets the keys indexed before `cutoff_ms` whose receipt never came.
    fn forget_older_than(&mut self, cutoff_ms: i64) {
        while let Some(&(at, key, id)) = self.order.front() {
            if at >= cutoff_ms {
                return;
            }
            self.order.pop_front();
            if self.index.get(&key) == Some(&id) {
                self.index.remove(&key);
            }
        }
    }

    /// Keys waiting for their receipt.
    pub fn indexed(&self) -> usize {
        self.index.len()
    }

    /// A receipt arrived at `now_ms`.
    pub fn arrived(&mut self, now_ms: i64, key: ReceiptKey, receipt: Receipt) -> Arrival {
        if let Some(id) = self.index.remove(&key) {
            return Arrival::Matched(id);
        }
        if self.early.len() >= EARLY_RECEIPTS_BOUND {
            let cutoff = now_ms - EARLY_RECEIPT_TTL_MS;
            self.early.retain(|_, (_, at)| *at > cutoff);
        }
        if self.early.len() >= EARLY_RECEIPTS_BOUND {
            return Arrival::Dropped;
        }
        self.early.insert(key, (receipt, now_ms));
        Arrival::Early
    }

    /// Number of early receipts kept.
    pub fn early(&self) -> usize {
        self.early.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERED: Receipt = Receipt {
        delivered: true,
        code: 2000,
    };

    #[test]
    fn a_receipt_finds_its_message_once() {
        let mut r = ReceiptIndex::default();
        let key = ReceiptKey::new("G_S_KT01", "00000000ab");
        let id = MessageId::new(1, 7);
        assert_eq!(r.index(0, key, id), None);
        assert_eq!(r.arrived(0, key, DELIVERED), Arrival::Matched(id));
        // A second receipt for the same id is not matched again.
        assert_eq!(r.arrived(0, key, DELIVERED), Arrival::Early);
        assert_ne!(key, ReceiptKey::new("G_S_KT02", "00000000ab"));
    }

    #[test]
    fn an_early_receipt_waits_for_its_index() {
        let mut r = ReceiptIndex::default();
        let key = ReceiptKey::new("S", "1");
        let failed = Receipt {
            delivered: false,
            code: 5001,
        };
        assert_eq!(r.arrived(10, key, failed), Arrival::Early);
        assert_eq!(r.index(20, key, MessageId::new(0, 1)), Some(failed));
        assert_eq!(r.early(), 0);
    }

    #[test]
    fn the_early_buffer_is_bounded_and_forgets_old_receipts_first() {
        let mut r = ReceiptIndex::default();
        for n in 0..EARLY_RECEIPTS_BOUND {
            let key = ReceiptKey::new("S", &n.to_string());
            assert_eq!(r.arrived(0, key, DELIVERED), Arrival::Early);
        }
        let late = ReceiptKey::new("S", "late");
        // Full, and nothing is old enough to forget.
        assert_eq!(
            r.arrived(EARLY_RECEIPT_TTL_MS - 1, late, DELIVERED),
            Arrival::Dropped
        );
        assert_eq!(r.early(), EARLY_RECEIPTS_BOUND);
        // A moment later every one of them has been kept for the TTL.
        assert_eq!(
            r.arrived(EARLY_RECEIPT_TTL_MS, late, DELIVERED),
            Arrival::Early
        );
        assert_eq!(r.early(), 1);
    }

    #[test]
    fn a_key_whose_receipt_never_comes_is_forgotten_after_the_ttl() {
        let mut r = ReceiptIndex::default();
        let (lost, kept) = (ReceiptKey::new("S", "lost"), ReceiptKey::new("S", "kept"));
        assert_eq!(r.index(0, lost, MessageId::new(0, 1)), None);
        assert_eq!(r.index(INDEX_TTL_MS - 1, kept, MessageId::new(0, 2)), None);
        assert_eq!(r.indexed(), 2);
        // The next index after the TTL forgets the first key only.
        let other = ReceiptKey::new("S", "other");
        assert_eq!(r.index(INDEX_TTL_MS + 1, other, MessageId::new(0, 3)), None);
        assert_eq!(r.indexed(), 2);
        let at = INDEX_TTL_MS + 2;
        assert_eq!(r.arrived(at, lost, DELIVERED), Arrival::Early, "forgotten");
        assert_eq!(
            r.arrived(at, kept, DELIVERED),
            Arrival::Matched(MessageId::new(0, 2))
        );
    }
}
