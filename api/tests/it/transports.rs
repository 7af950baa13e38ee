//! The `http` and `smtp` transports end to end: KKO through an `http`
//! sender to the `mcmp-loadtest provider` simulator (asynchronous callback,
//! synchronous answer, failure on purpose), the provider callback endpoint's
//! errors, and EMAIL through an `smtp` sender to a tiny SMTP sink written
//! here.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, raw_request, Server};
use crate::routing::{sim_sender, wait_status};
use crate::sims::Sim;

/// Enables `channels` (no TPS limit) for customer `g`.
fn enable(server: &Server, g: &str, channels: &[&str]) {
    let map: serde_json::Map<String, Value> = channels
        .iter()
        .map(|c| (c.to_string(), json!({"enabled": true, "tps": 0})))
        .collect();
    let body = json!({ "channels": map });
    let (s, v) = server.admin("PUT", &format!("/customers/{g}/services"), Some(body));
    assert_eq!(s, 200, "{v}");
}

/// Routes every carrier of `g`'s `channel` to sender group `group`.
fn route(server: &Server, g: &str, channel: &str, group: &str) {
    let rule = json!({"carriers": {"*": [{"sender_group": group, "ratio": 1}]}});
    let (s, v) = server.admin("PUT", &format!("/routes/{g}/{channel}"), Some(rule));
    assert_eq!(s, 200, "{v}");
}

/// Registers an `http` sender (profile `kko`) posting to `provider`.
fn http_sender(server: &Server, name: &str, group: &str, provider: &Sim) {
    let addr = provider.addr("provider");
    let body = json!({"group": group, "channels": ["KKO"], "carriers": ["*"],
        "transport": {"type": "http", "url": format!("http://{addr}/send"), "profile": "kko",
                      "timeout_ms": 2000}});
    let (s, v) = server.admin("PUT", &format!("/senders/{name}"), Some(body));
    assert!(s == 200 || s == 201, "{s} {v}");
}

/// `mcmp-loadtest provider` on 127.0.0.1:0 with `extra` flags.
pub(crate) fn provider(extra: &[&str]) -> Sim {
    let mut args = vec!["provider", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Sim::start(&args, 1)
}

/// A KKO AlimTalk message of customer tests.
pub(crate) fn kko(src: &str) -> Value {
    json!({"src_msg_id": src, "channel": "KKO", "bill_code": "B1", "from": "0212345678",
           "to": "01012345678", "text": format!("주문 {src} 이 발송되었습니다"),
           "template_code": "ORDER_SHIPPED", "vars": {"order": src}})
}

/// Posts one message, asserts it is accepted and returns its id.
fn accept(server: &Server, token: &str, msg: &Value) -> String {
    let (s, r) = server.call("POST", "/v1/messages", Some(token), Some(msg));
    assert_eq!(s, 200, "{r}");
    let result = &r["results"][0];
    assert_eq!(result["code"], 1000, "{result}");
    result["message_id"].as_str().expect("id").to_string()
}

/// The statuses of a message's events, in order.
fn event_statuses(m: &Value) -> Vec<String> {
    m["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// A customer `g` with KKO enabled and routed to an `http` sender `name`
/// posting to `provider`; returns the access token.
pub(crate) fn kko_customer(server: &Server, g: &str, name: &str, provider: &Sim) -> String {
    let token = server.register_customer(g);
    enable(server, g, &["KKO"]);
    http_sender(server, name, &format!("{g}_GRP"), provider);
    route(server, g, "KKO", &format!("{g}_GRP"));
    token
}

#[test]
fn kko_via_http_provider_is_delivered_by_the_providers_callback() {
    let provider = provider(&["--report-delay-ms", "10"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = kko_customer(&server, "HK1", "G_K_PROV01", &provider);

    let ids: Vec<String> = (0..3)
        .map(|i| accept(&server, &token, &kko(&format!("kko-{i}"))))
        .collect();
    for id in &ids {
        let m = wait_status(&server, &token, id, |s| s == "delivered");
        assert_eq!(m["code"], 2000, "{m}");
        assert_eq!(m["sender"], "G_K_PROV01", "{m}");
        let events = event_statuses(&m);
        assert!(
            events.contains(&"submitted".to_string()),
            "delivered without being submitted: {m}"
        );
        assert_eq!(events.last().map(String::as_str), Some("delivered"), "{m}");
    }
    // The provider got every message once and its callbacks were taken. It
    // counts a callback once it has read mcmp's answer, which can come after
    // mcmp shows the message delivered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let stats = provider.get("provider", "/stats");
        if stats["reports_delivered"] == 3 || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(stats["by_channel"]["KKO"]["sent"], 3, "{stats}");
    assert_eq!(stats["duplicates"], 0, "{stats}");
    assert_eq!(stats["bad_requests"], 0, "{stats}");
    assert!(stats["report_posts"].as_u64() >= Some(1), "{stats}");
    assert_eq!(stats["report_post_failures"], 0, "{stats}");
    assert_eq!(stats["reports_delivered"], 3, "{stats}");
    assert_eq!(stats["reports_lost"], 0, "{stats}");
}

#[test]
fn kko_via_http_provider_with_a_synchronous_final_answer_is_delivered() {
    let provider = provider(&["--sync"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = kko_customer(&server, "HK2", "G_K_SYNC01", &provider);

    let id = accept(&server, &token, &kko("sync-1"));
    let m = wait_status(&server, &token, &id, |s| s == "delivered");
    assert_eq!(m["code"], 2000, "{m}");
    assert_eq!(m["sender"], "G_K_SYNC01", "{m}");
    let stats = provider.get("provider", "/stats");
    assert_eq!(stats["by_channel"]["KKO"]["sent"], 1, "{stats}");
    assert_eq!(stats["bad_requests"], 0, "{stats}");
    // The answer was final: nothing was posted back.
    assert_eq!(stats["report_posts"], 0, "{stats}");
}

#[test]
fn kko_failed_by_the_provider_ends_failed_with_a_carrier_code() {
    let provider = provider(&["--fail-channels", "KKO", "--report-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = kko_customer(&server, "HK3", "G_K_FAIL01", &provider);

    let id = accept(&server, &token, &kko("fail-1"));
    let m = wait_status(&server, &token, &id, |s| {
        s != "accepted" && s != "queued" && s != "submitted"
    });
    assert_eq!(m["status"], "failed", "{m}");
    let code = m["code"].as_u64().expect("code");
    assert!((5000..6000).contains(&code), "not a 5xxx code: {m}");
    // The provider's K105 (template rejected) is a rejection by the carrier.
    assert_eq!(code, 5003, "{m}");
    assert_eq!(m["fallback_message_id"], Value::Null, "{m}");
    let stats = provider.get("provider", "/stats");
    assert_eq!(stats["by_channel"]["KKO"]["failed"], 1, "{stats}");
    assert_eq!(stats["reports_lost"], 0, "{stats}");
}

#[test]
fn provider_callback_rejects_unknown_senders_and_malformed_bodies() {
    let provider = provider(&[]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.register_customer("HK4");
    http_sender(&server, "G_K_CB01", "CB", &provider);
    sim_sender(&server, "G_S_SIM01", "S", json!({}));
    let post = |path: &str, body: &[u8]| -> (u16, Value) {
        let (s, b) = raw_request(server.addr, "POST", path, None, "application/json", body);
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    };
    let good = json!({"results": [{"provider_msg_id": "p-unknown", "status": "delivered", "code": "K000"}]})
        .to_string();

    let (s, v) = post("/provider/v1/reports/NO_SUCH_SENDER", good.as_bytes());
    assert_eq!(s, 404, "{v}");
    assert!(v["error"]["code"].is_string(), "error body: {v}");
    // A sender that exists but is not an http one takes no callbacks.
    let (s, v) = post("/provider/v1/reports/G_S_SIM01", good.as_bytes());
    assert_eq!(s, 404, "{v}");

    for bad in [
        &b"not json"[..],
        b"{}",
        b"{\"results\":{}}",
        b"{\"results\":[{\"provider_msg_id\":\"p-1\",\"status\":\"maybe\"}]}",
        b"{\"results\":[{\"status\":\"delivered\"}]}",
        b"{\"results\":[{\"provider_msg_id\":\"\",\"status\":\"failed\"}]}",
        b"\xff\xfe",
    ] {
        let (s, v) = post("/provider/v1/reports/G_K_CB01", bad);
        assert_eq!(s, 400, "{} → {v}", String::from_utf8_lossy(bad));
        assert!(v["error"]["code"].is_string(), "error body: {v}");
    }
    // A well-formed result for an id nobody knows is taken (and ignored), so
    // the provider does not retry it forever.
    let (s, v) = post("/provider/v1/reports/G_K_CB01", good.as_bytes());
    assert_eq!(s, 200, "{v}");
    let (s, _) = server.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
}

/// One mail transaction the sink received.
#[derive(Debug, Clone, Default)]
struct Mail {
    from: String,
    rcpt: Vec<String>,
    /// Everything between `DATA` and the final `.` line, CRLFs kept.
    data: String,
}

/// A minimal SMTP server: greets, says 250 to everything but `DATA` (354)
/// and `QUIT` (221), and records each transaction.
struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let mails = kept.clone();
                std::thread::spawn(move || {
                    let _ = SmtpSink::serve(conn, &mails);
                });
            }
        });
        SmtpSink { addr, mails }
    }

    fn serve(conn: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut out = conn.try_clone()?;
        let mut lines = BufReader::new(conn);
        out.write_all(b"220 sink.test ESMTP ready\r\n")?;
        let mut mail = Mail::default();
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let cmd = line.trim_end().to_string();
            let verb = cmd
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let angle = || {
                cmd.split_once('<')
                    .and_then(|(_, r)| r.split_once('>'))
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default()
            };
            match verb.as_str() {
                "EHLO" | "HELO" => out.write_all(b"250-sink.test\r\n250 8BITMIME\r\n")?,
                "MAIL" => {
                    mail = Mail {
                        from: angle(),
                        ..Mail::default()
                    };
                    out.write_all(b"250 sender ok\r\n")?;
                }
                "RCPT" => {
                    mail.rcpt.push(angle());
                    out.write_all(b"250 recipient ok\r\n")?;
                }
                "DATA" => {
                    out.write_all(b"354 go ahead\r\n")?;
                    loop {
                        let mut l = String::new();
                        if lines.read_line(&mut l)? == 0 {
                            return Ok(());
                        }
                        if l == ".\r\n" {
                            break;
                        }
                        mail.data.push_str(&l);
                    }
                    mails
                        .lock()
                        .expect("sink lock")
                        .push(std::mem::take(&mut mail));
                    out.write_all(b"250 queued\r\n")?;
                }
                "QUIT" => {
                    out.write_all(b"221 bye\r\n")?;
                    return Ok(());
                }
                "RSET" | "NOOP" => out.write_all(b"250 ok\r\n")?,
                _ => out.write_all(b"502 not implemented\r\n")?,
            }
        }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("sink lock").clone()
    }
}

/// Standard base64 (RFC 4648) without line breaks, padding optional.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", c as char),
        }
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// Splits a message into its header lines (unfolded) and body.
fn split_mail(data: &str) -> (Vec<String>, String) {
    let (head, body) = data.split_once("\r\n\r\n").expect("header/body separator");
    let mut headers: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match headers.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => headers.push(line.to_string()),
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| {
        let (n, v) = h.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Decodes an RFC 2047 `=?UTF-8?B?…?=` header value (plain text as is).
fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_string();
    }
    let mut bytes = Vec::new();
    for word in value.split_whitespace() {
        let inner = word
            .strip_prefix("=?")
            .and_then(|w| w.strip_suffix("?="))
            .expect("encoded word");
        let mut parts = inner.splitn(3, '?');
        let (charset, enc, text) = (parts.next(), parts.next(), parts.next());
        assert_eq!(
            charset.map(str::to_ascii_uppercase).as_deref(),
            Some("UTF-8")
        );
        assert_eq!(enc.map(str::to_ascii_uppercase).as_deref(), Some("B"));
        bytes.extend(base64_decode(text.expect("word text")));
    }
    String::from_utf8(bytes).expect("utf-8 subject")
}

#[test]
fn email_via_smtp_sender_reaches_the_relay_with_recipient_subject_and_body() {
    let sink = SmtpSink::start();
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("EM1");
    enable(&server, "EM1", &["EMAIL"]);
    let body = json!({"group": "MAIL", "channels": ["EMAIL"], "carriers": ["*"],
        "transport": {"type": "smtp", "host": "127.0.0.1", "port": sink.addr.port(),
                      "from": "noreply@mcmp.test"}});
    let (s, v) = server.admin("PUT", "/senders/G_E_SINK01", Some(body));
    assert!(s == 200 || s == 201, "{s} {v}");
    route(&server, "EM1", "EMAIL", "MAIL");

    // (src_msg_id, to, from given by the customer, subject, text)
    let cases = [
        (
            "mail-1",
            "alice@example.com",
            None,
            "Your order 42 has shipped",
            "Hello Alice,\nyour parcel is on its way.\n.\nA line with only a dot above.",
        ),
        (
            "mail-2",
            "bob@example.org",
            Some("shop@customer.test"),
            "주문하신 상품이 발송되었습니다 — 감사합니다 (주문번호 2024-0042)",
            "안녕하세요, 밥 님.\n상품이 발송되었습니다.",
        ),
    ];
    for (src, to, from, subject, text) in cases {
        let mut msg = json!({"src_msg_id": src, "channel": "EMAIL", "bill_code": "B1", "to": to,
                             "subject": subject, "text": text});
        if let Some(from) = from {
            msg["from"] = json!(from);
        }
        let id = accept(&server, &token, &msg);
        let m = wait_status(&server, &token, &id, |s| s == "delivered" || s == "failed");
        assert_eq!(m["status"], "delivered", "{m}");
        assert_eq!(m["code"], 2000, "{m}");
        assert_eq!(m["sender"], "G_E_SINK01", "{m}");

        // 250 after the data is what "delivered" means, so the sink has it.
        let mails = sink.mails();
        let mail = mails
            .iter()
            .find(|mail| mail.rcpt.iter().any(|r| r == to))
            .unwrap_or_else(|| panic!("the sink got no mail for {to}: {mails:?}"));
        assert_eq!(mail.rcpt, vec![to.to_string()], "{mail:?}");
        assert_eq!(mail.from, "noreply@mcmp.test", "{mail:?}");
        let (headers, body) = split_mail(&mail.data);
        let got_subject = header(&headers, "Subject").expect("Subject header");
        assert_eq!(decode_words(got_subject), subject, "{headers:?}");
        assert!(
            header(&headers, "To").is_some_and(|t| t.contains(to)),
            "{headers:?}"
        );
        assert!(header(&headers, "Date").is_some(), "{headers:?}");
        // The customer's sender address, when given, is the author; the
        // sender's configured address is the default.
        let author = from.unwrap_or("noreply@mcmp.test");
        assert!(
            header(&headers, "From").is_some_and(|f| f.contains(author)),
            "From should name {author}: {headers:?}"
        );
        let cte = header(&headers, "Content-Transfer-Encoding").expect("CTE header");
        assert!(cte.eq_ignore_ascii_case("base64"), "{headers:?}");
        let b64: String = body.split("\r\n").collect();
        let decoded = String::from_utf8(base64_decode(&b64)).expect("utf-8 body");
        assert_eq!(decoded.replace("\r\n", "\n"), text, "body: {body:?}");
    }
    assert_eq!(sink.mails().len(), 2, "{:?}", sink.mails());
}
