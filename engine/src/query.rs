//! Reading a customer's messages and reports across shards: the message
//! history (`GET /v1/messages?since=…`), report polling (`GET /v1/reports`)
//! and report lookup (`POST /v1/reports/lookup`).
//!
//! Each shard answers for the messages it owns, in order, up to the limit;
//! the asking shard merges the answers and keeps the first `limit`. Order
//! is (time, message id): accept time for history, final time for reports,
//! so a cursor (`<ms>-<message_id>`) resumes exactly after the last row.
//! Report paging only returns reports final before "now − [`SETTLE_MS`]",
//! so a report made final on one shard while another is being read cannot
//! slip in behind a cursor already handed out.
//!
//! Messages that left memory are read from the history store
//! ([`crate::history`]) after the shards' memory, so a message moving from
//! one to the other meanwhile is seen at least once (and kept once).
//!
//! NOTE: each shard scans the messages it holds in memory (those in flight
//! or whose report is pending), which stays bounded by the work in flight.

use std::rc::Rc;

use crate::mesh::call::ask_all;
use serde_json::Value;

use crate::core::lifecycle::store::{Head, SettledMessage};
use crate::history::store::Filter;
use crate::mesh::msg::{MeshMsg, MessagesMsg};
use crate::model::{Channel, MessageId, Status};
use crate::shard::Shard;

/// How far behind "now" report paging stays.
pub const SETTLE_MS: i64 = 200;

pub use crate::model::Cursor;

/// What to find.
#[derive(Debug, Clone)]
pub enum Query {
    /// Messages accepted in `[since, until)`, filtered, after the cursor.
    History {
        /// The customer.
        group: String,
        /// From (unix ms, inclusive).
        since: i64,
        /// To (unix ms, exclusive).
        until: i64,
        /// Only this status.
        status: Option<Status>,
        /// Only this channel.
        channel: Option<Channel>,
        /// Only this recipient.
        to: Option<String>,
        /// Resume after.
        after: Option<Cursor>,
        /// Most rows.
        limit: usize,
    },
    /// Reports final before `before`, after the cursor.
    Reports {
        /// The customer.
        group: String,
        /// Resume after.
        after: Option<Cursor>,
        /// Only reports final before this (unix ms).
        before: i64,
        /// Not older than this (retention; unix ms).
        not_before: i64,
        /// Most rows.
        limit: usize,
    },
    /// The reports of these messages (those final and the customer's).
    Lookup {
        /// The customer.
        group: String,
        /// Messages (those owned by the answering shard are looked at).
        ids: Vec<MessageId>,
    },
    /// Final messages of every customer, or of one, final in `[since,
    /// until)`, after the cursor (`mcmp export`).
    Export {
        /// Only this customer.
        group: Option<String>,
        /// From (unix ms, inclusive).
        since: i64,
        /// To (unix ms, exclusive).
        until: i64,
        /// Resume after.
        after: Option<Cursor>,
        /// Most rows.
        limit: usize,
    },
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its place in the order.
    pub cursor: Cursor,
    /// The message or report.
    pub item: RowItem,
}

/// What a row holds.
#[derive(Debug, Clone)]
pub enum RowItem {
    /// Not found any more (between the scan and the read).
    Gone,
    /// A message (history): the API shapes it.
    Message(Box<crate::core::lifecycle::store::MessageView>),
    /// A report, in the webhook payload's shape (SPEC §2.2).
    Report(Value),
    /// A final message with its price (export).
    Settled(Box<SettledMessage>),
}

/// Answers for the messages this shard holds in memory.
pub fn run_local(shard: &Shard, query: &Query) -> Vec<Row> {
    let messages = shard.messages();
    let mut places: Vec<Cursor> = match query {
        Query::Lookup { ids, .. } => ids
            .iter()
            .filter(|id| id.shard() == shard.id)
            .filter_map(|id| messages.get(*id))
            .filter_map(|m| place(query, Head::of(&m)))
            .collect(),
        // A cold message's head is read without decoding it.
        _ => messages.heads().filter_map(|h| place(query, h)).collect(),
    };
    places.sort_unstable();
    places.truncate(limit(query));
    places
        .into_iter()
        .map(|cursor| Row {
            cursor,
            item: messages
                .get(cursor.id)
                .map_or(RowItem::Gone, |m| item(query, SettledMessage::of(&m))),
        })
        .collect()
}

/// Where `m` sorts in `query`'s answer, if it is part of it.
fn place(query: &Query, m: Head<'_>) -> Option<Cursor> {
    let (at_ms, keep, after) = match query {
        Query::History {
            group,
            since,
            until,
            status,
            channel,
            to,
            after,
            ..
        } => {
            let keep = m.group_code == &**group
                && (*since..*until).contains(&m.created_at_ms)
                && status.is_none_or(|s| m.status == s)
                && channel.is_none_or(|c| m.channel == c)
                && to.as_ref().is_none_or(|t| m.to == t.as_str());
            (m.created_at_ms, keep, *after)
        }
        Query::Reports {
            group,
            after,
            before,
            not_before,
            ..
        } => {
            let keep =
                m.group_code == &**group && (*not_before..*before).contains(&m.updated_at_ms);
            (m.updated_at_ms, keep && m.status.is_final(), *after)
        }
        Query::Lookup { group, .. } => {
            let keep = m.group_code == &**group && m.status.is_final();
            (m.updated_at_ms, keep, None)
        }
        Query::Export {
            group,
            since,
            until,
            after,
            ..
        } => {
            let keep = group.as_ref().is_none_or(|g| m.group_code == &**g)
                && (*since..*until).contains(&m.updated_at_ms);
            (m.updated_at_ms, keep && m.status.is_final(), *after)
        }
    };
    let cursor = Cursor { at_ms, id: m.id };
    (keep && after.is_none_or(|a| cursor > a)).then_some(cursor)
}

/// A row's item: the message for history, the whole settled record for
/// export, its report otherwise.
fn item(query: &Query, m: SettledMessage) -> RowItem {
    match query {
        Query::History { .. } => RowItem::Message(Box::new(m.view)),
        Query::Export { .. } => RowItem::Settled(Box::new(m)),
        _ => RowItem::Report(crate::report::report_json(&m.view)),
    }
}

/// Answers from the history store (the messages that left memory).
async fn run_archived(shard: &Shard, query: &Query) -> Vec<Row> {
    let now = crate::unix_ms();
    let q = query.clone();
    let found = shard
        .shared
        .history
        .read(move |store| match q {
            Query::History {
                group,
                since,
                until,
                status,
                channel,
                to,
                after,
                limit,
            } => {
                let filter = Filter {
                    status,
                    channel,
                    to,
                };
                store.history(&group, (since, until), after, &filter, limit, now)
            }
            Query::Reports {
                group,
                after,
                before,
                not_before,
                limit,
            } => store.reports(&group, (not_before, before), after, limit, now),
            Query::Lookup { group, ids } => {
                let mut out = Vec::new();
                for id in ids {
                    out.extend(store.get(id, now)?.filter(|m| m.view.group_code == group));
                }
                Ok(out)
            }
            Query::Export {
                group,
                since,
                until,
                after,
                limit,
            } => store.export(group.as_deref(), (since, until), after, limit, now),
        })
        .await
        .unwrap_or_default();
    found
        .into_iter()
        .map(|m| {
            let at_ms = match query {
                Query::History { .. } => m.view.created_at_ms,
                _ => m.view.updated_at_ms,
            };
            Row {
                cursor: Cursor {
                    at_ms,
                    id: m.view.id,
                },
                item: item(query, m),
            }
        })
        .collect()
}

fn limit(query: &Query) -> usize {
    match query {
        Query::History { limit, .. }
        | Query::Reports { limit, .. }
        | Query::Export { limit, .. } => *limit,
        Query::Lookup { ids, .. } => ids.len(),
    }
}

/// Asks every shard and merges: the first `limit` rows in order.
pub async fn run(shard: &Rc<Shard>, query: Query) -> Vec<Row> {
    let mut rows: Vec<Row> = ask_all(shard, |reply| {
        MeshMsg::Messages(MessagesMsg::Query {
            query: query.clone(),
            reply,
        })
    })
    .await
    .into_iter()
    .flatten()
    .flatten()
    .collect();
    // After memory: a message that left memory since is in the store by now.
    rows.extend(run_archived(shard, &query).await);
    rows.sort_by_key(|r| r.cursor);
    rows.dedup_by_key(|r| r.cursor.id);
    rows.truncate(limit(&query));
    rows
}
