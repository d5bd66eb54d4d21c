//! Engine behaviour beyond the goldens: infilling, seeding, threshold decoding, and clear errors
//! for broken checkpoints and bad settings.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use ouroboros::diffusion::{
    generate, generate_batch, CacheMode, Canvas, DiffusionLm, EosPolicy, GenerateConfig, Overrides,
    SamplerKind, TokenSampling,
};

const LLADA: &str = "tests/fixtures/diffusion/tiny-llada";
const DREAM: &str = "tests/fixtures/diffusion/tiny-dream";

fn load(dir: &Path) -> Result<DiffusionLm, String> {
    DiffusionLm::load(dir, &Device::Cpu, DType::F32, &Overrides::default())
        .map_err(|e| e.to_string())
}

fn load_err(dir: &Path) -> String {
    match load(dir) {
        Ok(_) => panic!("{} loaded, but it is broken", dir.display()),
        Err(e) => e,
    }
}

fn config(sampler: SamplerKind, temperature: f64, seed: u64) -> GenerateConfig {
    GenerateConfig {
        steps: 8,
        gen_length: 16,
        block_length: 8,
        sampler,
        sampling: TokenSampling {
            temperature,
            top_p: Some(0.95),
            top_k: None,
        },
        alg_temp: None,
        eps: 1e-3,
        threshold: None,
        factor: None,
        cache: CacheMode::None,
        eos: EosPolicy::Allow,
        seed,
        sub_block: None,
    }
}

const ALL: [SamplerKind; 6] = [
    SamplerKind::LowConfidence,
    SamplerKind::Random,
    SamplerKind::Origin,
    SamplerKind::MaskgitPlus,
    SamplerKind::TopkMargin,
    SamplerKind::Entropy,
];

#[test]
fn infill_keeps_prefix_and_suffix_and_fills_the_span() {
    for dir in [LLADA, DREAM] {
        let m = load(Path::new(dir)).unwrap();
        let prefix = m.codec.encode("def total(items):\n    ").unwrap();
        let suffix = m.codec.encode("\n\nprint(total([]))\n").unwrap();
        for sampler in ALL {
            let canvas = Canvas::for_infill(&prefix, 16, &suffix, m.mask_id);
            let out = generate(&m, canvas, &config(sampler, 0.7, 3), |_| {}).unwrap();
            let t = &out.canvas.tokens;
            assert_eq!(
                &t[..prefix.len()],
                &prefix[..],
                "{dir} {sampler}: prefix changed"
            );
            assert_eq!(
                &t[t.len() - suffix.len()..],
                &suffix[..],
                "{dir} {sampler}: suffix changed"
            );
            assert!(
                out.canvas.generated().iter().all(|&x| x != m.mask_id),
                "{dir} {sampler}: masks left"
            );
            assert_eq!(out.schedule.iter().sum::<u32>(), 16);
        }
    }
}

#[test]
fn sampling_is_deterministic_under_a_seed() {
    let m = load(Path::new(DREAM)).unwrap();
    let prompt = m.codec.encode("class Store:").unwrap();
    for sampler in ALL {
        let run = |seed| {
            generate(
                &m,
                Canvas::for_prompt(&prompt, 16, m.mask_id),
                &config(sampler, 1.0, seed),
                |_| {},
            )
            .unwrap()
        };
        assert_eq!(run(11).canvas, run(11).canvas, "{sampler}");
    }
    let a = generate(
        &m,
        Canvas::for_prompt(&prompt, 16, m.mask_id),
        &config(SamplerKind::Entropy, 1.0, 1),
        |_| {},
    )
    .unwrap();
    let b = generate(
        &m,
        Canvas::for_prompt(&prompt, 16, m.mask_id),
        &config(SamplerKind::Entropy, 1.0, 2),
        |_| {},
    )
    .unwrap();
    assert_ne!(
        a.canvas, b.canvas,
        "different seeds should sample differently at temperature 1"
    );
}

#[test]
fn threshold_decoding_takes_fewer_passes_at_a_low_threshold() {
    let m = load(Path::new(LLADA)).unwrap();
    let prompt = m.codec.encode("def add(a, b):").unwrap();
    let mut cfg = config(SamplerKind::LowConfidence, 0.0, 0);
    cfg.threshold = Some(1e-6);
    let fast = generate(&m, Canvas::for_prompt(&prompt, 16, m.mask_id), &cfg, |_| {}).unwrap();
    // Everything clears the threshold: one pass per block.
    assert_eq!(fast.forward_passes, 2);
    cfg.threshold = Some(1.0);
    let slow = generate(&m, Canvas::for_prompt(&prompt, 16, m.mask_id), &cfg, |_| {}).unwrap();
    // Nothing clears it: one token per pass.
    assert_eq!(slow.forward_passes, 16);
}

#[test]
fn eos_suppression_keeps_eos_out() {
    let m = load(Path::new(LLADA)).unwrap();
    let eos = m.eos_ids.clone();
    assert!(!eos.is_empty());
    let prompt = m.codec.encode("x").unwrap();
    let mut cfg = config(SamplerKind::LowConfidence, 2.0, 5);
    cfg.eos = EosPolicy::Suppress;
    for seed in 0..4 {
        cfg.seed = seed;
        let out = generate(&m, Canvas::for_prompt(&prompt, 16, m.mask_id), &cfg, |_| {}).unwrap();
        assert!(out.canvas.generated().iter().all(|t| !eos.contains(t)));
    }
}

/// Canvases of different lengths and kinds (prompt, infill), each with its own settings: every
/// cache, fixed steps, threshold and factor, greedy and sampled.
fn mixed_jobs(m: &DiffusionLm) -> Vec<(Canvas, GenerateConfig)> {
    let texts = [
        "def add(a, b):",
        "class Store:\n    def __init__(self):\n        self.items = {}\n    def",
        "x",
    ];
    let mut jobs = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let prompt = m.codec.encode(text).unwrap();
        for (j, cache) in [CacheMode::None, CacheMode::Prefix, CacheMode::Dual]
            .into_iter()
            .enumerate()
        {
            let sampler = [SamplerKind::LowConfidence, SamplerKind::Entropy][(i + j) % 2];
            let temperature = if (i + j) % 3 == 0 { 0.0 } else { 0.8 };
            let mut cfg = config(sampler, temperature, (i * 3 + j) as u64);
            cfg.cache = cache;
            match (i + 2 * j) % 3 {
                1 => cfg.threshold = Some(0.02),
                2 => cfg.factor = Some(3.0),
                _ => {}
            }
            if i == 1 {
                cfg.gen_length = 24;
                cfg.steps = 12;
            }
            jobs.push((Canvas::for_prompt(&prompt, cfg.gen_length, m.mask_id), cfg));
        }
        let suffix = m.codec.encode("\n    return total\n").unwrap();
        let mut cfg = config(SamplerKind::LowConfidence, 0.0, 9);
        cfg.cache = CacheMode::Dual;
        jobs.push((Canvas::for_infill(&prompt, 16, &suffix, m.mask_id), cfg));
    }
    jobs
}

#[test]
fn a_batch_gives_each_canvas_what_it_gets_alone() {
    for dir in [LLADA, DREAM] {
        let m = load(Path::new(dir)).unwrap();
        let jobs = mixed_jobs(&m);
        let mut steps_seen = vec![0usize; jobs.len()];
        let together = generate_batch(&m, jobs.clone(), |i, _| steps_seen[i] += 1).unwrap();
        assert_eq!(together.len(), jobs.len());
        for (k, ((canvas, cfg), batched)) in jobs.into_iter().zip(&together).enumerate() {
            let alone = generate(&m, canvas, &cfg, |_| {}).unwrap();
            assert_eq!(
                batched.canvas, alone.canvas,
                "{dir} canvas {k} ({} cache, {}): batched output differs from running alone",
                cfg.cache, cfg.sampler
            );
            assert_eq!(batched.forward_passes, alone.forward_passes);
            assert_eq!(batched.schedule, alone.schedule);
            assert_eq!(steps_seen[k], alone.step_ms.len(), "every step is reported");
        }
    }
}

#[test]
fn caches_cut_the_work_per_step_and_report_their_size() {
    let m = load(Path::new(LLADA)).unwrap();
    let prompt = m
        .codec
        .encode("def add(a, b):\n    return a + b\n\ndef")
        .unwrap();
    let mut sizes = Vec::new();
    for cache in [CacheMode::None, CacheMode::Prefix, CacheMode::Dual] {
        let mut cfg = config(SamplerKind::LowConfidence, 0.0, 0);
        cfg.cache = cache;
        let out = generate(&m, Canvas::for_prompt(&prompt, 16, m.mask_id), &cfg, |_| {}).unwrap();
        assert_eq!(out.forward_passes, 8, "{cache}: one pass per step");
        assert_eq!(out.unfilled, 0);
        sizes.push(out.kv_bytes);
    }
    // tiny-llada: 2 layers, keys and values of 64 floats per position.
    let per_position = 2 * 2 * 64 * 4;
    assert_eq!(sizes[0], 0, "no cache, no bytes");
    // The prefix cache of the second block holds the prompt and the first block.
    assert_eq!(sizes[1], (prompt.len() + 8) * per_position);
    assert_eq!(sizes[2], (prompt.len() + 16) * per_position);
}

/// A copy of a fixture checkpoint to break.
fn copy_of(dir: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let to = tmp.path().join("model");
    fs::create_dir_all(&to).unwrap();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    (tmp, to)
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn broken_checkpoints_get_errors_that_name_the_problem() {
    let (_t, d) = copy_of(LLADA);
    fs::remove_file(d.join("config.json")).unwrap();
    assert!(load_err(&d).contains("config.json: missing"));

    let (_t, d) = copy_of(LLADA);
    fs::write(d.join("config.json"), "{\"d_model\": ").unwrap();
    assert!(load_err(&d).contains("config.json"));

    let (_t, d) = copy_of(LLADA);
    edit_json(&d.join("config.json"), |v| {
        v.as_object_mut().unwrap().remove("n_layers");
    });
    assert!(load_err(&d).contains("n_layers"));

    let (_t, d) = copy_of(LLADA);
    edit_json(&d.join("config.json"), |v| {
        v["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
        v["model_type"] = serde_json::json!("gpt2");
    });
    let e = load_err(&d);
    assert!(e.contains("model_type") && e.contains("gpt2"), "{e}");

    let (_t, d) = copy_of(LLADA);
    edit_json(&d.join("config.json"), |v| {
        v["block_type"] = serde_json::json!("sequential")
    });
    assert!(load_err(&d).contains("block_type = sequential"));

    let (_t, d) = copy_of(LLADA);
    edit_json(&d.join("config.json"), |v| {
        v["mlp_hidden_size"] = serde_json::json!(96)
    });
    let e = load_err(&d);
    assert!(e.contains("shape mismatch") && e.contains("ff_proj"), "{e}");

    let (_t, d) = copy_of(LLADA);
    let bytes = fs::read(d.join("model.safetensors")).unwrap();
    fs::write(d.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&d);
    assert!(e.contains("model.safetensors"), "{e}");

    let (_t, d) = copy_of(LLADA);
    fs::write(
        d.join("model.safetensors.index.json"),
        r#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("model-00001-of-00002.safetensors") && e.contains("missing"),
        "{e}"
    );

    let (_t, d) = copy_of(LLADA);
    fs::remove_file(d.join("model.safetensors")).unwrap();
    assert!(load_err(&d).contains("no weights"));
}

/// Values that would load and then produce garbage, or fail inside a tensor op, are refused
/// before any tensor is built, naming the file, the field, the value and why.
#[test]
fn config_values_are_checked_before_use() {
    let cases: [(&str, &str, serde_json::Value, &str); 8] = [
        (
            LLADA,
            "n_layers",
            serde_json::json!(0),
            "n_layers = 0: must be at least 1",
        ),
        (
            LLADA,
            "n_layers",
            serde_json::json!(1),
            "n_layers = 1: the weights hold 2 block(s)",
        ),
        (
            LLADA,
            "rope_theta",
            serde_json::json!(-1.0),
            "rope_theta = -1: must be a finite number above 0",
        ),
        (
            LLADA,
            "mask_token_id",
            serde_json::json!(999_999),
            "mask_token_id = 999999: the vocabulary has",
        ),
        (
            LLADA,
            "n_kv_heads",
            serde_json::json!(0),
            "n_kv_heads = 0: must be at least 1",
        ),
        (
            LLADA,
            "n_kv_heads",
            serde_json::json!(3),
            "n_kv_heads = 3: n_heads (4) is not a multiple of it",
        ),
        (
            DREAM,
            "rms_norm_eps",
            serde_json::json!(0.0),
            "rms_norm_eps = 0: must be a finite number above 0",
        ),
        (
            DREAM,
            "num_key_value_heads",
            serde_json::json!(3),
            "num_key_value_heads = 3",
        ),
    ];
    for (fixture, field, value, expected) in cases {
        let (_t, d) = copy_of(fixture);
        edit_json(&d.join("config.json"), |v| v[field] = value.clone());
        let e = load_err(&d);
        assert!(
            e.contains("config.json") && e.contains(expected),
            "{field}: {e}"
        );
    }
    let (_t, d) = copy_of(DREAM);
    edit_json(&d.join("config.json"), |v| {
        v["hidden_act"] = serde_json::json!("gelu")
    });
    assert!(load_err(&d).contains("unsupported setting hidden_act = gelu"));
    let (_t, d) = copy_of(DREAM);
    edit_json(&d.join("config.json"), |v| {
        v["eos_token_id"] = serde_json::json!([5, 6])
    });
    assert!(load(&d).is_ok());
}

#[test]
fn tokenizer_problems_are_explained() {
    let (_t, d) = copy_of(DREAM);
    fs::remove_file(d.join("tokenizer.json")).unwrap();
    fs::write(d.join("vocab.json"), "{}").unwrap();
    fs::write(d.join("merges.txt"), "").unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("save_pretrained"),
        "the one-line conversion is named: {e}"
    );

    let (_t, d) = copy_of(DREAM);
    edit_json(&d.join("config.json"), |v| {
        v.as_object_mut().unwrap().remove("mask_token_id");
    });
    edit_json(&d.join("tokenizer.json"), |v| {
        for t in v["added_tokens"].as_array_mut().unwrap() {
            if t["content"] == "<|mask|>" {
                t["content"] = serde_json::json!("<|not_a_mask|>");
            }
        }
        let vocab = v["model"]["vocab"].as_object_mut().unwrap();
        if let Some(id) = vocab.remove("<|mask|>") {
            vocab.insert("<|not_a_mask|>".into(), id);
        }
    });
    let e = load_err(&d);
    assert!(e.contains("no mask token"), "{e}");
}

fn ouroboros(args: &[&str]) -> std::process::Output {
    support::ouroboros(Path::new("."), args)
}

#[test]
fn generate_json_and_bad_flags() {
    let out = ouroboros(&[
        "generate",
        "--model",
        LLADA,
        "--prompt",
        "def f():",
        "--steps",
        "4",
        "--gen-length",
        "8",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "text",
        "token_ids",
        "prompt_token_ids",
        "steps",
        "forward_passes",
        "tok_per_s",
        "ms_per_step",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["token_ids"].as_array().unwrap().len(), 8);
    assert_eq!(v["forward_passes"], 4);

    let cases: [(&[&str], &str); 6] = [
        (&["--steps", "0"], "--steps must be at least 1"),
        (
            &["--steps", "9", "--gen-length", "8"],
            "more than --gen-length",
        ),
        (
            &["--gen-length", "8", "--block-length", "3", "--steps", "4"],
            "not divisible",
        ),
        (&["--sampler", "greedy"], "unknown sampler"),
        (&["--device", "cuda:0"], "--features cuda"),
        (
            &[
                "--gen-length",
                "300",
                "--steps",
                "4",
                "--block-length",
                "300",
            ],
            "context of 256",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["generate", "--model", LLADA, "--prompt", "x"];
        args.extend_from_slice(extra);
        let out = ouroboros(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(expected), "{extra:?}: {err}");
    }
    let missing = ouroboros(&["generate", "--model", "no/such-model", "--prompt", "x"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("models pull"));
}

#[test]
fn bench_formats_share_one_schema() {
    let run = |fmt: &str| {
        let out = ouroboros(&[
            "bench",
            "--model",
            DREAM,
            "--steps",
            "2,4",
            "--gen-length",
            "8",
            "-r",
            "1",
            "--warmup",
            "0",
            "-o",
            fmt,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let jsonl: Vec<serde_json::Value> = run("jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(jsonl.len(), 2);
    let keys: Vec<String> = jsonl[0].as_object().unwrap().keys().cloned().collect();
    let csv = run("csv");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let mut sorted_header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    sorted_header.sort();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort();
    assert_eq!(sorted_header, sorted_keys);
    assert_eq!(jsonl[1]["steps"], 4);
    assert_eq!(jsonl[1]["forward_passes"], 4.0);
    // 8 positions over 4 passes.
    assert_eq!(jsonl[1]["tokens_per_forward"], 2.0);
    assert_eq!(jsonl[1]["cache"], "none");
    assert_eq!(jsonl[1]["batch"], 1);
    let md = run("md");
    assert!(md.contains(
        "| model | params | backend | dtype | prompt | steps | gen | block | sampler | threshold \
         | factor | cache | batch | tok/s | tok/s/canvas | ms/step | passes | tok/pass | KV MB \
         | peak RSS MB |"
    ));
}

#[test]
fn chat_prompts_use_the_checkpoint_template() {
    let (_t, d) = copy_of(LLADA);
    let dir = d.to_str().unwrap();
    let no_template = ouroboros(&[
        "generate",
        "--model",
        dir,
        "--prompt",
        "hi",
        "--chat",
        "--steps",
        "2",
        "--gen-length",
        "4",
    ]);
    assert_eq!(no_template.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_template.stderr).contains("tokenizer_config.json"));
    fs::write(
        d.join("tokenizer_config.json"),
        r#"{"bos_token": "<|endoftext|>", "chat_template": "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"}"#,
    )
    .unwrap();
    let out = ouroboros(&[
        "generate",
        "--model",
        dir,
        "--prompt",
        "hi",
        "--chat",
        "--steps",
        "2",
        "--gen-length",
        "4",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = load(&d).unwrap();
    let expected = m
        .codec
        .encode("<|endoftext|><user>hi</user><assistant>")
        .unwrap();
    let got: Vec<u32> = v["prompt_token_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(got, expected);
}

const SDAR: &str = "tests/fixtures/diffusion/tiny-sdar";

#[test]
fn block_diffusion_batches_give_each_canvas_what_it_gets_alone() {
    let m = load(Path::new(SDAR)).unwrap();
    let prompts = ["def add(a, b):\n    return", "class Store:\n    def", "x"];
    let mut jobs = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let ids = m.codec.encode(p).unwrap();
        for (cache, threshold) in [
            (CacheMode::Prefix, None),
            (CacheMode::None, Some(0.5)),
            (CacheMode::Dual, Some(0.9)),
        ] {
            let mut cfg = config(SamplerKind::LowConfidence, 0.0, i as u64);
            cfg.block_length = 4;
            cfg.cache = cache;
            cfg.threshold = threshold;
            jobs.push((Canvas::for_prompt(&ids, 16, m.mask_id), cfg));
        }
    }
    let together = generate_batch(&m, jobs.clone(), |_, _| {}).unwrap();
    for (k, ((canvas, cfg), batched)) in jobs.into_iter().zip(&together).enumerate() {
        let alone = generate(&m, canvas, &cfg, |_| {}).unwrap();
        assert_eq!(batched.canvas, alone.canvas, "canvas {k}");
        assert_eq!(batched.forward_passes, alone.forward_passes, "canvas {k}");
    }
    // The cached runs and the recomputing ones of the same prompt agree.
    assert_eq!(together[0].canvas, {
        let (c, mut cfg) = (
            together[0].canvas.clone(),
            config(SamplerKind::LowConfidence, 0.0, 0),
        );
        cfg.block_length = 4;
        let fresh = Canvas::for_prompt(&c.tokens[..c.span.start], 16, m.mask_id);
        generate(&m, fresh, &cfg, |_| {}).unwrap().canvas
    });
}

#[test]
fn block_diffusion_configs_name_what_they_lack() {
    for field in ["block_size", "mask_token_id"] {
        let (_t, d) = copy_of(SDAR);
        edit_json(&d.join("config.json"), |v| {
            v.as_object_mut().unwrap().remove(field);
        });
        let e = load_err(&d);
        assert!(
            e.contains("config.json") && e.contains(field),
            "{field}: {e}"
        );
    }
    let (_t, d) = copy_of(SDAR);
    edit_json(&d.join("config.json"), |v| v["block_size"] = 0.into());
    assert!(load_err(&d).contains("block_size"));
    // A generation length the model's block size does not divide.
    let model = Path::new(SDAR).canonicalize().unwrap();
    let out = ouroboros(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "def f():",
        "--gen-length",
        "6",
    ]);
    let text = support::text(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("config.json") && text.contains("block_size = 4"),
        "{text}"
    );
    // A rule block diffusion does not have.
    let out = ouroboros(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "def f():",
        "--gen-length",
        "8",
        "--sampler",
        "origin",
    ]);
    assert!(!out.status.success());
    assert!(
        support::text(&out).contains("--sampler origin"),
        "{}",
        support::text(&out)
    );
}
