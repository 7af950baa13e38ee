//! The accept plan in SPEC order (3005 → 3004 → 3003 → 3016 → 3006 →
//! 3007 → 3009–3012 → 3008), with made-up claim, lease and debit outcomes.

use std::collections::HashMap;

use super::*;
use crate::catalog::{BillCode, ChannelService, Customer};

const NOW: i64 = 1_800_000_000_000; // 2027-01-15 08:00 UTC, 17:00 in Seoul

fn customer(prepaid: bool, balance: i64) -> CustomerView {
    let mut c = CustomerView {
        customer: Some(Customer {
            group_code: "A1".into(),
            name: "A".into(),
            vas: false,
            prepaid,
            balance,
            charges_offset: 0,
        }),
        ..CustomerView::default()
    };
    // PUSH is the channel with a backlog bound: `run` hands it the
    // budget given for PUSH as backlog slots.
    for (channel, tps, max_backlog) in [
        (Channel::Sms, 3, 0),
        (Channel::Lms, 0, 0),
        (Channel::Push, 0, 2),
    ] {
        let service = ChannelService {
            enabled: true,
            tps,
            max_backlog,
        };
        c.services.channels.insert(channel, service);
    }
    for code in ["B1", "AD", "BULK"] {
        let bill = BillCode {
            bill_code: code.into(),
            ad: code == "AD",
            class: match code {
                "BULK" => Class::Bulk,
                _ => Class::Realtime,
            },
        };
        c.bill_codes.insert(code.into(), bill);
    }
    c.caller_ids.insert("0212345678".into());
    c.opt_outs.insert("01099990000".into());
    c
}

fn sms(src: &str) -> MessageRequest {
    MessageRequest::test_sms(src)
}

fn ids() -> impl FnMut() -> MessageId {
    let mut next = 0;
    move || {
        next += 1;
        MessageId::new(0, next)
    }
}

fn code(v: &Verdict) -> u16 {
    match v {
        Verdict::Accepted { .. } => 1000,
        Verdict::Rejected { code, .. } => code.as_u16(),
    }
}

/// Runs every step with the outcomes given: the originals of duplicates,
/// the TPS budget per channel and which debits the balance allows.
fn run(
    customer: &CustomerView,
    items: Vec<Result<MessageRequest, Verdict>>,
    duplicates: &[Option<MessageId>],
    budget: &[(Channel, u32)],
    paid: Option<&[bool]>,
) -> Outcome {
    let mut plan = Plan::new(customer, "A1", items, ids());
    let originals: Vec<Option<MessageId>> = (0..plan.keys().len())
        .map(|i| duplicates.get(i).copied().flatten())
        .collect();
    plan.duplicates(&originals, true);
    plan.spend_tps(budget.iter().copied().collect());
    plan.spend_backlog(
        budget
            .iter()
            .copied()
            .filter(|(c, _)| *c == Channel::Mms)
            .collect(),
    );
    plan.policy(&SpamKeywords::new(["대출"]), NOW);
    if let Some((_, prices)) = plan.prices(|_| 10) {
        let paid = paid.map_or(vec![true; prices.len()], <[bool]>::to_vec);
        plan.charged(&paid);
    }
    plan.finish()
}

#[test]
fn the_first_failing_check_in_spec_order_decides_the_code() {
    let c = customer(true, 10);
    // Each message fails every check from its own on; the first one wins.
    let mut disabled = sms("disabled");
    disabled.channel = Channel::Mms;
    disabled.bill_code = "nope".into();
    disabled.from = Some("000".into());
    let mut bill = sms("bill");
    bill.bill_code = "nope".into();
    bill.from = Some("000".into());
    let mut caller = sms("caller");
    caller.from = Some("000".into());
    let mut dup = sms("dup");
    dup.text = "대출 상담".into();
    let mut tps = sms("tps");
    tps.text = "대출 상담".into();
    // The rest go on LMS, which has no TPS limit here.
    let lms = |src: &str| {
        let mut m = sms(src);
        m.channel = Channel::Lms;
        m
    };
    let spam = {
        let mut m = sms("spam");
        m.channel = Channel::Lms;
        m.text = "저금리 대출".into();
        m
    };
    let unmarked = {
        let mut m = sms("unmarked");
        m.channel = Channel::Lms;
        m.bill_code = "AD".into();
        m
    };
    let opted = {
        let mut m = sms("opted");
        m.channel = Channel::Lms;
        m.ad = true;
        m.text = "(광고) 세일 무료수신거부 080-123-4567".into();
        m.to = "01099990000".into();
        m
    };
    let fine = lms("fine");
    let broke = lms("broke");
    let schema = Err(Verdict::rejected(ResultCode::InvalidField));
    let items = vec![
        Ok(disabled),
        Ok(bill),
        Ok(caller),
        schema,
        Ok(dup),
        Ok(tps),
        Ok(spam),
        Ok(unmarked),
        Ok(opted),
        Ok(fine),
        Ok(broke),
    ];
    // The dedup keys are those of the catalog survivors, in order:
    // dup, tps, spam, unmarked, opted, fine, broke.
    let original = MessageId::new(1, 99);
    let dups = [Some(original)];
    // SMS has a TPS limit and no token is left for `tps`.
    let budget = [(Channel::Sms, 0)];
    // A balance of 10 pays one message: fine, then broke is refused.
    let outcome = run(&c, items, &dups, &budget, Some(&[true, false]));
    let codes: Vec<u16> = outcome.verdicts.iter().map(code).collect();
    // Survivors are still marked `Accepted` (1000) until commit.
    assert_eq!(
        codes,
        vec![3005, 3004, 3003, 3013, 3006, 3007, 3009, 3010, 3012, 1000, 3008]
    );
    assert_eq!(
        outcome.verdicts[4],
        Verdict::Rejected {
            code: ResultCode::DuplicateSrcMsgId,
            reason: ResultCode::DuplicateSrcMsgId.description().to_string(),
            original: Some(original),
        }
    );
    assert_eq!(outcome.survivors.len(), 1);
    assert_eq!(outcome.survivors[0].request.src_msg_id, "fine");
    assert_eq!(outcome.survivors[0].price, 10);
    // Only the policy rejections are kept for the blocked list.
    let mut outcome = outcome;
    let origin = Origin {
        group_code: "A1",
        client_id: "c1",
    };
    let blocked = outcome.blocked_records(origin, NOW);
    let kept: Vec<(&str, u16)> = blocked
        .iter()
        .map(|b| (b.src_msg_id.as_str(), b.code))
        .collect();
    assert_eq!(
        kept,
        vec![
            ("caller", 3003),
            ("spam", 3009),
            ("unmarked", 3010),
            ("opted", 3012)
        ]
    );
    let spam = &blocked[1];
    assert_eq!((spam.at_ms, spam.client_id.as_str()), (NOW, "c1"));
    assert_eq!(spam.excerpt, "저금리 대출");
    assert_eq!(
        spam.text_hash,
        crate::core::accept::text_hash("저금리 대출")
    );
    assert_eq!(spam.text_hash.len(), 64);
    let ids: std::collections::HashSet<MessageId> = blocked.iter().map(|b| b.id).collect();
    assert_eq!(ids.len(), 4, "each entry has an id of its own");
    assert!(
        outcome.blocked_records(origin, NOW).is_empty(),
        "taken once"
    );
}

#[test]
fn claims_of_messages_rejected_after_claiming_are_given_back() {
    let c = customer(true, 10);
    let items = vec![Ok(sms("a")), Ok(sms("b")), Ok(sms("c")), Ok(sms("d"))];
    let mut spam = sms("e");
    spam.channel = Channel::Lms;
    spam.text = "대출".into();
    let mut items = items;
    items.push(Ok(spam));
    // b is a duplicate (not claimed), a and c take the 2 TPS tokens, d
    // finds none left, e (LMS, no limit) is spam; a and c are paid.
    let dups = [None, Some(MessageId::new(1, 5))];
    let outcome = run(&c, items, &dups, &[(Channel::Sms, 2)], Some(&[true, true]));
    let released: Vec<MessageId> = outcome.release.iter().map(|(_, id)| *id).collect();
    let codes: Vec<u16> = outcome.verdicts.iter().map(code).collect();
    assert_eq!(codes, vec![1000, 3006, 1000, 3007, 3009]);
    // The ids follow request order.
    assert_eq!(
        released,
        vec![MessageId::new(0, 4), MessageId::new(0, 5)],
        "d (3007) and e (3009) claimed and gave back; b never claimed"
    );
    assert_eq!(
        outcome.rejections,
        vec![
            (Channel::Sms, ResultCode::DuplicateSrcMsgId),
            (Channel::Sms, ResultCode::TpsExceeded),
            (Channel::Lms, ResultCode::SpamKeyword),
        ]
    );
}

#[test]
fn tps_is_counted_in_parts_and_only_for_limited_channels() {
    let c = customer(false, 0);
    let mut long = sms("long");
    long.parts = 3;
    let mut lms = sms("lms");
    lms.channel = Channel::Lms;
    let plan = Plan::new(&c, "A1", vec![Ok(long), Ok(sms("one")), Ok(lms)], ids());
    assert_eq!(plan.tps_needs(), vec![(Channel::Sms, 4, 3)]);
    let mut plan = plan;
    let left = plan.spend_tps(HashMap::from([(Channel::Sms, 3)]));
    assert_eq!(left, HashMap::from([(Channel::Sms, 0)]));
    let codes: Vec<u16> = plan.finish().verdicts.iter().map(code).collect();
    assert_eq!(codes, vec![1000, 3007, 1000], "3 parts took the 3 tokens");
}

#[test]
fn a_customer_that_is_not_prepaid_is_not_priced() {
    let c = customer(false, 0);
    let mut plan = Plan::new(&c, "A1", vec![Ok(sms("a"))], ids());
    assert_eq!(plan.prices(|_| 10), None);
    let c = customer(true, 25);
    let mut long = sms("long");
    long.parts = 2;
    let mut plan = Plan::new(&c, "A1", vec![Ok(sms("a")), Ok(long)], ids());
    assert_eq!(plan.prices(|_| 10), Some((25, vec![10, 20])));
}

#[test]
fn commit_and_dry_run_give_the_survivors_their_verdicts() {
    let c = customer(false, 0);
    let mut later = sms("later");
    later.send_at = Some(NOW + 60_000);
    let items = || vec![Ok(sms("now")), Ok(later.clone())];
    let origin = Origin {
        group_code: "A1",
        client_id: "c1",
    };
    let mut outcome = run(&c, items(), &[], &[(Channel::Sms, 10)], None);
    let committed = outcome.commit(origin, NOW);
    assert_eq!(
        committed[1].claim,
        (DedupKey::new("A1", "later"), MessageId::new(0, 2))
    );
    let records: Vec<AcceptedRecord> = committed.into_iter().map(|a| a.record).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (
            records[1].status,
            records[1].created_at_ms,
            records[1].client_id.as_str()
        ),
        (Status::Scheduled, NOW, "c1")
    );
    assert_eq!(
        outcome.verdicts,
        vec![
            Verdict::Accepted {
                id: Some(MessageId::new(0, 1)),
                status: Status::Accepted
            },
            Verdict::Accepted {
                id: Some(MessageId::new(0, 2)),
                status: Status::Scheduled
            },
        ]
    );
    // A dry run claims nothing, so it never has claims to give back.
    let mut plan = Plan::new(&c, "A1", items(), || MessageId(0));
    plan.duplicates(&[None, None], false);
    plan.spend_tps(HashMap::from([(Channel::Sms, 0)]));
    let outcome = plan.finish();
    assert!(outcome.release.is_empty());
    let verdicts = outcome.dry_run(NOW);
    assert_eq!(code(&verdicts[0]), 3007);
    assert_eq!(
        verdicts[1],
        Verdict::Rejected {
            code: ResultCode::TpsExceeded,
            reason: "TPS limit of 3 for SMS exceeded".into(),
            original: None
        }
    );
}

/// SPEC §5.3: past TPS, a message over its channel's `max_backlog` is 3014
/// (in request order); a message rejected later (policy, prepaid) gives
/// its slot back, and the survivors hold theirs.
#[test]
fn backlog_slots_are_spent_in_order_and_given_back_by_later_rejections() {
    let c = customer(false, 0);
    let push = |src: &str, text: &str| {
        let mut m = sms(src);
        m.channel = Channel::Push;
        m.text = text.into();
        m
    };
    let items = vec![
        Ok(push("spam", "저금리 대출")),
        Ok(push("fine", "hello")),
        Ok(push("over-1", "hello")),
        Ok(push("over-2", "hello")),
        Ok(sms("sms")),
    ];
    let mut plan = Plan::new(&c, "A1", items, ids());
    assert_eq!(plan.backlog_needs(), vec![(Channel::Push, 4, 2)]);
    plan.duplicates(&[None; 5], true);
    plan.spend_tps(HashMap::from([(Channel::Sms, 3)]));
    plan.spend_backlog(HashMap::from([(Channel::Push, 2)]));
    plan.policy(&SpamKeywords::new(["대출"]), NOW);
    let mut out = plan.finish();
    let codes: Vec<u16> = out.verdicts.iter().map(code).collect();
    assert_eq!(
        codes[..4],
        [3009, 1000, 3014, 3014],
        "spam took a slot, then policy"
    );
    assert_eq!(out.backlog_back, vec![(Channel::Push, 1)]);
    let kept = out.commit(
        Origin {
            group_code: "A1",
            client_id: "c1",
        },
        NOW,
    );
    let held: Vec<(&str, bool)> = kept
        .iter()
        .map(|a| (a.record.request.src_msg_id.as_str(), a.backlog))
        .collect();
    assert_eq!(held, vec![("fine", true), ("sms", false)]);
}

#[test]
fn every_accepted_message_gets_its_class_from_priority_ad_or_bill_code() {
    let c = customer(false, 0);
    let with = |bill: &str, ad: bool, priority: Option<Class>| {
        let mut m = sms("x");
        m.bill_code = bill.into();
        m.ad = ad;
        m.priority = priority;
        if ad {
            m.text = "(광고) 세일 무료수신거부 080-123-4567".into();
        }
        m
    };
    let items = vec![
        Ok(with("B1", false, None)),
        Ok(with("BULK", false, None)),
        Ok(with("AD", false, None)),
        Ok(with("B1", true, None)),
        Ok(with("BULK", false, Some(Class::Otp))),
    ];
    let classes: Vec<Option<Class>> = Plan::new(&c, "A1", items, ids())
        .finish()
        .survivors
        .iter()
        .map(|p| p.request.priority)
        .collect();
    assert_eq!(
        classes,
        [
            Class::Realtime,
            Class::Bulk,
            Class::Ad,
            Class::Ad,
            Class::Otp
        ]
        .map(Some)
    );
}

/// A reseller (`vas`) with origin code `BIZ-1` registered.
fn reseller() -> CustomerView {
    let mut c = customer(false, 0);
    if let Some(row) = c.customer.as_mut() {
        row.vas = true;
    }
    c.origin_codes.insert("BIZ-1".into());
    c
}

fn with_origin(src: &str, origin: Option<&str>) -> MessageRequest {
    let mut m = sms(src);
    m.channel = Channel::Lms;
    m.origin_code = origin.map(str::to_string);
    m
}

/// SPEC §5.11: a reseller's message needs a registered origin code (3016),
/// checked right after the caller ID; a non-reseller's is carried as sent.
#[test]
fn a_resellers_origin_code_is_required_and_registered() {
    let mut caller = with_origin("caller", None);
    caller.from = Some("000".into());
    let items = vec![
        Ok(with_origin("none", None)),
        Ok(with_origin("unknown", Some("BIZ-2"))),
        Ok(with_origin("registered", Some("BIZ-1"))),
        Ok(caller),
    ];
    let mut outcome = run(&reseller(), items, &[], &[], None);
    let codes: Vec<u16> = outcome.verdicts.iter().map(code).collect();
    assert_eq!(codes, vec![3016, 3016, 1000, 3003]);
    let Verdict::Rejected { reason, .. } = &outcome.verdicts[1] else {
        panic!("rejected");
    };
    assert!(reason.contains("BIZ-2"), "{reason}");
    // Both 3016 rejections are policy blocks, kept for the blocked list.
    let origin = Origin {
        group_code: "A1",
        client_id: "c1",
    };
    let blocked: Vec<u16> = outcome
        .blocked_records(origin, NOW)
        .iter()
        .map(|b| b.code)
        .collect();
    assert_eq!(blocked, vec![3016, 3016, 3003]);
    let accepted = outcome.commit(origin, NOW);
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        accepted[0].record.request.origin_code.as_deref(),
        Some("BIZ-1")
    );

    let items = vec![
        Ok(with_origin("plain", None)),
        Ok(with_origin("carried", Some("ANY-CODE"))),
    ];
    let mut outcome = run(&customer(false, 0), items, &[], &[], None);
    let codes: Vec<u16> = outcome.verdicts.iter().map(code).collect();
    assert_eq!(codes, vec![1000, 1000]);
    let accepted = outcome.commit(origin, NOW);
    assert_eq!(
        accepted[1].record.request.origin_code.as_deref(),
        Some("ANY-CODE")
    );
}

/// SPEC §5.11: a reseller's text is matched strictly, a non-reseller's
/// normally (spaces and zero-width only).
#[test]
fn a_resellers_keywords_are_matched_strictly() {
    let texts = ["대 출 상담", "대.출 상담", "대ㆍ출 상담", "대\u{200B}출"];
    let make = || {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut m = with_origin(&format!("t{i}"), Some("BIZ-1"));
                m.text = (*t).into();
                Ok(m)
            })
            .collect::<Vec<_>>()
    };
    let strict = run(&reseller(), make(), &[], &[], None);
    let codes: Vec<u16> = strict.verdicts.iter().map(code).collect();
    assert_eq!(codes, vec![3009, 3009, 3009, 3009]);
    let normal = run(&customer(false, 0), make(), &[], &[], None);
    let codes: Vec<u16> = normal.verdicts.iter().map(code).collect();
    assert_eq!(codes, vec![3009, 1000, 1000, 3009]);
}
