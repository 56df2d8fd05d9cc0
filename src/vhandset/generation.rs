//! Android generations: what one Android release's tools, binder services and apps answer, as data.
//!
//! A firmware profile names its generation (`generation: android-14` in the YAML); the shell commands
//! consult the `Generation` it selects instead of branching on SDK numbers of their own. One entry per
//! release holds:
//! - the `service` binary of that release (`cmds/service/service.cpp`): which argument types it takes,
//!   its usage text and how libbinder prints the reply (`Parcel::print`);
//! - the `iphonesubinfo` interface (`IPhoneSubInfo.aidl`): the method at each transaction code (the code
//!   is the method's 1-based position), the arguments the method reads, the permission check it makes,
//!   the label that check puts in its refusal, and whether it checks the calling package;
//! - how a refused call reads (the SecurityException texts of that release), and the exception layout of
//!   a reply Parcel;
//! - `dumpsys iphonesubinfo` / `dumpsys isub`, the `content` tool's quirks, the `su` binary of userdebug
//!   builds, the adbd (protocol version, features, services, pty), and the screens' release-specific
//!   details (uiautomator's default dump file, the dialer's IMEI dialog).
//!
//! Every text and number here comes from AOSP sources at that release; the comments name the file. The
//! sources and how they were read are listed in docs/research/aosp-identifiers.md (S1…S8) and in
//! docs/profiles.md ("Generations"). Where a release was not verified, the entry says so.
//!
//! What belongs to a *build* rather than to a release (root, whether the vendor lets the shell read
//! phone identifiers, a second SIM, how the messaging app's Send button is reached) is in the profile's
//! `handset:` section (`profile::Persona`), not here.
//!
//! Must not touch: the handset's state, I/O, and anything outside `vhandset`. The device module's own
//! tables (`src/device`) are written separately from the same sources on purpose.

/// One Android release as the virtual handset imitates it.
#[derive(Debug)]
pub struct Generation {
    /// What a profile writes in `generation:`, e.g. `android-14`.
    pub id: &'static str,
    /// `ro.build.version.release` of the release, e.g. `14`.
    pub release: &'static str,
    /// The SDK levels (`ro.build.version.sdk`) a profile of this generation may declare, inclusive.
    pub sdk: (u32, u32),
    /// The AOSP tag (or base) the outputs were read at.
    pub source: &'static str,
    /// One line for `tattle vhandset --list`.
    pub summary: &'static str,
    pub adbd: Adbd,
    pub service_cmd: ServiceCmd,
    /// `IPhoneSubInfo` methods in AIDL order: transaction code N is entry N-1.
    pub iphonesubinfo: &'static [Method],
    pub parcel: ParcelRules,
    pub deny: DenyTexts,
    pub dumpsys: Dumpsys,
    pub content: ContentFlavor,
    pub su: SuFlavor,
    pub ui: UiFlavor,
}

/// The adbd of the release.
#[derive(Debug)]
pub struct Adbd {
    /// CNXN version: 0x01000000 (checksummed) before 7.0, 0x01000001 after.
    pub version: u32,
    /// CNXN max payload the adbd announces.
    pub max_payload: u32,
    /// `features=…` in the banner; `None` where the banner has no features field (before 7.0).
    pub features: Option<&'static str>,
    /// Whether `exec:` exists (5.0+).
    pub exec_service: bool,
    /// Whether `unroot:` exists (6.0+).
    pub unroot_service: bool,
    /// Whether `reverse:` exists (5.0+: adb.c `handle_forward_request` serves `reverse:` from
    /// android-5.0.0_r1; 4.4's services.c has no such service).
    pub reverse_service: bool,
    /// Legacy `shell:CMD` runs under a pty (before 7.0): every `\n` it prints reaches the host as `\r\n`.
    pub legacy_shell_pty: bool,
}

/// The `service` command of the release.
#[derive(Debug)]
pub struct ServiceCmd {
    /// Argument types `service call` accepts.
    pub options: &'static [&'static str],
    /// What `service` prints (on stdout) when it wants to show its usage.
    pub usage: &'static str,
    pub print: ParcelPrint,
}

/// How libbinder prints a reply Parcel after `Result: `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParcelPrint {
    /// `to << indent << HexDump(…) << dedent` on a TextOutput: lines after the first are indented by
    /// two spaces (libbinder `Parcel::print` up to Android 13).
    Indented,
    /// `to << "\t" << HexDump(…)` on a std::ostream: a tab after `Parcel(`, no indentation (libbinder
    /// `Parcel::print` from Android 14, change 7063b526 "libbinder : Use logging from liblog").
    Tab,
}

/// Exception layout of a reply Parcel.
#[derive(Debug)]
pub struct ParcelRules {
    /// SDK 28+: `writeException` writes an int32 stack-trace header after the message (always 0 from
    /// com.android.phone, which does not parcel stack traces).
    pub stack_trace_header: bool,
    /// The generated stubs call `data.enforceNoDataAvail()` (seen in Android 14 stubs; not verified for
    /// 13): extra arguments are refused with a BadParcelableException.
    pub enforce_no_data_avail: bool,
}

/// The refusal texts of the release.
#[derive(Debug)]
pub struct DenyTexts {
    /// Device and subscriber identifiers (IMEI, IMSI, ICCID).
    pub identifiers: DenyStyle,
    /// The phone number (`getLine1Number…`, `getMsisdn…`).
    pub phone_number: DenyStyle,
}

/// How a SecurityException message is made. `{label}` is the method's label, the uid is 2000 (shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyStyle {
    /// ≤5.1: `enforceCallingOrSelfPermission(READ_PHONE_STATE, "Requires READ_PHONE_STATE")`.
    RequiresReadPhoneState,
    /// 9 with a valid subId: `enforceCarrierPrivilege` throws `new SecurityException(message)`.
    LabelOnly,
    /// 10–12: `… The user 2000 does not meet the requirements to access device identifiers.`
    UserDoesNotMeet,
    /// 12L+: `… The uid 2000 does not meet the requirements to access device identifiers.`
    UidDoesNotMeet,
    /// 9+: the phone-number check's own message (no final period).
    PhoneNumberNeither,
}

impl DenyStyle {
    /// The SecurityException message for a refused caller `uid`.
    pub fn message(self, label: &str, uid: u32) -> String {
        match self {
            // ContextImpl.enforce: "<message>: Neither user <uid> nor current process has <perm>."
            DenyStyle::RequiresReadPhoneState => format!(
                "Requires READ_PHONE_STATE: Neither user {uid} nor current process has \
                 android.permission.READ_PHONE_STATE."
            ),
            DenyStyle::LabelOnly => label.to_string(),
            // TelephonyPermissions.throwSecurityExceptionAsUidDoesNotHaveAccess (S3-29/30, S4-31).
            DenyStyle::UserDoesNotMeet => format!(
                "{label}: The user {uid} does not meet the requirements to access device identifiers."
            ),
            // Same method, S4 android-32…35.
            DenyStyle::UidDoesNotMeet => format!(
                "{label}: The uid {uid} does not meet the requirements to access device identifiers."
            ),
            // TelephonyPermissions.checkReadPhoneNumber (S3-28 line 229 … S4-34 line 572).
            DenyStyle::PhoneNumberNeither => format!(
                "{label}: Neither user {uid} nor current process has \
                 android.permission.READ_PHONE_STATE, android.permission.READ_SMS, or \
                 android.permission.READ_PHONE_NUMBERS"
            ),
        }
    }
}

/// What `dumpsys` prints for the telephony services.
#[derive(Debug)]
pub struct Dumpsys {
    /// `dumpsys iphonesubinfo` prints the device id (4.4 only: `PhoneSubInfo.dump`); from 5.0 the binder
    /// is `PhoneSubInfoController`, which does not override `dump`, so it prints nothing.
    pub iphonesubinfo_prints_device_id: bool,
    pub isub: IsubDump,
}

/// `dumpsys isub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsubDump {
    /// No `isub` service (4.4): `Can't find service: isub`.
    Absent,
    /// 9: ` sSlotIndexToSubId[<slot>]: subId=<id>` (SubscriptionController.dump, S1 9.0.0_r16 line 2154).
    SlotIndexToSubId,
    /// 10–13: ` sSlotIndexToSubId[<slot>]: subIds=<slot>=[<id>]` (S1 11.0.0_r32 line 3114, 13.0.0_r11 line
    /// 3417).
    SlotIndexToSubIds,
    /// 14: `SubscriptionManagerService.dump` (S1 14.0.0_r11 lines 3969–4000).
    ManagerService,
    /// 15: as 14, plus `mUserIdToAvailableSubs=<map>` after `areAllSubscriptionsLoaded=`
    /// (SubscriptionManagerService.dump at the 24Q3 base 34cccdc8, line 4825; the line came with
    /// "Split subscriptionManager", 48f5f301, 2023, after 14.0.0_r11).
    ManagerServiceUserSubs,
}

/// The `content` tool of the release.
#[derive(Debug)]
pub struct ContentFlavor {
    /// What a query whose cursor is empty prints: KitKat's Content.java has the typo `No reuslt found.`
    pub empty_cursor: &'static str,
    /// The verbs `content` knows (KitKat: insert, delete, update, query).
    pub verbs: &'static [&'static str],
    /// KitKat's usage text (printed on stdout before `[ERROR] Unsupported operation: X`); `None` where the
    /// handset keeps its modern usage text.
    pub usage: Option<&'static str>,
}

/// The `su` of userdebug builds (system/extras/su).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuFlavor {
    /// `su.c` of KitKat: `su [uid[,gid[,group1]...] [cmd]]`; a lone command is `execlp`ed without
    /// arguments, a WHO that is no user name is `atoi`ed (so `su -c id` runs `id` as root).
    Kitkat,
    /// `su.cpp` of 9: `su [UID[,GID[,GID2]...]] [COMMAND [ARG...]]`; an unparsable WHO is an error
    /// (`error(1, errno, "invalid uid/gid '%s'")`), a command that cannot run is
    /// `failed to exec X: <strerror>`.
    Pie,
    /// `su.cpp` of 10+ (system/extras at android-10.0.0_r1 … 14.0.0_r1): as 9 with the usage text
    /// `usage: su [WHO [COMMAND...]]`.
    Modern,
}

impl SuFlavor {
    /// What `su -h` / `su --help` prints on stderr (9+).
    pub fn usage(self) -> &'static str {
        match self {
            SuFlavor::Kitkat => "",
            SuFlavor::Pie => {
                "usage: su [UID[,GID[,GID2]...]] [COMMAND [ARG...]]\n\nSwitch to WHO (default 'root') and run the given command (default sh).\n\nwhere WHO is a comma-separated list of user, group,\nand supplementary groups in that order.\n\n"
            }
            SuFlavor::Modern => {
                "usage: su [WHO [COMMAND...]]\n\nSwitch to WHO (default 'root') and run the given COMMAND (default sh).\n\nWHO is a comma-separated list of user, group, and supplementary groups\nin that order.\n\n"
            }
        }
    }
}

/// Release-specific details of the screens.
#[derive(Debug)]
pub struct UiFlavor {
    /// `uiautomator dump`'s default file: `Environment.getLegacyExternalStorageDirectory()` is
    /// `$EXTERNAL_STORAGE` of the shell, `/storage/emulated/legacy` on 4.4 devices with emulated storage
    /// and `/sdcard` from 6.0.
    pub external_storage: &'static str,
    /// An empty EditText reports its hint as its text (TextView.getTextForAccessibility, 8.0+).
    pub hint_as_text: bool,
    pub imei_dialog: ImeiDialog,
    /// The dialer's launcher component.
    pub dialer_activity: &'static str,
}

/// The dialer's `*#06#` dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImeiDialog {
    /// 4.4 (Dialer `SpecialCharSequenceMgr.showIMEIPanel`): `setMessage(telephonyManager.getDeviceId())`,
    /// the slot-0 device id in `android:id/message`.
    Message,
    /// 9+ (`handleDeviceIdDisplay`, Dialer change 9c9175fc3, 2018): one `row_deviceid` per slot, the id
    /// in `com.android.dialer:id/deviceid_hex`.
    DeviceIdRows,
}

/// One method of an AIDL interface.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    pub name: &'static str,
    /// What the method reads from the data Parcel, in order.
    pub params: &'static [Param],
    pub returns: Returns,
    pub check: Check,
    /// The label the permission check puts in its refusal (`getDeviceId`, `getImei`, …).
    pub label: &'static str,
    /// The method first checks that the calling package belongs to the caller
    /// (`AppOpsManager.checkPackage`; a null package is a NullPointerException in AppOpsService).
    pub package_check: bool,
}

/// What a method reads from the data Parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `String callingPackage`.
    Package,
    /// `String callingFeatureId`.
    Feature,
    /// `int subId`.
    SubId,
    /// `int phoneId` / `int slotIndex`.
    PhoneId,
}

/// What a method returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Imei,
    Imsi,
    Iccid,
    Line1,
    DeviceSvn,
    /// A method the handset does not model (voicemail, ISIM, carrier keys…): it answers a reply with no
    /// exception and a null string, without reading its arguments.
    Unmodelled,
}

/// The permission check a method makes before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// READ_PHONE_STATE (≤9 identifiers; the device SVN on every release).
    PhoneState,
    /// Device identifiers (10+: READ_PRIVILEGED_PHONE_STATE or carrier privilege).
    DeviceIdentifiers,
    /// Subscriber identifiers (10+), same permission and refusal text as device identifiers.
    SubscriberIdentifiers,
    /// The phone number (9+: READ_PHONE_STATE, READ_SMS or READ_PHONE_NUMBERS; 11+ for current targets:
    /// READ_PRIVILEGED_PHONE_STATE, READ_SMS or READ_PHONE_NUMBERS).
    PhoneNumber,
}

// ---- method tables ----

const fn m(
    name: &'static str,
    params: &'static [Param],
    returns: Returns,
    check: Check,
    label: &'static str,
) -> Method {
    Method {
        name,
        params,
        returns,
        check,
        label,
        package_check: false,
    }
}

const fn pkg_checked(mut method: Method) -> Method {
    method.package_check = true;
    method
}

const fn unmodelled(name: &'static str) -> Method {
    m(name, &[], Returns::Unmodelled, Check::PhoneState, name)
}

use Check::*;
use Param::*;
use Returns::*;

/// Android 4.4: `IPhoneSubInfo.aidl` of frameworks/base at KitKat, 14 methods, none with arguments. Every
/// identifier getter of `PhoneSubInfo` (S1 4.4.3_r1) calls
/// `enforceCallingOrSelfPermission(READ_PHONE_STATE, "Requires READ_PHONE_STATE")`. Order: S8 PurityROM
/// AIDL, the same as AOSP `PhoneSubInfoProxy` at 4.4.3_r1.
const IPHONESUBINFO_19: &[Method] = &[
    m("getDeviceId", &[], Imei, PhoneState, "getDeviceId"),
    m("getDeviceSvn", &[], DeviceSvn, PhoneState, "getDeviceSvn"),
    m("getSubscriberId", &[], Imsi, PhoneState, "getSubscriberId"),
    unmodelled("getGroupIdLevel1"),
    m(
        "getIccSerialNumber",
        &[],
        Iccid,
        PhoneState,
        "getIccSerialNumber",
    ),
    m("getLine1Number", &[], Line1, PhoneState, "getLine1Number"),
    unmodelled("getLine1AlphaTag"),
    m("getMsisdn", &[], Line1, PhoneState, "getMsisdn"),
    unmodelled("getVoiceMailNumber"),
    unmodelled("getCompleteVoiceMailNumber"),
    unmodelled("getVoiceMailAlphaTag"),
    unmodelled("getIsimImpi"),
    unmodelled("getIsimDomain"),
    unmodelled("getIsimImpu"),
];

/// Android 9: 32 methods; set from S1 9.0.0_r16 and S3-28, order from S7 52296830568. Checks:
/// `TelephonyPermissions.checkReadPhoneState` (labels from S3-28 `PhoneSubInfoController.java` lines
/// 69–257); the phone number: `checkReadPhoneNumber`.
const IPHONESUBINFO_28: &[Method] = &[
    m("getDeviceId", &[Package], Imei, PhoneState, "getDeviceId"),
    unmodelled("getNaiForSubscriber"),
    m(
        "getDeviceIdForPhone",
        &[PhoneId, Package],
        Imei,
        PhoneState,
        "getDeviceId",
    ),
    m(
        "getImeiForSubscriber",
        &[SubId, Package],
        Imei,
        PhoneState,
        "getImei",
    ),
    m(
        "getDeviceSvn",
        &[Package],
        DeviceSvn,
        PhoneState,
        "getDeviceSvn",
    ),
    m(
        "getDeviceSvnUsingSubId",
        &[SubId, Package],
        DeviceSvn,
        PhoneState,
        "getDeviceSvn",
    ),
    m(
        "getSubscriberId",
        &[Package],
        Imsi,
        PhoneState,
        "getSubscriberId",
    ),
    m(
        "getSubscriberIdForSubscriber",
        &[SubId, Package],
        Imsi,
        PhoneState,
        "getSubscriberId",
    ),
    unmodelled("getGroupIdLevel1ForSubscriber"),
    m(
        "getIccSerialNumber",
        &[Package],
        Iccid,
        PhoneState,
        "getIccSerialNumber",
    ),
    m(
        "getIccSerialNumberForSubscriber",
        &[SubId, Package],
        Iccid,
        PhoneState,
        "getIccSerialNumber",
    ),
    m(
        "getLine1Number",
        &[Package],
        Line1,
        PhoneNumber,
        "getLine1Number",
    ),
    m(
        "getLine1NumberForSubscriber",
        &[SubId, Package],
        Line1,
        PhoneNumber,
        "getLine1Number",
    ),
    unmodelled("getLine1AlphaTag"),
    unmodelled("getLine1AlphaTagForSubscriber"),
    m("getMsisdn", &[Package], Line1, PhoneState, "getMsisdn"),
    m(
        "getMsisdnForSubscriber",
        &[SubId, Package],
        Line1,
        PhoneState,
        "getMsisdn",
    ),
    unmodelled("getVoiceMailNumber"),
    unmodelled("getVoiceMailNumberForSubscriber"),
    unmodelled("getCompleteVoiceMailNumber"),
    unmodelled("getCompleteVoiceMailNumberForSubscriber"),
    unmodelled("getCarrierInfoForImsiEncryption"),
    unmodelled("setCarrierInfoForImsiEncryption"),
    unmodelled("resetCarrierKeysForImsiEncryption"),
    unmodelled("getVoiceMailAlphaTag"),
    unmodelled("getVoiceMailAlphaTagForSubscriber"),
    unmodelled("getIsimImpi"),
    unmodelled("getIsimDomain"),
    unmodelled("getIsimImpu"),
    unmodelled("getIsimIst"),
    unmodelled("getIsimPcscf"),
    unmodelled("getIccSimChallengeResponse"),
];

/// The first 27 methods of Android 11–15 (order: S7 292563319; 14 keeps codes 1–27, S7 5522125611).
/// `subscriber_label` is `getSubscriberId` on 11 and `getSubscriberIdForSubscriber` from 12 (S4-31
/// line 144); `device_package_check` marks 12L+ (`enforceCallingPackageUidMatched` in
/// `getDeviceIdForPhone`, S4-32 line 78); `subscriber_package_check` marks 14 (`mAppOps.checkPackage`
/// in `getSubscriberIdForSubscriber`, S4-34).
macro_rules! iphonesubinfo_r {
    ($subscriber_label:expr, $device_pkg:expr, $subscriber_pkg:expr, [$($tail:expr),* $(,)?]) => {
        &[
            pc($device_pkg, m("getDeviceId", &[Package], Imei, DeviceIdentifiers, "getDeviceId")),
            pc($device_pkg, m("getDeviceIdWithFeature", &[Package, Feature], Imei, DeviceIdentifiers, "getDeviceId")),
            unmodelled("getNaiForSubscriber"),
            pc($device_pkg, m("getDeviceIdForPhone", &[PhoneId, Package, Feature], Imei, DeviceIdentifiers, "getDeviceId")),
            m("getImeiForSubscriber", &[SubId, Package, Feature], Imei, DeviceIdentifiers, "getImei"),
            m("getDeviceSvn", &[Package, Feature], DeviceSvn, PhoneState, "getDeviceSvn"),
            m("getDeviceSvnUsingSubId", &[SubId, Package, Feature], DeviceSvn, PhoneState, "getDeviceSvn"),
            pc($subscriber_pkg, m("getSubscriberId", &[Package], Imsi, SubscriberIdentifiers, $subscriber_label)),
            pc($subscriber_pkg, m("getSubscriberIdWithFeature", &[Package, Feature], Imsi, SubscriberIdentifiers, $subscriber_label)),
            pc($subscriber_pkg, m("getSubscriberIdForSubscriber", &[SubId, Package, Feature], Imsi, SubscriberIdentifiers, $subscriber_label)),
            unmodelled("getGroupIdLevel1ForSubscriber"),
            m("getIccSerialNumber", &[Package], Iccid, SubscriberIdentifiers, "getIccSerialNumber"),
            m("getIccSerialNumberWithFeature", &[Package, Feature], Iccid, SubscriberIdentifiers, "getIccSerialNumber"),
            m("getIccSerialNumberForSubscriber", &[SubId, Package, Feature], Iccid, SubscriberIdentifiers, "getIccSerialNumber"),
            m("getLine1Number", &[Package, Feature], Line1, PhoneNumber, "getLine1Number"),
            m("getLine1NumberForSubscriber", &[SubId, Package, Feature], Line1, PhoneNumber, "getLine1Number"),
            unmodelled("getLine1AlphaTag"),
            unmodelled("getLine1AlphaTagForSubscriber"),
            m("getMsisdn", &[Package, Feature], Line1, PhoneNumber, "getMsisdn"),
            m("getMsisdnForSubscriber", &[SubId, Package, Feature], Line1, PhoneNumber, "getMsisdn"),
            unmodelled("getVoiceMailNumber"),
            unmodelled("getVoiceMailNumberForSubscriber"),
            unmodelled("getCarrierInfoForImsiEncryption"),
            unmodelled("setCarrierInfoForImsiEncryption"),
            unmodelled("resetCarrierKeysForImsiEncryption"),
            unmodelled("getVoiceMailAlphaTag"),
            unmodelled("getVoiceMailAlphaTagForSubscriber"),
            $($tail),*
        ]
    };
}

const fn pc(checked: bool, method: Method) -> Method {
    if checked { pkg_checked(method) } else { method }
}

/// Android 12 (SDK 31): 33 methods, codes as 11 (inferred: identical method set, S1 sc-qpr1 and S4-31).
#[rustfmt::skip]
const IPHONESUBINFO_31: &[Method] = iphonesubinfo_r!("getSubscriberIdForSubscriber", false, false, [
    unmodelled("getIsimImpi"), unmodelled("getIsimDomain"), unmodelled("getIsimImpu"),
    unmodelled("getIsimIst"), unmodelled("getIsimPcscf"), unmodelled("getIccSimChallengeResponse"),
]);

/// Android 13 (SDK 33): 33 methods, codes as 11 (inferred: identical method set, S1 13.0.0_r11).
#[rustfmt::skip]
const IPHONESUBINFO_33: &[Method] = iphonesubinfo_r!("getSubscriberIdForSubscriber", true, false, [
    unmodelled("getIsimImpi"), unmodelled("getIsimDomain"), unmodelled("getIsimImpu"),
    unmodelled("getIsimIst"), unmodelled("getIsimPcscf"), unmodelled("getIccSimChallengeResponse"),
]);

/// Android 14 (SDK 34): 37 methods (S7 5522125611); 28–37 are ISIM/SIM-auth methods.
#[rustfmt::skip]
const IPHONESUBINFO_34: &[Method] = iphonesubinfo_r!("getSubscriberIdForSubscriber", true, true, [
    unmodelled("getIsimImpi"), unmodelled("getImsPrivateUserIdentity"), unmodelled("getIsimDomain"),
    unmodelled("getIsimImpu"), unmodelled("getImsPublicUserIdentities"), unmodelled("getIsimIst"),
    unmodelled("getIsimPcscf"), unmodelled("getIccSimChallengeResponse"), unmodelled("getSmscIdentity"),
    unmodelled("getSimServiceTable"),
]);

/// Android 15 (SDK 35): the same 37 methods in the same order as 14. The set is exactly 14's: the
/// public methods of `PhoneSubInfoController` at the 24Q3 base (opt/telephony 34cccdc8; a Java stub
/// compiles only when its implementation has every AIDL method) and in S4 android-35 are 14's, with
/// 14's signatures (`getImsPublicUserIdentities(int, String, String)`); Android 16's additions
/// (`getGroupIdLevel2ForSubscriber`, `getImsPcscfAddresses`, `getUiccIari`) are absent. The order is
/// not seen for 15 itself: 14's (S7 5522125611) and 16's (yaap/frameworks_base 3ddcaa00
/// IPhoneSubInfo.aidl, less its three additions) are the same, and 15 lies between them
/// (docs/research/android-15.md §1). The checks are 14's (S4 android-35 PhoneSubInfoController.java
/// lines 99–104, 186–190).
const IPHONESUBINFO_35: &[Method] = IPHONESUBINFO_34;

// ---- the `service` binary ----

/// cmds/service/service.cpp at android-4.4.3_r1 (frameworks/native, LineageOS merge parent 9c7db080).
const SERVICE_USAGE_19: &str = "Usage: service [-h|-?]\n       service list\n       service check SERVICE\n       service call SERVICE CODE [i32 INT | s16 STR] ...\nOptions:\n   i32: Write the integer INT into the send parcel.\n   s16: Write the UTF-16 string STR into the send parcel.\n";
/// cmds/service/service.cpp at android-9.0.0_r61 (merge parent 76923a32).
const SERVICE_USAGE_28: &str = "Usage: service [-h|-?]\n       service list\n       service check SERVICE\n       service call SERVICE CODE [i32 N | i64 N | f N | d N | s16 STR ] ...\nOptions:\n   i32: Write the 32-bit integer N into the send parcel.\n   i64: Write the 64-bit integer N into the send parcel.\n   f:   Write the 32-bit single-precision number N into the send parcel.\n   d:   Write the 64-bit double-precision number N into the send parcel.\n   s16: Write the UTF-16 string STR into the send parcel.\n";
/// cmds/service/service.cpp at android-12.0.0_r26 (merge parent ff38664a).
const SERVICE_USAGE_31: &str = "Usage: service [-h|-?]\n       service list\n       service check SERVICE\n       service call SERVICE CODE [i32 N | i64 N | f N | d N | s16 STR | null | fd f | nfd n | afd f ] ...\nOptions:\n   i32: Write the 32-bit integer N into the send parcel.\n   i64: Write the 64-bit integer N into the send parcel.\n   f:   Write the 32-bit single-precision number N into the send parcel.\n   d:   Write the 64-bit double-precision number N into the send parcel.\n   s16: Write the UTF-16 string STR into the send parcel.\n  null: Write a null binder into the send parcel.\n    fd: Write a file descriptor for the file f to the send parcel.\n   nfd: Write file descriptor n to the send parcel.\n   afd: Write an ashmem file descriptor for a region containing the data from file f to the send parcel.\n";
/// cmds/service/service.cpp at android-13.0.0_r52 and android-14.0.0_r55 (merge parents of
/// lineage-20.0 / 64792e22): `prog_name` is the basename of argv[0], `service`. Android 15 has the
/// same file byte for byte (frameworks/native at the 24Q3 base f7274fca that lineage-22.0 is built
/// on: `git diff 64792e22 f7274fca -- cmds/service` touches only Android.bp's `-DXP_UNIX`).
const SERVICE_USAGE_33: &str = "Usage: service [-h|-?]\n       service list\n       service check SERVICE\n       service call SERVICE CODE [i32 N | i64 N | f N | d N | s16 STR | null | fd f | nfd n | afd f ] ...\nOptions:\n   i32: Write the 32-bit integer N into the send parcel.\n   i64: Write the 64-bit integer N into the send parcel.\n     f: Write the 32-bit single-precision number N into the send parcel.\n     d: Write the 64-bit double-precision number N into the send parcel.\n   s16: Write the UTF-16 string STR into the send parcel.\n  null: Write a null binder into the send parcel.\n    fd: Write a file descriptor for the file f into the send parcel.\n   nfd: Write the file descriptor n into the send parcel.\n   afd: Write an ashmem file descriptor for a region containing the data from\n          file f into the send parcel.\n";

const OPTIONS_19: &[&str] = &["i32", "s16", "null", "intent"];
const OPTIONS_28: &[&str] = &["i32", "i64", "f", "d", "s16", "null", "intent"];
const OPTIONS_31: &[&str] = &[
    "i32", "i64", "f", "d", "s16", "null", "fd", "nfd", "afd", "intent",
];

// ---- content ----

/// KitKat's cmds/content Content.java (the 4.2–4.4 text: `getContentProviderExternal(name, userId,
/// token)`, `UserHandle.USER_OWNER`; index file 264458224, the tag is not recorded).
const CONTENT_USAGE_19: &str = "usage: adb shell content [subcommand] [options]\n\nusage: adb shell content insert --uri <URI> [--user <USER_ID>] --bind <BINDING> [--bind <BINDING>...]\n  <URI> a content provider URI.\n  <BINDING> binds a typed value to a column and is formatted:\n  <COLUMN_NAME>:<TYPE>:<COLUMN_VALUE> where:\n  <TYPE> specifies data type such as:\n  b - boolean, s - string, i - integer, l - long, f - float, d - double\n  Note: Omit the value for passing an empty string, e.g column:s:\n  Example:\n  # Add \"new_setting\" secure setting with value \"new_value\".\n  adb shell content insert --uri content://settings/secure --bind name:s:new_setting --bind value:s:new_value\n\nusage: adb shell content update --uri <URI> [--user <USER_ID>] [--where <WHERE>]\n  <WHERE> is a SQL style where clause in quotes (You have to escape single quotes - see example below).\n  Example:\n  # Change \"new_setting\" secure setting to \"newer_value\".\n  adb shell content update --uri content://settings/secure --bind value:s:newer_value --where \"name='new_setting'\"\n\nusage: adb shell content delete --uri <URI> [--user <USER_ID>] --bind <BINDING> [--bind <BINDING>...] [--where <WHERE>]\n  Example:\n  # Remove \"new_setting\" secure setting.\n  adb shell content delete --uri content://settings/secure --where \"name='new_setting'\"\n\nusage: adb shell content query --uri <URI> [--user <USER_ID>] [--projection <PROJECTION>] [--where <WHERE>] [--sort <SORT_ORDER>]\n  <PROJECTION> is a list of colon separated column names and is formatted:\n  <COLUMN_NAME>[:<COLUMN_NAME>...]\n  <SORT_OREDER> is the order in which rows in the result should be sorted.\n  Example:\n  # Select \"name\" and \"value\" columns from secure settings where \"name\" is equal to \"new_setting\" and sort the result by name in ascending order.\n  adb shell content query --uri content://settings/secure --projection name:value --where \"name='new_setting'\" --sort \"name ASC\"\n\n";

const CONTENT_MODERN: ContentFlavor = ContentFlavor {
    // Content.java QueryCommand, SDK 23 line 597 … S4 android-34 line 706.
    empty_cursor: "No result found.",
    verbs: &[
        "insert", "delete", "update", "query", "call", "read", "write", "gettype",
    ],
    usage: None,
};

// ---- adbd ----

/// adb/transport.cpp `supported_features()` at android-9: shell_v2, cmd, stat_v2.
const FEATURES_28: &str = "shell_v2,cmd,stat_v2";
/// 10+ adds ls_v2 and fixed_push_mkdir (and more that this adbd does not implement: apex, abb,
/// sendrecv_v2…); the banner lists what this adbd implements of the release's set.
const FEATURES_MODERN: &str = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir";

const ADBD_MODERN: Adbd = Adbd {
    // adb.h: A_VERSION 0x01000001, MAX_PAYLOAD 1 MiB (system/core android-9 adb/adb.h lines 33–52).
    version: 0x0100_0001,
    max_payload: 1024 * 1024,
    features: Some(FEATURES_MODERN),
    exec_service: true,
    unroot_service: true,
    reverse_service: true,
    legacy_shell_pty: false,
};

const UI_MODERN: UiFlavor = UiFlavor {
    external_storage: "/sdcard",
    hint_as_text: true,
    imei_dialog: ImeiDialog::DeviceIdRows,
    dialer_activity: "com.android.dialer/.main.impl.MainActivity",
};

/// Every generation, oldest first.
pub static GENERATIONS: &[Generation] = &[
    Generation {
        id: "android-4.4",
        release: "4.4",
        sdk: (19, 19),
        source: "android-4.4.3_r1 / 4.4.4_r1",
        summary: "KitKat: dumpsys iphonesubinfo prints the IMEI; argument-less iphonesubinfo codes; \
                  legacy pty shell (no shell_v2, no exec:); su.c of system/extras",
        adbd: Adbd {
            // system/core android-4.4.3_r1 adb/adb.h: MAX_PAYLOAD 4096, A_VERSION 0x01000000;
            // adb.c fill_connect_data: `device::` + ro.product.{name,model,device}, no features;
            // services.c service_to_fd: no exec:, no unroot:; shell: always through a pty
            // (create_subproc_thread → create_subprocess with /dev/ptmx).
            version: 0x0100_0000,
            max_payload: 4096,
            features: None,
            exec_service: false,
            unroot_service: false,
            reverse_service: false,
            legacy_shell_pty: true,
        },
        service_cmd: ServiceCmd {
            options: OPTIONS_19,
            usage: SERVICE_USAGE_19,
            print: ParcelPrint::Indented,
        },
        iphonesubinfo: IPHONESUBINFO_19,
        parcel: ParcelRules {
            // KitKat Parcel.writeException: code, message; no header.
            stack_trace_header: false,
            enforce_no_data_avail: false,
        },
        deny: DenyTexts {
            identifiers: DenyStyle::RequiresReadPhoneState,
            phone_number: DenyStyle::RequiresReadPhoneState,
        },
        dumpsys: Dumpsys {
            iphonesubinfo_prints_device_id: true,
            isub: IsubDump::Absent,
        },
        content: ContentFlavor {
            // KitKat Content.java QueryCommand: `System.out.println("No reuslt found.")` for an empty
            // cursor (a null cursor prints "No result found.").
            empty_cursor: "No reuslt found.",
            verbs: &["insert", "delete", "update", "query"],
            usage: Some(CONTENT_USAGE_19),
        },
        su: SuFlavor::Kitkat,
        ui: UiFlavor {
            // init.<device>.rc of KitKat devices with emulated storage:
            // `export EXTERNAL_STORAGE /storage/emulated/legacy` (device-specific; not verified here).
            external_storage: "/storage/emulated/legacy",
            hint_as_text: false,
            imei_dialog: ImeiDialog::Message,
            dialer_activity: "com.android.dialer/.DialtactsActivity",
        },
    },
    Generation {
        id: "android-9",
        release: "9",
        sdk: (28, 28),
        source: "android-9.0.0_r16 / r61",
        summary: "Pie: iphonesubinfo codes 1/7/10/12 with the package argument; READ_PHONE_STATE is \
                  enough; stack-trace header in exception parcels",
        adbd: Adbd {
            features: Some(FEATURES_28),
            ..ADBD_MODERN
        },
        service_cmd: ServiceCmd {
            options: OPTIONS_28,
            usage: SERVICE_USAGE_28,
            print: ParcelPrint::Indented,
        },
        iphonesubinfo: IPHONESUBINFO_28,
        parcel: ParcelRules {
            stack_trace_header: true,
            enforce_no_data_avail: false,
        },
        deny: DenyTexts {
            identifiers: DenyStyle::LabelOnly,
            phone_number: DenyStyle::PhoneNumberNeither,
        },
        dumpsys: Dumpsys {
            iphonesubinfo_prints_device_id: false,
            isub: IsubDump::SlotIndexToSubId,
        },
        content: CONTENT_MODERN,
        su: SuFlavor::Pie,
        ui: UI_MODERN,
    },
    Generation {
        id: "android-12",
        release: "12",
        sdk: (31, 31),
        source: "android-12.0.0_r26 (telephony: sc-qpr1 base)",
        summary: "12: codes 1/8/12/15 (…WithFeature methods); device identifiers need \
                  READ_PRIVILEGED_PHONE_STATE, which AOSP's Shell holds; no package check yet",
        adbd: ADBD_MODERN,
        service_cmd: ServiceCmd {
            options: OPTIONS_31,
            usage: SERVICE_USAGE_31,
            print: ParcelPrint::Indented,
        },
        iphonesubinfo: IPHONESUBINFO_31,
        parcel: ParcelRules {
            stack_trace_header: true,
            enforce_no_data_avail: false,
        },
        deny: DenyTexts {
            identifiers: DenyStyle::UserDoesNotMeet,
            phone_number: DenyStyle::PhoneNumberNeither,
        },
        dumpsys: Dumpsys {
            iphonesubinfo_prints_device_id: false,
            isub: IsubDump::SlotIndexToSubIds,
        },
        content: CONTENT_MODERN,
        su: SuFlavor::Modern,
        ui: UI_MODERN,
    },
    Generation {
        id: "android-13",
        release: "13",
        sdk: (33, 33),
        source: "android-13.0.0_r11 / r52",
        summary: "13: codes as 12; getDeviceId checks the calling package (12L+), refusals say \
                  \"The uid\"",
        adbd: ADBD_MODERN,
        service_cmd: ServiceCmd {
            options: OPTIONS_31,
            usage: SERVICE_USAGE_33,
            print: ParcelPrint::Indented,
        },
        iphonesubinfo: IPHONESUBINFO_33,
        parcel: ParcelRules {
            stack_trace_header: true,
            enforce_no_data_avail: false,
        },
        deny: DenyTexts {
            identifiers: DenyStyle::UidDoesNotMeet,
            phone_number: DenyStyle::PhoneNumberNeither,
        },
        dumpsys: Dumpsys {
            iphonesubinfo_prints_device_id: false,
            isub: IsubDump::SlotIndexToSubIds,
        },
        content: CONTENT_MODERN,
        su: SuFlavor::Modern,
        ui: UI_MODERN,
    },
    Generation {
        id: "android-14",
        release: "14",
        sdk: (34, 34),
        source: "android-14.0.0_r11 / r29 / r55",
        summary: "14: 37-method iphonesubinfo, codes 1–27 as 12; the IMSI getters check the package \
                  too; stubs refuse extra arguments; `Parcel(` is followed by a tab",
        adbd: ADBD_MODERN,
        service_cmd: ServiceCmd {
            options: OPTIONS_31,
            usage: SERVICE_USAGE_33,
            print: ParcelPrint::Tab,
        },
        iphonesubinfo: IPHONESUBINFO_34,
        parcel: ParcelRules {
            stack_trace_header: true,
            enforce_no_data_avail: true,
        },
        deny: DenyTexts {
            identifiers: DenyStyle::UidDoesNotMeet,
            phone_number: DenyStyle::PhoneNumberNeither,
        },
        dumpsys: Dumpsys {
            iphonesubinfo_prints_device_id: false,
            isub: IsubDump::ManagerService,
        },
        content: CONTENT_MODERN,
        su: SuFlavor::Modern,
        ui: UI_MODERN,
    },
    Generation {
        id: "android-15",
        release: "15",
        sdk: (35, 35),
        source: "24Q3-release base of lineage-22.0 (opt/telephony 34cccdc8, frameworks/native \
                 f7274fca); system/extras android-15.0.0_r1; SDK sources android-35",
        summary: "15: iphonesubinfo as 14 (37 methods, codes 1/8/12/15; 16 adds GID2), the same \
                  refusals, package checks and tab after `Parcel(`; dumpsys isub adds \
                  mUserIdToAvailableSubs",
        // packages/modules/adb at 15 was not read: 10+'s features this adbd implements, as 14.
        adbd: ADBD_MODERN,
        service_cmd: ServiceCmd {
            // service.cpp is 14's (f7274fca); libbinder Parcel::print still writes
            // `to << "\t" << HexDump(…)` (f7274fca libs/binder/Parcel.cpp line 2837).
            options: OPTIONS_31,
            usage: SERVICE_USAGE_33,
            print: ParcelPrint::Tab,
        },
        iphonesubinfo: IPHONESUBINFO_35,
        parcel: ParcelRules {
            // Parcel.writeException: code, message, int32 0 (S4 android-35 Parcel.java lines
            // 3002–3038); generated stubs call enforceNoDataAvail (Parcel.java line 1060).
            stack_trace_header: true,
            enforce_no_data_avail: true,
        },
        deny: DenyTexts {
            // TelephonyPermissions at S4 android-35 lines 350–351 and 570–573: 14's texts.
            identifiers: DenyStyle::UidDoesNotMeet,
            phone_number: DenyStyle::PhoneNumberNeither,
        },
        dumpsys: Dumpsys {
            // PhoneSubInfoController at 34cccdc8 still has no dump().
            iphonesubinfo_prints_device_id: false,
            isub: IsubDump::ManagerServiceUserSubs,
        },
        // cmds/content Content.java at 15 was not found (S4 has android-34's): 14's quirks kept.
        content: CONTENT_MODERN,
        // system/extras su/su.cpp: no change from android-14.0.0_r1 to android-15.0.0_r1.
        su: SuFlavor::Modern,
        // No android-15 merge of Dialer exists in the LineageOS mirror (its newest AOSP merge is
        // 14.0.0_r29): 14's screens kept, not verified for 15.
        ui: UI_MODERN,
    },
];

/// A generation by its id.
pub fn by_id(id: &str) -> Option<&'static Generation> {
    GENERATIONS.iter().find(|g| g.id == id)
}

/// The generation whose SDK range holds `sdk`.
pub fn for_sdk(sdk: u32) -> Option<&'static Generation> {
    GENERATIONS
        .iter()
        .find(|g| (g.sdk.0..=g.sdk.1).contains(&sdk))
}

/// Every generation id, for messages.
pub fn ids() -> Vec<&'static str> {
    GENERATIONS.iter().map(|g| g.id).collect()
}

impl Generation {
    /// The method at transaction `code` of `iphonesubinfo`; `None` for an unknown transaction.
    pub fn iphonesubinfo_method(&self, code: i64) -> Option<&'static Method> {
        if code < 1 {
            return None;
        }
        self.iphonesubinfo.get(code as usize - 1)
    }

    /// Whether `isub` is a registered service (5.0+).
    pub fn has_isub(&self) -> bool {
        self.dumpsys.isub != IsubDump::Absent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes of the research doc's §6.2 table (default-SIM IMEI, IMSI, ICCID, Line1).
    #[test]
    fn key_codes_per_release() {
        let name = |g: &str, code: i64| by_id(g).unwrap().iphonesubinfo_method(code).unwrap().name;
        for (g, imei, imsi, iccid, line1) in [
            ("android-4.4", 1, 3, 5, 6),
            ("android-9", 1, 7, 10, 12),
            ("android-12", 1, 8, 12, 15),
            ("android-13", 1, 8, 12, 15),
            ("android-14", 1, 8, 12, 15),
            // 15: not 13/16, which a getGroupIdLevel2ForSubscriber at 12 would give (that is 16).
            ("android-15", 1, 8, 12, 15),
        ] {
            assert_eq!(name(g, imei), "getDeviceId", "{g}");
            assert_eq!(name(g, imsi), "getSubscriberId", "{g}");
            assert_eq!(name(g, iccid), "getIccSerialNumber", "{g}");
            assert_eq!(name(g, line1), "getLine1Number", "{g}");
        }
        // Per SIM (research doc §6.3).
        assert_eq!(name("android-9", 3), "getDeviceIdForPhone");
        assert_eq!(name("android-9", 13), "getLine1NumberForSubscriber");
        assert_eq!(name("android-14", 4), "getDeviceIdForPhone");
        assert_eq!(name("android-14", 5), "getImeiForSubscriber");
        assert_eq!(name("android-14", 10), "getSubscriberIdForSubscriber");
        assert_eq!(name("android-14", 14), "getIccSerialNumberForSubscriber");
        assert_eq!(name("android-14", 16), "getLine1NumberForSubscriber");
        for (code, method) in [
            (4, "getDeviceIdForPhone"),
            (5, "getImeiForSubscriber"),
            (10, "getSubscriberIdForSubscriber"),
            (14, "getIccSerialNumberForSubscriber"),
            (16, "getLine1NumberForSubscriber"),
        ] {
            assert_eq!(name("android-15", code), method, "{code}");
        }
    }

    /// Android 15's interface is 14's, method for method (research android-15.md §1), with the same
    /// package checks; what differs is the isub dump.
    #[test]
    fn android_15_is_14_s_interface() {
        let (g14, g15) = (by_id("android-14").unwrap(), by_id("android-15").unwrap());
        let names = |g: &Generation| g.iphonesubinfo.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(g15), names(g14));
        assert!(!names(g15).contains(&"getGroupIdLevel2ForSubscriber"));
        for code in [1, 4, 8, 10] {
            assert!(
                g15.iphonesubinfo_method(code).unwrap().package_check,
                "{code}"
            );
        }
        assert!(!g15.iphonesubinfo_method(12).unwrap().package_check);
        assert_eq!(g15.service_cmd.usage, g14.service_cmd.usage);
        assert_eq!(g15.service_cmd.print, ParcelPrint::Tab);
        assert!(g15.parcel.enforce_no_data_avail && g15.parcel.stack_trace_header);
        assert_eq!(g15.deny.identifiers, DenyStyle::UidDoesNotMeet);
        assert_eq!(g15.dumpsys.isub, IsubDump::ManagerServiceUserSubs);
        assert_eq!(g14.dumpsys.isub, IsubDump::ManagerService);
    }

    #[test]
    fn method_counts_match_aosp() {
        for (g, n) in [
            ("android-4.4", 14),
            ("android-9", 32),
            ("android-12", 33),
            ("android-13", 33),
            ("android-14", 37),
            ("android-15", 37),
        ] {
            assert_eq!(by_id(g).unwrap().iphonesubinfo.len(), n, "{g}");
        }
    }

    #[test]
    fn generations_are_found_by_sdk_and_id() {
        assert_eq!(for_sdk(33).unwrap().id, "android-13");
        assert_eq!(for_sdk(19).unwrap().id, "android-4.4");
        assert!(for_sdk(30).is_none());
        assert_eq!(for_sdk(35).unwrap().id, "android-15");
        assert!(for_sdk(36).is_none());
        assert!(by_id("android-16").is_none());
        for g in GENERATIONS {
            assert!(g.sdk.0 <= g.sdk.1, "{}", g.id);
            assert!(g.iphonesubinfo_method(0).is_none());
        }
    }

    #[test]
    fn refusal_texts() {
        assert_eq!(
            DenyStyle::UidDoesNotMeet.message("getDeviceId", 2000),
            "getDeviceId: The uid 2000 does not meet the requirements to access device identifiers."
        );
        assert_eq!(
            DenyStyle::RequiresReadPhoneState.message("getDeviceId", 2000),
            "Requires READ_PHONE_STATE: Neither user 2000 nor current process has android.permission.READ_PHONE_STATE."
        );
        assert!(
            DenyStyle::PhoneNumberNeither
                .message("getLine1Number", 2000)
                .ends_with("or android.permission.READ_PHONE_NUMBERS")
        );
    }
}
