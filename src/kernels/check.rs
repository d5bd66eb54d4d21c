//! The CUDA kernels against their CPU references, on random logits of a real vocabulary's width
//! and on the edge cases (a banned maximum, ties, suppressed tokens), with what each costs: the
//! kernel's time against copying the rows to the host and scoring them there.
//!
//! The unit test runs this whenever the build and the machine have a GPU; `ouroboros bench
//! kernels` runs it from a release binary, which is how the GPU round trip checks it.

use std::fmt;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{row_stats, row_stats_reference, select_commits, select_reference, RowSpec, Selection};

/// Why the check could not run here.
#[derive(Debug, thiserror::Error)]
pub enum Skip {
    #[error("this build has no CUDA support (build with --features cuda)")]
    NoCudaBuild,
    #[error("no CUDA device {ordinal}: {source}")]
    NoDevice {
        ordinal: usize,
        #[source]
        source: candle_core::Error,
    },
    #[error("a kernel failed to run: {0}")]
    Failed(#[from] candle_core::Error),
}

/// One case's comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    pub name: String,
    pub rows: usize,
    pub vocab: usize,
    pub dtype: &'static str,
    /// Rows whose token differs from the reference's.
    pub token_mismatches: usize,
    /// The largest difference in any probability, Σ p ln p or log-normaliser, relative to
    /// max(1, |reference|).
    pub max_rel_diff: f64,
    /// Kernel, and copy-to-host plus CPU scoring, per call (median of the timed calls).
    pub kernel_ms: f64,
    pub host_ms: f64,
}

/// Every case, with the tolerance they were held to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub device: String,
    pub tolerance: f64,
    pub cases: Vec<CaseResult>,
    /// Selection checks that disagreed with the reference (canvases × rules).
    pub selection_mismatches: usize,
    pub selection_checks: usize,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.selection_mismatches == 0
            && self
                .cases
                .iter()
                .all(|c| c.token_mismatches == 0 && c.max_rel_diff <= self.tolerance)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kernels on {} (tolerance {:e})",
            self.device, self.tolerance
        )?;
        writeln!(
            f,
            "| case | rows | vocab | dtype | token mismatches | max rel diff | kernel ms | host ms |"
        )?;
        writeln!(f, "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")?;
        for c in &self.cases {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {:.2e} | {:.3} | {:.3} |",
                c.name,
                c.rows,
                c.vocab,
                c.dtype,
                c.token_mismatches,
                c.max_rel_diff,
                c.kernel_ms,
                c.host_ms
            )?;
        }
        write!(
            f,
            "selection: {} of {} checks differ; {}",
            self.selection_mismatches,
            self.selection_checks,
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

/// Probabilities are computed in f32 with fast exponentials on the device, in f64 here.
const TOLERANCE: f64 = 1e-4;

/// Run every case on CUDA device `ordinal`.
pub fn run(ordinal: usize) -> Result<Report, Skip> {
    if !cfg!(feature = "cuda") {
        return Err(Skip::NoCudaBuild);
    }
    let gpu = Device::new_cuda(ordinal).map_err(|source| Skip::NoDevice { ordinal, source })?;
    let mut cases = Vec::new();
    for (name, rows, vocab, dtype) in [
        ("random", 32, 152_064, DType::F32),
        ("random", 32, 152_064, DType::BF16),
        ("random", 256, 126_464, DType::BF16),
        ("small", 7, 300, DType::F32),
    ] {
        cases.push(random_case(&gpu, name, rows, vocab, dtype)?);
    }
    cases.push(edge_case(&gpu)?);
    let (selection_mismatches, selection_checks) = selection(&gpu)?;
    Ok(Report {
        device: format!("cuda:{ordinal}"),
        tolerance: TOLERANCE,
        cases,
        selection_mismatches,
        selection_checks,
    })
}

fn random_logits(rows: usize, vocab: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A peaked row, as a trained head gives: most of the mass on a few tokens.
    (0..rows * vocab)
        .map(|i| {
            let bump = if i % vocab < 4 { 8.0 } else { 0.0 };
            rng.random::<f32>() * 10.0 - 5.0 + bump
        })
        .collect()
}

fn random_case(
    gpu: &Device,
    name: &str,
    rows: usize,
    vocab: usize,
    dtype: DType,
) -> Result<CaseResult, Skip> {
    let host = Tensor::from_vec(
        random_logits(rows, vocab, rows as u64),
        (rows, vocab),
        &Device::Cpu,
    )?
    .to_dtype(dtype)?;
    let spec = RowSpec {
        banned: 2,
        adjust: vec![0, 5],
        delta: -1.5,
    };
    compare(gpu, name, &host, &spec)
}

/// Rows built to trip the corner cases: the banned token is the maximum, a tie for first, a
/// suppressed maximum, and a row of equal logits.
fn edge_case(gpu: &Device) -> Result<CaseResult, Skip> {
    let vocab = 1000;
    let mut data = vec![0f32; 4 * vocab];
    data[7] = 20.0; // row 0: banned (7) is the maximum
    data[vocab + 10] = 5.0; // row 1: tie between 10 and 900
    data[vocab + 900] = 5.0;
    data[2 * vocab + 5] = 30.0; // row 2: the maximum is suppressed
    data[2 * vocab + 6] = 3.0;
    let host = Tensor::from_vec(data, (4, vocab), &Device::Cpu)?;
    let spec = RowSpec {
        banned: 7,
        adjust: vec![5],
        delta: f32::NEG_INFINITY,
    };
    compare(gpu, "edges", &host, &spec)
}

fn compare(gpu: &Device, name: &str, host: &Tensor, spec: &RowSpec) -> Result<CaseResult, Skip> {
    let (rows, vocab) = host.dims2()?;
    let on_gpu = host.to_device(gpu)?;
    let reference: Vec<_> = host
        .to_dtype(DType::F32)?
        .to_vec2::<f32>()?
        .iter()
        .map(|r| row_stats_reference(r, spec))
        .collect();
    let ours = row_stats(&on_gpu, spec)?;
    let mut token_mismatches = 0;
    let mut max_rel_diff = 0f64;
    for (a, b) in ours.iter().zip(&reference) {
        token_mismatches += usize::from(a.token != b.token);
        for (x, y) in [
            (a.p_token, b.p_token),
            (a.p_top1, b.p_top1),
            (a.p_top2, b.p_top2),
            (a.sum_p_ln_p, b.sum_p_ln_p),
            (a.logsumexp, b.logsumexp),
        ] {
            max_rel_diff = max_rel_diff.max((x - y).abs() / y.abs().max(1.0));
        }
    }
    let kernel_ms = median_ms(|| row_stats(&on_gpu, spec).map(|_| ()))?;
    let host_ms = median_ms(|| {
        let rows = on_gpu.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        rows.iter().for_each(|r| {
            std::hint::black_box(row_stats_reference(r, spec));
        });
        Ok(())
    })?;
    Ok(CaseResult {
        name: name.to_string(),
        rows,
        vocab,
        dtype: crate::device::dtype_name(host.dtype()),
        token_mismatches,
        max_rel_diff,
        kernel_ms,
        host_ms,
    })
}

/// Median wall time of five calls after one warm-up. Each call ends by reading its result
/// back, so the device work is inside the timing.
fn median_ms(mut f: impl FnMut() -> candle_core::Result<()>) -> candle_core::Result<f64> {
    f()?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The selection kernel on random canvases with ties and padding, for several k and τ.
fn selection(gpu: &Device) -> Result<(usize, usize), Skip> {
    let (canvases, n) = (8, 40);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let conf: Vec<f32> = (0..canvases * n)
        .map(|i| match i % 7 {
            0 => 0.5, // ties
            6 if i % n > 30 => f32::NEG_INFINITY,
            _ => rng.random::<f32>(),
        })
        .collect();
    let t = Tensor::from_vec(conf.clone(), (canvases, n), gpu)?;
    let mut mismatches = 0;
    let mut checks = 0;
    let rules = [
        Selection::TopK(0),
        Selection::TopK(1),
        Selection::TopK(5),
        Selection::TopK(n),
        Selection::Threshold(0.5),
        Selection::Threshold(0.9),
        Selection::Threshold(2.0),
    ];
    for rule in rules {
        let ours = select_commits(&t, rule)?.to_vec2::<f32>()?;
        for (c, row) in conf.chunks_exact(n).zip(&ours) {
            let want = select_reference(c, rule);
            checks += 1;
            mismatches += usize::from(row.iter().zip(&want).any(|(&o, &w)| (o == 1.0) != w));
        }
    }
    Ok((mismatches, checks))
}
