use super::*;

fn check(src: &str, lang: Language) -> GateReport {
    Gate::default().check(src, lang.default_kind())
}

#[test]
fn valid_code_passes_every_layer() {
    for (src, lang) in [
        ("def f(x):\n    return x + 1\n", Language::Python),
        (
            "export function f(x) { return x + 1; }\n",
            Language::JavaScript,
        ),
        (
            "export function f(x: number): number { return x + 1; }\n",
            Language::TypeScript,
        ),
        (
            "export const A = () => <div className=\"a\">{1}</div>;\n",
            Language::Tsx,
        ),
    ] {
        let r = check(src, lang);
        assert!(r.is_valid, "{lang}: {:#?}", r.errors);
        assert!(r.errors.is_empty());
        assert!(r.error_summary.is_empty());
        // The strict layer accepted it: tree-sitter had nothing to locate.
        assert_eq!(r.tree_sitter_us, 0);
        assert!(r.ast_depth >= 1);
    }
}

#[test]
fn both_layers_report_with_positions() {
    let r = check("def f(x):\n    return (x +\n", Language::Python);
    assert!(!r.is_valid);
    assert!(r.errors.iter().any(|e| e.layer == Layer::TreeSitter));
    assert!(r.errors.iter().any(|e| e.layer == Layer::Strict));
    assert!(r.error_node_count >= 1);
    for e in &r.errors {
        assert!(e.line >= 1 && e.column >= 1);
        assert!(e.context.contains('^'));
    }
    assert!(r.error_summary.starts_with("line "));
}

#[test]
fn strict_layer_catches_what_tree_sitter_accepts() {
    // tree-sitter-python accepts a def with no body; CPython does not.
    let r = check("def f():\n", Language::Python);
    assert!(!r.is_valid);
    assert!(r.errors.iter().all(|e| e.layer == Layer::Strict));
    let r = check("let let = 1;\n", Language::JavaScript);
    assert!(!r.is_valid);
}

#[test]
fn empty_source_is_valid() {
    for lang in [
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
    ] {
        assert!(check("", lang).is_valid);
    }
}

#[test]
fn deep_nesting_is_judged_not_crashed() {
    for depth in [300, 2900] {
        let src = format!("x = {}1{}\n", "[".repeat(depth), "]".repeat(depth));
        let r = check(&src, Language::Python);
        assert!(r.ast_depth >= depth);
        let js = format!("x = {}1{};\n", "[".repeat(depth), "]".repeat(depth));
        assert!(check(&js, Language::JavaScript).is_valid);
    }
    let src = format!("x = {}1{}\n", "(".repeat(10_000), ")".repeat(10_000));
    let r = check(&src, Language::Python);
    assert!(!r.is_valid);
    assert!(r.error_summary.contains("nesting deeper than 3000"));
}

/// Inputs that crashed or hung the gate get a verdict, quickly: unclosed parentheses past any
/// stack (the JS/TS strict layer overflowed on 6,000), and texts of many broken lines.
#[test]
fn pathological_inputs_get_a_verdict_quickly() {
    let parens = "(".repeat(6000);
    for lang in [Language::JavaScript, Language::TypeScript, Language::Tsx] {
        let r = check(&parens, lang);
        assert!(
            !r.is_valid && r.error_summary.contains("nesting deeper than"),
            "{lang}"
        );
    }
    // 1,500 levels on a small stack, as a directory walk's worker threads have.
    let nested = format!("x = {}1{};\n", "(".repeat(1500), ")".repeat(1500));
    let r = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || check(&nested, Language::JavaScript).is_valid)
        .unwrap()
        .join()
        .unwrap();
    assert!(r);
    for broken in ["print(1 +)\n", "def f(:)\n", "let x = ;\n"] {
        let lang = if broken.starts_with("let") {
            Language::JavaScript
        } else {
            Language::Python
        };
        let src = broken.repeat(20_000);
        let started = std::time::Instant::now();
        let r = check(&src, lang);
        assert!(!r.is_valid);
        assert!(r.errors.len() <= 2 * MAX_ERRORS, "{}", r.errors.len());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{broken:?}"
        );
    }
}
