//! What the integration tests share: running the binary as a user would (no inherited model,
//! key or offline setting unless a test sets one), reading its output and run records, and
//! making small projects in temp directories.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const TINY_LLADA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/diffusion/tiny-llada"
);
pub const TINY_DREAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/diffusion/tiny-dream"
);

/// `ouroboros ARGS` in `dir`, with stdin closed and these environment variables set.
pub fn ouroboros_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ouroboros"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("OUROBOROS_MODEL")
        .env_remove("OUROBOROS_API_KEY")
        .env_remove("OUROBOROS_OFFLINE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `ouroboros ARGS` in `dir`.
pub fn ouroboros(dir: &Path, args: &[&str]) -> Output {
    ouroboros_env(dir, args, &[])
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout then stderr, for assertion messages and searches.
pub fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// The `run: ID` line of a refactor.
pub fn run_id(o: &Output) -> String {
    stdout(o)
        .lines()
        .find_map(|l| l.strip_prefix("run: ").map(str::to_string))
        .unwrap_or_else(|| panic!("no run id in {}", text(o)))
}

/// A run's `artifact_metadata.json`.
pub fn record(root: &Path, id: &str) -> serde_json::Value {
    let p = root
        .join(".ouroboros/runs")
        .join(id)
        .join("artifact_metadata.json");
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// Write `text` to `root/rel`, making its folders.
pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A temp repository (it has a `.git` folder, so it is its own root) holding these files.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    dir
}

/// Every file outside `.ouroboros`, with its bytes.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.ends_with(".ouroboros") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Copy a folder recursively.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}
