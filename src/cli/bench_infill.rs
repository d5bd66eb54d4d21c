//! `bench --eval infill`: the quality-versus-steps curve. Each Python function body in the
//! given files is masked (its signature and docstring stay) and written again by the model;
//! per step count: how often the patched file passes the gate, how often it passes after the
//! self-healing loop, token accuracy against the original body, and speed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use super::bench::{mean_sd, print_jsonl};
use super::gen_opts::{build_config, Loaded, SamplingArgs};
use crate::builder::heal::{build, HealOptions, Request, Site};
use crate::builder::{span_for, Builder, SPAN_BUCKETS};
use crate::device::dtype_name;
use crate::gate::{self, Gate, Language};

#[derive(Debug, Clone, clap::Args)]
pub struct InfillArgs {
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
}

#[derive(Serialize)]
pub struct Row {
    model: String,
    params: usize,
    backend: String,
    dtype: String,
    sampler: String,
    steps: String,
    functions: usize,
    gate_pass: f64,
    /// First bodies that pass and are more than a placeholder (`pass`, `...`, a bare `return`).
    gate_pass_nontrivial: f64,
    /// First bodies that are only such a placeholder.
    trivial: f64,
    gate_pass_healed: f64,
    token_accuracy: f64,
    tok_s_mean: f64,
    tok_s_sd: f64,
    retries: u32,
    commit: String,
    date: String,
}

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

/// Function bodies as whole lines, after the docstring; one-line functions are skipped since
/// their body shares the `def` line.
fn bodies(file: &Path, source: &str) -> Vec<Target> {
    let Some(tree) = gate::parse_tree(source, Language::Python) else {
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
        let Some(block) = node.child_by_field_name("body") else {
            continue;
        };
        let mut c = block.walk();
        let mut stmts: Vec<_> = block.named_children(&mut c).collect();
        let is_doc = stmts.first().is_some_and(|s| {
            s.kind() == "expression_statement"
                && s.named_child(0).is_some_and(|n| n.kind() == "string")
        });
        if is_doc {
            stmts.remove(0);
        }
        let Some(first) = stmts.first() else {
            continue;
        };
        let start = first.start_position().row + 1;
        let end = node.end_position().row + 1;
        if start <= node.start_position().row + 1 || end > lines.len() {
            continue;
        }
        out.push(Target {
            file: file.to_path_buf(),
            source: source.to_string(),
            lines: (start, end),
            body: lines[start - 1..end].concat(),
        });
    }
    out
}

pub fn run(loaded: &Loaded, args: &InfillArgs, seed: u64) -> anyhow::Result<Vec<Row>> {
    if args.files.is_empty() {
        bail!("--eval infill needs --files PATH... (held-out Python files or folders)");
    }
    let model = &loaded.model;
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
    let builder = Builder::new(model);
    let gate = Gate::default();
    let kind = Language::Python.default_kind();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut rows = Vec::new();
    for label in &args.infill_steps {
        let steps: Option<usize> = match label.as_str() {
            "span" => None,
            n => Some(n.parse().ok().filter(|&n| n > 0).with_context(|| {
                format!("--infill-steps {n}: expected a positive number or `span`")
            })?),
        };
        let (mut first, mut healed, mut acc, mut tok_s) = (0usize, 0usize, Vec::new(), Vec::new());
        let (mut nontrivial, mut trivial) = (0usize, 0usize);
        let mut sampler = String::new();
        for (i, t) in targets.iter().enumerate() {
            let original = model.codec.encode(&t.body)?;
            let span = span_for(original.len());
            let sampling = SamplingArgs {
                steps: Some(steps.unwrap_or(span).min(span)),
                preset: None,
                sampler: None,
                temperature: None,
                top_p: None,
                top_k: None,
                alg_temp: None,
                eps: 1e-3,
                threshold: None,
                eos: "allow".into(),
                seed,
            };
            let cfg = build_config(loaded, &sampling, Some(span), Some(span))?;
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
                &gate,
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
            let first_tokens = &out.first_body_tokens;
            let same = original
                .iter()
                .zip(first_tokens)
                .filter(|(a, b)| a == b)
                .count();
            acc.push(same as f64 / original.len() as f64);
            tok_s.push(span as f64 / out.first_seconds.max(1e-9));
            eprint!("\rsteps {label}: {}/{} functions", i + 1, targets.len());
        }
        eprintln!();
        let n = targets.len() as f64;
        let (m, sd) = mean_sd(&tok_s);
        rows.push(Row {
            model: model.name.clone(),
            params: model.params,
            backend: loaded.device.to_string(),
            dtype: dtype_name(model.dtype).into(),
            sampler,
            steps: label.clone(),
            functions: targets.len(),
            gate_pass: first as f64 / n,
            gate_pass_nontrivial: nontrivial as f64 / n,
            trivial: trivial as f64 / n,
            gate_pass_healed: healed as f64 / n,
            token_accuracy: mean_sd(&acc).0,
            tok_s_mean: m,
            tok_s_sd: sd,
            retries: args.max_retries,
            commit: env!("OUROBOROS_GIT_COMMIT").into(),
            date: date.clone(),
        });
    }
    Ok(rows)
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

pub fn print(rows: &[Row], format: &str) -> anyhow::Result<()> {
    match format {
        "jsonl" => print_jsonl(rows)?,
        "csv" => {
            println!("model,params,backend,dtype,sampler,steps,functions,gate_pass,gate_pass_nontrivial,trivial,gate_pass_healed,token_accuracy,tok_s_mean,tok_s_sd,retries,commit,date");
            for r in rows {
                println!(
                    "{},{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.2},{:.2},{},{},{}",
                    r.model,
                    r.params,
                    r.backend,
                    r.dtype,
                    r.sampler,
                    r.steps,
                    r.functions,
                    r.gate_pass,
                    r.gate_pass_nontrivial,
                    r.trivial,
                    r.gate_pass_healed,
                    r.token_accuracy,
                    r.tok_s_mean,
                    r.tok_s_sd,
                    r.retries,
                    r.commit,
                    r.date
                );
            }
        }
        _ => {
            println!("| model | params | backend | dtype | sampler | steps | functions | gate pass | gate pass, not a placeholder | placeholder bodies | after healing | token accuracy | tok/s |");
            println!("|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for r in rows {
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} ± {:.1} |",
                    r.model, r.params, r.backend, r.dtype, r.sampler, r.steps, r.functions,
                    r.gate_pass, r.gate_pass_nontrivial, r.trivial, r.gate_pass_healed,
                    r.token_accuracy, r.tok_s_mean, r.tok_s_sd
                );
            }
            if let Some(r) = rows.first() {
                println!(
                    "\ncommit {} · {} · {} · healing: up to {} retries (repair, regenerate, ...)",
                    r.commit, r.backend, r.date, r.retries
                );
            }
        }
    }
    Ok(())
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
}
