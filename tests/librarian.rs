//! The code graph on a small Python project: cross-file resolution, incremental indexing, and
//! the queries `deps` prints. (The store-agnostic suite will run against Neo4j too once that
//! backend lands; for now it runs on the embedded SQLite store.)

use std::fs;
use std::path::Path;

use ouroboros::librarian::{self, CodeGraph, GraphStore, IndexOptions, SqliteStore};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "shop/__init__.py", "from .store import Store\n");
    write(r, "shop/base.py", "class Base:\n    def save(self):\n        return self.validate()\n\n    def validate(self):\n        return True\n");
    write(
        r,
        "shop/store.py",
        "from .base import Base\nfrom . import util\n\nclass Store(Base):\n    def __init__(self):\n        self.items = {}\n\n    def add(self, item):\n        self.items[item] = util.clean(item)\n        return self.save()\n",
    );
    write(
        r,
        "shop/util.py",
        "import re\n\ndef clean(text):\n    return re.sub(' ', '', text).strip()\n",
    );
    write(r, "app.py", "from shop import Store\nimport shop.util as u\n\ndef main():\n    s = Store()\n    s.add('a b')\n    print(u.clean(' x '))\n");
    write(
        r,
        "tests/test_store.py",
        "from shop.store import Store\n\ndef test_add():\n    Store().add('x')\n",
    );
    dir
}

fn index(root: &Path) -> librarian::IndexSummary {
    let mut store = SqliteStore::open(&librarian::default_db(root)).unwrap();
    librarian::index(
        root,
        &mut store,
        &IndexOptions {
            max_file_size: 1 << 20,
        },
        &|_, _| {},
    )
    .unwrap()
}

fn graph(root: &Path) -> CodeGraph {
    CodeGraph::new(
        SqliteStore::open(&librarian::default_db(root))
            .unwrap()
            .load_graph()
            .unwrap(),
    )
}

fn names(v: Vec<librarian::query::Reached>) -> Vec<String> {
    v.into_iter().map(|r| r.symbol).collect()
}

#[test]
fn calls_resolve_across_files() {
    let p = project();
    let s = index(p.path());
    assert_eq!((s.files, s.parsed), (6, 6));
    let g = graph(p.path());
    let main = g.find("app.main").unwrap();
    let callees = names(g.callees(main, 1));
    // `Store()` runs Store.__init__ (re-exported through shop/__init__.py), `s.add` through the
    // constructor binding, `u.clean` through the module alias.
    assert!(
        callees.contains(&"shop.store.Store.__init__".to_string()),
        "{callees:?}"
    );
    assert!(
        callees.contains(&"shop.store.Store.add".to_string()),
        "{callees:?}"
    );
    assert!(
        callees.contains(&"shop.util.clean".to_string()),
        "{callees:?}"
    );
    let add = g.find("shop.store.Store.add").unwrap();
    let add_callees = names(g.callees(add, 1));
    // `self.save()` is inherited from Base; `util.clean` via `from . import util`.
    assert!(
        add_callees.contains(&"shop.base.Base.save".to_string()),
        "{add_callees:?}"
    );
    assert!(
        add_callees.contains(&"shop.util.clean".to_string()),
        "{add_callees:?}"
    );
    // Depth 2 reaches Base.validate through Base.save.
    assert!(names(g.callees(add, 2)).contains(&"shop.base.Base.validate".to_string()));
    // Builtins and the stdlib stay unresolved, by name.
    assert!(g.graph.unresolved.iter().any(|u| u.name == "print"));
    assert!(g.graph.unresolved.iter().any(|u| u.name == "re.sub"));
}

#[test]
fn callers_and_blast_radius() {
    let p = project();
    index(p.path());
    let g = graph(p.path());
    let clean = g.find("shop.util.clean").unwrap();
    let callers = names(g.callers(clean, 1));
    assert_eq!(callers, vec!["app.main", "shop.store.Store.add"]);
    let radius = names(g.blast_radius(clean));
    assert!(
        radius.contains(&"tests.test_store.test_add".to_string()),
        "{radius:?}"
    );
    let validate = g.find("shop.base.Base.validate").unwrap();
    assert!(g.blast_radius(validate).len() >= 4);
    assert!(g.find("nope.nothing").is_none());
    assert_eq!(g.suggest("clean"), vec!["shop.util.clean"]);
}

#[test]
fn indexing_is_incremental() {
    let p = project();
    let r = p.path();
    index(r);
    let again = index(r);
    assert!(again.unchanged);
    assert_eq!(again.parsed, 0);

    // A changed file is re-parsed, and edges into it are re-resolved.
    write(r, "shop/util.py", "def scrub(text):\n    return text\n");
    let changed = index(r);
    assert_eq!(changed.parsed, 1);
    let g = graph(r);
    assert!(g.find("shop.util.clean").is_none());
    assert!(g.graph.unresolved.iter().any(|u| u.name == "u.clean"));

    // A deleted file's nodes and edges go.
    fs::remove_file(r.join("app.py")).unwrap();
    let removed = index(r);
    assert_eq!(removed.removed, 1);
    assert!(graph(r).find("app.main").is_none());
}

#[test]
fn bad_files_are_warned_about_and_skipped() {
    let p = project();
    let r = p.path();
    fs::write(r.join("bin.py"), b"x = 1\0\0").unwrap();
    fs::write(r.join("latin.py"), b"s = '\xe9'\n").unwrap();
    write(r, "big.py", &"x = 1\n".repeat(300_000));
    write(
        r,
        "broken.py",
        "def f(:\n    pass\n\ndef g():\n    return f()\n",
    );
    let s = index(r);
    let w = s.warnings.join("\n");
    assert!(w.contains("bin.py: skipped: binary"), "{w}");
    assert!(w.contains("latin.py: skipped: not valid UTF-8"), "{w}");
    assert!(w.contains("big.py: skipped") && w.contains("limit"), "{w}");
    // A file that does not parse is still indexed as far as tree-sitter recovers.
    assert!(graph(r).find("broken.g").is_some());
}

#[test]
fn an_older_schema_is_rebuilt() {
    let p = project();
    let r = p.path();
    index(r);
    let db = librarian::default_db(r);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE meta SET value = '0' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    let store = SqliteStore::open(&db).unwrap();
    assert!(store.rebuilt);
    assert!(store.load_facts().unwrap().is_empty());
}

#[test]
fn typescript_and_javascript_resolve_through_imports_and_index_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "src/util.ts", "export function clean(s: string): string {\n  return s.trim();\n}\n\nexport class Parser {\n  parse(s: string) {\n    return this.tokens(clean(s));\n  }\n  tokens(s: string) {\n    return s.split(' ');\n  }\n}\n");
    write(
        r,
        "src/index.ts",
        "export { clean } from './util';\nexport * from './util';\n",
    );
    write(r, "src/app.tsx", "import { clean, Parser } from './index';\n\nexport const App = () => {\n  const p = new Parser();\n  return <div>{p.parse(clean(' x '))}</div>;\n};\n");
    write(r, "lib/legacy.js", "const util = require('../src/util');\nfunction run() {\n  return util.clean('a');\n}\nmodule.exports = { run };\n");
    let s = index(r);
    assert_eq!(s.files, 4);
    let g = graph(r);
    let app = g
        .find("src/app.tsx:App")
        .expect("arrow-function component is a function");
    let callees = names(g.callees(app, 1));
    assert!(
        callees.contains(&"src/util.ts:clean".to_string()),
        "{callees:?}"
    );
    assert!(
        callees.contains(&"src/util.ts:Parser.parse".to_string()),
        "{callees:?}"
    );
    let parse = g.find("src/util.ts:Parser.parse").unwrap();
    assert!(names(g.callees(parse, 1)).contains(&"src/util.ts:Parser.tokens".to_string()));
    let clean = g.find("src/util.ts:clean").unwrap();
    let callers = names(g.callers(clean, 1));
    assert!(
        callers.contains(&"lib/legacy.js:run".to_string()),
        "{callers:?}"
    );
    assert!(callers.contains(&"src/util.ts:Parser.parse".to_string()));
}

#[test]
fn a_name_defined_twice_is_one_node() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.py", "import sys\nif sys.platform == 'win32':\n    def f():\n        return 1\nelse:\n    def f():\n        return 2\n\ndef g():\n    return f()\n");
    let s = index(dir.path());
    let g = graph(dir.path());
    assert_eq!(
        s.nodes,
        g.graph.nodes.len(),
        "the summary counts what the store holds"
    );
    assert_eq!(
        g.graph.nodes.iter().filter(|n| n.symbol == "m.f").count(),
        1
    );
    assert_eq!(names(g.callers(g.find("m.f").unwrap(), 1)), vec!["m.g"]);
}

#[test]
fn tests_that_reach_a_symbol_and_personalised_pagerank() {
    let p = project();
    index(p.path());
    let g = graph(p.path());
    let clean = g.find("shop.util.clean").unwrap();
    assert_eq!(g.tests_reaching(clean), vec!["tests/test_store.py"]);
    assert!(g.tests_reaching(g.find("app.main").unwrap()).is_empty());

    let main = g.find("app.main").unwrap();
    let ranked = g.personalized_pagerank(&[main], 10);
    let order: Vec<&str> = ranked.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(order[0], "app.main", "the walk restarts at the target");
    // What main uses is ranked; what only the tests use is not reachable from it.
    for used in [
        "shop.store.Store.add",
        "shop.util.clean",
        "shop.base.Base.save",
        "shop.base.Base.validate",
    ] {
        assert!(order.contains(&used), "{used} missing from {order:?}");
    }
    assert!(!order.contains(&"tests.test_store.test_add"));
    let total: f64 = ranked.iter().map(|(_, r)| r).sum();
    assert!(total <= 1.0 + 1e-9);
    let score = |s: &str| ranked.iter().find(|(n, _)| n == s).unwrap().1;
    // `save` is reached only through `add`, so it cannot outrank it.
    assert!(score("shop.store.Store.add") >= score("shop.base.Base.save"));
}
