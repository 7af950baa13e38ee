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
//!
//! The two ids of a message, the one in `submit_sm_resp` and the one in its
//! receipt, may be written differently (hex or decimal, leading zeros,
//! case): each sender's [`ReceiptIdFormat`] says how to bring both to the
//! one form its key is made of ([`ReceiptIdFormat::submit_id`],
//! [`ReceiptIdFormat::receipt_id`]). The default, `auto`, compares ids made
//! of hex digits as numbers (case and leading zeros ignored) and learns
//! from what a sender's ids look like ([`IdEvidence`]) whether one side
//! writes in hex what the other writes in decimal.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::model::{hash128, MessageId};

/// Receipts kept while their submit is not yet indexed.
pub const EARLY_RECEIPTS_BOUND: usize = 100_000;

/// How long an early receipt is sure to be kept: a full buffer forgets
/// those kept this long or longer.
pub const EARLY_RECEIPT_TTL_MS: i64 = 300_000;

/// How long a key waits for its receipt: the longest validity (3 days)
/// and a day for late receipts (SPEC §5.1).
pub const INDEX_TTL_MS: i64 = 4 * 86_400_000;

/// Order entries of matched keys tolerated before a compaction.
const ORDER_SLACK: usize = 4096;

/// A receipt key: hash of sender name and carrier message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiptKey(pub u128);

impl ReceiptKey {
    /// The key of a carrier id at a sender.
    pub fn new(sender: &str, carrier_id: &str) -> ReceiptKey {
        ReceiptKey(hash128(&[sender.as_bytes(), carrier_id.as_bytes()]))
    }
}

/// How a sender's carrier writes the id of a message in `submit_sm_resp`
/// and in its receipt (the `receipt_id` setting of an `smpp` sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptIdFormat {
    /// The same number in both, each side in hex or decimal as its ids
    /// show (learned per sender, [`IdEvidence`]); case and leading zeros
    /// ignored; an id with other characters compared as given.
    #[default]
    Auto,
    /// Byte for byte.
    Exact,
    /// Both the same hex number (case and leading zeros ignored).
    Hex,
    /// Both the same decimal number (leading zeros ignored).
    Decimal,
    /// `submit_sm_resp` in hex, the receipt the same number in decimal.
    HexToDecimal,
    /// `submit_sm_resp` in decimal, the receipt the same number in hex.
    DecimalToHex,
}

/// How a sender's receipt ids relate to its `submit_sm_resp` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRelation {
    /// Written the same way.
    Same,
    /// Hex at submit, decimal in the receipt.
    HexToDecimal,
    /// Decimal at submit, hex in the receipt.
    DecimalToHex,
}

/// What one id tells about the base it is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdShape {
    /// Only the digits 0-9: decimal, or hex without a letter.
    Digits,
    /// Hex digits with at least one letter a-f (any case): hex.
    HexLetters,
    /// Anything else: not a number.
    Other,
}

/// The shape of `id`.
pub fn shape(id: &str) -> IdShape {
    let id = id.trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        IdShape::Other
    } else if id.bytes().all(|b| b.is_ascii_digit()) {
        IdShape::Digits
    } else {
        IdShape::HexLetters
    }
}

/// Ids of digits only both sides must show, and none with a letter,
/// before they are surely decimal on both (then a receipt reads as its
/// submit did, whichever base they share).
pub const DECIMAL_AFTER: u8 = 8;

/// How far above the other side's largest id a side's id of digits only
/// must be, read in hex, before that side is surely decimal while the
/// other writes hex: read in hex it names no id the other side has given.
pub const DECIMAL_BY_SIZE: u64 = 4;

/// What a sender's ids have shown so far, on each side (for `auto`).
// NOTE: one id with a letter a-f shows its side is hex. A side of digits
// only is decimal against a hex side only by size: one of its ids, read in
// hex, is [`DECIMAL_BY_SIZE`] times the other side's largest. Not by a
// count of ids without a letter: a hex counter shows none for ten ids in
// a row (1-9, 10-19...), and receipts lag their submits, so a hex side of
// receipts that has not shown its first letter yet looked decimal against
// submits that had (a receipt `10` then matched the message of `a`).
// Once both sides are known the relation is known ([`IdEvidence::known`]);
// before that a receipt whose readings differ waits for it (a short,
// bounded while: the driver's), then takes the best guess
// ([`IdEvidence::relation`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdEvidence {
    /// A `submit_sm_resp` id with a letter a-f was seen.
    pub submit_letters: bool,
    /// `submit_sm_resp` ids of digits only seen (counted up to [`DECIMAL_AFTER`]).
    pub submit_digits: u8,
    /// The largest `submit_sm_resp` id of hex digits, read in hex.
    pub submit_max: u64,
    /// A receipt id with a letter a-f was seen.
    pub receipt_letters: bool,
    /// Receipt ids of digits only seen (counted up to [`DECIMAL_AFTER`]).
    pub receipt_digits: u8,
    /// The largest receipt id of hex digits, read in hex.
    pub receipt_max: u64,
}

/// An id of hex digits read in hex (`u64::MAX` when longer); `None` for
/// other ids.
pub fn hex_value(id: &str) -> Option<u64> {
    if shape(id) == IdShape::Other {
        return None;
    }
    let digits = id.trim().trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    // Only hex digits: the one error left is a number past u64.
    Some(u64::from_str_radix(digits, 16).unwrap_or(u64::MAX))
}

/// Whether a side of digits only (`max`, read in hex) is shown decimal
/// against a hex side whose largest id is `other_max`.
fn decimal_by_size(max: u64, other_max: u64) -> bool {
    max > other_max.saturating_mul(DECIMAL_BY_SIZE)
}

impl IdEvidence {
    /// The relation, once both sides have shown their base.
    pub fn known(self) -> Option<IdRelation> {
        match (self.submit_letters, self.receipt_letters) {
            (true, true) => Some(IdRelation::Same),
            (false, false) => (self.submit_digits >= DECIMAL_AFTER
                && self.receipt_digits >= DECIMAL_AFTER)
                .then_some(IdRelation::Same),
            (true, false) => decimal_by_size(self.receipt_max, self.submit_max)
                .then_some(IdRelation::HexToDecimal),
            (false, true) => decimal_by_size(self.submit_max, self.receipt_max)
                .then_some(IdRelation::DecimalToHex),
        }
    }

    /// The relation known, else the best guess: a side that showed a
    /// letter is hex, one that showed only digits decimal; `Same` until a
    /// side shows anything.
    pub fn relation(self) -> IdRelation {
        if let Some(known) = self.known() {
            return known;
        }
        let submit_hex = self.submit_letters;
        let receipt_hex = self.receipt_letters;
        if submit_hex && !receipt_hex && self.receipt_digits > 0 {
            IdRelation::HexToDecimal
        } else if receipt_hex && !submit_hex && self.submit_digits > 0 {
            IdRelation::DecimalToHex
        } else {
            IdRelation::Same
        }
    }
}

impl ReceiptIdFormat {
    /// The form a `submit_sm_resp` id is indexed under.
    pub fn submit_id(self, raw: &str) -> Cow<'_, str> {
        match self {
            ReceiptIdFormat::Exact => Cow::Borrowed(raw),
            _ => normalize(raw),
        }
    }

    /// Whether `raw`, a receipt's id, reads differently depending on a
    /// relation `auto` has not learned yet for sure (`evidence`): it is
    /// better matched once the evidence shows it.
    pub fn undecided(self, raw: &str, evidence: IdEvidence) -> bool {
        if self != ReceiptIdFormat::Auto || evidence.known().is_some() {
            return false;
        }
        let same = normalize(raw);
        decimal_as_hex(raw) != same || hex_as_decimal(raw) != same
    }

    /// The form a receipt's id is looked up under; `learned` is what the
    /// sender's ids have shown (only `auto` uses it).
    pub fn receipt_id(self, raw: &str, learned: IdRelation) -> Cow<'_, str> {
        let relation = match self {
            ReceiptIdFormat::Exact => return Cow::Borrowed(raw),
            ReceiptIdFormat::Auto => learned,
            ReceiptIdFormat::Hex | ReceiptIdFormat::Decimal => IdRelation::Same,
            ReceiptIdFormat::HexToDecimal => IdRelation::HexToDecimal,
            ReceiptIdFormat::DecimalToHex => IdRelation::DecimalToHex,
        };
        match relation {
            IdRelation::Same => normalize(raw),
            IdRelation::HexToDecimal => decimal_as_hex(raw),
            IdRelation::DecimalToHex => hex_as_decimal(raw),
        }
    }
}

/// An id of hex digits in lower case without leading zeros (`0` for
/// zeros only); any other id as given.
fn normalize(raw: &str) -> Cow<'_, str> {
    if shape(raw) == IdShape::Other {
        return Cow::Borrowed(raw);
    }
    let digits = raw.trim().trim_start_matches('0');
    match digits.is_empty() {
        true => Cow::Borrowed("0"),
        false => Cow::Owned(digits.to_ascii_lowercase()),
    }
}

/// A decimal id written as the submit side's hex; any other id normalized.
fn decimal_as_hex(raw: &str) -> Cow<'_, str> {
    match (shape(raw), raw.trim().parse::<u128>()) {
        (IdShape::Digits, Ok(n)) => Cow::Owned(format!("{n:x}")),
        _ => normalize(raw),
    }
}

/// A hex id written as the submit side's decimal; any other id normalized.
fn hex_as_decimal(raw: &str) -> Cow<'_, str> {
    let digits = raw.trim().trim_start_matches('0');
    match u128::from_str_radix(digits, 16) {
        Ok(n) if shape(raw) != IdShape::Other => Cow::Owned(n.to_string()),
        _ => normalize(raw),
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

    /// Drops the order entries of keys whose receipt came, once they are
    /// more than the keys still waiting (plus [`ORDER_SLACK`]): the order
    /// stays within twice the keys waiting, at O(1) amortized per receipt.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.index.len() + ORDER_SLACK {
            let index = &self.index;
            self.order.retain(|(_, k, id)| index.get(k) == Some(id));
        }
    }

    /// Entries in the TTL order (matched ones not yet dropped included).
    pub fn order_len(&self) -> usize {
        self.order.len()
    }

    /// Keys waiting for their receipt.
    pub fn indexed(&self) -> usize {
        self.index.len()
    }

    /// A receipt arrived at `now_ms`.
    pub fn arrived(&mut self, now_ms: i64, key: ReceiptKey, receipt: Receipt) -> Arrival {
        if let Some(id) = self.index.remove(&key) {
            self.compact_order();
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

    /// A receipt another node offers (its bind got it, several nodes):
    /// this shard's message when the key is indexed here (the key is then
    /// forgotten), else `None`, and nothing is kept.
    pub fn offered(&mut self, key: ReceiptKey) -> Option<MessageId> {
        let id = self.index.remove(&key)?;
        self.compact_order();
        Some(id)
    }

    /// Whether the early receipt of `key` still waits here.
    pub fn is_early(&self, key: ReceiptKey) -> bool {
        self.early.contains_key(&key)
    }

    /// Forgets the early receipt of `key` (another node's message took it).
    pub fn forget_early(&mut self, key: ReceiptKey) {
        self.early.remove(&key);
    }
}

#[cfg(test)]
mod tests;
