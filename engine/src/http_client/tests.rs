//! Tests of the shard HTTP client against an in-test HTTP/1.1 server, and
//! that server itself ([`TestServer`]), which the `http` sender's tests reuse.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::{parse_url, HttpClient, HttpError};
use crate::rt;

/// A request as the test server saw it.
#[derive(Debug, Clone)]
pub(crate) struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the test server answers; `None` means it never answers.
pub(crate) type Answer = Option<(u16, String)>;

/// An HTTP/1.1 keep-alive server on 127.0.0.1:0, one std thread per
/// connection, answering each request with `answer(request)`.
pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<SeenRequest>>>,
}

impl TestServer {
    pub fn start(answer: fn(&SeenRequest) -> Answer) -> TestServer {
        TestServer::start_at("127.0.0.1:0", answer)
    }

    /// [`TestServer::start`] on a given address (a port freed earlier).
    pub fn start_at(addr: &str, answer: fn(&SeenRequest) -> Answer) -> TestServer {
        let listener = TcpListener::bind(addr).expect("binds");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || serve(stream, answer, &r));
            }
        });
        TestServer {
            addr,
            connections,
            requests,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

fn serve(stream: TcpStream, answer: fn(&SeenRequest) -> Answer, seen: &Mutex<Vec<SeenRequest>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader) {
        seen.lock().expect("lock").push(request.clone());
        let Some((status, body)) = answer(&request) else {
            // Never answer: hold the connection until the client drops it.
            let _ = reader.read_to_end(&mut Vec::new());
            return;
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body.as_bytes()).is_err()
        {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<SeenRequest> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok().filter(|&n| n > 0)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(SeenRequest {
        method,
        path,
        headers,
        body,
    })
}

/// Runs `f` on a one-shard executor and returns its output.
pub(crate) fn on_shard<T, F, Fut>(f: F) -> T
where
    T: Send + 'static,
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    rt::run_shards(1, move |_| f())
        .expect("executor runs")
        .into_iter()
        .next()
        .expect("one shard")
}

fn echo(r: &SeenRequest) -> Answer {
    match r.path.as_str() {
        "/fail" => Some((500, r#"{"error":"boom"}"#.into())),
        "/hang" => None,
        _ => Some((200, String::from_utf8_lossy(&r.body).into_owned())),
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn post_round_trip_sends_json_and_reads_the_answer() {
    let server = TestServer::start(echo);
    let url = server.url("/submit?x=1");
    let headers = vec![("X-Api-Key".to_string(), "k1".to_string())];
    let response = on_shard(move || {
        let (url, headers) = (url.clone(), headers.clone());
        async move {
            HttpClient::new()
                .post_json(&url, &headers, Bytes::from_static(b"{\"a\":1}"), TIMEOUT)
                .await
        }
    })
    .expect("answered");
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"{\"a\":1}");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/submit?x=1");
    assert_eq!(seen[0].header("x-api-key"), Some("k1"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        seen[0].header("host"),
        Some(server.addr.to_string().as_str())
    );
}

#[test]
fn keep_alive_reuses_one_connection() {
    let server = TestServer::start(echo);
    let url = server.url("/");
    let statuses = on_shard(move || {
        let url = url.clone();
        async move {
            let client = HttpClient::new();
            let mut statuses = Vec::new();
            for i in 0..5 {
                let body = Bytes::from(format!("{{\"n\":{i}}}"));
                let r = client.post_json(&url, &[], body, TIMEOUT).await;
                statuses.push(r.map(|r| r.status));
            }
            statuses
        }
    });
    assert!(statuses.iter().all(|s| s == &Ok(200)), "{statuses:?}");
    assert_eq!(server.seen().len(), 5);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = TestServer::start(echo);
    let url = server.url("/hang");
    let result = on_shard(move || {
        let url = url.clone();
        async move {
            let timeout = Duration::from_millis(300);
            HttpClient::new()
                .post_json(&url, &[], Bytes::from_static(b"{}"), timeout)
                .await
        }
    });
    assert_eq!(result, Err(HttpError::Timeout));
}

#[test]
fn connection_refused_is_a_connect_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("binds");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let result = on_shard(move || {
        let url = url.clone();
        async move {
            HttpClient::new()
                .post_json(&url, &[], Bytes::from_static(b"{}"), TIMEOUT)
                .await
        }
    });
    assert!(matches!(result, Err(HttpError::Connect(_))), "{result:?}");
}

#[test]
fn a_500_is_a_response_not_an_error() {
    let server = TestServer::start(echo);
    let url = server.url("/fail");
    let response = on_shard(move || {
        let url = url.clone();
        async move {
            HttpClient::new()
                .post_json(&url, &[], Bytes::from_static(b"{}"), TIMEOUT)
                .await
        }
    })
    .expect("answered");
    assert_eq!(response.status, 500);
    assert_eq!(&response.body[..], br#"{"error":"boom"}"#);
}

#[test]
fn concurrent_requests_stay_within_the_connection_cap() {
    let server = TestServer::start(echo);
    let url = server.url("/");
    let (ok, peak, open_after) = on_shard(move || {
        let url = url.clone();
        async move {
            let client = std::rc::Rc::new(HttpClient::new());
            let tasks: Vec<_> = (0..super::MAX_CONNS_PER_HOST * 2)
                .map(|_| {
                    let (client, url) = (client.clone(), url.clone());
                    rt::spawn_task(async move {
                        client
                            .post_json(&url, &[], Bytes::from_static(b"{}"), TIMEOUT)
                            .await
                    })
                })
                .collect();
            let done = std::rc::Rc::new(std::cell::Cell::new(false));
            let sampler = {
                let (client, url, done) = (client.clone(), url.clone(), done.clone());
                rt::spawn_task(async move {
                    let mut peak = 0;
                    while !done.get() {
                        peak = peak.max(client.open_connections(&url));
                        rt::sleep(Duration::from_millis(1)).await;
                    }
                    peak
                })
            };
            let mut ok = 0;
            for t in tasks {
                ok += usize::from(t.await.is_ok_and(|r| r.status == 200));
            }
            done.set(true);
            (ok, sampler.await, client.open_connections(&url))
        }
    });
    assert_eq!(ok, super::MAX_CONNS_PER_HOST * 2);
    assert!(peak <= super::MAX_CONNS_PER_HOST, "{peak}");
    assert!(open_after <= super::MAX_IDLE_PER_HOST, "{open_after}");
    assert!(server.connections.load(Ordering::SeqCst) <= super::MAX_CONNS_PER_HOST * 2);
}

#[test]
fn urls_parse_with_scheme_and_default_ports() {
    let t = parse_url("http://Example.com:8080/a/b?c=d#frag").expect("parses");
    assert_eq!(
        (
            t.authority.as_str(),
            t.host.as_str(),
            t.port,
            t.path.as_str()
        ),
        ("Example.com:8080", "Example.com", 8080, "/a/b?c=d")
    );
    assert_eq!(t.pool_key(), "http://example.com:8080");
    let t = parse_url("http://[::1]").expect("parses");
    assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 80, "/"));
    let t = parse_url("http://h?q").expect("parses");
    assert_eq!(t.path, "/?q");
    let t = parse_url("HTTPS://example.com/x").expect("parses");
    assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/x"));
    assert_eq!(t.pool_key(), "https://example.com:443");
    for bad in [
        "ftp://x/",
        "http://",
        "http://u:p@h/",
        "http://h:0/",
        "http://h:x/",
    ] {
        assert!(
            matches!(parse_url(bad), Err(HttpError::InvalidUrl(_))),
            "{bad}"
        );
    }
}
