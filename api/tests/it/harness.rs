//! Starts the real `mcmp` binary and talks to it over plain TCP, as a
//! customer's engineer or an operator would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The admin token every test server uses.
pub const ADMIN: &str = "test-admin-token";

/// A running `mcmp serve`.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
    /// Keeps the stderr reader alive so the server never blocks on a full pipe.
    _log: std::sync::Mutex<mpsc::Receiver<String>>,
}

impl Server {
    /// Starts a server on `127.0.0.1:0` over `data_dir` with 2 shards.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// Starts with extra `serve` arguments.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_policy(data_dir, extra, true)
    }

    /// Starts with extra `serve` arguments; `loopback_webhooks`: allow
    /// `http://` and private `report_uri`s through the environment (the
    /// test webhooks are plain HTTP on loopback); without it the server's
    /// configuration alone decides.
    pub fn start_policy(data_dir: &Path, extra: &[&str], loopback_webhooks: bool) -> Server {
        Server::start_env(data_dir, extra, loopback_webhooks, "info")
    }

    /// [`Server::start_policy`] logging at `log_level` (`MCMP_LOG`).
    pub fn start_env(
        data_dir: &Path,
        extra: &[&str],
        loopback_webhooks: bool,
        log_level: &str,
    ) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mcmp"));
        command.env("MCMP_ADMIN_TOKEN", ADMIN);
        Server::launch(command, data_dir, extra, loopback_webhooks, log_level)
    }

    /// Starts with no admin token in the environment (the configuration
    /// or the data directory gives it; [`Server::admin`] then fails).
    pub fn start_without_admin_token(data_dir: &Path, extra: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mcmp"));
        command.env_remove("MCMP_ADMIN_TOKEN");
        Server::launch(command, data_dir, extra, true, "info")
    }

    fn launch(
        mut command: Command,
        data_dir: &Path,
        extra: &[&str],
        loopback_webhooks: bool,
        log_level: &str,
    ) -> Server {
        let allow = if loopback_webhooks { "true" } else { "" };
        if !loopback_webhooks {
            command
                .env_remove("MCMP_REPORTS_ALLOW_HTTP")
                .env_remove("MCMP_REPORTS_ALLOW_PRIVATE");
        }
        let mut child = command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--shards",
                "2",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("MCMP_LOG", log_level)
            .envs(
                [
                    ("MCMP_REPORTS_ALLOW_HTTP", allow),
                    ("MCMP_REPORTS_ALLOW_PRIVATE", allow),
                ]
                .into_iter()
                .filter(|(_, v)| !v.is_empty()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mcmp");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let echo = std::env::var_os("MCMP_TEST_LOG").is_some();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[mcmp] {line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Owned by `server` from here on: a failed start still kills and reaps it.
        let mut server = Server {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            child,
            _log: std::sync::Mutex::new(rx),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = server
                ._log
                .lock()
                .expect("log lock")
                .recv_timeout(left)
                .expect("server printed its ready line in time");
            let rest = line
                .split("listening on http://")
                .nth(1)
                .or_else(|| line.split("listening on https://").nth(1));
            if let Some(rest) = rest {
                server.addr = rest
                    .split_whitespace()
                    .next()
                    .expect("addr")
                    .parse()
                    .expect("socket addr");
                return server;
            }
        }
    }

    /// Waits until every state change the server has made visible is on
    /// disk (`mcmp_wal_unsynced_records` is 0), so that a `kill -9` right
    /// after cannot take back what the test just read. State changes are
    /// appended in the background by design (a crash repeats their work).
    pub fn wait_wal_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = raw_request(self.addr, "GET", "/metrics", None, "text/plain", b"");
            assert_eq!(status, 200);
            let text = String::from_utf8_lossy(&body);
            if text.lines().any(|l| l == "mcmp_wal_unsynced_records 0") {
                return;
            }
            assert!(Instant::now() < deadline, "the WAL never caught up");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// Sends SIGTERM, waits for the exit and returns every log line the
    /// server wrote after its ready line.
    pub fn terminate_with_log(self) -> Vec<String> {
        let rx = std::mem::replace(&mut *self._log.lock().expect("log lock"), mpsc::channel().1);
        let status = self.terminate();
        assert!(status.success(), "{status}");
        // The reader thread ends at the pipe's end, after the last line.
        let mut lines = Vec::new();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
            lines.push(line);
        }
        lines
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY-free: `kill` is a plain syscall on our own child's pid.
        let pid = self.child.id() as i32;
        let rc = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill -TERM");
        assert!(rc.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a request and returns the status and JSON body (Null when empty).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, bytes) =
            raw_request(self.addr, method, path, token, "application/json", &body);
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, v)
    }

    /// An admin call.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(
            method,
            &format!("/admin/v1{path}"),
            Some(ADMIN),
            body.as_ref(),
        )
    }

    /// `POST /admin/v1/pnx` with a CSV body; returns the status and body.
    pub fn load_pnx(&self, csv: &str) -> (u16, Vec<u8>) {
        raw_request(
            self.addr,
            "POST",
            "/admin/v1/pnx",
            Some(ADMIN),
            "text/csv",
            csv.as_bytes(),
        )
    }

    /// Registers customer `g` with SMS/LMS enabled, bill code `B1`, caller ID
    /// `0212345678` and one client; returns an access token.
    pub fn register_customer(&self, g: &str) -> String {
        self.register_customer_without_client(g);
        self.add_client(g)
    }

    /// A new client of customer `g` (its reports go nowhere): its token.
    pub fn add_client(&self, g: &str) -> String {
        let client = self.admin(
            "POST",
            &format!("/customers/{g}/clients"),
            Some(json!({"report_uri": "http://127.0.0.1:9/r"})),
        );
        assert_eq!(client.0, 201, "client: {}", client.1);
        self.token(
            client.1["client_id"].as_str().expect("id"),
            client.1["client_secret"].as_str().expect("secret"),
        )
    }

    /// Registers customer `g` with SMS/LMS enabled, bill code `B1` and
    /// caller ID `0212345678`, without a client.
    pub fn register_customer_without_client(&self, g: &str) {
        let ok = |(s, v): (u16, Value)| {
            assert!((200..300).contains(&s), "admin call failed: {s} {v}");
            v
        };
        ok(self.admin(
            "PUT",
            &format!("/customers/{g}"),
            Some(json!({"name": "Test"})),
        ));
        ok(self.admin(
            "PUT",
            &format!("/customers/{g}/services"),
            Some(json!({"channels": {"SMS": {"enabled": true, "tps": 0}, "LMS": {"enabled": true, "tps": 0}}})),
        ));
        ok(self.admin(
            "PUT",
            &format!("/customers/{g}/bill-codes/B1"),
            Some(json!({"ad": false})),
        ));
        ok(self.admin(
            "PUT",
            &format!("/customers/{g}/caller-ids/0212345678"),
            None,
        ));
    }

    /// Routes the customer's SMS to a sender group without senders, so its
    /// messages stay `accepted` (held for a sender) while a test looks at them.
    pub fn hold_sms(&self, g: &str) {
        let rule = json!({"carriers": {"*": [{"sender_group": "NOBODY", "ratio": 1}]}});
        let (s, v) = self.admin("PUT", &format!("/routes/{g}/SMS"), Some(rule));
        assert_eq!(s, 200, "{v}");
    }

    /// Gets an access token for a client.
    pub fn token(&self, id: &str, secret: &str) -> String {
        let body =
            json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret});
        let (s, v) = self.call("POST", "/oauth/token", None, Some(&body));
        assert_eq!(s, 200, "token: {v}");
        v["access_token"].as_str().expect("token").to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends messages in batches of 500, asserts every one is accepted and
/// returns their ids in order.
pub fn send_accepted(server: &Server, token: &str, msgs: Vec<Value>) -> Vec<String> {
    let mut ids = Vec::with_capacity(msgs.len());
    for chunk in msgs.chunks(500) {
        let (s, r) = server.call(
            "POST",
            "/v1/messages",
            Some(token),
            Some(&json!({ "messages": chunk })),
        );
        assert_eq!(s, 200, "{r}");
        for x in r["results"].as_array().expect("results") {
            assert_eq!(x["code"], 1000, "{x}");
            ids.push(x["message_id"].as_str().expect("id").to_string());
        }
    }
    ids
}

/// Posts one batch, asserts 200 and returns its results.
pub fn post_batch(server: &Server, token: &str, msgs: Vec<Value>) -> Vec<Value> {
    let (s, r) = server.call(
        "POST",
        "/v1/messages",
        Some(token),
        Some(&json!({ "messages": msgs })),
    );
    assert_eq!(s, 200, "{r}");
    r["results"].as_array().expect("results").clone()
}

/// An SMS for customer tests.
pub fn sms(src: &str) -> Value {
    json!({"src_msg_id": src, "channel": "SMS", "bill_code": "B1", "from": "0212345678", "to": "01012345678", "text": format!("hello {src}")})
}

/// One HTTP/1.1 request on a fresh connection; returns status and body.
pub fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n", body.len());
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(addr, &bytes)
}

/// Writes raw bytes and reads one response (the server closes after it).
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // The server may answer (413) before reading all of a huge body.
    let _ = s.write_all(bytes);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    parse_response(&resp)
}

/// Splits a `Connection: close` response into status and (de-chunked) body.
pub fn parse_response(resp: &[u8]) -> (u16, Vec<u8>) {
    let text_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete response head");
    let head = String::from_utf8_lossy(&resp[..text_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = resp[text_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// A temp dir for a server's data.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mcmp-it-")
        .tempdir_in(std::env::temp_dir())
        .expect("tempdir")
}

/// `mcmp operator add NAME --role ROLE` on the data dir of a stopped server.
pub fn add_operator(data_dir: &Path, name: &str, role: &str, password: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcmp"))
        .args(["operator", "add", name, "--role", role, "--data-dir"])
        .arg(data_dir)
        .env("MCMP_OPERATOR_PASSWORD", password)
        .output()
        .expect("mcmp operator add");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
}
