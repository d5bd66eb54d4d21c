//! The denoising loop: a canvas of prompt tokens and masks, refined over a number of steps,
//! block by block (semi-autoregressive), committing the candidates the sampler trusts most.
//!
//! Follows the published loops: LLaDA's `generate()` (ML-GSAI/LLaDA, generate.py) for
//! `low_confidence`/`random`, Dream's `_sample` (generation_utils.py) for the others, and
//! Fast-dLLM's confidence threshold (commit every candidate ≥ τ, always at least one), factor
//! rule and block caches (NVlabs/Fast-dLLM `v1/llada/generate.py`, `v1/dream/model/
//! generation_utils_block.py`).
//!
//! Several canvases can be denoised together ([`generate_batch`]): each keeps its own schedule,
//! cache and random stream, and every forward pass packs the rows all of them need.

mod block;
mod decoder;
pub(crate) mod pick;
mod remask;
mod scores;
mod sub_block;

use std::ops::Range;
use std::time::Instant;

use candle_core::Tensor;

use super::model::{DiffusionLm, Family, ModelError, Scoring};
use super::sampler::{SamplerKind, TokenSampling};
use block::BlockDecoder;
use decoder::{Decoder, Feed};
pub use pick::{dllm_transfer_counts, dream_timesteps, llada_transfer_counts};
use remask::RemaskDecoder;
use scores::Scores;
use sub_block::SubBlockDecoder;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("--steps must be at least 1")]
    ZeroSteps,
    #[error(
        "--steps {steps} is more than --gen-length {gen_length}: a step commits at least one token"
    )]
    TooManySteps { steps: usize, gen_length: usize },
    #[error("--gen-length {gen_length} is not divisible by --block-length {block_length}")]
    BlockMismatch {
        gen_length: usize,
        block_length: usize,
    },
    #[error("--steps {steps} must be a multiple of the number of blocks ({blocks} = gen-length / block-length)")]
    StepsPerBlock { steps: usize, blocks: usize },
    #[error("--gen-length must be at least 1")]
    Empty,
    #[error("the canvas ({total} tokens: {prompt} of prompt and context, {gen} to generate) is longer than the model's context of {context} positions")]
    TooLong {
        total: usize,
        prompt: usize,
        gen: usize,
        context: usize,
    },
    #[error("--threshold {0} must be in (0, 1]")]
    Threshold(f64),
    #[error("--factor {0} must be a positive number")]
    Factor(f64),
    #[error("--threshold and --factor are two rules for the same choice; give one")]
    ThresholdAndFactor,
    #[error("--sampler {0}: not a block-diffusion rule (use low_confidence, maskgit_plus, topk_margin, entropy or random)")]
    BlockSampler(&'static str),
    #[error("--sampler p2 masks again across the whole span: --block-length {block} must be the generation length {gen_length}")]
    RemaskBlocks { block: usize, gen_length: usize },
    #[error("--sub-block {sub}: must divide the block length {block}")]
    SubBlock { sub: usize, block: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// What to do about end-of-sequence tokens while generating.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum EosPolicy {
    #[default]
    Allow,
    /// Never propose EOS (the reference's `logits_eos_inf`).
    Suppress,
    /// Subtract this from the EOS logits.
    Penalty(f32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--eos {0}: expected allow, suppress or penalty:X with X >= 0")]
pub struct BadEosPolicy(pub String);

impl std::str::FromStr for EosPolicy {
    type Err = BadEosPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(EosPolicy::Allow),
            "suppress" => Ok(EosPolicy::Suppress),
            other => match other
                .strip_prefix("penalty:")
                .and_then(|v| v.parse::<f32>().ok())
            {
                Some(p) if p.is_finite() && p >= 0.0 => Ok(EosPolicy::Penalty(p)),
                _ => Err(BadEosPolicy(other.to_string())),
            },
        }
    }
}

impl std::fmt::Display for EosPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EosPolicy::Allow => f.write_str("allow"),
            EosPolicy::Suppress => f.write_str("suppress"),
            EosPolicy::Penalty(p) => write!(f, "penalty:{p}"),
        }
    }
}

impl serde::Serialize for EosPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EosPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Fast-dLLM's block caches: what a step after a block's first pass recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Every step runs the whole canvas.
    #[default]
    None,
    /// Keys and values before the block are kept; steps run the block and everything after it.
    Prefix,
    /// Keys and values outside the block are kept; steps run the block alone.
    Dual,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--cache {0}: expected none, prefix or dual")]
pub struct BadCacheMode(pub String);

impl CacheMode {
    pub fn name(self) -> &'static str {
        match self {
            CacheMode::None => "none",
            CacheMode::Prefix => "prefix",
            CacheMode::Dual => "dual",
        }
    }
}

impl std::str::FromStr for CacheMode {
    type Err = BadCacheMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(CacheMode::None),
            "prefix" => Ok(CacheMode::Prefix),
            "dual" => Ok(CacheMode::Dual),
            other => Err(BadCacheMode(other.to_string())),
        }
    }
}

impl std::fmt::Display for CacheMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    pub steps: usize,
    pub gen_length: usize,
    pub block_length: usize,
    pub sampler: SamplerKind,
    pub sampling: TokenSampling,
    /// Dream: temperature of the draw over confidences (0 or None: top-k).
    pub alg_temp: Option<f64>,
    /// Dream: the schedule ends at `eps` instead of 0.
    pub eps: f64,
    /// Fast-dLLM: commit every candidate at or above this confidence.
    pub threshold: Option<f64>,
    /// Fast-dLLM's factor rule: commit the n most confident while `c_n >= 1 - F/(n+1)`.
    pub factor: Option<f64>,
    pub cache: CacheMode,
    pub eos: EosPolicy,
    pub seed: u64,
    /// Fast-dLLM v2: each block is decoded in sub-blocks of this many positions, left to
    /// right (`None`: its default, 8). Other families ignore it.
    pub sub_block: Option<usize>,
}

/// The token sequence being denoised, and the span of it being generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    pub tokens: Vec<u32>,
    pub span: Range<usize>,
}

impl Canvas {
    /// `prompt` followed by `gen_length` masks.
    pub fn for_prompt(prompt: &[u32], gen_length: usize, mask: u32) -> Canvas {
        let mut tokens = prompt.to_vec();
        tokens.extend(std::iter::repeat_n(mask, gen_length));
        Canvas {
            span: prompt.len()..tokens.len(),
            tokens,
        }
    }

    /// `prefix`, `span` masks, `suffix`: the model sees both sides while filling the middle.
    pub fn for_infill(prefix: &[u32], span: usize, suffix: &[u32], mask: u32) -> Canvas {
        let mut tokens = prefix.to_vec();
        tokens.extend(std::iter::repeat_n(mask, span));
        let range = prefix.len()..tokens.len();
        tokens.extend_from_slice(suffix);
        Canvas {
            tokens,
            span: range,
        }
    }

    pub fn generated(&self) -> &[u32] {
        &self.tokens[self.span.clone()]
    }
}

/// One step, for progress bars and the `--visual` canvas.
pub struct StepEvent<'a> {
    pub step: usize,
    pub block: usize,
    pub committed: usize,
    pub masked_left: usize,
    pub canvas: &'a Canvas,
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub canvas: Canvas,
    pub forward_passes: usize,
    pub step_ms: Vec<f64>,
    /// Tokens committed at each step, in order.
    pub schedule: Vec<u32>,
    /// The sampler's confidence in each generated position when it was committed.
    pub confidence: Vec<f64>,
    /// The most key/value cache this canvas held at once, in bytes.
    pub kv_bytes: usize,
    /// Span positions still masked at the end (a dual-cache block capped at its steps).
    pub unfilled: usize,
    pub seconds: f64,
}

impl Generation {
    pub fn tokens_per_second(&self) -> f64 {
        self.canvas.span.len() as f64 / self.seconds.max(1e-9)
    }

    /// Tokens generated per forward pass.
    pub fn tokens_per_forward(&self) -> f64 {
        self.canvas.span.len() as f64 / self.forward_passes.max(1) as f64
    }

    pub fn ms_per_step(&self) -> f64 {
        self.step_ms.iter().sum::<f64>() / self.step_ms.len().max(1) as f64
    }

    /// Mean of the sampler's confidence at commit time over the span (a probability for
    /// `low_confidence`/`maskgit_plus`, a margin or negative entropy for the others).
    pub fn mean_confidence(&self) -> f64 {
        self.confidence.iter().sum::<f64>() / self.confidence.len().max(1) as f64
    }
}

pub fn validate(
    cfg: &GenerateConfig,
    prompt_len: usize,
    context: usize,
) -> Result<(), GenerateError> {
    if cfg.gen_length == 0 {
        return Err(GenerateError::Empty);
    }
    if cfg.steps == 0 {
        return Err(GenerateError::ZeroSteps);
    }
    if cfg.steps > cfg.gen_length {
        return Err(GenerateError::TooManySteps {
            steps: cfg.steps,
            gen_length: cfg.gen_length,
        });
    }
    if cfg.block_length == 0 || !cfg.gen_length.is_multiple_of(cfg.block_length) {
        return Err(GenerateError::BlockMismatch {
            gen_length: cfg.gen_length,
            block_length: cfg.block_length,
        });
    }
    let blocks = cfg.gen_length / cfg.block_length;
    if !cfg.steps.is_multiple_of(blocks) {
        return Err(GenerateError::StepsPerBlock {
            steps: cfg.steps,
            blocks,
        });
    }
    if let Some(t) = cfg.threshold {
        if !(t > 0.0 && t <= 1.0) {
            return Err(GenerateError::Threshold(t));
        }
    }
    if let Some(f) = cfg.factor {
        if !(f > 0.0 && f.is_finite()) {
            return Err(GenerateError::Factor(f));
        }
        if cfg.threshold.is_some() {
            return Err(GenerateError::ThresholdAndFactor);
        }
    }
    let total = prompt_len + cfg.gen_length;
    if total > context {
        return Err(GenerateError::TooLong {
            total,
            prompt: prompt_len,
            gen: cfg.gen_length,
            context,
        });
    }
    Ok(())
}

/// What block diffusion needs besides [`validate`] (which already keeps a block's steps at
/// most its length): a rule it has, and room for the span rounded up to a whole block.
pub fn validate_block(
    cfg: &GenerateConfig,
    prompt_len: usize,
    context: usize,
) -> Result<(), GenerateError> {
    if matches!(cfg.sampler, SamplerKind::Origin | SamplerKind::P2) {
        return Err(GenerateError::BlockSampler(cfg.sampler.name()));
    }
    let total = (prompt_len + cfg.gen_length).div_ceil(cfg.block_length) * cfg.block_length;
    if total > context {
        return Err(GenerateError::TooLong {
            total,
            prompt: prompt_len,
            gen: total - prompt_len,
            context,
        });
    }
    Ok(())
}

pub fn generate(
    model: &DiffusionLm,
    canvas: Canvas,
    cfg: &GenerateConfig,
    mut observe: impl FnMut(&StepEvent),
) -> Result<Generation, GenerateError> {
    let mut out = generate_batch(model, vec![(canvas, cfg.clone())], |_, e| observe(e))?;
    Ok(out.pop().expect("one generation per canvas"))
}

/// Denoise several canvases together, each with its own settings. Every forward pass packs the
/// rows each unfinished canvas needs next (a whole canvas, or a window over its cache); each
/// canvas attends only to itself, so its output is the one it would have alone. `observe`
/// gets the canvas index with each step.
pub fn generate_batch(
    model: &DiffusionLm,
    jobs: Vec<(Canvas, GenerateConfig)>,
    mut observe: impl FnMut(usize, &StepEvent),
) -> Result<Vec<Generation>, GenerateError> {
    for (canvas, cfg) in &jobs {
        let prompt = canvas.tokens.len() - canvas.span.len();
        validate(cfg, prompt, model.max_positions())?;
        if model.block_causal.is_some() {
            validate_block(cfg, prompt, model.max_positions())?;
        }
        if cfg.sampler == SamplerKind::P2 && cfg.block_length != cfg.gen_length {
            return Err(GenerateError::RemaskBlocks {
                block: cfg.block_length,
                gen_length: cfg.gen_length,
            });
        }
        if model.family == Family::FastDllmV2 {
            let sub = cfg.sub_block.unwrap_or(sub_block::DEFAULT_SUB_BLOCK);
            if sub == 0 || !cfg.block_length.is_multiple_of(sub) {
                return Err(GenerateError::SubBlock {
                    sub,
                    block: cfg.block_length,
                });
            }
        }
    }
    let (canvases, cfgs): (Vec<Canvas>, Vec<GenerateConfig>) = jobs.into_iter().unzip();
    let mut decoders: Vec<Denoiser> = canvases
        .into_iter()
        .zip(&cfgs)
        .map(|(c, cfg)| Denoiser::new(c, cfg, model))
        .collect();
    loop {
        let mut feeds = Vec::new();
        for (i, d) in decoders.iter_mut().enumerate() {
            if let Some(feed) = d.plan(&mut |e| observe(i, e)) {
                feeds.push((i, feed));
            }
        }
        if feeds.is_empty() {
            break;
        }
        let started = Instant::now();
        let segments: Vec<_> = feeds.iter().map(|(i, f)| decoders[*i].segment(f)).collect();
        let mut pass = model.forward(&segments)?;
        drop(segments);
        let starts = &pass.starts;
        let rows: Vec<usize> = feeds
            .iter()
            .enumerate()
            .flat_map(|(k, (_, f))| f.rows.iter().map(move |r| starts[k] + r))
            .collect::<Vec<_>>();
        let logits = head_logits(model, &pass.hidden, &rows)?;
        let mut at = 0;
        let mut scores = Vec::with_capacity(feeds.len());
        for (i, feed) in &feeds {
            let n = feed.rows.len();
            scores.push(match &logits {
                Some(l) if n > 0 => {
                    let spec = decoders[*i].row_spec(model);
                    scores::read(
                        &l.narrow(0, at, n).map_err(ModelError::from)?,
                        spec.as_ref(),
                    )
                    .map_err(ModelError::from)?
                }
                _ => Vec::new(),
            });
            at += n;
        }
        let pass_ms = started.elapsed().as_secs_f64() * 1e3;
        for (k, ((i, feed), mine)) in feeds.iter().zip(scores).enumerate() {
            let kept = pass.kept[k].take();
            decoders[*i]
                .take(feed, mine, kept, pass_ms, &mut |e| observe(*i, e))
                .map_err(ModelError::from)?;
        }
    }
    Ok(decoders.into_iter().map(Denoiser::finish).collect())
}

/// One canvas's decoding loop: the published loop of a fully bidirectional family, or the
/// block-diffusion loop of a block-causal one.
enum Denoiser<'c> {
    Full(Decoder<'c>),
    Block(BlockDecoder<'c>),
    SubBlock(SubBlockDecoder<'c>),
    Remask(RemaskDecoder<'c>),
}

impl<'c> Denoiser<'c> {
    fn new(canvas: Canvas, cfg: &'c GenerateConfig, model: &'c DiffusionLm) -> Self {
        match (model.family, model.block_causal) {
            (Family::FastDllmV2, _) => Denoiser::SubBlock(SubBlockDecoder::new(canvas, cfg, model)),
            (_, None) if cfg.sampler == SamplerKind::P2 => {
                Denoiser::Remask(RemaskDecoder::new(canvas, cfg, model))
            }
            (_, Some(_)) => {
                Denoiser::Block(BlockDecoder::new(canvas, cfg, model, cfg.block_length))
            }
            (_, None) => Denoiser::Full(Decoder::new(canvas, cfg, model)),
        }
    }

    fn cfg(&self) -> &GenerateConfig {
        match self {
            Denoiser::Full(d) => d.cfg,
            Denoiser::Block(d) => d.cfg,
            Denoiser::SubBlock(d) => d.cfg,
            Denoiser::Remask(d) => d.cfg,
        }
    }

    /// The kernel settings when this canvas's step reads row statistics, not rows.
    fn row_spec(&self, model: &DiffusionLm) -> Option<crate::kernels::RowSpec> {
        let cfg = self.cfg();
        (model.scoring == Scoring::Device && scores::stats_suffice(cfg))
            .then(|| scores::row_spec(model.mask_id, &model.eos_ids, cfg.eos))
    }

    fn plan(&mut self, observe: &mut dyn FnMut(&StepEvent)) -> Option<Feed> {
        match self {
            Denoiser::Full(d) => d.plan(observe),
            Denoiser::Block(d) => d.plan(),
            Denoiser::SubBlock(d) => d.plan(),
            Denoiser::Remask(d) => d.plan(),
        }
    }

    fn segment<'a>(&'a self, feed: &Feed) -> super::cache::Segment<'a> {
        match self {
            Denoiser::Full(d) => d.segment(feed),
            Denoiser::Block(d) => d.segment(feed),
            Denoiser::SubBlock(d) => d.segment(feed),
            Denoiser::Remask(d) => d.segment(feed),
        }
    }

    fn take(
        &mut self,
        feed: &Feed,
        rows: Vec<Scores>,
        kept: Option<super::cache::KvCache>,
        pass_ms: f64,
        observe: &mut dyn FnMut(&StepEvent),
    ) -> candle_core::Result<()> {
        match self {
            Denoiser::Full(d) => d.take(feed, rows, kept, pass_ms, observe),
            Denoiser::Block(d) => d.take(feed, rows, kept, pass_ms, observe),
            Denoiser::SubBlock(d) => d.take(feed, rows, kept, pass_ms, observe),
            Denoiser::Remask(d) => {
                d.take(feed, rows, pass_ms, observe);
                Ok(())
            }
        }
    }

    fn finish(self) -> Generation {
        match self {
            Denoiser::Full(d) => d.finish(),
            Denoiser::Block(d) => d.finish(),
            Denoiser::SubBlock(d) => d.finish(),
            Denoiser::Remask(d) => d.finish(),
        }
    }
}

/// The head's output at packed hidden rows, where the pass ran; EOS policy not yet applied.
fn head_logits(
    model: &DiffusionLm,
    hidden: &Tensor,
    rows: &[usize],
) -> Result<Option<Tensor>, GenerateError> {
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(model.head_rows(hidden, rows)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canvases_keep_prompt_and_suffix() {
        let c = Canvas::for_infill(&[1, 2], 3, &[9], 0);
        assert_eq!(c.tokens, vec![1, 2, 0, 0, 0, 9]);
        assert_eq!(c.span, 2..5);
        assert_eq!(Canvas::for_prompt(&[5], 2, 7).tokens, vec![5, 7, 7]);
    }

    #[test]
    fn bad_settings_are_named() {
        let cfg = GenerateConfig {
            steps: 8,
            gen_length: 32,
            block_length: 8,
            sampler: SamplerKind::LowConfidence,
            sampling: TokenSampling {
                temperature: 0.0,
                top_p: None,
                top_k: None,
            },
            alg_temp: None,
            eps: 1e-3,
            threshold: None,
            factor: None,
            cache: CacheMode::None,
            eos: EosPolicy::Allow,
            seed: 0,
            sub_block: None,
        };
        assert!(validate(&cfg, 4, 100).is_ok());
        let err =
            |c: GenerateConfig, p: usize, ctx: usize| validate(&c, p, ctx).unwrap_err().to_string();
        assert!(err(
            GenerateConfig {
                steps: 0,
                ..cfg.clone()
            },
            4,
            100
        )
        .contains("--steps"));
        assert!(err(
            GenerateConfig {
                steps: 33,
                ..cfg.clone()
            },
            4,
            100
        )
        .contains("more than --gen-length"));
        assert!(err(
            GenerateConfig {
                block_length: 7,
                ..cfg.clone()
            },
            4,
            100
        )
        .contains("divisible"));
        assert!(err(
            GenerateConfig {
                steps: 6,
                ..cfg.clone()
            },
            4,
            100
        )
        .contains("multiple"));
        assert!(err(cfg.clone(), 90, 100).contains("context of 100"));
        assert!(err(
            GenerateConfig {
                threshold: Some(1.5),
                ..cfg.clone()
            },
            4,
            100
        )
        .contains("--threshold"));
        assert!(err(
            GenerateConfig {
                factor: Some(0.0),
                ..cfg.clone()
            },
            4,
            100
        )
        .contains("--factor"));
        assert!(err(
            GenerateConfig {
                factor: Some(1.0),
                threshold: Some(0.9),
                ..cfg
            },
            4,
            100
        )
        .contains("give one"));
    }
}
