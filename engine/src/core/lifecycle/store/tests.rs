use super::*;

const T0: i64 = 1_000_000;

fn accepted(seq: u64) -> Record {
    Record::Accepted(Box::new(AcceptedRecord {
        id: MessageId::new(0, seq),
        group_code: "A1".into(),
        client_id: "c1".into(),
        created_at_ms: T0,
        status: Status::Queued,
        price: 9,
        fallback_of: None,
        request: crate::model::MessageRequest::test_sms(&format!("s{seq}")),
    }))
}

fn state(seq: u64, status: Status, code: u16) -> Record {
    Record::State(StateRecord {
        id: MessageId::new(0, seq),
        status,
        code,
        at_ms: T0 + 1,
        sender: None,
        carrier: None,
        carrier_msg_id: None,
    })
}

fn report(seq: u64, done: bool, abandoned: bool, failures: u8) -> Record {
    Record::Report(ReportRecord {
        id: MessageId::new(0, seq),
        failures,
        due_ms: 0,
        done,
        abandoned,
    })
}

/// Messages 1..=4 final; 1 reported, 2 without an endpoint, 3 a dead
/// letter (settled: it leaves memory too), 4 still retrying its report;
/// 5 not final.
fn store() -> LocalMessages {
    let mut s = LocalMessages::default();
    for seq in 1..=5 {
        s.apply(accepted(seq));
    }
    for seq in 1..=4 {
        s.apply(state(seq, Status::Delivered, 1000));
    }
    s.apply(report(1, true, false, 0));
    s.apply(report(2, false, true, 0));
    s.apply(report(3, false, true, 11));
    s.apply(report(4, false, false, 2));
    s
}

fn seqs(batch: &[SettledMessage]) -> Vec<u64> {
    batch.iter().map(|m| m.view.id.seq()).collect()
}

#[test]
fn only_settled_messages_leave_and_only_once_the_store_applied_them() {
    let mut s = store();
    assert_eq!(s.leaving(), 3);
    let (ticket, batch) = s.take_settled(10).expect("settled");
    assert_eq!((ticket, seqs(&batch)), (1, vec![1, 2, 3]));
    assert!(batch[0].report.done && batch[1].report.abandoned);
    assert_eq!(batch[2].report.failures, 11, "the dead letter leaves too");
    assert_eq!(s.take_settled(10), None, "nothing else settled");
    assert_eq!(s.evict_archived(0), 0, "not applied yet");
    assert_eq!(s.len(), 5);
    assert_eq!(s.evict_archived(1), 3);
    assert_eq!((s.len(), s.leaving()), (2, 0));
    assert!(s.get(MessageId::new(0, 1)).is_none());
    let left: Vec<_> = s.left_counts().collect();
    assert_eq!(left, vec![(Status::Delivered, Channel::Sms, "A1", 3)]);
    // The report still retrying settles later and leaves then.
    s.apply(report(4, true, false, 2));
    let (ticket, batch) = s.take_settled(10).expect("settled");
    assert_eq!((ticket, seqs(&batch)), (2, vec![4]));
}

#[test]
fn a_refused_hand_over_comes_first_next_time_in_batches() {
    let mut s = store();
    let (ticket, batch) = s.take_settled(1).expect("first");
    assert_eq!(seqs(&batch), vec![1]);
    s.hand_back(ticket);
    let (ticket, batch) = s.take_settled(1).expect("again");
    assert_eq!((ticket, seqs(&batch)), (2, vec![1]), "a new ticket");
    let (ticket, batch) = s.take_settled(1).expect("next");
    assert_eq!((ticket, seqs(&batch)), (3, vec![2]));
    assert_eq!(s.evict_archived(3), 2);
}

#[test]
fn a_late_receipt_while_handed_over_keeps_the_message_for_another_hand_over() {
    let mut s = LocalMessages::default();
    s.apply(accepted(1));
    s.apply(state(1, Status::Failed, 5007));
    s.apply(report(1, true, false, 0));
    let (ticket, _) = s.take_settled(10).expect("settled");
    let late = LateReceiptRecord {
        id: MessageId::new(0, 1),
        at_ms: T0 + 5,
        delivered: true,
        code: 1000,
    };
    s.apply(Record::LateReceipt(late.clone()));
    assert_eq!(s.evict_archived(ticket), 0, "changed since the hand-over");
    let (_, batch) = s.take_settled(10).expect("again, with the event");
    assert_eq!(batch[0].view.events.last(), Some(&late_event(&late)));
    // Once gone, a late receipt waits for the history store.
    assert_eq!(s.evict_archived(ticket + 1), 1);
    s.apply(Record::LateReceipt(late.clone()));
    assert_eq!(s.take_late_receipts(), vec![late]);
    assert!(s.take_late_receipts().is_empty());
}

#[test]
fn a_snapshot_restores_the_store_as_it_was() {
    let mut s = store();
    let (ticket, _) = s.take_settled(1).expect("settled");
    assert_eq!(s.evict_archived(ticket), 1, "message 1 left");
    let blocked = BlockedRecord {
        id: MessageId::new(0, 9),
        at_ms: T0,
        group_code: "A1".into(),
        client_id: "c1".into(),
        src_msg_id: "spam".into(),
        channel: Channel::Sms,
        to: "01012345678".into(),
        text_hash: String::new(),
        excerpt: String::new(),
        code: 3009,
        reason: "spam keyword".into(),
    };
    s.apply(Record::Blocked(Box::new(blocked.clone())));
    let bytes = s.encode_snapshot().expect("encodes");
    let mut back = LocalMessages::from_snapshot(&bytes, DEFAULT_VALIDITY_SECS).expect("decodes");
    assert_eq!(
        (back.len(), back.max_seq(), back.live()),
        (s.len(), 5, s.live())
    );
    for m in s.iter() {
        let b = back.get(m.id).expect("held");
        assert_eq!(
            (b.status, b.code, b.price, &b.events, b.report, &b.request),
            (m.status, m.code, m.price, &m.events, m.report, &m.request)
        );
    }
    let left: Vec<_> = back.left_counts().collect();
    assert_eq!(left, vec![(Status::Delivered, Channel::Sms, "A1", 1)]);
    let net: Vec<_> = back.left_net().collect();
    assert_eq!(
        net,
        vec![("A1", 9)],
        "the price of the delivered message that left"
    );
    assert_eq!(back.take_blocked(), vec![blocked]);
    // Messages 2 (no endpoint) and 3 (a dead letter) were settled and not
    // handed over: they are handed over after the restart.
    let (_, batch) = back.take_settled(10).expect("settled again");
    assert_eq!(seqs(&batch), vec![2, 3]);
    assert!(LocalMessages::from_snapshot(&bytes[..bytes.len() / 2], 60).is_err());
}

/// A checkpoint's store is frozen at its mark and encoded by slices while
/// the shard goes on: the payload is the store as it was at the mark
/// (changes after it are not in it), byte for byte the layout one
/// encoding of the whole `Snapshot` gives.
#[test]
fn a_frozen_store_encodes_by_slices_as_it_was_at_the_mark() {
    let mut s = store();
    let (ticket, _) = s.take_settled(1).expect("settled");
    s.evict_archived(ticket);
    let at_mark = s.encode_snapshot().expect("encodes");
    let mut frozen = s.freeze();
    assert_eq!(frozen.len(), s.len());
    // Changes after the mark: a new message, a state change, one leaving.
    s.apply(accepted(7));
    s.apply(state(5, Status::Delivered, 2000));
    let mut steps = 0;
    while !frozen.encode_step(1) {
        steps += 1;
    }
    assert_eq!(steps, s.len() - 2, "one message a step");
    let bytes = frozen.finish().expect("encodes");
    assert_eq!(bytes, at_mark);
    let back = LocalMessages::from_snapshot(&bytes, DEFAULT_VALIDITY_SECS).expect("decodes");
    assert!(back.get(MessageId::new(0, 7)).is_none());
    let five = back.get(MessageId::new(0, 5)).expect("held");
    assert_eq!(five.status, Status::Queued, "the state at the mark");
    assert_eq!(
        s.get(MessageId::new(0, 5)).map(|m| m.status),
        Some(Status::Delivered)
    );
    // The layout of one encoding of the whole snapshot.
    #[derive(bincode::Encode)]
    struct Whole<'a> {
        max_seq: u64,
        messages: Vec<&'a StoredMessage>,
        left: Vec<(&'a LeftKey, &'a u64)>,
        left_net: Vec<(&'a Rc<str>, &'a i64)>,
        blocked: &'a [BlockedRecord],
        late_receipts: &'a [LateReceiptRecord],
    }
    let live = s.encode_snapshot().expect("encodes");
    let whole = Whole {
        max_seq: s.max_seq,
        messages: s.by_seq.values().map(|m| &**m).collect(),
        left: s.left.iter().collect(),
        left_net: s.left_net.iter().collect(),
        blocked: &s.blocked,
        late_receipts: &s.late_receipts,
    };
    let mut expected = vec![0xff, 1];
    expected.extend(bincode::encode_to_vec(whole, bincode::config::standard()).expect("encode"));
    assert_eq!(live, expected);
}

#[test]
fn a_receipt_for_a_message_that_did_not_expire_is_no_late_receipt() {
    let mut s = store();
    let late = LateReceiptRecord {
        id: MessageId::new(0, 4),
        at_ms: T0 + 5,
        delivered: false,
        code: 4001,
    };
    s.apply(Record::LateReceipt(late));
    let m = s.get(MessageId::new(0, 4)).expect("held");
    assert_eq!(m.events.len(), 2, "accepted, delivered");
}

#[test]
fn a_checkpoint_written_before_origin_codes_still_loads() {
    let mut store = LocalMessages::default();
    store.apply(accepted(1));
    let now = store.encode_snapshot().expect("encodes");
    // The layout before: no prefix, and each request without its last
    // field (`origin_code`, None: one zero byte).
    let Record::Accepted(rec) = accepted(1) else {
        unreachable!()
    };
    let request =
        bincode::encode_to_vec(&rec.request, bincode::config::standard()).expect("encodes");
    let body = &now[2..];
    let at = body
        .windows(request.len())
        .position(|w| w == request.as_slice())
        .expect("the request is in the snapshot");
    let mut old = body[..at + request.len() - 1].to_vec();
    old.extend_from_slice(&body[at + request.len()..]);
    let back = LocalMessages::from_snapshot(&old, 86_400).expect("the old layout loads");
    let m = back.get(MessageId::new(0, 1)).expect("the message");
    assert_eq!(m.request.unpack(), rec.request);
    let current = LocalMessages::from_snapshot(&now, 86_400).expect("loads");
    assert_eq!(
        current
            .get(MessageId::new(0, 1))
            .map(|m| m.request.unpack()),
        Some(rec.request)
    );
}

/// The compact field types of a stored message encode as the types a
/// checkpoint of an older version holds (a boxed slice as a `Vec`, a
/// shared or boxed string as a `String`), so older checkpoints load.
#[test]
fn compact_fields_encode_as_the_older_types_did() {
    let config = bincode::config::standard();
    let event = Event {
        at_ms: 5,
        status: Status::Queued,
        code: 1000,
        late_receipt: false,
    };
    let old = bincode::encode_to_vec(vec![event.clone(), event.clone()], config).expect("vec");
    let new: Box<[Event]> = Box::new([event.clone(), event.clone()]);
    assert_eq!(bincode::encode_to_vec(&new, config).expect("box"), old);
    let old = bincode::encode_to_vec(Some("SKT".to_string()), config).expect("string");
    let shared: Option<Rc<str>> = Some(Rc::from("SKT"));
    let boxed: Option<Box<str>> = Some("SKT".into());
    assert_eq!(bincode::encode_to_vec(&shared, config).expect("rc"), old);
    assert_eq!(bincode::encode_to_vec(&boxed, config).expect("box"), old);
    let (back, _): (Option<Rc<str>>, usize) =
        bincode::decode_from_slice(&old, config).expect("decode");
    assert_eq!(back.as_deref(), Some("SKT"));
}
