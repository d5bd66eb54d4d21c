//! Layer 2 for JavaScript and TypeScript: oxc's parser, then oxc's semantic pass with its
//! syntax checks enabled (the "early errors" of the ECMAScript spec: `let let`, duplicate
//! `let` bindings, `break` to an unknown label, strict-mode rules in modules and classes).

use oxc_allocator::Allocator;
use oxc_ast::ast::{FormalParameters, TSInterfaceBody, TSSignature, TSTypeLiteral};
use oxc_ast_visit::{walk, Visit};
use oxc_diagnostics::OxcDiagnostic;
use oxc_parser::{ParseOptions, Parser};
use oxc_semantic::SemanticBuilder;
use oxc_span::{GetSpan, SourceType, Span};

use super::python::StrictResult;
use super::report::{GateError, Layer};
use super::{Language, ModuleGoal, SourceKind};

pub(crate) fn source_type(kind: SourceKind) -> SourceType {
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
    // The first errors only: placing each costs a scan of the text before it.
    let mut errors: Vec<GateError> = parsed
        .diagnostics
        .iter()
        .take(super::MAX_ERRORS)
        .map(|d| to_error(source, d, "syntax"))
        .collect();
    let mut warnings = Vec::new();
    if errors.is_empty() && !parsed.panicked && kind.language != Language::JavaScript {
        let mut separators = MissingSeparators {
            source,
            found: Vec::new(),
        };
        separators.visit_program(&parsed.program);
        errors.extend(separators.found);
    }
    if errors.is_empty() && !parsed.panicked {
        let semantic = SemanticBuilder::new()
            .with_check_syntax_error(true)
            .build(&parsed.program);
        let typescript = kind.language != Language::JavaScript;
        for d in semantic.diagnostics.iter().take(super::MAX_ERRORS) {
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

/// oxc 0.146 accepts some TypeScript that `tsc`'s parser rejects, all from a dropped colon or
/// comma: type members with no separator on one line (`url string;` parses as two members), and
/// a `this` parameter with no comma before the next one (`f(this any)`). These checks put back
/// the rules the TypeScript grammar states.
struct MissingSeparators<'s> {
    source: &'s str,
    found: Vec<GateError>,
}

impl MissingSeparators<'_> {
    fn members(&mut self, members: &[TSSignature]) {
        for pair in members.windows(2) {
            let (a, b) = (pair[0].span(), pair[1].span());
            let own_end = self
                .source
                .get(a.start as usize..a.end as usize)
                .unwrap_or("");
            let gap = self
                .source
                .get(a.end as usize..b.start as usize)
                .unwrap_or("");
            let separated = own_end.ends_with([',', ';'])
                || gap.contains([',', ';', '\n', '\r', '\u{2028}', '\u{2029}']);
            if !separated {
                self.report(b, "`,` or `;` expected between type members");
            }
        }
    }

    fn report(&mut self, at: Span, message: &str) {
        let range = at.start as usize..at.end as usize;
        self.found.push(GateError::at(
            self.source,
            Layer::Strict,
            range,
            "syntax",
            message.into(),
        ));
    }
}

impl<'a> Visit<'a> for MissingSeparators<'_> {
    fn visit_ts_interface_body(&mut self, it: &TSInterfaceBody<'a>) {
        self.members(&it.body);
        walk::walk_ts_interface_body(self, it);
    }

    fn visit_ts_type_literal(&mut self, it: &TSTypeLiteral<'a>) {
        self.members(&it.members);
        walk::walk_ts_type_literal(self, it);
    }

    fn visit_formal_parameters(&mut self, it: &FormalParameters<'a>) {
        let first = it
            .items
            .first()
            .map(|p| p.span)
            .or(it.rest.as_ref().map(|r| r.span));
        if let Some(first) = first {
            let head = self
                .source
                .get(it.span.start as usize..first.start as usize)
                .unwrap_or("");
            let head = head.trim_start_matches('(').trim_start();
            let this_param = head.strip_prefix("this").is_some_and(|rest| {
                !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$')
            });
            if this_param && !head.contains(',') {
                self.report(first, "`,` expected after the `this` parameter");
            }
        }
        walk::walk_formal_parameters(self, it);
    }
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
    fn dropped_colons_in_typescript_are_caught() {
        for bad in [
            "interface A {\n  a boolean,\n}\n",
            "interface A {\n  a? boolean\n}\n",
            "type A = { url string; };\n",
            "let x: {a: number b: string};\n",
            "function f(this any) {}\n",
        ] {
            assert!(!errors(bad, "a.ts").is_empty(), "{bad}");
            assert!(!errors(bad, "a.tsx").is_empty(), "{bad}");
        }
        for good in [
            "interface A {\n  a: boolean\n  b: string;\n  c(): void, d: Map<K, V>\n}\n",
            "type A = { a: number; b: string };\n",
            "function f(this: any, a: number) {}\n",
            "function f(thisArg: any) {}\n",
            "function f(this: Window) {}\n",
        ] {
            assert!(
                errors(good, "a.ts").is_empty(),
                "{good}: {:?}",
                errors(good, "a.ts")
            );
        }
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
