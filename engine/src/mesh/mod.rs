//! The mesh: the only way work crosses cores.
//!
//! Every shard has one bounded inbox; any shard may send it a *batch* (a
//! `Vec` of requests, never one request per hop). When an inbox is full the
//! sender waits (backpressure reaches the HTTP client as latency, never as an
//! unbounded queue). Replies travel on per-request oneshot channels.
//!
//! The inboxes are lock-free MPSC queues that wake the receiving executor
//! through glommio's foreign-waker path; no lock is shared by all cores.

use futures_channel::mpsc;
use futures_lite::StreamExt;

pub mod call;
pub mod msg;
pub mod owner;

/// How many batches an inbox holds before senders wait.
pub const INBOX_BATCHES: usize = 1024;

/// The sending half of the mesh, cloned into every shard (`Send`).
pub struct SharedMesh<T> {
    inboxes: Vec<mpsc::Sender<Vec<T>>>,
}

impl<T> Clone for SharedMesh<T> {
    fn clone(&self) -> Self {
        SharedMesh {
            inboxes: self.inboxes.clone(),
        }
    }
}

/// The receiving half of one shard's inbox.
pub struct Inbox<T> {
    rx: mpsc::Receiver<Vec<T>>,
}

/// The mesh is closed: the destination shard has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshClosed;

/// Builds a mesh of `shards` inboxes.
pub fn build<T>(shards: usize) -> (SharedMesh<T>, Vec<Inbox<T>>) {
    let (inboxes, rxs) = (0..shards)
        .map(|_| {
            let (tx, rx) = mpsc::channel(INBOX_BATCHES);
            (tx, Inbox { rx })
        })
        .unzip();
    (SharedMesh { inboxes }, rxs)
}

impl<T> SharedMesh<T> {
    /// Sends one batch to `shard`, waiting while its inbox is full.
    pub async fn send(&self, shard: usize, batch: Vec<T>) -> Result<(), MeshClosed> {
        let mut tx = self.inboxes[shard].clone();
        futures_lite::future::poll_fn(|cx| tx.poll_ready(cx))
            .await
            .map_err(|_| MeshClosed)?;
        tx.start_send(batch).map_err(|_| MeshClosed)
    }
}

impl<T> Inbox<T> {
    /// The next batch, or `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Vec<T>> {
        self.rx.next().await
    }
}
