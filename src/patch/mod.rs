//! The patch engine: diffs, safe paths, the stale-file check, backups, atomic writes and
//! rollback. Every write the product makes to a user's source tree goes through here.

mod atomic;
mod diff;
pub mod journal;
mod paths;
mod swap;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use atomic::atomic_write;
pub use diff::Diff;
pub use journal::{recover, Journal, Leftovers};
pub use paths::{resolve_in_repo, state_path};
pub use swap::Method;

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
    #[error("{path}: refusing to restore a file inside {inside}/ (a run never changes those)")]
    Protected { path: String, inside: &'static str },
    #[error("{path}: refusing to restore from {backup}, which is not a backup this run made (expected {expected})")]
    NotOurBackup {
        path: String,
        backup: String,
        expected: String,
    },
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
    /// How the new content was put in place.
    pub method: Method,
}

/// Replace files' contents as one journaled step, in the run folder `run_dir`:
/// 1. each file is checked against its snapshot (a file that changed since is stale) and
///    backed up under `run_dir/backups/`;
/// 2. the journal naming every file about to change is written and fsynced;
/// 3. each file is replaced (exchanged, where the system can, so an edit landing at the same
///    moment is kept and the file reported stale; see `swap`).
///
/// Returns each file's outcome in order; an error before the first write (a backup or the
/// journal that cannot be written) fails the whole step and writes nothing.
pub fn apply_all(
    root: &Path,
    run_dir: &Path,
    changes: &[(&Snapshot, &[u8])],
) -> Result<Vec<Result<AppliedChange, PatchError>>, PatchError> {
    let backups = run_dir.join("backups");
    let mut outcomes: Vec<Option<Result<AppliedChange, PatchError>>> = Vec::new();
    let mut planned = Vec::new();
    for (i, (snapshot, new)) in changes.iter().enumerate() {
        match prepare(root, &backups, snapshot, new) {
            Ok(p) => {
                planned.push((i, p));
                outcomes.push(None);
            }
            Err(e @ PatchError::Stale { .. }) => outcomes.push(Some(Err(e))),
            Err(e) => return Err(e),
        }
    }
    if planned.is_empty() {
        return Ok(outcomes.into_iter().flatten().collect());
    }
    Journal {
        files: planned.iter().map(|(_, p)| p.change.entry()).collect(),
    }
    .write(run_dir)?;
    for (i, p) in planned {
        let (snapshot, new) = changes[i];
        outcomes[i] = Some(
            swap::write_over(&snapshot.rel, &p.abs, new, p.mode, &snapshot.hash)
                .map(|method| AppliedChange { method, ..p.change }),
        );
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// One file, as [`apply_all`] applies it.
pub fn apply(
    root: &Path,
    run_dir: &Path,
    snapshot: &Snapshot,
    new_content: &[u8],
) -> Result<AppliedChange, PatchError> {
    apply_all(root, run_dir, &[(snapshot, new_content)])?
        .pop()
        .expect("one outcome per file")
}

struct Prepared {
    abs: PathBuf,
    mode: fs::Permissions,
    change: AppliedChange,
}

/// Check one file against its snapshot, count the change and back the original up: all the
/// work before the journal, so the journal comes right before the writes.
fn prepare(
    root: &Path,
    backups: &Path,
    snapshot: &Snapshot,
    new: &[u8],
) -> Result<Prepared, PatchError> {
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
    let mode = fs::metadata(&abs)
        .map_err(io_err(&snapshot.rel))?
        .permissions();
    let backup = backups.join(&snapshot.rel);
    if let Some(parent) = backup.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    atomic_write(&backup, &current, Some(mode.clone()))?;
    let diff = Diff::new(
        &snapshot.rel.display().to_string(),
        &String::from_utf8_lossy(&current),
        &String::from_utf8_lossy(new),
    );
    let root_abs = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let backup_rel = backup
        .strip_prefix(&root_abs)
        .or_else(|_| backup.strip_prefix(root))
        .unwrap_or(&backup);
    Ok(Prepared {
        abs,
        mode,
        change: AppliedChange {
            file_path: snapshot.rel.display().to_string(),
            original_hash: actual,
            modified_hash: sha256_tagged(new),
            lines_added: diff.lines_added,
            lines_removed: diff.lines_removed,
            backup_path: backup_rel.display().to_string(),
            method: Method::Rename,
        },
    })
}

impl AppliedChange {
    fn entry(&self) -> journal::Entry {
        journal::Entry {
            file_path: self.file_path.clone(),
            original_hash: self.original_hash.clone(),
            modified_hash: self.modified_hash.clone(),
            backup_path: self.backup_path.clone(),
            lines_added: self.lines_added,
            lines_removed: self.lines_removed,
        }
    }
}

/// One file to put back: where it is, its backup, and the hashes recorded when it was written.
#[derive(Debug, Clone)]
pub struct Restore {
    pub file_path: PathBuf,
    pub backup_path: PathBuf,
    pub original_hash: String,
    pub modified_hash: String,
}

/// Restore every file from its backup under `backups` (repository-relative: the run's own
/// `backups/` folder), byte for byte. Everything is checked before anything is written, so a
/// refusal leaves the tree as it was. A record can be edited by anyone, so nothing is taken on
/// its word: no file inside `.git/` or `.ouroboros/` is restored, and only from the backup the
/// run itself would have made of that file.
pub fn rollback(
    root: &Path,
    backups: &Path,
    files: &[Restore],
    force: bool,
) -> Result<Vec<PathBuf>, PatchError> {
    let mut plan = Vec::with_capacity(files.len());
    for f in files {
        let first = f.file_path.components().find_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        });
        for inside in [".git", ".ouroboros"] {
            if first.as_deref() == Some(inside) {
                return Err(PatchError::Protected {
                    path: f.file_path.display().to_string(),
                    inside,
                });
            }
        }
        let expected = backups.join(&f.file_path);
        if f.backup_path != expected {
            return Err(PatchError::NotOurBackup {
                path: f.file_path.display().to_string(),
                backup: f.backup_path.display().to_string(),
                expected: expected.display().to_string(),
            });
        }
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
