//! The `p2` loop of Open-dCoder (pengzhangzhi/Open-dLLM, veomni's `MDMGenerationMixin._mdm_sample`
//! with `alg="p2"`, which its evaluations and `sample.py` use), as a state machine the batch
//! driver advances one forward pass at a time:
//!
//! - the positions masked at the start are the generated ones (the rest of the canvas stays
//!   fixed); every step runs the whole canvas, stopping early only once nothing is masked;
//! - at step i of `steps`, every generated position gets a fresh candidate (shifted logits on a
//!   shifted model) and its probability; the floor(n · (1 − (i+1)/steps)) least confident of the
//!   n generated positions are masked again, decoded ones included; masked positions that were
//!   not take their candidate, decoded ones keep their token;
//! - the last step masks nothing again, so everything is filled.
//!
//! Its re-masking can touch any generated position, so no cache applies and blocks are not
//! used: the span is one block.

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::decoder::Feed;
use super::scores::Scores;
use super::{Canvas, GenerateConfig, Generation, StepEvent};
use crate::diffusion::cache::{Segment, Visibility};
use crate::diffusion::sampler::SamplerKind;

pub struct RemaskDecoder<'c> {
    pub(super) cfg: &'c GenerateConfig,
    eos: &'c [u32],
    pub canvas: Canvas,
    mask: u32,
    shift: usize,
    rng: ChaCha8Rng,
    /// The generated positions: masked when decoding started.
    free: Vec<usize>,
    step: usize,
    out: Generation,
    started: Instant,
}

impl<'c> RemaskDecoder<'c> {
    pub fn new(
        canvas: Canvas,
        cfg: &'c GenerateConfig,
        model: &'c crate::diffusion::DiffusionLm,
    ) -> Self {
        let free = canvas
            .span
            .clone()
            .filter(|&p| canvas.tokens[p] == model.mask_id)
            .collect();
        RemaskDecoder {
            cfg,
            eos: &model.eos_ids,
            mask: model.mask_id,
            shift: usize::from(model.logit_shift),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            free,
            step: 0,
            out: Generation {
                canvas: canvas.clone(),
                forward_passes: 0,
                step_ms: Vec::new(),
                schedule: Vec::new(),
                confidence: vec![0.0; canvas.span.len()],
                kv_bytes: 0,
                unfilled: 0,
                seconds: 0.0,
            },
            canvas,
            started: Instant::now(),
        }
    }

    fn masked_left(&self) -> usize {
        self.free
            .iter()
            .filter(|&&p| self.canvas.tokens[p] == self.mask)
            .count()
    }

    /// The whole canvas, deciding about every generated position; `None` when done.
    pub fn plan(&mut self) -> Option<Feed> {
        if self.step >= self.cfg.steps || self.masked_left() == 0 {
            return None;
        }
        let rows = self
            .free
            .iter()
            .map(|&p| p.saturating_sub(self.shift))
            .collect();
        Some(Feed::new(
            0..self.canvas.tokens.len(),
            self.free.clone(),
            rows,
            false,
            false,
            Visibility::All,
        ))
    }

    pub fn segment<'a>(&'a self, feed: &Feed) -> Segment<'a> {
        Segment {
            ids: &self.canvas.tokens[feed.window.clone()],
            offset: 0,
            cache: None,
            keep: false,
            visibility: feed.visibility,
        }
    }

    pub fn take(
        &mut self,
        _feed: &Feed,
        mut rows: Vec<Scores>,
        pass_ms: f64,
        observe: &mut dyn FnMut(&StepEvent),
    ) {
        let started = Instant::now();
        self.out.forward_passes += 1;
        for row in &mut rows {
            row.apply_eos(self.eos, self.cfg.eos);
        }
        let candidates: Vec<_> = rows
            .iter()
            .map(|r| {
                r.dream(
                    self.cfg.sampling,
                    SamplerKind::MaskgitPlus,
                    self.mask,
                    &mut self.rng,
                )
            })
            .collect();
        let n = self.free.len();
        let kappa = (self.step + 1) as f64 / self.cfg.steps as f64;
        let again = ((n as f64 * (1.0 - kappa)).floor() as usize).min(n);
        // The least confident first; on a tie the earlier position.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            candidates[a]
                .confidence
                .total_cmp(&candidates[b].confidence)
        });
        let mut remask = vec![false; n];
        for &j in &order[..again] {
            remask[j] = true;
        }
        let span_start = self.canvas.span.start;
        let mut committed = 0;
        for (j, &p) in self.free.iter().enumerate() {
            if remask[j] {
                self.canvas.tokens[p] = self.mask;
            } else if self.canvas.tokens[p] == self.mask {
                self.canvas.tokens[p] = candidates[j].token;
                self.out.confidence[p - span_start] = candidates[j].confidence;
                committed += 1;
            }
        }
        self.out
            .step_ms
            .push(pass_ms + started.elapsed().as_secs_f64() * 1e3);
        self.out.schedule.push(committed);
        self.step += 1;
        observe(&StepEvent {
            step: self.step,
            block: 0,
            committed: committed as usize,
            masked_left: self.masked_left(),
            canvas: &self.canvas,
        });
    }

    pub fn finish(mut self) -> Generation {
        self.out.unfilled = self.masked_left();
        self.out.canvas = self.canvas;
        self.out.seconds = self.started.elapsed().as_secs_f64();
        self.out
    }
}
