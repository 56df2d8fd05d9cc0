//! `dumpsys` and `wm`: the fixed reports of a phone on a desk (battery full on USB, a 1080x2400 display
//! at 420 dpi); the services scripts ask about and nothing more.
//!
//! Must not touch: the handset's state (nothing here changes or reads it).

use super::CmdResult;

pub(super) fn dumpsys(args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("battery") => CmdResult::ok(
            "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  Wireless powered: false\n  Max charging current: 500000\n  status: 2\n  health: 2\n  present: true\n  level: 100\n  scale: 100\n  voltage: 4300\n  temperature: 250\n  technology: Li-ion\n",
        ),
        Some("window") | Some("activity") => CmdResult::ok(""),
        Some(s) if !s.starts_with('-') => CmdResult::fail(format!("Can't find service: {s}\n"), 0),
        _ => CmdResult::ok(
            "Currently running services:\n  activity\n  battery\n  iphonesubinfo\n  package\n  phone\n  settings\n  window\n",
        ),
    }
}

/// `wm size`, `wm density`.
pub(super) fn wm(args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("size") => CmdResult::ok("Physical size: 1080x2400\n"),
        Some("density") => CmdResult::ok("Physical density: 420\n"),
        _ => CmdResult::fail("Error: unknown command\n", 1),
    }
}
