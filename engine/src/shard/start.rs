//! Start-up, on every shard at once: replay the WAL, send each recovered
//! dedup key and prepaid charge to its owning shard, wait until every shard
//! has done the same; then, once the server is listening, activate: sender
//! sessions, the messages that were in flight, the periodic tasks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::recovery::recover;
use super::{unix_secs, Shard, SharedEngine, StartError};
use crate::core::dedup::{DedupKey, DedupSettings, DedupTable};
use crate::core::lifecycle::transition::net_charge;
use crate::core::lifecycle::LifecycleConfig;
use crate::core::ShardCore;
use crate::http_client::{HttpClient, UrlPolicy};
use crate::mesh::call::ask;
use crate::mesh::msg::{DedupMsg, MeshMsg, QuotaMsg};
use crate::mesh::owner;
use crate::model::{Channel, MessageId};
use crate::outbox::Outbox;
use crate::rt;
use crate::sender::host::SenderHost;
use crate::wal::LocalWal;

/// The lifecycle's settings from the engine's.
fn lifecycle_config(config: &crate::config::EngineConfig) -> LifecycleConfig {
    LifecycleConfig {
        report_retries: config.max_attempts,
        report_retry_unit_ms: config.retry_unit.as_millis() as u64,
    }
}

/// How the dedup table keeps keys (`[dedup]`).
fn dedup_settings(config: &crate::config::EngineConfig) -> DedupSettings {
    let secs = |d: Duration| d.as_secs().min(u64::from(u32::MAX)) as u32;
    DedupSettings {
        window_secs: secs(config.dedup_window),
        exact_secs: secs(config.dedup_exact),
        print_bits: config.dedup_print_bits,
    }
}

/// The shard's HTTP clients: one for providers and alerts, one for
/// customers' webhook endpoints, held to the `report_uri` policy.
fn http_clients(engine: &SharedEngine) -> (Rc<HttpClient>, Rc<HttpClient>) {
    let policy = UrlPolicy {
        allow_http: engine.config.reports_allow_http,
        allow_private: engine.config.reports_allow_private,
    };
    let http = HttpClient::with_tls(engine.outgoing_tls.clone());
    let webhooks = HttpClient::with_tls(engine.outgoing_tls.clone()).with_policy(policy);
    (Rc::new(http), Rc::new(webhooks))
}

impl Shard {
    pub(super) async fn start(
        engine: Arc<SharedEngine>,
        id: usize,
    ) -> Result<Rc<Shard>, StartError> {
        let inbox = engine
            .inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
            .and_then(Option::take)
            .ok_or(StartError::Aborted)?;
        let recovered = recover(&engine.config, id, engine.start_round)?;
        let (wal, messages) = (recovered.wal, recovered.messages);
        let settings = dedup_settings(&engine.config);
        let dedup = DedupTable::from_image(settings, recovered.dedup, unix_secs());
        let metrics = Rc::new(crate::metrics::LocalMetrics::new());
        let (http, webhooks) = http_clients(&engine);
        let alerts = Rc::new(crate::alerts::Alerts::new(
            id,
            engine.config.alert_url.clone(),
            engine.config.alert_format,
            http.clone(),
        ));
        let shard = Rc::new(Shard {
            id,
            picks: RefCell::default(),
            snapshot: RefCell::new(engine.initial.clone()),
            next_seq: Cell::new(messages.max_seq() + 1),
            core: RefCell::new(ShardCore::new(
                messages,
                dedup,
                lifecycle_config(&engine.config),
            )),
            wal: LocalWal::start(
                wal,
                engine.config.durability,
                engine.config.sync_interval,
                metrics.clone(),
                alerts.clone(),
            ),
            ported: Default::default(),
            senders: SenderHost::default(),
            endpoints: crate::report::Endpoints::default(),
            reports: RefCell::default(),
            fx: Cell::default(),
            deadlines: crate::deadlines::Deadlines::default(),
            http,
            webhooks,
            alerts,
            metrics,
            outbox: Rc::new(Outbox::new(engine.config.shards)),
            shared: engine.clone(),
            agents: crate::agents::LocalAgents::default(),
            marked: RefCell::default(),
            last_checkpoint_ms: Cell::new(recovered.at_ms),
            cluster: super::cluster::NodeLink::of(&engine.config),
        });
        rt::spawn(shard.clone().serve_mesh(inbox));
        shard.restore_dedup(recovered.keys).await?;
        shard.restore_charges().await?;
        shard.restore_backlog().await?;
        engine.recovering.fetch_sub(1, Ordering::SeqCst);
        while engine.recovering.load(Ordering::SeqCst) > 0 {
            if engine.failed.load(Ordering::SeqCst) {
                return Err(StartError::Aborted);
            }
            rt::sleep(Duration::from_millis(1)).await;
        }
        Ok(shard)
    }

    /// Starts the work after recovery: sender sessions, the messages that
    /// were in flight, the periodic tick. The server calls it once it knows
    /// its public address (providers need it for their callbacks).
    pub async fn activate(self: &Rc<Self>) {
        self.senders.reconcile(self);
        super::resume::resume(self);
        super::resume::resume_reports(self);
        crate::files::register::resume(self);
        rt::spawn(super::reports::dispatch_loop(self.clone()));
        rt::spawn(super::tick::tick_loop(self.clone()));
        rt::spawn(crate::deadlines::run(self.clone()));
        if self.id == 0 {
            rt::spawn(super::checkpoint::run(self.clone()));
            rt::spawn(crate::files::sweep::run(self.clone()));
            if self.cluster.is_some() {
                rt::spawn(super::cluster::pull_catalog(self.clone()));
            }
        }
    }

    async fn restore_dedup(
        self: &Rc<Self>,
        recovered: Vec<(DedupKey, MessageId, u32)>,
    ) -> Result<(), StartError> {
        let n = self.shared.shards();
        let per_owner = owner::group(n, recovered, |e| owner::dedup(e.0, n));
        for (to, entries) in per_owner.into_iter().enumerate() {
            for chunk in entries.chunks(4096) {
                let entries = chunk.to_vec();
                ask(self, to, |reply| {
                    MeshMsg::Dedup(DedupMsg::Restore { entries, reply })
                })
                .await
                .map_err(|_| StartError::Aborted)?;
            }
        }
        Ok(())
    }

    /// Sends the net prepaid charges of this shard's messages (those held
    /// and those that left memory) to the customers' owning shards.
    async fn restore_charges(self: &Rc<Self>) -> Result<(), StartError> {
        let n = self.shards();
        let mut nets: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        {
            let messages = self.messages();
            for m in messages.iter().filter(|m| m.price != 0) {
                *nets.entry(m.group_code.to_string()).or_insert(0) += net_charge(&m);
            }
            for (group, net) in messages.left_net() {
                *nets.entry(group.to_string()).or_insert(0) += net;
            }
        }
        let per_owner = owner::group(n, nets, |(g, _)| owner::customer(g, n));
        for (to, charges) in per_owner.into_iter().enumerate() {
            if charges.is_empty() {
                continue;
            }
            ask(self, to, |reply| {
                MeshMsg::Quota(QuotaMsg::RestoreCharges { charges, reply })
            })
            .await
            .map_err(|_| StartError::Aborted)?;
        }
        Ok(())
    }

    /// Counts the live messages of customers with a `max_backlog` on their
    /// channel: each holds a slot again, at the customer's owning shard
    /// (awaited, so the counts are there before any shard serves).
    async fn restore_backlog(self: &Rc<Self>) -> Result<(), StartError> {
        let snapshot = self.snapshot();
        let mut counts: std::collections::HashMap<(String, Channel), u32> = Default::default();
        let mut holding = Vec::new();
        for m in self.messages().iter().filter(|m| !m.status.is_final()) {
            let channel = m.request.channel;
            let limited = snapshot
                .customers
                .get(&*m.group_code)
                .is_some_and(|c| c.service(channel).max_backlog > 0);
            if limited {
                *counts
                    .entry((m.group_code.to_string(), channel))
                    .or_insert(0) += 1;
                holding.push(m.id);
            }
        }
        {
            let mut messages = self.messages_mut();
            for id in holding {
                messages.hold_backlog(id);
            }
        }
        let n = self.shards();
        let counts = counts.into_iter().map(|((g, c), slots)| (g, c, slots));
        let per_owner = owner::group(n, counts, |(g, _, _)| owner::customer(g, n));
        for (to, counts) in per_owner.into_iter().enumerate() {
            if counts.is_empty() {
                continue;
            }
            ask(self, to, |reply| {
                MeshMsg::Quota(QuotaMsg::RestoreBacklog { counts, reply })
            })
            .await
            .map_err(|_| StartError::Aborted)?;
        }
        Ok(())
    }
}
