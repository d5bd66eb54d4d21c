use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

use super::exit;
use super::gen_opts::ModelArgs;
use super::generator_opts::GeneratorArgs;
use super::graph_opts::GraphArgs;
use super::reasoner_opts::ReasonerArgs;
use crate::compressor::{CompressedContext, Form, ScorerSet, Sources, Strategy};
use crate::pipeline::{Prepared, Quiet, Reasoning, Request};
use crate::reasoner::{ContextRole, Plan};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the change should do, in words.
    pub task: String,
    /// Files to change (repeatable).
    #[arg(short = 't', long = "target", required = true, value_name = "FILE")]
    pub targets: Vec<PathBuf>,
    /// Only these functions, methods or classes of the targets (repeatable): `add`,
    /// `Store.add`, or a full symbol.
    #[arg(short = 'f', long = "function", value_name = "NAME")]
    pub functions: Vec<String>,
    /// Repository root (default: the nearest folder with .ouroboros or .git).
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Also compress each unit's context to the generator's budget and show what was kept.
    #[arg(long)]
    pub show_context: bool,
    /// Context budget in tokens (default: the model's window less twice the unit, less 16).
    #[arg(long, value_name = "TOKENS", requires = "show_context")]
    pub budget: Option<usize>,
    /// How context is ranked: model (the diffusion model's loss gain), graph (planner
    /// priorities) or signatures (signatures only, by priority).
    #[arg(long, default_value = "model", requires = "show_context")]
    pub scorer: Strategy,
    /// The causal LM for `--scorer causal`: a Qwen2 checkpoint directory (HF layout).
    #[arg(long, value_name = "DIR", requires = "show_context")]
    pub scorer_model: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub reasoner: ReasonerArgs,
    #[command(flatten)]
    pub generator: GeneratorArgs,
}

/// Each unit's compressed context, in plan order: the code path `refactor` uses.
fn compress_plan(root: &Path, plan: &Plan, args: &Args) -> anyhow::Result<Vec<CompressedContext>> {
    crate::compressor::check_flags(&[args.scorer], args.scorer_model.as_deref())?;
    let engine = args.generator.open(&args.model.choice())?;
    let weights = if args.scorer == Strategy::Model {
        engine.weights_sha256()?
    } else {
        String::new()
    };
    let mut scorers = ScorerSet::open(
        &[args.scorer],
        &engine,
        weights,
        args.scorer_model.as_deref(),
        root,
    )?;
    let mut compressor = scorers.compressor(args.scorer);
    let mut sources = Sources::default();
    let mut out = Vec::new();
    for unit in &plan.units {
        let (_, context) = compressor.compress_unit(
            &mut sources,
            root,
            unit,
            args.budget,
            engine.model.max_positions(),
        )?;
        out.push(context);
    }
    Ok(out)
}

fn print_context(c: &CompressedContext) {
    println!(
        "    context: {} -> {} tokens (ratio {:.2}, budget {}, scorer {}{}, {:.0} ms, {} forward passes, {} cached)",
        c.tokens_before,
        c.tokens_after,
        c.compression_ratio,
        c.budget,
        c.strategy,
        c.scorer
            .as_ref()
            .map(|s| format!(" {} on {}", s.model, s.device))
            .unwrap_or_default(),
        c.duration_ms,
        c.forward_passes,
        c.cache_hits
    );
    for it in &c.items {
        let form = match it.form {
            Form::Full => "whole",
            Form::Signature => "signature",
            Form::Blocks => "blocks",
            Form::Dropped => "dropped",
        };
        let gain = it
            .gain_full
            .map(|g| format!("  gain {g:+.3}"))
            .unwrap_or_default();
        println!(
            "      {form:<9} {:>5}/{:<5} {}{gain}",
            it.tokens, it.full_tokens, it.symbol
        );
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = super::repo_root(args.root.as_deref())?;
    let targets = args
        .targets
        .iter()
        .map(|t| super::repo_relative(&root, t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut opened = args.graph.open(&root)?;
    let mut chat = args.reasoner.spec()?.open(args.model.device)?;
    let reasoning = match chat.as_deref_mut() {
        Some(c) => Reasoning::Ask(c, args.reasoner.spec()?.options(0)),
        None => Reasoning::Graph,
    };
    let request = Request {
        task: args.task.clone(),
        targets,
        functions: args.functions.clone(),
    };
    // Plans are made on a current graph; when nothing changed this parses nothing.
    let Prepared {
        plan,
        refinement,
        indexed,
        ..
    } = crate::pipeline::prepare(&root, opened.store.as_mut(), &request, reasoning, &Quiet)?;
    let contexts = if args.show_context {
        Some(compress_plan(&root, &plan, &args)?)
    } else {
        None
    };
    if args.json {
        let mut value = serde_json::to_value(&plan)?;
        if let (Some(contexts), Some(units)) = (&contexts, value["units"].as_array_mut()) {
            for (u, c) in units.iter_mut().zip(contexts) {
                u["context"] = serde_json::to_value(c)?;
            }
        }
        if let Some(r) = &refinement {
            value["reasoner"] = serde_json::to_value(r)?;
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::from(exit::OK));
    }
    if indexed.parsed > 0 {
        eprintln!("indexed {} changed file(s) first", indexed.parsed);
    }
    if plan.units.is_empty() {
        bail!("the targets define no function, method or class to edit");
    }
    println!("plan: {}", plan.task);
    if let Some(r) = &refinement {
        println!(
            "reasoner: {} ({}), {:.0} ms, {} prompt + {} answer tokens",
            r.model.model,
            r.summary(),
            r.duration_ms,
            r.prompt_tokens,
            r.completion_tokens
        );
    }
    for (i, u) in plan.units.iter().enumerate() {
        println!(
            "{:>2}. {} ({}, {}:{}-{}){}",
            i + 1,
            u.symbol,
            u.kind,
            u.file,
            u.lines.0,
            u.lines.1,
            if u.public_api { ", public" } else { "" }
        );
        println!("    why: {}", u.reason);
        if let Some(d) = &u.description {
            println!("    change: {d}");
        }
        println!(
            "    callers {}, callees {}, blast radius {}, tests: {}",
            u.callers.len(),
            u.callees.len(),
            u.blast_radius,
            if u.tests.is_empty() {
                "none".to_string()
            } else {
                u.tests.join(", ")
            }
        );
        let defs: Vec<&str> = u
            .context_items
            .iter()
            .filter(|c| c.role == ContextRole::Definition)
            .map(|c| c.symbol.as_str())
            .collect();
        if !defs.is_empty() {
            println!("    needs: {}", defs.join(", "));
        }
        if let Some(c) = contexts.as_ref().map(|c| &c[i]) {
            print_context(c);
        }
    }
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    Ok(ExitCode::from(exit::OK))
}
