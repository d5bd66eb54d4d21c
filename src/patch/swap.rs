//! Putting a new version of a file in place without losing an edit that lands at the same
//! moment. On Linux the new file is *exchanged* with the old one (`renameat2` with
//! `RENAME_EXCHANGE`): one atomic step puts it in place and hands back whatever was there, and
//! if that is not the content the change was made from, the two are exchanged back and the
//! file is reported stale. The user's edit is never lost. Elsewhere (or on a filesystem that
//! cannot exchange) the content is checked just before an ordinary rename, which leaves a
//! window of microseconds.

use std::fs::{self, File, Permissions};
use std::io::Write;
use std::path::Path;

use super::{io_err, PatchError};
use crate::hash::sha256_tagged;

/// How a file was replaced, as provenance records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Atomic exchange, checked after the fact: no edit can be lost.
    Exchange,
    /// Checked, then renamed over: an edit in the instant between can be lost.
    Rename,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Exchange => "exchange",
            Method::Rename => "rename",
        }
    }
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both paths are NUL-terminated C strings that outlive the call; renameat2 reads
    // them and touches no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Whether an exchange failed because the system or filesystem cannot do it (then rename).
fn unsupported(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP)
        )
}

/// The test suite's way to land an edit in the instant before the swap (debug builds only).
fn pause_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("OUROBOROS_TEST_PAUSE_BEFORE_SWAP_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Replace `target` with `bytes` (mode `mode`), unless its content no longer hashes to
/// `expected`: then it keeps what it has and the error is `Stale`.
pub fn write_over(
    rel: &Path,
    target: &Path,
    bytes: &[u8],
    mode: Permissions,
    expected: &str,
) -> Result<Method, PatchError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".ouroboros-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err(rel))?;
    tmp.write_all(bytes).map_err(io_err(rel))?;
    fs::set_permissions(tmp.path(), mode).map_err(io_err(rel))?;
    tmp.as_file().sync_all().map_err(io_err(rel))?;
    pause_for_tests();
    let stale = |actual: String| PatchError::Stale {
        path: rel.display().to_string(),
        expected: expected.to_string(),
        actual,
    };
    let method = match exchange(tmp.path(), target) {
        Ok(()) => {
            // The temp path now holds what was in place a moment ago.
            let was = fs::read(tmp.path()).map_err(io_err(rel))?;
            let actual = sha256_tagged(&was);
            if actual != expected {
                exchange(tmp.path(), target).map_err(io_err(rel))?;
                return Err(stale(actual));
            }
            Method::Exchange
        }
        Err(e) if unsupported(&e) => {
            let actual = sha256_tagged(&fs::read(target).map_err(io_err(rel))?);
            if actual != expected {
                return Err(stale(actual));
            }
            tmp.persist(target).map_err(|e| io_err(rel)(e.error))?;
            sync_dir(dir, rel)?;
            return Ok(Method::Rename);
        }
        Err(e) => return Err(io_err(rel)(e)),
    };
    // The old content goes with the temp file.
    drop(tmp);
    sync_dir(dir, rel)?;
    Ok(method)
}

fn sync_dir(dir: &Path, rel: &Path) -> Result<(), PatchError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_that_landed_first_is_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.py");
        fs::write(&f, "mine = 1\n").unwrap();
        let snapshot = sha256_tagged(b"original = 0\n");
        let mode = fs::metadata(&f).unwrap().permissions();
        let e =
            write_over(Path::new("a.py"), &f, b"new = 2\n", mode.clone(), &snapshot).unwrap_err();
        assert!(matches!(e, PatchError::Stale { .. }), "{e}");
        assert_eq!(fs::read_to_string(&f).unwrap(), "mine = 1\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "a temp file was left behind");
        let current = sha256_tagged(b"mine = 1\n");
        let m = write_over(Path::new("a.py"), &f, b"new = 2\n", mode, &current).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "new = 2\n");
        if cfg!(target_os = "linux") {
            assert_eq!(m, Method::Exchange);
        }
    }
}
