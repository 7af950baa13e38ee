//! The durability gate: reports wait here until the final state behind
//! them is durable (redpanda's offset monitor). A report is registered with
//! the LSN of the record that made its message final; when the WAL's
//! acknowledged LSN passes it, the report is released.

use std::collections::VecDeque;

use crate::model::MessageId;

/// Reports of this shard's messages waiting for their final state to be
/// durable, in LSN order. Shard-local.
#[derive(Debug, Default)]
pub struct DurabilityGate {
    waiting: VecDeque<(u64, MessageId)>,
}

impl DurabilityGate {
    /// `id`'s report waits until the record at `lsn` is durable.
    pub fn wait(&mut self, lsn: u64, id: MessageId) {
        self.waiting.push_back((lsn, id));
    }

    /// The reports whose records are durable once `acked` is, in order.
    pub fn ready(&mut self, acked: u64) -> Vec<MessageId> {
        let n = self.waiting.partition_point(|(lsn, _)| *lsn <= acked);
        self.waiting.drain(..n).map(|(_, id)| id).collect()
    }

    /// Reports still waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_leave_in_order_once_their_lsn_is_durable() {
        let mut gate = DurabilityGate::default();
        let id = |n| MessageId::new(0, n);
        gate.wait(5, id(1));
        gate.wait(5, id(2));
        gate.wait(9, id(3));
        assert_eq!(gate.ready(4), vec![]);
        assert_eq!(gate.ready(5), vec![id(1), id(2)]);
        assert_eq!(gate.ready(8), vec![]);
        assert_eq!(gate.len(), 1);
        assert_eq!(gate.ready(100), vec![id(3)]);
        assert!(gate.is_empty());
        // A record that could not be logged (LSN 0) does not hold its report.
        gate.wait(0, id(4));
        assert_eq!(gate.ready(0), vec![id(4)]);
    }
}
