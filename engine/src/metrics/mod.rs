//! Per-shard metrics, merged at scrape time (DESIGN §2).
//!
//! Each shard records into its own [`LocalMetrics`]: plain counters and HDR
//! histograms behind one `RefCell`, touched only by the shard's thread, so
//! the hot path never shares a cache line or a lock with another core.
//! `GET /metrics` asks every shard for a [`MetricsSnapshot`] (a `Send` copy of
//! its data), adds them up with [`MetricsSnapshot::merge`], collects the
//! live values (queue depths, held messages, ...) into [`Gauges`] and calls
//! [`render`] for the Prometheus text exposition format 0.0.4.
//!
//! Every label set is bounded: channels, result codes, final statuses, HTTP
//! routes and HTTP statuses are fixed tables indexed by position (no
//! allocation when counting); the per-sender families take their label
//! values from configuration and are capped at [`MAX_LABEL_VALUES`] distinct
//! values, beyond which samples go to the [`OTHER_LABEL`] series. Nothing is
//! labelled per message or per phone number.
//!
//! A shard counts into its [`LocalMetrics`]; `/metrics` merges every
//! shard's [`MetricsSnapshot`] and [`render`]s the merge (the test
//! `one_shard_counts_render_after_a_merge` shows the round trip).

mod figures;
mod render;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;

pub use self::figures::figures;
pub use self::render::{render, Gauges, SenderGauges};
use crate::codes::ResultCode;
use crate::model::{Channel, Status};

/// Most distinct label values one bounded family (per sender, per customer)
/// keeps; further values are counted under [`OTHER_LABEL`]. Senders and
/// customers come from the operator's configuration, so real deployments stay
/// far below this; the cap only protects Prometheus (and the shard's memory)
/// from a misconfiguration or a bug that would mint labels without end.
pub const MAX_LABEL_VALUES: usize = 1_000;
/// The label value that collects samples beyond [`MAX_LABEL_VALUES`].
pub const OTHER_LABEL: &str = "other";
/// Significant decimal digits of every latency histogram (0.1 % error).
pub const HISTOGRAM_SIGFIG: u8 = 3;
/// Largest latency a histogram tells apart; longer ones are recorded as this
/// (their exact time still counts in the histogram's `_sum`, and they fall
/// in its `+Inf` bucket). One hour covers every HTTP request and fsync, and
/// deliveries that do not wait for a schedule or a long hold.
pub const HISTOGRAM_MAX: Duration = Duration::from_secs(3_600);

const CHANNELS: usize = Channel::ALL.len();
/// Result codes plus one slot for a code outside the table.
const CODE_SLOTS: usize = ResultCode::ALL.len() + 1;
const OTHER_CODE: usize = ResultCode::ALL.len();
/// The final statuses, in the order of [`FINAL_STATUSES`].
const FINAL_STATUSES: [Status; 4] = [
    Status::Delivered,
    Status::Failed,
    Status::Canceled,
    Status::Rejected,
];
/// HTTP statuses 100–599 each have a slot; anything else shares the last.
const STATUS_SLOTS: usize = 501;
const FIRST_STATUS: u16 = 100;

/// The HTTP routes `mcmp_http_request_seconds` and `mcmp_http_requests_total`
/// tell apart: a fixed set, never the raw path (which carries ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpRoute {
    /// `POST /v1/messages`.
    MessagesPost,
    /// `GET /v1/messages/{id}` and `GET /v1/messages?src_msg_id=`.
    MessagesGet,
    /// `GET /v1/reports`.
    Reports,
    /// `POST /oauth/token`.
    Token,
    /// Anything under `/admin/v1`.
    Admin,
    /// `POST /provider/v1/reports/{sender}`.
    Provider,
    /// `/healthz`, `/readyz`, `/metrics`.
    Ops,
    /// Everything else (404s, unknown methods).
    Other,
}

impl HttpRoute {
    /// Every route, in label order.
    pub const ALL: [HttpRoute; 8] = [
        HttpRoute::MessagesPost,
        HttpRoute::MessagesGet,
        HttpRoute::Reports,
        HttpRoute::Token,
        HttpRoute::Admin,
        HttpRoute::Provider,
        HttpRoute::Ops,
        HttpRoute::Other,
    ];

    /// The `route` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpRoute::MessagesPost => "messages_post",
            HttpRoute::MessagesGet => "messages_get",
            HttpRoute::Reports => "reports",
            HttpRoute::Token => "token",
            HttpRoute::Admin => "admin",
            HttpRoute::Provider => "provider",
            HttpRoute::Ops => "ops",
            HttpRoute::Other => "other",
        }
    }
}

const ROUTES: usize = HttpRoute::ALL.len();

fn code_slot(code: u16) -> usize {
    ResultCode::ALL
        .iter()
        .position(|c| c.as_u16() == code)
        .unwrap_or(OTHER_CODE)
}

fn status_slot(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status - FIRST_STATUS),
        _ => STATUS_SLOTS - 1,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One latency family's data: an HDR histogram in microseconds (created on
/// first use: an empty one costs ~190 KiB) and the exact sum. Exported as a
/// Prometheus histogram with its family's buckets (aggregatable across
/// instances); the HDR histogram gives every bucket's count within 0.1 %.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latency {
    hist: Option<Histogram<u64>>,
    sum_micros: u64,
    count: u64,
}

impl Latency {
    fn record(&mut self, d: Duration) {
        let us = micros(d);
        self.sum_micros = self.sum_micros.saturating_add(us);
        self.count += 1;
        if self.hist.is_none() {
            self.hist = new_histogram();
        }
        if let Some(h) = self.hist.as_mut() {
            h.saturating_record(us);
        }
    }

    fn merge(&mut self, other: &Latency) {
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
        self.count += other.count;
        match (&mut self.hist, &other.hist) {
            (Some(mine), Some(theirs)) => {
                // NOTE: both sides were built by `new_histogram` with the same
                // bounds, so adding cannot fail; an error would only lose
                // quantile precision, never counts (`count` is kept apart).
                let _ = mine.add(theirs);
            }
            (None, Some(theirs)) => self.hist = Some(theirs.clone()),
            _ => {}
        }
    }

    /// The value at `q` in seconds, `None` when nothing was recorded.
    #[cfg(test)]
    pub(crate) fn quantile_seconds(&self, q: f64) -> Option<f64> {
        let h = self.hist.as_ref().filter(|h| !h.is_empty())?;
        Some(h.value_at_quantile(q) as f64 / 1e6)
    }

    /// How many samples were at most each of `bounds` (seconds, ascending).
    pub(crate) fn cumulative(&self, bounds: &[f64]) -> Vec<u64> {
        let Some(h) = self.hist.as_ref() else {
            return vec![0; bounds.len()];
        };
        bounds
            .iter()
            .map(|b| h.count_between(0, (b * 1e6).round() as u64))
            .collect()
    }

    pub(crate) fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }
}

/// The process's resident memory in bytes (`VmRSS` of `/proc/self/status`;
/// 0 where there is none). Read at scrape time.
pub fn resident_memory_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn new_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, micros(HISTOGRAM_MAX), HISTOGRAM_SIGFIG).ok()
}

/// Counts per label value, at most [`MAX_LABEL_VALUES`] values; the rest go
/// to [`OTHER_LABEL`].
#[derive(Debug, Clone, Default)]
pub(crate) struct BoundedCounts {
    values: HashMap<String, u64>,
}

impl BoundedCounts {
    fn add(&mut self, label: &str, n: u64) {
        if let Some(c) = self.values.get_mut(label) {
            *c += n;
        } else if self.values.len() < MAX_LABEL_VALUES {
            self.values.insert(label.to_owned(), n);
        } else {
            *self.values.entry(OTHER_LABEL.to_owned()).or_default() += n;
        }
    }

    /// The values, sorted by label.
    pub(crate) fn sorted(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<_> = self.values.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        v.sort_unstable();
        v
    }
}

/// A plain-data copy of one shard's metrics (or of several shards' merged):
/// `Send`, so it can travel over the mesh to the shard that serves the
/// scrape. Made by [`LocalMetrics::snapshot`], added up with
/// [`MetricsSnapshot::merge`], printed by [`render`].
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    pub(crate) accepted: [u64; CHANNELS],
    pub(crate) rejected: [[u64; CODE_SLOTS]; CHANNELS],
    pub(crate) finals: [[[u64; CODE_SLOTS]; FINAL_STATUSES.len()]; CHANNELS],
    pub(crate) wal_appends: u64,
    pub(crate) wal_bytes: u64,
    pub(crate) wal_fsync: Latency,
    pub(crate) http_seconds: [Latency; ROUTES],
    /// `ROUTES × STATUS_SLOTS` counters, row per route (on the heap: 32 KiB).
    pub(crate) http_requests: Vec<u64>,
    pub(crate) delivery: [Latency; CHANNELS],
    pub(crate) webhook_success: u64,
    /// Failed attempts by [`WebhookFailure`].
    pub(crate) webhook_failure: [u64; WebhookFailure::ALL.len()],
    pub(crate) smpp_protocol_errors: BoundedCounts,
    /// Held messages taken out of the held queue to be routed again.
    pub(crate) held_retries: u64,
}

/// Why a webhook attempt failed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFailure {
    /// The endpoint answered, not with a 2xx.
    Status,
    /// No answer within `reports.webhook-timeout`.
    Timeout,
    /// The connection could not be made (refused, unreachable).
    Connect,
    /// The connection broke while sending or reading.
    Io,
    /// The client has no usable `report_uri` (any more).
    NoEndpoint,
}

impl WebhookFailure {
    /// Every reason, in label order.
    pub const ALL: [WebhookFailure; 5] = [
        WebhookFailure::Connect,
        WebhookFailure::Io,
        WebhookFailure::NoEndpoint,
        WebhookFailure::Status,
        WebhookFailure::Timeout,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFailure::Status => "status",
            WebhookFailure::Timeout => "timeout",
            WebhookFailure::Connect => "connect",
            WebhookFailure::Io => "io",
            WebhookFailure::NoEndpoint => "no_endpoint",
        }
    }

    fn slot(self) -> usize {
        WebhookFailure::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(0)
    }
}

impl Default for MetricsSnapshot {
    fn default() -> Self {
        MetricsSnapshot {
            accepted: [0; CHANNELS],
            rejected: [[0; CODE_SLOTS]; CHANNELS],
            finals: [[[0; CODE_SLOTS]; FINAL_STATUSES.len()]; CHANNELS],
            wal_appends: 0,
            wal_bytes: 0,
            wal_fsync: Latency::default(),
            http_seconds: Default::default(),
            http_requests: vec![0; ROUTES * STATUS_SLOTS],
            delivery: Default::default(),
            webhook_success: 0,
            webhook_failure: [0; WebhookFailure::ALL.len()],
            smpp_protocol_errors: BoundedCounts::default(),
            held_retries: 0,
        }
    }
}

fn add_all<const N: usize>(mine: &mut [u64; N], theirs: &[u64; N]) {
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += t;
    }
}

impl MetricsSnapshot {
    /// Adds `other` (another shard's snapshot) into this one: counters add,
    /// histograms add bucket by bucket, bounded label sets stay bounded.
    pub fn merge(&mut self, other: MetricsSnapshot) {
        add_all(&mut self.accepted, &other.accepted);
        for (m, t) in self.rejected.iter_mut().zip(&other.rejected) {
            add_all(m, t);
        }
        for (m, t) in self
            .finals
            .iter_mut()
            .flatten()
            .zip(other.finals.iter().flatten())
        {
            add_all(m, t);
        }
        self.wal_appends += other.wal_appends;
        self.held_retries += other.held_retries;
        self.wal_bytes += other.wal_bytes;
        self.wal_fsync.merge(&other.wal_fsync);
        for (m, t) in self.http_seconds.iter_mut().zip(&other.http_seconds) {
            m.merge(t);
        }
        for (m, t) in self.http_requests.iter_mut().zip(&other.http_requests) {
            *m += t;
        }
        for (m, t) in self.delivery.iter_mut().zip(&other.delivery) {
            m.merge(t);
        }
        self.webhook_success += other.webhook_success;
        add_all(&mut self.webhook_failure, &other.webhook_failure);
        for (label, n) in other.smpp_protocol_errors.values {
            self.smpp_protocol_errors.add(&label, n);
        }
    }
}

/// One shard's metrics. Lives on its shard only (`!Send`), next to the WAL
/// and the messages in `Shard`; every method is a few array increments or
/// one histogram record, with no allocation except the first time a latency
/// family or a sender label is seen.
#[derive(Debug, Default)]
pub struct LocalMetrics {
    data: RefCell<MetricsSnapshot>,
    _local: PhantomData<Rc<()>>,
}

impl LocalMetrics {
    /// Empty metrics.
    pub fn new() -> LocalMetrics {
        LocalMetrics::default()
    }

    /// A message was accepted on `channel` (once per message, after the WAL
    /// made it durable).
    pub fn accepted(&self, channel: Channel) {
        self.data.borrow_mut().accepted[channel as usize] += 1;
    }

    /// A message on `channel` was rejected at accept with `code`.
    pub fn rejected(&self, channel: Channel, code: ResultCode) {
        self.data.borrow_mut().rejected[channel as usize][code_slot(code.as_u16())] += 1;
    }

    /// A message on `channel` reached the final `status` with `code` (the
    /// unified code; a number outside the table counts as `code="other"`).
    /// Non-final statuses are ignored.
    pub fn final_state(&self, channel: Channel, status: Status, code: u16) {
        let Some(s) = FINAL_STATUSES.iter().position(|f| *f == status) else {
            return;
        };
        self.data.borrow_mut().finals[channel as usize][s][code_slot(code)] += 1;
    }

    /// One WAL append of `bytes` bytes (a group-commit batch counts once).
    pub fn wal_append(&self, bytes: u64) {
        let mut d = self.data.borrow_mut();
        d.wal_appends += 1;
        d.wal_bytes += bytes;
    }

    /// `n` held messages were taken out to be routed again.
    pub fn held_retried(&self, n: u64) {
        if n > 0 {
            self.data.borrow_mut().held_retries += n;
        }
    }

    /// One WAL fsync (fdatasync) took `took`.
    pub fn wal_fsync(&self, took: Duration) {
        self.data.borrow_mut().wal_fsync.record(took);
    }

    /// One HTTP request on `route` was answered `status` after `took`.
    pub fn http_request(&self, route: HttpRoute, status: u16, took: Duration) {
        let mut d = self.data.borrow_mut();
        let r = route as usize;
        d.http_seconds[r].record(took);
        d.http_requests[r * STATUS_SLOTS + status_slot(status)] += 1;
    }

    /// A message on `channel` took `took` from accept to its final state.
    pub fn delivery(&self, channel: Channel, took: Duration) {
        self.data.borrow_mut().delivery[channel as usize].record(took);
    }

    /// One webhook attempt ended: `Ok` is a 2xx answer in time.
    pub fn webhook(&self, outcome: Result<(), WebhookFailure>) {
        let mut d = self.data.borrow_mut();
        match outcome {
            Ok(()) => d.webhook_success += 1,
            Err(why) => d.webhook_failure[why.slot()] += 1,
        }
    }

    /// A session of `sender` received a malformed or unexpected SMPP PDU.
    pub fn smpp_protocol_error(&self, sender: &str) {
        self.data.borrow_mut().smpp_protocol_errors.add(sender, 1);
    }

    /// A `Send` copy of everything recorded so far (counters are totals
    /// since start; nothing is reset).
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.data.borrow().clone()
    }
}

/// The HTTP statuses with a count on `route`, as `(label, count)`.
pub(crate) fn http_status_counts(s: &MetricsSnapshot, route: HttpRoute) -> Vec<(String, u64)> {
    let row = &s.http_requests[route as usize * STATUS_SLOTS..][..STATUS_SLOTS];
    row.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| {
            let label = if i == STATUS_SLOTS - 1 {
                OTHER_LABEL.to_owned()
            } else {
                (i as u16 + FIRST_STATUS).to_string()
            };
            (label, *n)
        })
        .collect()
}

/// The final statuses in slot order, for rendering.
pub(crate) fn final_statuses() -> &'static [Status; 4] {
    &FINAL_STATUSES
}

/// The label value of code slot `i`.
pub(crate) fn code_label(i: usize) -> String {
    ResultCode::ALL
        .get(i)
        .map_or_else(|| OTHER_LABEL.to_owned(), |c| c.as_u16().to_string())
}
