use super::*;
use crate::patch::AppliedChange;

#[test]
fn run_ids_have_the_documented_shape() {
    let id = new_run_id();
    assert!(store::is_valid_run_id(&id), "{id}");
    assert!(!store::is_valid_run_id("gen_20250121_123456"));
    assert!(!store::is_valid_run_id("../../etc/passwd_000000000"));
}

#[test]
fn a_finished_run_writes_the_seed_schema_with_totals() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ProvenanceLogger::start(dir.path(), "Add caching").unwrap();
    log.log_model_usage(ModelUsage {
        phase: "generator".into(),
        model_name: "tiny".into(),
        purpose: "generating".into(),
        tokens_used: 100,
        duration_ms: 12.5,
        num_steps: Some(8),
        step_timing: StepTiming::from_ms(&[1.0, 2.0, 3.0]),
        ..ModelUsage::default()
    });
    log.log_safety_check("syntax_validation", true, "ok".into(), Some("a.py"));
    log.log_safety_check("syntax_validation", false, "bad".into(), None);
    log.log_file_modification(&AppliedChange {
        file_path: "a.py".into(),
        original_hash: "sha256:00".into(),
        modified_hash: "sha256:11".into(),
        lines_added: 3,
        lines_removed: 1,
        backup_path: ".ouroboros/runs/x/backups/a.py".into(),
        method: crate::patch::Method::Exchange,
    });
    let id = log.run_id().to_string();
    let path = log.finish(true, None).unwrap();
    assert_eq!(path, RunStore::new(dir.path()).record_path(&id));

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for key in [
        "run_id",
        "issue_description",
        "timestamp_start",
        "timestamp_end",
        "duration_seconds",
        "success",
        "models_used",
        "safety_checks",
        "file_modifications",
        "metadata",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["metadata"]["total_tokens_used"], 100);
    assert_eq!(json["metadata"]["num_safety_checks_passed"], 1);
    assert_eq!(json["metadata"]["total_lines_added"], 3);
    assert_eq!(json["models_used"][0]["step_timing"]["steps"], 3);
    assert_eq!(json["models_used"][0]["step_timing"]["p50_ms"], 2.0);
    assert!(json["models_used"][0].get("compression_ratio").is_none());
}

#[test]
fn a_dropped_logger_records_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let log = ProvenanceLogger::start(dir.path(), "task").unwrap();
        log.run_id().to_string()
    };
    let r = RunStore::new(dir.path()).load(&id).unwrap();
    assert!(!r.success);
    assert!(r.error.unwrap().contains("before it finished"));
}

#[test]
fn secrets_do_not_reach_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = ProvenanceLogger::start(dir.path(), "connect with password=topsecret99").unwrap();
    let path = log
        .finish(
            false,
            Some("auth failed for sk-0123456789abcdefghijkl".into()),
        )
        .unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert!(!text.contains("topsecret99") && !text.contains("sk-0123456789abcdefghijkl"));
}

#[test]
fn listing_skips_corrupt_records_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let good = ProvenanceLogger::start(dir.path(), "good").unwrap();
    let good_id = good.run_id().to_string();
    good.finish(true, None).unwrap();
    let store = RunStore::new(dir.path());
    let bad = store.run_dir("gen_29990101_000000_abcdef");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join(RECORD_FILE), "{\"run_id\": 3").unwrap();
    std::fs::create_dir_all(store.run_dir("gen_29990101_000001_abcdef")).unwrap();
    let listed = store.list();
    assert_eq!(listed.len(), 3);
    let unreadable = listed
        .iter()
        .filter(|r| matches!(r, ListedRun::Unreadable { .. }))
        .count();
    assert_eq!(unreadable, 2);
    assert_eq!(store.latest().unwrap().run_id, good_id);
}
