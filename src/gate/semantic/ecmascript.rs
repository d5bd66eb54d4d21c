//! JavaScript and TypeScript definitions for the semantic checks: the shape from tree-sitter,
//! and undefined names from oxc's semantic analysis (its unresolved references, less the
//! language's and the platforms' globals).

use std::collections::{BTreeMap, HashSet};

use oxc_allocator::Allocator;
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::GetSpan;
use tree_sitter::Node;

use super::{Definition, Param, ParamKind};
use crate::gate::ecmascript::source_type;
use crate::lang::{builtins, SourceKind};

fn text<'s>(source: &'s str, n: Node) -> &'s str {
    &source[n.byte_range()]
}

const FUNCTIONS: &[&str] = &[
    "function_declaration",
    "generator_function_declaration",
    "function_expression",
    "generator_function",
    "function",
    "arrow_function",
    "method_definition",
];

pub(super) fn definition(source: &str, kind: SourceKind, node: Node) -> Option<Definition> {
    if !FUNCTIONS.contains(&node.kind()) {
        return None;
    }
    let body = node.child_by_field_name("body")?;
    let (returns_value, placeholder) = if body.kind() == "statement_block" {
        let mut c = body.walk();
        let statements: Vec<Node> = body
            .named_children(&mut c)
            .filter(|s| s.kind() != "comment")
            .collect();
        (
            returns(source, body),
            statements.iter().all(|s| is_placeholder(source, *s)),
        )
    } else {
        // An arrow function's expression body is its value.
        (true, false)
    };
    let mut mentioned = HashSet::new();
    identifiers(source, body, &mut mentioned);
    Some(Definition {
        start: body.start_byte(),
        params: params(source, node),
        returns_value,
        generator: node.kind().starts_with("generator") || has_yield(body),
        placeholder,
        mentioned,
        undefined: undefined(source, kind, node.byte_range()),
    })
}

fn is_placeholder(source: &str, s: Node) -> bool {
    match s.kind() {
        "empty_statement" => true,
        "return_statement" => match s.named_child(0) {
            None => true,
            Some(v) => matches!(text(source, v), "undefined" | "null"),
        },
        _ => false,
    }
}

fn is_function(n: Node) -> bool {
    FUNCTIONS.contains(&n.kind()) || n.kind() == "class_declaration"
}

fn returns(source: &str, body: Node) -> bool {
    let mut stack = vec![body];
    while let Some(n) = stack.pop() {
        if n != body && is_function(n) {
            continue;
        }
        if n.kind() == "return_statement"
            && n.named_child(0)
                .is_some_and(|v| !matches!(text(source, v), "undefined"))
        {
            return true;
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
    false
}

fn has_yield(body: Node) -> bool {
    let mut stack = vec![body];
    while let Some(n) = stack.pop() {
        if n != body && is_function(n) {
            continue;
        }
        if n.kind() == "yield_expression" {
            return true;
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
    false
}

fn identifiers(source: &str, n: Node, out: &mut HashSet<String>) {
    let mut stack = vec![n];
    while let Some(n) = stack.pop() {
        if matches!(n.kind(), "identifier" | "shorthand_property_identifier") {
            out.insert(text(source, n).to_string());
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
}

fn params(source: &str, def: Node) -> Vec<Param> {
    if let Some(single) = def.child_by_field_name("parameter") {
        return vec![Param {
            name: text(source, single).to_string(),
            default: false,
            kind: ParamKind::Plain,
        }];
    }
    let Some(list) = def.child_by_field_name("parameters") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut c = list.walk();
    for p in list.named_children(&mut c) {
        if p.kind() == "comment" {
            continue;
        }
        // TypeScript wraps each in required_/optional_parameter: the pattern and its value.
        let (pattern, default) = match p.kind() {
            "required_parameter" | "optional_parameter" => (
                p.child_by_field_name("pattern")
                    .or_else(|| p.child_by_field_name("name")),
                p.child_by_field_name("value").is_some() || p.kind() == "optional_parameter",
            ),
            "assignment_pattern" => (p.child_by_field_name("left"), true),
            _ => (Some(p), false),
        };
        let Some(pattern) = pattern else { continue };
        let (name, kind) = match pattern.kind() {
            "rest_pattern" => (
                pattern
                    .named_child(0)
                    .map_or(String::new(), |n| text(source, n).to_string()),
                ParamKind::Rest,
            ),
            _ => (text(source, pattern).to_string(), ParamKind::Plain),
        };
        out.push(Param {
            name,
            default,
            kind,
        });
    }
    out
}

/// Names read inside `range` that resolve to no declaration in the file and are not globals.
fn undefined(
    source: &str,
    kind: SourceKind,
    range: std::ops::Range<usize>,
) -> BTreeMap<String, usize> {
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, source_type(kind)).parse();
    let mut out = BTreeMap::new();
    if parsed.panicked {
        return out;
    }
    let built = SemanticBuilder::new()
        .with_build_nodes(true)
        .build(&parsed.program);
    let semantic = built.semantic;
    let scoping = semantic.scoping();
    for (name, ids) in scoping.root_unresolved_references().iter() {
        let name: &str = name.as_str();
        if builtins::is_builtin(kind.language, name) {
            continue;
        }
        for &id in ids.iter() {
            let node = scoping.get_reference(id).node_id();
            let at = semantic.nodes().kind(node).span().start as usize;
            if range.contains(&at) {
                out.entry(name.to_string())
                    .and_modify(|first: &mut usize| *first = (*first).min(at))
                    .or_insert(at);
            }
        }
    }
    out
}
