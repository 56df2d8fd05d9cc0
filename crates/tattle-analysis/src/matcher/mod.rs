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
//!
//! The rooms: `needles` (every form and encoding of a value), `prefilter` (skipping what no
//! needle can cover), `layers` (URL values, base64 blobs and gzip decoded and searched again),
//! `stream` (a byte stream searched in pieces).

mod layers;
mod needles;
mod prefilter;
mod stream;
#[cfg(test)]
mod tests;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

pub(crate) use layers::add_layer;
#[cfg(test)]
pub(crate) use needles::base32;
use needles::needles;
use prefilter::{PREFILTER_MIN_HAY, Prefilter};
pub(crate) use stream::{Hit, StreamScanner};

use crate::identifier::Identifier;

/// Needles shorter than this (other than the plain value) are dropped: short base64/hex fragments
/// match random bytes far too often.
pub(super) const MIN_DERIVED_LEN: usize = 6;
/// Identifier values shorter than this are not searched at all.
pub(super) const MIN_VALUE_LEN: usize = 3;
/// Bound on the raw matches collected from one haystack: adversarial input (`aaaa…` against a needle
/// `aa`) could otherwise produce one match per byte; findings are de-duplicated anyway.
pub(super) const MAX_MATCHES_PER_SCAN: usize = 4096;

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
