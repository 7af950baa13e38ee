//! Receipts across nodes (SPEC §5.8). Each node binds every sender as
//! configured; a carrier sends a receipt on the bind its submit came on,
//! or, when that bind is gone (its node died), on another bind of the same
//! `system_id`, often another node's. That node cannot match it: after
//! [`EARLY_WAIT`], if it still waits here unmatched, it is offered to the
//! other nodes (signed with the key the nodes share); the one whose carrier
//! id it is takes it, the others keep nothing. Offers go on for about half
//! a minute, while the owner restarts (it indexes its carrier ids again
//! from its WAL at start). No write per message: receipts cross nodes only
//! after a bind went down.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::super::Shard;
use super::nodes::post_to_node;
use crate::core::receipts::ReceiptKey;
use crate::rt;

/// How long a receipt this node has no index for waits before it is
/// offered to the other nodes (its own submit answer may still come).
const EARLY_WAIT: Duration = Duration::from_secs(1);

/// Rounds of offers (after 1, 2, 3, 4, then every 5 s: ~30 s in all).
const OFFER_ROUNDS: u32 = 8;

/// The path of the internal API that takes another node's receipts.
pub const RECEIPTS_PATH: &str = "/internal/v1/receipts";

/// The header that carries the HMAC of an internal request's body.
pub const NODE_SIGNATURE: &str = "x-mcmp-node-signature";

/// With `[cluster]`: an early receipt (no index for its key here) is
/// offered to the other nodes while it waits here unmatched.
pub fn early_across(shard: &Rc<Shard>, key: ReceiptKey, (delivered, code): (bool, u16)) {
    let Some(link) = shard.cluster.clone() else {
        return;
    };
    let shard = shard.clone();
    rt::spawn(async move {
        let body = serde_json::json!({
            "key": format!("{:032x}", key.0), "delivered": delivered, "code": code,
        });
        let body = Bytes::from(body.to_string());
        let headers = vec![(NODE_SIGNATURE.to_string(), link.sign(&body))];
        for round in 1..=OFFER_ROUNDS {
            rt::sleep(EARLY_WAIT * round.min(5)).await;
            if !shard.core.borrow().receipts.is_early(key) {
                return; // matched here after all, or forgotten
            }
            let others: Vec<u8> = shard
                .snapshot()
                .nodes
                .keys()
                .copied()
                .filter(|n| *n != link.node_id())
                .collect();
            for node in others {
                let taken = post_to_node(&shard, node, RECEIPTS_PATH, &headers, body.clone());
                if taken.await.is_ok_and(|r| r.status == 204) {
                    shard.core.borrow_mut().receipts.forget_early(key);
                    return;
                }
            }
        }
        tracing::debug!("a receipt no node knows the carrier id of stays early here");
    });
}
