//! The WAL record codec: the one place engine state becomes bytes.
//!
//! Each record is a `kind` byte (the WAL frames it) and a bincode 2 payload
//! (standard config: varints, little-endian). Kinds are never reused; a new
//! field means a new kind or a versioned struct, so old logs stay readable.

use bincode::{Decode, Encode};

use crate::model::{MessageId, MessageRequest, Status};

/// Record kind: a message was accepted ([`AcceptedRecord`]).
pub const KIND_ACCEPTED: u8 = 1;
/// Record kind: a message changed state ([`StateRecord`]).
pub const KIND_STATE: u8 = 2;
/// Record kind: a report's delivery state changed ([`ReportRecord`]).
pub const KIND_REPORT: u8 = 3;
/// Record kind: a fallback message was created for a message ([`LinkRecord`]).
pub const KIND_LINK: u8 = 4;

/// A message as accepted: everything needed to rebuild it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct AcceptedRecord {
    /// The message id (shard + sequence).
    pub id: MessageId,
    /// The customer.
    pub group_code: String,
    /// The client that sent it.
    pub client_id: String,
    /// Accept time, unix ms.
    pub created_at_ms: i64,
    /// Initial status: `Accepted` or `Scheduled`.
    pub status: Status,
    /// What the prepaid customer was charged (0 when not prepaid).
    pub price: i64,
    /// The message this one is the fallback of.
    pub fallback_of: Option<MessageId>,
    /// The validated request.
    pub request: MessageRequest,
}

/// A state change of a message.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct StateRecord {
    /// The message.
    pub id: MessageId,
    /// The new status.
    pub status: Status,
    /// The unified result code.
    pub code: u16,
    /// When, unix ms.
    pub at_ms: i64,
    /// The sender that carried it, if any.
    pub sender: Option<String>,
    /// The carrier (`SKT`/`KT`/`LGT`/...), if known.
    pub carrier: Option<String>,
    /// The carrier's message id (at `submitted`), to match receipts.
    pub carrier_msg_id: Option<String>,
}

/// A report's delivery state after an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ReportRecord {
    /// The message.
    pub id: MessageId,
    /// Failed attempts so far.
    pub failures: u8,
    /// When the next attempt is due (unix ms).
    pub due_ms: i64,
    /// Delivered.
    pub done: bool,
    /// Given up.
    pub abandoned: bool,
}

/// The link from a failed message to its fallback.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LinkRecord {
    /// The message that failed.
    pub id: MessageId,
    /// Its fallback message.
    pub fallback_message_id: MessageId,
}

/// A decoded WAL record.
// NOTE: records are short-lived (encoded or applied right away), so the size
// gap between variants costs nothing worth a Box per accepted message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// See [`AcceptedRecord`].
    Accepted(AcceptedRecord),
    /// See [`StateRecord`].
    State(StateRecord),
    /// See [`ReportRecord`].
    Report(ReportRecord),
    /// See [`LinkRecord`].
    Link(LinkRecord),
}

/// A record that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("undecodable WAL record of kind {kind}: {reason}")]
pub struct DecodeError {
    /// The record kind byte.
    pub kind: u8,
    /// What went wrong.
    pub reason: String,
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

impl Record {
    /// Encodes into `(kind, payload)`.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        // Encoding plain structs into a Vec cannot fail.
        let encode =
            |r: &dyn Fn() -> Result<Vec<u8>, bincode::error::EncodeError>| r().unwrap_or_default();
        match self {
            Record::Accepted(r) => (
                KIND_ACCEPTED,
                encode(&|| bincode::encode_to_vec(r, config())),
            ),
            Record::State(r) => (KIND_STATE, encode(&|| bincode::encode_to_vec(r, config()))),
            Record::Report(r) => (KIND_REPORT, encode(&|| bincode::encode_to_vec(r, config()))),
            Record::Link(r) => (KIND_LINK, encode(&|| bincode::encode_to_vec(r, config()))),
        }
    }

    /// Decodes a record framed with `kind`.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Record, DecodeError> {
        let err = |e: bincode::error::DecodeError| DecodeError {
            kind,
            reason: e.to_string(),
        };
        match kind {
            KIND_ACCEPTED => bincode::decode_from_slice(payload, config())
                .map(|(r, _)| Record::Accepted(r))
                .map_err(err),
            KIND_STATE => bincode::decode_from_slice(payload, config())
                .map(|(r, _)| Record::State(r))
                .map_err(err),
            KIND_REPORT => bincode::decode_from_slice(payload, config())
                .map(|(r, _)| Record::Report(r))
                .map_err(err),
            KIND_LINK => bincode::decode_from_slice(payload, config())
                .map(|(r, _)| Record::Link(r))
                .map_err(err),
            _ => Err(DecodeError {
                kind,
                reason: "unknown kind".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Channel;

    #[test]
    fn accepted_round_trip() {
        let rec = Record::Accepted(AcceptedRecord {
            id: MessageId::new(1, 42),
            group_code: "A000005".into(),
            client_id: "c1".into(),
            created_at_ms: 1_700_000_000_000,
            status: Status::Accepted,
            price: 10,
            fallback_of: None,
            request: MessageRequest {
                src_msg_id: "order-1".into(),
                channel: Channel::Sms,
                bill_code: "B001".into(),
                from: Some("0212345678".into()),
                to: "01012345678".into(),
                text: "안녕하세요".into(),
                subject: None,
                ad: false,
                send_at: None,
                template_code: None,
                vars: vec![],
                attachments: vec![],
                fallback: vec![],
                email: None,
                push: None,
                parts: 1,
            },
        });
        let (kind, bytes) = rec.encode();
        assert_eq!(kind, KIND_ACCEPTED);
        assert_eq!(Record::decode(kind, &bytes).expect("decodes"), rec);
        assert!(Record::decode(99, &bytes).is_err());
        assert!(Record::decode(KIND_ACCEPTED, &bytes[..bytes.len() / 2]).is_err());
    }
}
