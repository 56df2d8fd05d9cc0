//! HTTP/1.x requests in a client→server byte stream: request line, headers, bodies.
//!
//! Owns request framing (httparse for the head; Content-Length and chunked bodies; several requests
//! per connection), body decoding (gzip/deflate via flate2, brotli, with an output limit), decoded layers inside
//! each piece (see `Matcher::scan_layers`), and searching the
//! request target (`http.url`), each header value (`http.header:Name`, name as sent) and the body
//! (`http.body`) with the shared `Matcher`. A stream that stops looking like HTTP is handed back to
//! the caller as raw bytes.
//!
//! Memory: the head is buffered up to `MAX_HEAD`, a body up to `MAX_BODY` (the rest is counted as
//! opaque), a decoded body up to `MAX_DECODED`. CPU: a compressed body inflates to at most
//! `DECODE_FLOOR + MAX_DECODE_RATIO ×` its compressed size, and to at most `decode_budget` bytes,
//! which the caller shares between all streams of a capture; a body cut by either limit is searched
//! as far as it was decoded and counted opaque (`decode_cut`).
//!
//! Must not touch: packets, flows, I/O.

use std::cell::RefCell;
use std::io::Read as _;

use super::matcher::{Hit, Matcher, add_layer};

pub const MAX_HEAD: usize = 64 << 10;
pub const MAX_BODY: usize = 1 << 20;
pub const MAX_DECODED: u64 = 8 << 20;
/// Inflation allowed per compressed byte: real JSON and form bodies compress 5–20×; a "bomb"
/// (megabytes of one repeated byte) reaches 1000× with gzip and far more with brotli.
pub const MAX_DECODE_RATIO: u64 = 32;
/// Decoded bytes always allowed per body, whatever its compressed size.
pub const DECODE_FLOOR: u64 = 64 << 10;
/// `decode_budget` of a new stream: what one stream may decode when the caller does not share a
/// budget.
pub const DEFAULT_DECODE_BUDGET: u64 = 16 << 20;
const MAX_HEADERS: usize = 128;
const MAX_CHUNK_LINE: usize = 4096;

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// `Some(true)` if the stream starts with an HTTP method, `None` if too few bytes to tell.
pub fn looks_like_http(start: &[u8]) -> Option<bool> {
    let mut maybe = false;
    for m in METHODS {
        if start.len() >= m.len() {
            if start.starts_with(m) {
                return Some(true);
            }
        } else if m.starts_with(start) {
            maybe = true;
        }
    }
    if maybe { None } else { Some(false) }
}

#[derive(Debug)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
}

#[derive(Debug)]
struct Body {
    framing: Framing,
    content: BodyBuf,
}

/// A message body as it is collected, up to `MAX_BODY`, and searched (decoded first) when it
/// ends. Shared by HTTP/1.x and HTTP/2 (one per stream).
#[derive(Debug, Default)]
pub(crate) struct BodyBuf {
    /// `gzip` / `deflate` / `brotli` when the body must be decoded; other codings are `other`.
    pub coding: Option<&'static str>,
    data: Vec<u8>,
    /// (offset in `data`, absolute stream offset, length) of each stored piece.
    map: Vec<(usize, u64, usize)>,
    /// Absolute offset of the last byte consumed for this message.
    pub last_abs: u64,
}

/// The counters a finished body adds to: bytes not inspected, the decode budget left, bodies cut.
pub(crate) struct Tally<'a> {
    pub opaque: &'a mut u64,
    pub decode_budget: &'a mut u64,
    pub decode_cut: &'a mut u64,
}

impl BodyBuf {
    pub fn new(coding: Option<&'static str>, last_abs: u64) -> Self {
        BodyBuf {
            coding,
            last_abs,
            ..Default::default()
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Keeps `piece` (at stream offset `abs`) as far as `MAX_BODY` allows; the rest is opaque.
    pub fn store(&mut self, piece: &[u8], abs: u64, opaque: &mut u64) {
        let room = MAX_BODY.saturating_sub(self.data.len()).min(piece.len());
        if room > 0 {
            self.map.push((self.data.len(), abs, room));
            self.data.extend_from_slice(&piece[..room]);
        }
        *opaque += (piece.len() - room) as u64;
    }

    /// Searches the body: decoded when it has a coding (within the limits), else as sent.
    pub fn finish(self, m: &Matcher, hits: &mut Vec<Hit>, t: Tally<'_>) {
        let b = self;
        if b.data.is_empty() {
            return;
        }
        if let Some(coding) = b.coding {
            let limit = MAX_DECODED
                .min(
                    DECODE_FLOOR
                        .saturating_add(MAX_DECODE_RATIO.saturating_mul(b.data.len() as u64)),
                )
                .min(*t.decode_budget);
            if limit == 0 {
                *t.decode_cut += 1;
            }
            let mut decoded_len = None;
            with_decoded(coding, &b.data, limit, |decoded, cut| {
                decoded_len = Some(decoded.len() as u64);
                if cut {
                    // Not inspected in full: what was decoded is searched, the body counts opaque.
                    *t.decode_cut += 1;
                    *t.opaque += b.data.len() as u64;
                }
                let before = hits.len();
                scan(m, decoded, || "http.body".to_string(), hits, |_| b.last_abs);
                for h in &mut hits[before..] {
                    h.encoding = add_layer(&h.encoding, coding);
                }
            });
            if let Some(len) = decoded_len {
                *t.decode_budget -= len.min(*t.decode_budget);
                return;
            }
            // Undecodable: still searched as sent, but counted as not inspected.
            *t.opaque += b.data.len() as u64;
        }
        let map = &b.map;
        scan(
            m,
            &b.data,
            || "http.body".to_string(),
            hits,
            |end| {
                let i = map.partition_point(|(s, _, _)| *s <= end).saturating_sub(1);
                map.get(i)
                    .map(|(s, a, _)| a + (end - s) as u64)
                    .unwrap_or(b.last_abs)
            },
        );
    }
}

/// The decoding a `Content-Encoding` value asks for: `None` for none (or identity), `other` for
/// one we cannot decode.
pub(crate) fn coding_of(value: &str) -> Option<&'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => None,
        "gzip" | "x-gzip" => Some("gzip"),
        "deflate" => Some("deflate"),
        "br" => Some("brotli"),
        _ => Some("other"),
    }
}

#[derive(Debug)]
enum State {
    Head,
    Body(Body),
}

/// The request side of one HTTP/1.x connection.
#[derive(Debug)]
pub struct HttpStream {
    buf: Vec<u8>,
    /// Absolute stream offset of `buf[0]`.
    buf_abs: u64,
    state: State,
    /// The first request's `Host`, without port.
    pub host: Option<String>,
    /// Body bytes not inspected (over the cap, or in a coding that could not be decoded).
    pub opaque: u64,
    pub requests: u64,
    /// Decoded body bytes this stream may still produce (the caller may refill and share it).
    pub decode_budget: u64,
    /// Bodies whose decoding stopped at a limit (ratio or budget).
    pub decode_cut: u64,
}

/// The decode budget (`.0`) and cut-bodies count (`.1`) of a stream that decodes bodies, which the
/// flow reader refills from and returns to the capture's shared budget.
pub(crate) trait DecodeCounters {
    fn decode_counters(&mut self) -> (&mut u64, &mut u64);
}

impl<T: DecodeCounters> DecodeCounters for Box<T> {
    fn decode_counters(&mut self) -> (&mut u64, &mut u64) {
        self.as_mut().decode_counters()
    }
}

impl DecodeCounters for HttpStream {
    fn decode_counters(&mut self) -> (&mut u64, &mut u64) {
        (&mut self.decode_budget, &mut self.decode_cut)
    }
}

/// Bytes that stopped parsing as HTTP, for the caller to search raw.
#[derive(Debug)]
pub struct Unparsed {
    pub abs: u64,
    pub bytes: Vec<u8>,
}

impl HttpStream {
    pub fn new(abs: u64) -> Self {
        HttpStream {
            buf: Vec::new(),
            buf_abs: abs,
            state: State::Head,
            host: None,
            opaque: 0,
            requests: 0,
            decode_budget: DEFAULT_DECODE_BUDGET,
            decode_cut: 0,
        }
    }

    /// Feeds the next in-order bytes (absolute offset `abs`). A gap or bytes that are not HTTP end
    /// the parsing: the bytes not yet searched come back as `Unparsed`.
    pub fn feed(
        &mut self,
        m: &Matcher,
        abs: u64,
        data: &[u8],
        hits: &mut Vec<Hit>,
    ) -> Result<(), Unparsed> {
        if abs != self.buf_abs + self.buf.len() as u64 {
            // A message cannot be framed across missing bytes: finish what we have, raw from here.
            self.finish(m, hits);
            return Err(Unparsed {
                abs,
                bytes: data.to_vec(),
            });
        }
        self.buf.extend_from_slice(data);
        loop {
            let progressed = match &mut self.state {
                State::Head => self.head(m, hits)?,
                State::Body(_) => self.body(m, hits)?,
            };
            if !progressed {
                return Ok(());
            }
        }
    }

    /// End of stream: search whatever was buffered.
    pub fn finish(&mut self, m: &Matcher, hits: &mut Vec<Hit>) {
        match std::mem::replace(&mut self.state, State::Head) {
            State::Body(b) => self.finish_body(b, m, hits),
            State::Head => {
                if !self.buf.is_empty() {
                    scan(
                        m,
                        &self.buf,
                        || "tcp.payload".to_string(),
                        hits,
                        |off| self.buf_abs + off as u64,
                    );
                }
            }
        }
        self.buf_abs += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Bytes held: the unparsed head or chunk line, and the body collected so far.
    pub fn buffered(&self) -> usize {
        let body = match &self.state {
            State::Body(b) => b.content.len(),
            State::Head => 0,
        };
        self.buf.len() + body
    }

    fn fail(&mut self) -> Unparsed {
        self.state = State::Head;
        let bytes = std::mem::take(&mut self.buf);
        Unparsed {
            abs: self.buf_abs,
            bytes,
        }
    }

    /// Drops `n` parsed bytes from the front of the buffer; returns the absolute offset of the last.
    fn consume(&mut self, n: usize) -> u64 {
        self.buf.drain(..n);
        self.buf_abs += n as u64;
        self.buf_abs.saturating_sub(1)
    }

    fn head(&mut self, m: &Matcher, hits: &mut Vec<Hit>) -> Result<bool, Unparsed> {
        // Blank lines between requests are tolerated (RFC 9112 §2.2).
        let blank = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 {
            self.consume(blank);
        }
        if self.buf.is_empty() {
            return Ok(false);
        }
        if looks_like_http(&self.buf) == Some(false) {
            return Err(self.fail());
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let base = self.buf.as_ptr() as usize;
        let n = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.buf.len() > MAX_HEAD {
                    return Err(self.fail());
                }
                return Ok(false);
            }
            Err(_) => return Err(self.fail()),
        };
        let abs = self.buf_abs;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut coding: Option<&'static str> = None;
        let mut host = None;
        // Search the request target and every header value where they lie in the buffer; a
        // location string is only built for a value that holds something.
        if let Some(p) = req.path {
            let off = p.as_ptr() as usize - base;
            scan(
                m,
                p.as_bytes(),
                || "http.url".to_string(),
                hits,
                |e| abs + (off + e) as u64,
            );
        }
        for h in req.headers.iter() {
            let off = h.value.as_ptr() as usize - base;
            let name = h.name;
            scan(
                m,
                h.value,
                || format!("http.header:{name}"),
                hits,
                |e| abs + (off + e) as u64,
            );
            let value = || String::from_utf8_lossy(h.value).trim().to_ascii_lowercase();
            if name.eq_ignore_ascii_case("content-length") {
                length = value().parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value().split(',').any(|t| t.trim() == "chunked");
            } else if name.eq_ignore_ascii_case("content-encoding") {
                coding = coding_of(&value());
            } else if name.eq_ignore_ascii_case("host") && host.is_none() {
                host = Some(strip_port(String::from_utf8_lossy(h.value).trim()));
            }
        }
        self.requests += 1;
        if self.host.is_none() {
            self.host = host;
        }
        let last_abs = self.consume(n);
        let framing = if chunked {
            Some(Framing::Chunked(Chunk::Size))
        } else {
            length.filter(|l| *l > 0).map(Framing::Length)
        };
        if let Some(framing) = framing {
            self.state = State::Body(Body {
                framing,
                content: BodyBuf::new(coding, last_abs),
            });
        }
        Ok(true)
    }

    fn body(&mut self, m: &Matcher, hits: &mut Vec<Hit>) -> Result<bool, Unparsed> {
        let State::Body(b) = &mut self.state else {
            return Ok(false);
        };
        if self.buf.is_empty() {
            return Ok(false);
        }
        let mut done = false;
        let take: usize;
        match &mut b.framing {
            Framing::Length(rem) => {
                take = (*rem).min(self.buf.len() as u64) as usize;
                b.content
                    .store(&self.buf[..take], self.buf_abs, &mut self.opaque);
                let State::Body(b) = &mut self.state else {
                    return Ok(false);
                };
                if let Framing::Length(rem) = &mut b.framing {
                    *rem -= take as u64;
                    done = *rem == 0;
                }
            }
            Framing::Chunked(Chunk::Data(rem)) => {
                take = (*rem).min(self.buf.len() as u64) as usize;
                let rem_after = *rem - take as u64;
                if rem_after == 0 {
                    b.framing = Framing::Chunked(Chunk::DataEnd);
                } else {
                    b.framing = Framing::Chunked(Chunk::Data(rem_after));
                }
                b.content
                    .store(&self.buf[..take], self.buf_abs, &mut self.opaque);
            }
            Framing::Chunked(Chunk::DataEnd) => {
                take = match self.buf.as_slice() {
                    [b'\n', ..] => 1,
                    [b'\r', b'\n', ..] => 2,
                    [b'\r'] => return Ok(false),
                    _ => return Err(self.fail()),
                };
                b.framing = Framing::Chunked(Chunk::Size);
            }
            Framing::Chunked(state @ (Chunk::Size | Chunk::Trailer)) => {
                let Some(nl) = self.buf.iter().position(|&c| c == b'\n') else {
                    if self.buf.len() > MAX_CHUNK_LINE {
                        return Err(self.fail());
                    }
                    return Ok(false);
                };
                let line = String::from_utf8_lossy(&self.buf[..nl]);
                let line = line.trim();
                take = nl + 1;
                if matches!(state, Chunk::Trailer) {
                    done = line.is_empty();
                } else {
                    let size = line.split(';').next().unwrap_or("").trim();
                    match u64::from_str_radix(size, 16) {
                        Ok(0) => *state = Chunk::Trailer,
                        Ok(n) => *state = Chunk::Data(n),
                        Err(_) => return Err(self.fail()),
                    }
                }
            }
        }
        let last = self.consume(take);
        if let State::Body(b) = &mut self.state {
            b.content.last_abs = last;
        }
        if done && let State::Body(b) = std::mem::replace(&mut self.state, State::Head) {
            self.finish_body(b, m, hits);
        }
        Ok(true)
    }

    fn finish_body(&mut self, b: Body, m: &Matcher, hits: &mut Vec<Hit>) {
        let tally = Tally {
            opaque: &mut self.opaque,
            decode_budget: &mut self.decode_budget,
            decode_cut: &mut self.decode_cut,
        };
        b.content.finish(m, hits, tally);
    }
}

/// Searches `hay`; `location` names the place (built only if something is found), `abs_of` maps
/// the offset of a match's last byte to its absolute stream offset.
pub(crate) fn scan(
    m: &Matcher,
    hay: &[u8],
    location: impl Fn() -> String,
    hits: &mut Vec<Hit>,
    abs_of: impl Fn(usize) -> u64,
) {
    for r in m.scan_layers(hay, true) {
        hits.push(Hit {
            identifier: r.identifier,
            encoding: r.encoding,
            location: location(),
            at: abs_of(r.end - 1),
        });
    }
}

thread_local! {
    /// Decoded bodies are written here, one after the other: a new buffer per body cost an
    /// allocation, zeroing and fresh pages each time (a capture of many short flows holds tens of
    /// thousands of small gzip bodies).
    static DECODED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Room kept for the next body; a larger one (a body of several MiB) is given back.
const DECODED_KEEP: usize = 256 << 10;

/// Decodes a gzip/deflate/brotli body, up to `limit` bytes, and gives `use_it` the decoded bytes
/// and `true` when the body decodes to more than that (the output is cut at `limit`). A body cut
/// short (end of capture) still yields what could be decoded. `use_it` is not called when nothing
/// decodes (unknown coding, not that coding, empty output).
fn with_decoded(coding: &str, data: &[u8], limit: u64, use_it: impl FnOnce(&[u8], bool)) {
    use crate::inflate::{self, Inflated};
    DECODED.with(|cell| {
        let Ok(mut out) = cell.try_borrow_mut() else {
            return;
        };
        let out = &mut *out;
        out.clear();
        let how = match coding {
            "gzip" => inflate::gzip(data, limit, out),
            // `deflate` is zlib-wrapped by the spec, raw deflate by some servers.
            "deflate" => match inflate::zlib(data, limit, out) {
                Inflated::Cut if out.is_empty() => Some(inflate::raw_deflate(data, limit, out)),
                how => Some(how),
            },
            "brotli" => {
                // One byte past the limit tells a body of exactly `limit` bytes from a longer one.
                let mut r = brotli::Decompressor::new(data, 4096).take(limit + 1);
                let _ = r.read_to_end(out);
                Some(if out.len() as u64 > limit {
                    Inflated::OverLimit
                } else {
                    Inflated::Whole
                })
            }
            _ => None,
        };
        if let Some(how) = how {
            out.truncate(limit as usize);
            if !out.is_empty() {
                use_it(out, how == Inflated::OverLimit);
            }
        }
        out.clear();
        if out.capacity() > DECODED_KEEP {
            out.shrink_to(DECODED_KEEP);
        }
    });
}

/// `host:port` → `host`, `[v6]:port` → `v6`.
pub fn strip_port(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifier::Identifier;
    use std::io::Write as _;

    const IMEI: &str = "356938035643809";

    fn matcher() -> Matcher {
        Matcher::new(&[
            Identifier::new("imei", IMEI),
            Identifier::new("phone_number", "+6598765432"),
        ])
    }

    fn run(stream: &[u8], cuts: &[usize]) -> (HttpStream, Vec<Hit>) {
        let m = matcher();
        let mut h = HttpStream::new(1000);
        let mut hits = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
            h.feed(&m, 1000 + prev as u64, &stream[prev..c], &mut hits)
                .expect("http");
            prev = c;
        }
        h.finish(&m, &mut hits);
        (h, hits)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    fn summary(hits: &[Hit]) -> Vec<String> {
        hits.iter()
            .map(|h| format!("{}:{}:{}", h.identifier, h.encoding, h.location))
            .collect()
    }

    #[test]
    fn url_headers_and_bodies_of_pipelined_requests() {
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "+6598765432");
        let gz = gzip(format!("imei={IMEI}").as_bytes());
        let mut s = Vec::new();
        s.extend_from_slice(
            format!("GET /a?i={IMEI} HTTP/1.1\r\nHost: api.example.com:8080\r\nX-P: {b64}\r\n\r\n")
                .as_bytes(),
        );
        let body = format!("imei={IMEI}");
        s.extend_from_slice(
            format!(
                "POST /b HTTP/1.1\r\nHost: other\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        s.extend_from_slice(
            format!(
                "POST /c HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                gz.len()
            )
            .as_bytes(),
        );
        s.extend_from_slice(&gz);
        s.extend_from_slice(b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n35693\r\na;x=1\r\n8035643809\r\n0\r\nT: 1\r\n\r\n");
        let whole = run(&s, &[]);
        assert_eq!(
            summary(&whole.1),
            vec![
                "0:plain:http.url",
                "1:base64:http.header:X-P",
                "0:plain:http.body",
                "0:gzip:http.body",
                "0:plain:http.body"
            ]
        );
        assert_eq!(whole.0.host.as_deref(), Some("api.example.com"));
        assert_eq!(whole.0.requests, 4);
        // Any split of the stream finds the same, at the same offsets.
        for cut in (1..s.len()).step_by(7) {
            let split = run(&s, &[cut]);
            assert_eq!(split.1, whole.1, "cut {cut}");
        }
        // The plain body match completes at the last IMEI byte of request 2.
        let body_end = s
            .windows(body.len())
            .position(|w| w == body.as_bytes())
            .unwrap()
            + body.len();
        assert_eq!(whole.1[2].at, 1000 + body_end as u64 - 1);
        // The chunked match completes in the second chunk's data.
        let chunk2 = s.windows(10).rposition(|w| w == b"8035643809").unwrap();
        assert_eq!(whole.1[4].at, 1000 + chunk2 as u64 + 9);
    }

    #[test]
    fn not_http_is_handed_back() {
        let m = matcher();
        let mut h = HttpStream::new(0);
        let mut hits = Vec::new();
        let err = h.feed(
            &m,
            0,
            b"GET / HTTP/1.1\r\n\x00\x01garbage\r\n\r\n",
            &mut hits,
        );
        assert!(err.is_err());
        let mut h = HttpStream::new(0);
        h.feed(&m, 0, b"GET / HTTP/1.1\r\n\r\n", &mut hits)
            .expect("ok");
        let err = h
            .feed(&m, 18, b"\x16\x03\x01binary", &mut hits)
            .unwrap_err();
        assert_eq!(err.abs, 18);
    }

    #[test]
    fn caps_hold() {
        let m = matcher();
        let mut h = HttpStream::new(0);
        let mut hits = Vec::new();
        let head = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            3 * MAX_BODY
        );
        h.feed(&m, 0, head.as_bytes(), &mut hits).expect("head");
        let chunk = vec![b'x'; 64 << 10];
        let mut at = head.len() as u64;
        for _ in 0..(3 * MAX_BODY / chunk.len()) {
            h.feed(&m, at, &chunk, &mut hits).expect("body");
            at += chunk.len() as u64;
        }
        assert_eq!(h.opaque, 2 * MAX_BODY as u64);
        let mut h = HttpStream::new(0);
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert!(h.feed(&m, 0, &big, &mut hits).is_err());
    }

    #[test]
    fn a_gzip_bomb_is_cut_at_the_ratio_and_reported() {
        let m = matcher();
        // 8 MiB of `a` with the IMEI at the very end: gzip makes it ~8 KB.
        let mut plain = vec![b'a'; 8 << 20];
        plain.extend_from_slice(IMEI.as_bytes());
        let body = gzip(&plain);
        assert!(body.len() < 64 << 10, "{}", body.len());
        let mut stream = format!(
            "POST /u HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        stream.extend_from_slice(&body);
        let (h, hits) = run(&stream, &[]);
        // Cut at 64 KiB + 32 × the compressed size, long before the IMEI: not found, reported.
        assert!(hits.is_empty(), "{:?}", summary(&hits));
        assert_eq!(h.decode_cut, 1);
        assert_eq!(h.opaque, body.len() as u64);
        let limit = DECODE_FLOOR + MAX_DECODE_RATIO * body.len() as u64;
        assert_eq!(h.decode_budget, DEFAULT_DECODE_BUDGET - limit);

        // An ordinary body decodes in full, within the ratio.
        let small = gzip(format!("{{\"imei\":\"{IMEI}\"}}").as_bytes());
        let mut stream = format!(
            "POST /u HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            small.len()
        )
        .into_bytes();
        stream.extend_from_slice(&small);
        let (h, hits) = run(&stream, &[]);
        assert_eq!(summary(&hits), vec!["0:gzip:http.body"]);
        assert_eq!((h.decode_cut, h.opaque), (0, 0));

        // An exhausted shared budget: nothing more is decoded; the body is searched as sent.
        let mut h = HttpStream::new(0);
        h.decode_budget = 0;
        let mut hits = Vec::new();
        h.feed(&m, 0, &stream, &mut hits).expect("http");
        h.finish(&m, &mut hits);
        assert!(hits.is_empty());
        assert_eq!((h.decode_cut, h.opaque), (1, small.len() as u64));
    }

    #[test]
    fn method_detection_and_ports() {
        assert_eq!(looks_like_http(b"PO"), None);
        assert_eq!(looks_like_http(b"POST /"), Some(true));
        assert_eq!(looks_like_http(b"\x16\x03"), Some(false));
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("a.b"), "a.b");
    }
}
