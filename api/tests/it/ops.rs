//! Operations: `serve --demo`, `GET /admin/v1/stats`, agents' heartbeats and
//! `GET /admin/v1/agents`, and operator alerts POSTed to `alerts.webhook-url`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, raw_request, sms, Server, ADMIN};
use crate::routing::{sim_sender, wait_status};

/// A `mcmp serve --demo` whose stdout (the demo banner) and stderr (the
/// ready line) are both read.
struct DemoServer {
    addr: SocketAddr,
    client_id: String,
    client_secret: String,
    child: Child,
}

impl DemoServer {
    fn start(data_dir: &Path) -> DemoServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcmp"))
            .args([
                "serve",
                "--demo",
                "--listen",
                "127.0.0.1:0",
                "--shards",
                "2",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("MCMP_ADMIN_TOKEN", ADMIN)
            .env("MCMP_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mcmp");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        forward_lines(stdout, tx.clone());
        forward_lines(stderr, tx);
        let mut server = DemoServer {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            client_id: String::new(),
            client_secret: String::new(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.client_secret.is_empty() || server.addr.port() == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("server printed its ready line and the demo credentials in time");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().expect("addr");
                server.addr = addr.parse().expect("socket addr");
            } else if let Some(id) = line.strip_prefix("client_id: ") {
                server.client_id = id.trim().to_string();
            } else if let Some(secret) = line.strip_prefix("client_secret: ") {
                server.client_secret = secret.trim().to_string();
            }
        }
        std::thread::spawn(move || rx.iter().for_each(drop));
        server
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let bytes = body.to_string().into_bytes();
        let (s, b) = raw_request(self.addr, method, path, token, "application/json", &bytes);
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(pipe: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        let echo = std::env::var_os("MCMP_TEST_LOG").is_some();
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if echo {
                eprintln!("[mcmp] {line}");
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

#[test]
fn demo_sends_an_sms_end_to_end_and_a_second_run_prints_the_same_client() {
    let dir = data_dir();
    let server = DemoServer::start(dir.path());
    assert!(server.client_id.starts_with("c_"), "{}", server.client_id);
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        server.client_id, server.client_secret
    );
    let (s, body) = raw_request(
        server.addr,
        "POST",
        "/oauth/token",
        None,
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let token: Value = serde_json::from_slice(&body).expect("json");
    let token = token["access_token"].as_str().expect("token").to_string();
    let msg = json!({"src_msg_id": "demo-it-1", "channel": "SMS", "bill_code": "DEMO",
                     "from": "0212345678", "to": "01012345678", "text": "hello from MCMP"});
    let (s, r) = server.call("POST", "/v1/messages", Some(&token), &msg);
    assert_eq!((s, &r["results"][0]["code"]), (200, &json!(1000)), "{r}");
    let id = r["results"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let (_, m) = server.call(
            "GET",
            &format!("/v1/messages/{id}"),
            Some(&token),
            &json!({}),
        );
        if m["status"] == "delivered" || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(m["status"], "delivered", "{m}");
    assert!(
        m["sender"]
            .as_str()
            .is_some_and(|s| s.starts_with("DEMO_S_")),
        "{m}"
    );
    let first_id = server.client_id.clone();
    let first_secret = server.client_secret.clone();
    drop(server);
    let again = DemoServer::start(dir.path());
    assert_eq!(again.client_id, first_id);
    // Only the secret's hash was kept: the rerun prints a fresh secret.
    assert_ne!(again.client_secret, first_secret);
    let (_, clients) = again.call(
        "GET",
        "/admin/v1/customers/DEMO/clients",
        Some(ADMIN),
        &json!({}),
    );
    let n = clients["clients"].as_array().map_or(0, Vec::len);
    assert_eq!(n, 1, "a rerun adds no client: {clients}");
}

#[test]
fn stats_count_messages_by_status_channel_customer_and_sender() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("ST1");
    sim_sender(&server, "ST_S_SIM01", "STG", json!({}));
    let rule = json!({"carriers": {"*": [{"sender_group": "STG", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/ST1/SMS", Some(rule)).0, 200);
    let msgs: Vec<Value> = (0..3).map(|i| sms(&format!("st-{i}"))).collect();
    let (s, r) = server.call(
        "POST",
        "/v1/messages",
        Some(&token),
        Some(&json!({ "messages": msgs })),
    );
    assert_eq!(s, 200, "{r}");
    for x in r["results"].as_array().expect("results") {
        let id = x["message_id"].as_str().expect("id");
        wait_status(&server, &token, id, |s| s == "delivered");
    }
    let (s, st) = server.admin("GET", "/stats", None);
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["messages"]["by_status"]["delivered"], 3, "{st}");
    assert_eq!(st["messages"]["by_channel"]["SMS"], 3, "{st}");
    assert_eq!(st["messages"]["by_customer"]["ST1"], 3, "{st}");
    let sender = &st["senders"]["ST_S_SIM01"];
    assert_eq!(sender["sent"], 3, "{st}");
    assert_eq!(sender["failed"], 0, "{st}");
    assert_eq!(sender["connected"], 2, "one sim session per shard: {st}");
    assert_eq!(
        (st["held"].as_u64(), st["shards"].as_u64()),
        (Some(0), Some(2))
    );
    // Nothing in flight any more; each shard's WAL has its first segment.
    assert_eq!(st["live_messages"], 0, "{st}");
    assert!(st["wal_bytes"].as_u64() >= Some(2 * 1024 * 1024), "{st}");
    let (s, _) = server.call("GET", "/admin/v1/stats", None, None);
    assert_eq!(s, 401);
}

/// Writes a config file into `dir` and returns its path.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("mcmp-test.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn list_agents(server: &Server) -> Vec<Value> {
    let (s, v) = server.admin("GET", "/agents", None);
    assert_eq!(s, 200, "{v}");
    v["agents"].as_array().expect("agents").clone()
}

#[test]
fn agents_show_rates_and_are_lost_after_three_silent_intervals() {
    let dir = data_dir();
    let conf_dir = data_dir();
    let conf = config_file(conf_dir.path(), "[agents]\nheartbeat-interval = \"1s\"\n");
    let server = Server::start_with(dir.path(), &["--config", conf.to_str().expect("utf-8")]);
    let token = server.register_customer("AG1");
    let beat = |id: &str, sent: u64, reports: u64| {
        let body =
            json!({"agent_id": id, "version": "2.1.0", "sent": sent, "reports_received": reports});
        server.call("POST", "/v1/agents/heartbeat", Some(&token), Some(&body))
    };
    assert_eq!(beat("agent-a", 100, 50).0, 204);
    assert_eq!(beat("agent-b", 7, 7).0, 204);
    // Two readings some time apart, so the rate has an interval to divide by.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(beat("agent-a", 160, 80).0, 204);

    let bad = json!({"agent_id": "x", "version": "1", "sent": 1, "reports_received": 1, "snet": 2});
    let (s, v) = server.call("POST", "/v1/agents/heartbeat", Some(&token), Some(&bad));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("unknown_field")),
        "{v}"
    );
    let (s, _) = server.call("POST", "/v1/agents/heartbeat", None, Some(&bad));
    assert_eq!(s, 401);

    let agents = list_agents(&server);
    assert_eq!(agents.len(), 2, "{agents:?}");
    let a = &agents[0];
    assert_eq!(
        (
            a["agent_id"].as_str(),
            a["group_code"].as_str(),
            a["version"].as_str()
        ),
        (Some("agent-a"), Some("AG1"), Some("2.1.0"))
    );
    assert!(
        a["client_id"].as_str().is_some_and(|c| c.starts_with("c_")),
        "{a}"
    );
    assert_eq!(
        (a["sent"].as_u64(), a["reports_received"].as_u64()),
        (Some(160), Some(80))
    );
    let sent_rate = a["sent_per_min"].as_f64().expect("rate");
    let report_rate = a["reports_per_min"].as_f64().expect("rate");
    assert!(sent_rate > 0.0 && report_rate > 0.0, "{a}");
    assert!(
        (sent_rate / report_rate - 2.0).abs() < 0.01,
        "60 vs 30 in the same interval: {a}"
    );
    assert!(
        a["last_heartbeat"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{a}"
    );
    assert_eq!(agents[1]["sent_per_min"], 0.0, "one heartbeat has no rate");
    assert!(agents.iter().all(|a| a["lost"] == false), "{agents:?}");

    // agent-a keeps beating; agent-b falls silent and is lost after 3 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(beat("agent-a", 200, 100).0, 204);
        let agents = list_agents(&server);
        if agents[1]["lost"] == true {
            assert_eq!(agents[0]["lost"], false, "{agents:?}");
            break;
        }
        assert!(Instant::now() < deadline, "agent-b never lost: {agents:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tiny HTTP endpoint that answers 200 and hands every request body over.
fn alert_endpoint() -> (SocketAddr, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let tx = tx.clone();
            std::thread::spawn(move || serve_alerts(conn, tx));
        }
    });
    (addr, rx)
}

/// Reads keep-alive requests until the peer closes.
fn serve_alerts(conn: TcpStream, tx: mpsc::Sender<Value>) {
    let mut writer = conn.try_clone().expect("clone");
    let mut reader = BufReader::new(conn);
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let _ = tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if writer.write_all(ok).is_err() {
            return;
        }
    }
}

/// Waits for an alert with `event` about `sender`.
fn wait_alert(rx: &mpsc::Receiver<Value>, event: &str, sender: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let alert = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {event} alert for {sender}"));
        if alert["event"] == event && alert["detail"]["sender"] == sender {
            return alert;
        }
    }
}

#[test]
fn sender_down_and_up_alerts_are_posted_to_the_webhook() {
    let (endpoint, alerts) = alert_endpoint();
    let dir = data_dir();
    let conf_dir = data_dir();
    let conf = config_file(
        conf_dir.path(),
        &format!("[alerts]\nwebhook-url = \"http://{endpoint}/alerts\"\n"),
    );
    let server = Server::start_with(dir.path(), &["--config", conf.to_str().expect("utf-8")]);
    sim_sender(&server, "AL_S_SIM01", "ALG", json!({}));
    let up = wait_alert(&alerts, "sender_up", "AL_S_SIM01");
    assert!(up["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{up}");
    assert!(up["detail"]["shard"].is_u64(), "{up}");
    let (s, v) = server.admin("DELETE", "/senders/AL_S_SIM01", None);
    assert!((200..300).contains(&s), "{s} {v}");
    let down = wait_alert(&alerts, "sender_down", "AL_S_SIM01");
    assert_eq!(down["detail"]["reason"], "stopped", "{down}");
    // The console's overview lists them too, newest first (SPEC §5.7).
    let (s, listed) = server.admin("GET", "/alerts?limit=10", None);
    assert_eq!(s, 200, "{listed}");
    let events: Vec<(&str, &str)> = listed["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["detail"]["sender"] == "AL_S_SIM01")
        .map(|a| {
            (
                a["event"].as_str().unwrap_or(""),
                a["at"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        events.iter().map(|e| e.0).collect::<Vec<_>>(),
        ["sender_down", "sender_up"],
        "{listed}"
    );
    assert!(events[0].1 >= events[1].1, "{listed}");
    assert_eq!(server.admin("GET", "/alerts?limit=0", None).0, 400);
}

/// Issue 17: with `alerts.format = "slack"` an alert is a Slack (or
/// Mattermost) incoming-webhook payload: `text` naming the event and the
/// sender, and blocks.
#[test]
fn alerts_in_slack_format_are_incoming_webhook_payloads() {
    let (endpoint, alerts) = alert_endpoint();
    let dir = data_dir();
    let conf_dir = data_dir();
    let toml = format!("[alerts]\nwebhook-url = \"http://{endpoint}/hook\"\nformat = \"slack\"\n");
    let conf = config_file(conf_dir.path(), &toml);
    let server = Server::start_with(dir.path(), &["--config", conf.to_str().expect("utf-8")]);
    sim_sender(&server, "SL_S_SIM01", "SLG", json!({}));
    let deadline = Instant::now() + Duration::from_secs(20);
    let up = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let alert = alerts.recv_timeout(left).expect("a Slack alert");
        if alert["text"]
            .as_str()
            .is_some_and(|t| t.contains("SL_S_SIM01"))
        {
            break alert;
        }
    };
    let text = up["text"].as_str().expect("text");
    assert!(text.starts_with("MCMP alert: sender_up"), "{up}");
    let blocks = up["blocks"].as_array().expect("blocks");
    assert_eq!(
        blocks.first().map(|b| &b["type"]),
        Some(&json!("section")),
        "{up}"
    );
    assert_eq!(
        blocks.last().map(|b| &b["type"]),
        Some(&json!("context")),
        "{up}"
    );
    assert!(up.get("event").is_none(), "not the JSON form: {up}");
    drop(server);
    let conf = config_file(conf_dir.path(), "[alerts]\nformat = \"xml\"\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcmp"))
        .args(["check-config", conf.to_str().expect("utf-8")])
        .output()
        .expect("check-config");
    assert!(!out.status.success(), "format = xml must be refused");
}

/// SPEC §5.9: `GET /openapi.json` serves the repository's
/// `docs/openapi.json`, an OpenAPI 3.1 document, without a token.
#[test]
fn openapi_json_is_served_as_the_repository_file() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (s, served) = server.call("GET", "/openapi.json", None, None);
    assert_eq!(s, 200, "{served}");
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json");
    let file: Value = serde_json::from_str(&file).expect("JSON");
    assert_eq!(served, file);
    assert_eq!(served["openapi"], "3.1.0");
    let (s, _) = server.call("POST", "/openapi.json", None, None);
    assert_eq!(s, 404, "GET only");
}
