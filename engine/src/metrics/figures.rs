//! The live figures the console shows (SPEC §5.7, `GET /admin/v1/events`):
//! cumulative counters and current gauges from the merged metrics, small
//! and cheap (no walk over the messages), one JSON object a second.

use serde_json::{json, Map, Value};

use super::{final_statuses, Gauges, HttpRoute, MetricsSnapshot};
use crate::model::Channel;

/// The figures of one merged snapshot, taken at `at_ms`. Counters are
/// totals since start (the console takes differences for rates).
pub fn figures(m: &MetricsSnapshot, g: &Gauges, at_ms: i64) -> Value {
    let mut accepted = Map::new();
    let mut finals: Map<String, Value> = Map::new();
    let mut rejected = Map::new();
    for ch in Channel::ALL {
        let c = ch as usize;
        accepted.insert(ch.as_str().into(), m.accepted[c].into());
        rejected.insert(ch.as_str().into(), m.rejected[c].iter().sum::<u64>().into());
        let mut by_status = Map::new();
        for (s, status) in final_statuses().iter().enumerate() {
            by_status.insert(
                status.as_str().into(),
                m.finals[c][s].iter().sum::<u64>().into(),
            );
        }
        finals.insert(ch.as_str().into(), Value::Object(by_status));
    }
    let accept = &m.http_seconds[HttpRoute::MessagesPost as usize];
    let senders: Map<String, Value> = g
        .senders
        .iter()
        .map(|(name, s)| {
            let row = json!({"queued": s.queue_depth, "in_flight": s.in_flight, "connected": s.connected});
            (name.clone(), row)
        })
        .collect();
    json!({
        "at": crate::time::format_rfc3339(at_ms),
        "accepted": accepted,
        "rejected": rejected,
        "final": finals,
        "accept_requests": accept.count(),
        "accept_seconds_sum": accept.sum_seconds(),
        "held": g.held_messages,
        "live_messages": g.live_messages,
        "memory_messages": g.memory_messages,
        "webhook_pending_retries": g.webhook_pending_retries,
        "senders": senders,
    })
}
