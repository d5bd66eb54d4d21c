//! Python definitions for the semantic checks, read from tree-sitter. Which names a body reads
//! and binds comes from the librarian's own reference query (`queries/python/references.scm`),
//! so the undefined-name check resolves scopes the way the code graph does.

use std::collections::{BTreeMap, HashSet};

use tree_sitter::{Node, QueryCursor, StreamingIterator};

use super::{Definition, Param, ParamKind};
use crate::lang::{self, builtins, Language};

fn text<'s>(source: &'s str, n: Node) -> &'s str {
    &source[n.byte_range()]
}

pub(super) fn definition(source: &str, root: Node, node: Node) -> Option<Definition> {
    // A decorated definition holds the `def`.
    let def = if node.kind() == "decorated_definition" {
        node.child_by_field_name("definition")?
    } else {
        node
    };
    if def.kind() != "function_definition" {
        return None;
    }
    let body = def.child_by_field_name("body")?;
    let statements = statements(body);
    let (returns_value, generator) = returns(body);
    let mut mentioned = HashSet::new();
    identifiers(source, body, &mut mentioned);
    Some(Definition {
        start: statements
            .first()
            .map_or(body.start_byte(), |s| s.start_byte()),
        params: params(source, def),
        returns_value,
        generator,
        placeholder: statements.iter().all(|s| is_placeholder(source, *s)),
        mentioned,
        undefined: module_names(source, root)
            .map(|known| undefined(source, def, &known))
            .unwrap_or_default(),
    })
}

/// The body's statements, without a leading docstring and without comments.
fn statements(body: Node) -> Vec<Node> {
    let mut c = body.walk();
    let mut out: Vec<Node> = body
        .named_children(&mut c)
        .filter(|s| s.kind() != "comment")
        .collect();
    let docstring = out.first().is_some_and(|s| {
        s.kind() == "expression_statement" && s.named_child(0).is_some_and(|n| n.kind() == "string")
    });
    if docstring {
        out.remove(0);
    }
    out
}

fn is_placeholder(source: &str, s: Node) -> bool {
    match s.kind() {
        "pass_statement" => true,
        "expression_statement" => s.named_child(0).is_some_and(|n| n.kind() == "ellipsis"),
        "return_statement" => match s.named_child(0) {
            None => true,
            Some(v) => v.kind() == "none",
        },
        "raise_statement" => s.named_child(0).is_some_and(|e| {
            let t = text(source, e);
            t == "NotImplementedError" || t.starts_with("NotImplementedError(")
        }),
        _ => false,
    }
}

/// Whether some path returns a value, and whether the body yields (a generator returns
/// without `return`). Nested functions, classes and lambdas are their own business.
fn returns(body: Node) -> (bool, bool) {
    let (mut value, mut generator) = (false, false);
    let mut stack = vec![body];
    while let Some(n) = stack.pop() {
        match n.kind() {
            "function_definition" | "class_definition" | "lambda" if n != body => continue,
            "return_statement" => {
                value |= n.named_child(0).is_some_and(|v| v.kind() != "none");
            }
            "yield" => generator = true,
            _ => {}
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
    (value, generator)
}

fn identifiers(source: &str, n: Node, out: &mut HashSet<String>) {
    let mut stack = vec![n];
    while let Some(n) = stack.pop() {
        if n.kind() == "identifier" {
            out.insert(text(source, n).to_string());
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
}

fn params(source: &str, def: Node) -> Vec<Param> {
    let Some(list) = def.child_by_field_name("parameters") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut c = list.walk();
    for p in list.named_children(&mut c) {
        let name_of = |n: Node| -> String {
            match n.kind() {
                "identifier" => text(source, n).to_string(),
                _ => n
                    .named_child(0)
                    .map(|i| text(source, i).to_string())
                    .unwrap_or_default(),
            }
        };
        let (name, default, kind) = match p.kind() {
            "identifier" => (text(source, p).to_string(), false, ParamKind::Plain),
            "default_parameter" | "typed_default_parameter" => (
                p.child_by_field_name("name")
                    .map(|n| text(source, n).to_string())
                    .unwrap_or_default(),
                true,
                ParamKind::Plain,
            ),
            "typed_parameter" => {
                let inner = p.named_child(0);
                match inner.map(|i| i.kind()) {
                    Some("list_splat_pattern") => (name_of(inner.unwrap()), false, ParamKind::Rest),
                    Some("dictionary_splat_pattern") => {
                        (name_of(inner.unwrap()), false, ParamKind::KeywordRest)
                    }
                    _ => (
                        inner.map(name_of).unwrap_or_default(),
                        false,
                        ParamKind::Plain,
                    ),
                }
            }
            "list_splat_pattern" => (name_of(p), false, ParamKind::Rest),
            "dictionary_splat_pattern" => (name_of(p), false, ParamKind::KeywordRest),
            "keyword_separator" => ("*".into(), false, ParamKind::Marker),
            "positional_separator" => ("/".into(), false, ParamKind::Marker),
            _ => continue,
        };
        out.push(Param {
            name,
            default,
            kind,
        });
    }
    out
}

/// Names bound at module level: definitions, assignments, imports and `global` declarations,
/// in conditional and `try` blocks too. `None` when a star import makes that unknowable.
fn module_names(source: &str, root: Node) -> Option<HashSet<String>> {
    let mut names = HashSet::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        match n.kind() {
            "function_definition" | "class_definition" => {
                if let Some(name) = n.child_by_field_name("name") {
                    names.insert(text(source, name).to_string());
                }
                continue;
            }
            "import_statement" | "import_from_statement" | "future_import_statement" => {
                if n.named_children(&mut n.walk())
                    .any(|c| c.kind() == "wildcard_import")
                {
                    return None;
                }
                import_names(source, n, &mut names);
                continue;
            }
            "assignment" | "augmented_assignment" | "for_statement" => {
                if let Some(left) = n.child_by_field_name("left") {
                    identifiers(source, left, &mut names);
                }
            }
            "as_pattern_target" | "global_statement" => identifiers(source, n, &mut names),
            _ => {}
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
    Some(names)
}

/// The local names an import statement binds: `import a.b` binds `a`, `import a as b` and
/// `from m import a as b` bind `b`.
fn import_names(source: &str, n: Node, out: &mut HashSet<String>) {
    let module = n.child_by_field_name("module_name");
    let mut c = n.walk();
    for child in n.named_children(&mut c) {
        if Some(child) == module {
            continue;
        }
        let name = match child.kind() {
            "aliased_import" => child.child_by_field_name("alias"),
            "dotted_name" => child.named_child(0),
            _ => None,
        };
        if let Some(name) = name {
            out.insert(text(source, name).to_string());
        }
    }
}

/// Names `def` reads that neither it binds (parameters, assignments, nested definitions,
/// imports) nor the module nor the builtins define, with where each is first read.
fn undefined(source: &str, def: Node, module: &HashSet<String>) -> BTreeMap<String, usize> {
    let query = &lang::queries(Language::Python).refs;
    let names = query.capture_names();
    let mut reads: Vec<(String, usize)> = Vec::new();
    let mut bound: HashSet<String> = HashSet::new();
    let mut cursor = QueryCursor::new();
    cursor.set_byte_range(def.byte_range());
    let mut matches = cursor.matches(query, def, source.as_bytes());
    while let Some(m) = matches.next() {
        for c in m.captures {
            let name = text(source, c.node).to_string();
            match names[c.index as usize] {
                "read" => reads.push((name, c.node.start_byte())),
                _ => {
                    bound.insert(name);
                }
            }
        }
    }
    // Names in call position are calls, which the reference query leaves to the call query.
    let mut stack = vec![def];
    while let Some(n) = stack.pop() {
        match n.kind() {
            "call" => {
                if let Some(f) = n
                    .child_by_field_name("function")
                    .filter(|f| f.kind() == "identifier")
                {
                    reads.push((text(source, f).to_string(), f.start_byte()));
                }
            }
            "function_definition" | "class_definition" if n != def => {
                if let Some(name) = n.child_by_field_name("name") {
                    bound.insert(text(source, name).to_string());
                }
            }
            "import_statement" | "import_from_statement" => import_names(source, n, &mut bound),
            "nonlocal_statement" => identifiers(source, n, &mut bound),
            _ => {}
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
    let mut out = BTreeMap::new();
    for (name, at) in reads {
        if !bound.contains(&name)
            && !module.contains(&name)
            && !builtins::is_builtin(Language::Python, &name)
        {
            out.entry(name)
                .and_modify(|first: &mut usize| *first = (*first).min(at))
                .or_insert(at);
        }
    }
    out
}
