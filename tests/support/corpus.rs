//! Reading a labelled gate corpus (`labels.jsonl`, made by tests/fixtures/gate/make_corpus.py)
//! and scoring the gate on it. Shared by the corpus test and the gate benchmark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ouroboros::gate::{Gate, GateReport, Language, Layer, SourceKind};

pub struct Sample {
    pub path: PathBuf,
    pub language: Language,
    pub kind: SourceKind,
    /// The real compiler's verdict.
    pub valid: bool,
    pub source: String,
}

pub fn load(dir: &Path) -> Vec<Sample> {
    let labels = std::fs::read_to_string(dir.join("labels.jsonl"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("labels.jsonl").display()));
    labels
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("labels.jsonl line");
            let path = dir.join(v["path"].as_str().expect("path"));
            let language: Language = v["language"].as_str().expect("language").parse().unwrap();
            let mut kind = SourceKind::from_path(&path).unwrap_or(language.default_kind());
            kind.language = language;
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Sample {
                path,
                language,
                kind,
                valid: v["valid"].as_bool().expect("valid"),
                source,
            }
        })
        .collect()
}

/// Verdicts of each layer alone and of the combined gate on one sample.
pub struct Verdict {
    pub tree_sitter_rejects: bool,
    pub strict_rejects: bool,
    pub gate_rejects: bool,
    pub report: GateReport,
}

pub fn judge(gate: &Gate, s: &Sample) -> Verdict {
    let report = gate.check(&s.source, s.kind);
    let all = report.errors.iter().chain(report.warnings.iter());
    let tree_sitter_rejects = all.clone().any(|e| e.layer == Layer::TreeSitter);
    let strict_rejects = report.errors.iter().any(|e| e.layer == Layer::Strict);
    Verdict {
        tree_sitter_rejects,
        strict_rejects,
        gate_rejects: !report.is_valid,
        report,
    }
}

#[derive(Default, Debug, Clone)]
pub struct Score {
    pub invalid: usize,
    pub valid: usize,
    pub caught: [usize; 3],
    pub false_rejects: [usize; 3],
    pub missed: Vec<PathBuf>,
    pub wrongly_rejected: Vec<(PathBuf, String)>,
}

impl Score {
    pub fn catch_rate(&self, layer: usize) -> f64 {
        self.caught[layer] as f64 / self.invalid.max(1) as f64
    }
    pub fn false_reject_rate(&self, layer: usize) -> f64 {
        self.false_rejects[layer] as f64 / self.valid.max(1) as f64
    }
}

/// Index 0: tree-sitter alone, 1: strict layer alone, 2: the gate.
pub fn score(gate: &Gate, samples: &[Sample]) -> BTreeMap<&'static str, Score> {
    let mut by_lang: BTreeMap<&'static str, Score> = BTreeMap::new();
    for s in samples {
        let v = judge(gate, s);
        let score = by_lang.entry(s.language.name()).or_default();
        let flags = [v.tree_sitter_rejects, v.strict_rejects, v.gate_rejects];
        if s.valid {
            score.valid += 1;
            for (i, f) in flags.iter().enumerate() {
                score.false_rejects[i] += usize::from(*f);
            }
            if v.gate_rejects {
                score
                    .wrongly_rejected
                    .push((s.path.clone(), v.report.error_summary.clone()));
            }
        } else {
            score.invalid += 1;
            for (i, f) in flags.iter().enumerate() {
                score.caught[i] += usize::from(*f);
            }
            if !v.gate_rejects {
                score.missed.push(s.path.clone());
            }
        }
    }
    by_lang
}
