//! What the SMSC simulator remembers: counters, the reassembled messages,
//! the duplicate detector and the concatenation parts still waiting.
//!
//! One [`State`] lives behind a mutex in [`super::Smsc`], shared by every
//! connection task and the control API. The lock is held only for counter
//! updates and map inserts, never across an await.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash as _, Hasher as _};

use serde::Serialize;

use crate::smpp::{tag, ShortMessage};
use crate::text::{self, Concat};

use super::arrivals::Watch;

/// Default bound on the messages kept for `GET /messages`. Past it the oldest
/// are forgotten (and counted in `messages_evicted`); counters stay exact.
pub const DEFAULT_MAX_MESSAGES: usize = 1_000_000;
/// Bound on the duplicate detector's keys (8 bytes each, so ~80 MB at most).
/// Past it, new keys are no longer remembered, so `duplicates` undercounts;
/// `dedup_saturated` says so.
pub const MAX_DEDUP_KEYS: usize = 10_000_000;
/// Bound on concatenated messages waiting for their missing parts. Past it an
/// arbitrary waiting message is forgotten and counted in `concat_evicted`.
pub const MAX_PENDING_CONCAT: usize = 100_000;

/// Global counters, as served by `GET /stats`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// Successful binds.
    pub binds: u64,
    /// TLS handshakes that failed (`--tls`).
    pub tls_failures: u64,
    /// Binds refused (bad credentials or `/refuse-binds`).
    pub bind_failures: u64,
    /// `submit_sm` PDUs received while bound, whatever their outcome.
    pub submits: u64,
    /// `submit_sm` answered ESME_RSUBMITFAIL on purpose (`--fail-rate`).
    pub submit_failed: u64,
    /// `submit_sm` answered ESME_RTHROTTLED on purpose (`--throttle-rate`).
    pub throttled: u64,
    /// `submit_sm` refused with ESME_RMSGQFUL by `--window-check`.
    pub window_violations: u64,
    /// The most `submit_sm` ever outstanding (unanswered) on one connection.
    pub max_outstanding: u64,
    /// Complete messages (a concatenated message counts once).
    pub messages: u64,
    /// Complete messages whose key had been seen before.
    pub duplicates: u64,
    /// `deliver_sm` receipts written.
    pub receipts_sent: u64,
    /// `deliver_sm_resp` received for receipts.
    pub receipts_acked: u64,
    /// Receipts that had no bound receiver to go to.
    pub receipts_undeliverable: u64,
    /// Receipts of a broken bind forgotten (`--forget-receipts`).
    pub receipts_forgotten: u64,
    /// Messages dropped from the `/messages` list because of its bound.
    pub messages_evicted: u64,
    /// Incomplete concatenated messages forgotten because of their bound.
    pub concat_evicted: u64,
    /// True once the duplicate detector stopped remembering new keys.
    pub dedup_saturated: bool,
}

/// Counters for one `system_id`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PerSystem {
    /// Successful binds.
    pub binds: u64,
    /// `submit_sm` received.
    pub submits: u64,
    /// Complete messages.
    pub messages: u64,
}

/// One received, reassembled message, as served by `GET /messages`.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The message id returned for its first part.
    pub id: String,
    /// The `system_id` of the bind it came on.
    pub system_id: String,
    /// `source_addr`.
    pub from: String,
    /// `destination_addr`.
    pub to: String,
    /// The decoded text (see [`crate::text`] for the mapping).
    pub text: String,
    /// `data_coding` of the (first) part.
    pub data_coding: u8,
    /// How many parts it came in.
    pub parts: u8,
    /// The optional parameters of its (first) part other than those the
    /// simulator reads itself (`message_payload`, `user_message_reference`):
    /// `"0x1410"` → the value as text (UTF-8, lossy; a trailing NUL dropped),
    /// e.g. a reseller's origin code.
    pub tlvs: BTreeMap<String, String>,
}

/// The optional parameters of `sm` that [`Message::tlvs`] shows.
fn other_tlvs(sm: &ShortMessage) -> BTreeMap<String, String> {
    sm.tlvs
        .iter()
        .filter(|t| t.tag != tag::MESSAGE_PAYLOAD && t.tag != tag::USER_MESSAGE_REFERENCE)
        .map(|t| {
            let value = t.value.strip_suffix(&[0]).unwrap_or(&t.value);
            (
                format!("0x{:04x}", t.tag),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect()
}

/// What the simulator remembers.
#[derive(Debug)]
pub struct State {
    /// Global counters.
    pub counters: Counters,
    /// Counters by `system_id`.
    pub by_system_id: BTreeMap<String, PerSystem>,
    messages: VecDeque<Message>,
    max_messages: usize,
    seen: HashSet<u64>,
    pending: HashMap<ConcatKey, Pending>,
    /// Marked messages timed on arrival (set in process by a load mode;
    /// `reset` clears it).
    pub watch: Option<Watch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ConcatKey {
    system_id: String,
    from: String,
    to: String,
    reference: u16,
    total: u8,
}

#[derive(Debug)]
struct Pending {
    first_id: Option<(u8, String)>,
    tlvs: BTreeMap<String, String>,
    data_coding: u8,
    user_ref: Option<Vec<u8>>,
    parts: Vec<Option<Vec<u8>>>,
    received: usize,
}

/// One accepted `submit_sm`, as the connection hands it to [`State::accept`].
#[derive(Debug)]
pub struct Part<'a> {
    /// The id returned in `submit_sm_resp`.
    pub id: &'a str,
    /// The bind's `system_id`.
    pub system_id: &'a str,
    /// The decoded PDU body.
    pub sm: &'a ShortMessage,
}

impl State {
    /// An empty state keeping at most `max_messages` messages.
    pub fn new(max_messages: usize) -> Self {
        State {
            counters: Counters::default(),
            by_system_id: BTreeMap::new(),
            messages: VecDeque::new(),
            max_messages,
            seen: HashSet::new(),
            pending: HashMap::new(),
            watch: None,
        }
    }

    /// Forgets everything (`POST /reset`).
    pub fn reset(&mut self) {
        *self = State::new(self.max_messages);
    }

    /// The kept messages, oldest first.
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter()
    }

    /// The per-`system_id` counters, created on first use.
    pub fn system(&mut self, system_id: &str) -> &mut PerSystem {
        self.by_system_id.entry(system_id.to_owned()).or_default()
    }

    /// Records an accepted part: a single message completes at once, a
    /// concatenated one when its last part arrives. The user data is taken
    /// from `message_payload` when present, else from `short_message`, and
    /// a UDH is stripped from either.
    pub fn accept(&mut self, part: Part<'_>) {
        let sm = part.sm;
        let payload = sm
            .tlv(tag::MESSAGE_PAYLOAD)
            .unwrap_or(sm.short_message.as_slice());
        let (concat, data) = text::split_udh(sm.esm_class, payload);
        let user_ref = sm.tlv(tag::USER_MESSAGE_REFERENCE).map(<[u8]>::to_vec);
        match concat {
            None => self.complete(
                Message {
                    id: part.id.to_owned(),
                    system_id: part.system_id.to_owned(),
                    from: sm.source.clone(),
                    to: sm.dest.clone(),
                    text: text::decode(sm.data_coding, data),
                    data_coding: sm.data_coding,
                    parts: 1,
                    tlvs: other_tlvs(sm),
                },
                user_ref.as_deref(),
            ),
            Some(c) => self.accept_concat(&part, c, data.to_vec(), user_ref),
        }
    }

    fn accept_concat(
        &mut self,
        part: &Part<'_>,
        c: Concat,
        data: Vec<u8>,
        user_ref: Option<Vec<u8>>,
    ) {
        let key = ConcatKey {
            system_id: part.system_id.to_owned(),
            from: part.sm.source.clone(),
            to: part.sm.dest.clone(),
            reference: c.reference,
            total: c.total,
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING_CONCAT {
            if let Some(victim) = self.pending.keys().next().cloned() {
                self.pending.remove(&victim);
                self.counters.concat_evicted += 1;
            }
        }
        let pending = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            first_id: None,
            tlvs: BTreeMap::new(),
            data_coding: part.sm.data_coding,
            user_ref,
            parts: vec![None; c.total as usize],
            received: 0,
        });
        let slot = &mut pending.parts[c.index as usize - 1];
        if slot.is_none() {
            pending.received += 1;
        }
        *slot = Some(data);
        // The message's id is the id given to its lowest-numbered part.
        if pending.first_id.as_ref().is_none_or(|(i, _)| c.index < *i) {
            pending.first_id = Some((c.index, part.id.to_owned()));
            pending.tlvs = other_tlvs(part.sm);
        }
        if pending.received < pending.parts.len() {
            return;
        }
        let Some(done) = self.pending.remove(&key) else {
            return;
        };
        let bytes: Vec<u8> = done.parts.into_iter().flatten().flatten().collect();
        let message = Message {
            id: done.first_id.map(|(_, id)| id).unwrap_or_default(),
            system_id: key.system_id,
            from: key.from,
            to: key.to,
            // Parts are joined before decoding: a split may fall inside a
            // multi-byte EUC-KR or UCS-2 character.
            text: text::decode(done.data_coding, &bytes),
            data_coding: done.data_coding,
            parts: c.total,
            tlvs: done.tlvs,
        };
        self.complete(message, done.user_ref.as_deref());
    }

    fn complete(&mut self, message: Message, user_ref: Option<&[u8]>) {
        self.counters.messages += 1;
        if let Some(w) = self.watch.as_mut() {
            w.note(&message.text, self.counters.messages);
        }
        self.system(&message.system_id).messages += 1;
        let key = dedup_key(&message, user_ref);
        if self.seen.contains(&key) {
            self.counters.duplicates += 1;
        } else if self.seen.len() < MAX_DEDUP_KEYS {
            self.seen.insert(key);
        } else {
            self.counters.dedup_saturated = true;
        }
        if self.max_messages == 0 {
            self.counters.messages_evicted += 1;
            return;
        }
        if self.messages.len() >= self.max_messages {
            self.messages.pop_front();
            self.counters.messages_evicted += 1;
        }
        self.messages.push_back(message);
    }
}

/// The duplicate key: (source, destination, text) plus the client's
/// `user_message_reference` when it sent one. NOTE: SMPP 3.4 has no string
/// reference, and a 16-bit one alone would wrap after 65,536 messages, so the
/// reference refines the text key instead of replacing it. Load generators
/// should put a unique token in each text to make `duplicates` exact.
fn dedup_key(m: &Message, user_ref: Option<&[u8]>) -> u64 {
    let mut h = DefaultHasher::new();
    m.from.hash(&mut h);
    m.to.hash(&mut h);
    m.text.hash(&mut h);
    user_ref.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(text: &[u8], udh: Option<[u8; 6]>) -> ShortMessage {
        let mut short_message = Vec::new();
        if let Some(h) = udh {
            short_message.extend_from_slice(&h);
        }
        short_message.extend_from_slice(text);
        ShortMessage {
            source: "1588".into(),
            dest: "01000000000".into(),
            esm_class: if udh.is_some() { 0x40 } else { 0 },
            short_message,
            ..ShortMessage::default()
        }
    }

    fn accept(state: &mut State, id: &str, sm: &ShortMessage) {
        state.accept(Part {
            id,
            system_id: "sys",
            sm,
        });
    }

    #[test]
    fn parts_reassemble_in_any_order_and_count_once() {
        let mut s = State::new(10);
        accept(&mut s, "2", &sm(b"world", Some([5, 0, 3, 9, 2, 2])));
        assert_eq!(s.counters.messages, 0);
        accept(&mut s, "1", &sm(b"hello ", Some([5, 0, 3, 9, 2, 1])));
        assert_eq!(s.counters.messages, 1);
        let m = s.messages().next().expect("one message");
        assert_eq!(
            (m.id.as_str(), m.text.as_str(), m.parts),
            ("1", "hello world", 2)
        );
    }

    #[test]
    fn same_text_twice_is_a_duplicate_unless_references_differ() {
        let mut s = State::new(10);
        accept(&mut s, "1", &sm(b"hi", None));
        accept(&mut s, "2", &sm(b"hi", None));
        assert_eq!((s.counters.messages, s.counters.duplicates), (2, 1));
        let mut a = sm(b"hi", None);
        a.tlvs.push(crate::smpp::Tlv {
            tag: tag::USER_MESSAGE_REFERENCE,
            value: vec![0, 1],
        });
        accept(&mut s, "3", &a);
        assert_eq!(s.counters.duplicates, 1);
    }

    /// A vendor optional parameter (a reseller's origin code) is shown by
    /// its tag; the ones the simulator reads itself are not.
    #[test]
    fn other_optional_parameters_are_kept_by_tag() {
        let mut s = State::new(10);
        let mut a = sm(b"hi", None);
        a.tlvs.push(crate::smpp::Tlv {
            tag: 0x1410,
            value: b"BIZ-1".to_vec(),
        });
        a.tlvs.push(crate::smpp::Tlv {
            tag: tag::USER_MESSAGE_REFERENCE,
            value: vec![0, 1],
        });
        accept(&mut s, "1", &a);
        let mut b = sm(b"second", Some([5, 0, 3, 7, 2, 1]));
        b.tlvs.push(crate::smpp::Tlv {
            tag: 0x1520,
            value: b"C-2\0".to_vec(),
        });
        accept(&mut s, "2", &b);
        accept(&mut s, "3", &sm(b" part", Some([5, 0, 3, 7, 2, 2])));
        let tlvs: Vec<Vec<(String, String)>> = s
            .messages()
            .map(|m| m.tlvs.clone().into_iter().collect())
            .collect();
        assert_eq!(
            tlvs,
            vec![
                vec![("0x1410".to_string(), "BIZ-1".to_string())],
                vec![("0x1520".to_string(), "C-2".to_string())],
            ]
        );
    }

    #[test]
    fn message_list_is_bounded() {
        let mut s = State::new(2);
        for i in 0..5u8 {
            accept(&mut s, &i.to_string(), &sm(&[b'a' + i], None));
        }
        assert_eq!(s.messages().count(), 2);
        assert_eq!(s.counters.messages_evicted, 3);
        assert_eq!(s.counters.messages, 5);
    }
}
