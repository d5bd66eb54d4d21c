//! Fast-dLLM v2 (NVlabs/Fast-dLLM `v2/`, arXiv 2509.26328; Efficient-Large-Model/Fast_dLLM_v2_1.5B
//! and _7B): Qwen2.5-Instruct fine-tuned into a block-diffusion model, on the stock Qwen2 layout
//! (q/k/v biases, no head norms). Attention is causal across absolute blocks of `bd_size`
//! positions and bidirectional inside one, so committed blocks are cached exactly. Its logits
//! are shifted, as an autoregressive model's are: the output at position i−1 predicts token i,
//! which is also how a finished block hands the next block its first token. config.json names
//! no mask token; the tokenizer's `|<MASK>|` is it. The decoding loop (sub-blocks, the
//! threshold rule) lives in `generate::sub_block`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::cache::{Pass, Segment};
use super::check::{self, Invalid};
use super::layers::Transformer;
use super::qwen;

/// Fast-dLLM v2's config.json (the fields we read; `conplemenrary_mask` and the rest are the
/// training code's).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub qwen: qwen::Fields,
    /// Positions per diffusion block (32 in the released checkpoints).
    #[serde(default = "default_bd_size")]
    pub bd_size: usize,
}

fn default_bd_size() -> usize {
    32
}

impl Config {
    /// Values that cannot work, named by their config.json field.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        self.qwen.check()?;
        check::at_least_one("bd_size", self.bd_size)
    }

    pub fn unsupported(&self) -> Option<(&'static str, String)> {
        self.qwen.unsupported()
    }
}

impl qwen::QwenConfig for Config {
    fn qwen(&self) -> &qwen::Fields {
        &self.qwen
    }
    fn check(&self) -> std::result::Result<(), super::check::Invalid> {
        Config::check(self)
    }
    fn unsupported(&self) -> Option<(&'static str, String)> {
        Config::unsupported(self)
    }
}

pub struct Model {
    net: Transformer,
}

impl Model {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Model> {
        Ok(Model {
            net: qwen::build(&cfg.qwen.shape(true, false), vb)?,
        })
    }

    pub fn forward(&self, segments: &[Segment]) -> Result<Pass> {
        self.net.forward(segments)
    }

    pub fn head(&self, hidden_rows: &Tensor) -> Result<Tensor> {
        self.net.logits(hidden_rows)
    }

    pub fn max_positions(&self) -> usize {
        self.net.max_positions()
    }
}
