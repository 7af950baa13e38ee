//! Messages nobody has changed for a while — a million held behind a
//! carrier that is down, or submitted and waiting for their receipts —
//! kept encoded, back to back in large chunks: about 150 bytes a message
//! where the live record with its request costs about 450 (DESIGN §3
//! "Bounded state", `docs/PERFORMANCE.md` "Live state").
//!
//! A message is encoded once when it goes cold and decoded when it is read
//! (a copy) or changed (it becomes live again and leaves its chunk). Names
//! (customer, client, carrier, sender) are numbers into this store's list
//! of names. An entry is `[length: u16][id: u64][watched: u8][fields]`, so
//! a chunk can be walked without decoding: a chunk whose live bytes fall below a
//! quarter is compacted (its live entries copied to the chunk being
//! filled) and dropped. Chunks are shared (`Rc`) with a checkpoint's
//! frozen image, which reads them while the shard goes on; a shared chunk
//! is never written again.
//!
//! The validity of a cold message that is not final is watched per chunk:
//! each chunk knows the earliest end among its messages, and a chunk whose
//! earliest end has come is walked for the ones that ended
//! ([`ColdStore::pop_expired`]), so a million cold messages need no index
//! by validity.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use bincode::{BorrowDecode, Encode};

use super::{Head, Links, PackedRequest, StoredMessage};
use crate::core::lifecycle::report::ReportState;
use crate::core::seq_hash::SeqMap;
use crate::model::{Channel, Class, Event, MessageId, Status};

/// Bytes per chunk.
const CHUNK: usize = 512 * 1024;

/// A message encoded longer than this stays live (it would not fit the
/// entry's length; such messages are rare and large anyway).
const MAX_ENTRY: usize = 16 * 1024;

/// Where an entry is: chunk number (high 32 bits) and offset.
type Loc = u64;

fn loc(chunk: usize, off: usize) -> Loc {
    ((chunk as u64) << 32) | off as u64
}

fn chunk_of(loc: Loc) -> usize {
    (loc >> 32) as usize
}

fn off_of(loc: Loc) -> usize {
    (loc & u64::from(u32::MAX)) as usize
}

/// The fields of a cold message but its id and events, as encoded
/// (times after the accept time, names by number).
#[derive(Encode, BorrowDecode)]
struct Form<'a> {
    group: u32,
    client: u32,
    status: Status,
    code: u16,
    price: i64,
    carrier: Option<u32>,
    sender: Option<u32>,
    carrier_msg_id: Option<&'a str>,
    created_at_ms: i64,
    updated_after_ms: i64,
    links: Links,
    report: ReportState,
    backlog: bool,
    channel: Channel,
    priority: Option<Class>,
    ad: bool,
    parts: u16,
    validity: Option<u32>,
    send_at_after_ms: Option<i64>,
    request: &'a [u8],
    events: u32,
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Bytes of an entry before its fields: length, id, watched.
const HEAD: usize = 2 + 8 + 1;

/// The fields of the entry at the start of `bytes`, and where its events
/// start.
fn form(bytes: &[u8]) -> Option<(Form<'_>, &[u8])> {
    let len = usize::from(u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]));
    let fields = bytes.get(HEAD..2 + len)?;
    let (f, used) = bincode::borrow_decode_from_slice::<Form, _>(fields, config()).ok()?;
    Some((f, &fields[used..]))
}

/// When the validity of the entry at the start of `bytes` ends, if it is
/// watched (not final).
fn expiry_at(bytes: &[u8], default_secs: u32) -> Option<i64> {
    if bytes.get(10) != Some(&1) {
        return None;
    }
    let (f, _) = form(bytes)?;
    let send_at = f.send_at_after_ms.map(|a| f.created_at_ms + a);
    let validity = f.validity.unwrap_or(default_secs);
    Some(super::validity_end(f.created_at_ms, send_at, validity))
}

/// Decodes the entry at the start of `bytes` (its length prefix included).
fn decode(bytes: &[u8], names: &[Rc<str>]) -> Option<StoredMessage> {
    let id = id_at(bytes)?;
    let (f, mut rest) = form(bytes)?;
    let name = |n: u32| names.get(n as usize).cloned();
    let created = f.created_at_ms;
    let mut events = Vec::with_capacity(f.events as usize);
    for _ in 0..f.events {
        let ((after, status, code, late), used): ((i64, Status, u16, bool), usize) =
            bincode::decode_from_slice(rest, config()).ok()?;
        rest = &rest[used..];
        events.push(Event {
            at_ms: created + after,
            status,
            code,
            late_receipt: late,
        });
    }
    let send_at_ms = f.send_at_after_ms.map(|a| created + a);
    Some(StoredMessage {
        id,
        group_code: name(f.group)?,
        client_id: name(f.client)?,
        request: PackedRequest::from_raw(
            (f.channel, f.priority, f.ad, f.parts, f.validity),
            send_at_ms,
            f.request.into(),
        ),
        status: f.status,
        price: f.price,
        code: f.code,
        carrier: f.carrier.and_then(name),
        sender: f.sender.and_then(name),
        carrier_msg_id: f.carrier_msg_id.map(Into::into),
        created_at_ms: created,
        updated_at_ms: created + f.updated_after_ms,
        links: f.links,
        events: events.into_boxed_slice(),
        report: f.report,
        backlog: f.backlog,
        handed: 0,
    })
}

/// The message's id, from the entry at the start of `bytes`.
fn id_at(bytes: &[u8]) -> Option<MessageId> {
    let id = bytes.get(2..10)?;
    Some(MessageId(u64::from_le_bytes(id.try_into().ok()?)))
}

/// The entry's whole length (prefix included) at the start of `bytes`.
fn entry_len(bytes: &[u8]) -> usize {
    2 + usize::from(u16::from_le_bytes([bytes[0], bytes[1]]))
}

/// The head of the entry at the start of `bytes`.
fn head_at<'a>(bytes: &'a [u8], names: &'a [Rc<str>]) -> Option<Head<'a>> {
    let id = id_at(bytes)?;
    let (f, _) = form(bytes)?;
    Some(Head {
        id,
        group_code: names.get(f.group as usize)?,
        client_id: names.get(f.client as usize)?,
        status: f.status,
        channel: f.channel,
        to: super::packed::to_in(f.request),
        class: super::class_from(f.priority, f.ad),
        sender: f.sender.and_then(|n| names.get(n as usize)).map(|s| &**s),
        created_at_ms: f.created_at_ms,
        updated_at_ms: f.created_at_ms + f.updated_after_ms,
        report: f.report,
    })
}

/// The cold messages of one shard.
#[derive(Default)]
pub struct ColdStore {
    /// `None`: dropped (its number is reused).
    chunks: Vec<Option<Rc<Vec<u8>>>>,
    /// Live bytes per chunk.
    live: Vec<usize>,
    /// Per chunk, the earliest end of validity of its watched messages
    /// (`i64::MAX`: none; possibly earlier than the truth, never later).
    first_expiry: Vec<i64>,
    /// Watched messages found ended, not yet popped.
    ended: Vec<u64>,
    /// Messages not final.
    watched: usize,
    /// The validity of a message recorded without one, in seconds.
    default_validity_secs: u32,
    /// Numbers of dropped chunks.
    free: Vec<usize>,
    /// The chunk being filled.
    current: Option<usize>,
    /// Chunks below a quarter live, to compact.
    sparse: VecDeque<usize>,
    index: SeqMap<Loc>,
    names: Vec<Rc<str>>,
    name_ids: HashMap<Rc<str>, u32>,
    live_bytes: usize,
}

/// The cold messages at a checkpoint's mark: shared chunks (never written
/// again) and where each message is.
pub struct ColdImage {
    chunks: Vec<Option<Rc<Vec<u8>>>>,
    locs: Vec<Loc>,
    names: Vec<Rc<str>>,
}

impl ColdImage {
    /// Messages in the image.
    pub fn len(&self) -> usize {
        self.locs.len()
    }

    /// Whether the image holds no message.
    pub fn is_empty(&self) -> bool {
        self.locs.is_empty()
    }

    /// Message `i` of the image.
    pub fn get(&self, i: usize) -> Option<StoredMessage> {
        let loc = *self.locs.get(i)?;
        let chunk = self.chunks.get(chunk_of(loc))?.as_ref()?;
        decode(&chunk[off_of(loc)..], &self.names)
    }
}

impl ColdStore {
    /// An empty store; a message recorded without a validity gets
    /// `default_validity_secs`.
    pub fn new(default_validity_secs: u32) -> ColdStore {
        ColdStore {
            default_validity_secs,
            ..ColdStore::default()
        }
    }

    /// Cold messages not final (their validity watched).
    pub fn watched(&self) -> usize {
        self.watched
    }

    /// Takes out the seq of a watched cold message whose validity ended by
    /// `now_ms`, if any (it stays cold: the caller ends it). Walks the
    /// chunks whose earliest end has come.
    pub fn pop_expired(&mut self, now_ms: i64) -> Option<u64> {
        loop {
            if let Some(seq) = self.ended.pop() {
                if self.unwatch(seq) {
                    return Some(seq);
                }
                continue;
            }
            let c = (0..self.chunks.len()).find(|&c| self.first_expiry[c] <= now_ms)?;
            self.collect_ended(c, now_ms);
        }
    }

    /// Moves the watched messages of chunk `c` ended by `now_ms` to
    /// `ended`, and sets the chunk's earliest end from the others.
    fn collect_ended(&mut self, c: usize, now_ms: i64) {
        let mut first = i64::MAX;
        if let Some(chunk) = self.chunks[c].clone() {
            let mut off = 0;
            while off < chunk.len() {
                let bytes = &chunk[off..];
                let seq = id_at(bytes).map(MessageId::seq);
                let live = seq.filter(|s| self.index.get(s) == Some(&loc(c, off)));
                match (live, expiry_at(bytes, self.default_validity_secs)) {
                    (Some(seq), Some(at)) if at <= now_ms => self.ended.push(seq),
                    (Some(_), Some(at)) => first = first.min(at),
                    _ => {}
                }
                off += entry_len(bytes);
            }
        }
        self.first_expiry[c] = first;
    }

    /// Stops watching the validity of `seq` (its entry's flag cleared in
    /// place when no checkpoint shares the chunk, else it may be found
    /// again: the caller ends it first). False if it is not cold.
    fn unwatch(&mut self, seq: u64) -> bool {
        let Some(&l) = self.index.get(&seq) else {
            return false;
        };
        let Some(chunk) = self.chunks[chunk_of(l)].as_mut() else {
            return false;
        };
        let watched = chunk.get(off_of(l) + 10) == Some(&1);
        if let Some(flag) = Rc::get_mut(chunk).and_then(|b| b.get_mut(off_of(l) + 10)) {
            *flag = 0;
            self.watched -= usize::from(watched);
        }
        watched
    }

    /// Messages kept cold.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no message is cold.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes of the chunks held (live entries and the room of dropped ones
    /// not yet compacted).
    pub fn chunk_bytes(&self) -> usize {
        self.chunks.iter().flatten().count() * CHUNK
    }

    /// Whether `seq` is cold.
    pub fn contains(&self, seq: u64) -> bool {
        self.index.contains_key(&seq)
    }

    fn entry(&self, seq: u64) -> Option<(Loc, &[u8])> {
        let loc = *self.index.get(&seq)?;
        let chunk = self.chunks.get(chunk_of(loc))?.as_ref()?;
        Some((loc, &chunk[off_of(loc)..]))
    }

    /// A copy of the message of `seq`.
    pub fn get(&self, seq: u64) -> Option<StoredMessage> {
        decode(self.entry(seq)?.1, &self.names)
    }

    /// The id of the message of `seq`, without decoding it.
    pub fn id(&self, seq: u64) -> Option<MessageId> {
        id_at(self.entry(seq)?.1)
    }

    /// The head of the message of `seq`, read in place.
    pub fn head(&self, seq: u64) -> Option<Head<'_>> {
        head_at(self.entry(seq)?.1, &self.names)
    }

    /// The heads of every cold message, chunk by chunk.
    pub fn heads(&self) -> impl Iterator<Item = Head<'_>> + '_ {
        self.chunks.iter().enumerate().flat_map(move |(c, chunk)| {
            let bytes = chunk.as_deref().map_or(&[][..], |b| &b[..]);
            let mut off = 0;
            std::iter::from_fn(move || {
                while off < bytes.len() {
                    let at = off;
                    off += entry_len(&bytes[at..]);
                    let seq = id_at(&bytes[at..]).map(MessageId::seq);
                    if seq.is_some_and(|s| self.index.get(&s) == Some(&loc(c, at))) {
                        return head_at(&bytes[at..], &self.names);
                    }
                }
                None
            })
        })
    }

    /// Every cold message's sequence number.
    pub fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.index.keys().copied()
    }

    /// Takes the message of `seq` out (to be live again).
    pub fn take(&mut self, seq: u64) -> Option<StoredMessage> {
        let m = self.get(seq)?;
        self.remove(seq);
        Some(m)
    }

    /// Forgets the message of `seq`.
    pub fn remove(&mut self, seq: u64) -> bool {
        let Some((loc, bytes)) = self.entry(seq) else {
            return false;
        };
        let len = entry_len(bytes);
        let watched = bytes.get(10) == Some(&1);
        self.index.remove(&seq);
        self.watched -= usize::from(watched);
        self.live_bytes -= len;
        let c = chunk_of(loc);
        self.live[c] -= len;
        if Some(c) != self.current {
            if self.live[c] == 0 {
                self.drop_chunk(c);
            } else if self.live[c] < CHUNK / 4 && self.live[c] + len >= CHUNK / 4 {
                self.sparse.push_back(c);
            }
        }
        true
    }

    fn drop_chunk(&mut self, c: usize) {
        if self.chunks[c].take().is_some() {
            self.first_expiry[c] = i64::MAX;
            self.free.push(c);
        }
    }

    fn name_id(&mut self, name: &Rc<str>) -> u32 {
        if let Some(&n) = self.name_ids.get(name) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.push(name.clone());
        self.name_ids.insert(name.clone(), n);
        n
    }

    /// Encodes `m`; false (nothing kept) when it is too large.
    pub fn put(&mut self, m: &StoredMessage) -> bool {
        let mut entry = Vec::with_capacity(192);
        entry.extend_from_slice(&[0, 0]);
        entry.extend_from_slice(&m.id.0.to_le_bytes());
        let watched = !m.status.is_final();
        entry.push(u8::from(watched));
        self.encode_fields(m, &mut entry);
        let body = entry.len() - 2;
        if body > MAX_ENTRY {
            return false;
        }
        entry[..2].copy_from_slice(&(body as u16).to_le_bytes());
        self.append(m.id.seq(), &entry);
        self.watched += usize::from(watched);
        true
    }

    fn encode_fields(&mut self, m: &StoredMessage, out: &mut Vec<u8>) {
        let created = m.created_at_ms;
        let (send_at_ms, request) = m.request.raw();
        let form = Form {
            group: self.name_id(&m.group_code),
            client: self.name_id(&m.client_id),
            status: m.status,
            code: m.code,
            price: m.price,
            carrier: m.carrier.as_ref().map(|c| self.name_id(c)),
            sender: m.sender.as_ref().map(|s| self.name_id(s)),
            carrier_msg_id: m.carrier_msg_id.as_deref(),
            created_at_ms: created,
            updated_after_ms: m.updated_at_ms - created,
            links: m.links.clone(),
            report: m.report,
            backlog: m.backlog,
            channel: m.request.channel,
            priority: m.request.priority,
            ad: m.request.ad,
            parts: m.request.parts,
            validity: m.request.validity,
            send_at_after_ms: send_at_ms.map(|at| at - created),
            request,
            events: m.events.len() as u32,
        };
        // Encoding plain data into a Vec cannot fail.
        let _ = bincode::encode_into_std_write(&form, out, config());
        for e in m.events.iter() {
            let event = (e.at_ms - created, e.status, e.code, e.late_receipt);
            let _ = bincode::encode_into_std_write(event, out, config());
        }
    }

    /// Appends an encoded entry for `seq` to the chunk being filled.
    fn append(&mut self, seq: u64, entry: &[u8]) {
        let c = self.writable(entry.len());
        let Some(chunk) = self.chunks[c].as_mut().and_then(Rc::get_mut) else {
            return;
        };
        let off = chunk.len();
        chunk.extend_from_slice(entry);
        if let Some(at) = expiry_at(entry, self.default_validity_secs) {
            self.first_expiry[c] = self.first_expiry[c].min(at);
        }
        self.live[c] += entry.len();
        self.live_bytes += entry.len();
        if let Some(old) = self.index.insert(seq, loc(c, off)) {
            // Not expected (a message goes cold once until taken out):
            // the old entry is dead room.
            let oc = chunk_of(old);
            let len = self.chunks[oc]
                .as_ref()
                .map_or(0, |b| entry_len(&b[off_of(old)..]));
            self.live[oc] -= len;
            self.live_bytes -= len;
        }
    }

    /// The chunk `len` more bytes go to: the current one if it has room
    /// and no checkpoint reads it, else a new one.
    fn writable(&mut self, len: usize) -> usize {
        if let Some(c) = self.current {
            let fits = self.chunks[c]
                .as_mut()
                .and_then(Rc::get_mut)
                .is_some_and(|b| b.len() + len <= CHUNK);
            if fits {
                return c;
            }
            if self.live[c] == 0 {
                self.drop_chunk(c);
            } else if self.live[c] < CHUNK / 4 {
                self.sparse.push_back(c);
            }
        }
        let fresh = Some(Rc::new(Vec::with_capacity(CHUNK)));
        let c = match self.free.pop() {
            Some(c) => {
                self.chunks[c] = fresh;
                self.live[c] = 0;
                self.first_expiry[c] = i64::MAX;
                c
            }
            None => {
                self.chunks.push(fresh);
                self.live.push(0);
                self.first_expiry.push(i64::MAX);
                self.chunks.len() - 1
            }
        };
        self.current = Some(c);
        c
    }

    /// Compacts one sparse chunk, if any: its live entries move to the
    /// chunk being filled and it is dropped. How many entries moved.
    pub fn compact_step(&mut self) -> usize {
        let Some(c) = self.sparse.pop_front() else {
            return 0;
        };
        if Some(c) == self.current || self.live[c] >= CHUNK / 4 {
            return 0;
        }
        let Some(chunk) = self.chunks[c].clone() else {
            return 0;
        };
        let mut moved = 0;
        let mut off = 0;
        while off < chunk.len() {
            let bytes = &chunk[off..];
            let len = entry_len(bytes);
            let seq = id_at(bytes).map(MessageId::seq);
            if let Some(seq) = seq.filter(|s| self.index.get(s) == Some(&loc(c, off))) {
                self.live[c] -= len;
                self.live_bytes -= len;
                self.index.remove(&seq);
                self.append(seq, &bytes[..len]);
                moved += 1;
            }
            off += len;
        }
        self.drop_chunk(c);
        moved
    }

    /// The cold messages as they are now, for a checkpoint.
    pub fn image(&self) -> ColdImage {
        // The chunk being filled is shared from now on: the next entry
        // starts a new one.
        ColdImage {
            chunks: self.chunks.clone(),
            locs: self.index.values().copied().collect(),
            names: self.names.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
