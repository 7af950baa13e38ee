//! Bounded state (SPEC §5.4): settled messages leave memory for the history
//! store, and every read answers the same before, after, and after a
//! restart; past the retention a message is gone.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, sms, Server};
use crate::reports::{customer, REPORT_SETTLE};
use crate::routing::wait_status;
use crate::webhook::Webhook;

/// Waits until no message is held in memory any more (all settled and
/// applied by the history store).
pub(crate) fn wait_memory_empty(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, st) = server.admin("GET", "/stats", None);
        assert_eq!(s, 200, "{st}");
        if st["memory_messages"] == 0 {
            assert!(st["history_bytes"].as_u64() > Some(0), "{st}");
            return;
        }
        assert!(Instant::now() < deadline, "messages stay in memory: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every page of a listing, following `next`.
fn pages(server: &Server, token: &str, path: &str, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{path}{sep}limit=7&after={after}");
        let (s, page) = server.call("GET", &url, Some(token), None);
        assert_eq!(s, 200, "{url}: {page}");
        all.extend(page[key].as_array().expect("rows").iter().cloned());
        match page["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => return all,
        }
    }
}

/// What the read APIs say about `ids` (and `src_msg_id`s `h0`, `h1`, ...).
fn answers(server: &Server, token: &str, ids: &[String]) -> Value {
    let get = |path: &str| {
        let (s, v) = server.call("GET", path, Some(token), None);
        assert_eq!(s, 200, "{path}: {v}");
        v
    };
    let by_id: Vec<Value> = ids
        .iter()
        .map(|id| get(&format!("/v1/messages/{id}")))
        .collect();
    let by_src: Vec<Value> = (0..ids.len())
        .map(|i| get(&format!("/v1/messages?src_msg_id=h{i}")))
        .collect();
    let (s, lookup) = server.call(
        "POST",
        "/v1/reports/lookup",
        Some(token),
        Some(&json!({ "message_ids": ids })),
    );
    assert_eq!(s, 200, "{lookup}");
    json!({
        "by_id": by_id,
        "by_src": by_src,
        "history": pages(server, token, "/v1/messages?since=2020-01-01T00:00:00Z", "messages"),
        "filtered": pages(server, token, "/v1/messages?status=delivered&channel=SMS&to=01099998888", "messages"),
        "reports": pages(server, token, "/v1/reports", "reports"),
        "lookup": lookup,
    })
}

/// Asserts `got == want`, naming the first listing and row that differ
/// (not printing every answer).
fn same(got: &Value, want: &Value, when: &str) {
    for (key, w) in want.as_object().expect("answers") {
        let g = &got[key];
        if g == w {
            continue;
        }
        let (ga, wa) = (g.as_array(), w.as_array());
        let row = ga.zip(wa).and_then(|(ga, wa)| {
            let i = ga.iter().zip(wa).position(|(a, b)| a != b)?;
            Some((i, ga[i].clone(), wa[i].clone()))
        });
        panic!(
            "{when}: `{key}` differs ({:?} rows, expected {:?}); first differing row: {row:?}",
            ga.map(Vec::len),
            wa.map(Vec::len)
        );
    }
}

#[test]
fn reads_answer_the_same_from_memory_from_the_history_store_and_after_a_restart() {
    let hook = Webhook::start(0);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, _) = customer(&server, "H1", &hook.url(), 1);
    let mut msgs: Vec<Value> = (0..30).map(|i| sms(&format!("h{i}"))).collect();
    msgs[3]["to"] = json!("01099998888");
    msgs[17]["to"] = json!("01099998888");
    let (s, r) = server.call(
        "POST",
        "/v1/messages",
        Some(&token),
        Some(&json!({ "messages": msgs })),
    );
    assert_eq!(s, 200, "{r}");
    let ids: Vec<String> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["message_id"].as_str().expect("accepted").to_string())
        .collect();
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    std::thread::sleep(REPORT_SETTLE + Duration::from_millis(100));
    let early = answers(&server, &token, &ids);
    assert_eq!(early["history"].as_array().map(Vec::len), Some(30),);
    assert_eq!(early["filtered"].as_array().map(Vec::len), Some(2),);
    assert_eq!(early["reports"].as_array().map(Vec::len), Some(30));
    assert_eq!(
        early["lookup"]["reports"].as_array().map(Vec::len),
        Some(30)
    );
    assert_eq!(early["by_src"][5]["message_id"], json!(ids[5]));

    wait_memory_empty(&server);
    same(
        &answers(&server, &token, &ids),
        &early,
        "from the history store",
    );
    server.wait_wal_synced();
    server.kill9();

    let server = Server::start(dir.path());
    same(
        &answers(&server, &token, &ids),
        &early,
        "right after a restart",
    );
    wait_memory_empty(&server);
    same(
        &answers(&server, &token, &ids),
        &early,
        "from the store after a restart",
    );
    let delivered = hook.hits().len();
    assert!(delivered >= 1, "reports went out");
}

#[test]
fn a_message_older_than_the_retention_is_404_and_out_of_every_listing() {
    let hook = Webhook::start(0);
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    let toml = "[reports]\nretention = \"4s\"\n[dedup]\nwindow = \"4s\"\n";
    std::fs::write(&config, toml).expect("config");
    let server = Server::start_with(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let (token, _) = customer(&server, "H2", &hook.url(), 1);
    let (s, r) = server.call(
        "POST",
        "/v1/messages",
        Some(&token),
        Some(&json!({"messages": [sms("old")]})),
    );
    assert_eq!(s, 200, "{r}");
    let sent = Instant::now();
    let id = r["results"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_status(&server, &token, &id, |s| s == "delivered");
    wait_memory_empty(&server);
    let (s, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
    assert_eq!((s, m["status"].as_str()), (200, Some("delivered")), "{m}");
    std::thread::sleep(
        Duration::from_secs(4).saturating_sub(sent.elapsed()) + Duration::from_millis(300),
    );
    let (s, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
    assert_eq!(s, 404, "past the retention: {m}");
    let (s, m) = server.call("GET", "/v1/messages?src_msg_id=old", Some(&token), None);
    assert_eq!(s, 404, "{m}");
    let (_, h) = server.call(
        "GET",
        "/v1/messages?since=2020-01-01T00:00:00Z",
        Some(&token),
        None,
    );
    assert_eq!(h["messages"], json!([]), "{h}");
    let (_, rp) = server.call("GET", "/v1/reports", Some(&token), None);
    assert_eq!(rp["reports"], json!([]), "{rp}");
}

/// The blocked list of `query`, once it has `n` rows (blocked messages
/// reach the history store on the next tick).
fn wait_blocked(server: &Server, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, b) = server.admin("GET", &format!("/blocked{query}"), None);
        assert_eq!(s, 200, "{b}");
        let rows = b["blocked"].as_array().expect("blocked").clone();
        if rows.len() >= n {
            assert_eq!(rows.len(), n, "{b}");
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "blocked list stays at {}: {b}",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn messages_blocked_by_a_policy_check_are_listed_with_code_and_reason_also_after_a_restart() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("B1");
    let _ = server.register_customer("B2");
    assert_eq!(server.admin("PUT", "/spam-keywords/대출", None).0, 200);
    let mut spam = sms("spam");
    spam["text"] = json!("저금리 대출 상담 010");
    let mut caller = sms("caller");
    caller["from"] = json!("0299999999");
    let mut invalid = sms("invalid");
    invalid["to"] = json!("12");
    let msgs = json!({"messages": [spam, caller, invalid, sms("fine")]});
    let (s, r) = server.call("POST", "/v1/messages", Some(&token), Some(&msgs));
    assert_eq!(s, 200, "{r}");
    let codes: Vec<u64> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["code"].as_u64().expect("code"))
        .collect();
    assert_eq!(codes, vec![3009, 3003, 3001, 1000], "{r}");

    let rows = wait_blocked(&server, "?customer=B1", 2);
    let spam_row = &rows[0];
    assert_eq!(spam_row["code"], 3009, "{spam_row}");
    assert_eq!(spam_row["group_code"], "B1");
    assert_eq!(spam_row["src_msg_id"], "spam");
    assert_eq!(spam_row["to"], "01012345678");
    assert_eq!(spam_row["excerpt"], "저금리 대출 상담 010");
    assert_eq!(spam_row["text_hash"].as_str().map(str::len), Some(64));
    assert!(
        spam_row["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{spam_row}"
    );
    assert!(spam_row["client_id"]
        .as_str()
        .is_some_and(|c| c.starts_with("c_")));
    assert_eq!(rows[1]["code"], 3003, "{}", rows[1]);
    assert_eq!(
        wait_blocked(&server, "?code=3009", 1)[0]["src_msg_id"],
        "spam"
    );
    assert!(wait_blocked(&server, "?customer=B2", 0).is_empty());
    // Paging: one row per page, the cursor resumes after it.
    let (_, first) = server.admin("GET", "/blocked?customer=B1&limit=1", None);
    let next = first["next"].as_str().expect("next").to_string();
    let (_, second) = server.admin(
        "GET",
        &format!("/blocked?customer=B1&limit=1&after={next}"),
        None,
    );
    assert_eq!(second["blocked"][0]["code"], 3003, "{second}");
    let (s, bad) = server.admin("GET", "/blocked?code=x", None);
    assert_eq!(s, 400, "{bad}");

    server.wait_wal_synced();
    server.kill9();
    let server = Server::start(dir.path());
    let again = wait_blocked(&server, "?customer=B1", 2);
    assert_eq!(again, rows, "the same list after a restart");
}

/// Runs `mcmp export` against `server`; its stdout.
fn export(server: &Server, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcmp"))
        .arg("export")
        .args(["--server", &server.addr.to_string()])
        .args(args)
        .env("MCMP_ADMIN_TOKEN", crate::harness::ADMIN)
        .output()
        .expect("run mcmp export");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mcmp export failed: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn export_writes_every_final_message_of_the_period_as_jsonl_or_csv() {
    let hook = Webhook::start(0);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, _) = customer(&server, "X1", &hook.url(), 1);
    let (other, _) = customer(&server, "X2", &hook.url(), 1);
    // Two requests: at most 1,000 messages each.
    let msgs: Vec<Value> = (0..1_000).map(|i| sms(&format!("x{i}"))).collect();
    let ids = crate::harness::send_accepted(&server, &token, msgs);
    let more = crate::harness::send_accepted(
        &server,
        &token,
        (0..500).map(|i| sms(&format!("y{i}"))).collect(),
    );
    let theirs = crate::harness::send_accepted(&server, &other, vec![sms("z")]);
    for id in ids.iter().chain(&more) {
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    wait_status(&server, &other, &theirs[0], |s| s == "delivered");
    let period = [
        "--since",
        "2020-01-01T00:00:00Z",
        "--until",
        "2100-01-01T00:00:00Z",
    ];

    let jsonl = export(&server, &[&period[..], &["--customer", "X1"]].concat());
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 1_500, "every message of X1, over two pages");
    let mut seen: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["message_id"].as_str())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 1_500, "each once");
    let done: Vec<&str> = rows.iter().filter_map(|r| r["done_at"].as_str()).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "in final-time order");
    let r = &rows[0];
    assert_eq!(
        (
            r["group_code"].as_str(),
            r["channel"].as_str(),
            r["class"].as_str()
        ),
        (Some("X1"), Some("SMS"), Some("realtime")),
        "{r}"
    );
    assert_eq!(
        (
            r["status"].as_str(),
            r["code"].as_u64(),
            r["parts"].as_u64()
        ),
        (Some("delivered"), Some(2000), Some(1)),
        "{r}"
    );
    assert!(
        r["price"].is_i64() && r["sender"] == "G_S_X101" && r["accepted_at"].is_string(),
        "{r}"
    );

    wait_memory_empty(&server);
    let csv = export(&server, &[&period[..], &["--format", "csv"]].concat());
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("message_id,src_msg_id,group_code,client_id,channel,class,carrier,sender,status,code,parts,price,accepted_at,done_at,origin_code")
    );
    assert_eq!(
        lines.count(),
        1_501,
        "both customers, from the history store"
    );
    // An empty period has the header only; bad input is a clear error.
    let none = export(
        &server,
        &[
            "--since",
            "2020-01-01T00:00:00Z",
            "--until",
            "2020-01-02T00:00:00Z",
            "--format",
            "csv",
        ],
    );
    assert_eq!(none.lines().count(), 1);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_mcmp"))
        .args([
            "export",
            "--server",
            &server.addr.to_string(),
            "--since",
            "yesterday",
            "--until",
            "now",
        ])
        .env("MCMP_ADMIN_TOKEN", crate::harness::ADMIN)
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// The WAL segment files of shard `shard`, sorted (named by first LSN).
fn segments(dir: &std::path::Path, shard: usize) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("wal").join(shard.to_string()))
        .expect("wal dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    names.sort();
    names
}

/// Waits until every shard whose WAL rolled over has deleted the segment
/// it started with (and at least one has).
fn wait_wal_retired(dir: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = "00000000000000000001.wal";
    let kept = |s| {
        let names = segments(dir, s);
        names.len() > 1 && names[0] == first
    };
    while kept(0) || kept(1) || (0..2).all(|s| segments(dir, s)[0] == first) {
        assert!(
            Instant::now() < deadline,
            "WAL not retired: {:?} {:?}",
            segments(dir, 0),
            segments(dir, 1)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn checkpoints_let_the_wal_go_and_every_restart_answers_the_same() {
    let hook = Webhook::start(0);
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    let toml = "[wal]\nsegment-size = \"64KiB\"\ncheckpoint-interval = \"300ms\"\n";
    std::fs::write(&config, toml).expect("config");
    let args = ["--config", config.to_str().expect("utf-8")];
    let server = Server::start_with(dir.path(), &args);
    let (token, _) = customer(&server, "K1", &hook.url(), 1);
    let mut ids = Vec::new();
    for batch in 0..3 {
        let msgs = (0..200)
            .map(|i| sms(&format!("h{}", batch * 200 + i)))
            .collect();
        ids.extend(crate::harness::send_accepted(&server, &token, msgs));
    }
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    wait_memory_empty(&server);
    wait_wal_retired(dir.path());
    let (_, st) = server.admin("GET", "/stats", None);
    assert!(st["checkpoint_age_seconds"].as_i64().is_some(), "{st}");
    std::thread::sleep(REPORT_SETTLE + Duration::from_millis(100));
    let sample: Vec<String> = ids.iter().step_by(20).cloned().collect();
    let before = answers(&server, &token, &sample);
    assert_eq!(before["history"].as_array().map(Vec::len), Some(600));
    server.kill9();

    let server = Server::start_with(dir.path(), &args);
    same(&answers(&server, &token, &sample), &before, "after kill -9");
    // The dedup keys came back from the checkpoint: a re-send is 3006
    // with the original id.
    let (s, r) = server.call(
        "POST",
        "/v1/messages",
        Some(&token),
        Some(&json!({"messages": [sms("h7")]})),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["results"][0]["code"], 3006, "{r}");
    assert_eq!(r["results"][0]["message_id"], json!(ids[7]), "{r}");
    assert!(server.terminate().success(), "clean shutdown");

    let server = Server::start_with(dir.path(), &args);
    same(
        &answers(&server, &token, &sample),
        &before,
        "after a clean shutdown",
    );
}

#[test]
fn kill_9_during_checkpoints_segment_deletions_and_partition_drops_loses_nothing() {
    let hook = Webhook::start(0);
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    // Checkpoints (and segment deletions) every 100 ms; history partitions
    // of 2 s, dropped 8 s after they end.
    let toml = "[wal]\nsegment-size = \"64KiB\"\ncheckpoint-interval = \"100ms\"\n\
                [reports]\nretention = \"8s\"\n[dedup]\nwindow = \"8s\"\n";
    std::fs::write(&config, toml).expect("config");
    let args = ["--config", config.to_str().expect("utf-8")];
    let server = Server::start_with(dir.path(), &args);
    let (token, _) = customer(&server, "C1", &hook.url(), 1);
    server.kill9();
    // (message id, src_msg_id, when its answer came)
    let mut accepted: Vec<(String, String, Instant)> = Vec::new();
    for cycle in 0..8 {
        let server = Server::start_with(dir.path(), &args);
        check_recent(&server, &token, &accepted, cycle);
        let msgs: Vec<Value> = (0..150).map(|i| sms(&format!("c{cycle}-{i}"))).collect();
        let ids = crate::harness::send_accepted(&server, &token, msgs);
        let now = Instant::now();
        for (i, id) in ids.into_iter().enumerate() {
            accepted.push((id, format!("c{cycle}-{i}"), now));
        }
        // Let it deliver, checkpoint, delete and drop for a while.
        std::thread::sleep(Duration::from_millis(300 + (cycle as u64 * 229) % 900));
        server.kill9();
    }
    let server = Server::start_with(dir.path(), &args);
    check_recent(&server, &token, &accepted, 8);
    // The last batch: every message ends delivered (its report says so:
    // reading it may already be past the 8 s retention on a loaded
    // machine), and a re-send is 3006 with the original id.
    let last = &accepted[accepted.len() - 150..];
    hook.wait(
        "a delivered report for every message of the last batch",
        |hits| {
            let delivered: std::collections::HashSet<String> = crate::webhook::reports(hits)
                .into_iter()
                .filter(|(r, _)| r["status"] == "delivered")
                .filter_map(|(r, _)| r["message_id"].as_str().map(str::to_string))
                .collect();
            last.iter().all(|(id, ..)| delivered.contains(id))
        },
    );
    let again: Vec<Value> = last.iter().map(|(_, src, _)| sms(src)).collect();
    let (s, r) = server.call(
        "POST",
        "/v1/messages",
        Some(&token),
        Some(&json!({ "messages": again })),
    );
    assert_eq!(s, 200, "{r}");
    for ((id, _, at), res) in last.iter().zip(r["results"].as_array().expect("results")) {
        let got = (res["code"].as_u64(), res["message_id"].as_str());
        // Past the 8 s window (a loaded machine) a re-send is new.
        if at.elapsed() < Duration::from_secs(6) || got.0 != Some(1000) {
            assert_eq!(got, (Some(3006), Some(id.as_str())));
        }
    }
    let first = "00000000000000000001.wal";
    assert!(
        (0..2).any(|s| segments(dir.path(), s)[0] != first),
        "segments were deleted along the way"
    );
}

/// Every message accepted less than 6 s ago (well within the 8 s
/// retention) answers; older ones may be gone, never wrong.
fn check_recent(
    server: &Server,
    token: &str,
    accepted: &[(String, String, Instant)],
    cycle: usize,
) {
    for (id, src, at) in accepted {
        let (s, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(token), None);
        if at.elapsed() < Duration::from_secs(6) {
            assert_eq!(s, 200, "cycle {cycle}: message {id} ({src}) lost: {m}");
        }
        if s == 200 {
            assert_eq!(
                m["src_msg_id"].as_str(),
                Some(src.as_str()),
                "cycle {cycle}: {m}"
            );
        } else {
            assert_eq!(s, 404, "cycle {cycle}: {m}");
        }
    }
}

#[test]
fn every_message_has_a_class_shown_as_priority_in_its_view_its_report_and_the_export() {
    let hook = Webhook::start(0);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, _) = customer(&server, "P2", &hook.url(), 1);
    let (s, b) = server.admin(
        "PUT",
        "/customers/P2/bill-codes/BULK",
        Some(json!({"class": "bulk"})),
    );
    assert_eq!(s, 200, "{b}");
    let (s, b) = server.admin(
        "PUT",
        "/customers/P2/bill-codes/X",
        Some(json!({"class": "urgent"})),
    );
    assert_eq!(s, 400, "{b}");
    let mut otp = sms("otp");
    otp["priority"] = json!("otp");
    let mut bulk = sms("bulk");
    bulk["bill_code"] = json!("BULK");
    let mut bad = sms("bad");
    bad["priority"] = json!("urgent");
    let msgs = json!({"messages": [otp, bulk, sms("plain"), bad]});
    let (s, r) = server.call("POST", "/v1/messages", Some(&token), Some(&msgs));
    assert_eq!(s, 200, "{r}");
    let results = r["results"].as_array().expect("results");
    assert_eq!(results[3]["code"], 3013, "{r}");
    assert!(
        results[3]["reason"]
            .as_str()
            .is_some_and(|t| t.contains("priority")),
        "{r}"
    );
    let expected = ["otp", "bulk", "realtime"];
    for (res, class) in results.iter().zip(expected) {
        let id = res["message_id"].as_str().expect("accepted");
        let m = wait_status(&server, &token, id, |s| s == "delivered");
        assert_eq!(m["priority"], class, "{m}");
    }
    let hits = hook.wait("three reports", |h| crate::webhook::reports(h).len() >= 3);
    let mut seen: Vec<String> = crate::webhook::reports(&hits)
        .iter()
        .map(|(r, _)| {
            format!(
                "{}:{}",
                r["src_msg_id"].as_str().unwrap_or(""),
                r["priority"].as_str().unwrap_or("")
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, vec!["bulk:bulk", "otp:otp", "plain:realtime"]);
    let csv = export(
        &server,
        &[
            "--since",
            "2020-01-01T00:00:00Z",
            "--until",
            "2100-01-01T00:00:00Z",
            "--format",
            "csv",
        ],
    );
    let mut classes: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(5))
        .collect();
    classes.sort_unstable();
    assert_eq!(classes, vec!["bulk", "otp", "realtime"]);
}

/// One batch; the code and `message_id` of each result.
fn send_codes(server: &Server, token: &str, msgs: Vec<Value>) -> Vec<(i64, String)> {
    crate::harness::post_batch(server, token, msgs)
        .iter()
        .map(|x| {
            let code = x["code"].as_i64().expect("code");
            (code, x["message_id"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Re-sends `srcs` and checks each is 3006 with its original id.
fn resend_is_3006(server: &Server, token: &str, srcs: &[usize], ids: &[String], when: &str) {
    let msgs = srcs.iter().map(|i| sms(&format!("f{i}"))).collect();
    for (i, (code, id)) in srcs.iter().zip(send_codes(server, token, msgs)) {
        assert_eq!((code, id.as_str()), (3006, ids[*i].as_str()), "f{i} {when}");
    }
}

#[test]
fn fingerprint_collisions_never_reject_a_new_message_and_a_resend_is_3006_from_memory_store_and_restart(
) {
    // Fingerprints made from 3 bits of the key: every key collides with
    // an eighth of the others, so every claim is confirmed against the
    // earlier messages (SPEC §2.1 3006, issue: bounded dedup keys).
    let hook = Webhook::start(0);
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    let toml = "[dedup]\nexact-for = \"1s\"\nfingerprint-bits = 3\n\
                [wal]\ncheckpoint-interval = \"300ms\"\n";
    std::fs::write(&config, toml).expect("config");
    let args = ["--config", config.to_str().expect("utf-8")];
    let server = Server::start_with(dir.path(), &args);
    let (token, _) = customer(&server, "FP1", &hook.url(), 1);
    let mut ids = Vec::new();
    for batch in 0..3 {
        let msgs = (0..100)
            .map(|i| sms(&format!("f{}", batch * 100 + i)))
            .collect();
        ids.extend(crate::harness::send_accepted(&server, &token, msgs));
    }
    assert_eq!(ids.len(), 300, "no new message was taken for a duplicate");
    // Within `exact-for`: answered from the exact keys.
    resend_is_3006(&server, &token, &[0, 150, 299], &ids, "at once");
    std::thread::sleep(Duration::from_millis(1200));
    // From the fingerprints, confirmed against the messages in memory; a
    // new key in the same batch is accepted.
    let mut msgs: Vec<Value> = (10..20).map(|i| sms(&format!("f{i}"))).collect();
    msgs.push(sms("f-new"));
    let got = send_codes(&server, &token, msgs);
    for (i, (code, id)) in (10..20).zip(&got) {
        assert_eq!((*code, id.as_str()), (3006, ids[i].as_str()), "f{i}");
    }
    assert_eq!(got[10].0, 1000, "a new key with a shared fingerprint");
    let (s, v) = server.call("GET", "/v1/messages?src_msg_id=f42", Some(&token), None);
    assert_eq!(
        (s, v["message_id"].as_str()),
        (200, Some(ids[42].as_str())),
        "{v}"
    );
    // From the history store once they have left memory.
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    wait_memory_empty(&server);
    resend_is_3006(&server, &token, &[1, 101, 201], &ids, "from the store");
    // After kill -9: the table comes back from the checkpoint and the WAL.
    server.kill9();
    let server = Server::start_with(dir.path(), &args);
    resend_is_3006(&server, &token, &[2, 102, 202, 298], &ids, "after kill -9");
}
