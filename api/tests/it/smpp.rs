//! Routing over real SMPP to the `mcmp-loadtest smsc` simulator: the exact
//! split, receipts, long messages, a sender whose SMSC drops it, `kill -9`
//! in the middle of the traffic, and a hostile peer.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, sms, Server};
use crate::routing::wait_status;
use crate::sims::Sim;

/// Registers an SMPP sender to `smsc`.
pub(crate) fn smpp_sender(server: &Server, name: &str, group: &str, smsc: &Sim, extra: Value) {
    let addr = smsc.addr("smsc");
    let mut body = json!({"group": group, "channels": ["SMS", "LMS"], "carriers": ["*"],
        "transport": {"type": "smpp", "host": addr.ip().to_string(), "port": addr.port(),
                      "system_id": name, "password": "pw", "window": 64, "enquire_link_secs": 5,
                      "response_timeout_ms": 30000}});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let (s, v) = server.admin("PUT", &format!("/senders/{name}"), Some(body));
    assert!(s == 200 || s == 201, "{s} {v}");
}

/// Waits until `sender` reports a bound session.
pub(crate) fn wait_connected(server: &Server, sender: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = server.admin("GET", &format!("/senders/{sender}"), None);
        if v["state"]["connected"] == true {
            return;
        }
        assert!(Instant::now() < deadline, "{sender} never bound: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(server: &Server, token: &str, msgs: Vec<Value>) -> Vec<String> {
    crate::harness::send_accepted(server, token, msgs)
}

fn kt_rule(server: &Server, g: &str) {
    let rule = json!({"carriers": {"KT": [{"sender_group": "A", "ratio": 1}, {"sender_group": "B", "ratio": 1}]}});
    let (s, v) = server.admin("PUT", &format!("/routes/{g}/SMS"), Some(rule));
    assert_eq!(s, 200, "{v}");
    let (s, _) = server.load_pnx("01012345678,KT\n");
    assert_eq!(s, 200);
}

fn per_sender(
    server: &Server,
    token: &str,
    ids: &[String],
    status: &str,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        let m = wait_status(server, token, id, |s| s == status);
        *counts
            .entry(m["sender"].as_str().unwrap_or("-").to_string())
            .or_insert(0) += 1;
    }
    counts
}

#[test]
fn ten_thousand_sms_split_exactly_over_smpp_and_all_are_delivered() {
    let smsc = Sim::smsc(&["--dlr-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    smpp_sender(&server, "G_S_KT01", "A", &smsc, json!({}));
    smpp_sender(&server, "G_S_KT02", "B", &smsc, json!({}));
    kt_rule(&server, "A1");
    wait_connected(&server, "G_S_KT01");
    wait_connected(&server, "G_S_KT02");
    let msgs: Vec<Value> = (0..10_000).map(|i| sms(&format!("s{i}"))).collect();
    let ids = send(&server, &token, msgs);
    let counts = per_sender(&server, &token, &ids, "delivered");
    assert_eq!(counts.get("G_S_KT01"), Some(&5_000), "{counts:?}");
    assert_eq!(counts.get("G_S_KT02"), Some(&5_000), "{counts:?}");
    let stats = smsc.get("control", "/stats");
    assert_eq!(stats["messages"], 10_000, "{stats}");
    assert_eq!(stats["duplicates"], 0, "{stats}");
}

#[test]
fn an_lms_and_a_long_international_sms_arrive_whole() {
    let smsc = Sim::smsc(&["--dlr-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    smpp_sender(&server, "G_L_KT01", "A", &smsc, json!({}));
    smpp_sender(
        &server,
        "G_I_UK01",
        "I",
        &smsc,
        json!({"carriers": ["INTL"], "nat_cd": "44"}),
    );
    for ch in ["SMS", "LMS"] {
        let rule = json!({"carriers": {"*": [{"sender_group": "A", "ratio": 1}], "INTL": [{"sender_group": "I", "ratio": 1}]}});
        let (s, v) = server.admin("PUT", &format!("/routes/A1/{ch}"), Some(rule));
        assert_eq!(s, 200, "{v}");
    }
    wait_connected(&server, "G_L_KT01");
    wait_connected(&server, "G_I_UK01");
    let lms_text = "안녕하세요, 고객님. 주문하신 상품이 오늘 발송되었습니다. ".repeat(20);
    let mut lms = sms("lms-1");
    lms["channel"] = json!("LMS");
    lms["subject"] = json!("배송 안내");
    lms["text"] = json!(lms_text);
    let intl_text = "Your parcel has shipped and will arrive tomorrow between 9 and 12. ".repeat(5);
    let mut intl = sms("intl-1");
    intl["to"] = json!("+447700900123");
    intl["text"] = json!(intl_text);
    let ids = send(&server, &token, vec![lms, intl]);
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    let got = smsc.get("control", "/messages");
    let texts: Vec<&str> = got
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&lms_text.as_str()), "LMS not whole: {got}");
    assert!(
        texts.contains(&intl_text.as_str()),
        "international SMS not whole: {got}"
    );
    let intl_msg = got
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["text"] == intl_text.as_str())
        .expect("intl");
    assert!(
        intl_msg["parts"].as_u64().is_some_and(|p| p > 1),
        "{intl_msg}"
    );
    assert_eq!(intl_msg["to"], "447700900123");
}

#[test]
fn a_dropped_sender_moves_its_queue_and_rejoins() {
    // A is throttled to 200/s so a queue builds up before its SMSC drops it.
    let smsc_a = Sim::smsc(&["--dlr-delay-ms", "5"]);
    let smsc_b = Sim::smsc(&["--dlr-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    smpp_sender(&server, "G_S_KT01", "A", &smsc_a, json!({}));
    let (s, v) = server.admin("PATCH", "/senders/G_S_KT01", Some(json!({"transport": {"type": "smpp",
        "host": smsc_a.addr("smsc").ip().to_string(), "port": smsc_a.addr("smsc").port(), "system_id": "G_S_KT01",
        "password": "pw", "tps": 200, "response_timeout_ms": 30000, "enquire_link_secs": 5}})));
    assert_eq!(s, 200, "{v}");
    smpp_sender(&server, "G_S_KT02", "A", &smsc_b, json!({}));
    let rule = json!({"carriers": {"*": [{"sender_group": "A", "ratio": 1}]}});
    server.admin("PUT", "/routes/A1/SMS", Some(rule));
    wait_connected(&server, "G_S_KT01");
    wait_connected(&server, "G_S_KT02");
    // A's SMSC answers nothing until it hangs up: A keeps at most its window
    // in flight, however long the test takes to get to the drop.
    smsc_a.post("control", "/hold-answers", &json!({"hold": true}));
    let msgs: Vec<Value> = (0..3_000).map(|i| sms(&format!("d{i}"))).collect();
    let ids = send(&server, &token, msgs);
    // Drop A and keep it down: its queued messages must move to B. The
    // hang-up answers what A had submitted.
    smsc_a.post("control", "/refuse-binds", &json!({"refuse": true}));
    smsc_a.post("control", "/drop", &json!({}));
    smsc_a.post("control", "/hold-answers", &json!({"hold": false}));
    // Everything still queued goes out through B; what A had submitted waits
    // for its receipts, which A's SMSC keeps until A binds again.
    for id in &ids {
        wait_status(&server, &token, id, |s| {
            s == "submitted" || s == "delivered"
        });
    }
    smsc_a.post("control", "/refuse-binds", &json!({"refuse": false}));
    let counts = per_sender(&server, &token, &ids, "delivered");
    let (a, b) = (
        smsc_a.get("control", "/stats"),
        smsc_b.get("control", "/stats"),
    );
    let total = a["messages"].as_u64().unwrap_or(0) + b["messages"].as_u64().unwrap_or(0);
    assert_eq!(
        total, 3_000,
        "each message exactly once over both SMSCs: A {a} B {b} senders {counts:?}"
    );
    assert_eq!(a["duplicates"], 0);
    assert_eq!(b["duplicates"], 0);
    assert!(
        b["messages"].as_u64().unwrap_or(0) > 1_500,
        "B took over A's queue: {b}"
    );
    // A rejoined once its SMSC accepted binds again (its receipts came in).
    wait_connected(&server, "G_S_KT01");
    let (_, v) = server.admin("GET", "/senders/G_S_KT01", None);
    assert!(v["state"]["downs"].as_u64().is_some_and(|d| d >= 1), "{v}");
    // SPEC §5.5: no secret in an admin answer after creation.
    assert_eq!(v["transport"]["password"], "***", "{v}");
    // The messages A's queue gave to B no longer count as A's in flight
    // (queue depths are sampled every tick: wait for the next sample).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = server.admin("GET", "/senders/G_S_KT01", None);
        if v["state"]["in_flight"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A still counts moved messages: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_sender_whose_carrier_refuses_most_submissions_is_sidelined_and_its_traffic_moves() {
    // A's SMSC is bound and answers, but throttles every submit.
    let smsc_a = Sim::smsc(&["--throttle-rate", "1.0", "--dlr-delay-ms", "5"]);
    let smsc_b = Sim::smsc(&["--dlr-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    smpp_sender(&server, "G_S_KT01", "A", &smsc_a, json!({}));
    let rule = json!({"carriers": {"*": [{"sender_group": "A", "ratio": 1}]}});
    server.admin("PUT", "/routes/A1/SMS", Some(rule));
    wait_connected(&server, "G_S_KT01");
    // A alone gets all the traffic and fails it: its error rate sidelines it.
    let msgs: Vec<Value> = (0..200).map(|i| sms(&format!("e{i}"))).collect();
    let ids = send(&server, &token, msgs);
    let deadline = Instant::now() + Duration::from_secs(30);
    let a = loop {
        let (_, a) = server.admin("GET", "/senders/G_S_KT01", None);
        if a["state"]["healthy"] == false {
            break a;
        }
        assert!(Instant::now() < deadline, "A never sidelined: {a}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(a["state"]["sidelined"].as_u64() >= Some(1), "{a}");
    assert!(a["state"]["sidelined_until"].is_string(), "{a}");
    assert_eq!(a["state"]["connected"], true, "A stayed bound: {a}");
    // A second sender in the group takes A's queue while A is out.
    smpp_sender(&server, "G_S_KT02", "A", &smsc_b, json!({}));
    let counts = per_sender(&server, &token, &ids, "delivered");
    assert_eq!(
        counts.get("G_S_KT02"),
        Some(&200),
        "every message went out through B: {counts:?}"
    );
    assert!(smsc_a.get("control", "/stats")["throttled"].as_u64() >= Some(5));
    assert_eq!(smsc_a.get("control", "/stats")["messages"], 0);
}

#[test]
fn a_ported_out_number_updates_pnx_and_is_re_routed_once() {
    // SKT's SMSC reports both numbers ported out; the fallback SMSC only
    // the second.
    let skt = Sim::smsc(&["--dlr-delay-ms", "5", "--ported", "01099998888,01077776666"]);
    let other = Sim::smsc(&["--dlr-delay-ms", "5", "--ported", "01077776666"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    smpp_sender(
        &server,
        "G_S_SKT01",
        "A",
        &skt,
        json!({"carriers": ["SKT"]}),
    );
    smpp_sender(&server, "G_S_ANY01", "B", &other, json!({}));
    let rule = json!({"carriers": {"SKT": [{"sender_group": "A", "ratio": 1}],
                                   "*": [{"sender_group": "B", "ratio": 1}]}});
    let (s, v) = server.admin("PUT", "/routes/A1/SMS", Some(rule));
    assert_eq!(s, 200, "{v}");
    let (s, _) = server.load_pnx("01099998888,SKT\n01077776666,SKT\n");
    assert_eq!(s, 200);
    wait_connected(&server, "G_S_SKT01");
    wait_connected(&server, "G_S_ANY01");
    let mut first = sms("ported once");
    first["to"] = json!("01099998888");
    let mut second = sms("ported twice");
    second["to"] = json!("01077776666");
    let ids = send(&server, &token, vec![first, second]);

    let m = wait_status(&server, &token, &ids[0], |s| s == "delivered");
    assert_eq!(m["sender"], "G_S_ANY01", "{m}");
    let ported_events = |m: &Value| {
        m["events"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["code"] == 5004).count())
    };
    assert_eq!(ported_events(&m), 1, "one re-route: {m}");
    let (s, pnx) = server.admin("GET", "/pnx/01099998888", None);
    assert_eq!(s, 200);
    assert_eq!(
        pnx,
        json!({"number": "01099998888", "carrier": "UNKNOWN", "source": "table"})
    );

    let m = wait_status(&server, &token, &ids[1], |s| s == "failed");
    assert_eq!(m["code"], 5004, "{m}");
    assert_eq!(ported_events(&m), 2, "re-routed once, then final: {m}");
    assert_eq!(skt.get("control", "/stats")["messages"], 2);
    assert_eq!(other.get("control", "/stats")["messages"], 2);
}

#[test]
fn kill_9_with_messages_queued_submitted_and_awaiting_receipts_loses_nothing() {
    let smsc = Sim::smsc(&["--dlr-delay-ms", "1500"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    smpp_sender(&server, "G_S_KT01", "A", &smsc, json!({}));
    let (s, _) = server.admin("PATCH", "/senders/G_S_KT01", Some(json!({"transport": {"type": "smpp",
        "host": smsc.addr("smsc").ip().to_string(), "port": smsc.addr("smsc").port(), "system_id": "G_S_KT01",
        "password": "pw", "tps": 1000, "response_timeout_ms": 30000, "enquire_link_secs": 5}})));
    assert_eq!(s, 200);
    server.admin(
        "PUT",
        "/routes/A1/SMS",
        Some(json!({"carriers": {"*": [{"sender_group": "A", "ratio": 1}]}})),
    );
    wait_connected(&server, "G_S_KT01");
    let ids = send(
        &server,
        &token,
        (0..2_000).map(|i| sms(&format!("k{i}"))).collect(),
    );
    // Wait until some are submitted (awaiting receipts) while others are still queued.
    let deadline = Instant::now() + Duration::from_secs(20);
    while smsc.get("control", "/stats")["messages"]
        .as_u64()
        .unwrap_or(0)
        < 300
    {
        assert!(Instant::now() < deadline, "nothing reached the SMSC");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill9();
    let server = Server::start(dir.path());
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    let stats = smsc.get("control", "/stats");
    assert!(stats["messages"].as_u64().unwrap_or(0) >= 2_000, "{stats}");
}

#[test]
fn a_hostile_smpp_peer_costs_only_its_own_session() {
    // A "SMSC" that answers every bind with garbage and an absurd length.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = accepts.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 256];
            let _ = conn.read(&mut buf);
            let mut garbage = vec![0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 9];
            garbage.extend_from_slice(&[0xde; 64]);
            let _ = conn.write_all(&garbage);
        }
    });
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    let bad = json!({"group": "BAD", "channels": ["SMS"], "carriers": ["*"],
        "transport": {"type": "smpp", "host": "127.0.0.1", "port": addr.port(), "system_id": "x", "password": "y"}});
    assert_eq!(server.admin("PUT", "/senders/G_S_BAD01", Some(bad)).0, 201);
    crate::routing::sim_sender(&server, "G_S_SIM01", "GOOD", json!({}));
    server.admin("PUT", "/routes/A1/SMS", Some(json!({"carriers": {"*": [{"sender_group": "BAD", "ratio": 1}, {"sender_group": "GOOD", "ratio": 1}]}})));
    // The hostile peer is dropped and retried with backoff...
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepts.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the session did not retry");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...while everything else goes on: messages flow through the good group.
    let ids = send(
        &server,
        &token,
        (0..100).map(|i| sms(&format!("h{i}"))).collect(),
    );
    for id in &ids {
        let m = wait_status(&server, &token, id, |s| s == "delivered");
        assert_eq!(m["sender"], "G_S_SIM01");
    }
    let (_, v) = server.admin("GET", "/senders/G_S_BAD01", None);
    assert_eq!(v["state"]["connected"], false, "{v}");
    assert_eq!(server.call("GET", "/healthz", None, None).0, 200);
}

/// Issue 13: an SMSC that answers ESME_RTHROTTLED slows the session down
/// (pauses growing from 100 ms to 5 s) while the message waits at the head
/// of its queue (or, once the throttles sideline the sender, held): no
/// submit attempt is spent, so more throttles than a message has attempts
/// (10) do not fail it, and it is delivered once the carrier takes it.
#[test]
fn a_throttling_smsc_slows_the_session_and_spends_no_attempt() {
    let smsc = Sim::smsc(&["--dlr-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("T1");
    smpp_sender(&server, "G_S_KT01", "A", &smsc, json!({}));
    let rule = json!({"carriers": {"*": [{"sender_group": "A", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/T1/SMS", Some(rule)).0, 200);
    wait_connected(&server, "G_S_KT01");
    smsc.post("control", "/throttle", &json!({"throttle": true}));
    let id = send(&server, &token, vec![sms("th-1")]).remove(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while smsc.get("control", "/stats")["throttled"].as_u64() < Some(12) {
        let (_, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
        assert_ne!(m["status"], "failed", "a throttle spent an attempt: {m}");
        assert!(Instant::now() < deadline, "never throttled 12 times");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
    assert_ne!(
        m["status"], "failed",
        "12 throttles, still no attempt spent: {m}"
    );
    smsc.post("control", "/throttle", &json!({"throttle": false}));
    wait_status(&server, &token, &id, |s| s == "delivered");
}

/// Every report of the customer behind `token`, polled from `/v1/reports`.
pub fn all_reports(server: &Server, token: &str) -> Vec<Value> {
    let mut reports = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/v1/reports?limit=1000&after={after}");
        let (s, v) = server.call("GET", &path, Some(token), None);
        assert_eq!(s, 200, "{v}");
        let page = v["reports"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            return reports;
        }
        reports.extend(page);
        match v["next"].as_str() {
            Some(next) if !next.is_empty() => after = next.to_string(),
            _ => return reports,
        }
    }
}

/// Asserts that each of `ids` has exactly one report, `delivered`.
pub fn one_delivered_report_each(server: &Server, token: &str, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reports = all_reports(server, token);
        let mut seen: HashMap<&str, Vec<&Value>> = HashMap::new();
        for r in &reports {
            seen.entry(r["message_id"].as_str().unwrap_or("-"))
                .or_default()
                .push(r);
        }
        let complete = ids.iter().all(|id| seen.contains_key(id.as_str()));
        if complete || Instant::now() >= deadline {
            for id in ids {
                let list = seen.get(id.as_str()).cloned().unwrap_or_default();
                assert_eq!(list.len(), 1, "{id}: {list:?}");
                assert_eq!(list[0]["status"], "delivered", "{id}: {list:?}");
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 13: a submit_sm left unanswered past the response timeout may
/// have reached the carrier, so it is not sent again on the same link: the
/// session gives the link up, unbinds, and reads the answers that still
/// come (here the SMSC answers what it held before its unbind_resp) before
/// anything goes back to routing. Every message is submitted once (no
/// duplicate at the SMSC), its late carrier id is kept and matched by its
/// receipt (delivered on the next bind), and it gets exactly one report.
#[test]
fn a_submit_that_timed_out_is_settled_by_its_late_answer_not_sent_twice() {
    let smsc = Sim::smsc(&["--dlr-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("TO1");
    smpp_sender(&server, "G_S_KT01", "A", &smsc, json!({}));
    let (s, v) = server.admin("PATCH", "/senders/G_S_KT01", Some(json!({"transport": {"type": "smpp",
        "host": smsc.addr("smsc").ip().to_string(), "port": smsc.addr("smsc").port(), "system_id": "G_S_KT01",
        "password": "pw", "response_timeout_ms": 1000, "enquire_link_secs": 30}})));
    assert_eq!(s, 200, "{v}");
    let rule = json!({"carriers": {"*": [{"sender_group": "A", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/TO1/SMS", Some(rule)).0, 200);
    wait_connected(&server, "G_S_KT01");
    // The SMSC takes every submit and answers none, until the ESME unbinds.
    smsc.post("control", "/hold-answers", &json!({"hold": true}));
    let msgs: Vec<Value> = (0..20).map(|i| sms(&format!("late-{i}"))).collect();
    let ids = send(&server, &token, msgs);
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    let stats = smsc.get("control", "/stats");
    assert_eq!(stats["duplicates"], 0, "a submit was sent twice: {stats}");
    assert_eq!(stats["messages"], 20, "{stats}");
    for id in &ids {
        let (_, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
        let submitted = m["events"].as_array().map_or(0, |e| {
            e.iter().filter(|e| e["status"] == "submitted").count()
        });
        assert_eq!(submitted, 1, "{m}");
    }
    let (_, v) = server.admin("GET", "/senders/G_S_KT01", None);
    assert!(v["state"]["downs"].as_u64().is_some_and(|d| d >= 1), "{v}");
    one_delivered_report_each(&server, &token, &ids);
}

/// `mcmp_held_retries_total` from `GET /metrics`.
fn held_retries(server: &Server) -> u64 {
    let (s, body) =
        crate::harness::raw_request(server.addr, "GET", "/metrics", None, "text/plain", b"");
    assert_eq!(s, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("mcmp_held_retries_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no mcmp_held_retries_total in {text}"))
}

/// Retries a held message may get in `elapsed`: one per step of its backoff
/// (200 ms, then 400, 800, 1,600, 3,200, then every 5 s), and one per wake,
/// at most one a second (every tick of this test changes the catalog).
fn most_retries_in(elapsed: Duration) -> u64 {
    let ms = elapsed.as_millis() as i64;
    let (mut at, mut delay, mut steps) = (0_i64, 200_i64, 0_u64);
    while at + delay <= ms {
        at += delay;
        delay = (delay * 2).min(5_000);
        steps += 1;
    }
    steps + (ms / 1_000) as u64 + 1
}

/// Issue 13: no requeue storm when a sender is down. Its messages wait in
/// the held queue and each is routed again on its own backoff, not every
/// time something changes: here the catalog changes every 50 ms for 3 s
/// (each change used to re-route every held message within 200 ms), and
/// the held retries stay within the backoff's count. Once the sender binds,
/// they go at once and are delivered, one report each.
#[test]
fn held_messages_of_a_sender_that_is_down_back_off() {
    let smsc = Sim::smsc(&["--dlr-delay-ms", "5"]);
    smsc.post("control", "/refuse-binds", &json!({"refuse": true}));
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("HB1");
    smpp_sender(&server, "G_S_KT01", "A", &smsc, json!({}));
    let rule = json!({"carriers": {"*": [{"sender_group": "A", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/HB1/SMS", Some(rule)).0, 200);
    let before = held_retries(&server);
    let start = Instant::now();
    let ids = send(
        &server,
        &token,
        (0..5).map(|i| sms(&format!("hb-{i}"))).collect(),
    );
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(3) {
        let path = format!("/spam-keywords/churn{n}");
        assert_eq!(server.admin("PUT", &path, None).0, 200);
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let retried = held_retries(&server) - before;
    let most = 5 * most_retries_in(start.elapsed());
    assert!(
        retried <= most,
        "{retried} held retries in {:?} (at most {most})",
        start.elapsed()
    );
    assert!(retried >= 5, "each held message is retried: {retried}");
    for id in &ids {
        let (_, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
        assert_eq!(m["status"], "accepted", "still waiting: {m}");
    }
    smsc.post("control", "/refuse-binds", &json!({"refuse": false}));
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    one_delivered_report_each(&server, &token, &ids);
}
