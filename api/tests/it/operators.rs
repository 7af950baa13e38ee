//! SPEC §5.7: operator accounts with roles, sessions with their CSRF
//! token, the login rate limit and the audit log, through HTTP as the
//! console uses them (and `mcmp operator add` for the first admin).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{data_dir, Server};

/// An answer: status, head and JSON body (`Null` when empty).
struct Answer {
    status: u16,
    head: String,
    body: Value,
}

impl Answer {
    /// The value of header `name` (any case).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One request with the given extra header lines.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<Value>,
) -> Answer {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    Answer {
        status,
        head: head.to_string(),
        body: serde_json::from_str(rest).unwrap_or(Value::Null),
    }
}

/// A logged-in operator: its cookie header and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    fn headers(&self, with_csrf: bool) -> Vec<String> {
        let mut h = vec![format!("Cookie: {}", self.cookie)];
        if with_csrf {
            h.push(format!("X-CSRF-Token: {}", self.csrf));
        }
        h
    }

    fn call(&self, server: &Server, method: &str, path: &str, body: Option<Value>) -> Answer {
        let path = format!("/admin/v1{path}");
        request(server.addr, method, &path, &self.headers(true), body)
    }
}

fn login(server: &Server, name: &str, password: &str) -> Session {
    let a = request(
        server.addr,
        "POST",
        "/admin/v1/session",
        &[],
        Some(json!({"name": name, "password": password})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let set = a.header("set-cookie").expect("Set-Cookie").to_string();
    let lower = set.to_ascii_lowercase();
    assert!(
        lower.contains("httponly") && lower.contains("samesite=strict"),
        "{set}"
    );
    let cookie = set.split(';').next().expect("name=value").to_string();
    let csrf = a.body["csrf_token"]
        .as_str()
        .expect("csrf_token")
        .to_string();
    Session { cookie, csrf }
}

#[test]
fn operators_log_in_with_roles_and_every_change_is_audited() {
    let dir = data_dir();
    let data = dir.path().join("data");
    // The first admin, before the server starts.
    crate::harness::add_operator(&data, "root", "admin", "root-password-1");
    let server = Server::start(&data);
    let addr = server.addr;

    // Nothing without a token or a session.
    let anon = request(addr, "GET", "/admin/v1/customers", &[], None);
    assert_eq!(anon.status, 401);
    let forged = request(
        addr,
        "GET",
        "/admin/v1/customers",
        &["Cookie: mcmp_session=x.1.2.3".into()],
        None,
    );
    assert_eq!(forged.status, 401);
    assert_eq!(
        request(addr, "GET", "/admin/v1/session", &[], None).status,
        401
    );

    let root = login(&server, "root", "root-password-1");
    let me = root.call(&server, "GET", "/session", None);
    assert_eq!(
        (me.body["name"].as_str(), me.body["role"].as_str()),
        (Some("root"), Some("admin"))
    );
    for (name, role) in [("ops", "operator"), ("view", "viewer")] {
        let a = root.call(
            &server,
            "PUT",
            &format!("/operators/{name}"),
            Some(json!({"password": format!("{name}-password-1"), "role": role})),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.get("password_hash").is_none());
    }
    let list = root.call(&server, "GET", "/operators", None);
    assert_eq!(
        list.body["operators"].as_array().map(Vec::len),
        Some(3),
        "{}",
        list.body
    );
    assert!(!list.body.to_string().contains("argon2"), "no hash shown");

    // A change from a session needs its CSRF token.
    let customer = json!({"name": "Audited", "vas": false, "prepaid": false, "balance": 0});
    let no_csrf = request(
        addr,
        "PUT",
        "/admin/v1/customers/AU1",
        &root.headers(false),
        Some(customer.clone()),
    );
    assert_eq!(
        (no_csrf.status, no_csrf.body["error"]["code"].as_str()),
        (403, Some("csrf"))
    );
    let created = root.call(&server, "PUT", "/customers/AU1", Some(customer.clone()));
    assert_eq!(created.status, 201, "{}", created.body);
    let renamed = json!({"name": "Audited Again", "vas": false, "prepaid": false, "balance": 0});
    assert_eq!(
        root.call(&server, "PUT", "/customers/AU1", Some(renamed))
            .status,
        200
    );
    let client = root.call(
        &server,
        "POST",
        "/customers/AU1/clients",
        Some(json!({"report_uri": null})),
    );
    assert_eq!(client.status, 201, "{}", client.body);
    let secret = client.body["client_secret"]
        .as_str()
        .expect("secret")
        .to_string();

    // The viewer reads everything and changes nothing.
    let view = login(&server, "view", "view-password-1");
    assert_eq!(
        view.call(&server, "GET", "/customers/AU1", None).status,
        200
    );
    assert_eq!(view.call(&server, "GET", "/audit", None).status, 200);
    let refused = view.call(&server, "PUT", "/customers/AU2", Some(customer.clone()));
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let sender = json!({"group": "AUG", "channels": ["SMS"], "carriers": ["*"], "transport": {"type": "sim"}});
    assert_eq!(
        view.call(&server, "PUT", "/senders/AU_S_SIM01", Some(sender.clone()))
            .status,
        403
    );

    // The operator changes senders, not customers or operators.
    let ops = login(&server, "ops", "ops-password-1");
    let put = ops.call(&server, "PUT", "/senders/AU_S_SIM01", Some(sender));
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(
        ops.call(&server, "PUT", "/customers/AU3", Some(customer))
            .status,
        403
    );
    assert_eq!(
        ops.call(
            &server,
            "PUT",
            "/operators/x",
            Some(json!({"password": "12345678", "role": "admin"}))
        )
        .status,
        403
    );

    // The audit log: each change once, with who, before and after, and no
    // secret.
    let audit = view.call(&server, "GET", "/audit", None);
    let entries = audit.body["entries"].as_array().expect("entries").clone();
    let find = |method: &str, path: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| e["method"] == method && e["path"] == path)
            .collect()
    };
    assert_eq!(
        find("PUT", "/admin/v1/operators/ops")[0]["operator"],
        "root"
    );
    let customer_puts = find("PUT", "/admin/v1/customers/AU1");
    assert_eq!(customer_puts.len(), 2, "{entries:#?}");
    assert_eq!(customer_puts[0]["before"], Value::Null);
    assert_eq!(customer_puts[1]["before"]["name"], "Audited");
    assert_eq!(customer_puts[1]["after"]["name"], "Audited Again");
    assert_eq!(
        find("PUT", "/admin/v1/senders/AU_S_SIM01")[0]["operator"],
        "ops"
    );
    assert!(
        find("PUT", "/admin/v1/customers/AU2").is_empty(),
        "a refused change is no change"
    );
    assert!(
        !audit.body.to_string().contains(&secret),
        "the client secret is masked"
    );
    assert!(!audit.body.to_string().contains("password-1"));
    let page = view.call(&server, "GET", "/audit?limit=2", None);
    let next = page.body["next"].as_str().expect("next").to_string();
    let rest = view.call(
        &server,
        "GET",
        &format!("/audit?after={next}&limit=1000"),
        None,
    );
    assert_eq!(
        2 + rest.body["entries"].as_array().map_or(0, Vec::len),
        entries.len()
    );

    // Logging out ends the session; the token still works for scripts.
    let out = request(
        addr,
        "DELETE",
        "/admin/v1/session",
        &view.headers(false),
        None,
    );
    assert_eq!(out.status, 204);
    assert!(out
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(view.call(&server, "GET", "/customers", None).status, 401);
    assert_eq!(server.admin("GET", "/customers", None).0, 200);

    // Five wrong passwords, then 429 for that name for a minute.
    for _ in 0..5 {
        let a = request(
            addr,
            "POST",
            "/admin/v1/session",
            &[],
            Some(json!({"name": "ops", "password": "wrong-password"})),
        );
        assert_eq!(a.status, 401);
    }
    let limited = request(
        addr,
        "POST",
        "/admin/v1/session",
        &[],
        Some(json!({"name": "ops", "password": "ops-password-1"})),
    );
    assert_eq!(limited.status, 429);

    // The operators and the audit log survive a restart.
    server.kill9();
    let server = Server::start(&data);
    let root = login(&server, "root", "root-password-1");
    let audit = root.call(&server, "GET", "/audit", None);
    assert_eq!(
        audit.body["entries"].as_array().map(Vec::len),
        Some(entries.len())
    );
}

/// Reads an open event stream until `n` `stats` events came; their data.
fn read_stats(stream: &mut TcpStream, n: usize) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while events.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "no {n} events in: {text}"
        );
        let got = stream.read(&mut buf).expect("read the stream");
        assert!(got > 0, "the stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..got]));
        events = text
            .split("event: stats\ndata: ")
            .skip(1)
            .filter_map(|rest| rest.split_once('\n'))
            .filter_map(|(data, _)| serde_json::from_str(data).ok())
            .collect();
    }
    (text, events)
}

/// SPEC §5.7: `GET /console` is served from the binary with an ETag, and
/// `GET /admin/v1/events` streams the live figures once a second (to the
/// admin token or a session; 401 without).
#[test]
fn the_console_is_served_and_live_figures_stream_as_server_sent_events() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let addr = server.addr;
    let page = request(addr, "GET", "/console", &[], None);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    let etag = page.header("etag").expect("ETag").to_string();
    let again = request(
        addr,
        "GET",
        "/console",
        &[format!("If-None-Match: {etag}")],
        None,
    );
    assert_eq!(again.status, 304);
    for asset in ["/console/app.js", "/console/style.css"] {
        assert_eq!(
            request(addr, "GET", asset, &[], None).status,
            200,
            "{asset}"
        );
    }
    assert_eq!(
        request(addr, "GET", "/admin/v1/events", &[], None).status,
        401
    );

    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!(
        "GET /admin/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        crate::harness::ADMIN
    );
    s.write_all(req.as_bytes()).expect("write");
    let (head, events) = read_stats(&mut s, 2);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    let first = &events[0];
    for key in [
        "at",
        "accepted",
        "final",
        "rejected",
        "held",
        "memory_messages",
        "senders",
    ] {
        assert!(first.get(key).is_some(), "no {key} in {first}");
    }
    assert_eq!(first["accepted"]["SMS"], 0);
    drop(s);
    // A closed stream is let go: streams keep opening.
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(req.as_bytes()).expect("write");
        let _ = read_stats(&mut s, 1);
        open.push(s);
    }
    // Open streams do not hold up a clean shutdown.
    let started = std::time::Instant::now();
    assert!(server.terminate().success());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "{took:?}");
}

/// SPEC §5.7: operators find any customer's message by id (with its
/// timeline), or by customer and `src_msg_id`, recipient or status.
#[test]
fn operators_search_messages_of_any_customer() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (token, _) = crate::reports::customer(&server, "MS1", "http://127.0.0.1:9/r", 1);
    let (s, v) = server.call(
        "POST",
        "/v1/messages",
        Some(&token),
        Some(&crate::harness::sms("ms-1")),
    );
    assert_eq!(s, 200, "{v}");
    let id = v["results"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_string();
    crate::routing::wait_status(&server, &token, &id, |s| s == "delivered");

    let (s, m) = server.admin("GET", &format!("/messages/{id}"), None);
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (m["group_code"].as_str(), m["status"].as_str()),
        (Some("MS1"), Some("delivered"))
    );
    let timeline: Vec<&str> = m["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(timeline.first(), Some(&"accepted"));
    assert_eq!(timeline.last(), Some(&"delivered"));
    assert!(timeline.contains(&"submitted"), "{timeline:?}");
    // And where its report stands: the endpoint (port 9) refuses, so the
    // report is retried, with the next attempt given.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        let (_, m) = server.admin("GET", &format!("/messages/{id}"), None);
        if m["report"]["state"] == "retrying" || std::time::Instant::now() > deadline {
            break m["report"].clone();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(report["state"], "retrying", "{report}");
    assert!(report["failed_attempts"].as_u64() >= Some(1), "{report}");
    assert!(report["next_attempt"].is_string(), "{report}");

    let (s, found) = server.admin("GET", "/messages?customer=MS1&src_msg_id=ms-1", None);
    assert_eq!(s, 200);
    assert_eq!(found["messages"][0]["message_id"], id.as_str());
    let (s, by_to) = server.admin(
        "GET",
        "/messages?customer=MS1&to=01012345678&status=delivered",
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(by_to["messages"][0]["message_id"], id.as_str(), "{by_to}");
    let (s, none) = server.admin("GET", "/messages?customer=OTHER&src_msg_id=ms-1", None);
    assert_eq!(
        (s, none["messages"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    assert_eq!(
        server.admin("GET", "/messages", None).0,
        400,
        "customer is required"
    );
    assert_eq!(
        server.admin("GET", "/messages/0000000000000000", None).0,
        404
    );
    assert_eq!(
        request(
            server.addr,
            "GET",
            &format!("/admin/v1/messages/{id}"),
            &[],
            None
        )
        .status,
        401
    );
}
