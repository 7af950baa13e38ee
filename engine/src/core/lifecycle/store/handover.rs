//! Settled messages handed to the history store, and out of memory once
//! it applied them (DESIGN §3 "Bounded state").

use std::rc::Rc;

use super::{LocalMessages, SettledMessage};

impl LocalMessages {
    /// Takes up to `max` settled messages for the history store, as
    /// hand-over `ticket` (the previous ticket + 1); `None` when there are none.
    pub fn take_settled(&mut self, max: usize) -> Option<(u64, Vec<SettledMessage>)> {
        let ticket = self.last_ticket + 1;
        let mut seqs = Vec::new();
        let mut out = Vec::new();
        while out.len() < max {
            let Some(seq) = self.settled.pop_front() else {
                break;
            };
            let Some(m) = self
                .by_seq
                .get_mut(&seq)
                .filter(|m| m.settled())
                .map(Rc::make_mut)
            else {
                continue;
            };
            m.handed = ticket;
            seqs.push(seq);
            out.push(SettledMessage::of(m));
        }
        if out.is_empty() {
            return None;
        }
        self.last_ticket = ticket;
        self.handed.push_back((ticket, seqs));
        Some((ticket, out))
    }

    /// The history store refused hand-over `ticket` (its queue is full):
    /// its messages wait for the next one, first in line.
    pub fn hand_back(&mut self, ticket: u64) {
        if let Some(pos) = self.handed.iter().position(|(t, _)| *t == ticket) {
            let (_, seqs) = self.handed.remove(pos).unwrap_or_default();
            for seq in seqs.into_iter().rev() {
                self.settled.push_front(seq);
            }
        }
    }

    /// The history store applied every hand-over up to `ticket`: their
    /// messages leave memory (those changed since, by a late receipt,
    /// wait for their next hand-over). How many left.
    pub fn evict_archived(&mut self, ticket: u64) -> usize {
        let mut left = 0;
        while self.handed.front().is_some_and(|(t, _)| *t <= ticket) {
            let Some((t, seqs)) = self.handed.pop_front() else {
                break;
            };
            for seq in seqs {
                if self.by_seq.get(&seq).is_some_and(|m| m.handed == t) {
                    if let Some(m) = self.by_seq.remove(&seq) {
                        let net = crate::core::lifecycle::transition::net_charge(&m);
                        if net != 0 {
                            *self.left_net.entry(m.group_code.clone()).or_default() += net;
                        }
                        let key = (m.status, m.request.channel, m.group_code.clone());
                        *self.left.entry(key).or_default() += 1;
                        left += 1;
                    }
                }
            }
        }
        left
    }

    /// Settled messages waiting for the history store, handed or not.
    pub fn leaving(&self) -> usize {
        self.settled.len() + self.handed.iter().map(|(_, s)| s.len()).sum::<usize>()
    }
}
