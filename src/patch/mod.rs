//! The patch engine: diffs, safe paths, the stale-file check, backups, atomic writes and
//! rollback. Every write the product makes to a user's source tree goes through here.

mod atomic;
mod diff;
mod paths;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use atomic::atomic_write;
pub use diff::Diff;
pub use paths::resolve_in_repo;

use crate::hash::sha256_tagged;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{path}: refusing to write outside the repository root ({reason})")]
    Escape { path: String, reason: &'static str },
    #[error("{path}: the file changed since it was read (expected {expected}, found {actual}); re-run to patch the current version")]
    Stale {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: changed since the run wrote it (expected {expected}, found {actual}); use --force to restore the backup anyway")]
    ChangedSinceRun {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: backup {backup} is missing or does not match its recorded hash")]
    BadBackup { path: String, backup: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PatchError + '_ {
    move |source| PatchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A file as it was read, with the hash the stale-file check compares against at write time.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Path relative to the repository root, as given.
    pub rel: PathBuf,
    pub abs: PathBuf,
    pub bytes: Vec<u8>,
    pub hash: String,
}

impl Snapshot {
    pub fn read(root: &Path, rel: &Path) -> Result<Snapshot, PatchError> {
        let abs = resolve_in_repo(root, rel)?;
        let bytes = fs::read(&abs).map_err(io_err(rel))?;
        let hash = sha256_tagged(&bytes);
        Ok(Snapshot {
            rel: rel.to_path_buf(),
            abs,
            bytes,
            hash,
        })
    }
}

/// What applying one file changed; the provenance record's `file_modifications` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedChange {
    pub file_path: String,
    pub original_hash: String,
    pub modified_hash: String,
    pub lines_added: usize,
    pub lines_removed: usize,
    /// Relative to the repository root.
    pub backup_path: String,
}

/// Replace a file's content: refuse if it changed since `snapshot` was taken, back the
/// original up under `backup_dir`, then write the new content atomically, keeping the mode.
pub fn apply(
    root: &Path,
    backup_dir: &Path,
    snapshot: &Snapshot,
    new_content: &[u8],
) -> Result<AppliedChange, PatchError> {
    let abs = resolve_in_repo(root, &snapshot.rel)?;
    let current = fs::read(&abs).map_err(io_err(&snapshot.rel))?;
    let actual = sha256_tagged(&current);
    if actual != snapshot.hash {
        return Err(PatchError::Stale {
            path: snapshot.rel.display().to_string(),
            expected: snapshot.hash.clone(),
            actual,
        });
    }
    let permissions = fs::metadata(&abs)
        .map_err(io_err(&snapshot.rel))?
        .permissions();

    let backup = backup_dir.join(&snapshot.rel);
    if let Some(parent) = backup.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    atomic_write(&backup, &current, Some(permissions.clone()))?;
    atomic_write(&abs, new_content, Some(permissions))?;

    let diff = Diff::new(
        &snapshot.rel.display().to_string(),
        &String::from_utf8_lossy(&current),
        &String::from_utf8_lossy(new_content),
    );
    let backup_rel = backup.strip_prefix(root).unwrap_or(&backup);
    Ok(AppliedChange {
        file_path: snapshot.rel.display().to_string(),
        original_hash: actual,
        modified_hash: sha256_tagged(new_content),
        lines_added: diff.lines_added,
        lines_removed: diff.lines_removed,
        backup_path: backup_rel.display().to_string(),
    })
}

/// One file to put back: where it is, its backup, and the hashes recorded when it was written.
#[derive(Debug, Clone)]
pub struct Restore {
    pub file_path: PathBuf,
    pub backup_path: PathBuf,
    pub original_hash: String,
    pub modified_hash: String,
}

/// Restore every file from its backup, byte for byte. Everything is checked before anything
/// is written, so a refusal leaves the tree as it was.
pub fn rollback(root: &Path, files: &[Restore], force: bool) -> Result<Vec<PathBuf>, PatchError> {
    let mut plan = Vec::with_capacity(files.len());
    for f in files {
        let abs = resolve_in_repo(root, &f.file_path)?;
        let backup_abs = resolve_in_repo(root, &f.backup_path)?;
        let backup = fs::read(&backup_abs).map_err(|_| PatchError::BadBackup {
            path: f.file_path.display().to_string(),
            backup: f.backup_path.display().to_string(),
        })?;
        if sha256_tagged(&backup) != f.original_hash {
            return Err(PatchError::BadBackup {
                path: f.file_path.display().to_string(),
                backup: f.backup_path.display().to_string(),
            });
        }
        let current = match fs::read(&abs) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&f.file_path)(e)),
        };
        let actual = current
            .as_deref()
            .map(sha256_tagged)
            .unwrap_or_else(|| "missing".into());
        if actual != f.modified_hash && !force {
            return Err(PatchError::ChangedSinceRun {
                path: f.file_path.display().to_string(),
                expected: f.modified_hash.clone(),
                actual,
            });
        }
        let permissions = fs::metadata(&backup_abs)
            .map_err(io_err(&f.backup_path))?
            .permissions();
        plan.push((abs, backup, permissions, f.file_path.clone()));
    }
    let mut restored = Vec::with_capacity(plan.len());
    for (abs, bytes, permissions, rel) in plan {
        atomic_write(&abs, &bytes, Some(permissions))?;
        restored.push(rel);
    }
    Ok(restored)
}

#[cfg(test)]
mod tests;
