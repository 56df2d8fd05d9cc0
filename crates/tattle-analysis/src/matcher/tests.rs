//! The matcher as a whole: every encoding found, nested matches collapsed, streams, layers,
//! bounds, and the fast loops against their references.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use md5::Digest as _;

use super::layers::{CLASS, MIN_BLOB, SEP, base64_runs, url_segments};
use super::needles::url_encode;
use super::*;
use crate::identifier::Identifier;

const IMEI: &str = "356938035643809";

fn names(m: &Matcher, found: &[RawMatch]) -> Vec<String> {
    found
        .iter()
        .map(|r| format!("{}:{}", m.kind(r.identifier), m.encoding_name(r.encoding)))
        .collect()
}

#[test]
fn finds_every_encoding_of_an_imei() {
    let m = Matcher::new(&[Identifier::new("imei", IMEI)]);
    let md5 = hex::encode(md5::Md5::digest(IMEI.as_bytes()));
    let sha1u = hex::encode_upper(sha1::Sha1::digest(IMEI.as_bytes()));
    let sha256_b64 = STANDARD.encode(sha2::Sha256::digest(IMEI.as_bytes()));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (format!("x={IMEI}&").into_bytes(), "plain"),
        (format!("m={md5}").into_bytes(), "md5"),
        (format!("s={sha1u};").into_bytes(), "sha1"),
        (format!("\"{sha256_b64}\"").into_bytes(), "sha256+base64"),
        (hex::encode(IMEI).into_bytes(), "hex"),
    ];
    for (hay, want) in cases {
        let found = m.scan(&hay);
        assert_eq!(names(&m, &found), vec![format!("imei:{want}")], "{want}");
    }
}

#[test]
fn base64_found_at_every_alignment_padded_or_not() {
    let m = Matcher::new(&[Identifier::new("imei", IMEI)]);
    for prefix in ["", "a", "ab", "abc", "abcd"] {
        for suffix in ["", "z", "zz"] {
            let blob = format!("{prefix}{IMEI}{suffix}");
            for (enc, name) in [
                (STANDARD.encode(&blob), "base64"),
                (
                    STANDARD.encode(&blob).trim_end_matches('=').to_string(),
                    "base64",
                ),
                (URL_SAFE.encode(&blob), "base64"),
            ] {
                let found = m.scan(enc.as_bytes());
                assert_eq!(
                    names(&m, &found),
                    vec![format!("imei:{name}")],
                    "{prefix}|{suffix}"
                );
            }
        }
    }
}

#[test]
fn url_safe_alphabet_is_named_base64url() {
    // Bytes chosen so the standard alphabet produces `+` and `/`.
    let value = "\u{fb}\u{ff}\u{fe}token";
    let m = Matcher::new(&[Identifier::new("email", value)]);
    let enc = URL_SAFE.encode(value.as_bytes());
    assert!(enc.contains('-') || enc.contains('_'), "{enc}");
    let found = m.scan(enc.as_bytes());
    assert_eq!(names(&m, &found), vec!["email:base64url"]);
}

#[test]
fn url_encoding_either_case_and_nested_matches_collapse() {
    let m = Matcher::new(&[Identifier::new("phone_number", "+6598765432")]);
    for hay in ["to=%2B6598765432&", "to=%2b6598765432&"] {
        let found = m.scan(hay.as_bytes());
        assert_eq!(names(&m, &found), vec!["phone_number:url"], "{hay}");
    }
    for hay in ["n=006598765432", "n=6598765432", "n=+6598765432"] {
        let found = m.scan(hay.as_bytes());
        assert_eq!(names(&m, &found), vec!["phone_number:plain"], "{hay}");
    }
    let name = Matcher::new(&[Identifier::new("contact_name", "Wei Ling Tan")]);
    for hay in ["n=Wei+Ling+Tan", "n=Wei%20Ling%20Tan"] {
        let found = name.scan(hay.as_bytes());
        assert_eq!(names(&name, &found), vec!["contact_name:url"], "{hay}");
    }
}

#[test]
fn different_identifiers_inside_each_other_are_both_reported() {
    let m = Matcher::new(&[
        Identifier::new("phone_number", "+6598765432"),
        Identifier::new("contact_phone", "98765432"),
    ]);
    let found = m.scan(b"msisdn=+6598765432");
    let mut got = names(&m, &found);
    got.sort();
    assert_eq!(got, vec!["contact_phone:plain", "phone_number:plain"]);
}

#[test]
fn stream_scanner_finds_needles_split_across_pieces_once() {
    // A custom kind: an IMEI also has a 14-digit form (no check digit), a prefix reported as
    // soon as a piece ends after it.
    let m = Matcher::new(&[Identifier::new("custom", IMEI)]);
    let hay = format!("aaaa{IMEI}bbbb{IMEI}");
    for cut in 0..hay.len() {
        let mut s = StreamScanner::at(100);
        let mut all = s.feed(&m, 100, &hay.as_bytes()[..cut]);
        all.extend(s.feed(&m, 100 + cut as u64, &hay.as_bytes()[cut..]));
        let ends: Vec<u64> = all.iter().map(|x| x.end).collect();
        assert_eq!(
            ends,
            vec![100 + 4 + 15, 100 + hay.len() as u64],
            "cut {cut}"
        );
    }
}

#[test]
fn stream_scanner_does_not_match_across_a_gap() {
    let m = Matcher::new(&[Identifier::new("imei", IMEI)]);
    let mut s = StreamScanner::at(0);
    assert!(s.feed(&m, 0, &IMEI.as_bytes()[..7]).is_empty());
    assert!(s.feed(&m, 50, &IMEI.as_bytes()[7..]).is_empty());
}

#[test]
fn short_values_and_no_identifiers_find_nothing() {
    let m = Matcher::new(&[Identifier::new("imei", "12")]);
    assert!(m.scan(b"121212").is_empty());
    let none = Matcher::new(&[]);
    assert_eq!(none.max_needle_len(), 0);
    assert!(none.scan(b"anything").is_empty());
}

fn layer_names(m: &Matcher, hay: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = m
        .scan_layers(hay, true)
        .iter()
        .map(|r| format!("{}:{}", m.kind(r.identifier), r.encoding))
        .collect();
    v.sort();
    v
}

#[test]
fn json_escapes_are_found() {
    let m = Matcher::new(&[
        Identifier::new("contact_name", "Zoë O'Neil"),
        Identifier::new("phone_number", "+6598765432"),
        Identifier::new("sms_body", "meet at 5 😀"),
    ]);
    for (hay, want) in [
        (r#"{"n":"Zo\u00eb O\u0027Neil"}"#, "contact_name:json"),
        (r#"{"n":"Zo\u00EB O'Neil"}"#, "contact_name:json"),
        (r#"{"p":"\u002b6598765432x"}"#, "phone_number:json"),
        (r#"{"b":"meet at 5 \ud83d\ude00"}"#, "sms_body:json"),
    ] {
        assert_eq!(layer_names(&m, hay.as_bytes()), vec![want], "{hay}");
    }
}

#[test]
fn phone_formats_imei_check_digit_and_mac_separators() {
    let m = Matcher::new(&[Identifier::new("phone_number", "+6598765432")]);
    for hay in [
        "t=98765432;",
        "t=098765432;",
        "t=9876 5432;",
        "t=+65 9876-5432;",
        "t=0098765432;",
    ] {
        assert_eq!(
            layer_names(&m, hay.as_bytes()),
            vec!["phone_number:plain"],
            "{hay}"
        );
    }
    let us = Matcher::new(&[Identifier::new("phone_number", "+14155550123")]);
    for hay in ["415-555-0123", "(x) 415 555 0123", "04155550123"] {
        assert_eq!(
            layer_names(&us, hay.as_bytes()),
            vec!["phone_number:plain"],
            "{hay}"
        );
    }
    let imei = Matcher::new(&[Identifier::new("imei", IMEI)]);
    assert_eq!(layer_names(&imei, b"d=35693803564380;"), vec!["imei:plain"]);
    assert_eq!(
        layer_names(&imei, format!("d={IMEI};").as_bytes()),
        vec!["imei:plain"]
    );
    let md5_14 = hex::encode(md5::Md5::digest(&IMEI.as_bytes()[..14]));
    assert_eq!(layer_names(&imei, md5_14.as_bytes()), vec!["imei:md5"]);
    let short = Matcher::new(&[Identifier::new("imei", &IMEI[..14])]);
    assert_eq!(layer_names(&short, IMEI.as_bytes()), vec!["imei:plain"]);
    assert_eq!(
        crate::identifier::luhn_check_digit("49015420323751"),
        Some('8')
    );
    let mac = Matcher::new(&[Identifier::new("wifi_mac", "02:1A:2b:3c:4D:5e")]);
    for hay in [
        "021a2b3c4d5e",
        "02:1A:2B:3C:4D:5E",
        "02-1a-2b-3c-4d-5e",
        "021A2B3C4D5E",
    ] {
        assert_eq!(
            layer_names(&mac, hay.as_bytes()),
            vec!["wifi_mac:plain"],
            "{hay}"
        );
    }
    assert_eq!(
        layer_names(&mac, b"m=02%3A1a%3A2b%3A3c%3A4d%3A5e"),
        vec!["wifi_mac:url"]
    );
}

#[test]
fn decoded_layers_name_every_transformation_innermost_first() {
    use std::io::Write as _;
    let m = Matcher::new(&[Identifier::new("imei", IMEI)]);
    let b64 = |x: &[u8]| STANDARD.encode(x);
    let md5 = hex::encode(md5::Md5::digest(IMEI.as_bytes()));
    // Plain inside a base64 blob (also found by the base64 needles): one finding, `base64`.
    let blob = b64(format!(r#"{{"device":"{IMEI}","v":2}}"#).as_bytes());
    assert_eq!(
        layer_names(&m, format!("t={blob}").as_bytes()),
        vec!["imei:base64"]
    );
    // A hex digest inside a blob: md5+base64.
    let blob = b64(format!("id={md5}&x=1").as_bytes());
    assert_eq!(layer_names(&m, blob.as_bytes()), vec!["imei:md5+base64"]);
    // A blob whose padding and `+` were percent-encoded as a query value: base64+url.
    let blob = b64(format!("{IMEI}??>").as_bytes());
    assert!(blob.contains('+') || blob.ends_with('='), "{blob}");
    let q = format!(
        "/p?d={}&z=1",
        String::from_utf8(url_encode(blob.as_bytes(), true, false)).unwrap()
    );
    assert_eq!(layer_names(&m, q.as_bytes()), vec!["imei:base64+url"]);
    // gzip inside base64: gzip+base64 (the plain identity dropped).
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(format!("imei={IMEI}").as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    assert_eq!(
        layer_names(&m, format!("x={}", b64(&gz)).as_bytes()),
        vec!["imei:gzip+base64"]
    );
    // Five base64 layers: three are decoded, the fourth is a needle, the fifth is too deep.
    let mut deep = format!("{IMEI}-padding-to-be-long").into_bytes();
    for _ in 0..5 {
        deep = b64(&deep).into_bytes();
    }
    assert!(layer_names(&m, &deep).is_empty());
    let four = STANDARD.decode(&deep).unwrap();
    assert_eq!(
        layer_names(&m, &four),
        vec!["imei:base64+base64+base64+base64"]
    );
    assert_eq!(add_layer("plain", "gzip"), "gzip");
    assert_eq!(add_layer("md5", "base64"), "md5+base64");
}

#[test]
fn layer_work_is_bounded() {
    let m = Matcher::new(&[Identifier::new("imei", IMEI)]);
    // Many small blobs and escaped values: the decoded-byte budget caps the work.
    let hay = "QUJDREVGR0hJSktMTU5PUFFS %41%42 ".repeat(40_000);
    let t = std::time::Instant::now();
    assert!(m.scan_layers(hay.as_bytes(), true).is_empty());
    assert!(t.elapsed().as_secs() < 10);
    assert!(m.scan_layers(b"%", true).is_empty());
    assert!(m.scan_layers(b"%4", true).is_empty());
    assert!(m.scan_layers(b"====", true).is_empty());
}

/// The straightforward byte-at-a-time versions of the layer loops, as the reference the fast
/// ones must agree with.
fn url_segments_ref(hay: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < hay.len() {
        let start = pos;
        let mut escaped = false;
        while pos < hay.len() && CLASS[hay[pos] as usize] != SEP {
            escaped |= hay[pos] == b'%'
                && hay.get(pos + 1).is_some_and(u8::is_ascii_hexdigit)
                && hay.get(pos + 2).is_some_and(u8::is_ascii_hexdigit);
            pos += 1;
        }
        if escaped && pos > start {
            out.push((start, pos));
        }
        pos += 1;
    }
    out
}

fn base64_runs_ref(hay: &[u8]) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < hay.len() {
        let start = pos;
        let (mut std_chars, mut url_chars, mut all_hex) = (false, false, true);
        while pos < hay.len() {
            let b = hay[pos];
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => all_hex &= b.is_ascii_hexdigit(),
                b'+' | b'/' => std_chars = true,
                b'-' | b'_' => url_chars = true,
                _ => break,
            }
            pos += 1;
        }
        let mut end = pos;
        while end < hay.len() && end - pos < 2 && hay[end] == b'=' {
            end += 1;
        }
        if pos == start {
            pos += 1;
            continue;
        }
        pos = end;
        if pos - start >= MIN_BLOB && !all_hex && !(std_chars && url_chars) {
            out.push((start, end, url_chars));
        }
    }
    out
}

#[test]
fn fast_layer_loops_agree_with_the_reference() {
    // Inputs drawn from a small alphabet so runs, escapes, padding and separators all occur.
    let alphabet = b"aZ09f+/-_=%3A&? \x00\xff";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..3000 {
        let len = (round % 97) + (round / 30);
        let hay: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Long base64-only stretches half the time.
                if x % 5 < 3 {
                    b"QUJDabc9Z+"[(x >> 8) as usize % 10]
                } else {
                    alphabet[(x >> 8) as usize % alphabet.len()]
                }
            })
            .collect();
        assert_eq!(
            url_segments(&hay).collect::<Vec<_>>(),
            url_segments_ref(&hay)
        );
        assert_eq!(
            base64_runs(&hay).collect::<Vec<_>>(),
            base64_runs_ref(&hay),
            "{}",
            String::from_utf8_lossy(&hay)
        );
    }
}

#[test]
fn prefiltered_scan_equals_the_full_walk() {
    let ids = [
        Identifier::new("imei", IMEI),
        Identifier::new("phone_number", "+6598765432"),
        Identifier::new("contact_name", "Wei Ling Tan"),
    ];
    let m = Matcher::new(&ids);
    assert!(m.prefilter.is_some());
    let full = |hay: &[u8]| {
        let mut out = Vec::new();
        m.scan_window(m.ac.as_ref().unwrap(), hay, 0, hay.len(), &mut out);
        drop_nested(&mut out);
        out
    };
    let all: Vec<Vec<u8>> = ids
        .iter()
        .flat_map(|i| needles(i).into_iter().map(|n| n.0))
        .collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut found = 0;
    for round in 0..400 {
        let len = 256 + (next() % 6000) as usize;
        // Random bytes, or digits and letters (text-like), with needles planted anywhere,
        // touching, overlapping or cut by the haystack's ends.
        let text = round % 2 == 0;
        let mut hay: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if text {
                    b"0123456789abcdefXYZ+/= %"[(r % 24) as usize]
                } else {
                    r as u8
                }
            })
            .collect();
        for _ in 0..(next() % 12) {
            let n = &all[(next() % all.len() as u64) as usize];
            let at = (next() % len as u64) as usize;
            let end = (at + n.len()).min(len);
            hay[at..end].copy_from_slice(&n[..end - at]);
        }
        let want = full(&hay);
        found += want.len();
        assert_eq!(m.scan(&hay), want, "round {round}");
    }
    assert!(found > 1000, "{found}");
    // A haystack that is one long needle run, and one with no needle at all.
    let run = IMEI.repeat(200);
    assert_eq!(m.scan(run.as_bytes()), full(run.as_bytes()));
    assert!(m.scan(&[0u8; 4096]).is_empty());
}

#[test]
fn adversarial_input_is_bounded() {
    let m = Matcher::new(&[Identifier::new("custom", "aaa")]);
    let hay = vec![b'a'; 100_000];
    assert!(m.scan(&hay).len() <= MAX_MATCHES_PER_SCAN);
}
