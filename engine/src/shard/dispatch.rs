//! The shard's side of the mesh: each batch from the inbox is handed out,
//! one message at a time, to the owner of its domain.

use std::rc::Rc;

use super::routing;
use super::{unix_secs, Shard};
use crate::mesh::msg::{
    AdminMsg, DedupMsg, MeshMsg, MessagesMsg, QuotaMsg, ReceiptMsg, SessionMsg,
};
use crate::mesh::Inbox;
use crate::rt;
use crate::sender::host as sender_host;

impl Shard {
    /// Serves this shard's inbox until every sender is gone.
    pub(super) async fn serve_mesh(self: Rc<Self>, mut inbox: Inbox<MeshMsg>) {
        while let Some(batch) = inbox.recv().await {
            for msg in batch {
                self.handle(msg);
            }
            rt::yield_if_needed().await;
        }
    }

    /// Hands one message to the owner of its domain.
    pub(super) fn handle(self: &Rc<Self>, msg: MeshMsg) {
        match msg {
            MeshMsg::Dedup(m) => self.on_dedup(m),
            MeshMsg::Quota(m) => self.on_quota(m),
            MeshMsg::Route(req) => routing::pick(self, req),
            MeshMsg::Receipt(m) => self.on_receipt(m),
            MeshMsg::Owner(ev) => routing::on_owner_event(self, ev),
            MeshMsg::Messages(m) => self.on_messages(m),
            MeshMsg::Session(m) => self.on_session(m),
            MeshMsg::Report(items) => crate::report::enqueue(self, items),
            MeshMsg::Admin(m) => self.on_admin(m),
            MeshMsg::Checkpoint(m) => super::checkpoint::handle(self, m),
        }
    }

    fn on_dedup(&self, msg: DedupMsg) {
        let dedup = &mut self.core.borrow_mut().dedup;
        match msg {
            DedupMsg::Claim {
                claims,
                now_secs,
                reply,
            } => {
                let out = claims
                    .into_iter()
                    .map(|(k, id)| dedup.claim(k, id, now_secs))
                    .collect();
                let _ = reply.send(out);
            }
            DedupMsg::Peek {
                keys,
                now_secs,
                reply,
            } => {
                let out = keys
                    .into_iter()
                    .map(|k| dedup.lookup(k, now_secs))
                    .collect();
                let _ = reply.send(out);
            }
            DedupMsg::Resolve {
                key,
                claimant,
                original,
            } => dedup.resolve(key, claimant, original),
            DedupMsg::Release { claims } => {
                claims.into_iter().for_each(|(k, id)| dedup.release(k, id));
            }
            DedupMsg::Restore { entries, reply } => {
                let now = unix_secs();
                for (k, id, at) in entries {
                    dedup.restore(k, id, at, now);
                }
                let _ = reply.send(());
            }
        }
    }

    fn on_quota(&self, msg: QuotaMsg) {
        let quota = &mut self.core.borrow_mut().quota;
        match msg {
            QuotaMsg::Lease {
                group,
                channel,
                tps,
                want,
                take,
                reply,
            } => {
                let req = crate::core::quota::LeaseRequest {
                    group: &group,
                    channel,
                    tps,
                    want,
                    take,
                };
                let _ = reply.send(quota.lease(crate::unix_ms(), req));
            }
            QuotaMsg::Charge {
                group,
                credit,
                prices,
                take,
                reply,
            } => {
                let _ = reply.send(quota.charge(&group, credit, &prices, take));
            }
            QuotaMsg::Refund { group, amount } => {
                quota.refund(&group, amount);
                if let Some(link) = &self.cluster {
                    rt::spawn(super::cluster::refund(link.clone(), group, amount));
                }
            }
            QuotaMsg::RestoreCharges { charges, reply } => {
                for (g, net) in charges {
                    quota.restore(&g, net);
                }
                let _ = reply.send(());
            }
            QuotaMsg::NetCharges { group, reply } => {
                let _ = reply.send(quota.net(&group));
            }
            QuotaMsg::Backlog {
                group,
                channel,
                want,
                max,
                take,
                reply,
            } => {
                let _ = reply.send(quota.reserve_backlog(&group, channel, want, max, take));
            }
            QuotaMsg::BacklogAdjust { group, channel, n } => {
                quota.adjust_backlog(&group, channel, n)
            }
            QuotaMsg::RestoreBacklog { counts, reply } => {
                for (group, channel, n) in counts {
                    quota.adjust_backlog(&group, channel, i64::from(n));
                }
                let _ = reply.send(());
            }
        }
    }

    fn on_receipt(self: &Rc<Self>, msg: ReceiptMsg) {
        match msg {
            ReceiptMsg::Index { key, id } => routing::index_receipt(self, key, id),
            ReceiptMsg::Offered {
                key,
                delivered,
                code,
                reply,
            } => {
                let _ = reply.send(routing::offered_receipt(self, key, (delivered, code)));
            }
            ReceiptMsg::Arrived {
                key,
                delivered,
                code,
                ..
            } => routing::receipt(self, key, delivered, code),
        }
    }

    fn on_messages(self: &Rc<Self>, msg: MessagesMsg) {
        match msg {
            MessagesMsg::View {
                id,
                group_code,
                reply,
            } => {
                let _ = reply.send(self.messages().view(id, group_code.as_deref()));
            }
            MessagesMsg::Cancel {
                id,
                group_code,
                reply,
            } => {
                let shard = self.clone();
                rt::spawn(async move {
                    let outcome = super::reports::cancel(&shard, id, &group_code).await;
                    let _ = reply.send(outcome);
                });
            }
            MessagesMsg::Query { query, reply } => {
                let _ = reply.send(crate::query::run_local(self, &query));
            }
            MessagesMsg::FailedCounts {
                group,
                since,
                until,
                reply,
            } => {
                let _ = reply.send(crate::digest::local_failed(self, &group, since, until));
            }
            MessagesMsg::Stats { reply } => {
                let _ = reply.send(crate::stats::local(self));
            }
            MessagesMsg::Webhooks { reply } => {
                let _ = reply.send(super::reports::webhooks_local(self));
            }
            MessagesMsg::Redrive {
                client_id,
                archived,
                reply,
            } => {
                let n = super::reports::redrive_local(self, &client_id, archived);
                let _ = reply.send(n);
            }
        }
    }

    fn on_session(self: &Rc<Self>, msg: SessionMsg) {
        match msg {
            SessionMsg::Submit { sender, items } => {
                for m in items {
                    if let Err(back) = self.senders.push(self, &sender, m) {
                        sender_host::unplaced(self, back.id);
                    }
                }
            }
            SessionMsg::Unqueue { sender, id, reply } => {
                let _ = reply.send(self.senders.unqueue(&sender, id));
            }
            SessionMsg::Drain { sender, to, reply } => {
                let _ = reply.send(self.senders.drain(self, &sender, to));
            }
        }
    }

    fn on_admin(self: &Rc<Self>, msg: AdminMsg) {
        match msg {
            AdminMsg::Catalog { snapshot, reply } => {
                let newer = snapshot.generation > self.snapshot.borrow().generation;
                if newer {
                    *self.snapshot.borrow_mut() = snapshot;
                    self.senders.reconcile(self);
                    self.shared.bump_sender_epoch();
                }
                let _ = reply.send(());
            }
            AdminMsg::Metrics { reply } => {
                let _ = reply.send(self.metrics_snapshot());
            }
            AdminMsg::Agent(msg) => crate::agents::handle(self, msg),
            AdminMsg::Alerts { reply } => {
                let _ = reply.send(self.alerts.recent());
            }
        }
    }
}
