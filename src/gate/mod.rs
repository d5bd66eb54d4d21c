//! The safety gate: nothing reaches disk unless it parses.
//!
//! Two layers judge every source text:
//! 1. **tree-sitter** finds every ERROR and MISSING node. It is error-tolerant, which makes it
//!    good at locating damage, but it accepts much that real compilers reject.
//! 2. **a strict parser per language**: ruff's Python parser plus its semantic syntax checks,
//!    and oxc's parser plus its early-error checks for JavaScript and TypeScript.
//!
//! A patched file is judged whole, but only on the errors the change introduced
//! ([`Gate::check_change`]): errors already in the original stay in the report, marked
//! pre-existing, and do not fail it.

mod ecmascript;
mod introduced;
mod python;
mod report;
pub mod semantic;
mod treesitter;

use std::time::Instant;

pub use crate::lang::{Language, ModuleGoal, SourceKind, EXTENSIONS};
pub use python::PythonTarget;
pub use report::{GateError, GateReport, Layer, Severity};

/// Inputs up to this tree depth are parsed on the caller's stack.
const SHALLOW_DEPTH: usize = 256;
/// Deeper than this is rejected without running the strict parser.
const MAX_DEPTH: usize = 3000;
const DEEP_STACK_BYTES: usize = 512 << 20;

/// The gate's settings. Cheap to clone; parsers are cached per thread, not per gate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gate {
    /// The Python version whose grammar is enforced (syntax newer than this is an error).
    pub python: PythonTarget,
}

impl Gate {
    pub fn new(python: PythonTarget) -> Gate {
        Gate { python }
    }

    /// Judge a whole source text.
    pub fn check(&self, source: &str, kind: SourceKind) -> GateReport {
        let started = Instant::now();
        let ts = treesitter::check(source, kind.language);
        let ts_us = started.elapsed().as_micros() as u64;

        let strict_started = Instant::now();
        let strict = self.strict(source, kind, ts.ast_depth);
        let strict_us = strict_started.elapsed().as_micros() as u64;

        let mut errors = ts.errors;
        errors.extend(strict.errors);
        let mut warnings = strict.warnings;
        // tree-sitter's grammars lag the languages (new syntax, rare forms). When the strict
        // parser, which tracks the real compiler, accepts the text, a tree-sitter complaint is
        // kept as a warning rather than a rejection.
        if !errors.iter().any(|e| e.layer == Layer::Strict) {
            for mut e in errors.drain(..) {
                e.severity = Severity::Warning;
                warnings.push(e);
            }
        }
        report::finish(
            kind.language,
            errors,
            warnings,
            ts.ast_depth,
            ts.error_nodes,
            ts_us,
            strict_us,
        )
    }

    fn strict(&self, source: &str, kind: SourceKind, depth: usize) -> python::StrictResult {
        let run = || match kind.language {
            Language::Python => python::check(source, kind, self.python),
            Language::JavaScript | Language::TypeScript | Language::Tsx => {
                ecmascript::check(source, kind)
            }
        };
        if depth <= SHALLOW_DEPTH {
            return run();
        }
        if depth > MAX_DEPTH {
            let message = format!(
                "nesting too deep: {depth} levels (the gate's limit is {MAX_DEPTH}; CPython and V8 \
                 also reject such input)"
            );
            let e = GateError::at(source, Layer::Strict, 0..0, "syntax", message);
            return python::StrictResult {
                errors: vec![e],
                warnings: Vec::new(),
            };
        }
        // The strict parsers and their AST visitors recurse once per nesting level; give deep
        // inputs a stack that cannot run out before MAX_DEPTH.
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(DEEP_STACK_BYTES)
                .spawn_scoped(s, run)
                .expect("spawning a parser thread")
                .join()
                .expect("strict parser thread panicked")
        })
    }

    /// Judge `patched` as a whole file, failing only on errors that `original` did not have.
    pub fn check_change(&self, original: &str, patched: &str, kind: SourceKind) -> GateReport {
        let before = self.check(original, kind);
        let mut after = self.check(patched, kind);
        if !before.errors.is_empty() {
            introduced::mark_preexisting(original, patched, &before.errors, &mut after.errors);
            after.refresh();
        }
        after
    }
}

#[cfg(test)]
mod tests;
