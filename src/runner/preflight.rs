//! The preflight: before the capture starts, every step is checked against what the device can do,
//! so a scenario that cannot run says so at once, not half-way through a capture.
//!
//! Owns the checks and the plan they leave: `tap`/`wait-for`/`type into` need `uiautomator` (asked
//! with one dump); a key newer than the device's SDK (`WAKEUP` before Android 4.4W) is refused; a
//! text `input text` cannot type is refused once placeholders are filled; airplane mode is switched
//! by `cmd connectivity` or by setting and broadcast, decided from the SDK or by asking the device;
//! an APK must exist on this computer and be a zip. Methods that cannot run are dropped where
//! another remains (`send-sms` via `[ui, keys]` on a device without uiautomator sends with keys),
//! and so are alternatives of an `any`, each with a note; where nothing remains the run does not
//! start.
//!
//! Must not touch: the capture, the run directory, the terminal (notes are returned).

use std::path::{Path, PathBuf};

use crate::device::ui::{self, AirplaneMethod, Radio};
use crate::device::{Device, DeviceError, DeviceIdentity};
use crate::scenario::{ContactVia, Scenario, SmsVia, Step, StepAction};

/// Larger APKs exist, but a scenario's app is a test app; pushing this much is held in memory.
const MAX_APK_BYTES: u64 = 1024 * 1024 * 1024;

/// What the preflight decided, for the steps to use.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// How airplane mode is switched on this device (set when a step toggles it).
    pub airplane: Option<AirplaneMethod>,
    /// Each `install` path as written, and the file it names on this computer.
    pub apks: Vec<(String, PathBuf)>,
    /// What changed from the scenario as written, and why (one line each).
    pub notes: Vec<String>,
    /// The emulator console `receive-sms` talks to: its port and its token file (read when the
    /// console asks, by `crate::emulator_console`).
    pub console: Option<Console>,
}

/// An emulator's console, found by the preflight.
#[derive(Debug, Clone)]
pub(super) struct Console {
    pub port: u16,
    pub token_file: Option<PathBuf>,
}

impl Plan {
    pub(super) fn apk(&self, written: &str) -> Option<&Path> {
        self.apks
            .iter()
            .find(|(w, _)| w == written)
            .map(|(_, p)| p.as_path())
    }
}

/// What the device offers, asked only when a step needs it.
struct Offers {
    uiautomator: Option<bool>,
    sdk: u32,
    /// The console port when the device is an emulator (`emulator-5554`).
    console_port: Option<u16>,
}

/// Checks `scenario` (expanded) against the device; drops what cannot run where something else can.
/// `Err` holds one line per step that cannot run at all.
pub(super) async fn check(
    scenario: &mut Scenario,
    device: &Device,
    identity: &DeviceIdentity,
) -> Result<Plan, PreflightError> {
    let mut plan = Plan::default();
    let needs_ui = scenario.steps.iter().any(needs_uiautomator);
    let mut offers = Offers {
        uiautomator: None,
        sdk: identity.sdk,
        console_port: super::console::console_port(device.serial()),
    };
    if needs_ui {
        offers.uiautomator = Some(device.has_uiautomator().await?);
    }
    if scenario.steps.iter().any(toggles_airplane) {
        plan.airplane = match ui::airplane_method_for_sdk(identity.sdk) {
            Some(m) => Some(m),
            None if identity.sdk >= 24 => Some(if device.has_airplane_command().await? {
                AirplaneMethod::Cmd
            } else {
                AirplaneMethod::SettingAndBroadcast
            }),
            None => None,
        };
    }
    if let (Some(port), true) = (offers.console_port, scenario.steps.iter().any(receives_sms)) {
        plan.console = Some(Console {
            port,
            token_file: super::console::token_path(),
        });
    }
    let base = scenario_dir(&scenario.path);
    let mut problems = Vec::new();
    for (i, step) in scenario.steps.iter_mut().enumerate() {
        let label = format!(
            "step {} `{}` (line {})",
            i + 1,
            step.action.name(),
            step.line
        );
        for p in check_step(step, &offers, &mut plan, &base, &label) {
            problems.push(format!("{label}: {p}"));
        }
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(PreflightError::Steps(problems))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("this scenario cannot run on this device:\n  {}", .0.join("\n  "))]
    Steps(Vec<String>),
}

/// Built-in scenarios resolve relative paths from the working directory; files from their folder.
fn scenario_dir(path: &Path) -> PathBuf {
    if path.starts_with("<builtin>") {
        return PathBuf::from(".");
    }
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn needs_uiautomator(step: &Step) -> bool {
    match &step.action {
        StepAction::Tap { .. } | StepAction::WaitFor { .. } => true,
        StepAction::Type { into, .. } => into.is_some(),
        StepAction::SendSms { via, .. } => via.contains(&SmsVia::Ui),
        StepAction::AddContact { via, .. } => via.contains(&ContactVia::Ui),
        StepAction::Any(alternatives) => alternatives.iter().flatten().any(needs_uiautomator),
        _ => false,
    }
}

fn receives_sms(step: &Step) -> bool {
    match &step.action {
        StepAction::ReceiveSms { .. } => true,
        StepAction::Any(alternatives) => alternatives.iter().flatten().any(receives_sms),
        _ => false,
    }
}

fn toggles_airplane(step: &Step) -> bool {
    match &step.action {
        StepAction::Toggle(t) => t.iter().any(|(r, _)| *r == Radio::Airplane),
        StepAction::Any(alternatives) => alternatives.iter().flatten().any(toggles_airplane),
        _ => false,
    }
}

const NO_UIAUTOMATOR: &str = "needs `uiautomator` to read the screen, which this device lacks \
    (AOSP ships it from Android 4.3); use `key` steps, or add an `any` alternative without it";

/// What keeps `step` from running here (empty: it can run), after dropping the methods and
/// alternatives that cannot.
fn check_step(
    step: &mut Step,
    offers: &Offers,
    plan: &mut Plan,
    base: &Path,
    label: &str,
) -> Vec<String> {
    let ui_ok = offers.uiautomator != Some(false);
    let mut problems = Vec::new();
    match &mut step.action {
        StepAction::Tap { .. } | StepAction::WaitFor { .. } if !ui_ok => {
            problems.push(NO_UIAUTOMATOR.to_string());
        }
        StepAction::Type { text, into, .. } => {
            if into.is_some() && !ui_ok {
                problems.push(NO_UIAUTOMATOR.to_string());
            }
            if let Err(ui::TypeError::NotTypeable { position }) = ui::input_text_chunks(text) {
                problems.push(format!(
                    "character {position} of the text, placeholders filled, cannot be typed: \
                     `input text` types printable ASCII only"
                ));
            }
        }
        StepAction::Key(keys) => {
            for k in keys.iter().filter(|k| k.min_sdk > offers.sdk) {
                problems.push(format!(
                    "key {} needs Android SDK {} or later; this device has SDK {}",
                    k.name, k.min_sdk, offers.sdk
                ));
            }
        }
        StepAction::Toggle(t)
            if t.iter().any(|(r, _)| *r == Radio::Airplane) && plan.airplane.is_none() =>
        {
            problems.push(format!(
                "airplane mode cannot be switched from the shell before Android 4.2 (SDK 17); \
                 this device has SDK {}",
                offers.sdk
            ));
        }
        StepAction::ReceiveSms { from, body } => {
            if offers.console_port.is_none() {
                problems.push(
                    "needs the Android emulator's console to deliver an SMS (`sms send`); this \
                     device is not an emulator (its serial is not emulator-NNNN) — send the SMS \
                     from another phone during an `idle` step instead"
                        .to_string(),
                );
            }
            if !super::console::valid_number(from) {
                problems.push(
                    "the sender, placeholders filled, is not a number the emulator accepts \
                     (digits with an optional leading `+`)"
                        .to_string(),
                );
            }
            if super::console::escape_text(body).is_none() {
                problems.push(
                    "the text, placeholders filled, has characters beyond U+FFFF (emoji), which \
                     the console's escapes cannot carry"
                        .to_string(),
                );
            }
        }
        StepAction::Install { apk } => match check_apk(base, apk) {
            Ok(path) => plan.apks.push((apk.clone(), path)),
            Err(p) => problems.push(p),
        },
        StepAction::SendSms { via, .. } if !ui_ok && via.contains(&SmsVia::Ui) => {
            via.retain(|v| *v != SmsVia::Ui);
            if via.is_empty() {
                problems.push(format!("{NO_UIAUTOMATOR} (or give `via: [ui, keys]`)"));
            } else {
                plan.notes.push(format!(
                    "{label}: sends with keys: the device has no uiautomator to find the Send button"
                ));
            }
        }
        StepAction::AddContact { via, .. } if !ui_ok && via.contains(&ContactVia::Ui) => {
            via.retain(|v| *v != ContactVia::Ui);
            if via.is_empty() {
                problems.push(format!("{NO_UIAUTOMATOR} (or give `via: [ui, provider]`)"));
            } else {
                plan.notes.push(format!(
                    "{label}: adds through the contacts provider: the device has no uiautomator \
                     to find the Save button"
                ));
            }
        }
        StepAction::Any(alternatives) => {
            let mut reasons = Vec::new();
            let mut kept = Vec::new();
            for (i, mut steps) in std::mem::take(alternatives).into_iter().enumerate() {
                let inner: Vec<String> = steps
                    .iter_mut()
                    .flat_map(|s| {
                        let name = s.action.name();
                        let line = s.line;
                        check_step(s, offers, plan, base, label)
                            .into_iter()
                            .map(move |p| format!("`{name}` (line {line}) {p}"))
                    })
                    .collect();
                if inner.is_empty() {
                    kept.push(steps);
                } else {
                    plan.notes.push(format!(
                        "{label}: alternative {} skipped: {}",
                        i + 1,
                        inner.join("; ")
                    ));
                    reasons.push(format!("alternative {}: {}", i + 1, inner.join("; ")));
                }
            }
            if kept.is_empty() {
                problems.push(format!(
                    "no alternative can run here ({})",
                    reasons.join(" | ")
                ));
            }
            *alternatives = kept;
        }
        _ => {}
    }
    problems
}

/// The APK `written` names, relative to `base`: a readable file no larger than 1 GiB that starts
/// like a zip (`PK\x03\x04`), as every APK does.
fn check_apk(base: &Path, written: &str) -> Result<PathBuf, String> {
    use std::io::Read;
    let path = base.join(written);
    let shown = path.display();
    let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read the APK {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a file"));
    }
    if meta.len() > MAX_APK_BYTES {
        return Err(format!(
            "{shown} is {} bytes; tattle installs APKs up to {MAX_APK_BYTES}",
            meta.len()
        ));
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| format!("cannot read the APK {shown}: {e}"))?;
    if &magic != b"PK\x03\x04" {
        return Err(format!("{shown} is not an APK (an APK is a zip file)"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn scenario(yaml: &str) -> Scenario {
        Scenario::parse(yaml, Path::new("dir/s.yaml")).expect("valid")
    }

    fn run_checks(s: &mut Scenario, uiautomator: Option<bool>, sdk: u32) -> (Plan, Vec<String>) {
        let offers = Offers {
            uiautomator,
            sdk,
            console_port: None,
        };
        let mut plan = Plan {
            airplane: ui::airplane_method_for_sdk(sdk),
            ..Plan::default()
        };
        let base = PathBuf::from("/nonexistent");
        let mut problems = Vec::new();
        for step in &mut s.steps {
            problems.extend(check_step(step, &offers, &mut plan, &base, "step"));
        }
        (plan, problems)
    }

    #[test]
    fn without_uiautomator_the_built_ins_fall_back_and_ui_steps_refuse() {
        let mut s = scenario(concat!(
            "steps:\n",
            "  - add-contact: { name: Wei Ling Tan, phone: \"+6598765432\" }\n",
            "  - send-sms: { to: \"+6598765432\", body: hello }\n",
            "  - tap: { text: Send }\n",
        ));
        let (plan, problems) = run_checks(&mut s, Some(false), 34);
        assert!(
            matches!(&s.steps[0].action, StepAction::AddContact { via, .. } if via == &[ContactVia::Provider])
        );
        assert!(
            matches!(&s.steps[1].action, StepAction::SendSms { via, .. } if via == &[SmsVia::Keys])
        );
        assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("uiautomator"));
        // With it, nothing changes.
        let mut s2 = scenario("steps:\n  - send-sms: { to: \"+1234\", body: hi }\n");
        let (plan, problems) = run_checks(&mut s2, Some(true), 34);
        assert!(plan.notes.is_empty() && problems.is_empty());
        assert!(
            matches!(&s2.steps[0].action, StepAction::SendSms { via, .. } if via == &[SmsVia::Ui, SmsVia::Keys])
        );
    }

    #[test]
    fn ui_only_methods_without_uiautomator_do_not_start() {
        let mut s = scenario("steps:\n  - send-sms: { to: \"+1234\", body: hi, via: ui }\n");
        let (_, problems) = run_checks(&mut s, Some(false), 34);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("via: [ui, keys]"), "{problems:?}");
    }

    #[test]
    fn alternatives_that_cannot_run_are_dropped_with_a_note() {
        let mut s = scenario(concat!(
            "steps:\n",
            "  - any:\n",
            "      - tap: { content-desc: Send SMS }\n",
            "      - steps:\n",
            "          - key: DPAD_RIGHT\n",
            "          - key: ENTER\n",
        ));
        let (plan, problems) = run_checks(&mut s, Some(false), 34);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.steps[0].action.alternatives().len(), 1);
        assert!(
            plan.notes[0].contains("alternative 1 skipped"),
            "{:?}",
            plan.notes
        );
        // When none can run, the step cannot.
        let mut s =
            scenario("steps:\n  - any:\n      - tap: { text: A }\n      - wait-for: { text: B }\n");
        let (_, problems) = run_checks(&mut s, Some(false), 34);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("no alternative can run here"),
            "{problems:?}"
        );
    }

    #[test]
    fn sdk_and_text_limits() {
        let mut s = scenario(concat!(
            "identifiers:\n",
            "  contact_name: \"Zoe Olstrup\"\n",
            "steps:\n",
            "  - key: [WAKEUP, HOME]\n",
            "  - type: \"{contact_name}\"\n",
            "  - toggle: { airplane: on }\n",
        ));
        let (expanded, _) = s.expand("r");
        s = expanded;
        let (_, problems) = run_checks(&mut s, None, 19);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("key WAKEUP needs Android SDK 20"));
        let (_, problems) = run_checks(&mut s, None, 34);
        assert!(problems.is_empty(), "{problems:?}");
        // The type step is refused after expansion, with a position and no text.
        let mut s = scenario(
            "identifiers:\n  contact_name: \"Zoë Ølstrup\"\nsteps:\n  - type: \"{contact_name}\"\n",
        );
        let (mut expanded, _) = s.expand("r");
        let (_, problems) = run_checks(&mut expanded, None, 34);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("character 3 of the text"),
            "{problems:?}"
        );
        assert!(!problems[0].contains("Zo"));
        s.steps.clear();
        // Airplane mode before 4.2 has no shell command.
        let mut s = scenario("steps:\n  - toggle: { airplane: on }\n");
        let (_, problems) = run_checks(&mut s, None, 16);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn receive_sms_needs_an_emulator() {
        let mut s = scenario("steps:\n  - receive-sms: { from: \"+6598765432\", body: hi }\n");
        let (_, problems) = run_checks(&mut s, None, 34);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("not an emulator"), "{problems:?}");
        let offers = Offers {
            uiautomator: None,
            sdk: 34,
            console_port: Some(5554),
        };
        let mut plan = Plan::default();
        assert!(check_step(&mut s.steps[0], &offers, &mut plan, Path::new("."), "s").is_empty());
    }

    #[test]
    fn apks_are_checked_on_this_computer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.apk"), b"PK\x03\x04rest").unwrap();
        std::fs::write(dir.path().join("bad.apk"), b"<html>").unwrap();
        assert_eq!(
            check_apk(dir.path(), "good.apk").unwrap(),
            dir.path().join("good.apk")
        );
        assert!(
            check_apk(dir.path(), "bad.apk")
                .unwrap_err()
                .contains("not an APK")
        );
        assert!(
            check_apk(dir.path(), "missing.apk")
                .unwrap_err()
                .contains("cannot read")
        );
        assert!(
            check_apk(dir.path(), ".")
                .unwrap_err()
                .contains("not a file")
        );
        assert_eq!(
            scenario_dir(Path::new("<builtin>/x.yaml")),
            PathBuf::from(".")
        );
        assert_eq!(scenario_dir(Path::new("x.yaml")), PathBuf::from("."));
        assert_eq!(scenario_dir(Path::new("a/b/x.yaml")), PathBuf::from("a/b"));
    }
}
