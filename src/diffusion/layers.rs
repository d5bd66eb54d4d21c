//! The transformer pieces both families share: rotate-half RoPE, bidirectional multi-head (or
//! grouped-query) attention with no mask, SwiGLU feed-forward, pre-norm residual blocks, and the
//! stack of them. Each family file maps its own tensor names onto these.
//!
//! Every pass runs over packed [`Segment`]s: the linear layers see all their rows at once and
//! attention runs per segment, over the segment's own rows and its cached keys and values.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{linear_b, linear_no_bias, rms_norm, Embedding, Linear, RmsNorm, VarBuilder};

use super::cache::{KvCache, LayerKv, Pass, Segment};

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

    /// Apply to `(batch, heads, seq, head_dim)` whose first row sits at canvas position `offset`.
    fn apply(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let seq = x.dim(2)?;
        let cos = self.cos.narrow(0, offset, seq)?;
        let sin = self.sin.narrow(0, offset, seq)?;
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

    /// `x` holds the segments' rows packed, `(1, rows, hidden)`. Keys and values of segments
    /// that asked to keep them are pushed onto `kept[i]`.
    fn forward(&self, x: &Tensor, pass: &mut LayerPass) -> Result<Tensor> {
        let q_all = self.q.forward(x)?;
        let k_all = self.k.forward(x)?;
        let v_all = self.v.forward(x)?;
        let mut outs = Vec::with_capacity(pass.segments.len());
        let mut row = 0;
        for (i, seg) in pass.segments.iter().enumerate() {
            let n = seg.ids.len();
            let heads = |t: &Tensor, h: usize| {
                t.narrow(1, row, n)?
                    .reshape((1, n, h, self.head_dim))?
                    .transpose(1, 2)
            };
            let q = pass.rotary.apply(&heads(&q_all, self.heads)?, seg.offset)?;
            let fresh = LayerKv {
                k: pass
                    .rotary
                    .apply(&heads(&k_all, self.kv_heads)?, seg.offset)?,
                v: heads(&v_all, self.kv_heads)?.contiguous()?,
            };
            let context = match seg.cache {
                Some(cache) => cache.around(pass.layer, seg.offset, &fresh)?,
                None => fresh.clone(),
            };
            outs.push(self.attend(&q, &context)?);
            if let Some(kept) = pass.kept[i].as_mut() {
                kept.push(fresh);
            }
            row += n;
        }
        let out = match outs.len() {
            1 => outs.pop().expect("one output"),
            _ => Tensor::cat(&outs, 1)?,
        };
        self.o.forward(&out)
    }

    /// Bidirectional attention of `q`, `(1, heads, n, head_dim)`, over `kv`: `(1, n, hidden)`.
    fn attend(&self, q: &Tensor, kv: &LayerKv) -> Result<Tensor> {
        let n = q.dim(2)?;
        let groups = self.heads / self.kv_heads;
        let k = repeat_kv(kv.k.clone(), groups)?;
        let v = repeat_kv(kv.v.clone(), groups)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        // No mask: every position attends to every other (the models are bidirectional).
        let scores = (q.matmul(&k.t()?)? * scale)?;
        let probs =
            candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(v.dtype())?;
        probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((1, n, self.heads * self.head_dim))
    }
}

/// What every attention layer of one pass needs besides its input.
struct LayerPass<'p, 'a> {
    segments: &'p [Segment<'a>],
    rotary: &'p Rotary,
    layer: usize,
    kept: &'p mut [Option<Vec<LayerKv>>],
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

    fn forward(&self, x: &Tensor, pass: &mut LayerPass) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.attn_norm.forward(x)?, pass)?)?;
        let h = self.mlp.forward(&self.mlp_norm.forward(&x)?)?;
        x + h
    }
}

/// Embedding, blocks, final norm and output head: the whole network of either family.
pub struct Transformer {
    pub embed: Embedding,
    pub blocks: Vec<Block>,
    pub norm: RmsNorm,
    pub head: Linear,
    pub rotary: Rotary,
}

impl Transformer {
    /// One pass over packed segments.
    pub fn forward(&self, segments: &[Segment]) -> Result<Pass> {
        let mut ids = Vec::with_capacity(segments.iter().map(|s| s.ids.len()).sum());
        let mut starts = Vec::with_capacity(segments.len());
        for s in segments {
            starts.push(ids.len());
            ids.extend_from_slice(s.ids);
        }
        let device = self.embed.embeddings().device();
        let mut x = self
            .embed
            .forward(&Tensor::new(ids, device)?.unsqueeze(0)?)?;
        let mut kept: Vec<Option<Vec<LayerKv>>> = segments
            .iter()
            .map(|s| s.keep.then(|| Vec::with_capacity(self.blocks.len())))
            .collect();
        for (layer, block) in self.blocks.iter().enumerate() {
            let mut pass = LayerPass {
                segments,
                rotary: &self.rotary,
                layer,
                kept: &mut kept,
            };
            x = block.forward(&x, &mut pass)?;
        }
        Ok(Pass {
            hidden: x.squeeze(0)?,
            starts,
            kept: kept
                .into_iter()
                .map(|k| k.map(|layers| KvCache { layers }))
                .collect(),
        })
    }

    /// Final norm and output head on selected hidden rows, `(n, hidden)` → `(n, rows)`.
    pub fn logits(&self, hidden_rows: &Tensor) -> Result<Tensor> {
        self.head.forward(&self.norm.forward(hidden_rows)?)
    }

    pub fn max_positions(&self) -> usize {
        self.rotary.max_positions()
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
