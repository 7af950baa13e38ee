//! Resellers (SPEC §5.11, issue 20): origin codes registered per customer
//! and required of a reseller's messages (3016), carried to the carrier
//! (the SMPP optional parameter on the wire, seen by the SMSC simulator)
//! and shown in the view, the reports, the history and the export; a
//! reseller's spam keywords matched strictly. A non-reseller is unaffected.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, sms, Server};
use crate::routing::{sim_sender, wait_status};
use crate::sims::Sim;

/// Makes `g` (registered) a reseller.
fn make_reseller(server: &Server, g: &str) {
    let (s, v) = server.admin(
        "PUT",
        &format!("/customers/{g}"),
        Some(json!({"name": "Reseller", "vas": true})),
    );
    assert_eq!(s, 200, "{v}");
}

fn put_origin_code(server: &Server, g: &str, code: &str) -> (u16, Value) {
    server.admin("PUT", &format!("/customers/{g}/origin-codes/{code}"), None)
}

/// An SMS with `origin_code` (none: the field is absent).
fn sms_from(src: &str, origin: Option<&str>) -> Value {
    let mut m = sms(src);
    if let Some(o) = origin {
        m["origin_code"] = json!(o);
    }
    m
}

/// Posts `msgs` in one request; the results' codes and the results.
fn post(server: &Server, token: &str, msgs: Vec<Value>) -> (Vec<u64>, Vec<Value>) {
    let body = json!({ "messages": msgs });
    let (s, r) = server.call("POST", "/v1/messages", Some(token), Some(&body));
    assert_eq!(s, 200, "{r}");
    let results = r["results"].as_array().expect("results").clone();
    let codes = results
        .iter()
        .map(|x| x["code"].as_u64().unwrap_or(0))
        .collect();
    (codes, results)
}

/// Polls `GET path` (customer `token`, or admin without one) until the row
/// of `list` whose `message_id` is `id` appears; returns it.
fn wait_row(server: &Server, token: Option<&str>, path: &str, list: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = match token {
            Some(t) => server.call("GET", path, Some(t), None),
            None => server.admin("GET", path, None),
        };
        assert_eq!(s, 200, "{path}: {v}");
        let rows = v[list].as_array().cloned().unwrap_or_default();
        if let Some(row) = rows.into_iter().find(|r| r["message_id"] == id) {
            return row;
        }
        assert!(Instant::now() < deadline, "{id} never in {path}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_resellers_message_needs_a_registered_origin_code_which_every_read_shows() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("V1");
    make_reseller(&server, "V1");
    sim_sender(&server, "G_S_SIM01", "SIM", json!({}));
    let rule = json!({"carriers": {"*": [{"sender_group": "SIM", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/V1/SMS", Some(rule)).0, 200);

    // Registration: the format is checked; the customer must exist.
    let (s, v) = put_origin_code(&server, "V1", "BIZ-1");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"group_code": "V1", "origin_code": "BIZ-1"}));
    assert_eq!(put_origin_code(&server, "V1", "BAD_CODE").0, 400);
    assert_eq!(put_origin_code(&server, "V1", &"A".repeat(21)).0, 400);
    assert_eq!(put_origin_code(&server, "NOPE", "BIZ-1").0, 404);
    let (s, list) = server.admin("GET", "/customers/V1/origin-codes", None);
    assert_eq!(
        (s, &list["origin_codes"]),
        (200, &json!(["BIZ-1"])),
        "{list}"
    );

    // Without a code, with an unregistered one → 3016; a malformed one is
    // a schema error (3013); a registered one is accepted.
    let (codes, results) = post(
        &server,
        &token,
        vec![
            sms_from("none", None),
            sms_from("unknown", Some("BIZ-2")),
            sms_from("malformed", Some("biz 1")),
            sms_from("registered", Some("BIZ-1")),
        ],
    );
    assert_eq!(codes, vec![3016, 3016, 3013, 1000], "{results:?}");
    assert!(results[1]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("BIZ-2")));
    let id = results[3]["message_id"].as_str().expect("id").to_string();

    // The code shows in the view, the history, the reports and the export.
    let m = wait_status(&server, &token, &id, |s| s == "delivered");
    assert_eq!(m["origin_code"], "BIZ-1", "{m}");
    let since = "since=2020-01-01T00:00:00Z";
    let row = wait_row(
        &server,
        Some(&token),
        &format!("/v1/messages?{since}"),
        "messages",
        &id,
    );
    assert_eq!(row["origin_code"], "BIZ-1", "{row}");
    let report = wait_row(&server, Some(&token), "/v1/reports", "reports", &id);
    assert_eq!(report["origin_code"], "BIZ-1", "{report}");
    let export = wait_row(&server, None, &format!("/export?{since}"), "messages", &id);
    assert_eq!(export["origin_code"], "BIZ-1", "{export}");

    // Both 3016 rejections are on the blocked list.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, b) = server.admin("GET", "/blocked?customer=V1&code=3016", None);
        let srcs: Vec<&str> = b["blocked"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r["src_msg_id"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if srcs == ["none", "unknown"] {
            break;
        }
        assert!(Instant::now() < deadline, "blocked: {b}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The registration survives a restart; a deleted code is refused.
    assert!(server.terminate().success());
    let server = Server::start(dir.path());
    let (codes, _) = post(&server, &token, vec![sms_from("after", Some("BIZ-1"))]);
    assert_eq!(codes, vec![1000]);
    let (s, _) = server.admin("DELETE", "/customers/V1/origin-codes/BIZ-1", None);
    assert_eq!(s, 204);
    let (codes, _) = post(&server, &token, vec![sms_from("deleted", Some("BIZ-1"))]);
    assert_eq!(codes, vec![3016]);
    let (_, list) = server.admin("GET", "/customers/V1/origin-codes", None);
    assert_eq!(list["origin_codes"], json!([]), "{list}");
}

#[test]
fn a_non_reseller_may_send_an_origin_code_and_it_is_carried_unchecked() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("N1");
    server.hold_sms("N1");
    let (codes, results) = post(
        &server,
        &token,
        vec![sms_from("plain", None), sms_from("carried", Some("ANY-1"))],
    );
    assert_eq!(codes, vec![1000, 1000], "{results:?}");
    let id = results[1]["message_id"].as_str().expect("id");
    let (_, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
    assert_eq!(m["origin_code"], "ANY-1", "{m}");
    let id = results[0]["message_id"].as_str().expect("id");
    let (_, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
    assert_eq!(m["origin_code"], Value::Null, "{m}");
}

/// Registers an SMPP sender of group `group` to `smsc`, with `extra`
/// transport fields.
fn smpp_sender(server: &Server, name: &str, group: &str, smsc: &Sim, extra: Value) {
    let addr = smsc.addr("smsc");
    let mut transport = json!({"type": "smpp", "host": addr.ip().to_string(),
        "port": addr.port(), "system_id": name, "password": "pw", "enquire_link_secs": 5,
        "response_timeout_ms": 30000});
    if let (Value::Object(t), Value::Object(e)) = (&mut transport, extra) {
        t.extend(e);
    }
    let body =
        json!({"group": group, "channels": ["SMS"], "carriers": ["*"], "transport": transport});
    let (s, v) = server.admin("PUT", &format!("/senders/{name}"), Some(body));
    assert!(s == 200 || s == 201, "{s} {v}");
}

/// The SMSC simulator's message whose text is `text`, once it arrived.
fn smsc_message(smsc: &Sim, text: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = smsc.get("control", "/messages");
        if let Some(m) = list
            .as_array()
            .and_then(|l| l.iter().find(|m| m["text"] == text))
        {
            return m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} never reached the SMSC: {list}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_origin_code_reaches_the_smsc_as_an_optional_parameter_with_the_senders_tag() {
    let smsc = Sim::smsc(&["--dlr-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let reseller = server.register_customer("V2");
    make_reseller(&server, "V2");
    assert_eq!(put_origin_code(&server, "V2", "SHOP-0042").0, 200);
    let plain = server.register_customer("N2");
    // The reseller's sender uses the default tag (0x1410), the other
    // customer's sender one of its own.
    smpp_sender(&server, "G_S_V201", "V", &smsc, json!({}));
    smpp_sender(
        &server,
        "G_S_N201",
        "N",
        &smsc,
        json!({"origin-code-tag": "0x1520"}),
    );
    for (g, group) in [("V2", "V"), ("N2", "N")] {
        let rule = json!({"carriers": {"*": [{"sender_group": group, "ratio": 1}]}});
        assert_eq!(
            server
                .admin("PUT", &format!("/routes/{g}/SMS"), Some(rule))
                .0,
            200
        );
    }
    let (_, sender) = server.admin("GET", "/senders/G_S_V201", None);
    assert_eq!(sender["transport"]["origin_code_tag"], 0x1410, "{sender}");

    let mut coded = sms_from("coded", Some("SHOP-0042"));
    coded["text"] = json!("reseller coded");
    let (codes, results) = post(&server, &reseller, vec![coded, sms_from("uncoded", None)]);
    assert_eq!(codes, vec![1000, 3016], "{results:?}");
    let mut carried = sms_from("carried", Some("ANY-9"));
    carried["text"] = json!("plain coded");
    let mut bare = sms_from("bare", None);
    bare["text"] = json!("plain bare");
    let (codes, _) = post(&server, &plain, vec![carried, bare]);
    assert_eq!(codes, vec![1000, 1000]);

    let m = smsc_message(&smsc, "reseller coded");
    assert_eq!(m["tlvs"], json!({"0x1410": "SHOP-0042"}), "{m}");
    let m = smsc_message(&smsc, "plain coded");
    assert_eq!(m["tlvs"], json!({"0x1520": "ANY-9"}), "{m}");
    let m = smsc_message(&smsc, "plain bare");
    assert_eq!(m["tlvs"], json!({}), "{m}");
    let id = results[0]["message_id"].as_str().expect("id");
    let m = wait_status(&server, &reseller, id, |s| s == "delivered");
    assert_eq!(m["origin_code"], "SHOP-0042", "{m}");
}

#[test]
fn a_resellers_hidden_spam_keywords_are_caught_and_a_non_resellers_follow_the_normal_rule() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let reseller = server.register_customer("V3");
    make_reseller(&server, "V3");
    assert_eq!(put_origin_code(&server, "V3", "BIZ-3").0, 200);
    let plain = server.register_customer("N3");
    server.hold_sms("V3");
    server.hold_sms("N3");
    for k in ["무료수신", "FREE"] {
        assert_eq!(
            server.admin("PUT", &format!("/spam-keywords/{k}"), None).0,
            200
        );
    }
    // (text, normal rule): spaces and zero-width are seen through by
    // everyone; punctuation and look-alikes only for a reseller.
    let texts: &[(&str, u64)] = &[
        ("무 료 수 신 이벤트", 3009),
        ("무.료 이벤트 수.신", 1000),
        ("무.료.수.신 이벤트", 1000),
        ("무ㆍ료ㆍ수ㆍ신", 1000),
        ("무\u{200B}료-수_신", 1000),
        ("get it f.r.e.e now", 1000),
        ("get it frее now", 1000),
        ("get it f r e e now", 3009),
        ("주문하신 상품이 발송되었습니다.", 1000),
    ];
    let batch = |prefix: &str, origin: Option<&str>| -> Vec<Value> {
        texts
            .iter()
            .enumerate()
            .map(|(i, (text, _))| {
                let mut m = sms_from(&format!("{prefix}{i}"), origin);
                m["text"] = json!(text);
                m
            })
            .collect()
    };
    let (codes, results) = post(&server, &reseller, batch("v", Some("BIZ-3")));
    // "무.료 이벤트 수.신" has other letters between the keyword's halves:
    // not a hidden keyword.
    let want: Vec<u64> = texts
        .iter()
        .map(|(t, _)| {
            if t.starts_with("주문") || t.contains("이벤트 수") {
                1000
            } else {
                3009
            }
        })
        .collect();
    assert_eq!(codes, want, "reseller: {results:?}");
    let (codes, results) = post(&server, &plain, batch("n", None));
    let normal: Vec<u64> = texts.iter().map(|(_, c)| *c).collect();
    assert_eq!(codes, normal, "non-reseller: {results:?}");
}

#[test]
fn the_origin_code_is_a_field_of_the_http_providers_request() {
    let provider = crate::transports::provider(&["--sync"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = crate::transports::kko_customer(&server, "V4", "G_K_V401", &provider);
    make_reseller(&server, "V4");
    assert_eq!(put_origin_code(&server, "V4", "APP-7").0, 200);
    let mut coded = crate::transports::kko("k1");
    coded["origin_code"] = json!("APP-7");
    let (codes, results) = post(&server, &token, vec![coded, crate::transports::kko("k2")]);
    assert_eq!(codes, vec![1000, 3016], "{results:?}");
    let id = results[0]["message_id"].as_str().expect("id");
    let m = wait_status(&server, &token, id, |s| s == "delivered");
    assert_eq!(m["origin_code"], "APP-7", "{m}");
    let stats = provider.get("provider", "/stats");
    assert_eq!(stats["by_origin_code"], json!({"APP-7": 1}), "{stats}");
}
