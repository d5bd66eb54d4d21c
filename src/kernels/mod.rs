//! The per-step work over the vocabulary as candle ops, with a CUDA kernel (`kernels/vocab.cu`)
//! and a CPU reference for each.
//!
//! - [`row_stats`]: for each logits row, the best token other than the mask, its probability,
//!   the two largest probabilities, Σ p ln p and the log-normaliser, in one pass and without the
//!   softmax. On CUDA a step then brings back six floats per decoded position instead of a
//!   vocabulary-wide row.
//! - [`select_commits`]: which positions of each canvas a step commits, top-k or at a threshold,
//!   with the tie rule of `diffusion::generate::pick`.
//!
//! The CPU forms are the references the CUDA kernels are tested against (`cargo test --features
//! cuda kernels` on a machine with a GPU; `ouroboros bench kernels` from a release binary).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

pub mod check;

/// What one logits row says about its position, as the samplers read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowStats {
    /// The most probable token other than the banned one (the first, on ties).
    pub token: u32,
    /// Its probability, the banned token's mass kept in the normaliser.
    pub p_token: f64,
    /// The largest and second-largest probabilities over every token.
    pub p_top1: f64,
    pub p_top2: f64,
    /// Σ p ln p, the negative entropy.
    pub sum_p_ln_p: f64,
    pub logsumexp: f64,
}

/// Floats per row in the op's output.
const STATS: usize = 6;

/// Settings of a [`row_stats`] pass: the token never proposed (the mask) and an additive change
/// to some tokens first (the EOS policy: `-inf` suppresses, `-p` penalises).
#[derive(Debug, Clone, PartialEq)]
pub struct RowSpec {
    pub banned: u32,
    pub adjust: Vec<u32>,
    pub delta: f32,
}

/// The most ids [`RowSpec::adjust`] may hold (checkpoints list one to three EOS ids).
pub const MAX_ADJUST: usize = 8;

impl RowSpec {
    fn adjusted(&self, j: usize, x: f32) -> f32 {
        if self.adjust.iter().any(|&a| a as usize == j) {
            x + self.delta
        } else {
            x
        }
    }
}

/// Statistics of each row of `logits` ([rows, vocab], f32 or bf16, on any device).
pub fn row_stats(logits: &Tensor, spec: &RowSpec) -> candle_core::Result<Vec<RowStats>> {
    if spec.adjust.len() > MAX_ADJUST {
        candle_core::bail!(
            "row_stats: {} adjusted ids, at most {MAX_ADJUST}",
            spec.adjust.len()
        );
    }
    let logits = logits.contiguous()?;
    let out = logits.apply_op1_no_bwd(&RowStatsOp(spec.clone()))?;
    let flat = out.flatten_all()?.to_vec1::<f32>()?;
    Ok(flat.chunks_exact(STATS).map(decode).collect())
}

fn decode(o: &[f32]) -> RowStats {
    RowStats {
        token: o[0] as u32,
        p_token: o[1].into(),
        p_top1: o[2].into(),
        p_top2: o[3].into(),
        sum_p_ln_p: o[4].into(),
        logsumexp: o[5].into(),
    }
}

/// The CPU reference: two passes in f64, max then sums, over the adjusted row.
pub fn row_stats_reference(row: &[f32], spec: &RowSpec) -> RowStats {
    let x: Vec<f64> = row
        .iter()
        .enumerate()
        .map(|(j, &v)| spec.adjusted(j, v) as f64)
        .collect();
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = x.iter().map(|&v| (v - max).exp()).sum();
    let p = |v: f64| (v - max).exp() / sum;
    let mut best: Option<usize> = None;
    let (mut top1, mut top2) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut sum_p_ln_p = 0.0;
    for (j, &v) in x.iter().enumerate() {
        if v == f64::NEG_INFINITY {
            continue;
        }
        if j != spec.banned as usize && best.is_none_or(|b| v > x[b]) {
            best = Some(j);
        }
        if v > top1 {
            top2 = top1;
            top1 = v;
        } else if v > top2 {
            top2 = v;
        }
        sum_p_ln_p += p(v) * (v - max - sum.ln());
    }
    RowStats {
        token: best.unwrap_or(row.len().saturating_sub(1)) as u32,
        p_token: best.map_or(0.0, |b| p(x[b])),
        p_top1: p(top1),
        p_top2: if top2 == f64::NEG_INFINITY {
            0.0
        } else {
            p(top2)
        },
        sum_p_ln_p,
        logsumexp: max + sum.ln(),
    }
}

struct RowStatsOp(RowSpec);

/// A contiguous 2-D layout's (start, rows, vocab).
fn rows_of(layout: &Layout, op: &str) -> candle_core::Result<(usize, usize, usize)> {
    let (start, _) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: the input must be contiguous")))?;
    match layout.dims() {
        &[rows, cols] => Ok((start, rows, cols)),
        dims => candle_core::bail!("{op}: expected [rows, columns], got {dims:?}"),
    }
}

impl CustomOp1 for RowStatsOp {
    fn name(&self) -> &'static str {
        "row_stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, rows, vocab) = rows_of(l, self.name())?;
        let data: Vec<f32> = match s {
            CpuStorage::F32(v) => v[start..start + rows * vocab].to_vec(),
            CpuStorage::BF16(v) => v[start..start + rows * vocab]
                .iter()
                .map(|x| x.to_f32())
                .collect(),
            other => candle_core::bail!("row_stats: f32 or bf16 logits, not {:?}", other.dtype()),
        };
        let mut out = Vec::with_capacity(rows * STATS);
        for row in data.chunks_exact(vocab.max(1)).take(rows) {
            let r = row_stats_reference(row, &self.0);
            out.extend([
                r.token as f32,
                r.p_token as f32,
                r.p_top1 as f32,
                r.p_top2 as f32,
                r.sum_p_ln_p as f32,
                r.logsumexp as f32,
            ]);
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, STATS))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::row_stats(&self.0, s, l)
    }
}

/// How a step chooses among a canvas's candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    /// The k most confident.
    TopK(usize),
    /// Every one at or above τ, and always the most confident.
    Threshold(f32),
}

/// For `confidences` [canvases, n] (padding at `-inf`), a [canvases, n] f32 tensor with 1
/// where the position is committed.
pub fn select_commits(confidences: &Tensor, rule: Selection) -> candle_core::Result<Tensor> {
    confidences
        .to_dtype(DType::F32)?
        .contiguous()?
        .apply_op1_no_bwd(&SelectOp(rule))
}

/// The CPU reference: one canvas's committed positions, in pick.rs's order of confidence.
pub fn select_reference(confidences: &[f32], rule: Selection) -> Vec<bool> {
    let mut order: Vec<usize> = (0..confidences.len()).collect();
    order.sort_by(|&a, &b| confidences[b].total_cmp(&confidences[a]).then(a.cmp(&b)));
    let mut out = vec![false; confidences.len()];
    for (rank, &j) in order.iter().enumerate() {
        let take = match rule {
            Selection::TopK(k) => rank < k,
            Selection::Threshold(tau) => rank == 0 || confidences[j] >= tau,
        };
        out[j] = take && confidences[j] != f32::NEG_INFINITY;
    }
    out
}

struct SelectOp(Selection);

impl CustomOp1 for SelectOp {
    fn name(&self) -> &'static str {
        "select_commits"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, canvases, n) = rows_of(l, self.name())?;
        let CpuStorage::F32(v) = s else {
            candle_core::bail!("select_commits: f32 confidences");
        };
        let mut out = Vec::with_capacity(canvases * n);
        for c in v[start..start + canvases * n]
            .chunks_exact(n.max(1))
            .take(canvases)
        {
            out.extend(
                select_reference(c, self.0)
                    .into_iter()
                    .map(|b| if b { 1f32 } else { 0f32 }),
            );
        }
        Ok((CpuStorage::F32(out), Shape::from((canvases, n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::select(self.0, s, l)
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::WrapErr;
    use candle_core::{CudaStorage, DType, Layout, Shape};

    use super::{rows_of, RowSpec, Selection, STATS};

    /// nvcc's PTX of kernels/vocab.cu, built by build.rs for $CUDA_COMPUTE_CAP.
    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/vocab.ptx"));
    const MODULE: &str = "ouroboros_vocab";
    const THREADS: u32 = 256;

    pub fn row_stats(
        spec: &RowSpec,
        s: &CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (start, rows, vocab) = rows_of(l, "row_stats")?;
        let dev = s.device();
        let name = match s.dtype() {
            DType::F32 => "row_stats_f32",
            DType::BF16 => "row_stats_bf16",
            other => candle_core::bail!("row_stats: f32 or bf16 logits, not {other:?}"),
        };
        let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
        // One dummy id keeps the buffer non-empty; n_adjust says how many are real.
        let mut ids: Vec<i32> = spec.adjust.iter().map(|&a| a as i32).collect();
        let n_adjust = ids.len() as i32;
        ids.push(-1);
        let ids = dev.clone_htod(&ids)?;
        let out = dev.alloc_zeros::<f32>(rows * STATS)?;
        let cfg = LaunchConfig {
            grid_dim: (rows as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let (stride, vocab, banned) = (vocab as i64, vocab as i32, spec.banned as i32);
        let delta = spec.delta;
        // Declared before the builder, which borrows them until the launch.
        let (f32_rows, bf16_rows);
        let mut b = func.builder();
        match s.dtype() {
            DType::F32 => {
                f32_rows = s.as_cuda_slice::<f32>()?.slice(start..);
                b.arg(&f32_rows);
            }
            _ => {
                bf16_rows = s.as_cuda_slice::<half::bf16>()?.slice(start..);
                b.arg(&bf16_rows);
            }
        }
        b.arg(&stride)
            .arg(&vocab)
            .arg(&banned)
            .arg(&ids)
            .arg(&n_adjust)
            .arg(&delta)
            .arg(&out);
        // SAFETY: the arguments match row_stats_*'s signature; `out` holds rows * STATS floats
        // and each block writes only its own row's.
        unsafe { b.launch(cfg) }.w()?;
        let out = CudaStorage::wrap_cuda_slice(out, dev.clone());
        Ok((out, Shape::from((rows, STATS))))
    }

    pub fn select(
        rule: Selection,
        s: &CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (start, canvases, n) = rows_of(l, "select_commits")?;
        let dev = s.device();
        let func = dev.get_or_load_custom_func("select_commits", MODULE, PTX)?;
        let src = s.as_cuda_slice::<f32>()?.slice(start..);
        let out = dev.alloc_zeros::<f32>(canvases * n)?;
        let (k, tau) = match rule {
            Selection::TopK(k) => (k as i32, 0f32),
            Selection::Threshold(tau) => (-1i32, tau),
        };
        let n = n as i32;
        let cfg = LaunchConfig {
            grid_dim: (canvases as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = func.builder();
        b.arg(&src).arg(&n).arg(&k).arg(&tau).arg(&out);
        // SAFETY: the arguments match select_commits's signature; each block writes its row.
        unsafe { b.launch(cfg) }.w()?;
        let out = CudaStorage::wrap_cuda_slice(out, dev.clone());
        Ok((out, Shape::from((canvases, n as usize))))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::diffusion::sampler::{dream_candidate, Candidate, SamplerKind, TokenSampling};

    fn random_rows(rows: usize, vocab: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..rows * vocab)
            .map(|_| rng.random::<f32>() * 12.0 - 6.0)
            .collect()
    }

    fn spec(banned: u32) -> RowSpec {
        RowSpec {
            banned,
            adjust: Vec::new(),
            delta: 0.0,
        }
    }

    #[test]
    fn the_reference_agrees_with_the_samplers_softmax() {
        let vocab = 300;
        let rows = random_rows(8, vocab, 1);
        let greedy = TokenSampling {
            temperature: 0.0,
            top_p: None,
            top_k: None,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for row in rows.chunks_exact(vocab) {
            let banned = 7;
            let s = row_stats_reference(row, &spec(banned));
            let mut pick = |k| dream_candidate(row, greedy, k, banned, &mut rng);
            let top: Candidate = pick(SamplerKind::MaskgitPlus);
            assert_eq!(s.token, top.token);
            assert!((s.p_token - top.confidence).abs() < 1e-12);
            let margin = pick(SamplerKind::TopkMargin).confidence;
            assert!((s.p_top1 - s.p_top2 - margin).abs() < 1e-12);
            // Dream adds 1e-10 inside its log; over 300 tokens that moves the sum by < 3e-8.
            let ent = pick(SamplerKind::Entropy).confidence;
            assert!(
                (s.sum_p_ln_p - ent).abs() < 1e-7,
                "{} vs {ent}",
                s.sum_p_ln_p
            );
        }
    }

    #[test]
    fn banned_and_adjusted_tokens() {
        let row = [1.0f32, 9.0, 3.0, 3.0];
        let s = row_stats_reference(&row, &spec(1));
        assert_eq!(
            s.token, 2,
            "the banned maximum is skipped; the first of a tie wins"
        );
        assert!(s.p_top1 > 0.99 && s.p_top2 < 0.01, "its mass stays");
        let suppress = RowSpec {
            banned: 1,
            adjust: vec![2],
            delta: f32::NEG_INFINITY,
        };
        let s = row_stats_reference(&row, &suppress);
        assert_eq!(s.token, 3);
        assert!(s.sum_p_ln_p.is_finite() && s.logsumexp.is_finite());
        let ties = row_stats_reference(&[2.0, 2.0], &spec(u32::MAX));
        assert_eq!((ties.token, ties.p_top1, ties.p_top2), (0, 0.5, 0.5));
    }

    #[test]
    fn the_op_runs_the_reference_per_row_in_f32_and_bf16() {
        let vocab = 97;
        let data = random_rows(5, vocab, 2);
        let t = Tensor::from_vec(data.clone(), (5, vocab), &Device::Cpu).unwrap();
        let ours = row_stats(&t, &spec(3)).unwrap();
        for (row, got) in data.chunks_exact(vocab).zip(&ours) {
            let want = row_stats_reference(row, &spec(3));
            assert_eq!(got.token, want.token);
            assert!((got.p_token - want.p_token).abs() < 1e-6);
        }
        let bf = row_stats(&t.to_dtype(DType::BF16).unwrap(), &spec(3)).unwrap();
        assert_eq!(bf.len(), 5);
        let wide = Tensor::zeros((2, 3, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(row_stats(&wide, &spec(0)).is_err());
    }

    #[test]
    fn selection_follows_pick_rs() {
        use crate::diffusion::generate::pick;
        let conf = [0.2f32, 0.95, 0.91, 0.95, f32::NEG_INFINITY];
        let cands: Vec<Candidate> = conf
            .iter()
            .map(|&c| Candidate {
                token: 0,
                confidence: c.into(),
            })
            .collect();
        let chosen = |v: Vec<bool>| -> Vec<usize> {
            let mut out: Vec<usize> = (0..v.len()).filter(|&j| v[j]).collect();
            out.sort();
            out
        };
        let sorted = |mut v: Vec<usize>| {
            v.sort();
            v
        };
        for k in 0..=4 {
            assert_eq!(
                chosen(select_reference(&conf, Selection::TopK(k))),
                sorted(pick::top_k(&cands, k)),
                "top {k}"
            );
        }
        for tau in [0.9f32, 0.93, 0.99] {
            let ours = chosen(select_reference(&conf, Selection::Threshold(tau)));
            let theirs = sorted(pick::by_threshold(&cands[..4], f64::from(tau)));
            assert_eq!(ours, theirs, "threshold {tau}");
        }
        let t = Tensor::from_vec(conf.to_vec(), (1, 5), &Device::Cpu).unwrap();
        let mask = select_commits(&t, Selection::TopK(2)).unwrap();
        assert_eq!(
            mask.to_vec2::<f32>().unwrap(),
            vec![vec![0., 1., 0., 1., 0.]]
        );
    }

    /// The CUDA kernels against the references above, on a GPU when this build and machine
    /// have one; otherwise the test says why it checked nothing.
    #[test]
    fn cuda_kernels_match_the_references() {
        match super::check::run(0) {
            Ok(report) => {
                println!("{report}");
                assert!(report.passed(), "{report}");
            }
            Err(skip) => println!("skipped: {skip}"),
        }
    }
}
