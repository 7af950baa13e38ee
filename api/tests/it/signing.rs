//! Webhook signatures the Standard Webhooks way (SPEC §5.5): a signing
//! secret apart from the client secret, verified as a customer would
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`), through a
//! rotation, a stable id across retries, and a replay with an old or
//! altered timestamp detectable; the `report_uri` policy (https only,
//! public addresses only, unless allowed); no secret in the log or in an
//! admin answer after creation.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{data_dir, sms, Server};
use crate::routing::sim_sender;
use crate::webhook::{Hit, Webhook};

/// How far a receiver lets a timestamp drift (the Standard Webhooks
/// libraries use 5 minutes).
const TOLERANCE_SECS: i64 = 300;

/// What a customer's receiver does: the timestamp is recent, and one of the
/// `v1,` signatures is the HMAC of `"{id}.{timestamp}.{body}"` keyed with
/// the decoded secret.
fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let ts: i64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err("timestamp outside the tolerance: a replay");
    }
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").ok_or("not a whsec_ secret")?)
        .map_err(|_| "bad secret")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| "key")?;
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    if signatures.split(' ').any(|s| s == expected) {
        Ok(())
    } else {
        Err("no matching signature")
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Verifies a received request with `secret`.
fn verify_hit(h: &Hit, secret: &str) -> Result<(), &'static str> {
    let header = |n| h.header(n).ok_or("missing header");
    verify(
        secret,
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
        &h.raw,
        now_secs(),
    )
}

/// A customer with SMS to a sim sender and a client posting reports to
/// `hook`; returns (token, client JSON as created).
fn client(server: &Server, g: &str, hook: &Webhook) -> (String, Value) {
    let _ = server.register_customer(g);
    let (s, c) = server.admin(
        "POST",
        &format!("/customers/{g}/clients"),
        Some(json!({"report_uri": hook.url()})),
    );
    assert_eq!(s, 201, "{c}");
    sim_sender(
        server,
        &format!("G_S_{g}01"),
        &format!("grp-{g}"),
        json!({}),
    );
    let rule = json!({"carriers": {"*": [{"sender_group": format!("grp-{g}"), "ratio": 1}]}});
    assert_eq!(
        server
            .admin("PUT", &format!("/routes/{g}/SMS"), Some(rule))
            .0,
        200
    );
    let token = server.token(
        c["client_id"].as_str().expect("id"),
        c["client_secret"].as_str().expect("secret"),
    );
    (token, c)
}

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("mcmp.toml");
    let text = "[reports]\nretry-unit = \"1s\"\nsecret-overlap = \"1h\"\n";
    std::fs::write(&path, text).expect("config");
    path
}

#[test]
fn webhooks_verify_the_standard_webhooks_way_through_a_rotation() {
    let hook = Webhook::start(0);
    let dir = data_dir();
    let cfg = config(dir.path());
    let server = Server::start_with(dir.path(), &["--config", cfg.to_str().expect("utf-8")]);
    let (token, c) = client(&server, "W1", &hook);
    let first = c["signing_secret"]
        .as_str()
        .expect("signing_secret")
        .to_string();
    assert!(first.starts_with("whsec_"), "{c}");
    assert_eq!(BASE64.decode(&first[6..]).expect("base64").len(), 32);
    assert_ne!(first, c["client_secret"].as_str().expect("secret"));

    crate::harness::send_accepted(&server, &token, vec![sms("sw-1")]);
    let hits = hook.wait("the first report", |h| !h.is_empty());
    assert_eq!(verify_hit(&hits[0], &first), Ok(()));
    assert!(hits[0]
        .header("webhook-id")
        .is_some_and(|id| id.starts_with("msg_")));

    // Rotation: the new secret signs at once, the old one beside it.
    let cid = c["client_id"].as_str().expect("id");
    let (s, r) = server.admin(
        "POST",
        &format!("/customers/W1/clients/{cid}/signing-secrets"),
        None,
    );
    assert_eq!(s, 201, "{r}");
    let second = r["signing_secret"]
        .as_str()
        .expect("new secret")
        .to_string();
    assert_ne!(second, first);
    assert!(r["previous_valid_until"].is_string(), "{r}");
    crate::harness::send_accepted(&server, &token, vec![sms("sw-2")]);
    let hits = hook.wait("the second report", |h| h.len() >= 2);
    let h = &hits[1];
    assert_eq!(
        h.header("webhook-signature").map(|s| s.split(' ').count()),
        Some(2)
    );
    assert_eq!(verify_hit(h, &second), Ok(()));
    assert_eq!(
        verify_hit(h, &first),
        Ok(()),
        "the old secret signs during the overlap"
    );
    assert_eq!(
        verify_hit(h, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Err("no matching signature")
    );

    // A replay: the same request presented later is outside the tolerance,
    // and moving its timestamp breaks the signature.
    let (id, ts, sigs) = (
        h.header("webhook-id").expect("id"),
        h.header("webhook-timestamp").expect("ts"),
        h.header("webhook-signature").expect("sigs"),
    );
    let later = now_secs() + TOLERANCE_SECS + 60;
    assert!(verify(&second, id, ts, sigs, &h.raw, later).is_err());
    let moved = ts.parse::<i64>().expect("ts") + 600;
    let sent_at_moved = verify(&second, id, &moved.to_string(), sigs, &h.raw, moved);
    assert_eq!(sent_at_moved, Err("no matching signature"));
    // Unknown clients get 404.
    let (s, _) = server.admin(
        "POST",
        "/customers/W1/clients/c_nobody/signing-secrets",
        None,
    );
    assert_eq!(s, 404);
}

#[test]
fn a_retried_batch_keeps_its_webhook_id() {
    let hook = Webhook::start(1);
    let dir = data_dir();
    let cfg = config(dir.path());
    let server = Server::start_with(dir.path(), &["--config", cfg.to_str().expect("utf-8")]);
    let (token, c) = client(&server, "W2", &hook);
    let secret = c["signing_secret"].as_str().expect("signing_secret");
    crate::harness::send_accepted(&server, &token, vec![sms("retry-1")]);
    let hits = hook.wait("a retry", |h| h.len() >= 2);
    assert_eq!((hits[0].status, hits[1].status), (500, 200));
    assert_eq!(hits[0].raw, hits[1].raw);
    assert_eq!(hits[0].header("webhook-id"), hits[1].header("webhook-id"));
    for h in &hits[..2] {
        assert_eq!(verify_hit(h, secret), Ok(()));
    }
}

#[test]
fn http_and_private_report_uris_are_refused_by_default_and_allowed_by_the_flags() {
    let dir = data_dir();
    let server = Server::start_policy(dir.path(), &[], false);
    server.register_customer_without_client("U1");
    let create = |server: &Server, uri: &str| {
        server.admin(
            "POST",
            "/customers/U1/clients",
            Some(json!({"report_uri": uri})),
        )
    };
    let refused = [
        ("http://example.com/r", "https://"),
        ("https://127.0.0.1/r", "127.0.0.1"),
        ("https://localhost:8443/r", "localhost"),
        ("https://10.1.2.3/r", "10.1.2.3"),
        ("https://192.168.0.7/r", "192.168.0.7"),
        ("https://169.254.169.254/latest", "169.254.169.254"),
        ("https://[::1]/r", "::1"),
        ("https://[fd00::1]/r", "fd00::1"),
    ];
    for (uri, needle) in refused {
        let (s, v) = create(&server, uri);
        assert_eq!(s, 400, "{uri}: {v}");
        assert!(v.to_string().contains(needle), "{uri}: {v}");
    }
    // A public address, and a name that does not resolve here, are taken.
    for uri in ["https://93.184.215.14/r", "https://example.test/r"] {
        let (s, v) = create(&server, uri);
        assert_eq!(s, 201, "{uri}: {v}");
    }
    // A client changed to a private URI is refused the same way.
    let (_, c) = create(&server, "https://example.test/r");
    let id = c["client_id"].as_str().expect("id");
    let (s, v) = server.admin(
        "PATCH",
        &format!("/customers/U1/clients/{id}"),
        Some(json!({"report_uri": "https://127.0.0.1/r"})),
    );
    assert_eq!(s, 400, "{v}");
    drop(server);

    // The flags allow both.
    let dir = data_dir();
    let cfg = dir.path().join("mcmp.toml");
    std::fs::write(&cfg, "[reports]\nallow-http = true\nallow-private = true\n").expect("config");
    let server = Server::start_policy(
        dir.path(),
        &["--config", cfg.to_str().expect("utf-8")],
        false,
    );
    server.register_customer_without_client("U1");
    for uri in ["http://127.0.0.1:9/r", "https://10.1.2.3/r"] {
        let (s, v) = create(&server, uri);
        assert_eq!(s, 201, "{uri}: {v}");
    }
}

#[test]
fn a_webhook_to_a_private_address_is_not_posted_when_private_addresses_are_refused() {
    // Allowed at creation (http, private), then the server restarts with
    // the defaults: the endpoint is refused at delivery, nothing is posted.
    let hook = Webhook::start(0);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, _) = client(&server, "W3", &hook);
    drop(server);
    let cfg = dir.path().join("strict.toml");
    std::fs::write(&cfg, "[reports]\nallow-http = true\n").expect("config");
    let server = Server::start_policy(
        dir.path(),
        &["--config", cfg.to_str().expect("utf-8")],
        false,
    );
    let id = crate::harness::send_accepted(&server, &token, vec![sms("priv-1")]).remove(0);
    crate::routing::wait_status(&server, &token, &id, |s| s == "delivered");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, hooks) = server.admin("GET", "/webhooks", None);
        let rows = hooks["webhooks"].as_array().cloned().unwrap_or_default();
        let failing = rows.iter().any(|r| {
            r["report_uri"] == json!(hook.url()) && r["failures_in_a_row"].as_u64() >= Some(1)
        });
        if failing {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never refused: {hooks}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(hook.hits().is_empty(), "a report went to a private address");
}

#[test]
fn no_secret_appears_in_the_log_or_in_admin_answers_after_creation() {
    let hook = Webhook::start(1);
    let dir = data_dir();
    let cfg = config(dir.path());
    let extra = ["--config", cfg.to_str().expect("utf-8")];
    let server = Server::start_env(dir.path(), &extra, true, "debug");
    let (token, c) = client(&server, "W4", &hook);
    let cid = c["client_id"].as_str().expect("id").to_string();
    let mut secrets = vec![
        crate::harness::ADMIN.to_string(),
        token.clone(),
        c["client_secret"].as_str().expect("secret").to_string(),
        c["signing_secret"].as_str().expect("signing").to_string(),
    ];
    let path = format!("/customers/W4/clients/{cid}/signing-secrets");
    let (_, r) = server.admin("POST", &path, None);
    secrets.push(r["signing_secret"].as_str().expect("rotated").to_string());
    // A second token, a rejected login, traffic, a failed and a retried webhook.
    let _ = server.token(&cid, &secrets[2]);
    let bad =
        json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": "wrong"});
    assert_eq!(server.call("POST", "/oauth/token", None, Some(&bad)).0, 401);
    crate::harness::send_accepted(&server, &token, vec![sms("sec-1"), sms("sec-2")]);
    hook.wait("a retried webhook", |h| h.iter().any(|h| h.status == 200));
    let answers: Vec<Value> = [
        "/customers/W4/clients",
        "/customers/W4",
        "/webhooks",
        "/stats",
        "/senders",
        "/audit",
    ]
    .iter()
    .map(|p| server.admin("GET", p, None).1)
    .collect();
    for (answer, secret) in answers
        .iter()
        .flat_map(|a| secrets.iter().map(move |s| (a, s)))
    {
        assert!(
            !answer.to_string().contains(secret.as_str()),
            "an admin answer shows a secret: {answer}"
        );
    }
    let log = server.terminate_with_log();
    assert!(
        log.len() > 10,
        "the log is too short to say anything: {log:?}"
    );
    for secret in &secrets {
        let leaks: Vec<&String> = log.iter().filter(|l| l.contains(secret.as_str())).collect();
        assert!(leaks.is_empty(), "a secret in the log: {leaks:?}");
    }
    // At rest only hashes: no file of the data directory holds the client
    // secret or a signing secret, as text or (signing) decoded.
    let mut stored: Vec<Vec<u8>> = secrets[2..].iter().map(|s| s.as_bytes().to_vec()).collect();
    for whsec in &secrets[3..] {
        let encoded = whsec.strip_prefix("whsec_").expect("whsec_");
        stored.push(BASE64.decode(encoded).expect("base64"));
    }
    for secret in &stored {
        let files = files_containing(dir.path(), secret);
        assert!(files.is_empty(), "a secret at rest in {files:?}");
    }
}

/// The files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if memchr::memmem::find(&bytes, needle).is_some() {
                found.push(path);
            }
        }
    }
    found
}
