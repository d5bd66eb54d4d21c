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
mod nesting;
mod python;
mod report;
pub mod semantic;
mod treesitter;

use std::time::Instant;

pub use crate::lang::{Language, ModuleGoal, SourceKind, EXTENSIONS};
pub use python::PythonTarget;
pub use report::{GateError, GateReport, Layer, Severity};

/// Deeper bracket nesting than this is rejected without parsing (CPython stops at 200, V8 and
/// the strict parsers go deeper; nobody writes this by hand).
pub const MAX_NESTING: usize = 3000;
/// Every parse runs on a thread with this much stack: the strict parsers and their AST walks
/// recurse once per nesting level, and a walk of a directory runs on rayon's smaller stacks.
const PARSER_STACK_BYTES: usize = 512 << 20;
/// How long tree-sitter may spend locating errors in one text.
pub const TREE_SITTER_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);
/// At most this many errors of each layer are kept (a file of 20,000 broken lines would
/// otherwise cost time quadratic in its length to report).
pub const MAX_ERRORS: usize = 100;

/// The gate's settings. Cheap to clone; parsers are cached per thread, not per gate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gate {
    /// The Python version whose grammar is enforced (syntax newer than this is an error).
    pub python: PythonTarget,
    /// Run tree-sitter on every text, not only on those the strict layer rejects, to report its
    /// complaints as warnings.
    pub all_layers: bool,
}

impl Gate {
    pub fn new(python: PythonTarget) -> Gate {
        Gate {
            python,
            all_layers: false,
        }
    }

    /// Judge a whole source text. The strict parser decides; tree-sitter runs only to locate
    /// what the strict parser rejected (or on every text with `all_layers`), since when the
    /// strict parser accepts a text, tree-sitter's complaints are warnings at most.
    pub fn check(&self, source: &str, kind: SourceKind) -> GateReport {
        let nesting = nesting::depth(source, kind.language);
        if nesting > MAX_NESTING {
            let message = format!(
                "nesting deeper than {MAX_NESTING} levels ({nesting}); CPython and V8 reject such input too"
            );
            let e = GateError::at(source, Layer::Strict, 0..0, "syntax", message);
            return report::finish(kind.language, vec![e], Vec::new(), nesting, 0, 0, 0);
        }
        let strict_started = Instant::now();
        let strict = self.strict(source, kind);
        let strict_us = strict_started.elapsed().as_micros() as u64;
        let accepted = !strict.errors.iter().any(GateError::blocks);
        if accepted && !self.all_layers {
            return report::finish(
                kind.language,
                strict.errors,
                strict.warnings,
                nesting,
                0,
                0,
                strict_us,
            );
        }
        let started = Instant::now();
        let ts = treesitter::check(source, kind.language, TREE_SITTER_BUDGET, MAX_ERRORS);
        let ts_us = started.elapsed().as_micros() as u64;
        let mut errors = ts.errors;
        errors.extend(strict.errors);
        let mut warnings = strict.warnings;
        // tree-sitter's grammars lag the languages (new syntax, rare forms). When the strict
        // parser, which tracks the real compiler, accepts the text, a tree-sitter complaint is
        // kept as a warning rather than a rejection.
        if accepted {
            for mut e in errors.drain(..) {
                e.severity = Severity::Warning;
                warnings.push(e);
            }
        }
        report::finish(
            kind.language,
            errors,
            warnings,
            ts.ast_depth.max(nesting),
            ts.error_nodes,
            ts_us,
            strict_us,
        )
    }

    /// The strict layer, on a thread with a stack no input under [`MAX_NESTING`] exhausts.
    fn strict(&self, source: &str, kind: SourceKind) -> python::StrictResult {
        let run = || {
            let mut r = match kind.language {
                Language::Python => python::check(source, kind, self.python),
                Language::JavaScript | Language::TypeScript | Language::Tsx => {
                    ecmascript::check(source, kind)
                }
            };
            r.errors.sort_by_key(|e| e.byte_range.start);
            r.errors.truncate(MAX_ERRORS);
            r
        };
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(PARSER_STACK_BYTES)
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
