//! STUB (replaced on merge)
#![allow(missing_docs)]
use mcmp_engine::codes::ResultCode;
use mcmp_engine::model::{Channel, MessageRequest};
pub struct Rejection { pub src_msg_id: String, pub code: ResultCode, pub reason: String }
#[derive(Debug)]
pub enum BodyError { InvalidUtf8, InvalidJson(String), UnknownField(String), InvalidType(String), TooManyMessages(usize), Empty }
impl BodyError {
    pub fn code(&self) -> &'static str { match self { BodyError::InvalidUtf8 => "invalid_utf8", BodyError::InvalidJson(_) => "invalid_json", BodyError::UnknownField(_) => "unknown_field", BodyError::InvalidType(_) => "invalid_type", BodyError::TooManyMessages(_) => "too_many_messages", BodyError::Empty => "empty_batch" } }
    pub fn message(&self) -> String { format!("{self:?}") }
}
pub const MAX_MESSAGES_PER_REQUEST: usize = 1000;
pub fn parse_messages(body: &[u8], _now_ms: i64) -> Result<Vec<Result<MessageRequest, Rejection>>, BodyError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
    let list = match v.get("messages") { Some(serde_json::Value::Array(a)) => a.clone(), _ => vec![v] };
    if list.len() > MAX_MESSAGES_PER_REQUEST { return Err(BodyError::TooManyMessages(list.len())); }
    Ok(list.into_iter().map(|m| {
        let s = |k: &str| m.get(k).and_then(|x| x.as_str()).map(String::from);
        Ok(MessageRequest { src_msg_id: s("src_msg_id").unwrap_or_default(), channel: Channel::parse(&s("channel").unwrap_or_default()).unwrap_or(Channel::Sms), bill_code: s("bill_code").unwrap_or_default(), from: s("from"), to: s("to").unwrap_or_default(), text: s("text").unwrap_or_default(), subject: None, ad: false, send_at: None, template_code: None, vars: vec![], attachments: vec![], fallback: vec![], email: None, push: None, parts: 1 })
    }).collect())
}
