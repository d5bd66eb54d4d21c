//! The commands as a user runs them: exit codes, messages, JSON shapes, and the
//! apply → status → list-runs → rollback round trip.

mod support;

use std::fs;
use std::process::{Command, Output, Stdio};

use support::{ouroboros, stdout};

/// The closing "checked N files in X.XXs" line has a time in it; keep the counts only.
fn without_timing(text: &str) -> String {
    text.lines()
        .map(|l| match (l.find(" in "), l.find("s: ")) {
            (Some(a), Some(b)) if l.starts_with("checked ") && a < b => {
                format!("{}{}", &l[..a], &l[b + 1..])
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn project() -> tempfile::TempDir {
    support::project(&[
        ("src/ok.py", "def add(a, b):\n    return a + b\n"),
        ("src/ok.ts", "export const n: number = 1;\n"),
        ("src/bad.js", "function f() {\n  return [1, 2;\n}\n"),
        ("src/notes.txt", "not code"),
        ("build/gen.py", "def (\n"),
        (".gitignore", "build/\n"),
    ])
}

#[test]
fn validate_reports_invalid_files_with_carets() {
    let p = project();
    let out = ouroboros(p.path(), &["validate", "src"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(without_timing(&stdout(&out)));
}

#[test]
fn validate_exit_codes() {
    let p = project();
    assert_eq!(
        ouroboros(p.path(), &["validate", "src/ok.py", "src/ok.ts"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        ouroboros(p.path(), &["validate", "src/bad.js"])
            .status
            .code(),
        Some(1)
    );
    let missing = ouroboros(p.path(), &["validate", "src/ok.py", "nope.py"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stdout(&missing).contains("nope.py: error: no such file or directory"));
    let usage = ouroboros(p.path(), &["validate"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn directories_respect_gitignore() {
    let p = project();
    let out = ouroboros(p.path(), &["validate", "--json", "."]);
    let text = stdout(&out);
    assert!(!text.contains("gen.py"), "{text}");
    assert!(text.contains("ok.py") && text.contains("bad.js"));
    assert!(!text.contains("notes.txt"));
}

#[test]
fn json_has_one_object_per_file() {
    let p = project();
    let out = ouroboros(p.path(), &["validate", "--json", "src/bad.js", "src/ok.py"]);
    let objects: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2);
    let bad = &objects[0];
    assert_eq!(bad["path"], "src/bad.js");
    assert_eq!(bad["language"], "javascript");
    assert_eq!(bad["valid"], false);
    let e = &bad["errors"][0];
    for key in ["line", "column", "layer", "message"] {
        assert!(e.get(key).is_some(), "{key}");
    }
    assert!(bad["parse_us"].is_u64());
    assert_eq!(objects[1]["valid"], true);
}

#[test]
fn bad_input_gets_clear_messages() {
    let p = project();
    let root = p.path();
    fs::write(root.join("bin.py"), b"x = 1\0\x01\x02").unwrap();
    fs::write(root.join("latin1.py"), b"name = '\xe9'\n").unwrap();
    fs::write(root.join("empty.ts"), b"").unwrap();
    fs::write(root.join("big.py"), "x = 1\n".repeat(1_750_000)).unwrap();
    let cases = [
        ("bin.py", "binary file"),
        ("latin1.py", "not valid UTF-8"),
        ("src/notes.txt", "unknown file type"),
        ("big.py", "file is 10.5 MB, over the 8.4 MB limit"),
    ];
    for (file, expected) in cases {
        let out = ouroboros(root, &["validate", file]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        assert!(stdout(&out).contains(expected), "{file}: {}", stdout(&out));
    }
    let empty = ouroboros(root, &["validate", "-v", "empty.ts"]);
    assert_eq!(empty.status.code(), Some(0));
    assert!(stdout(&empty).contains("empty file"));
    let lowered = ouroboros(root, &["validate", "--max-file-size", "10", "src/ok.py"]);
    assert_eq!(lowered.status.code(), Some(2));
    assert!(stdout(&lowered).contains("--max-file-size"));
}

#[test]
fn stdin_needs_a_language() {
    let p = project();
    let run = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ouroboros"))
            .args(args)
            .current_dir(p.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        // The command may exit before reading stdin (a usage error); a broken pipe is fine then.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        child.wait_with_output().unwrap()
    };
    let no_lang = run(&["validate", "-"], "x = 1\n");
    assert_eq!(no_lang.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_lang.stderr).contains("--lang"));
    assert_eq!(
        run(&["validate", "--lang", "python", "-"], "x = 1\n")
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["validate", "--lang", "tsx", "-"], "const a = <b>;\n")
            .status
            .code(),
        Some(1)
    );
    let bad_lang = run(&["validate", "--lang", "cobol", "-"], "");
    assert_eq!(bad_lang.status.code(), Some(2));
}

#[test]
fn apply_status_list_and_rollback_round_trip() {
    let p = project();
    let root = p.path();
    let original = fs::read(root.join("src/ok.py")).unwrap();
    fs::write(
        root.join("new.py"),
        "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n",
    )
    .unwrap();
    fs::write(root.join("broken.py"), "def add(a, b:\n    return a + b\n").unwrap();

    let rejected = ouroboros(root, &["apply", "src/ok.py", "--from", "broken.py"]);
    assert_eq!(rejected.status.code(), Some(1));
    assert!(stdout(&rejected).contains("invalid: not written"));
    assert_eq!(fs::read(root.join("src/ok.py")).unwrap(), original);

    let dry = ouroboros(
        root,
        &["apply", "src/ok.py", "--from", "new.py", "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(0));
    assert_eq!(fs::read(root.join("src/ok.py")).unwrap(), original);

    let applied = ouroboros(
        root,
        &[
            "apply",
            "src/ok.py",
            "--from",
            "new.py",
            "--task",
            "Add docstring",
        ],
    );
    assert_eq!(applied.status.code(), Some(0), "{}", stdout(&applied));
    assert!(fs::read_to_string(root.join("src/ok.py"))
        .unwrap()
        .contains("Sum."));

    let list = ouroboros(root, &["list-runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(runs[0]["task"], "Add docstring");
    assert_eq!(runs[0]["success"], true);
    assert_eq!(runs[0]["files_modified"], 1);
    assert_eq!(runs[1]["success"], false);
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();

    let status = stdout(&ouroboros(root, &["status", "--latest"]));
    assert!(
        status.contains(&run_id)
            && status.contains("syntax_validation")
            && status.contains("src/ok.py")
    );
    assert!(status.contains("artifact_metadata.json"));

    // A corrupt record is reported and skipped, never fatal.
    let corrupt = root.join(".ouroboros/runs/gen_20000101_000000_000000");
    fs::create_dir_all(&corrupt).unwrap();
    fs::write(corrupt.join("artifact_metadata.json"), "{not json").unwrap();
    let listed = ouroboros(root, &["list-runs"]);
    assert_eq!(listed.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("skipping run gen_20000101_000000_000000")
    );

    // A file edited after the run is not clobbered without --force.
    let edited = fs::read(root.join("src/ok.py")).unwrap();
    fs::write(root.join("src/ok.py"), "# edited later\n").unwrap();
    let refused = ouroboros(root, &["rollback", &run_id]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    fs::write(root.join("src/ok.py"), &edited).unwrap();

    let rolled = ouroboros(root, &["rollback", &run_id]);
    assert_eq!(rolled.status.code(), Some(0));
    assert_eq!(fs::read(root.join("src/ok.py")).unwrap(), original);

    let unknown = ouroboros(root, &["rollback", "gen_20000101_000000_ffffff"]);
    assert_eq!(unknown.status.code(), Some(2));
    let not_an_id = ouroboros(root, &["status", "--run-id", "../../etc"]);
    assert_eq!(not_an_id.status.code(), Some(2));
}

#[test]
fn apply_refuses_paths_outside_the_root() {
    let p = project();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("x.py"), "x = 1\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("x.py"), p.path().join("src/link.py")).unwrap();
    fs::write(p.path().join("new.py"), "x = 2\n").unwrap();
    let out = ouroboros(p.path(), &["apply", "src/link.py", "--from", "new.py"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        fs::read_to_string(outside.path().join("x.py")).unwrap(),
        "x = 1\n"
    );
}

#[path = "support/bolt.rs"]
mod bolt;

/// `index` then `deps --json`, on the embedded store and on a Bolt server, give the same answer;
/// the password never shows up in any output.
#[test]
fn index_and_deps_on_both_stores() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("app")).unwrap();
    fs::write(root.join("app/__init__.py"), "").unwrap();
    fs::write(
        root.join("app/core.py"),
        "LIMIT = 3\n\ndef clean(s):\n    return s.strip()[:LIMIT]\n\ndef run(x):\n    return clean(x)\n",
    )
    .unwrap();
    let server = &bolt::server().config;
    let _turn = bolt::turn();
    let database = server.database.clone().unwrap_or_default();
    let bolt_args = |cmd: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(["--graph-uri".into(), server.uri.clone()]);
        if !database.is_empty() {
            v.extend(["--graph-database".into(), database.clone()]);
        }
        v
    };
    let run = |args: Vec<String>, bolt: bool| -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ouroboros"));
        c.args(&args).current_dir(root).stdin(Stdio::null());
        if bolt {
            c.env("OUROBOROS_NEO4J_USER", &server.user)
                .env("OUROBOROS_NEO4J_PASSWORD", &server.password);
        }
        c.output().unwrap()
    };
    let mut answers = Vec::new();
    for bolt in [false, true] {
        let with = |cmd: &[&str]| {
            if bolt {
                bolt_args(cmd)
            } else {
                cmd.iter().map(|s| s.to_string()).collect()
            }
        };
        let idx = run(with(&["index", "."]), bolt);
        assert!(
            idx.status.success(),
            "{}",
            String::from_utf8_lossy(&idx.stderr)
        );
        let deps = run(with(&["deps", "app.core.clean", "--json"]), bolt);
        assert!(
            deps.status.success(),
            "{}",
            String::from_utf8_lossy(&deps.stderr)
        );
        for o in [&idx, &deps] {
            let all = format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr));
            assert!(
                !all.contains(&server.password),
                "the password leaked: {all}"
            );
        }
        answers.push(serde_json::from_slice::<serde_json::Value>(&deps.stdout).unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0]["callers"], serde_json::json!(["app.core.run"]));
    assert_eq!(answers[0]["uses"], serde_json::json!(["app.core.LIMIT"]));
    assert_eq!(answers[0]["blast_radius"], 1);

    // An unreachable server is an error that names it, not a hang.
    let down = run(
        vec![
            "index".into(),
            ".".into(),
            "--graph-uri".into(),
            "bolt://127.0.0.1:1".into(),
            "--graph-connect-timeout".into(),
            "5".into(),
        ],
        true,
    );
    assert_eq!(down.status.code(), Some(2));
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(err.contains("cannot reach bolt://127.0.0.1:1"), "{err}");
    // No credentials: the variable to set is named.
    let anonymous = Command::new(env!("CARGO_BIN_EXE_ouroboros"))
        .args(["index", ".", "--graph-uri", &server.uri])
        .env_remove("OUROBOROS_NEO4J_PASSWORD")
        .current_dir(root)
        .output()
        .unwrap();
    assert_eq!(anonymous.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("OUROBOROS_NEO4J_PASSWORD"));
}

const TINY_LLADA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/diffusion/tiny-llada"
);

fn jsonl(o: &Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Both evaluations run end to end on the random-weight fixture: one row per varied setting,
/// rates within [0, 1], and the function counts the inputs imply.
#[test]
fn bench_infill_and_compression_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir_all(r.join("pkg")).unwrap();
    fs::write(
        r.join("pkg/calc.py"),
        "def helper(values):\n    \"\"\"Sum of squares.\"\"\"\n    total = 0\n    for v in values:\n        total += v * v\n    return total\n\n\ndef report(values):\n    s = helper(values)\n    print(s)\n    return s\n\n\ndef one(): return 1\n",
    )
    .unwrap();
    let rows = jsonl(&ouroboros(
        r,
        &[
            "bench",
            "--eval",
            "infill",
            "--model",
            TINY_LLADA,
            "--files",
            "pkg",
            "--infill-steps",
            "4,span",
            "--max-retries",
            "1",
            "-o",
            "jsonl",
        ],
    ));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["steps"], "4");
    assert_eq!(rows[1]["steps"], "span");
    for row in &rows {
        // helper and report; `one` has no body line of its own.
        assert_eq!(row["functions"], 2);
        for k in ["gate_pass", "gate_pass_healed", "token_accuracy"] {
            let v = row[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} = {v}");
        }
        assert!(row["gate_pass_healed"].as_f64() >= row["gate_pass"].as_f64());
    }

    let rows = jsonl(&ouroboros(
        r,
        &[
            "bench",
            "--eval",
            "compression",
            "--model",
            TINY_LLADA,
            "--root",
            ".",
            "--min-context",
            "1",
            "--budgets",
            "50,100",
            "--scorer",
            "graph,signatures",
            "-o",
            "jsonl",
        ],
    ));
    assert_eq!(rows.len(), 4);
    let full = rows
        .iter()
        .find(|r| r["scorer"] == "graph" && r["budget_pct"] == 100)
        .unwrap();
    // report calls helper; with the whole budget nothing is dropped.
    assert_eq!(full["functions"], 1);
    assert_eq!(full["recall_whole_mean"], 1.0);
    assert_eq!(full["ratio_mean"], 1.0);

    let bad = ouroboros(r, &["bench", "--eval", "infill", "--model", TINY_LLADA]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--files"));
}
