//! The checks at accept, in SPEC order, decided without IO.
//!
//! Order (the first failure decides the code): schema and limits (done by
//! the API before this) → channel enabled (3005) → bill code registered
//! (3004) → caller ID registered (3003) → a reseller's origin code
//! registered (3016, SPEC §5.11) → duplicate `src_msg_id` (3006) →
//! TPS for the customer and channel (3007, counted in parts) → the
//! channel's backlog bound (3014, SPEC §5.3) → spam policy (3009–3012;
//! keywords matched strictly for a reseller) → prepaid balance (3008,
//! priced in parts).
//!
//! A [`Plan`] takes one step at a time; the facts that live on other shards
//! (dedup claims, TPS leases, backlog slots, prepaid debits) are fetched by the driver
//! (`shard::accept`) between the steps and handed in, as TigerBeetle
//! prefetches before it commits. A message rejected after its dedup claim
//! gives the claim back ([`Outcome::release`]), one rejected after its
//! backlog slot gives the slot back ([`Outcome::backlog_back`]).

use std::collections::HashMap;

use crate::catalog::{ChannelService, CustomerView};
use crate::codec::{AcceptedRecord, BlockedRecord};
use crate::codes::ResultCode;
use crate::core::dedup::DedupKey;
use crate::model::{Channel, Class, MessageId, MessageRequest, Status};
use crate::policy::{self, PolicyInput, SpamKeywords};

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

    fn reject(code: ResultCode, reason: String) -> Verdict {
        Verdict::Rejected {
            code,
            reason,
            original: None,
        }
    }
}

/// A message that passed the checks so far.
#[derive(Debug)]
pub struct Pending {
    /// Its place in the request.
    pub slot: usize,
    /// Its id (0 in a dry run).
    pub id: MessageId,
    /// Its dedup key.
    pub key: DedupKey,
    /// The request.
    pub request: MessageRequest,
    /// Whether its dedup key was claimed (to give back if rejected).
    pub claimed: bool,
    /// Its prepaid price (0 when not prepaid).
    pub price: i64,
    /// It holds a backlog slot of its channel (its customer has a
    /// `max_backlog` there): given back when it is final.
    pub backlog: bool,
}

/// The accept decision of one request, a step at a time.
pub struct Plan<'a> {
    customer: &'a CustomerView,
    verdicts: Vec<Verdict>,
    pending: Vec<Pending>,
    rejected: Vec<(Pending, Verdict)>,
    /// (channel, code) of every message this plan rejected.
    rejections: Vec<(Channel, ResultCode)>,
    /// The messages a policy check rejected.
    blocked: Vec<Blocked>,
}

/// A message rejected by a policy check (SPEC §5.4), for the blocked list.
#[derive(Debug)]
pub struct Blocked {
    /// An id from the shard's sequence, naming the entry.
    pub id: MessageId,
    /// What the customer asked for.
    pub request: MessageRequest,
    /// The rejection.
    pub code: ResultCode,
    /// Why, in words.
    pub reason: String,
}

impl<'a> Plan<'a> {
    /// Starts a plan for `group_code`'s request: `items` are the API's
    /// schema verdicts in request order; those that passed are checked
    /// against the catalog (3005 → 3004 → 3003 → 3016) and the survivors get an id
    /// from `next_id`.
    pub fn new(
        customer: &'a CustomerView,
        group_code: &str,
        items: Vec<Result<MessageRequest, Verdict>>,
        mut next_id: impl FnMut() -> MessageId,
    ) -> Plan<'a> {
        let mut plan = Plan {
            customer,
            verdicts: Vec::with_capacity(items.len()),
            pending: Vec::new(),
            rejected: Vec::new(),
            rejections: Vec::new(),
            blocked: Vec::new(),
        };
        for (slot, item) in items.into_iter().enumerate() {
            let mut request = match item {
                Ok(request) => request,
                Err(verdict) => {
                    plan.verdicts.push(verdict);
                    continue;
                }
            };
            match check_catalog(customer, &request) {
                Some((code, reason)) => {
                    plan.rejections.push((request.channel, code));
                    plan.verdicts.push(Verdict::reject(code, reason.clone()));
                    if code.is_policy_block() {
                        let id = next_id();
                        plan.blocked.push(Blocked {
                            id,
                            request,
                            code,
                            reason,
                        });
                    }
                }
                None => {
                    let class = class_of(customer, &request);
                    request.priority.get_or_insert(class);
                    // Decided by the steps below.
                    plan.verdicts.push(Verdict::rejected(ResultCode::Accepted));
                    plan.pending.push(Pending {
                        slot,
                        id: next_id(),
                        key: DedupKey::new(group_code, &request.src_msg_id),
                        request,
                        claimed: false,
                        price: 0,
                        backlog: false,
                    });
                }
            }
        }
        plan
    }

    /// The dedup keys to claim (or, in a dry run, to look up), in order.
    pub fn keys(&self) -> Vec<(DedupKey, MessageId)> {
        self.pending.iter().map(|p| (p.key, p.id)).collect()
    }

    /// The `src_msg_id` of key `i` of [`Plan::keys`].
    pub fn src_msg_id(&self, i: usize) -> &str {
        self.pending
            .get(i)
            .map_or("", |p| p.request.src_msg_id.as_str())
    }

    /// The claims' outcomes, one per key of [`Plan::keys`]: the original
    /// message of a duplicate (3006). `claimed`: the keys not duplicated are
    /// now taken by these messages (false in a dry run).
    pub fn duplicates(&mut self, originals: &[Option<MessageId>], claimed: bool) {
        for (p, original) in self.pending.iter_mut().zip(originals) {
            p.claimed = claimed && original.is_none();
        }
        self.split_off(|i, _| {
            originals
                .get(i)
                .copied()
                .flatten()
                .map(|original| Verdict::Rejected {
                    code: ResultCode::DuplicateSrcMsgId,
                    reason: ResultCode::DuplicateSrcMsgId.description().to_string(),
                    original: Some(original),
                })
        });
    }

    /// The TPS tokens needed, in parts, per channel that has a limit:
    /// (channel, parts, limit).
    pub fn tps_needs(&self) -> Vec<(Channel, u32, u32)> {
        self.needs(|s| s.tps, |r| u32::from(r.parts.max(1)))
    }

    /// Spends the TPS tokens the driver got per channel, in request order;
    /// a message that does not fit is rejected (3007). Returns the tokens
    /// left per channel.
    pub fn spend_tps(&mut self, mut budget: HashMap<Channel, u32>) -> HashMap<Channel, u32> {
        let customer = self.customer;
        self.split_off(|_, p| {
            let b = budget.get_mut(&p.request.channel)?;
            let parts = u32::from(p.request.parts.max(1));
            if *b >= parts {
                *b -= parts;
                return None;
            }
            *b = 0;
            Some(Verdict::reject(
                ResultCode::TpsExceeded,
                format!(
                    "TPS limit of {} for {} exceeded",
                    customer.service(p.request.channel).tps,
                    p.request.channel
                ),
            ))
        });
        budget
    }

    /// The backlog slots wanted per channel that has a `max_backlog`:
    /// (channel, messages, max).
    pub fn backlog_needs(&self) -> Vec<(Channel, u32, u32)> {
        self.needs(|s| s.max_backlog, |_| 1)
    }

    /// Per channel whose `limit` is set: (channel, the pending messages'
    /// `units` summed, the limit), in order of first appearance.
    fn needs(
        &self,
        limit: impl Fn(ChannelService) -> u32,
        units: impl Fn(&MessageRequest) -> u32,
    ) -> Vec<(Channel, u32, u32)> {
        let mut need: Vec<(Channel, u32, u32)> = Vec::new();
        for p in &self.pending {
            let max = limit(self.customer.service(p.request.channel));
            if max == 0 {
                continue;
            }
            let n = units(&p.request);
            match need.iter_mut().find(|(c, _, _)| *c == p.request.channel) {
                Some(e) => e.1 += n,
                None => need.push((p.request.channel, n, max)),
            }
        }
        need
    }

    /// Spends the backlog slots the driver got per channel, in request
    /// order; a message that does not fit is rejected (3014).
    pub fn spend_backlog(&mut self, mut granted: HashMap<Channel, u32>) {
        let customer = self.customer;
        self.split_off(|_, p| {
            let slots = granted.get_mut(&p.request.channel)?;
            if *slots > 0 {
                *slots -= 1;
                return None;
            }
            Some(Verdict::reject(
                ResultCode::BacklogFull,
                format!(
                    "{} messages of {} accepted and not final yet (max_backlog)",
                    customer.service(p.request.channel).max_backlog,
                    p.request.channel
                ),
            ))
        });
        for p in &mut self.pending {
            p.backlog = customer.service(p.request.channel).max_backlog > 0;
        }
    }

    /// KISA ad rules, opt-outs and the operator's spam keywords at `now_ms`
    /// (3009–3012); a reseller's keywords are matched strictly (SPEC §5.11).
    pub fn policy(&mut self, spam: &SpamKeywords, now_ms: i64) {
        let customer = self.customer;
        let strict = customer.is_reseller();
        let opted_out = |n: &str| customer.opt_outs.contains(n);
        self.split_off(|_, p| {
            let r = &p.request;
            let bill_ad = customer.bill_codes.get(&r.bill_code).is_some_and(|b| b.ad);
            let input = PolicyInput {
                text: &r.text,
                subject: r.subject.as_deref(),
                to: &r.to,
                ad: r.ad || bill_ad,
                send_at: r.send_at,
                strict,
            };
            policy::check(&input, spam, &opted_out, now_ms)
                .err()
                .map(|(code, reason)| Verdict::reject(code, reason))
        });
    }

    /// Prices every survivor of a prepaid customer (`price_of` one part of
    /// a channel): the customer's credit and the prices to debit in order.
    /// `None` when the customer is not prepaid or nothing is left.
    pub fn prices(&mut self, price_of: impl Fn(Channel) -> i64) -> Option<(i64, Vec<i64>)> {
        let c = self.customer.customer.as_ref().filter(|c| c.prepaid)?;
        if self.pending.is_empty() {
            return None;
        }
        for p in &mut self.pending {
            p.price = price_of(p.request.channel) * i64::from(p.request.parts.max(1));
        }
        let prices = self.pending.iter().map(|p| p.price).collect();
        Some((c.balance + c.charges_offset, prices))
    }

    /// The debits' verdicts, one per price of [`Plan::prices`]: a message
    /// the balance cannot pay is rejected (3008).
    pub fn charged(&mut self, paid: &[bool]) {
        self.split_off(|i, _| {
            (!paid.get(i).copied().unwrap_or(false))
                .then(|| Verdict::rejected(ResultCode::BalanceExhausted))
        });
    }

    /// Ends the checks.
    pub fn finish(mut self) -> Outcome {
        let mut release = Vec::new();
        let mut backlog_back: Vec<(Channel, u32)> = Vec::new();
        for (p, verdict) in self.rejected {
            if p.claimed {
                release.push((p.key, p.id));
            }
            if p.backlog {
                count_channel(&mut backlog_back, p.request.channel);
            }
            self.verdicts[p.slot] = verdict;
            let Verdict::Rejected { code, reason, .. } = &self.verdicts[p.slot] else {
                continue;
            };
            self.rejections.push((p.request.channel, *code));
            if code.is_policy_block() {
                let (code, reason) = (*code, reason.clone());
                let (id, request) = (p.id, p.request);
                self.blocked.push(Blocked {
                    id,
                    request,
                    code,
                    reason,
                });
            }
        }
        Outcome {
            verdicts: self.verdicts,
            survivors: self.pending,
            release,
            backlog_back,
            rejections: self.rejections,
            blocked: self.blocked,
        }
    }

    /// Moves the pending messages for which `keep` gives a verdict to the
    /// rejected ones.
    fn split_off(&mut self, mut keep: impl FnMut(usize, &Pending) -> Option<Verdict>) {
        let all = std::mem::take(&mut self.pending);
        for (i, p) in all.into_iter().enumerate() {
            match keep(i, &p) {
                None => self.pending.push(p),
                Some(v) => self.rejected.push((p, v)),
            }
        }
    }
}

/// A message accepted by [`Outcome::commit`].
#[derive(Debug)]
pub struct Accepted {
    /// Its record, to append.
    pub record: AcceptedRecord,
    /// Its dedup claim (given back if the append fails).
    pub claim: (DedupKey, MessageId),
    /// It holds a backlog slot of its channel.
    pub backlog: bool,
}

/// What a plan decided.
#[derive(Debug)]
pub struct Outcome {
    /// One per item of the request; the survivors' are set by
    /// [`Outcome::commit`] or [`Outcome::dry_run`].
    pub verdicts: Vec<Verdict>,
    /// The messages that passed every check.
    pub survivors: Vec<Pending>,
    /// Dedup claims to give back: messages rejected after claiming.
    pub release: Vec<(DedupKey, MessageId)>,
    /// Backlog slots to give back per channel: messages rejected after
    /// their slot was reserved.
    pub backlog_back: Vec<(Channel, u32)>,
    /// (channel, code) of every message rejected at accept.
    pub rejections: Vec<(Channel, ResultCode)>,
    /// The messages a policy check rejected.
    pub blocked: Vec<Blocked>,
}

impl Outcome {
    /// The survivors as accepted at `now_ms` by `origin`: their records
    /// (to append) with their dedup claims and whether each holds a backlog
    /// slot, and their verdicts (set here).
    pub fn commit(&mut self, origin: Origin<'_>, now_ms: i64) -> Vec<Accepted> {
        let mut records = Vec::with_capacity(self.survivors.len());
        for p in std::mem::take(&mut self.survivors) {
            let status = initial_status(&p.request, now_ms);
            self.verdicts[p.slot] = Verdict::Accepted {
                id: Some(p.id),
                status,
            };
            let claim = (p.key, p.id);
            let backlog = p.backlog;
            let record = AcceptedRecord {
                id: p.id,
                group_code: origin.group_code.to_string(),
                client_id: origin.client_id.to_string(),
                created_at_ms: now_ms,
                status,
                price: p.price,
                fallback_of: None,
                request: p.request,
            };
            records.push(Accepted {
                record,
                claim,
                backlog,
            });
        }
        records
    }

    /// The records of the messages a policy check rejected, at `now_ms`
    /// from `origin` (taken: a second call returns none).
    pub fn blocked_records(&mut self, origin: Origin<'_>, now_ms: i64) -> Vec<BlockedRecord> {
        std::mem::take(&mut self.blocked)
            .into_iter()
            .map(|b| {
                let text = b.request.text.as_str();
                BlockedRecord {
                    id: b.id,
                    at_ms: now_ms,
                    group_code: origin.group_code.to_string(),
                    client_id: origin.client_id.to_string(),
                    src_msg_id: b.request.src_msg_id,
                    channel: b.request.channel,
                    to: b.request.to,
                    text_hash: text_hash(text),
                    excerpt: text.chars().take(EXCERPT_CHARS).collect(),
                    code: b.code.as_u16(),
                    reason: b.reason,
                }
            })
            .collect()
    }

    /// The verdicts of a dry run at `now_ms`: the survivors would be accepted.
    pub fn dry_run(mut self, now_ms: i64) -> Vec<Verdict> {
        for p in &self.survivors {
            self.verdicts[p.slot] = Verdict::Accepted {
                id: None,
                status: initial_status(&p.request, now_ms),
            };
        }
        self.verdicts
    }
}

/// Characters of a blocked message's text kept as its excerpt.
pub const EXCERPT_CHARS: usize = 40;

/// SHA-256 of a text, lowercase hex; empty for no text.
pub fn text_hash(text: &str) -> String {
    use sha2::Digest;
    if text.is_empty() {
        return String::new();
    }
    crate::codec::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// Counts one more message of `channel` in `counts`.
pub fn count_channel(counts: &mut Vec<(Channel, u32)>, channel: Channel) {
    match counts.iter_mut().find(|(c, _)| *c == channel) {
        Some(n) => n.1 += 1,
        None => counts.push((channel, 1)),
    }
}

/// `scheduled` when `send_at` is in the future, else `accepted`.
pub fn initial_status(req: &MessageRequest, now_ms: i64) -> Status {
    match req.send_at {
        Some(at) if at > now_ms => Status::Scheduled,
        _ => Status::Accepted,
    }
}

/// The class of a message that names no `priority` (SPEC §5.2): `ad` for
/// an ad, else its bill code's class.
fn class_of(customer: &CustomerView, req: &MessageRequest) -> Class {
    if req.ad {
        return Class::Ad;
    }
    customer
        .bill_codes
        .get(&req.bill_code)
        .map_or(Class::default(), |b| if b.ad { Class::Ad } else { b.class })
}

/// Channel enabled → bill code registered → caller ID registered → a
/// reseller's origin code registered: the first failure's code and reason.
fn check_catalog(customer: &CustomerView, req: &MessageRequest) -> Option<(ResultCode, String)> {
    let fail = |code: ResultCode| Some((code, code.description().to_string()));
    if !customer.service(req.channel).enabled {
        return fail(ResultCode::ChannelNotEnabled);
    }
    if !customer.bill_codes.contains_key(&req.bill_code) {
        return fail(ResultCode::UnknownBillCode);
    }
    let registered = || {
        req.from
            .as_ref()
            .is_some_and(|f| customer.caller_ids.contains(f))
    };
    if req.channel.is_phone() && !registered() {
        return fail(ResultCode::CallerIdNotRegistered);
    }
    check_origin_code(customer, req)
}

/// SPEC §5.11: a reseller's message names a registered origin code; a
/// non-reseller's code is carried as it is, unchecked.
fn check_origin_code(
    customer: &CustomerView,
    req: &MessageRequest,
) -> Option<(ResultCode, String)> {
    if !customer.is_reseller() {
        return None;
    }
    let code = ResultCode::OriginCodeInvalid;
    match req.origin_code.as_deref() {
        None => Some((code, "origin_code is required for a reseller".to_string())),
        Some(c) if !customer.origin_codes.contains(c) => Some((
            code,
            format!("origin_code \"{c}\" is not registered for the customer"),
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
#[path = "accept_tests.rs"]
mod tests;
