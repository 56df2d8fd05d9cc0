//! The runner: one scenario on one device, with a concurrent capture, into a private run directory.
//!
//! Owns the order of a run — identity and identifiers, clock offset, capture start, steps with their
//! time windows, capture stop, analysis, outcome — and the run directory's files. When the device goes
//! away mid-run it stops stepping, keeps the capture taken so far, analyses it and says what happened.
//!
//! Must not touch: the terminal (progress goes through `RunObserver`), exit codes, snapshots.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::capture::{self, CaptureCounters, CaptureSummary};
use crate::device::{self, Device, DeviceError, DeviceIdentity, MissingIdentifier};
use crate::outcome::{self, EvidenceItem, Outcome, StepTraffic, StepWindow};
use crate::report;
use crate::scenario::{Scenario, StepAction};
use crate::snapshot;
use tattle_analysis::Redactor;
use tattle_analysis::identifier::Identifier;
use tattle_analysis::{self as analysis, Analysis, Damage};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading the device before the run: {0}")]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Capture(#[from] capture::CaptureError),
    #[error("run directory {path}: {source}")]
    RunDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("analysing the capture: {0}")]
    Analysis(#[from] analysis::AnalysisError),
}

/// Progress of a run, for a spinner on a terminal. Every method has a no-op default.
pub trait RunObserver: Send + Sync {
    fn capture_started(&self, _counters: Arc<CaptureCounters>) {}
    fn step_started(&self, _index: usize, _total: usize, _name: &str) {}
    fn analysing(&self) {}
    fn finished(&self) {}
}

/// An observer that shows nothing (piped output, tests).
pub struct Quiet;
impl RunObserver for Quiet {}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where run directories are created (each run gets its own, 0700).
    pub runs_root: PathBuf,
    /// Identifiers the user supplied (`--id imei=…`): they override what the device reports.
    pub extra_identifiers: Vec<Identifier>,
    /// Snapshot key override (default: the device's build display id).
    pub firmware: Option<String>,
    /// Time after the last step for in-flight packets to arrive before the capture stops.
    pub capture_grace: Duration,
    /// Set to true (Ctrl-C) to stop stepping: the run then ends like an interrupted one, keeping and
    /// analysing the capture taken so far.
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            runs_root: PathBuf::from("runs"),
            extra_identifiers: Vec::new(),
            firmware: None,
            capture_grace: Duration::from_millis(700),
            cancel: None,
        }
    }
}

/// Everything a run produced. The raw identifier values stay in `identifiers` (memory only).
pub struct RunResult {
    pub dir: PathBuf,
    pub identity: DeviceIdentity,
    pub outcome: Outcome,
    pub evidence: Vec<EvidenceItem>,
    /// What each step sent, readable and opaque (byte counts: not part of the outcome).
    pub traffic: Vec<StepTraffic>,
    pub capture: CaptureSummary,
    pub missing: Vec<MissingIdentifier>,
    pub damage: Vec<Damage>,
    /// Set when the run stopped early: which step and why.
    pub interrupted: Option<String>,
    pub identifiers: Vec<Identifier>,
}

/// What `run.json` records: the run's facts, kinds of identifiers but never their values.
#[derive(Serialize)]
struct RunRecord<'a> {
    scenario: &'a str,
    scenario_file: String,
    run_id: &'a str,
    device: &'a DeviceIdentity,
    firmware: &'a str,
    clock_offset_seconds: f64,
    identifiers_watched: Vec<&'a str>,
    identifiers_missing: Vec<(&'a str, &'a str)>,
    steps: &'a [StepWindow],
    capture: CaptureRecord<'a>,
    damage: Vec<String>,
    interrupted: Option<&'a str>,
}

#[derive(Serialize)]
struct CaptureRecord<'a> {
    file: &'a str,
    bytes: u64,
    packets: u64,
    ended_early: bool,
}

/// Runs `scenario` on `device`.
pub async fn run(
    scenario: &Scenario,
    device: &Device,
    options: &RunOptions,
    observer: &dyn RunObserver,
) -> Result<RunResult, RunError> {
    let run_id = new_run_id();
    let (scenario, canaries) = scenario.expand(&run_id);

    let identity = device.identity().await?;
    device.check_capture().await?;
    let (mut identifiers, mut missing) = device.identifiers(&identity).await?;
    // The user's values win over the device's for the same kind.
    for extra in &options.extra_identifiers {
        identifiers.retain(|i| i.kind != extra.kind);
        missing.retain(|m| m.kind != extra.kind);
        identifiers.push(extra.clone());
    }
    identifiers.extend(canaries);
    let firmware = options
        .firmware
        .as_deref()
        .map(device::sanitize_firmware_id)
        .unwrap_or_else(|| identity.firmware_id());
    let clock_offset = device.clock_offset().await?;

    let redactor = Redactor::new(&identifiers);
    let dir = create_run_dir(&options.runs_root, &scenario.name, &firmware)?;
    let capture_path = dir.join("capture.pcap");
    let capture = match capture::start_on_device(
        device.adb(),
        device::CAPTURE_COMMAND,
        &capture_path,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            // Leave a record of why the run directory holds no usable capture.
            let note = serde_json::json!({
                "scenario": scenario.name,
                "device": identity,
                "error": redactor.clean(&e.to_string()),
            });
            let _ = write_private(
                &dir.join("run.json"),
                &serde_json::to_string_pretty(&note).unwrap_or_default(),
            );
            return Err(e.into());
        }
    };
    observer.capture_started(capture.counters());

    let mut cancel = options.cancel.clone();
    let mut windows = Vec::new();
    let mut interrupted = None;
    let total = scenario.steps.len();
    for (i, step) in scenario.steps.iter().enumerate() {
        let index = i + 1;
        let name = step.action.name();
        observer.step_started(index, total, name);
        let start = device::now_unix();
        let action = async {
            let result = match &step.action {
                StepAction::FreshSetup => device.fresh_setup().await,
                StepAction::Idle(d) => {
                    tokio::time::sleep(*d).await;
                    Ok(())
                }
                StepAction::AddContact { name, phone } => device.add_contact(name, phone).await,
                StepAction::SendSms { to, body } => device.send_sms(to, body).await,
                StepAction::Shell {
                    command,
                    expect_exit,
                } => device.shell_step(command, *expect_exit).await.map(|_| ()),
            };
            if result.is_ok() && !matches!(step.action, StepAction::Idle(_)) {
                tokio::time::sleep(step.settle).await;
            }
            result
        };
        let outcome = tokio::select! {
            result = action => Some(result),
            () = cancelled(&mut cancel) => None,
        };
        windows.push(StepWindow {
            index,
            name: name.to_string(),
            start,
            end: device::now_unix(),
        });
        match outcome {
            None => {
                interrupted = Some(format!("stopped by the user during step {index} {name}"));
                break;
            }
            Some(Err(e)) => {
                interrupted = Some(format!(
                    "step {index} {name} (line {}) failed: {}",
                    step.line,
                    redactor.clean(&e.to_string())
                ));
                break;
            }
            Some(Ok(())) => {}
        }
        if capture.has_ended() {
            interrupted = Some(format!(
                "the capture stream ended during step {index} {name}: the device went away or \
                 tcpdump stopped"
            ));
            break;
        }
    }
    // Whatever happens from here on, the capture on disk is analysed and the run recorded.
    let summary = match capture.stop(options.capture_grace).await {
        Ok(summary) => summary,
        Err(e) => {
            let note = format!(
                "the capture could not be completed: {}",
                redactor.clean(&e.to_string())
            );
            interrupted = Some(match interrupted {
                Some(before) => format!("{before}; {note}"),
                None => note,
            });
            CaptureSummary {
                path: capture_path.clone(),
                bytes: std::fs::metadata(&capture_path)
                    .map(|m| m.len())
                    .unwrap_or(0),
                packets: 0,
                ended_early: true,
            }
        }
    };
    observer.analysing();

    let analysis = match analysis::analyze_file(&capture_path, &identifiers) {
        Ok(analysis) => analysis,
        Err(e) => Analysis {
            damage: vec![Damage {
                offset: Some(0),
                after_frame: 0,
                what: redactor.clean(&e.to_string()),
            }],
            ..Analysis::default()
        },
    };
    let (outcome, evidence) = outcome::build(
        &scenario.name,
        &identity,
        &windows,
        clock_offset,
        &analysis,
        &redactor,
    );
    let traffic = outcome::traffic_by_step(&windows, clock_offset, &analysis, &redactor);
    let outcome = Outcome {
        firmware: firmware.clone(),
        ..outcome
    };
    let result = RunResult {
        dir: dir.clone(),
        identity,
        outcome,
        evidence,
        traffic,
        capture: summary,
        missing,
        damage: analysis.damage.clone(),
        interrupted,
        identifiers,
    };
    write_run_files(
        &result,
        &scenario,
        &run_id,
        &windows,
        clock_offset,
        &analysis,
    )?;
    observer.finished();
    Ok(result)
}

fn write_run_files(
    r: &RunResult,
    scenario: &Scenario,
    run_id: &str,
    windows: &[StepWindow],
    clock_offset: f64,
    analysis: &Analysis,
) -> Result<(), RunError> {
    let record = RunRecord {
        scenario: &scenario.name,
        scenario_file: scenario.path.display().to_string(),
        run_id,
        device: &r.identity,
        firmware: &r.outcome.firmware,
        clock_offset_seconds: clock_offset,
        identifiers_watched: r.identifiers.iter().map(|i| i.kind.as_str()).collect(),
        identifiers_missing: r
            .missing
            .iter()
            .map(|m| (m.kind.as_str(), m.reason.as_str()))
            .collect(),
        steps: windows,
        capture: CaptureRecord {
            file: "capture.pcap",
            bytes: r.capture.bytes,
            packets: analysis.frames.max(r.capture.packets),
            ended_early: r.capture.ended_early,
        },
        damage: r
            .damage
            .iter()
            .map(|d| format!("after frame {}: {}", d.after_frame, d.what))
            .collect(),
        interrupted: r.interrupted.as_deref(),
    };
    let json = serde_json::to_string_pretty(&record).unwrap_or_default();
    write_private(
        &r.dir.join("run.json"),
        // serde_json escapes control characters itself; only the values need redacting.
        &Redactor::new(&r.identifiers).redact(&json),
    )?;
    let evidence = serde_json::to_string_pretty(&serde_json::json!({
        "findings": r.evidence,
        "traffic": r.traffic,
    }))
    .unwrap_or_default();
    write_private(&r.dir.join("evidence.json"), &evidence)?;
    let body = snapshot::render(&r.outcome);
    let snap = format!(
        "---\nsource: tattle\nexpression: {} on {}\n---\n{body}",
        r.outcome.scenario, r.outcome.firmware
    );
    write_private(&r.dir.join("outcome.snap"), &snap)?;
    write_private(
        &r.dir.join("report.txt"),
        &report::render_outcome(&r.outcome, &r.traffic),
    )?;
    Ok(())
}

/// Resolves when the cancel flag turns true; never when there is none.
async fn cancelled(cancel: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    match cancel {
        Some(rx) => {
            if rx.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Creates `ROOT/<scenario>@<firmware>-<UTC time>-<n>` with mode 0700 (the capture holds personal data).
fn create_run_dir(root: &Path, scenario: &str, firmware: &str) -> Result<PathBuf, RunError> {
    let err = |path: &Path, source| RunError::RunDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(root).map_err(|e| err(root, e))?;
    let stamp = utc_stamp(device::now_unix() as i64);
    for n in 0..1000 {
        let path = root.join(format!("{scenario}@{firmware}-{stamp}-{n}"));
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

/// A short id unique to this run, planted in canaries (`tattle canary {run_id}`).
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    // splitmix64: spreads the bits so consecutive runs differ in every digit.
    let mut z = mixed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:08x}", (z ^ (z >> 31)) as u32)
}

/// `20261125T070000Z` from Unix seconds (civil-from-days, proleptic Gregorian).
fn utc_stamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_795_590_000), "20261125T070000Z");
    }

    #[test]
    fn run_dirs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let a = create_run_dir(root.path(), "s", "fw").unwrap();
        let b = create_run_dir(root.path(), "s", "fw").unwrap();
        assert_ne!(a, b);
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        write_private(&a.join("f"), "x").unwrap();
        let mode = std::fs::metadata(a.join("f")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(new_run_id(), {
            std::thread::sleep(Duration::from_millis(1));
            new_run_id()
        });
    }
}
