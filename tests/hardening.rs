//! What a hostile or unlucky moment does to `apply`, `rollback` and the run store: a kill at
//! any instant, an edit racing the write, symlinks and forged records.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{ouroboros, ouroboros_env, stdout, text};

#[path = "support/jitter.rs"]
mod jitter;

/// Two versions of a large Python file: every line names its version, so a torn file shows.
fn version(v: u8, kb: usize) -> String {
    let line = if v == 0 { "old = 0\n" } else { "new = 1\n" };
    line.repeat(kb * 1024 / line.len())
}

fn runs(root: &Path) -> Vec<String> {
    fs::read_dir(root.join(".ouroboros/runs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether some run knows it wrote `file`: its record lists it, or its journal does.
fn accounted_for(root: &Path, file: &str) -> Option<String> {
    for id in runs(root) {
        let dir = root.join(".ouroboros/runs").join(&id);
        let listed = |name: &str, key: &str| {
            fs::read(dir.join(name))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| {
                    v[key]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|m| m["file_path"] == file))
                })
        };
        if listed("artifact_metadata.json", "file_modifications") || listed("journal.json", "files")
        {
            return Some(id);
        }
    }
    None
}

/// Kill `apply` at random moments: every file is whole, and whenever the new version is in
/// place some run accounts for it, so `rollback` can undo it. `OUROBOROS_KILL_ROUNDS` sets the
/// number of rounds (`benches/kill_apply.sh` runs hundreds).
#[test]
fn a_kill_at_any_moment_leaves_a_change_that_can_be_undone() {
    let rounds: u32 = std::env::var("OUROBOROS_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let (old, new) = (version(0, 512), version(1, 512));
    // How long one apply takes here; the kills land from half of that to a little after, where
    // the writes and the record are.
    // The median of three, so one slow or fast start does not move the window.
    let mut times: Vec<u64> = (0..3)
        .map(|_| {
            let timing = support::project(&[("big.py", &old), ("new.py", &new)]);
            let started = Instant::now();
            let o = ouroboros(timing.path(), &["apply", "big.py", "--from", "new.py"]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
            started.elapsed().as_micros() as u64
        })
        .collect();
    times.sort_unstable();
    let whole = times[1];
    let mut landed = 0;
    // On a loaded machine every kill of the planned rounds can come early; a few more rounds,
    // killing later, then make sure some kill lands after the write (the case under test).
    let mut round = 0;
    while round < rounds || (landed == 0 && round < rounds * 2) {
        let late = if round < rounds { 0 } else { whole / 2 };
        let dir = support::project(&[("big.py", &old), ("new.py", &new)]);
        let root = dir.path();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ouroboros"))
            .args(["apply", "big.py", "--from", "new.py"])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(
            whole / 2 + late + jitter::jitter(round, whole * 6 / 10),
        ));
        let _ = child.kill();
        child.wait().unwrap();
        let now = fs::read_to_string(root.join("big.py")).unwrap();
        assert!(now == old || now == new, "round {round}: big.py is torn");
        if now == new {
            landed += 1;
            let id = accounted_for(root, "big.py")
                .unwrap_or_else(|| panic!("round {round}: big.py changed and no run records it"));
            let o = ouroboros(root, &["rollback", &id]);
            assert_eq!(o.status.code(), Some(0), "round {round}: {}", text(&o));
            assert_eq!(fs::read_to_string(root.join("big.py")).unwrap(), old);
        }
        // The next write cleans up what the kill left.
        let o = ouroboros(root, &["apply", "big.py", "--from", "new.py"]);
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", text(&o));
        let temps = fs::read_dir(root)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(temps, 0, "round {round}: temp files left beside the target");
        round += 1;
    }
    eprintln!("{landed} of {round} kills came after the new version landed");
    assert!(
        landed > 0,
        "no kill came late enough; the test proved nothing"
    );
}

/// `apply` b.py over a.py, then put back the journal that run had while it wrote (as a kill
/// after the write leaves it); returns the run's id and folder.
fn applied_with_its_journal(root: &Path) -> (String, std::path::PathBuf) {
    let o = ouroboros(root, &["apply", "a.py", "--from", "b.py"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let id = runs(root).pop().unwrap();
    let run = root.join(".ouroboros/runs").join(&id);
    fs::write(
        run.join("journal.json"),
        serde_json::json!({"files": [{
            "file_path": "a.py",
            "original_hash": ouroboros::hash::sha256_tagged(b"x = 1\n"),
            "modified_hash": ouroboros::hash::sha256_tagged(b"x = 2\n"),
            "backup_path": format!(".ouroboros/runs/{id}/backups/a.py"),
            "lines_added": 1, "lines_removed": 1,
        }]})
        .to_string(),
    )
    .unwrap();
    (id, run)
}

/// A run killed after its journal but before its record shows as interrupted, is reported by
/// the next command that writes, and rolls back.
#[test]
fn an_interrupted_run_is_listed_reported_and_undone() {
    let dir = support::project(&[("a.py", "x = 1\n"), ("b.py", "x = 2\n")]);
    let root = dir.path();
    let (id, run) = applied_with_its_journal(root);
    // As a kill after the write would leave it: the journal, and a record that never finished.
    let mut record: serde_json::Value =
        serde_json::from_slice(&fs::read(run.join("artifact_metadata.json")).unwrap()).unwrap();
    record["file_modifications"] = serde_json::json!([]);
    record["success"] = serde_json::json!(false);
    fs::write(run.join("artifact_metadata.json"), record.to_string()).unwrap();
    let list = ouroboros(root, &["list-runs"]);
    assert!(stdout(&list).contains("interrupted"), "{}", text(&list));
    let next = ouroboros(root, &["apply", "b.py", "--from", "b.py"]);
    assert!(
        text(&next).contains(&format!("run {id} was interrupted")),
        "{}",
        text(&next)
    );
    let o = ouroboros(root, &["rollback", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(fs::read_to_string(root.join("a.py")).unwrap(), "x = 1\n");
    assert!(!stdout(&ouroboros(root, &["list-runs"])).contains("interrupted"));
}

/// Rolling back a run killed in the middle of a write also removes the temp file it left beside
/// the target (found through the journal, which the rollback then removes).
#[test]
fn rolling_back_an_interrupted_run_removes_its_temp_files() {
    let dir = support::project(&[("a.py", "x = 1\n"), ("b.py", "x = 2\n")]);
    let root = dir.path();
    let (id, _) = applied_with_its_journal(root);
    // What the exchange leaves for an instant: the old content under the temp name.
    fs::write(root.join(".ouroboros-k1ll3d.tmp"), "x = 1\n").unwrap();
    let o = ouroboros(root, &["rollback", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(fs::read_to_string(root.join("a.py")).unwrap(), "x = 1\n");
    assert!(!root.join(".ouroboros-k1ll3d.tmp").exists(), "{}", text(&o));
}

/// An edit that lands in the instant before the write is kept, and the file reported stale.
#[test]
fn an_edit_racing_the_write_is_never_lost() {
    let dir = support::project(&[("a.py", "x = 1\n"), ("new.py", "x = 2\n")]);
    let root = dir.path().to_path_buf();
    let writer = {
        let root = root.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            fs::write(root.join("a.py"), "x = 'the user's edit'\n").unwrap();
        })
    };
    let started = Instant::now();
    let o = ouroboros_env(
        &root,
        &["apply", "a.py", "--from", "new.py"],
        &[("OUROBOROS_TEST_PAUSE_BEFORE_SWAP_MS", "1500")],
    );
    writer.join().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("changed since it was read"),
        "{}",
        text(&o)
    );
    assert_eq!(
        fs::read_to_string(root.join("a.py")).unwrap(),
        "x = 'the user's edit'\n"
    );
}

#[cfg(unix)]
#[test]
fn state_folders_that_lead_outside_are_refused() {
    for link in [".ouroboros", ".ouroboros/runs"] {
        let dir = support::project(&[("a.py", "x = 1\n"), ("b.py", "x = 2\n")]);
        let outside = tempfile::tempdir().unwrap();
        if link == ".ouroboros/runs" {
            fs::create_dir_all(dir.path().join(".ouroboros")).unwrap();
        }
        std::os::unix::fs::symlink(outside.path(), dir.path().join(link)).unwrap();
        let o = ouroboros(dir.path(), &["apply", "a.py", "--from", "b.py"]);
        assert_eq!(o.status.code(), Some(2), "{link}: {}", text(&o));
        assert!(text(&o).contains(".ouroboros/runs"), "{link}: {}", text(&o));
        assert!(text(&o).contains("outside"), "{link}: {}", text(&o));
        assert_eq!(
            fs::read_to_string(dir.path().join("a.py")).unwrap(),
            "x = 1\n"
        );
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "{link}");
    }
}

/// A record is a file anyone can edit: `rollback` restores nothing into `.git/`, and
/// `list-runs` names runs by their folder, not by what the record claims.
#[test]
fn forged_records_cannot_write_into_git_or_rename_runs() {
    let dir = support::project(&[("a.py", "x = 1\n"), ("b.py", "x = 2\n")]);
    let root = dir.path();
    fs::write(root.join(".git/config"), "[core]\n").unwrap();
    let o = ouroboros(root, &["apply", "a.py", "--from", "b.py"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let id = runs(root).pop().unwrap();
    let path = root
        .join(".ouroboros/runs")
        .join(&id)
        .join("artifact_metadata.json");
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    record["run_id"] = serde_json::json!("../../etc");
    record["file_modifications"][0]["file_path"] = serde_json::json!(".git/config");
    record["file_modifications"][0]["modified_hash"] =
        serde_json::json!(ouroboros::hash::sha256_tagged(b"[core]\n"));
    fs::write(&path, record.to_string()).unwrap();
    let o = ouroboros(root, &["rollback", &id, "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("inside .git/"), "{}", text(&o));
    assert_eq!(
        fs::read_to_string(root.join(".git/config")).unwrap(),
        "[core]\n"
    );
    let list = ouroboros(root, &["list-runs", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["run_id"], id.as_str());
    assert!(!stdout(&list).contains("../../etc"));
}
