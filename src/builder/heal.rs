//! The self-healing loop: write a unit, judge the patched file with the gate, and on failure
//! try again, up to `max_retries` times, alternating two ways of fixing it:
//! 1. **repair** (first): re-mask only the tokens around the gate's error spans and denoise them
//!    with the rest of the canvas fixed;
//! 2. **regenerate**: write the body afresh with another seed, with the gate's error summary
//!    added to the context as a comment (the seed's method, in infill form).
//!
//! Repair works on the latest draft, so a regeneration followed by a repair polishes the new
//! body. Every attempt is logged for provenance.

use std::time::Instant;

use super::{BuildError, Builder, Draft};
use crate::diffusion::GenerateConfig;
use crate::gate::{Gate, GateReport, Language, SourceKind};

#[derive(Debug, Clone, Copy)]
pub struct HealOptions {
    pub max_retries: u32,
    /// Tokens re-masked on each side of a damaged token.
    pub margin: usize,
}

impl Default for HealOptions {
    fn default() -> Self {
        HealOptions {
            max_retries: 3,
            margin: 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Generate,
    Repair,
    Regenerate,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Generate => "generate",
            Action::Repair => "repair",
            Action::Regenerate => "regenerate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttemptLog {
    /// 0 for the first generation, then 1..=max_retries.
    pub attempt: u32,
    pub action: Action,
    pub passed: bool,
    /// The gate's error summary for this attempt's output (empty when it passed).
    pub errors: Vec<String>,
    pub steps: usize,
    pub forward_passes: usize,
    pub remasked: Option<usize>,
    pub duration_ms: f64,
}

pub struct Healed {
    pub draft: Draft,
    pub report: GateReport,
    pub attempts: Vec<AttemptLog>,
    /// The first generation's body tokens and its denoising time, before any healing.
    pub first_body_tokens: Vec<u32>,
    pub first_seconds: f64,
}

impl Healed {
    pub fn passed(&self) -> bool {
        self.report.is_valid
    }
    pub fn passed_first(&self) -> bool {
        self.attempts.first().is_some_and(|a| a.passed)
    }
}

/// What the unit is and where it goes.
pub struct Site<'a> {
    pub original: &'a str,
    pub kind: SourceKind,
    pub request: Request<'a>,
    pub span: usize,
}

/// Renders the instruct prompt, with the gate's error summary from a failed attempt if any.
pub type RenderPrompt<'a> = &'a dyn Fn(Option<&str>) -> Result<String, minijinja::Error>;

pub enum Request<'a> {
    /// Replace the body lines (1-based, inclusive) with `context` ahead of the file.
    Infill {
        lines: (usize, usize),
        context: &'a str,
    },
    /// Replace the unit's whole lines with the code of a chat answer that defines `name`.
    Instruct {
        lines: (usize, usize),
        name: &'a str,
        render: RenderPrompt<'a>,
    },
}

fn write(
    builder: &Builder,
    site: &Site,
    cfg: &GenerateConfig,
    feedback: Option<&str>,
) -> Result<Draft, BuildError> {
    match &site.request {
        Request::Infill { lines, context } => {
            let context = match feedback {
                Some(summary) => {
                    format!("{context}{}", feedback_comment(site.kind.language, summary))
                }
                None => context.to_string(),
            };
            builder.infill(site.original, *lines, &context, site.span, cfg)
        }
        Request::Instruct {
            lines,
            name,
            render,
        } => {
            let prompt = render(feedback)?;
            builder.instruct(&prompt, site.original, *lines, name, site.span, cfg)
        }
    }
}

/// The gate's verdict on a draft; a draft with no usable code fails whatever the gate says
/// (an instruct answer that dropped the unit would otherwise pass as a deletion).
fn judge(gate: &Gate, site: &Site, draft: &Draft) -> GateReport {
    let mut report = gate.check_change(site.original, &draft.patched(), site.kind);
    if let Some(problem) = &draft.problem {
        report.is_valid = false;
        report.error_summary = format!("{problem}\n{}", report.error_summary)
            .trim_end()
            .to_string();
    }
    report
}

pub fn build(
    builder: &Builder,
    gate: &Gate,
    site: &Site,
    cfg: &GenerateConfig,
    opts: HealOptions,
) -> Result<Healed, BuildError> {
    let started = Instant::now();
    let mut draft = write(builder, site, cfg, None)?;
    let mut report = judge(gate, site, &draft);
    let mut attempts = vec![log(0, Action::Generate, &draft, &report, None, started)];
    let first_body_tokens = draft.body_tokens();
    let first_seconds = draft.generation.seconds;
    for attempt in 1..=opts.max_retries {
        if report.is_valid {
            break;
        }
        let started = Instant::now();
        let (action, remasked) = if attempt % 2 == 1 {
            let errors: Vec<_> = report.blocking().map(|e| e.byte_range.clone()).collect();
            let (fixed, n) = builder.repair(&draft, &errors, opts.margin, cfg)?;
            draft = fixed;
            (Action::Repair, Some(n))
        } else {
            let reseeded = GenerateConfig {
                seed: cfg.seed.wrapping_add(attempt as u64),
                ..cfg.clone()
            };
            draft = write(builder, site, &reseeded, Some(&report.error_summary))?;
            (Action::Regenerate, None)
        };
        report = judge(gate, site, &draft);
        attempts.push(log(attempt, action, &draft, &report, remasked, started));
    }
    Ok(Healed {
        draft,
        report,
        attempts,
        first_body_tokens,
        first_seconds,
    })
}

fn log(
    attempt: u32,
    action: Action,
    draft: &Draft,
    report: &GateReport,
    remasked: Option<usize>,
    started: Instant,
) -> AttemptLog {
    AttemptLog {
        attempt,
        action,
        passed: report.is_valid,
        errors: report
            .error_summary
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect(),
        steps: draft.generation.step_ms.len(),
        forward_passes: draft.generation.forward_passes,
        remasked,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

/// The gate's summary as a comment ahead of the file, so the regenerated body sees what broke.
fn feedback_comment(language: Language, summary: &str) -> String {
    let c = if language == Language::Python {
        "#"
    } else {
        "//"
    };
    let mut out = format!("{c} A previous version of the code below failed to parse:\n");
    for line in summary.lines().filter(|l| !l.trim().is_empty()) {
        out.push_str(&format!("{c}   {line}\n"));
    }
    out
}
