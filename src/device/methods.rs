//! The per-release table of how identifiers are read through the shell: for each Android release
//! from 4.4 (SDK 19) to 15 (SDK 35), the `service call iphonesubinfo` transaction codes, the
//! arguments each one takes, and whether `dumpsys iphonesubinfo` prints the device ID.
//!
//! Owns data only, with the source of every code. The codes are the 1-based position of the method
//! in that release's `com.android.internal.telephony.IPhoneSubInfo` (FIRST_CALL_TRANSACTION = 1);
//! the arguments are the method's parameters as `service call` writes them (`i32`, `i64`, `s16`).
//! Every row comes from docs/research/aosp-identifiers.md (§1.2, §1.3, §6), which names the AOSP
//! tag, file and line each fact was read from and grades the evidence; the grade is kept here
//! (`Evidence`) so `tattle devices` and docs/devices.md can say how sure a code is.
//!
//! Must not touch: the device (this module runs nothing), the virtual handset's own table
//! (`vhandset::shell::commands::service`, written separately so that each tests the other).
//! Not here on purpose: `service call phone …` (ITelephony) and `isub` codes, which are verified
//! only for 6.0–7.1 (research §2, §3): subscription ids come from `dumpsys isub` instead.

use crate::adb::shell_quote;

/// One argument of a call, filled in when the command is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `i32 SLOT`: a phone (slot) index (`getDeviceIdForPhone(int phoneId, …)`).
    Slot,
    /// `i32 SUB`: a subscription id (`…ForSubscriber(int subId, …)`, 5.1+).
    Sub,
    /// `i64 SUB`: a subscription id as the `long` of Android 5.0.
    SubLong,
    /// `s16 PACKAGE`: the calling package (6.0+), which 12L+ checks belongs to the caller. The
    /// `callingFeatureId` that follows on 11+ is left off: `readString` past the end is null, and
    /// `s16 null` would send the text "null" (research §1.5).
    Package,
}

/// One `service call iphonesubinfo CODE ARGS…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub code: u32,
    /// The AIDL method, for messages and docs.
    pub method: &'static str,
    pub args: &'static [Arg],
}

/// How sure the order of a release's codes is (research §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Read from AOSP at a release tag or Google's SDK sources, or a compiled stub of that release.
    Source,
    /// An AIDL or decompiled text whose method set equals AOSP's at that release.
    Text,
    /// Not seen for this release: taken from a neighbour with the identical method set.
    Inferred,
    /// No source at all (releases newer than the research): the newest known table, trusted only
    /// as far as validation allows.
    Assumed,
}

/// How one Android release answers for identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The SDK levels this table is for, both inclusive.
    pub sdk: (u32, u32),
    pub android: &'static str,
    /// `dumpsys iphonesubinfo` prints `Device ID = …` (4.4 only: from 5.0 the registered binder,
    /// `PhoneSubInfoController`, has no `dump`; research §4).
    pub dumpsys_device_id: bool,
    /// `dumpsys isub` exists (5.0+: `SubscriptionController`; research §3.1).
    pub isub: bool,
    pub imei: Call,
    pub imsi: Call,
    pub iccid: Call,
    pub line1: Call,
    /// IMEI (or MEID on CDMA) of a slot: `getDeviceIdForPhone` (5.1+).
    pub imei_for_slot: Option<Call>,
    pub imsi_for_sub: Option<Call>,
    pub iccid_for_sub: Option<Call>,
    pub line1_for_sub: Option<Call>,
    pub evidence: Evidence,
    /// Where the codes come from (docs/research/aosp-identifiers.md).
    pub source: &'static str,
}

const NONE: &[Arg] = &[];
const PKG: &[Arg] = &[Arg::Package];
const SLOT: &[Arg] = &[Arg::Slot];
const SLOT_PKG: &[Arg] = &[Arg::Slot, Arg::Package];
const SUB: &[Arg] = &[Arg::Sub];
const SUB_LONG: &[Arg] = &[Arg::SubLong];
const SUB_PKG: &[Arg] = &[Arg::Sub, Arg::Package];

const fn call(code: u32, method: &'static str, args: &'static [Arg]) -> Call {
    Call { code, method, args }
}

/// The releases, oldest first. Codes per research §6.2 (default SIM) and §6.3 (per SIM).
pub static RELEASES: &[Release] = &[
    // 4.4: 14 methods. getDeviceId 1, getSubscriberId 3, getIccSerialNumber 5, getLine1Number 6,
    // no arguments (S1 android-4.4.3_r1 PhoneSubInfo.java; order S8 PurityROM AIDL = AOSP
    // PhoneSubInfoProxy order). SDK 20 is 4.4W (watches), the same telephony.
    Release {
        sdk: (19, 20),
        android: "4.4",
        dumpsys_device_id: true,
        isub: false,
        imei: call(1, "getDeviceId", NONE),
        imsi: call(3, "getSubscriberId", NONE),
        iccid: call(5, "getIccSerialNumber", NONE),
        line1: call(6, "getLine1Number", NONE),
        imei_for_slot: None,
        imsi_for_sub: None,
        iccid_for_sub: None,
        line1_for_sub: None,
        evidence: Evidence::Text,
        source: "research §1.3 (4.4): S1 android-4.4.3_r1 PhoneSubInfo.java set, S8 PurityROM IPhoneSubInfo.aidl order",
    },
    // 5.0: 29 methods, subIds are `long`; no getDeviceIdForPhone (S1 5.0.1_r1; order S7 30567322909).
    Release {
        sdk: (21, 21),
        android: "5.0",
        dumpsys_device_id: false,
        isub: true,
        imei: call(1, "getDeviceId", NONE),
        imsi: call(5, "getSubscriberId", NONE),
        iccid: call(9, "getIccSerialNumber", NONE),
        line1: call(11, "getLine1Number", NONE),
        imei_for_slot: None,
        imsi_for_sub: Some(call(6, "getSubscriberIdForSubscriber", SUB_LONG)),
        iccid_for_sub: Some(call(10, "getIccSerialNumberForSubscriber", SUB_LONG)),
        line1_for_sub: Some(call(12, "getLine1NumberForSubscriber", SUB_LONG)),
        evidence: Evidence::Text,
        source: "research §1.3 (5.0): S1 android-5.0.1_r1 set, S7 30567322909 order",
    },
    // 5.1: 31 methods, no callingPackage anywhere (S1 5.1.1_r13; order S7 15514720162).
    Release {
        sdk: (22, 22),
        android: "5.1",
        dumpsys_device_id: false,
        isub: true,
        imei: call(1, "getDeviceId", NONE),
        imsi: call(7, "getSubscriberId", NONE),
        iccid: call(11, "getIccSerialNumber", NONE),
        line1: call(13, "getLine1Number", NONE),
        imei_for_slot: Some(call(3, "getDeviceIdForPhone", SLOT)),
        imsi_for_sub: Some(call(8, "getSubscriberIdForSubscriber", SUB)),
        iccid_for_sub: Some(call(12, "getIccSerialNumberForSubscriber", SUB)),
        line1_for_sub: Some(call(14, "getLine1NumberForSubscriber", SUB)),
        evidence: Evidence::Text,
        source: "research §1.3 (5.1–8.0): S1 android-5.1.1_r13 set, S7 15514720162 order",
    },
    // 6.0–8.1: the same positions, every getter takes callingPackage (6.0.0_r5 getDeviceIdForPhone
    // takes none, 6.0.1_r66 takes it: sending it always is harmless on the first and needed on the
    // second). Order B from compiled stubs S5 android-23/24/25; 8.0 inferred; 8.1 S7 19053708651.
    Release {
        sdk: (23, 27),
        android: "6.0–8.1",
        dumpsys_device_id: false,
        isub: true,
        imei: call(1, "getDeviceId", PKG),
        imsi: call(7, "getSubscriberId", PKG),
        iccid: call(11, "getIccSerialNumber", PKG),
        line1: call(13, "getLine1Number", PKG),
        imei_for_slot: Some(call(3, "getDeviceIdForPhone", SLOT_PKG)),
        imsi_for_sub: Some(call(8, "getSubscriberIdForSubscriber", SUB_PKG)),
        iccid_for_sub: Some(call(12, "getIccSerialNumberForSubscriber", SUB_PKG)),
        line1_for_sub: Some(call(14, "getLine1NumberForSubscriber", SUB_PKG)),
        evidence: Evidence::Source,
        source: "research §1.3 (5.1–8.0, 8.1): S5 android-23/24/25 compiled stubs; 8.0 inferred, 8.1 S7 19053708651",
    },
    // 9–10: getGroupIdLevel1(String) gone, ICCID and Line1 one lower (S1 9.0.0_r16, 10.0.0_r31;
    // order S7 52296830568, 33900551645).
    Release {
        sdk: (28, 29),
        android: "9–10",
        dumpsys_device_id: false,
        isub: true,
        imei: call(1, "getDeviceId", PKG),
        imsi: call(7, "getSubscriberId", PKG),
        iccid: call(10, "getIccSerialNumber", PKG),
        line1: call(12, "getLine1Number", PKG),
        imei_for_slot: Some(call(3, "getDeviceIdForPhone", SLOT_PKG)),
        imsi_for_sub: Some(call(8, "getSubscriberIdForSubscriber", SUB_PKG)),
        iccid_for_sub: Some(call(11, "getIccSerialNumberForSubscriber", SUB_PKG)),
        line1_for_sub: Some(call(13, "getLine1NumberForSubscriber", SUB_PKG)),
        evidence: Evidence::Text,
        source: "research §1.3 (9, 10): S1 9.0.0_r16 / 10.0.0_r31 sets, S7 52296830568 / 33900551645 order",
    },
    // 11–15: the …WithFeature methods inserted (S1 11.0.0_r32 … 24Q3; order S7 292563319 for
    // 11–13, S7 5522125611 for 14; 12, 12L, 13 and 15 inferred from identical method sets).
    // Android 15 adds no getGroupIdLevel2ForSubscriber (that is Android 16): ICCID stays 12 and
    // Line1 15 (research §6.1). 15's set is 14's (opt/telephony 24Q3 base 34cccdc8
    // PhoneSubInfoController); its order, not read from a 15 text, is the one 14's stub and 16's
    // AIDL (yaap/frameworks_base 3ddcaa00) share (docs/research/android-15.md §1).
    Release {
        sdk: (30, 35),
        android: "11–15",
        dumpsys_device_id: false,
        isub: true,
        imei: call(1, "getDeviceId", PKG),
        imsi: call(8, "getSubscriberId", PKG),
        iccid: call(12, "getIccSerialNumber", PKG),
        line1: call(15, "getLine1Number", PKG),
        imei_for_slot: Some(call(4, "getDeviceIdForPhone", SLOT_PKG)),
        imsi_for_sub: Some(call(10, "getSubscriberIdForSubscriber", SUB_PKG)),
        iccid_for_sub: Some(call(14, "getIccSerialNumberForSubscriber", SUB_PKG)),
        line1_for_sub: Some(call(16, "getLine1NumberForSubscriber", SUB_PKG)),
        evidence: Evidence::Text,
        source: "research §1.3 (11–13, 14–15): S7 292563319 / 5522125611 order; 12, 12L, 13, 15 inferred",
    },
];

/// Android 16+ (SDK 36+): no source was read. The 11–15 table is used; codes up to 11 are
/// before the only insertion known (getGroupIdLevel2ForSubscriber, position unverified), the
/// later ones may hit another method, which validation then rejects.
static NEWER: Release = Release {
    sdk: (36, u32::MAX),
    android: "16+",
    evidence: Evidence::Assumed,
    source: "none: Android 16's IPhoneSubInfo order is unverified (research §1.2); the 11–15 codes, validated",
    ..RELEASES[RELEASES.len() - 1]
};

/// The table of `sdk`; `None` before Android 4.4.
pub fn release(sdk: u32) -> Option<&'static Release> {
    RELEASES
        .iter()
        .find(|r| r.covers(sdk))
        .or_else(|| NEWER.covers(sdk).then_some(&NEWER))
}

/// The calling package a caller must name: its own. The shell is `com.android.shell`; uid 0 is
/// `root` (AppOpsService `resolveUid` maps the name `root` to uid 0, and 12L+ throws `Package …
/// does not belong to 0` for any package that is not the caller's).
pub fn calling_package(as_root: bool) -> &'static str {
    if as_root { "root" } else { "com.android.shell" }
}

impl Release {
    pub fn covers(&self, sdk: u32) -> bool {
        (self.sdk.0..=self.sdk.1).contains(&sdk)
    }
}

impl Call {
    /// The shell command, with `slot`, `sub` and the calling package filled in.
    pub fn command(&self, slot: u32, sub: i64, package: &str) -> String {
        let mut out = format!("service call iphonesubinfo {}", self.code);
        for arg in self.args {
            match arg {
                Arg::Slot => out.push_str(&format!(" i32 {slot}")),
                Arg::Sub => out.push_str(&format!(" i32 {sub}")),
                Arg::SubLong => out.push_str(&format!(" i64 {sub}")),
                Arg::Package => {
                    out.push_str(" s16 ");
                    out.push_str(&shell_quote(package));
                }
            }
        }
        out
    }

    /// The command as docs and `tattle devices` show it: placeholders for slot and subscription.
    pub fn shown(&self, package: &str) -> String {
        let mut out = format!("service call iphonesubinfo {}", self.code);
        for arg in self.args {
            out.push_str(match arg {
                Arg::Slot => " i32 SLOT",
                Arg::Sub => " i32 SUBID",
                Arg::SubLong => " i64 SUBID",
                Arg::Package => " s16 ",
            });
            if *arg == Arg::Package {
                out.push_str(package);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_from_19_has_exactly_one_table() {
        assert!(release(18).is_none());
        for sdk in 19..=40 {
            let r = release(sdk).unwrap_or_else(|| panic!("SDK {sdk}"));
            assert!(r.covers(sdk));
            assert_eq!(
                RELEASES.iter().filter(|r| r.covers(sdk)).count(),
                usize::from(sdk <= 35),
                "SDK {sdk}"
            );
        }
    }

    /// Research §6.2, the default-SIM table, row by row.
    #[test]
    fn default_sim_codes_match_the_research() {
        let rows: &[(u32, [u32; 4], bool)] = &[
            (19, [1, 3, 5, 6], false),
            (21, [1, 5, 9, 11], false),
            (22, [1, 7, 11, 13], false),
            (23, [1, 7, 11, 13], true),
            (27, [1, 7, 11, 13], true),
            (28, [1, 7, 10, 12], true),
            (29, [1, 7, 10, 12], true),
            (30, [1, 8, 12, 15], true),
            (33, [1, 8, 12, 15], true),
            // Android 15: not 13/16, which assumed a getGroupIdLevel2ForSubscriber that 15 lacks.
            (35, [1, 8, 12, 15], true),
        ];
        for (sdk, codes, package) in rows {
            let r = release(*sdk).unwrap();
            assert_eq!(
                [r.imei.code, r.imsi.code, r.iccid.code, r.line1.code],
                *codes,
                "SDK {sdk}"
            );
            assert_eq!(r.imei.args.contains(&Arg::Package), *package, "SDK {sdk}");
        }
    }

    /// Research §6.3, the per-SIM table.
    #[test]
    fn per_sim_codes_match_the_research() {
        let code = |c: Option<Call>| c.map(|c| c.code);
        let rows: &[(u32, Option<u32>, [u32; 3])] = &[
            (21, None, [6, 10, 12]),
            (22, Some(3), [8, 12, 14]),
            (26, Some(3), [8, 12, 14]),
            (28, Some(3), [8, 11, 13]),
            (31, Some(4), [10, 14, 16]),
            (35, Some(4), [10, 14, 16]),
        ];
        for (sdk, slot, subs) in rows {
            let r = release(*sdk).unwrap();
            assert_eq!(code(r.imei_for_slot), *slot, "SDK {sdk}");
            assert_eq!(
                [
                    code(r.imsi_for_sub).unwrap(),
                    code(r.iccid_for_sub).unwrap(),
                    code(r.line1_for_sub).unwrap()
                ],
                *subs,
                "SDK {sdk}"
            );
        }
        assert!(release(19).unwrap().imsi_for_sub.is_none());
        assert!(release(19).unwrap().dumpsys_device_id);
        assert!(!release(21).unwrap().dumpsys_device_id);
    }

    #[test]
    fn commands_are_what_service_call_takes() {
        let r = release(33).unwrap();
        assert_eq!(
            r.imei.command(0, -1, calling_package(false)),
            "service call iphonesubinfo 1 s16 com.android.shell"
        );
        assert_eq!(
            r.imei_for_slot
                .unwrap()
                .command(1, -1, calling_package(true)),
            "service call iphonesubinfo 4 i32 1 s16 root"
        );
        assert_eq!(
            release(21)
                .unwrap()
                .imsi_for_sub
                .unwrap()
                .command(0, 2, "x"),
            "service call iphonesubinfo 6 i64 2"
        );
        assert_eq!(
            release(19).unwrap().line1.command(0, 0, "x"),
            "service call iphonesubinfo 6"
        );
        assert_eq!(
            r.line1_for_sub.unwrap().shown("com.android.shell"),
            "service call iphonesubinfo 16 i32 SUBID s16 com.android.shell"
        );
        assert_eq!(release(36).unwrap().evidence, Evidence::Assumed);
    }
}
