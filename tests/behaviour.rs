//! The behaviour gate end to end, with real runners: node's test runner, unittest, pytest (from
//! the venv `scripts/pytest-venv.sh install` makes, as `.ci/run` does), and commands given with
//! `--test-cmd`. The user's files are never touched, whatever the tests do.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{always_writes, ouroboros, record, run_id, stdout, text, tree, ONE};

const UTIL: &str = "function helper(a) {\n  const b = a + 1;\n  return b;\n}\n\nfunction main() {\n  return helper(2);\n}\n\nmodule.exports = { helper, main };\n";
const UTIL_TEST: &str = "const test = require('node:test');\nconst assert = require('node:assert');\nconst { helper } = require('./util.js');\n\ntest('helper adds one', () => {\n  assert.strictEqual(helper(1), 2);\n});\n";

/// A model whose every body is `1111…`: JavaScript that parses, is no placeholder, and breaks
/// whatever the function did.
fn ones() -> (tempfile::TempDir, String) {
    let models = tempfile::tempdir().unwrap();
    let dir = always_writes(ONE, &models.path().join("ones"));
    let path = dir.to_str().unwrap().to_string();
    (models, path)
}

fn js_project() -> tempfile::TempDir {
    support::project(&[("util.js", UTIL), ("util.test.js", UTIL_TEST)])
}

fn refactor(dir: &Path, model: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "refactor",
        "Make helper faster",
        "-t",
        "util.js",
        "-f",
        "helper",
        "--model",
        model,
        "--max-retries",
        "1",
    ];
    args.extend_from_slice(extra);
    ouroboros(dir, &args)
}

fn units(r: &serde_json::Value) -> &Vec<serde_json::Value> {
    r["refactor"]["units"].as_array().unwrap()
}

fn checks<'r>(r: &'r serde_json::Value, kind: &str) -> Vec<&'r serde_json::Value> {
    r["safety_checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check_type"] == kind)
        .collect()
}

#[test]
fn a_unit_that_breaks_a_node_test_is_rejected_and_never_written() {
    let (_m, model) = ones();
    let dir = js_project();
    let before = tree(dir.path());
    let o = refactor(dir.path(), &model, &["--auto-apply", "--max-risk", "1.0"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stdout(&o).contains("rejected: breaks tests"),
        "{}",
        text(&o)
    );
    assert!(stdout(&o).contains("broke helper adds one"), "{}", text(&o));
    // Not even the scratch copy's leftovers: the tree is as it was, record aside.
    assert_eq!(tree(dir.path()), before);
    let r = record(dir.path(), &run_id(&o));
    let u = &units(&r)[0];
    assert_eq!(u["status"], "rejected: breaks tests");
    assert_eq!(u["failing_tests"][0], "util.test.js::helper adds one");
    let tests = checks(&r, "tests");
    assert_eq!(tests.len(), 2, "{tests:?}");
    assert!(tests[0]["details"]
        .as_str()
        .unwrap()
        .starts_with("baseline: 1 passed"));
    assert!(tests[0]["command"]
        .as_str()
        .unwrap()
        .contains("node --test"));
    assert_eq!(tests[1]["passed"], false);
    assert_eq!(tests[1]["failing"][0], "util.test.js::helper adds one");
    assert!(
        tests[1]["output_tail"].as_str().unwrap().contains("!=="),
        "{}",
        tests[1]
    );
    // The failure fed the heal loop: the retry was a regeneration told what broke.
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts[1]["action"], "regenerate");
    assert!(attempts[0]["errors"][0]
        .as_str()
        .unwrap()
        .contains("test util.test.js::helper adds one failed"));
    // status shows the test checks.
    let s = ouroboros(dir.path(), &["status", "--latest"]);
    assert!(
        stdout(&s).contains("breaks 1 test(s): util.test.js::helper adds one"),
        "{}",
        text(&s)
    );
}

#[test]
fn tests_that_failed_before_do_not_block_and_no_tests_is_recorded() {
    let (_m, model) = ones();
    let dir = js_project();
    // A baseline that already fails protects nothing: reported, not blocking.
    let o = refactor(
        dir.path(),
        &model,
        &["--test-cmd", "false {files}", "--dry-run"],
    );
    let r = record(dir.path(), &run_id(&o));
    assert_eq!(
        units(&r)[0]["tests"],
        "untested (none passed before)",
        "{}",
        text(&o)
    );
    assert_ne!(units(&r)[0]["status"], "rejected: breaks tests");
    let tests = checks(&r, "tests");
    assert_eq!(tests.len(), 1);
    assert!(tests[0]["details"]
        .as_str()
        .unwrap()
        .contains("0 passed, 1 failed"));

    let o = refactor(dir.path(), &model, &["--no-tests", "--dry-run"]);
    let r = record(dir.path(), &run_id(&o));
    assert_eq!(units(&r)[0]["tests"], "off (--no-tests)");
    assert!(r["refactor"]["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with("--no-tests"));
    assert!(checks(&r, "tests").is_empty());
    assert!(text(&o).contains("warning: --no-tests"), "{}", text(&o));
}

#[test]
fn a_missing_test_command_is_an_error_and_touches_nothing() {
    let (_m, model) = ones();
    let dir = js_project();
    let before = tree(dir.path());
    let o = refactor(
        dir.path(),
        &model,
        &[
            "--test-cmd",
            "no-such-test-runner-xyz {files}",
            "--auto-apply",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no-such-test-runner-xyz"), "{}", text(&o));
    assert!(text(&o).contains("was not found"), "{}", text(&o));
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn a_hang_is_killed_at_the_limit_and_files_tests_write_stay_in_the_copy() {
    let (_m, model) = ones();
    let dir = js_project();
    let before = tree(dir.path());
    // It passes on the original file, hangs on a rewrite, and litters its folder either way.
    let cmd = "touch made-by-tests; rm -f util.test.js; grep -q 'a + 1' util.js || sleep 60";
    let started = Instant::now();
    let o = refactor(
        dir.path(),
        &model,
        &[
            "--test-cmd",
            cmd,
            "--test-timeout",
            "2",
            "--auto-apply",
            "--max-risk",
            "1.0",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the hang was not cut short"
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = record(dir.path(), &run_id(&o));
    assert_eq!(units(&r)[0]["status"], "rejected: breaks tests");
    let unit_check = checks(&r, "tests").into_iter().nth(1).unwrap().clone();
    assert!(
        unit_check["output_tail"]
            .as_str()
            .unwrap()
            .contains("timed out after 2 s"),
        "{unit_check}"
    );
    assert_eq!(tree(dir.path()), before);
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_tests_run_removes_the_scratch_copy() {
    let (_m, model) = ones();
    let dir = js_project();
    let tmp = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ouroboros"))
        .args([
            "refactor",
            "x",
            "-t",
            "util.js",
            "-f",
            "helper",
            "--model",
            &model,
            "--test-cmd",
            "sleep 60",
        ])
        .current_dir(dir.path())
        .env("TMPDIR", tmp.path())
        .env_remove("OUROBOROS_MODEL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let scratch = || -> Vec<PathBuf> {
        fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("ouroboros-tests-"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while scratch().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!scratch().is_empty(), "the tests never started");
    std::thread::sleep(Duration::from_millis(300));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert!(scratch().is_empty(), "the scratch copy was left behind");
    assert_eq!(
        fs::read_to_string(dir.path().join("util.js")).unwrap(),
        UTIL
    );
}

fn shapes(conftest: bool) -> tempfile::TempDir {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/behaviour/shapes");
    let dir = support::project(&[]);
    for f in ["shapes.py", "test_shapes.py"] {
        fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    if conftest {
        fs::write(dir.path().join("conftest.py"), "").unwrap();
    }
    dir
}

fn pytest_python() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pytest-venv/bin/python");
    assert!(
        p.is_file(),
        "no pytest at {}: install it once with `scripts/pytest-venv.sh install` (or run .ci/run)",
        p.display()
    );
    p.display().to_string()
}

/// The bundled model's bodies for these functions break their tests (most are `pass`); the
/// suite must still pass afterwards, whatever was asked.
fn python_suite_gates_the_change(conftest: bool, runner: &str) {
    let dir = shapes(conftest);
    let before = tree(dir.path());
    let python = pytest_python();
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Add type hints",
            "-t",
            "shapes.py",
            "-f",
            "rectangle_area",
            "--auto-apply",
            "--max-risk",
            "1.0",
            "--max-retries",
            "1",
            "--test-python",
            &python,
        ],
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let r = record(dir.path(), &run_id(&o));
    let tests = checks(&r, "tests");
    assert!(
        tests[0]["command"].as_str().unwrap().contains(runner),
        "{:?}",
        tests[0]
    );
    assert!(tests[0]["details"]
        .as_str()
        .unwrap()
        .starts_with("baseline: 3 passed"));
    let u = &units(&r)[0];
    if u["status"] == "applied" {
        assert_eq!(u["tests"], "passed 3");
    } else {
        assert_eq!(tree(dir.path()), before, "{}", text(&o));
    }
    let suite = Command::new(&python)
        .args(["-m", "unittest", "-q", "test_shapes"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        suite.status.success(),
        "{}",
        String::from_utf8_lossy(&suite.stderr)
    );
}

#[test]
fn python_suites_gate_changes_with_unittest() {
    python_suite_gates_the_change(false, "unittest_shim.py");
}

#[test]
fn python_suites_gate_changes_with_pytest() {
    python_suite_gates_the_change(true, "-m pytest");
}

/// The quick start's main job with `--auto-apply`: whatever the bundled model writes, no
/// placeholder body reaches disk.
#[test]
fn auto_apply_writes_no_placeholder() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/inventory");
    let dir = support::project(&[]);
    support::copy_tree(&example, dir.path());
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Add caching to the stock lookups",
            "-t",
            "inventory/store.py",
            "--auto-apply",
            "--max-risk",
            "1.0",
        ],
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let r = record(dir.path(), &run_id(&o));
    let placeholders: Vec<&serde_json::Value> = units(&r)
        .iter()
        .filter(|u| {
            u["semantic"].as_array().is_some_and(|f| {
                f.iter()
                    .any(|f| f.as_str().unwrap().contains("placeholder"))
            })
        })
        .collect();
    assert!(
        !placeholders.is_empty(),
        "the bundled model wrote no placeholder this time"
    );
    for u in placeholders {
        assert_eq!(u["status"], "needs review: placeholder", "{u}");
    }
    assert!(r["file_modifications"].as_array().unwrap().is_empty());
}
