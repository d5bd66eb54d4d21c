//! The scorers a command can rank context with, opened once: the diffusion model's own loss
//! gain, a causal LM's (when a checkpoint is named), and the score cache beside the graph.
//! `plan --show-context`, `refactor` and `bench compression` all start here.

use std::path::Path;

use super::{
    CausalLm, CausalScorer, CompressError, Compressor, DiffusionScorer, ScoreCache, Strategy,
};
use crate::diffusion::DiffusionLm;
use crate::engine::Engine;

pub struct ScorerSet<'m> {
    model: &'m DiffusionLm,
    diffusion: DiffusionScorer<'m>,
    causal: Option<CausalScorer>,
    cache: ScoreCache,
}

/// `--scorer` and `--scorer-model` together: the causal scorer needs a checkpoint, and only it
/// reads one. Cheap, so commands call it before loading any model.
pub fn check_flags(strategies: &[Strategy], dir: Option<&Path>) -> Result<(), CompressError> {
    match (strategies.contains(&Strategy::Causal), dir.is_some()) {
        (true, false) => Err(CompressError::NoCausalModel),
        (false, true) => Err(CompressError::UnusedScorerModel),
        _ => Ok(()),
    }
}

impl<'m> ScorerSet<'m> {
    /// Open what `strategies` need: the causal LM in `scorer_model` only for
    /// [`Strategy::Causal`]; `weights_sha256` keys the diffusion model's cached scores.
    pub fn open(
        strategies: &[Strategy],
        engine: &'m Engine,
        weights_sha256: String,
        scorer_model: Option<&Path>,
        root: &Path,
    ) -> Result<ScorerSet<'m>, CompressError> {
        check_flags(strategies, scorer_model)?;
        let model = &engine.model;
        let causal = match scorer_model {
            Some(dir) => Some(CausalScorer::new(CausalLm::load(
                dir,
                &model.device,
                model.dtype,
            )?)),
            None => None,
        };
        Ok(ScorerSet {
            model,
            diffusion: DiffusionScorer::new(model, engine.remote.as_ref(), weights_sha256),
            causal,
            cache: ScoreCache::in_repo(root)?,
        })
    }

    /// The causal LM's name, when one was opened.
    pub fn causal_name(&self) -> Option<&str> {
        self.causal.as_ref().map(|c| c.name())
    }

    /// A compressor ranking by `strategy`, with the scorer it needs and the cache.
    pub fn compressor(&mut self, strategy: Strategy) -> Compressor<'_> {
        let scorer: &mut dyn super::Scorer = match (strategy, self.causal.as_mut()) {
            (Strategy::Causal, Some(c)) => c,
            _ => &mut self.diffusion,
        };
        Compressor {
            strategy,
            codec: &self.model.codec,
            scorer: Some(scorer),
            cache: Some(&mut self.cache),
        }
    }
}
