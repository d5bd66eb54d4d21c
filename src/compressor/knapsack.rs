//! Multiple-choice knapsack: each item is kept whole, kept as its signature, or dropped, and the
//! total cost may not exceed the budget. Exact dynamic programming over the budget in tokens;
//! the budgets here (hundreds to a few thousand tokens, tens of items) make that cheap.

/// One way of keeping an item: its token cost and what it is worth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub cost: usize,
    pub value: f64,
}

/// For each item, the index of the option picked, or `None` for dropped. Options with no value
/// are never picked, so spare budget stays unspent rather than filled with useless text.
pub fn solve(options: &[Vec<Choice>], budget: usize) -> Vec<Option<usize>> {
    let n = options.len();
    // best[c]: the best value with at most c tokens over the items seen so far.
    let mut best = vec![0.0f64; budget + 1];
    // pick[i][c]: the option item i took in the best solution with c tokens (0 = dropped).
    let mut pick = vec![vec![0u8; budget + 1]; n];
    for (i, opts) in options.iter().enumerate() {
        let prev = best.clone();
        for c in 0..=budget {
            for (k, o) in opts.iter().enumerate() {
                if o.value <= 0.0 || o.cost > c {
                    continue;
                }
                let v = prev[c - o.cost] + o.value;
                if v > best[c] {
                    best[c] = v;
                    pick[i][c] = (k + 1) as u8;
                }
            }
        }
    }
    let mut out = vec![None; n];
    let mut c = budget;
    for i in (0..n).rev() {
        let k = pick[i][c];
        if k > 0 {
            let o = options[i][k as usize - 1];
            out[i] = Some(k as usize - 1);
            c -= o.cost;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(cost: usize, value: f64) -> Choice {
        Choice { cost, value }
    }

    fn value(options: &[Vec<Choice>], picks: &[Option<usize>]) -> (usize, f64) {
        picks
            .iter()
            .zip(options)
            .filter_map(|(p, o)| p.map(|k| o[k]))
            .fold((0, 0.0), |(a, b), o| (a + o.cost, b + o.value))
    }

    #[test]
    fn prefers_two_signatures_over_one_whole_item_when_they_are_worth_more() {
        let options = vec![vec![c(10, 5.0), c(3, 3.0)], vec![c(10, 5.0), c(3, 3.0)]];
        let picks = solve(&options, 10);
        assert_eq!(picks, vec![Some(1), Some(1)]);
        assert_eq!(value(&options, &picks), (6, 6.0));
    }

    #[test]
    fn matches_brute_force_on_small_cases() {
        // A fixed pseudo-random family of instances, checked against exhaustive search.
        let mut x: u64 = 7;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let n = 1 + (next() % 5) as usize;
            let options: Vec<Vec<Choice>> = (0..n)
                .map(|_| {
                    (0..2)
                        .map(|_| c((next() % 12) as usize, (next() % 100) as f64 / 10.0))
                        .collect()
                })
                .collect();
            let budget = (next() % 25) as usize;
            let picks = solve(&options, budget);
            let (cost, got) = value(&options, &picks);
            assert!(cost <= budget);
            let mut best = 0.0f64;
            for code in 0..3usize.pow(n as u32) {
                let (mut k, mut cost, mut v) = (code, 0, 0.0);
                for o in &options {
                    let choice = k % 3;
                    k /= 3;
                    if choice > 0 {
                        cost += o[choice - 1].cost;
                        v += o[choice - 1].value;
                    }
                }
                if cost <= budget {
                    best = best.max(v);
                }
            }
            assert!((got - best).abs() < 1e-9, "{options:?} budget {budget}");
        }
    }

    #[test]
    fn worthless_options_stay_out_and_zero_budget_keeps_nothing() {
        let options = vec![vec![c(1, 0.0)], vec![c(0, -1.0)], vec![c(2, 1.0)]];
        assert_eq!(solve(&options, 5), vec![None, None, Some(0)]);
        assert_eq!(solve(&options, 0), vec![None, None, None]);
    }
}
