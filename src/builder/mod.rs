//! The Builder: writes one edit unit with the diffusion model, and repairs what the gate
//! rejects.
//!
//! **Infill** is the mode for base checkpoints: the unit's body lines are replaced by a span of
//! masks between the file's text before and after them (and the compressed context ahead of
//! it all), and the model fills the span. The span is longer than the body it will hold; the
//! bundled model learned to end a body with `<|pad|>`, LLaDA and Dream checkpoints end with
//! their EOS token, and everything from the first such token on is discarded.
//!
//! **Repair** is diffusion-native self-healing: the tokens that overlap the gate's error spans,
//! plus a margin, are masked again and denoised with every other token of the canvas fixed.
//! See `heal` for the loop that alternates repair and regeneration.

pub mod heal;
mod instruct;

use std::cell::RefCell;
use std::ops::Range;

use crate::diffusion::{
    generate, generate_batch, Canvas, GenerateConfig, GenerateError, Generation,
};
use crate::diffusion::{tokenizer::TokenizerError, DiffusionLm};
use crate::engine::remote::{Answer, RemoteError, RemoteGenerator};
use crate::engine::Engine;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("lines {start}-{end}: outside the file ({lines} lines)")]
    Lines {
        start: usize,
        end: usize,
        lines: usize,
    },
    #[error("span of {span} tokens does not fit the model's {max} positions")]
    SpanTooLong { span: usize, max: usize },
    #[error("rendering the chat template")]
    Template(#[from] minijinja::Error),
    /// The judge could not give a verdict (its caller keeps the reason).
    #[error("judging the draft failed")]
    Judge,
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// The bodies the bundled model was trained on fill spans of these lengths; other lengths work
/// but are less familiar to it.
pub const SPAN_BUCKETS: [usize; 4] = [32, 64, 128, 256];

/// How many tokens before and after a span fit in `window`: the text farthest from the span is
/// cut first, and what precedes the span keeps at least half the window when it has that much.
pub fn fit_window(before: usize, after: usize, window: usize) -> (usize, usize) {
    let n_before = before.min((window / 2).max(window.saturating_sub(after)));
    (n_before, after.min(window - n_before))
}

/// The smallest bucket that holds `tokens` (the largest bucket if none does).
pub fn span_for(tokens: usize) -> usize {
    SPAN_BUCKETS
        .iter()
        .copied()
        .find(|&b| b >= tokens)
        .unwrap_or(SPAN_BUCKETS[SPAN_BUCKETS.len() - 1])
}

/// One written unit: the file around it, the canvas it came from, and the body as text.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The file's text before and after the replaced lines.
    pub prefix: String,
    pub suffix: String,
    pub canvas: Canvas,
    /// The body: the span's tokens up to the first end marker, decoded, ending in a newline.
    pub body: String,
    /// Canvas position and byte range in `body` of each token the body is made of.
    pieces: Vec<(usize, Range<usize>)>,
    pub generation: Generation,
    pub shape: Shape,
    /// Why the output cannot be used at all (instruct: no code for the unit in the answer).
    pub problem: Option<String>,
}

/// What the span holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// The body itself, between the file's text.
    Infill,
    /// A chat answer with the unit's whole new code, re-indented by `indent`; it must define
    /// `name`.
    Instruct { name: String, indent: String },
}

impl Draft {
    /// The whole file with this body in place.
    pub fn patched(&self) -> String {
        format!("{}{}{}", self.prefix, self.body, self.suffix)
    }

    /// Tokens of the body (end markers and what follows them excluded).
    pub fn body_tokens(&self) -> Vec<u32> {
        self.pieces
            .iter()
            .map(|(p, _)| self.canvas.tokens[*p])
            .collect()
    }
}

pub struct Builder<'m> {
    pub model: &'m DiffusionLm,
    /// Where canvases are denoised when not here (`--generator remote`).
    remote: Option<&'m RemoteGenerator>,
    /// Tokens that end a body: the pad token if the tokenizer has one, and the model's EOS.
    end_ids: Vec<u32>,
    /// Generations made ahead in one batch ([`Builder::prefetch`]), each used by the first
    /// request for exactly its canvas and settings.
    prefetched: RefCell<Vec<(Canvas, GenerateConfig, Generation)>>,
    /// Requests answered from `prefetched`.
    prefetch_hits: std::cell::Cell<usize>,
}

/// A canvas ready to denoise, and what to make of what comes out.
pub struct Pending {
    pub canvas: Canvas,
    pub cfg: GenerateConfig,
    prefix: String,
    suffix: String,
    shape: Shape,
    /// The same canvas as text, for a remote generator.
    wire: Wire,
}

/// What a remote generator is sent for a canvas.
enum Wire {
    /// `/v1/completions`: the text before the span and after it.
    Infill { prompt: String, suffix: String },
    /// `/v1/chat/completions`: the user's turn.
    Chat { user: String },
}

/// An instruct prompt: rendered with the chat template for the canvas, and the user's turn
/// alone for a server that renders it itself.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub rendered: String,
    pub user: String,
}

impl<'m> Builder<'m> {
    pub fn new(model: &'m DiffusionLm) -> Builder<'m> {
        let mut end_ids = model.eos_ids.clone();
        for t in ["<|pad|>", "<pad>", "[PAD]"] {
            if let Some(id) = model.codec.token_id(t) {
                end_ids.push(id);
            }
        }
        Builder {
            model,
            remote: None,
            end_ids,
            prefetched: RefCell::new(Vec::new()),
            prefetch_hits: std::cell::Cell::new(0),
        }
    }

    /// A builder for `engine`'s generator, in-process or remote.
    pub fn for_engine(engine: &'m Engine) -> Builder<'m> {
        Builder {
            remote: engine.remote.as_ref(),
            ..Builder::new(&engine.model)
        }
    }

    /// Whether gate errors can be repaired by re-masking (a remote server other than
    /// `ouroboros serve` has no denoise endpoint: failures are regenerated instead).
    pub fn can_repair(&self) -> bool {
        self.remote.is_none_or(|r| r.native)
    }

    /// The tokens that end a body.
    pub fn end_ids(&self) -> &[u32] {
        &self.end_ids
    }

    /// The canvas that replaces lines `lines` (1-based, inclusive) of `source` with `span`
    /// masks to denoise. `context` (rendered context items, possibly empty) goes ahead of the file's text. When
    /// the canvas would not fit, the text farthest from the span is cut first, keeping at least
    /// half the window for what precedes the span when there is that much of it.
    pub fn plan_infill(
        &self,
        source: &str,
        lines: (usize, usize),
        context: &str,
        span: usize,
        cfg: &GenerateConfig,
    ) -> Result<Pending, BuildError> {
        let (prefix, _, suffix) = self.around(source, lines, span)?;
        let codec = &self.model.codec;
        // One string, as a server tokenizes the prompt it is sent.
        let prompt = format!("{context}{prefix}");
        let before = codec.encode(&prompt)?;
        let after = codec.encode(&suffix)?;
        let (n_before, n_after) =
            fit_window(before.len(), after.len(), self.model.max_positions() - span);
        let canvas = Canvas::for_infill(
            &before[before.len() - n_before..],
            span,
            &after[..n_after],
            self.model.mask_id,
        );
        Ok(Pending {
            canvas,
            cfg: span_config(cfg, span, span),
            wire: Wire::Infill {
                prompt,
                suffix: suffix.clone(),
            },
            prefix,
            suffix,
            shape: Shape::Infill,
        })
    }

    /// The canvas that rewrites the whole unit on lines `lines` (signature included) from a chat
    /// `prompt` (already rendered with the checkpoint's template): the prompt and `span` masks
    /// for the answer, from which the first fenced code block is taken.
    pub fn plan_instruct(
        &self,
        prompt: &Prompt,
        source: &str,
        lines: (usize, usize),
        name: &str,
        span: usize,
        cfg: &GenerateConfig,
    ) -> Result<Pending, BuildError> {
        let (prefix, unit, suffix) = self.around(source, lines, span)?;
        let max = self.model.max_positions();
        let ids = self.model.codec.encode(&prompt.rendered)?;
        // A prompt too long for the window loses its beginning (the system text and the
        // context's farthest items), never the request at its end.
        let keep = ids.len().min(max - span);
        let canvas = Canvas::for_prompt(&ids[ids.len() - keep..], span, self.model.mask_id);
        let indent: String = unit
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        Ok(Pending {
            canvas,
            cfg: span_config(cfg, span, span),
            wire: Wire::Chat {
                user: prompt.user.clone(),
            },
            prefix,
            suffix,
            shape: Shape::Instruct {
                name: name.to_string(),
                indent,
            },
        })
    }

    /// [`Builder::plan_infill`], denoised.
    pub fn infill(
        &self,
        source: &str,
        lines: (usize, usize),
        context: &str,
        span: usize,
        cfg: &GenerateConfig,
    ) -> Result<Draft, BuildError> {
        self.complete(self.plan_infill(source, lines, context, span, cfg)?)
    }

    /// Denoise a pending canvas into a draft.
    pub fn complete(&self, pending: Pending) -> Result<Draft, BuildError> {
        let generation = match self.remote {
            Some(r) => self.ask(r, &pending)?,
            None => self.denoise(pending.canvas, &pending.cfg)?,
        };
        Ok(self.draft(pending.prefix, pending.suffix, generation, pending.shape))
    }

    /// A remote generator's answer for `p`, as a generation over the planned canvas: the one
    /// the server denoised, or (a server that answers in text) the answer's tokens in the
    /// span's place.
    fn ask(&self, remote: &RemoteGenerator, p: &Pending) -> Result<Generation, BuildError> {
        let answer = match &p.wire {
            Wire::Infill { prompt, suffix } => remote.infill(prompt, suffix, &p.canvas, &p.cfg)?,
            Wire::Chat { user } => remote.chat(user, &p.canvas, &p.cfg)?,
        };
        let (text, seconds) = match answer {
            Answer::Denoised(g) => return Ok(g),
            Answer::Text { text, seconds } => (text, seconds),
        };
        let ids = self.model.codec.encode(&text)?;
        let span = &p.canvas.span;
        let mut tokens = p.canvas.tokens[..span.start].to_vec();
        tokens.extend(&ids);
        tokens.extend(&p.canvas.tokens[span.end..]);
        Ok(Generation {
            canvas: Canvas {
                tokens,
                span: span.start..span.start + ids.len(),
            },
            forward_passes: 0,
            step_ms: Vec::new(),
            schedule: Vec::new(),
            confidence: Vec::new(),
            kv_bytes: 0,
            unfilled: 0,
            seconds,
        })
    }

    /// Denoise several canvases in one batch now and keep what comes out for the requests that
    /// ask for the same canvases later. A batch gives every canvas what it would get alone, so
    /// nothing but the time changes.
    pub fn prefetch(&self, jobs: Vec<(Canvas, GenerateConfig)>) -> Result<(), BuildError> {
        // A server batches the requests that reach it together; one client asks in turn.
        if jobs.len() < 2 || self.remote.is_some() {
            return Ok(());
        }
        // Keyed by the canvas as asked for: a generation holds it denoised.
        let keys: Vec<(Canvas, GenerateConfig)> = jobs.clone();
        let generations = generate_batch(self.model, jobs, |_, _| {})?;
        let mut store = self.prefetched.borrow_mut();
        for ((canvas, cfg), generation) in keys.into_iter().zip(generations) {
            store.push((canvas, cfg, generation));
        }
        Ok(())
    }

    /// How many requests so far were answered by a prefetched generation.
    pub fn prefetch_hits(&self) -> usize {
        self.prefetch_hits.get()
    }

    /// Drop prefetched generations no request asked for.
    pub fn clear_prefetched(&self) {
        self.prefetched.borrow_mut().clear();
    }

    fn denoise(&self, canvas: Canvas, cfg: &GenerateConfig) -> Result<Generation, BuildError> {
        let mut store = self.prefetched.borrow_mut();
        if let Some(i) = store.iter().position(|(c, k, _)| *c == canvas && k == cfg) {
            self.prefetch_hits.set(self.prefetch_hits.get() + 1);
            return Ok(store.swap_remove(i).2);
        }
        drop(store);
        Ok(generate(self.model, canvas, cfg, |_| {})?)
    }

    /// The text before, on and after `lines` (1-based, inclusive) of `source`, once both the
    /// lines and a span of `span` tokens are known to fit.
    fn around(
        &self,
        source: &str,
        (a, b): (usize, usize),
        span: usize,
    ) -> Result<(String, String, String), BuildError> {
        let all: Vec<&str> = source.split_inclusive('\n').collect();
        if a == 0 || b < a || b > all.len() {
            return Err(BuildError::Lines {
                start: a,
                end: b,
                lines: all.len(),
            });
        }
        let max = self.model.max_positions();
        if span >= max {
            return Err(BuildError::SpanTooLong { span, max });
        }
        Ok((
            all[..a - 1].concat(),
            all[a - 1..b].concat(),
            all[b..].concat(),
        ))
    }

    /// Mask again the body tokens that overlap `errors` (byte ranges in the patched file) with
    /// `margin` tokens either side, and denoise only those. Errors past the body's end (a block
    /// left open, say) also re-mask the body's last tokens and the end markers after them, so
    /// the body can grow.
    pub fn repair(
        &self,
        draft: &Draft,
        errors: &[Range<usize>],
        margin: usize,
        cfg: &GenerateConfig,
    ) -> Result<(Draft, usize), BuildError> {
        let start = draft.prefix.len();
        let end = start + draft.body.len();
        let n = draft.pieces.len();
        let mut hit = vec![false; n];
        let mut grow = false;
        for e in errors {
            // Where the damage is reported relative to the body, clamped into it.
            let lo = e.start.clamp(start, end) - start;
            let hi = e.end.max(e.start + 1).clamp(start, end) - start;
            if e.start >= end {
                grow = true;
            }
            for (i, (_, r)) in draft.pieces.iter().enumerate() {
                let overlaps = r.start < hi.max(lo + 1) && r.end > lo;
                let touches_end = lo == draft.body.len() && i + 1 == n;
                if overlaps || touches_end {
                    hit[i] = true;
                }
            }
        }
        let mut chosen: Vec<usize> = Vec::new();
        for i in 0..n {
            let near = (i.saturating_sub(margin)..=(i + margin).min(n.saturating_sub(1)))
                .any(|j| hit.get(j).copied().unwrap_or(false));
            if near {
                chosen.push(draft.pieces[i].0);
            }
        }
        let span = draft.canvas.span.clone();
        let body_end = draft.pieces.last().map_or(span.start, |(p, _)| p + 1);
        if grow || chosen.last().is_some_and(|&p| p + 1 == body_end) {
            chosen.extend(body_end..(body_end + margin.max(1)).min(span.end));
        }
        if chosen.is_empty() {
            // Nothing located inside the body: re-mask all of it.
            chosen.extend(span.clone());
        }
        let mut canvas = draft.canvas.clone();
        for &p in &chosen {
            canvas.tokens[p] = self.model.mask_id;
        }
        let cfg = span_config(cfg, span.len(), chosen.len());
        let generation = match self.remote {
            Some(r) => r.denoise(&canvas, self.model.mask_id, &cfg)?,
            None => self.denoise(canvas, &cfg)?,
        };
        Ok((
            self.draft(
                draft.prefix.clone(),
                draft.suffix.clone(),
                generation,
                draft.shape.clone(),
            ),
            chosen.len(),
        ))
    }

    fn draft(&self, prefix: String, suffix: String, generation: Generation, shape: Shape) -> Draft {
        let codec = &self.model.codec;
        let span = generation.canvas.span.clone();
        let tokens = &generation.canvas.tokens;
        let stop = span
            .clone()
            .find(|&p| self.end_ids.contains(&tokens[p]))
            .unwrap_or(span.end);
        let kept: Vec<u32> = tokens[span.start..stop].to_vec();
        // Byte ranges by decoding growing prefixes: byte-level BPE can split a character over
        // tokens, so decoding tokens one at a time would not add up.
        let mut offsets = Vec::with_capacity(kept.len());
        let mut prev = 0;
        for i in 0..kept.len() {
            let len = codec.decode(&kept[..=i], false).len();
            offsets.push(prev..len.max(prev));
            prev = len.max(prev);
        }
        let text = codec.decode(&kept, false);
        let (body, pieces, problem) = match &shape {
            Shape::Infill => {
                let mut body = text;
                if !body.is_empty() && !body.ends_with('\n') {
                    body.push('\n');
                }
                let pieces = offsets
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| (span.start + i, r))
                    .collect();
                (body, pieces, None)
            }
            Shape::Instruct { name, indent } => {
                let answer = instruct::Answer::parse(&text, indent);
                let problem = if answer.code.trim().is_empty() {
                    Some("the answer holds no code".to_string())
                } else if !instruct::defines(&answer.code, name) {
                    Some(format!("the answer does not define {name}"))
                } else {
                    None
                };
                let pieces = offsets
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, r)| answer.body_range(&r).map(|b| (span.start + i, b)))
                    .collect();
                (answer.code, pieces, problem)
            }
        };
        Draft {
            prefix,
            suffix,
            canvas: generation.canvas.clone(),
            body,
            pieces,
            generation,
            shape,
            problem,
        }
    }
}

/// The caller's sampling settings on a span of `span` tokens with `masked` of them to fill: the
/// caller's block length when it divides the span (else one block), and no more steps than
/// there are tokens to commit, rounded to whole steps per block.
fn span_config(cfg: &GenerateConfig, span: usize, masked: usize) -> GenerateConfig {
    let block = if cfg.block_length > 0 && span.is_multiple_of(cfg.block_length) {
        cfg.block_length
    } else {
        span
    };
    let blocks = span / block;
    let steps = cfg.steps.clamp(1, masked.max(1)).div_ceil(blocks) * blocks;
    GenerateConfig {
        gen_length: span,
        block_length: block,
        steps: steps.min(span),
        ..cfg.clone()
    }
}

#[cfg(test)]
mod tests;
