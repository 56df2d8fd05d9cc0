//! The client→server byte stream of a TCP flow: which protocol it speaks (decided from its first
//! bytes), and the reader for it — TLS up to the ClientHello (then opaque), HTTP/1.x, HTTP/2 with
//! prior knowledge (h2c, from its preface), DNS over TCP, or raw bytes searched as they come.
//!
//! Must not touch: reassembly (bytes arrive in order, with their stream offset), flow lifecycles.

use std::collections::HashSet;

use crate::dns::{self, DNS_PORTS};
use crate::http::{DecodeCounters, HttpStream, looks_like_http};
use crate::http2::{Http2Stream, looks_like_h2};
use crate::matcher::{Hit, Matcher, StreamScanner};
use crate::sink::Sink;
use crate::tls::stream::KeyView;
use crate::tls::{self, MAX_HELLO};
use crate::{DnsQuery, Protocol, Timestamp};

use super::decrypted::{self, Side, TlsFlow};
use super::limits::Note;
use super::table::FxBuild;
use super::{FlowState, NewFinding};

/// What reads the client→server byte stream.
#[derive(Debug)]
pub(crate) enum Reader {
    /// Waiting for the first bytes to pick a protocol.
    Detect {
        abs: u64,
        buf: Vec<u8>,
    },
    Tls {
        abs: u64,
        buf: Vec<u8>,
    },
    /// Past the ClientHello: records followed, decrypted with a key log (boxed: most flows are
    /// not TLS).
    TlsData(Box<TlsFlow>),
    /// Encrypted, or otherwise not read.
    Opaque,
    /// Boxed: most flows never carry HTTP, and the state would make every flow bigger.
    Http(Box<HttpStream>),
    /// HTTP/2 with prior knowledge (h2c): reported as `http`.
    Http2(Box<Http2Stream>),
    /// DNS over TCP: 2-byte length, message.
    DnsTcp {
        abs: u64,
        buf: Vec<u8>,
    },
    Raw(StreamScanner),
}

impl Reader {
    pub fn new() -> Self {
        Reader::Detect {
            abs: 0,
            buf: Vec::new(),
        }
    }

    /// The reader of a flow that continues one ended earlier: a TLS stream stays encrypted; an
    /// HTTP connection starts a new request; anything else is searched raw.
    pub fn resumed(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Tls | Protocol::Quic => Reader::Opaque,
            Protocol::Http => Reader::Http(Box::new(HttpStream::new(0))),
            _ => Reader::Raw(StreamScanner::at(0)),
        }
    }

    /// Bytes the reader holds for later.
    /// Fixed state kept beyond a flow's `FLOW_STATE_BYTES` (a decrypting TLS flow's keys and
    /// record state); what is held for later is `buffered`.
    pub fn state_bytes(&self) -> usize {
        match self {
            Reader::TlsData(t) => t.state_bytes(),
            _ => 0,
        }
    }

    pub fn buffered(&self) -> usize {
        match self {
            Reader::Detect { buf, .. } | Reader::Tls { buf, .. } | Reader::DnsTcp { buf, .. } => {
                buf.len()
            }
            Reader::Http(h) => h.buffered(),
            Reader::Http2(h) => h.buffered(),
            Reader::TlsData(t) => t.buffered(),
            Reader::Opaque | Reader::Raw(_) => 0,
        }
    }
}

/// Names (DNS questions, TLS SNI) already searched and found clean. A handset asks for the same
/// few dozen names all day: each is searched once, not once per lookup.
#[derive(Debug, Default)]
pub(crate) struct CleanNames(HashSet<Box<str>, FxBuild>);

/// Names remembered as clean at most; then the memory starts over.
const CLEAN_NAMES: usize = 4096;

impl CleanNames {
    /// The identifiers in `name`, as (identifier, encoding) — see `dns::scan_name`.
    pub fn scan(&mut self, m: &Matcher, name: &str) -> Vec<(usize, String)> {
        if self.0.contains(name) {
            return Vec::new();
        }
        let found = dns::scan_name(m, name);
        if found.is_empty() {
            if self.0.len() >= CLEAN_NAMES {
                self.0.clear();
            }
            self.0.insert(name.into());
        }
        found
    }
}

/// What readers share with the engine while they read.
pub(crate) struct Context<'a, S> {
    pub matcher: &'a Matcher,
    /// Key logs for TLS decryption.
    pub keys: &'a KeyView,
    pub names: &'a mut CleanNames,
    /// Decoded HTTP body bytes the capture may still produce.
    pub decode_budget: &'a mut u64,
    pub decode_cut: &'a mut Note,
    pub sink: &'a mut S,
    pub frame: u64,
    pub ts: Timestamp,
}

impl<S: Sink> Context<'_, S> {
    /// Runs `step` on an HTTP stream with the capture's decode budget, noting bodies it cut.
    fn with_budget<H: DecodeCounters, R>(
        &mut self,
        h: &mut H,
        step: impl FnOnce(&mut H) -> R,
    ) -> R {
        *h.decode_counters().0 = *self.decode_budget;
        let cut = *h.decode_counters().1;
        let r = step(h);
        let (budget, now_cut) = h.decode_counters();
        *self.decode_budget = *budget;
        if *now_cut > cut {
            self.decode_cut.add(self.frame, *now_cut - cut);
        }
        r
    }
}

/// Feeds in-order client bytes at stream offset `at` to the flow's reader, switching readers as the
/// protocol becomes known. Stream hits go to `hits`; findings about names (DNS questions) are
/// recorded in the flow directly.
pub(crate) fn read<S: Sink>(
    f: &mut FlowState,
    ctx: &mut Context<'_, S>,
    at: u64,
    data: &[u8],
    hits: &mut Vec<Hit>,
) {
    let m = ctx.matcher;
    loop {
        match &mut f.reader {
            Reader::Detect { abs, buf } => {
                if *abs + buf.len() as u64 != at {
                    // A gap before we could tell: search it raw.
                    let mut s = StreamScanner::at(*abs);
                    raw(&mut s, m, *abs, &buf.clone(), hits);
                    f.reader = Reader::Raw(s);
                    continue;
                }
                // Most streams tell their protocol in their first segment: no copy then.
                let owned;
                let bytes: &[u8] = if buf.is_empty() {
                    data
                } else {
                    buf.extend_from_slice(data);
                    owned = std::mem::take(buf);
                    &owned
                };
                let start = *abs;
                let next = if DNS_PORTS.contains(&f.server.1) {
                    f.protocol = Protocol::Dns;
                    Reader::DnsTcp {
                        abs: start,
                        buf: Vec::new(),
                    }
                } else if bytes.len() < 3 && bytes.first() == Some(&0x16) {
                    f.reader = Reader::Detect {
                        abs: start,
                        buf: bytes.to_vec(),
                    };
                    return;
                } else if tls::looks_like_tls(bytes) {
                    f.protocol = Protocol::Tls;
                    Reader::Tls {
                        abs: start,
                        buf: Vec::new(),
                    }
                } else if looks_like_h2(bytes) != Some(false) {
                    if bytes.len() < crate::http2::PREFACE.len() {
                        f.reader = Reader::Detect {
                            abs: start,
                            buf: bytes.to_vec(),
                        };
                        return;
                    }
                    f.protocol = Protocol::Http;
                    Reader::Http2(Box::new(Http2Stream::new(start)))
                } else {
                    match looks_like_http(bytes) {
                        Some(true) => {
                            f.protocol = Protocol::Http;
                            Reader::Http(Box::new(HttpStream::new(start)))
                        }
                        None => {
                            f.reader = Reader::Detect {
                                abs: start,
                                buf: bytes.to_vec(),
                            };
                            return;
                        }
                        Some(false) => Reader::Raw(StreamScanner::at(start)),
                    }
                };
                f.reader = next;
                // Depth 1: the reader just chosen is never `Detect`.
                return read(f, ctx, start, bytes, hits);
            }
            Reader::Tls { abs, buf } => {
                // The ClientHello is usually whole in the first segment: parse it in place.
                let hello_at = *abs;
                let progress = if buf.is_empty() {
                    tls::client_hello(data)
                } else {
                    buf.extend_from_slice(data);
                    tls::client_hello(buf)
                };
                let held = if buf.is_empty() {
                    data.len()
                } else {
                    buf.len()
                };
                match progress {
                    tls::Progress::NeedMore if held <= MAX_HELLO + 5 * 8 => {
                        if buf.is_empty() {
                            buf.extend_from_slice(data);
                        }
                        return;
                    }
                    tls::Progress::Hello(hello, used) => {
                        if let Some(sni) = &hello.sni {
                            let end = hello_at + used as u64 - 1;
                            for (identifier, encoding) in ctx.names.scan(m, sni) {
                                hits.push(Hit {
                                    identifier,
                                    encoding,
                                    location: "tls.sni".into(),
                                    at: end,
                                });
                            }
                        }
                        let rest_at = hello_at + used as u64;
                        let rest = if buf.is_empty() {
                            data[used.min(data.len())..].to_vec()
                        } else {
                            buf[used.min(buf.len())..].to_vec()
                        };
                        f.reader =
                            Reader::TlsData(Box::new(TlsFlow::new(&hello, rest_at, ctx.keys)));
                        f.sni = hello.sni.filter(|s| !s.is_empty());
                        f.alpn = hello.alpn;
                        decrypted::feed(f, ctx, Side::Client, rest_at, &rest, hits);
                        return;
                    }
                    _ => f.opaque += held as u64,
                }
                f.reader = Reader::Opaque;
                return;
            }
            Reader::TlsData(_) => {
                decrypted::feed(f, ctx, Side::Client, at, data, hits);
                return;
            }
            Reader::Opaque => {
                f.opaque += data.len() as u64;
                return;
            }
            Reader::Http(h) => {
                let r = ctx.with_budget(h, |h| h.feed(m, at, data, hits));
                if f.http_host.is_none() {
                    f.http_host = h.host.clone();
                }
                match r {
                    Ok(()) => return,
                    Err(unparsed) => {
                        f.opaque += h.opaque;
                        let mut s = StreamScanner::at(unparsed.abs);
                        raw(&mut s, m, unparsed.abs, &unparsed.bytes, hits);
                        f.reader = Reader::Raw(s);
                        return;
                    }
                }
            }
            Reader::Http2(h) => {
                let r = ctx.with_budget(h, |h| h.feed(m, at, data, hits));
                if f.http_host.is_none() {
                    f.http_host = h.host.clone();
                }
                if let Err(unparsed) = r {
                    f.opaque += h.opaque;
                    let mut s = StreamScanner::at(unparsed.abs);
                    raw(&mut s, m, unparsed.abs, &unparsed.bytes, hits);
                    f.reader = Reader::Raw(s);
                }
                return;
            }
            Reader::DnsTcp { abs, buf } => {
                if *abs + buf.len() as u64 != at {
                    f.reader = Reader::Raw(StreamScanner::at(at));
                    continue;
                }
                buf.extend_from_slice(data);
                let mut names = Vec::new();
                while buf.len() >= 2 {
                    let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
                    if buf.len() < 2 + len {
                        break;
                    }
                    if let Some(msg) = dns::parse(&buf[2..2 + len])
                        && !msg.is_response
                    {
                        names.extend(msg.questions);
                    }
                    buf.drain(..2 + len);
                    *abs += 2 + len as u64;
                }
                for name in names {
                    question(f, ctx, name);
                }
                return;
            }
            Reader::Raw(s) => {
                raw(s, m, at, data, hits);
                return;
            }
        }
    }
}

/// A DNS question the client asked: listed, and searched (`dns.qname`, about the name asked).
pub(crate) fn question<S: Sink>(f: &mut FlowState, ctx: &mut Context<'_, S>, name: String) {
    for (identifier, encoding) in ctx.names.scan(ctx.matcher, &name) {
        let n = NewFinding {
            identifier,
            encoding,
            location: "dns.qname".into(),
            name: Some(name.clone()),
            frame: ctx.frame,
            ts: ctx.ts,
        };
        super::record(f, ctx.matcher, ctx.sink, n);
    }
    ctx.sink.dns_query(DnsQuery {
        name,
        frame: ctx.frame,
        ts: ctx.ts,
        flow: f.first_frame,
    });
}

/// Searches and drops what the reader holds, keeping the flow open (a buffer budget flush): an
/// unfinished HTTP message is searched as far as it goes and the rest of the stream raw.
pub(crate) fn flush<S: Sink>(f: &mut FlowState, ctx: &mut Context<'_, S>, hits: &mut Vec<Hit>) {
    if matches!(f.reader, Reader::TlsData(_)) {
        return decrypted::flush(f, ctx, hits);
    }
    flush_plain(f, ctx, f.dirs[0].next, hits);
}

/// `flush` of a stream whose next byte is at `next` (a TCP stream's, or a decrypted one's).
pub(crate) fn flush_plain<S: Sink>(
    f: &mut FlowState,
    ctx: &mut Context<'_, S>,
    next: u64,
    hits: &mut Vec<Hit>,
) {
    let m = ctx.matcher;
    f.reader = match std::mem::replace(&mut f.reader, Reader::Opaque) {
        Reader::Http(mut h) => {
            ctx.with_budget(&mut h, |h| h.finish(m, hits));
            f.opaque += h.opaque;
            Reader::Raw(StreamScanner::at(next))
        }
        Reader::Http2(mut h) => {
            // The framing survives: what it holds is searched and dropped.
            ctx.with_budget(&mut h, |h| h.flush(m, hits));
            Reader::Http2(h)
        }
        Reader::Detect { abs, buf } => {
            let mut s = StreamScanner::at(abs);
            if !buf.is_empty() {
                raw(&mut s, m, abs, &buf, hits);
            }
            Reader::Raw(s)
        }
        Reader::Tls { buf, .. } => {
            f.opaque += buf.len() as u64;
            Reader::Opaque
        }
        Reader::DnsTcp { buf, .. } => {
            f.opaque += buf.len() as u64;
            Reader::Raw(StreamScanner::at(next))
        }
        other => other,
    };
}

/// The end of the client's stream: whatever the reader holds is searched as far as it goes.
pub(crate) fn finish<S: Sink>(f: &mut FlowState, ctx: &mut Context<'_, S>, hits: &mut Vec<Hit>) {
    if matches!(f.reader, Reader::TlsData(_)) {
        return decrypted::finish(f, ctx, hits);
    }
    let m = ctx.matcher;
    match std::mem::replace(&mut f.reader, Reader::Opaque) {
        Reader::Http(mut h) => {
            ctx.with_budget(&mut h, |h| h.finish(m, hits));
            f.opaque += h.opaque;
        }
        Reader::Http2(mut h) => {
            ctx.with_budget(&mut h, |h| h.finish(m, hits));
            f.opaque += h.opaque;
        }
        Reader::Detect { abs, buf } if !buf.is_empty() => {
            let mut s = StreamScanner::at(abs);
            for x in s.feed(m, abs, &buf) {
                hits.push(tcp_hit(m, x.identifier, x.encoding, x.end - 1));
            }
        }
        Reader::Tls { buf, .. } | Reader::DnsTcp { buf, .. } => f.opaque += buf.len() as u64,
        _ => {}
    }
}

/// A raw stream hit (`tcp.payload`).
pub(crate) fn tcp_hit(m: &Matcher, identifier: usize, encoding: usize, at: u64) -> Hit {
    Hit {
        identifier,
        encoding: m.encoding_name(encoding).to_string(),
        location: "tcp.payload".to_string(),
        at,
    }
}

/// Raw stream bytes: needles across pieces, decoded layers (base64 blobs, URL values) per piece.
fn raw(s: &mut StreamScanner, m: &Matcher, at: u64, data: &[u8], hits: &mut Vec<Hit>) {
    for x in s.feed(m, at, data) {
        hits.push(tcp_hit(m, x.identifier, x.encoding, x.end - 1));
    }
    // Decoded layers of this piece only: a blob split across segments is searched by its needles,
    // not decoded.
    for r in m.scan_layers(data, false) {
        hits.push(Hit {
            identifier: r.identifier,
            encoding: r.encoding,
            location: "tcp.payload".to_string(),
            at: at + r.end as u64 - 1,
        });
    }
}
