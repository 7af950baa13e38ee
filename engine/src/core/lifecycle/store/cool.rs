//! Which messages go cold and when they come back (see [`super::cold`]).
//!
//! A message nobody changed for [`COLD_AFTER_MS`] goes cold, unless it is
//! settled (it leaves memory soon anyway). Every change first makes it
//! live again ([`LocalMessages::thaw`]); reads of a cold message decode a
//! copy and leave it cold, so a held message retried every few seconds
//! stays cold for as long as it waits.

use std::rc::Rc;

use super::{LocalMessages, StoredMessage};

/// How long a message stays live after its last change.
pub const COLD_AFTER_MS: i64 = 3_000;

impl LocalMessages {
    /// Adds a live message, a candidate to go cold from now on.
    pub(super) fn insert_live(&mut self, m: StoredMessage) {
        let seq = m.id.seq();
        self.recent
            .push_back((m.updated_at_ms.max(self.clock_ms), seq));
        self.by_seq.insert(seq, Rc::new(m));
    }

    /// Makes the message of `seq` live again if it is cold.
    pub(super) fn thaw(&mut self, seq: u64) {
        if let Some(m) = self.cold.take(seq) {
            if !m.status.is_final() {
                self.expiries.insert((self.expires_at_ms(&m), seq));
            }
            // Unchanged for 3 s at least: it waits from now to go cold again.
            self.insert_live(m);
        }
    }

    /// At `now_ms`, turns cold up to `max` messages unchanged for
    /// [`COLD_AFTER_MS`], and compacts one sparse chunk of cold messages.
    /// How many went cold.
    pub fn cool(&mut self, now_ms: i64, max: usize) -> usize {
        self.clock_ms = self.clock_ms.max(now_ms);
        let mut cooled = 0;
        while cooled < max {
            let Some(&(since, seq)) = self.recent.front() else {
                break;
            };
            if since + COLD_AFTER_MS > now_ms {
                break;
            }
            self.recent.pop_front();
            let Some(m) = self.by_seq.get(&seq) else {
                continue;
            };
            if m.settled() || m.handed() {
                continue;
            }
            if m.updated_at_ms + COLD_AFTER_MS > now_ms {
                // Changed since: it waits from its change.
                self.recent.push_back((m.updated_at_ms, seq));
                continue;
            }
            if self.cold.put(m) {
                // The cold store watches its validity from now on.
                let at = m.expires_at_ms(self.default_validity_secs);
                self.expiries.remove(&(at, seq));
                self.by_seq.remove(&seq);
                cooled += 1;
            }
        }
        self.cold.compact_step();
        let room = self.recent.capacity();
        if room > 4_096 && self.recent.len() < room / 4 {
            self.recent.shrink_to(self.recent.len() * 2);
        }
        cooled
    }

    /// Messages kept cold.
    pub fn cold_len(&self) -> usize {
        self.cold.len()
    }

    /// Bytes the cold messages' chunks take.
    pub fn cold_bytes(&self) -> usize {
        self.cold.chunk_bytes()
    }
}
