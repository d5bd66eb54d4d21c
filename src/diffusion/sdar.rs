//! SDAR (JetAstra/SDAR, arXiv 2510.06303; JetLM/SDAR-1.7B/4B/8B-Chat): a block-diffusion model
//! on the Qwen3 layout, with per-head `q_norm`/`k_norm`, no q/k/v biases, and `head_dim` given
//! in config.json (it need not be `hidden_size / num_attention_heads`). Attention is causal
//! across blocks of `block_size` positions and bidirectional inside one, so the keys and values
//! of committed blocks are cached exactly; the generator builds that mask and the cache. Its
//! logits are not shifted: the output at a masked position predicts that position.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::cache::{Pass, Segment};
use super::check::{self, Invalid};
use super::layers::Transformer;
use super::qwen;

/// SDAR's config.json (the fields we read; the rest are the training code's).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub qwen: qwen::Fields,
    #[serde(default)]
    pub attention_bias: bool,
    /// Positions per diffusion block; required.
    #[serde(default)]
    pub block_size: Option<usize>,
}

impl Config {
    /// The block size; `check` has made sure there is one.
    pub fn block(&self) -> usize {
        self.block_size.unwrap_or(1)
    }

    /// Values that cannot work, named by their config.json field.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        self.qwen.check()?;
        check::required("block_size", self.block_size.map(|b| b.to_string()))?;
        check::at_least_one("block_size", self.block())?;
        check::required(
            "mask_token_id",
            self.qwen.mask_token_id.map(|m| m.to_string()),
        )?;
        Ok(())
    }

    pub fn unsupported(&self) -> Option<(&'static str, String)> {
        if self.attention_bias {
            return Some(("attention_bias", "true".into()));
        }
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
        let shape = cfg.qwen.shape(false, true);
        Ok(Model {
            net: qwen::build(&shape, vb)?,
        })
    }

    /// One pass over packed segments (see [`Segment`]).
    pub fn forward(&self, segments: &[Segment]) -> Result<Pass> {
        self.net.forward(segments)
    }

    /// Final norm and output head on selected hidden rows, `(n, hidden)` → `(n, rows)`.
    pub fn head(&self, hidden_rows: &Tensor) -> Result<Tensor> {
        self.net.logits(hidden_rows)
    }

    pub fn max_positions(&self) -> usize {
        self.net.max_positions()
    }
}
