//! WAL group-commit benchmark: records/s, MB/s, commits/s and commit latency
//! of `mcmp_storage::Wal` with `Durability::Fsync`, beside a baseline of raw
//! `pwrite 4 KiB + fdatasync` on a pre-zeroed file measured in the same run.
//!
//! Usage: `wal_append [--record-size N] [--batches 1,16,128] [--seconds S] [--dir D]`
//! (defaults: 256 bytes, 1,16,128, 3 s, a temporary directory under the
//! current directory, because /tmp may be tmpfs where fsync costs nothing).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use mcmp_storage::fs::StdFileSystem;
use mcmp_storage::{Durability, Wal, WalOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Size of the pre-zeroed baseline file (the write offset wraps inside it).
const BASELINE_FILE: u64 = 64 << 20;
/// Block written per baseline commit.
const BASELINE_BLOCK: usize = 4096;

struct Args {
    record_size: usize,
    batches: Vec<usize>,
    seconds: f64,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        record_size: 256,
        batches: vec![1, 16, 128],
        seconds: 3.0,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--record-size" => args.record_size = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--dir" => args.dir = Some(PathBuf::from(value)),
            "--batches" => {
                args.batches = value.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(args)
}

/// Commit latencies in microseconds.
fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1, 60_000_000) as u64
}

fn latency(h: &Histogram<u64>) -> String {
    format!(
        "p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        h.value_at_quantile(0.50) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.max() as f64 / 1e3
    )
}

fn baseline(dir: &Path, seconds: f64) -> Result<()> {
    let path = dir.join("baseline.dat");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let zeros = vec![0u8; 1 << 20];
    for i in 0..BASELINE_FILE / zeros.len() as u64 {
        file.write_all_at(&zeros, i * zeros.len() as u64)?;
    }
    file.sync_all()?;
    let block = vec![0xA5u8; BASELINE_BLOCK];
    let mut hist = histogram()?;
    let (start, mut offset, mut commits) = (Instant::now(), 0u64, 0u64);
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        file.write_all_at(&block, offset)?;
        file.sync_data()?;
        hist.record(micros(t.elapsed()))?;
        commits += 1;
        offset = (offset + BASELINE_BLOCK as u64) % BASELINE_FILE;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "baseline pwrite {BASELINE_BLOCK} B + fdatasync (pre-zeroed file): commits/s {:.0}  {}",
        commits as f64 / secs,
        latency(&hist)
    );
    std::fs::remove_file(&path)?;
    Ok(())
}

fn wal_run(dir: &Path, record_size: usize, batch: usize, seconds: f64) -> Result<()> {
    let wal_dir = dir.join(format!("wal-{record_size}-{batch}"));
    let opts = WalOptions {
        durability: Durability::Fsync,
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(&wal_dir, Arc::new(StdFileSystem), opts, |_, _, _| {})?;
    let payload = vec![0x5Au8; record_size];
    let mut hist = histogram()?;
    let (start, mut records, mut commits) = (Instant::now(), 0u64, 0u64);
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        for _ in 0..batch {
            wal.append(1, &payload)?;
        }
        wal.flush_blocking()?;
        hist.record(micros(t.elapsed()))?;
        records += batch as u64;
        commits += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wal fsync record {record_size} B x {batch:>3}/commit: records/s {:>9.0}  MB/s {:>7.1}  commits/s {:>6.0}  {}",
        records as f64 / secs,
        records as f64 * record_size as f64 / secs / 1e6,
        commits as f64 / secs,
        latency(&hist)
    );
    drop(wal);
    recovery_run(&wal_dir, records)?;
    std::fs::remove_dir_all(&wal_dir)?;
    Ok(())
}

/// Reopens the directory just written and times the replay (DESIGN §9 asks
/// for at least 1 M records/s per shard).
fn recovery_run(wal_dir: &Path, expected: u64) -> Result<()> {
    let start = Instant::now();
    let mut replayed = 0u64;
    let (_, report) = Wal::open(
        wal_dir,
        Arc::new(StdFileSystem),
        WalOptions::default(),
        |_, _, p| {
            replayed += 1;
            std::hint::black_box(p);
        },
    )?;
    let secs = start.elapsed().as_secs_f64();
    if replayed != expected {
        bail!("recovery replayed {replayed} records, expected {expected}");
    }
    println!(
        "    recovery: {replayed} records in {} segment(s) in {secs:.3} s = {:.0} records/s",
        report.segments,
        replayed as f64 / secs
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let parent = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()?,
    };
    let tmp = tempfile::Builder::new()
        .prefix("wal-bench-")
        .tempdir_in(&parent)?;
    println!(
        "# wal_append in {} ({} s per line)",
        tmp.path().display(),
        args.seconds
    );
    baseline(tmp.path(), args.seconds)?;
    for &batch in &args.batches {
        wal_run(tmp.path(), args.record_size, batch, args.seconds)?;
    }
    Ok(())
}
