use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use super::exit;
use crate::gate::{Gate, GateReport, Language, PythonTarget, SourceKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files and directories to check (directories honour .gitignore); `-` reads stdin.
    #[arg(required = true)]
    pub paths: Vec<String>,
    /// Language for stdin, or to override file extensions: python, javascript, typescript, tsx.
    #[arg(long)]
    pub lang: Option<Language>,
    /// One JSON object per file, one per line.
    #[arg(long)]
    pub json: bool,
    /// Python version whose grammar is enforced.
    #[arg(long, default_value = "3.12")]
    pub python_version: PythonTarget,
    /// Run tree-sitter on every file, not only where the strict parser found errors, and show
    /// its complaints about files the strict parser accepts as warnings.
    #[arg(long)]
    pub all_layers: bool,
    /// Files larger than this many bytes are refused rather than parsed.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_file_size: u64,
    /// Also list the files that passed.
    #[arg(short, long)]
    pub verbose: bool,
}

/// The result for one input: a report, or why it could not be checked.
enum Outcome {
    Checked {
        path: String,
        report: GateReport,
        empty: bool,
    },
    Problem {
        path: String,
        message: String,
    },
}

struct Input {
    display: String,
    source: InputSource,
    kind: Option<SourceKind>,
}

enum InputSource {
    File(PathBuf),
    Stdin,
    /// Walking a directory failed here (a loop, an unreadable folder).
    Failed(String),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let gate = Gate {
        all_layers: args.all_layers,
        ..Gate::new(args.python_version)
    };
    let inputs = collect_inputs(&args)?;
    let progress = progress_bar(inputs.len());
    let outcomes: Vec<Outcome> = inputs
        .into_par_iter()
        .map(|input| {
            let out = check_input(&gate, input, &args);
            progress.inc(1);
            out
        })
        .collect();
    progress.finish_and_clear();
    report(&outcomes, &args, started)
}

fn progress_bar(len: usize) -> ProgressBar {
    if len < 200 || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("validating {bar:40} {pos}/{len} files ({eta})")
            .expect("static template"),
    );
    bar
}

fn collect_inputs(args: &Args) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for raw in &args.paths {
        if raw == "-" {
            let Some(lang) = args.lang else {
                bail!("reading stdin (`-`) needs --lang python|javascript|typescript|tsx");
            };
            inputs.push(Input {
                display: "<stdin>".into(),
                source: InputSource::Stdin,
                kind: Some(lang.default_kind()),
            });
            continue;
        }
        let path = Path::new(raw);
        if path.is_dir() {
            let walker = ignore::WalkBuilder::new(path).build();
            let mut found: Vec<PathBuf> = Vec::new();
            for entry in walker {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        let source = InputSource::Failed(e.to_string());
                        inputs.push(Input {
                            display: raw.clone(),
                            source,
                            kind: None,
                        });
                        continue;
                    }
                };
                if entry.file_type().is_some_and(|t| t.is_file())
                    && SourceKind::from_path(entry.path()).is_some()
                {
                    found.push(entry.into_path());
                }
            }
            found.sort();
            for f in found {
                let kind = kind_for(&f, args.lang);
                inputs.push(Input {
                    display: f.display().to_string(),
                    source: InputSource::File(f),
                    kind,
                });
            }
        } else {
            // Missing files and unknown extensions are reported per file, not fatal for the rest.
            let kind = kind_for(path, args.lang);
            inputs.push(Input {
                display: raw.clone(),
                source: InputSource::File(path.into()),
                kind,
            });
        }
    }
    Ok(inputs)
}

fn kind_for(path: &Path, lang: Option<Language>) -> Option<SourceKind> {
    match (SourceKind::from_path(path), lang) {
        (Some(k), Some(l)) if k.language == l => Some(k),
        (_, Some(l)) => Some(l.default_kind()),
        (k, None) => k,
    }
}

fn check_input(gate: &Gate, input: Input, args: &Args) -> Outcome {
    let problem = |message: String| Outcome::Problem {
        path: input.display.clone(),
        message,
    };
    let bytes = match &input.source {
        InputSource::Stdin => {
            let mut buf = Vec::new();
            if let Err(e) = std::io::stdin()
                .take(args.max_file_size + 1)
                .read_to_end(&mut buf)
            {
                return problem(format!("cannot read stdin: {e}"));
            }
            buf
        }
        InputSource::File(path) => match read_file(path, args.max_file_size) {
            Ok(b) => b,
            Err(message) => return problem(message),
        },
        InputSource::Failed(message) => return problem(message.clone()),
    };
    let Some(kind) = input.kind else {
        return problem(format!(
            "unknown file type; supported extensions: {} (or pass --lang)",
            crate::gate::EXTENSIONS
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    };
    if bytes.len() as u64 > args.max_file_size {
        return problem(too_large(bytes.len() as u64, args.max_file_size));
    }
    if bytes.contains(&0) {
        return problem("binary file (contains NUL bytes); not source code".into());
    }
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            return problem(format!("not valid UTF-8 (first bad byte at offset {at})"));
        }
    };
    let report = gate.check(&source, kind);
    Outcome::Checked {
        path: input.display,
        report,
        empty: source.trim().is_empty(),
    }
}

fn too_large(size: u64, limit: u64) -> String {
    format!(
        "file is {:.1} MB, over the {:.1} MB limit (raise it with --max-file-size)",
        size as f64 / 1e6,
        limit as f64 / 1e6
    )
}

fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| describe_io(&e))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > limit {
        return Err(too_large(meta.len(), limit));
    }
    std::fs::read(path).map_err(|e| describe_io(&e))
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn report(outcomes: &[Outcome], args: &Args, started: Instant) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut valid, mut invalid, mut problems) = (0usize, 0usize, 0usize);
    for o in outcomes {
        match o {
            Outcome::Checked { report, .. } if report.is_valid => valid += 1,
            Outcome::Checked { .. } => invalid += 1,
            Outcome::Problem { .. } => problems += 1,
        }
        if args.json {
            writeln!(out, "{}", json_line(o)).context("writing to stdout")?;
        } else {
            write_human(&mut out, o, args.verbose).context("writing to stdout")?;
        }
    }
    if !args.json {
        let secs = started.elapsed().as_secs_f64();
        writeln!(
            out,
            "checked {} file(s) in {secs:.2}s: {valid} valid, {invalid} invalid{}",
            valid + invalid,
            if problems > 0 {
                format!(", {problems} could not be checked")
            } else {
                String::new()
            }
        )?;
    }
    let code = if problems > 0 {
        exit::ERROR
    } else if invalid > 0 {
        exit::REJECTED
    } else {
        exit::OK
    };
    Ok(ExitCode::from(code))
}

fn json_line(o: &Outcome) -> serde_json::Value {
    match o {
        Outcome::Checked { path, report, .. } => json!({
            "path": path,
            "language": report.language,
            "valid": report.is_valid,
            "errors": report.errors.iter().map(|e| json!({
                "line": e.line,
                "column": e.column,
                "layer": e.layer,
                "message": e.message,
                "kind": e.kind,
                "preexisting": e.preexisting,
            })).collect::<Vec<_>>(),
            "warnings": report.warnings.len(),
            "error_summary": report.error_summary,
            "ast_depth": report.ast_depth,
            "parse_us": report.parse_us,
        }),
        Outcome::Problem { path, message } => json!({
            "path": path,
            "language": null,
            "valid": false,
            "errors": [],
            "error": message,
        }),
    }
}

fn write_human(out: &mut impl Write, o: &Outcome, verbose: bool) -> std::io::Result<()> {
    match o {
        Outcome::Problem { path, message } => writeln!(out, "{path}: error: {message}"),
        Outcome::Checked {
            path,
            report,
            empty,
        } if report.is_valid => {
            if verbose {
                let note = if *empty { " (empty file)" } else { "" };
                writeln!(out, "{path}: ok ({}{note})", report.language)?;
            }
            Ok(())
        }
        Outcome::Checked { path, report, .. } => {
            let blocking: Vec<_> = report.blocking().collect();
            writeln!(
                out,
                "{path}: invalid {} ({} error(s))",
                report.language,
                blocking.len()
            )?;
            for e in blocking {
                writeln!(
                    out,
                    "  {path}:{}:{}: [{}] {}",
                    e.line,
                    e.column,
                    e.layer.name(),
                    e.message
                )?;
                for line in e.context.lines() {
                    writeln!(out, "    | {line}")?;
                }
            }
            Ok(())
        }
    }
}
