//! The accept path: the checks at accept, in SPEC order, and the durable
//! append.
//!
//! Order (the first failure decides the code): schema and limits (done by the
//! API before this) → channel enabled (3005) → bill code registered (3004) →
//! caller ID registered (3003) → duplicate `src_msg_id` (3006) → TPS for the
//! customer and channel (3007, counted in parts) → spam policy (3009–3012) →
//! prepaid balance (3008, priced in parts). A message rejected after its
//! dedup claim gives the claim back. The survivors are appended to the
//! shard's WAL in one group and the answer is returned only once they are
//! durable. A message whose write fails was never accepted: its claim is
//! released, its charge refunded, and the whole request fails with
//! [`AcceptError`] (the API answers 503).
//!
//! A dry run performs every check without claiming, leasing or debiting.

use std::collections::HashMap;
use std::rc::Rc;

use crate::catalog::{CustomerView, Snapshot};
use crate::codec::{AcceptedRecord, Record};
use crate::codes::ResultCode;
use crate::core::dedup::{ClaimOutcome, DedupKey};
use crate::model::{Channel, MessageId, MessageRequest, Status};
use crate::pipeline;
use crate::policy::{self, PolicyInput};
use crate::shard::Shard;
use crate::unix_ms;
use crate::wal::WalError;

/// Who is sending: the authenticated client and its customer.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The customer.
    pub group_code: &'a str,
    /// The client.
    pub client_id: &'a str,
}

/// The decision for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Durable (or, in a dry run, would be accepted).
    Accepted {
        /// The new message's id (`None` in a dry run).
        id: Option<MessageId>,
        /// `accepted` or `scheduled`.
        status: Status,
    },
    /// Not accepted.
    Rejected {
        /// Why.
        code: ResultCode,
        /// Human text.
        reason: String,
        /// For a duplicate: the original message.
        original: Option<MessageId>,
    },
}

impl Verdict {
    /// A rejection with the code's own description as reason.
    pub fn rejected(code: ResultCode) -> Verdict {
        Verdict::Rejected {
            code,
            reason: code.description().to_string(),
            original: None,
        }
    }
}

/// Why a whole request could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// The WAL cannot take writes (poisoned, full, closing).
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Another shard is gone (shutting down).
    #[error("shard unavailable")]
    ShardUnavailable,
}

/// A message that passed the checks so far.
struct Pending {
    slot: usize,
    id: MessageId,
    key: DedupKey,
    request: MessageRequest,
    claimed: bool,
    price: i64,
}

/// Accepts a batch for `origin`. `items` holds the API's schema verdicts in
/// request order; the result has one verdict per item, in the same order.
pub async fn accept(
    shard: &Rc<Shard>,
    origin: Origin<'_>,
    items: Vec<Result<MessageRequest, Verdict>>,
    dry_run: bool,
) -> Result<Vec<Verdict>, AcceptError> {
    let snapshot = shard.snapshot();
    let empty = CustomerView::default();
    let customer = snapshot.customers.get(origin.group_code).unwrap_or(&empty);
    let mut verdicts = Vec::with_capacity(items.len());
    let mut pending = Vec::new();
    for (slot, item) in items.into_iter().enumerate() {
        let channel = item.as_ref().ok().map(|r| r.channel);
        let checked = item.and_then(|req| check_catalog(customer, req));
        if let (Some(ch), Err(Verdict::Rejected { code, .. }), false) = (channel, &checked, dry_run)
        {
            shard.metrics.rejected(ch, *code);
        }
        match checked {
            Ok(request) => {
                verdicts.push(Verdict::rejected(ResultCode::Accepted)); // decided below
                let key = DedupKey::new(origin.group_code, &request.src_msg_id);
                let id = if dry_run {
                    MessageId(0)
                } else {
                    shard.next_message_id()
                };
                pending.push(Pending {
                    slot,
                    id,
                    key,
                    request,
                    claimed: false,
                    price: 0,
                });
            }
            Err(v) => verdicts.push(v),
        }
    }
    let mut rejected = Vec::new();
    dedup(shard, &mut pending, &mut rejected, dry_run).await?;
    tps(
        shard,
        origin.group_code,
        customer,
        &mut pending,
        &mut rejected,
        dry_run,
    )
    .await;
    spam_policy(&snapshot, customer, &mut pending, &mut rejected);
    prepaid(
        shard,
        origin.group_code,
        customer,
        &mut pending,
        &mut rejected,
        dry_run,
    )
    .await;
    let released: Vec<(DedupKey, MessageId)> = rejected
        .iter()
        .filter(|(p, _)| p.claimed)
        .map(|(p, _)| (p.key, p.id))
        .collect();
    for (p, v) in rejected {
        if let (false, Verdict::Rejected { code, .. }) = (dry_run, &v) {
            shard.metrics.rejected(p.request.channel, *code);
        }
        tracing::debug!(group = origin.group_code, src_msg_id = %p.request.src_msg_id, ?v, "rejected at accept");
        verdicts[p.slot] = v;
    }
    release_all(shard, released).await;
    if dry_run {
        let now = unix_ms();
        for p in pending {
            verdicts[p.slot] = Verdict::Accepted {
                id: None,
                status: initial_status(&p.request, now),
            };
        }
        return Ok(verdicts);
    }
    write(shard, origin, pending, verdicts).await
}

/// Appends the survivors and waits until they are durable.
async fn write(
    shard: &Rc<Shard>,
    origin: Origin<'_>,
    pending: Vec<Pending>,
    mut verdicts: Vec<Verdict>,
) -> Result<Vec<Verdict>, AcceptError> {
    if pending.is_empty() {
        return Ok(verdicts);
    }
    let now = unix_ms();
    let mut records = Vec::with_capacity(pending.len());
    let mut kept = Vec::with_capacity(pending.len());
    let mut charged = 0;
    for p in pending {
        let status = initial_status(&p.request, now);
        verdicts[p.slot] = Verdict::Accepted {
            id: Some(p.id),
            status,
        };
        kept.push((p.key, p.id));
        charged += p.price;
        records.push(Record::Accepted(AcceptedRecord {
            id: p.id,
            group_code: origin.group_code.to_string(),
            client_id: origin.client_id.to_string(),
            created_at_ms: now,
            status,
            price: p.price,
            fallback_of: None,
            request: p.request,
        }));
    }
    if let Err(e) = shard.wal.append_durable(&records).await {
        release_all(shard, kept).await;
        if charged != 0 {
            let owner = crate::mesh::owner::customer(origin.group_code, shard.shards());
            let refund = crate::mesh::msg::MeshMsg::Quota(crate::mesh::msg::QuotaMsg::Refund {
                group: origin.group_code.to_string(),
                amount: charged,
            });
            shard.send_to(owner, refund);
        }
        return Err(e.into());
    }
    let mut to_route = Vec::new();
    {
        let mut messages = shard.messages.borrow_mut();
        for r in records {
            if let Record::Accepted(rec) = r {
                shard.metrics.accepted(rec.request.channel);
                match (rec.status, rec.request.send_at) {
                    (Status::Scheduled, Some(at)) => {
                        shard.deadlines.at(at, crate::deadlines::Due::Send(rec.id));
                    }
                    _ => to_route.push(rec.id),
                }
                messages.apply_accepted(rec);
            }
        }
    }
    pipeline::route_soon(shard, to_route);
    Ok(verdicts)
}

fn initial_status(req: &MessageRequest, now: i64) -> Status {
    match req.send_at {
        Some(at) if at > now => Status::Scheduled,
        _ => Status::Accepted,
    }
}

fn reject(code: ResultCode, reason: String) -> Verdict {
    Verdict::Rejected {
        code,
        reason,
        original: None,
    }
}

/// Channel enabled → bill code registered → caller ID registered.
fn check_catalog(customer: &CustomerView, req: MessageRequest) -> Result<MessageRequest, Verdict> {
    if !customer.service(req.channel).enabled {
        return Err(Verdict::rejected(ResultCode::ChannelNotEnabled));
    }
    if !customer.bill_codes.contains_key(&req.bill_code) {
        return Err(Verdict::rejected(ResultCode::UnknownBillCode));
    }
    if req.channel.is_phone() {
        let registered = req
            .from
            .as_ref()
            .is_some_and(|f| customer.caller_ids.contains(f));
        if !registered {
            return Err(Verdict::rejected(ResultCode::CallerIdNotRegistered));
        }
    }
    Ok(req)
}

/// Moves the pending messages for which `keep` is false into `rejected`.
fn split_off(
    pending: &mut Vec<Pending>,
    rejected: &mut Vec<(Pending, Verdict)>,
    mut keep: impl FnMut(usize, &Pending) -> Option<Verdict>,
) {
    let all = std::mem::take(pending);
    for (i, p) in all.into_iter().enumerate() {
        match keep(i, &p) {
            None => pending.push(p),
            Some(v) => rejected.push((p, v)),
        }
    }
}

/// Claims (or, in a dry run, looks up) every key, one mesh hop per owner.
async fn dedup(
    shard: &Rc<Shard>,
    pending: &mut Vec<Pending>,
    rejected: &mut Vec<(Pending, Verdict)>,
    dry_run: bool,
) -> Result<(), AcceptError> {
    let n = shard.shards();
    let mut originals: Vec<Option<MessageId>> = vec![None; pending.len()];
    for owner in 0..n {
        let idx: Vec<usize> = (0..pending.len())
            .filter(|&i| crate::mesh::owner::dedup(pending[i].key, n) == owner)
            .collect();
        if idx.is_empty() {
            continue;
        }
        if dry_run {
            let keys = idx.iter().map(|&i| pending[i].key).collect();
            let got = shard
                .peek(owner, keys)
                .await
                .map_err(|_| AcceptError::ShardUnavailable)?;
            for (i, holder) in idx.into_iter().zip(got) {
                originals[i] = holder;
            }
        } else {
            let claims = idx
                .iter()
                .map(|&i| (pending[i].key, pending[i].id))
                .collect();
            let got = shard
                .claim(owner, claims)
                .await
                .map_err(|_| AcceptError::ShardUnavailable)?;
            for (i, outcome) in idx.into_iter().zip(got) {
                match outcome {
                    ClaimOutcome::Claimed => pending[i].claimed = true,
                    ClaimOutcome::Duplicate(original) => originals[i] = Some(original),
                }
            }
        }
    }
    split_off(pending, rejected, |i, _| {
        originals[i].map(|original| Verdict::Rejected {
            code: ResultCode::DuplicateSrcMsgId,
            reason: ResultCode::DuplicateSrcMsgId.description().to_string(),
            original: Some(original),
        })
    });
    Ok(())
}

/// TPS per channel, in parts: local lease first, then one lease request to
/// the customer's owning shard per channel.
async fn tps(
    shard: &Rc<Shard>,
    group: &str,
    customer: &CustomerView,
    pending: &mut Vec<Pending>,
    rejected: &mut Vec<(Pending, Verdict)>,
    dry_run: bool,
) {
    let mut need: HashMap<Channel, u32> = HashMap::new();
    for p in pending.iter() {
        if customer.service(p.request.channel).tps > 0 {
            *need.entry(p.request.channel).or_insert(0) += u32::from(p.request.parts.max(1));
        }
    }
    let mut budget: HashMap<Channel, u32> = HashMap::new();
    for (channel, want) in need {
        let limit = customer.service(channel).tps;
        let local = if dry_run {
            0
        } else {
            shard
                .core
                .borrow_mut()
                .leases
                .take(crate::unix_ms(), group, channel, want)
        };
        let mut have = local;
        if have < want {
            let ask = if dry_run {
                want
            } else {
                (want - have).max(crate::core::quota::lease_chunk(limit, shard.shards()))
            };
            have += shard.lease_tps(group, channel, limit, ask, !dry_run).await;
        }
        budget.insert(channel, have);
    }
    split_off(pending, rejected, |_, p| {
        let b = budget.get_mut(&p.request.channel)?;
        let parts = u32::from(p.request.parts.max(1));
        if *b >= parts {
            *b -= parts;
            None
        } else {
            *b = 0;
            Some(reject(
                ResultCode::TpsExceeded,
                format!(
                    "TPS limit of {} for {} exceeded",
                    customer.service(p.request.channel).tps,
                    p.request.channel
                ),
            ))
        }
    });
    if !dry_run {
        for (channel, left) in budget {
            shard
                .core
                .borrow_mut()
                .leases
                .keep(crate::unix_ms(), group, channel, left);
        }
    }
}

/// KISA ad rules, opt-outs and the operator's spam keywords.
fn spam_policy(
    snapshot: &Snapshot,
    customer: &CustomerView,
    pending: &mut Vec<Pending>,
    rejected: &mut Vec<(Pending, Verdict)>,
) {
    let now = unix_ms();
    let opted_out = |n: &str| customer.opt_outs.contains(n);
    split_off(pending, rejected, |_, p| {
        let r = &p.request;
        let bill_ad = customer.bill_codes.get(&r.bill_code).is_some_and(|b| b.ad);
        let input = PolicyInput {
            text: &r.text,
            subject: r.subject.as_deref(),
            to: &r.to,
            ad: r.ad || bill_ad,
            send_at: r.send_at,
        };
        policy::check(&input, &snapshot.spam, &opted_out, now)
            .err()
            .map(|(code, reason)| reject(code, reason))
    });
}

/// Prepaid: price every survivor (per part) and debit at the owning shard.
async fn prepaid(
    shard: &Rc<Shard>,
    group: &str,
    customer: &CustomerView,
    pending: &mut Vec<Pending>,
    rejected: &mut Vec<(Pending, Verdict)>,
    dry_run: bool,
) {
    let Some(c) = customer.customer.as_ref().filter(|c| c.prepaid) else {
        return;
    };
    if pending.is_empty() {
        return;
    }
    let config = &shard.shared.config;
    for p in pending.iter_mut() {
        p.price = config.price(p.request.channel) * i64::from(p.request.parts.max(1));
    }
    let prices = pending.iter().map(|p| p.price).collect();
    let verdicts = shard
        .charge(group, c.balance + c.charges_offset, prices, !dry_run)
        .await;
    split_off(pending, rejected, |i, _| {
        (!verdicts.get(i).copied().unwrap_or(false))
            .then(|| Verdict::rejected(ResultCode::BalanceExhausted))
    });
}

async fn release_all(shard: &Rc<Shard>, kept: Vec<(DedupKey, MessageId)>) {
    if kept.is_empty() {
        return;
    }
    let n = shard.shards();
    for owner in 0..n {
        let claims: Vec<_> = kept
            .iter()
            .copied()
            .filter(|(k, _)| crate::mesh::owner::dedup(*k, n) == owner)
            .collect();
        if !claims.is_empty() {
            shard.release(owner, claims).await;
        }
    }
}
