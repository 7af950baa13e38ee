//! Tests of the `smtp` transport against an in-test SMTP sink.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::http_client::tests::on_shard;
use crate::model::{Channel, MessageId};
use crate::sender::test_support::drive;

/// One mail the sink took.
#[derive(Debug, Clone, Default)]
struct Mail {
    from: String,
    rcpt: Vec<String>,
    data: String,
}

/// An SMTP server on 127.0.0.1:0 that takes everything except recipients
/// named `nobody@…` (550) and `later@…` (451), and records what it got.
struct Sink {
    port: u16,
    connections: Arc<AtomicUsize>,
    mails: Arc<Mutex<Vec<Mail>>>,
    commands: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("addr").port();
        let sink = Sink {
            port,
            connections: Arc::default(),
            mails: Arc::default(),
            commands: Arc::default(),
        };
        let (c, m, k) = (
            sink.connections.clone(),
            sink.mails.clone(),
            sink.commands.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (m, k) = (m.clone(), k.clone());
                std::thread::spawn(move || session(stream, &m, &k));
            }
        });
        sink
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("lock").clone()
    }
}

fn session(stream: TcpStream, mails: &Mutex<Vec<Mail>>, commands: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut w = stream;
    let mut say = |line: &str| w.write_all(format!("{line}\r\n").as_bytes()).is_ok();
    say("220 sink ESMTP ready");
    let mut mail = Mail::default();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_string();
        commands.lock().expect("lock").push(line.clone());
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let ok = match verb.as_str() {
            "EHLO" => say("250-sink greets mcmp") && say("250 AUTH PLAIN"),
            "AUTH" => say("235 2.7.0 ok"),
            "MAIL" => {
                mail = Mail {
                    from: line[10..].to_string(),
                    ..Mail::default()
                };
                say("250 ok")
            }
            "RCPT" if line.contains("<nobody@") => say("550 5.1.1 no such user"),
            "RCPT" if line.contains("<later@") => say("451 4.7.1 try again later"),
            "RCPT" => {
                mail.rcpt.push(line[8..].to_string());
                say("250 ok")
            }
            "DATA" => {
                say("354 go ahead");
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                mail.data = data;
                mails.lock().expect("lock").push(std::mem::take(&mut mail));
                say("250 2.0.0 queued")
            }
            "RSET" => say("250 ok"),
            "QUIT" => {
                say("221 bye");
                return;
            }
            _ => say("502 unknown"),
        };
        if !ok {
            return;
        }
    }
}

fn config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        username: Some("user".into()),
        password: Some("pass".into()),
        starttls: false,
        from: "noreply@mcmp.test".into(),
    }
}

fn email(n: u64, to: &str) -> Outbound {
    Outbound {
        id: MessageId::new(0, n),
        channel: Channel::Email,
        from: "noreply@mcmp.test".into(),
        to: to.into(),
        text: "첫 줄\n두 번째 줄. 끝".into(),
        subject: Some("안내: 결제가 완료되었습니다".into()),
        template_code: None,
        vars: Vec::new(),
        international: false,
        expires_at_ms: i64::MAX,
        attachments: Vec::new(),
        origin_code: None,
        class: crate::model::Class::Realtime,
    }
}

/// Runs a session, pushes `messages`, waits until `finals` final events
/// (receipts or submit failures) were seen (or 15 s), stops it and returns
/// the events.
fn run_against(config: SmtpConfig, messages: Vec<Outbound>, finals: usize) -> Vec<SessionEvent> {
    on_shard(move || {
        let (config, messages) = (config.clone(), messages.clone());
        async move {
            let start =
                |queue, events, stop| run_session("M_E_TEST01".into(), config, queue, events, stop);
            let done = |e: &[SessionEvent]| {
                e.iter()
                    .filter(|e| {
                        matches!(
                            e,
                            SessionEvent::Receipt { .. }
                                | SessionEvent::SubmitFailed { .. }
                                | SessionEvent::Down { .. }
                        )
                    })
                    .count()
                    >= finals
            };
            drive(start, 16, messages, done).await.0
        }
    })
}

fn decode_body(data: &str) -> String {
    let (_, body) = data.split_once("\r\n\r\n").expect("blank line");
    assert!(body.lines().all(|l| l.len() <= BASE64_LINE), "{body}");
    let joined: String = body.lines().collect();
    String::from_utf8(BASE64.decode(joined).expect("base64")).expect("utf-8")
}

fn decode_words(value: &str) -> String {
    value
        .split("\r\n ")
        .map(|w| {
            assert!(w.len() <= 75, "{w}");
            let b64 = w
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .expect("encoded word");
            String::from_utf8(BASE64.decode(b64).expect("base64")).expect("utf-8")
        })
        .collect()
}

#[test]
fn a_message_arrives_whole_and_is_delivered_to_the_relay() {
    let sink = Sink::start();
    let msg = email(1, "kim@example.com");
    let events = run_against(config(sink.port), vec![msg.clone()], 1);
    let carrier_id = MessageId::new(0, 1).to_string();
    assert_eq!(
        &events[..3],
        &[
            SessionEvent::Up,
            SessionEvent::Submitted {
                id: msg.id,
                carrier_id: carrier_id.clone()
            },
            SessionEvent::Receipt {
                carrier_id: carrier_id.clone(),
                delivered: true,
                code: ResultCode::Delivered,
                detail: "250".into()
            }
        ]
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].from, "<noreply@mcmp.test>");
    assert_eq!(mails[0].rcpt, vec!["<kim@example.com>".to_string()]);
    let data = &mails[0].data;
    assert!(data.contains("From: <noreply@mcmp.test>\r\n"), "{data}");
    assert!(data.contains("To: <kim@example.com>\r\n"));
    assert!(data.contains(&format!("Message-ID: <{carrier_id}@mcmp>\r\n")));
    assert!(data.contains("Content-Type: text/plain; charset=UTF-8\r\n"));
    assert!(data.contains("Content-Transfer-Encoding: base64\r\n"));
    assert!(data.contains("MIME-Version: 1.0\r\n"));
    assert!(data.contains("\r\nDate: "));
    assert_eq!(decode_body(data), "첫 줄\r\n두 번째 줄. 끝");
    let subject = data
        .split("Subject: ")
        .nth(1)
        .and_then(|s| s.split("\r\nDate:").next())
        .expect("subject");
    assert_eq!(decode_words(subject), "안내: 결제가 완료되었습니다");
    let commands = sink.commands.lock().expect("lock").clone();
    let auth = commands
        .iter()
        .find_map(|c| c.strip_prefix("AUTH PLAIN "))
        .expect("authenticated");
    assert_eq!(BASE64.decode(auth).expect("base64"), b"\0user\0pass");
    assert_eq!(commands[0], "EHLO mcmp");
    assert_eq!(commands.last().map(String::as_str), Some("QUIT"));
}

#[test]
fn a_550_on_rcpt_is_final_and_the_connection_carries_on() {
    let sink = Sink::start();
    let messages = vec![email(2, "nobody@example.com"), email(3, "lee@example.com")];
    let events = run_against(config(sink.port), messages, 2);
    match &events[1] {
        SessionEvent::SubmitFailed {
            id, code, retry, ..
        } => assert_eq!(
            (*id, *code, *retry),
            (MessageId::new(0, 2), ResultCode::Undeliverable, false)
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &events[3],
        SessionEvent::Receipt {
            delivered: true,
            ..
        }
    ));
    assert_eq!(sink.mails().len(), 1);
    assert_eq!(sink.connections.load(Ordering::SeqCst), 1);
    assert!(sink
        .commands
        .lock()
        .expect("lock")
        .contains(&"RSET".to_string()));
}

#[test]
fn a_451_is_retryable() {
    let sink = Sink::start();
    let events = run_against(config(sink.port), vec![email(4, "later@example.com")], 1);
    match &events[1] {
        SessionEvent::SubmitFailed { code, retry, .. } => {
            assert_eq!((*code, *retry), (ResultCode::ProviderError, true))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn starttls_keeps_the_session_down_without_connecting() {
    let sink = Sink::start();
    let mut cfg = config(sink.port);
    cfg.starttls = true;
    let events = run_against(cfg, vec![email(5, "kim@example.com")], 1);
    assert_eq!(
        events,
        vec![SessionEvent::Down {
            reason: NO_TLS.into()
        }]
    );
    assert_eq!(sink.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn a_refused_connection_reports_down() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("binds");
        l.local_addr().expect("addr").port()
    };
    let events = run_against(config(port), Vec::new(), 1);
    assert!(matches!(&events[0], SessionEvent::Down { reason } if reason.contains("connecting")));
    assert!(!events.contains(&SessionEvent::Up));
}

#[test]
fn subjects_encode_only_when_needed() {
    assert_eq!(encode_subject("Your code is 1234"), "Your code is 1234");
    let long = "가".repeat(40);
    let encoded = encode_subject(&long);
    assert!(encoded.split("\r\n ").count() > 1);
    assert_eq!(decode_words(&encoded), long);
    assert_eq!(decode_words(&encode_subject("a\r\nBcc: x")), "aBcc: x");
}

#[test]
fn dates_follow_rfc_5322() {
    assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    assert_eq!(
        rfc5322_date(1_704_067_199),
        "Sun, 31 Dec 2023 23:59:59 +0000"
    );
}

#[test]
fn envelope_addresses_are_checked() {
    assert!(valid_address("kim@example.com"));
    for bad in ["", "kim", "kim@example.com>\r\nRCPT TO:<x@y", "a b@c"] {
        assert!(!valid_address(bad), "{bad:?}");
    }
}

#[test]
fn the_customers_sender_address_is_the_author_when_given() {
    let mut msg = email(7, "kim@example.com");
    msg.from = "shop@customer.test".into();
    let text = message_text("noreply@mcmp.test", &msg, 0);
    assert!(text.starts_with("From: <shop@customer.test>\r\n"), "{text}");
    // Without one (or with one unfit for a header) the configured address.
    for from in ["", "bad\r\nBcc: x@y.z"] {
        msg.from = from.into();
        let text = message_text("noreply@mcmp.test", &msg, 0);
        assert!(text.starts_with("From: <noreply@mcmp.test>\r\n"), "{text}");
    }
}
