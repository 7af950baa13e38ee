//! Settled messages leave memory for the history store (DESIGN §3
//! "Bounded state"): every tick the shard lets go of the messages the store
//! has applied, then offers the messages blocked at accept, the late
//! receipts of messages already gone, the re-driven reports (no longer
//! dead letters) and the next settled ones. A full queue at the
//! index thread only delays them; nothing waits on the store.

use super::Shard;
use crate::history::Feed;

/// Most settled messages in one hand-over.
const HAND_OVER_MAX: usize = 4096;

/// Most hand-overs one tick offers (the rest wait for the next tick).
const HAND_OVERS_PER_TICK: usize = 8;

/// Evicts what the store applied and offers what settled since.
pub fn archive(shard: &Shard) {
    let history = &shard.shared.history;
    let applied = history.applied(shard.id);
    let mut messages = shard.messages_mut();
    messages.evict_archived(applied);
    let blocked = messages.take_blocked();
    if !blocked.is_empty() {
        if let Err(Feed::Blocked(back)) = history.offer(Feed::Blocked(blocked)) {
            messages.put_back_blocked(back);
        }
    }
    let late = messages.take_late_receipts();
    if !late.is_empty() {
        if let Err(Feed::LateReceipts(back)) = history.offer(Feed::LateReceipts(late)) {
            messages.put_back_late_receipts(back);
        }
    }
    let redriven = messages.take_redriven();
    if !redriven.is_empty() {
        if let Err(Feed::Redriven(back)) = history.offer(Feed::Redriven(redriven)) {
            messages.put_back_redriven(back);
        }
    }
    for _ in 0..HAND_OVERS_PER_TICK {
        let Some((ticket, settled)) = messages.take_settled(HAND_OVER_MAX) else {
            return;
        };
        let hand_over = Feed::HandOver {
            shard: shard.id,
            ticket,
            messages: settled,
        };
        if history.offer(hand_over).is_err() {
            messages.hand_back(ticket);
            return;
        }
    }
}
