//! `ouroboros refactor`: the whole product. The flags become a checked request once; the
//! pipeline runs it, writes what may be written and records the run; this prints the result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use super::exit;
use super::gen_opts::{ModelArgs, SamplingArgs};
use super::generator_opts::GeneratorArgs;
use super::graph_opts::GraphArgs;
use super::reasoner_opts::ReasonerArgs;
use super::test_opts::TestArgs;
use crate::compressor::Strategy;
use crate::diffusion::CacheMode;
use crate::engine::Mode;
use crate::gate::PythonTarget;
use crate::interrupt;
use crate::lang::SourceKind;
use crate::pipeline::{
    self, ApplyOptions, BuildOptions, CompressOptions, PipelineError, Reasoning, Request,
    RunOptions, RunReport,
};

#[derive(Debug, Clone, clap::Args)]
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
    #[arg(long)]
    pub mode: Option<Mode>,
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
    /// Denoise the first drafts of up to N units in different files together (default: 1 on
    /// the CPU, 8 on a GPU). Outputs do not change, only the time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub batch: Option<u32>,
    /// Auto-apply only patches at or below this risk (0.0-1.0).
    #[arg(long, default_value_t = 0.3, value_parser = parse_risk)]
    pub max_risk: f64,
    /// Write patches whose risk is at most --max-risk (stale-file check, backup, atomic write).
    #[arg(long, conflicts_with = "dry_run")]
    pub auto_apply: bool,
    /// Write nothing; show the diff.
    #[arg(long)]
    pub dry_run: bool,
    /// How context is ranked: model, causal, graph or signatures.
    #[arg(long, default_value = "model")]
    pub scorer: Strategy,
    /// The causal LM for `--scorer causal`: a Qwen2 checkpoint directory (HF layout).
    #[arg(long, value_name = "DIR")]
    pub scorer_model: Option<PathBuf>,
    /// Context budget in tokens per unit (default: the model's window less twice the unit).
    #[arg(long)]
    pub budget: Option<usize>,
    #[arg(long, default_value = "3.12")]
    pub python_version: PythonTarget,
    #[command(flatten)]
    pub tests: TestArgs,
    /// Repository root (default: the nearest folder with .ouroboros or .git).
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub reasoner: ReasonerArgs,
    #[command(flatten)]
    pub generator: GeneratorArgs,
}

fn parse_risk(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s}: expected a number from 0.0 to 1.0")),
    }
}

impl Args {
    /// The request and its options, every flag checked (before any model loads).
    fn resolve(&self, root: &Path) -> anyhow::Result<(Request, RunOptions)> {
        let mut targets = Vec::new();
        for t in &self.targets {
            if SourceKind::from_path(t).is_none() {
                bail!(
                    "--target {}: unknown file type; supported: .py .pyi .js .mjs .cjs .jsx .ts .mts .cts .tsx",
                    t.display()
                );
            }
            targets.push(super::repo_relative(root, t)?);
        }
        crate::compressor::check_flags(&[self.scorer], self.scorer_model.as_deref())?;
        if self.gen_length == Some(0) {
            bail!("--gen-length must be at least 1");
        }
        if self.block_length == Some(0) {
            bail!("--block-length must be at least 1");
        }

        let request = Request {
            task: self.task.clone(),
            targets,
            functions: self.functions.clone(),
        };
        let options = RunOptions {
            model: self.model.choice(),
            generator: self.generator.spec()?,
            build: BuildOptions {
                mode: self.mode,
                gen_length: self.gen_length,
                block_length: self.block_length,
                // Measured on the bundled model (`bench infill --cache`, 120 held-out bodies):
                // the dual cache passes the gate as often as none and is 2.1-2.6x as fast.
                sampling: self.sampling.options_or(CacheMode::Dual),
                max_retries: self.max_retries,
                safe_mode: !self.no_safe_mode,
                batch: self.batch.map(|n| n as usize),
            },
            compress: CompressOptions {
                scorer: self.scorer,
                scorer_model: self.scorer_model.clone(),
                budget: self.budget,
            },
            apply: ApplyOptions {
                max_risk: self.max_risk,
                auto_apply: self.auto_apply,
                dry_run: self.dry_run,
            },
            reasoner: self.reasoner.spec()?,
            python: self.python_version,
            tests: self.tests.options()?,
        };
        Ok((request, options))
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = super::repo_root(args.root.as_deref())?;
    let (request, options) = args.resolve(&root)?;
    interrupt::install();
    super::report_leftovers(&root);
    // Flags first: a bad reasoner option should not cost a model load.
    let mut chat = options.reasoner.open(options.model.device)?;
    let engine = args.generator.open(&options.model)?;
    let mut opened = args.graph.open(&root)?;
    let reasoning = match chat.as_deref_mut() {
        Some(c) => Reasoning::Ask(c, options.reasoner.options(options.build.sampling.seed)),
        None => Reasoning::Graph,
    };
    let bar = super::progress::spinner(args.json);
    let result = pipeline::refactor(
        &root,
        opened.store.as_mut(),
        &request,
        &options,
        &engine,
        reasoning,
        &super::progress::Spinner(bar.clone()),
    );
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(failure) => {
            if let Some(path) = &failure.record {
                eprintln!("provenance: {}", path.display());
            }
            if matches!(*failure.error, PipelineError::Interrupted) {
                eprintln!("interrupted: nothing was written");
                return Ok(ExitCode::from(exit::ERROR));
            }
            return Err(failure.into());
        }
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report, &options.apply);
    }
    Ok(ExitCode::from(if report.interrupted {
        exit::ERROR
    } else if report.all_good {
        exit::OK
    } else {
        exit::REJECTED
    }))
}

fn print_json(report: &RunReport) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "run_id": report.run_id,
            "units": report.units,
            "warnings": report.warnings,
            "provenance": report.record,
        }))?
    );
    Ok(())
}

fn print_report(report: &RunReport, apply: &ApplyOptions) {
    if !report.diffs.is_empty() && !report.all_applied {
        print!("{}", report.diffs);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "file", "unit", "valid", "risk", "retries", "tests", "status",
    ]);
    for u in &report.units {
        table.add_row([
            u.file.clone(),
            u.symbol.clone(),
            if u.valid { "yes".into() } else { "no".into() },
            format!("{:.2}", u.risk),
            u.retries.to_string(),
            u.tests.clone(),
            u.status.clone(),
        ]);
    }
    println!("{table}");
    for u in &report.units {
        for f in &u.semantic {
            println!("{}: {} line {f}", u.symbol, u.file);
        }
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    if apply.dry_run {
        println!("dry run: nothing written");
    } else if !apply.auto_apply && !report.diffs.is_empty() {
        println!(
            "not applied (no --auto-apply); diff saved to {}",
            report.run_dir.join("changes.diff").display()
        );
    }
    println!(
        "run: {}\nprovenance: {}",
        report.run_id,
        report.record.display()
    );
}
