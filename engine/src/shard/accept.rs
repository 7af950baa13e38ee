//! The accept saga on the accepting shard: the facts that live on other
//! shards are fetched between the steps of `core::accept::Plan` (dedup
//! claims, TPS leases, prepaid debits), then the survivors are appended to
//! the WAL and the answer waits until they are durable. A message whose
//! write fails was never accepted: its claim is released, its charge
//! refunded, and the whole request fails with [`AcceptError`] (the API
//! answers 503). A dry run performs every check without claiming, leasing
//! or debiting.

use std::collections::HashMap;
use std::rc::Rc;

use super::{cluster, Shard};
use crate::catalog::CustomerView;
use crate::codec::Record;
use crate::core::accept::{count_channel, Accepted, Origin, Plan, Verdict};
use crate::core::dedup::{ClaimOutcome, DedupKey};
use crate::core::quota::lease_chunk;
use crate::mesh::msg::{MeshMsg, QuotaMsg};
use crate::mesh::owner;
use crate::model::{Channel, MessageId, MessageRequest, Status};
use crate::unix_ms;
use crate::wal::WalError;

/// Why a whole request could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// The WAL cannot take writes (poisoned, full, closing).
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Another shard is gone (shutting down).
    #[error("shard unavailable")]
    ShardUnavailable,
    /// Free space is below `wal.min-free`.
    #[error("free space below wal.min-free")]
    StorageLow,
    /// [`HISTORY_BEHIND_BOUND`] settled messages of this shard wait for the
    /// history store: new ones wait until it catches up.
    #[error("the history store is behind")]
    HistoryBehind,
    /// `[cluster]`: the Redis Cluster the nodes share did not answer, so a
    /// `src_msg_id` could not be claimed across nodes.
    #[error("the redis cluster is unavailable")]
    ClusterUnavailable,
}

/// Most settled messages a shard keeps in memory while the history store
/// catches up (≈ 1.5 KiB each); beyond, new messages are refused with 503
/// `history_behind` and `Retry-After` until it has applied them.
pub const HISTORY_BEHIND_BOUND: usize = 300_000;

/// Accepts a batch for `origin`. `items` holds the API's schema verdicts in
/// request order; the result has one verdict per item, in the same order.
pub async fn accept(
    shard: &Rc<Shard>,
    origin: Origin<'_>,
    items: Vec<Result<MessageRequest, Verdict>>,
    dry_run: bool,
) -> Result<Vec<Verdict>, AcceptError> {
    if !dry_run && shard.shared.storage_low() {
        return Err(AcceptError::StorageLow);
    }
    if !dry_run && shard.messages().leaving() >= HISTORY_BEHIND_BOUND {
        return Err(AcceptError::HistoryBehind);
    }
    let snapshot = shard.snapshot();
    let empty = CustomerView::default();
    let customer = snapshot.customers.get(origin.group_code).unwrap_or(&empty);
    let next_id = || match dry_run {
        true => MessageId(0),
        false => shard.next_message_id(),
    };
    let mut plan = Plan::new(customer, origin.group_code, items, next_id);
    let (originals, nodes) = dedup_everywhere(shard, origin.group_code, &plan, dry_run).await?;
    plan.duplicates(&originals, !dry_run);
    let group = origin.group_code;
    let budget = match tps(shard, group, plan.tps_needs(), dry_run).await {
        Ok(budget) => budget,
        Err(e) => return Err(abandon((shard, group), (&plan, &nodes, HashMap::new()), e).await),
    };
    let left = plan.spend_tps(budget);
    let slots = reserve_backlogs(shard, group, &plan, dry_run).await;
    plan.spend_backlog(slots.clone());
    if !dry_run {
        keep_leases(shard, group, left);
    }
    plan.policy(&snapshot.spam, unix_ms());
    if let Some((credit, prices)) = plan.prices(|c| shard.shared.config.price(c)) {
        match charge(shard, group, credit, prices, dry_run).await {
            Ok(paid) => plan.charged(&paid),
            Err(e) => {
                let held = if dry_run { HashMap::new() } else { slots };
                return Err(abandon((shard, group), (&plan, &nodes, held), e).await);
            }
        }
    }
    let mut outcome = plan.finish();
    let refused = std::mem::take(&mut outcome.release);
    give_back_refused(shard, origin.group_code, &nodes, refused).await;
    if dry_run {
        return Ok(outcome.dry_run(unix_ms()));
    }
    give_back_slots(
        shard,
        origin.group_code,
        std::mem::take(&mut outcome.backlog_back),
    );
    for (channel, code) in &outcome.rejections {
        shard.metrics.rejected(*channel, *code);
    }
    let blocked = outcome.blocked_records(origin, unix_ms());
    if !blocked.is_empty() {
        shard.feed(|c, _, fx| c.lifecycle.record_blocked(blocked, fx));
    }
    let records = outcome.commit(origin, unix_ms());
    if let Err(e) = write(shard, origin, records).await {
        nodes.give_back(shard, origin.group_code, |_| true).await;
        return Err(e);
    }
    Ok(outcome.verdicts)
}

/// Appends the accepted records, waits until they are durable, then starts
/// their lives: a scheduled one on the timer wheel, the others to routing.
async fn write(
    shard: &Rc<Shard>,
    origin: Origin<'_>,
    accepted: Vec<Accepted>,
) -> Result<(), AcceptError> {
    if accepted.is_empty() {
        return Ok(());
    }
    let validity = shard.shared.config.validity_secs();
    let mut held = Held::default();
    let mut records = Vec::with_capacity(accepted.len());
    for mut a in accepted {
        held.add(&a);
        a.record.request.validity.get_or_insert(validity);
        records.push(Record::Accepted(Box::new(a.record)));
    }
    let last = match shard.wal.append_background(&records) {
        Ok(last) => last,
        Err(e) => {
            held.give_back(shard, origin.group_code).await;
            return Err(e.into());
        }
    };
    // In the store from the append on, so that a checkpoint taken while
    // they become durable holds them (its WAL position is past their
    // records); nothing acts on them before they are durable.
    let mut started = Vec::with_capacity(records.len());
    {
        let mut messages = shard.messages_mut();
        for r in records {
            let Record::Accepted(rec) = r else { continue };
            started.push((rec.id, rec.status, rec.request.send_at, rec.request.channel));
            messages.apply_accepted(*rec);
        }
    }
    if let Err(e) = shard.wal.durable(last).await {
        {
            let mut messages = shard.messages_mut();
            for (id, ..) in &started {
                messages.forget(*id);
            }
        }
        held.give_back(shard, origin.group_code).await;
        return Err(e.into());
    }
    let mut to_route = Vec::new();
    {
        let mut messages = shard.messages_mut();
        for (id, status, send_at, channel) in started {
            shard.metrics.accepted(channel);
            match (status, send_at) {
                (Status::Scheduled, Some(at)) => {
                    shard.deadlines.at(at, crate::deadlines::Due::Send(id));
                }
                _ => to_route.push(id),
            }
            if held.backlog_ids.contains(&id) {
                messages.hold_backlog(id);
            }
        }
    }
    super::routing::route_soon(shard, to_route);
    Ok(())
}

/// What accepted messages hold at other shards until they are durable:
/// their dedup claims, prepaid charges and backlog slots (given back when
/// the append fails).
#[derive(Default)]
struct Held {
    claims: Vec<(DedupKey, MessageId)>,
    charged: i64,
    backlog_ids: Vec<MessageId>,
    backlog: Vec<(Channel, u32)>,
}

impl Held {
    fn add(&mut self, a: &Accepted) {
        self.claims.push(a.claim);
        self.charged += a.record.price;
        if a.backlog {
            self.backlog_ids.push(a.record.id);
            let channel = a.record.request.channel;
            count_channel(&mut self.backlog, channel);
        }
    }

    async fn give_back(self, shard: &Rc<Shard>, group: &str) {
        release(shard, self.claims).await;
        if self.charged != 0 {
            let to = owner::customer(group, shard.shards());
            let group = group.to_string();
            let refund = QuotaMsg::Refund {
                group,
                amount: self.charged,
            };
            shard.send_to(to, MeshMsg::Quota(refund));
        }
        give_back_slots(shard, group, self.backlog);
    }
}

/// The dedup step on this node, then across nodes (`[cluster]`): the
/// original of each duplicate, and the keys the request holds in Redis.
async fn dedup_everywhere(
    shard: &Rc<Shard>,
    group: &str,
    plan: &Plan<'_>,
    dry_run: bool,
) -> Result<(Vec<Option<MessageId>>, cluster::NodeClaims), AcceptError> {
    let mut originals = dedup(shard, group, plan, dry_run).await?;
    let across = cluster::dedup_across(shard, group, plan, &mut originals, dry_run);
    let nodes = across.await.map_err(cluster_down)?;
    Ok((originals, nodes))
}

/// Claims (or, in a dry run, looks up) every key, one request per owner;
/// the original message of each duplicate, in key order. A fingerprint
/// match is confirmed against the earlier messages themselves.
async fn dedup(
    shard: &Rc<Shard>,
    group: &str,
    plan: &Plan<'_>,
    dry_run: bool,
) -> Result<Vec<Option<MessageId>>, AcceptError> {
    let n = shard.shards();
    let keys = plan.keys();
    let mut originals = vec![None; keys.len()];
    for to in 0..n {
        let idx: Vec<usize> = (0..keys.len())
            .filter(|&i| owner::dedup(keys[i].0, n) == to)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let found: Vec<ClaimOutcome> = if dry_run {
            let ks = idx.iter().map(|&i| keys[i].0).collect();
            let peeked = shard.peek(to, ks).await;
            peeked.map(|all| all.into_iter().map(ClaimOutcome::Check).collect())
        } else {
            let claims = idx.iter().map(|&i| keys[i]).collect();
            shard.claim(to, claims).await
        }
        .map_err(|_| AcceptError::ShardUnavailable)?;
        for (i, outcome) in idx.into_iter().zip(found) {
            originals[i] = match outcome {
                ClaimOutcome::Claimed => None,
                ClaimOutcome::Duplicate(original) => Some(original),
                ClaimOutcome::Check(earlier) => {
                    let key = (group, plan.src_msg_id(i), keys[i]);
                    confirm(shard, key, earlier, dry_run, to).await
                }
            };
        }
    }
    Ok(originals)
}

/// Whether one of `earlier` (sharing the key's fingerprint) is the same
/// `src_msg_id` within the window; if so the owner learns it.
async fn confirm(
    shard: &Rc<Shard>,
    (group, src, (key, claimant)): (&str, &str, (DedupKey, MessageId)),
    earlier: Vec<MessageId>,
    dry_run: bool,
    owner: usize,
) -> Option<MessageId> {
    let window_ms = shard.shared.config.dedup_window.as_millis() as i64;
    let since = unix_ms().saturating_sub(window_ms);
    let original = shard.same_key(group, src, earlier, since).await?.id;
    if !dry_run {
        shard.resolve(owner, key, claimant, original).await;
    }
    Some(original)
}

/// The TPS tokens for each channel's need: the local lease first, then one
/// lease request (at least a chunk) to the customer's owning shard, or
/// with `[cluster]` to the window the nodes share in Redis.
async fn tps(
    shard: &Rc<Shard>,
    group: &str,
    needs: Vec<(Channel, u32, u32)>,
    dry_run: bool,
) -> Result<HashMap<Channel, u32>, AcceptError> {
    let mut budget = HashMap::new();
    for (channel, want, limit) in needs {
        let mut have = match dry_run {
            true => 0,
            false => shard
                .core
                .borrow_mut()
                .leases
                .take(unix_ms(), group, channel, want),
        };
        if have < want {
            let ask = match dry_run {
                true => want,
                false => (want - have).max(lease_chunk(limit, lease_spread(shard))),
            };
            have += match &shard.cluster {
                None => shard.lease_tps(group, channel, limit, ask, !dry_run).await,
                Some(link) => {
                    let leased = link.lease_tps((group, channel), limit, ask, dry_run).await;
                    leased.map_err(cluster_down)?
                }
            };
        }
        budget.insert(channel, have);
    }
    Ok(budget)
}

/// Gives back the dedup claims of messages refused after the dedup step,
/// on this node and across nodes.
async fn give_back_refused(
    shard: &Rc<Shard>,
    group: &str,
    nodes: &cluster::NodeClaims,
    refused: Vec<(DedupKey, MessageId)>,
) {
    if refused.is_empty() {
        return;
    }
    let ids: Vec<MessageId> = refused.iter().map(|(_, id)| *id).collect();
    nodes.give_back(shard, group, |id| ids.contains(&id)).await;
    release(shard, refused).await;
}

/// Keeps the TPS tokens a request leased and did not spend, for the next.
fn keep_leases(shard: &Shard, group: &str, left: impl IntoIterator<Item = (Channel, u32)>) {
    let now = unix_ms();
    let mut core = shard.core.borrow_mut();
    for (channel, tokens) in left {
        core.leases.keep(now, group, channel, tokens);
    }
}

/// A request that fails after its dedup step: every claim it made goes
/// back, here and across nodes (a duplicate's key is not its claimant's,
/// so it stays), and the backlog slots it holds; `e`.
async fn abandon(
    (shard, group): (&Rc<Shard>, &str),
    (plan, nodes, slots): (&Plan<'_>, &cluster::NodeClaims, HashMap<Channel, u32>),
    e: AcceptError,
) -> AcceptError {
    nodes.give_back(shard, group, |_| true).await;
    release(shard, plan.keys()).await;
    give_back_slots(shard, group, slots);
    e
}

/// Gives backlog slots back to the customer's owning shard.
fn give_back_slots(shard: &Shard, group: &str, slots: impl IntoIterator<Item = (Channel, u32)>) {
    for (channel, n) in slots {
        shard.adjust_backlog(group, channel, -i64::from(n));
    }
}

/// Reserves the backlog slots the plan needs, per channel (a dry run only
/// looks).
async fn reserve_backlogs(
    shard: &Rc<Shard>,
    group: &str,
    plan: &Plan<'_>,
    dry_run: bool,
) -> HashMap<Channel, u32> {
    let mut slots = HashMap::new();
    for (channel, want, max) in plan.backlog_needs() {
        let got = shard
            .reserve_backlog(group, channel, (want, max), !dry_run)
            .await;
        slots.insert(channel, got);
    }
    slots
}

/// Debits prepaid prices at the customer's owning shard, or with
/// `[cluster]` from the credit the nodes share in Redis.
async fn charge(
    shard: &Rc<Shard>,
    group: &str,
    credit: i64,
    prices: Vec<i64>,
    dry_run: bool,
) -> Result<Vec<bool>, AcceptError> {
    match &shard.cluster {
        None => Ok(shard.charge(group, credit, prices, !dry_run).await),
        Some(link) => link
            .charge(group, credit, &prices, dry_run)
            .await
            .map_err(cluster_down),
    }
}

/// The Redis Cluster did not answer: the request is refused (503).
fn cluster_down(e: crate::redis::RedisError) -> AcceptError {
    tracing::warn!("new messages refused: {e}");
    AcceptError::ClusterUnavailable
}

/// How many shards a TPS limit is leased among: this node's, or with
/// `[cluster]` those of up to [`LEASE_NODES`] nodes, so that the chunks
/// left unspent on every shard of every node shift the limit by at most
/// 5 % (SPEC §5.8 allows 10 %).
fn lease_spread(shard: &Shard) -> usize {
    match shard.cluster {
        Some(_) => shard.shards() * LEASE_NODES,
        None => shard.shards(),
    }
}

/// The nodes a TPS lease chunk is sized for.
const LEASE_NODES: usize = 4;

/// Gives dedup claims back to their owners.
pub(super) async fn release(shard: &Rc<Shard>, claims: Vec<(DedupKey, MessageId)>) {
    if claims.is_empty() {
        return;
    }
    let n = shard.shards();
    for to in 0..n {
        let mine: Vec<_> = claims
            .iter()
            .copied()
            .filter(|(k, _)| owner::dedup(*k, n) == to)
            .collect();
        if !mine.is_empty() {
            shard.release(to, mine).await;
        }
    }
}
