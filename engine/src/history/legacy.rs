//! History documents as the store wrote them before a field was added:
//! new documents start with [`DOC_V1`] (a first byte that no older
//! document has: bincode never starts a `u64` with 0xff), older ones are
//! read through the layouts below, field for field as they were.

use bincode::Decode;

use crate::core::lifecycle::report::ReportState;
use crate::core::lifecycle::store::{Event, MessageView, SettledMessage};
use crate::model::{Channel, Class, MessageId, Status};

/// The prefix of a document with `origin_code` in its view.
pub const DOC_V1: [u8; 2] = [0xff, 1];

/// A document before `origin_code`.
#[derive(Decode)]
pub struct SettledV0 {
    view: ViewV0,
    price: i64,
    report: ReportState,
}

/// [`MessageView`] before `origin_code`.
#[derive(Decode)]
struct ViewV0 {
    id: MessageId,
    group_code: String,
    client_id: String,
    src_msg_id: String,
    channel: Channel,
    class: Class,
    parts: u16,
    to: String,
    status: Status,
    code: u16,
    carrier: Option<String>,
    sender: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
    fallback_message_id: Option<MessageId>,
    fallback_of: Option<MessageId>,
    events: Vec<Event>,
}

impl From<SettledV0> for SettledMessage {
    fn from(d: SettledV0) -> SettledMessage {
        let v = d.view;
        SettledMessage {
            view: MessageView {
                id: v.id,
                group_code: v.group_code,
                client_id: v.client_id,
                src_msg_id: v.src_msg_id,
                channel: v.channel,
                class: v.class,
                parts: v.parts,
                to: v.to,
                status: v.status,
                code: v.code,
                carrier: v.carrier,
                sender: v.sender,
                created_at_ms: v.created_at_ms,
                updated_at_ms: v.updated_at_ms,
                fallback_message_id: v.fallback_message_id,
                fallback_of: v.fallback_of,
                events: v.events,
                origin_code: None,
            },
            price: d.price,
            report: d.report,
        }
    }
}
