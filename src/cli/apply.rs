use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::{exit, repo_root};
use crate::gate::{Gate, PythonTarget, SourceKind};
use crate::patch::{self, Diff, Snapshot};
use crate::provenance::ProvenanceLogger;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to change, relative to the repository root.
    pub target: PathBuf,
    /// A file holding the new content.
    #[arg(long)]
    pub from: PathBuf,
    /// What the change is for; recorded as the run's task.
    #[arg(long, default_value = "apply a prepared edit")]
    pub task: String,
    /// Show the diff and the gate's verdict; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write even if the gate finds new errors (the verdict is still recorded).
    #[arg(long)]
    pub no_safe_mode: bool,
    #[arg(long, default_value = "3.12")]
    pub python_version: PythonTarget,
    /// Repository root (default: nearest ancestor with .ouroboros or .git).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = repo_root(args.root.as_deref())?;
    super::report_leftovers(&root);
    let Some(kind) = SourceKind::from_path(&args.target) else {
        bail!(
            "{}: unknown file type; the gate knows .py .pyi .js .mjs .cjs .jsx .ts .mts .cts .tsx",
            args.target.display()
        );
    };
    let rel = relative_to_root(&root, &args.target)?;
    let snapshot = Snapshot::read(&root, &rel)?;
    let original = String::from_utf8(snapshot.bytes.clone())
        .with_context(|| format!("{}: not valid UTF-8", rel.display()))?;
    let new_bytes =
        std::fs::read(&args.from).with_context(|| format!("--from {}", args.from.display()))?;
    let patched = String::from_utf8(new_bytes)
        .with_context(|| format!("--from {}: not valid UTF-8", args.from.display()))?;

    let diff = Diff::new(&rel.display().to_string(), &original, &patched);
    let report = Gate::new(args.python_version).check_change(&original, &patched, kind);
    print!("{}", diff.unified);
    if diff.is_empty() {
        println!("{}: no change", rel.display());
        return Ok(ExitCode::from(exit::OK));
    }
    let preexisting = report.errors.iter().filter(|e| e.preexisting).count();
    if report.is_valid {
        println!(
            "gate: passed ({} pre-existing error(s) left as they were)",
            preexisting
        );
    } else {
        println!(
            "gate: {} new error(s):\n{}",
            report.blocking().count(),
            report.error_summary
        );
    }
    if args.dry_run {
        println!("dry run: nothing written");
        return Ok(ExitCode::from(if report.is_valid {
            exit::OK
        } else {
            exit::REJECTED
        }));
    }

    let mut log = ProvenanceLogger::start(&root, &args.task)?;
    let details = if report.is_valid {
        format!(
            "{} gate passed ({} pre-existing error(s) ignored)",
            report.language, preexisting
        )
    } else {
        format!("{} gate failed: {}", report.language, report.error_summary)
    };
    let file = rel.display().to_string();
    log.log_safety_check("syntax_validation", report.is_valid, details, Some(&file));
    if !report.is_valid && !args.no_safe_mode {
        let path = log.finish(
            false,
            Some(format!(
                "{file}: the gate rejected the new content; not written"
            )),
        )?;
        println!("invalid: not written\nprovenance: {}", path.display());
        return Ok(ExitCode::from(exit::REJECTED));
    }
    let run_dir = log.run_dir().to_path_buf();
    match patch::apply(&root, &run_dir, &snapshot, patched.as_bytes()) {
        Ok(change) => {
            log.log_file_modification(&change);
            let path = log.finish(true, None)?;
            patch::journal::complete(&run_dir)?;
            println!(
                "applied: {file} (+{} -{}), backup {}\nrun: {}\nprovenance: {}",
                change.lines_added,
                change.lines_removed,
                change.backup_path,
                path.parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                path.display()
            );
            Ok(ExitCode::from(exit::OK))
        }
        Err(e) => {
            let message = e.to_string();
            log.finish(false, Some(message.clone()))?;
            Err(anyhow::anyhow!(message))
        }
    }
}

/// Accept the target as given on the command line (relative to the working directory, or
/// absolute) and express it relative to the repository root.
fn relative_to_root(root: &std::path::Path, target: &std::path::Path) -> anyhow::Result<PathBuf> {
    let abs = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()?.join(target)
    };
    let abs = abs
        .canonicalize()
        .with_context(|| format!("{}", target.display()))?;
    let root = root.canonicalize()?;
    match abs.strip_prefix(&root) {
        Ok(rel) => Ok(rel.to_path_buf()),
        Err(_) => bail!(
            "{}: outside the repository root {}",
            target.display(),
            root.display()
        ),
    }
}
