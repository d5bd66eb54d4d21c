//! The diffusion engine against the published reference implementations, on tiny random-weight
//! checkpoints: logits within 1e-4 in f32, and greedy generations identical token for token.
//! The checkpoints and goldens were made by tests/fixtures/diffusion/make_goldens.py from the
//! official LLaDA and Dream code; the cached and parallel goldens by make_cache_goldens.py from
//! Fast-dLLM's.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use ouroboros::diffusion::{
    generate, CacheMode, Canvas, DiffusionLm, EosPolicy, GenerateConfig, Overrides, SamplerKind,
    Scoring, TokenSampling,
};

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

fn goldens() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(
        Path::new(FIXTURES).join("golden_logits.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
}

fn check_logits(family: &str, model: &DiffusionLm) {
    let g = goldens();
    let ids: Vec<u32> = g[&format!("{family}.input_ids")]
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v as u32)
        .collect();
    let expected = &g[&format!("{family}.logits")];
    let ours = model.logits_all(&ids).unwrap();
    assert_eq!(ours.dims(), expected.dims());
    let diff = (ours - expected)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    println!("{family}: max |Δlogit| = {diff:e}");
    assert!(
        diff <= 1e-4,
        "{family}: logits differ from the reference by {diff}"
    );
}

#[test]
fn llada_logits_match_the_reference() {
    check_logits("llada", &load("tiny-llada"));
}

#[test]
fn dream_logits_match_the_reference() {
    check_logits("dream", &load("tiny-dream"));
}

/// One golden generation: the settings, the prompt, and what the reference produced.
struct Case {
    cfg: GenerateConfig,
    prompt: Vec<u32>,
    expected: Vec<u32>,
    nfe: Option<usize>,
}

fn case(c: &serde_json::Value) -> Case {
    let ids = |k: &str| -> Vec<u32> {
        c[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect()
    };
    let num = |k: &str| c[k].as_u64().unwrap() as usize;
    // Fast-dLLM's Dream `confidence_threshold` is the top-probability confidence with a threshold.
    let sampler: SamplerKind = match c["sampler"].as_str().unwrap() {
        "confidence_threshold" => SamplerKind::MaskgitPlus,
        other => other.parse().unwrap(),
    };
    let cache: CacheMode = c["cache"].as_str().unwrap_or("none").parse().unwrap();
    Case {
        cfg: GenerateConfig {
            steps: num("steps"),
            gen_length: num("gen_length"),
            block_length: num("block_length"),
            sampler,
            sampling: TokenSampling {
                temperature: 0.0,
                top_p: c["top_p"].as_f64(),
                top_k: c["top_k"].as_u64().map(|k| k as usize),
            },
            alg_temp: None,
            eps: 1e-3,
            threshold: c["threshold"].as_f64(),
            factor: c["factor"].as_f64(),
            cache,
            eos: EosPolicy::Allow,
            seed: 0,
            sub_block: None,
        },
        prompt: ids("prompt_ids"),
        expected: ids("output_ids"),
        nfe: c["nfe"].as_u64().map(|n| n as usize),
    }
}

/// Run every case of `family` in a goldens file; `exact_nfe` also compares forward passes
/// (the Dream reference spends passes whose output it discards, so there it is an upper bound).
fn run_cases(file: &str, family: &str, model: &DiffusionLm, exact_nfe: bool) {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join(file)).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<Case> = all[family].as_array().unwrap().iter().map(case).collect();
    assert!(cases.len() >= 12);
    let mut failures = Vec::new();
    for c in &cases {
        let canvas = Canvas::for_prompt(&c.prompt, c.cfg.gen_length, model.mask_id);
        let out = generate(model, canvas, &c.cfg, |_| {}).unwrap();
        assert_eq!(
            &out.canvas.tokens[..c.prompt.len()],
            &c.prompt[..],
            "the prompt must not change"
        );
        let label = format!(
            "{} cache={} steps={} gen={} block={} threshold={:?} factor={:?}",
            c.cfg.sampler,
            c.cfg.cache,
            c.cfg.steps,
            c.cfg.gen_length,
            c.cfg.block_length,
            c.cfg.threshold,
            c.cfg.factor
        );
        if out.canvas.generated() != c.expected.as_slice() {
            failures.push(format!(
                "{label}: ours {:?} reference {:?}",
                out.canvas.generated(),
                c.expected
            ));
        }
        let unfilled = c.expected.iter().filter(|&&t| t == model.mask_id).count();
        if out.unfilled != unfilled {
            failures.push(format!(
                "{label}: {} unfilled, reference {unfilled}",
                out.unfilled
            ));
        }
        match c.nfe {
            Some(n) if exact_nfe && out.forward_passes != n => failures.push(format!(
                "{label}: {} forward passes, reference {n}",
                out.forward_passes
            )),
            Some(n) if out.forward_passes > n => failures.push(format!(
                "{label}: {} forward passes, more than the reference's {n}",
                out.forward_passes
            )),
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
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
