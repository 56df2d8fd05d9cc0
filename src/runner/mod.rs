//! The runner: one scenario on one device, with a concurrent capture analysed live, into a private
//! run directory.
//!
//! Owns the order of a run, each phase a short function: `prepare` (identity, the `preflight` of
//! every step against the device, the capture source's own checks — tcpdump found or pushed, a
//! `file:` path that can be —, identifiers, the device's clock, run directory), `start_capture`
//! (whichever source `RunOptions::capture` names; stdin is read from the moment `run` starts),
//! `run_steps` (each step in its time window, the live analysis fed as packets arrive, `live`;
//! methods and alternatives tried in order, `perform`), `stop_capture` (the capture's segments
//! across reboots merged, `chain`; the device's clock read again), the end of the analysis,
//! `build_result` (outcome, evidence, traffic; packets placed by host time through the clock map)
//! and the run directory's files (`files`). When the device goes away mid-run it stops
//! stepping; what was captured is already analysed, and is recorded with what happened.
//!
//! Must not touch: the terminal (progress and live findings go through `RunObserver`), exit codes,
//! snapshot comparison.

mod chain;
mod console;
mod files;
mod live;
mod preflight;
mod repeat;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::capture::iface::PhoneAddress;
use crate::capture::keylog::{self, KeylogSource};
use crate::capture::tcpdump::{self, TcpdumpPlan};
use crate::capture::{
    self, CaptureCounters, CaptureSource, CaptureSummary, RunningCapture, SourceRecord,
};
use crate::device::clock::{ClockMap, ClockReading, ClockRecord};
use crate::device::ui::{self, Attempt, UiError};
use crate::device::{self, Device, DeviceError, DeviceIdentity, FirmwareKey, MissingIdentifier};
use crate::outcome::{self, EvidenceItem, Outcome, StepTraffic, StepWindow};
use crate::scenario::{ContactVia, Launch, Scenario, SmsVia, Step, StepAction};
use chain::CaptureChain;
/// A differential series' verdict file in its directory (`tattle diff` reads its outcome).
pub use files::DIFFERENTIAL_FILE;
pub use files::write_reports;
use live::LiveAnalysis;
pub use preflight::PreflightError;
pub use repeat::{DifferentialError, DifferentialSeries, run_differential};
use tattle_analysis::identifier::Identifier;
use tattle_analysis::{Analysis, Needles, Redactor};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading the device before the run: {0}")]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Capture(#[from] capture::CaptureError),
    /// A step needs what the device lacks: nothing was captured.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error("run directory {path}: {source}")]
    RunDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The manifest could not be written or signed.
    #[error(transparent)]
    Evidence(#[from] crate::evidence::EvidenceError),
}

/// Progress of a run, for a spinner on a terminal. Every method has a no-op default.
pub trait RunObserver: Send + Sync {
    /// A capture started; called again for each new segment after a reboot (count them together).
    fn capture_started(&self, _counters: Arc<CaptureCounters>) {}
    fn step_started(&self, _index: usize, _total: usize, _name: &str) {}
    /// The live analysis just found an identifier: one redacted line, `<imei> → HOST (LOCATION as
    /// ENCODING) in step 4 send-sms`, each line once per run. The host is the best known so far.
    /// Findings only a run's key logs showed (the keyed second pass, after the capture stopped)
    /// come last, before `finished`, marked: `…, found with the key log (decrypted TLS 1.3 …)`.
    fn live_finding(&self, _notice: &str) {}
    /// Something the run decided that the scenario did not say: a method or an alternative
    /// skipped (before the capture) or used (during it). Redacted, one line.
    fn note(&self, _note: &str) {}
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
    /// Where the capture comes from (`--capture`; default: tcpdump on the device). `file:-` reads
    /// the process's stdin from the moment `run` is called.
    pub capture: CaptureSource,
    /// A static tcpdump to push and run (`--tcpdump-binary`; the `device` source only).
    pub tcpdump_binary: Option<PathBuf>,
    /// How long `file:-` waits for the capturer's first bytes before the first step.
    pub stdin_timeout: Duration,
    /// The phone's MAC or IP on the network, for `iface:` (`--phone-address`; default: the Wi-Fi
    /// MAC the device reports, else its wlan0 address).
    pub phone_address: Option<PhoneAddress>,
    /// The emulator's console port, for `emulator` when the serial is not `emulator-N`
    /// (`--console-port`).
    pub console_port: Option<u16>,
    /// PCAPdroid's API key, for `pcapdroid` (without it every start and stop asks on the phone).
    pub pcapdroid_api_key: Option<crate::pcapdroid::ApiKey>,
    /// How long a `pcapdroid` start waits for the user to answer a window on the phone; `None`:
    /// such a window fails the run at once with the fix.
    pub wait_for_phone: Option<Duration>,
    /// TLS key logs to collect when the capture stops (`--keylog`, plus the scenario's `keylog:`),
    /// for the analysis to decrypt the capture with.
    pub keylogs: Vec<KeylogSource>,
    /// A policy to judge the run by once its outcome is built (`--policy`): its verdict is
    /// `policy.json` in the run directory and [`RunResult::policy`].
    pub policy: Option<Arc<crate::policy::Policy>>,
    /// Signs the run directory's manifest (`--sign KEY`): `manifest.json.minisig`.
    pub sign: Option<Arc<crate::evidence::SigningKey>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            runs_root: PathBuf::from("runs"),
            extra_identifiers: Vec::new(),
            firmware: None,
            capture_grace: Duration::from_millis(700),
            cancel: None,
            capture: CaptureSource::Device,
            tcpdump_binary: None,
            stdin_timeout: Duration::from_secs(30),
            phone_address: None,
            console_port: None,
            pcapdroid_api_key: None,
            wait_for_phone: None,
            keylogs: Vec::new(),
            policy: None,
            sign: None,
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
    /// Every flow with its step, redacted (the run directory's `flows.json`).
    pub flows: Vec<outcome::FlowItem>,
    pub capture: CaptureSummary,
    /// Which source captured, and how (`device`: which tcpdump, as which user).
    pub capture_source: SourceRecord,
    /// The device's clock at the start and the end, and whose clock the capture's timestamps are on.
    pub clock: ClockRecord,
    /// Identifiers the device would not give (reasons redacted).
    pub missing: Vec<MissingIdentifier>,
    /// What the live analysis learnt from the whole capture (equal to `analyze_file` on
    /// `capture.pcap`). Raw: show nothing of it but through `redactor`.
    pub analysis: Analysis,
    /// Set when the run stopped early: which step and why.
    pub interrupted: Option<String>,
    /// What the run decided that the scenario did not say (redacted): methods and alternatives
    /// skipped by the preflight or used by a step.
    pub notes: Vec<String>,
    pub identifiers: Vec<Identifier>,
    /// The redactor of this run's identifiers: what shows anything of the run goes through it.
    pub redactor: Arc<Redactor>,
    /// Each host contacted per step and protocol, with its first frame (`evidence.json`'s
    /// `contacts`: what policies' host rules name).
    pub contacts: Vec<crate::outcome::ContactItem>,
    /// The policy's verdict, when the run was given one.
    pub policy: Option<crate::policy::PolicyReport>,
    /// Its TLS flows by step, host and size, for a differential series (`differential`).
    pub encrypted_flows: Vec<crate::differential::EncryptedFlow>,
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
    /// The offset applied at the start (device clock minus host clock; 0 on the host's clock).
    clock_offset: f64,
    clock_start: ClockReading,
    /// How the capture is taken.
    capture: CapturePlan,
    dir: PathBuf,
    needles: Needles,
    redactor: Arc<Redactor>,
    /// What the preflight decided for the steps.
    plan: preflight::Plan,
}

/// What stepping did: each step's window, and why it stopped early, if it did.
#[derive(Default)]
struct Stepped {
    windows: Vec<StepWindow>,
    interrupted: Option<String>,
    /// Redacted notes from the steps (which method or alternative did it).
    notes: Vec<String>,
}

/// How the run's capture is taken, decided before it starts.
enum CapturePlan {
    Device(TcpdumpPlan),
    File(PathBuf),
    Stdin(Option<capture::StdinFeed>),
    /// The host's interface, and the phone's address on it (found once the identifiers are read).
    Iface {
        name: String,
        phone: Option<PhoneAddress>,
    },
    /// The emulator's console, connected before the run.
    Emulator(capture::EmulatorCapture),
    /// PCAPdroid on the phone, with the options of its start.
    Pcapdroid(crate::pcapdroid::Options),
}

impl CapturePlan {
    /// Whether the capture's timestamps are the device's (tcpdump or PCAPdroid on the phone).
    fn device_clock(&self) -> bool {
        matches!(self, CapturePlan::Device(_) | CapturePlan::Pcapdroid(_))
    }
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
    // Read from now on: a capturer piping in is not held up while the device is read.
    let feed = matches!(options.capture, CaptureSource::Stdin)
        .then(|| capture::StdinFeed::spawn(std::io::stdin()));
    let mut prepared = prepare(scenario, device, options, feed).await?;
    for note in &prepared.plan.notes {
        observer.note(note);
    }
    let (tee, chunks) = tokio::sync::mpsc::unbounded_channel();
    let first = start_capture(&mut prepared, device, options, tee.clone(), observer).await?;
    observer.capture_started(first.counters());
    let device_plan = match &prepared.capture {
        CapturePlan::Device(plan) => Some(plan.clone()),
        _ => None,
    };
    let mut capture = CaptureChain::new(
        first,
        prepared.dir.join(files::CAPTURE_FILE),
        tee,
        device_plan,
    );
    let mut live = LiveAnalysis::new(&prepared.needles, &prepared.redactor, observer, chunks);
    let mut stepped = run_steps(
        &prepared,
        device,
        options,
        &mut capture,
        &mut live,
        observer,
    )
    .await;
    let grace = match options.capture {
        CaptureSource::File(_) => options.capture_grace.max(capture::FILE_SETTLE),
        _ => options.capture_grace,
    };
    let source = source_record(capture.plan(), &prepared);
    if let CapturePlan::Emulator(console) = &mut prepared.capture {
        // The emulator flushes and closes its file on `stop`: before tattle copies it.
        tokio::time::sleep(grace).await;
        let failure = console.stop().await.map(|w| prepared.redactor.clean(&w));
        append_reason(&mut stepped.interrupted, failure);
    }
    let (summary, failure) = stop_capture(capture, grace, &mut live, &prepared).await;
    append_reason(&mut stepped.interrupted, failure);
    if let CapturePlan::Emulator(console) = &prepared.capture
        && summary.bytes > 0
    {
        console.remove_file();
    }
    let mut clock_end = match prepared.capture {
        CapturePlan::Device(_) | CapturePlan::Pcapdroid(_) => end_clock(device).await,
        _ => prepared.clock_start.clone(),
    };
    clock_end.unmeasured = clock_end.unmeasured.map(|w| prepared.redactor.clean(&w));
    // Every secret of the run is written by now: the key logs are read after the capture stops.
    let mut keylogs = options.keylogs.clone();
    keylogs.extend(prepared.scenario.keylog_sources());
    if let CapturePlan::Pcapdroid(o) = &prepared.capture
        && let Some(name) = &o.tls_keylog_name
    {
        keylogs.push(KeylogSource::Pcapdroid(format!(
            "{}/{name}",
            crate::pcapdroid::KEYLOG_DIR
        )));
    }
    let keys = keylog::collect(&keylogs, device.adb(), &prepared.dir).await;
    let mut key_notes = keys.notes;
    observer.analysing();
    let mut analysis = live.finish().await;
    // What the live pass announced, to announce what only the keys showed once the steps are known.
    let mut keyed_only: Option<Vec<usize>> = None;
    if !keys.text.is_empty() && summary.bytes > 0 {
        // The live pass ran before the keys existed: the outcome comes from a second pass over the
        // kept capture with them (a run's capture is small; the engine reads it in moments).
        let (keyed, note) = keyed_analysis(&summary.path, &prepared.needles, keys.text).await;
        key_notes.push(note);
        match keyed {
            // The kept file can hold less than the live pass saw (a segment after a reboot that
            // could not be merged into it): then the live analysis stands.
            Some(keyed) if keyed.frames < analysis.frames => key_notes.push(format!(
                "key logs: the kept capture holds {} of the {} frames analysed live; the outcome \
                 is the live analysis, without decryption",
                keyed.frames, analysis.frames
            )),
            Some(keyed) => {
                keyed_only = Some(live::found_only_in(&keyed, &analysis));
                analysis = keyed;
            }
            None => {}
        }
    }
    for note in key_notes {
        let note = prepared.redactor.clean(&note);
        observer.note(&note);
        stepped.notes.push(note);
    }
    let mut result = build_result(&prepared, &stepped, summary, analysis, source, clock_end);
    for notice in live::keyed_notices(&result.evidence, keyed_only.as_deref().unwrap_or_default()) {
        observer.live_finding(&notice);
    }
    // The verdict first: the reports (JUnit's case per rule) are made from the run's files.
    if let Some(policy) = &options.policy {
        result.policy = Some(files::write_policy_verdict(&result, policy)?);
    }
    files::write_run_files(&prepared, &stepped.windows, &result)?;
    // Last: the manifest lists every file the run wrote.
    files::write_manifest(&prepared, &result, options.sign.as_deref())?;
    observer.finished();
    Ok(result)
}

/// The analysis of the kept capture decrypted with the run's key logs, and a note of what the keys
/// gave (secrets, malformed lines, TLS flows decrypted or not). `None` (the live analysis stands) when
/// the capture cannot be read again.
async fn keyed_analysis(
    capture: &Path,
    needles: &Needles,
    key_text: Vec<u8>,
) -> (Option<Analysis>, String) {
    let capture = capture.to_path_buf();
    let needles = needles.clone();
    let pass = tokio::task::spawn_blocking(move || {
        let mut log = tattle_analysis::keylog::KeyLog::new();
        let stats = log.add_text(&key_text);
        let file = std::fs::File::open(&capture)?;
        let mut analyzer = tattle_analysis::Analyzer::with_needles(&needles, Analysis::default())
            .with_keys(&tattle_analysis::Keys::new(log));
        analyzer
            .read_all(std::io::BufReader::new(file))
            .map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>((analyzer.finish(), stats))
    })
    .await;
    match pass {
        Ok(Ok((analysis, stats))) => {
            let note = keys_note(&analysis, &stats);
            (Some(analysis), note)
        }
        Ok(Err(e)) => (
            None,
            format!(
                "key logs: the capture could not be read again to decrypt it ({e}); TLS stays opaque"
            ),
        ),
        Err(e) => (
            None,
            format!("key logs: the decrypting pass failed ({e}); TLS stays opaque"),
        ),
    }
}

/// `key logs: 12 secrets (1 malformed line skipped, first: line 7); TLS flows: 4 decrypted, 1 no key`.
fn keys_note(analysis: &Analysis, stats: &tattle_analysis::keylog::KeyLogStats) -> String {
    use tattle_analysis::Decryption;
    let mut note = format!("key logs: {} secrets", stats.secrets);
    if stats.malformed > 0 {
        // Lines are counted in the run's joined key log, not in any one source: no line number.
        note.push_str(&format!(" ({} malformed line(s) skipped)", stats.malformed));
    }
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for tls in analysis.flows.iter().filter_map(|f| f.tls.as_ref()) {
        let what = match tls.decryption {
            Decryption::Decrypted => "decrypted",
            Decryption::Partial => "partly decrypted",
            Decryption::NoKey => "no key",
            Decryption::KeysDoNotMatch { .. } => "keys do not match",
            _ => "not decryptable",
        };
        *counts.entry(what).or_default() += 1;
    }
    if counts.is_empty() {
        note.push_str("; no TLS flow in the capture");
    } else {
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        note.push_str(&format!("; TLS flows: {}", parts.join(", ")));
    }
    note
}

/// Reads the device (identity, identifiers, clock offset), merges the user's identifiers and
/// creates the run directory.
async fn prepare(
    scenario: &Scenario,
    device: &Device,
    options: &RunOptions,
    feed: Option<capture::StdinFeed>,
) -> Result<Prepared, RunError> {
    let run_id = new_run_id();
    let (mut scenario, canaries) = scenario.expand(&run_id);
    let identity = device.identity().await?;
    let mut plan = preflight::check(&mut scenario, device, &identity).await?;
    // After the steps' preflight: a binary is pushed only for a scenario that can run.
    let mut source_notes = Vec::new();
    let capture_plan = match &options.capture {
        CaptureSource::Device => CapturePlan::Device(
            tcpdump::prepare(device, &identity, options.tcpdump_binary.as_deref()).await?,
        ),
        CaptureSource::File(path) => {
            source_notes.extend(capture::check_file_source(path)?);
            CapturePlan::File(path.clone())
        }
        CaptureSource::Stdin => CapturePlan::Stdin(feed),
        CaptureSource::Iface(name) => {
            capture::check_iface(name)?;
            CapturePlan::Iface {
                name: name.clone(),
                phone: options.phone_address.clone(),
            }
        }
        CaptureSource::Emulator => CapturePlan::Emulator(
            capture::EmulatorCapture::connect(device.serial(), options.console_port).await?,
        ),
        CaptureSource::Pcapdroid(mode) => {
            if let Some(step) = scenario
                .steps
                .iter()
                .find(|s| matches!(s.action, StepAction::Reboot { .. }))
            {
                return Err(capture::CaptureError::PcapdroidReboot { line: step.line }.into());
            }
            // Checked before the run: installed, and new enough for the TCP exporter.
            let version = match crate::pcapdroid::installed_version(device.adb())
                .await
                .map_err(capture::CaptureError::from)?
            {
                None => {
                    return Err(capture::CaptureError::from(
                        crate::pcapdroid::PcapdroidError::NotInstalled,
                    )
                    .into());
                }
                Some(v) if v.code < crate::pcapdroid::MIN_VERSION_CODE => {
                    return Err(capture::CaptureError::from(
                        crate::pcapdroid::PcapdroidError::TooOld(v),
                    )
                    .into());
                }
                Some(v) => v,
            };
            // TLS decryption: VPN mode, 1.8.8+, the mitm add-on; the key log copied under a name
            // of this run, pulled when the capture stops.
            let tls_keylog_name = if mode.tls {
                let addon = crate::pcapdroid::check_tls(device.adb(), &version, mode.root)
                    .await
                    .map_err(capture::CaptureError::from)?;
                source_notes.push(format!(
                    "PCAPdroid {} decrypts TLS with its mitm add-on {}: every TCP connection goes \
                     through the add-on (apps that pin their certificates fail to connect meanwhile)",
                    version.name, addon.name
                ));
                Some(format!("tattle-{run_id}.keylog"))
            } else {
                None
            };
            if mode.pcapng {
                source_notes.push(
                    "PCAPdroid was asked for pcapng, a paid feature: without its licence 1.9.1 sends \
                     pcap (its TLS keys then come through the key log file)"
                        .to_string(),
                );
            }
            CapturePlan::Pcapdroid(crate::pcapdroid::Options {
                api_key: options.pcapdroid_api_key.clone(),
                wait_for_user: options.wait_for_phone,
                root: mode.root,
                pcapng: mode.pcapng,
                tls_keylog_name,
                ..Default::default()
            })
        }
    };
    plan.notes.extend(source_notes);
    let (mut identifiers, mut missing) = device.identifiers(&identity).await?;
    let mut capture_plan = capture_plan;
    if let CapturePlan::Iface { name, phone } = &mut capture_plan
        && phone.is_none()
    {
        *phone = Some(
            phone_address(device, &identifiers)
                .await
                .ok_or_else(|| capture::CaptureError::NoPhoneAddress(name.clone()))?,
        );
    }
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
    for n in &mut plan.notes {
        *n = redactor.clean(n);
    }
    let mut firmware = options
        .firmware
        .as_deref()
        .map(FirmwareKey::from_option)
        .unwrap_or_else(|| identity.firmware_key());
    firmware.note = firmware.note.map(|n| redactor.clean(&n));
    let mut clock_start = match capture_plan {
        CapturePlan::Device(_) | CapturePlan::Pcapdroid(_) => device.read_clock().await,
        _ => ClockReading::unmeasured(HOST_CLOCK),
    };
    // The reason may quote what the device printed.
    clock_start.unmeasured = clock_start.unmeasured.map(|w| redactor.clean(&w));
    let clock_offset = clock_start.applied();
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
        clock_start,
        capture: capture_plan,
        dir,
        redactor,
        plan,
    })
}

/// Which source captured, in words; a `file:` path through the redactor.
fn source_record(plan: Option<&TcpdumpPlan>, p: &Prepared) -> SourceRecord {
    let plan = plan.or(match &p.capture {
        CapturePlan::Device(plan) => Some(plan),
        _ => None,
    });
    match (&p.capture, plan) {
        (_, Some(plan)) => SourceRecord {
            source: "device".into(),
            detail: plan.describe(),
        },
        (CapturePlan::File(path), _) => {
            let shown = p.redactor.clean(&path.display().to_string());
            SourceRecord {
                source: format!("file:{shown}"),
                detail: format!(
                    "a capture file written by another capturer during the run ({shown}), copied \
                     when the run ended; timestamps on the capturer's clock"
                ),
            }
        }
        (CapturePlan::Pcapdroid(o), _) => SourceRecord {
            source: "pcapdroid".into(),
            detail: format!(
                "PCAPdroid on the phone ({}): its TCP exporter through `adb reverse`, {}{}; \
                 timestamps on the device's clock",
                if o.root {
                    "as root"
                } else {
                    "VPN mode, no root"
                },
                if o.api_key.is_some() {
                    "controlled with its API key"
                } else {
                    "each start and stop allowed on the phone"
                },
                if o.tls_keylog_name.is_some() {
                    ", TLS decrypted by its mitm add-on (its key log pulled after the stop)"
                } else {
                    ""
                }
            ),
        },
        (CapturePlan::Emulator(console), _) => SourceRecord {
            source: "emulator".into(),
            detail: format!(
                "the emulator's own capture of its virtual NIC (`network capture` through its \
                 console on port {}), copied when the run ended; timestamps on the host's clock",
                console.port()
            ),
        },
        (CapturePlan::Iface { name, phone }, _) => SourceRecord {
            source: format!("iface:{name}"),
            detail: format!(
                "the host's tcpdump on its interface {name}, filtered to the phone ({}); \
                 timestamps on the host's clock",
                match phone {
                    Some(PhoneAddress::Mac(_)) => "by its Wi-Fi MAC",
                    Some(PhoneAddress::Ip(_)) => "by its IP address",
                    None => "address unknown",
                }
            ),
        },
        _ => SourceRecord {
            source: "file:-".into(),
            detail: "a capture stream on stdin, written to the run directory as it arrived; \
                     timestamps on the capturer's clock"
                .into(),
        },
    }
}

/// The phone's address on the network, for the `iface:` source: its Wi-Fi MAC as read with the
/// identifiers, else its IPv4 address on wlan0.
async fn phone_address(device: &Device, identifiers: &[Identifier]) -> Option<PhoneAddress> {
    if let Some(mac) = identifiers
        .iter()
        .find(|i| i.kind == "wifi_mac")
        .and_then(|i| PhoneAddress::parse(&i.value))
    {
        return Some(mac);
    }
    let out = device.adb().shell("ip -o -4 addr show wlan0").await.ok()?;
    capture::iface::ipv4_of(&out.stdout_text(), "wlan0").map(PhoneAddress::Ip)
}

/// Why a `file:` source's run reads no device clock.
const HOST_CLOCK: &str = "not read: the capture's timestamps are the capturer's (host or network side), not the device's";

/// The device's clock at the end of the run; the device may be gone by then.
async fn end_clock(device: &Device) -> ClockReading {
    match tokio::time::timeout(Duration::from_secs(12), device.read_clock()).await {
        Ok(reading) => reading,
        Err(_) => ClockReading::unmeasured("the device did not answer `date` within 12s"),
    }
}

/// Starts the capture into the run directory, teed to the live analysis; records why when it
/// cannot start.
async fn start_capture(
    p: &mut Prepared,
    device: &Device,
    options: &RunOptions,
    tee: capture::Tee,
    observer: &dyn RunObserver,
) -> Result<RunningCapture, RunError> {
    let path = p.dir.join(files::CAPTURE_FILE);
    let started = match &mut p.capture {
        CapturePlan::Device(plan) => tcpdump::start(device, plan, &path, tee).await,
        CapturePlan::File(source) => Ok(capture::start_file(
            source.clone(),
            path,
            tee,
            Duration::ZERO,
        )),
        CapturePlan::Stdin(feed) => match feed.take() {
            Some(feed) => capture::start_stdin(feed, &path, tee, options.stdin_timeout).await,
            None => Err(capture::CaptureError::StdinNoData(Duration::ZERO)),
        },
        CapturePlan::Iface { name, phone } => match phone {
            Some(phone) => capture::start_iface(name, phone, &path, tee).await,
            None => Err(capture::CaptureError::NoPhoneAddress(name.clone())),
        },
        CapturePlan::Emulator(console) => console.start(&p.dir, path, tee).await,
        CapturePlan::Pcapdroid(pcapdroid_options) => {
            // What the phone asks the user while PCAPdroid starts reaches the observer as notes.
            let (prompts, mut asked) = tokio::sync::mpsc::unbounded_channel();
            let mut start_options = pcapdroid_options.clone();
            if start_options.wait_for_user.is_some() {
                start_options.prompts = Some(prompts);
            }
            let start = capture::start_pcapdroid(device.adb(), &path, start_options, tee);
            tokio::pin!(start);
            loop {
                tokio::select! {
                    started = &mut start => break started,
                    Some(prompt) = asked.recv() => observer.note(&format!("waiting for you on the phone: {prompt}")),
                }
            }
        }
    };
    started.map_err(|e| {
        files::write_failure_record(p, &e.to_string());
        e.into()
    })
}

/// Runs the steps in order, analysing the capture while they run; stops at the first step that
/// fails, on Ctrl-C, or when the capture stream ends (but for a reboot's, which restarts it).
async fn run_steps(
    p: &Prepared,
    device: &Device,
    options: &RunOptions,
    capture: &mut CaptureChain,
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
        let mut stepper = Stepper {
            device,
            plan: &p.plan,
            capture: &mut *capture,
            notes: Vec::new(),
            restarted: None,
        };
        let done = tokio::select! {
            result = stepper.perform(step) => Some(result),
            () = cancelled(&mut cancel) => None,
            never = live.follow() => match never {},
        };
        if let Some(counters) = stepper.restarted.take() {
            // The progress line goes on counting the new segment on top of the last.
            observer.capture_started(counters);
        }
        for note in std::mem::take(&mut stepper.notes) {
            let note = p.redactor.clean(&format!(
                "step {} (line {}): {note}",
                window.label(),
                step.line
            ));
            observer.note(&note);
            stepped.notes.push(note);
        }
        window.end = device::now_unix();
        let ended = match capture.has_ended() {
            false => None,
            true if capture.on_device() => Some(lost_device(device, &window).await),
            true if matches!(p.capture, CapturePlan::Pcapdroid(_)) => Some(format!(
                "{} ({})",
                device_absence(device).await.unwrap_or_else(|| {
                    "the device is still connected: PCAPdroid stopped on the phone (the user, its \
                     notification, a crash, or another app's VPN took over)"
                        .to_string()
                }),
                when(window.end, window.end - window.start)
            )),
            true => Some(format!(
                "{} ({})",
                capture.end_words(),
                when(window.end, window.end - window.start)
            )),
        };
        // A capture taken off the device goes on without it: ask the adb server whether the phone
        // is still there, or a phone pulled during an idle step would go unnoticed.
        let gone = match (&ended, &done) {
            (None, Some(Ok(()))) if !capture.on_device() => device_absence(device)
                .await
                .map(|what| format!("{what} ({})", when(window.end, window.end - window.start))),
            _ => None,
        };
        let why = match gone {
            Some(gone) => Some(format!(
                "the device went away during step {}: {gone}",
                window.label()
            )),
            None => interruption(&window, step.line, done, ended.as_deref(), &p.redactor),
        };
        stepped.windows.push(window);
        if why.is_some() {
            stepped.interrupted = why;
            break;
        }
    }
    stepped
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Ui(#[from] UiError),
    #[error("{0}")]
    Other(String),
}

/// Does steps on the device, with what they need from the run.
struct Stepper<'a> {
    device: &'a Device,
    plan: &'a preflight::Plan,
    capture: &'a mut CaptureChain,
    /// What this step decided (a method, an alternative), unredacted until the runner cleans it.
    notes: Vec<String>,
    /// The counters of a capture this step started anew (after a reboot), for the observer.
    restarted: Option<Arc<CaptureCounters>>,
}

/// Failures of alternatives an `any` error lists at most (each is a few lines).
const MAX_LISTED_FAILURES: usize = 4;

impl Stepper<'_> {
    /// Does one step; an action step then waits `settle` for the traffic it caused.
    fn perform<'s>(
        &'s mut self,
        step: &'s Step,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StepError>> + Send + 's>>
    {
        // Boxed: `any` performs its alternatives' steps through this same function.
        Box::pin(async move {
            self.act(&step.action).await?;
            if !matches!(step.action, StepAction::Idle(_)) {
                tokio::time::sleep(step.settle).await;
            }
            Ok(())
        })
    }

    async fn act(&mut self, action: &StepAction) -> Result<(), StepError> {
        let device = self.device;
        match action {
            StepAction::FreshSetup => device.fresh_setup().await?,
            // An idle step's window is its duration: no settle after it.
            StepAction::Idle(d) => tokio::time::sleep(*d).await,
            StepAction::AddContact { name, phone, via } => {
                let mut skipped = Vec::new();
                for method in via {
                    let attempt = match method {
                        ContactVia::Ui => device.add_contact_ui(name, phone).await,
                        ContactVia::Provider => {
                            device.add_contact(name, phone).await.map_err(Attempt::from)
                        }
                    };
                    if self.tried(method.name(), attempt, &mut skipped)? {
                        return Ok(());
                    }
                }
                return Err(StepError::Other(format!(
                    "no method could add the contact: {}",
                    skipped.join("; ")
                )));
            }
            StepAction::SendSms { to, body, via } => {
                let mut skipped = Vec::new();
                for method in via {
                    let attempt = match method {
                        SmsVia::Ui => device.send_sms_ui(to, body).await,
                        SmsVia::Keys => device.send_sms(to, body).await.map_err(Attempt::from),
                    };
                    if self.tried(method.name(), attempt, &mut skipped)? {
                        return Ok(());
                    }
                }
                return Err(StepError::Other(format!(
                    "no method could send the SMS: {}",
                    skipped.join("; ")
                )));
            }
            StepAction::ReceiveSms { from, body } => self.receive_sms(from, body).await?,
            StepAction::Shell {
                command,
                expect_exit,
            } => {
                device.shell_step(command, *expect_exit).await?;
            }
            StepAction::Launch(Launch::Package(package)) => device.launch_package(package).await?,
            StepAction::Launch(Launch::Intent(intent)) => device.launch_intent(intent).await?,
            StepAction::Tap { target, timeout } => device.tap(target, *timeout).await?,
            StepAction::WaitFor { target, timeout } => {
                device
                    .wait_for_any(std::slice::from_ref(target), *timeout)
                    .await?;
            }
            StepAction::Type {
                text,
                into,
                timeout,
            } => device.type_text(text, into.as_ref(), *timeout).await?,
            StepAction::Key(keys) => {
                let codes: Vec<u32> = keys.iter().map(|k| k.code).collect();
                device.press_keys(&codes).await?;
            }
            StepAction::Toggle(toggles) => {
                for (radio, on) in toggles {
                    let airplane = self.plan.airplane.unwrap_or(ui::AirplaneMethod::Cmd);
                    device.toggle(*radio, *on, airplane).await?;
                }
            }
            StepAction::Install { apk } => {
                let path = self.plan.apk(apk).ok_or_else(|| {
                    StepError::Other(format!("the preflight did not check {apk}"))
                })?;
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| StepError::Other(format!("reading {}: {e}", path.display())))?;
                device.install_apk(&bytes).await?;
            }
            StepAction::Reboot { timeout } => self.reboot(*timeout).await?,
            StepAction::Any(alternatives) => {
                let mut failures = Vec::new();
                for (i, steps) in alternatives.iter().enumerate() {
                    let mut result = Ok(());
                    for step in steps {
                        result = self.perform(step).await;
                        if result.is_err() {
                            break;
                        }
                    }
                    match result {
                        Ok(()) => {
                            if i > 0 {
                                self.notes.push(format!(
                                    "alternative {} did it ({} failed before)",
                                    i + 1,
                                    i
                                ));
                            }
                            return Ok(());
                        }
                        Err(e) => failures.push(format!("alternative {}: {e}", i + 1)),
                    }
                }
                let more = failures.len().saturating_sub(MAX_LISTED_FAILURES);
                failures.truncate(MAX_LISTED_FAILURES);
                let mut text = format!("every alternative failed: {}", failures.join(" | "));
                if more > 0 {
                    text.push_str(&format!(" (and {more} more)"));
                }
                return Err(StepError::Other(text));
            }
        }
        Ok(())
    }

    /// One method's outcome: `Ok(true)` done, `Ok(false)` try the next (noted), `Err` the step
    /// failed.
    fn tried(
        &mut self,
        method: &str,
        attempt: Result<(), Attempt>,
        skipped: &mut Vec<String>,
    ) -> Result<bool, StepError> {
        match attempt {
            Ok(()) => {
                if !skipped.is_empty() {
                    self.notes
                        .push(format!("done via {method} ({})", skipped.join("; ")));
                }
                Ok(true)
            }
            Err(Attempt::NotApplicable(why)) => {
                skipped.push(format!("{method} not usable: {why}"));
                Ok(false)
            }
            Err(Attempt::Failed(e)) => Err(e.into()),
        }
    }

    /// `receive-sms`: the emulator's console delivers the SMS (`sms send`); the inbox must then
    /// hold one more message from the sender within 10 s.
    async fn receive_sms(&mut self, from: &str, body: &str) -> Result<(), StepError> {
        let console =
            self.plan.console.as_ref().ok_or_else(|| {
                StepError::Other("the preflight found no emulator console".into())
            })?;
        let before = self.device.inbox_count(from).await?;
        console::sms_send(console.port, console.token_file.clone(), from, body)
            .await
            .map_err(|e| StepError::Other(e.to_string()))?;
        let started = std::time::Instant::now();
        while self.device.inbox_count(from).await? <= before {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(StepError::Other(
                    "the console took the SMS, but no message from the sender reached \
                     content://sms/inbox within 10s (is a default SMS app installed?)"
                        .into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// `reboot`: the capture dies with the old boot. As soon as the new boot answers the shell
    /// tcpdump is started again (what the phone sends while booting is then captured; only the
    /// seconds between the request and adbd's return are not), then the step waits for
    /// `sys.boot_completed`. A capture that cannot restart (tcpdump needs root, which `adb root`
    /// does not keep across a reboot) ends the run with that reason.
    async fn reboot(&mut self, timeout: std::time::Duration) -> Result<(), StepError> {
        let device = self.device;
        let mut wait = device.request_reboot().await?;
        if !self.capture.on_device() {
            // The capturer is outside the phone: it goes on through the reboot.
            device.wait_after_reboot(&mut wait, false, timeout).await?;
            device.wait_after_reboot(&mut wait, true, timeout).await?;
            self.notes.push(format!(
                "rebooted in {:.0?}; the capture outside the phone went on",
                wait.elapsed()
            ));
            return Ok(());
        }
        device.wait_after_reboot(&mut wait, false, timeout).await?;
        let mut restarted = self.capture.restart(device).await;
        device.wait_after_reboot(&mut wait, true, timeout).await?;
        if restarted.is_err() || self.capture.has_ended() {
            // Early in the boot tcpdump may not be there yet (/data not mounted), or the adb
            // connection of the early start did not last (the server reconnects a device that
            // came back, sometimes twice): once more, now that the boot is complete.
            restarted = self.capture.restart(device).await;
        }
        match restarted {
            Ok(counters) => {
                self.restarted = Some(counters);
                self.notes.push(format!(
                    "rebooted in {:.0?}; the capture went on in a new tcpdump (traffic during the \
                     seconds without adb is not captured)",
                    wait.elapsed()
                ));
                Ok(())
            }
            Err(e) => Err(StepError::Other(format!(
                "the device rebooted, but the capture could not restart: {e}; traffic after the \
                 reboot is not captured (if tcpdump needs `adb root`, run it again: a reboot \
                 undoes it)"
            ))),
        }
    }
}

/// `noticed at HH:MM:SS UTC, N s into the step`: when the run saw the capture had ended (a step
/// runs to its end first, so the loss itself may be earlier in the step).
fn when(unix: f64, into_step: f64) -> String {
    let secs = unix.max(0.0) as i64;
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "noticed at {:02}:{:02}:{:02} UTC, {:.1} s into the step",
        t.hour(),
        t.minute(),
        t.second(),
        into_step.max(0.0)
    )
}

/// Why the device's capture stream ended, asked of the adb server: it is gone, the device left
/// it, the device is there but not ready, or the device is there and only tcpdump stopped.
async fn lost_device(device: &Device, window: &StepWindow) -> String {
    let at = when(window.end, window.end - window.start);
    let what = device_absence(device)
        .await
        .unwrap_or_else(|| "the device is still connected, but tcpdump stopped on it".to_string());
    format!("{what} ({at})")
}

/// Why the adb server no longer serves the device (it is gone, the device left it, the device is
/// not ready); `None` while it does.
async fn device_absence(device: &Device) -> Option<String> {
    let server = device.adb().server();
    let serial = device.serial();
    match server.devices().await {
        Err(e) => Some(format!(
            "the adb server at {} stopped answering (killed, restarted, or its host went down: {e})",
            server.addr()
        )),
        Ok(list) => match list.iter().find(|d| d.serial == serial) {
            None => Some(format!(
                "the device left the adb server (unplugged, `adb disconnect {serial}`, or its \
                 connection dropped)"
            )),
            Some(d) if d.state != crate::adb::DeviceState::Device => {
                Some(format!("the device is `{}` on the adb server", d.state))
            }
            Some(_) => None,
        },
    }
}

/// Why the run stops after `window`'s step: it was cancelled (`done` is `None`), it failed, or the
/// capture stream ended. `None`: go on.
fn interruption(
    window: &StepWindow,
    line: usize,
    done: Option<Result<(), StepError>>,
    capture_ended: Option<&str>,
    redactor: &Redactor,
) -> Option<String> {
    let step = window.label();
    match done {
        None => Some(format!("stopped by the user during step {step}")),
        // One line: an error's "\n  help: …" would reach run.json as `?` (control characters are).
        Some(Err(e)) => Some(format!(
            "step {step} (line {line}) failed: {}",
            redactor.clean(&e.to_string().replace("\n  help: ", "; help: "))
        )),
        Some(Ok(())) => capture_ended
            .map(|words| format!("the capture stream ended during step {step}: {words}")),
    }
}

/// Stops the capture after its grace time (analysing what arrives meanwhile) and merges its
/// segments. When it cannot be completed, says why; the summary then reflects what is on disk.
async fn stop_capture(
    capture: CaptureChain,
    grace: Duration,
    live: &mut LiveAnalysis<'_>,
    p: &Prepared,
) -> (CaptureSummary, Option<String>) {
    let (summary, note) = tokio::select! {
        stopped = capture.stop(grace) => stopped,
        never = live.follow() => match never {},
    };
    (summary, note.map(|n| p.redactor.clean(&n)))
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
    capture_source: SourceRecord,
    clock_end: ClockReading,
) -> RunResult {
    let windows = &stepped.windows;
    let (clock, map) = match p.capture {
        CapturePlan::Device(_) | CapturePlan::Pcapdroid(_) => (
            ClockRecord {
                timestamps: "device",
                start: p.clock_start.clone(),
                end: clock_end.clone(),
            },
            ClockMap::from_readings(&[&p.clock_start, &clock_end]),
        ),
        _ => (
            ClockRecord {
                timestamps: "host",
                start: p.clock_start.clone(),
                end: clock_end,
            },
            ClockMap::host(),
        ),
    };
    let (outcome, evidence) = outcome::build(
        &p.scenario.name,
        &p.identity,
        windows,
        &map,
        &analysis,
        &p.redactor,
    );
    let traffic = outcome::traffic_by_step(windows, &map, &analysis, &p.redactor);
    let contacts = outcome::contacts(windows, &map, &analysis, &p.redactor);
    let encrypted_flows = outcome::encrypted_flows(windows, &map, &analysis, &p.redactor);
    let flows = outcome::flows_by_step(windows, &map, &analysis, &p.redactor);
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
        flows,
        capture,
        capture_source,
        clock,
        missing: p.missing.clone(),
        analysis,
        interrupted: stepped.interrupted.clone(),
        notes: p.plan.notes.iter().chain(&stepped.notes).cloned().collect(),
        identifiers: p.identifiers.clone(),
        redactor: p.redactor.clone(),
        contacts,
        policy: None,
        encrypted_flows,
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
