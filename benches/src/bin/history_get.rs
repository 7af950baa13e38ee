//! History-store benchmark (issue "Runs for months"): `GET /v1/messages/{id}`
//! of a message that left memory is one read of the history store. This
//! fills a store with N settled SMS (default 10,000,000) spread over a week
//! of daily partitions, persists it, then reads random ids and prints the
//! read latency (p50 / p99 / p99.9), the bytes on disk per message, and, as
//! the baseline measured in the same run, the same reads of the same
//! messages from a `HashMap` in memory.
//!
//! Usage: `history_get [--messages N] [--reads R] [--dir DIR]` (defaults:
//! 10,000,000, 200,000, a temporary directory).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use mcmp_engine::core::lifecycle::report::ReportState;
use mcmp_engine::core::lifecycle::store::{Event, MessageView, SettledMessage};
use mcmp_engine::history::store::Store;
use mcmp_engine::model::{Channel, Class, MessageId, Status};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 7;

fn parse_args() -> Result<(u64, usize, Option<PathBuf>)> {
    let (mut messages, mut reads, mut dir) = (10_000_000, 200_000, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--messages" => messages = value.parse()?,
            "--reads" => reads = value.parse()?,
            "--dir" => dir = Some(PathBuf::from(value)),
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok((messages, reads, dir))
}

/// Message `i` of `n`, accepted in order over the week before `now`.
fn message(i: u64, n: u64, now: i64) -> SettledMessage {
    let created = now - DAYS * DAY_MS + (i as i64) * (DAYS * DAY_MS / n.max(1) as i64);
    let event = |at_ms, status, code| Event {
        at_ms,
        status,
        code,
        late_receipt: false,
    };
    SettledMessage {
        view: MessageView {
            id: MessageId::new((i % 2) as usize, i / 2 + 1),
            group_code: format!("G{:04}", i % 1_000),
            client_id: format!("c_{:016}", i % 1_000),
            src_msg_id: format!("order-{i:012}"),
            channel: Channel::Sms,
            class: Class::Realtime,
            parts: 1,
            to: format!("010{:08}", i % 100_000_000),
            status: Status::Delivered,
            code: 2000,
            carrier: Some("SKT".into()),
            sender: Some("G_S_SKT01".into()),
            created_at_ms: created,
            updated_at_ms: created + 900,
            fallback_message_id: None,
            fallback_of: None,
            events: vec![
                event(created, Status::Accepted, 1000),
                event(created + 2, Status::Queued, 1000),
                event(created + 40, Status::Submitted, 1000),
                event(created + 900, Status::Delivered, 2000),
            ],
            origin_code: None,
        },
        price: 10,
        report: ReportState {
            done: true,
            ..ReportState::default()
        },
    }
}

fn percentiles(h: &Histogram<u64>) -> String {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    format!(
        "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        us(0.5),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1_000.0
    )
}

fn main() -> Result<()> {
    let (n, reads, dir) = parse_args()?;
    let temp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| temp.path().to_path_buf());
    let now = mcmp_engine::unix_ms();
    let store = Store::open(&dir, (DAYS + 1) * DAY_MS)?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        batch.push(message(i, n, now));
        if batch.len() == batch.capacity() || i + 1 == n {
            store.put(&batch, now)?;
            batch.clear();
        }
    }
    store.persist()?;
    let fill = started.elapsed();
    // Let the background flushes settle before measuring disk use.
    std::thread::sleep(Duration::from_secs(5));
    let bytes = store.disk_bytes();
    println!(
        "filled {n} messages in {:.1} s ({:.0}/s); {:.1} MiB on disk, {:.0} bytes per message",
        fill.as_secs_f64(),
        n as f64 / fill.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / n as f64
    );
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let picks: Vec<u64> = (0..reads).map(|_| next()).collect();
    let mut disk = Histogram::<u64>::new(3)?;
    for &i in &picks {
        let id = message(i, n, now).view.id;
        let t = Instant::now();
        let found = store.get(id, now)?;
        disk.record(t.elapsed().as_nanos() as u64)?;
        anyhow::ensure!(
            found.is_some_and(|m| m.view.id == id),
            "message {id} not found"
        );
    }
    let memory: HashMap<MessageId, SettledMessage> = picks
        .iter()
        .map(|&i| message(i, n, now))
        .map(|m| (m.view.id, m))
        .collect();
    let mut base = Histogram::<u64>::new(3)?;
    for &i in &picks {
        let id = message(i, n, now).view.id;
        let t = Instant::now();
        let found = memory.get(&id).cloned();
        base.record(t.elapsed().as_nanos() as u64)?;
        anyhow::ensure!(found.is_some(), "baseline lost {id}");
    }
    println!(
        "history store get, {reads} random ids: {}",
        percentiles(&disk)
    );
    println!(
        "baseline: the same reads from a HashMap: {}",
        percentiles(&base)
    );
    Ok(())
}
