//! STUB (replaced on merge)
#![allow(missing_docs)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
#[derive(Debug, Clone)]
pub struct Config { pub server: ServerConfig, pub admin: AdminConfig, pub wal: WalConfig, pub dedup: DedupConfig, pub log: LogConfig, pub pricing: BTreeMap<String, i64> }
#[derive(Debug, Clone)]
pub struct ServerConfig { pub listen: String, pub data_dir: PathBuf, pub shards: usize, pub header_read_timeout: Duration, pub idle_timeout: Duration, pub max_body: u64, pub shutdown_grace: Duration }
#[derive(Debug, Clone, Default)]
pub struct AdminConfig { pub token: Option<String> }
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability { Fsync, Interval, None }
#[derive(Debug, Clone)]
pub struct WalConfig { pub durability: Durability, pub sync_interval: Duration, pub segment_size: u64, pub retention: Duration }
#[derive(Debug, Clone)]
pub struct DedupConfig { pub window: Duration }
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat { Human, Json }
#[derive(Debug, Clone)]
pub struct LogConfig { pub format: LogFormat, pub level: String }
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig { listen: "127.0.0.1:8080".into(), data_dir: "./mcmp-data".into(), shards: 0, header_read_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60), max_body: 16 << 20, shutdown_grace: Duration::from_secs(10) },
            admin: AdminConfig::default(),
            wal: WalConfig { durability: Durability::Fsync, sync_interval: Duration::from_millis(10), segment_size: 64 << 20, retention: Duration::from_secs(7 * 86400) },
            dedup: DedupConfig { window: Duration::from_secs(86400) },
            log: LogConfig { format: LogFormat::Human, level: "info".into() },
            pricing: BTreeMap::new(),
        }
    }
}
impl Config {
    pub fn from_toml_str(_s: &str) -> Result<Config, ConfigError> { Ok(Config::default()) }
    pub fn load(_p: &Path) -> Result<Config, ConfigError> { Ok(Config::default()) }
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("MCMP_LISTEN") { self.server.listen = v; }
        if let Some(v) = get("MCMP_DATA_DIR") { self.server.data_dir = v.into(); }
        if let Some(v) = get("MCMP_SHARDS") { self.server.shards = v.parse().map_err(|_| ConfigError("MCMP_SHARDS".into()))?; }
        if let Some(v) = get("MCMP_ADMIN_TOKEN") { self.admin.token = Some(v); }
        Ok(())
    }
    pub fn validate(&self) -> Result<(), ConfigError> { Ok(()) }
    pub fn to_toml(&self) -> String { format!("{self:?}") }
}
