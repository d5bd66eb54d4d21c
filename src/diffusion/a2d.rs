//! dllm's A2D conversions (ZHZisZZ/dllm `examples/a2d`; dllm-hub's Qwen2.5-Coder-0.5B-Instruct
//! and Qwen3-0.6B "diffusion" checkpoints): an autoregressive Qwen2 or Qwen3 turned into a
//! masked-diffusion model, with the stock layout (`model_type` `a2d-qwen2`: q/k/v biases;
//! `a2d-qwen3`: per-head q/k norms and an explicit `head_dim`) and no logit shift. The same
//! weights are run fully bidirectionally (`mdlm` checkpoints) or block-causally with blocks
//! counted from the end of the prompt (`bd3lm`); which one is not in config.json, so a manifest
//! says so (`block_size`). The mask token is the tokenizer's `<|mask|>`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::cache::{Pass, Segment};
use super::layers::Transformer;
use super::qwen;

/// Which autoregressive layout the model was converted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Base {
    #[serde(rename = "a2d-qwen2")]
    Qwen2,
    #[serde(rename = "a2d-qwen3")]
    Qwen3,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub model_type: Base,
    #[serde(flatten)]
    pub qwen: qwen::Fields,
}

impl qwen::QwenConfig for Config {
    fn qwen(&self) -> &qwen::Fields {
        &self.qwen
    }
}

pub struct Model {
    net: Transformer,
}

impl Model {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Model> {
        let qwen3 = cfg.model_type == Base::Qwen3;
        let shape = cfg.qwen.shape(!qwen3, qwen3);
        Ok(Model {
            net: qwen::build(&shape, vb)?,
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
