//! `ouroboros index` killed with SIGKILL at random moments never leaves a damaged or half-saved
//! embedded graph: the database passes SQLite's integrity check, the stored files and the
//! stored nodes describe the same set of files (the whole old graph or the whole new one), and
//! the next index finishes normally.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ouroboros::librarian::{self, GraphStore, SqliteStore};

#[path = "support/jitter.rs"]
mod jitter;

/// A project big enough that saving takes a while: `n` modules calling each other.
fn write_project(root: &Path, n: usize, generation: u32) {
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::write(root.join("pkg/__init__.py"), "").unwrap();
    for i in 0..n {
        let mut src = format!("from pkg import m{} as prev\n\n", i.saturating_sub(1));
        for f in 0..40 {
            src.push_str(&format!(
                "def f{f}_{generation}(x):\n    return prev.f{f}_{generation}(x) + {i}\n\n"
            ));
        }
        std::fs::write(root.join(format!("pkg/m{i}.py")), src).unwrap();
    }
}

fn check_consistent(root: &Path) {
    let db = librarian::default_db(root);
    if !db.exists() {
        return;
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(conn);
    let store = SqliteStore::open(&db).unwrap();
    let files: BTreeSet<String> = store.load_facts().unwrap().into_keys().collect();
    let graph = store.load_graph().unwrap();
    let node_files: BTreeSet<String> = graph.nodes.iter().map(|n| n.file.clone()).collect();
    assert_eq!(
        files, node_files,
        "files and nodes come from different saves"
    );
    let ids: BTreeSet<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    for e in &graph.edges {
        assert!(
            ids.contains(e.source.as_str()) && ids.contains(e.target.as_str()),
            "dangling edge {e:?}"
        );
    }
}

#[test]
fn sigkill_mid_index_leaves_a_whole_graph() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let exe = env!("CARGO_BIN_EXE_ouroboros");
    for round in 0..10u32 {
        // Every round changes every file, so every index has a full graph to save.
        write_project(root, 300, round);
        let mut child = Command::new(exe)
            .args(["index", "."])
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100 + jitter::jitter(round, 1200)));
        let _ = child.kill();
        let _ = child.wait();
        check_consistent(root);
    }
    let done = Command::new(exe)
        .args(["index", "."])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(done.status.success());
    check_consistent(root);
    let store = SqliteStore::open(&librarian::default_db(root)).unwrap();
    assert_eq!(store.load_facts().unwrap().len(), 301);
}
