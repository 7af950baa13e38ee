//! SMPP 3.4 framing and PDU codec: the 4-byte `command_length` framing is
//! ours ([`Framer`], sans-io, so it is tested without sockets), the PDU bodies
//! are encoded and decoded by `rusmpp-core` (default features off: no tokio).
//! The session only sees our own small [`Inbound`] enum and byte vectors, so
//! the rusmpp types stay inside this module. Every value here is shard-local:
//! it belongs to the one session task that created it.

use bytes::{Buf, BufMut, BytesMut};
use rusmpp_core::command::owned::Command;
use rusmpp_core::decode::owned::DecodeWithLength;
use rusmpp_core::encode::owned::Encode;
use rusmpp_core::encode::Length;
use rusmpp_core::pdus::owned::{BindTransceiver, DeliverSmResp, Pdu, SubmitSm};
use rusmpp_core::tlvs::owned::{MessageSubmissionRequestTlvValue, TlvValue};
use rusmpp_core::tlvs::TlvTag;
use rusmpp_core::types::owned::{
    AnyOctetString, COctetString, EmptyOrFullCOctetString, OctetString,
};
use rusmpp_core::values::owned::MessagePayload;
use rusmpp_core::values::{DataCoding, EsmClass, InterfaceVersion, Npi, RegisteredDelivery, Ton};
use rusmpp_core::CommandStatus;

/// The SMPP header: command_length, command_id, command_status,
/// sequence_number, four big-endian u32s.
pub const HEADER_LEN: usize = 16;

/// The largest PDU we accept from an SMSC, header included. The biggest
/// legitimate PDU an SMSC sends an ESME is a `deliver_sm` (a receipt is well
/// under 1 KiB; an MO with `message_payload` is bounded by that TLV's 16-bit
/// length), so anything above 64 KiB means the byte stream lost its framing.
/// We drop the session rather than buffer an attacker-chosen amount.
pub const MAX_PDU_LEN: usize = 64 * 1024;

/// `command_status` values this transport names (SMPP 3.4 §5.1.3).
pub mod status {
    /// No error.
    pub const ESME_ROK: u32 = 0x0000_0000;
    /// Message length is invalid.
    pub const ESME_RINVMSGLEN: u32 = 0x0000_0001;
    /// Command length is invalid.
    pub const ESME_RINVCMDLEN: u32 = 0x0000_0002;
    /// Invalid command id.
    pub const ESME_RINVCMDID: u32 = 0x0000_0003;
    /// System error.
    pub const ESME_RSYSERR: u32 = 0x0000_0008;
    /// Invalid destination address.
    pub const ESME_RINVDSTADR: u32 = 0x0000_000B;
    /// Bind failed.
    pub const ESME_RBINDFAIL: u32 = 0x0000_000D;
    /// Message queue full.
    pub const ESME_RMSGQFUL: u32 = 0x0000_0014;
    /// submit_sm failed.
    pub const ESME_RSUBMITFAIL: u32 = 0x0000_0045;
    /// Throttling error: the ESME exceeded its allowed message rate.
    pub const ESME_RTHROTTLED: u32 = 0x0000_0058;
}

/// `command_id` values this transport names (SMPP 3.4 §5.1.2).
pub mod command_id {
    /// generic_nack.
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    /// bind_transceiver.
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    /// bind_transceiver_resp.
    pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
    /// submit_sm.
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    /// submit_sm_resp.
    pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    /// deliver_sm.
    pub const DELIVER_SM: u32 = 0x0000_0005;
    /// deliver_sm_resp.
    pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
    /// unbind.
    pub const UNBIND: u32 = 0x0000_0006;
    /// unbind_resp.
    pub const UNBIND_RESP: u32 = 0x8000_0006;
    /// enquire_link.
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    /// enquire_link_resp.
    pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
    /// The bit that marks a response.
    pub const RESPONSE_BIT: u32 = 0x8000_0000;
}

/// What can go wrong turning bytes into PDUs or PDUs into bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// command_length below the header size: the stream lost its framing.
    #[error("command_length {0} is below the {HEADER_LEN}-byte header")]
    TooShort(u32),
    /// command_length above [`MAX_PDU_LEN`].
    #[error("command_length {0} is above the {MAX_PDU_LEN}-byte limit")]
    TooLong(u32),
    /// The body did not decode.
    #[error("malformed PDU (command_id {command_id:#010x}): {reason}")]
    Malformed {
        /// The PDU's command_id.
        command_id: u32,
        /// rusmpp's description.
        reason: String,
    },
    /// A value does not fit its SMPP field (e.g. a 25-digit address).
    #[error("{field} does not fit its SMPP field")]
    Field {
        /// The field.
        field: &'static str,
    },
}

impl CodecError {
    /// The unified code of a message its submit_sm could not be built for:
    /// a destination that does not fit is an invalid recipient, anything
    /// else an invalid field.
    pub fn result_code(&self) -> crate::codes::ResultCode {
        match self {
            CodecError::Field {
                field: "destination_addr",
            } => crate::codes::ResultCode::InvalidRecipient,
            _ => crate::codes::ResultCode::InvalidField,
        }
    }
}

/// Accumulates bytes from the socket and yields complete frames. Sans-io and
/// shard-local: owned by one session.
#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet a complete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame (command_length included), `None` until one
    /// is complete. A length outside `16..=MAX_PDU_LEN` is an error as soon
    /// as its four bytes arrive; the framer is then unusable (drop the
    /// session).
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>, CodecError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if (len as usize) < HEADER_LEN {
            return Err(CodecError::TooShort(len));
        }
        if len as usize > MAX_PDU_LEN {
            return Err(CodecError::TooLong(len));
        }
        if self.buf.len() < len as usize {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(len as usize)))
    }
}

/// The header fields of a frame: `(command_id, command_status, sequence_number)`.
/// `None` when the frame is shorter than a header.
pub fn header(frame: &[u8]) -> Option<(u32, u32, u32)> {
    let word = |i: usize| -> Option<u32> {
        let b = frame.get(i..i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    Some((word(4)?, word(8)?, word(12)?))
}

/// The fields of a `deliver_sm` that the session needs (receipts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deliver {
    /// esm_class (0x04 marks an SMSC delivery receipt).
    pub esm_class: u8,
    /// data_coding of the text.
    pub data_coding: u8,
    /// short_message bytes.
    pub short_message: Vec<u8>,
    /// The `message_payload` TLV (0x0424), if present.
    pub message_payload: Option<Vec<u8>>,
    /// The `receipted_message_id` TLV (0x001E), if present.
    pub receipted_message_id: Option<String>,
    /// The `message_state` TLV (0x0427), if present.
    pub message_state: Option<u8>,
}

/// A decoded PDU from the SMSC, reduced to what the session acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// bind_transceiver_resp.
    BindResp {
        /// Sequence number.
        seq: u32,
        /// command_status.
        status: u32,
    },
    /// submit_sm_resp.
    SubmitResp {
        /// Sequence number.
        seq: u32,
        /// command_status.
        status: u32,
        /// The SMSC's message id (empty on errors).
        message_id: String,
    },
    /// deliver_sm.
    DeliverSm {
        /// Sequence number.
        seq: u32,
        /// Its fields.
        deliver: Deliver,
    },
    /// enquire_link.
    EnquireLink {
        /// Sequence number.
        seq: u32,
    },
    /// enquire_link_resp.
    EnquireLinkResp {
        /// Sequence number.
        seq: u32,
    },
    /// unbind.
    Unbind {
        /// Sequence number.
        seq: u32,
    },
    /// unbind_resp.
    UnbindResp {
        /// Sequence number.
        seq: u32,
    },
    /// generic_nack.
    GenericNack {
        /// Sequence number.
        seq: u32,
        /// command_status.
        status: u32,
    },
    /// Anything else (answered with generic_nack when it is a request).
    Other {
        /// Sequence number.
        seq: u32,
        /// command_id.
        command_id: u32,
    },
}

/// Decodes one frame from [`Framer::next_frame`].
pub fn decode_frame(frame: BytesMut) -> Result<Inbound, CodecError> {
    let (command_id, _, _) = header(&frame).ok_or(CodecError::TooShort(frame.len() as u32))?;
    let mut src = frame;
    let body_len = src.len() - 4;
    src.advance(4);
    let (command, _) = <Command as DecodeWithLength>::decode(&mut src, body_len).map_err(|e| {
        CodecError::Malformed {
            command_id,
            reason: e.to_string(),
        }
    })?;
    Ok(inbound(command_id, &command))
}

fn inbound(command_id: u32, command: &Command) -> Inbound {
    let seq = command.sequence_number();
    let status = u32::from(command.status());
    match (command_id, command.pdu()) {
        (command_id::BIND_TRANSCEIVER_RESP, _) => Inbound::BindResp { seq, status },
        (command_id::SUBMIT_SM_RESP, pdu) => {
            let message_id = match pdu {
                Some(Pdu::SubmitSmResp(r)) => r.message_id().as_str().to_owned(),
                _ => String::new(),
            };
            Inbound::SubmitResp {
                seq,
                status,
                message_id,
            }
        }
        (command_id::DELIVER_SM, Some(Pdu::DeliverSm(d))) => Inbound::DeliverSm {
            seq,
            deliver: deliver_fields(d),
        },
        (command_id::ENQUIRE_LINK, _) => Inbound::EnquireLink { seq },
        (command_id::ENQUIRE_LINK_RESP, _) => Inbound::EnquireLinkResp { seq },
        (command_id::UNBIND, _) => Inbound::Unbind { seq },
        (command_id::UNBIND_RESP, _) => Inbound::UnbindResp { seq },
        (command_id::GENERIC_NACK, _) => Inbound::GenericNack { seq, status },
        _ => Inbound::Other { seq, command_id },
    }
}

fn deliver_fields(d: &rusmpp_core::pdus::owned::DeliverSm) -> Deliver {
    let mut out = Deliver {
        esm_class: u8::from(d.esm_class),
        data_coding: u8::from(d.data_coding),
        short_message: d.short_message().as_ref().to_vec(),
        ..Deliver::default()
    };
    for tlv in d.tlvs() {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => {
                out.receipted_message_id = Some(id.as_str().to_owned());
            }
            Some(TlvValue::MessageState(state)) => out.message_state = Some(u8::from(*state)),
            Some(TlvValue::MessagePayload(p)) => {
                out.message_payload = Some(p.value.as_ref().to_vec());
            }
            _ => {}
        }
    }
    out
}

/// Frames a command: the 4-byte command_length, then rusmpp's encoding.
pub fn encode(command: &Command) -> Vec<u8> {
    let len = 4 + command.length();
    let mut buf = BytesMut::with_capacity(len);
    buf.put_u32(len as u32);
    command.encode(&mut buf);
    buf.to_vec()
}

fn c_string<const MIN: usize, const MAX: usize>(
    value: &str,
    field: &'static str,
) -> Result<COctetString<MIN, MAX>, CodecError> {
    COctetString::from_string(value.to_owned()).map_err(|_| CodecError::Field { field })
}

fn ok_command(seq: u32, pdu: impl Into<Pdu>) -> Vec<u8> {
    encode(&Command::new(CommandStatus::EsmeRok, seq, pdu))
}

/// bind_transceiver, SMPP 3.4 (interface_version 0x34).
pub fn bind_transceiver(
    seq: u32,
    system_id: &str,
    password: &str,
    system_type: &str,
) -> Result<Vec<u8>, CodecError> {
    let bind = BindTransceiver::builder()
        .system_id(c_string(system_id, "system_id")?)
        .password(c_string(password, "password")?)
        .system_type(c_string(system_type, "system_type")?)
        .interface_version(InterfaceVersion::Smpp3_4)
        .build();
    Ok(ok_command(seq, bind))
}

/// enquire_link.
pub fn enquire_link(seq: u32) -> Vec<u8> {
    ok_command(seq, Pdu::EnquireLink)
}

/// enquire_link_resp.
pub fn enquire_link_resp(seq: u32) -> Vec<u8> {
    ok_command(seq, Pdu::EnquireLinkResp)
}

/// unbind.
pub fn unbind(seq: u32) -> Vec<u8> {
    ok_command(seq, Pdu::Unbind)
}

/// unbind_resp.
pub fn unbind_resp(seq: u32) -> Vec<u8> {
    ok_command(seq, Pdu::UnbindResp)
}

/// deliver_sm_resp (ESME_ROK, empty message_id as SMPP 3.4 requires).
pub fn deliver_sm_resp(seq: u32) -> Vec<u8> {
    ok_command(seq, DeliverSmResp::new(COctetString::empty(), Vec::new()))
}

/// generic_nack with `status`.
pub fn generic_nack(seq: u32, status: u32) -> Vec<u8> {
    encode(&Command::new(
        CommandStatus::from(status),
        seq,
        Pdu::GenericNack,
    ))
}

/// An SMPP address: TON, NPI and digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Type of number.
    pub ton: u8,
    /// Numbering plan indicator.
    pub npi: u8,
    /// The address (at most 20 characters).
    pub addr: String,
}

impl Address {
    /// The address for a number as the core hands it over: `+CC…` becomes
    /// international/ISDN (TON 1, NPI 1) without the `+`; a caller ID with
    /// letters is alphanumeric (TON 5, NPI 0); a Korean national `0…` number
    /// is unknown/ISDN (TON 0, NPI 1), which Korean SMSCs read as national.
    pub fn for_number(number: &str) -> Address {
        if let Some(digits) = number.strip_prefix('+') {
            Address {
                ton: 1,
                npi: 1,
                addr: digits.to_owned(),
            }
        } else if number.chars().any(|c| c.is_ascii_alphabetic()) {
            Address {
                ton: 5,
                npi: 0,
                addr: number.to_owned(),
            }
        } else {
            Address {
                ton: 0,
                npi: 1,
                addr: number.to_owned(),
            }
        }
    }
}

/// The variable fields of one submit_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitFields<'a> {
    /// source_addr.
    pub source: &'a Address,
    /// destination_addr.
    pub dest: &'a Address,
    /// esm_class (0x40 when short_message starts with a UDH).
    pub esm_class: u8,
    /// registered_delivery (1: a receipt for the final outcome).
    pub registered_delivery: u8,
    /// data_coding.
    pub data_coding: u8,
    /// short_message (at most 255 bytes; empty with `message_payload`).
    pub short_message: &'a [u8],
    /// The `message_payload` TLV, for long texts sent whole.
    pub message_payload: Option<&'a [u8]>,
    /// validity_period, in seconds from now (0: none, the SMSC's default).
    pub validity_secs: u32,
    /// The origin code optional parameter (SPEC §5.11): the sender's tag
    /// and the code's ASCII bytes (no NUL terminator).
    pub origin_code: Option<(u16, &'a [u8])>,
}

/// The origin code optional parameter of a message with `code`, under
/// `tag` (SPEC §5.11).
pub fn origin_tlv(tag: u16, code: &Option<String>) -> Option<(u16, &[u8])> {
    code.as_deref().map(|c| (tag, c.as_bytes()))
}

/// What is left of a validity ending at `expires_at_ms`, in whole seconds,
/// at least one (the session checked it has not ended).
pub fn secs_left(expires_at_ms: i64, now_ms: i64) -> u32 {
    let left_ms = expires_at_ms.saturating_sub(now_ms).max(1000);
    (left_ms / 1000).min(i64::from(u32::MAX)) as u32
}

/// An SMPP relative time (`YYMMDDhhmmss000R`, SMPP 3.4 §7.1.1) for `secs`
/// from now; a month is 30 days and a year 365, as SMSCs read them.
pub fn relative_time(secs: u32) -> String {
    let (years, rest) = (secs / (365 * 86_400), secs % (365 * 86_400));
    let (months, rest) = (rest / (30 * 86_400), rest % (30 * 86_400));
    let (days, rest) = (rest / 86_400, rest % 86_400);
    let (hours, rest) = (rest / 3_600, rest % 3_600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    format!(
        "{:02}{months:02}{days:02}{hours:02}{minutes:02}{seconds:02}000R",
        years.min(99)
    )
}

fn validity_period(secs: u32) -> Result<EmptyOrFullCOctetString<17>, CodecError> {
    if secs == 0 {
        return Ok(EmptyOrFullCOctetString::empty());
    }
    relative_time(secs).parse().map_err(|_| CodecError::Field {
        field: "validity_period",
    })
}

/// submit_sm.
pub fn submit_sm(seq: u32, f: &SubmitFields<'_>) -> Result<Vec<u8>, CodecError> {
    let short_message =
        OctetString::from_slice(f.short_message).map_err(|_| CodecError::Field {
            field: "short_message",
        })?;
    let mut sm = SubmitSm::builder()
        .source_addr_ton(Ton::from(f.source.ton))
        .source_addr_npi(Npi::from(f.source.npi))
        .source_addr(c_string(&f.source.addr, "source_addr")?)
        .dest_addr_ton(Ton::from(f.dest.ton))
        .dest_addr_npi(Npi::from(f.dest.npi))
        .destination_addr(c_string(&f.dest.addr, "destination_addr")?)
        .esm_class(EsmClass::from(f.esm_class))
        .registered_delivery(RegisteredDelivery::from(f.registered_delivery))
        .data_coding(DataCoding::from(f.data_coding))
        .short_message(short_message)
        .validity_period(validity_period(f.validity_secs)?)
        .build();
    if let Some(payload) = f.message_payload {
        if payload.len() > usize::from(u16::MAX) {
            return Err(CodecError::Field {
                field: "message_payload",
            });
        }
        sm.push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_slice(payload)),
        ));
    }
    if let Some((tag, code)) = f.origin_code {
        sm.push_tlv(MessageSubmissionRequestTlvValue::Other {
            tag: TlvTag::from(tag),
            value: AnyOctetString::from_slice(code),
        });
    }
    Ok(ok_command(seq, sm))
}

/// Whether a command_id is a response (its top bit is set).
pub fn is_response(command_id: u32) -> bool {
    command_id & command_id::RESPONSE_BIT != 0
}
