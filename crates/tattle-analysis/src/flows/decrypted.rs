//! A TLS flow past its ClientHello: its client records go to a `TlsStream` (which decrypts them
//! when the key log has the connection's secrets), its server bytes until the ServerHello too,
//! and the decrypted plaintext to an inner reader — the same HTTP/1.x, DNS-over-TCP and raw
//! readers plain TCP uses — with every hit moved back to the ciphertext offset of the record
//! that carried it, so it names the frame that completed that record.
//!
//! Must not touch: record protection (`tls::stream`, `tls::crypto`), what readers do with bytes.

use crate::dns::DNS_PORTS;
use crate::http::{HttpStream, looks_like_http};
use crate::http2::{Http2Stream, PREFACE as H2_PREFACE};
use crate::matcher::{Hit, StreamScanner};
use crate::sink::Sink;
use crate::tls::ClientHello;
use crate::tls::stream::{KeyView, TlsStream};

use super::FlowState;
use super::client::{self, Context, Reader};

/// Plaintext bytes held at most before a reader is chosen.
const MAX_UNDECIDED: usize = 64;

/// The state of a TLS flow after its ClientHello (boxed in `Reader::TlsData`).
#[derive(Debug)]
pub(crate) struct TlsFlow {
    stream: TlsStream,
    /// The reader of the plaintext, once its first bytes chose it.
    inner: Option<Reader>,
    /// Plaintext before the reader is chosen, and its offset.
    undecided: Vec<u8>,
    undecided_at: u64,
    /// The plaintext offset the inner reader expects next: a jump (records lost) ends it, and the
    /// next bytes choose a reader again (a new request after the loss is read as one).
    plain_next: u64,
}

/// Which reader reads a decrypted stream, from its first bytes: `None` while they cannot tell.
/// HTTP/2 is told by its 24-byte preface (ALPN is not needed), DNS over TLS by port 853, HTTP/1.x
/// by a method; anything else is searched raw.
fn choose_inner(start: &[u8], server_port: u16, at: u64) -> Option<(Reader, &'static str)> {
    if start.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(start) {
        return None;
    }
    if start.starts_with(H2_PREFACE) {
        return Some((Reader::Http2(Box::new(Http2Stream::new(at))), "h2"));
    }
    if server_port == 853 || DNS_PORTS.contains(&server_port) {
        return Some((
            Reader::DnsTcp {
                abs: at,
                buf: Vec::new(),
            },
            "dns",
        ));
    }
    match looks_like_http(start) {
        Some(true) => Some((Reader::Http(Box::new(HttpStream::new(at))), "http/1.1")),
        Some(false) => Some((Reader::Raw(StreamScanner::at(at)), "other")),
        None if start.len() >= MAX_UNDECIDED => Some((Reader::Raw(StreamScanner::at(at)), "other")),
        None => None,
    }
}

impl TlsFlow {
    pub fn new(hello: &ClientHello, at: u64, keys: &KeyView) -> TlsFlow {
        TlsFlow {
            stream: TlsStream::new(hello, at, keys),
            inner: None,
            undecided: Vec::new(),
            undecided_at: 0,
            plain_next: 0,
        }
    }

    pub fn buffered(&self) -> usize {
        self.stream.buffered()
            + self.undecided.len()
            + self.inner.as_ref().map_or(0, Reader::buffered)
    }

    pub fn wants_server(&self) -> bool {
        self.stream.wants_server()
    }

    /// Its fixed state when it decrypts (or may): the reader's box, the stream's keys and map.
    /// A flow that never will is the TLS flow `FLOW_STATE_BYTES` was measured with.
    pub fn state_bytes(&self) -> usize {
        if self.stream.attempts() {
            std::mem::size_of::<TlsFlow>() + self.stream.state_bytes()
        } else {
            0
        }
    }

    /// The client random whose keys the flow waits for, if it does.
    pub fn awaiting(&self) -> Option<[u8; 32]> {
        self.stream.awaiting()
    }
}

/// Which side's bytes.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Client,
    Server,
    /// No bytes: the key log grew (a Decryption Secrets Block), maybe with this flow's keys.
    Keys,
}

/// Bytes of the flow's client (or server) stream at `at`, for a flow whose reader is `TlsData`.
pub(crate) fn feed<S: Sink>(
    f: &mut FlowState,
    ctx: &mut Context<'_, S>,
    side: Side,
    at: u64,
    data: &[u8],
    hits: &mut Vec<Hit>,
) {
    let Reader::TlsData(mut t) = std::mem::replace(&mut f.reader, Reader::Opaque) else {
        return;
    };
    let mut plain_hits = Vec::new();
    let keys = ctx.keys;
    {
        let TlsFlow {
            stream,
            inner,
            undecided,
            undecided_at,
            plain_next,
        } = &mut *t;
        let mut emit = |plain_at: u64, bytes: &[u8]| {
            if plain_at != *plain_next
                && let Some(reader) = inner.take()
            {
                // Records were lost: the reader searches what it holds, and the bytes after
                // the loss choose one afresh.
                let outer = std::mem::replace(&mut f.reader, reader);
                let protocol = f.protocol;
                client::finish(f, ctx, &mut plain_hits);
                f.protocol = protocol;
                f.reader = outer;
            }
            *plain_next = plain_at + bytes.len() as u64;
            read_plain(
                f,
                ctx,
                inner,
                undecided,
                undecided_at,
                plain_at,
                bytes,
                &mut plain_hits,
            );
        };
        match side {
            Side::Client => stream.feed(at, data, &mut emit),
            Side::Server => stream.feed_server(keys, at, data, &mut emit),
            Side::Keys => stream.keys_arrived(keys, &mut emit),
        }
    }
    settle(f, ctx, t, plain_hits, hits);
}

/// Plaintext at `plain_at` to the inner reader (chosen by the first bytes).
#[allow(clippy::too_many_arguments)]
fn read_plain<S: Sink>(
    f: &mut FlowState,
    ctx: &mut Context<'_, S>,
    inner: &mut Option<Reader>,
    undecided: &mut Vec<u8>,
    undecided_at: &mut u64,
    plain_at: u64,
    bytes: &[u8],
    hits: &mut Vec<Hit>,
) {
    let mut owned = Vec::new();
    let (at, bytes) = if inner.is_none() {
        if undecided.is_empty() {
            *undecided_at = plain_at;
        }
        if *undecided_at + undecided.len() as u64 != plain_at {
            // A hole before the reader was chosen: what came before is searched raw.
            let mut s = StreamScanner::at(*undecided_at);
            for x in s.feed(ctx.matcher, *undecided_at, undecided) {
                hits.push(client::tcp_hit(
                    ctx.matcher,
                    x.identifier,
                    x.encoding,
                    x.end - 1,
                ));
            }
            undecided.clear();
            *undecided_at = plain_at;
        }
        undecided.extend_from_slice(bytes);
        match choose_inner(undecided, f.server.1, *undecided_at) {
            None => return,
            Some((reader, app)) => {
                *inner = Some(reader);
                f.tls_app = Some(app);
                owned = std::mem::take(undecided);
                (*undecided_at, &owned[..])
            }
        }
    } else {
        (plain_at, bytes)
    };
    let Some(reader) = inner.take() else { return };
    let outer = std::mem::replace(&mut f.reader, reader);
    let protocol = f.protocol;
    client::read(f, ctx, at, bytes, hits);
    f.protocol = protocol;
    *inner = Some(std::mem::replace(&mut f.reader, outer));
    drop(owned);
}

/// After a step: hits moved to ciphertext offsets, bytes not inspected counted, the status
/// updated, and the reader put back.
fn settle<S: Sink>(
    f: &mut FlowState,
    ctx: &mut Context<'_, S>,
    mut t: Box<TlsFlow>,
    plain_hits: Vec<Hit>,
    hits: &mut Vec<Hit>,
) {
    for mut h in plain_hits {
        h.at = t.stream.cipher_offset(h.at);
        hits.push(h);
    }
    f.opaque += std::mem::take(&mut t.stream.opaque);
    if let Some(at) = t.stream.failed_at.take() {
        let (frame, _) = f.frame_of(at);
        t.stream.set_failed_frame(frame);
    }
    t.stream.app = f.tls_app;
    f.tls = Some(t.stream.summary(!ctx.keys.is_empty()));
    f.reader = Reader::TlsData(t);
}

/// A flush for memory: the inner reader searches what it holds, the stream drops what it holds.
pub(crate) fn flush<S: Sink>(f: &mut FlowState, ctx: &mut Context<'_, S>, hits: &mut Vec<Hit>) {
    end(f, ctx, hits, false);
}

/// The end of the flow: everything held is searched as far as it goes, the rest is opaque.
pub(crate) fn finish<S: Sink>(f: &mut FlowState, ctx: &mut Context<'_, S>, hits: &mut Vec<Hit>) {
    end(f, ctx, hits, true);
}

fn end<S: Sink>(f: &mut FlowState, ctx: &mut Context<'_, S>, hits: &mut Vec<Hit>, last: bool) {
    let Reader::TlsData(mut t) = std::mem::replace(&mut f.reader, Reader::Opaque) else {
        return;
    };
    let mut plain_hits = Vec::new();
    if !t.undecided.is_empty() {
        let at = t.undecided_at;
        let mut s = StreamScanner::at(at);
        for x in s.feed(ctx.matcher, at, &t.undecided) {
            plain_hits.push(client::tcp_hit(
                ctx.matcher,
                x.identifier,
                x.encoding,
                x.end - 1,
            ));
        }
        t.undecided.clear();
    }
    if let Some(reader) = t.inner.take() {
        let outer = std::mem::replace(&mut f.reader, reader);
        let protocol = f.protocol;
        if last {
            client::finish(f, ctx, &mut plain_hits);
        } else {
            client::flush_plain(f, ctx, t.stream.plain_next, &mut plain_hits);
        }
        f.protocol = protocol;
        t.inner = Some(std::mem::replace(&mut f.reader, outer));
    }
    if last {
        t.stream.finish();
    } else {
        t.stream.flush();
    }
    settle(f, ctx, t, plain_hits, hits);
}
