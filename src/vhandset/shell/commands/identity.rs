//! Who and what the shell runs on, as toybox prints it: `id` and `whoami` (the `shell` user, uid 2000,
//! with its groups and SELinux context) and `uname` (an aarch64 Android kernel; `ro.kernel.version` wins
//! when a profile sets it).
//!
//! Must not touch: the handset's state beyond reading its properties.

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::shell::Handset;

/// `id`: the adb shell user.
pub(super) fn id() -> CmdResult {
    CmdResult::ok(
        "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs) context=u:r:shell:s0\n",
    )
}

/// `whoami`.
pub(super) fn whoami() -> CmdResult {
    CmdResult::ok("shell\n")
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
