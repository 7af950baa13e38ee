use super::*;

fn sample_message() -> ShortMessage {
    ShortMessage {
        source: "0212345678".into(),
        dest: "01012345678".into(),
        esm_class: 0x40,
        registered_delivery: 1,
        data_coding: 0x08,
        short_message: vec![0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 0xAC, 0x00],
        tlvs: vec![Tlv {
            tag: tag::USER_MESSAGE_REFERENCE,
            value: vec![0x12, 0x34],
        }],
        ..ShortMessage::default()
    }
}

#[test]
fn pdu_round_trip() {
    let pdu = Pdu::new(cmd::SUBMIT_SM, 0, 7, sample_message().encode());
    let bytes = pdu.encode();
    assert_eq!(bytes.len(), HEADER_LEN + pdu.body.len());
    let (back, used) = Pdu::decode(&bytes).expect("frame").expect("complete");
    assert_eq!(used, bytes.len());
    assert_eq!(back, pdu);
}

#[test]
fn short_message_round_trip() {
    let m = sample_message();
    let back = ShortMessage::decode(&m.encode()).expect("decode");
    assert_eq!(back, m);
    assert_eq!(
        back.tlv(tag::USER_MESSAGE_REFERENCE),
        Some(&[0x12, 0x34][..])
    );
    assert_eq!(back.tlv(tag::MESSAGE_PAYLOAD), None);
}

#[test]
fn bind_round_trip() {
    let b = Bind {
        system_id: "G_S_KT01".into(),
        password: "secret".into(),
        interface_version: 0x34,
        ..Bind::default()
    };
    assert_eq!(Bind::decode(&b.encode()).expect("decode"), b);
}

#[test]
fn two_pdus_in_one_buffer_decode_in_order() {
    let mut buf = Pdu::new(cmd::ENQUIRE_LINK, 0, 1, vec![]).encode();
    Pdu::new(cmd::UNBIND, 0, 2, vec![]).encode_into(&mut buf);
    let (first, used) = Pdu::decode(&buf).expect("frame").expect("complete");
    assert_eq!((first.command_id, first.sequence), (cmd::ENQUIRE_LINK, 1));
    let (second, _) = Pdu::decode(&buf[used..]).expect("frame").expect("complete");
    assert_eq!((second.command_id, second.sequence), (cmd::UNBIND, 2));
}

#[test]
fn truncated_frames_ask_for_more() {
    let bytes = Pdu::new(cmd::SUBMIT_SM, 0, 7, sample_message().encode()).encode();
    for cut in 0..bytes.len() {
        assert_eq!(Pdu::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
    }
}

#[test]
fn absurd_lengths_are_frame_errors() {
    for len in [0u32, 15, MAX_PDU_LEN + 1, u32::MAX] {
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 12]);
        assert_eq!(Pdu::decode(&bytes), Err(FrameError::AbsurdLength(len)));
    }
    // The largest allowed length is only incomplete, not absurd.
    let bytes = MAX_PDU_LEN.to_be_bytes();
    assert_eq!(Pdu::decode(&bytes), Ok(None));
}

#[test]
fn truncated_bodies_are_body_errors() {
    let mut m = sample_message();
    let body = m.encode();
    // Cutting exactly before the TLVs leaves a valid message without them;
    // every other cut must fail, never panic.
    let tlv_start = body.len() - 6;
    for cut in (0..body.len()).filter(|&c| c != tlv_start) {
        let r = ShortMessage::decode(&body[..cut]);
        assert!(r.is_err(), "cut at {cut} decoded as {r:?}");
    }
    m.tlvs.clear();
    assert_eq!(ShortMessage::decode(&body[..tlv_start]), Ok(m));
    let bind = Bind {
        system_id: "x".into(),
        ..Bind::default()
    }
    .encode();
    for cut in 0..bind.len() {
        assert!(Bind::decode(&bind[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn overlong_c_string_is_unterminated() {
    let mut body = vec![b'a'; 40];
    body.push(0);
    assert_eq!(
        Bind::decode(&body),
        Err(BodyError::Unterminated("system_id"))
    );
}

#[test]
fn sm_length_past_the_end_is_truncated() {
    let mut m = sample_message();
    m.tlvs.clear();
    let mut body = m.encode();
    let sm_len_at = body.len() - m.short_message.len() - 1;
    body[sm_len_at] = 200;
    assert_eq!(
        ShortMessage::decode(&body),
        Err(BodyError::Truncated("short_message"))
    );
}

#[test]
fn cstr_bodies() {
    let body = encode_cstr_body("abc123", &[]);
    assert_eq!(decode_cstr_body(&body, 65).expect("decode"), "abc123");
    assert_eq!(decode_cstr_body(&[], 65).expect("empty"), "");
}
