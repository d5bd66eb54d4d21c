//! Per-file facts from tree-sitter: definitions, imports, calls and constructor bindings. The
//! queries live in `queries/<language>/*.scm` and are compiled once per process.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Query, QueryCursor, QueryMatch, StreamingIterator};

use crate::lang::Language;

/// Bump whenever extraction or resolution changes what it produces, so stored graphs are
/// re-made (an unchanged repository otherwise keeps its stored graph as it is).
pub const EXTRACTOR_VERSION: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Module,
    Class,
    Function,
    Method,
    Variable,
    /// One name bound by an import statement.
    Import,
}

impl NodeKind {
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::File => "file",
            NodeKind::Module => "module",
            NodeKind::Class => "class",
            NodeKind::Function => "function",
            NodeKind::Method => "method",
            NodeKind::Variable => "variable",
            NodeKind::Import => "import",
        }
    }
}

/// A definition found in a file. `qualified` is relative to the module (`Class.method`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Def {
    pub kind: NodeKind,
    pub name: String,
    pub qualified: String,
    pub byte_range: (usize, usize),
    pub lines: (usize, usize),
    pub signature: String,
    pub doc: Option<String>,
    pub hash: String,
    /// Base classes as written (`Base`, `pkg.Base`).
    pub bases: Vec<String>,
}

/// `local` is bound to `module` (or to `module.name` when `name` is set).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Import {
    pub local: String,
    pub module: String,
    pub name: Option<String>,
    pub line: usize,
    /// The statement's span from its module to its bound name.
    #[serde(default)]
    pub byte_range: (usize, usize),
}

/// A module-level name read inside a definition that does not bind it locally (a candidate
/// REFERENCES edge; the resolver decides what, if anything, it names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reference {
    /// Qualified name of the enclosing definition.
    pub scope: String,
    pub name: String,
    pub line: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Call {
    /// Qualified name of the enclosing definition; empty at module level.
    pub scope: String,
    pub callee: String,
    /// The expression before the dot, as written (`self`, `os.path`, `store`).
    pub receiver: Option<String>,
    pub line: usize,
}

/// `var = Constructor(...)` inside `scope`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Binding {
    pub scope: String,
    pub var: String,
    pub constructor: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileFacts {
    pub path: String,
    pub language: Language,
    /// Python: the dotted module name.
    pub module: String,
    pub defs: Vec<Def>,
    pub imports: Vec<Import>,
    pub calls: Vec<Call>,
    pub bindings: Vec<Binding>,
    #[serde(default)]
    pub refs: Vec<Reference>,
    /// Whether tree-sitter found syntax errors (the facts are then best effort).
    pub has_errors: bool,
}

/// `pkg/sub/mod.py` → `pkg.sub.mod`; `pkg/__init__.py` → `pkg`.
pub fn python_module(path: &str) -> String {
    let stem = path
        .strip_suffix(".pyi")
        .or_else(|| path.strip_suffix(".py"))
        .unwrap_or(path);
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    stem.replace('/', ".")
}

pub(super) fn text<'s>(source: &'s str, node: Node) -> &'s str {
    source.get(node.byte_range()).unwrap_or("")
}

/// Names of the enclosing classes and functions, outermost first, with `<locals>` after
/// functions as in Python's `__qualname__`.
fn enclosing(source: &str, node: Node) -> (Vec<String>, bool) {
    let mut parts = Vec::new();
    let mut in_class_directly = None;
    let mut cur = node.parent();
    while let Some(n) = cur {
        match n.kind() {
            "class_definition" | "function_definition" => {
                if let Some(name) = n.child_by_field_name("name") {
                    let is_class = n.kind() == "class_definition";
                    if in_class_directly.is_none() {
                        in_class_directly = Some(is_class);
                    }
                    if !is_class {
                        parts.push("<locals>".to_string());
                    }
                    parts.push(text(source, name).to_string());
                }
            }
            _ => {}
        }
        cur = n.parent();
    }
    parts.reverse();
    (parts, in_class_directly == Some(true))
}

fn docstring(source: &str, def: Node) -> Option<String> {
    let body = def.child_by_field_name("body")?;
    let first = body.named_child(0)?;
    if first.kind() == "expression_statement" {
        let s = first.named_child(0)?;
        if s.kind() == "string" {
            let raw = text(source, s);
            let trimmed = raw
                .trim_start_matches(['r', 'u', 'b', 'R', 'U', 'B'])
                .trim_matches(|c| c == '"' || c == '\'');
            return Some(trimmed.trim().to_string());
        }
    }
    None
}

/// A definition's text before its body (`def f(x) -> int:`, `export class A extends B`).
pub(super) fn def_head<'s>(source: &'s str, def: Node) -> &'s str {
    let body_start = def
        .child_by_field_name("body")
        .map_or(def.end_byte(), |b| b.start_byte());
    source
        .get(def.start_byte()..body_start)
        .unwrap_or("")
        .trim_end()
}

pub(super) fn sha(text: &str) -> String {
    crate::hash::sha256_tagged(text.as_bytes())
}

/// Resolve `from ..x import y` against the importing module.
fn absolute_module(current: &str, is_package: bool, written: &str) -> String {
    let dots = written.chars().take_while(|&c| c == '.').count();
    if dots == 0 {
        return written.to_string();
    }
    let mut base: Vec<&str> = current.split('.').collect();
    // A module's own package is its parent; a package's is itself.
    let up = if is_package { dots - 1 } else { dots };
    for _ in 0..up.min(base.len()) {
        base.pop();
    }
    let rest = &written[dots..];
    if !rest.is_empty() {
        base.push(rest);
    }
    base.join(".")
}

pub fn extract_python(path: &str, source: &str, tree: &tree_sitter::Tree) -> FileFacts {
    let module = python_module(path);
    let is_package = path.ends_with("__init__.py") || path.ends_with("__init__.pyi");
    let q = crate::lang::queries(Language::Python);
    let root = tree.root_node();
    let mut facts = FileFacts {
        path: path.to_string(),
        language: Language::Python,
        module: module.clone(),
        defs: Vec::new(),
        imports: Vec::new(),
        calls: Vec::new(),
        bindings: Vec::new(),
        refs: Vec::new(),
        has_errors: root.has_error(),
    };

    let mut cursor = QueryCursor::new();
    let names = q.defs.capture_names();
    let mut matches = cursor.matches(&q.defs, root, source.as_bytes());
    while let Some(m) = matches.next() {
        let (mut def_node, mut name_node, mut bases_node, mut kind) = (None, None, None, None);
        for c in m.captures {
            match names[c.index as usize] {
                "class" => (def_node, kind) = (Some(c.node), Some(NodeKind::Class)),
                "function" => (def_node, kind) = (Some(c.node), Some(NodeKind::Function)),
                "variable" => (def_node, kind) = (Some(c.node), Some(NodeKind::Variable)),
                "name" => name_node = Some(c.node),
                "bases" => bases_node = Some(c.node),
                _ => {}
            }
        }
        let (Some(def), Some(name), Some(mut kind)) = (def_node, name_node, kind) else {
            continue;
        };
        let (mut parts, in_class) = enclosing(source, def);
        if kind == NodeKind::Function && in_class {
            kind = NodeKind::Method;
        }
        let name_text = text(source, name).to_string();
        parts.push(name_text.clone());
        let signature = def_head(source, def).trim_end_matches(':').to_string();
        let bases = bases_node
            .map(|b| {
                let mut c = b.walk();
                b.named_children(&mut c)
                    .filter(|n| matches!(n.kind(), "identifier" | "attribute"))
                    .map(|n| text(source, n).to_string())
                    .collect()
            })
            .unwrap_or_default();
        facts.defs.push(Def {
            kind,
            name: name_text,
            qualified: parts.join("."),
            byte_range: (def.start_byte(), def.end_byte()),
            lines: (def.start_position().row + 1, def.end_position().row + 1),
            signature: if kind == NodeKind::Variable {
                text(source, def).lines().next().unwrap_or("").to_string()
            } else {
                signature
            },
            doc: if kind == NodeKind::Variable {
                None
            } else {
                docstring(source, def)
            },
            hash: sha(text(source, def)),
            bases,
        });
    }

    let names = q.imports.capture_names();
    let mut matches = cursor.matches(&q.imports, root, source.as_bytes());
    while let Some(m) = matches.next() {
        let get = |n: &str| capture(m, names, n);
        let line = match_line(m);
        if let Some(module_node) = get("module") {
            let written = text(source, module_node).to_string();
            match get("alias") {
                Some(alias) => facts.imports.push(Import {
                    local: text(source, alias).into(),
                    module: written,
                    name: None,
                    line,
                    byte_range: span(m),
                }),
                // `import a.b` binds `a`.
                None => {
                    let first = written.split('.').next().unwrap_or(&written).to_string();
                    facts.imports.push(Import {
                        local: first.clone(),
                        module: first,
                        name: None,
                        line,
                        byte_range: span(m),
                    });
                    if written.contains('.') {
                        facts.imports.push(Import {
                            local: written.clone(),
                            module: written,
                            name: None,
                            line,
                            byte_range: span(m),
                        });
                    }
                }
            }
        } else if let Some(from) = get("from") {
            let module_abs = absolute_module(&module, is_package, text(source, from));
            if get("wildcard").is_some() {
                facts.imports.push(Import {
                    local: "*".into(),
                    module: module_abs,
                    name: Some("*".into()),
                    line,
                    byte_range: span(m),
                });
            } else if let Some(name) = get("name") {
                let name = text(source, name).to_string();
                let local = get("alias")
                    .map(|a| text(source, a).to_string())
                    .unwrap_or_else(|| name.clone());
                facts.imports.push(Import {
                    local,
                    module: module_abs,
                    name: Some(name),
                    line,
                    byte_range: span(m),
                });
            }
        }
    }

    let scopes = Scopes::new(&facts.defs);
    collect_calls(
        &q.calls,
        root,
        source,
        &mut facts,
        |n| scopes.at(n.start_byte()),
        str::to_string,
    );
    facts.refs = collect_refs(&q.refs, root, source, &scopes);
    facts
}

/// The definitions that can enclose code, for finding a call's scope by byte offset. tree-sitter
/// nodes have no parent pointer (`parent()` walks down from the root), so walking up from every
/// call was a large share of indexing time.
pub(super) struct Scopes {
    /// (start, end, qualified), sorted by start.
    ranges: Vec<(usize, usize, String)>,
}

impl Scopes {
    pub(super) fn new(defs: &[Def]) -> Scopes {
        let mut ranges: Vec<(usize, usize, String)> = defs
            .iter()
            .filter(|d| d.kind != NodeKind::Variable)
            .map(|d| (d.byte_range.0, d.byte_range.1, d.qualified.clone()))
            .collect();
        ranges.sort_by_key(|r| r.0);
        Scopes { ranges }
    }

    /// The qualified name of the innermost definition containing `at`; empty at module level.
    pub(super) fn at(&self, at: usize) -> String {
        self.index_at(at)
            .map(|i| self.ranges[i].2.clone())
            .unwrap_or_default()
    }

    /// Which definition [`Scopes::at`] would name, as an index for [`Scopes::name`].
    pub(super) fn index_at(&self, at: usize) -> Option<usize> {
        let upto = self.ranges.partition_point(|r| r.0 <= at);
        self.ranges[..upto].iter().rposition(|r| at < r.1)
    }

    pub(super) fn name(&self, i: usize) -> &str {
        &self.ranges[i].2
    }

    pub(super) fn len(&self) -> usize {
        self.ranges.len()
    }
}

/// The node captured under `name` in a query match.
pub(super) fn capture<'t>(m: &QueryMatch<'_, 't>, names: &[&str], name: &str) -> Option<Node<'t>> {
    m.captures
        .iter()
        .find(|c| names[c.index as usize] == name)
        .map(|c| c.node)
}

/// The bytes a match covers, from its first capture to its last.
pub(super) fn span(m: &QueryMatch) -> (usize, usize) {
    let start = m.captures.iter().map(|c| c.node.start_byte()).min();
    let end = m.captures.iter().map(|c| c.node.end_byte()).max();
    (start.unwrap_or(0), end.unwrap_or(0))
}

/// Names read inside definitions and not bound there, from a `references.scm` query (captures
/// `read`, `bind`, `global`), one per (scope, name) at its first line. Module-level code is left
/// out: only definitions have REFERENCES edges.
pub(super) fn collect_refs(
    query: &Query,
    root: Node,
    source: &str,
    scopes: &Scopes,
) -> Vec<Reference> {
    let names = query.capture_names();
    let role = |i: u32| match names[i as usize] {
        "read" => 0u8,
        "bind" => 1,
        _ => 2,
    };
    // Scopes are kept as indices while matching: this runs for every identifier in a file.
    let mut reads: Vec<(usize, &str, usize)> = Vec::new();
    let mut bound: HashSet<(usize, &str)> = HashSet::new();
    let mut globals: HashSet<(usize, &str)> = HashSet::new();
    let mut cursor = QueryCursor::new();
    // `matches` rather than `captures`: every pattern has one capture and the order does not
    // matter, and `captures` pays for sorting them by position.
    let mut matches = cursor.matches(query, root, source.as_bytes());
    while let Some(m) = matches.next() {
        let Some(&c) = m.captures.first() else {
            continue;
        };
        let Some(scope) = scopes.index_at(c.node.start_byte()) else {
            continue;
        };
        let name = text(source, c.node);
        match role(c.index) {
            0 => reads.push((scope, name, c.node.start_position().row + 1)),
            1 => {
                bound.insert((scope, name));
            }
            _ => {
                globals.insert((scope, name));
            }
        }
    }
    // An enclosing scope is found by its qualified name; the first definition of a name is
    // the one that counts, as for graph nodes.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for i in (0..scopes.len()).rev() {
        by_name.insert(scopes.name(i), i);
    }
    let mut seen = HashSet::new();
    reads
        .into_iter()
        .filter(|&(scope, name, _)| {
            let shadowed = !globals.contains(&(scope, name))
                && enclosing_scopes(scopes.name(scope))
                    .any(|s| by_name.get(s).is_some_and(|&i| bound.contains(&(i, name))));
            !shadowed && seen.insert((scope, name))
        })
        .map(|(scope, name, line)| Reference {
            scope: scopes.name(scope).to_string(),
            name: name.to_string(),
            line,
        })
        .collect()
}

/// `a.<locals>.b` and then `a`: the scope itself and the definitions around it, whose local
/// names a closure sees.
pub(super) fn enclosing_scopes(scope: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(scope);
    std::iter::from_fn(move || {
        let cur = next?;
        next = cur
            .rsplit_once('.')
            .map(|(p, _)| p.strip_suffix(".<locals>").unwrap_or(p))
            .filter(|p| !p.is_empty() && *p != "<locals>");
        Some(cur)
    })
}

/// The 1-based line where a match starts.
pub(super) fn match_line(m: &QueryMatch) -> usize {
    m.captures
        .first()
        .map_or(0, |c| c.node.start_position().row + 1)
}

/// Calls and constructor bindings from a `calls.scm` query (the capture names are shared by
/// every language: `call`, `callee`, `receiver`, `binding`, `var`, `constructor`).
pub(super) fn collect_calls(
    query: &Query,
    root: Node,
    source: &str,
    facts: &mut FileFacts,
    scope_of: impl Fn(Node) -> String,
    receiver: impl Fn(&str) -> String,
) {
    let names = query.capture_names();
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(query, root, source.as_bytes());
    while let Some(m) = matches.next() {
        let get = |n: &str| capture(m, names, n);
        if let (Some(binding), Some(var), Some(ctor)) =
            (get("binding"), get("var"), get("constructor"))
        {
            facts.bindings.push(Binding {
                scope: scope_of(binding),
                var: text(source, var).into(),
                constructor: text(source, ctor).into(),
            });
            continue;
        }
        if let (Some(call), Some(callee)) = (get("call"), get("callee")) {
            facts.calls.push(Call {
                scope: scope_of(call),
                callee: text(source, callee).into(),
                receiver: get("receiver").map(|r| receiver(text(source, r))),
                line: call.start_position().row + 1,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(path: &str, src: &str) -> FileFacts {
        let tree = crate::lang::parse(src, Language::Python).unwrap();
        extract_python(path, src, &tree)
    }

    #[test]
    fn queries_compile() {
        let _ = crate::lang::queries(Language::Python);
    }

    #[test]
    fn definitions_with_qualified_names() {
        let src = "import os\nLIMIT = 3\n\nclass Store(Base, pkg.Mixin):\n    \"\"\"Holds items.\"\"\"\n    def add(self, x):\n        def helper():\n            pass\n        return helper()\n\ndef top(a, b=1) -> int:\n    return a\n";
        let f = facts("shop/store.py", src);
        assert_eq!(f.module, "shop.store");
        let q: Vec<(&str, NodeKind)> = f
            .defs
            .iter()
            .map(|d| (d.qualified.as_str(), d.kind))
            .collect();
        assert!(q.contains(&("LIMIT", NodeKind::Variable)));
        assert!(q.contains(&("Store", NodeKind::Class)));
        assert!(q.contains(&("Store.add", NodeKind::Method)));
        assert!(q.contains(&("Store.add.<locals>.helper", NodeKind::Function)));
        assert!(q.contains(&("top", NodeKind::Function)));
        let store = f.defs.iter().find(|d| d.qualified == "Store").unwrap();
        assert_eq!(store.bases, vec!["Base", "pkg.Mixin"]);
        assert_eq!(store.doc.as_deref(), Some("Holds items."));
        let top = f.defs.iter().find(|d| d.qualified == "top").unwrap();
        assert_eq!(top.signature, "def top(a, b=1) -> int");
        assert_eq!(top.lines, (11, 12));
    }

    #[test]
    fn imports_and_relative_modules() {
        let src = "import a.b\nimport c as d\nfrom .util import f as g\nfrom .. import pkg\nfrom x.y import *\n";
        let f = facts("p/q/mod.py", src);
        let find = |local: &str| {
            f.imports
                .iter()
                .find(|i| i.local == local)
                .cloned()
                .unwrap()
        };
        assert_eq!(find("a").module, "a");
        assert_eq!(find("a.b").module, "a.b");
        assert_eq!(find("d").module, "c");
        let g = find("g");
        assert_eq!(
            (g.module.as_str(), g.name.as_deref()),
            ("p.q.util", Some("f"))
        );
        assert_eq!(find("pkg").module, "p");
        assert_eq!(find("*").module, "x.y");
        let init = facts("p/q/__init__.py", "from .util import f\n");
        assert_eq!(init.imports[0].module, "p.q.util");
    }

    #[test]
    fn calls_record_scope_and_receiver() {
        let src =
            "def run():\n    s = Store()\n    s.add(1)\n    helper()\n    os.path.join('a')\n";
        let f = facts("m.py", src);
        let calls: Vec<(&str, &str, Option<&str>)> = f
            .calls
            .iter()
            .map(|c| (c.scope.as_str(), c.callee.as_str(), c.receiver.as_deref()))
            .collect();
        assert!(calls.contains(&("run", "add", Some("s"))), "{calls:?}");
        assert!(calls.contains(&("run", "helper", None)));
        assert!(calls.contains(&("run", "join", Some("os.path"))));
        assert!(f.bindings.contains(&Binding {
            scope: "run".into(),
            var: "s".into(),
            constructor: "Store".into()
        }));
    }
}
