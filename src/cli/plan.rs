use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::exit;
use super::graph_opts::GraphArgs;
use crate::librarian::{self, CodeGraph, IndexOptions};
use crate::reasoner::{self, ContextRole};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the change should do, in words.
    pub task: String,
    /// Files to change (repeatable).
    #[arg(short = 't', long = "target", required = true, value_name = "FILE")]
    pub targets: Vec<PathBuf>,
    /// Only these functions, methods or classes of the targets (repeatable): `add`,
    /// `Store.add`, or a full symbol.
    #[arg(short = 'f', long = "function", value_name = "NAME")]
    pub functions: Vec<String>,
    /// Repository root (default: the nearest folder with .ouroboros or .git).
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// A target as the graph names it: relative to the repository root, with `/`.
fn repo_relative(root: &Path, target: &Path) -> anyhow::Result<String> {
    let abs = target
        .canonicalize()
        .with_context(|| format!("--target {}", target.display()))?;
    let root = root.canonicalize()?;
    let rel = abs.strip_prefix(&root).map_err(|_| {
        anyhow::anyhow!(
            "--target {}: outside the repository {}",
            target.display(),
            root.display()
        )
    })?;
    Ok(rel.to_string_lossy().replace('\\', "/"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = super::repo_root(args.root.as_deref())?;
    let targets = args
        .targets
        .iter()
        .map(|t| repo_relative(&root, t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut opened = args.graph.open(&root)?;
    // Plans are made on a current graph; when nothing changed this parses nothing.
    let summary = librarian::index(
        &root,
        opened.store.as_mut(),
        &IndexOptions {
            max_file_size: librarian::DEFAULT_MAX_FILE_SIZE,
        },
        &|_, _| {},
    )?;
    let graph = CodeGraph::new(opened.store.load_graph()?);
    let plan = reasoner::plan(&graph, &args.task, &targets, &args.functions)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::from(exit::OK));
    }
    if summary.parsed > 0 {
        eprintln!("indexed {} changed file(s) first", summary.parsed);
    }
    if plan.units.is_empty() {
        bail!("the targets define no function, method or class to edit");
    }
    println!("plan: {}", plan.task);
    for (i, u) in plan.units.iter().enumerate() {
        println!(
            "{:>2}. {} ({}, {}:{}-{}){}",
            i + 1,
            u.symbol,
            u.kind,
            u.file,
            u.lines.0,
            u.lines.1,
            if u.public_api { ", public" } else { "" }
        );
        println!("    why: {}", u.reason);
        println!(
            "    callers {}, callees {}, blast radius {}, tests: {}",
            u.callers.len(),
            u.callees.len(),
            u.blast_radius,
            if u.tests.is_empty() {
                "none".to_string()
            } else {
                u.tests.join(", ")
            }
        );
        let defs: Vec<&str> = u
            .context
            .iter()
            .filter(|c| c.role == ContextRole::Definition)
            .map(|c| c.symbol.as_str())
            .collect();
        if !defs.is_empty() {
            println!("    needs: {}", defs.join(", "));
        }
    }
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    Ok(ExitCode::from(exit::OK))
}
