//! The code graph on small projects: cross-file resolution, incremental indexing, and the
//! queries `deps` prints. Every case runs twice, once on the embedded SQLite store and once on
//! a real Bolt server through the Neo4j store (see tests/support/bolt.rs).

use std::fs;
use std::path::Path;

use ouroboros::librarian::{self, CodeGraph, GraphStore, IndexOptions, Neo4jStore, SqliteStore};

#[path = "support/bolt.rs"]
mod bolt;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Bolt,
}

/// The key a repository gets in a shared Neo4j database, as the CLI makes it.
fn repo_key(root: &Path) -> String {
    root.canonicalize()
        .unwrap_or_else(|_| root.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn open(b: Backend, root: &Path) -> Box<dyn GraphStore> {
    match b {
        Backend::Sqlite => Box::new(SqliteStore::open(&librarian::default_db(root)).unwrap()),
        Backend::Bolt => {
            Box::new(Neo4jStore::connect(&bolt::server().config, &repo_key(root)).unwrap())
        }
    }
}

/// Each case is a function of the backend; this makes one `#[test]` per case and store.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $case() { super::$case(super::Backend::Sqlite) })*
        }
        mod neo4j {
            $(#[test] fn $case() { let _turn = super::bolt::turn(); super::$case(super::Backend::Bolt) })*
        }
    };
}

on_both_stores!(
    calls_resolve_across_files,
    callers_and_blast_radius,
    indexing_is_incremental,
    bad_files_are_warned_about_and_skipped,
    an_older_schema_is_rebuilt,
    typescript_and_javascript_resolve_through_imports_and_index_files,
    a_name_defined_twice_is_one_node,
    tests_that_reach_a_symbol_and_personalised_pagerank,
    both_stores_hold_the_same_graph,
    references_and_import_nodes,
    local_functions_resolve_and_builtins_are_not_guessed,
);

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

fn index(b: Backend, root: &Path) -> librarian::IndexSummary {
    let mut store = open(b, root);
    librarian::index(
        root,
        store.as_mut(),
        &IndexOptions {
            max_file_size: 1 << 20,
        },
        &|_, _| {},
    )
    .unwrap()
}

fn graph(b: Backend, root: &Path) -> CodeGraph {
    CodeGraph::new(open(b, root).load_graph().unwrap())
}

fn names(v: Vec<librarian::query::Reached>) -> Vec<String> {
    v.into_iter().map(|r| r.symbol).collect()
}

fn calls_resolve_across_files(b: Backend) {
    let p = project();
    let s = index(b, p.path());
    assert_eq!((s.files, s.parsed), (6, 6));
    let g = graph(b, p.path());
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

fn callers_and_blast_radius(b: Backend) {
    let p = project();
    index(b, p.path());
    let g = graph(b, p.path());
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

fn indexing_is_incremental(b: Backend) {
    let p = project();
    let r = p.path();
    index(b, r);
    let again = index(b, r);
    assert!(again.unchanged);
    assert_eq!(again.parsed, 0);

    // A changed file is re-parsed, and edges into it are re-resolved.
    write(r, "shop/util.py", "def scrub(text):\n    return text\n");
    let changed = index(b, r);
    assert_eq!(changed.parsed, 1);
    let g = graph(b, r);
    assert!(g.find("shop.util.clean").is_none());
    assert!(g.graph.unresolved.iter().any(|u| u.name == "u.clean"));

    // A deleted file's nodes and edges go.
    fs::remove_file(r.join("app.py")).unwrap();
    let removed = index(b, r);
    assert_eq!(removed.removed, 1);
    assert!(graph(b, r).find("app.main").is_none());
}

fn bad_files_are_warned_about_and_skipped(b: Backend) {
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
    #[cfg(unix)]
    {
        use std::os::unix::fs::{symlink, PermissionsExt};
        symlink("..", r.join("shop/loop")).unwrap();
        symlink(r.join("no/such/file.py"), r.join("dangling.py")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "lib.py", "def x():\n    return 1\n");
        symlink(outside.path(), r.join("vendored")).unwrap();
        // Root reads any file whatever its mode, so this part only bites as a normal user.
        write(r, "secret.py", "x = 1\n");
        fs::set_permissions(r.join("secret.py"), fs::Permissions::from_mode(0o000)).unwrap();
        let s = index(b, r);
        let w = s.warnings.join("\n");
        assert!(w.contains("shop/loop: skipped: symlink loop"), "{w}");
        assert!(w.contains("dangling.py: skipped:"), "{w}");
        assert!(
            w.contains("vendored: skipped: symlink to a folder outside the repository"),
            "{w}"
        );
        if unsafe { libc::geteuid() } != 0 {
            assert!(w.contains("secret.py: skipped:"), "{w}");
        }
        fs::set_permissions(r.join("secret.py"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(graph(b, r).find("vendored.lib.x").is_none());
        drop(outside);
    }
    let s = index(b, r);
    let w = s.warnings.join("\n");
    assert!(w.contains("bin.py: skipped: binary"), "{w}");
    assert!(w.contains("latin.py: skipped: not valid UTF-8"), "{w}");
    assert!(w.contains("big.py: skipped") && w.contains("limit"), "{w}");
    assert!(w.contains("broken.py: syntax errors"), "{w}");
    // A file that does not parse is still indexed as far as tree-sitter recovers.
    assert!(graph(b, r).find("broken.g").is_some());
}

fn an_older_schema_is_rebuilt(b: Backend) {
    let p = project();
    let r = p.path();
    index(b, r);
    let (rebuilt, facts) = match b {
        Backend::Sqlite => {
            let db = librarian::default_db(r);
            rusqlite::Connection::open(&db)
                .unwrap()
                .execute(
                    "UPDATE meta SET value = '0' WHERE key = 'schema_version'",
                    [],
                )
                .unwrap();
            let store = SqliteStore::open(&db).unwrap();
            (store.rebuilt, store.load_facts().unwrap())
        }
        Backend::Bolt => {
            let cfg = &bolt::server().config;
            let key = repo_key(r);
            set_bolt_schema_version(cfg, &key, 0);
            let store = Neo4jStore::connect(cfg, &key).unwrap();
            (store.rebuilt, store.load_facts().unwrap())
        }
    };
    assert!(rebuilt);
    assert!(facts.is_empty());
    assert!(!index(b, r).unchanged, "a rebuilt graph is indexed again");
}

/// Pretend an older Ouroboros wrote this repository's graph.
fn set_bolt_schema_version(cfg: &librarian::BoltConfig, repo: &str, version: i64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = neo4rs::ConfigBuilder::default()
            .uri(cfg.uri.as_str())
            .user(cfg.user.as_str())
            .password(cfg.password.as_str());
        if let Some(db) = &cfg.database {
            c = c.db(db.as_str());
        }
        let g = neo4rs::Graph::connect(c.build().unwrap()).await.unwrap();
        g.run(
            neo4rs::query("MATCH (g:OuroborosGraph {uid: $repo}) SET g.schema_version = $v")
                .param("repo", repo)
                .param("v", version),
        )
        .await
        .unwrap();
    });
}

/// The two stores give back exactly what was saved, so the later stages see the same graph
/// whichever one the user configured, after a first index and after incremental ones.
fn stored_equals_built(b: Backend, r: &Path) -> librarian::resolve::Graph {
    let sorted = |mut g: librarian::resolve::Graph| {
        g.nodes.sort_by(|a, b| a.id.cmp(&b.id));
        g.edges.sort_by(|a, b| {
            (&a.source, &a.target, a.kind.name(), a.line).cmp(&(
                &b.source,
                &b.target,
                b.kind.name(),
                b.line,
            ))
        });
        g.unresolved
            .sort_by(|a, b| (&a.source, &a.name, a.line).cmp(&(&b.source, &b.name, b.line)));
        g
    };
    let stored = sorted(open(b, r).load_graph().unwrap());
    let facts: Vec<_> = {
        let mut f: Vec<_> = open(b, r)
            .load_facts()
            .unwrap()
            .into_values()
            .map(|(_, f)| f)
            .collect();
        f.sort_by(|a, b| a.path.cmp(&b.path));
        f
    };
    let built = sorted(librarian::resolve::build(&facts.iter().collect::<Vec<_>>()));
    assert_eq!(stored.nodes, built.nodes);
    assert_eq!(stored.edges, built.edges);
    assert_eq!(stored.unresolved, built.unresolved);
    assert!(stored.edges.len() > 20, "{} edges", stored.edges.len());
    stored
}

fn both_stores_hold_the_same_graph(b: Backend) {
    let p = project();
    let r = p.path();
    write(r, "web/app.ts", "import { helper } from './lib';\nexport class App {\n  run() {\n    return helper(this.name());\n  }\n  name() {\n    return 'x';\n  }\n}\n");
    write(
        r,
        "web/lib.ts",
        "export function helper(s: string) {\n  return s.trim();\n}\n",
    );
    index(b, r);
    let first = stored_equals_built(b, r);
    // Edits that change other files' edges: a callee renamed, a file deleted, one added.
    write(r, "shop/util.py", "import re\n\ndef scrub(text):\n    return re.sub(' ', '', text)\n\ndef clean(text):\n    return scrub(text)\n");
    fs::remove_file(r.join("web/lib.ts")).unwrap();
    write(
        r,
        "web/more.ts",
        "export function helper(s: string) {\n  return s;\n}\n",
    );
    assert_eq!(index(b, r).parsed, 2);
    let second = stored_equals_built(b, r);
    assert_ne!(first.edges, second.edges);
    assert!(second.nodes.iter().all(|n| n.file != "web/lib.ts"));
}

fn typescript_and_javascript_resolve_through_imports_and_index_files(b: Backend) {
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
    let s = index(b, r);
    assert_eq!(s.files, 4);
    let g = graph(b, r);
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

fn a_name_defined_twice_is_one_node(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.py", "import sys\nif sys.platform == 'win32':\n    def f():\n        return 1\nelse:\n    def f():\n        return 2\n\ndef g():\n    return f()\n");
    let s = index(b, dir.path());
    let g = graph(b, dir.path());
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

fn tests_that_reach_a_symbol_and_personalised_pagerank(b: Backend) {
    let p = project();
    index(b, p.path());
    let g = graph(b, p.path());
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

/// A function that reads a module-level constant or passes a function along depends on it as
/// much as a caller does; import statements are nodes of their own.
fn references_and_import_nodes(b: Backend) {
    let p = project();
    let r = p.path();
    write(
        r,
        "shop/config.py",
        "LIMIT = 10\nRATE = 2\n\ndef scale(x):\n    return x * RATE\n\ndef shadow(LIMIT):\n    return LIMIT\n",
    );
    write(r, "shop/jobs.py", "from .config import LIMIT, scale\nfrom . import util\n\ndef run(items):\n    todo = items[:LIMIT]\n    return list(map(scale, todo))\n\ndef count():\n    global LIMIT\n    LIMIT = LIMIT + 1\n");
    write(r, "web/app.js", "import { helper } from './lib.js';\nconst TABLE = {};\nexport function handle(key) {\n  return TABLE[key] || helper;\n}\nfunction local() {\n  const TABLE = 1;\n  return TABLE;\n}\n");
    write(
        r,
        "web/lib.js",
        "export function helper() {\n  return 1;\n}\n",
    );
    index(b, r);
    let g = graph(b, r);
    let refs = |sym: &str| -> Vec<String> {
        let n = g.find(sym).unwrap_or_else(|| panic!("{sym} not in graph"));
        let id = &n.id;
        let mut v: Vec<String> = g
            .graph
            .edges
            .iter()
            .filter(|e| &e.source == id && e.kind == librarian::resolve::EdgeKind::References)
            .map(|e| {
                g.graph
                    .nodes
                    .iter()
                    .find(|n| n.id == e.target)
                    .unwrap()
                    .symbol
                    .clone()
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(refs("shop.config.scale"), vec!["shop.config.RATE"]);
    assert!(
        refs("shop.config.shadow").is_empty(),
        "a parameter shadows the constant"
    );
    // Through `from .config import LIMIT, scale`: a read and a function passed as a value.
    assert_eq!(
        refs("shop.jobs.run"),
        vec!["shop.config.LIMIT", "shop.config.scale"]
    );
    assert_eq!(
        refs("shop.jobs.count"),
        vec!["shop.config.LIMIT"],
        "`global` is not a local"
    );
    assert_eq!(
        refs("web/app.js:handle"),
        vec!["web/app.js:TABLE", "web/lib.js:helper"]
    );
    assert!(refs("web/app.js:local").is_empty());

    let limit = g.find("shop.config.LIMIT").unwrap();
    assert!(names(g.blast_radius(limit)).contains(&"shop.jobs.run".to_string()));
    let uses = names(g.uses(g.find("shop.jobs.run").unwrap()));
    assert_eq!(uses, vec!["shop.config.LIMIT", "shop.config.scale"]);

    let imports: Vec<(&str, &str)> = g
        .graph
        .nodes
        .iter()
        .filter(|n| n.kind == librarian::extract::NodeKind::Import && n.file == "shop/jobs.py")
        .map(|n| (n.symbol.as_str(), n.signature.as_str()))
        .collect();
    assert_eq!(
        imports,
        vec![
            ("shop.jobs.LIMIT", "from shop.config import LIMIT"),
            ("shop.jobs.scale", "from shop.config import scale"),
            ("shop.jobs.util", "from shop import util"),
        ]
    );
    let first = g
        .graph
        .nodes
        .iter()
        .find(|n| n.kind == librarian::extract::NodeKind::Import && n.file == "shop/jobs.py")
        .unwrap();
    assert_eq!(first.lines, (1, 1));
    let source = fs::read_to_string(r.join("shop/jobs.py")).unwrap();
    assert!(source[first.byte_range.0..first.byte_range.1].contains("LIMIT"));
    // An import binds a name but is not a definition: `deps shop.jobs.LIMIT` finds nothing.
    assert!(g.find("shop.jobs.LIMIT").is_none());
}

/// A call to a helper defined inside the calling function resolves through scope; a call to a
/// builtin (`sorted`, `text.strip()`) is not linked to the one same-named definition elsewhere,
/// and neither is a function nested in another function.
fn local_functions_resolve_and_builtins_are_not_guessed(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "a.py", "def outer(items):\n    def key(x):\n        return x\n    return sorted(key(items))\n\ndef tidy(text):\n    return text.strip()\n\ndef run():\n    return key(1)\n");
    write(
        r,
        "b.py",
        "def sorted(x):\n    return x\n\nclass Text:\n    def strip(self):\n        return self\n",
    );
    index(b, r);
    let g = graph(b, r);
    let calls = |sym: &str| names(g.callees(g.find(sym).unwrap(), 1));
    assert_eq!(calls("a.outer"), vec!["a.outer.<locals>.key"]);
    assert!(calls("a.tidy").is_empty(), "{:?}", calls("a.tidy"));
    assert!(
        calls("a.run").is_empty(),
        "a nested function is not reachable by name"
    );
    let unresolved: Vec<&str> = g.graph.unresolved.iter().map(|u| u.name.as_str()).collect();
    for name in ["sorted", "text.strip", "key"] {
        assert!(
            unresolved.contains(&name),
            "{name} missing from {unresolved:?}"
        );
    }
}
