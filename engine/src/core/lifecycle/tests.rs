//! The lifecycle rules as tables: every (status × step) of `transition`,
//! and the refund rule, at exact times.

use super::store::LocalMessages;
use super::transition::{net_charge, refunded, transition, FinalObservation, Step};
use crate::codec::{AcceptedRecord, Record, StateRecord};
use crate::core::{Effect, Effects};
use crate::model::{Channel, MessageId, MessageRequest, Status};

const ALL: [Status; 8] = [
    Status::Accepted,
    Status::Scheduled,
    Status::Queued,
    Status::Submitted,
    Status::Delivered,
    Status::Failed,
    Status::Canceled,
    Status::Rejected,
];

const T0: i64 = 1_700_000_000_000;
const PRICE: i64 = 10;

fn request() -> MessageRequest {
    MessageRequest {
        src_msg_id: "m1".into(),
        channel: Channel::Sms,
        bill_code: "B1".into(),
        from: Some("0212345678".into()),
        to: "01012345678".into(),
        text: "hello".into(),
        subject: None,
        ad: false,
        send_at: None,
        template_code: None,
        vars: vec![],
        attachments: vec![],
        fallback: vec![],
        email: None,
        push: None,
        parts: 1,
    }
}

fn id() -> MessageId {
    MessageId::new(0, 1)
}

/// A store holding one message that reached `status` the usual way
/// (through `submitted` when `submitted`), with a prepaid price.
fn store_at(status: Status, submitted: bool) -> LocalMessages {
    let mut store = LocalMessages::default();
    let first = if status == Status::Scheduled {
        Status::Scheduled
    } else {
        Status::Accepted
    };
    store.apply_accepted(AcceptedRecord {
        id: id(),
        group_code: "A1".into(),
        client_id: "c1".into(),
        created_at_ms: T0,
        status: first,
        price: PRICE,
        fallback_of: None,
        request: request(),
    });
    let mut path = Vec::new();
    if !matches!(status, Status::Accepted | Status::Scheduled) {
        path.push(Status::Queued);
    }
    if submitted {
        path.push(Status::Submitted);
    }
    if path.last() != Some(&status) && status != first {
        path.push(status);
    }
    for (i, s) in path.into_iter().enumerate() {
        store.apply_state(StateRecord {
            id: id(),
            status: s,
            code: 1000,
            at_ms: T0 + 10 * (i as i64 + 1),
            sender: None,
            carrier: None,
            carrier_msg_id: None,
        });
    }
    assert_eq!(store.get(id()).map(|m| m.status), Some(status));
    store
}

/// What `transition` is expected to push besides the log record.
fn expected(from: Status, to: Status, submitted: bool, now: i64) -> Vec<Effect> {
    let mut fx = Vec::new();
    if from.is_final() {
        return fx;
    }
    if matches!(to, Status::Failed | Status::Canceled | Status::Rejected) && !submitted {
        fx.push(Effect::Refund {
            group: "A1".into(),
            amount: PRICE,
        });
    }
    if to.is_final() {
        fx.push(Effect::Observe(FinalObservation {
            channel: Channel::Sms,
            status: to,
            code: 4000,
            took_ms: (now - T0) as u64,
        }));
        if to == Status::Failed {
            fx.push(Effect::Fallback(id()));
        }
        fx.push(Effect::ReportWhenDurable(id()));
    }
    fx
}

#[test]
fn every_status_by_every_step() {
    let now = T0 + 5_000;
    let mut cases = 0;
    for from in ALL {
        for submitted in [false, true] {
            // Only a message that went through `submitted` can be delivered
            // or be submitted now; one that is accepted or scheduled has not.
            let possible = match from {
                Status::Submitted | Status::Delivered => submitted,
                Status::Accepted | Status::Scheduled => !submitted,
                _ => true,
            };
            if !possible {
                continue;
            }
            for to in ALL {
                let mut store = store_at(from, submitted);
                let mut fx = Effects::default();
                transition(&mut store, now, id(), Step::to(to, 4000), &mut fx);
                let effects: Vec<Effect> = fx.drain().collect();
                let log = Effect::Log(Record::State(StateRecord {
                    id: id(),
                    status: to,
                    code: 4000,
                    at_ms: now,
                    sender: None,
                    carrier: None,
                    carrier_msg_id: None,
                }));
                assert_eq!(effects[0], log, "{from:?} → {to:?}: logged first");
                assert_eq!(
                    effects[1..],
                    expected(from, to, submitted, now)[..],
                    "{from:?} (submitted: {submitted}) → {to:?}"
                );
                // The record is applied as replay would apply it.
                let m = store.get(id()).expect("message");
                assert_eq!((m.status, m.code, m.updated_at_ms), (to, 4000, now));
                cases += 1;
            }
        }
    }
    // 12 reachable starting points (8 statuses, 4 of them with and
    // without a submit behind them) × 8 steps.
    assert_eq!(cases, 12 * 8, "every reachable (status × step)");
}

#[test]
fn an_unknown_message_is_logged_and_nothing_else() {
    let mut store = LocalMessages::default();
    let mut fx = Effects::default();
    transition(
        &mut store,
        T0,
        id(),
        Step::to(Status::Failed, 4001),
        &mut fx,
    );
    assert_eq!(fx.as_slice().len(), 1);
    assert!(matches!(fx.as_slice()[0], Effect::Log(_)));
}

#[test]
fn the_step_sets_sender_carrier_and_carrier_id() {
    let mut store = store_at(Status::Queued, false);
    let mut fx = Effects::default();
    let step = Step {
        sender: Some("G_S_KT01".into()),
        carrier: Some("KT".into()),
        carrier_msg_id: Some("00ab".into()),
        ..Step::to(Status::Submitted, 1000)
    };
    transition(&mut store, T0 + 1, id(), step, &mut fx);
    let m = store.get(id()).expect("message");
    assert_eq!(
        (
            m.sender.as_deref(),
            m.carrier.as_deref(),
            m.carrier_msg_id.as_deref()
        ),
        (Some("G_S_KT01"), Some("KT"), Some("00ab"))
    );
}

#[test]
fn refund_rule_table() {
    // (final status, price, submitted) → refunded
    let table = [
        (Status::Failed, 10, false, true),
        (Status::Canceled, 10, false, true),
        (Status::Rejected, 10, false, true),
        (Status::Delivered, 10, false, false),
        (Status::Failed, 10, true, false),
        (Status::Canceled, 10, true, false),
        (Status::Failed, 0, false, false),
    ];
    for (status, price, submitted, want) in table {
        assert_eq!(
            refunded(status, price, submitted),
            want,
            "{status:?} price {price} submitted {submitted}"
        );
    }
}

#[test]
fn net_charge_after_replay_matches_the_runtime_refund() {
    // What start-up counts for each final message equals the price minus
    // what the runtime refunded on the way there.
    for (to, submitted, net) in [
        (Status::Failed, false, 0),
        (Status::Failed, true, PRICE),
        (Status::Delivered, true, PRICE),
        (Status::Canceled, false, 0),
        (Status::Rejected, false, 0),
    ] {
        let from = if submitted {
            Status::Submitted
        } else {
            Status::Queued
        };
        let mut store = store_at(from, submitted);
        let mut fx = Effects::default();
        transition(&mut store, T0 + 1, id(), Step::to(to, 4000), &mut fx);
        let refund: i64 = fx
            .drain()
            .filter_map(|e| match e {
                Effect::Refund { amount, .. } => Some(amount),
                _ => None,
            })
            .sum();
        let m = store.get(id()).expect("message");
        assert_eq!(net_charge(m), net, "{to:?} submitted {submitted}");
        assert_eq!(PRICE - refund, net, "runtime and replay agree for {to:?}");
    }
    // A message still in flight keeps its charge.
    let store = store_at(Status::Queued, false);
    assert_eq!(net_charge(store.get(id()).expect("message")), PRICE);
}
