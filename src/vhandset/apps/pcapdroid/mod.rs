//! PCAPdroid (`com.emanuelef.remote_capture`) on the virtual handset: the capture app a stock,
//! unrooted phone can run, driven over adb with its CaptureCtrl Intent API the way tattle's
//! `pcapdroid` capture source drives a real one.
//!
//! What it owns, following PCAPdroid v1.9.1 (`fc9fe0c5`) file by file (docs/research/pcapdroid-api.md
//! has the facts with their sources; `docs/virtual-handset.md` says what is covered):
//!
//! - `CaptureCtrl.onCreate` (activities/CaptureCtrl.java): the `action` and `api_key` extras, a valid
//!   key processes the request at once, anything else opens the consent window (adb has no calling
//!   package, so no "Forever" rule and no control app ever match); `processRequest` for `start`,
//!   `stop`, `get_status`; `checkRemoteServerNotAllowed`. The versions that had each piece (the
//!   `api_key` and the TCP exporter since 1.8.6, …) come from the persona's `version_code`.
//! - `CaptureSettings(Context, Intent)` (model/CaptureSettings.java): every extra read with its
//!   getString/getInt/getBool/getStringList rule (`Settings::from_intent`).
//! - `CaptureHelper.startCapture` (CaptureHelper.java): a running capture stops first; the VPN
//!   notice, then Android's ConfirmDialog, until the VPN was consented (or pre-consented with
//!   `appops set com.emanuelef.remote_capture ACTIVATE_VPN allow`, AOSP `Vpn.isVpnServicePreConsented`;
//!   that shortcut is **unverified on a device**, see the research page §3).
//! - `CaptureService` and the native dumper (`service`, `export`): the capture, the TCP exporter and
//!   its byte stream. The handset's "VPN" is its private network namespace's loopback; a handset
//!   without one cannot establish it, and the start fails as `establish()` failing does (toast
//!   `vpn_setup_failed`, nothing exported).
//! - its windows (`windows`) and what the buttons and BACK do.
//!
//! Toasts are not in a window dump; they are kept in `PhoneState::toasts` (tests read them), as are
//! CaptureCtrl's log lines (`PhoneState::log`).
//!
//! - TLS decryption with the PCAPdroid-mitm add-on (`mitm`): `tls_decryption`, `decryption_rules`,
//!   `sslkeylog_name`; no add-on → `mitm_start_failed` and no capture; the secrets of the connections
//!   the rules match go to the cached key log, which MainActivity's status observer copies to
//!   `Download/PCAPdroid/<sslkeylog_name>` once it is in front after the stop.
//!
//! Not emulated (documented in docs/virtual-handset.md): the UDP exporter, the HTTP server and
//! pcap_file dump modes (a start with them captures and exports nothing), pcapng (paid; v1.9.1 without
//! a licence dumps pcap), SOCKS5, `max_pkts_per_flow`, the `broadcast_receiver` broadcast, the app's
//! own main screen beyond its status observer, a real mitmproxy (the add-on's certificates, pinning
//! failures, its CA check).
//!
//! Must not touch: `am`'s parsing and printing (`shell::commands::activity` dispatches here), the
//! profile format (`profile::PcapdroidSetup` is read), the adbd (reverse connections are asked of
//! `adbd::Reverses`), the handset's traffic (only observed), anything above `vhandset`.

pub mod export;
pub mod mitm;
mod service;
pub mod windows;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Bundle, java_parse_int, java_split_commas};
use crate::vhandset::profile::PcapdroidSetup;
use crate::vhandset::shell::Handset;
use crate::vhandset::shell::ui::{self, Action, Screen};
pub use windows::{Button, Request, Window};

/// The package (app/build.gradle `applicationId`).
pub const PACKAGE: &str = "com.emanuelef.remote_capture";
/// The exported control activity (AndroidManifest.xml `.activities.CaptureCtrl`, singleTop).
pub const CAPTURE_CTRL: &str = "com.emanuelef.remote_capture.activities.CaptureCtrl";
/// The launcher activity (nothing of it is modelled beyond `am start` accepting it).
const MAIN_ACTIVITY: &str = "com.emanuelef.remote_capture.activities.MainActivity";
/// The app's uid on the handset (any app uid ≥ 10000 would do; `dumpsys package` shows it).
pub const UID: u32 = 10215;

/// strings.xml `ctrl_consent_allowed`: toasted by `processRequest`, i.e. for every processed request.
pub const TOAST_ALLOWED: &str = "PCAPdroid: the control request was allowed";
/// strings.xml `ctrl_consent_denied`: toasted by `abort()` (Deny, BACK, no action, unknown action, a
/// refused collector).
pub const TOAST_DENIED: &str = "PCAPdroid: the control request was denied";
/// strings.xml `vpn_setup_failed`: the VPN consent was cancelled, or `establish()` failed.
pub const VPN_SETUP_FAILED: &str =
    "Could not set up the VPN. Ensure that Always-on VPN is disabled";
/// strings.xml `root_capture_start_failed` (a root capture on a phone without root).
pub const ROOT_CAPTURE_START_FAILED: &str =
    "Capture start failure. Ensure that the device is rooted with Magisk";

/// strings.xml `remote_server_warning`. The resource ends in a stray unescaped `"`, which aapt reads
/// as a quoting mark and drops; the escaped `\"` around the address stay.
pub fn remote_server_warning(address: &str) -> String {
    format!(
        "For security reasons, sending traffic to the remote server \"{address}\" is not allowed"
    )
}

/// strings.xml `app_not_found`, formatted by CaptureService with the whole `app_filter` set
/// (`String.format(..., mSettings.app_filter)`: a HashSet's `toString`, `[a, b]`; Java's order is
/// the hash order, here the order given).
pub fn app_not_found(filter: &[String]) -> String {
    format!("Could not find the \"[{}]\" app", filter.join(", "))
}

/// Toasts and log lines kept per handset.
const KEPT: usize = 32;

/// What PCAPdroid and Android remember about it on the handset, beyond a capture: the `api_key`
/// preference, whether the VPN was consented, the toasts shown and CaptureCtrl's log.
#[derive(Clone, Default)]
pub struct PhoneState {
    api_key: Option<String>,
    /// Android authorised the app as a VPN (ConfirmDialog's OK: `setVpnPackageAuthorization`).
    pub vpn_consented: bool,
    pub toasts: VecDeque<String>,
    pub log: VecDeque<String>,
    /// The main activity (its service status observer), as far as the key log copy needs it.
    pub main: MainActivity,
}

/// PCAPdroid's MainActivity as its service status observer sees captures (MainActivity.onCreate,
/// `CaptureService.observeStatus`): it exists once launched (until the app's process dies), it learns
/// of a capture that ran while it existed, and it acts on the capture's end when it is in front again.
#[derive(Debug, Clone, Default)]
pub struct MainActivity {
    /// Launched since the app's process started.
    pub alive: bool,
    /// It saw the running capture's STARTED (`mWasStarted`).
    pub saw_started: bool,
    /// A capture it saw has stopped: what its STARTED → STOPPED branch will act on when it is in front.
    pub pending_stop: Option<EndedCapture>,
}

/// What MainActivity's observer reads of a stopped capture (`CaptureService.getCaptureSettings`,
/// `isDecryptingTLS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedCapture {
    pub api_capture: bool,
    pub decrypting: bool,
    pub sslkeylog_name: String,
}

/// The API key is a secret: `Debug` says whether one is set, never what it is.
impl std::fmt::Debug for PhoneState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneState")
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("vpn_consented", &self.vpn_consented)
            .field("toasts", &self.toasts)
            .finish_non_exhaustive()
    }
}

impl PhoneState {
    /// The state of a freshly set-up handset with this persona.
    pub fn new(setup: Option<&PcapdroidSetup>) -> PhoneState {
        PhoneState {
            api_key: setup.and_then(|s| s.api_key.clone()),
            vpn_consented: setup.is_some_and(|s| s.vpn_consented),
            toasts: VecDeque::new(),
            log: VecDeque::new(),
            main: MainActivity::default(),
        }
    }

    fn toast(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::debug!(toast = %text, "PCAPdroid");
        push_bounded(&mut self.toasts, text);
    }

    fn log(&mut self, line: impl Into<String>) {
        push_bounded(&mut self.log, line.into());
    }

    /// `pm clear`: the app's preferences go (the API key with them); Android's VPN authorisation is
    /// the system's and stays.
    pub fn clear_data(&mut self) {
        self.api_key = None;
    }
}

fn push_bounded(q: &mut VecDeque<String>, s: String) {
    if q.len() >= KEPT {
        q.pop_front();
    }
    q.push_back(s);
}

/// PCAPdroid as installed on this handset, if it is.
pub fn installed(handset: &Handset) -> Option<&PcapdroidSetup> {
    handset.profile().persona.pcapdroid.as_ref()
}

/// What `am start` reports for an Intent to PCAPdroid's package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Started; `activity` as `am start -W` prints it (`pkg/.cls`).
    Started { activity: String },
    /// START_DELIVERED_TO_TOP: CaptureCtrl (singleTop) is on top; it has no `onNewIntent`, so the
    /// Intent is dropped.
    DeliveredToTop { activity: String },
    /// START_CLASS_NOT_FOUND; `component` as `ComponentName.toShortString` (`{pkg/full.Class}`).
    ClassNotFound { component: String },
}

/// `ComponentName.flattenToShortString`.
fn short_name(class: &str) -> String {
    match class.strip_prefix(PACKAGE) {
        Some(rest) if rest.starts_with('.') => format!("{PACKAGE}/{rest}"),
        _ => format!("{PACKAGE}/{class}"),
    }
}

/// An `am start` of `PACKAGE/class` (the class already expanded, as `ComponentName.unflattenFromString`
/// does with a leading `.`). `None` when the package is not PCAPdroid's.
pub fn start_activity(
    handset: &Arc<Handset>,
    package: &str,
    class: &str,
    extras: &Bundle,
) -> Option<Launch> {
    if package != PACKAGE {
        return None;
    }
    let not_found = || Launch::ClassNotFound {
        component: format!("{{{PACKAGE}/{class}}}"),
    };
    let Some(setup) = installed(handset) else {
        return Some(not_found());
    };
    let version = setup.version_code;
    match class {
        // CaptureCtrl and the Intent API appeared in 1.4.2 (versionCode 36).
        CAPTURE_CTRL if version >= 36 => {}
        MAIN_ACTIVITY => {
            main_activity_in_front(handset);
            return Some(Launch::Started {
                activity: short_name(class),
            });
        }
        _ => return Some(not_found()),
    }
    let activity = short_name(class);
    {
        let st = handset.state();
        if let Screen::Pcapdroid(w) = &st.ui.screen
            && w.is_capture_ctrl()
        {
            return Some(Launch::DeliveredToTop { activity });
        }
    }
    on_create(handset, version, extras);
    Some(Launch::Started { activity })
}

/// `CaptureCtrl.onCreate`.
fn on_create(handset: &Arc<Handset>, version: u32, extras: &Bundle) {
    let Some(action) = extras.string("action").map(str::to_string) else {
        let mut st = handset.state();
        st.pcapdroid.log("no action provided");
        st.pcapdroid.toast(TOAST_DENIED);
        return;
    };
    let request = Request {
        action,
        extras: extras.clone(),
    };
    if request.action == "get_peer_info" {
        // Only PCAPdroid's debug build may ask, and adb has no calling package: abort(false).
        handset
            .state()
            .pcapdroid
            .log("getPeerInfo: package name mismatch");
        return;
    }
    // The api_key extra exists since 1.8.6; a wrong or unset key is no error, the consent follows.
    let key_ok = version >= 86 && {
        let st = handset.state();
        match (extras.string("api_key"), &st.pcapdroid.api_key) {
            (Some(given), Some(mine)) => !mine.is_empty() && given == mine,
            _ => false,
        }
    };
    if key_ok {
        process_request(handset, request);
        return;
    }
    // No "Forever" rule and no control app can match a caller that has no package: the window.
    handset.state().ui.open(Screen::Pcapdroid(Window::Consent {
        request,
        shown_at: Instant::now(),
    }));
}

/// `CaptureCtrl.processRequest`.
fn process_request(handset: &Arc<Handset>, request: Request) {
    let version = installed(handset).map_or(0, |s| s.version_code);
    handset.state().pcapdroid.toast(TOAST_ALLOWED);
    match request.action.as_str() {
        "start" => {
            handset
                .state()
                .pcapdroid
                .log("Starting capture, caller=null");
            let settings = match Settings::from_intent(&request.extras, version) {
                Ok(s) => s,
                Err(crash) => {
                    // An uncaught exception in onCreate: the app's process dies (inferred).
                    handset.state().pcapdroid.log(crash);
                    return;
                }
            };
            if let Some(server) = settings.remote_server_not_allowed(version) {
                let mut st = handset.state();
                st.pcapdroid.toast(remote_server_warning(&server));
                st.pcapdroid.toast(TOAST_DENIED);
                return;
            }
            start_capture(handset, request, settings);
        }
        "stop" => {
            handset.state().pcapdroid.log("Stopping capture");
            handset.pcapdroid().stop(Stop::Flush);
        }
        // get_status (1.4.4+): the result goes to an activity result adb cannot read.
        "get_status" if version >= 39 => handset.state().pcapdroid.log("Returning status"),
        other => {
            let mut st = handset.state();
            st.pcapdroid.log(format!("unknown action: {other}"));
            st.pcapdroid.toast(TOAST_DENIED);
        }
    }
}

/// `CaptureHelper.startCapture`: a running capture stops; root capture needs no VPN; otherwise the
/// VPN must be prepared (consented before, or pre-consented by appops), else the notice shows.
fn start_capture(handset: &Arc<Handset>, request: Request, settings: Settings) {
    handset.pcapdroid().stop(Stop::Flush);
    if settings.root_capture {
        if handset.state().has_su() {
            handset.pcapdroid().start(handset, settings);
        } else {
            // pcapd cannot start without root: reportError("pcapd daemon did not spawn").
            handset.state().pcapdroid.toast(ROOT_CAPTURE_START_FAILED);
        }
        return;
    }
    let prepared = {
        let st = handset.state();
        st.pcapdroid.vpn_consented || st.appop(PACKAGE, "ACTIVATE_VPN") == Some("allow")
    };
    if prepared {
        handset.pcapdroid().start(handset, settings);
    } else {
        handset
            .state()
            .ui
            .open(Screen::Pcapdroid(Window::VpnNotice { request }));
    }
}

/// The foreground PCAPdroid window, if one is.
fn foreground(handset: &Handset) -> Option<Window> {
    match &handset.state().ui.screen {
        Screen::Pcapdroid(w) => Some(w.clone()),
        _ => None,
    }
}

fn close_windows(handset: &Handset) {
    handset
        .state()
        .ui
        .close_where(|s| matches!(s, Screen::Pcapdroid(_)));
}

/// `input tap X Y` while a PCAPdroid window is in front: true when it was (the tap is handled here,
/// whatever it hit).
pub fn on_tap(handset: &Arc<Handset>, x: i32, y: i32) -> bool {
    let Some(window) = foreground(handset) else {
        return false;
    };
    let Some(Action::Pcapdroid(button)) = ui::hit(&window.tree(Instant::now()), x, y) else {
        return true;
    };
    let request = window.request().clone();
    match button {
        // controlAction: no calling app, so no rule is stored; then processRequest or abort.
        Button::Allow => {
            close_windows(handset);
            process_request(handset, request);
        }
        Button::Deny => {
            close_windows(handset);
            handset.state().pcapdroid.toast(TOAST_DENIED);
        }
        // mLauncher.launch(prepareIntent): Android's ConfirmDialog on top.
        Button::NoticeOk => {
            let mut st = handset.state();
            st.ui.back();
            st.ui
                .open(Screen::Pcapdroid(Window::VpnConfirm { request }));
        }
        // ConfirmDialog.onClick: prepareVpn + setVpnPackageAuthorization, RESULT_OK; then
        // captureServiceResult → startCaptureOk, and CaptureCtrl finishes.
        Button::ConfirmOk => {
            close_windows(handset);
            handset.state().pcapdroid.vpn_consented = true;
            let version = installed(handset).map_or(0, |s| s.version_code);
            match Settings::from_intent(&request.extras, version) {
                Ok(settings) => handset.pcapdroid().start(handset, settings),
                Err(crash) => handset.state().pcapdroid.log(crash),
            }
        }
        // RESULT_CANCELED: captureServiceResult toasts vpn_setup_failed; CaptureCtrl finishes.
        Button::ConfirmCancel => {
            close_windows(handset);
            handset.state().pcapdroid.toast(VPN_SETUP_FAILED);
        }
    }
    true
}

/// `input keyevent CODE` while a PCAPdroid window is in front: true when the key was handled here.
/// Only BACK differs from the other screens: CaptureCtrl.onBackPressed aborts (toast denied), the
/// notice's cancel listener fails the start (toast vpn_setup_failed), ConfirmDialog ignores it.
pub fn on_key(handset: &Arc<Handset>, code: u32) -> bool {
    const BACK: u32 = 4;
    let Some(window) = foreground(handset) else {
        return false;
    };
    if code != BACK {
        return false;
    }
    match window {
        Window::Consent { .. } => {
            close_windows(handset);
            handset.state().pcapdroid.toast(TOAST_DENIED);
        }
        Window::VpnNotice { .. } => {
            close_windows(handset);
            handset.state().pcapdroid.toast(VPN_SETUP_FAILED);
        }
        Window::VpnConfirm { .. } => {}
    }
    true
}

/// `am force-stop com.emanuelef.remote_capture`: the process dies, its windows go, the exporter's
/// socket is closed by the kernel without the records still buffered.
pub fn force_stop(handset: &Handset) {
    handset.pcapdroid().stop(Stop::Kill);
    close_windows(handset);
    handset.state().pcapdroid.main = MainActivity::default();
}

/// MainActivity comes to the front (`am start`, singleTop): created if it was not, and its status
/// observer becomes active: a capture it saw stop is acted on now (MainActivity.java lines 196–245):
/// for an API capture that decrypted TLS, the cached key log is copied to
/// `Download/PCAPdroid/<sslkeylog_name>` when a name was given, then deleted.
///
/// The copy is seen in two stages, as v1.9.1's is: `Utils.getDownloadsUri` first inserts the
/// Downloads entry (Android 10+: a MediaStore insert, which creates the empty file; before 10: the
/// file is opened), and only then does `Utils.copy` stream the cache into it (MainActivity.java
/// lines 196–245, Utils.java `getDownloadsUri`, `copy`). A reader polling the Downloads entry can
/// find it empty for a moment: here for `KEYLOG_COPY_GAP`.
fn main_activity_in_front(handset: &Arc<Handset>) {
    let mut st = handset.state();
    st.pcapdroid.main.alive = true;
    if is_running(handset) {
        st.pcapdroid.main.saw_started = true;
    }
    let Some(ended) = st.pcapdroid.main.pending_stop.take() else {
        return;
    };
    let cached = st.fs.read(mitm::KEYLOG_CACHE).ok().map(<[u8]>::to_vec);
    let Some(keys) = cached.filter(|_| ended.decrypting) else {
        return;
    };
    if !ended.api_capture {
        // A capture started in the app offers the key log in a file picker: not modelled.
        return;
    }
    let _ = st.fs.remove(mitm::KEYLOG_CACHE);
    if ended.sslkeylog_name.trim().is_empty() {
        return;
    }
    let path = format!("{}/{}", mitm::DOWNLOADS_DIR, ended.sslkeylog_name);
    let now = crate::vhandset::shell::now_secs();
    // Stage 1: the entry exists, empty.
    let inserted = st
        .fs
        .mkdir_all(mitm::DOWNLOADS_DIR)
        .and_then(|()| st.fs.write(&path, Vec::new(), 0o660, now));
    if let Err(e) = inserted {
        tracing::debug!(
            ?e,
            "PCAPdroid: the key log's Downloads entry could not be made"
        );
        st.pcapdroid.toast("Export failed");
        return;
    }
    drop(st);
    // Stage 2: the copy, a moment later (the cache's bytes were read before its deletion above,
    // as the copy's input stream holds the open file).
    let copy = {
        let handset = Arc::clone(handset);
        move || {
            let mut st = handset.state();
            let now = crate::vhandset::shell::now_secs();
            match st.fs.write(&path, keys, 0o660, now) {
                Ok(()) => st.pcapdroid.toast(mitm::SAVE_OK),
                Err(e) => {
                    tracing::debug!(?e, "PCAPdroid: the key log could not be exported");
                    st.pcapdroid.toast("Export failed");
                }
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                tokio::time::sleep(KEYLOG_COPY_GAP).await;
                copy();
            });
        }
        Err(_) => copy(),
    }
}

/// How long the virtual PCAPdroid's Downloads entry stays empty before its copy lands: longer than
/// a 250 ms poll, shorter than two (a real copy of a small key log is quicker, a slow MediaStore or a
/// big log slower; the gap only has to be observable).
pub const KEYLOG_COPY_GAP: std::time::Duration = std::time::Duration::from_millis(400);

/// The capture ended: MainActivity's observer, if it saw it run, will act on it once in front.
pub(crate) fn capture_ended(handset: &Handset, ended: EndedCapture) {
    let mut st = handset.state();
    if std::mem::take(&mut st.pcapdroid.main.saw_started) {
        st.pcapdroid.main.pending_stop = Some(ended);
    }
}

/// Whether a capture is running (CaptureService.isServiceActive).
pub fn is_running(handset: &Handset) -> bool {
    handset.pcapdroid().is_running()
}

/// The `Package [com.emanuelef.remote_capture]` section of `dumpsys package`, as
/// `Settings.dumpPackageLPr` prints it (frameworks/base services/core/java/com/android/server/pm/
/// Settings.java): `versionCode=… minSdk=… targetSdk=…` and `versionName=…` lines among the rest.
/// minSdk 21 and targetSdk 35 are v1.9.1's app/build.gradle; paths and dates are made up.
pub fn dumpsys_package(handset: &Handset) -> Option<String> {
    let setup = installed(handset)?;
    let abi = handset
        .state()
        .props
        .get("ro.product.cpu.abi")
        .cloned()
        .unwrap_or_else(|| "arm64-v8a".into());
    let code = "/data/app/~~f3Kq0Zr9TnWb1xYpL2cVhA==/com.emanuelef.remote_capture-Qm7sD4gE8uJ5oR1tN6yXkw==";
    Some(format!(
        "Packages:
  Package [{PACKAGE}] (7c1e5a2):
    userId={UID}
    pkg=Package{{3b9f0d4 {PACKAGE}}}
    codePath={code}
    resourcePath={code}
    legacyNativeLibraryDir={code}/lib
    extractNativeLibs=false
    primaryCpuAbi={abi}
    secondaryCpuAbi=null
    cpuAbiOverride=null
    versionCode={} minSdk=21 targetSdk=35
    minExtensionVersions=[]
    versionName={}
    usesNonSdkApi=false
    splits=[base]
    apkSigningVersion=2
    flags=[ HAS_CODE ALLOW_CLEAR_USER_DATA ALLOW_BACKUP ]
    timeStamp=2026-11-02 10:14:07
    firstInstallTime=2026-11-02 10:14:09
    lastUpdateTime=2026-11-02 10:14:09
    installerPackageName=org.fdroid.fdroid
",
        setup.version_code, setup.version_name
    ))
}

/// The APK path `pm path` and `pm list packages -f` show.
pub const APK_PATH: &str = "/data/app/~~f3Kq0Zr9TnWb1xYpL2cVhA==/com.emanuelef.remote_capture-Qm7sD4gE8uJ5oR1tN6yXkw==/base.apk";

// ---- CaptureSettings ----

/// `Prefs.DumpMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpMode {
    None,
    HttpServer,
    PcapFile,
    UdpExporter,
    TcpExporter,
}

/// What `CaptureSettings(Context, Intent)` reads, for the parts the handset acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub dump_mode: DumpMode,
    pub app_filter: Vec<String>,
    pub collector_address: String,
    pub collector_port: i32,
    pub snaplen: i32,
    pub max_dump_size: i32,
    pub dump_extensions: bool,
    /// Always false here: pcapng needs the paid `pcapng` SKU, which the handset's PCAPdroid lacks.
    pub pcapng_format: bool,
    pub root_capture: bool,
    pub socks5_enabled: bool,
    pub socks5_proxy_address: String,
    /// `tls_decryption` (1.5.0+; `tls_decryption_enabled` before).
    pub tls_decryption: bool,
    /// `sslkeylog_name` (1.8.8+): where MainActivity copies the key log in Downloads/PCAPdroid.
    pub sslkeylog_name: String,
    /// `decryption_rules` (1.8.8+), parsed; `None`: the user's decryption list (empty here).
    pub decryption_rules: Option<mitm::DecryptionRules>,
}

impl Settings {
    /// Reads the Intent's extras as `CaptureSettings` does at `version` (a versionCode): strings with
    /// getStringExtra, ints as a String through Integer.parseInt or else an Integer, booleans as a
    /// String through Boolean.parseBoolean or else a Boolean, lists split on commas. A String that is
    /// no number throws NumberFormatException, which nothing catches: the error is that crash.
    pub fn from_intent(extras: &Bundle, version: u32) -> Result<Settings, String> {
        let string = |k: &str, d: &str| extras.string(k).unwrap_or(d).to_string();
        let int = |k: &str, d: i32| -> Result<i32, String> {
            match extras.string(k) {
                Some(s) => java_parse_int(s).ok_or_else(|| {
                    format!("java.lang.NumberFormatException: For input string: \"{s}\"")
                }),
                None => Ok(extras.int(k, d)),
            }
        };
        let boolean = |k: &str, d: bool| match extras.string(k) {
            Some(s) => s.eq_ignore_ascii_case("true"),
            None => extras.boolean(k, d),
        };
        // tcp_exporter is known from 1.8.6; Prefs.getDumpMode maps anything unknown to NONE.
        let dump_mode = match string("pcap_dump_mode", "none").as_str() {
            "http_server" => DumpMode::HttpServer,
            "pcap_file" => DumpMode::PcapFile,
            "udp_exporter" => DumpMode::UdpExporter,
            "tcp_exporter" if version >= 86 => DumpMode::TcpExporter,
            _ => DumpMode::None,
        };
        // A comma-separated list since 1.7.0; before, one package name.
        let app_filter = match extras.string("app_filter") {
            None => Vec::new(),
            Some(s) if version < 73 || !s.contains(',') => vec![s.to_string()],
            Some(s) => java_split_commas(s),
        };
        let since = |v: u32, value: Result<i32, String>| if version >= v { value } else { Ok(0) };
        Ok(Settings {
            dump_mode,
            app_filter,
            collector_address: string("collector_ip_address", "127.0.0.1"),
            collector_port: int("collector_port", 1234)?,
            snaplen: since(46, int("snaplen", 0))?,
            max_dump_size: since(46, int("max_dump_size", 0))?,
            dump_extensions: (version >= 79 && boolean("dump_extensions", false))
                || boolean("pcapdroid_trailer", false),
            // `getBool(...) && isPurchased(PCAPNG_SKU)`: without the licence, plain pcap.
            pcapng_format: false,
            root_capture: boolean("root_capture", false),
            socks5_enabled: version >= 51 && boolean("socks5_enabled", false),
            socks5_proxy_address: string("socks5_proxy_ip_address", "0.0.0.0"),
            tls_decryption: if version >= 51 {
                boolean("tls_decryption", false)
            } else {
                boolean("tls_decryption_enabled", false)
            },
            sslkeylog_name: if version >= 89 {
                string("sslkeylog_name", "")
            } else {
                String::new()
            },
            decryption_rules: extras
                .string("decryption_rules")
                .filter(|r| version >= 89 && !r.trim().is_empty())
                .and_then(|r| mitm::DecryptionRules::from_json(&format!("{{\"rules\":{r}}}"))),
        })
    }

    /// `checkRemoteServerNotAllowed` (1.5.3+): an exporter's collector, or the SOCKS5 proxy, that is
    /// not in a subnet of one of the phone's interfaces and is not the address already saved in
    /// PCAPdroid's settings (the default `127.0.0.1`). A host name is never local
    /// (`validateIpAddress` first). The handset's interfaces: `lo`, 127.0.0.0/8 and ::1.
    pub fn remote_server_not_allowed(&self, version: u32) -> Option<String> {
        if version < 57 {
            return None;
        }
        const SAVED: &str = "127.0.0.1";
        let exporter = matches!(
            self.dump_mode,
            DumpMode::UdpExporter | DumpMode::TcpExporter
        );
        if exporter && !is_local(&self.collector_address) && self.collector_address != SAVED {
            return Some(self.collector_address.clone());
        }
        if self.socks5_enabled
            && !is_local(&self.socks5_proxy_address)
            && self.socks5_proxy_address != "0.0.0.0"
        {
            return Some(self.socks5_proxy_address.clone());
        }
        None
    }
}

/// `Utils.isLocalNetworkAddress` on the handset: an IP literal in one of its interfaces' subnets.
fn is_local(address: &str) -> bool {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback(),
        Ok(IpAddr::V6(a)) => a.is_loopback(),
        Err(_) => false,
    }
}

// ---- the running capture ----

/// How a capture is asked to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Running,
    /// `stop`, or a new start: the buffer is exported, then the exporter's socket closed.
    Flush,
    /// The process dies (force-stop): the socket closes, the buffer is lost.
    Kill,
}

struct Running {
    stop: watch::Sender<Stop>,
    task: JoinHandle<()>,
}

/// CaptureService: at most one capture per handset.
#[derive(Default)]
pub struct Service {
    current: Mutex<Option<Running>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("running", &self.is_running())
            .finish()
    }
}

impl Service {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a capture is running.
    pub fn is_running(&self) -> bool {
        self.lock().as_ref().is_some_and(|r| !r.task.is_finished())
    }

    /// Asks the running capture, if any, to end.
    pub(crate) fn stop(&self, how: Stop) {
        if let Some(r) = self.lock().as_ref() {
            r.stop.send_replace(how);
        }
    }

    /// `startCaptureOk`: CaptureService starts with `settings`, after the previous capture (stopped
    /// by `startCapture`) has ended.
    fn start(&self, handset: &Arc<Handset>, settings: Settings) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("PCAPdroid: no async runtime to capture in");
            return;
        };
        let mut current = self.lock();
        let previous = current.take().map(|r| {
            r.stop.send_replace(Stop::Flush);
            r.task
        });
        let (tx, rx) = watch::channel(Stop::Running);
        let task = rt.spawn(service::run(handset.clone(), settings, previous, rx));
        *current = Some(Running { stop: tx, task });
    }
}

#[cfg(test)]
mod tests;
