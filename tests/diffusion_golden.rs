//! The diffusion engine against the published reference implementations, on tiny random-weight
//! checkpoints: logits within 1e-4 in f32, and greedy generations identical token for token.
//! The checkpoints and goldens were made by tests/fixtures/diffusion/make_goldens.py from the
//! official LLaDA and Dream code; the cached and parallel goldens by make_cache_goldens.py from
//! Fast-dLLM's.

use std::path::Path;

use candle_core::{DType, Device};
use ouroboros::diffusion::{golden, DiffusionLm, Overrides, Scoring};

const FIXTURES: &str = "tests/fixtures/diffusion";

fn load(name: &str) -> DiffusionLm {
    DiffusionLm::load(
        &Path::new(FIXTURES).join(name),
        &Device::Cpu,
        DType::F32,
        &Overrides::default(),
    )
    .unwrap()
}

fn check_logits(family: &str, model: &DiffusionLm) {
    let file = Path::new(FIXTURES).join("golden_logits.safetensors");
    let l = golden::logits(model, &golden::tensors(&file).unwrap(), family, &file).unwrap();
    println!("{family}: max |Δlogit| = {:e}", l.max_abs_diff);
    assert!(
        l.max_abs_diff <= 1e-4,
        "{family}: logits differ from the reference by {}",
        l.max_abs_diff
    );
    assert_eq!(l.argmax_mismatches, 0);
}

#[test]
fn llada_logits_match_the_reference() {
    check_logits("llada", &load("tiny-llada"));
}

#[test]
fn dream_logits_match_the_reference() {
    check_logits("dream", &load("tiny-dream"));
}

/// Run every case of `family` in a goldens file; `exact_nfe` also compares forward passes
/// (the Dream reference spends passes whose output it discards, so there it is an upper bound).
fn run_cases(file: &str, family: &str, model: &DiffusionLm, exact_nfe: bool) {
    let cases = golden::cases(&Path::new(FIXTURES).join(file), family).unwrap();
    assert!(cases.len() >= 12);
    let out = golden::run(model, &cases, exact_nfe).unwrap();
    assert_eq!(out.compared, cases.len());
    assert!(
        out.failures.is_empty(),
        "{} of {} cases differ:\n{}",
        out.compared - out.identical,
        out.compared,
        out.failures.join("\n")
    );
}

#[test]
fn llada_greedy_generations_match_the_reference() {
    run_cases(
        "golden_generations.json",
        "llada",
        &load("tiny-llada"),
        false,
    );
}

#[test]
fn dream_greedy_generations_match_the_reference() {
    run_cases(
        "golden_generations.json",
        "dream",
        &load("tiny-dream"),
        false,
    );
}

/// Fast-dLLM's `generate`, `generate_with_prefix_cache` and `generate_with_dual_cache` with
/// fixed steps, thresholds and factors over several block lengths (golden_cache.json, made by
/// make_cache_goldens.py from Fast-dLLM's own functions).
#[test]
fn llada_cached_generations_match_fast_dllm() {
    run_cases("golden_cache.json", "llada", &load("tiny-llada"), true);
}

/// Fast-dLLM's block `_sample` for Dream with the prefix and the dual cache, by threshold and
/// by the entropy schedule.
#[test]
fn dream_cached_generations_match_fast_dllm() {
    run_cases("golden_cache.json", "dream", &load("tiny-dream"), false);
}

/// The same goldens when each step reads the kernel's row statistics instead of whole rows, as
/// it does on a GPU: here the op runs its CPU reference, so this checks the wiring (EOS policy,
/// mask ban, which number each sampler ranks by); the CUDA kernel itself is checked against
/// that reference by `kernels::check`.
#[test]
fn goldens_hold_when_steps_read_row_statistics() {
    for name in ["llada", "dream"] {
        let mut model = load(&format!("tiny-{name}"));
        model.scoring = Scoring::Device;
        run_cases("golden_generations.json", name, &model, false);
        run_cases("golden_cache.json", name, &model, name == "llada");
    }
}
