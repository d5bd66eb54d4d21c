//! Which test runner a project uses, and running it on some test files in the scratch copy with
//! a time limit, per-test outcomes where the runner can report them.
//!
//! - Python: pytest when the project is set up for it (`pytest.ini`, `conftest.py`,
//!   `[tool.pytest.ini_options]` in pyproject.toml, `[tool:pytest]` in setup.cfg, `[pytest]` in
//!   tox.ini) and it is installed, with JUnit XML; otherwise unittest through a small shim that
//!   writes each test's outcome.
//! - JavaScript/TypeScript: node's test runner (`node --test`, JUnit reporter) when
//!   `package.json`'s `test` script is one, or when there is no script; any other script (vitest,
//!   jest, ...) runs as `npm test -- FILES` and is judged by its exit code as one test.
//! - `--test-cmd "CMD"`: `{files}` becomes the test files; judged by its exit code, or per test
//!   if it writes JUnit XML to `$OUROBOROS_JUNIT`.
//!
//! The interpreter for Python is `--test-python`, else `$OUROBOROS_PYTHON`, else the project's
//! `.venv` or `venv`, else `python3`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::results::{self, Outcome};
use super::scratch::Scratch;
use super::TestError;

const SHIM: &str = include_str!("unittest_shim.py");

#[derive(Debug, Clone, PartialEq)]
pub enum Runner {
    Pytest { python: PathBuf },
    Unittest { python: PathBuf },
    NodeTest,
    Npm,
    Custom(String),
}

/// One run of the tests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestRun {
    pub command: String,
    pub files: Vec<String>,
    pub outcomes: BTreeMap<String, Outcome>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: f64,
    /// The last lines of what the run printed.
    pub output_tail: String,
}

impl TestRun {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.values().filter(|o| f(o)).count()
    }
}

/// The Python the project's tests run with.
fn python(root: &Path, asked: Option<&str>) -> PathBuf {
    if let Some(p) = asked {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("OUROBOROS_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    for venv in [".venv", "venv"] {
        let p = root.join(venv).join("bin").join("python");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("python3")
}

fn uses_pytest(root: &Path) -> bool {
    let has = |file: &str, section: &str| {
        std::fs::read_to_string(root.join(file)).is_ok_and(|t| t.contains(section))
    };
    root.join("pytest.ini").is_file()
        || root.join("conftest.py").is_file()
        || has("pyproject.toml", "[tool.pytest.ini_options]")
        || has("setup.cfg", "[tool:pytest]")
        || has("tox.ini", "[pytest]")
}

/// The runner for test files of this kind (`py` or a script extension) in `root`.
pub fn detect(
    root: &Path,
    python_files: bool,
    custom: Option<&str>,
    interpreter: Option<&str>,
) -> Result<Runner, TestError> {
    if let Some(cmd) = custom {
        return Ok(Runner::Custom(cmd.to_string()));
    }
    if python_files {
        let python = python(root, interpreter);
        let probe = Command::new(&python)
            .args(["-c", "import pytest"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| TestError::NotFound {
                command: python.display().to_string(),
                source,
            })?;
        return Ok(if uses_pytest(root) && probe.success() {
            Runner::Pytest { python }
        } else {
            Runner::Unittest { python }
        });
    }
    let script = std::fs::read_to_string(root.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["scripts"]["test"].as_str().map(str::to_string));
    Ok(match script {
        Some(s) if !s.trim_start().starts_with("node --test") => Runner::Npm,
        _ => Runner::NodeTest,
    })
}

/// `a/b/test_x.py` → `a.b.test_x`.
fn module_name(file: &str) -> String {
    file.trim_end_matches(".py").replace('/', ".")
}

fn quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl Runner {
    pub fn name(&self) -> &'static str {
        match self {
            Runner::Pytest { .. } => "pytest",
            Runner::Unittest { .. } => "unittest",
            Runner::NodeTest => "node --test",
            Runner::Npm => "npm test",
            Runner::Custom(_) => "--test-cmd",
        }
    }

    /// Run `files` in the scratch copy, killing the whole process group at `timeout`.
    pub fn run(
        &self,
        scratch: &Scratch,
        files: &[String],
        timeout: Duration,
    ) -> Result<TestRun, TestError> {
        if *self == Runner::NodeTest && files.len() > 1 {
            // node's JUnit report does not say which file a case is from: one run per file.
            let mut all: Option<TestRun> = None;
            for f in files {
                let run = self.run(scratch, std::slice::from_ref(f), timeout)?;
                all = Some(match all {
                    None => run,
                    Some(mut acc) => {
                        acc.command = format!("{}; {}", acc.command, run.command);
                        acc.files.extend(run.files);
                        acc.outcomes.extend(run.outcomes);
                        acc.exit_code = acc.exit_code.max(run.exit_code);
                        acc.timed_out |= run.timed_out;
                        acc.duration_ms += run.duration_ms;
                        acc.output_tail = run.output_tail;
                        acc
                    }
                });
            }
            return Ok(all.expect("at least two files"));
        }
        let work = scratch.work();
        let junit = work.join("junit.xml");
        let shim_out = work.join("unittest.json");
        let _ = std::fs::remove_file(&junit);
        let _ = std::fs::remove_file(&shim_out);
        let (program, args): (PathBuf, Vec<String>) = match self {
            Runner::Pytest { python } => {
                let mut a: Vec<String> = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
                    .map(String::from)
                    .to_vec();
                a.push(format!("--junitxml={}", junit.display()));
                a.extend(files.iter().cloned());
                (python.clone(), a)
            }
            Runner::Unittest { python } => {
                let shim = work.join("unittest_shim.py");
                std::fs::write(&shim, SHIM).map_err(TestError::Scratch)?;
                let mut a = vec![shim.display().to_string(), shim_out.display().to_string()];
                a.extend(files.iter().map(|f| module_name(f)));
                (python.clone(), a)
            }
            Runner::NodeTest => {
                let mut a: Vec<String> = vec![
                    "--test".into(),
                    "--test-reporter=junit".into(),
                    format!("--test-reporter-destination={}", junit.display()),
                ];
                a.extend(files.iter().cloned());
                ("node".into(), a)
            }
            Runner::Npm => {
                let mut a: Vec<String> = vec!["test".into(), "--silent".into(), "--".into()];
                a.extend(files.iter().cloned());
                ("npm".into(), a)
            }
            Runner::Custom(cmd) => {
                let list: Vec<String> = files.iter().map(|f| quote(f)).collect();
                let line = cmd.replace("{files}", &list.join(" "));
                ("sh".into(), vec!["-c".into(), line])
            }
        };
        let shown = match self {
            Runner::Custom(_) => args[1].clone(),
            _ => format!(
                "{} {}",
                program.display(),
                args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
            ),
        };
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .current_dir(scratch.root())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("OUROBOROS_JUNIT", &junit);
        let ran =
            super::exec::run(cmd, &work.join("output.log"), timeout).map_err(|e| match e {
                super::exec::ExecError::Spawn(source)
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    TestError::NotFound {
                        command: program.display().to_string(),
                        source,
                    }
                }
                super::exec::ExecError::Spawn(source) => TestError::Spawn {
                    command: shown.clone(),
                    source,
                },
                super::exec::ExecError::Interrupted => TestError::Interrupted,
            })?;
        if matches!(self, Runner::Custom(_)) && ran.exit_code == Some(127) {
            return Err(TestError::NotFound {
                command: shown,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let mut outcomes = self.outcomes(&junit, &shim_out, files)?;
        if outcomes.is_empty() && !(ran.exit_code == Some(0) || self.no_tests(ran.exit_code)) {
            // The runner failed before reporting any test (an import error, a crash, a hang):
            // the run itself is the one test, failed.
            let why = if ran.timed_out {
                format!("timed out after {} s", timeout.as_secs_f64())
            } else {
                ran.tail.lines().last().unwrap_or("failed").to_string()
            };
            outcomes.insert(shown.clone(), Outcome::Failed(why));
        } else if outcomes.is_empty() && ran.exit_code == Some(0) && self.whole_run() {
            outcomes.insert(shown.clone(), Outcome::Passed);
        }
        Ok(TestRun {
            command: shown,
            files: files.to_vec(),
            outcomes,
            exit_code: ran.exit_code,
            timed_out: ran.timed_out,
            duration_ms: ran.duration.as_secs_f64() * 1e3,
            output_tail: ran.tail,
        })
    }

    /// Runners whose exit code is their only verdict.
    fn whole_run(&self) -> bool {
        matches!(self, Runner::Npm | Runner::Custom(_))
    }

    /// pytest's "no tests collected".
    fn no_tests(&self, code: Option<i32>) -> bool {
        matches!(self, Runner::Pytest { .. }) && code == Some(5)
    }

    fn outcomes(
        &self,
        junit: &Path,
        shim_out: &Path,
        files: &[String],
    ) -> Result<BTreeMap<String, Outcome>, TestError> {
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let parsed = match self {
            Runner::Unittest { .. } => read(shim_out).map(|t| results::shim(&t)),
            Runner::NodeTest => {
                let prefix = files.first().map(String::as_str).unwrap_or("");
                read(junit).map(|t| results::junit(&t, prefix))
            }
            _ => read(junit).map(|t| results::junit(&t, "")),
        };
        match parsed {
            None => Ok(BTreeMap::new()),
            Some(r) => r.map_err(|source| TestError::Results {
                runner: self.name(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_follows_the_project_files() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        assert_eq!(detect(r, false, None, None).unwrap(), Runner::NodeTest);
        std::fs::write(
            r.join("package.json"),
            r#"{"scripts": {"test": "vitest run"}}"#,
        )
        .unwrap();
        assert_eq!(detect(r, false, None, None).unwrap(), Runner::Npm);
        std::fs::write(
            r.join("package.json"),
            r#"{"scripts": {"test": "node --test test/"}}"#,
        )
        .unwrap();
        assert_eq!(detect(r, false, None, None).unwrap(), Runner::NodeTest);
        assert_eq!(
            detect(r, true, Some("make check"), None).unwrap(),
            Runner::Custom("make check".into())
        );
        assert!(!uses_pytest(r));
        std::fs::write(r.join("pyproject.toml"), "[tool.pytest.ini_options]\n").unwrap();
        assert!(uses_pytest(r));
        assert_eq!(module_name("pkg/tests/test_a.py"), "pkg.tests.test_a");
        assert_eq!(quote("a b's"), "'a b'\\''s'");
    }
}
