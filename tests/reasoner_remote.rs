//! The reasoner's model paths through the command line: a GGUF chat model in-process, and the
//! same model behind a real HTTP server process on loopback (`ouroboros serve`), reached with
//! `--reasoner remote` the way vLLM, SGLang, llama.cpp's server or Ollama would be. Also the
//! failures a user meets: wrong model name, missing key, server down, `--offline`, bad flags.

#[path = "support/serve.rs"]
mod serve;
mod support;

use std::fs;
use std::path::Path;

use serve::Served;

use support::{ouroboros_env as ouroboros, text, TINY_LLADA};

const GGUF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reasoner/tiny-chat.gguf"
);
const TINY_QWEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/compressor/tiny-qwen2"
);

/// The tiny chat model served as `tiny-chat`, with `key` as its API key if given.
fn start(key: Option<&str>) -> Served {
    Served::start(&["--model", GGUF, "--name", "tiny-chat"], key)
}

fn project() -> tempfile::TempDir {
    support::project(&[(
        "stats.py",
        "def total(items):\n    s = 0\n    for i in items:\n        s += i\n    return s\n\n\ndef mean(items):\n    return total(items) / len(items)\n",
    )])
}

fn plan_json(dir: &Path, reasoner: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut args = vec![
        "plan",
        "Make mean safe on empty lists",
        "-t",
        "stats.py",
        "--json",
    ];
    args.extend_from_slice(reasoner);
    args.extend_from_slice(&["--reasoner-max-tokens", "32"]);
    let o = ouroboros(dir, &args, env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_served_model_answers_as_the_in_process_one_and_only_plan_units_survive() {
    let dir = project();
    let server = start(None);
    let remote = plan_json(
        dir.path(),
        &[
            "--reasoner",
            "remote",
            "--reasoner-url",
            &server.base,
            "--reasoner-model",
            "tiny-chat",
        ],
        &[],
    );
    let r = &remote["reasoner"];
    assert_eq!(r["model"]["kind"], "remote");
    assert_eq!(r["model"]["model"], "tiny-chat");
    assert_eq!(
        r["model"]["endpoint"],
        format!("{}/chat/completions", server.base)
    );
    assert!(r["prompt_tokens"].as_u64().unwrap() > 50, "{r}");
    assert!(r["completion_tokens"].as_u64().unwrap() <= 32, "{r}");
    let units: Vec<&str> = remote["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["symbol"].as_str().unwrap())
        .collect();
    assert!(!units.is_empty());
    for u in &units {
        assert!(["stats.total", "stats.mean"].contains(u), "{units:?}");
    }
    assert_eq!(
        r["fell_back"].as_bool().unwrap(),
        r["kept"] == serde_json::json!([])
    );

    // The same file in-process: the same greedy answer, so the HTTP path carried the request
    // and the reply faithfully; and the local record names the weights by hash.
    let local = plan_json(dir.path(), &["--reasoner-model", GGUF], &[]);
    assert_eq!(local["reasoner"]["answer"], r["answer"]);
    assert_eq!(local["reasoner"]["prompt_tokens"], r["prompt_tokens"]);
    assert_eq!(local["reasoner"]["model"]["kind"], "local");
    assert!(local["reasoner"]["model"]["weights_sha256"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    // A Hugging Face checkpoint directory works the same way.
    let hf = plan_json(dir.path(), &["--reasoner-model", TINY_QWEN], &[]);
    assert_eq!(hf["reasoner"]["model"]["model"], "tiny-qwen2");
    assert_eq!(hf["reasoner"]["model"]["kind"], "local");

    // Without a reasoner model there is no reasoner record.
    let graph_only = plan_json(dir.path(), &[], &[]);
    assert!(graph_only.get("reasoner").is_none());
}

#[test]
fn endpoint_errors_are_clear_and_exit_2() {
    let dir = project();
    let server = start(Some("s3cret"));
    let args = |model: &'static str, base: &str| -> Vec<String> {
        [
            "plan",
            "Tidy",
            "-t",
            "stats.py",
            "--reasoner",
            "remote",
            "--reasoner-url",
            base,
            "--reasoner-model",
            model,
            "--reasoner-retries",
            "1",
            "--reasoner-timeout",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |a: &[String], env: &[(&str, &str)]| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ouroboros(dir.path(), &a, env)
    };

    let o = run(&args("tiny-chat", &server.base), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("HTTP 401"), "{}", text(&o));
    assert!(text(&o).contains("set OUROBOROS_API_KEY"), "{}", text(&o));

    let key = [("OUROBOROS_API_KEY", "s3cret")];
    let o = run(&args("gpt-4", &server.base), &key);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("HTTP 404") && text(&o).contains("this server serves \"tiny-chat\""),
        "{}",
        text(&o)
    );

    let o = run(&args("tiny-chat", &server.base), &key);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("reasoner: tiny-chat (remote at"),
        "{}",
        text(&o)
    );

    // Nothing listening: refused connections, retried once, then a clear error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/v1", l.local_addr().unwrap().port())
    };
    let o = run(&args("tiny-chat", &closed), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("cannot connect after 2 attempt(s)") && text(&o).contains(&closed),
        "{}",
        text(&o)
    );

    // --offline refuses before any connection (the server would answer).
    let mut offline = args("tiny-chat", &server.base);
    offline.push("--offline".into());
    let o = run(&offline, &key);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--offline: --reasoner remote"),
        "{}",
        text(&o)
    );
    let o = run(
        &args("tiny-chat", &server.base),
        &[("OUROBOROS_API_KEY", "s3cret"), ("OUROBOROS_OFFLINE", "1")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = ouroboros(
        dir.path(),
        &["models", "pull", "GSAI-ML/LLaDA-8B-Instruct", "--offline"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--offline: models pull"), "{}", text(&o));
}

#[test]
fn bad_reasoner_flags_are_usage_errors() {
    let dir = project();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--reasoner", "remote"],
            "--reasoner remote needs --reasoner-url",
        ),
        (
            &["--reasoner", "remote", "--reasoner-url", "localhost:8080"],
            "--reasoner-url localhost:8080: not an http",
        ),
        (
            &[
                "--reasoner",
                "remote",
                "--reasoner-url",
                "http://127.0.0.1:9/v1",
            ],
            "needs --reasoner-model",
        ),
        (
            &["--reasoner-model", "missing.gguf"],
            "--reasoner-model missing.gguf: no such file",
        ),
        (
            &["--reasoner-url", "http://127.0.0.1:9/v1"],
            "only with --reasoner remote",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["plan", "Tidy", "-t", "stats.py"];
        args.extend_from_slice(extra);
        let o = ouroboros(dir.path(), &args, &[]);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(expected), "{extra:?}: {}", text(&o));
    }
    let o = ouroboros(dir.path(), &["plan", "  ", "-t", "stats.py"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("the task is empty"), "{}", text(&o));
}

/// `refactor --reasoner remote --scorer causal`: the refinement is in provenance (as a model
/// phase and in the refactor record), and replay re-applies the recorded answer without the
/// server.
#[test]
fn refactor_records_the_reasoner_and_replays_without_it() {
    let dir = project();
    let server = start(None);
    let o = ouroboros(
        dir.path(),
        &[
            "refactor",
            "Make mean safe on empty lists",
            "-t",
            "stats.py",
            "--model",
            TINY_LLADA,
            "--steps",
            "4",
            "--dry-run",
            "--reasoner",
            "remote",
            "--reasoner-url",
            &server.base,
            "--reasoner-model",
            "tiny-chat",
            "--reasoner-max-tokens",
            "24",
            "--scorer",
            "causal",
            "--scorer-model",
            TINY_QWEN,
        ],
        &[],
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("run: ").map(str::to_string))
        .unwrap_or_else(|| panic!("{}", text(&o)));
    let record: serde_json::Value = serde_json::from_slice(
        &fs::read(
            dir.path()
                .join(".ouroboros/runs")
                .join(&id)
                .join("artifact_metadata.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let reasoner = &record["refactor"]["reasoner"];
    assert_eq!(reasoner["model"]["kind"], "remote");
    assert!(reasoner["answer"].is_string());
    let phases: Vec<&str> = record["models_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"reasoner"), "{phases:?}");
    let compress = record["models_used"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["phase"] == "compressor")
        .unwrap();
    assert!(
        compress["purpose"].as_str().unwrap().contains("causal"),
        "{compress}"
    );

    drop(server);
    let o = ouroboros(dir.path(), &["replay", &id], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// `serve` speaks the OpenAI API's shapes for what clients get wrong, not only for what they
/// get right.
#[test]
fn serve_answers_bad_requests_in_the_openai_error_shape() {
    let server = start(None);
    let url = format!("{}/chat/completions", server.base);
    let post = |body: &str| -> (u16, serde_json::Value) {
        let r = ureq::post(&url)
            .set("Content-Type", "application/json")
            .send_string(body);
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (resp.status(), resp.into_json().unwrap())
    };
    let cases = [
        ("not json", 400, "not JSON"),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}]}"#,
            400,
            "\"model\" is required",
        ),
        (
            r#"{"model": "tiny-chat", "messages": []}"#,
            400,
            "non-empty list",
        ),
        (
            r#"{"model": "tiny-chat", "messages": [{"role": "user"}]}"#,
            400,
            "messages[0]",
        ),
        (
            r#"{"model": "tiny-chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#,
            400,
            "not supported",
        ),
        (
            r#"{"model": "tiny-chat", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}"#,
            400,
            "max_tokens",
        ),
    ];
    for (body, status, message) in cases {
        let (got, v) = post(body);
        assert_eq!(got, status, "{body}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(message),
            "{body}: {v}"
        );
    }
    // Text parts are accepted as content, and usage adds up.
    let (got, v) = post(
        r#"{"model": "tiny-chat", "max_tokens": 3, "temperature": 0, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}"#,
    );
    assert_eq!(got, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    let usage = &v["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    let get =
        |path: &str| match ureq::get(&format!("{}{path}", server.base.trim_end_matches("/v1")))
            .call()
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        };
    assert_eq!(get("/health"), 200);
    assert_eq!(get("/v1/models"), 200);
    assert_eq!(get("/v1/chat/completions"), 405);
    assert_eq!(get("/v2/anything"), 404);
}

/// The status line of a raw HTTP exchange: what the server says to bytes a client sent.
fn raw_status(base: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = base
        .strip_prefix("http://")
        .and_then(|a| a.strip_suffix("/v1"))
        .unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// What a hostile or broken client sends gets a 4xx, never a server error, and the server
/// keeps serving: an overflowing `max_tokens`, a head too big or with too many headers, and a
/// request whose two Content-Length headers disagree (the way requests are smuggled).
#[test]
fn serve_bounds_what_clients_send() {
    let server = start(None);
    let url = format!("{}/chat/completions", server.base);
    let r = ureq::post(&url)
        .set("Content-Type", "application/json")
        .send_string(r#"{"model": "tiny-chat", "max_tokens": 18446744073709551615, "messages": [{"role": "user", "content": "hi"}]}"#);
    let resp = match r {
        Err(ureq::Error::Status(_, r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.into_json().unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("max_tokens 18446744073709551615"),
        "{message}"
    );

    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 << 10)
    );
    assert!(raw_status(&server.base, big.as_bytes()).contains(" 431 "));
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert!(raw_status(&server.base, many.as_bytes()).contains(" 431 "));
    let smuggled = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}";
    assert!(raw_status(&server.base, smuggled.as_bytes()).contains(" 400 "));
    let health = ureq::get(&format!("{}/health", server.base.trim_end_matches("/v1")))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
}
