//! Fast-dLLM v2 against the published reference, on a tiny random-weight checkpoint in its real
//! layout (tests/fixtures/diffusion/tiny-fast-dllm-v2, made with the goldens by
//! make_fast_dllm_v2_goldens.py from the official code): raw logits under the block-causal mask,
//! and greedy generations token-identical to the checkpoint's own `generate` (sub-blocks, the
//! threshold rule, the store pass that gives each next block its first token, the stop rule),
//! with the exact cache and without it, and with the sub-block cache.
//!
//! Compared: every `generate` case whose prompt is not exactly one block long (upstream never
//! prefills such a prompt, so its first block does not see it), and for those the
//! `generate_prefill_ge` cases, the reference with that one test fixed, which is what we do.
//! The reference's approximate sub-block cache (`use_block_cache`) is compared as `--cache
//! dual`. Not compared: `batch_sample` cases (the evaluation loop, whose stop rule differs).
//! Threshold-0 cases run with the smallest positive threshold: `--threshold` must be above 0,
//! and every confidence is above both.

#[path = "support/golden.rs"]
mod golden;

use golden::ids;

use ouroboros::diffusion::{
    generate, CacheMode, Canvas, DiffusionLm, EosPolicy, GenerateConfig, Overrides, SamplerKind,
    Scoring, TokenSampling, Visibility,
};
use serde_json::Value;

fn load() -> DiffusionLm {
    golden::load("tiny-fast-dllm-v2", &Overrides::default())
}

fn goldens() -> Value {
    golden::json("golden_fast_dllm_v2.json")
}

#[test]
fn the_checkpoint_reads_as_shifted_block_diffusion() {
    let m = load();
    let g = goldens();
    assert_eq!(m.family.name(), "fast_dllm_v2");
    assert_eq!(
        m.block_causal,
        Some(g["bd_size"].as_u64().unwrap() as usize)
    );
    assert!(m.logit_shift);
    assert_eq!(m.mask_id as u64, g["mask_id"].as_u64().unwrap());
    assert_eq!(m.eos_ids, vec![g["stop_id"].as_u64().unwrap() as u32]);
}

#[test]
fn logits_match_the_reference_under_the_block_causal_mask() {
    let m = load();
    let tensors = golden::tensors("golden_fast_dllm_v2_logits.safetensors");
    let g = goldens();
    for entry in g["logits"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let block = entry["block_size"].as_u64().unwrap() as usize;
        let input = golden::token_ids(&tensors[&format!("{name}.input_ids")]);
        let expected = &tensors[&format!("{name}.logits")];
        let ours = m.logits_under(&input, Visibility::blocks(block)).unwrap();
        let diff = golden::max_diff(ours, expected, name);
        println!("{name}: max |Δlogit| = {diff:e}");
        assert!(diff <= 1e-4, "{name}: logits differ by {diff}");
    }
}

/// The engine's settings for a golden case: a span of the reference's whole blocks of
/// `max_new_tokens` from the prompt's end,
/// rounded up to whole blocks, so it holds the reference's blocks (the first shares the
/// prompt's last partial block) and, when the prompt ends inside a block, one more, whose first
/// token is the reference's trailing next-block token.
fn config(c: &Value, cache: CacheMode) -> GenerateConfig {
    let num = |k: &str| c[k].as_u64().unwrap() as usize;
    let threshold = c["threshold"].as_f64().unwrap();
    // The reference decodes max_new_tokens // block_size blocks.
    let gen = num("max_new_tokens") / num("block_size") * num("block_size");
    GenerateConfig {
        steps: gen,
        gen_length: gen,
        block_length: num("block_size"),
        sampler: SamplerKind::LowConfidence,
        sampling: TokenSampling {
            temperature: 0.0,
            top_p: None,
            top_k: None,
        },
        alg_temp: None,
        eps: 1e-3,
        threshold: Some(threshold.max(f64::MIN_POSITIVE)),
        factor: None,
        cache,
        eos: EosPolicy::Allow,
        seed: 0,
        sub_block: Some(num("small_block_size")),
    }
}

#[test]
fn greedy_generations_match_the_checkpoints_generate_with_and_without_the_cache() {
    greedy_generations(Scoring::Host);
}

/// The same, each step reading the row-statistics op (the GPU path; its CPU reference here).
#[test]
fn the_greedy_goldens_hold_when_steps_read_row_statistics() {
    greedy_generations(Scoring::Device);
}

fn greedy_generations(scoring: Scoring) {
    let mut m = load();
    m.scoring = scoring;
    let g = goldens();
    let block = |c: &Value| c["block_size"].as_u64().unwrap() as usize;
    let (mut compared, mut passes_checked) = (0, 0);
    for (n, c) in g["cases"].as_array().unwrap().iter().enumerate() {
        let prompt = ids(&c["prompt_ids"]);
        let fixed = match c["loop"].as_str().unwrap() {
            "generate" => prompt.len() != block(c),
            "generate_prefill_ge" => true,
            _ => false,
        };
        if !fixed {
            continue;
        }
        // The reference's sub-block cache is `dual`; without it, the exact cache and none.
        let modes: &[CacheMode] = match c["use_block_cache"] == true {
            true => &[CacheMode::Dual],
            false => &[CacheMode::Prefix, CacheMode::None],
        };
        let want = ids(&c["output_ids"]);
        // Some cases stop at another token, to reach the stop rule with random weights.
        m.eos_ids = vec![c["stop_id"].as_u64().unwrap() as u32];
        if config(c, CacheMode::None).gen_length == 0 {
            continue; // fewer new tokens than a block: the reference decodes no block
        }
        for &cache in modes {
            let cfg = config(c, cache);
            let canvas = Canvas::for_prompt(&prompt, cfg.gen_length, m.mask_id);
            let out = generate(&m, canvas, &cfg, |_| {}).unwrap();
            let got = out.canvas.generated();
            // A prompt on a block boundary: the span ends where the reference's blocks do, so
            // its trailing next-block token is the one thing not compared.
            let k = want.len().min(got.len());
            assert!(
                k + 1 >= want.len(),
                "case {n}: {} tokens for {}",
                got.len(),
                want.len()
            );
            assert_eq!(&got[..k], &want[..k], "case {n} ({cache:?}): {c}");
            if c["stopped"] == true && k == want.len() {
                let stop = *want.last().unwrap();
                assert!(got[k..].iter().all(|&t| t == stop), "case {n}");
            }
            // On a block boundary the spans coincide: the same passes, less the reference's
            // last store pass when its token is past our span.
            if cache != CacheMode::None && prompt.len().is_multiple_of(block(c)) {
                let extra = usize::from(k < want.len());
                assert_eq!(
                    out.forward_passes + extra,
                    c["nfe"].as_u64().unwrap() as usize,
                    "case {n}"
                );
                passes_checked += 1;
            }
        }
        compared += 1;
    }
    println!("{compared} cases compared, passes checked in {passes_checked}");
    assert!(compared >= 100, "only {compared} cases compared");
    assert!(
        passes_checked >= 20,
        "only {passes_checked} pass counts checked"
    );
}

#[test]
fn a_sub_block_that_does_not_divide_the_block_is_named() {
    let m = load();
    let g = goldens();
    let mut cfg = config(&g["cases"][0], CacheMode::None);
    cfg.sub_block = Some(3);
    let canvas = Canvas::for_prompt(&[5, 6, 7], cfg.gen_length, m.mask_id);
    let e = generate(&m, canvas, &cfg, |_| {}).unwrap_err();
    assert!(e.to_string().contains("--sub-block 3"), "{e}");
}
