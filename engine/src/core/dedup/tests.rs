use super::*;

fn settings(window_secs: u32, exact_secs: u32) -> DedupSettings {
    DedupSettings {
        window_secs,
        exact_secs,
        print_bits: 64,
    }
}

#[test]
fn claim_duplicate_release_and_expiry() {
    let mut t = DedupTable::new(100);
    let k = DedupKey::new("A1", "x");
    let a = MessageId::new(0, 1);
    let b = MessageId::new(1, 1);
    assert_eq!(t.claim(k, a, 1000), ClaimOutcome::Claimed);
    assert_eq!(t.claim(k, b, 1005), ClaimOutcome::Duplicate(a));
    t.release(k, b); // not the holder: no effect
    assert_eq!(t.lookup(k, 1005), vec![a]);
    // Past `exact-for` (10 s) the fingerprint names the holder as a
    // candidate; the driver compares.
    assert_eq!(t.claim(k, b, 1050), ClaimOutcome::Check(vec![a]));
    t.resolve(k, b, a);
    assert_eq!(
        t.lookup(k, 1051),
        vec![a],
        "the exact entry names the original"
    );
    assert_eq!(t.claim(k, b, 1200), ClaimOutcome::Claimed, "window passed");
    t.release(k, b);
    assert_eq!(t.lookup(k, 1200), Vec::<MessageId>::new());
}

#[test]
fn a_fingerprint_collision_is_a_check_never_a_rejection() {
    // Two keys that differ only in bits the fingerprint does not use.
    let mut t = DedupTable::with(DedupSettings {
        print_bits: 8,
        ..settings(1000, 0)
    });
    let (k1, k2) = (DedupKey(1 << 64), DedupKey((1 << 64) | (1 << 100)));
    let (a, b) = (MessageId::new(0, 1), MessageId::new(0, 2));
    assert_eq!(t.claim(k1, a, 10), ClaimOutcome::Claimed);
    // k2 shares k1's fingerprint: taken provisionally, a is a candidate.
    assert_eq!(t.claim(k2, b, 11), ClaimOutcome::Check(vec![a]));
    // Not a duplicate (the driver found a's key differs): b keeps it.
    assert_eq!(t.lookup(k2, 12), vec![a, b]);
    assert_eq!(t.len(), 2);
}

#[test]
fn exact_entries_answer_without_a_check_and_age_into_fingerprints() {
    let mut t = DedupTable::with(settings(1000, 10));
    let k = DedupKey::new("g", "s");
    let a = MessageId::new(0, 7);
    assert_eq!(t.claim(k, a, 100), ClaimOutcome::Claimed);
    assert_eq!(
        t.claim(k, MessageId::new(0, 8), 109),
        ClaimOutcome::Duplicate(a)
    );
    assert_eq!(
        t.claim(k, MessageId::new(0, 9), 110),
        ClaimOutcome::Check(vec![a])
    );
}

#[test]
fn tables_go_whole_once_their_newest_key_is_out_of_the_window() {
    let mut t = DedupTable::with(settings(100, 0));
    for i in 0..10_000u64 {
        t.claim(
            DedupKey::new("g", &i.to_string()),
            MessageId::new(0, i),
            1000,
        );
    }
    assert_eq!(t.len(), 10_000);
    t.claim(DedupKey::new("g", "late"), MessageId::new(0, 99_999), 1099);
    assert!(t.len() > 10_000, "nothing is out of the window yet");
    t.claim(
        DedupKey::new("g", "later"),
        MessageId::new(0, 100_000),
        1100,
    );
    assert!(
        t.len() < 5000,
        "the full tables of t=1000 went: {}",
        t.len()
    );
    t.claim(DedupKey::new("g", "last"), MessageId::new(0, 100_001), 1300);
    assert_eq!(t.len(), 1, "only the newest key is left");
}

#[test]
fn a_key_costs_at_most_16_bytes() {
    // SPEC/issue: in memory as fingerprints of at most 16 bytes a key,
    // measured over a window that keeps turning (a day of keys at a
    // steady rate, scaled down: 200,000 keys in the window).
    let mut t = DedupTable::with(settings(200, 0));
    let mut worst = 0.0f64;
    for i in 0..600_000u64 {
        let now = 10_000 + (i / 1000) as u32;
        let key = DedupKey(u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 64 | u128::from(i));
        t.claim(key, MessageId::new(0, i), now);
        if i > 300_000 && i % 10_000 == 0 {
            let per_key = t.bytes() as f64 / 200_000.0;
            worst = worst.max(per_key);
        }
    }
    eprintln!("dedup: at most {worst:.2} bytes per key in the window");
    assert!(worst <= 16.0, "{worst:.1} bytes per key in the window");
}

#[test]
fn the_image_round_trips_and_shares_tables() {
    let mut t = DedupTable::with(settings(1000, 3));
    for i in 0..5000u64 {
        t.claim(
            DedupKey::new("g", &i.to_string()),
            MessageId::new(1, i),
            500 + (i / 1000) as u32,
        );
    }
    let image = t.image();
    let mut bytes = Vec::new();
    image.encode(&mut bytes).expect("encodes");
    assert!(
        DedupImage::decode(&bytes[..bytes.len() - 1]).is_none(),
        "truncated"
    );
    let back = DedupImage::decode(&bytes).expect("decodes");
    let mut u = DedupTable::from_image(settings(1000, 3), back, 505);
    assert_eq!(u.len(), 5000);
    // Claimed at 504: still exact after the restart.
    let k = DedupKey::new("g", "4999");
    assert_eq!(
        u.claim(k, MessageId::new(0, 1), 505),
        ClaimOutcome::Duplicate(MessageId::new(1, 4999))
    );
    let old = DedupKey::new("g", "10");
    assert_eq!(
        u.claim(old, MessageId::new(0, 2), 505),
        ClaimOutcome::Check(vec![MessageId::new(1, 10)])
    );
    // Writing to the live table after the image leaves the image as it was.
    t.claim(DedupKey::new("g", "new"), MessageId::new(1, 9999), 506);
    assert_eq!(image.prints.len(), 5000);
}

#[test]
fn keys_differ_by_customer() {
    assert_ne!(DedupKey::new("A1", "x"), DedupKey::new("A2", "x"));
    assert_ne!(DedupKey::new("A1", "x"), DedupKey::new("A1x", ""));
}

#[test]
fn restore_drops_expired_entries() {
    let mut t = DedupTable::new(10);
    t.restore(DedupKey::new("g", "old"), MessageId::new(0, 1), 100, 200);
    t.restore(DedupKey::new("g", "new"), MessageId::new(0, 2), 195, 200);
    assert_eq!(t.len(), 1);
}

#[test]
fn a_window_that_starts_is_a_few_tables_not_hundreds() {
    // A server a minute after its start, a day's window: a million keys.
    // Sized a thirty-second of the keys held each, they made ~190 tables,
    // every one probed by each claim; while the window first fills each is
    // twice the last, up to a quarter of the keys.
    let mut t = DedupTable::with(settings(86_400, 0));
    for i in 0..1_000_000u64 {
        let now = 10_000 + (i / 16_667) as u32;
        let key = DedupKey(u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 64 | u128::from(i));
        t.claim(key, MessageId::new(0, i), now);
    }
    let tables = t.prints.table_count();
    eprintln!(
        "{tables} tables, {:.1} bytes per key",
        t.bytes() as f64 / 1e6
    );
    assert!(tables <= 20, "{tables} tables");
    assert!(
        t.bytes() as f64 / 1e6 <= 16.0,
        "still at most 16 bytes a key"
    );
}
