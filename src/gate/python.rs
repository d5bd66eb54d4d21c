//! Layer 2 for Python: ruff's parser, then ruff's semantic syntax checks (the errors CPython
//! raises at compile time rather than parse time: `return` outside a function, `break` outside a
//! loop, duplicate parameters, `await` outside `async def`, and so on).
//!
//! ruff ships the checks but not the scope tracking they need; [`ScopeWalker`] supplies it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use ruff_python_ast::token::{TokenKind, Tokens};
use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, PySourceType, PythonVersion, Stmt};
use ruff_python_parser::semantic_errors::{
    LazyImportContext, SemanticSyntaxChecker, SemanticSyntaxContext, SemanticSyntaxError,
};
use ruff_python_parser::{parse_unchecked, ParseOptions};
use ruff_text_size::{Ranged, TextRange};

use super::report::{GateError, Layer};
use super::SourceKind;

/// The Python version whose grammar the gate enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythonTarget(pub PythonVersion);

impl Default for PythonTarget {
    /// 3.12: recent enough that modern code (PEP 695, PEP 701 f-strings) is not rejected, and
    /// old enough that 3.13+ syntax is flagged unless the user asks for it.
    fn default() -> Self {
        PythonTarget(PythonVersion::PY312)
    }
}

impl FromStr for PythonTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid Python version `{s}` (expected 3.7 to 3.15, e.g. 3.12)");
        let (major, minor) = s.trim().split_once('.').ok_or_else(bad)?;
        let major: u8 = major.parse().map_err(|_| bad())?;
        let minor: u8 = minor.parse().map_err(|_| bad())?;
        if major != 3 || !(7..=15).contains(&minor) {
            return Err(bad());
        }
        Ok(PythonTarget(PythonVersion { major, minor }))
    }
}

impl fmt::Display for PythonTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0.major, self.0.minor)
    }
}

impl serde::Serialize for PythonTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PythonTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) struct StrictResult {
    pub errors: Vec<GateError>,
    pub warnings: Vec<GateError>,
}

pub(crate) fn check(source: &str, kind: SourceKind, target: PythonTarget) -> StrictResult {
    let source_type = if kind.stub {
        PySourceType::Stub
    } else {
        PySourceType::Python
    };
    let options = ParseOptions::from(source_type).with_target_version(target.0);
    let parsed = parse_unchecked(source, options);
    // The first errors only: placing each costs a scan of the text before it.
    let mut errors: Vec<GateError> = parsed
        .errors()
        .iter()
        .take(super::MAX_ERRORS)
        .map(|e| at(source, e.location, "syntax", e.error.to_string()))
        .collect();
    errors.extend(
        parsed
            .unsupported_syntax_errors()
            .iter()
            .take(super::MAX_ERRORS)
            .map(|e| {
                at(
                    source,
                    e.range,
                    "unsupported",
                    format!("{e} (target Python {target})"),
                )
            }),
    );
    errors.extend(cpython_limits(source, parsed.tokens()));
    // Semantic checks on a tree the parser had to repair would mostly report echoes of the
    // syntax errors above.
    if errors.is_empty() {
        if let ast::Mod::Module(module) = parsed.syntax() {
            for e in semantic_errors(source, &module.body, kind.stub, target.0) {
                errors.push(at(source, e.range, "semantic", e.to_string()));
            }
        }
    }
    StrictResult {
        errors,
        warnings: Vec::new(),
    }
}

/// CPython's tokenizer refuses more than 200 open brackets (`MAXLEVEL`) and more than 100
/// indentation levels (`MAXINDENT`); ruff has no such limits.
fn cpython_limits(source: &str, tokens: &Tokens) -> Option<GateError> {
    const MAX_BRACKETS: usize = 200;
    const MAX_INDENT: usize = 100;
    let (mut brackets, mut indent) = (0usize, 0usize);
    for token in tokens.iter() {
        match token.kind() {
            TokenKind::Lpar | TokenKind::Lsqb | TokenKind::Lbrace => brackets += 1,
            TokenKind::Rpar | TokenKind::Rsqb | TokenKind::Rbrace => {
                brackets = brackets.saturating_sub(1)
            }
            TokenKind::Indent => indent += 1,
            TokenKind::Dedent => indent = indent.saturating_sub(1),
            _ => continue,
        }
        let message = if brackets > MAX_BRACKETS {
            "too many nested parentheses"
        } else if indent >= MAX_INDENT {
            "too many levels of indentation"
        } else {
            continue;
        };
        return Some(at(source, token.range(), "syntax", message.to_string()));
    }
    None
}

fn at(source: &str, range: TextRange, kind: &str, message: String) -> GateError {
    let r = usize::from(range.start())..usize::from(range.end());
    GateError::at(source, Layer::Strict, r, kind, message)
}

fn semantic_errors(
    source: &str,
    body: &[Stmt],
    stub: bool,
    version: PythonVersion,
) -> Vec<SemanticSyntaxError> {
    let future_annotations = stub || has_future_annotations(body);
    let mut walker = ScopeWalker {
        checker: SemanticSyntaxChecker::new(),
        ctx: Context {
            source,
            version,
            future_annotations,
            scopes: vec![Scope::new(ScopeKind::Module, globals_declared_in(body))],
            errors: RefCell::new(Vec::new()),
        },
    };
    walker.visit_body(body);
    walker.ctx.errors.into_inner()
}

fn has_future_annotations(body: &[Stmt]) -> bool {
    body.iter().any(|s| match s {
        Stmt::ImportFrom(i) => {
            i.module.as_deref() == Some("__future__")
                && i.names.iter().any(|a| a.name.as_str() == "annotations")
        }
        _ => false,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeKind {
    Module,
    Class,
    Function { is_async: bool },
    Lambda,
    Comprehension { is_async: bool, is_generator: bool },
}

struct Scope {
    kind: ScopeKind,
    /// `global` declarations made directly in this scope, with where they were made.
    globals: HashMap<String, TextRange>,
    parameters: Vec<String>,
    loop_depth: usize,
}

impl Scope {
    fn new(kind: ScopeKind, globals: HashMap<String, TextRange>) -> Scope {
        Scope {
            kind,
            globals,
            parameters: Vec::new(),
            loop_depth: 0,
        }
    }
}

struct Context<'s> {
    source: &'s str,
    version: PythonVersion,
    future_annotations: bool,
    scopes: Vec<Scope>,
    errors: RefCell<Vec<SemanticSyntaxError>>,
}

impl Context<'_> {
    fn current(&self) -> &Scope {
        self.scopes
            .last()
            .expect("the module scope is never popped")
    }

    fn innermost(&self, skip: impl Fn(ScopeKind) -> bool) -> ScopeKind {
        self.scopes
            .iter()
            .rev()
            .map(|s| s.kind)
            .find(|k| !skip(*k))
            .unwrap_or(ScopeKind::Module)
    }
}

fn is_comprehension(k: ScopeKind) -> bool {
    matches!(k, ScopeKind::Comprehension { .. })
}

impl SemanticSyntaxContext for Context<'_> {
    fn future_annotations_or_stub(&self) -> bool {
        self.future_annotations
    }

    fn lazy_import_context(&self) -> Option<LazyImportContext> {
        match self.innermost(is_comprehension) {
            ScopeKind::Function { .. } | ScopeKind::Lambda => Some(LazyImportContext::Function),
            ScopeKind::Class => Some(LazyImportContext::Class),
            _ => None,
        }
    }

    fn python_version(&self) -> PythonVersion {
        self.version
    }

    fn source(&self) -> &str {
        self.source
    }

    fn global(&self, name: &str) -> Option<TextRange> {
        self.current().globals.get(name).copied()
    }

    /// Answering this needs full binding analysis of every enclosing function. Saying "yes"
    /// means `nonlocal x` with no binding for `x` is not caught, which is the safe direction
    /// for a gate: it can miss that error but never rejects valid code over it.
    fn has_nonlocal_binding(&self, _name: &str) -> bool {
        true
    }

    fn in_async_context(&self) -> bool {
        matches!(
            self.innermost(is_comprehension),
            ScopeKind::Function { is_async: true }
        )
    }

    fn in_await_allowed_context(&self) -> bool {
        matches!(
            self.innermost(is_comprehension),
            ScopeKind::Function { .. } | ScopeKind::Lambda
        )
    }

    fn in_yield_allowed_context(&self) -> bool {
        matches!(
            self.current().kind,
            ScopeKind::Function { .. } | ScopeKind::Lambda
        )
    }

    fn in_sync_comprehension(&self) -> bool {
        for scope in self.scopes.iter().rev() {
            match scope.kind {
                ScopeKind::Comprehension {
                    is_async: false, ..
                } => return true,
                ScopeKind::Comprehension { .. } => {}
                _ => return false,
            }
        }
        false
    }

    fn in_class_body_comprehension(&self) -> bool {
        self.innermost(is_comprehension) == ScopeKind::Class
    }

    fn in_module_scope(&self) -> bool {
        self.current().kind == ScopeKind::Module
    }

    fn in_function_scope(&self) -> bool {
        matches!(
            self.current().kind,
            ScopeKind::Function { .. } | ScopeKind::Lambda
        )
    }

    fn in_generator_context(&self) -> bool {
        for scope in self.scopes.iter().rev() {
            match scope.kind {
                ScopeKind::Comprehension {
                    is_generator: true, ..
                } => return true,
                ScopeKind::Comprehension { .. } => {}
                _ => return false,
            }
        }
        false
    }

    fn in_notebook(&self) -> bool {
        false
    }

    fn report_semantic_error(&self, error: SemanticSyntaxError) {
        self.errors.borrow_mut().push(error);
    }

    fn in_loop_context(&self) -> bool {
        self.current().loop_depth > 0
    }

    fn is_bound_parameter(&self, name: &str) -> bool {
        self.current().parameters.iter().any(|p| p == name)
    }
}

/// Walks the module, keeping the scope stack the semantic checker asks about.
struct ScopeWalker<'s> {
    checker: SemanticSyntaxChecker,
    ctx: Context<'s>,
}

impl ScopeWalker<'_> {
    fn with_scope(&mut self, scope: Scope, f: impl FnOnce(&mut Self)) {
        self.ctx.scopes.push(scope);
        f(self);
        self.ctx.scopes.pop();
    }

    fn in_loop(&mut self, f: impl FnOnce(&mut Self)) {
        self.current_mut().loop_depth += 1;
        f(self);
        self.current_mut().loop_depth -= 1;
    }

    fn current_mut(&mut self) -> &mut Scope {
        self.ctx
            .scopes
            .last_mut()
            .expect("the module scope is never popped")
    }

    fn comprehension(
        &mut self,
        generators: &[ast::Comprehension],
        is_generator: bool,
        elts: &[&Expr],
    ) {
        // The first iterable is evaluated in the enclosing scope; everything else inside.
        let Some(first) = generators.first() else {
            return;
        };
        self.visit_expr(&first.iter);
        let is_async = generators.iter().any(|g| g.is_async);
        let scope = Scope::new(
            ScopeKind::Comprehension {
                is_async,
                is_generator,
            },
            HashMap::new(),
        );
        self.with_scope(scope, |w| {
            for (i, g) in generators.iter().enumerate() {
                w.visit_expr(&g.target);
                if i > 0 {
                    w.visit_expr(&g.iter);
                }
                for cond in &g.ifs {
                    w.visit_expr(cond);
                }
            }
            for e in elts {
                w.visit_expr(e);
            }
        });
    }
}

fn parameter_names(p: &ast::Parameters) -> Vec<String> {
    p.iter().map(|p| p.name().as_str().to_string()).collect()
}

impl<'a> Visitor<'a> for ScopeWalker<'_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        self.checker.visit_stmt(stmt, &self.ctx);
        match stmt {
            Stmt::FunctionDef(f) => {
                for d in &f.decorator_list {
                    self.visit_decorator(d);
                }
                if let Some(tp) = &f.type_params {
                    self.visit_type_params(tp);
                }
                self.visit_parameters(&f.parameters);
                if let Some(r) = &f.returns {
                    self.visit_annotation(r);
                }
                let mut scope = Scope::new(
                    ScopeKind::Function {
                        is_async: f.is_async,
                    },
                    globals_declared_in(&f.body),
                );
                scope.parameters = parameter_names(&f.parameters);
                self.with_scope(scope, |w| w.visit_body(&f.body));
            }
            Stmt::ClassDef(c) => {
                for d in &c.decorator_list {
                    self.visit_decorator(d);
                }
                if let Some(tp) = &c.type_params {
                    self.visit_type_params(tp);
                }
                if let Some(args) = &c.arguments {
                    self.visit_arguments(args);
                }
                let scope = Scope::new(ScopeKind::Class, globals_declared_in(&c.body));
                self.with_scope(scope, |w| w.visit_body(&c.body));
            }
            Stmt::For(f) => {
                self.visit_expr(&f.target);
                self.visit_expr(&f.iter);
                self.in_loop(|w| w.visit_body(&f.body));
                self.visit_body(&f.orelse);
            }
            Stmt::While(wh) => {
                self.visit_expr(&wh.test);
                self.in_loop(|w| w.visit_body(&wh.body));
                self.visit_body(&wh.orelse);
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        self.checker.visit_expr(expr, &self.ctx);
        match expr {
            Expr::Lambda(l) => {
                if let Some(p) = &l.parameters {
                    self.visit_parameters(p);
                }
                let mut scope = Scope::new(ScopeKind::Lambda, HashMap::new());
                scope.parameters = l
                    .parameters
                    .as_deref()
                    .map(parameter_names)
                    .unwrap_or_default();
                self.with_scope(scope, |w| w.visit_expr(&l.body));
            }
            Expr::ListComp(c) => self.comprehension(&c.generators, false, &[&c.elt]),
            Expr::SetComp(c) => self.comprehension(&c.generators, false, &[&c.elt]),
            Expr::Generator(c) => self.comprehension(&c.generators, true, &[&c.elt]),
            Expr::DictComp(c) => {
                let mut elts: Vec<&Expr> = Vec::with_capacity(2);
                if let Some(k) = &c.key {
                    elts.push(k);
                }
                elts.push(&c.value);
                self.comprehension(&c.generators, false, &elts);
            }
            _ => visitor::walk_expr(self, expr),
        }
    }
}

/// The `global` declarations made directly in a body (nested functions and classes are their
/// own scopes and are not entered).
fn globals_declared_in(body: &[Stmt]) -> HashMap<String, TextRange> {
    struct Collect(HashMap<String, TextRange>);
    impl<'a> Visitor<'a> for Collect {
        fn visit_stmt(&mut self, stmt: &'a Stmt) {
            match stmt {
                Stmt::FunctionDef(_) | Stmt::ClassDef(_) => {}
                Stmt::Global(g) => {
                    for name in &g.names {
                        self.0.entry(name.id.to_string()).or_insert(g.range());
                    }
                }
                _ => visitor::walk_stmt(self, stmt),
            }
        }
        fn visit_expr(&mut self, _: &'a Expr) {}
    }
    let mut c = Collect(HashMap::new());
    c.visit_body(body);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Language;

    fn errors(src: &str) -> Vec<String> {
        check(
            src,
            Language::Python.default_kind(),
            PythonTarget::default(),
        )
        .errors
        .into_iter()
        .map(|e| e.message)
        .collect()
    }

    #[test]
    fn catches_what_tree_sitter_lets_through() {
        assert!(!errors("def f():\n").is_empty(), "no body");
        assert!(
            !errors("def f(x, y=1, z):\n    pass\n").is_empty(),
            "default order"
        );
        assert!(!errors("x = 1\n  y = 2\n").is_empty(), "unexpected indent");
    }

    #[test]
    fn compile_time_errors_need_scopes() {
        assert!(!errors("return 1\n").is_empty());
        assert!(errors("def f():\n    return 1\n").is_empty());
        assert!(!errors("break\n").is_empty());
        assert!(errors("for x in y:\n    break\n").is_empty());
        assert!(!errors("for x in y:\n    pass\nelse:\n    continue\n").is_empty());
        assert!(!errors("while x:\n    def g():\n        break\n").is_empty());
        assert!(!errors("def f(a, a):\n    pass\n").is_empty());
        assert!(!errors("def f():\n    await g()\n").is_empty());
        assert!(!errors("class C:\n    yield 1\n").is_empty());
        assert!(errors("async def f():\n    return [await x for x in y]\n").is_empty());
        assert!(errors("def f():\n    x = lambda: (yield)\n").is_empty());
        assert!(!errors("def f():\n    print(x)\n    global x\n").is_empty());
    }

    #[test]
    fn cpython_nesting_limits() {
        let nested = |n: usize| format!("x = {}1{}\n", "(".repeat(n), ")".repeat(n));
        assert!(errors(&nested(200)).is_empty());
        assert_eq!(errors(&nested(201)), ["too many nested parentheses"]);
        let mut deep = String::new();
        for i in 0..101 {
            deep.push_str(&format!("{}if x:\n", " ".repeat(i)));
        }
        deep.push_str(&format!("{}pass\n", " ".repeat(101)));
        assert!(errors(&deep).contains(&"too many levels of indentation".to_string()));
    }

    #[test]
    fn target_version_is_enforced() {
        let src = "type Point = tuple[int, int]\n";
        let old = check(
            src,
            Language::Python.default_kind(),
            "3.11".parse().unwrap(),
        );
        assert!(old.errors.iter().any(|e| e.kind == "unsupported"));
        let new = check(
            src,
            Language::Python.default_kind(),
            "3.12".parse().unwrap(),
        );
        assert!(new.errors.is_empty());
    }

    #[test]
    fn python_versions_parse() {
        assert_eq!("3.11".parse::<PythonTarget>().unwrap().to_string(), "3.11");
        assert!("2.7".parse::<PythonTarget>().is_err());
        assert!("three".parse::<PythonTarget>().is_err());
    }
}
