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
