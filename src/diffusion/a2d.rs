//! dllm's A2D conversions (ZHZisZZ/dllm `examples/a2d`; dllm-hub's Qwen2.5-Coder-0.5B-Instruct
//! and Qwen3-0.6B "diffusion" checkpoints): an autoregressive Qwen2 or Qwen3 turned into a
//! masked-diffusion model, with the stock layout (`model_type` `a2d-qwen2`: q/k/v biases;
//! `a2d-qwen3`: per-head q/k norms and an explicit `head_dim`) and no logit shift. The same
//! weights are run fully bidirectionally (`mdlm` checkpoints) or block-causally with blocks
//! counted from the end of the prompt (`bd3lm`); which one is not in config.json, so a manifest
//! says so (`block_size`). The mask token is the tokenizer's `<|mask|>`.

use candle_core::{Result, Tensor};
use candle_nn::{Activation, VarBuilder};
use serde::Deserialize;

use super::cache::{Pass, Segment};
use super::check::{self, Invalid};
use super::dream::OneOrMany;
use super::layers::Transformer;
use super::qwen::{self, QwenShape};

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    1_000_000.0
}
fn default_act() -> Activation {
    Activation::Silu
}
fn default_max_positions() -> usize {
    32_768
}

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
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_act")]
    pub hidden_act: Activation,
    #[serde(default)]
    pub mask_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<OneOrMany>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    pub use_sliding_window: bool,
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    pub fn check(&self) -> std::result::Result<(), Invalid> {
        check::at_least_one("hidden_size", self.hidden_size)?;
        check::at_least_one("intermediate_size", self.intermediate_size)?;
        check::at_least_one("num_hidden_layers", self.num_hidden_layers)?;
        check::at_least_one("num_attention_heads", self.num_attention_heads)?;
        check::at_least_one("vocab_size", self.vocab_size)?;
        check::at_least_one("max_position_embeddings", self.max_position_embeddings)?;
        if let Some(kv) = self.num_key_value_heads {
            check::at_least_one("num_key_value_heads", kv)?;
            check::divides(
                "num_key_value_heads",
                self.num_attention_heads,
                kv,
                "num_attention_heads",
            )?;
        }
        match self.head_dim {
            Some(d) => {
                check::at_least_one("head_dim", d)?;
                check::even("head_dim", d)?;
            }
            None => check::divides(
                "num_attention_heads",
                self.hidden_size,
                self.num_attention_heads,
                "hidden_size",
            )?,
        }
        check::positive("rope_theta", self.rope_theta)?;
        check::positive("rms_norm_eps", self.rms_norm_eps)?;
        check::token("mask_token_id", self.mask_token_id, self.vocab_size)?;
        for id in self.eos_ids() {
            check::token("eos_token_id", Some(id), self.vocab_size)?;
        }
        Ok(())
    }

    pub fn unsupported(&self) -> Option<(&'static str, String)> {
        if self.hidden_act != Activation::Silu {
            return Some((
                "hidden_act",
                format!("{:?}", self.hidden_act).to_lowercase(),
            ));
        }
        if self.use_sliding_window {
            return Some(("use_sliding_window", "true".into()));
        }
        if let Some(s) = &self.rope_scaling {
            if !s.is_null() {
                return Some(("rope_scaling", s.to_string()));
            }
        }
        None
    }

    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(OneOrMany::One(id)) => vec![*id],
            Some(OneOrMany::Many(ids)) => ids.clone(),
            None => Vec::new(),
        }
    }
}

pub struct Model {
    net: Transformer,
}

impl Model {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Model> {
        let qwen3 = cfg.model_type == Base::Qwen3;
        let shape = QwenShape {
            hidden: cfg.hidden_size,
            intermediate: cfg.intermediate_size,
            layers: cfg.num_hidden_layers,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.kv_heads(),
            head_dim: cfg.head_dim(),
            vocab: cfg.vocab_size,
            rope_theta: cfg.rope_theta,
            rms_norm_eps: cfg.rms_norm_eps,
            tie_word_embeddings: cfg.tie_word_embeddings,
            max_positions: cfg.max_position_embeddings,
            qkv_bias: !qwen3,
            head_norms: qwen3,
        };
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
