//! The lifecycle rules as tables: every (status × step) of `transition`,
//! and the refund rule, at exact times.

use super::store::LocalMessages;
use super::transition::{net_charge, refunded, transition, FinalObservation, Step};
use crate::codec::{AcceptedRecord, Record, StateRecord};
use crate::core::{Effect, Effects};
use crate::model::{Channel, MessageId, MessageRequest, Status};

const ALL: [Status; 8] = Status::ALL;

const T0: i64 = 1_700_000_000_000;

/// Two webhook retries, one second apart at first.
const CONFIG: super::LifecycleConfig = super::LifecycleConfig {
    report_retries: 2,
    report_retry_unit_ms: 1_000,
};
const PRICE: i64 = 10;

fn request() -> MessageRequest {
    MessageRequest::test_sms("m1")
}

fn id() -> MessageId {
    MessageId::new(0, 1)
}

/// The accepted record of message `id()` of customer A1 at T0.
fn accepted(status: Status, price: i64, request: MessageRequest) -> AcceptedRecord {
    AcceptedRecord {
        id: id(),
        group_code: "A1".into(),
        client_id: "c1".into(),
        created_at_ms: T0,
        status,
        price,
        fallback_of: None,
        request,
    }
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
    store.apply_accepted(accepted(first, PRICE, request()));
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
        assert_eq!(net_charge(&m), net, "{to:?} submitted {submitted}");
        assert_eq!(PRICE - refund, net, "runtime and replay agree for {to:?}");
    }
    // A message still in flight keeps its charge.
    let store = store_at(Status::Queued, false);
    assert_eq!(net_charge(&store.get(id()).expect("message")), PRICE);
}

mod owner_events {
    //! `Lifecycle::on_owner`: one table per event, at exact times.

    use super::*;
    use crate::codec::ReportRecord;
    use crate::codes::ResultCode;
    use crate::core::lifecycle::events::OwnerEvent;
    use crate::core::lifecycle::{Lifecycle, MAX_ATTEMPTS};
    use crate::core::receipts::ReceiptKey;
    use crate::core::Due;

    fn lifecycle_at(status: Status, submitted: bool) -> Lifecycle {
        Lifecycle::new(store_at(status, submitted), CONFIG)
    }

    fn on(l: &mut Lifecycle, now: i64, ev: OwnerEvent) -> Vec<Effect> {
        let mut fx = Effects::default();
        l.on_owner(now, ev, &mut fx);
        fx.drain().collect()
    }

    fn status(l: &Lifecycle) -> (Status, u16) {
        let m = l.store.get(id()).expect("message");
        (m.status, m.code)
    }

    /// The kinds of the effects, for tables.
    fn kinds(effects: &[Effect]) -> Vec<&'static str> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Log(Record::State(_)) => "log-state",
                Effect::Log(Record::Report(_)) => "log-report",
                Effect::Log(_) => "log-other",
                Effect::Refund { .. } => "refund",
                Effect::BacklogBack { .. } => "backlog-back",
                Effect::Observe(_) => "observe",
                Effect::Fallback(_) => "fallback",
                Effect::ReportWhenDurable(_) => "report",
                Effect::IndexReceipt { .. } => "index-receipt",
                Effect::Route(_) => "route",
                Effect::PnxWrite { .. } => "pnx-write",
                Effect::Schedule { .. } => "schedule",
                Effect::AskPick(_) => "ask-pick",
                Effect::HandOver { .. } => "hand-over",
            })
            .collect()
    }

    #[test]
    fn submitted_records_the_carrier_id_and_indexes_it() {
        let mut l = lifecycle_at(Status::Queued, false);
        let ev = OwnerEvent::Submitted {
            id: id(),
            sender: "G_S_KT01".into(),
            carrier_id: "00ab".into(),
            key: ReceiptKey::new("G_S_KT01", "ab"),
        };
        let fx = on(&mut l, T0 + 5, ev);
        assert_eq!(kinds(&fx), vec!["log-state", "index-receipt"]);
        assert_eq!(
            fx[1],
            Effect::IndexReceipt {
                key: ReceiptKey::new("G_S_KT01", "ab"),
                id: id()
            }
        );
        let m = l.store.get(id()).expect("message");
        assert_eq!(
            (m.status, m.sender.as_deref(), m.carrier_msg_id.as_deref()),
            (Status::Submitted, Some("G_S_KT01"), Some("00ab"))
        );
    }

    #[test]
    fn transient_failures_route_again_until_the_last_attempt() {
        let mut l = lifecycle_at(Status::Queued, false);
        let failed = || OwnerEvent::SubmitFailed {
            id: id(),
            sender: "S".into(),
            code: ResultCode::ProviderError,
            retry: true,
            detail: "busy".into(),
        };
        for attempt in 1..MAX_ATTEMPTS {
            let fx = on(&mut l, T0 + i64::from(attempt), failed());
            assert_eq!(fx, vec![Effect::Route(id())], "attempt {attempt}");
            assert_eq!(status(&l).0, Status::Queued);
        }
        // The 10th failure ends it with the carrier's code; it never reached
        // a carrier, so its charge is refunded.
        let fx = on(&mut l, T0 + 100, failed());
        assert_eq!(
            kinds(&fx),
            vec!["log-state", "refund", "observe", "fallback", "report"]
        );
        assert_eq!(status(&l), (Status::Failed, 5006));
        assert_eq!(
            l.store.get(id()).and_then(|m| m.sender.clone()).as_deref(),
            Some("S")
        );
    }

    #[test]
    fn a_final_refusal_fails_at_once_and_a_final_word_resets_attempts() {
        let mut l = lifecycle_at(Status::Queued, false);
        let ev = OwnerEvent::SubmitFailed {
            id: id(),
            sender: "S".into(),
            code: ResultCode::RejectedByCarrier,
            retry: false,
            detail: "no".into(),
        };
        on(&mut l, T0 + 1, ev);
        assert_eq!(status(&l), (Status::Failed, 5003));
        // Attempts are counted per message and forgotten when it ends.
        let mut l = lifecycle_at(Status::Queued, false);
        for n in 1..=3 {
            assert_eq!(l.attempt_failed(id()), n);
        }
        l.forget_attempts(id());
        assert_eq!(l.attempt_failed(id()), 1);
    }

    #[test]
    fn a_bounced_message_is_held_and_fails_when_the_held_queue_is_full() {
        let mut l = lifecycle_at(Status::Queued, false);
        let fx = on(&mut l, T0 + 7, OwnerEvent::Bounced { id: id() });
        assert!(fx.is_empty());
        assert!(l.held.contains(id()));
        // Its first retry is due 200 ms after it was held.
        assert!(l.held.take(T0 + 206, 1_000, 10).retry.is_empty());
        let retry = crate::core::held::Retry {
            id: id(),
            since_ms: T0 + 7,
            tries: 0,
        };
        assert_eq!(l.held.take(T0 + 207, 1_000, 10).retry, vec![retry]);
        let mut l = lifecycle_at(Status::Queued, false);
        l.held = crate::core::held::HeldQueue::new(0);
        on(&mut l, T0 + 7, OwnerEvent::Bounced { id: id() });
        assert_eq!(status(&l), (Status::Failed, 4002));
    }

    #[test]
    fn the_carriers_final_word_ends_the_message() {
        for (delivered, code, want) in [
            (true, 2000, Status::Delivered),
            (false, 5001, Status::Failed),
        ] {
            let mut l = lifecycle_at(Status::Submitted, true);
            let ev = OwnerEvent::Final {
                id: id(),
                delivered,
                code,
            };
            let fx = on(&mut l, T0 + 9, ev);
            assert_eq!(status(&l), (want, code));
            let expected = if delivered {
                vec!["log-state", "observe", "report"]
            } else {
                vec!["log-state", "observe", "fallback", "report"]
            };
            assert_eq!(kinds(&fx), expected, "submitted: no refund");
        }
    }

    #[test]
    fn a_ported_out_number_is_rerouted_once_then_fails() {
        let mut l = lifecycle_at(Status::Submitted, true);
        let ported = || OwnerEvent::Final {
            id: id(),
            delivered: false,
            code: 5004,
        };
        let fx = on(&mut l, T0 + 1, ported());
        assert_eq!(status(&l), (Status::Queued, 5004));
        assert_eq!(
            fx[1],
            Effect::PnxWrite {
                number: "01012345678".into(),
                id: id()
            }
        );
        assert!(crate::core::lifecycle::ported::awaits_pnx(
            &l.store.get(id()).expect("message")
        ));
        let fx = on(&mut l, T0 + 2, ported());
        assert_eq!(status(&l), (Status::Failed, 5004));
        assert_eq!(
            kinds(&fx),
            vec!["log-state", "observe", "fallback", "report"]
        );
    }

    #[test]
    fn events_about_a_final_message_change_nothing() {
        let mut l = lifecycle_at(Status::Delivered, true);
        for ev in [
            OwnerEvent::Bounced { id: id() },
            OwnerEvent::Final {
                id: id(),
                delivered: false,
                code: 5001,
            },
            OwnerEvent::Submitted {
                id: id(),
                sender: "S".into(),
                carrier_id: "1".into(),
                key: crate::core::receipts::ReceiptKey::new("S", "1"),
            },
        ] {
            assert!(on(&mut l, T0 + 1, ev).is_empty());
        }
        assert_eq!(status(&l).0, Status::Delivered);
        assert!(!l.held.contains(id()));
    }

    #[test]
    fn report_outcomes_follow_the_retry_schedule_then_give_up() {
        let mut l = lifecycle_at(Status::Delivered, true);
        let outcome = |delivered| OwnerEvent::ReportOutcome {
            id: id(),
            delivered,
        };
        let report = |fx: &[Effect]| {
            fx.iter()
                .find_map(|e| match e {
                    Effect::Log(Record::Report(r)) => Some(r.clone()),
                    _ => None,
                })
                .expect("a report record")
        };
        let scheduled = |fx: &[Effect]| {
            fx.iter()
                .find(|e| matches!(e, Effect::Schedule { .. }))
                .cloned()
        };
        // 1st failure: retry 1 unit later; 2nd: 3 units later.
        let fx = on(&mut l, T0, outcome(false));
        assert_eq!(
            scheduled(&fx),
            Some(Effect::Schedule {
                at_ms: T0 + 1_000,
                due: Due::ReportRetry(id())
            })
        );
        assert_eq!(
            report(&fx),
            ReportRecord {
                id: id(),
                failures: 1,
                due_ms: T0 + 1_000,
                done: false,
                abandoned: false
            }
        );
        let fx = on(&mut l, T0 + 1_000, outcome(false));
        assert_eq!(
            scheduled(&fx),
            Some(Effect::Schedule {
                at_ms: T0 + 4_000,
                due: Due::ReportRetry(id())
            })
        );
        // The 3rd failure is past the 2 retries: abandoned, nothing scheduled.
        let fx = on(&mut l, T0 + 4_000, outcome(false));
        assert_eq!(kinds(&fx), vec!["log-report"]);
        assert!(report(&fx).abandoned);
        // Nothing more for an abandoned (or delivered) report.
        assert!(on(&mut l, T0 + 5_000, outcome(true)).is_empty());
        let mut l = lifecycle_at(Status::Failed, false);
        let fx = on(&mut l, T0, outcome(true));
        assert!(report(&fx).done);
        assert!(on(&mut l, T0, outcome(false)).is_empty());
    }
}

mod commands {
    //! Fallback, cancel and held expiry, at exact times.

    use super::*;
    use crate::codes::ResultCode;
    use crate::core::lifecycle::cancel::CancelDecision;
    use crate::core::lifecycle::Lifecycle;
    use crate::model::FallbackStep;

    fn rcs_with_fallback() -> Lifecycle {
        let mut store = LocalMessages::default();
        let mut request = request();
        request.channel = Channel::Rcs;
        request.fallback = vec![
            FallbackStep {
                channel: Channel::Kko,
                text: "kko".into(),
                subject: None,
                template_code: Some("T1".into()),
            },
            FallbackStep {
                channel: Channel::Lms,
                text: "lms".into(),
                subject: Some("s".into()),
                template_code: None,
            },
        ];
        store.apply_accepted(accepted(Status::Accepted, PRICE, request));
        Lifecycle::new(store, CONFIG)
    }

    #[test]
    fn a_failed_rcs_message_gets_its_fallback_once() {
        let mut l = rcs_with_fallback();
        let mut fx = Effects::default();
        let next = MessageId::new(0, 2);
        l.fallback(T0 + 50, id(), || next, &mut fx);
        let effects: Vec<Effect> = fx.drain().collect();
        assert!(matches!(effects[0], Effect::Log(Record::Accepted(_))));
        assert!(matches!(effects[1], Effect::Log(Record::Link(_))));
        assert_eq!(effects[2], Effect::Route(next));
        let f = l.store.get(next).expect("fallback message");
        let r = f.request.unpack();
        assert_eq!(
            (r.channel, r.text.as_str(), f.price),
            (Channel::Kko, "kko", 0)
        );
        assert_eq!(r.src_msg_id, "m1#fallback8");
        assert_eq!(r.fallback.len(), 1, "the rest of the chain");
        assert_eq!(f.links.back(), Some(id()));
        assert_eq!(
            l.store.get(id()).and_then(|m| m.links.forward()),
            Some(next)
        );
        // Only once per message.
        l.fallback(T0 + 60, id(), || panic!("no second id"), &mut fx);
        assert!(fx.as_slice().is_empty());
        // An SMS has no chain.
        let mut l = Lifecycle::new(store_at(Status::Failed, false), CONFIG);
        l.fallback(T0, id(), || panic!("no id"), &mut fx);
        assert!(fx.as_slice().is_empty());
    }

    #[test]
    fn cancel_table() {
        // (status, held, unqueued answer) → decision
        let cases: Vec<(Status, bool, Option<bool>, CancelDecision)> = vec![
            (Status::Accepted, false, None, CancelDecision::Canceled),
            (Status::Scheduled, false, None, CancelDecision::Canceled),
            (Status::Queued, true, None, CancelDecision::Canceled),
            (
                Status::Queued,
                false,
                None,
                CancelDecision::NeedsUnqueue("S".into()),
            ),
            (Status::Queued, false, Some(true), CancelDecision::Canceled),
            (
                Status::Queued,
                false,
                Some(false),
                CancelDecision::NotCancelable(Status::Queued),
            ),
            (
                Status::Submitted,
                false,
                Some(true),
                CancelDecision::NotCancelable(Status::Submitted),
            ),
            (
                Status::Delivered,
                false,
                None,
                CancelDecision::NotCancelable(Status::Delivered),
            ),
        ];
        for (status, held, unqueued, want) in cases {
            let submitted = matches!(status, Status::Submitted | Status::Delivered);
            let mut store = store_at(status, submitted);
            if status == Status::Queued {
                store.apply_state(StateRecord {
                    id: id(),
                    status: Status::Queued,
                    code: 1000,
                    at_ms: T0 + 100,
                    sender: Some("S".into()),
                    carrier: None,
                    carrier_msg_id: None,
                });
            }
            let mut l = Lifecycle::new(store, CONFIG);
            if held {
                l.held.hold(id(), T0, 0, T0);
            }
            let mut fx = Effects::default();
            let got = l.cancel(T0 + 200, id(), "A1", unqueued, &mut fx);
            assert_eq!(got, want, "{status:?} held {held} unqueued {unqueued:?}");
            let m = l.store.get(id()).expect("message");
            if want == CancelDecision::Canceled {
                assert_eq!((m.status, m.code), (Status::Canceled, 6001));
                assert!(!l.held.contains(id()));
                // Never submitted: the charge comes back.
                assert!(fx.as_slice().contains(&Effect::Refund {
                    group: "A1".into(),
                    amount: PRICE
                }));
            } else {
                assert!(fx.as_slice().is_empty(), "{status:?}: nothing changes");
            }
        }
        // Another customer's message is not found.
        let mut l = Lifecycle::new(store_at(Status::Accepted, false), CONFIG);
        let mut fx = Effects::default();
        assert_eq!(
            l.cancel(T0, id(), "B2", None, &mut fx),
            CancelDecision::NotFound
        );
    }

    #[test]
    fn held_messages_expire_at_their_first_retry_past_the_hold_timeout() {
        let mut l = Lifecycle::new(store_at(Status::Queued, false), CONFIG);
        l.held.hold(id(), T0, 0, T0);
        let mut fx = Effects::default();
        assert_eq!(
            l.expire_held(T0 + 999, 1_000, 10, false, &mut fx),
            vec![id()]
        );
        assert!(fx.as_slice().is_empty());
        // Held again at T0 + 999, its next retry is 400 ms later.
        l.held.hold(id(), T0, 1, T0 + 999);
        assert!(l
            .expire_held(T0 + 1_398, 1_000, 10, false, &mut fx)
            .is_empty());
        assert_eq!(l.store.get(id()).map(|m| m.status), Some(Status::Queued));
        assert!(l
            .expire_held(T0 + 1_399, 1_000, 10, false, &mut fx)
            .is_empty());
        let m = l.store.get(id()).expect("message");
        assert_eq!(
            (m.status, m.code),
            (Status::Failed, ResultCode::NoAvailableSender.as_u16())
        );
    }
}

mod routing {
    //! `Lifecycle::route` and `picked`: the pick asked per route key, the
    //! sender chosen in the picked group, held when none fits, 4001 without
    //! a rule.

    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    use super::*;
    use crate::catalog::{SenderEntry, Snapshot};
    use crate::core::lifecycle::route::PickAsk;
    use crate::core::lifecycle::Lifecycle;
    use crate::model::RouteTarget;
    use crate::routing::pnx::PnxTable;
    use crate::routing::rule::{GroupRatio, RouteRule};
    use crate::sender::live::SenderLive;
    use crate::sender::{Ability, SenderConfig, SimConfig, Transport};

    /// Group G with sender S1 (bound on shard 1 of 2) and S2 (not bound);
    /// A1's SMS to KT numbers go to G.
    fn snapshot() -> Snapshot {
        let mut senders = BTreeMap::new();
        for (name, up) in [("S1", true), ("S2", false)] {
            let live = Arc::new(SenderLive::new(2));
            if up {
                live.session_changed(1, true);
            }
            let config = SenderConfig {
                name: name.into(),
                group: "G".into(),
                channels: vec![Channel::Sms],
                carriers: vec!["KT".into()],
                nat_cd: "82".into(),
                ability: Ability::Available,
                transport: Transport::Sim(SimConfig {
                    latency_ms: 1,
                    success_rate: 1.0,
                    dlr_delay_ms: 1,
                    tps: 0,
                }),
                remark: None,
                nodes: None,
            };
            senders.insert(name.to_string(), SenderEntry { config, live });
        }
        let ratios = vec![GroupRatio {
            sender_group: "G".into(),
            ratio: 1,
        }];
        let rule = RouteRule {
            route_id: RouteRule::id("A1", Channel::Sms),
            group_code: "A1".into(),
            channel: Channel::Sms,
            carriers: BTreeMap::from([("KT".to_string(), ratios)]),
            remark: None,
        };
        Snapshot {
            senders,
            routes: HashMap::from([(("A1".to_string(), Channel::Sms), rule)]),
            pnx: Arc::new(PnxTable::with_prefixes(&[("010".into(), "KT".into())])),
            ..Snapshot::default()
        }
    }

    fn effects(fx: &mut Effects) -> Vec<Effect> {
        fx.drain().collect()
    }

    #[test]
    fn a_routed_message_is_picked_then_handed_to_a_bound_sender() {
        let snap = snapshot();
        let mut l = Lifecycle::new(store_at(Status::Accepted, false), CONFIG);
        let mut fx = Effects::default();
        l.route(T0, &snap, vec![id()], &mut fx);
        let target = RouteTarget {
            channel: Channel::Sms,
            to: "01012345678".into(),
            carrier: "KT".into(),
        };
        let ask = PickAsk {
            route_id: "A1_SMS".into(),
            rule_group: "A1".into(),
            carrier_key: "KT".into(),
            items: vec![(id(), target)],
        };
        assert_eq!(effects(&mut fx), vec![Effect::AskPick(ask.clone())]);
        l.picked(T0 + 3, &snap, 0, ask, vec![Some("G".into())], &mut fx);
        let fx = effects(&mut fx);
        // Queued at S1 (S2 is not bound), handed to S1's session on shard 1.
        let m = l.store.get(id()).expect("message");
        assert_eq!(
            (m.status, m.sender.as_deref(), m.carrier.as_deref()),
            (Status::Queued, Some("S1"), Some("KT"))
        );
        match &fx[1] {
            Effect::HandOver {
                dest,
                sender,
                outbound,
            } => assert_eq!(
                (
                    *dest,
                    sender.as_str(),
                    outbound.to.as_str(),
                    outbound.international
                ),
                (1, "S1", "01012345678", false)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_picked_holds_and_no_rule_fails_4001() {
        let snap = snapshot();
        let mut l = Lifecycle::new(store_at(Status::Accepted, false), CONFIG);
        let mut fx = Effects::default();
        l.route(T0, &snap, vec![id()], &mut fx);
        let Some(Effect::AskPick(ask)) = effects(&mut fx).pop() else {
            panic!("a pick")
        };
        l.picked(T0 + 1, &snap, 0, ask, vec![None], &mut fx);
        assert!(effects(&mut fx).is_empty());
        assert!(l.held.contains(id()));
        // Not due yet (200 ms), but a wake (a sender came up) retries it.
        assert!(l.expire_held(T0 + 10, 5_000, 10, false, &mut fx).is_empty());
        assert_eq!(l.expire_held(T0 + 10, 5_000, 10, true, &mut fx), vec![id()]);
        // Held again: it keeps the time it started waiting, counts one
        // more try and waits twice as long (400 ms) for the next one.
        l.hold(T0 + 20, id(), &mut fx);
        assert!(l.held.take(T0 + 419, 5_000, 10).retry.is_empty());
        let retry = crate::core::held::Retry {
            id: id(),
            since_ms: T0 + 1,
            tries: 1,
        };
        assert_eq!(l.held.take(T0 + 420, 5_000, 10).retry, vec![retry]);
        // Without a rule for the customer: 4001 at once.
        let mut l = Lifecycle::new(store_at(Status::Accepted, false), CONFIG);
        l.route(T0, &Snapshot::default(), vec![id()], &mut fx);
        let m = l.store.get(id()).expect("message");
        assert_eq!((m.status, m.code), (Status::Failed, 4001));
    }

    #[test]
    fn a_pick_that_comes_back_after_the_message_moved_on_changes_nothing() {
        let snap = snapshot();
        let mut l = Lifecycle::new(store_at(Status::Accepted, false), CONFIG);
        let mut fx = Effects::default();
        l.route(T0, &snap, vec![id()], &mut fx);
        let Some(Effect::AskPick(ask)) = effects(&mut fx).pop() else {
            panic!("a pick")
        };
        // While the pick was asked, the message was held again...
        l.hold(T0 + 1, id(), &mut fx);
        l.picked(
            T0 + 2,
            &snap,
            0,
            ask.clone(),
            vec![Some("G".into())],
            &mut fx,
        );
        assert!(effects(&mut fx).is_empty(), "not queued while held");
        // ...or went out and was delivered.
        let mut l = Lifecycle::new(store_at(Status::Delivered, true), CONFIG);
        l.picked(T0 + 2, &snap, 0, ask, vec![Some("G".into())], &mut fx);
        assert!(
            effects(&mut fx).is_empty(),
            "a delivered message stays delivered"
        );
        assert_eq!(l.store.get(id()).map(|m| m.status), Some(Status::Delivered));
    }

    #[test]
    fn only_messages_waiting_for_a_route_are_routed() {
        let snap = snapshot();
        for status in [Status::Submitted, Status::Delivered] {
            let mut l = Lifecycle::new(store_at(status, true), CONFIG);
            let mut fx = Effects::default();
            l.route(T0, &snap, vec![id()], &mut fx);
            assert!(effects(&mut fx).is_empty(), "{status:?}");
        }
    }
}

#[test]
fn effects_stay_small() {
    // They are moved in and out of the buffer several times per message.
    assert!(
        std::mem::size_of::<Effect>() <= 112,
        "{}",
        std::mem::size_of::<Effect>()
    );
    assert!(std::mem::size_of::<Record>() <= 104);
}

mod validity {
    //! SPEC §5.1: a message without a final result when its validity ends
    //! fails with 5007 and is reported once; a later receipt is an event.

    use super::*;
    use crate::codes::ResultCode;
    use crate::core::lifecycle::events::OwnerEvent;
    use crate::core::lifecycle::Lifecycle;

    /// The test request's validity: the store's default, a day.
    const DAY_MS: i64 = 86_400_000;

    fn expire(l: &mut Lifecycle, now: i64) -> Vec<Effect> {
        let mut fx = Effects::default();
        l.expire_due(now, usize::MAX, &mut fx);
        fx.drain().collect()
    }

    fn status(l: &Lifecycle) -> (Status, u16) {
        let m = l.store.get(id()).expect("message");
        (m.status, m.code)
    }

    #[test]
    fn every_live_status_expires_exactly_at_the_end_of_its_validity() {
        for (from, submitted) in [
            (Status::Accepted, false),
            (Status::Scheduled, false),
            (Status::Queued, false),
            (Status::Submitted, true),
        ] {
            let mut l = Lifecycle::new(store_at(from, submitted), CONFIG);
            assert!(expire(&mut l, T0 + DAY_MS - 1).is_empty(), "{from:?}");
            assert_eq!(status(&l).0, from);
            let fx = expire(&mut l, T0 + DAY_MS);
            let expired = ResultCode::Expired.as_u16();
            assert_eq!(status(&l), (Status::Failed, expired), "{from:?}");
            let mut want = vec![Effect::Log(Record::State(StateRecord {
                id: id(),
                status: Status::Failed,
                code: expired,
                at_ms: T0 + DAY_MS,
                sender: None,
                carrier: None,
                carrier_msg_id: None,
            }))];
            if !submitted {
                want.push(Effect::Refund {
                    group: "A1".into(),
                    amount: PRICE,
                });
            }
            want.push(Effect::Observe(FinalObservation {
                channel: Channel::Sms,
                status: Status::Failed,
                code: expired,
                took_ms: DAY_MS as u64,
            }));
            // No fallback: the validity covered the whole chain.
            want.push(Effect::ReportWhenDurable(id()));
            assert_eq!(fx, want, "{from:?}");
            assert!(expire(&mut l, T0 + 2 * DAY_MS).is_empty(), "once only");
            assert_eq!(l.store.live(), 0);
        }
    }

    #[test]
    fn validity_counts_from_send_at_and_a_final_message_never_expires() {
        let mut store = LocalMessages::default();
        let send_at = T0 + 3_600_000;
        let request = MessageRequest {
            send_at: Some(send_at),
            validity: Some(60),
            ..request()
        };
        store.apply_accepted(accepted(Status::Scheduled, 0, request));
        let mut l = Lifecycle::new(store, CONFIG);
        assert!(expire(&mut l, send_at + 59_999).is_empty());
        assert_eq!(
            expire(&mut l, send_at + 60_000).len(),
            3,
            "log, observe, report"
        );

        for done in [Status::Delivered, Status::Failed, Status::Canceled] {
            let mut l = Lifecycle::new(store_at(done, done == Status::Delivered), CONFIG);
            assert_eq!(l.store.live(), 0, "{done:?}");
            assert!(expire(&mut l, T0 + 2 * DAY_MS).is_empty(), "{done:?}");
        }
    }

    #[test]
    fn a_held_message_that_expires_leaves_the_held_queue() {
        let mut l = Lifecycle::new(store_at(Status::Queued, false), CONFIG);
        let mut fx = Effects::default();
        l.hold(T0 + 100, id(), &mut fx);
        assert!(l.held.contains(id()));
        expire(&mut l, T0 + DAY_MS);
        assert!(!l.held.contains(id()));
        assert_eq!(status(&l).1, ResultCode::Expired.as_u16());
    }

    #[test]
    fn a_receipt_after_expiry_is_an_event_and_nothing_else() {
        let mut l = Lifecycle::new(store_at(Status::Submitted, true), CONFIG);
        expire(&mut l, T0 + DAY_MS);
        let late = OwnerEvent::Final {
            id: id(),
            delivered: true,
            code: ResultCode::Delivered.as_u16(),
        };
        let mut fx = Effects::default();
        l.on_owner(T0 + DAY_MS + 5, late.clone(), &mut fx);
        let fx: Vec<Effect> = fx.drain().collect();
        let rec = crate::codec::LateReceiptRecord {
            id: id(),
            at_ms: T0 + DAY_MS + 5,
            delivered: true,
            code: ResultCode::Delivered.as_u16(),
        };
        assert_eq!(fx, vec![Effect::Log(Record::LateReceipt(rec))]);
        assert_eq!(status(&l), (Status::Failed, ResultCode::Expired.as_u16()));
        let last = l.store.get(id()).and_then(|m| m.events.last().cloned());
        assert_eq!(
            last.map(|e| (e.late_receipt, e.status, e.at_ms)),
            Some((true, Status::Delivered, T0 + DAY_MS + 5))
        );

        // A receipt for a message that ended otherwise changes nothing.
        let mut l = Lifecycle::new(store_at(Status::Delivered, true), CONFIG);
        let mut fx = Effects::default();
        l.on_owner(T0 + 50, late, &mut fx);
        assert!(fx.as_slice().is_empty());
    }

    #[test]
    fn replay_rebuilds_the_messages_to_watch() {
        let mut l = Lifecycle::new(store_at(Status::Submitted, true), CONFIG);
        let first = accepted(Status::Accepted, PRICE, request());
        let mut log = vec![Record::Accepted(Box::new(first))];
        let before = l.store.live();
        for e in expire(&mut l, T0 + DAY_MS) {
            if let Effect::Log(r) = e {
                log.push(r);
            }
        }
        let mut replayed = LocalMessages::default();
        for r in &log[..1] {
            replayed.apply(r.clone());
        }
        assert_eq!((before, replayed.live()), (1, 1));
        for r in &log[1..] {
            replayed.apply(r.clone());
        }
        assert_eq!(replayed.live(), 0);
        assert_eq!(replayed.pop_expired(T0 + 2 * DAY_MS), None);
    }
}

mod held_back_reports {
    //! Our own backpressure never spends a customer's retry budget: a report
    //! its endpoint's full queue turned away comes back later, untried.

    use super::*;
    use crate::core::lifecycle::events::OwnerEvent;
    use crate::core::lifecycle::{Lifecycle, REPORT_HOLD_BACK_MS};
    use crate::core::Due;

    #[test]
    fn a_held_back_report_is_offered_again_without_an_attempt() {
        let mut l = Lifecycle::new(store_at(Status::Delivered, true), CONFIG);
        let before = l.store.get(id()).map(|m| m.report);
        for round in 0..5 {
            let mut fx = Effects::default();
            let now = T0 + round * REPORT_HOLD_BACK_MS;
            l.on_owner(now, OwnerEvent::ReportHeldBack { id: id() }, &mut fx);
            let want = vec![Effect::Schedule {
                at_ms: now + REPORT_HOLD_BACK_MS,
                due: Due::ReportHeldBack(id()),
            }];
            assert_eq!(fx.drain().collect::<Vec<_>>(), want, "round {round}");
        }
        assert_eq!(
            l.store.get(id()).map(|m| m.report),
            before,
            "no failure counted"
        );

        // Once the report is delivered, a late hold-back changes nothing.
        let mut fx = Effects::default();
        l.on_owner(
            T0,
            OwnerEvent::ReportOutcome {
                id: id(),
                delivered: true,
            },
            &mut fx,
        );
        let mut fx = Effects::default();
        l.on_owner(T0 + 1, OwnerEvent::ReportHeldBack { id: id() }, &mut fx);
        assert!(fx.as_slice().is_empty());
    }
}

/// A message holding a backlog slot gives it back once, when it becomes
/// final, whichever way.
#[test]
fn a_backlog_slot_is_given_back_once_at_the_final_state() {
    for to in [Status::Delivered, Status::Failed, Status::Canceled] {
        let mut store = store_at(Status::Queued, false);
        store.hold_backlog(id());
        let mut fx = Effects::default();
        transition(&mut store, T0 + 1, id(), Step::to(to, 4000), &mut fx);
        let back = Effect::BacklogBack {
            group: "A1".into(),
            channel: Channel::Sms,
        };
        assert_eq!(
            fx.as_slice().iter().filter(|e| **e == back).count(),
            1,
            "{to:?}"
        );
        let mut fx = Effects::default();
        transition(
            &mut store,
            T0 + 2,
            id(),
            Step::to(Status::Failed, 4000),
            &mut fx,
        );
        assert!(!fx.as_slice().contains(&back), "only once");
    }
    // A message without a slot gives none back.
    let mut store = store_at(Status::Queued, false);
    let mut fx = Effects::default();
    transition(
        &mut store,
        T0 + 1,
        id(),
        Step::to(Status::Delivered, 2000),
        &mut fx,
    );
    assert!(!fx
        .as_slice()
        .iter()
        .any(|e| matches!(e, Effect::BacklogBack { .. })));
}

/// SPEC §5.5: undelivered reports per client, and the redrive of the
/// abandoned ones (a fresh, logged schedule).
#[test]
fn dead_letters_are_counted_per_client_and_redriven() {
    use super::report::ReportState;
    use crate::codec::ReportRecord;
    let mut l = super::Lifecycle::new(store_at(Status::Failed, false), CONFIG);
    assert!(
        l.client_reports().is_empty(),
        "a report not tried yet is no dead letter"
    );
    let record = |failures, due_ms, abandoned| ReportRecord {
        id: id(),
        failures,
        due_ms,
        done: false,
        abandoned,
    };
    l.store.apply_report(&record(2, T0 + 500, false));
    let rows = l.client_reports();
    assert_eq!(
        (
            rows["c1"].retrying,
            rows["c1"].abandoned,
            rows["c1"].next_attempt_ms
        ),
        (1, 0, Some(T0 + 500))
    );
    l.store.apply_report(&record(3, 0, true));
    assert!(l.client_reports().is_empty(), "no longer retrying");
    assert_eq!(l.dead_letters(), vec![(id(), "c1".to_string(), T0)]);
    let mut fx = Effects::default();
    assert!(l.redrive("other", vec![], &mut fx).is_empty());
    assert_eq!(l.redrive("c1", vec![], &mut fx), vec![id()]);
    assert_eq!(
        fx.drain().collect::<Vec<_>>(),
        vec![Effect::Log(Record::Report(record(0, 0, false)))]
    );
    assert_eq!(
        l.store.get(id()).map(|m| m.report),
        Some(ReportState::default())
    );
    assert!(l.client_reports().is_empty() && l.dead_letters().is_empty());
    assert_eq!(l.store.take_redriven(), vec![(id(), "c1".to_string(), T0)]);
}

/// SPEC §5.4: an abandoned report's message leaves memory like any settled
/// one (handed to the history store, counted there); a redrive brings it
/// back from the store's copy with the same view and a fresh schedule,
/// logged so a restart brings it back too.
#[test]
fn dead_letters_leave_memory_and_come_back_on_redrive() {
    use super::dead_letters::revived;
    use super::store::{MessageView, SettledMessage};
    use crate::codec::ReportRecord;
    let mut l = super::Lifecycle::new(store_at(Status::Failed, false), CONFIG);
    let abandoned = ReportRecord {
        id: id(),
        failures: 3,
        due_ms: 0,
        done: false,
        abandoned: true,
    };
    l.store.apply_report(&abandoned);
    let view = l.store.get(id()).map(|m| MessageView::of(&m));
    let (ticket, out) = l.store.take_settled(10).expect("settled");
    assert_eq!(out.len(), 1);
    assert_eq!(l.store.evict_archived(ticket), 1);
    assert!(l.store.get(id()).is_none(), "out of memory");

    let archived: SettledMessage = out.into_iter().next().expect("one");
    let mut fx = Effects::default();
    assert_eq!(
        l.redrive("c1", vec![revived(archived.clone())], &mut fx),
        vec![id()]
    );
    assert_eq!(
        l.store.get(id()).map(|m| MessageView::of(&m)),
        view,
        "the same view"
    );
    let logged: Vec<Effect> = fx.drain().collect();
    assert_eq!(
        logged,
        vec![Effect::Log(Record::Revived(Box::new(revived(
            archived.clone()
        ))))]
    );
    let back = l.store.get(id()).map(|m| m.report);
    assert_eq!(back, Some(super::report::ReportState::default()));
    assert_eq!(l.store.take_redriven(), vec![(id(), "c1".to_string(), T0)]);
    // Replayed after a restart: the same message, once.
    let mut replay = store_at(Status::Failed, false);
    replay.apply_report(&abandoned);
    replay.apply(Record::Revived(Box::new(revived(archived.clone()))));
    assert_eq!(replay.get(id()).map(|m| MessageView::of(&m)), view);
    // A second redrive of the same copy while it is in memory adds nothing.
    assert!(l.redrive("c1", vec![revived(archived)], &mut fx).is_empty());
}

/// A redrive of a dead letter handed over but not yet evicted keeps it in
/// memory when the store applies that hand-over.
#[test]
fn a_redriven_message_in_a_hand_over_stays_in_memory() {
    use crate::codec::ReportRecord;
    let mut l = super::Lifecycle::new(store_at(Status::Failed, false), CONFIG);
    l.store.apply_report(&ReportRecord {
        id: id(),
        failures: 3,
        due_ms: 0,
        done: false,
        abandoned: true,
    });
    let (ticket, _) = l.store.take_settled(10).expect("settled");
    let mut fx = Effects::default();
    assert_eq!(l.redrive("c1", vec![], &mut fx), vec![id()]);
    assert_eq!(l.store.evict_archived(ticket), 0);
    assert!(l.store.get(id()).is_some());
}
