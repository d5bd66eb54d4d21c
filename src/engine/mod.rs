//! The generator as the stages use it: a loaded diffusion checkpoint with its manifest, device
//! and weights hash, and the one place where a request's sampling options are folded together
//! with the checkpoint's `generation_config.json` and manifest into a [`GenerateConfig`].
//!
//! The option types here are plain serde types with no command-line parsing in them, so a run
//! record stores exactly what the generator was asked for, whatever the flags were called.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::checkpoint::chat_template;
use crate::device::{DeviceError, DeviceSpec, Precision};
use crate::diffusion::{
    CacheMode, DiffusionLm, EosPolicy, Family, GenerateConfig, ModelError, SamplerKind,
    TokenSampling,
};
use crate::models::{self, Manifest, ResolveError};

pub mod remote;

use remote::{GeneratorKind, GeneratorSpec, RemoteError, RemoteGenerator, ServedCheckpoint};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("loading model {reference}")]
    Load {
        reference: String,
        #[source]
        source: Box<ModelError>,
    },
    #[error("hashing the weights of {dir}")]
    Hash {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Defaults {
        path: String,
        #[source]
        source: crate::diffusion::sampler::UnknownSampler,
    },
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(
        "{0}: no chat_template: instruct mode needs an instruct checkpoint (use --mode infill)"
    )]
    NoTemplate(String),
    #[error("{path}: block_size = {block}: it does not divide the generation length {gen_length} (give --gen-length a multiple of it, or --block-length)")]
    BlockSize {
        path: String,
        block: usize,
        gen_length: usize,
    },
}

/// Which checkpoint, where, in what precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelChoice {
    /// A directory, hub id or manifest name; `None` is `$OUROBOROS_MODEL`, else the bundled
    /// model.
    pub model: Option<String>,
    pub device: DeviceSpec,
    pub dtype: Precision,
}

impl Default for ModelChoice {
    fn default() -> Self {
        ModelChoice {
            model: None,
            device: DeviceSpec::Cpu,
            dtype: Precision::F32,
        }
    }
}

/// A step count as a share of the generation length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// steps = gen_length / 4
    Fast,
    /// steps = gen_length / 2
    Balanced,
    /// steps = gen_length (one token per step, the published quality setting)
    Quality,
}

impl Preset {
    /// Steps are the generation length divided by this.
    pub fn divisor(self) -> usize {
        match self {
            Preset::Fast => 4,
            Preset::Balanced => 2,
            Preset::Quality => 1,
        }
    }

    /// Steps for a generation of `gen_length` in `blocks` blocks: rounded down to a multiple of
    /// the block count, and at least one per block.
    pub fn steps(self, gen_length: usize, blocks: usize) -> usize {
        let raw = gen_length / self.divisor();
        (raw / blocks.max(1)).max(1) * blocks.max(1)
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fast" => Ok(Preset::Fast),
            "balanced" => Ok(Preset::Balanced),
            "quality" => Ok(Preset::Quality),
            other => Err(format!(
                "{other}: expected fast (gen/4 steps), balanced (gen/2) or quality (gen)"
            )),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Fast => "fast",
            Preset::Balanced => "balanced",
            Preset::Quality => "quality",
        })
    }
}

/// How many denoising steps a unit gets, relative to its span or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepRule {
    /// Exactly this many (capped at the span).
    Fixed(usize),
    /// span / divisor: 4 for `fast`, 2 for `balanced`, 1 for `quality`.
    PerSpan(usize),
}

impl StepRule {
    pub fn steps(self, span: usize) -> usize {
        match self {
            StepRule::Fixed(n) => n.clamp(1, span),
            StepRule::PerSpan(d) => (span / d.max(1)).max(1),
        }
    }
}

/// The sampling options a run asks for; unset ones come from the checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingOptions {
    pub steps: Option<usize>,
    pub preset: Option<Preset>,
    pub sampler: Option<SamplerKind>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub alg_temp: Option<f64>,
    pub eps: f64,
    pub threshold: Option<f64>,
    /// Fast-dLLM's factor rule (records before it existed have none).
    #[serde(default)]
    pub factor: Option<f64>,
    /// Fast-dLLM's block cache (records before it existed ran without one).
    #[serde(default)]
    pub cache: CacheMode,
    pub eos: EosPolicy,
    pub seed: u64,
    /// Fast-dLLM v2's sub-block length (records before it existed have none).
    #[serde(default)]
    pub sub_block: Option<usize>,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            steps: None,
            preset: None,
            sampler: None,
            temperature: None,
            top_p: None,
            top_k: None,
            alg_temp: None,
            eps: 1e-3,
            threshold: None,
            factor: None,
            cache: CacheMode::None,
            eos: EosPolicy::Allow,
            seed: 0,
            sub_block: None,
        }
    }
}

impl SamplingOptions {
    /// `refactor`'s steps per unit: `steps`, else the preset's share of each unit's span
    /// (balanced when neither is given).
    pub fn step_rule(&self) -> StepRule {
        match (self.steps, self.preset) {
            (Some(n), _) => StepRule::Fixed(n),
            (None, p) => StepRule::PerSpan(p.unwrap_or(Preset::Balanced).divisor()),
        }
    }
}

/// How a unit is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Mask the body between the file's text (base checkpoints).
    Infill,
    /// Ask through the chat template and read the code out of the answer (instruct checkpoints).
    Instruct,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "infill" => Ok(Mode::Infill),
            "instruct" => Ok(Mode::Instruct),
            other => Err(format!("{other}: expected infill or instruct")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Infill => "infill",
            Mode::Instruct => "instruct",
        })
    }
}

/// A loaded diffusion checkpoint and what is known about it.
pub struct Engine {
    pub model: DiffusionLm,
    pub manifest: Option<Manifest>,
    pub device: DeviceSpec,
    /// `--generator remote`: the server that denoises; `model` then has no weights here.
    pub remote: Option<RemoteGenerator>,
    /// The served checkpoint's files, written here for `model` to read; removed on drop.
    _served: Option<tempfile::TempDir>,
}

impl Engine {
    /// Resolve `choice` (directory, hub id in the local cache, manifest name, or the default)
    /// and load it on its device.
    pub fn load(choice: &ModelChoice) -> Result<Engine, EngineError> {
        Engine::build(choice, |dir, device, dtype, overrides| {
            DiffusionLm::load(dir, device, dtype, overrides)
        })
    }

    /// A checkpoint folder's shape with random weights drawn on the device (see
    /// [`DiffusionLm::random`]), for `bench speed --random-weights`: the folder needs only
    /// config.json and a tokenizer.
    pub fn random(choice: &ModelChoice, seed: u64) -> Result<Engine, EngineError> {
        let mut engine = Engine::build(choice, |dir, device, dtype, overrides| {
            DiffusionLm::random(dir, device, dtype, seed, overrides)
        })?;
        engine.model.name = format!("{} (random weights)", engine.model.name);
        Ok(engine)
    }

    /// Resolve `choice`, open its device, and make the model there with `make`.
    fn build(
        choice: &ModelChoice,
        make: impl FnOnce(
            &std::path::Path,
            &candle_core::Device,
            candle_core::DType,
            &crate::diffusion::Overrides,
        ) -> Result<DiffusionLm, crate::diffusion::ModelError>,
    ) -> Result<Engine, EngineError> {
        let reference = match &choice.model {
            Some(m) => m.clone(),
            None => models::default_reference()?,
        };
        let resolved = models::resolve(&reference)?;
        let overrides = resolved
            .manifest
            .as_ref()
            .map(|m| m.overrides())
            .unwrap_or_default();
        let device = choice.device.open()?;
        let model =
            make(&resolved.dir, &device, choice.dtype.dtype(), &overrides).map_err(|e| {
                EngineError::Load {
                    reference,
                    source: Box::new(e),
                }
            })?;
        Ok(Engine {
            model,
            manifest: resolved.manifest,
            device: choice.device,
            remote: None,
            _served: None,
        })
    }

    /// The generator `spec` asks for: [`Engine::load`] for a local one; for a remote one, the
    /// server's own checkpoint description (`ouroboros serve`), or else `choice`'s tokenizer
    /// and settings without its weights (another engine answers in text).
    pub fn open(choice: &ModelChoice, spec: &GeneratorSpec) -> Result<Engine, EngineError> {
        if spec.kind == GeneratorKind::Local {
            spec.check()?;
            return Engine::load(choice);
        }
        let key = std::env::var(remote::API_KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty());
        let (remote, served) = RemoteGenerator::connect(spec, key)?;
        let (dir, manifest, params, files, reference) = match served {
            Some(c) => {
                let reference = format!("{} at {}", c.model, remote.base);
                let files = write_served(&c)?;
                (
                    files.path().to_path_buf(),
                    c.manifest,
                    c.parameters,
                    Some(files),
                    reference,
                )
            }
            None => {
                let reference = match &choice.model {
                    Some(m) => m.clone(),
                    None => models::default_reference()?,
                };
                let resolved = models::resolve(&reference)?;
                (resolved.dir, resolved.manifest, 0, None, reference)
            }
        };
        let overrides = manifest.as_ref().map(|m| m.overrides()).unwrap_or_default();
        // Another engine that does not say its context gets the common 4096.
        let served = crate::diffusion::Served {
            context: remote.context.unwrap_or(4096),
            params,
        };
        let mut model =
            DiffusionLm::describe(&dir, &overrides, &served).map_err(|e| EngineError::Load {
                reference,
                source: Box::new(e),
            })?;
        model.name = remote.model.clone();
        Ok(Engine {
            model,
            manifest,
            device: DeviceSpec::Cpu,
            remote: Some(remote),
            _served: files,
        })
    }

    /// The weights' identity (see [`crate::checkpoint::weights_sha256`]); for a remote
    /// generator, what its server reports (empty when it reports nothing).
    pub fn weights_sha256(&self) -> Result<String, EngineError> {
        if let Some(r) = &self.remote {
            return Ok(r.weights.clone());
        }
        crate::checkpoint::weights_sha256(&self.model.shards).map_err(|source| EngineError::Hash {
            dir: self.model.dir.display().to_string(),
            source,
        })
    }

    /// `asked`, or the checkpoint's kind: instruct when it has a chat template. A block-causal
    /// model cannot see a suffix (nothing after its current block is visible), so it infills
    /// only from the text before the span; instruct mode is its default whenever it has a
    /// template.
    pub fn mode(&self, asked: Option<Mode>) -> Result<Mode, EngineError> {
        let template = chat_template(&self.model.dir)?;
        Ok(match asked {
            Some(m) => m,
            None if template.is_some() => Mode::Instruct,
            None => Mode::Infill,
        })
    }

    /// The chat template instruct mode renders with, or an error naming the file it lacks.
    pub fn template(&self) -> Result<crate::checkpoint::ChatTemplate, EngineError> {
        chat_template(&self.model.dir)?.ok_or_else(|| {
            EngineError::NoTemplate(
                self.model
                    .dir
                    .join("tokenizer_config.json")
                    .display()
                    .to_string(),
            )
        })
    }

    /// Fold `s`, the checkpoint's `generation_config.json` and its manifest into one
    /// configuration for a generation of `gen_length` (default: the checkpoint's) in blocks of
    /// `block_length`.
    pub fn config(
        &self,
        s: &SamplingOptions,
        gen_length: Option<usize>,
        block_length: Option<usize>,
    ) -> Result<GenerateConfig, EngineError> {
        let model = &self.model;
        let rec = self.manifest.as_ref().map(|m| &m.recommended);
        let g = &model.generation;
        let gen_length = gen_length
            .or(g.max_new_tokens)
            .or(rec.map(|r| r.gen_length))
            .unwrap_or(64);
        let fits = |b: &usize| *b > 0 && gen_length.is_multiple_of(*b);
        if let (None, Some(b)) = (block_length, model.block_causal) {
            // A block-diffusion model is only run at the block size it was trained with unless
            // asked otherwise; falling back to one block would change its attention.
            if !fits(&b) {
                return Err(EngineError::BlockSize {
                    path: model.dir.join("config.json").display().to_string(),
                    block: b,
                    gen_length,
                });
            }
        }
        let block_length = block_length
            .or(model.block_causal)
            .or(g.block_length.filter(fits))
            .unwrap_or(gen_length);
        let blocks = gen_length.checked_div(block_length).unwrap_or(1).max(1);
        let steps = match (s.steps, s.preset) {
            (Some(n), _) => n,
            (None, Some(p)) => p.steps(gen_length, blocks),
            (None, None) => g
                .steps
                .filter(|&n| n <= gen_length && n % blocks == 0)
                .unwrap_or(gen_length),
        };
        Ok(GenerateConfig {
            steps,
            gen_length,
            block_length,
            sampler: self.sampler(s.sampler)?,
            sampling: TokenSampling {
                temperature: s.temperature.or(g.temperature).unwrap_or(0.0),
                top_p: s.top_p.or(g.top_p),
                top_k: s.top_k.or(g.top_k),
            },
            alg_temp: s.alg_temp.or(g.alg_temp),
            eps: s.eps,
            threshold: s.threshold,
            factor: s.factor,
            cache: s.cache,
            eos: s.eos,
            seed: s.seed,
            sub_block: s.sub_block,
        })
    }

    /// The sampler asked for, else the checkpoint's, else the manifest's, else the family's.
    fn sampler(&self, asked: Option<SamplerKind>) -> Result<SamplerKind, EngineError> {
        if let Some(k) = asked {
            return Ok(k);
        }
        let g = &self.model.generation;
        let rec = self.manifest.as_ref().map(|m| &m.recommended);
        let named = g
            .sampler
            .clone()
            .or(g.alg.clone())
            .or(rec.map(|r| r.sampler.clone()));
        match named {
            Some(n) => n.parse().map_err(|source| EngineError::Defaults {
                path: self
                    .model
                    .dir
                    .join("generation_config.json")
                    .display()
                    .to_string(),
                source,
            }),
            None => Ok(match self.model.family {
                Family::Llada => SamplerKind::LowConfidence,
                Family::Dream => SamplerKind::Entropy,
                Family::OpenDcoder => SamplerKind::P2,
                Family::Sdar | Family::A2d | Family::FastDllmV2 => SamplerKind::LowConfidence,
            }),
        }
    }
}

/// The served checkpoint's files in a fresh temporary directory.
fn write_served(c: &ServedCheckpoint) -> Result<tempfile::TempDir, RemoteError> {
    let files = |source| RemoteError::Files {
        dir: std::env::temp_dir().display().to_string(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix("ouroboros-served-")
        .tempdir()
        .map_err(files)?;
    for (name, text) in &c.files {
        // Names come from the server: only the plain file names it is meant to send.
        if !crate::serve::CHECKPOINT_FILES.contains(&name.as_str()) {
            continue;
        }
        std::fs::write(dir.path().join(name), text).map_err(files)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_respect_blocks() {
        assert_eq!(Preset::Quality.steps(64, 1), 64);
        assert_eq!(Preset::Balanced.steps(64, 4), 32);
        assert_eq!(Preset::Fast.steps(64, 4), 16);
        assert_eq!(Preset::Fast.steps(8, 4), 4);
    }

    #[test]
    fn step_rules_follow_the_span() {
        assert_eq!(StepRule::PerSpan(2).steps(64), 32);
        assert_eq!(StepRule::Fixed(100).steps(64), 64);
        assert_eq!(StepRule::Fixed(0).steps(64), 1);
        let s = SamplingOptions {
            preset: Some(Preset::Fast),
            ..SamplingOptions::default()
        };
        assert_eq!(s.step_rule(), StepRule::PerSpan(4));
        assert_eq!(SamplingOptions::default().step_rule(), StepRule::PerSpan(2));
    }

    #[test]
    fn options_round_trip_through_json() {
        let s = SamplingOptions {
            sampler: Some(SamplerKind::Entropy),
            eos: EosPolicy::Penalty(2.5),
            preset: Some(Preset::Quality),
            ..SamplingOptions::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["sampler"], "entropy");
        assert_eq!(v["eos"], "penalty:2.5");
        assert_eq!(serde_json::from_value::<SamplingOptions>(v).unwrap(), s);
        assert!("penalty:-1".parse::<EosPolicy>().is_err());
    }
}
