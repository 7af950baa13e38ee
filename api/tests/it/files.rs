//! Media files (SPEC §5.10, issue 19): uploads in both forms, limits and
//! their error codes, the owner-only read, durability across `kill -9`,
//! messages that name a file (3015 when it is not usable), RCS
//! registration with the provider simulator and the signed file report.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::harness::{data_dir, post_batch, raw_request, Server};
use crate::routing::wait_status;
use crate::sims::Sim;
use crate::transports::provider;
use crate::webhook::{reports, Webhook};

/// A tiny JPEG-looking image of `len` bytes (the magic, then filler).
pub(crate) fn jpeg(len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    b.resize(len.max(4), 0x42);
    b
}

/// A tiny PNG-looking image of `len` bytes.
fn png(len: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.resize(len.max(8), 0x42);
    b
}

/// `POST /v1/files` in the JSON form; returns the status and body.
pub(crate) fn upload_json(
    server: &Server,
    token: &str,
    channel: &str,
    content_type: &str,
    data: &[u8],
) -> (u16, Value) {
    let body = json!({"channel": channel, "name": "img", "content_type": content_type,
                      "data": STANDARD.encode(data)});
    server.call("POST", "/v1/files", Some(token), Some(&body))
}

/// `POST /v1/files` as `multipart/form-data`; returns the status and body.
fn upload_multipart(
    server: &Server,
    token: &str,
    channel: &str,
    filename: &str,
    part_type: &str,
    data: &[u8],
) -> (u16, Value) {
    let b = "mcmpTestBoundary7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\n{channel}\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: {part_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={b}");
    let (s, bytes) = raw_request(
        server.addr,
        "POST",
        "/v1/files",
        Some(token),
        &content_type,
        &body,
    );
    (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Uploads and asserts 201; returns the file id.
pub(crate) fn uploaded(server: &Server, token: &str, channel: &str, data: &[u8]) -> String {
    let (s, v) = upload_json(server, token, channel, "image/jpeg", data);
    assert_eq!(s, 201, "{v}");
    v["file_id"].as_str().expect("file_id").to_string()
}

/// `GET /v1/files/{id}`.
pub(crate) fn get_file(server: &Server, token: &str, id: &str) -> (u16, Value) {
    server.call("GET", &format!("/v1/files/{id}"), Some(token), None)
}

/// Enables `channels` for `g` and routes each to sender group `<g>_GRP`.
fn enable_and_route(server: &Server, g: &str, channels: &[&str]) {
    let map: serde_json::Map<String, Value> = channels
        .iter()
        .map(|c| (c.to_string(), json!({"enabled": true, "tps": 0})))
        .collect();
    let (s, v) = server.admin(
        "PUT",
        &format!("/customers/{g}/services"),
        Some(json!({ "channels": map })),
    );
    assert_eq!(s, 200, "{v}");
    for c in channels {
        let rule = json!({"carriers": {"*": [{"sender_group": format!("{g}_GRP"), "ratio": 1}]}});
        let (s, v) = server.admin("PUT", &format!("/routes/{g}/{c}"), Some(rule));
        assert_eq!(s, 200, "{v}");
    }
}

/// An `http` sender of group `<g>_GRP` for `channel` with `profile`,
/// posting to the provider simulator.
fn http_sender(server: &Server, g: &str, name: &str, channel: &str, profile: &str, provider: &Sim) {
    let addr = provider.addr("provider");
    let body = json!({"group": format!("{g}_GRP"), "channels": [channel], "carriers": ["*"],
        "transport": {"type": "http", "url": format!("http://{addr}/send"), "profile": profile,
                      "timeout_ms": 5000}});
    let (s, v) = server.admin("PUT", &format!("/senders/{name}"), Some(body));
    assert!(s == 200 || s == 201, "{s} {v}");
}

/// An MMS naming `file_ids`.
fn mms(src: &str, file_ids: &[&str]) -> Value {
    let attachments: Vec<Value> = file_ids.iter().map(|f| json!({"file_id": f})).collect();
    json!({"src_msg_id": src, "channel": "MMS", "bill_code": "B1", "from": "0212345678",
           "to": "01012345678", "text": format!("photo {src}"), "subject": "photo",
           "attachments": attachments})
}

/// An RCS message naming `file_id`.
pub(crate) fn rcs(src: &str, file_id: &str) -> Value {
    json!({"src_msg_id": src, "channel": "RCS", "bill_code": "B1", "from": "0212345678",
           "to": "01012345678", "text": format!("card {src}"),
           "attachments": [{"file_id": file_id}]})
}

/// Polls the provider's stats until `pred` holds.
fn wait_stats(provider: &Sim, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stats = provider.get("provider", "/stats");
        if pred(&stats) {
            return stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "provider never saw {what}: {stats}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn an_mms_file_reaches_the_provider_with_an_mms_message_over_the_mms_profile() {
    let provider = provider(&["--report-delay-ms", "5"]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("FM1");
    enable_and_route(&server, "FM1", &["MMS"]);
    http_sender(&server, "FM1", "G_M_PROV01", "MMS", "mms", &provider);
    let file = uploaded(&server, &token, "MMS", &jpeg(150_000));

    let results = post_batch(&server, &token, vec![mms("m-1", &[&file])]);
    assert_eq!(results[0]["code"], 1000, "{}", results[0]);
    let id = results[0]["message_id"].as_str().expect("id");
    let m = wait_status(&server, &token, id, |s| s == "delivered");
    assert_eq!(m["sender"], "G_M_PROV01", "{m}");
    let stats = wait_stats(&provider, "the image", |s| s["images_received"] == 1);
    assert_eq!(stats["image_bytes"], 150_000, "{stats}");
    assert_eq!(stats["by_channel"]["MMS"]["sent"], 1, "{stats}");
}

#[test]
fn messages_naming_an_unusable_file_are_rejected_3015() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("FU1");
    let other = server.register_customer("FU2");
    enable_and_route(&server, "FU1", &["MMS", "RCS"]);
    let mine = uploaded(&server, &token, "MMS", &jpeg(1000));
    let theirs = uploaded(&server, &other, "MMS", &jpeg(1000));
    // No RCS sender to register it with: it is not usable.
    let (s, v) = upload_json(&server, &token, "RCS", "image/jpeg", &jpeg(1000));
    assert_eq!(s, 201, "{v}");
    let rcs_file = v["file_id"].as_str().expect("id").to_string();

    let results = post_batch(
        &server,
        &token,
        vec![
            mms("u-1", &[&theirs]),
            mms("u-2", &["0123456789abcdef01234567"]),
            mms("u-3", &["not-an-id"]),
            rcs("u-4", &mine),
            rcs("u-5", &rcs_file),
            mms("u-6", &[&mine]),
        ],
    );
    for r in &results[..5] {
        assert_eq!(r["status"], "rejected", "{r}");
        assert_eq!(r["code"], 3015, "{r}");
        assert!(
            r["reason"]
                .as_str()
                .is_some_and(|t| t.starts_with("file not usable")),
            "{r}"
        );
    }
    assert_eq!(
        results[5]["code"], 1000,
        "its own MMS file is usable: {}",
        results[5]
    );
}

#[test]
fn uploads_in_json_and_multipart_are_stored_and_read_by_their_owner_only() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("F1");
    let other = server.register_customer("F2");

    let (s, v) = upload_json(&server, &token, "MMS", "image/jpeg", &jpeg(1000));
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["status"], "registered",
        "an MMS file needs no registration: {v}"
    );
    let mms = v["file_id"].as_str().expect("id").to_string();

    let (s, v) = upload_multipart(&server, &token, "RCS", "card.png", "image/png", &png(5000));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "registering", "{v}");
    let rcs = v["file_id"].as_str().expect("id").to_string();

    let (s, v) = get_file(&server, &token, &mms);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["channel"], "MMS");
    assert_eq!(v["size"], 1000);
    assert_eq!(v["content_type"], "image/jpeg");
    assert_eq!(v["status"], "registered");
    let (s, v) = get_file(&server, &token, &rcs);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "card.png");
    assert_eq!(v["content_type"], "image/png");
    assert_eq!(v["size"], 5000);

    // Another customer, or no such id: 404, the same answer.
    for id in [
        &mms,
        &rcs,
        &"0123456789abcdef01234567".to_string(),
        &"../x".to_string(),
    ] {
        let (s, v) = get_file(&server, &other, id);
        assert_eq!(s, 404, "{id}: {v}");
        assert_eq!(v["error"]["code"], "not_found");
    }
}

#[test]
fn oversize_and_wrong_type_uploads_get_413_and_400_with_a_clear_code() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("F3");
    let code = |(s, v): (u16, Value)| (s, v["error"]["code"].as_str().unwrap_or("?").to_string());

    // Size limits: MMS 300 KB, RCS 1 MiB (both exactly at the limit pass).
    assert_eq!(
        upload_json(&server, &token, "MMS", "image/jpeg", &jpeg(300 * 1024)).0,
        201
    );
    let big_mms = upload_json(&server, &token, "MMS", "image/jpeg", &jpeg(300 * 1024 + 1));
    assert_eq!(code(big_mms), (413, "file_too_large".into()));
    assert_eq!(
        upload_json(&server, &token, "RCS", "image/jpeg", &jpeg(1 << 20)).0,
        201
    );
    let big_rcs = upload_multipart(
        &server,
        &token,
        "RCS",
        "a.jpg",
        "image/jpeg",
        &jpeg((1 << 20) + 1),
    );
    assert_eq!(code(big_rcs), (413, "file_too_large".into()));
    let huge = upload_json(&server, &token, "RCS", "image/jpeg", &jpeg(3 << 20));
    assert_eq!(huge.0, 413, "{}", huge.1);

    // Types: MMS takes JPEG only; RCS JPEG/PNG/GIF; the bytes must match.
    let png_mms = upload_json(&server, &token, "MMS", "image/png", &png(100));
    assert_eq!(code(png_mms), (400, "unsupported_file_type".into()));
    let text = upload_multipart(&server, &token, "RCS", "a.txt", "text/plain", b"hello");
    assert_eq!(code(text), (400, "unsupported_file_type".into()));
    let lying = upload_json(&server, &token, "RCS", "image/png", &jpeg(100));
    assert_eq!(code(lying), (400, "file_content_mismatch".into()));
    let sms = upload_json(&server, &token, "SMS", "image/jpeg", &jpeg(100));
    assert_eq!(code(sms), (400, "invalid_channel".into()));
    let empty = upload_json(&server, &token, "MMS", "image/jpeg", b"");
    assert_eq!(code(empty), (400, "empty_file".into()));

    // Bad input: not base64, unknown field, a form without a file part.
    let body = json!({"channel": "MMS", "data": "%%%"});
    let not_b64 = server.call("POST", "/v1/files", Some(&token), Some(&body));
    assert_eq!(code(not_b64), (400, "invalid_base64".into()));
    let body = json!({"channel": "MMS", "data": "", "colour": "red"});
    let unknown = server.call("POST", "/v1/files", Some(&token), Some(&body));
    assert_eq!(code(unknown), (400, "unknown_field".into()));
    let form = b"--b\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nMMS\r\n--b--\r\n";
    let (s, b) = raw_request(
        server.addr,
        "POST",
        "/v1/files",
        Some(&token),
        "multipart/form-data; boundary=b",
        form,
    );
    let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (400, json!("invalid_request")),
        "{v}"
    );
    let broken = raw_request(
        server.addr,
        "POST",
        "/v1/files",
        Some(&token),
        "multipart/form-data; boundary=b",
        b"--b\r\nnope",
    );
    assert_eq!(broken.0, 400);
}

#[test]
fn a_file_survives_kill_9_once_its_upload_was_answered() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("F4");
    let data = jpeg(200 * 1024);
    let mms = uploaded(&server, &token, "MMS", &data);
    let (s, rcs) = upload_json(&server, &token, "RCS", "image/jpeg", &jpeg(70_000));
    assert_eq!(s, 201, "{rcs}");
    let rcs = rcs["file_id"].as_str().expect("id").to_string();
    server.kill9();

    let server = Server::start(dir.path());
    let (s, v) = get_file(&server, &token, &mms);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "registered");
    assert_eq!(v["size"], 200 * 1024);
    let (s, v) = get_file(&server, &token, &rcs);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["size"], 70_000);
    let stored = std::fs::read(dir.path().join("files").join(format!("{mms}.data")));
    assert_eq!(stored.expect("bytes on disk"), data);
}

/// The file reports among the webhook's hits.
fn file_reports(hook: &Webhook) -> Vec<Value> {
    reports(&hook.hits())
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| r["type"] == "file")
        .collect()
}

/// A customer `g` whose client reports to `hook`, with RCS routed to an
/// `http` sender (profile `rcs`) posting to `provider`; (token, secret).
fn rcs_customer(server: &Server, g: &str, hook: &Webhook, provider: &Sim) -> (String, String) {
    let (token, secret) = crate::reports::customer(server, g, &hook.url(), 1);
    enable_and_route(server, g, &["RCS"]);
    http_sender(server, g, &format!("G_R_{g}01"), "RCS", "rcs", provider);
    (token, secret)
}

#[test]
fn an_rcs_file_is_registered_reported_once_signed_and_carried_by_100_rcs_messages() {
    let provider = provider(&["--report-delay-ms", "5", "--file-delay-ms", "200"]);
    let hook = Webhook::start(0);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, secret) = rcs_customer(&server, "FR1", &hook, &provider);
    let (s, v) = upload_multipart(
        &server,
        &token,
        "RCS",
        "card.png",
        "image/png",
        &png(40_000),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "registering");
    let file = v["file_id"].as_str().expect("id").to_string();

    let hits = hook.wait("the file report", |h| {
        reports(h).iter().any(|(r, _)| r["type"] == "file")
    });
    let hit = hits
        .iter()
        .find(|h| h.body["reports"][0]["type"] == "file")
        .expect("hit");
    let expected = format!(
        "sha256={}",
        mcmp_api::auth::hmac_sha256_hex(secret.as_bytes(), &hit.raw)
    );
    assert_eq!(hit.signature, expected, "the file report is signed");
    let report = &hit.body["reports"][0];
    assert_eq!(report["file_id"], file.as_str(), "{report}");
    assert_eq!(report["status"], "registered", "{report}");
    assert_eq!(report["code"], 2000, "{report}");
    assert!(report["expires_at"].as_str().is_some(), "{report}");

    let (s, v) = get_file(&server, &token, &file);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "registered", "{v}");
    let provider_id = v["provider_file_id"]
        .as_str()
        .expect("provider id")
        .to_string();
    assert_eq!(v["expires_at"], report["expires_at"], "{v}");
    assert_eq!(v["sender"], "G_R_FR101", "{v}");

    let msgs: Vec<Value> = (0..100).map(|i| rcs(&format!("card-{i}"), &file)).collect();
    let results = post_batch(&server, &token, msgs);
    assert!(results.iter().all(|r| r["code"] == 1000), "{results:?}");
    let stats = wait_stats(&provider, "100 messages naming the file", |s| {
        s["by_file_id"][&provider_id] == 100
    });
    assert_eq!(stats["by_channel"]["RCS"]["sent"], 100, "{stats}");
    assert_eq!(stats["files_registered"], 1, "{stats}");
    for r in &results {
        let id = r["message_id"].as_str().expect("id");
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    // Every message's report came, and still one file report.
    hook.wait("100 message reports", |h| {
        reports(h)
            .iter()
            .filter(|(r, _)| r["type"] != "file")
            .count()
            >= 100
    });
    assert_eq!(file_reports(&hook).len(), 1, "the file is reported once");
}

#[test]
fn a_file_the_provider_refuses_fails_with_its_code_and_messages_naming_it_get_3015() {
    let provider = provider(&["--file-fail-rate", "1"]);
    let hook = Webhook::start(0);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, _) = rcs_customer(&server, "FR2", &hook, &provider);
    let bad = json!({"group": "X", "channels": ["RCS"], "carriers": ["*"],
        "transport": {"type": "http", "url": "http://127.0.0.1:1/send", "profile": "rcs",
                      "file_url": "ftp://media.example/files"}});
    let (s, v) = server.admin("PUT", "/senders/G_R_BAD01", Some(bad));
    assert_eq!(s, 400, "a file_url must be an http:// URL: {v}");
    let file = uploaded(&server, &token, "RCS", &jpeg(5_000));
    hook.wait("the file report", |h| {
        reports(h).iter().any(|(r, _)| r["type"] == "file")
    });
    let report = file_reports(&hook).remove(0);
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(
        report["code"], 5003,
        "R415 is a rejection by the carrier: {report}"
    );
    assert_eq!(report["provider_code"], "R415", "{report}");
    let (s, v) = get_file(&server, &token, &file);
    assert_eq!(s, 200);
    assert_eq!(
        (v["status"].clone(), v["code"].clone()),
        (json!("failed"), json!(5003)),
        "{v}"
    );

    let results = post_batch(&server, &token, vec![rcs("refused-1", &file)]);
    assert_eq!(results[0]["code"], 3015, "{}", results[0]);
    let stats = provider.get("provider", "/stats");
    assert_eq!(stats["files_refused"], 1, "{stats}");
    assert_eq!(
        stats["by_channel"]["RCS"],
        Value::Null,
        "no message reached the provider: {stats}"
    );
}

#[test]
fn an_rcs_file_registering_at_kill_9_is_registered_and_reported_after_the_restart() {
    let provider = provider(&["--file-delay-ms", "1500"]);
    let hook = Webhook::start(0);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, _) = rcs_customer(&server, "FR3", &hook, &provider);
    let file = uploaded(&server, &token, "RCS", &jpeg(5_000));
    server.kill9();

    let server = Server::start(dir.path());
    hook.wait("the file report", |h| {
        reports(h).iter().any(|(r, _)| r["type"] == "file")
    });
    let report = file_reports(&hook).remove(0);
    assert_eq!(report["status"], "registered", "{report}");
    let (_, v) = get_file(&server, &token, &file);
    assert_eq!(v["status"], "registered", "{v}");
    let results = post_batch(&server, &token, vec![rcs("after-restart", &file)]);
    assert_eq!(results[0]["code"], 1000, "{}", results[0]);
}

#[test]
fn files_are_deleted_at_expiry_or_retention_whichever_is_later() {
    let provider = provider(&["--file-expiry-secs", "10"]);
    let hook = Webhook::start(0);
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    let toml = "[reports]\nretention = \"3s\"\n[dedup]\nwindow = \"3s\"\n";
    std::fs::write(&config, toml).expect("config");
    let server = Server::start_with(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let (token, _) = rcs_customer(&server, "FD1", &hook, &provider);
    let mms = uploaded(&server, &token, "MMS", &jpeg(1000));
    let rcs_file = uploaded(&server, &token, "RCS", &jpeg(1000));
    hook.wait("the file report", |h| {
        reports(h).iter().any(|(r, _)| r["type"] == "file")
    });
    let gone = |id: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while get_file(&server, &token, id).0 != 404 {
            assert!(
                std::time::Instant::now() < deadline,
                "{id} was never deleted"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!dir.path().join("files").join(format!("{id}.data")).exists());
    };
    // The MMS file has no expiry: it goes with the retention (3 s)...
    gone(&mms);
    // ...while the RCS file is kept until its provider's expiry (10 s).
    let (s, v) = get_file(&server, &token, &rcs_file);
    assert_eq!((s, v["status"].clone()), (200, json!("registered")), "{v}");
    gone(&rcs_file);
    let results = post_batch(&server, &token, vec![rcs("after-delete", &rcs_file)]);
    assert_eq!(results[0]["code"], 3015, "{}", results[0]);
}

/// Files count toward disk: below `wal.min-free` an upload is refused like
/// a message (503 `storage_full`), and nothing is stored.
#[test]
fn uploads_are_refused_with_storage_full_below_min_free() {
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    std::fs::write(&config, "[wal]\nmin-free = \"1000000000GiB\"\n").expect("config");
    let server = Server::start_with(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let token = server.register_customer("FS1");
    let (s, v) = upload_json(&server, &token, "MMS", "image/jpeg", &jpeg(1000));
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (503, json!("storage_full")),
        "{v}"
    );
    let stored = std::fs::read_dir(dir.path().join("files"))
        .expect("files dir")
        .count();
    assert_eq!(stored, 0);
}

/// A provider that cannot be reached hands the file to the route's next
/// `rcs` sender.
#[test]
fn registration_goes_to_the_next_rcs_sender_when_the_first_is_unreachable() {
    let provider = provider(&[]);
    let hook = Webhook::start(0);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, _) = crate::reports::customer(&server, "FF1", &hook.url(), 1);
    enable_and_route(&server, "FF1", &["RCS"]);
    // Senders of a group are taken in name order: the dead one first.
    let dead = json!({"group": "FF1_GRP", "channels": ["RCS"], "carriers": ["*"],
        "transport": {"type": "http", "url": "http://127.0.0.1:1/send", "profile": "rcs",
                      "timeout_ms": 1000}});
    let (s, v) = server.admin("PUT", "/senders/G_R_FF1A01", Some(dead));
    assert!(s == 200 || s == 201, "{s} {v}");
    http_sender(&server, "FF1", "G_R_FF1B01", "RCS", "rcs", &provider);
    let file = uploaded(&server, &token, "RCS", &jpeg(2_000));
    hook.wait("the file report", |h| {
        reports(h).iter().any(|(r, _)| r["type"] == "file")
    });
    let (_, v) = get_file(&server, &token, &file);
    assert_eq!(v["status"], "registered", "{v}");
    assert_eq!(v["sender"], "G_R_FF1B01", "{v}");
}
