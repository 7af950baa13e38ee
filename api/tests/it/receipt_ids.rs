//! Issue 13: receipts are matched whatever the carrier's id format. Each
//! SMSC simulator here writes its receipts' ids (`id:` and
//! `receipted_message_id`) differently from its `submit_sm_resp` ids, over
//! real SMPP: every message still ends `delivered`, with exactly one report.

use serde_json::{json, Value};

use crate::harness::{data_dir, send_accepted, sms, Server};
use crate::routing::wait_status;
use crate::sims::Sim;
use crate::smpp::{one_delivered_report_each, smpp_sender, wait_connected};

/// (sender, how its SMSC writes ids, its `receipt_id` setting). The
/// simulator's ids count up from a large number, hex with letters from the
/// first one, as a carrier's do; those counting from 1 are small numbers
/// whose hex and decimal readings differ while neither side has shown its
/// base yet (no letter in 1-9, then `10` both 16 and 10).
const CARRIERS: &[(&str, &[&str], Option<&str>)] = &[
    ("G_S_SEQ01", &["--first-message-id", "1"], None),
    (
        "G_S_SQU01",
        &["--first-message-id", "1", "--receipt-id-format", "upper"],
        None,
    ),
    (
        "G_S_SQD01",
        &["--first-message-id", "1", "--receipt-id-format", "decimal"],
        None,
    ),
    ("G_S_DEC01", &["--receipt-id-format", "decimal"], None),
    (
        "G_S_PAD01",
        &["--receipt-id-format", "decimal-padded"],
        None,
    ),
    ("G_S_UPP01", &["--receipt-id-format", "upper"], None),
    ("G_S_MIX01", &["--receipt-id-format", "mixed"], None),
    (
        "G_S_D2H01",
        &[
            "--submit-id-format",
            "decimal",
            "--receipt-id-format",
            "hex",
        ],
        None,
    ),
    (
        "G_S_H2D01",
        &["--receipt-id-format", "decimal"],
        Some("hex-to-decimal"),
    ),
    ("G_S_UPX01", &["--receipt-id-format", "upper"], Some("hex")),
];

#[test]
fn receipts_match_whatever_the_carriers_id_format() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let mut smscs = Vec::new();
    let mut sent = Vec::new();
    for (k, (name, format, setting)) in CARRIERS.iter().enumerate() {
        let mut args = vec!["--dlr-delay-ms", "5"];
        args.extend_from_slice(format);
        let smsc = Sim::smsc(&args);
        let extra = match setting {
            Some(s) => json!({"receipt_id": s}),
            None => json!({}),
        };
        smpp_sender_with(&server, name, &format!("G{k}"), &smsc, extra);
        let group = format!("RI{k}");
        let token = server.register_customer(&group);
        let rule = json!({"carriers": {"*": [{"sender_group": format!("G{k}"), "ratio": 1}]}});
        let path = format!("/routes/{group}/SMS");
        assert_eq!(server.admin("PUT", &path, Some(rule)).0, 200);
        wait_connected(&server, name);
        let msgs: Vec<Value> = (0..30).map(|i| sms(&format!("{name}-{i}"))).collect();
        let ids = send_accepted(&server, &token, msgs);
        sent.push((*name, token, ids));
        smscs.push(smsc);
    }
    for (name, token, ids) in &sent {
        for id in ids {
            let m = wait_status(&server, token, id, |s| s == "delivered");
            assert_eq!(m["sender"], *name, "{m}");
        }
        one_delivered_report_each(&server, token, ids);
    }
    for smsc in &smscs {
        let stats = smsc.get("control", "/stats");
        assert_eq!(stats["duplicates"], 0, "{stats}");
        assert_eq!(stats["messages"], 30, "{stats}");
    }
}

/// An `smpp` sender whose transport has `extra` fields.
fn smpp_sender_with(server: &Server, name: &str, group: &str, smsc: &Sim, extra: Value) {
    let addr = smsc.addr("smsc");
    let mut transport = json!({"type": "smpp", "host": addr.ip().to_string(), "port": addr.port(),
        "system_id": name, "password": "pw", "window": 64, "enquire_link_secs": 5,
        "response_timeout_ms": 30000});
    if let (Value::Object(t), Value::Object(e)) = (&mut transport, extra) {
        t.extend(e);
    }
    smpp_sender(server, name, group, smsc, json!({"transport": transport}));
}

/// The setting is checked: an unknown format is refused with the ones
/// there are, and the default is `auto`.
#[test]
fn an_unknown_receipt_id_format_is_refused_clearly() {
    let smsc = Sim::smsc(&[]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let addr = smsc.addr("smsc");
    let body = json!({"group": "A", "channels": ["SMS"], "carriers": ["*"],
        "transport": {"type": "smpp", "host": addr.ip().to_string(), "port": addr.port(),
                      "system_id": "x", "password": "pw", "receipt_id": "octal"}});
    let (s, v) = server.admin("PUT", "/senders/G_S_BAD01", Some(body));
    assert_eq!(s, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    for word in ["octal", "auto", "exact", "hex-to-decimal"] {
        assert!(message.contains(word), "{word} in {message}");
    }
    smpp_sender(&server, "G_S_OK01", "A", &smsc, json!({}));
    let (_, v) = server.admin("GET", "/senders/G_S_OK01", None);
    assert_eq!(v["transport"]["receipt_id"], "auto", "{v}");
}

/// `exact` keeps the byte-for-byte match of before the setting: against an
/// SMSC whose receipts write ids in upper case, the receipts arrive (the
/// sender counts them) and match nothing, so the messages stay `submitted`:
/// the formats the simulator varies are really different.
#[test]
fn exact_matches_byte_for_byte_only() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let smsc = Sim::smsc(&["--dlr-delay-ms", "5", "--receipt-id-format", "upper"]);
    let extra = json!({"receipt_id": "exact"});
    smpp_sender_with(&server, "G_S_EXA01", "GX", &smsc, extra);
    let token = server.register_customer("RIX");
    let rule = json!({"carriers": {"*": [{"sender_group": "GX", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/RIX/SMS", Some(rule)).0, 200);
    wait_connected(&server, "G_S_EXA01");
    let msgs: Vec<Value> = (0..5).map(|i| sms(&format!("exact-{i}"))).collect();
    let ids = send_accepted(&server, &token, msgs);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // The session took every receipt (the sender counts them)...
    loop {
        let (_, v) = server.admin("GET", "/senders/G_S_EXA01", None);
        if v["state"]["receipts"].as_u64() >= Some(5) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "receipts never read: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // ...and none of them matched its message.
    for id in &ids {
        let (_, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
        assert_eq!(m["status"], "submitted", "{m}");
    }
}
