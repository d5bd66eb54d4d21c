//! The command line: one file per subcommand. Errors become `anyhow` here and only here.

mod apply;
mod bench;
mod deps;
mod gen_opts;
mod generate;
mod generator_opts;
mod graph_opts;
mod index;
mod list_runs;
mod models;
mod plan;
mod progress;
mod reasoner_opts;
mod refactor;
mod replay;
mod rollback;
mod serve;
mod status;
mod test_opts;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Exit codes shared by every command.
pub mod exit {
    /// Everything checked out (all valid, applied, found).
    pub const OK: u8 = 0;
    /// The command ran, and found invalid code or refused a change.
    pub const REJECTED: u8 = 1;
    /// Usage, I/O or environment error.
    pub const ERROR: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "ouroboros",
    version,
    about = "Refactor code with a local masked-diffusion model; invalid code never reaches disk."
)]
pub struct Cli {
    /// Refuse anything that would use the network (a remote reasoner or generator, a Neo4j
    /// server, `models pull`), with an error naming it. Also set by OUROBOROS_OFFLINE=1 (or
    /// true, yes, on).
    #[arg(
        long,
        global = true,
        env = "OUROBOROS_OFFLINE",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub offline: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that source files parse: tree-sitter plus a strict parser per language.
    Validate(validate::Args),
    /// Replace a file with new content through the gate: diff, backup, atomic write, provenance.
    Apply(apply::Args),
    /// Restore every file a run changed, byte for byte.
    Rollback(rollback::Args),
    /// Generate text with a masked-diffusion model: a prompt continuation or an in-place infill.
    Generate(generate::Args),
    /// llama-bench-style tables: `speed` (steps, lengths, samplers, thresholds), `infill`
    /// (quality against steps), `compression` (context recall per scorer and budget).
    Bench(bench::Args),
    /// The supported checkpoints (`list`) and downloading them (`pull`).
    Models(models::Args),
    /// Build or refresh the code graph (`.ouroboros/graph.db`); only changed files are parsed.
    Index(index::Args),
    /// Callers, callees and blast radius of a symbol.
    Deps(deps::Args),
    /// The local planner: edit units for a task on target files, callees first, with context.
    Plan(plan::Args),
    /// Rewrite functions with the diffusion model: plan, compress, build, gate, heal, score
    /// risk, then show, save or apply the patches, and record the run.
    Refactor(Box<refactor::Args>),
    /// Run a recorded refactor again from its provenance and check the output is identical.
    Replay(replay::Args),
    /// Show one run's provenance: models, safety checks, files.
    Status(status::Args),
    /// List recent runs.
    ListRuns(list_runs::Args),
    /// Serve a diffusion checkpoint (the generator, for `--generator remote` and any OpenAI
    /// client) or a chat model (the reasoner, for `--reasoner remote`) over an
    /// OpenAI-compatible API, so one machine can do it for a team.
    Serve(serve::Args),
}

/// The command line as clap sees it, after the one rewrite older spellings need
/// (`bench --eval KIND`).
pub fn parse() -> Cli {
    match bench::rewrite_eval_alias(std::env::args_os().collect()) {
        Ok(args) => Cli::parse_from(args),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(i32::from(exit::ERROR));
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    crate::offline::set(cli.offline);
    match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Rollback(a) => rollback::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Models(a) => models::run(a),
        Command::Index(a) => index::run(a),
        Command::Deps(a) => deps::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Refactor(a) => refactor::run(*a),
        Command::Replay(a) => replay::run(a),
        Command::Status(a) => status::run(a),
        Command::ListRuns(a) => list_runs::run(a),
        Command::Serve(a) => serve::run(a),
    }
}

/// The repository root: `--root` if given, else the nearest ancestor of the working directory
/// holding `.ouroboros` or `.git`, else the working directory.
pub(crate) fn repo_root(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(root) = explicit {
        anyhow::ensure!(root.is_dir(), "--root {}: not a directory", root.display());
        return Ok(root.to_path_buf());
    }
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        if dir.join(".ouroboros").is_dir() || dir.join(".git").exists() {
            return Ok(dir.to_path_buf());
        }
    }
    Ok(cwd)
}

/// Say what an earlier run killed while writing left behind (temp files are removed here).
pub(crate) fn report_leftovers(root: &Path) {
    let left = crate::patch::recover(root);
    for id in &left.interrupted {
        eprintln!(
            "warning: run {id} was interrupted while writing files; `ouroboros rollback {id}` undoes what it wrote, `ouroboros list-runs` shows it"
        );
    }
    if !left.removed.is_empty() {
        eprintln!(
            "removed {} temp file(s) an interrupted write left behind",
            left.removed.len()
        );
    }
}

/// A target as the graph names it: relative to the repository root, with `/`.
pub(crate) fn repo_relative(root: &Path, target: &Path) -> anyhow::Result<String> {
    let abs = target
        .canonicalize()
        .with_context(|| format!("--target {}", target.display()))?;
    let root = root.canonicalize()?;
    let rel = abs.strip_prefix(&root).map_err(|_| {
        anyhow::anyhow!(
            "--target {}: outside the repository {}",
            target.display(),
            root.display()
        )
    })?;
    Ok(rel.to_string_lossy().replace('\\', "/"))
}
