//! The HTTP provider simulator: what a KakaoTalk / RCS / MMS / push
//! provider looks like to the engine's `http` senders.
//!
//! `POST /send` (any path other than `/stats`) takes one message and answers
//! `{"provider_msg_id":"p-<n>","status":"accepted"}`; after
//! `--report-delay-ms` the final results are POSTed to the message's
//! `report_url` as `{"results":[…]}`, batching the results due together for
//! the same URL. With `--sync` the answer itself is final and nothing is
//! posted later. `POST /files` registers a media file ([`files`], SPEC
//! §5.10). `GET /stats` counts by channel and outcome, the requests by
//! their `origin_code` (a reseller's, SPEC §5.11) and by the provider file
//! id they name, the MMS images received, and the file uploads.

mod files;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::http::{self, Request, Response};
use crate::shutdown::Shutdown;

/// Results waiting to be reported. When full, `POST /send` waits for room:
/// the provider slows down instead of growing without bound.
const REPORT_QUEUE: usize = 100_000;
/// The most results in one report POST.
const MAX_BATCH: usize = 1000;
/// Attempts to POST one batch before giving up (counted in `reports_lost`).
const REPORT_ATTEMPTS: u32 = 5;
/// Message ids remembered for duplicate detection (past it, not counted).
const MAX_SEEN_IDS: usize = 10_000_000;
/// Distinct origin codes counted in `by_origin_code` (past it, not counted).
const MAX_ORIGIN_CODES: usize = 10_000;

/// Flags of `mcmp-loadtest provider`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProviderArgs {
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Probability that a message's final result is a failure.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Channels whose messages always fail (comma-separated, e.g. RCS,KKO).
    #[arg(long, value_delimiter = ',')]
    pub fail_channels: Vec<String>,
    /// Delay between the answer and the report POST.
    #[arg(long, default_value_t = 10)]
    pub report_delay_ms: u64,
    /// Make the synchronous answer final (no report is POSTed).
    #[arg(long)]
    pub sync: bool,
    /// Delay before a file upload (`POST /files`) is answered.
    #[arg(long, default_value_t = 10)]
    pub file_delay_ms: u64,
    /// Probability that a file upload is refused (`R415`).
    #[arg(long, default_value_t = 0.0)]
    pub file_fail_rate: f64,
    /// How long a registered file stays usable at the provider.
    #[arg(long, default_value_t = 259_200)]
    pub file_expiry_secs: u64,
    /// Serve HTTPS (`--tls`, `--tls-dir`, `--tls-client-auth` for mutual
    /// TLS). The reports it posts back still go to the `report_url` given.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

/// Counts for one channel.
#[derive(Debug, Default, Clone, Serialize)]
struct ChannelStats {
    sent: u64,
    delivered: u64,
    failed: u64,
}

#[derive(Debug, Default, Serialize)]
struct Stats {
    requests: u64,
    bad_requests: u64,
    duplicates: u64,
    report_posts: u64,
    report_post_failures: u64,
    reports_delivered: u64,
    reports_lost: u64,
    by_channel: BTreeMap<String, ChannelStats>,
    /// Requests by the `origin_code` they carried.
    by_origin_code: BTreeMap<String, u64>,
    /// Message requests by the provider file id they named (RCS).
    by_file_id: BTreeMap<String, u64>,
    /// MMS images received in message requests, and their decoded bytes.
    images_received: u64,
    image_bytes: u64,
    /// File uploads, and how they were answered.
    files_uploaded: u64,
    files_registered: u64,
    files_refused: u64,
}

/// A final result due at some instant for some report URL.
#[derive(Debug)]
struct Due {
    at: Instant,
    url: String,
    result: Value,
}

struct Provider {
    args: ProviderArgs,
    next_id: AtomicU64,
    next_file: AtomicU64,
    stats: Mutex<Stats>,
    seen: Mutex<HashSet<String>>,
    due: mpsc::Sender<Due>,
}

impl Provider {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The provider's code for an outcome on `channel`: `<letter>000` is
/// success, the failure codes are typical of each provider family.
fn result_code(channel: &str, delivered: bool) -> &'static str {
    match (channel, delivered) {
        ("KKO", true) => "K000",
        ("KKO", false) => "K105",
        ("RCS", true) => "R000",
        ("RCS", false) => "R503",
        ("MMS", true) => "M000",
        ("MMS", false) => "M400",
        ("PUSH", true) => "P000",
        ("PUSH", false) => "P404",
        (_, true) => "0000",
        (_, false) => "9999",
    }
}

/// Runs the provider until `shutdown`.
pub async fn run(args: ProviderArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let (listener, addr) = http::bind(args.listen).await?;
    let tls = crate::tls::acceptor(&args.tls, addr.ip(), &[crate::tls::ALPN_HTTP1])?;
    let (tx, rx) = mpsc::channel(REPORT_QUEUE);
    let provider = Arc::new(Provider {
        args,
        next_id: AtomicU64::new(1),
        next_file: AtomicU64::new(1),
        stats: Mutex::new(Stats::default()),
        seen: Mutex::new(HashSet::new()),
        due: tx,
    });
    tokio::spawn(report_loop(provider.clone(), rx));
    crate::ready("provider", addr);
    http::serve_tls(listener, tls, shutdown, move |req| {
        let provider = provider.clone();
        async move { handle(&provider, req).await }
    })
    .await;
    Ok(())
}

async fn handle(p: &Provider, req: Request) -> Response {
    match (&req.method, req.path.as_str()) {
        (&Method::GET, "/stats") => http::json(StatusCode::OK, &json!(*p.stats())),
        (&Method::POST, "/files") => files::upload(p, &req.body).await,
        (&Method::POST, _) => send(p, &req.body).await,
        _ => http::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST /send, POST /files or GET /stats",
        ),
    }
}

async fn send(p: &Provider, body: &[u8]) -> Response {
    let parsed: Option<(String, String, Option<String>)> =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            if let Some(code) = v.get("origin_code").and_then(Value::as_str) {
                count_origin_code(p, code);
            }
            files::count_media(p, &v);
            let id = v.get("message_id")?.as_str()?.to_owned();
            let channel = v.get("channel")?.as_str()?.to_owned();
            let url = v
                .get("report_url")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some((id, channel, url))
        });
    let Some((message_id, channel, report_url)) = parsed else {
        p.stats().bad_requests += 1;
        return http::error(StatusCode::BAD_REQUEST, "need message_id and channel");
    };
    if !p.args.sync && report_url.is_none() {
        p.stats().bad_requests += 1;
        return http::error(
            StatusCode::BAD_REQUEST,
            "need report_url (or run with --sync)",
        );
    }
    let provider_msg_id = format!("p-{}", p.next_id.fetch_add(1, Ordering::Relaxed));
    let delivered = !p
        .args
        .fail_channels
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&channel))
        && fastrand::f64() >= p.args.fail_rate;
    record(p, &message_id, &channel, delivered);
    let outcome = if delivered { "delivered" } else { "failed" };
    let code = result_code(&channel, delivered);
    if p.args.sync {
        let answer = json!({"provider_msg_id": provider_msg_id, "status": outcome, "code": code});
        return http::json(StatusCode::OK, &answer);
    }
    let due = Due {
        at: Instant::now() + Duration::from_millis(p.args.report_delay_ms),
        url: report_url.unwrap_or_default(),
        result: json!({"provider_msg_id": provider_msg_id, "status": outcome, "code": code}),
    };
    if p.due.send(due).await.is_err() {
        return http::error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    http::json(
        StatusCode::OK,
        &json!({"provider_msg_id": provider_msg_id, "status": "accepted"}),
    )
}

fn count_origin_code(p: &Provider, code: &str) {
    let mut stats = p.stats();
    let known = stats.by_origin_code.contains_key(code);
    if known || stats.by_origin_code.len() < MAX_ORIGIN_CODES {
        *stats.by_origin_code.entry(code.to_owned()).or_default() += 1;
    }
}

fn record(p: &Provider, message_id: &str, channel: &str, delivered: bool) {
    let duplicate = {
        let mut seen = p.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(message_id) {
            true
        } else {
            if seen.len() < MAX_SEEN_IDS {
                seen.insert(message_id.to_owned());
            }
            false
        }
    };
    let mut stats = p.stats();
    stats.requests += 1;
    stats.duplicates += u64::from(duplicate);
    let c = stats.by_channel.entry(channel.to_owned()).or_default();
    c.sent += 1;
    if delivered {
        c.delivered += 1;
    } else {
        c.failed += 1;
    }
}

/// Waits for each result's due time and posts every result that is due by
/// then, grouped by report URL. The delay is the same for every message, so
/// results arrive in due order and one timer at a time suffices.
async fn report_loop(p: Arc<Provider>, mut rx: mpsc::Receiver<Due>) {
    let mut next: Option<Due> = None;
    loop {
        let first = match next.take() {
            Some(d) => d,
            None => match rx.recv().await {
                Some(d) => d,
                None => return,
            },
        };
        tokio::time::sleep_until(first.at).await;
        let now = Instant::now();
        let mut by_url: HashMap<String, Vec<Value>> = HashMap::new();
        by_url.entry(first.url).or_default().push(first.result);
        while let Ok(d) = rx.try_recv() {
            if d.at > now {
                next = Some(d);
                break;
            }
            by_url.entry(d.url).or_default().push(d.result);
        }
        for (url, results) in by_url {
            for chunk in results.chunks(MAX_BATCH) {
                tokio::spawn(post_results(p.clone(), url.clone(), chunk.to_vec()));
            }
        }
    }
}

async fn post_results(p: Arc<Provider>, url: String, results: Vec<Value>) {
    let body = Bytes::from(json!({ "results": results }).to_string());
    for attempt in 0..REPORT_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        p.stats().report_posts += 1;
        match http::post_json(&url, body.clone()).await {
            Ok((status, _)) if status.is_success() => {
                p.stats().reports_delivered += results.len() as u64;
                return;
            }
            _ => p.stats().report_post_failures += 1,
        }
    }
    p.stats().reports_lost += results.len() as u64;
}
