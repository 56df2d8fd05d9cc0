//! `tattle devices`: the preflight a user runs first. Per device the adb server lists
//! (`host:devices-l`): model, Android version and SDK, root, tcpdump, which capture sources work,
//! which identifiers can be read and how (never their values), the firmware key, the clock offset.
//! Text for people, `--format json` for machines (docs/devices.md).
//!
//! Exit codes: 0 when at least one device was listed; 2 when the adb server cannot be reached or
//! lists no device.
//!
//! Must not touch: how the report is gathered (`device::preflight`), identifier values (the report
//! holds none).

use std::fmt::Write as _;

use serde::Serialize;

use super::{Exit, Format, adb_context, print_json};
use crate::adb::{AdbServer, DeviceState};
use crate::device::identifiers::Status;
use crate::device::preflight::{self, CaptureStatus, DeviceReport};
use crate::device::{Device, FirmwareSource, ReadOptions};
use tattle_analysis::sanitize;

/// Version of the `devices --format json` document; bumped on any incompatible change.
pub const DEVICES_FORMAT_VERSION: u32 = 1;

#[derive(clap::Args, Debug)]
pub(crate) struct DevicesArgs {
    /// Only this device (its serial as `adb devices` lists it).
    #[arg(long, short = 's')]
    device: Option<String>,
    /// Do not try root (`su` may make a root manager ask on the phone's screen).
    #[arg(long)]
    no_root: bool,
    /// Do not type `*#06#` on the dial pad when the shell is refused the IMEI.
    #[arg(long)]
    no_screen: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The `devices --format json` document.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct DevicesDocument<'a> {
    format_version: u32,
    devices: &'a [DeviceReport],
}

pub(crate) async fn run(args: DevicesArgs, server: AdbServer) -> anyhow::Result<Exit> {
    server.ensure_running().await.map_err(adb_context)?;
    let mut listed = server.devices().await.map_err(adb_context)?;
    if let Some(serial) = &args.device {
        listed.retain(|d| &d.serial == serial);
    }
    if listed.is_empty() {
        let what = match &args.device {
            Some(s) => format!("no device `{}` in `adb devices`", sanitize(s)),
            None => "no device is connected to the adb server".into(),
        };
        eprintln!(
            "{what}. Plug in a phone with USB debugging on, start the emulator, or start a virtual \
             handset: `tattle vhandset --profile aosp-clean --port 6520` then `adb connect 127.0.0.1:6520`"
        );
        return Ok(Exit::Environment);
    }
    let options = ReadOptions {
        root: !args.no_root,
        screen: !args.no_screen,
    };
    let mut reports = Vec::new();
    for info in &listed {
        let report = if info.state == DeviceState::Device {
            preflight::examine(&Device::new(server.device(&info.serial)), options).await
        } else {
            DeviceReport::unavailable(
                &info.serial,
                &info.state.to_string(),
                not_ready(&info.state),
            )
        };
        reports.push(report);
    }
    match args.format {
        Format::Json => print_json(&DevicesDocument {
            format_version: DEVICES_FORMAT_VERSION,
            devices: &reports,
        })?,
        Format::Text => {
            for (i, r) in reports.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", render(r));
            }
        }
    }
    Ok(Exit::Clean)
}

fn not_ready(state: &DeviceState) -> String {
    match state {
        DeviceState::Unauthorized => {
            "unauthorized: accept the \"Allow USB debugging\" prompt on the phone".into()
        }
        DeviceState::Offline => "offline: reconnect it, or `adb reconnect`".into(),
        DeviceState::NoPermissions => {
            "no permissions: the USB device node is not accessible to the adb server (udev rules)"
                .into()
        }
        other => format!("{other}: not a booted Android device"),
    }
}

/// The text form of one device's report. Everything in it is already sanitised and redacted
/// (`preflight::examine`), except the serial, sanitised here.
pub(crate) fn render(r: &DeviceReport) -> String {
    let mut out = String::new();
    let opt = |s: &Option<String>| s.as_deref().unwrap_or("?").to_string();
    let _ = write!(out, "{}", sanitize(&r.serial));
    if r.state != "device" {
        let _ = writeln!(out, "  {}", r.error.as_deref().unwrap_or(&r.state));
        return out;
    }
    let _ = writeln!(
        out,
        "  {} {} — Android {} (SDK {}), {} build",
        opt(&r.manufacturer),
        opt(&r.model),
        opt(&r.android_release),
        r.sdk.map_or("?".into(), |s| s.to_string()),
        opt(&r.build_type)
    );
    if let Some(key) = &r.firmware_key {
        let from = match r.firmware_source {
            Some(FirmwareSource::Fingerprint) => "from the build fingerprint".to_string(),
            _ => r
                .firmware_note
                .clone()
                .unwrap_or_else(|| "not from the fingerprint".into()),
        };
        let _ = writeln!(out, "  firmware      {key} ({from})");
    }
    if let Some(root) = &r.root {
        let _ = match root.form {
            Some(form) => writeln!(out, "  root          {} ({})", form.label(), root.note),
            None => writeln!(out, "  root          none ({})", root.note),
        };
    } else if r.error.is_none() {
        let _ = writeln!(out, "  root          not tried (--no-root)");
    }
    if let Some(t) = r.tcpdump {
        let _ = writeln!(
            out,
            "  tcpdump       {}",
            if t { "on the PATH" } else { "not on the PATH" }
        );
    }
    for (i, c) in r.capture_sources.iter().enumerate() {
        let status = match c.status {
            CaptureStatus::Works => "works",
            CaptureStatus::Fails => "fails",
            CaptureStatus::Manual => "by hand",
        };
        let label = if i == 0 { "capture" } else { "" };
        let _ = writeln!(out, "  {label:13} {}: {status} — {}", c.source, c.detail);
    }
    if let Some(offset) = r.clock_offset_seconds {
        let _ = if offset == 0.0 {
            writeln!(out, "  clock         in step with the host")
        } else {
            writeln!(
                out,
                "  clock         the device is {:.2} s {} the host",
                offset.abs(),
                if offset > 0.0 { "ahead of" } else { "behind" }
            )
        };
    }
    if !r.identifiers.is_empty() {
        let table = r
            .method_table
            .as_ref()
            .map(|t| format!(" (service call codes of Android {})", t.android))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  identifiers   {} readable, {} missing, {} absent{table}",
            r.count(Status::Read),
            r.count(Status::Missing),
            r.count(Status::Absent)
        );
        for reading in &r.identifiers {
            let slot = reading
                .slot
                .map(|s| format!("slot {s}"))
                .unwrap_or_default();
            let what = match reading.status {
                Status::Read => format!(
                    "read     {} [{}]",
                    reading.method.as_deref().unwrap_or("?"),
                    reading.via.unwrap_or("?")
                ),
                Status::Missing => format!(
                    "MISSING  {}; {}",
                    reading.reason.as_deref().unwrap_or("?"),
                    reading.fix.as_deref().unwrap_or("")
                ),
                Status::Absent => format!("absent   {}", reading.reason.as_deref().unwrap_or("?")),
            };
            let _ = writeln!(out, "    {:15} {:7} {what}", reading.kind, slot);
        }
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  error         {e}");
    }
    out
}
