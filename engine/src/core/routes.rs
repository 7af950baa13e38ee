//! Route keys this shard owns: the smooth weighted round-robin state of
//! each (route, carrier key), so the split between sender groups is exact
//! however many shards route messages of that key.

use std::collections::HashMap;

use crate::routing::rule::RouteRule;
use crate::routing::swrr::Swrr;

/// The weighted choices of the route keys one shard owns.
#[derive(Default)]
pub struct RouteOwner {
    states: HashMap<(String, String), Swrr>,
}

impl RouteOwner {
    /// `count` picks among the sender groups of `rule`'s `carrier_key`, each
    /// the chosen group's name, or `None` when no group with a weight is
    /// available. `available(group)` says whether a group can carry the
    /// message now. No rule: nothing is available.
    pub fn pick(
        &mut self,
        rule: Option<&RouteRule>,
        carrier_key: &str,
        count: usize,
        available: impl Fn(&str) -> bool,
    ) -> Vec<Option<String>> {
        let Some(rule) = rule else {
            return vec![None; count];
        };
        let groups = rule
            .carriers
            .get(carrier_key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let weights: Vec<u32> = groups.iter().map(|g| g.ratio).collect();
        let up: Vec<bool> = groups.iter().map(|g| available(&g.sender_group)).collect();
        let key = (rule.route_id.clone(), carrier_key.to_string());
        let state = self
            .states
            .entry(key)
            .or_insert_with(|| Swrr::new(&weights));
        if !state.has_weights(&weights) {
            *state = Swrr::new(&weights);
        }
        (0..count)
            .map(|_| {
                state
                    .pick(|i| up[i])
                    .map(|i| groups[i].sender_group.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::Channel;
    use crate::routing::rule::GroupRatio;

    fn rule(groups: &[(&str, u32)]) -> RouteRule {
        let ratios = groups
            .iter()
            .map(|(g, r)| GroupRatio {
                sender_group: g.to_string(),
                ratio: *r,
            })
            .collect();
        RouteRule {
            route_id: "A1_SMS".into(),
            group_code: "A1".into(),
            channel: Channel::Sms,
            carriers: BTreeMap::from([("KT".to_string(), ratios)]),
            remark: None,
        }
    }

    fn count(picks: &[Option<String>], group: &str) -> usize {
        picks.iter().filter(|p| p.as_deref() == Some(group)).count()
    }

    #[test]
    fn the_split_is_exact_and_carries_over_between_requests() {
        let mut owner = RouteOwner::default();
        let r = rule(&[("A", 1), ("B", 1)]);
        let mut picks = owner.pick(Some(&r), "KT", 3, |_| true);
        picks.extend(owner.pick(Some(&r), "KT", 7, |_| true));
        assert_eq!((count(&picks, "A"), count(&picks, "B")), (5, 5));
        let r = rule(&[("A", 2), ("B", 1)]);
        let picks = owner.pick(Some(&r), "KT", 300, |_| true);
        assert_eq!((count(&picks, "A"), count(&picks, "B")), (200, 100));
    }

    #[test]
    fn an_unavailable_group_is_skipped_and_rejoins_in_turn() {
        let mut owner = RouteOwner::default();
        let r = rule(&[("A", 1), ("B", 1)]);
        let picks = owner.pick(Some(&r), "KT", 4, |g| g != "A");
        assert_eq!(count(&picks, "B"), 4, "A is down: all to B");
        let picks = owner.pick(Some(&r), "KT", 10, |_| true);
        assert_eq!((count(&picks, "A"), count(&picks, "B")), (5, 5));
        let picks = owner.pick(Some(&r), "KT", 2, |_| false);
        assert_eq!(picks, vec![None, None], "nothing available");
    }

    #[test]
    fn no_rule_no_key_or_a_zero_weight_picks_nothing() {
        let mut owner = RouteOwner::default();
        assert_eq!(owner.pick(None, "KT", 2, |_| true), vec![None, None]);
        let r = rule(&[("A", 1)]);
        assert_eq!(owner.pick(Some(&r), "SKT", 1, |_| true), vec![None]);
        let r = rule(&[("A", 0)]);
        assert_eq!(owner.pick(Some(&r), "KT", 1, |_| true), vec![None]);
    }
}
