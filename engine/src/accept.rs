//! The accept path: checks at accept, dedup claims, durable append.
//!
//! The checks run in SPEC order and the first failure decides the code:
//! schema and limits (done by the API before this) → channel enabled → bill
//! code registered → caller ID registered → duplicate `src_msg_id`. The
//! survivors are appended to the shard's WAL in one group and the answer is
//! returned only once they are durable. A message whose write fails was never
//! accepted: its dedup claim is released and the whole request fails with
//! [`AcceptError`] (the API answers 503).

use crate::catalog::CustomerView;
use crate::codec::{AcceptedRecord, Record};
use crate::codes::ResultCode;
use crate::dedup::{ClaimOutcome, DedupKey};
use crate::model::{MessageId, MessageRequest, Status};
use std::rc::Rc;

use crate::pipeline;
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

/// A message that passed the local checks, waiting for its dedup claim.
struct Pending {
    slot: usize,
    id: MessageId,
    key: DedupKey,
    request: MessageRequest,
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
        let checked = item.and_then(|req| check_catalog(customer, req));
        match checked {
            Ok(request) => {
                verdicts.push(Verdict::rejected(ResultCode::Accepted)); // placeholder
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
                });
            }
            Err(v) => verdicts.push(v),
        }
    }
    if dry_run {
        return dry_run_dedup(shard, pending, verdicts).await;
    }
    let claimed = claim_all(shard, &pending).await?;
    let now = unix_ms();
    let mut records = Vec::new();
    let mut kept = Vec::new();
    for (p, outcome) in pending.into_iter().zip(claimed) {
        match outcome {
            ClaimOutcome::Duplicate(original) => {
                verdicts[p.slot] = duplicate(original);
            }
            ClaimOutcome::Claimed => {
                let status = initial_status(&p.request, now);
                verdicts[p.slot] = Verdict::Accepted {
                    id: Some(p.id),
                    status,
                };
                kept.push((p.key, p.id));
                records.push(Record::Accepted(AcceptedRecord {
                    id: p.id,
                    group_code: origin.group_code.to_string(),
                    client_id: origin.client_id.to_string(),
                    created_at_ms: now,
                    status,
                    request: p.request,
                }));
            }
        }
    }
    if records.is_empty() {
        return Ok(verdicts);
    }
    if let Err(e) = shard.wal.append_durable(&records).await {
        release_all(shard, kept).await;
        return Err(e.into());
    }
    let mut to_route = Vec::new();
    {
        let mut messages = shard.messages.borrow_mut();
        for r in records {
            if let Record::Accepted(rec) = r {
                match (rec.status, rec.request.send_at) {
                    (Status::Scheduled, Some(at)) => shard.pipeline.schedule(rec.id, at),
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

fn duplicate(original: MessageId) -> Verdict {
    Verdict::Rejected {
        code: ResultCode::DuplicateSrcMsgId,
        reason: ResultCode::DuplicateSrcMsgId.description().to_string(),
        original: Some(original),
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

/// Claims every pending key, one mesh hop per owning shard.
async fn claim_all(
    shard: &Rc<Shard>,
    pending: &[Pending],
) -> Result<Vec<ClaimOutcome>, AcceptError> {
    let n = shard.shards();
    let mut outcomes = vec![ClaimOutcome::Claimed; pending.len()];
    for owner in 0..n {
        let idx: Vec<usize> = (0..pending.len())
            .filter(|&i| pending[i].key.owner(n) == owner)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let claims = idx
            .iter()
            .map(|&i| (pending[i].key, pending[i].id))
            .collect();
        let got = shard
            .claim(owner, claims)
            .await
            .map_err(|_| AcceptError::ShardUnavailable)?;
        for (i, o) in idx.into_iter().zip(got) {
            outcomes[i] = o;
        }
    }
    Ok(outcomes)
}

async fn release_all(shard: &Rc<Shard>, kept: Vec<(DedupKey, MessageId)>) {
    let n = shard.shards();
    for owner in 0..n {
        let claims: Vec<_> = kept
            .iter()
            .copied()
            .filter(|(k, _)| k.owner(n) == owner)
            .collect();
        if !claims.is_empty() {
            shard.release(owner, claims).await;
        }
    }
}

async fn dry_run_dedup(
    shard: &Rc<Shard>,
    pending: Vec<Pending>,
    mut verdicts: Vec<Verdict>,
) -> Result<Vec<Verdict>, AcceptError> {
    let now = unix_ms();
    let n = shard.shards();
    for p in pending {
        let owner = p.key.owner(n);
        let holder = shard
            .peek(owner, vec![p.key])
            .await
            .map_err(|_| AcceptError::ShardUnavailable)?
            .pop()
            .flatten();
        verdicts[p.slot] = match holder {
            Some(original) => duplicate(original),
            None => Verdict::Accepted {
                id: None,
                status: initial_status(&p.request, now),
            },
        };
    }
    Ok(verdicts)
}
