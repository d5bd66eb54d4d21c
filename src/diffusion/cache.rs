//! What one forward pass is fed, and the keys and values a pass can keep for later ones: the
//! types the network and the denoising loop share.
//!
//! A pass takes one or more [`Segment`]s, each a canvas or a window of one. Their rows are
//! packed end to end for every linear layer (one matrix product for the whole batch) and each
//! segment attends only to its own canvas, so canvases of different lengths share a pass
//! without padding.

use candle_core::{Result, Tensor};

/// One layer's keys (already rotated) and values at every position of a canvas,
/// `(1, kv_heads, positions, head_dim)`, not repeated across query groups.
#[derive(Debug, Clone)]
pub struct LayerKv {
    pub k: Tensor,
    pub v: Tensor,
}

/// Every layer's keys and values for one canvas: what Fast-dLLM's block caches keep between
/// the steps of a block.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub layers: Vec<LayerKv>,
}

impl KvCache {
    /// Canvas positions held.
    pub fn positions(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.k.dim(2).ok())
            .unwrap_or(0)
    }

    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| (l.k.elem_count() + l.v.elem_count()) * l.k.dtype().size_in_bytes())
            .sum()
    }

    /// The first `n` positions, copied so the memory of the rest is given back.
    pub fn prefix(&self, n: usize) -> Result<KvCache> {
        let cut = |t: &Tensor| t.narrow(2, 0, n)?.contiguous();
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(LayerKv {
                    k: cut(&l.k)?,
                    v: cut(&l.v)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers })
    }

    /// Keys and values of layer `layer` with positions `offset..offset + fresh.len` taken from
    /// `fresh` and the others from the cache. A cache holding exactly `offset` positions (a
    /// prefix) is extended; a longer one has that window replaced.
    pub fn around(&self, layer: usize, offset: usize, fresh: &LayerKv) -> Result<LayerKv> {
        let cached = &self.layers[layer];
        let n = fresh.k.dim(2)?;
        let held = cached.k.dim(2)?;
        if offset > held {
            candle_core::bail!("a window at {offset} is past the {held} cached positions");
        }
        let splice = |old: &Tensor, new: &Tensor| -> Result<Tensor> {
            let mut parts = Vec::with_capacity(3);
            if offset > 0 {
                parts.push(old.narrow(2, 0, offset)?);
            }
            parts.push(new.clone());
            if offset + n < held {
                parts.push(old.narrow(2, offset + n, held - offset - n)?);
            }
            Tensor::cat(&parts, 2)
        };
        Ok(LayerKv {
            k: splice(&cached.k, &fresh.k)?,
            v: splice(&cached.v, &fresh.v)?,
        })
    }
}

/// One canvas, or a window of one, in a packed forward pass.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// The token ids fed.
    pub ids: &'a [u32],
    /// Canvas position of `ids[0]` (its rotary position).
    pub offset: usize,
    /// Keys and values for the canvas positions not fed; `None` when `ids` is the whole canvas.
    pub cache: Option<&'a KvCache>,
    /// Return this pass's keys and values (the full pass that starts a cached block).
    pub keep: bool,
}

impl<'a> Segment<'a> {
    /// A whole canvas, nothing cached or kept.
    pub fn whole(ids: &'a [u32]) -> Segment<'a> {
        Segment {
            ids,
            offset: 0,
            cache: None,
            keep: false,
        }
    }
}

/// What a packed forward pass returns: hidden states before the final norm, `(rows, hidden)`,
/// with segment `i` at rows `starts[i]..starts[i] + len`, and the caches segments asked for.
pub struct Pass {
    pub hidden: Tensor,
    pub starts: Vec<usize>,
    pub kept: Vec<Option<KvCache>>,
}
