//! Route rules (SPEC §1 "Routing"): `route_id = <group_code>_<channel>`,
//! and per carrier key (`SKT`, `KT`, `LGT`, `INTL`, `*`) a list of sender
//! groups with ratios.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Channel;

/// A sender group and its share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRatio {
    /// The sender group.
    pub sender_group: String,
    /// Its weight; 0 receives nothing.
    pub ratio: u32,
}

/// A route rule of one customer (or `*`) and channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRule {
    /// `<group_code>_<channel>`.
    pub route_id: String,
    /// The customer (`*` = default for customers without their own rule).
    pub group_code: String,
    /// The channel.
    pub channel: Channel,
    /// Carrier key → groups in order of preference.
    pub carriers: BTreeMap<String, Vec<GroupRatio>>,
    /// Free text.
    #[serde(default)]
    pub remark: Option<String>,
}

/// The carrier keys a rule may use.
pub const CARRIER_KEYS: [&str; 5] = ["SKT", "KT", "LGT", "INTL", "*"];

impl RouteRule {
    /// The route id of a customer and channel.
    pub fn id(group_code: &str, channel: Channel) -> String {
        format!("{group_code}_{channel}")
    }

    /// The key used for `carrier`: its own, else `*`.
    pub fn key_for(&self, carrier: &str) -> Option<&str> {
        if self.carriers.contains_key(carrier) {
            Some(
                self.carriers
                    .get_key_value(carrier)
                    .map(|(k, _)| k.as_str())?,
            )
        } else if self.carriers.contains_key("*") {
            Some("*")
        } else {
            None
        }
    }
}
