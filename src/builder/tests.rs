//! On the tiny random-weight LLaDA fixture: what the model writes is noise, so these tests check
//! the mechanics (what is kept, what is masked, what changes), not the code.

use std::path::PathBuf;

use candle_core::{DType, Device};

use super::heal::{build, Action, HealOptions, Request, Site, SyntaxJudge};
use super::*;
use crate::diffusion::{CacheMode, EosPolicy, Overrides, SamplerKind, TokenSampling};
use crate::gate::{Gate, Language};

fn model() -> DiffusionLm {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diffusion/tiny-llada");
    DiffusionLm::load(&dir, &Device::Cpu, DType::F32, &Overrides::default()).unwrap()
}

fn cfg(steps: usize) -> GenerateConfig {
    GenerateConfig {
        steps,
        gen_length: 0,
        block_length: 0,
        sampler: SamplerKind::LowConfidence,
        sampling: TokenSampling {
            temperature: 0.0,
            top_p: None,
            top_k: None,
        },
        alg_temp: None,
        eps: 1e-3,
        threshold: None,
        factor: None,
        cache: CacheMode::None,
        eos: EosPolicy::Allow,
        seed: 0,
        sub_block: None,
    }
}

const SOURCE: &str = "import os\n\n\ndef f(x):\n    \"\"\"Double.\"\"\"\n    y = x * 2\n    return y\n\n\nprint(f(1))\n";

#[test]
fn infill_keeps_the_text_around_the_body_byte_for_byte() {
    let m = model();
    let b = Builder::new(&m);
    let d = b.infill(SOURCE, (6, 7), "", 16, &cfg(8)).unwrap();
    assert_eq!(
        d.prefix,
        "import os\n\n\ndef f(x):\n    \"\"\"Double.\"\"\"\n"
    );
    assert_eq!(d.suffix, "\n\nprint(f(1))\n");
    assert_eq!(d.canvas.span.len(), 16);
    assert!(d.body.is_empty() || d.body.ends_with('\n'));
    assert_eq!(d.patched(), format!("{}{}{}", d.prefix, d.body, d.suffix));
    assert!(d.body_tokens().len() <= 16);
    assert!(!d.canvas.tokens.contains(&m.mask_id));
    assert!(b.infill(SOURCE, (6, 40), "", 16, &cfg(8)).is_err());
}

#[test]
fn long_files_are_cut_far_from_the_span_to_fit_the_window() {
    let m = model();
    let b = Builder::new(&m);
    let mut long = String::new();
    for i in 0..200 {
        long.push_str(&format!("a{i} = {i}\n"));
    }
    long.push_str("def g():\n    return 1\n");
    for i in 0..200 {
        long.push_str(&format!("b{i} = {i}\n"));
    }
    let d = b
        .infill(&long, (202, 202), "# context\n", 32, &cfg(4))
        .unwrap();
    let max = m.max_positions();
    assert_eq!(d.canvas.tokens.len(), max);
    // The tokens right before the span are the end of the prefix (the def line).
    let before = m
        .codec
        .decode(&d.canvas.tokens[..d.canvas.span.start], false);
    assert!(before.ends_with("a199 = 199\ndef g():\n"), "{before:?}");
    let after = m.codec.decode(&d.canvas.tokens[d.canvas.span.end..], false);
    assert!(after.starts_with("b0 = 0\n"), "{after:?}");
    assert!(b.infill(&long, (202, 202), "", max, &cfg(4)).is_err());
}

#[test]
fn repair_changes_only_the_tokens_it_masked() {
    let m = model();
    let b = Builder::new(&m);
    let d = b.infill(SOURCE, (6, 7), "", 32, &cfg(8)).unwrap();
    // Deterministic (greedy, seed 0): the fixture writes a body long enough to localise in.
    assert!(d.body_tokens().len() >= 6, "{:?}", d.body);
    // An error on the body's second token.
    let second = d.pieces[1].1.clone();
    let at = d.prefix.len() + second.start..d.prefix.len() + second.end;
    let (fixed, remasked) = b.repair(&d, &[at], 1, &cfg(8)).unwrap();
    assert_eq!(remasked, 3, "tokens 0..=2");
    let span = d.canvas.span.clone();
    for p in 0..d.canvas.tokens.len() {
        if !(span.start..span.start + 3).contains(&p) {
            assert_eq!(fixed.canvas.tokens[p], d.canvas.tokens[p], "position {p}");
        }
    }
    assert_eq!(fixed.prefix, d.prefix);
    assert_eq!(fixed.suffix, d.suffix);
}

#[test]
fn spans_come_in_buckets() {
    assert_eq!(span_for(1), 32);
    assert_eq!(span_for(33), 64);
    assert_eq!(span_for(256), 256);
    assert_eq!(span_for(1000), 256);
}

#[test]
fn healing_alternates_repair_and_regeneration_and_stops_when_it_passes() {
    let m = model();
    let b = Builder::new(&m);
    let gate = Gate::default();
    let site = Site {
        original: SOURCE,
        kind: Language::Python.default_kind(),
        request: Request::Infill {
            lines: (6, 7),
            context: "",
        },
        span: 32,
    };
    let healed = build(
        &b,
        &mut SyntaxJudge(&gate),
        &site,
        &cfg(8),
        HealOptions {
            max_retries: 3,
            margin: 2,
        },
    )
    .unwrap();
    let actions: Vec<Action> = healed.attempts.iter().map(|a| a.action).collect();
    let pattern = [
        Action::Generate,
        Action::Repair,
        Action::Regenerate,
        Action::Repair,
    ];
    assert_eq!(actions[..], pattern[..actions.len()]);
    let last = healed.attempts.last().unwrap();
    assert_eq!(last.passed, healed.passed());
    assert!(healed.passed() || healed.attempts.len() == 4);
    assert!(healed.attempts[..healed.attempts.len() - 1]
        .iter()
        .all(|a| !a.passed));
    for a in &healed.attempts {
        assert_eq!(a.passed, a.errors.is_empty(), "{a:?}");
        assert_eq!(a.remasked.is_some(), a.action == Action::Repair);
    }
    assert_eq!(
        gate.check_change(SOURCE, &healed.draft.patched(), site.kind)
            .is_valid,
        healed.passed()
    );
}

#[test]
fn span_settings_keep_dividing_blocks_and_whole_steps_per_block() {
    let mut c = cfg(10);
    c.block_length = 8;
    let s = span_config(&c, 32, 32);
    assert_eq!((s.gen_length, s.block_length, s.steps), (32, 8, 12));
    let s = span_config(&c, 32, 3);
    assert_eq!((s.block_length, s.steps), (8, 4));
    c.block_length = 5;
    let s = span_config(&c, 32, 32);
    assert_eq!((s.block_length, s.steps), (32, 10));
    let m = model();
    let b = Builder::new(&m);
    let mut c = cfg(8);
    c.block_length = 8;
    let d = b.infill(SOURCE, (6, 7), "", 32, &c).unwrap();
    assert_eq!(d.generation.step_ms.len(), 8);
}
