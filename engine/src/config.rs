//! The engine's settings, built by the API crate from its configuration.

use std::path::PathBuf;
use std::time::Duration;

use mcmp_storage::{Durability, RecoveryMode};

use crate::model::Channel;

/// Engine settings (built by the API crate from its configuration).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Root data directory; WALs live in `<data_dir>/wal/<shard>/`. Its
    /// free space is watched (the disk alert, `wal.min-free`).
    pub data_dir: PathBuf,
    /// Number of shards (≥ 1).
    pub shards: usize,
    /// WAL durability mode.
    pub durability: Durability,
    /// Sync period in `interval` durability.
    pub sync_interval: Duration,
    /// WAL segment size in bytes.
    pub segment_size: u64,
    /// What to do with mid-log corruption.
    pub recovery: RecoveryMode,
    /// How long a `src_msg_id` stays taken.
    pub dedup_window: Duration,
    /// How long a key is also kept exactly (`dedup.exact-for`).
    pub dedup_exact: Duration,
    /// Bits of a key its fingerprint is made from (`dedup.fingerprint-bits`).
    pub dedup_print_bits: u32,
    /// How long a message waits for an available sender.
    pub hold_timeout: Duration,
    /// Price per message part by channel (index = position in `Channel::ALL`).
    pub prices: [i64; 7],
    /// Unit of the webhook retry schedule.
    pub retry_unit: Duration,
    /// Webhook retries after the first attempt.
    pub max_attempts: u32,
    /// How long an endpoint has to answer.
    pub webhook_timeout: Duration,
    /// How long reports and history stay available.
    pub report_retention: Duration,
    /// When the daily failure digest goes out (seconds after midnight, Asia/Seoul).
    pub digest_at_second: u32,
    /// Most reports queued at one webhook endpoint (`reports.endpoint-queue`);
    /// beyond it reports are held back at their owners, no attempt spent.
    pub endpoint_queue: usize,
    /// Free bytes the data directory must keep (`wal.min-free`); below,
    /// new messages are refused with `storage_full`. 0: no check.
    pub min_free_bytes: u64,
    /// How long a message may take to reach a final result when it does
    /// not say (`routing.validity`, SPEC §5.1).
    pub validity: Duration,
    /// How long a WAL segment is kept once a checkpoint covers it
    /// (`wal.retention`; zero: deleted at once).
    pub wal_retention: Duration,
    /// How often every shard writes a checkpoint (`wal.checkpoint-interval`);
    /// the WAL before the older of its last two is deleted.
    pub checkpoint_interval: Duration,
    /// Where operator alerts are POSTed (`alerts.webhook-url`); `None`: only logged.
    pub alert_url: Option<String>,
    /// A PEM file of CA certificates that outgoing TLS (webhooks,
    /// providers, alerts, SMPP) trusts beside the public web roots
    /// (`[tls] extra-ca`).
    pub tls_extra_ca: Option<PathBuf>,
    /// How long a replaced webhook signing secret still signs
    /// (`reports.secret-overlap`, SPEC §5.5).
    pub secret_overlap: Duration,
    /// A customer's `report_uri` may be `http://` (`reports.allow-http`).
    pub reports_allow_http: bool,
    /// A customer's `report_uri` may reach a loopback, private or
    /// link-local address (`reports.allow-private`).
    pub reports_allow_private: bool,
    /// The body of a POSTed alert (`alerts.format`).
    pub alert_format: AlertFormat,
    /// Several nodes sharing state through a Redis Cluster (`[cluster]`,
    /// SPEC §5.8); `None`: one node, nothing shared.
    pub cluster: Option<ClusterSettings>,
}

/// `[cluster]`: this node and the Redis Cluster the nodes share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// This node's number, carried by its message ids.
    pub node_id: u8,
    /// Seed nodes of the Redis Cluster (`host:port`).
    pub redis: Vec<String>,
    /// How long one Redis call may take (its connection, redirections
    /// and retries included).
    pub timeout: Duration,
    /// The key the nodes share (the access-token key), which signs what
    /// one node sends another's internal API (receipts).
    pub node_key: crate::secrets::HmacKey,
}

impl EngineConfig {
    /// This node's number (0 without `[cluster]`).
    pub fn node_id(&self) -> u8 {
        self.cluster.as_ref().map_or(0, |c| c.node_id)
    }
}

/// The body of a POSTed operator alert (`alerts.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AlertFormat {
    /// `{"event","at","detail"}` (the default).
    #[default]
    Json,
    /// A Slack incoming-webhook payload (`text` plus blocks; Mattermost
    /// takes it too).
    Slack,
}

impl EngineConfig {
    /// [`EngineConfig::validity`] in whole seconds.
    pub fn validity_secs(&self) -> u32 {
        self.validity.as_secs().min(u64::from(u32::MAX)) as u32
    }

    /// The price of one part on `channel`.
    pub fn price(&self, channel: Channel) -> i64 {
        Channel::ALL
            .iter()
            .position(|c| *c == channel)
            .map_or(0, |i| self.prices[i])
    }
}
