//! The diffusion engine against the published reference implementations, on tiny random-weight
//! checkpoints: logits within 1e-4 in f32, and greedy generations identical token for token.
//! The checkpoints and goldens were made by tests/fixtures/diffusion/make_goldens.py from the
//! official LLaDA and Dream code.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use ouroboros::diffusion::{
    generate, Canvas, DiffusionLm, EosPolicy, GenerateConfig, Overrides, SamplerKind, TokenSampling,
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

fn run_cases(family: &str, model: &DiffusionLm) {
    let text =
        std::fs::read_to_string(Path::new(FIXTURES).join("golden_generations.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = all[family].as_array().unwrap();
    assert!(cases.len() >= 12);
    let mut failures = Vec::new();
    for case in cases {
        let ids = |k: &str| -> Vec<u32> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        };
        let num = |k: &str| case[k].as_u64().unwrap() as usize;
        let sampler: SamplerKind = case["sampler"].as_str().unwrap().parse().unwrap();
        let cfg = GenerateConfig {
            steps: num("steps"),
            gen_length: num("gen_length"),
            block_length: num("block_length"),
            sampler,
            sampling: TokenSampling {
                temperature: 0.0,
                top_p: case["top_p"].as_f64(),
                top_k: case["top_k"].as_u64().map(|k| k as usize),
            },
            alg_temp: None,
            eps: 1e-3,
            threshold: None,
            eos: EosPolicy::Allow,
            seed: 0,
        };
        let prompt = ids("prompt_ids");
        let canvas = Canvas::for_prompt(&prompt, cfg.gen_length, model.mask_id);
        let out = generate(model, canvas, &cfg, |_| {}).unwrap();
        assert_eq!(
            &out.canvas.tokens[..prompt.len()],
            &prompt[..],
            "the prompt must not change"
        );
        if out.canvas.generated() != ids("output_ids").as_slice() {
            failures.push(format!(
                "{} steps={} gen={} block={}: ours {:?} reference {:?}",
                sampler,
                cfg.steps,
                cfg.gen_length,
                cfg.block_length,
                out.canvas.generated(),
                ids("output_ids")
            ));
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
    run_cases("llada", &load("tiny-llada"));
}

#[test]
fn dream_greedy_generations_match_the_reference() {
    run_cases("dream", &load("tiny-dream"));
}
