//! The domain model shared by the accept path, the WAL codec and the API:
//! channels, message statuses, message ids and the validated message request.
//!
//! These are plain data types; they live on whichever shard holds them and
//! cross cores only inside mesh batches (they are `Send`).

use std::fmt;

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

/// A message channel (SPEC §1 "Channels").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Encode, Decode,
)]
pub enum Channel {
    /// Short text.
    #[serde(rename = "SMS")]
    Sms,
    /// Long text with optional subject.
    #[serde(rename = "LMS")]
    Lms,
    /// LMS plus up to 3 JPEG attachments.
    #[serde(rename = "MMS")]
    Mms,
    /// RCS business message.
    #[serde(rename = "RCS")]
    Rcs,
    /// KakaoTalk AlimTalk.
    #[serde(rename = "KKO")]
    Kko,
    /// E-mail.
    #[serde(rename = "EMAIL")]
    Email,
    /// App push.
    #[serde(rename = "PUSH")]
    Push,
}

impl Channel {
    /// Every channel, in SPEC order.
    pub const ALL: [Channel; 7] = [
        Channel::Sms,
        Channel::Lms,
        Channel::Mms,
        Channel::Rcs,
        Channel::Kko,
        Channel::Email,
        Channel::Push,
    ];

    /// The wire name (`"SMS"`, `"LMS"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "SMS",
            Channel::Lms => "LMS",
            Channel::Mms => "MMS",
            Channel::Rcs => "RCS",
            Channel::Kko => "KKO",
            Channel::Email => "EMAIL",
            Channel::Push => "PUSH",
        }
    }

    /// Parses a wire name; `None` for an unknown channel.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the recipient and caller ID are phone numbers.
    pub fn is_phone(self) -> bool {
        matches!(
            self,
            Channel::Sms | Channel::Lms | Channel::Mms | Channel::Rcs | Channel::Kko
        )
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lifecycle state of a message (SPEC §1 "Lifecycle and reports").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Durable, not yet routed.
    Accepted,
    /// Waiting for its `send_at`.
    Scheduled,
    /// Routed to a sender's queue.
    Queued,
    /// Handed to a carrier, waiting for the receipt.
    Submitted,
    /// Final: the carrier confirmed delivery.
    Delivered,
    /// Final: the carrier or the gateway gave up.
    Failed,
    /// Final: canceled by the customer.
    Canceled,
    /// Final: rejected after acceptance (e.g. by policy).
    Rejected,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 8] = [
        Status::Accepted,
        Status::Scheduled,
        Status::Queued,
        Status::Submitted,
        Status::Delivered,
        Status::Failed,
        Status::Canceled,
        Status::Rejected,
    ];

    /// The status with this wire name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The wire name (`"accepted"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Scheduled => "scheduled",
            Status::Queued => "queued",
            Status::Submitted => "submitted",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::Rejected => "rejected",
        }
    }

    /// Whether no further state change can happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Delivered | Status::Failed | Status::Canceled | Status::Rejected
        )
    }
}

/// A message id: the accepting node in the top 8 bits (0 without
/// `[cluster]`), its shard in the next 8 and that shard's sequence number
/// in the low 48, rendered as 16 lowercase hex digits, so any shard of any
/// node can tell which shard of which node owns a message without a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct MessageId(pub u64);

impl MessageId {
    const SEQ_BITS: u32 = 48;
    const SHARD_BITS: u32 = 8;

    /// Builds the id of sequence `seq` on `shard` of node 0 (one node).
    pub fn new(shard: usize, seq: u64) -> MessageId {
        MessageId::on_node(0, shard, seq)
    }

    /// Builds the id of sequence `seq` on `shard` of `node`.
    pub fn on_node(node: u8, shard: usize, seq: u64) -> MessageId {
        let shard = (shard as u64) & ((1 << Self::SHARD_BITS) - 1);
        let top = (u64::from(node) << Self::SHARD_BITS) | shard;
        MessageId((top << Self::SEQ_BITS) | (seq & ((1 << Self::SEQ_BITS) - 1)))
    }

    /// The node that accepted (and owns) the message.
    pub fn node(self) -> u8 {
        (self.0 >> (Self::SEQ_BITS + Self::SHARD_BITS)) as u8
    }

    /// The shard that accepted (and owns) the message, on its node.
    pub fn shard(self) -> usize {
        ((self.0 >> Self::SEQ_BITS) & ((1 << Self::SHARD_BITS) - 1)) as usize
    }

    /// The sequence number within the owning shard.
    pub fn seq(self) -> u64 {
        self.0 & ((1 << Self::SEQ_BITS) - 1)
    }

    /// Parses the 16-hex-digit form; `None` for anything else.
    pub fn parse(s: &str) -> Option<MessageId> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(MessageId)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One MMS attachment (decoded from base64 at accept).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Attachment {
    /// File name as given by the customer (may be empty).
    pub name: String,
    /// MIME type; only `image/jpeg` is accepted.
    pub content_type: String,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

/// The `content_type` of an attachment that names a stored media file
/// (`"attachments":[{"file_id"}]`, SPEC §5.10) as the schema reads it;
/// `name` holds the file id, `data` is empty. The API resolves it before
/// accept (the MMS file's bytes, or the RCS provider's file id), so such an
/// attachment never reaches the engine.
pub const FILE_REF_TYPE: &str = "application/x.mcmp-file-ref";

/// The `content_type` of an RCS message's attachment: a file registered
/// with the RCS provider; `name` holds the provider's file id, `data` is
/// empty.
// NOTE: a reference rides in `Attachment`'s existing fields rather than a
// new one, so the WAL's accepted record and the checkpoints keep their
// layout; customers' inline attachments are always `image/jpeg` with data.
pub const PROVIDER_FILE_TYPE: &str = "application/x.mcmp-provider-file";

impl Attachment {
    /// An attachment naming stored file `file_id` (resolved before accept).
    pub fn file_ref(file_id: &str) -> Attachment {
        Attachment {
            name: file_id.to_owned(),
            content_type: FILE_REF_TYPE.to_owned(),
            data: Vec::new(),
        }
    }

    /// The stored file this attachment names, if it is a reference.
    pub fn file_ref_id(&self) -> Option<&str> {
        (self.content_type == FILE_REF_TYPE).then_some(self.name.as_str())
    }

    /// An attachment naming a file by the RCS provider's id.
    pub fn provider_file(provider_file_id: &str) -> Attachment {
        Attachment {
            name: provider_file_id.to_owned(),
            content_type: PROVIDER_FILE_TYPE.to_owned(),
            data: Vec::new(),
        }
    }

    /// The RCS provider's file id, if this attachment is one.
    pub fn provider_file_id(&self) -> Option<&str> {
        (self.content_type == PROVIDER_FILE_TYPE).then_some(self.name.as_str())
    }
}

/// One step of a fallback chain: the channel tried next and its text.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct FallbackStep {
    /// The next channel (`SMS`, `LMS`, `KKO`, ...).
    pub channel: Channel,
    /// The text sent on that channel.
    pub text: String,
    /// Subject, for LMS.
    pub subject: Option<String>,
    /// Template, for KKO/RCS steps.
    pub template_code: Option<String>,
}

/// E-mail specific options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode)]
pub struct EmailOptions {
    /// Display name of the sender.
    pub from_name: Option<String>,
    /// Reply-To address.
    pub reply_to: Option<String>,
    /// Whether `text` is HTML.
    pub html: bool,
}

/// Push specific options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode)]
pub struct PushOptions {
    /// Notification title (≤ 100 chars).
    pub title: String,
    /// Custom data delivered with the push, as key/value strings.
    pub data: Vec<(String, String)>,
}

/// A traffic class (SPEC §5.2; the seed's router: 인증 · 실시간 · 대량 ·
/// 광고), in the order every queue serves them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    Encode,
    Decode,
)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Authentication codes: first in every queue.
    Otp,
    /// Transactional messages (the default).
    #[default]
    Realtime,
    /// Bulk notices.
    Bulk,
    /// Advertisements: last.
    Ad,
}

impl Class {
    /// Every class, in serving order.
    pub const ALL: [Class; 4] = [Class::Otp, Class::Realtime, Class::Bulk, Class::Ad];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Otp => "otp",
            Class::Realtime => "realtime",
            Class::Bulk => "bulk",
            Class::Ad => "ad",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Its place in the serving order (0 first).
    pub fn rank(self) -> usize {
        self as usize
    }
}

/// A message as the customer asked for it, after schema and limit checks.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MessageRequest {
    /// The customer's own key, unique per customer within the dedup window.
    pub src_msg_id: String,
    /// The channel.
    pub channel: Channel,
    /// The customer's bill code.
    pub bill_code: String,
    /// Caller ID (phone channels) or sender address (EMAIL), if given.
    pub from: Option<String>,
    /// Recipient: phone number (normalized), e-mail address or push token.
    pub to: String,
    /// Body text.
    pub text: String,
    /// Subject (LMS/MMS/EMAIL).
    pub subject: Option<String>,
    /// Whether the customer marked the message as an advertisement.
    pub ad: bool,
    /// Scheduled send time, unix milliseconds.
    pub send_at: Option<i64>,
    /// Template (KKO, RCS templates).
    pub template_code: Option<String>,
    /// Template variables, sorted by name.
    pub vars: Vec<(String, String)>,
    /// MMS attachments.
    pub attachments: Vec<Attachment>,
    /// Fallback chain, tried in order when an RCS/KKO message fails.
    pub fallback: Vec<FallbackStep>,
    /// E-mail options.
    pub email: Option<EmailOptions>,
    /// Push options.
    pub push: Option<PushOptions>,
    /// Number of carrier parts (concatenated SMS); 1 for everything else.
    pub parts: u16,
    /// How long it may take to reach a final result, in seconds (SPEC
    /// §5.1), counted from `send_at` or else from accept. `None` only in
    /// records written before validity existed (the configured default
    /// applies); accept always fills it in.
    pub validity: Option<u32>,
    /// Its traffic class (SPEC §5.2): the customer's `priority`, else
    /// filled in at accept (`ad` for an ad, else the bill code's class).
    /// `None` only in records written before classes existed.
    pub priority: Option<Class>,
    /// The business that originally sent it, for a reseller's message
    /// (SPEC §5.11): 1–20 of `[0-9A-Za-z-]`, carried to the carrier.
    pub origin_code: Option<String>,
}

/// Longest origin code (SPEC §5.11).
pub const MAX_ORIGIN_CODE_CHARS: usize = 20;

/// Whether `code` is a well-formed origin code (SPEC §5.11): 1–20 of
/// `[0-9A-Za-z-]`.
pub fn is_valid_origin_code(code: &str) -> bool {
    (1..=MAX_ORIGIN_CODE_CHARS).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A 128-bit hash of `parts` (each followed by 0xff), stable within a
/// process: two SipHash-1-3 runs with fixed keys, seeded 1 and 2.
pub fn hash128(parts: &[&[u8]]) -> u128 {
    let half = |seed: u8| {
        use std::hash::{BuildHasher, Hasher};
        let mut h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        h.write_u8(seed);
        for p in parts {
            h.write(p);
            h.write_u8(0xff);
        }
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// A message as a session sends it: only what the carrier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The message (its owning shard is `id.shard()`).
    pub id: MessageId,
    /// Channel.
    pub channel: Channel,
    /// Caller ID / sender address.
    pub from: String,
    /// Recipient (Korean numbers in national `0…` form, international `+…`).
    pub to: String,
    /// Body.
    pub text: String,
    /// Subject (LMS/MMS/EMAIL).
    pub subject: Option<String>,
    /// Template (KKO/RCS).
    pub template_code: Option<String>,
    /// Template variables.
    pub vars: Vec<(String, String)>,
    /// Whether the recipient is international.
    pub international: bool,
    /// Its traffic class: queues serve `otp` first (SPEC §5.2).
    pub class: Class,
    /// When its validity ends (unix ms): never submitted after it, and the
    /// SMPP `validity_period` says how long is left.
    pub expires_at_ms: i64,
    /// The reseller's origin code (SPEC §5.11): an SMPP optional parameter,
    /// a field of the provider request.
    pub origin_code: Option<String>,
    /// MMS images (inline, or a stored file's bytes), or an RCS message's
    /// file by its provider's id ([`Attachment::provider_file_id`]).
    pub attachments: Vec<Attachment>,
}

/// What a message needs for routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// The channel.
    pub channel: Channel,
    /// The recipient.
    pub to: String,
    /// Carrier (`SKT`, ..., `UNKNOWN`, `INTL`).
    pub carrier: String,
}

impl MessageRequest {
    /// A one-part request of `channel` to `to` with nothing else (no
    /// text, bill code or options): what a view shows of a message.
    pub fn bare(src_msg_id: &str, channel: Channel, to: &str) -> MessageRequest {
        MessageRequest {
            src_msg_id: src_msg_id.into(),
            channel,
            bill_code: String::new(),
            from: None,
            to: to.into(),
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
            validity: None,
            priority: None,
            origin_code: None,
        }
    }
}

#[cfg(test)]
impl MessageRequest {
    /// A one-part SMS "hello" from 0212345678 to 01012345678 on bill code
    /// B1, for tests; they change the fields they are about.
    pub fn test_sms(src_msg_id: &str) -> MessageRequest {
        MessageRequest {
            bill_code: "B1".into(),
            from: Some("0212345678".into()),
            text: "hello".into(),
            ..MessageRequest::bare(src_msg_id, Channel::Sms, "01012345678")
        }
    }
}

/// One state change, or a late receipt, as shown in `events`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Event {
    /// When, unix ms.
    pub at_ms: i64,
    /// The status entered (a late receipt: what the carrier said,
    /// delivered or failed; the message's status does not change).
    pub status: Status,
    /// The result code.
    pub code: u16,
    /// A receipt that came after the message expired (SPEC §5.1).
    pub late_receipt: bool,
}

/// A position in an ordered listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// The time the order is by (unix ms).
    pub at_ms: i64,
    /// Tie-break.
    pub id: MessageId,
}

impl Cursor {
    /// `<ms>-<message_id>`.
    pub fn encode(&self) -> String {
        format!("{}-{}", self.at_ms, self.id)
    }

    /// Parses [`Cursor::encode`]'s form.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (ms, id) = s.split_once('-')?;
        Some(Cursor {
            at_ms: ms.parse().ok()?,
            id: MessageId::parse(id)?,
        })
    }
}
