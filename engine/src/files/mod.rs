//! Media files (SPEC §5.10, the seed's "RCS FILE Report"): images a
//! customer uploads once (`POST /v1/files`) and then names in messages
//! (`"attachments":[{"file_id"}]`).
//!
//! [`SharedFiles`] is the store: the bytes and a small record per file
//! ([`meta::FileMeta`]) under `<data-dir>/files/`, written durably (tmp,
//! fsync, rename, fsync of the directory) by the files' own IO thread
//! ([`disk`]) before the upload is answered, so an answered file survives
//! `kill -9`; and an index of the records in memory, loaded at start-up.
//! An MMS file is usable at once; an RCS file is registered with the RCS
//! provider first ([`register`]). Files are deleted at their provider's
//! expiry or the end of the retention period, whichever is later
//! ([`sweep`]).
//!
//! Shared by every shard (`Send + Sync`).
// NOTE: the index is one `RwLock` for all cores. It is taken only by file
// uploads, file reads and messages that name a file (not by other
// messages), each for a map lookup; a shard-owned index would need a mesh
// round trip for every such message instead.

mod disk;
pub mod kind;
pub mod meta;
pub(crate) mod register;
pub mod resolve;
pub(crate) mod sweep;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use kind::FileError;
use meta::{is_file_id, FileMeta, FileReport, FileStatus, META_VERSION};

use crate::model::Channel;

/// Longest file name kept, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A new file, as the API hands it over.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The customer.
    pub group_code: String,
    /// The uploading client.
    pub client_id: String,
    /// `RCS` or `MMS`.
    pub channel: Channel,
    /// The customer's name for it (may be empty).
    pub name: String,
    /// The declared type, if any (else the bytes decide).
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
}

/// The media file store: bytes and records on disk, the records' index in
/// memory. Shared by every shard.
pub struct SharedFiles {
    dir: PathBuf,
    index: RwLock<HashMap<String, FileMeta>>,
    disk: disk::Disk,
    /// RCS registrations running now, all shards together.
    registering: AtomicUsize,
}

/// RCS registrations that run at once (all shards together): each holds
/// a file's bytes (≤ 1 MiB) and their base64 body while its provider
/// answers; more wait their turn holding only the file's id.
pub const MAX_REGISTRATIONS: usize = 32;

/// A running registration's place among [`MAX_REGISTRATIONS`]; given back
/// when dropped.
pub struct RegistrationSlot<'a>(&'a AtomicUsize);

impl Drop for RegistrationSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SharedFiles {
    /// Opens (creating) `dir` and loads every file's record. Leftovers of
    /// an upload that a crash cut short (never answered) are removed.
    pub fn open(dir: &Path) -> io::Result<SharedFiles> {
        std::fs::create_dir_all(dir).map_err(|e| disk::at("create", dir, e))?;
        let index = load(dir)?;
        if !index.is_empty() {
            tracing::info!(files = index.len(), dir = %dir.display(), "media files loaded");
        }
        Ok(SharedFiles {
            dir: dir.to_path_buf(),
            index: RwLock::new(index),
            disk: disk::Disk::start()?,
            registering: AtomicUsize::new(0),
        })
    }

    fn read_index(&self) -> RwLockReadGuard<'_, HashMap<String, FileMeta>> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, HashMap<String, FileMeta>> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more registration, if fewer than
    /// [`MAX_REGISTRATIONS`] run.
    pub fn begin_registration(&self) -> Option<RegistrationSlot<'_>> {
        let taken = self
            .registering
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_REGISTRATIONS).then_some(n + 1)
            });
        taken.ok().map(|_| RegistrationSlot(&self.registering))
    }

    /// A file's record.
    pub fn get(&self, file_id: &str) -> Option<FileMeta> {
        self.read_index().get(file_id).cloned()
    }

    /// The records `keep` selects.
    pub fn select(&self, keep: impl Fn(&FileMeta) -> bool) -> Vec<FileMeta> {
        self.read_index()
            .values()
            .filter(|m| keep(m))
            .cloned()
            .collect()
    }

    /// Checks an upload against its channel's limits, stores it durably
    /// and answers its record: `registered` for MMS, `registering` for RCS.
    pub async fn upload(&self, up: Upload, now_ms: i64) -> Result<FileMeta, FileError> {
        let content_type = kind::check(up.channel, up.content_type.as_deref(), &up.data)?;
        let file_id = meta::new_file_id().map_err(|e| FileError::Io(e.to_string()))?;
        let status = match up.channel {
            Channel::Mms => FileStatus::Registered,
            _ => FileStatus::Registering,
        };
        let meta = FileMeta {
            v: META_VERSION,
            file_id,
            group_code: up.group_code,
            client_id: up.client_id,
            channel: up.channel,
            name: up.name.chars().take(MAX_NAME_CHARS).collect(),
            content_type: content_type.to_owned(),
            size: up.data.len() as u64,
            created_at_ms: now_ms,
            status,
            code: None,
            provider_code: None,
            provider_file_id: None,
            expires_at_ms: None,
            sender: None,
            report: FileReport::default(),
        };
        self.store(meta.clone(), up.data).await?;
        Ok(meta)
    }

    /// Stores a new file durably (bytes, record, directory), then indexes it.
    pub async fn store(&self, meta: FileMeta, data: Vec<u8>) -> Result<(), FileError> {
        let (data_path, meta_path) = (self.data_path(&meta.file_id), self.meta_path(&meta.file_id));
        let record = encode(&meta)?;
        let dir = self.dir.clone();
        self.disk
            .run(move || {
                disk::write_durable(&data_path, &data)?;
                disk::write_durable(&meta_path, &record)?;
                disk::sync_dir(&dir)
            })
            .await
            .map_err(|_| FileError::Busy)?
            .map_err(|e| FileError::Io(e.to_string()))?;
        self.write_index().insert(meta.file_id.clone(), meta);
        Ok(())
    }

    /// Writes a changed record durably, then indexes it; a file deleted
    /// meanwhile stays deleted (a record that a race with the sweep writes
    /// back has no bytes, and start-up drops it).
    pub async fn save(&self, meta: FileMeta) -> Result<(), FileError> {
        if self.get(&meta.file_id).is_none() {
            return Ok(());
        }
        let path = self.meta_path(&meta.file_id);
        let record = encode(&meta)?;
        let dir = self.dir.clone();
        self.disk
            .run(move || {
                disk::write_durable(&path, &record)?;
                disk::sync_dir(&dir)
            })
            .await
            .map_err(|_| FileError::Busy)?
            .map_err(|e| FileError::Io(e.to_string()))?;
        if let Some(indexed) = self.write_index().get_mut(&meta.file_id) {
            *indexed = meta;
        }
        Ok(())
    }

    /// A file's bytes.
    pub async fn read(&self, file_id: &str) -> Result<Vec<u8>, FileError> {
        let path = self.data_path(file_id);
        self.disk
            .run(move || std::fs::read(&path).map_err(|e| disk::at("read", &path, e)))
            .await
            .map_err(|_| FileError::Busy)?
            .map_err(|e| FileError::Io(e.to_string()))
    }

    /// Forgets a file and deletes it (record first, so a crash halfway
    /// leaves bytes without a record, which start-up removes).
    pub async fn delete(&self, file_id: &str) -> Result<(), FileError> {
        self.write_index().remove(file_id);
        let (data_path, meta_path) = (self.data_path(file_id), self.meta_path(file_id));
        let dir = self.dir.clone();
        self.disk
            .run(move || {
                remove_if_there(&meta_path)?;
                remove_if_there(&data_path)?;
                disk::sync_dir(&dir)
            })
            .await
            .map_err(|_| FileError::Busy)?
            .map_err(|e| FileError::Io(e.to_string()))
    }

    fn data_path(&self, file_id: &str) -> PathBuf {
        self.dir.join(format!("{file_id}.data"))
    }

    fn meta_path(&self, file_id: &str) -> PathBuf {
        self.dir.join(format!("{file_id}.meta"))
    }
}

fn encode(meta: &FileMeta) -> Result<Vec<u8>, FileError> {
    serde_json::to_vec(meta).map_err(|e| FileError::Io(e.to_string()))
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(disk::at("remove", path, e)),
        _ => Ok(()),
    }
}

/// Reads every record of `dir`; removes temporary files and bytes without
/// a record (an upload a crash cut short before its answer).
fn load(dir: &Path) -> io::Result<HashMap<String, FileMeta>> {
    let mut index = HashMap::new();
    let mut data = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| disk::at("read dir", dir, e))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match name.split_once('.') {
            Some((id, "meta")) if is_file_id(id) => {
                let meta = read_meta(&path)?;
                index.insert(id.to_owned(), meta);
            }
            Some((id, "data")) if is_file_id(id) => data.push((id.to_owned(), path)),
            _ if name.ends_with(".tmp") => remove_if_there(&path)?,
            _ => {}
        }
    }
    // Both names are durable before an upload is answered (the directory
    // fsync), so a record without bytes, or bytes without a record, is an
    // upload that was never answered.
    let with_data: std::collections::HashSet<&str> =
        data.iter().map(|(id, _)| id.as_str()).collect();
    let orphans: Vec<String> = index
        .keys()
        .filter(|id| !with_data.contains(id.as_str()))
        .cloned()
        .collect();
    for id in orphans {
        index.remove(&id);
        remove_if_there(&dir.join(format!("{id}.meta")))?;
    }
    for (id, path) in &data {
        if !index.contains_key(id) {
            tracing::warn!(path = %path.display(), "removing a file upload that was never answered");
            remove_if_there(path)?;
        }
    }
    Ok(index)
}

fn read_meta(path: &Path) -> io::Result<FileMeta> {
    let bytes = std::fs::read(path).map_err(|e| disk::at("read", path, e))?;
    let bad = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("media file record {}: {why}", path.display()),
        )
    };
    let meta: FileMeta = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if meta.v != META_VERSION {
        return Err(bad(format!(
            "layout version {} is unknown to this build",
            meta.v
        )));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests;
