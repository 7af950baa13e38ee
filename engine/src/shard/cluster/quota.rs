//! TPS limits and prepaid credit across nodes (SPEC §5.8): one sliding
//! window and one net-charges counter per customer in Redis, each changed
//! by a script that runs alone, so the nodes together never go over.

use std::rc::Rc;
use std::time::Duration;

use super::NodeLink;
use crate::model::Channel;
use crate::redis::{RedisError, Reply};
use crate::rt;

/// A TPS window shared by the nodes: the parts granted per 10 ms slot of
/// Redis's own clock over the last second, in a hash (`KEYS[1]`); grants
/// up to `ARGV[2]` (wanted) of what `ARGV[1]` (the limit) leaves, and
/// counts them only when `ARGV[3]` is 1 (a dry run only looks).
const LEASE_TPS: &str = "local t = redis.call('TIME') \
     local now = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / 10) \
     local h = redis.call('HGETALL', KEYS[1]) local used = 0 \
     for i = 1, #h, 2 do \
     if tonumber(h[i]) <= now - 100 then redis.call('HDEL', KEYS[1], h[i]) \
     else used = used + tonumber(h[i + 1]) end end \
     local grant = math.max(0, math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used)) \
     if grant > 0 and ARGV[3] == '1' then \
     redis.call('HINCRBY', KEYS[1], now, grant) redis.call('PEXPIRE', KEYS[1], 2000) end \
     return grant";

/// Prepaid credit shared by the nodes: `KEYS[1]` holds a customer's net
/// charges; each price `ARGV[3..]` is debited while `ARGV[1]` (the credit)
/// covers it, and the new net kept when `ARGV[2]` is 1. One verdict (1 or
/// 0) per price. Never overdrawn: the script runs alone.
const CHARGE: &str = "local net = tonumber(redis.call('GET', KEYS[1]) or '0') \
     local credit = tonumber(ARGV[1]) local out = {} \
     for i = 3, #ARGV do local p = tonumber(ARGV[i]) \
     if credit - net >= p then net = net + p out[#out + 1] = 1 else out[#out + 1] = 0 end end \
     if ARGV[2] == '1' then redis.call('SET', KEYS[1], net) end \
     return out";

impl NodeLink {
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
        Ok(crate::redis::resp::counter(reply.first()))
    }
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

/// The Redis key of `group`'s net prepaid charges.
fn credit_key(group: &str) -> Vec<u8> {
    [b"mcmp:credit:{", group.as_bytes(), b"}"].concat()
}
