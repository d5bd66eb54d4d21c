//! Gate throughput and catch rate per language and layer, on a labelled corpus.
//!
//! `cargo bench --bench gate -- [CORPUS_DIR] [-o md|csv|jsonl] [-r REPS]`
//!
//! CORPUS_DIR defaults to the committed fixtures (tests/fixtures/gate/corpus); build a large
//! one with tests/fixtures/gate/fetch_large.sh. Throughput is bytes over the time each layer
//! reports, so the layers are timed on exactly the same parses. One warm-up pass is discarded;
//! the figures are mean ± sd over the remaining repetitions.

#[path = "../tests/support/corpus.rs"]
mod corpus;

use std::path::PathBuf;

use ouroboros::gate::Gate;

struct Row {
    language: &'static str,
    layer: &'static str,
    files: usize,
    mb: f64,
    mbps_mean: f64,
    mbps_sd: f64,
    catch_rate: f64,
    false_reject_rate: f64,
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn main() {
    let mut dir = PathBuf::from("tests/fixtures/gate/corpus");
    let mut format = "md".to_string();
    let mut reps = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-o" => format = args.next().expect("-o needs md, csv or jsonl"),
            "-r" => {
                reps = args
                    .next()
                    .and_then(|r| r.parse().ok())
                    .expect("-r needs a number")
            }
            "--bench" => {}
            other => dir = PathBuf::from(other),
        }
    }
    let samples = corpus::load(&dir);
    let gate = Gate::default();
    let scores = corpus::score(&gate, &samples);

    let mut rows = Vec::new();
    for lang in ["python", "javascript", "typescript", "tsx"] {
        let of_lang: Vec<&corpus::Sample> = samples
            .iter()
            .filter(|s| s.language.name() == lang)
            .collect();
        if of_lang.is_empty() {
            continue;
        }
        let bytes: usize = of_lang.iter().map(|s| s.source.len()).sum();
        // Per repetition: total µs of tree-sitter, strict, and both.
        let mut rates: [Vec<f64>; 3] = Default::default();
        for rep in 0..=reps {
            let mut us = [0u64; 3];
            for s in &of_lang {
                let r = gate.check(&s.source, s.kind);
                us[0] += r.tree_sitter_us;
                us[1] += r.strict_us;
                us[2] += r.parse_us;
            }
            if rep == 0 {
                continue;
            }
            for i in 0..3 {
                rates[i].push(bytes as f64 / us[i].max(1) as f64);
            }
        }
        let score = &scores[lang];
        for (i, layer) in ["tree-sitter", "strict", "combined"].iter().enumerate() {
            let (m, sd) = mean_sd(&rates[i]);
            rows.push(Row {
                language: lang,
                layer,
                files: of_lang.len(),
                mb: bytes as f64 / 1e6,
                mbps_mean: m,
                mbps_sd: sd,
                catch_rate: score.catch_rate(i),
                false_reject_rate: score.false_reject_rate(i),
            });
        }
    }
    print(&rows, &format, &dir, reps);
}

fn print(rows: &[Row], format: &str, dir: &std::path::Path, reps: usize) {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let corpus = dir.display().to_string();
    let cols = [
        "language",
        "layer",
        "files",
        "MB",
        "reps",
        "MB/s",
        "catch %",
        "false reject %",
        "commit",
    ];
    let cells = |r: &Row| {
        vec![
            r.language.to_string(),
            r.layer.to_string(),
            r.files.to_string(),
            format!("{:.2}", r.mb),
            reps.to_string(),
            format!("{:.2} ± {:.2}", r.mbps_mean, r.mbps_sd),
            format!("{:.2}", 100.0 * r.catch_rate),
            format!("{:.2}", 100.0 * r.false_reject_rate),
            commit.clone(),
        ]
    };
    match format {
        "csv" => {
            println!("language,layer,files,mb,reps,mbps_mean,mbps_sd,catch_rate,false_reject_rate,commit,corpus");
            for r in rows {
                println!(
                    "{},{},{},{:.4},{reps},{:.4},{:.4},{:.4},{:.4},{commit},{corpus}",
                    r.language,
                    r.layer,
                    r.files,
                    r.mb,
                    r.mbps_mean,
                    r.mbps_sd,
                    r.catch_rate,
                    r.false_reject_rate
                );
            }
        }
        "jsonl" => {
            for r in rows {
                println!(
                    "{}",
                    serde_json::json!({
                        "language": r.language, "layer": r.layer, "files": r.files, "mb": r.mb,
                        "reps": reps, "mbps_mean": r.mbps_mean, "mbps_sd": r.mbps_sd,
                        "catch_rate": r.catch_rate, "false_reject_rate": r.false_reject_rate,
                        "commit": commit, "corpus": corpus,
                    })
                );
            }
        }
        _ => {
            println!("| {} |", cols.join(" | "));
            println!(
                "|{}|",
                cols.iter().map(|_| "---").collect::<Vec<_>>().join("|")
            );
            for r in rows {
                println!("| {} |", cells(r).join(" | "));
            }
        }
    }
}
