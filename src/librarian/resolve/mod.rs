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

mod guess;
mod passes;
#[cfg(test)]
mod tests;

use super::extract::{FileFacts, NodeKind};
use passes::{resolve_bases, resolve_call, resolve_imports, resolve_refs};

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

/// The code graph of these files: their definitions, and every import, inheritance, call and
/// reference between them that resolution can explain.
pub fn build(files: &[&FileFacts]) -> Graph {
    let mut g = Graph::default();
    for f in files {
        add_definitions(&mut g, f);
    }
    for f in files {
        add_import_nodes(&mut g, f);
    }
    let r = Resolver::over(files, &g.nodes);
    let mut out = Resolved::default();
    // Base classes first: method lookup walks them.
    let bases = resolve_bases(&r, files, &mut out);
    for f in files {
        resolve_imports(&r, f, &mut out);
        for call in &f.calls {
            resolve_call(&r, f, call, &bases, &mut out);
        }
    }
    for f in files {
        resolve_refs(&r, f, &mut out);
    }
    g.edges.extend(out.edges);
    // The same call written twice on one line is one edge (a graph store merges them anyway).
    let mut seen = HashSet::new();
    g.edges
        .retain(|e| seen.insert((e.source.clone(), e.target.clone(), e.kind, e.line)));
    g.unresolved = out.unresolved;
    g
}

/// Edges found by resolution, and the names it could not explain.
#[derive(Default)]
struct Resolved {
    edges: Vec<GraphEdge>,
    unresolved: Vec<Unresolved>,
}

impl Resolved {
    fn edge(&mut self, r: &Resolver, source: usize, target: usize, kind: EdgeKind, line: usize) {
        self.edges.push(GraphEdge {
            source: r.nodes[source].id.clone(),
            target: r.nodes[target].id.clone(),
            kind,
            confidence: 1.0,
            line,
        });
    }
}

/// The file, its module, and every definition in it, with CONTAINS and DEFINES edges.
fn add_definitions(g: &mut Graph, f: &FileFacts) {
    let file_id = node_id(NodeKind::File, &f.path, "");
    let module_id = node_id(NodeKind::Module, &f.path, &f.module);
    let module_symbol = match f.language {
        crate::lang::Language::Python => f.module.clone(),
        _ => f.path.clone(),
    };
    let place = |id: String, kind: NodeKind, symbol: String| GraphNode {
        id,
        kind,
        symbol,
        file: f.path.clone(),
        lines: (1, 1),
        byte_range: (0, 0),
        signature: String::new(),
        doc: None,
        hash: String::new(),
    };
    g.nodes
        .push(place(file_id.clone(), NodeKind::File, f.path.clone()));
    g.nodes
        .push(place(module_id.clone(), NodeKind::Module, module_symbol));
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

impl<'a> Resolver<'a> {
    /// Index `nodes` by symbol and by simple name, and `files` by module key.
    fn over(files: &[&'a FileFacts], nodes: &'a [GraphNode]) -> Resolver<'a> {
        let mut r = Resolver {
            by_symbol: HashMap::new(),
            by_name: HashMap::new(),
            modules: files
                .iter()
                .flat_map(|&f| module_keys(f).into_iter().map(move |k| (k, f)))
                .collect(),
            nodes,
        };
        for (i, n) in nodes.iter().enumerate() {
            // Module and definitions share the symbol namespace; files are looked up by path,
            // and an import node names a binding, not a definition.
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
        r
    }
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
