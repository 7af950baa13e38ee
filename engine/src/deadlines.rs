//! The shard's deadlines on its timer wheel (DESIGN §5): scheduled sends
//! and webhook retries. One task per shard sleeps until the wheel's next
//! deadline (or until an earlier one is added), advances the wheel and acts
//! on what fired.
//!
//! Deadlines are never persisted: they come from WAL records (`send_at`,
//! a report's `next_due_ms`) and are put back on the wheel at start-up.
//! Nothing is cancelled: a fired deadline is checked against the message's
//! state (a canceled scheduled send, a report delivered meanwhile, are
//! ignored). SMPP sessions keep their own per-connection deadlines
//! (response timeouts, enquire_link) in their task; held messages are
//! retried and expired by the shard's tick. Shard-local.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

pub use crate::core::Due;
use crate::notify::LocalNotify;
use crate::shard::Shard;
use crate::timer::TimerWheel;
use crate::unix_ms;

/// The longest the driver sleeps with nothing due (it also notices a
/// draining shard this often).
const IDLE: Duration = Duration::from_secs(1);

/// The shard's wheel and its driver's wake-up. Shard-local.
pub struct Deadlines {
    wheel: RefCell<TimerWheel<Due>>,
    /// When the driver will next look (unix ms); an earlier deadline wakes it.
    armed_at: Cell<u64>,
    wake: LocalNotify,
    report_retries: Cell<usize>,
    held_back: Cell<usize>,
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines {
            wheel: RefCell::new(TimerWheel::new(now())),
            armed_at: Cell::new(0),
            wake: LocalNotify::default(),
            report_retries: Cell::new(0),
            held_back: Cell::new(0),
        }
    }
}

fn now() -> u64 {
    unix_ms().max(0) as u64
}

impl Deadlines {
    /// Acts on `due` at `at_ms` (unix ms; a past time fires at once).
    pub fn at(&self, at_ms: i64, due: Due) {
        let at = at_ms.max(0) as u64;
        self.wheel.borrow_mut().insert(at, due);
        match due {
            Due::ReportRetry(_) => self.report_retries.set(self.report_retries.get() + 1),
            Due::ReportHeldBack(_) => self.held_back.set(self.held_back.get() + 1),
            Due::Send(_) => {}
        }
        if at < self.armed_at.get() {
            self.wake.notify();
        }
    }

    /// Webhook retries waiting (a gauge).
    pub fn report_retries(&self) -> usize {
        self.report_retries.get()
    }

    /// Reports held back by a full endpoint queue, waiting to be offered
    /// again (a gauge).
    pub fn held_back(&self) -> usize {
        self.held_back.get()
    }

    fn fire(&self, now_ms: u64) -> Vec<Due> {
        let mut fired = Vec::new();
        self.wheel.borrow_mut().advance(now_ms, &mut fired);
        let count = |f: fn(&Due) -> bool| fired.iter().filter(|d| f(d)).count();
        let retries = count(|d| matches!(d, Due::ReportRetry(_)));
        let held_back = count(|d| matches!(d, Due::ReportHeldBack(_)));
        self.report_retries
            .set(self.report_retries.get().saturating_sub(retries));
        self.held_back
            .set(self.held_back.get().saturating_sub(held_back));
        fired
    }
}

/// The shard's deadline driver (one task per shard).
pub async fn run(shard: Rc<Shard>) {
    let deadlines = &shard.deadlines;
    loop {
        if shard.shared.is_draining() {
            return;
        }
        let t = now();
        let mut sends = Vec::new();
        for due in deadlines.fire(t) {
            match due {
                Due::Send(id) => sends.push(id),
                Due::ReportRetry(id) | Due::ReportHeldBack(id) => {
                    crate::shard::reports::send_report(&shard, id)
                }
            }
        }
        if !sends.is_empty() {
            crate::shard::routing::route(&shard, sends).await;
        }
        let t = now();
        let idle_until = t + IDLE.as_millis() as u64;
        let next = deadlines
            .wheel
            .borrow()
            .next_deadline()
            .map_or(idle_until, |d| d.min(idle_until));
        deadlines.armed_at.set(next);
        if next > t {
            deadlines
                .wake
                .sleep_unless_notified(Duration::from_millis(next - t))
                .await;
        }
    }
}
