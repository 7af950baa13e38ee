//! The nodes as one gateway (SPEC §5.8): shard 0 takes in the catalog
//! the nodes share and puts this node's API address in it; a read of
//! another node's message is forwarded to that node.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;

use super::super::Shard;
use crate::catalog::{node_key, table};
use crate::http_client::{HttpError, HttpResponse};
use crate::model::MessageId;
use crate::redis::catalog::PULL_EVERY;
use crate::rt;

/// Shard 0 of a node with `[cluster]`: takes in the catalog changes of
/// the other nodes every [`PULL_EVERY`] and installs the new snapshot on
/// every shard; until the node drains. A failed pull is logged (once per
/// failing spell) and tried again.
pub async fn pull_catalog(shard: Rc<Shard>) {
    let mut failing = false;
    let mut registered = false;
    while !shard.shared.is_draining() {
        rt::sleep(PULL_EVERY).await;
        if !registered {
            registered = register(&shard).await;
        }
        let catalog = shard.shared.catalog.clone();
        match rt::blocking(move || catalog.pull()).await {
            Ok(Some(snapshot)) => {
                failing = false;
                shard.install_everywhere(snapshot).await;
            }
            Ok(None) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("the cluster's catalog cannot be read: {e}; kept the last one");
            }
            Err(_) => {}
        }
    }
}

/// Puts this node's API address in the shared catalog (`meta`,
/// `node/<id>`), where the other nodes find it to forward the reads of
/// its messages; whether it is there.
async fn register(shard: &Rc<Shard>) -> bool {
    let (Some(url), Some(link)) = (shard.shared.public_url(), &shard.cluster) else {
        return false;
    };
    let id = link.node_id();
    if shard.snapshot().nodes.get(&id) == Some(&url) {
        return true;
    }
    let write = move |store: &dyn mcmp_storage::Catalog| {
        store.put(table::META, &node_key(id), url.as_bytes())?;
        Ok(())
    };
    match shard.catalog_write(write).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("this node's address is not in the cluster's catalog yet: {e}");
            false
        }
    }
}

/// The header a forwarded request carries (its receiver answers it itself).
pub const FORWARDED: &str = "x-mcmp-forwarded";

/// How long a node waits for the owner of a message it forwards a read to.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request for another node's message got no answer from it.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No node of the cluster has this number.
    #[error("no node {0} in the cluster")]
    UnknownNode(u8),
    /// The owner did not answer.
    #[error("node {0} does not answer: {1}")]
    NoAnswer(u8, HttpError),
}

/// Sends `method path` (with `headers` and `body`) to `node`, the owner of
/// the messages it names, marked [`FORWARDED`]; the owner's answer.
pub async fn forward(
    shard: &Rc<Shard>,
    node: u8,
    (method, path, body): (Method, &str, Bytes),
    mut headers: Vec<(String, String)>,
) -> Result<HttpResponse, ForwardError> {
    let base = shard.snapshot().nodes.get(&node).cloned();
    let base = base.ok_or(ForwardError::UnknownNode(node))?;
    headers.push((FORWARDED.into(), "1".into()));
    let url = format!("{base}{path}");
    let answer = shard
        .http
        .request(method, &url, &headers, body, FORWARD_TIMEOUT)
        .await;
    answer.map_err(|e| ForwardError::NoAnswer(node, e))
}

/// The message holding `src_msg_id` of `group` across nodes (its dedup
/// key), for a look-up this node cannot answer itself.
pub async fn src_holder(shard: &Rc<Shard>, group: &str, src: &str) -> Option<MessageId> {
    let link = shard.cluster.as_ref()?;
    link.peek(group, &[src])
        .await
        .ok()?
        .into_iter()
        .next()
        .flatten()
}

/// POSTs `body` to `path` of `node`.
pub(super) async fn post_to_node(
    shard: &Shard,
    node: u8,
    path: &str,
    headers: &[(String, String)],
    body: Bytes,
) -> Result<HttpResponse, ForwardError> {
    let base = shard.snapshot().nodes.get(&node).cloned();
    let base = base.ok_or(ForwardError::UnknownNode(node))?;
    let url = format!("{base}{path}");
    let answer = shard
        .http
        .post_json(&url, headers, body, FORWARD_TIMEOUT)
        .await;
    answer.map_err(|e| ForwardError::NoAnswer(node, e))
}
