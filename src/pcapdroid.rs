//! PCAPdroid as a capture source: the phone's traffic without root, on a stock phone, through the
//! PCAPdroid app's capture-control Intent API and its TCP exporter, carried to the host by
//! `adb reverse`.
//!
//! What a capture does, in order (docs/capture-pcapdroid.md for users; the facts and their sources
//! are in docs/research/pcapdroid-api.md):
//!
//! 1. `dumpsys package com.emanuelef.remote_capture`: PCAPdroid must be installed, version 1.8.6
//!    (versionCode 86) or later — the first with the TCP exporter and the `api_key` extra.
//! 2. tattle listens on the host's `127.0.0.1:PORT` (a free port), then `adb reverse tcp:PORT
//!    tcp:PORT`, so that the phone's `127.0.0.1:PORT` reaches it.
//! 3. `am start -n com.emanuelef.remote_capture/.activities.CaptureCtrl -e action start -e api_key KEY
//!    -e pcap_dump_mode tcp_exporter -e collector_ip_address 127.0.0.1 -e collector_port PORT`
//!    (plus `app_filter`, `dump_extensions`, `snaplen` when asked). `am` says nothing about what the
//!    app does, so:
//! 4. tattle waits for PCAPdroid's connection (it connects once its capture runs; without a listener
//!    it would stop at once). Meanwhile it reads the screen (`uiautomator dump`) now and then: if
//!    PCAPdroid's consent window ("PCAPdroid control request") or the VPN consent (PCAPdroid's
//!    notice, Android's "Connection request") is showing, the start fails with one message and the
//!    fix — or, with `Options::wait_for_user`, tattle says so and waits for the user to answer.
//! 5. The stream is a pcap file as PCAPdroid writes it (LINKTYPE_RAW, or Ethernet with the PCAPdroid
//!    trailer under `dump_extensions`; the header arrives with the first packets, at most ~1 s after
//!    the first traffic). Each chunk is written to the capture file (0600, flushed) and then handed
//!    to the tee, as `capture` does for tcpdump.
//! 6. `stop`: the `stop` action, then EOF (PCAPdroid flushes and closes); the reverse forward is
//!    removed. If PCAPdroid does not stop in time (a consent window for the stop, without an API
//!    key), tattle closes the connection itself: PCAPdroid's next write fails and its capture stops.
//!
//! With TLS decryption (`Options::tls_keylog_name`, `pcapdroid:tls`): PCAPdroid 1.8.8+ in VPN mode and
//! its mitm add-on (`com.pcapdroid.mitm`, checked with `dumpsys package`: PCAPdroid only binds it at
//! the start and gives up with a toast when it is absent) are required; tattle opens PCAPdroid's main
//! screen first (its service status observer is what copies the key log), adds `tls_decryption`,
//! `decryption_rules` for every address (an empty list decrypts nothing) and `sslkeylog_name`, and
//! after the stop brings the main screen to the front again, so that PCAPdroid copies the key log to
//! `/sdcard/Download/PCAPdroid/<name>` (the run pulls it: `capture::keylog`). With pcapng (paid) the
//! keys travel in the stream instead. Root mode has no usable keys (PCAPdroid issue #531): refused.
//! All of this is read in PCAPdroid v1.9.1's sources (docs/research/pcapdroid-api.md §5.3, §9).
//!
//! An EOF tattle did not ask for means PCAPdroid stopped on the phone (the user, a crash) or the phone
//! went away; `stop` then says which, and the capture so far is kept.
//!
//! Owns: the PCAPdroid protocol seen from the host (the Intent, the windows that block it, the
//! version rule, the stream), the listener and the reverse forward it installs, its capture file.
//! Must not touch: the runner and the CLI (they call this; the `--capture pcapdroid` wiring lives
//! there), the tcpdump capture (`capture`), the analysis (it gets the bytes through the tee), the
//! virtual handset. The API key is a secret: it is never logged nor put in an error (`ApiKey`'s
//! `Debug` and `Display` hide it; only the program name of a shell command is ever logged).
//!
//! Exercised against the virtual handset's PCAPdroid through Debian's adb server
//! (tests/it/pcapdroid.rs); not against a real phone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::adb::{AdbDevice, AdbError, DeviceState};
use crate::device::Device;
use crate::device::ui::{UiError, UiNode};
use tattle_analysis::pcap::RecordCounter;

/// PCAPdroid's package (the F-Droid, GitHub and Play builds; the beta build adds `.debug`).
pub const PACKAGE: &str = "com.emanuelef.remote_capture";
/// The exported control activity.
pub const CAPTURE_CTRL: &str = "com.emanuelef.remote_capture/.activities.CaptureCtrl";
/// The first versionCode with the TCP exporter and the `api_key` extra (1.8.6).
pub const MIN_VERSION_CODE: u32 = 86;
/// The name of that version.
pub const MIN_VERSION_NAME: &str = "1.8.6";
/// The launcher activity: its service status observer copies the TLS key log to Downloads when an
/// API capture stops (MainActivity.java, v1.9.1 lines 196–245), so tattle opens it before the start
/// and brings it to the front after the stop.
pub const MAIN_ACTIVITY: &str = "com.emanuelef.remote_capture/.activities.MainActivity";
/// The PCAPdroid-mitm add-on that TLS decryption needs (`MitmAPI.PACKAGE_NAME`).
pub const MITM_PACKAGE: &str = "com.pcapdroid.mitm";
/// The first versionCode with `sslkeylog_name` and `decryption_rules` (1.8.8), which TLS decryption
/// over adb needs: the key log copied where adb can pull it, and rules that decrypt every connection.
pub const TLS_MIN_VERSION_CODE: u32 = 89;
/// The name of that version.
pub const TLS_MIN_VERSION_NAME: &str = "1.8.8";
/// Where PCAPdroid copies the key log (`Utils.getDownloadsUri`: Downloads/PCAPdroid/).
pub const KEYLOG_DIR: &str = "/sdcard/Download/PCAPdroid";
/// The decryption rules tattle gives (`decryption_rules`, a MatchList JSON array): every IPv4 and IPv6
/// address, so every TCP connection goes through the add-on (PCAPdroid decrypts only what its list
/// matches, and an empty list matches nothing: `capture_vpn.c` `should_proxify`).
pub const DECRYPT_EVERYTHING: &str =
    r#"[{"type":"IP","value":"0.0.0.0/0"},{"type":"IP","value":"::/0"}]"#;
/// How the user gives tattle the key, as the messages say it (the CLI's option for it).
pub const API_KEY_HOW: &str = "`--pcapdroid-api-key KEY` (or TATTLE_PCAPDROID_API_KEY)";
/// How the user asks tattle to wait for them on the phone, as the messages say it.
pub const WAIT_HOW: &str = "`--wait-for-phone SECONDS`";

/// A capture stops growing here, as `capture` does: a stream without end must not fill the disk.
const MAX_CAPTURE_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// How often the screen is read while waiting (a dump takes a second or more on a phone).
const SCREEN_POLL: Duration = Duration::from_millis(1500);
/// Bound on the shell commands this module runs.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// PCAPdroid's API key: 32 letters and digits as PCAPdroid makes it (Settings → Control permissions
/// → ⋮ → Generate API key). A secret: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Checks the key's shape: printable ASCII without spaces, at most 128 characters (PCAPdroid's
    /// own are 32 of `[A-Za-z0-9]`; anything else would not survive the shell intact either).
    pub fn new(key: impl Into<String>) -> Result<ApiKey, PcapdroidError> {
        let key = key.into();
        let key = key.trim().to_string();
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PcapdroidError::BadApiKey);
        }
        Ok(ApiKey(key))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<hidden>)")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<PCAPdroid API key>")
    }
}

/// How to run a capture.
#[derive(Debug, Clone)]
pub struct Options {
    /// Skips PCAPdroid's consent window (1.8.6+). Without it, every adb start *and stop* asks.
    pub api_key: Option<ApiKey>,
    /// Only these apps' traffic (`app_filter`, package names); empty: every app.
    pub app_filter: Vec<String>,
    /// PCAPdroid's metadata in the dump: Ethernet framing and a 32-byte trailer with the uid and app
    /// name per packet (`dump_extensions`).
    pub dump_extensions: bool,
    /// Bytes kept of each packet (`snaplen`); None: PCAPdroid's maximum (32768 in VPN mode).
    pub snaplen: Option<u32>,
    /// How long PCAPdroid may take to connect after `am start`.
    pub connect_timeout: Duration,
    /// None: a consent window on the phone fails the start at once. Some(d): the user is told (see
    /// `prompts`) and tattle waits up to `d` more for them to answer on the phone.
    pub wait_for_user: Option<Duration>,
    /// Where to say that the phone is waiting for the user (each window once), when waiting.
    pub prompts: Option<mpsc::UnboundedSender<Prompt>>,
    /// Some(d): `start` also waits up to `d` for the first bytes (they come with the first traffic).
    pub wait_for_data: Option<Duration>,
    /// How long PCAPdroid may take to flush and close after the `stop` action.
    pub stop_timeout: Duration,
    /// `root_capture`: capture as root instead of through the VPN.
    pub root: bool,
    /// `pcapng_format`: pcapng (a paid feature; without the licence 1.9.1 sends pcap).
    pub pcapng: bool,
    /// `Some(name)`: TLS decryption with the mitm add-on (`tls_decryption`, every connection), the key
    /// log copied to `Download/PCAPdroid/<name>` when the capture stops (`sslkeylog_name`). VPN
    /// mode only.
    pub tls_keylog_name: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_key: None,
            app_filter: Vec::new(),
            dump_extensions: false,
            snaplen: None,
            connect_timeout: Duration::from_secs(20),
            wait_for_user: None,
            prompts: None,
            wait_for_data: None,
            stop_timeout: Duration::from_secs(10),
            root: false,
            pcapng: false,
            tls_keylog_name: None,
        }
    }
}

/// A window on the phone that holds PCAPdroid's start (or stop) until someone answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// PCAPdroid's "PCAPdroid control request" (no valid API key).
    Consent,
    /// PCAPdroid's notice before the VPN request, or Android's "Connection request" dialog: the
    /// first capture on this phone needs the VPN consent once.
    Vpn,
}

/// What to do now, while tattle waits (`Options::wait_for_user`).
impl std::fmt::Display for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prompt::Consent => f.write_str(
                "PCAPdroid asks on the phone to allow tattle's control request (\"PCAPdroid control \
                 request\"): tap Allow on the phone (it is enabled after 1.5 s)",
            ),
            Prompt::Vpn => f.write_str(
                "the phone asks for PCAPdroid's VPN consent, once: tap OK on PCAPdroid's notice, then \
                 OK on Android's \"Connection request\"",
            ),
        }
    }
}

/// PCAPdroid's installed version, from `dumpsys package`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub code: u32,
    pub name: String,
}

/// How a capture's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// PCAPdroid stopped on tattle's `stop` and closed the stream.
    Stopped,
    /// PCAPdroid did not close the stream in time after `stop`: tattle closed it (PCAPdroid's next
    /// write fails and its capture ends; until then its VPN stays up on the phone).
    ClosedByTattle,
    /// The stream ended before tattle stopped it, and the phone is still there: PCAPdroid was
    /// stopped on the phone (the user, its notification, a crash, another app's VPN).
    StoppedOnPhone,
    /// The stream ended before tattle stopped it, and the adb server lost the phone.
    DeviceGone,
}

/// What a finished capture recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub path: PathBuf,
    pub bytes: u64,
    pub packets: u64,
    /// pcap link type from the file header (101 RAW, 1 Ethernet with the trailer); None when no
    /// header came (no packet was captured) or the stream is pcapng.
    pub linktype: Option<u32>,
    pub end: End,
}

/// Everything that stops a PCAPdroid capture, each with the fix.
#[derive(Debug, thiserror::Error)]
pub enum PcapdroidError {
    #[error(transparent)]
    Adb(#[from] AdbError),
    #[error(
        "PCAPdroid ({PACKAGE}) is not installed on the phone\n  help: install PCAPdroid \
         {MIN_VERSION_NAME} or later (F-Droid, Google Play, or github.com/emanuele-f/PCAPdroid/releases), \
         open it once, then run tattle again"
    )]
    NotInstalled,
    #[error(
        "PCAPdroid {found} (versionCode {code}) is too old: tattle needs {MIN_VERSION_NAME} or later, \
         the first with the TCP exporter and API keys\n  help: update PCAPdroid on the phone",
        found = .0.name, code = .0.code
    )]
    TooOld(Version),
    #[error(
        "PCAPdroid {found} (versionCode {code}) cannot give tattle its TLS keys: TLS decryption over \
         adb needs {TLS_MIN_VERSION_NAME} or later (`sslkeylog_name`, `decryption_rules`)\n  help: \
         update PCAPdroid on the phone, or capture without `tls`",
        found = .0.name, code = .0.code
    )]
    TlsTooOld(Version),
    #[error(
        "PCAPdroid's TLS decryption needs its mitm add-on ({MITM_PACKAGE}), which is not installed \
         on the phone: PCAPdroid would toast \"Could not start the mitm service\" and not start\n  \
         help: in PCAPdroid, Settings → TLS decryption runs the setup wizard, which installs the \
         add-on (github.com/emanuele-f/PCAPdroid-mitm/releases) and its CA certificate; or capture \
         without `tls`"
    )]
    MitmAddonMissing,
    #[error(
        "PCAPdroid cannot give TLS keys in root mode: there its capture holds the mitm add-on's \
         connections to the servers, which the keys of the apps' connections cannot decrypt, so it \
         writes no key log (PCAPdroid issue #531)\n  help: decrypt in VPN mode (no `root`)"
    )]
    TlsAsRoot,
    #[error("the PCAPdroid API key is empty, too long or has spaces or control characters")]
    BadApiKey,
    #[error(
        "cannot listen on the host for PCAPdroid's stream: {0}\n  help: tattle needs a free TCP port on 127.0.0.1"
    )]
    Listen(std::io::Error),
    #[error(
        "`adb reverse` failed, which carries PCAPdroid's stream to the host: {0}\n  help: `adb reverse` \
         needs Android 5.0 or later and an adb server that is not remote"
    )]
    Reverse(AdbError),
    #[error("`am start` did not start PCAPdroid's CaptureCtrl: {0}")]
    AmFailed(String),
    #[error(
        "PCAPdroid asked on the phone to allow tattle's control request (\"PCAPdroid control \
         request\"): without an API key it asks at every start and stop over adb; tattle withdrew \
         its request\n  help: set an API key: in PCAPdroid, Settings → Control permissions → ⋮ → \
         Generate API key, and give it to {API_KEY_HOW}; or tap Allow on the phone while tattle \
         waits for you ({WAIT_HOW})"
    )]
    ConsentRequired,
    #[error(
        "the phone asks for PCAPdroid's VPN consent (PCAPdroid's notice, then Android's \"Connection \
         request\"), which the first capture on a phone needs once\n  help: on the phone, tap OK on \
         PCAPdroid's notice and OK on \"Connection request\" (they are showing now), then run tattle \
         again; later captures start without them. Without touching the phone, `adb shell appops set \
         {PACKAGE} ACTIVATE_VPN allow` may pre-consent it (not verified on a real phone)"
    )]
    VpnConsentRequired,
    #[error(
        "a PCAPdroid window from an earlier request is still open on the phone, and PCAPdroid gives it \
         every new request (its control activity is single-top)\n  help: answer or dismiss that window \
         on the phone (Deny, or BACK), then run tattle again"
    )]
    EarlierWindowOpen,
    #[error(
        "PCAPdroid did not connect to tattle within {0:?} after `am start`\n  help: open PCAPdroid on \
         the phone and check that it is not capturing into another app's VPN or showing a dialog; \
         stop its capture there if one runs; an Always-on VPN of another app blocks its VPN"
    )]
    NoConnection(Duration),
    #[error(
        "PCAPdroid is capturing but sent nothing within {0:?}: it sends its first bytes with the first \
         packets it sees\n  help: use the phone (open an app) while the capture starts; check \
         `app_filter` names apps that send traffic"
    )]
    NoData(Duration),
    #[error(
        "PCAPdroid's stream is not a pcap/pcapng capture (it starts with {0}); the bytes are kept"
    )]
    NotPcap(String),
    #[error("cannot write the capture {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "PCAPdroid stopped on the phone before tattle stopped it; the capture so far is kept \
         ({bytes} bytes, {packets} packets in {path})\n  help: keep PCAPdroid running during the run; \
         another VPN app, or stopping it from its notification, ends its capture",
        path = .0.path.display(), bytes = .0.bytes, packets = .0.packets
    )]
    StoppedOnPhone(Summary),
    #[error(
        "the phone went away during the PCAPdroid capture; the capture so far is kept ({bytes} bytes, \
         {packets} packets in {path})",
        path = .0.path.display(), bytes = .0.bytes, packets = .0.packets
    )]
    DeviceGone(Summary),
}

/// PCAPdroid's version in `dumpsys package` output: the `versionCode=` and `versionName=` lines of
/// its `Package [com.emanuelef.remote_capture]` section (Settings.dumpPackageLPr). None when the
/// section or a well-formed `versionCode` is missing.
pub fn parse_dumpsys_package(text: &str) -> Option<Version> {
    parse_dumpsys_package_of(text, PACKAGE)
}

/// `package`'s version in `dumpsys package` output, as [`parse_dumpsys_package`].
pub fn parse_dumpsys_package_of(text: &str, package: &str) -> Option<Version> {
    let marker = format!("Package [{package}]");
    let start = text.find(&marker)?;
    let mut code = None;
    let mut name = None;
    for line in text[start + marker.len()..].lines().skip(1) {
        let t = line.trim();
        // The next package's section ends this one.
        if t.starts_with("Package [") {
            break;
        }
        if let Some(rest) = t.strip_prefix("versionCode=") {
            code = rest
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u32>().ok());
        } else if let Some(rest) = t.strip_prefix("versionName=") {
            name = Some(
                tattle_analysis::sanitize_lines(rest)
                    .chars()
                    .take(40)
                    .collect(),
            );
        }
        if code.is_some() && name.is_some() {
            break;
        }
    }
    Some(Version {
        code: code?,
        name: name.unwrap_or_else(|| "?".into()),
    })
}

/// PCAPdroid's installed version, or None when it is not installed.
pub async fn installed_version(device: &AdbDevice) -> Result<Option<Version>, PcapdroidError> {
    let out = device
        .shell_with_timeout(&format!("dumpsys package {PACKAGE}"), COMMAND_TIMEOUT)
        .await?;
    Ok(parse_dumpsys_package(&out.stdout_text()))
}

/// The mitm add-on's version, or None when it is not installed. PCAPdroid itself only binds the
/// add-on's service when a capture starts (`MitmAddon.connect`); its setup wizard also wants a version
/// of the same major as the one it was built for, which only the app can tell.
pub async fn mitm_addon_version(device: &AdbDevice) -> Result<Option<Version>, PcapdroidError> {
    let out = device
        .shell_with_timeout(&format!("dumpsys package {MITM_PACKAGE}"), COMMAND_TIMEOUT)
        .await?;
    Ok(parse_dumpsys_package_of(&out.stdout_text(), MITM_PACKAGE))
}

/// What TLS decryption needs besides PCAPdroid itself: VPN mode, version 1.8.8+, the add-on.
/// Returns the add-on's version.
pub async fn check_tls(
    device: &AdbDevice,
    version: &Version,
    root: bool,
) -> Result<Version, PcapdroidError> {
    if root {
        return Err(PcapdroidError::TlsAsRoot);
    }
    if version.code < TLS_MIN_VERSION_CODE {
        return Err(PcapdroidError::TlsTooOld(version.clone()));
    }
    mitm_addon_version(device)
        .await?
        .ok_or(PcapdroidError::MitmAddonMissing)
}

/// Opens (or brings to the front) PCAPdroid's main screen; best effort.
async fn open_main_activity(device: &AdbDevice) {
    let argv: Vec<String> = ["am", "start", "-n", MAIN_ACTIVITY]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Err(e) = am_start(device, &argv).await {
        tracing::debug!(error = %e, "opening PCAPdroid's main screen");
    }
}

/// Which PCAPdroid-blocking window, if any, a screen dump shows: PCAPdroid's consent window (its
/// `allow_btn` or title), its VPN notice (`vpn_setup_msg`), Android's VPN ConfirmDialog
/// (`com.android.vpndialogs`, or its title with its warning text).
/// Texts are compared case-insensitively: a theme may capitalise them (textAllCaps).
pub fn prompt_on_screen(nodes: &[UiNode]) -> Option<Prompt> {
    let allow_id = format!("{PACKAGE}:id/allow_btn");
    let consent = nodes.iter().any(|n| {
        n.resource_id == allow_id
            || n.text
                .trim()
                .eq_ignore_ascii_case("PCAPdroid control request")
    });
    if consent {
        return Some(Prompt::Consent);
    }
    let vpn = nodes.iter().any(|n| {
        let text = n.text.to_lowercase();
        n.package == "com.android.vpndialogs"
            || text.starts_with("pcapdroid simulates a vpn")
            || text.contains("wants to set up a vpn connection")
    });
    vpn.then_some(Prompt::Vpn)
}

/// Counters of a running capture.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes: AtomicU64,
    pub packets: AtomicU64,
}

/// What the reader learnt about the stream's start.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    Waiting,
    Capture { linktype: Option<u32> },
    NotPcap(String),
}

/// A running PCAPdroid capture. Stop it with `stop`; dropping it closes the stream (PCAPdroid then
/// stops at its next write) but leaves the reverse forward on the phone.
pub struct PcapdroidCapture {
    device: AdbDevice,
    options: Options,
    port: u16,
    path: PathBuf,
    version: Version,
    counters: Arc<Counters>,
    ended: Arc<AtomicBool>,
    start: watch::Receiver<Start>,
    close: Option<oneshot::Sender<()>>,
    reader: JoinHandle<Result<(), PcapdroidError>>,
}

impl std::fmt::Debug for PcapdroidCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapdroidCapture")
            .field("serial", &self.device.serial())
            .field("port", &self.port)
            .field("path", &self.path)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The `am start` command line of one action (every value quoted; the key is in it, so it is never
/// logged: the adb client logs only the program name).
fn am_command(action: &str, key: Option<&ApiKey>, extras: &[(&str, String)]) -> Vec<String> {
    let mut argv: Vec<String> = ["am", "start", "-n", CAPTURE_CTRL, "-e", "action", action]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(k) = key {
        argv.extend(["-e".into(), "api_key".into(), k.expose().to_string()]);
    }
    for (k, v) in extras {
        argv.extend(["-e".into(), k.to_string(), v.clone()]);
    }
    argv
}

/// `am start` prints its errors and exits 0 on many releases (`Error type 3` + `Error: Activity class
/// … does not exist.` for a missing app).
async fn am_start(device: &AdbDevice, argv: &[String]) -> Result<(), PcapdroidError> {
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let command: Vec<String> = refs.iter().map(|a| crate::adb::shell_quote(a)).collect();
    let out = device
        .shell_with_timeout(&command.join(" "), COMMAND_TIMEOUT)
        .await?;
    let text = format!("{}\n{}", out.stdout_text(), out.stderr_text());
    if text.contains("Error type 3") || text.contains("does not exist") {
        return Err(PcapdroidError::NotInstalled);
    }
    // START_DELIVERED_TO_TOP: CaptureCtrl is on top and drops the Intent (it has no onNewIntent).
    if text.contains("delivered to currently running top-most instance") {
        return Err(PcapdroidError::EarlierWindowOpen);
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.starts_with("Error") || l.contains("Exception"))
    {
        return Err(PcapdroidError::AmFailed(tattle_analysis::sanitize_lines(
            line.trim(),
        )));
    }
    Ok(())
}

async fn create_private(path: &Path) -> Result<tokio::fs::File, PcapdroidError> {
    crate::capture::open_private(path)
        .await
        .map_err(|source| PcapdroidError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Reads the screen for a blocking window; a screen that cannot be read says nothing.
async fn check_screen(device: &AdbDevice) -> Option<Prompt> {
    match Device::new(device.clone()).screen().await {
        Ok(nodes) => prompt_on_screen(&nodes),
        Err(UiError::Device(e)) => {
            tracing::debug!(error = %e, "reading the screen while PCAPdroid starts");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "no screen while PCAPdroid starts");
            None
        }
    }
}

impl PcapdroidCapture {
    /// Starts PCAPdroid's capture into `path` (created 0600; it must not exist) and returns once
    /// PCAPdroid has connected, i.e. its capture runs (and, with `options.wait_for_data`, once its
    /// first bytes are on disk). Every chunk is also sent to `tee` after it is written. On failure
    /// the reverse forward is removed and an empty capture file deleted.
    pub async fn start(
        device: &AdbDevice,
        path: &Path,
        options: Options,
        tee: Option<mpsc::UnboundedSender<Vec<u8>>>,
    ) -> Result<PcapdroidCapture, PcapdroidError> {
        let version = installed_version(device)
            .await?
            .ok_or(PcapdroidError::NotInstalled)?;
        if version.code < MIN_VERSION_CODE {
            return Err(PcapdroidError::TooOld(version));
        }
        if options.tls_keylog_name.is_some() {
            check_tls(device, &version, options.root).await?;
            // Its status observer must see the capture run to copy the key log when it stops.
            open_main_activity(device).await;
        }
        // The file first: it must be new, and from here on it is ours to delete if the start fails.
        let file = create_private(path).await?;
        let remove_file = async || {
            let _ = tokio::fs::remove_file(path).await;
        };
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                remove_file().await;
                return Err(PcapdroidError::Listen(e));
            }
        };
        let port = listener.local_addr().map_or(0, |a| a.port());
        let forward = format!("tcp:{port}");
        if let Err(e) = device.reverse_forward(&forward, &forward).await {
            remove_file().await;
            return Err(PcapdroidError::Reverse(e));
        }
        let result = async {
            let mut extras = vec![
                ("pcap_dump_mode", "tcp_exporter".to_string()),
                ("collector_ip_address", "127.0.0.1".to_string()),
                ("collector_port", port.to_string()),
            ];
            if !options.app_filter.is_empty() {
                extras.push(("app_filter", options.app_filter.join(",")));
            }
            if options.dump_extensions {
                extras.push(("dump_extensions", "true".into()));
            }
            if let Some(s) = options.snaplen {
                extras.push(("snaplen", s.to_string()));
            }
            if options.root {
                extras.push(("root_capture", "true".into()));
            }
            if options.pcapng {
                extras.push(("pcapng_format", "true".into()));
            }
            if let Some(name) = &options.tls_keylog_name {
                extras.push(("tls_decryption", "true".into()));
                extras.push(("decryption_rules", DECRYPT_EVERYTHING.into()));
                extras.push(("sslkeylog_name", name.clone()));
            }
            am_start(
                device,
                &am_command("start", options.api_key.as_ref(), &extras),
            )
            .await?;
            tracing::info!(serial = %device.serial(), port, version = %version.name, "PCAPdroid start requested");
            wait_for_connection(device, &listener, &options).await
        }
        .await;
        let stream = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = device.reverse_remove(&forward).await;
                remove_file().await;
                return Err(e);
            }
        };
        drop(listener);
        let counters = Arc::new(Counters::default());
        let ended = Arc::new(AtomicBool::new(false));
        let (start_tx, start_rx) = watch::channel(Start::Waiting);
        let (close_tx, close_rx) = oneshot::channel();
        let reader = tokio::spawn(read_stream(
            stream,
            file,
            path.to_path_buf(),
            tee,
            counters.clone(),
            ended.clone(),
            start_tx,
            close_rx,
        ));
        let mut capture = PcapdroidCapture {
            device: device.clone(),
            options,
            port,
            path: path.to_path_buf(),
            version,
            counters,
            ended,
            start: start_rx,
            close: Some(close_tx),
            reader,
        };
        if let Some(wait) = capture.options.wait_for_data
            && let Err(e) = capture.wait_for_data(wait).await
        {
            let _ = capture.abandon().await;
            return Err(e);
        }
        Ok(capture)
    }

    /// The host port PCAPdroid connects to (and the phone's port forwarded to it).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// PCAPdroid's version on the phone.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// Bytes and packets received so far.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// True once the stream has ended on its own (PCAPdroid stopped on the phone, or the phone went).
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Waits until the first bytes are on disk and say what they are: the pcap link type (None for
    /// pcapng). They come with the first packets PCAPdroid sees, so cause some traffic meanwhile.
    pub async fn wait_for_data(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<u32>, PcapdroidError> {
        let waited = tokio::time::timeout(timeout, async {
            self.start
                .wait_for(|s| *s != Start::Waiting)
                .await
                .map(|s| s.clone())
        })
        .await;
        match waited {
            Ok(Ok(Start::Capture { linktype })) => Ok(linktype),
            Ok(Ok(Start::NotPcap(got))) => Err(PcapdroidError::NotPcap(got)),
            // The reader ended without a byte: the stream closed.
            _ if self.has_ended() => Err(self.early_end_error().await),
            _ => Err(PcapdroidError::NoData(timeout)),
        }
    }

    /// Gives up a started capture (a start that failed after the connection): the `stop` action,
    /// best effort, then the stream is closed and the forward removed.
    async fn abandon(&mut self) -> Result<(), PcapdroidError> {
        let _ = am_start(
            &self.device,
            &am_command("stop", self.options.api_key.as_ref(), &[]),
        )
        .await;
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        let _ = self
            .device
            .reverse_remove(&format!("tcp:{}", self.port))
            .await;
        Ok(())
    }

    fn summary(&self, end: End) -> Summary {
        let linktype = match &*self.start.borrow() {
            Start::Capture { linktype } => *linktype,
            _ => None,
        };
        Summary {
            path: self.path.clone(),
            bytes: self.counters.bytes.load(Ordering::Relaxed),
            packets: self.counters.packets.load(Ordering::Relaxed),
            linktype,
            end,
        }
    }

    /// Why the stream ended before `stop`: the phone still answers (PCAPdroid stopped there), or not.
    async fn early_end_error(&self) -> PcapdroidError {
        let gone = !matches!(
            tokio::time::timeout(Duration::from_secs(5), self.device.state()).await,
            Ok(Ok(DeviceState::Device))
        );
        if gone {
            PcapdroidError::DeviceGone(self.summary(End::DeviceGone))
        } else {
            PcapdroidError::StoppedOnPhone(self.summary(End::StoppedOnPhone))
        }
    }

    /// Stops the capture: the `stop` action, then PCAPdroid's EOF (or tattle closes the stream after
    /// `stop_timeout`), then the reverse forward goes. The file keeps everything received in every
    /// case; an end tattle did not ask for is an error that carries the summary.
    pub async fn stop(mut self) -> Result<Summary, PcapdroidError> {
        let forward = format!("tcp:{}", self.port);
        if self.has_ended() {
            let _ = self.finish_reader().await;
            let err = self.early_end_error().await;
            let _ = self.device.reverse_remove(&forward).await;
            if self.options.tls_keylog_name.is_some()
                && matches!(err, PcapdroidError::StoppedOnPhone(_))
            {
                open_main_activity(&self.device).await;
            }
            return Err(err);
        }
        let stop_sent = am_start(
            &self.device,
            &am_command("stop", self.options.api_key.as_ref(), &[]),
        )
        .await;
        if let Err(e) = &stop_sent {
            tracing::warn!(error = %e, "PCAPdroid stop request");
        }
        let deadline = Instant::now() + self.options.stop_timeout;
        let mut user_deadline = None;
        // The stop's consent window shows as soon as `am start` returns: look early.
        let mut next_screen = Instant::now() + SCREEN_POLL / 3;
        let mut end = End::Stopped;
        loop {
            if self.has_ended() {
                break;
            }
            let now = Instant::now();
            if now >= deadline.max(user_deadline.unwrap_or(deadline)) {
                // A stop request still waiting for consent would swallow the next request.
                if self.options.api_key.is_none()
                    && check_screen(&self.device).await == Some(Prompt::Consent)
                {
                    let _ = blocked(&self.device, Prompt::Consent).await;
                }
                end = End::ClosedByTattle;
                break;
            }
            // Without a key the stop asks for consent too: no point waiting unless the user may answer.
            if self.options.api_key.is_none() && now >= next_screen {
                next_screen = now + SCREEN_POLL;
                if check_screen(&self.device).await == Some(Prompt::Consent) {
                    match self.options.wait_for_user {
                        None => {
                            tracing::warn!(
                                "PCAPdroid asks on the phone to allow the stop; closing the stream instead"
                            );
                            let _ = blocked(&self.device, Prompt::Consent).await;
                            end = End::ClosedByTattle;
                            break;
                        }
                        Some(w) if user_deadline.is_none() => {
                            user_deadline = Some(now + w);
                            if let Some(p) = &self.options.prompts {
                                let _ = p.send(Prompt::Consent);
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if end == End::ClosedByTattle
            && let Some(close) = self.close.take()
        {
            let _ = close.send(());
        }
        let read = self.finish_reader().await;
        let _ = self.device.reverse_remove(&forward).await;
        if self.options.tls_keylog_name.is_some() {
            // Its status observer acts on the stop once it is in front: the key log copy.
            open_main_activity(&self.device).await;
        }
        read?;
        if let Start::NotPcap(got) = &*self.start.borrow() {
            return Err(PcapdroidError::NotPcap(got.clone()));
        }
        Ok(self.summary(end))
    }

    async fn finish_reader(&mut self) -> Result<(), PcapdroidError> {
        match (&mut self.reader).await {
            Ok(r) => r,
            Err(join) => Err(PcapdroidError::Write {
                path: self.path.clone(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }
}

/// The error for a window that holds the start; for PCAPdroid's consent window, tattle also withdraws
/// its request (BACK, which is CaptureCtrl's Deny), because a window left open would swallow the next
/// request (CaptureCtrl is single-top and has no onNewIntent). The VPN windows stay: the user can
/// accept them now, and that consent lasts.
async fn blocked(device: &AdbDevice, prompt: Prompt) -> PcapdroidError {
    match prompt {
        Prompt::Consent => {
            if let Err(e) = device
                .shell_with_timeout("input keyevent 4", COMMAND_TIMEOUT)
                .await
            {
                tracing::debug!(error = %e, "withdrawing the PCAPdroid request");
            }
            PcapdroidError::ConsentRequired
        }
        Prompt::Vpn => PcapdroidError::VpnConsentRequired,
    }
}

/// Accepts PCAPdroid's connection, reading the screen meanwhile for a window that holds it.
async fn wait_for_connection(
    device: &AdbDevice,
    listener: &TcpListener,
    options: &Options,
) -> Result<TcpStream, PcapdroidError> {
    let started = Instant::now();
    let mut deadline = started + options.connect_timeout;
    let mut next_screen = started + SCREEN_POLL;
    let mut told: Vec<Prompt> = Vec::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::info!(%peer, "PCAPdroid connected");
                    return Ok(stream);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = tokio::time::sleep_until(next_screen.min(deadline).into()) => {}
        }
        let now = Instant::now();
        if now < next_screen && now < deadline {
            continue;
        }
        next_screen = now + SCREEN_POLL;
        let prompt = check_screen(device).await;
        match (prompt, options.wait_for_user) {
            (Some(p), None) => return Err(blocked(device, p).await),
            (Some(p), Some(wait)) if !told.contains(&p) => {
                told.push(p);
                tracing::warn!("{p}");
                if let Some(tx) = &options.prompts {
                    let _ = tx.send(p);
                }
                deadline = deadline.max(Instant::now() + wait);
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            // A window still showing at the end: say that, not a bare timeout.
            return Err(match prompt {
                Some(p) => blocked(device, p).await,
                None => PcapdroidError::NoConnection(started.elapsed()),
            });
        }
    }
}

/// What the stream's first bytes say.
fn classify_start(head: &[u8]) -> Start {
    match head[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] if head.len() >= 24 => Start::Capture {
            linktype: Some(u32::from_le_bytes([head[20], head[21], head[22], head[23]])),
        },
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] if head.len() >= 24 => Start::Capture {
            linktype: Some(u32::from_be_bytes([head[20], head[21], head[22], head[23]])),
        },
        [0x0a, 0x0d, 0x0d, 0x0a] => Start::Capture { linktype: None },
        _ => Start::NotPcap(head[..4].iter().map(|b| format!("{b:02x}")).collect()),
    }
}

/// The stream to the file (flushed per chunk) and then the tee, until EOF or `close`.
#[allow(clippy::too_many_arguments)]
async fn read_stream(
    mut stream: TcpStream,
    mut file: tokio::fs::File,
    path: PathBuf,
    tee: Option<mpsc::UnboundedSender<Vec<u8>>>,
    counters: Arc<Counters>,
    ended: Arc<AtomicBool>,
    start: watch::Sender<Start>,
    mut close: oneshot::Receiver<()>,
) -> Result<(), PcapdroidError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut head: Vec<u8> = Vec::with_capacity(24);
    let mut records = RecordCounter::new();
    let mut counting = true;
    let write_err = |source| PcapdroidError::Write {
        path: path.clone(),
        source,
    };
    loop {
        let n = tokio::select! {
            _ = &mut close => break,
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    ended.store(true, Ordering::SeqCst);
                    break;
                }
                Ok(n) => n,
            },
        };
        if counters.bytes.load(Ordering::Relaxed) + n as u64 > MAX_CAPTURE_BYTES {
            tracing::warn!("PCAPdroid capture reached {MAX_CAPTURE_BYTES} bytes; closing it");
            break;
        }
        let chunk = &buf[..n];
        file.write_all(chunk).await.map_err(write_err)?;
        file.flush().await.map_err(write_err)?;
        if let Some(t) = &tee {
            let _ = t.send(chunk.to_vec());
        }
        counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if head.len() < 24 {
            let take = (24 - head.len()).min(n);
            head.extend_from_slice(&chunk[..take]);
            let pcapng = head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
            if head.len() >= 24 || (pcapng && head.len() >= 4) {
                let s = classify_start(&head);
                counting = matches!(s, Start::Capture { .. });
                start.send_replace(s);
            }
        }
        if counting {
            match records.feed(chunk) {
                Ok(k) => {
                    counters.packets.fetch_add(k, Ordering::Relaxed);
                }
                // A stream that stops making sense stops counting; the analysis says why.
                Err(_) => counting = false,
            }
        }
    }
    // Closing our end: PCAPdroid's next write fails and its capture stops.
    let _ = stream.shutdown().await;
    file.flush().await.map_err(write_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str, id: &str, package: &str) -> UiNode {
        UiNode {
            text: text.into(),
            resource_id: id.into(),
            package: package.into(),
            ..Default::default()
        }
    }

    #[test]
    fn dumpsys_package_version_lines() {
        let text = "Packages:\n  Package [com.emanuelef.remote_capture] (7c1e5a2):\n    userId=10215\n    versionCode=91 minSdk=21 targetSdk=35\n    minExtensionVersions=[]\n    versionName=1.9.1\n  Package [com.other] (1):\n    versionCode=5 minSdk=1 targetSdk=1\n";
        assert_eq!(
            parse_dumpsys_package(text),
            Some(Version {
                code: 91,
                name: "1.9.1".into()
            })
        );
        assert_eq!(parse_dumpsys_package(""), None, "not installed");
        assert_eq!(
            parse_dumpsys_package(
                "Package [com.emanuelef.remote_capture] (1):\n    versionCode=x\n"
            ),
            None,
            "a garbled version is no version"
        );
        // Hostile text in the name is cut and cleaned.
        let v = parse_dumpsys_package(&format!(
            "Package [{PACKAGE}] (1):\n versionCode=86\n versionName=1\x1b[31m{}\n",
            "9".repeat(100)
        ))
        .unwrap();
        assert!(v.name.len() <= 40 && !v.name.contains('\x1b'), "{v:?}");
    }

    #[test]
    fn windows_that_hold_a_start() {
        assert_eq!(
            prompt_on_screen(&[node("ALLOW", &format!("{PACKAGE}:id/allow_btn"), PACKAGE)]),
            Some(Prompt::Consent)
        );
        assert_eq!(
            prompt_on_screen(&[node(
                "Connection request",
                "android:id/alertTitle",
                "com.android.vpndialogs"
            )]),
            Some(Prompt::Vpn)
        );
        assert_eq!(
            prompt_on_screen(&[node(
                "PCAPdroid simulates a VPN in order to capture",
                "android:id/message",
                PACKAGE
            )]),
            Some(Prompt::Vpn)
        );
        assert_eq!(
            prompt_on_screen(&[node("Phone", "", "com.android.launcher3")]),
            None
        );
    }

    #[test]
    fn the_key_never_shows() {
        let key = ApiKey::new("tTq4Wm9ZkR2pXv7LcN3bHs8YdF6gJe5A").unwrap();
        let options = Options {
            api_key: Some(key.clone()),
            ..Default::default()
        };
        for shown in [format!("{key}"), format!("{key:?}"), format!("{options:?}")] {
            assert!(!shown.contains("tTq4Wm9Z"), "{shown}");
        }
        assert!(ApiKey::new("has space").is_err());
        assert!(ApiKey::new("").is_err());
        assert!(ApiKey::new("\x07bell").is_err());
        let argv = am_command("start", Some(&key), &[("collector_port", "5123".into())]);
        assert_eq!(
            argv,
            [
                "am",
                "start",
                "-n",
                CAPTURE_CTRL,
                "-e",
                "action",
                "start",
                "-e",
                "api_key",
                "tTq4Wm9ZkR2pXv7LcN3bHs8YdF6gJe5A",
                "-e",
                "collector_port",
                "5123"
            ]
        );
    }

    #[test]
    fn stream_starts() {
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        pcap.extend_from_slice(&[0; 12]);
        pcap.extend_from_slice(&101u32.to_le_bytes());
        assert_eq!(
            classify_start(&pcap),
            Start::Capture {
                linktype: Some(101)
            }
        );
        assert_eq!(
            classify_start(b"\x0a\x0d\x0d\x0a"),
            Start::Capture { linktype: None }
        );
        assert_eq!(
            classify_start(b"HTTP/1.1 200 OK\r\nServer: x\r\n"),
            Start::NotPcap("48545450".into())
        );
    }
}
