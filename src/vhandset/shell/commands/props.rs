//! `getprop` and `setprop` on the handset's system properties, as Android's tools print and refuse them
//! (`[key]: [value]` listings; `ro.*` properties that exist are immutable; AOSP's length limits).
//!
//! Must not touch: which properties a handset has (the profile and `shell::State`).

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::shell::Handset;

pub(super) fn getprop(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let mut st = handset.state();
    st.settle_boot();
    match args {
        [] => {
            let mut out = String::new();
            for (k, v) in &st.props {
                out.push_str(&format!("[{k}]: [{v}]\n"));
            }
            CmdResult::ok(out)
        }
        [key] => CmdResult::ok(format!(
            "{}\n",
            st.props.get(key).map_or("", String::as_str)
        )),
        [key, default, ..] => CmdResult::ok(format!(
            "{}\n",
            st.props.get(key).map_or(default.as_str(), String::as_str)
        )),
    }
}

pub(super) fn setprop(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let [key, value] = args else {
        return CmdResult::fail(
            "usage: setprop NAME VALUE\n\nSets an Android system property.\n",
            1,
        );
    };
    let mut st = handset.state();
    let immutable = key.starts_with("ro.") && st.props.contains_key(key);
    if immutable || key.is_empty() || key.len() > 256 || value.len() > 92 || st.props.len() > 4096 {
        return CmdResult::fail(
            format!("Failed to set property '{key}' to '{value}'.\nSee dmesg for error reason.\n"),
            1,
        );
    }
    st.props.insert(key.clone(), value.clone());
    CmdResult::default()
}
