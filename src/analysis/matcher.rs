//! Identifier needles and the single multi-pattern search over them.
//!
//! Owns the expansion of every identifier value into the byte strings it may take on the wire (its
//! *needles*) and ONE aho-corasick automaton over all needles of all identifiers, so every inspected
//! byte is searched once whatever the number of identifiers and encodings. Also owns `StreamScanner`,
//! which searches a byte stream that arrives in pieces without buffering it (it keeps only the last
//! `max_needle_len - 1` bytes so a needle split across pieces is still found).
//!
//! Encoding names (innermost first, joined by `+`; a decoding layer found by a protocol parser, such as
//! `gzip`, is appended by the caller):
//! - `plain`: the value's bytes. For phone numbers (`phone_number`, `contact_phone`) the E.164 form
//!   without `+`, the `00`-prefixed form and the form without spaces/dashes are `plain` too: they are
//!   the same number written differently, not an encoding.
//! - `url`: percent-encoded (upper- or lower-case hex, space as `+` or `%20`).
//! - `base64`, `base64url`: standard / URL-safe alphabet, padded or not, at any of the three byte
//!   alignments (only the part of the encoding that depends on the value alone is searched).
//! - `hex`: hex of the value's bytes (either case).
//! - `md5`, `sha1`, `sha256`: the digest of the value as hex (either case);
//!   `md5+base64`, `md5+base64url`, … the digest in base64.
//!
//! When one identifier matches several needles whose spans nest (`%2B6598…` contains `6598…`), only
//! the outermost match is kept: it is the more specific statement of what went on the wire. Matches of
//! *different* identifiers are all kept, even when one lies inside the other.
//!
//! Must not touch: packets, flows, protocol parsing, I/O. Never logs identifier values.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use md5::Digest as _;

use crate::identifier::{Identifier, kinds};

/// Needles shorter than this (other than the plain value) are dropped: short base64/hex fragments
/// match random bytes far too often.
const MIN_DERIVED_LEN: usize = 6;
/// Identifier values shorter than this are not searched at all.
const MIN_VALUE_LEN: usize = 3;
/// Bound on the raw matches collected from one haystack: adversarial input (`aaaa…` against a needle
/// `aa`) could otherwise produce one match per byte; findings are de-duplicated anyway.
const MAX_MATCHES_PER_SCAN: usize = 4096;

/// One match of one identifier in one haystack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMatch {
    /// Index of the identifier in the list given to `Matcher::new`.
    pub identifier: usize,
    /// Index into `Matcher::encoding_name`.
    pub encoding: usize,
    pub start: usize,
    pub end: usize,
}

/// The compiled needles of a set of identifiers.
#[derive(Debug)]
pub struct Matcher {
    ac: Option<AhoCorasick>,
    /// Per automaton pattern: every (identifier, encoding) that produces those exact bytes.
    owners: Vec<Vec<(usize, usize)>>,
    encodings: Vec<&'static str>,
    kinds: Vec<String>,
    max_len: usize,
}

impl Matcher {
    pub fn new(identifiers: &[Identifier]) -> Self {
        let mut encodings: Vec<&'static str> = Vec::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut owners: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        for (idx, id) in identifiers.iter().enumerate() {
            if id.value.len() < MIN_VALUE_LEN {
                tracing::warn!(
                    identifier = %id.placeholder(),
                    "identifier value shorter than {MIN_VALUE_LEN} bytes: not searched"
                );
                continue;
            }
            // An identifier's needles de-duplicated in priority order: the first encoding that
            // produces a byte string names it (digits are their own URL encoding: `plain`).
            let mut mine: Vec<(Vec<u8>, &'static str)> = Vec::new();
            for (needle, enc) in needles(id) {
                if needle.is_empty() || mine.iter().any(|(n, _)| *n == needle) {
                    continue;
                }
                mine.push((needle, enc));
            }
            for (needle, enc) in mine {
                let enc_idx = match encodings.iter().position(|e| *e == enc) {
                    Some(i) => i,
                    None => {
                        encodings.push(enc);
                        encodings.len() - 1
                    }
                };
                let pat = *index.entry(needle.clone()).or_insert_with(|| {
                    patterns.push(needle);
                    owners.push(Vec::new());
                    patterns.len() - 1
                });
                owners[pat].push((idx, enc_idx));
            }
        }
        let max_len = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let ac = if patterns.is_empty() {
            None
        } else {
            // Standard semantics is required for overlapping search; the pattern set is small
            // (tens per identifier) so the automaton is built once per analysis.
            match AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
            {
                Ok(ac) => Some(ac),
                Err(e) => {
                    tracing::error!("cannot build the identifier automaton: {e}");
                    None
                }
            }
        };
        Matcher {
            ac,
            owners,
            encodings,
            kinds: identifiers.iter().map(|i| i.kind.clone()).collect(),
            max_len,
        }
    }

    /// Longest needle in bytes (0 when there is nothing to search for).
    pub fn max_needle_len(&self) -> usize {
        self.max_len
    }

    pub fn encoding_name(&self, encoding: usize) -> &'static str {
        self.encodings.get(encoding).copied().unwrap_or("plain")
    }

    pub fn kind(&self, identifier: usize) -> &str {
        self.kinds
            .get(identifier)
            .map(String::as_str)
            .unwrap_or("unknown")
    }

    /// All matches in `hay`, nested matches of the same identifier removed, sorted by end offset.
    pub fn scan(&self, hay: &[u8]) -> Vec<RawMatch> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let mut out = Vec::new();
        'outer: for m in ac.find_overlapping_iter(hay) {
            for &(identifier, encoding) in &self.owners[m.pattern().as_usize()] {
                if out.len() >= MAX_MATCHES_PER_SCAN {
                    break 'outer;
                }
                out.push(RawMatch {
                    identifier,
                    encoding,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        drop_nested(&mut out);
        out
    }
}

/// Keeps, per identifier, only matches not contained in another match of the same identifier.
fn drop_nested(matches: &mut Vec<RawMatch>) {
    matches.sort_by(|a, b| {
        (a.identifier, a.start, std::cmp::Reverse(a.end)).cmp(&(
            b.identifier,
            b.start,
            std::cmp::Reverse(b.end),
        ))
    });
    let mut kept: Vec<RawMatch> = Vec::with_capacity(matches.len());
    let mut cur: Option<(usize, usize)> = None; // (identifier, furthest end so far)
    for m in matches.drain(..) {
        match cur {
            Some((id, max_end)) if id == m.identifier && m.end <= max_end => {
                // Same start and same end but another encoding (two encodings giving identical
                // bytes were merged at build time), or strictly inside: drop.
                continue;
            }
            Some((id, max_end)) if id == m.identifier => cur = Some((id, max_end.max(m.end))),
            _ => cur = Some((m.identifier, m.end)),
        }
        kept.push(m);
    }
    kept.sort_by_key(|m| (m.end, m.identifier, m.encoding));
    *matches = kept;
}

fn is_phone(kind: &str) -> bool {
    kind == kinds::PHONE_NUMBER || kind == kinds::CONTACT_PHONE
}

/// The textual forms of a value before any encoding: the value itself, plus phone formats.
fn plain_forms(id: &Identifier) -> Vec<Vec<u8>> {
    let mut forms = vec![id.value.as_bytes().to_vec()];
    if is_phone(&id.kind) {
        let compact: String = id
            .value
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        if let Some(digits) = compact.strip_prefix('+') {
            forms.push(compact.as_bytes().to_vec());
            forms.push(digits.as_bytes().to_vec());
            forms.push(format!("00{digits}").into_bytes());
        } else {
            forms.push(compact.into_bytes());
        }
    }
    let mut uniq: Vec<Vec<u8>> = Vec::new();
    for f in forms {
        if f.len() >= MIN_VALUE_LEN && !uniq.contains(&f) {
            uniq.push(f);
        }
    }
    uniq
}

/// Every needle of one identifier, in priority order (see the module doc for the names).
fn needles(id: &Identifier) -> Vec<(Vec<u8>, &'static str)> {
    let mut out: Vec<(Vec<u8>, &'static str)> = Vec::new();
    let derived = |out: &mut Vec<(Vec<u8>, &'static str)>, n: Vec<u8>, enc: &'static str| {
        if n.len() >= MIN_DERIVED_LEN {
            out.push((n, enc));
        }
    };
    for form in plain_forms(id) {
        out.push((form.clone(), "plain"));
        for upper in [true, false] {
            for plus in [true, false] {
                derived(&mut out, url_encode(&form, upper, plus), "url");
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
        let digests: [(Vec<u8>, &'static str, &'static str, &'static str); 3] = [
            (
                md5::Md5::digest(&form).to_vec(),
                "md5",
                "md5+base64",
                "md5+base64url",
            ),
            (
                sha1::Sha1::digest(&form).to_vec(),
                "sha1",
                "sha1+base64",
                "sha1+base64url",
            ),
            (
                sha2::Sha256::digest(&form).to_vec(),
                "sha256",
                "sha256+base64",
                "sha256+base64url",
            ),
        ];
        for (digest, hex_name, b64_name, b64url_name) in digests {
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

/// Searches a byte stream delivered in pieces for needles, reporting each match once.
#[derive(Debug, Default)]
pub struct StreamScanner {
    /// The last bytes seen, kept so a needle split across pieces is found.
    tail: Vec<u8>,
    /// Absolute stream offset of the byte after the last one seen.
    next: u64,
    scratch: Vec<u8>,
}

impl StreamScanner {
    /// A scanner whose next byte sits at `offset` of the stream.
    pub fn at(offset: u64) -> Self {
        StreamScanner {
            next: offset,
            ..Default::default()
        }
    }

    /// Scans `data`, which sits at absolute stream offset `offset`. A jump in offsets (a gap in the
    /// stream) discards the kept tail: a match must not span missing bytes. Returned matches carry
    /// absolute `start`/`end` offsets (as u64 in `AbsMatch`).
    pub fn feed(&mut self, matcher: &Matcher, offset: u64, data: &[u8]) -> Vec<AbsMatch> {
        if offset != self.next {
            self.tail.clear();
        }
        let keep = matcher.max_needle_len().saturating_sub(1);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.tail);
        self.scratch.extend_from_slice(data);
        let base = offset - self.tail.len() as u64;
        let tail_len = self.tail.len();
        let found = matcher
            .scan(&self.scratch)
            .into_iter()
            .filter(|m| m.end > tail_len)
            .map(|m| AbsMatch {
                identifier: m.identifier,
                encoding: m.encoding,
                start: base + m.start as u64,
                end: base + m.end as u64,
            })
            .collect();
        let from = self.scratch.len().saturating_sub(keep);
        self.tail.clear();
        self.tail.extend_from_slice(&self.scratch[from..]);
        self.next = offset + data.len() as u64;
        found
    }
}

/// A finding before it is placed in a flow: which identifier, how encoded, where in the message,
/// and the absolute stream offset of the byte that completed it (which names the frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub identifier: usize,
    pub encoding: String,
    pub location: String,
    pub at: u64,
}

/// A match with absolute stream offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsMatch {
    pub identifier: usize,
    pub encoding: usize,
    pub start: u64,
    pub end: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let m = Matcher::new(&[Identifier::new("imei", IMEI)]);
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

    #[test]
    fn adversarial_input_is_bounded() {
        let m = Matcher::new(&[Identifier::new("custom", "aaa")]);
        let hay = vec![b'a'; 100_000];
        assert!(m.scan(&hay).len() <= MAX_MATCHES_PER_SCAN);
    }
}
