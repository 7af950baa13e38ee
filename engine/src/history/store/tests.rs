use super::*;
use crate::core::lifecycle::report::ReportState;
use crate::core::lifecycle::store::{Event, MessageView};
use crate::model::{Channel, Status};

const MIN: i64 = 60_000;

fn settled(shard: usize, seq: u64, created: i64, status: Status, code: u16) -> SettledMessage {
    let event = |at_ms, status, code| Event {
        at_ms,
        status,
        code,
        late_receipt: false,
    };
    SettledMessage {
        view: MessageView {
            id: MessageId::new(shard, seq),
            group_code: "G1".into(),
            client_id: "c1".into(),
            src_msg_id: format!("src-{seq}"),
            channel: Channel::Sms,
            class: crate::model::Class::Realtime,
            parts: 1,
            to: "01012345678".into(),
            status,
            code,
            carrier: Some("SKT".into()),
            sender: Some("S1".into()),
            created_at_ms: created,
            updated_at_ms: created + 1_000,
            fallback_message_id: None,
            fallback_of: None,
            events: vec![
                event(created, Status::Accepted, 1000),
                event(created + 1_000, status, code),
            ],
            origin_code: None,
        },
        price: 9,
        report: ReportState {
            done: true,
            ..ReportState::default()
        },
    }
}

fn open(dir: &Path, retention_ms: i64) -> Store {
    Store::open(dir, retention_ms).expect("open")
}

#[test]
fn reads_by_id_src_msg_id_time_and_final_time_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 100 * MIN;
    let now = t0 + 10 * MIN;
    let ms: Vec<SettledMessage> = (1..=6)
        .map(|i| {
            settled(
                (i % 2) as usize,
                i,
                t0 + i as i64 * MIN,
                Status::Delivered,
                1000,
            )
        })
        .collect();
    {
        let store = open(dir.path(), 60 * MIN);
        store.put(&ms, now).expect("put");
    }
    let store = open(dir.path(), 60 * MIN);
    for m in &ms {
        assert_eq!(store.get(m.view.id, now).expect("get").as_ref(), Some(m));
    }
    let other = MessageId::new(1, 99);
    assert_eq!(store.get(other, now).expect("get"), None);
    let by_src = store.by_src_msg_id("G1", "src-4", now).expect("src");
    assert_eq!(by_src.map(|m| m.view.id), Some(ms[3].view.id));
    assert_eq!(store.by_src_msg_id("G2", "src-4", now).expect("src"), None);

    // History pages in (accept time, id) order; a cursor resumes after.
    let period = (t0, t0 + 60 * MIN);
    let f = Filter::default();
    let page = store
        .history("G1", period, None, &f, 4, now)
        .expect("history");
    let ids = |p: &[SettledMessage]| p.iter().map(|m| m.view.id).collect::<Vec<_>>();
    assert_eq!(ids(&page), ids(&ms[..4]));
    let after = Cursor {
        at_ms: page[3].view.created_at_ms,
        id: page[3].view.id,
    };
    let rest = store
        .history("G1", period, Some(after), &f, 4, now)
        .expect("history");
    assert_eq!(ids(&rest), ids(&ms[4..]));
    let to_other = Filter {
        to: Some("010".into()),
        ..Filter::default()
    };
    assert!(store
        .history("G1", period, None, &to_other, 9, now)
        .expect("h")
        .is_empty());

    // Reports by final time, merged across partitions.
    let reports = store
        .reports("G1", (0, now), None, 10, now)
        .expect("reports");
    assert_eq!(ids(&reports), ids(&ms));
    let after = Cursor {
        at_ms: reports[1].view.updated_at_ms,
        id: reports[1].view.id,
    };
    let rest = store
        .reports("G1", (0, now), Some(after), 2, now)
        .expect("reports");
    assert_eq!(ids(&rest), ids(&ms[2..4]));
}

#[test]
fn partitions_past_the_retention_are_dropped_whole_and_their_messages_are_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let retention = 4 * MIN; // one-minute partitions
    let store = open(dir.path(), retention);
    let old = settled(0, 1, 10 * MIN, Status::Delivered, 1000);
    let new = settled(0, 2, 13 * MIN + 1, Status::Delivered, 1000);
    store
        .put(&[old.clone(), new.clone()], 13 * MIN + 2)
        .expect("put");
    // Read at 14.5 min: "old" (10 min) is past 4 min of retention even
    // before its partition is dropped.
    let now = 14 * MIN + MIN / 2;
    assert_eq!(store.get(old.view.id, now).expect("get"), None);
    assert!(store.get(new.view.id, now).expect("get").is_some());
    // Its partition ([10, 11) min) goes once all of it is past.
    assert_eq!(store.drop_expired(now).expect("drop"), 0);
    let now = 15 * MIN;
    assert_eq!(store.drop_expired(now).expect("drop"), 1);
    assert_eq!(store.drop_expired(now).expect("drop"), 0);
    drop(store);
    let store = open(dir.path(), retention);
    assert_eq!(
        store.get(old.view.id, 10 * MIN).expect("get"),
        None,
        "partition dropped"
    );
    assert!(store.get(new.view.id, now).expect("get").is_some());
    // A message already past the retention is not written at all.
    let older = settled(0, 3, MIN, Status::Delivered, 1000);
    store.put(std::slice::from_ref(&older), now).expect("put");
    assert_eq!(store.get(older.view.id, MIN).expect("get"), None);
}

#[test]
fn failed_counts_and_late_receipts_of_expired_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 60 * MIN);
    let expired = settled(0, 1, MIN, Status::Failed, 5007);
    let failed = settled(1, 1, MIN, Status::Failed, 4001);
    let ok = settled(1, 2, MIN, Status::Delivered, 1000);
    store
        .put(&[expired.clone(), failed.clone(), ok.clone()], 2 * MIN)
        .expect("put");
    let mut got = store.failed("G1", (0, 3 * MIN), 3 * MIN).expect("failed");
    got.sort();
    assert_eq!(got, vec![(expired.view.id, 5007), (failed.view.id, 4001)]);

    let late = |id, at_ms| LateReceiptRecord {
        id,
        at_ms,
        delivered: true,
        code: 1000,
    };
    store
        .add_late_receipt(&late(expired.view.id, 3 * MIN), 3 * MIN)
        .expect("late");
    store
        .add_late_receipt(&late(expired.view.id, 3 * MIN), 3 * MIN)
        .expect("again");
    store
        .add_late_receipt(&late(ok.view.id, 3 * MIN), 3 * MIN)
        .expect("not expired");
    let m = store
        .get(expired.view.id, 3 * MIN)
        .expect("get")
        .expect("held");
    assert_eq!(
        m.view.events.len(),
        3,
        "one late event, once: {:?}",
        m.view.events
    );
    assert!(m.view.events[2].late_receipt);
    assert_eq!((m.view.status, m.view.code), (Status::Failed, 5007));
    let ok_now = store.get(ok.view.id, 3 * MIN).expect("get").expect("held");
    assert_eq!(ok_now, ok, "a delivered message takes no late receipt");
}

#[test]
fn documents_written_before_origin_codes_still_read() {
    let m = settled(1, 7, 1_000, Status::Delivered, 2000);
    assert_eq!(m.view.origin_code, None);
    assert_eq!(decode_doc(&encode_doc(&m)), Some(m.clone()));
    // The layout before: the view without its last field (`origin_code`,
    // None: one zero byte), then the price and the report state.
    let view = encode(&m.view);
    assert_eq!(view.last(), Some(&0));
    let mut old = view[..view.len() - 1].to_vec();
    old.extend_from_slice(&encode(&m.price));
    old.extend_from_slice(&encode(&m.report));
    assert_eq!(decode_doc(&old), Some(m));
}

/// SPEC §5.5: a settled message whose report was abandoned after failed
/// attempts is a dead letter, listed per client (also after a reopen)
/// until a redrive makes the store forget it; a report given up for want
/// of an endpoint is none.
#[test]
fn dead_letters_are_listed_per_client_until_redriven() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 100 * MIN;
    let now = t0 + 10 * MIN;
    let abandoned = |failures| ReportState {
        failures,
        abandoned: true,
        ..ReportState::default()
    };
    let mut ms: Vec<SettledMessage> = (1..=4)
        .map(|i| settled(0, i, t0 + i as i64, Status::Failed, 4002))
        .collect();
    ms[0].report = abandoned(11);
    ms[1].report = abandoned(11);
    ms[1].view.client_id = "c2".into();
    ms[2].report = abandoned(0);
    {
        let store = open(dir.path(), 60 * MIN);
        store.put(&ms, now).expect("put");
    }
    let store = open(dir.path(), 60 * MIN);
    let counts = store.dead_letter_counts(now, &[]).expect("counts");
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        vec![("c1".to_string(), 1), ("c2".to_string(), 1)]
    );
    // Those in memory too are counted once; those not written yet, too.
    let v = &ms[0].view;
    let fresh = MessageId::new(1, 99);
    let memory = [
        (v.id, v.client_id.clone(), v.created_at_ms),
        (fresh, "c1".to_string(), t0),
    ];
    let counts = store.dead_letter_counts(now, &memory).expect("counts");
    assert_eq!(counts["c1"], 2);
    let dead = store.dead_letters("c1", 10, now).expect("list");
    assert_eq!(dead, vec![ms[0].clone()]);
    assert!(store.dead_letters("c1", 0, now).expect("list").is_empty());

    let v = &ms[0].view;
    let redriven = (v.id, v.client_id.clone(), v.created_at_ms);
    store.forget_dead_letters(&[redriven]).expect("forget");
    assert!(store.dead_letters("c1", 10, now).expect("list").is_empty());
    assert_eq!(store.dead_letter_counts(now, &[]).expect("counts").len(), 1);
    // Delivered after the redrive: written again, no dead letter.
    let mut delivered = ms[0].clone();
    delivered.report = ReportState {
        done: true,
        ..ReportState::default()
    };
    store.put(&[delivered.clone()], now).expect("put");
    assert!(store.dead_letters("c1", 10, now).expect("list").is_empty());
    assert_eq!(store.get(v.id, now).expect("get"), Some(delivered));
}
