//! What the model is shown for each benchmark problem, and how its output is cut into the
//! completion the tests run. The framings are the ones the models' authors evaluated with:
//!
//! - **Base checkpoints, HumanEval**: the problem's prompt as it is, completed; the completion
//!   stops at the first of the Codex paper's stop sequences (`\nclass`, `\ndef`, `\n#`, `\nif`,
//!   `\nprint`; Chen et al. 2021, section 2.3), the ones lm-eval's `humaneval` task also uses.
//! - **Base checkpoints, MBPP**: the three-shot prompt of the MBPP paper (Austin et al. 2021,
//!   tasks 2, 3 and 4 as shots; lm-eval's `mbpp` task), cut at `[DONE]`.
//! - **Instruct checkpoints**: evalplus's instruction framing, which Dream-Coder and DiffuCoder
//!   report their HumanEval/MBPP figures with: the problem in a fenced block and an assistant
//!   answer begun with a sentence and an opened ```` ```python ```` fence; the code ends at the
//!   closing fence.
//! - **Infilling**: prefix and suffix on the engine's infill canvas; the span's text is the
//!   completion, as human-eval-infilling scores `prefix + completion + suffix`.

use super::data::{Benchmark, Problem};

/// Codex's stop sequences for function completion.
pub const HUMANEVAL_STOPS: [&str; 5] = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];

/// The instruction evalplus gives instruct models.
const INSTRUCTION: &str =
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:";
/// The start of the answer evalplus puts in the model's mouth.
const RESPONSE_PREFIX: &str = "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:\n```python\n";

/// How the model is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Complete the text (base checkpoints), or fill the hole (infilling).
    Complete,
    /// Through the chat template (instruct checkpoints).
    Chat,
}

/// What the model is given for one problem.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Text to continue.
    Complete(String),
    /// A user message, and the start of the answer after the chat template's assistant turn.
    Chat { user: String, answer_prefix: String },
    /// Text before and after the hole.
    Infill { prefix: String, suffix: String },
}

pub fn ask(bench: Benchmark, framing: Framing, problem: &Problem, shots: &[Problem]) -> Ask {
    if bench.is_infill() {
        return Ask::Infill {
            prefix: problem.prompt.clone(),
            suffix: problem.suffix.clone().unwrap_or_default(),
        };
    }
    match (bench, framing) {
        (Benchmark::Mbpp, Framing::Complete) => Ask::Complete(mbpp_few_shot(problem, shots)),
        (_, Framing::Complete) => Ask::Complete(problem.prompt.clone()),
        (_, Framing::Chat) => Ask::Chat {
            user: format!(
                "{INSTRUCTION}\n```\n{}\n```\n",
                instruct_problem(bench, problem).trim()
            ),
            answer_prefix: RESPONSE_PREFIX.to_string(),
        },
    }
}

/// The problem as evalplus shows it to an instruct model: HumanEval's prompt, or MBPP's
/// sentence with its first test in a docstring.
fn instruct_problem(bench: Benchmark, p: &Problem) -> String {
    match bench {
        Benchmark::Mbpp => format!(
            "\"\"\"\n{}\n{}\n\"\"\"\n",
            p.prompt,
            p.test_list.first().map(String::as_str).unwrap_or("")
        ),
        _ => p.prompt.clone(),
    }
}

fn mbpp_shot(p: &Problem) -> String {
    format!(
        "You are an expert Python programmer, and here is your task: {} Your code should pass these tests:\n\n{}\n",
        p.prompt.trim(),
        p.test_list.join("\n")
    )
}

fn mbpp_few_shot(p: &Problem, shots: &[Problem]) -> String {
    let mut out = String::new();
    for s in shots {
        out.push_str(&mbpp_shot(s));
        out.push_str("[BEGIN]\n");
        out.push_str(s.canonical.trim_end());
        out.push_str("\n[DONE]\n");
    }
    out.push_str(&mbpp_shot(p));
    out.push_str("[BEGIN]\n");
    out
}

/// The MBPP tasks the paper's prompt uses as shots (never scored).
pub const MBPP_SHOTS: [&str; 3] = ["Mbpp/2", "Mbpp/3", "Mbpp/4"];

/// The part of the model's text that the tests run, for the program [`Problem::program`] builds.
pub fn completion(bench: Benchmark, framing: Framing, text: &str) -> String {
    if bench.is_infill() {
        return text.to_string();
    }
    match (bench, framing) {
        (Benchmark::Mbpp, Framing::Complete) => cut(text, &["[DONE]", "\n[BEGIN]"]).to_string(),
        (_, Framing::Complete) => cut(text, &HUMANEVAL_STOPS).to_string(),
        (_, Framing::Chat) => {
            let code = cut(text, &["```"]);
            // The answer is a whole script. After the prompt (whose function, a docstring and
            // no body, is valid Python) the script's own definition replaces it, and the
            // prompt's imports stay in scope.
            match bench {
                Benchmark::HumanEval => format!("\n{code}"),
                _ => code.to_string(),
            }
        }
    }
}

/// `text` up to the first of `stops`.
pub fn cut<'t>(text: &'t str, stops: &[&str]) -> &'t str {
    let end = stops
        .iter()
        .filter_map(|s| text.find(s))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(prompt: &str) -> Problem {
        Problem {
            task_id: "t".into(),
            prompt: prompt.into(),
            suffix: None,
            canonical: "    return 1\n".into(),
            test: "def check(f):\n    assert f() == 1\n".into(),
            entry_point: Some("f".into()),
            test_list: vec!["assert f() == 1".into()],
        }
    }

    #[test]
    fn base_completions_stop_where_codex_stopped() {
        let text = "    return 1\n\ndef other():\n    pass\n";
        assert_eq!(
            completion(Benchmark::HumanEval, Framing::Complete, text),
            "    return 1\n"
        );
        assert_eq!(
            completion(
                Benchmark::Mbpp,
                Framing::Complete,
                "def f():\n    return 1\n[DONE]\nYou are"
            ),
            "def f():\n    return 1\n"
        );
    }

    #[test]
    fn chat_answers_are_read_to_the_closing_fence_and_run_after_the_prompt() {
        let p = problem("def f():\n    \"\"\"One.\"\"\"\n");
        let Ask::Chat {
            user,
            answer_prefix,
        } = ask(Benchmark::HumanEval, Framing::Chat, &p, &[])
        else {
            panic!("a chat ask");
        };
        assert!(user.contains("```\ndef f():"));
        assert!(answer_prefix.ends_with("```python\n"));
        let code = completion(
            Benchmark::HumanEval,
            Framing::Chat,
            "def f():\n    return 1\n```\nThat is all.",
        );
        let program = p.program(&code);
        assert!(program.starts_with("def f():\n    \"\"\"One.\"\"\"\n\ndef f():\n    return 1\n"));
        assert!(program.trim_end().ends_with("check(f)"));
    }

    #[test]
    fn mbpp_few_shot_shows_tests_and_answers() {
        let shot = problem("Write f.");
        let p = problem("Write g.");
        let Ask::Complete(text) = ask(Benchmark::Mbpp, Framing::Complete, &p, &[shot]) else {
            panic!("a completion ask");
        };
        assert!(text.contains("here is your task: Write f. Your code should pass these tests:\n\nassert f() == 1\n[BEGIN]\n    return 1\n[DONE]\n"));
        assert!(text.ends_with(
            "Write g. Your code should pass these tests:\n\nassert f() == 1\n[BEGIN]\n"
        ));
    }
}
