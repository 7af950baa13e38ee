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
mod tests {
    use super::*;
    use crate::model::Channel;

    /// An empty PUSH request; tests override the fields they need.
    fn empty_request() -> MessageRequest {
        MessageRequest {
            src_msg_id: String::new(),
            channel: Channel::Push,
            bill_code: String::new(),
            from: None,
            to: String::new(),
            text: String::new(),
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
            validity: Some(86_400),
            priority: Some(crate::model::Class::Realtime),
            origin_code: None,
        }
    }

    #[test]
    fn revived_round_trip() {
        let rec = Record::Revived(Box::new(RevivedRecord {
            id: MessageId::new(1, 7),
            group_code: "A1".into(),
            client_id: "c1".into(),
            request: MessageRequest {
                src_msg_id: "order-7".into(),
                channel: Channel::Sms,
                to: "01012345678".into(),
                ..empty_request()
            },
            status: Status::Delivered,
            code: 1000,
            price: 9,
            carrier: Some("SKT".into()),
            sender: Some("S1".into()),
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_000_500,
            fallback_message_id: None,
            fallback_of: Some(MessageId::new(0, 3)),
            events: vec![crate::model::Event {
                at_ms: 1_700_000_000_000,
                status: Status::Accepted,
                code: 1000,
                late_receipt: false,
            }],
        }));
        let (kind, bytes) = rec.encode();
        assert_eq!(kind, KIND_REVIVED);
        assert_eq!(Record::decode(kind, &bytes).expect("decodes"), rec);
        assert!(Record::decode(kind, &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn accepted_round_trip() {
        let rec = Record::Accepted(Box::new(AcceptedRecord {
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
                origin_code: Some("BIZ-0001".into()),
                ..empty_request()
            },
        }));
        let (kind, bytes) = rec.encode();
        assert_eq!(kind, KIND_ACCEPTED);
        assert_eq!(Record::decode(kind, &bytes).expect("decodes"), rec);
        assert!(Record::decode(99, &bytes).is_err());
        assert!(Record::decode(KIND_ACCEPTED, &bytes[..bytes.len() / 2]).is_err());
    }

    /// Logs written before `validity`, before `priority` and before
    /// `origin_code` existed still read: the message comes back with `None`
    /// there (the configured default validity applies; the class is `ad` or
    /// `realtime`; no origin code).
    #[test]
    fn accepted_records_of_versions_1_2_and_3_still_decode() {
        let rec = AcceptedRecord {
            id: MessageId::new(0, 7),
            group_code: "G".into(),
            client_id: "c".into(),
            created_at_ms: 5,
            status: Status::Scheduled,
            price: 3,
            fallback_of: Some(MessageId::new(1, 2)),
            request: MessageRequest {
                text: "old".into(),
                send_at: Some(9),
                validity: None,
                priority: None,
                origin_code: None,
                ..empty_request()
            },
        };
        // Version 3 is today's layout without `origin_code`, the request's
        // last field, version 2 that without `priority` and version 1 that
        // without `validity`: with all `None` (a 0 byte each) the bytes
        // differ only by those.
        let (kind, mut v3) = Record::Accepted(Box::new(rec.clone())).encode();
        assert_eq!(kind, KIND_ACCEPTED);
        assert_eq!(v3.pop(), Some(0));
        let old = Record::decode(KIND_ACCEPTED_V3, &v3).expect("v3 decodes");
        assert_eq!(old, Record::Accepted(Box::new(rec.clone())));
        let mut v2 = v3;
        assert_eq!(v2.pop(), Some(0));
        let old = Record::decode(KIND_ACCEPTED_V2, &v2).expect("v2 decodes");
        assert_eq!(old, Record::Accepted(Box::new(rec.clone())));
        let mut v1 = v2;
        assert_eq!(v1.pop(), Some(0));
        let old = Record::decode(KIND_ACCEPTED_V1, &v1).expect("v1 decodes");
        assert_eq!(old, Record::Accepted(Box::new(rec)));
    }

    /// The fuzz seeds of the accepted record, kind 1 (before `validity`)
    /// and kind 9 (today's, with an origin code), read as written.
    #[test]
    fn the_accepted_fuzz_seeds_decode() {
        let seed = |name: &str| {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/wal_record/");
            std::fs::read(format!("{dir}{name}")).expect("seed exists")
        };
        let decode = |bytes: &[u8]| match Record::decode(bytes[0], &bytes[1..]) {
            Ok(Record::Accepted(r)) => r,
            other => panic!("not an accepted record: {other:?}"),
        };
        let old = decode(&seed("accepted"));
        let new = decode(&seed("accepted_origin_code"));
        assert_eq!(old.request.origin_code, None);
        assert_eq!(new.request.origin_code.as_deref(), Some("BIZ-1"));
        let without = AcceptedRecord {
            request: MessageRequest {
                origin_code: None,
                ..new.request.clone()
            },
            ..(*new).clone()
        };
        assert_eq!(without, *old);
    }

    /// A version 3 record (kind 8) keeps its `priority` when read today.
    #[test]
    fn version_3_keeps_its_priority() {
        let rec = AcceptedRecord {
            id: MessageId::new(0, 8),
            group_code: "G".into(),
            client_id: "c".into(),
            created_at_ms: 5,
            status: Status::Accepted,
            price: 0,
            fallback_of: None,
            request: MessageRequest {
                priority: Some(crate::model::Class::Otp),
                origin_code: None,
                ..empty_request()
            },
        };
        let (_, mut v3) = Record::Accepted(Box::new(rec.clone())).encode();
        assert_eq!(v3.pop(), Some(0));
        let old = Record::decode(KIND_ACCEPTED_V3, &v3).expect("v3 decodes");
        assert_eq!(old, Record::Accepted(Box::new(rec)));
    }

    /// A corrupt length prefix used to make bincode reserve it up front:
    /// capacity overflow (a panic) or a multi-terabyte allocation (an abort).
    /// Found by the `wal_record` fuzz target.
    #[test]
    fn huge_length_prefix_is_an_error_not_a_crash() {
        // AcceptedRecord: id (varint 1), then `group_code` whose length is a
        // varint with a u64 following (0xFD): 2^64-1 and 1 TiB.
        let mut overflow = vec![1u8, 0xFD];
        overflow.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut terabyte = vec![1u8, 0xFD];
        terabyte.extend_from_slice(&(1u64 << 40).to_le_bytes());
        for payload in [overflow, terabyte] {
            assert!(Record::decode(KIND_ACCEPTED, &payload).is_err());
        }
        // StateRecord: `sender` is Some (1) with a 2^62-byte string.
        let mut state = vec![1u8, 0, 0, 0, 1, 0xFD];
        state.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(Record::decode(KIND_STATE, &state).is_err());
    }

    /// The decode limit is proportional to the payload; records that hold
    /// the most memory per encoded byte (thousands of empty container
    /// elements, one kind of container at a time) must still decode.
    #[test]
    fn claim_factor_covers_worst_case_records() {
        use crate::model::{Attachment, FallbackStep, PushOptions};
        let n = 5_000;
        let base = empty_request;
        let pairs = vec![(String::new(), String::new()); n];
        let attachment = Attachment {
            name: String::new(),
            content_type: String::new(),
            data: Vec::new(),
        };
        let step = FallbackStep {
            channel: Channel::Sms,
            text: String::new(),
            subject: None,
            template_code: None,
        };
        let requests = [
            MessageRequest {
                vars: pairs.clone(),
                ..base()
            },
            MessageRequest {
                attachments: vec![attachment; n],
                ..base()
            },
            MessageRequest {
                fallback: vec![step; n],
                ..base()
            },
            MessageRequest {
                push: Some(PushOptions {
                    title: String::new(),
                    data: pairs,
                }),
                ..base()
            },
        ];
        for request in requests {
            let rec = Record::Accepted(Box::new(AcceptedRecord {
                id: MessageId::new(0, 1),
                group_code: String::new(),
                client_id: String::new(),
                created_at_ms: 0,
                status: Status::Accepted,
                price: 0,
                fallback_of: None,
                request,
            }));
            let (kind, bytes) = rec.encode();
            assert_eq!(Record::decode(kind, &bytes).expect("decodes"), rec);
        }
    }
}
