//! The transformer pieces every family shares: rotate-half RoPE, multi-head (or grouped-query)
//! attention that is bidirectional or block-causal, optional per-head query/key norms (Qwen3),
//! SwiGLU feed-forward, pre-norm residual blocks, and the stack of them. Each family file maps
//! its own tensor names onto these.
//!
//! Every pass runs over packed [`Segment`]s: the linear layers see all their rows at once and
//! attention runs per segment, over the segment's own rows and its cached keys and values.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{rms_norm, Embedding, RmsNorm, VarBuilder};

use super::cache::{KvCache, LayerKv, Pass, Segment};
use super::dense::Dense;

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

/// The sizes of one attention layer.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    /// Not always `hidden / heads` (Qwen3 and SDAR give it in config.json).
    pub head_dim: usize,
    pub qkv_bias: bool,
}

/// RMS norms over each head's queries and keys, before RoPE (Qwen3's `q_norm`/`k_norm`).
pub struct HeadNorms {
    pub q: RmsNorm,
    pub k: RmsNorm,
}

pub struct Attention {
    /// Queries, keys and values in one product.
    qkv: Dense,
    o: Dense,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    head_norms: Option<HeadNorms>,
}

impl Attention {
    pub fn new(
        shape: AttentionShape,
        names: &AttentionNames,
        head_norms: Option<HeadNorms>,
        vb: VarBuilder,
    ) -> Result<Attention> {
        let AttentionShape {
            hidden,
            heads,
            kv_heads,
            head_dim,
            qkv_bias,
        } = shape;
        let (q, kv) = (heads * head_dim, kv_heads * head_dim);
        let qkv = Dense::fused(
            hidden,
            &[(names.q, q), (names.k, kv), (names.v, kv)],
            qkv_bias,
            &vb,
        )?;
        Ok(Attention {
            qkv,
            o: Dense::fused(q, &[(names.o, hidden)], false, &vb)?,
            heads,
            kv_heads,
            head_dim,
            head_norms,
        })
    }

    /// `x` holds the segments' rows packed, `(1, rows, hidden)`. Keys and values of segments
    /// that asked to keep them are pushed onto `kept[i]`.
    fn forward(&self, x: &Tensor, pass: &mut LayerPass) -> Result<Tensor> {
        let (q, kv) = (self.heads * self.head_dim, self.kv_heads * self.head_dim);
        let qkv = Dense::split(&self.qkv.forward(x)?, &[q, kv, kv])?;
        let (q_all, k_all, v_all) = (&qkv[0], &qkv[1], &qkv[2]);
        let mut outs = Vec::with_capacity(pass.segments.len());
        let mut row = 0;
        for (i, seg) in pass.segments.iter().enumerate() {
            let n = seg.ids.len();
            let heads = |t: &Tensor, h: usize, norm: Option<&RmsNorm>| {
                let t = t.narrow(1, row, n)?.reshape((1, n, h, self.head_dim))?;
                let t = match norm {
                    Some(norm) => norm.forward(&t.contiguous()?)?,
                    None => t,
                };
                t.transpose(1, 2)
            };
            let (q_norm, k_norm) = match &self.head_norms {
                Some(h) => (Some(&h.q), Some(&h.k)),
                None => (None, None),
            };
            let q = pass
                .rotary
                .apply(&heads(q_all, self.heads, q_norm)?, seg.offset)?;
            let fresh = LayerKv {
                k: pass
                    .rotary
                    .apply(&heads(k_all, self.kv_heads, k_norm)?, seg.offset)?,
                v: heads(v_all, self.kv_heads, None)?.contiguous()?,
            };
            let context = match seg.cache {
                Some(cache) => cache.around(pass.layer, seg.offset, &fresh)?,
                None => fresh.clone(),
            };
            let mask = seg
                .visibility
                .mask(seg.offset, n, context.k.dim(2)?, q.device())?;
            outs.push(self.attend(&q, &context, mask.as_ref())?);
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

    /// Attention of `q`, `(1, heads, n, head_dim)`, over `kv`: `(1, n, heads·head_dim)`.
    /// `mask`, `(n, keys)` in f32, is added to the scores (0 or −∞); without one every query
    /// sees every key.
    ///
    /// Query heads that share a key head are stacked into one matrix, `(kv_heads, groups·n,
    /// head_dim)`, so keys and values are never repeated and each key head is one product.
    /// Queries go in chunks of rows so that no score buffer outgrows [`SCORE_BYTES`].
    fn attend(&self, q: &Tensor, kv: &LayerKv, mask: Option<&Tensor>) -> Result<Tensor> {
        let n = q.dim(2)?;
        let keys = kv.k.dim(2)?;
        let groups = self.heads / self.kv_heads;
        let stacked = groups * n;
        // Scaling the queries rather than the scores touches head_dim numbers a row, not one
        // per key.
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let q = (q.reshape((self.kv_heads, stacked, self.head_dim))? * scale)?;
        // Contiguous so that gemm packs it with vector copies (see `dense`).
        let kt = kv.k.squeeze(0)?.t()?.contiguous()?;
        let v = kv.v.squeeze(0)?;
        let per_row = self.kv_heads * keys * DType::F32.size_in_bytes();
        let rows = (SCORE_BYTES / per_row.max(1)).clamp(1, stacked);
        // Stacked row r is query r mod n, so the mask repeats once per query group.
        let mask = match mask {
            Some(m) if groups > 1 => Some(Tensor::cat(&vec![m; groups], 0)?),
            Some(m) => Some(m.clone()),
            None => None,
        };
        let mut outs = Vec::with_capacity(stacked.div_ceil(rows));
        for start in (0..stacked).step_by(rows) {
            let len = rows.min(stacked - start);
            let chunk = q.narrow(1, start, len)?;
            let mut scores = chunk.matmul(&kt)?.to_dtype(DType::F32)?;
            if let Some(m) = &mask {
                scores = scores.broadcast_add(&m.narrow(0, start, len)?)?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
            outs.push(probs.matmul(&v)?);
        }
        let out = match outs.len() {
            1 => outs.pop().expect("one chunk"),
            _ => Tensor::cat(&outs, 1)?,
        };
        out.reshape((1, self.heads, n, self.head_dim))?
            .transpose(1, 2)?
            .reshape((1, n, self.heads * self.head_dim))
    }
}

/// The largest attention score buffer one chunk of queries may need. Below glibc's largest
/// mmap threshold (32 MiB), freed buffers go back to the heap and are reused by the next
/// chunk, layer and step; above it every buffer is mapped fresh and faulted in page by page.
const SCORE_BYTES: usize = 8 << 20;

/// What every attention layer of one pass needs besides its input.
struct LayerPass<'p, 'a> {
    segments: &'p [Segment<'a>],
    rotary: &'p Rotary,
    layer: usize,
    kept: &'p mut [Option<Vec<LayerKv>>],
}

pub struct MlpNames {
    pub gate: &'static str,
    pub up: &'static str,
    pub down: &'static str,
}

/// `down(silu(gate(x)) * up(x))`.
pub struct Mlp {
    /// Gate and up projections in one product.
    gate_up: Dense,
    down: Dense,
    inner: usize,
}

impl Mlp {
    pub fn new(hidden: usize, inner: usize, names: &MlpNames, vb: VarBuilder) -> Result<Mlp> {
        Ok(Mlp {
            gate_up: Dense::fused(
                hidden,
                &[(names.gate, inner), (names.up, inner)],
                false,
                &vb,
            )?,
            down: Dense::fused(inner, &[(names.down, hidden)], false, &vb)?,
            inner,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let both = self.gate_up.forward(x)?;
        let gated = if both.device().is_cpu() && both.dtype() == DType::F32 {
            both.apply_op1_no_bwd(&SwiGlu)?
        } else {
            let parts = Dense::split(&both, &[self.inner, self.inner])?;
            (candle_nn::ops::silu(&parts[0])? * &parts[1])?
        };
        self.down.forward(&gated)
    }
}

/// `silu(gate) * up` from the fused `[gate | up]` rows in one parallel pass. On the CPU the two
/// element-wise operations it replaces ran one after the other on one thread (see
/// `cpu_tuning`), over strided halves of the fused output.
struct SwiGlu;

impl candle_core::CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use rayon::prelude::*;
        let (Some((start, end)), candle_core::CpuStorage::F32(data)) =
            (layout.contiguous_offsets(), storage)
        else {
            candle_core::bail!("swiglu: a contiguous f32 input");
        };
        let mut dims = layout.shape().dims().to_vec();
        let width = dims.last().copied().unwrap_or(0);
        if width % 2 != 0 {
            candle_core::bail!("swiglu: the last dimension ({width}) must be even");
        }
        let inner = width / 2;
        let rows = &data[start..end];
        let mut out = vec![0f32; rows.len() / 2];
        out.par_chunks_mut(inner.max(1))
            .zip(rows.par_chunks(width.max(1)))
            .for_each(|(o, row)| {
                let (gate, up) = row.split_at(inner);
                for ((o, &g), &u) in o.iter_mut().zip(gate).zip(up) {
                    // candle's SiLU, to the bit.
                    *o = g / (1.0 + (-g).exp()) * u;
                }
            });
        if let Some(last) = dims.last_mut() {
            *last = inner;
        }
        Ok((candle_core::CpuStorage::F32(out), dims.into()))
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
    pub head: Dense,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_swiglu_is_silu_times_up_to_the_bit() {
        let x = Tensor::randn(0f32, 3.0, (2, 5, 14), &Device::Cpu).unwrap();
        let fused = x.apply_op1_no_bwd(&SwiGlu).unwrap();
        let parts = Dense::split(&x, &[7, 7]).unwrap();
        let apart = (candle_nn::ops::silu(&parts[0]).unwrap() * &parts[1]).unwrap();
        assert_eq!(fused.dims(), &[2, 5, 7]);
        let a: Vec<f32> = fused.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = apart.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b);
        let odd = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(odd.apply_op1_no_bwd(&SwiGlu).is_err());
    }
}
