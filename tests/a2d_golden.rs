//! dllm's A2D conversions against the published reference (ZHZisZZ/dllm's own model classes
//! and its mdlm and bd3lm samplers), on tiny random-weight checkpoints in both layouts
//! (a2d-qwen2, a2d-qwen3): logits within 1e-4, dllm's step quotas exactly, and greedy
//! generations token-identical. Made by tests/fixtures/diffusion/make_a2d_goldens.py.
//!
//! Not compared: mdlm cases whose block length does not divide the generation length, or with
//! more steps than tokens (the engine refuses both), and the mdlm infill cases (dllm's infill
//! loop counts blocks over the whole canvas, not the span).

use std::path::Path;

use candle_core::{DType, Device};
use ouroboros::diffusion::{
    dllm_transfer_counts, generate, CacheMode, Canvas, DiffusionLm, EosPolicy, GenerateConfig,
    Overrides, SamplerKind, TokenSampling, Visibility,
};

const FIXTURES: &str = "tests/fixtures/diffusion";

fn load(name: &str, block_size: Option<usize>) -> DiffusionLm {
    DiffusionLm::load(
        &Path::new(FIXTURES).join(name),
        &Device::Cpu,
        DType::F32,
        &Overrides {
            block_size,
            ..Overrides::default()
        },
    )
    .unwrap()
}

fn goldens() -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("golden_a2d.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn dllm_step_quotas_are_reproduced_exactly() {
    let g = goldens();
    let rows = g["schedules"].as_array().unwrap();
    assert!(rows.len() > 200);
    for r in rows {
        let (n, steps) = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap());
        let want: Vec<usize> = ids(&r[2]).into_iter().map(|k| k as usize).collect();
        assert_eq!(
            dllm_transfer_counts(n as usize, steps as usize),
            want,
            "{n} masks in {steps} steps"
        );
    }
}

#[test]
fn a2d_logits_match_the_reference_in_both_layouts() {
    let tensors = candle_core::safetensors::load(
        Path::new(FIXTURES).join("golden_a2d_logits.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let g = goldens();
    for entry in g["logits"].as_array().unwrap() {
        let ckpt = entry["ckpt"].as_str().unwrap();
        let name = entry["name"].as_str().unwrap();
        let key = |k: &str| format!("{}.{name}.{k}", ckpt.trim_start_matches("tiny-a2d-"));
        let m = load(ckpt, None);
        let pad = g["checkpoints"][ckpt]["pad_id"].as_u64().unwrap() as u32;
        let input: Vec<u32> = tensors[&key("input_ids")]
            .to_vec1::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as u32)
            .collect();
        let expected: Vec<Vec<f32>> = tensors[&key("logits")].to_vec2().unwrap();
        // bd3lm left-pads its prompt with tokens nothing attends to and positions skip: the
        // same as the canvas without them, blocks counted from where the padding ended.
        let (visibility, keep): (Visibility, Vec<usize>) = match entry["block_size"].as_u64() {
            None => (Visibility::All, (0..input.len()).collect()),
            Some(b) => {
                let b = b as usize;
                let pads = input.iter().take_while(|&&t| t == pad).count();
                let phase = (b - pads % b) % b;
                (
                    Visibility::BlockCausal { size: b, phase },
                    (pads..input.len()).collect(),
                )
            }
        };
        let canvas: Vec<u32> = keep.iter().map(|&i| input[i]).collect();
        let ours: Vec<Vec<f32>> = m
            .logits_under(&canvas, visibility)
            .unwrap()
            .to_vec2()
            .unwrap();
        let mut worst = 0f32;
        for (row, &i) in ours.iter().zip(&keep) {
            for (a, b) in row.iter().zip(&expected[i]) {
                worst = worst.max((a - b).abs());
            }
        }
        println!("{ckpt} {name}: max |Δlogit| = {worst:e}");
        assert!(worst <= 1e-4, "{ckpt} {name}: logits differ by {worst}");
    }
}

fn config(c: &serde_json::Value, cache: CacheMode) -> Option<GenerateConfig> {
    let call = &c["call"];
    let gen = call["max_new_tokens"].as_u64()? as usize;
    let block = call["block_size"].as_u64()? as usize;
    let steps = call["steps"].as_u64()? as usize;
    if !gen.is_multiple_of(block) || steps > gen || !steps.is_multiple_of(gen / block) {
        return None;
    }
    Some(GenerateConfig {
        steps,
        gen_length: gen,
        block_length: block,
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
        cache,
        eos: EosPolicy::Allow,
        seed: 0,
        sub_block: None,
    })
}

#[test]
fn greedy_generations_match_the_mdlm_and_bd3lm_samplers() {
    let g = goldens();
    let (mut compared, mut skipped) = (0, 0);
    for (n, c) in g["cases"].as_array().unwrap().iter().enumerate() {
        let sampler = c["sampler"].as_str().unwrap();
        let ckpt = c["ckpt"].as_str().unwrap();
        let caches: &[CacheMode] = match sampler {
            "mdlm" => &[CacheMode::None],
            "bd3lm" => &[CacheMode::Prefix, CacheMode::None],
            _ => {
                skipped += 1;
                continue;
            }
        };
        let block = c["call"]["block_size"].as_u64().map(|b| b as usize);
        let mut m = load(ckpt, (sampler == "bd3lm").then_some(block).flatten());
        if let Some(eos) = c["eos_id"].as_u64() {
            m.eos_ids = vec![eos as u32];
        }
        let prompt = ids(&c["input_ids"]);
        let expected = ids(&c["output_ids"]);
        for &cache in caches {
            let Some(cfg) = config(c, cache) else {
                skipped += 1;
                continue;
            };
            let canvas = Canvas::for_prompt(&prompt, cfg.gen_length, m.mask_id);
            let out = generate(&m, canvas, &cfg, |_| {}).unwrap();
            let ours = out.canvas.generated().to_vec();
            assert!(ours.len() >= expected.len(), "case {n}");
            assert_eq!(
                ours[..expected.len()],
                expected[..],
                "case {n} ({sampler}, {cache:?}): {}",
                c["call"]
            );
            // After an early stop the rest is the stop token.
            assert!(ours[expected.len()..].iter().all(|t| m.eos_ids.contains(t)));
            if cache != CacheMode::None || sampler == "mdlm" {
                assert_eq!(
                    out.forward_passes as u64,
                    c["nfe"].as_u64().unwrap(),
                    "case {n}: forward passes"
                );
            }
            compared += 1;
        }
    }
    println!("compared {compared} runs, skipped {skipped}");
    assert!(compared >= 100, "only {compared} golden runs compared");
}
