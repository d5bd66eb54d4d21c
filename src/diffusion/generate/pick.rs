//! Which candidates a step commits: the per-step quotas of the published schedules, Fast-dLLM's
//! confidence threshold and factor rules, and Dream's draw over confidences.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::EosPolicy;
use crate::diffusion::sampler::Candidate;

/// LLaDA's per-step counts: `n / steps` each, plus one for the first `n % steps` steps.
pub fn llada_transfer_counts(masked: usize, steps: usize) -> Vec<usize> {
    (0..steps)
        .map(|i| masked / steps + usize::from(i < masked % steps))
        .collect()
}

/// dllm's per-step counts (`get_num_transfer_tokens` in ZHZisZZ/dllm's `core/samplers/utils.py`
/// with its linear α schedule): at step j of `steps`, with n masks left, round-half-even
/// n·(1 − (1 − α(s))/(1 − α(t))) for t = (steps − j)/steps and s = t − 1/steps, where the ratio
/// is taken in f32 as the reference computes it; steps that would commit nothing are dropped.
pub fn dllm_transfer_counts(masked: usize, steps: usize) -> Vec<usize> {
    let alpha = |x: f32| 1.0f32 - x;
    let mut left = masked;
    let mut out = Vec::new();
    for j in 0..steps {
        if left == 0 {
            break;
        }
        let t = (steps - j) as f64 / steps as f64;
        let s = (steps - j - 1) as f64 / steps as f64;
        let ratio = (1.0f32 - alpha(s as f32)) / (1.0f32 - alpha(t as f32));
        let share = 1.0 - f64::from(ratio);
        let k = ((left as f64 * share).round_ties_even() as usize).min(left);
        left -= k;
        if k > 0 {
            out.push(k);
        }
    }
    out
}

/// Dream's timesteps `linspace(1, eps, steps + 1)`.
pub fn dream_timesteps(steps: usize, eps: f64) -> Vec<f64> {
    (0..=steps)
        .map(|i| 1.0 + (eps - 1.0) * i as f64 / steps as f64)
        .collect()
}

pub fn apply_eos(row: &mut [f32], eos: &[u32], policy: EosPolicy) {
    for &id in eos {
        if let Some(v) = row.get_mut(id as usize) {
            match policy {
                EosPolicy::Allow => {}
                EosPolicy::Suppress => *v = f32::NEG_INFINITY,
                EosPolicy::Penalty(p) => *v -= p,
            }
        }
    }
}

/// Indices of the `k` most confident candidates; ties go to the earlier position.
pub fn top_k(c: &[Candidate], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| c[b].confidence.total_cmp(&c[a].confidence).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// Every candidate at or above `tau`, and always the most confident one.
pub fn by_threshold(c: &[Candidate], tau: f64) -> Vec<usize> {
    let order = top_k(c, c.len());
    order
        .iter()
        .enumerate()
        .filter(|(rank, &j)| *rank == 0 || c[j].confidence >= tau)
        .map(|(_, &j)| j)
        .collect()
}

/// Fast-dLLM's factor rule: with the confidences sorted, the n-th (from 1) is accepted while
/// `c_n >= 1 - factor / (n + 1)`, the first always. As `get_transfer_index_dynamic` does it
/// (Fast-dLLM `v1/llada/generate.py`), a first failure at the last rank still commits all.
pub fn by_factor(c: &[Candidate], factor: f64) -> Vec<usize> {
    let mut order = top_k(c, c.len());
    let n = order.len();
    if n == 0 {
        return order;
    }
    let first_failure = (1..n).find(|&r| c[order[r]].confidence < 1.0 - factor / (r as f64 + 2.0));
    let keep = match first_failure {
        Some(r) if r < n - 1 => r,
        _ => n,
    };
    order.truncate(keep);
    order
}

/// Dream's `alg_temp`: draw `k` positions without replacement from softmax(confidence / t).
pub fn sample_without_replacement(
    c: &[Candidate],
    k: usize,
    t: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let max = c
        .iter()
        .map(|x| x.confidence / t)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut weights: Vec<f64> = c.iter().map(|x| (x.confidence / t - max).exp()).collect();
    let mut picked = Vec::with_capacity(k);
    for _ in 0..k.min(c.len()) {
        let total: f64 = weights.iter().sum();
        let mut u = rng.random::<f64>() * total;
        let mut choice = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
        for (j, &w) in weights.iter().enumerate() {
            if w > 0.0 && u < w {
                choice = j;
                break;
            }
            u -= w;
        }
        picked.push(choice);
        weights[choice] = 0.0;
    }
    picked.shuffle(rng);
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(conf: &[f64]) -> Vec<Candidate> {
        conf.iter()
            .enumerate()
            .map(|(i, &confidence)| Candidate {
                token: i as u32,
                confidence,
            })
            .collect()
    }

    #[test]
    fn llada_counts_spread_the_remainder_first() {
        assert_eq!(llada_transfer_counts(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(llada_transfer_counts(8, 8), vec![1; 8]);
        assert_eq!(llada_transfer_counts(2, 4), vec![1, 1, 0, 0]);
    }

    #[test]
    fn dream_timesteps_run_from_one_to_eps() {
        let t = dream_timesteps(4, 1e-3);
        assert_eq!(t.len(), 5);
        assert_eq!(t[0], 1.0);
        assert!((t[4] - 1e-3).abs() < 1e-12);
    }

    #[test]
    fn threshold_commits_at_least_one() {
        let c = cands(&[0.2, 0.95, 0.91]);
        assert_eq!(by_threshold(&c, 0.9), vec![1, 2]);
        assert_eq!(by_threshold(&c, 0.99), vec![1]);
        assert_eq!(top_k(&c, 2), vec![1, 2]);
    }

    #[test]
    fn factor_accepts_the_sorted_prefix_that_clears_its_bar() {
        // Bars for factor 1: rank 2 needs 1 - 1/3, rank 3 needs 1 - 1/4, rank 4 needs 1 - 1/5.
        let c = cands(&[0.70, 0.10, 0.95, 0.60, 0.50]);
        assert_eq!(by_factor(&c, 1.0), vec![2, 0]);
        // Only the first clears: one token.
        assert_eq!(by_factor(&cands(&[0.5, 0.3, 0.2]), 1.0), vec![0]);
        // Every rank clears: all of them.
        assert_eq!(by_factor(&cands(&[0.99, 0.98, 0.97]), 1.0), vec![0, 1, 2]);
        // The first failure is at the last rank: upstream commits all (two masks left always go).
        assert_eq!(by_factor(&cands(&[0.9, 0.1]), 1.0), vec![0, 1]);
        assert_eq!(by_factor(&cands(&[0.99, 0.9, 0.1]), 1.0), vec![0, 1, 2]);
        assert_eq!(by_factor(&cands(&[0.4]), 1.0), vec![0]);
        assert!(by_factor(&[], 1.0).is_empty());
        // A larger factor lowers every bar.
        assert_eq!(by_factor(&cands(&[0.5, 0.4, 0.3, 0.2]), 3.0).len(), 4);
    }
}
