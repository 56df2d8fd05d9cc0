//! Needles: every byte string an identifier's value may take on the wire — its plain forms
//! (phone number formats, an IMEI with or without its check digit, MAC separators) and their
//! encodings (URL, JSON escapes, base64, base64url, hex, base32, md5/sha1/sha256 in hex, base64
//! and base32).
//!
//! Must not touch: searching (the automaton is built in `matcher`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use md5::Digest as _;

use super::{MIN_DERIVED_LEN, MIN_VALUE_LEN};
use crate::identifier::{Identifier, kinds};

fn is_phone(kind: &str) -> bool {
    kind == kinds::PHONE_NUMBER || kind == kinds::CONTACT_PHONE
}

/// ITU-T E.164 country calling codes of one and two digits; every other code has three. Enough to
/// cut an international number into country code and national number.
const CC_1: &[&str] = &["1", "7"];
const CC_2: &[&str] = &[
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
    "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
    "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// (country code, national number) of international digits (no `+`), if they look like one.
fn split_country(digits: &str) -> Option<(&str, &str)> {
    let cc_len = if CC_1.iter().any(|c| digits.starts_with(c)) {
        1
    } else if CC_2.iter().any(|c| digits.starts_with(c)) {
        2
    } else {
        3
    };
    let (cc, national) = digits.split_at_checked(cc_len)?;
    (national.len() >= MIN_NATIONAL).then_some((cc, national))
}

/// National numbers shorter than this are not searched on their own (too many chance matches).
const MIN_NATIONAL: usize = 6;

/// Common ways of grouping a national number for display: halves, 3-3-4 (NANP), 3-rest, rest-4.
fn groupings(n: &str) -> Vec<Vec<&str>> {
    let len = n.len();
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut push = |cuts: &[usize]| {
        let mut parts = Vec::new();
        let mut prev = 0;
        for &c in cuts {
            if c <= prev || c >= len {
                return;
            }
            parts.push(&n[prev..c]);
            prev = c;
        }
        parts.push(&n[prev..]);
        if !out.contains(&parts) {
            out.push(parts);
        }
    };
    push(&[len / 2]);
    push(&[3]);
    push(&[len.saturating_sub(4)]);
    if len == 10 {
        push(&[3, 6]);
    }
    if len >= 9 {
        push(&[2, len - 4]);
        push(&[3, len - 4]);
        push(&[1, len - 4]);
    }
    out
}

/// A textual form of a value before any encoding, and whether every encoding of it is searched
/// (`false`: display variants, searched plain and URL-encoded only, to keep the automaton small).
type Form = (Vec<u8>, bool);

/// The textual forms of a value before any encoding: the value itself plus, per kind, other ways of
/// writing the same value (still `plain`).
fn plain_forms(id: &Identifier) -> Vec<Form> {
    let v = id.value.as_str();
    let mut forms: Vec<Form> = vec![(v.as_bytes().to_vec(), true)];
    if is_phone(&id.kind) {
        let compact: String = v
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        forms.push((compact.as_bytes().to_vec(), true));
        let digits = compact
            .strip_prefix('+')
            .or_else(|| compact.strip_prefix("00"));
        let split = digits.and_then(split_country);
        if let Some(d) = digits {
            forms.push((format!("+{d}").into_bytes(), true));
            forms.push((d.as_bytes().to_vec(), true));
            forms.push((format!("00{d}").into_bytes(), true));
        }
        let national = match split {
            Some((_, n)) => Some(n.to_string()),
            // Already national: with or without the trunk 0.
            None if digits.is_none() => Some(compact.trim_start_matches('0').to_string()),
            None => None,
        };
        if let Some(n) = national.filter(|n| n.len() >= MIN_NATIONAL) {
            forms.push((n.as_bytes().to_vec(), true));
            forms.push((format!("0{n}").into_bytes(), true));
            for sep in [" ", "-"] {
                for g in groupings(&n) {
                    let grouped = g.join(sep);
                    forms.push((grouped.clone().into_bytes(), false));
                    forms.push((format!("0{grouped}").into_bytes(), false));
                    if let Some((cc, _)) = split {
                        forms.push((format!("+{cc}{sep}{grouped}").into_bytes(), false));
                        forms.push((format!("+{cc} {grouped}").into_bytes(), false));
                    }
                }
            }
        }
    } else if id.kind == kinds::IMEI && v.len() == 15 && v.bytes().all(|b| b.is_ascii_digit()) {
        // Without the Luhn check digit (what some SDKs report).
        forms.push((v.as_bytes()[..14].to_vec(), true));
    } else if id.kind == kinds::IMEI && v.len() == 14 && v.bytes().all(|b| b.is_ascii_digit()) {
        if let Some(c) = crate::identifier::luhn_check_digit(v) {
            forms.push((format!("{v}{c}").into_bytes(), true));
        }
    } else if id.kind == kinds::WIFI_MAC {
        let hexes: String = v.chars().filter(char::is_ascii_hexdigit).collect();
        if hexes.len() == 12 {
            let pairs: Vec<&str> = (0..6).map(|i| &hexes[2 * i..2 * i + 2]).collect();
            for upper in [false, true] {
                let case = |s: String| {
                    if upper {
                        s.to_ascii_uppercase()
                    } else {
                        s.to_ascii_lowercase()
                    }
                };
                forms.push((case(pairs.join(":")).into_bytes(), true));
                forms.push((case(hexes.clone()).into_bytes(), true));
                forms.push((case(pairs.join("-")).into_bytes(), false));
            }
        }
    }
    let mut uniq: Vec<Form> = Vec::new();
    for (f, full) in forms {
        if f.len() < MIN_VALUE_LEN {
            continue;
        }
        match uniq.iter_mut().find(|(u, _)| *u == f) {
            Some(u) => u.1 |= full,
            None => uniq.push((f, full)),
        }
    }
    uniq
}

/// JSON string escapes of a value that differ from the value (`Zo\u00eb`, `\u002B65…`, `a\/b`):
/// what JSON encoders write for non-ASCII (ensure_ascii), HTML-sensitive characters (Go), `/` (PHP),
/// or every punctuation character, with either hex case.
fn json_forms(value: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for style in 0..3 {
        for upper in [false, true] {
            let mut s = String::with_capacity(value.len() * 2);
            for c in value.chars() {
                let escape = match style {
                    0 => {
                        !c.is_ascii() || c.is_ascii_control() || matches!(c, '<' | '>' | '&' | '\'')
                    }
                    1 => !c.is_ascii() || c.is_ascii_control(),
                    _ => !c.is_ascii_alphanumeric() && c != ' ',
                };
                match c {
                    '"' if style != 2 => s.push_str("\\\""),
                    '\\' if style != 2 => s.push_str("\\\\"),
                    '/' if style == 1 => s.push_str("\\/"),
                    _ if escape => {
                        let mut buf = [0u16; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            if upper {
                                s.push_str(&format!("\\u{unit:04X}"));
                            } else {
                                s.push_str(&format!("\\u{unit:04x}"));
                            }
                        }
                    }
                    _ => s.push(c),
                }
            }
            if s != value && !out.iter().any(|o| *o == s.as_bytes()) {
                out.push(s.into_bytes());
            }
        }
    }
    out
}

/// Every needle of one identifier, in priority order (see the module doc for the names).
pub(super) fn needles(id: &Identifier) -> Vec<(Vec<u8>, &'static str)> {
    let mut out: Vec<(Vec<u8>, &'static str)> = Vec::new();
    let derived = |out: &mut Vec<(Vec<u8>, &'static str)>, n: Vec<u8>, enc: &'static str| {
        if n.len() >= MIN_DERIVED_LEN {
            out.push((n, enc));
        }
    };
    for (form, full) in plain_forms(id) {
        out.push((form.clone(), "plain"));
        for upper in [true, false] {
            for plus in [true, false] {
                derived(&mut out, url_encode(&form, upper, plus), "url");
            }
        }
        if !full {
            continue;
        }
        if let Ok(text) = std::str::from_utf8(&form) {
            for j in json_forms(text) {
                derived(&mut out, j, "json");
            }
        }
        for n in base64_alignments(&form, false) {
            derived(&mut out, n, "base64");
        }
        for n in base64_alignments(&form, true) {
            derived(&mut out, n, "base64url");
        }
        derived(&mut out, hex::encode(&form).into_bytes(), "hex");
        derived(&mut out, hex::encode_upper(&form).into_bytes(), "hex");
        for n in base32_alignments(&form) {
            derived(&mut out, n, "base32");
        }
        let digests: [(Vec<u8>, [&'static str; 4]); 3] = [
            (
                md5::Md5::digest(&form).to_vec(),
                ["md5", "md5+base64", "md5+base64url", "md5+base32"],
            ),
            (
                sha1::Sha1::digest(&form).to_vec(),
                ["sha1", "sha1+base64", "sha1+base64url", "sha1+base32"],
            ),
            (
                sha2::Sha256::digest(&form).to_vec(),
                [
                    "sha256",
                    "sha256+base64",
                    "sha256+base64url",
                    "sha256+base32",
                ],
            ),
        ];
        for (digest, [hex_name, b64_name, b64url_name, b32_name]) in digests {
            // A digest in base32 stands alone (a DNS label, a file name): aligned, either case.
            let b32 = base32(&digest);
            derived(&mut out, b32.to_ascii_uppercase().into_bytes(), b32_name);
            derived(&mut out, b32.into_bytes(), b32_name);
            derived(&mut out, hex::encode(&digest).into_bytes(), hex_name);
            derived(&mut out, hex::encode_upper(&digest).into_bytes(), hex_name);
            // A digest is usually encoded on its own, but it may sit inside a longer blob.
            for n in base64_alignments(&digest, false) {
                derived(&mut out, n, b64_name);
            }
            for n in base64_alignments(&digest, true) {
                derived(&mut out, n, b64url_name);
            }
        }
    }
    out
}

/// Percent-encoding as HTML forms and most HTTP libraries do it: unreserved characters kept.
pub(crate) fn url_encode(value: &[u8], upper: bool, space_as_plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' if space_as_plus => out.push(b'+'),
            _ => {
                let s = if upper {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                };
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    out
}

/// The base64 characters fully determined by `value` when it starts at byte offset 0, 1 or 2 of a
/// 3-byte group, whatever bytes surround it. Covers padded and unpadded encodings: the padding and
/// the partially determined last character are simply not part of the needle.
pub(crate) fn base64_alignments(value: &[u8], url_safe: bool) -> Vec<Vec<u8>> {
    let engine = if url_safe { &URL_SAFE } else { &STANDARD };
    let mut out = Vec::new();
    for k in 0..3usize {
        let mut buf = vec![0u8; k];
        buf.extend_from_slice(value);
        let enc = engine.encode(&buf).into_bytes();
        // Characters 0..skip carry bits of the k prefix bytes; characters past `full` carry bits of
        // whatever follows the value.
        let skip = (k * 8).div_ceil(6);
        let full = (k + value.len()) * 8 / 6;
        if full > skip {
            out.push(enc[skip..full].to_vec());
        }
    }
    out
}

/// RFC 4648 base32 (lower case, unpadded) of `bytes`.
pub(crate) fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u64, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The base32 characters fully determined by `value` when it starts at byte offset 0–4 of a 5-byte
/// group, in lower and upper case (DNS tunnels write lower case, RFC 4648 upper).
pub(crate) fn base32_alignments(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for k in 0..5usize {
        let mut buf = vec![0u8; k];
        buf.extend_from_slice(value);
        let enc = base32(&buf);
        let skip = (k * 8).div_ceil(5);
        let full = (k + value.len()) * 8 / 5;
        if full > skip {
            let part = &enc.as_bytes()[skip..full];
            out.push(part.to_ascii_uppercase());
            out.push(part.to_vec());
        }
    }
    out
}
