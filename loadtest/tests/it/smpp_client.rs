//! A deliberately tiny, blocking SMPP 3.4 ESME for the tests, written apart
//! from the crate's codec so that one cannot mask the other's bugs.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use crate::DEADLINE;

pub const BIND_TRANSCEIVER: u32 = 0x09;
pub const SUBMIT_SM: u32 = 0x04;
pub const DELIVER_SM: u32 = 0x05;
pub const ENQUIRE_LINK: u32 = 0x15;
pub const UNBIND: u32 = 0x06;
pub const GENERIC_NACK: u32 = 0x8000_0000;
pub const RESP: u32 = 0x8000_0000;

/// One PDU as read from the wire.
#[derive(Debug)]
pub struct RawPdu {
    pub id: u32,
    pub status: u32,
    pub seq: u32,
    pub body: Vec<u8>,
}

pub struct Esme {
    stream: TcpStream,
    seq: u32,
}

/// A `submit_sm` to send.
#[derive(Default, Clone)]
pub struct Submit {
    pub from: String,
    pub to: String,
    pub esm_class: u8,
    pub data_coding: u8,
    pub short_message: Vec<u8>,
    pub tlvs: Vec<(u16, Vec<u8>)>,
}

/// The fields of a `deliver_sm` the tests look at.
#[derive(Debug)]
pub struct Deliver {
    pub from: String,
    pub to: String,
    pub esm_class: u8,
    pub text: String,
    pub tlvs: Vec<(u16, Vec<u8>)>,
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

impl Esme {
    pub fn connect(addr: SocketAddr) -> Esme {
        let stream = TcpStream::connect(addr).expect("connect smsc");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        Esme { stream, seq: 0 }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a request and returns its sequence number.
    pub fn send(&mut self, id: u32, body: &[u8]) -> u32 {
        self.seq += 1;
        let seq = self.seq;
        self.send_with(id, 0, seq, body);
        seq
    }

    pub fn send_with(&mut self, id: u32, status: u32, seq: u32, body: &[u8]) {
        let mut pdu = Vec::with_capacity(16 + body.len());
        pdu.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
        pdu.extend_from_slice(&id.to_be_bytes());
        pdu.extend_from_slice(&status.to_be_bytes());
        pdu.extend_from_slice(&seq.to_be_bytes());
        pdu.extend_from_slice(body);
        self.send_raw(&pdu);
    }

    /// Reads one PDU, or `None` at end of stream.
    pub fn read(&mut self) -> Option<RawPdu> {
        let mut head = [0u8; 16];
        if self.stream.read_exact(&mut head).is_err() {
            return None;
        }
        let word = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let mut body = vec![0u8; word(0) as usize - 16];
        self.stream.read_exact(&mut body).expect("read body");
        Some(RawPdu {
            id: word(4),
            status: word(8),
            seq: word(12),
            body,
        })
    }

    pub fn expect(&mut self) -> RawPdu {
        self.read().expect("a PDU, got end of stream")
    }

    /// True when the server closed the connection (end of stream or a
    /// reset) before sending anything more; false when a byte arrives or
    /// nothing happens before the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }

    /// `bind_transceiver`; returns the response status.
    pub fn bind(&mut self, system_id: &str, password: &str) -> u32 {
        self.bind_as(BIND_TRANSCEIVER, system_id, password)
    }

    /// A bind of kind `command` (transmitter 0x02, receiver 0x01,
    /// transceiver 0x09); returns the response status.
    pub fn bind_as(&mut self, command: u32, system_id: &str, password: &str) -> u32 {
        let mut body = Vec::new();
        cstr(&mut body, system_id);
        cstr(&mut body, password);
        cstr(&mut body, "");
        body.extend_from_slice(&[0x34, 0, 0]);
        cstr(&mut body, "");
        let seq = self.send(command, &body);
        let resp = self.expect();
        assert_eq!((resp.id, resp.seq), (command | RESP, seq));
        resp.status
    }

    pub fn submit(&mut self, m: &Submit) -> u32 {
        let mut body = Vec::new();
        cstr(&mut body, "");
        body.extend_from_slice(&[1, 1]);
        cstr(&mut body, &m.from);
        body.extend_from_slice(&[1, 1]);
        cstr(&mut body, &m.to);
        body.extend_from_slice(&[m.esm_class, 0, 0]);
        cstr(&mut body, "");
        cstr(&mut body, "");
        body.extend_from_slice(&[1, 0, m.data_coding, 0, m.short_message.len() as u8]);
        body.extend_from_slice(&m.short_message);
        for (tag, value) in &m.tlvs {
            body.extend_from_slice(&tag.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
        }
        self.send(SUBMIT_SM, &body)
    }

    /// Reads a `submit_sm_resp` for `seq`; returns (status, message id).
    pub fn submit_resp(&mut self, seq: u32) -> (u32, String) {
        let resp = self.expect();
        assert_eq!((resp.id, resp.seq), (SUBMIT_SM | RESP, seq), "{resp:?}");
        let id = resp.body.split(|&b| b == 0).next().unwrap_or_default();
        (resp.status, String::from_utf8_lossy(id).into_owned())
    }

    /// Reads a `deliver_sm`, answers `deliver_sm_resp`, returns it decoded.
    pub fn receipt(&mut self) -> Deliver {
        let pdu = self.expect();
        assert_eq!(pdu.id, DELIVER_SM, "{pdu:?}");
        self.send_with(DELIVER_SM | RESP, 0, pdu.seq, &[0]);
        parse_deliver(&pdu.body)
    }
}

fn parse_deliver(body: &[u8]) -> Deliver {
    let mut pos = 0;
    let cstring = |pos: &mut usize| {
        let end = body[*pos..].iter().position(|&b| b == 0).expect("NUL") + *pos;
        let s = String::from_utf8_lossy(&body[*pos..end]).into_owned();
        *pos = end + 1;
        s
    };
    cstring(&mut pos); // service_type
    pos += 2;
    let from = cstring(&mut pos);
    pos += 2;
    let to = cstring(&mut pos);
    let esm_class = body[pos];
    pos += 3;
    cstring(&mut pos);
    cstring(&mut pos);
    pos += 4;
    let len = body[pos] as usize;
    pos += 1;
    let text = String::from_utf8_lossy(&body[pos..pos + len]).into_owned();
    pos += len;
    let mut tlvs = Vec::new();
    while pos + 4 <= body.len() {
        let tag = u16::from_be_bytes([body[pos], body[pos + 1]]);
        let l = u16::from_be_bytes([body[pos + 2], body[pos + 3]]) as usize;
        tlvs.push((tag, body[pos + 4..pos + 4 + l].to_vec()));
        pos += 4 + l;
    }
    Deliver {
        from,
        to,
        esm_class,
        text,
        tlvs,
    }
}

impl Deliver {
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }
}
