//! The webhook sink: signatures, duplicates, failures on purpose.

use std::net::SocketAddr;

use hmac::{Hmac, Mac as _};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{get_json, http, Sim};

const SECRET: &str = "client-secret";

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn post(addr: SocketAddr, secret: &str, report_ids: &[&str]) -> u16 {
    let reports: Vec<Value> = report_ids
        .iter()
        .map(|id| json!({"report_id": id, "message_id": format!("m-{id}"), "status": "delivered"}))
        .collect();
    let body = json!({ "reports": reports }).to_string();
    let sig = signature(secret, body.as_bytes());
    http(
        addr,
        "POST",
        "/hook",
        &[("X-MCMP-Signature", &sig)],
        body.as_bytes(),
    )
    .0
}

fn sink(extra: &[&str]) -> Sim {
    let mut args = vec!["sink", "--listen", "127.0.0.1:0", "--secret", SECRET];
    args.extend_from_slice(extra);
    Sim::start(&args, &["sink"])
}

#[test]
fn signatures_are_checked_and_duplicates_flagged() {
    let sim = sink(&[]);
    let addr = sim.addr("sink");
    assert_eq!(post(addr, SECRET, &["r1", "r2"]), 200);
    assert_eq!(post(addr, "wrong secret", &["r3"]), 401);
    assert_eq!(
        http(addr, "POST", "/hook", &[], b"{\"reports\":[]}").0,
        401,
        "no header"
    );
    assert_eq!(post(addr, SECRET, &["r1"]), 200);

    let stats = get_json(addr, "/stats");
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["reports"], 3);
    assert_eq!(stats["unique"], 2);
    assert_eq!(stats["duplicates"], 1);
    assert_eq!(stats["bad_signatures"], 2);
    let reports = get_json(addr, "/reports");
    let list = reports.as_array().expect("array");
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["message_id"], "m-r1");
    assert_eq!(
        list[0]["report"],
        json!({"report_id": "r1", "message_id": "m-r1", "status": "delivered"}),
        "the whole report, as JSON"
    );
    assert!(list[0]["arrived_ms"].as_u64().unwrap_or(0) > 0);
    assert_eq!(list[2]["report_id"], "r1");
    assert_eq!(list[2]["attempt"], 2);
}

#[test]
fn fail_first_answers_errors_then_accepts_the_retry() {
    let sim = sink(&["--fail-first", "2", "--status", "503"]);
    let addr = sim.addr("sink");
    assert_eq!(post(addr, SECRET, &["r1"]), 503);
    assert_eq!(post(addr, SECRET, &["r1"]), 503);
    assert_eq!(post(addr, SECRET, &["r1"]), 200);
    let stats = get_json(addr, "/stats");
    assert_eq!(stats["failed_on_purpose"], 2);
    assert_eq!(stats["reports"], 1);
    assert_eq!(stats["duplicates"], 0);
    let reports = get_json(addr, "/reports");
    assert_eq!(reports[0]["attempt"], 3);
}
