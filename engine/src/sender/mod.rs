//! Senders: the connections to carriers and providers, and the contract
//! between the routing core and a transport session.
//!
//! A *session* is one bind/connection of a sender, running as a task on one
//! shard. The routing core hands it [`Outbound`] messages through its bounded
//! [`SessionQueue`]; the session reports what happens through its
//! [`SessionEvents`] callback, on the same shard. The session never touches
//! the WAL or message state: the routing core turns events into durable state
//! changes. Transports: `smpp` ([`smpp`]), `sim`; `http` and `smtp` follow.

pub mod config;
pub mod host;
pub mod http;
pub mod live;
pub mod queue;
pub mod rate;
pub mod sim;
pub mod smpp;
pub mod smtp;
#[cfg(test)]
mod test_support;
mod tls;

pub use config::{
    Ability, HttpConfig, SenderConfig, SimConfig, SmppCoding, SmppConfig, SmtpConfig, Transport,
};
pub use queue::SessionQueue;

use std::rc::Rc;

use crate::codes::ResultCode;
use crate::model::MessageId;

pub use crate::model::Outbound;

/// What a session reports. Delivered on the session's shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The session is connected and bound: it can take messages.
    Up,
    /// The session lost its connection (it reconnects by itself).
    Down {
        /// Why, for operators.
        reason: String,
    },
    /// The carrier took the message and gave it this id.
    Submitted {
        /// The message.
        id: MessageId,
        /// The carrier's message id (matches receipts).
        carrier_id: String,
    },
    /// The carrier refused the message, or it could not be sent.
    SubmitFailed {
        /// The message.
        id: MessageId,
        /// Unified code for a final failure.
        code: ResultCode,
        /// Whether another attempt (on this or another sender) may succeed:
        /// throttling, a timeout, a dropped connection.
        retry: bool,
        /// The carrier's own status, for operators.
        detail: String,
    },
    /// The carrier asked to slow down and the session kept the message to
    /// send it again after a pause: no attempt of the message is spent,
    /// but it counts against the sender's health.
    Throttled,
    /// A delivery receipt (SMPP `deliver_sm`, provider callback).
    Receipt {
        /// The carrier's message id, as given at submit.
        carrier_id: String,
        /// Whether the message was delivered.
        delivered: bool,
        /// Unified code (2000 when delivered).
        code: ResultCode,
        /// The carrier's own status (`DELIVRD`, `UNDELIV`, error code...).
        detail: String,
    },
}

/// Where a session sends its events (a shard-local callback).
pub type SessionEvents = Rc<dyn Fn(SessionEvent)>;
