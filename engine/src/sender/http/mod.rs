//! The `http` transport (KKO, RCS, MMS, PUSH): each message is one JSON POST
//! to the provider's URL through the shard's `HttpClient`. The provider
//! answers at once — accepted (the final result comes later to
//! `POST /provider/v1/reports/{sender}`, parsed by [`parse_provider_report`])
//! or a synchronous final answer — and provider result codes become unified
//! codes through [`PROVIDER_CODES`]. A session runs up to [`MAX_IN_FLIGHT`]
//! requests at once; after [`DOWN_AFTER`] consecutive transport failures it
//! reports `Down` and probes the provider with backoff until it answers.
//! Shard-local: the session, its requests and its state stay on the shard
//! that spawned it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future::or;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{HttpConfig, Outbound, SessionEvent, SessionEvents, SessionQueue};
use crate::codes::ResultCode;
use crate::http_client::{self, HttpClient, HttpError, HttpResponse};
use crate::notify::LocalNotify;
use crate::rt;

#[cfg(test)]
mod tests;

/// Requests one session keeps in flight. Providers answer in tens of
/// milliseconds; 64 outstanding requests carry a few thousand messages per
/// second per shard without letting one slow provider hold unbounded work
/// (the client's per-host connection cap bounds the sockets separately).
pub const MAX_IN_FLIGHT: usize = 64;
/// Consecutive connect/timeout/I-O failures after which the session reports
/// `Down` (one lost request is noise; five in a row is an outage).
pub const DOWN_AFTER: u32 = 5;
/// First pause between probes of a provider that is down; doubles per
/// failed probe.
const PROBE_MIN: Duration = Duration::from_secs(1);
/// Probe pause cap: a provider outage is not hammered.
const PROBE_MAX: Duration = Duration::from_secs(30);
/// Most bytes of a provider's answer quoted in a failure's `detail`.
const DETAIL_MAX: usize = 200;

/// Provider result codes and their unified codes. The codes are MCMP's
/// provider convention (a prefix per profile: `K` KKO, `R` RCS, `M` MMS,
/// `P` PUSH; `0000`/`9999` for any); a provider speaking another dialect is
/// mapped by an adapter in front of it. A code not listed here means
/// [`ResultCode::Delivered`] with `status: "delivered"` and
/// [`ResultCode::ProviderError`] with `status: "failed"`.
pub const PROVIDER_CODES: &[(&str, ResultCode)] = &[
    ("0000", ResultCode::Delivered),
    ("K000", ResultCode::Delivered),
    ("R000", ResultCode::Delivered),
    ("M000", ResultCode::Delivered),
    ("P000", ResultCode::Delivered),
    // KKO: not a messenger user / user blocked the channel / template
    // mismatch or not approved / expired before read.
    ("K101", ResultCode::UnknownSubscriber),
    ("K102", ResultCode::Undeliverable),
    ("K103", ResultCode::RejectedByCarrier),
    ("K105", ResultCode::RejectedByCarrier),
    ("K108", ResultCode::ExpiredAtCarrier),
    // RCS: bad request / device not RCS-capable / expired / provider down.
    ("R400", ResultCode::RejectedByCarrier),
    ("R404", ResultCode::UnknownSubscriber),
    ("R408", ResultCode::ExpiredAtCarrier),
    ("R503", ResultCode::ProviderError),
    // RCS media files (SPEC §5.10): too large / unsupported media.
    ("R413", ResultCode::RejectedByCarrier),
    ("R415", ResultCode::RejectedByCarrier),
    // MMS: rejected content / unknown number / expired / handset failure.
    ("M400", ResultCode::RejectedByCarrier),
    ("M404", ResultCode::UnknownSubscriber),
    ("M408", ResultCode::ExpiredAtCarrier),
    ("M500", ResultCode::Undeliverable),
    // PUSH: bad payload / unknown or unregistered device token / expired.
    ("P400", ResultCode::RejectedByCarrier),
    ("P404", ResultCode::UnknownSubscriber),
    ("P410", ResultCode::UnknownSubscriber),
    ("P408", ResultCode::ExpiredAtCarrier),
    // Any profile: undeliverable / ported out / provider internal error.
    ("5001", ResultCode::Undeliverable),
    ("5004", ResultCode::PortedOut),
    ("9999", ResultCode::ProviderError),
];

/// The unified code of a provider result. The status decides success: a
/// delivered result is [`ResultCode::Delivered`] whatever its code, and a
/// failed one never is (an unknown or success code then means
/// [`ResultCode::ProviderError`]).
pub fn provider_code(code: &str, delivered: bool) -> ResultCode {
    if delivered {
        return ResultCode::Delivered;
    }
    PROVIDER_CODES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|&(_, unified)| unified)
        .filter(|&unified| unified != ResultCode::Delivered)
        .unwrap_or(ResultCode::ProviderError)
}

/// How a message becomes a request body (`HttpConfig::profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// KakaoTalk business message: adds `template_code` and `vars`.
    Kko,
    /// RCS business message: adds `template_code` and `vars`.
    Rcs,
    /// MMS: adds `subject` and the images (`attachments`, base64).
    Mms,
    /// App push: adds `title` (the message's subject).
    Push,
}

impl Profile {
    /// The profile named in the configuration, if known.
    pub fn parse(name: &str) -> Option<Profile> {
        match name.to_ascii_lowercase().as_str() {
            "kko" => Some(Profile::Kko),
            "rcs" => Some(Profile::Rcs),
            "mms" => Some(Profile::Mms),
            "push" => Some(Profile::Push),
            _ => None,
        }
    }
}

/// The JSON request body of `msg`. Every profile sends
/// `{"message_id","to","from","text","channel","report_url"}` (`message_id`
/// is the 16-hex-digit MCMP id; `report_url` is `null` without a callback
/// base); then `kko` and `rcs` add `"template_code"` (string or `null`) and
/// `"vars"` (an object of the template variables), `mms` adds `"subject"`
/// (string or `null`) and `"attachments"` (`[{"name","content_type",
/// "data"}]`, data in base64: the inline images or a stored file's, SPEC
/// §5.10), and `push` adds `"title"` (the subject, or `null`). An `rcs`
/// message that names a registered file also has `"file_id"`: the
/// provider's own id of it. A message with an origin code (a reseller's,
/// SPEC §5.11) also has `"origin_code"`.
pub fn request_body(profile: Profile, msg: &Outbound, report_url: Option<&str>) -> Bytes {
    let mut body = Map::new();
    body.insert("message_id".into(), msg.id.to_string().into());
    body.insert("to".into(), msg.to.clone().into());
    body.insert("from".into(), msg.from.clone().into());
    body.insert("text".into(), msg.text.clone().into());
    body.insert("channel".into(), msg.channel.as_str().into());
    body.insert("report_url".into(), report_url.map(str::to_string).into());
    if let Some(code) = &msg.origin_code {
        body.insert("origin_code".into(), code.clone().into());
    }
    match profile {
        Profile::Kko | Profile::Rcs => {
            body.insert("template_code".into(), msg.template_code.clone().into());
            let vars: Map<String, Value> = msg
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect();
            body.insert("vars".into(), Value::Object(vars));
            let file = msg.attachments.iter().find_map(|a| a.provider_file_id());
            if let (Profile::Rcs, Some(file_id)) = (profile, file) {
                body.insert("file_id".into(), file_id.into());
            }
        }
        Profile::Mms => {
            body.insert("subject".into(), msg.subject.clone().into());
            body.insert("attachments".into(), images(msg));
        }
        Profile::Push => {
            body.insert("title".into(), msg.subject.clone().into());
        }
    }
    Bytes::from(Value::Object(body).to_string())
}

/// An MMS message's images: `[{"name","content_type","data"}]`, base64.
fn images(msg: &Outbound) -> Value {
    use base64::Engine;
    let images = msg
        .attachments
        .iter()
        .filter(|a| !a.data.is_empty())
        .map(|a| {
            let data = base64::engine::general_purpose::STANDARD.encode(&a.data);
            serde_json::json!({"name": a.name, "content_type": a.content_type, "data": data})
        })
        .collect();
    Value::Array(images)
}

/// The provider's synchronous answer to a submit (2xx body).
#[derive(Debug, Deserialize)]
struct SubmitAnswer {
    provider_msg_id: Option<String>,
    status: Option<String>,
    #[serde(default)]
    code: Value,
}

/// What the provider's answer means for `msg`:
/// - 2xx `{"provider_msg_id","status":"accepted"}` (or no status) →
///   `Submitted` (the id falls back to the MCMP message id when absent);
/// - 2xx with `"status":"delivered"|"failed"` → `Submitted`, then at once
///   the final `Receipt` (code through [`provider_code`]);
/// - 2xx with `"status":"rejected"` → final `SubmitFailed` (the provider's
///   code, else 5003); a 2xx body that is not such JSON → `Submitted` with
///   the MCMP id, since the provider did take the request;
/// - 408 and 429 (timeout, throttled) → retryable `SubmitFailed` 5006;
///   other 4xx → final `SubmitFailed` 5003 (`RejectedByCarrier`);
/// - 5xx and anything else → retryable `SubmitFailed` 5006.
pub fn answer_events(msg: &Outbound, response: &HttpResponse) -> Vec<SessionEvent> {
    let id = msg.id;
    let failed = |code, retry| SessionEvent::SubmitFailed {
        id,
        code,
        retry,
        detail: format!("HTTP {}: {}", response.status, snippet(&response.body)),
    };
    match response.status {
        200..=299 => {}
        408 | 429 => return vec![failed(ResultCode::ProviderError, true)],
        400..=499 => return vec![failed(ResultCode::RejectedByCarrier, false)],
        _ => return vec![failed(ResultCode::ProviderError, true)],
    }
    let answer: Option<SubmitAnswer> = serde_json::from_slice(&response.body).ok();
    let Some(answer) = answer else {
        tracing::warn!(message = %id, "provider answered 2xx without a JSON submit answer");
        return vec![SessionEvent::Submitted {
            id,
            carrier_id: id.to_string(),
        }];
    };
    let carrier_id = answer.provider_msg_id.unwrap_or_else(|| id.to_string());
    let code = code_text(&answer.code);
    let status = answer.status.unwrap_or_default().to_ascii_lowercase();
    let submitted = SessionEvent::Submitted {
        id,
        carrier_id: carrier_id.clone(),
    };
    match status.as_str() {
        "delivered" | "failed" => {
            let result = ProviderResult {
                provider_msg_id: carrier_id,
                delivered: status == "delivered",
                status,
                code,
            };
            vec![submitted, result_to_receipt(&result)]
        }
        "rejected" => {
            let unified = PROVIDER_CODES
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(&code))
                .map_or(ResultCode::RejectedByCarrier, |&(_, u)| u);
            vec![SessionEvent::SubmitFailed {
                id,
                code: provider_code_or(unified),
                retry: false,
                detail: format!("rejected {code}"),
            }]
        }
        _ => vec![submitted],
    }
}

/// A rejection never reports success, whatever code the provider gave.
fn provider_code_or(unified: ResultCode) -> ResultCode {
    if unified == ResultCode::Delivered {
        ResultCode::RejectedByCarrier
    } else {
        unified
    }
}

/// A provider code as text: providers send `"K000"` or `0`.
fn code_text(code: &Value) -> String {
    match code {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(DETAIL_MAX)]);
    text.replace(['\r', '\n'], " ")
}

/// One final result a provider posted to `POST /provider/v1/reports/{sender}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderResult {
    /// The provider's message id (the `carrier_id` of the submit).
    pub provider_msg_id: String,
    /// Whether it was delivered (`"status":"delivered"`).
    pub delivered: bool,
    /// The status as sent, lower-cased (`delivered` or `failed`).
    pub status: String,
    /// The provider's result code as text (empty when absent).
    pub code: String,
}

#[derive(Deserialize)]
struct ReportBody {
    results: Vec<RawResult>,
}

#[derive(Deserialize)]
struct RawResult {
    provider_msg_id: String,
    status: String,
    #[serde(default)]
    code: Value,
}

/// Parses a provider callback body `{"results":[{"provider_msg_id","status",
/// "code"}]}`. Unknown fields are ignored (providers add their own); a
/// status other than `delivered`/`failed`, a missing id or malformed JSON
/// rejects the whole body, so the provider sees the error (400) and resends.
pub fn parse_provider_report(body: &[u8]) -> Result<Vec<ProviderResult>, String> {
    let report: ReportBody = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    report
        .results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let status = r.status.to_ascii_lowercase();
            let delivered = match status.as_str() {
                "delivered" => true,
                "failed" => false,
                other => return Err(format!("results[{i}]: unknown status {other:?}")),
            };
            if r.provider_msg_id.is_empty() {
                return Err(format!("results[{i}]: empty provider_msg_id"));
            }
            Ok(ProviderResult {
                provider_msg_id: r.provider_msg_id,
                delivered,
                status,
                code: code_text(&r.code),
            })
        })
        .collect()
}

/// The receipt event of a provider result (`detail` is the provider's code,
/// or its status when it gave none).
pub fn result_to_receipt(r: &ProviderResult) -> SessionEvent {
    SessionEvent::Receipt {
        carrier_id: r.provider_msg_id.clone(),
        delivered: r.delivered,
        code: provider_code(&r.code, r.delivered),
        detail: if r.code.is_empty() {
            r.status.clone()
        } else {
            r.code.clone()
        },
    }
}

/// The client a session posts with: the shard's, or, for a sender with a
/// `ca` or a client certificate of its own (`tls`, its
/// [`HttpConfig::tls_spec`]), a client of its own, its TLS built from the
/// files on the blocking pool. The error says which file did not load.
pub async fn session_client(
    shard_client: Rc<HttpClient>,
    tls: Option<rt::ClientTlsSpec>,
) -> Result<Rc<HttpClient>, String> {
    let Some(spec) = tls else {
        return Ok(shard_client);
    };
    let tls = rt::blocking(move || rt::ClientTls::build(&spec))
        .await
        .map_err(|e| format!("TLS configuration: {e}"))?;
    Ok(Rc::new(HttpClient::with_tls(tls)))
}

/// Runs one session of an `http` sender until `stop` is notified.
/// `callback_base` is the public base URL of this MCMP (`http://host:port`);
/// with it, each request carries the `report_url` the provider posts final
/// results to. A bad URL or profile keeps the session down.
pub async fn run_session(
    name: String,
    config: HttpConfig,
    client: Rc<HttpClient>,
    callback_base: Option<String>,
    queue: Rc<SessionQueue>,
    events: SessionEvents,
    stop: Rc<LocalNotify>,
) {
    let profile = Profile::parse(&config.profile);
    let checked = http_client::check_url(&config.url).map_err(|e| e.to_string());
    let profile = match (profile, checked) {
        (Some(p), Ok(())) => p,
        (None, _) => {
            return stay_down(
                &events,
                &stop,
                format!("unknown profile {:?}", config.profile),
            )
            .await
        }
        (_, Err(e)) => return stay_down(&events, &stop, e).await,
    };
    let report_url = callback_base
        .map(|base| format!("{}/provider/v1/reports/{name}", base.trim_end_matches('/')));
    let mut headers: Vec<(String, String)> = config.headers.clone().into_iter().collect();
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    let session = Rc::new(Provider {
        name,
        timeout: Duration::from_millis(u64::from(config.timeout_ms.max(1))),
        config,
        profile,
        headers,
        report_url,
        client,
        events,
        failures: Cell::new(0),
        down: Cell::new(false),
        in_flight: Cell::new(0),
        wake: LocalNotify::default(),
    });
    session.emit(SessionEvent::Up);
    or(stop.notified(), session.serve(&queue)).await;
    session.emit(SessionEvent::Down {
        reason: "session stopped".into(),
    });
}

pub(crate) async fn stay_down(events: &SessionEvents, stop: &LocalNotify, reason: String) {
    tracing::warn!(%reason, "http sender misconfigured; the session stays down");
    events(SessionEvent::Down { reason });
    stop.notified().await;
}

/// One session's state. Shard-local (`Rc`-shared with its request tasks).
struct Provider {
    name: String,
    config: HttpConfig,
    profile: Profile,
    headers: Vec<(String, String)>,
    report_url: Option<String>,
    timeout: Duration,
    client: Rc<HttpClient>,
    events: SessionEvents,
    /// Consecutive transport failures.
    failures: Cell<u32>,
    /// Whether `Down` was reported and not yet followed by `Up`.
    down: Cell<bool>,
    in_flight: Cell<usize>,
    /// Wakes the serve loop: a request finished, or the provider went down.
    wake: LocalNotify,
}

impl Provider {
    fn emit(&self, event: SessionEvent) {
        (self.events)(event);
    }

    /// Takes messages while the provider is up and fewer than
    /// [`MAX_IN_FLIGHT`] requests run; probes it with backoff while down.
    /// Request tasks are detached: on stop, requests already sent finish
    /// and report, so no message the provider took goes unreported.
    async fn serve(self: &Rc<Self>, queue: &SessionQueue) {
        let mut backoff = PROBE_MIN;
        loop {
            if self.down.get() {
                rt::sleep(backoff).await;
                match self.client.probe(&self.config.url, self.timeout).await {
                    Ok(()) => {
                        self.succeeded();
                        backoff = PROBE_MIN;
                    }
                    Err(e) => {
                        tracing::debug!(sender = %self.name, error = %e, "provider probe failed");
                        backoff = (backoff * 2).min(PROBE_MAX);
                    }
                }
                continue;
            }
            if self.in_flight.get() >= MAX_IN_FLIGHT {
                self.wake.notified().await;
                continue;
            }
            let next = or(async { Some(queue.pop().await) }, async {
                self.wake.notified().await;
                None
            })
            .await;
            if let Some(msg) = next {
                self.in_flight.set(self.in_flight.get() + 1);
                let me = self.clone();
                rt::spawn(async move {
                    me.submit(msg).await;
                    me.in_flight.set(me.in_flight.get() - 1);
                    me.wake.notify();
                });
            }
        }
    }

    async fn submit(&self, msg: Outbound) {
        let body = request_body(self.profile, &msg, self.report_url.as_deref());
        let result = self
            .client
            .post_json(&self.config.url, &self.headers, body, self.timeout)
            .await;
        match result {
            Ok(response) => {
                self.succeeded();
                for event in answer_events(&msg, &response) {
                    self.emit(event);
                }
            }
            Err(e) => {
                if matches!(
                    e,
                    HttpError::Connect(_) | HttpError::Timeout | HttpError::Io(_)
                ) {
                    self.failed(&e);
                }
                self.emit(SessionEvent::SubmitFailed {
                    id: msg.id,
                    code: ResultCode::ProviderError,
                    retry: true,
                    detail: e.to_string(),
                });
            }
        }
    }

    fn succeeded(&self) {
        self.failures.set(0);
        if self.down.replace(false) {
            tracing::info!(sender = %self.name, "provider answers again");
            self.emit(SessionEvent::Up);
        }
    }

    fn failed(&self, error: &HttpError) {
        self.failures.set(self.failures.get() + 1);
        if self.failures.get() >= DOWN_AFTER && !self.down.replace(true) {
            let reason = format!("{DOWN_AFTER} requests failed in a row; last: {error}");
            tracing::warn!(sender = %self.name, %reason, "provider down");
            self.emit(SessionEvent::Down { reason });
            self.wake.notify();
        }
    }
}
