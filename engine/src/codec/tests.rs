//! WAL records: round trips, records of older formats still decode, and a
//! bad length prefix is an error.

use super::*;
use crate::model::Channel;

/// An empty PUSH request; tests override the fields they need.
fn empty_request() -> MessageRequest {
    MessageRequest {
        src_msg_id: String::new(),
        channel: Channel::Push,
        bill_code: String::new(),
        from: None,
        to: String::new(),
        text: String::new(),
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
        validity: Some(86_400),
        priority: Some(crate::model::Class::Realtime),
        origin_code: None,
    }
}

#[test]
fn revived_round_trip() {
    let rec = Record::Revived(Box::new(RevivedRecord {
        id: MessageId::new(1, 7),
        group_code: "A1".into(),
        client_id: "c1".into(),
        request: MessageRequest {
            src_msg_id: "order-7".into(),
            channel: Channel::Sms,
            to: "01012345678".into(),
            ..empty_request()
        },
        status: Status::Delivered,
        code: 1000,
        price: 9,
        carrier: Some("SKT".into()),
        sender: Some("S1".into()),
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_500,
        fallback_message_id: None,
        fallback_of: Some(MessageId::new(0, 3)),
        events: vec![crate::model::Event {
            at_ms: 1_700_000_000_000,
            status: Status::Accepted,
            code: 1000,
            late_receipt: false,
        }],
    }));
    let (kind, bytes) = rec.encode();
    assert_eq!(kind, KIND_REVIVED);
    assert_eq!(Record::decode(kind, &bytes).expect("decodes"), rec);
    assert!(Record::decode(kind, &bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn accepted_round_trip() {
    let rec = Record::Accepted(Box::new(AcceptedRecord {
        id: MessageId::new(1, 42),
        group_code: "A000005".into(),
        client_id: "c1".into(),
        created_at_ms: 1_700_000_000_000,
        status: Status::Accepted,
        price: 10,
        fallback_of: None,
        request: MessageRequest {
            src_msg_id: "order-1".into(),
            channel: Channel::Sms,
            bill_code: "B001".into(),
            from: Some("0212345678".into()),
            to: "01012345678".into(),
            text: "안녕하세요".into(),
            origin_code: Some("BIZ-0001".into()),
            ..empty_request()
        },
    }));
    let (kind, bytes) = rec.encode();
    assert_eq!(kind, KIND_ACCEPTED);
    assert_eq!(Record::decode(kind, &bytes).expect("decodes"), rec);
    assert!(Record::decode(99, &bytes).is_err());
    assert!(Record::decode(KIND_ACCEPTED, &bytes[..bytes.len() / 2]).is_err());
}

/// Logs written before `validity`, before `priority` and before
/// `origin_code` existed still read: the message comes back with `None`
/// there (the configured default validity applies; the class is `ad` or
/// `realtime`; no origin code).
#[test]
fn accepted_records_of_versions_1_2_and_3_still_decode() {
    let rec = AcceptedRecord {
        id: MessageId::new(0, 7),
        group_code: "G".into(),
        client_id: "c".into(),
        created_at_ms: 5,
        status: Status::Scheduled,
        price: 3,
        fallback_of: Some(MessageId::new(1, 2)),
        request: MessageRequest {
            text: "old".into(),
            send_at: Some(9),
            validity: None,
            priority: None,
            origin_code: None,
            ..empty_request()
        },
    };
    // Version 3 is today's layout without `origin_code`, the request's
    // last field, version 2 that without `priority` and version 1 that
    // without `validity`: with all `None` (a 0 byte each) the bytes
    // differ only by those.
    let (kind, mut v3) = Record::Accepted(Box::new(rec.clone())).encode();
    assert_eq!(kind, KIND_ACCEPTED);
    assert_eq!(v3.pop(), Some(0));
    let old = Record::decode(KIND_ACCEPTED_V3, &v3).expect("v3 decodes");
    assert_eq!(old, Record::Accepted(Box::new(rec.clone())));
    let mut v2 = v3;
    assert_eq!(v2.pop(), Some(0));
    let old = Record::decode(KIND_ACCEPTED_V2, &v2).expect("v2 decodes");
    assert_eq!(old, Record::Accepted(Box::new(rec.clone())));
    let mut v1 = v2;
    assert_eq!(v1.pop(), Some(0));
    let old = Record::decode(KIND_ACCEPTED_V1, &v1).expect("v1 decodes");
    assert_eq!(old, Record::Accepted(Box::new(rec)));
}

/// The fuzz seeds of the accepted record, kind 1 (before `validity`)
/// and kind 9 (today's, with an origin code), read as written.
#[test]
fn the_accepted_fuzz_seeds_decode() {
    let seed = |name: &str| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/wal_record/");
        std::fs::read(format!("{dir}{name}")).expect("seed exists")
    };
    let decode = |bytes: &[u8]| match Record::decode(bytes[0], &bytes[1..]) {
        Ok(Record::Accepted(r)) => r,
        other => panic!("not an accepted record: {other:?}"),
    };
    let old = decode(&seed("accepted"));
    let new = decode(&seed("accepted_origin_code"));
    assert_eq!(old.request.origin_code, None);
    assert_eq!(new.request.origin_code.as_deref(), Some("BIZ-1"));
    let without = AcceptedRecord {
        request: MessageRequest {
            origin_code: None,
            ..new.request.clone()
        },
        ..(*new).clone()
    };
    assert_eq!(without, *old);
}

/// A version 3 record (kind 8) keeps its `priority` when read today.
#[test]
fn version_3_keeps_its_priority() {
    let rec = AcceptedRecord {
        id: MessageId::new(0, 8),
        group_code: "G".into(),
        client_id: "c".into(),
        created_at_ms: 5,
        status: Status::Accepted,
        price: 0,
        fallback_of: None,
        request: MessageRequest {
            priority: Some(crate::model::Class::Otp),
            origin_code: None,
            ..empty_request()
        },
    };
    let (_, mut v3) = Record::Accepted(Box::new(rec.clone())).encode();
    assert_eq!(v3.pop(), Some(0));
    let old = Record::decode(KIND_ACCEPTED_V3, &v3).expect("v3 decodes");
    assert_eq!(old, Record::Accepted(Box::new(rec)));
}

/// A corrupt length prefix used to make bincode reserve it up front:
/// capacity overflow (a panic) or a multi-terabyte allocation (an abort).
/// Found by the `wal_record` fuzz target.
#[test]
fn huge_length_prefix_is_an_error_not_a_crash() {
    // AcceptedRecord: id (varint 1), then `group_code` whose length is a
    // varint with a u64 following (0xFD): 2^64-1 and 1 TiB.
    let mut overflow = vec![1u8, 0xFD];
    overflow.extend_from_slice(&u64::MAX.to_le_bytes());
    let mut terabyte = vec![1u8, 0xFD];
    terabyte.extend_from_slice(&(1u64 << 40).to_le_bytes());
    for payload in [overflow, terabyte] {
        assert!(Record::decode(KIND_ACCEPTED, &payload).is_err());
    }
    // StateRecord: `sender` is Some (1) with a 2^62-byte string.
    let mut state = vec![1u8, 0, 0, 0, 1, 0xFD];
    state.extend_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(Record::decode(KIND_STATE, &state).is_err());
}

/// The decode limit is proportional to the payload; records that hold
/// the most memory per encoded byte (thousands of empty container
/// elements, one kind of container at a time) must still decode.
#[test]
fn claim_factor_covers_worst_case_records() {
    use crate::model::{Attachment, FallbackStep, PushOptions};
    let n = 5_000;
    let base = empty_request;
    let pairs = vec![(String::new(), String::new()); n];
    let attachment = Attachment {
        name: String::new(),
        content_type: String::new(),
        data: Vec::new(),
    };
    let step = FallbackStep {
        channel: Channel::Sms,
        text: String::new(),
        subject: None,
        template_code: None,
    };
    let requests = [
        MessageRequest {
            vars: pairs.clone(),
            ..base()
        },
        MessageRequest {
            attachments: vec![attachment; n],
            ..base()
        },
        MessageRequest {
            fallback: vec![step; n],
            ..base()
        },
        MessageRequest {
            push: Some(PushOptions {
                title: String::new(),
                data: pairs,
            }),
            ..base()
        },
    ];
    for request in requests {
        let rec = Record::Accepted(Box::new(AcceptedRecord {
            id: MessageId::new(0, 1),
            group_code: String::new(),
            client_id: String::new(),
            created_at_ms: 0,
            status: Status::Accepted,
            price: 0,
            fallback_of: None,
            request,
        }));
        let (kind, bytes) = rec.encode();
        assert_eq!(Record::decode(kind, &bytes).expect("decodes"), rec);
    }
}
