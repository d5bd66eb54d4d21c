//! The Builder's generator: masked (discrete) diffusion language models, run in-process
//! through candle. Model files hold only the networks (one file per family, in
//! candle-transformers' shape); sampling lives in `sampler` and the denoising loop in
//! `generate`.

pub mod a2d;
pub mod cache;
mod check;
mod dense;
pub mod dream;
pub mod fast_dllm;
pub mod generate;
pub mod golden;
mod layers;
pub mod llada;
pub mod model;
pub mod open_dcoder;
mod qwen;
pub mod sampler;
pub mod sdar;
pub mod tokenizer;
mod weights;

pub use cache::Visibility;
pub use generate::{
    dllm_transfer_counts, generate, generate_batch, validate as validate_config, CacheMode, Canvas,
    EosPolicy, GenerateConfig, GenerateError, Generation, StepEvent,
};
pub use model::{
    is_diffusion_checkpoint, DiffusionLm, Family, ModelError, Overrides, Schedule, Scoring, Served,
};
pub use sampler::{SamplerKind, TokenSampling};
