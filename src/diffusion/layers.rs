//! The transformer pieces both families share: rotate-half RoPE, bidirectional multi-head (or
//! grouped-query) attention with no mask, SwiGLU feed-forward and pre-norm residual blocks.
//! Each family file maps its own tensor names onto these.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{linear_b, linear_no_bias, rms_norm, Linear, RmsNorm, VarBuilder};

pub struct Rotary {
    cos: Tensor,
    sin: Tensor,
}

impl Rotary {
    /// Tables for positions `0..max_positions`, computed in f32 (both reference implementations
    /// compute RoPE in full precision) and stored in the model's dtype.
    pub fn new(
        theta: f64,
        head_dim: usize,
        max_positions: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Rotary> {
        let inv_freq: Vec<f32> = (0..head_dim / 2)
            .map(|i| 1.0 / theta.powf(2.0 * i as f64 / head_dim as f64) as f32)
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, head_dim / 2), device)?;
        let positions = Tensor::arange(0u32, max_positions as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((max_positions, 1))?;
        let freqs = positions.broadcast_mul(&inv_freq)?;
        Ok(Rotary {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
        })
    }

    pub fn max_positions(&self) -> usize {
        self.cos.dim(0).unwrap_or(0)
    }

    /// Apply to `(batch, heads, seq, head_dim)`.
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let seq = x.dim(2)?;
        let cos = self.cos.narrow(0, 0, seq)?;
        let sin = self.sin.narrow(0, 0, seq)?;
        candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
    }
}

/// Tensor names of one attention layer, relative to its VarBuilder.
pub struct AttentionNames {
    pub q: &'static str,
    pub k: &'static str,
    pub v: &'static str,
    pub o: &'static str,
}

pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    pub fn new(
        hidden: usize,
        heads: usize,
        kv_heads: usize,
        qkv_bias: bool,
        names: &AttentionNames,
        vb: VarBuilder,
    ) -> Result<Attention> {
        let head_dim = hidden / heads;
        Ok(Attention {
            q: linear_b(hidden, heads * head_dim, qkv_bias, vb.pp(names.q))?,
            k: linear_b(hidden, kv_heads * head_dim, qkv_bias, vb.pp(names.k))?,
            v: linear_b(hidden, kv_heads * head_dim, qkv_bias, vb.pp(names.v))?,
            o: linear_no_bias(heads * head_dim, hidden, vb.pp(names.o))?,
            heads,
            kv_heads,
            head_dim,
        })
    }

    fn forward(&self, x: &Tensor, rotary: &Rotary) -> Result<Tensor> {
        let (b, seq, _) = x.dims3()?;
        let split = |t: Tensor, n: usize| t.reshape((b, seq, n, self.head_dim))?.transpose(1, 2);
        let q = rotary.apply(&split(self.q.forward(x)?, self.heads)?)?;
        let k = rotary.apply(&split(self.k.forward(x)?, self.kv_heads)?)?;
        let v = split(self.v.forward(x)?, self.kv_heads)?.contiguous()?;
        let groups = self.heads / self.kv_heads;
        let k = repeat_kv(k, groups)?;
        let v = repeat_kv(v, groups)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        // No mask: every position attends to every other (the models are bidirectional).
        let scores = (q.matmul(&k.t()?)? * scale)?;
        let probs =
            candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(v.dtype())?;
        let out =
            probs
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, seq, self.heads * self.head_dim))?;
        self.o.forward(&out)
    }
}

fn repeat_kv(x: Tensor, groups: usize) -> Result<Tensor> {
    if groups == 1 {
        return Ok(x);
    }
    let (b, kv, seq, d) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, kv, groups, seq, d))?
        .reshape((b, kv * groups, seq, d))
}

pub struct MlpNames {
    pub gate: &'static str,
    pub up: &'static str,
    pub down: &'static str,
}

/// `down(silu(gate(x)) * up(x))`.
pub struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    pub fn new(hidden: usize, inner: usize, names: &MlpNames, vb: VarBuilder) -> Result<Mlp> {
        Ok(Mlp {
            gate: linear_no_bias(hidden, inner, vb.pp(names.gate))?,
            up: linear_no_bias(hidden, inner, vb.pp(names.up))?,
            down: linear_no_bias(inner, hidden, vb.pp(names.down))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gated = (candle_nn::ops::silu(&self.gate.forward(x)?)? * self.up.forward(x)?)?;
        self.down.forward(&gated)
    }
}

/// A pre-norm residual block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
pub struct Block {
    attn_norm: RmsNorm,
    attn: Attention,
    mlp_norm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    pub fn new(attn_norm: RmsNorm, attn: Attention, mlp_norm: RmsNorm, mlp: Mlp) -> Block {
        Block {
            attn_norm,
            attn,
            mlp_norm,
            mlp,
        }
    }

    pub fn forward(&self, x: &Tensor, rotary: &Rotary) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.attn_norm.forward(x)?, rotary)?)?;
        let h = self.mlp.forward(&self.mlp_norm.forward(&x)?)?;
        x + h
    }
}

pub fn norm(size: usize, eps: f64, vb: VarBuilder) -> Result<RmsNorm> {
    rms_norm(size, eps, vb)
}

/// Gather rows `rows` of a `(seq, hidden)` matrix.
pub fn gather_rows(x: &Tensor, rows: &[usize]) -> Result<Tensor> {
    let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
    let idx = Tensor::from_vec(idx, rows.len(), x.device())?;
    x.index_select(&idx, 0)
}
