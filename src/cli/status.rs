use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use super::{exit, repo_root};
use crate::provenance::{RunRecord, RunStore};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["run_id", "latest"])))]
pub struct Args {
    /// The run to show.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Show the most recent run.
    #[arg(long)]
    pub latest: bool,
    /// Print the record itself.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub root: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = repo_root(args.root.as_deref())?;
    let store = RunStore::new(&root);
    let record = match &args.run_id {
        Some(id) => store.load(id)?,
        None => store.latest().ok_or_else(|| {
            anyhow!(
                "no runs recorded under {}",
                root.join(".ouroboros/runs").display()
            )
        })?,
    };
    let path = store.record_path(&record.run_id);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", render(&record));
        if store.interrupted(&record.run_id) {
            println!(
                "interrupted while writing files: `ouroboros rollback {}` undoes what it wrote",
                record.run_id
            );
        }
        println!("record: {}", path.display());
    }
    Ok(ExitCode::from(exit::OK))
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

pub(crate) fn render(r: &RunRecord) -> String {
    let mut out = String::new();
    let outcome = if r.success { "succeeded" } else { "failed" };
    out.push_str(&format!(
        "run {}  {outcome}  {:.2}s\n",
        r.run_id, r.duration_seconds
    ));
    out.push_str(&format!("task: {}\n", r.issue_description));
    out.push_str(&format!("started: {}\n", r.timestamp_start));
    if let Some(e) = &r.error {
        out.push_str(&format!("error: {e}\n"));
    }
    if r.models_used.is_empty() {
        out.push_str("\nmodels: none\n");
    } else {
        let mut t = table(&[
            "phase", "model", "tokens", "ms", "steps", "device", "dtype", "seed",
        ]);
        for m in &r.models_used {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            t.add_row(vec![
                m.phase.clone(),
                m.model_name.clone(),
                m.tokens_used.to_string(),
                format!("{:.1}", m.duration_ms),
                opt(m.num_steps.map(|s| s.to_string())),
                opt(m.endpoint.clone().or(m.device.clone())),
                opt(m.dtype.clone()),
                opt(m.seed.map(|s| s.to_string())),
            ]);
        }
        out.push_str(&format!("\nmodels\n{t}\n"));
        let served = r.models_used.iter().find(|m| m.repair.is_some());
        if let (Some(m), Some(repair)) = (served, served.and_then(|m| m.repair.as_ref())) {
            out.push_str(&format!(
                "generator server: {} (repair: {repair})\n",
                m.endpoint.as_deref().unwrap_or("-")
            ));
        }
    }
    if r.safety_checks.is_empty() {
        out.push_str("\nsafety checks: none\n");
    } else {
        let mut t = table(&["check", "file", "unit", "passed", "details"]);
        for c in &r.safety_checks {
            let mut details: String = c.details.chars().take(160).collect();
            if let Some(cmd) = &c.command {
                details.push_str(&format!(
                    "\n$ {cmd}  ({:.0} ms)",
                    c.duration_ms.unwrap_or(0.0)
                ));
            }
            t.add_row(vec![
                c.check_type.clone(),
                match (&c.file_path, c.line) {
                    (Some(f), Some(l)) => format!("{f}:{l}"),
                    (Some(f), None) => f.clone(),
                    _ => "-".into(),
                },
                c.unit.clone().unwrap_or_else(|| "-".into()),
                if c.passed { "yes".into() } else { "NO".into() },
                details,
            ]);
        }
        out.push_str(&format!("\nsafety checks\n{t}\n"));
    }
    if let Some(refactor) = &r.refactor {
        let mut t = table(&[
            "unit", "file", "status", "tests", "risk", "retries", "steps", "passes", "context",
            "body",
        ]);
        for u in &refactor.units {
            t.add_row(vec![
                u.symbol.clone(),
                u.file.clone(),
                u.status.clone(),
                if u.tests.is_empty() {
                    "-".into()
                } else {
                    u.tests.clone()
                },
                format!("{:.2}", u.risk),
                u.retries.to_string(),
                u.steps.to_string(),
                u.forward_passes.to_string(),
                format!(
                    "{}->{} ({:.2})",
                    u.tokens_before, u.tokens_after, u.compression_ratio
                ),
                if u.body_sha256.is_empty() {
                    "-".into()
                } else {
                    short_hash(&u.body_sha256)
                },
            ]);
        }
        out.push_str(&format!("\nunits\n{t}\n"));
        for w in &refactor.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        if !r.attempts.is_empty() {
            let mut t = table(&[
                "unit",
                "attempt",
                "action",
                "passed",
                "re-masked",
                "ms",
                "errors",
            ]);
            for a in &r.attempts {
                t.add_row(vec![
                    a.unit.clone(),
                    a.attempt.to_string(),
                    a.action.clone(),
                    if a.passed { "yes".into() } else { "no".into() },
                    a.remasked_tokens.map_or("-".into(), |n| n.to_string()),
                    format!("{:.0}", a.duration_ms),
                    a.errors.first().cloned().unwrap_or_default(),
                ]);
            }
            out.push_str(&format!("\nattempts\n{t}\n"));
        }
    }
    if r.file_modifications.is_empty() {
        out.push_str("\nfiles modified: none\n");
    } else {
        let mut t = table(&["file", "+", "-", "original", "modified", "backup"]);
        for f in &r.file_modifications {
            t.add_row(vec![
                f.file_path.clone(),
                f.lines_added.to_string(),
                f.lines_removed.to_string(),
                short_hash(&f.original_hash),
                short_hash(&f.modified_hash),
                f.backup_path.clone(),
            ]);
        }
        out.push_str(&format!("\nfiles modified\n{t}\n"));
    }
    out
}

fn short_hash(h: &str) -> String {
    h.chars().take(7 + 12).collect()
}
