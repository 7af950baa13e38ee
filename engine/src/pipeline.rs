//! The life of a message after accept, on the shard that owns it:
//! route → hand to a session → submitted → delivered / failed, each step a
//! WAL record. Also the two kinds of keys a shard owns for everyone: route
//! keys (the weighted choice of a sender group, exact across shards) and
//! receipt keys (carrier message id → message, so a receipt arriving on any
//! bind, also after a restart, finds its message).
//!
//! Routing never loses a message: no rule → failed 4001 at once; no
//! available sender → the held queue, retried every tick until
//! `routing.hold-timeout` (then failed 4002); a full session queue or a
//! session going down → back to routing.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;

use crate::catalog::{SenderEntry, Snapshot};

use crate::codes::ResultCode;
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::lifecycle::store::StoredMessage;
use crate::core::lifecycle::transition::Step;
use crate::core::receipts::{Arrival, Receipt, ReceiptKey};
use crate::deadlines::Due;
use crate::mesh::call::ask;
use crate::mesh::msg::{MeshMsg, ReceiptMsg, SessionMsg};
use crate::mesh::owner;
use crate::model::{Channel, MessageId, Status};
use crate::routing::rule::RouteRule;
use crate::rt;
use crate::sender::{Ability, Outbound};
use crate::shard::Shard;
use crate::unix_ms;

/// How often held and scheduled messages are looked at.
pub const TICK: Duration = Duration::from_millis(50);

/// Held messages are retried at most every this many ticks (200 ms), and
/// only when a sender came up or the catalog changed since the last try...
const HELD_RETRY_EVERY: u64 = 4;

/// ...or, failing that, every this many ticks (5 s), so a message whose
/// route appears by other means is not left waiting for an event.
const HELD_RETRY_IDLE: u64 = 100;

/// ...at most this many per round, so a long outage does not turn every
/// round into a storm of routing work.
const HELD_RETRY_BATCH: usize = 50_000;

/// What a message needs for routing.
#[derive(Debug, Clone)]
pub struct RouteTarget {
    /// The channel.
    pub channel: Channel,
    /// The recipient.
    pub to: String,
    /// Carrier (`SKT`, ..., `UNKNOWN`, `INTL`).
    pub carrier: String,
}

/// A request for `count` weighted picks of one route key.
#[derive(Debug)]
pub struct PickRequest {
    /// The customer whose rule applies (or `*`).
    pub rule_group: String,
    /// The target.
    pub target: RouteTarget,
    /// The key in the rule.
    pub carrier_key: String,
    /// How many picks.
    pub count: usize,
    /// For each pick, the chosen group's name (or `None`: nothing available).
    pub reply: oneshot::Sender<Vec<Option<String>>>,
}

/// Routing state of one shard that has not moved to `core` yet. Shard-local.
#[derive(Default)]
pub struct Pipeline {
    /// Ported-out numbers waiting for their PNX write.
    pub ported: crate::shard::ported::PortedOut,
}

/// Whether a sender can carry `target` now.
pub fn sender_fits(e: &SenderEntry, target: &RouteTarget) -> bool {
    let c = &e.config;
    if c.ability != Ability::Available
        || e.live.connected() == 0
        || !e.live.healthy_now()
        || !c.channels.contains(&target.channel)
    {
        return false;
    }
    let reaches = |k: &str| c.carriers.iter().any(|x| x == k || x == "*");
    if target.carrier == "INTL" {
        reaches("INTL") && target.to.starts_with(&format!("+{}", c.nat_cd))
    } else {
        reaches(&target.carrier) && c.nat_cd == "82"
    }
}

/// Whether `group` has a sender that can carry `target`.
fn group_available(snapshot: &Snapshot, group: &str, target: &RouteTarget) -> bool {
    snapshot
        .senders
        .values()
        .any(|e| e.config.group == group && sender_fits(e, target))
}

/// The sender of `group` for `target`: any sender but `avoid` (the one a
/// retried message just failed at) if the group has one, then least work,
/// then a session on this shard.
pub fn choose_sender<'a>(
    snapshot: &'a Snapshot,
    group: &str,
    target: &RouteTarget,
    shard: usize,
    avoid: Option<&str>,
) -> Option<&'a SenderEntry> {
    snapshot
        .senders
        .values()
        .filter(|e| e.config.group == group && sender_fits(e, target))
        .min_by_key(|e| {
            (
                avoid == Some(e.config.name.as_str()),
                e.live.load(),
                !e.live.up_on(shard),
            )
        })
}

/// Answers weighted picks for a route key this shard owns.
pub fn pick(shard: &Shard, req: PickRequest) {
    let snapshot = shard.snapshot();
    let rule = snapshot.route(&req.rule_group, req.target.channel);
    let available = |group: &str| group_available(&snapshot, group, &req.target);
    let picks = shard
        .core
        .borrow_mut()
        .routes
        .pick(rule, &req.carrier_key, req.count, available);
    let _ = req.reply.send(picks);
}

/// Indexes a carrier id (this shard owns the key); a receipt that came
/// first goes to the message's owner now.
pub fn index_receipt(shard: &Shard, key: ReceiptKey, id: MessageId) {
    let early = shard.core.borrow_mut().receipts.index(key, id);
    if let Some(Receipt { delivered, code }) = early {
        shard.to_owner(
            id,
            OwnerEvent::Final {
                id,
                delivered,
                code,
            },
        );
    }
}

/// A receipt arrived for a key this shard owns.
pub fn receipt(shard: &Shard, key: ReceiptKey, delivered: bool, code: u16) {
    let receipt = Receipt { delivered, code };
    let arrival = shard
        .core
        .borrow_mut()
        .receipts
        .arrived(unix_ms(), key, receipt);
    match arrival {
        Arrival::Matched(id) => shard.to_owner(
            id,
            OwnerEvent::Final {
                id,
                delivered,
                code,
            },
        ),
        Arrival::Early => {}
        Arrival::Dropped => {
            tracing::warn!("receipt for an unknown carrier id dropped: early-receipt buffer full")
        }
    }
}

/// Starts routing `ids` (owned by this shard) soon, in one batch.
pub fn route_soon(shard: &Rc<Shard>, ids: Vec<MessageId>) {
    if ids.is_empty() {
        return;
    }
    let shard = shard.clone();
    rt::spawn(async move { route(&shard, ids).await });
}

fn target_of(snapshot: &Snapshot, m: &StoredMessage) -> RouteTarget {
    let to = m.request.to.clone();
    let carrier = if to.starts_with('+') {
        "INTL".to_string()
    } else if m.request.channel.is_phone() {
        snapshot.pnx.lookup(&to).0.to_string()
    } else {
        "*".to_string()
    };
    RouteTarget {
        channel: m.request.channel,
        to,
        carrier,
    }
}

/// Routes messages owned by this shard: one pick request per route key.
pub async fn route(shard: &Rc<Shard>, ids: Vec<MessageId>) {
    let snapshot = shard.snapshot();
    // (rule group, carrier key) → messages
    let mut by_key: HashMap<(String, String), Vec<(MessageId, RouteTarget)>> = HashMap::new();
    let mut no_route = Vec::new();
    {
        let messages = shard.messages();
        for id in ids {
            let Some(m) = messages.get(id) else { continue };
            if !matches!(
                m.status,
                Status::Accepted | Status::Queued | Status::Scheduled
            ) {
                continue;
            }
            let target = target_of(&snapshot, m);
            let rule = snapshot.route(&m.group_code, m.request.channel);
            match rule.and_then(|r| r.key_for(&target.carrier).map(|k| (r, k.to_string()))) {
                Some((r, key)) => by_key
                    .entry((r.group_code.clone(), key))
                    .or_default()
                    .push((id, target)),
                None => no_route.push(id),
            }
        }
    }
    for id in no_route {
        // A ported number's second attempt has no route: it ends as what
        // the carrier reported.
        let ported = shard
            .messages()
            .get(id)
            .is_some_and(crate::core::lifecycle::ported::was_rerouted);
        let code = if ported {
            ResultCode::PortedOut
        } else {
            ResultCode::NoRoute
        };
        fail(shard, id, code, None);
    }
    for ((rule_group, carrier_key), items) in by_key {
        let route_id = RouteRule::id(&rule_group, items[0].1.channel);
        let to = owner::route(&route_id, &carrier_key, shard.shards());
        let (target, count) = (items[0].1.clone(), items.len());
        // NOTE: one pick request per key covers messages whose targets differ
        // only in recipient; availability is judged on the first target, and
        // a sender that cannot take a particular message bounces it back.
        let picks = ask(shard, to, |reply| {
            MeshMsg::Route(PickRequest {
                rule_group,
                target,
                carrier_key,
                count,
                reply,
            })
        })
        .await
        .unwrap_or_else(|_| vec![None; count]);
        for ((id, target), group) in items.into_iter().zip(picks) {
            match group {
                Some(g) => hand_over(shard, &snapshot, id, &g, target),
                None => hold(shard, id),
            }
        }
    }
}

fn hand_over(
    shard: &Rc<Shard>,
    snapshot: &Snapshot,
    id: MessageId,
    group: &str,
    target: RouteTarget,
) {
    // A message routed again after a failed attempt tries another sender.
    let last = shard.messages().get(id).and_then(|m| m.sender.clone());
    match choose_sender(snapshot, group, &target, shard.id, last.as_deref()) {
        Some(entry) => hand_to_sender(shard, entry, id, target),
        None => hold(shard, id),
    }
}

/// Queues a message at one sender: a session on this shard if it has one,
/// else on a shard that does.
fn hand_to_sender(shard: &Rc<Shard>, entry: &SenderEntry, id: MessageId, target: RouteTarget) {
    let Some(dest) = entry.live.shard_for(shard.id, id.seq() as usize) else {
        hold(shard, id);
        return;
    };
    let sender = entry.config.name.clone();
    let outbound = {
        let messages = shard.messages();
        let Some(m) = messages.get(id) else { return };
        Outbound {
            id,
            channel: m.request.channel,
            from: m.request.from.clone().unwrap_or_default(),
            to: m.request.to.clone(),
            text: m.request.text.clone(),
            subject: m.request.subject.clone(),
            template_code: m.request.template_code.clone(),
            vars: m.request.vars.clone(),
            international: target.carrier == "INTL",
        }
    };
    change_state(
        shard,
        id,
        Status::Queued,
        ResultCode::Accepted.as_u16(),
        Some(sender.clone()),
        Some(target.carrier),
        None,
    );
    if dest == shard.id {
        if let Err(back) = shard.senders.push(&sender, outbound) {
            hold(shard, back.id);
        }
    } else {
        shard.send_to(
            dest,
            MeshMsg::Session(SessionMsg::Submit {
                sender,
                items: vec![outbound],
            }),
        );
    }
}

/// Holds a message until a sender is available; fails it (4002) when the
/// held queue is full.
fn hold(shard: &Shard, id: MessageId) {
    shard.feed(|core, now, fx| core.lifecycle.hold(now, id, fx));
}

/// Records a state change: `Lifecycle`'s transition and its effects
/// (`Shard::change_state`).
pub fn change_state(
    shard: &Shard,
    id: MessageId,
    status: Status,
    code: u16,
    sender: Option<String>,
    carrier: Option<String>,
    carrier_msg_id: Option<String>,
) {
    let step = Step {
        status,
        code,
        sender,
        carrier,
        carrier_msg_id,
    };
    shard.change_state(id, step);
}

fn fail(shard: &Shard, id: MessageId, code: ResultCode, sender: Option<String>) {
    shard.feed(|core, now, fx| core.lifecycle.fail(now, id, code, sender, fx));
}

/// Applies events about messages this shard owns: routing's here, the
/// rest in the core's lifecycle.
pub fn on_owner_event(shard: &Rc<Shard>, ev: OwnerEvent) {
    match ev {
        OwnerEvent::Route { id } => route_soon(shard, vec![id]),
        OwnerEvent::Moved { id, to } => moved(shard, id, &to),
        ev => shard.feed(|core, now, fx| core.lifecycle.on_owner(now, ev, fx)),
    }
}

/// The operator moved `id` to sender `to`'s queue: there if it fits, else
/// back to routing.
fn moved(shard: &Rc<Shard>, id: MessageId, to: &str) {
    let snapshot = shard.snapshot();
    let target = match shard.messages().get(id) {
        Some(m) if !m.status.is_final() => target_of(&snapshot, m),
        _ => return,
    };
    match snapshot.senders.get(to).filter(|e| sender_fits(e, &target)) {
        Some(entry) => hand_to_sender(shard, entry, id, target),
        None => route_soon(shard, vec![id]),
    }
}

/// The free-space check runs every this many ticks (30 s).
const DISK_CHECK_EVERY: u64 = 600;

/// Below this share of free space the operator is alerted...
const DISK_ALERT_FREE: f64 = 0.05;

/// ...and alerted again only after it went back above this.
const DISK_REARM_FREE: f64 = 0.10;

/// Raises `disk_nearly_full` once when the data directory's file system runs
/// low; returns whether the alert is (still) raised.
fn check_disk(shard: &Shard, alerted: bool) -> bool {
    let dir = &shard.shared.config.data_dir_for_alerts;
    let Some(free) = rt::free_space_fraction(dir) else {
        return alerted;
    };
    if !alerted && free < DISK_ALERT_FREE {
        let detail = serde_json::json!({"data_dir": dir.display().to_string(), "free_percent": (free * 1000.0).round() / 10.0});
        crate::alerts::raise(crate::alerts::AlertEvent::DiskNearlyFull, detail);
        return true;
    }
    alerted && free < DISK_REARM_FREE
}

/// The shard's periodic work: retry held messages, expire them after the
/// hold timeout, sample sender queues, write ported-out numbers, the daily
/// digest and the disk check. (Scheduled sends and webhook retries are on
/// the timer wheel: [`crate::deadlines`].)
pub async fn tick_loop(shard: Rc<Shard>) {
    let mut ticks: u64 = 0;
    let mut seen_epoch = u64::MAX;
    let digest_at = shard.shared.config.digest_at_second;
    let mut next_digest = crate::digest::next_digest_ms(unix_ms(), digest_at);
    let mut disk_alerted = false;
    loop {
        rt::sleep(TICK).await;
        if shard.shared.is_draining() {
            return;
        }
        shard.senders.sample(shard.id);
        crate::shard::ported::flush(&shard);
        let now = unix_ms();
        if now >= next_digest {
            rt::spawn(crate::digest::run(shard.clone(), next_digest));
            next_digest = crate::digest::next_digest_ms(now, digest_at);
        }
        if shard.id == 0 && ticks.is_multiple_of(DISK_CHECK_EVERY) {
            disk_alerted = check_disk(&shard, disk_alerted);
        }
        let hold_ms = shard.shared.config.hold_timeout.as_millis() as i64;
        let mut retry = Vec::new();
        ticks += 1;
        let epoch = shard.shared.sender_epoch();
        let changed = epoch != seen_epoch;
        if (changed && ticks.is_multiple_of(HELD_RETRY_EVERY))
            || ticks.is_multiple_of(HELD_RETRY_IDLE)
        {
            seen_epoch = epoch;
            let batch = HELD_RETRY_BATCH;
            shard.feed(|c, now, fx| retry = c.lifecycle.expire_held(now, hold_ms, batch, fx));
        }
        if !retry.is_empty() {
            // Keep their original hold time: re-hold with it if still unroutable.
            let ids: Vec<MessageId> = retry.iter().map(|(id, _)| *id).collect();
            route(&shard, ids).await;
            let since: HashMap<u64, i64> = retry.into_iter().map(|(id, s)| (id.0, s)).collect();
            shard.core.borrow_mut().lifecycle.held.restore_since(&since);
        }
    }
}

/// After recovery: resume every non-final message where it was.
pub async fn resume(shard: &Rc<Shard>) {
    let mut to_route = Vec::new();
    let mut receipts = Vec::new();
    let mut ported = Vec::new();
    {
        let messages = shard.messages();
        let now = unix_ms();
        for m in messages.iter() {
            if crate::core::lifecycle::ported::awaits_pnx(m) {
                // The PNX write may not have happened before the restart.
                ported.push((m.request.to.clone(), m.id));
                continue;
            }
            match m.status {
                Status::Scheduled => match m.request.send_at {
                    Some(at) if at > now => shard.deadlines.at(at, Due::Send(m.id)),
                    _ => to_route.push(m.id),
                },
                Status::Accepted | Status::Queued => to_route.push(m.id),
                Status::Submitted => {
                    if let (Some(sender), Some(cid)) = (&m.sender, &m.carrier_msg_id) {
                        receipts.push((ReceiptKey::new(sender, cid), m.id));
                    }
                }
                _ => {}
            }
        }
    }
    for (key, id) in receipts {
        shard.send_to(
            owner::receipt(key, shard.shards()),
            MeshMsg::Receipt(ReceiptMsg::Index { key, id }),
        );
    }
    for (number, id) in ported {
        crate::shard::ported::enqueue(shard, number, id);
    }
    // Held messages wait for sessions to bind; the tick retries them.
    for id in to_route {
        hold(shard, id);
    }
}
