//! The run directory: `ROOT/<scenario>@<firmware>-<UTC time>-<n>`, mode 0700, and its files, mode
//! 0600: `run.json`, `evidence.json`, `outcome.snap`, `flows.json`, and the reports rendered from
//! them (`report.txt`, `report.md`, `report.html`, `junit.xml`, `flows.har`, `capture.pcapng`;
//! docs/reports.md) (the capture task writes `capture.pcap`), `policy.json` with `--policy`, and
//! last `manifest.json` (`evidence`) with its signature under `--sign`. A differential series'
//! verdict, `differential.json`, gets a directory of its own (`<scenario>-differential@…`).
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
    self, RunFormat,
    json::{
        CaptureOut, EvidenceRecord, FLOWS_FORMAT_VERSION, FlowOut, FlowsRecord, RUN_FORMAT_VERSION,
        RunRecord,
    },
    run_dir::{self, RunView},
};
use crate::snapshot;

/// The capture's file name in a run directory.
pub(super) const CAPTURE_FILE: &str = "capture.pcap";
const RUN_RECORD_FILE: &str = "run.json";
/// A policy's verdict on the run (`--policy`).
pub(crate) const POLICY_FILE: &str = crate::report::run_dir::POLICY_FILE;

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
    )?;
    write_flows(r)?;
    // The reports are made from the files just written, as `tattle report` makes them later: a
    // report that fails is logged, never the run's failure (its facts are on disk already).
    if let Err(e) = write_reports(&r.dir) {
        tracing::warn!("{}: the reports could not be written: {e}", r.dir.display());
    }
    Ok(())
}

/// Whether `path` starts with pcapng's Section Header Block (whatever its name says: PCAPdroid's
/// pcapng stream is kept as `capture.pcap`).
fn is_pcapng(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == [0x0a, 0x0d, 0x0d, 0x0a])
}

/// `flows.json`: every flow with its Community ID, and the HTTP exchanges tshark reads from the
/// capture, redacted by the run's redactor (the last moment that knows the values).
fn write_flows(r: &RunResult) -> Result<(), RunError> {
    let keylog = Some(r.dir.join(crate::capture::keylog::RUN_DIR_FILE)).filter(|k| k.is_file());
    // tshark decrypts with the run's key log, and by itself with the secrets blocks a pcapng
    // capture carries (PCAPdroid's pcapng, `editcap --inject-secrets`): either makes TLS readable.
    let tls_readable = keylog.is_some() || is_pcapng(&r.capture.path);
    let readable = |f: &crate::outcome::FlowItem| {
        f.protocol == "http" || (tls_readable && f.protocol == "tls")
    };
    let (http, http_note) = if r.flows.iter().any(readable) {
        match report::exchanges::read(&r.capture.path, keylog.as_deref(), &r.flows, &r.redactor) {
            Ok((http, note)) => (http, note),
            Err(why) => (Vec::new(), Some(r.redactor.clean(&why))),
        }
    } else {
        (Vec::new(), None)
    };
    let record = FlowsRecord {
        format_version: FLOWS_FORMAT_VERSION,
        flows: r.flows.iter().map(FlowOut::new).collect(),
        http,
        http_note,
    };
    write_json(&r.dir.join(run_dir::FLOWS_FILE), &record)
}

/// Renders every report of the run directory `dir` from its files, and writes each (0600). The
/// errors name the file; `tattle report RUN_DIR` calls this too.
pub fn write_reports(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context as _;
    let view = RunView::load(dir)?;
    let mut written = Vec::new();
    for format in RunFormat::TEXT_FORMATS {
        let path = dir.join(format.file_name());
        write_private(&path, &report::render_run(&view, format))?;
        written.push(path);
    }
    if let Some(capture) = view.capture_path() {
        let path = dir.join(RunFormat::Pcapng.file_name());
        // A `file:` source may have given a pcapng already: never overwrite the capture itself.
        if path != capture {
            let mut out = std::io::BufWriter::new(open_private(&path)?);
            report::pcapng::write_run(&view, &mut out)
                .with_context(|| format!("{}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
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
pub const DIFFERENTIAL_FILE: &str = "differential.json";

/// Writes `differential.json` (mode 0600) into `dir`.
pub(super) fn write_differential(
    dir: &Path,
    document: &impl serde::Serialize,
) -> Result<PathBuf, RunError> {
    let path = dir.join(DIFFERENTIAL_FILE);
    write_json(&path, document)?;
    Ok(path)
}

/// The series' own `report.txt`, `report.md` and `report.html` (0600) in `series_dir`: the first
/// run's reports with the series' outcome, whose steps carry the size correlations. A first run
/// whose files cannot be read back gives a note instead (its own reports are complete).
pub(super) fn write_series_reports(
    series_dir: &Path,
    first_run: &Path,
    outcome: &crate::outcome::Outcome,
) -> Result<Option<String>, RunError> {
    let mut view = match RunView::load(first_run) {
        Ok(view) => view,
        Err(e) => return Ok(Some(format!("the series' reports were not written: {e}"))),
    };
    view.outcome = outcome.clone();
    for format in [RunFormat::Text, RunFormat::Markdown, RunFormat::Html] {
        write_private(
            &series_dir.join(format.file_name()),
            &report::render_run(&view, format),
        )?;
    }
    Ok(None)
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
    open_private(path)?
        .write_all(text.as_bytes())
        .map_err(|source| RunError::RunDir {
            path: path.to_path_buf(),
            source,
        })
}

/// Creates (or truncates) `path` with mode 0600.
fn open_private(path: &Path) -> Result<std::fs::File, RunError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|source| RunError::RunDir {
        path: path.to_path_buf(),
        source,
    })?;
    // An existing file keeps its mode through `open`: make it private as a new one would be.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    Ok(file)
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
    fn a_pcapng_is_told_by_its_first_block_not_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let named_pcap = dir.path().join("capture.pcap");
        std::fs::write(&named_pcap, [0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0]).unwrap();
        assert!(
            is_pcapng(&named_pcap),
            "PCAPdroid's pcapng stream, kept as capture.pcap"
        );
        let pcap = dir.path().join("p");
        std::fs::write(&pcap, tattle_analysis::pcap::to_vec(101, &[&[0x45; 20]])).unwrap();
        assert!(!is_pcapng(&pcap));
        assert!(!is_pcapng(&dir.path().join("absent")));
        std::fs::write(&pcap, [0x0a]).unwrap();
        assert!(!is_pcapng(&pcap), "too short");
    }

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
