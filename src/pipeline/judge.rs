//! How the pipeline judges a unit's drafts: the syntax gate on the patched file, then the tests
//! that reach the unit (in the test gate's scratch copy) for drafts that parse. Tests failures
//! go back into the heal loop as feedback for a regeneration.

use serde::Serialize;

use super::risk::TestEvidence;
use super::PipelineError;
use crate::behaviour::{TestError, TestGate, TestOptions, Verdict as TestVerdict};
use crate::builder::heal::{self, Judge, Site, Verdict};
use crate::builder::{BuildError, Draft};
use crate::gate::Gate;
use crate::reasoner::Plan;

/// What the tests said about a unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TestStatus {
    /// Every test that reaches the unit and passed before the change passes after it.
    Passed { tests: usize, preexisting: usize },
    /// These tests passed before and fail after.
    Broken { failing: Vec<String> },
    /// No test reaches the unit.
    Untested,
    /// Tests reach it, but none of them passed before the change: nothing to protect.
    NoBaseline { preexisting: usize },
    /// `--no-tests`.
    Off,
    /// The final draft did not parse, so no test ran on it.
    NotRun,
}

impl TestStatus {
    /// The results table's `tests` column.
    pub fn text(&self) -> String {
        match self {
            TestStatus::Passed { tests, .. } => format!("passed {tests}"),
            TestStatus::Broken { failing } => {
                let short: Vec<&str> = failing.iter().take(2).map(|id| short_name(id)).collect();
                let more = failing.len().saturating_sub(2);
                format!(
                    "broke {}{}",
                    short.join(", "),
                    if more > 0 {
                        format!(" +{more}")
                    } else {
                        String::new()
                    }
                )
            }
            TestStatus::Untested => "untested".into(),
            TestStatus::NoBaseline { .. } => "untested (none passed before)".into(),
            TestStatus::Off => "off (--no-tests)".into(),
            TestStatus::NotRun => "-".into(),
        }
    }

    pub fn evidence(&self) -> TestEvidence {
        match self {
            TestStatus::Passed { .. } => TestEvidence::Passed,
            TestStatus::Broken { .. } => TestEvidence::Broken,
            _ => TestEvidence::None,
        }
    }
}

/// A test id's last part: `test_m.TestM.test_x` → `test_x`, `a.test.js::adds` → `adds`.
fn short_name(id: &str) -> &str {
    let tail = id.rsplit("::").next().unwrap_or(id);
    if id.contains("::") {
        tail
    } else {
        tail.rsplit('.').next().unwrap_or(tail)
    }
}

/// The test gate for a run, with the baseline of every unit's tests already run on the
/// untouched repository; `None` with `--no-tests` or when no test reaches any unit.
pub fn open(
    root: &std::path::Path,
    plan: &Plan,
    options: &TestOptions,
) -> Result<Option<TestGate>, PipelineError> {
    if !options.enabled || plan.units.iter().all(|u| u.tests.is_empty()) {
        return Ok(None);
    }
    let mut gate = TestGate::open(root, options)?;
    for unit in plan.units.iter().filter(|u| !u.tests.is_empty()) {
        gate.baseline(&unit.tests)?;
    }
    Ok(Some(gate))
}

/// The judge of one unit's drafts.
pub struct UnitJudge<'a> {
    gate: Gate,
    tests: Option<&'a mut TestGate>,
    file: &'a str,
    /// The file before this unit: what the scratch copy holds, and is put back after a run.
    before: &'a str,
    unit_tests: &'a [String],
    enabled: bool,
    /// The baseline's passing and failing counts for the unit's tests.
    baseline: (usize, usize),
    /// The verdict on the latest draft that parsed.
    pub last: Option<TestVerdict>,
    /// Why the tests could not run, when they could not.
    pub error: Option<TestError>,
}

impl<'a> UnitJudge<'a> {
    pub fn new(
        gate: Gate,
        tests: Option<&'a mut TestGate>,
        file: &'a str,
        before: &'a str,
        unit_tests: &'a [String],
        enabled: bool,
    ) -> UnitJudge<'a> {
        let baseline = tests
            .as_deref()
            .and_then(|t| t.baseline_counts(unit_tests))
            .unwrap_or((0, 0));
        UnitJudge {
            gate,
            baseline,
            tests,
            file,
            before,
            unit_tests,
            enabled,
            last: None,
            error: None,
        }
    }

    /// The tests' verdict on the final draft.
    pub fn status(&self, parsed: bool) -> TestStatus {
        if !self.enabled {
            return TestStatus::Off;
        }
        if self.unit_tests.is_empty() {
            return TestStatus::Untested;
        }
        if self.baseline.0 == 0 {
            return TestStatus::NoBaseline {
                preexisting: self.baseline.1,
            };
        }
        match &self.last {
            _ if !parsed => TestStatus::NotRun,
            Some(v) if v.passed() => TestStatus::Passed {
                tests: v.protected,
                preexisting: v.preexisting.len(),
            },
            Some(v) => TestStatus::Broken {
                failing: v.broken.iter().map(|(id, _)| id.clone()).collect(),
            },
            None => TestStatus::NotRun,
        }
    }

    /// The pipeline's error for a failed heal: the tests' own when they could not run.
    pub fn failure(&mut self, unit: &str, source: BuildError) -> PipelineError {
        match self.error.take() {
            Some(TestError::Interrupted) => PipelineError::Interrupted,
            Some(e) => PipelineError::Tests(e),
            None => PipelineError::Build {
                unit: unit.to_string(),
                source: Box::new(source),
            },
        }
    }
}

impl Judge for UnitJudge<'_> {
    fn judge(&mut self, site: &Site, draft: &Draft) -> Result<Verdict, BuildError> {
        let report = heal::syntax(&self.gate, site, draft);
        let Some(tests) = self.tests.as_deref_mut().filter(|_| report.is_valid) else {
            return Ok(Verdict {
                report,
                rejected: None,
            });
        };
        // Nothing to protect: no test reaches the unit, or none passed before the change.
        if self.unit_tests.is_empty() || self.baseline.0 == 0 {
            return Ok(Verdict {
                report,
                rejected: None,
            });
        }
        match tests.judge(self.file, self.before, &draft.patched(), self.unit_tests) {
            Ok(v) => {
                let rejected = (!v.passed()).then(|| v.feedback());
                self.last = Some(v);
                Ok(Verdict { report, rejected })
            }
            Err(e) => {
                self.error = Some(e);
                Err(BuildError::Judge)
            }
        }
    }
}
