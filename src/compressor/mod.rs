//! The Compressor: fits each edit unit's context into the generator's token budget, keeping what
//! matters most.
//!
//! The reasoner names the context a unit needs (definitions it uses, callers' signatures) with
//! graph priorities. Here each item gets up to three forms: its whole code, its head with only
//! the body blocks most related to the unit (`blocks`, LongCodeZip's block level), and its
//! signature (with the first docstring line, in the manner of Aider's repo map); and a value for
//! each form:
//! - `model`: the diffusion model's own masked-token loss gain on the unit (see `score`), cached
//!   per content hash;
//! - `graph`: the planner's priority, no model;
//! - `signatures`: signatures only, by priority (the repo-map baseline).
//!
//! A multiple-choice knapsack then picks one form or nothing per item within the budget. The
//! unit's own code is not a context item, so it is never cut.

mod blocks;
pub mod cache;
pub mod causal;
mod knapsack;
mod score;
mod scorers;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;

pub use cache::ScoreCache;
pub use causal::{CausalLm, CausalScorer};
pub use score::{masked_loss, DiffusionScorer};
pub use scorers::{check_flags, ScorerSet};

use crate::diffusion::model::ModelError;
use crate::diffusion::tokenizer::{TextCodec, TokenizerError};
use crate::reasoner::{ContextItem, ContextRole, EditUnit};
use knapsack::Choice;

#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{start}-{end}: the file has only {lines} lines now; re-index and plan again")]
    Stale {
        file: String,
        start: usize,
        end: usize,
        lines: usize,
    },
    #[error("scoring model: {0}")]
    Model(#[from] ModelError),
    #[error("scoring model: {0}")]
    Remote(#[from] crate::engine::remote::RemoteError),
    #[error("scoring model: {0}")]
    Compute(#[from] candle_core::Error),
    #[error("score cache {path}")]
    Cache {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("--scorer {0} needs a scoring model")]
    NoScorer(Strategy),
    #[error("--scorer causal needs --scorer-model DIR (a Qwen2 checkpoint)")]
    NoCausalModel,
    #[error("--scorer-model is only read with --scorer causal")]
    UnusedScorerModel,
    #[error("--budget {budget}: {unit} alone is {tokens} tokens, and the generator's window of {window} cannot hold it twice (the original and its rewrite); the unit is never cut")]
    UnitOverWindow {
        budget: usize,
        unit: String,
        tokens: usize,
        window: usize,
    },
    #[error("--budget {budget}: {unit} is {tokens} tokens and the generator's window is {window}, which leaves at most {room} tokens of context")]
    BudgetOverWindow {
        budget: usize,
        unit: String,
        tokens: usize,
        window: usize,
        room: usize,
    },
    #[error("scoring checkpoint {dir}: {what}")]
    Checkpoint {
        dir: String,
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The diffusion model's masked-token loss gain.
    Model,
    /// A causal LM's perplexity gain (`--scorer-model DIR`, a Qwen2 checkpoint).
    Causal,
    Graph,
    Signatures,
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "model" => Ok(Strategy::Model),
            "causal" => Ok(Strategy::Causal),
            "graph" => Ok(Strategy::Graph),
            "signatures" => Ok(Strategy::Signatures),
            other => Err(format!(
                "--scorer {other}: expected model, causal, graph or signatures"
            )),
        }
    }
}

impl Strategy {
    /// Whether a model scores the items (the others need none).
    pub fn scored(self) -> bool {
        matches!(self, Strategy::Model | Strategy::Causal)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Model => "model",
            Strategy::Causal => "causal",
            Strategy::Graph => "graph",
            Strategy::Signatures => "signatures",
        })
    }
}

/// What scored the context, for provenance.
#[derive(Debug, Clone, Serialize)]
pub struct ScorerInfo {
    pub method: String,
    pub model: String,
    pub weights_sha256: String,
    pub device: String,
    pub dtype: String,
}

pub trait Scorer {
    fn info(&self) -> ScorerInfo;
    fn forward_passes(&self) -> usize;
    /// For each context text, how much it helps the model with the unit's code (higher is more).
    fn gains(&mut self, unit_code: &str, contexts: &[&str]) -> Result<Vec<f64>, CompressError>;
}

/// A context item with its two renderings, ready to be costed and scored.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub item: ContextItem,
    pub full: String,
    /// `None` when the signature form would be no shorter than the whole item.
    pub signature: Option<String>,
    /// The head and the most relevant body blocks; `None` for callers and for items too short
    /// to cut.
    pub blocks: Option<String>,
}

/// The forms an item can take, in the order of the gains array.
const FORMS: [Form; 3] = [Form::Full, Form::Signature, Form::Blocks];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Full,
    Signature,
    Blocks,
    Dropped,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptItem {
    pub symbol: String,
    pub file: String,
    pub lines: (usize, usize),
    pub role: ContextRole,
    pub form: Form,
    /// Tokens this item takes in the context as kept (0 when dropped).
    pub tokens: usize,
    pub full_tokens: usize,
    pub priority: f64,
    /// Model scoring: the loss gain of the whole item and of its signature (nats per token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gain_full: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gain_signature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gain_blocks: Option<f64>,
}

/// One unit's compressed context and the figures provenance records.
#[derive(Debug, Clone, Serialize)]
pub struct CompressedContext {
    pub unit: String,
    pub strategy: Strategy,
    pub budget: usize,
    /// Every item whole, counted item by item with the generator's tokenizer.
    pub tokens_before: usize,
    pub tokens_after: usize,
    /// after / before (1.0 when there was no context at all).
    pub compression_ratio: f64,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scorer: Option<ScorerInfo>,
    pub forward_passes: usize,
    pub cache_hits: usize,
    pub items: Vec<KeptItem>,
    /// The kept items rendered in priority order, ready to precede the unit in a canvas.
    #[serde(skip)]
    pub text: String,
}

/// The budget `plan` and `refactor` use when none is given: the model's window less room for the
/// unit twice (the original in the prompt and the rewritten one on the canvas) and a margin.
pub fn default_budget(max_positions: usize, unit_tokens: usize) -> usize {
    max_positions.saturating_sub(2 * unit_tokens + 16)
}

/// Spare capacity in the knapsack's tie-break: among items the model finds equally (un)helpful,
/// the planner's priority decides, and spare budget is spent in priority order.
const PRIORITY_TIE_BREAK: f64 = 1e-3;

/// Source files read once per compression run.
#[derive(Default)]
pub struct Sources {
    files: HashMap<String, String>,
}

impl Sources {
    /// Use `text` for `file` instead of reading it (replay runs on recorded contents).
    pub fn preload(&mut self, file: &str, text: &str) {
        self.files.insert(file.to_string(), text.to_string());
    }

    /// A file's text, once `gather` (or `preload`) has read it.
    pub fn text(&self, file: &str) -> Option<&str> {
        self.files.get(file).map(String::as_str)
    }

    fn lines(
        &mut self,
        root: &Path,
        file: &str,
        span: (usize, usize),
    ) -> Result<String, CompressError> {
        if !self.files.contains_key(file) {
            let text =
                std::fs::read_to_string(root.join(file)).map_err(|source| CompressError::Read {
                    file: file.to_string(),
                    source,
                })?;
            self.files.insert(file.to_string(), text);
        }
        let text = &self.files[file];
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let (a, b) = span;
        if a == 0 || b < a || b > lines.len() {
            return Err(CompressError::Stale {
                file: file.to_string(),
                start: a,
                end: b,
                lines: lines.len(),
            });
        }
        Ok(lines[a - 1..b].concat())
    }

    /// The unit's code and its context candidates, read from the working tree under `root`.
    pub fn gather(
        &mut self,
        root: &Path,
        unit: &EditUnit,
    ) -> Result<(String, Vec<Candidate>), CompressError> {
        let code = self.lines(root, &unit.file, unit.lines)?;
        let comment = comment_prefix(&unit.file);
        let mut out = Vec::new();
        let simple = unit
            .symbol
            .rsplit(['.', ':'])
            .next()
            .unwrap_or(&unit.symbol);
        for item in &unit.context_items {
            let mut body = self.lines(root, &item.file, item.lines)?;
            if item.role == ContextRole::CallerSignature {
                // What a caller shows about the unit is how it calls it: its head and the lines
                // that mention the unit, not its whole body.
                body = call_sites(&body, simple);
            }
            let code_text = dedent(&body);
            let full = format!(
                "{comment} {}:{}-{} {}\n{}{}",
                item.file,
                item.lines.0,
                item.lines.1,
                item.symbol,
                code_text,
                if body.ends_with('\n') { "" } else { "\n" }
            );
            let blocks = (item.role == ContextRole::Definition)
                .then(|| blocks::reduce(&code_text, &code, comment == "#"))
                .flatten()
                .map(|b| {
                    format!(
                        "{comment} {}:{}-{} {} (some blocks)\n{b}",
                        item.file, item.lines.0, item.lines.1, item.symbol
                    )
                });
            let sig = render_signature(item);
            let signature = sig.filter(|s| s.len() < body.len()).map(|s| {
                format!(
                    "{comment} {}:{} {}\n{s}",
                    item.file, item.lines.0, item.symbol
                )
            });
            out.push(Candidate {
                item: item.clone(),
                full,
                signature,
                blocks,
            });
        }
        Ok((code, out))
    }
}

/// A caller's first line and the lines that mention `name`, with `...` where lines were left
/// out; the whole text when it is that short anyway.
fn call_sites(body: &str, name: &str) -> String {
    let lines: Vec<&str> = body.split_inclusive('\n').collect();
    let mentions = |l: &str| {
        l.match_indices(name).any(|(i, _)| {
            let before = l[..i].chars().next_back();
            let after = l[i + name.len()..].chars().next();
            let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !ident(before) && !ident(after)
        })
    };
    let keep: Vec<bool> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| i == 0 || mentions(l))
        .collect();
    if keep.iter().all(|k| *k) {
        return body.to_string();
    }
    let mut out = String::new();
    let mut skipped = false;
    for (l, k) in lines.iter().zip(&keep) {
        if *k {
            if skipped {
                let indent: String = l.chars().take_while(|c| c.is_whitespace()).collect();
                out.push_str(&format!("{indent}...\n"));
            }
            out.push_str(l);
            if !l.ends_with('\n') {
                out.push('\n');
            }
            skipped = false;
        } else {
            skipped = true;
        }
    }
    if skipped {
        out.push_str("    ...\n");
    }
    out
}

fn comment_prefix(file: &str) -> &'static str {
    if file.ends_with(".py") || file.ends_with(".pyi") {
        "#"
    } else {
        "//"
    }
}

/// Methods keep their class's indentation in the file; as context they stand alone.
fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.split_inclusive('\n')
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect()
}

fn render_signature(item: &ContextItem) -> Option<String> {
    let sig = item.signature.trim();
    if sig.is_empty() {
        return None;
    }
    let python = item.file.ends_with(".py") || item.file.ends_with(".pyi");
    Some(if python {
        let is_def = ["def ", "async def ", "class "]
            .iter()
            .any(|k| sig.starts_with(k));
        if !is_def {
            format!("{sig}\n")
        } else {
            let doc = item
                .doc
                .as_deref()
                .map(|d| format!("    \"\"\"{}\"\"\"\n", d.replace("\"\"\"", "'''")))
                .unwrap_or_default();
            format!("{sig}:\n{doc}    ...\n")
        }
    } else if sig.ends_with(';') || (sig.contains(" = ") && !sig.contains("=>")) {
        format!("{sig}\n")
    } else {
        let doc = item
            .doc
            .as_deref()
            .map(|d| format!("/** {} */\n", d.replace("*/", "* /")))
            .unwrap_or_default();
        format!("{doc}{sig} {{ /* … */ }}\n")
    })
}

pub struct Compressor<'a> {
    pub strategy: Strategy,
    pub codec: &'a TextCodec,
    pub scorer: Option<&'a mut dyn Scorer>,
    pub cache: Option<&'a mut ScoreCache>,
}

impl Compressor<'_> {
    /// Read `unit` and its context from `sources` and compress it to `budget` tokens, or by
    /// default to what a window of `max_positions` leaves (see [`default_budget`]). The one
    /// path `plan --show-context` and `refactor` share. Returns the candidates too, whose files
    /// the caller may want to record.
    pub fn compress_unit(
        &mut self,
        sources: &mut Sources,
        root: &Path,
        unit: &EditUnit,
        budget: Option<usize>,
        max_positions: usize,
    ) -> Result<(Vec<Candidate>, CompressedContext), CompressError> {
        let (code, candidates) = sources.gather(root, unit)?;
        let tokens = self.codec.encode(&code)?.len();
        let room = default_budget(max_positions, tokens);
        let budget = match budget {
            Some(b) if 2 * tokens + 16 > max_positions => {
                return Err(CompressError::UnitOverWindow {
                    budget: b,
                    unit: unit.symbol.clone(),
                    tokens,
                    window: max_positions,
                })
            }
            Some(b) if b > room => {
                return Err(CompressError::BudgetOverWindow {
                    budget: b,
                    unit: unit.symbol.clone(),
                    tokens,
                    window: max_positions,
                    room,
                })
            }
            Some(b) => b,
            None => room,
        };
        let context = self.compress(unit, &code, &candidates, budget)?;
        Ok((candidates, context))
    }

    pub fn compress(
        &mut self,
        unit: &EditUnit,
        unit_code: &str,
        candidates: &[Candidate],
        budget: usize,
    ) -> Result<CompressedContext, CompressError> {
        let started = Instant::now();
        let count = |s: &str| -> Result<usize, CompressError> { Ok(self.codec.encode(s)?.len()) };
        // Per item, the text and token count of each form (in FORMS order), if it has it.
        let mut texts: Vec<[Option<&str>; 3]> = Vec::with_capacity(candidates.len());
        let mut tokens: Vec<[Option<usize>; 3]> = Vec::with_capacity(candidates.len());
        for c in candidates {
            let t = [
                Some(c.full.as_str()),
                c.signature.as_deref(),
                c.blocks.as_deref(),
            ];
            tokens.push([
                t[0].map(count).transpose()?,
                t[1].map(count).transpose()?,
                t[2].map(count).transpose()?,
            ]);
            texts.push(t);
        }
        let full_tokens: Vec<usize> = tokens.iter().map(|t| t[0].unwrap_or(0)).collect();
        let tokens_before: usize = full_tokens.iter().sum();

        let forwards_before = self.scorer.as_ref().map_or(0, |s| s.forward_passes());
        let (gains, cache_hits) = if self.strategy.scored() {
            self.score_forms(unit_code, &texts)?
        } else {
            (vec![[None; 3]; candidates.len()], 0)
        };
        let (offered, options) = self.options(candidates, &tokens, &gains);
        // Beyond the cost of keeping everything whole, more budget changes nothing.
        let picks = knapsack::solve(&options, budget.min(tokens_before));

        let mut items = Vec::with_capacity(candidates.len());
        let mut text = String::new();
        let mut tokens_after = 0;
        for (i, c) in candidates.iter().enumerate() {
            let picked = picks[i].map(|k| offered[i][k]);
            let form = picked.map_or(Form::Dropped, |f| FORMS[f]);
            let tokens = picked.and_then(|f| tokens[i][f]).unwrap_or(0);
            if let Some(t) = picked.and_then(|f| texts[i][f]) {
                text.push_str(t);
            }
            tokens_after += tokens;
            items.push(KeptItem {
                symbol: c.item.symbol.clone(),
                file: c.item.file.clone(),
                lines: c.item.lines,
                role: c.item.role,
                form,
                tokens,
                full_tokens: full_tokens[i],
                priority: c.item.priority,
                gain_full: gains[i][0],
                gain_signature: gains[i][1],
                gain_blocks: gains[i][2],
            });
        }
        let scorer = match self.strategy {
            Strategy::Model | Strategy::Causal => self.scorer.as_ref().map(|s| s.info()),
            _ => None,
        };
        let forward_passes =
            self.scorer.as_ref().map_or(0, |s| s.forward_passes()) - forwards_before;
        Ok(CompressedContext {
            unit: unit.symbol.clone(),
            strategy: self.strategy,
            budget,
            tokens_before,
            tokens_after,
            compression_ratio: if tokens_before == 0 {
                1.0
            } else {
                tokens_after as f64 / tokens_before as f64
            },
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
            scorer,
            forward_passes,
            cache_hits,
            items,
            text,
        })
    }
    /// Each form's gain from the scorer, cached ones first: the gains (in FORMS order) and how
    /// many came from the cache.
    #[allow(clippy::type_complexity)]
    fn score_forms(
        &mut self,
        unit_code: &str,
        texts: &[[Option<&str>; 3]],
    ) -> Result<(Vec<[Option<f64>; 3]>, usize), CompressError> {
        let mut gains: Vec<[Option<f64>; 3]> = vec![[None; 3]; texts.len()];
        let mut cache_hits = 0;
        let scorer = self
            .scorer
            .as_deref_mut()
            .ok_or(CompressError::NoScorer(self.strategy))?;
        let info = scorer.info();
        let scorer_id = format!("{}|{}", info.method, info.weights_sha256);
        let mut misses = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            for (f, text) in t.iter().enumerate() {
                let Some(text) = text else { continue };
                let key = ScoreCache::key(&scorer_id, unit_code, text);
                let hit = match self.cache.as_deref() {
                    Some(cache) => cache.get(&key)?,
                    None => None,
                };
                match hit {
                    Some(g) => {
                        cache_hits += 1;
                        gains[i][f] = Some(g);
                    }
                    None => misses.push((i, f, *text, key)),
                }
            }
        }
        if !misses.is_empty() {
            let scored_texts: Vec<&str> = misses.iter().map(|m| m.2).collect();
            let scored = scorer.gains(unit_code, &scored_texts)?;
            let mut fresh = Vec::with_capacity(misses.len());
            for ((i, f, _, key), g) in misses.into_iter().zip(scored) {
                gains[i][f] = Some(g);
                fresh.push((key, g));
            }
            if let Some(cache) = self.cache.as_deref_mut() {
                cache.put(&fresh)?;
            }
        }
        Ok((gains, cache_hits))
    }

    /// Per item, the forms it may take (indices into FORMS) and their knapsack options.
    #[allow(clippy::type_complexity)]
    fn options(
        &self,
        candidates: &[Candidate],
        tokens: &[[Option<usize>; 3]],
        gains: &[[Option<f64>; 3]],
    ) -> (Vec<Vec<usize>>, Vec<Vec<Choice>>) {
        let mut offered: Vec<Vec<usize>> = Vec::with_capacity(candidates.len());
        let options = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let p = c.item.priority;
                // How much of the item's value each form keeps, for the model-free strategies
                // and the model's tie-break.
                let share = [1.0, 0.5, 0.75];
                let mut forms = Vec::new();
                let mut opts = Vec::new();
                for f in 0..3 {
                    let Some(cost) = tokens[i][f] else { continue };
                    let value = match self.strategy {
                        Strategy::Model | Strategy::Causal => {
                            gains[i][f].unwrap_or(0.0).max(0.0) + PRIORITY_TIE_BREAK * p * share[f]
                        }
                        Strategy::Graph => p * share[f],
                        // Only signatures; an item with no shorter signature goes in whole.
                        Strategy::Signatures => match FORMS[f] {
                            Form::Signature => p,
                            Form::Full if c.signature.is_none() => p,
                            _ => 0.0,
                        },
                    };
                    forms.push(f);
                    opts.push(Choice { cost, value });
                }
                offered.push(forms);
                opts
            })
            .collect();
        (offered, options)
    }
}

#[cfg(test)]
mod tests;
