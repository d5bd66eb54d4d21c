use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;

use super::exit;
use super::graph_opts::GraphArgs;
use crate::librarian::{self, CodeGraph};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Python: dotted module path plus qualified name (`json.encoder.JSONEncoder.encode`);
    /// JS/TS: file path, a colon, then the qualified name (`src/util.ts:Parser.parse`).
    pub symbol: String,
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    #[arg(long)]
    pub json: bool,
    /// Repository root (default: the current directory).
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[command(flatten)]
    pub graph: GraphArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.root.unwrap_or_else(|| PathBuf::from("."));
    if !root.is_dir() {
        bail!("--root {}: not a directory", root.display());
    }
    let opened = args.graph.open(&root)?;
    let graph = CodeGraph::new(opened.store.load_graph()?);
    if !opened.existed || graph.graph.nodes.is_empty() {
        bail!(
            "{}: no code graph for {} yet; run `ouroboros index {}` first",
            opened.location,
            root.display(),
            root.display()
        );
    }
    let Some(node) = graph.find(&args.symbol) else {
        let hints = graph.suggest(&args.symbol);
        if hints.is_empty() {
            bail!("symbol `{}` is not in the graph", args.symbol);
        }
        bail!(
            "symbol `{}` is not in the graph; did you mean: {}",
            args.symbol,
            hints.join(", ")
        );
    };
    let callers = graph.callers(node, args.depth);
    let callees = graph.callees(node, args.depth);
    let uses = graph.uses(node);
    let radius = graph.blast_radius(node);
    let tests = graph.tests_reaching(node);
    if args.json {
        let names = |v: &[librarian::query::Reached]| {
            v.iter().map(|r| r.symbol.clone()).collect::<Vec<_>>()
        };
        println!(
            "{}",
            json!({"symbol": node.symbol, "callers": names(&callers), "callees": names(&callees), "uses": names(&uses), "blast_radius": radius.len(), "tests": tests})
        );
        return Ok(ExitCode::from(exit::OK));
    }
    println!(
        "{} ({}, {}:{})",
        node.symbol,
        node.kind.name(),
        node.file,
        node.lines.0
    );
    for (title, list) in [("callers", &callers), ("callees", &callees)] {
        println!("{title} (depth ≤ {}): {}", args.depth, list.len());
        for r in list.iter() {
            println!(
                "  {}{}  {}:{}",
                "  ".repeat(r.depth - 1),
                r.symbol,
                r.file,
                r.line
            );
        }
    }
    println!(
        "uses (calls, reads, inherits): {}",
        if uses.is_empty() {
            "nothing in the repository".to_string()
        } else {
            uses.iter()
                .map(|r| r.symbol.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!("blast radius: {} transitive dependents", radius.len());
    println!(
        "tests that reach it: {}",
        if tests.is_empty() {
            "none".to_string()
        } else {
            tests.join(", ")
        }
    );
    Ok(ExitCode::from(exit::OK))
}
