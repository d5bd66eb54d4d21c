//! What the generator is told about a unit: as a comment ahead of the context (infill, for base
//! models) or as the user turn of the chat template (instruct).

use crate::builder::heal::Feedback;
use crate::lang::{Language, SourceKind};
use crate::reasoner::EditUnit;

/// The task and the unit as a comment ahead of the context: a base model reads it as the kind
/// of note a programmer leaves.
pub fn task_comment(language: Language, task: &str, unit: &EditUnit) -> String {
    let c = language.line_comment();
    let task: String = task.lines().collect::<Vec<_>>().join(" ");
    let mut comment = format!(
        "{c} Task: {task}\n{c} Rewriting {} ({}).\n",
        unit.symbol, unit.reason
    );
    if let Some(d) = &unit.description {
        let d: String = d.lines().collect::<Vec<_>>().join(" ");
        comment.push_str(&format!("{c} Change: {d}\n"));
    }
    comment
}

/// The user turn of instruct mode: the task, the unit and why it is planned, the compressed
/// context, the current code, the previous attempt's errors, and the reply format.
pub fn instruct_message(
    task: &str,
    unit: &EditUnit,
    kind: SourceKind,
    context: &str,
    code: &str,
    feedback: Option<Feedback>,
) -> String {
    let lang = kind.language.fence_tag();
    let simple = unit
        .symbol
        .rsplit(['.', ':'])
        .next()
        .unwrap_or(&unit.symbol);
    let mut m = format!(
        "{task}\n\nRewrite `{}` in {} ({}).",
        unit.symbol, unit.file, unit.reason
    );
    if let Some(d) = &unit.description {
        m.push_str(&format!(" Planned change: {d}"));
    }
    if !unit.callers.is_empty() {
        m.push_str(&format!(
            " It is called by {}; keep its signature unless the task needs a change.",
            unit.callers.join(", ")
        ));
    }
    if !context.trim().is_empty() {
        m.push_str(&format!("\n\nCode it uses:\n```{lang}\n{context}```"));
    }
    m.push_str(&format!("\n\nCurrent code:\n```{lang}\n{code}```"));
    if let Some(f) = feedback {
        m.push_str(&format!(
            "\n\nA previous answer {}:\n{}",
            f.heading(),
            f.text()
        ));
    }
    m.push_str(&format!(
        "\n\nReply with the complete new code of `{simple}` in one ```{lang} block and nothing else."
    ));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A reasoner model's description of the change reaches both kinds of prompt.
    #[test]
    fn planned_changes_reach_the_prompts() {
        let mut unit = EditUnit {
            symbol: "m.f".into(),
            kind: "function",
            file: "m.py".into(),
            lines: (1, 2),
            signature: "def f()".into(),
            reason: "named with --function f".into(),
            description: None,
            callers: vec![],
            callees: vec![],
            blast_radius: 0,
            tests: vec![],
            public_api: true,
            context_items: vec![],
        };
        let kind = SourceKind::from_path(Path::new("m.py")).unwrap();
        assert!(!task_comment(kind.language, "Cache", &unit).contains("Change:"));
        unit.description = Some("Memoise the lookup\nby key.".into());
        assert_eq!(
            task_comment(kind.language, "Cache", &unit),
            "# Task: Cache\n# Rewriting m.f (named with --function f).\n# Change: Memoise the lookup by key.\n"
        );
        let m = instruct_message("Cache", &unit, kind, "", "def f():\n    pass\n", None);
        assert!(
            m.contains("Planned change: Memoise the lookup\nby key."),
            "{m}"
        );
    }
}
