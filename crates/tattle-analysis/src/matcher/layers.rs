//! Decoded layers: URL/form values with `%XX` escapes, base64 blobs, and gzip inside them, decoded
//! (depth- and size-bounded) and searched again, each match named by its chain of encodings.
//!
//! Must not touch: needles, streams.

use base64::Engine as _;

use super::{MAX_MATCHES_PER_SCAN, Matcher};

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
pub(super) const SEP: u8 = 1; // ends a URL/form value
pub(super) const B64_HEX: u8 = 2; // base64 character that is also a hex digit
pub(super) const B64_ALNUM: u8 = 4; // other letter
pub(super) const B64_STD: u8 = 8; // `+` `/`
pub(super) const B64_URL: u8 = 16; // `-` `_`
pub(super) const B64_ANY: u8 = B64_HEX | B64_ALNUM | B64_STD | B64_URL;

pub(super) const CLASS: [u8; 256] = {
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
pub(super) fn url_segments(hay: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
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
pub(super) fn base64_runs(hay: &[u8]) -> impl Iterator<Item = (usize, usize, bool)> + '_ {
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
