//! `bench --eval compression`: what compression costs. On real functions of an indexed
//! repository, does each function's context still hold the definitions it actually calls after
//! compression to a share of its size? Reported per scorer and budget, next to the ratio.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::bench::{mean_sd, print_jsonl};
use super::gen_opts::Loaded;
use crate::compressor::{causal, Compressor, DiffusionScorer, Form, ScoreCache, Sources, Strategy};
use crate::device::dtype_name;
use crate::librarian::extract::NodeKind;
use crate::librarian::{self, CodeGraph, GraphStore, IndexOptions, SqliteStore};
use crate::reasoner;

#[derive(Debug, Clone, clap::Args)]
pub struct CompressionArgs {
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
    #[arg(long = "scorer", value_delimiter = ',', default_value = "model,graph,signatures",
          value_parser = |s: &str| s.parse::<Strategy>())]
    pub scorers: Vec<Strategy>,
    /// The causal LM for the `causal` scorer: a Qwen2 checkpoint directory (HF layout).
    #[arg(long, value_name = "DIR")]
    pub scorer_model: Option<std::path::PathBuf>,
    /// Only functions whose context is at least this many tokens (there is little to compress
    /// below it).
    #[arg(long, default_value_t = 200)]
    pub min_context: usize,
}

/// One row; md, csv and jsonl print exactly these fields.
#[derive(Serialize)]
pub struct Row {
    model: String,
    params: usize,
    backend: String,
    dtype: String,
    scorer: String,
    budget_pct: u32,
    functions: usize,
    ratio_mean: f64,
    recall_whole_mean: f64,
    recall_whole_sd: f64,
    /// The definition's code survived: whole, or its relevant blocks.
    recall_code_mean: f64,
    recall_code_sd: f64,
    recall_any_mean: f64,
    recall_any_sd: f64,
    /// Compression time per unit once scores are known (cached).
    ms_per_unit: f64,
    /// Scoring time per unit (the model's forward passes; 0 without a model).
    score_ms_per_unit: f64,
    commit: String,
    date: String,
}

pub fn run(loaded: &Loaded, args: &CompressionArgs, seed: u64) -> anyhow::Result<Vec<Row>> {
    let root = args
        .root
        .clone()
        .context("--eval compression needs --root DIR (a repository to sample functions from)")?;
    if !root.is_dir() {
        bail!("--root {}: not a directory", root.display());
    }
    if args.budgets.iter().any(|&b| b == 0 || b > 100) {
        bail!("--budgets: percentages must be in 1..=100");
    }
    let model = &loaded.model;
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
    pool.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));

    let weights = if args.scorers.contains(&Strategy::Model) {
        crate::models::weights_sha256(&model.shards)?
    } else {
        String::new()
    };
    let mut scorer = DiffusionScorer::new(model, weights);
    let mut causal = if args.scorers.contains(&Strategy::Causal) {
        causal::load_for(
            Strategy::Causal,
            args.scorer_model.as_deref(),
            &model.device,
            model.dtype,
        )?
    } else {
        None
    };
    let mut causal_scorer = causal.as_mut().map(causal::CausalScorer::new);
    let mut cache = ScoreCache::in_repo(&root)?;
    let mut sources = Sources::default();
    // Per (scorer, budget): ratios, recall of called definitions kept whole, kept in any form,
    // and milliseconds.
    let cells = args.scorers.len() * args.budgets.len();
    let mut acc: Vec<[Vec<f64>; 5]> = (0..cells).map(|_| Default::default()).collect();
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
        if !candidates.iter().any(|c| called.contains(&c.item.symbol)) {
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
        let in_context: Vec<&str> = candidates
            .iter()
            .filter(|c| called.contains(&c.item.symbol))
            .map(|c| c.item.symbol.as_str())
            .collect();
        for (si, &strategy) in args.scorers.iter().enumerate() {
            // Score once (into the cache) and time it apart from the budget fitting.
            let started = Instant::now();
            if strategy.scored() {
                Compressor {
                    strategy,
                    codec: &model.codec,
                    scorer: Some(causal::pick(
                        &mut scorer,
                        causal_scorer
                            .as_mut()
                            .filter(|_| strategy == Strategy::Causal),
                    )),
                    cache: Some(&mut cache),
                }
                .compress(&unit, &code, &candidates, whole)?;
            }
            score_ms[si].push(started.elapsed().as_secs_f64() * 1e3);
            for (bi, &pct) in args.budgets.iter().enumerate() {
                let mut compressor = Compressor {
                    strategy,
                    codec: &model.codec,
                    scorer: Some(causal::pick(
                        &mut scorer,
                        causal_scorer
                            .as_mut()
                            .filter(|_| strategy == Strategy::Causal),
                    )),
                    cache: Some(&mut cache),
                };
                let started = Instant::now();
                let budget = whole * pct as usize / 100;
                let out = compressor.compress(&unit, &code, &candidates, budget)?;
                let ms = started.elapsed().as_secs_f64() * 1e3;
                let form = |s: &str| out.items.iter().find(|i| i.symbol == s).map(|i| i.form);
                let n = in_context.len() as f64;
                let kept_whole = in_context
                    .iter()
                    .filter(|s| form(s) == Some(Form::Full))
                    .count() as f64;
                let kept_code = in_context
                    .iter()
                    .filter(|s| matches!(form(s), Some(Form::Full | Form::Blocks)))
                    .count() as f64;
                let kept_any = in_context
                    .iter()
                    .filter(|s| {
                        matches!(form(s), Some(Form::Full | Form::Blocks | Form::Signature))
                    })
                    .count() as f64;
                let a = &mut acc[si * args.budgets.len() + bi];
                a[0].push(out.compression_ratio);
                a[1].push(kept_whole / n);
                a[2].push(kept_any / n);
                a[3].push(ms);
                a[4].push(kept_code / n);
            }
        }
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
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut rows = Vec::new();
    for (si, strategy) in args.scorers.iter().enumerate() {
        for (bi, &pct) in args.budgets.iter().enumerate() {
            let a = &acc[si * args.budgets.len() + bi];
            let (rw, rw_sd) = mean_sd(&a[1]);
            let (ra, ra_sd) = mean_sd(&a[2]);
            let (rc, rc_sd) = mean_sd(&a[4]);
            rows.push(Row {
                model: if *strategy == Strategy::Causal {
                    causal.as_ref().map_or("-".into(), |c| c.name.clone())
                } else if *strategy == Strategy::Model {
                    model.name.clone()
                } else {
                    "-".into()
                },
                params: model.params,
                backend: loaded.device.to_string(),
                dtype: dtype_name(model.dtype).into(),
                scorer: strategy.to_string(),
                budget_pct: pct,
                functions: used,
                ratio_mean: mean_sd(&a[0]).0,
                recall_whole_mean: rw,
                recall_whole_sd: rw_sd,
                recall_code_mean: rc,
                recall_code_sd: rc_sd,
                recall_any_mean: ra,
                recall_any_sd: ra_sd,
                ms_per_unit: mean_sd(&a[3]).0,
                score_ms_per_unit: if strategy.scored() {
                    mean_sd(&score_ms[si]).0
                } else {
                    0.0
                },
                commit: env!("OUROBOROS_GIT_COMMIT").into(),
                date: date.clone(),
            });
        }
    }
    Ok(rows)
}

pub fn print(rows: &[Row], format: &str) -> anyhow::Result<()> {
    match format {
        "jsonl" => print_jsonl(rows)?,
        "csv" => {
            println!("model,params,backend,dtype,scorer,budget_pct,functions,ratio_mean,recall_whole_mean,recall_whole_sd,recall_code_mean,recall_code_sd,recall_any_mean,recall_any_sd,ms_per_unit,score_ms_per_unit,commit,date");
            for r in rows {
                println!(
                    "{},{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.2},{:.2},{},{}",
                    r.model,
                    r.params,
                    r.backend,
                    r.dtype,
                    r.scorer,
                    r.budget_pct,
                    r.functions,
                    r.ratio_mean,
                    r.recall_whole_mean,
                    r.recall_whole_sd,
                    r.recall_code_mean,
                    r.recall_code_sd,
                    r.recall_any_mean,
                    r.recall_any_sd,
                    r.ms_per_unit,
                    r.score_ms_per_unit,
                    r.commit,
                    r.date
                );
            }
        }
        _ => {
            println!("| scorer | model | budget % | functions | ratio | recall (whole) | recall (whole or blocks) | recall (any form) | fit ms/unit | score ms/unit |");
            println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for r in rows {
                println!(
                    "| {} | {} | {} | {} | {:.2} | {:.3} ± {:.3} | {:.3} ± {:.3} | {:.3} ± {:.3} | {:.1} | {:.0} |",
                    r.scorer,
                    r.model,
                    r.budget_pct,
                    r.functions,
                    r.ratio_mean,
                    r.recall_whole_mean,
                    r.recall_whole_sd,
                    r.recall_code_mean,
                    r.recall_code_sd,
                    r.recall_any_mean,
                    r.recall_any_sd,
                    r.ms_per_unit,
                    r.score_ms_per_unit
                );
            }
            if let Some(r) = rows.first() {
                let model = rows
                    .iter()
                    .find(|r| r.model != "-")
                    .map_or("the model", |r| r.model.as_str());
                println!(
                    "\ncommit {} · {} · {} · tokens counted with {model}'s tokenizer",
                    r.commit, r.backend, r.date
                );
            }
        }
    }
    Ok(())
}
