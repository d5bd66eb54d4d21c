//! `ouroboros refactor` and `replay` end to end, with real checkpoints whose output is known:
//! the tiny LLaDA fixture rewired so that one token wins at every position. A model that always
//! writes `(` produces code that never parses; one that always writes `;` produces JavaScript
//! bodies that do (empty statements). The rewiring (made here, at test time, from the fixture):
//! the final norm passes only hidden dimension 0, every embedding gets a large positive value in
//! dimension 0 (so it stays positive through two small random blocks), and the output head reads
//! dimension 0 only for the chosen token.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use support::{copy_tree, ouroboros, record, run_id, text, tree, TINY_LLADA as TINY};

use support::{always_writes, ONE, OPEN_PAREN, SEMICOLON};

const PY: &str = "def total(items):\n    s = 0\n    for i in items:\n        s += i\n    return s\n\n\ndef mean(items):\n    return total(items) / len(items)\n";
const JS: &str = "function helper(a) {\n  const b = a + 1;\n  return b;\n}\n\nfunction main() {\n  return helper(2);\n}\n";

fn project() -> tempfile::TempDir {
    support::project(&[("stats.py", PY), ("util.js", JS)])
}

#[test]
fn output_that_fails_the_gate_is_never_written_in_safe_mode() {
    let models = tempfile::tempdir().unwrap();
    let broken = always_writes(OPEN_PAREN, &models.path().join("paren"));
    let dir = project();
    let before = tree(dir.path());
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Speed it up",
            "-t",
            "stats.py",
            "--model",
            broken.to_str().unwrap(),
            "--auto-apply",
            "--max-risk",
            "1.0",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("invalid: not written"), "{}", text(&o));
    assert_eq!(tree(dir.path()), before);
    let r = record(dir.path(), &run_id(&o));
    assert_eq!(r["success"], false);
    assert!(r["file_modifications"].as_array().unwrap().is_empty());
    let actions: Vec<&str> = r["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["unit"] == "stats.total")
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["generate", "repair", "regenerate", "repair"]);
    let repair = &r["attempts"][1];
    assert!(repair["remasked_tokens"].as_u64().unwrap() > 0);
    assert!(!repair["errors"].as_array().unwrap().is_empty());
    let units = r["refactor"]["units"].as_array().unwrap();
    assert!(units.iter().all(|u| u["status"] == "invalid: not written"));

    // Without safe mode the verdict is recorded, and the patch goes through.
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Speed it up",
            "-t",
            "stats.py",
            "-f",
            "total",
            "--model",
            broken.to_str().unwrap(),
            "--no-safe-mode",
            "--auto-apply",
            "--max-risk",
            "1.0",
            "--max-retries",
            "0",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(fs::read_to_string(dir.path().join("stats.py"))
        .unwrap()
        .contains("(((("));
    let r = record(dir.path(), &run_id(&o));
    assert_eq!(r["safety_checks"][0]["passed"], false);
    assert_eq!(r["file_modifications"].as_array().unwrap().len(), 1);
}

#[test]
fn valid_patches_apply_below_max_risk_and_roll_back() {
    let models = tempfile::tempdir().unwrap();
    // Bodies of `1111…`: JavaScript that parses and is no placeholder (`;;;;` would be one).
    let ones = always_writes(ONE, &models.path().join("ones"));
    let ones = ones.to_str().unwrap();
    let dir = project();

    // Over the risk limit: listed, not written.
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Simplify",
            "-t",
            "util.js",
            "--model",
            ones,
            "--auto-apply",
            "--max-risk",
            "0",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("needs review"), "{}", text(&o));
    assert_eq!(fs::read_to_string(dir.path().join("util.js")).unwrap(), JS);

    // No test reaches these units, and they lost their return values: that costs risk (0.15
    // each), so the limit is raised to let them through.
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Simplify",
            "-t",
            "util.js",
            "--model",
            ones,
            "--auto-apply",
            "--max-risk",
            "0.5",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let patched = fs::read_to_string(dir.path().join("util.js")).unwrap();
    assert!(
        patched.starts_with("function helper(a) {\n1111"),
        "{patched}"
    );
    assert!(patched.contains("function main() {\n1111"), "{patched}");
    let id = run_id(&o);
    let r = record(dir.path(), &id);
    assert_eq!(r["success"], true);
    let units = r["refactor"]["units"].as_array().unwrap();
    assert_eq!(units.len(), 2);
    // Callees first.
    assert_eq!(units[0]["symbol"], "util.js:helper");
    for u in units {
        assert_eq!(u["status"], "applied");
        assert!(u["risk"].as_f64().unwrap() <= 0.5);
        assert_eq!(u["retries"], 0);
        assert_eq!(u["tests"], "untested");
        assert!(
            u["semantic"][0].as_str().unwrap().contains("lost return"),
            "{u}"
        );
    }
    let generate: Vec<&serde_json::Value> = r["models_used"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["phase"] == "generator")
        .collect();
    assert_eq!(generate.len(), 2);
    assert!(generate[0]["weights_sha256"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(generate[0]["step_schedule"].as_array().is_some());
    let compress = r["models_used"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["phase"] == "compressor")
        .unwrap();
    assert!(compress["compression_ratio"].as_f64().is_some());

    // Replay works after the change was applied (the inputs come from the backups).
    let o = ouroboros(dir.path(), &["replay", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("every generated unit is byte-identical"));

    let o = ouroboros(dir.path(), &["rollback", &id]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read_to_string(dir.path().join("util.js")).unwrap(), JS);
}

#[test]
fn a_batch_of_first_drafts_changes_no_unit() {
    let dir = project();
    let run = |batch: &str| {
        let o = ouroboros(
            dir.path(),
            &[
                "refactor",
                "Tidy",
                "-t",
                "stats.py",
                "-t",
                "util.js",
                "--model",
                TINY,
                "--dry-run",
                "--steps",
                "8",
                "--batch",
                batch,
            ],
        );
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        let r = record(dir.path(), &run_id(&o));
        // refactor's default cache, recorded so that replay uses it.
        let sampling = &r["refactor"]["request"]["options"]["build"]["sampling"];
        assert_eq!(sampling["cache"], "dual");
        r["refactor"]["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let symbol = u["symbol"].as_str().unwrap().to_string();
                let body = u["body_sha256"].as_str().unwrap().to_string();
                (symbol, body, u["batched"] == true)
            })
            .collect::<Vec<_>>()
    };
    let alone = run("1");
    let batched = run("4");
    let bodies = |units: &[(String, String, bool)]| -> Vec<(String, String)> {
        units
            .iter()
            .map(|(s, b, _)| (s.clone(), b.clone()))
            .collect()
    };
    assert_eq!(bodies(&alone), bodies(&batched));
    assert!(alone.iter().all(|u| !u.2), "{alone:?}");
    // Each file's first unit is batched with the other file's; the second units of the two
    // files wait for the first, so at least two first drafts came from a batch.
    let n = batched.iter().filter(|u| u.2).count();
    assert!(n >= 2, "{batched:?}");
    let o = ouroboros(
        dir.path(),
        &["refactor", "Tidy", "-t", "stats.py", "--batch", "0"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--batch"), "{}", text(&o));
}

#[test]
fn dry_runs_change_nothing_and_replay_is_byte_identical() {
    let dir = project();
    let before = tree(dir.path());
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Tidy",
            "-t",
            "stats.py",
            "-t",
            "util.js",
            "--model",
            TINY,
            "--dry-run",
            "--steps",
            "8",
        ],
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    assert!(text(&o).contains("dry run: nothing written"));
    assert_eq!(tree(dir.path()), before);
    let id = run_id(&o);

    let o = ouroboros(dir.path(), &["replay", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(text(&o).matches("identical ").count(), 4, "{}", text(&o));

    // An input changed since the run: refused, with the file named.
    fs::write(dir.path().join("util.js"), format!("{JS}\n// edited\n")).unwrap();
    let o = ouroboros(dir.path(), &["replay", &id]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("util.js changed since the run"),
        "{}",
        text(&o)
    );
    fs::write(dir.path().join("util.js"), JS).unwrap();

    // Other weights under the recorded model path: refused.
    let models = tempfile::tempdir().unwrap();
    let copy = models.path().join("tiny");
    fs::create_dir_all(&copy).unwrap();
    for f in [
        "config.json",
        "tokenizer.json",
        "generation_config.json",
        "model.safetensors",
    ] {
        fs::copy(Path::new(TINY).join(f), copy.join(f)).unwrap();
    }
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Tidy",
            "-t",
            "util.js",
            "-f",
            "main",
            "--model",
            copy.to_str().unwrap(),
            "--dry-run",
        ],
    );
    let id = run_id(&o);
    always_writes(SEMICOLON, &copy);
    let o = ouroboros(dir.path(), &["replay", &id]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("hash to"), "{}", text(&o));
}

#[test]
fn bad_input_is_a_usage_error() {
    let dir = project();
    fs::write(dir.path().join("notes.txt"), "x").unwrap();
    for (args, needle) in [
        (
            vec!["refactor", "x", "-t", "notes.txt", "--model", TINY],
            "notes.txt",
        ),
        (
            vec!["refactor", "x", "-t", "missing.py", "--model", TINY],
            "missing.py",
        ),
        (
            vec![
                "refactor",
                "x",
                "-t",
                "stats.py",
                "--model",
                TINY,
                "--max-risk",
                "2",
            ],
            "--max-risk",
        ),
        (
            vec![
                "refactor", "x", "-t", "stats.py", "--model", TINY, "-f", "nope",
            ],
            "nope",
        ),
        (
            vec!["replay", "gen_20990101_000000_abcdef"],
            "gen_20990101_000000_abcdef",
        ),
    ] {
        let o = ouroboros(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_run_with_a_failed_record_and_whole_files() {
    let dir = project();
    let before = tree(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ouroboros"))
        .args([
            "refactor",
            "Tidy",
            "-t",
            "stats.py",
            "-t",
            "util.js",
            "--model",
            TINY,
            "--auto-apply",
            "--max-risk",
            "1",
            "--no-safe-mode",
            "-c",
            "quality",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run has started (its directory exists), then stop it.
    let runs = dir.path().join(".ouroboros/runs");
    while !runs.is_dir() || fs::read_dir(&runs).unwrap().next().is_none() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("finished before it could be interrupted: {status}");
        }
        std::thread::yield_now();
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let id = fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    let r = record(dir.path(), &id);
    assert_eq!(r["success"], false);
    assert_eq!(r["error"], "interrupted");
    assert_eq!(tree(dir.path()), before);
}

/// The README's main job on the bundled model, cut to one unit and a few steps: no `--model`,
/// and the record names the bundled weights.
#[test]
fn the_bundled_model_is_the_default() {
    let bundled = ouroboros::models::bundled_dir().expect("models/ouro-code-tiny is exported");
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/inventory");
    for rel in [
        "inventory/__init__.py",
        "inventory/store.py",
        "inventory/report.py",
        "web.ts",
    ] {
        let to = dir.path().join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(src.join(rel), &to).unwrap();
    }
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    let before = tree(dir.path());
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Add caching",
            "-t",
            "inventory/store.py",
            "-f",
            "restock",
            "--steps",
            "8",
            "--dry-run",
        ],
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    assert_eq!(tree(dir.path()), before);
    let r = record(dir.path(), &run_id(&o));
    let generate = r["models_used"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["phase"] == "generator")
        .unwrap();
    assert_eq!(generate["model_name"], "ouro-code-tiny");
    let weights = fs::read(bundled.join("model.safetensors")).unwrap();
    assert_eq!(
        generate["weights_sha256"],
        ouroboros::hash::sha256_tagged(&weights)
    );
    let list = ouroboros(dir.path(), &["models", "list"]);
    assert!(text(&list).contains("ouro-code-tiny (bundled, default)"));
}

fn with_chat_template(model: &Path) {
    fs::write(
        model.join("tokenizer_config.json"),
        r#"{"chat_template": "{% for m in messages %}<|user|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}", "eos_token": "<|endoftext|>"}"#,
    )
    .unwrap();
}

/// Instruct mode is chosen for checkpoints with a chat template. An answer that does not define
/// the unit (here `;;;;`, which the gate alone would pass as a deletion) is never accepted.
#[test]
fn instruct_mode_refuses_answers_that_drop_the_unit() {
    let models = tempfile::tempdir().unwrap();
    let semi = always_writes(SEMICOLON, &models.path().join("semi-chat"));
    with_chat_template(&semi);
    let dir = project();
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Simplify",
            "-t",
            "util.js",
            "-f",
            "helper",
            "--model",
            semi.to_str().unwrap(),
            "--auto-apply",
            "--max-risk",
            "1",
            "--max-retries",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(fs::read_to_string(dir.path().join("util.js")).unwrap(), JS);
    let r = record(dir.path(), &run_id(&o));
    let generate = r["models_used"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["phase"] == "generator")
        .unwrap();
    assert!(generate["purpose"].as_str().unwrap().contains("(instruct)"));
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(attempts[0]["errors"][0]
        .as_str()
        .unwrap()
        .contains("does not define util.js:helper"));

    // A base checkpoint has no template: asking for instruct mode is a usage error.
    let o = ouroboros(
        dir.path(),
        &[
            "refactor", "Simplify", "-t", "util.js", "--model", TINY, "--mode", "instruct",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("chat_template"), "{}", text(&o));
}

/// Records written before the request became a typed `Recorded` (the command's own argument
/// struct, phases named `compress` and `generate`) still read, show in `status` under the seed's
/// phase names, and still replay byte for byte.
#[test]
fn records_from_before_the_typed_request_still_replay() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records/v1");
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture.join("project"), dir.path());
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    copy_tree(&fixture.join("runs"), &dir.path().join(".ouroboros/runs"));
    for id in ["gen_20261202_003717_005e47", "gen_20261202_003732_b5767c"] {
        let o = ouroboros(dir.path(), &["replay", id]);
        assert_eq!(o.status.code(), Some(0), "{id}: {}", text(&o));
        assert!(text(&o).contains("every generated unit is byte-identical"));
        let status = ouroboros(dir.path(), &["status", "--run-id", id, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        let phases: Vec<&str> = v["models_used"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["phase"].as_str().unwrap())
            .collect();
        assert!(
            phases.contains(&"generator") && phases.contains(&"compressor"),
            "{phases:?}"
        );
    }
}

/// No secret reaches disk: not in the stored request, not in the saved diff, not in an error.
#[test]
fn secrets_stay_out_of_records_diffs_and_errors() {
    let models = tempfile::tempdir().unwrap();
    let ones = always_writes(ONE, &models.path().join("ones"));
    let key_line = "const key = \"AKIAIOSFODNN7EXAMPLE\";\n";
    let dir = support::project(&[("util.js", &format!("{key_line}{JS}"))]);
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Use password=hunter2 against https://bob:pa55word@example.com",
            "-t",
            "util.js",
            "-f",
            "helper",
            "--model",
            ones.to_str().unwrap(),
            "--no-tests",
        ],
    );
    let id = run_id(&o);
    let run_dir = dir.path().join(".ouroboros/runs").join(&id);
    let record = fs::read_to_string(run_dir.join("artifact_metadata.json")).unwrap();
    let diff = fs::read_to_string(run_dir.join("changes.diff")).unwrap();
    for secret in ["hunter2", "pa55word", "AKIAIOSFODNN7EXAMPLE"] {
        assert!(!record.contains(secret), "{secret} in the record");
        assert!(!diff.contains(secret), "{secret} in changes.diff");
    }
    assert!(record.contains("password=[REDACTED]"));
    let o = ouroboros(
        dir.path(),
        &[
            "plan",
            "x",
            "-t",
            "util.js",
            "--reasoner",
            "remote",
            "--reasoner-url",
            "http://alice:pw0rdXYZ@127.0.0.1:9/v1",
            "--reasoner-model",
            "m",
            "--reasoner-retries",
            "0",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!text(&o).contains("pw0rdXYZ"), "{}", text(&o));
}
