//! Turning per-file facts into a graph: node ids, DEFINES/CONTAINS structure, and IMPORTS,
//! CALLS and INHERITS edges resolved across files through each module's imports.
//!
//! A call is resolved, in order, through: the enclosing class (`self.m()`, `cls.m()`, and its
//! bases), a constructor binding in the same scope (`x = C(); x.m()`), the module's own
//! definitions, and its imports. What none of these explains is kept as an unresolved reference
//! with its name, unless exactly one definition in the repository has that name: then it is
//! linked with confidence 0.5 so readers can tell it apart from a resolved call (1.0).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::extract::{FileFacts, NodeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EdgeKind {
    Contains,
    Defines,
    Imports,
    Calls,
    Inherits,
    /// A function or method reads a module-level symbol without calling it.
    References,
}

impl EdgeKind {
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Contains => "CONTAINS",
            EdgeKind::Defines => "DEFINES",
            EdgeKind::Imports => "IMPORTS",
            EdgeKind::Calls => "CALLS",
            EdgeKind::Inherits => "INHERITS",
            EdgeKind::References => "REFERENCES",
        }
    }

    pub const ALL: [EdgeKind; 6] = [
        EdgeKind::Contains,
        EdgeKind::Defines,
        EdgeKind::Imports,
        EdgeKind::Calls,
        EdgeKind::Inherits,
        EdgeKind::References,
    ];

    pub fn parse(s: &str) -> Option<EdgeKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    pub id: String,
    pub kind: NodeKind,
    /// The symbol as users write it: `pkg.mod.Class.method`.
    pub symbol: String,
    pub file: String,
    pub lines: (usize, usize),
    pub byte_range: (usize, usize),
    pub signature: String,
    pub doc: Option<String>,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEdge {
    pub source: String,
    pub target: String,
    pub kind: EdgeKind,
    pub confidence: f64,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unresolved {
    pub source: String,
    pub name: String,
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    pub unresolved: Vec<Unresolved>,
}

pub fn node_id(kind: NodeKind, path: &str, qualified: &str) -> String {
    format!("{}:{path}:{qualified}", kind.name())
}

struct Resolver<'a> {
    /// symbol → node index
    by_symbol: HashMap<String, usize>,
    /// simple name → symbols of functions/methods/classes with that name
    by_name: HashMap<String, Vec<usize>>,
    modules: HashMap<String, &'a FileFacts>,
    nodes: &'a [GraphNode],
}

/// The symbol of `name` defined directly in `parent`: `pkg.mod.name` for Python modules,
/// `src/file.ts:name` for JavaScript/TypeScript files, `Parent.name` inside classes.
pub fn child_symbol(parent: &FileFacts, qualified: &str) -> String {
    match parent.language {
        crate::lang::Language::Python => format!("{}.{qualified}", parent.module),
        _ => format!("{}:{qualified}", parent.path),
    }
}

/// Keys under which an import can name a file: Python module names; for JS/TS the path
/// without its extension, and a directory for its `index.*` file.
fn module_keys(f: &FileFacts) -> Vec<String> {
    if f.language == crate::lang::Language::Python {
        return vec![f.module.clone()];
    }
    let stem = f.path.rsplit_once('.').map_or(f.path.as_str(), |(s, _)| s);
    let stem = stem.strip_suffix(".d").unwrap_or(stem);
    let mut keys = vec![f.path.clone(), stem.to_string()];
    if let Some(dir) = stem.strip_suffix("/index") {
        keys.push(dir.to_string());
    }
    keys
}

impl Resolver<'_> {
    fn node(&self, symbol: &str) -> Option<usize> {
        self.by_symbol.get(symbol).copied()
    }

    /// A member of a node: a module's top-level definition or a class's member.
    fn member_symbol(&self, parent: usize, name: &str) -> String {
        let p = &self.nodes[parent];
        if p.kind == NodeKind::Module {
            if let Some(f) = self.modules.get(&p.symbol) {
                return child_symbol(f, name);
            }
        }
        format!("{}.{name}", p.symbol)
    }

    /// `module.name`, following re-exports (`from .store import Store` in a package's
    /// `__init__.py`) a few levels deep.
    fn export(&self, module: &str, name: &str, hops: usize) -> Option<usize> {
        let file = self.modules.get(module);
        let direct = match file {
            Some(f) => child_symbol(f, name),
            None => format!("{module}.{name}"),
        };
        if let Some(i) = self.node(&direct) {
            return Some(i);
        }
        let file = file?;
        if hops == 0 {
            return None;
        }
        if let Some(imp) = file.imports.iter().rev().find(|i| i.local == name) {
            return match &imp.name {
                Some(n) => self.export(&imp.module, n, hops - 1),
                None => self.module_node(&imp.module),
            };
        }
        // `export * from './m'` passes m's names through.
        file.imports
            .iter()
            .filter(|i| i.local == "*")
            .find_map(|i| self.export(&i.module, name, hops - 1))
    }

    fn module_node(&self, key: &str) -> Option<usize> {
        let f = self.modules.get(key)?;
        match f.language {
            crate::lang::Language::Python => self.node(&f.module),
            _ => self.node(&f.path),
        }
    }

    /// What a bare name means inside `file`: its own definitions, then its imports.
    fn name(&self, file: &FileFacts, name: &str) -> Option<usize> {
        let own = self.node(&child_symbol(file, name));
        // `const util = require('./util')` is both a variable and an import: the import says
        // what it holds.
        let imported_variable = own.is_some_and(|i| self.nodes[i].kind == NodeKind::Variable)
            && file.imports.iter().any(|i| i.local == name);
        if let (Some(i), false) = (own, imported_variable) {
            return Some(i);
        }
        for imp in file.imports.iter().rev() {
            if imp.local == name {
                return match &imp.name {
                    Some(n) => self.export(&imp.module, n, 4),
                    None => self.module_node(&imp.module),
                };
            }
        }
        // `from m import *` brings in m's top-level names.
        for imp in file.imports.iter().filter(|i| i.local == "*") {
            if let Some(i) = self.export(&imp.module, name, 4) {
                return Some(i);
            }
        }
        None
    }

    /// A dotted expression (`os.path`, `pkg.Class`) resolved segment by segment.
    fn dotted(&self, file: &FileFacts, expr: &str) -> Option<usize> {
        let mut parts = expr.split('.');
        let mut cur = self.name(file, parts.next()?)?;
        for p in parts {
            cur = self.node(&self.member_symbol(cur, p))?;
        }
        Some(cur)
    }

    /// `Class.member`, searching base classes too.
    fn member(
        &self,
        class: usize,
        member: &str,
        bases: &HashMap<usize, Vec<usize>>,
        seen: &mut HashSet<usize>,
    ) -> Option<usize> {
        if !seen.insert(class) {
            return None;
        }
        if let Some(i) = self.node(&self.member_symbol(class, member)) {
            return Some(i);
        }
        bases
            .get(&class)?
            .iter()
            .find_map(|&b| self.member(b, member, bases, seen))
    }
}

pub fn build(files: &[&FileFacts]) -> Graph {
    let mut g = Graph::default();
    for f in files {
        let file_id = node_id(NodeKind::File, &f.path, "");
        let module_id = node_id(NodeKind::Module, &f.path, &f.module);
        let module_symbol = match f.language {
            crate::lang::Language::Python => f.module.clone(),
            _ => f.path.clone(),
        };
        g.nodes.push(GraphNode {
            id: file_id.clone(),
            kind: NodeKind::File,
            symbol: f.path.clone(),
            file: f.path.clone(),
            lines: (1, 1),
            byte_range: (0, 0),
            signature: String::new(),
            doc: None,
            hash: String::new(),
        });
        g.nodes.push(GraphNode {
            id: module_id.clone(),
            kind: NodeKind::Module,
            symbol: module_symbol,
            file: f.path.clone(),
            lines: (1, 1),
            byte_range: (0, 0),
            signature: String::new(),
            doc: None,
            hash: String::new(),
        });
        g.edges.push(GraphEdge {
            source: file_id,
            target: module_id.clone(),
            kind: EdgeKind::Contains,
            confidence: 1.0,
            line: 0,
        });
        let mut seen = HashSet::new();
        for d in &f.defs {
            let id = node_id(d.kind, &f.path, &d.qualified);
            // A name defined twice (`if …: def f` / `else: def f`) is one node: the first.
            if !seen.insert(id.clone()) {
                continue;
            }
            // The parent is the longest defined prefix of the qualified name (or the module).
            let parent = d
                .qualified
                .rsplit_once('.')
                .map(|(p, _)| p.trim_end_matches(".<locals>").to_string());
            let parent_id = parent
                .and_then(|p| {
                    f.defs
                        .iter()
                        .find(|x| x.qualified == p)
                        .map(|x| node_id(x.kind, &f.path, &x.qualified))
                })
                .unwrap_or_else(|| module_id.clone());
            g.edges.push(GraphEdge {
                source: parent_id,
                target: id.clone(),
                kind: EdgeKind::Defines,
                confidence: 1.0,
                line: d.lines.0,
            });
            g.nodes.push(GraphNode {
                id,
                kind: d.kind,
                symbol: child_symbol(f, &d.qualified),
                file: f.path.clone(),
                lines: d.lines,
                byte_range: d.byte_range,
                signature: d.signature.clone(),
                doc: d.doc.clone(),
                hash: d.hash.clone(),
            });
        }
    }

    for f in files {
        add_import_nodes(&mut g, f);
    }

    let mut r = Resolver {
        by_symbol: HashMap::new(),
        by_name: HashMap::new(),
        modules: files
            .iter()
            .flat_map(|&f| module_keys(f).into_iter().map(move |k| (k, f)))
            .collect(),
        nodes: &g.nodes,
    };
    for (i, n) in g.nodes.iter().enumerate() {
        // Module and definitions share the symbol namespace; files are looked up by path, and
        // an import node names a binding, not a definition.
        if !matches!(n.kind, NodeKind::File | NodeKind::Import) {
            r.by_symbol.entry(n.symbol.clone()).or_insert(i);
        }
        if matches!(
            n.kind,
            NodeKind::Function | NodeKind::Method | NodeKind::Class
        ) {
            let simple = n.symbol.rsplit('.').next().unwrap_or(&n.symbol).to_string();
            r.by_name.entry(simple).or_default().push(i);
        }
    }

    let mut edges = Vec::new();
    let mut unresolved = Vec::new();
    // Base classes first: method lookup walks them.
    let mut bases: HashMap<usize, Vec<usize>> = HashMap::new();
    for f in files {
        for d in f.defs.iter().filter(|d| d.kind == NodeKind::Class) {
            let Some(class) = r.node(&child_symbol(f, &d.qualified)) else {
                continue;
            };
            for b in &d.bases {
                match r.dotted(f, b) {
                    Some(t) => {
                        bases.entry(class).or_default().push(t);
                        edges.push(GraphEdge {
                            source: r.nodes[class].id.clone(),
                            target: r.nodes[t].id.clone(),
                            kind: EdgeKind::Inherits,
                            confidence: 1.0,
                            line: d.lines.0,
                        });
                    }
                    None => unresolved.push(Unresolved {
                        source: r.nodes[class].id.clone(),
                        name: b.clone(),
                        file: f.path.clone(),
                        line: d.lines.0,
                    }),
                }
            }
        }
    }
    for f in files {
        let module_id = node_id(NodeKind::Module, &f.path, &f.module);
        let mut imported = HashSet::new();
        for imp in &f.imports {
            let target = imp
                .name
                .as_ref()
                .filter(|n| *n != "*")
                .and_then(|n| r.export(&imp.module, n, 4))
                .or_else(|| r.module_node(&imp.module));
            if let Some(t) = target {
                if imported.insert(t) {
                    edges.push(GraphEdge {
                        source: module_id.clone(),
                        target: r.nodes[t].id.clone(),
                        kind: EdgeKind::Imports,
                        confidence: 1.0,
                        line: imp.line,
                    });
                }
            }
        }
        for call in &f.calls {
            let source = if call.scope.is_empty() {
                Some(module_id.clone())
            } else {
                r.node(&child_symbol(f, &call.scope))
                    .map(|i| r.nodes[i].id.clone())
            };
            let Some(source) = source else { continue };
            let enclosing_class = || {
                let mut parts: Vec<&str> = call.scope.split('.').collect();
                while !parts.is_empty() {
                    parts.pop();
                    if let Some(i) = r.node(&child_symbol(f, &parts.join("."))) {
                        if r.nodes[i].kind == NodeKind::Class {
                            return Some(i);
                        }
                    }
                }
                None
            };
            let resolved = match call.receiver.as_deref() {
                None => local_function(&r, f, &call.scope, &call.callee)
                    .or_else(|| r.name(f, &call.callee))
                    .map(|t| constructor_or(&r, t)),
                Some("self") | Some("cls") => enclosing_class()
                    .and_then(|c| r.member(c, &call.callee, &bases, &mut HashSet::new())),
                Some(recv) => {
                    let bound = f
                        .bindings
                        .iter()
                        .rev()
                        .find(|b| b.var == recv && b.scope == call.scope)
                        .and_then(|b| r.name(f, &b.constructor))
                        .filter(|&c| r.nodes[c].kind == NodeKind::Class)
                        .or_else(|| constructed_class(&r, f, recv));
                    match bound {
                        Some(c) => r.member(c, &call.callee, &bases, &mut HashSet::new()),
                        None => r.dotted(f, recv).and_then(|t| match r.nodes[t].kind {
                            NodeKind::Class => {
                                r.member(t, &call.callee, &bases, &mut HashSet::new())
                            }
                            _ => r.node(&r.member_symbol(t, &call.callee)),
                        }),
                    }
                }
            };
            let (target, confidence) = match resolved {
                Some(t) => (Some(t), 1.0),
                None if !worth_guessing(&r, f, call) => (None, 0.0),
                None => match r.by_name.get(&call.callee).map(Vec::as_slice) {
                    Some([only]) if is_nested(&r, *only) => (None, 0.0),
                    Some([only]) if call.receiver.is_none() => {
                        (Some(constructor_or(&r, *only)), 0.5)
                    }
                    Some([only]) => (Some(*only), 0.5),
                    _ => (None, 0.0),
                },
            };
            match target {
                Some(t) => edges.push(GraphEdge {
                    source,
                    target: r.nodes[t].id.clone(),
                    kind: EdgeKind::Calls,
                    confidence,
                    line: call.line,
                }),
                None => {
                    let name = match &call.receiver {
                        Some(recv) => format!("{recv}.{}", call.callee),
                        None => call.callee.clone(),
                    };
                    unresolved.push(Unresolved {
                        source,
                        name,
                        file: f.path.clone(),
                        line: call.line,
                    });
                }
            }
        }
    }
    for f in files {
        for re in &f.refs {
            let Some(source) = r.node(&child_symbol(f, &re.scope)) else {
                continue;
            };
            if !matches!(r.nodes[source].kind, NodeKind::Function | NodeKind::Method) {
                continue;
            }
            // Only what the name means at module level counts: a module-level variable,
            // function or class of this file, or one imported into it. Imported modules are
            // IMPORTS edges already, and names that resolve to nothing are builtins or locals
            // the extractor could not see bound; neither is recorded.
            let Some(target) = r.name(f, &re.name) else {
                continue;
            };
            if target != source
                && matches!(
                    r.nodes[target].kind,
                    NodeKind::Variable | NodeKind::Function | NodeKind::Class
                )
            {
                edges.push(GraphEdge {
                    source: r.nodes[source].id.clone(),
                    target: r.nodes[target].id.clone(),
                    kind: EdgeKind::References,
                    confidence: 1.0,
                    line: re.line,
                });
            }
        }
    }
    g.edges.extend(edges);
    // The same call written twice on one line is one edge (a graph store merges them anyway).
    let mut seen = HashSet::new();
    g.edges
        .retain(|e| seen.insert((e.source.clone(), e.target.clone(), e.kind, e.line)));
    g.unresolved = unresolved;
    g
}

/// One node per name an import statement binds, defined by the importing module. What it
/// resolves to is the module's IMPORTS edge; the node keeps the statement's place and wording.
fn add_import_nodes(g: &mut Graph, f: &FileFacts) {
    let module_id = node_id(NodeKind::Module, &f.path, &f.module);
    let mut seen = HashSet::new();
    for imp in &f.imports {
        // A name imported twice (`try: import a` / `except: import b as a`) is one node.
        if !seen.insert(imp.local.as_str()) {
            continue;
        }
        let id = node_id(NodeKind::Import, &f.path, &imp.local);
        let signature = match (f.language, &imp.name) {
            (crate::lang::Language::Python, Some(n)) if n == "*" => {
                format!("from {} import *", imp.module)
            }
            (crate::lang::Language::Python, Some(n)) if *n == imp.local => {
                format!("from {} import {n}", imp.module)
            }
            (crate::lang::Language::Python, Some(n)) => {
                format!("from {} import {n} as {}", imp.module, imp.local)
            }
            (crate::lang::Language::Python, None) if imp.module == imp.local => {
                format!("import {}", imp.module)
            }
            (crate::lang::Language::Python, None) => {
                format!("import {} as {}", imp.module, imp.local)
            }
            (_, Some(n)) if n == "*" => format!("export * from '{}'", imp.module),
            (_, Some(n)) if *n == imp.local => format!("import {{ {n} }} from '{}'", imp.module),
            (_, Some(n)) => format!("import {{ {n} as {} }} from '{}'", imp.local, imp.module),
            (_, None) => format!("import * as {} from '{}'", imp.local, imp.module),
        };
        g.edges.push(GraphEdge {
            source: module_id.clone(),
            target: id.clone(),
            kind: EdgeKind::Defines,
            confidence: 1.0,
            line: imp.line,
        });
        g.nodes.push(GraphNode {
            id,
            kind: NodeKind::Import,
            symbol: child_symbol(f, &imp.local),
            file: f.path.clone(),
            lines: (imp.line, imp.line),
            byte_range: imp.byte_range,
            hash: crate::hash::sha256_tagged(signature.as_bytes()),
            signature,
            doc: None,
        });
    }
}

/// A function defined inside the calling function or one around it (`def outer(): def
/// inner(): …; inner()`), which the module namespace does not show.
fn local_function(r: &Resolver, f: &FileFacts, scope: &str, callee: &str) -> Option<usize> {
    if scope.is_empty() {
        return None;
    }
    super::extract::enclosing_scopes(scope).find_map(|s| {
        let qualified = match f.language {
            crate::lang::Language::Python => format!("{s}.<locals>.{callee}"),
            _ => format!("{s}.{callee}"),
        };
        r.node(&child_symbol(f, &qualified))
            .filter(|&i| r.nodes[i].kind == NodeKind::Function)
    })
}

/// The class of a receiver that is a constructor call: `Store().add()`, `new Parser().parse()`.
fn constructed_class(r: &Resolver, f: &FileFacts, recv: &str) -> Option<usize> {
    let recv = recv.strip_prefix("new ").unwrap_or(recv);
    let (head, _) = recv.split_once('(')?;
    let plain = !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '$');
    if !(plain && recv.ends_with(')')) {
        return None;
    }
    r.dotted(f, head)
        .filter(|&c| r.nodes[c].kind == NodeKind::Class)
}

/// A function nested in another cannot be called by name from elsewhere.
fn is_nested(r: &Resolver, i: usize) -> bool {
    let n = &r.nodes[i];
    n.kind == NodeKind::Function
        && (n.symbol.contains("<locals>")
            || n.symbol.rsplit_once('.').is_some_and(|(parent, _)| {
                r.node(parent).is_some_and(|p| {
                    matches!(r.nodes[p].kind, NodeKind::Function | NodeKind::Method)
                })
            }))
}

/// Builtins and methods of the languages' own types, which a call by that name almost always
/// means; linking it to the one same-named definition in the repository was wrong in 64 of 111
/// hand-checked name-only edges.
const PYTHON_BUILTINS: &[&str] = &[
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "breakpoint",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "compile",
    "complex",
    "delattr",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "eval",
    "exec",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "globals",
    "hasattr",
    "hash",
    "hex",
    "id",
    "input",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "locals",
    "map",
    "max",
    "memoryview",
    "min",
    "next",
    "object",
    "oct",
    "open",
    "ord",
    "pow",
    "print",
    "property",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "setattr",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "vars",
    "zip",
];
const JS_GLOBALS: &[&str] = &[
    "Array",
    "Boolean",
    "Date",
    "Error",
    "JSON",
    "Map",
    "Math",
    "Number",
    "Object",
    "Promise",
    "Reflect",
    "RegExp",
    "Set",
    "String",
    "Symbol",
    "WeakMap",
    "WeakSet",
    "clearInterval",
    "clearTimeout",
    "console",
    "decodeURIComponent",
    "document",
    "encodeURIComponent",
    "fetch",
    "globalThis",
    "parseFloat",
    "parseInt",
    "process",
    "queueMicrotask",
    "require",
    "setInterval",
    "setTimeout",
    "structuredClone",
    "window",
];
const BUILTIN_METHODS: &[&str] = &[
    "add",
    "append",
    "apply",
    "bind",
    "call",
    "catch",
    "clear",
    "close",
    "concat",
    "copy",
    "count",
    "decode",
    "delete",
    "discard",
    "encode",
    "endswith",
    "endsWith",
    "entries",
    "every",
    "expandtabs",
    "extend",
    "filter",
    "finally",
    "find",
    "findIndex",
    "flush",
    "forEach",
    "format",
    "get",
    "has",
    "includes",
    "index",
    "indexOf",
    "insert",
    "items",
    "join",
    "keys",
    "lower",
    "lstrip",
    "map",
    "normalize",
    "partition",
    "pop",
    "push",
    "read",
    "readline",
    "readlines",
    "reduce",
    "reject",
    "remove",
    "replace",
    "resolve",
    "reverse",
    "rfind",
    "rindex",
    "rpartition",
    "rsplit",
    "rstrip",
    "seek",
    "set",
    "setdefault",
    "shift",
    "slice",
    "some",
    "sort",
    "splice",
    "split",
    "splitlines",
    "startswith",
    "startsWith",
    "strip",
    "tell",
    "then",
    "toLowerCase",
    "toString",
    "toUpperCase",
    "trim",
    "union",
    "unshift",
    "update",
    "upper",
    "values",
    "write",
];

/// Whether a call nothing resolved may be linked by its name alone: not a builtin, not a
/// builtin type's method, and not a member of a module that lives outside the repository.
fn worth_guessing(r: &Resolver, f: &FileFacts, call: &super::extract::Call) -> bool {
    let python = f.language == crate::lang::Language::Python;
    match call.receiver.as_deref() {
        None => {
            let builtins = if python { PYTHON_BUILTINS } else { JS_GLOBALS };
            !builtins.contains(&call.callee.as_str())
        }
        Some(recv) => {
            if BUILTIN_METHODS.contains(&call.callee.as_str()) {
                return false;
            }
            let first = recv.split('.').next().unwrap_or(recv);
            let external_import =
                r.name(f, first).is_none() && f.imports.iter().any(|i| i.local == first);
            let global = !python && JS_GLOBALS.contains(&first);
            // A module of the repository lists its members; one it lacks is not elsewhere
            // (`os.readlink` is C code, not `pathlib.Path.readlink`).
            let known_module = r
                .dotted(f, recv)
                .is_some_and(|m| r.nodes[m].kind == NodeKind::Module);
            !(external_import || global || known_module)
        }
    }
}

/// Calling a class runs its `__init__` when it has one.
fn constructor_or(r: &Resolver, target: usize) -> usize {
    if r.nodes[target].kind == NodeKind::Class {
        for ctor in ["__init__", "constructor"] {
            if let Some(init) = r.node(&format!("{}.{ctor}", r.nodes[target].symbol)) {
                return init;
            }
        }
    }
    target
}
