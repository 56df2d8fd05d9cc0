//! UDP datagrams of a flow: DNS (questions searched and listed, answers naming later flows), QUIC
//! (the Initial decrypted up to the ClientHello; with a key log, the protected packets too: the
//! client-initiated streams of a connection that offered ALPN `h3` read as HTTP/3 (`http3`), other
//! streams' in-order bytes searched raw as `quic.stream`, DATAGRAM frames as `quic.datagram`),
//! anything else searched whole.
//!
//! A QUIC stream hit is placed at its connection-wide position (`quic::Delivery::abs`), and the
//! flow's offset → frame map holds those positions, so it names the datagram that carried the
//! byte that completed it — where tshark shows that `quic.stream_data`.
//!
//! Must not touch: TCP, flow lifecycles, QUIC packet protection (`quic`).

use std::collections::BTreeMap;
use std::hash::Hasher as _;

use super::client::question;
use super::table::{Endpoint, FxHasher};
use super::{
    DECODE_PER_BYTE, DUPLICATE_WINDOW, Engine, FRAME_MAP_REACH, INSPECT_CAP, MAX_FRAME_MAP,
    NewFinding, context, flow, record,
};
use crate::http3::Http3Connection;
use crate::matcher::{Hit, Matcher, StreamScanner};
use crate::quic::{self, Delivery, Origin, QuicClient};
use crate::sink::Sink;
use crate::{Protocol, Timestamp, dns};

/// Stream scanners kept per connection; past it the lowest-numbered stream's goes.
const MAX_SCANNERS: usize = 256;

/// A QUIC flow's client state and the readers of its decrypted streams.
#[derive(Debug)]
pub(crate) struct QuicFlow {
    pub client: QuicClient,
    /// A raw scanner per stream (in stream offsets), until the stream ends: streams of a
    /// connection that does not speak HTTP/3, and the server-initiated ones of one that does.
    scanners: BTreeMap<u64, StreamScanner>,
    /// HTTP/3 over the client-initiated streams, when the ClientHello offered `h3`.
    h3: Option<Box<Http3Connection>>,
}

impl QuicFlow {
    pub fn new() -> QuicFlow {
        QuicFlow {
            client: QuicClient::new(),
            scanners: BTreeMap::new(),
            h3: None,
        }
    }

    pub fn buffered(&self) -> usize {
        self.client.buffered() + self.h3.as_ref().map_or(0, |h| h.buffered())
    }
}

/// In-order stream bytes: the frame map learns where they came from, and they are searched.
fn stream_bytes(
    frames: &mut std::collections::VecDeque<(u64, u64, Timestamp)>,
    scanners: &mut BTreeMap<u64, StreamScanner>,
    h3: &mut Option<Box<Http3Connection>>,
    budget: u64,
    m: &Matcher,
    d: Delivery<'_>,
    hits: &mut Vec<Hit>,
) {
    // Client-initiated streams (bidi id % 4 == 0, uni id % 4 == 2) of an HTTP/3 connection.
    if d.h3 && d.stream.is_multiple_of(2) {
        if d.abs >= INSPECT_CAP {
            return;
        }
        if !d.data.is_empty() {
            let end = d.abs + d.data.len() as u64;
            match frames.back_mut() {
                Some(last) if last.1 == d.origin.frame => last.0 = end,
                _ => frames.push_back((end, d.origin.frame, d.origin.ts)),
            }
            while frames.len() > MAX_FRAME_MAP
                || frames
                    .front()
                    .is_some_and(|e| e.0 + FRAME_MAP_REACH < d.abs)
            {
                frames.pop_front();
            }
        }
        let h = h3.get_or_insert_with(|| {
            let mut h = Http3Connection::new();
            h.decode_budget = budget;
            Box::new(h)
        });
        h.feed(m, d.stream, d.offset, d.abs, d.data, d.fin, hits);
        return;
    }
    if !d.data.is_empty() && d.abs < INSPECT_CAP {
        let end = d.abs + d.data.len() as u64;
        match frames.back_mut() {
            Some(last) if last.1 == d.origin.frame => last.0 = end,
            _ => frames.push_back((end, d.origin.frame, d.origin.ts)),
        }
        while frames.len() > MAX_FRAME_MAP
            || frames
                .front()
                .is_some_and(|e| e.0 + FRAME_MAP_REACH < d.abs)
        {
            frames.pop_front();
        }
        if !scanners.contains_key(&d.stream) && scanners.len() >= MAX_SCANNERS {
            scanners.pop_first();
        }
        let s = scanners
            .entry(d.stream)
            .or_insert_with(|| StreamScanner::at(d.offset));
        // Hits end inside this piece: their position is this piece's, moved by their offset.
        for x in s.feed(m, d.offset, d.data) {
            hits.push(Hit {
                identifier: x.identifier,
                encoding: m.encoding_name(x.encoding).to_string(),
                location: "quic.stream".into(),
                at: d.abs + (x.end - 1 - d.offset),
            });
        }
        for r in m.scan_layers(d.data, false) {
            hits.push(Hit {
                identifier: r.identifier,
                encoding: r.encoding,
                location: "quic.stream".into(),
                at: d.abs + r.end as u64 - 1,
            });
        }
    }
    if d.fin {
        scanners.remove(&d.stream);
    }
}

impl<S: Sink> Engine<S> {
    pub(super) fn udp(
        &mut self,
        idx: u32,
        frame: u64,
        ts: Timestamp,
        src: Endpoint,
        payload: &[u8],
    ) {
        let f = flow!(self.slots, idx);
        f.last_ts = ts;
        let outbound = src == f.client;
        let digest = {
            let mut h = FxHasher::default();
            h.write(payload);
            h.write_usize(payload.len());
            h.finish()
        };
        if let Some((o, d, t)) = f.last_datagram
            && o == outbound
            && d == digest
            && (ts - t).abs() < DUPLICATE_WINDOW
        {
            return;
        }
        f.last_datagram = Some((outbound, digest, ts));
        if outbound
            && f.protocol == Protocol::Udp
            && f.bytes_out == 0
            && quic::looks_like_initial(payload)
        {
            f.protocol = Protocol::Quic;
            // CIDs are tracked whether or not there are keys yet: a Decryption Secrets Block
            // later in the capture may bring them (each datagram decides from the keys then).
            f.quic = Some(Box::new(QuicFlow::new()));
        }
        if outbound {
            f.bytes_out += payload.len() as u64;
        } else {
            f.bytes_in += payload.len() as u64;
        }
        match f.protocol {
            Protocol::Dns => {
                let Some(msg) = dns::parse(payload) else {
                    if outbound {
                        f.opaque += payload.len() as u64;
                    }
                    return;
                };
                if msg.is_response {
                    for (ip, name) in msg.answers {
                        self.remember_name(ip, &name);
                    }
                    return;
                }
                let mut ctx = context!(self, frame, ts);
                for name in msg.questions {
                    question(f, &mut ctx, name);
                }
            }
            Protocol::Quic => {
                let Some(q) = f.quic.as_mut() else {
                    // A conversation resumed after a silence (its Initial was in the flow it
                    // continues): its packets cannot be opened without that state.
                    f.opaque += payload.len() as u64;
                    if outbound && !self.keys.is_empty() {
                        f.tls.get_or_insert(crate::TlsSummary {
                            version: Some(crate::QUIC_V1),
                            cipher: None,
                            decryption: crate::Decryption::Incomplete,
                            decrypted_bytes: 0,
                            app: None,
                        });
                    }
                    return;
                };
                if !outbound {
                    // Server packets carry nothing the handset said; only their connection ID's
                    // length is read (the client's short headers do not carry it).
                    q.client.server_datagram(payload);
                    f.opaque += payload.len() as u64;
                    return;
                }
                let QuicFlow {
                    client,
                    scanners,
                    h3,
                } = &mut **q;
                let mut hits = Vec::new();
                let origin = Origin { frame, ts };
                let m = &*self.matcher;
                let frames = &mut f.frames;
                let before = client.opaque;
                // HTTP/3 bodies share the capture's decode budget with HTTP/1 and HTTP/2.
                self.decode_budget = self
                    .decode_budget
                    .saturating_add(DECODE_PER_BYTE * payload.len() as u64);
                let h3_before = h3.as_ref().map(|h| (h.opaque, h.decode_cut));
                if let Some(h) = h3.as_mut() {
                    h.decode_budget = self.decode_budget;
                }
                let budget = self.decode_budget;
                let read = client.datagram(payload, &self.keys, origin, &mut |d| {
                    stream_bytes(frames, scanners, h3, budget, m, d, &mut hits)
                });
                f.opaque += client.opaque - before;
                if let Some(h) = h3.as_ref() {
                    let (opaque, cut) = h3_before.unwrap_or((0, 0));
                    f.opaque += h.opaque - opaque;
                    if h.decode_cut > cut {
                        self.notes.decode_cut.add(frame, h.decode_cut - cut);
                    }
                    self.decode_budget = h.decode_budget;
                    if f.http_host.is_none() {
                        f.http_host = h.host.clone();
                    }
                }
                f.tls = client.summary();
                for datagram in read.datagrams {
                    for r in self.matcher.scan_layers(&datagram, true) {
                        let n = NewFinding {
                            identifier: r.identifier,
                            encoding: r.encoding,
                            location: "quic.datagram".into(),
                            name: None,
                            frame,
                            ts,
                        };
                        record(f, &self.matcher, &mut self.sink, n);
                    }
                }
                if let Some(hello) = read.hello {
                    if let Some(sni) = &hello.sni {
                        for (identifier, encoding) in self.names.scan(&self.matcher, sni) {
                            let n = NewFinding {
                                identifier,
                                encoding,
                                location: "tls.sni".into(),
                                name: None,
                                frame,
                                ts,
                            };
                            record(f, &self.matcher, &mut self.sink, n);
                        }
                    }
                    f.sni = hello.sni.filter(|s| !s.is_empty());
                    f.alpn = hello.alpn;
                }
                self.add_hits(idx, hits);
            }
            _ if outbound => {
                for r in self.matcher.scan_layers(payload, true) {
                    let n = NewFinding {
                        identifier: r.identifier,
                        encoding: r.encoding,
                        location: "udp.payload".into(),
                        name: None,
                        frame,
                        ts,
                    };
                    record(f, &self.matcher, &mut self.sink, n);
                }
            }
            _ => {}
        }
    }
}

impl<S: Sink> Engine<S> {
    /// A QUIC flow's held stream bytes are searched as far as they go (for memory, or at its
    /// end); the HTTP/3 reader gives up what it holds too: everything at the end (`last`), all
    /// but the QPACK table and the framing for memory (`Http3Connection::flush`).
    pub(super) fn quic_flush(&mut self, idx: u32, last: bool) {
        let f = flow!(self.slots, idx);
        let Some(q) = f.quic.as_mut() else { return };
        let QuicFlow {
            client,
            scanners,
            h3,
        } = &mut **q;
        let mut hits = Vec::new();
        let m = &*self.matcher;
        let frames = &mut f.frames;
        // The stream bytes flushed may feed HTTP/3 bodies: the shared decode budget goes in
        // before and comes back after, as for a datagram.
        let before = h3.as_ref().map(|h| (h.opaque, h.decode_cut));
        if let Some(h) = h3.as_mut() {
            h.decode_budget = self.decode_budget;
        }
        let budget = self.decode_budget;
        client.flush(&mut |d| stream_bytes(frames, scanners, h3, budget, m, d, &mut hits));
        if let Some(h) = h3.as_mut() {
            let (opaque, cut) = before.unwrap_or((0, 0));
            if last {
                h.finish(m, &mut hits);
            } else {
                // For memory: what HTTP/3 holds goes too, or the flow would stay over budget.
                h.flush(m, &mut hits);
            }
            f.opaque += h.opaque - opaque;
            if h.decode_cut > cut {
                self.notes.decode_cut.add(self.frame, h.decode_cut - cut);
            }
            self.decode_budget = h.decode_budget;
            if f.http_host.is_none() {
                f.http_host = h.host.clone();
            }
        }
        self.add_hits(idx, hits);
    }
}
