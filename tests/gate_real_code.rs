//! No false rejects on real code: a deterministic sample of whole files from this machine's
//! CPython standard library, each also judged by CPython itself (`compile()`), must get the
//! same verdict from the gate.

use std::path::{Path, PathBuf};
use std::process::Command;

use ouroboros::gate::{Gate, Language};

fn python_stdlib() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .expect("python3 is needed for this test (it is the reference compiler)");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn sample(stdlib: &Path, every: usize) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![stdlib.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            // Test suites keep deliberately broken files; site-packages is not the stdlib.
            if matches!(
                name.as_str(),
                "test" | "tests" | "site-packages" | "lib2to3" | "idlelib"
            ) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".py") {
                files.push(p);
            }
        }
    }
    files.sort();
    files.into_iter().step_by(every).collect()
}

/// CPython's verdict on each file, from one interpreter run.
fn cpython_accepts(files: &[PathBuf]) -> Vec<bool> {
    let script = "import sys\nfor p in sys.stdin.read().splitlines():\n    try:\n        compile(open(p, 'rb').read(), p, 'exec')\n        print('ok')\n    except (SyntaxError, ValueError):\n        print('bad')\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let list: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "ok")
        .collect()
}

#[test]
fn cpython_stdlib_sample_is_judged_like_cpython() {
    let stdlib = python_stdlib();
    let files = sample(&stdlib, 2);
    assert!(
        files.len() > 100,
        "too few stdlib files under {}",
        stdlib.display()
    );
    let verdicts = cpython_accepts(&files);
    assert_eq!(verdicts.len(), files.len());
    // The interpreter here is 3.11; judge with its grammar.
    let gate = Gate::new("3.11".parse().unwrap());
    let mut disagreements = Vec::new();
    let mut bytes = 0;
    for (path, cpython_ok) in files.iter().zip(verdicts) {
        let Ok(source) = std::fs::read_to_string(path) else {
            continue;
        };
        bytes += source.len();
        let report = gate.check(&source, Language::Python.default_kind());
        if report.is_valid != cpython_ok {
            disagreements.push(format!(
                "{}: cpython ok={cpython_ok}, gate: {}",
                path.display(),
                report.error_summary
            ));
        }
    }
    println!(
        "{} stdlib files, {:.1} MB, {} disagreements",
        files.len(),
        bytes as f64 / 1e6,
        disagreements.len()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
