use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use super::exit;
use super::gen_opts::{build_config, load_model, ModelArgs, SamplingArgs};
use crate::device::dtype_name;
use crate::diffusion::{generate, validate_config, Canvas, SamplerKind};

/// The fixed prompt set: short code contexts of the kind the Builder completes.
const PROMPTS: &[&str] = &[
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "class LRUCache:\n    def __init__(self, capacity: int):\n",
    "export function debounce(fn, ms) {\n",
    "def parse_config(path):\n    with open(path) as f:\n",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Eval {
    /// Denoising speed on a fixed prompt set, swept over steps, lengths, samplers.
    Speed,
    /// Quality against steps: masked function bodies written again, judged by the gate.
    Infill,
    /// What context compression costs: recall of called definitions per scorer and budget.
    Compression,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value = "speed")]
    pub eval: Eval,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub compression: super::bench_compression::CompressionArgs,
    #[command(flatten)]
    pub infill: super::bench_infill::InfillArgs,
    /// Step counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64")]
    pub steps: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub gen_length: Vec<usize>,
    /// Block lengths to sweep (default: the generation length).
    #[arg(long, value_delimiter = ',')]
    pub block_length: Vec<usize>,
    #[arg(long, value_delimiter = ',')]
    pub sampler: Vec<SamplerKind>,
    /// Confidence thresholds to sweep; `none` for the step schedule.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub threshold: Vec<String>,
    /// Measured repetitions per configuration.
    #[arg(short = 'r', long, default_value_t = 3)]
    pub reps: usize,
    /// Discarded warm-up runs per configuration.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// md, csv or jsonl.
    #[arg(short = 'o', long, default_value = "md")]
    pub output: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// One row; md, csv and jsonl all print exactly these fields.
#[derive(Serialize)]
struct Row {
    model: String,
    params: usize,
    backend: String,
    dtype: String,
    steps: usize,
    gen: usize,
    block: usize,
    sampler: String,
    threshold: String,
    tok_s_mean: f64,
    tok_s_sd: f64,
    ms_step: f64,
    forward_passes: f64,
    reps: usize,
    commit: String,
    device_name: String,
    date: String,
}

/// One JSON object per row: the `-o jsonl` form every evaluation shares.
pub(super) fn print_jsonl<T: Serialize>(rows: &[T]) -> anyhow::Result<()> {
    for r in rows {
        println!("{}", serde_json::to_string(r)?);
    }
    Ok(())
}

pub(super) fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n.max(1.0);
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn device_name(backend: &str) -> String {
    if backend != "cpu" {
        return backend.to_string();
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "cpu".into())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !matches!(args.output.as_str(), "md" | "csv" | "jsonl") {
        bail!("-o {}: expected md, csv or jsonl", args.output);
    }
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let loaded = load_model(&args.model)?;
    if args.eval == Eval::Infill {
        let rows = super::bench_infill::run(&loaded, &args.infill, args.seed)?;
        super::bench_infill::print(&rows, &args.output)?;
        return Ok(ExitCode::from(exit::OK));
    }
    if args.eval == Eval::Compression {
        let rows = super::bench_compression::run(&loaded, &args.compression, args.seed)?;
        super::bench_compression::print(&rows, &args.output)?;
        return Ok(ExitCode::from(exit::OK));
    }
    let model = &loaded.model;
    let backend = loaded.device.to_string();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let prompts: Vec<Vec<u32>> = PROMPTS
        .iter()
        .map(|p| model.codec.encode(p))
        .collect::<Result<_, _>>()?;
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let samplers: Vec<Option<SamplerKind>> = if args.sampler.is_empty() {
        vec![None]
    } else {
        args.sampler.iter().copied().map(Some).collect()
    };
    let mut rows = Vec::new();
    for &gen in &args.gen_length {
        let blocks: Vec<usize> = if args.block_length.is_empty() {
            vec![gen]
        } else {
            args.block_length.clone()
        };
        for &block in &blocks {
            for sampler in &samplers {
                for threshold in &args.threshold {
                    for &steps in &args.steps {
                        let sampling = SamplingArgs {
                            steps: Some(steps),
                            preset: None,
                            sampler: *sampler,
                            temperature: None,
                            top_p: None,
                            top_k: None,
                            alg_temp: None,
                            eps: 1e-3,
                            threshold: if threshold == "none" {
                                None
                            } else {
                                Some(threshold.parse()?)
                            },
                            eos: "allow".into(),
                            seed: args.seed,
                        };
                        let cfg = build_config(&loaded, &sampling, Some(gen), Some(block))?;
                        if let Err(e) = validate_config(&cfg, longest, model.max_positions()) {
                            eprintln!("skipping steps={steps} gen={gen} block={block}: {e}");
                            continue;
                        }
                        let (mut tok_s, mut ms, mut passes) = (Vec::new(), Vec::new(), Vec::new());
                        for rep in 0..args.warmup + args.reps {
                            let (mut tokens, mut secs, mut step_ms, mut fwd) =
                                (0usize, 0.0, Vec::new(), 0usize);
                            for ids in &prompts {
                                let out = generate(
                                    model,
                                    Canvas::for_prompt(ids, gen, model.mask_id),
                                    &cfg,
                                    |_| {},
                                )?;
                                tokens += gen;
                                secs += out.seconds;
                                step_ms.extend_from_slice(&out.step_ms);
                                fwd += out.forward_passes;
                            }
                            if rep >= args.warmup {
                                tok_s.push(tokens as f64 / secs.max(1e-9));
                                ms.push(step_ms.iter().sum::<f64>() / step_ms.len().max(1) as f64);
                                passes.push(fwd as f64 / prompts.len() as f64);
                            }
                        }
                        let (m, sd) = mean_sd(&tok_s);
                        rows.push(Row {
                            model: model.name.clone(),
                            params: model.params,
                            backend: backend.clone(),
                            dtype: dtype_name(model.dtype).into(),
                            steps,
                            gen,
                            block,
                            sampler: cfg.sampler.name().into(),
                            threshold: threshold.clone(),
                            tok_s_mean: m,
                            tok_s_sd: sd,
                            ms_step: mean_sd(&ms).0,
                            forward_passes: mean_sd(&passes).0,
                            reps: args.reps,
                            commit: env!("OUROBOROS_GIT_COMMIT").into(),
                            device_name: device_name(&backend),
                            date: date.clone(),
                        });
                    }
                }
            }
        }
    }
    print_rows(&rows, &args.output)?;
    Ok(ExitCode::from(exit::OK))
}

fn print_rows(rows: &[Row], format: &str) -> anyhow::Result<()> {
    match format {
        "jsonl" => print_jsonl(rows)?,
        "csv" => {
            println!("model,params,backend,dtype,steps,gen,block,sampler,threshold,tok_s_mean,tok_s_sd,ms_step,forward_passes,reps,commit,device_name,date");
            for r in rows {
                println!(
                    "{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.2},{},{},\"{}\",{}",
                    r.model,
                    r.params,
                    r.backend,
                    r.dtype,
                    r.steps,
                    r.gen,
                    r.block,
                    r.sampler,
                    r.threshold,
                    r.tok_s_mean,
                    r.tok_s_sd,
                    r.ms_step,
                    r.forward_passes,
                    r.reps,
                    r.commit,
                    r.device_name,
                    r.date
                );
            }
        }
        _ => {
            println!("| model | params | backend | dtype | steps | gen | block | sampler | threshold | tok/s | ms/step | forward passes |");
            println!("|---|---:|---|---|---:|---:|---:|---|---|---:|---:|---:|");
            for r in rows {
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} ± {:.2} | {:.2} | {:.1} |",
                    r.model, r.params, r.backend, r.dtype, r.steps, r.gen, r.block, r.sampler, r.threshold,
                    r.tok_s_mean, r.tok_s_sd, r.ms_step, r.forward_passes
                );
            }
            if let Some(r) = rows.first() {
                println!(
                    "\ncommit {} · {} · {} · {} measured reps after warm-up",
                    r.commit, r.device_name, r.date, r.reps
                );
            }
        }
    }
    Ok(())
}
