//! A stored file's record ([`FileMeta`]) and what it allows: its status as
//! shown, whether a message may use it (3015 otherwise), and when it is
//! deleted. Pure: the time comes in as an argument.
//!
//! On disk, beside the bytes (`<id>.data`), as `<id>.meta`:
//! `meta = JSON { "v": 1, "file_id", "group_code", "client_id", "channel",
//! "name", "content_type", "size", "created_at_ms", "status", "code",
//! "provider_code", "provider_file_id", "expires_at_ms", "sender",
//! "report": { "failures", "next_due_ms", "done", "abandoned" } }`,
//! rewritten whole (tmp, fsync, rename, fsync dir) at every change. A
//! `v` this build does not know stops start-up with the file named.

use serde::{Deserialize, Serialize};

use crate::model::Channel;

/// The version of the `.meta` layout this build writes.
pub const META_VERSION: u8 = 1;

/// Where a file stands with its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Stored; the RCS provider has not answered yet.
    Registering,
    /// Usable (an MMS file at once; an RCS file once its provider took it).
    Registered,
    /// The provider refused it, or it could not be registered.
    Failed,
}

/// Where a file's report to the client stands (the same schedule as a
/// message's report: `(n² − n + 1) × reports.retry-unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileReport {
    /// Failed attempts so far.
    pub failures: u32,
    /// When the next attempt is due (unix ms; 0: at once).
    pub next_due_ms: i64,
    /// Delivered (2xx).
    pub done: bool,
    /// No more attempts (retries exhausted, or no `report_uri`).
    pub abandoned: bool,
}

impl FileReport {
    /// Whether the report still has to be pushed.
    pub fn pending(&self) -> bool {
        !self.done && !self.abandoned
    }

    /// An attempt failed at `now_ms`: the next one is due
    /// `retry_delay(failures)` later, or none after `retries` retries (as
    /// for a message's report).
    pub fn failed(&mut self, now_ms: i64, retries: u32, unit: std::time::Duration) {
        self.failures = self.failures.saturating_add(1);
        if self.failures > retries {
            self.abandoned = true;
        } else {
            let wait = crate::core::lifecycle::report::retry_delay(self.failures, unit);
            self.next_due_ms = now_ms.saturating_add(wait.as_millis() as i64);
        }
    }
}

/// A stored file. Kept in the engine's file index (every shard reads it)
/// and on disk beside its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMeta {
    /// Layout version ([`META_VERSION`]).
    pub v: u8,
    /// Its id: 24 lowercase hex digits ([`is_file_id`]).
    pub file_id: String,
    /// The customer that owns it.
    pub group_code: String,
    /// The client that uploaded it (its `report_uri` gets the file report).
    pub client_id: String,
    /// `RCS` or `MMS`.
    pub channel: Channel,
    /// The name the customer gave (may be empty).
    pub name: String,
    /// `image/jpeg`, `image/png` or `image/gif`.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// When it was uploaded (unix ms).
    pub created_at_ms: i64,
    /// Where it stands.
    pub status: FileStatus,
    /// The unified result code of a failure (`None` while registering or
    /// once registered).
    pub code: Option<u16>,
    /// The provider's own code, as it gave it.
    pub provider_code: Option<String>,
    /// The provider's id of the file (RCS, once registered).
    pub provider_file_id: Option<String>,
    /// When the provider forgets the file (unix ms; RCS).
    pub expires_at_ms: Option<i64>,
    /// The `http` sender it was registered through.
    pub sender: Option<String>,
    /// Its report to the client (RCS files).
    #[serde(default)]
    pub report: FileReport,
}

/// Why a message may not use a file (SPEC §5.10: 3015).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// No such file for this customer (unknown, another customer's, or
    /// deleted).
    Unknown,
    /// For another channel.
    Channel,
    /// Its registration is not done yet.
    Registering,
    /// Its registration failed.
    Failed,
    /// Past the provider's expiry.
    Expired,
}

impl Unusable {
    /// The `reason` of the 3015 rejection.
    pub fn reason(self, file_id: &str) -> String {
        let why = match self {
            Unusable::Unknown => "is unknown",
            Unusable::Channel => "is for another channel",
            Unusable::Registering => "is not registered yet",
            Unusable::Failed => "failed to register",
            Unusable::Expired => "has expired",
        };
        format!("file not usable: {file_id} {why}")
    }
}

impl FileMeta {
    /// The status as the customer sees it: `expired` once a registered
    /// file is past its provider's expiry.
    pub fn shown_status(&self, now_ms: i64) -> &'static str {
        match self.status {
            FileStatus::Registering => "registering",
            FileStatus::Failed => "failed",
            FileStatus::Registered if self.expired(now_ms) => "expired",
            FileStatus::Registered => "registered",
        }
    }

    fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// Whether a message of `group_code` on `channel` may use it now.
    pub fn usable(&self, now_ms: i64, group_code: &str, channel: Channel) -> Result<(), Unusable> {
        if self.group_code != group_code {
            return Err(Unusable::Unknown);
        }
        if self.channel != channel {
            return Err(Unusable::Channel);
        }
        match self.status {
            FileStatus::Registering => Err(Unusable::Registering),
            FileStatus::Failed => Err(Unusable::Failed),
            FileStatus::Registered if self.expired(now_ms) => Err(Unusable::Expired),
            FileStatus::Registered => Ok(()),
        }
    }

    /// When it is deleted: at its expiry or at the end of the retention
    /// period, whichever is later (SPEC §5.10). A file whose report is
    /// still pending is kept until the report is done.
    pub fn delete_at_ms(&self, retention_ms: i64) -> i64 {
        let kept = self.created_at_ms.saturating_add(retention_ms);
        kept.max(self.expires_at_ms.unwrap_or(i64::MIN))
    }
}

/// Whether `s` is a file id: 24 lowercase hex digits (also what keeps a
/// path built from it inside the files directory).
pub fn is_file_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A new file id: 96 random bits as 24 hex digits.
pub fn new_file_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::getrandom(&mut bytes).map_err(std::io::Error::from)?;
    Ok(crate::codec::hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn meta(channel: Channel, status: FileStatus) -> FileMeta {
        FileMeta {
            v: META_VERSION,
            file_id: "0123456789abcdef01234567".into(),
            group_code: "G1".into(),
            client_id: "c1".into(),
            channel,
            name: "a.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 10,
            created_at_ms: 1_000,
            status,
            code: None,
            provider_code: None,
            provider_file_id: None,
            expires_at_ms: None,
            sender: None,
            report: FileReport::default(),
        }
    }

    #[test]
    fn only_the_owner_may_use_a_registered_unexpired_file_of_its_channel() {
        let mut m = meta(Channel::Rcs, FileStatus::Registered);
        m.expires_at_ms = Some(5_000);
        assert_eq!(m.usable(4_999, "G1", Channel::Rcs), Ok(()));
        assert_eq!(m.usable(4_999, "G2", Channel::Rcs), Err(Unusable::Unknown));
        assert_eq!(m.usable(4_999, "G1", Channel::Mms), Err(Unusable::Channel));
        assert_eq!(m.usable(5_000, "G1", Channel::Rcs), Err(Unusable::Expired));
        assert_eq!(m.shown_status(5_000), "expired");
        m.status = FileStatus::Registering;
        assert_eq!(m.usable(0, "G1", Channel::Rcs), Err(Unusable::Registering));
        m.status = FileStatus::Failed;
        assert_eq!(m.usable(0, "G1", Channel::Rcs), Err(Unusable::Failed));
    }

    #[test]
    fn a_failed_report_follows_the_message_schedule_then_is_abandoned() {
        let unit = std::time::Duration::from_secs(60);
        let mut r = FileReport::default();
        r.failed(0, 2, unit);
        assert_eq!((r.failures, r.next_due_ms, r.abandoned), (1, 60_000, false));
        r.failed(60_000, 2, unit);
        assert_eq!(
            (r.failures, r.next_due_ms, r.abandoned),
            (2, 240_000, false)
        );
        r.failed(240_000, 2, unit);
        assert!(r.abandoned && !r.pending());
    }

    #[test]
    fn deleted_at_expiry_or_retention_whichever_is_later() {
        let mut m = meta(Channel::Rcs, FileStatus::Registered);
        assert_eq!(m.delete_at_ms(10_000), 11_000);
        m.expires_at_ms = Some(50_000);
        assert_eq!(m.delete_at_ms(10_000), 50_000);
    }

    #[test]
    fn ids_are_24_hex_digits_and_nothing_else() {
        let id = new_file_id().expect("random");
        assert!(is_file_id(&id), "{id}");
        assert!(!is_file_id("../../etc/passwd"));
        assert!(!is_file_id("0123456789ABCDEF01234567"));
    }
}
