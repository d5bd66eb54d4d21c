//! Where the code graph lives: the embedded SQLite file by default, or a Neo4j server.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::librarian::{BoltConfig, GraphStore, Neo4jStore, SqliteStore};

pub const USER_ENV: &str = "OUROBOROS_NEO4J_USER";
pub const PASSWORD_ENV: &str = "OUROBOROS_NEO4J_PASSWORD";

#[derive(Debug, Clone, clap::Args)]
pub struct GraphArgs {
    /// Keep the graph in Neo4j (or another Bolt 4.4 server) at bolt://HOST:PORT instead of
    /// .ouroboros/graph.db. The user and password come from OUROBOROS_NEO4J_USER (default
    /// `neo4j`) and OUROBOROS_NEO4J_PASSWORD, never from the command line.
    #[arg(long, value_name = "URI")]
    pub graph_uri: Option<String>,
    /// Database on the Neo4j server (default: the server's default database).
    #[arg(long, value_name = "NAME", requires = "graph_uri")]
    pub graph_database: Option<String>,
    /// Seconds to wait for the Neo4j server before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub graph_connect_timeout: f64,
}

impl Default for GraphArgs {
    /// The embedded store, as when no --graph-* option is given.
    fn default() -> Self {
        GraphArgs {
            graph_uri: None,
            graph_database: None,
            graph_connect_timeout: 10.0,
        }
    }
}

/// An opened store and where it is, for messages.
pub struct OpenedStore {
    pub store: Box<dyn GraphStore>,
    pub location: String,
    /// The stored graph had an older schema and was emptied.
    pub rebuilt: bool,
    /// Whether a graph may already be there (always true for a server; for the file, whether
    /// it exists), so `deps` can say "index first" instead of "symbol not found".
    pub existed: bool,
}

impl GraphArgs {
    pub fn open(&self, root: &Path) -> anyhow::Result<OpenedStore> {
        let Some(uri) = &self.graph_uri else {
            let db = crate::patch::state_path(root, "graph.db")?;
            let existed = db.is_file();
            let store =
                SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
            return Ok(OpenedStore {
                rebuilt: store.rebuilt,
                store: Box::new(store),
                location: db.display().to_string(),
                existed,
            });
        };
        let scheme = uri.split("://").next().unwrap_or("");
        if !uri.contains("://")
            || !matches!(
                scheme,
                "bolt" | "bolt+s" | "bolt+ssc" | "neo4j" | "neo4j+s" | "neo4j+ssc"
            )
        {
            bail!("--graph-uri {uri}: expected bolt://HOST:PORT (or neo4j://, bolt+s://)");
        }
        crate::offline::check(&format!("--graph-uri {uri}"))?;
        if !(self.graph_connect_timeout.is_finite() && self.graph_connect_timeout > 0.0) {
            bail!(
                "--graph-connect-timeout {}: must be a positive number of seconds",
                self.graph_connect_timeout
            );
        }
        let password = std::env::var(PASSWORD_ENV).map_err(|_| {
            anyhow::anyhow!("--graph-uri {uri}: set {PASSWORD_ENV} (and {USER_ENV}) to log in")
        })?;
        let config = BoltConfig {
            uri: uri.clone(),
            user: std::env::var(USER_ENV).unwrap_or_else(|_| "neo4j".into()),
            password,
            database: self.graph_database.clone(),
            connect_timeout: Duration::from_secs_f64(self.graph_connect_timeout),
        };
        // One database can hold many repositories; each is keyed by its absolute path.
        let key = root
            .canonicalize()
            .with_context(|| root.display().to_string())?
            .to_string_lossy()
            .into_owned();
        let store = Neo4jStore::connect(&config, &key)?;
        Ok(OpenedStore {
            rebuilt: store.rebuilt,
            store: Box::new(store),
            location: match &self.graph_database {
                Some(db) => format!("{uri} (database {db})"),
                None => uri.clone(),
            },
            existed: true,
        })
    }
}
