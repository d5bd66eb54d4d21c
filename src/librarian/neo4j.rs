//! The Neo4j graph store, spoken to over Bolt through neo4rs.
//!
//! Layout: every graph node is a `:CodeNode` whose `kind` property says what it is (`function`,
//! `class`, …), with one unique key, `uid`, made of the repository key and the node id. Several
//! repositories can therefore share one database without clobbering each other. Indexed files
//! (`:IndexedFile`), unresolved references (`:UnresolvedRef`) and the per-repository metadata
//! (`:OuroborosGraph`) are keyed the same way.
//!
//! A save is one transaction that rewrites only the files whose part of the graph changed (each
//! indexed file stores a fingerprint of its nodes, outgoing edges and unresolved references):
//! their old outgoing edges, unresolved references and vanished nodes are deleted, then nodes and
//! edges are written as `UNWIND $rows … MERGE` batches, nodes first. A crash mid-save therefore
//! leaves the previous graph intact, and re-indexing after a one-file edit writes little.
//!
//! The kind is a property rather than a second label on purpose: on ArcadeDB's Bolt server a
//! `MERGE (n:CodeNode:Function {uid: …})` no longer uses the uniqueness index (we measured 200
//! rows/s against 8–11k with one label), and adding a label afterwards re-creates the vertex.
//!
//! Only parameters carry data. The one identifier spliced into query text, the relationship
//! type, comes from our own `EdgeKind` enum, never from user code.

use std::collections::HashMap;
use std::time::Duration;

use neo4rs::{query, BoltFloat, BoltInteger, BoltList, BoltMap, BoltNull, BoltString, BoltType};

use super::extract::FileFacts;
use super::resolve::{EdgeKind, Graph, GraphEdge, GraphNode, Unresolved};
use super::store::{kind_from, GraphCounts, GraphStore, SCHEMA_VERSION};
use super::LibrarianError;

/// Rows per `UNWIND` batch: large enough to amortise a round trip, small enough that one Bolt
/// message stays far below server limits.
const BATCH: usize = 5000;
const BATCH_BYTES: usize = 4 << 20;

/// How to reach the server. The password is held here only; it is never printed or logged.
#[derive(Clone)]
pub struct BoltConfig {
    pub uri: String,
    pub user: String,
    pub password: String,
    /// Database name; `None` uses the server's default.
    pub database: Option<String>,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for BoltConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoltConfig")
            .field("uri", &self.uri)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

pub struct Neo4jStore {
    rt: tokio::runtime::Runtime,
    graph: neo4rs::Graph,
    /// Identifies the repository inside a shared database.
    repo: String,
    /// The stored graph had another schema version and was emptied.
    pub rebuilt: bool,
}

fn err(context: &str, e: neo4rs::Error) -> LibrarianError {
    LibrarianError::Neo4j {
        context: context.to_string(),
        source: Box::new(e),
    }
}

fn s(v: &str) -> BoltType {
    BoltType::String(BoltString::new(v))
}

fn int(v: usize) -> BoltType {
    BoltType::Integer(BoltInteger::new(v as i64))
}

/// A parameter map and roughly how many bytes it takes on the wire.
fn row(fields: Vec<(&str, BoltType)>) -> (BoltType, usize) {
    let mut m = BoltMap::with_capacity(fields.len());
    let mut bytes = 0;
    for (k, v) in fields {
        bytes += k.len()
            + match &v {
                BoltType::String(s) => s.value.len() + 5,
                _ => 9,
            };
        m.put(BoltString::new(k), v);
    }
    (BoltType::Map(m), bytes)
}

impl Neo4jStore {
    /// Connect and make sure the schema exists. Fails within `connect_timeout` when the server
    /// does not answer.
    pub fn connect(cfg: &BoltConfig, repo: &str) -> Result<Neo4jStore, LibrarianError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LibrarianError::Runtime)?;
        let mut builder = neo4rs::ConfigBuilder::default()
            .uri(cfg.uri.as_str())
            .user(cfg.user.as_str())
            .password(cfg.password.as_str())
            .fetch_size(BATCH)
            .max_connections(2);
        if let Some(db) = &cfg.database {
            builder = builder.db(db.as_str());
        }
        let config = builder
            .build()
            .map_err(|e| err(&format!("bad --graph-uri {}", cfg.uri), e))?;
        let uri = cfg.uri.as_str();
        let timeout = cfg.connect_timeout;
        let fail = |e: Option<neo4rs::Error>| -> LibrarianError {
            LibrarianError::Neo4jRefused(match e {
                None => format!("cannot reach {uri}: no answer within {timeout:.0?}"),
                Some(neo4rs::Error::AuthenticationError(m)) => format!(
                    "{uri}: login failed for user `{}` ({m}); check OUROBOROS_NEO4J_USER and OUROBOROS_NEO4J_PASSWORD",
                    cfg.user
                ),
                Some(neo4rs::Error::Neo4j(e)) => {
                    format!("{uri}: the server refused: {} ({})", e.message(), e.code())
                }
                Some(e @ (neo4rs::Error::IOError { .. } | neo4rs::Error::ConnectionError)) => {
                    format!("cannot reach {uri}: {e}")
                }
                Some(neo4rs::Error::UnexpectedMessage(m)) => match failure_message(&m) {
                    Some(msg) => format!("{uri}: the server refused: {msg}"),
                    None => format!("{uri}: {m}"),
                },
                Some(e) => format!("{uri}: {e}"),
            })
        };
        let graph = rt.block_on(async {
            // neo4rs retries failed connections with backoff, which would turn "connection
            // refused" into a silent wait; one plain TCP connect first gives the real reason.
            let addr = host_port(uri);
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
                Err(_) => return Err(fail(None)),
                Ok(Err(e)) => {
                    return Err(LibrarianError::Neo4jRefused(format!(
                        "cannot reach {uri} ({addr}): {e}"
                    )))
                }
                Ok(Ok(_)) => {}
            }
            let graph = tokio::time::timeout(timeout, neo4rs::Graph::connect(config))
                .await
                .map_err(|_| fail(None))?
                .map_err(|e| fail(Some(e)))?;
            // The pool connects lazily; one round trip in a transaction (which neo4rs does not
            // retry) proves the credentials and the database.
            tokio::time::timeout(timeout, async {
                let mut txn = graph.start_txn().await?;
                txn.run(query("RETURN 1")).await?;
                txn.commit().await
            })
            .await
            .map_err(|_| fail(None))?
            .map_err(|e| fail(Some(e)))?;
            Ok::<_, LibrarianError>(graph)
        })?;
        let mut store = Neo4jStore {
            rt,
            graph,
            repo: repo.to_string(),
            rebuilt: false,
        };
        store.ensure_schema()?;
        Ok(store)
    }

    fn uid(&self, id: &str) -> String {
        format!("{}\u{1f}{id}", self.repo)
    }

    fn ensure_schema(&mut self) -> Result<(), LibrarianError> {
        for (name, label) in [
            ("ouroboros_code_uid", "CodeNode"),
            ("ouroboros_file_uid", "IndexedFile"),
            ("ouroboros_unresolved_uid", "UnresolvedRef"),
            ("ouroboros_graph_uid", "OuroborosGraph"),
        ] {
            let q = format!(
                "CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.uid IS UNIQUE"
            );
            self.rt
                .block_on(self.graph.run(query(&q)))
                .map_err(|e| err("creating the uniqueness constraints", e))?;
        }
        // Incremental saves look rows up by file.
        for (name, label) in [
            ("ouroboros_code_file", "CodeNode"),
            ("ouroboros_unresolved_file", "UnresolvedRef"),
        ] {
            let q = format!("CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.file)");
            self.rt
                .block_on(self.graph.run(query(&q)))
                .map_err(|e| err("creating the file indexes", e))?;
        }
        let version = self.scalar_i64(
            query("MATCH (g:OuroborosGraph {uid: $uid}) RETURN g.schema_version AS v")
                .param("uid", self.repo.as_str()),
        )?;
        if let Some(v) = version {
            if v != SCHEMA_VERSION {
                self.rebuilt = true;
                self.delete_repo()?;
            }
        }
        Ok(())
    }

    fn scalar_i64(&self, q: neo4rs::Query) -> Result<Option<i64>, LibrarianError> {
        self.rt.block_on(async {
            let mut rows = self.graph.execute(q).await.map_err(|e| err("query", e))?;
            match rows.next().await.map_err(|e| err("query", e))? {
                Some(r) => Ok(r.get::<Option<i64>>("v").ok().flatten()),
                None => Ok(None),
            }
        })
    }

    fn delete_repo(&mut self) -> Result<(), LibrarianError> {
        for label in ["CodeNode", "IndexedFile", "UnresolvedRef", "OuroborosGraph"] {
            let q = format!("MATCH (n:{label} {{repo: $repo}}) DETACH DELETE n");
            self.rt
                .block_on(self.graph.run(query(&q).param("repo", self.repo.as_str())))
                .map_err(|e| err("deleting an outdated graph", e))?;
        }
        Ok(())
    }

    fn node_row(&self, n: &GraphNode) -> (BoltType, usize) {
        row(vec![
            ("uid", s(&self.uid(&n.id))),
            ("id", s(&n.id)),
            ("kind", s(n.kind.name())),
            ("symbol", s(&n.symbol)),
            ("file", s(&n.file)),
            ("start_line", int(n.lines.0)),
            ("end_line", int(n.lines.1)),
            ("start_byte", int(n.byte_range.0)),
            ("end_byte", int(n.byte_range.1)),
            ("signature", s(&n.signature)),
            (
                "doc",
                match &n.doc {
                    Some(d) => s(d),
                    None => BoltType::Null(BoltNull),
                },
            ),
            ("hash", s(&n.hash)),
        ])
    }

    /// Read every row of `q` through `f`.
    fn each_row(
        &self,
        q: neo4rs::Query,
        what: &str,
        mut f: impl FnMut(&neo4rs::Row) -> Result<(), neo4rs::DeError>,
    ) -> Result<(), LibrarianError> {
        self.rt.block_on(async {
            let mut rows = self.graph.execute(q).await.map_err(|e| err(what, e))?;
            while let Some(r) = rows.next().await.map_err(|e| err(what, e))? {
                f(&r).map_err(|source| LibrarianError::Neo4jRow {
                    context: what.to_string(),
                    source,
                })?;
            }
            Ok(())
        })
    }
}

fn strings<S: AsRef<str>>(items: &[S]) -> BoltType {
    BoltType::List(BoltList {
        value: items.iter().map(|p| s(p.as_ref())).collect(),
    })
}

/// The part of a graph that belongs to one file: its nodes, the edges that leave them, and the
/// unresolved references in it, with a fingerprint that tells whether it changed.
#[derive(Default)]
struct Slice<'g> {
    nodes: Vec<&'g GraphNode>,
    edges: Vec<&'g GraphEdge>,
    unresolved: Vec<&'g Unresolved>,
    fingerprint: String,
}

fn slices(graph: &Graph) -> HashMap<&str, Slice<'_>> {
    use std::hash::{Hash, Hasher};
    let mut out: HashMap<&str, Slice> = HashMap::new();
    let mut file_of: HashMap<&str, &str> = HashMap::new();
    for n in &graph.nodes {
        file_of.insert(n.id.as_str(), n.file.as_str());
        out.entry(n.file.as_str()).or_default().nodes.push(n);
    }
    for e in &graph.edges {
        if let Some(f) = file_of.get(e.source.as_str()) {
            out.entry(f).or_default().edges.push(e);
        }
    }
    for u in &graph.unresolved {
        out.entry(u.file.as_str()).or_default().unresolved.push(u);
    }
    for slice in out.values_mut() {
        // Any stable digest does: a fingerprint that differs only rewrites a file's rows.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for n in &slice.nodes {
            (&n.id, n.kind.name(), &n.symbol, n.lines, n.byte_range).hash(&mut h);
            (&n.signature, &n.doc, &n.hash).hash(&mut h);
        }
        for e in &slice.edges {
            (
                &e.source,
                &e.target,
                e.kind.name(),
                e.line,
                e.confidence.to_bits(),
            )
                .hash(&mut h);
        }
        for u in &slice.unresolved {
            (&u.source, &u.name, u.line).hash(&mut h);
        }
        slice.fingerprint = format!("{:016x}", h.finish());
    }
    out
}

/// `HOST:PORT` of a Bolt URI (7687 when the port is left out).
fn host_port(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let has_port = match authority.rsplit_once(':') {
        Some((_, p)) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    };
    if has_port {
        authority.to_string()
    } else {
        format!("{authority}:7687")
    }
}

/// neo4rs reports a refused BEGIN as the Debug text of the server's FAILURE message; the
/// human part is its `message` field.
fn failure_message(debug: &str) -> Option<String> {
    let key = "value: \"message\" }: String(BoltString { value: \"";
    let start = debug.find(key)? + key.len();
    let end = debug[start..].find("\" })")?;
    Some(debug[start..start + end].replace("\\'", "'"))
}

/// Send `rows` to `cypher` in `UNWIND $rows` batches inside `txn`, cutting a batch at `BATCH`
/// rows or `BATCH_BYTES`, whichever comes first (servers cap one Bolt message, ArcadeDB at
/// 16 MiB, and a file's stored facts can be large).
async fn batched(
    txn: &mut neo4rs::Txn,
    cypher: &str,
    rows: impl Iterator<Item = (BoltType, usize)>,
    repo: &str,
    what: &str,
) -> Result<usize, LibrarianError> {
    let mut sent = 0;
    let mut batch = Vec::new();
    let mut bytes = 0;
    let mut rows = rows.peekable();
    while let Some((row, size)) = rows.next() {
        batch.push(row);
        bytes += size;
        let full = batch.len() >= BATCH
            || rows
                .peek()
                .is_some_and(|(_, next)| bytes + next > BATCH_BYTES);
        if full || rows.peek().is_none() {
            sent += batch.len();
            let value = BoltType::List(BoltList {
                value: std::mem::take(&mut batch),
            });
            bytes = 0;
            txn.run(query(cypher).param("rows", value).param("repo", repo))
                .await
                .map_err(|e| err(what, e))?;
        }
    }
    Ok(sent)
}

impl GraphStore for Neo4jStore {
    fn load_facts(&self) -> Result<HashMap<String, (String, FileFacts)>, LibrarianError> {
        let mut out = HashMap::new();
        self.each_row(
            query("MATCH (f:IndexedFile {repo: $repo}) RETURN f.path AS path, f.hash AS hash, f.facts AS facts")
                .param("repo", self.repo.as_str()),
            "reading indexed files",
            |r| {
                let facts: String = r.get("facts")?;
                // Facts that no longer deserialize are simply re-parsed.
                if let Ok(f) = serde_json::from_str::<FileFacts>(&facts) {
                    out.insert(r.get("path")?, (r.get("hash")?, f));
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn save(
        &mut self,
        files: &[(String, FileFacts)],
        graph: &Graph,
    ) -> Result<usize, LibrarianError> {
        let slices = slices(graph);
        let plan = self.plan_save(files, &slices)?;
        self.write_save(&slices, &plan)
    }

    fn load_graph(&self) -> Result<Graph, LibrarianError> {
        let mut g = Graph::default();
        self.each_row(
            query(
                "MATCH (n:CodeNode {repo: $repo}) RETURN n.id AS id, n.kind AS kind, \
                 n.symbol AS symbol, n.file AS file, n.start_line AS sl, n.end_line AS el, \
                 n.start_byte AS sb, n.end_byte AS eb, n.signature AS signature, n.doc AS doc, \
                 n.hash AS hash",
            )
            .param("repo", self.repo.as_str()),
            "reading nodes",
            |r| {
                let n = |k: &str| r.get::<i64>(k).map(|v| v as usize);
                g.nodes.push(GraphNode {
                    id: r.get("id")?,
                    kind: kind_from(&r.get::<String>("kind")?),
                    symbol: r.get("symbol")?,
                    file: r.get("file")?,
                    lines: (n("sl")?, n("el")?),
                    byte_range: (n("sb")?, n("eb")?),
                    signature: r.get("signature")?,
                    doc: r.get::<Option<String>>("doc")?,
                    hash: r.get("hash")?,
                });
                Ok(())
            },
        )?;
        self.each_row(
            query(
                "MATCH (a:CodeNode {repo: $repo})-[e]->(b:CodeNode) RETURN a.id AS s, b.id AS t, \
                 type(e) AS kind, e.confidence AS confidence, e.line AS line",
            )
            .param("repo", self.repo.as_str()),
            "reading edges",
            |r| {
                if let Some(kind) = EdgeKind::parse(&r.get::<String>("kind")?) {
                    g.edges.push(GraphEdge {
                        source: r.get("s")?,
                        target: r.get("t")?,
                        kind,
                        confidence: r.get("confidence")?,
                        line: r.get::<i64>("line")? as usize,
                    });
                }
                Ok(())
            },
        )?;
        self.each_row(
            query(
                "MATCH (u:UnresolvedRef {repo: $repo}) RETURN u.source AS source, u.name AS name, \
                 u.file AS file, u.line AS line",
            )
            .param("repo", self.repo.as_str()),
            "reading unresolved references",
            |r| {
                g.unresolved.push(Unresolved {
                    source: r.get("source")?,
                    name: r.get("name")?,
                    file: r.get("file")?,
                    line: r.get::<i64>("line")? as usize,
                });
                Ok(())
            },
        )?;
        Ok(g)
    }

    fn counts(&self) -> Result<GraphCounts, LibrarianError> {
        let count = |cypher: &str| -> Result<usize, LibrarianError> {
            Ok(self
                .scalar_i64(query(cypher).param("repo", self.repo.as_str()))?
                .unwrap_or(0) as usize)
        };
        Ok(GraphCounts {
            nodes: count("MATCH (n:CodeNode {repo: $repo}) RETURN count(n) AS v")?,
            edges: count("MATCH (:CodeNode {repo: $repo})-[e]->() RETURN count(e) AS v")?,
            unresolved: count("MATCH (u:UnresolvedRef {repo: $repo}) RETURN count(u) AS v")?,
        })
    }
}

/// What a save must change: which files' slices are rewritten, which went, and which of their
/// stored nodes the new graph no longer has.
struct SavePlan {
    /// Files whose slice of the graph changed (or is new).
    changed: Vec<String>,
    /// Files stored before and gone now.
    removed: Vec<String>,
    /// Changed or removed files that have rows to clear.
    gone: Vec<String>,
    /// Nodes of rewritten files that the new graph no longer has.
    stale: Vec<String>,
    /// The IndexedFile rows to write: files whose content or slice changed.
    file_rows: Vec<(BoltType, usize)>,
}

impl Neo4jStore {
    /// Compare the stored fingerprints with the new graph's slices.
    fn plan_save(
        &self,
        files: &[(String, FileFacts)],
        slices: &HashMap<&str, Slice<'_>>,
    ) -> Result<SavePlan, LibrarianError> {
        // What the database holds now: each file's content hash and graph-slice fingerprint.
        let mut stored: HashMap<String, (String, String)> = HashMap::new();
        self.each_row(
            query(
                "MATCH (f:IndexedFile {repo: $repo}) RETURN f.path AS path, f.hash AS hash, \
                 coalesce(f.slice, '') AS slice",
            )
            .param("repo", self.repo.as_str()),
            "reading indexed files",
            |r| {
                stored.insert(r.get("path")?, (r.get("hash")?, r.get("slice")?));
                Ok(())
            },
        )?;
        let fingerprint = |p: &str| {
            slices
                .get(p)
                .map_or(String::new(), |s| s.fingerprint.clone())
        };
        // A file's slice is rewritten only when it changed; an unchanged file keeps its rows.
        let changed: Vec<String> = files
            .iter()
            .map(|(_, f)| f.path.clone())
            .filter(|p| stored.get(p).is_none_or(|(_, old)| *old != fingerprint(p)))
            .collect();
        let current: std::collections::HashSet<&str> =
            files.iter().map(|(_, f)| f.path.as_str()).collect();
        let removed: Vec<String> = stored
            .keys()
            .filter(|p| !current.contains(p.as_str()))
            .cloned()
            .collect();
        let file_rows = files
            .iter()
            .filter(|(hash, f)| {
                stored.get(&f.path).is_none_or(|(old, _)| old != hash) || changed.contains(&f.path)
            })
            .map(|(hash, f)| {
                let json = serde_json::to_string(f).expect("facts serialize");
                row(vec![
                    ("uid", s(&self.uid(&f.path))),
                    ("path", s(&f.path)),
                    ("hash", s(hash)),
                    ("facts", s(&json)),
                    ("slice", s(&fingerprint(&f.path))),
                ])
            })
            .collect();
        let gone: Vec<String> = changed
            .iter()
            .chain(&removed)
            .filter(|p| stored.contains_key(*p))
            .cloned()
            .collect();
        let stale = self.stale_nodes(&gone, &changed, slices)?;
        Ok(SavePlan {
            changed,
            removed,
            gone,
            stale,
            file_rows,
        })
    }

    /// Nodes of rewritten files that the new graph no longer has. Nodes that stay keep the
    /// edges other files have into them, so they are merged, not re-created.
    fn stale_nodes(
        &self,
        gone: &[String],
        changed: &[String],
        slices: &HashMap<&str, Slice<'_>>,
    ) -> Result<Vec<String>, LibrarianError> {
        let mut stale = Vec::new();
        if gone.is_empty() {
            return Ok(stale);
        }
        let new_uids: std::collections::HashSet<String> = changed
            .iter()
            .filter_map(|p| slices.get(p.as_str()))
            .flat_map(|s| s.nodes.iter())
            .map(|n| self.uid(&n.id))
            .collect();
        self.each_row(
            query(
                "UNWIND $files AS f MATCH (n:CodeNode {file: f}) WHERE n.repo = $repo \
                 RETURN n.uid AS uid",
            )
            .param("files", strings(gone))
            .param("repo", self.repo.as_str()),
            "reading the nodes of changed files",
            |r| {
                let uid: String = r.get("uid")?;
                if !new_uids.contains(&uid) {
                    stale.push(uid);
                }
                Ok(())
            },
        )?;
        Ok(stale)
    }

    /// Write a planned save in one transaction: clear what changed or went, then merge files,
    /// nodes, edges and unresolved references in batches.
    fn write_save(
        &self,
        slices: &HashMap<&str, Slice<'_>>,
        plan: &SavePlan,
    ) -> Result<usize, LibrarianError> {
        let repo = self.repo.as_str();
        let empty = Slice::default();
        let slice_of = |p: &str| slices.get(p).unwrap_or(&empty);
        let changed = &plan.changed;
        let node_rows = changed
            .iter()
            .flat_map(|p| slice_of(p).nodes.iter())
            .map(|n| self.node_row(n));
        let edge_rows = |kind: EdgeKind| {
            changed
                .iter()
                .flat_map(|p| slice_of(p).edges.iter())
                .filter(move |e| e.kind == kind)
                .map(|e| {
                    row(vec![
                        ("s", s(&self.uid(&e.source))),
                        ("t", s(&self.uid(&e.target))),
                        ("line", int(e.line)),
                        ("confidence", BoltType::Float(BoltFloat::new(e.confidence))),
                    ])
                })
        };
        // Unresolved references have no identity of their own: their file and position in it
        // are the key, and a changed file's old ones are deleted first.
        let unresolved_rows = changed.iter().flat_map(|p| {
            slice_of(p)
                .unresolved
                .iter()
                .enumerate()
                .map(move |(i, u)| {
                    row(vec![
                        ("uid", s(&self.uid(&format!("{p}\u{1f}{i}")))),
                        ("source", s(&u.source)),
                        ("name", s(&u.name)),
                        ("file", s(&u.file)),
                        ("line", int(u.line)),
                    ])
                })
        });
        self.rt.block_on(async {
            let mut txn = self
                .graph
                .start_txn()
                .await
                .map_err(|e| err("starting a transaction", e))?;
            self.clear(&mut txn, plan).await?;
            let mut written = batched(
                &mut txn,
                "UNWIND $rows AS r MERGE (f:IndexedFile {uid: r.uid}) SET f.repo = $repo, \
                 f.path = r.path, f.hash = r.hash, f.facts = r.facts, f.slice = r.slice",
                plan.file_rows.iter().cloned(),
                repo,
                "writing indexed files",
            )
            .await?;
            written += batched(
                &mut txn,
                "UNWIND $rows AS r MERGE (n:CodeNode {uid: r.uid}) SET n.repo = $repo, \
                 n.id = r.id, n.kind = r.kind, n.symbol = r.symbol, n.file = r.file, \
                 n.start_line = r.start_line, n.end_line = r.end_line, \
                 n.start_byte = r.start_byte, n.end_byte = r.end_byte, \
                 n.signature = r.signature, n.doc = r.doc, n.hash = r.hash",
                node_rows,
                repo,
                "writing nodes",
            )
            .await?;
            for kind in EdgeKind::ALL {
                let cypher = format!(
                    "UNWIND $rows AS r MATCH (a:CodeNode {{uid: r.s}}) MATCH (b:CodeNode {{uid: r.t}}) \
                     MERGE (a)-[e:{} {{line: r.line}}]->(b) SET e.confidence = r.confidence",
                    kind.name()
                );
                written +=
                    batched(&mut txn, &cypher, edge_rows(kind), repo, "writing edges").await?;
            }
            written += batched(
                &mut txn,
                "UNWIND $rows AS r MERGE (u:UnresolvedRef {uid: r.uid}) SET u.repo = $repo, \
                 u.source = r.source, u.name = r.name, u.file = r.file, u.line = r.line",
                unresolved_rows,
                repo,
                "writing unresolved references",
            )
            .await?;
            txn.run(
                query(
                    "MERGE (g:OuroborosGraph {uid: $repo}) SET g.repo = $repo, \
                     g.schema_version = $version",
                )
                .param("repo", repo)
                .param("version", SCHEMA_VERSION),
            )
            .await
            .map_err(|e| err("writing the schema version", e))?;
            txn.commit()
                .await
                .map_err(|e| err("committing the graph", e))?;
            Ok(written)
        })
    }

    /// Clear what changed or went: the outgoing edges and unresolved references of those
    /// files, their vanished nodes, and the records of deleted files. Each statement goes
    /// through an index (file or uid); a first save has nothing to clear.
    async fn clear(&self, txn: &mut neo4rs::Txn, plan: &SavePlan) -> Result<(), LibrarianError> {
        let removed_uids: Vec<String> = plan.removed.iter().map(|p| self.uid(p)).collect();
        let clear = [
            (
                "UNWIND $list AS f MATCH (n:CodeNode {file: f})-[e]->() WHERE n.repo = $repo DELETE e",
                strings(&plan.gone),
            ),
            (
                "UNWIND $list AS f MATCH (u:UnresolvedRef {file: f}) WHERE u.repo = $repo DELETE u",
                strings(&plan.gone),
            ),
            (
                "UNWIND $list AS u MATCH (n:CodeNode {uid: u}) DETACH DELETE n",
                strings(&plan.stale),
            ),
            (
                "UNWIND $list AS u MATCH (f:IndexedFile {uid: u}) DELETE f",
                strings(&removed_uids),
            ),
        ];
        for (cypher, list) in clear {
            if matches!(&list, BoltType::List(l) if l.value.is_empty()) {
                continue;
            }
            txn.run(
                query(cypher)
                    .param("repo", self.repo.as_str())
                    .param("list", list),
            )
            .await
            .map_err(|e| err("removing outdated rows", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_a_bolt_uri() {
        assert_eq!(host_port("bolt://db.local:7688"), "db.local:7688");
        assert_eq!(host_port("neo4j://db.local"), "db.local:7687");
        assert_eq!(host_port("bolt://127.0.0.1:1/"), "127.0.0.1:1");
        assert_eq!(host_port("bolt+s://[::1]:9000"), "[::1]:9000");
    }

    #[test]
    fn the_message_of_a_refused_begin() {
        let debug = r#"unexpected response for BEGIN: Failure(Failure { metadata: BoltMap { value: {BoltString { value: "code" }: String(BoltString { value: "Neo.ClientError.Database.DatabaseNotFound" }), BoltString { value: "message" }: String(BoltString { value: "Cannot open database: nope" })} } })"#;
        assert_eq!(
            failure_message(debug).as_deref(),
            Some("Cannot open database: nope")
        );
        assert_eq!(failure_message("something else"), None);
    }
}
