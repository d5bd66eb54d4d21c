//! Dream family (Dream-v0-Base/Instruct-7B, Dream-Coder-v0-7B, DiffuCoder-7B, Open-dCoder and the
//! Qwen2.5-Coder diffusion conversions): the Qwen2 layout with q/k/v biases and grouped-query
//! attention, run without a causal mask. Its logits are shifted by one (the output at i−1
//! predicts token i); the generator applies that shift, not the model.

use candle_core::{Result, Tensor};
use candle_nn::{Activation, VarBuilder};
use serde::Deserialize;

use super::cache::{Pass, Segment};
use super::check::{self, Invalid};
use super::layers::Transformer;
use super::qwen::{self, QwenShape};

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_act() -> Activation {
    Activation::Silu
}
fn default_max_positions() -> usize {
    32_768
}

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
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
}

/// `eos_token_id` as config.json gives it: one id, or a list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

impl OneOrMany {
    pub fn ids(&self) -> Vec<u32> {
        match self {
            OneOrMany::One(id) => vec![*id],
            OneOrMany::Many(ids) => ids.clone(),
        }
    }
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Values that cannot work, named by their config.json field.
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
        check::divides(
            "num_attention_heads",
            self.hidden_size,
            self.num_attention_heads,
            "hidden_size",
        )?;
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
        if let Some(s) = &self.rope_scaling {
            if !s.is_null() {
                return Some(("rope_scaling", s.to_string()));
            }
        }
        None
    }

    /// Every EOS id config.json names.
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map_or_else(Vec::new, OneOrMany::ids)
    }

    /// The first EOS id, whether config.json gives one id or a list.
    pub fn eos(&self) -> Option<u32> {
        self.eos_ids().first().copied()
    }
}

impl super::model::FamilyConfig for Config {
    const LAYERS: &'static str = "num_hidden_layers";
    fn layers(&self) -> usize {
        self.num_hidden_layers
    }
    fn check(&self) -> std::result::Result<(), Invalid> {
        Config::check(self)
    }
    fn unsupported(&self) -> Option<(&'static str, String)> {
        Config::unsupported(self)
    }
    fn mask(&self) -> Option<u32> {
        self.mask_token_id
    }
    fn eos(&self) -> Vec<u32> {
        Config::eos(self).into_iter().collect()
    }
    fn rows(&self) -> usize {
        self.vocab_size
    }
}

pub struct Model {
    net: Transformer,
}

impl Model {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Model> {
        let shape = QwenShape {
            hidden: cfg.hidden_size,
            intermediate: cfg.intermediate_size,
            layers: cfg.num_hidden_layers,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.kv_heads(),
            head_dim: cfg.hidden_size / cfg.num_attention_heads,
            vocab: cfg.vocab_size,
            rope_theta: cfg.rope_theta,
            rms_norm_eps: cfg.rms_norm_eps,
            tie_word_embeddings: cfg.tie_word_embeddings,
            max_positions: cfg.max_position_embeddings,
            qkv_bias: true,
            head_norms: false,
        };
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
