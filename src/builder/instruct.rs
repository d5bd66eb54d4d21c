//! Instruct mode: the checkpoint's chat template carries the request, and the unit's new code is
//! read out of the answer (the first fenced block, or the whole answer when it has no fence).

use std::ops::Range;

/// The code in an answer, re-indented for its place in the file, and where each of its lines
/// came from in the answer (so repairs can find the answer tokens of a broken line).
pub struct Answer {
    pub code: String,
    /// Byte ranges in the answer of the block's lines.
    source_lines: Vec<Range<usize>>,
    /// Byte ranges in `code` of the same lines.
    code_lines: Vec<Range<usize>>,
}

impl Answer {
    pub fn parse(text: &str, indent: &str) -> Answer {
        let block = fenced_block(text).unwrap_or(0..text.len());
        let mut source_lines = Vec::new();
        let mut at = block.start;
        for line in text[block.clone()].split_inclusive('\n') {
            source_lines.push(at..at + line.len());
            at += line.len();
        }
        // Trailing blank lines carry nothing.
        while source_lines
            .last()
            .is_some_and(|r| text[r.clone()].trim().is_empty())
        {
            source_lines.pop();
        }
        let common = source_lines
            .iter()
            .map(|r| &text[r.clone()])
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let mut code = String::new();
        let mut code_lines = Vec::new();
        for r in &source_lines {
            let line = text[r.clone()].trim_end_matches('\n');
            let start = code.len();
            if !line.trim().is_empty() {
                code.push_str(indent);
                code.push_str(line.get(common..).unwrap_or(line.trim_start()));
            }
            code.push('\n');
            code_lines.push(start..code.len());
        }
        Answer {
            code,
            source_lines,
            code_lines,
        }
    }

    /// The range in `code` of the line holding answer bytes `r`, if they are inside the block.
    pub fn body_range(&self, r: &Range<usize>) -> Option<Range<usize>> {
        let i = self
            .source_lines
            .iter()
            .position(|l| l.start <= r.start && r.start < l.end.max(l.start + 1))?;
        Some(self.code_lines[i].clone())
    }
}

/// The inside of the first ``` block (after its info string line); an unclosed block runs to
/// the end of the text.
fn fenced_block(text: &str) -> Option<Range<usize>> {
    let open = text.find("```")?;
    let start = open + text[open..].find('\n')? + 1;
    let end = text[start..].find("```").map_or(text.len(), |e| start + e);
    Some(start..end)
}

/// Whether `code` defines `name` (the simple name of the unit) at its top level.
pub fn defines(code: &str, name: &str) -> bool {
    let simple = name.rsplit(['.', ':']).next().unwrap_or(name);
    code.lines().any(|l| {
        let t = l.trim_start();
        let t = t.strip_prefix("export ").unwrap_or(t);
        let t = t.strip_prefix("default ").unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let t = t.strip_prefix("static ").unwrap_or(t);
        ["def ", "class ", "function ", "function* "]
            .iter()
            .any(|k| {
                t.strip_prefix(k)
                    .is_some_and(|rest| starts_with_name(rest, simple))
            })
            || starts_with_name(t, simple) && t[simple.len()..].trim_start().starts_with('(')
    })
}

fn starts_with_name(s: &str, name: &str) -> bool {
    s.strip_prefix(name).is_some_and(|rest| {
        rest.chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_comes_from_the_first_fence_reindented_with_a_line_map() {
        let text = "Here it is:\n```python\ndef f(x):\n    return x + 1\n\n```\nDone.";
        let a = Answer::parse(text, "    ");
        assert_eq!(a.code, "    def f(x):\n        return x + 1\n");
        let ret = text.find("return").unwrap();
        assert_eq!(
            &a.code[a.body_range(&(ret..ret + 6)).unwrap()],
            "        return x + 1\n"
        );
        assert_eq!(a.body_range(&(0..4)), None, "prose is not code");
        let bare = Answer::parse("  def g():\n      pass\n", "");
        assert_eq!(bare.code, "def g():\n    pass\n");
        let open = Answer::parse("```js\nfunction h() {}\n", "");
        assert_eq!(open.code, "function h() {}\n");
    }

    #[test]
    fn definitions_are_recognised_by_simple_name() {
        assert!(defines("def total(items):\n    pass\n", "stats.total"));
        assert!(defines("async def total():\n    pass\n", "total"));
        assert!(defines("export function helper(a) {}\n", "util.js:helper"));
        assert!(defines("  add(item) {\n  }\n", "inventory.Store.add"));
        assert!(!defines("def totals():\n    pass\n", "total"));
        assert!(!defines("x = total(1)\n", "total"));
    }
}
