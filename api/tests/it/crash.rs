//! The crash soak, CI-sized (issue 13): `kill -9` under load, again and
//! again, with a re-send of every request whose answer was lost, against an
//! SMSC that forgets the receipts of a broken bind. After each restart every
//! accepted message answers; a re-send gets 1000 or 3006 with the original
//! id; at the end every accepted message is final (delivered, or 5007 once
//! its validity ends without a receipt) with one report. Duplicate submits
//! at the SMSC (at-least-once toward carriers, SPEC §4) are counted and
//! printed. The longer run is `CRASH_CYCLES=50 cargo test -p mcmp-api
//! --test it crash -- --nocapture`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data_dir, parse_response, Server};
use crate::routing::wait_status;
use crate::sims::Sim;
use crate::smpp::{smpp_sender, wait_connected};
use crate::webhook::{reports, Hit, Webhook};

/// One request of `srcs`; `None` when its answer was lost (the server died).
pub(crate) fn try_send(addr: SocketAddr, token: &str, srcs: &[String]) -> Option<(u16, Value)> {
    let msgs: Vec<Value> = srcs
        .iter()
        .map(|s| {
            json!({"src_msg_id": s, "channel": "SMS", "bill_code": "B1",
            "from": "0212345678", "to": "01012345678", "text": format!("crash {s}")})
        })
        .collect();
    let body = json!({ "messages": msgs }).to_string();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    if !resp.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let (status, bytes) = parse_response(&resp);
    Some((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Records the answer to `srcs`: a new message, or a duplicate that names
/// the message accepted before (whose answer may have been lost).
fn record(accepted: &mut HashMap<String, String>, srcs: &[String], answer: &Value) {
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), srcs.len(), "{answer}");
    for (src, r) in srcs.iter().zip(results) {
        let id = r["message_id"].as_str().expect("message_id").to_string();
        match r["code"].as_u64() {
            Some(1000) => {
                let before = accepted.insert(src.clone(), id);
                assert!(before.is_none(), "{src} accepted twice: {before:?} and {r}");
            }
            Some(3006) => {
                let known = accepted.entry(src.clone()).or_insert_with(|| id.clone());
                assert_eq!(*known, id, "{src}: 3006 must name the original");
            }
            _ => panic!("{src}: {r}"),
        }
    }
}

/// Every accepted message answers, as itself.
fn all_readable(server: &Server, token: &str, accepted: &HashMap<String, String>, when: &str) {
    for (src, id) in accepted {
        let (s, m) = server.call("GET", &format!("/v1/messages/{id}"), Some(token), None);
        assert_eq!(s, 200, "{when}: {src} ({id}) lost: {m}");
        assert_eq!(m["src_msg_id"].as_str(), Some(src.as_str()), "{when}: {m}");
    }
}

#[test]
fn kill_9_under_load_with_resends_ends_every_message_final_with_one_report() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(5);
    let smsc = Sim::smsc(&["--dlr-delay-ms", "400", "--forget-receipts"]);
    let hook = Webhook::start(0);
    let dir = data_dir();
    let config = dir.path().join("mcmp.toml");
    let toml = "[routing]\nvalidity = \"5s\"\n[wal]\ncheckpoint-interval = \"500ms\"\n";
    std::fs::write(&config, toml).expect("config");
    let args = ["--config", config.to_str().expect("utf-8")];
    let server = Server::start_with(dir.path(), &args);
    let _ = server.register_customer("CR");
    let (s, c) = server.admin(
        "POST",
        "/customers/CR/clients",
        Some(json!({"report_uri": hook.url()})),
    );
    assert_eq!(s, 201, "{c}");
    let token = server.token(
        c["client_id"].as_str().expect("id"),
        c["client_secret"].as_str().expect("secret"),
    );
    smpp_sender(&server, "G_S_CR01", "CRG", &smsc, json!({}));
    let rule = json!({"carriers": {"*": [{"sender_group": "CRG", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/CR/SMS", Some(rule)).0, 200);
    server.kill9();

    let mut accepted: HashMap<String, String> = HashMap::new();
    let mut lost: Vec<Vec<String>> = Vec::new();
    let mut next = 0usize;
    let kills = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    for cycle in 0..cycles {
        let server = Server::start_with(dir.path(), &args);
        all_readable(&server, &token, &accepted, &format!("cycle {cycle}"));
        for srcs in std::mem::take(&mut lost) {
            let (s, answer) = try_send(server.addr, &token, &srcs).expect("an answer");
            assert_eq!(s, 200, "{answer}");
            record(&mut accepted, &srcs, &answer);
        }
        wait_connected(&server, "G_S_CR01");
        // Load, and a kill -9 in the middle of it.
        let pid = server.pid().to_string();
        let after = Duration::from_millis(300 + (cycle as u64 * 173) % 600);
        let killed = kills.clone();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(after);
            let _ = Command::new("kill").args(["-9", &pid]).status();
            killed.lock().expect("kills").push(Instant::now());
        });
        loop {
            let srcs: Vec<String> = (0..20)
                .map(|_| {
                    next += 1;
                    format!("x{next}")
                })
                .collect();
            match try_send(server.addr, &token, &srcs) {
                Some((200, answer)) => record(&mut accepted, &srcs, &answer),
                Some((s, answer)) => panic!("cycle {cycle}: {s} {answer}"),
                None => {
                    lost.push(srcs);
                    break;
                }
            }
        }
        killer.join().expect("killer");
        server.kill9();
    }
    let server = Server::start_with(dir.path(), &args);
    all_readable(&server, &token, &accepted, "after the last restart");
    for srcs in std::mem::take(&mut lost) {
        let (s, answer) = try_send(server.addr, &token, &srcs).expect("an answer");
        assert_eq!(s, 200, "{answer}");
        record(&mut accepted, &srcs, &answer);
    }
    assert!(
        accepted.len() >= 100 * cycles,
        "too little load: {}",
        accepted.len()
    );

    // Every message ends final: delivered, or 5007 when its receipt was
    // forgotten with the bind it came on.
    let mut ends: HashMap<String, (String, u64)> = HashMap::new();
    for id in accepted.values() {
        let m = wait_status(&server, &token, id, |s| s == "delivered" || s == "failed");
        let end = (
            m["status"].as_str().unwrap_or("").to_string(),
            m["code"].as_u64().unwrap_or(0),
        );
        assert!(
            end == ("delivered".into(), 2000) || end == ("failed".into(), 5007),
            "{m}"
        );
        ends.insert(id.clone(), end);
    }
    // One report per message, saying how it ended (a report the endpoint
    // took just before a kill may come again after the restart: webhooks
    // are at-least-once; counted, and it must say the same).
    let hits = hook.wait("a report for every accepted message", |hits| {
        let seen: std::collections::HashSet<String> = reports(hits)
            .into_iter()
            .filter_map(|(r, _)| r["message_id"].as_str().map(str::to_string))
            .collect();
        ends.keys().all(|id| seen.contains(id))
    });
    let mut per_message: HashMap<String, usize> = HashMap::new();
    for (r, _) in reports(&hits) {
        let id = r["message_id"].as_str().expect("message_id").to_string();
        let (status, code) = ends.get(&id).expect("a report only for accepted messages");
        assert_eq!(
            (r["status"].as_str(), r["code"].as_u64()),
            (Some(status.as_str()), Some(*code)),
            "the report says how it ended: {r}"
        );
        *per_message.entry(id).or_default() += 1;
    }
    let again = per_message.values().filter(|n| **n > 1).count();
    let expired = ends.values().filter(|e| e.1 == 5007).count();
    let stats = smsc.get("control", "/stats");
    eprintln!(
        "crash soak: {cycles} kills, {} accepted, {} expired (receipt forgotten), \
         {again} reports delivered again after a kill; SMSC: {} submits, {} duplicate submits, \
         {} receipts forgotten",
        accepted.len(),
        expired,
        stats["messages"],
        stats["duplicates"],
        stats["receipts_forgotten"]
    );
    let kills = kills.lock().expect("kills").clone();
    copies_only_across_kills(&hits, &kills);
}

/// Longest a report's delivery may take to be durable under CI load: a
/// report the endpoint took this long before a kill may come again.
const UNDURABLE: Duration = Duration::from_secs(3);

/// How late the endpoint may note a request sent just before a kill.
const NOTED_LATE: Duration = Duration::from_secs(1);

/// A report comes again only when the endpoint took it just before a
/// kill (its delivery not yet durable): every copy but the last arrived
/// within [`UNDURABLE`] before a kill that came before the next copy
/// (or was noted by the endpoint up to [`NOTED_LATE`] after that kill).
/// How many come again is the size of the batches in flight at the kills
/// (up to 1,000 reports each), so a count says nothing; the times do.
fn copies_only_across_kills(hits: &[Hit], kills: &[Instant]) {
    let mut copies: HashMap<String, Vec<Instant>> = HashMap::new();
    for hit in hits {
        for r in hit.body["reports"].as_array().into_iter().flatten() {
            if let Some(id) = r["message_id"].as_str() {
                copies.entry(id.to_string()).or_default().push(hit.at);
            }
        }
    }
    for (id, mut at) in copies {
        at.sort();
        for pair in at.windows(2) {
            let (first, next) = (pair[0], pair[1]);
            let killed = kills.iter().any(|k| {
                let after_first = k.checked_duration_since(first);
                let before_first = first.checked_duration_since(*k);
                *k <= next
                    && (after_first.is_some_and(|d| d <= UNDURABLE)
                        || before_first.is_some_and(|d| d <= NOTED_LATE))
            });
            assert!(
                killed,
                "{id}: delivered again {:?} later with no kill within {UNDURABLE:?} after the first copy",
                next - first
            );
        }
    }
}
