//! The risk score of a patch, in [0, 1]: a weighted sum of six terms, each in [0, 1].
//!
//! | term | weight | value |
//! |---|---|---|
//! | change size | 0.25 | changed lines / 40, capped at 1 |
//! | blast radius | 0.20 | ln(1 + dependents) / ln(1 + 50), capped at 1 |
//! | public API | 0.15 | 1 if public with callers, 0.5 if public, else 0 |
//! | retries | 0.15 | retries used / max retries (0 when none are allowed) |
//! | confidence | 0.15 | 1 − mean commit probability; 0.5 when the sampler's confidence is not a probability |
//! | gate warnings | 0.10 | warnings / 5, capped at 1 |
//!
//! The weights sum to 1, so a patch that is large, widely used, public, needed every retry,
//! was written with no confidence and drew warnings scores 1. The default `--max-risk 0.3`
//! auto-applies a small, private, confident, first-try change.

use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub struct RiskInputs {
    pub changed_lines: usize,
    pub blast_radius: usize,
    pub public_api: bool,
    pub callers: usize,
    pub retries: u32,
    pub max_retries: u32,
    /// Mean probability of the committed tokens, when the sampler's confidence is one.
    pub mean_probability: Option<f64>,
    pub gate_warnings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Term {
    pub name: &'static str,
    pub weight: f64,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    pub score: f64,
    pub terms: Vec<Term>,
}

pub fn score(i: &RiskInputs) -> Risk {
    let terms = vec![
        Term {
            name: "change_size",
            weight: 0.25,
            value: (i.changed_lines as f64 / 40.0).min(1.0),
        },
        Term {
            name: "blast_radius",
            weight: 0.20,
            value: ((1.0 + i.blast_radius as f64).ln() / 51f64.ln()).min(1.0),
        },
        Term {
            name: "public_api",
            weight: 0.15,
            value: match (i.public_api, i.callers > 0) {
                (true, true) => 1.0,
                (true, false) => 0.5,
                _ => 0.0,
            },
        },
        Term {
            name: "retries",
            weight: 0.15,
            value: if i.max_retries == 0 {
                0.0
            } else {
                (i.retries as f64 / i.max_retries as f64).min(1.0)
            },
        },
        Term {
            name: "confidence",
            weight: 0.15,
            value: i
                .mean_probability
                .map_or(0.5, |p| (1.0 - p).clamp(0.0, 1.0)),
        },
        Term {
            name: "gate_warnings",
            weight: 0.10,
            value: (i.gate_warnings as f64 / 5.0).min(1.0),
        },
    ];
    let score = terms
        .iter()
        .map(|t| t.weight * t.value)
        .sum::<f64>()
        .clamp(0.0, 1.0);
    Risk { score, terms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RiskInputs {
        RiskInputs {
            max_retries: 3,
            mean_probability: Some(1.0),
            ..RiskInputs::default()
        }
    }

    fn delta(f: impl Fn(&mut RiskInputs)) -> f64 {
        let mut i = base();
        f(&mut i);
        score(&i).score - score(&base()).score
    }

    #[test]
    fn a_small_private_confident_first_try_change_is_free() {
        assert_eq!(score(&base()).score, 0.0);
        let w: f64 = score(&base()).terms.iter().map(|t| t.weight).sum();
        assert!((w - 1.0).abs() < 1e-12);
    }

    #[test]
    fn each_term_moves_the_score_by_its_weight() {
        let eps = 1e-12;
        assert!((delta(|i| i.changed_lines = 20) - 0.125).abs() < eps);
        assert!((delta(|i| i.changed_lines = 400) - 0.25).abs() < eps);
        assert!((delta(|i| i.blast_radius = 50) - 0.20).abs() < eps);
        assert!(delta(|i| i.blast_radius = 5) > 0.0 && delta(|i| i.blast_radius = 5) < 0.2);
        assert!((delta(|i| i.public_api = true) - 0.075).abs() < eps);
        assert!(
            (delta(|i| {
                i.public_api = true;
                i.callers = 2
            }) - 0.15)
                .abs()
                < eps
        );
        assert!(
            (delta(|i| i.callers = 2)).abs() < eps,
            "callers of a private unit"
        );
        assert!((delta(|i| i.retries = 3) - 0.15).abs() < eps);
        assert!((delta(|i| i.mean_probability = Some(0.6)) - 0.06).abs() < eps);
        assert!((delta(|i| i.mean_probability = None) - 0.075).abs() < eps);
        assert!((delta(|i| i.gate_warnings = 10) - 0.10).abs() < eps);
    }

    #[test]
    fn the_worst_case_scores_one() {
        let worst = RiskInputs {
            changed_lines: 1000,
            blast_radius: 1000,
            public_api: true,
            callers: 9,
            retries: 3,
            max_retries: 3,
            mean_probability: Some(0.0),
            gate_warnings: 9,
        };
        assert!((score(&worst).score - 1.0).abs() < 1e-12);
    }
}
