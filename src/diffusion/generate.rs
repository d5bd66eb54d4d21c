//! The denoising loop: a canvas of prompt tokens and masks, refined over a number of steps,
//! block by block (semi-autoregressive), committing the candidates the sampler trusts most.
//!
//! Follows the published loops: LLaDA's `generate()` (ML-GSAI/LLaDA, generate.py) for
//! `low_confidence`/`random`, Dream's `_sample` (generation_utils.py) for the others, and
//! Fast-dLLM's confidence threshold (commit every candidate ≥ τ, always at least one).

use std::ops::Range;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::{DiffusionLm, ModelError};
use super::sampler::{dream_candidate, llada_candidate, Candidate, SamplerKind, TokenSampling};

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

#[derive(Debug, Clone)]
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
    pub eos: EosPolicy,
    pub seed: u64,
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
    pub seconds: f64,
}

impl Generation {
    pub fn tokens_per_second(&self) -> f64 {
        self.canvas.span.len() as f64 / self.seconds.max(1e-9)
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

/// LLaDA's per-step counts: `n / steps` each, plus one for the first `n % steps` steps.
pub fn llada_transfer_counts(masked: usize, steps: usize) -> Vec<usize> {
    (0..steps)
        .map(|i| masked / steps + usize::from(i < masked % steps))
        .collect()
}

/// Dream's timesteps `linspace(1, eps, steps + 1)`.
pub fn dream_timesteps(steps: usize, eps: f64) -> Vec<f64> {
    (0..=steps)
        .map(|i| 1.0 + (eps - 1.0) * i as f64 / steps as f64)
        .collect()
}

pub fn generate(
    model: &DiffusionLm,
    mut canvas: Canvas,
    cfg: &GenerateConfig,
    mut observe: impl FnMut(&StepEvent),
) -> Result<Generation, GenerateError> {
    let prompt_len = canvas.tokens.len() - canvas.span.len();
    validate(cfg, prompt_len, model.max_positions())?;
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mask = model.mask_id;
    let blocks = cfg.gen_length / cfg.block_length;
    let steps_per_block = cfg.steps / blocks;
    let mut confidence = vec![0.0; canvas.span.len()];
    let (mut step_ms, mut schedule) = (Vec::new(), Vec::new());
    let mut forward_passes = 0;
    let mut step = 0;

    for b in 0..blocks {
        let start = canvas.span.start + b * cfg.block_length;
        let block = start..start + cfg.block_length;
        let masked_in = |c: &Canvas| {
            block
                .clone()
                .filter(|&i| c.tokens[i] == mask)
                .collect::<Vec<usize>>()
        };
        let llada_counts = llada_transfer_counts(masked_in(&canvas).len(), steps_per_block);
        let times = dream_timesteps(steps_per_block, cfg.eps);
        let mut i = 0;
        loop {
            let positions = masked_in(&canvas);
            let done = match cfg.threshold {
                // Threshold decoding runs until the block is full, whatever the step count.
                Some(_) => positions.is_empty(),
                None => i >= steps_per_block,
            };
            if done {
                break;
            }
            let step_started = Instant::now();
            let mut chosen: Vec<(usize, Candidate)> = Vec::new();
            if !positions.is_empty() {
                let hidden = model.hidden(&canvas.tokens)?;
                let logits = model.logits_at(&hidden, &positions)?;
                forward_passes += 1;
                let mut rows = logits.to_vec2::<f32>().map_err(ModelError::from)?;
                for row in &mut rows {
                    apply_eos(row, &model.eos_ids, cfg.eos);
                }
                let candidates: Vec<Candidate> = rows
                    .iter()
                    .map(|row| {
                        if cfg.sampler.is_llada_style() {
                            llada_candidate(
                                row,
                                cfg.sampling.temperature,
                                cfg.sampler,
                                mask,
                                &mut rng,
                            )
                        } else {
                            dream_candidate(row, cfg.sampling, cfg.sampler, mask, &mut rng)
                        }
                    })
                    .collect();
                let last = i + 1 >= steps_per_block;
                let picks = match cfg.threshold {
                    Some(tau) => by_threshold(&candidates, tau),
                    None => match cfg.sampler {
                        SamplerKind::LowConfidence | SamplerKind::Random => {
                            top_k(&candidates, llada_counts[i].min(candidates.len()))
                        }
                        SamplerKind::Origin => {
                            let p = if last {
                                1.0
                            } else {
                                1.0 - times[i + 1] / times[i]
                            };
                            (0..candidates.len())
                                .filter(|_| rng.random::<f64>() < p)
                                .collect()
                        }
                        _ => {
                            let n = candidates.len();
                            let k = if last {
                                n
                            } else {
                                (n as f64 * (1.0 - times[i + 1] / times[i])) as usize
                            };
                            match cfg.alg_temp.filter(|t| *t > 0.0) {
                                Some(t) => sample_without_replacement(&candidates, k, t, &mut rng),
                                None => top_k(&candidates, k),
                            }
                        }
                    },
                };
                chosen = picks
                    .into_iter()
                    .map(|j| (positions[j], candidates[j]))
                    .collect();
            }
            for (pos, c) in &chosen {
                canvas.tokens[*pos] = c.token;
                confidence[pos - canvas.span.start] = c.confidence;
            }
            step_ms.push(step_started.elapsed().as_secs_f64() * 1e3);
            schedule.push(chosen.len() as u32);
            step += 1;
            i += 1;
            let masked_left = canvas
                .span
                .clone()
                .filter(|&p| canvas.tokens[p] == mask)
                .count();
            observe(&StepEvent {
                step,
                block: b,
                committed: chosen.len(),
                masked_left,
                canvas: &canvas,
            });
        }
    }
    Ok(Generation {
        canvas,
        forward_passes,
        step_ms,
        schedule,
        confidence,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn apply_eos(row: &mut [f32], eos: &[u32], policy: EosPolicy) {
    for &id in eos {
        if let Some(v) = row.get_mut(id as usize) {
            match policy {
                EosPolicy::Allow => {}
                EosPolicy::Suppress => *v = f32::NEG_INFINITY,
                EosPolicy::Penalty(p) => *v -= p,
            }
        }
    }
}

/// Indices of the `k` most confident candidates; ties go to the earlier position.
fn top_k(c: &[Candidate], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| c[b].confidence.total_cmp(&c[a].confidence).then(a.cmp(&b)));
    order.truncate(k);
    order
}

fn by_threshold(c: &[Candidate], tau: f64) -> Vec<usize> {
    let order = top_k(c, c.len());
    order
        .iter()
        .enumerate()
        .filter(|(rank, &j)| *rank == 0 || c[j].confidence >= tau)
        .map(|(_, &j)| j)
        .collect()
}

/// Dream's `alg_temp`: draw `k` positions without replacement from softmax(confidence / t).
fn sample_without_replacement(
    c: &[Candidate],
    k: usize,
    t: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let max = c
        .iter()
        .map(|x| x.confidence / t)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut weights: Vec<f64> = c.iter().map(|x| (x.confidence / t - max).exp()).collect();
    let mut picked = Vec::with_capacity(k);
    for _ in 0..k.min(c.len()) {
        let total: f64 = weights.iter().sum();
        let mut u = rng.random::<f64>() * total;
        let mut choice = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
        for (j, &w) in weights.iter().enumerate() {
            if w > 0.0 && u < w {
                choice = j;
                break;
            }
            u -= w;
        }
        picked.push(choice);
        weights[choice] = 0.0;
    }
    picked.shuffle(rng);
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llada_counts_spread_the_remainder_first() {
        assert_eq!(llada_transfer_counts(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(llada_transfer_counts(8, 8), vec![1; 8]);
        assert_eq!(llada_transfer_counts(2, 4), vec![1, 1, 0, 0]);
    }

    #[test]
    fn dream_timesteps_run_from_one_to_eps() {
        let t = dream_timesteps(4, 1e-3);
        assert_eq!(t.len(), 5);
        assert_eq!(t[0], 1.0);
        assert!((t[4] - 1e-3).abs() < 1e-12);
    }

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
            eos: EosPolicy::Allow,
            seed: 0,
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
                ..cfg
            },
            4,
            100
        )
        .contains("--threshold"));
    }

    #[test]
    fn threshold_commits_at_least_one() {
        let c = [
            Candidate {
                token: 1,
                confidence: 0.2,
            },
            Candidate {
                token: 2,
                confidence: 0.95,
            },
            Candidate {
                token: 3,
                confidence: 0.91,
            },
        ];
        assert_eq!(by_threshold(&c, 0.9), vec![1, 2]);
        assert_eq!(by_threshold(&c, 0.99), vec![1]);
        assert_eq!(top_k(&c, 2), vec![1, 2]);
    }
}
