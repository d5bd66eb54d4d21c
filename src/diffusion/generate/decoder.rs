//! One canvas's progress through its blocks and steps, as a state machine the batch driver
//! advances one forward pass at a time: [`Decoder::plan`] says what the next pass must be fed,
//! [`Decoder::take`] commits what the sampler picks from its logits.
//!
//! With `--cache none` every step is a pass over the whole canvas. With `prefix` or `dual` each
//! block starts with a full pass that keeps every layer's keys and values, as Fast-dLLM's
//! `generate_with_prefix_cache` / `generate_with_dual_cache` (LLaDA) and its block
//! `_sample` (Dream) do; later steps of the block feed only `x[s..]` over the cached prefix, or
//! only the block over the cached prefix and suffix.

use std::ops::Range;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::pick::{
    by_factor, by_threshold, dllm_transfer_counts, dream_timesteps, llada_transfer_counts,
    sample_without_replacement, top_k,
};
use super::scores::Scores;
use super::{CacheMode, Canvas, GenerateConfig, Generation, StepEvent};
use crate::diffusion::cache::{KvCache, Segment, Visibility};
use crate::diffusion::model::Schedule;
use crate::diffusion::sampler::{Candidate, SamplerKind};

/// Where the decoder is within its current block.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Next: the block's first step.
    Start,
    /// Steps over the whole canvas (`--cache none`).
    Plain,
    /// Steps over a window and the block's cache.
    Cached,
}

/// The next forward pass one canvas needs.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Canvas positions fed.
    pub window: Range<usize>,
    /// Over the block's cache (else the whole canvas).
    pub cached: bool,
    /// Keep this pass's keys and values.
    pub keep: bool,
    /// Masked positions the pass decides about.
    pub positions: Vec<usize>,
    /// For each position, the row of the window whose output predicts it.
    pub rows: Vec<usize>,
    /// Which keys the fed positions see.
    pub visibility: Visibility,
    /// The block's first pass under a cache for a Dream-style sampler: it commits exactly the
    /// block's first token.
    first_only: bool,
}

impl Feed {
    pub fn new(
        window: Range<usize>,
        positions: Vec<usize>,
        rows: Vec<usize>,
        cached: bool,
        keep: bool,
        visibility: Visibility,
    ) -> Feed {
        Feed {
            window,
            cached,
            keep,
            positions,
            rows,
            visibility,
            first_only: false,
        }
    }
}

pub struct Decoder<'c> {
    pub(super) cfg: &'c GenerateConfig,
    eos: &'c [u32],
    pub canvas: Canvas,
    mask: u32,
    shift: usize,
    schedule: Schedule,
    rng: ChaCha8Rng,
    blocks: usize,
    per_block: usize,
    block: usize,
    i: usize,
    phase: Phase,
    counts: Vec<usize>,
    times: Vec<f64>,
    cache: Option<KvCache>,
    step: usize,
    out: Generation,
    started: Instant,
}

impl<'c> Decoder<'c> {
    pub fn new(
        canvas: Canvas,
        cfg: &'c GenerateConfig,
        model: &'c crate::diffusion::DiffusionLm,
    ) -> Self {
        let blocks = cfg.gen_length / cfg.block_length;
        let per_block = cfg.steps / blocks;
        let span = canvas.span.len();
        Decoder {
            cfg,
            eos: &model.eos_ids,
            mask: model.mask_id,
            shift: usize::from(model.logit_shift),
            schedule: model.schedule,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            blocks,
            per_block,
            block: 0,
            i: 0,
            phase: Phase::Start,
            counts: Vec::new(),
            times: dream_timesteps(per_block, cfg.eps),
            cache: None,
            step: 0,
            out: Generation {
                canvas: canvas.clone(),
                forward_passes: 0,
                step_ms: Vec::new(),
                schedule: Vec::new(),
                confidence: vec![0.0; span],
                kv_bytes: 0,
                unfilled: 0,
                seconds: 0.0,
            },
            canvas,
            started: Instant::now(),
        }
    }

    fn block_range(&self) -> Range<usize> {
        let start = self.canvas.span.start + self.block * self.cfg.block_length;
        start..start + self.cfg.block_length
    }

    fn masked(&self, range: Range<usize>) -> Vec<usize> {
        range
            .filter(|&i| self.canvas.tokens[i] == self.mask)
            .collect()
    }

    fn llada_style(&self) -> bool {
        self.cfg.sampler.is_llada_style()
    }

    /// Decoding by a quota per step (not by threshold or factor).
    fn quota(&self) -> bool {
        self.cfg.threshold.is_none() && self.cfg.factor.is_none()
    }

    /// Steps this block gets: the schedule's length (dllm drops steps that commit nothing).
    fn block_steps(&self) -> usize {
        match self.schedule {
            Schedule::Llada => self.per_block,
            Schedule::Dllm => self.counts.len(),
        }
    }

    fn next_block(&mut self) {
        self.block += 1;
        self.phase = Phase::Start;
        self.cache = None;
    }

    /// The row of a pass fed `window` whose output predicts canvas position `p`: row p−1 with
    /// a logit shift, except at the window's first row, which reads itself (as the reference
    /// does at position 0).
    fn row(&self, window: &Range<usize>, p: usize) -> usize {
        p.saturating_sub(self.shift).max(window.start) - window.start
    }

    fn feed(&self, window: Range<usize>, positions: Vec<usize>, cached: bool) -> Feed {
        let rows = positions.iter().map(|&p| self.row(&window, p)).collect();
        Feed::new(window, positions, rows, cached, false, Visibility::All)
    }

    /// What the next pass must be fed, or `None` when the canvas is done. Steps that need no
    /// pass (a quota of zero on a full block) are recorded here.
    pub fn plan(&mut self, observe: &mut dyn FnMut(&StepEvent)) -> Option<Feed> {
        let whole = 0..self.canvas.tokens.len();
        loop {
            if self.block >= self.blocks {
                return None;
            }
            let block = self.block_range();
            match self.phase {
                Phase::Start => {
                    let masked = self.masked(block.clone());
                    self.counts = match self.schedule {
                        Schedule::Llada => llada_transfer_counts(masked.len(), self.per_block),
                        Schedule::Dllm => dllm_transfer_counts(masked.len(), self.per_block),
                    };
                    self.i = 0;
                    if self.cfg.cache == CacheMode::None {
                        self.phase = Phase::Plain;
                        continue;
                    }
                    if masked.is_empty() {
                        self.next_block();
                        continue;
                    }
                    let mut feed = if self.llada_style() {
                        // Masks left before the block by a capped dual-cache block stay eligible.
                        let eligible = self.masked(self.canvas.span.start..block.end);
                        self.feed(whole, eligible, false)
                    } else {
                        let mut f = self.feed(whole, vec![block.start], false);
                        f.first_only = true;
                        f
                    };
                    feed.keep = true;
                    return Some(feed);
                }
                Phase::Plain => {
                    let positions = self.masked(block.clone());
                    let done = if self.quota() {
                        self.i >= self.block_steps()
                    } else {
                        positions.is_empty()
                    };
                    if done {
                        self.next_block();
                        continue;
                    }
                    if positions.is_empty() {
                        self.record(Vec::new(), 0.0, observe);
                        continue;
                    }
                    return Some(self.feed(whole, positions, false));
                }
                Phase::Cached => {
                    let positions = self.masked(block.clone());
                    let capped = match self.llada_style() {
                        // generate_with_dual_cache runs at most steps-per-block passes a block.
                        true => self.cfg.cache == CacheMode::Dual && self.i >= self.block_steps(),
                        // Dream's block loop stops its schedule at steps-per-block.
                        false => self.quota() && self.i >= self.block_steps(),
                    };
                    if positions.is_empty() || capped {
                        self.next_block();
                        continue;
                    }
                    let start = self.window_start(&block);
                    let end = match self.cfg.cache {
                        CacheMode::Dual => block.end,
                        _ => self.canvas.tokens.len(),
                    };
                    return Some(self.feed(start..end, positions, true));
                }
            }
        }
    }

    /// Where cached steps' windows start. A LLaDA-style sampler on a shifted model needs the
    /// output of the position before the block, so it is fed too. Dream's block loop feeds
    /// from the block itself: its full pass has already committed the block's first token,
    /// the one position whose predictor lies outside.
    fn window_start(&self, block: &Range<usize>) -> usize {
        match self.llada_style() {
            true => block.start.saturating_sub(self.shift),
            false => block.start,
        }
    }

    /// The segment for a planned feed.
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

    /// Commit what the sampler picks from the pass's logits for `feed.positions` (one row
    /// each, EOS policy applied), and keep the cache a block's first pass returned.
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
        for row in &mut rows {
            row.apply_eos(self.eos, self.cfg.eos);
        }
        let candidates: Vec<Candidate> = rows.iter().map(|row| self.candidate(row)).collect();
        let picks = if feed.first_only {
            vec![0]
        } else {
            self.picks(&candidates)
        };
        let chosen: Vec<(usize, Candidate)> = picks
            .into_iter()
            .map(|j| (feed.positions[j], candidates[j]))
            .collect();
        if let Some(full) = kept {
            let block = self.block_range();
            let cache = match self.cfg.cache {
                CacheMode::Prefix => full.prefix(self.window_start(&block))?,
                _ => full,
            };
            self.out.kv_bytes = self.out.kv_bytes.max(cache.bytes());
            self.cache = Some(cache);
            self.phase = Phase::Cached;
        }
        let ms = pass_ms + started.elapsed().as_secs_f64() * 1e3;
        self.record(chosen, ms, observe);
        Ok(())
    }

    fn candidate(&mut self, row: &Scores) -> Candidate {
        let cfg = self.cfg;
        if cfg.sampler.is_llada_style() {
            row.llada(
                cfg.sampling.temperature,
                cfg.sampler,
                self.mask,
                &mut self.rng,
            )
        } else {
            row.dream(cfg.sampling, cfg.sampler, self.mask, &mut self.rng)
        }
    }

    /// Which candidates this step commits.
    fn picks(&mut self, candidates: &[Candidate]) -> Vec<usize> {
        if let Some(tau) = self.cfg.threshold {
            return by_threshold(candidates, tau);
        }
        if let Some(f) = self.cfg.factor {
            return by_factor(candidates, f);
        }
        let i = self.i;
        let last = i + 1 >= self.per_block;
        let n = candidates.len();
        match self.cfg.sampler {
            SamplerKind::LowConfidence | SamplerKind::Random => {
                let k = self.counts.get(i).copied().unwrap_or(n);
                top_k(candidates, k.min(n))
            }
            SamplerKind::Origin => {
                let p = if last {
                    1.0
                } else {
                    1.0 - self.times[i + 1] / self.times[i]
                };
                (0..n).filter(|_| self.rng.random::<f64>() < p).collect()
            }
            _ => {
                let k = if last {
                    n
                } else {
                    (n as f64 * (1.0 - self.times[i + 1] / self.times[i])) as usize
                };
                match self.cfg.alg_temp.filter(|t| *t > 0.0) {
                    Some(t) => sample_without_replacement(candidates, k, t, &mut self.rng),
                    None => top_k(candidates, k),
                }
            }
        }
    }

    fn record(
        &mut self,
        chosen: Vec<(usize, Candidate)>,
        ms: f64,
        observe: &mut dyn FnMut(&StepEvent),
    ) {
        let span_start = self.canvas.span.start;
        for (pos, c) in &chosen {
            self.canvas.tokens[*pos] = c.token;
            self.out.confidence[pos - span_start] = c.confidence;
        }
        self.out.step_ms.push(ms);
        self.out.schedule.push(chosen.len() as u32);
        self.step += 1;
        self.i += 1;
        let masked_left = self.masked(self.canvas.span.clone()).len();
        observe(&StepEvent {
            step: self.step,
            block: self.block,
            committed: chosen.len(),
            masked_left,
            canvas: &self.canvas,
        });
    }

    pub fn finish(mut self) -> Generation {
        self.out.unfilled = self.masked(self.canvas.span.clone()).len();
        self.out.canvas = self.canvas;
        self.out.seconds = self.started.elapsed().as_secs_f64();
        self.out
    }
}
