//! LLM-assisted planning: a chat model reads the graph plan's candidate units and the task,
//! picks the units that must change and says what to change in each. Its answer is checked
//! against the graph: units it names that the plan does not hold are dropped with a warning, and
//! an answer with no usable unit leaves the graph plan as it was.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::chat::{ChatError, ChatModel, ChatRequest, Message, ModelInfo};
use super::constrain::PlanForm;
use super::{names_match, Plan};
use crate::librarian::CodeGraph;

/// Above this many candidates the schema names no enum (servers compile enums into grammars,
/// and a long one costs more than the check it saves).
const ENUM_LIMIT: usize = 200;
/// A description longer than this is cut; it goes into generation prompts.
const DESCRIPTION_CHARS: usize = super::constrain::DEFAULT_CHANGE_BYTES;

#[derive(Debug, Clone)]
pub struct Options {
    pub max_tokens: usize,
    pub temperature: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refinement {
    pub model: ModelInfo,
    pub duration_ms: f64,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: String,
    /// The model's answer as it came.
    pub answer: String,
    /// Units it picked that the plan holds, in plan order.
    pub kept: Vec<String>,
    pub dropped: Vec<Dropped>,
    /// No usable unit in the answer: the graph plan stands unchanged.
    pub fell_back: bool,
}

impl Refinement {
    /// `local: kept 2, dropped 1` or `remote at URL: ...`, for the plan's header and provenance.
    pub fn summary(&self) -> String {
        format!(
            "{}{}: kept {}, dropped {}{}",
            self.model.kind,
            self.model
                .endpoint
                .as_ref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default(),
            self.kept.len(),
            self.dropped.len(),
            if self.fell_back {
                ", graph plan kept"
            } else {
                ""
            }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dropped {
    pub symbol: String,
    pub why: String,
}

#[derive(Deserialize)]
struct Answer {
    units: Vec<Pick>,
}

#[derive(Deserialize)]
struct Pick {
    symbol: String,
    #[serde(default)]
    change: String,
}

/// What is asked of the model: the task, the candidates, and the answer's JSON schema.
pub fn request(plan: &Plan, options: &Options) -> ChatRequest {
    let system = "You are the planning step of a code refactoring tool. From the candidate units \
        below, choose the ones that must change to carry out the task, and say in one sentence \
        what to change in each. Use the symbols exactly as listed. Answer with JSON only: \
        {\"units\": [{\"symbol\": \"<symbol>\", \"change\": \"<what to change>\"}]}";
    let mut user = format!(
        "Task: {}\n\nCandidate units (callees first):\n",
        plan.task.trim()
    );
    for u in &plan.units {
        user.push_str(&format!(
            "- {} ({} in {}, lines {}-{}; {} caller(s), {} callee(s)): {}\n",
            u.symbol,
            u.kind,
            u.file,
            u.lines.0,
            u.lines.1,
            u.callers.len(),
            u.callees.len(),
            u.signature.lines().next().unwrap_or("").trim()
        ));
    }
    let symbols: Vec<&str> = plan.units.iter().map(|u| u.symbol.as_str()).collect();
    let symbol_schema = if symbols.len() <= ENUM_LIMIT {
        json!({"type": "string", "enum": symbols})
    } else {
        json!({"type": "string"})
    };
    ChatRequest {
        messages: vec![Message::system(system), Message::user(user)],
        max_tokens: options.max_tokens,
        temperature: options.temperature,
        seed: options.seed,
        constraint: Some(PlanForm::new(
            &plan
                .units
                .iter()
                .map(|u| u.symbol.clone())
                .collect::<Vec<_>>(),
            DESCRIPTION_CHARS,
        )),
        json_schema: Some(json!({
            "type": "object",
            "properties": {
                "units": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"symbol": symbol_schema, "change": {"type": "string"}},
                        "required": ["symbol", "change"],
                    },
                },
            },
            "required": ["units"],
        })),
    }
}

/// Ask the model and apply its answer to the plan.
pub fn refine(
    plan: &Plan,
    graph: &CodeGraph,
    model: &mut dyn ChatModel,
    options: &Options,
) -> Result<(Plan, Refinement), ChatError> {
    let started = Instant::now();
    let reply = model.complete(&request(plan, options))?;
    let duration_ms = started.elapsed().as_secs_f64() * 1e3;
    let (refined, kept, dropped, fell_back) = apply_answer(plan, graph, &reply.text);
    Ok((
        refined,
        Refinement {
            model: model.info(),
            duration_ms,
            prompt_tokens: reply.prompt_tokens,
            completion_tokens: reply.completion_tokens,
            finish_reason: reply.finish_reason,
            answer: reply.text,
            kept,
            dropped,
            fell_back,
        },
    ))
}

/// The first JSON object in the text that has a `units` list: models wrap answers in prose or
/// code fences even when told not to.
fn parse_answer(text: &str) -> Option<Answer> {
    text.match_indices('{').take(64).find_map(|(i, _)| {
        serde_json::Deserializer::from_str(&text[i..])
            .into_iter::<Answer>()
            .next()
            .and_then(Result::ok)
    })
}

/// The plan narrowed to the answer's units, with their descriptions; what was kept; what was
/// dropped and why; and whether the answer was unusable.
pub fn apply_answer(
    plan: &Plan,
    graph: &CodeGraph,
    answer: &str,
) -> (Plan, Vec<String>, Vec<Dropped>, bool) {
    let mut refined = plan.clone();
    let Some(parsed) = parse_answer(answer) else {
        refined.warnings.push(
            "reasoner: the answer holds no JSON object with a \"units\" list; the graph plan is used as it is"
                .into(),
        );
        return (refined, Vec::new(), Vec::new(), true);
    };
    let mut dropped = Vec::new();
    let mut changes: Vec<Option<String>> = vec![None; plan.units.len()];
    for pick in parsed.units {
        let name = pick.symbol.trim();
        let exact = plan.units.iter().position(|u| u.symbol == name);
        let index = exact.or_else(|| {
            let mut matching = graph
                .graph
                .nodes
                .iter()
                .filter(|n| names_match(n, name))
                .filter_map(|n| plan.units.iter().position(|u| u.symbol == n.symbol));
            match (matching.next(), matching.next()) {
                (Some(i), None) => Some(i),
                _ => None,
            }
        });
        let Some(i) = index else {
            let known = graph.graph.nodes.iter().any(|n| names_match(n, name));
            let why = if name.is_empty() {
                "empty symbol".to_string()
            } else if known {
                "in the code graph but not a unit of the plan (only the targets' units can be picked)".to_string()
            } else {
                "no such symbol in the code graph".to_string()
            };
            dropped.push(Dropped {
                symbol: name.to_string(),
                why,
            });
            continue;
        };
        let change: String = pick.change.trim().chars().take(DESCRIPTION_CHARS).collect();
        let slot = &mut changes[i];
        match slot {
            Some(existing) if !change.is_empty() && !existing.contains(&change) => {
                existing.push_str("; ");
                existing.push_str(&change);
            }
            Some(_) => {}
            None => *slot = Some(change),
        }
    }
    for d in &dropped {
        refined
            .warnings
            .push(format!("reasoner: dropped {:?}: {}", d.symbol, d.why));
    }
    if changes.iter().all(Option::is_none) {
        refined.warnings.push(
            "reasoner: the answer named no unit of the plan; the graph plan is used as it is"
                .into(),
        );
        return (refined, Vec::new(), dropped, true);
    }
    let mut kept = Vec::new();
    refined.units = plan
        .units
        .iter()
        .zip(changes)
        .filter_map(|(u, change)| {
            let change = change?;
            let mut u = u.clone();
            u.reason = format!("{}; picked by the reasoner model", u.reason);
            u.description = (!change.is_empty()).then_some(change);
            kept.push(u.symbol.clone());
            Some(u)
        })
        .collect();
    (refined, kept, dropped, false)
}
