//! Media files leave the disk at their provider's expiry or at the end of
//! the retention period (`reports.retention`), whichever is later (SPEC
//! §5.10). Shard 0 looks once a [`SWEEP_EVERY`] and deletes the files that
//! are due, one after the other, on the files' IO thread.

use std::rc::Rc;
use std::time::Duration;

use super::meta::FileStatus;
use super::SharedFiles;
use crate::shard::Shard;
use crate::{rt, unix_ms};

/// How often due files are looked for: a scan of the index's records,
/// a few milliseconds for a hundred thousand files.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl SharedFiles {
    /// Deletes every file due by `now_ms`; answers how many went. A file
    /// still registering waits for its outcome (its expiry may come with it).
    pub async fn sweep(&self, now_ms: i64, retention: Duration) -> usize {
        let retention_ms = retention.as_millis().min(i64::MAX as u128) as i64;
        let due = self.select(|m| {
            m.status != FileStatus::Registering && m.delete_at_ms(retention_ms) <= now_ms
        });
        let mut deleted = 0;
        for meta in due {
            match self.delete(&meta.file_id).await {
                Ok(()) => deleted += 1,
                Err(e) => {
                    tracing::warn!(file = %meta.file_id, "deleting an expired media file: {e}")
                }
            }
        }
        if deleted > 0 {
            tracing::info!(
                deleted,
                "media files past their expiry and retention deleted"
            );
        }
        deleted
    }
}

/// Shard 0's sweep, until the engine drains.
pub(crate) async fn run(shard: Rc<Shard>) {
    let retention = shard.shared.config.report_retention;
    loop {
        rt::sleep(SWEEP_EVERY).await;
        if shard.shared.is_draining() {
            return;
        }
        shard.shared.files.sweep(unix_ms(), retention).await;
    }
}
