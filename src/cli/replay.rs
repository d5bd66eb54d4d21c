//! `ouroboros replay RUN_ID`: run a recorded refactor again from its provenance alone and say
//! whether every generated unit comes out byte-identical (see `pipeline::replay`).

use std::path::PathBuf;
use std::process::ExitCode;

use super::exit;
use super::generator_opts::GeneratorArgs;
use crate::pipeline::replay::replay;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub run_id: String,
    /// Repository root (default: the nearest folder with .ouroboros or .git).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Replay on another generator than the run's (a remote run in-process, say); the
    /// weights must still be the ones the run used.
    #[command(flatten)]
    pub generator: GeneratorArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = super::repo_root(args.root.as_deref())?;
    let report = replay(&root, &args.run_id, args.generator.given()?)?;
    if let Some((now, then)) = report.plan_differs {
        println!("the plan differs: {now} unit(s) now, {then} in the run");
    }
    for u in &report.units {
        if u.verdict_changed() {
            println!(
                "tests changed their verdict on {}: {} then, {} now",
                u.symbol, u.tests_then, u.tests_now
            );
        }
        if u.identical() {
            println!("identical {}", u.symbol);
        } else {
            println!(
                "DIFFERENT {} (was {}, now {})",
                u.symbol,
                short(&u.then),
                short(&u.now)
            );
        }
    }
    let identical = report.identical();
    println!(
        "replay of {}: {}",
        args.run_id,
        if identical {
            "every generated unit is byte-identical"
        } else {
            "outputs or verdicts differ"
        }
    );
    Ok(ExitCode::from(if identical {
        exit::OK
    } else {
        exit::REJECTED
    }))
}

fn short(sha: &str) -> &str {
    let s = sha.strip_prefix("sha256:").unwrap_or(sha);
    &s[..s.len().min(12)]
}
