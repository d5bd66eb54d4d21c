//! The local planner on a small project: edit units, callees first, context, warnings.

use std::fs;
use std::path::Path;

use ouroboros::librarian::{self, CodeGraph, GraphStore, IndexOptions, SqliteStore};
use ouroboros::reasoner::{self, ContextRole, PlanError};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn graph(root: &Path) -> CodeGraph {
    let mut store = SqliteStore::open(&librarian::default_db(root)).unwrap();
    librarian::index(
        root,
        &mut store,
        &IndexOptions {
            max_file_size: 1 << 20,
        },
        &|_, _| {},
    )
    .unwrap();
    CodeGraph::new(store.load_graph().unwrap())
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "svc/__init__.py", "");
    write(
        r,
        "svc/users.py",
        "TTL = 60\n\ndef load(uid):\n    return fetch(uid)\n\ndef fetch(uid):\n    return {'id': uid, 'ttl': TTL}\n\ndef _ping():\n    return ping_back()\n\ndef ping_back():\n    return _ping()\n",
    );
    write(
        r,
        "app.py",
        "from svc.users import load\n\ndef main():\n    return load(1)\n",
    );
    write(
        r,
        "tests/test_users.py",
        "from svc.users import load\n\ndef test_load():\n    assert load(1)\n",
    );
    dir
}

#[test]
fn units_come_callees_first_with_their_context() {
    let p = project();
    let g = graph(p.path());
    let plan = reasoner::plan(&g, "cache users", &["svc/users.py".into()], &[]).unwrap();
    let order: Vec<&str> = plan.units.iter().map(|u| u.symbol.as_str()).collect();
    let pos = |s: &str| order.iter().position(|o| *o == s).unwrap();
    assert!(pos("svc.users.fetch") < pos("svc.users.load"), "{order:?}");
    assert_eq!(plan.units.len(), 4, "{order:?}");

    let load = &plan.units[pos("svc.users.load")];
    assert_eq!(load.callers, vec!["app.main", "tests.test_users.test_load"]);
    assert_eq!(load.callees, vec!["svc.users.fetch"]);
    assert_eq!(load.tests, vec!["tests/test_users.py"]);
    assert!(load.blast_radius >= 2);
    assert!(load.public_api);
    assert_eq!(load.context[0].symbol, "svc.users.fetch");
    assert_eq!(load.context[0].role, ContextRole::Definition);
    assert!(load
        .context
        .iter()
        .any(|c| c.symbol == "app.main" && c.role == ContextRole::CallerSignature));
    let fetch = &plan.units[pos("svc.users.fetch")];
    assert!(fetch.context.iter().any(|c| c.symbol == "svc.users.TTL"));
    assert!(!plan.units[pos("svc.users._ping")].public_api);

    let w = plan.warnings.join("\n");
    assert!(
        w.contains("call cycle among svc.users._ping, svc.users.ping_back"),
        "{w}"
    );
    assert!(
        w.contains("svc.users.load is public API with 2 caller(s)"),
        "{w}"
    );
}

#[test]
fn functions_narrow_the_plan_and_bad_names_are_errors() {
    let p = project();
    let g = graph(p.path());
    let plan = reasoner::plan(&g, "t", &["svc/users.py".into()], &["load".into()]).unwrap();
    assert_eq!(plan.units.len(), 1);
    assert_eq!(plan.units[0].reason, "named with --function load");
    assert!(matches!(
        reasoner::plan(&g, "t", &["svc/users.py".into()], &["nope".into()]),
        Err(PlanError::UnknownFunction { .. })
    ));
    assert!(matches!(
        reasoner::plan(&g, "t", &["svc/none.py".into()], &[]),
        Err(PlanError::UnknownTarget(_))
    ));
}
