//! A customer's webhook endpoint for the tests: a real HTTP server on
//! 127.0.0.1:0 that records every request (time, body, signature) and
//! answers as told (fail the first k requests, or always fail).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One request the endpoint received.
#[derive(Debug, Clone)]
pub struct Hit {
    /// When it arrived.
    pub at: Instant,
    /// The parsed body.
    pub body: Value,
    /// The raw body.
    pub raw: Vec<u8>,
    /// The `X-MCMP-Signature` header.
    pub signature: String,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The status answered.
    pub status: u16,
}

impl Hit {
    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The endpoint.
pub struct Webhook {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request so far.
    pub hits: Arc<Mutex<Vec<Hit>>>,
    /// Serves HTTPS with this configuration.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Every failed TLS handshake so far (the error as the server saw it).
    pub tls_failures: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    /// Answers 500 to the first `fail_first` requests, then 200
    /// (`usize::MAX`: always 500).
    pub fn start(fail_first: usize) -> Webhook {
        Webhook::start_slow(fail_first, Duration::ZERO)
    }

    /// As [`Webhook::start`], answering each request `delay` after it came.
    pub fn start_slow(fail_first: usize, delay: Duration) -> Webhook {
        Webhook::start_with(fail_first, delay, None)
    }

    /// An HTTPS endpoint answering 200, with this certificate.
    pub fn start_tls(tls: Arc<rustls::ServerConfig>) -> Webhook {
        Webhook::start_with(0, Duration::ZERO, Some(tls))
    }

    fn start_with(
        fail_first: usize,
        delay: Duration,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let tls_failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::new(AtomicUsize::new(0));
        let (h, failures, config) = (hits.clone(), tls_failures.clone(), tls.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (h, seen) = (h.clone(), seen.clone());
                let (failures, config) = (failures.clone(), config.clone());
                std::thread::spawn(move || match config {
                    None => serve(conn, h, seen, fail_first, delay),
                    Some(config) => {
                        if let Some(tls) = handshake(conn, config, &failures) {
                            serve(tls, h, seen, fail_first, delay)
                        }
                    }
                });
            }
        });
        Webhook {
            addr,
            hits,
            tls,
            tls_failures,
        }
    }

    /// The URL to register as `report_uri`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/reports", self.addr)
    }

    /// The failed TLS handshakes so far.
    pub fn tls_failures(&self) -> Vec<String> {
        self.tls_failures.lock().expect("failures").clone()
    }

    /// Every report received (from every request, 2xx or not).
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    /// Waits until `pred(hits)` holds.
    pub fn wait(&self, what: &str, pred: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let hits = self.hits();
            if pred(&hits) {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "webhook never saw {what}: {} requests",
                hits.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Completes the server side of a TLS handshake; a failure is recorded.
fn handshake(
    mut tcp: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    failures: &Mutex<Vec<String>>,
) -> Option<rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>> {
    let mut conn = rustls::ServerConnection::new(config).expect("server connection");
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            failures.lock().expect("failures").push(e.to_string());
            return None;
        }
    }
    Some(rustls::StreamOwned::new(conn, tcp))
}

fn serve<S: Read + Write>(
    conn: S,
    hits: Arc<Mutex<Vec<Hit>>>,
    seen: Arc<AtomicUsize>,
    fail_first: usize,
    delay: Duration,
) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut signature) = (0usize, String::new());
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "x-mcmp-signature" => signature = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut raw = vec![0u8; length];
        if reader.read_exact(&mut raw).is_err() {
            return;
        }
        let n = seen.fetch_add(1, Ordering::SeqCst);
        let status = if n < fail_first { 500 } else { 200 };
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        hits.lock().expect("hits").push(Hit {
            at: Instant::now(),
            body,
            raw,
            signature,
            headers,
            status,
        });
        let reason = if status == 200 {
            "OK"
        } else {
            "Internal Server Error"
        };
        std::thread::sleep(delay);
        let answer = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n");
        let writer = reader.get_mut();
        if writer
            .write_all(answer.as_bytes())
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}

/// Every report in the hits, with the status its request got.
pub fn reports(hits: &[Hit]) -> Vec<(Value, u16)> {
    hits.iter()
        .flat_map(|h| {
            h.body["reports"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |r| (r, h.status))
        })
        .collect()
}
