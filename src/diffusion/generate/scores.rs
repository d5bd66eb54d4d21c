//! A decoded position's share of a forward pass, in the form the step reads: the logits row
//! itself, or, for greedy decoding on a GPU, the few numbers the samplers need from it
//! (`crate::kernels::row_stats`, computed where the row lives).

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::pick::apply_eos;
use super::{EosPolicy, GenerateConfig};
use crate::diffusion::sampler::{
    dream_candidate, llada_candidate, sdar_candidate, Candidate, SamplerKind, TokenSampling,
};
use crate::kernels::{RowSpec, RowStats};

pub enum Scores {
    Logits(Vec<f32>),
    /// Greedy only, with the EOS policy already applied where the decoder applies it.
    Stats(RowStats),
}

/// Whether a canvas's settings let its step read [`Scores::Stats`]: greedy, with no top-p or
/// top-k filter (which would renormalise the confidences), and a sampler that ranks by one
/// number per row. Open-dCoder's `p2` re-reads every position each step and keeps rows.
pub fn stats_suffice(cfg: &GenerateConfig) -> bool {
    let s = cfg.sampling;
    s.temperature <= 0.0
        && s.top_p.is_none_or(|p| p >= 1.0)
        && s.top_k.is_none_or(|k| k == 0)
        && cfg.sampler != SamplerKind::P2
}

/// The kernel's settings for a canvas: the mask is never proposed, and the EOS ids move as
/// the decoder's own `apply_eos` would move them (`eos` empty when it applies none).
pub fn row_spec(mask: u32, eos: &[u32], policy: EosPolicy) -> RowSpec {
    let delta = match policy {
        EosPolicy::Allow => 0.0,
        EosPolicy::Suppress => f32::NEG_INFINITY,
        EosPolicy::Penalty(p) => -p,
    };
    RowSpec {
        banned: mask,
        adjust: if delta == 0.0 {
            Vec::new()
        } else {
            eos.to_vec()
        },
        delta,
    }
}

/// Rows of `logits` as whole rows, or through the kernel with `spec`.
pub fn read(logits: &Tensor, spec: Option<&RowSpec>) -> candle_core::Result<Vec<Scores>> {
    Ok(match spec {
        Some(spec) => crate::kernels::row_stats(logits, spec)?
            .into_iter()
            .map(Scores::Stats)
            .collect(),
        None => logits
            .to_vec2::<f32>()?
            .into_iter()
            .map(Scores::Logits)
            .collect(),
    })
}

const GREEDY: TokenSampling = TokenSampling {
    temperature: 0.0,
    top_p: None,
    top_k: None,
};

impl Scores {
    pub fn apply_eos(&mut self, eos: &[u32], policy: EosPolicy) {
        if let Scores::Logits(row) = self {
            apply_eos(row, eos, policy);
        }
    }

    /// LLaDA's candidate (see `sampler::llada_candidate`).
    pub fn llada(
        &self,
        temperature: f64,
        kind: SamplerKind,
        mask: u32,
        rng: &mut ChaCha8Rng,
    ) -> Candidate {
        match self {
            Scores::Logits(row) => llada_candidate(row, temperature, kind, mask, rng),
            Scores::Stats(s) => Candidate {
                token: s.token,
                confidence: match kind {
                    SamplerKind::Random => rng.random::<f64>(),
                    _ => s.p_token,
                },
            },
        }
    }

    /// Dream's candidate (see `sampler::dream_candidate`). Its entropy confidence adds 1e-10
    /// inside the log, which the kernel's exact Σ p ln p leaves out: they differ by at most
    /// vocab × 1e-10, below f32 logits' own noise.
    pub fn dream(
        &self,
        sampling: TokenSampling,
        kind: SamplerKind,
        mask: u32,
        rng: &mut ChaCha8Rng,
    ) -> Candidate {
        match self {
            Scores::Logits(row) => dream_candidate(row, sampling, kind, mask, rng),
            Scores::Stats(s) => Candidate {
                token: s.token,
                confidence: match kind {
                    SamplerKind::TopkMargin => s.p_top1 - s.p_top2,
                    SamplerKind::Entropy => s.sum_p_ln_p,
                    _ => s.p_token,
                },
            },
        }
    }

    /// SDAR's candidate (see `sampler::sdar_candidate`).
    pub fn sdar(&self, sampling: TokenSampling, mask: u32, rng: &mut ChaCha8Rng) -> Candidate {
        match self {
            Scores::Logits(row) => sdar_candidate(row, sampling, mask, rng),
            Scores::Stats(s) => Candidate {
                token: s.token,
                confidence: s.p_token,
            },
        }
    }

    /// The arg-max and its probability, whatever the canvas's sampling.
    pub fn greedy(&self, mask: u32, rng: &mut ChaCha8Rng) -> Candidate {
        self.sdar(GREEDY, mask, rng)
    }
}
