//! Reading a device's identifiers, on every release from Android 4.4 (SDK 19) to 15 (SDK 35),
//! rooted or not, the way each release answers.
//!
//! Owns the order of attempts per identifier and the words that say why one could not be read:
//! - IMEI (per SIM slot) and MEID: `dumpsys iphonesubinfo` where it prints the device ID (4.4),
//!   `service call iphonesubinfo` with that release's code and arguments (`methods`); refused
//!   (a SecurityException, or a null that on ≤ 9 can be a denied app-op) → the same call as root
//!   when root is there (`access`); still nothing → the dialer's `*#06#` dialog (`dialer`).
//! - IMSI, ICCID, phone number (per SIM): the default subscription's getters, and per
//!   subscription (`…ForSubscriber`) with the ids `dumpsys isub` lists per slot (5.0+); as root
//!   when the shell is refused.
//! - Android ID (`settings get secure android_id`), serial (`ro.serialno`), Wi-Fi MAC (`wlan0`'s
//!   address in sysfs, else `ip link`), the advertising ID (Play services' preferences: root only).
//!
//! Every value is validated (`validate`) before it is kept. Values never go to logs, errors or
//! `Debug`: only kinds, slots and methods do.
//!
//! Must not touch: the screen beyond the `*#06#` dialog, the capture, what the run does with the
//! values (`runner` merges `--id`, which wins over anything read here).

use std::time::Duration;

use serde::Serialize;
use tattle_analysis::identifier::{Identifier, kinds};

use super::access::{self, RootAccess, RootForm};
use super::methods::{self, Call, Release};
use super::parse::{self, StringReply};
use super::shell::Shell;
use super::{DeviceError, DeviceIdentity, MissingIdentifier, dialer, validate};
use crate::adb::AdbError;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What the reader may do beyond plain shell commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Use root (a root adbd or `su`) when the shell is refused. Probing `su` may make a root
    /// manager ask on the phone's screen.
    pub root: bool,
    /// Type `*#06#` on the dial pad when the IMEI is refused to the shell (changes the screen,
    /// then goes HOME).
    pub screen: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            root: true,
            screen: true,
        }
    }
}

/// Whether an identifier was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Read,
    /// The device has it (or may) but would not give it: the user should pass `--id`.
    Missing,
    /// The device has none: no SIM in that slot, no Play services, no Wi-Fi interface.
    Absent,
}

/// One identifier's reading: how it was read, or why not. The value is never serialised.
#[derive(Clone, Serialize, schemars::JsonSchema)]
pub struct Reading {
    pub kind: String,
    /// SIM slot (0-based, as Android counts) for per-SIM identifiers.
    pub slot: Option<u32>,
    pub status: Status,
    /// The command (or screen action) that gave the value, with placeholders for slot and
    /// subscription ids.
    pub method: Option<String>,
    /// Who ran it: `shell`, `adb root`, `su -c`, `su 0`, or `screen`.
    pub via: Option<&'static str>,
    /// Why it is missing or absent, in words.
    pub reason: Option<String>,
    /// What the user can do (`--id imei=…`).
    pub fix: Option<String>,
    #[serde(skip)]
    value: Option<String>,
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading")
            .field("kind", &self.kind)
            .field("slot", &self.slot)
            .field("status", &self.status)
            .field("method", &self.method)
            .field("via", &self.via)
            .field("reason", &self.reason)
            .finish()
    }
}

impl Reading {
    fn read(
        kind: &str,
        slot: Option<u32>,
        value: String,
        method: String,
        via: &'static str,
    ) -> Self {
        tracing::debug!(kind, slot, via, method = %method, "identifier read");
        Reading {
            kind: kind.into(),
            slot,
            status: Status::Read,
            method: Some(method),
            via: Some(via),
            reason: None,
            fix: None,
            value: Some(value),
        }
    }

    fn missing(kind: &str, slot: Option<u32>, reason: String) -> Self {
        tracing::debug!(kind, slot, reason = %reason, "identifier missing");
        Reading {
            kind: kind.into(),
            slot,
            status: Status::Missing,
            method: None,
            via: None,
            fix: Some(fix_for(kind)),
            reason: Some(reason),
            value: None,
        }
    }

    fn absent(kind: &str, slot: Option<u32>, reason: String) -> Self {
        Reading {
            status: Status::Absent,
            fix: None,
            ..Reading::missing(kind, slot, reason)
        }
    }

    /// The value, for the run's needles (never printed).
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

/// The IMEI reading of a slot whose device ID is a MEID.
fn cdma_imei(slot: u32) -> Reading {
    Reading::absent(
        kinds::IMEI,
        Some(slot),
        "the phone is in CDMA mode: its device ID is the MEID".into(),
    )
}

fn fix_for(kind: &str) -> String {
    let hint = match kind {
        kinds::IMEI => " (dial *#06# on the phone to see it)",
        kinds::PHONE_NUMBER => " (the number of the SIM, with its country code)",
        kinds::WIFI_MAC => " (Settings › About phone › Status)",
        kinds::ADVERTISING_ID => " (Settings › Google › Ads)",
        _ => "",
    };
    format!("pass --id {kind}=VALUE{hint}")
}

/// Everything read from a device: one reading per identifier (per slot for SIM ones), and what
/// was found about root when it was looked at.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct IdentifierReport {
    pub readings: Vec<Reading>,
    /// `None` when root was not needed (and so not probed) or not allowed.
    pub root: Option<RootAccess>,
    /// Android release of the method table used (`6.0–8.1`), `None` before 4.4.
    pub table: Option<&'static str>,
    pub table_evidence: Option<methods::Evidence>,
}

impl IdentifierReport {
    /// The values read, as identifiers to watch for.
    pub fn identifiers(&self) -> Vec<Identifier> {
        let mut out: Vec<Identifier> = Vec::new();
        for r in &self.readings {
            if let Some(v) = &r.value
                && !out.iter().any(|i| i.kind == r.kind && &i.value == v)
            {
                out.push(Identifier::new(r.kind.clone(), v.clone()));
            }
        }
        out
    }

    /// What could not be read, for the run's notes: the slot (when not the first) and the reason.
    pub fn missing(&self) -> Vec<MissingIdentifier> {
        self.readings
            .iter()
            .filter(|r| r.status == Status::Missing)
            .map(|r| MissingIdentifier {
                kind: r.kind.clone(),
                reason: match r.slot {
                    Some(s) if s > 0 => {
                        format!("SIM slot {s}: {}", r.reason.as_deref().unwrap_or(""))
                    }
                    _ => r.reason.clone().unwrap_or_default(),
                },
            })
            .collect()
    }
}

/// What one `service call` answered.
enum Answer {
    Value(String),
    Null,
    Refused(parse::ParcelException),
    /// Not an answer: the service is missing, the reply was unreadable, the call timed out.
    Failed(String),
}

/// Reads every identifier of the device.
pub async fn read<S: Shell>(
    adb: &S,
    identity: &DeviceIdentity,
    options: ReadOptions,
) -> Result<IdentifierReport, DeviceError> {
    let mut reader = Reader {
        adb,
        sdk: identity.sdk,
        release: methods::release(identity.sdk),
        options,
        root: None,
        debuggable: None,
        dialog: None,
    };
    let mut readings = Vec::new();
    match reader.release {
        Some(release) => reader.telephony(release, &mut readings).await?,
        None => {
            for kind in [kinds::IMEI, kinds::IMSI, kinds::ICCID, kinds::PHONE_NUMBER] {
                readings.push(Reading::missing(
                    kind,
                    Some(0),
                    format!(
                        "Android SDK {} is older than 4.4 (SDK 19), the oldest release tattle reads",
                        identity.sdk
                    ),
                ));
            }
        }
    }
    readings.push(reader.android_id().await?);
    readings.push(reader.serial().await?);
    readings.push(reader.wifi_mac().await?);
    readings.push(reader.advertising_id().await?);
    Ok(IdentifierReport {
        readings,
        root: reader.root.flatten(),
        table: reader.release.map(|r| r.android),
        table_evidence: reader.release.map(|r| r.evidence),
    })
}

struct Reader<'a, S: Shell> {
    adb: &'a S,
    sdk: u32,
    release: Option<&'static Release>,
    options: ReadOptions,
    /// `None`: not probed yet; `Some(None)`: root not allowed.
    root: Option<Option<RootAccess>>,
    debuggable: Option<bool>,
    /// The `*#06#` dialog's IDs, once typed (`Err`: why none).
    dialog: Option<Result<dialer::DialogIds, String>>,
}

/// The SIM layout: slots and the subscription in each.
struct Sims {
    count: u32,
    /// Subscription id per slot, when `dumpsys isub` could be read.
    subs: Option<std::collections::BTreeMap<u32, i64>>,
}

impl<S: Shell> Reader<'_, S> {
    async fn shell(&self, command: &str) -> Result<String, DeviceError> {
        let out = self.adb.run(command, COMMAND_TIMEOUT).await?;
        Ok(format!("{}{}", out.stdout_text(), out.stderr_text()))
    }

    async fn getprop(&self, key: &str) -> Result<String, DeviceError> {
        Ok(self
            .adb
            .run(&format!("getprop {key}"), COMMAND_TIMEOUT)
            .await?
            .stdout_text()
            .trim()
            .to_string())
    }

    /// Root, probed once, only when first needed.
    async fn root(&mut self) -> Result<Option<RootForm>, DeviceError> {
        if self.root.is_none() {
            if !self.options.root {
                self.root = Some(None);
            } else {
                let debuggable = self.debuggable().await?;
                self.root = Some(Some(access::probe_root(self.adb, debuggable).await?));
            }
        }
        Ok(self
            .root
            .as_ref()
            .and_then(|r| r.as_ref())
            .and_then(|r| r.form))
    }

    async fn debuggable(&mut self) -> Result<bool, DeviceError> {
        if self.debuggable.is_none() {
            self.debuggable = Some(self.getprop("ro.debuggable").await? == "1");
        }
        Ok(self.debuggable == Some(true))
    }

    /// Why root could not help, for a reason sentence.
    fn no_root_words(&self) -> String {
        match &self.root {
            Some(Some(r)) if r.form.is_none() => format!("no root ({})", r.note),
            Some(None) => "root not tried (--no-root)".into(),
            _ => "no root".into(),
        }
    }

    /// One `service call`, as the shell or as root.
    async fn call(
        &self,
        call: &Call,
        slot: u32,
        sub: i64,
        root: Option<RootForm>,
    ) -> Result<Answer, DeviceError> {
        let command = call.command(slot, sub, methods::calling_package(root.is_some()));
        let command = match root {
            Some(form) => form.wrap(&command),
            None => command,
        };
        let text = match self.adb.run(&command, COMMAND_TIMEOUT).await {
            Ok(out) => format!("{}\n{}", out.stdout_text(), out.stderr_text()),
            Err(AdbError::Timeout { after, .. }) => {
                return Ok(Answer::Failed(format!(
                    "`service call` did not answer within {}s",
                    after.as_secs()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if text.contains("does not exist") || text.contains("Can't find service") {
            return Ok(Answer::Failed(
                "the device has no `iphonesubinfo` service (no telephony)".into(),
            ));
        }
        Ok(match parse::string_reply(&text) {
            Ok(StringReply::Value(v)) => Answer::Value(v),
            Ok(StringReply::Null) => Answer::Null,
            Ok(StringReply::Exception(e)) => Answer::Refused(e),
            Err(why) => Answer::Failed(format!("the reply could not be read: {why}")),
        })
    }

    /// A `service call` identifier: as the shell, then as root when the shell was refused (or,
    /// on ≤ 9, got a null that a denied app-op also gives).
    async fn service_identifier(
        &mut self,
        kind: &str,
        slot: u32,
        call: &Call,
        sub: i64,
    ) -> Result<Reading, DeviceError> {
        let shown = call.shown(methods::calling_package(false));
        let first = self.call(call, slot, sub, None).await?;
        let retry_as_root = match &first {
            Answer::Refused(e) => e.is_security(),
            Answer::Null => self.sdk <= 28 && kind != kinds::PHONE_NUMBER,
            _ => false,
        };
        let (answer, via, shown) = if retry_as_root && let Some(form) = self.root().await? {
            let answer = self.call(call, slot, sub, Some(form)).await?;
            let shown = form.wrap(&call.shown(methods::calling_package(true)));
            (answer, form.label(), shown)
        } else {
            (first, "shell", shown)
        };
        let as_root = via != "shell";
        Ok(match answer {
            // getDeviceId on a phone in CDMA mode answers with its MEID.
            Answer::Value(v)
                if kind == kinds::IMEI
                    && validate::looks_like_meid(&v)
                    && validate::identifier(validate::MEID, &v).is_ok() =>
            {
                let meid = validate::identifier(validate::MEID, &v).expect("checked");
                Reading::read(validate::MEID, Some(slot), meid, shown, via)
            }
            Answer::Value(v) => match validate::identifier(kind, &v) {
                Ok(v) => Reading::read(kind, Some(slot), v, shown, via),
                Err(what) => Reading::missing(
                    kind,
                    Some(slot),
                    format!(
                        "transaction {} ({}) returned {what}: this build's codes differ from AOSP's",
                        call.code, call.method
                    ),
                ),
            },
            Answer::Null => {
                let why = match kind {
                    kinds::IMEI => "the phone reports no device ID (no modem?)".to_string(),
                    kinds::PHONE_NUMBER => {
                        "the SIM does not store its phone number (getLine1Number returned null)"
                            .into()
                    }
                    _ => format!(
                        "{} returned null: no SIM, or the SIM is not ready",
                        call.method
                    ),
                };
                let why = if self.sdk <= 28 && !as_root && kind != kinds::PHONE_NUMBER {
                    format!(
                        "{why}, or the shell's READ_PHONE_STATE app-op is denied; {}",
                        self.no_root_words()
                    )
                } else {
                    why
                };
                Reading::missing(kind, Some(slot), why)
            }
            Answer::Refused(e) => {
                let who = if as_root { "root" } else { "the shell" };
                let mut why = format!("this build refuses it to {who} ({e})");
                if !as_root && e.is_security() {
                    why.push_str(&format!("; {}", self.no_root_words()));
                }
                Reading::missing(kind, Some(slot), why)
            }
            Answer::Failed(why) => Reading::missing(kind, Some(slot), why),
        })
    }

    async fn sims(&mut self, release: &Release) -> Result<Sims, DeviceError> {
        // `persist.radio.multisim.config` (TelephonyManager.getMultiSimConfiguration): dsds/dsda
        // = 2 SIMs, tsts = 3.
        let config = self.getprop("persist.radio.multisim.config").await?;
        let mut count = match config.as_str() {
            "dsds" | "dsda" => 2,
            "tsts" => 3,
            _ => 1,
        };
        let mut subs = None;
        if release.isub {
            let text = self.shell("dumpsys isub").await?;
            let dump = parse::dumpsys_isub(&text);
            if let Some(n) = dump.modem_count {
                count = count.max(n);
            }
            if let Some(max) = dump.slots.keys().max() {
                count = count.max(max + 1);
            }
            if !dump.slots.is_empty() || dump.modem_count.is_some() {
                subs = Some(dump.slots);
            }
        }
        Ok(Sims {
            count: count.min(4),
            subs,
        })
    }

    async fn telephony(
        &mut self,
        release: &'static Release,
        out: &mut Vec<Reading>,
    ) -> Result<(), DeviceError> {
        let sims = self.sims(release).await?;
        for slot in 0..sims.count {
            out.extend(self.device_id(release, slot, sims.count).await?);
        }
        for (kind, default, per_sub) in [
            (kinds::IMSI, &release.imsi, release.imsi_for_sub.as_ref()),
            (kinds::ICCID, &release.iccid, release.iccid_for_sub.as_ref()),
            (
                kinds::PHONE_NUMBER,
                &release.line1,
                release.line1_for_sub.as_ref(),
            ),
        ] {
            for slot in 0..sims.count {
                let sub = sims.subs.as_ref().map(|s| s.get(&slot).copied());
                let reading = match (per_sub, sub) {
                    // The slot's own subscription: the default getters answer for the default
                    // subscription, which on a dual-SIM phone may be the other slot's.
                    (Some(call), Some(Some(sub))) => {
                        let r = self.service_identifier(kind, slot, call, sub).await?;
                        if r.status == Status::Read || slot > 0 {
                            r
                        } else {
                            self.service_identifier(kind, slot, default, 0).await?
                        }
                    }
                    (_, Some(None)) if slot > 0 => Reading::absent(
                        kind,
                        Some(slot),
                        format!("no SIM in slot {slot} (`dumpsys isub` lists no subscription)"),
                    ),
                    _ if slot == 0 => self.service_identifier(kind, 0, default, 0).await?,
                    (None, _) => Reading::missing(
                        kind,
                        Some(slot),
                        format!(
                            "Android {} has no per-subscription getter for it",
                            release.android
                        ),
                    ),
                    (Some(_), _) => Reading::missing(
                        kind,
                        Some(slot),
                        "the subscription in this slot is unknown: `dumpsys isub` could not be read"
                            .into(),
                    ),
                };
                // The same value twice (an invalid subscription falls back to the default one)
                // is one SIM, not two.
                let repeated = reading.value.is_some()
                    && out
                        .iter()
                        .any(|r| r.kind == kind && r.value.is_some() && r.value == reading.value);
                if !repeated {
                    out.push(reading);
                }
            }
        }
        Ok(())
    }

    /// The device ID of a slot: an IMEI, or a MEID on a phone in CDMA mode (then both readings).
    async fn device_id(
        &mut self,
        release: &Release,
        slot: u32,
        slots: u32,
    ) -> Result<Vec<Reading>, DeviceError> {
        if release.dumpsys_device_id && slot == 0 {
            let text = self.shell("dumpsys iphonesubinfo").await?;
            if let Ok(dump) = parse::dumpsys_iphonesubinfo(&text)
                && let Some(id) = dump.device_id
            {
                let method = "dumpsys iphonesubinfo".to_string();
                if validate::looks_like_meid(&id)
                    && let Ok(meid) = validate::identifier(validate::MEID, &id)
                {
                    return Ok(vec![
                        Reading::read(validate::MEID, Some(0), meid, method, "shell"),
                        cdma_imei(0),
                    ]);
                }
                if let Ok(imei) = validate::identifier(kinds::IMEI, &id) {
                    return Ok(vec![Reading::read(
                        kinds::IMEI,
                        Some(0),
                        imei,
                        method,
                        "shell",
                    )]);
                }
            }
        }
        // getDeviceIdForPhone per slot on a multi-SIM phone (getDeviceId answers for the
        // default subscription's phone); getDeviceId alone on a single-SIM one.
        let call = match release.imei_for_slot {
            Some(c) if slots > 1 => c,
            _ if slot == 0 => release.imei,
            _ => {
                return Ok(vec![Reading::missing(
                    kinds::IMEI,
                    Some(slot),
                    format!(
                        "Android {} has no per-slot device ID getter",
                        release.android
                    ),
                )]);
            }
        };
        let first = self.service_identifier(kinds::IMEI, slot, &call, 0).await?;
        if first.kind == validate::MEID {
            return Ok(vec![first, cdma_imei(slot)]);
        }
        let refused = first
            .reason
            .as_deref()
            .is_some_and(|w| w.contains("refuses"));
        if first.status != Status::Read && refused && self.options.screen {
            return Ok(vec![self.imei_from_dialog(slot, first).await?]);
        }
        Ok(vec![first])
    }

    /// The IMEI of `slot` from the `*#06#` dialog (typed once per reading); `shell` is the
    /// reading the shell gave, whose reason is kept when the dialog shows none.
    async fn imei_from_dialog(
        &mut self,
        slot: u32,
        shell: Reading,
    ) -> Result<Reading, DeviceError> {
        if self.dialog.is_none() {
            self.dialog = Some(dialer::read_device_ids(self.adb, self.sdk).await);
        }
        let shell_reason = shell.reason.clone().unwrap_or_default();
        Ok(match self.dialog.as_ref().expect("set") {
            Ok(ids) => match ids.imeis.get(slot as usize) {
                Some(imei) => Reading::read(
                    kinds::IMEI,
                    Some(slot),
                    imei.clone(),
                    "dialer *#06# (uiautomator dump)".into(),
                    "screen",
                ),
                None => Reading::missing(
                    kinds::IMEI,
                    Some(slot),
                    format!(
                        "{shell_reason}; the `*#06#` dialog showed {} IMEI(s), none for this slot",
                        ids.imeis.len()
                    ),
                ),
            },
            Err(why) => Reading::missing(kinds::IMEI, Some(slot), format!("{shell_reason}; {why}")),
        })
    }

    async fn android_id(&mut self) -> Result<Reading, DeviceError> {
        let kind = kinds::ANDROID_ID;
        let method = "settings get secure android_id";
        let text = self.shell(method).await?;
        let value = text.lines().next().unwrap_or("").trim();
        Ok(match validate::identifier(kind, value) {
            Ok(v) => Reading::read(kind, None, v, method.into(), "shell"),
            Err(_) if value == "null" || value.is_empty() => {
                Reading::missing(kind, None, "Settings holds no secure android_id".into())
            }
            Err(what) => Reading::missing(kind, None, format!("`{method}` printed {what}")),
        })
    }

    async fn serial(&mut self) -> Result<Reading, DeviceError> {
        let kind = kinds::SERIAL;
        for key in ["ro.serialno", "ro.boot.serialno"] {
            let value = self.getprop(key).await?;
            if let Ok(v) = validate::identifier(kind, &value) {
                return Ok(Reading::read(
                    kind,
                    None,
                    v,
                    format!("getprop {key}"),
                    "shell",
                ));
            }
        }
        Ok(Reading::missing(
            kind,
            None,
            "ro.serialno and ro.boot.serialno are empty or not a serial number".into(),
        ))
    }

    async fn wifi_mac(&mut self) -> Result<Reading, DeviceError> {
        let kind = kinds::WIFI_MAC;
        let sysfs = "cat /sys/class/net/wlan0/address";
        let text = self.shell(sysfs).await?;
        if let Some(mac) = parse::mac_address(&text) {
            return Ok(self.mac_reading(mac, sysfs.into(), "shell"));
        }
        let denied = text.contains("Permission denied");
        let ip = "ip link show wlan0";
        let ip_text = self.shell(ip).await?;
        if let Some(mac) = parse::mac_address(&ip_text) {
            return Ok(self.mac_reading(mac, ip.into(), "shell"));
        }
        if denied && let Some(form) = self.root().await? {
            let text = self.shell(&form.wrap(sysfs)).await?;
            if let Some(mac) = parse::mac_address(&text) {
                return Ok(self.mac_reading(mac, form.wrap(sysfs), form.label()));
            }
        }
        let no_interface = |t: &str| {
            t.contains("No such file") || t.contains("does not exist") || t.contains("not found")
        };
        Ok(
            if !denied && no_interface(&text) && no_interface(&ip_text) {
                Reading::absent(kind, None, "the device has no wlan0 interface".into())
            } else if denied {
                Reading::missing(
                    kind,
                    None,
                    format!(
                        "wlan0's address is not readable by the shell; {}",
                        self.no_root_words()
                    ),
                )
            } else {
                Reading::missing(
                    kind,
                    None,
                    "neither sysfs nor `ip link` showed wlan0's address".into(),
                )
            },
        )
    }

    fn mac_reading(&self, mac: String, method: String, via: &'static str) -> Reading {
        match validate::identifier(kinds::WIFI_MAC, &mac) {
            Ok(v) => Reading::read(kinds::WIFI_MAC, None, v, method, via),
            Err(_) => Reading::missing(
                kinds::WIFI_MAC,
                None,
                "the device hides it (02:00:00:00:00:00)".into(),
            ),
        }
    }

    async fn advertising_id(&mut self) -> Result<Reading, DeviceError> {
        let kind = kinds::ADVERTISING_ID;
        let gms = self.shell("pm path com.google.android.gms").await?;
        if !gms.contains("package:") {
            return Ok(Reading::absent(
                kind,
                None,
                "no Google Play services: the device has no advertising ID".into(),
            ));
        }
        let prefs = "cat /data/data/com.google.android.gms/shared_prefs/adid_settings.xml";
        let Some(form) = self.root().await? else {
            return Ok(Reading::missing(
                kind,
                None,
                format!(
                    "Play services keeps it in its private storage, which needs root; {}",
                    self.no_root_words()
                ),
            ));
        };
        let text = self.shell(&form.wrap(prefs)).await?;
        Ok(match parse::adid_from_prefs(&text) {
            Some(id) => match validate::identifier(kind, &id) {
                Ok(v) => Reading::read(kind, None, v, form.wrap(prefs), form.label()),
                Err(what) => Reading::missing(kind, None, format!("Play services holds {what}")),
            },
            None => Reading::missing(
                kind,
                None,
                "Play services' adid_settings.xml has no adid_key (never created, or another \
                 Play services version)"
                    .into(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adb::ShellOutput;
    use std::sync::Mutex;

    type Answerer = dyn Fn(&str) -> Option<String> + Send + Sync;

    /// A device that answers like AOSP's tools: `answer` maps a command to its output; anything
    /// else is mksh's `not found`. `legacy`: KitKat's `shell:` (no exit codes, CRLF, stderr
    /// merged).
    struct Scripted {
        answer: Box<Answerer>,
        legacy: bool,
        log: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(
            legacy: bool,
            answer: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        ) -> Self {
            Scripted {
                answer: Box::new(answer),
                legacy,
                log: Mutex::new(Vec::new()),
            }
        }

        fn commands(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    impl Shell for Scripted {
        fn run(
            &self,
            command: &str,
            _timeout: Duration,
        ) -> impl std::future::Future<Output = Result<ShellOutput, AdbError>> + Send {
            self.log.lock().unwrap().push(command.to_string());
            let (text, code) = match (self.answer)(command) {
                Some(t) => (t, 0),
                None => (
                    format!(
                        "/system/bin/sh: {}: not found\n",
                        command.split_whitespace().next().unwrap_or("")
                    ),
                    127,
                ),
            };
            let out = if self.legacy {
                ShellOutput {
                    stdout: text.replace('\n', "\r\n").into_bytes(),
                    stderr: Vec::new(),
                    exit_code: None,
                }
            } else {
                ShellOutput {
                    stdout: text.into_bytes(),
                    stderr: Vec::new(),
                    exit_code: Some(code),
                }
            };
            std::future::ready(Ok(out))
        }
    }

    fn identity(sdk: u32) -> DeviceIdentity {
        let props = parse::getprop_all(&format!("[ro.build.version.sdk]: [{sdk}]\n"));
        DeviceIdentity::from_props("scripted", &props)
    }

    /// `service call`'s print of a reply (libbinder printHexData: one line up to 16 bytes, else
    /// `0xOFFSET:` lines of four little-endian words and the ASCII column).
    fn dump(bytes: &[u8]) -> String {
        let ascii = |c: &[u8]| -> String {
            c.iter()
                .map(|&b| {
                    if (b' '..127).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect()
        };
        let words = |c: &[u8]| -> String {
            c.chunks(4)
                .map(|w| format!("{:08x}", u32::from_le_bytes(w.try_into().unwrap())))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if bytes.len() <= 16 {
            return format!("Result: Parcel({} '{}')\n", words(bytes), ascii(bytes));
        }
        let mut out = String::from("Result: Parcel(\n");
        let n = bytes.len().div_ceil(16);
        for (i, c) in bytes.chunks(16).enumerate() {
            out.push_str(&format!(
                "  0x{:08x}: {:35} '{:16}'",
                i * 16,
                words(c),
                ascii(c)
            ));
            out.push_str(if i + 1 == n { ")\n" } else { "\n" });
        }
        out
    }

    fn string16(bytes: &mut Vec<u8>, s: &str) {
        let units: Vec<u16> = s.encode_utf16().collect();
        bytes.extend_from_slice(&(units.len() as i32).to_le_bytes());
        for u in units.iter().chain(std::iter::once(&0)) {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        while !bytes.len().is_multiple_of(4) {
            bytes.push(0);
        }
    }

    fn value(s: &str) -> Option<String> {
        let mut b = 0i32.to_le_bytes().to_vec();
        string16(&mut b, s);
        Some(dump(&b))
    }

    fn null() -> Option<String> {
        Some(dump(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]))
    }

    /// A SecurityException reply with the SDK 28+ stack-trace header.
    fn refused(message: &str) -> Option<String> {
        let mut b = (-1i32).to_le_bytes().to_vec();
        string16(&mut b, message);
        b.extend_from_slice(&0i32.to_le_bytes());
        Some(dump(&b))
    }

    fn reading<'a>(r: &'a IdentifierReport, kind: &str, slot: Option<u32>) -> &'a Reading {
        r.readings
            .iter()
            .find(|x| x.kind == kind && x.slot == slot)
            .unwrap_or_else(|| panic!("no {kind} {slot:?} in {:?}", r.readings))
    }

    /// Android 4.4 over the legacy shell: the IMEI from `dumpsys iphonesubinfo` (PhoneSubInfo.dump,
    /// 4.4.3_r1), the SIM values from codes 3 and 5 without arguments, a null Line1.
    #[tokio::test]
    async fn kitkat_reads_with_dumpsys_and_argumentless_codes() {
        let device = Scripted::new(true, |c| match c {
            "dumpsys iphonesubinfo" => Some(
                "Phone Subscriber Info:\n  Phone Type = GSM\n  Device ID = 490154203237518\n"
                    .into(),
            ),
            "service call iphonesubinfo 3" => value("310260000000000"),
            "service call iphonesubinfo 5" => value("89014103211118510720"),
            "service call iphonesubinfo 6" => null(),
            "settings get secure android_id" => Some("9f3c2a71b4e5d608\n".into()),
            "getprop ro.serialno" => Some("0123456789ABCDEF\n".into()),
            c if c.starts_with("getprop") => Some("\n".into()),
            _ => None,
        });
        let r = read(&device, &identity(19), ReadOptions::default())
            .await
            .unwrap();
        assert_eq!(r.table, Some("4.4"));
        let imei = reading(&r, kinds::IMEI, Some(0));
        assert_eq!(imei.method.as_deref(), Some("dumpsys iphonesubinfo"));
        assert_eq!(imei.value(), Some("490154203237518"));
        let imsi = reading(&r, kinds::IMSI, Some(0));
        assert_eq!(imsi.method.as_deref(), Some("service call iphonesubinfo 3"));
        assert_eq!(reading(&r, kinds::ICCID, Some(0)).status, Status::Read);
        let line1 = reading(&r, kinds::PHONE_NUMBER, Some(0));
        assert_eq!(line1.status, Status::Missing);
        assert!(
            line1
                .reason
                .as_deref()
                .unwrap()
                .contains("does not store its phone number")
        );
        assert_eq!(r.identifiers().len(), 5, "{:?}", r.readings);
        let commands = device.commands();
        assert!(!commands.iter().any(|c| c.contains("s16")), "{commands:?}");
        assert!(
            !commands.iter().any(|c| c.contains("isub")),
            "no isub on 4.4"
        );
        assert!(
            !commands.iter().any(|c| c.starts_with("su")),
            "root was not needed"
        );
    }

    /// A vendor Android 14 that refuses the shell (TelephonyPermissions' SDK 32+ text), dual-SIM,
    /// no root: both IMEIs from the `*#06#` dialog, the dialog closed with its button, HOME; the
    /// SIM values missing with the refusal and the lack of root in words.
    #[tokio::test]
    async fn refused_shell_falls_back_to_the_dialer() {
        let xml = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\"><node index=\"0\" text=\"IMEI\" resource-id=\"android:id/alertTitle\" class=\"android.widget.TextView\" package=\"com.android.phone\" content-desc=\"\" clickable=\"false\" bounds=\"[96,900][984,980]\" /><node index=\"1\" text=\"490154203237518\n356938035643809\" resource-id=\"android:id/message\" class=\"android.widget.TextView\" package=\"com.android.phone\" content-desc=\"\" clickable=\"false\" bounds=\"[96,1000][984,1200]\" /><node index=\"2\" text=\"OK\" resource-id=\"android:id/button1\" class=\"android.widget.Button\" package=\"com.android.phone\" content-desc=\"\" clickable=\"true\" bounds=\"[800,1300][984,1400]\" /></hierarchy>";
        let device = Scripted::new(false, move |c| {
            match c {
            c if c.starts_with("service call iphonesubinfo") => {
                refused("getDeviceId: The uid 2000 does not meet the requirements to access device identifiers.")
            }
            "getprop persist.radio.multisim.config" => Some("dsds\n".into()),
            "dumpsys isub" => Some(
                "SubscriptionManagerService:\n  Active modem count=2\n  Logical SIM slot sub id mapping:\n    Logical SIM slot 0: subId=1\n    Logical SIM slot 1: subId=2\n".into(),
            ),
            "am start -a android.intent.action.DIAL" => {
                Some("Starting: Intent { act=android.intent.action.DIAL }\n".into())
            }
            c if c.starts_with("uiautomator dump") => {
                Some(format!("UI hierchary dumped to: {}\n{xml}", crate::device::screen::DUMP_PATH))
            }
            c if c.starts_with("input ") || c.starts_with("wm ") => Some(String::new()),
            c if c.starts_with("getprop") => Some("\n".into()),
            _ => None,
        }
        });
        let r = read(&device, &identity(34), ReadOptions::default())
            .await
            .unwrap();
        for (slot, imei) in [(0, "490154203237518"), (1, "356938035643809")] {
            let reading = reading(&r, kinds::IMEI, Some(slot));
            assert_eq!(reading.value(), Some(imei));
            assert_eq!(reading.via, Some("screen"));
        }
        let imsi = reading(&r, kinds::IMSI, Some(1));
        assert_eq!(imsi.status, Status::Missing);
        let why = imsi.reason.as_deref().unwrap();
        assert!(
            why.contains(
                "this build refuses it to the shell (SecurityException: getDeviceId: The uid 2000"
            ),
            "{why}"
        );
        assert!(why.contains("no root (no `su` on the PATH)"), "{why}");
        assert_eq!(r.root.as_ref().unwrap().form, None);
        let commands = device.commands();
        // Per-slot getDeviceIdForPhone (code 4) and per-subscription getters with isub's ids.
        assert!(
            commands
                .contains(&"service call iphonesubinfo 4 i32 1 s16 com.android.shell".to_string())
        );
        assert!(
            commands
                .contains(&"service call iphonesubinfo 10 i32 2 s16 com.android.shell".to_string())
        );
        let typed: Vec<&String> = commands
            .iter()
            .filter(|c| c.starts_with("input keyevent 1") || c.starts_with("input keyevent 7"))
            .collect();
        assert_eq!(
            typed,
            [
                "input keyevent 17",
                "input keyevent 18",
                "input keyevent 7",
                "input keyevent 13",
                "input keyevent 18"
            ]
        );
        assert!(
            commands.contains(&"input tap 892 1350".to_string()),
            "{commands:?}"
        );
        let tap = commands
            .iter()
            .position(|c| c == "input tap 892 1350")
            .unwrap();
        assert_eq!(
            commands[tap + 1],
            "input keyevent 3",
            "HOME right after the dialog"
        );
        assert_eq!(
            commands
                .iter()
                .filter(|c| c.starts_with("am start"))
                .count(),
            1,
            "typed once"
        );

        // Without the screen: said so, nothing typed.
        let quiet = Scripted::new(false, |c| {
            c.starts_with("service call").then(|| refused("getDeviceId: The uid 2000 does not meet the requirements to access device identifiers.")).flatten()
        });
        let r = read(
            &quiet,
            &identity(34),
            ReadOptions {
                root: false,
                screen: false,
            },
        )
        .await
        .unwrap();
        let imei = reading(&r, kinds::IMEI, Some(0));
        assert_eq!(imei.status, Status::Missing);
        assert!(imei.reason.as_deref().unwrap().contains("root not tried"));
        assert!(
            !quiet
                .commands()
                .iter()
                .any(|c| c.starts_with("input") || c.starts_with("su"))
        );
    }

    /// Android 9 where the shell gets nulls (a denied app-op) and `su -c` works: the values as
    /// root, with the calling package `root`.
    #[tokio::test]
    async fn null_on_pie_is_retried_as_root() {
        let device = Scripted::new(false, |c| {
            match c {
            c if c.starts_with("service call iphonesubinfo") => null(),
            "id" => Some("uid=2000(shell) gid=2000(shell)\n".into()),
            "su -c 'sh -c id'" => Some("uid=0(root) gid=0(root) context=u:r:magisk:s0\n".into()),
            "su -c 'service call iphonesubinfo 1 s16 root'" => value("490154203237518"),
            "su -c 'service call iphonesubinfo 7 s16 root'" => value("310260000000000"),
            "su -c 'service call iphonesubinfo 10 s16 root'" => value("89014103211118510720"),
            "pm path com.google.android.gms" => Some("package:/system/priv-app/GmsCore/GmsCore.apk\n".into()),
            "su -c 'cat /data/data/com.google.android.gms/shared_prefs/adid_settings.xml'" => Some(
                "<map>\n    <string name=\"adid_key\">38400000-8cf0-11bd-b23e-10b96e40000d</string>\n</map>\n".into(),
            ),
            c if c.starts_with("getprop") => Some("\n".into()),
            _ => None,
        }
        });
        let r = read(&device, &identity(28), ReadOptions::default())
            .await
            .unwrap();
        let imsi = reading(&r, kinds::IMSI, Some(0));
        assert_eq!(imsi.via, Some("su -c"));
        assert_eq!(
            imsi.method.as_deref(),
            Some("su -c 'service call iphonesubinfo 7 s16 root'")
        );
        assert_eq!(
            reading(&r, kinds::IMEI, Some(0)).value(),
            Some("490154203237518")
        );
        assert_eq!(reading(&r, kinds::ADVERTISING_ID, None).via, Some("su -c"));
        // Line1 null is the SIM's, not the app-op's: not retried.
        assert_eq!(
            reading(&r, kinds::PHONE_NUMBER, Some(0)).status,
            Status::Missing
        );
        assert_eq!(r.root.as_ref().unwrap().form, Some(RootForm::SuC));
        assert_eq!(
            device
                .commands()
                .iter()
                .filter(|c| c.as_str() == "su -c 'sh -c id'")
                .count(),
            1,
            "probed once"
        );
    }

    /// A value a vendor's reordered code returns is not kept.
    #[tokio::test]
    async fn wrong_values_are_not_watched_for() {
        let device = Scripted::new(false, |c| match c {
            "service call iphonesubinfo 1 s16 com.android.shell" => value("01"),
            "service call iphonesubinfo 8 s16 com.android.shell" => value("+15555550142"),
            c if c.starts_with("service call") => null(),
            c if c.starts_with("getprop") => Some("\n".into()),
            _ => None,
        });
        let r = read(&device, &identity(33), ReadOptions::default())
            .await
            .unwrap();
        let imsi = reading(&r, kinds::IMSI, Some(0));
        assert_eq!(imsi.status, Status::Missing);
        assert!(imsi.reason.as_deref().unwrap().contains(
            "transaction 8 (getSubscriberId) returned a value that is not a 14–15-digit IMSI"
        ));
        assert!(r.identifiers().is_empty());
    }

    #[test]
    fn report_gives_values_and_missing_without_showing_values() {
        let report = IdentifierReport {
            readings: vec![
                Reading::read(
                    kinds::IMEI,
                    Some(0),
                    "490154203237518".into(),
                    "service call iphonesubinfo 1 s16 com.android.shell".into(),
                    "shell",
                ),
                Reading::missing(kinds::IMEI, Some(1), "refused".into()),
                Reading::absent(kinds::IMSI, Some(1), "no SIM in slot 1".into()),
            ],
            root: None,
            table: Some("11–15"),
            table_evidence: Some(methods::Evidence::Text),
        };
        assert_eq!(report.identifiers().len(), 1);
        let missing = report.missing();
        assert_eq!(missing.len(), 1, "absent values are not missing");
        assert_eq!(missing[0].reason, "SIM slot 1: refused");
        let json = serde_json::to_string(&report).unwrap();
        let debug = format!("{report:?}");
        for shown in [&json, &debug] {
            assert!(!shown.contains("490154203237518"), "{shown}");
        }
        assert!(
            json.contains("\"fix\":\"pass --id imei=VALUE (dial *#06# on the phone to see it)\"")
        );
    }
}
