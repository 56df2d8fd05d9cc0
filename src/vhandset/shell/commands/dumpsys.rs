//! `dumpsys` and `wm`: the fixed reports of a phone on a desk (battery full on USB, a 1080x2400 display
//! at 420 dpi), and the telephony services' dumps as the profile's generation prints them:
//! `dumpsys iphonesubinfo` (the device id on 4.4, nothing from 5.0) and `dumpsys isub` (the slot → subId
//! map). Only the parts of the isub dump that map slots to subscriptions are modelled.
//!
//! Must not touch: the handset's state (nothing here changes it).

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::generation::IsubDump;
use crate::vhandset::shell::Handset;

pub(super) fn dumpsys(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let g = handset.profile().generation;
    match args.first().map(String::as_str) {
        Some("battery") => CmdResult::ok(
            "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  Wireless powered: false\n  Max charging current: 500000\n  status: 2\n  health: 2\n  present: true\n  level: 100\n  scale: 100\n  voltage: 4300\n  temperature: 250\n  technology: Li-ion\n",
        ),
        Some("window") | Some("activity") => CmdResult::ok(""),
        Some("iphonesubinfo") => CmdResult::ok(iphonesubinfo(handset)),
        // Only PCAPdroid's and its mitm add-on's sections are modelled (what tattle reads its version from); any other
        // package, or none installed, prints nothing.
        Some("package") => CmdResult::ok(
            match args.get(1).map(String::as_str) {
                Some(crate::vhandset::apps::pcapdroid::PACKAGE) => {
                    crate::vhandset::apps::pcapdroid::dumpsys_package(handset)
                }
                Some(crate::vhandset::apps::pcapdroid::mitm::PACKAGE) => {
                    crate::vhandset::apps::pcapdroid::mitm::dumpsys_package(handset)
                }
                _ => None,
            }
            .unwrap_or_default(),
        ),
        Some("isub") if g.has_isub() => CmdResult::ok(isub(handset)),
        Some(s) if !s.starts_with('-') => CmdResult::fail(format!("Can't find service: {s}\n"), 0),
        _ => {
            let mut out = String::from("Currently running services:\n");
            for s in [
                "activity",
                "battery",
                "iphonesubinfo",
                "isub",
                "package",
                "phone",
                "settings",
                "window",
            ] {
                if s != "isub" || g.has_isub() {
                    out.push_str(&format!("  {s}\n"));
                }
            }
            CmdResult::ok(out)
        }
    }
}

/// 4.4: `PhoneSubInfo.dump` (opt/telephony android-4.4.3_r1 lines 226–238; the shell holds DUMP). 5.0+:
/// `PhoneSubInfoController` does not override `dump`, and `Binder.dump` prints nothing.
fn iphonesubinfo(handset: &Handset) -> String {
    let profile = handset.profile();
    if !profile.generation.dumpsys.iphonesubinfo_prints_device_id {
        return String::new();
    }
    let imei = profile
        .identifiers
        .get("imei")
        .map_or("null", String::as_str);
    // GSMPhone.getPhoneName() is "GSM".
    format!("Phone Subscriber Info:\n  Phone Type = GSM\n  Device ID = {imei}\n")
}

/// The slot → subId part of `dumpsys isub`: slot i has subId i+1 when a SIM is in it.
fn isub(handset: &Handset) -> String {
    let profile = handset.profile();
    let sims: Vec<(usize, &str)> = [("iccid", 0usize), ("iccid2", 1)]
        .iter()
        .filter_map(|(k, slot)| profile.identifiers.get(*k).map(|v| (*slot, v.as_str())))
        .collect();
    let modems = if profile.identifiers.contains_key("imei2") {
        2
    } else {
        1
    };
    let mut out = String::new();
    match profile.generation.dumpsys.isub {
        IsubDump::Absent => {}
        // SubscriptionController.dump at 9.0.0_r16 line 2154.
        IsubDump::SlotIndexToSubId => {
            for (slot, _) in &sims {
                out.push_str(&format!(" sSlotIndexToSubId[{slot}]: subId={}\n", slot + 1));
            }
        }
        // 10–13: the map entry is printed, so the slot appears twice (11.0.0_r32 line 3114).
        IsubDump::SlotIndexToSubIds => {
            for (slot, _) in &sims {
                out.push_str(&format!(
                    " sSlotIndexToSubId[{slot}]: subIds={slot}=[{}]\n",
                    slot + 1
                ));
            }
        }
        // SubscriptionManagerService.dump, 14.0.0_r11 lines 3969–4000, through the first section;
        // ICCIDs as SubscriptionInfo.getPrintableId prints them on a user build (9 characters, then
        // Rlog.pii's "[****]").
        IsubDump::ManagerService | IsubDump::ManagerServiceUserSubs => {
            // An IndentingPrintWriter at level 0: only the map and ICCID entries are indented.
            out.push_str("SubscriptionManagerService:\n");
            out.push_str(&format!("Active modem count={modems}\n"));
            out.push_str("Logical SIM slot sub id mapping:\n");
            for (slot, _) in &sims {
                out.push_str(&format!("  Logical SIM slot {slot}: subId={}\n", slot + 1));
            }
            out.push_str("ICCID:\n");
            // TelephonyUtils.IS_DEBUGGABLE shows the whole ICCID; a user build hashes all but the
            // first 9 characters to "[****]" (Rlog.secureHash on USER_BUILD).
            let debuggable = profile.prop("ro.debuggable") == Some("1");
            for slot in 0..modems {
                let iccid = sims.iter().find(|(s, _)| *s == slot).map(|(_, v)| *v);
                let shown = match iccid {
                    None => "null".to_string(),
                    Some(v) if v.len() > 9 && !debuggable => format!("{}[****]", &v[..9]),
                    Some(v) => v.to_string(),
                };
                out.push_str(&format!("  slot {slot}: {shown}\n"));
            }
            out.push('\n');
            let default = if sims.is_empty() { -1 } else { 1 };
            for k in [
                "defaultSubId",
                "defaultVoiceSubId",
                "defaultDataSubId",
                "activeDataSubId",
                "defaultSmsSubId",
            ] {
                out.push_str(&format!("{k}={default}\n"));
            }
            out.push_str("areAllSubscriptionsLoaded=true\n");
            // 15 (24Q3 base 34cccdc8 line 4825): the available subscriptions grouped by
            // SubscriptionInfoInternal.getUserId, which is UserHandle.USER_NULL (-10000) for a SIM
            // no user was assigned; a Java HashMap of Lists as toString prints it.
            if profile.generation.dumpsys.isub == IsubDump::ManagerServiceUserSubs {
                let subs: Vec<String> = sims
                    .iter()
                    .map(|(slot, _)| (slot + 1).to_string())
                    .collect();
                if subs.is_empty() {
                    out.push_str("mUserIdToAvailableSubs={}\n");
                } else {
                    out.push_str(&format!(
                        "mUserIdToAvailableSubs={{-10000=[{}]}}\n",
                        subs.join(", ")
                    ));
                }
            }
            out.push('\n');
            for slot in 0..modems {
                let state = if sims.iter().any(|(s, _)| *s == slot) {
                    "LOADED"
                } else {
                    "ABSENT"
                };
                out.push_str(&format!("mSimState[{slot}]={state}\n"));
            }
        }
    }
    out
}

/// `wm size`, `wm density`.
pub(super) fn wm(args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("size") => CmdResult::ok("Physical size: 1080x2400\n"),
        Some("density") => CmdResult::ok("Physical density: 420\n"),
        _ => CmdResult::fail("Error: unknown command\n", 1),
    }
}
