//! `[cluster]` (SPEC §5.8): this node's number and the Redis Cluster the
//! nodes share. Without the section MCMP is one node and opens no Redis
//! connection.

use std::time::Duration;

use mcmp_engine::config::ClusterSettings;
use serde::{Deserialize, Serialize};

use super::units::human_duration;
use super::{invalid, ConfigError};

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterConfig {
    /// This node's number, 0–255, unique among the nodes; its message ids
    /// carry it. A data directory keeps the number it was first started
    /// with (`<data-dir>/node-id`).
    pub node_id: u8,
    /// Seed nodes of the Redis Cluster, `host:port` (at least one).
    pub redis: Vec<String>,
    /// How long one Redis call may take, redirections and retries included.
    /// Default `"1s"`.
    #[serde(default = "default_timeout", with = "human_duration")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

impl ClusterConfig {
    /// Checks the seeds and the timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.redis.is_empty() {
            return Err(invalid("cluster.redis", "needs at least one host:port"));
        }
        for seed in &self.redis {
            let port = seed.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
            if !matches!(port, Some((h, Ok(p))) if !h.is_empty() && p > 0) {
                return Err(invalid(
                    "cluster.redis",
                    format!("{seed:?} is not host:port"),
                ));
            }
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            return Err(invalid("cluster.timeout", "must be between 1ms and 60s"));
        }
        Ok(())
    }

    /// The engine's settings; `node_key` is the key the nodes share.
    pub fn engine(&self, node_key: &[u8]) -> ClusterSettings {
        ClusterSettings {
            node_id: self.node_id,
            redis: self.redis.clone(),
            timeout: self.timeout,
            node_key: mcmp_engine::secrets::HmacKey::new(node_key),
        }
    }
}
