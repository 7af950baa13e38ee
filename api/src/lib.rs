//! # mcmp-api
//!
//! The HTTP face of MCMP: the customer API (`/oauth/token`, `/v1/...`), the
//! admin API (`/admin/v1/...`), health and readiness, the configuration and
//! the `mcmp` command line. HTTP is hyper 1.x driven by each shard's
//! executor through the engine's runtime facade; every shard listens on the
//! same port (`SO_REUSEPORT`) and answers from its own state.
//!
//! ```no_run
//! let mut config = mcmp_api::config::Config::default();
//! config.server.listen = "127.0.0.1:0".into();
//! mcmp_api::serve(config, mcmp_api::ServeOptions::default()).expect("served");
//! ```

// NOTE: handlers return `Result<_, Response>` so `?` turns any failure into
// its HTTP answer; a response is ~144 bytes and moves once, so boxing it
// would only add an allocation.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod config;
pub(crate) mod context;
pub mod demo;
pub(crate) mod endpoints;
pub mod export;
pub(crate) mod forward;
pub(crate) mod http;
pub mod multipart;
pub mod phone;
pub(crate) mod router;
pub mod schema;
pub(crate) mod server;
pub mod text;
pub mod time;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcmp_engine::catalog::{table, SharedCatalog};
use mcmp_engine::config::EngineConfig;
use mcmp_engine::redis::catalog::SharedStore;
use mcmp_engine::secrets::SecretHash;
use mcmp_engine::{SharedEngine, StartError};
use mcmp_storage::{Catalog, RecoveryMode, SledCatalog};

use crate::config::Config;
use crate::context::ApiState;

/// Start-up choices that are not configuration.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Truncate a WAL at mid-log corruption instead of refusing to start.
    pub repair_wal: bool,
    /// Register the demo customer and print how to use it (`--demo`).
    pub demo: bool,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The machine cannot run the engine (io_uring, memlock).
    #[error(transparent)]
    Probe(#[from] mcmp_engine::rt::ProbeError),
    /// The storage failed to open.
    #[error(transparent)]
    Storage(#[from] mcmp_storage::Error),
    /// The engine failed to start or run.
    #[error(transparent)]
    Engine(#[from] StartError),
    /// The OS random source failed.
    #[error("no randomness: {0}")]
    Random(#[from] getrandom::Error),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] mcmp_engine::catalog::CatalogError),
}

/// Runs the server until SIGTERM/SIGINT, then drains and returns.
pub fn serve(config: Config, options: ServeOptions) -> Result<(), ServeError> {
    let listen: SocketAddr = config.server.listen.parse().map_err(|e| {
        ServeError::Config(format!("server.listen {:?}: {e}", config.server.listen))
    })?;
    let shards = match config.server.shards {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    mcmp_engine::rt::probe(shards)?;
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| ServeError::Io {
        op: "creating data dir",
        path: data_dir.clone(),
        source,
    })?;
    let local = Arc::new(SledCatalog::open(&data_dir.join("catalog"))?);
    // Before joining: the first node of a cluster brings the token key.
    jwt_key(local.as_ref())?;
    let store: Arc<dyn Catalog> = match &config.cluster {
        None => local,
        Some(c) => Arc::new(SharedStore::join(local, &c.redis, c.timeout)?),
    };
    let jwt_key = jwt_key(store.as_ref())?;
    let admin_token = admin_token(&config, &data_dir)?;
    check_node_id(&config, &data_dir)?;
    let demo = options
        .demo
        .then(|| demo::register(store.as_ref()))
        .transpose()?;
    let engine_config = engine_config(&config, (data_dir.clone(), shards), &options, &jwt_key);
    let prefixes = config
        .carriers
        .prefixes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let server_tls = config
        .server_tls()
        .map_err(|e| ServeError::Config(e.to_string()))?;
    let catalog = SharedCatalog::new(store, shards, prefixes);
    let hashed = catalog.hash_clear_secrets()?;
    if hashed > 0 {
        tracing::info!(
            clients = hashed,
            "client secrets kept in clear by an older version are now kept hashed"
        );
    }
    let engine = SharedEngine::new(engine_config, catalog)?;
    install_signal_handler(engine.clone(), server_tls.clone())?;
    let state = Arc::new(
        ApiState::new(config, admin_token, jwt_key, engine.clone(), listen)
            .with_demo(demo)
            .with_tls(server_tls),
    );
    engine.run(move |shard| server::serve_shard(shard, state.clone()))?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The access-token signing key, created once per data dir so tokens survive
/// restarts.
fn jwt_key(store: &dyn Catalog) -> Result<Vec<u8>, ServeError> {
    const KEY: &str = "jwt-key";
    if let Some(k) = store.get(table::META, KEY)? {
        return Ok(k);
    }
    let key = auth::random_token(32)?.into_bytes();
    store.put(table::META, KEY, &key)?;
    Ok(key)
}

/// SIGHUP: the listener's certificate is read again; new connections get
/// it. A file that does not load leaves the old certificate in use.
fn reload_certificate(tls: Option<&mcmp_engine::rt::SharedServerTls>) {
    let Some(tls) = tls else {
        tracing::info!("SIGHUP: no [server.tls], nothing to reload");
        return;
    };
    match tls.reload() {
        Ok(()) => tracing::info!(
            "SIGHUP: reloaded the certificate {}",
            tls.files().cert.display()
        ),
        Err(e) => tracing::error!("SIGHUP: keeping the old certificate: {e}"),
    }
}

/// The engine's settings from the configuration.
fn engine_config(
    config: &Config,
    (data_dir, shards): (std::path::PathBuf, usize),
    options: &ServeOptions,
    jwt_key: &[u8],
) -> EngineConfig {
    EngineConfig {
        data_dir,
        shards,
        durability: match config.wal.durability {
            config::Durability::Fsync => mcmp_storage::Durability::Fsync,
            config::Durability::Interval => mcmp_storage::Durability::Interval,
            config::Durability::None => {
                tracing::warn!("wal.durability = \"none\": accepted messages are NOT durable (benchmarks only)");
                mcmp_storage::Durability::None
            }
        },
        sync_interval: config.wal.sync_interval,
        segment_size: config.wal.segment_size,
        recovery: if options.repair_wal {
            RecoveryMode::Repair
        } else {
            RecoveryMode::Strict
        },
        dedup_window: config.dedup.window,
        dedup_exact: config.dedup.exact_for,
        dedup_print_bits: config.dedup.fingerprint_bits,
        hold_timeout: config.routing.hold_timeout,
        prices: mcmp_engine::model::Channel::ALL.map(|c| config.pricing.price(c)),
        retry_unit: config.reports.retry_unit,
        max_attempts: config.reports.max_attempts,
        webhook_timeout: config.reports.webhook_timeout,
        report_retention: config.reports.retention,
        digest_at_second: mcmp_engine::parse_time_of_day(&config.reports.digest_at)
            .unwrap_or(30_600),
        alert_url: config.alerts.webhook_url.clone(),
        alert_format: config.alerts.format.engine(),
        cluster: config.cluster.as_ref().map(|c| c.engine(jwt_key)),
        validity: config.routing.validity,
        endpoint_queue: config.reports.endpoint_queue,
        min_free_bytes: config.wal.min_free,
        checkpoint_interval: config.wal.checkpoint_interval,
        wal_retention: config.wal.retention,
        tls_extra_ca: config.tls.extra_ca.clone(),
        secret_overlap: config.reports.secret_overlap,
        reports_allow_http: config.reports.allow_http,
        reports_allow_private: config.reports.allow_private,
    }
}

/// What the server keeps of the admin token, its SHA-256: of the one
/// configured (`admin.token`, `MCMP_ADMIN_TOKEN`, or `admin.token-sha256`),
/// else of `<data-dir>/admin.token`, generated (mode 0600) at first start.
/// That file is the operator's copy: the server also keeps the hash in
/// `admin.token.sha256`, so the operator may move the token to a vault and
/// delete the file.
fn admin_token(config: &Config, data_dir: &Path) -> Result<SecretHash, ServeError> {
    if let Some(t) = config.admin.token.as_ref().filter(|t| !t.is_empty()) {
        return Ok(SecretHash::of(t));
    }
    if let Some(hash) = config.admin.token_sha256.as_deref() {
        if let Some(hash) = SecretHash::from_hex(hash) {
            return Ok(hash);
        }
    }
    let path = data_dir.join("admin.token");
    let hash_path = data_dir.join("admin.token.sha256");
    if let Some(token) = read_trimmed(&path)? {
        let hash = SecretHash::of(&token);
        if read_trimmed(&hash_path)?.is_none() {
            write_private(&hash_path, &hash.to_hex())?;
        }
        tracing::info!("admin token: {}", path.display());
        return Ok(hash);
    }
    if let Some(hex) = read_trimmed(&hash_path)? {
        if let Some(hash) = SecretHash::from_hex(&hex) {
            tracing::info!("admin token: its hash in {}", hash_path.display());
            return Ok(hash);
        }
    }
    let token = auth::random_token(24)?;
    let hash = SecretHash::of(&token);
    write_private(&hash_path, &hash.to_hex())?;
    write_private(&path, &token)?;
    tracing::info!("generated an admin token in {}", path.display());
    Ok(hash)
}

/// A data directory keeps the node number it was first started with
/// (`<data-dir>/node-id`; 0 for one node, and for a directory written
/// before the file existed): its messages' ids carry it, so a node started
/// on it with another `cluster.node-id` would not find them.
fn check_node_id(config: &Config, data_dir: &Path) -> Result<(), ServeError> {
    let path = data_dir.join("node-id");
    let configured = config.cluster.as_ref().map_or(0, |c| c.node_id);
    let kept = match read_trimmed(&path)? {
        Some(text) => Some(text.parse::<u8>().map_err(|_| {
            ServeError::Config(format!("{}: not a node number: {text:?}", path.display()))
        })?),
        None if data_dir.join("wal").exists() => Some(0),
        None => None,
    };
    match kept {
        Some(kept) if kept != configured => Err(ServeError::Config(format!(
            "cluster.node-id is {configured} but {} was written by node {kept}; \
             a data directory stays with its node",
            data_dir.display()
        ))),
        _ => write_private(&path, &configured.to_string()),
    }
}

/// The trimmed text of `path`; `None` if it is missing or blank.
fn read_trimmed(path: &Path) -> Result<Option<String>, ServeError> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ServeError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `text` to `path`, mode 0600, synced.
fn write_private(path: &Path, text: &str) -> Result<(), ServeError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |op| {
        move |source| ServeError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io("creating"))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("writing"))
}

/// SIGTERM / SIGINT start the drain; a second one exits at once. SIGHUP
/// re-reads the listener's certificate and key (`[server.tls]`).
fn install_signal_handler(
    engine: Arc<SharedEngine>,
    tls: Option<Arc<mcmp_engine::rt::SharedServerTls>>,
) -> Result<(), ServeError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|source| {
            ServeError::Io {
                op: "installing signal handler",
                path: PathBuf::new(),
                source,
            }
        })?;
    std::thread::Builder::new()
        .name("mcmp-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    reload_certificate(tls.as_deref());
                    continue;
                }
                if engine.is_draining() {
                    tracing::warn!("second signal {signal}: exiting without draining");
                    std::process::exit(1);
                }
                tracing::info!(
                    "signal {signal}: draining (finishing in-flight requests, flushing the WAL)"
                );
                engine.begin_drain();
            }
        })
        .map_err(|source| ServeError::Io {
            op: "spawning signal thread",
            path: PathBuf::new(),
            source,
        })?;
    Ok(())
}

/// `mcmp operator add`: writes operator `name` with `role` and `password`
/// into the catalog of `data_dir` (the server must be stopped: the catalog
/// is locked while it runs). Returns the role's name.
pub fn add_operator(
    data_dir: &std::path::Path,
    name: &str,
    role: &str,
    password: &str,
) -> anyhow::Result<&'static str> {
    use anyhow::Context;
    let role = mcmp_engine::catalog::Role::parse(role)
        .context("--role must be viewer, operator or admin")?;
    anyhow::ensure!(
        (8..=1024).contains(&password.chars().count()),
        "a password is 8 to 1024 characters"
    );
    anyhow::ensure!(
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b)),
        "an operator name is 1-64 of [A-Za-z0-9._-@]"
    );
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("catalog");
    let store = SledCatalog::open(&path).with_context(|| {
        format!(
            "opening {} (is the server running? stop it, or use PUT /admin/v1/operators/{name})",
            path.display()
        )
    })?;
    let hash = auth::session::hash_password(password).map_err(anyhow::Error::msg)?;
    let operator = mcmp_engine::catalog::Operator {
        name: name.to_string(),
        role,
        password_hash: hash,
        updated_at_ms: time::now_ms(),
    };
    mcmp_engine::catalog::put(&store, table::OPERATORS, name, &operator)?;
    Ok(role.as_str())
}
