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
//! `pending` finds the `.snap.new` files waiting for review, accepts and rejects them, and finds
//! stale and orphaned snapshots (docs/snapshots.md).
//!
//! Must not touch: the terminal (the CLI prints and asks), the device, the analysis.

pub mod pending;

use std::path::{Path, PathBuf};

use crate::outcome::Outcome;

/// A snapshot is a few kilobytes of YAML; past this a file is not one, and is not read whole.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

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
    use std::io::Read as _;
    let error = |source| SnapshotError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(error)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(error)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(SnapshotError::Parse {
            path: path.to_path_buf(),
            message: format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        });
    }
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

/// What `tattle run` may write when its outcome is not the accepted snapshot: insta's
/// `INSTA_UPDATE` modes (`auto` aside, which is `new` off CI and `no` on it in insta; tattle's
/// default is `new` everywhere, CI included, so a CI job keeps the `.snap.new` as an artifact).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UpdateMode {
    /// Write the outcome as the accepted `.snap` directly (a new one, or over a different one),
    /// and say so with the diff: never silently.
    Always,
    /// `always` for a scenario and firmware with no snapshot yet, `new` for a changed one.
    Unseen,
    /// Write a `.snap.new` beside the snapshot, for `tattle review`, `tattle accept` or `cargo
    /// insta review`.
    #[default]
    New,
    /// Write nothing; only compare.
    No,
}

/// Result of comparing a run's outcome with its stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Comparison {
    /// The outcome equals the accepted snapshot.
    Equal,
    /// No snapshot yet: the outcome was written as `pending` (`.snap.new`), or not at all with
    /// `--update=no`.
    Missing { pending: Option<PathBuf> },
    /// The outcome differs: written as `pending` (`.snap.new`, none with `--update=no`); `diff`
    /// is a unified diff of the bodies.
    Different {
        pending: Option<PathBuf>,
        diff: String,
    },
    /// `--update=always|unseen`: the outcome was written as the accepted snapshot; `diff` is what
    /// it replaced (none when there was no snapshot).
    Written { diff: Option<String> },
}

/// A unified diff of two snapshot bodies, headed with the files they come from.
pub(crate) fn body_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old.trim_end(), new.trim_end())
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

/// Compares `outcome` with the snapshot at `snap` and records it as `mode` says: a `.snap.new`
/// (`new`), the `.snap` itself (`always`, `unseen` for a first snapshot), or nothing (`no`). A
/// leftover `.snap.new` goes when the outcome equals the snapshot or when the snapshot is written.
pub(crate) fn compare_and_record(
    snap: &Path,
    outcome: &Outcome,
    mode: UpdateMode,
) -> Result<Comparison, SnapshotError> {
    let pending = pending_path(snap);
    let remove_pending = || {
        if mode != UpdateMode::No {
            let _ = std::fs::remove_file(&pending);
        }
    };
    if !snap.exists() {
        return Ok(match mode {
            UpdateMode::Always | UpdateMode::Unseen => {
                write(snap, outcome)?;
                remove_pending();
                Comparison::Written { diff: None }
            }
            UpdateMode::New => {
                write(&pending, outcome)?;
                Comparison::Missing {
                    pending: Some(pending),
                }
            }
            UpdateMode::No => Comparison::Missing { pending: None },
        });
    }
    let stored = read_body(snap)?;
    let body = render(outcome);
    // insta ignores trailing whitespace differences; so do we.
    if stored.trim_end() == body.trim_end() {
        remove_pending();
        return Ok(Comparison::Equal);
    }
    Ok(match mode {
        UpdateMode::Always => {
            let diff = body_diff(
                &stored,
                &body,
                &snap.display().to_string(),
                &snap.display().to_string(),
            );
            write(snap, outcome)?;
            remove_pending();
            Comparison::Written { diff: Some(diff) }
        }
        UpdateMode::New | UpdateMode::Unseen => {
            write(&pending, outcome)?;
            let diff = body_diff(
                &stored,
                &body,
                &snap.display().to_string(),
                &pending.display().to_string(),
            );
            Comparison::Different {
                pending: Some(pending),
                diff,
            }
        }
        UpdateMode::No => Comparison::Different {
            pending: None,
            diff: body_diff(
                &stored,
                &body,
                &snap.display().to_string(),
                "this run's outcome",
            ),
        },
    })
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
                    tls: None,
                }],
                size_correlations: vec![],
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
        let first = compare_and_record(&snap, &outcome(), UpdateMode::New).unwrap();
        assert!(matches!(first, Comparison::Missing { .. }));
        std::fs::rename(pending_path(&snap), &snap).unwrap();
        assert_eq!(
            compare_and_record(&snap, &outcome(), UpdateMode::New).unwrap(),
            Comparison::Equal
        );
        assert!(!pending_path(&snap).exists());
        let mut changed = outcome();
        changed.steps[0].leaks.clear();
        match compare_and_record(&snap, &changed, UpdateMode::New).unwrap() {
            Comparison::Different {
                diff,
                pending: Some(pending),
            } => {
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
    fn update_modes_write_what_they_say() {
        let dir = tempfile::tempdir().unwrap();
        let snap = path_for(dir.path(), &outcome());
        let pending = pending_path(&snap);
        // `no`: nothing written, ever.
        assert_eq!(
            compare_and_record(&snap, &outcome(), UpdateMode::No).unwrap(),
            Comparison::Missing { pending: None }
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // `unseen` and `always` write a first snapshot as the accepted one.
        for mode in [UpdateMode::Unseen, UpdateMode::Always] {
            let _ = std::fs::remove_file(&snap);
            assert_eq!(
                compare_and_record(&snap, &outcome(), mode).unwrap(),
                Comparison::Written { diff: None }
            );
            assert_eq!(load_outcome(&snap).unwrap(), outcome());
        }
        let mut changed = outcome();
        changed.steps[0].leaks[0].encoding = "plain".into();
        // `unseen` keeps an existing snapshot and leaves the change pending; `no` leaves nothing.
        assert!(matches!(
            compare_and_record(&snap, &changed, UpdateMode::Unseen).unwrap(),
            Comparison::Different {
                pending: Some(_),
                ..
            }
        ));
        assert_eq!(load_outcome(&pending).unwrap(), changed);
        std::fs::remove_file(&pending).unwrap();
        assert!(matches!(
            compare_and_record(&snap, &changed, UpdateMode::No).unwrap(),
            Comparison::Different { pending: None, .. }
        ));
        assert!(!pending.exists());
        assert_eq!(load_outcome(&snap).unwrap(), outcome());
        // `always` replaces it, says what it replaced, and clears a leftover `.snap.new`.
        std::fs::write(&pending, render_file(&outcome())).unwrap();
        match compare_and_record(&snap, &changed, UpdateMode::Always).unwrap() {
            Comparison::Written { diff: Some(diff) } => {
                assert!(diff.contains("-    encoding: md5+base64"), "{diff}");
                assert!(diff.contains("+    encoding: plain"), "{diff}");
            }
            other => panic!("expected a replacement, got {other:?}"),
        }
        assert_eq!(load_outcome(&snap).unwrap(), changed);
        assert!(!pending.exists());
    }

    #[test]
    fn pending_snapshots_accept_reject_stale_orphaned() {
        use pending::Pending;
        let dir = tempfile::tempdir().unwrap();
        let (snaps, runs) = (dir.path().join("snapshots"), dir.path().join("runs"));
        let snap = path_for(&snaps, &outcome());
        let mut changed = outcome();
        changed.steps[0].leaks.clear();
        write(&snap, &outcome()).unwrap();
        write(&pending_path(&snap), &changed).unwrap();
        // A snapshot of a scenario that is gone, and a pending one nobody's run made.
        let mut gone = outcome();
        gone.scenario = "removed-scenario".into();
        write(&pending_path(&path_for(&snaps, &gone)), &gone).unwrap();
        let found = pending::find(&snaps).unwrap();
        assert_eq!(found.len(), 2);
        let known = ["send-sms".to_string()].into();
        assert_eq!(
            pending::stale(&snaps, &known).unwrap(),
            vec![pending_path(&path_for(&snaps, &gone))]
        );
        // The run that produced the change is kept; the other pending one is orphaned.
        let run = runs.join("send-sms@fw-1-20261130T101010Z-0");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join(RUN_DIR_FILE), render_file(&changed)).unwrap();
        let this = Pending::named(&snaps, "send-sms@fw-1").unwrap();
        assert_eq!(this.snap, snap);
        assert_eq!(pending::run_of(&this, &runs), Some(run));
        assert_eq!(
            pending::orphaned(&found, &runs),
            vec![pending_path(&path_for(&snaps, &gone))]
        );
        // Accepting replaces the snapshot; a damaged `.snap.new` is never accepted.
        this.accept().unwrap();
        assert_eq!(load_outcome(&snap).unwrap(), changed);
        assert!(Pending::named(&snaps, "send-sms@fw-1").is_none());
        std::fs::write(pending_path(&snap), "---\nsource: x\n---\nnot: [an outcome").unwrap();
        let broken = Pending::of(&pending_path(&snap)).unwrap();
        assert!(matches!(broken.accept(), Err(SnapshotError::Parse { .. })));
        assert_eq!(load_outcome(&snap).unwrap(), changed);
        // Rejecting deletes the `.snap.new` only.
        broken.reject().unwrap();
        assert!(!pending_path(&snap).exists());
        assert!(snap.exists());
    }

    #[test]
    fn reads_insta_written_files() {
        let text = "---\nsource: tests/it/outcomes.rs\nexpression: body\n---\nscenario: x\n";
        assert_eq!(body_of(text), "scenario: x\n");
        assert_eq!(body_of("scenario: x\n"), "scenario: x\n");
    }
}
