//! Table-driven tests of every body and message rule.

use super::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mcmp_engine::model::Attachment;
use serde_json::{json, Value};

const NOW: i64 = 1_795_306_700_000; // 2026-11-22T00:18:20Z

/// A valid domestic SMS; tests patch fields into it.
fn sms() -> Value {
    json!({"src_msg_id":"m1","channel":"SMS","bill_code":"B001",
           "from":"02-1234-5678","to":"010-1234-5678","text":"hello"})
}

fn with(mut base: Value, patch: Value) -> Value {
    if let (Some(obj), Some(p)) = (base.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v == &json!("<remove>") {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

fn jpeg(len: usize) -> String {
    let mut data = vec![0u8; len];
    data[0] = 0xFF;
    data[1] = 0xD8;
    STANDARD.encode(data)
}

fn one(msg: &Value) -> Result<MessageRequest, Rejection> {
    let body = msg.to_string();
    let mut results = parse_messages(body.as_bytes(), NOW).expect("structurally valid");
    assert_eq!(results.len(), 1);
    results.remove(0)
}

#[test]
fn valid_sms_is_normalized() {
    let req = one(&sms()).expect("valid");
    assert_eq!(req.src_msg_id, "m1");
    assert_eq!(req.channel, Channel::Sms);
    assert_eq!(req.from.as_deref(), Some("0212345678"));
    assert_eq!(req.to, "01012345678");
    assert_eq!(req.parts, 1);
    assert!(!req.ad);
    assert_eq!(req.send_at, None);
}

#[test]
fn body_errors() {
    let many = |n: usize| json!({"messages": vec![sms(); n]}).to_string().into_bytes();
    let cases: Vec<(Vec<u8>, BodyError)> = vec![
        (vec![0xFF, b'{', b'}'], BodyError::InvalidUtf8),
        (b"".to_vec(), BodyError::InvalidJson(String::new())),
        (
            b"{\"messages\":[".to_vec(),
            BodyError::InvalidJson(String::new()),
        ),
        (b"not json".to_vec(), BodyError::InvalidJson(String::new())),
        (b"{} {}".to_vec(), BodyError::InvalidJson(String::new())),
        (
            br#"{"src_msg_id":"a","src_msg_id":"b"}"#.to_vec(),
            BodyError::InvalidJson(String::new()),
        ),
        (
            br#"{"messages":[],"x":1}"#.to_vec(),
            BodyError::UnknownField("x".into()),
        ),
        (
            br#"{"foo":1,"messages":[]}"#.to_vec(),
            BodyError::UnknownField("foo".into()),
        ),
        (
            with(sms(), json!({"txet":"hi"})).to_string().into_bytes(),
            BodyError::UnknownField("txet".into()),
        ),
        (
            json!({"messages":[with(sms(), json!({"attachments":[{"nam":"a"}]}))]})
                .to_string()
                .into_bytes(),
            BodyError::UnknownField("nam".into()),
        ),
        (
            with(sms(), json!({"fallback":{"channel":"SMS","txt":"x"}}))
                .to_string()
                .into_bytes(),
            BodyError::UnknownField("txt".into()),
        ),
        (
            with(
                sms(),
                json!({"fallback":[{"channel":"SMS","text":"x","y":1}]}),
            )
            .to_string()
            .into_bytes(),
            BodyError::UnknownField("y".into()),
        ),
        (
            with(sms(), json!({"email":{"html":true,"cc":"x"}}))
                .to_string()
                .into_bytes(),
            BodyError::UnknownField("cc".into()),
        ),
        (
            with(sms(), json!({"push":{"title":"t","badge":1}}))
                .to_string()
                .into_bytes(),
            BodyError::UnknownField("badge".into()),
        ),
        (
            with(sms(), json!({"messages":[]})).to_string().into_bytes(),
            BodyError::UnknownField("messages".into()),
        ),
        (
            with(sms(), json!({"text":5})).to_string().into_bytes(),
            BodyError::InvalidType(String::new()),
        ),
        (
            with(sms(), json!({"ad":"yes"})).to_string().into_bytes(),
            BodyError::InvalidType(String::new()),
        ),
        (
            with(sms(), json!({"vars":{"a":[1]}}))
                .to_string()
                .into_bytes(),
            BodyError::InvalidType(String::new()),
        ),
        (
            with(sms(), json!({"vars":{"a":null}}))
                .to_string()
                .into_bytes(),
            BodyError::InvalidType(String::new()),
        ),
        (
            with(sms(), json!({"vars":[1]})).to_string().into_bytes(),
            BodyError::InvalidType(String::new()),
        ),
        (
            with(sms(), json!({"fallback":"SMS"}))
                .to_string()
                .into_bytes(),
            BodyError::InvalidType(String::new()),
        ),
        (
            with(sms(), json!({"attachments":{}}))
                .to_string()
                .into_bytes(),
            BodyError::InvalidType(String::new()),
        ),
        (
            with(sms(), json!({"push":{"title":"t","data":{"k":{}}}}))
                .to_string()
                .into_bytes(),
            BodyError::InvalidType(String::new()),
        ),
        (
            br#"{"messages":null}"#.to_vec(),
            BodyError::InvalidType(String::new()),
        ),
        (
            br#"{"messages":[5]}"#.to_vec(),
            BodyError::InvalidType(String::new()),
        ),
        (b"[]".to_vec(), BodyError::InvalidType(String::new())),
        (b"42".to_vec(), BodyError::InvalidType(String::new())),
        (br#"{"messages":[]}"#.to_vec(), BodyError::Empty),
        (many(1001), BodyError::TooManyMessages(1001)),
    ];
    for (body, want) in cases {
        let got = parse_messages(&body, NOW).expect_err(&String::from_utf8_lossy(&body));
        let same = match (&got, &want) {
            (BodyError::InvalidJson(_), BodyError::InvalidJson(_))
            | (BodyError::InvalidType(_), BodyError::InvalidType(_)) => true,
            _ => got == want,
        };
        assert!(
            same,
            "{}: got {got:?}, want {want:?}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(got.code(), want.code());
        assert!(!got.message().is_empty());
    }
}

#[test]
fn body_error_codes_and_messages() {
    let cases = [
        (BodyError::InvalidUtf8, "invalid_utf8", "UTF-8"),
        (BodyError::InvalidJson("eof".into()), "invalid_json", "eof"),
        (
            BodyError::UnknownField("txet".into()),
            "unknown_field",
            "`txet`",
        ),
        (
            BodyError::InvalidType("invalid type: x".into()),
            "invalid_type",
            "invalid type",
        ),
        (
            BodyError::TooManyMessages(1001),
            "too_many_messages",
            "1001",
        ),
        (BodyError::Empty, "empty_batch", "no messages"),
    ];
    for (e, code, needle) in cases {
        assert_eq!(e.code(), code);
        assert!(e.message().contains(needle), "{}", e.message());
    }
}

#[test]
fn batches_keep_order_up_to_the_limit() {
    let msgs: Vec<Value> = (0..1000)
        .map(|i| {
            let to = if i % 2 == 0 { "01012345678" } else { "bad" };
            with(sms(), json!({"src_msg_id": format!("m{i}"), "to": to}))
        })
        .collect();
    let body = json!({ "messages": msgs }).to_string();
    let results = parse_messages(body.as_bytes(), NOW).expect("1000 is allowed");
    assert_eq!(results.len(), 1000);
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(req) => assert!(i % 2 == 0 && req.src_msg_id == format!("m{i}")),
            Err(rej) => {
                assert!(i % 2 == 1, "{i}: {rej:?}");
                assert_eq!(rej.src_msg_id, format!("m{i}"));
                assert_eq!(rej.code, ResultCode::InvalidRecipient);
            }
        }
    }
    // The wrapper may be preceded by whitespace.
    let body = format!("  \n{}", json!({"messages":[sms()]}));
    assert_eq!(parse_messages(body.as_bytes(), NOW).expect("ok").len(), 1);
}

/// (patch applied to a valid SMS, expected code, word the reason contains).
type Case = (Value, ResultCode, &'static str);

fn check(cases: Vec<Case>) {
    for (msg, code, needle) in cases {
        let rej = one(&msg).expect_err(&msg.to_string());
        assert_eq!(rej.code, code, "{msg}: {}", rej.reason);
        assert!(rej.reason.contains(needle), "{msg}: {}", rej.reason);
    }
}

#[test]
fn required_and_invalid_fields() {
    use ResultCode::InvalidField as F;
    let s = sms;
    check(vec![
        (with(s(), json!({"src_msg_id":"<remove>"})), F, "src_msg_id"),
        (with(s(), json!({"src_msg_id":null})), F, "src_msg_id"),
        (with(s(), json!({"src_msg_id":""})), F, "src_msg_id"),
        (
            with(s(), json!({"src_msg_id":"x".repeat(101)})),
            F,
            "src_msg_id",
        ),
        (with(s(), json!({"channel":"<remove>"})), F, "channel"),
        (with(s(), json!({"channel":"FAX"})), F, "FAX"),
        (with(s(), json!({"channel":"sms"})), F, "channel"),
        (with(s(), json!({"bill_code":"<remove>"})), F, "bill_code"),
        (with(s(), json!({"to":"<remove>"})), F, "`to`"),
        (with(s(), json!({"from":"<remove>"})), F, "from"),
        (with(s(), json!({"from":"12"})), F, "from"),
        (with(s(), json!({"from":"02 1234"})), F, "from"),
        (with(s(), json!({"send_at":"tomorrow"})), F, "send_at"),
        (
            with(s(), json!({"send_at":"2026-11-22T00:18:20"})),
            F,
            "send_at",
        ),
        (with(s(), json!({"text":"<remove>"})), F, "text"),
        (with(s(), json!({"text":""})), F, "text"),
        (with(s(), json!({"subject":"hi"})), F, "subject"),
        (with(s(), json!({"template_code":"T1"})), F, "template_code"),
        (with(s(), json!({"vars":{"a":"b"}})), F, "vars"),
        (
            with(
                s(),
                json!({"attachments":[{"content_type":"image/jpeg","data":jpeg(4)}]}),
            ),
            F,
            "attachments",
        ),
        (with(s(), json!({"email":{"html":true}})), F, "email"),
        (with(s(), json!({"push":{"title":"t"}})), F, "push"),
    ]);
    // The boundary itself is fine, and the rejection carries the id.
    assert!(one(&with(sms(), json!({"src_msg_id":"가".repeat(100)}))).is_ok());
    let rej = one(&with(sms(), json!({"channel":"FAX"}))).expect_err("unknown channel");
    assert_eq!(rej.src_msg_id, "m1");
}

#[test]
fn send_at_rules() {
    let cases: &[(&str, Option<i64>)] = &[
        ("2026-11-22T01:00:00Z", Some(1_795_309_200_000)),
        ("2026-11-22T10:00:00+09:00", Some(1_795_309_200_000)),
        ("2026-11-22T00:18:15Z", Some(NOW - 5_000)),
        ("2026-11-22T00:18:14.999Z", None),
        ("2020-01-01T00:00:00Z", None),
    ];
    for (at, want) in cases {
        let req = one(&with(sms(), json!({ "send_at": at }))).expect("valid");
        assert_eq!(req.send_at, *want, "{at}");
    }
    assert_eq!(
        one(&with(sms(), json!({"send_at":null})))
            .expect("ok")
            .send_at,
        None
    );
}

#[test]
fn recipients() {
    use ResultCode::InvalidRecipient as R;
    let email = json!({"src_msg_id":"e","channel":"EMAIL","bill_code":"B","to":"a@example.com","subject":"s","text":"t"});
    let push =
        json!({"src_msg_id":"p","channel":"PUSH","bill_code":"B","to":"tok","push":{"title":"t"}});
    check(vec![
        (with(sms(), json!({"to":"12345"})), R, "to"),
        (with(sms(), json!({"to":"01212345678"})), R, "to"),
        (with(sms(), json!({"to":"+1234"})), R, "to"),
        (with(email.clone(), json!({"to":"nobody"})), R, "to"),
        (with(email.clone(), json!({"to":"a@b"})), R, "to"),
        (
            with(email.clone(), json!({"to":"a b@example.com"})),
            R,
            "to",
        ),
        (with(email.clone(), json!({"to":"a@-x.com"})), R, "to"),
        (with(email.clone(), json!({"to":"a@example.c0m"})), R, "to"),
        (with(email.clone(), json!({"to":"@example.com"})), R, "to"),
        (
            with(push.clone(), json!({"to":""})),
            ResultCode::InvalidField,
            "to",
        ),
        (with(push.clone(), json!({"to":"x".repeat(4097)})), R, "to"),
    ]);
    let cases: &[(Value, &str)] = &[
        (
            with(
                sms(),
                json!({"to":"+82 10".replace(' ', "-") + "-1234-5678"}),
            ),
            "01012345678",
        ),
        (with(sms(), json!({"to":"+14155552671"})), "+14155552671"),
        (
            with(email, json!({"to":"first.last+tag@mail.example.co.kr"})),
            "first.last+tag@mail.example.co.kr",
        ),
        (
            with(push, json!({"to":"x".repeat(4096)})),
            &"x".repeat(4096),
        ),
    ];
    for (msg, to) in cases {
        assert_eq!(one(msg).expect("valid").to, *to);
    }
}

#[test]
fn sms_limits() {
    let ok: &[(Value, u16)] = &[
        // Exactly 90 EUC-KR bytes: 45 Hangul syllables.
        (with(sms(), json!({"text":"가".repeat(45)})), 1),
        (
            with(sms(), json!({"text":format!("{}ab", "한".repeat(44))})),
            1,
        ),
        // Emoji: not EUC-KR nor GSM-7, so UCS-2 (2 units each).
        (with(sms(), json!({"text":"😀".repeat(35)})), 1),
        (
            with(sms(), json!({"to":"+14155552671","text":"a".repeat(160)})),
            1,
        ),
        (
            with(sms(), json!({"to":"+14155552671","text":"a".repeat(400)})),
            3,
        ),
        (
            with(sms(), json!({"to":"+447911123456","text":"가".repeat(200)})),
            3,
        ),
        (
            with(
                sms(),
                json!({"to":"+14155552671","text":"😀 hi".repeat(30)}),
            ),
            3,
        ),
    ];
    for (msg, parts) in ok {
        assert_eq!(one(msg).expect("fits").parts, *parts, "{msg}");
    }
    use ResultCode::BodyTooLong as L;
    check(vec![
        // 91 EUC-KR bytes.
        (
            with(sms(), json!({"text":format!("{}a", "가".repeat(45))})),
            L,
            "LMS",
        ),
        (with(sms(), json!({"text":"😀".repeat(36)})), L, "text"),
        (
            with(sms(), json!({"to":"+14155552671","text":"a".repeat(1531)})),
            L,
            "text",
        ),
    ]);
}

fn lms() -> Value {
    with(sms(), json!({"channel":"LMS","subject":"제목"}))
}

fn mms(attachments: Value) -> Value {
    with(lms(), json!({"channel":"MMS","attachments":attachments}))
}

fn att(data: String) -> Value {
    json!({"name":"a.jpg","content_type":"image/jpeg","data":data})
}

#[test]
fn lms_and_mms_limits() {
    assert!(one(&with(
        lms(),
        json!({"text":"가".repeat(1000),"subject":"가".repeat(20)})
    ))
    .is_ok());
    let req = one(&mms(json!([
        att(jpeg(300 * 1024)),
        att(jpeg(300 * 1024)),
        att(jpeg(200 * 1024))
    ])))
    .expect("exactly at the limits");
    assert_eq!(req.attachments.len(), 3);
    assert_eq!(req.attachments[0].name, "a.jpg");
    assert_eq!(req.attachments[0].data.len(), 300 * 1024);
    assert!(one(&with(mms(json!([att(jpeg(10))])), json!({"text":null}))).is_ok());
    use ResultCode::{BodyTooLong as L, InvalidField as F};
    check(vec![
        (
            with(lms(), json!({"text":format!("{}a", "가".repeat(1000))})),
            L,
            "text",
        ),
        (with(lms(), json!({"text":"😀".repeat(1001)})), L, "text"),
        (
            with(lms(), json!({"subject":"가".repeat(21)})),
            L,
            "subject",
        ),
        (mms(json!([])), F, "attachments"),
        (
            mms(json!([
                att(jpeg(4)),
                att(jpeg(4)),
                att(jpeg(4)),
                att(jpeg(4))
            ])),
            L,
            "attachments",
        ),
        (mms(json!([att(jpeg(300 * 1024 + 1))])), L, "attachments[0]"),
        (
            mms(json!([att(jpeg(4)), att(jpeg(400 * 1024))])),
            L,
            "attachments[1]",
        ),
        (
            mms(json!([
                att(jpeg(300 * 1024)),
                att(jpeg(300 * 1024)),
                att(jpeg(201 * 1024))
            ])),
            L,
            "total",
        ),
        (mms(json!([att("not base64!".into())])), F, "base64"),
        (mms(json!([att(STANDARD.encode(b"GIF89a"))])), F, "JPEG"),
        (
            mms(json!([{"content_type":"image/png","data":jpeg(4)}])),
            F,
            "content_type",
        ),
        (mms(json!([{"data":jpeg(4)}])), F, "content_type"),
        (mms(json!([{"content_type":"image/jpeg"}])), F, "data"),
        (
            with(
                mms(json!([att(jpeg(4))])),
                json!({"subject":"가".repeat(21)}),
            ),
            L,
            "subject",
        ),
    ]);
}

fn kko() -> Value {
    with(
        sms(),
        json!({"channel":"KKO","template_code":"T1","vars":{"name":"홍길동","n":3,"ok":true,"x":1.5}}),
    )
}

fn rcs() -> Value {
    with(sms(), json!({"channel":"RCS"}))
}

#[test]
fn kko_and_rcs_rules() {
    let req = one(&kko()).expect("valid");
    let vars: Vec<(&str, &str)> = req
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [("n", "3"), ("name", "홍길동"), ("ok", "true"), ("x", "1.5")]
    );
    assert!(one(&with(kko(), json!({"text":"가".repeat(1000)}))).is_ok());
    assert!(one(&with(rcs(), json!({"text":"가".repeat(1300)}))).is_ok());
    assert!(one(&with(
        rcs(),
        json!({"text":null,"template_code":"R1","vars":{"a":"b"}})
    ))
    .is_ok());
    use ResultCode::{BodyTooLong as L, InvalidField as F};
    check(vec![
        (
            with(kko(), json!({"template_code":"<remove>","vars":null})),
            F,
            "template_code",
        ),
        (with(kko(), json!({"template_code":""})), F, "template_code"),
        (with(kko(), json!({"text":"가".repeat(1001)})), L, "text"),
        (with(kko(), json!({"subject":"x"})), F, "subject"),
        (with(rcs(), json!({"text":"가".repeat(1301)})), L, "text"),
        (with(rcs(), json!({"text":null})), F, "template_code"),
    ]);
}

#[test]
fn fallback_rules() {
    let req = one(&with(
        kko(),
        json!({"fallback":{"channel":"SMS","text":"hi"}}),
    ))
    .expect("one step");
    assert_eq!(req.fallback.len(), 1);
    assert_eq!(req.fallback[0].channel, Channel::Sms);
    let chain = json!([
        {"channel":"KKO","text":"k","template_code":"T2"},
        {"channel":"LMS","text":"long","subject":"s"},
        {"channel":"SMS","text":"short","subject":null,"template_code":null}
    ]);
    let req = one(&with(rcs(), json!({ "fallback": chain }))).expect("chain");
    let channels: Vec<Channel> = req.fallback.iter().map(|s| s.channel).collect();
    assert_eq!(channels, [Channel::Kko, Channel::Lms, Channel::Sms]);
    assert_eq!(req.fallback[0].template_code.as_deref(), Some("T2"));
    assert_eq!(req.fallback[1].subject.as_deref(), Some("s"));
    assert!(one(&with(kko(), json!({"fallback":[]})))
        .expect("empty")
        .fallback
        .is_empty());
    assert!(one(&with(kko(), json!({"fallback":null})))
        .expect("null")
        .fallback
        .is_empty());
    let step = |v: Value| with(rcs(), json!({ "fallback": v }));
    use ResultCode::{BodyTooLong as L, InvalidField as F};
    check(vec![
        (
            with(sms(), json!({"fallback":{"channel":"LMS","text":"x"}})),
            F,
            "fallback",
        ),
        (
            with(lms(), json!({"fallback":{"channel":"SMS","text":"x"}})),
            F,
            "fallback",
        ),
        (
            step(json!({"channel":"EMAIL","text":"x"})),
            F,
            "fallback[0].channel",
        ),
        (
            step(json!({"channel":"FAX","text":"x"})),
            F,
            "fallback[0].channel",
        ),
        (step(json!({"text":"x"})), F, "fallback[0].channel"),
        (step(json!({"channel":"SMS"})), F, "fallback[0].text"),
        (
            step(json!([{"channel":"SMS","text":"x"},{"channel":"KKO","text":"x"}])),
            F,
            "fallback[1].template_code",
        ),
        (
            step(json!({"channel":"SMS","text":"x","subject":"s"})),
            F,
            "subject",
        ),
        (
            step(json!({"channel":"SMS","text":"x","template_code":"T"})),
            F,
            "template_code",
        ),
        (step(json!({"channel":"RCS"})), F, "fallback[0]"),
        (
            step(
                json!([{"channel":"SMS","text":"x"}, {"channel":"SMS","text":"x"}, {"channel":"SMS","text":"x"}, {"channel":"SMS","text":"x"}]),
            ),
            F,
            "steps",
        ),
        (
            step(json!({"channel":"SMS","text":"가".repeat(46)})),
            L,
            "fallback[0].text",
        ),
        (
            step(json!({"channel":"LMS","text":"가".repeat(1001)})),
            L,
            "fallback[0].text",
        ),
        (
            step(json!({"channel":"LMS","text":"x","subject":"가".repeat(21)})),
            L,
            "fallback[0].subject",
        ),
        (
            step(json!({"channel":"KKO","text":"가".repeat(1001),"template_code":"T"})),
            L,
            "fallback[0].text",
        ),
    ]);
}

fn email() -> Value {
    json!({"src_msg_id":"e1","channel":"EMAIL","bill_code":"B","to":"a@example.com",
           "from":"noreply@shop.example","subject":"안녕하세요","text":"<p>hi</p>",
           "email":{"from_name":"Shop","reply_to":"help@shop.example","html":true}})
}

fn push() -> Value {
    json!({"src_msg_id":"p1","channel":"PUSH","bill_code":"B","to":"fcm-token",
           "text":"body","push":{"title":"Title","data":{"order":"123","n":1}}})
}

#[test]
fn email_and_push_rules() {
    let req = one(&email()).expect("valid email");
    assert_eq!(req.from.as_deref(), Some("noreply@shop.example"));
    let opts = req.email.expect("options");
    assert!(opts.html);
    assert_eq!(opts.from_name.as_deref(), Some("Shop"));
    assert!(one(&with(email(), json!({"from":null,"email":null})))
        .expect("minimal")
        .email
        .is_none());
    assert!(one(&with(email(), json!({"subject":"가".repeat(200)}))).is_ok());
    let req = one(&push()).expect("valid push");
    let p = req.push.expect("options");
    assert_eq!(p.title, "Title");
    assert_eq!(
        p.data,
        [
            ("n".to_owned(), "1".to_owned()),
            ("order".to_owned(), "123".to_owned())
        ]
    );
    assert!(one(&with(push(), json!({"text":null}))).is_ok());
    assert!(one(&with(push(), json!({"text":"x".repeat(4096)}))).is_ok());
    use ResultCode::{BodyTooLong as L, InvalidField as F};
    check(vec![
        (with(email(), json!({"subject":null})), F, "subject"),
        (
            with(email(), json!({"subject":"가".repeat(201)})),
            L,
            "subject",
        ),
        (
            with(email(), json!({"text":"x".repeat(1024 * 1024 + 1)})),
            L,
            "text",
        ),
        (with(email(), json!({"text":""})), F, "text"),
        (with(email(), json!({"from":"shop"})), F, "from"),
        (
            with(email(), json!({"email":{"reply_to":"nope"}})),
            F,
            "reply_to",
        ),
        (with(email(), json!({"push":{"title":"t"}})), F, "push"),
        (with(push(), json!({"push":null})), F, "push.title"),
        (with(push(), json!({"push":{"data":{}}})), F, "push.title"),
        (
            with(push(), json!({"push":{"title":"x".repeat(101)}})),
            L,
            "push.title",
        ),
        (with(push(), json!({"text":"x".repeat(4097)})), L, "text"),
        (with(push(), json!({"from":"x"})), F, "from"),
        (with(push(), json!({"email":{"html":false}})), F, "email"),
    ]);
}

#[test]
fn parts_are_one_for_non_sms() {
    let msgs = [
        lms(),
        mms(json!([att(jpeg(4))])),
        kko(),
        rcs(),
        email(),
        push(),
    ];
    for m in msgs {
        assert_eq!(one(&m).expect("valid").parts, 1, "{m}");
    }
}

/// SPEC §5.1: `validity` is 60 s to 3 days; absent, the server's default
/// applies at accept.
#[test]
fn validity_rules() {
    assert_eq!(one(&sms()).expect("valid").validity, None);
    for (v, ok) in [
        (60, true),
        (259_200, true),
        (59, false),
        (259_201, false),
        (0, false),
    ] {
        let got = one(&with(sms(), json!({ "validity": v })));
        match ok {
            true => assert_eq!(got.expect("in range").validity, Some(v as u32)),
            false => {
                let r = got.expect_err("out of range");
                assert_eq!(r.code, ResultCode::InvalidField, "{v}");
                assert!(r.reason.contains("validity"), "{}", r.reason);
            }
        }
    }
}

/// SPEC §5.11: `origin_code` is 1–20 of `[0-9A-Za-z-]`; absent or null
/// means none (whether one is required is decided at accept); a value of
/// another JSON type fails the request like any other field.
#[test]
fn origin_code_rules() {
    assert_eq!(one(&sms()).expect("valid").origin_code, None);
    let null = with(sms(), json!({ "origin_code": null }));
    assert_eq!(one(&null).expect("valid").origin_code, None);
    let twenty = "A".repeat(20);
    for good in ["BIZ-0001", "a", "0-9-z", twenty.as_str()] {
        let got = one(&with(sms(), json!({ "origin_code": good })));
        assert_eq!(got.expect(good).origin_code.as_deref(), Some(good));
    }
    let long = "A".repeat(21);
    for bad in ["", "BIZ_1", "biz 1", "코드", long.as_str(), "BIZ-1\n"] {
        let r = one(&with(sms(), json!({ "origin_code": bad }))).expect_err(bad);
        assert_eq!(r.code, ResultCode::InvalidField, "{bad:?}");
        assert!(r.reason.contains("origin_code"), "{}", r.reason);
    }
    let body = with(sms(), json!({ "origin_code": 42 })).to_string();
    let err = parse_messages(body.as_bytes(), NOW).expect_err("wrong type");
    assert_eq!(err.code(), "invalid_type", "{err:?}");
    let body = with(sms(), json!({ "origin_codes": "BIZ-1" })).to_string();
    let err = parse_messages(body.as_bytes(), NOW).expect_err("typo");
    assert_eq!(err, BodyError::UnknownField("origin_codes".into()));
}

/// SPEC §5.10: MMS and RCS messages may name stored files by id; the
/// schema reads them as references, resolved before accept.
#[test]
fn attachments_may_name_stored_files() {
    let mms = json!({"src_msg_id":"f1","channel":"MMS","bill_code":"B","from":"0212345678",
                     "to":"01012345678","text":"t",
                     "attachments":[{"file_id":"0123456789abcdef01234567"},
                                    {"content_type":"image/jpeg","data":jpeg(4)}]});
    let req = one(&mms).expect("valid");
    assert_eq!(
        req.attachments[0],
        Attachment::file_ref("0123456789abcdef01234567")
    );
    assert_eq!(req.attachments[1].data.len(), 4);
    let rcs = json!({"src_msg_id":"f2","channel":"RCS","bill_code":"B","from":"0212345678",
                     "to":"01012345678","text":"t","attachments":[{"file_id":"abc"}]});
    let req = one(&rcs).expect("valid");
    assert_eq!(req.attachments[0].file_ref_id(), Some("abc"));
    let inline_rcs = with(
        rcs.clone(),
        json!({"attachments":[{"content_type":"image/jpeg","data":jpeg(4)}]}),
    );
    assert_eq!(
        one(&inline_rcs).map_err(|r| r.code),
        Err(ResultCode::InvalidField)
    );
    let two = with(
        rcs,
        json!({"attachments":[{"file_id":"a"},{"file_id":"b"}]}),
    );
    assert_eq!(one(&two).map_err(|r| r.code), Err(ResultCode::InvalidField));
    let mixed = with(mms, json!({"attachments":[{"file_id":"a","data":jpeg(4)}]}));
    assert_eq!(
        one(&mixed).map_err(|r| r.code),
        Err(ResultCode::InvalidField)
    );
}
