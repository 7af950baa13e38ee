//! Operator alerts: events POSTed as JSON to the configured
//! `alerts.webhook-url`, fire-and-forget, from the shard where they happen.
//!
//! ```json
//! {"event":"sender_down","at":"2024-05-01T08:30:00.000Z","detail":{"sender":"G_S_KT01","reason":"…","shard":1}}
//! ```
//!
//! Each shard has its own [`Alerts`] (its HTTP client, its in-flight
//! count); at most [`MAX_ALERTS_IN_FLIGHT`] alerts of a shard are on their
//! way at once, and an alert raised beyond that is dropped with a log line,
//! so a dead alert endpoint never piles up memory. An alert is tried once:
//! the log keeps every event whatever happens to its POST.
//!
//! The shard owns its [`Alerts`] (no thread-local): the WAL gets it at
//! construction, the rest of the driver reaches it through the shard.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::AlertFormat;
use crate::http_client::HttpClient;
use crate::rt;
use crate::sender::live::SenderLive;

/// Most alerts one shard has in flight; beyond that new alerts are dropped.
pub const MAX_ALERTS_IN_FLIGHT: usize = 100;

/// Time the alert endpoint has to answer one POST.
pub const ALERT_TIMEOUT: Duration = Duration::from_secs(5);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEvent {
    /// A sender's last bound session went down.
    SenderDown,
    /// A sender's first session came up.
    SenderUp,
    /// A sender's error rate took it out of routing for a while.
    SenderSidelined,
    /// A shard's WAL failed an fsync and stopped accepting.
    WalPoisoned,
    /// The data directory's file system is nearly full.
    DiskNearlyFull,
    /// A customer's webhook keeps failing.
    WebhookFailing,
}

impl AlertEvent {
    /// The wire name (`"sender_down"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::SenderDown => "sender_down",
            AlertEvent::SenderUp => "sender_up",
            AlertEvent::SenderSidelined => "sender_sidelined",
            AlertEvent::WalPoisoned => "wal_poisoned",
            AlertEvent::DiskNearlyFull => "disk_nearly_full",
            AlertEvent::WebhookFailing => "webhook_failing",
        }
    }
}

/// An alert as a Slack incoming-webhook payload (Mattermost takes the same):
/// `text` (what notifications show) and blocks (a header line, the detail
/// as fields, the time and shard as context).
pub fn slack_body(event: AlertEvent, at: &str, detail: &Value) -> Value {
    let mut fields = Vec::new();
    let mut words = Vec::new();
    if let Value::Object(m) = detail {
        for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "shard") {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            fields.push(json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}));
            words.push(format!("{k}={v}"));
        }
    }
    let title = format!("MCMP alert: {}", event.as_str());
    let text = match words.is_empty() {
        true => title.clone(),
        false => format!("{title} ({})", words.join(", ")),
    };
    let shard = detail
        .get("shard")
        .map(Value::to_string)
        .unwrap_or_default();
    let mut blocks =
        vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{title}*")}})];
    if !fields.is_empty() {
        fields.truncate(10);
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let context = format!("{at} · shard {shard}");
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    json!({"text": text, "blocks": blocks})
}

/// Alerts a shard remembers for the console (`GET /admin/v1/alerts`); an
/// older one leaves as a new one comes.
pub const RECENT_ALERTS: usize = 100;

/// An alert raised lately, as `GET /admin/v1/alerts` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentAlert {
    /// When (unix ms).
    pub at_ms: i64,
    /// What happened.
    pub event: AlertEvent,
    /// The detail, with the shard.
    pub detail: Value,
}

/// Where one shard's alerts go: the log always, its last
/// [`RECENT_ALERTS`] for the console, and a POST when a URL is
/// configured. Owned by the shard and handed to the code that raises
/// alerts (the WAL gets it at construction).
pub struct Alerts {
    shard: usize,
    sink: Option<Sink>,
    recent: RefCell<VecDeque<RecentAlert>>,
}

struct Sink {
    url: Rc<str>,
    format: AlertFormat,
    http: Rc<HttpClient>,
    in_flight: Rc<Cell<usize>>,
}

impl Alerts {
    /// The alerts of `shard`; without a URL they are only logged.
    pub fn new(
        shard: usize,
        url: Option<String>,
        format: AlertFormat,
        http: Rc<HttpClient>,
    ) -> Alerts {
        let sink = url.map(|url| Sink {
            url: url.into(),
            format,
            http,
            in_flight: Rc::default(),
        });
        Alerts {
            shard,
            sink,
            recent: RefCell::default(),
        }
    }

    /// The alerts raised here lately, newest first.
    pub fn recent(&self) -> Vec<RecentAlert> {
        self.recent.borrow().iter().cloned().collect()
    }

    /// Raises an alert: logged, and POSTed when a URL is configured.
    /// `detail` is an object; the shard is added to it.
    pub fn raise(&self, event: AlertEvent, detail: Value) {
        tracing::warn!(event = event.as_str(), shard = self.shard, %detail, "alert");
        let mut detail = detail;
        if let Value::Object(m) = &mut detail {
            m.insert("shard".into(), Value::from(self.shard));
        }
        let at_ms = crate::unix_ms();
        let mut recent = self.recent.borrow_mut();
        recent.truncate(RECENT_ALERTS - 1);
        recent.push_front(RecentAlert {
            at_ms,
            event,
            detail: detail.clone(),
        });
        drop(recent);
        let Some(sink) = &self.sink else {
            return;
        };
        if sink.in_flight.get() >= MAX_ALERTS_IN_FLIGHT {
            tracing::warn!(
                event = event.as_str(),
                "alert dropped: {MAX_ALERTS_IN_FLIGHT} alerts already in flight"
            );
            return;
        }
        let at = crate::time::format_rfc3339(at_ms);
        let body = match sink.format {
            AlertFormat::Json => json!({"event": event.as_str(), "at": at, "detail": detail}),
            AlertFormat::Slack => slack_body(event, &at, &detail),
        };
        let (url, http, in_flight) = (sink.url.clone(), sink.http.clone(), sink.in_flight.clone());
        in_flight.set(in_flight.get() + 1);
        rt::spawn(async move {
            let bytes = bytes::Bytes::from(body.to_string());
            match http.post_json(&url, &[], bytes, ALERT_TIMEOUT).await {
                Ok(r) if (200..300).contains(&r.status) => {}
                Ok(r) => tracing::warn!(status = r.status, "alert endpoint refused an alert"),
                Err(e) => tracing::warn!("alert endpoint unreachable: {e}"),
            }
            in_flight.set(in_flight.get().saturating_sub(1));
        });
    }

    /// A session of `sender` on this shard came up (`down_reason = None`) or
    /// went down, after its live state was updated: the sender's first session
    /// up is `sender_up`, its last one down `sender_down`.
    ///
    /// NOTE: two shards changing at the same instant may both see the same
    /// total, so an edge can be reported twice (down) or missed (up); the log
    /// has every session change.
    pub fn sender_session_changed(
        &self,
        sender: &str,
        live: &SenderLive,
        down_reason: Option<&str>,
    ) {
        match down_reason {
            None if live.connected() == 1 => {
                self.raise(AlertEvent::SenderUp, json!({ "sender": sender }));
            }
            Some(reason) if live.connected() == 0 => self.raise(
                AlertEvent::SenderDown,
                json!({ "sender": sender, "reason": reason }),
            ),
            _ => {}
        }
    }
}
