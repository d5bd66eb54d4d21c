use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("src")).unwrap();
    fs::write(dir.path().join("src/a.py"), "x = 1\ny = 2\n").unwrap();
    dir
}

#[test]
fn apply_backs_up_writes_and_rolls_back_byte_for_byte() {
    let dir = repo();
    let root = dir.path();
    let file = root.join("src/a.py");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o750)).unwrap();
    let original = fs::read(&file).unwrap();
    let snap = Snapshot::read(root, Path::new("src/a.py")).unwrap();
    let run = root.join(".ouroboros/runs/r1");
    let change = apply(root, &run, &snap, b"x = 1\ny = 3\nz = 4\n").unwrap();
    // The journal named the file before it was replaced, and stays until the run's record
    // holds it.
    let journal = Journal::read(&run).unwrap();
    assert_eq!(journal.files[0].file_path, "src/a.py");
    assert_eq!(journal.files[0].modified_hash, change.modified_hash);
    assert_eq!(change.lines_added, 2);
    assert_eq!(change.lines_removed, 1);
    assert_eq!(change.backup_path, ".ouroboros/runs/r1/backups/src/a.py");
    assert_eq!(fs::read(root.join(&change.backup_path)).unwrap(), original);
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o750
    );

    let restore = Restore {
        file_path: "src/a.py".into(),
        backup_path: change.backup_path.clone().into(),
        original_hash: change.original_hash.clone(),
        modified_hash: change.modified_hash.clone(),
    };
    let backups = Path::new(".ouroboros/runs/r1/backups");
    rollback(root, backups, std::slice::from_ref(&restore), false).unwrap();
    assert_eq!(fs::read(&file).unwrap(), original);
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o750
    );
}

#[test]
fn stale_files_are_refused() {
    let dir = repo();
    let root = dir.path();
    let snap = Snapshot::read(root, Path::new("src/a.py")).unwrap();
    fs::write(root.join("src/a.py"), "edited by someone else\n").unwrap();
    let err = apply(root, &root.join("b"), &snap, b"new\n").unwrap_err();
    assert!(matches!(err, PatchError::Stale { .. }), "{err}");
    assert_eq!(
        fs::read_to_string(root.join("src/a.py")).unwrap(),
        "edited by someone else\n"
    );
    assert!(!root.join("b").exists(), "no backup for a refused write");
}

#[test]
fn rollback_refuses_files_changed_since_the_run_unless_forced() {
    let dir = repo();
    let root = dir.path();
    let snap = Snapshot::read(root, Path::new("src/a.py")).unwrap();
    let change = apply(root, &root.join("bk"), &snap, b"new\n").unwrap();
    let backups = Path::new("bk/backups");
    fs::write(root.join("src/a.py"), "later edit\n").unwrap();
    let restore = Restore {
        file_path: "src/a.py".into(),
        backup_path: change.backup_path.into(),
        original_hash: change.original_hash,
        modified_hash: change.modified_hash,
    };
    let err = rollback(root, backups, std::slice::from_ref(&restore), false).unwrap_err();
    assert!(matches!(err, PatchError::ChangedSinceRun { .. }));
    assert_eq!(
        fs::read_to_string(root.join("src/a.py")).unwrap(),
        "later edit\n"
    );
    rollback(root, backups, &[restore], true).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("src/a.py")).unwrap(),
        "x = 1\ny = 2\n"
    );
}

#[test]
fn rollback_takes_nothing_on_a_record_s_word() {
    let dir = repo();
    let root = dir.path();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(root.join(".git/config"), "[core]\n").unwrap();
    let backups = Path::new(".ouroboros/runs/r1/backups");
    let forged = |file: &str, backup: &str| Restore {
        file_path: file.into(),
        backup_path: backup.into(),
        original_hash: crate::hash::sha256_tagged(b"x"),
        modified_hash: "sha256:0".into(),
    };
    for (file, backup) in [
        (".git/config", ".ouroboros/runs/r1/backups/.git/config"),
        (".ouroboros/runs/r1/artifact_metadata.json", "x"),
    ] {
        let e = rollback(root, backups, &[forged(file, backup)], true).unwrap_err();
        assert!(matches!(e, PatchError::Protected { .. }), "{file}: {e}");
    }
    let e = rollback(root, backups, &[forged("src/a.py", "src/a.py")], true).unwrap_err();
    assert!(matches!(e, PatchError::NotOurBackup { .. }), "{e}");
    assert_eq!(
        fs::read_to_string(root.join(".git/config")).unwrap(),
        "[core]\n"
    );
}

#[test]
fn interrupted_runs_are_found_and_their_temp_files_removed() {
    let dir = repo();
    let root = dir.path();
    let run = root.join(".ouroboros/runs/gen_20260101_000000_abcdef");
    let snap = Snapshot::read(root, Path::new("src/a.py")).unwrap();
    apply(root, &run, &snap, b"new\n").unwrap();
    // As a kill would leave them: a temp file beside the target, and one in the run folder.
    fs::write(root.join("src/.ouroboros-x1.tmp"), "half").unwrap();
    fs::write(run.join(".ouroboros-y2.tmp"), "half").unwrap();
    let left = recover(root);
    assert_eq!(left.interrupted, ["gen_20260101_000000_abcdef"]);
    assert_eq!(left.removed.len(), 2, "{:?}", left.removed);
    assert!(!root.join("src/.ouroboros-x1.tmp").exists());
    journal::complete(&run).unwrap();
    assert!(recover(root).interrupted.is_empty());
}

#[test]
fn a_state_folder_leading_outside_is_refused() {
    let dir = repo();
    let root = dir.path();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join(".ouroboros")).unwrap();
    let e = state_path(root, "runs/x").unwrap_err();
    assert!(matches!(e, PatchError::Escape { .. }), "{e}");
    assert!(e.to_string().contains(".ouroboros/runs/x"), "{e}");
}

#[test]
fn paths_outside_the_root_are_refused() {
    let dir = repo();
    let root = dir.path();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("f.py"), root.join("filelink.py")).unwrap();
    fs::write(outside.path().join("f.py"), "x\n").unwrap();
    for bad in [
        "../x.py",
        "/etc/passwd",
        "link/f.py",
        "filelink.py",
        "src/../../x.py",
        "",
    ] {
        let err = resolve_in_repo(root, Path::new(bad)).unwrap_err();
        assert!(matches!(err, PatchError::Escape { .. }), "{bad}: {err}");
    }
    assert!(resolve_in_repo(root, Path::new("src/a.py")).is_ok());
    assert!(resolve_in_repo(root, Path::new("src/new/deeper.py")).is_ok());
    std::os::unix::fs::symlink(root.join("src"), root.join("inner")).unwrap();
    assert!(resolve_in_repo(root, Path::new("inner/a.py")).is_ok());
}

#[test]
fn diff_counts_lines() {
    let d = Diff::new("a.py", "a\nb\n", "a\nc\nd\n");
    assert_eq!((d.lines_added, d.lines_removed), (2, 1));
    assert!(d.unified.contains("--- a/a.py") && d.unified.contains("+c"));
    assert!(Diff::new("a", "same\n", "same\n").is_empty());
}
