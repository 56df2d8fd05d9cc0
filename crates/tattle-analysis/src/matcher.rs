//! Identifier needles and the single multi-pattern search over them.
//!
//! Owns the expansion of every identifier value into the byte strings it may take on the wire (its
//! *needles*) and ONE aho-corasick automaton over all needles of all identifiers, so every inspected
//! byte is searched once whatever the number of identifiers and encodings. Also owns `StreamScanner`,
//! which searches a byte stream that arrives in pieces without buffering it (it keeps only the last
//! `max_needle_len - 1` bytes so a needle split across pieces is still found).
//!
//! Speed: the automaton is an overlapping search, which cannot skip ahead by itself; a sampled
//! 4-gram prefilter (`Prefilter`) first rules out the bytes no needle can cover and the automaton
//! walks only the windows left, with exactly the matches of a walk over everything. The layer
//! loops (base64 runs, `%XX` values) are table-driven and skip ahead the same way.
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
//! - `base32`: RFC 4648 base32 (either case, unpadded, at any of the five byte alignments), as DNS
//!   tunnels and some SDKs put bytes into names.
//! - `md5`, `sha1`, `sha256`: the digest of the value as hex (either case);
//!   `md5+base64`, `md5+base64url`, … the digest in base64; `md5+base32`, … in base32.
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
    /// Skips the bytes no needle can cover before the automaton walks them (`None`: needles too
    /// short for it, the automaton walks everything).
    prefilter: Option<Prefilter>,
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
        let prefilter = Prefilter::new(&patterns);
        Matcher {
            ac,
            prefilter,
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
        match &self.prefilter {
            Some(p) if hay.len() >= PREFILTER_MIN_HAY => {
                for (a, b) in p.windows(hay, self.max_len) {
                    if !self.scan_window(ac, hay, a, b, &mut out) {
                        break;
                    }
                }
            }
            _ => {
                self.scan_window(ac, hay, 0, hay.len(), &mut out);
            }
        }
        drop_nested(&mut out);
        out
    }

    /// Overlapping matches inside `hay[a..b]`, with offsets into `hay`; `false` once the match cap
    /// is reached.
    fn scan_window(
        &self,
        ac: &AhoCorasick,
        hay: &[u8],
        a: usize,
        b: usize,
        out: &mut Vec<RawMatch>,
    ) -> bool {
        for m in ac.find_overlapping_iter(&hay[a..b]) {
            for &(identifier, encoding) in &self.owners[m.pattern().as_usize()] {
                if out.len() >= MAX_MATCHES_PER_SCAN {
                    return false;
                }
                out.push(RawMatch {
                    identifier,
                    encoding,
                    start: a + m.start(),
                    end: a + m.end(),
                });
            }
        }
        true
    }
}

/// Haystacks shorter than this are walked whole: the prefilter would not pay for itself.
const PREFILTER_MIN_HAY: usize = 256;
/// Bytes per gram of the prefilter.
const GRAM: usize = 4;
/// Bits of the two gram tables: a small one (8 KiB, stays in L1) tested at every sampled position
/// and a larger one (128 KiB) tested only when the first says yes; with a few thousand distinct
/// needle grams, random bytes pass both about once in a thousand samples.
const GRAM_BITS_1: u32 = 16;
const GRAM_BITS_2: u32 = 20;
/// More distinct grams than this fill the tables too much to filter anything.
const MAX_GRAMS: usize = 1 << 15;

/// Sampled-gram prefilter for the overlapping search. Every needle is at least `min_len` bytes, so
/// an occurrence covers `stride = min_len - GRAM + 1` consecutive gram start positions, one of them
/// a multiple of `stride`: only those positions are looked up. A gram that appears in no needle
/// rules out every occurrence through it; around a gram that may, the automaton walks the window
/// an occurrence through it could span. The windows found are exactly a superset of every
/// occurrence, so the matches are those of a walk over the whole haystack.
#[derive(Debug)]
struct Prefilter {
    stride: usize,
    bits1: Vec<u64>,
    bits2: Vec<u64>,
}

impl Prefilter {
    fn new(patterns: &[Vec<u8>]) -> Option<Self> {
        let min_len = patterns.iter().map(Vec::len).min()?;
        if min_len < GRAM {
            return None;
        }
        let mut grams: Vec<u32> = patterns
            .iter()
            .flat_map(|p| p.windows(GRAM).map(gram))
            .collect();
        grams.sort_unstable();
        grams.dedup();
        if grams.len() > MAX_GRAMS {
            return None;
        }
        let mut bits1 = vec![0u64; 1 << (GRAM_BITS_1 - 6)];
        let mut bits2 = vec![0u64; 1 << (GRAM_BITS_2 - 6)];
        for g in grams {
            let (h1, h2) = gram_hashes(g);
            bits1[h1 >> 6] |= 1 << (h1 & 63);
            bits2[h2 >> 6] |= 1 << (h2 & 63);
        }
        Some(Prefilter {
            stride: min_len - GRAM + 1,
            bits1,
            bits2,
        })
    }

    #[inline]
    fn may_match(&self, g: u32) -> bool {
        let (h1, h2) = gram_hashes(g);
        self.bits1[h1 >> 6] & (1 << (h1 & 63)) != 0 && self.bits2[h2 >> 6] & (1 << (h2 & 63)) != 0
    }

    /// Ascending windows `(a, b)` of `hay` such that every needle occurrence lies in exactly one.
    ///
    /// All grams of an occurrence are needle grams, so every sampled position inside it passes
    /// `may_match`. Hence an occurrence through a run of passing samples `p_first..=p_last`
    /// starts after the failing sample before the run and at or after `p_first + GRAM - max_len`,
    /// and ends before the failing sample after it plus `GRAM` and by `p_last + max_len`. Windows
    /// of two runs overlap by less than `GRAM` bytes, shorter than any needle.
    fn windows<'a>(
        &'a self,
        hay: &'a [u8],
        max_len: usize,
    ) -> impl Iterator<Item = (usize, usize)> + 'a {
        let mut i = 0usize;
        // Just past the last failing sample: no occurrence after it starts before this.
        let mut floor = 0usize;
        std::iter::from_fn(move || {
            while i + GRAM <= hay.len() {
                let pos = i;
                i += self.stride;
                if !self.may_match(gram(&hay[pos..pos + GRAM])) {
                    floor = pos + 1;
                    continue;
                }
                let a = (pos + GRAM).saturating_sub(max_len).max(floor);
                let mut last = pos;
                let mut b = hay.len();
                while i + GRAM <= hay.len() {
                    let p = i;
                    i += self.stride;
                    if self.may_match(gram(&hay[p..p + GRAM])) {
                        last = p;
                    } else {
                        floor = p + 1;
                        b = p + GRAM - 1;
                        break;
                    }
                }
                return Some((a, b.min(last + max_len).min(hay.len())));
            }
            None
        })
    }
}

#[inline]
fn gram(w: &[u8]) -> u32 {
    u32::from_le_bytes([w[0], w[1], w[2], w[3]])
}

#[inline]
fn gram_hashes(g: u32) -> (usize, usize) {
    let h1 = g.wrapping_mul(0x9e37_79b1) >> (32 - GRAM_BITS_1);
    let h2 = g
        .wrapping_mul(0x85eb_ca6b)
        .rotate_left(7)
        .wrapping_mul(0xc2b2_ae35)
        >> (32 - GRAM_BITS_2);
    (h1 as usize, h2 as usize)
}

/// A match found in a haystack or inside one of its decoded layers. `start..end` is the span in the
/// haystack given to `Matcher::scan_layers` (for a match inside a decoded layer: the span of the
/// encoded region that contained it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerMatch {
    pub identifier: usize,
    /// Full encoding chain, innermost first (`md5+base64+url`).
    pub encoding: String,
    pub start: usize,
    pub end: usize,
}

/// Layers decoded inside one another at most this deep (a base64 blob in a URL value in a body).
pub const MAX_LAYER_DEPTH: usize = 3;
/// Decoded bytes produced per top-level haystack, all layers together.
pub const MAX_LAYER_BYTES: usize = 1 << 20;
/// Shortest run of base64 characters decoded as a blob.
pub const MIN_BLOB: usize = 16;

/// `enc` seen through one more layer `layer`: `plain` is the identity, so it is dropped
/// (`plain` + `base64` → `base64`, `md5` + `base64` → `md5+base64`).
pub fn add_layer(enc: &str, layer: &str) -> String {
    if enc == "plain" {
        layer.to_string()
    } else {
        format!("{enc}+{layer}")
    }
}

impl Matcher {
    /// Matches in `hay` and in the layers decoded from it: percent-encoded URL/form values, base64
    /// blobs (runs of at least `MIN_BLOB` base64 characters that decode) and gzip data inside them,
    /// up to `MAX_LAYER_DEPTH` deep and `MAX_LAYER_BYTES` decoded bytes. A match inside an encoded
    /// region of the same identifier is dropped in favour of the region's (more complete) chain.
    /// With `direct` false only matches inside decoded layers are returned (the caller already
    /// searched `hay` itself, e.g. with a `StreamScanner`).
    pub fn scan_layers(&self, hay: &[u8], direct: bool) -> Vec<LayerMatch> {
        let mut out = Vec::new();
        if self.ac.is_none() {
            return out;
        }
        let mut budget = MAX_LAYER_BYTES;
        self.layers(hay, 0, direct, &mut budget, &mut out);
        drop_nested_layers(&mut out);
        out
    }

    fn layers(
        &self,
        hay: &[u8],
        depth: usize,
        direct: bool,
        budget: &mut usize,
        out: &mut Vec<LayerMatch>,
    ) {
        if direct {
            for r in self.scan(hay) {
                out.push(LayerMatch {
                    identifier: r.identifier,
                    encoding: self.encoding_name(r.encoding).to_string(),
                    start: r.start,
                    end: r.end,
                });
            }
        }
        if depth >= MAX_LAYER_DEPTH {
            return;
        }
        let mut inner: Vec<LayerMatch> = Vec::new();
        let mut nest = |decoded: &[u8],
                        layer: &str,
                        s: usize,
                        e: usize,
                        out: &mut Vec<LayerMatch>,
                        budget: &mut usize| {
            inner.clear();
            self.layers(decoded, depth + 1, true, budget, &mut inner);
            for m in inner.drain(..) {
                if out.len() >= MAX_MATCHES_PER_SCAN {
                    return;
                }
                out.push(LayerMatch {
                    identifier: m.identifier,
                    encoding: add_layer(&m.encoding, layer),
                    start: s,
                    end: e,
                });
            }
        };
        let mut buf = Vec::new();
        for (s, e) in url_segments(hay) {
            if *budget == 0 {
                return;
            }
            percent_decode_into(&hay[s..e], &mut buf);
            if buf.len() > *budget {
                return;
            }
            *budget -= buf.len();
            let decoded = std::mem::take(&mut buf);
            nest(&decoded, "url", s, e, out, budget);
            buf = decoded;
        }
        for (s, e, url_safe) in base64_runs(hay) {
            if *budget < (e - s) {
                return;
            }
            if !base64_decode_into(&hay[s..e], url_safe, &mut buf) {
                continue;
            }
            *budget -= buf.len();
            let decoded = std::mem::take(&mut buf);
            let layer = if url_safe { "base64url" } else { "base64" };
            nest(&decoded, layer, s, e, out, budget);
            buf = decoded;
        }
        if depth > 0 && hay.starts_with(&[0x1f, 0x8b]) {
            let mut dec = Vec::new();
            let limit = (*budget).min(MAX_LAYER_BYTES) as u64;
            if crate::inflate::gzip(hay, limit, &mut dec).is_some() && !dec.is_empty() {
                dec.truncate(limit as usize);
                *budget -= dec.len().min(*budget);
                nest(&dec, "gzip", 0, hay.len(), out, budget);
            }
        }
    }
}

/// Byte classes for the layer loops: one table lookup per byte instead of a chain of comparisons.
const SEP: u8 = 1; // ends a URL/form value
const B64_HEX: u8 = 2; // base64 character that is also a hex digit
const B64_ALNUM: u8 = 4; // other letter
const B64_STD: u8 = 8; // `+` `/`
const B64_URL: u8 = 16; // `-` `_`
const B64_ANY: u8 = B64_HEX | B64_ALNUM | B64_STD | B64_URL;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'?' | b'&' | b'=' | b';' | b'"' | b'\'' | b' ' | b'\r' | b'\n' | b'\t' | b','
            | b'<' | b'>' => SEP,
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => B64_HEX,
            b'g'..=b'z' | b'G'..=b'Z' => B64_ALNUM,
            b'+' | b'/' => B64_STD,
            b'-' | b'_' => B64_URL,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// Spans of URL/form values (split at `? & = ;`, quotes, whitespace) that contain a `%XX` escape:
/// the only ones whose decoding differs from what the needles see. (A `+` alone is not enough:
/// `+6598…` is a phone number far more often than a space, and `Wei+Ling` is a `url` needle.)
/// Driven by the escapes: most bytes are only compared with `%`, and the value around an escape is
/// found by walking out to its separators.
fn url_segments(hay: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    // `floor`: a value boundary (0, or just past a returned value); `pos`: where to look for `%`.
    let (mut floor, mut pos) = (0usize, 0usize);
    std::iter::from_fn(move || {
        loop {
            let p = pos + hay.get(pos..)?.iter().position(|&b| b == b'%')?;
            let escaped = hay.get(p + 1).is_some_and(u8::is_ascii_hexdigit)
                && hay.get(p + 2).is_some_and(u8::is_ascii_hexdigit);
            if !escaped {
                pos = p + 1;
                continue;
            }
            let mut start = p;
            while start > floor && CLASS[hay[start - 1] as usize] != SEP {
                start -= 1;
            }
            let mut end = p + 3;
            while end < hay.len() && CLASS[hay[end] as usize] != SEP {
                end += 1;
            }
            pos = end + 1;
            floor = pos;
            return Some((start, end));
        }
    })
}

/// Form decoding: `+` is a space, `%XX` a byte; a `%` not followed by two hex digits stays.
fn percent_decode_into(src: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let hexval = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < src.len() {
        match src[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < src.len() => match (hexval(src[i + 1]), hexval(src[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
}

/// Runs of at least `MIN_BLOB` base64 characters (with up to two `=` of padding): (start, end,
/// URL-safe alphabet). Runs of hex digits only are skipped: they are hex, searched by the hex
/// needles, and decoding them as base64 yields noise.
///
/// A qualifying run holds at least `MIN_BLOB - 2` base64 characters, so a run starting anywhere in
/// `pos..pos + MIN_BLOB - 2` covers byte `pos + MIN_BLOB - 3`: when that byte is not base64 the
/// whole window is skipped (most of binary data, and of text between words).
fn base64_runs(hay: &[u8]) -> impl Iterator<Item = (usize, usize, bool)> + '_ {
    const MIN_CHARS: usize = MIN_BLOB - 2;
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        // Invariant: `pos` is 0 or follows a byte that ends a run (not a base64 character, or
        // the padding of a run already returned or rejected).
        while pos + MIN_CHARS <= hay.len() {
            let probe = pos + MIN_CHARS - 1;
            if CLASS[hay[probe] as usize] & B64_ANY == 0 {
                pos = probe + 1;
                continue;
            }
            let mut start = probe;
            while start > pos && CLASS[hay[start - 1] as usize] & B64_ANY != 0 {
                start -= 1;
            }
            let mut seen = 0u8;
            let mut run_end = start;
            while run_end < hay.len() {
                let c = CLASS[hay[run_end] as usize];
                if c & B64_ANY == 0 {
                    break;
                }
                seen |= c;
                run_end += 1;
            }
            let mut end = run_end;
            while end < hay.len() && end - run_end < 2 && hay[end] == b'=' {
                end += 1;
            }
            pos = end;
            let all_hex = seen & B64_ALNUM == 0;
            let (std_chars, url_chars) = (seen & B64_STD != 0, seen & B64_URL != 0);
            if end - start >= MIN_BLOB && !all_hex && !(std_chars && url_chars) {
                return Some((start, end, url_chars));
            }
        }
        None
    })
}

/// Decodes a base64 run, padded or not; a dangling last character is ignored.
fn base64_decode_into(run: &[u8], url_safe: bool, out: &mut Vec<u8>) -> bool {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true);
    const STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    let mut body = run;
    while let [rest @ .., b'='] = body {
        body = rest;
    }
    if body.len() % 4 == 1 {
        body = &body[..body.len() - 1];
    }
    out.clear();
    let engine = if url_safe { &URL } else { &STD };
    engine.decode_vec(body, out).is_ok() && !out.is_empty()
}

/// Per identifier, drops a match strictly inside another match's span, or with the same span and
/// the same encoding; equal spans with different encodings (two facts found in one decoded blob)
/// are kept.
fn drop_nested_layers(matches: &mut Vec<LayerMatch>) {
    matches.sort_by(|a, b| {
        (a.identifier, a.start, std::cmp::Reverse(a.end), &a.encoding).cmp(&(
            b.identifier,
            b.start,
            std::cmp::Reverse(b.end),
            &b.encoding,
        ))
    });
    let mut kept: Vec<LayerMatch> = Vec::with_capacity(matches.len());
    // (identifier, outer start, outer end, furthest end, index in `kept` of the outer span's first)
    let mut cur: Option<(usize, usize, usize, usize, usize)> = None;
    for m in matches.drain(..) {
        if let Some((id, s, e, max_end, first)) = cur
            && id == m.identifier
        {
            if m.start == s && m.end == e {
                if kept[first..].iter().any(|k| k.encoding == m.encoding) {
                    continue;
                }
                kept.push(m);
                continue;
            }
            if m.end <= max_end {
                continue;
            }
            cur = Some((id, m.start, m.end, m.end, kept.len()));
            kept.push(m);
            continue;
        }
        cur = Some((m.identifier, m.start, m.end, m.end, kept.len()));
        kept.push(m);
    }
    kept.sort_by(|a, b| {
        (a.end, a.identifier, &a.encoding).cmp(&(b.end, b.identifier, &b.encoding))
    });
    *matches = kept;
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
fn needles(id: &Identifier) -> Vec<(Vec<u8>, &'static str)> {
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

impl Matcher {
    /// `text` with every span where an identifier was found (in any form or encoding this matcher
    /// knows, decoded layers included) replaced by `<kind>`: for host and DNS names before they are
    /// shown, so `35693803564380.t.example` (an IMEI without its check digit) does not leak.
    pub fn redact(&self, text: &str) -> String {
        let mut spans: Vec<(usize, usize, usize)> = self
            .scan_layers(text.as_bytes(), true)
            .into_iter()
            .map(|m| (m.start, m.end, m.identifier))
            .collect();
        if spans.is_empty() {
            return text.to_string();
        }
        spans.sort_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(text.len());
        let mut pos = 0;
        for (s, e, id) in spans {
            if e <= pos {
                continue;
            }
            if s > pos {
                out.extend_from_slice(&bytes[pos..s]);
            }
            out.extend_from_slice(crate::identifier::placeholder(self.kind(id)).as_bytes());
            pos = e;
        }
        out.extend_from_slice(&bytes[pos.min(bytes.len())..]);
        String::from_utf8_lossy(&out).into_owned()
    }
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
        if self.scratch.capacity() > 64 << 10 {
            // One large piece must not leave every raw flow holding its size for good.
            self.scratch = Vec::new();
        }
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
}
