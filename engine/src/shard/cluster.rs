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

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;

use super::Shard;
use crate::catalog::{node_key, table};
use crate::config::{ClusterSettings, EngineConfig};
use crate::core::accept::Plan;
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::receipts::ReceiptKey;
use crate::http_client::{HttpError, HttpResponse};
use crate::mesh::owner;
use crate::model::{Channel, MessageId};
use crate::redis::catalog::PULL_EVERY;
use crate::redis::{Cluster, RedisError, Reply};
use crate::rt;

/// Replaces the key's value `ARGV[1]` by `ARGV[2]` for `ARGV[3]` seconds;
/// 1 when it did, 0 when the key held something else.
const TAKE_OVER: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end return 0";

/// A TPS window shared by the nodes: the parts granted per 10 ms slot of
/// Redis's own clock over the last second, in a hash (`KEYS[1]`); grants
/// up to `ARGV[2]` (wanted) of what `ARGV[1]` (the limit) leaves, and
/// counts them only when `ARGV[3]` is 1 (a dry run only looks).
const LEASE_TPS: &str = "local t = redis.call('TIME')      local now = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / 10)      local h = redis.call('HGETALL', KEYS[1]) local used = 0      for i = 1, #h, 2 do        if tonumber(h[i]) <= now - 100 then redis.call('HDEL', KEYS[1], h[i])        else used = used + tonumber(h[i + 1]) end end      local grant = math.max(0, math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used))      if grant > 0 and ARGV[3] == '1' then        redis.call('HINCRBY', KEYS[1], now, grant) redis.call('PEXPIRE', KEYS[1], 2000) end      return grant";

/// Prepaid credit shared by the nodes: `KEYS[1]` holds a customer's net
/// charges; each price `ARGV[3..]` is debited while `ARGV[1]` (the credit)
/// covers it, and the new net kept when `ARGV[2]` is 1. One verdict (1 or
/// 0) per price. Never overdrawn: the script runs alone.
const CHARGE: &str = "local net = tonumber(redis.call('GET', KEYS[1]) or '0')      local credit = tonumber(ARGV[1]) local out = {}      for i = 3, #ARGV do local p = tonumber(ARGV[i])        if credit - net >= p then net = net + p out[#out + 1] = 1 else out[#out + 1] = 0 end end      if ARGV[2] == '1' then redis.call('SET', KEYS[1], net) end      return out";

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

    /// Up to `want` parts of `group`'s `tps` limit on `channel` for the
    /// current second, across nodes (taken unless `peek`).
    pub async fn lease_tps(
        &self,
        (group, channel): (&str, Channel),
        tps: u32,
        want: u32,
        peek: bool,
    ) -> Result<u32, RedisError> {
        let key = [
            b"mcmp:tps:{",
            group.as_bytes(),
            b"}:",
            channel.as_str().as_bytes(),
        ]
        .concat();
        let take = if peek { "0" } else { "1" };
        let args = [
            b"EVAL".to_vec(),
            LEASE_TPS.as_bytes().to_vec(),
            b"1".to_vec(),
            key.clone(),
        ]
        .into_iter()
        .chain([tps.to_string(), want.to_string(), take.to_string()].map(String::into_bytes))
        .collect();
        let reply = self.call_all(vec![(key, args)]).await?;
        let granted = reply.first().and_then(Reply::as_int).unwrap_or(0);
        Ok(u32::try_from(granted).unwrap_or(0))
    }

    /// Debits `prices` of `group` in order while `credit` covers them
    /// (taken unless `peek`); one verdict each.
    pub async fn charge(
        &self,
        group: &str,
        credit: i64,
        prices: &[i64],
        peek: bool,
    ) -> Result<Vec<bool>, RedisError> {
        let key = credit_key(group);
        let take = if peek { "0" } else { "1" };
        let head = [
            b"EVAL".to_vec(),
            CHARGE.as_bytes().to_vec(),
            b"1".to_vec(),
            key.clone(),
        ];
        let tail = [credit.to_string(), take.to_string()].into_iter();
        let tail = tail.chain(prices.iter().map(i64::to_string));
        let args = head
            .into_iter()
            .chain(tail.map(String::into_bytes))
            .collect();
        let reply = self.call_all(vec![(key, args)]).await?;
        match reply.into_iter().next() {
            Some(Reply::Array(Some(items))) if items.len() == prices.len() => {
                Ok(items.iter().map(|r| r.as_int() == Some(1)).collect())
            }
            other => Err(RedisError::Server(format!("a charge answered {other:?}"))),
        }
    }

    /// Gives `amount` back to `group`'s credit (a message that never
    /// reached a carrier).
    pub async fn refund(&self, group: &str, amount: i64) -> Result<(), RedisError> {
        let key = credit_key(group);
        let args = vec![
            b"DECRBY".to_vec(),
            key.clone(),
            amount.to_string().into_bytes(),
        ];
        self.call_all(vec![(key, args)]).await.map(|_| ())
    }

    /// `group`'s net charges across nodes.
    pub async fn net_charges(&self, group: &str) -> Result<i64, RedisError> {
        let key = credit_key(group);
        let reply = self
            .call_all(vec![(key.clone(), vec![b"GET".to_vec(), key])])
            .await?;
        let net = reply
            .first()
            .and_then(Reply::as_str)
            .and_then(|s| s.parse().ok());
        Ok(net.unwrap_or(0))
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
    async fn call_all(
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

/// Sends `method path` (with `headers`, no body) to `node`, the owner of
/// the message it names, marked [`FORWARDED`]; the owner's answer.
pub async fn forward(
    shard: &Rc<Shard>,
    node: u8,
    (method, path): (Method, &str),
    mut headers: Vec<(String, String)>,
) -> Result<HttpResponse, ForwardError> {
    let base = shard.snapshot().nodes.get(&node).cloned();
    let base = base.ok_or(ForwardError::UnknownNode(node))?;
    headers.push((FORWARDED.into(), "1".into()));
    let url = format!("{base}{path}");
    let answer = shard
        .http
        .request(method, &url, &headers, Bytes::new(), FORWARD_TIMEOUT)
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

/// Refunds `amount` to `group`'s shared credit, trying for a while: a
/// refund lost to a Redis outage would leave the customer short.
pub async fn refund(link: Rc<NodeLink>, group: String, amount: i64) {
    for attempt in 1..=10 {
        match link.refund(&group, amount).await {
            Ok(()) => return,
            Err(e) if attempt == 10 => {
                tracing::error!(group, amount, "a prepaid refund was not returned: {e}");
            }
            Err(_) => rt::sleep(Duration::from_secs(attempt)).await,
        }
    }
}

/// How long a receipt this node has no index for waits before it is
/// looked for on the other nodes (its own submit answer may still come).
const EARLY_WAIT: Duration = Duration::from_secs(1);

/// The path of the internal API that takes another node's receipts.
pub const RECEIPTS_PATH: &str = "/internal/v1/receipts";

/// The header that carries the HMAC of an internal request's body.
pub const NODE_SIGNATURE: &str = "x-mcmp-node-signature";

/// With `[cluster]`: notes in Redis which message a carrier id names
/// (for [`RECEIPT_INDEX_SECS`]), so that a node whose bind gets the
/// receipt finds the owner.
pub fn index_across(shard: &Rc<Shard>, key: ReceiptKey, id: MessageId) {
    let Some(link) = shard.cluster.clone() else {
        return;
    };
    rt::spawn(async move {
        let k = receipt_key(key);
        let args = [b"SET".to_vec(), k.clone(), id.to_string().into_bytes()];
        let ttl = [b"EX".to_vec(), RECEIPT_INDEX_SECS.to_string().into_bytes()];
        let args = args.into_iter().chain(ttl).collect();
        if let Err(e) = link.call_all(vec![(k, args)]).await {
            tracing::debug!("a carrier id is not indexed across nodes: {e}");
        }
    });
}

/// How long a carrier id stays indexed in Redis (the longest validity
/// plus a day, as the local receipt index).
const RECEIPT_INDEX_SECS: u64 = 4 * 86_400;

/// With `[cluster]`: a receipt this node cannot match is looked up in
/// Redis and sent to the node that submitted its message (signed with the
/// nodes' key), or applied here when that is this node; first after
/// [`EARLY_WAIT`] (its own submit answer may still come), then again for
/// about half a minute while the carrier id is not indexed yet (its node,
/// killed before it wrote the index, writes it again at start) or its
/// node does not answer (restarting).
pub fn early_across(shard: &Rc<Shard>, key: ReceiptKey, (delivered, code): (bool, u16)) {
    let Some(link) = shard.cluster.clone() else {
        return;
    };
    let shard = shard.clone();
    rt::spawn(async move {
        let body = serde_json::json!({"key": format!("{:032x}", key.0), "delivered": delivered, "code": code});
        let body = Bytes::from(body.to_string());
        let mac = link.settings.node_key.mac(&[&body]);
        let signature: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        let headers = vec![(NODE_SIGNATURE.to_string(), signature)];
        for attempt in 1..=8u64 {
            rt::sleep(EARLY_WAIT * attempt.min(5) as u32).await;
            let k = receipt_key(key);
            let got = link
                .call_all(vec![(k.clone(), vec![b"GET".to_vec(), k])])
                .await;
            let Some(id) = got.ok().and_then(|r| r.first().and_then(holder)) else {
                continue;
            };
            if id.node() == link.node_id() {
                // Its carrier id was learned (and indexed in Redis) but not
                // kept here: the node died before its state was durable.
                // The index says whose it is (a message already final
                // ignores it).
                let fin = OwnerEvent::Final {
                    id,
                    delivered,
                    code,
                };
                shard.to_owner(id, fin);
                return;
            }
            let sent = post_to_node(&shard, id.node(), RECEIPTS_PATH, &headers, body.clone()).await;
            match sent {
                Ok(r) if r.status < 300 => return,
                other => tracing::debug!(
                    node = id.node(),
                    "a receipt for another node not taken yet: {other:?}"
                ),
            }
        }
        tracing::warn!("a receipt whose carrier id no node knows was dropped");
    });
}

async fn post_to_node(
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

/// The Redis key of a carrier id's message.
fn receipt_key(key: ReceiptKey) -> Vec<u8> {
    format!("mcmp:rcpt:{:032x}", key.0).into_bytes()
}

/// The Redis key of `group`'s net prepaid charges.
fn credit_key(group: &str) -> Vec<u8> {
    [b"mcmp:credit:{", group.as_bytes(), b"}"].concat()
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
fn holder(reply: &Reply) -> Option<MessageId> {
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
