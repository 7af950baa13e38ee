//! Dead letters brought back for a redrive (SPEC §5.5): a message that
//! left memory with its report abandoned comes back from the history
//! store's copy, and the store is told it is no dead letter any more.

use super::{LocalMessages, PackedRequest, Redriven, StoredMessage, TO_HISTORY_BOUND};
use crate::codec::RevivedRecord;
use crate::core::lifecycle::report::ReportState;
use crate::model::MessageId;

impl LocalMessages {
    /// Applies a revived record: the message is back in memory (unless it
    /// still is) with its report pending on a fresh schedule, and leaves
    /// the history store's list of dead letters.
    pub fn apply_revived(&mut self, rec: RevivedRecord) {
        let seq = rec.id.seq();
        self.max_seq = self.max_seq.max(seq);
        self.redriven(rec.id, &rec.client_id, rec.created_at_ms);
        if self.get(rec.id).is_some() {
            return;
        }
        let msg = StoredMessage {
            id: rec.id,
            group_code: self.intern(&rec.group_code),
            client_id: self.intern(&rec.client_id),
            request: PackedRequest::pack(&rec.request),
            status: rec.status,
            price: rec.price,
            code: rec.code,
            carrier: rec.carrier.map(|c| self.intern(&c)),
            sender: rec.sender.map(|s| self.intern(&s)),
            carrier_msg_id: None,
            created_at_ms: rec.created_at_ms,
            updated_at_ms: rec.updated_at_ms,
            links: super::Links::new(rec.fallback_message_id, rec.fallback_of),
            events: rec.events.into_boxed_slice(),
            report: ReportState::default(),
            backlog: false,
            handed: 0,
        };
        // It left memory once and is counted there: it counts here again
        // until it leaves again.
        let key = (msg.status, msg.request.channel, msg.group_code.clone());
        if let Some(n) = self.left.get_mut(&key) {
            *n = n.saturating_sub(1);
        }
        let net = crate::core::lifecycle::transition::net_charge(&msg);
        if net != 0 {
            *self.left_net.entry(msg.group_code.clone()).or_default() -= net;
        }
        self.insert_live(msg);
    }

    /// `id`'s abandoned report is sent again: the history store forgets it
    /// as a dead letter ([`LocalMessages::take_redriven`]).
    pub fn redriven(&mut self, id: MessageId, client_id: &str, created_at_ms: i64) {
        if self.redriven.len() < TO_HISTORY_BOUND {
            self.redriven
                .push((id, client_id.to_string(), created_at_ms));
        }
    }

    /// The re-driven reports since the last call, for the history store:
    /// (id, client, accept time).
    pub fn take_redriven(&mut self) -> Vec<Redriven> {
        std::mem::take(&mut self.redriven)
    }

    /// Re-driven reports the history store could not take yet.
    pub fn put_back_redriven(&mut self, mut back: Vec<Redriven>) {
        back.truncate(TO_HISTORY_BOUND);
        self.redriven = back;
    }
}
