//! The self-healing loop: write a unit, judge it, and on failure try again, up to
//! `max_retries` times. A [`Judge`] gives the verdict: the syntax gate on the patched file, and
//! whatever else the caller checks (the pipeline runs the tests that reach the unit). Failures
//! of the syntax gate alternate two ways of fixing them:
//! 1. **repair** (first): re-mask only the tokens around the gate's error spans and denoise them
//!    with the rest of the canvas fixed;
//! 2. **regenerate**: write the body afresh with another seed, with the gate's error summary
//!    added to the context as a comment (the seed's method, in infill form).
//!
//! Code that parses but fails the rest of the judgement (a test it breaks) is regenerated, with
//! what failed as the feedback: there are no error spans to re-mask. Repair works on the latest
//! draft, so a regeneration followed by a repair polishes the new body. Every attempt is logged
//! for provenance.

use std::time::Instant;

use super::{BuildError, Builder, Draft, Pending, Prompt};
use crate::diffusion::{Canvas, GenerateConfig};
use crate::gate::{Gate, GateReport};
use crate::lang::{Language, SourceKind};

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

/// A judge's verdict on a draft.
pub struct Verdict {
    /// The syntax gate on the patched file.
    pub report: GateReport,
    /// Why code that parses is still not good enough, in words a regeneration can use.
    pub rejected: Option<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.report.is_valid && self.rejected.is_none()
    }

    /// What the next attempt is told.
    fn feedback(&self) -> Feedback<'_> {
        match &self.rejected {
            Some(why) if self.report.is_valid => Feedback::Rejected(why),
            _ => Feedback::Parse(&self.report.error_summary),
        }
    }
}

/// Judges each draft of a unit.
pub trait Judge {
    fn judge(&mut self, site: &Site, draft: &Draft) -> Result<Verdict, BuildError>;
}

/// The syntax gate alone.
pub struct SyntaxJudge<'g>(pub &'g Gate);

impl Judge for SyntaxJudge<'_> {
    fn judge(&mut self, site: &Site, draft: &Draft) -> Result<Verdict, BuildError> {
        Ok(Verdict {
            report: syntax(self.0, site, draft),
            rejected: None,
        })
    }
}

pub struct Healed {
    pub draft: Draft,
    pub report: GateReport,
    /// Why the final draft was rejected although it parses (see [`Verdict::rejected`]).
    pub rejected: Option<String>,
    pub attempts: Vec<AttemptLog>,
    /// The first generation's body tokens and its denoising time, before any healing.
    pub first_body_tokens: Vec<u32>,
    pub first_seconds: f64,
}

impl Healed {
    pub fn passed(&self) -> bool {
        self.report.is_valid && self.rejected.is_none()
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

/// What went wrong with the previous attempt, for the next one's prompt.
#[derive(Debug, Clone, Copy)]
pub enum Feedback<'a> {
    /// The gate's error summary: the code did not parse.
    Parse(&'a str),
    /// It parsed but was rejected (the tests it broke, with their messages).
    Rejected(&'a str),
}

impl Feedback<'_> {
    pub fn text(&self) -> &str {
        match self {
            Feedback::Parse(t) | Feedback::Rejected(t) => t,
        }
    }

    /// How the prompt introduces it.
    pub fn heading(&self) -> &'static str {
        match self {
            Feedback::Parse(_) => "failed to parse",
            Feedback::Rejected(_) => "parsed but broke the project's tests",
        }
    }
}

/// Renders the instruct prompt, with what was wrong with a failed attempt if any.
pub type RenderPrompt<'a> = &'a dyn Fn(Option<Feedback>) -> Result<Prompt, minijinja::Error>;

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
    feedback: Option<Feedback>,
) -> Result<Draft, BuildError> {
    builder.complete(pending(builder, site, cfg, feedback)?)
}

/// The canvas the first draft of `site` denoises, for [`Builder::prefetch`].
pub fn first_canvas(
    builder: &Builder,
    site: &Site,
    cfg: &GenerateConfig,
) -> Result<(Canvas, GenerateConfig), BuildError> {
    let p = pending(builder, site, cfg, None)?;
    Ok((p.canvas, p.cfg))
}

fn pending(
    builder: &Builder,
    site: &Site,
    cfg: &GenerateConfig,
    feedback: Option<Feedback>,
) -> Result<Pending, BuildError> {
    match &site.request {
        Request::Infill { lines, context } => {
            let context = match feedback {
                Some(f) => format!("{context}{}", feedback_comment(site.kind.language, f)),
                None => context.to_string(),
            };
            builder.plan_infill(site.original, *lines, &context, site.span, cfg)
        }
        Request::Instruct {
            lines,
            name,
            render,
        } => {
            let prompt = render(feedback)?;
            builder.plan_instruct(&prompt, site.original, *lines, name, site.span, cfg)
        }
    }
}

/// The gate's verdict on a draft; a draft with no usable code fails whatever the gate says
/// (an instruct answer that dropped the unit would otherwise pass as a deletion).
pub fn syntax(gate: &Gate, site: &Site, draft: &Draft) -> GateReport {
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
    judge: &mut dyn Judge,
    site: &Site,
    cfg: &GenerateConfig,
    opts: HealOptions,
) -> Result<Healed, BuildError> {
    let started = Instant::now();
    let mut draft = write(builder, site, cfg, None)?;
    let mut verdict = judge.judge(site, &draft)?;
    let mut attempts = vec![log(0, Action::Generate, &draft, &verdict, None, started)];
    let first_body_tokens = draft.body_tokens();
    let first_seconds = draft.generation.seconds;
    for attempt in 1..=opts.max_retries {
        if verdict.passed() {
            break;
        }
        let started = Instant::now();
        let repairable = !verdict.report.is_valid && builder.can_repair();
        let (action, remasked) = if repairable && attempt % 2 == 1 {
            let errors: Vec<_> = verdict
                .report
                .blocking()
                .map(|e| e.byte_range.clone())
                .collect();
            let (fixed, n) = builder.repair(&draft, &errors, opts.margin, cfg)?;
            draft = fixed;
            (Action::Repair, Some(n))
        } else {
            let reseeded = GenerateConfig {
                seed: cfg.seed.wrapping_add(attempt as u64),
                ..cfg.clone()
            };
            draft = write(builder, site, &reseeded, Some(verdict.feedback()))?;
            (Action::Regenerate, None)
        };
        verdict = judge.judge(site, &draft)?;
        attempts.push(log(attempt, action, &draft, &verdict, remasked, started));
    }
    Ok(Healed {
        draft,
        report: verdict.report,
        rejected: verdict.rejected,
        attempts,
        first_body_tokens,
        first_seconds,
    })
}

fn log(
    attempt: u32,
    action: Action,
    draft: &Draft,
    verdict: &Verdict,
    remasked: Option<usize>,
    started: Instant,
) -> AttemptLog {
    AttemptLog {
        attempt,
        action,
        passed: verdict.passed(),
        errors: verdict
            .feedback()
            .text()
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

/// What went wrong as a comment ahead of the file, so the regenerated body sees what broke.
fn feedback_comment(language: Language, feedback: Feedback) -> String {
    let c = language.line_comment();
    let mut out = format!(
        "{c} A previous version of the code below {}:\n",
        feedback.heading()
    );
    for line in feedback.text().lines().filter(|l| !l.trim().is_empty()) {
        out.push_str(&format!("{c}   {line}\n"));
    }
    out
}
