//! The handset's shell: an Android-like `/system/bin/sh` for the commands scenarios use, and the
//! handset's shared state (`Handset`: properties, settings, contacts, SMS, files, the screens, whether
//! adbd runs as root, when the last boot completes) that every stream of every connection sees.
//!
//! Submodules: `parse` (command line → script), `commands` (getprop, am, pm, input, service, date, ls, …,
//! one file per family), `providers` (contacts/SMS/settings tables, with the `settings` and `content`
//! commands), `fs` (the in-memory file system also used by `sync`), `ui` (the screens, taps and keys,
//! and `uiautomator dump`'s XML).
//!
//! Who runs a command: uid 2000 (`shell`), or uid 0 after `adb root` or under `su` (the `su` of the
//! profile's generation, present on userdebug/eng builds: AOSP ships it in PRODUCT_PACKAGES_DEBUG).
//!
//! Events (`SetupComplete`, `ContactAdded`, `SmsSent`) are emitted after the state lock is released,
//! through the handset's network, and kept in a small log for tests.
//!
//! Must not touch: the ADB wire protocol (`adbd`), traffic generation (`network`), the host's files.

pub mod commands;
pub mod fs;
pub mod parse;
pub mod providers;
pub mod ui;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::network::HandsetNetwork;
use super::{HandsetEvent, Profile, ShellIo};
use parse::{Connector, Part, Pipeline, RedirOp, SimpleCommand, Word};

/// Events kept for inspection.
const EVENT_LOG: usize = 256;
/// Output of one command held in memory (pipes, captures).
const MAX_CAPTURE: usize = 64 * 1024 * 1024;
/// Deepest `sh -c` nesting.
const MAX_DEPTH: usize = 8;
/// Chunk size when sending output to the host.
const CHUNK: usize = 64 * 1024;

pub use ui::Compose;

/// uid of the adb shell.
pub const SHELL_UID: u32 = 2000;
/// uid of root (`adb root`, `su`).
pub const ROOT_UID: u32 = 0;

/// Properties init sets when the boot completes (`sys.boot_completed` by ActivityManagerService,
/// `dev.bootcomplete` by init.rc on boot completion); a reboot clears them until then.
const BOOT_PROPS: [&str; 2] = ["sys.boot_completed", "dev.bootcomplete"];

/// Everything a handset remembers.
#[derive(Debug, Clone)]
pub struct State {
    pub props: BTreeMap<String, String>,
    pub settings: providers::Settings,
    pub providers: providers::Providers,
    pub fs: fs::MemFs,
    /// The foreground screen (launcher, dialer, compose, contacts editor).
    pub ui: ui::Ui,
    /// adbd restarted as root (`adb root` on a build with `ro.debuggable=1`); a reboot ends it.
    pub adbd_root: bool,
    /// App operation modes set with `appops set`, by (package, operation debug name).
    pub appops: BTreeMap<(String, String), String>,
    /// What PCAPdroid remembers (its API key, the VPN consent, its toasts), when the persona has it.
    pub pcapdroid: crate::vhandset::apps::pcapdroid::PhoneState,
    /// When the boot in progress completes (`None`: booted).
    boot_done_at: Option<Instant>,
}

impl State {
    fn fresh(profile: &Profile) -> Self {
        let mut props = profile.props.clone();
        for (k, v) in [
            ("ro.build.version.sdk", "33"),
            ("ro.build.version.release", "13"),
            ("ro.product.manufacturer", "Google"),
            ("ro.product.brand", "Android"),
            ("ro.product.cpu.abi", "arm64-v8a"),
            ("ro.hardware", "virtual"),
            ("ro.debuggable", "0"),
            ("ro.secure", "1"),
            ("sys.boot_completed", "1"),
            ("dev.bootcomplete", "1"),
            ("persist.sys.timezone", "UTC"),
            ("gsm.sim.state", "LOADED"),
        ] {
            props.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        if let Some(serial) = profile
            .identifiers
            .get(tattle_analysis::identifier::kinds::SERIAL)
        {
            props
                .entry("ro.serialno".into())
                .or_insert_with(|| serial.clone());
        }
        let android_id = profile
            .identifiers
            .get(tattle_analysis::identifier::kinds::ANDROID_ID)
            .cloned()
            .unwrap_or_default();
        let mut fs = fs::MemFs::new(fs::DEFAULT_LIMIT, now_secs());
        // The shell's $EXTERNAL_STORAGE (where `uiautomator dump` writes by default).
        let _ = fs.mkdir_all(profile.generation.ui.external_storage);
        State {
            props,
            settings: providers::Settings::defaults(&android_id),
            providers: providers::Providers::default(),
            fs,
            ui: ui::Ui::default(),
            adbd_root: false,
            appops: BTreeMap::new(),
            pcapdroid: crate::vhandset::apps::pcapdroid::PhoneState::new(
                profile.persona.pcapdroid.as_ref(),
            ),
            boot_done_at: None,
        }
    }

    /// The mode `appops set` gave `op` (a debug name such as `ACTIVATE_VPN`) for `package`.
    pub fn appop(&self, package: &str, op: &str) -> Option<&str> {
        self.appops
            .get(&(package.to_string(), op.to_string()))
            .map(String::as_str)
    }

    /// The compose screen, when it is in the foreground.
    pub fn compose(&self) -> Option<&Compose> {
        self.ui.compose()
    }

    /// Sets the boot-completed properties once the boot in progress is done.
    pub fn settle_boot(&mut self) {
        if let Some(at) = self.boot_done_at
            && Instant::now() >= at
        {
            self.boot_done_at = None;
            for k in BOOT_PROPS {
                self.props.insert(k.to_string(), "1".to_string());
            }
        }
    }

    /// Whether the build lets adbd run as root: adbd's `restart_root_service` checks
    /// `ro.debuggable` (system/core adb/services.c at android-4.4.3_r1, adb/services.cpp at 9).
    pub fn debuggable(&self) -> bool {
        self.props.get("ro.debuggable").map(String::as_str) == Some("1")
    }

    /// Whether `/system/xbin/su` exists: AOSP builds it only for userdebug and eng builds.
    pub fn has_su(&self) -> bool {
        matches!(
            self.props.get("ro.build.type").map(String::as_str),
            Some("userdebug" | "eng")
        )
    }

    /// `ro.build.version.sdk` as a number (33 when absent or odd).
    pub fn sdk(&self) -> u32 {
        self.props
            .get("ro.build.version.sdk")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(33)
    }
}

/// One virtual handset's shared state and its link to the network.
pub struct Handset {
    profile: Arc<Profile>,
    network: Option<Arc<HandsetNetwork>>,
    state: Mutex<State>,
    events: Mutex<VecDeque<HandsetEvent>>,
    /// Bumped on each reboot; adbd connections watch it and drop.
    reboot_gen: tokio::sync::watch::Sender<u64>,
    /// `adb reverse` forwards: the way the handset's apps reach the host.
    reverses: crate::vhandset::adbd::Reverses,
    /// PCAPdroid's capture service (at most one capture).
    pcapdroid: crate::vhandset::apps::pcapdroid::Service,
}

impl std::fmt::Debug for Handset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handset")
            .field("profile", &self.profile.name)
            .finish()
    }
}

impl Handset {
    /// A handset in its factory state. `network` is where events go (none in unit tests).
    pub fn new(profile: Arc<Profile>, network: Option<Arc<HandsetNetwork>>) -> Arc<Handset> {
        Arc::new(Handset {
            state: Mutex::new(State::fresh(&profile)),
            profile,
            network,
            events: Mutex::new(VecDeque::new()),
            reboot_gen: tokio::sync::watch::Sender::new(0),
            reverses: Default::default(),
            pcapdroid: Default::default(),
        })
    }

    /// PCAPdroid's capture service on this handset.
    pub fn pcapdroid(&self) -> &crate::vhandset::apps::pcapdroid::Service {
        &self.pcapdroid
    }

    /// An SMS from `from` arrives (the emulator console's `sms send`): it lands in the inbox.
    pub fn receive_sms(&self, from: &str, body: &str) {
        self.state().providers.deliver_sms(from, body, now_ms());
    }

    /// The `adb reverse` forwards installed on the handset.
    pub fn reverses(&self) -> &crate::vhandset::adbd::Reverses {
        &self.reverses
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn network(&self) -> Option<&HandsetNetwork> {
        self.network.as_deref()
    }

    /// The state, locked. Never hold it across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-built in a way that matters more
        // than losing the handset, so keep going with what is there.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // The build's TLS key log reaches its file before anyone can look at the files.
        if let (Some(path), Some(network)) = (&self.profile.persona.tls_keylog, &self.network) {
            let lines = network.take_key_log();
            if !lines.is_empty()
                && let Err(e) = state.fs.append(path, &lines, now_secs())
            {
                tracing::warn!(path, error = ?e, "the handset's TLS key log could not be written");
            }
        }
        state
    }

    /// Back to the factory state (files, contacts, SMS, settings, props).
    pub fn reset(&self) {
        *self.state() = State::fresh(&self.profile);
    }

    /// A reboot: what lives only in memory of running apps (the compose screen, non-persistent
    /// properties set with `setprop`) is lost; stored data (files, contacts, SMS, settings) stays.
    /// Every adb connection is dropped; the adb server reconnects on its own.
    pub fn reboot(&self) {
        self.forget_volatile_state();
        self.drop_connections();
    }

    /// The state part of a reboot: running apps, adbd's root and the boot-completed properties go; the
    /// boot takes the profile's `boot_seconds` again.
    pub fn forget_volatile_state(&self) {
        // Running apps die: a PCAPdroid capture ends as a killed process's does.
        crate::vhandset::apps::pcapdroid::force_stop(self);
        {
            let mut st = self.state();
            st.ui = ui::Ui::default();
            st.adbd_root = false;
            let fresh = State::fresh(&self.profile).props;
            st.props
                .retain(|k, _| k.starts_with("persist.") || fresh.contains_key(k));
            for (k, v) in fresh {
                if !k.starts_with("persist.") {
                    st.props.insert(k, v);
                }
            }
            for k in BOOT_PROPS {
                st.props.remove(k);
            }
            st.boot_done_at =
                Some(Instant::now() + Duration::from_secs_f64(self.profile.persona.boot_seconds));
        }
    }

    /// The context the screens are built in.
    pub fn ui_context(&self) -> ui::Context<'_> {
        ui::Context {
            generation: self.profile.generation,
            profile: &self.profile,
        }
    }

    /// The connection part of a reboot: every adb connection drops.
    pub fn drop_connections(&self) {
        self.reboot_gen.send_modify(|g| *g += 1);
    }

    /// Notifies on every reboot.
    pub fn reboots(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reboot_gen.subscribe()
    }

    /// Raises an event: logged here and played by the network.
    pub fn emit(&self, event: HandsetEvent) {
        tracing::info!(event = ?event, "handset event");
        {
            let mut log = self.events.lock().unwrap_or_else(|e| e.into_inner());
            if log.len() >= EVENT_LOG {
                log.pop_front();
            }
            log.push_back(event.clone());
        }
        if let Some(net) = &self.network {
            net.emit(event);
        }
    }

    /// Events raised so far (the last few hundred).
    pub fn events(&self) -> Vec<HandsetEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// bionic's passwd entries for the AIDs `su` is asked for (android_filesystem_config.h).
fn user_id(name: &str) -> Option<u32> {
    Some(match name {
        "root" => 0,
        "system" => 1000,
        "radio" => 1001,
        "shell" => 2000,
        _ => return None,
    })
}

/// C `atoi`: optional sign and leading digits, 0 when there are none.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let n: i64 = digits
        .chars()
        .take_while(char::is_ascii_digit)
        .take(18)
        .fold(0, |acc, c| acc * 10 + i64::from(c as u8 - b'0'));
    if neg { -n } else { n }
}

/// `strtoul` that must convert at least one digit.
fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        None
    } else {
        Some(digits.parse().unwrap_or(u32::MAX))
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ---------------------------------------------------------------------------------------------------
// Execution

/// Where one of a command's output streams goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sink {
    Stdout,
    Stderr,
    Null,
    File {
        path: String,
        append: bool,
    },
    /// Into the next command of a pipeline.
    Pipe,
}

/// The host went away: stop the whole script.
struct Gone;

struct Session {
    handset: Arc<Handset>,
    stdout: mpsc::Sender<Vec<u8>>,
    stderr: mpsc::Sender<Vec<u8>>,
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    last: i32,
    vars: BTreeMap<String, String>,
    exit: Option<i32>,
    /// Nesting of `sh -c` and `su`.
    depth: usize,
    /// Who runs the commands: `SHELL_UID`, or `ROOT_UID` after `adb root` or under `su`.
    uid: u32,
}

/// Runs one command line (what `adb shell CMD` / `exec:CMD` carry) and returns its exit status.
pub async fn run_command(handset: Arc<Handset>, line: &str, io: ShellIo) -> i32 {
    let mut session = Session::new(handset, io);
    session.run_line(line).await.unwrap_or(255)
}

/// An interactive shell: runs each line read from stdin until `exit` or EOF. On a terminal (`tty`) it
/// prompts and echoes what is typed, like mksh under a pty; without one it just reads commands.
pub async fn run_interactive(handset: Arc<Handset>, io: ShellIo, tty: bool) -> i32 {
    let device = handset
        .state()
        .props
        .get("ro.product.device")
        .cloned()
        .unwrap_or_else(|| "generic".into());
    let mut session = Session::new(handset, io);
    // mksh's PS1: `#` for root.
    let sign = if session.uid == ROOT_UID { '#' } else { '$' };
    let prompt = if tty {
        format!("{device}:/ {sign} ")
    } else {
        String::new()
    };
    let Some(mut stdin) = session.stdin.take() else {
        return 0;
    };
    let mut line: Vec<u8> = Vec::new();
    if tty
        && session
            .stdout
            .send(prompt.clone().into_bytes())
            .await
            .is_err()
    {
        return 0;
    }
    let echo = |session: &Session, bytes: Vec<u8>| {
        // Best effort: a full terminal must not stall the shell.
        if tty {
            let _ = session.stdout.try_send(bytes);
        }
    };
    loop {
        let chunk = match stdin.recv().await {
            Some(c) => c,
            None => {
                // EOF: a last line without newline still runs.
                if !line.is_empty() {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    if session.run_line(&text).await.is_err() {
                        return session.last;
                    }
                }
                return session.exit.unwrap_or(session.last);
            }
        };
        for b in chunk {
            match b {
                b'\r' | b'\n' => {
                    echo(&session, b"\r\n".to_vec());
                    let text = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    if session.run_line(&text).await.is_err() {
                        return session.last;
                    }
                    if let Some(code) = session.exit {
                        return code;
                    }
                    if tty
                        && session
                            .stdout
                            .send(prompt.clone().into_bytes())
                            .await
                            .is_err()
                    {
                        return session.last;
                    }
                }
                // Ctrl-D on an empty line ends a terminal session, like mksh.
                4 if tty && line.is_empty() => return session.last,
                3 if tty => {
                    line.clear();
                    echo(&session, format!("^C\r\n{prompt}").into_bytes());
                }
                0x7f | 8 if tty => {
                    if line.pop().is_some() {
                        echo(&session, b"\x08 \x08".to_vec());
                    }
                }
                b => {
                    if line.len() < parse::MAX_LINE {
                        line.push(b);
                        echo(&session, vec![b]);
                    }
                }
            }
        }
    }
}

impl Session {
    fn new(handset: Arc<Handset>, io: ShellIo) -> Self {
        let uid = if handset.state().adbd_root {
            ROOT_UID
        } else {
            SHELL_UID
        };
        let storage = handset.profile().generation.ui.external_storage;
        let mut vars = BTreeMap::new();
        for (k, v) in [
            (
                "PATH",
                "/product/bin:/apex/com.android.runtime/bin:/apex/com.android.art/bin:/system_ext/bin:/system/bin:/system/xbin:/odm/bin:/vendor/bin:/vendor/xbin",
            ),
            ("HOME", "/"),
            ("PWD", "/"),
            ("HOSTNAME", "localhost"),
            ("SHELL", "/bin/sh"),
            ("TMPDIR", "/data/local/tmp"),
            ("ANDROID_DATA", "/data"),
            ("ANDROID_ROOT", "/system"),
            ("USER", if uid == ROOT_UID { "root" } else { "shell" }),
            ("EXTERNAL_STORAGE", storage),
        ] {
            vars.insert(k.to_string(), v.to_string());
        }
        Session {
            handset,
            stdout: io.stdout,
            stderr: io.stderr,
            stdin: Some(io.stdin),
            last: 0,
            vars,
            exit: None,
            depth: 0,
            uid,
        }
    }

    fn cwd(&self) -> &str {
        self.vars.get("PWD").map_or("/", String::as_str)
    }

    async fn run_line(&mut self, line: &str) -> Result<i32, Gone> {
        let script = match parse::parse(line) {
            Ok(s) => s,
            Err(e) => {
                self.send(&Sink::Stderr, format!("/system/bin/sh: {e}\n").as_bytes())
                    .await?;
                self.last = 1;
                return Ok(1);
            }
        };
        for and_or in &script {
            let mut status = self.run_pipeline(&and_or.first).await?;
            for (conn, p) in &and_or.rest {
                if self.exit.is_some() {
                    break;
                }
                let run = match conn {
                    Connector::And => status == 0,
                    Connector::Or => status != 0,
                };
                if run {
                    status = self.run_pipeline(p).await?;
                }
            }
            self.last = status;
            if let Some(code) = self.exit {
                self.last = code;
                return Ok(code);
            }
        }
        Ok(self.last)
    }

    fn expand(&self, word: &Word) -> String {
        let mut out = String::new();
        for part in word {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(name) => match name.as_str() {
                    "?" => out.push_str(&self.last.to_string()),
                    "$" => out.push_str("4242"),
                    "#" => out.push('0'),
                    "0" => out.push_str("/system/bin/sh"),
                    n => out.push_str(self.vars.get(n).map_or("", String::as_str)),
                },
            }
        }
        out
    }

    async fn run_pipeline(&mut self, p: &Pipeline) -> Result<i32, Gone> {
        let mut input: Option<Vec<u8>> = None;
        let mut status = 0;
        let n = p.commands.len();
        for (i, cmd) in p.commands.iter().enumerate() {
            let last = i + 1 == n;
            let (code, captured) = self.run_simple(cmd, input.take(), !last).await?;
            status = code;
            input = captured;
            if self.exit.is_some() {
                break;
            }
        }
        Ok(if p.negate {
            i32::from(status == 0)
        } else {
            status
        })
    }

    /// Sends bytes to a sink. Only `Gone` when the host closed the stream.
    async fn send(&mut self, sink: &Sink, data: &[u8]) -> Result<(), Gone> {
        if data.is_empty() {
            return Ok(());
        }
        let tx = match sink {
            Sink::Stdout => &self.stdout,
            Sink::Stderr => &self.stderr,
            Sink::Null | Sink::Pipe => return Ok(()),
            Sink::File { path, append } => {
                let r = {
                    let mut st = self.handset.state();
                    if *append {
                        st.fs.append(path, data, now_secs())
                    } else {
                        st.fs.write(path, data.to_vec(), 0o660, now_secs())
                    }
                };
                if let Err(e) = r {
                    let msg = format!("/system/bin/sh: can't create {path}: {e}\n");
                    let _ = self.stderr.send(msg.into_bytes()).await;
                }
                return Ok(());
            }
        };
        for chunk in data.chunks(CHUNK) {
            tx.send(chunk.to_vec()).await.map_err(|_| Gone)?;
        }
        Ok(())
    }

    /// Resolves redirections into sinks for fd 1 and 2 and an optional stdin file.
    async fn sinks(
        &mut self,
        cmd: &SimpleCommand,
        piped: bool,
    ) -> Result<Option<(Sink, Sink, Option<Vec<u8>>)>, Gone> {
        let mut out = if piped { Sink::Pipe } else { Sink::Stdout };
        let mut err = Sink::Stderr;
        let mut input = None;
        for r in &cmd.redirs {
            let target = self.expand(&r.target);
            let sink = match &r.op {
                RedirOp::Dup(1) => out.clone(),
                RedirOp::Dup(2) => err.clone(),
                RedirOp::Dup(n) => {
                    self.send(
                        &Sink::Stderr,
                        format!("/system/bin/sh: {n}: bad file descriptor\n").as_bytes(),
                    )
                    .await?;
                    return Ok(None);
                }
                RedirOp::Read => {
                    let path = fs::normalize(&target, self.cwd());
                    let data = match path {
                        Ok(p) if p == "/dev/null" => Ok(Vec::new()),
                        Ok(p) => self.handset.state().fs.read(&p).map(<[u8]>::to_vec),
                        Err(e) => Err(e),
                    };
                    match data {
                        Ok(d) => input = Some(d),
                        Err(e) => {
                            self.send(
                                &Sink::Stderr,
                                format!("/system/bin/sh: can't open {target}: {e}\n").as_bytes(),
                            )
                            .await?;
                            return Ok(None);
                        }
                    }
                    continue;
                }
                RedirOp::Write | RedirOp::Append => match fs::normalize(&target, self.cwd()) {
                    Ok(p) if p == "/dev/null" => Sink::Null,
                    Ok(p) => {
                        let append = r.op == RedirOp::Append;
                        if !append {
                            // `>` truncates even if the command writes nothing.
                            let res =
                                self.handset
                                    .state()
                                    .fs
                                    .write(&p, Vec::new(), 0o660, now_secs());
                            if let Err(e) = res {
                                self.send(
                                    &Sink::Stderr,
                                    format!("/system/bin/sh: can't create {target}: {e}\n")
                                        .as_bytes(),
                                )
                                .await?;
                                return Ok(None);
                            }
                        }
                        Sink::File {
                            path: p,
                            append: true,
                        }
                    }
                    Err(e) => {
                        self.send(
                            &Sink::Stderr,
                            format!("/system/bin/sh: can't create {target}: {e}\n").as_bytes(),
                        )
                        .await?;
                        return Ok(None);
                    }
                },
            };
            match r.fd {
                1 => out = sink,
                2 => err = sink,
                _ => {}
            }
        }
        Ok(Some((out, err, input)))
    }

    /// Runs one simple command. Returns its status and, when `piped`, its captured stdout.
    async fn run_simple(
        &mut self,
        cmd: &SimpleCommand,
        input: Option<Vec<u8>>,
        piped: bool,
    ) -> Result<(i32, Option<Vec<u8>>), Gone> {
        let mut args: Vec<String> = cmd.words.iter().map(|w| self.expand(w)).collect();
        // Leading NAME=value words are assignments.
        while let Some(first) = args.first() {
            match first.split_once('=') {
                Some((name, value))
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !name.starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    if self.vars.len() < 1024 && value.len() < 64 * 1024 {
                        self.vars.insert(name.to_string(), value.to_string());
                    }
                    args.remove(0);
                }
                _ => break,
            }
        }
        let Some((out_sink, err_sink, file_input)) = self.sinks(cmd, piped).await? else {
            return Ok((1, piped.then(Vec::new)));
        };
        if args.is_empty() {
            return Ok((0, piped.then(Vec::new)));
        }
        let input = file_input.or(input);
        let name = args[0].clone();
        let base = name.rsplit('/').next().unwrap_or(&name).to_string();

        // Commands that need the live streams rather than a finished output.
        match base.as_str() {
            "exit" => {
                let code = match args.get(1) {
                    None => self.last,
                    Some(a) => match a.parse::<i64>() {
                        Ok(n) => (n & 0xff) as i32,
                        Err(_) => {
                            self.send(
                                &err_sink,
                                format!("/system/bin/sh: exit: {a}: bad number\n").as_bytes(),
                            )
                            .await?;
                            1
                        }
                    },
                };
                self.exit = Some(code);
                return Ok((code, piped.then(Vec::new)));
            }
            "sleep" => {
                let secs: f64 = args
                    .get(1)
                    .and_then(|a| a.trim_end_matches('s').parse().ok())
                    .unwrap_or(-1.0);
                if !(0.0..=86_400.0).contains(&secs) {
                    self.send(&err_sink, b"sleep: Need 1 argument\n").await?;
                    return Ok((1, piped.then(Vec::new)));
                }
                let stdout = self.stdout.clone();
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs_f64(secs)) => {}
                    _ = stdout.closed() => return Err(Gone),
                }
                return Ok((0, piped.then(Vec::new)));
            }
            "cd" => {
                let target = args.get(1).map_or("/", String::as_str);
                let dir = fs::normalize(target, self.cwd());
                let ok = dir
                    .as_ref()
                    .is_ok_and(|d| self.handset.state().fs.is_dir(d));
                return Ok(match dir {
                    Ok(d) if ok => {
                        self.vars.insert("PWD".into(), d);
                        (0, piped.then(Vec::new))
                    }
                    _ => {
                        let msg =
                            format!("/system/bin/sh: cd: /{target}: No such file or directory\n");
                        self.send(&err_sink, msg.as_bytes()).await?;
                        (2, piped.then(Vec::new))
                    }
                });
            }
            "sh" | "mksh"
                if args.get(1).is_some_and(|a| a == "-c")
                    && out_sink == Sink::Stdout
                    && err_sink == Sink::Stderr =>
            {
                // `sh -c '…'` runs in a child shell: its `exit` ends only the child.
                if self.depth >= MAX_DEPTH {
                    self.send(&err_sink, b"/system/bin/sh: too deeply nested\n")
                        .await?;
                    return Ok((1, None));
                }
                let line = args.get(2).cloned().unwrap_or_default();
                let (saved_exit, saved_vars) = (self.exit.take(), self.vars.clone());
                self.depth += 1;
                let r = Box::pin(self.run_line(&line)).await;
                self.depth -= 1;
                self.exit = saved_exit;
                self.vars = saved_vars;
                return Ok((r?, None));
            }
            "su" if self.handset.state().has_su() => {
                return self.run_su(cmd, &args[1..], input, piped, &err_sink).await;
            }
            "tcpdump" if out_sink != Sink::Pipe => {
                let code = self.run_tcpdump(&args[1..], &out_sink, &err_sink).await?;
                return Ok((code, None));
            }
            "cat" if args.len() == 1 && input.is_none() && !piped => {
                // `cat` with no file copies the host's stdin.
                let code = self.copy_stdin(&out_sink).await?;
                return Ok((code, None));
            }
            _ => {}
        }

        let result = commands::run(&self.handset, &args, input.as_deref(), &self.vars, self.uid);
        let events = result.events;
        for e in events {
            self.handset.emit(e);
        }
        if result.err_first {
            self.send(&err_sink, &result.err).await?;
        }
        let captured = if piped {
            let mut data = result.out;
            data.truncate(MAX_CAPTURE);
            Some(data)
        } else {
            self.send(&out_sink, &result.out).await?;
            None
        };
        if !result.err_first {
            self.send(&err_sink, &result.err).await?;
        }
        Ok((result.code, captured))
    }

    /// `su [WHO] [COMMAND [ARG…]]`, as the `su` of the generation parses it (system/extras su/su.c at
    /// android-4.4.4_r1, su/su.cpp at 9 and 10+). The command then runs as a simple command of this
    /// shell (same redirections, same pipe) under the new uid; without one, a shell reads stdin.
    async fn run_su(
        &mut self,
        cmd: &SimpleCommand,
        args: &[String],
        input: Option<Vec<u8>>,
        piped: bool,
        err_sink: &Sink,
    ) -> Result<(i32, Option<Vec<u8>>), Gone> {
        use crate::vhandset::generation::SuFlavor;
        let flavor = self.handset.profile().generation.su;
        let none = piped.then(Vec::new);
        if self.uid != ROOT_UID && self.uid != SHELL_UID {
            let msg = match flavor {
                SuFlavor::Kitkat => format!("su: uid {} not allowed to su\n", self.uid),
                _ => "su: not allowed\n".to_string(),
            };
            self.send(err_sink, msg.as_bytes()).await?;
            return Ok((1, none));
        }
        let mut rest = args;
        if flavor != SuFlavor::Kitkat && rest.first().is_some_and(|a| a == "-h" || a == "--help") {
            self.send(err_sink, flavor.usage().as_bytes()).await?;
            return Ok((0, none));
        }
        let mut uid = ROOT_UID;
        if let Some(who) = rest.first() {
            let first = who.split(',').next().unwrap_or("");
            uid = match (user_id(first), flavor) {
                (Some(u), _) => u,
                // su.c: `atoi(tok)`, so a word that is no user name (`-c`) is uid 0.
                (None, SuFlavor::Kitkat) => atoi(first) as u32,
                // su.cpp: `strtoul` must convert something, or `invalid uid/gid`.
                (None, _) => match leading_number(first) {
                    Some(n) => n,
                    None => {
                        let msg = format!("su: invalid uid/gid '{first}'\n");
                        self.send(err_sink, msg.as_bytes()).await?;
                        return Ok((1, none));
                    }
                },
            };
            rest = &rest[1..];
        }
        if rest.is_empty() {
            // The default shell reads its commands from stdin.
            let saved = std::mem::replace(&mut self.uid, uid);
            let r = self.run_stdin_script(input).await;
            self.uid = saved;
            return Ok((r?, none));
        }
        let program = rest[0].rsplit('/').next().unwrap_or(&rest[0]).to_string();
        let exec_args: &[String] = if flavor == SuFlavor::Kitkat && rest.len() == 1 {
            // su.c: `argc == 3` execs argv[2] alone, so `su -c 'a b'` looks for a program "a b".
            &rest[..1]
        } else {
            rest
        };
        if !commands::is_known(&program) && !matches!(program.as_str(), "sh" | "exit" | "cd") {
            let msg = match flavor {
                SuFlavor::Kitkat => format!(
                    "su: exec failed for {} Error:No such file or directory\n",
                    rest[0]
                ),
                _ => format!(
                    "su: failed to exec {}: No such file or directory\n",
                    rest[0]
                ),
            };
            self.send(err_sink, msg.as_bytes()).await?;
            // su.c returns -ENOENT (exit status 254); su.cpp's error(1, …) exits 1.
            let code = if flavor == SuFlavor::Kitkat { 254 } else { 1 };
            return Ok((code, none));
        }
        if self.depth >= MAX_DEPTH {
            self.send(err_sink, b"/system/bin/sh: too deeply nested\n")
                .await?;
            return Ok((1, none));
        }
        let sub = SimpleCommand {
            words: exec_args
                .iter()
                .map(|a| vec![Part::Lit(a.clone())])
                .collect(),
            // The outer redirections apply to the command su runs.
            redirs: cmd.redirs.clone(),
        };
        let (saved_uid, saved_vars) = (std::mem::replace(&mut self.uid, uid), self.vars.clone());
        self.vars.insert(
            "USER".into(),
            if uid == ROOT_UID { "root" } else { "shell" }.into(),
        );
        self.depth += 1;
        let r = Box::pin(self.run_simple(&sub, input, piped)).await;
        self.depth -= 1;
        self.uid = saved_uid;
        self.vars = saved_vars;
        r
    }

    /// A shell reading its commands from `input` or the host's stdin (`su` without a command).
    async fn run_stdin_script(&mut self, input: Option<Vec<u8>>) -> Result<i32, Gone> {
        let mut text = input.unwrap_or_default();
        if text.is_empty()
            && let Some(mut stdin) = self.stdin.take()
        {
            while let Some(d) = stdin.recv().await {
                if text.len() + d.len() > parse::MAX_LINE * 16 {
                    break;
                }
                text.extend(d);
            }
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        let mut last = 0;
        for line in text.lines() {
            self.depth += 1;
            let r = Box::pin(self.run_line(line)).await;
            self.depth -= 1;
            last = r?;
            if let Some(code) = self.exit.take() {
                return Ok(code);
            }
        }
        Ok(last)
    }

    async fn copy_stdin(&mut self, sink: &Sink) -> Result<i32, Gone> {
        let Some(mut stdin) = self.stdin.take() else {
            return Ok(0);
        };
        let stdout = self.stdout.clone();
        loop {
            tokio::select! {
                d = stdin.recv() => match d {
                    Some(d) => self.send(sink, &d).await?,
                    None => return Ok(0),
                },
                _ = stdout.closed() => return Err(Gone),
            }
        }
    }

    /// A sender for a sink that a streaming command can own.
    fn stream_sink(&self, sink: &Sink) -> mpsc::Sender<Vec<u8>> {
        match sink {
            Sink::Stdout => self.stdout.clone(),
            Sink::Stderr => self.stderr.clone(),
            Sink::Null | Sink::Pipe | Sink::File { .. } => {
                // Drained and dropped: files on the handset are not a place for captures.
                let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
                tokio::spawn(async move { while rx.recv().await.is_some() {} });
                tx
            }
        }
    }

    async fn run_tcpdump(&mut self, args: &[String], out: &Sink, err: &Sink) -> Result<i32, Gone> {
        let Some(network) = self.handset.network.clone() else {
            self.send(err, b"tcpdump: no network on this handset\n")
                .await?;
            return Ok(1);
        };
        let stdin = match self.stdin.take() {
            Some(rx) => rx,
            None => mpsc::channel(1).1,
        };
        let io = ShellIo {
            stdout: self.stream_sink(out),
            stderr: self.stream_sink(err),
            stdin,
        };
        let code = super::tcpdump::run(args, &network, io).await;
        if self.stdout.is_closed() {
            return Err(Gone);
        }
        Ok(code)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn test_profile() -> Arc<Profile> {
        let mut props = BTreeMap::new();
        for (k, v) in [
            ("ro.product.model", "Virtual Phone 1"),
            ("ro.product.name", "vphone"),
            ("ro.product.device", "vdev"),
            ("ro.build.version.sdk", "33"),
        ] {
            props.insert(k.to_string(), v.to_string());
        }
        let mut identifiers = BTreeMap::new();
        for (k, v) in [
            ("imei", "359881234567890"),
            ("imsi", "525011234567890"),
            ("iccid", "8965012345678901234"),
            ("phone_number", "+6591234567"),
            ("android_id", "9774d56d682e549c"),
        ] {
            identifiers.insert(k.to_string(), v.to_string());
        }
        Arc::new(Profile {
            name: "test".into(),
            description: "unit test".into(),
            props,
            identifiers,
            traffic: Default::default(),
            source: "test".into(),
            generation: crate::vhandset::generation::by_id("android-13").unwrap(),
            persona: Default::default(),
        })
    }

    /// Runs a line; returns (stdout, stderr, status).
    pub(crate) async fn sh(handset: &Arc<Handset>, line: &str) -> (String, String, i32) {
        let (out_tx, mut out_rx) = mpsc::channel(1024);
        let (err_tx, mut err_rx) = mpsc::channel(1024);
        let (_in_tx, in_rx) = mpsc::channel(1);
        let io = ShellIo {
            stdout: out_tx,
            stderr: err_tx,
            stdin: in_rx,
        };
        let code = run_command(handset.clone(), line, io).await;
        let mut out = Vec::new();
        while let Ok(d) = out_rx.try_recv() {
            out.extend(d);
        }
        let mut err = Vec::new();
        while let Ok(d) = err_rx.try_recv() {
            err.extend(d);
        }
        (
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
            code,
        )
    }

    fn handset() -> Arc<Handset> {
        Handset::new(test_profile(), None)
    }

    #[tokio::test]
    async fn status_operators_and_exit() {
        let h = handset();
        assert_eq!(sh(&h, "true").await.2, 0);
        assert_eq!(sh(&h, "false").await.2, 1);
        assert_eq!(sh(&h, "exit 3").await.2, 3);
        assert_eq!(sh(&h, "exit 300").await.2, 44);
        assert_eq!(sh(&h, "false; echo $?").await.0, "1\n");
        assert_eq!(sh(&h, "false && echo no || echo yes").await.0, "yes\n");
        assert_eq!(
            sh(&h, "true && echo a; exit 2; echo never").await,
            ("a\n".into(), String::new(), 2)
        );
        assert_eq!(sh(&h, "! false").await.2, 0);
        assert_eq!(sh(&h, "X=5; echo \"x=$X\" '$X'").await.0, "x=5 $X\n");
        assert_eq!(sh(&h, "sh -c 'exit 4'; echo $?").await.0, "4\n");
        assert_eq!(
            sh(&h, "sh -c 'echo in; exit 6'").await,
            ("in\n".into(), String::new(), 6)
        );
        assert_eq!(
            sh(&h, "cd /sdcard && echo x > f && cat /sdcard/f && pwd")
                .await
                .0,
            "x\n/sdcard\n"
        );
        assert_eq!(sh(&h, "cd /nowhere").await.2, 2);
    }

    async fn interactive(tty: bool, input: &[u8]) -> (String, i32) {
        let (out_tx, mut out_rx) = mpsc::channel(1024);
        let (err_tx, _err_rx) = mpsc::channel(1024);
        let (in_tx, in_rx) = mpsc::channel(4);
        let io = ShellIo {
            stdout: out_tx,
            stderr: err_tx,
            stdin: in_rx,
        };
        in_tx.send(input.to_vec()).await.unwrap();
        drop(in_tx);
        let code = run_interactive(handset(), io, tty).await;
        let mut out = Vec::new();
        while let Ok(d) = out_rx.try_recv() {
            out.extend(d);
        }
        (String::from_utf8_lossy(&out).into_owned(), code)
    }

    #[tokio::test]
    async fn interactive_with_and_without_terminal() {
        assert_eq!(
            interactive(false, b"echo a\nfalse").await,
            ("a\n".into(), 1)
        );
        assert_eq!(
            interactive(false, b"echo a\nexit 3\necho never\n").await,
            ("a\n".into(), 3)
        );
        let (out, code) = interactive(true, b"echo hi\rexit 2\r").await;
        assert_eq!(code, 2);
        assert_eq!(out, "vdev:/ $ echo hi\r\nhi\nvdev:/ $ exit 2\r\n");
    }

    #[tokio::test]
    async fn unknown_command_and_redirections() {
        let h = handset();
        let (out, err, code) = sh(&h, "frobnicate --now").await;
        assert_eq!(
            (out.as_str(), err.as_str(), code),
            ("", "/system/bin/sh: frobnicate: not found\n", 127)
        );
        let (_, err, code) = sh(&h, "frobnicate 2>/dev/null").await;
        assert_eq!((err.as_str(), code), ("", 127));
        assert_eq!(sh(&h, "echo hi >/dev/null").await.0, "");
        assert_eq!(sh(&h, "echo to-err >&2").await.1, "to-err\n");
        let (out, err, _) = sh(
            &h,
            "echo a > /sdcard/f; echo b >> /sdcard/f; cat /sdcard/f; cat /sdcard/nope",
        )
        .await;
        assert_eq!(out, "a\nb\n");
        assert_eq!(err, "cat: /sdcard/nope: No such file or directory\n");
        assert_eq!(sh(&h, "echo 'unterminated").await.2, 1);
        assert_eq!(
            sh(&h, "getprop | grep model").await.0,
            "[ro.product.model]: [Virtual Phone 1]\n"
        );
    }
}
