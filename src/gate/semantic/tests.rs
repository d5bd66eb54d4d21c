use std::path::Path;

use super::*;

fn run(path: &str, before: &str, after: &str, has_callers: bool) -> Vec<Finding> {
    let kind = SourceKind::from_path(Path::new(path)).unwrap();
    let lines = |s: &str| (1, s.lines().count());
    check(&Rewrite {
        kind,
        before,
        before_lines: lines(before),
        after,
        after_lines: lines(after),
        has_callers,
    })
}

fn checks(f: &[Finding]) -> Vec<Check> {
    f.iter().map(|f| f.check).collect()
}

#[test]
fn python_placeholders_are_found_and_real_bodies_are_not() {
    let before = "def total(items):\n    \"\"\"Sum.\"\"\"\n    s = 0\n    for i in items:\n        s += i\n    return s\n";
    for body in [
        "    pass\n",
        "    ...\n",
        "    return\n",
        "    return None\n",
        "    raise NotImplementedError\n",
        "    raise NotImplementedError('later')\n",
        "    # todo\n    pass\n",
    ] {
        let after = format!("def total(items):\n    \"\"\"Sum.\"\"\"\n{body}");
        let f = run("m.py", before, &after, false);
        assert!(checks(&f).contains(&Check::Placeholder), "{body:?}: {f:?}");
        // The first statement after the docstring (and any comment).
        let line = 3 + usize::from(body.starts_with("    #"));
        assert_eq!(f[0].line, line, "{f:?}");
    }
    let after = "def total(items):\n    \"\"\"Sum.\"\"\"\n    return sum(items)\n";
    assert!(run("m.py", before, after, false).is_empty());
    // A placeholder replaced by a placeholder was no loss.
    let stub = "def f():\n    pass\n";
    assert!(run("m.py", stub, "def f():\n    ...\n", false).is_empty());
}

#[test]
fn python_lost_returns_and_unused_parameters() {
    let before = "def scale(x, k):\n    return x * k\n";
    let after = "def scale(x, k):\n    print(x)\n";
    let f = run("m.py", before, after, false);
    assert_eq!(
        checks(&f),
        [Check::LostReturn, Check::UnusedParameter],
        "{f:?}"
    );
    assert!(f[1].message.contains("`k`"));
    // A generator returns by yielding.
    let gen = "def scale(x, k):\n    yield x * k\n";
    assert!(run("m.py", before, gen, false).is_empty());
}

#[test]
fn python_signatures_matter_only_with_callers_and_not_for_annotations() {
    let before = "def area(w, h=1):\n    return w * h\n";
    let hinted = "def area(w: float, h: float = 1) -> float:\n    return w * h\n";
    assert!(run("m.py", before, hinted, true).is_empty());
    let renamed = "def area(width, h=1):\n    return width * h\n";
    let f = run("m.py", before, renamed, true);
    assert_eq!(checks(&f), [Check::SignatureChanged], "{f:?}");
    assert!(f[0].message.contains("(w, h=…)") && f[0].message.contains("(width, h=…)"));
    assert!(run("m.py", before, renamed, false).is_empty());
    let starred = "def area(w, *rest):\n    return w\n";
    assert!(checks(&run("m.py", before, starred, true)).contains(&Check::SignatureChanged));
}

#[test]
fn python_undefined_names_are_new_reads_nothing_defines() {
    let prelude = "import os\nfrom json import dumps as d\nLIMIT = 3\n\n";
    let before = format!("{prelude}def f(x):\n    return os.sep + d(x)\n");
    let after = format!(
        "{prelude}def f(x):\n    y = len(x) + LIMIT\n    for i in range(y):\n        helper(i)\n    return cache[x] + os.sep + d(y)\n"
    );
    let f = run("m.py", &before, &after, false);
    let names: Vec<&str> = f
        .iter()
        .filter(|f| f.check == Check::UndefinedName)
        .map(|f| f.message.split('`').nth(1).unwrap())
        .collect();
    assert_eq!(names, ["cache", "helper"], "{f:?}");
    let helper = f.iter().find(|f| f.message.contains("`helper`")).unwrap();
    assert_eq!((helper.line, helper.column), (8, 9));
    // A star import could define anything: no undefined names then.
    let star = format!("from os import *\n{after}");
    let before_star = format!("from os import *\n{before}");
    assert!(run("m.py", &before_star, &star, false)
        .iter()
        .all(|f| f.check != Check::UndefinedName));
}

#[test]
fn ecmascript_placeholders_returns_and_undefined_names() {
    let before = "function helper(a) {\n  const b = a + 1;\n  return b;\n}\n";
    for body in ["", "  ;\n", "  return;\n", "  return undefined;\n"] {
        let after = format!("function helper(a) {{\n{body}}}\n");
        let f = run("u.js", before, &after, false);
        assert!(checks(&f).contains(&Check::Placeholder), "{body:?}: {f:?}");
    }
    let after = "function helper(a) {\n  console.log(a);\n  track(a);\n}\n";
    let f = run("u.js", before, after, false);
    assert_eq!(
        checks(&f),
        [Check::LostReturn, Check::UndefinedName],
        "{f:?}"
    );
    assert!(f[1].message.contains("`track`"));
    let ts_before = "export function area(w: number, h = 1): number {\n  return w * h;\n}\n";
    let ts_after =
        "export function area(w: number, h: number = 1): number {\n  return w * h * scale;\n}\n";
    let f = run("a.ts", ts_before, ts_after, true);
    assert_eq!(checks(&f), [Check::UndefinedName], "{f:?}");
    let arrow = "const inc = (x) => {\n  return x + 1;\n};\n";
    let arrow_after = "const inc = (x, y) => {\n  return x + y;\n};\n";
    assert_eq!(
        checks(&run("a.js", arrow, arrow_after, true)),
        [Check::SignatureChanged]
    );
}
