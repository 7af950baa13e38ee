//! A message's request as the store keeps it: the fields the lifecycle
//! reads on every step inline, the rest encoded in one allocation
//! (DESIGN §3 "Bounded state": a queued message's body is read only when
//! it is submitted, fails over or is shown).
//!
//! A `MessageRequest` is 376 bytes inline plus an allocation per string
//! (recipient, text, ids, bill code, caller ID); packed, a typical SMS
//! takes 40 bytes inline and one allocation of about 100. Encoded in a
//! checkpoint exactly as the `MessageRequest` it packs (its bincode bytes
//! are kept as they are), so the checkpoint format does not change.

use bincode::de::Decoder;
use bincode::enc::write::Writer;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{Decode, Encode};

use crate::model::{Channel, Class, MessageRequest};

/// A packed [`MessageRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRequest {
    /// The channel.
    pub channel: Channel,
    /// Its traffic class, as the request says (see `class_of`).
    pub priority: Option<Class>,
    /// Marked as an advertisement.
    pub ad: bool,
    /// Carrier parts.
    pub parts: u16,
    /// Validity in seconds, as the request says.
    pub validity: Option<u32>,
    /// Scheduled send time, unix ms ([`NO_SEND_AT`]: none); read through
    /// [`PackedRequest::send_at`] (8 bytes where an option takes 16).
    send_at_ms: i64,
    /// The origin code's length (0: none), the origin code, then the
    /// request's bincode bytes.
    bytes: Box<[u8]>,
}

/// `send_at_ms` of a request sent at once.
const NO_SEND_AT: i64 = i64::MIN;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

impl PackedRequest {
    /// Packs `request`.
    pub fn pack(request: &MessageRequest) -> PackedRequest {
        // At most 20 bytes (checked at accept).
        let origin = request.origin_code.as_deref().unwrap_or("").as_bytes();
        let origin = &origin[..origin.len().min(255)];
        let mut bytes = Vec::with_capacity(1 + origin.len() + 96);
        bytes.push(origin.len() as u8);
        bytes.extend_from_slice(origin);
        // Encoding into a Vec cannot fail.
        let _ = bincode::encode_into_std_write(request, &mut bytes, config());
        PackedRequest {
            channel: request.channel,
            priority: request.priority,
            ad: request.ad,
            parts: request.parts,
            validity: request.validity,
            send_at_ms: request.send_at.unwrap_or(NO_SEND_AT),
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// The recipient, without decoding the rest.
    pub fn to(&self) -> &str {
        to_in(&self.bytes)
    }

    /// The customer's `src_msg_id`, without decoding the rest (it is the
    /// request's first field).
    pub fn src_msg_id(&self) -> &str {
        bincode::borrow_decode_from_slice::<&str, _>(self.encoded(), config())
            .map_or("", |(s, _)| s)
    }

    /// The origin code (SPEC §5.11), without decoding the rest.
    pub fn origin_code(&self) -> Option<&str> {
        let (at, n) = self.origin_span();
        match n {
            0 => None,
            n => self
                .bytes
                .get(at..at + n)
                .and_then(|b| std::str::from_utf8(b).ok()),
        }
    }

    /// Where the origin code starts and its length.
    fn origin_span(&self) -> (usize, usize) {
        (1, usize::from(self.bytes.first().copied().unwrap_or(0)))
    }

    fn encoded(&self) -> &[u8] {
        encoded_in(&self.bytes)
    }

    /// Scheduled send time, unix ms.
    pub fn send_at(&self) -> Option<i64> {
        (self.send_at_ms != NO_SEND_AT).then_some(self.send_at_ms)
    }

    /// The scheduled send time and the packed bytes (for the cold store).
    pub(super) fn raw(&self) -> (Option<i64>, &[u8]) {
        (self.send_at(), &self.bytes)
    }

    /// The request [`PackedRequest::raw`] and its head (channel, class,
    /// ad, parts, validity) describe.
    pub(super) fn from_raw(
        head: (Channel, Option<Class>, bool, u16, Option<u32>),
        send_at: Option<i64>,
        bytes: Box<[u8]>,
    ) -> PackedRequest {
        let (channel, priority, ad, parts, validity) = head;
        PackedRequest {
            channel,
            priority,
            ad,
            parts,
            validity,
            send_at_ms: send_at.unwrap_or(NO_SEND_AT),
            bytes,
        }
    }

    /// The whole request.
    pub fn unpack(&self) -> MessageRequest {
        let decoded = bincode::decode_from_slice(self.encoded(), config());
        // Only `pack` wrote these bytes, from a request that encoded.
        decoded.map(|(r, _)| r).unwrap_or_else(|_| MessageRequest {
            src_msg_id: String::new(),
            channel: self.channel,
            bill_code: String::new(),
            from: None,
            to: self.to().to_string(),
            text: String::new(),
            subject: None,
            ad: self.ad,
            send_at: self.send_at(),
            template_code: None,
            vars: Vec::new(),
            attachments: Vec::new(),
            fallback: Vec::new(),
            email: None,
            push: None,
            parts: self.parts,
            validity: self.validity,
            priority: self.priority,
            origin_code: self.origin_code().map(str::to_string),
        })
    }
}

/// The request's bincode bytes in packed bytes ([`PackedRequest::raw`]).
fn encoded_in(bytes: &[u8]) -> &[u8] {
    let n = usize::from(bytes.first().copied().unwrap_or(0));
    bytes.get(1 + n..).unwrap_or(&[])
}

/// The recipient in packed bytes ([`PackedRequest::raw`]): the fifth
/// field of the request's bincode bytes, read in place (the recipient is
/// not kept twice).
pub(super) fn to_in(bytes: &[u8]) -> &str {
    type Prefix<'a> = (&'a str, Channel, &'a str, Option<&'a str>, &'a str);
    let prefix = bincode::borrow_decode_from_slice::<Prefix, _>(encoded_in(bytes), config());
    prefix.map_or("", |(p, _)| p.4)
}

impl Encode for PackedRequest {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        encoder.writer().write(self.encoded())
    }
}

thread_local! {
    /// Set while a checkpoint written before origin codes is decoded.
    static BEFORE_ORIGIN_CODES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `decode` with requests read in their layout before origin codes
/// (`codec::legacy::RequestV3`): a checkpoint of that time holds them so.
pub fn before_origin_codes<T>(decode: impl FnOnce() -> T) -> T {
    BEFORE_ORIGIN_CODES.with(|b| b.set(true));
    let out = decode();
    BEFORE_ORIGIN_CODES.with(|b| b.set(false));
    out
}

impl<Context> Decode<Context> for PackedRequest {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let request = match BEFORE_ORIGIN_CODES.with(std::cell::Cell::get) {
            true => crate::codec::legacy::RequestV3::decode(decoder)?.into(),
            false => MessageRequest::decode(decoder)?,
        };
        Ok(PackedRequest::pack(&request))
    }
}

impl<'de, Context> bincode::BorrowDecode<'de, Context> for PackedRequest {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, DecodeError> {
        Decode::decode(decoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_request_unpacks_and_encodes_as_the_request() {
        let mut r = MessageRequest::test_sms("m1");
        r.to = "01012345678".into();
        r.text = "안녕하세요 hello".into();
        r.priority = Some(Class::Otp);
        let p = PackedRequest::pack(&r);
        assert_eq!(p.origin_code(), None);
        r.origin_code = Some("BIZ-0001".into());
        let p = PackedRequest::pack(&r);
        assert_eq!(p.origin_code(), Some("BIZ-0001"));
        assert_eq!(p.to(), "01012345678");
        assert_eq!(p.src_msg_id(), "m1");
        assert_eq!(p.unpack(), r);
        assert_eq!(p.channel, r.channel);
        let cfg = config();
        let as_request = bincode::encode_to_vec(&r, cfg).expect("encodes");
        assert_eq!(
            bincode::encode_to_vec(&p, cfg).expect("encodes"),
            as_request
        );
        let (back, _): (PackedRequest, usize) =
            bincode::decode_from_slice(&as_request, cfg).expect("decodes");
        assert_eq!(back, p);
    }
}
