//! Reports that could not be delivered (SPEC §5.5): how each client's
//! reports stand on this shard, and the redrive of the abandoned ones.

use std::collections::BTreeMap;

use super::report::ReportState;
use super::store::{Redriven, SettledMessage};
use super::Lifecycle;
use crate::codec::{Record, RevivedRecord};
use crate::core::{Effect, Effects};
use crate::model::{Class, MessageId, MessageRequest};

/// One client's undelivered reports on one shard (or, merged, on all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientReports {
    /// Reports that failed at least once and wait for their next attempt.
    pub retrying: u64,
    /// Reports given up after the last attempt (served by polling only).
    pub abandoned: u64,
    /// The earliest next attempt of a retrying report (unix ms).
    pub next_attempt_ms: Option<i64>,
}

impl ClientReports {
    /// Adds another shard's counts.
    pub fn merge(&mut self, other: ClientReports) {
        self.retrying += other.retrying;
        self.abandoned += other.abandoned;
        self.next_attempt_ms = match (self.next_attempt_ms, other.next_attempt_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

impl Lifecycle {
    /// The retrying reports of this shard's messages, per client (the
    /// abandoned ones are counted from [`Lifecycle::dead_letters`] and the
    /// history store).
    pub fn client_reports(&self) -> BTreeMap<String, ClientReports> {
        let mut out: BTreeMap<String, ClientReports> = BTreeMap::new();
        for m in self.store.heads().filter(|m| m.status.is_final()) {
            let r = m.report;
            if !(r.pending() && r.failures > 0) {
                continue;
            }
            let row = out.entry(m.client_id.to_string()).or_default();
            row.retrying += 1;
            let next = row
                .next_attempt_ms
                .map_or(r.next_due_ms, |n| n.min(r.next_due_ms));
            row.next_attempt_ms = Some(next);
        }
        out
    }

    /// The dead letters in memory: (id, client, accept time). They leave
    /// for the history store, so some may be there already: a count
    /// counts those once.
    pub fn dead_letters(&self) -> Vec<Redriven> {
        self.store
            .heads()
            .filter(|m| m.status.is_final() && m.report.dead_letter())
            .map(|m| (m.id, m.client_id.to_string(), m.created_at_ms))
            .collect()
    }

    /// Gives `client_id`'s abandoned reports a fresh schedule (logged):
    /// those still in memory, and `archived`, this shard's dead letters of
    /// that client read from the history store, which come back into
    /// memory. The driver sends them now.
    pub fn redrive(
        &mut self,
        client_id: &str,
        archived: Vec<RevivedRecord>,
        fx: &mut Effects,
    ) -> Vec<MessageId> {
        let mut ids = Vec::new();
        for rec in archived {
            if rec.client_id != client_id || self.store.get(rec.id).is_some() {
                continue;
            }
            ids.push(rec.id);
            let record = Record::Revived(Box::new(rec));
            self.store.apply(record.clone());
            fx.push(Effect::Log(record));
        }
        let abandoned: Vec<(MessageId, i64)> = self
            .store
            .iter()
            .filter(|m| m.report.abandoned && &*m.client_id == client_id)
            .map(|m| (m.id, m.created_at_ms))
            .collect();
        for (id, created_at_ms) in abandoned {
            self.store.redriven(id, client_id, created_at_ms);
            self.record_report(id, ReportState::default(), fx);
            ids.push(id);
        }
        ids
    }
}

/// A dead letter read from the history store, as it comes back into
/// memory: its view exactly (the request keeps what a view shows of it).
pub fn revived(m: SettledMessage) -> RevivedRecord {
    let v = m.view;
    let request = MessageRequest {
        ad: v.class == Class::Ad,
        parts: v.parts,
        priority: Some(v.class),
        origin_code: v.origin_code,
        ..MessageRequest::bare(&v.src_msg_id, v.channel, &v.to)
    };
    RevivedRecord {
        id: v.id,
        group_code: v.group_code,
        client_id: v.client_id,
        request,
        status: v.status,
        code: v.code,
        price: m.price,
        carrier: v.carrier,
        sender: v.sender,
        created_at_ms: v.created_at_ms,
        updated_at_ms: v.updated_at_ms,
        fallback_message_id: v.fallback_message_id,
        fallback_of: v.fallback_of,
        events: v.events,
    }
}
