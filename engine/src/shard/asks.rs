//! The cross-shard requests of a shard: reads and commands that other
//! shards answer, each one `ask` or `ask_all` over the mesh.

use std::rc::Rc;

use super::{unix_secs, Shard};
use crate::catalog::CatalogError;
use crate::core::dedup::{ClaimOutcome, DedupKey};
use crate::core::lifecycle::report::ReportState;
use crate::core::lifecycle::store::MessageView;
use crate::mesh::call::{ask, ask_all};
use crate::mesh::msg::{AdminMsg, DedupMsg, MeshMsg, MessagesMsg, QuotaMsg, SessionMsg};
use crate::mesh::{owner, MeshClosed};
use crate::model::{Channel, MessageId};
use crate::{rt, unix_ms};

impl Shard {
    /// Leases TPS tokens from the customer's owning shard.
    pub async fn lease_tps(
        self: &Rc<Self>,
        group: &str,
        channel: Channel,
        tps: u32,
        want: u32,
        take: bool,
    ) -> u32 {
        let to = owner::customer(group, self.shards());
        let group = group.to_string();
        ask(self, to, |reply| {
            MeshMsg::Quota(QuotaMsg::Lease {
                group,
                channel,
                tps,
                want,
                take,
                reply,
            })
        })
        .await
        .unwrap_or(0)
    }

    /// Debits prepaid prices at the customer's owning shard.
    pub async fn charge(
        self: &Rc<Self>,
        group: &str,
        credit: i64,
        prices: Vec<i64>,
        take: bool,
    ) -> Vec<bool> {
        let n = prices.len();
        let to = owner::customer(group, self.shards());
        let group = group.to_string();
        ask(self, to, |reply| {
            MeshMsg::Quota(QuotaMsg::Charge {
                group,
                credit,
                prices,
                take,
                reply,
            })
        })
        .await
        .unwrap_or_else(|_| vec![false; n])
    }

    /// Reserves backlog slots of a customer's channel at its owning shard.
    pub async fn reserve_backlog(
        self: &Rc<Self>,
        group: &str,
        channel: Channel,
        (want, max): (u32, u32),
        take: bool,
    ) -> u32 {
        let to = owner::customer(group, self.shards());
        let group = group.to_string();
        ask(self, to, |reply| {
            MeshMsg::Quota(QuotaMsg::Backlog {
                group,
                channel,
                want,
                max,
                take,
                reply,
            })
        })
        .await
        .unwrap_or(0)
    }

    /// Gives backlog slots back (`n < 0`) or restores them, at the
    /// customer's owning shard (batched, not waited for).
    pub fn adjust_backlog(&self, group: &str, channel: Channel, n: i64) {
        let to = owner::customer(group, self.shards());
        let group = group.to_string();
        self.send_to(
            to,
            MeshMsg::Quota(QuotaMsg::BacklogAdjust { group, channel, n }),
        );
    }

    /// A customer's net prepaid charges (admin); with `[cluster]` the
    /// nodes' shared counter, `None` while Redis does not answer.
    pub async fn net_charges(self: &Rc<Self>, group: &str) -> Option<i64> {
        if let Some(link) = &self.cluster {
            return match link.net_charges(group).await {
                Ok(net) => Some(net),
                Err(e) => {
                    tracing::warn!(group, "net charges across nodes unknown: {e}");
                    None
                }
            };
        }
        let to = owner::customer(group, self.shards());
        let group = group.to_string();
        let net = ask(self, to, |reply| {
            MeshMsg::Quota(QuotaMsg::NetCharges { group, reply })
        });
        Some(net.await.unwrap_or(0))
    }

    /// Claims dedup keys at their owner; one outcome per claim, in order.
    pub async fn claim(
        self: &Rc<Self>,
        owner: usize,
        claims: Vec<(DedupKey, MessageId)>,
    ) -> Result<Vec<ClaimOutcome>, MeshClosed> {
        let now_secs = unix_secs();
        ask(self, owner, |reply| {
            MeshMsg::Dedup(DedupMsg::Claim {
                claims,
                now_secs,
                reply,
            })
        })
        .await
    }

    /// Looks keys up at their owner without claiming.
    pub async fn peek(
        self: &Rc<Self>,
        owner: usize,
        keys: Vec<DedupKey>,
    ) -> Result<Vec<Vec<MessageId>>, MeshClosed> {
        let now_secs = unix_secs();
        ask(self, owner, |reply| {
            MeshMsg::Dedup(DedupMsg::Peek {
                keys,
                now_secs,
                reply,
            })
        })
        .await
    }

    /// Tells a key's owner that the claim of `claimant` was a re-send of
    /// `original`.
    pub async fn resolve(
        self: &Rc<Self>,
        owner: usize,
        key: DedupKey,
        claimant: MessageId,
        original: MessageId,
    ) {
        let msg = DedupMsg::Resolve {
            key,
            claimant,
            original,
        };
        let _ = self.send(owner, MeshMsg::Dedup(msg)).await;
    }

    /// Of the messages that may hold a dedup key (the newest first), the
    /// one that is `group_code`'s `src_msg_id` accepted at `since_ms` or
    /// later: a fingerprint match is confirmed against the message itself,
    /// in memory or in the history store.
    pub async fn same_key(
        self: &Rc<Self>,
        group_code: &str,
        src_msg_id: &str,
        candidates: Vec<MessageId>,
        since_ms: i64,
    ) -> Option<MessageView> {
        for id in candidates.into_iter().rev() {
            let view = self.view(id, Some(group_code)).await.map(|(v, _)| v);
            if let Some(v) = view.filter(|v| v.src_msg_id == src_msg_id) {
                if v.created_at_ms >= since_ms {
                    return Some(v);
                }
            }
        }
        None
    }

    /// Releases claims whose messages were not written.
    pub async fn release(self: &Rc<Self>, owner: usize, claims: Vec<(DedupKey, MessageId)>) {
        let _ = self
            .send(owner, MeshMsg::Dedup(DedupMsg::Release { claims }))
            .await;
    }

    /// Reads a message's state from its owning shard, for `group_code`,
    /// or, once it left memory, from the history store.
    pub async fn view(
        self: &Rc<Self>,
        id: MessageId,
        group_code: Option<&str>,
    ) -> Option<(MessageView, ReportState)> {
        if !self.owns(id) {
            return None;
        }
        let live = match id.shard() == self.id {
            true => self.messages().view(id, group_code),
            false => {
                let group_code = group_code.map(str::to_string);
                ask(self, owner::message(id), |reply| {
                    MeshMsg::Messages(MessagesMsg::View {
                        id,
                        group_code,
                        reply,
                    })
                })
                .await
                .ok()
                .flatten()
            }
        };
        if live.is_some() {
            return live;
        }
        // After memory: a message that left it since is in the store.
        let now = unix_ms();
        let found = self.shared.history.read(move |s| s.get(id, now)).await;
        found
            .flatten()
            .map(|m| (m.view, m.report))
            .filter(|(v, _)| group_code.is_none_or(|g| v.group_code == g))
    }

    /// Finds a customer's message by `src_msg_id`: within the dedup window
    /// by its key, after it in the history store.
    pub async fn find_by_src_msg_id(
        self: &Rc<Self>,
        group_code: &str,
        src_msg_id: &str,
    ) -> Option<MessageView> {
        let key = DedupKey::new(group_code, src_msg_id);
        let candidates = self
            .peek(owner::dedup(key, self.shards()), vec![key])
            .await
            .ok()
            .and_then(|mut ids| ids.pop())
            .unwrap_or_default();
        let found = self
            .same_key(group_code, src_msg_id, candidates, i64::MIN)
            .await;
        if found.is_some() {
            return found;
        }
        let (group, src, now) = (group_code.to_string(), src_msg_id.to_string(), unix_ms());
        let found = self
            .shared
            .history
            .read(move |s| s.by_src_msg_id(&group, &src, now))
            .await;
        found.flatten().map(|m| m.view)
    }

    /// Writes to the catalog store (off-core), then installs the resulting
    /// snapshot on every shard before returning.
    pub async fn catalog_write<T: Send + 'static>(
        self: &Rc<Self>,
        write: impl FnOnce(&dyn mcmp_storage::Catalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let catalog = self.shared.catalog.clone();
        let (out, snapshot) = rt::blocking(move || catalog.write(write)).await?;
        self.install_everywhere(snapshot).await;
        Ok(out)
    }

    /// Installs a catalog snapshot on every shard.
    pub async fn install_everywhere(
        self: &Rc<Self>,
        snapshot: std::sync::Arc<crate::catalog::Snapshot>,
    ) {
        ask_all(self, |reply| {
            MeshMsg::Admin(AdminMsg::Catalog {
                snapshot: snapshot.clone(),
                reply,
            })
        })
        .await;
    }

    /// Cancels a message (at its owning shard) for `group_code`.
    pub async fn cancel(
        self: &Rc<Self>,
        id: MessageId,
        group_code: &str,
    ) -> crate::core::lifecycle::cancel::CancelOutcome {
        let group_code = group_code.to_string();
        ask(self, owner::message(id), |reply| {
            MeshMsg::Messages(MessagesMsg::Cancel {
                id,
                group_code,
                reply,
            })
        })
        .await
        .unwrap_or(crate::core::lifecycle::cancel::CancelOutcome::NotFound)
    }

    /// Moves every queued message of `sender` (on all shards) back to routing.
    pub async fn drain_sender(self: &Rc<Self>, sender: &str, to: Option<&str>) -> usize {
        ask_all(self, |reply| {
            MeshMsg::Session(SessionMsg::Drain {
                sender: sender.to_string(),
                to: to.map(str::to_string),
                reply,
            })
        })
        .await
        .into_iter()
        .map(|moved| moved.unwrap_or(0))
        .sum()
    }

    pub(super) fn metrics_snapshot(
        &self,
    ) -> (crate::metrics::MetricsSnapshot, crate::metrics::Gauges) {
        let mut gauges = crate::metrics::Gauges::default();
        self.senders.gauges(self, &mut gauges);
        gauges.held_messages = self.core.borrow().lifecycle.held.len() as u64;
        gauges.live_messages = self.messages().live() as u64;
        gauges.memory_messages = self.messages().len() as u64;
        gauges.cold_messages = self.messages().cold_len() as u64;
        gauges.cold_bytes = self.messages().cold_bytes() as u64;
        let at = self.last_checkpoint_ms.get();
        gauges.checkpoint_age_seconds = match at {
            0 => 0,
            at => ((unix_ms() - at).max(0) / 1000) as u64,
        };
        gauges.wal_disk_bytes = self.wal.disk_bytes();
        gauges.webhook_pending_retries = self.deadlines.report_retries() as u64;
        gauges.webhook_held_back = self.deadlines.held_back() as u64;
        gauges.wal_unsynced_records = self.wal.unsynced();
        gauges.shards = self.shards() as u64;
        (self.metrics.snapshot(), gauges)
    }

    /// Every shard's metrics and gauges, merged.
    async fn merged_metrics(
        self: &Rc<Self>,
    ) -> (crate::metrics::MetricsSnapshot, crate::metrics::Gauges) {
        let mut merged = crate::metrics::MetricsSnapshot::default();
        let mut gauges = crate::metrics::Gauges::default();
        for (snap, g) in ask_all(self, |reply| MeshMsg::Admin(AdminMsg::Metrics { reply }))
            .await
            .into_iter()
            .flatten()
        {
            merged.merge(snap);
            gauges.merge(g);
        }
        gauges.history_disk_bytes = self.shared.history.disk_bytes();
        gauges.resident_memory_bytes = crate::metrics::resident_memory_bytes();
        (merged, gauges)
    }

    /// Every shard's metrics merged and rendered (Prometheus text).
    pub async fn render_metrics(self: &Rc<Self>) -> String {
        let (merged, gauges) = self.merged_metrics().await;
        crate::metrics::render(&merged, &gauges)
    }

    /// The alerts every shard raised lately, newest first, at most
    /// `limit`.
    pub async fn recent_alerts(self: &Rc<Self>, limit: usize) -> Vec<crate::alerts::RecentAlert> {
        let mut all: Vec<crate::alerts::RecentAlert> =
            ask_all(self, |reply| MeshMsg::Admin(AdminMsg::Alerts { reply }))
                .await
                .into_iter()
                .flatten()
                .flatten()
                .collect();
        all.sort_by_key(|a| std::cmp::Reverse(a.at_ms));
        all.truncate(limit);
        all
    }

    /// The console's live figures, merged over the shards (JSON).
    pub async fn live_figures(self: &Rc<Self>) -> serde_json::Value {
        let (merged, gauges) = self.merged_metrics().await;
        let now = unix_ms();
        let mut figures = crate::metrics::figures(&merged, &gauges, now);
        let snapshot = self.snapshot();
        if let Some(rows) = figures["senders"].as_object_mut() {
            for (name, row) in rows.iter_mut() {
                let activity = snapshot.senders.get(name).map(|e| e.live.activity(now));
                if let (Some(activity), Some(row)) = (activity, row.as_object_mut()) {
                    if let Ok(serde_json::Value::Object(a)) = serde_json::to_value(activity) {
                        row.extend(a);
                    }
                }
            }
        }
        figures
    }

    /// Reads from the catalog store off-core (admin GETs).
    pub async fn catalog_read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn mcmp_storage::Catalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let catalog = self.shared.catalog.clone();
        rt::blocking(move || read(catalog.store())).await
    }
}
