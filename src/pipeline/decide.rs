//! What may become of each file and unit: the gate's verdict and the risk limit decide, before
//! anything is written.

use std::collections::BTreeMap;

use super::build::{UnitOutcome, UnitResult};
use super::request::ApplyOptions;
use super::Outcome;

/// What became of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Applied,
    CanApply,
    NeedsReview,
    Invalid,
}

impl FileStatus {
    pub fn text(self) -> &'static str {
        match self {
            FileStatus::Applied => "applied",
            FileStatus::CanApply => "can apply",
            FileStatus::NeedsReview => "needs review",
            FileStatus::Invalid => "invalid: not written",
        }
    }
}

/// What became of a unit: its own failure, or its file's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitStatus {
    Skipped(String),
    Invalid,
    File(FileStatus),
}

impl UnitStatus {
    pub fn text(&self) -> String {
        match self {
            UnitStatus::Skipped(why) => format!("skipped: {why}"),
            UnitStatus::Invalid => FileStatus::Invalid.text().to_string(),
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

pub fn decide(outcome: &Outcome, apply: &ApplyOptions, safe_mode: bool) -> Decisions {
    let files = outcome
        .files
        .iter()
        .map(|f| {
            let status = if !f.valid && safe_mode {
                FileStatus::Invalid
            } else if f.risk > apply.max_risk {
                FileStatus::NeedsReview
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
            UnitResult::Built(b) if !b.valid && self.safe_mode => UnitStatus::Invalid,
            UnitResult::Built(_) => self
                .files
                .get(&u.file)
                .map_or(UnitStatus::Invalid, |s| UnitStatus::File(*s)),
        }
    }
}
