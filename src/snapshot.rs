//! Snapshots: outcomes stored in insta's `.snap` format under `snapshots/`, named
//! `<scenario>@<firmware>.snap`, with pending changes written as `.snap.new` beside them.
//!
//! The file is insta's: a `---` front-matter block (`source`, `expression`) and the body, here the
//! outcome as YAML. tattle's tests write the same files through `insta::assert_snapshot!`, and
//! `cargo insta review` can accept a `.snap.new` written by `tattle run`.
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

/// `DIR/<scenario>@<firmware>.snap`.
pub fn path_for(dir: &Path, scenario: &str, firmware: &str) -> PathBuf {
    dir.join(format!("{scenario}@{firmware}.snap"))
}

/// The `.snap.new` beside a snapshot path.
pub fn pending_path(snap: &Path) -> PathBuf {
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

/// Parses a snapshot body back into an outcome.
pub fn parse_body(body: &str, path: &Path) -> Result<Outcome, SnapshotError> {
    serde_saphyr::from_str(body).map_err(|e| SnapshotError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Splits a `.snap` file into its front matter and body (insta's layout).
pub fn split_snap(text: &str) -> (&str, &str) {
    if let Some(rest) = text.strip_prefix("---\n")
        && let Some(end) = rest.find("\n---\n")
    {
        return (&rest[..end], &rest[end + 5..]);
    }
    ("", text)
}

/// Reads a `.snap` (or `.snap.new`) file and returns its body.
pub fn read_body(path: &Path) -> Result<String, SnapshotError> {
    let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(split_snap(&text).1.to_string())
}

/// Reads an outcome from a `.snap` file or a run directory (its `outcome.snap`).
pub fn load_outcome(path: &Path) -> Result<Outcome, SnapshotError> {
    let file = if path.is_dir() {
        path.join("outcome.snap")
    } else {
        path.to_path_buf()
    };
    let body = read_body(&file)?;
    parse_body(&body, &file)
}

/// Writes a snapshot file in insta's format. `expression` says what it is a snapshot of.
pub fn write(path: &Path, expression: &str, body: &str) -> Result<(), SnapshotError> {
    let text = format!("---\nsource: tattle\nexpression: {expression}\n---\n{body}");
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| SnapshotError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| SnapshotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Result of comparing a run's outcome with its stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The outcome equals the accepted snapshot.
    Equal,
    /// No snapshot yet: the outcome was written as `.snap.new`.
    Missing { pending: PathBuf },
    /// The outcome differs: written as `.snap.new`; `diff` is a unified diff of the bodies.
    Different { pending: PathBuf, diff: String },
}

/// Compares `body` with the snapshot at `snap`; writes `.snap.new` unless equal (and removes a stale
/// `.snap.new` when equal).
pub fn compare_and_record(
    snap: &Path,
    expression: &str,
    body: &str,
) -> Result<Comparison, SnapshotError> {
    let pending = pending_path(snap);
    if !snap.exists() {
        write(&pending, expression, body)?;
        return Ok(Comparison::Missing { pending });
    }
    let stored = read_body(snap)?;
    // insta ignores trailing whitespace differences; so do we.
    if stored.trim_end() == body.trim_end() {
        let _ = std::fs::remove_file(&pending);
        return Ok(Comparison::Equal);
    }
    write(&pending, expression, body)?;
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
    }

    #[test]
    fn compare_writes_pending_and_diff() {
        let dir = tempfile::tempdir().unwrap();
        let snap = path_for(dir.path(), "send-sms", "fw-1");
        let body = render(&outcome());
        let first = compare_and_record(&snap, "e", &body).unwrap();
        assert!(matches!(first, Comparison::Missing { .. }));
        std::fs::rename(pending_path(&snap), &snap).unwrap();
        assert_eq!(
            compare_and_record(&snap, "e", &body).unwrap(),
            Comparison::Equal
        );
        let mut changed = outcome();
        changed.steps[0].leaks.clear();
        match compare_and_record(&snap, "e", &render(&changed)).unwrap() {
            Comparison::Different { diff, pending } => {
                assert!(
                    diff.contains("-  - identifier: <imei>") || diff.contains("identifier"),
                    "{diff}"
                );
                assert!(pending.exists());
            }
            other => panic!("expected a difference, got {other:?}"),
        }
        assert_eq!(load_outcome(&pending_path(&snap)).unwrap(), changed);
    }

    #[test]
    fn reads_insta_written_files() {
        let text = "---\nsource: tests/it/outcomes.rs\nexpression: body\n---\nscenario: x\n";
        assert_eq!(split_snap(text).1, "scenario: x\n");
    }
}
