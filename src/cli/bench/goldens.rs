//! `bench goldens`: the engine against the official implementations' saved outputs on the
//! device and precision asked for: whole-canvas logits, and greedy generations with and
//! without Fast-dLLM's caches, for the LLaDA and Dream fixtures. The CPU in f32 is what the
//! golden tests check; this is how a CUDA build, or bf16, is held to the same goldens.

use std::path::PathBuf;

use super::report::{col, data, Report, RowMeta, Value};
use crate::device::{dtype_name, DeviceSpec, Precision};
use crate::diffusion::golden;
use crate::diffusion::{DiffusionLm, Overrides};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder of tiny checkpoints and goldens (a source checkout's).
    #[arg(long, default_value = "tests/fixtures/diffusion")]
    pub fixtures: PathBuf,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: Precision,
    /// md, csv or jsonl.
    #[arg(short = 'o', long, default_value = "md")]
    pub output: super::report::Format,
}

const COLUMNS: [super::report::Column; 8] = [
    col("check", "check"),
    col("compared", "compared"),
    col("identical", "identical"),
    col("max_abs_diff", "max |Δlogit|"),
    col("rel_diff", "rel"),
    col("pass", "pass"),
    data("bar"),
    data("first_failure"),
];

/// The bars: f32 must give the reference's tokens; bf16 and f16 must stay within 2e-2 of the
/// logits' scale (max |Δ| / max |reference|), and their tokens may part where two candidates
/// are close. Measured on the CPU: bf16 gives 1.3e-2 (tiny-llada) and 1.7e-2 (tiny-dream), as
/// an 8-bit mantissa (2^-8 ≈ 3.9e-3 per rounding) compounded over two blocks would.
fn logit_bar(dtype: Precision) -> f32 {
    match dtype {
        Precision::F32 => 1e-4,
        _ => 2e-2,
    }
}

/// The table, and whether every check met its bar.
pub fn run(args: &Args) -> anyhow::Result<(Report, bool)> {
    let device = args.device.open()?;
    let dtype = args.dtype.dtype();
    let logits_file = args.fixtures.join("golden_logits.safetensors");
    let tensors = golden::tensors(&logits_file)?;
    let mut report = Report::new(&COLUMNS);
    report.note = format!(
        "goldens of {}; bars: logits rel ≤ {:e}{}",
        args.fixtures.display(),
        logit_bar(args.dtype),
        if args.dtype == Precision::F32 {
            ", generations identical"
        } else {
            "; generations reported, not required"
        }
    );
    let mut all_pass = true;
    for family in ["llada", "dream"] {
        let dir = args.fixtures.join(format!("tiny-{family}"));
        let model = DiffusionLm::load(&dir, &device, dtype, &Overrides::default())?;
        let meta = RowMeta {
            model: format!("tiny-{family}"),
            params: model.params,
            backend: args.device.to_string(),
            dtype: dtype_name(dtype).into(),
        };
        let l = golden::logits(&model, &tensors, family, &logits_file)?;
        let pass = l.rel_diff <= logit_bar(args.dtype);
        all_pass &= pass;
        report.push(
            &meta,
            vec![
                "logits".into(),
                l.positions.into(),
                (l.positions - l.argmax_mismatches).into(),
                format!("{:.2e}", l.max_abs_diff).into(),
                format!("{:.2e}", l.rel_diff).into(),
                verdict(pass).into(),
                Value::Num(f64::from(logit_bar(args.dtype)), 6),
                String::new().into(),
            ],
        );
        for (file, exact) in [
            ("golden_generations.json", false),
            ("golden_cache.json", family == "llada"),
        ] {
            let cases = golden::cases(&args.fixtures.join(file), family)?;
            let o = golden::run(&model, &cases, exact)?;
            let pass = o.identical == o.compared || args.dtype != Precision::F32;
            all_pass &= pass;
            report.push(
                &meta,
                vec![
                    file.trim_start_matches("golden_")
                        .trim_end_matches(".json")
                        .into(),
                    o.compared.into(),
                    o.identical.into(),
                    String::new().into(),
                    String::new().into(),
                    verdict(pass).into(),
                    String::new().into(),
                    o.failures.first().cloned().unwrap_or_default().into(),
                ],
            );
        }
    }
    Ok((report, all_pass))
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "yes"
    } else {
        "NO"
    }
}
