//! The Qwen2/Qwen3 tensor layout several families share (Dream and its conversions, SDAR, the
//! Fast-dLLM v2 and dllm A2D conversions): `model.embed_tokens`, `model.layers.N.self_attn.
//! {q,k,v,o}_proj` (Qwen2 with q/k/v biases; Qwen3 without, and with per-head `q_norm`/
//! `k_norm`), `mlp.{gate,up,down}_proj`, `input_layernorm`, `post_attention_layernorm`,
//! `model.norm`, and `lm_head` unless it is tied to the embedding. Each family's file reads its
//! own config.json into a [`QwenShape`]; what differs between them (mask, logit shift, decoding
//! loop) lives in generation code.

use candle_core::Result;
use candle_nn::{embedding, VarBuilder};

use super::dense::Dense;
use super::layers::{
    norm, Attention, AttentionNames, AttentionShape, Block, HeadNorms, Mlp, MlpNames, Rotary,
    Transformer,
};

/// The sizes and switches of one Qwen-layout network.
#[derive(Debug, Clone, Copy)]
pub struct QwenShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
    pub max_positions: usize,
    /// Qwen2: q/k/v projections carry biases.
    pub qkv_bias: bool,
    /// Qwen3: RMS norms over each head's queries and keys.
    pub head_norms: bool,
}

const ATTENTION: AttentionNames = AttentionNames {
    q: "q_proj",
    k: "k_proj",
    v: "v_proj",
    o: "o_proj",
};

const MLP: MlpNames = MlpNames {
    gate: "gate_proj",
    up: "up_proj",
    down: "down_proj",
};

pub fn build(s: &QwenShape, vb: VarBuilder) -> Result<Transformer> {
    let m = vb.pp("model");
    let embed = embedding(s.vocab, s.hidden, m.pp("embed_tokens"))?;
    let mut blocks = Vec::with_capacity(s.layers);
    for i in 0..s.layers {
        let l = m.pp("layers").pp(i);
        let a = l.pp("self_attn");
        let head_norms = match s.head_norms {
            true => Some(HeadNorms {
                q: norm(s.head_dim, s.rms_norm_eps, a.pp("q_norm"))?,
                k: norm(s.head_dim, s.rms_norm_eps, a.pp("k_norm"))?,
            }),
            false => None,
        };
        let attn = Attention::new(
            AttentionShape {
                hidden: s.hidden,
                heads: s.heads,
                kv_heads: s.kv_heads,
                head_dim: s.head_dim,
                qkv_bias: s.qkv_bias,
            },
            &ATTENTION,
            head_norms,
            a,
        )?;
        let mlp = Mlp::new(s.hidden, s.intermediate, &MLP, l.pp("mlp"))?;
        blocks.push(Block::new(
            norm(s.hidden, s.rms_norm_eps, l.pp("input_layernorm"))?,
            attn,
            norm(s.hidden, s.rms_norm_eps, l.pp("post_attention_layernorm"))?,
            mlp,
        ));
    }
    let norm_f = norm(s.hidden, s.rms_norm_eps, m.pp("norm"))?;
    let head = if s.tie_word_embeddings {
        Dense::from_weight(embed.embeddings(), None)?
    } else {
        Dense::fused(s.hidden, &[("lm_head", s.vocab)], false, &vb)?
    };
    let rotary = Rotary::new(
        s.rope_theta,
        s.head_dim,
        s.max_positions,
        vb.dtype(),
        vb.device(),
    )?;
    Ok(Transformer {
        embed,
        blocks,
        norm: norm_f,
        head,
        rotary,
    })
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    1_000_000.0
}
fn default_act() -> candle_nn::Activation {
    candle_nn::Activation::Silu
}
fn default_max_positions() -> usize {
    32_768
}

/// The config.json fields of a Qwen2/Qwen3 network that SDAR and the A2D conversions share,
/// flattened into each family's own `Config` (Dream keeps its own, with Qwen2's older
/// defaults).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Fields {
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
    pub hidden_act: candle_nn::Activation,
    #[serde(default)]
    pub mask_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<super::dream::OneOrMany>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    pub use_sliding_window: bool,
}

impl Fields {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map_or_else(Vec::new, super::dream::OneOrMany::ids)
    }

    /// Values that cannot work, named by their config.json field.
    pub fn check(&self) -> std::result::Result<(), super::check::Invalid> {
        use super::check;
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

    /// A setting the network does not implement, by its config.json field.
    pub fn unsupported(&self) -> Option<(&'static str, String)> {
        if self.hidden_act != candle_nn::Activation::Silu {
            return Some((
                "hidden_act",
                format!("{:?}", self.hidden_act).to_lowercase(),
            ));
        }
        if self.use_sliding_window {
            return Some(("use_sliding_window", "true".into()));
        }
        match &self.rope_scaling {
            Some(s) if !s.is_null() => Some(("rope_scaling", s.to_string())),
            _ => None,
        }
    }

    /// The network's shape, with the layout's own switches.
    pub fn shape(&self, qkv_bias: bool, head_norms: bool) -> QwenShape {
        QwenShape {
            hidden: self.hidden_size,
            intermediate: self.intermediate_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.kv_heads(),
            head_dim: self.head_dim(),
            vocab: self.vocab_size,
            rope_theta: self.rope_theta,
            rms_norm_eps: self.rms_norm_eps,
            tie_word_embeddings: self.tie_word_embeddings,
            max_positions: self.max_position_embeddings,
            qkv_bias,
            head_norms,
        }
    }
}

/// A config.json on the Qwen layout: its loading needs are the shared fields', plus whatever
/// the family checks besides.
pub trait QwenConfig: for<'de> serde::Deserialize<'de> {
    fn qwen(&self) -> &Fields;
    fn check(&self) -> std::result::Result<(), super::check::Invalid> {
        self.qwen().check()
    }
    fn unsupported(&self) -> Option<(&'static str, String)> {
        self.qwen().unsupported()
    }
}

impl<C: QwenConfig> super::model::FamilyConfig for C {
    const LAYERS: &'static str = "num_hidden_layers";
    fn layers(&self) -> usize {
        self.qwen().num_hidden_layers
    }
    fn check(&self) -> std::result::Result<(), super::check::Invalid> {
        QwenConfig::check(self)
    }
    fn unsupported(&self) -> Option<(&'static str, String)> {
        QwenConfig::unsupported(self)
    }
    fn mask(&self) -> Option<u32> {
        self.qwen().mask_token_id
    }
    fn eos(&self) -> Vec<u32> {
        self.qwen().eos_ids()
    }
    fn rows(&self) -> usize {
        self.qwen().vocab_size
    }
}
