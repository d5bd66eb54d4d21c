//! The official `openai` Python client (PyPI, installed by `scripts/openai-venv.sh install`, as
//! `.ci/run` does) against `ouroboros serve` with a diffusion checkpoint: the model listed,
//! infilling through `suffix`, a greedy completion equal to `generate --json`, chat through
//! the checkpoint's template, extension fields through `extra_body`, streaming refused with a
//! 400 naming the field, and a wrong key refused (the key read from `--api-key-env`).

#[path = "support/serve.rs"]
mod serve;
mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use serve::Served;

const TINY_SDAR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/diffusion/tiny-sdar"
);

fn client_python() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openai-venv/bin/python");
    assert!(
        p.is_file(),
        "no openai client at {}: install it once with `scripts/openai-venv.sh install` (or run .ci/run)",
        p.display()
    );
    p.display().to_string()
}

#[test]
fn the_official_client_completes_infills_chats_and_is_refused_streaming() {
    let python = client_python();
    let server = Served::start_env(
        &[
            "--model",
            TINY_SDAR,
            "--name",
            "sdar",
            "--api-key-env",
            "TEAM_KEY",
        ],
        &[("TEAM_KEY", "t0ken")],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/openai_compat.py");
    let o = Command::new(python)
        .arg(&script)
        .args([server.base.as_str(), "sdar", "t0ken"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(out["models"], serde_json::json!(["sdar"]));
    assert_eq!(out["infill"]["completion_tokens"], 16);
    assert_eq!(out["chat"]["role"], "assistant");
    assert!(out["stream"].as_str().unwrap().contains("400"), "{out}");

    let generated = support::ouroboros(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &[
            "generate",
            "--model",
            TINY_SDAR,
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
    assert!(generated.status.success(), "{}", support::text(&generated));
    let generated: Value = serde_json::from_slice(&generated.stdout).unwrap();
    assert_eq!(out["completion"], generated["text"]);
}

#[test]
fn an_unset_key_variable_is_named() {
    let o = support::ouroboros_env(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &[
            "serve",
            "--model",
            TINY_SDAR,
            "--port",
            "0",
            "--api-key-env",
            "NO_SUCH_KEY_VAR",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", support::text(&o));
    assert!(support::text(&o).contains("--api-key-env NO_SUCH_KEY_VAR"));
}
