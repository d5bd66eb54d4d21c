//! The model and sampling flags `generate`, `bench`, `plan` and `refactor` share. Each flag is
//! parsed into a checked value here, once; the engine gets plain option types.

use std::path::PathBuf;

use anyhow::anyhow;

use crate::device::{DeviceSpec, Precision};
use crate::diffusion::{CacheMode, EosPolicy, SamplerKind};
use crate::engine::{Engine, ModelChoice, Preset, SamplingOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model directory (Hugging Face layout) or hub id / manifest name in the local cache.
    /// Default: $OUROBOROS_MODEL, else the bundled ouro-code-tiny.
    #[arg(long)]
    pub model: Option<String>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: Precision,
}

impl ModelArgs {
    pub fn choice(&self) -> ModelChoice {
        ModelChoice {
            model: self.model.clone(),
            device: self.device,
            dtype: self.dtype,
        }
    }

    pub fn load(&self) -> anyhow::Result<Engine> {
        Ok(Engine::load(&self.choice())?)
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct SamplingArgs {
    /// Denoising steps (overrides --preset).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Step preset: fast (gen/4), balanced (gen/2), quality (gen).
    #[arg(long, short = 'c', alias = "config")]
    pub preset: Option<Preset>,
    /// low_confidence, random, origin, maskgit_plus, topk_margin or entropy.
    #[arg(long)]
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
    /// Commit every masked token whose confidence is at least this, in (0, 1] (Fast-dLLM
    /// parallel decoding).
    #[arg(long, value_parser = parse_threshold)]
    pub threshold: Option<f64>,
    /// Fast-dLLM's factor rule: with the confidences sorted, commit the n most confident while
    /// the n-th is at least 1 - F/(n+1) (always at least one)
    #[arg(long, value_parser = parse_factor, conflicts_with = "threshold")]
    pub factor: Option<f64>,
    /// Fast-dLLM's block cache: none (every step runs the whole canvas), prefix (keys and
    /// values before the block are reused) or dual (before and after it). Default: none for
    /// generate, dual for refactor
    #[arg(long)]
    pub cache: Option<CacheMode>,
    /// allow, suppress, or penalty:X (subtract X from EOS logits).
    #[arg(long, default_value = "allow")]
    pub eos: EosPolicy,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fast-dLLM v2: decode each block in sub-blocks of N positions, left to right (default 8;
    /// must divide the block length).
    #[arg(long, value_name = "N")]
    pub sub_block: Option<usize>,
}

impl SamplingArgs {
    /// The options, with `cache` when `--cache` was not given.
    pub fn options_or(&self, cache: CacheMode) -> SamplingOptions {
        SamplingOptions {
            cache: self.cache.unwrap_or(cache),
            ..self.options()
        }
    }

    /// The options, with no cache unless `--cache` asks for one.
    pub fn options(&self) -> SamplingOptions {
        SamplingOptions {
            steps: self.steps,
            preset: self.preset,
            sampler: self.sampler,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            alg_temp: self.alg_temp,
            eps: self.eps,
            threshold: self.threshold,
            factor: self.factor,
            cache: self.cache.unwrap_or_default(),
            eos: self.eos,
            seed: self.seed,
            sub_block: self.sub_block,
        }
    }
}

/// A factor for Fast-dLLM's rule: a positive number.
pub fn parse_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(f),
        _ => Err(format!("--factor {s} must be a positive number")),
    }
}

/// A confidence threshold: a number in (0, 1].
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 1.0 => Ok(t),
        _ => Err(format!("--threshold {s} must be in (0, 1]")),
    }
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
    fn thresholds_and_infill_specs() {
        assert_eq!(parse_threshold("0.9"), Ok(0.9));
        assert!(parse_threshold("0").is_err());
        assert!(parse_threshold("1.5").is_err());
        assert_eq!(
            parse_infill("a/b.py:3-5").unwrap(),
            (PathBuf::from("a/b.py"), 3, 5)
        );
        assert!(parse_infill("a.py:5-3").is_err());
        assert!(parse_infill("a.py").is_err());
    }
}
