//! The pipeline owns a refactor run from request to record: index → plan (→ refine) →
//! compress → build (with the gate and self-healing) → risk, for every unit of the plan; then
//! the whole patched files are gated, each file gets a status, what may be written is written,
//! and the run's provenance is recorded. The command line parses, calls [`refactor`] or
//! [`replay::replay`], and prints what comes back.
//!
//! [`generate`] is the part that writes nothing: a dry run, a real run and a replay all run
//! exactly that code, so replay compares like with like.

mod build;
mod decide;
mod files;
mod finish;
mod judge;
pub mod locate;
mod prompts;
pub mod replay;
pub mod request;
pub mod risk;

use std::collections::BTreeMap;
use std::path::Path;

use crate::builder::BuildError;
use crate::compressor::CompressError;
use crate::engine::{Engine, EngineError};
use crate::gate::Gate;
use crate::interrupt;
use crate::librarian::{self, CodeGraph, GraphStore, IndexOptions, IndexSummary};
use crate::patch::PatchError;
use crate::reasoner::chat::{ChatError, ChatModel};
use crate::reasoner::refine::{self, Refinement};
use crate::reasoner::{self, Plan, PlanError};

pub use build::{BuiltUnit, UnitOutcome, UnitResult};
pub use decide::{FileStatus, Review, UnitStatus};
pub use files::FileOutcome;
pub use finish::{RunFailure, RunReport};
pub use judge::TestStatus;
pub use request::{ApplyOptions, BuildOptions, CompressOptions, Recorded, Request, RunOptions};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Reasoner(#[from] ChatError),
    #[error(transparent)]
    Index(#[from] librarian::LibrarianError),
    #[error(transparent)]
    Compress(#[from] CompressError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{unit}")]
    Build {
        unit: String,
        #[source]
        source: Box<BuildError>,
    },
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error(transparent)]
    Tests(#[from] crate::behaviour::TestError),
    #[error("--target {file}: {reason}")]
    Target { file: String, reason: &'static str },
    #[error("writing {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Who refines the graph plan.
pub enum Reasoning<'a> {
    /// Nobody: the graph plan as it is.
    Graph,
    /// This chat model.
    Ask(&'a mut dyn ChatModel, refine::Options),
    /// An answer a model gave before (replay), applied to the plan again.
    Recorded(&'a str),
}

/// Progress, for spinners: a phase starts (`unit` set while building one).
pub trait Progress {
    fn phase(&self, name: &str, unit: Option<&str>);
}

/// No progress to show.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str, _: Option<&str>) {}
}

fn check_interrupt() -> Result<(), PipelineError> {
    if interrupt::requested() {
        Err(PipelineError::Interrupted)
    } else {
        Ok(())
    }
}

/// The graph brought up to date, the plan made on it, and the reasoner's refinement.
pub struct Prepared {
    pub graph: CodeGraph,
    pub plan: Plan,
    /// What the reasoner model said, when one was asked.
    pub refinement: Option<Refinement>,
    pub indexed: IndexSummary,
}

/// Index (only files that changed are parsed), plan, and refine: what `plan` shows and what
/// `refactor` builds on.
pub fn prepare(
    root: &Path,
    store: &mut dyn GraphStore,
    request: &Request,
    reasoning: Reasoning,
    progress: &dyn Progress,
) -> Result<Prepared, PipelineError> {
    progress.phase("index", None);
    let indexed = librarian::index(
        root,
        store,
        &IndexOptions {
            max_file_size: librarian::DEFAULT_MAX_FILE_SIZE,
        },
        &|_, _| {},
    )?;
    check_interrupt()?;
    progress.phase("plan", None);
    let graph = CodeGraph::new(store.load_graph()?);
    let plan = reasoner::plan(&graph, &request.task, &request.targets, &request.functions)?;
    let (plan, refinement) = match reasoning {
        Reasoning::Graph => (plan, None),
        Reasoning::Ask(chat, options) => {
            progress.phase("reason", None);
            let (refined, r) = refine::refine(&plan, &graph, chat, &options)?;
            (refined, Some(r))
        }
        Reasoning::Recorded(answer) => (refine::apply_answer(&plan, &graph, answer).0, None),
    };
    check_interrupt()?;
    Ok(Prepared {
        graph,
        plan,
        refinement,
        indexed,
    })
}

/// Everything a run produced before anything is written.
pub struct Outcome {
    pub plan: Plan,
    pub mode: crate::engine::Mode,
    pub sampler: crate::diffusion::SamplerKind,
    pub refinement: Option<Refinement>,
    pub units: Vec<UnitOutcome>,
    pub files: Vec<FileOutcome>,
    /// sha256 of every file whose text went into a canvas (targets and context sources).
    pub inputs: BTreeMap<String, String>,
    /// The baseline test runs, before any change (each unit's own run is in its outcome).
    pub test_baselines: Vec<crate::behaviour::TestRun>,
    /// Every test run of the run (baselines and healing attempts): how many, how long.
    pub test_totals: (usize, f64),
    pub compress_ms: f64,
    pub build_ms: f64,
}

/// Plan, build every unit and gate every patched file, writing nothing to the repository.
pub fn generate(
    root: &Path,
    store: &mut dyn GraphStore,
    request: &Request,
    options: &RunOptions,
    engine: &Engine,
    reasoning: Reasoning,
    progress: &dyn Progress,
) -> Result<Outcome, PipelineError> {
    let prepared = prepare(root, store, request, reasoning, progress)?;
    let gate = Gate::new(options.python);
    let mut workspace = files::Workspace::open(root, &request.targets)?;
    progress.phase("tests (baseline)", None);
    let mut tests = judge::open(root, &prepared.plan, &options.tests)?;
    let built = build::build_all(
        root,
        &prepared.plan,
        request,
        options,
        engine,
        gate,
        &mut workspace,
        tests.as_mut(),
        progress,
    )?;
    check_interrupt()?;
    progress.phase("gate", None);
    let files = workspace.gate(&gate, &built.units, options.build.safe_mode);
    Ok(Outcome {
        test_totals: tests
            .as_ref()
            .map_or((0, 0.0), |t| (t.total_runs, t.total_ms)),
        test_baselines: tests.map(|t| t.baselines()).unwrap_or_default(),
        plan: prepared.plan,
        mode: built.mode,
        sampler: built.sampler,
        refinement: prepared.refinement,
        units: built.units,
        files,
        inputs: built.inputs,
        compress_ms: built.compress_ms,
        build_ms: built.build_ms,
    })
}

/// A whole `refactor` run: [`generate`], then statuses, writes and the run record.
pub fn refactor(
    root: &Path,
    store: &mut dyn GraphStore,
    request: &Request,
    options: &RunOptions,
    engine: &Engine,
    reasoning: Reasoning,
    progress: &dyn Progress,
) -> Result<RunReport, RunFailure> {
    let no_record = |error: PipelineError| RunFailure {
        error: Box::new(error),
        record: None,
    };
    let weights = engine.weights_sha256().map_err(|e| no_record(e.into()))?;
    let mut log = crate::provenance::ProvenanceLogger::start(root, &request.task)
        .map_err(|e| no_record(e.into()))?;
    let outcome = match generate(root, store, request, options, engine, reasoning, progress) {
        Ok(o) => o,
        Err(e) => return Err(finish::failed(log, e)),
    };
    let mut decisions = decide::decide(&outcome, options);
    let report = finish::finish(
        root,
        &mut log,
        &outcome,
        &mut decisions,
        request,
        options,
        engine,
        &weights,
    );
    match report {
        Ok(report) => finish::close(log, report).map_err(no_record),
        Err(e) => Err(finish::failed(log, e)),
    }
}
