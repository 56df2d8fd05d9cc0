//! `service call|list|check`: the binder services a shell can poke, as the `service` binary of the
//! profile's generation parses its arguments (`cmds/service/service.cpp`) and as libbinder prints the
//! reply (`Result: Parcel(…)`, a hex dump of little-endian words).
//!
//! `service call iphonesubinfo N …` is answered from the generation's `IPhoneSubInfo` table: the data
//! Parcel is built the way service.cpp writes it (`i32`, `i64`, `f`, `d`, `s16`, `null`…), read back the
//! way the release's stub reads the method's parameters (so a wrong argument type misreads, as on a
//! phone), then the method's checks run in the release's order (unread data on stubs that enforce it,
//! the calling package where the release checks it, then the permission), and the reply is either the
//! value (`writeNoException` + `writeString`) or the release's exception layout. Other services answer
//! a bare "no exception" reply: their transaction codes are not modelled (see docs/profiles.md).
//!
//! The hex dump reproduces libbinder's `printHexData` (16 bytes a line, 4-byte words shown as
//! little-endian values, one line without offsets up to 16 bytes, `'…'` ASCII column).
//!
//! Must not touch: the device-side (`device` module) tables; this one is written from AOSP separately.

use std::sync::Arc;

use super::CmdResult;
use super::package::PACKAGES;
use crate::vhandset::generation::{Check, Generation, Method, Param, ParcelPrint, Returns};
use crate::vhandset::shell::{Handset, ROOT_UID};

/// `Parcel` exception codes (android/os/Parcel.java, S4-35 lines 349–357).
const EX_SECURITY: i32 = -1;
const EX_BAD_PARCELABLE: i32 = -2;
const EX_NULL_POINTER: i32 = -4;

/// The system uid, which holds every permission as root does.
const SYSTEM_UID: u32 = 1000;

/// Appends a String16 as libbinder's `writeString16` does: length in UTF-16 units, the units, a NUL,
/// padding to 4 bytes; `None` is length -1.
fn write_string16(p: &mut Vec<u8>, value: Option<&str>) {
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
}

/// A Java reply Parcel: `writeNoException()` then `writeString(value)`.
pub fn string_reply(value: Option<&str>) -> Vec<u8> {
    let mut p = 0i32.to_le_bytes().to_vec();
    write_string16(&mut p, value);
    p
}

/// A reply Parcel carrying an exception, as `Parcel.writeException` lays it out on `g`'s release.
pub fn exception_reply(g: &Generation, code: i32, message: Option<&str>) -> Vec<u8> {
    let mut p = code.to_le_bytes().to_vec();
    write_string16(&mut p, message);
    if g.parcel.stack_trace_header {
        p.extend_from_slice(&0i32.to_le_bytes());
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

/// `Result: Parcel(…)` as `service call` prints it with `print`'s libbinder.
pub fn format_result(data: &[u8], print: ParcelPrint) -> String {
    if data.is_empty() {
        return "Result: Parcel(NULL)\n".into();
    }
    match print {
        ParcelPrint::Indented => format!("Result: Parcel({})\n", hex_dump(data, "  ")),
        ParcelPrint::Tab => format!("Result: Parcel(\t{})\n", hex_dump(data, "")),
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
    ("isub", "com.android.internal.telephony.ISub"),
    ("package", "android.content.pm.IPackageManager"),
    ("phone", "com.android.internal.telephony.ITelephony"),
    ("settings", ""),
    ("window", "android.view.IWindowManager"),
];

/// The services registered on `g`'s release (`isub` exists from 5.0).
fn services(g: &Generation) -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    let has_isub = g.has_isub();
    SERVICES
        .iter()
        .filter(move |(name, _)| *name != "isub" || has_isub)
}

/// C `atoi` / `atoll`.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let n = digits
        .chars()
        .take_while(char::is_ascii_digit)
        .take(19)
        .fold(0i64, |acc, c| {
            acc.saturating_mul(10)
                .saturating_add(i64::from(c as u8 - b'0'))
        });
    if neg { -n } else { n }
}

/// C `atof` for the handful of forms scripts write.
fn atof(s: &str) -> f64 {
    let t = s.trim_start();
    let end = t
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || *c == '.' || (*i == 0 && matches!(c, '+' | '-')))
        .count();
    t[..end].parse().unwrap_or(0.0)
}

/// Reads a data Parcel the way libbinder's `readInt32` / `readString16Inplace` do: a read past the end
/// fails (0 for an int, null for a string) without moving.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn i32(&mut self) -> Option<i32> {
        let bytes = self.data.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(i32::from_le_bytes(bytes.try_into().ok()?))
    }

    fn string16(&mut self) -> Option<String> {
        let len = self.i32()?;
        if len < 0 {
            return None;
        }
        let bytes = (len as usize + 1) * 2;
        let padded = bytes.div_ceil(4) * 4;
        let raw = self.data.get(self.pos..self.pos + bytes)?;
        if raw[bytes - 2..] != [0, 0] {
            return None;
        }
        let units: Vec<u16> = raw[..bytes - 2]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        self.pos = (self.pos + padded).min(self.data.len());
        Some(String::from_utf16_lossy(&units))
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

/// What a method read from the data Parcel.
#[derive(Default)]
struct Args {
    package: Option<String>,
    sub_id: Option<i32>,
    phone_id: Option<i32>,
}

/// Whether `package` belongs to `uid`, as AppOpsService.checkPackage decides (S4-34
/// `AppOpsService.java` lines 2510–2524, `verifyAndGetBypass`): root passes every existing package and
/// "root"; the shell's are `com.android.shell` and "shell".
fn package_belongs(package: &str, uid: u32) -> bool {
    match uid {
        ROOT_UID => package == "root" || PACKAGES.iter().any(|(p, _)| *p == package),
        SYSTEM_UID => matches!(package, "android" | "system"),
        _ => matches!(package, "com.android.shell" | "shell"),
    }
}

/// The reply of `iphonesubinfo`'s transaction `code` for the data `data` from caller `uid`; `None` for an
/// unknown transaction (an empty reply).
fn iphonesubinfo(handset: &Handset, code: i64, data: &[u8], uid: u32) -> Option<Vec<u8>> {
    let profile = handset.profile();
    let g = profile.generation;
    let method: &Method = g.iphonesubinfo_method(code)?;
    if method.returns == Returns::Unmodelled {
        return Some(string_reply(None));
    }
    let mut reader = Reader { data, pos: 0 };
    let mut args = Args::default();
    for p in method.params {
        match p {
            Param::Package => args.package = reader.string16(),
            Param::Feature => {
                reader.string16();
            }
            Param::SubId => args.sub_id = Some(reader.i32().unwrap_or(0)),
            Param::PhoneId => args.phone_id = Some(reader.i32().unwrap_or(0)),
        }
    }
    // Generated stubs of 14 call data.enforceNoDataAvail() before the implementation
    // (Parcel.java, S4-35 line 1057).
    if g.parcel.enforce_no_data_avail && reader.remaining() > 0 {
        let msg = format!(
            "Parcel data not fully consumed, unread size: {}",
            reader.remaining()
        );
        return Some(exception_reply(g, EX_BAD_PARCELABLE, Some(&msg)));
    }
    if method.package_check {
        match &args.package {
            // AppOpsService.checkPackage: Objects.requireNonNull(packageName) throws a
            // NullPointerException without a message, which com.android.phone passes on.
            None => return Some(exception_reply(g, EX_NULL_POINTER, None)),
            // AppOpsManager.checkPackage (S4-34 line 8723).
            Some(p) if !package_belongs(p, uid) => {
                let msg = format!("Package {p} does not belong to {uid}");
                return Some(exception_reply(g, EX_SECURITY, Some(&msg)));
            }
            Some(_) => {}
        }
    }
    let privileged = uid == ROOT_UID || uid == SYSTEM_UID;
    if !privileged && !profile.persona.shell_reads_phone_identifiers {
        let refusal = match method.check {
            // READ_PHONE_STATE is what a vendor takes away before 10; from 10 the Shell keeps it and
            // loses READ_PRIVILEGED_PHONE_STATE, READ_SMS and READ_PHONE_NUMBERS.
            Check::PhoneState if g.sdk.1 <= 28 => Some(g.deny.identifiers),
            Check::PhoneState => None,
            Check::DeviceIdentifiers | Check::SubscriberIdentifiers => Some(g.deny.identifiers),
            Check::PhoneNumber => Some(g.deny.phone_number),
        };
        if let Some(style) = refusal {
            let msg = style.message(method.label, uid);
            return Some(exception_reply(g, EX_SECURITY, Some(&msg)));
        }
    }
    let dual = profile.identifiers.contains_key("imei2");
    let slots = if dual { 2 } else { 1 };
    let slot = match (args.sub_id, args.phone_id) {
        // subIds are 1 and 2 for slots 0 and 1; another one has no phone (null).
        (Some(sub), _) => (1..=slots).contains(&sub).then(|| sub as usize - 1),
        // PhoneSubInfoController: an invalid phone id falls back to phone 0.
        (_, Some(phone)) => Some(if (0..slots).contains(&phone) {
            phone as usize
        } else {
            0
        }),
        // The default subscription's phone.
        (None, None) => Some(0),
    };
    let key = match method.returns {
        Returns::Imei => "imei",
        Returns::Imsi => "imsi",
        Returns::Iccid => "iccid",
        Returns::Line1 => "phone_number",
        Returns::DeviceSvn => return Some(string_reply(Some("01"))),
        Returns::Unmodelled => return Some(string_reply(None)),
    };
    let value = slot.and_then(|s| {
        let k = if s == 0 {
            key.to_string()
        } else {
            format!("{key}2")
        };
        profile.identifiers.get(&k).cloned()
    });
    Some(string_reply(value.as_deref()))
}

/// `service list|check|call`, as `g`'s service.cpp prints and refuses them.
pub(super) fn command(handset: &Arc<Handset>, args: &[String], uid: u32) -> CmdResult {
    let g = handset.profile().generation;
    let mut out = String::new();
    let mut err = String::new();
    let mut wants_usage = false;
    let mut result = 0;
    // getopt("h?") over the leading options.
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') && args[i].len() > 1 {
        wants_usage = true;
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() {
        wants_usage = true;
    } else if !wants_usage {
        match rest[0].as_str() {
            "check" => match rest.get(1) {
                Some(name) => {
                    let found = services(g).any(|(n, _)| n == name);
                    out.push_str(&format!(
                        "Service {name}: {}\n",
                        if found { "found" } else { "not found" }
                    ));
                }
                None => {
                    err.push_str("service: No service specified for check\n");
                    wants_usage = true;
                    result = 10;
                }
            },
            "list" => {
                let list: Vec<_> = services(g).collect();
                out.push_str(&format!("Found {} services:\n", list.len()));
                for (n, (name, iface)) in list.iter().enumerate() {
                    out.push_str(&format!("{n}\t{name}: [{iface}]\n"));
                }
            }
            "call" if rest.len() >= 3 => {
                let name = &rest[1];
                let code = atoi(&rest[2]);
                let registered = services(g).find(|(n, _)| n == name);
                match registered {
                    // service.cpp calls only services with an interface name.
                    Some((_, iface)) if !iface.is_empty() => {
                        let (data, problem) = call_data(handset, g, &rest[3..]);
                        if let Some(p) = problem {
                            err.push_str(&p);
                            wants_usage = true;
                            result = 10;
                        }
                        // The call is made even after a bad option, with what was written so far.
                        let reply = if name == "iphonesubinfo" {
                            iphonesubinfo(handset, code, &data, uid).unwrap_or_default()
                        } else {
                            0i32.to_le_bytes().to_vec()
                        };
                        out.push_str(&format_result(&reply, g.service_cmd.print));
                    }
                    _ => {
                        err.push_str(&format!("service: Service {name} does not exist\n"));
                        result = 10;
                    }
                }
            }
            "call" => {
                // service.cpp's own wording: with a service but no code it says "No service".
                if rest.len() == 2 {
                    err.push_str("service: No service specified for call\n");
                } else {
                    err.push_str("service: No code specified for call\n");
                }
                wants_usage = true;
                result = 10;
            }
            other => {
                err.push_str(&format!("service: Unknown command {other}\n"));
                wants_usage = true;
                result = 10;
            }
        }
    }
    if wants_usage {
        out.push_str(g.service_cmd.usage);
    }
    CmdResult {
        out: out.into_bytes(),
        err: err.into_bytes(),
        code: result,
        // service.cpp's complaints go out (aerr, flushed at endl) before the Result and the usage.
        err_first: true,
        ..Default::default()
    }
}

/// The data Parcel service.cpp writes for the arguments after the code (without the interface token),
/// and the complaint that stopped it, if one did.
fn call_data(handset: &Handset, g: &Generation, args: &[String]) -> (Vec<u8>, Option<String>) {
    let mut data = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let opt = args[i].as_str();
        if !g.service_cmd.options.contains(&opt) {
            return (data, Some(format!("service: unknown option {opt}\n")));
        }
        let value = args.get(i + 1);
        let missing = |what: &str| Some(format!("service: no {what} supplied for '{opt}'\n"));
        match (opt, value) {
            ("i32", Some(v)) => data.extend_from_slice(&(atoi(v) as i32).to_le_bytes()),
            ("i64", Some(v)) => data.extend_from_slice(&atoi(v).to_le_bytes()),
            ("f", Some(v)) => data.extend_from_slice(&(atof(v) as f32).to_le_bytes()),
            ("d", Some(v)) => data.extend_from_slice(&atof(v).to_le_bytes()),
            ("s16", Some(v)) => write_string16(&mut data, Some(v)),
            ("i32" | "i64", None) => return (data, missing("integer")),
            ("f" | "d", None) => return (data, missing("number")),
            ("s16", None) => return (data, missing("string")),
            ("fd" | "afd", None) => return (data, missing("path")),
            ("nfd", None) => return (data, missing("file descriptor")),
            ("fd" | "afd", Some(path)) => {
                if handset.state().fs.read(path).is_err() {
                    let msg = if opt == "fd" {
                        format!("service: could not open '{path}'\n")
                    } else {
                        format!("service: could not open or stat '{path}'\n")
                    };
                    return (data, Some(msg));
                }
                data.extend_from_slice(&flat_object(0x66642a85));
            }
            ("nfd", Some(_)) => data.extend_from_slice(&flat_object(0x66642a85)),
            ("null", _) => {
                // writeStrongBinder(nullptr): a flat_binder_object (BINDER_TYPE_BINDER, no binder).
                data.extend_from_slice(&flat_object(0x73622a85));
                i += 1;
                continue;
            }
            ("intent", _) => {
                // `intent` consumes the key=value words after it and writes action, data, type,
                // launchFlags, component, the categories and a null extras bundle.
                let mut fields = std::collections::BTreeMap::new();
                let mut j = i + 1;
                while let Some((k, v)) = args.get(j).and_then(|a| a.split_once('=')) {
                    fields.insert(k.to_string(), v.to_string());
                    j += 1;
                }
                for k in ["action", "data", "type"] {
                    write_string16(&mut data, fields.get(k).map(String::as_str));
                }
                let flags = fields.get("launchFlags").map_or(0, |f| atoi(f) as i32);
                data.extend_from_slice(&flags.to_le_bytes());
                write_string16(&mut data, fields.get("component").map(String::as_str));
                data.extend_from_slice(&0i32.to_le_bytes());
                data.extend_from_slice(&(-1i32).to_le_bytes());
                i = j;
                continue;
            }
            _ => return (data, Some(format!("service: unknown option {opt}\n"))),
        }
        i += 2;
        if data.len() > 1024 * 1024 {
            break;
        }
    }
    (data, None)
}

/// A 24-byte flat_binder_object of `kind` with no binder (64-bit layout).
fn flat_object(kind: u32) -> [u8; 24] {
    let mut o = [0u8; 24];
    o[..4].copy_from_slice(&kind.to_le_bytes());
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhandset::generation::by_id;

    #[test]
    fn imei_parcel_dump_matches_device_format() {
        let dump = format_result(
            &string_reply(Some("359881234567890")),
            ParcelPrint::Indented,
        );
        assert_eq!(
            dump,
            "Result: Parcel(\n  0x00000000: 00000000 0000000f 00350033 00380039 '........3.5.9.8.'\n  0x00000010: 00310038 00330032 00350034 00370036 '8.1.2.3.4.5.6.7.'\n  0x00000020: 00390038 00000030                   '8.9.0...        ')\n"
        );
        // Android 14's libbinder: a tab after `Parcel(`, no indentation.
        let dump = format_result(&string_reply(Some("359881234567890")), ParcelPrint::Tab);
        assert!(
            dump.starts_with("Result: Parcel(\t\n0x00000000: 00000000 0000000f 00350033 00380039 '........3.5.9.8.'\n0x00000010: "),
            "{dump:?}"
        );
    }

    #[test]
    fn short_parcels_fit_one_line() {
        assert_eq!(
            format_result(&string_reply(None), ParcelPrint::Indented),
            "Result: Parcel(00000000 ffffffff   '........')\n"
        );
        assert_eq!(
            format_result(&string_reply(None), ParcelPrint::Tab),
            "Result: Parcel(\t00000000 ffffffff   '........')\n"
        );
        assert_eq!(
            format_result(&[], ParcelPrint::Indented),
            "Result: Parcel(NULL)\n"
        );
        // a short last word is shown high byte first
        assert_eq!(
            hex_dump(&[1, 2, 3, 4, 5, 6], ""),
            "04030201 0605   '......'"
        );
    }

    #[test]
    fn exception_layouts() {
        let g14 = by_id("android-14").unwrap();
        let g44 = by_id("android-4.4").unwrap();
        assert_eq!(
            format_result(
                &exception_reply(g14, EX_NULL_POINTER, None),
                ParcelPrint::Tab
            ),
            "Result: Parcel(\tfffffffc ffffffff 00000000  '............')\n"
        );
        assert_eq!(
            exception_reply(g44, EX_SECURITY, Some("x")),
            vec![0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, b'x', 0, 0, 0]
        );
    }

    #[test]
    fn reader_reads_what_service_writes() {
        let mut d = Vec::new();
        write_string16(&mut d, Some("com.android.shell"));
        d.extend_from_slice(&7i32.to_le_bytes());
        let mut r = Reader { data: &d, pos: 0 };
        assert_eq!(r.string16().as_deref(), Some("com.android.shell"));
        assert_eq!(r.i32(), Some(7));
        assert_eq!(r.string16(), None);
        assert_eq!(r.remaining(), 0);
        // An int read where a string was written reads its length.
        let mut r = Reader { data: &d, pos: 0 };
        assert_eq!(r.i32(), Some(17));
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi("x"), 0);
    }
}
