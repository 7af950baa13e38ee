//! Tests of the `http` transport against an in-test provider.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{json, Value};

use super::*;
use crate::http_client::tests::{on_shard, Answer, SeenRequest, TestServer};
use crate::model::{Channel, MessageId};
use crate::sender::test_support::drive;

fn provider(r: &SeenRequest) -> Answer {
    let answer = match r.path.as_str() {
        "/accept" => (
            200,
            r#"{"provider_msg_id":"P-1","status":"accepted","extra":1}"#,
        ),
        "/delivered" => (
            200,
            r#"{"provider_msg_id":"P-2","status":"delivered","code":"K000"}"#,
        ),
        "/failed" => (
            200,
            r#"{"provider_msg_id":"P-3","status":"failed","code":"K101"}"#,
        ),
        "/bad" => (400, r#"{"error":"bad template"}"#),
        "/throttled" => (429, "{}"),
        _ => (503, "{}"),
    };
    Some((answer.0, answer.1.to_string()))
}

fn outbound(n: u64, channel: Channel) -> Outbound {
    Outbound {
        id: MessageId::new(0, n),
        channel,
        from: "0215881234".into(),
        to: "01012345678".into(),
        text: "안녕하세요".into(),
        subject: Some("제목".into()),
        template_code: Some("TPL01".into()),
        vars: vec![("name".into(), "홍길동".into())],
        international: false,
        expires_at_ms: i64::MAX,
        attachments: Vec::new(),
        origin_code: None,
        class: crate::model::Class::Realtime,
    }
}

fn config(url: String, profile: &str) -> HttpConfig {
    let mut headers = BTreeMap::new();
    headers.insert("X-Api-Key".to_string(), "secret".to_string());
    HttpConfig {
        url,
        headers,
        timeout_ms: 10_000,
        profile: profile.into(),
        file_url: None,
        ca: None,
        client_cert: None,
        client_key: None,
    }
}

/// Runs a session, pushes `messages`, waits until `done(events)` (or 15 s),
/// stops it and returns the events.
fn run_against(
    config: HttpConfig,
    messages: Vec<Outbound>,
    done: fn(&[SessionEvent]) -> bool,
) -> Vec<SessionEvent> {
    on_shard(move || {
        let (config, messages) = (config.clone(), messages.clone());
        async move {
            let start = |queue, events, stop| {
                run_session(
                    "H_K_TEST01".into(),
                    config,
                    Rc::new(HttpClient::new()),
                    Some("http://mcmp.example:8080/".into()),
                    queue,
                    events,
                    stop,
                )
            };
            drive(start, 64, messages, done).await.0
        }
    })
}

fn finals(events: &[SessionEvent]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SessionEvent::Receipt { .. } | SessionEvent::SubmitFailed { .. }
            )
        })
        .count()
}

fn submitted(events: &[SessionEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, SessionEvent::Submitted { .. }))
}

#[test]
fn accepted_answer_submits_with_the_provider_id_and_sends_the_kko_body() {
    let server = TestServer::start(provider);
    let events = run_against(
        config(server.url("/accept"), "kko"),
        vec![outbound(1, Channel::Kko)],
        submitted,
    );
    assert_eq!(events[0], SessionEvent::Up);
    assert_eq!(
        events[1],
        SessionEvent::Submitted {
            id: MessageId::new(0, 1),
            carrier_id: "P-1".into()
        }
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-api-key"), Some("secret"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&seen[0].body).expect("json");
    assert_eq!(
        body,
        json!({
            "message_id": MessageId::new(0, 1).to_string(),
            "to": "01012345678",
            "from": "0215881234",
            "text": "안녕하세요",
            "channel": "KKO",
            "report_url": "http://mcmp.example:8080/provider/v1/reports/H_K_TEST01",
            "template_code": "TPL01",
            "vars": {"name": "홍길동"},
        })
    );
}

#[test]
fn synchronous_answers_submit_then_report_at_once() {
    let server = TestServer::start(provider);
    let events = run_against(
        config(server.url("/delivered"), "rcs"),
        vec![outbound(2, Channel::Rcs)],
        |e| finals(e) == 1,
    );
    assert_eq!(
        &events[1..3],
        &[
            SessionEvent::Submitted {
                id: MessageId::new(0, 2),
                carrier_id: "P-2".into()
            },
            SessionEvent::Receipt {
                carrier_id: "P-2".into(),
                delivered: true,
                code: ResultCode::Delivered,
                detail: "K000".into()
            }
        ]
    );
    let events = run_against(
        config(server.url("/failed"), "kko"),
        vec![outbound(3, Channel::Kko)],
        |e| finals(e) == 1,
    );
    assert_eq!(
        events[2],
        SessionEvent::Receipt {
            carrier_id: "P-3".into(),
            delivered: false,
            code: ResultCode::UnknownSubscriber,
            detail: "K101".into()
        }
    );
}

#[test]
fn a_4xx_is_final_and_a_5xx_or_429_is_retryable() {
    let server = TestServer::start(provider);
    for (path, code, retry) in [
        ("/bad", ResultCode::RejectedByCarrier, false),
        ("/unavailable", ResultCode::ProviderError, true),
        ("/throttled", ResultCode::ProviderError, true),
    ] {
        let events = run_against(
            config(server.url(path), "mms"),
            vec![outbound(4, Channel::Mms)],
            |e| finals(e) == 1,
        );
        match &events[1] {
            SessionEvent::SubmitFailed {
                code: c, retry: r, ..
            } => assert_eq!((*c, *r), (code, retry), "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[test]
fn refused_connections_take_the_session_down_then_a_probe_brings_it_up() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}/accept");
    let messages = (0..DOWN_AFTER as u64)
        .map(|n| outbound(n, Channel::Push))
        .collect();
    let events = run_against(config(url.clone(), "push"), messages, |e| {
        e.iter().any(|e| matches!(e, SessionEvent::Down { .. }))
    });
    let failed = events
        .iter()
        .filter(|e| matches!(e, SessionEvent::SubmitFailed { retry: true, .. }))
        .count();
    assert_eq!(failed, DOWN_AFTER as usize, "{events:?}");
    assert!(matches!(events.last(), Some(SessionEvent::Down { .. })));

    // The same port comes back: the probe sees it and the session is up.
    let messages = (0..DOWN_AFTER as u64)
        .map(|n| outbound(n, Channel::Push))
        .collect();
    let addr = format!("127.0.0.1:{port}");
    let url2 = url.clone();
    let events = on_shard_with_late_server(url2, messages, addr);
    let ups = events.iter().filter(|e| **e == SessionEvent::Up).count();
    assert_eq!(ups, 2, "{events:?}");
}

/// Like [`run_against`], but starts the provider on `addr` once the session
/// reported `Down`, and waits for the second `Up`.
fn on_shard_with_late_server(
    url: String,
    messages: Vec<Outbound>,
    addr: String,
) -> Vec<SessionEvent> {
    on_shard(move || {
        let (url, messages, addr) = (url.clone(), messages.clone(), addr.clone());
        async move {
            let start = |queue, events, stop| {
                run_session(
                    "H_P_TEST01".into(),
                    config(url, "push"),
                    Rc::new(HttpClient::new()),
                    None,
                    queue,
                    events,
                    stop,
                )
            };
            // The server lives in the condition, so until the session stops.
            let mut server = None;
            let until = |seen: &[SessionEvent]| {
                let down = seen.iter().any(|e| matches!(e, SessionEvent::Down { .. }));
                if down && server.is_none() {
                    server = Some(TestServer::start_at(&addr, provider));
                }
                seen.iter().filter(|e| **e == SessionEvent::Up).count() == 2
            };
            drive(start, 64, messages, until).await.0
        }
    })
}

#[test]
fn a_bad_profile_or_url_keeps_the_session_down() {
    for (url, profile) in [("http://127.0.0.1:1/", "fax"), ("ftp://p.example/", "kko")] {
        let events = run_against(config(url.into(), profile), Vec::new(), |e| !e.is_empty());
        assert!(
            matches!(&events[0], SessionEvent::Down { .. }),
            "{url} {profile}: {events:?}"
        );
        assert!(!events.contains(&SessionEvent::Up));
    }
}

#[test]
fn bodies_per_profile() {
    let msg = outbound(9, Channel::Mms);
    let body = |p| -> Value { serde_json::from_slice(&request_body(p, &msg, None)).expect("json") };
    let mms = body(Profile::Mms);
    assert_eq!(mms["subject"], "제목");
    assert_eq!(mms["report_url"], Value::Null);
    assert_eq!(mms["channel"], "MMS");
    assert!(mms.get("template_code").is_none() && mms.get("title").is_none());
    let push = body(Profile::Push);
    assert_eq!(push["title"], "제목");
    assert!(push.get("subject").is_none());
    let rcs = body(Profile::Rcs);
    assert_eq!(rcs["template_code"], "TPL01");
    assert_eq!(rcs["vars"], json!({"name": "홍길동"}));
    assert_eq!(Profile::parse("KKO"), Some(Profile::Kko));
    assert_eq!(Profile::parse("sms"), None);
    assert!(rcs.get("origin_code").is_none());
}

/// SPEC §5.10: an MMS request carries its images, an RCS request the
/// provider's id of its registered file.
#[test]
fn mms_bodies_carry_the_images_and_rcs_bodies_the_providers_file_id() {
    use crate::model::Attachment;
    let image = Attachment {
        name: "a.jpg".into(),
        content_type: "image/jpeg".into(),
        data: vec![0xFF, 0xD8, 0xFF],
    };
    let mms = Outbound {
        attachments: vec![image],
        ..outbound(11, Channel::Mms)
    };
    let body: Value =
        serde_json::from_slice(&request_body(Profile::Mms, &mms, None)).expect("json");
    assert_eq!(
        body["attachments"],
        json!([{"name": "a.jpg", "content_type": "image/jpeg", "data": "/9j/"}])
    );
    let rcs = Outbound {
        attachments: vec![Attachment::provider_file("pf-7")],
        ..outbound(12, Channel::Rcs)
    };
    let body: Value =
        serde_json::from_slice(&request_body(Profile::Rcs, &rcs, None)).expect("json");
    assert_eq!(body["file_id"], "pf-7");
    let plain: Value = serde_json::from_slice(&request_body(
        Profile::Rcs,
        &outbound(13, Channel::Rcs),
        None,
    ))
    .expect("json");
    assert!(plain.get("file_id").is_none());
}

/// SPEC §5.11: a reseller's origin code is a field of the provider request.
#[test]
fn the_origin_code_is_a_field_of_every_profile() {
    let msg = Outbound {
        origin_code: Some("BIZ-0001".into()),
        ..outbound(10, Channel::Kko)
    };
    for p in [Profile::Kko, Profile::Rcs, Profile::Mms, Profile::Push] {
        let body: Value = serde_json::from_slice(&request_body(p, &msg, None)).expect("json");
        assert_eq!(body["origin_code"], "BIZ-0001", "{p:?}");
    }
}

#[test]
fn provider_reports_parse_and_ignore_unknown_fields() {
    let body = br#"{"results":[
        {"provider_msg_id":"P-1","status":"delivered","code":"K000","at":"2024-01-01"},
        {"provider_msg_id":"P-2","status":"FAILED","code":404},
        {"provider_msg_id":"P-3","status":"failed"}
    ],"batch":7}"#;
    let results = parse_provider_report(body).expect("parses");
    assert_eq!(results.len(), 3);
    assert_eq!(
        result_to_receipt(&results[0]),
        SessionEvent::Receipt {
            carrier_id: "P-1".into(),
            delivered: true,
            code: ResultCode::Delivered,
            detail: "K000".into()
        }
    );
    assert_eq!(results[1].code, "404");
    assert_eq!(
        result_to_receipt(&results[2]),
        SessionEvent::Receipt {
            carrier_id: "P-3".into(),
            delivered: false,
            code: ResultCode::ProviderError,
            detail: "failed".into()
        }
    );
    for bad in [
        &br#"{"results":[{"provider_msg_id":"P","status":"queued"}]}"#[..],
        br#"{"results":[{"status":"delivered"}]}"#,
        br#"{"results":[{"provider_msg_id":"","status":"failed"}]}"#,
        br#"not json"#,
    ] {
        assert!(
            parse_provider_report(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn the_code_table_maps_provider_codes() {
    for (code, unified) in PROVIDER_CODES {
        let delivered = *unified == ResultCode::Delivered;
        assert_eq!(provider_code(code, delivered), *unified, "{code}");
        assert!(unified.as_u16() == 2000 || (5001..=5006).contains(&unified.as_u16()));
    }
    assert_eq!(provider_code("K105", false), ResultCode::RejectedByCarrier);
    assert_eq!(provider_code("r503", false), ResultCode::ProviderError);
    assert_eq!(provider_code("X123", false), ResultCode::ProviderError);
    assert_eq!(provider_code("K000", false), ResultCode::ProviderError);
    assert_eq!(provider_code("", true), ResultCode::Delivered);
}

#[test]
fn files_are_registered_at_slash_files_on_the_providers_host_unless_configured() {
    let mut c = config("http://127.0.0.1:8080/v1/send".into(), "rcs");
    assert_eq!(c.files_url(), "http://127.0.0.1:8080/files");
    c.url = "http://p.example".into();
    assert_eq!(c.files_url(), "http://p.example/files");
    c.file_url = Some("http://m.example/media".into());
    assert_eq!(c.files_url(), "http://m.example/media");
}
