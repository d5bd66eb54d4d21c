//! The generation options `generate`, `bench` (and later `refactor`) share, and how they fold
//! together with a checkpoint's `generation_config.json` and manifest.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

use crate::device::{parse_dtype, DeviceSpec};
use crate::diffusion::{
    DiffusionLm, EosPolicy, Family, GenerateConfig, SamplerKind, TokenSampling,
};
use crate::models;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// steps = gen_length / 4
    Fast,
    /// steps = gen_length / 2
    Balanced,
    /// steps = gen_length (one token per step, the published quality setting)
    Quality,
}

#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct ModelArgs {
    /// Model directory (Hugging Face layout) or hub id / manifest name in the local cache.
    /// Default: $OUROBOROS_MODEL, else the bundled ouro-code-tiny.
    #[arg(long)]
    pub model: Option<String>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct SamplingArgs {
    /// Denoising steps (overrides --preset).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Step preset: fast (gen/4), balanced (gen/2), quality (gen).
    #[arg(long, short = 'c', value_enum, alias = "config")]
    pub preset: Option<Preset>,
    /// low_confidence, random, origin, maskgit_plus, topk_margin or entropy.
    #[arg(long)]
    #[serde(with = "sampler_name")]
    pub sampler: Option<SamplerKind>,
    /// 0 is greedy. Default: the checkpoint's generation_config.json, else 0.
    #[arg(long)]
    pub temperature: Option<f64>,
    #[arg(long)]
    pub top_p: Option<f64>,
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Dream samplers: draw positions from softmax(confidence / alg_temp) instead of top-k.
    #[arg(long)]
    pub alg_temp: Option<f64>,
    /// Dream samplers: the schedule runs from 1 to eps.
    #[arg(long, default_value_t = 1e-3)]
    pub eps: f64,
    /// Commit every masked token whose confidence is at least this (Fast-dLLM parallel decoding).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// allow, suppress, or penalty:X (subtract X from EOS logits).
    #[arg(long, default_value = "allow")]
    pub eos: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Samplers by the names the command line uses, for records that replay reads back.
mod sampler_name {
    use crate::diffusion::SamplerKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<SamplerKind>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(k) => s.serialize_some(k.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SamplerKind>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|n| n.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

pub struct Loaded {
    pub model: DiffusionLm,
    pub manifest: Option<models::Manifest>,
    pub device: DeviceSpec,
}

pub fn load_model(args: &ModelArgs) -> anyhow::Result<Loaded> {
    let reference = match &args.model {
        Some(m) => m.clone(),
        None => models::default_reference()?,
    };
    let device: DeviceSpec = args.device.parse()?;
    let dtype = parse_dtype(&args.dtype).map_err(|e| anyhow!(e))?;
    let resolved = models::resolve(&reference)?;
    let overrides = resolved
        .manifest
        .as_ref()
        .map(|m| m.overrides())
        .unwrap_or_default();
    let model = DiffusionLm::load(&resolved.dir, &device.open()?, dtype, &overrides)
        .with_context(|| format!("loading model {reference}"))?;
    Ok(Loaded {
        model,
        manifest: resolved.manifest,
        device,
    })
}

pub fn parse_eos(s: &str) -> anyhow::Result<EosPolicy> {
    match s {
        "allow" => Ok(EosPolicy::Allow),
        "suppress" => Ok(EosPolicy::Suppress),
        other => match other
            .strip_prefix("penalty:")
            .and_then(|v| v.parse::<f32>().ok())
        {
            Some(p) if p.is_finite() && p >= 0.0 => Ok(EosPolicy::Penalty(p)),
            _ => bail!("--eos {other}: expected allow, suppress or penalty:X with X >= 0"),
        },
    }
}

impl Preset {
    /// Steps are the generation length divided by this.
    pub fn divisor(self) -> usize {
        match self {
            Preset::Fast => 4,
            Preset::Balanced => 2,
            Preset::Quality => 1,
        }
    }
}

/// Steps for a preset, rounded down to a multiple of the block count and at least one per block.
pub fn preset_steps(preset: Preset, gen_length: usize, blocks: usize) -> usize {
    let raw = gen_length / preset.divisor();
    (raw / blocks.max(1)).max(1) * blocks.max(1)
}

/// `refactor`'s steps per unit: `--steps`, else the preset's share of each unit's span
/// (balanced when neither is given).
pub fn step_rule(s: &SamplingArgs) -> crate::pipeline::StepRule {
    use crate::pipeline::StepRule;
    match (s.steps, s.preset) {
        (Some(n), _) => StepRule::Fixed(n),
        (None, p) => StepRule::PerSpan(p.unwrap_or(Preset::Balanced).divisor()),
    }
}

/// Fold the command line, the checkpoint's defaults and its manifest into one configuration.
pub fn build_config(
    loaded: &Loaded,
    s: &SamplingArgs,
    gen_length: Option<usize>,
    block_length: Option<usize>,
) -> anyhow::Result<GenerateConfig> {
    let model = &loaded.model;
    let rec = loaded.manifest.as_ref().map(|m| &m.recommended);
    let g = &model.generation;
    let gen_length = gen_length
        .or(g.max_new_tokens)
        .or(rec.map(|r| r.gen_length))
        .unwrap_or(64);
    let block_length = block_length
        .or(g.block_length.filter(|b| gen_length.is_multiple_of(*b)))
        .unwrap_or(gen_length);
    let blocks = gen_length.checked_div(block_length).unwrap_or(1).max(1);
    let steps = match (s.steps, s.preset) {
        (Some(n), _) => n,
        (None, Some(p)) => preset_steps(p, gen_length, blocks),
        (None, None) => g
            .steps
            .filter(|&n| n <= gen_length && n % blocks == 0)
            .unwrap_or(gen_length),
    };
    let sampler = match s.sampler {
        Some(k) => k,
        None => {
            let named = g
                .sampler
                .clone()
                .or(g.alg.clone())
                .or(rec.map(|r| r.sampler.clone()));
            match named {
                Some(n) => n.parse().map_err(|e: String| {
                    anyhow!(
                        "{}: {e}",
                        model.dir.join("generation_config.json").display()
                    )
                })?,
                None => match model.family {
                    Family::Llada => SamplerKind::LowConfidence,
                    Family::Dream => SamplerKind::Entropy,
                },
            }
        }
    };
    Ok(GenerateConfig {
        steps,
        gen_length,
        block_length,
        sampler,
        sampling: TokenSampling {
            temperature: s.temperature.or(g.temperature).unwrap_or(0.0),
            top_p: s.top_p.or(g.top_p),
            top_k: s.top_k.or(g.top_k),
        },
        alg_temp: s.alg_temp.or(g.alg_temp),
        eps: s.eps,
        threshold: s.threshold,
        eos: parse_eos(&s.eos)?,
        seed: s.seed,
    })
}

/// `FILE:START-END` (1-based, inclusive lines).
pub fn parse_infill(spec: &str) -> anyhow::Result<(PathBuf, usize, usize)> {
    let bad =
        || anyhow!("--infill {spec}: expected FILE:START-END (1-based line numbers, START <= END)");
    let (file, range) = spec.rsplit_once(':').ok_or_else(bad)?;
    let (a, b) = range.split_once('-').ok_or_else(bad)?;
    let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((PathBuf::from(file), a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_respect_blocks() {
        assert_eq!(preset_steps(Preset::Quality, 64, 1), 64);
        assert_eq!(preset_steps(Preset::Balanced, 64, 4), 32);
        assert_eq!(preset_steps(Preset::Fast, 64, 4), 16);
        assert_eq!(preset_steps(Preset::Fast, 8, 4), 4);
    }

    #[test]
    fn eos_and_infill_specs() {
        assert_eq!(parse_eos("penalty:2.5").unwrap(), EosPolicy::Penalty(2.5));
        assert!(parse_eos("penalty:-1").is_err());
        assert_eq!(
            parse_infill("a/b.py:3-5").unwrap(),
            (PathBuf::from("a/b.py"), 3, 5)
        );
        assert!(parse_infill("a.py:5-3").is_err());
        assert!(parse_infill("a.py").is_err());
    }
}
