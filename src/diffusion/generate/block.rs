//! Block diffusion: one canvas through a block-causal model (SDAR), as the state machine the
//! batch driver advances one forward pass at a time, like [`super::decoder::Decoder`].
//!
//! Follows `block_diffusion_generate` of JetAstra/SDAR (`generate.py`, and the OpenCompass
//! loop in `evaluation/opencompass/opencompass/models/huggingface_bd3.py`):
//!
//! - blocks are counted from canvas position 0, so the prompt's last partial block is decoded
//!   together with the first generated tokens, and the span is rounded up to a block boundary
//!   (dllm's bd3lm instead counts them from the span's start, and takes dllm's step quotas);
//! - the prompt's whole blocks are prefilled once under the block-causal mask, and their keys
//!   and values kept;
//! - each block is denoised over that cache alone (exact: nothing after a block is visible to
//!   it), committing a quota per step, the most confident first, or with `--threshold τ`
//!   every candidate above τ when there are at least the quota of them (SDAR's dynamic rule);
//! - a finished block is fed once more to append its keys and values to the cache;
//! - generation stops after the block in which an end-of-sequence token appears; the positions
//!   after it are filled with that token.
//!
//! With `--cache none` every step recomputes the canvas up to the block's end under the mask
//! instead, which gives the same tokens (checked by the tests).

use std::ops::Range;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::decoder::Feed;
use super::pick::{by_factor, dllm_transfer_counts, llada_transfer_counts, top_k};
use super::scores::Scores;
use super::{CacheMode, Canvas, GenerateConfig, Generation, StepEvent};
use crate::diffusion::cache::{KvCache, Segment, Visibility};
use crate::diffusion::model::Schedule;
use crate::diffusion::sampler::{Candidate, SamplerKind};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Next: the pass over the prompt's whole blocks (cached runs only).
    Prefill,
    Denoise,
    /// Next: the pass that appends the finished block's keys and values.
    Store,
    Done,
}

pub struct BlockDecoder<'c> {
    pub(super) cfg: &'c GenerateConfig,
    eos: &'c [u32],
    pub canvas: Canvas,
    mask: u32,
    size: usize,
    /// Added to a position before dividing by `size`, so blocks start at the right places.
    shift: usize,
    schedule: Schedule,
    per_block: usize,
    rng: ChaCha8Rng,
    /// The block being decoded, by index; the last one to decode.
    block: usize,
    last: usize,
    i: usize,
    phase: Phase,
    counts: Vec<usize>,
    cache: Option<KvCache>,
    step: usize,
    out: Generation,
    started: Instant,
}

impl<'c> BlockDecoder<'c> {
    /// `size` is the block length the model's mask is built with.
    pub fn new(
        mut canvas: Canvas,
        cfg: &'c GenerateConfig,
        model: &'c crate::diffusion::DiffusionLm,
        size: usize,
    ) -> Self {
        let size = size.max(1);
        // SDAR counts blocks from canvas position 0; bd3lm from the span's start (its prompt is
        // left-padded to a block boundary with padding nothing attends to, which is the same).
        let phase = match model.blocks_from_span {
            true => canvas.span.start % size,
            false => 0,
        };
        let shift = (size - phase) % size;
        // A span at the end of the canvas is rounded up to a whole block, as SDAR's loop
        // allocates `ceil((prompt + gen) / block)` blocks.
        if canvas.span.end == canvas.tokens.len() {
            let end = (canvas.span.end + shift).div_ceil(size) * size - shift;
            canvas.tokens.resize(end, model.mask_id);
            canvas.span.end = end;
        }
        let blocks_asked = (cfg.gen_length / cfg.block_length).max(1);
        let per_block = (cfg.steps / blocks_asked).max(1);
        let span = canvas.span.clone();
        let mut d = BlockDecoder {
            cfg,
            eos: &model.eos_ids,
            mask: model.mask_id,
            size,
            shift,
            schedule: model.schedule,
            per_block,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            block: (span.start + shift) / size,
            last: (span.end.saturating_sub(1) + shift) / size,
            i: 0,
            phase: match cfg.cache {
                CacheMode::None => Phase::Denoise,
                _ => Phase::Prefill,
            },
            counts: Vec::new(),
            cache: None,
            step: 0,
            out: Generation {
                canvas: canvas.clone(),
                forward_passes: 0,
                step_ms: Vec::new(),
                schedule: Vec::new(),
                confidence: vec![0.0; span.len()],
                kv_bytes: 0,
                unfilled: 0,
                seconds: 0.0,
            },
            canvas,
            started: Instant::now(),
        };
        d.counts = d.block_counts();
        d
    }

    /// The quotas of the current block's steps: SDAR's over the block length, dllm's over the
    /// masks the block holds.
    fn block_counts(&self) -> Vec<usize> {
        match self.schedule {
            Schedule::Llada => llada_transfer_counts(self.size, self.per_block),
            Schedule::Dllm => dllm_transfer_counts(self.masked(self.range()).len(), self.per_block),
        }
    }

    fn visibility(&self) -> Visibility {
        Visibility::BlockCausal {
            size: self.size,
            phase: (self.size - self.shift) % self.size,
        }
    }

    fn cached(&self) -> bool {
        self.cfg.cache != CacheMode::None
    }

    fn range(&self) -> Range<usize> {
        let start = (self.block * self.size).saturating_sub(self.shift);
        let end = ((self.block + 1) * self.size - self.shift).min(self.canvas.tokens.len());
        start..end
    }

    fn masked(&self, range: Range<usize>) -> Vec<usize> {
        let span = self.canvas.span.clone();
        range
            .filter(|&i| span.contains(&i) && self.canvas.tokens[i] == self.mask)
            .collect()
    }

    fn feed(
        &self,
        window: Range<usize>,
        positions: Vec<usize>,
        cached: bool,
        keep: bool,
        visibility: Visibility,
    ) -> Feed {
        let rows = positions.iter().map(|&p| p - window.start).collect();
        Feed::new(window, positions, rows, cached, keep, visibility)
    }

    /// What the next pass must be fed, or `None` when the canvas is done.
    pub fn plan(&mut self) -> Option<Feed> {
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Prefill => {
                    let prefill = self.range().start;
                    if prefill == 0 {
                        self.phase = Phase::Denoise;
                        continue;
                    }
                    let causal = self.visibility();
                    return Some(self.feed(0..prefill, Vec::new(), false, true, causal));
                }
                Phase::Denoise => {
                    let range = self.range();
                    let positions = self.masked(range.clone());
                    if positions.is_empty() {
                        self.finish_block();
                        continue;
                    }
                    return Some(match self.cached() {
                        true => self.feed(range, positions, true, false, Visibility::All),
                        false => {
                            let causal = self.visibility();
                            self.feed(0..range.end, positions, false, false, causal)
                        }
                    });
                }
                Phase::Store => {
                    let range = self.range();
                    return Some(self.feed(range, Vec::new(), true, true, Visibility::All));
                }
            }
        }
    }

    /// A block has no masks left: stop at an end-of-sequence token, else store the block's
    /// keys and values (when a later block will read them) and move on.
    fn finish_block(&mut self) {
        if self.stop_at_eos() || self.block >= self.last {
            self.phase = Phase::Done;
        } else if self.cached() {
            self.phase = Phase::Store;
        } else {
            self.next_block();
        }
    }

    fn next_block(&mut self) {
        self.block += 1;
        self.i = 0;
        self.phase = Phase::Denoise;
        self.counts = self.block_counts();
    }

    /// Whether an end-of-sequence token has been committed; if so nothing after it is read,
    /// and the span's masks after this block take that token rather than stay masks.
    fn stop_at_eos(&mut self) -> bool {
        let span = self.canvas.span.clone();
        let done_to = self.range().end.min(span.end);
        let Some(eos) = self.canvas.tokens[span.start..done_to]
            .iter()
            .find(|t| self.eos.contains(t))
            .copied()
        else {
            return false;
        };
        for t in &mut self.canvas.tokens[done_to..span.end] {
            if *t == self.mask {
                *t = eos;
            }
        }
        true
    }

    pub fn segment<'a>(&'a self, feed: &Feed) -> Segment<'a> {
        Segment {
            ids: &self.canvas.tokens[feed.window.clone()],
            offset: feed.window.start,
            cache: if feed.cached {
                self.cache.as_ref()
            } else {
                None
            },
            keep: feed.keep,
            visibility: feed.visibility,
        }
    }

    pub fn take(
        &mut self,
        feed: &Feed,
        mut rows: Vec<Scores>,
        kept: Option<KvCache>,
        pass_ms: f64,
        observe: &mut dyn FnMut(&StepEvent),
    ) -> candle_core::Result<()> {
        let started = Instant::now();
        self.out.forward_passes += 1;
        match self.phase {
            Phase::Prefill => {
                self.cache = kept;
                self.note_cache();
                self.phase = Phase::Denoise;
                return Ok(());
            }
            Phase::Store => {
                let fresh = kept.unwrap_or_default();
                self.cache = Some(KvCache::after(self.cache.as_ref(), fresh)?);
                self.note_cache();
                self.next_block();
                return Ok(());
            }
            Phase::Denoise | Phase::Done => {}
        }
        for row in &mut rows {
            row.apply_eos(self.eos, self.cfg.eos);
        }
        let candidates: Vec<Candidate> = rows.iter().map(|r| self.candidate(r)).collect();
        let picks = self.picks(&candidates);
        let span_start = self.canvas.span.start;
        for &j in &picks {
            let p = feed.positions[j];
            self.canvas.tokens[p] = candidates[j].token;
            self.out.confidence[p - span_start] = candidates[j].confidence;
        }
        self.out
            .step_ms
            .push(pass_ms + started.elapsed().as_secs_f64() * 1e3);
        self.out.schedule.push(picks.len() as u32);
        self.step += 1;
        self.i += 1;
        observe(&StepEvent {
            step: self.step,
            block: self.block,
            committed: picks.len(),
            masked_left: self.masked(self.canvas.span.clone()).len(),
            canvas: &self.canvas,
        });
        Ok(())
    }

    fn note_cache(&mut self) {
        let bytes = self.cache.as_ref().map_or(0, KvCache::bytes);
        self.out.kv_bytes = self.out.kv_bytes.max(bytes);
    }

    /// SDAR's own candidates for `low_confidence` (the probability before top-k/top-p);
    /// `maskgit_plus`, `topk_margin` and `entropy` score as Dream's do, `random` at random.
    fn candidate(&mut self, row: &Scores) -> Candidate {
        let s = self.cfg.sampling;
        match self.cfg.sampler {
            SamplerKind::LowConfidence | SamplerKind::Origin => {
                row.sdar(s, self.mask, &mut self.rng)
            }
            SamplerKind::Random => {
                let mut c = row.sdar(s, self.mask, &mut self.rng);
                c.confidence = self.rng.random::<f64>();
                c
            }
            kind => row.dream(s, kind, self.mask, &mut self.rng),
        }
    }

    /// The quota of this step (`block_length / steps` each, the remainder first, over the
    /// whole block as SDAR counts it), the most confident first; with a threshold, every
    /// candidate above it if there are at least the quota of them.
    fn picks(&self, candidates: &[Candidate]) -> Vec<usize> {
        let n = candidates.len();
        // Past the schedule (the last step of a block), everything left is committed.
        let quota = self.counts.get(self.i).copied().unwrap_or(n).clamp(1, n);
        if let Some(f) = self.cfg.factor {
            return by_factor(candidates, f);
        }
        if let Some(tau) = self.cfg.threshold {
            let high: Vec<usize> = (0..n).filter(|&j| candidates[j].confidence > tau).collect();
            if high.len() >= quota {
                return high;
            }
        }
        top_k(candidates, quota)
    }

    pub fn finish(mut self) -> Generation {
        self.out.unfilled = self.masked(self.canvas.span.clone()).len();
        self.out.canvas = self.canvas;
        self.out.seconds = self.started.elapsed().as_secs_f64();
        self.out
    }
}
