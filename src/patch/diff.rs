use std::time::Duration;

use similar::{Algorithm, ChangeTag, TextDiff};

/// Myers' diff is quadratic in the worst case (a large file whose every line changed takes
/// minutes); past this deadline `similar` settles for a coarser diff, still correct.
const DEADLINE: Duration = Duration::from_millis(500);

/// A unified diff of one file and its line counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub unified: String,
    pub lines_added: usize,
    pub lines_removed: usize,
}

impl Diff {
    pub fn new(label: &str, old: &str, new: &str) -> Diff {
        let diff = TextDiff::configure()
            .algorithm(Algorithm::Myers)
            .timeout(DEADLINE)
            .diff_lines(old, new);
        let (mut lines_added, mut lines_removed) = (0, 0);
        for change in diff.iter_all_changes() {
            match change.tag() {
                ChangeTag::Insert => lines_added += 1,
                ChangeTag::Delete => lines_removed += 1,
                ChangeTag::Equal => {}
            }
        }
        let unified = diff
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{label}"), &format!("b/{label}"))
            .to_string();
        Diff {
            unified,
            lines_added,
            lines_removed,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines_added == 0 && self.lines_removed == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_whose_every_line_changed_diffs_in_time() {
        let old = "old = 0\n".repeat(60_000);
        let new = "new = 1\n".repeat(60_000);
        let started = std::time::Instant::now();
        let d = Diff::new("big.py", &old, &new);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!((d.lines_added, d.lines_removed), (60_000, 60_000));
    }
}
