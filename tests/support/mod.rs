//! What the integration tests share: running the binary as a user would (no inherited model,
//! key or offline setting unless a test sets one), reading its output and run records, and
//! making small projects in temp directories.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use candle_core::{Device, Tensor};

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

/// Token ids of the tiny LLaDA fixture's tokenizer.
pub const OPEN_PAREN: usize = 10;
pub const SEMICOLON: usize = 29;
pub const ONE: usize = 19;

/// A copy of the tiny LLaDA fixture rewired so that `token_id` wins at every position: the
/// final norm passes only hidden dimension 0, every embedding gets a large positive value in
/// dimension 0 (so it stays positive through two small random blocks), and the output head
/// reads dimension 0 only for the chosen token. A model that always writes `(` writes code
/// that never parses; one that always writes `1` writes JavaScript bodies that parse.
pub fn always_writes(token_id: usize, dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "tokenizer.json", "generation_config.json"] {
        fs::copy(Path::new(TINY_LLADA).join(f), dir.join(f)).unwrap();
    }
    let mut w: HashMap<String, Tensor> = candle_core::safetensors::load(
        Path::new(TINY_LLADA).join("model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let get = |w: &HashMap<String, Tensor>, k: &str| -> (Vec<f32>, Vec<usize>) {
        let t = &w[k];
        (
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            t.dims().to_vec(),
        )
    };
    let (mut norm, shape) = get(&w, "model.transformer.ln_f.weight");
    norm.iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = if i == 0 { 1.0 } else { 0.0 });
    w.insert(
        "model.transformer.ln_f.weight".into(),
        Tensor::from_vec(norm, shape, &Device::Cpu).unwrap(),
    );
    let (mut emb, shape) = get(&w, "model.transformer.wte.weight");
    let d = shape[1];
    for row in emb.chunks_mut(d) {
        row[0] = 10.0;
    }
    w.insert(
        "model.transformer.wte.weight".into(),
        Tensor::from_vec(emb, shape, &Device::Cpu).unwrap(),
    );
    let (mut head, shape) = get(&w, "model.transformer.ff_out.weight");
    let d = shape[1];
    for (r, row) in head.chunks_mut(d).enumerate() {
        row.iter_mut().for_each(|v| *v = 0.0);
        if r == token_id {
            row[0] = 50.0;
        }
    }
    w.insert(
        "model.transformer.ff_out.weight".into(),
        Tensor::from_vec(head, shape, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&w, dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}
