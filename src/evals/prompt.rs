//! What the model is shown for each benchmark problem, and how its output is cut into the
//! completion the tests run. The framings are the ones the models' authors evaluated with:
//!
//! - **Base checkpoints, HumanEval**: the problem's prompt as it is, completed; the completion
//!   stops at the first of the Codex paper's stop sequences (`\nclass`, `\ndef`, `\n#`, `\nif`,
//!   `\nprint`; Chen et al. 2021, section 2.3), the ones lm-eval's `humaneval` task also uses.
//! - **Base checkpoints, MBPP**: the three-shot prompt of the MBPP paper (Austin et al. 2021,
//!   tasks 2, 3 and 4 as shots; lm-eval's `mbpp` task), cut at `[DONE]`.
//! - **Instruct checkpoints**, through the chat template, in one of four styles ([`ChatStyle`]),
//!   each the framing of an evaluation harness a model's authors used.
//! - **Infilling**: prefix and suffix on the engine's infill canvas; the span's text is the
//!   completion, as human-eval-infilling scores `prefix + completion + suffix`.

use std::str::FromStr;

use super::data::{Benchmark, Problem};

/// Codex's stop sequences for function completion.
pub const HUMANEVAL_STOPS: [&str; 5] = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];

/// How an instruct checkpoint is asked: the framings of the harnesses its authors used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatStyle {
    /// evalplus (`codegen.py`, `provider/utility.py`), which Dream-Coder-Instruct reports with:
    /// the problem in a fence after "Please provide a self-contained Python script...", the
    /// answer begun with "Below is a Python script..." and an open ```` ```python ```` fence.
    Evalplus,
    /// Qwen2.5-Coder's qwencoder-eval (`instruct/eval_plus/model.py`, `ChatML`), which
    /// DiffuCoder says its evaluation is based on: its own system prompt, "Can you complete the
    /// following Python function?" over a fenced prompt, the answer begun with a fence.
    Qwencoder,
    /// lm-eval's instruct tasks as Dream's fork has them (`humaneval_instruct.yaml`,
    /// `mbpp_instruct.yaml`), Dream-Instruct's: "Write a solution to the following problem..."
    /// and an answer begun with "Here is the completed function:" (HumanEval: and the prompt).
    LmEval,
    /// OpenCompass's `humaneval_gen_8e312c`, LLaDA-Instruct's: "Complete the following python
    /// code:" and the prompt, no answer prefix; the code is the answer's first fenced block.
    /// (Its MBPP rounds are three chat shots, not reproduced: MBPP takes lm-eval's framing.)
    Opencompass,
}

impl ChatStyle {
    pub fn name(self) -> &'static str {
        match self {
            ChatStyle::Evalplus => "evalplus",
            ChatStyle::Qwencoder => "qwencoder",
            ChatStyle::LmEval => "lm-eval",
            ChatStyle::Opencompass => "opencompass",
        }
    }
}

/// How the model is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Complete the text (base checkpoints), or fill the hole (infilling).
    Complete,
    /// Through the chat template (instruct checkpoints).
    Chat(ChatStyle),
}

impl Framing {
    pub fn name(self) -> String {
        match self {
            Framing::Complete => "complete".into(),
            Framing::Chat(s) => format!("chat:{}", s.name()),
        }
    }
}

/// `--framing`'s values other than `chat` alone (the checkpoint's own style).
impl FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let style = match s {
            "complete" => return Ok(Framing::Complete),
            "chat:evalplus" => ChatStyle::Evalplus,
            "chat:qwencoder" => ChatStyle::Qwencoder,
            "chat:lm-eval" => ChatStyle::LmEval,
            "chat:opencompass" => ChatStyle::Opencompass,
            other => {
                return Err(format!(
                    "{other}: expected complete, chat (the checkpoint's own style), chat:evalplus, chat:qwencoder, chat:lm-eval or chat:opencompass"
                ))
            }
        };
        Ok(Framing::Chat(style))
    }
}

/// What the model is given for one problem.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Text to continue.
    Complete(String),
    /// A chat (an optional system prompt, a user message), and the start of the answer after
    /// the chat template's assistant turn.
    Chat {
        system: Option<String>,
        user: String,
        answer_prefix: String,
    },
    /// Text before and after the hole.
    Infill { prefix: String, suffix: String },
}

impl Ask {
    /// The chat's turns, for the template.
    pub fn turns(&self) -> Vec<(&str, &str)> {
        match self {
            Ask::Chat { system, user, .. } => system
                .iter()
                .map(|s| ("system", s.as_str()))
                .chain([("user", user.as_str())])
                .collect(),
            _ => Vec::new(),
        }
    }
}

pub fn ask(bench: Benchmark, framing: Framing, problem: &Problem, shots: &[Problem]) -> Ask {
    if bench.is_infill() {
        return Ask::Infill {
            prefix: problem.prompt.clone(),
            suffix: problem.suffix.clone().unwrap_or_default(),
        };
    }
    let style = match framing {
        Framing::Complete => {
            return match bench {
                Benchmark::Mbpp => Ask::Complete(mbpp_few_shot(problem, shots)),
                _ => Ask::Complete(problem.prompt.clone()),
            }
        }
        Framing::Chat(s) => s,
    };
    let chat = |system: Option<&str>, user: String, answer_prefix: String| Ask::Chat {
        system: system.map(str::to_string),
        user,
        answer_prefix,
    };
    let mbpp = bench == Benchmark::Mbpp;
    match style {
        ChatStyle::Evalplus => chat(
            None,
            format!(
                "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n```\n{}\n```\n",
                instruct_problem(bench, problem).trim()
            ),
            "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:\n```python\n".into(),
        ),
        ChatStyle::Qwencoder => chat(
            Some("You are an intelligent programming assistant to produce Python algorithmic solutions"),
            format!(
                "Can you complete the following Python function?\n```python\n{}\n```\n",
                instruct_problem(bench, problem).trim()
            ),
            "```python\n".into(),
        ),
        ChatStyle::LmEval | ChatStyle::Opencompass if mbpp => chat(
            None,
            format!(
                "You are an expert Python programmer, and here is your task: {} Your code should pass these tests:\n\n{}",
                problem.prompt.trim(),
                problem.test_list.iter().take(3).cloned().collect::<Vec<_>>().join("\n")
            ),
            "Here is the completed function:\n```python\n".into(),
        ),
        ChatStyle::LmEval => chat(
            None,
            format!(
                "Write a solution to the following problem and make sure that it passes the tests:\n```{}",
                problem.prompt
            ),
            format!("Here is the completed function:\n```python\n{}\n", problem.prompt),
        ),
        ChatStyle::Opencompass => chat(
            None,
            format!("Complete the following python code:\n{}", problem.prompt),
            String::new(),
        ),
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
    let style = match (bench, framing) {
        (Benchmark::Mbpp, Framing::Complete) => {
            return cut(text, &["[DONE]", "\n[BEGIN]"]).to_string()
        }
        (_, Framing::Complete) => return cut(text, &HUMANEVAL_STOPS).to_string(),
        (_, Framing::Chat(s)) => s,
    };
    let code = match style {
        ChatStyle::Opencompass => first_fenced(text).unwrap_or(text).trim_start(),
        _ => cut(text, &["```"]),
    };
    match (bench, style) {
        // lm-eval's answer began with the prompt itself: the text continues its function.
        (Benchmark::HumanEval, ChatStyle::LmEval) => code.to_string(),
        // A whole script. After the prompt (whose function, a docstring and no body, is valid
        // Python) the script's own definition replaces it, and the prompt's imports stay in
        // scope.
        (Benchmark::HumanEval, _) => format!("\n{code}"),
        _ => code.to_string(),
    }
}

/// The inside of the first ```` ``` ```` block (after its info string), if the text has a
/// closed one.
fn first_fenced(text: &str) -> Option<&str> {
    let open = text.find("```")?;
    let body = open + text[open..].find('\n')? + 1;
    let close = text[body..].find("```")?;
    Some(&text[body..body + close])
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
        let evalplus = Framing::Chat(ChatStyle::Evalplus);
        let Ask::Chat {
            user,
            answer_prefix,
            ..
        } = ask(Benchmark::HumanEval, evalplus, &p, &[])
        else {
            panic!("a chat ask");
        };
        assert!(user.contains("```\ndef f():"));
        assert!(answer_prefix.ends_with("```python\n"));
        let code = completion(
            Benchmark::HumanEval,
            evalplus,
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

    #[test]
    fn each_chat_style_asks_and_reads_as_its_harness_does() {
        let p = problem("def f():\n    \"\"\"One.\"\"\"\n");
        let he = Benchmark::HumanEval;
        let qwen = ask(he, Framing::Chat(ChatStyle::Qwencoder), &p, &[]);
        assert_eq!(
            qwen.turns()[0],
            (
                "system",
                "You are an intelligent programming assistant to produce Python algorithmic solutions"
            )
        );
        let lm = Framing::Chat(ChatStyle::LmEval);
        let Ask::Chat { answer_prefix, .. } = ask(he, lm, &p, &[]) else {
            panic!("a chat ask");
        };
        assert!(answer_prefix.ends_with("```python\ndef f():\n    \"\"\"One.\"\"\"\n\n"));
        // The answer continues the prompt's function: the completion is its body alone.
        assert_eq!(completion(he, lm, "    return 1\n```\n"), "    return 1\n");
        let oc = Framing::Chat(ChatStyle::Opencompass);
        let text = "Sure:\n```python\ndef f():\n    return 1\n```\nDone.";
        assert_eq!(completion(he, oc, text), "\ndef f():\n    return 1\n");
        assert_eq!(
            completion(he, oc, "def f():\n    return 1\n"),
            "\ndef f():\n    return 1\n"
        );
        assert_eq!("chat:lm-eval".parse::<Framing>(), Ok(lm));
        assert!("chat:other".parse::<Framing>().is_err());
    }
}
