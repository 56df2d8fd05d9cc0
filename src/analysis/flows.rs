//! Flows: TCP connections and UDP conversations, TCP reassembly, and dispatch of each flow's bytes to
//! the protocol readers and the matcher.
//!
//! Owns the flow table, the client/server decision (the SYN sender; else the side on an ephemeral port
//! facing a well-known one; else the first sender), per-direction TCP reassembly (in-order fast path,
//! out-of-order segments buffered up to `MAX_OOO_BYTES`, retransmitted/overlapping bytes dropped with the
//! first copy winning, gaps skipped and counted), the choice of protocol reader for the client→server
//! stream, the mapping from stream offsets back to frame numbers, and the host of each flow.
//!
//! Only what the client sends is searched (that is what leaves the handset); server→client bytes are
//! counted. Per flow, at most `INSPECT_CAP` client bytes are searched; the rest is counted as opaque.
//!
//! Must not touch: the capture container (see `reader`), I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

use super::dns::{self, DNS_PORTS};
use super::http::{HttpStream, looks_like_http};
use super::matcher::{Hit, Matcher, StreamScanner};
use super::packet::{Packet, Transport};
use super::quic::{self, QuicClient};
use super::tls::{self, MAX_HELLO};
use super::{DnsQuery, Finding, Flow, HostSource, Protocol, Timestamp};

/// Client bytes searched per flow.
pub const INSPECT_CAP: u64 = 4 << 20;
/// Out-of-order bytes held per direction before the missing ones are declared lost.
pub const MAX_OOO_BYTES: usize = 1 << 20;
const MAX_OOO_SEGMENTS: usize = 2048;
/// Stream-offset → frame entries kept per flow (oldest dropped first).
const MAX_FRAME_MAP: usize = 1 << 16;
/// Distinct findings kept per flow.
const MAX_FINDINGS_PER_FLOW: usize = 10_000;
/// Flows tracked at once; past it the oldest open flow is closed early.
pub const MAX_OPEN_FLOWS: usize = 100_000;
const NTP_PORT: u16 = 123;
/// Two identical datagrams of one flow, same direction, this close (seconds): one packet captured
/// twice (loopback seen leaving and arriving on `-i any`), not an application repeat.
const DUPLICATE_WINDOW: f64 = 0.001;

type Endpoint = (IpAddr, u16);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    lo: Endpoint,
    hi: Endpoint,
    tcp: bool,
}

impl FlowKey {
    fn new(a: Endpoint, b: Endpoint, tcp: bool) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey { lo, hi, tcp }
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
struct TcpDir {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    /// Next expected stream offset.
    next: u64,
    ooo: BTreeMap<u64, (Vec<u8>, u64, Timestamp)>,
    ooo_bytes: usize,
    fin: bool,
}

impl TcpDir {
    /// Stream offset of `seq`, taking the 32-bit wrap into account around the expected point.
    fn offset(&self, base: u32, seq: u32) -> i64 {
        let expected = base.wrapping_add(self.next as u32);
        self.next as i64 + seq.wrapping_sub(expected) as i32 as i64
    }
}

/// What reads the client→server byte stream.
#[derive(Debug)]
enum Reader {
    /// Waiting for the first bytes to pick a protocol.
    Detect {
        abs: u64,
        buf: Vec<u8>,
    },
    Tls {
        abs: u64,
        buf: Vec<u8>,
    },
    /// Past the ClientHello: encrypted.
    Opaque,
    Http(HttpStream),
    /// DNS over TCP: 2-byte length, message.
    DnsTcp {
        abs: u64,
        buf: Vec<u8>,
    },
    Raw(StreamScanner),
}

#[derive(Debug)]
struct FlowState {
    tcp: bool,
    client: Endpoint,
    server: Endpoint,
    first_frame: u64,
    first_ts: Timestamp,
    last_ts: Timestamp,
    bytes_out: u64,
    bytes_in: u64,
    opaque: u64,
    gap_bytes: u64,
    protocol: Protocol,
    sni: Option<String>,
    http_host: Option<String>,
    dns_name: Option<String>,
    alpn: Vec<String>,
    dirs: [TcpDir; 2],
    reader: Reader,
    /// (end offset exclusive, frame, ts) of client→server bytes.
    frames: VecDeque<(u64, u64, Timestamp)>,
    /// (identifier, encoding, location) → (frame, ts): de-duplicated findings.
    findings: HashMap<(usize, String, String), (u64, Timestamp)>,
    rst: bool,
    closed: bool,
    /// (outbound, payload hash, ts) of the last UDP datagram, to drop the second copy `-i any`
    /// records of every loopback packet.
    last_datagram: Option<(bool, u64, Timestamp)>,
    /// QUIC client state, for UDP flows whose first client datagram is a v1 Initial.
    quic: Option<Box<QuicClient>>,
}

impl FlowState {
    fn frame_of(&self, at: u64) -> (u64, Timestamp) {
        let i = self.frames.partition_point(|(end, _, _)| *end <= at);
        match self.frames.get(i).or(self.frames.back()) {
            Some(&(_, f, ts)) => (f, ts),
            None => (self.first_frame, self.first_ts),
        }
    }

    fn add(
        &mut self,
        identifier: usize,
        encoding: String,
        location: String,
        frame: u64,
        ts: Timestamp,
    ) {
        let key = (identifier, encoding, location);
        if let Some(prev) = self.findings.get_mut(&key) {
            if frame < prev.0 {
                *prev = (frame, ts);
            }
        } else if self.findings.len() < MAX_FINDINGS_PER_FLOW {
            self.findings.insert(key, (frame, ts));
        }
    }

    fn add_hits(&mut self, hits: Vec<Hit>) {
        for h in hits {
            let (frame, ts) = self.frame_of(h.at);
            self.add(h.identifier, h.encoding, h.location, frame, ts);
        }
    }
}

/// Decoded packets in, flows and findings out.
#[derive(Debug)]
pub struct Engine {
    matcher: Matcher,
    table: HashMap<FlowKey, usize>,
    flows: Vec<FlowState>,
    /// Indices of flows still open, oldest first (for the open-flow cap).
    open: VecDeque<usize>,
    dns_names: HashMap<IpAddr, String>,
    dns_queries: Vec<DnsQuery>,
}

impl Engine {
    pub fn new(matcher: Matcher) -> Self {
        Engine {
            matcher,
            table: HashMap::new(),
            flows: Vec::new(),
            open: VecDeque::new(),
            dns_names: HashMap::new(),
            dns_queries: Vec::new(),
        }
    }

    pub fn packet(&mut self, frame: u64, ts: Timestamp, p: &Packet<'_>) {
        match p.transport {
            Transport::Tcp {
                src_port,
                dst_port,
                seq,
                syn,
                ack,
                fin,
                rst,
                payload,
            } => {
                let src = (p.src, src_port);
                let dst = (p.dst, dst_port);
                let key = FlowKey::new(src, dst, true);
                let reuse = syn && !ack;
                let idx = match self.table.get(&key) {
                    Some(&i) if !(reuse && self.flows[i].closed) => i,
                    _ => {
                        let client = if syn && !ack {
                            src
                        } else if syn && ack {
                            dst
                        } else {
                            guess_client(src, dst)
                        };
                        self.create(key, client, frame, ts)
                    }
                };
                self.tcp(idx, frame, ts, src, seq, syn, fin, rst, payload);
            }
            Transport::Udp {
                src_port,
                dst_port,
                payload,
            } => {
                let src = (p.src, src_port);
                let dst = (p.dst, dst_port);
                let key = FlowKey::new(src, dst, false);
                let idx = match self.table.get(&key) {
                    Some(&i) => i,
                    None => self.create(key, guess_client(src, dst), frame, ts),
                };
                self.udp(idx, frame, ts, src, payload);
            }
        }
    }

    fn create(&mut self, key: FlowKey, client: Endpoint, frame: u64, ts: Timestamp) -> usize {
        if let Some(&old) = self.table.get(&key) {
            self.close(old);
        }
        while self.open.len() >= MAX_OPEN_FLOWS {
            if let Some(oldest) = self.open.pop_front() {
                tracing::debug!("open-flow cap reached: closing the oldest flow early");
                self.close(oldest);
            }
        }
        let server = if client == key.lo { key.hi } else { key.lo };
        let protocol = if DNS_PORTS.contains(&server.1) || DNS_PORTS.contains(&client.1) {
            Protocol::Dns
        } else if server.1 == NTP_PORT || client.1 == NTP_PORT {
            Protocol::Ntp
        } else if key.tcp {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let idx = self.flows.len();
        self.flows.push(FlowState {
            tcp: key.tcp,
            client,
            server,
            first_frame: frame,
            first_ts: ts,
            last_ts: ts,
            bytes_out: 0,
            bytes_in: 0,
            opaque: 0,
            gap_bytes: 0,
            protocol,
            sni: None,
            http_host: None,
            dns_name: self.dns_names.get(&server.0).cloned(),
            alpn: Vec::new(),
            dirs: [TcpDir::default(), TcpDir::default()],
            reader: Reader::Detect {
                abs: 0,
                buf: Vec::new(),
            },
            frames: VecDeque::new(),
            findings: HashMap::new(),
            rst: false,
            closed: false,
            last_datagram: None,
            quic: None,
        });
        self.table.insert(key, idx);
        self.open.push_back(idx);
        idx
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        idx: usize,
        frame: u64,
        ts: Timestamp,
        src: Endpoint,
        seq: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &[u8],
    ) {
        let f = &mut self.flows[idx];
        f.last_ts = ts;
        if f.closed {
            // Trailing ACKs of a finished connection.
            return;
        }
        let d = if src == f.client { 0 } else { 1 };
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        let dir = &mut f.dirs[d];
        let base = *dir.base.get_or_insert(data_seq);
        if syn && dir.next == 0 && dir.ooo.is_empty() {
            // A SYN fixes the stream origin even if a stray segment was seen before it.
            dir.base = Some(data_seq);
        }
        if !payload.is_empty() {
            let base = dir.base.unwrap_or(base);
            let off = dir.offset(base, data_seq);
            self.segment(idx, d, off, payload, frame, ts);
        }
        let f = &mut self.flows[idx];
        if fin {
            f.dirs[d].fin = true;
        }
        if rst {
            f.rst = true;
        }
        if rst || (f.dirs[0].fin && f.dirs[1].fin) {
            self.close(idx);
        }
    }

    /// One TCP segment at stream offset `off` (may be negative for retransmitted bytes before the
    /// origin we chose).
    fn segment(
        &mut self,
        idx: usize,
        d: usize,
        off: i64,
        payload: &[u8],
        frame: u64,
        ts: Timestamp,
    ) {
        let dir = &mut self.flows[idx].dirs[d];
        let end = off + payload.len() as i64;
        if end <= dir.next as i64 {
            return; // retransmission
        }
        if off <= dir.next as i64 {
            let skip = (dir.next as i64 - off) as usize;
            let at = dir.next;
            dir.next = end as u64;
            self.deliver(idx, d, at, &payload[skip..], frame, ts);
            self.drain_ooo(idx, d);
            return;
        }
        let off = off as u64;
        let dir = &mut self.flows[idx].dirs[d];
        match dir.ooo.get(&off) {
            Some((old, _, _)) if old.len() >= payload.len() => return,
            Some((old, _, _)) => dir.ooo_bytes -= old.len(),
            None => {}
        }
        dir.ooo_bytes += payload.len();
        dir.ooo.insert(off, (payload.to_vec(), frame, ts));
        // Holding more than the bound: the missing bytes are not coming; skip them.
        while {
            let dir = &self.flows[idx].dirs[d];
            dir.ooo_bytes > MAX_OOO_BYTES || dir.ooo.len() > MAX_OOO_SEGMENTS
        } {
            self.skip_gap(idx, d);
        }
    }

    /// Declares the bytes before the first buffered segment lost and delivers what follows.
    fn skip_gap(&mut self, idx: usize, d: usize) {
        let f = &mut self.flows[idx];
        let Some((&first, _)) = f.dirs[d].ooo.first_key_value() else {
            return;
        };
        if first > f.dirs[d].next {
            f.gap_bytes += first - f.dirs[d].next;
            f.dirs[d].next = first;
        }
        self.drain_ooo(idx, d);
    }

    fn drain_ooo(&mut self, idx: usize, d: usize) {
        loop {
            let dir = &mut self.flows[idx].dirs[d];
            let Some(entry) = dir.ooo.first_entry() else {
                return;
            };
            let off = *entry.key();
            if off > dir.next {
                return;
            }
            let (data, frame, ts) = entry.remove();
            dir.ooo_bytes -= data.len();
            let end = off + data.len() as u64;
            if end <= dir.next {
                continue;
            }
            let skip = (dir.next - off) as usize;
            let at = dir.next;
            dir.next = end;
            self.deliver(idx, d, at, &data[skip..], frame, ts);
        }
    }

    /// In-order stream bytes of direction `d` at offset `at`.
    fn deliver(&mut self, idx: usize, d: usize, at: u64, data: &[u8], frame: u64, ts: Timestamp) {
        let f = &mut self.flows[idx];
        if d == 1 {
            f.bytes_in += data.len() as u64;
            if matches!(f.protocol, Protocol::Tls) {
                f.opaque += data.len() as u64;
            }
            return;
        }
        f.bytes_out += data.len() as u64;
        f.frames.push_back((at + data.len() as u64, frame, ts));
        if f.frames.len() > MAX_FRAME_MAP {
            f.frames.pop_front();
        }
        if at >= INSPECT_CAP {
            f.opaque += data.len() as u64;
            return;
        }
        let keep = ((INSPECT_CAP - at) as usize).min(data.len());
        f.opaque += (data.len() - keep) as u64;
        let data = &data[..keep];
        let mut hits = Vec::new();
        let server_port = f.server.1;
        read_client(
            f,
            &self.matcher,
            at,
            data,
            server_port,
            &mut hits,
            &mut self.dns_queries,
            frame,
            ts,
        );
        f.add_hits(hits);
    }

    fn udp(&mut self, idx: usize, frame: u64, ts: Timestamp, src: Endpoint, payload: &[u8]) {
        let f = &mut self.flows[idx];
        f.last_ts = ts;
        let outbound = src == f.client;
        let digest = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            payload.hash(&mut h);
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
            f.quic = Some(Box::default());
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
                        self.dns_names.insert(ip, name);
                    }
                    return;
                }
                for name in msg.questions {
                    for r in self.matcher.scan_layers(name.as_bytes(), true) {
                        f.add(r.identifier, r.encoding, "dns.qname".into(), frame, ts);
                    }
                    self.dns_queries.push(DnsQuery { name, frame, ts });
                }
            }
            Protocol::Quic => {
                let Some(q) = f.quic.as_mut().filter(|_| outbound) else {
                    // Server packets: protected with keys derived from the client's, but they
                    // carry nothing the handset said.
                    f.opaque += payload.len() as u64;
                    return;
                };
                let before = q.opaque;
                let hello = q.datagram(payload);
                f.opaque += q.opaque - before;
                if let Some(hello) = hello {
                    if let Some(sni) = &hello.sni {
                        for r in self.matcher.scan_layers(sni.as_bytes(), true) {
                            f.add(r.identifier, r.encoding, "tls.sni".into(), frame, ts);
                        }
                    }
                    f.sni = hello.sni.filter(|s| !s.is_empty());
                    f.alpn = hello.alpn;
                }
            }
            _ if outbound => {
                for r in self.matcher.scan_layers(payload, true) {
                    f.add(r.identifier, r.encoding, "udp.payload".into(), frame, ts);
                }
            }
            _ => {}
        }
    }

    /// Ends a flow's streams: lost bytes skipped, buffered bytes searched, state freed.
    fn close(&mut self, idx: usize) {
        if self.flows[idx].closed {
            return;
        }
        if self.flows[idx].tcp {
            for d in 0..2 {
                while !self.flows[idx].dirs[d].ooo.is_empty() {
                    self.skip_gap(idx, d);
                }
            }
        }
        let f = &mut self.flows[idx];
        let mut hits = Vec::new();
        match std::mem::replace(&mut f.reader, Reader::Opaque) {
            Reader::Http(mut h) => {
                h.finish(&self.matcher, &mut hits);
                f.opaque += h.opaque;
            }
            Reader::Detect { abs, buf } if !buf.is_empty() => {
                let mut s = StreamScanner::at(abs);
                for m in s.feed(&self.matcher, abs, &buf) {
                    hits.push(hit(
                        &self.matcher,
                        m.identifier,
                        m.encoding,
                        "tcp.payload",
                        m.end - 1,
                    ));
                }
            }
            Reader::Tls { buf, .. } | Reader::DnsTcp { buf, .. } => f.opaque += buf.len() as u64,
            _ => {}
        }
        f.add_hits(hits);
        f.dirs = [TcpDir::default(), TcpDir::default()];
        f.frames = VecDeque::new();
        f.quic = None;
        f.last_datagram = None;
        f.closed = true;
        if let Some(pos) = self.open.iter().position(|&i| i == idx) {
            self.open.remove(pos);
        }
    }

    /// Everything learnt, sorted: flows by first frame, findings by (frame, identifier, encoding,
    /// location), DNS queries by frame.
    pub fn finish(mut self) -> (Vec<Flow>, Vec<Finding>, Vec<DnsQuery>) {
        for idx in 0..self.flows.len() {
            self.close(idx);
        }
        let mut flows = Vec::with_capacity(self.flows.len());
        let mut findings = Vec::new();
        for f in self.flows {
            let (host, host_source) = if let Some(s) = &f.sni {
                (s.clone(), HostSource::Sni)
            } else if let Some(h) = &f.http_host {
                (h.clone(), HostSource::Http)
            } else if let Some(n) = &f.dns_name {
                (n.clone(), HostSource::Dns)
            } else {
                (f.server.0.to_string(), HostSource::Ip)
            };
            for ((identifier, encoding, location), (frame, ts)) in f.findings {
                findings.push(Finding {
                    identifier: self.matcher.kind(identifier).to_string(),
                    encoding,
                    host: host.clone(),
                    host_source,
                    protocol: f.protocol,
                    location,
                    frame,
                    ts,
                });
            }
            flows.push(Flow {
                transport: if f.tcp { "tcp" } else { "udp" },
                client: f.client,
                server: f.server,
                host,
                host_source,
                protocol: f.protocol,
                first_frame: f.first_frame,
                first_ts: f.first_ts,
                last_ts: f.last_ts,
                bytes_out: f.bytes_out,
                bytes_in: f.bytes_in,
                opaque_bytes: f.opaque,
                gap_bytes: f.gap_bytes,
                alpn: f.alpn,
            });
        }
        flows.sort_by(|a, b| {
            (a.first_frame, a.client, a.server).cmp(&(b.first_frame, b.client, b.server))
        });
        findings.sort_by(|a, b| {
            (a.frame, &a.identifier, &a.encoding, &a.location, &a.host).cmp(&(
                b.frame,
                &b.identifier,
                &b.encoding,
                &b.location,
                &b.host,
            ))
        });
        self.dns_queries.sort_by_key(|q| q.frame);
        (flows, findings, self.dns_queries)
    }
}

fn hit(m: &Matcher, identifier: usize, encoding: usize, location: &str, at: u64) -> Hit {
    Hit {
        identifier,
        encoding: m.encoding_name(encoding).to_string(),
        location: location.to_string(),
        at,
    }
}

/// Client on a packet that is neither SYN nor SYN-ACK: the side on a high port talking to a
/// well-known one, else the sender.
fn guess_client(src: Endpoint, dst: Endpoint) -> Endpoint {
    let well_known = |p: u16| p < 1024 || DNS_PORTS.contains(&p);
    if well_known(src.1) && !well_known(dst.1) {
        dst
    } else {
        src
    }
}

/// Feeds in-order client bytes to the flow's reader, switching readers as the protocol becomes known.
#[allow(clippy::too_many_arguments)]
fn read_client(
    f: &mut FlowState,
    m: &Matcher,
    at: u64,
    data: &[u8],
    server_port: u16,
    hits: &mut Vec<Hit>,
    queries: &mut Vec<DnsQuery>,
    frame: u64,
    ts: Timestamp,
) {
    loop {
        match &mut f.reader {
            Reader::Detect { abs, buf } => {
                if *abs + buf.len() as u64 != at {
                    // A gap before we could tell: search it raw.
                    let mut s = StreamScanner::at(*abs);
                    raw(&mut s, m, *abs, &buf.clone(), "tcp.payload", hits);
                    f.reader = Reader::Raw(s);
                    continue;
                }
                buf.extend_from_slice(data);
                let start = *abs;
                let bytes = std::mem::take(buf);
                let next = if DNS_PORTS.contains(&server_port) {
                    f.protocol = Protocol::Dns;
                    Reader::DnsTcp {
                        abs: start,
                        buf: Vec::new(),
                    }
                } else if bytes.len() < 3 && bytes.first() == Some(&0x16) {
                    f.reader = Reader::Detect {
                        abs: start,
                        buf: bytes,
                    };
                    return;
                } else if tls::looks_like_tls(&bytes) {
                    f.protocol = Protocol::Tls;
                    Reader::Tls {
                        abs: start,
                        buf: Vec::new(),
                    }
                } else {
                    match looks_like_http(&bytes) {
                        Some(true) => {
                            f.protocol = Protocol::Http;
                            Reader::Http(HttpStream::new(start))
                        }
                        None => {
                            f.reader = Reader::Detect {
                                abs: start,
                                buf: bytes,
                            };
                            return;
                        }
                        Some(false) => Reader::Raw(StreamScanner::at(start)),
                    }
                };
                f.reader = next;
                // Depth 1: the reader just chosen is never `Detect`.
                return read_client(f, m, start, &bytes, server_port, hits, queries, frame, ts);
            }
            Reader::Tls { abs, buf } => {
                buf.extend_from_slice(data);
                match tls::client_hello(buf) {
                    tls::Progress::NeedMore if buf.len() <= MAX_HELLO + 5 * 8 => return,
                    tls::Progress::Hello(hello, used) => {
                        if let Some(sni) = &hello.sni {
                            let end = *abs + used as u64 - 1;
                            for r in m.scan_layers(sni.as_bytes(), true) {
                                hits.push(Hit {
                                    identifier: r.identifier,
                                    encoding: r.encoding,
                                    location: "tls.sni".into(),
                                    at: end,
                                });
                            }
                        }
                        f.sni = hello.sni.filter(|s| !s.is_empty());
                        f.alpn = hello.alpn;
                        f.opaque += (buf.len() - used) as u64;
                    }
                    _ => f.opaque += buf.len() as u64,
                }
                f.reader = Reader::Opaque;
                return;
            }
            Reader::Opaque => {
                f.opaque += data.len() as u64;
                return;
            }
            Reader::Http(h) => {
                let r = h.feed(m, at, data, hits);
                if f.http_host.is_none() {
                    f.http_host = h.host.clone();
                }
                match r {
                    Ok(()) => return,
                    Err(unparsed) => {
                        f.opaque += h.opaque;
                        let mut s = StreamScanner::at(unparsed.abs);
                        raw(
                            &mut s,
                            m,
                            unparsed.abs,
                            &unparsed.bytes,
                            "tcp.payload",
                            hits,
                        );
                        f.reader = Reader::Raw(s);
                        return;
                    }
                }
            }
            Reader::DnsTcp { abs, buf } => {
                if *abs + buf.len() as u64 != at {
                    f.reader = Reader::Raw(StreamScanner::at(at));
                    continue;
                }
                buf.extend_from_slice(data);
                while buf.len() >= 2 {
                    let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
                    if buf.len() < 2 + len {
                        break;
                    }
                    if let Some(msg) = dns::parse(&buf[2..2 + len])
                        && !msg.is_response
                    {
                        for name in msg.questions {
                            let end = *abs + 2 + len as u64 - 1;
                            for r in m.scan_layers(name.as_bytes(), true) {
                                hits.push(Hit {
                                    identifier: r.identifier,
                                    encoding: r.encoding,
                                    location: "dns.qname".into(),
                                    at: end,
                                });
                            }
                            queries.push(DnsQuery { name, frame, ts });
                        }
                    }
                    buf.drain(..2 + len);
                    *abs += 2 + len as u64;
                }
                return;
            }
            Reader::Raw(s) => {
                raw(s, m, at, data, "tcp.payload", hits);
                return;
            }
        }
    }
}

fn raw(
    s: &mut StreamScanner,
    m: &Matcher,
    at: u64,
    data: &[u8],
    location: &str,
    hits: &mut Vec<Hit>,
) {
    for x in s.feed(m, at, data) {
        hits.push(hit(m, x.identifier, x.encoding, location, x.end - 1));
    }
    // Decoded layers of this piece only: a blob split across segments is searched by its needles,
    // not decoded.
    for r in m.scan_layers(data, false) {
        hits.push(Hit {
            identifier: r.identifier,
            encoding: r.encoding,
            location: location.to_string(),
            at: at + r.end as u64 - 1,
        });
    }
}
