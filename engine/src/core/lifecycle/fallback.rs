//! Fallback chains (SPEC §1): a failed RCS or KKO message with fallback
//! steps gets a next message on the first step's channel, linked both ways,
//! not charged and not deduplicated (its `src_msg_id` gets a `#fallbackN`
//! suffix, unique along the chain).

use super::Lifecycle;
use crate::codec::{AcceptedRecord, LinkRecord, Record};
use crate::core::{Effect, Effects};
use crate::model::{Channel, MessageId, Status};

impl Lifecycle {
    /// Creates the next message of failed message `id`'s fallback chain, if
    /// it has one, with the id `next_id` gives; it is routed next.
    pub fn fallback(
        &mut self,
        now_ms: i64,
        id: MessageId,
        next_id: impl FnOnce() -> MessageId,
        fx: &mut Effects,
    ) {
        let Some(m) = self.store.get(id) else { return };
        if !matches!(m.request.channel, Channel::Rcs | Channel::Kko) {
            return;
        }
        let mut request = m.request.unpack();
        let Some(step) = request.fallback.first().cloned() else {
            return;
        };
        if m.links.forward().is_some() {
            return;
        }
        request.channel = step.channel;
        request.text = step.text;
        request.subject = step.subject;
        request.template_code = step.template_code;
        let depth = fallback_depth(request.fallback.len());
        request.fallback.remove(0);
        request.src_msg_id = format!("{}#fallback{depth}", request.src_msg_id);
        request.send_at = None;
        request.attachments = Vec::new();
        request.parts = 1;
        let new_id = next_id();
        let rec = AcceptedRecord {
            id: new_id,
            group_code: m.group_code.to_string(),
            client_id: m.client_id.to_string(),
            created_at_ms: now_ms,
            status: Status::Accepted,
            price: 0,
            fallback_of: Some(id),
            request,
        };
        let link = LinkRecord {
            id,
            fallback_message_id: new_id,
        };
        self.store.apply_accepted(rec.clone());
        self.store.apply_link(&link);
        fx.push(Effect::Log(Record::Accepted(Box::new(rec))));
        fx.push(Effect::Log(Record::Link(link)));
        tracing::debug!(%id, fallback = %new_id, "fallback message created");
        fx.push(Effect::Route(new_id));
    }
}

/// A short suffix that stays unique along one chain.
fn fallback_depth(remaining: usize) -> usize {
    10 - remaining.min(9)
}
