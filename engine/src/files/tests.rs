//! The file store on a real directory: durable uploads survive a reopen,
//! leftovers of unanswered uploads are removed, and the sweep deletes at
//! expiry or retention, whichever is later.

use std::time::Duration;

use futures_lite::future::block_on;

use super::meta::FileStatus;
use super::*;

fn upload(channel: Channel) -> Upload {
    Upload {
        group_code: "G".into(),
        client_id: "c".into(),
        channel,
        name: "a.jpg".into(),
        content_type: None,
        data: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3],
    }
}

#[test]
fn uploads_survive_a_reopen_and_unanswered_leftovers_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = SharedFiles::open(dir.path()).expect("open");
    let mms = block_on(files.upload(upload(Channel::Mms), 1_000)).expect("stored");
    assert_eq!(mms.status, FileStatus::Registered);
    let rcs = block_on(files.upload(upload(Channel::Rcs), 1_000)).expect("stored");
    assert_eq!(rcs.status, FileStatus::Registering);
    drop(files);
    // A crash cut these short before an answer.
    std::fs::write(dir.path().join("0123456789abcdef01234567.data"), b"x").expect("write");
    std::fs::write(dir.path().join("aaaaaaaaaaaaaaaaaaaaaaaa.meta.tmp"), b"{").expect("write");
    let mut orphan = mms.clone();
    orphan.file_id = "bbbbbbbbbbbbbbbbbbbbbbbb".into();
    let orphan = serde_json::to_vec(&orphan).expect("json");
    std::fs::write(dir.path().join("bbbbbbbbbbbbbbbbbbbbbbbb.meta"), orphan).expect("write");

    let files = SharedFiles::open(dir.path()).expect("reopen");
    assert_eq!(files.get(&mms.file_id), Some(mms.clone()));
    assert_eq!(files.get(&rcs.file_id), Some(rcs));
    assert!(
        files.get("bbbbbbbbbbbbbbbbbbbbbbbb").is_none(),
        "a record without bytes is dropped"
    );
    assert_eq!(block_on(files.read(&mms.file_id)).expect("bytes").len(), 7);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        4,
        "only the two files' data and records: {names:?}"
    );
}

#[test]
fn the_sweep_deletes_at_expiry_or_retention_whichever_is_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = SharedFiles::open(dir.path()).expect("open");
    let retention = Duration::from_secs(10);
    let mms = block_on(files.upload(upload(Channel::Mms), 0)).expect("stored");
    let mut rcs = block_on(files.upload(upload(Channel::Rcs), 0)).expect("stored");
    rcs.status = FileStatus::Registered;
    rcs.expires_at_ms = Some(30_000);
    block_on(files.save(rcs.clone())).expect("saved");

    assert_eq!(block_on(files.sweep(9_999, retention)), 0);
    assert_eq!(block_on(files.sweep(10_000, retention)), 1);
    assert!(files.get(&mms.file_id).is_none());
    assert!(!dir.path().join(format!("{}.data", mms.file_id)).exists());
    assert_eq!(
        files.get(&rcs.file_id).map(|m| m.shown_status(20_000)),
        Some("registered")
    );
    assert_eq!(block_on(files.sweep(30_000, retention)), 1);
    assert!(files.get(&rcs.file_id).is_none());
    drop(files);
    let files = SharedFiles::open(dir.path()).expect("reopen");
    assert!(files.select(|_| true).is_empty(), "nothing comes back");
}

#[test]
fn at_most_max_registrations_run_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = SharedFiles::open(dir.path()).expect("open");
    let slots: Vec<_> = (0..MAX_REGISTRATIONS)
        .map(|_| files.begin_registration().expect("a slot"))
        .collect();
    assert!(files.begin_registration().is_none());
    drop(slots);
    assert!(files.begin_registration().is_some());
}
