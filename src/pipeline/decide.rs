//! What may become of each file and unit, decided before anything is written: the syntax gate,
//! the tests, the semantic checks and the risk limit.
//!
//! A unit that does not parse, or breaks a test that passed before, is not spliced into its
//! file at all. A file whose spliced units include a placeholder body, or public API that no
//! test vouches for (unless `--allow-untested`), or whose risk is over the limit, needs review:
//! it is shown and saved, never written. `--no-safe-mode` lifts every hold but the risk limit.

use std::collections::BTreeMap;

use super::build::{UnitOutcome, UnitResult};
use super::judge::TestStatus;
use super::request::RunOptions;
use super::Outcome;

/// Why a file is held for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// Over `--max-risk`.
    Risk,
    /// A unit of it is now only a placeholder.
    Placeholder,
    /// A unit of it is public API that no passing test reaches.
    UntestedPublicApi,
}

/// What became of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Applied,
    CanApply,
    NeedsReview(Review),
    Invalid,
    /// It changed while the run worked on it: not written, so the edit is kept.
    Stale,
}

impl FileStatus {
    pub fn text(self) -> &'static str {
        match self {
            FileStatus::Applied => "applied",
            FileStatus::CanApply => "can apply",
            FileStatus::NeedsReview(Review::Risk) => "needs review",
            FileStatus::NeedsReview(Review::Placeholder) => "needs review: placeholder",
            FileStatus::NeedsReview(Review::UntestedPublicApi) => {
                "needs review: untested public API"
            }
            FileStatus::Invalid => "invalid: not written",
            FileStatus::Stale => "stale: changed during the run, not written",
        }
    }
}

/// What became of a unit: its own failure, or its file's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitStatus {
    Skipped(String),
    Invalid,
    /// It broke these tests: not written.
    Rejected(Vec<String>),
    File(FileStatus),
}

impl UnitStatus {
    pub fn text(&self) -> String {
        match self {
            UnitStatus::Skipped(why) => format!("skipped: {why}"),
            UnitStatus::Invalid => FileStatus::Invalid.text().to_string(),
            UnitStatus::Rejected(_) => "rejected: breaks tests".to_string(),
            UnitStatus::File(s) => s.text().to_string(),
        }
    }

    /// Applied, or could be.
    pub fn is_good(&self) -> bool {
        matches!(
            self,
            UnitStatus::File(FileStatus::Applied | FileStatus::CanApply)
        )
    }
}

/// Each changed file's status as planned: `CanApply` files are the ones to write when writing
/// is asked for.
pub struct Decisions {
    pub files: BTreeMap<String, FileStatus>,
    pub safe_mode: bool,
}

pub fn decide(outcome: &Outcome, options: &RunOptions) -> Decisions {
    let safe_mode = options.build.safe_mode;
    let files = outcome
        .files
        .iter()
        .map(|f| {
            // The units this file's patch holds.
            let spliced: Vec<_> = outcome
                .units
                .iter()
                .filter(|u| u.file == f.file)
                .filter_map(|u| u.built())
                .filter(|b| b.valid || !safe_mode)
                .collect();
            let untested_public = spliced
                .iter()
                .any(|b| b.public_api && !matches!(b.tests, TestStatus::Passed { .. }));
            // Without safe mode the verdicts are recorded and do not hold anything back; the
            // risk limit still does.
            let status = if !f.valid && safe_mode {
                FileStatus::Invalid
            } else if safe_mode && spliced.iter().any(|b| b.placeholder()) {
                FileStatus::NeedsReview(Review::Placeholder)
            } else if f.risk > options.apply.max_risk {
                FileStatus::NeedsReview(Review::Risk)
            } else if safe_mode && untested_public && !options.tests.allow_untested {
                FileStatus::NeedsReview(Review::UntestedPublicApi)
            } else {
                FileStatus::CanApply
            };
            (f.file.clone(), status)
        })
        .collect();
    Decisions { files, safe_mode }
}

impl Decisions {
    pub fn unit(&self, u: &UnitOutcome) -> UnitStatus {
        match &u.result {
            UnitResult::Skipped(why) => UnitStatus::Skipped(why.clone()),
            UnitResult::Built(b) if !b.valid && self.safe_mode => match &b.tests {
                TestStatus::Broken { failing } if b.report.is_valid => {
                    UnitStatus::Rejected(failing.clone())
                }
                _ => UnitStatus::Invalid,
            },
            UnitResult::Built(_) => self
                .files
                .get(&u.file)
                .map_or(UnitStatus::Invalid, |s| UnitStatus::File(*s)),
        }
    }
}
