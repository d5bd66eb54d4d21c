//! The scratch copy tests run in: the repository's files (what .gitignore keeps, plus hidden
//! files, without `.git` and `.ouroboros`) copied into a temp directory, with the project's own
//! `node_modules` and virtualenv linked rather than copied. Tests that write or delete files
//! change only the copy, and it is removed when dropped, Ctrl-C included.

use std::path::{Path, PathBuf};

/// Folders linked into the copy instead of copied: installed dependencies, large and read-only
/// for the tests.
const LINKED: &[&str] = &["node_modules", ".venv", "venv"];
/// Never copied: history, our own state, and the dependencies linked above.
const SKIPPED: &[&str] = &[".git", ".ouroboros", "node_modules", ".venv", "venv"];

pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn copy_of(root: &Path) -> std::io::Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("ouroboros-tests-")
            .tempdir()?;
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo)?;
        let walk = ignore::WalkBuilder::new(root)
            .hidden(false)
            .require_git(false)
            .filter_entry(|e| {
                !(e.depth() > 0
                    && e.file_type().is_some_and(|t| t.is_dir())
                    && SKIPPED.contains(&e.file_name().to_string_lossy().as_ref()))
            })
            .build();
        for entry in walk {
            let entry = entry.map_err(std::io::Error::other)?;
            let rel = entry
                .path()
                .strip_prefix(root)
                .map_err(std::io::Error::other)?;
            if rel.as_os_str().is_empty() {
                continue;
            }
            let dest = repo.join(rel);
            match entry.file_type() {
                Some(t) if t.is_dir() => std::fs::create_dir_all(&dest)?,
                Some(t) if t.is_file() => {
                    std::fs::copy(entry.path(), &dest)?;
                }
                _ => {}
            }
        }
        #[cfg(unix)]
        for name in LINKED {
            let there = root.join(name);
            if there.is_dir() {
                std::os::unix::fs::symlink(there.canonicalize()?, repo.join(name))?;
            }
        }
        Ok(Scratch { dir })
    }

    /// The copy of the repository root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// A folder beside the copy for what the gate writes itself (reports, its unittest shim).
    pub fn work(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Put `text` in place of `file` (repository-relative) in the copy.
    pub fn write(&self, file: &str, text: &str) -> std::io::Result<()> {
        let p = self.root().join(file);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_what_git_keeps_and_links_dependencies() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join(".git/objects")).unwrap();
        std::fs::create_dir_all(r.join("node_modules/dep")).unwrap();
        std::fs::create_dir_all(r.join("build")).unwrap();
        std::fs::create_dir_all(r.join("src")).unwrap();
        std::fs::write(r.join(".gitignore"), "build/\n").unwrap();
        std::fs::write(r.join(".env.example"), "A=1\n").unwrap();
        std::fs::write(r.join("src/a.py"), "x = 1\n").unwrap();
        std::fs::write(r.join("build/out.py"), "y = 2\n").unwrap();
        std::fs::write(r.join("node_modules/dep/index.js"), "").unwrap();
        let s = Scratch::copy_of(r).unwrap();
        let c = s.root();
        assert!(c.join("src/a.py").is_file());
        assert!(c.join(".env.example").is_file());
        assert!(!c.join("build").exists());
        assert!(!c.join(".git").exists());
        assert!(c.join("node_modules").is_symlink());
        s.write("src/a.py", "x = 2\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("src/a.py")).unwrap(),
            "x = 1\n"
        );
        let dir = s.work();
        drop(s);
        assert!(!dir.exists());
    }
}
