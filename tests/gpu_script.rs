//! `benches/gpu/run.sh --dry-run`: the GPU round trip's script run on the CPU with the tiny
//! fixtures, so that the one GPU run it is written for does not fail on the script itself.
//! Steps that need torch are skipped when it is missing (as in CI); the rest must pass.

use std::path::Path;
use std::process::Command;

#[test]
fn the_gpu_script_runs_dry_on_the_cpu() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gpu/run.sh"))
        .args(["--dry-run", "--binary", env!("CARGO_BIN_EXE_ouroboros")])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let steps = std::fs::read_to_string(out.path().join("steps.tsv")).unwrap();
    for line in steps.lines().skip(1) {
        let status = line.split('\t').nth(1).unwrap();
        assert!(
            status == "ok" || status.starts_with("skipped"),
            "a step failed: {line}\n{stderr}"
        );
    }
    for name in ["goldens-f32", "goldens-bf16"] {
        let table = std::fs::read_to_string(out.path().join(format!("{name}.md"))).unwrap();
        assert_eq!(table.matches("| yes |").count(), 6, "{name}:\n{table}");
    }
    assert!(steps.contains("kernels\tskipped: no GPU"), "{steps}");
    let speed: usize = ["tiny-dream", "tiny-llada"]
        .iter()
        .flat_map(|m| ["b1", "b8"].map(|b| format!("speed-ouroboros-{m}-{b}.jsonl")))
        .map(|f| {
            std::fs::read_to_string(out.path().join(f))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(
        speed,
        2 * (9 + 3),
        "rows: 3 caches x 3 counts at batch 1, 3 at batch 8"
    );
    let results = std::fs::read_to_string(out.path().join("RESULTS.md")).unwrap();
    assert!(results.contains("## Speed") && results.contains("| tiny-llada | dual | 8 | 8 |"));
}
