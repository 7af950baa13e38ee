//! `e2e` and `soak` against a real `mcmp serve`, when the binary is built:
//! the MCMP workspace's own tests build it; this crate alone cannot, so the
//! tests skip (and say so) without it.

use std::path::PathBuf;
use std::process::Command;

/// `<target>/debug/mcmp`, found from this test binary at
/// `<target>/debug/deps/it-…`.
pub fn mcmp_bin() -> Option<PathBuf> {
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

/// Reports over HTTPS: the sink serves TLS with a CA made at start, the
/// started MCMP trusts it through `[tls] extra-ca`, every report arrives.
#[test]
fn e2e_with_https_webhooks_gets_every_report() {
    let Some(bin) = mcmp_bin() else {
        eprintln!("SKIPPED e2e_with_https_webhooks_gets_every_report: no mcmp binary next to the tests (build it with `cargo build -p mcmp-api`)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("e2e.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mcmp-loadtest"))
        .args([
            "e2e",
            "--tls-webhooks",
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "e2e failed\nstderr:\n{stderr}");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    assert_eq!(s["e2e"]["mode"], "reports", "{s}");
    assert_eq!(s["e2e"]["passed"], true, "{s}");
    assert_eq!(s["e2e"]["accepted"], 600, "200/s for 3 s");
    assert_eq!(s["e2e"]["missing"], 0);
}

/// A 20 s soak with 10 s retentions: samples every 2 s, a verdict, every
/// report at the sink, and an exit status that agrees with the verdict.
/// What the verdict says of a debug build warming up is not asserted.
#[test]
fn soak_samples_the_server_and_judges_it() {
    let Some(bin) = mcmp_bin() else {
        eprintln!("SKIPPED soak_samples_the_server_and_judges_it: no mcmp binary next to the tests (build it with `cargo build -p mcmp-api`)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("soak.json");
    let svg = dir.path().join("soak.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_mcmp-loadtest"))
        .args([
            "--duration",
            "20",
            "soak",
            "--retention",
            "10s",
            "--checkpoint-interval",
            "2s",
            "--sample-every",
            "2",
            "--rss-from",
            "6s",
            "--steady-from",
            "12s",
            "--rate",
            "1000",
            "--batch",
            "20",
            "--connections",
            "4",
            "--settle",
            "15",
        ])
        .arg("--mcmp-bin")
        .arg(&bin)
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        // A failed verdict keeps the server's log in the temp dir: this
        // test's own, removed with it.
        .env("TMPDIR", dir.path())
        .output()
        .expect("run soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json written"))
        .unwrap_or_else(|e| panic!("json: {e}\n{context}"));
    assert_eq!(s["kind"], "soak");
    assert_eq!(s["e2e"]["passed"], true, "{context}");
    assert_eq!(s["e2e"]["missing"], 0);
    assert_eq!(s["e2e"]["accepted"], 20_000, "1000/s for 20 s");
    assert!(s["config"]["server_toml"]
        .as_str()
        .is_some_and(|t| t.contains("[reports]\nretention = \"10s\"")));
    let samples = s["samples"].as_array().expect("samples");
    assert!(
        (10..=13).contains(&samples.len()),
        "{} samples",
        samples.len()
    );
    let mut last_t = -1.0;
    for p in samples {
        let t = p["t"].as_f64().expect("t");
        assert!(t > last_t, "samples in time order: {p}");
        last_t = t;
        assert!(p["rss_bytes"].as_u64() > Some(0), "{p}");
        assert!(p["data_dir_allocated_bytes"].as_u64() > Some(0), "{p}");
        assert!(p["data_dir_bytes"].as_u64() > Some(0), "{p}");
        assert!(p["memory_messages"].is_u64(), "{p}");
        assert!(p["wal_bytes"].is_u64(), "{p}");
    }
    assert!(last_t >= 19.0, "sampled to the end: {last_t}");
    assert!(samples.last().expect("a sample")["accepted"].as_u64() > Some(15_000));
    let v = &s["verdict"];
    assert!(v["rss_ratio"].is_f64(), "{v}");
    assert!(v["data_dir_ratio"].is_f64(), "{v}");
    assert!(v["data_dir_window_samples"].as_u64() >= Some(3), "{v}");
    let judged = v["rss_ok"] == true && v["data_dir_stable"] == true;
    assert_eq!(v["passed"], judged, "{v}");
    assert_eq!(s["passed"], judged, "{v}");
    assert_eq!(
        out.status.success(),
        judged,
        "exit status vs verdict\n{context}"
    );
    let line = if judged {
        "soak PASSED: rss "
    } else {
        "soak FAILED: rss "
    };
    assert!(stdout.lines().any(|l| l.starts_with(line)), "{context}");
    let picture = std::fs::read_to_string(&svg).expect("svg written");
    assert!(picture.contains("RSS MiB") && picture.contains("data dir MiB"));
}
