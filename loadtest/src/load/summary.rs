//! The end-of-run summary, as JSON (`--json`) and as text (stdout). Both are
//! built from the same [`serde_json::Value`] so they cannot disagree.
//!
//! Schema (all rates per second over `elapsed_secs`, latencies in ms):
//!
//! ```text
//! {"kind":"run","run_id","target","mode":"open"|"closed","rate","batch",
//!  "connections","duration_secs","elapsed_secs","mix":{"SMS":8,…},
//!  "requests","messages":{"sent","accepted","rejected","errors"},
//!  "rejected_by_code":{"3007":n},"errors_by_kind":{"http 503":n,"timeout":n},
//!  "throughput":{"requests_per_sec","sent_per_sec","accepted_per_sec"},
//!  "latency_ms":{"corrected","count","min","mean","p50","p90","p99","p999","max"},
//!  "series":[{"t","requests","sent","accepted","rejected","errors","p50_ms","p99_ms","p999_ms"}],
//!  "baseline":null|{"requests_per_sec","p50_ms","p99_ms","requests_ratio","accepted_ratio"}}
//! ```

use serde_json::{json, Map, Value};

use super::tally::Tally;
use super::{Outcome, Plan};

/// The figures of an in-process `baseline` measured in the same run.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    /// Requests/s the bare server answered, closed loop.
    pub requests_per_sec: f64,
    /// Its median latency.
    pub p50_ms: f64,
    /// Its p99 latency.
    pub p99_ms: f64,
}

/// The summary of `outcome` as JSON.
pub fn json(plan: &Plan, target: &str, outcome: &Outcome, baseline: Option<Baseline>) -> Value {
    let t = &outcome.total;
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    let per_sec = |n: u64| round2(n as f64 / secs);
    let rejected: Map<String, Value> = t
        .rejected
        .iter()
        .map(|(c, n)| (c.to_string(), json!(n)))
        .collect();
    let series: Vec<Value> = outcome
        .series
        .iter()
        .map(|p| {
            json!({
                "t": round2(p.t),
                "requests": p.tally.requests,
                "sent": p.tally.sent,
                "accepted": p.tally.accepted,
                "rejected": p.tally.rejected_total(),
                "errors": p.tally.errors_total(),
                "p50_ms": round2(p.tally.quantile_ms(0.5)),
                "p99_ms": round2(p.tally.quantile_ms(0.99)),
                "p999_ms": round2(p.tally.quantile_ms(0.999)),
            })
        })
        .collect();
    let baseline = baseline.map(|b| {
        let ratio = |x: f64| round3(x / b.requests_per_sec.max(1e-9));
        json!({
            "requests_per_sec": round2(b.requests_per_sec),
            "p50_ms": round2(b.p50_ms),
            "p99_ms": round2(b.p99_ms),
            "requests_ratio": ratio(t.requests as f64 / secs),
            "accepted_ratio": ratio(t.accepted as f64 / secs),
        })
    });
    json!({
        "kind": "run",
        "run_id": plan.run_id,
        "target": target,
        "mode": if plan.open_loop() { "open" } else { "closed" },
        "rate": plan.rate,
        "batch": plan.batch,
        "connections": plan.connections,
        "duration_secs": plan.duration.as_secs_f64(),
        "elapsed_secs": round2(secs),
        "mix": plan.mix.weights(),
        "requests": t.requests,
        "messages": {
            "sent": t.sent,
            "accepted": t.accepted,
            "rejected": t.rejected_total(),
            "errors": t.error_messages,
        },
        "rejected_by_code": rejected,
        "errors_by_kind": t.errors,
        "throughput": {
            "requests_per_sec": per_sec(t.requests),
            "sent_per_sec": per_sec(t.sent),
            "accepted_per_sec": per_sec(t.accepted),
        },
        "latency_ms": latency_json(t, plan.open_loop()),
        "series": series,
        "baseline": baseline,
    })
}

/// Latency percentiles of `t` as JSON.
pub fn latency_json(t: &Tally, corrected: bool) -> Value {
    let h = &t.latency;
    let ms = |us: u64| round2(us as f64 / 1000.0);
    json!({
        "corrected": corrected,
        "count": h.len(),
        "min": if h.is_empty() { 0.0 } else { ms(h.min()) },
        "mean": round2(h.mean() / 1000.0),
        "p50": round2(t.quantile_ms(0.5)),
        "p90": round2(t.quantile_ms(0.9)),
        "p99": round2(t.quantile_ms(0.99)),
        "p999": round2(t.quantile_ms(0.999)),
        "max": ms(h.max()),
    })
}

/// The summary as text for a terminal.
pub fn text(summary: &Value) -> String {
    let s = summary;
    let l = &s["latency_ms"];
    let mut out = format!(
        "{} {} against {}: {} loop, rate {}, batch {}, {} connections, {} s\n\
         requests {}  messages sent {}  accepted {}  rejected {} {}  errors {} {}\n\
         throughput {} req/s  {} sent/s  {} accepted/s\n\
         latency ms{}: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {}, n {})\n",
        s["kind"].as_str().unwrap_or("run"),
        s["run_id"].as_str().unwrap_or(""),
        s["target"].as_str().unwrap_or(""),
        s["mode"].as_str().unwrap_or(""),
        s["rate"],
        s["batch"],
        s["connections"],
        s["elapsed_secs"],
        s["requests"],
        s["messages"]["sent"],
        s["messages"]["accepted"],
        s["messages"]["rejected"],
        s["rejected_by_code"],
        s["messages"]["errors"],
        s["errors_by_kind"],
        s["throughput"]["requests_per_sec"],
        s["throughput"]["sent_per_sec"],
        s["throughput"]["accepted_per_sec"],
        if l["corrected"] == true {
            " (from intended send times)"
        } else {
            ""
        },
        l["p50"],
        l["p90"],
        l["p99"],
        l["p999"],
        l["max"],
        l["mean"],
        l["count"],
    );
    if let Some(c) = s["server_cpu"].as_object() {
        out.push_str(&format!(
            "server CPU: {} s for {} messages = {} ms per 1,000 messages (pid {})\n",
            c["seconds"], c["messages"], c["ms_per_1000_messages"], c["pid"],
        ));
    }
    if let Some(b) = s["baseline"].as_object() {
        out.push_str(&format!(
            "baseline (bare hyper, same machine, same run): {} req/s p50 {} ms p99 {} ms → requests {:.1} %, accepted messages {:.1} % of it\n",
            b["requests_per_sec"],
            b["p50_ms"],
            b["p99_ms"],
            b["requests_ratio"].as_f64().unwrap_or(0.0) * 100.0,
            b["accepted_ratio"].as_f64().unwrap_or(0.0) * 100.0,
        ));
    }
    out
}

/// Rounds to 2 decimals, so the JSON stays readable.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
