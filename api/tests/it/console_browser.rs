//! The console in a real browser (SPEC §5.7, issue 15): Debian's headless
//! Chromium driven over WebDriver (`chromedriver`, spoken to over plain
//! HTTP here) against a real `mcmp`. An operator logs in, creates an
//! operator and a viewer, registers a customer with a service, client,
//! bill code and caller ID, a `sim` sender and a route through the
//! console's forms; messages sent through the customer API move the live
//! counters and are found by recipient with their timeline; the sender is
//! suspended and resumed; the viewer's changes are refused (403 in the
//! page); the audit log lists every change with its operator. Screenshots
//! go to `target/console-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`,
//! `chromium-driver`): without them the test says SKIPPED, except under
//! `CI=true`, where it fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::harness::{data_dir, Server};

/// A WebDriver session on a chromedriver of our own.
struct Browser {
    driver: Child,
    /// Chromium's profile and temporary directory, removed with the
    /// browser (else each run leaves them in the system's).
    _profile: tempfile::TempDir,
    addr: SocketAddr,
    session: String,
    shots: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One HTTP/1.1 exchange with chromedriver; the JSON answer's `value`.
fn webdriver(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open: read the head, then exactly
    // Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed in the head".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or("no Content-Length")?;
    while raw.len() < head_end + length {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let rest = String::from_utf8_lossy(&raw[head_end..]).to_string();
    let v: Value = serde_json::from_str(&rest).map_err(|e| format!("{e}: {rest}"))?;
    match head.split(' ').nth(1) {
        Some("200") => Ok(v["value"].clone()),
        _ => Err(format!("{method} {path}: {head}: {v}")),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn which(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        let out = Command::new("which").arg(n).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `None` (SKIPPED) when
    /// they are not installed, unless `CI=true`.
    fn start() -> Option<Browser> {
        let chromium = which(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = which(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: the console browser test needs chromium and chromedriver (apt install chromium chromium-driver)"
            );
            eprintln!("SKIPPED: the console browser test needs chromium and chromedriver (apt install chromium chromium-driver)");
            return None;
        };
        let port = free_port();
        // Chromium's profile and temporary files go to a directory of ours.
        let profile = tempfile::tempdir().expect("a profile dir");
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .env("TMPDIR", profile.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while webdriver(addr, "GET", "/status", None).map(|v| v["ready"] == true) != Ok(true) {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let user_data = format!("--user-data-dir={}", profile.path().display());
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000", user_data]
        }}}});
        let session = webdriver(addr, "POST", "/session", Some(&caps)).expect("a browser session");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Some(Browser {
            driver: child,
            _profile: profile,
            addr,
            session: session["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_string(),
            shots,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        webdriver(self.addr, method, &path, body.as_ref())
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .expect("navigate");
    }

    /// Runs `script` (a function body) with `args` in the page.
    fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `script` returns something truthy; returns it.
    fn wait(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.js(script, json!([]));
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            if Instant::now() > deadline {
                self.shot("timeout");
                let page = self.js("return document.body.innerText", json!([]));
                panic!("waited in vain for {what}; the page says:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element id")
            .to_string()
    }

    /// Types into the element like a user.
    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .expect("type");
    }

    /// Clicks the element like a user.
    fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})))
            .expect("click");
    }

    /// Fills the form `#id` (field name → value) and submits it with its
    /// button; waits for the screen to settle.
    fn submit(&self, id: &str, fields: Value) {
        self.js(
            "const f = document.getElementById(arguments[0]);
             for (const [k, v] of Object.entries(arguments[1])) { f.elements[k].value = v; }",
            json!([id, fields]),
        );
        self.click(&format!("#{id} button[type=submit]"));
        std::thread::sleep(Duration::from_millis(300));
    }

    fn screen(&self, name: &str) {
        self.js("location.hash = arguments[0]", json!([name]));
        self.wait(name, &format!("return document.querySelector('#view h2')?.textContent.toLowerCase().includes('{}')", &name[..4]));
    }

    fn text(&self) -> String {
        self.js("return document.body.innerText", json!([]))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn shot(&self, name: &str) {
        if let Ok(png) = self.call("GET", "/screenshot", None) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(png.as_str().unwrap_or_default())
                .unwrap_or_default();
            let _ = std::fs::write(self.shots.join(format!("{name}.png")), bytes);
        }
    }

    fn login(&self, console: &str, name: &str, password: &str) {
        self.go(console);
        self.wait(
            "the login form",
            "return !document.getElementById('login').hidden",
        );
        self.type_into("#login input[name=name]", name);
        self.type_into("#login input[name=password]", password);
        self.click("#login button[type=submit]");
        self.wait(
            "the logged-in header",
            &format!("return document.getElementById('who').textContent.startsWith('{name} (')"),
        );
    }
}

#[test]
fn an_operator_runs_mcmp_from_the_console_in_a_real_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = data_dir();
    let data = dir.path().join("data");
    crate::harness::add_operator(&data, "root", "admin", "root-password-1");
    let server = Server::start(&data);
    let console = format!("http://{}/console", server.addr);
    let b = &browser;

    b.login(&console, "root", "root-password-1");
    b.shot("01-overview");
    b.screen("operators");
    b.submit(
        "operator-form",
        json!({"name": "ops", "password": "ops-password-1", "role": "operator"}),
    );
    b.submit(
        "operator-form",
        json!({"name": "view", "password": "view-password-1", "role": "viewer"}),
    );
    b.wait(
        "two new operators",
        "return document.querySelector('#view table')?.innerText.includes('view')",
    );

    b.screen("customers");
    b.submit(
        "customer-form",
        json!({"group_code": "BC1", "name": "Browser Co"}),
    );
    b.submit(
        "service-form",
        json!({"group_code": "BC1", "channel": "SMS", "tps": "0"}),
    );
    b.submit(
        "client-form",
        json!({"group_code": "BC1", "report_uri": ""}),
    );
    let shown = b.wait(
        "the new client's secret",
        "return document.getElementById('new-client')?.textContent",
    );
    let shown = shown.as_str().expect("text").to_string();
    let words: Vec<&str> = shown.split_whitespace().collect();
    let (client_id, secret) = (words[1], words[4]);
    b.submit("bill-form", json!({"group_code": "BC1", "bill_code": "B1"}));
    b.submit(
        "caller-form",
        json!({"group_code": "BC1", "number": "0212345678"}),
    );
    b.shot("02-customers");

    b.screen("senders");
    b.submit(
        "sender-form",
        json!({"name": "BC_S_SIM01", "group": "BCG", "channels": "SMS", "carriers": "*"}),
    );
    b.wait(
        "the sim sender",
        "return document.querySelector('#view table')?.innerText.includes('BC_S_SIM01')",
    );
    b.screen("routing");
    b.submit(
        "route-form",
        json!({"group_code": "BC1", "channel": "SMS", "sender_group": "BCG", "ratio": "1"}),
    );
    b.wait(
        "the route",
        "return document.querySelector('#view table')?.innerText.includes('BCG')",
    );
    b.submit(
        "ratios-form",
        json!({"group_code": "BC1", "channel": "LMS", "carriers": "SKT: BCG×2; *: BCG×1"}),
    );
    b.wait(
        "the per-carrier route",
        "return document.querySelector('#view table')?.innerText.includes('SKT: BCG×2')",
    );

    // A client's webhook signing secret is rotated; queues are shown.
    b.screen("customers");
    b.submit(
        "rotate-form",
        json!({"group_code": "BC1", "client_id": client_id}),
    );
    let rotated = b.wait(
        "the new signing secret",
        "return document.getElementById('new-client')?.textContent",
    );
    assert!(
        rotated.as_str().is_some_and(|t| t.contains("whsec_")),
        "{rotated}"
    );
    b.screen("queues");
    b.wait(
        "the queue figures",
        "return document.querySelector('[data-figure=held] b')",
    );

    // Messages through the customer API move the live counters.
    b.screen("overview");
    b.wait(
        "the first figures",
        "return document.querySelector('[data-figure=accepted] b')",
    );
    let token = server.token(client_id, secret);
    for i in 0..5 {
        let mut m = crate::harness::sms(&format!("browser-{i}"));
        m["to"] = json!("01099998888");
        let (s, v) = server.call("POST", "/v1/messages", Some(&token), Some(&m));
        assert_eq!(
            (s, v["results"][0]["code"].as_u64()),
            (200, Some(1000)),
            "{v}"
        );
    }
    b.wait(
        "the accepted counter to reach 5",
        "return Number(document.querySelector('[data-figure=accepted] b')?.textContent) >= 5",
    );
    // Per sender: queue age, TPS and error rate; and the latest alerts,
    // among them the sim sender coming up.
    b.wait(
        "the senders' rates and the sender_up alert",
        "return document.getElementById('live-senders')?.innerText.includes('error rate') \
         && document.getElementById('alerts')?.innerText.includes('sender=BC_S_SIM01')",
    );
    b.shot("03-overview-live");

    // Found by recipient, with its timeline.
    b.screen("messages");
    b.submit(
        "search-form",
        json!({"customer": "BC1", "to": "01099998888", "status": "delivered"}),
    );
    b.wait("5 delivered messages", "return document.querySelectorAll('#found button[data-id]').length === 5 || (document.getElementById('search-form').requestSubmit(), false)");
    b.click("#found button[data-id]");
    b.wait(
        "the timeline",
        "return document.getElementById('timeline')?.innerText.includes('delivered')",
    );
    let timeline = b.text();
    assert!(
        timeline.contains("accepted") && timeline.contains("submitted"),
        "{timeline}"
    );
    // The client has no report_uri: its report was abandoned at once.
    assert!(
        timeline.contains("report: abandoned after 0 failed attempts"),
        "{timeline}"
    );
    b.shot("04-message-timeline");

    // Suspend and resume the sender.
    b.screen("senders");
    b.click("button[data-act=suspend][data-name=BC_S_SIM01]");
    b.wait(
        "the sender suspended",
        "return document.querySelector('#view table')?.innerText.includes('unavailable')",
    );
    b.shot("05-sender-suspended");
    b.click("button[data-act=resume][data-name=BC_S_SIM01]");
    b.wait(
        "the sender resumed",
        "return !document.querySelector('#view table')?.innerText.includes('unavailable')",
    );

    // The viewer sees everything and may change nothing.
    b.click("#logout");
    b.login(&console, "view", "view-password-1");
    b.screen("customers");
    assert!(b.text().contains("Browser Co"));
    b.submit(
        "customer-form",
        json!({"group_code": "BC2", "name": "Not allowed"}),
    );
    let refused = b.wait(
        "the refusal",
        "return document.getElementById('error')?.textContent",
    );
    assert!(
        refused.as_str().is_some_and(|t| t.contains("403")),
        "{refused}"
    );
    b.shot("06-viewer-refused");
    b.screen("senders");
    b.click("button[data-act=suspend][data-name=BC_S_SIM01]");
    let refused = b.wait(
        "the refusal",
        "return document.getElementById('error')?.textContent",
    );
    assert!(
        refused.as_str().is_some_and(|t| t.contains("403")),
        "{refused}"
    );

    // The audit log lists each change with its operator.
    b.screen("audit");
    let audit = b.text();
    for (who, change) in [
        ("root", "PUT /admin/v1/operators/view"),
        ("root", "PUT /admin/v1/customers/BC1"),
        ("root", "PUT /admin/v1/customers/BC1/services"),
        ("root", "POST /admin/v1/customers/BC1/clients"),
        ("root", "PUT /admin/v1/customers/BC1/bill-codes/B1"),
        ("root", "PUT /admin/v1/customers/BC1/caller-ids/0212345678"),
        ("root", "PUT /admin/v1/senders/BC_S_SIM01"),
        ("root", "PUT /admin/v1/routes/BC1/SMS"),
        ("root", "PUT /admin/v1/routes/BC1/LMS"),
        (
            "root",
            &format!("POST /admin/v1/customers/BC1/clients/{client_id}/signing-secrets"),
        ),
        ("root", "PATCH /admin/v1/senders/BC_S_SIM01"),
    ] {
        let line = audit.lines().find(|l| l.contains(change));
        assert!(
            line.is_some_and(|l| l.contains(who)),
            "no {change} by {who} in:\n{audit}"
        );
    }
    assert!(!audit.contains("BC2"), "a refused change is not in the log");
    assert!(!audit.contains(secret), "the client secret is masked");
    b.shot("07-audit");
}
