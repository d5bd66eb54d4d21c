use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::exit;
use super::gen_opts::{parse_infill, ModelArgs, SamplingArgs};
use crate::diffusion::{generate, Canvas, StepEvent};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text to continue, tokenized as is.
    #[arg(long, conflicts_with = "infill", required_unless_present = "infill")]
    pub prompt: Option<String>,
    /// Rewrite lines START-END of FILE: the rest of the file stays and the span is re-generated
    /// with --gen-length tokens.
    #[arg(long)]
    pub infill: Option<String>,
    /// Wrap --prompt in the checkpoint's chat template (Instruct models).
    #[arg(long)]
    pub chat: bool,
    #[arg(long)]
    pub gen_length: Option<usize>,
    #[arg(long)]
    pub block_length: Option<usize>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Show the canvas as it is denoised (on stderr).
    #[arg(long)]
    pub visual: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = args.model.load()?;
    let cfg = engine.config(&args.sampling.options(), args.gen_length, args.block_length)?;
    let model = &engine.model;
    let codec = &model.codec;

    let (canvas, prefix_text, suffix_text) = match (&args.prompt, &args.infill) {
        (Some(prompt), _) => {
            let text = if args.chat {
                chat_prompt(model, prompt)?
            } else {
                prompt.clone()
            };
            let ids = codec.encode(&text)?;
            (
                Canvas::for_prompt(&ids, cfg.gen_length, model.mask_id),
                text,
                String::new(),
            )
        }
        (None, Some(spec)) => {
            let (file, start, end) = parse_infill(spec)?;
            let source = std::fs::read_to_string(&file)
                .with_context(|| format!("--infill {}", file.display()))?;
            let lines: Vec<&str> = source.split_inclusive('\n').collect();
            if end > lines.len() {
                bail!(
                    "--infill {spec}: {} has only {} lines",
                    file.display(),
                    lines.len()
                );
            }
            let prefix: String = lines[..start - 1].concat();
            let suffix: String = lines[end..].concat();
            // A file longer than the model's window keeps the text nearest the span.
            let before = codec.encode(&prefix)?;
            let after = codec.encode(&suffix)?;
            let (nb, na) = crate::builder::fit_window(
                before.len(),
                after.len(),
                model.max_positions().saturating_sub(cfg.gen_length),
            );
            let canvas = Canvas::for_infill(
                &before[before.len() - nb..],
                cfg.gen_length,
                &after[..na],
                model.mask_id,
            );
            (canvas, prefix, suffix)
        }
        (None, None) => bail!("give --prompt TEXT or --infill FILE:START-END"),
    };
    let prompt_ids = canvas.tokens[..canvas.span.start].to_vec();

    let show_bar = !args.json && !args.visual && std::io::stderr().is_terminal();
    let bar = if show_bar {
        ProgressBar::new(cfg.steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("denoising {bar:40} step {pos}/{len} {msg}")
            .expect("static template"),
    );
    let mask = model.mask_id;
    let visual = args.visual;
    let out = generate(model, canvas, &cfg, |e: &StepEvent| {
        bar.set_position(e.step as u64);
        bar.set_message(format!("{} masked", e.masked_left));
        if visual {
            let shown: String = e
                .canvas
                .generated()
                .iter()
                .map(|&t| {
                    if t == mask {
                        "░".to_string()
                    } else {
                        codec.decode(&[t], false)
                    }
                })
                .collect();
            eprintln!(
                "step {:>3} block {} (+{:>2}) │ {}",
                e.step,
                e.block,
                e.committed,
                shown.replace('\n', "⏎")
            );
        }
    })?;
    bar.finish_and_clear();

    let mut generated = out.canvas.generated().to_vec();
    if args.infill.is_some() {
        // An infilled span ends at its first end marker; what follows is padding.
        let ends = crate::builder::Builder::new(model).end_ids().to_vec();
        if let Some(cut) = generated.iter().position(|t| ends.contains(t)) {
            generated.truncate(cut);
        }
    }
    let generated_text = codec.decode(&generated, false);
    let text = match &args.infill {
        Some(_) => format!("{prefix_text}{generated_text}{suffix_text}"),
        None => generated_text,
    };
    if args.json {
        println!(
            "{}",
            json!({
                "text": text,
                "token_ids": generated,
                "prompt_token_ids": prompt_ids,
                "steps": out.step_ms.len(),
                "forward_passes": out.forward_passes,
                "tok_per_s": out.tokens_per_second(),
                "ms_per_step": out.ms_per_step(),
                "sampler": cfg.sampler.name(),
                "mean_confidence": out.mean_confidence(),
                "gen_length": cfg.gen_length,
                "block_length": cfg.block_length,
                "threshold": cfg.threshold,
                "factor": cfg.factor,
                "cache": cfg.cache.name(),
                "tokens_per_forward": out.tokens_per_forward(),
                "kv_cache_bytes": out.kv_bytes,
                "unfilled": out.unfilled,
                "seed": cfg.seed,
                "device": engine.device.to_string(),
            })
        );
    } else {
        println!("{text}");
        eprintln!(
            "{} tokens in {:.2}s: {:.1} tok/s, {:.1} ms/step, {} forward passes ({} steps, {}, block {}, cache {})",
            generated.len(),
            out.seconds,
            out.tokens_per_second(),
            out.ms_per_step(),
            out.forward_passes,
            out.step_ms.len(),
            cfg.sampler,
            cfg.block_length,
            cfg.cache,
        );
    }
    if out.unfilled > 0 {
        eprintln!(
            "warning: {} of {} positions are still masked: with --cache dual a block gets at most steps/blocks passes; raise --steps to the generation length",
            out.unfilled,
            cfg.gen_length
        );
    }
    Ok(ExitCode::from(exit::OK))
}

/// Render the checkpoint's chat template (tokenizer_config.json) around one user message.
fn chat_prompt(model: &crate::diffusion::DiffusionLm, prompt: &str) -> anyhow::Result<String> {
    let template = crate::checkpoint::chat_template(&model.dir)?.ok_or_else(|| {
        anyhow!(
            "{}: no chat_template; drop --chat for base models",
            model.dir.join("tokenizer_config.json").display()
        )
    })?;
    Ok(template.render(prompt)?)
}
