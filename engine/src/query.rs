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

use crate::core::lifecycle::store::MessageView;
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
    Message(crate::core::lifecycle::store::MessageView),
    /// A report, in the webhook payload's shape (SPEC §2.2).
    Report(Value),
}

/// Answers for the messages this shard owns.
pub fn run_local(shard: &Shard, query: &Query) -> Vec<Row> {
    let messages = shard.messages();
    let mut rows: Vec<Row> = match query {
        Query::History {
            group,
            since,
            until,
            status,
            channel,
            to,
            after,
            ..
        } => messages
            .iter()
            .filter(|m| {
                &*m.group_code == group && m.created_at_ms >= *since && m.created_at_ms < *until
            })
            .filter(|m| {
                status.is_none_or(|s| m.status == s)
                    && channel.is_none_or(|c| m.request.channel == c)
            })
            .filter(|m| to.as_ref().is_none_or(|t| &m.request.to == t))
            .map(|m| Row {
                cursor: Cursor {
                    at_ms: m.created_at_ms,
                    id: m.id,
                },
                item: RowItem::Gone,
            })
            .filter(|r| after.is_none_or(|a| r.cursor > a))
            .collect(),
        Query::Reports {
            group,
            after,
            before,
            not_before,
            ..
        } => messages
            .iter()
            .filter(|m| &*m.group_code == group && m.status.is_final())
            .filter(|m| m.updated_at_ms < *before && m.updated_at_ms >= *not_before)
            .map(|m| Row {
                cursor: Cursor {
                    at_ms: m.updated_at_ms,
                    id: m.id,
                },
                item: RowItem::Gone,
            })
            .filter(|r| after.is_none_or(|a| r.cursor > a))
            .collect(),
        Query::Lookup { group, ids } => ids
            .iter()
            .filter(|id| id.shard() == shard.id)
            .filter_map(|id| messages.get(*id))
            .filter(|m| &*m.group_code == group && m.status.is_final())
            .map(|m| Row {
                cursor: Cursor {
                    at_ms: m.updated_at_ms,
                    id: m.id,
                },
                item: RowItem::Gone,
            })
            .collect(),
    };
    rows.sort_by_key(|r| r.cursor);
    rows.truncate(limit(query));
    for row in &mut rows {
        if let Some(m) = messages.get(row.cursor.id) {
            row.item = item(query, MessageView::of(m));
        }
    }
    rows
}

/// A row's item: the message for history, its report otherwise.
fn item(query: &Query, view: MessageView) -> RowItem {
    match query {
        Query::History { .. } => RowItem::Message(view),
        _ => RowItem::Report(crate::report::report_json(&view)),
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
                item: item(query, m.view),
            }
        })
        .collect()
}

fn limit(query: &Query) -> usize {
    match query {
        Query::History { limit, .. } | Query::Reports { limit, .. } => *limit,
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
