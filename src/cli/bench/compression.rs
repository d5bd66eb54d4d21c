//! `bench compression`: what compression costs. On real functions of an indexed repository,
//! does each function's context still hold the definitions it actually calls after compression
//! to a share of its size? Reported per scorer and budget, next to the ratio.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::report::{col, mean_sd, Column, Report, Value};
use super::Common;
use crate::compressor::{CompressedContext, Form, ScorerSet, Sources, Strategy};
use crate::librarian::extract::NodeKind;
use crate::librarian::{self, CodeGraph, GraphStore, IndexOptions, SqliteStore};
use crate::reasoner;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Repository whose functions are sampled (indexed first, into its .ouroboros/).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Functions to sample.
    #[arg(long, default_value_t = 100)]
    pub sample: usize,
    /// Budgets as percentages of each function's uncompressed context.
    #[arg(long, value_delimiter = ',', default_value = "25,50,75")]
    pub budgets: Vec<u32>,
    /// Scorers to compare.
    #[arg(
        long = "scorer",
        value_delimiter = ',',
        default_value = "model,graph,signatures"
    )]
    pub scorers: Vec<Strategy>,
    /// The causal LM for the `causal` scorer: a Qwen2 checkpoint directory (HF layout).
    #[arg(long, value_name = "DIR")]
    pub scorer_model: Option<PathBuf>,
    /// Only functions whose context is at least this many tokens (there is little to compress
    /// below it).
    #[arg(long, default_value_t = 200)]
    pub min_context: usize,
}

const COLUMNS: [Column; 9] = [
    col("scorer", "scorer"),
    col("budget_pct", "budget %"),
    col("functions", "functions"),
    col("ratio_mean", "ratio"),
    col("recall_whole", "recall (whole)"),
    // The definition's code survived: whole, or its relevant blocks.
    col("recall_code", "recall (whole or blocks)"),
    col("recall_any", "recall (any form)"),
    // Compression time per unit once scores are known (cached).
    col("ms_per_unit", "fit ms/unit"),
    // Scoring time per unit (the model's forward passes; 0 without a model).
    col("score_ms_per_unit", "score ms/unit"),
];

/// Per (scorer, budget): ratios, recalls and fitting times; per scorer: scoring times.
struct Tally {
    ratio: Vec<f64>,
    whole: Vec<f64>,
    code: Vec<f64>,
    any: Vec<f64>,
    ms: Vec<f64>,
}

pub fn run(args: &Args) -> anyhow::Result<Report> {
    let root = args
        .root
        .clone()
        .context("bench compression needs --root DIR (a repository to sample functions from)")?;
    if !root.is_dir() {
        bail!("--root {}: not a directory", root.display());
    }
    if args.budgets.iter().any(|&b| b == 0 || b > 100) {
        bail!("--budgets: percentages must be in 1..=100");
    }
    crate::compressor::check_flags(&args.scorers, args.scorer_model.as_deref())?;
    let engine = args.common.open()?;
    let model = &engine.model;
    let mut store = SqliteStore::open(&librarian::default_db(&root))?;
    librarian::index(
        &root,
        &mut store,
        &IndexOptions {
            max_file_size: librarian::DEFAULT_MAX_FILE_SIZE,
        },
        &|_, _| {},
    )?;
    let graph = CodeGraph::new(store.load_graph()?);
    let mut pool: Vec<_> = graph
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Function | NodeKind::Method))
        .filter(|n| !n.file.contains("test"))
        .collect();
    pool.sort_by(|a, b| a.id.cmp(&b.id));
    pool.shuffle(&mut ChaCha8Rng::seed_from_u64(args.common.seed));
    let weights = if args.scorers.contains(&Strategy::Model) {
        engine.weights_sha256()?
    } else {
        String::new()
    };
    let mut scorers = ScorerSet::open(
        &args.scorers,
        &engine,
        weights,
        args.scorer_model.as_deref(),
        &root,
    )?;
    let mut sources = Sources::default();
    let mut tallies: Vec<Tally> = (0..args.scorers.len() * args.budgets.len())
        .map(|_| Tally {
            ratio: vec![],
            whole: vec![],
            code: vec![],
            any: vec![],
            ms: vec![],
        })
        .collect();
    let mut score_ms: Vec<Vec<f64>> = vec![Vec::new(); args.scorers.len()];
    let mut used = 0;
    for node in pool {
        if used == args.sample {
            break;
        }
        let called: HashSet<String> = graph
            .callees(node, 1)
            .into_iter()
            .map(|r| r.symbol)
            .collect();
        if called.is_empty() {
            continue;
        }
        let unit = reasoner::unit(&graph, node, "sampled for the compression benchmark".into());
        let Ok((code, candidates)) = sources.gather(&root, &unit) else {
            continue;
        };
        let in_context: Vec<&str> = candidates
            .iter()
            .filter(|c| called.contains(&c.item.symbol))
            .map(|c| c.item.symbol.as_str())
            .collect();
        if in_context.is_empty() {
            continue;
        }
        let whole: usize = candidates
            .iter()
            .map(|c| model.codec.encode(&c.full).map(|t| t.len()))
            .sum::<Result<usize, _>>()?;
        if whole < args.min_context {
            continue;
        }
        used += 1;
        let sample = Sample {
            unit: &unit,
            code: &code,
            candidates: &candidates,
            whole,
            called: &in_context,
        };
        measure(&mut scorers, args, &sample, &mut tallies, &mut score_ms)?;
        eprint!("\r{used}/{} functions", args.sample);
    }
    eprintln!();
    if used == 0 {
        bail!(
            "--root {}: no function with resolved calls and at least {} tokens of context",
            root.display(),
            args.min_context
        );
    }
    Ok(table(args, &engine, &scorers, &tallies, &score_ms, used))
}

/// One sampled function: its code, its context candidates, their whole size in tokens, and the
/// definitions it calls that are among them.
struct Sample<'a> {
    unit: &'a crate::reasoner::EditUnit,
    code: &'a str,
    candidates: &'a [crate::compressor::Candidate],
    whole: usize,
    called: &'a [&'a str],
}

/// Compress one sample with every scorer at every budget.
fn measure(
    scorers: &mut ScorerSet,
    args: &Args,
    s: &Sample,
    tallies: &mut [Tally],
    score_ms: &mut [Vec<f64>],
) -> anyhow::Result<()> {
    for (si, &strategy) in args.scorers.iter().enumerate() {
        // Score once (into the cache) and time it apart from the budget fitting.
        let started = Instant::now();
        if strategy.scored() {
            scorers
                .compressor(strategy)
                .compress(s.unit, s.code, s.candidates, s.whole)?;
        }
        score_ms[si].push(started.elapsed().as_secs_f64() * 1e3);
        for (bi, &pct) in args.budgets.iter().enumerate() {
            let started = Instant::now();
            let budget = s.whole * pct as usize / 100;
            let out =
                scorers
                    .compressor(strategy)
                    .compress(s.unit, s.code, s.candidates, budget)?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            tally(
                &mut tallies[si * args.budgets.len() + bi],
                &out,
                s.called,
                ms,
            );
        }
    }
    Ok(())
}

fn table(
    args: &Args,
    engine: &crate::engine::Engine,
    scorers: &ScorerSet,
    tallies: &[Tally],
    score_ms: &[Vec<f64>],
    used: usize,
) -> Report {
    let mut report = Report::new(&COLUMNS);
    report.note = format!("tokens counted with {}'s tokenizer", engine.model.name);
    for (si, strategy) in args.scorers.iter().enumerate() {
        let mut meta = Common::meta(engine);
        meta.model = match strategy {
            Strategy::Model => meta.model,
            Strategy::Causal => scorers.causal_name().unwrap_or("-").to_string(),
            _ => "-".into(),
        };
        for (bi, &pct) in args.budgets.iter().enumerate() {
            let t = &tallies[si * args.budgets.len() + bi];
            let cell = |xs: &[f64]| {
                let (m, sd) = mean_sd(xs);
                Value::MeanSd(m, sd, 3)
            };
            report.push(
                &meta,
                vec![
                    strategy.to_string().into(),
                    (pct as usize).into(),
                    used.into(),
                    Value::Num(mean_sd(&t.ratio).0, 2),
                    cell(&t.whole),
                    cell(&t.code),
                    cell(&t.any),
                    Value::Num(mean_sd(&t.ms).0, 1),
                    Value::Num(
                        if strategy.scored() {
                            mean_sd(&score_ms[si]).0
                        } else {
                            0.0
                        },
                        0,
                    ),
                ],
            );
        }
    }
    report
}

/// The share of the called definitions that survived, in each sense of surviving.
fn tally(t: &mut Tally, out: &CompressedContext, called: &[&str], ms: f64) {
    let form = |s: &str| out.items.iter().find(|i| i.symbol == s).map(|i| i.form);
    let share = |ok: &dyn Fn(Form) -> bool| {
        called.iter().filter(|s| form(s).is_some_and(ok)).count() as f64 / called.len() as f64
    };
    t.ratio.push(out.compression_ratio);
    t.whole.push(share(&|f| f == Form::Full));
    t.code
        .push(share(&|f| matches!(f, Form::Full | Form::Blocks)));
    t.any.push(share(&|f| f != Form::Dropped));
    t.ms.push(ms);
}
