//! Numbers a carrier reports as ported out (SPEC §1 Routing): the PNX table
//! learns that the number no longer belongs to the carrier it named, and the
//! message is routed once more.
//!
//! The carrier's report does not say where the number went, so the table
//! entry becomes `UNKNOWN` and the route rule's `*` key decides the second
//! attempt. A message is re-routed for this reason only once: its `queued`
//! event with code 5004 records that (in the WAL, so also across a
//! restart), and a second ported-out report, or no `*` route, ends it
//! `failed` 5004.
//!
//! PNX writes go through the catalog, which rebuilds the table; they are
//! batched per shard (one write per tick at most) so a burst of ported
//! numbers costs one rebuild, and each batch's messages are routed once the
//! write has reached every shard. Shard-local.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::catalog::table;
use crate::core::lifecycle::events::OwnerEvent;
use crate::mesh::msg::MeshMsg;
use crate::model::MessageId;
use crate::rt;
use crate::shard::Shard;

/// The carrier a ported-out number is given in the table.
pub const PORTED_CARRIER: &str = "UNKNOWN";

/// Most numbers waiting for their PNX write on one shard; beyond it a
/// message is routed at once, without waiting for the table.
const MAX_PENDING: usize = 100_000;

/// Ported-out messages waiting for their PNX write. Shard-local.
#[derive(Default)]
pub struct PortedOut {
    pending: RefCell<Vec<(String, MessageId)>>,
    writing: Cell<bool>,
}

/// Queues the PNX write for `number`, after which `id` is routed.
pub fn enqueue(shard: &Shard, number: String, id: MessageId) {
    let mut pending = shard.ported.pending.borrow_mut();
    if pending.len() >= MAX_PENDING {
        drop(pending);
        shard.send_to(shard.id, MeshMsg::Owner(OwnerEvent::Route { id }));
        return;
    }
    pending.push((number, id));
}

/// Writes the pending numbers (one catalog write) and then routes their
/// messages; called from the shard's tick. One batch at a time.
pub fn flush(shard: &Rc<Shard>) {
    let ported = &shard.ported;
    if ported.writing.get() || ported.pending.borrow().is_empty() {
        return;
    }
    let batch = std::mem::take(&mut *ported.pending.borrow_mut());
    ported.writing.set(true);
    let shard = shard.clone();
    rt::spawn(async move {
        let value = serde_json::to_vec(PORTED_CARRIER).unwrap_or_default();
        let rows: Vec<(String, Vec<u8>)> = batch
            .iter()
            .filter(|(n, _)| crate::routing::pnx::number_key(n).is_some())
            .map(|(n, _)| (n.clone(), value.clone()))
            .collect();
        let catalog = shard.shared.catalog.clone();
        let written = shard
            .catalog_write(move |s| {
                s.put_many(table::PNX, &rows)?;
                catalog.invalidate_pnx();
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::error!("ported-out numbers not written to the PNX table: {e}");
        }
        shard.ported.writing.set(false);
        let ids = batch.into_iter().map(|(_, id)| id).collect();
        super::routing::route(&shard, ids).await;
    });
}
