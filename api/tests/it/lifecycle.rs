//! Start-up, readiness, the admin token file, admin rows and graceful
//! shutdown.

use serde_json::json;

use crate::harness::{data_dir, sms, Server};

#[test]
fn sigterm_drains_and_exits_zero_and_data_survives() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (s, _) = server.call("GET", "/readyz", None, None);
    assert_eq!(s, 200);
    let token = server.register_customer("A1");
    server.hold_sms("A1");
    let (_, r) = server.call("POST", "/v1/messages", Some(&token), Some(&sms("s1")));
    let id = r["results"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_string();
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let server = Server::start(dir.path());
    let (s, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(&token), None);
    assert_eq!((s, m["status"].as_str()), (200, Some("accepted")));
}

#[test]
fn admin_rows_round_trip_and_validate() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (s, _) = server.admin(
        "PUT",
        "/customers/A000005",
        Some(json!({"name": "Acme", "prepaid": true, "balance": 5000})),
    );
    assert_eq!(s, 201);
    let (s, _) = server.admin(
        "PUT",
        "/customers/A000005",
        Some(json!({"name": "Acme Corp"})),
    );
    assert_eq!(s, 200);
    let (s, v) = server.admin(
        "PUT",
        "/customers/A000005",
        Some(json!({"name": "x", "nmae": "typo"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("unknown_field"))
    );
    let (s, v) = server.admin(
        "PUT",
        "/customers/A000005/services",
        Some(json!({"channels": {"FAX": {"enabled": true}}})),
    );
    assert_eq!(s, 400, "{v}");
    let (s, _) = server.admin(
        "PUT",
        "/customers/NOPE/services",
        Some(json!({"channels": {}})),
    );
    assert_eq!(s, 404);
    let (s, _) = server.admin("PUT", "/customers/A000005/caller-ids/abc", None);
    assert_eq!(s, 400);
    let (s, c) = server.admin(
        "POST",
        "/customers/A000005/clients",
        Some(json!({"report_uri": "https://example.test/r"})),
    );
    assert_eq!(s, 201);
    let client_id = c["client_id"].as_str().expect("client_id");
    assert!(c["client_secret"].as_str().is_some_and(|s| s.len() >= 16));
    let (s, list) = server.admin("GET", "/customers/A000005/clients", None);
    assert_eq!(s, 200);
    assert_eq!(list["clients"][0]["client_id"], client_id);
    assert!(
        list["clients"][0].get("client_secret").is_none(),
        "secrets are never shown again"
    );
    let (s, _) = server.admin(
        "PATCH",
        &format!("/customers/A000005/clients/{client_id}"),
        Some(json!({"report_uri": "http://127.0.0.1:1/x"})),
    );
    assert_eq!(s, 200);
    let (s, v) = server.admin("GET", "/customers/A000005", None);
    assert_eq!(s, 200);
    assert_eq!(v["name"], "Acme Corp");
    assert_eq!(v["clients"][0]["report_uri"], "http://127.0.0.1:1/x");
    // Survives restart.
    server.kill9();
    let server = Server::start(dir.path());
    let (s, v) = server.admin("GET", "/customers", None);
    assert_eq!(s, 200);
    assert_eq!(v["customers"][0]["group_code"], "A000005");
    let (s, _) = server.admin(
        "DELETE",
        &format!("/customers/A000005/clients/{client_id}"),
        None,
    );
    assert_eq!(s, 204);
    let (s, _) = server.admin("DELETE", "/customers/A000005", None);
    assert_eq!(s, 204);
    let (s, _) = server.admin("GET", "/customers/A000005", None);
    assert_eq!(s, 404);
}

/// SPEC §5.5: the server keeps the admin token hashed; `admin.token` is
/// the operator's copy, which may be deleted.
#[test]
fn a_generated_admin_token_is_kept_hashed_and_works_once_its_file_is_deleted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = data_dir();
    let server = Server::start_without_admin_token(dir.path(), &[]);
    let token = std::fs::read_to_string(dir.path().join("admin.token")).expect("admin.token");
    let hash_path = dir.path().join("admin.token.sha256");
    let hash = std::fs::read_to_string(&hash_path).expect("admin.token.sha256");
    assert_eq!(hash, mcmp_engine::secrets::SecretHash::of(&token).to_hex());
    let mode = std::fs::metadata(&hash_path)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let get = |server: &Server, token: &str| {
        server
            .call("GET", "/admin/v1/customers", Some(token), None)
            .0
    };
    assert_eq!(get(&server, &token), 200);
    assert_eq!(get(&server, "not-the-token"), 401);
    drop(server);
    std::fs::remove_file(dir.path().join("admin.token")).expect("rm");
    let server = Server::start_without_admin_token(dir.path(), &[]);
    assert_eq!(
        get(&server, &token),
        200,
        "the hash alone lets the token in"
    );
    assert!(
        !dir.path().join("admin.token").exists(),
        "no new token made"
    );
    drop(server);
    // The configuration may hold the token's hash instead of the token.
    let config = dir.path().join("mcmp.toml");
    let vault = mcmp_engine::secrets::SecretHash::of("from-the-vault").to_hex();
    std::fs::write(&config, format!("[admin]\ntoken-sha256 = \"{vault}\"\n")).expect("config");
    let server = Server::start_without_admin_token(
        dir.path(),
        &["--config", config.to_str().expect("utf-8")],
    );
    assert_eq!(get(&server, "from-the-vault"), 200);
    assert_eq!(get(&server, &token), 401);
}

#[test]
fn a_generated_admin_token_is_stored_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = data_dir();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcmp"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("MCMP_ADMIN_TOKEN")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let path = dir.path().join("admin.token");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(&path).map_or(true, |t| t.is_empty()) {
        assert!(
            std::time::Instant::now() < deadline,
            "admin.token was not written"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}
