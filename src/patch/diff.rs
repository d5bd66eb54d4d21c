use similar::{ChangeTag, TextDiff};

/// A unified diff of one file and its line counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub unified: String,
    pub lines_added: usize,
    pub lines_removed: usize,
}

impl Diff {
    pub fn new(label: &str, old: &str, new: &str) -> Diff {
        let diff = TextDiff::from_lines(old, new);
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
