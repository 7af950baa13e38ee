//! A message's head: what listings and counts read (SPEC §2.2 history,
//! `GET /admin/v1/stats`, dead letters), the same for a live message and
//! a cold one, whose head is read without decoding the rest.

use super::StoredMessage;
use crate::core::lifecycle::report::ReportState;
use crate::model::{Channel, Class, MessageId, Status};

/// What listings, counts and the routing of a held message read of a
/// message, without its events or request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head<'a> {
    /// The id.
    pub id: MessageId,
    /// The customer.
    pub group_code: &'a str,
    /// The client that sent it.
    pub client_id: &'a str,
    /// Current status.
    pub status: Status,
    /// The channel.
    pub channel: Channel,
    /// The recipient.
    pub to: &'a str,
    /// Its traffic class.
    pub class: Class,
    /// The sender it was routed to last, if any.
    pub sender: Option<&'a str>,
    /// Accept time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
    /// The report's delivery state.
    pub report: ReportState,
}

impl<'a> Head<'a> {
    /// The head of a live message.
    pub fn of(m: &'a StoredMessage) -> Head<'a> {
        Head {
            id: m.id,
            group_code: &m.group_code,
            client_id: &m.client_id,
            status: m.status,
            channel: m.request.channel,
            to: m.request.to(),
            class: super::class_of(&m.request),
            sender: m.sender.as_deref(),
            created_at_ms: m.created_at_ms,
            updated_at_ms: m.updated_at_ms,
            report: m.report,
        }
    }
}
