//! The resolution passes over the indexed files: base classes, imports, calls and references,
//! each explained by the language's own rules where it can be.

use std::collections::{HashMap, HashSet};

use super::guess::{is_nested, worth_guessing};
use super::{child_symbol, node_id, EdgeKind, GraphEdge, Resolved, Resolver, Unresolved};
use crate::librarian::extract::{Call, FileFacts, NodeKind};

/// INHERITS edges; returns each class's resolved bases.
pub(super) fn resolve_bases(
    r: &Resolver,
    files: &[&FileFacts],
    out: &mut Resolved,
) -> HashMap<usize, Vec<usize>> {
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
                        out.edge(r, class, t, EdgeKind::Inherits, d.lines.0);
                    }
                    None => out.unresolved.push(Unresolved {
                        source: r.nodes[class].id.clone(),
                        name: b.clone(),
                        file: f.path.clone(),
                        line: d.lines.0,
                    }),
                }
            }
        }
    }
    bases
}

/// One IMPORTS edge from the module to each distinct thing it imports.
pub(super) fn resolve_imports(r: &Resolver, f: &FileFacts, out: &mut Resolved) {
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
                out.edges.push(GraphEdge {
                    source: module_id.clone(),
                    target: r.nodes[t].id.clone(),
                    kind: EdgeKind::Imports,
                    confidence: 1.0,
                    line: imp.line,
                });
            }
        }
    }
}

/// A CALLS edge for `call` (confidence 1 when resolution explains it, 0.5 when a single
/// definition in the repository has the name), or an unresolved reference.
pub(super) fn resolve_call(
    r: &Resolver,
    f: &FileFacts,
    call: &Call,
    bases: &HashMap<usize, Vec<usize>>,
    out: &mut Resolved,
) {
    let source = if call.scope.is_empty() {
        Some(node_id(NodeKind::Module, &f.path, &f.module))
    } else {
        r.node(&child_symbol(f, &call.scope))
            .map(|i| r.nodes[i].id.clone())
    };
    let Some(source) = source else { return };
    let (target, confidence) = match call_target(r, f, call, bases) {
        Some(t) => (Some(t), 1.0),
        None if !worth_guessing(r, f, call) => (None, 0.0),
        None => match r.by_name.get(&call.callee).map(Vec::as_slice) {
            Some([only]) if is_nested(r, *only) => (None, 0.0),
            Some([only]) if call.receiver.is_none() => (Some(constructor_or(r, *only)), 0.5),
            Some([only]) => (Some(*only), 0.5),
            _ => (None, 0.0),
        },
    };
    match target {
        Some(t) => out.edges.push(GraphEdge {
            source,
            target: r.nodes[t].id.clone(),
            kind: EdgeKind::Calls,
            confidence,
            line: call.line,
        }),
        None => out.unresolved.push(Unresolved {
            source,
            name: match &call.receiver {
                Some(recv) => format!("{recv}.{}", call.callee),
                None => call.callee.clone(),
            },
            file: f.path.clone(),
            line: call.line,
        }),
    }
}

/// What a call means by the language's rules: a local or imported name, a method through
/// `self`/`cls` and the base classes, or a method of the class a receiver was built from.
fn call_target(
    r: &Resolver,
    f: &FileFacts,
    call: &Call,
    bases: &HashMap<usize, Vec<usize>>,
) -> Option<usize> {
    let member = |class: usize| r.member(class, &call.callee, bases, &mut HashSet::new());
    match call.receiver.as_deref() {
        None => local_function(r, f, &call.scope, &call.callee)
            .or_else(|| r.name(f, &call.callee))
            .map(|t| constructor_or(r, t)),
        Some("self") | Some("cls") => enclosing_class(r, f, &call.scope).and_then(member),
        Some(recv) => {
            let bound = f
                .bindings
                .iter()
                .rev()
                .find(|b| b.var == recv && b.scope == call.scope)
                .and_then(|b| r.name(f, &b.constructor))
                .filter(|&c| r.nodes[c].kind == NodeKind::Class)
                .or_else(|| constructed_class(r, f, recv));
            match bound {
                Some(c) => member(c),
                None => r.dotted(f, recv).and_then(|t| match r.nodes[t].kind {
                    NodeKind::Class => member(t),
                    _ => r.node(&r.member_symbol(t, &call.callee)),
                }),
            }
        }
    }
}

/// The innermost class around `scope`.
fn enclosing_class(r: &Resolver, f: &FileFacts, scope: &str) -> Option<usize> {
    let mut parts: Vec<&str> = scope.split('.').collect();
    while !parts.is_empty() {
        parts.pop();
        if let Some(i) = r.node(&child_symbol(f, &parts.join("."))) {
            if r.nodes[i].kind == NodeKind::Class {
                return Some(i);
            }
        }
    }
    None
}

/// REFERENCES edges from functions to the module-level names they read.
pub(super) fn resolve_refs(r: &Resolver, f: &FileFacts, out: &mut Resolved) {
    for re in &f.refs {
        let Some(source) = r.node(&child_symbol(f, &re.scope)) else {
            continue;
        };
        if !matches!(r.nodes[source].kind, NodeKind::Function | NodeKind::Method) {
            continue;
        }
        // Only what the name means at module level counts: a module-level variable, function
        // or class of this file, or one imported into it. Imported modules are IMPORTS edges
        // already, and names that resolve to nothing are builtins or locals the extractor
        // could not see bound; neither is recorded.
        let Some(target) = r.name(f, &re.name) else {
            continue;
        };
        if target != source
            && matches!(
                r.nodes[target].kind,
                NodeKind::Variable | NodeKind::Function | NodeKind::Class
            )
        {
            out.edge(r, source, target, EdgeKind::References, re.line);
        }
    }
}

/// A function defined inside the calling function or one around it (`def outer(): def
/// inner(): …; inner()`), which the module namespace does not show.
fn local_function(r: &Resolver, f: &FileFacts, scope: &str, callee: &str) -> Option<usize> {
    if scope.is_empty() {
        return None;
    }
    crate::librarian::extract::enclosing_scopes(scope).find_map(|s| {
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
