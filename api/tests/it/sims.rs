//! The simulators of `mcmp-loadtest` (SMSC, provider, sink) started as
//! processes, as a load tester would start them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::raw_request;

/// The `mcmp-loadtest` binary, built by `cargo test --workspace` beside ours.
pub fn loadtest_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("mcmp-loadtest");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p mcmp-loadtest` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// A running simulator and the addresses it printed.
pub struct Sim {
    child: Child,
    /// `kind → addr` from its `ready <kind> <addr>` lines.
    pub ready: Vec<(String, SocketAddr)>,
    /// The CA of its generated certificates (`--tls`: `tls-ca <path>`).
    pub tls_ca: Option<PathBuf>,
}

impl Sim {
    /// Starts `mcmp-loadtest <args>` and waits for `expect` ready lines.
    pub fn start(args: &[&str], expect: usize) -> Sim {
        let mut child = Command::new(loadtest_bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mcmp-loadtest");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sim = Sim {
            child,
            ready: Vec::new(),
            tls_ca: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while sim.ready.len() < expect {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("simulator ready in time");
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["tls-ca", path] = parts.as_slice() {
                sim.tls_ca = Some(PathBuf::from(path));
            }
            if let ["ready", kind, addr] = parts.as_slice() {
                sim.ready
                    .push((kind.to_string(), addr.parse().expect("addr")));
            }
        }
        sim
    }

    /// An SMSC on 127.0.0.1:0 with its control API.
    pub fn smsc(extra: &[&str]) -> Sim {
        let mut args = vec![
            "smsc",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Sim::start(&args, 2)
    }

    /// The address printed for `kind`.
    pub fn addr(&self, kind: &str) -> SocketAddr {
        self.ready
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, a)| *a)
            .expect("kind announced")
    }

    /// GET on the control API (or the simulator's own port for HTTP ones).
    pub fn get(&self, kind: &str, path: &str) -> Value {
        let (s, body) = raw_request(self.addr(kind), "GET", path, None, "application/json", b"");
        assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("json")
    }

    /// POST on the control API.
    pub fn post(&self, kind: &str, path: &str, body: &Value) -> Value {
        let (s, b) = raw_request(
            self.addr(kind),
            "POST",
            path,
            None,
            "application/json",
            body.to_string().as_bytes(),
        );
        assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&b));
        serde_json::from_slice(&b).unwrap_or(Value::Null)
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
