//! Ported-out numbers (SPEC §1 Routing): which messages were re-routed
//! once because a carrier reported their number ported out. The record of
//! it is the message's `queued` event with code 5004 (in the WAL, so it
//! holds across a restart).

use crate::codes::ResultCode;
use crate::core::lifecycle::store::StoredMessage;
use crate::model::Status;

/// Whether the message was already re-routed because its number was ported.
pub fn was_rerouted(m: &StoredMessage) -> bool {
    m.events
        .iter()
        .any(|e| e.status == Status::Queued && e.code == ResultCode::PortedOut.as_u16())
}

/// Whether a message waiting to be routed is waiting for its PNX write (its
/// last event is the ported-out `queued`).
pub fn awaits_pnx(m: &StoredMessage) -> bool {
    m.status == Status::Queued
        && m.events
            .last()
            .is_some_and(|e| e.code == ResultCode::PortedOut.as_u16())
}
