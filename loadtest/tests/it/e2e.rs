//! `e2e` against a real `mcmp serve`, when the binary is built: the MCMP
//! workspace's own tests build it; this crate alone cannot, so the test
//! skips (and says so) without it.

use std::path::PathBuf;
use std::process::Command;

/// `<target>/debug/mcmp`, found from this test binary at
/// `<target>/debug/deps/it-…`.
fn mcmp_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let debug = exe.parent()?.parent()?;
    let bin = debug.join("mcmp");
    bin.is_file().then_some(bin)
}

#[test]
fn e2e_without_reports_loses_nothing() {
    let Some(bin) = mcmp_bin() else {
        eprintln!("SKIPPED e2e_without_reports_loses_nothing: no mcmp binary next to the tests (build it with `cargo build -p mcmp-api`)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("e2e.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mcmp-loadtest"))
        .args([
            "e2e",
            "--no-reports",
            "--duration",
            "3",
            "--rate",
            "200",
            "--settle",
            "20",
        ])
        .arg("--mcmp-bin")
        .arg(&bin)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run e2e");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "e2e failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    assert_eq!(s["kind"], "e2e");
    assert_eq!(s["e2e"]["passed"], true);
    assert_eq!(s["e2e"]["missing"], 0);
    assert_eq!(s["e2e"]["accepted"], 600, "200/s for 3 s");
    assert_eq!(s["e2e"]["smsc"]["of_this_run"], 600);
    assert_eq!(s["e2e"]["smsc"]["duplicated"], 0);
}
