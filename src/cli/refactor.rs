//! `ouroboros refactor`: the whole product. The pipeline writes the units; this command decides
//! what reaches disk, prints the results, and records the run.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::exit;
use super::gen_opts::{build_config, load_model, ModelArgs, SamplingArgs};
use super::graph_opts::GraphArgs;
use super::reasoner_opts::ReasonerArgs;
use crate::compressor::Strategy;
use crate::device::dtype_name;
use crate::gate::{Gate, PythonTarget, SourceKind};
use crate::patch::{self, Diff, Snapshot};
use crate::pipeline::{self, interrupt, Outcome, PipelineError, Progress, Reasoning, Settings};
use crate::provenance::{
    Attempt, ModelUsage, ProvenanceLogger, RefactorRecord, StepTiming, UnitRecord,
};

#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct Args {
    /// What the change should do, in words.
    pub task: String,
    /// Files to change (repeatable).
    #[arg(short = 't', long = "target", required = true, value_name = "FILE")]
    pub targets: Vec<PathBuf>,
    /// Only these functions, methods or classes of the targets (repeatable).
    #[arg(short = 'f', long = "function", value_name = "NAME")]
    pub functions: Vec<String>,
    /// infill (mask the body; base models) or instruct (chat template; instruct models).
    /// Default: instruct when the checkpoint has a chat template, else infill.
    #[arg(long, value_enum)]
    pub mode: Option<pipeline::Mode>,
    /// Tokens each body gets on the canvas (default: sized from the current body).
    #[arg(long)]
    pub gen_length: Option<usize>,
    /// Decode the span in blocks of this many tokens, left to right (semi-autoregressive).
    #[arg(long)]
    pub block_length: Option<usize>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Block the gate's verdict (default); `--no-safe-mode` records it but does not block.
    #[arg(long, overrides_with = "no_safe_mode")]
    pub safe_mode: bool,
    #[arg(long, overrides_with = "safe_mode")]
    pub no_safe_mode: bool,
    /// Self-healing attempts per unit after the first generation.
    #[arg(long, default_value_t = 3)]
    pub max_retries: u32,
    /// Auto-apply only patches at or below this risk (0.0-1.0).
    #[arg(long, default_value_t = 0.3, value_parser = parse_risk)]
    pub max_risk: f64,
    /// Write patches whose risk is at most --max-risk (stale-file check, backup, atomic write).
    #[arg(long, conflicts_with = "dry_run")]
    pub auto_apply: bool,
    /// Write nothing; show the diff.
    #[arg(long)]
    pub dry_run: bool,
    /// How context is ranked: model, graph or signatures.
    #[arg(long, default_value = "model", value_parser = |s: &str| s.parse::<Strategy>())]
    #[serde(with = "strategy_name")]
    pub scorer: Strategy,
    /// The causal LM for `--scorer causal`: a Qwen2 checkpoint directory (HF layout).
    #[arg(long, value_name = "DIR")]
    #[serde(default)]
    pub scorer_model: Option<PathBuf>,
    /// Context budget in tokens per unit (default: the model's window less twice the unit).
    #[arg(long)]
    pub budget: Option<usize>,
    #[arg(long, default_value = "3.12")]
    #[serde(skip, default)]
    pub python_version: PythonTarget,
    /// Repository root (default: the nearest folder with .ouroboros or .git).
    #[arg(long)]
    #[serde(skip)]
    pub root: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip)]
    pub json: bool,
    #[command(flatten)]
    #[serde(skip)]
    pub graph: GraphArgs,
    #[command(flatten)]
    #[serde(default)]
    pub reasoner: ReasonerArgs,
}

mod strategy_name {
    use crate::compressor::Strategy;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Strategy, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Strategy, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn parse_risk(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s}: expected a number from 0.0 to 1.0")),
    }
}

struct Spinner(ProgressBar);

impl Progress for Spinner {
    fn phase(&self, name: &str, unit: Option<&str>) {
        self.0.set_message(match unit {
            Some(u) => format!("{name}: {u}"),
            None => name.to_string(),
        });
    }
}

/// What became of each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Applied,
    CanApply,
    NeedsReview,
    Invalid,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::CanApply => "can apply",
            Status::NeedsReview => "needs review",
            Status::Invalid => "invalid: not written",
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = super::repo_root(args.root.as_deref())?;
    let mut targets = Vec::new();
    for t in &args.targets {
        if SourceKind::from_path(t).is_none() {
            bail!(
                "--target {}: unknown file type; supported: .py .pyi .js .mjs .cjs .jsx .ts .mts .cts .tsx",
                t.display()
            );
        }
        targets.push(super::repo_relative(&root, t)?);
    }
    crate::compressor::causal::check_flags(args.scorer, args.scorer_model.as_deref())?;
    if args.gen_length == Some(0) {
        bail!("--gen-length must be at least 1");
    }
    if args.block_length == Some(0) {
        bail!("--block-length must be at least 1");
    }
    interrupt::install();
    // Flags first: a bad reasoner option should not cost a model load.
    let mut chat = args.reasoner.open(&args.model.device.parse()?)?;
    let loaded = load_model(&args.model)?;
    let model = &loaded.model;
    let weights = crate::models::weights_sha256(&model.shards)
        .with_context(|| format!("hashing the weights of {}", model.dir.display()))?;
    let cfg = build_config(&loaded, &args.sampling, Some(64), Some(64))?;
    let mode = resolve_mode(args.mode, model)?;
    let steps = super::gen_opts::step_rule(&args.sampling);
    // The files as they are now: the pipeline reads these, and apply refuses to write over a
    // file that changed after this point.
    let mut snapshots = HashMap::new();
    let mut contents = HashMap::new();
    for t in &targets {
        let snap = Snapshot::read(&root, Path::new(t))?;
        let text = String::from_utf8(snap.bytes.clone())
            .map_err(|_| anyhow!("--target {t}: not valid UTF-8"))?;
        contents.insert(t.clone(), text);
        snapshots.insert(t.clone(), snap);
    }

    let mut log = ProvenanceLogger::start(&root, &args.task)?;
    let spinner = if !args.json && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("static template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut opened = args.graph.open(&root)?;
    let settings = Settings {
        task: &args.task,
        targets: &targets,
        functions: &args.functions,
        model,
        weights_sha256: &weights,
        mode,
        cfg: &cfg,
        steps,
        gen_length: args.gen_length,
        block_length: args.block_length,
        max_retries: args.max_retries,
        safe_mode: !args.no_safe_mode,
        scorer: args.scorer,
        scorer_model: args.scorer_model.as_deref(),
        budget: args.budget,
        gate: Gate::new(args.python_version),
        overrides: &contents,
    };
    let reasoning = match chat.as_deref_mut() {
        Some(c) => Reasoning::Ask(c, args.reasoner.options(args.sampling.seed)),
        None => Reasoning::Graph,
    };
    let result = pipeline::run(
        &root,
        opened.store.as_mut(),
        &settings,
        reasoning,
        &Spinner(spinner.clone()),
    );
    spinner.finish_and_clear();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let interrupted = matches!(e, PipelineError::Interrupted);
            let path = log.finish(false, Some(e.to_string()))?;
            eprintln!("provenance: {}", path.display());
            if interrupted {
                eprintln!("interrupted: nothing was written");
                return Ok(ExitCode::from(exit::ERROR));
            }
            return Err(e.into());
        }
    };

    record_models(&mut log, &outcome, &loaded, &weights, &cfg, mode);
    let safe = !args.no_safe_mode;
    let mut statuses: HashMap<String, Status> = HashMap::new();
    let mut diffs = String::new();
    for f in &outcome.files {
        log.log_safety_check(
            "syntax_validation",
            f.valid,
            if f.valid {
                format!("{} gate passed on the patched file", f.report.language)
            } else {
                format!(
                    "{} gate failed: {}",
                    f.report.language, f.report.error_summary
                )
            },
            Some(&f.file),
        );
        diffs.push_str(&Diff::new(&f.file, &f.original, &f.patched).unified);
        let status = if !f.valid && safe {
            Status::Invalid
        } else if f.risk > args.max_risk {
            Status::NeedsReview
        } else if args.auto_apply && !args.dry_run {
            if interrupt::requested() {
                Status::CanApply
            } else {
                let backups = log.run_dir().join("backups");
                let change =
                    patch::apply(&root, &backups, &snapshots[&f.file], f.patched.as_bytes())
                        .with_context(|| format!("applying {}", f.file))?;
                log.log_file_modification(&change);
                Status::Applied
            }
        } else {
            Status::CanApply
        };
        statuses.insert(f.file.clone(), status);
    }
    if !diffs.is_empty() {
        std::fs::write(log.run_dir().join("changes.diff"), &diffs)
            .with_context(|| format!("writing {}", log.run_dir().display()))?;
    }

    let unit_status = |u: &pipeline::UnitOutcome| -> String {
        if let Some(why) = &u.skipped {
            return format!("skipped: {why}");
        }
        if !u.valid && safe {
            return Status::Invalid.text().to_string();
        }
        statuses
            .get(&u.file)
            .map_or(Status::Invalid.text(), |s| s.text())
            .to_string()
    };
    let units: Vec<UnitRecord> = outcome
        .units
        .iter()
        .map(|u| UnitRecord {
            symbol: u.symbol.clone(),
            file: u.file.clone(),
            status: unit_status(u),
            valid: u.valid,
            risk: u.risk.score,
            risk_terms: u
                .risk
                .terms
                .iter()
                .map(|t| (t.name.to_string(), t.value))
                .collect(),
            retries: u.retries,
            span: u.span,
            steps: u.steps,
            forward_passes: u.forward_passes,
            body_sha256: u.body_sha256.clone(),
            tokens_before: u.context.tokens_before,
            tokens_after: u.context.tokens_after,
            compression_ratio: u.context.compression_ratio,
        })
        .collect();
    for u in &outcome.units {
        for a in &u.attempts {
            log.log_attempt(Attempt {
                unit: u.symbol.clone(),
                attempt: a.attempt,
                action: a.action.name().to_string(),
                passed: a.passed,
                errors: a.errors.clone(),
                steps: Some(a.steps as u32),
                remasked_tokens: a.remasked.map(|n| n as u32),
                duration_ms: a.duration_ms,
            });
        }
    }
    let mut request = serde_json::to_value(&args)?;
    request["targets"] = serde_json::json!(targets);
    request["weights_sha256"] = serde_json::json!(weights);
    log.set_refactor(RefactorRecord {
        request,
        inputs: outcome.inputs.clone(),
        units: units.clone(),
        reasoner: outcome
            .refinement
            .as_ref()
            .map(serde_json::to_value)
            .transpose()?,
    });
    let all_good = !units.is_empty()
        && units
            .iter()
            .all(|u| u.status == "applied" || u.status == "can apply");
    let interrupted = interrupt::requested();
    let run_id = log.run_id().to_string();
    let run_dir = log.run_dir().to_path_buf();
    let path = log.finish(
        all_good && !interrupted,
        if interrupted {
            Some("interrupted".into())
        } else if all_good {
            None
        } else {
            Some("some units are invalid, skipped or over --max-risk".into())
        },
    )?;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "run_id": run_id,
                "units": units,
                "warnings": outcome.plan.warnings,
                "provenance": path,
            }))?
        );
    } else {
        if !diffs.is_empty() && !statuses.values().all(|s| *s == Status::Applied) {
            print!("{diffs}");
        }
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["file", "unit", "valid", "risk", "retries", "status"]);
        for u in &units {
            table.add_row([
                u.file.clone(),
                u.symbol.clone(),
                if u.valid { "yes".into() } else { "no".into() },
                format!("{:.2}", u.risk),
                u.retries.to_string(),
                u.status.clone(),
            ]);
        }
        println!("{table}");
        for w in &outcome.plan.warnings {
            println!("warning: {w}");
        }
        if args.dry_run {
            println!("dry run: nothing written");
        } else if !args.auto_apply && !diffs.is_empty() {
            println!(
                "not applied (no --auto-apply); diff saved to {}",
                run_dir.join("changes.diff").display()
            );
        }
        println!("run: {run_id}\nprovenance: {}", path.display());
    }
    Ok(ExitCode::from(if interrupted {
        exit::ERROR
    } else if all_good {
        exit::OK
    } else {
        exit::REJECTED
    }))
}

/// `--mode`, or the checkpoint's kind: instruct when it has a chat template.
pub(crate) fn resolve_mode(
    asked: Option<pipeline::Mode>,
    model: &crate::diffusion::DiffusionLm,
) -> anyhow::Result<pipeline::Mode> {
    let template = crate::builder::chat_template(&model.dir).map_err(|e| anyhow!(e))?;
    Ok(match asked {
        Some(m) => m,
        None if template.is_some() => pipeline::Mode::Instruct,
        None => pipeline::Mode::Infill,
    })
}

fn record_models(
    log: &mut ProvenanceLogger,
    outcome: &Outcome,
    loaded: &super::gen_opts::Loaded,
    weights: &str,
    cfg: &crate::diffusion::GenerateConfig,
    mode: pipeline::Mode,
) {
    let model = &loaded.model;
    let device = loaded.device.to_string();
    let dtype = dtype_name(model.dtype).to_string();
    if let Some(r) = &outcome.refinement {
        log.log_model_usage(ModelUsage {
            phase: "reason".into(),
            model_name: r.model.model.clone(),
            purpose: format!("refining the plan ({})", r.summary()),
            tokens_used: (r.prompt_tokens + r.completion_tokens) as u64,
            duration_ms: r.duration_ms,
            device: r.model.device.clone(),
            weights_sha256: r.model.weights_sha256.clone(),
            ..ModelUsage::default()
        });
    }
    let before: usize = outcome.units.iter().map(|u| u.context.tokens_before).sum();
    let after: usize = outcome.units.iter().map(|u| u.context.tokens_after).sum();
    // The scoring model is the generator unless another one (`--scorer causal`) was named.
    let scorer = outcome.units.iter().find_map(|u| u.context.scorer.as_ref());
    log.log_model_usage(ModelUsage {
        phase: "compress".into(),
        model_name: scorer.map_or(model.name.clone(), |s| s.model.clone()),
        purpose: format!(
            "ranking context ({}) and fitting it to the generator's budget",
            outcome
                .units
                .first()
                .map_or("model".to_string(), |u| u.context.strategy.to_string())
        ),
        tokens_used: after as u64,
        duration_ms: outcome.compress_ms,
        compression_ratio: Some(if before == 0 {
            1.0
        } else {
            after as f64 / before as f64
        }),
        device: Some(device.clone()),
        dtype: Some(dtype.clone()),
        weights_sha256: Some(scorer.map_or(weights.to_string(), |s| s.weights_sha256.clone())),
        ..ModelUsage::default()
    });
    for u in outcome.units.iter().filter(|u| u.skipped.is_none()) {
        log.log_model_usage(ModelUsage {
            phase: "generate".into(),
            model_name: model.name.clone(),
            purpose: format!(
                "writing {} ({})",
                u.symbol,
                format!("{mode:?}").to_lowercase()
            ),
            tokens_used: u.span as u64,
            duration_ms: u.seconds * 1e3,
            num_steps: Some(u.steps as u32),
            retry_count: Some(u.retries),
            device: Some(device.clone()),
            dtype: Some(dtype.clone()),
            weights_sha256: Some(weights.to_string()),
            sampler: Some(cfg.sampler.name().to_string()),
            step_schedule: Some(u.step_schedule.clone()),
            seed: Some(cfg.seed),
            step_timing: StepTiming::from_ms(&u.step_ms),
            ..ModelUsage::default()
        });
    }
}
