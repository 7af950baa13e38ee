//! Glue between hyper 1.x and glommio: `hyper::rt::{Read, Write}` over a
//! glommio `TcpStream`, and a `hyper::rt::Timer` on glommio's timers.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::tls::{LocalServerTls, MaybeTls};

/// Size of the read staging buffer; hyper asks for at most its own buffer.
const READ_CHUNK: usize = 16 * 1024;

/// An accepted connection, plain or TLS, readable and writable by hyper. It
/// counts I/O so that an idle-connection watchdog can tell a stalled peer
/// from a busy one.
pub struct Conn {
    stream: MaybeTls<TcpStream>,
    activity: Rc<Cell<u64>>,
}

impl Conn {
    pub(super) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream: MaybeTls::plain(stream),
            activity: Rc::new(Cell::new(0)),
        }
    }

    /// Runs the TLS server handshake on this connection (the caller bounds
    /// its time). Fails on a connection that already speaks TLS.
    pub async fn start_tls(self, tls: &LocalServerTls) -> io::Result<Conn> {
        let plain = self
            .stream
            .into_plain()
            .map_err(|_| io::Error::other("TLS is already on"))?;
        Ok(Conn {
            stream: tls.accept(plain).await?,
            activity: self.activity,
        })
    }

    /// A counter that grows with every successful read or write.
    pub fn activity(&self) -> Rc<Cell<u64>> {
        self.activity.clone()
    }

    fn touch(&self) {
        self.activity.set(self.activity.get().wrapping_add(1));
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // NOTE: hyper's cursor hands out uninitialised memory; reading into a
        // staging buffer and copying is safe and measured faster than zeroing.
        let this = self.get_mut();
        let mut staging = [0u8; READ_CHUNK];
        let want = buf.remaining().min(READ_CHUNK);
        match Pin::new(&mut this.stream).poll_read(cx, &mut staging[..want]) {
            Poll::Ready(Ok(n)) => {
                this.touch();
                buf.put_slice(&staging[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(_)) = res {
            this.touch();
        }
        res
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_close(cx)
    }
}

/// hyper's timer on glommio. Without a timer hyper silently ignores its
/// header-read timeout, and setting the timeout without one panics.
#[derive(Clone, Copy, Debug, Default)]
pub struct HyperTimer;

struct GlommioSleep(Timer);

// SAFETY: hyper requires `Sleep: Send + Sync`, but a glommio `Timer` holds an
// `Rc` of its shard's reactor. Each hyper connection is driven by a task on
// one shard and glommio tasks never move between threads, so the timer is
// created, polled and dropped on the thread that owns it.
unsafe impl Send for GlommioSleep {}
// SAFETY: as above; the timer is never touched from another thread.
unsafe impl Sync for GlommioSleep {}

impl Future for GlommioSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx).map(|_| ())
    }
}

impl hyper::rt::Sleep for GlommioSleep {}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(GlommioSleep(Timer::new(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
}
