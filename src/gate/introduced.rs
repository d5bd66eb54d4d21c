//! Which errors of a patched file were already in the original.
//!
//! An error in the patched file is pre-existing when the original had an error from the same
//! layer, with the same message, at the same position once shifted through the line diff. Lines
//! the change touched do not shift: an error on them is the change's. Errors at end of input
//! follow the end of the file.

use similar::{DiffOp, TextDiff};

use super::report::GateError;

/// Map each original line (0-based) to its line in `patched`, if the diff left it unchanged.
fn line_map(original: &str, patched: &str) -> Vec<Option<usize>> {
    let diff = TextDiff::from_lines(original, patched);
    let mut map = vec![None; original.lines().count() + 1];
    for op in diff.ops() {
        if let DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = *op
        {
            for i in 0..len {
                if let Some(slot) = map.get_mut(old_index + i) {
                    *slot = Some(new_index + i);
                }
            }
        }
    }
    map
}

pub(crate) fn mark_preexisting(
    original: &str,
    patched: &str,
    before: &[GateError],
    after: &mut [GateError],
) {
    let map = line_map(original, patched);
    // Where each original error would sit in the patched file, if its line survived.
    let mut candidates: Vec<Option<(usize, usize, &GateError)>> = before
        .iter()
        .map(|e| {
            if e.byte_range.start >= original.trim_end().len() {
                let end_line = patched.trim_end().lines().count().max(1);
                return Some((usize::MAX, end_line, e));
            }
            let new_line = (*map.get(e.line - 1)?)? + 1;
            Some((new_line, e.column, e))
        })
        .collect();
    let patched_end = patched.trim_end().len();
    for e in after.iter_mut() {
        let at_end = e.byte_range.start >= patched_end;
        let hit = candidates.iter_mut().find(|c| match c {
            Some((line, col, old)) => {
                old.layer == e.layer
                    && old.message == e.message
                    && if *line == usize::MAX {
                        at_end
                    } else {
                        *line == e.line && *col == e.column
                    }
            }
            None => false,
        });
        if let Some(slot) = hit {
            // Each original error excuses one error in the patched file, not every copy of it.
            *slot = None;
            e.preexisting = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::gate::{Gate, Language};

    fn kind() -> crate::gate::SourceKind {
        Language::Python.default_kind()
    }

    #[test]
    fn old_errors_do_not_fail_an_edit_elsewhere() {
        let original = "def ok():\n    return 1\n\nx = (1,\n";
        let patched = "import os\n\ndef ok():\n    return 2\n\nx = (1,\n";
        let gate = Gate::default();
        assert!(!gate.check(patched, kind()).is_valid);
        let r = gate.check_change(original, patched, kind());
        assert!(r.is_valid, "{:#?}", r.errors);
        assert!(r.errors.iter().all(|e| e.preexisting));
        assert!(r.error_summary.is_empty());
    }

    #[test]
    fn new_errors_still_fail() {
        let original = "def ok():\n    return 1\n\nx = (1,\n";
        let patched = "def ok(:\n    return 1\n\nx = (1,\n";
        let r = Gate::default().check_change(original, patched, kind());
        assert!(!r.is_valid);
        assert!(r.errors.iter().any(|e| e.preexisting));
        assert!(r.errors.iter().any(|e| !e.preexisting && e.line == 1));
    }

    #[test]
    fn a_duplicated_error_is_new() {
        let original = "a = )\n";
        let patched = "a = )\nb = )\n";
        let r = Gate::default().check_change(original, patched, kind());
        assert!(!r.is_valid);
    }
}
