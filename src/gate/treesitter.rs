//! Layer 1: tree-sitter. It recovers from errors, so a single parse locates every damaged spot
//! (ERROR nodes) and every token it had to invent (MISSING nodes).

use tree_sitter::Node;

use super::report::{GateError, Layer};
use super::Language;

pub(crate) struct TreeSitterResult {
    pub errors: Vec<GateError>,
    pub ast_depth: usize,
    pub error_nodes: usize,
}

/// Every ERROR and MISSING node (at most `max_errors` of them), within `budget`. Running out
/// of time fails closed: one error saying so, which no caller can mistake for a pass.
pub(crate) fn check(
    source: &str,
    language: Language,
    budget: std::time::Duration,
    max_errors: usize,
) -> TreeSitterResult {
    let Some(tree) = crate::lang::parse_within(source, language, budget) else {
        let e = GateError::at(
            source,
            Layer::TreeSitter,
            0..0,
            "ERROR",
            format!(
                "too complex to validate within the limit ({} s of tree-sitter time)",
                budget.as_secs_f64()
            ),
        );
        return TreeSitterResult {
            errors: vec![e],
            ast_depth: 0,
            error_nodes: 1,
        };
    };
    let mut errors = Vec::new();
    let mut depth = 0;
    let mut max_depth = 0;
    let mut cursor = tree.walk();
    // Iterative pre-order walk: deeply nested inputs must not overflow the stack.
    loop {
        let node = cursor.node();
        max_depth = max_depth.max(depth + 1);
        if errors.len() < max_errors {
            if node.is_error() {
                errors.push(error_node(source, node));
            } else if node.is_missing() {
                errors.push(missing_node(source, node));
            }
        }
        if node.has_error() && cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        // Error-free subtrees are skipped for errors, but the depth still counts them.
        if !node.has_error() {
            max_depth = max_depth.max(depth + subtree_depth(node));
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                let error_nodes = errors.len();
                return TreeSitterResult {
                    errors,
                    ast_depth: max_depth,
                    error_nodes,
                };
            }
            depth -= 1;
        }
    }
}

fn subtree_depth(node: Node) -> usize {
    let mut cursor = node.walk();
    let mut depth = 1;
    let mut max = 1;
    loop {
        if cursor.goto_first_child() {
            depth += 1;
            max = max.max(depth);
            continue;
        }
        loop {
            if cursor.node() == node {
                return max;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return max;
            }
            depth -= 1;
        }
    }
}

fn error_node(source: &str, node: Node) -> GateError {
    let range = node.byte_range();
    let message = match first_leaf_text(source, node) {
        Some(tok) => format!("unexpected `{tok}`"),
        None if range.is_empty() => "unexpected end of input".to_string(),
        None => "syntax error".to_string(),
    };
    GateError::at(source, Layer::TreeSitter, range, "ERROR", message)
}

fn missing_node(source: &str, node: Node) -> GateError {
    let kind = node.kind();
    let message = if node.is_named() {
        format!("missing {kind}")
    } else {
        format!("missing `{kind}`")
    };
    GateError::at(
        source,
        Layer::TreeSitter,
        node.byte_range(),
        "MISSING",
        message,
    )
}

/// The text of the first token inside an ERROR node, shortened for messages.
fn first_leaf_text(source: &str, node: Node) -> Option<String> {
    let mut n = node;
    while let Some(child) = n.child(0) {
        n = child;
    }
    let text = source.get(n.byte_range())?.trim();
    let first_line = text.lines().next()?;
    if first_line.is_empty() {
        return None;
    }
    let short: String = first_line.chars().take(40).collect();
    Some(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str, language: Language) -> TreeSitterResult {
        super::check(source, language, std::time::Duration::from_secs(5), 100)
    }

    #[test]
    fn finds_error_and_missing_nodes() {
        let r = check("def f(:\n    pass\n", Language::Python);
        assert!(!r.errors.is_empty());
        let r = check("if (a) { b();\n", Language::JavaScript);
        assert!(
            r.errors.iter().any(|e| e.kind == "MISSING"),
            "{:?}",
            r.errors
        );
        let ok = check("const a: number = 1;\n", Language::TypeScript);
        assert!(ok.errors.is_empty());
        assert!(ok.ast_depth >= 3);
    }

    #[test]
    fn running_out_of_time_fails_closed() {
        let src = "print(1 +)\n".repeat(20_000);
        let r = super::check(&src, Language::Python, std::time::Duration::ZERO, 100);
        assert!(
            r.errors[0].message.contains("too complex to validate"),
            "{:?}",
            r.errors[0]
        );
        let r = super::check(
            &src,
            Language::Python,
            std::time::Duration::from_secs(30),
            100,
        );
        assert_eq!(r.errors.len(), 100);
    }

    #[test]
    fn tsx_and_typescript_differ_on_angle_casts() {
        let src = "const x = <any>y;\n";
        assert!(check(src, Language::TypeScript).errors.is_empty());
        assert!(!check(src, Language::Tsx).errors.is_empty());
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let src = format!("x = {}1{}\n", "(".repeat(5000), ")".repeat(5000));
        let r = check(&src, Language::Python);
        assert!(r.ast_depth > 1000);
    }
}
