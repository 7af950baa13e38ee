//! Start-up recovery: open the shard's WAL and replay it into the message
//! store; the dedup keys found on the way go to their owners afterwards.

use std::sync::Arc;

use mcmp_storage::fs::{FileSystem, StdFileSystem};
use mcmp_storage::{Wal, WalOptions};

use super::StartError;
use crate::codec::Record;
use crate::config::EngineConfig;
use crate::core::dedup::DedupKey;
use crate::core::lifecycle::store::LocalMessages;
use crate::model::MessageId;

pub(super) type Recovered = (Wal, LocalMessages, Vec<(DedupKey, MessageId, u32)>);

/// Opens and replays the shard's WAL.
pub(super) fn recover(config: &EngineConfig, shard: usize) -> Result<Recovered, StartError> {
    let dir = config.data_dir.join("wal").join(shard.to_string());
    let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
    let opts = WalOptions {
        segment_size: config.segment_size,
        durability: config.durability,
        recovery: config.recovery,
    };
    let mut messages = LocalMessages::new(config.validity_secs());
    let mut dedup = Vec::new();
    let mut bad = None;
    let started = std::time::Instant::now();
    let (wal, report) = Wal::open(&dir, fs, opts, |_lsn, kind, payload| {
        if bad.is_some() {
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
    tracing::info!(
        shard,
        records = report.records,
        messages = messages.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "WAL recovered"
    );
    Ok((wal, messages, dedup))
}
