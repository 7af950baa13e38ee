//! Black-box tests of the `mcmp-loadtest` binary: each test starts a
//! simulator on `127.0.0.1:0`, reads its `ready` lines and talks to it over
//! the wire only (a tiny SMPP client and a tiny HTTP client written here,
//! independent of the crate's own codec).

mod e2e;
mod priority;
mod provider;
mod run;
mod sink;
mod smpp_client;
mod smsc;
mod tls;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A running simulator, killed on drop.
pub struct Sim {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    addrs: HashMap<String, SocketAddr>,
    /// The generated CA's PEM file (`--tls`: the `tls-ca <path>` line).
    pub tls_ca: Option<std::path::PathBuf>,
}

impl Sim {
    /// Starts `mcmp-loadtest <args>` and waits for one ready line per kind.
    pub fn start(args: &[&str], kinds: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcmp-loadtest"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mcmp-loadtest");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut addrs = HashMap::new();
        let mut tls_ca = None;
        while kinds.iter().any(|k| !addrs.contains_key(*k)) {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).expect("read ready line");
            assert!(n > 0, "simulator exited before ready ({args:?})");
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["tls-ca", path] = parts.as_slice() {
                tls_ca = Some(path.into());
                continue;
            }
            assert_eq!(parts.len(), 3, "unexpected line {line:?}");
            assert_eq!(parts[0], "ready", "unexpected line {line:?}");
            addrs.insert(parts[1].to_owned(), parts[2].parse().expect("address"));
        }
        Sim {
            child,
            _stdout: stdout,
            addrs,
            tls_ca,
        }
    }

    /// The address printed for `kind`.
    pub fn addr(&self, kind: &str) -> SocketAddr {
        self.addrs[kind]
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `--tls` without `--tls-dir` writes its CA and certificates into a
        // temporary directory the killed simulator cannot remove: it goes
        // here, so no run leaves one in /tmp.
        let generated = self.tls_ca.as_deref().and_then(std::path::Path::parent);
        if let Some(dir) = generated.filter(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("mcmp-loadtest-tls-"))
        }) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One HTTP/1.1 exchange with `Connection: close`; returns status and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    s.write_all(body).expect("write body");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read response");
    let split = find(&resp, b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&resp[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, resp[split + 4..].to_vec())
}

/// `GET path` decoded as JSON.
pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", path, &[], b"");
    assert_eq!(status, 200, "GET {path}");
    serde_json::from_slice(&body).expect("json")
}

/// `POST path` with a JSON body; returns status and decoded JSON.
pub fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let (status, body) = http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Polls `check` until it returns true or [`DEADLINE`] passes.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A tiny HTTP server answering 200 to every request and handing each
/// request body to the returned channel.
pub fn capture_server() -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind capture server");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Some(body) = read_request_body(&mut stream) else {
                continue;
            };
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send(body).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

fn read_request_body(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(DEADLINE)).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(body)
}

#[test]
fn duration_stops_the_simulator() {
    let mut sim = Sim::start(
        &[
            "sink",
            "--listen",
            "127.0.0.1:0",
            "--secret",
            "s",
            "--duration",
            "1",
        ],
        &["sink"],
    );
    let start = Instant::now();
    loop {
        if let Some(status) = sim.child.try_wait().expect("try_wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(start.elapsed() < DEADLINE, "did not stop after --duration");
        std::thread::sleep(Duration::from_millis(20));
    }
}
