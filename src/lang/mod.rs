//! The languages Ouroboros reads, in one place: each language's file kinds, its tree-sitter
//! grammar, this thread's parser for it, and the librarian's queries compiled once. Every stage
//! (gate, librarian, pipeline) gets its syntax trees here, as difftastic's `TreeSitterConfig` and
//! ast-grep's parser module keep grammar and queries together.

pub mod builtins;

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tree_sitter::{Parser, Query, Tree};

/// A language Ouroboros can parse, judge and index. TSX is its own entry because its grammar differs from plain
/// TypeScript (`<T>x` is a cast in one and a JSX element in the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    JavaScript,
    TypeScript,
    Tsx,
}

/// How an ECMAScript file is parsed: the goal symbol matters (`with`, top-level `await`,
/// octal literals and `import` differ between scripts and modules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleGoal {
    /// `.mjs`, `.mts`: always a module.
    Module,
    /// `.cjs`, `.cts`: CommonJS, which Node wraps in a function (top-level `return` is legal).
    CommonJs,
    /// `.js`, `.jsx`, `.ts`, `.tsx`: a module if it has `import`/`export`, else a script.
    Unambiguous,
}

/// The language plus the details of its file type that change what is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceKind {
    pub language: Language,
    pub goal: ModuleGoal,
    /// `.jsx` (and `.tsx`): JSX is allowed.
    pub jsx: bool,
    /// `.pyi` and `.d.ts`: declaration files.
    pub stub: bool,
}

pub const EXTENSIONS: &[&str] = &[
    "py", "pyi", "js", "mjs", "cjs", "jsx", "ts", "mts", "cts", "tsx",
];

impl Language {
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
        }
    }

    /// The default file kind for snippets and stdin, where there is no extension.
    pub fn default_kind(self) -> SourceKind {
        let (goal, jsx) = match self {
            Language::Python => (ModuleGoal::Module, false),
            Language::JavaScript => (ModuleGoal::Unambiguous, false),
            Language::TypeScript => (ModuleGoal::Unambiguous, false),
            Language::Tsx => (ModuleGoal::Unambiguous, true),
        };
        SourceKind {
            language: self,
            goal,
            jsx,
            stub: false,
        }
    }

    /// The tree-sitter grammar: TSX has its own, since `<T>x` is a cast in TypeScript and an
    /// element in TSX.
    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
        }
    }

    /// What starts a line comment.
    pub fn line_comment(self) -> &'static str {
        match self {
            Language::Python => "#",
            _ => "//",
        }
    }

    /// The info string of a Markdown code fence holding this language.
    pub fn fence_tag(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript | Language::Tsx => "typescript",
        }
    }

    fn slot(self) -> usize {
        match self {
            Language::Python => 0,
            Language::JavaScript => 1,
            Language::TypeScript => 2,
            Language::Tsx => 3,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "python" | "py" => Ok(Language::Python),
            "javascript" | "js" => Ok(Language::JavaScript),
            "typescript" | "ts" => Ok(Language::TypeScript),
            "tsx" => Ok(Language::Tsx),
            other => Err(format!(
                "unknown language `{other}` (expected python, javascript, typescript or tsx)"
            )),
        }
    }
}

impl SourceKind {
    /// The file kind from a path's extension, or `None` for an extension the gate does not know.
    pub fn from_path(path: &Path) -> Option<SourceKind> {
        let name = path.file_name()?.to_str()?;
        let ext = path.extension()?.to_str()?;
        let (language, goal, jsx) = match ext {
            "py" | "pyi" => (Language::Python, ModuleGoal::Module, false),
            "js" => (Language::JavaScript, ModuleGoal::Unambiguous, false),
            "jsx" => (Language::JavaScript, ModuleGoal::Unambiguous, true),
            "mjs" => (Language::JavaScript, ModuleGoal::Module, false),
            "cjs" => (Language::JavaScript, ModuleGoal::CommonJs, false),
            "ts" => (Language::TypeScript, ModuleGoal::Unambiguous, false),
            "mts" => (Language::TypeScript, ModuleGoal::Module, false),
            "cts" => (Language::TypeScript, ModuleGoal::CommonJs, false),
            "tsx" => (Language::Tsx, ModuleGoal::Unambiguous, true),
            _ => return None,
        };
        let stub = ext == "pyi"
            || name.ends_with(".d.ts")
            || name.ends_with(".d.mts")
            || name.ends_with(".d.cts");
        Some(SourceKind {
            language,
            goal,
            jsx,
            stub,
        })
    }
}

thread_local! {
    /// Parsers are expensive to create and not `Sync`; keep one per language per thread.
    static PARSERS: RefCell<[Option<Parser>; 4]> = const { RefCell::new([None, None, None, None]) };
}

/// How long a parse may take unless its caller says otherwise: tree-sitter's error recovery has
/// no bound of its own, and a few pathological inputs take minutes.
pub const PARSE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Parse with this thread's parser for `language`, within [`PARSE_BUDGET`]. `None` when
/// tree-sitter gives up or runs out of time.
pub fn parse(source: &str, language: Language) -> Option<Tree> {
    parse_within(source, language, PARSE_BUDGET)
}

/// Parse within `budget`; `None` when it runs out (or tree-sitter gives up).
pub fn parse_within(source: &str, language: Language, budget: std::time::Duration) -> Option<Tree> {
    PARSERS.with(|cell| {
        let mut parsers = cell.borrow_mut();
        let parser = parsers[language.slot()].get_or_insert_with(|| {
            let mut p = Parser::new();
            p.set_language(&language.grammar())
                .expect("bundled grammar matches the tree-sitter ABI");
            p
        });
        let started = std::time::Instant::now();
        let mut over = |_: &tree_sitter::ParseState| started.elapsed() > budget;
        let bytes = source.as_bytes();
        let tree = parser.parse_with_options(
            &mut |at, _| bytes.get(at..).unwrap_or_default(),
            None,
            Some(tree_sitter::ParseOptions::new().progress_callback(&mut over)),
        );
        if tree.is_none() {
            // A cancelled parse leaves the parser mid-way; the next one starts clean.
            parser.reset();
        }
        tree
    })
}

/// The definition node (one with a `body`) starting on the first line of `lines` (1-based,
/// inclusive) and ending on the last; the outermost one when several do (a decorated
/// definition's inner `def` starts later, an arrow function inside a declaration earlier).
pub fn definition_at(root: tree_sitter::Node, (a, b): (usize, usize)) -> Option<tree_sitter::Node> {
    let mut stack = vec![root];
    let mut best: Option<tree_sitter::Node> = None;
    while let Some(n) = stack.pop() {
        let (s, e) = (n.start_position().row + 1, n.end_position().row + 1);
        if s > b || e < a {
            continue;
        }
        if n.child_by_field_name("body").is_some()
            && e == b
            && s >= a
            && best.is_none_or(|x| n.start_byte() < x.start_byte())
        {
            best = Some(n);
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
    best
}

/// The librarian's extraction queries for one language (`queries/<language>/*.scm`).
pub struct Queries {
    pub defs: Query,
    pub imports: Query,
    pub calls: Query,
    pub refs: Query,
}

/// The queries of `language`, compiled on first use and shared by every thread.
pub fn queries(language: Language) -> &'static Queries {
    static COMPILED: [OnceLock<Queries>; 4] = [const { OnceLock::new() }; 4];
    COMPILED[language.slot()].get_or_init(|| compile_queries(language))
}

fn compile_queries(language: Language) -> Queries {
    const PY_DEFS: &str = include_str!("../../queries/python/definitions.scm");
    const PY_IMPORTS: &str = include_str!("../../queries/python/imports.scm");
    const PY_CALLS: &str = include_str!("../../queries/python/calls.scm");
    const PY_REFS: &str = include_str!("../../queries/python/references.scm");
    const JS_IMPORTS: &str = include_str!("../../queries/javascript/imports.scm");
    const JS_CALLS: &str = include_str!("../../queries/javascript/calls.scm");
    const JS_DEFS: &str = include_str!("../../queries/javascript/definitions.scm");
    const JS_REFS: &str = include_str!("../../queries/javascript/references.scm");
    const JS_PARAMS: &str = include_str!("../../queries/javascript/parameters.scm");
    const JSX_REFS: &str = include_str!("../../queries/javascript/jsx-references.scm");
    const TS_DEFS: &str = include_str!("../../queries/typescript/definitions.scm");
    const TS_REFS: &str = include_str!("../../queries/typescript/references.scm");
    // TypeScript's grammar extends JavaScript's: its queries are the JavaScript ones plus a short
    // TypeScript (or JSX) addition, joined before compiling.
    let (defs, imports, calls, refs) = match language {
        Language::Python => (
            PY_DEFS.to_string(),
            PY_IMPORTS,
            PY_CALLS,
            PY_REFS.to_string(),
        ),
        Language::JavaScript => (
            JS_DEFS.to_string(),
            JS_IMPORTS,
            JS_CALLS,
            [JS_REFS, JS_PARAMS, JSX_REFS].join("\n"),
        ),
        Language::TypeScript => (
            [JS_DEFS, TS_DEFS].join("\n"),
            JS_IMPORTS,
            JS_CALLS,
            [JS_REFS, TS_REFS].join("\n"),
        ),
        Language::Tsx => (
            [JS_DEFS, TS_DEFS].join("\n"),
            JS_IMPORTS,
            JS_CALLS,
            [JS_REFS, TS_REFS, JSX_REFS].join("\n"),
        ),
    };
    let grammar = language.grammar();
    let q =
        |src: &str| Query::new(&grammar, src).expect("bundled queries compile (checked by a test)");
    Queries {
        defs: q(&defs),
        imports: q(imports),
        calls: q(calls),
        refs: q(&refs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_map_to_languages() {
        let lang = |p: &str| SourceKind::from_path(Path::new(p)).map(|k| k.language);
        assert_eq!(lang("a/b.py"), Some(Language::Python));
        assert_eq!(lang("b.pyi"), Some(Language::Python));
        assert_eq!(lang("b.cjs"), Some(Language::JavaScript));
        assert_eq!(lang("b.mts"), Some(Language::TypeScript));
        assert_eq!(lang("b.tsx"), Some(Language::Tsx));
        assert_eq!(lang("b.rs"), None);
        assert_eq!(lang("Makefile"), None);
        for ext in EXTENSIONS {
            assert!(
                SourceKind::from_path(Path::new(&format!("x.{ext}"))).is_some(),
                "{ext}"
            );
        }
    }

    #[test]
    fn declaration_files_are_stubs() {
        assert!(SourceKind::from_path(Path::new("index.d.ts")).unwrap().stub);
        assert!(!SourceKind::from_path(Path::new("index.ts")).unwrap().stub);
        assert_eq!(
            SourceKind::from_path(Path::new("a.cjs")).unwrap().goal,
            ModuleGoal::CommonJs
        );
    }

    #[test]
    fn every_language_parses_and_compiles_its_queries() {
        for (language, src) in [
            (Language::Python, "def f(x):\n    return x\n"),
            (Language::JavaScript, "function f(x) { return x; }\n"),
            (
                Language::TypeScript,
                "function f(x: number): number { return x; }\n",
            ),
            (Language::Tsx, "const e = <div>{x}</div>;\n"),
        ] {
            let tree = parse(src, language).unwrap();
            assert!(!tree.root_node().has_error(), "{language}");
            let q = queries(language);
            assert!(
                q.defs.pattern_count() > 0 && q.refs.pattern_count() > 0,
                "{language}"
            );
        }
    }

    #[test]
    fn language_names_parse() {
        assert_eq!("PY".parse::<Language>(), Ok(Language::Python));
        assert!("rust".parse::<Language>().unwrap_err().contains("rust"));
    }
}
