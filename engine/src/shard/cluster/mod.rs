//! The shard's link to the other nodes (SPEC §5.8, DESIGN §10): dedup
//! claims of `src_msg_id` in the Redis Cluster the nodes share.
//!
//! A key is `mcmp:dedup:{<customer>}:<src_msg_id>` (hash-tagged by
//! customer, so one request's keys live on one master and share its
//! round trips), its value the id of the message that holds it, set with
//! `SET … NX GET EX <dedup.window>`: the one call both claims a free key
//! and names the holder of a taken one. The local dedup table answers
//! re-sends to the same node first; only its fresh claims go to Redis,
//! every key of a request at once (the node's connection pipelines them).
//!
//! A claim is made before the message's WAL append and kept only if the
//! append holds (a failed append deletes the keys it still holds). A node
//! killed between the two leaves a key naming an id that was never
//! accepted: when that id is this node's, a re-send finds it missing
//! (wrong customer, wrong `src_msg_id` or gone) and takes the key over
//! with a compare-and-set. An id of another node is trusted as it is.
//!
//! Beside: [`quota`] (TPS and prepaid credit across nodes), [`nodes`] (the
//! shared catalog's pull, node addresses, reads forwarded to the owner)
//! and [`receipts`] (a receipt that reached another node's bind).

mod nodes;
mod quota;
mod receipts;

pub use nodes::{forward, pull_catalog, src_holder, ForwardError, FORWARDED};
pub use quota::refund;
pub use receipts::{early_across, NODE_SIGNATURE};

use std::cell::RefCell;
use std::rc::Rc;

use super::Shard;
use crate::config::{ClusterSettings, EngineConfig};
use crate::core::accept::Plan;
use crate::mesh::owner;
use crate::model::MessageId;
use crate::redis::{Cluster, RedisError, Reply};
use crate::rt;

/// Replaces the key's value `ARGV[1]` by `ARGV[2]` for `ARGV[3]` seconds;
/// 1 when it did, 0 when the key held something else.
const TAKE_OVER: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end return 0";

/// Deletes the key while it still holds `ARGV[1]`.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) end return 0";

/// One shard's connection to the Redis Cluster, opened on first use (a
/// node starts, and serves what it accepted, while Redis is down).
pub struct NodeLink {
    settings: ClusterSettings,
    client: RefCell<Option<Rc<Cluster>>>,
}

/// What the cluster said of one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// The key was free and is now the message's.
    Claimed,
    /// The key is held by this message (on this or another node).
    HeldBy(MessageId),
}

impl NodeLink {
    /// The link of `[cluster]` (no connection yet); `None` for one node.
    pub fn of(config: &EngineConfig) -> Option<Rc<NodeLink>> {
        let settings = config.cluster.clone()?;
        Some(Rc::new(NodeLink {
            settings,
            client: RefCell::default(),
        }))
    }

    /// This node's number.
    pub fn node_id(&self) -> u8 {
        self.settings.node_id
    }

    /// The hex HMAC-SHA256 of `body` under the key the nodes share: what
    /// an internal request between nodes carries as [`NODE_SIGNATURE`].
    pub fn sign(&self, body: &[u8]) -> String {
        let mac = self.settings.node_key.mac(&[body]);
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }

    async fn client(&self) -> Result<Rc<Cluster>, RedisError> {
        if let Some(c) = self.client.borrow().as_ref() {
            return Ok(c.clone());
        }
        let timeout = self.settings.timeout;
        let connect = Cluster::connect(&self.settings.redis, timeout);
        let cluster = rt::timeout(timeout, connect)
            .await
            .unwrap_or_else(|| Err(RedisError::Unavailable("no seed answered in time".into())))?;
        let cluster = Rc::new(cluster);
        *self.client.borrow_mut() = Some(cluster.clone());
        Ok(cluster)
    }

    /// Claims `(src_msg_id, id)` of `group` for `window_secs`, all at once;
    /// one answer per claim, in order, or the first failure.
    pub async fn claim(
        &self,
        group: &str,
        claims: &[(&str, MessageId)],
        window_secs: u64,
    ) -> Result<Vec<Claimed>, RedisError> {
        let calls = claims
            .iter()
            .map(|(src, id)| (key(group, src), claim_command(group, src, *id, window_secs)))
            .collect();
        let replies = self.call_all(calls).await?;
        Ok(replies
            .into_iter()
            .zip(claims)
            .map(|(reply, (_, id))| match holder(&reply) {
                Some(held) if held != *id => Claimed::HeldBy(held),
                _ => Claimed::Claimed,
            })
            .collect())
    }

    /// Makes `id` the holder of `src_msg_id`'s key in place of `ghost`
    /// (an id of this node that was never accepted); false when the key
    /// holds something else by now.
    pub async fn take_over(
        &self,
        group: &str,
        src: &str,
        (ghost, id): (MessageId, MessageId),
        window_secs: u64,
    ) -> Result<bool, RedisError> {
        let args = [
            "EVAL",
            TAKE_OVER,
            "1",
            &String::from_utf8_lossy(&key(group, src)),
            &ghost.to_string(),
            &id.to_string(),
            &window_secs.max(1).to_string(),
        ]
        .map(|s| s.as_bytes().to_vec());
        let reply = self
            .call_all(vec![(key(group, src), args.to_vec())])
            .await?;
        Ok(reply.first().and_then(Reply::as_int) == Some(1))
    }

    /// The holders of `srcs`' keys (a dry run's look-up).
    pub async fn peek(
        &self,
        group: &str,
        srcs: &[&str],
    ) -> Result<Vec<Option<MessageId>>, RedisError> {
        let calls = srcs
            .iter()
            .map(|src| (key(group, src), vec![b"GET".to_vec(), key(group, src)]))
            .collect();
        let replies = self.call_all(calls).await?;
        Ok(replies.iter().map(holder).collect())
    }

    /// Gives back the keys `claims` still hold (their messages were not
    /// accepted after all); a failure is logged: the key then stays taken
    /// until its window ends.
    pub async fn release(&self, group: &str, claims: &[(&str, MessageId)]) {
        let calls = claims
            .iter()
            .map(|(src, id)| {
                let k = key(group, src);
                let args = [
                    "EVAL".into(),
                    RELEASE.into(),
                    "1".into(),
                    k.clone(),
                    id.to_string().into_bytes(),
                ];
                (k, args.to_vec())
            })
            .collect();
        if let Err(e) = self.call_all(calls).await {
            tracing::warn!("dedup keys not released in redis (taken until the window ends): {e}");
        }
    }

    /// Runs every `(key, command)` concurrently (one task each; the node
    /// connections pipeline them); the replies in order, or the first error.
    pub(super) async fn call_all(
        &self,
        calls: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    ) -> Result<Vec<Reply>, RedisError> {
        let client = self.client().await?;
        let tasks: Vec<_> = calls
            .into_iter()
            .map(|(k, args)| {
                let client = client.clone();
                rt::spawn_task(async move {
                    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                    client.call(&k, &args).await
                })
            })
            .collect();
        let mut replies = Vec::with_capacity(tasks.len());
        let mut failed = None;
        for t in tasks {
            match t.await {
                Ok(r) => replies.push(r),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(replies), Err)
    }
}

/// The keys one request holds in the Redis Cluster: `(src_msg_id, id)`.
#[derive(Debug, Default)]
pub struct NodeClaims(Vec<(String, MessageId)>);

impl NodeClaims {
    /// Gives back the keys of the messages `which` picks (not accepted
    /// after all).
    pub async fn give_back(&self, shard: &Shard, group: &str, which: impl Fn(MessageId) -> bool) {
        let Some(link) = &shard.cluster else { return };
        let mine: Vec<(&str, MessageId)> = self
            .0
            .iter()
            .filter(|(_, id)| which(*id))
            .map(|(src, id)| (src.as_str(), *id))
            .collect();
        if !mine.is_empty() {
            link.release(group, &mine).await;
        }
    }
}

/// The dedup step across nodes, after the local one: every key this node
/// claimed for the first time (`originals[i]` still `None`) is claimed in
/// the cluster too; one held by another message makes this one its
/// duplicate (`originals[i]`). A dry run only looks. On failure the local
/// claims of those keys are given back and nothing of the request holds.
pub async fn dedup_across(
    shard: &Rc<Shard>,
    group: &str,
    plan: &Plan<'_>,
    originals: &mut [Option<MessageId>],
    dry_run: bool,
) -> Result<NodeClaims, RedisError> {
    let Some(link) = &shard.cluster else {
        return Ok(NodeClaims::default());
    };
    let keys = plan.keys();
    let fresh: Vec<usize> = (0..keys.len())
        .filter(|&i| originals[i].is_none())
        .collect();
    let window = shard.shared.config.dedup_window.as_secs();
    if dry_run {
        let srcs: Vec<&str> = fresh.iter().map(|&i| plan.src_msg_id(i)).collect();
        for (i, held) in fresh.into_iter().zip(link.peek(group, &srcs).await?) {
            originals[i] = held;
        }
        return Ok(NodeClaims::default());
    }
    let claims: Vec<(&str, MessageId)> = fresh
        .iter()
        .map(|&i| (plan.src_msg_id(i), keys[i].1))
        .collect();
    let answers = match link.claim(group, &claims, window).await {
        Ok(answers) => answers,
        Err(e) => {
            link.release(group, &claims).await;
            let local = fresh.iter().map(|&i| keys[i]).collect();
            super::accept::release(shard, local).await;
            return Err(e);
        }
    };
    let mut held = NodeClaims::default();
    for (&i, answer) in fresh.iter().zip(answers) {
        let (src, (key, id)) = (plan.src_msg_id(i), keys[i]);
        let original = match answer {
            Claimed::Claimed => None,
            Claimed::HeldBy(h) if h.node() != link.node_id() => Some(h),
            Claimed::HeldBy(h) => confirm_own(shard, link, group, src, (h, id)).await?,
        };
        match original {
            Some(original) => {
                let to = owner::dedup(key, shard.shards());
                shard.resolve(to, key, id, original).await;
                originals[i] = Some(original);
            }
            None => held.0.push((src.to_string(), id)),
        }
    }
    Ok(held)
}

/// The key of `src` is held by `holder`, an id of this node: a re-send
/// of it if it is that customer's message with that `src_msg_id` within
/// the window; otherwise a claim whose message was never accepted (the
/// node died before its append held), and `id` takes the key over.
async fn confirm_own(
    shard: &Rc<Shard>,
    link: &NodeLink,
    group: &str,
    src: &str,
    (holder, id): (MessageId, MessageId),
) -> Result<Option<MessageId>, RedisError> {
    let window = shard.shared.config.dedup_window;
    let since = crate::unix_ms().saturating_sub(window.as_millis() as i64);
    if shard
        .same_key(group, src, vec![holder], since)
        .await
        .is_some()
    {
        return Ok(Some(holder));
    }
    if link
        .take_over(group, src, (holder, id), window.as_secs())
        .await?
    {
        return Ok(None);
    }
    // Taken over by another claim meanwhile: whoever holds it now.
    match link
        .claim(group, &[(src, id)], window.as_secs())
        .await?
        .first()
    {
        Some(Claimed::HeldBy(h)) => Ok(Some(*h)),
        _ => Ok(None),
    }
}

/// The Redis key of `src_msg_id` of `group`.
fn key(group: &str, src: &str) -> Vec<u8> {
    [b"mcmp:dedup:{", group.as_bytes(), b"}:", src.as_bytes()].concat()
}

/// `SET <key> <id> NX GET EX <window>`: claims a free key, names the
/// holder of a taken one.
fn claim_command(group: &str, src: &str, id: MessageId, window_secs: u64) -> Vec<Vec<u8>> {
    let window = window_secs.max(1).to_string();
    let id = id.to_string();
    let args = ["SET", "", &id, "NX", "GET", "EX", &window];
    let mut args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    args[1] = key(group, src);
    args
}

/// The message id a `GET` (or `SET … GET`) reply names.
pub(super) fn holder(reply: &Reply) -> Option<MessageId> {
    match reply {
        Reply::Bulk(Some(v)) => std::str::from_utf8(v).ok().and_then(MessageId::parse),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_tagged_by_customer_and_replies_name_the_holder() {
        assert_eq!(key("G1", "a:b"), b"mcmp:dedup:{G1}:a:b".to_vec());
        assert_eq!(
            crate::redis::slot::slot(&key("G1", "x")),
            crate::redis::slot::slot(&key("G1", "another"))
        );
        let id = MessageId::on_node(2, 1, 9);
        let bulk = Reply::Bulk(Some(id.to_string().into_bytes()));
        assert_eq!(holder(&bulk), Some(id));
        assert_eq!(holder(&Reply::Bulk(None)), None);
        assert_eq!(holder(&Reply::Bulk(Some(b"junk".to_vec()))), None);
    }

    #[test]
    fn a_claim_sets_the_key_to_the_id_if_free_and_returns_the_holder() {
        let id = MessageId::on_node(1, 0, 5);
        let words: Vec<String> = claim_command("G1", "s-1", id, 86_400)
            .into_iter()
            .map(|a| String::from_utf8(a).expect("utf-8"))
            .collect();
        let want = [
            "SET",
            "mcmp:dedup:{G1}:s-1",
            "0100000000000005",
            "NX",
            "GET",
            "EX",
            "86400",
        ];
        assert_eq!(words, want);
        let zero = claim_command("G1", "s", id, 0);
        assert_eq!(
            zero.last().map(Vec::as_slice),
            Some(&b"1"[..]),
            "EX 0 is an error"
        );
    }
}
