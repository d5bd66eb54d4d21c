//! The reasoner's local planner: from a task, target files and optional function names, a
//! `Plan` of edit units built from the code graph alone (no model).
//!
//! Each unit is one function, method or (method-less) class, with why it is in the plan, its
//! callers, callees, blast radius and the tests that reach it, and the context it needs. Units
//! that call each other are ordered callees first, so a changed helper is rewritten before the
//! code that uses it.
//!
//! A chat model may then refine the plan ([`refine`]): pick the units that must change and say
//! what to change in each. It runs in-process ([`local`]: a GGUF file or a Hugging Face checkpoint) or behind an
//! OpenAI-compatible endpoint ([`remote`]); what it proposes is checked against the graph.

pub mod chat;
pub mod constrain;
pub mod local;
pub mod refine;
pub mod remote;
pub mod spec;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::librarian::extract::NodeKind;
use crate::librarian::resolve::{EdgeKind, GraphNode};
use crate::librarian::CodeGraph;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "--target {0}: the code graph has no such file (is it indexed, and inside the repository?)"
    )]
    UnknownTarget(String),
    #[error("--function {name}: no function, method or class of that name in {targets}; they define: {available}")]
    UnknownFunction {
        name: String,
        targets: String,
        available: String,
    },
    #[error("the task is empty: say in words what the change should do")]
    EmptyTask,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub task: String,
    pub units: Vec<EditUnit>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EditUnit {
    pub symbol: String,
    pub kind: &'static str,
    pub file: String,
    pub lines: (usize, usize),
    pub signature: String,
    /// Why the planner chose it.
    pub reason: String,
    /// What to change in it, when a reasoner model said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub callers: Vec<String>,
    pub callees: Vec<String>,
    /// How many symbols depend on it, transitively.
    pub blast_radius: usize,
    pub tests: Vec<String>,
    /// Whether code outside its module may use it (no leading underscore; for JS/TS, exported).
    pub public_api: bool,
    /// What the unit needs to see, best first; the compressor fits it to the generator's budget.
    pub context_items: Vec<ContextItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContextItem {
    pub symbol: String,
    pub file: String,
    pub lines: (usize, usize),
    /// The definition's head (`def f(x) -> int`, `class A(B)`), what a signature-only form shows.
    pub signature: String,
    /// The first line of its docstring, if it has one.
    pub doc: Option<String>,
    pub role: ContextRole,
    /// Higher first; the compressor keeps what it can from the top.
    pub priority: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextRole {
    /// A definition the unit calls, reads or inherits: its code is needed to edit the unit.
    Definition,
    /// A caller: its signature and call site show how the unit is used.
    CallerSignature,
}

/// Priorities: what the unit uses matters most, callers less; within a role, the personalised
/// PageRank from the unit orders the items.
const DEFINITION_PRIORITY: f64 = 1.0;
const CALLER_PRIORITY: f64 = 0.5;

pub fn plan(
    graph: &CodeGraph,
    task: &str,
    targets: &[String],
    functions: &[String],
) -> Result<Plan, PlanError> {
    if task.trim().is_empty() {
        return Err(PlanError::EmptyTask);
    }
    let mut chosen: Vec<(&GraphNode, String)> = Vec::new();
    for target in targets {
        let in_file: Vec<&GraphNode> = graph
            .graph
            .nodes
            .iter()
            .filter(|n| &n.file == target)
            .collect();
        if in_file.is_empty() {
            return Err(PlanError::UnknownTarget(target.clone()));
        }
        let editable: Vec<&GraphNode> = in_file
            .iter()
            .copied()
            .filter(|n| matches!(n.kind, NodeKind::Function | NodeKind::Method))
            .chain(in_file.iter().copied().filter(|c| {
                c.kind == NodeKind::Class
                    && !in_file.iter().any(|m| {
                        m.kind == NodeKind::Method
                            && m.symbol.starts_with(&format!("{}.", c.symbol))
                    })
            }))
            .collect();
        for n in editable {
            chosen.push((n, format!("defined in the target file {target}")));
        }
    }
    if !functions.is_empty() {
        let mut kept = Vec::new();
        for name in functions {
            let matching: Vec<_> = chosen
                .iter()
                .filter(|(n, _)| names_match(n, name))
                .map(|(n, _)| (*n, format!("named with --function {name}")))
                .collect();
            if matching.is_empty() {
                const SHOWN: usize = 20;
                let mut available: Vec<&str> =
                    chosen.iter().map(|(n, _)| n.symbol.as_str()).collect();
                let more = available.len().saturating_sub(SHOWN);
                available.truncate(SHOWN);
                let mut available = available.join(", ");
                if more > 0 {
                    available.push_str(&format!(" and {more} more"));
                }
                if available.is_empty() {
                    available = "nothing editable".into();
                }
                return Err(PlanError::UnknownFunction {
                    name: name.clone(),
                    targets: targets.join(", "),
                    available,
                });
            }
            kept.extend(matching);
        }
        chosen = kept;
    }
    let mut seen = HashSet::new();
    chosen.retain(|(n, _)| seen.insert(n.id.clone()));

    let mut warnings = Vec::new();
    let ids: HashSet<&str> = chosen.iter().map(|(n, _)| n.id.as_str()).collect();
    let mut units: Vec<EditUnit> = chosen
        .iter()
        .map(|(n, reason)| unit(graph, n, reason.clone()))
        .collect();
    let mut unresolved_by_unit: HashMap<&str, Vec<&str>> = HashMap::new();
    for u in &graph.graph.unresolved {
        if ids.contains(u.source.as_str()) {
            unresolved_by_unit
                .entry(u.source.as_str())
                .or_default()
                .push(u.name.as_str());
        }
    }
    for (n, _) in &chosen {
        if let Some(unresolved) = unresolved_by_unit.get(n.id.as_str()) {
            warnings.push(format!(
                "{}: {} call(s) the graph could not resolve ({}); their behaviour is unknown to the plan",
                n.symbol,
                unresolved.len(),
                unresolved.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for u in &units {
        if u.public_api && !u.callers.is_empty() {
            warnings.push(format!(
                "{} is public API with {} caller(s); changing its signature breaks them",
                u.symbol,
                u.callers.len()
            ));
        }
    }
    let order = callees_first(graph, &chosen, &ids, &mut warnings);
    let mut by_id: HashMap<String, EditUnit> = chosen
        .iter()
        .map(|(n, _)| n.id.clone())
        .zip(units.drain(..))
        .collect();
    let units = order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect();
    Ok(Plan {
        task: task.to_string(),
        units,
        warnings,
    })
}

/// `--function` accepts a simple name (`add`), a qualified one (`Store.add`) or a full symbol.
pub(crate) fn names_match(n: &GraphNode, name: &str) -> bool {
    n.symbol == name
        || n.symbol.ends_with(&format!(".{name}"))
        || n.symbol.ends_with(&format!(":{name}"))
}

fn is_public(n: &GraphNode) -> bool {
    let simple = n.symbol.rsplit(['.', ':']).next().unwrap_or(&n.symbol);
    let python = n.file.ends_with(".py") || n.file.ends_with(".pyi");
    if python {
        !simple.starts_with('_') || (simple.starts_with("__") && simple.ends_with("__"))
    } else {
        n.signature.trim_start().starts_with("export")
            || (n.kind == NodeKind::Method && !simple.starts_with('#') && !simple.starts_with('_'))
    }
}

/// The edit unit for one graph node, as `plan` builds it (also used to evaluate the compressor
/// on functions picked outside a plan).
pub fn unit(graph: &CodeGraph, n: &GraphNode, reason: String) -> EditUnit {
    let symbols = |v: Vec<crate::librarian::query::Reached>| -> Vec<String> {
        v.into_iter().map(|r| r.symbol).collect()
    };
    let callers = graph.callers(n, 1);
    let ranked: HashMap<String, f64> = graph.personalized_pagerank(&[n], 200).into_iter().collect();
    let mut context = Vec::new();
    for used in graph.uses(n) {
        let score = ranked.get(&used.symbol).copied().unwrap_or(0.0);
        if let Some(def) = graph.find(&used.symbol) {
            context.push(ContextItem {
                symbol: used.symbol.clone(),
                file: def.file.clone(),
                lines: def.lines,
                signature: def.signature.clone(),
                doc: first_doc_line(def),
                role: ContextRole::Definition,
                priority: DEFINITION_PRIORITY + score,
            });
        }
    }
    for caller in &callers {
        if let Some(def) = graph.find(&caller.symbol) {
            context.push(ContextItem {
                symbol: caller.symbol.clone(),
                file: def.file.clone(),
                lines: def.lines,
                signature: def.signature.clone(),
                doc: first_doc_line(def),
                role: ContextRole::CallerSignature,
                priority: CALLER_PRIORITY,
            });
        }
    }
    context.sort_by(|a, b| {
        b.priority
            .total_cmp(&a.priority)
            .then(a.symbol.cmp(&b.symbol))
    });
    EditUnit {
        symbol: n.symbol.clone(),
        kind: n.kind.name(),
        file: n.file.clone(),
        lines: n.lines,
        signature: n.signature.clone(),
        reason,
        description: None,
        callers: symbols(callers),
        callees: symbols(graph.callees(n, 1)),
        blast_radius: graph.blast_radius(n).len(),
        tests: graph.tests_reaching(n),
        public_api: is_public(n),
        context_items: context,
    }
}

fn first_doc_line(n: &GraphNode) -> Option<String> {
    n.doc
        .as_deref()
        .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
        .map(str::to_string)
}

/// Order units so that a unit comes after the units it calls, reads or inherits from (Kahn's
/// algorithm over those edges among them). Units in a cycle keep file order, with a warning.
fn callees_first(
    graph: &CodeGraph,
    chosen: &[(&GraphNode, String)],
    ids: &HashSet<&str>,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    // position → the chosen units it depends on
    let mut calls: BTreeMap<usize, HashSet<usize>> = BTreeMap::new();
    let index: HashMap<&str, usize> = chosen
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.id.as_str(), i))
        .collect();
    for e in &graph.graph.edges {
        if matches!(
            e.kind,
            EdgeKind::Calls | EdgeKind::References | EdgeKind::Inherits
        ) && e.source != e.target
            && ids.contains(e.source.as_str())
            && ids.contains(e.target.as_str())
        {
            calls
                .entry(index[e.source.as_str()])
                .or_default()
                .insert(index[e.target.as_str()]);
        }
    }
    let mut done: Vec<usize> = Vec::new();
    let mut placed = vec![false; chosen.len()];
    loop {
        let ready: Vec<usize> = (0..chosen.len())
            .filter(|&i| !placed[i])
            .filter(|i| {
                calls
                    .get(i)
                    .is_none_or(|callees| callees.iter().all(|&c| placed[c]))
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        for i in ready {
            placed[i] = true;
            done.push(i);
        }
    }
    let stuck: Vec<usize> = (0..chosen.len()).filter(|&i| !placed[i]).collect();
    if !stuck.is_empty() {
        warnings.push(format!(
            "call cycle among {}; they are planned in file order",
            stuck
                .iter()
                .map(|&i| chosen[i].0.symbol.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        done.extend(stuck);
    }
    done.into_iter().map(|i| chosen[i].0.id.clone()).collect()
}
