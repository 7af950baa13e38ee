//! A small SMPP 3.4 PDU codec, written here on purpose: the load tool must not
//! share code with the engine's SMPP client, or a bug in one would hide the
//! same bug in the other.
//!
//! Wire format of every PDU (all integers big-endian):
//! `pdu = { u32 command_length | u32 command_id | u32 command_status |
//! u32 sequence_number | body }`, where `command_length` counts the whole PDU,
//! header included. Bodies are sequences of C-octet strings (NUL-terminated,
//! with a maximum length including the NUL), single octets, and at the end
//! optional TLVs `{ u16 tag | u16 length | value }`.
//!
//! Only the PDUs an SMSC simulator needs have typed bodies: binds,
//! `submit_sm`/`deliver_sm` (which share a layout, [`ShortMessage`]) and the
//! responses carrying a C-string.

#[cfg(test)]
mod tests;

/// Size of the fixed PDU header.
pub const HEADER_LEN: usize = 16;
/// The largest `command_length` accepted. A `submit_sm` with a full
/// `message_payload` is at most ~64 KiB; anything larger is an absurd length
/// from a broken or hostile peer, and the connection is closed rather than
/// buffering it.
pub const MAX_PDU_LEN: u32 = 64 * 1024;

/// Command ids used by the simulator (SMPP 3.4 §5.1.2.1).
pub mod cmd {
    /// `generic_nack`.
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    /// `bind_receiver`.
    pub const BIND_RECEIVER: u32 = 0x0000_0001;
    /// `bind_transmitter`.
    pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
    /// `submit_sm`.
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    /// `deliver_sm`.
    pub const DELIVER_SM: u32 = 0x0000_0005;
    /// `unbind`.
    pub const UNBIND: u32 = 0x0000_0006;
    /// `bind_transceiver`.
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    /// `enquire_link`.
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    /// The bit that turns a request id into its response id.
    pub const RESP: u32 = 0x8000_0000;
}

/// Command status values used by the simulator (SMPP 3.4 §5.1.3).
pub mod status {
    /// No error.
    pub const ESME_ROK: u32 = 0x00;
    /// Message length is invalid / malformed body.
    pub const ESME_RINVCMDLEN: u32 = 0x02;
    /// Invalid command id.
    pub const ESME_RINVCMDID: u32 = 0x03;
    /// Incorrect bind status for the given command (e.g. submit before bind).
    pub const ESME_RINVBNDSTS: u32 = 0x04;
    /// Bind failed.
    pub const ESME_RBINDFAIL: u32 = 0x0D;
    /// Invalid password.
    pub const ESME_RINVPASWD: u32 = 0x0E;
    /// Message queue full (used by `--window-check`).
    pub const ESME_RMSGQFUL: u32 = 0x14;
    /// `submit_sm` failed.
    pub const ESME_RSUBMITFAIL: u32 = 0x45;
    /// Throttling error: the ESME exceeded its allowed rate.
    pub const ESME_RTHROTTLED: u32 = 0x58;
}

/// TLV tags used by the simulator (SMPP 3.4 §5.3.2).
pub mod tag {
    /// `receipted_message_id` (C-string).
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    /// `user_message_reference` (u16): a client-supplied reference, used for
    /// duplicate detection when present.
    pub const USER_MESSAGE_REFERENCE: u16 = 0x0204;
    /// `message_payload` (octets): replaces `short_message` for long texts.
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    /// `message_state` (u8) in receipts.
    pub const MESSAGE_STATE: u16 = 0x0427;
    /// `sc_interface_version` (u8) in bind responses.
    pub const SC_INTERFACE_VERSION: u16 = 0x0210;
}

/// Why bytes could not be framed into a PDU. Either way the connection is
/// closed: the stream can no longer be trusted to be aligned on PDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// `command_length` is below the header size or above [`MAX_PDU_LEN`].
    AbsurdLength(u32),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::AbsurdLength(n) => write!(f, "absurd command_length {n}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Why a PDU body could not be decoded. The PDU was framed correctly, so the
/// connection survives: the peer gets a `generic_nack` with ESME_RINVCMDLEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body ended in the middle of the named field.
    Truncated(&'static str),
    /// A C-string had no NUL within its maximum length.
    Unterminated(&'static str),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Truncated(field) => write!(f, "body truncated in {field}"),
            BodyError::Unterminated(field) => write!(f, "C-string {field} not terminated"),
        }
    }
}

impl std::error::Error for BodyError {}

/// One PDU: the header fields and the raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    /// `command_id`.
    pub command_id: u32,
    /// `command_status`.
    pub status: u32,
    /// `sequence_number`.
    pub sequence: u32,
    /// Everything after the 16-byte header.
    pub body: Vec<u8>,
}

impl Pdu {
    /// A PDU with the given header fields and body.
    pub fn new(command_id: u32, status: u32, sequence: u32, body: Vec<u8>) -> Self {
        Pdu {
            command_id,
            status,
            sequence,
            body,
        }
    }

    /// Appends the encoded PDU to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let len = (HEADER_LEN + self.body.len()) as u32;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.command_id.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.body);
    }

    /// The encoded PDU.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        self.encode_into(&mut out);
        out
    }

    /// Decodes one PDU from the front of `buf`. Returns `Ok(None)` when more
    /// bytes are needed, `Ok(Some((pdu, consumed)))` otherwise.
    pub fn decode(buf: &[u8]) -> Result<Option<(Pdu, usize)>, FrameError> {
        let Some(len_bytes) = buf.get(..4) else {
            return Ok(None);
        };
        let len = read_u32(len_bytes);
        if len < HEADER_LEN as u32 || len > MAX_PDU_LEN {
            return Err(FrameError::AbsurdLength(len));
        }
        let Some(frame) = buf.get(..len as usize) else {
            return Ok(None);
        };
        let pdu = Pdu {
            command_id: read_u32(&frame[4..8]),
            status: read_u32(&frame[8..12]),
            sequence: read_u32(&frame[12..16]),
            body: frame[HEADER_LEN..].to_vec(),
        };
        Ok(Some((pdu, len as usize)))
    }
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A cursor over a PDU body that knows SMPP's field kinds.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, BodyError> {
        let b = *self.buf.get(self.pos).ok_or(BodyError::Truncated(field))?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], BodyError> {
        let end = self.pos.checked_add(n).ok_or(BodyError::Truncated(field))?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(BodyError::Truncated(field))?;
        self.pos = end;
        Ok(out)
    }

    /// A C-octet string of at most `max` bytes including the NUL.
    fn cstr(&mut self, max: usize, field: &'static str) -> Result<String, BodyError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return Err(BodyError::Truncated(field));
        }
        let window = &rest[..rest.len().min(max)];
        let nul = window
            .iter()
            .position(|&b| b == 0)
            .ok_or(BodyError::Unterminated(field))?;
        self.pos += nul + 1;
        Ok(String::from_utf8_lossy(&window[..nul]).into_owned())
    }

    fn tlvs(&mut self) -> Result<Vec<Tlv>, BodyError> {
        let mut out = Vec::new();
        while self.pos < self.buf.len() {
            let head = self.bytes(4, "tlv header")?;
            let tag = u16::from_be_bytes([head[0], head[1]]);
            let len = u16::from_be_bytes([head[2], head[3]]) as usize;
            let value = self.bytes(len, "tlv value")?.to_vec();
            out.push(Tlv { tag, value });
        }
        Ok(out)
    }
}

fn put_cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// One optional parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    /// The tag (see [`tag`]).
    pub tag: u16,
    /// The raw value.
    pub value: Vec<u8>,
}

impl Tlv {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.to_be_bytes());
        out.extend_from_slice(&(self.value.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.value);
    }
}

/// The body of `bind_transmitter` / `bind_receiver` / `bind_transceiver`
/// (SMPP 3.4 §4.1): `system_id(16) password(9) system_type(13)
/// interface_version addr_ton addr_npi address_range(41)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bind {
    /// Identifies the ESME.
    pub system_id: String,
    /// The ESME's password.
    pub password: String,
    /// The ESME's type (often empty).
    pub system_type: String,
    /// 0x34 for SMPP 3.4.
    pub interface_version: u8,
    /// Type of number of `address_range`.
    pub addr_ton: u8,
    /// Numbering plan of `address_range`.
    pub addr_npi: u8,
    /// Addresses served by this ESME (often empty).
    pub address_range: String,
}

impl Bind {
    /// Decodes a bind body.
    pub fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(Bind {
            system_id: r.cstr(16, "system_id")?,
            password: r.cstr(9, "password")?,
            system_type: r.cstr(13, "system_type")?,
            interface_version: r.u8("interface_version")?,
            addr_ton: r.u8("addr_ton")?,
            addr_npi: r.u8("addr_npi")?,
            address_range: r.cstr(41, "address_range")?,
        })
    }

    /// Encodes the body.
    // NOTE: the ESME side of the codec (encoding binds, decoding C-string
    // responses) is only exercised by the unit tests today; it stays so the
    // codec is symmetric and ready for the load generator.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        put_cstr(&mut out, &self.system_id);
        put_cstr(&mut out, &self.password);
        put_cstr(&mut out, &self.system_type);
        out.extend_from_slice(&[self.interface_version, self.addr_ton, self.addr_npi]);
        put_cstr(&mut out, &self.address_range);
        out
    }
}

/// The shared layout of `submit_sm` and `deliver_sm` (SMPP 3.4 §4.4.1, §4.6.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShortMessage {
    /// `service_type` (max 6).
    pub service_type: String,
    /// `source_addr_ton`.
    pub source_ton: u8,
    /// `source_addr_npi`.
    pub source_npi: u8,
    /// `source_addr` (max 21).
    pub source: String,
    /// `dest_addr_ton`.
    pub dest_ton: u8,
    /// `dest_addr_npi`.
    pub dest_npi: u8,
    /// `destination_addr` (max 21).
    pub dest: String,
    /// `esm_class`: 0x40 = UDH present, 0x04 = delivery receipt.
    pub esm_class: u8,
    /// `protocol_id`.
    pub protocol_id: u8,
    /// `priority_flag`.
    pub priority: u8,
    /// `schedule_delivery_time` (max 17).
    pub schedule_delivery_time: String,
    /// `validity_period` (max 17).
    pub validity_period: String,
    /// `registered_delivery`.
    pub registered_delivery: u8,
    /// `replace_if_present_flag`.
    pub replace_if_present: u8,
    /// `data_coding`.
    pub data_coding: u8,
    /// `sm_default_msg_id`.
    pub sm_default_msg_id: u8,
    /// `short_message` (up to 254 bytes; `sm_length` is implied).
    pub short_message: Vec<u8>,
    /// Optional parameters, in wire order.
    pub tlvs: Vec<Tlv>,
}

impl ShortMessage {
    /// Decodes a `submit_sm` or `deliver_sm` body.
    pub fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let mut m = ShortMessage {
            service_type: r.cstr(6, "service_type")?,
            source_ton: r.u8("source_addr_ton")?,
            source_npi: r.u8("source_addr_npi")?,
            source: r.cstr(21, "source_addr")?,
            dest_ton: r.u8("dest_addr_ton")?,
            dest_npi: r.u8("dest_addr_npi")?,
            dest: r.cstr(21, "destination_addr")?,
            esm_class: r.u8("esm_class")?,
            protocol_id: r.u8("protocol_id")?,
            priority: r.u8("priority_flag")?,
            schedule_delivery_time: r.cstr(17, "schedule_delivery_time")?,
            validity_period: r.cstr(17, "validity_period")?,
            registered_delivery: r.u8("registered_delivery")?,
            replace_if_present: r.u8("replace_if_present_flag")?,
            data_coding: r.u8("data_coding")?,
            sm_default_msg_id: r.u8("sm_default_msg_id")?,
            ..ShortMessage::default()
        };
        let sm_length = r.u8("sm_length")? as usize;
        m.short_message = r.bytes(sm_length, "short_message")?.to_vec();
        m.tlvs = r.tlvs()?;
        Ok(m)
    }

    /// Encodes the body. `short_message` longer than 255 bytes is the
    /// caller's mistake; it is cut to 255 so the PDU stays well-formed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.short_message.len());
        put_cstr(&mut out, &self.service_type);
        out.extend_from_slice(&[self.source_ton, self.source_npi]);
        put_cstr(&mut out, &self.source);
        out.extend_from_slice(&[self.dest_ton, self.dest_npi]);
        put_cstr(&mut out, &self.dest);
        out.extend_from_slice(&[self.esm_class, self.protocol_id, self.priority]);
        put_cstr(&mut out, &self.schedule_delivery_time);
        put_cstr(&mut out, &self.validity_period);
        out.extend_from_slice(&[
            self.registered_delivery,
            self.replace_if_present,
            self.data_coding,
            self.sm_default_msg_id,
        ]);
        let sm = &self.short_message[..self.short_message.len().min(255)];
        out.push(sm.len() as u8);
        out.extend_from_slice(sm);
        for tlv in &self.tlvs {
            tlv.encode_into(&mut out);
        }
        out
    }

    /// The value of the first TLV with `tag`.
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.value.as_slice())
    }
}

/// Decodes a body that is one C-string (`submit_sm_resp`, `bind_*_resp`),
/// ignoring trailing TLVs. An empty body (allowed on error responses) gives "".
#[cfg_attr(not(test), allow(dead_code))]
pub fn decode_cstr_body(body: &[u8], max: usize) -> Result<String, BodyError> {
    if body.is_empty() {
        return Ok(String::new());
    }
    Reader::new(body).cstr(max, "message_id")
}

/// Encodes a body that is one C-string followed by `tlvs`.
pub fn encode_cstr_body(s: &str, tlvs: &[Tlv]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 1);
    put_cstr(&mut out, s);
    for tlv in tlvs {
        tlv.encode_into(&mut out);
    }
    out
}
