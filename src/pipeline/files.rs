//! The target files of a run, in the one shape every stage uses: read once at the start (the
//! snapshot the stale-file check compares against at write time), and as they become while
//! units are spliced in.

use std::collections::BTreeMap;
use std::path::Path;

use super::build::UnitOutcome;
use super::PipelineError;
use crate::gate::{Gate, GateReport};
use crate::lang::SourceKind;
use crate::patch::Snapshot;

/// One target file.
pub struct FileText {
    pub snapshot: Snapshot,
    pub kind: SourceKind,
    /// As read at the start of the run.
    pub original: String,
    /// With every spliced unit in place.
    pub current: String,
    /// Line shifts from earlier splices: (first original line after the splice, delta).
    shifts: Vec<(usize, isize)>,
}

impl FileText {
    /// Where original line `line` is now, after the splices before it.
    pub fn shifted(&self, line: usize) -> usize {
        let d: isize = self
            .shifts
            .iter()
            .filter(|(after, _)| line >= *after)
            .map(|(_, d)| d)
            .sum();
        (line as isize + d).max(1) as usize
    }

    /// Put `patched` in place: the unit that ended on original line `unit_end` replaced
    /// `old_lines` lines with `new_lines`.
    pub fn splice(&mut self, patched: String, unit_end: usize, old_lines: usize, new_lines: usize) {
        self.current = patched;
        self.shifts
            .push((unit_end + 1, new_lines as isize - old_lines as isize));
    }
}

pub struct Workspace {
    files: BTreeMap<String, FileText>,
}

impl Workspace {
    /// Read every target under `root`, refusing files that are not source the gate knows or
    /// not UTF-8.
    pub fn open(root: &Path, targets: &[String]) -> Result<Workspace, PipelineError> {
        let mut files = BTreeMap::new();
        for t in targets {
            let kind =
                SourceKind::from_path(Path::new(t)).ok_or_else(|| PipelineError::Target {
                    file: t.clone(),
                    reason: "not a language the gate knows",
                })?;
            let snapshot = Snapshot::read(root, Path::new(t))?;
            let text =
                String::from_utf8(snapshot.bytes.clone()).map_err(|_| PipelineError::Target {
                    file: t.clone(),
                    reason: "not valid UTF-8",
                })?;
            files.insert(
                t.clone(),
                FileText {
                    snapshot,
                    kind,
                    original: text.clone(),
                    current: text,
                    shifts: Vec::new(),
                },
            );
        }
        Ok(Workspace { files })
    }

    pub fn get(&self, file: &str) -> Option<&FileText> {
        self.files.get(file)
    }

    pub fn get_mut(&mut self, file: &str) -> Option<&mut FileText> {
        self.files.get_mut(file)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &FileText)> {
        self.files.iter()
    }

    /// Every changed file judged whole (errors the change introduced only), with the highest
    /// risk of the units that changed it.
    pub fn gate(self, gate: &Gate, units: &[UnitOutcome], safe_mode: bool) -> Vec<FileOutcome> {
        let mut out = Vec::new();
        for (file, f) in self.files {
            if f.current == f.original {
                continue;
            }
            let report = gate.check_change(&f.original, &f.current, f.kind);
            let risk = units
                .iter()
                .filter(|u| u.file == file)
                .filter_map(|u| u.built())
                .filter(|b| b.valid || !safe_mode)
                .map(|b| b.risk.score)
                .fold(0.0, f64::max);
            out.push(FileOutcome {
                file,
                valid: report.is_valid,
                snapshot: f.snapshot,
                original: f.original,
                patched: f.current,
                risk,
                report,
            });
        }
        out
    }
}

/// One file's change: every spliced unit in place, in plan order.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub file: String,
    /// The file as read at the start (what the stale-file check compares against).
    pub snapshot: Snapshot,
    pub original: String,
    pub patched: String,
    /// The highest risk of the units that changed it.
    pub risk: f64,
    /// Whether the gate passes the whole patched file (introduced errors only).
    pub valid: bool,
    pub report: GateReport,
}
