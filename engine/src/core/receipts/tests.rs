//! The receipt index and the receipt-id formats, with exact times.

use super::*;

/// The key a receipt id finds, given the submit id, under `format`
/// with what auto learned.
fn matches(format: ReceiptIdFormat, submit: &str, receipt: &str, learned: IdRelation) -> bool {
    let at_submit = ReceiptKey::new("S", &format.submit_id(submit));
    at_submit == ReceiptKey::new("S", &format.receipt_id(receipt, learned))
}

#[test]
fn matched_keys_do_not_stay_in_the_ttl_order() {
    let mut r = ReceiptIndex::default();
    let receipt = |_| Receipt {
        delivered: true,
        code: 2000,
    };
    for i in 0..100_000u64 {
        let key = ReceiptKey::new("S", &i.to_string());
        assert_eq!(r.index(i as i64, key, MessageId::new(0, i)), None);
        if i >= 10 {
            let old = ReceiptKey::new("S", &(i - 10).to_string());
            let got = r.arrived(i as i64, old, receipt(()));
            assert_eq!(got, Arrival::Matched(MessageId::new(0, i - 10)));
        }
    }
    assert_eq!(r.indexed(), 10);
    assert!(
        r.order_len() <= 2 * 10 + ORDER_SLACK + 1,
        "{}",
        r.order_len()
    );
}

#[test]
fn auto_ignores_case_and_leading_zeros_of_numbers_only() {
    use IdRelation::Same;
    let auto = ReceiptIdFormat::Auto;
    for (submit, receipt) in [
        ("00000000ab", "00000000ab"),
        ("00000000ab", "AB"),
        ("00000000ab", "00000000Ab"),
        ("0000001234", "1234"),
        ("000", "0"),
        ("msg-X1", "msg-X1"),
    ] {
        assert!(matches(auto, submit, receipt, Same), "{submit} {receipt}");
    }
    // Not numbers: as given (a base-62 id keeps its case).
    assert!(!matches(auto, "msg-X1", "MSG-X1", Same));
    assert!(!matches(auto, "aB3xZ", "Ab3xZ", Same));
    // Different numbers stay different.
    assert!(!matches(auto, "00000000ab", "00000000ac", Same));
    assert!(!matches(auto, "1234", "4660", Same));
}

#[test]
fn auto_reads_the_receipt_in_the_base_the_evidence_shows() {
    let auto = ReceiptIdFormat::Auto;
    // 0x1a2b = 6699; 0x1234 = 4660.
    let hex_to_dec = IdRelation::HexToDecimal;
    assert!(matches(auto, "00001a2b", "6699", hex_to_dec));
    assert!(matches(auto, "00001a2b", "00000000006699", hex_to_dec));
    assert!(
        matches(auto, "00001234", "4660", hex_to_dec),
        "hex without a letter"
    );
    assert!(!matches(auto, "00001a2b", "6699", IdRelation::Same));
    let dec_to_hex = IdRelation::DecimalToHex;
    assert!(matches(auto, "6699", "1A2B", dec_to_hex));
    assert!(matches(auto, "0006699", "00001a2b", dec_to_hex));
    assert!(
        matches(auto, "4660", "1234", dec_to_hex),
        "hex without a letter"
    );
    // An id of other characters is compared as given whatever the relation.
    assert!(matches(auto, "X-1", "X-1", dec_to_hex));
    // Longer than a u128: compared as normalized text.
    let long = "1".repeat(45);
    assert!(matches(auto, &long, &long, hex_to_dec));
}

#[test]
fn explicit_formats_pin_the_relation() {
    use IdRelation::{HexToDecimal, Same};
    let f = ReceiptIdFormat::HexToDecimal;
    assert!(matches(f, "00001234", "4660", Same), "whatever was learned");
    let f = ReceiptIdFormat::DecimalToHex;
    assert!(matches(f, "4660", "1234", Same));
    for f in [ReceiptIdFormat::Hex, ReceiptIdFormat::Decimal] {
        assert!(matches(f, "0012", "12", HexToDecimal), "never converted");
        assert!(!matches(f, "0012", "c", HexToDecimal));
    }
    assert!(matches(ReceiptIdFormat::Hex, "00ab", "AB", Same));
    let exact = ReceiptIdFormat::Exact;
    assert!(matches(exact, "00ab", "00ab", HexToDecimal));
    assert!(!matches(exact, "00ab", "ab", Same));
    assert!(!matches(exact, "00ab", "00AB", Same));
}

#[test]
fn the_evidence_shows_the_relation() {
    let shapes = ["123", "1a", "x-1", ""].map(shape);
    assert_eq!(
        shapes,
        [
            IdShape::Digits,
            IdShape::HexLetters,
            IdShape::Other,
            IdShape::Other
        ]
    );
    // (letters, digits-only ids, largest id read in hex) of each side.
    let e = |(submit_letters, submit_digits, submit_max),
             (receipt_letters, receipt_digits, receipt_max)| IdEvidence {
        submit_letters,
        submit_digits,
        submit_max,
        receipt_letters,
        receipt_digits,
        receipt_max,
    };
    let k = DECIMAL_AFTER;
    let (same, h2d, d2h) = (
        IdRelation::Same,
        IdRelation::HexToDecimal,
        IdRelation::DecimalToHex,
    );
    let none = (false, 0, 0);
    // A hex counter's ids up to 0x1e; a decimal one's up to 30, read
    // in hex (0x30); a decimal one's up to 200, read in hex (0x200).
    let hex = (true, 9, 0x1e);
    let (dec30, dec200) = ((false, k, 0x30), (false, k, 0x200));
    // (evidence, known, best guess)
    let table = [
        (e(none, none), None, same),
        // Letters on both sides: hex on both, whatever else was seen.
        (e(hex, (true, 0, 0x1e)), Some(same), same),
        // Only digits on both sides, enough of them: decimal on both.
        (e(dec30, dec30), Some(same), same),
        (e((false, k - 1, 0x30), dec30), None, same),
        // Letters at submit, only digits in receipts: decimal receipts
        // only once a receipt, read in hex, is beyond every submit...
        (e(hex, dec200), Some(h2d), h2d),
        // ...not for receipts that may be a hex counter's before its
        // first letter (its receipts come after its submits), however
        // many: a guess.
        (e(hex, (false, 1, 9)), None, h2d),
        (e(hex, (false, k, 9)), None, h2d),
        (e(hex, dec30), None, h2d),
        // ...and the reverse.
        (e(dec200, (true, 0, 0x1e)), Some(d2h), d2h),
        (e((false, 1, 9), hex), None, d2h),
        // Letters at submit and no receipt yet: nothing to say.
        (e(hex, none), None, same),
    ];
    for (evidence, known, guess) in table {
        assert_eq!(evidence.known(), known, "{evidence:?}");
        assert_eq!(evidence.relation(), guess, "{evidence:?}");
    }
}

#[test]
fn an_id_of_hex_digits_reads_as_a_hex_number() {
    assert_eq!(hex_value("0001A"), Some(26));
    assert_eq!(hex_value("000"), Some(0));
    assert_eq!(hex_value("x"), None);
    assert_eq!(hex_value("fffffffffffffffff"), Some(u64::MAX));
}

/// While the relation is not known, a receipt whose readings differ
/// waits; one that reads the same in every base (a number below ten,
/// an id of other characters) and every receipt once it is known go at once.
#[test]
fn a_receipt_waits_only_while_its_reading_is_in_doubt() {
    let auto = ReceiptIdFormat::Auto;
    let unsure = IdEvidence {
        submit_letters: true,
        receipt_digits: 1,
        ..IdEvidence::default()
    };
    assert!(auto.undecided("0000000010", unsure));
    assert!(auto.undecided("1a", unsure));
    assert!(!auto.undecided("0000000009", unsure));
    assert!(!auto.undecided("msg-1", unsure));
    let sure = IdEvidence {
        receipt_letters: true,
        ..unsure
    };
    assert!(!auto.undecided("0000000010", sure));
    assert!(!ReceiptIdFormat::Hex.undecided("0000000010", unsure));
}

const DELIVERED: Receipt = Receipt {
    delivered: true,
    code: 2000,
};

#[test]
fn a_receipt_finds_its_message_once() {
    let mut r = ReceiptIndex::default();
    let key = ReceiptKey::new("G_S_KT01", "00000000ab");
    let id = MessageId::new(1, 7);
    assert_eq!(r.index(0, key, id), None);
    assert_eq!(r.arrived(0, key, DELIVERED), Arrival::Matched(id));
    // A second receipt for the same id is not matched again.
    assert_eq!(r.arrived(0, key, DELIVERED), Arrival::Early);
    assert_ne!(key, ReceiptKey::new("G_S_KT02", "00000000ab"));
}

#[test]
fn an_offered_receipt_is_taken_only_when_indexed_and_never_kept() {
    let mut r = ReceiptIndex::default();
    let (key, other) = (ReceiptKey(1), ReceiptKey(2));
    r.index(0, key, MessageId(7));
    assert_eq!(r.offered(key), Some(MessageId(7)));
    assert_eq!(r.offered(key), None, "taken once");
    assert_eq!(r.offered(other), None);
    assert_eq!(
        (r.early(), r.indexed()),
        (0, 0),
        "an offer leaves nothing behind"
    );
    let receipt = Receipt {
        delivered: true,
        code: 2000,
    };
    assert_eq!(r.arrived(0, other, receipt), Arrival::Early);
    assert!(r.is_early(other));
    r.forget_early(other);
    assert!(!r.is_early(other) && r.early() == 0);
}

#[test]
fn an_early_receipt_waits_for_its_index() {
    let mut r = ReceiptIndex::default();
    let key = ReceiptKey::new("S", "1");
    let failed = Receipt {
        delivered: false,
        code: 5001,
    };
    assert_eq!(r.arrived(10, key, failed), Arrival::Early);
    assert_eq!(r.index(20, key, MessageId::new(0, 1)), Some(failed));
    assert_eq!(r.early(), 0);
}

#[test]
fn the_early_buffer_is_bounded_and_forgets_old_receipts_first() {
    let mut r = ReceiptIndex::default();
    for n in 0..EARLY_RECEIPTS_BOUND {
        let key = ReceiptKey::new("S", &n.to_string());
        assert_eq!(r.arrived(0, key, DELIVERED), Arrival::Early);
    }
    let late = ReceiptKey::new("S", "late");
    // Full, and nothing is old enough to forget.
    assert_eq!(
        r.arrived(EARLY_RECEIPT_TTL_MS - 1, late, DELIVERED),
        Arrival::Dropped
    );
    assert_eq!(r.early(), EARLY_RECEIPTS_BOUND);
    // A moment later every one of them has been kept for the TTL.
    assert_eq!(
        r.arrived(EARLY_RECEIPT_TTL_MS, late, DELIVERED),
        Arrival::Early
    );
    assert_eq!(r.early(), 1);
}

#[test]
fn a_key_whose_receipt_never_comes_is_forgotten_after_the_ttl() {
    let mut r = ReceiptIndex::default();
    let (lost, kept) = (ReceiptKey::new("S", "lost"), ReceiptKey::new("S", "kept"));
    assert_eq!(r.index(0, lost, MessageId::new(0, 1)), None);
    assert_eq!(r.index(INDEX_TTL_MS - 1, kept, MessageId::new(0, 2)), None);
    assert_eq!(r.indexed(), 2);
    // The next index after the TTL forgets the first key only.
    let other = ReceiptKey::new("S", "other");
    assert_eq!(r.index(INDEX_TTL_MS + 1, other, MessageId::new(0, 3)), None);
    assert_eq!(r.indexed(), 2);
    let at = INDEX_TTL_MS + 2;
    assert_eq!(r.arrived(at, lost, DELIVERED), Arrival::Early, "forgotten");
    assert_eq!(
        r.arrived(at, kept, DELIVERED),
        Arrival::Matched(MessageId::new(0, 2))
    );
}
