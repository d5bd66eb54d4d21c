//! The refactor pipeline: index → plan → compress → build (with the gate and self-healing) →
//! risk, for every unit of the plan. It writes nothing to the repository: the caller decides
//! what to apply (`patch`) and records the run (`provenance`), so a dry run and a replay run
//! exactly this code.

pub mod interrupt;
pub mod locate;
pub mod risk;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::builder::heal::{self, AttemptLog, HealOptions, Request, Site};
use crate::builder::{chat_template, ChatTemplate};
use crate::builder::{span_for, BuildError, Builder, SPAN_BUCKETS};
use crate::compressor::{
    causal, CausalScorer, CompressError, CompressedContext, Compressor, DiffusionScorer,
    ScoreCache, Sources, Strategy,
};
use crate::diffusion::{DiffusionLm, GenerateConfig, SamplerKind};
use crate::gate::{Gate, GateReport, SourceKind};
use crate::librarian::{self, CodeGraph, GraphStore, IndexOptions};
use crate::patch::sha256_tagged;
use crate::reasoner::chat::{ChatError, ChatModel};
use crate::reasoner::refine::{self, Refinement};
use crate::reasoner::{self, EditUnit, Plan, PlanError};
use risk::{Risk, RiskInputs};

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
    #[error("{unit}: {source}")]
    Build {
        unit: String,
        source: Box<BuildError>,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

/// How many denoising steps a unit gets, relative to its span or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepRule {
    /// Exactly this many (capped at the span).
    Fixed(usize),
    /// span / divisor: 4 for `fast`, 2 for `balanced`, 1 for `quality`.
    PerSpan(usize),
}

impl StepRule {
    pub fn steps(self, span: usize) -> usize {
        match self {
            StepRule::Fixed(n) => n.clamp(1, span),
            StepRule::PerSpan(d) => (span / d.max(1)).max(1),
        }
    }
}

/// How a unit is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Mask the body between the file's text (base checkpoints).
    Infill,
    /// Ask through the chat template and read the code out of the answer (instruct checkpoints).
    Instruct,
}

/// What the pipeline needs besides the repository.
pub struct Settings<'a> {
    pub task: &'a str,
    pub targets: &'a [String],
    pub functions: &'a [String],
    pub model: &'a DiffusionLm,
    pub weights_sha256: &'a str,
    pub mode: Mode,
    /// Sampler, temperature, seed...; steps and lengths are set per unit.
    pub cfg: &'a GenerateConfig,
    pub steps: StepRule,
    /// A fixed span for every unit instead of one sized from its body.
    pub gen_length: Option<usize>,
    /// Semi-autoregressive blocks of this many tokens (the span is rounded up to a multiple).
    pub block_length: Option<usize>,
    pub max_retries: u32,
    /// Splice only units that pass the gate; off, every unit is spliced and the gate recorded.
    pub safe_mode: bool,
    pub scorer: Strategy,
    /// The causal LM checkpoint for `Strategy::Causal`.
    pub scorer_model: Option<&'a Path>,
    pub budget: Option<usize>,
    pub gate: Gate,
    /// File contents to use instead of the working tree's (replay), by repo-relative path.
    pub overrides: &'a HashMap<String, String>,
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

#[derive(Debug, Clone, Serialize)]
pub struct UnitOutcome {
    pub symbol: String,
    pub file: String,
    /// The body lines replaced, in the file as it was when this unit was built.
    pub body_lines: (usize, usize),
    pub valid: bool,
    pub retries: u32,
    pub risk: Risk,
    pub span: usize,
    pub steps: usize,
    pub forward_passes: usize,
    pub step_schedule: Vec<u32>,
    pub step_ms: Vec<f64>,
    pub seconds: f64,
    pub mean_confidence: f64,
    /// sha256 of the body as generated (replay compares these).
    pub body_sha256: String,
    pub context: CompressedContext,
    #[serde(skip)]
    pub attempts: Vec<AttemptLog>,
    #[serde(skip)]
    pub report: Option<GateReport>,
    /// Why the unit was skipped instead of built, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// One file's change: every valid unit spliced in, in plan order.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub file: String,
    pub original: String,
    pub patched: String,
    /// The highest risk of the units that changed it.
    pub risk: f64,
    /// Whether the gate passes the whole patched file (introduced errors only).
    pub valid: bool,
    pub report: GateReport,
}

pub struct Outcome {
    pub plan: Plan,
    /// What the reasoner model said, when one was asked.
    pub refinement: Option<Refinement>,
    pub units: Vec<UnitOutcome>,
    pub files: Vec<FileOutcome>,
    /// sha256 of every file whose text went into a canvas (targets and context sources).
    pub inputs: BTreeMap<String, String>,
    pub compress_ms: f64,
    pub build_ms: f64,
}

fn check_interrupt() -> Result<(), PipelineError> {
    if interrupt::requested() {
        Err(PipelineError::Interrupted)
    } else {
        Ok(())
    }
}

/// The span for a body of `tokens`: the bucket that holds it with a quarter to spare for a
/// longer rewrite, or for bodies beyond the buckets, that plus a quarter rounded up to 64.
fn span_for_edit(tokens: usize) -> usize {
    let want = tokens + tokens / 4 + 8;
    if want <= SPAN_BUCKETS[SPAN_BUCKETS.len() - 1] {
        span_for(want)
    } else {
        want.div_ceil(64) * 64
    }
}

pub fn run(
    root: &Path,
    store: &mut dyn GraphStore,
    s: &Settings,
    reasoning: Reasoning,
    progress: &dyn Progress,
) -> Result<Outcome, PipelineError> {
    progress.phase("index", None);
    librarian::index(
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
    let plan = reasoner::plan(&graph, s.task, s.targets, s.functions)?;
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

    let model = s.model;
    let builder = Builder::new(model);
    let template: Option<ChatTemplate> = match s.mode {
        Mode::Infill => None,
        Mode::Instruct => Some(
            chat_template(&model.dir)
                .map_err(|message| PipelineError::File {
                    file: model.dir.join("tokenizer_config.json").display().to_string(),
                    message,
                })?
                .ok_or_else(|| PipelineError::File {
                    file: model.dir.join("tokenizer_config.json").display().to_string(),
                    message: "no chat_template: instruct mode needs an instruct checkpoint (use --mode infill)".into(),
                })?,
        ),
    };
    let mut scorer = DiffusionScorer::new(model, s.weights_sha256.to_string());
    let mut causal = causal::load_for(s.scorer, s.scorer_model, &model.device, model.dtype)?;
    let mut causal_scorer = causal.as_mut().map(CausalScorer::new);
    let mut cache = ScoreCache::in_repo(root)?;

    // The files as they are before the run, and as they become while units are spliced in.
    let mut originals: BTreeMap<String, String> = BTreeMap::new();
    let mut current: HashMap<String, String> = HashMap::new();
    // Every file is read once, into `sources`: recorded contents (snapshots, replay) first.
    let mut sources = Sources::default();
    for (f, t) in s.overrides {
        sources.preload(f, t);
    }
    // Line shifts from earlier splices: (file, first line after the splice, delta).
    let mut shifts: Vec<(String, usize, isize)> = Vec::new();
    let shifted = |shifts: &[(String, usize, isize)], file: &str, line: usize| -> usize {
        let d: isize = shifts
            .iter()
            .filter(|(f, after, _)| f == file && line >= *after)
            .map(|(_, _, d)| d)
            .sum();
        (line as isize + d).max(1) as usize
    };
    let mut units = Vec::new();
    let (mut compress_ms, mut build_ms) = (0.0, 0.0);
    let mut inputs: BTreeMap<String, String> = BTreeMap::new();
    for unit in &plan.units {
        check_interrupt()?;
        // Context comes from the files as they were before the run: a unit sees the code it
        // depends on as the planner saw it.
        progress.phase("compress", Some(&unit.symbol));
        let started = Instant::now();
        let (candidates, context) = Compressor {
            strategy: s.scorer,
            codec: &model.codec,
            scorer: Some(causal::pick(&mut scorer, causal_scorer.as_mut())),
            cache: Some(&mut cache),
        }
        .compress_unit(&mut sources, root, unit, s.budget, model.max_positions())?;
        for c in candidates.iter().map(|c| &c.item.file).chain([&unit.file]) {
            if !inputs.contains_key(c) {
                let text = sources.text(c).unwrap_or_default();
                inputs.insert(c.clone(), sha256_tagged(text.as_bytes()));
            }
        }
        if !current.contains_key(&unit.file) {
            let text = sources.text(&unit.file).unwrap_or_default().to_string();
            originals.insert(unit.file.clone(), text.clone());
            current.insert(unit.file.clone(), text);
        }
        compress_ms += started.elapsed().as_secs_f64() * 1e3;
        check_interrupt()?;

        progress.phase("build", Some(&unit.symbol));
        let started = Instant::now();
        let text = current[&unit.file].clone();
        let kind =
            SourceKind::from_path(Path::new(&unit.file)).ok_or_else(|| PipelineError::File {
                file: unit.file.clone(),
                message: "not a language the gate knows".into(),
            })?;
        let def_lines = (
            shifted(&shifts, &unit.file, unit.lines.0),
            shifted(&shifts, &unit.file, unit.lines.1),
        );
        // Infill replaces the body lines; instruct mode rewrites the unit's whole lines.
        let replaced = match s.mode {
            Mode::Infill => locate::body_lines(&text, kind.language, def_lines),
            Mode::Instruct => Some(def_lines),
        };
        let Some(body) = replaced else {
            units.push(skipped(
                unit,
                &context,
                "no body line of its own to rewrite",
            ));
            continue;
        };
        let all: Vec<&str> = text.split_inclusive('\n').collect();
        let old_body: String = all[body.0 - 1..body.1].concat();
        let old_tokens = model
            .codec
            .encode(&old_body)
            .map_err(CompressError::from)?
            .len();
        // An answer also holds its code fence.
        let fence = if s.mode == Mode::Instruct { 16 } else { 0 };
        let mut span = s
            .gen_length
            .unwrap_or_else(|| span_for_edit(old_tokens + fence));
        if let Some(b) = s.block_length.filter(|&b| b > 0) {
            span = span.div_ceil(b) * b;
        }
        if span + 16 > model.max_positions() {
            units.push(skipped(
                unit,
                &context,
                &format!(
                    "its body needs a span of {span} tokens; the model's window is {}",
                    model.max_positions()
                ),
            ));
            continue;
        }
        let steps = s.steps.steps(span);
        let cfg = GenerateConfig {
            steps,
            gen_length: span,
            block_length: s.block_length.unwrap_or(span),
            ..s.cfg.clone()
        };
        let prompt = format!("{}{}", task_comment(kind, s.task, unit), context.text);
        let render = |feedback: Option<&str>| -> Result<String, String> {
            let template = template.as_ref().ok_or("no chat template")?;
            template.render(&instruct_message(
                s.task,
                unit,
                kind,
                &context.text,
                &old_body,
                feedback,
            ))
        };
        let site = Site {
            original: &text,
            kind,
            request: match s.mode {
                Mode::Infill => Request::Infill {
                    lines: body,
                    context: &prompt,
                },
                Mode::Instruct => Request::Instruct {
                    lines: body,
                    name: &unit.symbol,
                    render: &render,
                },
            },
            span,
        };
        let healed = heal::build(
            &builder,
            &s.gate,
            &site,
            &cfg,
            HealOptions {
                max_retries: s.max_retries,
                ..HealOptions::default()
            },
        )
        .map_err(|source| PipelineError::Build {
            unit: unit.symbol.clone(),
            source: Box::new(source),
        })?;
        build_ms += started.elapsed().as_secs_f64() * 1e3;
        let draft = &healed.draft;
        let valid = healed.passed();
        let retries = healed.attempts.len().saturating_sub(1) as u32;
        let changed = crate::patch::Diff::new("", &old_body, &draft.body);
        let probability = matches!(
            cfg.sampler,
            SamplerKind::LowConfidence | SamplerKind::MaskgitPlus
        )
        .then(|| draft.generation.mean_confidence());
        let risk = risk::score(&RiskInputs {
            changed_lines: changed.lines_added + changed.lines_removed,
            blast_radius: unit.blast_radius,
            public_api: unit.public_api,
            callers: unit.callers.len(),
            retries,
            max_retries: s.max_retries,
            mean_probability: probability,
            gate_warnings: healed.report.warnings.len(),
        });
        if valid || !s.safe_mode {
            let new_lines = draft.body.split_inclusive('\n').count() as isize;
            let old_lines = (body.1 - body.0 + 1) as isize;
            current.insert(unit.file.clone(), draft.patched());
            shifts.push((unit.file.clone(), unit.lines.1 + 1, new_lines - old_lines));
        }
        units.push(UnitOutcome {
            symbol: unit.symbol.clone(),
            file: unit.file.clone(),
            body_lines: body,
            valid,
            retries,
            risk,
            span,
            steps,
            forward_passes: healed.attempts.iter().map(|a| a.forward_passes).sum(),
            step_schedule: draft.generation.schedule.clone(),
            step_ms: draft.generation.step_ms.clone(),
            seconds: draft.generation.seconds,
            mean_confidence: draft.generation.mean_confidence(),
            body_sha256: sha256_tagged(draft.body.as_bytes()),
            context,
            attempts: healed.attempts,
            report: Some(healed.report),
            skipped: None,
        });
    }
    check_interrupt()?;
    progress.phase("gate", None);
    let mut files = Vec::new();
    for (file, original) in &originals {
        let patched = &current[file];
        if patched == original {
            continue;
        }
        let kind = SourceKind::from_path(Path::new(file)).expect("checked when building");
        let report = s.gate.check_change(original, patched, kind);
        let risk = units
            .iter()
            .filter(|u| &u.file == file && (u.valid || !s.safe_mode) && u.skipped.is_none())
            .map(|u| u.risk.score)
            .fold(0.0, f64::max);
        files.push(FileOutcome {
            file: file.clone(),
            original: original.clone(),
            patched: patched.clone(),
            risk,
            valid: report.is_valid,
            report,
        });
    }
    Ok(Outcome {
        plan,
        refinement,
        units,
        files,
        inputs,
        compress_ms,
        build_ms,
    })
}

fn skipped(unit: &EditUnit, context: &CompressedContext, why: &str) -> UnitOutcome {
    UnitOutcome {
        symbol: unit.symbol.clone(),
        file: unit.file.clone(),
        body_lines: (0, 0),
        valid: false,
        retries: 0,
        risk: risk::score(&RiskInputs::default()),
        span: 0,
        steps: 0,
        forward_passes: 0,
        step_schedule: Vec::new(),
        step_ms: Vec::new(),
        seconds: 0.0,
        mean_confidence: 0.0,
        body_sha256: String::new(),
        context: context.clone(),
        attempts: Vec::new(),
        report: None,
        skipped: Some(why.to_string()),
    }
}

/// The task and the unit as a comment ahead of the context: a base model reads it as the kind
/// of note a programmer leaves.
fn task_comment(kind: SourceKind, task: &str, unit: &EditUnit) -> String {
    let c = if kind.language == crate::gate::Language::Python {
        "#"
    } else {
        "//"
    };
    let task: String = task.lines().collect::<Vec<_>>().join(" ");
    let mut comment = format!(
        "{c} Task: {task}\n{c} Rewriting {} ({}).\n",
        unit.symbol, unit.reason
    );
    if let Some(d) = &unit.description {
        let d: String = d.lines().collect::<Vec<_>>().join(" ");
        comment.push_str(&format!("{c} Change: {d}\n"));
    }
    comment
}

/// The user turn of instruct mode: the task, the unit and why it is planned, the compressed
/// context, the current code, the previous attempt's parse errors, and the reply format.
fn instruct_message(
    task: &str,
    unit: &EditUnit,
    kind: SourceKind,
    context: &str,
    code: &str,
    feedback: Option<&str>,
) -> String {
    let lang = match kind.language {
        crate::gate::Language::Python => "python",
        crate::gate::Language::JavaScript => "javascript",
        _ => "typescript",
    };
    let simple = unit
        .symbol
        .rsplit(['.', ':'])
        .next()
        .unwrap_or(&unit.symbol);
    let mut m = format!(
        "{task}\n\nRewrite `{}` in {} ({}).",
        unit.symbol, unit.file, unit.reason
    );
    if let Some(d) = &unit.description {
        m.push_str(&format!(" Planned change: {d}"));
    }
    if !unit.callers.is_empty() {
        m.push_str(&format!(
            " It is called by {}; keep its signature unless the task needs a change.",
            unit.callers.join(", ")
        ));
    }
    if !context.trim().is_empty() {
        m.push_str(&format!("\n\nCode it uses:\n```{lang}\n{context}```"));
    }
    m.push_str(&format!("\n\nCurrent code:\n```{lang}\n{code}```"));
    if let Some(errors) = feedback {
        m.push_str(&format!("\n\nA previous answer did not parse:\n{errors}"));
    }
    m.push_str(&format!(
        "\n\nReply with the complete new code of `{simple}` in one ```{lang} block and nothing else."
    ));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reasoner model's description of the change reaches both kinds of prompt.
    #[test]
    fn planned_changes_reach_the_prompts() {
        let mut unit = EditUnit {
            symbol: "m.f".into(),
            kind: "function",
            file: "m.py".into(),
            lines: (1, 2),
            signature: "def f()".into(),
            reason: "named with --function f".into(),
            description: None,
            callers: vec![],
            callees: vec![],
            blast_radius: 0,
            tests: vec![],
            public_api: true,
            context_items: vec![],
        };
        let kind = SourceKind::from_path(Path::new("m.py")).unwrap();
        assert!(!task_comment(kind, "Cache", &unit).contains("Change:"));
        unit.description = Some("Memoise the lookup\nby key.".into());
        assert_eq!(
            task_comment(kind, "Cache", &unit),
            "# Task: Cache\n# Rewriting m.f (named with --function f).\n# Change: Memoise the lookup by key.\n"
        );
        let m = instruct_message("Cache", &unit, kind, "", "def f():\n    pass\n", None);
        assert!(
            m.contains("Planned change: Memoise the lookup\nby key."),
            "{m}"
        );
    }

    #[test]
    fn spans_leave_room_for_a_longer_body() {
        assert_eq!(span_for_edit(10), 32);
        assert_eq!(span_for_edit(40), 64);
        assert_eq!(span_for_edit(190), 256);
        assert_eq!(span_for_edit(200), 320);
        assert_eq!(span_for_edit(300), 384);
        assert_eq!(StepRule::PerSpan(2).steps(64), 32);
        assert_eq!(StepRule::Fixed(100).steps(64), 64);
        assert_eq!(StepRule::Fixed(0).steps(64), 1);
    }
}
