use std::fs::{self, File, Permissions};
use std::io::Write;
use std::path::Path;

use super::{io_err, PatchError};

/// Write `bytes` to `path` so that a reader, or a crash at any instant, sees either the whole
/// old file or the whole new one: a temp file in the same directory, fsync, rename over the
/// target, then fsync the directory so the rename itself is durable.
pub fn atomic_write(
    path: &Path,
    bytes: &[u8],
    mode: Option<Permissions>,
) -> Result<(), PatchError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".ouroboros-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err(path))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    if let Some(mode) = mode {
        fs::set_permissions(tmp.path(), mode).map_err(io_err(path))?;
    }
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(())
}
