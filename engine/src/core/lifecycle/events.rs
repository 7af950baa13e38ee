//! What happens to a message, reported to its owning shard.

use crate::codes::ResultCode;
use crate::model::MessageId;

/// Something that happened to a message, reported to its owning shard.
#[derive(Debug, Clone)]
pub enum OwnerEvent {
    /// The carrier took it.
    Submitted {
        /// The message.
        id: MessageId,
        /// Through which sender.
        sender: String,
        /// The carrier's id.
        carrier_id: String,
        /// The key its receipt will come under (the carrier's id in the
        /// sender's receipt-id form).
        key: crate::core::receipts::ReceiptKey,
    },
    /// The submit failed.
    SubmitFailed {
        /// The message.
        id: MessageId,
        /// Through which sender.
        sender: String,
        /// Unified code.
        code: ResultCode,
        /// Whether to try again.
        retry: bool,
        /// Carrier detail.
        detail: String,
    },
    /// It came back unsent (queue full, session down, sender gone).
    Bounced {
        /// The message.
        id: MessageId,
    },
    /// The operator moved it to another sender's queue.
    Moved {
        /// The message.
        id: MessageId,
        /// The sender it must go to.
        to: String,
    },
    /// Route it (a new fallback message).
    Route {
        /// The message.
        id: MessageId,
    },
    /// The endpoint answered a report (2xx: delivered) or not.
    ReportOutcome {
        /// The message.
        id: MessageId,
        /// Whether the endpoint took it.
        delivered: bool,
    },
    /// The report's endpoint queue was full: the report was not tried and
    /// comes back later (our own backpressure spends no attempt).
    ReportHeldBack {
        /// The message.
        id: MessageId,
    },
    /// The receipt arrived.
    Final {
        /// The message.
        id: MessageId,
        /// Delivered or not.
        delivered: bool,
        /// Unified code.
        code: u16,
    },
}

impl OwnerEvent {
    /// The message concerned.
    pub fn id(&self) -> MessageId {
        match self {
            OwnerEvent::Submitted { id, .. }
            | OwnerEvent::SubmitFailed { id, .. }
            | OwnerEvent::Bounced { id }
            | OwnerEvent::Moved { id, .. }
            | OwnerEvent::ReportOutcome { id, .. }
            | OwnerEvent::ReportHeldBack { id }
            | OwnerEvent::Route { id }
            | OwnerEvent::Final { id, .. } => *id,
        }
    }
}
