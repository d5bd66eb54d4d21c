//! The behaviour gate's flags, parsed into [`TestOptions`].

use anyhow::bail;

use crate::behaviour::TestOptions;

#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// Run this instead of the detected test runner; `{files}` becomes the test files that
    /// reach the unit.
    #[arg(long, value_name = "CMD")]
    pub test_cmd: Option<String>,
    /// Seconds one test run may take; at the limit its whole process group is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub test_timeout: f64,
    /// Do not run the project's tests (the run record says so).
    #[arg(long, conflicts_with = "test_cmd")]
    pub no_tests: bool,
    /// Let --auto-apply write public API that no passing test reaches.
    #[arg(long)]
    pub allow_untested: bool,
    /// The Python that runs the project's tests (default: $OUROBOROS_PYTHON, the project's
    /// .venv or venv, else python3).
    #[arg(long, value_name = "PATH")]
    pub test_python: Option<String>,
}

impl TestArgs {
    pub fn options(&self) -> anyhow::Result<TestOptions> {
        if !(self.test_timeout.is_finite() && self.test_timeout > 0.0) {
            bail!(
                "--test-timeout {}: must be a positive number of seconds",
                self.test_timeout
            );
        }
        if self
            .test_cmd
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            bail!("--test-cmd is empty");
        }
        Ok(TestOptions {
            enabled: !self.no_tests,
            command: self.test_cmd.clone(),
            timeout: self.test_timeout,
            allow_untested: self.allow_untested,
            python: self.test_python.clone(),
        })
    }
}
