//! Customer-wide limits across shards (DESIGN §2): TPS per customer and
//! channel, and prepaid balances. Each customer's state has an owning shard
//! (hash of `group_code`); everything else asks it over the mesh.
//!
//! TPS: the owner counts the parts it granted per customer and channel in a
//! sliding one-second window (100 slots of 10 ms) and grants only what keeps
//! the window at or under `tps`, so no 1 s window, however aligned, sees
//! more than the limit (plus what leased shards spend late, below); under
//! overload the window stays full, and a stall loses nothing that the next
//! second cannot use. Other shards lease parts in chunks of `tps / (20 ×
//! shards)` and spend them locally for up to [`LEASE_TTL`], so the hot path
//! rarely hops; a lease spent late or left unspent shifts at most one chunk
//! per shard (5 % of the limit).
//!
//! Prepaid: the owner serializes every debit, so a balance is never
//! overdrawn however many connections race. The balance itself is derived:
//! the catalog holds the operator's credit (`balance`, with the net charges
//! at the time it was set as `charges_offset`), and the charges are rebuilt
//! from the WALs at start-up (each accepted message records its price; a
//! refund is implied by its final state).

use std::collections::HashMap;
use std::time::Duration;

use crate::model::Channel;

/// How long a leased TPS chunk may be spent by the leasing shard.
pub const LEASE_TTL: Duration = Duration::from_millis(100);

/// Tokens a shard leases at once for a limit of `tps`.
pub fn lease_chunk(tps: u32, shards: usize) -> u32 {
    (tps / (20 * shards.max(1) as u32)).max(1)
}

/// Width of one slot of the sliding window.
const SLOT_MS: i64 = 10;

/// Slots in the one-second window.
const SLOTS: usize = 100;

/// One customer-channel window: parts granted per 10 ms slot over the last
/// second.
struct Bucket {
    slots: [u32; SLOTS],
    /// Index (in slots since the epoch) of the newest slot written.
    head: i64,
    /// Sum of `slots`.
    total: u32,
}

impl Bucket {
    fn new(now_slot: i64) -> Bucket {
        Bucket {
            slots: [0; SLOTS],
            head: now_slot,
            total: 0,
        }
    }

    /// Moves the window to `now_slot`, forgetting slots older than a second.
    fn advance(&mut self, now_slot: i64) {
        let steps = (now_slot - self.head).clamp(0, SLOTS as i64);
        for k in 1..=steps {
            let i = (self.head + k).rem_euclid(SLOTS as i64) as usize;
            self.total -= self.slots[i];
            self.slots[i] = 0;
        }
        self.head = self.head.max(now_slot);
    }

    fn add(&mut self, parts: u32) {
        self.slots[self.head.rem_euclid(SLOTS as i64) as usize] += parts;
        self.total += parts;
    }
}

/// The window slot of a time in unix milliseconds.
fn slot_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(SLOT_MS)
}

/// The limits this shard owns. Shard-local.
#[derive(Default)]
pub struct QuotaOwner {
    buckets: HashMap<(String, Channel), Bucket>,
    net_charges: HashMap<String, i64>,
    /// Messages accepted and not final, per customer and channel (only for
    /// channels with a `max_backlog`).
    backlog: HashMap<(String, Channel), u32>,
}

impl QuotaOwner {
    /// Grants up to `want` tokens of a customer's channel limit `tps` at
    /// `now_ms` (`take = false`: only says how many are there, for dry runs).
    pub fn lease(&mut self, now_ms: i64, req: LeaseRequest<'_>) -> u32 {
        let LeaseRequest {
            group,
            channel,
            tps,
            want,
            take,
        } = req;
        let slot = slot_of(now_ms);
        let b = self
            .buckets
            .entry((group.to_string(), channel))
            .or_insert_with(|| Bucket::new(slot));
        b.advance(slot);
        let granted = tps.saturating_sub(b.total).min(want);
        if take {
            b.add(granted);
        }
        granted
    }

    /// Debits `prices` in order while the balance allows; one verdict each.
    /// `credit` is the operator's balance plus its `charges_offset`.
    pub fn charge(&mut self, group: &str, credit: i64, prices: &[i64], take: bool) -> Vec<bool> {
        let net = self.net_charges.entry(group.to_string()).or_insert(0);
        let mut spent = *net;
        let verdicts = prices
            .iter()
            .map(|&p| {
                let ok = credit - spent >= p;
                if ok {
                    spent += p;
                }
                ok
            })
            .collect();
        if take {
            *net = spent;
        }
        verdicts
    }

    /// Gives back the price of a message that never reached a carrier.
    pub fn refund(&mut self, group: &str, amount: i64) {
        *self.net_charges.entry(group.to_string()).or_insert(0) -= amount;
    }

    /// Adds charges recovered from a WAL (start-up).
    pub fn restore(&mut self, group: &str, net: i64) {
        *self.net_charges.entry(group.to_string()).or_insert(0) += net;
    }

    /// The customer's net charges so far.
    pub fn net(&self, group: &str) -> i64 {
        self.net_charges.get(group).copied().unwrap_or(0)
    }

    /// Grants up to `want` backlog slots of a customer's channel under its
    /// `max` (`take = false`: only says how many are free, for dry runs).
    pub fn reserve_backlog(
        &mut self,
        group: &str,
        channel: Channel,
        want: u32,
        max: u32,
        take: bool,
    ) -> u32 {
        let used = self.backlog(group, channel);
        let granted = max.saturating_sub(used).min(want);
        if take && granted > 0 {
            *self
                .backlog
                .entry((group.to_string(), channel))
                .or_insert(0) += granted;
        }
        granted
    }

    /// Adds `n` slots (restored at start-up) or gives them back (`n < 0`:
    /// messages that became final, or reserved and then not accepted).
    pub fn adjust_backlog(&mut self, group: &str, channel: Channel, n: i64) {
        let key = (group.to_string(), channel);
        let now = i64::from(self.backlog.get(&key).copied().unwrap_or(0)) + n;
        match u32::try_from(now) {
            Ok(0) | Err(_) => self.backlog.remove(&key),
            Ok(v) => self.backlog.insert(key, v),
        };
    }

    /// Messages of the customer's channel accepted and not final.
    pub fn backlog(&self, group: &str, channel: Channel) -> u32 {
        if self.backlog.is_empty() {
            return 0;
        }
        let key = (group.to_string(), channel);
        self.backlog.get(&key).copied().unwrap_or(0)
    }
}

/// What [`QuotaOwner::lease`] is asked for.
#[derive(Debug, Clone, Copy)]
pub struct LeaseRequest<'a> {
    /// The customer.
    pub group: &'a str,
    /// The channel.
    pub channel: Channel,
    /// Its limit.
    pub tps: u32,
    /// Tokens wanted.
    pub want: u32,
    /// Take them (false: dry run, only look).
    pub take: bool,
}

/// TPS tokens this shard leased and has not spent, with their expiry in
/// unix ms. Shard-local.
#[derive(Default)]
pub struct LocalLeases {
    leases: HashMap<(String, Channel), (u32, i64)>,
}

impl LocalLeases {
    /// Takes up to `want` tokens unexpired at `now_ms`.
    pub fn take(&mut self, now_ms: i64, group: &str, channel: Channel, want: u32) -> u32 {
        let Some((tokens, expires)) = self.leases.get_mut(&(group.to_string(), channel)) else {
            return 0;
        };
        if *expires <= now_ms {
            *tokens = 0;
            return 0;
        }
        let got = (*tokens).min(want);
        *tokens -= got;
        got
    }

    /// Keeps `tokens` leased at `now_ms` for later requests, until the
    /// lease expires ([`LEASE_TTL`] later; earlier unspent tokens are
    /// renewed with it).
    pub fn keep(&mut self, now_ms: i64, group: &str, channel: Channel, tokens: u32) {
        if tokens > 0 {
            let expires = now_ms + LEASE_TTL.as_millis() as i64;
            let e = self
                .leases
                .entry((group.to_string(), channel))
                .or_insert((0, expires));
            if e.1 <= now_ms {
                e.0 = 0;
            }
            e.0 += tokens;
            e.1 = expires;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_is_never_overdrawn_and_refunds_free_it() {
        let mut q = QuotaOwner::default();
        assert_eq!(
            q.charge("g", 25, &[10, 10, 10], true),
            vec![true, true, false]
        );
        assert_eq!(
            q.charge("g", 25, &[5], false),
            vec![true],
            "dry run only looks"
        );
        assert_eq!(q.net("g"), 20);
        q.refund("g", 10);
        assert_eq!(q.charge("g", 25, &[10, 10], true), vec![true, false]);
        q.restore("h", 7);
        assert_eq!(q.net("h"), 7);
    }

    fn sms(want: u32, take: bool) -> LeaseRequest<'static> {
        LeaseRequest {
            group: "g",
            channel: Channel::Sms,
            tps: 1000,
            want,
            take,
        }
    }

    #[test]
    fn tps_window_slides() {
        let mut b = Bucket::new(1000);
        b.add(600);
        b.advance(1050);
        b.add(400);
        assert_eq!(b.total, 1000);
        b.advance(1100);
        assert_eq!(b.total, 400, "the slot from a second ago left the window");
        b.advance(5000);
        assert_eq!(b.total, 0);
        assert_eq!(lease_chunk(1000, 2), 25);
        assert_eq!(lease_chunk(5, 4), 1);
    }

    #[test]
    fn leases_never_grant_more_than_the_limit_in_any_second() {
        let mut q = QuotaOwner::default();
        let t = 1_700_000_000_000;
        assert_eq!(q.lease(t, sms(600, true)), 600);
        assert_eq!(
            q.lease(t + 500, sms(600, true)),
            400,
            "the rest of the second"
        );
        assert_eq!(
            q.lease(t + 999, sms(1, true)),
            0,
            "full until a second has passed"
        );
        // A dry run looks without taking.
        assert_eq!(q.lease(t + 999, sms(10_000, false)), 0);
        // The first grant leaves the window a second after it was made.
        assert_eq!(q.lease(t + 1000, sms(10_000, false)), 600);
        assert_eq!(
            q.lease(t + 1000, sms(10_000, false)),
            600,
            "still only looked"
        );
        assert_eq!(q.lease(t + 1000, sms(700, true)), 600);
        assert_eq!(q.lease(t + 1500, sms(700, true)), 400);
        // Another customer or channel has its own window.
        let lms = LeaseRequest {
            channel: Channel::Lms,
            ..sms(1000, true)
        };
        assert_eq!(q.lease(t + 1500, lms), 1000);
        // After a long pause the whole limit is there again.
        assert_eq!(q.lease(t + 60_000, sms(5000, true)), 1000);
    }

    #[test]
    fn leases_are_spent_then_expire() {
        let mut l = LocalLeases::default();
        let t = 1_700_000_000_000;
        let ttl = LEASE_TTL.as_millis() as i64;
        l.keep(t, "g", Channel::Sms, 5);
        assert_eq!(l.take(t, "g", Channel::Sms, 3), 3);
        assert_eq!(l.take(t + ttl - 1, "g", Channel::Sms, 3), 2);
        assert_eq!(l.take(t, "g", Channel::Lms, 3), 0);
        // Unspent tokens expire with their lease.
        l.keep(t, "g", Channel::Sms, 5);
        assert_eq!(l.take(t + ttl, "g", Channel::Sms, 1), 0);
        // A new lease renews the unspent ones with it.
        l.keep(t + 2 * ttl, "g", Channel::Sms, 4);
        l.keep(t + 2 * ttl + 50, "g", Channel::Sms, 1);
        assert_eq!(l.take(t + 3 * ttl + 49, "g", Channel::Sms, 10), 5);
    }
}

#[cfg(test)]
mod backlog_tests {
    use super::*;

    #[test]
    fn backlog_slots_are_granted_up_to_the_max_and_given_back() {
        let mut q = QuotaOwner::default();
        assert_eq!(q.reserve_backlog("G", Channel::Sms, 3, 5, true), 3);
        assert_eq!(
            q.reserve_backlog("G", Channel::Sms, 3, 5, false),
            2,
            "a look takes nothing"
        );
        assert_eq!(q.reserve_backlog("G", Channel::Sms, 3, 5, true), 2);
        assert_eq!(q.reserve_backlog("G", Channel::Sms, 1, 5, true), 0, "full");
        assert_eq!(
            q.reserve_backlog("G", Channel::Lms, 1, 5, true),
            1,
            "per channel"
        );
        assert_eq!(
            q.reserve_backlog("H", Channel::Sms, 9, 5, true),
            5,
            "per customer"
        );
        q.adjust_backlog("G", Channel::Sms, -2);
        assert_eq!(q.backlog("G", Channel::Sms), 3);
        assert_eq!(q.reserve_backlog("G", Channel::Sms, 9, 5, true), 2);
        q.adjust_backlog("G", Channel::Sms, -9);
        assert_eq!(q.backlog("G", Channel::Sms), 0, "never below zero");
        q.adjust_backlog("G", Channel::Sms, 4);
        assert_eq!(q.backlog("G", Channel::Sms), 4, "restored at start-up");
    }
}
