//! What `tattle devices` reports about one device before any run: who it is, root, tcpdump, which
//! capture sources will work, which identifiers can be read and how (never the values), the
//! firmware key and the clock offset.
//!
//! Owns the gathering of that report and its serialised form (docs/devices.md documents it). Every
//! line is measured on the device, not assumed: the on-device capture is started and waited for,
//! identifiers are read with the same code a run uses.
//!
//! Must not touch: printing (the CLI renders the report), the values read (only their kinds,
//! slots and methods are in the report; `Reading` never serialises its value).

use std::time::Duration;

use serde::Serialize;
use tattle_analysis::Redactor;
use tokio::io::AsyncReadExt as _;

use super::access::{self, RootAccess};
use super::identifiers::{IdentifierReport, ReadOptions, Reading, Status};
use super::methods::Evidence;
use super::{Device, DeviceError, DeviceIdentity, FirmwareSource};
use crate::capture::tcpdump as on_device;

/// How long the on-device capture may take to send its pcap header.
const CAPTURE_PROBE: Duration = Duration::from_secs(10);

/// PCAPdroid's package (github emanuele-f/PCAPdroid).
const PCAPDROID: &str = "com.emanuelef.remote_capture";

/// One device as `tattle devices` shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DeviceReport {
    pub serial: String,
    /// The adb server's state (`device`, `unauthorized`, `offline`, …).
    pub state: String,
    /// Set when the device could not be examined (not ready, or it failed part-way); the other
    /// fields are then null or what was read before.
    pub error: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub android_release: Option<String>,
    pub sdk: Option<u32>,
    /// `ro.build.type`: `user`, `userdebug`, `eng`.
    pub build_type: Option<String>,
    pub firmware_key: Option<String>,
    pub firmware_source: Option<FirmwareSource>,
    pub firmware_note: Option<String>,
    pub root: Option<RootAccess>,
    pub tcpdump: Option<bool>,
    pub capture_sources: Vec<CaptureSource>,
    /// The Android release of the `service call` table used, and how sure its codes are.
    pub method_table: Option<MethodTable>,
    pub identifiers: Vec<Reading>,
    pub clock_offset_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MethodTable {
    pub android: &'static str,
    pub evidence: Evidence,
}

/// Whether a way of capturing this device's traffic works.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CaptureSource {
    /// `device-tcpdump` (what `tattle run` uses), `pcapdroid`, `host`.
    pub source: &'static str,
    pub status: CaptureStatus,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureStatus {
    /// Measured: it captures.
    Works,
    /// Measured or certain: it does not.
    Fails,
    /// Applies to this device but tattle does not drive it: capture by hand, then `tattle analyze`.
    Manual,
}

impl DeviceReport {
    /// A device the adb server lists but that cannot be examined.
    pub fn unavailable(serial: &str, state: &str, why: String) -> DeviceReport {
        DeviceReport {
            serial: serial.into(),
            state: state.into(),
            error: Some(why),
            manufacturer: None,
            model: None,
            android_release: None,
            sdk: None,
            build_type: None,
            firmware_key: None,
            firmware_source: None,
            firmware_note: None,
            root: None,
            tcpdump: None,
            capture_sources: Vec::new(),
            method_table: None,
            identifiers: Vec::new(),
            clock_offset_seconds: None,
        }
    }

    /// Identifiers that can be read, missing, absent.
    pub fn count(&self, status: Status) -> usize {
        self.identifiers
            .iter()
            .filter(|r| r.status == status)
            .count()
    }
}

/// Examines a ready device. An error part-way is kept in the report with what was read before.
/// Every text of the report but the adb serial (how the user names the device, as `adb devices`
/// shows it) goes through a redactor of the values read, so that no identifier is printed even
/// where a device puts one in its model name or an error message.
pub async fn examine(device: &Device, options: ReadOptions) -> DeviceReport {
    let mut report = DeviceReport::unavailable(device.serial(), "device", String::new());
    report.error = None;
    let mut redactor = Redactor::new(&[]);
    if let Err(e) = fill(device, options, &mut report, &mut redactor).await {
        report.error = Some(tattle_analysis::sanitize_lines(&e.to_string()));
    }
    report.redact(&redactor);
    report
}

impl DeviceReport {
    fn redact(&mut self, r: &Redactor) {
        let clean = |s: &mut Option<String>| {
            if let Some(text) = s {
                *text = r.clean(text);
            }
        };
        clean(&mut self.error);
        clean(&mut self.manufacturer);
        clean(&mut self.model);
        clean(&mut self.android_release);
        clean(&mut self.build_type);
        clean(&mut self.firmware_key);
        clean(&mut self.firmware_note);
        if let Some(root) = &mut self.root {
            root.note = r.clean(&root.note);
        }
        for source in &mut self.capture_sources {
            source.detail = r.clean(&source.detail);
        }
        for reading in &mut self.identifiers {
            clean(&mut reading.method);
            clean(&mut reading.reason);
        }
    }
}

async fn fill(
    device: &Device,
    options: ReadOptions,
    report: &mut DeviceReport,
    redactor: &mut Redactor,
) -> Result<(), DeviceError> {
    let identity: DeviceIdentity = device.identity().await?;
    report.manufacturer = Some(identity.manufacturer.clone());
    report.model = Some(identity.model.clone());
    report.android_release = Some(identity.android_release.clone());
    report.sdk = Some(identity.sdk);
    let firmware = identity.firmware_key();
    report.firmware_key = Some(firmware.key);
    report.firmware_source = Some(firmware.source);
    report.firmware_note = firmware.note;
    let prop = |key: &'static str| async move {
        device
            .adb()
            .shell(&format!("getprop {key}"))
            .await
            .map(|o| o.stdout_text().trim().to_string())
    };
    let build_type = prop("ro.build.type").await?;
    let debuggable = prop("ro.debuggable").await? == "1";
    report.build_type = Some(build_type).filter(|t| !t.is_empty());

    let ids: IdentifierReport = device.read_identifiers(&identity, options).await?;
    *redactor = Redactor::new(&ids.identifiers());
    report.method_table = ids.table.map(|android| MethodTable {
        android,
        evidence: ids.table_evidence.unwrap_or(Evidence::Assumed),
    });
    report.identifiers = ids.readings;
    report.root = match ids.root {
        Some(root) => Some(root),
        None if options.root => Some(access::probe_root(device.adb(), debuggable).await?),
        None => None,
    };
    let tcpdump = access::has_program(device.adb(), "tcpdump").await?;
    report.tcpdump = Some(tcpdump);
    report.capture_sources =
        capture_sources(device, &identity, tcpdump, report.root.as_ref()).await?;
    report.clock_offset_seconds = Some(device.clock_offset().await?);
    Ok(())
}

async fn capture_sources(
    device: &Device,
    identity: &DeviceIdentity,
    tcpdump: bool,
    root: Option<&RootAccess>,
) -> Result<Vec<CaptureSource>, DeviceError> {
    let mut out = Vec::new();
    let device_source = if !tcpdump {
        CaptureSource {
            source: "device-tcpdump",
            status: CaptureStatus::Fails,
            detail: "no tcpdump on the device's PATH: `tattle run --tcpdump-binary PATH` pushes a \
                     static one built for the device's ABI"
                .into(),
        }
    } else {
        let plain = on_device::command("tcpdump", None);
        match probe_capture(device, identity.sdk, &plain).await {
            Ok(()) => CaptureSource {
                source: "device-tcpdump",
                status: CaptureStatus::Works,
                detail: "tcpdump started and sent its pcap header (what `tattle run` uses)".into(),
            },
            Err(why) if identity.sdk < 21 => CaptureSource {
                source: "device-tcpdump",
                status: CaptureStatus::Fails,
                detail: why,
            },
            // As `tattle run` does: the shell's tcpdump sent nothing, so through the root found.
            Err(why) => match root.and_then(|r| r.form) {
                Some(form) if form != access::RootForm::AdbdRoot => {
                    let wrapped = on_device::command("tcpdump", Some(form));
                    match probe_capture(device, identity.sdk, &wrapped).await {
                        Ok(()) => CaptureSource {
                            source: "device-tcpdump",
                            status: CaptureStatus::Works,
                            detail: format!(
                                "tcpdump started through `{}` and sent its pcap header (as the \
                                 shell user: {why}); `tattle run` does the same",
                                form.label()
                            ),
                        },
                        Err(rooted) => CaptureSource {
                            source: "device-tcpdump",
                            status: CaptureStatus::Fails,
                            detail: format!("{why}; through `{}`: {rooted}", form.label()),
                        },
                    }
                }
                Some(_) => CaptureSource {
                    source: "device-tcpdump",
                    status: CaptureStatus::Fails,
                    detail: why,
                },
                None => CaptureSource {
                    source: "device-tcpdump",
                    status: CaptureStatus::Fails,
                    detail: format!(
                        "{why}; capturing needs root: {}",
                        match root {
                            Some(r) => on_device::no_root_fix(r),
                            None => "probe it without --no-root".to_string(),
                        }
                    ),
                },
            },
        }
    };
    out.push(device_source);
    let pcapdroid = device
        .adb()
        .shell(&format!("pm path {PCAPDROID}"))
        .await?
        .stdout_text()
        .contains("package:");
    out.push(CaptureSource {
        source: "pcapdroid",
        status: CaptureStatus::Manual,
        detail: if pcapdroid {
            "PCAPdroid is installed (no root needed): capture with it, then `tattle analyze \
             FILE.pcap --id KIND=VALUE`; tattle does not drive it yet"
                .into()
        } else {
            "not installed: PCAPdroid (F-Droid, Play) captures without root through a local VPN; \
             then `tattle analyze FILE.pcap`"
                .into()
        },
    });
    if is_emulator(device.serial(), identity, device).await? {
        out.push(CaptureSource {
            source: "host",
            status: CaptureStatus::Manual,
            detail: "an emulator: its traffic leaves through the host (`emulator -tcpdump FILE`, \
                     or tcpdump on the host), then `tattle analyze FILE`"
                .into(),
        });
    }
    Ok(out)
}

/// Starts a capture command of the run and waits for the 24-byte pcap header: the only proof that
/// tcpdump can capture as the user it runs as.
async fn probe_capture(device: &Device, sdk: u32, command: &str) -> Result<(), String> {
    let mut stream = device.adb().exec_out(command).await.map_err(|e| {
        if sdk < 21 {
            // adbd's `exec:` service (binary-safe stdout) came with Android 5.0.
            format!(
                "this adbd has no `exec:` service (SDK {sdk}; it came with Android 5.0), which \
                 the capture streams through"
            )
        } else {
            format!("the capture could not start: {e}")
        }
    })?;
    let mut header = [0u8; 24];
    match tokio::time::timeout(CAPTURE_PROBE, stream.read_exact(&mut header)).await {
        Ok(Ok(_))
            if matches!(
                u32::from_le_bytes([header[0], header[1], header[2], header[3]]),
                0xa1b2c3d4 | 0xd4c3b2a1 | 0xa1b23c4d | 0x4d3cb2a1 | 0x0a0d0d0a
            ) =>
        {
            Ok(())
        }
        Ok(Ok(_)) => Err("tcpdump's output is not a pcap stream".into()),
        Ok(Err(_)) => Err("tcpdump exited without capturing".into()),
        Err(_) => Err(format!(
            "tcpdump sent nothing within {}s",
            CAPTURE_PROBE.as_secs()
        )),
    }
    // Dropping the stream closes it: tcpdump on the device sees its stdout closed and stops.
}

/// The Android emulator: its serial, or the props its images set (`ro.kernel.qemu`,
/// `ro.boot.qemu`, hardware `ranchu`/`goldfish`).
async fn is_emulator(
    serial: &str,
    identity: &DeviceIdentity,
    device: &Device,
) -> Result<bool, DeviceError> {
    if serial.starts_with("emulator-") || identity.product.starts_with("sdk_") {
        return Ok(true);
    }
    let out = device
        .adb()
        .shell("getprop ro.kernel.qemu; getprop ro.boot.qemu; getprop ro.hardware")
        .await?
        .stdout_text();
    Ok(out
        .lines()
        .any(|l| matches!(l.trim(), "1" | "ranchu" | "goldfish")))
}
