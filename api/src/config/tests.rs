//! Tests of parsing, environment overrides, validation and round trips.

use super::*;

const FULL: &str = r#"
[server]
listen = "0.0.0.0:9000"
data-dir = "/var/lib/mcmp"
shards = 4
header-read-timeout = "5s"
idle-timeout = "2m"
max-body = "8MiB"
shutdown-grace = "15s"

[admin]
token = "s3cr3t-admin-token"

[wal]
durability = "interval"
sync-interval = "5ms"
segment-size = "128MiB"
retention = "3d"

[dedup]
window = "48h"

[reports]
retry-unit = "1s"
max-attempts = 5
webhook-timeout = "2s"
retention = "14d"

[pricing]
SMS = 11
LMS = 31
MMS = 101
RCS = 12
KKO = 9
EMAIL = 0
PUSH = 2

[routing]
hold-timeout = "30s"

[carriers]
prefixes = { "010" = "UNKNOWN", "0101" = "SKT", "011" = "SKT" }

[log]
format = "json"
level = "mcmp=debug,info"
"#;

#[test]
fn empty_file_gives_defaults() {
    let c = Config::from_toml_str("").expect("empty config");
    assert_eq!(c, Config::default());
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.server.data_dir, PathBuf::from("./mcmp-data"));
    assert_eq!(c.server.shards, 0);
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.server.max_body, 16 << 20);
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(8));
    assert_eq!(c.admin.token, None);
    assert_eq!(c.wal.durability, Durability::Fsync);
    assert_eq!(c.wal.sync_interval, Duration::from_millis(10));
    assert_eq!(c.wal.segment_size, 64 << 20);
    assert_eq!(c.wal.retention, Duration::ZERO);
    assert_eq!(c.wal.checkpoint_interval, Duration::from_secs(30));
    assert_eq!(c.dedup.window, Duration::from_secs(86_400));
    assert_eq!(c.reports.retry_unit, Duration::from_secs(60));
    assert_eq!(c.reports.max_attempts, 10);
    assert_eq!(c.reports.webhook_timeout, Duration::from_secs(5));
    assert_eq!(c.reports.retention, Duration::from_secs(604_800));
    let prices: Vec<i64> = Channel::ALL.iter().map(|ch| c.pricing.price(*ch)).collect();
    assert_eq!(prices, [10, 30, 100, 10, 8, 1, 1]);
    assert_eq!(c.routing.hold_timeout, Duration::from_secs(600));
    assert!(c.carriers.prefixes.is_empty());
    assert_eq!(c.log.format, LogFormat::Human);
    assert_eq!(c.log.level, "info");
    c.validate().expect("defaults are valid");
}

#[test]
fn full_file() {
    let c = Config::from_toml_str(FULL).expect("full config");
    c.validate().expect("valid");
    assert_eq!(c.server.listen, "0.0.0.0:9000");
    assert_eq!(c.server.shards, 4);
    assert_eq!(c.server.idle_timeout, Duration::from_secs(120));
    assert_eq!(c.server.max_body, 8 << 20);
    assert_eq!(c.admin.token.as_deref(), Some("s3cr3t-admin-token"));
    assert_eq!(c.wal.durability, Durability::Interval);
    assert_eq!(c.wal.sync_interval, Duration::from_millis(5));
    assert_eq!(c.wal.segment_size, 128 << 20);
    assert_eq!(c.dedup.window, Duration::from_secs(172_800));
    assert_eq!(c.reports.max_attempts, 5);
    assert_eq!(c.pricing.price(Channel::Email), 0);
    assert_eq!(c.pricing.price(Channel::Kko), 9);
    assert_eq!(c.routing.hold_timeout, Duration::from_secs(30));
    assert_eq!(
        c.carriers.prefixes.get("0101").map(String::as_str),
        Some("SKT")
    );
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn partial_sections_keep_other_defaults() {
    let c = Config::from_toml_str("[pricing]\nSMS = 20\n[wal]\nsegment-size = 1048576\n")
        .expect("parses");
    assert_eq!(c.pricing.price(Channel::Sms), 20);
    assert_eq!(c.pricing.price(Channel::Lms), 30);
    assert_eq!(c.wal.segment_size, 1 << 20);
    assert_eq!(c.wal.durability, Durability::Fsync);
}

#[test]
fn parse_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("[server]\nlisten-addr = \"x\"\n", "listen-addr"),
        ("[serverr]\n", "serverr"),
        ("[pricing]\nSMSS = 1\n", "SMSS"),
        ("[pricing]\nsms = 1\n", "sms"),
        ("[server]\nidle-timeout = \"10 minutes\"\n", "10 minutes"),
        ("[dedup]\nwindow = \"1.5h\"\n", "1.5h"),
        ("[dedup]\nwindow = 60\n", "window"),
        ("[wal]\nsegment-size = \"64 mb\"\n", "64 mb"),
        ("[wal]\nsegment-size = -1\n", "segment-size"),
        ("[wal]\ndurability = \"always\"\n", "always"),
        ("[log]\nformat = \"xml\"\n", "xml"),
        ("[server]\nshards = \"four\"\n", "shards"),
        ("[server\n", "server"),
    ];
    for (text, needle) in cases {
        let err = Config::from_toml_str(text).expect_err(text).to_string();
        assert!(err.contains(needle), "{text:?}: {err}");
    }
}

#[test]
fn validation_names_the_key() {
    type Edit = fn(&mut Config);
    let cases: &[(Edit, &str)] = &[
        (|c| c.server.listen = "localhost".into(), "server.listen"),
        (
            |c| c.server.listen = "127.0.0.1:99999".into(),
            "server.listen",
        ),
        (|c| c.server.data_dir = PathBuf::new(), "server.data-dir"),
        (|c| c.server.shards = 5000, "server.shards"),
        (|c| c.server.max_body = 100, "server.max-body"),
        (
            |c| c.server.idle_timeout = Duration::ZERO,
            "server.idle-timeout",
        ),
        (|c| c.admin.token = Some(String::new()), "admin.token"),
        (|c| c.admin.token = Some("a b".into()), "admin.token"),
        (
            |c| c.admin.token_sha256 = Some("abc".into()),
            "admin.token-sha256",
        ),
        (|c| c.wal.segment_size = 65_535, "wal.segment-size"),
        (
            |c| {
                c.wal.durability = Durability::Interval;
                c.wal.sync_interval = Duration::ZERO;
            },
            "wal.sync-interval",
        ),
        (|c| c.dedup.window = Duration::ZERO, "dedup.window"),
        (
            |c| c.dedup.window = Duration::from_secs(8 * 86_400),
            "dedup.window",
        ),
        (|c| c.dedup.exact_for = Duration::ZERO, "dedup.exact-for"),
        (|c| c.dedup.fingerprint_bits = 0, "dedup.fingerprint-bits"),
        (|c| c.dedup.fingerprint_bits = 65, "dedup.fingerprint-bits"),
        (|c| c.reports.max_attempts = 0, "reports.max-attempts"),
        (|c| c.reports.max_attempts = 21, "reports.max-attempts"),
        (
            |c| c.reports.retry_unit = Duration::ZERO,
            "reports.retry-unit",
        ),
        (|c| c.pricing.mms = -1, "pricing.MMS"),
        (
            |c| c.routing.hold_timeout = Duration::ZERO,
            "routing.hold-timeout",
        ),
        (
            |c| {
                c.carriers.prefixes.insert("01x".into(), "SKT".into());
            },
            "carriers.prefixes.\"01x\"",
        ),
        (
            |c| {
                c.carriers.prefixes.insert("010".into(), "Verizon".into());
            },
            "Verizon",
        ),
        (|c| c.log.level = " ".into(), "log.level"),
        (|c| c.server.max_head = 4096, "server.max-head"),
        (|c| c.server.max_head = 2 << 20, "server.max-head"),
        (
            |c| c.tls.extra_ca = Some("/nonexistent/ca.pem".into()),
            "tls.extra-ca",
        ),
        (
            |c| {
                c.server.tls = Some(ServerTlsConfig {
                    cert: "/nonexistent/cert.pem".into(),
                    key: "/nonexistent/key.pem".into(),
                })
            },
            "server.tls",
        ),
    ];
    for (edit, needle) in cases {
        let mut c = Config::default();
        edit(&mut c);
        let err = c.validate().expect_err(needle).to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // Boundaries that are allowed.
    let mut c = Config::default();
    c.wal.segment_size = MIN_SEGMENT_SIZE;
    c.reports.max_attempts = 20;
    c.pricing.sms = 0;
    c.wal.durability = Durability::None;
    c.wal.sync_interval = Duration::ZERO;
    c.server.listen = "[::1]:0".into();
    c.server.max_head = MIN_MAX_HEAD;
    c.validate().expect("boundaries are valid");
}

#[test]
fn env_overrides() {
    let env: BTreeMap<&str, &str> = [
        ("MCMP_LISTEN", "0.0.0.0:1234"),
        ("MCMP_DATA_DIR", "/tmp/x"),
        ("MCMP_SHARDS", "3"),
        ("MCMP_ADMIN_TOKEN", "tok"),
        ("MCMP_CONFIG", "/ignored.toml"),
    ]
    .into_iter()
    .collect();
    let mut c = Config::default();
    c.apply_env(|k| env.get(k).map(|v| (*v).to_owned()))
        .expect("valid env");
    assert_eq!(c.server.listen, "0.0.0.0:1234");
    assert_eq!(c.server.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(c.server.shards, 3);
    assert_eq!(c.admin.token.as_deref(), Some("tok"));

    let mut untouched = Config::from_toml_str(FULL).expect("full");
    let before = untouched.clone();
    untouched.apply_env(|_| None).expect("no env");
    assert_eq!(untouched, before);

    let err = Config::default()
        .apply_env(|k| (k == "MCMP_SHARDS").then(|| "many".to_owned()))
        .expect_err("bad shards");
    assert!(err.to_string().contains("MCMP_SHARDS"), "{err}");
}

#[test]
fn to_toml_round_trips() {
    for text in ["", FULL] {
        let c = Config::from_toml_str(text).expect("parses");
        let rendered = c.to_toml();
        let back = Config::from_toml_str(&rendered)
            .unwrap_or_else(|e| panic!("re-parse failed: {e}\n{rendered}"));
        assert_eq!(back, c, "{rendered}");
    }
    let rendered = Config::default().to_toml();
    for needle in [
        "segment-size = \"64MiB\"",
        "window = \"1d\"",
        "SMS = 10",
        "[log]",
    ] {
        assert!(rendered.contains(needle), "{needle} in\n{rendered}");
    }
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.toml");
    let err = Config::load(&missing).expect_err("missing").to_string();
    assert!(err.contains("missing.toml"), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[wal]\nfoo = 1\n").expect("write");
    let err = Config::load(&bad).expect_err("bad").to_string();
    assert!(err.contains("bad.toml") && err.contains("foo"), "{err}");

    let good = dir.path().join("good.toml");
    std::fs::write(&good, FULL).expect("write");
    assert_eq!(Config::load(&good).expect("good").server.shards, 4);
}

#[test]
fn agents_and_alerts_sections() {
    let c = Config::from_toml_str(
        "[agents]\nheartbeat-interval = \"1s\"\n[alerts]\nwebhook-url = \"http://127.0.0.1:9/a\"\n",
    )
    .expect("parses");
    assert_eq!(c.agents.heartbeat_interval, Duration::from_secs(1));
    assert_eq!(
        c.alerts.webhook_url.as_deref(),
        Some("http://127.0.0.1:9/a")
    );
    c.validate().expect("valid");
    assert_eq!(Config::from_toml_str(&c.to_toml()).expect("round trip"), c);
    let d = Config::default();
    assert_eq!(d.agents.heartbeat_interval, Duration::from_secs(30));
    assert_eq!(d.alerts.webhook_url, None);
    type Edit = fn(&mut Config);
    let cases: &[(Edit, &str)] = &[
        (
            |c| c.agents.heartbeat_interval = Duration::ZERO,
            "agents.heartbeat-interval",
        ),
        (
            |c| c.alerts.webhook_url = Some("ftp://x".into()),
            "alerts.webhook-url",
        ),
    ];
    for (edit, key) in cases {
        let mut c = Config::default();
        edit(&mut c);
        let err = c.validate().expect_err(key).to_string();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn the_cluster_section_names_the_node_and_its_redis() {
    assert_eq!(Config::default().cluster, None, "one node by default");
    let c = Config::from_toml_str(
        "[cluster]\nnode-id = 3\nredis = [\"127.0.0.1:7000\", \"redis-b:7001\"]\n",
    )
    .expect("parses");
    let cluster = c.cluster.clone().expect("cluster");
    assert_eq!((cluster.node_id, cluster.redis.len()), (3, 2));
    assert_eq!(cluster.timeout, Duration::from_secs(1), "default timeout");
    c.validate().expect("valid");
    assert_eq!(Config::from_toml_str(&c.to_toml()).expect("round trip"), c);
    for bad in ["node-id = 256\nredis = [\"a:1\"]", "redis = [\"a:1\"]"] {
        let text = format!("[cluster]\n{bad}\n");
        assert!(Config::from_toml_str(&text).is_err(), "{text}");
    }
    for (redis, timeout) in [
        ("[]", "1s"),
        ("[\"nohost\"]", "1s"),
        ("[\"a:0\"]", "1s"),
        ("[\"a:1\"]", "0s"),
    ] {
        let text = format!("[cluster]\nnode-id = 1\nredis = {redis}\ntimeout = \"{timeout}\"\n");
        let c = Config::from_toml_str(&text).expect("parses");
        let err = c.validate().expect_err(&text).to_string();
        assert!(err.contains("cluster."), "{err}");
    }
}
