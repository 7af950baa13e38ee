//! The `smtp` transport (EMAIL): a small SMTP client (RFC 5321) over the
//! runtime facade's TCP. One connection per session, one message at a time:
//! greeting, `EHLO`, `AUTH PLAIN` when credentials are set, then per message
//! `MAIL FROM`/`RCPT TO`/`DATA` with a base64 `text/plain; charset=UTF-8`
//! body. A 250 after the data means delivered to the relay (SPEC §1), so the
//! session reports `Submitted` and a delivered `Receipt` at once. The
//! connection is kept between messages (`RSET` after a refused one), closed
//! with `QUIT` after [`IDLE_QUIT`] without messages and on stop; a broken one
//! is reported `Down` and reopened with backoff. TLS: STARTTLS after the
//! first `EHLO` (`required`, `opportunistic`, `off`) or implicit TLS
//! ([`starttls`]). Shard-local: the session and its connection stay on the
//! shard that spawned it.

use std::rc::Rc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures_lite::future::or;
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Outbound, SessionEvent, SessionEvents, SessionQueue, SmtpConfig};
use crate::codes::ResultCode;
use crate::notify::LocalNotify;
use crate::rt;
use crate::sender::tls::TlsSlot;

mod starttls;
#[cfg(test)]
mod tests;

pub use starttls::NOT_OFFERED;

/// Wait for every server reply and every write. RFC 5321 §4.5.3.2 asks
/// clients for 5 minutes on some replies; a relay that is silent for 30 s
/// is treated as broken so the message can go elsewhere.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection without messages this long is closed with `QUIT` (relays
/// drop idle clients after a few minutes anyway) and reopened on demand.
pub const IDLE_QUIT: Duration = Duration::from_secs(60);
/// First reconnect delay; doubles per failed attempt.
const RECONNECT_MIN: Duration = Duration::from_millis(200);
/// Reconnect delay cap: a relay outage is not hammered.
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Longest reply line accepted (RFC 5321 allows 512; relays exceed it).
const MAX_LINE: usize = 8 * 1024;
/// Base64 body line length (RFC 2045 §6.8).
const BASE64_LINE: usize = 76;
/// UTF-8 bytes per RFC 2047 encoded word: 45 bytes make 60 base64 chars,
/// which with `=?UTF-8?B?` and `?=` stays within the 75-char limit.
const WORD_BYTES: usize = 45;

/// Runs one session of an `smtp` sender until `stop` is notified; `tls`
/// is its [`SmtpConfig::tls_spec`].
pub async fn run_session(
    name: String,
    config: SmtpConfig,
    tls: Option<rt::ClientTlsSpec>,
    queue: Rc<SessionQueue>,
    events: SessionEvents,
    stop: Rc<LocalNotify>,
) {
    if !valid_address(&config.from) {
        let reason = format!("invalid envelope sender {:?}", config.from);
        tracing::warn!(sender = %name, %reason, "smtp sender stays down");
        events(SessionEvent::Down { reason });
        stop.notified().await;
        return;
    }
    Relay {
        name,
        config,
        tls: TlsSlot::new(tls),
        queue,
        events,
        stop,
    }
    .run()
    .await;
}

/// A reply: its code and its text (continuation lines joined).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    code: u16,
    text: String,
}

/// Where in a transaction the relay refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Mail,
    Rcpt,
    Data,
    Content,
}

/// Why a message was not taken.
enum Failure {
    /// The relay refused with this reply; the connection is still usable.
    Refused(Stage, Reply),
    /// The recipient is not an address we can put in `RCPT TO`.
    BadRecipient,
    /// The connection broke (I/O, timeout, 421, unreadable reply).
    Broken(String),
}

/// How a connection's service ended.
enum End {
    Stopped,
    Idle,
    Failed(String),
}

/// One open connection with its read buffer. Shard-local.
struct Link {
    conn: rt::TcpConn,
    buf: Vec<u8>,
}

impl Link {
    async fn send(&mut self, data: &[u8]) -> Result<(), String> {
        let write = async {
            self.conn.write_all(data).await?;
            self.conn.flush().await
        };
        match rt::timeout(REPLY_TIMEOUT, write).await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("write failed: {e}")),
            None => Err("write timed out".into()),
        }
    }

    async fn reply(&mut self) -> Result<Reply, String> {
        rt::timeout(REPLY_TIMEOUT, self.read_reply())
            .await
            .unwrap_or_else(|| Err("timed out waiting for the relay".into()))
    }

    async fn command(&mut self, line: &str) -> Result<Reply, String> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    async fn read_reply(&mut self) -> Result<Reply, String> {
        let mut text = String::new();
        loop {
            let line = self.read_line().await?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("unreadable reply {line:?}"))?;
            text.push_str(line.get(4..).unwrap_or("").trim());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
            text.push(' ');
        }
    }

    async fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err("reply line too long".into());
            }
            let mut chunk = [0u8; 1024];
            let n = self
                .conn
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read failed: {e}"))?;
            if n == 0 {
                return Err("connection closed by the relay".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Sends `line` and expects one of `ok`; a 421 (closing) breaks the link.
async fn expect(link: &mut Link, line: &str, ok: &[u16], stage: Stage) -> Result<(), Failure> {
    let reply = link.command(line).await.map_err(Failure::Broken)?;
    if ok.contains(&reply.code) {
        Ok(())
    } else if reply.code == 421 {
        Err(Failure::Broken(format!("421 {}", reply.text)))
    } else {
        Err(Failure::Refused(stage, reply))
    }
}

/// One session's state. Shard-local.
struct Relay {
    name: String,
    config: SmtpConfig,
    tls: TlsSlot,
    queue: Rc<SessionQueue>,
    events: SessionEvents,
    stop: Rc<LocalNotify>,
}

impl Relay {
    fn emit(&self, event: SessionEvent) {
        (self.events)(event);
    }

    async fn run(&self) {
        let mut backoff = RECONNECT_MIN;
        let mut up = false;
        let mut down_reported = false;
        loop {
            let opened = or(async { Some(self.open().await) }, async {
                self.stop.notified().await;
                None
            })
            .await;
            let end = match opened {
                None => End::Stopped,
                Some(Err(reason)) => End::Failed(reason),
                Some(Ok(mut link)) => {
                    backoff = RECONNECT_MIN;
                    if !up {
                        up = true;
                        down_reported = false;
                        self.emit(SessionEvent::Up);
                    }
                    let end = self.serve(&mut link).await;
                    if !matches!(end, End::Failed(_)) {
                        let _ = link.command("QUIT").await;
                    }
                    end
                }
            };
            match end {
                End::Stopped => break,
                End::Idle => {
                    // Reopen when the next message comes.
                    let next = or(async { Some(self.queue.pop().await) }, async {
                        self.stop.notified().await;
                        None
                    })
                    .await;
                    match next {
                        Some(msg) => self.queue.push_front(msg),
                        None => break,
                    }
                }
                End::Failed(reason) => {
                    tracing::warn!(sender = %self.name, %reason, "smtp session down");
                    up = false;
                    if !down_reported {
                        down_reported = true;
                        self.emit(SessionEvent::Down { reason });
                    }
                    let stopped = self.stop.sleep_unless_notified(backoff).await;
                    if stopped {
                        break;
                    }
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                }
            }
        }
        self.emit(SessionEvent::Down {
            reason: "session stopped".into(),
        });
    }

    /// Connects, reads the greeting, says `EHLO` and authenticates.
    async fn open(&self) -> Result<Link, String> {
        let (host, port) = (&self.config.host, self.config.port);
        let addr = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, port),
            Err(_) => rt::resolve(host, port)
                .await
                .map_err(|e| format!("resolving {host}: {e}"))?,
        };
        let conn = rt::connect(addr, REPLY_TIMEOUT)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let mut link = Link {
            conn,
            buf: Vec::new(),
        };
        let tls = self.tls.get().await?;
        if let (true, Some(tls)) = (self.config.implicit_tls, &tls) {
            link = starttls::handshake(link, tls, host).await?;
        }
        let refused = |what: &str, r: Reply| format!("{what} refused: {} {}", r.code, r.text);
        let greeting = link.reply().await?;
        if greeting.code != 220 {
            return Err(refused("greeting", greeting));
        }
        let mut ehlo = link.command("EHLO mcmp").await?;
        if ehlo.code == 250 && !link.conn.is_tls() {
            let mode = self.config.starttls;
            (link, ehlo) = starttls::negotiate(link, ehlo, mode, tls.as_ref(), host).await?;
        }
        if ehlo.code != 250 {
            return Err(refused("EHLO", ehlo));
        }
        if let (Some(user), Some(password)) = (&self.config.username, &self.config.password) {
            let token = BASE64.encode(format!("\0{user}\0{password}"));
            let auth = link.command(&format!("AUTH PLAIN {token}")).await?;
            if auth.code != 235 {
                return Err(refused("AUTH PLAIN", auth));
            }
        }
        Ok(link)
    }

    /// Sends messages on `link` until stop, idleness or a broken link.
    async fn serve(&self, link: &mut Link) -> End {
        enum Next {
            Message(Box<Outbound>),
            Stop,
            Idle,
        }
        loop {
            let next = or(
                async { Next::Message(Box::new(self.queue.pop().await)) },
                or(
                    async {
                        self.stop.notified().await;
                        Next::Stop
                    },
                    async {
                        rt::sleep(IDLE_QUIT).await;
                        Next::Idle
                    },
                ),
            )
            .await;
            let msg = match next {
                Next::Message(msg) => msg,
                Next::Stop => return End::Stopped,
                Next::Idle => return End::Idle,
            };
            match self.deliver(link, &msg).await {
                Ok(()) => self.delivered(&msg),
                Err(failure) => {
                    let broken = self.failed(&msg, failure);
                    let reset = match broken {
                        Some(reason) => Err(reason),
                        None => link.command("RSET").await,
                    };
                    match reset {
                        Ok(r) if r.code == 250 => {}
                        Ok(r) => {
                            return End::Failed(format!("RSET refused: {} {}", r.code, r.text))
                        }
                        Err(reason) => return End::Failed(reason),
                    }
                }
            }
        }
    }

    /// One mail transaction.
    async fn deliver(&self, link: &mut Link, msg: &Outbound) -> Result<(), Failure> {
        if !valid_address(&msg.to) {
            return Err(Failure::BadRecipient);
        }
        let from = &self.config.from;
        expect(link, &format!("MAIL FROM:<{from}>"), &[250], Stage::Mail).await?;
        expect(
            link,
            &format!("RCPT TO:<{}>", msg.to),
            &[250, 251],
            Stage::Rcpt,
        )
        .await?;
        expect(link, "DATA", &[354], Stage::Data).await?;
        let mut data = message_text(from, msg, crate::unix_ms() / 1000);
        data.push_str(".\r\n");
        link.send(data.as_bytes()).await.map_err(Failure::Broken)?;
        let reply = link.reply().await.map_err(Failure::Broken)?;
        match reply.code {
            250 => Ok(()),
            421 => Err(Failure::Broken(format!("421 {}", reply.text))),
            _ => Err(Failure::Refused(Stage::Content, reply)),
        }
    }

    fn delivered(&self, msg: &Outbound) {
        let carrier_id = msg.id.to_string();
        self.emit(SessionEvent::Submitted {
            id: msg.id,
            carrier_id: carrier_id.clone(),
        });
        self.emit(SessionEvent::Receipt {
            carrier_id,
            delivered: true,
            code: ResultCode::Delivered,
            detail: "250".into(),
        });
    }

    /// Reports a message that was not taken; returns why the link is broken,
    /// if it is.
    fn failed(&self, msg: &Outbound, failure: Failure) -> Option<String> {
        let (code, retry, detail, broken) = match failure {
            Failure::BadRecipient => (
                ResultCode::InvalidRecipient,
                false,
                format!("not a mail address: {:?}", msg.to),
                None,
            ),
            Failure::Broken(reason) => (
                ResultCode::ProviderError,
                true,
                reason.clone(),
                Some(reason),
            ),
            Failure::Refused(stage, reply) => {
                let (code, retry) = refusal_code(stage, reply.code);
                (
                    code,
                    retry,
                    format!("{stage:?} {} {}", reply.code, reply.text),
                    None,
                )
            }
        };
        self.emit(SessionEvent::SubmitFailed {
            id: msg.id,
            code,
            retry,
            detail,
        });
        broken
    }
}

/// The unified code of a refusal: 4xx is temporary (retry, 5006); a 5xx on
/// `RCPT` means the mailbox cannot receive (5001 Undeliverable); a 5xx on
/// `MAIL`, `DATA` or the content is a policy refusal (5003).
fn refusal_code(stage: Stage, code: u16) -> (ResultCode, bool) {
    match (stage, code) {
        (_, 400..=499) => (ResultCode::ProviderError, true),
        (Stage::Rcpt, 500..=599) => (ResultCode::Undeliverable, false),
        (_, 500..=599) => (ResultCode::RejectedByCarrier, false),
        _ => (ResultCode::ProviderError, true),
    }
}

/// Whether `addr` can go between `<>` in an envelope command: one `@`-ful
/// token without spaces, controls or angle brackets.
fn valid_address(addr: &str) -> bool {
    !addr.is_empty()
        && addr.len() <= 254
        && addr.contains('@')
        && !addr
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

/// The message as sent after `DATA` (without the final `.` line): headers,
/// a blank line and the base64 body, CRLF line ends. `now` is Unix seconds.
/// The `From:` header is the customer's sender address when the message
/// has one (`from` of an EMAIL is optional), else the sender's configured
/// `from`, which stays the envelope sender (bounces go to the operator).
fn message_text(from: &str, msg: &Outbound, now: i64) -> String {
    let subject = msg.subject.as_deref().unwrap_or("");
    let author = if valid_address(&msg.from) {
        msg.from.as_str()
    } else {
        from
    };
    let mut out = format!(
        "From: <{author}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
         Message-ID: <{id}@mcmp>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        to = msg.to,
        subject = encode_subject(subject),
        date = rfc5322_date(now),
        id = msg.id,
    );
    // NOTE: text/plain in base64 carries canonical CRLF line breaks
    // (RFC 2045 §6.8); base64 also makes dot-stuffing moot.
    let canonical = msg.text.replace("\r\n", "\n").replace('\n', "\r\n");
    let encoded = BASE64.encode(canonical.as_bytes());
    for line in encoded.as_bytes().chunks(BASE64_LINE) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str("\r\n");
    }
    out
}

/// A subject header value: printable ASCII as is, anything else as RFC 2047
/// `=?UTF-8?B?…?=` words (split on character boundaries, folded).
fn encode_subject(subject: &str) -> String {
    let plain = subject.bytes().all(|b| (0x20..0x7f).contains(&b)) && !subject.contains("=?");
    if plain {
        return subject.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in subject.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > WORD_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", BASE64.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// `Date:` value for Unix seconds `now`, in UTC (RFC 5322 §3.3).
fn rfc5322_date(now: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (now.div_euclid(86_400), now.rem_euclid(86_400));
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[(days + 4).rem_euclid(7) as usize];
    // Civil date from days since the epoch, in 400-year eras of 146,097 days
    // with years starting on 1 March (so the leap day ends the year).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}
