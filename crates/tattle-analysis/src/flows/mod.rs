//! Flows: TCP connections and UDP conversations, from their first packet to their end, and what
//! each one's bytes say.
//!
//! Owns the life of a flow: the client/server decision (the SYN sender; else the side on an
//! ephemeral port facing a well-known one; else the first sender); its end — RST, FIN from both
//! sides, FIN from one side and then silence for `CLOSING_IDLE`, silence for `TCP_IDLE` /
//! `UDP_IDLE`, a new SYN that reuses its addresses, or the end of the capture; and what is
//! remembered after it ended (`table::Ended`), so trailing ACKs start nothing and a connection that
//! comes back after a long silence continues as a *resumed* flow with the same client, protocol
//! and host. An ended flow is handed to the `Sink` with its findings and dropped: memory follows
//! the flows open at once, never the length of the capture.
//!
//! Memory is bounded by bytes, not by a count: every open flow's state counts against
//! `MAX_FLOW_STATE`; past it the least recently active flows are ended early (`FlowEnd::Evicted`),
//! which loses nothing unless such a flow later sends again (then it is resumed and the cut is
//! reported as a limit). The bytes flows hold for later (out-of-order segments, unfinished HTTP
//! messages, undecided stream starts, offset → frame maps) share a second budget, `MAX_BUFFERED`:
//! past it the largest holders are searched as far as they go and flushed (reported as a limit).
//!
//! The rooms: `table` (keys, slots in activity order, ended-flow memory), `tcp` (reassembly),
//! `client` (the client→server stream's reader: protocol detection, TLS, HTTP, HTTP/2, DNS over
//! TCP, raw), `datagram` (UDP: DNS, QUIC, raw), `limits` (bounds and the notes of what they cut).
//! Only what the client sends is searched (that is what leaves the handset); server→client bytes
//! are counted.
//!
//! Must not touch: the capture container (see `reader`), I/O.

mod client;
mod datagram;
mod decrypted;
mod life;
pub(crate) mod limits;
pub(crate) mod table;
mod tcp;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use crate::dns::DNS_PORTS;
use crate::keylog::KeyLog;
use crate::matcher::{Hit, Matcher};
use crate::packet::{Packet, Transport};
use crate::sink::Sink;
use crate::tls::stream::KeyView;
use crate::{Finding, FlowEnd, HostSource, Protocol, Timestamp};

use client::Reader;
pub(crate) use limits::*;
use table::{EndedRing, Endpoint, Entry, FlowKey, FxBuild, List, Lists, NIL};
use tcp::TcpDir;

/// A finding of a flow before the flow ends: (identifier, encoding, location, name) → where first.
/// `name` is set when the finding is about a name rather than the flow's host (a DNS question).
type FindingKey = (usize, String, String, Option<String>);

/// One open flow.
#[derive(Debug)]
pub(crate) struct FlowState {
    key: FlowKey,
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
    dns_name: Option<Arc<str>>,
    /// Name and source carried over from the flow this one resumes.
    resumed_host: Option<(Arc<str>, HostSource)>,
    resumed: bool,
    alpn: Vec<String>,
    dirs: [TcpDir; 2],
    reader: Reader,
    /// (end offset exclusive, frame, ts) of client→server bytes.
    frames: VecDeque<(u64, u64, Timestamp)>,
    findings: HashMap<FindingKey, (u64, Timestamp)>,
    /// Bytes this flow held when last accounted in `Engine::held`.
    held: usize,
    /// Its fixed state when last accounted in `Engine::open` (`FLOW_STATE_BYTES` and what its
    /// reader keeps beyond that, such as a decrypting TLS flow's keys).
    state: usize,
    /// (outbound, payload hash, ts) of the last UDP datagram, to drop the second copy `-i any`
    /// records of every loopback packet.
    last_datagram: Option<(bool, u64, Timestamp)>,
    /// QUIC client state, for UDP flows whose first client datagram is a v1 Initial.
    quic: Option<Box<datagram::QuicFlow>>,
    /// A TLS flow's facts and decryption status, kept current by its reader.
    tls: Option<crate::TlsSummary>,
    /// What a TLS flow's decrypted bytes speak.
    tls_app: Option<&'static str>,
}

impl FlowState {
    fn frame_of(&self, at: u64) -> (u64, Timestamp) {
        let i = self.frames.partition_point(|(end, _, _)| *end <= at);
        match self.frames.get(i).or(self.frames.back()) {
            Some(&(_, f, ts)) => (f, ts),
            None => (self.first_frame, self.first_ts),
        }
    }

    /// How a finding at `location` was seen: decrypted TLS (version and suite) for anything but
    /// the ClientHello of a flow whose records were opened.
    fn tls_use(&self, location: &str) -> Option<crate::TlsUse> {
        let t = self.tls.as_ref()?;
        if location == "tls.sni" || t.decrypted_bytes == 0 {
            return None;
        }
        Some(crate::TlsUse {
            version: t.version?,
            cipher: t.cipher?,
        })
    }

    /// The best name known for the server now: SNI, HTTP Host, a DNS answer, the resumed flow's,
    /// else the address.
    fn host(&self) -> (String, HostSource) {
        if let Some(s) = &self.sni {
            (s.clone(), HostSource::Sni)
        } else if let Some(h) = &self.http_host {
            (h.clone(), HostSource::Http)
        } else if let Some(n) = &self.dns_name {
            (n.to_string(), HostSource::Dns)
        } else if let Some((n, s)) = &self.resumed_host {
            (n.to_string(), *s)
        } else {
            (self.server.0.to_string(), HostSource::Ip)
        }
    }

    /// Bytes held for later: out-of-order segments, the reader's unfinished input, the frame map.
    fn holding(&self) -> usize {
        let segments = self.dirs[0].ooo.len() + self.dirs[1].ooo.len();
        self.dirs[0].ooo_bytes
            + self.dirs[1].ooo_bytes
            + segments * OOO_ENTRY
            + self.reader.buffered()
            + self.quic.as_ref().map_or(0, |q| q.buffered())
            + self.frames.len() * FRAME_ENTRY
    }

    /// Stream bytes waiting for more (out of order, an unfinished message): what ending the flow
    /// now would search before their time.
    fn unfinished(&self) -> usize {
        self.dirs[0].ooo_bytes
            + self.dirs[1].ooo_bytes
            + self.reader.buffered()
            + self.quic.as_ref().map_or(0, |q| q.buffered())
    }

    /// Which activity list the flow belongs in now.
    fn list(&self) -> List {
        if !self.tcp {
            List::Udp
        } else if self.dirs[0].fin || self.dirs[1].fin {
            List::Closing
        } else {
            List::Tcp
        }
    }
}

/// A finding to record in a flow: which identifier, how encoded, where, the stream offset that
/// completed it (or the frame directly), and the name it is about, if not the flow's host.
pub(crate) struct NewFinding {
    identifier: usize,
    encoding: String,
    location: String,
    name: Option<String>,
    frame: u64,
    ts: Timestamp,
}

/// Decoded packets in, ended flows (with their findings) and DNS questions out to a `Sink`.
#[derive(Debug)]
pub struct Engine<S> {
    matcher: Arc<Matcher>,
    sink: S,
    table: HashMap<FlowKey, Entry, FxBuild>,
    /// The last key looked up and its open slot: bulk transfers are long runs of one flow's packets.
    last: Option<(FlowKey, u32)>,
    slots: Vec<Option<Box<FlowState>>>,
    free: Vec<u32>,
    lists: Lists,
    ended: EndedRing,
    /// Bytes held by all open flows (sum of their `held`).
    held: usize,
    /// Open flows' fixed state: `FLOW_STATE_BYTES` each, plus what their readers keep beyond it.
    open: usize,
    /// Flows open now.
    open_count: usize,
    /// The last frame seen, and the latest timestamp.
    frame: u64,
    now: Timestamp,
    /// `MAX_BUFFERED` and `MAX_FLOW_STATE` (smaller in tests).
    max_buffered: usize,
    max_state: usize,
    dns_names: HashMap<IpAddr, Arc<str>, FxBuild>,
    /// Decoded HTTP body bytes still allowed (see `DECODE_BUDGET_BASE`).
    decode_budget: u64,
    notes: Notes,
    names: client::CleanNames,
    /// Key logs: the caller's and what the capture's Decryption Secrets Blocks added.
    keys: KeyView,
    /// TLS flows holding records for keys a later Decryption Secrets Block may bring: client
    /// random → slot (checked on use: the slot may hold another flow by then).
    awaiting: HashMap<[u8; 32], u32, FxBuild>,
    /// Flows ended so far (a test's view of the engine).
    ended_count: u64,
}

/// The open flow in `slots[$idx]`, or return: a flow closed by an earlier step has nothing to do.
macro_rules! flow {
    ($slots:expr, $idx:expr) => {
        match $slots.get_mut($idx as usize).and_then(|s| s.as_deref_mut()) {
            Some(f) => f,
            None => return,
        }
    };
}
pub(crate) use flow;

/// The readers' view of the engine (`client::Context`) for a packet at `frame`/`ts`, borrowing
/// the engine's fields one by one so that a flow's slot can be borrowed beside it.
macro_rules! context {
    ($engine:expr, $frame:expr, $ts:expr) => {
        crate::flows::client::Context {
            matcher: &$engine.matcher,
            keys: &$engine.keys,
            names: &mut $engine.names,
            decode_budget: &mut $engine.decode_budget,
            decode_cut: &mut $engine.notes.decode_cut,
            sink: &mut $engine.sink,
            frame: $frame,
            ts: $ts,
        }
    };
}
pub(crate) use context;

impl<S: Sink> Engine<S> {
    pub fn new(matcher: Arc<Matcher>, sink: S) -> Self {
        Engine {
            matcher,
            sink,
            table: HashMap::default(),
            last: None,
            slots: Vec::new(),
            free: Vec::new(),
            lists: Lists::default(),
            ended: EndedRing::new(MAX_ENDED_KEYS),
            held: 0,
            open: 0,
            open_count: 0,
            frame: 0,
            now: 0.0,
            max_buffered: MAX_BUFFERED,
            max_state: MAX_FLOW_STATE,
            dns_names: HashMap::default(),
            decode_budget: DECODE_BUDGET_BASE,
            notes: Notes::default(),
            names: client::CleanNames::default(),
            keys: KeyView::default(),
            awaiting: HashMap::default(),
            ended_count: 0,
        }
    }

    /// Decrypts TLS with the secrets of `keys` (shared, read-only).
    pub fn with_keys(mut self, keys: Arc<KeyLog>) -> Self {
        self.keys.base = keys;
        self
    }

    /// Key log text from the capture (a Decryption Secrets Block): its secrets open the TLS
    /// flows whose records come after it. Past `MAX_LEARNED_KEYS` connections more are ignored.
    pub fn learn_keys(&mut self, text: &[u8]) {
        if self.keys.learned.len() >= MAX_LEARNED_KEYS {
            self.notes.learned_keys.add(self.frame, 1);
            return;
        }
        let mut noted = Vec::new();
        self.keys.learned.add_text_noting(text, &mut noted);
        // Flows that held their records for these keys open them now; their findings keep the
        // frames the records came in.
        for random in noted {
            let Some(idx) = self.awaiting.remove(&random) else {
                continue;
            };
            let Some(f) = self
                .slots
                .get_mut(idx as usize)
                .and_then(|s| s.as_deref_mut())
            else {
                continue;
            };
            if !matches!(&f.reader, Reader::TlsData(t) if t.awaiting() == Some(random)) {
                continue;
            }
            let mut hits = Vec::new();
            let mut ctx = context!(self, self.frame, self.now);
            decrypted::feed(f, &mut ctx, decrypted::Side::Keys, 0, &[], &mut hits);
            self.add_hits(idx, hits);
            self.account(idx);
        }
    }

    /// The capture may carry Decryption Secrets Blocks (it is pcapng): TLS flows whose keys are
    /// not known yet hold their records (bounded) until a block brings them.
    pub fn expect_keys(&mut self) {
        self.keys.may_learn = true;
    }

    /// Sets the shared decode budget's starting value (a shard of a parallel analysis gets its
    /// share).
    pub fn with_decode_budget(mut self, base: u64) -> Self {
        self.decode_budget = base;
        self
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Flows open now.
    pub fn open_flows(&self) -> usize {
        self.open_count
    }

    /// The slot of `key`'s open flow, if any.
    fn lookup(&mut self, key: &FlowKey) -> Option<Entry> {
        if let Some((k, i)) = &self.last
            && k == key
        {
            return Some(Entry::Open(*i));
        }
        let e = self.table.get(key).copied();
        if let Some(Entry::Open(i)) = e {
            self.last = Some((*key, i));
        }
        e
    }

    /// One decoded packet, frame `frame` (1-based) captured at `ts`.
    pub fn packet(&mut self, frame: u64, ts: Timestamp, p: &Packet<'_>) {
        self.frame = frame;
        if ts > self.now {
            self.now = ts;
            self.expire();
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
                let opens = syn && !ack;
                let idx = match self.lookup(&key) {
                    Some(Entry::Open(i)) => {
                        if opens && self.is_new_connection(i, src, seq) {
                            self.end(i, FlowEnd::Reused);
                            self.create(key, sides(src, src, dst), frame, ts, None)
                        } else {
                            i
                        }
                    }
                    Some(Entry::Ended(e)) if !opens => {
                        match self.resume_tcp(e, src, seq, payload.len(), fin || rst) {
                            Some(ended) => {
                                let sides = sides(ended.client, src, dst);
                                self.create(key, sides, frame, ts, Some(ended))
                            }
                            // A trailing ACK, a retransmission, or the last FIN of a flow ended.
                            None => return,
                        }
                    }
                    // An ACK, FIN or RST without data of a connection not followed (it ended,
                    // or began before the capture): nothing to start a flow with.
                    _ if !syn && payload.is_empty() => return,
                    _ => {
                        let client = if syn && !ack {
                            src
                        } else if syn && ack {
                            dst
                        } else {
                            guess_client(src, dst)
                        };
                        self.create(key, sides(client, src, dst), frame, ts, None)
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
                    Some(Entry::Ended(e)) => {
                        // A datagram after a conversation ended idle is a new conversation (on
                        // the same sides); after one was evicted for memory, it goes on.
                        let ended = self.ended.get(e).cloned();
                        let client = ended
                            .as_ref()
                            .map_or_else(|| guess_client(src, dst), |e| e.client);
                        let evicted = ended.filter(|e| e.end == FlowEnd::Evicted);
                        if evicted.is_some() {
                            self.notes.resumed_evicted.add(frame, 1);
                        }
                        self.create(key, sides(client, src, dst), frame, ts, evicted)
                    }
                    None => {
                        let sides = sides(guess_client(src, dst), src, dst);
                        self.create(key, sides, frame, ts, None)
                    }
                };
                self.udp(idx, frame, ts, src, payload);
                idx
            }
        };
        self.account(idx);
    }

    /// Brings `held` up to date with what flow `idx` holds now, enforcing the buffer budget.
    fn account(&mut self, idx: u32) {
        let Some(f) = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.as_deref_mut())
        else {
            return;
        };
        let now = f.holding();
        self.held = self.held - f.held + now;
        f.held = now;
        let state = FLOW_STATE_BYTES + f.reader.state_bytes();
        self.open = self.open - f.state + state;
        f.state = state;
        if let Reader::TlsData(t) = &f.reader
            && let Some(random) = t.awaiting()
        {
            self.awaiting.insert(random, idx);
        }
        let list = f.list();
        self.lists.touch(idx, list);
        if self.held > self.max_buffered {
            self.enforce_budget();
        }
        // A flow that grew (keys for its records) may push the state past its budget: the least
        // recently active flows make room, as for a new one.
        while self.open > self.max_state && self.open_count > 1 {
            if !self.evict_oldest() {
                break;
            }
        }
    }

    /// Flushes the flows holding the most until half the budget is left. Each pass is linear in
    /// the open flows, and frees at least half the budget, which input must refill first.
    fn enforce_budget(&mut self) {
        let mut holders: Vec<(usize, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|f| f.held > 0)
                    .map(|f| (f.held, i as u32))
            })
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
            self.notes.budget.add(self.frame, 1);
            self.flush(idx);
            let Some(f) = self
                .slots
                .get_mut(idx as usize)
                .and_then(|s| s.as_deref_mut())
            else {
                continue;
            };
            let now = f.holding();
            self.held = self.held - f.held + now;
            f.held = now;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        idx: u32,
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
        let d = usize::from(src != f.client);
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
        if rst {
            self.end(idx, FlowEnd::Reset);
        } else if f.dirs[0].fin && f.dirs[1].fin {
            self.end(idx, FlowEnd::Fin);
        }
    }

    /// In-order stream bytes of direction `d` at offset `at`.
    fn deliver(&mut self, idx: u32, d: usize, at: u64, data: &[u8], frame: u64, ts: Timestamp) {
        let f = flow!(self.slots, idx);
        if d == 1 {
            f.bytes_in += data.len() as u64;
            if matches!(f.protocol, Protocol::Tls) {
                f.opaque += data.len() as u64;
                if matches!(&f.reader, Reader::TlsData(t) if t.wants_server()) {
                    // The ServerHello: version, suite, and what the held client records need.
                    let mut hits = Vec::new();
                    let mut ctx = context!(self, frame, ts);
                    decrypted::feed(f, &mut ctx, decrypted::Side::Server, at, data, &mut hits);
                    self.add_hits(idx, hits);
                }
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
        self.decode_budget = self
            .decode_budget
            .saturating_add(DECODE_PER_BYTE * keep as u64);
        let mut hits = Vec::new();
        let mut ctx = context!(self, frame, ts);
        client::read(f, &mut ctx, at, data, &mut hits);
        self.add_hits(idx, hits);
    }

    /// Records stream hits (offsets) as findings of flow `idx`.
    fn add_hits(&mut self, idx: u32, hits: Vec<Hit>) {
        if hits.is_empty() {
            return;
        }
        let f = flow!(self.slots, idx);
        for h in hits {
            let (frame, ts) = f.frame_of(h.at);
            let new = NewFinding {
                identifier: h.identifier,
                encoding: h.encoding,
                location: h.location,
                name: None,
                frame,
                ts,
            };
            record(f, &self.matcher, &mut self.sink, new);
        }
    }

    /// Searches and drops everything flow `idx` holds, keeping it open: missing TCP bytes are
    /// declared lost, an unfinished HTTP message is searched as far as it goes, and the rest of
    /// the stream is searched raw.
    fn flush(&mut self, idx: u32) {
        self.skip_all_gaps(idx);
        self.quic_flush(idx, false);
        let f = flow!(self.slots, idx);
        let mut hits = Vec::new();
        let mut ctx = context!(self, self.frame, self.now);
        client::flush(f, &mut ctx, &mut hits);
        self.add_hits(idx, hits);
        let f = flow!(self.slots, idx);
        // Nothing pending refers back into the stream any more.
        let keep = f.frames.len().saturating_sub(1);
        f.frames.drain(..keep);
        f.frames.shrink_to_fit();
    }

    /// A DNS answer seen by another shard of a parallel analysis: names later flows here too.
    pub(crate) fn learn_name(&mut self, ip: IpAddr, name: &str) {
        self.remember_name(ip, name);
    }

    fn remember_name(&mut self, ip: IpAddr, name: &str) {
        if self.dns_names.len() < MAX_DNS_NAMES || self.dns_names.contains_key(&ip) {
            self.dns_names.insert(ip, Arc::from(name));
        } else {
            self.notes.dns_names.add(self.frame, 1);
        }
    }

    #[cfg(test)]
    fn set_limits(&mut self, max_buffered: usize, max_state: usize) {
        self.max_buffered = max_buffered;
        self.max_state = max_state;
    }
}

/// Records one finding in flow `f` (the first frame of a repeat wins) and tells the sink of a new
/// one at once, with the host known now (the flow's final host comes with `Sink::flow`).
pub(crate) fn record<S: Sink>(f: &mut FlowState, matcher: &Matcher, sink: &mut S, n: NewFinding) {
    let key = (n.identifier, n.encoding, n.location, n.name);
    if let Some(prev) = f.findings.get_mut(&key) {
        if n.frame < prev.0 {
            *prev = (n.frame, n.ts);
        }
        return;
    }
    if f.findings.len() >= MAX_FINDINGS_PER_FLOW {
        return;
    }
    let (host, host_source) = match &key.3 {
        Some(name) => (name.clone(), HostSource::Qname),
        None => f.host(),
    };
    sink.live_finding(&Finding {
        identifier: matcher.kind(key.0).to_string(),
        encoding: key.1.clone(),
        host,
        host_source,
        protocol: f.protocol,
        location: key.2.clone(),
        flow: f.first_frame,
        frame: n.frame,
        ts: n.ts,
        tls: f.tls_use(&key.2),
    });
    f.findings.insert(key, (n.frame, n.ts));
}

/// (client, server) of a packet from `src` to `dst` whose client is `client`.
fn sides(client: Endpoint, src: Endpoint, dst: Endpoint) -> (Endpoint, Endpoint) {
    if client == src {
        (src, dst)
    } else {
        (dst, src)
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

#[allow(dead_code)]
const _: () = assert!(NIL == u32::MAX);
