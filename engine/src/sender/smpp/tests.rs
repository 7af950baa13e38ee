//! Tests of the SMPP transport: framing, coding and splitting, receipt and
//! status tables (sans-io), and two end-to-end runs of `run_session`
//! against a tiny SMSC served by a plain std thread.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use rusmpp_core::command::owned::Command;
use rusmpp_core::decode::owned::DecodeWithLength;
use rusmpp_core::pdus::owned::{BindTransceiverResp, DeliverSm, Pdu, SubmitSmResp};
use rusmpp_core::tlvs::owned::{MessageDeliveryRequestTlvValue, TlvValue};
use rusmpp_core::types::owned::{COctetString, OctetString};
use rusmpp_core::values::{EsmClass, MessageState};
use rusmpp_core::CommandStatus;

use super::codec::{self, command_id, status, Address, CodecError, Framer, Inbound, SubmitFields};
use super::coding::{self, PlanError, DC_GSM7, DC_KSC5601, DC_UCS2, ESM_UDHI};
use super::receipt::{self, RECEIPT_STATS, SUBMIT_STATUSES};
use super::{run_session_with_stats, SessionStats};
use crate::codes::ResultCode;
use crate::http_client::tests::on_shard;
use crate::model::{Channel, MessageId};
use crate::sender::test_support::drive;
use crate::sender::{Outbound, SessionEvent, SmppCoding, SmppConfig};

// ---- framing ----

#[test]
fn framer_yields_split_and_merged_frames() {
    let a = codec::enquire_link(1);
    let b = codec::enquire_link_resp(2);
    let mut framer = Framer::new();
    framer.push(&a[..3]);
    assert_eq!(framer.next_frame(), Ok(None));
    framer.push(&a[3..10]);
    assert_eq!(framer.next_frame(), Ok(None));
    let mut rest = a[10..].to_vec();
    rest.extend_from_slice(&b);
    framer.push(&rest);
    let first = framer.next_frame().expect("ok").expect("frame");
    assert_eq!(&first[..], &a[..]);
    let second = framer.next_frame().expect("ok").expect("frame");
    assert_eq!(
        codec::decode_frame(second),
        Ok(Inbound::EnquireLinkResp { seq: 2 })
    );
    assert_eq!(framer.next_frame(), Ok(None));
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn framer_rejects_absurd_lengths_as_soon_as_read() {
    let mut framer = Framer::new();
    framer.push(&[0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(framer.next_frame(), Err(CodecError::TooLong(u32::MAX)));
    let mut framer = Framer::new();
    framer.push(&[0, 0, 0, 15]);
    assert_eq!(framer.next_frame(), Err(CodecError::TooShort(15)));
    let mut framer = Framer::new();
    framer.push(&((codec::MAX_PDU_LEN as u32) + 1).to_be_bytes());
    assert!(matches!(framer.next_frame(), Err(CodecError::TooLong(_))));
}

#[test]
fn malformed_body_is_an_error() {
    // A submit_sm_resp whose message_id has no NUL terminator.
    let mut frame = vec![0, 0, 0, 20];
    frame.extend_from_slice(&command_id::SUBMIT_SM_RESP.to_be_bytes());
    frame.extend_from_slice(&0u32.to_be_bytes());
    frame.extend_from_slice(&7u32.to_be_bytes());
    frame.extend_from_slice(b"abcd");
    let mut framer = Framer::new();
    framer.push(&frame);
    let frame = framer.next_frame().expect("ok").expect("frame");
    assert!(matches!(
        codec::decode_frame(frame),
        Err(CodecError::Malformed { .. })
    ));
}

fn decode_command(bytes: &[u8]) -> Command {
    let mut src = bytes::BytesMut::from(&bytes[4..]);
    let len = src.len();
    <Command as DecodeWithLength>::decode(&mut src, len)
        .expect("decodes")
        .0
}

#[test]
fn submit_sm_encodes_fields_and_payload() {
    let source = Address::for_number("0215881234");
    let dest = Address::for_number("+8210");
    assert_eq!((dest.ton, dest.npi, dest.addr.as_str()), (1, 1, "8210"));
    let payload = vec![b'x'; 300];
    let fields = SubmitFields {
        source: &source,
        dest: &dest,
        esm_class: 0,
        registered_delivery: 1,
        data_coding: DC_KSC5601,
        short_message: &[],
        message_payload: Some(&payload),
        validity_secs: 86_400 + 3_661,
        origin_code: None,
    };
    let bytes = codec::submit_sm(9, &fields).expect("encodes");
    assert_eq!(
        u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
        bytes.len()
    );
    let command = decode_command(&bytes);
    assert_eq!(command.sequence_number(), 9);
    let Some(Pdu::SubmitSm(sm)) = command.pdu() else {
        panic!("not a submit_sm: {command:?}");
    };
    assert_eq!(sm.destination_addr.as_str(), "8210");
    assert_eq!(u8::from(sm.data_coding), DC_KSC5601);
    assert!(sm.short_message().is_empty());
    assert_eq!(sm.validity_period.to_string(), "000001010101000R");
    let carried = sm.tlvs().iter().find_map(|t| match t.value() {
        Some(TlvValue::MessagePayload(p)) => Some(p.value.as_ref().to_vec()),
        _ => None,
    });
    assert_eq!(carried, Some(payload));
}

/// SPEC §5.11: the origin code goes out as an optional parameter under the
/// sender's tag, its ASCII bytes as the value.
#[test]
fn submit_sm_carries_the_origin_code_under_the_senders_tag() {
    let source = Address::for_number("0215881234");
    let dest = Address::for_number("01012345678");
    let code = Some("BIZ-0001".to_string());
    let fields = SubmitFields {
        source: &source,
        dest: &dest,
        esm_class: 0,
        registered_delivery: 1,
        data_coding: 0,
        short_message: b"hi",
        message_payload: None,
        validity_secs: 0,
        origin_code: codec::origin_tlv(0x1520, &code),
    };
    let bytes = codec::submit_sm(3, &fields).expect("encodes");
    // The TLV is last: tag, length, value.
    let tail = [&[0x15u8, 0x20, 0, 8][..], b"BIZ-0001"].concat();
    assert!(bytes.ends_with(&tail), "{bytes:02x?}");
    let command = decode_command(&bytes);
    let Some(Pdu::SubmitSm(sm)) = command.pdu() else {
        panic!("not a submit_sm: {command:?}");
    };
    assert_eq!(sm.tlvs().len(), 1);
    assert_eq!(codec::origin_tlv(0x1520, &None), None);
}

#[test]
fn too_long_destination_is_a_field_error() {
    let source = Address::for_number("0215881234");
    let dest = Address::for_number("0123456789012345678901234");
    let fields = SubmitFields {
        source: &source,
        dest: &dest,
        esm_class: 0,
        registered_delivery: 1,
        data_coding: 0,
        short_message: b"hi",
        message_payload: None,
        validity_secs: 0,
        origin_code: None,
    };
    assert_eq!(
        codec::submit_sm(1, &fields),
        Err(CodecError::Field {
            field: "destination_addr"
        })
    );
}

// ---- coding ----

#[test]
fn coding_choice() {
    let euc = coding::encode_text("안녕하세요 MCMP", false, SmppCoding::EucKr);
    assert_eq!(euc.data_coding, DC_KSC5601);
    assert_eq!(euc.bytes.len(), 15); // 5 Hangul × 2 + 5 ASCII
                                     // An emoji is outside KS C 5601: UCS-2.
    assert_eq!(
        coding::encode_text("안녕 😀", false, SmppCoding::EucKr).data_coding,
        DC_UCS2
    );
    // 똠 is windows-949 only, not KS X 1001.
    assert_eq!(
        coding::encode_text("똠", false, SmppCoding::EucKr).data_coding,
        DC_UCS2
    );
    assert_eq!(
        coding::encode_text("hello", false, SmppCoding::Ucs2).data_coding,
        DC_UCS2
    );
    assert_eq!(
        coding::encode_text("hello", false, SmppCoding::Gsm7).data_coding,
        DC_GSM7
    );
    let intl = coding::encode_text("Hi {€}", true, SmppCoding::EucKr);
    assert_eq!(intl.data_coding, DC_GSM7);
    assert_eq!(
        intl.bytes,
        vec![0x48, 0x69, 0x20, 0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29]
    );
    assert_eq!(
        coding::encode_text("Привет", true, SmppCoding::EucKr).data_coding,
        DC_UCS2
    );
}

#[test]
fn coding_round_trips_through_the_simulator_mapping() {
    for (text, international, default) in [
        ("@£$ Hello [x] ~ ü", true, SmppCoding::EucKr),
        ("안녕하세요", false, SmppCoding::EucKr),
        ("😀 surrogate", false, SmppCoding::Ucs2),
    ] {
        let e = coding::encode_text(text, international, default);
        assert_eq!(
            coding::decode_text(e.data_coding, &e.bytes).as_deref(),
            Some(text)
        );
    }
    assert_eq!(
        coding::decode_text(0x03, &[0x48, 0xE9]).as_deref(),
        Some("Hé")
    );
}

#[test]
fn short_text_is_one_plain_part() {
    let plan = coding::plan(&"a".repeat(160), true, SmppCoding::EucKr, 1).expect("plans");
    assert_eq!(plan.parts.len(), 1);
    assert_eq!(plan.parts[0].esm_class, 0);
    assert_eq!(plan.parts[0].short_message.len(), 160);
}

#[test]
fn domestic_long_text_uses_message_payload() {
    let text = "가".repeat(71); // 142 octets in EUC-KR
    let plan = coding::plan(&text, false, SmppCoding::EucKr, 1).expect("plans");
    assert_eq!(plan.parts.len(), 1);
    assert!(plan.parts[0].short_message.is_empty());
    assert_eq!(
        plan.parts[0].message_payload.as_ref().map(Vec::len),
        Some(142)
    );
    let huge = "a".repeat(coding::MAX_PAYLOAD + 1);
    assert!(matches!(
        coding::plan(&huge, false, SmppCoding::EucKr, 1),
        Err(PlanError::PayloadTooLong(_))
    ));
}

#[test]
fn international_long_gsm_text_is_concatenated_with_udh() {
    let text = "a".repeat(161);
    let plan = coding::plan(&text, true, SmppCoding::EucKr, 7).expect("plans");
    assert_eq!(plan.data_coding, DC_GSM7);
    assert_eq!(plan.parts.len(), 2);
    assert_eq!(&plan.parts[0].short_message[..6], &[5, 0, 3, 7, 2, 1]);
    assert_eq!(&plan.parts[1].short_message[..6], &[5, 0, 3, 7, 2, 2]);
    assert_eq!(plan.parts[0].short_message.len() - 6, coding::PART_SEPTETS);
    assert_eq!(plan.parts[1].short_message.len() - 6, 8);
    assert!(plan.parts.iter().all(|p| p.esm_class == ESM_UDHI));
}

#[test]
fn splitting_never_cuts_a_gsm_escape() {
    // 152 plain septets then '€' (2 septets): the escape must move whole.
    let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
    let plan = coding::plan(&text, true, SmppCoding::EucKr, 1).expect("plans");
    let first = &plan.parts[0].short_message[6..];
    assert_eq!(first.len(), 152);
    assert_eq!(&plan.parts[1].short_message[6..8], &[0x1B, 0x65]);
}

#[test]
fn splitting_never_cuts_a_surrogate_pair() {
    // 66 BMP characters then an emoji (a surrogate pair): part 1 holds 66
    // code units, not 67.
    let text = format!("{}😀{}", "Ж".repeat(66), "Ж".repeat(10));
    let plan = coding::plan(&text, true, SmppCoding::EucKr, 1).expect("plans");
    assert_eq!(plan.data_coding, DC_UCS2);
    assert_eq!(plan.parts[0].short_message.len() - 6, 132);
    let second = &plan.parts[1].short_message[6..];
    assert_eq!(&second[..4], &[0xD8, 0x3D, 0xDE, 0x00]);
    // Whole 67-unit parts when there is no pair at the edge.
    let plain = coding::plan(&"Ж".repeat(70), true, SmppCoding::EucKr, 1).expect("plans");
    assert_eq!(plain.parts[0].short_message.len() - 6, coding::PART_OCTETS);
}

#[test]
fn too_many_parts_is_refused() {
    let text = "Ж".repeat(67 * 256);
    assert_eq!(
        coding::plan(&text, true, SmppCoding::EucKr, 1),
        Err(PlanError::TooManyParts(256))
    );
}

// ---- receipts and tables ----

fn receipt_deliver(text: &str) -> codec::Deliver {
    codec::Deliver {
        esm_class: receipt::ESM_RECEIPT,
        short_message: text.as_bytes().to_vec(),
        ..codec::Deliver::default()
    }
}

#[test]
fn receipt_text_is_parsed_tolerantly() {
    let r = receipt::parse_receipt(&receipt_deliver(
        "id:ABC123 sub:001 dlvrd:001 submit date:2401010000 done date:2401010001 stat:DELIVRD err:000 text:hello",
    ))
    .expect("receipt");
    assert_eq!(r.carrier_id, "ABC123");
    assert_eq!(r.code, Some(ResultCode::Delivered));
    assert_eq!(r.detail(), "stat:DELIVRD err:000");
    let lower = receipt::parse_receipt(&receipt_deliver("ID:x1 Stat:undeliv")).expect("receipt");
    assert_eq!(
        (lower.carrier_id.as_str(), lower.code),
        ("x1", Some(ResultCode::Undeliverable))
    );
    assert_eq!(lower.err, None);
    let accepted = receipt::parse_receipt(&receipt_deliver("id:9 stat:ACCEPTD")).expect("receipt");
    assert_eq!(accepted.code, None);
    assert!(receipt::parse_receipt(&receipt_deliver("stat:DELIVRD")).is_none());
    // Not a receipt: an MO message.
    let mo = codec::Deliver {
        esm_class: 0,
        ..receipt_deliver("id:1 stat:DELIVRD")
    };
    assert!(receipt::parse_receipt(&mo).is_none());
}

#[test]
fn receipt_err_refines_a_failure_but_never_a_delivery() {
    let code = |text: &str| {
        receipt::parse_receipt(&receipt_deliver(text))
            .expect("receipt")
            .code
    };
    assert_eq!(
        code("id:1 stat:UNDELIV err:088"),
        Some(ResultCode::PortedOut)
    );
    assert_eq!(
        code("id:1 stat:REJECTD err:88"),
        Some(ResultCode::PortedOut)
    );
    assert_eq!(
        code("id:1 stat:UNDELIV err:001"),
        Some(ResultCode::Undeliverable)
    );
    assert_eq!(
        code("id:1 stat:UNDELIV err:000"),
        Some(ResultCode::Undeliverable)
    );
    assert_eq!(
        code("id:1 stat:DELIVRD err:088"),
        Some(ResultCode::Delivered)
    );
    assert_eq!(code("id:1 stat:ENROUTE err:088"), None, "not final");
}

#[test]
fn receipt_tlvs_win_over_text() {
    let sm = DeliverSm::builder()
        .esm_class(EsmClass::from(0x04))
        .short_message(OctetString::from_slice(b"id:TEXTID stat:DELIVRD").expect("fits"))
        .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
            COctetString::from_string("TLVID".into()).expect("fits"),
        ))
        .push_tlv(MessageDeliveryRequestTlvValue::MessageState(
            MessageState::Expired,
        ))
        .build();
    let bytes = codec::encode(&Command::new(CommandStatus::EsmeRok, 3, sm));
    let mut framer = Framer::new();
    framer.push(&bytes);
    let frame = framer.next_frame().expect("ok").expect("frame");
    let Ok(Inbound::DeliverSm { seq: 3, deliver }) = codec::decode_frame(frame) else {
        panic!("not a deliver_sm");
    };
    let r = receipt::parse_receipt(&deliver).expect("receipt");
    assert_eq!(r.carrier_id, "TLVID");
    assert_eq!(r.stat, "EXPIRED");
    assert_eq!(r.code, Some(ResultCode::ExpiredAtCarrier));
}

#[test]
fn receipt_stat_table() {
    let code = |s: &str| receipt::stat_code(s);
    assert_eq!(code("DELIVRD"), Some(ResultCode::Delivered));
    assert_eq!(code("EXPIRED"), Some(ResultCode::ExpiredAtCarrier));
    assert_eq!(code("UNDELIV"), Some(ResultCode::Undeliverable));
    assert_eq!(code("REJECTD"), Some(ResultCode::RejectedByCarrier));
    assert_eq!(code("DELETED"), Some(ResultCode::Undeliverable));
    assert_eq!(code("UNKNOWN"), Some(ResultCode::Undeliverable));
    assert_eq!(code("ACCEPTD"), None);
    assert_eq!(code("WHATEVER"), None);
    assert!(RECEIPT_STATS.iter().all(|m| m.stat.len() == 7));
}

#[test]
fn submit_status_table() {
    let row = receipt::submit_status;
    let t = row(status::ESME_RTHROTTLED);
    assert!(t.retry && t.slow_down);
    let full = row(status::ESME_RMSGQFUL);
    assert!(full.retry && full.slow_down);
    assert!(row(status::ESME_RSYSERR).retry);
    let bad = row(status::ESME_RINVDSTADR);
    assert_eq!((bad.code, bad.retry), (ResultCode::InvalidRecipient, false));
    let fail = row(status::ESME_RSUBMITFAIL);
    assert_eq!(
        (fail.code, fail.retry),
        (ResultCode::RejectedByCarrier, false)
    );
    let other = row(0x0000_0061);
    assert_eq!(
        (other.code, other.retry),
        (ResultCode::RejectedByCarrier, false)
    );
    assert_eq!(SUBMIT_STATUSES.len(), 5);
}

// ---- end to end ----

/// A blocking SMSC connection (test thread only).
struct SmscConn {
    stream: TcpStream,
    framer: Framer,
}

impl SmscConn {
    fn accept(listener: &TcpListener) -> SmscConn {
        let (stream, _) = listener.accept().expect("accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        SmscConn {
            stream,
            framer: Framer::new(),
        }
    }

    /// The next frame's (command_id, seq), `None` at EOF.
    fn next(&mut self) -> Option<(u32, u32)> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(frame) = self.framer.next_frame().expect("ESME frames are sane") {
                let (id, _, seq) = codec::header(&frame).expect("header");
                return Some((id, seq));
            }
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.framer.push(&buf[..n]),
            }
        }
    }

    /// Waits for a PDU of `want`, answering enquire_links meanwhile.
    fn expect(&mut self, want: u32) -> u32 {
        loop {
            let (id, seq) = self.next().expect("connection open");
            if id == want {
                return seq;
            }
            if id == command_id::ENQUIRE_LINK {
                self.send(&codec::enquire_link_resp(seq));
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("writes");
    }

    fn bind_ok(&mut self) {
        let seq = self.expect(command_id::BIND_TRANSCEIVER);
        let resp = BindTransceiverResp::new(
            COctetString::from_string("SMSC".into()).expect("fits"),
            None,
        );
        self.send(&codec::encode(&Command::new(
            CommandStatus::EsmeRok,
            seq,
            resp,
        )));
    }

    /// Serves until the ESME closes: enquire_link and unbind answered.
    fn drain(&mut self) {
        while let Some((id, seq)) = self.next() {
            match id {
                command_id::ENQUIRE_LINK => self.send(&codec::enquire_link_resp(seq)),
                command_id::UNBIND => self.send(&codec::unbind_resp(seq)),
                _ => {}
            }
        }
    }
}

fn smpp_config(port: u16) -> SmppConfig {
    SmppConfig {
        host: "127.0.0.1".into(),
        port,
        system_id: "mcmp".into(),
        password: "secret".into(),
        system_type: String::new(),
        binds: 1,
        window: 8,
        tps: 0,
        enquire_link_secs: 30,
        response_timeout_ms: 30_000,
        default_coding: SmppCoding::EucKr,
        receipt_id: Default::default(),
        origin_code_tag: crate::sender::config::DEFAULT_ORIGIN_CODE_TAG,
        tls: false,
        ca: None,
        client_cert: None,
        client_key: None,
    }
}

fn outbound(id: MessageId) -> Outbound {
    Outbound {
        id,
        channel: Channel::Sms,
        from: "0215881234".into(),
        to: "01012345678".into(),
        text: "인증번호 123456".into(),
        subject: None,
        template_code: None,
        vars: Vec::new(),
        international: false,
        expires_at_ms: i64::MAX,
        attachments: Vec::new(),
        origin_code: None,
        class: crate::model::Class::Realtime,
    }
}

/// Starts a session on a fresh executor, pushes `messages`, waits until
/// `done(events, stats)` holds (or 15 s pass), stops the session and returns
/// the events seen.
fn run_against(
    port: u16,
    messages: Vec<Outbound>,
    done: fn(&[SessionEvent], &SessionStats) -> bool,
) -> (Vec<SessionEvent>, bool) {
    run_with(smpp_config(port), messages, done)
}

/// [`run_against`] with a configuration of its own.
fn run_with(
    config: SmppConfig,
    messages: Vec<Outbound>,
    done: fn(&[SessionEvent], &SessionStats) -> bool,
) -> (Vec<SessionEvent>, bool) {
    on_shard(move || {
        let (messages, config) = (messages.clone(), config.clone());
        async move {
            let stats = SessionStats::default();
            let session_stats = stats.clone();
            let start = |queue, events, stop| {
                run_session_with_stats(
                    "T_S_TEST01".into(),
                    config,
                    None,
                    queue,
                    events,
                    stop,
                    session_stats,
                )
            };
            drive(start, 16, messages, |seen| done(seen, &stats)).await
        }
    })
}

#[test]
fn session_binds_submits_and_reports_receipt() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("addr").port();
    let smsc = std::thread::spawn(move || {
        let mut conn = SmscConn::accept(&listener);
        conn.bind_ok();
        let seq = conn.expect(command_id::SUBMIT_SM);
        let resp = SubmitSmResp::new(
            COctetString::from_string("MSG42".into()).expect("fits"),
            Vec::new(),
        );
        conn.send(&codec::encode(&Command::new(
            CommandStatus::EsmeRok,
            seq,
            resp,
        )));
        let text = "id:MSG42 sub:001 dlvrd:001 submit date:2401010000 done date:2401010001 stat:DELIVRD err:000 text:x";
        let receipt = DeliverSm::builder()
            .esm_class(EsmClass::from(0x04))
            .short_message(OctetString::from_slice(text.as_bytes()).expect("fits"))
            .build();
        conn.send(&codec::encode(&Command::new(
            CommandStatus::EsmeRok,
            77,
            receipt,
        )));
        let resp_seq = conn.expect(command_id::DELIVER_SM_RESP);
        conn.drain();
        resp_seq
    });
    let id = MessageId::new(0, 1);
    let (events, ok) = run_against(port, vec![outbound(id)], |events, _| {
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::Receipt { .. }))
    });
    assert!(ok, "no receipt in time: {events:?}");
    assert_eq!(events[0], SessionEvent::Up);
    assert!(events.contains(&SessionEvent::Submitted {
        id,
        carrier_id: "MSG42".into()
    }));
    assert!(events.contains(&SessionEvent::Receipt {
        carrier_id: "MSG42".into(),
        delivered: true,
        code: ResultCode::Delivered,
        detail: "stat:DELIVRD err:000".into(),
    }));
    assert_eq!(smsc.join().expect("smsc thread"), 77);
}

#[test]
fn absurd_length_drops_the_session_and_it_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("addr").port();
    let smsc = std::thread::spawn(move || {
        let mut first = SmscConn::accept(&listener);
        first.bind_ok();
        let mut garbage = vec![0xFF; 4];
        garbage.extend_from_slice(&[0; 12]);
        first.send(&garbage);
        let mut second = SmscConn::accept(&listener);
        second.bind_ok();
        second.drain();
    });
    let (events, ok) = run_against(port, Vec::new(), |events, stats| {
        let ups = events.iter().filter(|e| **e == SessionEvent::Up).count();
        ups == 2 && stats.protocol_errors() >= 1 && stats.reconnects() >= 1
    });
    assert!(ok, "no reconnect in time: {events:?}");
    assert_eq!(events[0], SessionEvent::Up);
    assert!(
        matches!(&events[1], SessionEvent::Down { reason } if reason.contains("command_length"))
    );
    assert_eq!(events[2], SessionEvent::Up);
    smsc.join().expect("smsc thread");
}

/// SMPP relative times (`YYMMDDhhmmss000R`) for the validities a message
/// may have (SPEC §5.1: 60 s to 3 days).
#[test]
fn validity_is_an_smpp_relative_time() {
    for (secs, want) in [
        (60, "000000000100000R"),
        (86_400, "000001000000000R"),
        (259_200, "000003000000000R"),
        (3_600 + 61, "000000010101000R"),
        (31 * 86_400, "000101000000000R"),
    ] {
        assert_eq!(codec::relative_time(secs), want, "{secs} s");
    }
}

/// The SMSC of the timeout tests: binds, reads one submit_sm and answers
/// nothing until the ESME unbinds; then `late` decides whether it answers
/// the submit (with carrier id LATE1) before its unbind_resp. Returns how
/// many submit_sm it read on its first connection.
fn silent_smsc(listener: TcpListener, late: bool) -> usize {
    let mut conn = SmscConn::accept(&listener);
    conn.bind_ok();
    let submit = conn.expect(command_id::SUBMIT_SM);
    let mut submits = 1;
    let unbind = loop {
        let (id, seq) = conn.next().expect("open until unbind");
        match id {
            command_id::UNBIND => break seq,
            command_id::SUBMIT_SM => submits += 1,
            command_id::ENQUIRE_LINK => conn.send(&codec::enquire_link_resp(seq)),
            _ => {}
        }
    };
    if late {
        let resp = SubmitSmResp::new(
            COctetString::from_string("LATE1".into()).expect("fits"),
            Vec::new(),
        );
        conn.send(&codec::encode(&Command::new(
            CommandStatus::EsmeRok,
            submit,
            resp,
        )));
    }
    conn.send(&codec::unbind_resp(unbind));
    drop(conn);
    // The next bind stays up until the session stops.
    let mut next = SmscConn::accept(&listener);
    next.bind_ok();
    next.drain();
    submits
}

fn timeout_config(port: u16) -> SmppConfig {
    SmppConfig {
        response_timeout_ms: 300,
        ..smpp_config(port)
    }
}

/// Issue 13: a submit left unanswered past the response timeout is not
/// failed (and so sent again) while its link may still answer: the link is
/// given up (Down), unbound, and the answer that comes before the
/// unbind_resp settles it: Submitted with the carrier's id, no SubmitFailed.
#[test]
fn a_late_answer_on_a_link_given_up_settles_the_submit() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("addr").port();
    let smsc = std::thread::spawn(move || silent_smsc(listener, true));
    let id = MessageId::new(0, 1);
    let (events, ok) = run_with(timeout_config(port), vec![outbound(id)], |events, _| {
        events.iter().filter(|e| **e == SessionEvent::Up).count() == 2
    });
    assert!(ok, "no second bind in time: {events:?}");
    assert!(
        matches!(&events[1], SessionEvent::Down { reason } if reason.contains("no submit_sm_resp")),
        "{events:?}"
    );
    assert_eq!(
        events[2],
        SessionEvent::Submitted {
            id,
            carrier_id: "LATE1".into()
        }
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, SessionEvent::SubmitFailed { .. })));
    assert_eq!(smsc.join().expect("smsc thread"), 1, "sent once");
}

/// ...and a submit that got no answer at all before the link ended fails
/// as retryable only after the link was given up and read to its end.
#[test]
fn an_unanswered_submit_fails_as_retryable_after_the_link_is_read() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("addr").port();
    let smsc = std::thread::spawn(move || silent_smsc(listener, false));
    let id = MessageId::new(0, 2);
    let (events, ok) = run_with(timeout_config(port), vec![outbound(id)], |events, _| {
        events.iter().filter(|e| **e == SessionEvent::Up).count() == 2
    });
    assert!(ok, "no second bind in time: {events:?}");
    assert!(
        matches!(&events[1], SessionEvent::Down { .. }),
        "{events:?}"
    );
    assert!(
        matches!(&events[2], SessionEvent::SubmitFailed { id: i, retry: true, .. } if *i == id),
        "{events:?}"
    );
    assert_eq!(smsc.join().expect("smsc thread"), 1, "sent once");
}
