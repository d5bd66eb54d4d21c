//! How deeply a text nests brackets, measured before any parser runs: the strict parsers
//! recurse once per level, so a text nested deeper than the gate's limit is rejected without
//! parsing, and one nested deeper than a thread's stack allows gets a thread with a big one.
//!
//! A rough lexer is enough: brackets inside strings and comments are skipped so that prose
//! and regular expressions do not count, and an unterminated string simply ends the count.

use crate::lang::Language;

/// The deepest bracket nesting in `source`.
pub fn depth(source: &str, language: Language) -> usize {
    let b = source.as_bytes();
    let python = language == Language::Python;
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        let c = b[i];
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' if python => i = skip_line(b, i),
            b'/' if !python && b.get(i + 1) == Some(&b'/') => i = skip_line(b, i),
            b'/' if !python && b.get(i + 1) == Some(&b'*') => {
                i = find(b, i + 2, b"*/").map_or(b.len(), |e| e + 1)
            }
            b'"' | b'\'' | b'`' => i = skip_string(b, i, python),
            _ => {}
        }
        i += 1;
    }
    max
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p)
}

fn find(b: &[u8], from: usize, what: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(what.len())
        .position(|w| w == what)
        .map(|p| from + p)
}

/// The index of the quote that closes the string opening at `i`.
fn skip_string(b: &[u8], i: usize, python: bool) -> usize {
    let q = b[i];
    if python && b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
        let close = [q, q, q];
        return find(b, i + 3, &close).map_or(b.len(), |e| e + 2);
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 1,
            c if c == q => return j,
            // Only template literals span lines; a newline ends anything else (broken code).
            b'\n' if q != b'`' && !python => return j,
            b'\n' if python => return j,
            _ => {}
        }
        j += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_in_code_count_and_in_strings_and_comments_do_not() {
        assert_eq!(depth("f(a[b{c}])", Language::JavaScript), 3);
        assert_eq!(depth("x = '(((' # (((\ny = (1)\n", Language::Python), 1);
        assert_eq!(depth("s = \"\"\"\n((( \"\"\" + (1)\n", Language::Python), 1);
        assert_eq!(
            depth(
                "// (((\nconst s = `((${x}`; /* ((( */ f(1);\n",
                Language::TypeScript
            ),
            1
        );
        assert_eq!(depth(&"(".repeat(6000), Language::JavaScript), 6000);
        assert_eq!(depth("'unterminated ((", Language::Python), 0);
    }
}
