//! Fuzz target for the `Parcel(...)` dump parser of `src/device/parse.rs` (`parcel_string16`), which
//! reads the IMEI, IMSI, ICCID and phone number from `service call iphonesubinfo N` on the device.
//!
//! Two kinds of input, by the low bit of byte 0:
//! - raw (0): the rest is the reply text, anything at all. Checks: no panic; a value returned is
//!   made only of characters present in the input's quoted string data (the `'…'` ASCII columns of
//!   the dump: a printable ASCII character of the value must appear there, any other character shows
//!   there as `.`); a `Parcel(Error: …)` reply never yields a value.
//! - structured (1): the rest describes a reply Parcel (see `Shape`), which is printed the way
//!   `service call` prints it, by the virtual handset's independent printer (libbinder's
//!   `printHexData` layout: one line up to 16 bytes, else `0xOFFSET:` lines, `'…'` ASCII column), in
//!   every form a device gives: string (one-line and multi-line), null string, exception (any code,
//!   with or without a message), `Parcel(Error: …)` and `Parcel(NULL)`; optionally with CRLF line
//!   ends (a legacy `shell:` pty), extra words after the string, or one stray line of other output
//!   inserted. Checks: the string comes back exactly; the null string is `Ok(None)`; an exception or
//!   error form never yields a value; with a stray line the answer is the exact string or an error,
//!   never another value.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tattle::device::parse::parcel_string16;
use tattle::vhandset::generation::ParcelPrint;
use tattle::vhandset::shell::commands::service::format_result;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    if control & 1 == 0 {
        raw(&String::from_utf8_lossy(rest));
    } else {
        structured(control, rest);
    }
});

// ---- raw text ------------------------------------------------------------------------------------------

fn raw(text: &str) {
    let result = parcel_string16(text);
    if let Some(at) = text.find("Parcel(") {
        if text[at + "Parcel(".len()..]
            .trim_start()
            .starts_with("Error")
        {
            assert!(
                !matches!(result, Ok(Some(_))),
                "an error reply yielded a value: {text:?}"
            );
        }
    }
    if let Ok(Some(value)) = &result {
        let quoted = quoted_chars(text);
        for c in value.chars() {
            let shown = if (' '..='~').contains(&c) { c } else { '.' };
            assert!(
                quoted.contains(&shown),
                "value character {c:?} is not in the quoted data of {text:?} (value {value:?})"
            );
        }
    }
}

/// Characters inside the `'…'` columns: on each line, between its first and its last quote.
fn quoted_chars(text: &str) -> std::collections::BTreeSet<char> {
    let mut set = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let (Some(a), Some(b)) = (line.find('\''), line.rfind('\'')) {
            if b > a {
                set.extend(line[a + 1..b].chars());
            }
        }
    }
    set
}

// ---- structured replies --------------------------------------------------------------------------------

/// Bits of byte 0 (bit 0 selects this mode).
const FORM: u8 = 0b110; // 0 string, 1 null string, 2 exception, 3 Error/NULL/empty forms
const CRLF: u8 = 0x08;
const STRAY: u8 = 0x10;
const TRAILER: u8 = 0x20;
const UNITS: u8 = 0x40;
const LONG: u8 = 0x80;

/// Exception codes a Java service writes (`Parcel.writeException`), the noted-app-ops header
/// (-127, which only a Java client asks for) and EX_TRANSACTION_FAILED (-129). Not -128: that is
/// the StrictMode reply header of a call that threw nothing, followed by its result, which the
/// parser reads past (a unit test in src/device/parse.rs covers it).
const EXCEPTIONS: [i32; 12] = [-1, -2, -3, -4, -5, -6, -7, -8, -9, -11, -127, -129];

/// Stray output a merged stderr or a noisy build may add.
fn strays() -> &'static [&'static str] {
    static S: OnceLock<Vec<&'static str>> = OnceLock::new();
    S.get_or_init(|| {
        vec![
            "",
            "service: Waiting for service 'iphonesubinfo'...",
            "W/ServiceManager: deadbeef 00000000 00000041",
            "00000000 00000001 00410041",
            "  0x00000000: 00000000 00000001 00000041",
            ")",
            "Result: Parcel(",
        ]
    })
}

fn structured(control: u8, rest: &[u8]) {
    let (head, body) = rest.split_at(rest.len().min(2));
    let pick = |i: usize| head.get(i).copied().unwrap_or(0) as usize;
    // The string, as UTF-16 units: from UTF-8 text, or raw units (lone surrogates included).
    let units: Vec<u16> = if control & UNITS != 0 {
        body.chunks(2)
            .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect()
    } else {
        let s = String::from_utf8_lossy(body);
        let s = if control & LONG != 0 {
            s.repeat(8)
        } else {
            s.into_owned()
        };
        s.encode_utf16().collect()
    };
    let valid = String::from_utf16(&units).ok();

    let mut parcel = Vec::new();
    let mut text = None;
    let expected: Expected = match (control & FORM) >> 1 {
        0 => {
            put_i32(&mut parcel, 0);
            put_string16(&mut parcel, &units);
            match &valid {
                Some(s) => Expected::Value(s.clone()),
                None => Expected::Error,
            }
        }
        1 => {
            put_i32(&mut parcel, 0);
            put_i32(&mut parcel, -1);
            Expected::Null
        }
        2 => {
            // `writeException`: code, message String16, (stack trace header) …
            let code = match pick(0) % 16 {
                i if i < EXCEPTIONS.len() => EXCEPTIONS[i],
                _ => i32::from_le_bytes([head.first().copied().unwrap_or(1) | 1, 0, 0, 0x80]),
            };
            put_i32(&mut parcel, code);
            put_string16(&mut parcel, &units);
            Expected::Error
        }
        _ => {
            text = Some(match pick(0) % 4 {
                0 => "Result: Parcel(NULL)\n".to_string(),
                1 => "Result: Parcel(Error: 0xffffffb5 \"Not a data message\")\n".to_string(),
                2 => {
                    // An error whose text happens to hold hex words.
                    let mut t = String::from("Result: Parcel(Error: 0xffffffe0 \"");
                    for u in units.iter().take(8) {
                        t.push_str(&format!("{u:08x} "));
                    }
                    t.push_str("\")\n");
                    t
                }
                _ => String::new(),
            });
            Expected::Error
        }
    };
    if control & TRAILER != 0 {
        // Whatever a longer reply holds after the string (another field, a stack-trace header).
        for &b in head {
            parcel.extend_from_slice(&[b; 4]);
        }
    }
    // Both ways libbinder prints a Parcel: indented (up to Android 13), a tab after `Parcel(` (14+).
    let print = if pick(1) % 2 == 0 {
        ParcelPrint::Indented
    } else {
        ParcelPrint::Tab
    };
    let mut text = text.unwrap_or_else(|| format_result(&parcel, print));

    let stray = control & STRAY != 0;
    if stray {
        let strays = strays();
        let line = strays[pick(1) % strays.len()];
        let mut lines: Vec<&str> = text.split('\n').collect();
        let at = pick(0) % (lines.len() + 1);
        lines.insert(at, line);
        text = lines.join("\n");
    }
    if control & CRLF != 0 {
        text = text.replace('\n', "\r\n");
    }

    let got = parcel_string16(&text);
    match (&expected, &got) {
        (Expected::Value(want), Ok(Some(v))) => {
            assert_eq!(want, v, "wrong value from {text:?}")
        }
        (Expected::Value(_), Err(_)) if stray => {}
        (Expected::Null, Ok(None)) => {}
        (Expected::Null, Err(_)) if stray => {}
        (Expected::Error, Err(_)) => {}
        _ => panic!("expected {expected:?}, got {got:?} from {text:?}"),
    }
}

#[derive(Debug)]
enum Expected {
    Value(String),
    Null,
    Error,
}

fn put_i32(p: &mut Vec<u8>, v: i32) {
    p.extend_from_slice(&v.to_le_bytes());
}

/// `writeString16`: length in units, the units, a NUL unit, padding to 4 bytes.
fn put_string16(p: &mut Vec<u8>, units: &[u16]) {
    put_i32(p, units.len() as i32);
    for u in units.iter().chain(std::iter::once(&0)) {
        p.extend_from_slice(&u.to_le_bytes());
    }
    while p.len() % 4 != 0 {
        p.push(0);
    }
}
