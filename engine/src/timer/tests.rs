//! The timer wheel: exact times, bounds and memory per entry.

use super::*;

/// A start time that is not aligned to any level, to catch arithmetic
/// that assumes the wheel starts at zero.
const T0: u64 = 1_710_000_123_457;

#[test]
fn a_shard_deadline_costs_32_bytes_plus_its_slot_index() {
    // docs/PERFORMANCE.md counts a pending webhook retry with this.
    assert_eq!(mem::size_of::<crate::deadlines::Due>(), 16);
    assert_eq!(mem::size_of::<Entry<crate::deadlines::Due>>(), 32);
}

/// A tiny deterministic generator (64-bit LCG, Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn advance(wheel: &mut TimerWheel<u64>, now: u64) -> Vec<u64> {
    let mut fired = Vec::new();
    wheel.advance(now, &mut fired);
    fired
}

#[test]
fn fires_in_deadline_order_across_levels() {
    let offsets = [
        90_000_000,
        4096,
        1,
        300_000,
        65,
        64,
        4095,
        63,
        2,
        1 << 30,
        1 << 35,
    ];
    let mut wheel = TimerWheel::new(T0);
    for off in offsets {
        wheel.insert(T0 + off, off);
    }
    assert_eq!(wheel.len(), offsets.len());
    let mut want = offsets.to_vec();
    want.sort_unstable();
    // One big step fires everything, in order.
    let fired = advance(&mut wheel, T0 + (1 << 36));
    assert_eq!(fired, want);
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn fires_exactly_at_the_deadline_in_small_steps() {
    let offsets = [1u64, 63, 64, 65, 4095, 4096, 4097, 262_144, 300_000];
    let mut wheel = TimerWheel::new(T0);
    for off in offsets {
        wheel.insert(T0 + off, off);
    }
    for now in T0..=T0 + 300_000 {
        for off in advance(&mut wheel, now) {
            assert_eq!(T0 + off, now, "timer {off} fired at {}", now - T0);
        }
    }
    assert!(wheel.is_empty());
}

#[test]
fn nothing_fires_before_its_deadline() {
    let mut wheel = TimerWheel::new(T0);
    wheel.insert(T0 + 4096, 1);
    assert!(advance(&mut wheel, T0 + 4095).is_empty());
    assert_eq!(wheel.len(), 1);
    assert_eq!(advance(&mut wheel, T0 + 4096), vec![1]);
}

#[test]
fn cancel_before_fire() {
    let mut wheel = TimerWheel::new(T0);
    let a = wheel.insert(T0 + 10, 1);
    let b = wheel.insert(T0 + 5000, 2);
    let c = wheel.insert(T0 + 5000, 3);
    assert!(wheel.cancel(b));
    assert!(!wheel.cancel(b), "a second cancel finds nothing pending");
    assert_eq!(wheel.len(), 2);
    assert_eq!(advance(&mut wheel, T0 + 10_000), vec![1, 3]);
    assert!(!wheel.cancel(a), "fired timers are not pending");
    assert!(!wheel.cancel(c));
    assert!(wheel.is_empty());
}

#[test]
fn stale_ids_do_not_cancel_reused_entries() {
    let mut wheel = TimerWheel::new(T0);
    let old = wheel.insert(T0 + 1, 1);
    assert_eq!(advance(&mut wheel, T0 + 1), vec![1]);
    let new = wheel.insert(T0 + 2, 2);
    assert_ne!(old, new);
    assert!(!wheel.cancel(old));
    assert_eq!(advance(&mut wheel, T0 + 2), vec![2]);
    // A cancelled shell is freed when its slot is reached, then reused.
    let gone = wheel.insert(T0 + 100, 3);
    assert!(wheel.cancel(gone));
    assert!(advance(&mut wheel, T0 + 200).is_empty());
    let reused = wheel.insert(T0 + 300, 4);
    assert!(!wheel.cancel(gone));
    assert_eq!(wheel.len(), 1);
    assert!(wheel.cancel(reused));
}

#[test]
fn cancelled_value_is_dropped_at_once() {
    let value = std::rc::Rc::new(());
    let mut wheel = TimerWheel::new(T0);
    let id = wheel.insert(T0 + 1_000_000, value.clone());
    assert_eq!(std::rc::Rc::strong_count(&value), 2);
    assert!(wheel.cancel(id));
    assert_eq!(std::rc::Rc::strong_count(&value), 1);
}

#[test]
fn past_deadlines_fire_at_the_next_advance_first() {
    let mut wheel = TimerWheel::new(T0);
    wheel.insert(T0 + 5, 5);
    wheel.insert(T0 - 10, 100);
    wheel.insert(T0, 0);
    wheel.insert(T0 - 20, 200);
    assert_eq!(wheel.next_deadline(), Some(T0 - 20));
    // Even an advance that does not move time fires them.
    assert_eq!(advance(&mut wheel, T0), vec![200, 100, 0]);
    assert_eq!(advance(&mut wheel, T0 + 5), vec![5]);
    // After time moved, a deadline at the wheel's time is in the past.
    wheel.insert(T0 + 5, 6);
    wheel.insert(T0 + 3, 7);
    assert_eq!(advance(&mut wheel, T0 + 4), vec![7, 6]);
}

#[test]
fn time_never_moves_back() {
    let mut wheel = TimerWheel::new(T0);
    wheel.insert(T0 + 100, 1);
    assert!(advance(&mut wheel, T0 - 1000).is_empty());
    assert_eq!(advance(&mut wheel, T0 + 100), vec![1]);
}

#[test]
fn deadlines_beyond_the_wheel_are_reinserted() {
    let span = 1u64 << WHEEL_BITS;
    let offsets = [3 * span + 7, span + 5, span - 1, 1, 2 * span];
    let mut wheel = TimerWheel::new(T0);
    for off in offsets {
        wheel.insert(T0 + off, off);
    }
    let mut fired = Vec::new();
    let mut now = T0;
    while !wheel.is_empty() {
        let next = wheel.next_deadline().expect("timers pending");
        assert!(next > now || now == T0, "next deadline moves forward");
        now = next.max(now + 1);
        let batch = advance(&mut wheel, now);
        for off in &batch {
            assert_eq!(T0 + off, now, "fired exactly at its deadline");
        }
        fired.extend(batch);
    }
    let mut want = offsets.to_vec();
    want.sort_unstable();
    assert_eq!(fired, want);
}

#[test]
fn next_deadline_is_exact_near_and_conservative_far() {
    let mut wheel = TimerWheel::new(T0);
    assert_eq!(wheel.next_deadline(), None);
    let far = wheel.insert(T0 + 300_000, 2);
    let next = wheel.next_deadline().expect("pending");
    assert!(next <= T0 + 300_000 && next > T0);
    wheel.insert(T0 + 3, 1);
    // Within 64 ms of the wheel's time it is exact... unless the near
    // deadline crosses a level-0 turn, in which case it is the turn.
    let next = wheel.next_deadline().expect("pending");
    assert!(next <= T0 + 3 && next > T0);
    assert_eq!(advance(&mut wheel, T0 + 3), vec![1]);
    assert!(wheel.cancel(far));
    assert_eq!(wheel.next_deadline(), None, "cancelled timers do not count");
}

/// Random deadlines, random cancels, random steps, against a sorted
/// reference; `next_deadline` is checked never to be late.
#[test]
fn random_deadlines_match_a_sorted_reference() {
    let mut rng = Lcg(0x5eed);
    let mut wheel = TimerWheel::new(T0);
    // (deadline, value) of pending timers, with their ids.
    let mut reference: Vec<(u64, u64, TimerId)> = Vec::new();
    let mut now = T0;
    let mut value = 0u64;
    for round in 0..400 {
        for _ in 0..rng.below(60) {
            let range = [70, 5_000, 300_000, 100_000_000, 1 << 37][rng.below(5) as usize];
            // Some deadlines fall in the past.
            let deadline = (now + rng.below(range)).saturating_sub(rng.below(3) * 10);
            value += 1;
            let id = wheel.insert(deadline, value);
            reference.push((deadline, value, id));
        }
        if rng.below(4) == 0 && !reference.is_empty() {
            let victim = rng.below(reference.len() as u64) as usize;
            let (_, _, id) = reference.swap_remove(victim);
            assert!(wheel.cancel(id));
        }
        assert_eq!(wheel.len(), reference.len());
        let earliest = reference.iter().map(|&(d, _, _)| d).min();
        match (wheel.next_deadline(), earliest) {
            (Some(next), Some(earliest)) => assert!(next <= earliest, "round {round}"),
            (next, earliest) => assert_eq!(next, earliest, "round {round}"),
        }
        let step = [1, 17, 64, 4_000, 250_000, 50_000_000, 1 << 36][rng.below(7) as usize];
        now += rng.below(step) + 1;
        let fired = advance(&mut wheel, now);
        let mut due: Vec<(u64, u64)> = reference
            .iter()
            .filter(|&&(d, _, _)| d <= now)
            .map(|&(d, v, _)| (d, v))
            .collect();
        due.sort_unstable();
        reference.retain(|&(d, _, _)| d > now);
        // Deadline order, ties in any order: compare sorted pairs and
        // check the fired deadlines never decrease.
        let deadline_of = |v: u64| due.iter().find(|&&(_, dv)| dv == v).map(|&(d, _)| d);
        let fired_deadlines: Vec<Option<u64>> = fired.iter().map(|&v| deadline_of(v)).collect();
        assert!(
            fired_deadlines.iter().all(Option::is_some),
            "round {round}: fired a stranger"
        );
        assert!(
            fired_deadlines.windows(2).all(|w| w[0] <= w[1]),
            "round {round}: out of order"
        );
        let mut fired_pairs: Vec<(u64, u64)> = fired
            .iter()
            .zip(&fired_deadlines)
            .map(|(&v, d)| (d.unwrap_or_default(), v))
            .collect();
        fired_pairs.sort_unstable();
        assert_eq!(fired_pairs, due, "round {round}");
    }
}

#[test]
fn entries_stay_small() {
    assert!(mem::size_of::<Entry<u64>>() <= mem::size_of::<u64>() + 32);
    assert_eq!(mem::size_of::<Entry<Box<u8>>>(), 24);
    assert_eq!(mem::size_of::<TimerId>(), 8);
}
