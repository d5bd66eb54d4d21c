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

    /// `prev` (if any) followed by `fresh`: a cache grown by the positions after it.
    pub fn after(prev: Option<&KvCache>, fresh: KvCache) -> Result<KvCache> {
        match prev {
            Some(c) => c.extended(&fresh),
            None => Ok(fresh),
        }
    }

    /// This cache followed by `more`, the keys and values of the positions after it.
    pub fn extended(&self, more: &KvCache) -> Result<KvCache> {
        if self.layers.len() != more.layers.len() {
            candle_core::bail!(
                "extending a cache of {} layers with one of {}",
                self.layers.len(),
                more.layers.len()
            );
        }
        let layers = self
            .layers
            .iter()
            .zip(&more.layers)
            .map(|(a, b)| {
                Ok(LayerKv {
                    k: Tensor::cat(&[&a.k, &b.k], 2)?,
                    v: Tensor::cat(&[&a.v, &b.v], 2)?,
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
    /// Which keys each fed position may attend to.
    pub visibility: Visibility,
}

/// Which keys a query attends to within its canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// Every key of the canvas (LLaDA, Dream, mdlm conversions).
    #[default]
    All,
    /// Causal across blocks of `size` positions and bidirectional inside a block: a query sees
    /// every key whose block is not after its own (SDAR, Fast-dLLM v2, bd3lm). Blocks start at
    /// the positions `p` with `p % size == phase`: 0 when they are counted from the canvas's
    /// start (SDAR), the prompt's length mod `size` when from the span's (bd3lm).
    BlockCausal { size: usize, phase: usize },
}

impl Visibility {
    /// Blocks of `size` counted from canvas position 0.
    pub fn blocks(size: usize) -> Visibility {
        Visibility::BlockCausal { size, phase: 0 }
    }
}

impl Visibility {
    /// The additive mask, `(n, keys)` in f32, for `n` queries at canvas positions
    /// `offset..offset + n` over keys at positions `0..keys`; `None` when nothing is hidden.
    pub fn mask(
        self,
        offset: usize,
        n: usize,
        keys: usize,
        device: &candle_core::Device,
    ) -> Result<Option<Tensor>> {
        let Visibility::BlockCausal { size, phase } = self else {
            return Ok(None);
        };
        let block = size.max(1);
        // Shifted so that block boundaries fall on multiples of `block`.
        let shift = (block - phase % block) % block;
        // The end (exclusive) of the block that holds position `p`.
        let end = |p: usize| ((p + shift) / block + 1) * block - shift;
        if end(offset) >= keys {
            // The first query's block already reaches the last key: nothing is hidden.
            return Ok(None);
        }
        let mut data = vec![0f32; n * keys];
        for (r, row) in data.chunks_mut(keys.max(1)).enumerate() {
            let visible = end(offset + r);
            for x in row.iter_mut().skip(visible) {
                *x = f32::NEG_INFINITY;
            }
        }
        Tensor::from_vec(data, (n, keys), device).map(Some)
    }
}

impl<'a> Segment<'a> {
    /// A whole canvas, nothing cached or kept.
    pub fn whole(ids: &'a [u32]) -> Segment<'a> {
        Segment {
            ids,
            offset: 0,
            cache: None,
            keep: false,
            visibility: Visibility::All,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(v: Visibility, offset: usize, n: usize, keys: usize) -> Option<Vec<Vec<bool>>> {
        let m = v
            .mask(offset, n, keys, &candle_core::Device::Cpu)
            .unwrap()?;
        let rows: Vec<Vec<f32>> = m.to_vec2().unwrap();
        Some(
            rows.into_iter()
                .map(|r| r.into_iter().map(|x| x.is_infinite()).collect())
                .collect(),
        )
    }

    #[test]
    fn block_causal_hides_only_later_blocks() {
        assert!(hidden(Visibility::All, 0, 6, 6).is_none());
        let m = hidden(Visibility::blocks(2), 0, 5, 5).unwrap();
        // Positions 0,1 see blocks 0 only; 2,3 see 0..4; 4 sees everything.
        assert_eq!(m[0], vec![false, false, true, true, true]);
        assert_eq!(m[1], vec![false, false, true, true, true]);
        assert_eq!(m[3], vec![false, false, false, false, true]);
        assert_eq!(m[4], vec![false; 5]);
        // A block fed over a cache of the blocks before it sees all of it and itself.
        assert!(hidden(Visibility::blocks(4), 8, 4, 12).is_none());
        // A window starting mid-block counts blocks from canvas position 0.
        let m = hidden(Visibility::blocks(4), 6, 3, 12).unwrap();
        assert!(!m[0][7]);
        assert!(m[0][8]);
        assert!(!m[2][11]);
        // Blocks counted from a span at 6 (phase 2): 2..6 and 6..10 are blocks.
        let m = hidden(Visibility::BlockCausal { size: 4, phase: 2 }, 0, 10, 10).unwrap();
        assert_eq!(
            m[0],
            [false, false, true, true, true, true, true, true, true, true]
        );
        assert!(!m[2][5]);
        assert!(m[2][6]);
        assert!(!m[6][9]);
    }
}
