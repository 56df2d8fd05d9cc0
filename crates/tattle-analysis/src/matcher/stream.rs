//! A byte stream searched as it arrives in pieces, without buffering it: only the last
//! `max_needle_len - 1` bytes are kept, so a needle split across pieces is still found, once.
//!
//! Must not touch: protocols (the caller says where the bytes sit in the stream).

use super::Matcher;

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
