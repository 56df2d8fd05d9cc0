//! What the shell may do on a device: whether adbd already runs as root (`adb root` on a
//! userdebug/eng build or the emulator), which `su` works (`su -c CMD` of SuperSU/Magisk, `su 0 CMD`
//! of AOSP's own su on userdebug builds), whether `adb root` is possible (`ro.debuggable=1`), and
//! whether a program is on the PATH.
//!
//! Owns the detection and the wrapping of a command to run as root. Root is detected, never
//! required, and never switched on: tattle does not run `adb root` itself (it restarts adbd and
//! drops every stream the user has open), it says when it would help.
//!
//! Must not touch: what is read with root (`identifiers`), the adb protocol (`adb`).

use std::time::Duration;

use serde::Serialize;

use super::shell::Shell;
use super::{DeviceError, parse};
use crate::adb::{AdbError, ShellOutput, shell_quote};

/// How long `su` may take to answer: a root manager (Magisk, SuperSU) may ask on the phone's
/// screen first; past this it counts as not granted.
const SU_TIMEOUT: Duration = Duration::from_secs(12);
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// What `su` is tried with.
const PROBE: &str = "sh -c id";

/// How a command runs as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum RootForm {
    /// adbd itself runs as root (`adb root` was done, or the build's adbd is root): commands as
    /// they are.
    #[serde(rename = "adb root")]
    AdbdRoot,
    /// `su -c 'CMD'` (SuperSU, Magisk, KingRoot …).
    #[serde(rename = "su -c")]
    SuC,
    /// `su 0 CMD…` (AOSP system/extras/su on userdebug/eng builds: the command is exec'd
    /// directly, so it must be a simple command).
    #[serde(rename = "su 0")]
    Su0,
}

impl RootForm {
    pub fn label(self) -> &'static str {
        match self {
            RootForm::AdbdRoot => "adb root",
            RootForm::SuC => "su -c",
            RootForm::Su0 => "su 0",
        }
    }

    /// `command` (a simple command: words, no redirections) as this form runs it as root.
    pub fn wrap(self, command: &str) -> String {
        match self {
            RootForm::AdbdRoot => command.to_string(),
            RootForm::SuC => format!("su -c {}", shell_quote(command)),
            RootForm::Su0 => format!("su 0 {command}"),
        }
    }
}

/// What was found about root on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RootAccess {
    /// The form that works, if any.
    pub form: Option<RootForm>,
    /// `ro.debuggable=1`: `adb root` would give a root adbd (userdebug/eng builds, emulator).
    pub adb_root_possible: bool,
    /// What was tried and what it answered, in words (never command output verbatim).
    pub note: String,
}

impl RootAccess {
    /// What to tell a user who needs root and has none.
    pub fn hint(&self) -> &'static str {
        if self.form.is_some() {
            ""
        } else if self.adb_root_possible {
            "this build is debuggable: `adb root` gives tattle root"
        } else {
            "no root: a user build without su"
        }
    }
}

/// Finds root: a root adbd first (no prompt, nothing to grant), then `su -c`, then `su 0`.
/// `debuggable` is `ro.debuggable` read with the identity.
pub async fn probe_root(adb: &impl Shell, debuggable: bool) -> Result<RootAccess, DeviceError> {
    let id = run(adb, "id", PROBE_TIMEOUT).await?;
    if parse::id_is_root(&id.stdout_text()) {
        return Ok(RootAccess {
            form: Some(RootForm::AdbdRoot),
            adb_root_possible: debuggable,
            note: "adbd runs as root".into(),
        });
    }
    let mut tried = Vec::new();
    for form in [RootForm::SuC, RootForm::Su0] {
        // A command of several words, as the real ones are: AOSP 4.4's su takes `-c` for uid 0
        // and execs a single word alone, so `su -c id` works there while `su -c 'service call …'`
        // fails with `su: exec failed` (system/extras 4.4.4_r1 su.c).
        match run(adb, &form.wrap(PROBE), SU_TIMEOUT).await {
            Ok(out) => {
                let text = format!("{}{}", out.stdout_text(), out.stderr_text());
                if parse::id_is_root(&text) {
                    return Ok(RootAccess {
                        form: Some(form),
                        adb_root_possible: debuggable,
                        note: format!("`{}` gives uid 0", form.label()),
                    });
                }
                // mksh's own message for a missing program (`/system/bin/sh: su: not found`);
                // not su's `exec failed … No such file or directory`, which means su is there.
                if out.exit_code == Some(127)
                    || text.contains("su: not found")
                    || text.contains("su: inaccessible or not found")
                {
                    tried.push("no `su` on the PATH".to_string());
                    // No su at all: the other form cannot work either.
                    break;
                }
                tried.push(format!("`{}` did not give uid 0", form.label()));
            }
            Err(DeviceError::Adb(AdbError::Timeout { .. })) => {
                tried.push(format!(
                    "`{}` did not answer within {}s (a root manager asking on the phone's screen?)",
                    form.label(),
                    SU_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(e),
        }
    }
    tried.dedup();
    let mut note = tried.join("; ");
    if debuggable {
        note.push_str("; adbd is not root but `adb root` is possible (ro.debuggable=1)");
    }
    Ok(RootAccess {
        form: None,
        adb_root_possible: debuggable,
        note,
    })
}

/// Whether `program` is on the device's PATH: toybox `which` (6.0+), else mksh's `command -v`
/// (KitKat's toolbox has no `which`).
pub async fn has_program(adb: &impl Shell, program: &str) -> Result<bool, DeviceError> {
    let quoted = shell_quote(program);
    // A path to the program, alone on its line: not `/system/bin/sh: which: not found`, which the
    // legacy shell merges into stdout.
    let is_path = |line: &str| {
        let line = line.trim();
        line.starts_with('/') && !line.contains(' ') && line.ends_with(&format!("/{program}"))
    };
    let out = run(adb, &format!("which {quoted}"), PROBE_TIMEOUT).await?;
    let text = out.stdout_text();
    if text.lines().any(is_path) && out.exit_code.is_none_or(|c| c == 0) {
        return Ok(true);
    }
    let which_missing = out.exit_code == Some(127)
        || format!("{text}{}", out.stderr_text()).contains("which: not found");
    if !which_missing {
        return Ok(false);
    }
    let out = run(adb, &format!("command -v {quoted}"), PROBE_TIMEOUT).await?;
    Ok(out.stdout_text().lines().any(is_path))
}

async fn run(
    adb: &impl Shell,
    command: &str,
    timeout: Duration,
) -> Result<ShellOutput, DeviceError> {
    Ok(adb.run(command, timeout).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KitKat's legacy shell: no exit codes, stderr merged into stdout, toolbox without `which`.
    struct KitKat;

    impl Shell for KitKat {
        fn run(
            &self,
            command: &str,
            _timeout: Duration,
        ) -> impl std::future::Future<Output = Result<ShellOutput, AdbError>> + Send {
            let text = match command {
                "command -v tcpdump" => "/system/xbin/tcpdump\r\n".to_string(),
                "command -v su" => String::new(),
                c if c.starts_with("which ") => "/system/bin/sh: which: not found\r\n".into(),
                c => format!(
                    "/system/bin/sh: {}: not found\r\n",
                    c.split_whitespace().next().unwrap_or("")
                ),
            };
            std::future::ready(Ok(ShellOutput {
                stdout: text.into_bytes(),
                stderr: Vec::new(),
                exit_code: None,
            }))
        }
    }

    #[tokio::test]
    async fn programs_on_a_shell_without_which() {
        assert!(has_program(&KitKat, "tcpdump").await.unwrap());
        assert!(
            !has_program(&KitKat, "su").await.unwrap(),
            "the shell's own `not found` line is not a path"
        );
        let root = probe_root(&KitKat, false).await.unwrap();
        assert_eq!(root.form, None);
        assert_eq!(root.note, "no `su` on the PATH");
    }

    #[test]
    fn root_forms_wrap_commands() {
        let cmd = "service call iphonesubinfo 1 s16 root";
        assert_eq!(RootForm::AdbdRoot.wrap(cmd), cmd);
        assert_eq!(
            RootForm::SuC.wrap(cmd),
            "su -c 'service call iphonesubinfo 1 s16 root'"
        );
        assert_eq!(
            RootForm::Su0.wrap(cmd),
            "su 0 service call iphonesubinfo 1 s16 root"
        );
    }
}
