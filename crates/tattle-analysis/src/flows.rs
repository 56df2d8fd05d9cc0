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
//! Memory is bounded by the capture's *open* flows, not its size: a closed flow keeps only its final
//! `Flow` and findings (its reassembly and reader state are freed, its slot reused), open flows are
//! capped at `MAX_OPEN_FLOWS`, and the bytes all open flows hold (out-of-order segments, unfinished
//! HTTP heads and bodies, undecided stream starts, offset → frame maps) share one budget,
//! `MAX_BUFFERED`: past it the largest holders are flushed early, as if their missing bytes were lost.
//! Every limit that cuts something is reported as damage.
//!
//! Must not touch: the capture container (see `reader`), I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;

use super::dns::{self, DNS_PORTS};
use super::http::{HttpStream, looks_like_http};
use super::matcher::{Hit, Matcher, StreamScanner};
use super::packet::{Packet, Transport};
use super::quic::{self, QuicClient};
use super::tls::{self, MAX_HELLO};
use super::{Damage, DnsQuery, Finding, Flow, HostSource, Protocol, Timestamp};

/// Client bytes searched per flow.
pub const INSPECT_CAP: u64 = 4 << 20;
/// Out-of-order bytes held per direction before the missing ones are declared lost.
pub const MAX_OOO_BYTES: usize = 1 << 20;
const MAX_OOO_SEGMENTS: usize = 2048;
/// Stream-offset → frame entries kept per flow (oldest dropped first).
const MAX_FRAME_MAP: usize = 4096;
/// Entries further back than this from the newest byte are dropped: no reader reports a match that
/// far behind (an HTTP body is at most `MAX_BODY` after its head, a head at most `MAX_HEAD`).
const FRAME_MAP_REACH: u64 = 4 << 20;
/// Distinct findings kept per flow.
const MAX_FINDINGS_PER_FLOW: usize = 10_000;
/// Flows tracked at once; past it the oldest open flow is closed early. An open flow costs about
/// 1 KiB (state, table entry), so this bounds the open flows to ~32 MiB. UDP conversations never
/// close, so a long capture reaches it with old DNS lookups: closing those early loses nothing (a
/// later datagram starts a new flow); a TCP connection closed early loses what it sends after,
/// and is reported.
pub const MAX_OPEN_FLOWS: usize = 32_768;
/// Bytes held by all open flows together (out-of-order data, unfinished messages, frame maps);
/// past it the largest holders are flushed until half of it is left.
pub const MAX_BUFFERED: usize = 32 << 20;
/// A UDP conversation silent this long (capture time, seconds) is closed, as conntrack does: UDP
/// has no end, and without this every DNS lookup of a long capture would stay open to the end.
pub const UDP_IDLE: f64 = 120.0;
/// Packets between two sweeps for idle UDP conversations (each sweep is linear in the open flows).
const SWEEP_EVERY: u64 = 16_384;
/// 4-tuples of closed TCP flows remembered (to tell a trailing ACK from a new connection).
const MAX_CLOSED_KEYS: usize = 65_536;
/// DNS questions kept for the report.
pub const MAX_DNS_QUERIES: usize = 100_000;
/// Addresses named by DNS answers kept (to name later flows).
pub const MAX_DNS_NAMES: usize = 100_000;
/// Decoded HTTP body bytes the capture may produce: this much, plus `DECODE_PER_BYTE` per client
/// byte seen, so the work stays proportional to the input whatever the compression ratios.
pub const DECODE_BUDGET_BASE: u64 = 16 << 20;
pub const DECODE_PER_BYTE: u64 = 8;
const NTP_PORT: u16 = 123;
/// Two identical datagrams of one flow, same direction, this close (seconds): one packet captured
/// twice (loopback seen leaving and arriving on `-i any`), not an application repeat.
const DUPLICATE_WINDOW: f64 = 0.001;
/// Bytes a held out-of-order segment costs besides its payload (tree node share, allocation).
const OOO_ENTRY: usize = 96;
/// Bytes an offset → frame entry costs.
const FRAME_ENTRY: usize = std::mem::size_of::<(u64, u64, Timestamp)>();

type Endpoint = (IpAddr, u16);

/// A multiply-rotate hasher (the Fx scheme): the flow table is looked up once per packet, and
/// SipHash's DoS resistance buys nothing against a capture, whose keys are bounded by
/// `MAX_OPEN_FLOWS` anyway.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(FX_K).rotate_left(26);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl Hash for FlowKey {
    /// Whole words rather than the derived byte-by-byte walk through two `IpAddr` enums.
    fn hash<H: Hasher>(&self, h: &mut H) {
        let word = |ip: &IpAddr| -> (u64, u64) {
            match ip {
                IpAddr::V4(v) => (u32::from(*v) as u64, 0),
                IpAddr::V6(v) => {
                    let n = u128::from(*v);
                    ((n >> 64) as u64, n as u64 | 1 << 63)
                }
            }
        };
        let (a, b) = word(&self.lo.0);
        let (c, d) = word(&self.hi.0);
        let ports = (self.lo.1 as u64) << 32 | (self.hi.1 as u64) << 16 | self.tcp as u64;
        h.write_u64(a ^ ports);
        h.write_u64(c);
        if b | d != 0 {
            h.write_u64(b);
            h.write_u64(d);
        }
    }
}

/// Where a key's flow lives: a slot of an open flow, or the index of a finished one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Open(usize),
    Done(usize),
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
    /// Boxed: most flows never carry HTTP, and the state would make every flow bigger.
    Http(Box<HttpStream>),
    /// DNS over TCP: 2-byte length, message.
    DnsTcp {
        abs: u64,
        buf: Vec<u8>,
    },
    Raw(StreamScanner),
}

#[derive(Debug)]
struct FlowState {
    key: FlowKey,
    /// Creation order, to recognise this flow's entry in `Engine::open`.
    id: u64,
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
    /// Bytes this flow held when last accounted in `Engine::held`.
    held: usize,
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

    /// Bytes held for later: out-of-order segments, the reader's unfinished input, the frame map.
    fn holding(&self) -> usize {
        let reader = match &self.reader {
            Reader::Detect { buf, .. } | Reader::Tls { buf, .. } | Reader::DnsTcp { buf, .. } => {
                buf.len()
            }
            Reader::Http(h) => h.buffered(),
            Reader::Opaque | Reader::Raw(_) => 0,
        };
        let segments = self.dirs[0].ooo.len() + self.dirs[1].ooo.len();
        self.dirs[0].ooo_bytes
            + self.dirs[1].ooo_bytes
            + segments * OOO_ENTRY
            + reader
            + self.frames.len() * FRAME_ENTRY
    }
}

/// A limit that cut something: how often, and the frame where it first did.
#[derive(Debug, Default)]
struct Note {
    count: u64,
    first_frame: u64,
}

impl Note {
    fn add(&mut self, frame: u64, n: u64) {
        if self.count == 0 {
            self.first_frame = frame;
        }
        self.count += n;
    }

    fn damage(&self, what: impl FnOnce(u64) -> String) -> Option<Damage> {
        (self.count > 0).then(|| Damage {
            offset: None,
            after_frame: self.first_frame.saturating_sub(1),
            what: format!("{} (first: frame {})", what(self.count), self.first_frame),
        })
    }
}

#[derive(Debug, Default)]
struct Notes {
    dns_queries: Note,
    dns_names: Note,
    open_cap: Note,
    budget: Note,
    decode_cut: Note,
}

/// State the readers of all flows share.
#[derive(Debug)]
struct Shared {
    dns_queries: Vec<DnsQuery>,
    max_queries: usize,
    /// Decoded HTTP body bytes still allowed (see `DECODE_BUDGET_BASE`).
    decode_budget: u64,
    notes: Notes,
}

impl Shared {
    fn query(&mut self, q: DnsQuery) {
        if self.dns_queries.len() < self.max_queries {
            self.dns_queries.push(q);
        } else {
            self.notes.dns_queries.add(q.frame, 1);
        }
    }

    /// Runs `step` on an HTTP stream with the capture's decode budget, noting bodies it cut.
    fn with_budget<R>(
        &mut self,
        h: &mut HttpStream,
        frame: u64,
        step: impl FnOnce(&mut HttpStream) -> R,
    ) -> R {
        h.decode_budget = self.decode_budget;
        let cut = h.decode_cut;
        let r = step(h);
        self.decode_budget = h.decode_budget;
        if h.decode_cut > cut {
            self.notes.decode_cut.add(frame, h.decode_cut - cut);
        }
        r
    }
}

/// Decoded packets in, flows and findings out.
#[derive(Debug)]
pub struct Engine {
    matcher: Matcher,
    table: HashMap<FlowKey, Entry, FxBuild>,
    /// The last key looked up: bulk transfers are long runs of one flow's packets.
    last: Option<(FlowKey, Entry)>,
    /// Open flows; a closed flow's slot is reused.
    slots: Vec<Option<Box<FlowState>>>,
    free: Vec<usize>,
    /// (slot, id) of open flows, oldest first. A flow closed elsewhere leaves its entry behind; it
    /// is skipped when reached (or swept when they pile up).
    open: VecDeque<(usize, u64)>,
    open_count: usize,
    next_id: u64,
    /// Keys of closed flows still in `table`, oldest first (bounded by `MAX_CLOSED_KEYS`).
    closed_keys: VecDeque<(FlowKey, usize)>,
    done: Vec<Flow>,
    findings: Vec<Finding>,
    /// Bytes held by all open flows (sum of their `held`).
    held: usize,
    /// The last frame seen, and the latest timestamp.
    frame: u64,
    now: Timestamp,
    /// `MAX_OPEN_FLOWS` and `MAX_BUFFERED` (smaller in tests).
    max_open: usize,
    max_buffered: usize,
    dns_names: HashMap<IpAddr, String, FxBuild>,
    shared: Shared,
}

/// The open flow in `slots[$idx]`, or return: a flow closed by an earlier step has nothing to do.
macro_rules! flow {
    ($slots:expr, $idx:expr) => {
        match $slots.get_mut($idx).and_then(|s| s.as_deref_mut()) {
            Some(f) => f,
            None => return,
        }
    };
}

impl Engine {
    pub fn new(matcher: Matcher) -> Self {
        Engine {
            matcher,
            table: HashMap::default(),
            last: None,
            slots: Vec::new(),
            free: Vec::new(),
            open: VecDeque::new(),
            open_count: 0,
            next_id: 0,
            closed_keys: VecDeque::new(),
            done: Vec::new(),
            findings: Vec::new(),
            held: 0,
            frame: 0,
            now: 0.0,
            max_open: MAX_OPEN_FLOWS,
            max_buffered: MAX_BUFFERED,
            dns_names: HashMap::default(),
            shared: Shared {
                dns_queries: Vec::new(),
                max_queries: MAX_DNS_QUERIES,
                decode_budget: DECODE_BUDGET_BASE,
                notes: Notes::default(),
            },
        }
    }

    fn lookup(&mut self, key: &FlowKey) -> Option<Entry> {
        if let Some((k, e)) = &self.last
            && k == key
        {
            return Some(*e);
        }
        let e = self.table.get(key).copied();
        if let Some(e) = e {
            self.last = Some((*key, e));
        }
        e
    }

    pub fn packet(&mut self, frame: u64, ts: Timestamp, p: &Packet<'_>) {
        self.frame = frame;
        if ts > self.now {
            self.now = ts;
        }
        if frame.is_multiple_of(SWEEP_EVERY) {
            self.expire_udp(frame);
        }
        let idx = match p.transport {
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
                let idx = match self.lookup(&key) {
                    Some(Entry::Open(i)) => i,
                    Some(Entry::Done(d)) if !reuse => {
                        // Trailing ACKs of a finished connection.
                        if let Some(f) = self.done.get_mut(d) {
                            f.last_ts = ts;
                        }
                        return;
                    }
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
                idx
            }
            Transport::Udp {
                src_port,
                dst_port,
                payload,
            } => {
                let src = (p.src, src_port);
                let dst = (p.dst, dst_port);
                let key = FlowKey::new(src, dst, false);
                let idx = match self.lookup(&key) {
                    Some(Entry::Open(i)) => i,
                    // A conversation closed early (open-flow cap) that goes on: a new flow.
                    _ => self.create(key, guess_client(src, dst), frame, ts),
                };
                self.udp(idx, frame, ts, src, payload);
                idx
            }
        };
        self.account(idx, frame);
    }

    /// Closes the UDP conversations idle for more than `UDP_IDLE`.
    fn expire_udp(&mut self, frame: u64) {
        let idle: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|f| !f.tcp && f.last_ts + UDP_IDLE < self.now)
                    .map(|_| i)
            })
            .collect();
        for idx in idle {
            self.close(idx, frame);
        }
    }

    /// Brings `held` up to date with what flow `idx` holds now, enforcing the global budget.
    fn account(&mut self, idx: usize, frame: u64) {
        let Some(f) = self.slots.get_mut(idx).and_then(|s| s.as_deref_mut()) else {
            return;
        };
        let now = f.holding();
        self.held = self.held - f.held + now;
        f.held = now;
        if self.held > self.max_buffered {
            self.enforce_budget(frame);
        }
    }

    /// Flushes the flows holding the most until half the budget is left. Each pass is linear in
    /// the open flows, and frees at least half the budget, which input must refill first.
    fn enforce_budget(&mut self, frame: u64) {
        let mut holders: Vec<(usize, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|f| f.held > 0).map(|f| (f.held, i)))
            .collect();
        holders.sort_unstable_by(|a, b| b.cmp(a));
        tracing::debug!(
            held = self.held,
            "buffer budget exceeded: flushing the largest holders"
        );
        for (_, idx) in holders {
            if self.held <= self.max_buffered / 2 {
                break;
            }
            self.shared.notes.budget.add(frame, 1);
            self.flush(idx, frame);
            let Some(f) = self.slots.get_mut(idx).and_then(|s| s.as_deref_mut()) else {
                continue;
            };
            let now = f.holding();
            self.held = self.held - f.held + now;
            f.held = now;
        }
    }

    fn create(&mut self, key: FlowKey, client: Endpoint, frame: u64, ts: Timestamp) -> usize {
        if let Some(Entry::Open(old)) = self.table.get(&key).copied() {
            self.close(old, frame);
        }
        while self.open_count >= self.max_open {
            let Some((slot, id)) = self.open.pop_front() else {
                break;
            };
            if let Some(f) = self.slots.get(slot).and_then(|s| s.as_ref())
                && f.id == id
            {
                tracing::debug!("open-flow cap reached: closing the oldest flow early");
                if f.tcp {
                    self.shared.notes.open_cap.add(frame, 1);
                }
                self.close(slot, frame);
            }
        }
        if self.open.len() > 2 * self.open_count + 1024 {
            // Entries of flows closed by FIN/RST pile up behind a long-lived one: sweep them.
            let slots = &self.slots;
            self.open.retain(|&(slot, id)| {
                slots.get(slot).and_then(|s| s.as_ref()).map(|f| f.id) == Some(id)
            });
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
        let id = self.next_id;
        self.next_id += 1;
        let state = Box::new(FlowState {
            key,
            id,
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
            held: 0,
            last_datagram: None,
            quic: None,
        });
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(state);
                i
            }
            None => {
                self.slots.push(Some(state));
                self.slots.len() - 1
            }
        };
        self.table.insert(key, Entry::Open(idx));
        self.last = None;
        self.open.push_back((idx, id));
        self.open_count += 1;
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
        let f = flow!(self.slots, idx);
        f.last_ts = ts;
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
        let f = flow!(self.slots, idx);
        if fin {
            f.dirs[d].fin = true;
        }
        if rst || (f.dirs[0].fin && f.dirs[1].fin) {
            self.close(idx, frame);
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
        let dir = &mut flow!(self.slots, idx).dirs[d];
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
        match dir.ooo.get(&off) {
            Some((old, _, _)) if old.len() >= payload.len() => return,
            Some((old, _, _)) => dir.ooo_bytes -= old.len(),
            None => {}
        }
        dir.ooo_bytes += payload.len();
        dir.ooo.insert(off, (payload.to_vec(), frame, ts));
        // Holding more than the bound: the missing bytes are not coming; skip them.
        loop {
            let dir = &flow!(self.slots, idx).dirs[d];
            if dir.ooo_bytes <= MAX_OOO_BYTES && dir.ooo.len() <= MAX_OOO_SEGMENTS {
                return;
            }
            self.skip_gap(idx, d);
        }
    }

    /// Declares the bytes before the first buffered segment lost and delivers what follows.
    fn skip_gap(&mut self, idx: usize, d: usize) {
        let f = flow!(self.slots, idx);
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
            let dir = &mut flow!(self.slots, idx).dirs[d];
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
        let f = flow!(self.slots, idx);
        if d == 1 {
            f.bytes_in += data.len() as u64;
            if matches!(f.protocol, Protocol::Tls) {
                f.opaque += data.len() as u64;
            }
            return;
        }
        f.bytes_out += data.len() as u64;
        if at >= INSPECT_CAP {
            f.opaque += data.len() as u64;
            return;
        }
        let end = at + data.len() as u64;
        // Only searched bytes need a frame; old entries go once no reader can look back that far.
        match f.frames.back_mut() {
            Some(last) if last.1 == frame => last.0 = end,
            _ => f.frames.push_back((end, frame, ts)),
        }
        while f.frames.len() > MAX_FRAME_MAP
            || f.frames.front().is_some_and(|e| e.0 + FRAME_MAP_REACH < at)
        {
            f.frames.pop_front();
        }
        let keep = ((INSPECT_CAP - at) as usize).min(data.len());
        f.opaque += (data.len() - keep) as u64;
        let data = &data[..keep];
        self.shared.decode_budget = self
            .shared
            .decode_budget
            .saturating_add(DECODE_PER_BYTE * keep as u64);
        let mut hits = Vec::new();
        let server_port = f.server.1;
        read_client(
            f,
            &self.matcher,
            at,
            data,
            server_port,
            &mut hits,
            &mut self.shared,
            frame,
            ts,
        );
        f.add_hits(hits);
    }

    fn udp(&mut self, idx: usize, frame: u64, ts: Timestamp, src: Endpoint, payload: &[u8]) {
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
                        if self.dns_names.len() < MAX_DNS_NAMES || self.dns_names.contains_key(&ip)
                        {
                            self.dns_names.insert(ip, name);
                        } else {
                            self.shared.notes.dns_names.add(frame, 1);
                        }
                    }
                    return;
                }
                for name in msg.questions {
                    for r in self.matcher.scan_layers(name.as_bytes(), true) {
                        f.add(r.identifier, r.encoding, "dns.qname".into(), frame, ts);
                    }
                    self.shared.query(DnsQuery { name, frame, ts });
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

    /// Declares every byte still missing in either direction of a TCP flow lost, so what is held out
    /// of order can be searched.
    fn skip_all_gaps(&mut self, idx: usize) {
        if flow!(self.slots, idx).tcp {
            for d in 0..2 {
                while !flow!(self.slots, idx).dirs[d].ooo.is_empty() {
                    self.skip_gap(idx, d);
                }
            }
        }
    }

    /// Searches and drops everything flow `idx` holds, keeping it open: missing TCP bytes are
    /// declared lost, an unfinished HTTP message is searched as far as it goes, and the rest of
    /// the stream is searched raw.
    fn flush(&mut self, idx: usize, frame: u64) {
        self.skip_all_gaps(idx);
        let f = flow!(self.slots, idx);
        let next = f.dirs[0].next;
        let mut hits = Vec::new();
        let reader = match std::mem::replace(&mut f.reader, Reader::Opaque) {
            Reader::Http(mut h) => {
                self.shared
                    .with_budget(&mut h, frame, |h| h.finish(&self.matcher, &mut hits));
                f.opaque += h.opaque;
                Reader::Raw(StreamScanner::at(next))
            }
            Reader::Detect { abs, buf } => {
                let mut s = StreamScanner::at(abs);
                if !buf.is_empty() {
                    raw(&mut s, &self.matcher, abs, &buf, "tcp.payload", &mut hits);
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
        f.reader = reader;
        f.add_hits(hits);
        // Nothing pending refers back into the stream any more.
        let keep = f.frames.len().saturating_sub(1);
        f.frames.drain(..keep);
        f.frames.shrink_to_fit();
    }

    /// Ends a flow's streams (lost bytes skipped, buffered bytes searched) and keeps only its final
    /// `Flow` and findings.
    fn close(&mut self, idx: usize, frame: u64) {
        self.skip_all_gaps(idx);
        let f = flow!(self.slots, idx);
        let mut hits = Vec::new();
        match std::mem::replace(&mut f.reader, Reader::Opaque) {
            Reader::Http(mut h) => {
                self.shared
                    .with_budget(&mut h, frame, |h| h.finish(&self.matcher, &mut hits));
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
        let Some(f) = self.slots.get_mut(idx).and_then(Option::take) else {
            return;
        };
        self.free.push(idx);
        self.open_count -= 1;
        self.held -= f.held;
        let f = *f;
        let (host, host_source) = if let Some(s) = f.sni {
            (s, HostSource::Sni)
        } else if let Some(h) = f.http_host {
            (h, HostSource::Http)
        } else if let Some(n) = f.dns_name {
            (n, HostSource::Dns)
        } else {
            (f.server.0.to_string(), HostSource::Ip)
        };
        for ((identifier, encoding, location), (frame, ts)) in f.findings {
            self.findings.push(Finding {
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
        let done = self.done.len();
        self.done.push(Flow {
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
        if self.table.get(&f.key) == Some(&Entry::Open(idx)) {
            self.table.insert(f.key, Entry::Done(done));
            self.closed_keys.push_back((f.key, done));
            if self.closed_keys.len() > MAX_CLOSED_KEYS
                && let Some((key, d)) = self.closed_keys.pop_front()
                && self.table.get(&key) == Some(&Entry::Done(d))
            {
                self.table.remove(&key);
            }
        }
        self.last = None;
    }

    /// Everything learnt, sorted: flows by first frame, findings by (frame, identifier, encoding,
    /// location), DNS queries by frame; and the limits that cut something, as damage.
    pub fn finish(mut self) -> (Vec<Flow>, Vec<Finding>, Vec<DnsQuery>, Vec<Damage>) {
        // Oldest first, as the flows were opened.
        let mut open: Vec<(u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|f| (f.id, i)))
            .collect();
        open.sort_unstable();
        for (_, idx) in open {
            self.close(idx, self.frame);
        }
        let mut flows = self.done;
        let mut findings = self.findings;
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
        let mut queries = self.shared.dns_queries;
        queries.sort_by_key(|q| q.frame);
        let n = &self.shared.notes;
        let damage = [
            n.dns_queries.damage(|c| {
                format!("{c} DNS question(s) not listed: more than {MAX_DNS_QUERIES} in the capture")
            }),
            n.dns_names.damage(|c| {
                format!(
                    "{c} DNS answer(s) not used to name flows: more than {MAX_DNS_NAMES} addresses"
                )
            }),
            n.open_cap.damage(|c| {
                format!(
                    "{c} TCP connection(s) closed early: more than {} flows open at once",
                    self.max_open
                )
            }),
            n.budget.damage(|c| {
                format!(
                    "{c} flow(s) flushed early: open flows held more than {} MiB",
                    MAX_BUFFERED >> 20
                )
            }),
            n.decode_cut.damage(|c| {
                format!(
                    "{c} HTTP body(ies) decoded only in part (decompression ratio or budget); counted opaque"
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        (flows, findings, queries, damage)
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
    shared: &mut Shared,
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
                            Reader::Http(Box::new(HttpStream::new(start)))
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
                return read_client(f, m, start, &bytes, server_port, hits, shared, frame, ts);
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
                let r = shared.with_budget(h, frame, |h| h.feed(m, at, data, hits));
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
                            shared.query(DnsQuery { name, frame, ts });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifier::Identifier;
    use crate::packet::decode;
    use crate::packet::tests::{ethernet, ipv4_tcp, ipv4_udp};

    const IMEI: &str = "356938035643809";
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    const FIN_ACK: u8 = 0x11;
    const C: [u8; 4] = [10, 0, 0, 2];
    const S: [u8; 4] = [10, 0, 0, 1];

    fn engine() -> Engine {
        Engine::new(Matcher::new(&[Identifier::new("imei", IMEI)]))
    }

    struct Feed {
        e: Engine,
        frame: u64,
    }

    impl Feed {
        fn send(&mut self, frame: &[u8]) {
            self.frame += 1;
            let p = decode(1, frame).expect("packet");
            // A millisecond apart: no UDP conversation goes idle in these tests.
            self.e.packet(self.frame, self.frame as f64 * 1e-3, &p);
        }

        /// A whole connection from `port`: handshake, `data` in one segment, FIN both ways.
        fn connection(&mut self, port: u16, data: &[u8]) {
            self.send(&ethernet(&ipv4_tcp(C, S, port, 80, 100, SYN, b"")));
            self.send(&ethernet(&ipv4_tcp(S, C, 80, port, 500, SYN | ACK, b"")));
            self.send(&ethernet(&ipv4_tcp(C, S, port, 80, 101, PSH_ACK, data)));
            let end = 101 + data.len() as u32;
            self.send(&ethernet(&ipv4_tcp(C, S, port, 80, end, FIN_ACK, b"")));
            self.send(&ethernet(&ipv4_tcp(S, C, 80, port, 501, FIN_ACK, b"")));
            self.send(&ethernet(&ipv4_tcp(C, S, port, 80, end + 1, ACK, b"")));
        }
    }

    #[test]
    fn closed_flows_keep_only_their_summary_and_free_their_slot() {
        let mut f = Feed {
            e: engine(),
            frame: 0,
        };
        // One UDP conversation stays open throughout, in front of the open-flow queue.
        f.send(&ethernet(&ipv4_udp(C, S, 5000, 9999, b"hello")));
        for i in 0..3000u16 {
            f.connection(20_000 + i, format!("id={IMEI}").as_bytes());
        }
        assert_eq!(f.e.slots.len(), 2, "slots are reused");
        assert_eq!(f.e.open_count, 1);
        assert!(
            f.e.open.len() <= 2 * f.e.open_count + 1024 + 1,
            "{}",
            f.e.open.len()
        );
        assert_eq!(f.e.done.len(), 3000);
        assert_eq!(f.e.held, 0);
        // A trailing ACK on a closed 4-tuple updates that flow; a new SYN opens a new one.
        f.send(&ethernet(&ipv4_tcp(C, S, 20_000, 80, 200, ACK, b"")));
        f.send(&ethernet(&ipv4_tcp(C, S, 20_000, 80, 9000, SYN, b"")));
        let (flows, findings, _, damage) = f.e.finish();
        assert_eq!(flows.len(), 3002);
        assert_eq!(findings.len(), 3000);
        assert!(findings.iter().all(|x| x.location == "tcp.payload"));
        assert!(damage.is_empty(), "{damage:?}");
        let first = flows.iter().find(|x| x.client.1 == 20_000).unwrap();
        assert_eq!(first.last_ts, (1 + 3000 * 6 + 1) as f64 * 1e-3);
    }

    #[test]
    fn the_open_flow_cap_closes_the_oldest_in_constant_time() {
        let mut f = Feed {
            e: engine(),
            frame: 0,
        };
        f.e.max_open = 100;
        for i in 0..1000u16 {
            f.send(&ethernet(&ipv4_tcp(C, S, 1000 + i, 80, 1, SYN, b"")));
        }
        assert_eq!(f.e.open_count, 100);
        assert!(f.e.open.len() <= 100 + 1024);
        assert_eq!(f.e.slots.len(), 100);
        let (flows, _, _, damage) = f.e.finish();
        assert_eq!(flows.len(), 1000);
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert!(
            damage[0]
                .what
                .starts_with("900 TCP connection(s) closed early"),
            "{}",
            damage[0].what
        );
        assert_eq!(damage[0].after_frame, 100);
    }

    #[test]
    fn the_global_buffer_budget_flushes_the_largest_holders() {
        let mut f = Feed {
            e: engine(),
            frame: 0,
        };
        f.e.max_buffered = 256 << 10;
        let chunk = vec![b'x'; 1000];
        // 20 connections, each holding 100 kB out of order (its first byte never comes), with the
        // IMEI in the held bytes.
        for c in 0..20u16 {
            let port = 30_000 + c;
            f.send(&ethernet(&ipv4_tcp(C, S, port, 80, 100, SYN, b"")));
            let mut seq = 102;
            f.send(&ethernet(&ipv4_tcp(
                C,
                S,
                port,
                80,
                seq,
                PSH_ACK,
                IMEI.as_bytes(),
            )));
            seq += IMEI.len() as u32;
            for _ in 0..100 {
                f.send(&ethernet(&ipv4_tcp(C, S, port, 80, seq, PSH_ACK, &chunk)));
                seq += chunk.len() as u32;
                assert!(f.e.held <= f.e.max_buffered, "{}", f.e.held);
            }
        }
        let evicted = f.e.shared.notes.budget.count;
        assert!(evicted >= 10, "{evicted}");
        let (flows, findings, _, damage) = f.e.finish();
        // Flushed or closed, every connection's bytes were searched, its missing byte a gap.
        assert_eq!(findings.len(), 20);
        assert!(flows.iter().all(|x| x.gap_bytes == 1));
        assert!(
            damage.iter().any(|d| d.what.contains("flushed early")),
            "{damage:?}"
        );
    }

    #[test]
    fn idle_udp_conversations_are_closed() {
        let mut f = Feed {
            e: engine(),
            frame: 0,
        };
        let q = dns::tests::query(1, "a.example");
        // Many lookups, one per source port, each 1 s apart; a conversation active throughout.
        for i in 0..(2 * SWEEP_EVERY) {
            f.frame += 1;
            let port = 10_000 + (i % 50_000) as u16;
            let frame = ethernet(&ipv4_udp(C, S, port, 53, &q));
            let p = decode(1, &frame).expect("packet");
            f.e.packet(f.frame, i as f64, &p);
            let keep = ethernet(&ipv4_udp(C, S, 7000, 7001, &i.to_be_bytes()));
            let p = decode(1, &keep).expect("packet");
            f.frame += 1;
            f.e.packet(f.frame, i as f64, &p);
        }
        // Only those of the last UDP_IDLE seconds (plus one sweep interval) are still open.
        assert!(
            f.e.open_count <= UDP_IDLE as usize + SWEEP_EVERY as usize / 2 + 2,
            "{}",
            f.e.open_count
        );
        let (flows, _, queries, damage) = f.e.finish();
        assert_eq!(flows.len() as u64, 2 * SWEEP_EVERY + 1);
        assert_eq!(queries.len() as u64, 2 * SWEEP_EVERY);
        assert!(damage.is_empty(), "{damage:?}");
        let long = flows.iter().find(|x| x.client.1 == 7000).unwrap();
        assert_eq!(long.bytes_out, 2 * SWEEP_EVERY * 8);
    }

    #[test]
    fn dns_lists_are_bounded_and_the_cut_reported() {
        let mut f = Feed {
            e: engine(),
            frame: 0,
        };
        f.e.shared.max_queries = 10;
        for i in 0..25u16 {
            let q = dns::tests::query(i, &format!("h{i}.example"));
            f.send(&ethernet(&ipv4_udp(C, S, 40_000 + i, 53, &q)));
        }
        let (_, _, queries, damage) = f.e.finish();
        assert_eq!(queries.len(), 10);
        assert_eq!(damage.len(), 1);
        assert!(
            damage[0].what.starts_with("15 DNS question(s) not listed"),
            "{}",
            damage[0].what
        );
        assert_eq!(damage[0].after_frame, 10);
    }
}
