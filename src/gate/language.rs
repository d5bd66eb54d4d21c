use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A language the gate can judge. TSX is its own entry because its grammar differs from plain
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
    fn language_names_parse() {
        assert_eq!("PY".parse::<Language>(), Ok(Language::Python));
        assert!("rust".parse::<Language>().unwrap_err().contains("rust"));
    }
}
