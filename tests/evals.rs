//! The functional benchmarks from the command line: the sandbox scoring the data set's own
//! solutions, a model's rows in one schema, and bad input named.

mod support;

use std::path::Path;

use support::{ouroboros, text, TINY_LLADA};

fn have_python() -> bool {
    std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn reference_solutions_pass_in_the_sandbox() {
    if !have_python() {
        eprintln!("skipped: no python3 on PATH");
        return;
    }
    let out = ouroboros(
        Path::new("."),
        &[
            "bench",
            "humaneval",
            "--reference-solutions",
            "--problems",
            "12",
            "-o",
            "jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let row: serde_json::Value = serde_json::from_str(support::stdout(&out).trim()).unwrap();
    assert_eq!(row["problems"], 12);
    assert_eq!(row["passed"], 12, "{row}");
    assert_eq!(row["pass_at_1"], 1.0);
}

#[test]
fn a_model_sweep_gives_a_row_per_point_and_the_samples() {
    if !have_python() {
        eprintln!("skipped: no python3 on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("samples.jsonl");
    let out = ouroboros(
        Path::new("."),
        &[
            "bench",
            "--eval",
            "humaneval",
            "--model",
            TINY_LLADA,
            "--problems",
            "3",
            "--gen-length",
            "8",
            "--steps",
            "4,8",
            "--cache",
            "none,dual",
            "--block-length",
            "4",
            "-o",
            "jsonl",
            "--samples-out",
            samples.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<serde_json::Value> = support::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "steps 4,8 × cache none,dual");
    for r in &rows {
        assert_eq!(r["problems"], 3);
        assert_eq!(r["benchmark"], "humaneval");
        for key in [
            "pass_at_1",
            "pass_at_k",
            "tok_s",
            "forwards",
            "exec_ms",
            "commit",
        ] {
            assert!(r.get(key).is_some(), "{key} missing from {r}");
        }
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&samples)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12, "3 problems × 4 rows");
    assert_eq!(lines[0]["task_id"], "HumanEval/0");
    assert!(lines[0]["completion"].is_string());
}

#[test]
fn bad_eval_input_is_named() {
    let out = ouroboros(Path::new("."), &["bench", "--eval", "humaneva"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("humaneva") && t.contains("humaneval, humaneval-infill"),
        "{t}"
    );

    let out = ouroboros(
        Path::new("."),
        &[
            "bench",
            "humaneval",
            "--samples",
            "4",
            "--model",
            TINY_LLADA,
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("greedy samples are identical"),
        "{}",
        text(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("HumanEval.jsonl.gz");
    std::fs::write(&bad, b"not gzip").unwrap();
    let out = ouroboros(
        Path::new("."),
        &[
            "bench",
            "humaneval",
            "--reference-solutions",
            "--data",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains(bad.to_str().unwrap()), "{}", text(&out));

    let out = ouroboros_missing_data();
    assert!(!out.status.success());
    assert!(text(&out).contains("fetch.sh"), "{}", text(&out));
}

/// MBPP from an empty data folder.
fn ouroboros_missing_data() -> std::process::Output {
    let empty = tempfile::tempdir().unwrap();
    support::ouroboros_env(
        Path::new("."),
        &["bench", "mbpp", "--reference-solutions"],
        &[("OUROBOROS_EVAL_DATA", empty.path().to_str().unwrap())],
    )
}
