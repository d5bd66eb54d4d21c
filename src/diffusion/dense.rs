//! Linear layers kept in the layout the CPU's matrix multiply reads fastest, and projections
//! that read the same input fused into one.
//!
//! Checkpoints store a weight as `(out, in)`, so `x · Wᵀ` hands gemm a right operand whose rows
//! are strided. gemm turns a row-major product around (it computes `Cᵀ = W · xᵀ`), which makes
//! that weight the left operand in the orientation it packs element by element: a strided
//! scalar copy of every weight on every call, 17% of a 256-token step on the 32M Dream shape.
//! Transposed once at load to a contiguous `(in, out)`, the weight packs with vector copies.
//! The same holds on CUDA and Metal, whose GEMMs take either orientation.

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

pub struct Dense {
    /// `(in, out)`, contiguous.
    wt: Tensor,
    bias: Option<Tensor>,
}

impl Dense {
    /// One layer from a checkpoint's `(out, in)` weight.
    pub fn from_weight(w: &Tensor, bias: Option<Tensor>) -> Result<Dense> {
        Ok(Dense {
            wt: w.t()?.contiguous()?,
            bias,
        })
    }

    /// The layers `names` (each `(out, in)` under `vb.pp(name)`), stacked along their outputs
    /// so one product computes them all; [`Dense::split`] takes the parts apart again.
    pub fn fused(
        in_dim: usize,
        parts: &[(&str, usize)],
        bias: bool,
        vb: &VarBuilder,
    ) -> Result<Dense> {
        let mut weights = Vec::with_capacity(parts.len());
        let mut biases = Vec::with_capacity(parts.len());
        for &(name, out) in parts {
            weights.push(vb.pp(name).get((out, in_dim), "weight")?);
            if bias {
                biases.push(vb.pp(name).get(out, "bias")?);
            }
        }
        let w = Tensor::cat(&weights, 0)?;
        let b = if bias {
            Some(Tensor::cat(&biases, 0)?)
        } else {
            None
        };
        Dense::from_weight(&w, b)
    }

    /// `x · Wᵀ + b` over the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let in_dim = dims.pop().unwrap_or(1);
        let rows = dims.iter().product::<usize>();
        let y = x.reshape((rows, in_dim))?.matmul(&self.wt)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        dims.push(self.wt.dim(1)?);
        y.reshape(dims)
    }

    /// Split the last dimension of a fused output into parts of the given widths.
    pub fn split(y: &Tensor, widths: &[usize]) -> Result<Vec<Tensor>> {
        let mut start = 0;
        let mut out = Vec::with_capacity(widths.len());
        for &w in widths {
            out.push(y.narrow(D::Minus1, start, w)?);
            start += w;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn fused_layers_compute_what_each_computes_alone() {
        let device = Device::Cpu;
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &device);
        let init = candle_nn::init::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        for (name, out) in [("a", 5usize), ("b", 3)] {
            vb.pp(name)
                .get_with_hints((out, 4), "weight", init)
                .unwrap();
            vb.pp(name).get_with_hints(out, "bias", init).unwrap();
        }
        let fused = Dense::fused(4, &[("a", 5), ("b", 3)], true, &vb).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 6, 4), &device).unwrap();
        let parts = Dense::split(&fused.forward(&x).unwrap(), &[5, 3]).unwrap();
        for (part, (name, out)) in parts.iter().zip([("a", 5), ("b", 3)]) {
            let w = vb.pp(name).get((out, 4), "weight").unwrap();
            let b = vb.pp(name).get(out, "bias").unwrap();
            let alone = candle_nn::Linear::new(w, Some(b));
            let want = candle_nn::Module::forward(&alone, &x).unwrap();
            let diff = (part - want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-5, "{name}: off by {diff}");
        }
    }
}
