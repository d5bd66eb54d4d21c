//! The end of a run: write what may be written (stale check, backup, atomic write), save the
//! diff, and record everything in the run's provenance.

use std::path::PathBuf;

use super::decide::{Decisions, FileStatus};
use super::judge::TestStatus;
use super::request::{Recorded, Request, RunOptions, RECORD_VERSION};
use super::{Outcome, PipelineError};
use crate::behaviour::Outcome as TestOutcome;
use crate::device::dtype_name;
use crate::engine::Engine;
use crate::interrupt;
use crate::patch::{self, Diff};
use crate::provenance::{
    Attempt, ModelUsage, ProvenanceLogger, RefactorRecord, SafetyCheck, StepTiming, UnitRecord,
};

/// What a finished run tells its caller to print.
pub struct RunReport {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// `artifact_metadata.json`.
    pub record: PathBuf,
    pub units: Vec<UnitRecord>,
    pub warnings: Vec<String>,
    /// The unified diff of every changed file (also saved as `changes.diff`).
    pub diffs: String,
    /// Every changed file was written.
    pub all_applied: bool,
    /// Every unit was applied or can be.
    pub all_good: bool,
    pub interrupted: bool,
}

/// A run that stopped with an error, and where its record (`success: false`) was written.
#[derive(Debug)]
pub struct RunFailure {
    pub error: Box<PipelineError>,
    pub record: Option<PathBuf>,
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for RunFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// Close a run that failed: its record says why.
pub fn failed(log: ProvenanceLogger, error: PipelineError) -> RunFailure {
    let record = log.finish(false, Some(chain(&error))).ok();
    RunFailure {
        error: Box::new(error),
        record,
    }
}

/// An error and its causes on one line, as the record keeps them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    text
}

/// Apply, save the diff and fill the record; the caller closes it with [`close`].
#[allow(clippy::too_many_arguments)]
pub fn finish(
    root: &std::path::Path,
    log: &mut ProvenanceLogger,
    outcome: &Outcome,
    decisions: &mut Decisions,
    request: &Request,
    options: &RunOptions,
    engine: &Engine,
    weights: &str,
) -> Result<RunReport, PipelineError> {
    record_models(log, outcome, engine, weights, options);
    record_checks(log, outcome);
    let write = options.apply.auto_apply && !options.apply.dry_run;
    let mut diffs = String::new();
    for f in &outcome.files {
        log.log_safety_check(
            "syntax_validation",
            f.valid,
            if f.valid {
                format!("{} gate passed on the patched file", f.report.language)
            } else {
                format!(
                    "{} gate failed: {}",
                    f.report.language, f.report.error_summary
                )
            },
            Some(&f.file),
        );
        diffs.push_str(&Diff::new(&f.file, &f.original, &f.patched).unified);
    }
    if write && !interrupt::requested() {
        write_files(root, log, outcome, decisions)?;
    }
    if !diffs.is_empty() {
        let path = log.run_dir().join("changes.diff");
        // The saved diff is redacted as the record is; the one printed is the user's own.
        std::fs::write(&path, crate::provenance::redact(&diffs)).map_err(|source| {
            PipelineError::Write {
                path: path.display().to_string(),
                source,
            }
        })?;
    }
    let units = unit_records(outcome, decisions);
    log_attempts(log, outcome);
    let recorded = Recorded {
        version: RECORD_VERSION,
        request: request.clone(),
        options: options.clone(),
        weights_sha256: weights.to_string(),
    };
    let mut warnings = Vec::new();
    if !options.tests.enabled {
        warnings.push("--no-tests: no test ran; statuses rest on the syntax gate, the semantic checks and the risk score alone".to_string());
    }
    log.set_refactor(RefactorRecord {
        request: serde_json::to_value(&recorded).expect("a request always serializes"),
        inputs: outcome.inputs.clone(),
        units: units.clone(),
        reasoner: outcome
            .refinement
            .as_ref()
            .map(|r| serde_json::to_value(r).expect("a refinement always serializes")),
        warnings: warnings.clone(),
        test_runs: outcome.test_totals.0,
        test_ms: outcome.test_totals.1,
    });
    let all_good = !units.is_empty() && outcome.units.iter().all(|u| decisions.unit(u).is_good());
    Ok(RunReport {
        run_id: log.run_id().to_string(),
        run_dir: log.run_dir().to_path_buf(),
        record: PathBuf::new(),
        units,
        warnings: outcome
            .plan
            .warnings
            .iter()
            .cloned()
            .chain(warnings)
            .collect(),
        all_applied: decisions.files.values().all(|s| *s == FileStatus::Applied),
        diffs,
        all_good,
        interrupted: interrupt::requested(),
    })
}

/// Every file that can be applied, in one journaled step (see `patch::apply_all`); a file that
/// changed during the run is left as it is and marked stale.
fn write_files(
    root: &std::path::Path,
    log: &mut ProvenanceLogger,
    outcome: &Outcome,
    decisions: &mut Decisions,
) -> Result<(), PipelineError> {
    let ready: Vec<&super::FileOutcome> = outcome
        .files
        .iter()
        .filter(|f| decisions.files.get(&f.file) == Some(&FileStatus::CanApply))
        .collect();
    let changes: Vec<(&patch::Snapshot, &[u8])> = ready
        .iter()
        .map(|f| (&f.snapshot, f.patched.as_bytes()))
        .collect();
    let results = patch::apply_all(root, log.run_dir(), &changes)?;
    for (f, result) in ready.iter().zip(results) {
        let status = match result {
            Ok(change) => {
                log.log_file_modification(&change);
                FileStatus::Applied
            }
            Err(patch::PatchError::Stale { .. }) => FileStatus::Stale,
            Err(e) => return Err(e.into()),
        };
        decisions.files.insert(f.file.clone(), status);
    }
    Ok(())
}

/// Write the record of a finished run, then let its journal go: the record holds it all now.
pub fn close(log: ProvenanceLogger, mut report: RunReport) -> Result<RunReport, PipelineError> {
    let error = if report.interrupted {
        Some("interrupted".to_string())
    } else if report.all_good {
        None
    } else {
        Some("some units are invalid, skipped or over --max-risk".to_string())
    };
    report.record = log.finish(report.all_good && !report.interrupted, error)?;
    patch::journal::complete(&report.run_dir)?;
    Ok(report)
}

fn unit_records(outcome: &Outcome, decisions: &Decisions) -> Vec<UnitRecord> {
    outcome
        .units
        .iter()
        .map(|u| {
            let built = u.built();
            UnitRecord {
                symbol: u.symbol.clone(),
                file: u.file.clone(),
                status: decisions.unit(u).text(),
                valid: built.is_some_and(|b| b.valid),
                risk: built.map_or(0.0, |b| b.risk.score),
                risk_terms: built
                    .map(|b| {
                        b.risk
                            .terms
                            .iter()
                            .map(|t| (t.name.to_string(), t.value))
                            .collect()
                    })
                    .unwrap_or_default(),
                retries: built.map_or(0, |b| b.retries),
                span: built.map_or(0, |b| b.span),
                steps: built.map_or(0, |b| b.steps),
                forward_passes: built.map_or(0, |b| b.forward_passes),
                body_sha256: u.body_sha256().to_string(),
                tokens_before: u.context.tokens_before,
                tokens_after: u.context.tokens_after,
                compression_ratio: u.context.compression_ratio,
                tests: built.map_or("-".to_string(), |b| b.tests.text()),
                failing_tests: match built.map(|b| &b.tests) {
                    Some(TestStatus::Broken { failing }) => failing.clone(),
                    _ => Vec::new(),
                },
                semantic: built
                    .map(|b| {
                        b.findings
                            .iter()
                            .map(|f| {
                                format!("{}:{} {}: {}", f.line, f.column, f.check.name(), f.message)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                batched: built.is_some_and(|b| b.batched),
            }
        })
        .collect()
}

/// One `tests` check per test run (the baselines, then each unit's final draft) and one
/// `semantic` check per finding.
fn record_checks(log: &mut ProvenanceLogger, outcome: &Outcome) {
    for run in &outcome.test_baselines {
        let failed = run.count(|o| matches!(o, TestOutcome::Failed(_)));
        log.log_check(SafetyCheck {
            check_type: "tests".into(),
            // A baseline is not a verdict; its failures are the ones no change is blamed for.
            passed: true,
            details: format!(
                "baseline: {} passed, {failed} failed before any change",
                run.count(|o| *o == TestOutcome::Passed)
            ),
            command: Some(run.command.clone()),
            duration_ms: Some(run.duration_ms),
            tests_passed: Some(run.count(|o| *o == TestOutcome::Passed)),
            tests_failed: Some(failed),
            failing: failing_ids(run),
            ..SafetyCheck::default()
        });
    }
    for u in &outcome.units {
        let Some(b) = u.built() else { continue };
        if let Some(v) = &b.test_run {
            let run = &v.run;
            let broken: Vec<String> = v.broken.iter().map(|(id, _)| id.clone()).collect();
            log.log_check(SafetyCheck {
                check_type: "tests".into(),
                passed: v.passed(),
                details: if v.passed() {
                    format!(
                        "{} test(s) that passed before pass with the change ({} failed before and still may)",
                        v.protected,
                        v.preexisting.len()
                    )
                } else {
                    format!("breaks {} test(s): {}", broken.len(), broken.join(", "))
                },
                file_path: Some(u.file.clone()),
                unit: Some(u.symbol.clone()),
                command: Some(run.command.clone()),
                duration_ms: Some(run.duration_ms),
                tests_passed: Some(run.count(|o| *o == TestOutcome::Passed)),
                tests_failed: Some(run.count(|o| matches!(o, TestOutcome::Failed(_)))),
                failing: broken,
                // What the failing tests said, then the end of what the run printed.
                output_tail: (!v.passed())
                    .then(|| format!("{}\n{}", v.feedback(), run.output_tail).trim().to_string()),
                ..SafetyCheck::default()
            });
        }
        for f in &b.findings {
            log.log_check(SafetyCheck {
                check_type: "semantic".into(),
                passed: false,
                details: format!("{}: {}", f.check.name(), f.message),
                file_path: Some(u.file.clone()),
                unit: Some(u.symbol.clone()),
                line: Some(f.line),
                ..SafetyCheck::default()
            });
        }
    }
}

fn failing_ids(run: &crate::behaviour::TestRun) -> Vec<String> {
    run.outcomes
        .iter()
        .filter(|(_, o)| matches!(o, TestOutcome::Failed(_)))
        .map(|(id, _)| id.clone())
        .collect()
}

fn log_attempts(log: &mut ProvenanceLogger, outcome: &Outcome) {
    for u in &outcome.units {
        for a in u.built().map(|b| b.attempts.as_slice()).unwrap_or_default() {
            log.log_attempt(Attempt {
                unit: u.symbol.clone(),
                attempt: a.attempt,
                action: a.action.name().to_string(),
                passed: a.passed,
                errors: a.errors.clone(),
                steps: Some(a.steps as u32),
                remasked_tokens: a.remasked.map(|n| n as u32),
                duration_ms: a.duration_ms,
            });
        }
    }
}

/// One `models_used` entry per phase and model, named as the seed's schema names them.
fn record_models(
    log: &mut ProvenanceLogger,
    outcome: &Outcome,
    engine: &Engine,
    weights: &str,
    options: &RunOptions,
) {
    let model = &engine.model;
    let remote = engine.remote.as_ref();
    let device = match remote {
        Some(_) => "remote".to_string(),
        None => engine.device.to_string(),
    };
    let dtype = dtype_name(model.dtype).to_string();
    let generator_name = remote.map_or(model.name.clone(), |r| r.model.clone());
    let endpoint = remote.map(|r| r.base.clone());
    if let Some(r) = &outcome.refinement {
        log.log_model_usage(ModelUsage {
            phase: "reasoner".into(),
            model_name: r.model.model.clone(),
            purpose: format!("refining the plan ({})", r.summary()),
            tokens_used: (r.prompt_tokens + r.completion_tokens) as u64,
            duration_ms: r.duration_ms,
            device: r.model.device.clone(),
            weights_sha256: r.model.weights_sha256.clone(),
            ..ModelUsage::default()
        });
    }
    let before: usize = outcome.units.iter().map(|u| u.context.tokens_before).sum();
    let after: usize = outcome.units.iter().map(|u| u.context.tokens_after).sum();
    // The scoring model is the generator unless another one (`--scorer causal`) was named.
    let scorer = outcome.units.iter().find_map(|u| u.context.scorer.as_ref());
    log.log_model_usage(ModelUsage {
        phase: "compressor".into(),
        model_name: scorer.map_or(generator_name.clone(), |s| s.model.clone()),
        purpose: format!(
            "ranking context ({}) and fitting it to the generator's budget",
            options.compress.scorer
        ),
        tokens_used: after as u64,
        duration_ms: outcome.compress_ms,
        compression_ratio: Some(if before == 0 {
            1.0
        } else {
            after as f64 / before as f64
        }),
        device: Some(device.clone()),
        dtype: Some(dtype.clone()),
        weights_sha256: Some(scorer.map_or(weights.to_string(), |s| s.weights_sha256.clone())),
        endpoint: endpoint.clone().filter(|_| scorer.is_none()),
        ..ModelUsage::default()
    });
    let mode = outcome.mode;
    for u in &outcome.units {
        let Some(b) = u.built() else { continue };
        log.log_model_usage(ModelUsage {
            phase: "generator".into(),
            model_name: generator_name.clone(),
            purpose: format!("writing {} ({mode})", u.symbol),
            tokens_used: b.span as u64,
            duration_ms: b.seconds * 1e3,
            num_steps: Some(b.steps as u32),
            retry_count: Some(b.retries),
            device: Some(device.clone()),
            dtype: Some(dtype.clone()),
            weights_sha256: Some(weights.to_string()),
            sampler: Some(outcome.sampler.name().to_string()),
            step_schedule: Some(b.step_schedule.clone()),
            seed: Some(options.build.sampling.seed),
            step_timing: StepTiming::from_ms(&b.step_ms),
            endpoint: endpoint.clone(),
            repair: remote.map(|r| {
                match r.native {
                    true => "re-masking, denoised by the server (/v1/ouroboros/denoise)",
                    false => "regeneration with the gate's errors fed back (the server has no denoise endpoint)",
                }
                .to_string()
            }),
            ..ModelUsage::default()
        });
    }
}
