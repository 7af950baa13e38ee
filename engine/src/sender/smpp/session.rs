//! One SMPP bind: connect, `bind_transceiver`, then a single task that
//! multiplexes reading PDUs, taking messages from the [`SessionQueue`] while
//! the window and the TPS cap allow, and timers (enquire_link, response
//! timeouts). It gives a link up on any I/O or protocol failure, and when
//! the SMSC leaves a submit or an enquire_link unanswered past the response
//! timeout: it reports `Down`, reads the answers still on the wire, fails
//! the submits still unanswered as retryable, and reconnects with backoff
//! and jitter. Shard-local: the task, its state and [`SessionStats`] never
//! leave the shard that spawned the session.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future::{or, pending};

use super::codec::{self, status, Address, Inbound, SubmitFields};
use super::coding;
use super::connect::{connect, TlsSlot};
use super::link::{Broken, InFlight, Link, Submission, THROTTLE_MIN};
use super::pace::{jitter, TokenBucket};
use super::receipt;
use super::stats::{bump, SessionStats};
use crate::codes::ResultCode;
use crate::notify::LocalNotify;
use crate::rt;
use crate::sender::{Outbound, SessionEvent, SessionEvents, SessionQueue, SmppConfig};

/// First reconnect delay; doubles per failed attempt.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
/// Reconnect delay cap: a carrier outage should not be hammered.
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// A bind that stayed up this long resets the reconnect backoff; a bind that
/// drops sooner keeps backing off, so a flapping SMSC is not hammered.
const STABLE_BIND: Duration = Duration::from_secs(10);
/// Longest time a link that is given up is still read for the answers to
/// its unanswered submits (bounded further by the response timeout).
const DRAIN_MAX: Duration = Duration::from_secs(2);

/// Runs one bind of an SMPP sender until `stop` is notified (plain TCP).
pub async fn run_session(
    name: String,
    config: SmppConfig,
    queue: Rc<SessionQueue>,
    events: SessionEvents,
    stop: Rc<LocalNotify>,
) {
    let stats = SessionStats::default();
    run_session_with_stats(name, config, None, queue, events, stop, stats).await;
}

/// [`run_session`] with TLS when `tls` is set (the sender's
/// [`SmppConfig::tls_spec`]), counting into `stats` (clone it to keep a reader).
pub async fn run_session_with_stats(
    name: String,
    config: SmppConfig,
    tls: Option<rt::ClientTlsSpec>,
    queue: Rc<SessionQueue>,
    events: SessionEvents,
    stop: Rc<LocalNotify>,
    stats: SessionStats,
) {
    let mut session = Session {
        tls: TlsSlot::new(tls),
        bucket: TokenBucket::new(config.tps, config.binds, Instant::now()),
        name,
        config,
        queue,
        events,
        stop,
        stats,
        concat_ref: 0,
    };
    session.run().await;
}

/// How a bound connection ended.
enum End {
    Stopped,
    Failed(String, Drain),
}

/// What can still be read from a connection that is given up, before its
/// unanswered submits go back to their owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// Nothing: the byte stream is no longer understood (protocol fault).
    Nothing,
    /// What the SMSC already sent, until it closes: the connection broke.
    Read,
    /// The connection still works but the SMSC stopped answering in time
    /// (a submit or an enquire_link unanswered): `unbind`, then read.
    Unbind,
}

/// Session-wide state that outlives connections. Shard-local.
struct Session {
    name: String,
    config: SmppConfig,
    queue: Rc<SessionQueue>,
    events: SessionEvents,
    stop: Rc<LocalNotify>,
    stats: SessionStats,
    bucket: TokenBucket,
    concat_ref: u8,
    tls: TlsSlot,
}

impl Session {
    fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.config.response_timeout_ms.max(1)))
    }

    fn emit(&self, event: SessionEvent) {
        (self.events)(event);
    }

    async fn run(&mut self) {
        let mut backoff = RECONNECT_MIN;
        let mut attempt: u64 = 0;
        let mut down_reported = false;
        loop {
            if attempt > 0 {
                bump(&self.stats.reconnects);
            }
            attempt += 1;
            let opened = or(async { Some(self.open().await) }, async {
                self.stop.notified().await;
                None
            })
            .await;
            let (reason, up_for) = match opened {
                None => return,
                Some(Err(broken)) => (broken.reason, Duration::ZERO),
                Some(Ok(mut link)) => {
                    bump(&self.stats.binds);
                    self.emit(SessionEvent::Up);
                    let since = Instant::now();
                    let end = self.serve(&mut link).await;
                    // Down first: the queue moves on at once, and the
                    // unanswered submissions then fail as a consequence of
                    // the lost connection, not as errors of a bound sender.
                    let reason = match &end {
                        End::Stopped => "session stopped".to_owned(),
                        End::Failed(reason, _) => reason.clone(),
                    };
                    self.emit(SessionEvent::Down { reason });
                    down_reported = true;
                    if let End::Failed(_, drain) = end {
                        self.read_what_is_left(&mut link, drain).await;
                    }
                    self.fail_all(&mut link, "connection ended before submit_sm_resp");
                    match end {
                        End::Stopped => return,
                        End::Failed(reason, _) => (reason, since.elapsed()),
                    }
                }
            };
            tracing::warn!(sender = %self.name, %reason, "smpp session down");
            if !down_reported {
                self.emit(SessionEvent::Down { reason });
                down_reported = true;
            }
            if up_for >= STABLE_BIND {
                backoff = RECONNECT_MIN;
            }
            let delay = backoff + jitter(backoff, &self.name, attempt);
            backoff = (backoff * 2).min(RECONNECT_MAX);
            let stopped = self.stop.sleep_unless_notified(delay).await;
            if stopped {
                return;
            }
        }
    }

    /// Resolves, connects and binds.
    async fn open(&self) -> Result<Link, Broken> {
        let c = &self.config;
        let mut link = Link::new(connect(&c.host, c.port, &self.tls, self.timeout()).await?);
        let seq = link.next_seq();
        let bind = codec::bind_transceiver(seq, &c.system_id, &c.password, &c.system_type)
            .map_err(|e| Broken::io(format!("bind_transceiver: {e}")))?;
        link.send(&bind, self.timeout()).await?;
        let deadline = Instant::now() + self.timeout();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let inbound = rt::timeout(left, link.next_inbound())
                .await
                .ok_or_else(|| Broken::io("no bind_transceiver_resp in time".into()))?
                .inspect_err(|b| self.count(b))?;
            match inbound {
                Inbound::BindResp { seq: s, status } if s == seq => {
                    return match status {
                        status::ESME_ROK => Ok(link),
                        other => Err(Broken::io(format!("bind refused: status {other:#x}"))),
                    };
                }
                Inbound::GenericNack { status, .. } => {
                    return Err(Broken::protocol(format!(
                        "bind answered with generic_nack {status:#x}"
                    )));
                }
                Inbound::EnquireLink { seq } => {
                    link.send(&codec::enquire_link_resp(seq), self.timeout())
                        .await?;
                }
                _ => {}
            }
        }
    }

    fn count(&self, broken: &Broken) {
        if broken.protocol {
            bump(&self.stats.protocol_errors);
        }
    }

    /// The bound main loop.
    // NOTE: one task multiplexes everything with `futures_lite::future::or`
    // rather than a reader and a writer task sharing `Rc<RefCell<…>>`: the
    // window, the timers and the connection then have a single owner and no
    // borrow can be held across an await by two tasks. Reading is
    // cancel-safe (bytes land in the `Framer`; glommio keeps a pending read
    // in the stream), so losing the race to a timer or a message loses
    // nothing. Writes happen between polls, bounded by the response timeout
    // so an SMSC that stops reading cannot wedge the loop.
    async fn serve(&mut self, link: &mut Link) -> End {
        loop {
            let now = Instant::now();
            if let Err(broken) = self.on_timers(link, now).await {
                self.count(&broken);
                return End::Failed(broken.reason, Drain::Unbind);
            }
            let open = self.can_submit(link, now);
            let wait = self.next_deadline(link, now, open) - now;
            let wake = {
                let stop = async {
                    self.stop.notified().await;
                    Wake::Stop
                };
                let read = async { Wake::Read(link.next_inbound().await) };
                let timer = async {
                    rt::sleep(wait).await;
                    Wake::Timer
                };
                let queue = &self.queue;
                let take = async {
                    if open {
                        Wake::Message(queue.pop().await)
                    } else {
                        pending().await
                    }
                };
                or(stop, or(read, or(timer, take))).await
            };
            let step = match wake {
                Wake::Stop => return self.unbind(link).await,
                Wake::Timer => Ok(None),
                Wake::Read(Ok(inbound)) => self.on_inbound(link, inbound).await,
                Wake::Read(Err(broken)) => Err(broken),
                Wake::Message(msg) => self.submit_burst(link, msg).await.map(|()| None),
            };
            match step {
                Ok(None) => {}
                Ok(Some(reason)) => return End::Failed(reason, Drain::Read),
                Err(broken) => {
                    self.count(&broken);
                    let drain = match broken.protocol {
                        true => Drain::Nothing,
                        false => Drain::Read,
                    };
                    return End::Failed(broken.reason, drain);
                }
            }
        }
    }

    /// Before the unanswered submits of a link that is given up go back to
    /// their owners (who may send them again), reads the answers the SMSC
    /// already sent or still sends: a `submit_sm_resp` that comes late, or
    /// sits unread behind a failed write, settles its submit here, so only
    /// submits that truly got no answer are sent again. A link that still
    /// works is unbound first (an SMSC answers what it read before its
    /// `unbind_resp`). Ends when every submit is answered, the connection
    /// ends, or after the response timeout (at most [`DRAIN_MAX`]).
    async fn read_what_is_left(&mut self, link: &mut Link, drain: Drain) {
        if drain == Drain::Nothing || link.window.is_empty() {
            return;
        }
        link.closing = true;
        let limit = self.timeout().min(DRAIN_MAX);
        let _ = rt::timeout(limit, async {
            let mut unbind_seq = None;
            if drain == Drain::Unbind {
                let seq = link.next_seq();
                if link.send(&codec::unbind(seq), limit).await.is_ok() {
                    unbind_seq = Some(seq);
                }
            }
            while !link.window.is_empty() {
                let Ok(inbound) = link.next_inbound().await else {
                    return;
                };
                if matches!(inbound, Inbound::UnbindResp { seq } if Some(seq) == unbind_seq) {
                    return;
                }
                if !matches!(self.on_inbound(link, inbound).await, Ok(None)) {
                    return;
                }
            }
        })
        .await;
    }

    fn can_submit(&mut self, link: &Link, now: Instant) -> bool {
        self.bucket.refill(now);
        link.window.len() < self.config.window.max(1) as usize
            && link.throttled_until.is_none_or(|t| t <= now)
            && self.bucket.ready()
    }

    fn next_deadline(&self, link: &Link, now: Instant, open: bool) -> Instant {
        let timeout = self.timeout();
        let mut next = match link.enquire {
            Some((_, sent)) => sent + timeout,
            None => link.last_rx + self.enquire_period(),
        };
        if let Some(oldest) = link.window.values().map(|f| f.sent_at).min() {
            next = next.min(oldest + timeout);
        }
        if !open && !self.queue.is_empty() {
            if let Some(until) = link.throttled_until.filter(|t| *t > now) {
                next = next.min(until);
            } else if let Some(at) = self.bucket.next_token(now) {
                next = next.min(at);
            }
        }
        next.max(now)
    }

    fn enquire_period(&self) -> Duration {
        Duration::from_secs(u64::from(self.config.enquire_link_secs.max(1)))
    }

    /// Response timeouts and the heartbeat.
    async fn on_timers(&mut self, link: &mut Link, now: Instant) -> Result<(), Broken> {
        let timeout = self.timeout();
        if let Some((_, sent)) = link.enquire {
            if now >= sent + timeout {
                return Err(Broken::io(format!(
                    "enquire_link unanswered for {} ms",
                    timeout.as_millis()
                )));
            }
        }
        // NOTE: a submit with no answer in time may still have reached the
        // carrier: failing it here would send it again while its answer may
        // be on its way. The link is given up instead, and its answers read
        // before the unanswered submits go back (`read_what_is_left`).
        if link.window.values().any(|f| now >= f.sent_at + timeout) {
            return Err(Broken::io(format!(
                "no submit_sm_resp within {} ms",
                timeout.as_millis()
            )));
        }
        let idle = now >= link.last_rx + self.enquire_period();
        if link.enquire.is_none() && idle {
            let seq = link.next_seq();
            link.send(&codec::enquire_link(seq), timeout).await?;
            link.enquire = Some((seq, now));
        }
        Ok(())
    }

    /// Handles one PDU; `Ok(Some(reason))` ends the connection cleanly.
    async fn on_inbound(
        &mut self,
        link: &mut Link,
        inbound: Inbound,
    ) -> Result<Option<String>, Broken> {
        let timeout = self.timeout();
        match inbound {
            Inbound::SubmitResp {
                seq,
                status,
                message_id,
            } => self.on_submit_resp(link, seq, status, message_id),
            Inbound::DeliverSm { seq, deliver } => {
                link.send(&codec::deliver_sm_resp(seq), timeout).await?;
                self.on_deliver(&deliver);
            }
            Inbound::EnquireLink { seq } => {
                link.send(&codec::enquire_link_resp(seq), timeout).await?;
            }
            Inbound::EnquireLinkResp { seq } => {
                if link.enquire.is_some_and(|(s, _)| s == seq) {
                    link.enquire = None;
                }
            }
            Inbound::GenericNack { seq, status } => {
                bump(&self.stats.protocol_errors);
                tracing::warn!(sender = %self.name, seq, status, "generic_nack from SMSC");
                if link.enquire.is_some_and(|(s, _)| s == seq) {
                    link.enquire = None;
                }
                let mapping = receipt::submit_status(status);
                let detail = format!("generic_nack {status:#x}");
                self.fail_submission(link, seq, mapping.code, mapping.retry, detail);
            }
            Inbound::Unbind { seq } => {
                link.send(&codec::unbind_resp(seq), timeout).await?;
                return Ok(Some("unbound by SMSC".into()));
            }
            Inbound::BindResp { seq, .. } | Inbound::UnbindResp { seq } => {
                bump(&self.stats.protocol_errors);
                tracing::warn!(sender = %self.name, seq, "unexpected response PDU");
            }
            Inbound::Other { seq, command_id } => {
                bump(&self.stats.protocol_errors);
                tracing::warn!(sender = %self.name, seq, command_id, "unexpected PDU");
                if !codec::is_response(command_id) {
                    let nack = codec::generic_nack(seq, status::ESME_RINVCMDID);
                    link.send(&nack, timeout).await?;
                }
            }
        }
        Ok(None)
    }

    fn on_submit_resp(&mut self, link: &mut Link, seq: u32, status: u32, message_id: String) {
        if status != status::ESME_ROK {
            let mapping = receipt::submit_status(status);
            // A link being given up sends nothing more: a throttled message
            // fails as retryable instead of waiting in the session's queue.
            if mapping.slow_down && !link.closing {
                link.throttle(Instant::now());
                // The carrier asks us to slow down: the message waits at the
                // head of the queue for the pause to end, no attempt spent.
                if let Some(msg) = link.take_back(seq) {
                    self.queue.push_front(msg);
                    self.emit(SessionEvent::Throttled);
                    return;
                }
            }
            let detail = format!("{} ({status:#x})", mapping.name);
            self.fail_submission(link, seq, mapping.code, mapping.retry, detail);
            return;
        }
        link.throttle_step = THROTTLE_MIN;
        let Some(flight) = link.window.remove(&seq) else {
            tracing::debug!(sender = %self.name, seq, "submit_sm_resp after its timeout");
            return;
        };
        let Some(sub) = link.submissions.get_mut(&flight.submission) else {
            return;
        };
        if flight.part == 0 {
            sub.first_carrier_id = Some(message_id);
        }
        sub.parts_left -= 1;
        if sub.parts_left == 0 {
            if let Some(sub) = link.submissions.remove(&flight.submission) {
                self.emit(SessionEvent::Submitted {
                    id: sub.id,
                    carrier_id: sub.first_carrier_id.unwrap_or_default(),
                });
            }
        }
    }

    fn on_deliver(&self, deliver: &codec::Deliver) {
        let Some(r) = receipt::parse_receipt(deliver) else {
            tracing::debug!(sender = %self.name, "deliver_sm that is not a receipt ignored");
            return;
        };
        let Some(code) = r.code else {
            tracing::debug!(sender = %self.name, stat = %r.stat, "non-final receipt ignored");
            return;
        };
        bump(&self.stats.receipts);
        self.emit(SessionEvent::Receipt {
            detail: r.detail(),
            carrier_id: r.carrier_id,
            delivered: code == ResultCode::Delivered,
            code,
        });
    }

    /// Fails the submission that `seq` belongs to (once), forgetting all its
    /// parts; a sequence number not in the window is ignored.
    fn fail_submission(
        &self,
        link: &mut Link,
        seq: u32,
        code: ResultCode,
        retry: bool,
        detail: String,
    ) {
        let Some(flight) = link.window.remove(&seq) else {
            return;
        };
        link.window.retain(|_, f| f.submission != flight.submission);
        if let Some(sub) = link.submissions.remove(&flight.submission) {
            self.emit(SessionEvent::SubmitFailed {
                id: sub.id,
                code,
                retry,
                detail,
            });
        }
    }

    /// Fails every outstanding submission as retryable.
    fn fail_all(&self, link: &mut Link, detail: &str) {
        link.window.clear();
        for (_, sub) in link.submissions.drain() {
            self.emit(SessionEvent::SubmitFailed {
                id: sub.id,
                code: ResultCode::ProviderError,
                retry: true,
                detail: detail.to_owned(),
            });
        }
    }

    /// Sends `first` and every further queued message the window, the
    /// throttle and the TPS cap allow now, in one write (a burst shares one
    /// syscall instead of one per PDU).
    async fn submit_burst(&mut self, link: &mut Link, first: Outbound) -> Result<(), Broken> {
        let mut bytes = Vec::new();
        self.stage(link, first, &mut bytes);
        while self.can_submit(link, Instant::now()) {
            let Some(msg) = self.queue.try_pop() else {
                break;
            };
            self.stage(link, msg, &mut bytes);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        link.send(&bytes, self.timeout()).await
    }

    /// Puts one message (all its parts) in the window and its PDUs in
    /// `bytes`; a message that cannot be sent at all fails here.
    // NOTE: a concatenated message's parts go out together, so the window
    // may be exceeded by a message's extra parts; each part takes a TPS
    // token (the carrier counts PDUs), and the bucket may go into debt.
    fn stage(&mut self, link: &mut Link, msg: Outbound, bytes: &mut Vec<u8>) {
        let pdus = match self.build_pdus(link, &msg) {
            Ok(pdus) => pdus,
            Err((code, detail)) => {
                self.emit(SessionEvent::SubmitFailed {
                    id: msg.id,
                    code,
                    retry: false,
                    detail,
                });
                return;
            }
        };
        let now = Instant::now();
        let submission = link.next_submission;
        link.next_submission += 1;
        for (part, (seq, pdu)) in pdus.iter().enumerate() {
            let flight = InFlight {
                submission,
                part,
                sent_at: now,
            };
            link.window.insert(*seq, flight);
            bytes.extend_from_slice(pdu);
            bump(&self.stats.submits);
        }
        let sub = Submission {
            id: msg.id,
            parts_left: pdus.len(),
            first_carrier_id: None,
            outbound: (pdus.len() == 1).then_some(msg),
        };
        link.submissions.insert(submission, sub);
        self.bucket.take(pdus.len());
    }

    /// The submit_sm PDUs of a message with their sequence numbers, or the
    /// final failure when it cannot be sent.
    fn build_pdus(
        &mut self,
        link: &mut Link,
        msg: &Outbound,
    ) -> Result<Vec<(u32, Vec<u8>)>, Refused> {
        let plan = coding::plan(
            &msg.text,
            msg.international,
            self.config.default_coding,
            self.concat_ref,
        )
        .map_err(|e| (ResultCode::BodyTooLong, e.to_string()))?;
        if plan.parts.len() > 1 {
            self.concat_ref = self.concat_ref.wrapping_add(1);
        }
        let source = Address::for_number(&msg.from);
        let dest = Address::for_number(&msg.to);
        let validity_secs = codec::secs_left(msg.expires_at_ms, crate::unix_ms());
        let mut pdus = Vec::with_capacity(plan.parts.len());
        for (i, part) in plan.parts.iter().enumerate() {
            // Only the first part asks for a receipt: it decides the outcome.
            let fields = SubmitFields {
                source: &source,
                dest: &dest,
                esm_class: part.esm_class,
                registered_delivery: u8::from(i == 0),
                data_coding: plan.data_coding,
                short_message: &part.short_message,
                message_payload: part.message_payload.as_deref(),
                validity_secs,
                origin_code: codec::origin_tlv(self.config.origin_code_tag, &msg.origin_code),
            };
            let seq = link.next_seq();
            let pdu =
                codec::submit_sm(seq, &fields).map_err(|e| (e.result_code(), e.to_string()))?;
            pdus.push((seq, pdu));
        }
        Ok(pdus)
    }

    /// Graceful stop: unbind, wait for unbind_resp (handling what arrives
    /// meanwhile) within the response timeout.
    async fn unbind(&mut self, link: &mut Link) -> End {
        let seq = link.next_seq();
        if link
            .send(&codec::unbind(seq), self.timeout())
            .await
            .is_err()
        {
            return End::Stopped;
        }
        let _ = rt::timeout(self.timeout(), async {
            while let Ok(inbound) = link.next_inbound().await {
                if matches!(inbound, Inbound::UnbindResp { seq: s } if s == seq) {
                    break;
                }
                if !matches!(self.on_inbound(link, inbound).await, Ok(None)) {
                    break;
                }
            }
        })
        .await;
        End::Stopped
    }
}

/// A message that cannot be sent at all: its final code and why.
type Refused = (ResultCode, String);

/// What woke the main loop.
enum Wake {
    Stop,
    Read(Result<Inbound, Broken>),
    Timer,
    Message(Outbound),
}
