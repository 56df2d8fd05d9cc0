//! The runner: one scenario on one device, with a concurrent capture analysed live, into a private
//! run directory.
//!
//! Owns the order of a run, each phase a short function: `prepare` (identity and identifiers, clock
//! offset, run directory), `start_capture`, `run_steps` (each step in its time window, the live
//! analysis fed as packets arrive, `live`), `stop_capture`, the end of the analysis, `build_result`
//! (outcome, evidence, traffic) and the run directory's files (`files`). When the device goes away
//! mid-run it stops stepping; what was captured is already analysed, and is recorded with what
//! happened.
//!
//! Must not touch: the terminal (progress and live findings go through `RunObserver`), exit codes,
//! snapshot comparison.

mod files;
mod live;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::{self, CaptureCounters, CaptureSummary, RunningCapture};
use crate::device::{self, Device, DeviceError, DeviceIdentity, FirmwareKey, MissingIdentifier};
use crate::outcome::{self, EvidenceItem, Outcome, StepTraffic, StepWindow};
use crate::scenario::{Scenario, Step, StepAction};
use live::LiveAnalysis;
use tattle_analysis::identifier::Identifier;
use tattle_analysis::{Analysis, Needles, Redactor};

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
}

/// Progress of a run, for a spinner on a terminal. Every method has a no-op default.
pub trait RunObserver: Send + Sync {
    fn capture_started(&self, _counters: Arc<CaptureCounters>) {}
    fn step_started(&self, _index: usize, _total: usize, _name: &str) {}
    /// The live analysis just found an identifier: one redacted line, `<imei> → HOST (LOCATION as
    /// ENCODING) in step 4 send-sms`, each line once per run. The host is the best known so far.
    fn live_finding(&self, _notice: &str) {}
    /// The capture stopped; the analysis ends the flows still open.
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
    /// Snapshot key override, `--firmware NAME` (default: the device's firmware key, made from its
    /// build fingerprint: `device::FirmwareKey`).
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

/// Everything a run produced. Raw identifier values stay in memory: in `identifiers`, `identity`
/// and `analysis`; every other text field is redacted.
pub struct RunResult {
    pub dir: PathBuf,
    pub identity: DeviceIdentity,
    /// The snapshot key (`outcome.firmware`), where it came from, and why it is not the
    /// fingerprint's when it is not (note redacted).
    pub firmware: FirmwareKey,
    pub outcome: Outcome,
    pub evidence: Vec<EvidenceItem>,
    /// What each step sent, readable and opaque (byte counts: not part of the outcome).
    pub traffic: Vec<StepTraffic>,
    pub capture: CaptureSummary,
    /// Identifiers the device would not give (reasons redacted).
    pub missing: Vec<MissingIdentifier>,
    /// What the live analysis learnt from the whole capture (equal to `analyze_file` on
    /// `capture.pcap`). Raw: show nothing of it but through `redactor`.
    pub analysis: Analysis,
    /// Set when the run stopped early: which step and why.
    pub interrupted: Option<String>,
    pub identifiers: Vec<Identifier>,
    /// The redactor of this run's identifiers: what shows anything of the run goes through it.
    pub redactor: Arc<Redactor>,
}

/// What a run knows before it captures: set up by `prepare`, read by every later phase.
struct Prepared {
    run_id: String,
    /// The scenario with `{run_id}` and canaries expanded.
    scenario: Scenario,
    identity: DeviceIdentity,
    identifiers: Vec<Identifier>,
    /// Reasons redacted.
    missing: Vec<MissingIdentifier>,
    /// Its note redacted.
    firmware: FirmwareKey,
    clock_offset: f64,
    dir: PathBuf,
    needles: Needles,
    redactor: Arc<Redactor>,
}

/// What stepping did: each step's window, and why it stopped early, if it did.
#[derive(Default)]
struct Stepped {
    windows: Vec<StepWindow>,
    interrupted: Option<String>,
}

/// Runs `scenario` on `device`: the capture is analysed live, as it arrives, and whatever happens
/// after the capture started (a failed step, the device gone, Ctrl-C), what was captured is
/// analysed and recorded.
pub async fn run(
    scenario: &Scenario,
    device: &Device,
    options: &RunOptions,
    observer: &dyn RunObserver,
) -> Result<RunResult, RunError> {
    let prepared = prepare(scenario, device, options).await?;
    let (tee, chunks) = tokio::sync::mpsc::unbounded_channel();
    let capture = start_capture(&prepared, device, tee).await?;
    observer.capture_started(capture.counters());
    let mut live = LiveAnalysis::new(&prepared.needles, &prepared.redactor, observer, chunks);
    let mut stepped = run_steps(&prepared, device, options, &capture, &mut live, observer).await;
    let (summary, failure) =
        stop_capture(capture, options.capture_grace, &mut live, &prepared).await;
    append_reason(&mut stepped.interrupted, failure);
    observer.analysing();
    let analysis = live.finish().await;
    let result = build_result(&prepared, &stepped, summary, analysis);
    files::write_run_files(&prepared, &stepped.windows, &result)?;
    observer.finished();
    Ok(result)
}

/// Reads the device (identity, identifiers, clock offset), merges the user's identifiers and
/// creates the run directory.
async fn prepare(
    scenario: &Scenario,
    device: &Device,
    options: &RunOptions,
) -> Result<Prepared, RunError> {
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
    // One automaton of every form of every identifier, for the live analysis and the redactor.
    let needles = Needles::new(&identifiers);
    let redactor = Arc::new(Redactor::with_needles(&needles, &identifiers));
    for m in &mut missing {
        m.reason = redactor.clean(&m.reason);
    }
    let mut firmware = options
        .firmware
        .as_deref()
        .map(FirmwareKey::from_option)
        .unwrap_or_else(|| identity.firmware_key());
    firmware.note = firmware.note.map(|n| redactor.clean(&n));
    let clock_offset = device.clock_offset().await?;
    let dir = files::create_run_dir(&options.runs_root, &scenario.name, &firmware.key)?;
    Ok(Prepared {
        needles,
        run_id,
        scenario,
        identity,
        identifiers,
        missing,
        firmware,
        clock_offset,
        dir,
        redactor,
    })
}

/// Starts the capture into the run directory, teed to the live analysis; records why when it
/// cannot start.
async fn start_capture(
    p: &Prepared,
    device: &Device,
    tee: capture::Tee,
) -> Result<RunningCapture, RunError> {
    let path = p.dir.join(files::CAPTURE_FILE);
    capture::start_on_device(device.adb(), device::CAPTURE_COMMAND, &path, tee)
        .await
        .map_err(|e| {
            files::write_failure_record(p, &e.to_string());
            e.into()
        })
}

/// Runs the steps in order, analysing the capture while they run; stops at the first step that
/// fails, on Ctrl-C, or when the capture stream ends.
async fn run_steps(
    p: &Prepared,
    device: &Device,
    options: &RunOptions,
    capture: &RunningCapture,
    live: &mut LiveAnalysis<'_>,
    observer: &dyn RunObserver,
) -> Stepped {
    let mut cancel = options.cancel.clone();
    let mut stepped = Stepped::default();
    let total = p.scenario.steps.len();
    for (i, step) in p.scenario.steps.iter().enumerate() {
        let mut window = StepWindow {
            index: i + 1,
            name: step.action.name().to_string(),
            start: device::now_unix(),
            end: 0.0,
        };
        observer.step_started(window.index, total, &window.name);
        live.set_step(window.label());
        let done = tokio::select! {
            result = perform(device, step) => Some(result),
            () = cancelled(&mut cancel) => None,
            never = live.follow() => match never {},
        };
        window.end = device::now_unix();
        let why = interruption(&window, step.line, done, capture.has_ended(), &p.redactor);
        stepped.windows.push(window);
        if why.is_some() {
            stepped.interrupted = why;
            break;
        }
    }
    stepped
}

/// Does one step on the device; an action step then waits `settle` for the traffic it caused.
async fn perform(device: &Device, step: &Step) -> Result<(), DeviceError> {
    match &step.action {
        StepAction::FreshSetup => device.fresh_setup().await?,
        StepAction::Idle(d) => {
            // An idle step's window is its duration: no settle after it.
            tokio::time::sleep(*d).await;
            return Ok(());
        }
        StepAction::AddContact { name, phone } => device.add_contact(name, phone).await?,
        StepAction::SendSms { to, body } => device.send_sms(to, body).await?,
        StepAction::Shell {
            command,
            expect_exit,
        } => {
            device.shell_step(command, *expect_exit).await?;
        }
    }
    tokio::time::sleep(step.settle).await;
    Ok(())
}

/// Why the run stops after `window`'s step: it was cancelled (`done` is `None`), it failed, or the
/// capture stream ended. `None`: go on.
fn interruption(
    window: &StepWindow,
    line: usize,
    done: Option<Result<(), DeviceError>>,
    capture_ended: bool,
    redactor: &Redactor,
) -> Option<String> {
    let step = window.label();
    match done {
        None => Some(format!("stopped by the user during step {step}")),
        Some(Err(e)) => Some(format!(
            "step {step} (line {line}) failed: {}",
            redactor.clean(&e.to_string())
        )),
        Some(Ok(())) if capture_ended => Some(format!(
            "the capture stream ended during step {step}: the device went away or tcpdump stopped"
        )),
        Some(Ok(())) => None,
    }
}

/// Stops the capture after its grace time (analysing what arrives meanwhile). When it cannot be
/// completed, says why and falls back to what is on disk.
async fn stop_capture(
    capture: RunningCapture,
    grace: Duration,
    live: &mut LiveAnalysis<'_>,
    p: &Prepared,
) -> (CaptureSummary, Option<String>) {
    let stopped = tokio::select! {
        stopped = capture.stop(grace) => stopped,
        never = live.follow() => match never {},
    };
    match stopped {
        Ok(summary) => (summary, None),
        Err(e) => {
            let path = p.dir.join(files::CAPTURE_FILE);
            let note = format!(
                "the capture could not be completed: {}",
                p.redactor.clean(&e.to_string())
            );
            let summary = CaptureSummary {
                bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                path,
                packets: 0,
                ended_early: true,
            };
            (summary, Some(note))
        }
    }
}

/// `why; more` when both are there.
fn append_reason(why: &mut Option<String>, more: Option<String>) {
    if let Some(more) = more {
        *why = Some(match why.take() {
            Some(before) => format!("{before}; {more}"),
            None => more,
        });
    }
}

/// Places the analysis in the steps: the outcome, its evidence and the bytes per step.
fn build_result(
    p: &Prepared,
    stepped: &Stepped,
    mut capture: CaptureSummary,
    analysis: Analysis,
) -> RunResult {
    let windows = &stepped.windows;
    let (outcome, evidence) = outcome::build(
        &p.scenario.name,
        &p.identity,
        windows,
        p.clock_offset,
        &analysis,
        &p.redactor,
    );
    let traffic = outcome::traffic_by_step(windows, p.clock_offset, &analysis, &p.redactor);
    // The analysis read every frame the capture wrote: its count is exact.
    capture.packets = capture.packets.max(analysis.frames);
    RunResult {
        dir: p.dir.clone(),
        identity: p.identity.clone(),
        firmware: p.firmware.clone(),
        outcome: Outcome {
            firmware: p.firmware.key.clone(),
            ..outcome
        },
        evidence,
        traffic,
        capture,
        missing: p.missing.clone(),
        analysis,
        interrupted: stepped.interrupted.clone(),
        identifiers: p.identifiers.clone(),
        redactor: p.redactor.clone(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_differ() {
        assert_ne!(new_run_id(), {
            std::thread::sleep(Duration::from_millis(1));
            new_run_id()
        });
    }

    #[test]
    fn reasons_add_up() {
        let mut why = None;
        append_reason(&mut why, None);
        assert_eq!(why, None);
        append_reason(&mut why, Some("a".into()));
        append_reason(&mut why, Some("b".into()));
        assert_eq!(why.as_deref(), Some("a; b"));
    }
}
