//! The command line: the only place that prints and picks exit codes.
//!
//! Owns argument parsing (clap), logging set-up (`-v`, `RUST_LOG`), terminal progress (quiet when
//! piped), turning library errors into messages with their fix, and the exit codes CI relies on:
//! 0 clean or equal to the accepted snapshot; 1 findings with no snapshot, a snapshot mismatch, or a
//! difference in `diff`; 2 usage or environment errors (bad scenario, no adb, device gone).
//!
//! Must not touch: protocol details (adb, analysis): it calls the library and reports.

mod analyze;
mod demo;
mod devices;
mod diff;
mod differential;
mod evidence;
mod progress;
mod report_cmd;
mod review;
mod schema;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand, ValueEnum};

use crate::adb::{AdbError, AdbServer, DeviceState};
use crate::capture::CaptureSource;
use crate::capture::keylog::KeylogSource;
use crate::device::Device;
use crate::report::{
    self,
    json::{self, CaptureOut, ComparisonOut, RunReport},
};
use crate::runner::{self, RunOptions, RunResult};
use crate::scenario::{self, Scenario};
use crate::snapshot::{self, Comparison, UpdateMode};
use crate::vhandset;
use tattle_analysis::identifier::{Identifier, is_valid_kind};

/// Exit codes a CI can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Clean = 0,
    Findings = 1,
    Environment = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "tattle",
    version,
    about = "Audit what an Android handset tells the network."
)]
struct Cli {
    /// More logs on stderr (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// The adb server's host, as `adb -H` (a device farm's server; default localhost, or
    /// ADB_SERVER_SOCKET).
    #[arg(short = 'H', long = "adb-host", value_name = "HOST", global = true)]
    adb_host: Option<String>,
    /// The adb server's port, as `adb -P` (default 5037, or ANDROID_ADB_SERVER_PORT).
    #[arg(short = 'P', long = "adb-port", value_name = "PORT", global = true)]
    adb_port: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the SMS experiment on two builds of a virtual handset and compare them.
    Demo(demo::DemoArgs),
    /// Run a scenario on a device and compare its outcome with the stored snapshot.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(Box<RunArgs>),
    /// Say what changed from build A to build B: two snapshots, run directories, or folders of
    /// either (one build's outcomes each), in sentences a regulator can quote.
    Diff(diff::DiffArgs),
    /// Walk the pending snapshots (`.snap.new`) on the terminal: accept, reject or skip each.
    Review(review::Places),
    /// Accept pending snapshots without asking (all, or those named): `.snap.new` replaces `.snap`.
    Accept(review::SelectArgs),
    /// Reject pending snapshots without asking (all, or those named): `.snap.new` is deleted.
    Reject(review::SelectArgs),
    /// List pending snapshots, and stale and orphaned ones; exit 1 when any is pending.
    Pending(review::Places),
    /// Analyse a pcap/pcapng capture taken by anything.
    Analyze(analyze::AnalyzeArgs),
    /// Render a run directory's reports again (text, json, markdown, html, junit, har, pcapng).
    Report(report_cmd::ReportArgs),
    /// Start a virtual handset that `adb connect 127.0.0.1:PORT` accepts.
    Vhandset(VhandsetArgs),
    /// Check every device the adb server lists before a run: model, Android version, root,
    /// tcpdump, capture sources, which identifiers can be read and how, firmware key, clock.
    Devices(devices::DevicesArgs),
    /// Judge a stored run by a policy (docs/policy.md): exit 1 when a rule is broken.
    Check(evidence::CheckArgs),
    /// Check a run directory against its manifest (and signature, with --key): exit 1 when a
    /// file was changed, removed or added (docs/evidence.md).
    Verify(evidence::VerifyArgs),
    /// Print the JSON Schema of one of tattle's documents (`run`, `run-record`, `evidence`,
    /// `manifest`, `policy`, `diff`, `analyze`, `devices`), as checked in under schema/.
    Schema {
        /// The document; without it, the list.
        document: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// A scenario file, or the name of a built-in one (fresh-setup, add-contact, send-sms).
    scenario: String,
    /// The device's serial (as `adb devices` lists it); needed when several are connected.
    /// Repeat it to run on several devices at once, one capture each.
    #[arg(long, short = 's', value_name = "SERIAL")]
    device: Vec<String>,
    /// Run on every device the adb server lists as ready, at once (one capture, outcome and
    /// snapshot comparison each).
    #[arg(long, conflicts_with = "device")]
    all_devices: bool,
    /// Where accepted snapshots live.
    #[arg(long, default_value = "snapshots")]
    snapshots: PathBuf,
    /// Where run directories are created.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Snapshot key instead of the one made from the device's build fingerprint
    /// (`brand-device-id-incremental`).
    #[arg(long)]
    firmware: Option<String>,
    /// An identifier to watch for, overriding what the device reports: KIND=VALUE (e.g. imei=…).
    #[arg(long = "id", value_name = "KIND=VALUE")]
    ids: Vec<String>,
    /// Where the capture comes from: `device` (tcpdump on the device, the default), `file:PATH`
    /// (a pcap/pcapng file another capturer writes during the run, copied when it ends) or
    /// `file:-` (a pcap/pcapng stream on stdin). Wins over the scenario's `capture:`.
    #[arg(long, value_name = "SOURCE", value_parser = parse_capture)]
    capture: Option<CaptureSource>,
    /// A static tcpdump built for the device's ABI, pushed to /data/local/tmp/tcpdump and run
    /// instead of the device's own (`--capture device` only).
    #[arg(long, value_name = "PATH")]
    tcpdump_binary: Option<PathBuf>,
    /// The phone's Wi-Fi MAC or IP address on the network (`--capture iface:NAME` only; default:
    /// the Wi-Fi MAC the phone reports, else its wlan0 address).
    #[arg(long, value_name = "MAC_OR_IP", value_parser = parse_phone_address)]
    phone_address: Option<crate::capture::iface::PhoneAddress>,
    /// The emulator's console port (`--capture emulator` only; default: the port in the serial
    /// `emulator-N`, which is N).
    #[arg(long, value_name = "PORT")]
    console_port: Option<u16>,
    /// PCAPdroid's API key (`--capture pcapdroid`; PCAPdroid: Settings > Control permissions >
    /// Generate API key). Better from the environment: TATTLE_PCAPDROID_API_KEY. Without one,
    /// every start and stop asks on the phone.
    #[arg(long, value_name = "KEY")]
    pcapdroid_api_key: Option<String>,
    /// With `--capture pcapdroid`: when the phone asks the user (PCAPdroid's control request, the
    /// VPN consent), say what to tap and wait up to this many seconds instead of failing.
    #[arg(long, value_name = "SECONDS")]
    wait_for_phone: Option<u64>,
    /// With `--capture pcapdroid`: PCAPdroid decrypts TLS with its mitm add-on (1.8.8+, VPN mode)
    /// and tattle pulls its key log after the stop to decrypt the capture (as `pcapdroid:tls`).
    #[arg(long)]
    pcapdroid_tls: bool,
    /// With `--capture pcapdroid`: ask PCAPdroid for pcapng (a paid feature; its TLS keys then
    /// travel inside the capture). As `pcapdroid:pcapng`.
    #[arg(long)]
    pcapdroid_pcapng: bool,
    /// With `--capture pcapdroid`: PCAPdroid captures as root instead of through its VPN (not with
    /// TLS decryption). As `pcapdroid:root`.
    #[arg(long)]
    pcapdroid_root: bool,
    /// A TLS key log (NSS format, SSLKEYLOGFILE) to decrypt the capture with: a host file, or
    /// `device:PATH` on the phone (pulled when the capture stops). Repeatable; adds to the
    /// scenario's `keylog:`. A copy is kept in the run directory (tls-keys.log).
    #[arg(long, value_name = "FILE|device:PATH", value_parser = parse_keylog)]
    keylog: Vec<KeylogSource>,
    /// Run the scenario N times (4 or more) with planted values of other lengths each time, and
    /// report the encrypted flows whose sizes follow them (docs/differential.md). One device.
    #[arg(long, value_name = "N")]
    differential: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Judge the run by this policy once its outcome is built (docs/policy.md): a broken rule
    /// makes the exit code 1; the verdict is `policy.json` in the run directory. Wins over the
    /// scenario's `policy:`.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Sign the run directory's manifest with this minisign secret key (`minisign -G`): writes
    /// `manifest.json.minisig`. An encrypted key's password comes from TATTLE_SIGN_PASSWORD.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// What to write when the outcome is not the accepted snapshot, as insta's INSTA_UPDATE:
    /// `new` a `.snap.new` for review (the default), `always` the `.snap` itself (said, with the
    /// diff), `unseen` the `.snap` for a first snapshot and `.snap.new` for a changed one, `no`
    /// nothing. Default from TATTLE_UPDATE.
    #[arg(long, value_enum, value_name = "MODE")]
    update: Option<UpdateMode>,
}

/// `tattle run --help`, after the options.
const RUN_AFTER_HELP: &str = "\
Capture sources (--capture, or `capture:` in the scenario):
  device     tcpdump on the device over adb (the default). Needs tcpdump (or --tcpdump-binary)
             and, on a phone, root: adbd as root (`adb root` on the emulator or a userdebug
             build), or su granted to the shell (Magisk, SuperSU; AOSP's `su 0`). Android 5.0+.
  file:PATH  a capture another capturer writes during the run (tcpdump -U -w PATH on an access
             point or the host, Wireshark on a hotspot); copied into the run directory when the
             run ends. Its timestamps must be on the host's clock (NTP).
  file:-     a pcap/pcapng stream on stdin, written to the run directory as it arrives:
               ssh ap tcpdump -U -w - host PHONE_IP | tattle run send-sms --capture file:-
  iface:NAME the host's own tcpdump on its interface NAME (a hotspot the phone joined, a
             tethering or access-point interface), filtered to the phone's Wi-Fi MAC (or
             --phone-address MAC_OR_IP). Needs the capture right on the host for tcpdump.
  emulator   the Android emulator's own capture of its virtual NIC, through its console (port
             from the serial emulator-N, or --console-port; token from
             ~/.emulator_console_auth_token). No root, no tcpdump on the image.
  pcapdroid  the PCAPdroid app on the phone (1.8.6+), no root: started and stopped over adb, its
             TCP exporter carried by `adb reverse`. Give its API key (--pcapdroid-api-key or
             TATTLE_PCAPDROID_API_KEY) or allow each request on the phone (--wait-for-phone).
             `pcapdroid:tls` (or --pcapdroid-tls): PCAPdroid 1.8.8+ decrypts TLS with its mitm
             add-on and tattle pulls its key log after the stop; also `pcapng`, `root`.
Details: docs/capture.md";

/// `--keylog SOURCE`, with the valid forms when it is not one.
fn parse_keylog(text: &str) -> Result<KeylogSource, String> {
    text.parse::<KeylogSource>()
        .map_err(|e| format!("{e}\n  help: {}", e.help()))
}

/// `--capture SOURCE`, with the valid forms when it is not one.
fn parse_capture(text: &str) -> Result<CaptureSource, String> {
    text.parse::<CaptureSource>()
        .map_err(|e| format!("{e}\n  help: {}", e.help()))
}

#[derive(clap::Args, Debug)]
struct VhandsetArgs {
    /// A built-in firmware profile, or a path to a profile YAML file.
    #[arg(long, default_value = "aosp-clean")]
    profile: String,
    /// The adbd's TCP port on 127.0.0.1 (avoid 5555-5585: the adb server treats those as emulators).
    #[arg(long, default_value_t = 6520)]
    port: u16,
    /// List the built-in profiles (with their Android generation) and the generations, and exit.
    #[arg(long)]
    list: bool,
    /// Also serve an emulator console on this even port (the adbd then listens on the next one,
    /// and `--port` is ignored), with the emulator's own auth token file
    /// (~/.emulator_console_auth_token, created when missing).
    #[arg(long, value_name = "PORT")]
    console_port: Option<u16>,
}

/// Entry point of the `tattle` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Environment.into()
            } else {
                Exit::Clean.into()
            };
        }
    };
    // Commands that only print end quietly when their reader leaves (`tattle analyze … | head`), as
    // other Unix tools do. Commands that run handsets keep SIGPIPE ignored: a virtual handset writes
    // into pipes of helper programs (the host's tcpdump), and one that exits must be an EPIPE there,
    // not the death of every handset in the process.
    if matches!(
        cli.command,
        Command::Analyze(_)
            | Command::Diff(_)
            | Command::Devices(_)
            | Command::Check(_)
            | Command::Verify(_)
            | Command::Schema { .. }
            | Command::Accept(_)
            | Command::Reject(_)
            | Command::Pending(_)
            | Command::Report(_)
    ) {
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Environment.into();
        }
    };
    let server = match AdbServer::from_flags(cli.adb_host.as_deref(), cli.adb_port) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Environment.into();
        }
    };
    match runtime.block_on(dispatch(cli.command, server)) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            Exit::Environment.into()
        }
    }
}

fn chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join("\n  caused by: ")
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "tattle=debug,warn",
        _ => "tattle=trace,debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && report_cmd::no_color_unset())
        .try_init();
}

async fn dispatch(command: Command, server: AdbServer) -> anyhow::Result<Exit> {
    match command {
        Command::Demo(args) => demo::run(args, server).await,
        Command::Run(args) => run_command(*args, server).await,
        Command::Diff(args) => diff::run(args),
        Command::Review(places) => review::review(places),
        Command::Accept(args) => review::accept_or_reject(args, true),
        Command::Reject(args) => review::accept_or_reject(args, false),
        Command::Pending(places) => review::list(places),
        Command::Analyze(args) => analyze::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Vhandset(args) => vhandset_command(args).await,
        Command::Devices(args) => devices::run(args, server).await,
        Command::Check(args) => evidence::check(args),
        Command::Verify(args) => evidence::verify(args),
        Command::Schema { document } => schema::print(document.as_deref()),
    }
}

/// Parses `KIND=VALUE` arguments.
pub(crate) fn parse_ids(args: &[String]) -> anyhow::Result<Vec<Identifier>> {
    args.iter()
        .map(|arg| {
            let (kind, value) = arg
                .split_once('=')
                .ok_or_else(|| anyhow!("`--id {arg}`: expected KIND=VALUE, e.g. --id imei=356938035643809"))?;
            if !is_valid_kind(kind) {
                return Err(anyhow!(
                    "`--id {kind}=…`: identifier kinds are snake_case names such as imei, phone_number, android_id"
                ));
            }
            if value.is_empty() {
                return Err(anyhow!("`--id {kind}=`: the value is empty"));
            }
            Ok(Identifier::new(kind, value))
        })
        .collect()
}

/// A flag that turns true on Ctrl-C: runs stop stepping, keep and analyse what they captured, exit 2.
pub(crate) fn cancel_on_ctrl_c() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "stopping: finishing the capture and analysing what was taken (Ctrl-C again to abort)"
            );
            let _ = tx.send(true);
            // A second Ctrl-C means "now".
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(Exit::Environment as i32);
            }
        }
    });
    rx
}

/// Loads a scenario from a path, or a built-in one by name (with did-you-mean over the built-ins).
pub(crate) fn load_scenario(arg: &str) -> Result<Scenario, scenario::ScenarioError> {
    Scenario::resolve(arg)
}

/// Turns adb errors into a message with the fix.
fn adb_context(e: AdbError) -> anyhow::Error {
    anyhow::Error::new(e)
}

/// The devices of a run: `--all-devices` (every ready one), each `--device`, or the only one.
async fn pick_devices(server: &AdbServer, args: &RunArgs) -> anyhow::Result<Vec<Device>> {
    server.ensure_running().await.map_err(adb_context)?;
    let listed = server.devices().await.map_err(adb_context)?;
    if args.all_devices {
        let ready: Vec<Device> = listed
            .iter()
            .filter(|d| d.state == DeviceState::Device)
            .map(|d| Device::new(server.device(&d.serial)))
            .collect();
        if ready.is_empty() {
            return Err(anyhow!(
                "--all-devices: no device is ready (adb devices: {})",
                list_serials(&listed)
            ));
        }
        return Ok(ready);
    }
    if args.device.len() <= 1 {
        return Ok(vec![pick_device(
            server,
            &listed,
            args.device.first().map(String::as_str),
        )?]);
    }
    let mut seen = std::collections::BTreeSet::new();
    args.device
        .iter()
        .filter(|s| seen.insert(s.as_str()))
        .map(|s| pick_device(server, &listed, Some(s)))
        .collect()
}

fn pick_device(
    server: &AdbServer,
    devices: &[crate::adb::DeviceInfo],
    serial: Option<&str>,
) -> anyhow::Result<Device> {
    let chosen = match serial {
        Some(s) => devices.iter().find(|d| d.serial == s).ok_or_else(|| {
            anyhow!(
                "no device `{s}` in `adb devices`; connected: {}",
                list_serials(devices)
            )
        })?,
        None => {
            let ready: Vec<_> = devices
                .iter()
                .filter(|d| d.state == DeviceState::Device)
                .collect();
            match ready.as_slice() {
                [] => {
                    return Err(anyhow!(
                        "no device is connected to the adb server. Plug in a phone with USB debugging on, \
                         start the emulator, or start a virtual handset: `tattle vhandset --profile \
                         miui-cloud-default --port 6520` then `adb connect 127.0.0.1:6520`"
                    ));
                }
                [one] => *one,
                _ => {
                    return Err(anyhow!(
                        "several devices are connected ({}); pick one with --device SERIAL, several \
                         with --device A --device B, or all with --all-devices",
                        list_serials(devices)
                    ));
                }
            }
        }
    };
    if chosen.state != DeviceState::Device {
        return Err(anyhow!(
            "device `{}` is `{:?}`, not ready (unauthorized: accept the USB debugging prompt on the phone)",
            chosen.serial,
            chosen.state
        ));
    }
    Ok(Device::new(server.device(&chosen.serial)))
}

fn list_serials(devices: &[crate::adb::DeviceInfo]) -> String {
    if devices.is_empty() {
        return "none".into();
    }
    devices
        .iter()
        .map(|d| format!("{} ({:?})", tattle_analysis::sanitize(&d.serial), d.state))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run_command(args: RunArgs, server: AdbServer) -> anyhow::Result<Exit> {
    // Validate everything before touching the device.
    let scenario = match load_scenario(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Exit::Environment);
        }
    };
    if let Some(runs) = args.differential {
        let planned = crate::differential::check_runs(runs).and_then(|()| {
            let bases = crate::differential::bases(&scenario);
            crate::differential::Plan::new(&scenario.name, &bases, runs, 0).map(drop)
        });
        if let Err(e) = planned {
            eprintln!("error: {e}");
            return Ok(Exit::Environment);
        }
        if args.all_devices || args.device.len() > 1 {
            eprintln!(
                "error: --differential runs one device N times; pick one with --device SERIAL"
            );
            return Ok(Exit::Environment);
        }
    }
    let ids = parse_ids(&args.ids)?;
    let update = update_mode(args.update)?;
    let capture = match capture_choice(&args, &scenario) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Environment);
        }
    };
    let policy_file = args.policy.clone().or_else(|| scenario.policy_path());
    let policy = match &policy_file {
        Some(path) => match crate::policy::Policy::load(path) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                eprintln!("{e}");
                return Ok(Exit::Environment);
            }
        },
        None => None,
    };
    let sign = match &args.sign {
        Some(key) => {
            let password = std::env::var(crate::evidence::PASSWORD_ENV).ok();
            match crate::evidence::SigningKey::load(key, password) {
                Ok(k) => Some(Arc::new(k)),
                Err(e) => {
                    eprintln!("error: --sign: {e}");
                    return Ok(Exit::Environment);
                }
            }
        }
        None => None,
    };
    let devices = pick_devices(&server, &args).await?;
    if devices.len() > 1 && matches!(capture, CaptureSource::Stdin | CaptureSource::File(_)) {
        eprintln!(
            "error: `--capture {capture}` is one capture of the network, which cannot be told apart \
             by phone: run one device at a time with it, or use a source per device (`device`)"
        );
        return Ok(Exit::Environment);
    }
    let options = RunOptions {
        runs_root: args.runs.clone(),
        extra_identifiers: ids,
        firmware: args.firmware.clone(),
        cancel: Some(cancel_on_ctrl_c()),
        capture,
        tcpdump_binary: args.tcpdump_binary.clone(),
        phone_address: args.phone_address.clone(),
        console_port: args.console_port,
        pcapdroid_api_key: pcapdroid_key(&args)?,
        wait_for_phone: args.wait_for_phone.map(std::time::Duration::from_secs),
        keylogs: args.keylog.clone(),
        policy,
        sign,
        ..RunOptions::default()
    };
    if let (Some(runs), [device]) = (args.differential, devices.as_slice()) {
        return differential::run(&scenario, device, &options, runs, args.format).await;
    }
    let multi = indicatif::MultiProgress::new();
    if let [device] = devices.as_slice() {
        let progress = progress::TerminalProgress::new(&multi, &scenario.name);
        let result = runner::run(&scenario, device, &options, &progress)
            .await
            .with_context(|| format!("running {} on {}", scenario.name, device.serial()))?;
        progress.clear();
        return report_run(&result, &args.snapshots, args.format, update);
    }
    // Several devices: one run each, at once, each with its own capture and live line.
    let runs = devices.iter().map(|device| {
        let progress = progress::TerminalProgress::new(
            &multi,
            &format!("{} {}", device.serial(), scenario.name),
        );
        let (scenario, options) = (&scenario, &options);
        async move {
            let result = runner::run(scenario, device, options, &progress).await;
            progress.clear();
            result
        }
    });
    let results = join_all(runs).await;
    report_runs(
        &devices,
        results,
        &scenario,
        &args.snapshots,
        args.format,
        update,
    )
}

/// Awaits every future at once on this task and returns their outputs in order (the runs borrow
/// the scenario and options, so they cannot be spawned; they are I/O-bound, so one task is enough).
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (output, future) in outputs.iter_mut().zip(futures.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *output = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Reports the runs of several devices: each outcome and comparison under its serial (text), or one
/// JSON document with a `runs` array; the exit code is the worst of them.
fn report_runs(
    devices: &[Device],
    results: Vec<Result<RunResult, runner::RunError>>,
    scenario: &Scenario,
    snapshots: &Path,
    format: Format,
    update: UpdateMode,
) -> anyhow::Result<Exit> {
    let mut exit = Exit::Clean;
    // JSON: each device's run (with its snapshot and comparison) or its error, kept for the one
    // document that borrows them.
    type Compared = (RunResult, std::path::PathBuf, Option<Comparison>);
    let mut kept: Vec<(String, Result<Compared, String>)> = Vec::new();
    for (device, result) in devices.iter().zip(results) {
        let serial = device.serial();
        if format == Format::Text {
            println!("=== {serial}");
        }
        let this = match result {
            Ok(result) => match format {
                Format::Text => report_run(&result, snapshots, format, update)?,
                Format::Json => {
                    let outcome = &result.outcome;
                    let snap = snapshot::path_for(snapshots, outcome);
                    let comparison = match result.interrupted {
                        Some(_) => None,
                        None => Some(snapshot::compare_and_record(&snap, outcome, update)?),
                    };
                    let this = exit_for(&result, comparison.as_ref());
                    kept.push((serial.to_string(), Ok((result, snap, comparison))));
                    this
                }
            },
            Err(e) => {
                let text = chain(
                    &anyhow::Error::new(e)
                        .context(format!("running {} on {serial}", scenario.name)),
                );
                match format {
                    Format::Text => eprintln!("error: {text}"),
                    Format::Json => kept.push((serial.to_string(), Err(text))),
                }
                Exit::Environment
            }
        };
        if format == Format::Text {
            println!();
        }
        exit = worst(exit, this);
    }
    if format == Format::Json {
        let runs = kept
            .iter()
            .map(|(serial, kept)| json::DeviceRun {
                serial: serial.clone(),
                result: match kept {
                    Ok((result, snap, comparison)) => json::DeviceRunResult::Run(Box::new(
                        run_report(result, snap, comparison.as_ref()),
                    )),
                    Err(text) => json::DeviceRunResult::Error(text.clone()),
                },
            })
            .collect();
        print_json(&json::MultiRunReport {
            format_version: json::RUN_FORMAT_VERSION,
            runs,
        })?;
    }
    Ok(exit)
}

/// `--update`, else TATTLE_UPDATE (as insta's INSTA_UPDATE), else `new`.
fn update_mode(flag: Option<UpdateMode>) -> anyhow::Result<UpdateMode> {
    if let Some(mode) = flag {
        return Ok(mode);
    }
    match std::env::var("TATTLE_UPDATE") {
        Ok(value) if !value.trim().is_empty() => {
            <UpdateMode as ValueEnum>::from_str(value.trim(), true)
                .map_err(|_| anyhow!("TATTLE_UPDATE={value}: expected always, unseen, new or no"))
        }
        _ => Ok(UpdateMode::default()),
    }
}

/// 2 over 1 over 0.
fn worst(a: Exit, b: Exit) -> Exit {
    if (b as u8) > (a as u8) { b } else { a }
}

/// `--pcapdroid-api-key`, else TATTLE_PCAPDROID_API_KEY, checked as PCAPdroid makes keys.
fn pcapdroid_key(args: &RunArgs) -> anyhow::Result<Option<crate::pcapdroid::ApiKey>> {
    let key = args
        .pcapdroid_api_key
        .clone()
        .or_else(|| std::env::var("TATTLE_PCAPDROID_API_KEY").ok())
        .filter(|k| !k.trim().is_empty());
    key.map(|k| crate::pcapdroid::ApiKey::new(k.trim()).map_err(|e| anyhow!("{e}")))
        .transpose()
}

fn parse_phone_address(text: &str) -> Result<crate::capture::iface::PhoneAddress, String> {
    crate::capture::iface::PhoneAddress::parse(text).ok_or_else(|| {
        "expected the phone's Wi-Fi MAC (aa:bb:cc:dd:ee:ff) or its IP address".to_string()
    })
}

/// The capture source of a run: `--capture`, else the scenario's `capture:`, else `device`;
/// checked against the other options and the terminal before any device is touched.
fn capture_choice(args: &RunArgs, scenario: &Scenario) -> anyhow::Result<CaptureSource> {
    let mut source = args
        .capture
        .clone()
        .or_else(|| scenario.capture_source())
        .unwrap_or_default();
    let flags = args.pcapdroid_tls || args.pcapdroid_pcapng || args.pcapdroid_root;
    match &mut source {
        CaptureSource::Pcapdroid(mode) => {
            mode.tls |= args.pcapdroid_tls;
            mode.pcapng |= args.pcapdroid_pcapng;
            mode.root |= args.pcapdroid_root;
            *mode = mode
                .check()
                .map_err(|e| anyhow!("{e}\n  help: {}", e.help()))?;
        }
        _ if flags => {
            return Err(anyhow!(
                "--pcapdroid-tls, --pcapdroid-pcapng and --pcapdroid-root are for `--capture \
                 pcapdroid`; this run captures with `{source}`"
            ));
        }
        _ => {}
    }
    if let Some(binary) = &args.tcpdump_binary {
        if source != CaptureSource::Device {
            return Err(anyhow!(
                "--tcpdump-binary is for the `device` source (tcpdump on the device); this run \
                 captures with `{source}`"
            ));
        }
        let meta = std::fs::metadata(binary)
            .with_context(|| format!("--tcpdump-binary {}", binary.display()))?;
        if !meta.is_file() {
            return Err(anyhow!(
                "--tcpdump-binary {}: not a file (give a static tcpdump built for the device)",
                binary.display()
            ));
        }
    }
    if args.phone_address.is_some() && !matches!(source, CaptureSource::Iface(_)) {
        return Err(anyhow!(
            "--phone-address is for `--capture iface:NAME` (it picks the phone's traffic on the \
             host's interface); this run captures with `{source}`"
        ));
    }
    if (args.pcapdroid_api_key.is_some() || args.wait_for_phone.is_some())
        && !matches!(source, CaptureSource::Pcapdroid(_))
    {
        return Err(anyhow!(
            "--pcapdroid-api-key and --wait-for-phone are for `--capture pcapdroid`; this run \
             captures with `{source}`"
        ));
    }
    if args.console_port.is_some() && source != CaptureSource::Emulator {
        return Err(anyhow!(
            "--console-port is for `--capture emulator` (it names the emulator's console); this \
             run captures with `{source}`"
        ));
    }
    if source == CaptureSource::Stdin && std::io::stdin().is_terminal() {
        return Err(anyhow!(
            "`--capture file:-` reads a capture from stdin, but stdin is a terminal: pipe one in, \
             e.g. `ssh ap tcpdump -U -w - host PHONE_IP | tattle run …`"
        ));
    }
    Ok(source)
}

/// Prints a run's outcome, compares it with its snapshot and picks the exit code.
fn report_run(
    result: &RunResult,
    snapshots: &Path,
    format: Format,
    update: UpdateMode,
) -> anyhow::Result<Exit> {
    let outcome = &result.outcome;
    let snap = snapshot::path_for(snapshots, outcome);
    // A partial outcome is never offered for acceptance: no comparison, no `.snap.new`.
    let comparison = match result.interrupted {
        Some(_) => None,
        None => Some(snapshot::compare_and_record(&snap, outcome, update)?),
    };
    let exit = exit_for(result, comparison.as_ref());
    match format {
        Format::Json => print_json(&run_report(result, &snap, comparison.as_ref()))?,
        Format::Text => {
            print!(
                "{}",
                report_cmd::paint(&report::render_outcome(outcome, &result.traffic))
            );
            print_run_notes(result);
            print_comparison(&snap, comparison.as_ref());
            if let Some(verdict) = &result.policy {
                print!("{}", verdict.render());
            }
        }
    }
    Ok(exit)
}

/// 2 when interrupted (not compared), 1 for findings without a snapshot, a mismatch or a broken
/// policy rule, else 0 (also when `--update=always|unseen` wrote the outcome as the snapshot: it
/// is accepted, as insta's `INSTA_UPDATE=always` passes).
fn exit_for(result: &RunResult, comparison: Option<&Comparison>) -> Exit {
    let policy = match &result.policy {
        Some(verdict) if !verdict.passed => Exit::Findings,
        _ => Exit::Clean,
    };
    worst(policy, exit_for_comparison(result, comparison))
}

fn exit_for_comparison(result: &RunResult, comparison: Option<&Comparison>) -> Exit {
    match comparison {
        None => Exit::Environment,
        Some(Comparison::Equal | Comparison::Written { .. }) => Exit::Clean,
        Some(Comparison::Missing { .. }) if result.outcome.has_findings() => Exit::Findings,
        Some(Comparison::Missing { .. }) => Exit::Clean,
        Some(Comparison::Different { .. }) => Exit::Findings,
    }
}

/// The `run --format json` document of a run (docs/run-json.md).
fn run_report<'a>(
    result: &'a RunResult,
    snap: &Path,
    comparison: Option<&Comparison>,
) -> RunReport<'a> {
    let (comparison, pending) = ComparisonOut::of(comparison);
    RunReport {
        format_version: json::RUN_FORMAT_VERSION,
        run_dir: result.dir.display().to_string(),
        outcome: &result.outcome,
        evidence: &result.evidence,
        traffic: &result.traffic,
        snapshot: snap.display().to_string(),
        comparison,
        pending,
        interrupted: result.interrupted.as_deref(),
        identifiers_missing: &result.missing,
        capture: CaptureOut::from(&result.capture),
        capture_source: &result.capture_source,
        policy: result.policy.as_ref(),
    }
}

fn print_json(document: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(document)?);
    Ok(())
}

fn print_comparison(snap: &Path, comparison: Option<&Comparison>) {
    match comparison {
        None => println!(
            "not compared with {}: the run was interrupted",
            snap.display()
        ),
        Some(Comparison::Equal) => {
            println!("outcome equals the accepted snapshot {}", snap.display())
        }
        Some(Comparison::Missing {
            pending: Some(pending),
        }) => println!(
            "no accepted snapshot yet; wrote {} (review it: tattle review, or tattle accept {})",
            pending.display(),
            pending.display()
        ),
        Some(Comparison::Missing { pending: None }) => println!(
            "no accepted snapshot yet at {}; nothing written (--update=no)",
            snap.display()
        ),
        Some(Comparison::Different { pending, diff }) => {
            println!("outcome differs from the accepted snapshot:\n{diff}");
            match pending {
                Some(pending) => println!(
                    "wrote {} (review it: tattle review, or tattle accept {}; `cargo insta review` works too)",
                    pending.display(),
                    pending.display()
                ),
                None => println!("nothing written (--update=no)"),
            }
        }
        Some(Comparison::Written { diff: None }) => println!(
            "no accepted snapshot yet; wrote the outcome as {} (--update)",
            snap.display()
        ),
        Some(Comparison::Written { diff: Some(diff) }) => println!(
            "outcome differed from the accepted snapshot; replaced {} (--update=always):\n{diff}",
            snap.display()
        ),
    }
}

/// The run directory and what the reader must know about the run: identifiers not read, damage,
/// interruption. Everything from the device or the network goes through the run's redactor.
pub(crate) fn print_run_notes(result: &RunResult) {
    println!(
        "  run directory {} (capture: {} packets, {} bytes)",
        result.dir.display(),
        result.capture.packets,
        result.capture.bytes
    );
    if !result.capture_source.is_plain_device() {
        println!(
            "  capture source {}: {}",
            result.capture_source.source, result.capture_source.detail
        );
    }
    if result.clock.timestamps == "device" {
        for (when, reading) in [("start", &result.clock.start), ("end", &result.clock.end)] {
            if let Some(why) = &reading.unmeasured {
                println!("  note: the device's clock was not read at the {when}: {why}");
            }
        }
    }
    if let Some(note) = &result.firmware.note {
        println!("  note: firmware key {}: {note}", result.firmware.key);
    }
    for m in &result.missing {
        println!(
            "  note: could not read <{}> from the device: {} (pass --id {}=VALUE)",
            m.kind, m.reason, m.kind
        );
    }
    for d in &result.analysis.damage {
        println!(
            "  note: capture damaged after frame {}: {}",
            d.after_frame,
            result.redactor.clean(&d.what)
        );
    }
    if let Some(why) = &result.interrupted {
        println!("  RUN INTERRUPTED: {why}; the capture taken so far was kept and analysed");
    }
}

pub(crate) fn load_profile(arg: &str) -> anyhow::Result<vhandset::Profile> {
    let path = Path::new(arg);
    if path.exists() {
        return Ok(vhandset::Profile::load(path)?);
    }
    Ok(vhandset::Profile::builtin(arg)?)
}

async fn vhandset_command(args: VhandsetArgs) -> anyhow::Result<Exit> {
    if args.list {
        for name in vhandset::Profile::builtin_names() {
            let p = vhandset::Profile::builtin(name)?;
            println!("{name:22} {:12} {}", p.generation.id, p.description);
        }
        println!("\ngenerations (a profile's `generation:`):");
        for g in vhandset::GENERATIONS {
            println!("{:12} SDK {:<3} {}", g.id, g.sdk.0, g.summary);
        }
        return Ok(Exit::Clean);
    }
    let profile = Arc::new(load_profile(&args.profile)?);
    let config = vhandset::HandsetConfig {
        profile: profile.clone(),
        adb_port: args.port,
    };
    let handset = match args.console_port {
        None => vhandset::start(config).await?,
        Some(console_port) => {
            let handset = vhandset::start_emulator(
                config,
                vhandset::EmulatorConfig {
                    console_port,
                    token_file: None,
                },
            )
            .await?;
            println!(
                "emulator console on 127.0.0.1:{console_port} (`adb emu` and `--capture emulator` use it)"
            );
            handset
        }
    };
    println!(
        "virtual handset `{}` listening on {}; connect it with: adb connect {}",
        profile.name,
        handset.serial(),
        handset.serial()
    );
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await.ok();
    handset.shutdown().await;
    Ok(Exit::Clean)
}
