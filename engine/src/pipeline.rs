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

use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;

use crate::core::lifecycle::events::OwnerEvent;
use crate::core::lifecycle::route::{self, PickAsk};
use crate::core::lifecycle::transition::Step;
use crate::core::receipts::{Arrival, Receipt, ReceiptKey};
use crate::deadlines::Due;
use crate::mesh::call;
use crate::mesh::msg::{MeshMsg, ReceiptMsg, SessionMsg};
use crate::mesh::owner;
use crate::model::{MessageId, Status};
use crate::rt;
use crate::sender::Outbound;
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

pub use crate::model::RouteTarget;

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

/// Answers weighted picks for a route key this shard owns.
pub fn pick(shard: &Shard, req: PickRequest) {
    let snapshot = shard.snapshot();
    let rule = snapshot.route(&req.rule_group, req.target.channel);
    let available = |group: &str| route::group_available(&snapshot, group, &req.target);
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
    rt::spawn(async move { route(&shard, ids) });
}

/// Routes messages owned by this shard (`core::lifecycle::route`); the
/// picks are asked of the route keys' owners by the effects runner.
pub fn route(shard: &Shard, ids: Vec<MessageId>) {
    let snapshot = shard.snapshot();
    shard.feed(|c, now, fx| c.lifecycle.route(now, &snapshot, ids, fx));
}

/// Asks the route key's owner for the picks of `ask`, then hands the
/// messages over (one task per key, as the answer comes back).
pub async fn ask_pick(shard: Rc<Shard>, ask: PickAsk) {
    let to = owner::route(&ask.route_id, &ask.carrier_key, shard.shards());
    let count = ask.items.len();
    // NOTE: one pick request per key covers messages whose targets differ
    // only in recipient; availability is judged on the first target, and
    // a sender that cannot take a particular message bounces it back.
    let (rule_group, carrier_key) = (ask.rule_group.clone(), ask.carrier_key.clone());
    let target = ask.items[0].1.clone();
    let picks = call::ask(&shard, to, |reply| {
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
    let snapshot = shard.snapshot();
    let me = shard.id;
    shard.feed(|c, now, fx| c.lifecycle.picked(now, &snapshot, me, ask, picks, fx));
}

/// Gives a handed-over message to a session of `sender` here, or sends it
/// to the shard whose session takes it; held when the queue refuses it.
pub fn hand_over(shard: &Shard, dest: usize, sender: String, outbound: Outbound) {
    if dest == shard.id {
        if let Err(back) = shard.senders.push(&sender, outbound) {
            hold(shard, back.id);
        }
    } else {
        let items = vec![outbound];
        shard.send_to(dest, MeshMsg::Session(SessionMsg::Submit { sender, items }));
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
        Some(m) if !m.status.is_final() => route::target_of(&snapshot, m),
        _ => return,
    };
    match snapshot.senders.get(to).filter(|e| e.fits(&target)) {
        Some(entry) => {
            let me = shard.id;
            shard.feed(|c, now, fx| c.lifecycle.hand_to_sender(now, me, entry, id, target, fx))
        }
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
            // Held again if still unroutable, with the time it started
            // waiting (the lifecycle keeps it).
            route(&shard, retry.into_iter().map(|(id, _)| id).collect());
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
