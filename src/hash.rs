//! Content hashes, in the one form provenance, caches and the graph all use: `sha256:<hex>`.
//! Large files can have their hash remembered by identity (size, mtime, inode), so a 15 GB
//! checkpoint is read once rather than on every run.

use std::path::Path;

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of some bytes, the form provenance records use.
pub fn sha256_tagged(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The bare lowercase hex digest.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A file's identity short of its contents: size, modification time and (on Unix) device and
/// inode. A changed file gets a new one unless it was rewritten in place to the same size with
/// its old mtime restored, which provenance hashes do not guard against.
fn file_stamp(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let node = {
        use std::os::unix::fs::MetadataExt;
        format!("{}:{}", meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let node = String::new();
    format!("{}:{mtime}:{node}", meta.len())
}

/// The sha256 (hex) of a file, remembered in `memo` (a JSON map of path to stamp and hash) for
/// files of `min_bytes` or more. Files are streamed, not read whole. A memo that cannot be read
/// or written is ignored: it only saves time.
pub fn file_sha256(path: &Path, memo: Option<&Path>, min_bytes: u64) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let memo = memo.filter(|_| meta.len() >= min_bytes);
    let key = std::fs::canonicalize(path)?.to_string_lossy().into_owned();
    let stamp = file_stamp(&meta);
    let mut known: serde_json::Map<String, serde_json::Value> = memo
        .and_then(|m| std::fs::read(m).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(entry) = known.get(&key) {
        if entry["stamp"] == stamp.as_str() {
            if let Some(hex) = entry["sha256"].as_str() {
                return Ok(hex.to_string());
            }
        }
    }
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
    let hex = format!("{:x}", h.finalize());
    if let Some(m) = memo {
        known.insert(key, serde_json::json!({"stamp": stamp, "sha256": hex}));
        if let Ok(bytes) = serde_json::to_vec_pretty(&known) {
            let _ = write_memo(m, &bytes);
        }
    }
    Ok(hex)
}

/// Replace the memo whole (temp file, rename), so a reader never sees half of it.
fn write_memo(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_hashes_are_sha256sum_with_a_prefix() {
        assert_eq!(
            sha256_tagged(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn large_file_hashes_are_remembered_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.safetensors");
        let memo = dir.path().join("memo/file-hashes.json");
        std::fs::write(&file, b"weights v1").unwrap();
        let v1 = file_sha256(&file, Some(&memo), 1).unwrap();
        assert_eq!(v1, sha256_hex(b"weights v1"));
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&memo).unwrap()).unwrap();
        let entry = saved.as_object().unwrap().values().next().unwrap();
        assert_eq!(entry["sha256"], v1.as_str());
        // A wrong hash planted under the same stamp is what comes back: the file is not read.
        let key = saved.as_object().unwrap().keys().next().unwrap().clone();
        let planted =
            serde_json::json!({key.clone(): {"stamp": entry["stamp"], "sha256": "planted"}});
        std::fs::write(&memo, planted.to_string()).unwrap();
        assert_eq!(file_sha256(&file, Some(&memo), 1).unwrap(), "planted");
        // Changed contents (size and mtime) are hashed again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, b"weights v2, longer").unwrap();
        let v2 = file_sha256(&file, Some(&memo), 1).unwrap();
        assert_ne!(v2, "planted");
        assert_ne!(v2, v1);
        // Below the size threshold the memo is neither read nor written.
        std::fs::remove_file(&memo).unwrap();
        assert_eq!(file_sha256(&file, Some(&memo), 1 << 30).unwrap(), v2);
        assert!(!memo.exists());
    }
}
