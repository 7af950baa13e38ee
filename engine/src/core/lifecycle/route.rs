//! Routing a shard's messages (SPEC §1 Routing), decided without IO: the
//! route rule and carrier key of each message, the weighted pick asked of
//! the route key's owner ([`Effect::AskPick`], answered by
//! [`Lifecycle::picked`]), the sender of the picked group, and the hand-over
//! to a session ([`Effect::HandOver`]). Routing never loses a message: no
//! rule → failed 4001 at once; no available sender → held.
//!
//! A held message that is routed again keeps the time it started waiting,
//! so it still expires at the hold timeout.

use std::collections::BTreeMap;

use super::Lifecycle;
use crate::catalog::{SenderEntry, Snapshot};
use crate::codes::ResultCode;
use crate::core::lifecycle::ported::was_rerouted;
use crate::core::lifecycle::store::StoredMessage;
use crate::core::lifecycle::transition::Step;
use crate::core::{Effect, Effects};
use crate::model::{MessageId, Outbound, RouteTarget, Status};
use crate::routing::rule::RouteRule;

/// A weighted pick to ask of a route key's owner, for the messages of one
/// key (their targets differ at most in recipient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickAsk {
    /// The route (`<group>_<channel>`) whose weights apply.
    pub route_id: String,
    /// The customer whose rule applies (or `*`).
    pub rule_group: String,
    /// The key in the rule.
    pub carrier_key: String,
    /// The messages, each with its target.
    pub items: Vec<(MessageId, RouteTarget)>,
}

impl Lifecycle {
    /// Routes `ids` (this shard's): one pick asked per route key; a message
    /// without a route fails (4001, or 5004 for a ported number's second
    /// attempt). Messages no longer waiting to be routed are skipped.
    pub fn route(
        &mut self,
        now_ms: i64,
        snapshot: &Snapshot,
        ids: Vec<MessageId>,
        fx: &mut Effects,
    ) {
        let mut by_key: BTreeMap<(String, String), Vec<(MessageId, RouteTarget)>> = BTreeMap::new();
        let mut no_route = Vec::new();
        for id in ids {
            // A held message's head is read in place when it is cold.
            let Some(m) = self.store.head(id).filter(|m| waits_for_route(m.status)) else {
                continue;
            };
            let target = target_for(snapshot, m.channel, m.to);
            let rule = snapshot.route(m.group_code, m.channel);
            match rule.and_then(|r| r.key_for(&target.carrier).map(|k| (r, k.to_string()))) {
                Some((r, key)) => by_key
                    .entry((r.group_code.clone(), key))
                    .or_default()
                    .push((id, target)),
                None => no_route.push(id),
            }
        }
        let no_route: Vec<(MessageId, bool)> = no_route
            .into_iter()
            .map(|id| (id, self.store.get(id).is_some_and(|m| was_rerouted(&m))))
            .collect();
        for (id, ported) in no_route {
            let code = match ported {
                true => ResultCode::PortedOut,
                false => ResultCode::NoRoute,
            };
            self.fail(now_ms, id, code, None, fx);
        }
        for ((rule_group, carrier_key), items) in by_key {
            let route_id = RouteRule::id(&rule_group, items[0].1.channel);
            fx.push(Effect::AskPick(PickAsk {
                route_id,
                rule_group,
                carrier_key,
                items,
            }));
        }
    }

    /// The route key's owner picked a group for each message of `ask` (or
    /// nothing available): each goes to a sender of its group on `shard`'s
    /// side, or waits in the held queue.
    pub fn picked(
        &mut self,
        now_ms: i64,
        snapshot: &Snapshot,
        shard: usize,
        ask: PickAsk,
        picks: Vec<Option<String>>,
        fx: &mut Effects,
    ) {
        for ((id, target), group) in ask.items.into_iter().zip(picks) {
            // The pick was asked across an await: a message that meanwhile
            // went out another way, ended, or waits in the held queue again
            // must not be queued a second time.
            let waiting = self
                .store
                .head(id)
                .is_some_and(|m| waits_for_route(m.status));
            if !waiting || self.held.contains(id) {
                continue;
            }
            let Some(group) = group else {
                self.hold(now_ms, id, fx);
                continue;
            };
            // A message routed again after a failed attempt tries another
            // sender of the group.
            let last = self
                .store
                .head(id)
                .and_then(|m| m.sender.map(str::to_string));
            match choose_sender(snapshot, &group, &target, shard, last.as_deref()) {
                Some(entry) => self.hand_to_sender(now_ms, shard, entry, id, target, fx),
                None => self.hold(now_ms, id, fx),
            }
        }
    }

    /// Queues `id` at `entry`'s sender: a session on this shard if it has
    /// one, else on a shard that does; held when none is up.
    pub fn hand_to_sender(
        &mut self,
        now_ms: i64,
        shard: usize,
        entry: &SenderEntry,
        id: MessageId,
        target: RouteTarget,
        fx: &mut Effects,
    ) {
        if !self
            .store
            .head(id)
            .is_some_and(|m| waits_for_route(m.status))
        {
            return;
        }
        let Some(dest) = entry.live.shard_for(shard, id.seq() as usize) else {
            return self.hold(now_ms, id, fx);
        };
        let Some(m) = self.store.get(id) else { return };
        let request = m.request.unpack();
        let outbound = Outbound {
            id,
            channel: m.request.channel,
            from: request.from.unwrap_or_default(),
            to: request.to,
            text: request.text,
            subject: request.subject,
            template_code: request.template_code,
            vars: request.vars,
            international: target.carrier == "INTL",
            expires_at_ms: self.store.expires_at_ms(&m),
            class: super::store::class_of(&m.request),
            origin_code: request.origin_code,
            attachments: request.attachments,
        };
        let sender = entry.config.name.clone();
        let step = Step {
            sender: Some(sender.clone()),
            carrier: Some(target.carrier),
            ..Step::to(Status::Queued, ResultCode::Accepted.as_u16())
        };
        self.stop_retrying(id);
        self.transition(now_ms, id, step, fx);
        fx.push(Effect::HandOver {
            dest,
            sender,
            outbound: Box::new(outbound),
        });
    }
}

/// Whether a message still waits to be routed: accepted, scheduled, or
/// queued (routed again after a bounce or a failed attempt).
fn waits_for_route(status: Status) -> bool {
    matches!(
        status,
        Status::Accepted | Status::Queued | Status::Scheduled
    )
}

/// The routing target of a message: its channel, recipient and carrier (by
/// number portability for phone channels; `INTL` for `+` numbers).
pub fn target_of(snapshot: &Snapshot, m: &StoredMessage) -> RouteTarget {
    target_for(snapshot, m.request.channel, m.request.to())
}

/// The routing target of a message on `channel` to `to` (see
/// [`target_of`]).
fn target_for(snapshot: &Snapshot, channel: crate::model::Channel, to: &str) -> RouteTarget {
    let carrier = if to.starts_with('+') {
        "INTL".to_string()
    } else if channel.is_phone() {
        snapshot.pnx.lookup(to).0.to_string()
    } else {
        "*".to_string()
    };
    RouteTarget {
        channel,
        to: to.to_string(),
        carrier,
    }
}

/// Whether `group` has a sender that can carry `target`.
pub fn group_available(snapshot: &Snapshot, group: &str, target: &RouteTarget) -> bool {
    snapshot
        .senders
        .values()
        .any(|e| e.config.group == group && e.fits(target))
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
        .filter(|e| e.config.group == group && e.fits(target))
        .min_by_key(|e| {
            (
                avoid == Some(e.config.name.as_str()),
                e.live.load(),
                !e.live.up_on(shard),
            )
        })
}
