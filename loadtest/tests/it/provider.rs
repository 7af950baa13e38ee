//! The HTTP provider simulator: accept, then report to `report_url`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{capture_server, get_json, post_json, Sim, DEADLINE};

fn send(sim: &Sim, id: &str, channel: &str, report_url: &str) -> (u16, Value) {
    let body = json!({
        "message_id": id,
        "channel": channel,
        "to": "01012345678",
        "text": "hi",
        "template_code": "T1",
        "vars": {"name": "x"},
        "report_url": report_url,
    });
    post_json(sim.addr("provider"), "/send", &body)
}

#[test]
fn results_are_posted_to_the_report_url() {
    let (addr, bodies) = capture_server();
    let url = format!("http://{addr}/provider/v1/reports/G_K_P01");
    let sim = Sim::start(
        &[
            "provider",
            "--listen",
            "127.0.0.1:0",
            "--fail-channels",
            "RCS",
            "--report-delay-ms",
            "5",
        ],
        &["provider"],
    );
    let (status, kko) = send(&sim, "m1", "KKO", &url);
    assert_eq!(status, 200);
    assert_eq!(kko["status"], "accepted");
    let (_, rcs) = send(&sim, "m2", "RCS", &url);
    assert_ne!(kko["provider_msg_id"], rcs["provider_msg_id"]);

    // The two results may come in one batch or two.
    let mut results: HashMap<String, Value> = HashMap::new();
    let start = Instant::now();
    while results.len() < 2 {
        let left = DEADLINE
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1));
        let body = bodies.recv_timeout(left).expect("a report POST");
        let v: Value = serde_json::from_slice(&body).expect("json");
        for r in v["results"].as_array().expect("results") {
            results.insert(
                r["provider_msg_id"].as_str().expect("id").to_owned(),
                r.clone(),
            );
        }
    }
    let kko = &results[kko["provider_msg_id"].as_str().expect("id")];
    assert_eq!(
        (kko["status"].as_str(), kko["code"].as_str()),
        (Some("delivered"), Some("K000"))
    );
    let rcs = &results[rcs["provider_msg_id"].as_str().expect("id")];
    assert_eq!(rcs["status"], "failed");

    let stats = get_json(sim.addr("provider"), "/stats");
    assert_eq!(stats["by_channel"]["KKO"]["delivered"], 1);
    assert_eq!(stats["by_channel"]["RCS"]["failed"], 1);
    assert_eq!(stats["duplicates"], 0);
}

#[test]
fn sync_answers_are_final_and_duplicates_counted() {
    let sim = Sim::start(
        &[
            "provider",
            "--listen",
            "127.0.0.1:0",
            "--sync",
            "--fail-rate",
            "1.0",
        ],
        &["provider"],
    );
    let body = json!({"message_id": "m1", "channel": "KKO", "to": "010", "text": "hi"});
    let (status, answer) = post_json(sim.addr("provider"), "/send", &body);
    assert_eq!(status, 200);
    assert_eq!(
        (answer["status"].as_str(), answer["code"].as_str()),
        (Some("failed"), Some("K105"))
    );
    post_json(sim.addr("provider"), "/send", &body);
    let stats = get_json(sim.addr("provider"), "/stats");
    assert_eq!(stats["duplicates"], 1);
    assert_eq!(stats["by_channel"]["KKO"]["sent"], 2);
    // A body without message_id is refused.
    let (status, _) = post_json(sim.addr("provider"), "/send", &json!({"channel": "KKO"}));
    assert_eq!(status, 400);
}
