//! Replay: run a recorded refactor again from its provenance alone and say whether every
//! generated unit comes out byte-identical.
//!
//! The run is repeated on a scratch copy of the repository's source files in which every file
//! the run read is put back as it was before the run (from the working tree when unchanged, else
//! from the run's backup), so a run that was applied can be replayed too. Nothing in the
//! repository is written.

use std::collections::BTreeMap;
use std::path::Path;

use super::request::{Recorded, UnreadableRequest};
use super::{generate, PipelineError, Quiet, Reasoning};
use crate::engine::remote::GeneratorSpec;
use crate::engine::{Engine, EngineError};
use crate::hash::sha256_tagged;
use crate::lang::EXTENSIONS;
use crate::librarian::{self, SqliteStore};
use crate::provenance::{RunRecord, RunStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run {0}: not a refactor run; only refactor runs can be replayed")]
    NotRefactor(String),
    #[error("run {run}")]
    Request {
        run: String,
        #[source]
        source: UnreadableRequest,
    },
    #[error("refusing to replay run {run}: {file} changed since the run (its sha256 was {sha})")]
    Changed {
        run: String,
        file: String,
        sha: String,
    },
    #[error("{0}: not valid UTF-8")]
    NotUtf8(String),
    #[error(
        "refusing to replay run {run}: the weights of {dir} hash to {now}, the run used {then}"
    )]
    Weights {
        run: String,
        dir: String,
        now: String,
        then: String,
    },
    #[error("copying the sources to a scratch directory")]
    Scratch(#[source] std::io::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Index(#[from] librarian::LibrarianError),
    #[error(transparent)]
    Pipeline(#[from] Box<PipelineError>),
}

/// One unit compared: the run's body hash and the replay's, and the tests' verdicts.
pub struct Comparison {
    pub symbol: String,
    pub then: String,
    pub now: String,
    /// The recorded test verdict; empty in records from before the test gate.
    pub tests_then: String,
    pub tests_now: String,
}

impl Comparison {
    pub fn identical(&self) -> bool {
        self.then == self.now
    }

    /// Whether the tests said something else this time.
    pub fn verdict_changed(&self) -> bool {
        !self.tests_then.is_empty() && self.tests_then != self.tests_now
    }
}

pub struct ReplayReport {
    /// Units now and in the run, when the plan came out different.
    pub plan_differs: Option<(usize, usize)>,
    pub units: Vec<Comparison>,
}

impl ReplayReport {
    pub fn identical(&self) -> bool {
        self.plan_differs.is_none()
            && self
                .units
                .iter()
                .all(|u| u.identical() && !u.verdict_changed())
    }
}

/// Run `run_id` again, on `generator` if given, else on the generator it recorded.
pub fn replay(
    root: &Path,
    run_id: &str,
    generator: Option<GeneratorSpec>,
) -> Result<ReplayReport, ReplayError> {
    let record = RunStore::new(root).load(run_id)?;
    let Some(refactor) = &record.refactor else {
        return Err(ReplayError::NotRefactor(run_id.to_string()));
    };
    let recorded =
        Recorded::from_value(&refactor.request).map_err(|source| ReplayError::Request {
            run: run_id.to_string(),
            source,
        })?;
    let originals = restore_inputs(root, run_id, &record)?;
    let mut options = recorded.options.clone();
    if let Some(g) = generator {
        options.generator = g;
    }
    let engine = Engine::open(&options.model, &options.generator)?;
    let weights = engine.weights_sha256()?;
    if weights != recorded.weights_sha256 {
        return Err(ReplayError::Weights {
            run: run_id.to_string(),
            dir: match &engine.remote {
                Some(r) => format!("the generator server at {}", r.base),
                None => engine.model.dir.display().to_string(),
            },
            now: match weights.is_empty() {
                true => "nothing (the server reports no hash)".to_string(),
                false => weights,
            },
            then: recorded.weights_sha256,
        });
    }
    let scratch = tempfile::tempdir().map_err(ReplayError::Scratch)?;
    copy_sources(root, scratch.path()).map_err(ReplayError::Scratch)?;
    for (file, text) in &originals {
        let p = scratch.path().join(file);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(ReplayError::Scratch)?;
        }
        std::fs::write(&p, text).map_err(ReplayError::Scratch)?;
    }
    let mut graph = SqliteStore::open(&librarian::default_db(scratch.path()))?;
    // A reasoner model is not asked again (a remote one may have changed, or be gone): its
    // recorded answer is applied to the plan the same way.
    let answer = refactor
        .reasoner
        .as_ref()
        .and_then(|r| r.get("answer"))
        .and_then(|a| a.as_str());
    let reasoning = match answer {
        Some(a) => Reasoning::Recorded(a),
        None => Reasoning::Graph,
    };
    let outcome = generate(
        scratch.path(),
        &mut graph,
        &recorded.request,
        &options,
        &engine,
        reasoning,
        &Quiet,
    )
    .map_err(Box::new)?;
    let plan_differs = (outcome.units.len() != refactor.units.len())
        .then_some((outcome.units.len(), refactor.units.len()));
    let units = outcome
        .units
        .iter()
        .zip(&refactor.units)
        .map(|(now, then)| Comparison {
            symbol: then.symbol.clone(),
            then: then.body_sha256.clone(),
            now: if now.symbol == then.symbol {
                now.body_sha256().to_string()
            } else {
                format!("{} (another unit)", now.symbol)
            },
            tests_then: then.tests.clone(),
            tests_now: now.built().map_or("-".to_string(), |b| b.tests.text()),
        })
        .collect();
    Ok(ReplayReport {
        plan_differs,
        units,
    })
}

/// Every input as it was before the run, or a refusal naming the file that changed.
fn restore_inputs(
    root: &Path,
    run_id: &str,
    record: &RunRecord,
) -> Result<BTreeMap<String, String>, ReplayError> {
    let inputs = record.refactor.as_ref().map(|r| &r.inputs);
    let mut originals = BTreeMap::new();
    for (file, sha) in inputs.into_iter().flatten() {
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
                    _ => {
                        return Err(ReplayError::Changed {
                            run: run_id.to_string(),
                            file: file.clone(),
                            sha: sha.clone(),
                        })
                    }
                }
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| ReplayError::NotUtf8(file.clone()))?;
        originals.insert(file.clone(), text);
    }
    Ok(originals)
}

/// The source files the librarian indexes (respecting .gitignore), copied into `to`.
fn copy_sources(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in ignore::WalkBuilder::new(from).hidden(true).build() {
        let entry = entry.map_err(std::io::Error::other)?;
        let path = entry.path();
        let is_source = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if !is_source || !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = path.strip_prefix(from).map_err(std::io::Error::other)?;
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(path, &dest)?;
    }
    Ok(())
}
