//! What every endpoint receives: [`ApiState`], the state shared by the HTTP
//! side of every shard (`Send + Sync`), and [`ShardApi`], one shard's HTTP
//! side (lives on its shard).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use mcmp_engine::LocalNotify;
use mcmp_engine::{ShardHandle, SharedEngine};

use crate::config::Config;

/// State shared by the HTTP side of every shard (`Send + Sync`).
pub(crate) struct ApiState {
    /// Resolved configuration.
    pub(crate) config: Config,
    /// The admin bearer token.
    pub(crate) admin_token: mcmp_engine::secrets::SecretHash,
    /// HS256 key of the access tokens.
    pub(crate) jwt_key: Vec<u8>,
    /// The engine.
    pub(crate) engine: Arc<SharedEngine>,
    pub(crate) listen: SocketAddr,
    pub(crate) bound: OnceLock<SocketAddr>,
    pub(crate) shards_bound: AtomicUsize,
    pub(crate) ready: AtomicBool,
    pub(crate) demo: Option<crate::demo::DemoClient>,
    /// The listener's certificate (`[server.tls]`), reloaded on SIGHUP;
    /// `None`: plain HTTP.
    pub(crate) tls: Option<Arc<mcmp_engine::rt::SharedServerTls>>,
    /// Failed console logins and logged-out sessions (admin path only).
    pub(crate) sessions: crate::auth::session::Sessions,
    /// Event streams (`GET /admin/v1/events`) open in the process.
    pub(crate) event_streams: AtomicUsize,
}

impl ApiState {
    /// Builds the shared state; `listen` is the configured address.
    pub(crate) fn new(
        config: Config,
        admin_token: mcmp_engine::secrets::SecretHash,
        jwt_key: Vec<u8>,
        engine: Arc<SharedEngine>,
        listen: SocketAddr,
    ) -> ApiState {
        ApiState {
            config,
            admin_token,
            jwt_key,
            engine,
            listen,
            bound: OnceLock::new(),
            shards_bound: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            demo: None,
            tls: None,
            sessions: Default::default(),
            event_streams: AtomicUsize::new(0),
        }
    }

    /// Serves HTTPS with this certificate (`[server.tls]`).
    pub(crate) fn with_tls(
        mut self,
        tls: Option<Arc<mcmp_engine::rt::SharedServerTls>>,
    ) -> ApiState {
        self.tls = tls;
        self
    }

    /// Prints the demo client's credentials and `curl` commands after the
    /// ready line (`mcmp serve --demo`).
    pub(crate) fn with_demo(mut self, demo: Option<crate::demo::DemoClient>) -> ApiState {
        self.demo = demo;
        self
    }

    /// Whether `/readyz` says ready: recovered, listening, not draining.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.engine.is_draining()
    }
}

/// One shard's HTTP side. Lives on its shard.
pub(crate) struct ShardApi {
    /// The shard's engine.
    pub(crate) shard: ShardHandle,
    /// Shared state.
    pub(crate) state: Arc<ApiState>,
    pub(crate) stop: LocalNotify,
    pub(crate) stopping: Cell<bool>,
    pub(crate) connections: RefCell<HashMap<u64, Rc<LocalNotify>>>,
    pub(crate) next_conn: Cell<u64>,
    /// This shard's copy of the listener's certificate.
    pub(crate) tls: Option<mcmp_engine::rt::LocalServerTls>,
    /// This shard's open event streams.
    pub(crate) events: Rc<crate::endpoints::admin::events::EventHub>,
}
