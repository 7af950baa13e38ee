//! Live-state memory (issue "Runs for months": a queued message should cost
//! at most about 160 bytes with its indexes). Fills one shard's lifecycle
//! owner with N SMS as the load tester sends them (`src_msg_id`
//! `lt1a2b3c-<n>`, text `lt <src_msg_id>`), each accepted, queued and held
//! (no sender available: the carrier is down), and prints the heap bytes
//! per message, counted by the allocator (requested sizes: the allocator's
//! own rounding and the process's baseline come on top in RSS).
//!
//! Usage: `live_memory [--messages N]` (default 1,000,000).

// The counting allocator forwards to `System`: the only unsafe here.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use mcmp_engine::codec::{AcceptedRecord, StateRecord};
use mcmp_engine::core::lifecycle::store::LocalMessages;
use mcmp_engine::core::lifecycle::{Lifecycle, LifecycleConfig};
use mcmp_engine::core::Effects;
use mcmp_engine::model::{Channel, MessageId, MessageRequest, Status};

/// The system allocator, counting the bytes held.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size, Ordering::Relaxed);
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const T0: i64 = 1_800_000_000_000;

fn parse_args() -> Result<u64> {
    let mut messages = 1_000_000;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--messages" => messages = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(messages)
}

/// Message `seq` as the load tester sends it, accepted at `at_ms`.
fn accepted(seq: u64, at_ms: i64) -> AcceptedRecord {
    let src = format!("lt1a2b3c-{seq}");
    let text = format!("lt {src}");
    let request = MessageRequest {
        src_msg_id: src,
        channel: Channel::Sms,
        bill_code: "B1".into(),
        from: Some("0212345678".into()),
        to: "01012345678".into(),
        text,
        subject: None,
        ad: false,
        send_at: None,
        template_code: None,
        vars: vec![],
        attachments: vec![],
        fallback: vec![],
        email: None,
        push: None,
        parts: 1,
        validity: None,
        priority: None,
        origin_code: None,
    };
    AcceptedRecord {
        id: MessageId::new(0, seq),
        group_code: "Q1".into(),
        client_id: "c_0123456789abcdef".into(),
        created_at_ms: at_ms,
        status: Status::Accepted,
        price: 0,
        fallback_of: None,
        request,
    }
}

fn main() -> Result<()> {
    let n = parse_args()?;
    let config = LifecycleConfig {
        report_retries: 10,
        report_retry_unit_ms: 60_000,
    };
    let mut life = Lifecycle::new(LocalMessages::default(), config);
    let mut fx = Effects::default();
    let before = HELD.load(Ordering::Relaxed);
    let stage = |name: &str, from: usize| {
        let now = HELD.load(Ordering::Relaxed);
        println!(
            "  {name}: {:.0} bytes per message",
            (now - from) as f64 / n.max(1) as f64
        );
        now
    };
    let at = |seq: u64| T0 + (seq / 100) as i64;
    for seq in 1..=n {
        life.store.apply_accepted(accepted(seq, at(seq)));
    }
    let mark = stage("accepted (message store, expiry index)", before);
    for seq in 1..=n {
        life.store.apply_state(StateRecord {
            id: MessageId::new(0, seq),
            status: Status::Queued,
            code: 1000,
            at_ms: at(seq),
            sender: None,
            carrier: None,
            carrier_msg_id: None,
        });
    }
    let mark = stage("queued (its event)", mark);
    for seq in 1..=n {
        life.hold(at(seq), MessageId::new(0, seq), &mut fx);
        fx.drain();
    }
    stage("held (held queue)", mark);
    println!(
        "  sizes: message {} (boxed), event {}, request packed inline {}",
        std::mem::size_of::<mcmp_engine::core::lifecycle::store::StoredMessage>(),
        std::mem::size_of::<mcmp_engine::core::lifecycle::store::Event>(),
        std::mem::size_of::<mcmp_engine::core::lifecycle::store::PackedRequest>(),
    );
    let bytes = HELD.load(Ordering::Relaxed) - before;
    println!(
        "{n} messages queued and held: {:.1} MiB of heap, {:.0} bytes per message (held: {})",
        bytes as f64 / 1_048_576.0,
        bytes as f64 / n.max(1) as f64,
        life.held.len(),
    );
    Ok(())
}
