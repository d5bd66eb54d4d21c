//! LLaDA (GSAI-ML/LLaDA-8B-Base and -Instruct, and models in the same layout): OLMo-style tensor
//! names around llama-style blocks, multi-head attention, SwiGLU, an untied output head, no
//! logit shift. The `Config` mirrors the checkpoint's config.json.

use candle_core::{Result, Tensor};
use candle_nn::{embedding, VarBuilder};
use serde::Deserialize;

use super::cache::{Pass, Segment};
use super::check::{self, Invalid};
use super::dense::Dense;
use super::layers::{
    norm, Attention, AttentionNames, AttentionShape, Block, Mlp, MlpNames, Rotary, Transformer,
};

fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_block_type() -> String {
    "llama".into()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub d_model: usize,
    pub n_heads: usize,
    #[serde(default)]
    pub n_kv_heads: Option<usize>,
    pub n_layers: usize,
    #[serde(default)]
    pub mlp_hidden_size: Option<usize>,
    #[serde(default)]
    pub mlp_ratio: Option<usize>,
    pub vocab_size: usize,
    /// Rows of the embedding and head; may be padded beyond `vocab_size`.
    #[serde(default)]
    pub embedding_size: Option<usize>,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub max_sequence_length: Option<usize>,
    #[serde(default)]
    pub mask_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    #[serde(default)]
    pub include_bias: bool,
    #[serde(default)]
    pub include_qkv_bias: bool,
    #[serde(default)]
    pub weight_tying: bool,
    #[serde(default = "default_block_type")]
    pub block_type: String,
    #[serde(default)]
    pub attention_layer_norm: bool,
    #[serde(default)]
    pub scale_logits: bool,
    #[serde(default)]
    pub input_emb_norm: bool,
    #[serde(default = "default_true")]
    pub rope: bool,
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        self.n_kv_heads.unwrap_or(self.n_heads)
    }

    pub fn inner_size(&self) -> usize {
        self.mlp_hidden_size
            .unwrap_or(self.d_model * self.mlp_ratio.unwrap_or(4))
    }

    pub fn rows(&self) -> usize {
        self.embedding_size
            .unwrap_or(self.vocab_size)
            .max(self.vocab_size)
    }

    /// Values that cannot work, named by their config.json field.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        check::at_least_one("d_model", self.d_model)?;
        check::at_least_one("n_heads", self.n_heads)?;
        check::at_least_one("n_layers", self.n_layers)?;
        check::at_least_one("vocab_size", self.vocab_size)?;
        if let Some(kv) = self.n_kv_heads {
            check::at_least_one("n_kv_heads", kv)?;
            check::divides("n_kv_heads", self.n_heads, kv, "n_heads")?;
        }
        check::divides("n_heads", self.d_model, self.n_heads, "d_model")?;
        check::at_least_one("mlp_hidden_size", self.inner_size())?;
        if let Some(n) = self.max_sequence_length {
            check::at_least_one("max_sequence_length", n)?;
        }
        check::positive("rope_theta", self.rope_theta)?;
        check::positive("rms_norm_eps", self.rms_norm_eps)?;
        check::token("mask_token_id", self.mask_token_id, self.rows())?;
        check::token("eos_token_id", self.eos_token_id, self.rows())?;
        Ok(())
    }

    /// Settings this implementation does not cover, named by their config.json field.
    pub fn unsupported(&self) -> Option<(&'static str, String)> {
        if self.block_type != "llama" {
            return Some(("block_type", self.block_type.clone()));
        }
        if self.attention_layer_norm {
            return Some(("attention_layer_norm", "true".into()));
        }
        if self.scale_logits {
            return Some(("scale_logits", "true".into()));
        }
        if self.input_emb_norm {
            return Some(("input_emb_norm", "true".into()));
        }
        if self.include_bias {
            return Some(("include_bias", "true".into()));
        }
        if !self.rope {
            return Some(("rope", "false".into()));
        }
        None
    }
}

impl super::model::FamilyConfig for Config {
    const LAYERS: &'static str = "n_layers";
    fn layers(&self) -> usize {
        self.n_layers
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
        self.eos_token_id.into_iter().collect()
    }
    fn rows(&self) -> usize {
        Config::rows(self)
    }
}

pub struct Model {
    net: Transformer,
}

impl Model {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Model> {
        let t = vb.pp("model").pp("transformer");
        let wte = embedding(cfg.rows(), cfg.d_model, t.pp("wte"))?;
        let names = AttentionNames {
            q: "q_proj",
            k: "k_proj",
            v: "v_proj",
            o: "attn_out",
        };
        let mlp_names = MlpNames {
            gate: "ff_proj",
            up: "up_proj",
            down: "ff_out",
        };
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let b = t.pp("blocks").pp(i);
            let attn = Attention::new(
                AttentionShape {
                    hidden: cfg.d_model,
                    heads: cfg.n_heads,
                    kv_heads: cfg.kv_heads(),
                    head_dim: cfg.d_model / cfg.n_heads,
                    qkv_bias: cfg.include_qkv_bias,
                },
                &names,
                None,
                b.clone(),
            )?;
            let mlp = Mlp::new(cfg.d_model, cfg.inner_size(), &mlp_names, b.clone())?;
            blocks.push(Block::new(
                norm(cfg.d_model, cfg.rms_norm_eps, b.pp("attn_norm"))?,
                attn,
                norm(cfg.d_model, cfg.rms_norm_eps, b.pp("ff_norm"))?,
                mlp,
            ));
        }
        let ln_f = norm(cfg.d_model, cfg.rms_norm_eps, t.pp("ln_f"))?;
        let head = if cfg.weight_tying {
            Dense::from_weight(wte.embeddings(), None)?
        } else {
            Dense::fused(cfg.d_model, &[("ff_out", cfg.rows())], false, &t)?
        };
        let max_positions = cfg.max_sequence_length.unwrap_or(4096);
        let rotary = Rotary::new(
            cfg.rope_theta,
            cfg.d_model / cfg.n_heads,
            max_positions,
            vb.dtype(),
            vb.device(),
        )?;
        Ok(Model {
            net: Transformer {
                embed: wte,
                blocks,
                norm: ln_f,
                head,
                rotary,
            },
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
