use super::*;
use crate::codec::{AcceptedRecord, Record, StateRecord};
use crate::core::lifecycle::store::{Head, LocalMessages, COLD_AFTER_MS, DEFAULT_VALIDITY_SECS};
use crate::model::MessageRequest;

use crate::core::lifecycle::store::fixture::{message, T0};

fn bytes_of(m: &StoredMessage) -> Vec<u8> {
    bincode::encode_to_vec(m, bincode::config::standard()).expect("encodes")
}

#[test]
fn a_cold_message_decodes_as_it_was_every_field() {
    let mut cold = ColdStore::default();
    for (seq, full) in [(1, false), (2, true)] {
        let m = message(seq, full);
        assert!(cold.put(&m));
        let back = cold.get(seq).expect("cold");
        assert_eq!(bytes_of(&back), bytes_of(&m), "full: {full}");
        assert_eq!(back.request, m.request);
        assert_eq!(cold.id(seq), Some(m.id));
    }
    assert_eq!(cold.len(), 2);
    assert!(cold.take(1).is_some() && !cold.contains(1) && cold.contains(2));
    assert!(cold.get(1).is_none() && !cold.remove(1));
}

#[test]
fn a_plain_sms_takes_110_bytes_or_less() {
    let mut cold = ColdStore::default();
    cold.put(&message(1, false));
    let entry = cold.live_bytes;
    assert!(entry <= 110, "{entry} bytes");
}

#[test]
fn a_sparse_chunk_is_compacted_and_its_messages_stay() {
    let mut cold = ColdStore::default();
    let n = 12_000; // about three chunks
    for seq in 0..n {
        assert!(cold.put(&message(seq, seq % 7 == 0)));
    }
    let chunks = cold.chunk_bytes() / CHUNK;
    assert!(chunks >= 3, "{chunks}");
    // Nine in ten leave: every chunk but the one being filled is sparse.
    for seq in (0..n).filter(|s| s % 10 != 0) {
        assert!(cold.remove(seq));
    }
    let mut moved = 0;
    while !cold.sparse.is_empty() {
        moved += cold.compact_step();
    }
    assert!(moved > 0);
    assert!(cold.chunk_bytes() / CHUNK < chunks, "chunks were dropped");
    assert_eq!(cold.len(), (n / 10) as usize);
    for seq in (0..n).filter(|s| s % 10 == 0) {
        let back = cold.get(seq).expect("still cold");
        assert_eq!(bytes_of(&back), bytes_of(&message(seq, seq % 7 == 0)));
    }
    let live: usize = cold.live.iter().sum();
    assert_eq!(live, cold.live_bytes);
}

/// A checkpoint's image reads its chunks while the shard goes on: taking
/// messages out, compacting and adding new ones leave it as it was.
#[test]
fn an_image_keeps_the_messages_as_they_were_at_its_mark() {
    let mut cold = ColdStore::default();
    for seq in 0..6_000 {
        cold.put(&message(seq, false));
    }
    let image = cold.image();
    for seq in 0..5_000 {
        cold.remove(seq);
    }
    while cold.compact_step() > 0 {}
    for seq in 10_000..14_000 {
        cold.put(&message(seq, true));
    }
    assert_eq!(image.len(), 6_000);
    let mut seqs: Vec<u64> = (0..image.len())
        .map(|i| image.get(i).expect("decodes").id.seq())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..6_000).collect::<Vec<u64>>());
}

fn accepted(seq: u64, at_ms: i64) -> Record {
    Record::Accepted(Box::new(AcceptedRecord {
        id: MessageId::new(0, seq),
        group_code: "A1".into(),
        client_id: "c1".into(),
        created_at_ms: at_ms,
        status: Status::Queued,
        price: 0,
        fallback_of: None,
        request: MessageRequest::test_sms(&format!("s{seq}")),
    }))
}

fn submitted(seq: u64, at_ms: i64) -> Record {
    Record::State(StateRecord {
        id: MessageId::new(0, seq),
        status: Status::Submitted,
        code: 1000,
        at_ms,
        sender: Some("S1".into()),
        carrier: Some("SKT".into()),
        carrier_msg_id: Some("x1".into()),
    })
}

/// A message goes cold [`COLD_AFTER_MS`] after its last change, reads the
/// same cold, comes back live for a change, and goes cold again.
#[test]
fn a_message_goes_cold_after_its_last_change_and_comes_back_for_the_next() {
    let mut s = LocalMessages::new(DEFAULT_VALIDITY_SECS);
    s.apply(accepted(1, T0));
    s.apply(accepted(2, T0 + 2_000));
    let id = MessageId::new(0, 1);
    let live = bytes_of(&s.get(id).expect("held"));
    assert_eq!(s.cool(T0 + COLD_AFTER_MS - 1, 100), 0);
    assert_eq!(s.cool(T0 + COLD_AFTER_MS, 100), 1);
    assert_eq!((s.cold_len(), s.len()), (1, 2));
    assert_eq!(bytes_of(&s.get(id).expect("held")), live);
    assert_eq!(
        s.pop_expired(T0 + 86_400_000),
        Some(id),
        "its validity still ends"
    );
    s.apply(submitted(1, T0 + 4_000));
    assert_eq!(s.cold_len(), 0, "live again for the change");
    let m = s.get(id).expect("held");
    assert_eq!(
        (m.status, m.carrier_msg_id.as_deref()),
        (Status::Submitted, Some("x1"))
    );
    assert_eq!(s.cool(T0 + 4_000 + COLD_AFTER_MS - 1, 100), 1, "message 2");
    assert_eq!(
        s.cool(T0 + 4_000 + COLD_AFTER_MS, 100),
        1,
        "message 1, again"
    );
    assert_eq!(s.cold_len(), 2);
    let m = s.get(id).expect("held");
    assert_eq!((m.status, m.events.len()), (Status::Submitted, 2));
}

/// A checkpoint holds the cold messages like the live ones; loaded, the
/// messages that are not settled are cold at once.
#[test]
fn a_checkpoint_of_cold_messages_loads_them_cold() {
    let mut s = LocalMessages::new(DEFAULT_VALIDITY_SECS);
    for seq in 1..=100 {
        s.apply(accepted(seq, T0));
    }
    s.cool(T0 + COLD_AFTER_MS, 60);
    assert_eq!(s.cold_len(), 60);
    let bytes = s.encode_snapshot().expect("encodes");
    let back = LocalMessages::from_snapshot(&bytes, DEFAULT_VALIDITY_SECS).expect("decodes");
    assert_eq!((back.len(), back.cold_len(), back.live()), (100, 100, 100));
    for seq in 1..=100 {
        let id = MessageId::new(0, seq);
        let (a, b) = (s.get(id).expect("held"), back.get(id).expect("held"));
        assert_eq!(bytes_of(&a), bytes_of(&b));
    }
}

/// A checkpoint drains the encoded messages in pieces as it goes: the
/// pieces and the rest are the payload of one encoding, live and cold
/// messages alike.
#[test]
fn a_frozen_store_drained_in_pieces_is_the_whole_payload() {
    let mut s = LocalMessages::new(DEFAULT_VALIDITY_SECS);
    for seq in 1..=3_000 {
        s.apply(accepted(seq, T0));
    }
    s.cool(T0 + COLD_AFTER_MS, 2_000);
    let whole = s.encode_snapshot().expect("encodes");
    let mut frozen = s.freeze();
    let mut pieces = Vec::new();
    while !frozen.encode_step(100) {
        if frozen.encoded() >= 10_000 {
            pieces.extend(frozen.drain());
        }
    }
    assert!(pieces.len() > whole.len() / 2, "drained as it went");
    pieces.extend(frozen.finish().expect("encodes"));
    assert_eq!(pieces, whole);
}

/// A cold message's validity still ends it: the chunk that holds it is
/// walked once its earliest end has come; a final one is not watched.
#[test]
fn the_validity_of_a_cold_message_still_ends_it() {
    let mut s = LocalMessages::new(60);
    for seq in 1..=5 {
        s.apply(accepted(seq, T0 + seq as i64));
    }
    s.apply(Record::State(StateRecord {
        status: Status::Delivered,
        code: 2000,
        ..match submitted(5, T0 + 10) {
            Record::State(r) => r,
            _ => unreachable!(),
        }
    }));
    assert_eq!(s.cool(T0 + 10 + COLD_AFTER_MS, 100), 5);
    assert_eq!((s.cold_len(), s.live()), (5, 4));
    assert_eq!(s.pop_expired(T0 + 60_000), None);
    let mut ended = vec![s.pop_expired(T0 + 60_002), s.pop_expired(T0 + 60_002)];
    ended.sort();
    assert_eq!(
        ended,
        vec![Some(MessageId::new(0, 1)), Some(MessageId::new(0, 2))]
    );
    assert_eq!(s.pop_expired(T0 + 60_002), None);
    assert_eq!(s.live(), 2);
    let mut ended: Vec<_> = std::iter::from_fn(|| s.pop_expired(T0 + 99_000)).collect();
    ended.sort();
    assert_eq!(ended, vec![MessageId::new(0, 3), MessageId::new(0, 4)]);
    assert_eq!(s.live(), 0, "the delivered one is not watched");
}

/// Listings and counts read heads: a cold message's head, read without
/// decoding it, is that of the message.
#[test]
fn a_cold_messages_head_is_read_without_decoding_it() {
    let mut s = LocalMessages::new(DEFAULT_VALIDITY_SECS);
    for seq in 1..=50 {
        s.apply(accepted(seq, T0 + seq as i64));
    }
    s.apply(submitted(7, T0 + 100));
    s.cool(T0 + 40 + COLD_AFTER_MS, 100);
    assert_eq!(s.cold_len(), 39, "1..=40 but 7, changed since");
    let mut heads: Vec<Head> = s.heads().collect();
    heads.sort_by_key(|h| h.id);
    assert_eq!(heads.len(), 50);
    for h in heads {
        let m = s.get(h.id).expect("held");
        assert_eq!(h, Head::of(&m));
    }
    assert_eq!(
        s.heads()
            .find(|h| h.id == MessageId::new(0, 7))
            .map(|h| h.status),
        Some(Status::Submitted)
    );
}
