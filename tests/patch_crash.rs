//! A process killed with SIGKILL in the middle of applying patches leaves every file either
//! entirely old or entirely new.
//!
//! The test binary re-runs itself as the child: with `OUROBOROS_CRASH_CHILD` set, this same
//! test becomes an endless apply loop that the parent kills at a random moment.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ouroboros::patch::{apply, Snapshot};

#[path = "support/jitter.rs"]
mod jitter;

const CHILD_ENV: &str = "OUROBOROS_CRASH_CHILD";
const FILES: [&str; 3] = ["a.py", "pkg/b.js", "pkg/c.ts"];
const SIZE: usize = 2 << 20;

fn content(version: u8) -> Vec<u8> {
    // Every line names the version, so a torn file is a mix of both.
    let line = if version == 0 {
        b"old = 0\n"
    } else {
        b"new = 1\n"
    };
    line.iter().copied().cycle().take(SIZE).collect()
}

fn child_loop(root: &Path) -> ! {
    let backups = root.join(".ouroboros/runs/crash/backups");
    std::fs::write(root.join("started"), b"").unwrap();
    loop {
        for f in FILES {
            let snap = Snapshot::read(root, Path::new(f)).unwrap();
            let next = if snap.bytes == content(0) {
                content(1)
            } else {
                content(0)
            };
            apply(root, &backups, &snap, &next).unwrap();
        }
    }
}

fn seed_tree(root: &Path) {
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    for f in FILES {
        std::fs::write(root.join(f), content(0)).unwrap();
    }
}

#[test]
fn sigkill_mid_apply_leaves_files_whole() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_loop(&PathBuf::from(dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    seed_tree(root);
    let (old, new) = (content(0), content(1));
    let exe = std::env::current_exe().unwrap();
    let mut saw_new = false;
    for round in 0..12 {
        let _ = std::fs::remove_file(root.join("started"));
        let mut child = Command::new(&exe)
            .args([
                "sigkill_mid_apply_leaves_files_whole",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while !root.join("started").exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Until one write has landed, allow more time: a loaded machine with slow fsync may need
        // it for the first apply. After that, kill early and often to land mid-write.
        let max = if saw_new { 400_000 } else { 2_000_000 };
        std::thread::sleep(Duration::from_micros(5_000 + jitter::jitter(round, max)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        for f in FILES {
            let bytes = std::fs::read(root.join(f)).unwrap();
            assert!(
                bytes == old || bytes == new,
                "round {round}: {f} is torn ({} bytes)",
                bytes.len()
            );
            saw_new |= bytes == new;
        }
    }
    assert!(
        saw_new,
        "the child never got a write through; the test proved nothing"
    );
}
