//! The webhook sink: a customer's report endpoint.
//!
//! `POST` (any path) of `{"reports":[…]}` signed with
//! `X-MCMP-Signature: sha256=<hex HMAC-SHA256(body, secret)>`. Order of
//! checks: the signature (bad → 401, `bad_signatures`), the body shape
//! (bad → 400, `malformed`), then the failure injection (`--fail-first`,
//! `--fail-rate` → `--status`, `failed_on_purpose`); only then are the
//! reports recorded and the request answered 200.
//!
//! Every validly signed request counts as one delivery attempt for each of
//! its reports, failed on purpose or not, so a report recorded on its retry
//! shows `attempt: 2`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac as _};
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::http::{self, Request, Response};
use crate::shutdown::Shutdown;

/// The signature header (SPEC §1 Report delivery).
pub const SIGNATURE_HEADER: &str = "x-mcmp-signature";
/// Reports kept for `GET /reports` and the e2e verification; past it the
/// counters stay exact but new reports are not listed (`reports_not_kept`).
/// Sized for a 60 s e2e run at ~60,000 messages/s (~1 GiB of memory).
pub const MAX_KEPT_REPORTS: usize = 4_000_000;

/// Flags of `mcmp-loadtest sink`.
#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The client secret the signatures are keyed with.
    #[arg(long)]
    pub secret: String,
    /// Answer `--status` to the first N validly signed requests.
    #[arg(long, default_value_t = 0)]
    pub fail_first: u64,
    /// Probability of answering `--status` to a validly signed request.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// The status of a failure on purpose.
    #[arg(long, default_value_t = 500)]
    pub status: u16,
    /// Serve HTTPS (`--tls`, `--tls-dir`, `--tls-client-auth`); `GET
    /// /stats` and `/reports` too.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

#[derive(Debug, Default, Serialize)]
struct Stats {
    requests: u64,
    reports: u64,
    unique: u64,
    duplicates: u64,
    bad_signatures: u64,
    malformed: u64,
    failed_on_purpose: u64,
    reports_not_kept: u64,
}

/// One received report as listed by `GET /reports`.
#[derive(Debug, Serialize)]
struct Received {
    report_id: Option<String>,
    message_id: Option<String>,
    /// Arrival time, unix milliseconds.
    arrived_ms: u64,
    /// 1 for the first signed request carrying this report_id, 2 for the next…
    attempt: u32,
    /// The report as JSON text: about 300 bytes, where the parsed `Value`
    /// of a 13-field report takes about 2 KiB (millions are kept).
    #[serde(serialize_with = "json_text")]
    report: Box<str>,
}

/// Serializes JSON text as the JSON it holds.
fn json_text<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    parse_kept(text).serialize(s)
}

fn parse_kept(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// What the sink counts per report_id.
#[derive(Debug, Default, Clone, Copy)]
struct PerReport {
    /// Signed requests that carried it.
    attempts: u32,
    /// Times it was accepted (200).
    accepted: u32,
}

#[derive(Debug, Default)]
struct State {
    stats: Stats,
    signed_requests: u64,
    /// Counts per report_id.
    per_report: HashMap<Box<str>, PerReport>,
    received: Vec<Received>,
}

/// The sink's state, shared by its connections (and read in-process by `e2e`).
#[derive(Debug)]
pub struct Sink {
    args: SinkArgs,
    status: StatusCode,
    state: Mutex<State>,
}

impl Sink {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One kept report, as `e2e` reads it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `report_id`.
    pub report_id: Option<String>,
    /// `message_id`.
    pub message_id: Option<String>,
    /// Arrival, unix ms.
    pub arrived_ms: u64,
    /// The whole report.
    pub report: Value,
}

impl Sink {
    /// Serves `listener` in a task until `shutdown` (in-process use: the
    /// listener is bound first so its address can go into `report_uri`
    /// before the client secret exists).
    pub fn spawn(
        args: SinkArgs,
        listener: tokio::net::TcpListener,
        tls: Option<crate::tls::TlsAcceptor>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Arc<Sink>> {
        let status = StatusCode::from_u16(args.status)?;
        let sink = Arc::new(Sink {
            args,
            status,
            state: Mutex::new(State::default()),
        });
        let served = sink.clone();
        tokio::spawn(http::serve_tls(listener, tls, shutdown, move |req| {
            let sink = served.clone();
            async move { handle(&sink, &req) }
        }));
        Ok(sink)
    }

    /// The counters as served by `GET /stats`.
    pub fn stats(&self) -> Value {
        json!(self.state().stats)
    }

    /// The kept reports from number `from` on, in arrival order. They are
    /// copied under the lock and parsed after it, so a large read does not
    /// hold up the webhook requests still arriving.
    pub fn seen_since(&self, from: usize) -> Vec<Seen> {
        let copied: Vec<(Seen, Box<str>)> = {
            let state = self.state();
            state.received[from.min(state.received.len())..]
                .iter()
                .map(|r| {
                    let seen = Seen {
                        report_id: r.report_id.clone(),
                        message_id: r.message_id.clone(),
                        arrived_ms: r.arrived_ms,
                        report: Value::Null,
                    };
                    (seen, r.report.clone())
                })
                .collect()
        };
        copied
            .into_iter()
            .map(|(seen, text)| Seen {
                report: parse_kept(&text),
                ..seen
            })
            .collect()
    }
}

/// Runs the sink until `shutdown`.
pub async fn run(args: SinkArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let status = StatusCode::from_u16(args.status)?;
    let (listener, addr) = http::bind(args.listen).await?;
    let tls = crate::tls::acceptor(&args.tls, addr.ip(), &[crate::tls::ALPN_HTTP1])?;
    let sink = Arc::new(Sink {
        args,
        status,
        state: Mutex::new(State::default()),
    });
    crate::ready("sink", addr);
    http::serve_tls(listener, tls, shutdown, move |req| {
        let sink = sink.clone();
        async move { handle(&sink, &req) }
    })
    .await;
    Ok(())
}

fn handle(sink: &Sink, req: &Request) -> Response {
    match (&req.method, req.path.as_str()) {
        (&Method::GET, "/stats") => http::json(StatusCode::OK, &json!(sink.state().stats)),
        (&Method::GET, "/reports") => http::json(StatusCode::OK, &json!(sink.state().received)),
        (&Method::POST, _) => receive(sink, req),
        _ => http::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST reports, GET /stats or /reports",
        ),
    }
}

fn receive(sink: &Sink, req: &Request) -> Response {
    let mut state = sink.state();
    state.stats.requests += 1;
    let signature = req
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if !signature_ok(sink.args.secret.as_bytes(), &req.body, signature) {
        state.stats.bad_signatures += 1;
        return http::error(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let reports = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(mut o)) => match o.remove("reports") {
            Some(Value::Array(reports)) => reports,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    if reports.is_empty() {
        state.stats.malformed += 1;
        return http::error(StatusCode::BAD_REQUEST, "expected {\"reports\":[…]}");
    }
    state.signed_requests += 1;
    let ids: Vec<Option<String>> = reports
        .iter()
        .map(|r| string_field(r, "report_id"))
        .collect();
    let attempts: Vec<u32> = ids
        .iter()
        .map(|id| match id {
            Some(id) => {
                let n = &mut state
                    .per_report
                    .entry(id.as_str().into())
                    .or_default()
                    .attempts;
                *n += 1;
                *n
            }
            None => 1,
        })
        .collect();
    let fail =
        state.signed_requests <= sink.args.fail_first || fastrand::f64() < sink.args.fail_rate;
    if fail {
        state.stats.failed_on_purpose += 1;
        return http::error(sink.status, "failed on purpose");
    }
    let arrived_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for ((report, report_id), attempt) in reports.into_iter().zip(ids).zip(attempts) {
        record(&mut state, report, report_id, attempt, arrived_ms);
    }
    http::json(StatusCode::OK, &json!({ "ok": true }))
}

fn record(
    state: &mut State,
    report: Value,
    report_id: Option<String>,
    attempt: u32,
    arrived_ms: u64,
) {
    state.stats.reports += 1;
    let times = match &report_id {
        Some(id) => {
            let n = &mut state
                .per_report
                .entry(id.as_str().into())
                .or_default()
                .accepted;
            *n += 1;
            *n
        }
        None => 1,
    };
    if times == 1 {
        state.stats.unique += 1;
    } else {
        state.stats.duplicates += 1;
    }
    if state.received.len() >= MAX_KEPT_REPORTS {
        state.stats.reports_not_kept += 1;
        return;
    }
    state.received.push(Received {
        message_id: string_field(&report, "message_id"),
        report_id,
        arrived_ms,
        attempt,
        report: report.to_string().into_boxed_str(),
    });
}

fn string_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks `sha256=<hex>` against HMAC-SHA256(body, secret) in constant time.
pub fn signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some((hex_digit(*hi)? << 4) | hex_digit(*lo)?),
            _ => None,
        })
        .collect()
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    }

    #[test]
    fn signatures_verify() {
        let sig = sign(b"k", b"{}");
        assert!(signature_ok(b"k", b"{}", Some(&sig)));
        assert!(signature_ok(
            b"k",
            b"{}",
            Some(&sig.to_uppercase().replace("SHA256", "sha256"))
        ));
        assert!(!signature_ok(b"other", b"{}", Some(&sig)));
        assert!(!signature_ok(b"k", b"{ }", Some(&sig)));
        assert!(!signature_ok(b"k", b"{}", None));
        assert!(!signature_ok(b"k", b"{}", Some("sha256=zz")));
        assert!(!signature_ok(b"k", b"{}", Some("md5=00")));
    }
}
