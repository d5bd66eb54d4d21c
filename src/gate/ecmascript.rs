//! Layer 2 for JavaScript and TypeScript: oxc's parser, then oxc's semantic pass with its
//! syntax checks enabled (the "early errors" of the ECMAScript spec: `let let`, duplicate
//! `let` bindings, `break` to an unknown label, strict-mode rules in modules and classes).

use oxc_allocator::Allocator;
use oxc_diagnostics::OxcDiagnostic;
use oxc_parser::{ParseOptions, Parser};
use oxc_semantic::SemanticBuilder;
use oxc_span::SourceType;

use super::python::StrictResult;
use super::report::{GateError, Layer};
use super::{Language, ModuleGoal, SourceKind};

fn source_type(kind: SourceKind) -> SourceType {
    let base = match kind.language {
        Language::TypeScript | Language::Tsx => SourceType::ts(),
        Language::JavaScript | Language::Python => SourceType::mjs(),
    };
    let goal = match kind.goal {
        ModuleGoal::Module => base.with_module(true),
        ModuleGoal::CommonJs => base.with_commonjs(true),
        ModuleGoal::Unambiguous => base.with_unambiguous(true),
    };
    goal.with_jsx(kind.jsx)
        .with_typescript_definition(kind.stub && kind.language != Language::JavaScript)
}

/// Diagnostics that `tsc` reports only as type errors (codes 2300, 2451), not as syntax
/// errors. In TypeScript they are recorded as warnings: they do not fail the gate.
fn is_type_level_in_typescript(d: &OxcDiagnostic) -> bool {
    d.message.contains("has already been declared")
}

pub(crate) fn check(source: &str, kind: SourceKind) -> StrictResult {
    let allocator = Allocator::default();
    let options = ParseOptions {
        parse_regular_expression: true,
        // Node runs `.js` and `.cjs` files as CommonJS, inside a function wrapper.
        allow_return_outside_function: kind.language == Language::JavaScript
            && kind.goal != ModuleGoal::Module,
        ..ParseOptions::default()
    };
    let parsed = Parser::new(&allocator, source, source_type(kind))
        .with_options(options)
        .parse();
    let mut errors: Vec<GateError> = parsed
        .diagnostics
        .iter()
        .map(|d| to_error(source, d, "syntax"))
        .collect();
    let mut warnings = Vec::new();
    if errors.is_empty() && !parsed.panicked {
        let semantic = SemanticBuilder::new()
            .with_check_syntax_error(true)
            .build(&parsed.program);
        let typescript = kind.language != Language::JavaScript;
        for d in semantic.diagnostics.iter() {
            let e = to_error(source, d, "semantic");
            if typescript && is_type_level_in_typescript(d) {
                warnings.push(GateError {
                    severity: super::Severity::Warning,
                    ..e
                });
            } else {
                errors.push(e);
            }
        }
    }
    if parsed.panicked && errors.is_empty() {
        errors.push(GateError::at(
            source,
            Layer::Strict,
            0..0,
            "syntax",
            "parser gave up".into(),
        ));
    }
    StrictResult { errors, warnings }
}

fn to_error(source: &str, d: &OxcDiagnostic, kind: &str) -> GateError {
    let range = d
        .labels
        .first()
        .map(|l| l.offset() as usize..(l.offset() + l.len()) as usize)
        .unwrap_or(0..0);
    let mut message = d.message.to_string();
    if let Some(help) = &d.help {
        message.push_str(" (");
        message.push_str(help);
        message.push(')');
    }
    GateError::at(source, Layer::Strict, range, kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn errors(src: &str, file: &str) -> Vec<String> {
        let kind = SourceKind::from_path(Path::new(file)).unwrap();
        check(src, kind)
            .errors
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn early_errors_are_caught() {
        assert!(!errors("let let = 1;\n", "a.js").is_empty());
        assert!(!errors("let a = 1;\nlet a = 2;\n", "a.js").is_empty());
        assert!(!errors("function f() {\n", "a.js").is_empty());
        assert!(
            !errors("const r = /(/;\n", "a.js").is_empty(),
            "invalid regex"
        );
        assert!(errors("const x = 1;\nexport default x;\n", "a.js").is_empty());
    }

    #[test]
    fn goals_follow_the_extension() {
        // CommonJS allows a top-level return; a module does not.
        assert!(errors("return;\n", "a.cjs").is_empty());
        assert!(!errors("return;\n", "a.mjs").is_empty());
        // JSX only where the extension allows it.
        assert!(errors("const a = <div/>;\n", "a.jsx").is_empty());
        assert!(!errors("const a = <div/>;\n", "a.js").is_empty());
        assert!(errors("const a = <div/>;\n", "a.tsx").is_empty());
    }

    #[test]
    fn typescript_redeclarations_are_warnings() {
        let kind = SourceKind::from_path(Path::new("a.ts")).unwrap();
        let r = check("let a = 1;\nlet a = 2;\n", kind);
        assert!(r.errors.is_empty());
        assert_eq!(r.warnings.len(), 1);
        assert!(!errors("function f(x: number {\n}\n", "a.ts").is_empty());
    }
}
