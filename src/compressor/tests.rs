use std::path::PathBuf;

use super::*;
use crate::reasoner::ContextRole;

fn codec() -> TextCodec {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diffusion/tiny-llada");
    TextCodec::load(&dir).unwrap()
}

fn item(symbol: &str, priority: f64, signature: &str) -> ContextItem {
    ContextItem {
        symbol: symbol.into(),
        file: "pkg/m.py".into(),
        lines: (1, 1),
        signature: signature.into(),
        doc: None,
        role: ContextRole::Definition,
        priority,
    }
}

fn candidate(symbol: &str, priority: f64, body_lines: usize) -> Candidate {
    let sig = format!("def {symbol}(x)");
    let mut full = format!("# pkg/m.py:1-{} {symbol}\n{sig}:\n", body_lines + 1);
    for i in 0..body_lines {
        full.push_str(&format!("    x = x + {i} * {symbol}_helper(x)\n"));
    }
    let it = item(symbol, priority, &sig);
    let signature = render_signature(&it).map(|s| format!("# pkg/m.py:1 {symbol}\n{s}"));
    Candidate {
        item: it,
        full,
        signature,
        blocks: None,
    }
}

fn unit() -> EditUnit {
    EditUnit {
        symbol: "pkg.m.target".into(),
        kind: "function",
        file: "pkg/m.py".into(),
        lines: (1, 3),
        signature: "def target(x)".into(),
        reason: "test".into(),
        description: None,
        callers: vec![],
        callees: vec![],
        blast_radius: 0,
        tests: vec![],
        public_api: true,
        context_items: vec![],
    }
}

/// Gains by content: a text with the body of `useful` helps, everything else does not.
struct ByContent {
    calls: usize,
}

impl Scorer for ByContent {
    fn info(&self) -> ScorerInfo {
        ScorerInfo {
            method: "by-content".into(),
            model: "none".into(),
            weights_sha256: "sha256:0".into(),
            device: "cpu".into(),
            dtype: "f32".into(),
        }
    }
    fn forward_passes(&self) -> usize {
        self.calls
    }
    fn gains(&mut self, _unit: &str, contexts: &[&str]) -> Result<Vec<f64>, CompressError> {
        self.calls += contexts.len();
        Ok(contexts
            .iter()
            .map(|c| {
                if c.contains("useful_helper") {
                    0.5
                } else {
                    -0.1
                }
            })
            .collect())
    }
}

#[test]
fn everything_stays_whole_when_it_fits_and_the_budget_is_kept_when_not() {
    let codec = codec();
    let cands = vec![candidate("a", 2.0, 6), candidate("b", 1.0, 6)];
    let mut c = Compressor {
        strategy: Strategy::Graph,
        codec: &codec,
        scorer: None,
        cache: None,
    };
    let all = c
        .compress(&unit(), "def target(x):\n    return x\n", &cands, 10_000)
        .unwrap();
    assert!(all.items.iter().all(|i| i.form == Form::Full));
    assert_eq!(all.tokens_after, all.tokens_before);
    assert_eq!(all.compression_ratio, 1.0);

    let tight = all.tokens_before / 2;
    let out = c
        .compress(&unit(), "def target(x):\n    return x\n", &cands, tight)
        .unwrap();
    assert!(out.tokens_after <= tight);
    assert!(out.compression_ratio < 1.0);
    assert_eq!(
        out.compression_ratio,
        out.tokens_after as f64 / out.tokens_before as f64
    );
    // The higher-priority item is the one kept whole.
    assert_eq!(out.items[0].form, Form::Full);
    assert_ne!(out.items[1].form, Form::Full);
    assert!(out.text.starts_with(&cands[0].full));
}

#[test]
fn model_scores_outrank_priorities_and_are_cached() {
    let codec = codec();
    let mut cands = vec![candidate("noise", 5.0, 6), candidate("useful", 0.5, 6)];
    cands[1].item.priority = 0.5;
    let dir = tempfile::tempdir().unwrap();
    let mut cache = ScoreCache::open(&dir.path().join("scores.sqlite")).unwrap();
    let mut scorer = ByContent { calls: 0 };
    let code = "def target(x):\n    return x\n";
    let budget = {
        let mut c = Compressor {
            strategy: Strategy::Graph,
            codec: &codec,
            scorer: None,
            cache: None,
        };
        let all = c.compress(&unit(), code, &cands, usize::MAX / 4).unwrap();
        all.items[1].full_tokens + 2
    };
    let first = {
        let mut c = Compressor {
            strategy: Strategy::Model,
            codec: &codec,
            scorer: Some(&mut scorer),
            cache: Some(&mut cache),
        };
        c.compress(&unit(), code, &cands, budget).unwrap()
    };
    assert_eq!(first.items[1].form, Form::Full, "{:?}", first.items);
    assert_ne!(first.items[0].form, Form::Full);
    assert_eq!(first.cache_hits, 0);
    assert_eq!(first.forward_passes, 4);
    assert_eq!(first.items[1].gain_full, Some(0.5));
    assert_eq!(first.items[1].gain_signature, Some(-0.1));
    assert_eq!(first.scorer.as_ref().unwrap().method, "by-content");

    let second = {
        let mut c = Compressor {
            strategy: Strategy::Model,
            codec: &codec,
            scorer: Some(&mut scorer),
            cache: Some(&mut cache),
        };
        c.compress(&unit(), code, &cands, budget).unwrap()
    };
    assert_eq!(second.cache_hits, 4);
    assert_eq!(second.forward_passes, 0);
    assert_eq!(scorer.calls, 4);
    let forms = |c: &CompressedContext| c.items.iter().map(|i| i.form).collect::<Vec<_>>();
    assert_eq!(forms(&first), forms(&second));

    // Another unit body is another key: scored afresh.
    let mut c = Compressor {
        strategy: Strategy::Model,
        codec: &codec,
        scorer: Some(&mut scorer),
        cache: Some(&mut cache),
    };
    let third = c
        .compress(&unit(), "def target(x):\n    return 2\n", &cands, budget)
        .unwrap();
    assert_eq!(third.cache_hits, 0);
}

#[test]
fn model_strategy_without_a_scorer_is_an_error() {
    let codec = codec();
    let mut c = Compressor {
        strategy: Strategy::Model,
        codec: &codec,
        scorer: None,
        cache: None,
    };
    let err = c
        .compress(&unit(), "x", &[candidate("a", 1.0, 2)], 10)
        .unwrap_err();
    assert!(matches!(err, CompressError::NoScorer(_)));
}

#[test]
fn signatures_strategy_keeps_only_signatures() {
    let codec = codec();
    let cands = vec![candidate("a", 2.0, 6), candidate("b", 1.0, 6)];
    let mut c = Compressor {
        strategy: Strategy::Signatures,
        codec: &codec,
        scorer: None,
        cache: None,
    };
    let out = c.compress(&unit(), "x", &cands, 10_000).unwrap();
    assert!(out.items.iter().all(|i| i.form == Form::Signature));
    assert!(out.text.contains("def a(x):\n    ...\n"));
}

#[test]
fn signatures_render_per_language() {
    let mut it = item("m.f", 1.0, "def f(a, b=1) -> int");
    it.doc = Some("Add things.".into());
    assert_eq!(
        render_signature(&it).unwrap(),
        "def f(a, b=1) -> int:\n    \"\"\"Add things.\"\"\"\n    ...\n"
    );
    let var = item("m.TTL", 1.0, "TTL = 60");
    assert_eq!(render_signature(&var).unwrap(), "TTL = 60\n");
    let mut js = item("m:f", 1.0, "export function f(a)");
    js.file = "m.js".into();
    assert_eq!(
        render_signature(&js).unwrap(),
        "export function f(a) { /* … */ }\n"
    );
    assert_eq!(
        dedent("    def f():\n        pass\n"),
        "def f():\n    pass\n"
    );
}

#[test]
fn gather_reads_units_and_items_and_reports_stale_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
    std::fs::write(
        dir.path().join("pkg/m.py"),
        "def helper(x):\n    return x + 1\n\n\ndef target(x):\n    return helper(x)\n",
    )
    .unwrap();
    let mut u = unit();
    u.lines = (5, 6);
    let mut it = item("pkg.m.helper", 1.0, "def helper(x)");
    it.lines = (1, 2);
    u.context_items = vec![it];
    let (code, cands) = Sources::default().gather(dir.path(), &u).unwrap();
    assert_eq!(code, "def target(x):\n    return helper(x)\n");
    assert_eq!(
        cands[0].full,
        "# pkg/m.py:1-2 pkg.m.helper\ndef helper(x):\n    return x + 1\n"
    );
    assert_eq!(
        cands[0].signature.as_deref(),
        Some("# pkg/m.py:1 pkg.m.helper\ndef helper(x):\n    ...\n")
    );
    u.context_items[0].lines = (1, 40);
    let err = Sources::default().gather(dir.path(), &u).unwrap_err();
    assert!(err.to_string().contains("pkg/m.py:1-40"), "{err}");
}

#[test]
fn callers_show_their_head_and_call_sites_only() {
    let body = "def report(xs):\n    n = len(xs)\n    m = 2\n    s = total(xs)\n    totals = 3\n    return s / n\n";
    assert_eq!(
        call_sites(body, "total"),
        "def report(xs):\n    ...\n    s = total(xs)\n    ...\n"
    );
    let short = "def f():\n    return total(1)\n";
    assert_eq!(call_sites(short, "total"), short);
}

#[test]
fn long_definitions_can_be_kept_as_their_relevant_blocks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
    let helper = "def helper(path, cache):\n    if path in cache:\n        return cache[path]\n\n    handle = open(path)\n    lines = handle.readlines()\n    handle.close()\n    for line in lines:\n        check(line)\n        check_more(line)\n    record = parse(lines)\n    return record\n";
    std::fs::write(
        dir.path().join("pkg/m.py"),
        format!("{helper}\n\ndef target(path, cache):\n    return helper(path, cache)\n"),
    )
    .unwrap();
    let mut u = unit();
    u.lines = (15, 16);
    let mut it = item("pkg.m.helper", 1.0, "def helper(path, cache)");
    it.lines = (1, 12);
    u.context_items = vec![it];
    let (code, cands) = Sources::default().gather(dir.path(), &u).unwrap();
    let blocks = cands[0].blocks.as_deref().expect("a blocks form");
    assert!(blocks
        .starts_with("# pkg/m.py:1-12 pkg.m.helper (some blocks)\ndef helper(path, cache):\n"));
    assert!(blocks.contains("    if path in cache:\n"), "{blocks}");
    assert!(blocks.contains("    ...\n"), "{blocks}");

    // A budget between the blocks form and the whole item: the blocks are kept.
    let codec = codec();
    let count = |s: &str| codec.encode(s).unwrap().len();
    let (whole, part) = (count(&cands[0].full), count(blocks));
    assert!(part < whole);
    let mut c = Compressor {
        strategy: Strategy::Graph,
        codec: &codec,
        scorer: None,
        cache: None,
    };
    let out = c.compress(&u, &code, &cands, part).unwrap();
    assert_eq!(out.items[0].form, Form::Blocks);
    assert_eq!(out.tokens_after, part);
    assert_eq!(out.text, blocks);
    let out = c.compress(&u, &code, &cands, whole).unwrap();
    assert_eq!(out.items[0].form, Form::Full);
}
