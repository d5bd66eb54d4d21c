//! `ouroboros replay RUN_ID`: run a recorded refactor again from its provenance alone and say
//! whether every generated unit comes out byte-identical.
//!
//! The run is repeated on a scratch copy of the repository's source files in which every file
//! the run read is put back as it was before the run (from the working tree when unchanged, else
//! from the run's backup), so a run that was applied can be replayed too. Nothing in the
//! repository is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};

use super::exit;
use super::gen_opts::{build_config, load_model};
use super::refactor;
use crate::gate::{Gate, EXTENSIONS};
use crate::librarian::{self, SqliteStore};
use crate::patch::sha256_tagged;
use crate::pipeline::{self, Progress, Reasoning, Settings};
use crate::provenance::{is_valid_run_id, RunStore};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub run_id: String,
    /// Repository root (default: the nearest folder with .ouroboros or .git).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

struct Quiet;
impl Progress for Quiet {
    fn phase(&self, _: &str, _: Option<&str>) {}
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = super::repo_root(args.root.as_deref())?;
    if !is_valid_run_id(&args.run_id) {
        bail!("{}: not a run id (see `ouroboros list-runs`)", args.run_id);
    }
    let store = RunStore::new(&root);
    let record = store.load(&args.run_id).map_err(|e| anyhow!(e))?;
    let Some(refactor_record) = &record.refactor else {
        bail!(
            "run {}: not a refactor run; only refactor runs can be replayed",
            args.run_id
        );
    };
    let mut recorded: refactor::Args = serde_json::from_value(refactor_record.request.clone())
        .with_context(|| format!("run {}: unreadable request", args.run_id))?;
    recorded.root = Some(root.clone());
    let recorded_weights = refactor_record.request["weights_sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // Every input as it was before the run, or a refusal naming the file that changed.
    let mut originals: HashMap<String, String> = HashMap::new();
    for (file, sha) in &refactor_record.inputs {
        let current = std::fs::read(root.join(file)).ok();
        let bytes = match current {
            Some(b) if &sha256_tagged(&b) == sha => b,
            _ => {
                let applied = record
                    .file_modifications
                    .iter()
                    .find(|m| &m.file_path == file && &m.original_hash == sha);
                let backup = applied.and_then(|m| std::fs::read(root.join(&m.backup_path)).ok());
                match backup {
                    Some(b) if &sha256_tagged(&b) == sha => b,
                    _ => bail!(
                        "refusing to replay run {}: {file} changed since the run (its sha256 was {sha})",
                        args.run_id
                    ),
                }
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| anyhow!("{file}: not valid UTF-8"))?;
        originals.insert(file.clone(), text);
    }

    let loaded = load_model(&recorded.model)?;
    let model = &loaded.model;
    let weights = crate::models::weights_sha256(&model.shards)?;
    if weights != recorded_weights {
        bail!(
            "refusing to replay run {}: the weights of {} hash to {weights}, the run used {recorded_weights}",
            args.run_id,
            model.dir.display()
        );
    }
    let cfg = build_config(&loaded, &recorded.sampling, Some(64), Some(64))?;
    let mode = refactor::resolve_mode(recorded.mode, model)?;
    let steps = super::gen_opts::step_rule(&recorded.sampling);
    let targets: Vec<String> = refactor_record.request["targets"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    let scratch = tempfile::tempdir()?;
    copy_sources(&root, scratch.path())?;
    for (file, text) in &originals {
        let p = scratch.path().join(file);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)?;
    }
    let mut graph = SqliteStore::open(&librarian::default_db(scratch.path()))?;
    let settings = Settings {
        task: &record.issue_description,
        targets: &targets,
        functions: &recorded.functions,
        model,
        weights_sha256: &weights,
        mode,
        cfg: &cfg,
        steps,
        gen_length: recorded.gen_length,
        block_length: recorded.block_length,
        max_retries: recorded.max_retries,
        safe_mode: !recorded.no_safe_mode,
        scorer: recorded.scorer,
        scorer_model: recorded.scorer_model.as_deref(),
        budget: recorded.budget,
        gate: Gate::new(recorded.python_version),
        overrides: &originals,
    };
    // A reasoner model is not asked again (a remote one may have changed, or be gone): its
    // recorded answer is applied to the plan the same way.
    let answer = refactor_record
        .reasoner
        .as_ref()
        .and_then(|r| r.get("answer"))
        .and_then(|a| a.as_str());
    let reasoning = match answer {
        Some(a) => Reasoning::Recorded(a),
        None => Reasoning::Graph,
    };
    let outcome = pipeline::run(scratch.path(), &mut graph, &settings, reasoning, &Quiet)?;

    let mut identical = outcome.units.len() == refactor_record.units.len();
    if !identical {
        println!(
            "the plan differs: {} unit(s) now, {} in the run",
            outcome.units.len(),
            refactor_record.units.len()
        );
    }
    for (now, then) in outcome.units.iter().zip(&refactor_record.units) {
        let same = now.symbol == then.symbol && now.body_sha256 == then.body_sha256;
        identical &= same;
        println!(
            "{} {}{}",
            if same { "identical" } else { "DIFFERENT" },
            then.symbol,
            if same {
                String::new()
            } else {
                format!(
                    " (was {}, now {})",
                    short(&then.body_sha256),
                    short(&now.body_sha256)
                )
            }
        );
    }
    println!(
        "replay of {}: {}",
        args.run_id,
        if identical {
            "every generated unit is byte-identical"
        } else {
            "outputs differ"
        }
    );
    Ok(ExitCode::from(if identical {
        exit::OK
    } else {
        exit::REJECTED
    }))
}

fn short(sha: &str) -> &str {
    let s = sha.strip_prefix("sha256:").unwrap_or(sha);
    &s[..s.len().min(12)]
}

/// The source files the librarian indexes (respecting .gitignore), copied into `to`.
fn copy_sources(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in ignore::WalkBuilder::new(from).hidden(true).build() {
        let entry = entry?;
        let path = entry.path();
        let is_source = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if !is_source || !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = path.strip_prefix(from)?;
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(path, &dest)?;
    }
    Ok(())
}
