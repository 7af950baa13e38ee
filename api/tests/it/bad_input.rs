//! Bad input gets the SPEC's errors and never stops the server from serving
//! everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, raw_request, send_raw, sms, Server};

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["code"]
        .as_str()
        .unwrap_or("<no error code>")
        .to_string()
}

fn post(server: &Server, token: &str, body: &[u8]) -> (u16, String) {
    let (s, b) = raw_request(
        server.addr,
        "POST",
        "/v1/messages",
        Some(token),
        "application/json",
        body,
    );
    (s, error_code(&b))
}

#[test]
fn malformed_requests_get_400_with_a_machine_code() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    let mut unknown = sms("u");
    unknown["txet"] = json!("typo");
    let mut wrong_type = sms("w");
    wrong_type["ad"] = json!("yes");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed JSON",
            b"{\"messages\": [".to_vec(),
            "invalid_json",
        ),
        (
            "unknown field",
            unknown.to_string().into_bytes(),
            "unknown_field",
        ),
        (
            "unknown wrapper field",
            json!({"messages": [sms("a")], "extra": 1})
                .to_string()
                .into_bytes(),
            "unknown_field",
        ),
        (
            "wrong type",
            wrong_type.to_string().into_bytes(),
            "invalid_type",
        ),
        (
            "invalid UTF-8",
            b"{\"src_msg_id\":\"\xff\xfe\"}".to_vec(),
            "invalid_utf8",
        ),
        (
            "empty batch",
            json!({"messages": []}).to_string().into_bytes(),
            "empty_batch",
        ),
    ];
    for (what, body, code) in cases {
        let (s, c) = post(&server, &token, &body);
        assert_eq!((s, c.as_str()), (400, code), "{what}");
    }
    // 1,000 messages are fine, 1,001 are not.
    let batch =
        |n: usize| json!({"messages": (0..n).map(|i| sms(&format!("m{i}"))).collect::<Vec<_>>()});
    let (s, _) = server.call("POST", "/v1/messages", Some(&token), Some(&batch(1000)));
    assert_eq!(s, 200);
    let (s, c) = post(&server, &token, batch(1001).to_string().as_bytes());
    assert_eq!((s, c.as_str()), (400, "too_many_messages"));
    // Per-message content errors are results, not request failures.
    let mut no_to = sms("n");
    no_to.as_object_mut().expect("object").remove("to");
    let mut bad_to = sms("t");
    bad_to["to"] = json!("12345");
    let (s, r) = server.call(
        "POST",
        "/v1/messages",
        Some(&token),
        Some(&json!({"messages": [no_to, bad_to]})),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["results"][0]["code"], 3013);
    assert_eq!(r["results"][1]["code"], 3001);
    // Still serving.
    let (s, _) = server.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
}

#[test]
fn oversize_body_is_413() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    // Declared too large: refused before reading.
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        17 << 20
    );
    let (s, b) = send_raw(server.addr, head.as_bytes());
    assert_eq!((s, error_code(&b).as_str()), (413, "payload_too_large"));
    // Really too large, chunked (no length declared).
    let chunk = vec![b' '; 1 << 20];
    let mut req = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..17 {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (s, _) = send_raw(server.addr, &req);
    assert_eq!(s, 413);
    let (s, _) = server.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
}

#[test]
fn missing_or_invalid_tokens_are_401() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("A1");
    let body = sms("x");
    let (s, v) = server.call("POST", "/v1/messages", None, Some(&body));
    assert_eq!(s, 401, "{v}");
    let (s, _) = server.call("POST", "/v1/messages", Some("not-a-jwt"), Some(&body));
    assert_eq!(s, 401);
    // A token signed with another key.
    let mut forged: Vec<&str> = token.split('.').collect();
    forged[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (s, _) = server.call("POST", "/v1/messages", Some(&forged.join(".")), Some(&body));
    assert_eq!(s, 401);
    // Wrong client credentials.
    let creds =
        json!({"grant_type": "client_credentials", "client_id": "c_nope", "client_secret": "x"});
    let (s, v) = server.call("POST", "/oauth/token", None, Some(&creds));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_client"))
    );
    // Admin API without the admin token.
    let (s, _) = server.call("GET", "/admin/v1/customers", Some(&token), None);
    assert_eq!(s, 401);
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off_and_others_are_served() {
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    std::fs::write(&config, "[server]\nheader-read-timeout = \"1s\"\n").expect("write config");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
    );
    let mut slow = TcpStream::connect(server.addr).expect("connect");
    slow.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
        .expect("partial head");
    let started = Instant::now();
    // Meanwhile everyone else is served.
    for _ in 0..5 {
        let (s, _) = server.call("GET", "/healthz", None, None);
        assert_eq!(s, 200);
    }
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "slow connection was not closed (waited {waited:?})"
    );
    let (s, _) = server.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
}

/// A GET whose head carries a header of `pad` bytes, on a keep-alive
/// connection; returns what the server sent until it closed, and whether
/// it did close (rather than the read timing out).
fn padded_get(server: &Server, pad: usize, path: &str) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(pad)
    );
    // The server may answer and close before it has read everything.
    let _ = s.write_all(head.as_bytes());
    let mut resp = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (resp, true),
            Ok(n) => resp.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (resp, true),
            Err(_) => return (resp, false),
        }
        // A served keep-alive request stays open: stop at its full answer.
        if resp.starts_with(b"HTTP/1.1 200") && resp.ends_with(b"}") {
            return (resp, false);
        }
    }
}

#[test]
fn a_request_head_over_max_head_gets_431_and_the_connection_closes() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    // Within the default 16 KiB: served, and the connection stays open.
    let (resp, closed) = padded_get(&server, 12 * 1024, "/healthz");
    assert!(
        resp.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    assert!(!closed);
    // Over it (the 200 KB header, and just over the limit).
    for pad in [200 * 1024, 17 * 1024] {
        let (resp, closed) = padded_get(&server, pad, "/healthz");
        assert!(
            resp.starts_with(b"HTTP/1.1 431"),
            "{pad}: {}",
            String::from_utf8_lossy(&resp)
        );
        assert!(closed, "{pad}: the connection stayed open");
    }
    let (s, _) = server.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
}
