//! Running a test command with a time limit: it gets its own process group, so at the limit
//! (or on Ctrl-C) the whole group is killed, grandchildren included, and what it printed is
//! kept in a log beside the scratch copy.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(super) enum ExecError {
    Spawn(std::io::Error),
    Interrupted,
}

pub(super) struct Ran {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    pub tail: String,
}

/// The last this many bytes of output are kept.
const TAIL_BYTES: u64 = 4096;

pub(super) fn run(mut cmd: Command, log: &Path, timeout: Duration) -> Result<Ran, ExecError> {
    let out = std::fs::File::create(log).map_err(ExecError::Spawn)?;
    let err = out.try_clone().map_err(ExecError::Spawn)?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(ExecError::Spawn)?;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(ExecError::Spawn)? {
            break Some(status);
        }
        let interrupted = crate::interrupt::requested();
        if interrupted || started.elapsed() >= timeout {
            kill_group(&mut child);
            let _ = child.wait();
            if interrupted {
                return Err(ExecError::Interrupted);
            }
            timed_out = true;
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Ran {
        exit_code: status.and_then(|s| s.code()),
        timed_out,
        duration: started.elapsed(),
        tail: tail(log),
    })
}

pub(crate) fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    // SAFETY: kill(2) with a negative pid signals the process group the child leads (it was
    // started with process_group(0)); no memory is shared.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.kill();
}

pub(crate) fn tail(log: &Path) -> String {
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    // Start at a line boundary when the tail was cut.
    let text = if len > TAIL_BYTES {
        text.split_once('\n').map_or(&*text, |(_, rest)| rest)
    } else {
        &text
    };
    text.trim_end().to_string()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_whole_group_is_killed_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        // The child starts a grandchild that would write the marker after the limit.
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "echo started; (sleep 2; touch {}) & sleep 30",
            marker.display()
        ));
        let ran = match run(cmd, &dir.path().join("log"), Duration::from_millis(300)) {
            Ok(r) => r,
            Err(_) => panic!("the command should run"),
        };
        assert!(ran.timed_out);
        assert!(ran.duration < Duration::from_secs(5));
        assert_eq!(ran.tail, "started");
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "a grandchild outlived the limit");
    }
}
