//! Tests of the `smtp` transport against an in-test SMTP sink, plain, with
//! STARTTLS or with implicit TLS (rustls, a CA made in the test).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_rustls::rustls::{self, ServerConfig};

use super::*;
use crate::http_client::tests::on_shard;
use crate::model::{Channel, MessageId};
use crate::rt::test_ca::TestCa;
use crate::sender::config::StartTls;
use crate::sender::test_support::drive;

/// One mail the sink took.
#[derive(Debug, Clone, Default)]
struct Mail {
    from: String,
    rcpt: Vec<String>,
    data: String,
    /// It came over TLS.
    tls: bool,
}

/// How the sink speaks TLS.
#[derive(Clone)]
enum SinkTls {
    Plain,
    /// Offers STARTTLS in its `EHLO` reply.
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte.
    Implicit(Arc<ServerConfig>),
}

/// An SMTP server on 127.0.0.1:0 that takes everything except recipients
/// named `nobody@…` (550) and `later@…` (451), and records what it got.
struct Sink {
    port: u16,
    connections: Arc<AtomicUsize>,
    mails: Arc<Mutex<Vec<Mail>>>,
    commands: Arc<Mutex<Vec<String>>>,
}

/// What a sink connection records into.
#[derive(Clone)]
struct Record {
    mails: Arc<Mutex<Vec<Mail>>>,
    commands: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    fn start() -> Sink {
        Sink::start_tls(SinkTls::Plain)
    }

    fn start_tls(tls: SinkTls) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("addr").port();
        let sink = Sink {
            port,
            connections: Arc::default(),
            mails: Arc::default(),
            commands: Arc::default(),
        };
        let record = Record {
            mails: sink.mails.clone(),
            commands: sink.commands.clone(),
        };
        let c = sink.connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (record, tls) = (record.clone(), tls.clone());
                std::thread::spawn(move || serve(stream, tls, &record));
            }
        });
        sink
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("lock").clone()
    }

    fn commands(&self) -> Vec<String> {
        self.commands.lock().expect("lock").clone()
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// The server side of a TLS handshake on `tcp`; `None` if it failed.
fn tls_stream(tcp: TcpStream, config: Arc<ServerConfig>) -> Option<Box<dyn Stream>> {
    let conn = rustls::ServerConnection::new(config).ok()?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).ok()?;
    }
    Some(Box::new(stream))
}

fn serve(tcp: TcpStream, tls: SinkTls, record: &Record) {
    let raw = tcp.try_clone().expect("clone");
    let _ = match tls {
        SinkTls::Plain => session(Box::new(tcp), raw, None, false, true, record),
        SinkTls::StartTls(c) => session(Box::new(tcp), raw, Some(c), false, true, record),
        SinkTls::Implicit(c) => match tls_stream(tcp, c) {
            // Greets over TLS, as a port-465 relay does.
            Some(s) => session(s, raw, None, true, true, record),
            None => None,
        },
    };
}

fn say(r: &mut BufReader<Box<dyn Stream>>, line: &str) -> bool {
    let w = r.get_mut();
    w.write_all(format!("{line}\r\n").as_bytes()).is_ok() && w.flush().is_ok()
}

/// Serves one SMTP session on `stream`; `offer` is the configuration of
/// a STARTTLS it offers (`raw` the TCP stream to start it on); `tls`:
/// `stream` speaks TLS; `greet`: a new connection (not after STARTTLS).
fn session(
    stream: Box<dyn Stream>,
    raw: TcpStream,
    offer: Option<Arc<ServerConfig>>,
    tls: bool,
    greet: bool,
    record: &Record,
) -> Option<()> {
    let mut r = BufReader::new(stream);
    if greet {
        say(&mut r, "220 sink ESMTP ready");
    }
    let mut mail = Mail::default();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        record.commands.lock().expect("lock").push(line.clone());
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let ok = match verb.as_str() {
            "EHLO" => {
                say(&mut r, "250-sink greets mcmp")
                    && (offer.is_none() || say(&mut r, "250-STARTTLS"))
                    && say(&mut r, "250 AUTH PLAIN")
            }
            "STAR" if offer.is_some() => {
                say(&mut r, "220 2.0.0 ready to start TLS");
                let config = offer?;
                let secure = tls_stream(raw.try_clone().ok()?, config)?;
                return session(secure, raw, None, true, false, record);
            }
            "AUTH" => say(&mut r, "235 2.7.0 ok"),
            "MAIL" => {
                mail = Mail {
                    from: line[10..].to_string(),
                    tls,
                    ..Mail::default()
                };
                say(&mut r, "250 ok")
            }
            "RCPT" if line.contains("<nobody@") => say(&mut r, "550 5.1.1 no such user"),
            "RCPT" if line.contains("<later@") => say(&mut r, "451 4.7.1 try again later"),
            "RCPT" => {
                mail.rcpt.push(line[8..].to_string());
                say(&mut r, "250 ok")
            }
            "DATA" => {
                say(&mut r, "354 go ahead");
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                mail.data = data;
                let done = std::mem::take(&mut mail);
                record.mails.lock().expect("lock").push(done);
                say(&mut r, "250 2.0.0 queued")
            }
            "RSET" => say(&mut r, "250 ok"),
            "QUIT" => {
                say(&mut r, "221 bye");
                return Some(());
            }
            _ => say(&mut r, "502 unknown"),
        };
        if !ok {
            return None;
        }
    }
}

fn config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        username: Some("user".into()),
        password: Some("pass".into()),
        starttls: StartTls::Opportunistic,
        implicit_tls: false,
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
    run_trusting(None, config, messages, finals)
}

/// [`run_against`] with `extra_ca` trusted beside the public roots.
fn run_trusting(
    extra_ca: Option<&std::path::Path>,
    config: SmtpConfig,
    messages: Vec<Outbound>,
    finals: usize,
) -> Vec<SessionEvent> {
    let tls = config.tls_spec(extra_ca);
    on_shard(move || {
        let (config, messages, tls) = (config.clone(), messages.clone(), tls.clone());
        async move {
            let name = "M_E_TEST01".to_string();
            let start = |queue, events, stop| run_session(name, config, tls, queue, events, stop);
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

/// The events say the message was delivered to the relay.
fn delivered(events: &[SessionEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            SessionEvent::Receipt {
                delivered: true,
                ..
            }
        )
    })
}

#[test]
fn starttls_is_used_when_the_relay_offers_it() {
    let ca = TestCa::new("smtp test CA");
    let sink = Sink::start_tls(SinkTls::StartTls(ca.server_config()));
    for mode in [StartTls::Opportunistic, StartTls::Required] {
        let cfg = SmtpConfig {
            starttls: mode,
            ..config(sink.port)
        };
        let events = run_trusting(Some(&ca.ca), cfg, vec![email(7, "kim@example.com")], 1);
        assert!(delivered(&events), "{mode:?}: {events:?}");
    }
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m.tls), "{mails:?}");
    let commands = sink.commands();
    // EHLO, STARTTLS, EHLO again over TLS, then AUTH: never in clear.
    let first = &commands[..4];
    assert_eq!(first[1], "STARTTLS", "{commands:?}");
    assert!(
        first[2].starts_with("EHLO") && first[3].starts_with("AUTH"),
        "{commands:?}"
    );
}

#[test]
fn required_starttls_sends_nothing_to_a_relay_without_it() {
    let sink = Sink::start();
    let cfg = SmtpConfig {
        starttls: StartTls::Required,
        ..config(sink.port)
    };
    let events = run_against(cfg, vec![email(5, "kim@example.com")], 1);
    assert_eq!(
        events[0],
        SessionEvent::Down {
            reason: NOT_OFFERED.into()
        }
    );
    assert!(sink.mails().is_empty());
    let commands = sink.commands();
    assert!(
        commands.iter().all(|c| c.starts_with("EHLO")),
        "only EHLO may go in clear: {commands:?}"
    );
}

#[test]
fn implicit_tls_speaks_tls_from_the_first_byte() {
    let ca = TestCa::new("smtps test CA");
    let sink = Sink::start_tls(SinkTls::Implicit(ca.server_config()));
    let cfg = SmtpConfig {
        implicit_tls: true,
        ..config(sink.port)
    };
    let events = run_trusting(Some(&ca.ca), cfg, vec![email(6, "kim@example.com")], 1);
    assert!(delivered(&events), "{events:?}");
    let mails = sink.mails();
    assert!(mails.len() == 1 && mails[0].tls, "{mails:?}");
    assert!(!sink.commands().contains(&"STARTTLS".to_string()));
}

#[test]
fn a_relay_certificate_from_an_unknown_ca_breaks_the_link_without_falling_back() {
    let ca = TestCa::new("unknown CA");
    let sink = Sink::start_tls(SinkTls::StartTls(ca.server_config()));
    let events = run_against(config(sink.port), vec![email(8, "kim@example.com")], 1);
    match &events[0] {
        SessionEvent::Down { reason } => assert!(reason.contains("TLS handshake"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(sink.mails().is_empty());
    let commands = sink.commands();
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL")),
        "{commands:?}"
    );
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
