use serde::{Deserialize, Serialize};

/// `artifact_metadata.json`: the seed's schema, with our additions as optional fields so that a
/// reader of the seed schema still understands every record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub issue_description: String,
    pub timestamp_start: String,
    pub timestamp_end: Option<String>,
    pub duration_seconds: f64,
    pub success: bool,
    /// Why a failed run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub models_used: Vec<ModelUsage>,
    pub safety_checks: Vec<SafetyCheck>,
    pub file_modifications: Vec<FileModification>,
    /// Every generation attempt, repairs and retries included, with the errors that caused it.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    pub metadata: Metadata,
    #[serde(default)]
    pub ouroboros_version: String,
    /// `refactor` runs: what `replay` needs to run them again, and each unit's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refactor: Option<RefactorRecord>,
}

/// A refactor run as replay reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefactorRecord {
    /// The command's settings (task, targets, model, sampling, safety), as the CLI parsed them.
    pub request: serde_json::Value,
    /// sha256 before the run of every file whose text went into a canvas.
    pub inputs: std::collections::BTreeMap<String, String>,
    pub units: Vec<UnitRecord>,
    /// The reasoner model's refinement (model, answer, kept and dropped units), when one was
    /// asked; replay applies the recorded answer instead of asking again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoner: Option<serde_json::Value>,
    /// What the run could not check, or did not (`--no-tests`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Every test run of the behaviour gate, healing attempts included: how many, how long.
    #[serde(default)]
    pub test_runs: usize,
    #[serde(default)]
    pub test_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub symbol: String,
    pub file: String,
    pub status: String,
    pub valid: bool,
    pub risk: f64,
    /// Each risk term's value, by name.
    pub risk_terms: std::collections::BTreeMap<String, f64>,
    pub retries: u32,
    pub span: usize,
    pub steps: usize,
    /// Forward passes over all attempts (generation, repairs, regenerations).
    #[serde(default)]
    pub forward_passes: usize,
    /// sha256 of the generated body; empty when the unit was skipped.
    pub body_sha256: String,
    pub tokens_before: usize,
    pub tokens_after: usize,
    pub compression_ratio: f64,
    /// What the tests that reach the unit said (`passed 3`, `broke test_x`, `untested`, ...).
    #[serde(default)]
    pub tests: String,
    /// The tests it broke, when it broke some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_tests: Vec<String>,
    /// The semantic checks' findings, `line:column check: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub semantic: Vec<String>,
    /// The first draft was denoised in one batch with other units' (`--batch`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batched: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// `reasoner`, `compressor` or `generator`, as the seed's schema names them (records
    /// written before said `reason`, `compress` and `generate`; they read as the new names).
    #[serde(deserialize_with = "seed_phase")]
    pub phase: String,
    pub model_name: String,
    pub purpose: String,
    pub tokens_used: u64,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
    /// `cpu`, `cuda:N` or `metal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    /// Tokens committed at each step, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_schedule: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timing: Option<StepTiming>,
    /// The server's API base, for a model reached over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A remote generator: how the gate's failures were healed (re-masking through the
    /// server's denoise endpoint, or regeneration where the server has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
}

fn seed_phase<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let phase = String::deserialize(d)?;
    Ok(match phase.as_str() {
        "reason" => "reasoner".to_string(),
        "compress" => "compressor".to_string(),
        "generate" => "generator".to_string(),
        _ => phase,
    })
}

/// A summary of per-step device time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub steps: u32,
    pub mean_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub total_ms: f64,
}

impl StepTiming {
    /// Summarise a list of step durations in milliseconds; `None` for an empty list.
    pub fn from_ms(samples: &[f64]) -> Option<StepTiming> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let total: f64 = sorted.iter().sum();
        let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Some(StepTiming {
            steps: sorted.len() as u32,
            mean_ms: total / sorted.len() as f64,
            min_ms: sorted[0],
            max_ms: sorted[sorted.len() - 1],
            p50_ms: pick(0.5),
            p95_ms: pick(0.95),
            total_ms: total,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SafetyCheck {
    /// `syntax_validation`, `tests` or `semantic`.
    pub check_type: String,
    pub passed: bool,
    pub details: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// The unit the check is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `semantic`: where, in the patched file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// `tests`: the command that ran, how long it took, and what came of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_passed: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_failed: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    /// The end of what the failing run printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileModification {
    pub file_path: String,
    pub original_hash: String,
    pub modified_hash: String,
    pub lines_added: usize,
    pub lines_removed: usize,
    pub backup_path: String,
    pub timestamp: String,
    /// `exchange` (atomic, checked after: no edit lost) or `rename` (checked just before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<String>,
}

/// One attempt at producing an edit unit: the first generation, a diffusion repair, or a
/// regeneration with the errors fed back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub unit: String,
    pub attempt: u32,
    pub action: String,
    pub passed: bool,
    /// The gate's error summary lines for this attempt's output.
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remasked_tokens: Option<u32>,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub total_tokens_used: u64,
    pub total_model_time_ms: f64,
    pub num_safety_checks_passed: usize,
    pub total_lines_added: usize,
    pub total_lines_removed: usize,
}

impl RunRecord {
    pub fn new(run_id: String, issue_description: &str, timestamp_start: String) -> RunRecord {
        RunRecord {
            run_id,
            issue_description: issue_description.to_string(),
            timestamp_start,
            timestamp_end: None,
            duration_seconds: 0.0,
            success: false,
            error: None,
            models_used: Vec::new(),
            safety_checks: Vec::new(),
            file_modifications: Vec::new(),
            attempts: Vec::new(),
            metadata: Metadata::default(),
            ouroboros_version: env!("CARGO_PKG_VERSION").to_string(),
            refactor: None,
        }
    }

    pub(crate) fn close(
        &mut self,
        end: String,
        seconds: f64,
        success: bool,
        error: Option<String>,
    ) {
        self.timestamp_end = Some(end);
        self.duration_seconds = (seconds * 1000.0).round() / 1000.0;
        self.success = success;
        self.error = error;
        self.metadata = Metadata {
            total_tokens_used: self.models_used.iter().map(|m| m.tokens_used).sum(),
            total_model_time_ms: self.models_used.iter().map(|m| m.duration_ms).sum(),
            num_safety_checks_passed: self.safety_checks.iter().filter(|c| c.passed).count(),
            total_lines_added: self.file_modifications.iter().map(|f| f.lines_added).sum(),
            total_lines_removed: self
                .file_modifications
                .iter()
                .map(|f| f.lines_removed)
                .sum(),
        };
    }
}
