//! The write-ahead journal: before the first file of a run is replaced, the run's folder holds
//! `journal.json`, fsynced, naming every file about to change with its backup and both hashes.
//! A run killed at any instant after that can be found (its journal is still there) and undone
//! (`rollback`), whatever became of its record. The journal goes once the record of a finished
//! run holds the same facts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{atomic_write, PatchError};

pub const JOURNAL_FILE: &str = "journal.json";

/// One file a run is about to replace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub file_path: String,
    pub original_hash: String,
    pub modified_hash: String,
    /// Repository-relative.
    pub backup_path: String,
    pub lines_added: usize,
    pub lines_removed: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub files: Vec<Entry>,
}

impl Journal {
    /// Write it durably (temp file, fsync, rename, fsync of the folder).
    pub fn write(&self, run_dir: &Path) -> Result<(), PatchError> {
        let bytes = serde_json::to_vec_pretty(self).expect("a journal always serializes");
        atomic_write(&run_dir.join(JOURNAL_FILE), &bytes, None)
    }

    /// The journal of the run in `run_dir`, if it did not finish.
    pub fn read(run_dir: &Path) -> Option<Journal> {
        let bytes = std::fs::read(run_dir.join(JOURNAL_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The run's record now holds everything: the journal goes.
pub fn complete(run_dir: &Path) -> Result<(), PatchError> {
    let path = run_dir.join(JOURNAL_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PatchError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// What an earlier run that was killed while writing left behind.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Runs whose journal is still there: interrupted while writing files.
    pub interrupted: Vec<String>,
    /// Temp files removed (beside the files those runs were writing, and in run folders).
    pub removed: Vec<PathBuf>,
}

/// Find interrupted runs under `root` and remove the temp files writes leave when killed.
pub fn recover(root: &Path) -> Leftovers {
    let mut out = Leftovers::default();
    let runs = root.join(".ouroboros").join("runs");
    let Ok(entries) = std::fs::read_dir(&runs) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for run in dirs.iter().filter(|d| d.is_dir()) {
        remove_temps(run, &mut out.removed);
        if let Some(j) = Journal::read(run) {
            out.interrupted.push(
                run.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            for f in &j.files {
                if let Ok(target) = super::resolve_in_repo(root, Path::new(&f.file_path)) {
                    if let Some(dir) = target.parent() {
                        remove_temps_in(dir, &mut out.removed);
                    }
                }
            }
        }
    }
    out
}

fn is_temp(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".ouroboros-") && n.ends_with(".tmp"))
}

fn remove_temps_in(dir: &Path, removed: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for p in entries.flatten().map(|e| e.path()) {
        if p.is_file() && is_temp(&p) && std::fs::remove_file(&p).is_ok() {
            removed.push(p);
        }
    }
}

/// Temp files anywhere under a run's folder (its backups are written the same way).
fn remove_temps(dir: &Path, removed: &mut Vec<PathBuf>) {
    remove_temps_in(dir, removed);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for p in entries.flatten().map(|e| e.path()) {
        if p.is_dir() && !p.is_symlink() {
            remove_temps(&p, removed);
        }
    }
}
