//! The local planner on a small project: edit units, callees first, context, warnings.

mod support;

use std::path::Path;

use ouroboros::librarian::{self, CodeGraph, GraphStore, IndexOptions, SqliteStore};
use ouroboros::reasoner::{self, ContextRole, PlanError};
use support::write;

fn graph(root: &Path) -> CodeGraph {
    let mut store = SqliteStore::open(&librarian::default_db(root)).unwrap();
    librarian::index(
        root,
        &mut store,
        &IndexOptions {
            max_file_size: 1 << 20,
        },
        &|_, _| {},
    )
    .unwrap();
    CodeGraph::new(store.load_graph().unwrap())
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "svc/__init__.py", "");
    write(
        r,
        "svc/users.py",
        "TTL = 60\n\ndef load(uid):\n    return fetch(uid)\n\ndef fetch(uid):\n    return {'id': uid, 'ttl': TTL}\n\ndef _ping():\n    return ping_back()\n\ndef ping_back():\n    return _ping()\n",
    );
    write(
        r,
        "app.py",
        "from svc.users import load\n\ndef main():\n    return load(1)\n",
    );
    write(
        r,
        "tests/test_users.py",
        "from svc.users import load\n\ndef test_load():\n    assert load(1)\n",
    );
    dir
}

#[test]
fn units_come_callees_first_with_their_context() {
    let p = project();
    let g = graph(p.path());
    let plan = reasoner::plan(&g, "cache users", &["svc/users.py".into()], &[]).unwrap();
    let order: Vec<&str> = plan.units.iter().map(|u| u.symbol.as_str()).collect();
    let pos = |s: &str| order.iter().position(|o| *o == s).unwrap();
    assert!(pos("svc.users.fetch") < pos("svc.users.load"), "{order:?}");
    assert_eq!(plan.units.len(), 4, "{order:?}");

    let load = &plan.units[pos("svc.users.load")];
    assert_eq!(load.callers, vec!["app.main", "tests.test_users.test_load"]);
    assert_eq!(load.callees, vec!["svc.users.fetch"]);
    assert_eq!(load.tests, vec!["tests/test_users.py"]);
    assert!(load.blast_radius >= 2);
    assert!(load.public_api);
    assert_eq!(load.context_items[0].symbol, "svc.users.fetch");
    assert_eq!(load.context_items[0].role, ContextRole::Definition);
    assert!(load
        .context_items
        .iter()
        .any(|c| c.symbol == "app.main" && c.role == ContextRole::CallerSignature));
    let fetch = &plan.units[pos("svc.users.fetch")];
    assert!(fetch
        .context_items
        .iter()
        .any(|c| c.symbol == "svc.users.TTL"));
    assert!(!plan.units[pos("svc.users._ping")].public_api);

    let w = plan.warnings.join("\n");
    assert!(
        w.contains("call cycle among svc.users._ping, svc.users.ping_back"),
        "{w}"
    );
    assert!(
        w.contains("svc.users.load is public API with 2 caller(s)"),
        "{w}"
    );
}

#[test]
fn functions_narrow_the_plan_and_bad_names_are_errors() {
    let p = project();
    let g = graph(p.path());
    let plan = reasoner::plan(&g, "t", &["svc/users.py".into()], &["load".into()]).unwrap();
    assert_eq!(plan.units.len(), 1);
    assert_eq!(plan.units[0].reason, "named with --function load");
    let e = reasoner::plan(&g, "t", &["svc/users.py".into()], &["nope".into()]).unwrap_err();
    assert!(matches!(e, PlanError::UnknownFunction { .. }));
    // The error lists what the file does define.
    let e = e.to_string();
    assert!(e.contains("--function nope"), "{e}");
    assert!(
        e.contains("svc.users.load") && e.contains("svc.users.fetch"),
        "{e}"
    );
    assert!(matches!(
        reasoner::plan(&g, " \n", &["svc/users.py".into()], &[]),
        Err(PlanError::EmptyTask)
    ));
    assert!(matches!(
        reasoner::plan(&g, "t", &["svc/none.py".into()], &[]),
        Err(PlanError::UnknownTarget(_))
    ));
}

/// `plan --show-context --json` on a real (tiny, random-weight) checkpoint: the figures the
/// issue asks for are there and consistent, the budget holds, and a second run scores nothing.
#[test]
fn show_context_compresses_within_budget_and_caches_scores() {
    let dir = project();
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/diffusion/tiny-llada"
    );
    let run = |budget: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ouroboros"))
            .current_dir(dir.path())
            .args([
                "plan",
                "Add caching",
                "-t",
                "svc/users.py",
                "--root",
                ".",
                "--json",
                "--show-context",
                "--model",
                model,
                "--budget",
                budget,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run("20");
    let load = first["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["symbol"] == "svc.users.load")
        .unwrap();
    let ctx = &load["context"];
    let before = ctx["tokens_before"].as_u64().unwrap();
    let after = ctx["tokens_after"].as_u64().unwrap();
    assert!(before > 20, "{ctx}");
    assert!(after <= 20, "{ctx}");
    let ratio = ctx["compression_ratio"].as_f64().unwrap();
    assert!((ratio - after as f64 / before as f64).abs() < 1e-12);
    assert_eq!(ctx["scorer"]["model"], "tiny-llada");
    assert!(ctx["scorer"]["weights_sha256"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(ctx["forward_passes"].as_u64().unwrap() > 0);
    let items = ctx["items"].as_array().unwrap();
    assert!(items.iter().any(|i| i["symbol"] == "svc.users.fetch"));
    assert!(items
        .iter()
        .all(|i| i["gain_full"].as_f64().unwrap().is_finite()));

    // A budget the window cannot give is refused, with the numbers.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ouroboros"))
        .current_dir(dir.path())
        .args([
            "plan",
            "Add caching",
            "-t",
            "svc/users.py",
            "--root",
            ".",
            "--show-context",
            "--model",
            model,
            "--budget",
            "1000000",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("--budget 1000000:") && e.contains("which leaves at most"),
        "{e}"
    );

    let second = run("20");
    let again = second["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["symbol"] == "svc.users.load")
        .unwrap();
    assert_eq!(again["context"]["forward_passes"], 0);
    assert_eq!(ctx["cache_hits"], 0);
    assert!(again["context"]["cache_hits"].as_u64().unwrap() >= items.len() as u64);
    assert_eq!(again["context"]["items"], ctx["items"]);
}

mod refine {
    use super::*;
    use ouroboros::reasoner::local::LocalChat;
    use ouroboros::reasoner::refine::{self, apply_answer, Dropped, Options};

    fn plan_of(g: &CodeGraph) -> reasoner::Plan {
        reasoner::plan(g, "cache users", &["svc/users.py".into()], &[]).unwrap()
    }

    #[test]
    fn picks_are_checked_against_the_graph_and_unknown_symbols_dropped() {
        let p = project();
        let g = graph(p.path());
        let plan = plan_of(&g);
        let answer = r#"Sure! Here is the plan:
```json
{"units": [
  {"symbol": "load", "change": "Return a cached record when there is one."},
  {"symbol": "svc.users.nope", "change": "x"},
  {"symbol": "app.main", "change": "y"},
  {"symbol": "svc.users.fetch", "change": "Keep a dict of fetched users."},
  {"symbol": "svc.users.load", "change": "Expire entries after TTL."}
]}
```"#;
        let (refined, kept, dropped, fell_back) = apply_answer(&plan, &g, answer);
        assert!(!fell_back);
        // Plan order (callees first) is kept, whatever order the model answered in.
        assert_eq!(kept, vec!["svc.users.fetch", "svc.users.load"]);
        let order: Vec<&str> = refined.units.iter().map(|u| u.symbol.as_str()).collect();
        assert_eq!(order, kept);
        assert_eq!(
            refined.units[1].description.as_deref(),
            Some("Return a cached record when there is one.; Expire entries after TTL.")
        );
        assert!(refined.units[0]
            .reason
            .ends_with("picked by the reasoner model"));
        assert_eq!(
            dropped,
            vec![
                Dropped {
                    symbol: "svc.users.nope".into(),
                    why: "no such symbol in the code graph".into()
                },
                Dropped {
                    symbol: "app.main".into(),
                    why: "in the code graph but not a unit of the plan (only the targets' units can be picked)".into()
                },
            ]
        );
        let w = refined.warnings.join("\n");
        assert!(w.contains("reasoner: dropped \"svc.users.nope\""), "{w}");
        assert!(w.contains("reasoner: dropped \"app.main\""), "{w}");
        // The graph's own warnings stay.
        assert!(w.contains("call cycle"), "{w}");
    }

    #[test]
    fn an_unusable_answer_leaves_the_graph_plan() {
        let p = project();
        let g = graph(p.path());
        let plan = plan_of(&g);
        for answer in [
            "I would cache it.",
            r#"{"units": "all"}"#,
            r#"{"units": [{"symbol": "nothing.here", "change": ""}]}"#,
        ] {
            let (refined, kept, _, fell_back) = apply_answer(&plan, &g, answer);
            assert!(fell_back, "{answer}");
            assert!(kept.is_empty());
            let symbols = |p: &reasoner::Plan| -> Vec<String> {
                p.units.iter().map(|u| u.symbol.clone()).collect()
            };
            assert_eq!(symbols(&refined), symbols(&plan));
            assert!(refined
                .warnings
                .last()
                .unwrap()
                .contains("the graph plan is used as it is"));
        }
    }

    #[test]
    fn the_request_names_every_candidate_in_the_schema() {
        let p = project();
        let g = graph(p.path());
        let plan = plan_of(&g);
        let req = refine::request(
            &plan,
            &Options {
                max_tokens: 64,
                temperature: 0.0,
                seed: 3,
            },
        );
        let user = &req.messages[1].content;
        assert!(user.starts_with("Task: cache users"));
        let schema = req.json_schema.unwrap();
        let names = schema
            .pointer("/properties/units/items/properties/symbol/enum")
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(names.len(), plan.units.len());
        for u in &plan.units {
            assert!(user.contains(&u.symbol));
            assert!(names.contains(&serde_json::Value::from(u.symbol.clone())));
        }
    }

    /// The in-process GGUF model end to end: its answer (noise, from random weights) is
    /// recorded with the model's hash, and whatever it says, only plan units survive.
    #[test]
    fn a_local_gguf_model_refines_or_falls_back() {
        let p = project();
        let g = graph(p.path());
        let plan = plan_of(&g);
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reasoner/tiny-chat.gguf");
        let mut chat = LocalChat::load(&path, &candle_core::Device::Cpu).unwrap();
        let options = Options {
            max_tokens: 24,
            temperature: 0.0,
            seed: 7,
        };
        let (refined, r) = refine::refine(&plan, &g, &mut chat, &options).unwrap();
        assert_eq!(r.model.kind, "local");
        assert!(r
            .model
            .weights_sha256
            .as_deref()
            .unwrap()
            .starts_with("sha256:"));
        assert!(r.completion_tokens > 0 && r.completion_tokens <= 24);
        assert!(r.prompt_tokens > 50);
        assert_eq!(r.fell_back, r.kept.is_empty());
        for u in &refined.units {
            assert!(plan.units.iter().any(|o| o.symbol == u.symbol));
        }
        let (_, again) = refine::refine(&plan, &g, &mut chat, &options).unwrap();
        assert_eq!(again.answer, r.answer, "greedy answers repeat");
    }
}

/// `--scorer causal`: the context ranked by a causal LM's perplexity gain (a tiny random Qwen2,
/// whose losses tests/fixtures/compressor checks against PyTorch), recorded with its hash.
#[test]
fn show_context_with_a_causal_scorer() {
    let dir = project();
    let qwen = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/compressor/tiny-qwen2"
    );
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/diffusion/tiny-llada"
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "plan",
            "Add caching",
            "-t",
            "svc/users.py",
            "-f",
            "load",
            "--root",
            ".",
            "--json",
            "--show-context",
            "--model",
            model,
            "--budget",
            "20",
        ];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_ouroboros"))
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--scorer", "causal", "--scorer-model", qwen]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ctx = &v["units"][0]["context"];
    assert_eq!(ctx["strategy"], "causal");
    assert_eq!(ctx["scorer"]["model"], "tiny-qwen2");
    assert!(ctx["scorer"]["method"]
        .as_str()
        .unwrap()
        .starts_with("causal LM"));
    assert!(ctx["scorer"]["weights_sha256"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    // One pass for the unit alone, one per form of each item.
    let items = ctx["items"].as_array().unwrap();
    assert!(ctx["forward_passes"].as_u64().unwrap() > items.len() as u64);
    assert!(ctx["tokens_after"].as_u64().unwrap() <= 20);
    assert!(items
        .iter()
        .all(|i| i["gain_full"].as_f64().unwrap().is_finite()));

    let out = run(&["--scorer", "causal"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scorer causal needs --scorer-model"));
    let out = run(&["--scorer-model", qwen]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only read with --scorer causal"));
}
