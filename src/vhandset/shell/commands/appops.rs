//! `appops` (and `cmd appops`): `set`, `get` and `reset` of an app's operation modes, as
//! AppOpsService's shell command answers them (frameworks/base services/core/java/com/android/server/
//! appop/AppOpsService.java, class `Shell`; its texts were read in copies the index does not name):
//! `Error: No UID for PKG in user 0` for a package that is not installed, `Error: Unknown operation
//! string: OP`, `Error: Mode M is not valid`, each exit 255; `set` prints nothing; `get` prints
//! `OP: mode` lines or `No operations.`. Only the operations listed here are known, by their debug
//! name (`ACTIVATE_VPN`) or public one (`android:activate_vpn`); the modes are stored, and read by the
//! apps that care (PCAPdroid's VPN pre-consent, `ACTIVATE_VPN allow`).
//!
//! Must not touch: what an operation means to an app (`apps` reads the table).

use std::sync::Arc;

use super::{CmdResult, installed_packages};
use crate::vhandset::shell::Handset;

/// Debug names and public names of the operations the handset knows (AppOpsManager).
const OPS: &[(&str, &str)] = &[
    ("ACTIVATE_VPN", "android:activate_vpn"),
    ("ACTIVATE_PLATFORM_VPN", "android:activate_platform_vpn"),
    ("RUN_IN_BACKGROUND", "android:run_in_background"),
    ("RUN_ANY_IN_BACKGROUND", "android:run_any_in_background"),
    ("SYSTEM_ALERT_WINDOW", "android:system_alert_window"),
    ("MOCK_LOCATION", "android:mock_location"),
    ("GET_USAGE_STATS", "android:get_usage_stats"),
    ("POST_NOTIFICATION", "android:post_notification"),
];

const MODES: &[&str] = &["allow", "ignore", "deny", "default", "foreground"];

fn op_name(s: &str) -> Option<&'static str> {
    OPS.iter()
        .find(|(debug, public)| *debug == s || *public == s)
        .map(|(debug, _)| *debug)
}

pub(super) fn appops(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let Some(verb) = args.first().map(String::as_str) else {
        return CmdResult::fail(
            "AppOps service (appops) commands:\n  help\n  set [--user <USER_ID>] [--uid] <PACKAGE | UID> <OP> <MODE>\n  get [--user <USER_ID>] [--uid] <PACKAGE | UID> [<OP>]\n  reset [--user <USER_ID>] [<PACKAGE>]\n",
            255,
        );
    };
    // Options before the positional arguments: --user N, --uid.
    let mut rest: Vec<&str> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--user" => i += 2,
            "--uid" => i += 1,
            a => {
                rest.push(a);
                i += 1;
            }
        }
    }
    let installed = installed_packages(handset);
    let check_package = |pkg: &str| -> Result<(), CmdResult> {
        if pkg == "root" || installed.contains(&pkg) {
            Ok(())
        } else {
            Err(CmdResult::fail(
                format!("Error: No UID for {pkg} in user 0\n"),
                255,
            ))
        }
    };
    match verb {
        "set" => {
            let [pkg, op, mode] = rest[..] else {
                return CmdResult::fail("Error: Insufficient arguments\n", 255);
            };
            let Some(op) = op_name(op) else {
                return CmdResult::fail(format!("Error: Unknown operation string: {op}\n"), 255);
            };
            if !MODES.contains(&mode) {
                return CmdResult::fail(format!("Error: Mode {mode} is not valid\n"), 255);
            }
            if let Err(e) = check_package(pkg) {
                return e;
            }
            handset
                .state()
                .appops
                .insert((pkg.to_string(), op.to_string()), mode.to_string());
            CmdResult::default()
        }
        "get" => {
            let Some(pkg) = rest.first().copied() else {
                return CmdResult::fail("Error: Insufficient arguments\n", 255);
            };
            let op = match rest.get(1) {
                Some(o) => match op_name(o) {
                    Some(op) => Some(op),
                    None => {
                        return CmdResult::fail(
                            format!("Error: Unknown operation string: {o}\n"),
                            255,
                        );
                    }
                },
                None => None,
            };
            if let Err(e) = check_package(pkg) {
                return e;
            }
            let st = handset.state();
            let lines: String = st
                .appops
                .iter()
                .filter(|((p, o), _)| p == pkg && op.is_none_or(|op| op == o))
                .map(|((_, o), m)| format!("{o}: {m}\n"))
                .collect();
            if lines.is_empty() {
                CmdResult::ok("No operations.\n")
            } else {
                CmdResult::ok(lines)
            }
        }
        "reset" => {
            let pkg = rest.first().copied();
            handset
                .state()
                .appops
                .retain(|(p, _), _| pkg.is_some_and(|want| want != p));
            CmdResult::default()
        }
        other => CmdResult::fail(format!("Unknown command: {other}\n"), 255),
    }
}
