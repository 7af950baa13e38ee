//! Dedup-claim benchmark: one claim is what a shard does per accepted
//! message for the keys it owns — look the key up among the exact keys of
//! the last 10 s and among the fingerprints of the whole window, then take
//! it. The table is first filled with `--keys` keys claimed over the
//! window (one shard's share of a day at a steady rate; `--span` seconds
//! for a server started that long ago), then new keys are claimed. Printed beside a baseline measured
//! in the same run: inserting the same keys into a `HashMap<u128, u64>`.
//!
//! Usage: `dedup_claim [--seconds S] [--keys N] [--span SECS]` (defaults: 3 s,
//! 4,000,000, the window less a minute).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mcmp_engine::core::dedup::{ClaimOutcome, DedupKey, DedupTable};
use mcmp_engine::model::MessageId;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A day, as the default window.
const WINDOW_SECS: u32 = 86_400;
/// Claims between two clock reads.
const ROUND: usize = 1_000;

fn main() -> Result<()> {
    let (seconds, keys, span) = args()?;
    let key = |n: u64| DedupKey::new("G1", &format!("src-{n}"));
    let start_secs = 1_000_000;
    let mut table = DedupTable::new(WINDOW_SECS);
    let per_sec = (keys / u64::from(span)).max(1);
    for n in 0..keys {
        let at = start_secs + (n / per_sec) as u32;
        table.claim(key(n), MessageId::new(0, n), at);
    }
    let fresh: Vec<DedupKey> = (keys..keys + 1_000_000).map(key).collect();
    let now = start_secs + (keys / per_sec) as u32;
    let (claims, checks, elapsed) = run(seconds, |i| {
        let k = fresh[i % fresh.len()];
        matches!(
            table.claim(k, MessageId::new(0, keys + i as u64), now),
            ClaimOutcome::Check(_)
        )
    });
    let mut base: HashMap<u128, u64> = (0..keys).map(|n| (key(n).0, n)).collect();
    let (inserts, _, base_elapsed) = run(seconds, |i| {
        let k = fresh[i % fresh.len()];
        base.insert(k.0, i as u64).is_some()
    });
    let rate = claims as f64 / elapsed.as_secs_f64();
    let base_rate = inserts as f64 / base_elapsed.as_secs_f64();
    println!("# dedup_claim, {keys} keys claimed over {span} s of a {WINDOW_SECS} s window");
    println!(
        "claims/s {rate:.0} ({:.0} ns each; {checks} named candidates)",
        1e9 / rate
    );
    println!(
        "baseline HashMap<u128, u64> insert/s {base_rate:.0} ({:.0} ns each); ratio {:.2}",
        1e9 / base_rate,
        rate / base_rate
    );
    Ok(())
}

/// Calls `step(i)` for `seconds`; the calls, how many said yes, the time.
fn run(seconds: f64, mut step: impl FnMut(usize) -> bool) -> (usize, usize, Duration) {
    let t0 = Instant::now();
    let (mut n, mut yes) = (0, 0);
    while t0.elapsed().as_secs_f64() < seconds {
        for _ in 0..ROUND {
            yes += usize::from(step(n));
            n += 1;
        }
    }
    (n, yes, t0.elapsed())
}

fn args() -> Result<(f64, u64, u32)> {
    let (mut seconds, mut keys, mut span) = (3.0, 4_000_000, WINDOW_SECS - 60);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--seconds" => seconds = v.parse().context("--seconds")?,
            "--keys" => keys = v.parse().context("--keys")?,
            "--span" => span = v.parse().context("--span")?,
            _ => bail!("unknown argument {a}"),
        }
    }
    if span == 0 || span >= WINDOW_SECS {
        bail!("--span must be between 1 and {} s", WINDOW_SECS - 1);
    }
    Ok((seconds, keys, span))
}
