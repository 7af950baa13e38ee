//! Receipts across nodes (SPEC §5.8): a carrier sends a receipt on the
//! bind its submit came on, or, when that bind is gone, on another bind of
//! the same `system_id`, often another node's. Carrier ids are noted in
//! Redis; a receipt a node cannot match finds its node there.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::super::Shard;
use super::holder;
use super::nodes::post_to_node;
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::receipts::ReceiptKey;
use crate::model::MessageId;
use crate::rt;

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

/// The Redis key of a carrier id's message.
fn receipt_key(key: ReceiptKey) -> Vec<u8> {
    format!("mcmp:rcpt:{:032x}", key.0).into_bytes()
}
