//! HTTP/3 requests in the client's streams of one QUIC connection (RFC 9114): frames on the
//! request streams, QPACK field sections, each stream's body, and the client's unidirectional
//! streams (control, QPACK encoder, QPACK decoder).
//!
//! Owns the framing (a variable-length type and length per frame, RFC 9000 §16 integers, read
//! across arbitrary chunking): on a client bidirectional stream DATA (0x00) is streamed into the
//! stream's body and HEADERS (0x01) is buffered and decoded by `qpack`; every other type is
//! skipped (PUSH_PROMISE never comes from a client; reserved and grease types, RFC 9114 §7.2.8,
//! are skipped as the RFC says). A client unidirectional stream starts with its type: 0x00 control
//! (its SETTINGS are read, the rest skipped), 0x02 the QPACK encoder stream (fed to
//! `qpack::Decoder`), 0x03 the QPACK decoder stream (ignored: it carries acknowledgements); any
//! other type is searched raw. A server control stream, if the caller has one, gives QPACK the
//! table's real maximum (SETTINGS_QPACK_MAX_TABLE_CAPACITY).
//!
//! What is searched, as in HTTP/2: `:path` as `http.url`, every other field as
//! `http.header:NAME`, each stream's body as `http.body` (decoded by its `content-encoding`
//! with HTTP/1's `BodyBuf`, same limits and shared decode budget); `:authority` is the host.
//! Positions are the caller's connection-wide numbering (`abs`): a header hit is at the last byte
//! of the HEADERS frame that completed it (also when the section was blocked and is decoded
//! later), a body hit at its byte (or, decoded, at the body's last byte).
//!
//! A field section that names table entries the encoder stream has not delivered yet is held
//! (at most `MAX_BLOCKED` sections, `MAX_BLOCKED_BYTES` together) and decoded once the inserts
//! arrive. QPACK desync (an error on the encoder stream or in a section, a gap in the encoder
//! stream, too much held): decoding stops for the connection; every later section and the
//! encoder stream itself are searched raw (`quic.stream`), the table's entries are searched once
//! (their values would otherwise never be). A gap inside a stream loses its framing: the rest of
//! that stream is searched raw (`quic.stream`), its body so far is searched as it is.
//!
//! Memory per connection: a partial frame header per stream, a field section at most
//! `http::MAX_HEAD` (a larger one is searched raw as it streams past), the held sections, the
//! QPACK table (`qpack::MAX_TABLE`, plus evicted entries kept as long), at most `MAX_STREAMS`
//! streams with state (the least recently fed is finished to make room) and `MAX_BODIES` of
//! bodies; bytes over these caps are counted opaque.
//!
//! Must not touch: packets, QUIC, TLS, I/O.

use crate::http::{BodyBuf, MAX_HEAD, Tally, coding_of, scan, strip_port};
use crate::matcher::{Hit, Matcher, StreamScanner};
use crate::qpack;

/// Streams with state at once (requests in flight, the client's unidirectional streams).
pub const MAX_STREAMS: usize = 128;
/// Body bytes held by all open streams of a connection together.
pub const MAX_BODIES: usize = 4 << 20;
/// Field sections held while blocked on the encoder stream, and their bytes together.
pub const MAX_BLOCKED: usize = 16;
pub const MAX_BLOCKED_BYTES: usize = 64 << 10;
/// Longest header name used in a location; longer or odd ones become `http.header:?`.
const MAX_NAME: usize = 64;
/// The location of bytes searched without their framing.
const RAW: &str = "quic.stream";

const DATA: u64 = 0x00;
const HEADERS: u64 = 0x01;
const SETTINGS: u64 = 0x04;
const UNI_CONTROL: u64 = 0x00;
const UNI_ENCODER: u64 = 0x02;
const UNI_DECODER: u64 = 0x03;
const SETTINGS_QPACK_MAX_TABLE_CAPACITY: u64 = 0x01;
/// Longest SETTINGS frame read; a longer one is skipped.
const MAX_SETTINGS: u64 = 4096;

/// What the bytes of a stream are, once its start has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A client bidirectional stream: frames.
    Request,
    /// A unidirectional stream whose type is not read yet.
    Uni,
    /// A control stream (client's, or the server's when `server` is true): frames.
    Control { server: bool },
    /// The client's QPACK encoder stream.
    Encoder,
    /// Read, not searched: the QPACK decoder stream, a server stream other than control.
    Ignored,
    /// Searched as bytes: framing lost, or a type we do not know.
    Raw,
}

/// Where a framed stream is inside its current frame.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// Reading a frame's type and length (kept in `Stream::head`).
    Header,
    /// DATA payload: `left` bytes still to come.
    Data { left: u64 },
    /// HEADERS (or SETTINGS) payload, buffered in `Stream::head` until `len` bytes.
    Buffered { kind: u64, len: usize },
    /// A HEADERS payload too large to decode: searched raw as it comes.
    RawSection { left: u64 },
    /// Any other frame.
    Skip { left: u64 },
}

#[derive(Debug)]
struct Stream {
    id: u64,
    /// Stream offset of the next byte expected.
    next: u64,
    kind: Kind,
    frame: Frame,
    /// A partial frame header, a stream type, or a buffered HEADERS/SETTINGS payload.
    head: Vec<u8>,
    /// The body collected, from the first DATA on.
    body: Option<BodyBuf>,
    /// The `content-encoding` of the first field section, once decoded.
    coding: Option<&'static str>,
    /// Field sections seen: the first one is the request's, later ones trailers.
    sections: u32,
    /// The scanner of the bytes searched raw, positions in stream offsets.
    raw: Option<StreamScanner>,
    /// Feeds since this connection started, at this stream's last one (for eviction).
    last_used: u64,
    /// The current feed's (position, stream offset) of its first byte, and the position of the
    /// last byte seen.
    feed_at: (u64, u64),
    last_abs: u64,
}

/// A field section waiting for the encoder stream.
#[derive(Debug)]
struct Blocked {
    stream: u64,
    section: Vec<u8>,
    /// Insert count it waits for.
    ric: u64,
    /// Position of the last byte of its HEADERS frame.
    at: u64,
    /// The stream's body, when the stream ended before the section could be decoded.
    body: Option<BodyBuf>,
    first: bool,
}

/// The client side of one HTTP/3 connection.
#[derive(Debug)]
pub struct Http3Connection {
    /// `None` once desynchronised: sections and the encoder stream are searched raw from then on.
    qpack: Option<qpack::Decoder>,
    streams: Vec<Stream>,
    blocked: Vec<Blocked>,
    blocked_bytes: usize,
    /// Body bytes held across `streams`.
    held: usize,
    feeds: u64,
    /// The `content-encoding` of streams that ended while their first section was held.
    pending_coding: Vec<(u64, Option<&'static str>)>,
    /// The first request's `:authority` (or `host`), without port.
    pub host: Option<String>,
    /// Body bytes not inspected (over a cap, or in a coding that could not be decoded).
    pub opaque: u64,
    /// Field sections that opened a request.
    pub requests: u64,
    /// Decoded body bytes this connection may still produce (the caller may refill and share it).
    pub decode_budget: u64,
    /// Bodies whose decoding stopped at a limit (ratio or budget).
    pub decode_cut: u64,
    /// Field sections (or encoder stream errors) that could not be decoded; the first one stops
    /// QPACK for the connection.
    pub desync: u64,
}

impl crate::http::DecodeCounters for Http3Connection {
    fn decode_counters(&mut self) -> (&mut u64, &mut u64) {
        (&mut self.decode_budget, &mut self.decode_cut)
    }
}

impl Default for Http3Connection {
    fn default() -> Self {
        Http3Connection::new()
    }
}

/// A QUIC variable-length integer (RFC 9000 §16) at the start of `b`: (value, length), `None`
/// if `b` is too short.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for x in &bytes[1..] {
        v = v << 8 | u64::from(*x);
    }
    Some((v, len))
}

impl Http3Connection {
    /// A connection with nothing seen yet.
    pub fn new() -> Self {
        Http3Connection {
            qpack: Some(qpack::Decoder::new()),
            streams: Vec::new(),
            blocked: Vec::new(),
            blocked_bytes: 0,
            held: 0,
            feeds: 0,
            pending_coding: Vec::new(),
            host: None,
            opaque: 0,
            requests: 0,
            decode_budget: crate::http::DEFAULT_DECODE_BUDGET,
            decode_cut: 0,
            desync: 0,
        }
    }

    /// Bytes held (partial frames, blocked field sections, bodies, the QPACK table) for the flow
    /// memory budget.
    pub fn buffered(&self) -> usize {
        self.streams.iter().map(|s| s.head.len()).sum::<usize>()
            + self.blocked_bytes
            + self.held
            + self.qpack.as_ref().map_or(0, |q| q.buffered())
    }

    /// In-order bytes of one client-initiated stream (bidi: id % 4 == 0; uni: id % 4 == 2; a
    /// server uni stream, id % 4 == 3, is read for its SETTINGS only), starting at that stream's
    /// offset `offset`; `abs` is the position of `data[0]` in the caller's connection-wide
    /// numbering (strictly increasing across calls, gaps allowed). `fin`: the stream ended with
    /// these bytes. An `offset` past the bytes seen on the stream is a gap: its framing is lost,
    /// the rest of it is searched raw.
    #[allow(clippy::too_many_arguments)]
    pub fn feed(
        &mut self,
        m: &Matcher,
        stream_id: u64,
        offset: u64,
        abs: u64,
        data: &[u8],
        fin: bool,
        hits: &mut Vec<Hit>,
    ) {
        self.feeds += 1;
        let i = self.stream_index(m, stream_id, offset, hits);
        let s = &mut self.streams[i];
        s.last_used = self.feeds;
        // Bytes before what was seen (a retransmission the caller did not trim) are dropped.
        let skip = s.next.saturating_sub(offset).min(data.len() as u64) as usize;
        let (data, offset, abs) = (&data[skip..], offset + skip as u64, abs + skip as u64);
        if offset > s.next {
            // A gap: this stream's framing is lost.
            self.lose_framing(m, i, abs, hits);
        }
        let s = &mut self.streams[i];
        s.next = offset + data.len() as u64;
        s.feed_at = (abs, offset);
        if !data.is_empty() {
            s.last_abs = abs + data.len() as u64 - 1;
        }
        let mut pos = 0;
        while pos < data.len() {
            pos += self.step(m, i, &data[pos..], abs + pos as u64, hits);
        }
        if fin {
            let end = (abs + data.len() as u64).saturating_sub(1);
            self.end_stream(m, i, end, hits);
        }
    }

    /// The connection ended: open bodies are decoded and searched, held sections searched raw.
    pub fn finish(&mut self, m: &Matcher, hits: &mut Vec<Hit>) {
        for b in std::mem::take(&mut self.blocked) {
            scan(m, &b.section, || RAW.to_string(), hits, |_| b.at);
            if let Some(body) = b.body {
                self.finish_body(body, m, hits);
            }
        }
        self.blocked_bytes = 0;
        for s in std::mem::take(&mut self.streams) {
            self.retire(s, m, hits);
        }
        self.held = 0;
    }

    /// Gives up what is held for memory, keeping the connection readable: bodies are decoded and
    /// searched as far as they go (later DATA starts a new body), held sections and partial
    /// field sections are searched raw (at their own positions, while the caller can still map
    /// them to frames; the rest of a partial one is searched raw as it comes). The QPACK table
    /// and each stream's framing are kept.
    pub fn flush(&mut self, m: &Matcher, hits: &mut Vec<Hit>) {
        for b in std::mem::take(&mut self.blocked) {
            scan(m, &b.section, || RAW.to_string(), hits, |_| b.at);
            if let Some(body) = b.body {
                self.finish_body(body, m, hits);
            }
        }
        self.blocked_bytes = 0;
        self.pending_coding.clear();
        for i in 0..self.streams.len() {
            let s = &mut self.streams[i];
            if let Frame::Buffered { kind: HEADERS, len } = s.frame
                && !s.head.is_empty()
            {
                let head = std::mem::take(&mut s.head);
                let at = s.last_abs;
                s.frame = Frame::RawSection {
                    left: (len - head.len()) as u64,
                };
                scan(m, &head, || RAW.to_string(), hits, |_| at);
            }
            let s = &mut self.streams[i];
            s.head.shrink_to_fit();
            if let Some(body) = s.body.take() {
                self.held -= body.len().min(self.held);
                self.finish_body(body, m, hits);
            }
        }
        self.held = 0;
    }

    /// Index of the stream's state, created if new (a stream first seen past offset 0 starts
    /// raw, as does one past the cap on streams).
    fn stream_index(&mut self, m: &Matcher, id: u64, offset: u64, hits: &mut Vec<Hit>) -> usize {
        if let Some(i) = self.streams.iter().position(|s| s.id == id) {
            return i;
        }
        if self.streams.len() >= MAX_STREAMS {
            // The request stream fed least recently makes room (its later bytes, if any, are
            // raw); the unidirectional streams live as long as the connection.
            let oldest = (0..self.streams.len())
                .min_by_key(|&i| {
                    (
                        !self.streams[i].id.is_multiple_of(4),
                        self.streams[i].last_used,
                    )
                })
                .unwrap_or(0);
            let s = self.streams.swap_remove(oldest);
            self.retire(s, m, hits);
        }
        let kind = match id % 4 {
            0 => Kind::Request,
            2 | 3 => Kind::Uni,
            _ => Kind::Ignored,
        };
        self.streams.push(Stream {
            id,
            next: offset,
            kind: if offset > 0 && kind != Kind::Ignored {
                Kind::Raw
            } else {
                kind
            },
            frame: Frame::Header,
            head: Vec::new(),
            body: None,
            coding: None,
            sections: 0,
            raw: None,
            last_used: self.feeds,
            feed_at: (0, offset),
            last_abs: 0,
        });
        // A client uni stream whose start we missed may be the encoder stream: QPACK goes on,
        // sections that need the inserts we missed stay blocked until the bound gives up.
        self.streams.len() - 1
    }

    /// One step on stream `i` over `data` (at position `abs`); returns the bytes consumed
    /// (at least one).
    fn step(&mut self, m: &Matcher, i: usize, data: &[u8], abs: u64, hits: &mut Vec<Hit>) -> usize {
        let s = &mut self.streams[i];
        match s.kind {
            Kind::Ignored => data.len(),
            Kind::Raw => {
                self.raw(m, i, data, abs, hits);
                data.len()
            }
            Kind::Encoder => {
                match &mut self.qpack {
                    Some(q) => {
                        if let Err(e) = q.feed_encoder(data) {
                            tracing::debug!("QPACK encoder stream at {abs}: {e}; searched raw");
                            let end = abs + data.len() as u64 - 1;
                            self.lose_qpack(m, Some(end), hits);
                            self.raw(m, i, data, abs, hits);
                        } else {
                            self.unblock(m, hits);
                        }
                    }
                    None => self.raw(m, i, data, abs, hits),
                }
                data.len()
            }
            Kind::Uni => {
                // The stream type: a varint, perhaps split.
                let before = s.head.len();
                let take = data.len().min(8 - before.min(8));
                s.head.extend_from_slice(&data[..take]);
                let Some((kind, n)) = varint(&s.head) else {
                    return take;
                };
                let used = n - before;
                s.head.clear();
                let server = s.id % 4 == 3;
                s.kind = match (kind, server) {
                    (UNI_CONTROL, _) => Kind::Control { server },
                    (UNI_ENCODER, false) => Kind::Encoder,
                    (UNI_DECODER, false) | (_, true) => Kind::Ignored,
                    _ => Kind::Raw,
                };
                if s.kind == Kind::Raw {
                    s.raw = Some(StreamScanner::at(0));
                }
                used
            }
            Kind::Request | Kind::Control { .. } => self.frame_step(m, i, data, abs, hits),
        }
    }

    /// One step of a framed stream.
    fn frame_step(
        &mut self,
        m: &Matcher,
        i: usize,
        data: &[u8],
        abs: u64,
        hits: &mut Vec<Hit>,
    ) -> usize {
        let s = &mut self.streams[i];
        match s.frame {
            Frame::Header => {
                let before = s.head.len();
                let take = data.len().min(16 - before);
                s.head.extend_from_slice(&data[..take]);
                let parsed = varint(&s.head)
                    .and_then(|(t, a)| varint(&s.head[a..]).map(|(l, b)| (t, l, a + b)));
                let Some((kind, len, n)) = parsed else {
                    return take;
                };
                s.head.clear();
                let used = n - before;
                let control = matches!(s.kind, Kind::Control { .. });
                s.frame = match kind {
                    DATA if !control => Frame::Data { left: len },
                    HEADERS if !control && len as usize <= MAX_HEAD => Frame::Buffered {
                        kind,
                        len: len as usize,
                    },
                    HEADERS if !control => Frame::RawSection { left: len },
                    SETTINGS if control && len <= MAX_SETTINGS => Frame::Buffered {
                        kind,
                        len: len as usize,
                    },
                    _ => Frame::Skip { left: len },
                };
                if let Frame::Data { left: 0 }
                | Frame::Skip { left: 0 }
                | Frame::RawSection { left: 0 } = s.frame
                {
                    s.frame = Frame::Header;
                }
                if let Frame::Buffered { kind, len: 0 } = s.frame {
                    s.frame = Frame::Header;
                    let end = (abs + used as u64).saturating_sub(1);
                    self.frame_done(m, i, kind, end, hits);
                }
                used
            }
            Frame::Data { left } => {
                let n = (left.min(data.len() as u64)) as usize;
                s.frame = if left == n as u64 {
                    Frame::Header
                } else {
                    Frame::Data {
                        left: left - n as u64,
                    }
                };
                self.body_piece(m, i, &data[..n], abs, hits);
                n
            }
            Frame::Buffered { kind, len } => {
                let n = (len - s.head.len()).min(data.len());
                s.head.extend_from_slice(&data[..n]);
                if s.head.len() == len {
                    s.frame = Frame::Header;
                    self.frame_done(m, i, kind, abs + n as u64 - 1, hits);
                }
                n
            }
            Frame::RawSection { left } => {
                let n = (left.min(data.len() as u64)) as usize;
                s.frame = if left == n as u64 {
                    Frame::Header
                } else {
                    Frame::RawSection {
                        left: left - n as u64,
                    }
                };
                if s.raw.is_none() {
                    s.raw = Some(StreamScanner::at(0));
                }
                self.raw(m, i, &data[..n], abs, hits);
                n
            }
            Frame::Skip { left } => {
                let n = (left.min(data.len() as u64)) as usize;
                s.frame = if left == n as u64 {
                    Frame::Header
                } else {
                    Frame::Skip {
                        left: left - n as u64,
                    }
                };
                n
            }
        }
    }

    /// A whole HEADERS or SETTINGS payload is in `head`; `end` is its last byte's position.
    fn frame_done(&mut self, m: &Matcher, i: usize, kind: u64, end: u64, hits: &mut Vec<Hit>) {
        let s = &mut self.streams[i];
        let payload = std::mem::take(&mut s.head);
        if kind == SETTINGS {
            // Only the server's matter: they fix the client encoder's table maximum.
            if !matches!(s.kind, Kind::Control { server: true }) {
                return;
            }
            let mut p = &payload[..];
            while let Some((id, a)) = varint(p) {
                let Some((value, b)) = varint(&p[a..]) else {
                    break;
                };
                p = &p[a + b..];
                if id == SETTINGS_QPACK_MAX_TABLE_CAPACITY
                    && let Some(q) = &mut self.qpack
                {
                    q.set_max_capacity(value);
                }
            }
            return;
        }
        let first = s.sections == 0;
        s.sections += 1;
        let stream = s.id;
        if first {
            self.requests += 1;
        }
        self.section(m, stream, payload, end, first, hits);
    }

    /// Decodes a field section, or holds it while blocked, or searches it raw after a desync.
    fn section(
        &mut self,
        m: &Matcher,
        stream: u64,
        section: Vec<u8>,
        at: u64,
        first: bool,
        hits: &mut Vec<Hit>,
    ) {
        let Some(q) = &mut self.qpack else {
            scan(m, &section, || RAW.to_string(), hits, |_| at);
            return;
        };
        let mut coding = None;
        let mut host = None;
        let r = q.decode_section(&section, |name, value| {
            let location = || match name {
                b":path" => "http.url".to_string(),
                _ => format!("http.header:{}", header_name(name)),
            };
            scan(m, value, location, hits, |_| at);
            match name {
                b":authority" | b"host" if host.is_none() => {
                    host = Some(strip_port(String::from_utf8_lossy(value).trim()));
                }
                b"content-encoding" => coding = coding_of(&String::from_utf8_lossy(value)),
                _ => {}
            }
        });
        match r {
            Ok(qpack::Section::Decoded) => {
                if self.host.is_none() {
                    self.host = host.filter(|h| !h.is_empty());
                }
                if first {
                    self.set_coding(stream, coding);
                }
            }
            Ok(qpack::Section::Blocked(ric)) => {
                if self.blocked.len() < MAX_BLOCKED
                    && self.blocked_bytes + section.len() <= MAX_BLOCKED_BYTES
                {
                    self.blocked_bytes += section.len();
                    self.blocked.push(Blocked {
                        stream,
                        section,
                        ric,
                        at,
                        body: None,
                        first,
                    });
                } else {
                    tracing::debug!("HTTP/3: too many blocked field sections; searched raw");
                    self.lose_qpack(m, Some(at), hits);
                    scan(m, &section, || RAW.to_string(), hits, |_| at);
                }
            }
            Err(e) => {
                tracing::debug!("HTTP/3 field section at {at}: {e}; searched raw from here");
                self.lose_qpack(m, Some(at), hits);
                scan(m, &section, || RAW.to_string(), hits, |_| at);
            }
        }
    }

    /// Held sections whose inserts have arrived are decoded, in the order they came.
    fn unblock(&mut self, m: &Matcher, hits: &mut Vec<Hit>) {
        let count = self.qpack.as_ref().map_or(0, |q| q.insert_count());
        if !self.blocked.iter().any(|b| b.ric <= count) {
            return;
        }
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.blocked)
            .into_iter()
            .partition(|b| b.ric <= count);
        self.blocked = wait;
        for b in ready {
            self.blocked_bytes -= b.section.len().min(self.blocked_bytes);
            self.section(m, b.stream, b.section, b.at, b.first, hits);
            if let Some(body) = b.body {
                // The stream ended while its section was held: its body goes with it, in the
                // coding now known (or back to waiting if the section blocked again).
                self.settle_body(m, b.stream, body, hits);
            }
            if !self.blocked.iter().any(|x| x.stream == b.stream) {
                self.pending_coding.retain(|(s, _)| *s != b.stream);
            }
        }
    }

    /// A body whose stream has ended: finished now unless its first section is still held.
    fn settle_body(&mut self, m: &Matcher, stream: u64, mut body: BodyBuf, hits: &mut Vec<Hit>) {
        if let Some(b) = self
            .blocked
            .iter_mut()
            .find(|b| b.stream == stream && b.first)
        {
            b.body = Some(body);
            return;
        }
        if let Some(c) = self.pending_coding.iter().position(|(s, _)| *s == stream) {
            body.coding = self.pending_coding.swap_remove(c).1;
        }
        self.finish_body(body, m, hits);
    }

    /// The coding of a stream's body, from its first field section.
    fn set_coding(&mut self, stream: u64, coding: Option<&'static str>) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.id == stream) {
            s.coding = coding;
            if let Some(b) = &mut s.body {
                b.coding = coding;
            }
        } else if coding.is_some() && self.pending_coding.len() < MAX_BLOCKED {
            self.pending_coding.push((stream, coding));
        }
    }

    /// DATA bytes of stream `i` at `abs`: into its body, within the caps.
    fn body_piece(&mut self, m: &Matcher, i: usize, piece: &[u8], abs: u64, hits: &mut Vec<Hit>) {
        if piece.is_empty() {
            return;
        }
        let s = &mut self.streams[i];
        let body = s.body.get_or_insert_with(|| BodyBuf::new(s.coding, abs));
        let room = MAX_BODIES.saturating_sub(self.held).min(piece.len());
        if room == 0 && body.len() == 0 {
            // No room at all: searched as sent.
            scan(
                m,
                piece,
                || "http.body".to_string(),
                hits,
                |e| abs + e as u64,
            );
            return;
        }
        let before = body.len();
        body.store(&piece[..room], abs, &mut self.opaque);
        body.last_abs = abs + piece.len() as u64 - 1;
        self.opaque += (piece.len() - room) as u64;
        self.held += body.len() - before;
    }

    /// Stream `i` ended at position `end`.
    fn end_stream(&mut self, m: &Matcher, i: usize, end: u64, hits: &mut Vec<Hit>) {
        let mut s = self.streams.swap_remove(i);
        if let Some(body) = &mut s.body {
            body.last_abs = body.last_abs.max(end);
        }
        if let Some(body) = s.body.take() {
            self.held -= body.len().min(self.held);
            self.settle_body(m, s.id, body, hits);
        }
        self.retire(s, m, hits);
    }

    /// A stream's state is dropped: its partial section searched raw, its body finished.
    fn retire(&mut self, mut s: Stream, m: &Matcher, hits: &mut Vec<Hit>) {
        if matches!(s.frame, Frame::Buffered { kind: HEADERS, .. }) && !s.head.is_empty() {
            let at = s.last_abs;
            scan(m, &s.head, || RAW.to_string(), hits, |_| at);
        }
        if let Some(body) = s.body.take() {
            self.held -= body.len().min(self.held);
            self.finish_body(body, m, hits);
        }
    }

    fn finish_body(&mut self, body: BodyBuf, m: &Matcher, hits: &mut Vec<Hit>) {
        let tally = Tally {
            opaque: &mut self.opaque,
            decode_budget: &mut self.decode_budget,
            decode_cut: &mut self.decode_cut,
        };
        body.finish(m, hits, tally);
    }

    /// Stream `i` lost its framing at position `abs`: what it held is searched, the rest of it
    /// is raw. The encoder stream's loss is QPACK's.
    fn lose_framing(&mut self, m: &Matcher, i: usize, abs: u64, hits: &mut Vec<Hit>) {
        let s = &mut self.streams[i];
        let (kind, id) = (s.kind, s.id);
        let head = std::mem::take(&mut s.head);
        let body = s.body.take();
        s.kind = if kind == Kind::Ignored || id % 4 == 3 {
            Kind::Ignored
        } else {
            Kind::Raw
        };
        s.frame = Frame::Header;
        s.raw = None;
        let at = s.last_abs;
        if matches!(kind, Kind::Request) && !head.is_empty() {
            scan(m, &head, || RAW.to_string(), hits, |_| at);
        }
        if let Some(body) = body {
            self.held -= body.len().min(self.held);
            self.finish_body(body, m, hits);
        }
        if matches!(kind, Kind::Encoder | Kind::Uni) && id % 4 == 2 {
            self.lose_qpack(m, Some(abs.saturating_sub(1)), hits);
        }
    }

    /// Stops QPACK for the connection: its table's entries are searched once (at `at`, or at 0
    /// when no position is known), held sections raw.
    fn lose_qpack(&mut self, m: &Matcher, at: Option<u64>, hits: &mut Vec<Hit>) {
        self.desync += 1;
        let Some(q) = self.qpack.take() else {
            return;
        };
        let at = at.unwrap_or(0);
        for (name, value) in q.entries() {
            scan(
                m,
                value,
                || format!("http.header:{}", header_name(name)),
                hits,
                |_| at,
            );
        }
        for b in std::mem::take(&mut self.blocked) {
            scan(m, &b.section, || RAW.to_string(), hits, |_| b.at);
            if let Some(body) = b.body {
                self.finish_body(body, m, hits);
            }
        }
        self.blocked_bytes = 0;
    }

    /// Searches `data` of stream `i` (at position `abs`) raw.
    fn raw(&mut self, m: &Matcher, i: usize, data: &[u8], abs: u64, hits: &mut Vec<Hit>) {
        let s = &mut self.streams[i];
        // Stream offsets keep a needle split across feeds together; positions map back to `abs`.
        let off = s.feed_at.1 + (abs - s.feed_at.0);
        let scanner = s.raw.get_or_insert_with(|| StreamScanner::at(off));
        for x in scanner.feed(m, off, data) {
            hits.push(Hit {
                identifier: x.identifier,
                encoding: m.encoding_name(x.encoding).to_string(),
                location: RAW.to_string(),
                at: abs + (x.end - 1).saturating_sub(off),
            });
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

/// What `run_streams` found: the connection's counters and each hit as (identifier index,
/// encoding, location, index of the delivery that holds its position).
#[cfg(any(test, feature = "testgen"))]
#[derive(Debug)]
pub struct Http3Outcome {
    /// `Http3Connection::host`.
    pub host: Option<String>,
    /// `Http3Connection::requests`.
    pub requests: u64,
    /// `Http3Connection::desync`.
    pub desync: u64,
    /// `Http3Connection::opaque`.
    pub opaque: u64,
    /// (identifier index, encoding, location, delivery index) of each hit.
    pub hits: Vec<(usize, String, String, usize)>,
}

/// Feeds one connection's client stream deliveries, `(stream id, offset, fin, bytes)` in order,
/// to an `Http3Connection` (for the tests of other crates, which see no private module).
#[cfg(any(test, feature = "testgen"))]
pub fn run_streams(
    identifiers: &[crate::identifier::Identifier],
    deliveries: &[(u64, u64, bool, Vec<u8>)],
) -> Http3Outcome {
    let m = Matcher::new(identifiers);
    let mut h = Http3Connection::new();
    let mut hits = Vec::new();
    let mut starts = Vec::new();
    let mut abs = 0;
    for (id, off, fin, data) in deliveries {
        starts.push(abs);
        h.feed(&m, *id, *off, abs, data, *fin, &mut hits);
        // One position between deliveries, so an empty one still has its own.
        abs += data.len() as u64 + 1;
    }
    h.finish(&m, &mut hits);
    let delivery = |at: u64| starts.partition_point(|s| *s <= at).saturating_sub(1);
    Http3Outcome {
        host: h.host.clone(),
        requests: h.requests,
        desync: h.desync,
        opaque: h.opaque,
        hits: hits
            .into_iter()
            .map(|x| (x.identifier, x.encoding, x.location, delivery(x.at)))
            .collect(),
    }
}

/// The `http3` fuzz target's body (exposed through `testgen`): `data` is a sequence of records,
/// each a stream id byte (its low two bits the stream kind), a fin byte and a 2-byte big-endian
/// length, fed in order to one connection (offsets follow each stream's bytes). Panics if a bound
/// does not hold. Returns the hits found.
#[cfg(any(test, feature = "testgen"))]
pub fn fuzz_streams(mut data: &[u8]) -> usize {
    static MATCHER: std::sync::OnceLock<Matcher> = std::sync::OnceLock::new();
    let m = MATCHER.get_or_init(|| {
        Matcher::new(&[crate::identifier::Identifier::new(
            "imei",
            "356938035643809",
        )])
    });
    let mut h = Http3Connection::new();
    let mut hits = Vec::new();
    let mut offsets = [0u64; 256];
    let mut abs = 0u64;
    while let [id, fin, a, b, rest @ ..] = data {
        let len = (usize::from(*a) << 8 | usize::from(*b)).min(rest.len());
        let (piece, next) = rest.split_at(len);
        data = next;
        let off = &mut offsets[usize::from(*id)];
        // Now and then a gap.
        if fin & 0x80 != 0 {
            *off += u64::from(fin & 0x3f);
        }
        h.feed(m, u64::from(*id), *off, abs, piece, fin & 1 != 0, &mut hits);
        *off += len as u64;
        abs += len as u64 + 1;
        assert!(h.streams.len() <= MAX_STREAMS);
        assert!(h.held <= MAX_BODIES && h.blocked_bytes <= MAX_BLOCKED_BYTES);
        assert!(
            h.buffered()
                <= MAX_BODIES
                    + MAX_BLOCKED_BYTES
                    + 3 * qpack::MAX_TABLE
                    + MAX_STREAMS * (MAX_HEAD + 16)
        );
    }
    h.finish(m, &mut hits);
    assert!(hits.iter().all(|x| x.at < abs.max(1)));
    hits.len()
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

    fn put_varint(out: &mut Vec<u8>, v: u64) {
        match v {
            0..=63 => out.push(v as u8),
            64..=16383 => out.extend_from_slice(&(v as u16 | 0x4000).to_be_bytes()),
            16384..=0x3fff_ffff => out.extend_from_slice(&(v as u32 | 0x8000_0000).to_be_bytes()),
            _ => out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes()),
        }
    }

    fn frame(out: &mut Vec<u8>, kind: u64, payload: &[u8]) {
        put_varint(out, kind);
        put_varint(out, payload.len() as u64);
        out.extend_from_slice(payload);
    }

    /// A QPACK prefix integer (RFC 9204 §4.1.1) with `first`'s high bits.
    fn put_int(out: &mut Vec<u8>, first: u8, n: u8, mut v: usize) {
        let mask = (1usize << n) - 1;
        if v < mask {
            out.push(first | v as u8);
            return;
        }
        out.push(first | mask as u8);
        v -= mask;
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A literal string with an `n`-bit length prefix (no Huffman).
    fn put_str(out: &mut Vec<u8>, first: u8, n: u8, s: &[u8]) {
        put_int(out, first, n, s.len());
        out.extend_from_slice(s);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    /// (stream id, bytes, fin) in the order they are delivered.
    type Streams = Vec<(u64, Vec<u8>, bool)>;

    /// A connection as a client with a dynamic table writes it, the request first (blocked on
    /// the encoder stream, which comes after it): stream 0 POSTs a gzip body whose
    /// `content-encoding` and `x-device` (the IMEI) are in the table; stream 4 GETs a path with the
    /// phone number, a grease frame and a trailer section; stream 6 is the encoder stream,
    /// 2 the control stream (SETTINGS, grease), 10 the decoder stream, 14 an unknown type.
    fn connection() -> Streams {
        let mut enc = vec![0x02]; // stream type
        put_int(&mut enc, 0x20, 5, 4096); // Set Dynamic Table Capacity
        put_str(&mut enc, 0x40, 5, b"x-device"); // Insert With Literal Name (abs 0)
        put_str(&mut enc, 0x00, 7, IMEI.as_bytes());
        put_int(&mut enc, 0xc0, 6, 43); // Insert With Name Reference, static 43 (abs 1)
        put_str(&mut enc, 0x00, 7, b"gzip");
        put_int(&mut enc, 0xc0, 6, 0); // :authority (abs 2)
        put_str(&mut enc, 0x00, 7, b"api.example.com:443");
        // Request 0: RIC 3 (encoded 4 with MaxEntries 128), Base 3.
        let mut sec = vec![0x04, 0x00];
        put_int(&mut sec, 0xc0, 6, 20); // :method POST
        put_int(&mut sec, 0x80, 6, 0); // dynamic relative 0 → abs 2 (:authority)
        put_int(&mut sec, 0x50, 4, 1); // :path literal value
        put_str(&mut sec, 0x00, 7, b"/upload");
        put_int(&mut sec, 0x80, 6, 2); // abs 0: x-device
        put_int(&mut sec, 0x80, 6, 1); // abs 1: content-encoding gzip
        let mut s0 = Vec::new();
        frame(&mut s0, HEADERS, &sec);
        let gz = gzip(format!("imei={IMEI}").as_bytes());
        let (g1, g2) = gz.split_at(gz.len() / 2);
        frame(&mut s0, DATA, g1);
        frame(&mut s0, 0x21, b"grease"); // reserved type 0x1f * 0 + 0x21
        frame(&mut s0, DATA, g2);
        // Request 4: static only (RIC 0), the phone number in the path, then trailers.
        let mut sec = vec![0x00, 0x00];
        put_int(&mut sec, 0xc0, 6, 17); // GET
        put_int(&mut sec, 0x50, 4, 1);
        put_str(&mut sec, 0x00, 7, format!("/p?n={PHONE}").as_bytes());
        let mut s4 = Vec::new();
        frame(&mut s4, HEADERS, &sec);
        frame(&mut s4, 0x1f * 7 + 0x21, &[0xff; 3]);
        let mut trailer = vec![0x00, 0x00];
        put_str(&mut trailer, 0x20, 3, b"x-trailer");
        put_str(&mut trailer, 0x00, 7, IMEI.as_bytes());
        frame(&mut s4, HEADERS, &trailer);
        let mut control = vec![0x00];
        let mut settings = Vec::new();
        put_varint(&mut settings, 0x01);
        put_varint(&mut settings, 4096);
        put_varint(&mut settings, 0x07);
        put_varint(&mut settings, 16);
        frame(&mut control, SETTINGS, &settings);
        frame(&mut control, 0x1f * 3 + 0x21, b"x");
        let mut unknown = Vec::new();
        put_varint(&mut unknown, 0x54); // WebTransport
        unknown.extend_from_slice(format!("raw {PHONE}").as_bytes());
        vec![
            (2, control, false),
            (0, s0, true),
            (6, enc, false),
            (10, vec![0x03, 0x80], false),
            (4, s4, true),
            (14, unknown, true),
        ]
    }

    /// Feeds the streams, each cut at `cuts` (stream offsets), interleaving the pieces stream by
    /// stream in turn, and numbering bytes in delivery order from 1000.
    fn run(m: &Matcher, streams: &Streams, cut: usize) -> (Http3Connection, Vec<Hit>, Vec<u64>) {
        let mut h = Http3Connection::new();
        let mut hits = Vec::new();
        let mut abs = 1000;
        // The position of each stream's last byte, to check hits against.
        let mut ends = Vec::new();
        let mut pieces: Vec<(u64, u64, &[u8], bool)> = Vec::new();
        for (id, bytes, fin) in streams {
            let c = cut.min(bytes.len());
            let (a, b) = bytes.split_at(c);
            if !a.is_empty() {
                pieces.push((*id, 0, a, *fin && b.is_empty()));
            }
            if !b.is_empty() {
                pieces.push((*id, c as u64, b, *fin));
            }
        }
        // First pieces of every stream, then the second pieces: the streams interleave.
        let (firsts, seconds): (Vec<_>, Vec<_>) = pieces.into_iter().partition(|p| p.1 == 0);
        for (id, off, piece, fin) in firsts.into_iter().chain(seconds) {
            h.feed(m, id, off, abs, piece, fin, &mut hits);
            abs += piece.len() as u64 + 7;
            ends.push(abs - 8);
        }
        h.finish(m, &mut hits);
        (h, hits, ends)
    }

    fn summary(hits: &[Hit]) -> Vec<String> {
        let mut v: Vec<String> = hits
            .iter()
            .map(|h| format!("{}:{}:{}", h.identifier, h.encoding, h.location))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn requests_with_a_dynamic_table_blocked_sections_bodies_and_unknown_streams() {
        let m = matcher();
        let streams = connection();
        let (h, hits, _) = run(&m, &streams, usize::MAX);
        assert_eq!(
            summary(&hits),
            vec![
                "0:gzip:http.body",
                "0:plain:http.header:x-device",
                "0:plain:http.header:x-trailer",
                "1:plain:http.url",
                "1:plain:quic.stream",
            ]
        );
        assert_eq!(h.host.as_deref(), Some("api.example.com"));
        assert_eq!((h.requests, h.desync, h.opaque), (2, 0, 0));
        assert!(h.blocked.is_empty() && h.streams.is_empty());
        // Every split point of every stream, the pieces interleaved: the same findings.
        let whole = summary(&hits);
        let longest = streams.iter().map(|s| s.1.len()).max().unwrap_or(0);
        for cut in 0..=longest {
            let (h, hits, _) = run(&m, &streams, cut);
            assert_eq!(summary(&hits), whole, "cut at {cut}");
            assert_eq!(h.desync, 0);
        }
    }

    /// A flush for memory gives up bodies, held and partial sections (searched where they were),
    /// keeps the framing: the stream's next frame is still read as HTTP/3.
    #[test]
    fn a_flush_releases_what_is_held_and_keeps_the_framing() {
        let m = matcher();
        let mut h = Http3Connection::new();
        let mut hits = Vec::new();
        // Stream 0: a section blocked on an insert never sent, then a body, no FIN.
        let mut sec = vec![0x02, 0x00, 0x80];
        put_int(&mut sec, 0x50, 4, 1);
        put_str(&mut sec, 0x00, 7, format!("/a?n={PHONE}").as_bytes());
        let mut s0 = Vec::new();
        frame(&mut s0, HEADERS, &sec);
        let headers_end = 1000 + s0.len() as u64 - 1;
        frame(&mut s0, DATA, format!("imei={IMEI}").as_bytes());
        h.feed(&m, 0, 0, 1000, &s0, false, &mut hits);
        // Stream 4: a section whose last byte has not come.
        let mut sec = vec![0x00, 0x00];
        put_int(&mut sec, 0x50, 4, 1);
        put_str(&mut sec, 0x00, 7, format!("/b?n={PHONE}").as_bytes());
        put_str(&mut sec, 0x20, 3, b"x-a");
        put_str(&mut sec, 0x00, 7, b"b");
        let mut s4 = Vec::new();
        frame(&mut s4, HEADERS, &sec);
        let (s4a, s4b) = s4.split_at(s4.len() - 1);
        h.feed(&m, 4, 0, 2000, s4a, false, &mut hits);
        assert!(hits.is_empty());
        assert!(h.buffered() > s0.len() / 2);

        h.flush(&m, &mut hits);
        assert_eq!(h.buffered(), 0);
        let mut found: Vec<_> = hits
            .iter()
            .map(|x| (x.identifier.to_string(), x.location.clone(), x.at))
            .collect();
        found.sort();
        let body_end = 1000 + s0.len() as u64 - 1;
        assert_eq!(
            found,
            vec![
                ("0".into(), "http.body".into(), body_end),
                ("1".into(), "quic.stream".into(), headers_end),
                (
                    "1".into(),
                    "quic.stream".into(),
                    2000 + s4a.len() as u64 - 1
                ),
            ]
        );
        // The rest of stream 4's section, then a trailer section: still framed.
        hits.clear();
        let mut rest = s4b.to_vec();
        let mut trailer = vec![0x00, 0x00];
        put_str(&mut trailer, 0x20, 3, b"x-trailer");
        put_str(&mut trailer, 0x00, 7, IMEI.as_bytes());
        frame(&mut rest, HEADERS, &trailer);
        h.feed(&m, 4, s4a.len() as u64, 3000, &rest, true, &mut hits);
        assert_eq!(summary(&hits), vec!["0:plain:http.header:x-trailer"]);
        assert_eq!(h.desync, 0);
    }

    #[test]
    fn hits_sit_on_the_frame_that_completed_them() {
        let m = matcher();
        let streams = connection();
        let (_, hits, ends) = run(&m, &streams, usize::MAX);
        // Delivery order: control (ends[0]), stream 0 (ends[1]), encoder (ends[2]), decoder,
        // stream 4 (ends[4]), unknown (ends[5]). Stream 0's HEADERS is its first frame.
        let s0 = &streams[1].1;
        let headers_end = 1000 + streams[0].1.len() as u64 + 7 + 1 + s0[1] as u64;
        let x_device = hits
            .iter()
            .find(|h| h.location == "http.header:x-device")
            .expect("x-device");
        assert_eq!(x_device.at, headers_end);
        let body = hits
            .iter()
            .find(|h| h.location == "http.body")
            .expect("body");
        assert_eq!(body.at, ends[1]);
        let raw = hits
            .iter()
            .find(|h| h.location == "quic.stream")
            .expect("raw");
        assert_eq!(raw.at, ends[5]);
    }

    #[test]
    fn a_lost_encoder_stream_desyncs_and_searches_raw() {
        let m = matcher();
        let mut streams = connection();
        // Bytes 5..13 of the encoder stream (inside its first insert) never arrive.
        let enc = std::mem::take(&mut streams[2].1);
        let mut h = Http3Connection::new();
        let mut hits = Vec::new();
        h.feed(&m, 0, 0, 0, &streams[1].1, true, &mut hits);
        assert_eq!(h.blocked.len(), 1);
        h.feed(&m, 6, 0, 400, &enc[..5], false, &mut hits);
        assert!(h.qpack.is_some());
        h.feed(&m, 6, 13, 500, &enc[13..], false, &mut hits);
        assert!(h.qpack.is_none());
        assert_eq!(h.desync, 1);
        h.finish(&m, &mut hits);
        // The IMEI inserted on the encoder stream is still found, raw; the held section was
        // searched raw and the body that waited with it searched as sent (its coding unknown).
        assert_eq!(summary(&hits), vec!["0:plain:quic.stream"]);
        assert_eq!(h.buffered(), 0);
    }

    #[test]
    fn an_encoder_stream_whose_start_was_missed_is_searched_raw() {
        let m = matcher();
        let streams = connection();
        let enc = &streams[2].1;
        let mut h = Http3Connection::new();
        let mut hits = Vec::new();
        h.feed(&m, 0, 0, 0, &streams[1].1, true, &mut hits);
        h.feed(&m, 6, 13, 500, &enc[13..], false, &mut hits);
        // QPACK goes on (static-only sections still decode); the section that needs the missed
        // inserts stays held, and is searched raw at the end.
        assert!(h.qpack.is_some() && h.blocked.len() == 1);
        h.finish(&m, &mut hits);
        assert_eq!(summary(&hits), vec!["0:plain:quic.stream"]);
        assert_eq!(h.buffered(), h.qpack.as_ref().map_or(0, |q| q.buffered()));
    }

    #[test]
    fn a_gap_in_a_request_stream_searches_the_rest_raw() {
        let m = matcher();
        let mut s = Vec::new();
        frame(&mut s, DATA, b"aaaa");
        let mut h = Http3Connection::new();
        let mut hits = Vec::new();
        h.feed(&m, 8, 0, 0, &s, false, &mut hits);
        let tail = format!("xx{IMEI}yy");
        h.feed(&m, 8, 50, 100, tail.as_bytes(), false, &mut hits);
        h.feed(
            &m,
            8,
            50 + tail.len() as u64,
            200,
            PHONE.as_bytes(),
            true,
            &mut hits,
        );
        h.finish(&m, &mut hits);
        let got: Vec<String> = hits
            .iter()
            .map(|h| format!("{}:{}@{}", h.identifier, h.location, h.at))
            .collect();
        assert_eq!(
            got,
            vec![
                format!("0:quic.stream@{}", 100 + 2 + IMEI.len() - 1),
                format!("1:quic.stream@{}", 200 + PHONE.len() - 1),
            ]
        );
    }

    #[test]
    fn caps_hold() {
        let m = matcher();
        let mut h = Http3Connection::new();
        let mut hits = Vec::new();
        let mut abs = 0;
        // 300 request streams that never end, each with 64 KiB of body.
        for i in 0..300u64 {
            let mut s = Vec::new();
            frame(&mut s, HEADERS, &[0x00, 0x00, 0xd1]);
            frame(&mut s, DATA, &[b'x'; 65536]);
            h.feed(&m, 4 * i, 0, abs, &s, false, &mut hits);
            abs += s.len() as u64;
            assert!(h.streams.len() <= MAX_STREAMS);
            assert!(h.held <= MAX_BODIES);
        }
        assert!(
            h.buffered() <= MAX_BODIES + MAX_STREAMS * 16,
            "{}",
            h.buffered()
        );
        // 40 sections blocked on inserts that never come.
        for i in 0..40u64 {
            let mut s = Vec::new();
            frame(&mut s, HEADERS, &[0x05, 0x00, 0x80]);
            h.feed(&m, 4000 + 4 * i, 0, abs, &s, true, &mut hits);
            abs += s.len() as u64;
        }
        assert!(h.blocked.len() <= MAX_BLOCKED);
        assert_eq!(h.desync, 1, "the 17th blocked section gave up on QPACK");
        h.finish(&m, &mut hits);
        assert_eq!(h.buffered(), 0);
    }

    /// The client streams of a real exchange: ngtcp2's gtlsclient POSTing three requests to
    /// gtlsserver, decrypted by tshark with the client's key log
    /// (`tests/data/h3/make-ngtcp2-streams.sh`). The first request already uses the dynamic
    /// table, and its encoder stream comes in the same packet. What was found is checked against
    /// what gtlsclient was told to send (Debian's tshark 4.0 has no QPACK to compare with).
    #[test]
    fn ngtcp2_requests() {
        let text = include_str!("../tests/data/h3/ngtcp2-streams.txt");
        let m = matcher();
        let mut h = Http3Connection::new();
        let mut hits = Vec::new();
        let mut abs = 0;
        // (frame, first position, last position) of each delivery, to name a hit's frame.
        let mut frames: Vec<(u64, u64, u64)> = Vec::new();
        let mut seen = std::collections::HashMap::<u64, u64>::new();
        for line in text.lines() {
            let w: Vec<&str> = line.split(' ').collect();
            let (frame, id, off) = (
                w[0].parse::<u64>().expect("frame"),
                w[1].parse::<u64>().expect("stream"),
                w[2].parse::<u64>().expect("offset"),
            );
            let data = hex::decode(w.get(4).copied().unwrap_or("")).expect("hex");
            // A reassembler delivers each byte once: retransmissions are trimmed.
            let next = seen.entry(id).or_default();
            let skip = next.saturating_sub(off).min(data.len() as u64) as usize;
            let new = &data[skip..];
            if new.is_empty() && w[3] != "1" {
                continue;
            }
            if !new.is_empty() || *next == off + data.len() as u64 {
                h.feed(&m, id, off + skip as u64, abs, new, w[3] == "1", &mut hits);
                frames.push((frame, abs, abs + new.len() as u64));
                *next = (*next).max(off + data.len() as u64);
                abs += new.len() as u64;
            }
        }
        h.finish(&m, &mut hits);
        assert_eq!(h.host.as_deref(), Some("127.0.0.1"));
        assert_eq!((h.requests, h.desync), (3, 0));
        let mut got: Vec<String> = hits
            .iter()
            .map(|x| {
                let frame = frames
                    .iter()
                    .find(|(_, a, b)| (*a..*b).contains(&x.at))
                    .map_or(0, |f| f.0);
                format!("{}:{}:{}@{frame}", x.identifier, x.encoding, x.location)
            })
            .collect();
        got.sort();
        // Two paths carry the IMEI, three bodies `imei=…`; all in frame 4.
        assert_eq!(
            got,
            vec![
                "0:plain:http.body@4",
                "0:plain:http.body@4",
                "0:plain:http.body@4",
                "0:plain:http.url@4",
                "0:plain:http.url@4",
            ]
        );
    }

    #[test]
    fn hostile_streams_never_panic() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let base = connection();
        for round in 0..3000 {
            let mut data = Vec::new();
            for (id, bytes, fin) in &base {
                let mut bytes = bytes.clone();
                if round % 2 == 0 {
                    for _ in 0..3 {
                        let i = next() as usize % bytes.len();
                        bytes[i] = next() as u8;
                    }
                } else {
                    bytes = (0..next() % 80).map(|_| next() as u8).collect();
                }
                for chunk in bytes.chunks(1 + next() as usize % 40) {
                    data.push(*id as u8);
                    data.push(if next() % 16 == 0 {
                        0x85
                    } else {
                        u8::from(*fin)
                    });
                    data.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                    data.extend_from_slice(chunk);
                }
            }
            fuzz_streams(&data);
        }
    }
}
