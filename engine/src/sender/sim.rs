//! The `sim` transport: an in-process simulated carrier for demos and tests.
//! It takes messages in batches, "submits" them after `latency_ms`, decides
//! each outcome from `success_rate` (deterministically from the message id,
//! so runs repeat), and sends the receipts `dlr_delay_ms` later. Shard-local.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{SessionEvent, SessionEvents, SessionQueue, SimConfig};
use crate::codes::ResultCode;
use crate::notify::LocalNotify;
use crate::rt;

/// Most messages one simulated submit round takes.
const BATCH: usize = 1024;

/// Runs one simulated session until `stop` is notified.
pub async fn run_session(
    config: SimConfig,
    queue: Rc<SessionQueue>,
    events: SessionEvents,
    stop: Rc<LocalNotify>,
) {
    events(SessionEvent::Up);
    let stopped = futures_lite::future::or(
        async {
            stop.notified().await;
            true
        },
        async {
            serve(&config, &queue, &events).await;
            false
        },
    )
    .await;
    if stopped {
        events(SessionEvent::Down {
            reason: "stopped".into(),
        });
    }
}

async fn serve(config: &SimConfig, queue: &SessionQueue, events: &SessionEvents) {
    let mut window_start = Instant::now();
    let mut sent_in_window = 0u32;
    loop {
        let first = queue.pop().await;
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_pop() {
                Some(m) => batch.push(m),
                None => break,
            }
        }
        if config.tps > 0 {
            // Token bucket per second: wait for the next second when spent.
            if window_start.elapsed() >= Duration::from_secs(1) {
                window_start = Instant::now();
                sent_in_window = 0;
            }
            let room = config.tps.saturating_sub(sent_in_window) as usize;
            if batch.len() > room {
                for m in batch.drain(room..).rev() {
                    queue.push_front(m);
                }
            }
            sent_in_window += batch.len() as u32;
            if batch.is_empty() {
                rt::sleep(Duration::from_secs(1).saturating_sub(window_start.elapsed())).await;
                continue;
            }
        }
        rt::sleep(Duration::from_millis(u64::from(config.latency_ms))).await;
        let mut receipts = Vec::with_capacity(batch.len());
        for m in batch {
            let carrier_id = format!("sim-{}", m.id);
            events(SessionEvent::Submitted {
                id: m.id,
                carrier_id: carrier_id.clone(),
            });
            receipts.push((carrier_id, delivered(m.id.0, config.success_rate)));
        }
        let events = events.clone();
        let delay = Duration::from_millis(u64::from(config.dlr_delay_ms));
        rt::spawn(async move {
            rt::sleep(delay).await;
            for (carrier_id, ok) in receipts {
                let (code, detail) = if ok {
                    (ResultCode::Delivered, "DELIVRD")
                } else {
                    (ResultCode::Undeliverable, "UNDELIV")
                };
                events(SessionEvent::Receipt {
                    carrier_id,
                    delivered: ok,
                    code,
                    detail: detail.into(),
                });
            }
        });
    }
}

/// A stable pseudo-random outcome per message id.
fn delivered(id: u64, success_rate: f64) -> bool {
    if success_rate >= 1.0 {
        return true;
    }
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
    unit < success_rate
}

#[cfg(test)]
mod tests {
    #[test]
    fn success_rate_is_respected_roughly_and_deterministically() {
        let ok = (0..10_000u64).filter(|&i| super::delivered(i, 0.7)).count();
        assert!((6_500..7_500).contains(&ok), "{ok}");
        assert_eq!(super::delivered(42, 0.5), super::delivered(42, 0.5));
        assert!((0..100u64).all(|i| super::delivered(i, 1.0)));
        assert!((0..100u64).all(|i| !super::delivered(i, 0.0)));
    }
}
