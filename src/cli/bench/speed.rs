//! `bench speed`: denoising speed on a fixed prompt set, swept over steps, lengths, block
//! lengths, samplers and thresholds.

use anyhow::bail;

use super::report::{col, data, mean_sd, Report, Value};
use super::Common;
use crate::diffusion::{generate, validate_config, Canvas, SamplerKind};
use crate::engine::SamplingOptions;

/// The fixed prompt set: short code contexts of the kind the Builder completes.
const PROMPTS: &[&str] = &[
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "class LRUCache:\n    def __init__(self, capacity: int):\n",
    "export function debounce(fn, ms) {\n",
    "def parse_config(path):\n    with open(path) as f:\n",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
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
}

const COLUMNS: [super::report::Column; 9] = [
    col("steps", "steps"),
    col("gen", "gen"),
    col("block", "block"),
    col("sampler", "sampler"),
    col("threshold", "threshold"),
    col("tok_s", "tok/s"),
    col("ms_step", "ms/step"),
    col("forward_passes", "forward passes"),
    data("reps"),
];

/// One configuration of the sweep.
struct Config {
    steps: usize,
    gen: usize,
    block: usize,
    sampler: Option<SamplerKind>,
    threshold: (String, Option<f64>),
}

pub fn run(args: &Args) -> anyhow::Result<Report> {
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let thresholds = args
        .threshold
        .iter()
        .map(|t| match t.as_str() {
            "none" => Ok((t.clone(), None)),
            n => super::super::gen_opts::parse_threshold(n)
                .map(|v| (t.clone(), Some(v)))
                .map_err(anyhow::Error::msg),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let engine = args.common.model.load()?;
    let meta = Common::meta(&engine);
    let mut report = Report::new(&COLUMNS);
    report.note = format!("{} measured reps after warm-up", args.reps);
    let samplers: Vec<Option<SamplerKind>> = if args.sampler.is_empty() {
        vec![None]
    } else {
        args.sampler.iter().copied().map(Some).collect()
    };
    for &gen in &args.gen_length {
        let blocks = if args.block_length.is_empty() {
            vec![gen]
        } else {
            args.block_length.clone()
        };
        for &block in &blocks {
            for &sampler in &samplers {
                for threshold in &thresholds {
                    for &steps in &args.steps {
                        let config = Config {
                            steps,
                            gen,
                            block,
                            sampler,
                            threshold: threshold.clone(),
                        };
                        if let Some(cells) = measure(&engine, args, &config)? {
                            report.push(&meta, cells);
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Time one configuration over the prompt set: warm-ups, then `reps` measured runs.
fn measure(
    engine: &crate::engine::Engine,
    args: &Args,
    c: &Config,
) -> anyhow::Result<Option<Vec<Value>>> {
    let model = &engine.model;
    let prompts: Vec<Vec<u32>> = PROMPTS
        .iter()
        .map(|p| model.codec.encode(p))
        .collect::<Result<_, _>>()?;
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let sampling = SamplingOptions {
        steps: Some(c.steps),
        sampler: c.sampler,
        threshold: c.threshold.1,
        seed: args.common.seed,
        ..SamplingOptions::default()
    };
    let cfg = engine.config(&sampling, Some(c.gen), Some(c.block))?;
    if let Err(e) = validate_config(&cfg, longest, model.max_positions()) {
        eprintln!(
            "skipping steps={} gen={} block={}: {e}",
            c.steps, c.gen, c.block
        );
        return Ok(None);
    }
    let (mut tok_s, mut ms, mut passes) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..args.warmup + args.reps {
        let (mut tokens, mut secs, mut step_ms, mut fwd) = (0usize, 0.0, Vec::new(), 0usize);
        for ids in &prompts {
            let out = generate(
                model,
                Canvas::for_prompt(ids, c.gen, model.mask_id),
                &cfg,
                |_| {},
            )?;
            tokens += c.gen;
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
    Ok(Some(vec![
        c.steps.into(),
        c.gen.into(),
        c.block.into(),
        cfg.sampler.name().into(),
        c.threshold.0.as_str().into(),
        Value::MeanSd(m, sd, 2),
        Value::Num(mean_sd(&ms).0, 2),
        Value::Num(mean_sd(&passes).0, 1),
        args.reps.into(),
    ]))
}
