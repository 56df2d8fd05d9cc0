//! Pending snapshots: the `.snap.new` files `tattle run` leaves for review, accepting one (it
//! replaces the `.snap`) or rejecting one (it is deleted), and what no longer belongs: **stale**
//! snapshots (a `.snap` or `.snap.new` whose scenario no longer exists) and **orphaned** pending
//! ones (a `.snap.new` that no kept run directory produced, so there is no capture to check it
//! against).
//!
//! A pending file is accepted only when it parses as an outcome: a damaged or foreign file never
//! becomes the accepted snapshot. The files stay insta's, so `cargo insta review` sees the same.
//!
//! Must not touch: the terminal (the CLI asks and prints), the device.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{RUN_DIR_FILE, SnapshotError, body_of, load_outcome, pending_path, read_body};

/// Files looked at in one folder: a snapshots or runs folder with more is not one.
const MAX_ENTRIES: usize = 100_000;

/// A `.snap.new` and the `.snap` it would replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `<scenario>@<firmware>.snap.new`.
    pub new: PathBuf,
    /// `<scenario>@<firmware>.snap` (may not exist yet).
    pub snap: PathBuf,
}

impl Pending {
    /// The pending change of a path a user names: the `.snap.new` itself, its `.snap`, or the
    /// snapshot's name (`send-sms@fw`) inside `dir`.
    pub fn named(dir: &Path, arg: &str) -> Option<Pending> {
        let as_path = Path::new(arg);
        let candidates = [
            as_path.to_path_buf(),
            pending_path(as_path),
            dir.join(format!("{arg}.snap.new")),
            dir.join(arg),
            pending_path(&dir.join(arg)),
        ];
        candidates
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".snap.new"))
            .find(|p| p.is_file())
            .and_then(|new| Pending::of(&new))
    }

    /// The pending change a `.snap.new` path is.
    pub fn of(new: &Path) -> Option<Pending> {
        let text = new.to_str()?;
        let snap = text.strip_suffix(".new")?;
        snap.ends_with(".snap").then(|| Pending {
            new: new.to_path_buf(),
            snap: PathBuf::from(snap),
        })
    }

    /// Replaces the `.snap` with the `.snap.new` (a rename: atomic on one file system), after
    /// checking that it is an outcome.
    pub fn accept(&self) -> Result<(), SnapshotError> {
        load_outcome(&self.new)?;
        std::fs::rename(&self.new, &self.snap).map_err(|source| SnapshotError::Write {
            path: self.snap.clone(),
            source,
        })
    }

    /// Deletes the `.snap.new`; the accepted snapshot stays as it was.
    pub fn reject(&self) -> Result<(), SnapshotError> {
        std::fs::remove_file(&self.new).map_err(|source| SnapshotError::Write {
            path: self.new.clone(),
            source,
        })
    }
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>, SnapshotError> {
    let error = |source| SnapshotError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)?.take(MAX_ENTRIES) {
        paths.push(entry.map_err(error)?.path());
    }
    paths.sort();
    Ok(paths)
}

/// Every `.snap.new` in `dir`, by name; none when `dir` does not exist.
pub fn find(dir: &Path) -> Result<Vec<Pending>, SnapshotError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(entries(dir)?
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| Pending::of(p))
        .collect())
}

/// The scenario a snapshot file stores: its outcome's, else the part of its name before `@`.
fn scenario_of(path: &Path) -> Option<String> {
    if let Ok(outcome) = load_outcome(path) {
        return Some(outcome.scenario);
    }
    let name = path.file_name()?.to_str()?;
    name.split_once('@').map(|(s, _)| s.to_string())
}

/// Snapshots (`.snap` and `.snap.new`) in `dir` whose scenario is not one of `scenarios`.
pub fn stale(dir: &Path, scenarios: &BTreeSet<String>) -> Result<Vec<PathBuf>, SnapshotError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(entries(dir)?
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            p.is_file() && (name.ends_with(".snap") || name.ends_with(".snap.new"))
        })
        .filter(|p| scenario_of(p).is_none_or(|s| !scenarios.contains(&s)))
        .collect())
}

/// The run directory under `runs` whose `outcome.snap` is the pending change, if one is kept.
pub fn run_of(pending: &Pending, runs: &Path) -> Option<PathBuf> {
    let body = read_body(&pending.new).ok()?;
    if !runs.is_dir() {
        return None;
    }
    // Newest first: run directories end in their start time.
    let mut dirs = entries(runs).ok()?;
    dirs.reverse();
    dirs.into_iter().find(|dir| {
        std::fs::read_to_string(dir.join(RUN_DIR_FILE))
            .is_ok_and(|text| body_of(&text).trim_end() == body.trim_end())
    })
}

/// The pending changes no kept run directory under `runs` produced.
pub fn orphaned(pending: &[Pending], runs: &Path) -> Vec<PathBuf> {
    pending
        .iter()
        .filter(|p| run_of(p, runs).is_none())
        .map(|p| p.new.clone())
        .collect()
}
