use std::path::PathBuf;
use std::process::ExitCode;

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
    // Temp files a killed write left are found through the journals of interrupted runs, and
    // rolling this run back removes its journal, so they go first.
    super::report_leftovers(&root);
    let store = RunStore::new(&root);
    let record = store.load(&args.run_id)?;
    let run_dir = store.run_dir(&args.run_id);
    let files = to_restore(&root, &record, patch::Journal::read(&run_dir));
    if files.is_empty() {
        patch::journal::complete(&run_dir)?;
        println!("run {} changed no files; nothing to roll back", args.run_id);
        return Ok(ExitCode::from(exit::OK));
    }
    let backups = std::path::Path::new(".ouroboros/runs")
        .join(&args.run_id)
        .join("backups");
    match patch::rollback(&root, &backups, &files, args.force) {
        Ok(restored) => {
            // Undone: an interrupted run is no longer pending.
            patch::journal::complete(&run_dir)?;
            for f in &restored {
                println!("restored {}", f.display());
            }
            println!(
                "rolled back run {} ({} file(s))",
                args.run_id,
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

/// What to put back: the files the record says the run wrote, and for a run killed while
/// writing, those its journal names that really were written (a file that still has its
/// original content was never reached).
fn to_restore(
    root: &std::path::Path,
    record: &crate::provenance::RunRecord,
    journal: Option<patch::Journal>,
) -> Vec<Restore> {
    let mut files: Vec<Restore> = record
        .file_modifications
        .iter()
        .map(|m| Restore {
            file_path: m.file_path.clone().into(),
            backup_path: m.backup_path.clone().into(),
            original_hash: m.original_hash.clone(),
            modified_hash: m.modified_hash.clone(),
        })
        .collect();
    for e in journal.map(|j| j.files).unwrap_or_default() {
        if files
            .iter()
            .any(|f| f.file_path.as_os_str() == e.file_path.as_str())
        {
            continue;
        }
        let untouched = patch::resolve_in_repo(root, std::path::Path::new(&e.file_path))
            .ok()
            .and_then(|p| std::fs::read(p).ok())
            .is_some_and(|b| crate::hash::sha256_tagged(&b) == e.original_hash);
        if !untouched {
            files.push(Restore {
                file_path: e.file_path.into(),
                backup_path: e.backup_path.into(),
                original_hash: e.original_hash,
                modified_hash: e.modified_hash,
            });
        }
    }
    files
}
