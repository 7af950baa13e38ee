//! Start-up recovery: load the shard's newest checkpoint, then open its WAL
//! and replay the records after the checkpoint's position into the message
//! store; the dedup keys (the checkpoint's and those of the messages
//! accepted after it) go to their owners afterwards.

use std::sync::Arc;

use mcmp_storage::fs::{FileSystem, StdFileSystem};
use mcmp_storage::{Wal, WalOptions};

use super::checkpoint::{checkpoint_dir, decode};
use super::StartError;
use crate::codec::Record;
use crate::config::EngineConfig;
use crate::core::dedup::{DedupImage, DedupKey};
use crate::core::lifecycle::store::LocalMessages;
use crate::model::MessageId;

/// Dedup keys to restore: key, message, claim time (unix seconds).
type Keys = Vec<(DedupKey, MessageId, u32)>;

/// What start-up recovered on one shard.
pub(super) struct Recovered {
    /// The WAL, open for appending.
    pub wal: Wal,
    /// The message store.
    pub messages: LocalMessages,
    /// The dedup keys of the WAL after the checkpoint, each to restore at
    /// its owner.
    pub keys: Keys,
    /// The dedup table this shard owned at the checkpoint.
    pub dedup: DedupImage,
    /// When the checkpoint was written (0: none).
    pub at_ms: i64,
}

/// What round `round`'s checkpoint holds: its position, the store, the
/// dedup table, the keys of an older format and when it was written; an
/// empty store at position 0 without one.
fn load_checkpoint(
    config: &EngineConfig,
    shard: usize,
    round: Option<u64>,
) -> Result<(u64, LocalMessages, DedupImage, Keys, i64), StartError> {
    let Some(round) = round else {
        let empty = LocalMessages::new(config.validity_secs());
        return Ok((0, empty, DedupImage::default(), Vec::new(), 0));
    };
    let bad = |reason: String| StartError::Checkpoint { shard, reason };
    let dir = checkpoint_dir(config, shard);
    let (lsn, payload) =
        mcmp_storage::checkpoint::load(&dir, round).map_err(|e| bad(e.to_string()))?;
    let parts = decode(&payload).ok_or_else(|| bad(format!("checkpoint {lsn}: undecodable")))?;
    let messages = LocalMessages::from_snapshot(&parts.messages, config.validity_secs())
        .map_err(|e| bad(format!("checkpoint {lsn}: {e}")))?;
    Ok((lsn, messages, parts.dedup, parts.legacy_keys, parts.at_ms))
}

/// Loads round `round`'s checkpoint, then opens and replays the shard's
/// WAL after it.
pub(super) fn recover(
    config: &EngineConfig,
    shard: usize,
    round: Option<u64>,
) -> Result<Recovered, StartError> {
    let dir = config.data_dir.join("wal").join(shard.to_string());
    let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
    let opts = WalOptions {
        segment_size: config.segment_size,
        durability: config.durability,
        recovery: config.recovery,
    };
    let started = std::time::Instant::now();
    let (from, mut messages, image, mut dedup, at_ms) = load_checkpoint(config, shard, round)?;
    let mut bad = None;
    let mut first = None;
    let (wal, report) = Wal::open(&dir, fs, opts, |lsn, kind, payload| {
        first.get_or_insert(lsn);
        if bad.is_some() || lsn <= from {
            return;
        }
        match Record::decode(kind, payload) {
            Ok(Record::Accepted(rec)) => {
                let key = DedupKey::new(&rec.group_code, &rec.request.src_msg_id);
                dedup.push((key, rec.id, (rec.created_at_ms / 1000) as u32));
                messages.apply_accepted(*rec);
            }
            Ok(record) => messages.apply(record),
            Err(e) => bad = Some(e),
        }
    })
    .map_err(|source| StartError::Wal { shard, source })?;
    if let Some(source) = bad {
        return Err(StartError::Record { shard, source });
    }
    if from > 0 && report.next_lsn <= from {
        return Err(StartError::Checkpoint {
            shard,
            reason: format!(
                "the WAL ends at record {} but the checkpoint covers up to {from}",
                report.next_lsn - 1
            ),
        });
    }
    if first.is_some_and(|f| f > from + 1) {
        return Err(StartError::Checkpoint {
            shard,
            reason: format!(
                "the WAL starts at record {} but no checkpoint covers the records before it",
                first.unwrap_or(0)
            ),
        });
    }
    tracing::info!(
        shard,
        checkpoint = from,
        records = report.records,
        messages = messages.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered from the checkpoint and the WAL after it"
    );
    Ok(Recovered {
        wal,
        messages,
        keys: dedup,
        dedup: image,
        at_ms,
    })
}
