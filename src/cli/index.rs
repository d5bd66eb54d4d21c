use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use super::exit;
use super::graph_opts::GraphArgs;
use crate::librarian::{self, IndexOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repository to index (default: the current directory).
    pub path: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Files larger than this many bytes are skipped with a warning.
    #[arg(long, default_value_t = librarian::DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
    #[command(flatten)]
    pub graph: GraphArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.path.unwrap_or_else(|| PathBuf::from("."));
    anyhow::ensure!(root.is_dir(), "{}: not a directory", root.display());
    let mut opened = args.graph.open(&root)?;
    let rebuilt = opened.rebuilt;
    let bar = if !args.json && std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("indexing {bar:40} {pos}/{len} files")
            .expect("static template"),
    );
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let summary = librarian::index(
        &root,
        opened.store.as_mut(),
        &IndexOptions {
            max_file_size: args.max_file_size,
        },
        &progress,
    )?;
    bar.finish_and_clear();
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(ExitCode::from(exit::OK));
    }
    if rebuilt {
        println!("the graph had an older schema and was rebuilt");
    }
    if summary.unchanged {
        println!("no file changed since the last index: nothing parsed");
    }
    println!(
        "indexed {} files ({} parsed, {} removed) in {:.2}s: {} nodes, {} edges, {} unresolved references",
        summary.files, summary.parsed, summary.removed, summary.seconds, summary.nodes, summary.edges, summary.unresolved
    );
    if summary.rows_written > 0 && summary.store_seconds > 0.0 {
        println!(
            "stored {} rows in {:.2}s ({:.0} rows/s)",
            summary.rows_written,
            summary.store_seconds,
            summary.rows_written as f64 / summary.store_seconds
        );
    }
    println!("graph: {}", opened.location);
    Ok(ExitCode::from(exit::OK))
}
