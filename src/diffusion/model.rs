//! Loading a diffusion LM from a Hugging Face model directory and dispatching to its family.

use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::cache::{Pass, Segment, Visibility};
use super::layers::gather_rows;
use super::tokenizer::{TextCodec, TokenizerError};
use super::weights::{MappedWeights, RandomWeights};
use super::{a2d, dream, fast_dllm, llada, open_dcoder, sdar};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Llada,
    Dream,
    /// Block diffusion on Qwen3 (JetAstra/SDAR).
    Sdar,
    /// dllm's A2D conversions of Qwen2/Qwen3 (mdlm or bd3lm).
    A2d,
    /// Fast-dLLM v2's block-diffusion Qwen2.5 (NVlabs/Fast-dLLM).
    #[serde(rename = "fast_dllm_v2")]
    FastDllmV2,
    /// Open-dCoder's diffusion Qwen2.5-Coder (pengzhangzhi/Open-dLLM); named by its manifest.
    #[serde(rename = "open_dcoder")]
    OpenDcoder,
}

impl Net {
    fn max_positions(&self) -> usize {
        match self {
            Net::Llada(m) => m.max_positions(),
            Net::Dream(m) => m.max_positions(),
            Net::Sdar(m) => m.max_positions(),
            Net::A2d(m) => m.max_positions(),
            Net::FastDllmV2(m) => m.max_positions(),
            Net::OpenDcoder(m) => m.max_positions(),
        }
    }
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Llada => "llada",
            Family::Dream => "dream",
            Family::Sdar => "sdar",
            Family::A2d => "a2d",
            Family::FastDllmV2 => "fast_dllm_v2",
            Family::OpenDcoder => "open_dcoder",
        }
    }

    /// Whether the output at position i−1 predicts token i.
    pub fn default_logit_shift(self) -> bool {
        matches!(
            self,
            Family::Dream | Family::FastDllmV2 | Family::OpenDcoder
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{path}: unsupported architecture: {field} = {value} (supported: LLaDA `LLaDAModelLM`/`llada`, Dream `DreamModel`/`Dream`, SDAR `SDARForCausalLM`/`sdar`, dllm A2D `a2d-qwen2`/`a2d-qwen3`; a manifest can name the family of a converted checkpoint)")]
    UnknownArchitecture {
        path: String,
        field: &'static str,
        value: String,
    },
    #[error("{path}: unsupported setting {field} = {value}")]
    Unsupported {
        path: String,
        field: &'static str,
        value: String,
    },
    #[error("{path}: {field} = {value}: {why}")]
    Invalid {
        path: String,
        field: &'static str,
        value: String,
        why: String,
    },
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error("loading weights from {dir}: {source}")]
    Weights {
        dir: String,
        source: candle_core::Error,
    },
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("{0}")]
    Compute(#[from] candle_core::Error),
    #[error("{0}: its weights are on the generator server, not here (this needs the model in-process: drop --generator remote)")]
    NoWeights(String),
}

fn file_error(path: &Path, message: impl ToString) -> ModelError {
    ModelError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// What a manifest or the user can override about a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub family: Option<Family>,
    pub logit_shift: Option<bool>,
    pub mask_id: Option<u32>,
    /// A2D: the checkpoint is a block-diffusion one (bd3lm) with blocks of this size.
    pub block_size: Option<usize>,
}

/// The per-step quotas of fixed-count decoding: how many of a block's masks each step commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// LLaDA's `get_num_transfer_tokens`: n / steps each, the remainder on the first steps
    /// (also SDAR's, over the block length).
    Llada,
    /// dllm's, from its linear α schedule with round-half-even (see `dllm_transfer_counts`).
    Dllm,
}

/// `generation_config.json`, the fields we use.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenerationDefaults {
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub steps: Option<usize>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub alg_temp: Option<f64>,
    #[serde(default)]
    pub eps: Option<f64>,
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    #[serde(default)]
    pub sampler: Option<String>,
    #[serde(default)]
    pub block_length: Option<usize>,
    #[serde(default)]
    pub eos_token_id: Option<super::dream::OneOrMany>,
}

impl GenerationDefaults {
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map_or_else(Vec::new, super::dream::OneOrMany::ids)
    }
}

enum Net {
    Llada(llada::Model),
    Dream(dream::Model),
    Sdar(sdar::Model),
    A2d(a2d::Model),
    FastDllmV2(fast_dllm::Model),
    OpenDcoder(open_dcoder::Model),
}

pub struct DiffusionLm {
    /// `None` for a checkpoint served elsewhere ([`DiffusionLm::describe`]): its tokenizer and
    /// settings are here, its weights are not.
    net: Option<Net>,
    /// Positions the network takes.
    context: usize,
    pub family: Family,
    pub dir: PathBuf,
    pub name: String,
    pub codec: TextCodec,
    pub mask_id: u32,
    pub eos_ids: Vec<u32>,
    pub logit_shift: bool,
    /// Block diffusion: attention is causal across blocks of this many positions (counted
    /// from canvas position 0) and bidirectional inside one. `None`: fully bidirectional.
    pub block_causal: Option<usize>,
    /// Block diffusion counts its blocks from the span's start (bd3lm) rather than from canvas
    /// position 0 (SDAR).
    pub blocks_from_span: bool,
    /// How many tokens a fixed-count step commits.
    pub schedule: Schedule,
    /// Rows of the output head (may exceed the tokenizer's vocabulary when padded).
    pub vocab_rows: usize,
    pub params: usize,
    pub shards: Vec<PathBuf>,
    pub generation: GenerationDefaults,
    pub device: Device,
    pub dtype: DType,
    /// Where a greedy step reduces its logits rows to the sampler's few numbers.
    pub scoring: Scoring,
}

/// Where a step's logits become candidates. On a GPU the rows stay there and a kernel
/// (`crate::kernels::row_stats`) sends back six floats per position; on the CPU the samplers
/// read the rows directly. Sampling at a temperature always reads whole rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    Host,
    Device,
}

impl Scoring {
    pub fn for_device(device: &Device) -> Scoring {
        match device {
            Device::Cuda(_) => Scoring::Device,
            _ => Scoring::Host,
        }
    }
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
}

fn detect(path: &Path, header: &Header) -> Result<Family, ModelError> {
    for a in &header.architectures {
        match a.as_str() {
            "LLaDAModelLM" | "LLaDAModel" => return Ok(Family::Llada),
            "DreamModel" => return Ok(Family::Dream),
            "SDARForCausalLM" => return Ok(Family::Sdar),
            "A2DQwen2LMHeadModel" | "A2DQwen3LMHeadModel" => return Ok(Family::A2d),
            "Fast_dLLM_QwenForCausalLM" => return Ok(Family::FastDllmV2),
            _ => {}
        }
    }
    match header.model_type.as_deref() {
        Some("llada") => Ok(Family::Llada),
        Some("Dream") | Some("dream") => Ok(Family::Dream),
        Some("sdar") => Ok(Family::Sdar),
        Some("a2d-qwen2") | Some("a2d-qwen3") => Ok(Family::A2d),
        Some("Fast_dLLM_Qwen") => Ok(Family::FastDllmV2),
        Some(other) => Err(ModelError::UnknownArchitecture {
            path: path.display().to_string(),
            field: "model_type",
            value: format!("{other:?} (architectures {:?})", header.architectures),
        }),
        None => Err(ModelError::UnknownArchitecture {
            path: path.display().to_string(),
            field: "architectures",
            value: format!("{:?}", header.architectures),
        }),
    }
}

/// Whether `dir` holds a checkpoint of a diffusion family this engine runs (by its
/// config.json's `architectures` / `model_type`).
pub fn is_diffusion_checkpoint(dir: &Path) -> bool {
    let path = dir.join("config.json");
    read_json::<Header>(&path).is_ok_and(|h| detect(&path, &h).is_ok())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ModelError> {
    let text = fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    serde_json::from_str(&text).map_err(|e| file_error(path, e))
}

/// Where a checkpoint's network comes from.
#[derive(Clone, Copy)]
enum Network<'a> {
    /// Its weights, memory-mapped onto a device.
    Load { device: &'a Device, dtype: DType },
    /// Random weights of config.json's shape, drawn on the device (for speed benchmarks).
    Random {
        device: &'a Device,
        dtype: DType,
        seed: u64,
    },
    /// Nowhere here: a server runs it; what the server reports about it.
    Served(&'a Served),
}

/// What a generator server reports about the network it runs.
#[derive(Debug, Clone)]
pub struct Served {
    pub context: usize,
    pub params: usize,
}

fn invalid_in(path: &Path, i: super::check::Invalid) -> ModelError {
    ModelError::Invalid {
        path: path.display().to_string(),
        field: i.field,
        value: i.value,
        why: i.why,
    }
}

/// What loading needs from a family's config.json, whatever its fields are called.
pub(super) trait FamilyConfig: for<'de> Deserialize<'de> {
    /// config.json's name for the number of blocks.
    const LAYERS: &'static str;
    fn layers(&self) -> usize;
    /// Values that cannot work, by their config.json field.
    fn check(&self) -> Result<(), super::check::Invalid>;
    /// A setting the network does not implement, by its config.json field.
    fn unsupported(&self) -> Option<(&'static str, String)>;
    fn mask(&self) -> Option<u32>;
    fn eos(&self) -> Vec<u32>;
    /// Rows of the output head.
    fn rows(&self) -> usize;
}

/// One family's config.json, read and checked, and its network built when weights are here.
struct Reader<'a> {
    path: &'a Path,
    /// Blocks the weights hold (`None`: no weights here).
    blocks: Option<usize>,
    vb: Option<VarBuilder<'static>>,
}

type Opened = (Option<Net>, Option<u32>, Vec<u32>, usize);

impl Reader<'_> {
    fn config<C: FamilyConfig>(
        self,
        build: impl FnOnce(&C, VarBuilder<'static>) -> candle_core::Result<Net>,
    ) -> Result<(Option<Net>, C), ModelError> {
        let cfg: C = read_json(self.path)?;
        let invalid = |i| invalid_in(self.path, i);
        cfg.check().map_err(invalid)?;
        if let Some((field, value)) = cfg.unsupported() {
            let path = self.path.display().to_string();
            return Err(ModelError::Unsupported { path, field, value });
        }
        if let Some(b) = self.blocks {
            super::check::blocks(C::LAYERS, cfg.layers(), b).map_err(invalid)?;
        }
        let dir = self
            .path
            .parent()
            .unwrap_or(self.path)
            .display()
            .to_string();
        let net = self
            .vb
            .map(|vb| build(&cfg, vb))
            .transpose()
            .map_err(|source| ModelError::Weights { dir, source })?;
        Ok((net, cfg))
    }

    /// [`Reader::config`], with what every family reads from it.
    fn open<C: FamilyConfig>(
        self,
        build: impl FnOnce(&C, VarBuilder<'static>) -> candle_core::Result<Net>,
    ) -> Result<Opened, ModelError> {
        let (net, cfg) = self.config(build)?;
        Ok((net, cfg.mask(), cfg.eos(), cfg.rows()))
    }
}

impl DiffusionLm {
    /// Load a checkpoint directory. Weights are memory-mapped.
    pub fn load(
        dir: &Path,
        device: &Device,
        dtype: DType,
        overrides: &Overrides,
    ) -> Result<DiffusionLm, ModelError> {
        Self::open(dir, overrides, Network::Load { device, dtype })
    }

    /// A checkpoint folder's config.json and tokenizer with random weights of that shape,
    /// drawn on `device` (see `weights::RandomWeights`): for timing a layout whose weights are
    /// not here. Its output is noise.
    pub fn random(
        dir: &Path,
        device: &Device,
        dtype: DType,
        seed: u64,
        overrides: &Overrides,
    ) -> Result<DiffusionLm, ModelError> {
        Self::open(
            dir,
            overrides,
            Network::Random {
                device,
                dtype,
                seed,
            },
        )
    }

    /// A checkpoint's tokenizer and settings without its weights, for a model that a server
    /// runs: everything but a forward pass works.
    pub fn describe(
        dir: &Path,
        overrides: &Overrides,
        served: &Served,
    ) -> Result<DiffusionLm, ModelError> {
        Self::open(dir, overrides, Network::Served(served))
    }

    fn open(
        dir: &Path,
        overrides: &Overrides,
        network: Network,
    ) -> Result<DiffusionLm, ModelError> {
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(file_error(
                &config_path,
                "missing (is this a Hugging Face model directory?)",
            ));
        }
        let header: Header = read_json(&config_path)?;
        let family = match overrides.family {
            Some(f) => f,
            None => detect(&config_path, &header)?,
        };
        let generation_path = dir.join("generation_config.json");
        let mut generation: GenerationDefaults = if generation_path.is_file() {
            read_json(&generation_path)?
        } else {
            GenerationDefaults::default()
        };
        if family == Family::Sdar {
            // SDAR's generation_config.json holds the sampling settings of autoregressive
            // `generate()` (temperature 0.6, top-k 20, top-p 0.95), which its diffusion loop
            // does not read; the README's greedy decoding is what we default to.
            generation.temperature = None;
            generation.top_p = None;
            generation.top_k = None;
        }
        let codec = TextCodec::load(dir)?;
        let mut drawn = None;
        let (shards, params, blocks, vb) = match network {
            Network::Load { device, dtype } => {
                let shards = crate::checkpoint::weight_files(dir)?;
                let backend =
                    MappedWeights::open(&shards).map_err(|source| ModelError::Weights {
                        dir: dir.display().to_string(),
                        source,
                    })?;
                let blocks = backend.blocks_under(match family {
                    Family::Llada => "model.transformer.blocks.",
                    _ => "model.layers.",
                });
                let params = backend.param_count();
                let vb = VarBuilder::from_backend(Box::new(backend), dtype, device.clone());
                (shards, params, Some(blocks), Some(vb))
            }
            Network::Random {
                device,
                dtype,
                seed,
            } => {
                let weights_error = |source| ModelError::Weights {
                    dir: dir.display().to_string(),
                    source,
                };
                let (backend, count) = RandomWeights::new(device, seed).map_err(weights_error)?;
                drawn = Some(count);
                let vb = VarBuilder::from_backend(Box::new(backend), dtype, device.clone());
                (Vec::new(), 0, None, Some(vb))
            }
            Network::Served(s) => (Vec::new(), s.params, None, None),
        };
        let (network_context, device, dtype) = match network {
            Network::Served(s) => (s.context, Device::Cpu, DType::F32),
            Network::Load { device, dtype } | Network::Random { device, dtype, .. } => {
                (0, device.clone(), dtype)
            }
        };
        let mut block_causal = None;
        let read = |vb: Option<VarBuilder<'static>>| Reader {
            path: &config_path,
            blocks,
            vb,
        };
        let (net, config_mask, eos, rows) =
            match family {
                Family::Llada => read(vb)
                    .open(|c: &llada::Config, vb| llada::Model::new(c, vb).map(Net::Llada))?,
                Family::Dream => read(vb)
                    .open(|c: &dream::Config, vb| dream::Model::new(c, vb).map(Net::Dream))?,
                Family::Sdar => {
                    let (net, cfg) = read(vb)
                        .config(|c: &sdar::Config, vb| sdar::Model::new(c, vb).map(Net::Sdar))?;
                    block_causal = Some(cfg.block());
                    // The chat checkpoints end a turn with `<|im_end|>`, which only
                    // generation_config.json names; SDAR's loops stop at both.
                    let mut eos = cfg.eos();
                    for id in generation.eos_ids() {
                        if !eos.contains(&id) {
                            eos.push(id);
                        }
                    }
                    (net, cfg.mask(), eos, cfg.rows())
                }
                Family::A2d => {
                    // bd3lm and mdlm share config.json; the manifest says which one this is.
                    block_causal = overrides.block_size;
                    read(vb).open(|c: &a2d::Config, vb| a2d::Model::new(c, vb).map(Net::A2d))?
                }
                Family::FastDllmV2 => {
                    // Its loops stop at config.json's `<|im_end|>` alone (generation_config.json
                    // is the base model's, which the custom generate never reads).
                    let (net, cfg) = read(vb).config(|c: &fast_dllm::Config, vb| {
                        fast_dllm::Model::new(c, vb).map(Net::FastDllmV2)
                    })?;
                    block_causal = Some(cfg.bd_size);
                    (net, cfg.mask(), cfg.eos(), cfg.rows())
                }
                Family::OpenDcoder => read(vb).open(|c: &open_dcoder::Config, vb| {
                    open_dcoder::Model::new(c, vb).map(Net::OpenDcoder)
                })?,
            };
        let mask_id = codec.mask_id(overrides.mask_id.or(config_mask))?;
        super::check::token("mask_token_id", Some(mask_id), rows)
            .map_err(|i| invalid_in(&config_path, i))?;
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        let context = match (&net, network_context) {
            (Some(n), _) => n.max_positions(),
            (None, c) => c,
        };
        Ok(DiffusionLm {
            net,
            context,
            family,
            dir: dir.to_path_buf(),
            name,
            codec,
            mask_id,
            eos_ids: eos,
            logit_shift: overrides
                .logit_shift
                .unwrap_or(family.default_logit_shift()),
            block_causal,
            blocks_from_span: family == Family::A2d,
            schedule: match family {
                Family::A2d => Schedule::Dllm,
                _ => Schedule::Llada,
            },
            vocab_rows: rows,
            params: drawn.map_or(params, |n| n.load(std::sync::atomic::Ordering::Relaxed)),
            shards,
            generation,
            scoring: Scoring::for_device(&device),
            device,
            dtype,
        })
    }

    pub fn max_positions(&self) -> usize {
        self.context
    }

    /// Whether the weights are here (not only on a generator server).
    pub fn has_weights(&self) -> bool {
        self.net.is_some()
    }

    fn net(&self) -> Result<&Net, ModelError> {
        self.net
            .as_ref()
            .ok_or_else(|| ModelError::NoWeights(self.dir.display().to_string()))
    }

    /// One pass over packed segments: canvases, or windows of them over their caches.
    pub fn forward(&self, segments: &[Segment]) -> Result<Pass, ModelError> {
        Ok(match self.net()? {
            Net::Llada(m) => m.forward(segments)?,
            Net::Dream(m) => m.forward(segments)?,
            Net::Sdar(m) => m.forward(segments)?,
            Net::A2d(m) => m.forward(segments)?,
            Net::FastDllmV2(m) => m.forward(segments)?,
            Net::OpenDcoder(m) => m.forward(segments)?,
        })
    }

    /// Which keys a whole-canvas pass lets each position see.
    pub fn visibility(&self) -> Visibility {
        match self.block_causal {
            Some(b) => Visibility::blocks(b),
            None => Visibility::All,
        }
    }

    /// Hidden states of the whole canvas, `(len, hidden)`, under the family's attention rule.
    pub fn hidden(&self, canvas: &[u32]) -> Result<Tensor, ModelError> {
        let segment = Segment {
            visibility: self.visibility(),
            ..Segment::whole(canvas)
        };
        Ok(self.forward(&[segment])?.hidden)
    }

    /// Logits `(rows.len(), vocab_rows)` in f32 of the given hidden rows: the output head runs
    /// on those rows only.
    pub fn head_rows(&self, hidden: &Tensor, rows: &[usize]) -> Result<Tensor, ModelError> {
        let h = gather_rows(hidden, rows)?;
        let logits = match self.net()? {
            Net::Llada(m) => m.head(&h)?,
            Net::Dream(m) => m.head(&h)?,
            Net::Sdar(m) => m.head(&h)?,
            Net::A2d(m) => m.head(&h)?,
            Net::FastDllmV2(m) => m.head(&h)?,
            Net::OpenDcoder(m) => m.head(&h)?,
        };
        Ok(logits.to_dtype(DType::F32)?)
    }

    /// Logits at the canvas positions asked for, from the hidden states of the whole canvas.
    /// With a logit shift, position i reads row i−1 (and position 0 its own row, as the
    /// reference does).
    pub fn logits_at(&self, hidden: &Tensor, positions: &[usize]) -> Result<Tensor, ModelError> {
        let rows: Vec<usize> = if self.logit_shift {
            positions.iter().map(|&p| p.saturating_sub(1)).collect()
        } else {
            positions.to_vec()
        };
        self.head_rows(hidden, &rows)
    }
}

impl DiffusionLm {
    /// The network's raw output at every canvas position, `(len, vocab_rows)`, with no logit
    /// shift: what the reference implementations return, for checking against them.
    pub fn logits_all(&self, canvas: &[u32]) -> Result<Tensor, ModelError> {
        self.logits_under(canvas, self.visibility())
    }

    /// [`Self::logits_all`] under a given attention rule (a block-causal model checked at
    /// another block length).
    pub fn logits_under(
        &self,
        canvas: &[u32],
        visibility: Visibility,
    ) -> Result<Tensor, ModelError> {
        let segment = Segment {
            visibility,
            ..Segment::whole(canvas)
        };
        let hidden = self.forward(&[segment])?.hidden;
        let rows: Vec<usize> = (0..canvas.len()).collect();
        self.head_rows(&hidden, &rows)
    }
}
