//! The durable accept path: accepted messages survive `kill -9`, and
//! `src_msg_id` dedup holds before and after the restart.

use serde_json::{json, Value};

use crate::harness::{data_dir, sms, Server};

const MESSAGES: usize = 10_000;
const BATCH: usize = 500;

fn post_batch(server: &Server, token: &str, from: usize) -> Vec<Value> {
    let messages: Vec<Value> = (from..from + BATCH)
        .map(|i| sms(&format!("order-{i}")))
        .collect();
    let (status, body) = server.call(
        "POST",
        "/v1/messages",
        Some(token),
        Some(&json!({ "messages": messages })),
    );
    assert_eq!(status, 200, "{body}");
    body["results"].as_array().expect("results").clone()
}

#[test]
fn ten_thousand_accepted_messages_survive_kill_9_and_stay_deduplicated() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A000005");
    server.hold_sms("A000005");
    let mut ids = Vec::with_capacity(MESSAGES);
    for from in (0..MESSAGES).step_by(BATCH) {
        for (i, r) in post_batch(&server, &token, from).iter().enumerate() {
            assert_eq!(r["status"], "accepted", "{r}");
            assert_eq!(r["code"], 1000);
            assert_eq!(r["src_msg_id"], format!("order-{}", from + i));
            ids.push(r["message_id"].as_str().expect("message_id").to_string());
        }
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), MESSAGES, "message ids are unique");

    // Before the restart: a re-sent src_msg_id is a duplicate of the original.
    let check_dup = |server: &Server, token: &str, i: usize| {
        let (s, body) = server.call(
            "POST",
            "/v1/messages",
            Some(token),
            Some(&sms(&format!("order-{i}"))),
        );
        assert_eq!(s, 200);
        let r = &body["results"][0];
        assert_eq!(r["status"], "rejected", "{r}");
        assert_eq!(r["code"], 3006);
        assert_eq!(r["message_id"], ids[i].as_str());
    };
    for i in [0, 1, 4_999, 9_999] {
        check_dup(&server, &token, i);
    }

    server.kill9();
    let server = Server::start(dir.path());
    // Tokens survive the restart (the signing key lives in the data dir).
    for (i, id) in ids.iter().enumerate() {
        let (s, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
        assert_eq!(s, 200, "message {i} ({id}) lost after kill -9: {m}");
        assert_eq!(m["src_msg_id"], format!("order-{i}"));
        assert_eq!(m["status"], "accepted");
        assert_eq!(m["channel"], "SMS");
    }
    // After the restart: every src_msg_id is still taken, by the original id.
    for from in (0..MESSAGES).step_by(BATCH) {
        for (i, r) in post_batch(&server, &token, from).iter().enumerate() {
            assert_eq!(r["code"], 3006, "{r}");
            assert_eq!(r["message_id"], ids[from + i].as_str());
        }
    }
    let (s, m) = server.call(
        "GET",
        "/v1/messages?src_msg_id=order-42",
        Some(&token),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(m["message_id"], ids[42].as_str());
}

#[test]
fn duplicates_inside_one_request_and_other_customers() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let a = server.register_customer("A1");
    let b = server.register_customer("B1");
    let body = json!({"messages": [sms("x"), sms("x")]});
    let (_, r) = server.call("POST", "/v1/messages", Some(&a), Some(&body));
    assert_eq!(r["results"][0]["status"], "accepted");
    assert_eq!(r["results"][1]["code"], 3006);
    assert_eq!(r["results"][1]["message_id"], r["results"][0]["message_id"]);
    // Another customer may use the same src_msg_id, and cannot read A's message.
    let (_, rb) = server.call("POST", "/v1/messages", Some(&b), Some(&sms("x")));
    assert_eq!(rb["results"][0]["status"], "accepted");
    let a_id = r["results"][0]["message_id"].as_str().expect("id");
    let (s, _) = server.call("GET", &format!("/v1/messages/{a_id}"), Some(&b), None);
    assert_eq!(s, 404);
    let (s, m) = server.call("GET", &format!("/v1/messages/{a_id}"), Some(&a), None);
    assert_eq!(s, 200);
    assert_eq!(m["events"][0]["status"], "accepted");
}

#[test]
fn catalog_checks_reject_in_spec_order() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    let mut kko = sms("k");
    kko["channel"] = json!("KKO");
    kko["template_code"] = json!("T1");
    let mut bad_bill = sms("b");
    bad_bill["bill_code"] = json!("NOPE");
    let mut bad_from = sms("f");
    bad_from["from"] = json!("0299999999");
    let body = json!({"messages": [kko, bad_bill, bad_from, sms("ok")]});
    let (s, r) = server.call("POST", "/v1/messages", Some(&token), Some(&body));
    assert_eq!(s, 200, "{r}");
    let codes: Vec<_> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["code"].as_u64())
        .collect();
    assert_eq!(codes, vec![Some(3005), Some(3004), Some(3003), Some(1000)]);
    // dry run: same checks, nothing stored.
    let (_, d) = server.call(
        "POST",
        "/v1/messages?dry_run=true",
        Some(&token),
        Some(&sms("dry")),
    );
    assert_eq!(d["results"][0]["status"], "accepted");
    assert!(d["results"][0].get("message_id").is_none());
    let (_, again) = server.call("POST", "/v1/messages", Some(&token), Some(&sms("dry")));
    assert_eq!(
        again["results"][0]["status"], "accepted",
        "dry run did not take the src_msg_id"
    );
}

#[test]
fn small_segments_roll_into_spares_and_lose_nothing_on_kill_9() {
    let dir = data_dir();
    let data = dir.path().join("data");
    let config = dir.path().join("mcmp.toml");
    std::fs::write(&config, "[wal]\nsegment-size = \"64KiB\"\n").expect("config");
    let args = ["--config", config.to_str().expect("path")];
    let server = Server::start_with(&data, &args);
    let token = server.register_customer("A000005");
    server.hold_sms("A000005");
    let mut ids = Vec::new();
    for from in (0..5_000).step_by(BATCH) {
        for r in post_batch(&server, &token, from) {
            assert_eq!(r["status"], "accepted", "{r}");
            ids.push(r["message_id"].as_str().expect("message_id").to_string());
        }
    }
    let segments = |data: &std::path::Path| {
        let mut n = 0;
        for shard in std::fs::read_dir(data.join("wal")).expect("wal dir") {
            for f in std::fs::read_dir(shard.expect("entry").path()).expect("shard dir") {
                let name = f.expect("entry").file_name();
                n += usize::from(name.to_string_lossy().ends_with(".wal"));
            }
        }
        n
    };
    // The shards rolled several times (a 64 KiB segment holds about 500 of
    // these records).
    assert!(segments(&data) >= 8, "{} segments", segments(&data));
    server.kill9();
    let server = Server::start_with(&data, &args);
    for (i, id) in ids.iter().enumerate() {
        let (s, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
        assert_eq!(s, 200, "message {i} ({id}) lost after kill -9: {m}");
        assert_eq!(m["src_msg_id"], format!("order-{i}"));
    }
}

/// SPEC §5.3: below `wal.min-free` new messages get 503 `storage_full`;
/// reads, readiness and dry runs go on. (The watermark here is larger than
/// any disk, so the check is always below it.)
#[test]
fn below_wal_min_free_new_messages_get_503_storage_full() {
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    std::fs::write(&config, "[wal]\nmin-free = \"1000000000GiB\"\n").expect("config");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("path")],
    );
    let token = server.register_customer("A000005");
    let (s, v) = server.call("POST", "/v1/messages", Some(&token), Some(&sms("low")));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (503, Some("storage_full")),
        "{v}"
    );
    let (s, v) = server.call(
        "POST",
        "/v1/messages?dry_run=true",
        Some(&token),
        Some(&sms("low")),
    );
    assert_eq!(s, 200, "a dry run stores nothing: {v}");
    let (s, _) = server.call("GET", "/readyz", None, None);
    assert_eq!(s, 200, "still serving");
    let (s, _) = server.call("GET", "/v1/messages?src_msg_id=low", Some(&token), None);
    assert_eq!(s, 404, "reads go on");
}
