//! One bound SMPP connection of a session ([`Link`]): its socket and
//! framer, sequence numbers, the submit window and the messages in it, and
//! the throttle backoff. Shard-local; driven by `session.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::codec::{self, Framer, Inbound};
use crate::model::{MessageId, Outbound};
use crate::rt;

/// First pause after ESME_RTHROTTLED; doubles per throttle.
pub(super) const THROTTLE_MIN: Duration = Duration::from_millis(100);
/// Throttle pause cap.
pub(super) const THROTTLE_MAX: Duration = Duration::from_secs(5);
/// Socket read size; a frame larger than this is assembled by the framer.
pub(super) const READ_CHUNK: usize = 16 * 1024;
/// Sequence numbers run 1..=0x7FFF_FFFF (SMPP 3.4 §5.1.4), then wrap.
pub(super) const MAX_SEQ: u32 = 0x7FFF_FFFF;

/// Why a connection ended badly (operator text), and whether it was the
/// peer's protocol fault.
pub(super) struct Broken {
    pub(super) reason: String,
    pub(super) protocol: bool,
}

impl Broken {
    pub(super) fn io(reason: String) -> Broken {
        Broken {
            reason,
            protocol: false,
        }
    }
    pub(super) fn protocol(reason: String) -> Broken {
        Broken {
            reason,
            protocol: true,
        }
    }
}

/// One submit_sm in the window.
pub(super) struct InFlight {
    pub(super) submission: u64,
    pub(super) part: usize,
    pub(super) sent_at: Instant,
}

/// One message being submitted (one or more parts).
pub(super) struct Submission {
    pub(super) id: MessageId,
    pub(super) parts_left: usize,
    pub(super) first_carrier_id: Option<String>,
    /// The message, while it is one part in the window: a throttled one
    /// goes back to the session's queue instead of failing.
    pub(super) outbound: Option<Outbound>,
}

/// One bound connection and its window. Shard-local.
pub(super) struct Link {
    pub(super) conn: rt::TcpConn,
    pub(super) framer: Framer,
    pub(super) buf: Vec<u8>,
    pub(super) next_seq: u32,
    pub(super) window: HashMap<u32, InFlight>,
    pub(super) submissions: HashMap<u64, Submission>,
    pub(super) next_submission: u64,
    pub(super) enquire: Option<(u32, Instant)>,
    /// The link is being given up: its answers are read, nothing is sent.
    pub(super) closing: bool,
    pub(super) last_rx: Instant,
    pub(super) throttled_until: Option<Instant>,
    pub(super) throttle_step: Duration,
}

impl Link {
    pub(super) fn new(conn: rt::TcpConn) -> Link {
        Link {
            conn,
            framer: Framer::new(),
            buf: vec![0; READ_CHUNK],
            next_seq: 1,
            window: HashMap::new(),
            submissions: HashMap::new(),
            next_submission: 0,
            enquire: None,
            closing: false,
            last_rx: Instant::now(),
            throttled_until: None,
            throttle_step: THROTTLE_MIN,
        }
    }

    pub(super) fn next_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = if seq >= MAX_SEQ { 1 } else { seq + 1 };
        seq
    }

    /// Takes the message of `seq` out of the window to send it again later,
    /// if it is a one-part message (a part of a longer one may already be
    /// at the carrier: resending would duplicate it).
    pub(super) fn take_back(&mut self, seq: u32) -> Option<Outbound> {
        let submission = self.window.get(&seq)?.submission;
        let outbound = self.submissions.get_mut(&submission)?.outbound.take()?;
        self.window.remove(&seq);
        self.submissions.remove(&submission);
        Some(outbound)
    }

    pub(super) fn throttle(&mut self, now: Instant) {
        self.throttled_until = Some(now + self.throttle_step);
        self.throttle_step = (self.throttle_step * 2).min(THROTTLE_MAX);
    }

    pub(super) async fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), Broken> {
        match rt::timeout(timeout, self.conn.write_all(bytes)).await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Broken::io(format!("writing to SMSC: {e}"))),
            None => Err(Broken::io("write to SMSC stalled".into())),
        }
    }

    /// The next PDU. Cancel-safe: bytes read stay in the framer.
    pub(super) async fn next_inbound(&mut self) -> Result<Inbound, Broken> {
        loop {
            match self.framer.next_frame() {
                Err(e) => return Err(Broken::protocol(format!("framing: {e}"))),
                Ok(Some(frame)) => {
                    self.last_rx = Instant::now();
                    return codec::decode_frame(frame).map_err(|e| Broken::protocol(e.to_string()));
                }
                Ok(None) => {}
            }
            let n = self
                .conn
                .read(&mut self.buf)
                .await
                .map_err(|e| Broken::io(format!("reading from SMSC: {e}")))?;
            if n == 0 {
                return Err(Broken::io("connection closed by SMSC".into()));
            }
            self.framer.push(&self.buf[..n]);
        }
    }
}
