//! `ouroboros serve` with a diffusion checkpoint, as a separate process on a free loopback port,
//! reached over real HTTP: completions equal to `generate --json`, infilling through `suffix`,
//! chat through the checkpoint's template, the native denoise route, concurrent clients
//! batched without changing any answer, and bad requests named.

#[path = "support/serve.rs"]
mod serve;
mod support;

use std::path::Path;

use serve::Served;

use serde_json::{json, Value};
use support::{ouroboros, TINY_LLADA};

const TINY_SDAR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/diffusion/tiny-sdar"
);

fn start(model: &str, name: &str) -> Served {
    let served = Served::start(&["--model", model, "--name", name], None);
    assert_eq!(served.name, name);
    served
}

fn completion(prompt: &str, seed: u64) -> Value {
    json!({
        "model": "tiny", "prompt": prompt, "max_tokens": 16, "steps": 8,
        "block_length": 8, "seed": seed,
    })
}

#[test]
fn a_greedy_completion_is_what_generate_prints() {
    let server = start(TINY_LLADA, "tiny");
    let (status, answer) = server.post("completions", &completion("def add(a, b):\n", 3));
    assert_eq!(status, 200, "{answer}");
    let out = ouroboros(
        Path::new("."),
        &[
            "generate",
            "--model",
            TINY_LLADA,
            "--prompt",
            "def add(a, b):\n",
            "--gen-length",
            "16",
            "--steps",
            "8",
            "--block-length",
            "8",
            "--seed",
            "3",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", support::text(&out));
    let generated: Value = serde_json::from_str(&support::stdout(&out)).unwrap();
    assert_eq!(answer["choices"][0]["text"], generated["text"]);
    assert_eq!(answer["usage"]["completion_tokens"], 16);
    assert_eq!(
        answer["ouroboros"]["forward_passes"],
        generated["forward_passes"]
    );
    assert!(answer["ouroboros"]["weights_sha256"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let (_, models) = server.get("models");
    assert_eq!(models["data"][0]["family"], "llada");
}

#[test]
fn sixteen_concurrent_clients_get_what_each_gets_alone() {
    let server = start(TINY_LLADA, "tiny");
    let prompts: Vec<String> = (0..16)
        .map(|i| format!("def f{i}(x):\n    return x + {i}\n\ndef g(y):\n"))
        .collect();
    let alone: Vec<Value> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| server.post("completions", &completion(p, i as u64)).1)
        .collect();
    let together: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let server = &server;
                s.spawn(move || server.post("completions", &completion(p, i as u64)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap().1).collect()
    });
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a["choices"], t["choices"], "client {i}");
        assert_eq!(a["usage"], t["usage"], "client {i}");
    }
}

#[test]
fn infill_chat_and_denoise() {
    let server = start(TINY_LLADA, "tiny");
    let (status, infill) = server.post(
        "completions",
        &json!({"model": "tiny", "prompt": "def f(a):\n", "suffix": "\n\nprint(f(1))\n",
                "max_tokens": 8, "steps": 4}),
    );
    assert_eq!(status, 200, "{infill}");
    assert!(infill["choices"][0]["text"].is_string());

    let (status, denoised) = server.post(
        "ouroboros/denoise",
        &json!({"model": "tiny", "tokens": [5, 6, 7, 8, 9, 10], "positions": [3, 1]}),
    );
    assert_eq!(status, 200, "{denoised}");
    assert_eq!(denoised["positions"], json!([1, 3]));
    let tokens = denoised["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 6);
    assert_eq!((tokens[0].clone(), tokens[2].clone()), (json!(5), json!(7)));
    assert_eq!(denoised["denoised"], json!([tokens[1], tokens[3]]));

    // tiny-llada has no chat template: the error says so.
    let (status, chat) = server.post(
        "chat/completions",
        &json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(status, 400, "{chat}");
    assert!(chat["error"]["message"]
        .as_str()
        .unwrap()
        .contains("chat_template"));

    let sdar = start(TINY_SDAR, "sdar");
    let (status, chat) = sdar.post(
        "chat/completions",
        &json!({"model": "sdar", "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 8}),
    );
    assert_eq!(status, 200, "{chat}");
    assert_eq!(chat["object"], "chat.completion");
    assert!(chat["choices"][0]["message"]["content"].is_string());
    assert_eq!(chat["ouroboros"]["block_length"], 4);
}

#[test]
fn bad_requests_name_the_field() {
    let server = start(TINY_LLADA, "tiny");
    let cases = [
        (
            json!({"model": "tiny", "prompt": "x", "bogus": 1}),
            "\"bogus\"",
        ),
        (
            json!({"model": "tiny", "prompt": "x", "threshold": 2}),
            "threshold",
        ),
        (
            json!({"model": "tiny", "prompt": "x", "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"model": "tiny", "prompt": "x", "sampler": "best"}),
            "sampler",
        ),
        (
            json!({"model": "tiny", "prompt": "x", "cache": "all"}),
            "cache",
        ),
        (
            json!({"model": "tiny", "prompt": "x", "stream": true}),
            "stream",
        ),
        (json!({"model": "tiny", "prompt": 3}), "\"prompt\""),
        (
            json!({"model": "tiny", "prompt": "x", "max_tokens": 12, "steps": 16}),
            "--steps 16",
        ),
    ];
    for (body, needle) in cases {
        let (status, answer) = server.post("completions", &body);
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let (status, answer) = server.post(
        "ouroboros/denoise",
        &json!({"model": "tiny", "tokens": [1, 2], "positions": [5]}),
    );
    assert_eq!(status, 400);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("positions"));
}

/// Fast-dLLM v2 (its sub-block loop, threshold 0.9) and Open-dCoder (p2, its family from the
/// fixture's local manifest) are served as `generate` runs them.
#[test]
fn block_and_remasking_families_serve_what_generate_prints() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/diffusion");
    for (dir, extra) in [
        (
            "tiny-fast-dllm-v2",
            json!({"threshold": 0.9, "block_length": 8}),
        ),
        ("tiny-open-dcoder", json!({"steps": 8, "block_length": 16})),
    ] {
        let model = format!("{fixtures}/{dir}");
        let server = start(&model, "m");
        let mut body = json!({"model": "m", "prompt": "def add(a, b):\n", "max_tokens": 16});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, answer) = server.post("completions", &body);
        assert_eq!(status, 200, "{dir}: {answer}");
        let mut args = vec![
            "generate",
            "--model",
            &model,
            "--prompt",
            "def add(a, b):\n",
            "--gen-length",
            "16",
            "--json",
        ];
        let (threshold, steps) = (extra["threshold"].to_string(), extra["steps"].to_string());
        let block = extra["block_length"].to_string();
        args.extend(["--block-length", &block]);
        if extra.get("threshold").is_some() {
            args.extend(["--threshold", &threshold]);
        }
        if extra.get("steps").is_some() {
            args.extend(["--steps", &steps]);
        }
        let out = ouroboros(Path::new("."), &args);
        assert!(out.status.success(), "{dir}: {}", support::text(&out));
        let generated: Value = serde_json::from_str(&support::stdout(&out)).unwrap();
        assert_eq!(answer["choices"][0]["text"], generated["text"], "{dir}");
        assert_eq!(
            answer["ouroboros"]["sampler"], generated["sampler"],
            "{dir}"
        );
    }
}
