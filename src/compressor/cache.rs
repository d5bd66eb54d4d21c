//! Scores cached per content hash, so that a re-run on an unchanged repository scores nothing.
//!
//! The key is the sha256 of the scorer's identity (method and weights hash), the unit's code and
//! the context text, so an edit to either side, or another model, misses the cache by itself.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::CompressError;

pub struct ScoreCache {
    conn: Connection,
    path: PathBuf,
}

impl ScoreCache {
    pub fn open(path: &Path) -> Result<ScoreCache, CompressError> {
        let err = |e: Box<dyn std::error::Error + Send + Sync>| CompressError::Cache {
            path: path.display().to_string(),
            source: e,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(e.into()))?;
        }
        let conn = Connection::open(path).map_err(|e| err(e.into()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS gains (key TEXT PRIMARY KEY, gain REAL NOT NULL);",
        )
        .map_err(|e| err(e.into()))?;
        Ok(ScoreCache {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The repository's cache, `.ouroboros/compressor.sqlite` beside the code graph.
    pub fn in_repo(root: &Path) -> Result<ScoreCache, CompressError> {
        let path = crate::patch::state_path(root, "compressor.sqlite").map_err(|e| {
            CompressError::Cache {
                path: root
                    .join(".ouroboros/compressor.sqlite")
                    .display()
                    .to_string(),
                source: Box::new(e),
            }
        })?;
        ScoreCache::open(&path)
    }

    pub fn key(scorer: &str, unit_code: &str, context: &str) -> String {
        let mut h = Sha256::new();
        for part in [scorer, unit_code, context] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        format!("{:x}", h.finalize())
    }

    pub fn get(&self, key: &str) -> Result<Option<f64>, CompressError> {
        self.conn
            .query_row("SELECT gain FROM gains WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.error(e))
    }

    pub fn put(&mut self, entries: &[(String, f64)]) -> Result<(), CompressError> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| cache_error(&self.path, e))?;
        {
            let mut stmt = tx
                .prepare("INSERT OR REPLACE INTO gains (key, gain) VALUES (?1, ?2)")
                .map_err(|e| cache_error(&self.path, e))?;
            for (k, g) in entries {
                stmt.execute(params![k, g])
                    .map_err(|e| cache_error(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| cache_error(&self.path, e))
    }

    fn error(&self, e: rusqlite::Error) -> CompressError {
        cache_error(&self.path, e)
    }
}

fn cache_error(path: &Path, e: rusqlite::Error) -> CompressError {
    CompressError::Cache {
        path: path.display().to_string(),
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_their_parts_and_values_round_trip() {
        assert_ne!(
            ScoreCache::key("a", "bc", "d"),
            ScoreCache::key("a", "b", "cd")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/scores.sqlite");
        let mut cache = ScoreCache::open(&path).unwrap();
        let k = ScoreCache::key("m", "unit", "ctx");
        assert_eq!(cache.get(&k).unwrap(), None);
        cache.put(&[(k.clone(), 0.25)]).unwrap();
        drop(cache);
        let cache = ScoreCache::open(&path).unwrap();
        assert_eq!(cache.get(&k).unwrap(), Some(0.25));
    }
}
