//! `priority` against a real `mcmp serve` (skipped, like `e2e`, when the
//! binary is not built): a bulk backlog of 4,000 through a sender capped
//! at 500 TPS (8 s to drain), and 10 `otp` messages sent while it drains
//! must overtake it. The 1 s bound is the mode's own verdict, not asserted
//! here: the test checks that the run is complete, that each otp message
//! went past most of the backlog waiting at its send (by position at the
//! SMSC), that the slowest took less than half the drain, and that the exit
//! status agrees with the verdict.

use std::process::Command;

#[test]
fn otp_messages_overtake_a_bulk_backlog() {
    let Some(bin) = super::e2e::mcmp_bin() else {
        eprintln!("SKIPPED otp_messages_overtake_a_bulk_backlog: no mcmp binary next to the tests (build it with `cargo build -p mcmp-api`)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("priority.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mcmp-loadtest"))
        .args([
            "priority",
            "--bulk",
            "4000",
            "--sender-tps",
            "500",
            "--otp-rate",
            "5",
            "--otp-secs",
            "2",
            "--settle",
            "60",
        ])
        .arg("--mcmp-bin")
        .arg(&bin)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run priority");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json written"))
        .unwrap_or_else(|e| panic!("json: {e}\n{context}"));
    let (bulk, otp) = (&f["bulk"], &f["otp"]);
    assert_eq!(f["kind"], "priority");
    assert_eq!(bulk["accepted"], 4000, "{context}");
    assert_eq!(
        bulk["drained"], true,
        "the backlog drains within --settle\n{context}"
    );
    assert_eq!(otp["sent"], 10, "5/s for 2 s");
    assert_eq!(otp["accepted"], 10, "{context}");
    assert_eq!(
        otp["missing"], 0,
        "every otp message reached the SMSC\n{context}"
    );

    // Overtaking, by position at the SMSC: in FIFO order every bulk message
    // waiting at an otp message's send would reach the SMSC before it.
    let messages = f["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 10, "{context}");
    for m in messages {
        let waiting = m["backlog_at_send"].as_u64().expect("backlog");
        let passed_by = m["served_before"].as_u64().expect("arrived");
        assert!(
            waiting > 0,
            "a backlog was waiting at every otp send: {m}\n{context}"
        );
        assert!(
            passed_by * 2 < waiting,
            "fewer than half the bulk messages waiting at its send went before it: {m}\n{context}"
        );
    }
    // And in time: the slowest otp message took a fraction of the drain.
    let slowest_ms = otp["send_to_submit_ms"]["max"].as_f64().expect("latency");
    let drain_ms = bulk["drain_secs"].as_f64().expect("drain") * 1000.0;
    assert!(
        slowest_ms * 2.0 < drain_ms,
        "otp max {slowest_ms} ms vs drain {drain_ms} ms\n{context}"
    );

    let passed = f["passed"] == true;
    assert_eq!(
        out.status.success(),
        passed,
        "exit status vs verdict\n{context}"
    );
    let line = if passed {
        "priority PASSED"
    } else {
        "priority FAILED"
    };
    assert!(stdout.lines().any(|l| l.starts_with(line)), "{context}");
}
