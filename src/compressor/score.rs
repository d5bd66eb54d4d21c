//! Scoring context with the diffusion model itself: how much does a context text lower the
//! masked-token loss on the unit's code?
//!
//! This is the masked-diffusion counterpart of the conditional perplexity LongCodeZip (Shi et al.
//! 2025) and LLMLingua (Jiang et al. 2023) rank context by with a causal LM. A fixed share of the
//! unit's tokens is masked; the canvas is the unit alone, or the context followed by the unit;
//! the gain is the mean cross-entropy on the masked tokens without the context minus with it,
//! in nats per masked token. Two mask ratios (light and heavy masking) are averaged because a
//! light mask rewards context that helps with local details and a heavy one context that helps
//! write the code at all. The masks are fixed, so scores are deterministic and cacheable.

use candle_core::{Tensor, D};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{CompressError, Scorer, ScorerInfo};
use crate::device::dtype_name;
use crate::diffusion::{DiffusionLm, ModelError};
use crate::engine::remote::RemoteGenerator;

const MASK_RATIOS: [f64; 2] = [0.25, 0.75];
/// Scoring reads at most this many of the unit's tokens: the gain is a ranking signal, and the
/// head of a function (signature, docstring, first statements) is where context helps most.
const MAX_UNIT_TOKENS: usize = 256;

pub struct DiffusionScorer<'m> {
    model: &'m DiffusionLm,
    /// A generator server that computes the losses (`--generator remote`).
    remote: Option<&'m RemoteGenerator>,
    weights_sha256: String,
    forwards: usize,
}

/// Mean cross-entropy of `targets` at `positions` of `canvas` (masked there): one pass of the
/// model. The server's `/v1/ouroboros/loss` answers with this too.
pub fn masked_loss(
    model: &DiffusionLm,
    canvas: &[u32],
    positions: &[usize],
    targets: &[u32],
) -> Result<f64, ModelError> {
    let hidden = model.hidden(canvas)?;
    let logits = model.logits_at(&hidden, positions)?;
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let targets = Tensor::new(targets, logp.device())?.unsqueeze(1)?;
    let picked = logp.gather(&targets, 1)?;
    Ok(-(picked.mean_all()?.to_scalar::<f32>()? as f64))
}

impl<'m> DiffusionScorer<'m> {
    pub fn new(
        model: &'m DiffusionLm,
        remote: Option<&'m RemoteGenerator>,
        weights_sha256: String,
    ) -> DiffusionScorer<'m> {
        DiffusionScorer {
            model,
            remote,
            weights_sha256,
            forwards: 0,
        }
    }

    /// Mean cross-entropy on `masked` (positions in `unit`) with `prefix` before the unit.
    fn masked_loss(
        &mut self,
        prefix: &[u32],
        unit: &[u32],
        masked: &[usize],
    ) -> Result<f64, CompressError> {
        let mut canvas = Vec::with_capacity(prefix.len() + unit.len());
        canvas.extend_from_slice(prefix);
        canvas.extend_from_slice(unit);
        for &p in masked {
            canvas[prefix.len() + p] = self.model.mask_id;
        }
        let positions: Vec<usize> = masked.iter().map(|p| prefix.len() + p).collect();
        let targets: Vec<u32> = masked.iter().map(|&p| unit[p]).collect();
        self.forwards += 1;
        Ok(match self.remote {
            Some(r) => r.loss(&canvas, &positions, &targets)?,
            None => masked_loss(self.model, &canvas, &positions, &targets)?,
        })
    }
}

fn masks(n: usize) -> Vec<Vec<usize>> {
    MASK_RATIOS
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.shuffle(&mut ChaCha8Rng::seed_from_u64(i as u64));
            let k = ((n as f64 * r).round() as usize).clamp(1, n);
            let mut m = idx[..k].to_vec();
            m.sort_unstable();
            m
        })
        .collect()
}

impl Scorer for DiffusionScorer<'_> {
    fn info(&self) -> ScorerInfo {
        ScorerInfo {
            method: format!(
                "diffusion masked-token loss gain, mask ratios {MASK_RATIOS:?}, unit ≤ {MAX_UNIT_TOKENS} tokens"
            ),
            model: self.model.name.clone(),
            weights_sha256: self.weights_sha256.clone(),
            device: match self.remote {
                Some(r) => format!("remote {}", r.base),
                None => crate::device::describe(&self.model.device),
            },
            dtype: dtype_name(self.model.dtype).to_string(),
        }
    }

    fn forward_passes(&self) -> usize {
        self.forwards
    }

    fn gains(&mut self, unit_code: &str, contexts: &[&str]) -> Result<Vec<f64>, CompressError> {
        let max = self.model.max_positions();
        let mut unit = self.model.codec.encode(unit_code)?;
        unit.truncate(MAX_UNIT_TOKENS.min(max / 2));
        if unit.is_empty() {
            return Ok(vec![0.0; contexts.len()]);
        }
        let masks = masks(unit.len());
        let mut base = 0.0;
        for m in &masks {
            base += self.masked_loss(&[], &unit, m)? / masks.len() as f64;
        }
        let mut out = Vec::with_capacity(contexts.len());
        for ctx in contexts {
            let mut ids = self.model.codec.encode(ctx)?;
            // The context's head (header, signature, docstring) is kept when it must be cut.
            ids.truncate(max - unit.len());
            let mut with = 0.0;
            for m in &masks {
                with += self.masked_loss(&ids, &unit, m)? / masks.len() as f64;
            }
            out.push(base - with);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_fixed_sorted_and_sized_by_ratio() {
        let m = masks(8);
        assert_eq!(m, masks(8));
        assert_eq!(m[0].len(), 2);
        assert_eq!(m[1].len(), 6);
        assert!(m.iter().all(|v| v.windows(2).all(|w| w[0] < w[1])));
        assert_eq!(masks(1), vec![vec![0], vec![0]]);
    }
}
