//! Snapshots: outcomes stored in insta's `.snap` format under `snapshots/`, named
//! `<scenario>@<firmware>.snap`, with pending changes written as `.snap.new` beside them.
//!
//! The one home of snapshot naming (`name`, `path_for`, `pending_path`, a run directory's
//! `outcome.snap`), of the file (`render_file`: insta's `---` front matter with `source` and
//! `expression`, then the body, the outcome as YAML) and of comparison (`compare_and_record`). The
//! runner stores `render_file` in the run directory, the CLI compares, and tattle's tests write the
//! same files through `insta::assert_snapshot!(snapshot::name(…), snapshot::render(…))`, so `cargo
//! insta review` accepts a `.snap.new` written by `tattle run`.
//!
//! Must not touch: the terminal (the CLI prints), the device, the analysis.

use std::path::{Path, PathBuf};

use crate::outcome::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read snapshot {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write snapshot {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an outcome snapshot: {message}")]
    Parse { path: PathBuf, message: String },
}

/// The file name of an outcome inside a run directory.
pub(crate) const RUN_DIR_FILE: &str = "outcome.snap";

/// `<scenario>@<firmware>`: what a snapshot is known by (insta adds `.snap` to it).
pub fn name(scenario: &str, firmware: &str) -> String {
    format!("{scenario}@{firmware}")
}

/// `DIR/<scenario>@<firmware>.snap`: where the accepted snapshot of an outcome lives.
pub(crate) fn path_for(dir: &Path, outcome: &Outcome) -> PathBuf {
    dir.join(format!(
        "{}.snap",
        name(&outcome.scenario, &outcome.firmware)
    ))
}

/// The `.snap.new` beside a snapshot path: a pending change `cargo insta review` offers.
pub(crate) fn pending_path(snap: &Path) -> PathBuf {
    let mut name = snap.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// The snapshot body of an outcome: YAML, deterministic (the outcome is sorted).
pub fn render(outcome: &Outcome) -> String {
    let mut text =
        serde_saphyr::to_string(outcome).unwrap_or_else(|e| format!("# unrenderable: {e}\n"));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// A whole `.snap` file of an outcome: insta's front matter (`source`, `expression`: `<scenario> on
/// <firmware>`), then the body.
pub(crate) fn render_file(outcome: &Outcome) -> String {
    format!(
        "---\nsource: tattle\nexpression: {} on {}\n---\n{}",
        outcome.scenario,
        outcome.firmware,
        render(outcome)
    )
}

/// Parses a snapshot body back into an outcome.
fn parse_body(body: &str, path: &Path) -> Result<Outcome, SnapshotError> {
    serde_saphyr::from_str(body).map_err(|e| SnapshotError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The body of a `.snap` file: what follows insta's front matter (all of it when there is none).
fn body_of(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix("---\n")
        && let Some(end) = rest.find("\n---\n")
    {
        return &rest[end + 5..];
    }
    text
}

/// Reads a `.snap` (or `.snap.new`) file and returns its body.
fn read_body(path: &Path) -> Result<String, SnapshotError> {
    let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(body_of(&text).to_string())
}

/// Reads an outcome from a `.snap` file or a run directory (its `outcome.snap`).
pub fn load_outcome(path: &Path) -> Result<Outcome, SnapshotError> {
    let file = if path.is_dir() {
        path.join(RUN_DIR_FILE)
    } else {
        path.to_path_buf()
    };
    let body = read_body(&file)?;
    parse_body(&body, &file)
}

/// Writes the `.snap` file of an outcome (creating its directory).
fn write(path: &Path, outcome: &Outcome) -> Result<(), SnapshotError> {
    let error = |source| SnapshotError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    std::fs::write(path, render_file(outcome)).map_err(error)
}

/// Result of comparing a run's outcome with its stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Comparison {
    /// The outcome equals the accepted snapshot.
    Equal,
    /// No snapshot yet: the outcome was written as `.snap.new`.
    Missing { pending: PathBuf },
    /// The outcome differs: written as `.snap.new`; `diff` is a unified diff of the bodies.
    Different { pending: PathBuf, diff: String },
}

/// Compares `outcome` with the snapshot at `snap`; writes `.snap.new` unless equal (and removes a
/// stale `.snap.new` when equal).
pub(crate) fn compare_and_record(
    snap: &Path,
    outcome: &Outcome,
) -> Result<Comparison, SnapshotError> {
    let pending = pending_path(snap);
    if !snap.exists() {
        write(&pending, outcome)?;
        return Ok(Comparison::Missing { pending });
    }
    let stored = read_body(snap)?;
    let body = render(outcome);
    // insta ignores trailing whitespace differences; so do we.
    if stored.trim_end() == body.trim_end() {
        let _ = std::fs::remove_file(&pending);
        return Ok(Comparison::Equal);
    }
    write(&pending, outcome)?;
    let diff = similar::TextDiff::from_lines(stored.trim_end(), body.trim_end())
        .unified_diff()
        .context_radius(3)
        .header(&snap.display().to_string(), &pending.display().to_string())
        .to_string();
    Ok(Comparison::Different { pending, diff })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{HostContact, Leak, OutcomeDevice, StepOutcome};

    fn outcome() -> Outcome {
        Outcome {
            scenario: "send-sms".into(),
            firmware: "fw-1".into(),
            device: OutcomeDevice {
                manufacturer: "Acme".into(),
                model: "One: the \"best\"".into(),
                android: "13".into(),
            },
            steps: vec![StepOutcome {
                step: "1 send-sms".into(),
                hosts: vec![HostContact {
                    host: "a.example".into(),
                    protocols: vec!["dns".into(), "tls".into()],
                }],
                leaks: vec![Leak {
                    identifier: "<imei>".into(),
                    host: "a.example".into(),
                    protocol: "http".into(),
                    location: "http.header:Cookie".into(),
                    encoding: "md5+base64".into(),
                }],
            }],
        }
    }

    #[test]
    fn body_round_trips() {
        let o = outcome();
        let body = render(&o);
        assert_eq!(parse_body(&body, Path::new("x")).unwrap(), o);
        let file = render_file(&o);
        assert_eq!(
            file,
            format!("---\nsource: tattle\nexpression: send-sms on fw-1\n---\n{body}")
        );
        assert_eq!(body_of(&file), body);
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(name("send-sms", "fw-1"), "send-sms@fw-1");
        let snap = path_for(Path::new("snapshots"), &outcome());
        assert_eq!(snap, Path::new("snapshots/send-sms@fw-1.snap"));
        assert_eq!(
            pending_path(&snap),
            Path::new("snapshots/send-sms@fw-1.snap.new")
        );
    }

    /// The accepted snapshots (written by insta from the integration tests) render back to the
    /// same bytes: what `tattle run` compares is what insta stored.
    #[test]
    fn committed_snapshots_render_byte_identically() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "snap") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let outcome = load_outcome(&path).unwrap();
            assert_eq!(render(&outcome), body_of(&text), "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 9, "{seen} snapshots");
    }

    #[test]
    fn compare_writes_pending_and_diff() {
        let dir = tempfile::tempdir().unwrap();
        let snap = path_for(dir.path(), &outcome());
        let first = compare_and_record(&snap, &outcome()).unwrap();
        assert!(matches!(first, Comparison::Missing { .. }));
        std::fs::rename(pending_path(&snap), &snap).unwrap();
        assert_eq!(
            compare_and_record(&snap, &outcome()).unwrap(),
            Comparison::Equal
        );
        assert!(!pending_path(&snap).exists());
        let mut changed = outcome();
        changed.steps[0].leaks.clear();
        match compare_and_record(&snap, &changed).unwrap() {
            Comparison::Different { diff, pending } => {
                assert!(
                    diff.lines()
                        .any(|l| l.starts_with('-') && l.contains("identifier: <imei>")),
                    "{diff}"
                );
                assert_eq!(
                    std::fs::read_to_string(&pending).unwrap(),
                    render_file(&changed)
                );
            }
            other => panic!("expected a difference, got {other:?}"),
        }
        assert_eq!(load_outcome(&pending_path(&snap)).unwrap(), changed);
        // A run directory holds its outcome as `outcome.snap`.
        std::fs::write(dir.path().join(RUN_DIR_FILE), render_file(&changed)).unwrap();
        assert_eq!(load_outcome(dir.path()).unwrap(), changed);
    }

    #[test]
    fn reads_insta_written_files() {
        let text = "---\nsource: tests/it/outcomes.rs\nexpression: body\n---\nscenario: x\n";
        assert_eq!(body_of(text), "scenario: x\n");
        assert_eq!(body_of("scenario: x\n"), "scenario: x\n");
    }
}
