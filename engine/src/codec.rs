//! The WAL record codec: the one place engine state becomes bytes.
//!
//! Each record is a `kind` byte (the WAL frames it) and a bincode 2 payload
//! (standard config: varints, little-endian). Kinds are never reused; a new
//! field means a new kind or a versioned struct, so old logs stay readable.

use bincode::{Decode, Encode};

use crate::model::{MessageId, MessageRequest, Status};

/// Record kind: a message was accepted, before requests had a `validity`
/// (read only: [`legacy::AcceptedV1`]).
pub const KIND_ACCEPTED_V1: u8 = 1;
/// Record kind: a message was accepted ([`AcceptedRecord`]).
pub const KIND_ACCEPTED: u8 = 9;
/// Record kind: a message was accepted, before `origin_code` ([`legacy::AcceptedV3`]).
pub const KIND_ACCEPTED_V3: u8 = 8;
/// Record kind: a message was accepted, before `priority` ([`legacy::AcceptedV2`]).
pub const KIND_ACCEPTED_V2: u8 = 5;
/// Record kind: a receipt came after the message expired ([`LateReceiptRecord`]).
pub const KIND_LATE_RECEIPT: u8 = 6;
/// Record kind: a message was rejected at accept by a policy check ([`BlockedRecord`]).
pub const KIND_BLOCKED: u8 = 7;
/// Record kind: a message changed state ([`StateRecord`]).
pub const KIND_STATE: u8 = 2;
/// Record kind: a report's delivery state changed ([`ReportRecord`]).
pub const KIND_REPORT: u8 = 3;
/// Record kind: a fallback message was created for a message ([`LinkRecord`]).
pub const KIND_LINK: u8 = 4;
/// Record kind: an abandoned report's message came back from the history
/// store to be sent again ([`RevivedRecord`]).
pub const KIND_REVIVED: u8 = 10;

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

/// A carrier's receipt for a message that had already expired (SPEC §5.1):
/// an event on the message, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LateReceiptRecord {
    /// The message.
    pub id: MessageId,
    /// When it came, unix ms.
    pub at_ms: i64,
    /// Whether the carrier says it was delivered.
    pub delivered: bool,
    /// The receipt's unified code.
    pub code: u16,
}

/// A message rejected at accept by a policy check (SPEC §5.4 "Blocked
/// messages"): kept for the operators' list, never sent.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct BlockedRecord {
    /// An id of the accepting shard's sequence (the message never had one
    /// of its own: it identifies the entry).
    pub id: MessageId,
    /// When, unix ms.
    pub at_ms: i64,
    /// The customer.
    pub group_code: String,
    /// The client that sent it.
    pub client_id: String,
    /// The customer's key.
    pub src_msg_id: String,
    /// Channel.
    pub channel: crate::model::Channel,
    /// Recipient.
    pub to: String,
    /// SHA-256 of the text, hex (empty without text).
    pub text_hash: String,
    /// The text's first characters.
    pub excerpt: String,
    /// The rejection's result code.
    pub code: u16,
    /// Why, in words.
    pub reason: String,
}

/// A settled message whose report was abandoned, back in its shard's
/// memory from the history store for a redrive (SPEC §5.5): everything its
/// view shows, and its report pending again on a fresh schedule. The
/// request keeps what a view shows of it (recipient, `src_msg_id`,
/// channel, class, parts, origin code); the rest was sent long ago.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RevivedRecord {
    /// The message id.
    pub id: MessageId,
    /// The customer.
    pub group_code: String,
    /// The client that sent it.
    pub client_id: String,
    /// What a view shows of the request.
    pub request: MessageRequest,
    /// Its (final) status.
    pub status: Status,
    /// Its result code.
    pub code: u16,
    /// Prepaid charge.
    pub price: i64,
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
    pub events: Vec<crate::model::Event>,
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xF)]));
    }
    out
}

/// A decoded WAL record.
// NOTE: records are short-lived (encoded or applied right away), so the size
// gap between variants costs nothing worth a Box per accepted message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// See [`AcceptedRecord`]. Boxed: it is by far the largest record, and
    /// records (in effects, in batches) are moved far more often than
    /// accepted ones are made.
    Accepted(Box<AcceptedRecord>),
    /// See [`StateRecord`].
    State(StateRecord),
    /// See [`ReportRecord`].
    Report(ReportRecord),
    /// See [`LinkRecord`].
    Link(LinkRecord),
    /// See [`LateReceiptRecord`].
    LateReceipt(LateReceiptRecord),
    /// See [`BlockedRecord`].
    Blocked(Box<BlockedRecord>),
    /// See [`RevivedRecord`].
    Revived(Box<RevivedRecord>),
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

/// Most bytes bincode may claim per payload byte while decoding a record.
///
/// bincode reserves a container's memory (length × in-memory element size)
/// before it reads the elements, so without a limit a corrupt length prefix
/// makes it allocate terabytes (abort) or overflow the capacity (panic). A
/// legitimate record never claims more than 25 bytes per payload byte: every
/// element of every container in a record encodes to at least one byte per
/// 24 bytes of its in-memory size (the worst are `(String, String)` pairs and
/// [`crate::model::Attachment`]s: 48 and 72 bytes for two and three empty
/// strings), plus one byte claimed per byte read. 64 leaves room for new
/// fields; `claim_factor_covers_worst_case_records` checks it.
const CLAIM_PER_PAYLOAD_BYTE: usize = 64;

/// Decodes with a bincode byte limit of `LIMIT` (the limit only affects
/// decoding; the encoding is the same `standard()` one).
fn decode_limited<const LIMIT: usize>(kind: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    let config = config().with_limit::<LIMIT>();
    let err = |e: bincode::error::DecodeError| DecodeError {
        kind,
        reason: e.to_string(),
    };
    match kind {
        KIND_ACCEPTED => bincode::decode_from_slice(payload, config)
            .map(|(r, _)| Record::Accepted(Box::new(r)))
            .map_err(err),
        KIND_ACCEPTED_V3 => bincode::decode_from_slice::<legacy::AcceptedV3, _>(payload, config)
            .map(|(r, _)| Record::Accepted(Box::new(r.into())))
            .map_err(err),
        KIND_ACCEPTED_V2 => bincode::decode_from_slice::<legacy::AcceptedV2, _>(payload, config)
            .map(|(r, _)| Record::Accepted(Box::new(legacy::AcceptedV3::from(r).into())))
            .map_err(err),
        KIND_ACCEPTED_V1 => bincode::decode_from_slice::<legacy::AcceptedV1, _>(payload, config)
            .map(|(r, _)| {
                let v3 = legacy::AcceptedV3::from(legacy::AcceptedV2::from(r));
                Record::Accepted(Box::new(v3.into()))
            })
            .map_err(err),
        KIND_STATE => bincode::decode_from_slice(payload, config)
            .map(|(r, _)| Record::State(r))
            .map_err(err),
        KIND_REPORT => bincode::decode_from_slice(payload, config)
            .map(|(r, _)| Record::Report(r))
            .map_err(err),
        KIND_LINK => bincode::decode_from_slice(payload, config)
            .map(|(r, _)| Record::Link(r))
            .map_err(err),
        KIND_LATE_RECEIPT => bincode::decode_from_slice(payload, config)
            .map(|(r, _)| Record::LateReceipt(r))
            .map_err(err),
        KIND_BLOCKED => bincode::decode_from_slice(payload, config)
            .map(|(r, _)| Record::Blocked(Box::new(r)))
            .map_err(err),
        KIND_REVIVED => bincode::decode_from_slice(payload, config)
            .map(|(r, _)| Record::Revived(Box::new(r)))
            .map_err(err),
        _ => Err(DecodeError {
            kind,
            reason: "unknown kind".into(),
        }),
    }
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
                encode(&|| bincode::encode_to_vec(r.as_ref(), config())),
            ),
            Record::State(r) => (KIND_STATE, encode(&|| bincode::encode_to_vec(r, config()))),
            Record::Report(r) => (KIND_REPORT, encode(&|| bincode::encode_to_vec(r, config()))),
            Record::Link(r) => (KIND_LINK, encode(&|| bincode::encode_to_vec(r, config()))),
            Record::LateReceipt(r) => (
                KIND_LATE_RECEIPT,
                encode(&|| bincode::encode_to_vec(r, config())),
            ),
            Record::Blocked(r) => (
                KIND_BLOCKED,
                encode(&|| bincode::encode_to_vec(r.as_ref(), config())),
            ),
            Record::Revived(r) => (
                KIND_REVIVED,
                encode(&|| bincode::encode_to_vec(r.as_ref(), config())),
            ),
        }
    }

    /// Decodes a record framed with `kind`. Whatever the payload says, this
    /// never panics and reserves at most 64 KiB or 1 KiB per payload byte.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Record, DecodeError> {
        // The limit is a const generic: take the smallest of a few tiers
        // (×16 apart) that covers the payload. A WAL payload is below 4 GiB
        // (its length is a u32), so the last tier always suffices.
        let claim = payload.len().saturating_mul(CLAIM_PER_PAYLOAD_BYTE);
        if claim <= 1 << 16 {
            decode_limited::<{ 1 << 16 }>(kind, payload)
        } else if claim <= 1 << 20 {
            decode_limited::<{ 1 << 20 }>(kind, payload)
        } else if claim <= 1 << 24 {
            decode_limited::<{ 1 << 24 }>(kind, payload)
        } else if claim <= 1 << 28 {
            decode_limited::<{ 1 << 28 }>(kind, payload)
        } else if claim <= 1 << 32 {
            decode_limited::<{ 1 << 32 }>(kind, payload)
        } else if claim <= 1 << 36 {
            decode_limited::<{ 1 << 36 }>(kind, payload)
        } else {
            decode_limited::<{ 1 << 40 }>(kind, payload)
        }
    }
}

/// Record layouts of earlier versions, decoded into today's types.
pub mod legacy {
    use bincode::Decode;

    use super::AcceptedRecord;
    use crate::model::{
        Attachment, Channel, Class, EmailOptions, FallbackStep, MessageId, MessageRequest,
        PushOptions, Status,
    };

    /// [`super::KIND_ACCEPTED_V1`]: an accepted message before `validity`.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    pub struct AcceptedV1 {
        id: MessageId,
        group_code: String,
        client_id: String,
        created_at_ms: i64,
        status: Status,
        price: i64,
        fallback_of: Option<MessageId>,
        request: RequestV1,
    }

    /// [`super::KIND_ACCEPTED_V2`]: an accepted message before `priority`.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    pub struct AcceptedV2 {
        id: MessageId,
        group_code: String,
        client_id: String,
        created_at_ms: i64,
        status: Status,
        price: i64,
        fallback_of: Option<MessageId>,
        request: RequestV2,
    }

    /// [`super::KIND_ACCEPTED_V3`]: an accepted message before `origin_code`.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    pub struct AcceptedV3 {
        id: MessageId,
        group_code: String,
        client_id: String,
        created_at_ms: i64,
        status: Status,
        price: i64,
        fallback_of: Option<MessageId>,
        request: RequestV3,
    }

    /// A [`MessageRequest`] before `origin_code`: [`RequestV2`] and `priority`.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    pub struct RequestV3 {
        v2: RequestV2,
        priority: Option<Class>,
    }

    /// A [`MessageRequest`] before `validity`.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    struct RequestV1 {
        src_msg_id: String,
        channel: Channel,
        bill_code: String,
        from: Option<String>,
        to: String,
        text: String,
        subject: Option<String>,
        ad: bool,
        send_at: Option<i64>,
        template_code: Option<String>,
        vars: Vec<(String, String)>,
        attachments: Vec<Attachment>,
        fallback: Vec<FallbackStep>,
        email: Option<EmailOptions>,
        push: Option<PushOptions>,
        parts: u16,
    }

    /// A [`MessageRequest`] before `priority`: [`RequestV1`] and `validity`.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    struct RequestV2 {
        v1: RequestV1,
        validity: Option<u32>,
    }

    impl From<AcceptedV1> for AcceptedV2 {
        fn from(v: AcceptedV1) -> AcceptedV2 {
            AcceptedV2 {
                id: v.id,
                group_code: v.group_code,
                client_id: v.client_id,
                created_at_ms: v.created_at_ms,
                status: v.status,
                price: v.price,
                fallback_of: v.fallback_of,
                request: RequestV2 {
                    v1: v.request,
                    validity: None,
                },
            }
        }
    }

    impl From<AcceptedV2> for AcceptedV3 {
        fn from(v: AcceptedV2) -> AcceptedV3 {
            AcceptedV3 {
                id: v.id,
                group_code: v.group_code,
                client_id: v.client_id,
                created_at_ms: v.created_at_ms,
                status: v.status,
                price: v.price,
                fallback_of: v.fallback_of,
                request: RequestV3 {
                    v2: v.request,
                    priority: None,
                },
            }
        }
    }

    impl From<AcceptedV3> for AcceptedRecord {
        fn from(v: AcceptedV3) -> AcceptedRecord {
            AcceptedRecord {
                id: v.id,
                group_code: v.group_code,
                client_id: v.client_id,
                created_at_ms: v.created_at_ms,
                status: v.status,
                price: v.price,
                fallback_of: v.fallback_of,
                request: v.request.into(),
            }
        }
    }

    impl From<RequestV3> for MessageRequest {
        fn from(v: RequestV3) -> MessageRequest {
            let r = v.v2.v1;
            MessageRequest {
                src_msg_id: r.src_msg_id,
                channel: r.channel,
                bill_code: r.bill_code,
                from: r.from,
                to: r.to,
                text: r.text,
                subject: r.subject,
                ad: r.ad,
                send_at: r.send_at,
                template_code: r.template_code,
                vars: r.vars,
                attachments: r.attachments,
                fallback: r.fallback,
                email: r.email,
                push: r.push,
                parts: r.parts,
                validity: v.v2.validity,
                priority: v.priority,
                origin_code: None,
            }
        }
    }
}

#[cfg(test)]
mod tests;
