//! `service call|list|check`: the binder services a shell can poke, with replies printed the way
//! `cmds/service/service.cpp` prints a Parcel (`Result: Parcel(…)`, hex dump of little-endian words).
//!
//! Transaction codes of `com.android.internal.telephony.IPhoneSubInfo` are the 1-based positions of
//! the AIDL methods (FIRST_CALL_TRANSACTION = 1), read from frameworks/base
//! `telephony/java/com/android/internal/telephony/IPhoneSubInfo.aidl`:
//! - SDK 29 (Android 10): `getDeviceId(callingPackage)` first, no `…WithFeature` variants.
//! - SDK 30–34 (Android 11–14): `…WithFeature` variants inserted after each deprecated method;
//!   later releases appended methods only after the ones used here.
//! - SDK 35+ (Android 15): `getGroupIdLevel2ForSubscriber` inserted after GID1, shifting codes ≥ 12.
//!
//! The hex dump reproduces libbinder's `printHexData` (16 bytes a line, 4-byte words shown as
//! little-endian values, one line without offsets up to 16 bytes, `'…'` ASCII column).
//!
//! Must not touch: the device-side (`device` module) tables; this one is written from AOSP separately.

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::shell::Handset;
use tattle_analysis::identifier::kinds;

/// What an IPhoneSubInfo method returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubInfo {
    Imei,
    Imsi,
    Iccid,
    Line1,
    DeviceSvn,
    /// A method that exists but returns null (or something this handset does not model).
    Null,
}

impl SubInfo {
    /// The identifier kind the method returns, if any.
    pub fn identifier_kind(self) -> Option<&'static str> {
        match self {
            SubInfo::Imei => Some(kinds::IMEI),
            SubInfo::Imsi => Some(kinds::IMSI),
            SubInfo::Iccid => Some(kinds::ICCID),
            SubInfo::Line1 => Some(kinds::PHONE_NUMBER),
            SubInfo::DeviceSvn | SubInfo::Null => None,
        }
    }
}

use SubInfo::*;

// Positions 1.. of the AIDL methods (only the first ones matter for identifiers).
const SDK29: &[SubInfo] = &[
    Imei,      // getDeviceId
    Null,      // getNaiForSubscriber
    Imei,      // getDeviceIdForPhone
    Imei,      // getImeiForSubscriber
    DeviceSvn, // getDeviceSvn
    DeviceSvn, // getDeviceSvnUsingSubId
    Imsi,      // getSubscriberId
    Imsi,      // getSubscriberIdForSubscriber
    Null,      // getGroupIdLevel1ForSubscriber
    Iccid,     // getIccSerialNumber
    Iccid,     // getIccSerialNumberForSubscriber
    Line1,     // getLine1Number
    Line1,     // getLine1NumberForSubscriber
    Null,      // getLine1AlphaTag
    Null,      // getLine1AlphaTagForSubscriber
    Line1,     // getMsisdn
    Line1,     // getMsisdnForSubscriber
];

const SDK30: &[SubInfo] = &[
    Imei,      // getDeviceId
    Imei,      // getDeviceIdWithFeature
    Null,      // getNaiForSubscriber
    Imei,      // getDeviceIdForPhone
    Imei,      // getImeiForSubscriber
    DeviceSvn, // getDeviceSvn
    DeviceSvn, // getDeviceSvnUsingSubId
    Imsi,      // getSubscriberId
    Imsi,      // getSubscriberIdWithFeature
    Imsi,      // getSubscriberIdForSubscriber
    Null,      // getGroupIdLevel1ForSubscriber
    Iccid,     // getIccSerialNumber
    Iccid,     // getIccSerialNumberWithFeature
    Iccid,     // getIccSerialNumberForSubscriber
    Line1,     // getLine1Number
    Line1,     // getLine1NumberForSubscriber
    Null,      // getLine1AlphaTag
    Null,      // getLine1AlphaTagForSubscriber
    Line1,     // getMsisdn
    Line1,     // getMsisdnForSubscriber
];

const SDK35: &[SubInfo] = &[
    Imei,      // getDeviceId
    Imei,      // getDeviceIdWithFeature
    Null,      // getNaiForSubscriber
    Imei,      // getDeviceIdForPhone
    Imei,      // getImeiForSubscriber
    DeviceSvn, // getDeviceSvn
    DeviceSvn, // getDeviceSvnUsingSubId
    Imsi,      // getSubscriberId
    Imsi,      // getSubscriberIdWithFeature
    Imsi,      // getSubscriberIdForSubscriber
    Null,      // getGroupIdLevel1ForSubscriber
    Null,      // getGroupIdLevel2ForSubscriber
    Iccid,     // getIccSerialNumber
    Iccid,     // getIccSerialNumberWithFeature
    Iccid,     // getIccSerialNumberForSubscriber
    Line1,     // getLine1Number
    Line1,     // getLine1NumberForSubscriber
    Null,      // getLine1AlphaTag
    Null,      // getLine1AlphaTagForSubscriber
    Line1,     // getMsisdn
    Line1,     // getMsisdnForSubscriber
];

/// Number of methods in the interface per table (codes above are unknown transactions).
fn method_count(sdk: u32) -> u32 {
    match sdk {
        ..=29 => 33,
        30..=33 => 36,
        34 => 41,
        _ => 46,
    }
}

/// What transaction `code` of IPhoneSubInfo returns on `sdk`; `None` for an unknown transaction.
pub fn iphonesubinfo_method(sdk: u32, code: u32) -> Option<SubInfo> {
    if code == 0 || code > method_count(sdk) {
        return None;
    }
    let table = match sdk {
        ..=29 => SDK29,
        30..=34 => SDK30,
        _ => SDK35,
    };
    Some(table.get(code as usize - 1).copied().unwrap_or(Null))
}

/// A Java reply Parcel: `writeNoException()` then `writeString(value)` (String16, NUL, 4-aligned).
pub fn string_reply(value: Option<&str>) -> Vec<u8> {
    let mut p = 0i32.to_le_bytes().to_vec();
    match value {
        None => p.extend_from_slice(&(-1i32).to_le_bytes()),
        Some(s) => {
            let units: Vec<u16> = s.encode_utf16().collect();
            p.extend_from_slice(&(units.len() as i32).to_le_bytes());
            for u in units.iter().chain(std::iter::once(&0u16)) {
                p.extend_from_slice(&u.to_le_bytes());
            }
            while !p.len().is_multiple_of(4) {
                p.push(0);
            }
        }
    }
    p
}

/// libbinder's hex dump of parcel data, each line prefixed with `indent`.
pub fn hex_dump(data: &[u8], indent: &str) -> String {
    const PER_LINE: usize = 16;
    const ALIGN: usize = 4;
    let mut out = String::new();
    if data.is_empty() {
        return "(empty)".into();
    }
    let one_line = data.len() <= PER_LINE;
    if !one_line {
        out.push('\n');
    }
    for (line_no, line) in data.chunks(PER_LINE).enumerate() {
        if !one_line {
            out.push_str(indent);
            out.push_str(&format!("0x{:08x}: ", line_no * PER_LINE));
        }
        let mut word = 0;
        while word < PER_LINE {
            if word > 0 {
                out.push(' ');
            }
            let remain = line.len().saturating_sub(word);
            // A short last word is shown from its own last byte down, like printHexData.
            let shown = remain.min(ALIGN);
            for index in 0..ALIGN {
                if index < shown {
                    out.push_str(&format!("{:02x}", line[word + shown - 1 - index]));
                } else if !one_line {
                    out.push_str("  ");
                }
            }
            word += ALIGN;
        }
        out.push_str(" '");
        for i in 0..PER_LINE {
            match line.get(i) {
                Some(&b) => out.push(if (b' '..127).contains(&b) {
                    b as char
                } else {
                    '.'
                }),
                None if !one_line => out.push(' '),
                None => {}
            }
        }
        out.push('\'');
        if (line_no + 1) * PER_LINE < data.len() {
            out.push('\n');
        }
    }
    out
}

/// `Result: Parcel(…)` as `service call` prints it.
pub fn format_result(data: &[u8]) -> String {
    if data.is_empty() {
        "Result: Parcel(NULL)\n".into()
    } else {
        format!("Result: Parcel({})\n", hex_dump(data, "  "))
    }
}

/// Services `service list` shows (name, interface), in the order servicemanager lists them.
pub const SERVICES: &[(&str, &str)] = &[
    ("activity", "android.app.IActivityManager"),
    ("content", "android.content.IContentService"),
    (
        "iphonesubinfo",
        "com.android.internal.telephony.IPhoneSubInfo",
    ),
    ("isms", "com.android.internal.telephony.ISms"),
    ("package", "android.content.pm.IPackageManager"),
    ("phone", "com.android.internal.telephony.ITelephony"),
    ("settings", ""),
    ("window", "android.view.IWindowManager"),
];

/// `service list|check|call`.
pub(super) fn command(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("list") => {
            let mut out = format!("Found {} services:\n", SERVICES.len());
            for (i, (name, iface)) in SERVICES.iter().enumerate() {
                out.push_str(&format!("{i}\t{name}: [{iface}]\n"));
            }
            CmdResult::ok(out)
        }
        Some("check") => {
            let Some(name) = args.get(1) else {
                return CmdResult::fail("service: No service specified for check\n", 10);
            };
            let found = SERVICES.iter().any(|(n, _)| n == name);
            CmdResult::ok(format!(
                "Service {name}: {}\n",
                if found { "found" } else { "not found" }
            ))
        }
        Some("call") => {
            let (Some(name), Some(code)) = (args.get(1), args.get(2)) else {
                return CmdResult::fail("service: No service specified for call\n", 10);
            };
            if !SERVICES.iter().any(|(n, _)| n == name) {
                return CmdResult::fail(format!("service: Service {name} does not exist\n"), 10);
            }
            let Ok(code) = code.parse::<u32>() else {
                return CmdResult::fail("service: No code specified for call\n", 10);
            };
            let mut i = 3;
            while i < args.len() {
                let needs_value = match args[i].as_str() {
                    "i32" | "i64" | "f" | "d" | "s16" => true,
                    "null" => false,
                    t => return CmdResult::fail(format!("service: unknown option {t}\n"), 10),
                };
                if needs_value {
                    let Some(v) = args.get(i + 1) else {
                        let what = if args[i] == "s16" {
                            "string"
                        } else {
                            "integer"
                        };
                        return CmdResult::fail(
                            format!("service: no {what} supplied for '{}'\n", args[i]),
                            10,
                        );
                    };
                    let ok = match args[i].as_str() {
                        "i32" => v.parse::<i32>().is_ok(),
                        "i64" => v.parse::<i64>().is_ok(),
                        "f" | "d" => v.parse::<f64>().is_ok(),
                        _ => true,
                    };
                    if !ok {
                        return CmdResult::fail(
                            format!("service: bad value for '{}'\n", args[i]),
                            10,
                        );
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            let reply = if name == "iphonesubinfo" {
                let sdk = handset.state().sdk();
                match iphonesubinfo_method(sdk, code) {
                    None => Vec::new(),
                    Some(SubInfo::DeviceSvn) => string_reply(Some("01")),
                    Some(m) => {
                        let value = m
                            .identifier_kind()
                            .and_then(|k| handset.profile().identifiers.get(k).map(String::as_str))
                            .or(if m == SubInfo::Imei {
                                handset
                                    .profile()
                                    .identifiers
                                    .get(kinds::IMEI)
                                    .map(String::as_str)
                            } else {
                                None
                            });
                        string_reply(value)
                    }
                }
            } else {
                // Other services: a bare "no exception" reply.
                0i32.to_le_bytes().to_vec()
            };
            CmdResult::ok(format_result(&reply))
        }
        _ => CmdResult::fail(
            "usage: service [-h|-?]\n       service list\n       service check SERVICE\n       service call SERVICE CODE [i32 N | i64 N | f N | d N | s16 STR | null] ...\n",
            10,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_tables() {
        assert_eq!(iphonesubinfo_method(33, 1), Some(Imei));
        assert_eq!(iphonesubinfo_method(33, 15), Some(Line1));
        assert_eq!(iphonesubinfo_method(33, 9), Some(Imsi));
        assert_eq!(iphonesubinfo_method(33, 13), Some(Iccid));
        assert_eq!(iphonesubinfo_method(29, 12), Some(Line1));
        assert_eq!(iphonesubinfo_method(29, 7), Some(Imsi));
        assert_eq!(iphonesubinfo_method(35, 16), Some(Line1));
        assert_eq!(iphonesubinfo_method(33, 0), None);
        assert_eq!(iphonesubinfo_method(33, 999), None);
        assert_eq!(iphonesubinfo_method(33, 30), Some(Null));
    }

    #[test]
    fn imei_parcel_dump_matches_device_format() {
        let dump = format_result(&string_reply(Some("359881234567890")));
        assert_eq!(
            dump,
            "Result: Parcel(\n  0x00000000: 00000000 0000000f 00350033 00380039 '........3.5.9.8.'\n  0x00000010: 00310038 00330032 00350034 00370036 '8.1.2.3.4.5.6.7.'\n  0x00000020: 00390038 00000030                   '8.9.0...        ')\n"
        );
    }

    #[test]
    fn short_parcels_fit_one_line() {
        assert_eq!(
            format_result(&string_reply(None)),
            "Result: Parcel(00000000 ffffffff   '........')\n"
        );
        assert_eq!(format_result(&[]), "Result: Parcel(NULL)\n");
        // a short last word is shown high byte first
        assert_eq!(
            hex_dump(&[1, 2, 3, 4, 5, 6], ""),
            "04030201 0605   '......'"
        );
    }
}
