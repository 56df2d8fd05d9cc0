//! Parsers for what Android's own tools print: `getprop`, `service call` Parcel dumps, `content query`
//! rows, `date +%s`. Device output is untrusted: every parser returns `None`/skips on anything odd and
//! never panics.
//!
//! Written from AOSP's sources of the printing side (`getprop` in system/core toolbox, `Parcel::print`
//! via `service call` in frameworks/native cmds/service, `content` in frameworks/base cmds/content), not
//! from the virtual handset, which is written separately.

use std::collections::BTreeMap;

/// Upper bound on how many properties we keep from one `getprop` (a real phone has ~1000).
const MAX_PROPS: usize = 20_000;

/// `getprop` with no argument prints `[key]: [value]` per line.
pub fn getprop_all(text: &str) -> BTreeMap<String, String> {
    let mut props = BTreeMap::new();
    for line in text.lines() {
        if props.len() >= MAX_PROPS {
            break;
        }
        let line = line.trim_end_matches('\r');
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((key, rest)) = rest.split_once("]: [") else {
            continue;
        };
        let Some(value) = rest.strip_suffix(']') else {
            continue;
        };
        props.insert(key.to_string(), value.to_string());
    }
    props
}

/// Exception codes a Java service writes before its message (`Parcel.writeException`; AOSP
/// frameworks/base `core/java/android/os/Parcel.java`, `EX_SECURITY` … `EX_PARCELABLE`).
const EXCEPTION_NAMES: &[(i32, &str)] = &[
    (-1, "SecurityException"),
    (-2, "BadParcelableException"),
    (-3, "IllegalArgumentException"),
    (-4, "NullPointerException"),
    (-5, "IllegalStateException"),
    (-6, "NetworkOnMainThreadException"),
    (-7, "UnsupportedOperationException"),
    (-8, "ServiceSpecificException"),
    (-9, "ParcelableException"),
];

/// `EX_HAS_STRICTMODE_REPLY_HEADER`: a "fat" reply header (StrictMode violations gathered by the
/// service) that precedes the result of a call that threw nothing (`Parcel.writeNoException`).
const EX_HAS_STRICTMODE_REPLY_HEADER: i32 = -128;

/// What a `service call` that returns a `String` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringReply {
    /// The string (not yet validated: it may be anything the method at that code returns).
    Value(String),
    /// A null string (`00000000 ffffffff`): the method had nothing to return, or (Android ≤ 9) the
    /// caller's app-op was denied.
    Null,
    /// The service threw: the exception code and, when the reply carries one, its message.
    Exception(ParcelException),
}

/// An exception a service wrote into its reply (`writeException`: code, message String16, and on
/// SDK 28+ a stack-trace header that is 0 outside system_server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParcelException {
    pub code: i32,
    /// The message as the service wrote it (sanitised: control characters shown as `?`).
    pub message: Option<String>,
}

impl ParcelException {
    /// The Java class of the exception code (`SecurityException`), or `exception N`.
    pub fn name(&self) -> String {
        EXCEPTION_NAMES
            .iter()
            .find(|(c, _)| *c == self.code)
            .map_or_else(
                || format!("exception {}", self.code),
                |(_, n)| n.to_string(),
            )
    }

    pub fn is_security(&self) -> bool {
        self.code == -1
    }
}

impl std::fmt::Display for ParcelException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {m}", self.name()),
            None => f.write_str(&self.name()),
        }
    }
}

/// Decodes the reply of `service call iphonesubinfo N …`, which prints the reply Parcel as
/// `Result: Parcel(` + lines of `0xOFFSET: w0 w1 w2 w3 'ascii'` + `)`, each word a little-endian u32 in
/// hex. A String16 reply is: i32 exception code (0 = none), i32 length in UTF-16 units (-1 = null), the
/// units, a NUL unit, padding to 4 bytes.
///
/// Returns `Ok(Some(string))`, `Ok(None)` for a null string, `Err(reason)` for an exception, a failed
/// call (`Parcel(Error: …)`), or garbage. Only the dump's own lines are read (the words after
/// `Parcel(` on its line, or the `0xOFFSET:` lines, at consecutive offsets), and each must show the
/// same bytes in its ASCII column: stray output mixed into the reply (a merged stderr) is skipped or
/// refused, never decoded as part of the string. [`string_reply`] says which exception it was.
pub fn parcel_string16(text: &str) -> Result<Option<String>, String> {
    match string_reply(text)? {
        StringReply::Value(v) => Ok(Some(v)),
        StringReply::Null => Ok(None),
        StringReply::Exception(e) => Err(format!("the service answered with {e}")),
    }
}

/// [`parcel_string16`] with the exception kept apart: `Err` only for a reply that is not a String
/// reply at all (no dump, a failed call, garbage).
pub fn string_reply(text: &str) -> Result<StringReply, String> {
    let start = text
        .find("Parcel(")
        .ok_or_else(|| "no `Result: Parcel(` in the reply".to_string())?;
    let body = &text[start + "Parcel(".len()..];
    let bytes = parcel_bytes(body)?;
    let word = |at: usize| -> Option<i32> {
        bytes
            .get(at..at + 4)
            .map(|w| i32::from_le_bytes(w.try_into().expect("4 bytes")))
    };
    let Some(mut code) = word(0) else {
        return Err("reply has no status word".into());
    };
    let mut at = 4;
    if code == EX_HAS_STRICTMODE_REPLY_HEADER {
        // The header's size counts from its own size word; the result follows it.
        let size = word(4).ok_or("reply ends in its StrictMode header")?;
        if size < 4 {
            return Err("reply has a StrictMode header of a bad size".into());
        }
        at = 4 + size as usize;
        code = 0;
    }
    if code != 0 {
        let message = string16_at(&bytes, at).ok().flatten();
        return Ok(StringReply::Exception(ParcelException {
            code,
            message: message.map(|m| tattle_analysis::sanitize(&m)),
        }));
    }
    if bytes.len() < at + 4 {
        return Err("reply has no string".into());
    }
    Ok(match string16_at(&bytes, at)? {
        Some(s) => StringReply::Value(s),
        None => StringReply::Null,
    })
}

/// The String16 at `at`: i32 length in units (-1 = null), the units.
fn string16_at(bytes: &[u8], at: usize) -> Result<Option<String>, String> {
    let len_bytes = bytes.get(at..at + 4).ok_or("reply has no string")?;
    let len = i32::from_le_bytes(len_bytes.try_into().expect("4 bytes"));
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    let units_end = at + 4 + len * 2;
    if bytes.len() < units_end {
        return Err(format!(
            "string of {len} units does not fit in a {}-byte reply",
            bytes.len()
        ));
    }
    let units: Vec<u16> = bytes[at + 4..units_end]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units)
        .map(Some)
        .map_err(|_| "string is not valid UTF-16".to_string())
}

/// The data bytes of a printed Parcel (the text after `Parcel(`), as libbinder's `printHexData`
/// lays them out: up to 16 bytes on the `Parcel(` line itself, else one `0xOFFSET: ` line per 16
/// bytes. Lines of words and an ASCII column without the offset are read too (one dump is either
/// with offsets or without, never mixed), since a libbinder that prints the dump through a plain
/// stream instead of its indenting `TextOutput` may lose the offsets' indentation or the offsets.
fn parcel_bytes(body: &str) -> Result<Vec<u8>, String> {
    const LIMIT: usize = 64 * 1024;
    let head = body.trim_start();
    if head.starts_with("Error") {
        let what: String = head.lines().next().unwrap_or("").chars().take(80).collect();
        return Err(format!(
            "the service call failed: {}",
            tattle_analysis::sanitize(what.trim_end_matches(')'))
        ));
    }
    if head.starts_with("NULL") {
        return Err("the reply Parcel is empty".into());
    }
    let mut bytes: Vec<u8> = Vec::new();
    let mut lines = body.lines();
    let first = lines.next().unwrap_or("").trim();
    if !first.is_empty() {
        // A short reply on one line: `Result: Parcel(00000000 ffffffff   '........')`.
        dump_line(first, &mut bytes)?;
        return Ok(bytes);
    }
    // Whether this dump's lines carry offsets, once its first line is seen.
    let mut with_offsets: Option<bool> = None;
    for line in lines {
        let line = line.trim();
        let offset_line = line.split_once(": ").and_then(|(offset, rest)| {
            let offset = offset
                .strip_prefix("0x")
                .and_then(|h| usize::from_str_radix(h, 16).ok())?;
            Some((offset, rest))
        });
        let rest = match offset_line {
            Some((offset, rest)) if with_offsets != Some(false) => {
                with_offsets = Some(true);
                if offset != bytes.len() {
                    return Err(format!(
                        "the dump jumps to offset {offset:#x} after {:#x} bytes",
                        bytes.len()
                    ));
                }
                rest
            }
            None if with_offsets != Some(true) && is_offsetless_dump_line(line) => {
                with_offsets = Some(false);
                line
            }
            // Not a line of the dump (the dump's `Object #…` lines, or other output).
            _ => continue,
        };
        dump_line(rest, &mut bytes)?;
        if bytes.len() > LIMIT {
            return Err("reply larger than 64 KiB".into());
        }
        if rest.ends_with("')") {
            break;
        }
    }
    Ok(bytes)
}

/// A dump line without its offset: one to four hex words, then the `'…'` ASCII column.
fn is_offsetless_dump_line(line: &str) -> bool {
    let Some((words, _)) = line.split_once('\'') else {
        return false;
    };
    let mut count = 0;
    for word in words.split_whitespace() {
        count += 1;
        if count > 4
            || word.len() > 8
            || word.len() % 2 != 0
            || !word.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return false;
        }
    }
    count > 0
}

/// One line of the dump after its offset: up to four words, each the hex of 1 to 4 bytes shown as a
/// little-endian value (last byte first), then the ASCII column `'…'`, which must show the same bytes
/// (printable ASCII as itself, others as `.`, padded with spaces on a last line).
fn dump_line(line: &str, bytes: &mut Vec<u8>) -> Result<(), String> {
    let (words, column) = line
        .split_once('\'')
        .ok_or("a line of the reply dump has no ASCII column")?;
    let column = column.strip_suffix(')').unwrap_or(column);
    let column = column
        .strip_suffix('\'')
        .ok_or("a line of the reply dump has an unterminated ASCII column")?;
    let mut data: Vec<u8> = Vec::with_capacity(16);
    for word in words.split_whitespace() {
        let digits = word.len();
        let hex = word.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex || digits % 2 != 0 || digits > 8 || data.len() >= 16 {
            return Err(format!(
                "`{}` is not a word of a reply dump",
                tattle_analysis::sanitize(word)
            ));
        }
        let value = u32::from_str_radix(word, 16).expect("2 to 8 hex digits");
        data.extend_from_slice(&value.to_le_bytes()[..digits / 2]);
    }
    let shown: String = data
        .iter()
        .map(|&b| {
            if (b' '..127).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    if shown.trim_end_matches(' ') != column.trim_end_matches(' ') {
        return Err("a line of the reply dump does not match its ASCII column".into());
    }
    bytes.extend_from_slice(&data);
    Ok(())
}

/// One row of `content query`: `Row: N key=value, key=value`. Values may contain `, ` themselves, so
/// columns are split only where `, ` is followed by one of the `expected` column names and `=`.
pub fn content_rows(text: &str, expected: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_end_matches('\r').strip_prefix("Row: ") else {
            continue;
        };
        let Some((_, mut rest)) = rest.split_once(' ') else {
            continue;
        };
        let mut row = BTreeMap::new();
        while let Some((key, after)) = rest.split_once('=') {
            // The value runs until the next `, COLUMN=`.
            let mut end = after.len();
            for col in expected {
                let marker = format!(", {col}=");
                if let Some(pos) = after.find(&marker) {
                    end = end.min(pos);
                }
            }
            row.insert(key.to_string(), after[..end].to_string());
            if end == after.len() {
                break;
            }
            rest = &after[end + 2..];
        }
        rows.push(row);
    }
    rows
}

/// `dumpsys iphonesubinfo` on Android 4.4 (`PhoneSubInfo.dump`, AOSP frameworks/opt/telephony
/// android-4.4.3_r1 `PhoneSubInfo.java`): `Phone Subscriber Info:` / `  Phone Type = GSM` /
/// `  Device ID = <IMEI, or MEID/ESN on CDMA>`. From 5.0 the service prints nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubInfoDump {
    /// `GSM`, `CDMA`, … as printed.
    pub phone_type: Option<String>,
    /// `None` when the dump has no `Device ID` line or it reads `null`.
    pub device_id: Option<String>,
}

/// Parses `dumpsys iphonesubinfo`; `Err` with the device's words when it refused
/// (`Permission Denial: can't dump PhoneSubInfo …`) or printed no subscriber info at all.
pub fn dumpsys_iphonesubinfo(text: &str) -> Result<SubInfoDump, String> {
    if let Some(line) = text.lines().find(|l| l.contains("Permission Denial")) {
        return Err(tattle_analysis::sanitize(line.trim()));
    }
    if !text.contains("Phone Subscriber Info") && !text.contains("Device ID") {
        return Err("it printed no subscriber info".into());
    }
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == name)
                .then(|| value.trim().trim_end_matches('\r').to_string())
                .filter(|v| !v.is_empty() && v != "null")
        })
    };
    Ok(SubInfoDump {
        phone_type: field("Phone Type"),
        device_id: field("Device ID"),
    })
}

/// The SIM slots `dumpsys isub` lists and the subscription id in each (`-1`, or no line: no SIM).
/// The line differs by release (AOSP frameworks/opt/telephony, `SubscriptionController.dump`, then
/// `SubscriptionManagerService.dump`):
/// - 5.1: ` mSlotIdToSubIdMap[0]: subId=1`
/// - 7.1: ` sSlotIdxToSubId[0]: subId=1`; 9: ` sSlotIndexToSubId[0]: subId=1`
/// - 10–13: ` sSlotIndexToSubId[0]: subIds=0=[1]` (a `Map.Entry` printed whole)
/// - 14+: `  Logical SIM slot 0: subId=1`, and `Active modem count=2` (15 adds a
///   `mUserIdToAvailableSubs={-10000=[1]}` line further down, which names no slot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionDump {
    /// Slot index → subscription id, for slots that hold one.
    pub slots: BTreeMap<u32, i64>,
    /// `Active modem count=N` (14+): how many SIMs the phone can use at once.
    pub modem_count: Option<u32>,
}

pub fn dumpsys_isub(text: &str) -> SubscriptionDump {
    let mut dump = SubscriptionDump::default();
    for line in text.lines().take(100_000) {
        let line = line.trim();
        if let Some(n) = line.strip_prefix("Active modem count=") {
            dump.modem_count = n.trim().parse().ok();
            continue;
        }
        let (slot, value) = if let Some(rest) = line.strip_prefix("Logical SIM slot ") {
            let Some((slot, value)) = rest.split_once(": subId=") else {
                continue;
            };
            (slot, value)
        } else if line.contains("SlotI") && line.contains("ToSubId") {
            // `mSlotIdToSubIdMap[0]: subId=1`, `sSlotIndexToSubId[0]: subIds=0=[1, 3]`.
            let Some((_, rest)) = line.split_once("ToSubId") else {
                continue;
            };
            let rest = rest.trim_start_matches("Map");
            let Some(rest) = rest.strip_prefix('[') else {
                continue;
            };
            let Some((slot, value)) = rest.split_once("]: ") else {
                continue;
            };
            let value = if let Some(v) = value.strip_prefix("subId=") {
                v
            } else if let Some(v) = value.strip_prefix("subIds=") {
                // `0=[1, 3]`: the first subscription of the slot.
                v.split_once("=[")
                    .map(|(_, ids)| ids.split([',', ']']).next().unwrap_or(""))
                    .unwrap_or("")
            } else {
                continue;
            };
            (slot, value)
        } else {
            continue;
        };
        let (Ok(slot), Ok(sub)) = (slot.trim().parse::<u32>(), value.trim().parse::<i64>()) else {
            continue;
        };
        if sub >= 0 && slot < 8 {
            dump.slots.insert(slot, sub);
        }
    }
    dump
}

/// Whether `id`'s output (`uid=0(root) gid=0(root) …`) is root's.
pub fn id_is_root(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("uid=0("))
}

/// The MAC address in `cat /sys/class/net/wlan0/address` or `ip link show wlan0`
/// (`link/ether 02:00:00:00:00:00 brd ff:ff:ff:ff:ff:ff`), lower-case.
pub fn mac_address(text: &str) -> Option<String> {
    let is_mac = |w: &str| {
        w.len() == 17
            && w.split(':').count() == 6
            && w.split(':')
                .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [only] = words.as_slice()
            && is_mac(only)
        {
            return Some(only.to_ascii_lowercase());
        }
        if let Some(i) = words.iter().position(|w| *w == "link/ether")
            && let Some(mac) = words.get(i + 1)
            && is_mac(mac)
        {
            return Some(mac.to_ascii_lowercase());
        }
    }
    None
}

/// Google Play services' advertising ID in its shared preferences
/// (`/data/data/com.google.android.gms/shared_prefs/adid_settings.xml`:
/// `<string name="adid_key">UUID</string>`).
pub fn adid_from_prefs(xml: &str) -> Option<String> {
    let at = xml.find("name=\"adid_key\"")?;
    let rest = &xml[at..];
    let value = rest.split_once('>')?.1.split_once('<')?.0.trim();
    Some(value.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getprop_lines() {
        let props = getprop_all(
            "[ro.product.model]: [Pixel 7]\n[ro.build.version.sdk]: [33]\ngarbage\n[broken: [x]\n",
        );
        assert_eq!(
            props.get("ro.product.model").map(String::as_str),
            Some("Pixel 7")
        );
        assert_eq!(
            props.get("ro.build.version.sdk").map(String::as_str),
            Some("33")
        );
        assert_eq!(props.len(), 2);
    }

    /// Builds the dump the way `service call` prints a Parcel holding `status, String16(s)` of more
    /// than 16 bytes: libbinder's `printHexData`, 16 bytes a line at `0xOFFSET:`, 4-byte words as
    /// little-endian values, the ASCII column padded on the last line, which closes the Parcel.
    fn dump_of(s: &str) -> String {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0i32.to_le_bytes());
        put_string16(&mut bytes, s);
        dump_bytes(&bytes)
    }

    /// `Parcel.writeString`: length in units, the units, a NUL unit, padding to 4 bytes.
    fn put_string16(bytes: &mut Vec<u8>, s: &str) {
        let units: Vec<u16> = s.encode_utf16().collect();
        bytes.extend_from_slice(&(units.len() as i32).to_le_bytes());
        for u in units.iter().chain(std::iter::once(&0u16)) {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        while !bytes.len().is_multiple_of(4) {
            bytes.push(0);
        }
    }

    /// A reply Parcel of more than 16 bytes as `service call` prints it.
    fn dump_bytes(bytes: &[u8]) -> String {
        assert!(bytes.len() > 16, "short replies are printed on one line");
        let mut out = String::from("Result: Parcel(\n");
        let lines = bytes.len().div_ceil(16);
        for (i, chunk) in bytes.chunks(16).enumerate() {
            let words: Vec<String> = chunk
                .chunks(4)
                .map(|w| format!("{:08x}", u32::from_le_bytes(w.try_into().unwrap())))
                .collect();
            let ascii: String = chunk
                .iter()
                .map(|&b| {
                    if (b' '..127).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            out.push_str(&format!(
                "  0x{:08x}: {:35} '{ascii:16}'",
                i * 16,
                words.join(" ")
            ));
            if i + 1 == lines {
                out.push(')');
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn parcel_string_round_trip() {
        let text = dump_of("356938035643809");
        assert!(
            text.ends_with(
                "  0x00000020: 00300038 00000039                   '8.0.9...        ')\n"
            ),
            "{text}"
        );
        assert_eq!(
            parcel_string16(&text).unwrap().as_deref(),
            Some("356938035643809")
        );
    }

    #[test]
    fn parcel_exception_is_an_error() {
        let text = "Result: Parcel(ffffffff 00000000   '........')";
        assert!(parcel_string16(text).is_err());
    }

    #[test]
    fn parcel_garbage_never_panics() {
        for text in [
            "",
            "Result: Parcel(",
            "Result: Parcel(00000000 7fffffff)",
            "Parcel(zzzz)",
        ] {
            let _ = parcel_string16(text);
        }
        assert!(parcel_string16("Result: Parcel(00000000 7fffffff)").is_err());
    }

    #[test]
    fn parcel_forms_a_device_prints() {
        // One line, with a short last word and the ASCII column.
        assert_eq!(
            parcel_string16("Result: Parcel(00000000 ffffffff   '........')"),
            Ok(None)
        );
        let one = "Result: Parcel(00000000 00000001 00000041   '........A...')";
        assert_eq!(parcel_string16(one).unwrap().as_deref(), Some("A"));
        // CRLF from a legacy `shell:` pty, and the `Object #` lines after the dump.
        let text = dump_of("+6598765432").replace('\n', "\r\n");
        assert_eq!(
            parcel_string16(&text).unwrap().as_deref(),
            Some("+6598765432")
        );
        let with_objects =
            dump_of("89650123").replace("')\n", "'\nObject #0 @ 0x10: BINDER = 0x12345678)\n");
        assert_eq!(
            parcel_string16(&with_objects).unwrap().as_deref(),
            Some("89650123")
        );
        assert!(parcel_string16("Result: Parcel(NULL)").is_err());
    }

    // Found by fuzzing (fuzz/regressions/parcel/): a failed call, stray output inside the dump, and
    // a dump without its ASCII column each produced a value.

    #[test]
    fn parcel_error_form_never_yields_a_value() {
        let text = "Result: Parcel(Error: 0xffffffe0 \"00000000 00000000 00000001 00000041 \")\n";
        let err = parcel_string16(text).unwrap_err();
        assert!(err.starts_with("the service call failed"), "{err}");
    }

    #[test]
    fn parcel_stray_lines_are_never_decoded() {
        let dump = dump_of("359881234567890");
        let mut lines: Vec<&str> = dump.lines().collect();
        lines.insert(2, "00000000 00000001 00410041");
        assert_eq!(
            parcel_string16(&lines.join("\n")).unwrap().as_deref(),
            Some("359881234567890")
        );
        // A line that claims an offset must continue the dump.
        lines[2] = "  0x00000000: 00000000 00000001 00000041 '........A...'";
        assert!(parcel_string16(&lines.join("\n")).is_err());
    }

    #[test]
    fn parcel_words_must_match_their_ascii_column() {
        assert!(parcel_string16("Result: Parcel(00000000 00000001 00000041)").is_err());
        assert!(
            parcel_string16("Result: Parcel(00000000 00000001 00000042 '........A...')").is_err()
        );
        let tampered = dump_of("359881234567890").replacen("00350033", "00350034", 1);
        assert!(parcel_string16(&tampered).is_err());
    }

    /// `Parcel.writeException` (AOSP frameworks/base core/java/android/os/Parcel.java, android-35
    /// lines 3002–3038): code, message, and from SDK 28 a stack-trace header (0 outside
    /// system_server). The message is the SDK 32+ device-identifier refusal of TelephonyPermissions
    /// (android-35 lines 350–351), the form research §5.3 computed.
    #[test]
    fn security_exception_keeps_its_message() {
        let message = "getDeviceId: The uid 2000 does not meet the requirements to access device identifiers.";
        let mut bytes = (-1i32).to_le_bytes().to_vec();
        put_string16(&mut bytes, message);
        bytes.extend_from_slice(&0i32.to_le_bytes());
        let text = dump_bytes(&bytes);
        assert!(text.starts_with("Result: Parcel(\n  0x00000000: ffffffff 00000056 00650067 00440074 '....V...g.e.t.D.'"), "{text}");
        let Ok(StringReply::Exception(e)) = string_reply(&text) else {
            panic!("{text}");
        };
        assert!(e.is_security());
        assert_eq!(e.message.as_deref(), Some(message));
        assert_eq!(e.to_string(), format!("SecurityException: {message}"));
        // The SDK 23 form ends after the message; the NPE of a call without the package.
        let mut npe = (-4i32).to_le_bytes().to_vec();
        put_string16(
            &mut npe,
            "Attempt to invoke virtual method on a null object reference",
        );
        let Ok(StringReply::Exception(e)) = string_reply(&dump_bytes(&npe)) else {
            panic!();
        };
        assert_eq!(e.name(), "NullPointerException");
        assert!(
            parcel_string16(&dump_bytes(&npe))
                .unwrap_err()
                .contains("NullPointerException")
        );
        // An exception without a message (`writeString(null)`).
        assert_eq!(
            string_reply("Result: Parcel(fffffff9 ffffffff   '........')"),
            Ok(StringReply::Exception(ParcelException {
                code: -7,
                message: None
            }))
        );
    }

    /// `writeNoException` with StrictMode violations gathered (Parcel.java: EX_HAS_REPLY_HEADER
    /// -128, the header size counted from its own word, the header, then the result).
    #[test]
    fn strict_mode_header_is_skipped() {
        let mut bytes = (-128i32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&12i32.to_le_bytes());
        bytes.extend_from_slice(&[0xAA; 8]);
        put_string16(&mut bytes, "310260000000000");
        assert_eq!(
            string_reply(&dump_bytes(&bytes)),
            Ok(StringReply::Value("310260000000000".into()))
        );
    }

    /// The dump as a libbinder that prints through a plain stream would: a tab after `Parcel(`,
    /// the lines without their offsets (research: not seen on a device; read so that such a build
    /// is not refused).
    #[test]
    fn dump_without_offsets() {
        let with = dump_of("359881234567890");
        let without: String = with
            .replacen("Parcel(\n", "Parcel(\t\n", 1)
            .lines()
            .map(|l| match l.trim().split_once(": ") {
                Some((o, rest)) if o.starts_with("0x") => format!("{rest}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        assert!(!without.contains("0x0000"), "{without}");
        assert_eq!(
            parcel_string16(&without).unwrap().as_deref(),
            Some("359881234567890")
        );
        // A stray offset line in an offset-less dump is skipped, not decoded.
        let mut lines: Vec<&str> = without.lines().collect();
        lines.insert(2, "  0x00000000: 00000000 00000001 00000041 '........A...'");
        assert_eq!(
            parcel_string16(&lines.join("\n")).unwrap().as_deref(),
            Some("359881234567890")
        );
    }

    /// PhoneSubInfo.dump, AOSP frameworks/opt/telephony android-4.4.3_r1 PhoneSubInfo.java
    /// lines 226–238, and its refusal without DUMP.
    #[test]
    fn kitkat_dumpsys_iphonesubinfo() {
        let text =
            "Phone Subscriber Info:\r\n  Phone Type = GSM\r\n  Device ID = 490154203237518\r\n";
        let dump = dumpsys_iphonesubinfo(text).unwrap();
        assert_eq!(dump.phone_type.as_deref(), Some("GSM"));
        assert_eq!(dump.device_id.as_deref(), Some("490154203237518"));
        let cdma = dumpsys_iphonesubinfo(
            "Phone Subscriber Info:\n  Phone Type = CDMA\n  Device ID = null\n",
        )
        .unwrap();
        assert_eq!(cdma.device_id, None);
        let denied = "Permission Denial: can't dump PhoneSubInfo from from pid=4242, uid=2000";
        assert!(
            dumpsys_iphonesubinfo(denied)
                .unwrap_err()
                .contains("Permission Denial")
        );
        assert!(dumpsys_iphonesubinfo("").is_err(), "5.0+ prints nothing");
    }

    /// Slot lines of `dumpsys isub` per release (research §3.1: SubscriptionController.dump at
    /// 5.1, 7.1.2_r2 line 1830, 9 line 2154, 11.0.0_r32 line 3114; SubscriptionManagerService
    /// 14.0.0_r11 lines 3969–3995).
    #[test]
    fn isub_slots_of_every_release() {
        let cases: &[(&str, &[(u32, i64)])] = &[
            (
                " mSlotIdToSubIdMap[0]: subId=1\n mSlotIdToSubIdMap[1]: subId=2\n",
                &[(0, 1), (1, 2)],
            ),
            (" sSlotIdxToSubId[0]: subId=3\n", &[(0, 3)]),
            (" sSlotIndexToSubId[1]: subId=4\n", &[(1, 4)]),
            (
                " sSlotIndexToSubId[0]: subIds=0=[1]\n sSlotIndexToSubId[1]: subIds=1=[2, 5]\n",
                &[(0, 1), (1, 2)],
            ),
            (
                "SubscriptionManagerService:\n  Active modem count=2\n  Logical SIM slot sub id mapping:\n    Logical SIM slot 0: subId=1\n    Logical SIM slot 1: subId=-1\n",
                &[(0, 1)],
            ),
            // 15: the same slot lines, then `mUserIdToAvailableSubs=` (SubscriptionManagerService
            // at the 24Q3 base 34cccdc8: dump() at line 4798, the new line 4825), which names no
            // slot.
            (
                "SubscriptionManagerService:\nActive modem count=2\nLogical SIM slot sub id mapping:\n  Logical SIM slot 1: subId=2\nICCID:\n  slot 0: null\n  slot 1: 893301000[****]\n\ndefaultSubId=2\nareAllSubscriptionsLoaded=true\nmUserIdToAvailableSubs={-10000=[2, 3]}\n\nmSimState[0]=ABSENT\nmSimState[1]=LOADED\n",
                &[(1, 2)],
            ),
            (" defaultSubId=1\n", &[]),
        ];
        for (text, want) in cases {
            let dump = dumpsys_isub(text);
            assert_eq!(dump.slots.into_iter().collect::<Vec<_>>(), *want, "{text}");
        }
        assert_eq!(dumpsys_isub("Active modem count=2\n").modem_count, Some(2));
    }

    #[test]
    fn root_macs_and_adids() {
        assert!(id_is_root(
            "uid=0(root) gid=0(root) groups=0(root) context=u:r:su:s0"
        ));
        assert!(!id_is_root("uid=2000(shell) gid=2000(shell)"));
        assert_eq!(
            mac_address("AC:37:43:4B:5C:6D\n").as_deref(),
            Some("ac:37:43:4b:5c:6d")
        );
        let ip = "3: wlan0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP mode DORMANT group default qlen 3000\n    link/ether 02:15:b2:00:00:00 brd ff:ff:ff:ff:ff:ff\n";
        assert_eq!(mac_address(ip).as_deref(), Some("02:15:b2:00:00:00"));
        assert_eq!(
            mac_address("cat: /sys/class/net/wlan0/address: No such file or directory"),
            None
        );
        let prefs = "<?xml version='1.0' encoding='utf-8' standalone='yes' ?>\n<map>\n    <string name=\"adid_key\">38400000-8CF0-11BD-B23E-10B96E40000D</string>\n    <int name=\"adid_reset_count\" value=\"0\" />\n</map>\n";
        assert_eq!(
            adid_from_prefs(prefs).as_deref(),
            Some("38400000-8cf0-11bd-b23e-10b96e40000d")
        );
        assert_eq!(adid_from_prefs("<map/>"), None);
    }

    #[test]
    fn content_rows_with_commas_in_values() {
        let rows = content_rows(
            "Row: 0 _id=3, data1=Tan, Wei Ling, mimetype=vnd.android.cursor.item/name\n",
            &["_id", "data1", "mimetype"],
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["data1"], "Tan, Wei Ling");
        assert_eq!(rows[0]["_id"], "3");
    }
}
