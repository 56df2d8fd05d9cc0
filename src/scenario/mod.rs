//! Scenarios: YAML files of steps (`fresh-setup`, `idle`, `add-contact`, `send-sms`, `shell`) plus
//! the canary identifiers a run plants on the device.
//!
//! Owns parsing, whole-file validation (every problem reported with file, line, column and a fix,
//! before anything touches a device), `{placeholder}` expansion, and the built-in scenarios embedded
//! from `scenarios/*.yaml`. The format is documented in `docs/scenarios.md`.
//!
//! Must not touch: devices or adb (the `device` module maps steps to adb commands), the terminal
//! (errors are values; `cli` prints them), the network.

mod error;
mod template;
mod tree;
mod validate;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{Diagnostic, ScenarioError};

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
pub const STEP_NAMES: &[&str] = &["fresh-setup", "idle", "add-contact", "send-sms", "shell"];

/// A validated scenario. Templates (`{contact_name}`, `{run_id}`) are unexpanded until [`Scenario::expand`].
#[derive(Clone, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The file it came from (`<builtin>/NAME.yaml` for built-ins); used in messages only.
    pub path: PathBuf,
    /// `(kind, template)` in file order: the canaries this scenario plants.
    pub identifiers: Vec<(String, String)>,
    pub steps: Vec<Step>,
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

#[derive(Clone, PartialEq, Eq)]
pub enum StepAction {
    /// Bring the device to a known clean state (not a factory reset on real phones; see docs).
    FreshSetup,
    /// Do nothing for this long while capturing.
    Idle(Duration),
    AddContact {
        name: String,
        phone: String,
    },
    SendSms {
        to: String,
        body: String,
    },
    /// Run a shell command on the device; fail the step when `expect_exit` is set and differs.
    Shell {
        command: String,
        expect_exit: Option<i32>,
    },
}

impl StepAction {
    /// The step's name as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            StepAction::FreshSetup => "fresh-setup",
            StepAction::Idle(_) => "idle",
            StepAction::AddContact { .. } => "add-contact",
            StepAction::SendSms { .. } => "send-sms",
            StepAction::Shell { .. } => "shell",
        }
    }

    fn map_strings(&self, f: impl Fn(&str) -> String) -> StepAction {
        match self {
            StepAction::FreshSetup => StepAction::FreshSetup,
            StepAction::Idle(d) => StepAction::Idle(*d),
            StepAction::AddContact { name, phone } => StepAction::AddContact {
                name: f(name),
                phone: f(phone),
            },
            StepAction::SendSms { to, body } => StepAction::SendSms {
                to: f(to),
                body: f(body),
            },
            StepAction::Shell {
                command,
                expect_exit,
            } => StepAction::Shell {
                command: f(command),
                expect_exit: *expect_exit,
            },
        }
    }
}

/// Expanded steps hold canary values (a contact's name, an SMS text), so `Debug` shows only their
/// length: a stray `{:?}` in a log must not leak them. Shell commands are shown; they are code.
impl fmt::Debug for StepAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |s: &str| format!("{} chars", s.chars().count());
        match self {
            StepAction::FreshSetup => write!(f, "FreshSetup"),
            StepAction::Idle(d) => write!(f, "Idle({d:?})"),
            StepAction::AddContact { name, phone } => {
                write!(
                    f,
                    "AddContact {{ name: {}, phone: {} }}",
                    len(name),
                    len(phone)
                )
            }
            StepAction::SendSms { to, body } => {
                write!(f, "SendSms {{ to: {}, body: {} }}", len(to), len(body))
            }
            StepAction::Shell {
                command,
                expect_exit,
            } => f
                .debug_struct("Shell")
                .field("command", command)
                .field("expect_exit", expect_exit)
                .finish(),
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
        let steps = self
            .steps
            .iter()
            .map(|s| Step {
                action: s.action.map_strings(|t| template::fill(t, lookup)),
                settle: s.settle,
                line: s.line,
            })
            .collect();
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
            steps,
        };
        (expanded, canaries)
    }

    /// Sum of idle durations and settle times: a lower bound on how long a run takes.
    pub fn minimum_duration(&self) -> Duration {
        self.steps
            .iter()
            .map(|s| match s.action {
                StepAction::Idle(d) => d,
                _ => s.settle,
            })
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
