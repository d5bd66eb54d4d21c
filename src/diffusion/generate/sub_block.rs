//! Fast-dLLM v2's decoding loop (the `generate` of its checkpoints' `modeling.py`, which the
//! README, `run_chatbot.py` and the model card use), as a state machine the batch driver
//! advances one forward pass at a time, like [`super::block::BlockDecoder`]:
//!
//! - blocks of `block_length` positions are counted from canvas position 0, so the prompt's
//!   last partial block is decoded with the first generated tokens; the prompt's whole blocks
//!   are prefilled once (upstream only when the prompt is longer than a block; a prompt of
//!   exactly one block is prefilled here too, since otherwise the first block never sees it);
//! - each block is fed over the committed cache, nothing stored, and decoded in sub-blocks of
//!   `sub_block` positions, strictly left to right: per pass, every masked position of the
//!   current sub-block whose confidence is above the threshold (strictly; default 1, so none)
//!   is committed, and the most confident one always;
//! - logits are shifted: position i reads the output at i−1 (a block's first position, never
//!   masked, its own);
//! - a finished block is fed once more to store its keys and values, and that pass's last
//!   output is the next block's first token, committed at once (the arg-max, whatever the
//!   temperature);
//! - the block ends as soon as an end token stands with no mask before it; nothing after the
//!   first end token is kept (the span's rest becomes that token).
//!
//! With `--cache none` the passes feed the canvas from position 0 to the block's end under the
//! block-causal mask instead, which gives the same tokens. `--cache dual` is the reference's
//! approximate sub-block cache (`use_block_cache`): a pass over the whole block keeps its keys
//! and values whenever a sub-block starts on a mask (or the block has none kept yet); other
//! passes feed only the sub-block, overwrite its rows of those keys and values, and attend to
//! the committed cache and the whole kept block, stale rows included. Not bounded by `steps`: a
//! sub-block takes from one pass to as many as it has positions.

use std::ops::Range;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::decoder::Feed;
use super::scores::Scores;
use super::{CacheMode, Canvas, GenerateConfig, Generation, StepEvent};
use crate::diffusion::cache::{KvCache, Segment, Visibility};
use crate::diffusion::sampler::Candidate;

/// The sub-block length the reference defaults to (`small_block_size`).
pub const DEFAULT_SUB_BLOCK: usize = 8;

/// What the pass in flight is, when the phase alone does not say.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// The block over the committed cache (with `dual`, its keys and values kept).
    Block,
    /// `dual`: only the sub-block starting at this position, over the kept block.
    Part(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Next: the pass over the prompt's whole blocks (which also gives the first block's
    /// first token when the prompt ends on a block boundary).
    Prefill,
    Denoise,
    /// Next: the pass over the finished block that stores it and gives the next block's first
    /// token.
    Store,
    Done,
}

pub struct SubBlockDecoder<'c> {
    pub(super) cfg: &'c GenerateConfig,
    stop: &'c [u32],
    pub canvas: Canvas,
    mask: u32,
    size: usize,
    sub: usize,
    rng: ChaCha8Rng,
    block: usize,
    last: usize,
    /// The current sub-block, by index within the block.
    part: usize,
    phase: Phase,
    kind: Kind,
    cache: Option<KvCache>,
    /// `dual`: the committed cache followed by the current block's kept keys and values.
    block_kv: Option<KvCache>,
    step: usize,
    out: Generation,
    started: Instant,
}

impl<'c> SubBlockDecoder<'c> {
    pub fn new(
        mut canvas: Canvas,
        cfg: &'c GenerateConfig,
        model: &'c crate::diffusion::DiffusionLm,
    ) -> Self {
        let size = cfg.block_length.max(1);
        let sub = cfg.sub_block.unwrap_or(DEFAULT_SUB_BLOCK).clamp(1, size);
        if canvas.span.end == canvas.tokens.len() {
            let end = canvas.span.end.div_ceil(size) * size;
            canvas.tokens.resize(end, model.mask_id);
            canvas.span.end = end;
        }
        let span = canvas.span.clone();
        SubBlockDecoder {
            cfg,
            stop: &model.eos_ids,
            mask: model.mask_id,
            size,
            sub,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            block: span.start / size,
            last: span.end.saturating_sub(1) / size,
            part: 0,
            phase: Phase::Prefill,
            kind: Kind::Block,
            cache: None,
            block_kv: None,
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
        }
    }

    fn cached(&self) -> bool {
        self.cfg.cache != CacheMode::None
    }

    fn causal(&self) -> Visibility {
        Visibility::BlockCausal {
            size: self.size,
            phase: 0,
        }
    }

    fn range(&self) -> Range<usize> {
        let start = self.block * self.size;
        start..((self.block + 1) * self.size).min(self.canvas.tokens.len())
    }

    /// Where the stop rule starts reading in the current block: after the prompt, and after
    /// the first token the previous block gave it.
    fn from(&self) -> usize {
        let start = self.range().start;
        match start < self.canvas.span.start {
            true => self.canvas.span.start,
            false => start + 1,
        }
    }

    fn is_mask(&self, p: usize) -> bool {
        self.canvas.span.contains(&p) && self.canvas.tokens[p] == self.mask
    }

    /// The first end token at or after `from` (up to `to`) with no mask before it.
    fn stopped(&self, from: usize, to: usize) -> bool {
        let first = (from..to).find(|&p| self.stop.contains(&self.canvas.tokens[p]));
        first.is_some_and(|f| !(from..f).any(|p| self.is_mask(p)))
    }

    /// End the canvas: everything in the span after the first end token becomes that token.
    fn close(&mut self) {
        self.phase = Phase::Done;
        let span = self.canvas.span.clone();
        let tokens = &mut self.canvas.tokens;
        if let Some(f) = span.clone().find(|&p| self.stop.contains(&tokens[p])) {
            let t = tokens[f];
            tokens[f + 1..span.end].iter_mut().for_each(|x| *x = t);
        }
    }

    /// A pass over `range` (over the cache, or from position 0 under the mask) deciding about
    /// `positions`, each read from the output one before it.
    fn feed(&self, range: Range<usize>, positions: Vec<usize>, keep: bool) -> Feed {
        let (window, cached, visibility) = match self.cached() {
            true => (range, true, Visibility::All),
            false => (0..range.end, false, self.causal()),
        };
        let rows = positions
            .iter()
            .map(|&p| (p - window.start).saturating_sub(1))
            .collect();
        Feed::new(window, positions, rows, cached, keep && cached, visibility)
    }

    /// What the next pass must be fed, or `None` when the canvas is done.
    pub fn plan(&mut self) -> Option<Feed> {
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Prefill => {
                    let start = self.range().start;
                    let span = self.canvas.span.start;
                    // The prompt ends on a block boundary: its last output is the first token.
                    let lead: Vec<usize> = match start == span && start > 0 && self.is_mask(span) {
                        true => vec![span],
                        false => Vec::new(),
                    };
                    if start == 0 || (lead.is_empty() && !self.cached()) {
                        self.phase = Phase::Denoise;
                        continue;
                    }
                    let rows = lead.iter().map(|p| p - 1).collect();
                    let keep = self.cached();
                    return Some(Feed::new(0..start, lead, rows, false, keep, self.causal()));
                }
                Phase::Denoise => {
                    let range = self.range();
                    if self.stopped(self.from(), range.end) {
                        self.close();
                        continue;
                    }
                    let parts = self.size.div_ceil(self.sub);
                    while self.part < parts {
                        let s = range.start + self.part * self.sub;
                        let part = s..(s + self.sub).min(range.end);
                        let masked: Vec<usize> =
                            part.clone().filter(|&p| self.is_mask(p)).collect();
                        if masked.is_empty() {
                            self.part += 1;
                            continue;
                        }
                        let dual = self.cfg.cache == CacheMode::Dual;
                        if dual && self.block_kv.is_some() && !self.is_mask(s) {
                            self.kind = Kind::Part(s);
                            // Logits shift inside the sub-block: its first row reads itself.
                            let rows = masked.iter().map(|&p| (p - s).saturating_sub(1)).collect();
                            return Some(Feed::new(
                                part,
                                masked,
                                rows,
                                true,
                                true,
                                Visibility::All,
                            ));
                        }
                        self.kind = Kind::Block;
                        return Some(self.feed(range, masked, dual));
                    }
                    match self.block >= self.last {
                        true => self.close(),
                        false => self.phase = Phase::Store,
                    }
                }
                Phase::Store => {
                    let range = self.range();
                    let next = vec![range.end].into_iter().filter(|&p| self.is_mask(p));
                    return Some(self.feed(range, next.collect(), true));
                }
            }
        }
    }

    pub fn segment<'a>(&'a self, feed: &Feed) -> Segment<'a> {
        Segment {
            ids: &self.canvas.tokens[feed.window.clone()],
            offset: feed.window.start,
            cache: match (feed.cached, self.kind) {
                (false, _) => None,
                (true, Kind::Part(_)) if self.phase == Phase::Denoise => self.block_kv.as_ref(),
                (true, _) => self.cache.as_ref(),
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
        for row in &mut rows {
            row.apply_eos(self.stop, self.cfg.eos);
        }
        match self.phase {
            Phase::Prefill | Phase::Store => {
                if let Some(fresh) = kept {
                    self.cache = Some(KvCache::after(self.cache.as_ref(), fresh)?);
                    let bytes = self.cache.as_ref().map_or(0, KvCache::bytes);
                    self.out.kv_bytes = self.out.kv_bytes.max(bytes);
                }
                self.lead(feed, &rows);
                if self.phase == Phase::Store {
                    self.block += 1;
                    self.part = 0;
                    self.block_kv = None;
                }
                self.phase = Phase::Denoise;
                // A first token that ends the text ends the canvas.
                let span = self.canvas.span.clone();
                let upto = self.range().start.max(span.start) + 1;
                if self.stopped(span.start, upto.min(span.end)) {
                    self.close();
                }
                return Ok(());
            }
            Phase::Denoise | Phase::Done => {}
        }
        if let Some(fresh) = kept {
            self.block_kv = Some(match (self.kind, self.block_kv.take()) {
                (Kind::Part(at), Some(held)) => spliced(&held, at, &fresh)?,
                _ => KvCache::after(self.cache.as_ref(), fresh)?,
            });
            let bytes = self.block_kv.as_ref().map_or(0, KvCache::bytes);
            self.out.kv_bytes = self.out.kv_bytes.max(bytes);
        }
        let candidates: Vec<Candidate> = rows
            .iter()
            .map(|r| r.sdar(self.cfg.sampling, self.mask, &mut self.rng))
            .collect();
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
        observe(&StepEvent {
            step: self.step,
            block: self.block,
            committed: picks.len(),
            masked_left: self
                .canvas
                .span
                .clone()
                .filter(|&p| self.is_mask(p))
                .count(),
            canvas: &self.canvas,
        });
        Ok(())
    }

    /// Commit the pass's first-token prediction, if it made one: always the arg-max.
    fn lead(&mut self, feed: &Feed, rows: &[Scores]) {
        if let (Some(&p), Some(row)) = (feed.positions.first(), rows.first()) {
            let c = row.greedy(self.mask, &mut self.rng);
            self.canvas.tokens[p] = c.token;
            self.out.confidence[p - self.canvas.span.start] = c.confidence;
        }
    }

    /// Every candidate above the threshold, and the most confident one (the first on a tie).
    fn picks(&self, candidates: &[Candidate]) -> Vec<usize> {
        let tau = self.cfg.threshold.unwrap_or(1.0);
        let best = (0..candidates.len())
            .reduce(
                |a, b| match candidates[b].confidence > candidates[a].confidence {
                    true => b,
                    false => a,
                },
            )
            .unwrap_or(0);
        (0..candidates.len())
            .filter(|&j| j == best || candidates[j].confidence > tau)
            .collect()
    }

    pub fn finish(mut self) -> Generation {
        self.out.unfilled = self
            .canvas
            .span
            .clone()
            .filter(|&p| self.is_mask(p))
            .count();
        self.out.canvas = self.canvas;
        self.out.seconds = self.started.elapsed().as_secs_f64();
        self.out
    }
}

/// `held` with the rows from `at` on replaced by `fresh`'s, layer by layer.
fn spliced(held: &KvCache, at: usize, fresh: &KvCache) -> candle_core::Result<KvCache> {
    let layers = (0..held.layers.len())
        .map(|l| held.around(l, at, &fresh.layers[l]))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(KvCache { layers })
}
