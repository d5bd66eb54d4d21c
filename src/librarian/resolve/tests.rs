//! The resolution rules, one by one, on small in-memory projects.

use std::path::Path;

use super::*;
use crate::lang::{self, Language, SourceKind};
use crate::librarian::{ecmascript, extract};

fn graph(files: &[(&str, &str)]) -> Graph {
    let facts: Vec<FileFacts> = files
        .iter()
        .map(|(path, src)| {
            let language = SourceKind::from_path(Path::new(path)).unwrap().language;
            let tree = lang::parse(src, language).unwrap();
            match language {
                Language::Python => extract::extract_python(path, src, &tree),
                _ => ecmascript::extract(path, src, &tree, language),
            }
        })
        .collect();
    let refs: Vec<&FileFacts> = facts.iter().collect();
    build(&refs)
}

fn symbol<'g>(g: &'g Graph, id: &str) -> &'g str {
    &g.nodes.iter().find(|n| n.id == id).unwrap().symbol
}

/// The confidence of the `kind` edge from `from` to `to`, if there is one.
fn edge(g: &Graph, kind: EdgeKind, from: &str, to: &str) -> Option<f64> {
    g.edges
        .iter()
        .filter(|e| e.kind == kind)
        .find(|e| symbol(g, &e.source) == from && symbol(g, &e.target) == to)
        .map(|e| e.confidence)
}

fn unresolved(g: &Graph, from: &str) -> Vec<String> {
    g.unresolved
        .iter()
        .filter(|u| symbol(g, &u.source) == from)
        .map(|u| u.name.clone())
        .collect()
}

#[test]
fn relative_imports_reexports_and_aliases_resolve_with_full_confidence() {
    let g = graph(&[
        ("pkg/__init__.py", "from .core import run\n"),
        (
            "pkg/core.py",
            "def run():\n    return helper()\n\ndef helper():\n    return 1\n",
        ),
        (
            "app.py",
            "from pkg import run\nimport pkg.core as c\n\ndef main():\n    run()\n    c.helper()\n",
        ),
    ]);
    assert_eq!(
        edge(&g, EdgeKind::Calls, "app.main", "pkg.core.run"),
        Some(1.0)
    );
    assert_eq!(
        edge(&g, EdgeKind::Calls, "app.main", "pkg.core.helper"),
        Some(1.0)
    );
    assert_eq!(
        edge(&g, EdgeKind::Calls, "pkg.core.run", "pkg.core.helper"),
        Some(1.0)
    );
    assert!(edge(&g, EdgeKind::Imports, "app", "pkg.core.run").is_some());
}

#[test]
fn methods_resolve_through_self_bases_and_constructed_receivers() {
    let g = graph(&[
        ("base.py", "class Base:\n    def save(self):\n        return 1\n"),
        (
            "shop.py",
            "from base import Base\n\nclass Cart(Base):\n    def add(self):\n        return self.save()\n\ndef use():\n    c = Cart()\n    c.add()\n    Cart().save()\n",
        ),
    ]);
    assert!(edge(&g, EdgeKind::Inherits, "shop.Cart", "base.Base").is_some());
    assert_eq!(
        edge(&g, EdgeKind::Calls, "shop.Cart.add", "base.Base.save"),
        Some(1.0)
    );
    assert_eq!(
        edge(&g, EdgeKind::Calls, "shop.use", "shop.Cart.add"),
        Some(1.0)
    );
    assert_eq!(
        edge(&g, EdgeKind::Calls, "shop.use", "base.Base.save"),
        Some(1.0)
    );
}

#[test]
fn calling_a_class_is_calling_its_constructor() {
    let g = graph(&[(
        "m.py",
        "class K:\n    def __init__(self):\n        self.n = 1\n\ndef make():\n    return K()\n",
    )]);
    assert_eq!(
        edge(&g, EdgeKind::Calls, "m.make", "m.K.__init__"),
        Some(1.0)
    );
}

#[test]
fn nested_helpers_resolve_by_scope_and_are_never_guessed() {
    let g = graph(&[(
        "m.py",
        "def outer():\n    def helper():\n        return 1\n    return helper()\n\ndef other():\n    return helper()\n",
    )]);
    assert_eq!(
        edge(&g, EdgeKind::Calls, "m.outer", "m.outer.<locals>.helper"),
        Some(1.0)
    );
    assert!(edge(&g, EdgeKind::Calls, "m.other", "m.outer.<locals>.helper").is_none());
    assert_eq!(unresolved(&g, "m.other"), ["helper"]);
}

#[test]
fn unique_names_are_guessed_at_half_confidence_but_builtins_are_not() {
    let g = graph(&[
        ("a.py", "def parse(x):\n    return x\n"),
        (
            "b.py",
            "def go(obj, s):\n    obj.parse(1)\n    sorted([])\n    s.strip()\n",
        ),
    ]);
    assert_eq!(edge(&g, EdgeKind::Calls, "b.go", "a.parse"), Some(0.5));
    let mut left = unresolved(&g, "b.go");
    left.sort();
    assert_eq!(left, ["s.strip", "sorted"]);
}

#[test]
fn members_of_outside_modules_are_not_guessed() {
    let g = graph(&[
        ("a.py", "def readlink(p):\n    return p\n"),
        (
            "b.py",
            "import os\n\ndef go(p):\n    return os.readlink(p)\n",
        ),
    ]);
    assert!(edge(&g, EdgeKind::Calls, "b.go", "a.readlink").is_none());
    assert_eq!(unresolved(&g, "b.go"), ["os.readlink"]);
}

#[test]
fn module_constants_are_references_unless_shadowed() {
    let g = graph(&[(
        "m.py",
        "LIMIT = 3\n\ndef f():\n    return LIMIT\n\ndef g(LIMIT):\n    return LIMIT\n",
    )]);
    assert!(edge(&g, EdgeKind::References, "m.f", "m.LIMIT").is_some());
    assert!(edge(&g, EdgeKind::References, "m.g", "m.LIMIT").is_none());
}

#[test]
fn es_modules_index_files_and_require_resolve() {
    let g = graph(&[
        ("lib/index.js", "export { make } from './make.js';\n"),
        ("lib/make.js", "export function make() { return 1; }\n"),
        (
            "app.js",
            "import { make } from './lib';\nconst m = require('./lib/make');\nfunction main() { make(); m.make(); }\n",
        ),
    ]);
    assert_eq!(
        edge(&g, EdgeKind::Calls, "app.js:main", "lib/make.js:make"),
        Some(1.0)
    );
    assert!(
        unresolved(&g, "app.js:main").is_empty(),
        "{:?}",
        g.unresolved
    );
}

#[test]
fn destructured_requires_resolve_calls_in_test_callbacks() {
    let g = graph(&[
        (
            "util.js",
            "function helper(a) { return a + 1; }\nmodule.exports = { helper };\n",
        ),
        (
            "util.test.js",
            "const { helper } = require('./util.js');\ntest('adds', () => { helper(1); });\n",
        ),
    ]);
    assert_eq!(
        edge(&g, EdgeKind::Calls, "util.test.js", "util.js:helper"),
        Some(1.0)
    );
}

#[test]
fn new_instances_and_this_resolve_methods_in_typescript() {
    let g = graph(&[(
        "shop.ts",
        "class Cart {\n  add(): number { return this.total(); }\n  total(): number { return 1; }\n}\nfunction use(): void {\n  const c = new Cart();\n  c.add();\n}\n",
    )]);
    assert_eq!(
        edge(&g, EdgeKind::Calls, "shop.ts:use", "shop.ts:Cart.add"),
        Some(1.0)
    );
    assert_eq!(
        edge(
            &g,
            EdgeKind::Calls,
            "shop.ts:Cart.add",
            "shop.ts:Cart.total"
        ),
        Some(1.0)
    );
}

#[test]
fn a_call_written_twice_on_a_line_is_one_edge() {
    let g = graph(&[(
        "m.py",
        "def f():\n    return 1\n\ndef g():\n    return f() + f()\n",
    )]);
    let n = g
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Calls && symbol(&g, &e.source) == "m.g")
        .count();
    assert_eq!(n, 1);
}
