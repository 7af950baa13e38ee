use std::time::Duration;

use super::render::FSYNC_BUCKETS;
use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One shard's worth of every family, with known values.
fn sample_shard() -> LocalMetrics {
    let m = LocalMetrics::new();
    m.accepted(Channel::Sms);
    m.accepted(Channel::Sms);
    m.accepted(Channel::Kko);
    m.rejected(Channel::Lms, ResultCode::DuplicateSrcMsgId);
    m.final_state(Channel::Sms, Status::Delivered, 2000);
    m.final_state(Channel::Sms, Status::Failed, 9999);
    m.final_state(Channel::Sms, Status::Queued, 1000);
    m.wal_append(512);
    m.wal_append(256);
    m.wal_fsync(ms(2));
    m.http_request(HttpRoute::MessagesPost, 202, ms(3));
    m.http_request(HttpRoute::Token, 401, ms(1));
    m.http_request(HttpRoute::Other, 1000, ms(1));
    m.delivery(Channel::Sms, ms(1500));
    m.webhook(Ok(()));
    m.webhook(Err(WebhookFailure::Timeout));
    m.webhook(Ok(()));
    m.smpp_protocol_error("skt-1");
    m
}

fn sample_gauges() -> Gauges {
    let mut g = Gauges {
        held_messages: 7,
        webhook_pending_retries: 3,
        shards: 2,
        ..Gauges::default()
    };
    let s = SenderGauges {
        queue_depth: 10,
        in_flight: 4,
        connected: 2,
    };
    g.add_sender("skt-1", s);
    g
}

fn render_one(m: &LocalMetrics) -> String {
    let mut merged = MetricsSnapshot::default();
    merged.merge(m.snapshot());
    render(&merged, &sample_gauges())
}

fn assert_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "missing line `{line}` in:\n{text}"
    );
}

#[test]
fn channel_discriminants_match_their_position() {
    for (i, ch) in Channel::ALL.into_iter().enumerate() {
        assert_eq!(ch as usize, i);
    }
    for (i, r) in HttpRoute::ALL.into_iter().enumerate() {
        assert_eq!(r as usize, i);
    }
}

#[test]
fn renders_every_family_with_exact_lines() {
    let text = render_one(&sample_shard());
    let version = env!("CARGO_PKG_VERSION");
    for line in [
        format!("mcmp_build_info{{version=\"{version}\"}} 1"),
        "mcmp_messages_accepted_total{channel=\"SMS\"} 2".to_owned(),
        "mcmp_messages_accepted_total{channel=\"KKO\"} 1".to_owned(),
        "mcmp_messages_accepted_total{channel=\"PUSH\"} 0".to_owned(),
        "mcmp_messages_rejected_total{channel=\"LMS\",code=\"3006\"} 1".to_owned(),
        "mcmp_messages_final_total{channel=\"SMS\",status=\"delivered\",code=\"2000\"} 1"
            .to_owned(),
        "mcmp_messages_final_total{channel=\"SMS\",status=\"failed\",code=\"other\"} 1".to_owned(),
        "mcmp_wal_appends_total 2".to_owned(),
        "mcmp_wal_bytes_total 768".to_owned(),
        "mcmp_wal_fsync_seconds_sum 0.002".to_owned(),
        "mcmp_wal_fsync_seconds_count 1".to_owned(),
        "mcmp_http_requests_total{route=\"messages_post\",status=\"202\"} 1".to_owned(),
        "mcmp_http_requests_total{route=\"token\",status=\"401\"} 1".to_owned(),
        "mcmp_http_requests_total{route=\"other\",status=\"other\"} 1".to_owned(),
        "mcmp_http_request_seconds_count{route=\"messages_post\"} 1".to_owned(),
        "mcmp_http_request_seconds_sum{route=\"messages_post\"} 0.003".to_owned(),
        "mcmp_delivery_seconds_sum{channel=\"SMS\"} 1.5".to_owned(),
        "mcmp_delivery_seconds_count{channel=\"SMS\"} 1".to_owned(),
        "mcmp_webhook_requests_total{result=\"success\"} 2".to_owned(),
        "mcmp_webhook_requests_total{result=\"failure\",reason=\"timeout\"} 1".to_owned(),
        "mcmp_webhook_requests_total{result=\"failure\",reason=\"status\"} 0".to_owned(),
        "mcmp_webhook_pending_retries 3".to_owned(),
        "mcmp_smpp_protocol_errors_total{sender=\"skt-1\"} 1".to_owned(),
        "mcmp_sender_queue_depth{sender=\"skt-1\"} 10".to_owned(),
        "mcmp_sender_in_flight{sender=\"skt-1\"} 4".to_owned(),
        "mcmp_sender_connected{sender=\"skt-1\"} 2".to_owned(),
        "mcmp_held_messages 7".to_owned(),
        "mcmp_shards 2".to_owned(),
        "# TYPE mcmp_wal_fsync_seconds histogram".to_owned(),
        "# TYPE mcmp_messages_final_total counter".to_owned(),
    ] {
        assert_line(&text, &line);
    }
    // A non-final status is not counted.
    assert!(!text.contains("status=\"queued\""));
}

#[test]
fn histogram_buckets_are_cumulative_counts_from_the_hdr_histogram() {
    let m = LocalMetrics::new();
    for i in 1..=1000 {
        m.wal_fsync(Duration::from_micros(i));
    }
    let text = render_one(&m);
    for (le, n) in [
        ("0.00005", 50),
        ("0.0001", 100),
        ("0.00025", 250),
        ("0.0005", 500),
        ("0.001", 1000),
        ("1", 1000),
        ("+Inf", 1000),
    ] {
        assert_line(
            &text,
            &format!("mcmp_wal_fsync_seconds_bucket{{le=\"{le}\"}} {n}"),
        );
    }
    assert_line(&text, "mcmp_wal_fsync_seconds_count 1000");
    assert_line(&text, "mcmp_wal_fsync_seconds_sum 0.5005");
    let buckets = text
        .lines()
        .filter(|l| l.starts_with("mcmp_wal_fsync_seconds_bucket"))
        .count();
    assert_eq!(buckets, FSYNC_BUCKETS.len() + 1);
}

#[test]
fn an_empty_histogram_has_zero_buckets_and_labelled_ones_are_omitted() {
    let text = render(&MetricsSnapshot::default(), &Gauges::default());
    assert_line(&text, "mcmp_wal_fsync_seconds_bucket{le=\"0.001\"} 0");
    assert_line(&text, "mcmp_wal_fsync_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(&text, "mcmp_wal_fsync_seconds_count 0");
    assert!(!text.contains("mcmp_delivery_seconds_bucket{"));
    assert!(!text.contains("mcmp_http_request_seconds_bucket{"));
}

#[test]
fn families_are_sorted_with_one_help_and_type_each() {
    let text = render_one(&sample_shard());
    let types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    let helps: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    let mut sorted = types.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(types, sorted, "families sorted, each once");
    assert_eq!(types, helps);
    assert_eq!(types.len(), 29);
    // Every sample belongs to the family declared just before it.
    let mut family = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            family = rest.split(' ').next().unwrap_or("");
        } else if !line.starts_with('#') {
            assert!(line.starts_with(family), "`{line}` outside {family}");
        }
    }
}

#[test]
fn label_values_are_escaped() {
    let m = LocalMetrics::new();
    m.smpp_protocol_error("a\\b\"c\nd");
    let text = render_one(&m);
    assert_line(
        &text,
        "mcmp_smpp_protocol_errors_total{sender=\"a\\\\b\\\"c\\nd\"} 1",
    );
}

#[test]
fn merging_two_shards_adds_counters_and_histograms() {
    let a = sample_shard();
    let b = LocalMetrics::new();
    b.accepted(Channel::Sms);
    b.wal_append(100);
    b.wal_fsync(ms(4));
    b.delivery(Channel::Sms, ms(500));
    b.smpp_protocol_error("skt-1");
    b.smpp_protocol_error("kt-1");
    let mut merged = MetricsSnapshot::default();
    merged.merge(a.snapshot());
    merged.merge(b.snapshot());
    let mut gauges = sample_gauges();
    gauges.merge(sample_gauges());
    let text = render(&merged, &gauges);
    for line in [
        "mcmp_messages_accepted_total{channel=\"SMS\"} 3",
        "mcmp_wal_appends_total 3",
        "mcmp_wal_bytes_total 868",
        "mcmp_wal_fsync_seconds_count 2",
        "mcmp_wal_fsync_seconds_sum 0.006",
        "mcmp_delivery_seconds_count{channel=\"SMS\"} 2",
        "mcmp_delivery_seconds_sum{channel=\"SMS\"} 2",
        "mcmp_smpp_protocol_errors_total{sender=\"skt-1\"} 2",
        "mcmp_smpp_protocol_errors_total{sender=\"kt-1\"} 1",
        "mcmp_sender_queue_depth{sender=\"skt-1\"} 20",
        "mcmp_held_messages 14",
        "mcmp_shards 2",
    ] {
        assert_line(&text, line);
    }
    // The merged histogram holds both samples: the max is shard b's 4 ms.
    let h = merged.wal_fsync.hist.as_ref().expect("histogram");
    assert_eq!(h.len(), 2);
    assert!((h.max() as f64 - 4000.0).abs() <= 4.0);
    assert_eq!(merged.delivery[Channel::Sms as usize].count(), 2);
}

#[test]
fn label_sets_are_capped_with_an_other_bucket() {
    let m = LocalMetrics::new();
    for i in 0..MAX_LABEL_VALUES + 5 {
        m.smpp_protocol_error(&format!("s{i}"));
    }
    m.smpp_protocol_error("s0");
    let snap = m.snapshot();
    let counts = snap.smpp_protocol_errors.sorted();
    assert_eq!(counts.len(), MAX_LABEL_VALUES + 1);
    assert!(counts.contains(&(OTHER_LABEL, 5)));
    assert!(counts.contains(&("s0", 2)));

    // Merging two shards with disjoint labels stays within the cap too.
    let other = LocalMetrics::new();
    for i in 0..MAX_LABEL_VALUES {
        other.smpp_protocol_error(&format!("t{i}"));
    }
    let mut merged = m.snapshot();
    merged.merge(other.snapshot());
    let counts = merged.smpp_protocol_errors.sorted();
    assert_eq!(counts.len(), MAX_LABEL_VALUES + 1);
    assert!(counts.contains(&(OTHER_LABEL, 5 + MAX_LABEL_VALUES as u64)));

    let mut g = Gauges::default();
    let one = SenderGauges {
        queue_depth: 1,
        in_flight: 0,
        connected: 1,
    };
    for i in 0..MAX_LABEL_VALUES + 2 {
        g.add_sender(&format!("s{i}"), one);
    }
    assert_eq!(g.senders.len(), MAX_LABEL_VALUES + 1);
    assert_eq!(g.senders[OTHER_LABEL].queue_depth, 2);
}

#[test]
fn long_latencies_saturate_the_histogram_but_not_the_sum() {
    let m = LocalMetrics::new();
    m.delivery(Channel::Lms, Duration::from_secs(2 * 3_600));
    let snap = m.snapshot();
    let s = &snap.delivery[Channel::Lms as usize];
    assert_eq!(s.sum_seconds(), 7_200.0);
    let q = s.quantile_seconds(0.5).expect("recorded");
    assert!(q <= HISTOGRAM_MAX.as_secs_f64() * 1.001, "{q}");
}

#[test]
fn promtool_accepts_the_output() {
    let Ok(path) = which_promtool() else {
        eprintln!("SKIP promtool_accepts_the_output: promtool not on PATH");
        return;
    };
    let escaped = LocalMetrics::new();
    escaped.smpp_protocol_error("a\\b\"c\nd");
    for text in [
        render_one(&sample_shard()),
        render_one(&escaped),
        render(&MetricsSnapshot::default(), &Gauges::default()),
    ] {
        promtool_check(&path, &text);
    }
}

/// Runs `promtool check metrics` on `text`; it exits non-zero on a parse
/// error (1) and on a lint problem such as a counter without `_total` (3).
fn promtool_check(promtool: &std::path::Path, text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).expect("write to promtool");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- input ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which_promtool() -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn one_shard_counts_render_after_a_merge() {
    let shard0 = LocalMetrics::new();
    shard0.accepted(Channel::Sms);
    shard0.http_request(HttpRoute::MessagesPost, 202, Duration::from_micros(350));
    let mut merged = MetricsSnapshot::default();
    merged.merge(shard0.snapshot());
    let text = render(&merged, &Gauges::default());
    assert!(text.contains("mcmp_messages_accepted_total{channel=\"SMS\"} 1\n"));
}
