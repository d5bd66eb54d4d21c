//! `ouroboros bench speed|infill|compression|...`: llama-bench-style tables of what the engine
//! costs and what it gets right. Each kind takes only its own flags; `bench --eval KIND` is
//! kept as another spelling (see [`rewrite_eval_alias`]), and `bench` alone is `bench speed`.

mod compression;
mod functional;
mod goldens;
mod infill;
mod kernels;
mod report;
mod speed;

use std::ffi::OsString;
use std::process::ExitCode;

use super::exit;
use super::gen_opts::ModelArgs;
use super::generator_opts::GeneratorArgs;
use crate::device::dtype_name;
use crate::engine::Engine;
use crate::evals::data::Benchmark;
use report::{Format, RowMeta};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub kind: Kind,
}

#[derive(Debug, clap::Subcommand)]
pub enum Kind {
    /// Denoising speed on a fixed prompt set, swept over steps, lengths, samplers.
    Speed(speed::Args),
    /// Quality against steps: masked function bodies written again, judged by the gate.
    Infill(infill::Args),
    /// What context compression costs: recall of called definitions per scorer and budget.
    Compression(compression::Args),
    /// HumanEval (164 problems) pass@k against decoding settings, run by its tests.
    #[command(name = "humaneval")]
    HumanEval(functional::Args),
    /// HumanEval-Infilling, single-line: prefix and suffix given, the hole filled.
    #[command(name = "humaneval-infill")]
    HumanEvalInfill(functional::Args),
    /// HumanEval-Infilling, multi-line.
    #[command(name = "humaneval-infill-multi")]
    HumanEvalInfillMulti(functional::Args),
    /// HumanEval-Infilling, random spans.
    #[command(name = "humaneval-infill-random")]
    HumanEvalInfillRandom(functional::Args),
    /// MBPP, the sanitized set (three-shot for base checkpoints).
    #[command(name = "mbpp")]
    Mbpp(functional::Args),
    /// The engine against the official implementations' goldens on a device and precision.
    Goldens(goldens::Args),
    /// The CUDA vocabulary kernels against their CPU references (needs a GPU).
    Kernels(kernels::Args),
}

/// What every kind of bench takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    #[command(flatten)]
    pub model: ModelArgs,
    /// md, csv or jsonl.
    #[arg(short = 'o', long, default_value = "md")]
    pub output: Format,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub generator: GeneratorArgs,
}

impl Common {
    /// The model, here or on the generator server.
    fn open(&self) -> anyhow::Result<Engine> {
        self.generator.open(&self.model.choice())
    }

    fn meta(engine: &Engine) -> RowMeta {
        RowMeta {
            model: engine.model.name.clone(),
            params: engine.model.params,
            backend: match &engine.remote {
                Some(r) => format!("remote {}", r.base),
                None => engine.device.to_string(),
            },
            dtype: dtype_name(engine.model.dtype).into(),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (report, format) = match args.kind {
        Kind::Goldens(a) => {
            let (report, pass) = goldens::run(&a)?;
            print!("{}", report.render(a.output));
            return Ok(ExitCode::from(if pass { exit::OK } else { exit::REJECTED }));
        }
        Kind::Kernels(a) => {
            let (text, pass) = kernels::run(&a)?;
            print!("{text}");
            return Ok(ExitCode::from(if pass { exit::OK } else { exit::REJECTED }));
        }
        Kind::Speed(a) => (speed::run(&a)?, a.common.output),
        Kind::Infill(a) => (infill::run(&a)?, a.common.output),
        Kind::Compression(a) => (compression::run(&a)?, a.common.output),
        Kind::HumanEval(a) => (functional::run(Benchmark::HumanEval, &a)?, a.common.output),
        Kind::HumanEvalInfill(a) => (
            functional::run(Benchmark::InfillSingle, &a)?,
            a.common.output,
        ),
        Kind::HumanEvalInfillMulti(a) => (
            functional::run(Benchmark::InfillMulti, &a)?,
            a.common.output,
        ),
        Kind::HumanEvalInfillRandom(a) => (
            functional::run(Benchmark::InfillRandom, &a)?,
            a.common.output,
        ),
        Kind::Mbpp(a) => (functional::run(Benchmark::Mbpp, &a)?, a.common.output),
    };
    print!("{}", report.render(format));
    Ok(ExitCode::from(exit::OK))
}

const KINDS: [&str; 10] = [
    "speed",
    "infill",
    "compression",
    "humaneval",
    "humaneval-infill",
    "humaneval-infill-multi",
    "humaneval-infill-random",
    "mbpp",
    "goldens",
    "kernels",
];

/// `--eval NAME` named no kind of bench.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bench --eval {0}: no such eval (known: {known})", known = KINDS.join(", "))]
pub struct UnknownEval(pub String);

/// `bench --eval KIND ...` (the older spelling) becomes `bench KIND ...`, and `bench` with no
/// kind becomes `bench speed`, so every kind parses only its own flags.
pub fn rewrite_eval_alias(args: Vec<OsString>) -> Result<Vec<OsString>, UnknownEval> {
    // The subcommand is the first argument after the program name that is not a global flag.
    let Some(at) = args
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|p| p + 1)
    else {
        return Ok(args);
    };
    if args[at] != "bench" {
        return Ok(args);
    }
    let mut rest: Vec<OsString> = args[at + 1..].to_vec();
    let mut kind: Option<OsString> = None;
    if let Some(i) = rest.iter().position(|a| a == "--eval") {
        if i + 1 < rest.len() {
            kind = Some(rest.remove(i + 1));
            rest.remove(i);
        }
    } else if let Some(i) = rest
        .iter()
        .position(|a| a.to_string_lossy().starts_with("--eval="))
    {
        let a = rest.remove(i);
        kind = Some(OsString::from(&a.to_string_lossy()["--eval=".len()..]));
    }
    let named = rest
        .first()
        .map(|a| a.to_string_lossy())
        .is_some_and(|a| KINDS.contains(&a.as_ref()) || a == "help" || a == "-h" || a == "--help");
    let mut out = args[..=at].to_vec();
    match kind {
        Some(k) if KINDS.contains(&k.to_string_lossy().as_ref()) => out.push(k),
        Some(k) => return Err(UnknownEval(k.to_string_lossy().into_owned())),
        None if named => {}
        None => out.push("speed".into()),
    }
    out.extend(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(args: &[&str]) -> Vec<String> {
        rewrite_eval_alias(args.iter().map(OsString::from).collect())
            .unwrap()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_eval_flag_and_no_kind_still_parse() {
        assert_eq!(
            rewrite(&["o", "bench", "--eval", "infill", "--files", "x"]),
            ["o", "bench", "infill", "--files", "x"]
        );
        assert_eq!(
            rewrite(&[
                "o",
                "--offline",
                "bench",
                "--model",
                "m",
                "--eval=compression"
            ]),
            ["o", "--offline", "bench", "compression", "--model", "m"]
        );
        assert_eq!(
            rewrite(&["o", "bench", "--steps", "2"]),
            ["o", "bench", "speed", "--steps", "2"]
        );
        assert_eq!(rewrite(&["o", "bench", "infill"]), ["o", "bench", "infill"]);
        assert_eq!(rewrite(&["o", "bench", "--help"]), ["o", "bench", "--help"]);
        assert_eq!(
            rewrite(&["o", "plan", "--eval", "x"]),
            ["o", "plan", "--eval", "x"]
        );
        assert_eq!(
            rewrite(&["o", "bench", "--eval", "humaneval", "--problems", "3"]),
            ["o", "bench", "humaneval", "--problems", "3"]
        );
        let unknown = rewrite_eval_alias(
            ["o", "bench", "--eval", "humaneva"]
                .iter()
                .map(OsString::from)
                .collect(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            unknown.contains("humaneva:") || unknown.contains("humaneva "),
            "{unknown}"
        );
        assert!(unknown.contains("humaneval, humaneval-infill"), "{unknown}");
    }
}
