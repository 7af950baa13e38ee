//! Smooth weighted round-robin (the nginx algorithm): exact over small
//! counts. With weights 1:1 ten picks give 5 and 5, alternating; with 2:1 the
//! picks go A B A A B A ...; a weight of 0 is never picked.
//!
//! Each pick adds every candidate's weight to its current value, takes the
//! largest current value and subtracts the total from it. Over any window of
//! `total` picks every candidate is chosen exactly `weight` times.

/// The state of one weighted choice. Shard-local (owned by the shard that
/// owns the route key, so the split is exact across all shards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swrr {
    weights: Vec<i64>,
    current: Vec<i64>,
}

impl Swrr {
    /// A fresh state over `weights`.
    pub fn new(weights: &[u32]) -> Swrr {
        Swrr {
            weights: weights.iter().map(|&w| i64::from(w)).collect(),
            current: vec![0; weights.len()],
        }
    }

    /// Whether this state was built over exactly these weights.
    pub fn has_weights(&self, weights: &[u32]) -> bool {
        self.weights.len() == weights.len()
            && self
                .weights
                .iter()
                .zip(weights)
                .all(|(a, &b)| *a == i64::from(b))
    }

    /// Picks the next index among the candidates for which `eligible` holds,
    /// or `None` when no eligible candidate has a weight above 0.
    pub fn pick(&mut self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let mut total = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.weights.len() {
            if self.weights[i] <= 0 || !eligible(i) {
                continue;
            }
            self.current[i] += self.weights[i];
            total += self.weights[i];
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(weights: &[u32], picks: usize) -> Vec<usize> {
        let mut s = Swrr::new(weights);
        let mut c = vec![0; weights.len()];
        for _ in 0..picks {
            c[s.pick(|_| true).expect("a candidate")] += 1;
        }
        c
    }

    #[test]
    fn exact_over_small_counts() {
        assert_eq!(counts(&[1, 1], 10), vec![5, 5]);
        assert_eq!(counts(&[1, 1], 10_000), vec![5_000, 5_000]);
        assert_eq!(counts(&[2, 1], 3), vec![2, 1]);
        assert_eq!(counts(&[3, 2, 5], 10), vec![3, 2, 5]);
        assert_eq!(counts(&[1, 0], 7), vec![7, 0]);
    }

    #[test]
    fn smooth_sequence_and_ineligible_candidates() {
        let mut s = Swrr::new(&[1, 1]);
        let seq: Vec<_> = (0..4).filter_map(|_| s.pick(|_| true)).collect();
        assert_eq!(seq, vec![0, 1, 0, 1]);
        let mut s = Swrr::new(&[1, 1]);
        assert_eq!(s.pick(|i| i == 1), Some(1));
        assert_eq!(s.pick(|i| i == 1), Some(1));
        assert_eq!(Swrr::new(&[0, 0]).pick(|_| true), None);
        assert_eq!(Swrr::new(&[1]).pick(|_| false), None);
    }
}
