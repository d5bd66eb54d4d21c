//! Any bytes, in any of the gate's languages, must produce a report (or a clean refusal for
//! non-UTF-8), never a panic, hang or crash. The first byte picks the language; the rest is the
//! source. Pairs of inputs also exercise the introduced-errors matching.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ouroboros::gate::{Gate, Language, ModuleGoal};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(source) = std::str::from_utf8(rest) else { return };
    let language = match selector % 4 {
        0 => Language::Python,
        1 => Language::JavaScript,
        2 => Language::TypeScript,
        _ => Language::Tsx,
    };
    let mut kind = language.default_kind();
    if selector & 0x10 != 0 {
        kind.goal = ModuleGoal::CommonJs;
    }
    // Bit 0x40: every layer on every text (tree-sitter too), as `validate --all-layers` does.
    let gate = Gate {
        all_layers: selector & 0x40 != 0,
        ..Gate::default()
    };
    let report = gate.check(source, kind);
    assert_eq!(report.is_valid, report.blocking().next().is_none());
    // Judge the second half as an edit of the first.
    let mid = source.len() / 2;
    if source.is_char_boundary(mid) && selector & 0x20 != 0 {
        let _ = gate.check_change(&source[..mid], source, kind);
    }
});
