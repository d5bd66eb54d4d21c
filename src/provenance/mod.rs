//! Provenance: every run writes `.ouroboros/runs/<run_id>/artifact_metadata.json`, following the
//! seed's schema plus what a diffusion engine needs to be replayed and audited (device, dtype,
//! weights hash, sampler, schedule, seed, per-step timing, every retry's errors).

mod record;
mod redact;
mod store;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{SecondsFormat, Utc};

pub use record::{
    Attempt, FileModification, Metadata, ModelUsage, RefactorRecord, RunRecord, SafetyCheck,
    StepTiming, UnitRecord,
};
pub use redact::{redact, redact_json};
pub use store::{is_valid_run_id, ListedRun, RunStore, StoreError};

use crate::patch::{atomic_write, AppliedChange, PatchError};

pub const RECORD_FILE: &str = "artifact_metadata.json";

/// The error a record carries until its run finishes.
pub const UNFINISHED: &str = "the run did not finish (still running, or killed)";

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A new run id, `gen_YYYYMMDD_HHMMSS_<6 hex>`.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 3];
    // The id only needs to be unique among a repository's runs; if the OS has no entropy to
    // give, the clock's nanoseconds are a fine fallback.
    if getrandom::fill(&mut bytes).is_err() {
        let n = Utc::now().timestamp_subsec_nanos();
        bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    }
    format!(
        "gen_{}_{:02x}{:02x}{:02x}",
        Utc::now().format("%Y%m%d_%H%M%S"),
        bytes[0],
        bytes[1],
        bytes[2]
    )
}

/// Collects one run's record and writes it. If the logger is dropped without
/// [`finish`](ProvenanceLogger::finish) (an error path, a panic), the record is still written,
/// with `success: false`.
pub struct ProvenanceLogger {
    dir: PathBuf,
    record: RunRecord,
    started: Instant,
    finished: bool,
}

impl ProvenanceLogger {
    /// Start a run under `root/.ouroboros/runs/<run_id>/`, creating the directory.
    pub fn start(root: &Path, issue_description: &str) -> Result<ProvenanceLogger, PatchError> {
        let run_id = new_run_id();
        let dir = crate::patch::state_path(root, &format!("runs/{run_id}"))?;
        std::fs::create_dir_all(&dir).map_err(|source| PatchError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let logger = ProvenanceLogger {
            dir,
            record: RunRecord::new(run_id, issue_description, now_rfc3339()),
            started: Instant::now(),
            finished: false,
        };
        // A first record at once: a run killed before it finishes (kill -9, a power cut) is
        // still listed, as unfinished, and its journal, if any, says what it was writing.
        let mut first = logger.record.clone();
        first.error = Some(UNFINISHED.into());
        logger.save(&first)?;
        Ok(logger)
    }

    pub fn run_id(&self) -> &str {
        &self.record.run_id
    }

    pub fn run_dir(&self) -> &Path {
        &self.dir
    }

    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    pub fn log_model_usage(&mut self, usage: ModelUsage) {
        self.record.models_used.push(usage);
    }

    pub fn log_safety_check(
        &mut self,
        check_type: &str,
        passed: bool,
        details: String,
        file: Option<&str>,
    ) {
        self.record.safety_checks.push(SafetyCheck {
            check_type: check_type.to_string(),
            passed,
            details,
            timestamp: now_rfc3339(),
            file_path: file.map(str::to_string),
            ..SafetyCheck::default()
        });
    }

    /// A check with more to say than the seed's fields (tests, semantic findings).
    pub fn log_check(&mut self, check: SafetyCheck) {
        self.record.safety_checks.push(SafetyCheck {
            timestamp: now_rfc3339(),
            ..check
        });
    }

    pub fn log_file_modification(&mut self, change: &AppliedChange) {
        self.record.file_modifications.push(FileModification {
            file_path: change.file_path.clone(),
            original_hash: change.original_hash.clone(),
            modified_hash: change.modified_hash.clone(),
            lines_added: change.lines_added,
            lines_removed: change.lines_removed,
            backup_path: change.backup_path.clone(),
            timestamp: now_rfc3339(),
            write: Some(change.method.name().to_string()),
        });
    }

    pub fn set_refactor(&mut self, refactor: RefactorRecord) {
        self.record.refactor = Some(refactor);
    }

    pub fn log_attempt(&mut self, attempt: Attempt) {
        self.record.attempts.push(attempt);
    }

    /// Close the run and write its record. Returns the record's path.
    pub fn finish(mut self, success: bool, error: Option<String>) -> Result<PathBuf, PatchError> {
        self.finished = true;
        self.write(success, error)
    }

    fn write(&mut self, success: bool, error: Option<String>) -> Result<PathBuf, PatchError> {
        self.record.close(
            now_rfc3339(),
            self.started.elapsed().as_secs_f64(),
            success,
            error,
        );
        self.save(&self.record)
    }

    /// Write `record` (redacted: every string, the stored request and units included).
    fn save(&self, record: &RunRecord) -> Result<PathBuf, PatchError> {
        let mut value = serde_json::to_value(record).expect("a RunRecord always serializes");
        redact::redact_json(&mut value);
        let json = serde_json::to_vec_pretty(&value).expect("a JSON value always serializes");
        let path = self.dir.join(RECORD_FILE);
        atomic_write(&path, &json, None)?;
        Ok(path)
    }
}

impl Drop for ProvenanceLogger {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.write(false, Some("the run ended before it finished".into()));
        }
    }
}

#[cfg(test)]
mod tests;
