//! The SMSC simulator through its SMPP port and control API.

use serde_json::{json, Value};

use crate::smpp_client::{Esme, Submit, ENQUIRE_LINK, GENERIC_NACK, RESP, UNBIND};
use crate::{eventually, get_json, post_json, Sim};

fn smsc(extra: &[&str]) -> Sim {
    let mut args = vec![
        "smsc",
        "--listen",
        "127.0.0.1:0",
        "--control",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Sim::start(&args, &["smsc", "control"])
}

fn bound(sim: &Sim) -> Esme {
    let mut esme = Esme::connect(sim.addr("smsc"));
    assert_eq!(esme.bind("G_S_KT01", "pw"), 0);
    esme
}

fn stat(sim: &Sim, key: &str) -> u64 {
    get_json(sim.addr("control"), "/stats")[key]
        .as_u64()
        .unwrap_or(u64::MAX)
}

fn messages(sim: &Sim) -> Vec<Value> {
    get_json(sim.addr("control"), "/messages")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn text(from: &str, to: &str, s: &str) -> Submit {
    Submit {
        from: from.into(),
        to: to.into(),
        short_message: s.as_bytes().to_vec(),
        ..Submit::default()
    }
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

#[test]
fn submit_gets_an_id_and_a_delivery_receipt() {
    let sim = smsc(&[
        "--system-id",
        "G_S_KT01",
        "--password",
        "pw",
        "--dlr-delay-ms",
        "1",
    ]);
    let mut esme = bound(&sim);
    let seq = esme.submit(&text("1588", "01012345678", "hello"));
    let (status, id) = esme.submit_resp(seq);
    assert_eq!(status, 0);
    assert!(!id.is_empty());

    let r = esme.receipt();
    assert_eq!(r.esm_class, 0x04);
    assert_eq!((r.from.as_str(), r.to.as_str()), ("01012345678", "1588"));
    assert!(
        r.text
            .starts_with(&format!("id:{id} sub:001 dlvrd:001 submit date:")),
        "{}",
        r.text
    );
    assert!(
        r.text.contains(" stat:DELIVRD err:000 text:hello"),
        "{}",
        r.text
    );
    assert_eq!(r.tlv(0x001E), Some(format!("{id}\0").as_bytes()));
    assert_eq!(r.tlv(0x0427), Some(&[2u8][..]));

    eventually("the receipt ack to be counted", || {
        stat(&sim, "receipts_acked") == 1
    });
    let stats = get_json(sim.addr("control"), "/stats");
    assert_eq!(stats["binds"], 1);
    assert_eq!(stats["submits"], 1);
    assert_eq!(stats["messages"], 1);
    assert_eq!(stats["receipts_sent"], 1);
    assert_eq!(stats["by_system_id"]["G_S_KT01"]["messages"], 1);
    let list = messages(&sim);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["text"], "hello");
    assert_eq!(list[0]["system_id"], "G_S_KT01");
    assert_eq!(list[0]["to"], "01012345678");
}

#[test]
fn udh_parts_are_reassembled_and_counted_once() {
    let sim = smsc(&["--dlr-stat", "UNDELIV"]);
    let mut esme = bound(&sim);
    // Three UCS-2 parts with an 8-bit reference, sent out of order.
    let parts = ["안녕하세요, ", "긴 메시지의 ", "세 번째 부분"];
    let mut ids = Vec::new();
    for index in [2u8, 1, 3] {
        let mut sm = vec![0x05, 0x00, 0x03, 0x7F, 3, index];
        sm.extend(ucs2(parts[index as usize - 1]));
        let submit = Submit {
            esm_class: 0x40,
            data_coding: 0x08,
            short_message: sm,
            ..text("1588", "01011112222", "")
        };
        let seq = esme.submit(&submit);
        let (status, id) = esme.submit_resp(seq);
        assert_eq!(status, 0);
        ids.push(id);
        let receipt = esme.receipt();
        assert!(
            receipt.text.contains("stat:UNDELIV err:001"),
            "{}",
            receipt.text
        );
        assert_eq!(receipt.tlv(0x0427), Some(&[5u8][..]));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each part has its own id");
    // Two GSM-7 parts with a 16-bit reference.
    for (index, part) in [(1u8, "part one "), (2, "part two")] {
        let mut sm = vec![0x06, 0x08, 0x04, 0x12, 0x34, 2, index];
        sm.extend_from_slice(part.as_bytes());
        let submit = Submit {
            esm_class: 0x40,
            short_message: sm,
            ..text("1588", "01011112222", "")
        };
        let seq = esme.submit(&submit);
        assert_eq!(esme.submit_resp(seq).0, 0);
        esme.receipt();
    }

    let stats = get_json(sim.addr("control"), "/stats");
    assert_eq!(
        (stats["submits"].as_u64(), stats["messages"].as_u64()),
        (Some(5), Some(2))
    );
    let list = messages(&sim);
    assert_eq!(list[0]["text"], parts.concat());
    assert_eq!(list[0]["parts"], 3);
    assert_eq!(list[0]["data_coding"], 8);
    assert_eq!(list[1]["text"], "part one part two");
    assert_eq!(list[1]["parts"], 2);
}

#[test]
fn message_payload_carries_a_long_euc_kr_text() {
    let sim = smsc(&[]);
    let mut esme = bound(&sim);
    let long = "가나다라마바사아자차카타파하".repeat(20);
    let (euc, _, _) = encoding_rs::EUC_KR.encode(&long);
    assert!(euc.len() > 255);
    let submit = Submit {
        data_coding: 0x0E,
        tlvs: vec![(0x0424, euc.into_owned())],
        ..text("1588", "01033334444", "")
    };
    let seq = esme.submit(&submit);
    assert_eq!(esme.submit_resp(seq).0, 0);
    esme.receipt();
    let list = messages(&sim);
    assert_eq!(list[0]["text"], long.as_str());
    assert_eq!(list[0]["parts"], 1);
}

#[test]
fn wrong_credentials_fail_the_bind() {
    let sim = smsc(&["--system-id", "G_S_KT01", "--password", "pw"]);
    let mut esme = Esme::connect(sim.addr("smsc"));
    assert_eq!(esme.bind("G_S_KT01", "nope"), 0x0E, "ESME_RINVPASWD");
    let mut esme = Esme::connect(sim.addr("smsc"));
    assert_eq!(esme.bind("someone", "pw"), 0x0D, "ESME_RBINDFAIL");
    // Submitting on the unbound connection is refused.
    let seq = esme.submit(&text("1", "2", "x"));
    assert_eq!(esme.submit_resp(seq).0, 0x04, "ESME_RINVBNDSTS");
    assert_eq!(stat(&sim, "bind_failures"), 2);
    assert_eq!(stat(&sim, "binds"), 0);
}

#[test]
fn drop_closes_every_connection() {
    let sim = smsc(&[]);
    // Both are bound, so the server has surely accepted them.
    let mut a = bound(&sim);
    let mut b = bound(&sim);
    let (status, body) = post_json(sim.addr("control"), "/drop", &json!({}));
    assert_eq!(status, 200);
    assert_eq!(body["dropped"], 2);
    assert!(a.is_closed());
    assert!(b.is_closed());
    // New connections are served again.
    bound(&sim);
}

#[test]
fn a_hang_up_answers_every_submit_it_read_and_an_abrupt_drop_does_not_wait() {
    // Answers are held until released, not delayed by a time: that the drop
    // lands while they are still owed does not depend on how fast this
    // machine is.
    let sim = smsc(&[]);
    hold_answers(&sim, true);
    let mut esme = bound(&sim);
    let seqs: Vec<u32> = (0..20)
        .map(|i| esme.submit(&text("1588", "01012345678", &format!("h{i}"))))
        .collect();
    eventually("all submits to be read", || stat(&sim, "submits") == 20);
    let (status, body) = post_json(sim.addr("control"), "/drop", &json!({}));
    assert_eq!((status, body["dropped"].as_u64()), (200, Some(1)));
    // Every submit the SMSC counted is answered before the connection ends.
    // Held answers are released together and come in any order.
    let mut answered: Vec<u32> = std::iter::from_fn(|| esme.read())
        .map(|pdu| {
            assert_eq!((pdu.id, pdu.status), (0x8000_0004, 0), "{pdu:?}");
            pdu.seq
        })
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, seqs);

    // Another system_id: the receipts of the 20 answered above go to a
    // bind of their own system_id, and this connection must see nothing
    // but its own traffic.
    let mut cut = Esme::connect(sim.addr("smsc"));
    assert_eq!(cut.bind("G_S_CUT01", "pw"), 0);
    let seq = cut.submit(&text("1588", "01012345678", "cut"));
    eventually("the submit to be read", || stat(&sim, "submits") == 21);
    post_json(sim.addr("control"), "/drop", &json!({"abrupt": true}));
    // The answer was still held back: the connection closes without it.
    // (The hold stays on: `/drop` returns before the cut is done, so a
    // release now could race the cut.)
    assert!(cut.is_closed(), "no answer after an abrupt drop: {seq}");
}

#[test]
fn held_answers_go_out_when_the_hold_ends() {
    let sim = smsc(&["--dlr-delay-ms", "1"]);
    let mut esme = bound(&sim);
    hold_answers(&sim, true);
    let seq = esme.submit(&text("1588", "01012345678", "held"));
    eventually("the submit to be read", || stat(&sim, "submits") == 1);
    assert_eq!(stat(&sim, "max_outstanding"), 1);
    assert_eq!(stat(&sim, "receipts_sent"), 0);
    hold_answers(&sim, false);
    let (status, id) = esme.submit_resp(seq);
    assert_eq!(status, 0);
    let receipt = esme.receipt();
    assert!(
        receipt.text.starts_with(&format!("id:{id} ")),
        "{}",
        receipt.text
    );
    assert_eq!(
        post_json(sim.addr("control"), "/hold-answers", &json!({"nope": 1})).0,
        400
    );
}

fn hold_answers(sim: &Sim, hold: bool) {
    let (status, body) = post_json(
        sim.addr("control"),
        "/hold-answers",
        &json!({ "hold": hold }),
    );
    assert_eq!((status, body["hold"].as_bool()), (200, Some(hold)));
}

#[test]
fn refused_binds_hold_a_sender_down_until_released() {
    let sim = smsc(&[]);
    let control = sim.addr("control");
    assert_eq!(
        post_json(control, "/refuse-binds", &json!({"refuse": true})).0,
        200
    );
    assert_eq!(Esme::connect(sim.addr("smsc")).bind("G_S_KT01", "pw"), 0x0D);
    assert_eq!(
        post_json(control, "/refuse-binds", &json!({"refuse": false})).0,
        200
    );
    assert_eq!(Esme::connect(sim.addr("smsc")).bind("G_S_KT01", "pw"), 0);
    assert_eq!(
        post_json(control, "/refuse-binds", &json!({"nope": 1})).0,
        400
    );
}

#[test]
fn session_pdus_and_malformed_input() {
    let sim = smsc(&[]);
    let mut esme = bound(&sim);
    let seq = esme.send(ENQUIRE_LINK, &[]);
    let resp = esme.expect();
    assert_eq!(
        (resp.id, resp.status, resp.seq),
        (ENQUIRE_LINK | RESP, 0, seq)
    );
    // Unknown command id.
    let seq = esme.send(0x0000_0103, &[]);
    let resp = esme.expect();
    assert_eq!((resp.id, resp.status, resp.seq), (GENERIC_NACK, 0x03, seq));
    // A submit_sm whose body is cut short.
    let seq = esme.send(0x04, &[0, 1, 1]);
    let resp = esme.expect();
    assert_eq!((resp.id, resp.status, resp.seq), (GENERIC_NACK, 0x02, seq));
    // unbind is answered, then the connection closes.
    let seq = esme.send(UNBIND, &[]);
    let resp = esme.expect();
    assert_eq!((resp.id, resp.seq), (UNBIND | RESP, seq));
    assert!(esme.is_closed());
    // An absurd command_length closes the connection without an answer.
    let mut esme = bound(&sim);
    esme.send_raw(&[0x7F, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9]);
    assert!(esme.is_closed());
}

#[test]
fn fail_rate_and_duplicates_are_counted() {
    let sim = smsc(&["--fail-rate", "1.0"]);
    let mut esme = bound(&sim);
    let seq = esme.submit(&text("1588", "010", "x"));
    assert_eq!(esme.submit_resp(seq).0, 0x45, "ESME_RSUBMITFAIL");
    assert_eq!(stat(&sim, "submit_failed"), 1);
    assert_eq!(stat(&sim, "messages"), 0);

    let sim = smsc(&["--throttle-rate", "1.0"]);
    let mut esme = bound(&sim);
    let seq = esme.submit(&text("1588", "010", "x"));
    assert_eq!(esme.submit_resp(seq).0, 0x58, "ESME_RTHROTTLED");

    let sim = smsc(&[]);
    let mut esme = bound(&sim);
    for _ in 0..2 {
        let seq = esme.submit(&text("1588", "010", "same text"));
        assert_eq!(esme.submit_resp(seq).0, 0);
        esme.receipt();
    }
    assert_eq!(stat(&sim, "duplicates"), 1);
    assert_eq!(post_json(sim.addr("control"), "/reset", &json!({})).0, 200);
    assert_eq!(stat(&sim, "messages"), 0);
    assert!(messages(&sim).is_empty());
}

#[test]
fn window_check_refuses_submits_past_the_window() {
    let sim = smsc(&["--window-check", "--window", "2"]);
    let mut esme = bound(&sim);
    // The first two stay unanswered however long the test takes.
    hold_answers(&sim, true);
    let seqs: Vec<u32> = (0..3)
        .map(|i| esme.submit(&text("1", "2", &format!("m{i}"))))
        .collect();
    // The third arrives while two are unanswered: refused at once.
    let (status, _) = esme.submit_resp(seqs[2]);
    assert_eq!(status, 0x14, "ESME_RMSGQFUL");
    assert_eq!(stat(&sim, "window_violations"), 1);
    assert_eq!(stat(&sim, "max_outstanding"), 2);
}

#[test]
fn receipts_of_a_transmitter_go_to_its_receiver_bind() {
    let sim = smsc(&[]);
    let mut tx = Esme::connect(sim.addr("smsc"));
    assert_eq!(tx.bind_as(0x02, "G_S_KT01", "pw"), 0);
    let mut rx = Esme::connect(sim.addr("smsc"));
    assert_eq!(rx.bind_as(0x01, "G_S_KT01", "pw"), 0);
    let seq = tx.submit(&text("1588", "010", "split binds"));
    let (status, id) = tx.submit_resp(seq);
    assert_eq!(status, 0);
    let receipt = rx.receipt();
    assert!(
        receipt.text.starts_with(&format!("id:{id} ")),
        "{}",
        receipt.text
    );
    eventually("the receipt ack to be counted", || {
        stat(&sim, "receipts_acked") == 1
    });
    // A receiver bind may not submit.
    let seq = rx.submit(&text("1588", "010", "x"));
    assert_eq!(rx.submit_resp(seq).0, 0x04, "ESME_RINVBNDSTS");
}
