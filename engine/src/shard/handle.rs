//! [`ShardHandle`]: what `api/` holds of its shard. Every read and command
//! the HTTP side needs is one method here; the shard's fields, its core and
//! the mesh stay inside the engine.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::accept::AcceptError;
use super::{Shard, SharedEngine};
use crate::agents::{AgentView, Heartbeat};
use crate::catalog::{CatalogError, SharedCatalog, Snapshot};
use crate::codec::BlockedRecord;
use crate::codes::ResultCode;
use crate::core::accept::{Origin, Verdict};
use crate::core::lifecycle::cancel::CancelOutcome;
use crate::core::lifecycle::report::ReportState;
use crate::core::lifecycle::store::MessageView;
use crate::metrics::HttpRoute;
use crate::model::{MessageId, MessageRequest};
use crate::query::{Query, Row};
use crate::stats::MessageStats;

/// One shard, as the API crate sees it. Cheap to clone; lives on its shard.
#[derive(Clone)]
pub struct ShardHandle {
    shard: Rc<Shard>,
}

impl ShardHandle {
    pub(super) fn new(shard: Rc<Shard>) -> ShardHandle {
        ShardHandle { shard }
    }

    /// This shard's index.
    pub fn id(&self) -> usize {
        self.shard.id
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shard.shards()
    }

    /// Whether `id` names a message of this node.
    pub fn owns(&self, id: MessageId) -> bool {
        self.shard.owns(id)
    }

    /// This node's number (0 without `[cluster]`).
    pub fn node_id(&self) -> u8 {
        self.shard.shared.config.node_id()
    }

    /// The signature of an internal request's `body` between the nodes
    /// (`None` without `[cluster]`).
    pub fn node_signature(&self, body: &[u8]) -> Option<String> {
        self.shard.cluster.as_ref().map(|link| link.sign(body))
    }

    /// Whether this node is one of several (`[cluster]`).
    pub fn clustered(&self) -> bool {
        self.shard.cluster.is_some()
    }

    /// Sends a read of another node's message to that node
    /// ([`cluster::forward`](super::cluster::forward)).
    pub async fn forward(
        &self,
        node: u8,
        request: (hyper::Method, &str, bytes::Bytes),
        headers: Vec<(String, String)>,
    ) -> Result<crate::http_client::HttpResponse, super::cluster::ForwardError> {
        super::cluster::forward(&self.shard, node, request, headers).await
    }

    /// A receipt another node's bind got: taken by the shard that owns
    /// its key when that key is one of this node's carrier ids (true).
    pub async fn receipt_from_node(&self, key: u128, delivered: bool, code: u16) -> bool {
        let key = crate::core::receipts::ReceiptKey(key);
        let to = crate::mesh::owner::receipt(key, self.shard.shards());
        let offered = crate::mesh::call::ask(&self.shard, to, |reply| {
            let msg = crate::mesh::msg::ReceiptMsg::Offered {
                key,
                delivered,
                code,
                reply,
            };
            crate::mesh::msg::MeshMsg::Receipt(msg)
        });
        offered.await.unwrap_or(false)
    }

    /// The message holding `src_msg_id` across nodes, when clustered.
    pub async fn src_holder(&self, group: &str, src: &str) -> Option<MessageId> {
        super::cluster::src_holder(&self.shard, group, src).await
    }

    /// What every shard shares (draining, public URL).
    pub fn engine(&self) -> &Arc<SharedEngine> {
        &self.shard.shared
    }

    /// The catalog store (admin reads and cache invalidation).
    pub fn catalog(&self) -> Arc<SharedCatalog> {
        self.shard.shared.catalog.clone()
    }

    /// The current catalog snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shard.snapshot()
    }

    /// Starts sender sessions, in-flight messages and periodic tasks (once
    /// the server listens; providers need its address).
    pub async fn activate(&self) {
        self.shard.activate().await;
    }

    /// Accepts a batch for `origin`: one verdict per item, in order
    /// (`shard::accept::accept`).
    pub async fn accept(
        &self,
        origin: Origin<'_>,
        items: Vec<Result<MessageRequest, Verdict>>,
        dry_run: bool,
    ) -> Result<Vec<Verdict>, AcceptError> {
        super::accept::accept(&self.shard, origin, items, dry_run).await
    }

    /// Stores a media file (SPEC §5.10) durably and answers its record;
    /// refused while free space is below `wal.min-free`, like messages.
    pub async fn upload_file(
        &self,
        upload: crate::files::Upload,
    ) -> Result<crate::files::meta::FileMeta, crate::files::kind::FileError> {
        if self.shard.shared.storage_low() {
            return Err(crate::files::kind::FileError::StorageFull);
        }
        let files = &self.shard.shared.files;
        let meta = files.upload(upload, crate::unix_ms()).await?;
        if meta.status == crate::files::meta::FileStatus::Registering {
            crate::files::register::spawn(&self.shard, meta.file_id.clone());
        }
        Ok(meta)
    }

    /// A media file of `group_code` (`None` for another customer's).
    pub fn file(&self, file_id: &str, group_code: &str) -> Option<crate::files::meta::FileMeta> {
        let meta = self.shard.shared.files.get(file_id)?;
        (meta.group_code == group_code).then_some(meta)
    }

    /// Replaces the stored files named by the messages of a batch with what
    /// they carry (SPEC §5.10); a message whose file is not usable gets its
    /// rejection (3015). `Err` when the file store fails (busy or IO).
    pub async fn resolve_files(
        &self,
        group_code: &str,
        items: Vec<Result<MessageRequest, Verdict>>,
    ) -> Result<Vec<Result<MessageRequest, Verdict>>, crate::files::kind::FileError> {
        let files = &self.shard.shared.files;
        let now = crate::unix_ms();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Ok(mut req) = item else {
                out.push(item);
                continue;
            };
            out.push(match files.resolve(now, group_code, &mut req).await? {
                Ok(()) => Ok(req),
                Err((code, reason)) => Err(Verdict::Rejected {
                    code,
                    reason,
                    original: None,
                }),
            });
        }
        Ok(out)
    }

    /// A message of `group_code`, read at its owning shard.
    pub async fn view(&self, id: MessageId, group_code: &str) -> Option<MessageView> {
        let found = self.shard.view(id, Some(group_code)).await;
        found.map(|(view, _)| view)
    }

    /// A message's current state and its report's, whoever's it is
    /// (operators).
    pub async fn view_any(&self, id: MessageId) -> Option<(MessageView, ReportState)> {
        self.shard.view(id, None).await
    }

    /// A message of `group_code` by its `src_msg_id` (within the dedup window).
    pub async fn find_by_src_msg_id(&self, group_code: &str, src: &str) -> Option<MessageView> {
        self.shard.find_by_src_msg_id(group_code, src).await
    }

    /// Cancels a message of `group_code`.
    pub async fn cancel(&self, id: MessageId, group_code: &str) -> CancelOutcome {
        self.shard.cancel(id, group_code).await
    }

    /// History, report polling or lookup, over every shard.
    pub async fn query(&self, query: Query) -> Vec<Row> {
        crate::query::run(&self.shard, query).await
    }

    /// Messages blocked at accept (SPEC §5.4), from the history store.
    pub async fn blocked(&self, q: crate::history::store::BlockedQuery) -> Vec<BlockedRecord> {
        let now = crate::unix_ms();
        let found = self
            .shard
            .shared
            .history
            .read(move |s| s.blocked(&q, now))
            .await;
        found.unwrap_or_default()
    }

    /// Message counts over every shard.
    pub async fn stats(&self) -> MessageStats {
        crate::stats::gather(&self.shard).await
    }

    /// Records an agent's heartbeat at its owning shard; `false` when the
    /// owner could not be reached.
    pub async fn heartbeat(&self, heartbeat: Heartbeat) -> bool {
        crate::agents::heartbeat(&self.shard, heartbeat).await
    }

    /// Every shard's agents.
    pub async fn agents(&self) -> Vec<AgentView> {
        crate::agents::list(&self.shard).await
    }

    /// A customer's net prepaid charges; `None` while the charges the nodes
    /// share cannot be read (`[cluster]`, Redis down).
    pub async fn net_charges(&self, group_code: &str) -> Option<i64> {
        self.shard.net_charges(group_code).await
    }

    /// Writes to the catalog store, then installs the new snapshot on every
    /// shard before returning.
    pub async fn catalog_write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&dyn mcmp_storage::Catalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        self.shard.catalog_write(write).await
    }

    /// Reads from the catalog store off-core (admin GETs).
    pub async fn catalog_read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn mcmp_storage::Catalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        self.shard.catalog_read(read).await
    }

    /// Moves every queued message of `sender` back to routing (to `to`, or
    /// to the group's other senders); the number moved.
    pub async fn drain_sender(&self, sender: &str, to: Option<&str>) -> usize {
        self.shard.drain_sender(sender, to).await
    }

    /// A provider's result for one of its messages (`POST /provider/v1/…`).
    pub fn provider_receipt(
        &self,
        sender: &str,
        carrier_id: &str,
        delivered: bool,
        code: ResultCode,
        detail: String,
    ) {
        crate::sender::host::route_receipt(
            &self.shard,
            sender,
            carrier_id,
            delivered,
            code,
            detail,
        );
    }

    /// Every client's webhook: undelivered reports, queue, failures.
    pub async fn webhooks(&self) -> Vec<super::reports::WebhookRow> {
        super::reports::webhooks(&self.shard).await
    }

    /// Sends a client's abandoned reports again; how many.
    pub async fn redrive(&self, client_id: &str) -> usize {
        super::reports::redrive(&self.shard, client_id).await
    }

    /// Every shard's metrics, Prometheus text.
    pub async fn render_metrics(&self) -> String {
        self.shard.render_metrics().await
    }

    /// The alerts every shard raised lately, newest first, at most `limit`.
    pub async fn recent_alerts(&self, limit: usize) -> Vec<crate::alerts::RecentAlert> {
        self.shard.recent_alerts(limit).await
    }

    /// The console's live figures (counters and gauges), merged (JSON).
    pub async fn live_figures(&self) -> serde_json::Value {
        self.shard.live_figures().await
    }

    /// Counts one HTTP request.
    pub fn observe_http(&self, route: HttpRoute, status: u16, took: Duration) {
        self.shard.metrics.http_request(route, status, took);
    }

    /// Whether this shard's WAL refuses writes after a failed fsync.
    pub fn wal_poisoned(&self) -> bool {
        self.shard.wal.is_poisoned()
    }
}
