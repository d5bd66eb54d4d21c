//! `bench speed`: denoising speed on a fixed prompt set (or synthetic prompts of a given
//! length), swept over steps, lengths, block lengths, samplers, thresholds, factors, caches and
//! batch sizes.

use anyhow::bail;

use super::report::{col, data, mean_sd, Report, Value};
use super::Common;
use crate::diffusion::{generate_batch, validate_config, CacheMode, Canvas, SamplerKind};
use crate::engine::{Engine, SamplingOptions};

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
    /// Factors (Fast-dLLM's rule) to sweep; `none` for the step schedule.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub factor: Vec<String>,
    /// Block caches to sweep: none, prefix, dual.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub cache: Vec<CacheMode>,
    /// Canvases denoised together, to sweep.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub batch: Vec<usize>,
    /// Prompt lengths in tokens to sweep: the prompt set repeated to that length (default: the
    /// prompts as they are).
    #[arg(long, value_delimiter = ',')]
    pub prompt_length: Vec<usize>,
    /// Measured repetitions per configuration.
    #[arg(short = 'r', long, default_value_t = 3)]
    pub reps: usize,
    /// Discarded warm-up runs per configuration.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Time the --model folder's shape with random weights drawn on the device (seeded by
    /// --seed): the folder needs only config.json and tokenizer.json. For layouts whose
    /// weights are not here; what it generates is noise, so compare at fixed steps.
    #[arg(long)]
    pub random_weights: bool,
}

const COLUMNS: [super::report::Column; 19] = [
    col("prompt", "prompt"),
    col("steps", "steps"),
    col("gen", "gen"),
    col("block", "block"),
    col("sampler", "sampler"),
    col("threshold", "threshold"),
    col("factor", "factor"),
    col("cache", "cache"),
    col("batch", "batch"),
    col("tok_s", "tok/s"),
    col("tok_s_canvas", "tok/s/canvas"),
    col("ms_step", "ms/step"),
    col("forward_passes", "passes"),
    col("tokens_per_forward", "tok/pass"),
    col("kv_mb", "KV MB"),
    col("peak_rss_mb", "peak RSS MB"),
    data("unfilled"),
    data("ms_step_median"),
    data("reps"),
];

/// One configuration of the sweep.
struct Config {
    prompt: Option<usize>,
    steps: usize,
    gen: usize,
    block: usize,
    sampler: Option<SamplerKind>,
    threshold: (String, Option<f64>),
    factor: (String, Option<f64>),
    cache: CacheMode,
    batch: usize,
}

/// `none`, or a value `parse` accepts.
fn optional(
    values: &[String],
    parse: fn(&str) -> Result<f64, String>,
) -> anyhow::Result<Vec<(String, Option<f64>)>> {
    values
        .iter()
        .map(|t| match t.as_str() {
            "none" => Ok((t.clone(), None)),
            n => parse(n)
                .map(|v| (t.clone(), Some(v)))
                .map_err(anyhow::Error::msg),
        })
        .collect()
}

pub fn run(args: &Args) -> anyhow::Result<Report> {
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    if args.batch.contains(&0) {
        bail!("--batch must be at least 1");
    }
    let thresholds = optional(&args.threshold, super::super::gen_opts::parse_threshold)?;
    let factors = optional(&args.factor, super::super::gen_opts::parse_factor)?;
    if args.common.generator.generator.is_some() {
        anyhow::bail!(
            "--generator: bench speed times the engine in this process; a served model is timed with benches/serve_load.py"
        );
    }
    let engine = match args.random_weights {
        true => Engine::random(&args.common.model.choice(), args.common.seed)?,
        false => args.common.model.load()?,
    };
    let meta = Common::meta(&engine);
    let mut report = Report::new(&COLUMNS);
    report.note = format!("{} measured reps after warm-up", args.reps);
    let samplers: Vec<Option<SamplerKind>> = if args.sampler.is_empty() {
        vec![None]
    } else {
        args.sampler.iter().copied().map(Some).collect()
    };
    let prompts: Vec<Option<usize>> = if args.prompt_length.is_empty() {
        vec![None]
    } else {
        args.prompt_length.iter().copied().map(Some).collect()
    };
    for &prompt in &prompts {
        for &gen in &args.gen_length {
            let blocks = if args.block_length.is_empty() {
                // A block-diffusion model runs at its own block size unless asked otherwise.
                vec![engine.model.block_causal.unwrap_or(gen)]
            } else {
                args.block_length.clone()
            };
            for &block in &blocks {
                for &sampler in &samplers {
                    for threshold in &thresholds {
                        for factor in &factors {
                            if threshold.1.is_some() && factor.1.is_some() {
                                continue;
                            }
                            for &cache in &args.cache {
                                for &batch in &args.batch {
                                    for &steps in &args.steps {
                                        let config = Config {
                                            prompt,
                                            steps,
                                            gen,
                                            block,
                                            sampler,
                                            threshold: threshold.clone(),
                                            factor: factor.clone(),
                                            cache,
                                            batch,
                                        };
                                        if let Some(cells) = measure(&engine, args, &config)? {
                                            report.push(&meta, cells);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

/// The prompts of one batch: the prompt set in turn, or synthetic prompts of `length` tokens
/// (the set's tokens repeated, each canvas starting at a different place).
fn batch_prompts(
    engine: &Engine,
    length: Option<usize>,
    batch: usize,
) -> anyhow::Result<Vec<Vec<u32>>> {
    let codec = &engine.model.codec;
    let set: Vec<Vec<u32>> = PROMPTS
        .iter()
        .map(|p| codec.encode(p))
        .collect::<Result<_, _>>()?;
    Ok(match length {
        None => (0..batch).map(|i| set[i % set.len()].clone()).collect(),
        Some(n) => {
            let stream: Vec<u32> = set.concat();
            (0..batch)
                .map(|i| (0..n).map(|j| stream[(i * 7 + j) % stream.len()]).collect())
                .collect()
        }
    })
}

/// Time one configuration: warm-ups, then `reps` measured runs of one batch each.
fn measure(engine: &Engine, args: &Args, c: &Config) -> anyhow::Result<Option<Vec<Value>>> {
    let model = &engine.model;
    let prompts = batch_prompts(engine, c.prompt, c.batch)?;
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let sampling = SamplingOptions {
        steps: Some(c.steps),
        sampler: c.sampler,
        threshold: c.threshold.1,
        factor: c.factor.1,
        cache: c.cache,
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
    let rss = crate::memory::PeakRss::start();
    let mut runs = Vec::new();
    for rep in 0..args.warmup + args.reps {
        let jobs = prompts
            .iter()
            .map(|ids| (Canvas::for_prompt(ids, c.gen, model.mask_id), cfg.clone()))
            .collect();
        let started = std::time::Instant::now();
        let outs = generate_batch(model, jobs, |_, _| {})?;
        let seconds = started.elapsed().as_secs_f64();
        if rep >= args.warmup {
            runs.push(Run::of(&outs, seconds));
        }
    }
    let peak_mb = rss.peak_bytes() as f64 / 1e6;
    let field = |f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let (tok_s, sd) = mean_sd(&field(|r| r.tok_s));
    let (canvas_s, canvas_sd) = mean_sd(&field(|r| r.tok_s / r.canvases as f64));
    let mut steps = field(|r| r.ms_step);
    steps.sort_by(f64::total_cmp);
    Ok(Some(vec![
        c.prompt.map_or("set".to_string(), |n| n.to_string()).into(),
        c.steps.into(),
        c.gen.into(),
        c.block.into(),
        cfg.sampler.name().into(),
        c.threshold.0.as_str().into(),
        c.factor.0.as_str().into(),
        c.cache.name().into(),
        c.batch.into(),
        Value::MeanSd(tok_s, sd, 2),
        Value::MeanSd(canvas_s, canvas_sd, 2),
        Value::Num(mean_sd(&steps).0, 2),
        Value::Num(mean_sd(&field(|r| r.passes)).0, 1),
        Value::Num(mean_sd(&field(|r| r.tokens_per_pass)).0, 2),
        Value::Num(mean_sd(&field(|r| r.kv_mb)).0, 2),
        Value::Num(peak_mb, 1),
        Value::Num(mean_sd(&field(|r| r.unfilled)).0, 1),
        Value::Num(steps[steps.len() / 2], 2),
        args.reps.into(),
    ]))
}

/// One measured batch.
struct Run {
    canvases: usize,
    tok_s: f64,
    ms_step: f64,
    /// Forward passes per canvas.
    passes: f64,
    tokens_per_pass: f64,
    kv_mb: f64,
    unfilled: f64,
}

impl Run {
    fn of(outs: &[crate::diffusion::Generation], seconds: f64) -> Run {
        let n = outs.len().max(1) as f64;
        let tokens: usize = outs.iter().map(|o| o.canvas.span.len()).sum();
        let step_ms: Vec<f64> = outs
            .iter()
            .flat_map(|o| o.step_ms.iter().copied())
            .collect();
        let passes: usize = outs.iter().map(|o| o.forward_passes).sum();
        Run {
            canvases: outs.len(),
            tok_s: tokens as f64 / seconds.max(1e-9),
            ms_step: step_ms.iter().sum::<f64>() / step_ms.len().max(1) as f64,
            passes: passes as f64 / n,
            tokens_per_pass: tokens as f64 / passes.max(1) as f64,
            kv_mb: outs.iter().map(|o| o.kv_bytes).sum::<usize>() as f64 / 1e6,
            unfilled: outs.iter().map(|o| o.unfilled).sum::<usize>() as f64 / n,
        }
    }
}
