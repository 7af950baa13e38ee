//! The server configuration (DESIGN §7): a TOML file with one section per
//! concern, every key optional with a documented default, durations and sizes
//! written for humans (`"10s"`, `"64MiB"`). [`Config`] is read once at
//! start-up — file, then [`Config::apply_env`] (the only place environment
//! variables are read), then [`Config::validate`] — and is immutable
//! afterwards; `mcmp check-config` prints [`Config::to_toml`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcmp_engine::model::Channel;
use serde::{Deserialize, Serialize};

use crate::time::{format_duration, format_size, parse_duration, parse_size};

/// Smallest WAL segment: below this, segment rolls (an fsync of the
/// directory each) would dominate the write path.
pub const MIN_SEGMENT_SIZE: u64 = 64 << 10;
/// Most webhook attempts: attempt 20 already waits 381 retry units
/// (~6 h at the default unit), longer than anyone waits for a report.
pub const MAX_WEBHOOK_ATTEMPTS: u32 = 20;
/// Most shards: message ids carry the shard in 8 bits (the node in the 8
/// above them).
pub const MAX_SHARDS: usize = 256;
/// Smallest accepted `server.max-body`: one message with headroom.
pub const MIN_MAX_BODY: u64 = 1 << 10;
/// Default `server.max-head`: far above any honest request head (a JWT and
/// a few headers are under 2 KiB), far below what would let a client make
/// the server buffer megabytes before it sees a request.
pub const DEFAULT_MAX_HEAD: u64 = 16 << 10;
/// Smallest `server.max-head`: hyper's read buffer cannot be smaller.
pub const MIN_MAX_HEAD: u64 = 8 << 10;
/// Largest `server.max-head`.
pub const MAX_MAX_HEAD: u64 = 1 << 20;
/// The carriers a number prefix may map to.
pub const CARRIERS: [&str; 4] = ["SKT", "KT", "LGT", "UNKNOWN"];

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong
    /// form; the message names the key (and the file, if any).
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Parse {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// The parser's message, naming key and position.
        message: String,
    },
    /// An environment override has an invalid value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("config key {key}: {message}")]
    Invalid {
        /// The key, as `section.key`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `[server]`: listener, data directory, shards, HTTP limits.
    pub server: ServerConfig,
    /// `[admin]`: the admin API token.
    pub admin: AdminConfig,
    /// `[wal]`: durability and segment layout.
    pub wal: WalConfig,
    /// `[dedup]`: the `src_msg_id` window.
    pub dedup: DedupConfig,
    /// `[reports]`: webhook delivery and report retention.
    pub reports: ReportsConfig,
    /// `[pricing]`: per-channel prices.
    pub pricing: PricingConfig,
    /// `[routing]`: held-queue behaviour.
    pub routing: RoutingConfig,
    /// `[carriers]`: prefix → carrier fallback for PNX.
    pub carriers: CarriersConfig,
    /// `[log]`: log format and level.
    pub log: LogConfig,
    /// `[agents]`: customer agents' heartbeats.
    pub agents: AgentsConfig,
    /// `[alerts]`: where operator alerts are POSTed.
    pub alerts: AlertsConfig,
    /// `[tls]`: what outgoing TLS trusts beside the public roots.
    pub tls: TlsConfig,
    /// `[cluster]`: several nodes sharing a Redis Cluster; absent: one node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Address the HTTP API listens on. Default `"127.0.0.1:8080"`.
    pub listen: String,
    /// Directory of the WAL, catalog and admin token. Default `"./mcmp-data"`.
    pub data_dir: PathBuf,
    /// Number of shards (pinned executor threads); 0 = one per CPU. Default 0.
    pub shards: usize,
    /// Time allowed to receive a request's headers. Default `"10s"`.
    #[serde(with = "human_duration")]
    pub header_read_timeout: Duration,
    /// Time an idle keep-alive connection is kept. Default `"60s"`.
    #[serde(with = "human_duration")]
    pub idle_timeout: Duration,
    /// Largest request body; larger bodies get 413. Default `"16MiB"`.
    #[serde(with = "human_size")]
    pub max_body: u64,
    /// Time in-flight requests get to finish on SIGTERM. Default `"8s"`, so the process exits within the 10 s a supervisor allows.
    #[serde(with = "human_duration")]
    pub shutdown_grace: Duration,
    /// The URL providers and other machines reach this server at (used in
    /// the `report_url` sent to HTTP providers). Default: derived from
    /// `listen` (`http://<listen>`, with `0.0.0.0` read as `127.0.0.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Largest request head (request line and headers); a larger one gets
    /// 431 and the connection is closed. At least 8 KiB. Default `"16KiB"`.
    #[serde(with = "human_size")]
    pub max_head: u64,
    /// `[server.tls]`: serve HTTPS with this certificate. Default: unset
    /// (plain HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./mcmp-data"),
            shards: 0,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_body: 16 << 20,
            shutdown_grace: Duration::from_secs(8),
            public_url: None,
            max_head: DEFAULT_MAX_HEAD,
            tls: None,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdminConfig {
    /// The admin API bearer token. Default: unset, in which case the server
    /// generates one at first start into `<data-dir>/admin.token`.
    pub token: Option<String>,
    /// The SHA-256 (64 hex digits) of the admin token, instead of `token`:
    /// the file then holds no secret.
    pub token_sha256: Option<String>,
}

/// When an accepted message counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync before answering (the default; survives power loss).
    #[default]
    Fsync,
    /// fsync every `sync-interval`; answers may precede the fsync.
    Interval,
    /// Never fsync (tests and benchmarks only; survives process crashes,
    /// not power loss).
    None,
}

/// `[wal]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct WalConfig {
    /// `fsync` | `interval` | `none`. Default `"fsync"`.
    pub durability: Durability,
    /// fsync period with `durability = "interval"`. Default `"10ms"`.
    #[serde(with = "human_duration")]
    pub sync_interval: Duration,
    /// Size at which a WAL segment is closed and a new one started, at
    /// least 64 KiB. Default `"64MiB"`.
    #[serde(with = "human_size")]
    pub segment_size: u64,
    /// How long a segment is kept once a checkpoint covers it (`0`: deleted
    /// at once, the WAL holds only the work in flight). Default `"0s"`.
    #[serde(with = "human_duration")]
    pub retention: Duration,
    /// How often each shard checkpoints its state (the WAL before the older
    /// of its last two checkpoints is then deleted). Default `"30s"`.
    #[serde(with = "human_duration")]
    pub checkpoint_interval: Duration,
    /// Free space the data directory's file system must keep: below it new
    /// messages get 503 `storage_full` while everything accepted still goes
    /// out (SPEC §5.3). `0` turns the check off. Default `"1GiB"`.
    #[serde(with = "human_size")]
    pub min_free: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            durability: Durability::Fsync,
            sync_interval: Duration::from_millis(10),
            segment_size: 64 << 20,
            retention: Duration::ZERO,
            checkpoint_interval: Duration::from_secs(30),
            min_free: 1 << 30,
        }
    }
}

/// `[dedup]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DedupConfig {
    /// How long a `src_msg_id` stays taken. Default `"24h"`.
    #[serde(with = "human_duration")]
    pub window: Duration,
    /// How long a key is also kept whole in memory (beyond it, a 16-bit
    /// fingerprint and the message id, confirmed against the message on a
    /// match). Default `"10s"`, at least `"1s"`.
    #[serde(with = "human_duration")]
    pub exact_for: Duration,
    /// Bits of a key its fingerprint is made from, 1–64. Default 64; lower
    /// it only to test how fingerprint collisions are handled.
    pub fingerprint_bits: u32,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            window: Duration::from_secs(86_400),
            exact_for: Duration::from_secs(10),
            fingerprint_bits: 64,
        }
    }
}

/// `[reports]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReportsConfig {
    /// Unit of the webhook retry schedule: attempt n waits
    /// `(n² − n + 1) × retry-unit`. Default `"60s"`.
    #[serde(with = "human_duration")]
    pub retry_unit: Duration,
    /// Webhook attempts before a report is left to polling, 1–20. Default 10.
    pub max_attempts: u32,
    /// Time a webhook endpoint has to answer 2xx. Default `"5s"`.
    #[serde(with = "human_duration")]
    pub webhook_timeout: Duration,
    /// How long reports stay available to `GET /v1/reports`. Default `"7d"`.
    #[serde(with = "human_duration")]
    pub retention: Duration,
    /// When the daily failure digest goes to each customer's clients,
    /// Asia/Seoul time, `HH:MM` or `HH:MM:SS`. Default `"08:30"`.
    pub digest_at: String,
    /// Most reports queued at one webhook endpoint; beyond it new reports
    /// wait at their owners (no attempt counted) and are offered again
    /// every second. Default 100000.
    pub endpoint_queue: usize,
    /// How long a replaced webhook signing secret still signs, beside the
    /// new one (SPEC §5.5). Default `"24h"`.
    #[serde(with = "human_duration")]
    pub secret_overlap: Duration,
    /// A client's `report_uri` may be `http://` (SPEC §5.5). Default false.
    pub allow_http: bool,
    /// A client's `report_uri` may resolve to a loopback, private or
    /// link-local address. Default false.
    pub allow_private: bool,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            retry_unit: Duration::from_secs(60),
            max_attempts: 10,
            webhook_timeout: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 86_400),
            digest_at: "08:30".to_owned(),
            endpoint_queue: 100_000,
            secret_overlap: Duration::from_secs(86_400),
            allow_http: false,
            allow_private: false,
        }
    }
}

/// `[pricing]`: price per message part, in minor currency units, keyed by
/// channel name as written on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    /// SMS. Default 10.
    #[serde(rename = "SMS")]
    pub sms: i64,
    /// LMS. Default 30.
    #[serde(rename = "LMS")]
    pub lms: i64,
    /// MMS. Default 100.
    #[serde(rename = "MMS")]
    pub mms: i64,
    /// RCS. Default 10.
    #[serde(rename = "RCS")]
    pub rcs: i64,
    /// KKO. Default 8.
    #[serde(rename = "KKO")]
    pub kko: i64,
    /// EMAIL. Default 1.
    #[serde(rename = "EMAIL")]
    pub email: i64,
    /// PUSH. Default 1.
    #[serde(rename = "PUSH")]
    pub push: i64,
}

impl Default for PricingConfig {
    fn default() -> Self {
        PricingConfig {
            sms: 10,
            lms: 30,
            mms: 100,
            rcs: 10,
            kko: 8,
            email: 1,
            push: 1,
        }
    }
}

impl PricingConfig {
    /// The price of one part on `channel`.
    pub fn price(&self, channel: Channel) -> i64 {
        match channel {
            Channel::Sms => self.sms,
            Channel::Lms => self.lms,
            Channel::Mms => self.mms,
            Channel::Rcs => self.rcs,
            Channel::Kko => self.kko,
            Channel::Email => self.email,
            Channel::Push => self.push,
        }
    }
}

/// `[routing]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RoutingConfig {
    /// How long a message waits in the held queue for an available sender
    /// before failing with 4002. Default `"10m"`.
    #[serde(with = "human_duration")]
    pub hold_timeout: Duration,
    /// How long a message that does not set `validity` may take to reach a
    /// final result; after it, it fails with 5007 (SPEC §5.1). Default
    /// `"24h"`, at most `"3d"`; values under a minute only make sense in
    /// tests (a message's own `validity` is at least 60 s).
    #[serde(with = "human_duration")]
    pub validity: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            hold_timeout: Duration::from_secs(600),
            validity: Duration::from_secs(86_400),
        }
    }
}

/// `[carriers]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CarriersConfig {
    /// Number prefix (digits) → carrier (`SKT`, `KT`, `LGT`, `UNKNOWN`) for
    /// numbers the PNX table does not know; the longest prefix wins. Default
    /// empty (such numbers are `UNKNOWN`).
    pub prefixes: BTreeMap<String, String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogConfig {
    /// `human` | `json`. Default `"human"`.
    pub format: LogFormat,
    /// A tracing filter (`info`, `mcmp=debug,warn`, ...). Default `"info"`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".to_owned(),
        }
    }
}

/// `[agents]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AgentsConfig {
    /// How often agents send a heartbeat; an agent silent for
    /// [`LOST_AFTER_INTERVALS`] intervals is shown as lost. Default `"30s"`.
    #[serde(with = "human_duration")]
    pub heartbeat_interval: Duration,
}

/// Missed heartbeats after which an agent is lost.
pub const LOST_AFTER_INTERVALS: u32 = 3;

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            heartbeat_interval: Duration::from_secs(30),
        }
    }
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertsConfig {
    /// URL operator alerts (`sender_down`, `sender_up`, `wal_poisoned`, ...)
    /// are POSTed to as JSON. Default: unset (alerts are only logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The body of a POSTed alert: `json` (`{"event","at","detail"}`) or
    /// `slack` (an incoming-webhook payload: `text` plus blocks).
    pub format: AlertFormatConfig,
}

/// `alerts.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormatConfig {
    /// `{"event","at","detail"}`.
    #[default]
    Json,
    /// A Slack (or Mattermost) incoming-webhook payload.
    Slack,
}

impl AlertFormatConfig {
    /// The engine's setting.
    pub fn engine(self) -> mcmp_engine::config::AlertFormat {
        match self {
            AlertFormatConfig::Json => mcmp_engine::config::AlertFormat::Json,
            AlertFormatConfig::Slack => mcmp_engine::config::AlertFormat::Slack,
        }
    }
}

impl Config {
    /// Parses a configuration file's text; missing keys take their defaults.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        toml::from_str(s).map_err(|e| ConfigError::Parse {
            path: None,
            message: e.to_string(),
        })
    }

    /// Reads and parses the file at `path`; errors name the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: Some(path.to_owned()),
                message,
            },
            other => other,
        })
    }

    /// Applies the environment overrides `MCMP_LISTEN`, `MCMP_DATA_DIR`,
    /// `MCMP_SHARDS`, `MCMP_ADMIN_TOKEN`, `MCMP_REPORTS_ALLOW_HTTP` and
    /// `MCMP_REPORTS_ALLOW_PRIVATE`, reading variables through `get`
    /// (`|k| std::env::var(k).ok()` in the binary). This is the only place
    /// MCMP reads its environment; `MCMP_CONFIG` (which file to load) is
    /// handled by the CLI before this runs.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("MCMP_LISTEN") {
            self.server.listen = v;
        }
        if let Some(v) = get("MCMP_DATA_DIR") {
            self.server.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("MCMP_SHARDS") {
            self.server.shards = v.trim().parse().map_err(|_| ConfigError::Env {
                var: "MCMP_SHARDS",
                message: format!("`{v}` is not a number of shards"),
            })?;
        }
        if let Some(v) = get("MCMP_ADMIN_TOKEN") {
            self.admin.token = Some(v);
        }
        let flag = |var: &'static str, v: String| match v.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(ConfigError::Env {
                var,
                message: format!("`{v}` is not true or false"),
            }),
        };
        if let Some(v) = get("MCMP_REPORTS_ALLOW_HTTP") {
            self.reports.allow_http = flag("MCMP_REPORTS_ALLOW_HTTP", v)?;
        }
        if let Some(v) = get("MCMP_REPORTS_ALLOW_PRIVATE") {
            self.reports.allow_private = flag("MCMP_REPORTS_ALLOW_PRIVATE", v)?;
        }
        Ok(())
    }

    /// The resolved configuration as TOML (every key, defaults included),
    /// parseable by [`Config::from_toml_str`].
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

mod validate;

mod tls;
pub use tls::{ServerTlsConfig, TlsConfig};

mod cluster;
pub use cluster::ClusterConfig;

mod units;
use units::{human_duration, human_size};

#[cfg(test)]
mod tests;
