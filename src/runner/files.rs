//! The run directory: `ROOT/<scenario>@<firmware>-<UTC time>-<n>`, mode 0700, and its files, mode
//! 0600: `run.json`, `evidence.json`, `outcome.snap`, `report.txt` (the capture task writes
//! `capture.pcap`), `policy.json` with `--policy`, and last `manifest.json` (`evidence`) with its
//! signature under `--sign`. A differential series' verdict, `differential.json`, gets a directory
//! of its own (`<scenario>-differential@…`).
//!
//! Must not touch: what the files say (`report::json`, `snapshot`, `report` render them).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{Prepared, RunError, RunResult};
use crate::device;
use crate::device::clock::{ClockReading, ClockRecord};
use crate::evidence;
use crate::outcome::StepWindow;
use crate::report::{
    self,
    json::{CaptureOut, EvidenceRecord, RUN_FORMAT_VERSION, RunRecord},
};
use crate::snapshot;

/// The capture's file name in a run directory.
pub(super) const CAPTURE_FILE: &str = "capture.pcap";
const RUN_RECORD_FILE: &str = "run.json";
/// A policy's verdict on the run (`--policy`).
pub(crate) const POLICY_FILE: &str = "policy.json";

/// What `run.json` says before anything is captured.
fn record<'a>(p: &'a Prepared) -> RunRecord<'a> {
    RunRecord {
        format_version: RUN_FORMAT_VERSION,
        scenario: &p.scenario.name,
        scenario_file: p.redactor.clean(&p.scenario.path.display().to_string()),
        run_id: &p.run_id,
        device: p.identity.redacted(&p.redactor),
        firmware: &p.firmware.key,
        firmware_source: p.firmware.source,
        firmware_note: p.firmware.note.clone(),
        clock_offset_seconds: p.clock_offset,
        clock: ClockRecord {
            timestamps: if p.capture.device_clock() {
                "device"
            } else {
                "host"
            },
            start: p.clock_start.clone(),
            end: ClockReading::unmeasured("the capture did not start"),
        },
        capture_source: super::source_record(None, p),
        identifiers_watched: p.identifiers.iter().map(|i| i.kind.as_str()).collect(),
        identifiers_missing: &p.missing,
        steps: &[],
        capture: None,
        damage: Vec::new(),
        interrupted: None,
        notes: &p.plan.notes,
        error: None,
    }
}

/// Leaves a record of why the run directory holds no usable capture.
pub(super) fn write_failure_record(p: &Prepared, error: &str) {
    let record = RunRecord {
        // One line: the error's "\n  help: …" would reach run.json as `?`.
        error: Some(p.redactor.clean(&error.replace("\n  help: ", "; help: "))),
        ..record(p)
    };
    let _ = write_json(&p.dir.join(RUN_RECORD_FILE), &record);
}

/// Writes `run.json`, `evidence.json`, `outcome.snap` and `report.txt`.
pub(super) fn write_run_files(
    p: &Prepared,
    windows: &[StepWindow],
    r: &RunResult,
) -> Result<(), RunError> {
    let record = RunRecord {
        steps: windows,
        capture: Some(CaptureOut::from(&r.capture)),
        damage: r
            .analysis
            .damage
            .iter()
            .map(|d| {
                r.redactor
                    .clean(&format!("after frame {}: {}", d.after_frame, d.what))
            })
            .collect(),
        interrupted: r.interrupted.as_deref(),
        notes: &r.notes,
        firmware: &r.outcome.firmware,
        clock: r.clock.clone(),
        capture_source: r.capture_source.clone(),
        ..record(p)
    };
    write_json(&r.dir.join(RUN_RECORD_FILE), &record)?;
    let evidence = EvidenceRecord {
        format_version: RUN_FORMAT_VERSION,
        findings: &r.evidence,
        traffic: &r.traffic,
        contacts: &r.contacts,
    };
    write_json(&r.dir.join("evidence.json"), &evidence)?;
    write_private(
        &r.dir.join(snapshot::RUN_DIR_FILE),
        &snapshot::render_file(&r.outcome),
    )?;
    write_private(
        &r.dir.join("report.txt"),
        &report::render_outcome(&r.outcome, &r.traffic),
    )
}

/// Judges the run by `policy` and writes the verdict as `policy.json`.
pub(super) fn write_policy_verdict(
    r: &RunResult,
    policy: &crate::policy::Policy,
) -> Result<crate::policy::PolicyReport, RunError> {
    let verdict = policy.evaluate(&r.evidence, &r.contacts);
    write_json(&r.dir.join(POLICY_FILE), &verdict)?;
    Ok(verdict)
}

/// Writes `manifest.json` over every file of the run directory, and signs it when asked.
pub(super) fn write_manifest(
    p: &Prepared,
    r: &RunResult,
    sign: Option<&evidence::SigningKey>,
) -> Result<(), RunError> {
    let manifest = evidence::Manifest {
        format_version: evidence::MANIFEST_FORMAT_VERSION,
        tattle_version: env!("CARGO_PKG_VERSION").to_string(),
        created: utc_stamp(device::now_unix() as i64),
        scenario: evidence::ManifestScenario {
            name: p.scenario.name.clone(),
            file: p.redactor.clean(&p.scenario.path.display().to_string()),
            sha256: p.scenario.sha256.clone(),
        },
        device: p.identity.redacted(&p.redactor).into(),
        firmware: r.outcome.firmware.clone(),
        clock: r.clock.clone(),
        capture_source: r.capture_source.clone(),
        files: Vec::new(),
    };
    evidence::write_manifest(&r.dir, manifest)?;
    if let Some(key) = sign {
        evidence::sign_manifest(&r.dir, key)?;
    }
    Ok(())
}

/// The verdict of a differential series, in the series' own directory.
pub(super) const DIFFERENTIAL_FILE: &str = "differential.json";

/// Writes `differential.json` (mode 0600) into `dir`.
pub(super) fn write_differential(
    dir: &Path,
    document: &impl serde::Serialize,
) -> Result<PathBuf, RunError> {
    let path = dir.join(DIFFERENTIAL_FILE);
    write_json(&path, document)?;
    Ok(path)
}

fn write_json(path: &Path, document: &impl serde::Serialize) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(document).unwrap_or_default();
    write_private(path, &text)
}

/// Creates `ROOT/<scenario>@<firmware>-<UTC time>-<n>` with mode 0700 (the capture holds personal data).
pub(super) fn create_run_dir(
    root: &Path,
    scenario: &str,
    firmware: &str,
) -> Result<PathBuf, RunError> {
    let err = |path: &Path, source| RunError::RunDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(root).map_err(|e| err(root, e))?;
    let stamp = utc_stamp(device::now_unix() as i64);
    let name = snapshot::name(scenario, firmware);
    for n in 0..1000 {
        let path = root.join(format!("{name}-{stamp}-{n}"));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&path) {
            Ok(()) => {
                // The umask may have removed bits but never adds any; set exactly 0700 anyway.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| err(&path, e))?;
                }
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(&path, e)),
        }
    }
    Err(err(
        root,
        std::io::Error::other("too many runs in the same second"),
    ))
}

fn write_private(path: &Path, text: &str) -> Result<(), RunError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| RunError::RunDir {
            path: path.to_path_buf(),
            source,
        })
}

/// `20261125T070000Z` from Unix seconds (UTC; the calendar is the `time` crate's).
fn utc_stamp(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_795_590_000), "20261125T070000Z");
        // A leap day, and the last second of a year.
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_767_225_599), "20251231T235959Z");
    }

    #[test]
    fn run_dirs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let a = create_run_dir(root.path(), "s", "fw").unwrap();
        let b = create_run_dir(root.path(), "s", "fw").unwrap();
        assert_ne!(a, b);
        assert!(
            a.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("s@fw-")
        );
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        write_private(&a.join("f"), "x").unwrap();
        let mode = std::fs::metadata(a.join("f")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
