//! Open-dCoder (pengzhangzhi/Open-dLLM; fredzzp/open-dcoder-0.5B): Qwen2.5-Coder-0.5B trained
//! further as a masked-diffusion model, the Dream recipe on the stock Qwen2 layout (q/k/v
//! biases, tied embeddings). Its config.json is a plain `Qwen2ForCausalLM`, so nothing in it
//! says diffusion: the family comes from its manifest. Attention is full (veomni runs the
//! network with `is_causal=False`), logits are shifted (the output at i−1 predicts token i),
//! and the mask `<M>` is only in the tokenizer. Its loop is the `p2` sampler
//! (`generate::remask`); Dream's samplers run on it too.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::cache::{Pass, Segment};
use super::layers::Transformer;
use super::qwen;

/// Qwen2's config.json, the fields we read.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
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
