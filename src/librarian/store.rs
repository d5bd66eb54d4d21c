//! The embedded store: a SQLite database at `.ouroboros/graph.db`. Per-file facts are kept so an
//! unchanged file is never parsed again; the resolved graph is rewritten in one transaction, so
//! a crash mid-index leaves the previous graph intact.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::extract::{FileFacts, NodeKind};
use super::resolve::{EdgeKind, Graph, GraphEdge, GraphNode, Unresolved};
use super::LibrarianError;

/// Bump when the tables or the facts' JSON change; an older database is rebuilt.
pub const SCHEMA_VERSION: i64 = 2;

/// What every graph backend offers the indexer and the queries.
pub trait GraphStore {
    /// Content hash and facts of every indexed file.
    fn load_facts(&self) -> Result<HashMap<String, (String, FileFacts)>, LibrarianError>;
    /// Replace the indexed files and the whole resolved graph. Returns how many rows it wrote
    /// (a store may skip what it already holds).
    fn save(
        &mut self,
        files: &[(String, FileFacts)],
        graph: &Graph,
    ) -> Result<usize, LibrarianError>;
    fn load_graph(&self) -> Result<Graph, LibrarianError>;
    /// How many nodes, edges and unresolved references the stored graph holds.
    fn counts(&self) -> Result<GraphCounts, LibrarianError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphCounts {
    pub nodes: usize,
    pub edges: usize,
    pub unresolved: usize,
}

pub struct SqliteStore {
    conn: Connection,
    /// The database had an older schema and was emptied.
    pub rebuilt: bool,
}

fn db(e: rusqlite::Error) -> LibrarianError {
    LibrarianError::Sqlite(e)
}

const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS nodes_symbol ON nodes(symbol);
CREATE INDEX IF NOT EXISTS edges_source ON edges(source, kind);
CREATE INDEX IF NOT EXISTS edges_target ON edges(target, kind);
";

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, hash TEXT NOT NULL, facts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, symbol TEXT NOT NULL, file TEXT NOT NULL,
    start_line INTEGER, end_line INTEGER, start_byte INTEGER, end_byte INTEGER,
    signature TEXT, doc TEXT, hash TEXT);
CREATE TABLE IF NOT EXISTS edges (
    source TEXT NOT NULL, target TEXT NOT NULL, kind TEXT NOT NULL,
    confidence REAL NOT NULL, line INTEGER);
CREATE TABLE IF NOT EXISTS unresolved (source TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL, line INTEGER);
";

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, LibrarianError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LibrarianError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(db)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let rebuilt = matches!(&version, Some(v) if v.parse::<i64>().ok() != Some(SCHEMA_VERSION));
        if rebuilt {
            conn.execute_batch("DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS nodes; DROP TABLE IF EXISTS edges; DROP TABLE IF EXISTS unresolved;")
                .map_err(db)?;
        }
        conn.execute_batch(TABLES).map_err(db)?;
        conn.execute_batch(INDEXES).map_err(db)?;
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![SCHEMA_VERSION.to_string()],
        )
        .map_err(db)?;
        Ok(SqliteStore { conn, rebuilt })
    }
}

pub(super) fn kind_from(s: &str) -> NodeKind {
    match s {
        "file" => NodeKind::File,
        "module" => NodeKind::Module,
        "class" => NodeKind::Class,
        "method" => NodeKind::Method,
        "variable" => NodeKind::Variable,
        "import" => NodeKind::Import,
        _ => NodeKind::Function,
    }
}

impl GraphStore for SqliteStore {
    fn counts(&self) -> Result<GraphCounts, LibrarianError> {
        let count = |table: &str| -> Result<usize, LibrarianError> {
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .map_err(db)?;
            Ok(n as usize)
        };
        Ok(GraphCounts {
            nodes: count("nodes")?,
            edges: count("edges")?,
            unresolved: count("unresolved")?,
        })
    }

    fn load_facts(&self) -> Result<HashMap<String, (String, FileFacts)>, LibrarianError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, hash, facts FROM files")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(db)?;
        let mut out = HashMap::new();
        for row in rows {
            let (path, hash, facts) = row.map_err(db)?;
            // Facts that no longer deserialize are simply re-parsed.
            if let Ok(f) = serde_json::from_str::<FileFacts>(&facts) {
                out.insert(path, (hash, f));
            }
        }
        Ok(out)
    }

    fn save(
        &mut self,
        files: &[(String, FileFacts)],
        graph: &Graph,
    ) -> Result<usize, LibrarianError> {
        let tx = self.conn.transaction().map_err(db)?;
        // Building the indexes once after the rows are in is cheaper than keeping them up to
        // date row by row; all of it is one transaction, so readers never see them missing.
        tx.execute_batch(
            "DELETE FROM files; DELETE FROM nodes; DELETE FROM edges; DELETE FROM unresolved;
             DROP INDEX IF EXISTS nodes_symbol; DROP INDEX IF EXISTS edges_source;
             DROP INDEX IF EXISTS edges_target;",
        )
        .map_err(db)?;
        {
            let mut ins = tx
                .prepare("INSERT INTO files (path, hash, facts) VALUES (?1, ?2, ?3)")
                .map_err(db)?;
            for (hash, f) in files {
                let json = serde_json::to_string(f).expect("facts serialize");
                ins.execute(params![f.path, hash, json]).map_err(db)?;
            }
            let mut ins = tx
                .prepare("INSERT OR REPLACE INTO nodes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
                .map_err(db)?;
            for n in &graph.nodes {
                ins.execute(params![
                    n.id,
                    n.kind.name(),
                    n.symbol,
                    n.file,
                    n.lines.0 as i64,
                    n.lines.1 as i64,
                    n.byte_range.0 as i64,
                    n.byte_range.1 as i64,
                    n.signature,
                    n.doc,
                    n.hash
                ])
                .map_err(db)?;
            }
            let mut ins = tx
                .prepare("INSERT INTO edges VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(db)?;
            for e in &graph.edges {
                ins.execute(params![
                    e.source,
                    e.target,
                    e.kind.name(),
                    e.confidence,
                    e.line as i64
                ])
                .map_err(db)?;
            }
            let mut ins = tx
                .prepare("INSERT INTO unresolved VALUES (?1, ?2, ?3, ?4)")
                .map_err(db)?;
            for u in &graph.unresolved {
                ins.execute(params![u.source, u.name, u.file, u.line as i64])
                    .map_err(db)?;
            }
        }
        tx.execute_batch(INDEXES).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(files.len() + graph.nodes.len() + graph.edges.len() + graph.unresolved.len())
    }

    fn load_graph(&self) -> Result<Graph, LibrarianError> {
        let mut g = Graph::default();
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, symbol, file, start_line, end_line, start_byte, end_byte, signature, doc, hash FROM nodes")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(GraphNode {
                    id: r.get(0)?,
                    kind: kind_from(&r.get::<_, String>(1)?),
                    symbol: r.get(2)?,
                    file: r.get(3)?,
                    lines: (r.get::<_, i64>(4)? as usize, r.get::<_, i64>(5)? as usize),
                    byte_range: (r.get::<_, i64>(6)? as usize, r.get::<_, i64>(7)? as usize),
                    signature: r.get(8)?,
                    doc: r.get(9)?,
                    hash: r.get(10)?,
                })
            })
            .map_err(db)?;
        for n in rows {
            g.nodes.push(n.map_err(db)?);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT source, target, kind, confidence, line FROM edges")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(db)?;
        for row in rows {
            let (source, target, kind, confidence, line) = row.map_err(db)?;
            if let Some(kind) = EdgeKind::parse(&kind) {
                g.edges.push(GraphEdge {
                    source,
                    target,
                    kind,
                    confidence,
                    line: line as usize,
                });
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT source, name, file, line FROM unresolved")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Unresolved {
                    source: r.get(0)?,
                    name: r.get(1)?,
                    file: r.get(2)?,
                    line: r.get::<_, i64>(3)? as usize,
                })
            })
            .map_err(db)?;
        for u in rows {
            g.unresolved.push(u.map_err(db)?);
        }
        Ok(g)
    }
}
