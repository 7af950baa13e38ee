//! The Prometheus text exposition format 0.0.4 for a merged
//! [`MetricsSnapshot`] plus the values read live at scrape time ([`Gauges`]).
//!
//! Families come out sorted by name, each with one `# HELP` and one
//! `# TYPE` line; label values are escaped (`\\`, `\"`, `\n`); latency
//! families are histograms (buckets per family, counted from the HDR
//! histograms), which Prometheus aggregates across shards and nodes.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

use super::{
    code_label, final_statuses, http_status_counts, HttpRoute, Latency, MetricsSnapshot,
    MAX_LABEL_VALUES, OTHER_LABEL,
};
use crate::model::Channel;

/// Live per-sender values, summed over the shards that host its sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderGauges {
    /// Messages waiting in the sender's session queues.
    pub queue_depth: u64,
    /// Messages submitted and not yet answered (`submit_sm` without resp).
    pub in_flight: u64,
    /// Sessions (binds) currently connected.
    pub connected: u64,
}

impl SenderGauges {
    fn add(&mut self, other: SenderGauges) {
        self.queue_depth += other.queue_depth;
        self.in_flight += other.in_flight;
        self.connected += other.connected;
    }
}

/// The values read from live state when `/metrics` is scraped, not stored
/// by [`super::LocalMetrics`]. Plain data (`Send`): each shard fills one
/// with what it hosts and the scraping shard adds them with
/// [`Gauges::merge`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Per sender (name from the catalog), at most
    /// [`MAX_LABEL_VALUES`](super::MAX_LABEL_VALUES) names; fill it with
    /// [`Gauges::add_sender`].
    pub senders: BTreeMap<String, SenderGauges>,
    /// Messages in held queues (no available sender yet).
    pub held_messages: u64,
    /// Webhook reports waiting for a retry.
    pub webhook_pending_retries: u64,
    /// Reports held back by a full endpoint queue (no attempt spent).
    pub webhook_held_back: u64,
    /// WAL records appended and not yet acknowledged durable.
    pub wal_unsynced_records: u64,
    /// Bytes the WALs take on disk.
    pub wal_disk_bytes: u64,
    /// Messages in memory that are not final yet.
    pub live_messages: u64,
    /// Messages in memory (not final, or their report pending).
    pub memory_messages: u64,
    /// Of those, the ones kept encoded (unchanged for a few seconds).
    pub cold_messages: u64,
    /// Bytes the encoded ones' chunks take.
    pub cold_bytes: u64,
    /// Bytes the history store takes on disk (one value for the engine).
    pub history_disk_bytes: u64,
    /// Seconds since the oldest shard's last checkpoint (0 before the first).
    pub checkpoint_age_seconds: u64,
    /// Shards (cores) the engine runs; merge keeps the larger value.
    pub shards: u64,
    /// The process's resident memory (one value for the process).
    pub resident_memory_bytes: u64,
}

impl Gauges {
    /// Adds `values` to `sender`'s gauges (beyond the label cap, to the
    /// `other` series).
    pub fn add_sender(&mut self, sender: &str, values: SenderGauges) {
        if let Some(g) = self.senders.get_mut(sender) {
            g.add(values);
        } else if self.senders.len() < MAX_LABEL_VALUES {
            self.senders.insert(sender.to_owned(), values);
        } else {
            self.senders
                .entry(OTHER_LABEL.to_owned())
                .or_default()
                .add(values);
        }
    }

    /// Adds another shard's gauges into these.
    pub fn merge(&mut self, other: Gauges) {
        for (sender, values) in other.senders {
            self.add_sender(&sender, values);
        }
        self.held_messages += other.held_messages;
        self.webhook_pending_retries += other.webhook_pending_retries;
        self.webhook_held_back += other.webhook_held_back;
        self.wal_unsynced_records += other.wal_unsynced_records;
        self.wal_disk_bytes += other.wal_disk_bytes;
        self.live_messages += other.live_messages;
        self.memory_messages += other.memory_messages;
        self.cold_messages += other.cold_messages;
        self.cold_bytes += other.cold_bytes;
        self.history_disk_bytes = self.history_disk_bytes.max(other.history_disk_bytes);
        self.checkpoint_age_seconds = self
            .checkpoint_age_seconds
            .max(other.checkpoint_age_seconds);
        self.shards = self.shards.max(other.shards);
        self.resident_memory_bytes = self.resident_memory_bytes.max(other.resident_memory_bytes);
    }
}

fn render_held(w: &mut Writer, m: &MetricsSnapshot, gauges: &Gauges) {
    w.family(
        "mcmp_held_messages",
        "gauge",
        "Messages waiting for an available sender.",
    );
    w.sample("mcmp_held_messages", &[], gauges.held_messages);
    let name = "mcmp_held_retries_total";
    w.family(
        name,
        "counter",
        "Held messages taken out to be routed again (each backs off while no sender takes it).",
    );
    w.sample(name, &[], m.held_retries);
}

fn render_cold(w: &mut Writer, gauges: &Gauges) {
    let name = "mcmp_cold_bytes";
    w.family(name, "gauge", "Bytes the encoded messages' chunks take.");
    w.sample(name, &[], gauges.cold_bytes);
    let name = "mcmp_cold_messages";
    w.family(
        name,
        "gauge",
        "Messages in memory kept encoded: unchanged for a few seconds (held, or waiting for a receipt).",
    );
    w.sample(name, &[], gauges.cold_messages);
}

fn render_checkpoint_age(w: &mut Writer, gauges: &Gauges) {
    let name = "mcmp_checkpoint_age_seconds";
    w.family(
        name,
        "gauge",
        "Seconds since the oldest shard's last checkpoint (0 before the first).",
    );
    w.sample(name, &[], gauges.checkpoint_age_seconds);
}

/// Appends `v` to `out` as a label value: backslash, double quote and
/// newline escaped as the exposition format requires.
fn push_escaped(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `mcmp_http_request_seconds` buckets: a request answers in a millisecond
/// or two unless it waits for an fsync or a full queue.
pub const HTTP_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `mcmp_wal_fsync_seconds` buckets: tens of microseconds on NVMe, up to a
/// second on a struggling disk.
pub const FSYNC_BUCKETS: [f64; 13] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// `mcmp_delivery_seconds` buckets: accept to final state, from a fast
/// carrier's receipt to a message held for an hour.
pub const DELIVERY_BUCKETS: [f64; 15] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

/// Writes the exposition text into one `String`.
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // NOTE: writing into a `String` cannot fail; the `fmt::Result` is
        // dropped here and in `sample` for that reason.
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                push_escaped(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's cumulative `_bucket` lines (`le` each of `bounds`,
    /// then `+Inf`), its `_sum` and its `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], s: &Latency, bounds: &[f64]) {
        let bucket = format!("{name}_bucket");
        let les: Vec<String> = bounds.iter().map(f64::to_string).collect();
        let counts = s.cumulative(bounds).into_iter().chain([s.count()]);
        for (le, n) in les.iter().map(String::as_str).chain(["+Inf"]).zip(counts) {
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", le));
            self.sample(&bucket, &with_le, n);
        }
        self.sample(&format!("{name}_sum"), labels, s.sum_seconds());
        self.sample(&format!("{name}_count"), labels, s.count());
    }
}

/// Renders the merged snapshot and the scrape-time gauges as Prometheus text
/// exposition format 0.0.4 (`Content-Type: text/plain; version=0.0.4`).
pub fn render(merged: &MetricsSnapshot, gauges: &Gauges) -> String {
    let mut w = Writer {
        out: String::with_capacity(16 << 10),
    };
    // Families in name order.
    w.family(
        "mcmp_build_info",
        "gauge",
        "Build of the running server; always 1.",
    );
    w.sample(
        "mcmp_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    render_checkpoint_age(&mut w, gauges);
    render_cold(&mut w, gauges);
    render_delivery(&mut w, merged);
    render_held(&mut w, merged, gauges);
    let name = "mcmp_history_disk_bytes";
    w.family(
        name,
        "gauge",
        "Bytes the history store of settled messages takes on disk.",
    );
    w.sample(name, &[], gauges.history_disk_bytes);
    render_http(&mut w, merged);
    let name = "mcmp_live_messages";
    w.family(
        name,
        "gauge",
        "Messages not final yet (in memory, watched for validity).",
    );
    w.sample(name, &[], gauges.live_messages);
    let name = "mcmp_memory_messages";
    w.family(
        name,
        "gauge",
        "Messages held in memory: not final, or their report not yet delivered.",
    );
    w.sample(name, &[], gauges.memory_messages);
    render_messages(&mut w, merged);
    render_senders(&mut w, gauges);
    w.family(
        "mcmp_shards",
        "gauge",
        "Shards (pinned cores) the engine runs.",
    );
    w.sample("mcmp_shards", &[], gauges.shards);
    w.family(
        "mcmp_smpp_protocol_errors_total",
        "counter",
        "Malformed or unexpected SMPP PDUs received, by sender.",
    );
    for (sender, n) in merged.smpp_protocol_errors.sorted() {
        w.sample("mcmp_smpp_protocol_errors_total", &[("sender", sender)], n);
    }
    render_wal(&mut w, merged, gauges);
    render_webhooks(&mut w, merged, gauges);
    let name = "process_resident_memory_bytes";
    w.family(name, "gauge", "Resident memory of the mcmp process.");
    w.sample(name, &[], gauges.resident_memory_bytes);
    w.out
}

fn render_delivery(w: &mut Writer, m: &MetricsSnapshot) {
    let name = "mcmp_delivery_seconds";
    w.family(
        name,
        "histogram",
        "Time from accept to final state, by channel.",
    );
    for ch in Channel::ALL {
        let s = &m.delivery[ch as usize];
        if s.count() > 0 {
            w.histogram(name, &[("channel", ch.as_str())], s, &DELIVERY_BUCKETS);
        }
    }
}

fn render_http(w: &mut Writer, m: &MetricsSnapshot) {
    let name = "mcmp_http_request_seconds";
    w.family(name, "histogram", "HTTP request latency, by route.");
    for route in HttpRoute::ALL {
        let s = &m.http_seconds[route as usize];
        if s.count() > 0 {
            w.histogram(name, &[("route", route.as_str())], s, &HTTP_BUCKETS);
        }
    }
    let name = "mcmp_http_requests_total";
    w.family(
        name,
        "counter",
        "HTTP requests answered, by route and status.",
    );
    for route in HttpRoute::ALL {
        for (status, n) in http_status_counts(m, route) {
            w.sample(name, &[("route", route.as_str()), ("status", &status)], n);
        }
    }
}

fn render_messages(w: &mut Writer, m: &MetricsSnapshot) {
    let name = "mcmp_messages_accepted_total";
    w.family(name, "counter", "Messages accepted (durable), by channel.");
    for ch in Channel::ALL {
        w.sample(name, &[("channel", ch.as_str())], m.accepted[ch as usize]);
    }
    let name = "mcmp_messages_final_total";
    w.family(
        name,
        "counter",
        "Accepted messages that reached a final state, by channel, status and result code.",
    );
    for ch in Channel::ALL {
        for (s, status) in final_statuses().iter().enumerate() {
            for (c, n) in m.finals[ch as usize][s].iter().enumerate() {
                if *n > 0 {
                    let code = code_label(c);
                    let labels = [
                        ("channel", ch.as_str()),
                        ("status", status.as_str()),
                        ("code", code.as_str()),
                    ];
                    w.sample(name, &labels, n);
                }
            }
        }
    }
    let name = "mcmp_messages_rejected_total";
    w.family(
        name,
        "counter",
        "Messages rejected at accept, by channel and result code.",
    );
    for ch in Channel::ALL {
        for (c, n) in m.rejected[ch as usize].iter().enumerate() {
            if *n > 0 {
                let code = code_label(c);
                w.sample(name, &[("channel", ch.as_str()), ("code", &code)], n);
            }
        }
    }
}

/// A per-sender gauge family: name, help, and which value it shows.
type SenderFamily = (&'static str, &'static str, fn(&SenderGauges) -> u64);

fn render_senders(w: &mut Writer, g: &Gauges) {
    let families: [SenderFamily; 3] = [
        (
            "mcmp_sender_connected",
            "Connected sessions (binds), by sender.",
            |s| s.connected,
        ),
        (
            "mcmp_sender_in_flight",
            "Messages submitted and not yet answered, by sender.",
            |s| s.in_flight,
        ),
        (
            "mcmp_sender_queue_depth",
            "Messages queued for the sender's sessions.",
            |s| s.queue_depth,
        ),
    ];
    for (name, help, value) in families {
        w.family(name, "gauge", help);
        for (sender, s) in &g.senders {
            w.sample(name, &[("sender", sender)], value(s));
        }
    }
}

fn render_wal(w: &mut Writer, m: &MetricsSnapshot, g: &Gauges) {
    w.family(
        "mcmp_wal_appends_total",
        "counter",
        "WAL appends (group-commit batches).",
    );
    w.sample("mcmp_wal_appends_total", &[], m.wal_appends);
    w.family(
        "mcmp_wal_bytes_total",
        "counter",
        "Bytes appended to the WAL.",
    );
    w.sample("mcmp_wal_bytes_total", &[], m.wal_bytes);
    let name = "mcmp_wal_disk_bytes";
    w.family(name, "gauge", "Bytes the WAL segments take on disk.");
    w.sample(name, &[], g.wal_disk_bytes);
    let name = "mcmp_wal_fsync_seconds";
    w.family(name, "histogram", "WAL fdatasync latency.");
    w.histogram(name, &[], &m.wal_fsync, &FSYNC_BUCKETS);
    let name = "mcmp_wal_unsynced_records";
    w.family(
        name,
        "gauge",
        "WAL records appended and not yet durable (a crash now would lose the state changes they carry).",
    );
    w.sample(name, &[], g.wal_unsynced_records);
}

fn render_webhooks(w: &mut Writer, m: &MetricsSnapshot, g: &Gauges) {
    let name = "mcmp_webhook_held_back_reports";
    w.family(
        name,
        "gauge",
        "Reports held back because their endpoint's queue is full (no attempt spent).",
    );
    w.sample(name, &[], g.webhook_held_back);
    let name = "mcmp_webhook_pending_retries";
    w.family(name, "gauge", "Webhook reports waiting for a retry.");
    w.sample(name, &[], g.webhook_pending_retries);
    let name = "mcmp_webhook_requests_total";
    w.family(
        name,
        "counter",
        "Webhook attempts, by result (and, for failures, why).",
    );
    for (reason, n) in super::WebhookFailure::ALL.iter().zip(m.webhook_failure) {
        w.sample(
            name,
            &[("result", "failure"), ("reason", reason.as_str())],
            n,
        );
    }
    w.sample(name, &[("result", "success")], m.webhook_success);
}
