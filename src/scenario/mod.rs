//! Scenarios: YAML files of steps (`fresh-setup`, `idle`, `add-contact`, `send-sms`, `shell`, and
//! the UI steps `launch`, `tap`, `wait-for`, `type`, `key`, `toggle`, `install`, `reboot`, with
//! `any` for alternatives) plus the canary identifiers a run plants on the device.
//!
//! Owns parsing, whole-file validation (every problem reported with file, line, column and a fix,
//! before anything touches a device), `{placeholder}` expansion, and the built-in scenarios embedded
//! from `scenarios/*.yaml`. The format is documented in `docs/scenarios.md`.
//!
//! A scenario may name its capture source (`capture:`); what a source is belongs to `capture`.
//!
//! Must not touch: devices or adb (the `device` module maps steps to adb commands, and owns the
//! selector and intent types steps carry), the terminal (errors are values; `cli` prints them), the
//! network, the host's files (an `install` path is checked by the runner's preflight).

pub(crate) mod error;
mod template;
pub(crate) mod tree;
mod validate;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{Diagnostic, ScenarioError};

pub use crate::capture::CaptureSource;
pub use crate::device::ui::{By, Intent, Radio, Selector};

use crate::capture::keylog::KeylogSource;
use tattle_analysis::identifier::Identifier;

/// The placeholder every scenario may use: a value unique to the run.
pub const RUN_ID: &str = "run_id";
/// How long an action step's traffic is attributed to it when the scenario does not say.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);
/// Scenario files are a few hundred bytes; anything past this is not a scenario.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Steps per scenario.
pub const MAX_STEPS: usize = 10_000;
/// Every step name, in the order the docs present them.
pub const STEP_NAMES: &[&str] = &[
    "fresh-setup",
    "idle",
    "add-contact",
    "send-sms",
    "receive-sms",
    "shell",
    "launch",
    "tap",
    "wait-for",
    "type",
    "key",
    "toggle",
    "install",
    "reboot",
    "any",
];

/// A validated scenario. Templates (`{contact_name}`, `{run_id}`) are unexpanded until [`Scenario::expand`].
#[derive(Clone, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The file it came from (`<builtin>/NAME.yaml` for built-ins); used in messages only.
    pub path: PathBuf,
    /// `(kind, template)` in file order: the canaries this scenario plants.
    pub identifiers: Vec<(String, String)>,
    /// `capture:`: the capture source the scenario asks for (`--capture` wins), a `file:` path as
    /// written (relative to the scenario's folder: [`Scenario::capture_source`]).
    pub capture: Option<CaptureSource>,
    /// `keylog:`: TLS key logs to decrypt the capture with, host paths as written (relative to the
    /// scenario's folder: [`Scenario::keylog_sources`]).
    pub keylogs: Vec<KeylogSource>,
    /// `policy:`: a policy file the run is judged by when `--policy` names none, as written
    /// (relative to the scenario's folder: [`Scenario::policy_path`]; docs/policy.md).
    pub policy: Option<PathBuf>,
    pub steps: Vec<Step>,
    /// SHA-256 (hex) of the scenario file's bytes as read: the run directory's manifest names the
    /// exact scenario a run followed.
    pub sha256: String,
}

/// One step of a scenario.
#[derive(Clone, PartialEq, Eq)]
pub struct Step {
    pub action: StepAction,
    /// How long after the action its traffic is attributed to it. Zero for `idle`, whose window is its
    /// own duration.
    pub settle: Duration,
    /// 1-based line of the step in the file, for messages that point back at it.
    pub line: usize,
}

/// How `send-sms` may send, in the order tried (`via:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsVia {
    /// The messaging app's Send button, found on the screen and tapped.
    Ui,
    /// DPAD_RIGHT then ENTER on the compose screen (the method of tattle's first releases).
    Keys,
}

/// How `add-contact` may add, in the order tried (`via:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactVia {
    /// The contacts editor opened by the INSERT intent, its Save button tapped.
    Ui,
    /// Rows written into the contacts provider with `content insert`.
    Provider,
}

impl SmsVia {
    pub fn name(self) -> &'static str {
        match self {
            SmsVia::Ui => "ui",
            SmsVia::Keys => "keys",
        }
    }
}

impl ContactVia {
    pub fn name(self) -> &'static str {
        match self {
            ContactVia::Ui => "ui",
            ContactVia::Provider => "provider",
        }
    }
}

/// What `send-sms` tries when the scenario does not say: the screen first, as a person does.
pub const DEFAULT_SMS_VIA: &[SmsVia] = &[SmsVia::Ui, SmsVia::Keys];
/// What `add-contact` tries when the scenario does not say.
pub const DEFAULT_CONTACT_VIA: &[ContactVia] = &[ContactVia::Ui, ContactVia::Provider];

/// What `launch` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// A package's launcher activity.
    Package(String),
    /// An activity by intent (`am start`).
    Intent(Intent),
}

/// A key of a `key` step, resolved from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPress {
    /// `ENTER`: the name without `KEYCODE_`.
    pub name: &'static str,
    /// Android's `KeyEvent` code.
    pub code: u32,
    /// The first SDK that has the key (the preflight refuses it on older devices).
    pub min_sdk: u32,
}

#[derive(Clone, PartialEq, Eq)]
pub enum StepAction {
    /// Bring the device to a known clean state (not a factory reset on real phones; see docs).
    FreshSetup,
    /// Do nothing for this long while capturing.
    Idle(Duration),
    AddContact {
        name: String,
        phone: String,
        /// Methods in the order tried; the next runs only when the one before did nothing.
        via: Vec<ContactVia>,
    },
    SendSms {
        to: String,
        body: String,
        /// Methods in the order tried; the next runs only when the one before sent nothing.
        via: Vec<SmsVia>,
    },
    /// An SMS arrives from `from` (through the emulator's console: emulators only).
    ReceiveSms { from: String, body: String },
    /// Run a shell command on the device; fail the step when `expect_exit` is set and differs.
    Shell {
        command: String,
        expect_exit: Option<i32>,
    },
    /// Start an app or an activity.
    Launch(Launch),
    /// Wait for a node on the screen, then tap the centre of its bounds.
    Tap { target: Selector, timeout: Duration },
    /// Wait for a node on the screen.
    WaitFor { target: Selector, timeout: Duration },
    /// Type text, into the focused field or into the field `into` finds (tapped first).
    Type {
        text: String,
        into: Option<Selector>,
        timeout: Duration,
    },
    /// Press keys, in order.
    Key(Vec<KeyPress>),
    /// Switch radios, in order: `(radio, on)`.
    Toggle(Vec<(Radio, bool)>),
    /// Install an APK from the host; the path as written (relative to the scenario's folder).
    Install { apk: String },
    /// Reboot and wait for `sys.boot_completed`; the capture restarts after it.
    Reboot { timeout: Duration },
    /// Alternatives, each a list of steps: the first whose steps all succeed is the step's result.
    Any(Vec<Vec<Step>>),
}

impl StepAction {
    /// The step's name as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            StepAction::FreshSetup => "fresh-setup",
            StepAction::Idle(_) => "idle",
            StepAction::AddContact { .. } => "add-contact",
            StepAction::SendSms { .. } => "send-sms",
            StepAction::ReceiveSms { .. } => "receive-sms",
            StepAction::Shell { .. } => "shell",
            StepAction::Launch(_) => "launch",
            StepAction::Tap { .. } => "tap",
            StepAction::WaitFor { .. } => "wait-for",
            StepAction::Type { .. } => "type",
            StepAction::Key(_) => "key",
            StepAction::Toggle(_) => "toggle",
            StepAction::Install { .. } => "install",
            StepAction::Reboot { .. } => "reboot",
            StepAction::Any(_) => "any",
        }
    }

    fn map_strings(&self, f: &dyn Fn(&str) -> String) -> StepAction {
        let sel = |s: &Selector| Selector::new(s.by, f(&s.value));
        let opt = |o: &Option<String>| o.as_deref().map(f);
        match self {
            StepAction::FreshSetup => StepAction::FreshSetup,
            StepAction::Idle(d) => StepAction::Idle(*d),
            StepAction::AddContact { name, phone, via } => StepAction::AddContact {
                name: f(name),
                phone: f(phone),
                via: via.clone(),
            },
            StepAction::SendSms { to, body, via } => StepAction::SendSms {
                to: f(to),
                body: f(body),
                via: via.clone(),
            },
            StepAction::ReceiveSms { from, body } => StepAction::ReceiveSms {
                from: f(from),
                body: f(body),
            },
            StepAction::Shell {
                command,
                expect_exit,
            } => StepAction::Shell {
                command: f(command),
                expect_exit: *expect_exit,
            },
            StepAction::Launch(Launch::Package(p)) => StepAction::Launch(Launch::Package(f(p))),
            StepAction::Launch(Launch::Intent(i)) => StepAction::Launch(Launch::Intent(Intent {
                action: opt(&i.action),
                data: opt(&i.data),
                mime: opt(&i.mime),
                categories: i.categories.iter().map(|c| f(c)).collect(),
                component: opt(&i.component),
                package: opt(&i.package),
                extras: i.extras.iter().map(|(k, v)| (k.clone(), f(v))).collect(),
            })),
            StepAction::Tap { target, timeout } => StepAction::Tap {
                target: sel(target),
                timeout: *timeout,
            },
            StepAction::WaitFor { target, timeout } => StepAction::WaitFor {
                target: sel(target),
                timeout: *timeout,
            },
            StepAction::Type {
                text,
                into,
                timeout,
            } => StepAction::Type {
                text: f(text),
                into: into.as_ref().map(sel),
                timeout: *timeout,
            },
            StepAction::Key(k) => StepAction::Key(k.clone()),
            StepAction::Toggle(t) => StepAction::Toggle(t.clone()),
            StepAction::Install { apk } => StepAction::Install { apk: apk.clone() },
            StepAction::Reboot { timeout } => StepAction::Reboot { timeout: *timeout },
            StepAction::Any(alternatives) => StepAction::Any(
                alternatives
                    .iter()
                    .map(|steps| steps.iter().map(|s| s.map_strings(f)).collect())
                    .collect(),
            ),
        }
    }

    /// Steps inside this one (an `any`'s alternatives), for walks over a whole scenario.
    pub fn alternatives(&self) -> &[Vec<Step>] {
        match self {
            StepAction::Any(a) => a,
            _ => &[],
        }
    }
}

impl Step {
    fn map_strings(&self, f: &dyn Fn(&str) -> String) -> Step {
        Step {
            action: self.action.map_strings(f),
            settle: self.settle,
            line: self.line,
        }
    }

    /// The least time this step takes: an idle's duration, else its settle (an `any` adds its
    /// quickest alternative).
    pub fn minimum_duration(&self) -> Duration {
        match &self.action {
            StepAction::Idle(d) => *d,
            StepAction::Any(alternatives) => alternatives
                .iter()
                .map(|steps| {
                    steps
                        .iter()
                        .map(Step::minimum_duration)
                        .fold(Duration::ZERO, Duration::saturating_add)
                })
                .min()
                .unwrap_or_default()
                .saturating_add(self.settle),
            _ => self.settle,
        }
    }
}

/// Expanded steps hold canary values (a contact's name, an SMS text, a typed text, a selector's
/// text), so `Debug` shows only their length: a stray `{:?}` in a log must not leak them. Shell
/// commands, resource ids, key names and paths are shown; they are code.
impl fmt::Debug for StepAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |s: &str| format!("{} chars", s.chars().count());
        match self {
            StepAction::FreshSetup => write!(f, "FreshSetup"),
            StepAction::Idle(d) => write!(f, "Idle({d:?})"),
            StepAction::AddContact { name, phone, via } => {
                write!(
                    f,
                    "AddContact {{ name: {}, phone: {}, via: {via:?} }}",
                    len(name),
                    len(phone)
                )
            }
            StepAction::SendSms { to, body, via } => {
                write!(
                    f,
                    "SendSms {{ to: {}, body: {}, via: {via:?} }}",
                    len(to),
                    len(body)
                )
            }
            StepAction::ReceiveSms { from, body } => {
                write!(
                    f,
                    "ReceiveSms {{ from: {}, body: {} }}",
                    len(from),
                    len(body)
                )
            }
            StepAction::Shell {
                command,
                expect_exit,
            } => f
                .debug_struct("Shell")
                .field("command", command)
                .field("expect_exit", expect_exit)
                .finish(),
            StepAction::Launch(Launch::Package(p)) => write!(f, "Launch({p:?})"),
            StepAction::Launch(Launch::Intent(i)) => write!(f, "Launch({i:?})"),
            StepAction::Tap { target, timeout } => write!(f, "Tap({target:?}, {timeout:?})"),
            StepAction::WaitFor { target, timeout } => {
                write!(f, "WaitFor({target:?}, {timeout:?})")
            }
            StepAction::Type {
                text,
                into,
                timeout,
            } => write!(f, "Type({}, into {into:?}, {timeout:?})", len(text)),
            StepAction::Key(keys) => {
                let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
                write!(f, "Key({names:?})")
            }
            StepAction::Toggle(t) => {
                let shown: Vec<String> = t
                    .iter()
                    .map(|(r, on)| format!("{} {}", r.name(), if *on { "on" } else { "off" }))
                    .collect();
                write!(f, "Toggle({shown:?})")
            }
            StepAction::Install { apk } => write!(f, "Install({apk:?})"),
            StepAction::Reboot { timeout } => write!(f, "Reboot({timeout:?})"),
            StepAction::Any(alternatives) => f.debug_list().entries(alternatives).finish(),
        }
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (line {}, settle {:?})",
            self.action, self.line, self.settle
        )
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = self.identifiers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("identifier_kinds", &kinds)
            .field("capture", &self.capture)
            .field("steps", &self.steps)
            .finish()
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let read_err = |source: std::io::Error| ScenarioError::Read {
            path: path.to_path_buf(),
            help: read_help(&source),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        // One byte past the limit is enough to know the file is too big, without reading all of it.
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let good = std::str::from_utf8(good).unwrap_or_default();
                let line = good.matches('\n').count() + 1;
                let col = good.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                let d = Diagnostic::new(
                    path,
                    good,
                    line,
                    col,
                    1,
                    "the file is not UTF-8 text".to_string(),
                    Some("save the scenario as UTF-8".to_string()),
                );
                return Err(ScenarioError::Invalid {
                    diagnostics: vec![d],
                    omitted: 0,
                });
            }
        };
        Scenario::parse(&text, path)
    }

    /// Validates scenario text; `path` is used in messages and kept in [`Scenario::path`].
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let result = validate::validate(text, path);
        match &result {
            Ok(s) => tracing::debug!(scenario = %s.name, steps = s.steps.len(), "scenario loaded"),
            Err(e) => {
                tracing::debug!(path = %path.display(), problems = e.diagnostics().len(), "scenario rejected")
            }
        }
        result
    }

    /// Loads `arg` as a file when it names one, else as a built-in scenario (`send-sms`).
    pub fn resolve(arg: &str) -> Result<Scenario, ScenarioError> {
        let path = Path::new(arg);
        if path.exists() {
            return Scenario::load(path);
        }
        let stem = arg.strip_suffix(".yaml").unwrap_or(arg);
        if let Some((file, yaml)) = builtin(stem) {
            return Scenario::parse(yaml, &Path::new("<builtin>").join(file));
        }
        let help = match error::did_you_mean(stem, builtin_names().iter().copied()) {
            Some(s) => format!("did you mean the built-in `{s}`? (no file `{arg}` exists either)"),
            None => format!(
                "give a path to a .yaml file, or one of the built-in scenarios: {}",
                builtin_names().join(", ")
            ),
        };
        Err(ScenarioError::UnknownName {
            name: arg.chars().take(200).collect(),
            help,
        })
    }

    /// Expands {placeholders}: `{run_id}` and the scenario's identifiers (which may use {run_id}).
    /// Returns the scenario with every template filled in, and the canary identifiers (kind, value).
    pub fn expand(&self, run_id: &str) -> (Scenario, Vec<Identifier>) {
        let run_only = |n: &str| (n == RUN_ID).then_some(run_id);
        let identifiers: Vec<(String, String)> = self
            .identifiers
            .iter()
            .map(|(kind, t)| (kind.clone(), template::fill(t, run_only)))
            .collect();
        let lookup = |n: &str| {
            if n == RUN_ID {
                Some(run_id)
            } else {
                identifiers
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.as_str())
            }
        };
        let fill = |t: &str| template::fill(t, lookup);
        let steps = self.steps.iter().map(|s| s.map_strings(&fill)).collect();
        let canaries = identifiers
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| Identifier::new(k.clone(), v.clone()))
            .collect();
        let expanded = Scenario {
            name: self.name.clone(),
            description: self.description.clone(),
            path: self.path.clone(),
            identifiers,
            capture: self.capture.clone(),
            keylogs: self.keylogs.clone(),
            policy: self.policy.clone(),
            steps,
            sha256: self.sha256.clone(),
        };
        (expanded, canaries)
    }

    /// The capture source the scenario asks for, a relative `file:` path taken from the scenario
    /// file's folder (built-ins ask for none).
    pub fn capture_source(&self) -> Option<CaptureSource> {
        let base = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        self.capture.as_ref().map(|c| c.relative_to(base))
    }

    /// The scenario's `policy:`, taken from its folder when relative.
    pub fn policy_path(&self) -> Option<PathBuf> {
        let base = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        self.policy.as_ref().map(|p| base.join(p))
    }

    /// The scenario's key logs, host paths taken from its folder when relative.
    pub fn keylog_sources(&self) -> Vec<KeylogSource> {
        let base = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        self.keylogs
            .iter()
            .map(|k| match k {
                KeylogSource::Host(p) if p.is_relative() => KeylogSource::Host(base.join(p)),
                other => other.clone(),
            })
            .collect()
    }

    /// Sum of idle durations and settle times: a lower bound on how long a run takes.
    pub fn minimum_duration(&self) -> Duration {
        self.steps
            .iter()
            .map(Step::minimum_duration)
            .fold(Duration::ZERO, Duration::saturating_add)
    }
}

fn read_help(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "check the path; built-in scenarios can be named directly: {}",
            builtin_names().join(", ")
        ),
        std::io::ErrorKind::PermissionDenied => "check the file's permissions".to_string(),
        _ => "give the path of a readable .yaml file".to_string(),
    }
}

const BUILTINS: &[(&str, &str, &str)] = &[
    (
        "fresh-setup",
        "fresh-setup.yaml",
        include_str!("../../scenarios/fresh-setup.yaml"),
    ),
    (
        "add-contact",
        "add-contact.yaml",
        include_str!("../../scenarios/add-contact.yaml"),
    ),
    (
        "send-sms",
        "send-sms.yaml",
        include_str!("../../scenarios/send-sms.yaml"),
    ),
];

const BUILTIN_NAMES: &[&str] = &["fresh-setup", "add-contact", "send-sms"];

/// A built-in scenario by name: its file name and YAML text.
pub fn builtin(name: &str) -> Option<(&'static str, &'static str)> {
    BUILTINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, file, yaml)| (*file, *yaml))
}

/// Names of the built-in scenarios, usable wherever a scenario path is.
pub fn builtin_names() -> &'static [&'static str] {
    BUILTIN_NAMES
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod ui_tests;
