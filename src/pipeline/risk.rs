//! The risk score of a patch, in [0, 1]: a weighted sum of eight terms, each in [0, 1].
//!
//! | term | weight | value |
//! |---|---|---|
//! | change size | 0.20 | changed lines / 40, capped at 1 |
//! | blast radius | 0.15 | ln(1 + dependents) / ln(1 + 50), capped at 1 |
//! | public API | 0.10 | 1 if public with callers, 0.5 if public, else 0 |
//! | retries | 0.10 | retries used / max retries (0 when none are allowed) |
//! | confidence | 0.10 | 1 − mean commit probability; 0.5 when the sampler's confidence is not a probability |
//! | gate warnings | 0.05 | warnings / 5, capped at 1 |
//! | tests | 0.15 | 0 when the tests that reach the unit passed, 1 when none reach it (or none passed before the change, or tests were off), 1 when it broke one |
//! | semantic warnings | 0.15 | findings / 2, capped at 1 (placeholder, lost return, unused parameter, changed signature, undefined name) |
//!
//! The weights sum to 1, so a patch that is large, widely used, public, needed every retry,
//! was written with no confidence, drew warnings, has no tests and lost behaviour scores 1. The
//! default `--max-risk 0.3` auto-applies a small, private, confident, first-try change that
//! its tests pass; an untested one needs everything else to be nearly free.

use serde::Serialize;

/// What the tests said, as far as risk is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestEvidence {
    /// Tests reach the unit, passed before the change and pass after it.
    Passed,
    /// No test reaches the unit, none of those that do passed before, or tests were off.
    #[default]
    None,
    /// A test that passed before fails after.
    Broken,
}

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
    pub tests: TestEvidence,
    pub semantic_warnings: usize,
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
    let term = |name, weight, value: f64| Term {
        name,
        weight,
        value,
    };
    let terms = vec![
        term(
            "change_size",
            0.20,
            (i.changed_lines as f64 / 40.0).min(1.0),
        ),
        term(
            "blast_radius",
            0.15,
            ((1.0 + i.blast_radius as f64).ln() / 51f64.ln()).min(1.0),
        ),
        term(
            "public_api",
            0.10,
            match (i.public_api, i.callers > 0) {
                (true, true) => 1.0,
                (true, false) => 0.5,
                _ => 0.0,
            },
        ),
        term(
            "retries",
            0.10,
            if i.max_retries == 0 {
                0.0
            } else {
                (i.retries as f64 / i.max_retries as f64).min(1.0)
            },
        ),
        term(
            "confidence",
            0.10,
            i.mean_probability
                .map_or(0.5, |p| (1.0 - p).clamp(0.0, 1.0)),
        ),
        term(
            "gate_warnings",
            0.05,
            (i.gate_warnings as f64 / 5.0).min(1.0),
        ),
        term(
            "tests",
            0.15,
            match i.tests {
                TestEvidence::Passed => 0.0,
                TestEvidence::None | TestEvidence::Broken => 1.0,
            },
        ),
        term(
            "semantic_warnings",
            0.15,
            (i.semantic_warnings as f64 / 2.0).min(1.0),
        ),
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
            tests: TestEvidence::Passed,
            ..RiskInputs::default()
        }
    }

    fn delta(f: impl Fn(&mut RiskInputs)) -> f64 {
        let mut i = base();
        f(&mut i);
        score(&i).score - score(&base()).score
    }

    #[test]
    fn a_small_private_confident_first_try_tested_change_is_free() {
        assert_eq!(score(&base()).score, 0.0);
        let w: f64 = score(&base()).terms.iter().map(|t| t.weight).sum();
        assert!((w - 1.0).abs() < 1e-12);
    }

    #[test]
    fn each_term_moves_the_score_by_its_weight() {
        let eps = 1e-12;
        assert!((delta(|i| i.changed_lines = 20) - 0.10).abs() < eps);
        assert!((delta(|i| i.changed_lines = 400) - 0.20).abs() < eps);
        assert!((delta(|i| i.blast_radius = 50) - 0.15).abs() < eps);
        assert!(delta(|i| i.blast_radius = 5) > 0.0 && delta(|i| i.blast_radius = 5) < 0.15);
        assert!((delta(|i| i.public_api = true) - 0.05).abs() < eps);
        assert!(
            (delta(|i| {
                i.public_api = true;
                i.callers = 2
            }) - 0.10)
                .abs()
                < eps
        );
        assert!(
            (delta(|i| i.callers = 2)).abs() < eps,
            "callers of a private unit"
        );
        assert!((delta(|i| i.retries = 3) - 0.10).abs() < eps);
        assert!((delta(|i| i.mean_probability = Some(0.6)) - 0.04).abs() < eps);
        assert!((delta(|i| i.mean_probability = None) - 0.05).abs() < eps);
        assert!((delta(|i| i.gate_warnings = 10) - 0.05).abs() < eps);
    }

    #[test]
    fn no_tests_or_broken_tests_cost_the_tests_weight() {
        let eps = 1e-12;
        assert!((delta(|i| i.tests = TestEvidence::None) - 0.15).abs() < eps);
        assert!((delta(|i| i.tests = TestEvidence::Broken) - 0.15).abs() < eps);
        assert_eq!(TestEvidence::default(), TestEvidence::None);
    }

    #[test]
    fn semantic_findings_count_half_each_up_to_the_weight() {
        let eps = 1e-12;
        assert!((delta(|i| i.semantic_warnings = 1) - 0.075).abs() < eps);
        assert!((delta(|i| i.semantic_warnings = 2) - 0.15).abs() < eps);
        assert!((delta(|i| i.semantic_warnings = 7) - 0.15).abs() < eps);
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
            tests: TestEvidence::Broken,
            semantic_warnings: 4,
        };
        assert!((score(&worst).score - 1.0).abs() < 1e-12);
    }
}
