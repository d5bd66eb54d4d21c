//! Where a unit's body is: the lines the Builder replaces. The signature, decorators and
//! docstring (Python) or the braces (JavaScript/TypeScript) stay, so infill cannot change how
//! the unit is called.

use tree_sitter::Node;

use crate::lang::{self, Language};

/// Body lines (1-based, inclusive) of the definition spanning `lines`, or `None` when it has no
/// body line of its own (`def f(): return 1`, `function f() { return 1 }`).
pub fn body_lines(
    source: &str,
    language: Language,
    lines: (usize, usize),
) -> Option<(usize, usize)> {
    let tree = lang::parse(source, language)?;
    let def = lang::definition_at(tree.root_node(), lines)?;
    let body = def.child_by_field_name("body")?;
    match language {
        Language::Python => {
            let mut c = body.walk();
            let mut stmts: Vec<Node> = body.named_children(&mut c).collect();
            let is_doc = stmts.first().is_some_and(|s| {
                s.kind() == "expression_statement"
                    && s.named_child(0).is_some_and(|n| n.kind() == "string")
            });
            if is_doc {
                stmts.remove(0);
            }
            let first = stmts.iter().find(|s| s.kind() != "comment")?;
            let start = first.start_position().row + 1;
            let end = def.end_position().row + 1;
            (start > def.start_position().row + 1 && start <= end).then_some((start, end))
        }
        _ => {
            // Lines strictly between the line of `{` and the line of `}`.
            let open = body.start_position().row + 1;
            let close = body.end_position().row + 1;
            (close >= open + 2).then_some((open + 1, close - 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_bodies_leave_signature_decorators_and_docstring() {
        let src = "import x\n\n@cache\ndef f(a,\n      b):\n    \"\"\"Doc.\n    More.\"\"\"\n    c = a + b\n    return c\n\n\ndef g(): return 1\n\nclass K:\n    \"\"\"K.\"\"\"\n    n = 1\n    m = 2\n";
        assert_eq!(body_lines(src, Language::Python, (3, 9)), Some((8, 9)));
        assert_eq!(body_lines(src, Language::Python, (4, 9)), Some((8, 9)));
        assert_eq!(body_lines(src, Language::Python, (12, 12)), None);
        assert_eq!(body_lines(src, Language::Python, (14, 17)), Some((16, 17)));
    }

    #[test]
    fn script_bodies_are_the_lines_inside_the_braces() {
        let src = "/** Adds. */\nexport function add(a, b) {\n  const c = a + b;\n  return c;\n}\nfunction one() { return 1; }\nclass A {\n  m() {\n    return 1;\n  }\n}\n";
        assert_eq!(body_lines(src, Language::JavaScript, (2, 5)), Some((3, 4)));
        assert_eq!(body_lines(src, Language::JavaScript, (6, 6)), None);
        assert_eq!(body_lines(src, Language::JavaScript, (8, 10)), Some((9, 9)));
        let ts = "function f(x: number): number {\n  return x * 2;\n}\n";
        assert_eq!(body_lines(ts, Language::TypeScript, (1, 3)), Some((2, 2)));
    }
}
