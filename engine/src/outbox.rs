//! The shard's outbox: mesh messages produced while a task runs are
//! collected per destination shard and sent as one batch per destination
//! when the task yields, so a burst of events crosses cores in a few hops
//! instead of one hop per event. Shard-local.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::mesh::msg::MeshMsg;
use crate::mesh::SharedMesh;
use crate::rt;

/// Per-destination batches waiting for the next flush.
pub struct Outbox {
    batches: RefCell<Vec<Vec<MeshMsg>>>,
    scheduled: Cell<bool>,
}

impl Outbox {
    /// An empty outbox for `shards` destinations.
    pub fn new(shards: usize) -> Outbox {
        Outbox {
            batches: RefCell::new((0..shards).map(|_| Vec::new()).collect()),
            scheduled: Cell::new(false),
        }
    }

    /// Queues `msg` for `shard`; a flush is scheduled for when the current
    /// task yields.
    pub fn push(self: &Rc<Self>, mesh: &SharedMesh<MeshMsg>, shard: usize, msg: MeshMsg) {
        self.batches.borrow_mut()[shard].push(msg);
        if !self.scheduled.replace(true) {
            let this = self.clone();
            let mesh = mesh.clone();
            rt::spawn(async move {
                futures_lite::future::yield_now().await;
                this.scheduled.set(false);
                let batches: Vec<Vec<MeshMsg>> = this
                    .batches
                    .borrow_mut()
                    .iter_mut()
                    .map(std::mem::take)
                    .collect();
                for (dest, batch) in batches.into_iter().enumerate() {
                    if !batch.is_empty() {
                        // A closed mesh means the engine is stopping.
                        let _ = mesh.send(dest, batch).await;
                    }
                }
            });
        }
    }
}
