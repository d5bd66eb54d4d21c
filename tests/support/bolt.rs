//! The real Bolt server the Neo4j-store tests talk to.
//!
//! `.ci/run` starts one with `scripts/bolt-server.sh` and exports `OUROBOROS_TEST_BOLT_URI`,
//! `OUROBOROS_TEST_BOLT_PASSWORD` and `OUROBOROS_TEST_BOLT_DATABASE`. Without those, the first
//! test that needs a server starts one itself from the installed package (no download here:
//! installing is `scripts/bolt-server.sh install`, which `.ci/run` does), tied to this test
//! process so it stops when the tests end.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use ouroboros::librarian::BoltConfig;

pub struct BoltServer {
    pub config: BoltConfig,
    /// Kept so the data directory outlives the server.
    _dir: Option<tempfile::TempDir>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start() -> BoltServer {
    let timeout = Duration::from_secs(30);
    if let Ok(uri) = std::env::var("OUROBOROS_TEST_BOLT_URI") {
        return BoltServer {
            config: BoltConfig {
                uri,
                user: std::env::var("OUROBOROS_TEST_BOLT_USER").unwrap_or_else(|_| "root".into()),
                password: std::env::var("OUROBOROS_TEST_BOLT_PASSWORD").expect(
                    "OUROBOROS_TEST_BOLT_PASSWORD must be set with OUROBOROS_TEST_BOLT_URI",
                ),
                database: std::env::var("OUROBOROS_TEST_BOLT_DATABASE").ok(),
                connect_timeout: timeout,
            },
            _dir: None,
        };
    }
    let dir = tempfile::tempdir().expect("temp dir for the Bolt server");
    let script = repo_root().join("scripts/bolt-server.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .arg(dir.path())
        .arg(std::process::id().to_string())
        .output()
        .expect("running scripts/bolt-server.sh");
    assert!(
        out.status.success(),
        "could not start the Bolt test server ({}):\n{}\nInstall it once with `scripts/bolt-server.sh install` (or run .ci/run).",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| -> String {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.path().join(name).display()))
            .trim()
            .to_string()
    };
    BoltServer {
        config: BoltConfig {
            uri: read("uri"),
            user: "root".into(),
            password: read("password"),
            database: Some(read("database")),
            connect_timeout: timeout,
        },
        _dir: Some(dir),
    }
}

/// The shared server, started on first use.
pub fn server() -> &'static BoltServer {
    static SERVER: OnceLock<BoltServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// Tests that write to the server take turns: each uses its own repository key, but one writer
/// at a time keeps the server's work (and any failure) easy to read.
pub fn turn() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
