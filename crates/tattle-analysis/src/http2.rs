//! HTTP/2 requests in a client→server byte stream (RFC 9113): the connection preface, frames,
//! header blocks through HPACK, and each stream's body.
//!
//! Owns the framing (9-byte frame headers; DATA with its padding streamed into the stream's body;
//! HEADERS with padding and priority, and the CONTINUATION frames that complete its block; the other
//! frame types skipped, RST_STREAM ending its stream), one `hpack::Decoder` per connection, and what
//! is searched: `:path` as `http.url`, every other field as `http.header:NAME` (name as sent, lower
//! case in HTTP/2, pseudo-headers with their colon: `http.header::authority`), each stream's body as
//! `http.body`, decoded by its `content-encoding` with HTTP/1's `BodyBuf` (same limits and shared
//! decode budget). `:authority` is the host.
//!
//! Entry point for any plaintext that carries HTTP/2 — h2c with prior knowledge today (the flow
//! reader picks it from the 24-byte preface on plain TCP), decrypted TLS with ALPN `h2` tomorrow:
//! `Http2Stream::new(abs)`, then `feed(matcher, abs, bytes, hits)` with in-order bytes that start
//! with the client preface, and `finish` at the end — the same contract as `HttpStream`, with the
//! same public counters (`host`, `opaque`, `requests`, `decode_budget`, `decode_cut`). Hit offsets
//! are stream offsets as given: a header hit is at the last byte of the frame that completed its
//! block, a body hit at its byte (or, decoded, at the body's last byte).
//!
//! HPACK desync (an error in a block, a block larger than `MAX_HEAD`): decoding stops for the
//! connection, since its dynamic table is unknown from then on; every later header block is
//! searched raw (`tcp.payload`), which still finds literals sent without Huffman. DATA framing does
//! not depend on HPACK, so bodies are still read (without their `content-encoding`, they are
//! searched as sent, and the matcher's gzip layer still opens gzip). Bytes that break the framing
//! (a wrong preface, a frame where the protocol forbids it, a gap) end the parsing: what is left is
//! handed back as `Unparsed`, to be searched raw.
//!
//! Memory per connection: the partial frame (a header block at most `MAX_HEAD`, DATA is streamed),
//! the HPACK table (`hpack::MAX_TABLE`), at most `MAX_STREAMS` open bodies holding `MAX_BODIES`
//! bytes together (each at most `http::MAX_BODY`); bytes over these caps are counted opaque.
//!
//! Must not touch: packets, flows, TLS, I/O.

use crate::hpack;
use crate::http::{BodyBuf, MAX_HEAD, Tally, Unparsed, coding_of, scan, strip_port};
use crate::matcher::{Hit, Matcher, StreamScanner};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
/// Streams with a body open at once; SETTINGS_MAX_CONCURRENT_STREAMS is usually 100.
pub const MAX_STREAMS: usize = 128;
/// Body bytes held by all open streams of a connection together.
pub const MAX_BODIES: usize = 4 << 20;
/// Longest header name used in a location; longer or odd ones become `http.header:?`.
const MAX_NAME: usize = 64;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// `Some(true)` if the stream starts with the HTTP/2 client preface, `None` if too few bytes to
/// tell.
pub fn looks_like_h2(start: &[u8]) -> Option<bool> {
    let n = start.len().min(PREFACE.len());
    if start[..n] != PREFACE[..n] {
        Some(false)
    } else if n < PREFACE.len() {
        None
    } else {
        Some(true)
    }
}

#[derive(Debug)]
enum State {
    Preface,
    FrameHeader,
    /// A DATA payload, streamed: `pad` is the padding still to come once known.
    Data {
        stream: u32,
        flags: u8,
        left: usize,
        pad: Option<usize>,
    },
    /// A HEADERS or CONTINUATION payload, buffered whole.
    Block {
        kind: u8,
        stream: u32,
        flags: u8,
        len: usize,
    },
    /// A header fragment too large to decode: searched raw as it comes.
    RawBlock {
        flags: u8,
        left: usize,
    },
    /// Any other frame.
    Skip {
        left: usize,
    },
}

/// A header block being assembled from HEADERS + CONTINUATION.
#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    fragments: Vec<u8>,
    /// Set when a fragment was too large to keep: the block is searched raw, not decoded.
    lost: bool,
}

/// The client→server side of one HTTP/2 connection.
#[derive(Debug)]
pub struct Http2Stream {
    buf: Vec<u8>,
    /// Parsed bytes at the front of `buf`, dropped when the input is used up.
    pos: usize,
    /// Absolute stream offset of `buf[0]`.
    buf_abs: u64,
    state: State,
    /// `None` once desynchronised: header blocks are searched raw from then on.
    hpack: Option<hpack::Decoder>,
    block: Option<Block>,
    raw_headers: StreamScanner,
    /// Streams with a body being collected.
    streams: Vec<(u32, BodyBuf)>,
    /// Body bytes held across `streams`.
    held: usize,
    /// The first request's `:authority` (or `host`), without port.
    pub host: Option<String>,
    /// Body bytes not inspected (over a cap, or in a coding that could not be decoded).
    pub opaque: u64,
    /// Header blocks that opened a stream.
    pub requests: u64,
    /// Decoded body bytes this connection may still produce (the caller may refill and share it).
    pub decode_budget: u64,
    /// Bodies whose decoding stopped at a limit (ratio or budget).
    pub decode_cut: u64,
    /// Header blocks that could not be decoded (the first one stops HPACK for the connection).
    pub desync: u64,
}

impl crate::http::DecodeCounters for Http2Stream {
    fn decode_counters(&mut self) -> (&mut u64, &mut u64) {
        (&mut self.decode_budget, &mut self.decode_cut)
    }
}

impl Http2Stream {
    /// A connection whose preface starts at stream offset `abs`.
    pub fn new(abs: u64) -> Self {
        Http2Stream {
            buf: Vec::new(),
            pos: 0,
            buf_abs: abs,
            state: State::Preface,
            hpack: Some(hpack::Decoder::new()),
            block: None,
            raw_headers: StreamScanner::at(abs),
            streams: Vec::new(),
            held: 0,
            host: None,
            opaque: 0,
            requests: 0,
            decode_budget: crate::http::DEFAULT_DECODE_BUDGET,
            decode_cut: 0,
            desync: 0,
        }
    }

    /// Bytes held: the partial frame, an unfinished header block, the bodies, the HPACK table.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
            + self.block.as_ref().map_or(0, |b| b.fragments.len())
            + self.held
            + self.hpack.as_ref().map_or(0, |h| h.buffered())
    }

    /// Feeds the next in-order bytes (absolute offset `abs`). A gap or bytes that break the framing
    /// end the parsing: the bytes not yet searched come back as `Unparsed`.
    pub fn feed(
        &mut self,
        m: &Matcher,
        abs: u64,
        data: &[u8],
        hits: &mut Vec<Hit>,
    ) -> Result<(), Unparsed> {
        if abs != self.buf_abs + self.buf.len() as u64 {
            self.finish(m, hits);
            return Err(Unparsed {
                abs,
                bytes: data.to_vec(),
            });
        }
        self.buf.extend_from_slice(data);
        let r = loop {
            match self.step(m, hits) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(()) => {
                    if let Some(b) = self.block.take() {
                        let at = self.at(0).saturating_sub(1);
                        self.raw_block(m, &b.fragments, at, hits);
                    }
                    self.finish_bodies(m, hits);
                    let bytes = self.buf.split_off(self.pos);
                    let at = self.buf_abs + self.pos as u64;
                    self.buf_abs = at + bytes.len() as u64;
                    self.buf.clear();
                    self.pos = 0;
                    break Err(Unparsed { abs: at, bytes });
                }
            }
        };
        // Drop what was parsed, once per feed rather than once per frame.
        self.buf.drain(..self.pos);
        self.buf_abs += self.pos as u64;
        self.pos = 0;
        r
    }

    /// End of stream: every open body and unfinished block is searched as far as it goes.
    pub fn finish(&mut self, m: &Matcher, hits: &mut Vec<Hit>) {
        let end = (self.buf_abs + self.buf.len() as u64).saturating_sub(1);
        if let Some(b) = self.block.take() {
            self.raw_block(m, &b.fragments, end, hits);
        }
        let rest = &self.buf[self.pos..];
        if !rest.is_empty() && !matches!(self.state, State::Data { .. } | State::Skip { .. }) {
            let at = self.buf_abs + self.pos as u64;
            scan(
                m,
                rest,
                || "tcp.payload".to_string(),
                hits,
                |e| at + e as u64,
            );
        }
        self.finish_bodies(m, hits);
        self.buf_abs += self.buf.len() as u64;
        self.buf.clear();
        self.pos = 0;
    }

    /// A memory budget flush: searches and drops everything held, keeping the framing. Bodies
    /// are searched as far as they go (later DATA of those streams is searched as sent); the HPACK
    /// table is dropped (header blocks are searched raw from now on, as after a desync); a header
    /// block being collected is searched raw and the rest of it streams past raw.
    pub fn flush(&mut self, m: &Matcher, hits: &mut Vec<Hit>) {
        self.finish_bodies(m, hits);
        if self.hpack.take().is_some() {
            self.desync += 1;
        }
        if let Some(b) = &mut self.block {
            let kept = std::mem::take(&mut b.fragments);
            b.lost = true;
            let at = self.at(0).saturating_sub(1);
            self.raw_block(m, &kept, at, hits);
        }
        if let State::Block {
            kind,
            stream,
            flags,
            len,
        } = self.state
        {
            if kind == HEADERS {
                self.block = Some(Block {
                    stream,
                    end_stream: flags & END_STREAM != 0,
                    fragments: Vec::new(),
                    lost: true,
                });
            }
            let avail = self.buf.len() - self.pos;
            let at = self.at(0);
            raw(&mut self.raw_headers, m, at, &self.buf[self.pos..], hits);
            self.pos += avail;
            self.state = State::RawBlock {
                flags,
                left: len - avail,
            };
        }
        self.buf.drain(..self.pos);
        self.buf_abs += self.pos as u64;
        self.pos = 0;
        self.buf.shrink_to_fit();
    }

    /// Searches and drops every body held.
    fn finish_bodies(&mut self, m: &Matcher, hits: &mut Vec<Hit>) {
        for (_, body) in std::mem::take(&mut self.streams) {
            self.finish_body(body, m, hits);
        }
        self.held = 0;
    }

    fn finish_body(&mut self, body: BodyBuf, m: &Matcher, hits: &mut Vec<Hit>) {
        self.held -= body.len().min(self.held);
        let tally = Tally {
            opaque: &mut self.opaque,
            decode_budget: &mut self.decode_budget,
            decode_cut: &mut self.decode_cut,
        };
        body.finish(m, hits, tally);
    }

    fn end_stream(&mut self, stream: u32, last_abs: u64, m: &Matcher, hits: &mut Vec<Hit>) {
        if let Some(i) = self.streams.iter().position(|(s, _)| *s == stream) {
            let (_, mut body) = self.streams.swap_remove(i);
            body.last_abs = body.last_abs.max(last_abs);
            self.finish_body(body, m, hits);
        }
    }

    /// Absolute offset of `buf[pos + i]`.
    fn at(&self, i: usize) -> u64 {
        self.buf_abs + (self.pos + i) as u64
    }

    /// One step of parsing; `Ok(false)` when more bytes are needed, `Err` when the bytes are not
    /// HTTP/2 framing.
    fn step(&mut self, m: &Matcher, hits: &mut Vec<Hit>) -> Result<bool, ()> {
        let avail = self.buf.len() - self.pos;
        match self.state {
            State::Preface => {
                let n = avail.min(PREFACE.len());
                if self.buf[self.pos..self.pos + n] != PREFACE[..n] {
                    return Err(());
                }
                if n < PREFACE.len() {
                    return Ok(false);
                }
                self.pos += PREFACE.len();
                self.state = State::FrameHeader;
            }
            State::FrameHeader => {
                if avail < FRAME_HEADER {
                    return Ok(false);
                }
                let h = &self.buf[self.pos..self.pos + FRAME_HEADER];
                let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                let (kind, flags) = (h[3], h[4]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                let frame_end = self.at(FRAME_HEADER + len).saturating_sub(1);
                // Only CONTINUATION may follow an unfinished block (§6.10).
                if self.block.is_some() != (kind == CONTINUATION) {
                    return Err(());
                }
                if matches!(kind, DATA | HEADERS | CONTINUATION | RST_STREAM) && stream == 0 {
                    return Err(());
                }
                self.pos += FRAME_HEADER;
                self.state = match kind {
                    DATA => State::Data {
                        stream,
                        flags,
                        left: len,
                        pad: (flags & PADDED == 0).then_some(0),
                    },
                    HEADERS | CONTINUATION => {
                        let so_far = self.block.as_ref().map_or(0, |b| b.fragments.len());
                        if so_far + len > MAX_HEAD {
                            if kind == HEADERS {
                                self.block = Some(Block {
                                    stream,
                                    end_stream: flags & END_STREAM != 0,
                                    fragments: Vec::new(),
                                    lost: true,
                                });
                            }
                            if let Some(b) = &mut self.block {
                                // What was kept is searched now; the rest streams past raw.
                                let kept = std::mem::take(&mut b.fragments);
                                b.lost = true;
                                let at = self.at(0).saturating_sub(1);
                                self.raw_block(m, &kept, at, hits);
                            }
                            State::RawBlock { flags, left: len }
                        } else {
                            State::Block {
                                kind,
                                stream,
                                flags,
                                len,
                            }
                        }
                    }
                    RST_STREAM => {
                        self.end_stream(stream, frame_end, m, hits);
                        State::Skip { left: len }
                    }
                    _ => State::Skip { left: len },
                };
            }
            State::Data {
                stream,
                flags,
                left,
                pad,
            } => {
                if left == 0 {
                    if flags & END_STREAM != 0 {
                        let end = self.at(0).saturating_sub(1);
                        self.end_stream(stream, end, m, hits);
                    }
                    self.state = State::FrameHeader;
                    return Ok(true);
                }
                if avail == 0 {
                    return Ok(false);
                }
                let Some(pad) = pad else {
                    let pad = self.buf[self.pos] as usize;
                    if pad > left - 1 {
                        return Err(());
                    }
                    self.pos += 1;
                    self.state = State::Data {
                        stream,
                        flags,
                        left: left - 1,
                        pad: Some(pad),
                    };
                    return Ok(true);
                };
                let take = avail.min(left);
                let data_left = left - pad;
                let data = take.min(data_left);
                if data > 0 {
                    self.body_piece(stream, data, m, hits);
                }
                self.pos += take - data;
                self.state = State::Data {
                    stream,
                    flags,
                    left: left - take,
                    pad: Some(pad - (take - data).min(pad)),
                };
            }
            State::Block {
                kind,
                stream,
                flags,
                len,
            } => {
                if avail < len {
                    return Ok(false);
                }
                let mut frag = &self.buf[self.pos..self.pos + len];
                if kind == HEADERS {
                    if flags & PADDED != 0 {
                        let pad = *frag.first().ok_or(())? as usize;
                        if pad + 1 > frag.len() {
                            return Err(());
                        }
                        frag = &frag[1..frag.len() - pad];
                    }
                    if flags & PRIORITY != 0 {
                        frag = frag.get(5..).ok_or(())?;
                    }
                    self.block = Some(Block {
                        stream,
                        end_stream: flags & END_STREAM != 0,
                        fragments: Vec::new(),
                        lost: false,
                    });
                }
                if let Some(b) = &mut self.block {
                    b.fragments.extend_from_slice(frag);
                }
                let end = self.at(len).saturating_sub(1);
                self.pos += len;
                self.state = State::FrameHeader;
                if flags & END_HEADERS != 0 {
                    self.end_block(end, m, hits);
                }
            }
            State::RawBlock { flags, left } => {
                if left > 0 {
                    if avail == 0 {
                        return Ok(false);
                    }
                    let take = avail.min(left);
                    let at = self.at(0);
                    let piece = &self.buf[self.pos..self.pos + take];
                    raw(&mut self.raw_headers, m, at, piece, hits);
                    self.pos += take;
                    self.state = State::RawBlock {
                        flags,
                        left: left - take,
                    };
                    return Ok(true);
                }
                self.state = State::FrameHeader;
                if flags & END_HEADERS != 0 {
                    let end = self.at(0).saturating_sub(1);
                    self.end_block(end, m, hits);
                }
            }
            State::Skip { left } => {
                if left > 0 && avail == 0 {
                    return Ok(false);
                }
                let take = avail.min(left);
                self.pos += take;
                self.state = if take == left {
                    State::FrameHeader
                } else {
                    State::Skip { left: left - take }
                };
            }
        }
        Ok(true)
    }

    /// `n` DATA bytes at `pos` for `stream`: into its body, or searched as they are when no more
    /// bodies can be held.
    fn body_piece(&mut self, stream: u32, n: usize, m: &Matcher, hits: &mut Vec<Hit>) {
        let at = self.at(0);
        let i = match self.streams.iter().position(|(s, _)| *s == stream) {
            Some(i) => Some(i),
            // DATA of a stream whose headers were not read (a flushed body, a lost block).
            None if self.streams.len() < MAX_STREAMS => {
                self.streams.push((stream, BodyBuf::new(None, at)));
                Some(self.streams.len() - 1)
            }
            None => None,
        };
        let piece = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        let Some(i) = i else {
            scan(
                m,
                piece,
                || "http.body".to_string(),
                hits,
                |e| at + e as u64,
            );
            return;
        };
        let room = MAX_BODIES.saturating_sub(self.held).min(n);
        let body = &mut self.streams[i].1;
        let before = body.len();
        body.store(&piece[..room], at, &mut self.opaque);
        body.last_abs = at + n as u64 - 1;
        self.opaque += (n - room) as u64;
        self.held += body.len() - before;
    }

    /// A complete header block: decoded and searched, or searched raw after a desync.
    fn end_block(&mut self, end: u64, m: &Matcher, hits: &mut Vec<Hit>) {
        let Some(block) = self.block.take() else {
            return;
        };
        let known = self.streams.iter().any(|(s, _)| *s == block.stream);
        if !known {
            self.requests += 1;
        }
        let mut coding = None;
        let mut host = None;
        let decoded = match (&mut self.hpack, block.lost) {
            (Some(d), false) => d.decode_block(&block.fragments, |name, value| {
                let location = || match name {
                    b":path" => "http.url".to_string(),
                    _ => format!("http.header:{}", header_name(name)),
                };
                scan(m, value, location, hits, |_| end);
                match name {
                    b":authority" | b"host" if host.is_none() => {
                        host = Some(strip_port(String::from_utf8_lossy(value).trim()));
                    }
                    b"content-encoding" => coding = coding_of(&String::from_utf8_lossy(value)),
                    _ => {}
                }
            }),
            _ => Err(hpack::HpackError::Truncated),
        };
        if let Err(e) = decoded {
            if self.hpack.take().is_some() {
                tracing::debug!(
                    "HTTP/2 header block at stream offset {end}: {e}; searched raw from here"
                );
            }
            self.desync += 1;
            // A lost block keeps only the fragments after the loss: none was searched yet.
            self.raw_block(m, &block.fragments, end, hits);
        }
        if self.host.is_none() {
            self.host = host.filter(|h| !h.is_empty());
        }
        if block.end_stream {
            self.end_stream(block.stream, end, m, hits);
        } else if !known && self.streams.len() < MAX_STREAMS {
            self.streams.push((block.stream, BodyBuf::new(coding, end)));
        }
    }

    fn raw_block(&mut self, m: &Matcher, fragments: &[u8], end: u64, hits: &mut Vec<Hit>) {
        if !fragments.is_empty() {
            scan(m, fragments, || "tcp.payload".to_string(), hits, |_| end);
        }
    }
}

/// A header name fit for a location: HTTP token characters (and a pseudo-header's colon), short.
fn header_name(name: &[u8]) -> &str {
    let token = |c: &u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c);
    let body = name.strip_prefix(b":").unwrap_or(name);
    match std::str::from_utf8(name) {
        Ok(s) if !body.is_empty() && name.len() <= MAX_NAME && body.iter().all(token) => s,
        _ => "?",
    }
}

/// A header fragment too large to decode, searched as a raw stream.
fn raw(s: &mut StreamScanner, m: &Matcher, at: u64, data: &[u8], hits: &mut Vec<Hit>) {
    for x in s.feed(m, at, data) {
        hits.push(Hit {
            identifier: x.identifier,
            encoding: m.encoding_name(x.encoding).to_string(),
            location: "tcp.payload".to_string(),
            at: x.end - 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifier::Identifier;
    use std::io::Write as _;

    const IMEI: &str = "356938035643809";
    const PHONE: &str = "+6598765432";

    fn matcher() -> Matcher {
        Matcher::new(&[
            Identifier::new("imei", IMEI),
            Identifier::new("phone_number", PHONE),
        ])
    }

    fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    /// A connection as curl writes it: preface, SETTINGS, then requests. Stream 1: GET with the IMEI
    /// in the path and a header, split over HEADERS (with priority and padding) + CONTINUATION.
    /// Streams 3 and 5: POSTs whose DATA frames interleave, one gzip, one padded.
    fn connection() -> Vec<u8> {
        let mut enc = loona_hpack::Encoder::new();
        let mut s = PREFACE.to_vec();
        frame(&mut s, 0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        frame(&mut s, 0x8, 0, 0, &[0, 0, 0x10, 0]);
        let path = format!("/a?imei={IMEI}");
        let block = enc.encode([
            (&b":method"[..], &b"GET"[..]),
            (b":path", path.as_bytes()),
            (b":authority", b"api.example.com:8443"),
            (b"x-device", IMEI.as_bytes()),
        ]);
        let (first, second) = block.split_at(block.len() / 2);
        let mut payload = vec![3]; // pad length
        payload.extend_from_slice(&[0x80, 0, 0, 0, 15]); // priority
        payload.extend_from_slice(first);
        payload.extend_from_slice(&[0, 0, 0]);
        frame(&mut s, HEADERS, PADDED | PRIORITY | END_STREAM, 1, &payload);
        frame(&mut s, CONTINUATION, END_HEADERS, 1, second);
        // The dynamic table is used: the second request repeats the authority by index.
        let post = |enc: &mut loona_hpack::Encoder, coding: Option<&[u8]>| {
            let mut h = vec![
                (&b":method"[..], &b"POST"[..]),
                (b":path", b"/upload"),
                (b":authority", b"api.example.com:8443"),
            ];
            if let Some(c) = coding {
                h.push((b"content-encoding", c));
            }
            enc.encode(h)
        };
        let b3 = post(&mut enc, Some(b"gzip"));
        frame(&mut s, HEADERS, END_HEADERS, 3, &b3);
        let b5 = post(&mut enc, None);
        frame(&mut s, HEADERS, END_HEADERS, 5, &b5);
        let gz = gzip(format!("imei={IMEI}").as_bytes());
        let (g1, g2) = gz.split_at(gz.len() / 2);
        frame(&mut s, DATA, 0, 3, g1);
        let mut padded = vec![4];
        padded.extend_from_slice(format!("phone={}", &PHONE[1..6]).as_bytes());
        padded.extend_from_slice(&[0; 4]);
        frame(&mut s, DATA, PADDED, 5, &padded);
        frame(&mut s, 0x8, 0, 3, &[0, 0, 1, 0]); // WINDOW_UPDATE between
        frame(&mut s, DATA, END_STREAM, 3, g2);
        frame(&mut s, DATA, END_STREAM, 5, &PHONE.as_bytes()[6..]);
        s
    }

    fn run(m: &Matcher, stream: &[u8], cuts: &[usize]) -> (Http2Stream, Vec<Hit>) {
        let mut h = Http2Stream::new(1000);
        let mut hits = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
            h.feed(m, 1000 + prev as u64, &stream[prev..c], &mut hits)
                .expect("http2");
            prev = c;
        }
        h.finish(m, &mut hits);
        (h, hits)
    }

    fn summary(hits: &[Hit]) -> Vec<String> {
        hits.iter()
            .map(|h| format!("{}:{}:{}@{}", h.identifier, h.encoding, h.location, h.at))
            .collect()
    }

    #[test]
    fn paths_headers_and_interleaved_bodies() {
        let m = matcher();
        let s = connection();
        let (h, hits) = run(&m, &s, &[]);
        let got: Vec<String> = hits
            .iter()
            .map(|h| format!("{}:{}:{}", h.identifier, h.encoding, h.location))
            .collect();
        assert_eq!(
            got,
            vec![
                "0:plain:http.url",
                "0:plain:http.header:x-device",
                "0:gzip:http.body",
                "1:plain:http.body",
            ]
        );
        assert_eq!(h.host.as_deref(), Some("api.example.com"));
        assert_eq!((h.requests, h.desync, h.opaque), (3, 0, 0));
        assert_eq!(h.buffered(), h.hpack.as_ref().expect("in sync").buffered());
        // The header hits sit on the CONTINUATION's last byte; the phone number split across two
        // DATA frames is found at its last byte, in the last frame.
        assert_eq!(hits[0].at, hits[1].at);
        let next_frame = (hits[0].at - 1000 + 1) as usize;
        assert_eq!(
            &s[next_frame + 3..next_frame + 9],
            &[HEADERS, END_HEADERS, 0, 0, 0, 3]
        );
        assert_eq!(hits[3].at, 1000 + s.len() as u64 - 1);
        // Any split of the stream finds the same, at the same offsets.
        let whole = summary(&hits);
        for cut in 1..s.len() {
            assert_eq!(summary(&run(&m, &s, &[cut]).1), whole, "cut at {cut}");
        }
        let every_byte: Vec<usize> = (1..s.len()).collect();
        assert_eq!(summary(&run(&m, &s, &every_byte).1), whole);
    }

    #[test]
    fn desync_searches_blocks_raw_and_keeps_reading_bodies() {
        let mut s = PREFACE.to_vec();
        // Index 70 does not exist in a fresh table.
        frame(&mut s, HEADERS, END_HEADERS, 1, &[0x82, 0x80 | 70]);
        let mut enc = loona_hpack::Encoder::new();
        let block = enc.encode([(&b"x-device"[..], IMEI.as_bytes())]);
        frame(&mut s, HEADERS, END_HEADERS, 3, &block);
        frame(&mut s, DATA, END_STREAM, 3, PHONE.as_bytes());
        let m = matcher();
        let (h, hits) = run(&m, &s, &[]);
        let got: Vec<String> = hits
            .iter()
            .map(|h| format!("{}:{}", h.identifier, h.location))
            .collect();
        assert_eq!(got, vec!["0:tcp.payload", "1:http.body"]);
        assert!(h.hpack.is_none());
        assert_eq!(h.desync, 2);
    }

    #[test]
    fn an_oversized_block_is_searched_raw_as_it_streams() {
        let mut s = PREFACE.to_vec();
        let mut block = vec![0x40, 0x08];
        block.extend_from_slice(b"x-device");
        block.extend_from_slice(&[0x7f, 0xff, 0xff, 0x03]); // a 65662-byte value
        block.extend(std::iter::repeat_n(b'a', 65662 - IMEI.len()));
        block.extend_from_slice(IMEI.as_bytes());
        let (a, b) = block.split_at(40_000);
        frame(&mut s, HEADERS, 0, 1, a);
        frame(&mut s, CONTINUATION, 0, 1, b);
        let imei_end = 1000 + s.len() - 1;
        // A small fragment after the loss is searched raw too.
        frame(&mut s, CONTINUATION, END_HEADERS, 1, PHONE.as_bytes());
        let m = matcher();
        let (h, hits) = run(&m, &s, &[100, 30_000, 50_000]);
        assert_eq!(
            summary(&hits),
            vec![
                format!("0:plain:tcp.payload@{imei_end}"),
                format!("1:plain:tcp.payload@{}", 1000 + s.len() - 1)
            ]
        );
        assert!(h.hpack.is_none());
        assert!(h.buffered() < 1024, "{}", h.buffered());
    }

    #[test]
    fn bytes_that_are_not_http2_are_handed_back() {
        let m = matcher();
        assert_eq!(looks_like_h2(b"PRI * HTTP/2"), None);
        assert_eq!(looks_like_h2(b"POST / HTTP/1.1"), Some(false));
        assert_eq!(looks_like_h2(PREFACE), Some(true));
        // CONTINUATION without HEADERS breaks the framing.
        let mut s = PREFACE.to_vec();
        frame(&mut s, CONTINUATION, END_HEADERS, 1, IMEI.as_bytes());
        let mut h = Http2Stream::new(0);
        let mut hits = Vec::new();
        let e = h.feed(&m, 0, &s, &mut hits).expect_err("not h2");
        assert_eq!((e.abs, e.bytes.len()), (24, s.len() - 24));
        // A wrong preface.
        let mut h = Http2Stream::new(0);
        assert!(
            h.feed(&m, 0, b"PRI * HTTP/2.0\r\n\r\nXX", &mut hits)
                .is_err()
        );
        // A gap.
        let mut h = Http2Stream::new(0);
        h.feed(&m, 0, PREFACE, &mut hits).expect("preface");
        assert!(h.feed(&m, 30, b"x", &mut hits).is_err());
    }

    #[test]
    fn streams_and_bodies_are_capped() {
        let m = matcher();
        let mut s = PREFACE.to_vec();
        // 200 streams open, each with a body that never ends.
        for i in 0..200u32 {
            frame(&mut s, HEADERS, END_HEADERS, 2 * i + 1, &[0x83, 0x84]);
            frame(&mut s, DATA, 0, 2 * i + 1, &[b'x'; 16000]);
            frame(&mut s, DATA, 0, 2 * i + 1, &[b'x'; 16000]);
        }
        let mut h = Http2Stream::new(0);
        let mut hits = Vec::new();
        h.feed(&m, 0, &s, &mut hits).expect("h2");
        assert!(h.streams.len() <= MAX_STREAMS);
        assert!(h.held <= MAX_BODIES);
        assert!(h.buffered() <= MAX_BODIES + 8192, "{}", h.buffered());
        h.finish(&m, &mut hits);
        assert_eq!(h.buffered(), h.hpack.as_ref().map_or(0, |d| d.buffered()));
    }

    #[test]
    fn a_flush_frees_everything_and_keeps_the_framing() {
        let m = matcher();
        let mut s = PREFACE.to_vec();
        let mut enc = loona_hpack::Encoder::new();
        let block = enc.encode([(&b"x-device"[..], IMEI.as_bytes())]);
        frame(&mut s, HEADERS, END_HEADERS, 1, &block);
        frame(&mut s, DATA, 0, 1, format!("a={IMEI}").as_bytes());
        // A second request whose header block is cut by the flush: the literal still found raw.
        let block = enc.encode([(&b"x-phone"[..], PHONE.as_bytes())]);
        let mut h2 = Vec::new();
        frame(&mut h2, HEADERS, END_HEADERS, 3, &block);
        frame(&mut h2, DATA, END_STREAM, 1, PHONE.as_bytes());
        let cut = s.len() + 12;
        s.extend_from_slice(&h2);
        let mut h = Http2Stream::new(0);
        let mut hits = Vec::new();
        h.feed(&m, 0, &s[..cut], &mut hits).expect("h2");
        h.flush(&m, &mut hits);
        assert_eq!(h.buffered(), 0);
        h.feed(&m, cut as u64, &s[cut..], &mut hits).expect("h2");
        h.finish(&m, &mut hits);
        let got: Vec<String> = hits
            .iter()
            .map(|h| format!("{}:{}", h.identifier, h.location))
            .collect();
        assert_eq!(
            got,
            vec![
                "0:http.header:x-device",
                "0:http.body",
                "1:tcp.payload",
                "1:http.body"
            ]
        );
    }

    /// Throughput against HTTP/1 on the same requests, fed in 1448-byte segments. A measurement,
    /// not a check: `cargo test --release -p tattle-analysis --lib throughput -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore = "a measurement; run in release"]
    fn throughput_against_http1() {
        let m = matcher();
        let body: Vec<u8> = (0..32 << 10).map(|i| b"abcdefghij=&0123"[i % 16]).collect();
        let mut enc = loona_hpack::Encoder::new();
        let (mut h2, mut h1) = (PREFACE.to_vec(), Vec::new());
        for i in 0..2000u32 {
            let path = format!("/api/v1/items/{i}?x=1");
            let len = body.len().to_string();
            let block = enc.encode([
                (&b":method"[..], &b"POST"[..]),
                (b":path", path.as_bytes()),
                (b":authority", b"api.example.com"),
                (b"user-agent", b"okhttp/4.12.0"),
                (b"content-length", len.as_bytes()),
            ]);
            frame(&mut h2, HEADERS, END_HEADERS, 2 * i + 1, &block);
            for (k, chunk) in body.chunks(16384).enumerate() {
                let last = (k + 1) * 16384 >= body.len();
                frame(
                    &mut h2,
                    DATA,
                    if last { END_STREAM } else { 0 },
                    2 * i + 1,
                    chunk,
                );
            }
            h1.extend_from_slice(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: okhttp/4.12.0\r\nContent-Length: {len}\r\n\r\n"
                )
                .as_bytes(),
            );
            h1.extend_from_slice(&body);
        }
        let time = |stream: &[u8], h2: bool| {
            let start = std::time::Instant::now();
            let mut hits = Vec::new();
            if h2 {
                let mut h = Http2Stream::new(0);
                for (i, seg) in stream.chunks(1448).enumerate() {
                    h.feed(&m, (i * 1448) as u64, seg, &mut hits).expect("h2");
                }
                h.finish(&m, &mut hits);
            } else {
                let mut h = crate::http::HttpStream::new(0);
                for (i, seg) in stream.chunks(1448).enumerate() {
                    h.feed(&m, (i * 1448) as u64, seg, &mut hits).expect("h1");
                }
                h.finish(&m, &mut hits);
            }
            let secs = start.elapsed().as_secs_f64();
            stream.len() as f64 / secs / 1e6
        };
        let (a, b) = (time(&h2, true), time(&h1, false));
        eprintln!(
            "HTTP/2 {a:.0} MB/s, HTTP/1.1 {b:.0} MB/s ({} / {} bytes)",
            h2.len(),
            h1.len()
        );
    }

    #[test]
    fn hostile_frames_never_panic() {
        let m = matcher();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let base = connection();
        for _ in 0..2000 {
            let mut s = base.clone();
            for _ in 0..4 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = 24 + (rng as usize % (s.len() - 24));
                s[i] = (rng >> 32) as u8;
            }
            let mut h = Http2Stream::new(0);
            let mut hits = Vec::new();
            let _ = h.feed(&m, 0, &s, &mut hits);
            h.finish(&m, &mut hits);
        }
    }
}
