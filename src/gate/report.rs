use std::collections::BTreeSet;
use std::ops::Range;

use serde::Serialize;

use super::Language;

/// Which layer of the gate found an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Layer {
    #[serde(rename = "tree-sitter")]
    TreeSitter,
    #[serde(rename = "strict")]
    Strict,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::TreeSitter => "tree-sitter",
            Layer::Strict => "strict",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a source text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateError {
    pub layer: Layer,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    pub byte_range: Range<usize>,
    /// tree-sitter: `ERROR` or `MISSING`; strict layer: `syntax`, `semantic` or `unsupported`.
    pub kind: String,
    pub message: String,
    /// The source line with a caret under the spot.
    pub context: String,
    pub severity: Severity,
    /// Present in the original file already; reported, but it does not fail the gate.
    pub preexisting: bool,
}

impl GateError {
    /// Build an error at `byte_range`, computing line, column and context from `source`.
    pub(crate) fn at(
        source: &str,
        layer: Layer,
        byte_range: Range<usize>,
        kind: &str,
        message: String,
    ) -> GateError {
        let start = clamp_to_char(source, byte_range.start);
        let end = clamp_to_char(source, byte_range.end.max(start));
        let (line, column, context) = locate(source, start);
        GateError {
            layer,
            line,
            column,
            byte_range: start..end,
            kind: kind.to_string(),
            message,
            context,
            severity: Severity::Error,
            preexisting: false,
        }
    }

    /// Whether this error fails the gate.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Error && !self.preexisting
    }
}

/// The gate's verdict on one source text.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub language: Language,
    pub is_valid: bool,
    /// Errors, pre-existing ones included (marked).
    pub errors: Vec<GateError>,
    /// Problems that do not fail the gate: tree-sitter complaints the strict parser overrules,
    /// and checks the real compiler reports only as type errors.
    pub warnings: Vec<GateError>,
    /// Compact and deduplicated, ready to feed back to a generator.
    pub error_summary: String,
    pub ast_depth: usize,
    pub error_node_count: usize,
    pub parse_us: u64,
    pub tree_sitter_us: u64,
    pub strict_us: u64,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn finish(
    language: Language,
    mut errors: Vec<GateError>,
    mut warnings: Vec<GateError>,
    ast_depth: usize,
    error_node_count: usize,
    tree_sitter_us: u64,
    strict_us: u64,
) -> GateReport {
    let order = |a: &GateError, b: &GateError| {
        (a.byte_range.start, a.layer.name()).cmp(&(b.byte_range.start, b.layer.name()))
    };
    errors.sort_by(order);
    warnings.sort_by(order);
    let mut report = GateReport {
        language,
        is_valid: true,
        errors,
        warnings,
        error_summary: String::new(),
        ast_depth,
        error_node_count,
        parse_us: tree_sitter_us + strict_us,
        tree_sitter_us,
        strict_us,
    };
    report.refresh();
    report
}

/// How many distinct problems the summary lists before it says how many more there are.
const SUMMARY_LIMIT: usize = 8;

impl GateReport {
    /// Recompute the verdict and summary after errors were re-marked.
    pub(crate) fn refresh(&mut self) {
        self.is_valid = !self.errors.iter().any(GateError::blocks);
        self.error_summary = summarize(&self.errors);
    }

    /// The errors that fail the gate.
    pub fn blocking(&self) -> impl Iterator<Item = &GateError> {
        self.errors.iter().filter(|e| e.blocks())
    }
}

/// One line per distinct (line, message), strict-layer messages first on each line because they
/// read like the compiler's; pre-existing errors are left out since a generator cannot fix them.
fn summarize(errors: &[GateError]) -> String {
    let mut seen = BTreeSet::new();
    let mut lines = Vec::new();
    let mut blocking: Vec<&GateError> = errors.iter().filter(|e| e.blocks()).collect();
    blocking.sort_by_key(|e| (e.line, e.layer != Layer::Strict, e.column));
    let mut lines_with_strict = BTreeSet::new();
    for e in &blocking {
        if e.layer == Layer::Strict {
            lines_with_strict.insert(e.line);
        }
    }
    for e in blocking {
        // On a line the strict parser already explained, tree-sitter's view adds only noise.
        if e.layer == Layer::TreeSitter && lines_with_strict.contains(&e.line) {
            continue;
        }
        if seen.insert((e.line, e.message.clone())) {
            lines.push(format!("line {}:{}: {}", e.line, e.column, e.message));
        }
    }
    let total = lines.len();
    if total > SUMMARY_LIMIT {
        lines.truncate(SUMMARY_LIMIT);
        lines.push(format!("... and {} more", total - SUMMARY_LIMIT));
    }
    lines.join("\n")
}

fn clamp_to_char(source: &str, mut at: usize) -> usize {
    at = at.min(source.len());
    while !source.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// How much of a line an error's context shows.
const CONTEXT_CHARS: usize = 120;

/// 1-based line and character column of a byte offset, and the line with a caret under it.
fn locate(source: &str, at: usize) -> (usize, usize, String) {
    let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[at..].find('\n').map_or(source.len(), |i| at + i);
    let line_no = source[..line_start].matches('\n').count() + 1;
    let text = source[line_start..line_end].trim_end_matches('\r');
    let prefix = &source[line_start..at];
    let column = prefix.chars().count() + 1;
    // A very long line (minified code, a generated table) is shown around the spot only.
    let chars: Vec<char> = text.chars().collect();
    let from = (column - 1).saturating_sub(CONTEXT_CHARS / 2);
    let to = (from + CONTEXT_CHARS).min(chars.len());
    let shown: String = chars[from.min(to)..to].iter().collect();
    let (open, close) = (
        if from > 0 { "…" } else { "" },
        if to < chars.len() { "…" } else { "" },
    );
    // Keep tabs in the caret line so the caret lines up under the source line whatever the
    // terminal's tab width.
    let pad: String = std::iter::repeat_n(' ', open.chars().count())
        .chain(
            chars[from.min(chars.len())..(column - 1).min(chars.len())]
                .iter()
                .map(|&c| if c == '\t' { '\t' } else { ' ' }),
        )
        .collect();
    let context = format!("{open}{shown}{close}\n{pad}^");
    (line_no, column, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_columns_and_carets() {
        let src = "a = 1\n\tb = (\nc";
        let e = GateError::at(src, Layer::Strict, 9..10, "syntax", "x".into());
        assert_eq!((e.line, e.column), (2, 4));
        assert_eq!(e.context, "\tb = (\n\t  ^");
        let end = GateError::at(src, Layer::Strict, 99..120, "syntax", "eof".into());
        assert_eq!((end.line, end.column), (3, 2));
    }

    #[test]
    fn long_lines_are_shown_around_the_spot() {
        let src = format!("{}x{}", "a".repeat(5000), "b".repeat(5000));
        let e = GateError::at(&src, Layer::Strict, 5000..5001, "syntax", "x".into());
        let (line, caret) = e.context.split_once('\n').unwrap();
        assert!(line.chars().count() <= 122, "{}", line.len());
        assert!(line.starts_with('…') && line.ends_with('…'));
        assert_eq!(line.chars().nth(caret.chars().count() - 1), Some('x'));
    }

    #[test]
    fn offsets_inside_a_character_are_clamped() {
        let src = "é = (";
        let e = GateError::at(src, Layer::Strict, 1..2, "syntax", "x".into());
        assert_eq!(e.byte_range.start, 0);
        assert_eq!(e.column, 1);
    }

    #[test]
    fn summary_dedups_and_prefers_strict_messages() {
        let src = "x = (\ny = 2\n";
        let errors = vec![
            GateError::at(
                src,
                Layer::TreeSitter,
                4..5,
                "ERROR",
                "unexpected `(`".into(),
            ),
            GateError::at(src, Layer::Strict, 4..5, "syntax", "expected `)`".into()),
            GateError::at(src, Layer::Strict, 4..5, "syntax", "expected `)`".into()),
        ];
        let r = finish(Language::Python, errors, vec![], 1, 1, 0, 0);
        assert!(!r.is_valid);
        assert_eq!(r.error_summary, "line 1:5: expected `)`");
    }
}
