//! `GET /metrics` after real traffic: the families SPEC §2.4 names, with
//! values that match what was sent, bounded labels (nothing per message),
//! and an exposition that `promtool check metrics` accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, sms, Server};
use crate::routing::{sim_sender, wait_status};

/// One sample line: family-level name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape: the raw text, its Content-Type and its samples.
struct Scrape {
    text: String,
    content_type: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the series with exactly these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Like [`Scrape::get`], panicking with the family's lines when absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            let family: Vec<&str> = self.text.lines().filter(|l| l.contains(name)).collect();
            panic!("no series {name}{labels:?}; family lines: {family:#?}")
        })
    }

    /// A histogram's buckets with these other labels: (le, count), in
    /// exposition order.
    fn buckets(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(String, f64)> {
        let bucket = format!("{name}_bucket");
        self.samples
            .iter()
            .filter(|s| s.name == bucket)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .filter_map(|s| Some((s.labels.get("le")?.clone(), s.value)))
            .collect()
    }

    fn has_family(&self, name: &str, kind: &str) -> bool {
        self.text
            .lines()
            .any(|l| l == format!("# TYPE {name} {kind}"))
    }
}

/// Parses a label block `k="v",k2="v2"` (with `\\`, `\"`, `\n` escapes).
fn parse_labels(block: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = block;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label key");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("unterminated label value");
            match c {
                '\\' => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(key.trim_start_matches(',').to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let value = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name.to_string(),
                parse_labels(rest.strip_suffix('}').expect("closing brace")),
            ),
            None => (series.to_string(), BTreeMap::new()),
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// `GET /metrics` over a raw connection, keeping the response head.
fn scrape(server: &Server) -> Scrape {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&resp[..head_end]).to_string();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let (status, body) = crate::harness::parse_response(&resp);
    assert_eq!(status, 200, "{head}");
    let text = String::from_utf8(body).expect("utf-8 exposition");
    let samples = parse_exposition(&text);
    Scrape {
        text,
        content_type,
        samples,
    }
}

/// Runs `promtool check metrics` on `text` if promtool is installed; without
/// it the check fails under CI (`CI` set) and is skipped otherwise.
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not on PATH, and CI must run it (Debian package `prometheus`)"
            );
            eprintln!("SKIP promtool check metrics: promtool is not on PATH");
            return;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn post(server: &Server, token: &str, msgs: Vec<Value>) -> Vec<Value> {
    crate::harness::post_batch(server, token, msgs)
}

/// Polls the scrape until `pred` holds (metrics of the other shards are
/// merged at scrape time; finals may trail the message state by a moment).
fn scrape_until(server: &Server, what: &str, pred: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(server);
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {what}:\n{}",
            s.text
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_count_the_traffic_in_bounded_families_and_pass_promtool() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("MT1");
    sim_sender(&server, "G_S_MET01", "MET", json!({}));
    let rule = json!({"carriers": {"*": [{"sender_group": "MET", "ratio": 1}]}});
    let (s, v) = server.admin("PUT", "/routes/MT1/SMS", Some(rule));
    assert_eq!(s, 200, "{v}");

    // 5 accepted SMS in two requests, then a duplicate (3006) and an
    // unknown bill code (3004).
    let mut ids = Vec::new();
    let mut srcs = Vec::new();
    for batch in [0..3, 3..5] {
        let msgs: Vec<Value> = batch.map(|i| sms(&format!("met-{i}"))).collect();
        for r in post(&server, &token, msgs) {
            assert_eq!(r["code"], 1000, "{r}");
            ids.push(r["message_id"].as_str().expect("id").to_string());
            srcs.push(r["src_msg_id"].as_str().expect("src").to_string());
        }
    }
    let mut bad_bill = sms("met-badbill");
    bad_bill["bill_code"] = json!("NOPE");
    let rejected = post(&server, &token, vec![sms("met-0"), bad_bill]);
    assert_eq!(rejected[0]["code"], 3006, "{rejected:?}");
    assert_eq!(rejected[1]["code"], 3004, "{rejected:?}");
    for id in &ids {
        wait_status(&server, &token, id, |s| s == "delivered");
    }

    let m = scrape_until(&server, "5 delivered SMS", |m| {
        m.get(
            "mcmp_messages_final_total",
            &[
                ("channel", "SMS"),
                ("status", "delivered"),
                ("code", "2000"),
            ],
        ) == Some(5.0)
    });
    assert!(
        m.content_type.starts_with("text/plain") && m.content_type.contains("version=0.0.4"),
        "Content-Type: {}",
        m.content_type
    );

    // Accepted / rejected by channel and code.
    assert_eq!(
        m.value("mcmp_messages_accepted_total", &[("channel", "SMS")]),
        5.0
    );
    for ch in ["LMS", "MMS", "RCS", "KKO", "EMAIL", "PUSH"] {
        assert_eq!(
            m.value("mcmp_messages_accepted_total", &[("channel", ch)]),
            0.0
        );
    }
    assert_eq!(
        m.value(
            "mcmp_messages_rejected_total",
            &[("channel", "SMS"), ("code", "3006")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "mcmp_messages_rejected_total",
            &[("channel", "SMS"), ("code", "3004")]
        ),
        1.0
    );
    let delivered_finals: f64 = m
        .samples
        .iter()
        .filter(|s| s.name == "mcmp_messages_final_total" && s.labels["status"] == "delivered")
        .map(|s| s.value)
        .sum();
    assert_eq!(delivered_finals, 5.0, "{}", m.text);

    // WAL appends and fsync latency (default durability is fsync).
    assert!(m.value("mcmp_wal_appends_total", &[]) > 0.0);
    assert!(m.value("mcmp_wal_bytes_total", &[]) > 0.0);
    assert!(m.value("mcmp_wal_fsync_seconds_count", &[]) > 0.0);
    let fsyncs = m.value("mcmp_wal_fsync_seconds_count", &[]);
    assert_eq!(
        m.value("mcmp_wal_fsync_seconds_bucket", &[("le", "+Inf")]),
        fsyncs
    );

    // HTTP latency histogram: buckets cumulative, the last one the count,
    // and the requests within 10 s.
    let route = ("route", "messages_post");
    let buckets = m.buckets("mcmp_http_request_seconds", &[route]);
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    assert_eq!(buckets.last().map(|b| b.0.as_str()), Some("+Inf"));
    assert_eq!(buckets.last().map(|b| b.1), Some(3.0));
    assert_eq!(
        m.value("mcmp_http_request_seconds_bucket", &[route, ("le", "10")]),
        3.0,
        "a request of over 10 s is not a request latency"
    );
    assert_eq!(m.value("mcmp_http_request_seconds_count", &[route]), 3.0);
    assert!(m.value("mcmp_http_request_seconds_sum", &[route]) > 0.0);
    assert_eq!(
        m.value("mcmp_http_requests_total", &[route, ("status", "200")]),
        3.0
    );
    assert!(
        m.value(
            "mcmp_http_requests_total",
            &[("route", "admin"), ("status", "200")]
        ) >= 1.0
    );

    // Per-sender gauges: the sim sender is connected and idle again.
    let sender = ("sender", "G_S_MET01");
    assert!(m.value("mcmp_sender_connected", &[sender]) >= 1.0);
    assert_eq!(m.value("mcmp_sender_queue_depth", &[sender]), 0.0);
    assert_eq!(m.value("mcmp_sender_in_flight", &[sender]), 0.0);
    assert_eq!(m.value("mcmp_held_messages", &[]), 0.0);
    assert_eq!(m.value("mcmp_live_messages", &[]), 0.0);
    assert!(m.value("mcmp_wal_disk_bytes", &[]) > 0.0);

    // Delivery latency: one sample per delivered SMS.
    assert_eq!(
        m.value("mcmp_delivery_seconds_count", &[("channel", "SMS")]),
        5.0
    );
    let within_30s = m.value(
        "mcmp_delivery_seconds_bucket",
        &[("channel", "SMS"), ("le", "30")],
    );
    assert_eq!(within_30s, 5.0, "every SMS delivered within 30 s");

    // Webhooks (the client's report_uri is a closed port).
    m.value("mcmp_webhook_requests_total", &[("result", "success")]);
    m.value("mcmp_webhook_held_back_reports", &[]);
    let refused = ("reason", "connect");
    scrape_until(&server, "a refused webhook attempt", |m| {
        m.get(
            "mcmp_webhook_requests_total",
            &[("result", "failure"), refused],
        )
        .is_some_and(|n| n >= 1.0)
    });
    m.value("mcmp_webhook_pending_retries", &[]);

    assert!(m.value("process_resident_memory_bytes", &[]) > 1e6);
    every_dashboard_expression_names_an_exported_metric(&m);

    for (family, kind) in [
        ("mcmp_messages_accepted_total", "counter"),
        ("mcmp_messages_rejected_total", "counter"),
        ("mcmp_messages_final_total", "counter"),
        ("mcmp_wal_appends_total", "counter"),
        ("mcmp_wal_fsync_seconds", "histogram"),
        ("mcmp_http_request_seconds", "histogram"),
        ("mcmp_delivery_seconds", "histogram"),
        ("mcmp_sender_connected", "gauge"),
        ("mcmp_sender_queue_depth", "gauge"),
        ("mcmp_sender_in_flight", "gauge"),
        ("mcmp_webhook_requests_total", "counter"),
        ("mcmp_webhook_pending_retries", "gauge"),
    ] {
        assert!(m.has_family(family, kind), "no `# TYPE {family} {kind}`");
    }

    // Nothing is labelled per message: only the bounded label names, and no
    // label value is a message id, a src_msg_id or a phone number.
    let allowed: BTreeSet<&str> = [
        "channel", "code", "status", "route", "sender", "le", "result", "reason", "version",
    ]
    .into_iter()
    .collect();
    let mut per_message: BTreeSet<String> = ids.iter().chain(&srcs).cloned().collect();
    per_message.extend([
        "met-badbill".to_string(),
        "01012345678".into(),
        "0212345678".into(),
    ]);
    for s in &m.samples {
        let ours = s.name.starts_with("mcmp_") || s.name == "process_resident_memory_bytes";
        assert!(ours, "foreign family {}", s.name);
        for (k, v) in &s.labels {
            assert!(allowed.contains(k.as_str()), "label {k} on {s:?}");
            assert!(!per_message.contains(v), "per-message label value on {s:?}");
        }
    }
    assert!(m.samples.len() < 2_000, "{} series", m.samples.len());

    promtool_check(&m.text);

    // Counters only grow: a second scrape after more traffic.
    let more = post(&server, &token, vec![sms("met-5")]);
    assert_eq!(more[0]["code"], 1000, "{more:?}");
    let again = scrape_until(&server, "the 6th accepted SMS", |m| {
        m.get("mcmp_messages_accepted_total", &[("channel", "SMS")]) == Some(6.0)
    });
    assert!(again.value("mcmp_wal_appends_total", &[]) > m.value("mcmp_wal_appends_total", &[]));
    promtool_check(&again.text);
}

/// Issue 17: every expression of the Grafana dashboard
/// (`deploy/grafana/mcmp.json`) names only metrics the server exports (a
/// histogram's `_bucket`, `_sum` and `_count` series included).
fn every_dashboard_expression_names_an_exported_metric(m: &Scrape) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/mcmp.json");
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("JSON");
    let mut names = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "a dashboard of {} panels", panels.len());
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "a panel without a query: {panel}");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            let idents = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            names.extend(
                idents
                    .filter(|w| w.starts_with("mcmp_") || w.starts_with("process_"))
                    .map(str::to_string),
            );
        }
    }
    assert!(names.len() >= 15, "the dashboard names {names:?}");
    let families: BTreeSet<&str> = m
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for name in &names {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                m.has_family(base, "histogram").then_some(base)
            })
            .unwrap_or(name);
        assert!(
            families.contains(family),
            "the dashboard names {name}, which /metrics does not export"
        );
    }
}
