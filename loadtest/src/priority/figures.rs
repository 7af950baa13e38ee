//! The figures of a `priority` run, computed after it from what was noted
//! during it: the otp sends, their arrivals at the SMSC and the SMSC's
//! counts sampled over time. Pure functions of those, so they are tested
//! with made-up instants.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::send::{Bulk, OtpSend};
use crate::load::summary::round2;
use crate::smsc::arrivals::Arrival;

/// The SMSC's counts at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When.
    pub at: Instant,
    /// Complete messages received (bulk and otp).
    pub messages: u64,
    /// Of which otp (marked) messages.
    pub otp: u64,
}

impl Sample {
    fn bulk(&self) -> u64 {
        self.messages.saturating_sub(self.otp)
    }
}

/// Everything the figures are computed from.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// When the first bulk request was sent: the origin of every `t`.
    pub start: Instant,
    /// The bulk load.
    pub bulk: &'a Bulk,
    /// The otp sends, by `seq`.
    pub sends: &'a [OtpSend],
    /// The otp messages that reached the SMSC.
    pub arrivals: &'a [Arrival],
    /// The text prefix of otp messages (`otp <run_id>-`).
    pub prefix: &'a str,
    /// The SMSC's counts, in time order.
    pub samples: &'a [Sample],
    /// The verdict's bound on the p99 from send to submit.
    pub limit: Duration,
}

/// An otp message that was accepted, with its arrival if it came.
struct Timed<'a> {
    send: &'a OtpSend,
    arrival: Option<&'a Arrival>,
}

/// The figures as JSON (`passed`, `bulk`, `otp`, `series`) and the verdict.
pub fn compute(i: &Inputs<'_>) -> (Value, bool) {
    let by_seq: HashMap<u64, &Arrival> = i
        .arrivals
        .iter()
        .filter_map(|a| Some((a.text.strip_prefix(i.prefix)?.parse().ok()?, a)))
        .collect();
    let timed: Vec<Timed<'_>> = i
        .sends
        .iter()
        .filter(|s| s.outcome.is_ok())
        .map(|send| Timed {
            send,
            arrival: by_seq.get(&send.seq).copied(),
        })
        .collect();
    let missing = timed.iter().filter(|t| t.arrival.is_none()).count();
    // A missing message counts as slower than any that arrived.
    let send_to_submit: Vec<f64> = timed
        .iter()
        .map(|t| t.arrival.map_or(f64::INFINITY, |a| ms(a.at, t.send.sent)))
        .collect();
    let arrived = || timed.iter().filter_map(|t| Some((t.send, t.arrival?)));
    let answer_to_submit: Vec<f64> = arrived().map(|(s, a)| ms(a.at, s.answered)).collect();
    let served_before: Vec<f64> = arrived()
        .map(|(s, a)| a.position.saturating_sub(s.smsc_messages_at_send + 1) as f64)
        .collect();
    let accept: Vec<f64> = i.sends.iter().map(|s| ms(s.answered, s.sent)).collect();
    let backlog: Vec<f64> = i.sends.iter().map(|s| s.backlog_at_send as f64).collect();
    let p99 = quantile(&send_to_submit, 0.99);
    let passed = !timed.is_empty() && missing == 0 && p99 <= i.limit.as_secs_f64() * 1000.0;
    let otp = json!({
        "sent": i.sends.len(),
        "accepted": timed.len(),
        "refused": i.sends.len() - timed.len(),
        "refusals": refusals(i.sends),
        "missing": missing,
        "send_to_submit_ms": spread(&send_to_submit),
        "answer_to_submit_ms": spread(&answer_to_submit),
        "accept_ms": spread(&accept),
        "served_before": spread(&served_before),
        "backlog_at_send": spread(&backlog),
    });
    let summary = json!({
        "passed": passed,
        "limit_ms": i.limit.as_millis() as u64,
        "bulk": bulk_json(i),
        "otp": otp,
        "series": series(i),
        "messages": messages(&timed),
    });
    (summary, passed)
}

/// Each accepted otp message: its figures, null where it never arrived.
fn messages(timed: &[Timed<'_>]) -> Value {
    let one = |t: &Timed<'_>| {
        let s = t.send;
        json!({
            "seq": s.seq,
            "send_to_submit_ms": t.arrival.map(|a| round2(ms(a.at, s.sent))),
            "answer_to_submit_ms": t.arrival.map(|a| round2(ms(a.at, s.answered))),
            "served_before": t.arrival.map(|a| a.position.saturating_sub(s.smsc_messages_at_send + 1)),
            "backlog_at_send": s.backlog_at_send,
        })
    };
    Value::Array(timed.iter().map(one).collect())
}

/// Milliseconds from `from` to `to`, negative when `to` came first.
fn ms(to: Instant, from: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(from.duration_since(to).as_secs_f64() * 1000.0),
    }
}

/// The nearest-rank quantile `q` of `values` (NaN when empty).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `{"count","min","p50","p90","p99","max"}`; an infinite value (a message
/// that never arrived) shows as null.
fn spread(values: &[f64]) -> Value {
    let q = |q: f64| {
        let v = quantile(values, q);
        if v.is_finite() {
            json!(round2(v))
        } else {
            Value::Null
        }
    };
    json!({
        "count": values.len(),
        "min": q(0.0),
        "p50": q(0.5),
        "p90": q(0.9),
        "p99": q(0.99),
        "max": q(1.0),
    })
}

fn refusals(sends: &[OtpSend]) -> Value {
    let mut by: HashMap<&str, u64> = HashMap::new();
    for s in sends {
        if let Err(e) = &s.outcome {
            *by.entry(e.as_str()).or_default() += 1;
        }
    }
    json!(by)
}

/// The bulk side: how big the backlog was, how fast it drained.
fn bulk_json(i: &Inputs<'_>) -> Value {
    let b = i.bulk;
    let secs = |at: Instant| round2(at.duration_since(i.start).as_secs_f64());
    let drained = i.samples.iter().find(|s| s.bulk() >= b.accepted);
    let drain_secs = drained.map(|s| secs(s.at));
    let (first, last) = (i.sends.first(), i.sends.last());
    let during = match (first, last) {
        (Some(f), Some(l)) => rate_between(i.samples, f.sent, l.sent),
        _ => None,
    };
    json!({
        "sent": b.accepted + b.rejected.values().sum::<u64>() + b.errors,
        "accepted": b.accepted,
        "rejected_by_code": b.rejected,
        "errors": b.errors,
        "send_secs": round2(b.elapsed.as_secs_f64()),
        "accepted_per_sec": round2(b.accepted as f64 / b.elapsed.as_secs_f64().max(1e-3)),
        "backlog_at_otp_start": first.map(|s| s.backlog_at_send),
        "backlog_at_otp_end": last.map(|s| s.backlog_at_send),
        "drained": drained.is_some(),
        "drain_secs": drain_secs,
        "drain_per_sec": drain_secs.map(|d| round2(b.accepted as f64 / d.max(1e-3))),
        "per_sec_during_otp": during.map(round2),
    })
}

/// Bulk messages per second reaching the SMSC between the samples nearest
/// `from` and `to`.
fn rate_between(samples: &[Sample], from: Instant, to: Instant) -> Option<f64> {
    let a = samples.iter().rev().find(|s| s.at <= from)?;
    let b = samples.iter().find(|s| s.at >= to)?;
    let secs = b.at.checked_duration_since(a.at)?.as_secs_f64();
    (secs > 0.0).then(|| (b.bulk() - a.bulk().min(b.bulk())) as f64 / secs)
}

/// One point a second: the SMSC's bulk and otp counts and the backlog.
fn series(i: &Inputs<'_>) -> Value {
    let mut points = Vec::new();
    let mut next = Duration::ZERO;
    for s in i.samples {
        let t = s.at.duration_since(i.start);
        if t < next {
            continue;
        }
        next = t + Duration::from_secs(1);
        points.push(json!({
            "t": round2(t.as_secs_f64()),
            "smsc_bulk": s.bulk(),
            "smsc_otp": s.otp,
            "bulk_backlog": i.bulk.accepted.saturating_sub(s.bulk()),
        }));
    }
    Value::Array(points)
}

/// The figures as text: the verdict line last.
pub fn text(f: &Value, run_id: &str) -> String {
    let (b, o) = (&f["bulk"], &f["otp"]);
    let l = &o["send_to_submit_ms"];
    let a = &o["answer_to_submit_ms"];
    let verdict = if f["passed"] == true {
        "PASSED"
    } else {
        "FAILED"
    };
    format!(
        "priority {run_id}: bulk {} accepted in {} s ({} /s), refused {}, errors {}\n\
         bulk backlog {} at the first otp, {} at the last; bulk reached the SMSC at {} /s during the otp phase; drained {} s after the first bulk request ({} /s)\n\
         otp sent {} accepted {} refused {} {} missing {}\n\
         otp send→submit ms: p50 {}  p90 {}  p99 {}  max {}\n\
         otp accept answer→submit ms: p50 {}  p99 {}  max {}  (accept answer ms p50 {}, p99 {})\n\
         messages reaching the SMSC between an otp's send and its arrival: p50 {}  max {}  (bulk waiting at its send: p50 {})\n\
         priority {verdict}: otp send→submit p99 {} ms (limit {} ms) under a bulk backlog of {}, missing {}\n",
        b["accepted"], b["send_secs"], b["accepted_per_sec"], b["rejected_by_code"], b["errors"],
        b["backlog_at_otp_start"], b["backlog_at_otp_end"], b["per_sec_during_otp"], b["drain_secs"], b["drain_per_sec"],
        o["sent"], o["accepted"], o["refused"], o["refusals"], o["missing"],
        l["p50"], l["p90"], l["p99"], l["max"],
        a["p50"], a["p99"], a["max"], o["accept_ms"]["p50"], o["accept_ms"]["p99"],
        o["served_before"]["p50"], o["served_before"]["max"], o["backlog_at_send"]["p50"],
        l["p99"], f["limit_ms"], b["backlog_at_otp_start"], o["missing"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(start: Instant, seq: u64, at_ms: u64, accepted: bool) -> OtpSend {
        let sent = start + Duration::from_millis(at_ms);
        OtpSend {
            seq,
            sent,
            answered: sent + Duration::from_millis(2),
            outcome: if accepted {
                Ok(format!("m{seq}"))
            } else {
                Err("code 3007".into())
            },
            smsc_messages_at_send: 100 * seq,
            backlog_at_send: 1000 - 100 * seq,
        }
    }

    fn arrival(start: Instant, seq: u64, at_ms: u64, position: u64) -> Arrival {
        Arrival {
            text: format!("otp r-{seq}"),
            at: start + Duration::from_millis(at_ms),
            position,
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn latencies_backlog_and_verdict() {
        let start = Instant::now();
        let bulk = Bulk {
            accepted: 1000,
            elapsed: Duration::from_secs(1),
            ..Bulk::default()
        };
        let sends = [
            send(start, 0, 1000, true),
            send(start, 1, 2000, true),
            send(start, 2, 3000, false),
        ];
        let arrivals = [arrival(start, 1, 2300, 105), arrival(start, 0, 1100, 6)];
        let samples: Vec<Sample> = (0..=10)
            .map(|s| Sample {
                at: start + Duration::from_secs(s),
                messages: (100 * s).min(1000) + u64::from(s >= 2) + u64::from(s >= 3),
                otp: u64::from(s >= 2) + u64::from(s >= 3),
            })
            .collect();
        let inputs = Inputs {
            start,
            bulk: &bulk,
            sends: &sends,
            arrivals: &arrivals,
            prefix: "otp r-",
            samples: &samples,
            limit: Duration::from_millis(1000),
        };
        let (f, passed) = compute(&inputs);
        assert!(passed, "{f}");
        let o = &f["otp"];
        assert_eq!(
            (
                o["accepted"].as_u64(),
                o["refused"].as_u64(),
                o["missing"].as_u64()
            ),
            (Some(2), Some(1), Some(0))
        );
        assert_eq!(o["send_to_submit_ms"]["p50"], 100.0);
        assert_eq!(o["send_to_submit_ms"]["max"], 300.0);
        assert_eq!(o["answer_to_submit_ms"]["min"], 98.0);
        assert_eq!(o["served_before"]["max"], 5.0);
        assert_eq!(f["bulk"]["backlog_at_otp_start"], 1000);
        assert_eq!(f["bulk"]["drain_secs"], 10.0);
        // Between the first and the third otp send (1 s → 3 s): 200 bulk.
        assert_eq!(f["bulk"]["per_sec_during_otp"], 100.0);
        assert_eq!(f["series"].as_array().map(Vec::len), Some(11));
        let m = &f["messages"];
        assert_eq!(
            m.as_array().map(Vec::len),
            Some(2),
            "the refused one is not listed"
        );
        assert_eq!(
            (m[1]["seq"].as_u64(), m[1]["served_before"].as_u64()),
            (Some(1), Some(4))
        );
        assert_eq!(
            (
                m[1]["send_to_submit_ms"].as_f64(),
                m[1]["backlog_at_send"].as_u64()
            ),
            (Some(300.0), Some(900))
        );
        let limited = Inputs {
            limit: Duration::from_millis(200),
            ..inputs
        };
        assert!(!compute(&limited).1);
    }

    #[test]
    fn a_missing_otp_message_fails_the_run() {
        let start = Instant::now();
        let bulk = Bulk::default();
        let sends = [send(start, 0, 0, true)];
        let inputs = Inputs {
            start,
            bulk: &bulk,
            sends: &sends,
            arrivals: &[],
            prefix: "otp r-",
            samples: &[],
            limit: Duration::from_secs(1),
        };
        let (f, passed) = compute(&inputs);
        assert!(!passed);
        assert_eq!(f["otp"]["missing"], 1);
        assert!(f["otp"]["send_to_submit_ms"]["p99"].is_null());
        assert!(f["messages"][0]["send_to_submit_ms"].is_null());
    }
}
