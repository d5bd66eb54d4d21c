//! `bench infill`: the quality-versus-steps curve. Each Python function body in the given files
//! (the lines `refactor` would rewrite: after the signature and docstring) is masked and written
//! again by the model; per step count: how often the patched file passes the gate, how often it
//! passes after the self-healing loop, token accuracy against the original body, and speed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::report::{col, data, mean_sd, Column, Report, Value};
use super::Common;
use crate::builder::heal::{build, HealOptions, Request, Site, SyntaxJudge};
use crate::builder::{span_for, Builder, SPAN_BUCKETS};
use crate::diffusion::CacheMode;
use crate::engine::{Engine, SamplingOptions};
use crate::gate::Gate;
use crate::lang::Language;
use crate::pipeline::locate;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Python files, or folders searched for them (held-out code, not seen in training).
    #[arg(long = "files", value_name = "PATH", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// At most this many functions, taken in file order.
    #[arg(long, default_value_t = 50)]
    pub max_functions: usize,
    /// Step counts to compare; `span` is one token per step.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64,span")]
    pub infill_steps: Vec<String>,
    /// Self-healing attempts after the first generation.
    #[arg(long, default_value_t = 3)]
    pub max_retries: u32,
    /// Fast-dLLM block caches to compare.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub cache: Vec<CacheMode>,
    /// Blocks of this many tokens within each span (a span it does not divide is one block).
    #[arg(long)]
    pub block_length: Option<usize>,
}

const COLUMNS: [Column; 12] = [
    col("sampler", "sampler"),
    col("cache", "cache"),
    col("block", "block"),
    col("steps", "steps"),
    col("functions", "functions"),
    col("gate_pass", "gate pass"),
    // First bodies that pass and are more than a placeholder (`pass`, `...`, a bare `return`).
    col("gate_pass_nontrivial", "gate pass, not a placeholder"),
    // First bodies that are only such a placeholder.
    col("trivial", "placeholder bodies"),
    col("gate_pass_healed", "after healing"),
    col("token_accuracy", "token accuracy"),
    col("tok_s", "tok/s"),
    data("retries"),
];

/// A function body to rewrite: 1-based inclusive lines, and the original text.
struct Target {
    file: PathBuf,
    source: String,
    lines: (usize, usize),
    body: String,
}

fn python_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            for entry in ignore::WalkBuilder::new(p).build() {
                let entry = entry?;
                if entry.path().extension().is_some_and(|e| e == "py") {
                    out.push(entry.into_path());
                }
            }
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("--files {}: no such file or folder", p.display());
        }
    }
    out.sort();
    Ok(out)
}

/// Function bodies as `refactor` finds them ([`locate::body_lines`]); one-line functions have
/// none of their own and are skipped.
fn bodies(file: &Path, source: &str) -> Vec<Target> {
    let Some(tree) = crate::lang::parse(source, Language::Python) else {
        return Vec::new();
    };
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let mut out = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        let mut cursor = node.walk();
        let children: Vec<_> = node.named_children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
        if node.kind() != "function_definition" {
            continue;
        }
        let def = (node.start_position().row + 1, node.end_position().row + 1);
        let Some(body) = locate::body_lines(source, Language::Python, def) else {
            continue;
        };
        if body.1 > lines.len() {
            continue;
        }
        out.push(Target {
            file: file.to_path_buf(),
            source: source.to_string(),
            lines: body,
            body: lines[body.0 - 1..body.1].concat(),
        });
    }
    out
}

fn targets(engine: &Engine, args: &Args) -> anyhow::Result<Vec<Target>> {
    let model = &engine.model;
    let largest = SPAN_BUCKETS[SPAN_BUCKETS.len() - 1];
    let mut targets = Vec::new();
    for f in python_files(&args.files)? {
        let source =
            std::fs::read_to_string(&f).with_context(|| format!("--files {}", f.display()))?;
        for t in bodies(&f, &source) {
            let n = model.codec.encode(&t.body)?.len();
            // Bodies that fit the largest span, with room for some of the file around them.
            if n > 0 && n <= largest && span_for(n) + 64 <= model.max_positions() {
                targets.push(t);
            }
        }
    }
    targets.truncate(args.max_functions);
    if targets.is_empty() {
        bail!("--files: no function body of 1..={largest} tokens found");
    }
    Ok(targets)
}

pub fn run(args: &Args) -> anyhow::Result<Report> {
    if args.files.is_empty() {
        bail!("bench infill needs --files PATH... (held-out Python files or folders)");
    }
    let steps: Vec<(String, Option<usize>)> = args
        .infill_steps
        .iter()
        .map(|label| match label.as_str() {
            "span" => Ok((label.clone(), None)),
            n => n
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .map(|n| (label.clone(), Some(n)))
                .with_context(|| {
                    format!("--infill-steps {n}: expected a positive number or `span`")
                }),
        })
        .collect::<anyhow::Result<_>>()?;
    let engine = args.common.open()?;
    let targets = targets(&engine, args)?;
    let mut report = Report::new(&COLUMNS);
    report.note = format!(
        "healing: up to {} retries (repair, regenerate, ...)",
        args.max_retries
    );
    if args.block_length == Some(0) {
        bail!("--block-length must be at least 1");
    }
    for &cache in &args.cache {
        for (label, steps) in &steps {
            let point = Point {
                label,
                steps: *steps,
                cache,
            };
            let cells = curve_point(&engine, args, &targets, &point)?;
            report.push(&Common::meta(&engine), cells);
        }
    }
    Ok(report)
}

/// One point of the curve: a step count (`None`: one token per step) with one cache.
struct Point<'a> {
    label: &'a str,
    steps: Option<usize>,
    cache: CacheMode,
}

/// Every target written again at one point.
fn curve_point(
    engine: &Engine,
    args: &Args,
    targets: &[Target],
    point: &Point,
) -> anyhow::Result<Vec<Value>> {
    let Point {
        label,
        steps,
        cache,
    } = *point;
    let model = &engine.model;
    let builder = Builder::for_engine(engine);
    let gate = Gate::default();
    let kind = Language::Python.default_kind();
    let (mut first, mut healed, mut acc, mut tok_s) = (0usize, 0usize, Vec::new(), Vec::new());
    let (mut nontrivial, mut trivial) = (0usize, 0usize);
    let mut sampler = String::new();
    for (i, t) in targets.iter().enumerate() {
        let original = model.codec.encode(&t.body)?;
        let span = span_for(original.len());
        let sampling = SamplingOptions {
            steps: Some(steps.unwrap_or(span).min(span)),
            seed: args.common.seed,
            cache,
            ..SamplingOptions::default()
        };
        let block = args.block_length.unwrap_or(span);
        let cfg = engine.config(&sampling, Some(span), Some(block))?;
        sampler = cfg.sampler.name().to_string();
        let site = Site {
            original: &t.source,
            kind,
            request: Request::Infill {
                lines: t.lines,
                context: "",
            },
            span,
        };
        let out = build(
            &builder,
            &mut SyntaxJudge(&gate),
            &site,
            &cfg,
            HealOptions {
                max_retries: args.max_retries,
                ..HealOptions::default()
            },
        )
        .with_context(|| format!("{}:{}-{}", t.file.display(), t.lines.0, t.lines.1))?;
        first += usize::from(out.passed_first());
        healed += usize::from(out.passed());
        let placeholder = is_placeholder(&model.codec.decode(&out.first_body_tokens, false));
        trivial += usize::from(placeholder);
        nontrivial += usize::from(out.passed_first() && !placeholder);
        // Token accuracy and speed are those of the first generation, before any healing.
        let same = original
            .iter()
            .zip(&out.first_body_tokens)
            .filter(|(a, b)| a == b)
            .count();
        acc.push(same as f64 / original.len() as f64);
        tok_s.push(span as f64 / out.first_seconds.max(1e-9));
        eprint!("\rsteps {label}: {}/{} functions", i + 1, targets.len());
    }
    eprintln!();
    let n = targets.len() as f64;
    let (m, sd) = mean_sd(&tok_s);
    let block = args
        .block_length
        .map_or_else(|| "span".to_string(), |b| b.to_string());
    Ok(vec![
        sampler.into(),
        cache.name().into(),
        block.into(),
        label.into(),
        targets.len().into(),
        Value::Num(first as f64 / n, 3),
        Value::Num(nontrivial as f64 / n, 3),
        Value::Num(trivial as f64 / n, 3),
        Value::Num(healed as f64 / n, 3),
        Value::Num(mean_sd(&acc).0, 3),
        Value::MeanSd(m, sd, 1),
        (args.max_retries as usize).into(),
    ])
}

/// A body that only stands in for one: it parses, and says nothing.
fn is_placeholder(body: &str) -> bool {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    matches!(
        lines.as_slice(),
        [] | ["pass"]
            | ["..."]
            | ["return"]
            | ["return None"]
            | ["raise NotImplementedError"]
            | ["raise NotImplementedError()"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_bodies_that_say_nothing() {
        for b in [
            "    pass\n",
            "\n    ...\n",
            "    # todo\n    return None\n",
            "",
        ] {
            assert!(is_placeholder(b), "{b:?}");
        }
        for b in [
            "    return x\n",
            "    pass\n    return 1\n",
            "    raise ValueError(x)\n",
        ] {
            assert!(!is_placeholder(b), "{b:?}");
        }
    }

    #[test]
    fn bodies_are_the_lines_refactor_rewrites() {
        let src =
            "def f(a):\n    \"\"\"Doc.\"\"\"\n    # note\n    return a\n\n\ndef g(): return 1\n";
        let found = bodies(Path::new("m.py"), src);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].lines, (4, 4));
        assert_eq!(found[0].body, "    return a\n");
    }
}
