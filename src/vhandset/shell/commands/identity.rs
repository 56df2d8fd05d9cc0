//! Who and what the shell runs on, as toybox prints it: `id` and `whoami` (the `shell` user, uid 2000,
//! with its groups and SELinux context, or root) and `uname` (an aarch64 Android kernel; `ro.kernel.version` wins
//! when a profile sets it).
//!
//! Must not touch: the handset's state beyond reading its properties.

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::shell::Handset;

/// The adb shell's supplementary groups.
const SHELL_GROUPS: &str = "1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs)";

/// `id`: the adb shell user, or root (after `adb root`, or under `su`, which keeps the shell's
/// supplementary groups and runs in the `su` SELinux domain of userdebug builds). The group list is the
/// same on every generation: it is not taken from each release.
pub(super) fn id(uid: u32) -> CmdResult {
    CmdResult::ok(if uid == crate::vhandset::shell::ROOT_UID {
        format!("uid=0(root) gid=0(root) groups=0(root),{SHELL_GROUPS} context=u:r:su:s0\n")
    } else {
        format!(
            "uid=2000(shell) gid=2000(shell) groups=2000(shell),{SHELL_GROUPS} context=u:r:shell:s0\n"
        )
    })
}

/// `whoami`.
pub(super) fn whoami(uid: u32) -> CmdResult {
    CmdResult::ok(if uid == crate::vhandset::shell::ROOT_UID {
        "root\n"
    } else {
        "shell\n"
    })
}

pub(super) fn uname(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let release = handset
        .state()
        .props
        .get("ro.kernel.version")
        .cloned()
        .unwrap_or_else(|| "5.15.110-android13-8-00001-gtattle".into());
    let version = "#1 SMP PREEMPT Mon Nov 20 00:00:00 UTC 2023";
    let out = match args.first().map(String::as_str) {
        None | Some("-s") => "Linux".to_string(),
        Some("-a") => format!("Linux localhost {release} {version} aarch64 Toybox"),
        Some("-r") => release,
        Some("-m") => "aarch64".into(),
        Some("-n") => "localhost".into(),
        Some("-v") => version.into(),
        Some(o) => return CmdResult::fail(format!("uname: Unknown option '{o}'\n"), 1),
    };
    CmdResult::ok(format!("{out}\n"))
}
