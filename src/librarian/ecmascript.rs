//! Facts from JavaScript, TypeScript and TSX files: the same shapes as for Python, with symbols
//! written `path/to/file.ts:Qualified.name` and imports resolved to repository files.

use tree_sitter::{Node, QueryCursor, StreamingIterator};

use super::extract::{
    capture, collect_calls, collect_refs, def_head, match_line, sha, span, text, Def, FileFacts,
    Import, NodeKind, Scopes,
};
use crate::lang::Language;

/// The name a node defines, if it is a definition that scopes others.
fn definition_name<'s>(source: &'s str, n: Node) -> Option<&'s str> {
    match n.kind() {
        "function_declaration"
        | "generator_function_declaration"
        | "class_declaration"
        | "abstract_class_declaration"
        | "method_definition" => n.child_by_field_name("name").map(|x| text(source, x)),
        "variable_declarator" => {
            let value = n.child_by_field_name("value")?;
            matches!(value.kind(), "arrow_function" | "function_expression")
                .then(|| n.child_by_field_name("name").map(|x| text(source, x)))?
        }
        _ => None,
    }
}

fn is_class(n: Node) -> bool {
    matches!(n.kind(), "class_declaration" | "abstract_class_declaration")
}

/// Names of the enclosing definitions, outermost first, and whether the innermost is a class.
fn enclosing(source: &str, node: Node) -> (Vec<String>, bool) {
    let mut parts = Vec::new();
    let mut innermost_is_class = None;
    let mut cur = node.parent();
    while let Some(n) = cur {
        if let Some(name) = definition_name(source, n) {
            innermost_is_class.get_or_insert(is_class(n));
            parts.push(name.to_string());
        }
        cur = n.parent();
    }
    parts.reverse();
    (parts, innermost_is_class == Some(true))
}

/// `./util` imported from `src/app/main.ts` → `src/app/util` (extension and index file are
/// settled by the resolver, which knows the files). Bare specifiers (packages) stay as written.
pub fn join_specifier(from_file: &str, spec: &str) -> String {
    if !spec.starts_with('.') {
        return spec.to_string();
    }
    let mut parts: Vec<&str> = from_file.split('/').collect();
    parts.pop();
    for seg in spec.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

fn bases(source: &str, class: Node) -> Vec<String> {
    let mut out = Vec::new();
    let mut c = class.walk();
    for child in class.children(&mut c) {
        if child.kind() == "class_heritage" {
            let mut stack = vec![child];
            while let Some(n) = stack.pop() {
                if n.kind() == "implements_clause" {
                    continue;
                }
                if matches!(n.kind(), "identifier" | "member_expression")
                    && n.parent().is_some_and(|p| p.kind() != "member_expression")
                {
                    out.push(text(source, n).to_string());
                    continue;
                }
                let mut c2 = n.walk();
                stack.extend(n.named_children(&mut c2));
            }
        }
    }
    out
}

pub fn extract(
    path: &str,
    source: &str,
    tree: &tree_sitter::Tree,
    language: Language,
) -> FileFacts {
    let q = crate::lang::queries(language);
    let root = tree.root_node();
    let mut facts = FileFacts {
        path: path.to_string(),
        language,
        module: path.to_string(),
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
        let (mut def, mut name, mut kind) = (None, None, None);
        for c in m.captures {
            match names[c.index as usize] {
                "function" => (def, kind) = (Some(c.node), Some(NodeKind::Function)),
                "class" => (def, kind) = (Some(c.node), Some(NodeKind::Class)),
                "method" => (def, kind) = (Some(c.node), Some(NodeKind::Method)),
                "variable" => (def, kind) = (Some(c.node), Some(NodeKind::Variable)),
                "name" => name = Some(c.node),
                _ => {}
            }
        }
        let (Some(def), Some(name), Some(mut kind)) = (def, name, kind) else {
            continue;
        };
        let (mut parts, in_class) = enclosing(source, def);
        if kind == NodeKind::Function && in_class {
            kind = NodeKind::Method;
        }
        let name_text = text(source, name).to_string();
        parts.push(name_text.clone());
        let qualified = parts.join(".");
        // `const f = () => …` is matched as a function and as a module-level binding; the
        // function wins.
        if let Some(i) = facts.defs.iter().position(|d| d.qualified == qualified) {
            if facts.defs[i].kind == NodeKind::Variable && kind != NodeKind::Variable {
                facts.defs.remove(i);
            } else {
                continue;
            }
        }
        let signature = def_head(source, def)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        facts.defs.push(Def {
            kind,
            name: name_text,
            qualified,
            byte_range: (def.start_byte(), def.end_byte()),
            lines: (def.start_position().row + 1, def.end_position().row + 1),
            signature,
            doc: leading_comment(source, def),
            hash: sha(text(source, def)),
            bases: if kind == NodeKind::Class {
                bases(source, def)
            } else {
                Vec::new()
            },
        });
    }

    let names = q.imports.capture_names();
    let mut matches = cursor.matches(&q.imports, root, source.as_bytes());
    while let Some(m) = matches.next() {
        let get = |n: &str| capture(m, names, n);
        let line = match_line(m);
        if let Some(src) = get("wildcard_source") {
            let module = join_specifier(path, text(source, src));
            facts.imports.push(Import {
                local: "*".into(),
                module,
                name: Some("*".into()),
                line,
                byte_range: span(m),
            });
            continue;
        }
        let Some(src) = get("source") else { continue };
        let module = join_specifier(path, text(source, src));
        if let Some(d) = get("default") {
            facts.imports.push(Import {
                local: text(source, d).into(),
                module,
                name: Some("default".into()),
                line,
                byte_range: span(m),
            });
        } else if let Some(ns) = get("namespace") {
            facts.imports.push(Import {
                local: text(source, ns).into(),
                module,
                name: None,
                line,
                byte_range: span(m),
            });
        } else if let Some(n) = get("name") {
            let name = text(source, n).to_string();
            let local = get("alias")
                .map(|a| text(source, a).to_string())
                .unwrap_or_else(|| name.clone());
            facts.imports.push(Import {
                local,
                module,
                name: Some(name),
                line,
                byte_range: span(m),
            });
        }
    }

    // `this` plays the part of Python's `self` for the resolver.
    let receiver = |r: &str| {
        if r == "this" {
            "self".to_string()
        } else {
            r.to_string()
        }
    };
    let scopes = Scopes::new(&facts.defs);
    collect_calls(
        &q.calls,
        root,
        source,
        &mut facts,
        |n| scopes.at(n.start_byte()),
        receiver,
    );
    facts.refs = collect_refs(&q.refs, root, source, &scopes);
    facts
}

/// A `/** … */` or `//` comment directly above the definition (or its `export`).
fn leading_comment(source: &str, def: Node) -> Option<String> {
    let anchor = match def.parent() {
        Some(p) if p.kind() == "export_statement" => p,
        _ => def,
    };
    let prev = anchor.prev_sibling()?;
    if prev.kind() != "comment" || prev.end_position().row + 1 < anchor.start_position().row {
        return None;
    }
    let t = text(source, prev);
    let cleaned: Vec<&str> = t
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches("/**")
                .trim_start_matches("/*")
                .trim_end_matches("*/")
                .trim_start_matches("//")
                .trim_start_matches('*')
                .trim()
        })
        .filter(|l| !l.is_empty())
        .collect();
    (!cleaned.is_empty()).then(|| cleaned.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(path: &str, src: &str, lang: Language) -> FileFacts {
        let tree = crate::lang::parse(src, lang).unwrap();
        extract(path, src, &tree, lang)
    }

    #[test]
    fn queries_compile() {
        for l in [Language::JavaScript, Language::TypeScript, Language::Tsx] {
            let _ = crate::lang::queries(l);
        }
    }

    #[test]
    fn definitions_imports_and_calls() {
        let src = "import { clean as c } from './util';\nimport * as path from 'path';\n/** A parser. */\nexport class Parser extends Base {\n  parse(x: string): number {\n    return this.helper(c(x));\n  }\n  helper(n) { return n; }\n}\nexport const run = (s: string) => {\n  const p = new Parser();\n  return p.parse(s);\n};\nexport const LIMIT = 3;\n";
        let f = facts("src/app.ts", src, Language::TypeScript);
        let q: Vec<(&str, NodeKind)> = f
            .defs
            .iter()
            .map(|d| (d.qualified.as_str(), d.kind))
            .collect();
        assert!(q.contains(&("Parser", NodeKind::Class)), "{q:?}");
        assert!(q.contains(&("Parser.parse", NodeKind::Method)));
        assert!(q.contains(&("run", NodeKind::Function)));
        assert!(q.contains(&("LIMIT", NodeKind::Variable)));
        assert_eq!(q.iter().filter(|(n, _)| *n == "run").count(), 1);
        let parser = f.defs.iter().find(|d| d.qualified == "Parser").unwrap();
        assert_eq!(parser.bases, vec!["Base"]);
        assert_eq!(parser.doc.as_deref(), Some("A parser."));
        let imp = f.imports.iter().find(|i| i.local == "c").unwrap();
        assert_eq!(
            (imp.module.as_str(), imp.name.as_deref()),
            ("src/util", Some("clean"))
        );
        assert!(f
            .imports
            .iter()
            .any(|i| i.local == "path" && i.module == "path"));
        let calls: Vec<(&str, &str, Option<&str>)> = f
            .calls
            .iter()
            .map(|c| (c.scope.as_str(), c.callee.as_str(), c.receiver.as_deref()))
            .collect();
        assert!(
            calls.contains(&("Parser.parse", "helper", Some("self"))),
            "{calls:?}"
        );
        assert!(calls.contains(&("Parser.parse", "c", None)));
        assert!(calls.contains(&("run", "parse", Some("p"))));
        assert!(f
            .bindings
            .iter()
            .any(|b| b.var == "p" && b.constructor == "Parser" && b.scope == "run"));
    }

    #[test]
    fn specifiers_join_relative_to_the_file() {
        assert_eq!(join_specifier("src/a/b.ts", "./c"), "src/a/c");
        assert_eq!(join_specifier("src/a/b.ts", "../d/e"), "src/d/e");
        assert_eq!(join_specifier("src/a/b.ts", "lodash"), "lodash");
    }

    #[test]
    fn commonjs_requires_and_reexports() {
        let f = facts(
            "lib/x.js",
            "const u = require('./util');\nexport { a as b } from './y';\nexport * from './z';\n",
            Language::JavaScript,
        );
        assert!(f
            .imports
            .iter()
            .any(|i| i.local == "u" && i.module == "lib/util" && i.name.is_none()));
        assert!(f
            .imports
            .iter()
            .any(|i| i.local == "b" && i.module == "lib/y" && i.name.as_deref() == Some("a")));
        assert!(f
            .imports
            .iter()
            .any(|i| i.local == "*" && i.module == "lib/z"));
    }

    #[test]
    fn destructured_requires_bind_each_name() {
        let f = facts(
            "t.test.js",
            "const { helper, main: run } = require('./util.js');
",
            Language::JavaScript,
        );
        let binds: Vec<(&str, Option<&str>)> = f
            .imports
            .iter()
            .map(|i| (i.local.as_str(), i.name.as_deref()))
            .collect();
        assert_eq!(binds, [("helper", Some("helper")), ("run", Some("main"))]);
        assert!(f.imports.iter().all(|i| i.module == "util.js"));
    }
}
