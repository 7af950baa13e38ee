//! Routing through the HTTP API with `sim` senders: exact weighted split,
//! the `*` rule, no route, held messages and their timeout, PNX, and the
//! operator's validation errors.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, sms, Server};

/// Registers a `sim` sender.
pub fn sim_sender(server: &Server, name: &str, group: &str, extra: Value) {
    let mut transport = json!({"type": "sim", "latency_ms": 1, "dlr_delay_ms": 1});
    if let (Value::Object(t), Value::Object(e)) = (&mut transport, extra) {
        t.extend(e);
    }
    let body = json!({"group": group, "channels": ["SMS", "LMS"], "carriers": ["*"], "transport": transport});
    let (s, v) = server.admin("PUT", &format!("/senders/{name}"), Some(body));
    assert!(s == 200 || s == 201, "{s} {v}");
}

/// Polls a message until `pred` holds for its status, or panics.
pub fn wait_status(server: &Server, token: &str, id: &str, pred: impl Fn(&str) -> bool) -> Value {
    // Generous: CI runs many servers in parallel on two cores.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(token), None);
        if m["status"].as_str().is_some_and(&pred) {
            return m;
        }
        assert!(Instant::now() < deadline, "message {id} stuck: {m}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send_many(server: &Server, token: &str, prefix: &str, n: usize) -> Vec<String> {
    crate::harness::send_accepted(
        server,
        token,
        (0..n).map(|i| sms(&format!("{prefix}{i}"))).collect(),
    )
}

#[test]
fn one_to_one_rule_splits_exactly_and_every_message_is_delivered() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    sim_sender(&server, "G_S_SIMA01", "A", json!({}));
    sim_sender(&server, "G_S_SIMB01", "B", json!({}));
    let rule = json!({"carriers": {"KT": [{"sender_group": "A", "ratio": 1}, {"sender_group": "B", "ratio": 1}],
                                   "*": [{"sender_group": "A", "ratio": 1}, {"sender_group": "B", "ratio": 0}]}});
    let (s, v) = server.admin("PUT", "/routes/A1/SMS", Some(rule));
    assert_eq!(s, 200, "{v}");
    let (s, v) = server.load_pnx("number,carrier\n01012345678,KT\n");
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&v));
    let (_, p) = server.admin("GET", "/pnx/01012345678", None);
    assert_eq!(
        (p["carrier"].as_str(), p["source"].as_str()),
        (Some("KT"), Some("table"))
    );

    let ids = send_many(&server, &token, "k", 1000);
    let mut per_sender = std::collections::HashMap::new();
    for id in &ids {
        let m = wait_status(&server, &token, id, |s| s == "delivered");
        assert_eq!(m["carrier"], "KT");
        let events: Vec<_> = m["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["status"].clone())
            .collect();
        assert_eq!(
            events,
            vec![
                json!("accepted"),
                json!("queued"),
                json!("submitted"),
                json!("delivered")
            ]
        );
        *per_sender
            .entry(m["sender"].as_str().expect("sender").to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(per_sender.get("G_S_SIMA01"), Some(&500), "{per_sender:?}");
    assert_eq!(per_sender.get("G_S_SIMB01"), Some(&500), "{per_sender:?}");

    // Another carrier uses the "*" key, where B has ratio 0.
    let mut other = sms("other");
    other["to"] = json!("01099998888");
    let (_, r) = server.call("POST", "/v1/messages", Some(&token), Some(&other));
    let id = r["results"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_string();
    let m = wait_status(&server, &token, &id, |s| s == "delivered");
    assert_eq!(m["sender"], "G_S_SIMA01");
    assert_eq!(m["carrier"], "UNKNOWN");
}

#[test]
fn no_route_fails_4001_and_an_unserved_group_holds_then_fails_4002() {
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    std::fs::write(&config, "[routing]\nhold-timeout = \"1s\"\n").expect("config");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("path")],
    );
    let token = server.register_customer("A1");
    let (_, r) = server.call("POST", "/v1/messages", Some(&token), Some(&sms("noroute")));
    let id = r["results"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_string();
    let m = wait_status(&server, &token, &id, |s| s == "failed");
    assert_eq!(m["code"], 4001);

    // The default customer's rule points at a group without senders.
    let (s, v) = server.admin(
        "PUT",
        "/routes/*/SMS",
        Some(json!({"carriers": {"*": [{"sender_group": "NOBODY", "ratio": 1}]}})),
    );
    assert_eq!(s, 200);
    assert!(
        v["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("NOBODY")),
        "{v}"
    );
    let (_, r) = server.call("POST", "/v1/messages", Some(&token), Some(&sms("held")));
    let id = r["results"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_string();
    let m = wait_status(&server, &token, &id, |s| s == "failed");
    assert_eq!(m["code"], 4002);
}

#[test]
fn held_messages_survive_a_restart_and_go_out_when_a_sender_appears() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    let (s, _) = server.admin(
        "PUT",
        "/routes/A1/SMS",
        Some(json!({"carriers": {"*": [{"sender_group": "LATER", "ratio": 1}]}})),
    );
    assert_eq!(s, 200);
    let ids = send_many(&server, &token, "h", 50);
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "accepted");
    }
    server.kill9();
    let server = Server::start(dir.path());
    sim_sender(&server, "G_S_LATER01", "LATER", json!({}));
    for id in &ids {
        let m = wait_status(&server, &token, id, |s| s == "delivered");
        assert_eq!(m["sender"], "G_S_LATER01");
    }
}

#[test]
fn operator_errors_are_400_with_a_clear_message() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let cases = [
        ("/routes/A1/FAX", json!({"carriers": {}})),
        ("/routes/A1/SMS", json!({"carriers": {"VERIZON": []}})),
        (
            "/routes/A1/SMS",
            json!({"carriers": {"KT": [{"sender_group": "A", "ratio": -1}]}}),
        ),
        (
            "/senders/X",
            json!({"group": "A", "channels": ["SMS"], "carriers": ["*"], "transport": {"type": "sim", "success_rate": 2.0}}),
        ),
        (
            "/senders/X",
            json!({"group": "A", "channels": ["SMS"], "carriers": ["*"], "transport": {"type": "carrier-pigeon"}}),
        ),
        (
            "/senders/X",
            json!({"group": "", "channels": ["SMS"], "carriers": ["*"], "transport": {"type": "sim"}}),
        ),
    ];
    for (path, body) in cases {
        let (s, v) = server.admin("PUT", path, Some(body.clone()));
        assert_eq!(s, 400, "{path} {body} → {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let (s, _) = server.load_pnx("0101234,AT&T\n");
    assert_eq!(s, 400);
}
