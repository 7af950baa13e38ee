//! `run` against `baseline`: open and closed loop, the JSON summary and
//! the SVG picture.

use std::process::Command;

use serde_json::Value;

use crate::Sim;

/// Runs `mcmp-loadtest run` against a fresh baseline; returns the summary.
fn run_against_baseline(extra: &[&str]) -> (Value, String) {
    let baseline = Sim::start(&["baseline", "--listen", "127.0.0.1:0"], &["baseline"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("summary.json");
    let svg = dir.path().join("run.svg");
    let target = format!("http://{}", baseline.addr("baseline"));
    let out = Command::new(env!("CARGO_BIN_EXE_mcmp-loadtest"))
        .args([
            "run",
            "--target",
            &target,
            "--duration",
            "2",
            "--connections",
            "4",
        ])
        .args(extra)
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .expect("run mcmp-loadtest run");
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[run"),
        "a progress line every second: {stderr}"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid json");
    let picture = std::fs::read_to_string(&svg).expect("svg written");
    (summary, picture)
}

fn assert_consistent(s: &Value) {
    for key in [
        "run_id",
        "target",
        "mode",
        "rate",
        "batch",
        "connections",
        "elapsed_secs",
        "mix",
        "requests",
        "messages",
        "rejected_by_code",
        "errors_by_kind",
        "throughput",
        "latency_ms",
        "series",
        "baseline",
    ] {
        assert!(s.get(key).is_some(), "summary has {key}: {s}");
    }
    let m = &s["messages"];
    let n = |v: &Value| v.as_u64().expect("a count");
    assert!(n(&m["sent"]) > 0);
    assert_eq!(
        n(&m["sent"]),
        n(&m["accepted"]) + n(&m["rejected"]) + n(&m["errors"])
    );
    assert_eq!(n(&m["errors"]), 0, "baseline answers everything: {s}");
    assert_eq!(n(&m["sent"]), n(&s["requests"]) * n(&s["batch"]));
    let series = s["series"].as_array().expect("series");
    let summed: u64 = series.iter().map(|p| n(&p["sent"])).sum();
    assert_eq!(summed, n(&m["sent"]), "the seconds add up to the total");
    assert_eq!(n(&s["latency_ms"]["count"]), n(&s["requests"]));
    let l = &s["latency_ms"];
    let f = |v: &Value| v.as_f64().expect("a number");
    assert!(f(&l["p50"]) <= f(&l["p99"]) && f(&l["p99"]) <= f(&l["max"]));
}

fn assert_svg(svg: &str) {
    assert!(svg.starts_with("<?xml"), "xml declaration");
    assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.matches("<polyline").count(),
        5,
        "2 throughput + 3 latency lines"
    );
    assert_eq!(
        svg.matches('<').count(),
        svg.matches('>').count(),
        "balanced tags"
    );
}

#[test]
fn open_loop_against_baseline_keeps_its_rate() {
    let (s, svg) = run_against_baseline(&["--rate", "200", "--mix", "SMS:8,LMS:2"]);
    assert_consistent(&s);
    assert_eq!(s["mode"], "open");
    assert_eq!(s["latency_ms"]["corrected"], true);
    assert_eq!(s["mix"]["LMS"], 2);
    // 200/s for 2 s is 400 slots exactly: the pacer hands out no more.
    assert_eq!(s["messages"]["sent"], 400);
    assert_eq!(s["messages"]["accepted"], 400);
    assert_svg(&svg);
}

#[test]
fn closed_loop_batches_against_baseline() {
    let (s, svg) = run_against_baseline(&["--rate", "0", "--batch", "10", "--baseline"]);
    assert_consistent(&s);
    assert_eq!(s["mode"], "closed");
    assert_eq!(s["latency_ms"]["corrected"], false);
    assert_eq!(s["batch"], 10);
    assert!(s["messages"]["accepted"].as_u64().expect("count") >= 10);
    assert_svg(&svg);
}

#[test]
fn bad_flags_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcmp-loadtest"))
        .args(["run", "--target", "http://127.0.0.1:1", "--batch", "1001"])
        .output()
        .expect("run");
    assert!(!out.status.success(), "batch over 1000 is refused");
}
