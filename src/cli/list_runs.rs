use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::json;

use super::{exit, repo_root};
use crate::provenance::{ListedRun, RunStore};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// One JSON array of runs.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub root: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = repo_root(args.root.as_deref())?;
    let store = RunStore::new(&root);
    let mut rows = Vec::new();
    for entry in store.list() {
        match entry {
            ListedRun::Ok(r) => rows.push(r),
            ListedRun::Unreadable { run_id, reason, .. } => {
                eprintln!("warning: skipping run {run_id}: {reason}");
            }
        }
        if rows.len() == args.limit {
            break;
        }
    }
    if args.json {
        let runs: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "run_id": r.run_id,
                    "task": r.issue_description,
                    "duration_seconds": r.duration_seconds,
                    "success": r.success,
                    "interrupted": store.interrupted(&r.run_id),
                    "files_modified": r.file_modifications.len(),
                    "timestamp": r.timestamp_start,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::from(exit::OK));
    }
    if rows.is_empty() {
        println!(
            "no runs recorded under {}",
            root.join(".ouroboros/runs").display()
        );
        return Ok(ExitCode::from(exit::OK));
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "run id",
        "task",
        "duration",
        "success",
        "files",
        "timestamp",
    ]);
    for r in &rows {
        let task: String = if r.issue_description.chars().count() > 40 {
            r.issue_description
                .chars()
                .take(39)
                .chain(std::iter::once('…'))
                .collect()
        } else {
            r.issue_description.clone()
        };
        t.add_row(vec![
            r.run_id.clone(),
            task,
            format!("{:.2}s", r.duration_seconds),
            if store.interrupted(&r.run_id) {
                "interrupted".into()
            } else if r.success {
                "yes".into()
            } else {
                "no".into()
            },
            r.file_modifications.len().to_string(),
            r.timestamp_start.clone(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::from(exit::OK))
}
