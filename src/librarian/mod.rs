//! The librarian: a code graph of Python, JavaScript, TypeScript and TSX built with tree-sitter,
//! kept in an embedded SQLite store (`store.rs`) or in Neo4j over Bolt (`neo4j.rs`), and queried
//! in memory (`query.rs`).

mod ecmascript;
pub mod extract;
pub mod neo4j;
pub mod query;
pub mod resolve;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::lang::{Language, SourceKind};
use extract::FileFacts;
pub use neo4j::{BoltConfig, Neo4jStore};
pub use query::CodeGraph;
pub use store::{GraphCounts, GraphStore, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum LibrarianError {
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("graph store (SQLite)")]
    Sqlite(#[from] rusqlite::Error),
    #[error("graph store: neo4j: {context}")]
    Neo4j {
        context: String,
        #[source]
        source: Box<neo4rs::Error>,
    },
    #[error("graph store: neo4j: {context}")]
    Neo4jRow {
        context: String,
        #[source]
        source: neo4rs::DeError,
    },
    /// What the server said, in words (a refused login, no answer in time).
    #[error("graph store: neo4j: {0}")]
    Neo4jRefused(String),
    #[error("graph store: neo4j: starting the client")]
    Runtime(#[source] std::io::Error),
}

/// Why a file was left out of the graph (a warning, not an error).
#[derive(Debug, thiserror::Error)]
enum Skip {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{bytes} bytes is over the {limit}-byte limit (--max-file-size)")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("binary file")]
    Binary,
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("parser gave up")]
    ParserGaveUp,
}

/// Where the embedded graph lives inside a repository.
pub fn default_db(root: &Path) -> PathBuf {
    root.join(".ouroboros").join("graph.db")
}

#[derive(Debug, Clone)]
pub struct IndexOptions {
    pub max_file_size: u64,
}

/// Files larger than this are skipped unless `--max-file-size` says otherwise.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 2 * 1024 * 1024;

#[derive(Debug, Default, Serialize)]
pub struct IndexSummary {
    pub files: usize,
    pub parsed: usize,
    pub removed: usize,
    pub nodes: usize,
    pub edges: usize,
    pub unresolved: usize,
    pub seconds: f64,
    /// Where the time went: reading, hashing and parsing; resolving; writing the store.
    pub parse_seconds: f64,
    pub resolve_seconds: f64,
    pub store_seconds: f64,
    /// Rows the store wrote: files, nodes, edges and unresolved references (0 when unchanged).
    pub rows_written: usize,
    /// Nothing changed since the last index: no file was parsed and the graph was kept.
    pub unchanged: bool,
    /// Files skipped, each with the reason.
    pub warnings: Vec<String>,
}

enum Candidate {
    Source {
        rel: String,
        abs: PathBuf,
        language: Language,
    },
    Skipped(String),
}

fn rel_path(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn scan(root: &Path) -> Vec<Candidate> {
    // Symlinks are followed (a linked source folder is part of the project), so the walker can
    // report loops; anything a link leads to outside the repository is left out.
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let outside = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let walker = {
        let outside = outside.clone();
        let canonical_root = canonical_root.clone();
        let root = root.to_path_buf();
        ignore::WalkBuilder::new(&root)
            .follow_links(true)
            .filter_entry(move |e| {
                if e.file_name() == ".ouroboros" || e.file_name() == ".git" {
                    return false;
                }
                let linked_dir = e.path_is_symlink() && e.path().is_dir();
                if linked_dir
                    && !e
                        .path()
                        .canonicalize()
                        .is_ok_and(|p| p.starts_with(&canonical_root))
                {
                    outside
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!(
                            "{}: skipped: symlink to a folder outside the repository",
                            rel_path(&root, e.path())
                        ));
                    return false;
                }
                true
            })
            .build()
    };
    let mut out = Vec::new();
    for entry in walker {
        match entry {
            Err(e) => out.push(Candidate::Skipped(walk_warning(root, &e))),
            Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => {
                let Some(kind) = SourceKind::from_path(e.path()) else {
                    continue;
                };
                let rel = rel_path(root, e.path());
                if e.path_is_symlink()
                    && !e
                        .path()
                        .canonicalize()
                        .is_ok_and(|p| p.starts_with(&canonical_root))
                {
                    out.push(Candidate::Skipped(format!(
                        "{rel}: skipped: symlink to a file outside the repository"
                    )));
                    continue;
                }
                out.push(Candidate::Source {
                    rel,
                    abs: e.into_path(),
                    language: kind.language,
                });
            }
            Ok(_) => {}
        }
    }
    let outside = std::mem::take(&mut *outside.lock().unwrap_or_else(|p| p.into_inner()));
    out.extend(outside.into_iter().map(Candidate::Skipped));
    out
}

/// "path: skipped: reason" for an entry the walker could not read (a symlink loop, a dangling
/// link, a folder without permission), naming the path relative to the repository.
fn walk_warning(root: &Path, e: &ignore::Error) -> String {
    fn find(e: &ignore::Error) -> Option<(String, String)> {
        match e {
            ignore::Error::WithPath { path, err } => {
                let why = match err.as_ref() {
                    ignore::Error::Io(io) => io.to_string(),
                    other => other.to_string(),
                };
                Some((path.display().to_string(), why))
            }
            ignore::Error::Loop { child, ancestor } => Some((
                child.display().to_string(),
                format!("symlink loop back to {}", ancestor.display()),
            )),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                find(err)
            }
            _ => None,
        }
    }
    match find(e) {
        Some((path, why)) => format!("{}: skipped: {why}", rel_path(root, Path::new(&path))),
        None => format!("skipped: {e}"),
    }
}

/// Bring the graph of `root` up to date: parse new and changed files (in parallel), drop deleted
/// ones, re-resolve every edge, and save in one transaction. An unchanged tree parses nothing.
pub fn index(
    root: &Path,
    store: &mut dyn GraphStore,
    opts: &IndexOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<IndexSummary, LibrarianError> {
    let started = Instant::now();
    let mut summary = IndexSummary::default();
    let previous = store.load_facts()?;
    let mut current: Vec<(String, PathBuf, Language)> = Vec::new();
    for c in scan(root) {
        match c {
            Candidate::Source { rel, abs, language } => current.push((rel, abs, language)),
            Candidate::Skipped(w) => summary.warnings.push(w),
        }
    }
    current.sort_by(|a, b| a.0.cmp(&b.0));
    let total = current.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Read and hash everything (cheap); parse only what changed.
    let results: Vec<Result<(String, FileFacts, bool), String>> = current
        .par_iter()
        .map(|(rel, abs, language)| {
            let out = read_and_extract(rel, abs, *language, opts, &previous)
                .map_err(|why| format!("{rel}: skipped: {why}"));
            progress(
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                total,
            );
            out
        })
        .collect();
    summary.parse_seconds = started.elapsed().as_secs_f64();
    let mut files = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok((hash, facts, parsed)) => {
                summary.parsed += usize::from(parsed);
                if facts.has_errors {
                    summary.warnings.push(format!(
                        "{}: syntax errors; indexed what the parser could recover",
                        facts.path
                    ));
                }
                files.push((hash, facts));
            }
            Err(w) => summary.warnings.push(w),
        }
    }
    let kept: HashMap<&str, ()> = files.iter().map(|(_, f)| (f.path.as_str(), ())).collect();
    summary.removed = previous
        .keys()
        .filter(|p| !kept.contains_key(p.as_str()))
        .count();
    summary.files = files.len();
    summary.unchanged = summary.parsed == 0 && summary.removed == 0 && !previous.is_empty();
    let counts = if summary.unchanged {
        // Nothing to rebuild; only the figures for the summary are read.
        store.counts()?
    } else {
        let facts: Vec<&FileFacts> = files.iter().map(|(_, f)| f).collect();
        let t = Instant::now();
        let g = resolve::build(&facts);
        summary.resolve_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        summary.rows_written = store.save(&files, &g)?;
        summary.store_seconds = t.elapsed().as_secs_f64();
        GraphCounts {
            nodes: g.nodes.len(),
            edges: g.edges.len(),
            unresolved: g.unresolved.len(),
        }
    };
    summary.nodes = counts.nodes;
    summary.edges = counts.edges;
    summary.unresolved = counts.unresolved;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn read_and_extract(
    rel: &str,
    abs: &Path,
    language: Language,
    opts: &IndexOptions,
    previous: &HashMap<String, (String, FileFacts)>,
) -> Result<(String, FileFacts, bool), Skip> {
    let meta = std::fs::metadata(abs)?;
    if meta.len() > opts.max_file_size {
        return Err(Skip::TooLarge {
            bytes: meta.len(),
            limit: opts.max_file_size,
        });
    }
    let bytes = std::fs::read(abs)?;
    if bytes.contains(&0) {
        return Err(Skip::Binary);
    }
    // The extractor's version is part of the key: facts made by an older extractor are redone.
    let hash = format!(
        "{}@{}",
        crate::hash::sha256_tagged(&bytes),
        extract::EXTRACTOR_VERSION
    );
    if let Some((old_hash, facts)) = previous.get(rel) {
        if *old_hash == hash {
            return Ok((hash, facts.clone(), false));
        }
    }
    let source = String::from_utf8(bytes).map_err(|_| Skip::NotUtf8)?;
    let tree = crate::lang::parse(&source, language).ok_or(Skip::ParserGaveUp)?;
    let facts = match language {
        Language::Python => extract::extract_python(rel, &source, &tree),
        _ => ecmascript::extract(rel, &source, &tree, language),
    };
    Ok((hash, facts, true))
}
