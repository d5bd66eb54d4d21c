//! Building the plan's units one after another: each unit's context is compressed, its body
//! written (infill or instruct) and healed until the gate passes or the retries run out, its
//! risk scored, and, if it may be, spliced into its file for the units after it. With
//! `--batch`, the first drafts of units in different files are denoised together ahead of
//! their turn; the order in which units are judged and spliced does not change.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::files::Workspace;
use super::judge::{TestStatus, UnitJudge};
use super::prompts::{instruct_message, task_comment};
use super::risk::{self, Risk, RiskInputs};
use super::{check_interrupt, locate, PipelineError, Progress, Request, RunOptions};
use crate::behaviour::{TestGate, Verdict as TestVerdict};
use crate::builder::heal::{self, AttemptLog, Feedback, HealOptions, Healed, Site};
use crate::builder::{span_for, Builder, Prompt, SPAN_BUCKETS};
use crate::checkpoint::ChatTemplate;
use crate::compressor::{CompressError, CompressedContext, ScorerSet, Sources};
use crate::diffusion::{GenerateConfig, SamplerKind};
use crate::engine::{Engine, Mode, StepRule};
use crate::gate::semantic::{self, Check, Finding, Rewrite};
use crate::gate::{Gate, GateReport};
use crate::hash::sha256_tagged;
use crate::reasoner::{EditUnit, Plan};

/// What became of one unit of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct UnitOutcome {
    pub symbol: String,
    pub file: String,
    pub context: CompressedContext,
    #[serde(flatten)]
    pub result: UnitResult,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitResult {
    /// Not built, and why.
    Skipped(String),
    Built(Box<BuiltUnit>),
}

/// A unit the generator wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltUnit {
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
    /// What the tests that reach the unit said.
    pub tests: TestStatus,
    /// The semantic checks' findings on the final draft.
    pub findings: Vec<Finding>,
    /// Whether the unit is public API (a name callers outside the file may use).
    pub public_api: bool,
    /// The first draft was denoised in a batch with other units' (`--batch`).
    pub batched: bool,
    #[serde(skip)]
    pub attempts: Vec<AttemptLog>,
    #[serde(skip)]
    pub report: GateReport,
    /// The test run on the final draft, for provenance.
    #[serde(skip)]
    pub test_run: Option<TestVerdict>,
}

impl BuiltUnit {
    pub fn placeholder(&self) -> bool {
        self.findings.iter().any(|f| f.check == Check::Placeholder)
    }
}

impl UnitOutcome {
    pub fn built(&self) -> Option<&BuiltUnit> {
        match &self.result {
            UnitResult::Built(b) => Some(b),
            UnitResult::Skipped(_) => None,
        }
    }

    /// The generated body's hash; empty for a skipped unit.
    pub fn body_sha256(&self) -> &str {
        self.built().map_or("", |b| b.body_sha256.as_str())
    }
}

/// Every unit's outcome, and what the run read.
pub struct Built {
    pub mode: Mode,
    /// The sampler every unit used (asked for, or the checkpoint's).
    pub sampler: SamplerKind,
    pub units: Vec<UnitOutcome>,
    pub inputs: BTreeMap<String, String>,
    pub compress_ms: f64,
    pub build_ms: f64,
}

/// What stays the same for every unit of a run.
struct Shared<'a> {
    request: &'a Request,
    options: &'a RunOptions,
    engine: &'a Engine,
    builder: Builder<'a>,
    gate: Gate,
    mode: Mode,
    template: Option<ChatTemplate>,
    /// Sampler, temperature, seed...; steps and lengths are set per unit.
    cfg: GenerateConfig,
    steps: StepRule,
}

#[allow(clippy::too_many_arguments)]
pub fn build_all(
    root: &Path,
    plan: &Plan,
    request: &Request,
    options: &RunOptions,
    engine: &Engine,
    gate: Gate,
    workspace: &mut Workspace,
    mut tests: Option<&mut TestGate>,
    progress: &dyn Progress,
) -> Result<Built, PipelineError> {
    let build = &options.build;
    let mode = engine.mode(build.mode)?;
    let shared = Shared {
        request,
        options,
        engine,
        builder: Builder::for_engine(engine),
        gate,
        mode,
        template: match mode {
            Mode::Infill => None,
            Mode::Instruct => Some(engine.template()?),
        },
        cfg: engine.config(&build.sampling, Some(64), Some(64))?,
        steps: build.sampling.step_rule(),
    };
    let compress = &options.compress;
    let weights = if compress.scorer == crate::compressor::Strategy::Model {
        engine.weights_sha256()?
    } else {
        String::new()
    };
    let mut scorers = ScorerSet::open(
        &[compress.scorer],
        engine,
        weights,
        compress.scorer_model.as_deref(),
        root,
    )?;
    // Context comes from the files as they were before the run: a unit sees the code it
    // depends on as the planner saw it.
    let mut sources = Sources::default();
    for (file, f) in workspace.iter() {
        sources.preload(file, &f.original);
    }
    let mut built = Built {
        mode,
        sampler: shared.cfg.sampler,
        units: Vec::new(),
        inputs: BTreeMap::new(),
        compress_ms: 0.0,
        build_ms: 0.0,
    };
    let batch = options
        .build
        .batch
        .unwrap_or_else(|| default_batch(engine))
        .max(1);
    // Units compressed and located ahead of their turn, by index in the plan.
    let mut ahead: BTreeMap<usize, (CompressedContext, Ready)> = BTreeMap::new();
    for (i, unit) in plan.units.iter().enumerate() {
        if !ahead.contains_key(&i) {
            let picked = independent_from(&plan.units, i, batch, &ahead);
            for &j in &picked {
                let u = &plan.units[j];
                check_interrupt()?;
                progress.phase("compress", Some(&u.symbol));
                let started = Instant::now();
                let (candidates, context) = scorers.compressor(compress.scorer).compress_unit(
                    &mut sources,
                    root,
                    u,
                    compress.budget,
                    engine.model.max_positions(),
                )?;
                for file in candidates.iter().map(|c| &c.item.file).chain([&u.file]) {
                    if !built.inputs.contains_key(file) {
                        let text = sources.text(file).unwrap_or_default();
                        built
                            .inputs
                            .insert(file.clone(), sha256_tagged(text.as_bytes()));
                    }
                }
                built.compress_ms += started.elapsed().as_secs_f64() * 1e3;
                let ready = prepare(&shared, u, &context, workspace)?;
                ahead.insert(j, (context, ready));
            }
            check_interrupt()?;
            let started = Instant::now();
            prefetch_first_drafts(&shared, &plan.units, &picked, &ahead, progress)?;
            built.build_ms += started.elapsed().as_secs_f64() * 1e3;
        }
        let (context, ready) = ahead.remove(&i).expect("picked above or earlier");
        check_interrupt()?;
        progress.phase("build", Some(&unit.symbol));
        let started = Instant::now();
        let result = match ready {
            Ready::Skipped(why) => UnitResult::Skipped(why),
            Ready::Unit(p) => {
                build_unit(&shared, unit, &context, *p, workspace, tests.as_deref_mut())?
            }
        };
        built.build_ms += started.elapsed().as_secs_f64() * 1e3;
        built.units.push(UnitOutcome {
            symbol: unit.symbol.clone(),
            file: unit.file.clone(),
            context,
            result,
        });
        if ahead.is_empty() {
            shared.builder.clear_prefetched();
        }
    }
    Ok(built)
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

/// A unit located in its file as the workspace has it now, with the span and settings its
/// drafts use: everything up to its first generation.
struct Prepared {
    kind: crate::lang::SourceKind,
    text: String,
    def_lines: (usize, usize),
    body: (usize, usize),
    old_body: String,
    cfg: GenerateConfig,
    /// Infill: the task comment and the context, ahead of the file's text.
    prompt: String,
}

enum Ready {
    Unit(Box<Prepared>),
    Skipped(String),
}

fn prepare(
    s: &Shared,
    unit: &EditUnit,
    context: &CompressedContext,
    workspace: &Workspace,
) -> Result<Ready, PipelineError> {
    let file = workspace
        .get(&unit.file)
        .ok_or_else(|| PipelineError::Target {
            file: unit.file.clone(),
            reason: "planned, but not among the targets",
        })?;
    let kind = file.kind;
    let text = file.current.clone();
    let def_lines = (file.shifted(unit.lines.0), file.shifted(unit.lines.1));
    // Infill replaces the body lines; instruct mode rewrites the unit's whole lines.
    let replaced = match s.mode {
        Mode::Infill => locate::body_lines(&text, kind.language, def_lines),
        Mode::Instruct => Some(def_lines),
    };
    let Some(body) = replaced else {
        return Ok(Ready::Skipped("no body line of its own to rewrite".into()));
    };
    let all: Vec<&str> = text.split_inclusive('\n').collect();
    let old_body: String = all[body.0 - 1..body.1].concat();
    let model = &s.engine.model;
    let old_tokens = model
        .codec
        .encode(&old_body)
        .map_err(CompressError::from)?
        .len();
    let build = &s.options.build;
    // An answer also holds its code fence.
    let fence = if s.mode == Mode::Instruct { 16 } else { 0 };
    let mut span = build
        .gen_length
        .unwrap_or_else(|| span_for_edit(old_tokens + fence));
    if let Some(b) = build.block_length.filter(|&b| b > 0) {
        span = span.div_ceil(b) * b;
    }
    if span + 16 > model.max_positions() {
        return Ok(Ready::Skipped(format!(
            "its body needs a span of {span} tokens; the model's window is {}",
            model.max_positions()
        )));
    }
    let cfg = GenerateConfig {
        steps: s.steps.steps(span),
        gen_length: span,
        block_length: build.block_length.unwrap_or(span),
        ..s.cfg.clone()
    };
    let prompt = format!(
        "{}{}",
        task_comment(kind.language, &s.request.task, unit),
        context.text
    );
    Ok(Ready::Unit(Box::new(Prepared {
        kind,
        text,
        def_lines,
        body,
        old_body,
        cfg,
        prompt,
    })))
}

/// Call `f` with the site where a prepared unit's drafts are written.
fn with_site<R>(
    s: &Shared,
    unit: &EditUnit,
    context: &CompressedContext,
    p: &Prepared,
    f: impl FnOnce(&Site) -> R,
) -> R {
    let task = &s.request.task;
    let render = |feedback: Option<Feedback>| -> Result<Prompt, minijinja::Error> {
        let message = instruct_message(task, unit, p.kind, &context.text, &p.old_body, feedback);
        Ok(Prompt {
            rendered: match &s.template {
                Some(t) => t.render(&message)?,
                None => message.clone(),
            },
            user: message,
        })
    };
    let site = Site {
        original: &p.text,
        kind: p.kind,
        request: match s.mode {
            Mode::Infill => heal::Request::Infill {
                lines: p.body,
                context: &p.prompt,
            },
            Mode::Instruct => heal::Request::Instruct {
                lines: p.body,
                name: &unit.symbol,
                render: &render,
            },
        },
        span: p.cfg.gen_length,
    };
    f(&site)
}

/// Unit `first` and up to `batch - 1` later units that can be located now: each the next
/// unbuilt unit of its file, so nothing built before it moves its lines. A unit already in
/// `ahead` is not picked again.
fn independent_from<T>(
    units: &[EditUnit],
    first: usize,
    batch: usize,
    ahead: &BTreeMap<usize, T>,
) -> Vec<usize> {
    let mut files = std::collections::HashSet::new();
    let mut picked = Vec::new();
    for (j, u) in units.iter().enumerate().skip(first) {
        if picked.len() == batch {
            break;
        }
        if files.insert(u.file.as_str()) && !ahead.contains_key(&j) {
            picked.push(j);
        }
    }
    picked
}

/// Canvases denoised together when `--batch` is not given. A CPU step is already bound by its
/// matrix products at one canvas (on two cores, 8 canvases of 256 tokens gave 1.06x the tokens
/// a second of one, for 1.3x the peak memory), so it takes one at a time; a GPU pass over one
/// such canvas leaves most of the device idle.
fn default_batch(engine: &Engine) -> usize {
    if engine.model.device.is_cpu() {
        1
    } else {
        DEVICE_BATCH
    }
}

const DEVICE_BATCH: usize = 8;

/// Denoise the first drafts of the `picked` units in one batch; each unit's build then finds
/// its first draft made. Repairs and regenerations run one at a time, when each unit needs
/// them.
fn prefetch_first_drafts(
    s: &Shared,
    units: &[EditUnit],
    picked: &[usize],
    ahead: &BTreeMap<usize, (CompressedContext, Ready)>,
    progress: &dyn Progress,
) -> Result<(), PipelineError> {
    let mut jobs = Vec::new();
    for &j in picked {
        if let Some((context, Ready::Unit(p))) = ahead.get(&j) {
            // A unit whose canvas cannot be made is left to its own build, which says why.
            let first = with_site(s, &units[j], context, p, |site| {
                heal::first_canvas(&s.builder, site, &p.cfg)
            });
            if let Ok(job) = first {
                jobs.push(job);
            }
        }
    }
    if jobs.len() < 2 {
        return Ok(());
    }
    progress.phase(
        "build",
        Some(&format!("{} first drafts in one batch", jobs.len())),
    );
    let names: Vec<&str> = picked.iter().map(|&j| units[j].symbol.as_str()).collect();
    s.builder
        .prefetch(jobs)
        .map_err(|source| PipelineError::Build {
            unit: names.join(", "),
            source: Box::new(source),
        })
}

/// Write one prepared unit, heal it, score its risk, and splice it in when it may be.
fn build_unit(
    s: &Shared,
    unit: &EditUnit,
    context: &CompressedContext,
    p: Prepared,
    workspace: &mut Workspace,
    mut tests: Option<&mut TestGate>,
) -> Result<UnitResult, PipelineError> {
    let build = &s.options.build;
    let mut judge = UnitJudge::new(
        s.gate,
        tests.as_deref_mut(),
        &unit.file,
        &p.text,
        &unit.tests,
        s.options.tests.enabled,
    );
    let hits = s.builder.prefetch_hits();
    let healed = with_site(s, unit, context, &p, |site| {
        heal::build(
            &s.builder,
            &mut judge,
            site,
            &p.cfg,
            HealOptions {
                max_retries: build.max_retries,
                ..HealOptions::default()
            },
        )
    })
    .map_err(|e| judge.failure(&unit.symbol, e))?;
    let status = judge.status(healed.report.is_valid);
    let test_run = judge.last.take();
    let place = Place {
        kind: p.kind,
        text: &p.text,
        def_lines: p.def_lines,
        body: p.body,
        old_body: &p.old_body,
    };
    let mut built = finish_unit(s, unit, &p.cfg, &place, healed, status);
    built.unit.test_run = test_run;
    built.unit.batched = s.builder.prefetch_hits() > hits;
    if built.valid || !build.safe_mode {
        let f = workspace.get_mut(&unit.file).expect("located by prepare");
        f.splice(
            built.patched.clone(),
            unit.lines.1,
            p.body.1 - p.body.0 + 1,
            built.new_body_lines,
        );
        if let Some(t) = tests {
            t.accept(&unit.file, &built.patched)?;
        }
    }
    Ok(UnitResult::Built(Box::new(built.unit)))
}

/// Where a unit was written: the file before it, its definition's lines and the body lines
/// replaced, and the old body.
struct Place<'a> {
    kind: crate::lang::SourceKind,
    text: &'a str,
    def_lines: (usize, usize),
    body: (usize, usize),
    old_body: &'a str,
}

/// A healed unit with its risk, and the file it would make.
struct Finished {
    unit: BuiltUnit,
    valid: bool,
    patched: String,
    new_body_lines: usize,
}

fn finish_unit(
    s: &Shared,
    unit: &EditUnit,
    cfg: &GenerateConfig,
    place: &Place,
    healed: Healed,
    tests: TestStatus,
) -> Finished {
    let draft = &healed.draft;
    let valid = healed.passed();
    let retries = healed.attempts.len().saturating_sub(1) as u32;
    let changed = crate::patch::Diff::new("", place.old_body, &draft.body);
    let new_body_lines = draft.body.split_inclusive('\n').count();
    let patched = draft.patched();
    let findings = if healed.report.is_valid {
        let old_lines = place.body.1 - place.body.0 + 1;
        let end = (place.def_lines.1 + new_body_lines).saturating_sub(old_lines);
        semantic::check(&Rewrite {
            kind: place.kind,
            before: place.text,
            before_lines: place.def_lines,
            after: &patched,
            after_lines: (place.def_lines.0, end.max(place.def_lines.0)),
            has_callers: !unit.callers.is_empty(),
        })
    } else {
        Vec::new()
    };
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
        max_retries: s.options.build.max_retries,
        mean_probability: probability,
        gate_warnings: healed.report.warnings.len(),
        tests: tests.evidence(),
        semantic_warnings: findings.len(),
    });
    Finished {
        valid,
        patched,
        new_body_lines,
        unit: BuiltUnit {
            body_lines: place.body,
            valid,
            retries,
            risk,
            span: cfg.gen_length,
            steps: cfg.steps,
            forward_passes: healed.attempts.iter().map(|a| a.forward_passes).sum(),
            step_schedule: draft.generation.schedule.clone(),
            step_ms: draft.generation.step_ms.clone(),
            seconds: draft.generation.seconds,
            mean_confidence: draft.generation.mean_confidence(),
            body_sha256: sha256_tagged(draft.body.as_bytes()),
            tests,
            findings,
            public_api: unit.public_api,
            batched: false,
            attempts: healed.attempts,
            report: healed.report,
            test_run: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_leave_room_for_a_longer_body() {
        assert_eq!(span_for_edit(10), 32);
        assert_eq!(span_for_edit(40), 64);
        assert_eq!(span_for_edit(190), 256);
        assert_eq!(span_for_edit(200), 320);
        assert_eq!(span_for_edit(300), 384);
    }
}
