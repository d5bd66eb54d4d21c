use std::fs;
use std::path::{Path, PathBuf};

use super::{RunRecord, RECORD_FILE};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "`{0}` is not a run id (expected gen_YYYYMMDD_HHMMSS_xxxxxx); see `ouroboros list-runs`"
    )]
    BadId(String),
    #[error("{0}")]
    Outside(String),
    #[error("no run `{id}` in {dir}")]
    NoRun { id: String, dir: String },
    #[error("{path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid run record")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The runs of one repository, under `.ouroboros/runs/`.
pub struct RunStore {
    root: PathBuf,
    runs: PathBuf,
}

/// One entry of a listing: a record, or the reason a directory's record could not be read.
pub enum ListedRun {
    Ok(Box<RunRecord>),
    Unreadable {
        run_id: String,
        path: PathBuf,
        reason: String,
    },
}

impl ListedRun {
    fn sort_key(&self) -> (String, String) {
        match self {
            ListedRun::Ok(r) => (r.timestamp_start.clone(), r.run_id.clone()),
            ListedRun::Unreadable { run_id, .. } => (started_from_id(run_id), run_id.clone()),
        }
    }
}

/// `gen_20261121_162041_…` → `2026-11-21T16:20:41`, comparable with recorded timestamps.
fn started_from_id(id: &str) -> String {
    let d = &id[4..12];
    let t = &id[13..19];
    format!(
        "{}-{}-{}T{}:{}:{}",
        &d[..4],
        &d[4..6],
        &d[6..],
        &t[..2],
        &t[2..4],
        &t[4..]
    )
}

impl RunStore {
    pub fn new(root: &Path) -> RunStore {
        RunStore {
            root: root.to_path_buf(),
            runs: root.join(".ouroboros").join("runs"),
        }
    }

    /// The runs folder, unless `.ouroboros` or `runs` leads out of the repository.
    fn checked(&self) -> Result<PathBuf, StoreError> {
        crate::patch::state_path(&self.root, "runs").map_err(|e| StoreError::Outside(e.to_string()))
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.runs.join(run_id)
    }

    pub fn record_path(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join(RECORD_FILE)
    }

    /// Load one run's record, with a message that names the file if it cannot be read.
    pub fn load(&self, run_id: &str) -> Result<RunRecord, StoreError> {
        if !is_valid_run_id(run_id) {
            return Err(StoreError::BadId(run_id.to_string()));
        }
        self.checked()?;
        let path = self.record_path(run_id);
        if !self.run_dir(run_id).is_dir() {
            return Err(StoreError::NoRun {
                id: run_id.to_string(),
                dir: self.runs.display().to_string(),
            });
        }
        read_record(&path, run_id)
    }

    /// Every run, newest first. Unreadable records are listed as such, never fatal.
    pub fn list(&self) -> Vec<ListedRun> {
        if self.checked().is_err() {
            return Vec::new();
        }
        let Ok(entries) = fs::read_dir(&self.runs) else {
            return Vec::new();
        };
        let ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| is_valid_run_id(name))
            .collect();
        let mut runs: Vec<ListedRun> = ids
            .into_iter()
            .map(|id| {
                let path = self.record_path(&id);
                match read_record(&path, &id) {
                    Ok(r) => ListedRun::Ok(Box::new(r)),
                    Err(e) => ListedRun::Unreadable {
                        run_id: id,
                        path,
                        reason: match &e {
                            StoreError::Read { source, .. } => format!("{e}: {source}"),
                            StoreError::Parse { source, .. } => format!("{e}: {source}"),
                            other => other.to_string(),
                        },
                    },
                }
            })
            .collect();
        // Newest first by the recorded start (millisecond precision): two runs can share the
        // second an id is named after. Unreadable records are placed by their id's time.
        runs.sort_by_key(|r| std::cmp::Reverse(r.sort_key()));
        runs
    }

    /// Whether run `id` was killed while writing files: its journal is still there.
    pub fn interrupted(&self, id: &str) -> bool {
        is_valid_run_id(id)
            && self
                .run_dir(id)
                .join(crate::patch::journal::JOURNAL_FILE)
                .is_file()
    }

    pub fn latest(&self) -> Option<RunRecord> {
        self.list().into_iter().find_map(|r| match r {
            ListedRun::Ok(r) => Some(*r),
            ListedRun::Unreadable { .. } => None,
        })
    }
}

/// The record of run `id`: a run is named by its folder, whatever its record's `run_id` field
/// says (a forged `../../etc` is shown as the folder it sits in).
fn read_record(path: &Path, id: &str) -> Result<RunRecord, StoreError> {
    let bytes = fs::read(path).map_err(|source| StoreError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut record: RunRecord =
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Parse {
            path: path.display().to_string(),
            source,
        })?;
    record.run_id = id.to_string();
    Ok(record)
}

/// `gen_YYYYMMDD_HHMMSS_xxxxxx`; anything else is not ours (and could be a path trick).
pub fn is_valid_run_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 26
        && id.starts_with("gen_")
        && b[4..12].iter().all(u8::is_ascii_digit)
        && b[12] == b'_'
        && b[13..19].iter().all(u8::is_ascii_digit)
        && b[19] == b'_'
        && b[20..]
            .iter()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}
