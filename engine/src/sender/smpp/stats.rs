//! The counters of one SMPP session ([`SessionStats`]), shared between the
//! session task and the host that reads them. Shard-local (`Rc`).

use std::cell::Cell;
use std::rc::Rc;

/// Counters of one session, readable by its owner. Shard-local (`Rc`).
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    pub(super) binds: Rc<Cell<u64>>,
    pub(super) reconnects: Rc<Cell<u64>>,
    pub(super) protocol_errors: Rc<Cell<u64>>,
    pub(super) submits: Rc<Cell<u64>>,
    pub(super) receipts: Rc<Cell<u64>>,
}

impl SessionStats {
    /// Successful binds.
    pub fn binds(&self) -> u64 {
        self.binds.get()
    }
    /// Connection attempts after the first.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.get()
    }
    /// Malformed or unexpected PDUs, absurd lengths, generic_nacks received.
    pub fn protocol_errors(&self) -> u64 {
        self.protocol_errors.get()
    }
    /// submit_sm PDUs sent (a concatenated message counts each part).
    pub fn submits(&self) -> u64 {
        self.submits.get()
    }
    /// Final receipts reported.
    pub fn receipts(&self) -> u64 {
        self.receipts.get()
    }
}

pub(super) fn bump(counter: &Cell<u64>) {
    counter.set(counter.get() + 1);
}
