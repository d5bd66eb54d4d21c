//! `--generator remote`: `plan`, `refactor` and `replay` with the diffusion model on an
//! `ouroboros serve` process reached over loopback HTTP, compared with the same commands
//! in-process; another OpenAI-compatible server (`serve --openai-only` stands in for one) with
//! repair falling back to regeneration; and the refusals a user meets.

#[path = "support/serve.rs"]
mod serve;
mod support;

use std::path::Path;

use serde_json::Value;
use serve::Served;
use support::{always_writes, ouroboros_env, record, run_id, text, OPEN_PAREN, TINY_LLADA};

const PY: &str = "def total(items):\n    s = 0\n    for i in items:\n        s += i\n    return s\n\n\ndef mean(items):\n    return total(items) / len(items)\n";
const TINY_SDAR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/diffusion/tiny-sdar"
);

fn project() -> tempfile::TempDir {
    support::project(&[("stats.py", PY)])
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    ouroboros_env(dir, args, &[])
}

fn remote<'a>(server: &'a Served, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--generator", "remote", "--generator-url", &server.base]);
    all
}

/// What a run decided, without what differs between any two runs (ids, times, paths).
fn decisions(r: &Value) -> Value {
    let attempts: Vec<Value> = r["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.as_object_mut().unwrap().remove("duration_ms");
            a
        })
        .collect();
    serde_json::json!({
        "attempts": attempts,
        "units": r["refactor"]["units"],
        "safety": r["safety_checks"].as_array().unwrap().iter()
            .map(|c| (c["check_type"].clone(), c["passed"].clone())).collect::<Vec<_>>(),
    })
}

fn generator_entry(r: &Value) -> Value {
    r["models_used"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["phase"] == "generator")
        .cloned()
        .unwrap_or_else(|| panic!("no generator entry in {r}"))
}

/// The diff and table a dry run prints, without the lines naming the run.
fn shown(o: &std::process::Output) -> String {
    text(o)
        .lines()
        .filter(|l| !l.starts_with("run: ") && !l.starts_with("provenance: "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Done-when of the serving issue: the bundled model served, `refactor` pointed at it, the
/// same result as in-process: the same diff, units and attempts, the context ranked through the
/// server's loss route (each project has its own score cache, so nothing is reused).
#[test]
fn a_dry_run_through_the_server_is_the_in_process_one() {
    let server = Served::start(&[], None);
    assert_eq!(server.name, "ouro-code-tiny");
    let here = project();
    let there = project();
    let args = [
        "refactor",
        "Make mean safe on empty lists",
        "-t",
        "stats.py",
        "--dry-run",
    ];
    let local = run(here.path(), &args);
    let far = run(there.path(), &remote(&server, &args));
    assert_eq!(local.status.code(), far.status.code(), "{}", text(&far));
    assert!(shown(&far).contains("--- a/stats.py"), "{}", text(&far));
    assert_eq!(shown(&local), shown(&far));
    let (a, b) = (
        record(here.path(), &run_id(&local)),
        record(there.path(), &run_id(&far)),
    );
    assert_eq!(decisions(&a), decisions(&b));
    let g = generator_entry(&b);
    assert_eq!(g["endpoint"], server.base);
    assert_eq!(g["model_name"], "ouro-code-tiny");
    assert_eq!(g["device"], "remote");
    assert!(g["repair"]
        .as_str()
        .unwrap()
        .contains("/v1/ouroboros/denoise"));
    assert_eq!(g["weights_sha256"], generator_entry(&a)["weights_sha256"]);
    assert_eq!(
        b["refactor"]["request"]["options"]["generator"]["kind"],
        "remote"
    );
}

/// Code that never parses: the first draft, a repair of it, a regeneration and a second repair,
/// with the repairs denoised by the server, identical to the in-process attempts.
#[test]
fn repairs_go_through_the_denoise_endpoint() {
    let models = tempfile::tempdir().unwrap();
    let broken = always_writes(OPEN_PAREN, &models.path().join("paren"));
    let broken = broken.to_str().unwrap();
    let server = Served::start(&["--model", broken], None);
    let dir = project();
    let args = [
        "refactor",
        "Speed it up",
        "-t",
        "stats.py",
        "-f",
        "total",
        "--dry-run",
        "--model",
        broken,
    ];
    let local = run(dir.path(), &args);
    let far = run(dir.path(), &remote(&server, &args));
    assert_eq!(far.status.code(), Some(1), "{}", text(&far));
    let (a, b) = (
        record(dir.path(), &run_id(&local)),
        record(dir.path(), &run_id(&far)),
    );
    assert_eq!(decisions(&a), decisions(&b));
    let actions: Vec<&str> = b["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["generate", "repair", "regenerate", "repair"]);
    assert!(b["attempts"][1]["remasked_tokens"].as_u64().unwrap() > 0);
}

/// A block-diffusion checkpoint with a chat template: instruct mode through
/// `/v1/chat/completions`, as in-process.
#[test]
fn instruct_goes_through_chat() {
    let server = Served::start(&["--model", TINY_SDAR], None);
    let dir = project();
    let args = [
        "refactor",
        "Simplify",
        "-t",
        "stats.py",
        "-f",
        "mean",
        "--dry-run",
        "--model",
        TINY_SDAR,
        "--max-retries",
        "1",
        "--scorer",
        "graph",
    ];
    let local = run(dir.path(), &args);
    let far = run(dir.path(), &remote(&server, &args));
    assert_eq!(local.status.code(), far.status.code(), "{}", text(&far));
    let (a, b) = (
        record(dir.path(), &run_id(&local)),
        record(dir.path(), &run_id(&far)),
    );
    assert!(generator_entry(&b)["purpose"]
        .as_str()
        .unwrap()
        .contains("(instruct)"));
    assert_eq!(decisions(&a), decisions(&b));
    assert_eq!(shown(&local), shown(&far));
}

/// A server with only the standard routes: infill through completions, every failure
/// regenerated with the errors fed back (no re-masking), and the record says so.
#[test]
fn another_server_falls_back_to_regeneration() {
    let models = tempfile::tempdir().unwrap();
    let broken = always_writes(OPEN_PAREN, &models.path().join("paren"));
    let broken = broken.to_str().unwrap();
    let server = Served::start(&["--model", broken, "--openai-only"], None);
    let (status, _) = server.get("ouroboros/checkpoint");
    assert_eq!(status, 404);
    let dir = project();
    let args = [
        "refactor",
        "Speed it up",
        "-t",
        "stats.py",
        "-f",
        "total",
        "--dry-run",
        "--model",
        broken,
        "--scorer",
        "graph",
    ];
    let far = run(dir.path(), &remote(&server, &args));
    assert_eq!(far.status.code(), Some(1), "{}", text(&far));
    assert!(
        text(&far).contains("only the standard OpenAI fields"),
        "{}",
        text(&far)
    );
    let r = record(dir.path(), &run_id(&far));
    let actions: Vec<&str> = r["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["generate", "regenerate", "regenerate", "regenerate"]
    );
    assert!(!r["attempts"][1]["errors"].as_array().unwrap().is_empty());
    let g = generator_entry(&r);
    assert!(
        g["repair"].as_str().unwrap().starts_with("regeneration"),
        "{g}"
    );
    assert!(r["refactor"]["units"][0]["status"]
        .as_str()
        .unwrap()
        .starts_with("invalid"));
    // Ranking context by the model's loss needs the native route: said, naming the flag.
    let o = run(dir.path(), &remote(&server, &args[..9]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--scorer model"), "{}", text(&o));
}

/// `replay` of a remote run: on the run's server, in-process, and refused on a server whose
/// weights are not the run's.
#[test]
fn replay_checks_the_servers_weights() {
    let server = Served::start(&["--model", TINY_LLADA, "--name", "tiny"], None);
    let dir = project();
    let args = [
        "refactor",
        "Speed it up",
        "-t",
        "stats.py",
        "--dry-run",
        "--model",
        TINY_LLADA,
        "--max-retries",
        "1",
    ];
    let far = run(dir.path(), &remote(&server, &args));
    let id = run_id(&far);
    let again = run(dir.path(), &["replay", &id]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("byte-identical"), "{}", text(&again));
    let here = run(dir.path(), &["replay", &id, "--generator", "local"]);
    assert_eq!(here.status.code(), Some(0), "{}", text(&here));

    let other = Served::start(&[], None);
    let o = run(
        dir.path(),
        &[
            "replay",
            &id,
            "--generator",
            "remote",
            "--generator-url",
            &other.base,
        ],
    );
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("refusing to replay"), "{}", text(&o));
    assert!(text(&o).contains(&other.base), "{}", text(&o));
}

/// `plan --show-context` ranks context through the server, as in-process.
#[test]
fn plan_compresses_through_the_server() {
    let server = Served::start(&[], None);
    let (here, there) = (project(), project());
    let args = [
        "plan",
        "Make mean safe",
        "-t",
        "stats.py",
        "--show-context",
        "--json",
    ];
    let local = run(here.path(), &args);
    let far = run(there.path(), &remote(&server, &args));
    assert_eq!(far.status.code(), Some(0), "{}", text(&far));
    let (a, b): (Value, Value) = (
        serde_json::from_slice(&local.stdout).unwrap(),
        serde_json::from_slice(&far.stdout).unwrap(),
    );
    let items = |v: &Value| -> Vec<Value> {
        v["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["context"]["items"].clone())
            .collect()
    };
    assert!(b["units"][0]["context"]["scorer"]["device"]
        .as_str()
        .unwrap()
        .starts_with("remote"));
    assert_eq!(items(&a), items(&b));
}

#[test]
fn bad_generator_flags_and_servers_are_named() {
    let dir = project();
    let base = ["refactor", "Speed it up", "-t", "stats.py", "--dry-run"];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let check = |args: Vec<String>, env: &[(&str, &str)], code: i32, says: &[&str]| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = ouroboros_env(dir.path(), &refs, env);
        assert_eq!(o.status.code(), Some(code), "{}", text(&o));
        for s in says {
            assert!(text(&o).contains(s), "{s:?} not in {}", text(&o));
        }
        assert!(!dir.path().join(".ouroboros/runs").exists(), "{}", text(&o));
    };
    check(
        with(&["--generator", "remote"]),
        &[],
        2,
        &["--generator-url"],
    );
    check(
        with(&["--generator-url", "http://127.0.0.1:1/v1"]),
        &[],
        2,
        &["--generator-url", "--generator remote"],
    );
    check(
        with(&["--generator", "remote", "--generator-url", "localhost:8080"]),
        &[],
        2,
        &["--generator-url localhost:8080"],
    );
    check(
        with(&[
            "--generator",
            "remote",
            "--generator-url",
            "http://127.0.0.1:9/v1",
        ]),
        &[("OUROBOROS_OFFLINE", "1")],
        2,
        &["--offline", "--generator remote"],
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/v1");
    check(
        with(&[
            "--generator",
            "remote",
            "--generator-url",
            &url,
            "--generator-retries",
            "0",
        ]),
        &[],
        2,
        &["cannot connect", "--generator-url"],
    );
    let server = Served::start(&["--model", TINY_LLADA, "--name", "tiny"], Some("k3y"));
    check(
        with(&["--generator", "remote", "--generator-url", &server.base]),
        &[],
        2,
        &["HTTP 401", "OUROBOROS_API_KEY"],
    );
    check(
        with(&[
            "--generator",
            "remote",
            "--generator-url",
            &server.base,
            "--generator-model",
            "gpt-4",
        ]),
        &[("OUROBOROS_API_KEY", "k3y")],
        2,
        &["serves [tiny]", "--generator-model gpt-4"],
    );
}

/// `bench humaneval` with the canvases denoised by the server (batched as it batches
/// concurrent clients): every completion the in-process one. `bench speed` times this process
/// only, and says so.
#[test]
fn bench_denoises_through_the_server() {
    let server = Served::start(&[], None);
    let dir = tempfile::tempdir().unwrap();
    let bench = |extra: &[&str], out: &str| {
        let mut args = vec![
            "bench",
            "humaneval",
            "--problems",
            "3",
            "--gen-length",
            "32",
            "--steps",
            "8",
            "--batch",
            "3",
            "-o",
            "jsonl",
            "--samples-out",
            out,
        ];
        args.extend_from_slice(extra);
        let o = run(dir.path(), &args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let row: Value = serde_json::from_slice(&o.stdout).unwrap();
        (row, std::fs::read_to_string(dir.path().join(out)).unwrap())
    };
    let (here, here_samples) = bench(&[], "here.jsonl");
    let (far, far_samples) = bench(
        &["--generator", "remote", "--generator-url", &server.base],
        "far.jsonl",
    );
    assert_eq!(here_samples.lines().count(), 3);
    assert_eq!(here_samples, far_samples);
    assert_eq!(here["forwards"], far["forwards"]);
    assert_eq!(far["backend"], format!("remote {}", server.base));
    let o = run(
        dir.path(),
        &[
            "bench",
            "speed",
            "--generator",
            "remote",
            "--generator-url",
            &server.base,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("serve_load.py"), "{}", text(&o));
}
