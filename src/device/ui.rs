//! What a person does with a phone, expressed as adb commands: reading the screen
//! (`uiautomator dump`), finding a node by text, resource id or content description, tapping it,
//! typing, pressing keys, launching apps, rebooting, toggling radios, installing an APK — and the
//! built-in `send-sms` and `add-contact` done through the apps' own screens (their Send and Save
//! buttons), with the "nothing was done" answer that lets the runner fall back to the key sequence
//! or the contacts provider.
//!
//! Owns: the dump's parsing and selectors (`dump`), key names and `input text` escaping (`keys`),
//! the commands each UI step runs per Android release, with the AOSP file each comes from, and the
//! probes the runner's preflight asks (`uiautomator` present, `cmd connectivity airplane-mode`).
//!
//! Must not touch: identifier reading and the provider/key paths of `send-sms`/`add-contact`
//! (`device` itself, another owner), the capture and the run's order (`runner`), the terminal.
//! Screen contents reach error messages only through `dump::describe_screen` (bounded, digits of
//! long numbers masked); the runner's redactor masks the run's canaries on top.
//!
//! What was exercised where: the pure parts (dump parsing, selectors, escaping, keys, toggle
//! commands) by unit tests; the commands through Debian's adb server against the virtual handset's
//! personas (tests/it/ui_steps.rs). No real phone or emulator was available.

mod dump;
mod keys;

use std::time::{Duration, Instant};

pub use dump::{
    Bounds, By, DumpError, Found, MAX_DUMP_BYTES, Selector, UiNode, describe_screen,
    parse as parse_dump,
};
pub use keys::{KEYS, TypeError, input_text_chunks, key, key_names};

use super::{Device, DeviceError, truncate_for_message};
use crate::adb::{AdbError, ShellOutput, shell_quote};

/// Where dumps are written on the device: the shell user owns /data/local/tmp on every release,
/// while /sdcard needs storage to be mounted (not yet, right after a reboot).
const DUMP_PATH: &str = "/data/local/tmp/tattle-window.xml";
/// Where an APK is pushed before `pm install`.
const APK_PATH: &str = "/data/local/tmp/tattle-install.apk";
/// `uiautomator dump` waits up to 10 s for the UI to be idle (DumpCommand.java), then writes.
const DUMP_TIMEOUT: Duration = Duration::from_secs(25);
/// Pause between two dumps while waiting for a node.
const POLL: Duration = Duration::from_millis(400);
/// `pm install` of a large APK takes a while (dexopt).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a tapped Send or Save may take to show its result in the provider.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// The default wait for a node to appear (`timeout:` in scenarios).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A property that marks the boot before a `reboot` (gone after it).
const BOOT_MARK: &str = "debug.tattle.boot_mark";
/// The default wait for a rebooted device to report `sys.boot_completed`.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// Why a UI step failed.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(
        "the device has no `uiautomator`, which tattle reads the screen with\n  help: AOSP ships it \
         from Android 4.3 on; without it use `key` and `shell` steps, or the built-ins' non-UI methods"
    )]
    NoUiautomator,
    #[error(
        "no {selector} appeared on the screen within {waited:?}; it showed {screen}\n  help: check \
         the value against `adb shell uiautomator dump` on this phone, or raise `timeout`"
    )]
    NotFound {
        selector: String,
        waited: Duration,
        screen: String,
    },
    #[error(
        "{selector} is on the screen but has no area to tap ({count} match(es)): collapsed or off \
         screen\n  help: scroll it into view first (`key` DPAD_DOWN, or a `shell` swipe)"
    )]
    Hidden { selector: String, count: usize },
    #[error("reading the screen: {0}")]
    Dump(String),
    #[error("{what}: {detail}\n  help: {fix}")]
    Refused {
        what: String,
        detail: String,
        fix: String,
    },
}

impl From<AdbError> for UiError {
    fn from(e: AdbError) -> Self {
        UiError::Device(DeviceError::Adb(e))
    }
}

/// A reboot under way: how to tell the new boot from the old one.
#[derive(Debug)]
pub struct RebootWait {
    /// The boot mark was set: the new boot is the one without it.
    marked: bool,
    /// The device stopped answering at least once (the proof of a reboot without a mark).
    went_away: bool,
    started: Instant,
}

impl RebootWait {
    /// Time since the reboot was requested.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The result of one method of a step that has alternatives (`via: [ui, keys]`).
#[derive(Debug)]
pub enum Attempt {
    /// Nothing was sent or saved: the next method may run. Says why (for the run's notes).
    NotApplicable(String),
    /// The method acted and failed: running another could do the thing twice, so the step fails.
    Failed(UiError),
}

impl From<UiError> for Attempt {
    fn from(e: UiError) -> Self {
        Attempt::Failed(e)
    }
}

impl From<DeviceError> for Attempt {
    fn from(e: DeviceError) -> Self {
        Attempt::Failed(e.into())
    }
}

/// A radio a `toggle` step switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Radio {
    Wifi,
    MobileData,
    Airplane,
}

impl Radio {
    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Radio::Wifi => "wifi",
            Radio::MobileData => "mobile-data",
            Radio::Airplane => "airplane",
        }
    }

    pub const ALL: [Radio; 3] = [Radio::Wifi, Radio::MobileData, Radio::Airplane];
}

/// How airplane mode is switched on a device (the preflight decides, the step uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AirplaneMethod {
    /// `cmd connectivity airplane-mode enable|disable`: ConnectivityService's shell command
    /// (frameworks/base services/core/java/com/android/server/ConnectivityService.java, class
    /// `ShellCmd`, Android 11; packages/modules/Connectivity service/src/…/ConnectivityService.java
    /// from 12). Some Android 9–10 builds have it too: the preflight asks `cmd connectivity help`.
    Cmd,
    /// `settings put global airplane_mode_on 0|1` then the `android.intent.action.AIRPLANE_MODE`
    /// broadcast with `--ez state true|false` that radios listen for (Settings.Global, 4.2+). The
    /// broadcast is protected: a build that refuses it to the shell says "Permission Denial", the
    /// setting is put back and the step fails saying so.
    SettingAndBroadcast,
}

/// The shell commands that switch `radio` on or off, in order.
pub fn toggle_commands(radio: Radio, on: bool, airplane: AirplaneMethod) -> Vec<String> {
    let verb = if on { "enable" } else { "disable" };
    match radio {
        // frameworks/base cmds/svc/src/com/android/commands/svc/WifiCommand.java (≤ 11) and
        // cmds/svc/svc.sh (12+, which turns it into `cmd wifi set-wifi-enabled enabled|disabled`).
        Radio::Wifi => vec![format!("svc wifi {verb}")],
        // DataCommand.java (≤ 11); svc.sh → `cmd phone data enable|disable` (12+).
        Radio::MobileData => vec![format!("svc data {verb}")],
        Radio::Airplane => match airplane {
            AirplaneMethod::Cmd => vec![format!("cmd connectivity airplane-mode {verb}")],
            AirplaneMethod::SettingAndBroadcast => vec![
                format!("settings put global airplane_mode_on {}", u8::from(on)),
                format!("am broadcast -a android.intent.action.AIRPLANE_MODE --ez state {on}"),
            ],
        },
    }
}

/// Which airplane method the SDK implies without asking the device: `Some` when certain.
pub fn airplane_method_for_sdk(sdk: u32) -> Option<AirplaneMethod> {
    match sdk {
        30.. => Some(AirplaneMethod::Cmd),
        // `cmd` itself appeared in Android 7 (SDK 24); before it only the setting and broadcast.
        17..=23 => Some(AirplaneMethod::SettingAndBroadcast),
        // 7–10: some builds have the shell command; the preflight asks.
        24..=29 => None,
        _ => None,
    }
}

/// An activity to start (`launch` with an intent): each field is an `am start` option.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Intent {
    pub action: Option<String>,
    pub data: Option<String>,
    pub mime: Option<String>,
    pub categories: Vec<String>,
    pub component: Option<String>,
    pub package: Option<String>,
    /// String extras (`--es KEY VALUE`).
    pub extras: Vec<(String, String)>,
}

/// Intent data and extras may hold canaries (`sms:{contact_phone}`): `Debug` shows their sizes.
impl std::fmt::Debug for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intent")
            .field("action", &self.action)
            .field("data", &self.data.as_ref().map(|d| d.chars().count()))
            .field("mime", &self.mime)
            .field("categories", &self.categories)
            .field("component", &self.component)
            .field("package", &self.package)
            .field("extras", &self.extras.len())
            .finish()
    }
}

impl Intent {
    /// `am start [-a …] [-d …] [-t …] [-c …]… [-n …] [-p …] [--es K V]…`, every value quoted.
    /// The options are those of AOSP's `am` (cmds/am/src/com/android/commands/am/Am.java ≤ 6,
    /// Intent.parseCommandArgs from 7); `-p` (package) is unverified on Android 4.4.
    pub fn am_start(&self) -> String {
        let mut cmd = String::from("am start");
        let mut opt = |flag: &str, value: &str| {
            cmd.push_str(&format!(" {flag} {}", shell_quote(value)));
        };
        if let Some(a) = &self.action {
            opt("-a", a);
        }
        if let Some(d) = &self.data {
            opt("-d", d);
        }
        if let Some(t) = &self.mime {
            opt("-t", t);
        }
        for c in &self.categories {
            opt("-c", c);
        }
        if let Some(n) = &self.component {
            opt("-n", n);
        }
        if let Some(p) = &self.package {
            opt("-p", p);
        }
        for (k, v) in &self.extras {
            cmd.push_str(&format!(" --es {} {}", shell_quote(k), shell_quote(v)));
        }
        cmd
    }
}

/// `am start` says it failed in its output, with exit code 0 on many releases: `Error: Activity
/// not started, unable to resolve Intent …`, `Error type 3`, `Error: Activity class … does not
/// exist`. The first such line, for a message.
fn am_error(out: &ShellOutput) -> Option<String> {
    let text = format!("{}\n{}", out.stdout_text(), out.stderr_text());
    let line = text.lines().find(|l| {
        l.starts_with("Error") || l.contains("Exception") || l.contains("unable to resolve")
    });
    match line {
        Some(l) => Some(l.to_string()),
        None if out.exit_code.is_some_and(|c| c != 0) => {
            Some(format!("exit {}", out.exit_code.unwrap_or_default()))
        }
        None => None,
    }
}

/// Send buttons of messaging apps, in the order they are looked for. Resource ids are given by
/// entry name, so they match any package: AOSP Messaging (packages/apps/Messaging,
/// res/layout/compose_message_view.xml `send_message_button`), Google Messages
/// (`send_message_button_icon`, as public uiautomator dumps show it), AOSP's legacy Mms app of
/// Android ≤ 5 (packages/apps/Mms res/layout/compose_message_activity.xml `send_button_sms`); then
/// what a person reads: the content descriptions "Send SMS", "Send message", "Send", the text
/// "Send". Vendor apps other than these were not checked.
pub fn send_button_selectors() -> Vec<Selector> {
    vec![
        Selector::new(By::ResourceId, "send_message_button"),
        Selector::new(By::ResourceId, "send_message_button_icon"),
        Selector::new(By::ResourceId, "send_button_sms"),
        Selector::new(By::ContentDesc, "Send SMS"),
        Selector::new(By::ContentDesc, "Send message"),
        Selector::new(By::ContentDesc, "Send"),
        Selector::new(By::Text, "Send"),
    ]
}

/// Save buttons of contact editors: AOSP Contacts (packages/apps/Contacts, the editor's
/// `menu_save` action; `editor_menu_save_button` in later layouts), then the text and description
/// "Save" (Google Contacts shows a "Save" button). Other vendors' editors were not checked.
pub fn save_button_selectors() -> Vec<Selector> {
    vec![
        Selector::new(By::ResourceId, "editor_menu_save_button"),
        Selector::new(By::ResourceId, "menu_save"),
        Selector::new(By::ContentDesc, "Save"),
        Selector::new(By::Text, "Save"),
    ]
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

impl Device {
    /// One `uiautomator dump`, parsed. `NoUiautomator` when the device has none; `Dump` when it
    /// ran and failed ("ERROR: could not get idle state." while an animation runs), which callers
    /// that wait treat as "try again".
    pub(crate) async fn screen(&self) -> Result<Vec<UiNode>, UiError> {
        let out = self
            .adb
            .shell_with_timeout(&format!("uiautomator dump {DUMP_PATH}"), DUMP_TIMEOUT)
            .await?;
        let text = format!("{}{}", out.stdout_text(), out.stderr_text());
        if out.exit_code == Some(127) || text.contains("uiautomator: not found") {
            return Err(UiError::NoUiautomator);
        }
        // Some builds print the XML itself (to /dev/tty); AOSP writes the file and says where.
        let xml = if let Some(at) = text.find("<?xml").or_else(|| text.find("<hierarchy")) {
            let end = text.rfind("</hierarchy>").map_or(text.len(), |e| e + 12);
            text.as_bytes()[at..end.max(at)].to_vec()
        } else if text.contains("dumped to") {
            self.adb
                .pull(DUMP_PATH, MAX_DUMP_BYTES as u64 + 1)
                .await
                .map_err(|e| UiError::Dump(e.to_string()))?
        } else {
            return Err(UiError::Dump(truncate_for_message(
                text.lines().next().unwrap_or("no output"),
            )));
        };
        dump::parse(&xml).map_err(|e| UiError::Dump(e.to_string()))
    }

    /// Whether `uiautomator` can run at all (the preflight): a dump that ran, even one that could
    /// not get an idle screen, proves the tool is there.
    pub(crate) async fn has_uiautomator(&self) -> Result<bool, DeviceError> {
        match self.screen().await {
            Ok(_) | Err(UiError::Dump(_) | UiError::NotFound { .. } | UiError::Hidden { .. }) => {
                Ok(true)
            }
            Err(UiError::NoUiautomator) => Ok(false),
            Err(UiError::Device(e)) => Err(e),
            Err(UiError::Refused { .. }) => Ok(true),
        }
    }

    /// Whether this build's `cmd connectivity` knows `airplane-mode` (asked on Android 7–10).
    pub(crate) async fn has_airplane_command(&self) -> Result<bool, DeviceError> {
        let out = self
            .adb
            .shell_with_timeout("cmd connectivity help", Duration::from_secs(15))
            .await
            .map_err(DeviceError::Adb)?;
        Ok(format!("{}{}", out.stdout_text(), out.stderr_text()).contains("airplane-mode"))
    }

    /// Waits until one of `selectors` is on screen; returns which (its index) and the node. The
    /// error lists what the last screen showed.
    pub(crate) async fn wait_for_any(
        &self,
        selectors: &[Selector],
        timeout: Duration,
    ) -> Result<(usize, UiNode), UiError> {
        let started = Instant::now();
        let mut last_screen: Option<Vec<UiNode>> = None;
        let mut last_error: Option<UiError> = None;
        let mut hidden = None;
        loop {
            match self.screen().await {
                Ok(nodes) => {
                    for (i, selector) in selectors.iter().enumerate() {
                        match dump::find(&nodes, selector) {
                            Found::Node(n) => return Ok((i, n.clone())),
                            Found::Hidden(count) if hidden.is_none() => {
                                hidden = Some((selector.describe(), count));
                            }
                            _ => {}
                        }
                    }
                    last_screen = Some(nodes);
                }
                Err(UiError::Dump(e)) => last_error = Some(UiError::Dump(e)),
                Err(e) => return Err(e),
            }
            if started.elapsed() >= timeout {
                break;
            }
            tokio::time::sleep(POLL.min(timeout.saturating_sub(started.elapsed()))).await;
        }
        if let Some((selector, count)) = hidden {
            return Err(UiError::Hidden { selector, count });
        }
        let selector = match selectors {
            [one] => one.describe(),
            many => format!(
                "one of {}",
                many.iter()
                    .map(Selector::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        match (last_screen, last_error) {
            (Some(nodes), _) => Err(UiError::NotFound {
                selector,
                waited: timeout,
                screen: describe_screen(&nodes),
            }),
            (None, Some(e)) => Err(e),
            (None, None) => Err(UiError::Dump("no dump was taken".into())),
        }
    }

    /// `tap`: waits for the node, then taps the centre of its bounds (`input tap X Y`, Android 4.1+:
    /// frameworks/base cmds/input/src/com/android/commands/input/Input.java).
    pub(crate) async fn tap(&self, selector: &Selector, timeout: Duration) -> Result<(), UiError> {
        let (_, node) = self
            .wait_for_any(std::slice::from_ref(selector), timeout)
            .await?;
        self.tap_node(&node).await
    }

    async fn tap_node(&self, node: &UiNode) -> Result<(), UiError> {
        let (x, y) = node
            .bounds
            .map(|b| b.centre())
            .ok_or_else(|| UiError::Dump("a matched node has no bounds".into()))?;
        self.run(&format!("input tap {x} {y}")).await?;
        Ok(())
    }

    /// `type`: into the focused field, or first taps the field `into` finds. Text that the virtual
    /// keyboard cannot type is refused before anything is sent.
    pub(crate) async fn type_text(
        &self,
        text: &str,
        into: Option<&Selector>,
        timeout: Duration,
    ) -> Result<(), UiError> {
        let chunks = input_text_chunks(text).map_err(untypeable)?;
        if let Some(selector) = into {
            self.tap(selector, timeout).await?;
            // The keyboard takes a moment to attach to the newly focused field.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for chunk in chunks {
            self.run(&format!("input text {}", shell_quote(&chunk)))
                .await?;
        }
        Ok(())
    }

    /// `key`: each code with `input keyevent` (numeric codes work on every release).
    pub(crate) async fn press_keys(&self, codes: &[u32]) -> Result<(), UiError> {
        for code in codes {
            self.run(&format!("input keyevent {code}")).await?;
        }
        Ok(())
    }

    /// `launch` of a package: its launcher activity through `monkey -p PKG -c
    /// android.intent.category.LAUNCHER 1` (development/cmds/monkey, every release), which
    /// resolves the launcher activity on the device — `am start` needs the activity's name.
    pub(crate) async fn launch_package(&self, package: &str) -> Result<(), UiError> {
        let out = self
            .adb
            .shell_with_timeout(
                &format!(
                    "monkey -p {} -c android.intent.category.LAUNCHER 1",
                    shell_quote(package)
                ),
                Duration::from_secs(30),
            )
            .await?;
        let text = format!("{}{}", out.stdout_text(), out.stderr_text());
        if text.contains("No activities found") || text.contains("monkey aborted") {
            return Err(UiError::Refused {
                what: format!("launch {package}"),
                detail: "the package has no launcher activity, or is not installed".into(),
                fix: "check `adb shell pm list packages`; to start a specific screen give an \
                      intent (`action`, `component`)"
                    .into(),
            });
        }
        if let Some(code) = out.exit_code.filter(|c| *c != 0) {
            return Err(UiError::Refused {
                what: format!("launch {package}"),
                detail: format!("monkey exited {code}: {}", truncate_for_message(&text)),
                fix: "check the package name with `adb shell pm list packages`".into(),
            });
        }
        Ok(())
    }

    /// `launch` of an intent: `am start` with its options; `am`'s own error lines fail the step.
    pub(crate) async fn launch_intent(&self, intent: &Intent) -> Result<(), UiError> {
        let out = self
            .adb
            .shell_with_timeout(&intent.am_start(), Duration::from_secs(30))
            .await?;
        if let Some(line) = am_error(&out) {
            return Err(UiError::Refused {
                what: "am start".into(),
                detail: truncate_for_message(&line),
                fix: "check the action, component or package (`adb shell pm list packages`, \
                      `adb shell dumpsys package PKG`)"
                    .into(),
            });
        }
        Ok(())
    }

    /// `reboot`, first half: asks adbd to reboot. Before it, a `debug.*` property is set (the shell
    /// may set those on every release, and no property set at run time survives a reboot), so the
    /// old boot, still answering for a moment after the request, cannot be taken for the new one.
    pub(crate) async fn request_reboot(&self) -> Result<RebootWait, UiError> {
        let marked = self.run(&format!("setprop {BOOT_MARK} 1")).await.is_ok();
        self.adb.reboot("").await?;
        Ok(RebootWait {
            marked,
            went_away: false,
            started: Instant::now(),
        })
    }

    /// `reboot`, second half: waits until the new boot answers the shell (`booted` false: adbd
    /// is up, early enough to restart a capture) or has finished booting (`booted` true:
    /// `sys.boot_completed` = 1), within `timeout` of the request.
    pub(crate) async fn wait_after_reboot(
        &self,
        wait: &mut RebootWait,
        booted: bool,
        timeout: Duration,
    ) -> Result<(), UiError> {
        loop {
            let probe = self
                .adb
                .clone()
                .with_timeout(Duration::from_secs(10))
                .shell_with_timeout(
                    &format!("getprop {BOOT_MARK}; echo .; getprop sys.boot_completed"),
                    Duration::from_secs(10),
                )
                .await;
            match probe {
                Ok(out) => {
                    let text = out.stdout_text();
                    let (mark, rest) = text.split_once('.').unwrap_or((&text, ""));
                    let new_boot = if wait.marked {
                        mark.trim().is_empty()
                    } else {
                        wait.went_away
                    };
                    if new_boot && (!booted || rest.trim() == "1") {
                        return Ok(());
                    }
                }
                Err(_) => wait.went_away = true,
            }
            if wait.started.elapsed() >= timeout {
                let what = if booted {
                    "report sys.boot_completed=1"
                } else {
                    "come back"
                };
                return Err(UiError::Refused {
                    what: "reboot".into(),
                    detail: format!("the device did not {what} within {timeout:?}"),
                    fix: "check the phone's screen (a PIN at boot, a boot loop); raise `timeout`"
                        .into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `toggle`: runs the radio's commands; a command that answers with an error fails the step.
    /// Airplane mode by setting and broadcast puts the setting back when the broadcast is refused
    /// (the radios would not follow it: a lie in Settings is worse than a failed step).
    pub(crate) async fn toggle(
        &self,
        radio: Radio,
        on: bool,
        airplane: AirplaneMethod,
    ) -> Result<(), UiError> {
        let commands = toggle_commands(radio, on, airplane);
        for (i, command) in commands.iter().enumerate() {
            let out = self
                .adb
                .shell_with_timeout(command, Duration::from_secs(30))
                .await?;
            let text = format!("{}\n{}", out.stdout_text(), out.stderr_text());
            let refused = text.contains("Permission Denial")
                || text.contains("SecurityException")
                || text.contains("Exception")
                || text.contains("Error")
                || text.contains("usage:")
                || text.contains("Unknown command")
                || out.exit_code.is_some_and(|c| c != 0);
            if refused {
                if radio == Radio::Airplane
                    && airplane == AirplaneMethod::SettingAndBroadcast
                    && i == 1
                {
                    let back = format!("settings put global airplane_mode_on {}", u8::from(!on));
                    let _ = self
                        .adb
                        .shell_with_timeout(&back, Duration::from_secs(30))
                        .await;
                    return Err(UiError::Refused {
                        what: format!("toggle airplane {}", if on { "on" } else { "off" }),
                        detail: format!(
                            "this build refuses the AIRPLANE_MODE broadcast to the shell ({}); \
                             the setting was put back",
                            truncate_for_message(text.trim())
                        ),
                        fix: "switch airplane mode by hand, or with `tap` steps in Settings".into(),
                    });
                }
                return Err(UiError::Refused {
                    what: format!("toggle {} {}", radio.name(), if on { "on" } else { "off" }),
                    detail: format!(
                        "`{}` answered: {}",
                        super::program_of(command),
                        truncate_for_message(text.trim())
                    ),
                    fix: "switch it by hand, or with `tap` steps in Settings".into(),
                });
            }
        }
        if radio == Radio::Airplane {
            // The state is a setting every release keeps: check it followed.
            let started = Instant::now();
            loop {
                let out = self.run("settings get global airplane_mode_on").await?;
                if out.stdout_text().trim() == if on { "1" } else { "0" } {
                    break;
                }
                if started.elapsed() > Duration::from_secs(5) {
                    return Err(UiError::Refused {
                        what: format!("toggle airplane {}", if on { "on" } else { "off" }),
                        detail: "airplane_mode_on did not change".into(),
                        fix: "switch airplane mode by hand".into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        Ok(())
    }

    /// `install`: the APK is pushed with adb's sync protocol to /data/local/tmp (which `pm` can
    /// read on every release), installed with `pm install -r` (replacing an older version), then
    /// removed. `pm` prints `Success`, or `Failure [INSTALL_FAILED_…]` (PackageManagerShellCommand
    /// from 7, Pm.java before).
    pub(crate) async fn install_apk(&self, apk: &[u8]) -> Result<(), UiError> {
        self.adb.push(apk, APK_PATH, 0o644).await?;
        let out = self
            .adb
            .shell_with_timeout(&format!("pm install -r {APK_PATH}"), INSTALL_TIMEOUT)
            .await;
        let _ = self
            .adb
            .shell_with_timeout(&format!("rm -f {APK_PATH}"), Duration::from_secs(30))
            .await;
        let out = out?;
        let text = format!("{}\n{}", out.stdout_text(), out.stderr_text());
        if text.lines().any(|l| l.trim() == "Success") {
            return Ok(());
        }
        let reason = text
            .lines()
            .find(|l| l.contains("Failure") || l.contains("Error") || l.contains("Exception"))
            .unwrap_or_else(|| text.trim());
        Err(UiError::Refused {
            what: "pm install".into(),
            detail: truncate_for_message(reason),
            fix: "INSTALL_FAILED_UPDATE_INCOMPATIBLE: uninstall the old version first; \
                  INSTALL_FAILED_VERSION_DOWNGRADE: use a newer APK; see `adb install` for others"
                .into(),
        })
    }

    /// Sent messages to `to` in the SMS provider (digits compared: `+65 9876` and `659876` agree).
    async fn sent_count(&self, to: &str) -> Result<usize, DeviceError> {
        let out = self
            .run("content query --uri content://sms/sent --projection address")
            .await?;
        let rows = super::parse::content_rows(&out.stdout_text(), &["address"]);
        let want = digits(to);
        Ok(rows
            .iter()
            .filter(|r| r.get("address").is_some_and(|a| digits(a) == want))
            .count())
    }

    /// Received messages from `from` in the SMS provider's inbox (digits compared), for
    /// `receive-sms`.
    pub(crate) async fn inbox_count(&self, from: &str) -> Result<usize, DeviceError> {
        let out = self
            .run("content query --uri content://sms/inbox --projection address")
            .await?;
        let rows = super::parse::content_rows(&out.stdout_text(), &["address"]);
        let want = digits(from);
        Ok(rows
            .iter()
            .filter(|r| r.get("address").is_some_and(|a| digits(a) == want))
            .count())
    }

    /// Phone rows holding `phone` in the contacts provider.
    async fn phone_rows(&self, phone: &str) -> Result<usize, DeviceError> {
        let out = self
            .run(&format!(
                "content query --uri content://com.android.contacts/data --projection data1 \
                 --where {}",
                shell_quote("mimetype='vnd.android.cursor.item/phone_v2'")
            ))
            .await?;
        let rows = super::parse::content_rows(&out.stdout_text(), &["data1"]);
        let want = digits(phone);
        Ok(rows
            .iter()
            .filter(|r| r.get("data1").is_some_and(|a| digits(a) == want))
            .count())
    }

    /// `send-sms` through the messaging app's screen: the SENDTO intent fills the compose screen,
    /// the Send button is found in the dump and tapped, and the sent box must gain a message to
    /// the recipient. `NotApplicable` while nothing was sent (no Send button on screen); once the
    /// button was tapped, a failure is final.
    pub(crate) async fn send_sms_ui(&self, to: &str, body: &str) -> Result<(), Attempt> {
        let before = self.sent_count(to).await?;
        let intent = Intent {
            action: Some("android.intent.action.SENDTO".into()),
            data: Some(format!("sms:{to}")),
            extras: vec![("sms_body".into(), body.into())],
            ..Intent::default()
        };
        self.open_and_tap(&intent, &send_button_selectors(), "Send")
            .await?;
        let started = Instant::now();
        loop {
            if self.sent_count(to).await? > before {
                return Ok(());
            }
            if started.elapsed() > VERIFY_TIMEOUT {
                return Err(Attempt::Failed(UiError::Refused {
                    what: "send-sms".into(),
                    detail: format!(
                        "the Send button was tapped but no message to the recipient reached \
                         content://sms/sent within {VERIFY_TIMEOUT:?}"
                    ),
                    fix: "check the phone: a SIM that can send SMS, the default messaging app; \
                          not retried with keys, which could send the message twice"
                        .into(),
                }));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Opens `intent`'s screen, finds its `button` (the first of `selectors` on screen) and taps it.
    /// `NotApplicable` while nothing was tapped (no screen, no button, no uiautomator).
    async fn open_and_tap(
        &self,
        intent: &Intent,
        selectors: &[Selector],
        button: &str,
    ) -> Result<(), Attempt> {
        if let Err(e) = self.launch_intent(intent).await {
            return Err(Attempt::NotApplicable(e.to_string()));
        }
        let node = match self.wait_for_any(selectors, DEFAULT_TIMEOUT).await {
            Ok((_, node)) => node,
            Err(e @ (UiError::NotFound { .. } | UiError::Hidden { .. } | UiError::Dump(_))) => {
                return Err(Attempt::NotApplicable(format!("no {button} button: {e}")));
            }
            Err(UiError::NoUiautomator) => {
                return Err(Attempt::NotApplicable(UiError::NoUiautomator.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        self.tap_node(&node).await?;
        Ok(())
    }

    /// `add-contact` through the contacts editor: `ContactsContract.Intents.Insert.ACTION`
    /// (`android.intent.action.INSERT`) for a raw contact with the `name` and `phone` extras
    /// (`Intents.Insert.NAME`/`PHONE`) opens the editor filled in; its Save button is found and
    /// tapped; the contacts provider must then hold the number. `NotApplicable` while nothing was
    /// saved (no editor or no Save button: the editor is left open, unsaved, since Back would save
    /// it on some releases).
    pub(crate) async fn add_contact_ui(&self, name: &str, phone: &str) -> Result<(), Attempt> {
        let before = self.phone_rows(phone).await?;
        let intent = Intent {
            action: Some("android.intent.action.INSERT".into()),
            mime: Some("vnd.android.cursor.dir/raw_contact".into()),
            extras: vec![("name".into(), name.into()), ("phone".into(), phone.into())],
            ..Intent::default()
        };
        self.open_and_tap(&intent, &save_button_selectors(), "Save")
            .await?;
        let started = Instant::now();
        loop {
            if self.phone_rows(phone).await? > before {
                return Ok(());
            }
            if started.elapsed() > VERIFY_TIMEOUT {
                return Err(Attempt::Failed(UiError::Refused {
                    what: "add-contact".into(),
                    detail: format!(
                        "Save was tapped but the contacts provider holds no new row with the \
                         number within {VERIFY_TIMEOUT:?}"
                    ),
                    fix: "check the phone's contacts editor (an account chooser, a required \
                          field); not retried through the provider, which could add it twice"
                        .into(),
                }));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn untypeable(e: TypeError) -> UiError {
    match e {
        TypeError::NotTypeable { position } => UiError::Refused {
            what: "type".into(),
            detail: format!(
                "character {position} cannot be typed: `input text` types printable ASCII only \
                 (the virtual keyboard's key map)"
            ),
            fix: "use ASCII text, or set non-ASCII values another way (`add-contact` through the \
                  provider, a `shell` step)"
                .into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toggle_commands_per_release() {
        assert_eq!(
            toggle_commands(Radio::Wifi, true, AirplaneMethod::Cmd),
            ["svc wifi enable"]
        );
        assert_eq!(
            toggle_commands(Radio::MobileData, false, AirplaneMethod::Cmd),
            ["svc data disable"]
        );
        assert_eq!(
            toggle_commands(Radio::Airplane, true, AirplaneMethod::Cmd),
            ["cmd connectivity airplane-mode enable"]
        );
        assert_eq!(
            toggle_commands(Radio::Airplane, false, AirplaneMethod::SettingAndBroadcast),
            [
                "settings put global airplane_mode_on 0",
                "am broadcast -a android.intent.action.AIRPLANE_MODE --ez state false"
            ]
        );
        assert_eq!(airplane_method_for_sdk(35), Some(AirplaneMethod::Cmd));
        assert_eq!(airplane_method_for_sdk(30), Some(AirplaneMethod::Cmd));
        assert_eq!(airplane_method_for_sdk(28), None, "asked on the device");
        assert_eq!(
            airplane_method_for_sdk(19),
            Some(AirplaneMethod::SettingAndBroadcast)
        );
    }

    #[test]
    fn intents_become_quoted_am_start_lines() {
        let i = Intent {
            action: Some("android.intent.action.SENDTO".into()),
            data: Some("sms:+65 9876".into()),
            extras: vec![("sms_body".into(), "it's {x} $HOME".into())],
            ..Intent::default()
        };
        assert_eq!(
            i.am_start(),
            "am start -a android.intent.action.SENDTO -d 'sms:+65 9876' --es sms_body 'it'\\''s {x} $HOME'"
        );
        let dbg = format!("{i:?}");
        assert!(!dbg.contains("9876") && !dbg.contains("HOME"), "{dbg}");
    }

    #[test]
    fn am_errors_are_read_from_the_output() {
        let out = |stdout: &str, code| ShellOutput {
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            exit_code: code,
        };
        assert_eq!(
            am_error(&out("Starting: Intent { act=x }\n", Some(0))),
            None
        );
        assert!(
            am_error(&out(
                "Starting: Intent { act=x }\nError: Activity not started, unable to resolve Intent { act=x }\n",
                Some(0)
            ))
            .unwrap()
            .starts_with("Error: Activity not started")
        );
        assert_eq!(am_error(&out("", Some(1))).as_deref(), Some("exit 1"));
        assert_eq!(am_error(&out("Starting: …", None)), None);
    }

    #[test]
    fn button_lists_find_the_known_apps() {
        let compose = dump::parse(dump::tests::COMPOSE.as_bytes()).unwrap();
        let found = send_button_selectors()
            .iter()
            .find_map(|s| match dump::find(&compose, s) {
                Found::Node(n) => Some(n.resource_id.clone()),
                _ => None,
            });
        assert_eq!(
            found.as_deref(),
            Some("com.google.android.apps.messaging:id/send_message_button_icon")
        );
        let editor = dump::parse(
            b"<hierarchy><node text=\"SAVE\" resource-id=\"com.android.contacts:id/editor_menu_save_button\" \
              class=\"android.widget.Button\" bounds=\"[900,80][1060,200]\"/></hierarchy>",
        )
        .unwrap();
        assert!(
            save_button_selectors()
                .iter()
                .any(|s| matches!(dump::find(&editor, s), Found::Node(_)))
        );
    }
}
