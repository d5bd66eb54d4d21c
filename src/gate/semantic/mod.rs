//! Semantic checks on one rewritten definition, before and after, that need no tests: code
//! that parses can still have lost what the function did. Each finding is a warning with a
//! line and column; the pipeline counts them in the risk and never auto-applies a placeholder.
//!
//! - **placeholder**: a body that had real statements is now only `pass`, `...`, a bare
//!   `return`, `return None`, `raise NotImplementedError` (Python) or empty, `;` or a bare
//!   `return` (JavaScript/TypeScript);
//! - **lost return**: a function that returned a value on some path never does now;
//! - **unused parameter**: a parameter the old body used is not used by the new one;
//! - **signature changed**: a definition with callers has other parameters now (names, order,
//!   defaults, `*args`/`**kwargs`); type annotations do not count;
//! - **undefined name**: the new body reads a name nothing in scope defines (not a builtin, an
//!   import, a module-level definition or a local), where the old body did not.

mod ecmascript;
mod python;

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::lang::{self, Language, SourceKind};

/// Which check found something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Placeholder,
    LostReturn,
    UnusedParameter,
    SignatureChanged,
    UndefinedName,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Placeholder => "placeholder",
            Check::LostReturn => "lost return",
            Check::UnusedParameter => "unused parameter",
            Check::SignatureChanged => "signature changed",
            Check::UndefinedName => "undefined name",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub check: Check,
    /// 1-based, in the patched file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One parameter as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub name: String,
    pub default: bool,
    /// `*args`, `**kwargs`, `...rest`, or a bare `*` / `/` marker.
    pub kind: ParamKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    Plain,
    Rest,
    KeywordRest,
    Marker,
}

/// What the checks need to know about a definition.
pub(crate) struct Definition {
    /// Where it starts in its text (for positions of findings).
    pub start: usize,
    pub params: Vec<Param>,
    pub returns_value: bool,
    pub generator: bool,
    pub placeholder: bool,
    /// Every identifier the body mentions.
    pub mentioned: HashSet<String>,
    /// Names the body reads that nothing defines, with the byte offset of the first read.
    pub undefined: BTreeMap<String, usize>,
}

/// A definition before and after a rewrite: the whole file each time, and the definition's
/// lines (1-based, inclusive) in each.
pub struct Rewrite<'a> {
    pub kind: SourceKind,
    pub before: &'a str,
    pub before_lines: (usize, usize),
    pub after: &'a str,
    pub after_lines: (usize, usize),
    /// Whether anything in the graph calls it (its signature is then a promise).
    pub has_callers: bool,
}

fn definition(kind: SourceKind, source: &str, lines: (usize, usize)) -> Option<Definition> {
    let tree = lang::parse(source, kind.language)?;
    let node = lang::definition_at(tree.root_node(), lines)?;
    match kind.language {
        Language::Python => python::definition(source, tree.root_node(), node),
        _ => ecmascript::definition(source, kind, node),
    }
}

/// Every finding on `r`, in the order of the checks above. A definition that cannot be found
/// on either side (the rewrite is not a definition, or the file does not parse) has none.
pub fn check(r: &Rewrite) -> Vec<Finding> {
    let (Some(old), Some(new)) = (
        definition(r.kind, r.before, r.before_lines),
        definition(r.kind, r.after, r.after_lines),
    ) else {
        return Vec::new();
    };
    let at = |offset: usize, check: Check, message: String| {
        let (line, column) = line_column(r.after, offset);
        Finding {
            check,
            line,
            column,
            message,
        }
    };
    let mut out = Vec::new();
    if new.placeholder && !old.placeholder {
        out.push(at(
            new.start,
            Check::Placeholder,
            "the body is only a placeholder now; it had real statements".into(),
        ));
    }
    if old.returns_value && !new.returns_value && !new.generator && !new.placeholder {
        out.push(at(
            new.start,
            Check::LostReturn,
            "it returned a value on some path and never does now".into(),
        ));
    }
    for p in &old.params {
        let still = new.params.iter().any(|q| q.name == p.name);
        if p.kind != ParamKind::Marker
            && !new.placeholder
            && still
            && old.mentioned.contains(&p.name)
            && !new.mentioned.contains(&p.name)
        {
            out.push(at(
                new.start,
                Check::UnusedParameter,
                format!("parameter `{}` was used and is not any more", p.name),
            ));
        }
    }
    if r.has_callers && old.params != new.params {
        out.push(at(
            new.start,
            Check::SignatureChanged,
            format!(
                "its callers pass ({}); it takes ({}) now",
                render(&old.params),
                render(&new.params)
            ),
        ));
    }
    for (name, &offset) in &new.undefined {
        if !old.undefined.contains_key(name) {
            out.push(at(
                offset,
                Check::UndefinedName,
                format!("`{name}` is not defined here (not a local, an import, a module-level name or a builtin)"),
            ));
        }
    }
    out
}

fn render(params: &[Param]) -> String {
    params
        .iter()
        .map(|p| {
            let prefix = match p.kind {
                ParamKind::Rest => "*",
                ParamKind::KeywordRest => "**",
                _ => "",
            };
            format!("{prefix}{}{}", p.name, if p.default { "=…" } else { "" })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

#[cfg(test)]
mod tests;
