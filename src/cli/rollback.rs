use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;

use super::{exit, repo_root};
use crate::patch::{self, Restore};
use crate::provenance::RunStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run whose changes to undo (see `ouroboros list-runs`).
    pub run_id: String,
    /// Restore even files that changed after the run wrote them.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub root: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = repo_root(args.root.as_deref())?;
    let record = RunStore::new(&root)
        .load(&args.run_id)
        .map_err(|e| anyhow!(e))?;
    if record.file_modifications.is_empty() {
        println!(
            "run {} changed no files; nothing to roll back",
            record.run_id
        );
        return Ok(ExitCode::from(exit::OK));
    }
    let files: Vec<Restore> = record
        .file_modifications
        .iter()
        .map(|m| Restore {
            file_path: m.file_path.clone().into(),
            backup_path: m.backup_path.clone().into(),
            original_hash: m.original_hash.clone(),
            modified_hash: m.modified_hash.clone(),
        })
        .collect();
    match patch::rollback(&root, &files, args.force) {
        Ok(restored) => {
            for f in &restored {
                println!("restored {}", f.display());
            }
            println!(
                "rolled back run {} ({} file(s))",
                record.run_id,
                restored.len()
            );
            Ok(ExitCode::from(exit::OK))
        }
        Err(e @ patch::PatchError::ChangedSinceRun { .. }) => {
            eprintln!("error: {e}\nnothing was restored");
            Ok(ExitCode::from(exit::REJECTED))
        }
        Err(e) => Err(e.into()),
    }
}
