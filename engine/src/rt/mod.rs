//! The runtime facade: the only place that names glommio.
//!
//! Everything the engine and the API need from the thread-per-core runtime
//! goes through here: starting pinned shard executors, spawning local tasks,
//! sleeping, running blocking calls on the executor's blocking pool, TCP
//! listen/accept, and the glue that lets hyper drive glommio sockets. A move to
//! the glommio fork or to another runtime stays inside this module.
//!
//! Every value created here lives on the shard (core) that created it; none of
//! them is `Send` unless the name says `shared_`.

mod hyper_glue;
mod probe;
#[cfg(test)]
pub(crate) mod test_ca;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

pub use hyper_glue::{Conn, HyperTimer};
pub use probe::{
    free_space_bytes, free_space_fraction, lower_this_threads_priority, no_huge_pages, probe,
    ProbeError,
};
pub use tls::{ClientTls, ClientTlsSpec, LocalServerTls, MaybeTls, SharedServerTls, TlsError};

/// Locked I/O memory given to each executor. glommio's default (10 MiB) is
/// above a typical 8 MiB `RLIMIT_MEMLOCK`, and buffer registration then fails
/// silently; below 512 KiB the executor refuses to start (DESIGN §11).
pub const IO_MEMORY: usize = 1 << 20;

/// io_uring queue depth per executor; small rings keep the locked memory low.
const RING_DEPTH: usize = 128;

/// Starts `shards` pinned executors, runs `main(shard)` on each and waits for
/// all of them. Returns every shard's result, or the first error that kept an
/// executor from starting (glommio reports those only through the join).
pub fn run_shards<T, F, Fut>(shards: usize, main: F) -> io::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = T> + 'static,
{
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut handles = Vec::with_capacity(shards);
    for shard in 0..shards {
        let main = main.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(shard % cpus))
            .name(&format!("mcmp-shard-{shard}"))
            .io_memory(IO_MEMORY)
            .ring_depth(RING_DEPTH)
            .preempt_timer(Duration::from_millis(10))
            .spawn(move || main(shard))
            .map_err(|e| io::Error::other(format!("starting shard {shard}: {e}")))?;
        handles.push(handle);
    }
    handles
        .into_iter()
        .enumerate()
        .map(|(shard, h)| {
            h.join()
                .map_err(|e| io::Error::other(format!("shard {shard} failed: {e}")))
        })
        .collect()
}

/// Spawns a task on the current shard and lets it run to completion on its own.
pub fn spawn<F>(future: F)
where
    F: Future + 'static,
    F::Output: 'static,
{
    glommio::spawn_local(future).detach();
}

thread_local! {
    /// This executor's queue for tasks whose latency matters.
    static LATENCY_QUEUE: std::cell::OnceCell<glommio::TaskQueueHandle> =
        const { std::cell::OnceCell::new() };
}

/// How long work in the default queue runs before a task of the latency
/// queue with work to do gets its turn (its I/O completing preempts it).
const LATENCY_TURN: Duration = Duration::from_millis(1);

/// Spawns a task on the current shard in its latency queue (HTTP
/// connections): when its I/O completes, the delivery work running in the
/// default queue yields to it within [`LATENCY_TURN`], instead of running
/// to the end of its time slice first; each queue has the same share of
/// the core when both have work.
pub fn spawn_latency<F>(future: F)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let queue = LATENCY_QUEUE.with(|q| {
        *q.get_or_init(|| {
            glommio::executor().create_task_queue(
                glommio::Shares::default(),
                glommio::Latency::Matters(LATENCY_TURN),
                "latency",
            )
        })
    });
    spawn_into(queue, future);
}

/// Spawns a task on the current shard in its default queue (delivery
/// work), wherever it is spawned from: work an HTTP request starts (the
/// routing of what it accepted) does not take the latency queue's turns.
/// It runs when the executor next serves that queue, not in place.
pub fn spawn_throughput<F>(future: F)
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_into(glommio::TaskQueueHandle::default(), future);
}

/// Spawns a detached task into `queue` of the current executor.
fn spawn_into<F>(queue: glommio::TaskQueueHandle, future: F)
where
    F: Future + 'static,
    F::Output: 'static,
{
    // It fails only for a queue that does not exist; ours do.
    if let Err(e) = glommio::spawn_local_into(future, queue).map(|t| t.detach()) {
        tracing::error!("spawning into task queue {}: {e}", queue.index());
    }
}

/// A handle to a task spawned with [`spawn_task`]; awaiting it yields the
/// task's output, dropping it cancels the task.
pub struct LocalTask<T>(glommio::Task<T>);

impl<T> Future for LocalTask<T> {
    type Output = T;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// Spawns a task on the current shard and returns a handle to await it.
pub fn spawn_task<F>(future: F) -> LocalTask<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    LocalTask(glommio::spawn_local(future))
}

/// Sleeps on the shard's timer.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// Runs a blocking call (fdatasync, the catalog store, DNS) on the shard's
/// blocking thread pool, so the core itself never blocks.
pub async fn blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    glommio::executor().spawn_blocking(f).await
}

/// Runs a long blocking call on a short-lived thread of its own, so it
/// never queues ahead of the short ones in the shard's blocking pool (which
/// has one thread); `None` if no thread could be started.
pub async fn on_own_thread<F, R>(name: &str, f: F) -> Option<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.await.ok()
}

/// Lets other tasks of the shard run if this one has used its time slice.
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await;
}

/// A TCP listener of one shard. Every shard binds the same address with
/// `SO_REUSEPORT`, so the kernel spreads connections over the shards.
pub struct Listener {
    inner: glommio::net::TcpListener,
}

impl Listener {
    /// Binds `addr` with `SO_REUSEPORT`.
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        let inner = glommio::net::TcpListener::bind(addr)
            .map_err(|e| io::Error::other(format!("binding {addr}: {e}")))?;
        Ok(Listener { inner })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().map_err(glommio_io)
    }

    /// Waits for the next connection; `TCP_NODELAY` is set on it.
    pub async fn accept(&self) -> io::Result<Conn> {
        let stream = self.inner.accept().await.map_err(glommio_io)?;
        stream.set_nodelay(true).map_err(glommio_io)?;
        Ok(Conn::new(stream))
    }
}

/// glommio's error carries a non-`Sync` payload; keep its text.
fn glommio_io<T: std::fmt::Debug>(e: glommio::GlommioError<T>) -> io::Error {
    match e {
        glommio::GlommioError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// An outgoing TCP connection of one shard (carrier binds, providers,
/// webhooks, SMTP), plain or with TLS started on it. `TCP_NODELAY` is set.
/// Reads and writes through the `futures_lite` `AsyncRead`/`AsyncWrite`
/// traits.
pub struct TcpConn {
    inner: MaybeTls<glommio::net::TcpStream>,
}

/// Connects to `addr` within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpConn> {
    let inner = glommio::net::TcpStream::connect_timeout(addr, timeout)
        .await
        .map_err(glommio_io)?;
    inner.set_nodelay(true).map_err(glommio_io)?;
    Ok(TcpConn {
        inner: MaybeTls::plain(inner),
    })
}

impl TcpConn {
    /// Runs the TLS client handshake for `host` on this connection (right
    /// after connecting, or after a STARTTLS exchange). Fails on a
    /// connection that already speaks TLS.
    pub async fn start_tls(self, tls: &ClientTls, host: &str) -> io::Result<TcpConn> {
        let plain = self
            .inner
            .into_plain()
            .map_err(|_| io::Error::other("TLS is already on"))?;
        Ok(TcpConn {
            inner: tls.connect(host, plain).await?,
        })
    }

    /// Whether the connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// Every address of `host:port`, resolved on the blocking pool.
pub async fn resolve_all(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let target = format!("{host}:{port}");
    blocking(move || {
        use std::net::ToSocketAddrs as _;
        Ok(target.to_socket_addrs()?.collect())
    })
    .await
}

/// Resolves `host:port` on the blocking pool (DNS must not block the core).
pub async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let target = format!("{host}:{port}");
    blocking(move || {
        use std::net::ToSocketAddrs as _;
        target
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{target}: no address")))
    })
    .await
}

impl futures_lite::AsyncRead for TcpConn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl futures_lite::AsyncWrite for TcpConn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Runs `fut` with a deadline; `None` when the deadline passed first.
pub async fn timeout<F: Future>(duration: Duration, fut: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        sleep(duration).await;
        None
    })
    .await
}
