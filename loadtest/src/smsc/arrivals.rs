//! Arrival instants of marked messages: a load mode that must time its
//! messages from the HTTP request to the SMSC (`priority`, for `otp`
//! messages) gives them a text prefix and sets a [`Watch`] on the
//! simulator's [`super::state::State`], which notes every complete message
//! whose text starts with it. In process only: the control API does not
//! serve it.

use std::time::Instant;

/// Bound on the arrivals a watch keeps; past it new ones are counted in
/// [`Watch::count`] only. A mode marks a few thousand messages at most.
pub const MAX_ARRIVALS: usize = 1_000_000;

/// One marked message as it completed at the SMSC.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Its decoded text.
    pub text: String,
    /// When its (last) `submit_sm` was read.
    pub at: Instant,
    /// Its position among every complete message the SMSC received (the
    /// value of `messages` once it was counted, from 1): how many messages
    /// went out before it, whatever their mark.
    pub position: u64,
}

/// The messages with a text prefix, as they arrive.
#[derive(Debug)]
pub struct Watch {
    prefix: String,
    arrivals: Vec<Arrival>,
    dropped: u64,
}

impl Watch {
    /// A watch on texts starting with `prefix`.
    pub fn new(prefix: &str) -> Watch {
        Watch {
            prefix: prefix.to_owned(),
            arrivals: Vec::new(),
            dropped: 0,
        }
    }

    /// Notes `text` if it carries the prefix; `position` is the SMSC's
    /// message count including it.
    pub fn note(&mut self, text: &str, position: u64) {
        if !text.starts_with(&self.prefix) {
            return;
        }
        if self.arrivals.len() >= MAX_ARRIVALS {
            self.dropped += 1;
            return;
        }
        self.arrivals.push(Arrival {
            text: text.to_owned(),
            at: Instant::now(),
            position,
        });
    }

    /// The marked messages so far, in arrival order.
    pub fn arrivals(&self) -> &[Arrival] {
        &self.arrivals
    }

    /// Marked messages that arrived (`arrivals` plus those past the bound).
    pub fn count(&self) -> u64 {
        self.arrivals.len() as u64 + self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_marked_texts_are_noted_in_order() {
        let mut w = Watch::new("otp r1-");
        w.note("lt r1-5", 1);
        w.note("otp r1-0", 2);
        w.note("otp r2-0", 3);
        w.note("otp r1-1", 4);
        let got: Vec<(&str, u64)> = w
            .arrivals()
            .iter()
            .map(|a| (a.text.as_str(), a.position))
            .collect();
        assert_eq!(got, [("otp r1-0", 2), ("otp r1-1", 4)]);
        assert_eq!(w.count(), 2);
        assert!(w.arrivals()[0].at <= w.arrivals()[1].at);
    }
}
