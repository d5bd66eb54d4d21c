//! The gate against the committed corpus of real code and broken-on-purpose files, labelled by
//! the real compilers (CPython, Node, the TypeScript parser). See tests/fixtures/gate/README.md.

#[path = "support/corpus.rs"]
mod corpus;

use std::path::Path;

use ouroboros::gate::Gate;

#[test]
fn catch_rate_and_false_rejects_meet_the_bar() {
    let samples = corpus::load(Path::new("tests/fixtures/gate/corpus"));
    assert!(samples.len() > 500, "corpus too small: {}", samples.len());
    let scores = corpus::score(&Gate::default(), &samples);
    let mut failures = Vec::new();
    for (lang, s) in &scores {
        println!(
            "{lang:<11} invalid {:>4} caught {:>6.2}% (tree-sitter {:>6.2}%, strict {:>6.2}%) | valid {:>4} false rejects {} (tree-sitter {:.2}%, strict {:.2}%)",
            s.invalid,
            100.0 * s.catch_rate(2),
            100.0 * s.catch_rate(0),
            100.0 * s.catch_rate(1),
            s.valid,
            s.false_rejects[2],
            100.0 * s.false_reject_rate(0),
            100.0 * s.false_reject_rate(1),
        );
        let bar = if *lang == "typescript" || *lang == "tsx" {
            0.97
        } else {
            0.98
        };
        if s.invalid > 0 && s.catch_rate(2) < bar {
            failures.push(format!(
                "{lang}: caught {:.2}% < {:.0}%; missed {:?}",
                100.0 * s.catch_rate(2),
                100.0 * bar,
                s.missed
            ));
        }
        if !s.wrongly_rejected.is_empty() {
            failures.push(format!(
                "{lang}: rejected valid files {:?}",
                s.wrongly_rejected
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
