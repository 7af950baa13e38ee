//! What reads show of a message: a copy of its state.

use bincode::{Decode, Encode};

use super::{class_of, Event, StoredMessage};
use crate::model::{Channel, MessageId, Status};

/// A read-only copy of a message's state, sent across shards.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MessageView {
    /// The id.
    pub id: MessageId,
    /// The customer.
    pub group_code: String,
    /// The client that sent it.
    pub client_id: String,
    /// The customer's key.
    pub src_msg_id: String,
    /// Channel.
    pub channel: Channel,
    /// Traffic class (SPEC §5.2), shown as `priority`.
    pub class: crate::model::Class,
    /// Message parts (billed).
    pub parts: u16,
    /// Recipient.
    pub to: String,
    /// Status.
    pub status: Status,
    /// Result code.
    pub code: u16,
    /// Carrier.
    pub carrier: Option<String>,
    /// Sender.
    pub sender: Option<String>,
    /// Accept time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
    /// Fallback link (forward).
    pub fallback_message_id: Option<MessageId>,
    /// Fallback link (back).
    pub fallback_of: Option<MessageId>,
    /// Every state change.
    pub events: Vec<Event>,
    /// The reseller's origin code (SPEC §5.11).
    pub origin_code: Option<String>,
}

impl MessageView {
    /// A copy of `m`'s state.
    pub fn of(m: &StoredMessage) -> MessageView {
        MessageView {
            id: m.id,
            group_code: m.group_code.to_string(),
            client_id: m.client_id.to_string(),
            src_msg_id: m.request.src_msg_id().to_string(),
            channel: m.request.channel,
            class: class_of(&m.request),
            parts: m.request.parts,
            to: m.request.to().to_string(),
            status: m.status,
            code: m.code,
            carrier: m.carrier.as_deref().map(str::to_string),
            sender: m.sender.as_deref().map(str::to_string),
            created_at_ms: m.created_at_ms,
            updated_at_ms: m.updated_at_ms,
            fallback_message_id: m.links.forward(),
            fallback_of: m.links.back(),
            events: m.events.to_vec(),
            origin_code: m.request.origin_code().map(str::to_string),
        }
    }
}
