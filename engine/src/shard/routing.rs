//! Routing and receipts, the driver's side: the route keys and receipt
//! keys this shard owns for everyone (weighted picks, carrier id →
//! message), asking a route key's owner for picks and handing messages to
//! sessions, and the events about this shard's messages, which go to the
//! core's lifecycle (routing's own, `Route` and `Moved`, are handled here).
//!
//! Routing never loses a message: no rule → failed 4001 at once; no
//! available sender → the held queue, retried by the tick until
//! `routing.hold-timeout` (then failed 4002); a full session queue or a
//! session going down → back to routing.

use std::rc::Rc;

use super::Shard;
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::lifecycle::route::{self, PickAsk};
use crate::core::receipts::{Arrival, Receipt, ReceiptKey};
use crate::mesh::call;
use crate::mesh::msg::{MeshMsg, PickRequest, SessionMsg};
use crate::mesh::owner;
use crate::model::{MessageId, Outbound};
use crate::rt;
use crate::unix_ms;

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
    let early = shard.core.borrow_mut().receipts.index(unix_ms(), key, id);
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

/// A receipt another node offers for a key this shard owns: whether it
/// was one of this node's messages (then it ends as if it had come here).
pub fn offered_receipt(shard: &Shard, key: ReceiptKey, (delivered, code): (bool, u16)) -> bool {
    let Some(id) = shard.core.borrow_mut().receipts.offered(key) else {
        return false;
    };
    let fin = OwnerEvent::Final {
        id,
        delivered,
        code,
    };
    shard.to_owner(id, fin);
    true
}

/// A receipt arrived for a key this shard owns.
pub fn receipt(shard: &Rc<Shard>, key: ReceiptKey, delivered: bool, code: u16) {
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
        // Not indexed here (yet): with `[cluster]` it may be another
        // node's, after its bind went down.
        Arrival::Early => super::cluster::early_across(shard, key, (delivered, code)),
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
    rt::spawn_throughput(async move { route(&shard, ids).await });
}

/// Routes messages owned by this shard (`core::lifecycle::route`); the
/// picks are asked of the route keys' owners by the effects runner.
///
/// The picks are asked from this task, one route key after another, as the
/// routing of one batch always was (no task per key).
pub async fn route(shard: &Rc<Shard>, ids: Vec<MessageId>) {
    let snapshot = shard.snapshot();
    shard.feed(|c, now, fx| c.lifecycle.route(now, &snapshot, ids, fx));
    let asks = std::mem::take(&mut *shard.picks.borrow_mut());
    for ask in asks {
        ask_pick(shard.clone(), ask).await;
    }
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
        if let Err(back) = shard.senders.push(shard, &sender, outbound) {
            hold(shard, back.id);
        }
    } else {
        let items = vec![outbound];
        shard.send_to(dest, MeshMsg::Session(SessionMsg::Submit { sender, items }));
    }
}

/// Holds a message until a sender is available; fails it (4002) when the
/// held queue is full.
pub(super) fn hold(shard: &Shard, id: MessageId) {
    shard.feed(|core, now, fx| core.lifecycle.hold(now, id, fx));
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
        Some(m) if !m.status.is_final() => route::target_of(&snapshot, &m),
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
