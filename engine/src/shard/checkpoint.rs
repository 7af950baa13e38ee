//! Checkpoints and WAL retention (DESIGN §3 "Bounded state").
//!
//! Shard 0 runs a round every `wal.checkpoint-interval`, and one more at a
//! clean shutdown, in three steps over the mesh:
//!
//! 1. **Mark**, on every shard in one synchronous step: the message store
//!    is frozen (a pointer per message; a message changed afterwards is
//!    copied first) and the WAL position it reflects noted (the store
//!    always holds what the appended records say: accepted messages enter
//!    it at their append, every other change in the step that logs it).
//! 2. **Write**, once every shard has marked: each shard encodes its
//!    frozen store a slice at a time (serving between slices), adds the image of
//!    the dedup table it owns (taken now, so it includes the claims of
//!    every message before any shard's mark: a claim precedes its
//!    message's append; the image shares the table's slots),
//!    waits until its WAL is durable up to the mark and writes the
//!    checkpoint off its core (`mcmp_storage::checkpoint`: write, fsync,
//!    rename, fsync the directory, keep the last two).
//! 3. **Retire**, once the history store has made everything it applied
//!    durable (its queue is in order, so that covers every hand-over made
//!    before the marks): each shard deletes the WAL segments wholly below
//!    the older of its two checkpoints (and older than `wal.retention`).
//!
//! Rounds are numbered. Start-up loads, on every shard, the newest round
//! that every shard has written (a shard's checkpoint holds the dedup keys
//! it owns for all shards' messages, so one round's files belong together)
//! and replays the WAL after its position (`shard::recovery`). A crash at
//! any step leaves each shard with that round and the WAL after it: the
//! WAL is only cut below the older of the two rounds a shard keeps, and
//! only once every shard has written the newer one.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use super::{Shard, StartError};
use crate::core::dedup::{DedupImage, DedupKey, IMAGE_MAGIC};
use crate::core::lifecycle::store::{FrozenStore, PIECE};
use crate::mesh::call::ask_all;
use crate::mesh::msg::{CheckpointMsg, MeshMsg};
use crate::model::MessageId;
use crate::{rt, unix_ms};
use mcmp_storage::checkpoint::Writer;

/// A mark waiting for its write: the WAL position and the store then.
pub struct Marked {
    round: u64,
    lsn: u64,
    messages: FrozenStore,
}

/// Messages a checkpoint encodes between two chances for the shard's
/// other tasks to run.
const ENCODE_SLICE: usize = 4096;

/// A checkpoint's payload, decoded.
pub struct Loaded {
    /// When it was written (unix ms).
    pub at_ms: i64,
    /// The message store ([`crate::core::lifecycle::store::LocalMessages::encode_snapshot`]).
    pub messages: Vec<u8>,
    /// The dedup table the shard owned.
    pub dedup: DedupImage,
    /// The dedup keys of a checkpoint written before images: a list of
    /// full keys (each restored at its owner).
    pub legacy_keys: Vec<(DedupKey, MessageId, u32)>,
}

/// `at_ms | messages length | messages | dedup image`.
/// Runs a blocking step of a checkpoint's write on a thread of its own.
async fn off_core<T: Send + 'static>(
    step: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, String> {
    rt::on_own_thread("mcmp-checkpoint", step)
        .await
        .ok_or("no thread for the checkpoint")?
        .map_err(|e| format!("writing the checkpoint: {e}"))
}

/// Splits a checkpoint's payload: its time, the messages' length, the
/// messages, the dedup image (or, in the format before it, a list of
/// full dedup keys).
pub fn decode(bytes: &[u8]) -> Option<Loaded> {
    let word = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let at_ms = word(0)? as i64;
    let len = usize::try_from(word(8)?).ok()?;
    let messages = bytes.get(16..16usize.checked_add(len)?)?.to_vec();
    let rest = bytes.get(16 + len..)?;
    let (dedup, legacy_keys) = match rest.starts_with(IMAGE_MAGIC) {
        true => (DedupImage::decode(rest)?, Vec::new()),
        false => {
            let config = bincode::config::standard().with_limit::<{ 1 << 34 }>();
            let (keys, _): (Vec<(u128, u64, u32)>, usize) =
                bincode::decode_from_slice(rest, config).ok()?;
            let keys = keys
                .into_iter()
                .map(|(k, id, at)| (DedupKey(k), MessageId(id), at))
                .collect();
            (DedupImage::default(), keys)
        }
    };
    Some(Loaded {
        at_ms,
        messages,
        dedup,
        legacy_keys,
    })
}

impl Shard {
    /// The directory of this shard's checkpoints.
    pub(super) fn checkpoint_dir(&self) -> std::path::PathBuf {
        checkpoint_dir(&self.shared.config, self.id)
    }

    /// Step 1 of `round`: the store (frozen: a pointer per message) and
    /// the WAL position it reflects.
    pub(super) fn checkpoint_mark(&self, round: u64) -> u64 {
        let lsn = self.wal.last_appended();
        let messages = self.messages().freeze();
        *self.marked.borrow_mut() = Some(Marked {
            round,
            lsn,
            messages,
        });
        lsn
    }

    /// Step 2: the dedup table owned now (every claim before any shard's
    /// mark is in it; its image shares the table's slots, it copies
    /// nothing but the exact keys of the last seconds), then the file once
    /// the WAL is durable up to the mark.
    pub(super) async fn checkpoint_write(self: &Rc<Self>) -> Result<u64, String> {
        let Some(mut marked) = self.marked.borrow_mut().take() else {
            return Err("no mark to write".into());
        };
        let dir = self.checkpoint_dir();
        let (round, lsn) = (marked.round, marked.lsn);
        // The payload starts with its time and the messages' length,
        // known at the end.
        let create = move || Writer::create(&dir, round, lsn, 16);
        let mut file = off_core(create).await?;
        // The frozen store, a slice at a time: the shard serves between
        // slices (a million held messages take about a second to encode),
        // and each piece goes to the file as it is done (a million take
        // ~90 MB).
        let started = std::time::Instant::now();
        let held = marked.messages.len();
        let mut written = 0;
        while !marked.messages.encode_step(ENCODE_SLICE) {
            if marked.messages.encoded() >= PIECE {
                let piece = marked.messages.drain();
                written += piece.len();
                file = off_core(move || file.append(&piece).map(|()| file)).await?;
            }
            rt::yield_if_needed().await;
        }
        let rest = marked.messages.finish().map_err(|e| e.to_string())?;
        let encode_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(
            shard = self.id,
            messages = held,
            encode_ms,
            "checkpoint encoded"
        );
        let now = unix_ms();
        let image = self.core.borrow().dedup.image();
        self.wal
            .durable(marked.lsn)
            .await
            .map_err(|e| e.to_string())?;
        // The rest on a thread of its own: a large checkpoint must neither
        // hold the core nor queue the WAL's group commits behind it in
        // the shard's blocking pool.
        let write = move || {
            let mut head = now.to_le_bytes().to_vec();
            head.extend_from_slice(&((written + rest.len()) as u64).to_le_bytes());
            file.append(&rest)?;
            // The dedup image (a million keys: ~13 MB) goes to the file
            // through a small buffer, never whole in memory.
            let mut out = std::io::BufWriter::with_capacity(1 << 16, &mut file);
            image.encode(&mut out)?;
            std::io::Write::flush(&mut out)?;
            drop(out);
            file.finish(&head)
        };
        off_core(write).await?;
        self.last_checkpoint_ms.set(now);
        Ok(lsn)
    }

    /// Step 3: deletes the WAL segments the older kept checkpoint covers
    /// (and that are older than `wal.retention`); how many.
    pub(super) async fn checkpoint_retire(self: &Rc<Self>) -> Result<usize, String> {
        let dir = self.checkpoint_dir();
        let keep_for = self.shared.config.wal_retention;
        let segments = self.wal.segments();
        let cut = rt::on_own_thread("mcmp-retire", move || -> std::io::Result<u64> {
            let Some(floor) = mcmp_storage::checkpoint::floor(&dir)? else {
                return Ok(0);
            };
            Ok(retention_cut(&segments, floor + 1, keep_for))
        })
        .await
        .ok_or("no thread to read the checkpoints")?
        .map_err(|e| format!("reading checkpoints: {e}"))?;
        self.wal.retire_before(cut).await.map_err(|e| e.to_string())
    }
}

/// The LSN below which whole segments may go: records below `covered`
/// are in a checkpoint, and a segment also waits until it is `keep_for`
/// old (its file's last change).
fn retention_cut(segments: &[(u64, std::path::PathBuf)], covered: u64, keep_for: Duration) -> u64 {
    let mut cut = 0;
    for pair in segments.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        if *next_first > covered {
            break;
        }
        let old_enough = keep_for.is_zero()
            || std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age >= keep_for);
        if !old_enough {
            break;
        }
        cut = *next_first;
    }
    cut
}

/// The round start-up loads (the newest one every shard has; `None`
/// when one has none) and the number of the next round.
pub fn rounds(config: &crate::config::EngineConfig) -> Result<(Option<u64>, u64), StartError> {
    let mut common: Option<Vec<u64>> = None;
    let mut newest = 0;
    for shard in 0..config.shards {
        let dir = checkpoint_dir(config, shard);
        let have = mcmp_storage::checkpoint::rounds(&dir).map_err(|e| StartError::Checkpoint {
            shard,
            reason: format!("{}: {e}", dir.display()),
        })?;
        newest = newest.max(have.last().copied().unwrap_or(0));
        common = Some(match common {
            None => have,
            Some(c) => c.into_iter().filter(|r| have.contains(r)).collect(),
        });
    }
    let start = common.and_then(|c| c.last().copied());
    Ok((start, newest + 1))
}

/// Where shard `shard`'s checkpoints live.
pub fn checkpoint_dir(config: &crate::config::EngineConfig, shard: usize) -> std::path::PathBuf {
    config.data_dir.join("checkpoint").join(shard.to_string())
}

/// One round over every shard (run by shard 0); errors are logged and the
/// WAL is then kept whole until a later round succeeds.
pub async fn round(shard: &Rc<Shard>) {
    let started = std::time::Instant::now();
    let round = shard
        .shared
        .next_round
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let marks = ask_all(shard, |reply| {
        MeshMsg::Checkpoint(CheckpointMsg::Mark { round, reply })
    });
    if marks.await.iter().any(Result::is_err) {
        return;
    }
    let written = ask_all(shard, |reply| {
        MeshMsg::Checkpoint(CheckpointMsg::Write { reply })
    })
    .await;
    let mut ok = true;
    for w in &written {
        match w {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!("checkpoint not written: {e}; the WAL is kept whole");
                ok = false;
            }
            Err(_) => ok = false,
        }
    }
    if !ok || !shard.shared.history.persist().await {
        return;
    }
    let retired = ask_all(shard, |reply| {
        MeshMsg::Checkpoint(CheckpointMsg::Retire { reply })
    })
    .await;
    let segments: usize = retired.into_iter().flatten().sum();
    tracing::info!(
        segments_deleted = segments,
        took_ms = started.elapsed().as_millis() as u64,
        "checkpoint written on every shard"
    );
}

/// Shard 0's periodic rounds, until the engine drains.
pub async fn run(shard: Rc<Shard>) {
    let every = shard.shared.config.checkpoint_interval;
    loop {
        rt::sleep(every).await;
        if shard.shared.is_draining() {
            return;
        }
        round(&shard).await;
    }
}

/// Longest a shard waits for the others at shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// At a clean shutdown, once every shard has stopped serving: one last
/// round (run by shard 0), so the next start has little WAL to replay.
pub async fn at_shutdown(shard: &Rc<Shard>) {
    use std::sync::atomic::Ordering::SeqCst;
    let engine = &shard.shared;
    engine.stopped.fetch_add(1, SeqCst);
    let deadline = std::time::Instant::now() + SHUTDOWN_WAIT;
    let waiting = |done: &dyn Fn() -> bool| !done() && std::time::Instant::now() < deadline;
    if shard.id == 0 {
        while waiting(&|| engine.stopped.load(SeqCst) >= engine.config.shards) {
            rt::sleep(Duration::from_millis(1)).await;
        }
        round(shard).await;
        engine.final_round.store(true, SeqCst);
    } else {
        while waiting(&|| engine.final_round.load(SeqCst)) {
            rt::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Handles a step of a round on this shard.
pub(super) fn handle(shard: &Rc<Shard>, msg: CheckpointMsg) {
    match msg {
        CheckpointMsg::Mark { round, reply } => {
            let _ = reply.send(shard.checkpoint_mark(round));
        }
        CheckpointMsg::Write { reply } => {
            let shard = shard.clone();
            rt::spawn(async move {
                let _ = reply.send(shard.checkpoint_write().await);
            });
        }
        CheckpointMsg::Retire { reply } => {
            let shard = shard.clone();
            rt::spawn(async move {
                let retired = shard.checkpoint_retire().await;
                if let Err(e) = &retired {
                    tracing::error!("WAL segments not deleted: {e}");
                }
                let _ = reply.send(retired.unwrap_or(0));
            });
        }
    }
}
