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
}

impl EdgeKind {
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Contains => "CONTAINS",
            EdgeKind::Defines => "DEFINES",
            EdgeKind::Imports => "IMPORTS",
            EdgeKind::Calls => "CALLS",
            EdgeKind::Inherits => "INHERITS",
        }
    }

    pub fn parse(s: &str) -> Option<EdgeKind> {
        [
            EdgeKind::Contains,
            EdgeKind::Defines,
            EdgeKind::Imports,
            EdgeKind::Calls,
            EdgeKind::Inherits,
        ]
        .into_iter()
        .find(|k| k.name() == s)
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

impl Resolver<'_> {
    fn node(&self, symbol: &str) -> Option<usize> {
        self.by_symbol.get(symbol).copied()
    }

    /// `module.name`, following re-exports (`from .store import Store` in a package's
    /// `__init__.py`) a few levels deep.
    fn export(&self, module: &str, name: &str, hops: usize) -> Option<usize> {
        if let Some(i) = self.node(&format!("{module}.{name}")) {
            return Some(i);
        }
        let file = self.modules.get(module)?;
        let imp = file.imports.iter().rev().find(|i| i.local == name)?;
        if hops == 0 {
            return None;
        }
        match &imp.name {
            Some(n) => self.export(&imp.module, n, hops - 1),
            None => self.node(&imp.module),
        }
    }

    /// What a bare name means inside `file`: its own definitions, then its imports.
    fn name(&self, file: &FileFacts, name: &str) -> Option<usize> {
        if let Some(i) = self.node(&format!("{}.{name}", file.module)) {
            return Some(i);
        }
        for imp in file.imports.iter().rev() {
            if imp.local == name {
                return match &imp.name {
                    Some(n) => self.export(&imp.module, n, 4),
                    None => self.node(&imp.module),
                };
            }
        }
        // `from m import *` brings in m's top-level names.
        for imp in file.imports.iter().filter(|i| i.local == "*") {
            if let Some(i) = self.node(&format!("{}.{name}", imp.module)) {
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
            cur = self.node(&format!("{}.{p}", self.nodes[cur].symbol))?;
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
        if let Some(i) = self.node(&format!("{}.{member}", self.nodes[class].symbol)) {
            return Some(i);
        }
        bases
            .get(&class)?
            .iter()
            .find_map(|&b| self.member(b, member, bases, seen))
    }
}

pub fn build(files: &[FileFacts]) -> Graph {
    let mut g = Graph::default();
    for f in files {
        let file_id = node_id(NodeKind::File, &f.path, "");
        let module_id = node_id(NodeKind::Module, &f.path, &f.module);
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
            symbol: f.module.clone(),
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
        for d in &f.defs {
            let id = node_id(d.kind, &f.path, &d.qualified);
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
                symbol: format!("{}.{}", f.module, d.qualified),
                file: f.path.clone(),
                lines: d.lines,
                byte_range: d.byte_range,
                signature: d.signature.clone(),
                doc: d.doc.clone(),
                hash: d.hash.clone(),
            });
        }
    }

    let mut r = Resolver {
        by_symbol: HashMap::new(),
        by_name: HashMap::new(),
        modules: files.iter().map(|f| (f.module.clone(), f)).collect(),
        nodes: &g.nodes,
    };
    for (i, n) in g.nodes.iter().enumerate() {
        // Module and definitions share the symbol namespace; files are looked up by path.
        if n.kind != NodeKind::File {
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
            let class = r
                .node(&format!("{}.{}", f.module, d.qualified))
                .expect("indexed above");
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
                .or_else(|| r.modules.get(&imp.module).and_then(|m| r.node(&m.module)));
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
                r.node(&format!("{}.{}", f.module, call.scope))
                    .map(|i| r.nodes[i].id.clone())
            };
            let Some(source) = source else { continue };
            let enclosing_class = || {
                let mut parts: Vec<&str> = call.scope.split('.').collect();
                while !parts.is_empty() {
                    parts.pop();
                    if let Some(i) = r.node(&format!("{}.{}", f.module, parts.join("."))) {
                        if r.nodes[i].kind == NodeKind::Class {
                            return Some(i);
                        }
                    }
                }
                None
            };
            let resolved = match call.receiver.as_deref() {
                None => r.name(f, &call.callee).map(|t| constructor_or(&r, t)),
                Some("self") | Some("cls") => enclosing_class()
                    .and_then(|c| r.member(c, &call.callee, &bases, &mut HashSet::new())),
                Some(recv) => {
                    let bound = f
                        .bindings
                        .iter()
                        .rev()
                        .find(|b| b.var == recv && b.scope == call.scope)
                        .and_then(|b| r.name(f, &b.constructor))
                        .filter(|&c| r.nodes[c].kind == NodeKind::Class);
                    match bound {
                        Some(c) => r.member(c, &call.callee, &bases, &mut HashSet::new()),
                        None => r.dotted(f, recv).and_then(|t| match r.nodes[t].kind {
                            NodeKind::Class => {
                                r.member(t, &call.callee, &bases, &mut HashSet::new())
                            }
                            _ => r.node(&format!("{}.{}", r.nodes[t].symbol, call.callee)),
                        }),
                    }
                }
            };
            let (target, confidence) = match resolved {
                Some(t) => (Some(t), 1.0),
                None => match r.by_name.get(&call.callee).map(Vec::as_slice) {
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
    g.edges.extend(edges);
    g.unresolved = unresolved;
    g
}

/// Calling a class runs its `__init__` when it has one.
fn constructor_or(r: &Resolver, target: usize) -> usize {
    if r.nodes[target].kind == NodeKind::Class {
        if let Some(init) = r.node(&format!("{}.__init__", r.nodes[target].symbol)) {
            return init;
        }
    }
    target
}
