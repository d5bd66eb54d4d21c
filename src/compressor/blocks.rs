//! Block-level reduction of a context item, the second stage of LongCodeZip's scheme (Shi et al.
//! 2025, "LongCodeZip: Compress Long Context for Code Language Models", arXiv:2510.00446): once
//! a function is worth keeping, not all of its body is. The body is cut into blocks (runs of
//! statements separated by blank lines or by the end of a compound statement) and the blocks
//! that share the most identifiers with the unit being rewritten are kept, in order, with `...`
//! where the others were. Whether the reduced form is worth its tokens is then the scorer's
//! call, against the whole item and its signature, in the same knapsack.

use std::collections::HashSet;

/// Items shorter than this many body lines are kept whole or as signatures only.
const MIN_BODY_LINES: usize = 6;
/// The reduced form must save at least a quarter of the item's text.
const MAX_KEPT_FRACTION: f64 = 0.75;

const COMMON: &[&str] = &[
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "const",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "export",
    "false",
    "finally",
    "for",
    "from",
    "function",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "let",
    "new",
    "none",
    "nonlocal",
    "not",
    "null",
    "or",
    "pass",
    "raise",
    "return",
    "self",
    "this",
    "throw",
    "true",
    "try",
    "undefined",
    "var",
    "while",
    "with",
    "yield",
];

fn identifiers(text: &str) -> HashSet<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 3 && !w.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|w| !COMMON.contains(&w.to_ascii_lowercase().as_str()))
        .collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// How many lines the head takes: the signature (up to the line that opens the body) and, in
/// Python, the docstring.
fn head_len(lines: &[&str], python: bool) -> Option<usize> {
    let open = if python {
        lines.iter().position(|l| l.trim_end().ends_with(':'))?
    } else {
        lines.iter().position(|l| l.contains('{'))?
    };
    let mut end = open + 1;
    if python {
        let next = lines[end..].iter().position(|l| !l.trim().is_empty())? + end;
        let t = lines[next].trim();
        let quote = ["\"\"\"", "'''"].into_iter().find(|q| {
            t.trim_start_matches(['r', 'R', 'b', 'B', 'u', 'U'])
                .starts_with(q)
        });
        if let Some(q) = quote {
            let after = &t[t.find(q)? + 3..];
            end = if after.contains(q) {
                next + 1
            } else {
                lines[next + 1..].iter().position(|l| l.contains(q))? + next + 2
            };
        }
    }
    Some(end)
}

/// The item's head, its most relevant blocks and its closing lines, or `None` when it is too
/// short to cut or cutting would not save a quarter of it. `code` is dedented.
pub fn reduce(code: &str, unit_code: &str, python: bool) -> Option<String> {
    let lines: Vec<&str> = code.split_inclusive('\n').collect();
    let head = head_len(&lines, python)?;
    // JavaScript bodies end with their closing brace, which stays.
    let tail = if python {
        0
    } else {
        lines
            .iter()
            .rev()
            .take_while(|l| {
                let t = l.trim();
                t.is_empty() || t.chars().all(|c| matches!(c, '}' | ')' | ';'))
            })
            .count()
    };
    if lines.len() < head + tail + MIN_BODY_LINES {
        return None;
    }
    let body = &lines[head..lines.len() - tail];
    let base = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent(l))
        .min()?;
    // Blocks as (first line, end) over `body`.
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    let mut deeper = false;
    let mut gap = false;
    for (i, l) in body.iter().enumerate() {
        if l.trim().is_empty() {
            gap = true;
            continue;
        }
        let at_base = indent(l) <= base;
        // A closing bracket or an else/except clause belongs to the statement it closes.
        let t = l.trim_start();
        let continues = t.starts_with(['}', ')', ']'])
            || ["else", "elif ", "except", "finally", "catch"]
                .iter()
                .any(|k| t.starts_with(k));
        if i > start && at_base && (gap || deeper) && !continues {
            blocks.push((start, i));
            start = i;
        }
        deeper = !at_base;
        gap = false;
    }
    blocks.push((start, body.len()));
    if blocks.len() < 2 {
        return None;
    }
    let wanted = identifiers(unit_code);
    let text = |b: (usize, usize)| body[b.0..b.1].concat();
    let mut ranked: Vec<(usize, usize)> = blocks
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let t = text(b);
            let shared = identifiers(&t).intersection(&wanted).count();
            // What the function gives back says most about how it is used.
            let returns = t.contains("return") as usize;
            (i, shared * 2 + returns)
        })
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let whole = code.len() as f64;
    let fixed: usize = lines[..head]
        .iter()
        .chain(&lines[lines.len() - tail..])
        .map(|l| l.len())
        .sum();
    let placeholder = format!("{}...\n", " ".repeat(base));
    let mut keep = vec![false; blocks.len()];
    let mut size = fixed + placeholder.len() * blocks.len();
    for &(i, score) in &ranked {
        let len = text(blocks[i]).len();
        let first = !keep.contains(&true);
        if !first && (score == 0 || (size + len) as f64 > whole * 0.5) {
            continue;
        }
        keep[i] = true;
        size += len;
    }
    if keep.iter().all(|k| *k) {
        return None;
    }
    let mut out: String = lines[..head].concat();
    let mut skipping = false;
    for (b, k) in blocks.iter().zip(&keep) {
        if *k {
            out.push_str(&text(*b));
            skipping = false;
        } else if !skipping {
            out.push_str(&placeholder);
            skipping = true;
        }
    }
    out.extend(lines[lines.len() - tail..].iter().copied());
    if !out.ends_with('\n') {
        out.push('\n');
    }
    (out.len() as f64 <= whole * MAX_KEPT_FRACTION).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY: &str = "def load(path, cache):
    \"\"\"Read a record.

    Cached by path.
    \"\"\"
    if path in cache:
        return cache[path]

    handle = open(path)
    lines = handle.readlines()
    handle.close()

    for line in lines:
        check(line)
        check_more(line)
    record = parse(lines)
    cache[path] = record
    return record
";

    #[test]
    fn python_keeps_the_head_docstring_and_relevant_blocks() {
        let unit = "def refresh(path, cache):\n    cache.pop(path)\n    return load(path, cache)\n";
        let r = reduce(PY, unit, true).unwrap();
        assert!(r.starts_with("def load(path, cache):\n    \"\"\"Read a record.\n\n    Cached by path.\n    \"\"\"\n"), "{r}");
        // The cache lookup shares `path` and `cache` with the unit; the loop shares nothing.
        assert!(
            r.contains("    if path in cache:\n        return cache[path]\n"),
            "{r}"
        );
        assert!(!r.contains("check_more"), "{r}");
        assert!(r.contains("    ...\n"), "{r}");
        assert!(r.len() as f64 <= PY.len() as f64 * MAX_KEPT_FRACTION);
    }

    #[test]
    fn javascript_keeps_the_closing_brace() {
        let js = "function total(items, tax) {\n  let sum = 0;\n  for (const i of items) {\n    sum += i.price;\n    log(i);\n  }\n\n  const rate = tax.rate;\n  const extra = tax.extra;\n  notify(extra);\n\n  return sum * rate;\n}\n";
        let r = reduce(js, "function f(tax) { return total([], tax); }", false).unwrap();
        assert!(r.starts_with("function total(items, tax) {\n"), "{r}");
        assert!(r.ends_with("}\n"), "{r}");
        assert!(r.contains("  const rate = tax.rate;"), "{r}");
        assert!(r.contains("  ...\n"), "{r}");
    }

    #[test]
    fn short_or_single_block_items_are_not_cut() {
        assert_eq!(reduce("def f(x):\n    return x\n", "f(1)", true), None);
        let one_block =
            "def f(x):\n    a = 1\n    b = 2\n    c = 3\n    d = 4\n    e = 5\n    return x\n";
        assert_eq!(reduce(one_block, "f(1)", true), None);
    }
}
