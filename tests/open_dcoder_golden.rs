//! Open-dCoder against the published reference, on a tiny random-weight checkpoint in its real
//! layout (a stock Qwen2 config.json; tests/fixtures/diffusion/tiny-open-dcoder, made with the
//! goldens by make_open_dcoder_goldens.py): raw logits with full attention, and greedy runs of
//! veomni's `_mdm_sample` (pengzhangzhi/Open-dLLM) token-identical, with its `p2` re-masking and
//! with Dream's `entropy` and `maskgit_plus`, for completions and infills, 1 to 16 steps, and the
//! reference's pass count.

#[path = "support/golden.rs"]
mod golden;

use golden::ids;

use ouroboros::diffusion::{
    generate, CacheMode, Canvas, DiffusionLm, EosPolicy, Family, GenerateConfig, Overrides,
    SamplerKind, TokenSampling, Visibility,
};
use serde_json::Value;

/// Its config.json names no diffusion family; the manifest does, as here.
fn load() -> DiffusionLm {
    golden::load(
        "tiny-open-dcoder",
        &Overrides {
            family: Some(Family::OpenDcoder),
            ..Overrides::default()
        },
    )
}

fn goldens() -> Value {
    golden::json("golden_open_dcoder.json")
}

#[test]
fn the_checkpoint_reads_with_the_tokenizers_mask_and_a_shift() {
    let m = load();
    assert_eq!(m.family.name(), "open_dcoder");
    assert_eq!(m.mask_id as u64, goldens()["mask_id"].as_u64().unwrap());
    assert!(m.logit_shift);
    assert_eq!(m.block_causal, None);
}

#[test]
fn logits_match_the_reference_with_full_attention() {
    let m = load();
    let tensors = golden::tensors("golden_open_dcoder_logits.safetensors");
    for entry in goldens()["logits"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let input = golden::token_ids(&tensors[&format!("{name}.input_ids")]);
        let expected = &tensors[&format!("{name}.logits")];
        let ours = m.logits_under(&input, Visibility::All).unwrap();
        let diff = golden::max_diff(ours, expected, name);
        println!("{name}: max |Δlogit| = {diff:e}");
        assert!(diff <= 1e-4, "{name}: logits differ by {diff}");
    }
}

#[test]
fn greedy_runs_match_veomnis_loop() {
    let m = load();
    let mut compared = 0;
    for (n, c) in goldens()["cases"].as_array().unwrap().iter().enumerate() {
        let num = |k: &str| c[k].as_u64().unwrap() as usize;
        let span = ids(&c["span"]);
        let canvas = Canvas {
            tokens: ids(&c["input_ids"]),
            span: span[0] as usize..span[1] as usize,
        };
        let cfg = GenerateConfig {
            steps: num("steps"),
            gen_length: num("gen"),
            block_length: num("gen"),
            sampler: c["alg"].as_str().unwrap().parse::<SamplerKind>().unwrap(),
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
        };
        let out = generate(&m, canvas, &cfg, |_| {}).unwrap();
        assert_eq!(out.canvas.tokens, ids(&c["output_ids"]), "case {n}: {c}");
        assert_eq!(out.forward_passes, num("forwards"), "case {n}");
        compared += 1;
    }
    println!("{compared} cases compared");
    assert!(compared >= 90);
}
