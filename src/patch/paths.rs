use std::path::{Component, Path, PathBuf};

use super::PatchError;

/// Resolve a repository-relative path to an absolute one, refusing anything that could land
/// outside the root: absolute paths, `..`, and symlinks (of the file or any parent) that
/// resolve outside it. A path that does not exist yet is judged by its nearest existing parent.
pub fn resolve_in_repo(root: &Path, rel: &Path) -> Result<PathBuf, PatchError> {
    let escape = |reason| PatchError::Escape {
        path: rel.display().to_string(),
        reason,
    };
    if rel.as_os_str().is_empty() {
        return Err(escape("empty path"));
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(escape("`..` is not allowed")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(escape("absolute paths are not allowed"))
            }
        }
    }
    let root = root.canonicalize().map_err(|source| PatchError::Io {
        path: root.display().to_string(),
        source,
    })?;
    let joined = root.join(rel);
    // Walk up to the deepest part that exists and resolve its symlinks.
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    let resolved = loop {
        match existing.canonicalize() {
            Ok(p) => break p,
            Err(_) => {
                rest.push(existing.file_name().map(|n| n.to_owned()));
                existing = match existing.parent() {
                    Some(p) => p,
                    None => return Err(escape("no existing parent")),
                };
            }
        }
    };
    if !resolved.starts_with(&root) {
        return Err(escape(
            "it resolves through a symlink to a place outside the root",
        ));
    }
    let mut full = resolved;
    for part in rest.into_iter().rev().flatten() {
        full.push(part);
    }
    Ok(full)
}

/// A path under the repository's own `.ouroboros/` (run records, backups, the graph, caches),
/// refusing a `.ouroboros` or `.ouroboros/runs` that is a symlink leading outside the
/// repository: what is written there must stay inside it.
pub fn state_path(root: &Path, rel: &str) -> Result<PathBuf, PatchError> {
    resolve_in_repo(root, &Path::new(".ouroboros").join(rel))
}
