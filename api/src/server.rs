//! The HTTP server: one hyper listener per shard on the shared port
//! (`SO_REUSEPORT`), connection limits and timeouts, readiness and the
//! graceful-shutdown protocol. Every request goes to the
//! [`router`](crate::router) with its shard's
//! [`ShardApi`](crate::context::ShardApi).
//!
//! Shutdown protocol: the signal thread calls `SharedEngine::begin_drain`; every
//! shard stops accepting, asks each open connection to finish its in-flight
//! request and close (hyper's graceful shutdown), waits for them up to the
//! grace period, then returns so the engine flushes the WAL and the process
//! exits 0.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use mcmp_engine::rt::{self, Conn, HyperTimer, Listener, LocalServerTls};
use mcmp_engine::LocalNotify;
use mcmp_engine::ShardHandle;

use crate::config::Config;
use crate::context::{ApiState, ShardApi};
use crate::http::Body;
use crate::router;

/// Serves HTTP on one shard until shutdown.
pub(crate) async fn serve_shard(shard: ShardHandle, state: Arc<ApiState>) {
    let tls = state.tls.clone().map(LocalServerTls::new);
    let api = Rc::new(ShardApi {
        shard,
        state,
        stop: LocalNotify::default(),
        stopping: Cell::new(false),
        connections: RefCell::new(HashMap::new()),
        next_conn: Cell::new(0),
        tls,
        events: Rc::default(),
    });
    let listener = match bind(&api).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(shard = api.shard.id(), "cannot listen: {e}");
            api.state.engine.begin_drain();
            return;
        }
    };
    rt::spawn(watch_drain(api.clone()));
    api.shard.activate().await;
    announce_ready(&api).await;
    accept_loop(&api, &listener).await;
    drop(listener);
    drain_connections(&api).await;
}

/// Shard 0 binds first (so `:0` resolves to one real port); the others bind
/// the same address with `SO_REUSEPORT`.
async fn bind(api: &ShardApi) -> std::io::Result<Listener> {
    let state = &api.state;
    let addr = if api.shard.id() == 0 {
        state.listen
    } else {
        loop {
            if let Some(a) = state.bound.get() {
                break *a;
            }
            if state.engine.is_draining() {
                return Err(std::io::Error::other("shard 0 failed to listen"));
            }
            rt::sleep(Duration::from_millis(1)).await;
        }
    };
    let listener = Listener::bind(addr)?;
    if api.shard.id() == 0 {
        let bound = listener.local_addr()?;
        let _ = state.bound.set(bound);
        state
            .engine
            .set_public_url(public_url(&state.config, bound));
    }
    state.shards_bound.fetch_add(1, Ordering::SeqCst);
    Ok(listener)
}

/// The URL providers call back: configured, else derived from the bound
/// address (an unspecified IP is read as loopback).
fn public_url(config: &Config, bound: SocketAddr) -> String {
    if let Some(url) = &config.server.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let ip = if bound.ip().is_unspecified() {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        bound.ip()
    };
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", SocketAddr::new(ip, bound.port()))
}

async fn announce_ready(api: &ShardApi) {
    let state = &api.state;
    if api.shard.id() != 0 {
        return;
    }
    while state.shards_bound.load(Ordering::SeqCst) < state.engine.shards() {
        if state.engine.is_draining() {
            return;
        }
        rt::sleep(Duration::from_millis(1)).await;
    }
    state.ready.store(true, Ordering::SeqCst);
    if let Some(addr) = state.bound.get() {
        let scheme = if state.tls.is_some() { "https" } else { "http" };
        tracing::info!(
            "mcmp ready: listening on {scheme}://{addr} ({} shards, data dir {})",
            state.engine.shards(),
            state.config.server.data_dir.display()
        );
        if let Some(demo) = &state.demo {
            // NOTE: a blocking write to stdout on a shard, once at start-up,
            // before any request is served; not worth the blocking pool.
            println!(
                "{}",
                crate::demo::banner(demo, *addr, crate::time::now_ms())
            );
        }
    }
}

/// Polls the process-wide drain flag (set by the signal thread) and turns it
/// into this shard's local stop notification.
async fn watch_drain(api: Rc<ShardApi>) {
    while !api.state.engine.is_draining() {
        rt::sleep(Duration::from_millis(20)).await;
    }
    api.stopping.set(true);
    api.stop.notify();
    for c in api.connections.borrow().values() {
        c.notify();
    }
}

async fn accept_loop(api: &Rc<ShardApi>, listener: &Listener) {
    loop {
        let next = future::or(async { Some(listener.accept().await) }, async {
            api.stop.notified().await;
            None
        })
        .await;
        match next {
            None => return,
            Some(Ok(conn)) => rt::spawn_latency(serve_connection(api.clone(), conn)),
            Some(Err(e)) => {
                tracing::warn!("accept failed: {e}");
                rt::sleep(Duration::from_millis(10)).await;
            }
        }
        if api.stopping.get() {
            return;
        }
    }
}

/// Runs the TLS handshake when the listener has a certificate, within the
/// header-read timeout (a client that never finishes it holds nothing
/// longer than one that never sends its head).
async fn start_tls(api: &ShardApi, conn: Conn) -> Option<Conn> {
    let Some(tls) = &api.tls else {
        return Some(conn);
    };
    let limit = api.state.config.server.header_read_timeout;
    match rt::timeout(limit, conn.start_tls(tls)).await {
        Some(Ok(conn)) => Some(conn),
        Some(Err(e)) => {
            tracing::debug!("TLS handshake failed: {e}");
            None
        }
        None => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

async fn serve_connection(api: Rc<ShardApi>, conn: Conn) {
    let Some(conn) = start_tls(&api, conn).await else {
        return;
    };
    let id = api.next_conn.get();
    api.next_conn.set(id + 1);
    let stop = Rc::new(LocalNotify::default());
    api.connections.borrow_mut().insert(id, stop.clone());
    let activity = conn.activity();
    let config = &api.state.config.server;
    let handler = api.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let api = handler.clone();
        async move {
            let started = Instant::now();
            let route = router::metrics_route(req.method(), req.uri().path());
            let resp = router::route(&api, req).await;
            api.shard
                .observe_http(route, resp.status().as_u16(), started.elapsed());
            Ok::<Response<Body>, Infallible>(resp)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(HyperTimer)
        .header_read_timeout(config.header_read_timeout)
        // A head over `max-head` is answered 431 by hyper, which then
        // closes the connection; bodies stream through this buffer.
        .max_buf_size(config.max_head as usize)
        .keep_alive(true);
    let connection = builder.serve_connection(conn, service);
    let mut connection = std::pin::pin!(connection);
    let idle = config.idle_timeout;
    let interrupted = future::or(
        async {
            let _ = connection.as_mut().await;
            false
        },
        async {
            future::or(stop.notified(), idle_watch(activity, idle)).await;
            true
        },
    )
    .await;
    if interrupted {
        connection.as_mut().graceful_shutdown();
        let _ = future::or(async { connection.as_mut().await.is_ok() }, async {
            rt::sleep(api.state.config.server.shutdown_grace).await;
            false
        })
        .await;
    }
    api.connections.borrow_mut().remove(&id);
}

/// Returns once the connection has done no I/O for `idle`.
async fn idle_watch(activity: Rc<Cell<u64>>, idle: Duration) {
    let mut seen = activity.get();
    let mut quiet_since = Instant::now();
    loop {
        rt::sleep(idle / 4).await;
        let now = activity.get();
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= idle {
            return;
        }
    }
}

async fn drain_connections(api: &ShardApi) {
    let deadline = Instant::now() + api.state.config.server.shutdown_grace;
    while !api.connections.borrow().is_empty() && Instant::now() < deadline {
        rt::sleep(Duration::from_millis(10)).await;
    }
}
