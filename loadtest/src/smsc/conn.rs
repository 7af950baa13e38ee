//! One SMPP connection: the read loop that answers PDUs, the write loop, and
//! the receipt timers.
//!
//! Protocol of a connection: it starts unbound; `bind_*` binds it (once);
//! `submit_sm` needs a transmitter or transceiver bind; `unbind` is answered
//! after the answers to every submit read (held ones included), and the
//! connection closed after the answer is written; `POST /drop`
//! hangs up (stops reading, writes the answers to every PDU read, closes);
//! a framing error (absurd `command_length`), `POST /drop {"abrupt":true}`
//! or shutdown cuts it at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufWriter};
use tokio::sync::{mpsc, watch};

use super::state::Part;
use super::{DropOrder, Smsc};
use crate::shutdown::Shutdown;
use crate::smpp::{cmd, status, tag, Bind, Pdu, ShortMessage, Tlv};
use crate::text;

/// PDUs queued for one connection's writer. When the peer stops reading,
/// the reader stops too (it awaits room), which is the backpressure a real
/// SMSC applies.
const OUTBOX_CAPACITY: usize = 4096;
/// Receipts awaiting `deliver_sm_resp` tracked per connection; beyond it a
/// peer that never acknowledges stops growing the set (its acks are then
/// not counted).
const MAX_PENDING_RECEIPTS: usize = 100_000;
/// How long a hung-up connection waits for the peer to close.
const HANG_UP_LINGER: Duration = Duration::from_secs(2);
/// How long a hung-up connection waits, beyond `--resp-delay-ms`, for its
/// owed answers to be written (they are released at once; this bound only
/// matters if the writer is stuck behind a peer that does not read).
const HANG_UP_OWED: Duration = Duration::from_secs(10);
/// The `system_id` this SMSC gives in `bind_*_resp`.
const SMSC_SYSTEM_ID: &str = "MCMPSIM";
/// ESME_RALYBND: a second bind on a bound connection.
const ESME_RALYBND: u32 = 0x05;

#[derive(Debug)]
enum Out {
    Pdu(Vec<u8>),
    /// Flush, close the write side and stop.
    Close,
}

/// The sending side of one connection, shared with receipt timers.
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Out>,
    next_seq: AtomicU32,
    /// Receipts sent and not yet answered, by sequence number (their
    /// `deliver_sm` bodies, to send again on another bind if this one dies).
    pending_receipts: Mutex<HashMap<u32, Vec<u8>>>,
    system_id: Mutex<String>,
}

impl Outbox {
    async fn send(&self, pdu: Pdu) {
        // A closed writer means the connection is gone; nothing to do.
        let _ = self.tx.send(Out::Pdu(pdu.encode())).await;
    }

    fn sequence(&self) -> u32 {
        // Sequence numbers are 1..=0x7FFFFFFF (SMPP 3.4 §3.2).
        (self.next_seq.fetch_add(1, Ordering::Relaxed) % 0x7FFF_FFFF) + 1
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Vec<u8>>> {
        self.pending_receipts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindKind {
    Transmitter,
    Receiver,
    Transceiver,
}

struct Session {
    smsc: Arc<Smsc>,
    conn_id: u64,
    outbox: Arc<Outbox>,
    bound: Option<(String, BindKind)>,
    outstanding: Arc<AtomicU64>,
    /// Set when this connection hangs up: answers still held back are
    /// released and written before it closes.
    hung_up: Arc<watch::Sender<bool>>,
}

/// Runs one connection to its end.
pub async fn run<R, W>(
    smsc: Arc<Smsc>,
    conn_id: u64,
    (mut rd, wr): (R, W),
    mut dropped: watch::Receiver<DropOrder>,
    shutdown: Shutdown,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let writer = tokio::spawn(write_loop(wr, rx));
    let outbox = Arc::new(Outbox {
        tx,
        next_seq: AtomicU32::new(0),
        pending_receipts: Mutex::new(HashMap::new()),
        system_id: Mutex::new(String::new()),
    });
    let mut session = Session {
        smsc: smsc.clone(),
        conn_id,
        outbox,
        bound: None,
        outstanding: Arc::new(AtomicU64::new(0)),
        hung_up: Arc::new(watch::channel(false).0),
    };
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    let end = loop {
        let n = tokio::select! {
            r = rd.read(&mut chunk) => r,
            _ = dropped.changed() => {
                break if dropped.borrow().abrupt { End::Cut } else { End::HangUp };
            }
            () = shutdown.wait() => break End::Cut,
        };
        let Ok(n @ 1..) = n else { break End::Cut };
        buf.extend_from_slice(&chunk[..n]);
        match session.drain(&mut buf).await {
            Flow::Continue => {}
            Flow::Close => break End::Cut,
            Flow::CloseAfterWrite => break End::AfterWrite,
        }
    };
    smsc.receivers().remove(&conn_id);
    // Like a real SMSC, receipts this bind never acknowledged go out again
    // on the next bind of the same system_id.
    let unacked: Vec<Vec<u8>> = session
        .outbox
        .pending()
        .drain()
        .map(|(_, body)| body)
        .collect();
    let system_id = session
        .outbox
        .system_id
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if smsc.args.forget_receipts {
        smsc.state().counters.receipts_forgotten += unacked.len() as u64;
    } else {
        for body in unacked {
            tokio::spawn(redeliver(smsc.clone(), system_id.clone(), body));
        }
    }
    if end == End::Cut {
        writer.abort();
        return;
    }
    if end == End::HangUp {
        session.answer_what_is_owed().await;
    }
    let _ = session.outbox.tx.send(Out::Close).await;
    let _ = writer.await;
    if end == End::HangUp {
        // Read and ignore what the peer still sends until it closes too, so
        // the kernel does not answer it with a reset that could destroy the
        // answers just written.
        let _ = tokio::time::timeout(HANG_UP_LINGER, async {
            while rd.read(&mut chunk).await.is_ok_and(|n| n > 0) {}
        })
        .await;
    }
}

/// How a connection's read loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Closed at once; answers not yet written are lost.
    Cut,
    /// Closed after writing the answers to everything read (`unbind`).
    AfterWrite,
    /// `POST /drop`: like `AfterWrite`, then unread input is discarded
    /// until the peer closes (or [`HANG_UP_LINGER`]).
    HangUp,
}

enum Flow {
    Continue,
    Close,
    CloseAfterWrite,
}

async fn write_loop<W: AsyncWrite + Unpin>(wr: W, mut rx: mpsc::Receiver<Out>) {
    let mut wr = BufWriter::new(wr);
    while let Some(out) = rx.recv().await {
        match out {
            Out::Pdu(bytes) => {
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Out::Close => break,
        }
        // Flush only when nothing else is queued, so bursts share syscalls.
        if rx.is_empty() && wr.flush().await.is_err() {
            return;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

impl Session {
    /// Answers every complete PDU in `buf`, leaving a partial one there.
    async fn drain(&mut self, buf: &mut Vec<u8>) -> Flow {
        let mut used = 0;
        let flow = loop {
            match Pdu::decode(&buf[used..]) {
                Ok(Some((pdu, n))) => {
                    used += n;
                    match self.handle(pdu).await {
                        Flow::Continue => {}
                        other => break other,
                    }
                }
                Ok(None) => break Flow::Continue,
                // NOTE: an absurd length means we can no longer find PDU
                // boundaries; a generic_nack would be read as garbage too.
                Err(_) => break Flow::Close,
            }
        };
        buf.drain(..used);
        flow
    }

    /// Answers held back (`--resp-delay-ms`, `POST /hold-answers`) are
    /// still owed when the connection ends: releases the held ones and
    /// waits for all to be queued for writing.
    async fn answer_what_is_owed(&self) {
        self.hung_up.send_replace(true);
        let owed = async {
            while self.outstanding.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let limit = Duration::from_millis(self.smsc.args.resp_delay_ms) + HANG_UP_OWED;
        let _ = tokio::time::timeout(limit, owed).await;
    }

    async fn reply(&self, req: &Pdu, status: u32, body: Vec<u8>) {
        let pdu = Pdu::new(req.command_id | cmd::RESP, status, req.sequence, body);
        self.outbox.send(pdu).await;
    }

    async fn nack(&self, req: &Pdu, status: u32) {
        let pdu = Pdu::new(cmd::GENERIC_NACK, status, req.sequence, Vec::new());
        self.outbox.send(pdu).await;
    }

    async fn handle(&mut self, pdu: Pdu) -> Flow {
        match pdu.command_id {
            cmd::BIND_TRANSMITTER => self.bind(pdu, BindKind::Transmitter).await,
            cmd::BIND_RECEIVER => self.bind(pdu, BindKind::Receiver).await,
            cmd::BIND_TRANSCEIVER => self.bind(pdu, BindKind::Transceiver).await,
            cmd::ENQUIRE_LINK => self.reply(&pdu, status::ESME_ROK, Vec::new()).await,
            cmd::UNBIND => {
                // Like a real SMSC, answer every submit read before the
                // unbind_resp: the ESME reads them before it closes.
                self.answer_what_is_owed().await;
                self.reply(&pdu, status::ESME_ROK, Vec::new()).await;
                return Flow::CloseAfterWrite;
            }
            cmd::SUBMIT_SM => self.submit(pdu).await,
            id if id == cmd::DELIVER_SM | cmd::RESP => {
                if self.outbox.pending().remove(&pdu.sequence).is_some() {
                    self.smsc.state().counters.receipts_acked += 1;
                }
            }
            // Other responses (enquire_link_resp, generic_nack) need no answer.
            id if id & cmd::RESP != 0 => {}
            _ => self.nack(&pdu, status::ESME_RINVCMDID).await,
        }
        Flow::Continue
    }

    async fn bind(&mut self, pdu: Pdu, kind: BindKind) {
        let bind = match Bind::decode(&pdu.body) {
            Ok(b) => b,
            Err(_) => return self.nack(&pdu, status::ESME_RINVCMDLEN).await,
        };
        if self.bound.is_some() {
            return self.reply(&pdu, ESME_RALYBND, Vec::new()).await;
        }
        let verdict = self.check_credentials(&bind);
        {
            let mut state = self.smsc.state();
            if verdict == status::ESME_ROK {
                state.counters.binds += 1;
                state.system(&bind.system_id).binds += 1;
            } else {
                state.counters.bind_failures += 1;
            }
        }
        if verdict != status::ESME_ROK {
            return self.reply(&pdu, verdict, Vec::new()).await;
        }
        *self
            .outbox
            .system_id
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = bind.system_id.clone();
        if kind != BindKind::Transmitter {
            self.smsc
                .receivers()
                .insert(self.conn_id, self.outbox.clone());
        }
        self.bound = Some((bind.system_id, kind));
        let version = Tlv {
            tag: tag::SC_INTERFACE_VERSION,
            value: vec![0x34],
        };
        let body = crate::smpp::encode_cstr_body(SMSC_SYSTEM_ID, &[version]);
        self.reply(&pdu, status::ESME_ROK, body).await;
    }

    fn check_credentials(&self, bind: &Bind) -> u32 {
        let args = &self.smsc.args;
        if self.smsc.refuse_binds.load(Ordering::Relaxed) {
            return status::ESME_RBINDFAIL;
        }
        if args
            .system_id
            .as_ref()
            .is_some_and(|s| *s != bind.system_id)
        {
            return status::ESME_RBINDFAIL;
        }
        if args.password.as_ref().is_some_and(|p| *p != bind.password) {
            return status::ESME_RINVPASWD;
        }
        status::ESME_ROK
    }

    async fn submit(&mut self, pdu: Pdu) {
        let system_id = match &self.bound {
            Some((s, BindKind::Transmitter | BindKind::Transceiver)) => s.clone(),
            _ => return self.reply(&pdu, status::ESME_RINVBNDSTS, Vec::new()).await,
        };
        let sm = match ShortMessage::decode(&pdu.body) {
            Ok(sm) => sm,
            Err(_) => return self.nack(&pdu, status::ESME_RINVCMDLEN).await,
        };
        let verdict = self.judge(&system_id);
        if verdict != status::ESME_ROK {
            return self.reply(&pdu, verdict, Vec::new()).await;
        }
        let (number, id) = self.smsc.message_id();
        self.smsc.state().accept(Part {
            id: &id,
            system_id: &system_id,
            sm: &sm,
        });
        let answer = Answer {
            smsc: self.smsc.clone(),
            outbox: self.outbox.clone(),
            conn_id: self.conn_id,
            outstanding: self.outstanding.clone(),
            hung_up: self.hung_up.subscribe(),
            sequence: pdu.sequence,
            number,
            id,
            sm,
        };
        // Decided when the submit is read: a hold ordered before it (and
        // acknowledged by the control API) always applies to it.
        if self.smsc.args.resp_delay_ms == 0 && !self.smsc.holding_answers() {
            answer.respond().await;
            tokio::spawn(answer.receipt_later());
        } else {
            tokio::spawn(answer.delayed());
        }
    }

    /// Counts the submit and decides its fate: the window check, then the
    /// random failures. Returns ESME_ROK when it is accepted; an accepted
    /// submit stays outstanding until its response is written.
    fn judge(&self, system_id: &str) -> u32 {
        let args = &self.smsc.args;
        let outstanding = self.outstanding.load(Ordering::Relaxed);
        let mut state = self.smsc.state();
        state.counters.submits += 1;
        state.system(system_id).submits += 1;
        if args.window_check && outstanding >= args.window {
            state.counters.window_violations += 1;
            return status::ESME_RMSGQFUL;
        }
        if self.smsc.throttling_all() {
            state.counters.throttled += 1;
            return status::ESME_RTHROTTLED;
        }
        let roll = fastrand::f64();
        if roll < args.fail_rate {
            state.counters.submit_failed += 1;
            return status::ESME_RSUBMITFAIL;
        }
        if roll < args.fail_rate + args.throttle_rate {
            state.counters.throttled += 1;
            return status::ESME_RTHROTTLED;
        }
        let now = self.outstanding.fetch_add(1, Ordering::Relaxed) + 1;
        state.counters.max_outstanding = state.counters.max_outstanding.max(now);
        status::ESME_ROK
    }
}

/// How long a receipt waits for a bind of its system_id when the bind that
/// submitted the message is gone.
const RECEIPT_HOLD: Duration = Duration::from_secs(120);

/// An accepted `submit_sm` still to be answered, then receipted.
struct Answer {
    smsc: Arc<Smsc>,
    outbox: Arc<Outbox>,
    conn_id: u64,
    outstanding: Arc<AtomicU64>,
    /// This connection's hang-up, which releases a held answer.
    hung_up: watch::Receiver<bool>,
    sequence: u32,
    /// The message's number (its id is written from it).
    number: u64,
    id: String,
    sm: ShortMessage,
}

impl Answer {
    async fn respond(&self) {
        let body = crate::smpp::encode_cstr_body(&self.id, &[]);
        let pdu = Pdu::new(
            cmd::SUBMIT_SM | cmd::RESP,
            status::ESME_ROK,
            self.sequence,
            body,
        );
        self.outbox.send(pdu).await;
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
    }

    /// Answers after `--resp-delay-ms` and once no hold applies.
    async fn delayed(mut self) {
        tokio::time::sleep(Duration::from_millis(self.smsc.args.resp_delay_ms)).await;
        self.released().await;
        self.respond().await;
        self.receipt_later().await;
    }

    /// Returns once `POST /hold-answers` is off or this connection hangs
    /// up. A connection that is cut never releases its held answers: they
    /// stay held until the hold ends, and then go to a closed writer.
    async fn released(&mut self) {
        let mut hold = self.smsc.hold_answers.subscribe();
        let mut connection_open = true;
        loop {
            if !*hold.borrow_and_update() || *self.hung_up.borrow_and_update() {
                return;
            }
            tokio::select! {
                changed = hold.changed() => if changed.is_err() { return },
                changed = self.hung_up.changed(), if connection_open => {
                    connection_open = changed.is_ok();
                }
            }
        }
    }

    /// Sends the receipt after `--dlr-delay-ms` on this connection when it
    /// can receive, else on another receiver bound with the same system_id.
    async fn receipt_later(self) {
        tokio::time::sleep(self.smsc.dlr_delay()).await;
        let gone = !self.smsc.receivers().contains_key(&self.conn_id);
        if gone && self.smsc.args.forget_receipts {
            self.smsc.state().counters.receipts_forgotten += 1;
            return;
        }
        // Like a real SMSC, keep a receipt whose bind is gone and deliver it
        // when the ESME binds again with the same system_id (store and
        // forward), for up to RECEIPT_HOLD.
        let deadline = tokio::time::Instant::now() + RECEIPT_HOLD;
        let args = &self.smsc.args;
        let (stat, err) = if args.ported.contains(&self.sm.dest) {
            ("UNDELIV", PORTED_OUT_ERR)
        } else if args.dlr_stat == "DELIVRD" {
            ("DELIVRD", "000")
        } else {
            (args.dlr_stat.as_str(), "001")
        };
        let id = args.receipt_id_format.write(self.number, &self.id);
        let body = receipt(&id, &self.sm, stat, err, SystemTime::now()).encode();
        let system_id = self
            .outbox
            .system_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        deliver(&self.smsc, Some(self.conn_id), &system_id, body, deadline).await;
    }
}

/// Sends a receipt on connection `own` when it can still receive, else on
/// another receiver bound with `system_id`, waiting for one until
/// `deadline`; it stays pending there until acknowledged.
///
/// The receiver is chosen and the receipt made pending on it under the
/// receivers' lock: a connection that ends takes itself out of the
/// receivers before it collects its pending receipts for redelivery, so
/// a receipt is either collected with them or sent on a bind that is
/// still there (before, one made pending between the two was lost).
async fn deliver(
    smsc: &Smsc,
    own: Option<u64>,
    system_id: &str,
    body: Vec<u8>,
    deadline: tokio::time::Instant,
) {
    loop {
        let claimed = {
            let receivers = smsc.receivers();
            let outbox = own.and_then(|id| receivers.get(&id)).or_else(|| {
                receivers
                    .values()
                    .find(|o| *o.system_id.lock().unwrap_or_else(|p| p.into_inner()) == system_id)
            });
            outbox.map(|outbox| {
                let seq = outbox.sequence();
                let mut pending = outbox.pending();
                if pending.len() < MAX_PENDING_RECEIPTS {
                    pending.insert(seq, body.clone());
                }
                (outbox.clone(), seq)
            })
        };
        if let Some((outbox, seq)) = claimed {
            // Counted before it is queued: the peer's ack can be read (and
            // counted as `receipts_acked`) before this task runs again.
            smsc.state().counters.receipts_sent += 1;
            outbox.send(Pdu::new(cmd::DELIVER_SM, 0, seq, body)).await;
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            smsc.state().counters.receipts_undeliverable += 1;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends an unacknowledged receipt again once a bind of `system_id` exists
/// (for up to RECEIPT_HOLD).
async fn redeliver(smsc: Arc<Smsc>, system_id: String, body: Vec<u8>) {
    let deadline = tokio::time::Instant::now() + RECEIPT_HOLD;
    deliver(&smsc, None, &system_id, body, deadline).await;
}

/// The `message_state` TLV value for a receipt's `stat:` (SMPP 3.4 §5.2.28).
fn message_state(stat: &str) -> u8 {
    match stat {
        "ENROUTE" => 1,
        "DELIVRD" => 2,
        "EXPIRED" => 3,
        "DELETED" => 4,
        "UNDELIV" => 5,
        "ACCEPTD" => 6,
        "REJECTD" => 8,
        _ => 7, // UNKNOWN
    }
}

/// The receipt `err:` of a ported-out recipient (MCMP's receipt error table).
const PORTED_OUT_ERR: &str = "088";

/// The `deliver_sm` receipt for message `id` submitted as `sm`, with
/// `stat:` and `err:`: addresses swapped, esm_class 0x04, the classic text
/// format (SMPP 3.4 Appendix B) and the `receipted_message_id` /
/// `message_state` TLVs.
pub fn receipt(
    id: &str,
    sm: &ShortMessage,
    stat: &str,
    err: &str,
    now: SystemTime,
) -> ShortMessage {
    let date = yymmddhhmm(now);
    let delivered = stat == "DELIVRD";
    let payload = sm
        .tlv(tag::MESSAGE_PAYLOAD)
        .unwrap_or(sm.short_message.as_slice());
    let (_, data) = text::split_udh(sm.esm_class, payload);
    let excerpt = text::receipt_excerpt(&text::decode(sm.data_coding, data));
    let body = format!(
        "id:{id} sub:001 dlvrd:{} submit date:{date} done date:{date} stat:{stat} err:{err} text:{excerpt}",
        if delivered { "001" } else { "000" },
    );
    let mut receipted_id = id.as_bytes().to_vec();
    receipted_id.push(0);
    ShortMessage {
        source_ton: sm.dest_ton,
        source_npi: sm.dest_npi,
        source: sm.dest.clone(),
        dest_ton: sm.source_ton,
        dest_npi: sm.source_npi,
        dest: sm.source.clone(),
        esm_class: 0x04,
        short_message: body.into_bytes(),
        tlvs: vec![
            Tlv {
                tag: tag::RECEIPTED_MESSAGE_ID,
                value: receipted_id,
            },
            Tlv {
                tag: tag::MESSAGE_STATE,
                value: vec![message_state(stat)],
            },
        ],
        ..ShortMessage::default()
    }
}

/// `YYMMDDhhmm` in UTC.
fn yymmddhhmm(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{:02}{m:02}{d:02}{:02}{:02}",
        y % 100,
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (the well-known era-based algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_yymmddhhmm() {
        // 2024-02-29 13:05:00 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_211_900);
        assert_eq!(yymmddhhmm(t), "2402291305");
        assert_eq!(yymmddhhmm(UNIX_EPOCH), "7001010000");
    }

    #[test]
    fn receipt_has_the_classic_text_and_tlvs() {
        let sm = ShortMessage {
            source: "1588".into(),
            dest: "01012345678".into(),
            short_message: b"hello".to_vec(),
            ..ShortMessage::default()
        };
        let r = receipt("00000000ab", &sm, "DELIVRD", "000", UNIX_EPOCH);
        let text = String::from_utf8(r.short_message.clone()).expect("ascii");
        assert_eq!(
            text,
            "id:00000000ab sub:001 dlvrd:001 submit date:7001010000 done date:7001010000 stat:DELIVRD err:000 text:hello"
        );
        assert_eq!(
            (r.source.as_str(), r.dest.as_str(), r.esm_class),
            ("01012345678", "1588", 4)
        );
        assert_eq!(r.tlv(tag::RECEIPTED_MESSAGE_ID), Some(&b"00000000ab\0"[..]));
        assert_eq!(r.tlv(tag::MESSAGE_STATE), Some(&[2u8][..]));
    }
}
