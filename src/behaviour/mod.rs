//! The behaviour gate: the project's own tests judge each change before anything is written.
//!
//! The tests that reach a unit (the code graph knows them) run in a scratch copy of the
//! repository, never in the user's tree: once on the files as they are (the baseline), then
//! with the unit's rewrite in place. A test that passed before and fails after breaks the unit;
//! tests that already failed are reported and do not block, as the syntax gate treats errors
//! that were already there.

pub(crate) mod exec;
mod results;
mod runner;
mod scratch;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use results::Outcome;
pub use runner::{Runner, TestRun};
use scratch::Scratch;

/// How a run uses the tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOptions {
    /// `false` (`--no-tests`): no test runs, and the record says so.
    pub enabled: bool,
    /// `--test-cmd`: overrides the runner detected from the project.
    pub command: Option<String>,
    /// Seconds one run may take before its process group is killed.
    pub timeout: f64,
    /// `--allow-untested`: `--auto-apply` may write public API that no test reaches.
    pub allow_untested: bool,
    /// `--test-python`: the interpreter Python tests run with (else `$OUROBOROS_PYTHON`, the
    /// project's `.venv` or `venv`, or `python3`).
    #[serde(default)]
    pub python: Option<String>,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            enabled: true,
            command: None,
            timeout: 300.0,
            allow_untested: false,
            python: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error(
        "the test command {command} was not found (install it, or name another with --test-cmd)"
    )]
    NotFound {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("running the tests ({command})")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the scratch copy the tests run in")]
    Scratch(#[source] std::io::Error),
    #[error("reading what {runner} reported")]
    Results {
        runner: &'static str,
        #[source]
        source: results::ResultsError,
    },
    #[error("interrupted while the tests ran (the scratch copy is removed)")]
    Interrupted,
}

/// What the tests say about one rewrite.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The run with the rewrite in place.
    pub run: TestRun,
    /// Tests that passed in the baseline and do not now, with their messages.
    pub broken: Vec<(String, String)>,
    /// Tests that already failed in the baseline.
    pub preexisting: Vec<String>,
    /// Tests that passed in the baseline: what the verdict protects.
    pub protected: usize,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.broken.is_empty()
    }

    /// The failing tests and their messages, for the regeneration prompt.
    pub fn feedback(&self) -> String {
        let mut out = String::new();
        for (id, message) in self.broken.iter().take(5) {
            let message: String = message.lines().take(6).collect::<Vec<_>>().join("\n  ");
            out.push_str(&format!("test {id} failed: {message}\n"));
        }
        out.trim_end().to_string()
    }
}

/// The scratch copy, the runners, and the baselines of one run.
pub struct TestGate {
    scratch: Scratch,
    root: std::path::PathBuf,
    command: Option<String>,
    python: Option<String>,
    timeout: Duration,
    runners: HashMap<bool, Runner>,
    baselines: HashMap<Vec<String>, TestRun>,
    /// The test sets in the order their baselines ran.
    order: Vec<Vec<String>>,
    /// Every run so far, baselines and healing attempts included: how many, and how long.
    pub total_runs: usize,
    pub total_ms: f64,
}

impl TestGate {
    /// Copy the repository at `root` for the tests; nothing runs yet.
    pub fn open(root: &Path, options: &TestOptions) -> Result<TestGate, TestError> {
        Ok(TestGate {
            scratch: Scratch::copy_of(root).map_err(TestError::Scratch)?,
            root: root.to_path_buf(),
            command: options.command.clone(),
            python: options.python.clone(),
            timeout: Duration::from_secs_f64(options.timeout),
            runners: HashMap::new(),
            baselines: HashMap::new(),
            order: Vec::new(),
            total_runs: 0,
            total_ms: 0.0,
        })
    }

    fn runner(&mut self, tests: &[String]) -> Result<Runner, TestError> {
        let python = tests.iter().any(|t| t.ends_with(".py"));
        if let Some(r) = self.runners.get(&python) {
            return Ok(r.clone());
        }
        let r = runner::detect(
            &self.root,
            python,
            self.command.as_deref(),
            self.python.as_deref(),
        )?;
        self.runners.insert(python, r.clone());
        Ok(r)
    }

    fn run(&mut self, tests: &[String]) -> Result<TestRun, TestError> {
        let runner = self.runner(tests)?;
        let run = runner.run(&self.scratch, tests, self.timeout)?;
        self.total_runs += 1;
        self.total_ms += run.duration_ms;
        Ok(run)
    }

    /// Every baseline run, in the order they ran.
    pub fn baselines(&self) -> Vec<TestRun> {
        self.order
            .iter()
            .map(|set| self.baselines[set].clone())
            .collect()
    }

    /// Run `tests` on the files as they are now, once per set. Call it for every set before
    /// the first [`TestGate::accept`], so every baseline is of the untouched repository.
    pub fn baseline(&mut self, tests: &[String]) -> Result<&TestRun, TestError> {
        if !self.baselines.contains_key(tests) {
            let run = self.run(tests)?;
            self.baselines.insert(tests.to_vec(), run);
            self.order.push(tests.to_vec());
        }
        Ok(&self.baselines[tests])
    }

    /// The baseline's passing and failing counts for `tests`, once it has run.
    pub fn baseline_counts(&self, tests: &[String]) -> Option<(usize, usize)> {
        self.baselines.get(tests).map(|run| {
            (
                run.count(|o| *o == Outcome::Passed),
                run.count(|o| matches!(o, Outcome::Failed(_))),
            )
        })
    }

    /// Run `tests` with `patched` as `file` (repository-relative), put the file back, and
    /// compare with the baseline.
    pub fn judge(
        &mut self,
        file: &str,
        before: &str,
        patched: &str,
        tests: &[String],
    ) -> Result<Verdict, TestError> {
        let baseline = self.baseline(tests)?.outcomes.clone();
        self.scratch
            .write(file, patched)
            .map_err(TestError::Scratch)?;
        let run = self.run(tests);
        self.scratch
            .write(file, before)
            .map_err(TestError::Scratch)?;
        let run = run?;
        Ok(compare(&baseline, run))
    }

    /// Keep `text` as `file` in the scratch copy: a unit that was spliced in, which the later
    /// units' tests run with.
    pub fn accept(&mut self, file: &str, text: &str) -> Result<(), TestError> {
        self.scratch.write(file, text).map_err(TestError::Scratch)
    }
}

/// The rewrite's run against the baseline: what broke, what was broken already.
fn compare(baseline: &BTreeMap<String, Outcome>, run: TestRun) -> Verdict {
    let mut broken = Vec::new();
    let mut preexisting = Vec::new();
    let mut protected = 0;
    for (id, before) in baseline {
        match before {
            Outcome::Passed => {
                protected += 1;
                match run.outcomes.get(id) {
                    Some(Outcome::Passed) | Some(Outcome::Skipped) => {}
                    Some(Outcome::Failed(m)) => broken.push((id.clone(), m.clone())),
                    None => broken.push((
                        id.clone(),
                        if run.timed_out {
                            "did not finish: the run timed out".to_string()
                        } else {
                            "did not run (the module may no longer import)".to_string()
                        },
                    )),
                }
            }
            Outcome::Failed(_) => preexisting.push(id.clone()),
            Outcome::Skipped => {}
        }
    }
    Verdict {
        run,
        broken,
        preexisting,
        protected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcomes: &[(&str, Outcome)], timed_out: bool) -> TestRun {
        TestRun {
            command: "t".into(),
            files: vec![],
            outcomes: outcomes
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            exit_code: Some(1),
            timed_out,
            duration_ms: 1.0,
            output_tail: String::new(),
        }
    }

    #[test]
    fn only_tests_that_passed_before_can_break() {
        let baseline = run(
            &[
                ("a", Outcome::Passed),
                ("b", Outcome::Passed),
                ("c", Outcome::Failed("old".into())),
                ("d", Outcome::Passed),
            ],
            false,
        )
        .outcomes;
        let after = run(
            &[
                ("a", Outcome::Passed),
                ("b", Outcome::Failed("AssertionError: 2 != 3".into())),
                ("c", Outcome::Failed("still".into())),
            ],
            false,
        );
        let v = compare(&baseline, after);
        assert_eq!(v.protected, 3);
        assert_eq!(v.preexisting, ["c"]);
        let ids: Vec<&str> = v.broken.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["b", "d"]);
        assert!(v
            .feedback()
            .contains("test b failed: AssertionError: 2 != 3"));
        assert!(v.broken[1].1.contains("did not run"));
        let hung = compare(&baseline, run(&[], true));
        assert!(hung.broken.iter().all(|(_, m)| m.contains("timed out")));
    }
}
