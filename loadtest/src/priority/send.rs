//! The two loads of `priority`: the bulk backlog, sent as fast as it is
//! accepted, and the `otp` messages, one per request at a steady rate,
//! each noted with when it was sent and answered and how far the backlog
//! stood at that moment.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::load::client::{Auth, Conn};
use crate::load::pacer::Pacer;
use crate::shutdown::Shutdown;
use crate::smsc::Smsc;

/// What every message of the run shares.
#[derive(Debug)]
pub struct Sending {
    /// `host:port` of MCMP.
    pub authority: String,
    /// The client's token.
    pub auth: Auth,
    /// `bill_code` (its class is `bulk`).
    pub bill_code: String,
    /// `from`.
    pub from: String,
    /// `to`.
    pub to: String,
    /// Prefix of every `src_msg_id` and text.
    pub run_id: String,
}

impl Sending {
    /// The text prefix that marks this run's otp messages at the SMSC.
    pub fn otp_prefix(&self) -> String {
        format!("otp {}-", self.run_id)
    }

    /// One message: bulk ones are `bulk <run_id>-b<n>`, otp ones
    /// `otp <run_id>-<n>` with `"priority":"otp"` (their bill code says
    /// `bulk`; the message's own priority wins, SPEC §5.2).
    fn message(&self, seq: u64, otp: bool) -> Value {
        let (src, text) = if otp {
            let src = format!("{}-{seq}", self.run_id);
            let text = format!("otp {src}");
            (src, text)
        } else {
            let src = format!("{}-b{seq}", self.run_id);
            let text = format!("bulk {src}");
            (src, text)
        };
        let mut m = json!({
            "src_msg_id": src, "channel": "SMS", "bill_code": self.bill_code,
            "from": self.from, "to": self.to, "text": text,
        });
        if otp {
            m["priority"] = "otp".into();
        }
        m
    }

    async fn post(&self, conn: &mut Conn, messages: Vec<Value>) -> anyhow::Result<Vec<Value>> {
        let auth = self.auth.header().unwrap_or_default();
        let headers = [
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        let body = Bytes::from(json!({ "messages": messages }).to_string());
        let (status, answer) = conn
            .send(Method::POST, "/v1/messages", &headers, body)
            .await?;
        let results = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|v| v["results"].as_array().cloned());
        match results {
            Some(r) if status.is_success() || status == StatusCode::TOO_MANY_REQUESTS => Ok(r),
            _ => anyhow::bail!("http {}", status.as_u16()),
        }
    }
}

/// The bulk load's outcome.
#[derive(Debug, Default)]
pub struct Bulk {
    /// Messages accepted.
    pub accepted: u64,
    /// Messages refused, by result code.
    pub rejected: BTreeMap<u64, u64>,
    /// Messages of requests that got no per-message answer.
    pub errors: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

/// Sends `total` bulk messages in batches of `batch` on `connections`
/// connections, each request as soon as the previous one is answered.
pub async fn bulk(
    sending: Arc<Sending>,
    total: u64,
    batch: u64,
    connections: usize,
    shutdown: Shutdown,
) -> Bulk {
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..connections.max(1))
        .map(|_| {
            let (sending, next, shutdown) = (sending.clone(), next.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut conn = Conn::new(&sending.authority);
                let mut out = Bulk::default();
                loop {
                    let first = next.fetch_add(batch, Ordering::Relaxed);
                    if first >= total {
                        return out;
                    }
                    let seqs = first..(first + batch).min(total);
                    let messages = seqs.clone().map(|s| sending.message(s, false)).collect();
                    tokio::select! {
                        r = sending.post(&mut conn, messages) => count(&mut out, r, seqs.count()),
                        () = shutdown.wait() => return out,
                    }
                }
            })
        })
        .collect();
    let mut bulk = Bulk::default();
    for w in workers {
        if let Ok(part) = w.await {
            bulk.accepted += part.accepted;
            bulk.errors += part.errors;
            for (code, n) in part.rejected {
                *bulk.rejected.entry(code).or_default() += n;
            }
        }
    }
    bulk.elapsed = start.elapsed();
    bulk
}

fn count(out: &mut Bulk, answer: anyhow::Result<Vec<Value>>, sent: usize) {
    let Ok(results) = answer else {
        out.errors += sent as u64;
        return;
    };
    for r in &results {
        if r["status"] == "accepted" {
            out.accepted += 1;
        } else {
            *out.rejected
                .entry(r["code"].as_u64().unwrap_or(0))
                .or_default() += 1;
        }
    }
    out.errors += (sent as u64).saturating_sub(results.len() as u64);
}

/// One otp message as sent.
#[derive(Debug, Clone)]
pub struct OtpSend {
    /// Its number in the run; its text is `otp <run_id>-<seq>`.
    pub seq: u64,
    /// When its request was handed to the connection.
    pub sent: Instant,
    /// When the answer came back.
    pub answered: Instant,
    /// `Ok(message_id)` when accepted, else the code or error.
    pub outcome: Result<String, String>,
    /// The SMSC's complete-message count just before the send.
    pub smsc_messages_at_send: u64,
    /// Bulk messages accepted and not yet at the SMSC just before the send.
    pub backlog_at_send: u64,
}

/// Where the otp load stands against the bulk one, read from the SMSC.
#[derive(Debug)]
pub struct Backlog {
    /// The in-process SMSC.
    pub smsc: Arc<Smsc>,
    /// Bulk messages accepted.
    pub bulk_accepted: u64,
}

impl Backlog {
    /// (complete messages at the SMSC, bulk messages not yet there).
    pub fn now(&self) -> (u64, u64) {
        let state = self.smsc.state();
        let messages = state.counters.messages;
        let otp = state.watch.as_ref().map_or(0, |w| w.count());
        let bulk_arrived = messages.saturating_sub(otp);
        (messages, self.bulk_accepted.saturating_sub(bulk_arrived))
    }
}

/// Sends one otp message per request at `rate` per second for `secs`, on
/// `connections` workers (so a slow answer does not delay the next send).
pub async fn otp(
    sending: Arc<Sending>,
    backlog: Arc<Backlog>,
    rate: f64,
    secs: u64,
    connections: usize,
    shutdown: Shutdown,
) -> Vec<OtpSend> {
    let start = Instant::now();
    let pacer = Arc::new(Pacer::new(start, rate));
    let end = start + Duration::from_secs(secs);
    let workers: Vec<_> = (0..connections.max(1))
        .map(|_| {
            let (sending, backlog) = (sending.clone(), backlog.clone());
            let (pacer, shutdown) = (pacer.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut conn = Conn::new(&sending.authority);
                let mut sent = Vec::new();
                while let Some(slot) = pacer.take(end) {
                    tokio::select! {
                        () = tokio::time::sleep_until(slot.due.into()) => {}
                        () = shutdown.wait() => break,
                    }
                    sent.push(otp_one(&sending, &backlog, &mut conn, slot.index).await);
                }
                sent
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        if let Ok(mut part) = w.await {
            all.append(&mut part);
        }
    }
    all.sort_by_key(|s| s.seq);
    all
}

async fn otp_one(sending: &Sending, backlog: &Backlog, conn: &mut Conn, seq: u64) -> OtpSend {
    let (smsc_messages_at_send, backlog_at_send) = backlog.now();
    let sent = Instant::now();
    let answer = sending.post(conn, vec![sending.message(seq, true)]).await;
    let answered = Instant::now();
    let outcome = match answer {
        Ok(results) => match results.first() {
            Some(r) if r["status"] == "accepted" => {
                Ok(r["message_id"].as_str().unwrap_or_default().to_owned())
            }
            Some(r) => Err(format!("code {}", r["code"])),
            None => Err("no result".to_owned()),
        },
        Err(e) => Err(format!("{e:#}")),
    };
    OtpSend {
        seq,
        sent,
        answered,
        outcome,
        smsc_messages_at_send,
        backlog_at_send,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_messages_are_marked_and_bulk_ones_are_not() {
        let s = Sending {
            authority: "h:1".into(),
            auth: Auth::none(),
            bill_code: "BULK".into(),
            from: "0212345678".into(),
            to: "01012345678".into(),
            run_id: "lt1".into(),
        };
        let otp = s.message(7, true);
        assert_eq!(otp["priority"], "otp");
        assert_eq!(otp["text"], "otp lt1-7");
        assert!(otp["text"]
            .as_str()
            .is_some_and(|t| t.starts_with(&s.otp_prefix())));
        let bulk = s.message(7, false);
        assert!(bulk.get("priority").is_none());
        assert_eq!(
            (bulk["src_msg_id"].as_str(), bulk["text"].as_str()),
            (Some("lt1-b7"), Some("bulk lt1-b7"))
        );
        assert!(!bulk["text"]
            .as_str()
            .is_some_and(|t| t.starts_with(&s.otp_prefix())));
    }
}
