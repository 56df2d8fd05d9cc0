//! What a handset can do, expressed as adb commands: its identity, its identifiers, the scenario steps,
//! its clock.
//!
//! Owns the mapping from tattle's vocabulary (fresh-setup, add-contact, send-sms) to Android shell
//! commands, chosen by Android version, and the parsing of their output (`parse`). Works unchanged on a
//! USB phone, the emulator and the virtual handset: nothing here knows which one it drives. Split by
//! concern: `identifiers` reads the identifiers (with `methods`, the per-release `service call` table,
//! `access` for root, `dialer` for the `*#06#` dialog, `screen` for `uiautomator dump`, `validate` for
//! the formats), `preflight` is what `tattle devices` reports, `firmware` the snapshot key.
//!
//! Must not touch: the terminal, the capture bytes, the virtual handset's code or tables (the two are
//! written separately from Android's sources so their tests prove something), the UI steps of
//! scenarios (`ui`, owned with the scenario runner).
//!
//! What was exercised where: every command here runs in the test suite against the virtual handset
//! through Debian's adb server. Real phones and the emulator were not available when this was written;
//! the commands follow AOSP's tools (`content`, `am`, `input`, `service`, `settings`, `pm`,
//! `uiautomator`) and docs/device.md and docs/devices.md say what was run where.

pub mod access;
pub mod clock;
pub mod dialer;
pub mod firmware;
pub mod identifiers;
pub mod methods;
pub mod parse;
pub mod preflight;
pub mod screen;
pub mod shell;
pub mod ui;
pub mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use firmware::{Fingerprint, FirmwareKey, FirmwareSource};
pub use identifiers::{IdentifierReport, ReadOptions, Reading};

use crate::adb::{AdbDevice, AdbError, ShellOutput, shell_quote};
use tattle_analysis::Redactor;
use tattle_analysis::identifier::Identifier;

/// Errors while driving a handset.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Adb(#[from] AdbError),
    #[error("`{command}` failed on the device (exit {exit}): {output}")]
    CommandFailed {
        command: String,
        exit: String,
        output: String,
    },
    #[error("{what}\n  help: {fix}")]
    Unsupported { what: String, fix: String },
    #[error("{what}: the device's answer could not be understood: {detail}")]
    Unexpected { what: String, detail: String },
}

/// Who the handset is: read from its properties, recorded in every run and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceIdentity {
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    /// `ro.product.name`.
    pub product: String,
    /// `ro.product.device`.
    pub device: String,
    /// `ro.product.brand`.
    pub brand: String,
    /// `ro.build.fingerprint`, whole: `brand/product/device:release/id/incremental:type/tags`.
    pub fingerprint: String,
    /// `ro.build.display.id`: the build users see in Settings → About (two builds of a phone often
    /// share it).
    pub build: String,
    /// `ro.build.id`.
    pub build_id: String,
    /// `ro.build.version.incremental`.
    pub incremental: String,
    /// `ro.build.version.security_patch` (Android 6+); `None` when the device has none.
    pub security_patch: Option<String>,
    /// `gsm.version.baseband`: the modem firmware; `None` when the device has none (no modem, or
    /// the radio has not reported it yet).
    pub baseband: Option<String>,
    pub android_release: String,
    pub sdk: u32,
}

impl DeviceIdentity {
    /// The identity in a set of system properties (`getprop`'s `[key]: [value]` lines, parsed).
    pub fn from_props(serial: &str, props: &BTreeMap<String, String>) -> DeviceIdentity {
        let get = |key: &str| props.get(key).cloned().unwrap_or_default();
        let optional = |key: &str| {
            props
                .get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        DeviceIdentity {
            serial: serial.to_string(),
            manufacturer: get("ro.product.manufacturer"),
            model: get("ro.product.model"),
            product: get("ro.product.name"),
            device: get("ro.product.device"),
            brand: get("ro.product.brand"),
            fingerprint: get("ro.build.fingerprint"),
            build: get("ro.build.display.id"),
            build_id: get("ro.build.id"),
            incremental: get("ro.build.version.incremental"),
            security_patch: optional("ro.build.version.security_patch"),
            baseband: optional("gsm.version.baseband"),
            android_release: get("ro.build.version.release"),
            sdk: get("ro.build.version.sdk").trim().parse().unwrap_or(0),
        }
    }

    /// The key snapshots of this build are known by: from the fingerprint (brand, device, build
    /// id, incremental), or what can be read when it is missing or malformed (`FirmwareKey::of`).
    pub fn firmware_key(&self) -> FirmwareKey {
        FirmwareKey::of(self)
    }

    /// Every text field through `redactor` (a serial or a fingerprint may hold an identifier),
    /// for records that are written or shown.
    pub(crate) fn redacted(&self, redactor: &Redactor) -> DeviceIdentity {
        let clean = |s: &String| redactor.clean(s);
        DeviceIdentity {
            serial: clean(&self.serial),
            manufacturer: clean(&self.manufacturer),
            model: clean(&self.model),
            product: clean(&self.product),
            device: clean(&self.device),
            brand: clean(&self.brand),
            fingerprint: clean(&self.fingerprint),
            build: clean(&self.build),
            build_id: clean(&self.build_id),
            incremental: clean(&self.incremental),
            security_patch: self.security_patch.as_ref().map(clean),
            baseband: self.baseband.as_ref().map(clean),
            android_release: clean(&self.android_release),
            sdk: self.sdk,
        }
    }
}

/// An identifier the device would not give, with the reason, so the user can supply it (`--id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MissingIdentifier {
    pub kind: String,
    pub reason: String,
}

/// Time a step's shell commands may take before the device counts as hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A handset driven over adb.
#[derive(Clone)]
pub struct Device {
    adb: AdbDevice,
}

impl Device {
    pub fn new(adb: AdbDevice) -> Self {
        Self { adb }
    }

    pub fn serial(&self) -> &str {
        self.adb.serial()
    }

    pub fn adb(&self) -> &AdbDevice {
        &self.adb
    }

    /// Runs one command; a non-zero exit is an error naming the command (with identifiers redacted by
    /// the caller's reporting, never here: commands may carry canaries, so only the program name is kept).
    async fn run(&self, command: &str) -> Result<ShellOutput, DeviceError> {
        let out = self
            .adb
            .shell_with_timeout(command, COMMAND_TIMEOUT)
            .await?;
        if out.exit_code.is_some_and(|c| c != 0) {
            return Err(DeviceError::CommandFailed {
                command: program_of(command),
                exit: out
                    .exit_code
                    .map_or_else(|| "unknown".to_string(), |c| c.to_string()),
                output: truncate_for_message(&format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout)
                )),
            });
        }
        Ok(out)
    }

    /// Reads the handset's identity from its system properties (one `getprop`).
    pub async fn identity(&self) -> Result<DeviceIdentity, DeviceError> {
        let out = self.run("getprop").await?;
        let props = parse::getprop_all(&out.stdout_text());
        if props.is_empty() {
            return Err(DeviceError::Unexpected {
                what: "getprop".into(),
                detail: "no `[key]: [value]` lines".into(),
            });
        }
        Ok(DeviceIdentity::from_props(self.serial(), &props))
    }

    /// Reads the identifiers a handset holds (IMEI per slot, MEID, IMSI, ICCID, phone number,
    /// Android ID, serial, Wi-Fi MAC, advertising ID), each with how it was read or why it could not
    /// be (`identifiers`). Uses root when the shell is refused and root is there; types `*#06#`
    /// when the IMEI is refused (the screen is left at HOME).
    pub async fn read_identifiers(
        &self,
        identity: &DeviceIdentity,
        options: ReadOptions,
    ) -> Result<IdentifierReport, DeviceError> {
        identifiers::read(&self.adb, identity, options).await
    }

    /// The identifiers to watch for and those that could not be read, for a run.
    pub(crate) async fn identifiers(
        &self,
        identity: &DeviceIdentity,
    ) -> Result<(Vec<Identifier>, Vec<MissingIdentifier>), DeviceError> {
        let report = self
            .read_identifiers(identity, ReadOptions::default())
            .await?;
        Ok((report.identifiers(), report.missing()))
    }

    /// One reading of the device's clock against the host's (`clock::read`): capture timestamps
    /// of the `device` source are on the device's clock, step windows on the host's.
    pub(crate) async fn read_clock(&self) -> clock::ClockReading {
        clock::read(&self.adb).await
    }

    /// Device clock minus host clock, in seconds, 0 within the reading's own uncertainty; an error
    /// saying why when the clock could not be read.
    pub(crate) async fn clock_offset(&self) -> Result<f64, DeviceError> {
        let reading = self.read_clock().await;
        match reading.unmeasured {
            Some(why) => Err(DeviceError::Unexpected {
                what: "the device's clock".into(),
                detail: why,
            }),
            None => Ok(reading.applied()),
        }
    }

    /// "A known clean state" without a factory reset: wipes the contacts and SMS databases, then marks
    /// the setup wizard as completed (0 → 1), which is what firmwares react to with their post-setup
    /// activation and sync. A true fresh setup needs the phone reset by hand before the run.
    pub(crate) async fn fresh_setup(&self) -> Result<(), DeviceError> {
        self.run("pm clear com.android.providers.contacts").await?;
        self.run("pm clear com.android.providers.telephony").await?;
        self.run("settings put secure user_setup_complete 0")
            .await?;
        self.run("settings put global device_provisioned 1").await?;
        self.run("settings put secure user_setup_complete 1")
            .await?;
        Ok(())
    }

    /// Adds a contact through the contacts provider: a raw contact in the local (null) account, then a
    /// name row and a mobile phone row attached to it. Verified by reading the rows back.
    pub(crate) async fn add_contact(&self, name: &str, phone: &str) -> Result<(), DeviceError> {
        self.run(
            "content insert --uri content://com.android.contacts/raw_contacts \
             --bind account_type:n: --bind account_name:n:",
        )
        .await?;
        let out = self
            .run("content query --uri content://com.android.contacts/raw_contacts --projection _id")
            .await?;
        let raw_id = parse::content_rows(&out.stdout_text(), &["_id"])
            .iter()
            .filter_map(|row| row.get("_id")?.parse::<u64>().ok())
            .max()
            .ok_or_else(|| DeviceError::Unexpected {
                what: "add-contact".into(),
                detail: "the new raw contact is not listed".into(),
            })?;
        let insert = |mimetype: &str, value: &str, extra: &str| {
            format!(
                "content insert --uri content://com.android.contacts/data \
                 --bind raw_contact_id:i:{raw_id} --bind mimetype:s:{mimetype} --bind {}{extra}",
                shell_quote(&format!("data1:s:{value}"))
            )
        };
        self.run(&insert("vnd.android.cursor.item/name", name, ""))
            .await?;
        // data2 = 2 is Phone.TYPE_MOBILE.
        self.run(&insert(
            "vnd.android.cursor.item/phone_v2",
            phone,
            " --bind data2:i:2",
        ))
        .await?;
        let out = self
            .run(&format!(
                "content query --uri content://com.android.contacts/data --projection mimetype:data1 \
                 --where {}",
                shell_quote(&format!("raw_contact_id={raw_id}"))
            ))
            .await?;
        let rows = parse::content_rows(&out.stdout_text(), &["mimetype", "data1"]);
        let has_phone = rows.iter().any(|r| {
            r.get("mimetype").map(String::as_str) == Some("vnd.android.cursor.item/phone_v2")
                && r.get("data1").map(String::as_str) == Some(phone)
        });
        if !has_phone {
            return Err(DeviceError::Unexpected {
                what: "add-contact".into(),
                detail: "the phone row was not stored".into(),
            });
        }
        Ok(())
    }

    /// Sends an SMS the way a person does: the SENDTO intent opens the default messaging app's compose
    /// screen with the text filled in, then DPAD_RIGHT moves focus to the send button and ENTER presses
    /// it. Verified through the SMS provider's sent box.
    pub(crate) async fn send_sms(&self, to: &str, body: &str) -> Result<(), DeviceError> {
        self.run(&format!(
            "am start -a android.intent.action.SENDTO -d {} --es sms_body {} --ez exit_on_sent true",
            shell_quote(&format!("sms:{to}")),
            shell_quote(body)
        ))
        .await?;
        // The compose screen needs a moment to take focus on a real phone.
        tokio::time::sleep(Duration::from_millis(700)).await;
        self.run("input keyevent 22").await?; // KEYCODE_DPAD_RIGHT
        self.run("input keyevent 66").await?; // KEYCODE_ENTER
        let out = self
            .run("content query --uri content://sms/sent --projection address")
            .await?;
        let rows = parse::content_rows(&out.stdout_text(), &["address"]);
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        if !rows
            .iter()
            .any(|r| r.get("address").is_some_and(|a| digits(a) == digits(to)))
        {
            return Err(DeviceError::Unexpected {
                what: "send-sms".into(),
                detail:
                    "no sent message to the recipient in content://sms/sent (the messaging app \
                         may need another key sequence on this phone; see docs/device.md)"
                        .into(),
            });
        }
        Ok(())
    }

    /// A scenario's `shell` step: runs the command; checks the exit code when one is expected.
    pub(crate) async fn shell_step(
        &self,
        command: &str,
        expect_exit: Option<i32>,
    ) -> Result<ShellOutput, DeviceError> {
        let out = self
            .adb
            .shell_with_timeout(command, COMMAND_TIMEOUT)
            .await?;
        if let Some(expected) = expect_exit
            && out.exit_code != Some(expected)
        {
            return Err(DeviceError::CommandFailed {
                command: crate::adb::command_label(command)
                    .trim_matches('`')
                    .to_string(),
                exit: out
                    .exit_code
                    .map_or_else(|| "unknown".to_string(), |c| c.to_string()),
                output: format!("expected exit {expected}"),
            });
        }
        Ok(out)
    }
}

/// The program and subcommand of one of this module's own command lines (`am start`), for error
/// messages. Only for fixed commands: a user's `shell` step gets `adb::command_label` (one word), since
/// its second word may be a canary.
fn program_of(command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().take(2).collect();
    words.join(" ")
}

/// A command's output for an error message: its first 200 characters, sanitised.
fn truncate_for_message(text: &str) -> String {
    tattle_analysis::sanitize_lines(&text.trim().chars().take(200).collect::<String>())
}

pub(crate) fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_from_getprop() {
        let props = parse::getprop_all(
            "[ro.product.brand]: [google]\n[ro.product.device]: [oriole]\n\
             [ro.build.fingerprint]: [google/oriole/oriole:14/AP2A.240805.005/12025142:user/release-keys]\n\
             [ro.build.id]: [AP2A.240805.005]\n[ro.build.version.incremental]: [12025142]\n\
             [ro.build.version.security_patch]: [2024-08-05]\n[gsm.version.baseband]: []\n\
             [ro.build.version.sdk]: [34]\n",
        );
        let id = DeviceIdentity::from_props("s", &props);
        assert_eq!(id.security_patch.as_deref(), Some("2024-08-05"));
        assert_eq!(id.baseband, None, "an empty baseband is no baseband");
        assert_eq!(id.sdk, 34);
        assert_eq!(
            id.firmware_key().key,
            "google-oriole-AP2A.240805.005-12025142"
        );
    }

    #[test]
    fn error_messages_keep_only_the_program() {
        assert_eq!(program_of("am start -a x --es sms_body secret"), "am start");
    }
}
