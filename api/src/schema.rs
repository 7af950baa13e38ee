//! The `POST /v1/messages` body (SPEC §2.2) turned into validated
//! [`MessageRequest`]s: the first accept check, "schema and limits" (SPEC §1).
//!
//! Two kinds of failure, on purpose: a *structural* problem (not UTF-8, not
//! JSON, an unknown field anywhere, a JSON value of the wrong type, too many
//! or no messages) fails the whole request with a [`BodyError`] (HTTP 400),
//! because the client is broken; a *content* problem of one message (a
//! missing field, a bad number, a text over the channel's limit) rejects only
//! that message with a [`Rejection`] in its slot, so the rest of a batch goes
//! on. Results keep request order.

use std::collections::BTreeMap;

use mcmp_engine::codes::ResultCode;
use mcmp_engine::model::{Channel, EmailOptions, FallbackStep, MessageRequest, PushOptions};
use serde::{Deserialize, Deserializer};

use crate::phone::{parse_caller_id, parse_recipient};
use crate::text::{lms_len, sms_parts};

/// Most messages in one request: bounds the work and the answer of one
/// request, and the time a batch holds its connection while it is made
/// durable.
pub const MAX_MESSAGES_PER_REQUEST: usize = 1000;
/// Longest `src_msg_id`, in characters: it is a dedup key kept for 24 h.
pub const MAX_SRC_MSG_ID_CHARS: usize = 100;
/// LMS/MMS body limit in EUC-KR bytes.
pub const LMS_TEXT_BYTES: usize = 2_000;
/// LMS/MMS subject limit in EUC-KR bytes.
pub const LMS_SUBJECT_BYTES: usize = 40;
/// RCS text limit in characters.
pub const RCS_TEXT_CHARS: usize = 1_300;
/// KKO (AlimTalk) text limit in characters.
pub const KKO_TEXT_CHARS: usize = 1_000;
/// E-mail subject limit in characters.
pub const EMAIL_SUBJECT_CHARS: usize = 200;
/// E-mail body limit in bytes (1 MB).
pub const EMAIL_BODY_BYTES: usize = 1024 * 1024;
/// Push title limit in characters.
pub const PUSH_TITLE_CHARS: usize = 100;
/// Push body limit in bytes (4 KB).
pub const PUSH_BODY_BYTES: usize = 4 * 1024;
/// Longest push token we accept (FCM/APNs tokens are far shorter).
pub const PUSH_TOKEN_BYTES: usize = 4 * 1024;
/// Longest fallback chain (RCS → KKO → LMS is the longest useful one).
pub const MAX_FALLBACK_STEPS: usize = 3;

/// One message refused by the schema and limit checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The message's `src_msg_id` as sent (empty if it had none).
    pub src_msg_id: String,
    /// 3001 (recipient), 3002 (over a limit) or 3013 (missing/invalid field).
    pub code: ResultCode,
    /// A human reason naming the field.
    pub reason: String,
}

/// Why a whole request body is refused (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not UTF-8.
    InvalidUtf8,
    /// The body is not JSON (the parser's message).
    InvalidJson(String),
    /// A field we do not know (its name).
    UnknownField(String),
    /// A JSON value of the wrong type (the parser's message).
    InvalidType(String),
    /// More than [`MAX_MESSAGES_PER_REQUEST`] messages (the count).
    TooManyMessages(usize),
    /// `{"messages":[]}`.
    Empty,
}

impl BodyError {
    /// The machine code of the error answer.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::InvalidUtf8 => "invalid_utf8",
            BodyError::InvalidJson(_) => "invalid_json",
            BodyError::UnknownField(_) => "unknown_field",
            BodyError::InvalidType(_) => "invalid_type",
            BodyError::TooManyMessages(_) => "too_many_messages",
            BodyError::Empty => "empty_batch",
        }
    }

    /// The human text of the error answer.
    pub fn message(&self) -> String {
        match self {
            BodyError::InvalidUtf8 => "the body is not valid UTF-8".to_owned(),
            BodyError::InvalidJson(e) => format!("the body is not valid JSON: {e}"),
            BodyError::UnknownField(f) => format!("unknown field `{f}`"),
            BodyError::InvalidType(e) => e.clone(),
            BodyError::TooManyMessages(n) => format!(
                "{n} messages in one request; at most {MAX_MESSAGES_PER_REQUEST} are allowed"
            ),
            BodyError::Empty => "the request has no messages".to_owned(),
        }
    }
}

impl From<serde_json::Error> for BodyError {
    fn from(e: serde_json::Error) -> BodyError {
        use serde_json::error::Category;
        let msg = e.to_string();
        match e.classify() {
            Category::Io | Category::Syntax | Category::Eof => BodyError::InvalidJson(msg),
            Category::Data => {
                if let Some(rest) = msg.strip_prefix("unknown field `") {
                    let name = rest.split('`').next().unwrap_or_default();
                    BodyError::UnknownField(name.to_owned())
                } else if msg.starts_with("duplicate field") {
                    BodyError::InvalidJson(msg)
                } else {
                    BodyError::InvalidType(msg)
                }
            }
        }
    }
}

/// One message as it appears on the wire; every field may be absent or
/// null here, presence is checked per message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    src_msg_id: Option<String>,
    channel: Option<String>,
    bill_code: Option<String>,
    from: Option<String>,
    to: Option<String>,
    text: Option<String>,
    subject: Option<String>,
    ad: Option<bool>,
    send_at: Option<String>,
    template_code: Option<String>,
    #[serde(default, deserialize_with = "scalar_map")]
    vars: Vec<(String, String)>,
    attachments: Option<Vec<RawAttachment>>,
    #[serde(default, deserialize_with = "fallback_chain")]
    fallback: Vec<RawStep>,
    email: Option<RawEmail>,
    push: Option<RawPush>,
    validity: Option<u64>,
    priority: Option<String>,
    origin_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    channel: Option<String>,
    text: Option<String>,
    subject: Option<String>,
    template_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    from_name: Option<String>,
    reply_to: Option<String>,
    html: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush {
    title: Option<String>,
    #[serde(default, deserialize_with = "scalar_map")]
    data: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    messages: Vec<RawMessage>,
}

/// `null` or an object of string → string | number | bool, as sorted
/// pairs with scalars stringified (`1.5` → `"1.5"`, `true` → `"true"`).
fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    use serde_json::Value;
    let map = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            _ => Err(serde::de::Error::custom(format!(
                "invalid type: `{k}` must be a string, number or boolean"
            ))),
        })
        .collect()
}

/// `null`, one step object, or an array of steps.
fn fallback_chain<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RawStep>, D::Error> {
    use serde::de::Error;
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        v @ Value::Object(_) => serde_json::from_value(v)
            .map(|s| vec![s])
            .map_err(Error::custom),
        v @ Value::Array(_) => serde_json::from_value(v).map_err(Error::custom),
        _ => Err(Error::custom(
            "invalid type: `fallback` must be an object, an array or null",
        )),
    }
}

/// Whether the body's first key is `messages` (the batch form); a single
/// message object never has that key, so this decides the form without
/// parsing twice.
fn is_batch(body: &str) -> bool {
    let rest = body.trim_start();
    let Some(rest) = rest.strip_prefix('{') else {
        return false;
    };
    rest.trim_start()
        .strip_prefix("\"messages\"")
        .is_some_and(|r| r.trim_start().starts_with(':'))
}

/// Parses a `POST /v1/messages` body: `{"messages":[…]}` or one message
/// object. Returns one result per message, in request order, or a
/// [`BodyError`] when the body as a whole is unusable. `now_ms` decides
/// whether a `send_at` is in the past.
pub fn parse_messages(
    body: &[u8],
    now_ms: i64,
) -> Result<Vec<Result<MessageRequest, Rejection>>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::InvalidUtf8)?;
    let raws = if is_batch(text) {
        serde_json::from_str::<Batch>(text)?.messages
    } else {
        vec![serde_json::from_str::<RawMessage>(text)?]
    };
    if raws.is_empty() {
        return Err(BodyError::Empty);
    }
    if raws.len() > MAX_MESSAGES_PER_REQUEST {
        return Err(BodyError::TooManyMessages(raws.len()));
    }
    Ok(raws.into_iter().map(|r| validate(r, now_ms)).collect())
}

/// A content failure before the `src_msg_id` is attached.
struct Fail(ResultCode, String);

fn field(reason: impl Into<String>) -> Fail {
    Fail(ResultCode::InvalidField, reason.into())
}

fn too_long(reason: impl Into<String>) -> Fail {
    Fail(ResultCode::BodyTooLong, reason.into())
}

fn validate(mut raw: RawMessage, now_ms: i64) -> Result<MessageRequest, Rejection> {
    let src_msg_id = raw.src_msg_id.take().unwrap_or_default();
    build(raw, &src_msg_id, now_ms).map_err(|Fail(code, reason)| Rejection {
        src_msg_id,
        code,
        reason,
    })
}

fn required(value: Option<String>, name: &str) -> Result<String, Fail> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(field(format!("`{name}` is required"))),
    }
}

fn build(raw: RawMessage, src_msg_id: &str, now_ms: i64) -> Result<MessageRequest, Fail> {
    if src_msg_id.is_empty() {
        return Err(field("`src_msg_id` is required"));
    }
    if src_msg_id.chars().count() > MAX_SRC_MSG_ID_CHARS {
        return Err(field(format!(
            "`src_msg_id` is longer than {MAX_SRC_MSG_ID_CHARS} characters"
        )));
    }
    let channel_name = required(raw.channel, "channel")?;
    let channel = Channel::parse(&channel_name)
        .ok_or_else(|| field(format!("`channel` `{channel_name}` is not a known channel")))?;
    let bill_code = required(raw.bill_code, "bill_code")?;
    let to = required(raw.to, "to")?;
    let from = check_from(channel, raw.from)?;
    let send_at = check_send_at(raw.send_at.as_deref(), now_ms)?;
    let mut req = MessageRequest {
        src_msg_id: src_msg_id.to_owned(),
        channel,
        bill_code,
        from,
        to,
        text: raw.text.unwrap_or_default(),
        subject: raw.subject,
        ad: raw.ad.unwrap_or(false),
        send_at,
        template_code: raw.template_code,
        vars: raw.vars,
        attachments: Vec::new(),
        fallback: Vec::new(),
        email: None,
        push: None,
        parts: 1,
        validity: check_validity(raw.validity)?,
        priority: check_priority(raw.priority.as_deref())?,
        origin_code: check_origin_code(raw.origin_code)?,
    };
    check_channel_fields(&req)?;
    req.attachments = check_attachments(channel, raw.attachments)?;
    req.fallback = check_fallback(channel, raw.fallback)?;
    req.email = check_email(channel, raw.email)?;
    req.push = check_push(channel, raw.push)?;
    let international = check_recipient(&mut req)?;
    req.parts = check_limits(&req, international)?;
    Ok(req)
}

/// `from`: a caller ID for phone channels (required), an address for
/// EMAIL (optional; the provider's default sender otherwise), unused else.
fn check_from(channel: Channel, from: Option<String>) -> Result<Option<String>, Fail> {
    if channel.is_phone() {
        let raw = required(from, "from")?;
        return parse_caller_id(&raw)
            .map(Some)
            .ok_or_else(|| field(format!("`from` `{raw}` is not a valid caller ID")));
    }
    match from {
        Some(f) if channel == Channel::Email && !is_email(&f) => {
            Err(field(format!("`from` `{f}` is not a valid e-mail address")))
        }
        Some(_) if channel != Channel::Email => {
            Err(field(format!("`from` is not used by {channel}")))
        }
        other => Ok(other),
    }
}

/// Which optional fields each channel uses; a field given to a channel
/// that ignores it is refused so mistakes surface at accept.
fn check_channel_fields(req: &MessageRequest) -> Result<(), Fail> {
    let ch = req.channel;
    let templated = matches!(ch, Channel::Kko | Channel::Rcs);
    if req.subject.is_some() && !matches!(ch, Channel::Lms | Channel::Mms | Channel::Email) {
        return Err(field(format!("`subject` is not used by {ch}")));
    }
    if req.template_code.is_some() && !templated {
        return Err(field(format!("`template_code` is not used by {ch}")));
    }
    if !req.vars.is_empty() && req.template_code.is_none() {
        return Err(field("`vars` need a `template_code`"));
    }
    match ch {
        Channel::Kko if req.template_code.as_deref().unwrap_or("").is_empty() => {
            Err(field("`template_code` is required for KKO"))
        }
        Channel::Rcs if req.text.is_empty() && req.template_code.is_none() => {
            Err(field("RCS needs `text` or `template_code`"))
        }
        Channel::Sms | Channel::Lms | Channel::Kko | Channel::Email if req.text.is_empty() => {
            Err(field(format!("`text` is required for {ch}")))
        }
        // NOTE: an e-mail without a subject is legal but almost always a
        // mistake (and spam filters punish it), so we require one.
        Channel::Email if req.subject.as_deref().unwrap_or("").is_empty() => {
            Err(field("`subject` is required for EMAIL"))
        }
        _ => Ok(()),
    }
}

fn check_fallback(channel: Channel, raws: Vec<RawStep>) -> Result<Vec<FallbackStep>, Fail> {
    if raws.is_empty() {
        return Ok(Vec::new());
    }
    if !matches!(channel, Channel::Rcs | Channel::Kko) {
        return Err(field(format!(
            "`fallback` is only allowed on RCS and KKO messages, not {channel}"
        )));
    }
    if raws.len() > MAX_FALLBACK_STEPS {
        return Err(field(format!(
            "`fallback` has {} steps; at most {MAX_FALLBACK_STEPS} are allowed",
            raws.len()
        )));
    }
    raws.into_iter()
        .enumerate()
        .map(|(i, s)| check_step(i, s))
        .collect()
}

fn check_step(i: usize, raw: RawStep) -> Result<FallbackStep, Fail> {
    let name = required(raw.channel, &format!("fallback[{i}].channel"))?;
    let channel = match Channel::parse(&name) {
        Some(c @ (Channel::Sms | Channel::Lms | Channel::Kko | Channel::Rcs)) => c,
        _ => {
            return Err(field(format!(
                "`fallback[{i}].channel` `{name}` must be SMS, LMS, KKO or RCS"
            )))
        }
    };
    let text = raw.text.unwrap_or_default();
    if text.is_empty() && channel != Channel::Rcs {
        return Err(field(format!("`fallback[{i}].text` is required")));
    }
    if channel == Channel::Kko && raw.template_code.as_deref().unwrap_or("").is_empty() {
        return Err(field(format!(
            "`fallback[{i}].template_code` is required for KKO"
        )));
    }
    if raw.subject.is_some() && channel != Channel::Lms {
        return Err(field(format!(
            "`fallback[{i}].subject` is only used by LMS"
        )));
    }
    if raw.template_code.is_some() && !matches!(channel, Channel::Kko | Channel::Rcs) {
        return Err(field(format!(
            "`fallback[{i}].template_code` is only used by KKO and RCS"
        )));
    }
    if channel == Channel::Rcs && text.is_empty() && raw.template_code.is_none() {
        return Err(field(format!(
            "`fallback[{i}]` needs `text` or `template_code`"
        )));
    }
    Ok(FallbackStep {
        channel,
        text,
        subject: raw.subject,
        template_code: raw.template_code,
    })
}

fn check_email(channel: Channel, raw: Option<RawEmail>) -> Result<Option<EmailOptions>, Fail> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if channel != Channel::Email {
        return Err(field(format!("`email` is not used by {channel}")));
    }
    if let Some(r) = raw.reply_to.as_deref().filter(|r| !is_email(r)) {
        return Err(field(format!(
            "`email.reply_to` `{r}` is not a valid e-mail address"
        )));
    }
    Ok(Some(EmailOptions {
        from_name: raw.from_name,
        reply_to: raw.reply_to,
        html: raw.html.unwrap_or(false),
    }))
}

fn check_push(channel: Channel, raw: Option<RawPush>) -> Result<Option<PushOptions>, Fail> {
    if channel != Channel::Push {
        return match raw {
            Some(_) => Err(field(format!("`push` is not used by {channel}"))),
            None => Ok(None),
        };
    }
    let raw = raw.ok_or_else(|| field("`push.title` is required for PUSH"))?;
    let title = required(raw.title, "push.title")?;
    if title.chars().count() > PUSH_TITLE_CHARS {
        return Err(too_long(format!(
            "`push.title` is longer than {PUSH_TITLE_CHARS} characters"
        )));
    }
    Ok(Some(PushOptions {
        title,
        data: raw.data,
    }))
}

/// Validates and normalizes `to`; returns whether it is international.
fn check_recipient(req: &mut MessageRequest) -> Result<bool, Fail> {
    let bad = |what: &str| Fail(ResultCode::InvalidRecipient, format!("`to` {what}"));
    match req.channel {
        ch if ch.is_phone() => {
            let r = parse_recipient(&req.to)
                .ok_or_else(|| bad(&format!("`{}` is not a valid phone number", req.to)))?;
            req.to = r.number;
            Ok(r.international)
        }
        Channel::Email if !is_email(&req.to) => {
            Err(bad(&format!("`{}` is not a valid e-mail address", req.to)))
        }
        Channel::Push if req.to.len() > PUSH_TOKEN_BYTES => Err(bad(&format!(
            "is longer than {PUSH_TOKEN_BYTES} bytes for a push token"
        ))),
        _ => Ok(false),
    }
}

/// Checks the body against the channel's limits (SPEC §1); returns parts.
fn check_limits(req: &MessageRequest, international: bool) -> Result<u16, Fail> {
    let subject = req.subject.as_deref().unwrap_or("");
    let parts = match req.channel {
        Channel::Sms => sms_limit(&req.text, international, "text"),
        Channel::Lms | Channel::Mms => lms_limit(&req.text, subject, "").map(|()| 1),
        Channel::Rcs => chars_limit(&req.text, RCS_TEXT_CHARS, "text"),
        Channel::Kko => chars_limit(&req.text, KKO_TEXT_CHARS, "text"),
        Channel::Email => {
            chars_limit(subject, EMAIL_SUBJECT_CHARS, "subject")?;
            bytes_limit(&req.text, EMAIL_BODY_BYTES, "text")
        }
        Channel::Push => bytes_limit(&req.text, PUSH_BODY_BYTES, "text"),
    }?;
    check_fallback_limits(&req.fallback, international)?;
    Ok(parts)
}

/// Fallback texts are checked now so a chain cannot fail later for a
/// reason the customer could have been told at accept.
fn check_fallback_limits(steps: &[FallbackStep], international: bool) -> Result<(), Fail> {
    for (i, step) in steps.iter().enumerate() {
        let name = format!("fallback[{i}].text");
        let subject = step.subject.as_deref().unwrap_or("");
        match step.channel {
            Channel::Sms => sms_limit(&step.text, international, &name).map(|_| ()),
            Channel::Lms => lms_limit(&step.text, subject, &format!("fallback[{i}].")),
            Channel::Rcs => chars_limit(&step.text, RCS_TEXT_CHARS, &name).map(|_| ()),
            _ => chars_limit(&step.text, KKO_TEXT_CHARS, &name).map(|_| ()),
        }?;
    }
    Ok(())
}

fn sms_limit(text: &str, international: bool, name: &str) -> Result<u16, Fail> {
    sms_parts(text, international)
        .map(|(_, parts)| parts)
        .map_err(|e| {
            let hint = if international { "" } else { " (use LMS)" };
            too_long(format!("`{name}`: {e}{hint}"))
        })
}

fn lms_limit(text: &str, subject: &str, prefix: &str) -> Result<(), Fail> {
    let len = lms_len(text);
    if len > LMS_TEXT_BYTES {
        return Err(too_long(format!(
            "`{prefix}text` is {len} bytes in EUC-KR; the limit is {LMS_TEXT_BYTES}"
        )));
    }
    let len = lms_len(subject);
    if len > LMS_SUBJECT_BYTES {
        return Err(too_long(format!(
            "`{prefix}subject` is {len} bytes in EUC-KR; the limit is {LMS_SUBJECT_BYTES}"
        )));
    }
    Ok(())
}

fn chars_limit(s: &str, limit: usize, name: &str) -> Result<u16, Fail> {
    if s.chars().count() > limit {
        return Err(too_long(format!(
            "`{name}` is longer than {limit} characters"
        )));
    }
    Ok(1)
}

fn bytes_limit(s: &str, limit: usize, name: &str) -> Result<u16, Fail> {
    if s.len() > limit {
        return Err(too_long(format!("`{name}` is longer than {limit} bytes")));
    }
    Ok(1)
}

mod attachments;
use attachments::{check_attachments, RawAttachment};
mod email;
use email::is_email;
mod when;
pub use attachments::{MMS_ATTACHMENT_BYTES, MMS_MAX_ATTACHMENTS, MMS_TOTAL_BYTES, RCS_MAX_FILES};
use when::{check_origin_code, check_priority, check_send_at, check_validity};
pub use when::{SEND_AT_PAST_TOLERANCE_MS, VALIDITY_SECS};

#[cfg(test)]
mod tests;
