//! The unbiased pass@k estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained
//! on Code", section 2.1): with n samples of which c pass, pass@k = 1 − C(n−c, k) / C(n, k), the
//! chance that k of the n drawn without replacement include a passing one. The ratio of
//! binomials is computed as a product, 1 − ∏_{i=n−c+1}^{n} (1 − k/i), which never overflows.

/// pass@k for one problem with `n` samples, `c` of them passing. `k` must be at most `n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(
        k >= 1 && k <= n && c <= n,
        "pass@k needs 1 <= k <= n and c <= n"
    );
    if n - c < k {
        return 1.0;
    }
    let kept: f64 = ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product();
    1.0 - kept
}

/// The mean of pass@k over problems, given each problem's (samples, passing).
pub fn mean_pass_at_k(results: &[(usize, usize)], k: usize) -> f64 {
    if results.is_empty() {
        return 0.0;
    }
    results
        .iter()
        .map(|&(n, c)| pass_at_k(n, c, k))
        .sum::<f64>()
        / results.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C(n, k) exactly, for checking the product form on small numbers.
    fn binom(n: u64, k: u64) -> f64 {
        if k > n {
            return 0.0;
        }
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn matches_the_ratio_of_binomials() {
        for n in 1..=12u64 {
            for c in 0..=n {
                for k in 1..=n {
                    let direct = 1.0 - binom(n - c, k) / binom(n, k);
                    let ours = pass_at_k(n as usize, c as usize, k as usize);
                    assert!((direct - ours).abs() < 1e-12, "n={n} c={c} k={k}");
                }
            }
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(pass_at_k(10, 0, 1), 0.0);
        assert_eq!(pass_at_k(10, 10, 5), 1.0);
        // pass@1 is the fraction passing.
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        // Fewer failures than k: some passing sample is always drawn.
        assert_eq!(pass_at_k(5, 3, 3), 1.0);
        assert!((mean_pass_at_k(&[(4, 1), (4, 3)], 1) - 0.5).abs() < 1e-12);
        assert_eq!(mean_pass_at_k(&[], 1), 0.0);
    }
}
