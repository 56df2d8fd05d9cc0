//! The two traffic models (`Shape`): sessions drawn from a mix, their packets interleaved.
//!
//! `Phone`: several sessions open at once. A session is DNS resolution followed by one connection:
//! TLS API calls (ClientHello with SNI and ALPN, opaque records), plain HTTP/1.1 GETs and form POSTs
//! (a minority carrying the IMEI or phone number as plain, URL-encoded, MD5 or base64 text, some
//! with gzip bodies), NTP, and bulk transfers (TLS and HTTP downloads, QUIC streaming, uploads) that
//! carry most of the bytes, as on a real phone.
//!
//! `ManyFlows`: ~48 short sessions at once from 32 clients; each a lookup (one in twenty with the
//! IMEI in a label of the name asked: plain, hex, base32, md5, base64url) and one small TLS or HTTP
//! exchange; connections end with FINs from both sides (a quarter), the client's FIN only, the
//! server's FIN only, a reset from either side, or nothing at all (a quarter).
//!
//! In both, server data is ACKed every second segment and one segment in 2000 is sent twice.
//!
//! Must not touch: the analysis (it is the thing measured), pcap framing (`Wire`).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use md5::Digest as _;

use super::frame::{ACK, FIN, L4, PSH, RST, SYN};
use super::{IMEI, PHONE, Plant, Rng, Wire};

/// Incompressible bytes that bulk payloads are sliced from (encrypted or compressed content).
const POOL_LEN: usize = 8 << 20;
const MSS_V4: usize = 1448;
const MSS_V6: usize = 1428;
const TLS_RECORD: usize = 16384 + 5;

const HOSTS: &[&str] = &[
    "android.clients.google.com",
    "play.googleapis.com",
    "connectivitycheck.gstatic.com",
    "www.google.com",
    "firebaseinstallations.googleapis.com",
    "mtalk.google.com",
    "app-measurement.com",
    "graph.facebook.com",
    "api.vendor.example",
    "push.vendor.example",
    "cdn.vendor.example",
    "ota.vendor.example",
    "weather.vendor.example",
    "log.vendor.example",
    "ads.tracker.example",
    "sdk.analytics.example",
    "rr3---sn-a5mekn6s.googlevideo.com",
    "i.ytimg.com",
    "scontent.xx.fbcdn.net",
    "time.android.com",
];

/// What a message body is made of: literal bytes, then `len` bytes of bulk content.
#[derive(Clone, Copy)]
enum Bulk {
    None,
    /// Opaque bytes (plain HTTP body of a download, QUIC payload).
    Raw {
        len: usize,
        off: usize,
    },
    /// TLS application-data records of at most 16 KiB, well formed, opaque content.
    Tls {
        len: usize,
        off: usize,
    },
}

struct Msg {
    from_client: bool,
    head: Vec<u8>,
    bulk: Bulk,
}

impl Msg {
    fn bytes(from_client: bool, head: Vec<u8>) -> Self {
        Msg {
            from_client,
            head,
            bulk: Bulk::None,
        }
    }

    fn len(&self) -> usize {
        self.head.len()
            + match self.bulk {
                Bulk::None => 0,
                Bulk::Raw { len, .. } | Bulk::Tls { len, .. } => len,
            }
    }

    /// Appends message bytes `pos..pos + n` to `out`.
    fn fill(&self, pool: &[u8], pos: usize, n: usize, out: &mut Vec<u8>) {
        let mut pos = pos;
        let end = pos + n;
        if pos < self.head.len() {
            let stop = end.min(self.head.len());
            out.extend_from_slice(&self.head[pos..stop]);
            pos = stop;
        }
        while pos < end {
            let b = pos - self.head.len();
            let stop_b = end - self.head.len();
            match self.bulk {
                Bulk::None => unreachable!("fill past the message"),
                Bulk::Raw { off, .. } => {
                    let start = (off + b) % (POOL_LEN - MSS_V4);
                    let take = (stop_b - b).min(POOL_LEN - start);
                    out.extend_from_slice(&pool[start..start + take]);
                    pos += take;
                }
                Bulk::Tls { len, off } => {
                    let rec_start = b / TLS_RECORD * TLS_RECORD;
                    let rec_len = TLS_RECORD.min(len - rec_start);
                    let in_rec = b - rec_start;
                    if in_rec < 5 {
                        let body = (rec_len - 5) as u16;
                        let hdr = [0x17, 0x03, 0x03, (body >> 8) as u8, body as u8];
                        let take = (5 - in_rec).min(stop_b - b);
                        out.extend_from_slice(&hdr[in_rec..in_rec + take]);
                        pos += take;
                    } else {
                        let start = (off + b) % (POOL_LEN - TLS_RECORD);
                        let take = (rec_len - in_rec).min(stop_b - b);
                        out.extend_from_slice(&pool[start..start + take]);
                        pos += take;
                    }
                }
            }
        }
    }
}

/// How a TCP connection ends in the capture. Phones and routers see every one of them: most
/// connections are not closed by a FIN from both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// FIN from the client, FIN from the server, last ACK.
    BothFin,
    /// The client's FIN, ACKed; the server never sends its own.
    ClientFin,
    /// The server's FIN, ACKed; the client goes quiet.
    ServerFin,
    ClientRst,
    ServerRst,
    /// No end at all: the connection just stops.
    Quiet,
}

/// One flow of a session: its endpoints, what each side sends in order, how it ends, and the
/// identifiers planted in it (kind, encoding, location).
struct Phase {
    tcp: bool,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    msgs: Vec<Msg>,
    ending: Ending,
    plants: Vec<(&'static str, &'static str, &'static str)>,
}

impl Phase {
    fn new(tcp: bool, client: (IpAddr, u16), server: (IpAddr, u16), msgs: Vec<Msg>) -> Self {
        Phase {
            tcp,
            client,
            server,
            msgs,
            ending: Ending::BothFin,
            plants: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Syn,
    SynAck,
    Ack,
    Data,
    /// The ending's packets, counted from 0.
    End(u8),
    Done,
}

/// A session being emitted: phases in order, the current message and offset, TCP state.
struct Session {
    category: &'static str,
    phases: Vec<Phase>,
    phase: usize,
    step: Step,
    msg: usize,
    pos: usize,
    seq: [u32; 2],
    /// Data segments received by the client since it last ACKed.
    unacked: u32,
}

impl Session {
    fn new(category: &'static str, phases: Vec<Phase>, rng: &mut Rng) -> Self {
        Session {
            category,
            phases,
            phase: 0,
            step: Step::Syn,
            msg: 0,
            pos: 0,
            seq: [rng.next_u64() as u32, rng.next_u64() as u32],
            unacked: 0,
        }
    }

    /// Moves to the next phase (a new flow with fresh sequence numbers).
    fn next_phase(&mut self, rng: &mut Rng) {
        self.phase += 1;
        self.msg = 0;
        self.pos = 0;
        self.step = Step::Syn;
        self.unacked = 0;
        self.seq = [rng.next_u64() as u32, rng.next_u64() as u32];
    }
}

/// What a capture looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A handset by bytes: a few sessions at once, bulk transfers carrying most bytes.
    Phone,
    /// A handset's or router's day by connections: ~48 short sessions at once from 32 clients,
    /// most TCP connections ending with one FIN, a reset or nothing, DNS lookups that leak.
    ManyFlows,
}

/// Generates the capture: sessions drawn from the traffic mix until `target_bytes` are written.
pub struct Generator {
    rng: Rng,
    pool: Vec<u8>,
    next_port: u16,
    shape: Shape,
    /// Sessions open at once (their packets interleave).
    pub concurrency: usize,
    /// Stop at this file size even inside sessions (small fuzz seeds); `None` drains them.
    pub hard_limit: Option<u64>,
    /// Identifier occurrences planted, by `kind:encoding` as the analysis names them (`gzip`
    /// for any form inside a gzip body): what a correct analysis must report.
    pub planted: std::collections::BTreeMap<&'static str, u64>,
    /// Every identifier planted, with its flow (`Shape::ManyFlows` records them; `Phone` counts
    /// `planted` only, its bulk flows are too long to keep a list for).
    pub plants: Vec<Plant>,
    /// Per traffic category: (sessions, frames, pcap bytes), to document the mix.
    pub mix: std::collections::BTreeMap<&'static str, (u64, u64, u64)>,
    /// Flows started, by how they end (`both-fin`, `client-fin`…, `udp`).
    pub endings: std::collections::BTreeMap<&'static str, u64>,
    /// Multiplies the gaps between packets (see `Wire::time_scale`).
    pub time_scale: u64,
    /// Capture time spanned by the last capture written, in seconds.
    pub duration: f64,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self::with_shape(seed, Shape::Phone)
    }

    pub fn with_shape(seed: u64, shape: Shape) -> Self {
        let mut rng = Rng::new(seed);
        let mut pool = Vec::with_capacity(POOL_LEN);
        while pool.len() < POOL_LEN {
            pool.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        Generator {
            rng,
            pool,
            next_port: 40_000,
            shape,
            concurrency: match shape {
                Shape::Phone => 6,
                Shape::ManyFlows => 48,
            },
            hard_limit: None,
            planted: Default::default(),
            plants: Vec::new(),
            mix: Default::default(),
            endings: Default::default(),
            time_scale: 1,
            duration: 0.0,
        }
    }

    /// Writes a capture of at least `target_bytes` (pcap file size) to `out`.
    pub fn write<W: Write>(&mut self, out: W, target_bytes: u64) -> io::Result<Wire<W>> {
        let mut w = Wire::new(out)?;
        w.time_scale = self.time_scale;
        let mut active: Vec<Session> = Vec::new();
        loop {
            while active.len() < self.concurrency && w.bytes() < target_bytes {
                let (category, phases) = match self.shape {
                    Shape::Phone => self.session(),
                    Shape::ManyFlows => self.short_session(),
                };
                self.mix.entry(category).or_default().0 += 1;
                active.push(Session::new(category, phases, &mut self.rng));
            }
            if active.is_empty() || self.hard_limit.is_some_and(|h| w.bytes() >= h) {
                break;
            }
            let i = self.rng.range(0, active.len() as u64) as usize;
            let (frames, bytes) = (w.frames(), w.bytes());
            let more = self.step(&mut w, &mut active[i])?;
            let m = self.mix.entry(active[i].category).or_default();
            m.1 += w.frames() - frames;
            m.2 += w.bytes() - bytes;
            if !more {
                active.swap_remove(i);
            }
        }
        w.flush()?;
        self.duration = (w.now_us() - super::START_US) as f64 / 1e6;
        Ok(w)
    }

    /// Notes the identifiers planted in the phase whose first packet is about to be written.
    fn flow_starts(&mut self, first_frame: u64, ph: &Phase) {
        let ending = if !ph.tcp {
            "udp"
        } else {
            match ph.ending {
                Ending::BothFin => "both-fin",
                Ending::ClientFin => "client-fin",
                Ending::ServerFin => "server-fin",
                Ending::ClientRst => "client-rst",
                Ending::ServerRst => "server-rst",
                Ending::Quiet => "quiet",
            }
        };
        *self.endings.entry(ending).or_default() += 1;
        for &(kind, encoding, location) in &ph.plants {
            self.plants.push(Plant {
                flow: first_frame,
                kind,
                encoding,
                location,
            });
        }
    }

    /// Emits the next packet of `s`; false when the session is over.
    fn step<W: Write>(&mut self, w: &mut Wire<W>, s: &mut Session) -> io::Result<bool> {
        loop {
            let Some(ph) = s.phases.get(s.phase) else {
                return Ok(false);
            };
            let (c, sv) = (ph.client, ph.server);
            if !ph.tcp {
                let Some(m) = ph.msgs.get(s.msg) else {
                    s.next_phase(&mut self.rng);
                    continue;
                };
                if s.msg == 0 {
                    self.flow_starts(w.frames() + 1, ph);
                }
                w.payload.clear();
                m.fill(&self.pool, 0, m.len(), &mut w.payload);
                let (src, dst) = if m.from_client { (c, sv) } else { (sv, c) };
                w.emit(&mut self.rng, src, dst, L4::Udp)?;
                s.msg += 1;
                return Ok(true);
            }
            let mss = if c.0.is_ipv4() { MSS_V4 } else { MSS_V6 };
            w.payload.clear();
            let [cs, ss] = s.seq;
            let tcp = |seq, ack, flags| L4::Tcp { seq, ack, flags };
            match s.step {
                Step::Syn => {
                    self.flow_starts(w.frames() + 1, ph);
                    w.emit(&mut self.rng, c, sv, tcp(cs, 0, SYN))?;
                    s.seq[0] = cs.wrapping_add(1);
                    s.step = Step::SynAck;
                }
                Step::SynAck => {
                    w.emit(&mut self.rng, sv, c, tcp(ss, s.seq[0], SYN | ACK))?;
                    s.seq[1] = ss.wrapping_add(1);
                    s.step = Step::Ack;
                }
                Step::Ack => {
                    w.emit(&mut self.rng, c, sv, tcp(cs, ss, ACK))?;
                    s.step = Step::Data;
                }
                Step::Data => {
                    if s.unacked >= 2 {
                        w.emit(&mut self.rng, c, sv, tcp(cs, ss, ACK))?;
                        s.unacked = 0;
                        return Ok(true);
                    }
                    let Some(m) = ph.msgs.get(s.msg) else {
                        s.step = Step::End(0);
                        continue;
                    };
                    let n = mss.min(m.len() - s.pos);
                    m.fill(&self.pool, s.pos, n, &mut w.payload);
                    let last = s.pos + n == m.len();
                    let flags = if last { PSH | ACK } else { ACK };
                    let (src, dst, seq, ack) = if m.from_client {
                        (c, sv, cs, ss)
                    } else {
                        (sv, c, ss, cs)
                    };
                    w.emit(&mut self.rng, src, dst, tcp(seq, ack, flags))?;
                    // A lost segment on a phone link: the same bytes again a little later.
                    if self.rng.range(0, 2000) == 0 {
                        w.emit(&mut self.rng, src, dst, tcp(seq, ack, flags))?;
                    }
                    let dir = usize::from(!m.from_client);
                    s.seq[dir] = s.seq[dir].wrapping_add(n as u32);
                    s.unacked = if m.from_client { 0 } else { s.unacked + 1 };
                    s.pos += n;
                    if last {
                        s.msg += 1;
                        s.pos = 0;
                    }
                }
                Step::End(k) => {
                    // (sender is the client, flags) of each packet of the ending, in order.
                    let script: &[(bool, u8)] = match ph.ending {
                        Ending::BothFin => &[(true, FIN | ACK), (false, FIN | ACK), (true, ACK)],
                        Ending::ClientFin => &[(true, FIN | ACK), (false, ACK)],
                        Ending::ServerFin => &[(false, FIN | ACK), (true, ACK)],
                        Ending::ClientRst => &[(true, RST | ACK)],
                        Ending::ServerRst => &[(false, RST | ACK)],
                        Ending::Quiet => &[],
                    };
                    let Some(&(from_client, flags)) = script.get(k as usize) else {
                        s.step = Step::Done;
                        continue;
                    };
                    let (src, dst, seq, ack) = if from_client {
                        (c, sv, s.seq[0], s.seq[1])
                    } else {
                        (sv, c, s.seq[1], s.seq[0])
                    };
                    w.emit(&mut self.rng, src, dst, tcp(seq, ack, flags))?;
                    if flags & FIN != 0 {
                        let dir = usize::from(!from_client);
                        s.seq[dir] = s.seq[dir].wrapping_add(1);
                    }
                    s.step = Step::End(k + 1);
                }
                Step::Done => {
                    s.next_phase(&mut self.rng);
                    continue;
                }
            }
            return Ok(true);
        }
    }

    fn port(&mut self) -> u16 {
        self.next_port = if self.next_port >= 60_999 {
            32_768
        } else {
            self.next_port + 1
        };
        self.next_port
    }

    /// The handset's address; `ManyFlows` spreads its flows over 32 clients (a router's view), so
    /// (address, port) pairs are not reused while a UDP conversation may still be open.
    fn phone_addr(&mut self, v6: bool) -> IpAddr {
        let host = match self.shape {
            Shape::Phone => 15,
            Shape::ManyFlows => 16 + self.rng.range(0, 32) as u8,
        };
        if v6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(host)))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 2, host))
        }
    }

    fn server_addr(host: &str, v6: bool) -> IpAddr {
        let h = host.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                (h >> 48) as u16,
                0,
                0,
                0,
                (h >> 16) as u16,
                h as u16,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                142,
                (h >> 40) as u8 | 1,
                (h >> 32) as u8,
                (h as u8).max(1),
            ))
        }
    }

    /// A DNS lookup from `phone` of `name`, answered with `server`.
    fn lookup(&mut self, phone: IpAddr, name: &str, server: IpAddr) -> Phase {
        let v6 = phone.is_ipv6();
        let resolver: IpAddr = if v6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x3))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3))
        };
        let id = self.rng.next_u64() as u16;
        Phase::new(
            false,
            (phone, self.port()),
            (resolver, 53),
            vec![
                Msg::bytes(true, dns_query(id, name, v6)),
                Msg::bytes(false, dns_answer(id, name, server)),
            ],
        )
    }

    fn bulk_off(&mut self) -> usize {
        self.rng.range(0, POOL_LEN as u64) as usize
    }

    /// A short session of the many-flow shape: a lookup (one in twenty leaking an identifier in
    /// the name asked), then one small TLS or HTTP exchange ending as connections on a phone do.
    fn short_session(&mut self) -> (&'static str, Vec<Phase>) {
        let v6 = self.rng.chance(20);
        let phone = self.phone_addr(v6);
        let host = *self.rng.pick(HOSTS);
        let server = Self::server_addr(host, v6);
        let mut phases = Vec::new();
        let kind = self.rng.range(0, 100);
        if kind < 10 || self.rng.chance(60) {
            let (name, plant) = if self.rng.chance(5) {
                self.leaky_name()
            } else {
                (host.to_string(), None)
            };
            let mut ph = self.lookup(phone, &name, server);
            ph.plants.extend(plant);
            phases.push(ph);
        }
        let client = (phone, self.port());
        let ending = match self.rng.range(0, 100) {
            0..25 => Ending::BothFin,
            25..50 => Ending::ClientFin,
            50..62 => Ending::ServerFin,
            62..68 => Ending::ClientRst,
            68..75 => Ending::ServerRst,
            _ => Ending::Quiet,
        };
        let category = match kind {
            0..10 => "dns only",
            10..60 => {
                let mut msgs = tls_handshake(&mut self.rng, host);
                let (req, resp) = (self.rng.range(100, 1500), self.rng.range(200, 6000));
                let (o1, o2) = (self.bulk_off(), self.bulk_off());
                msgs.push(tls_data(true, req as usize, o1));
                msgs.push(tls_data(false, resp as usize, o2));
                let mut ph = Phase::new(true, client, (server, 443), msgs);
                ph.ending = ending;
                phases.push(ph);
                "tls api call"
            }
            60..90 => {
                let (req, plant) = self.http_request(host);
                let body = format!("{{\"ok\":{}}}", self.rng.range(0, 1000));
                let mut ph = Phase::new(
                    true,
                    client,
                    (server, 80),
                    vec![Msg::bytes(true, req), Msg::bytes(false, http_ok(&body))],
                );
                ph.plants.extend(plant);
                ph.ending = ending;
                phases.push(ph);
                "http api (get/form)"
            }
            _ => {
                let (req, plants) = self.http_gzip_post(host);
                let mut ph = Phase::new(
                    true,
                    client,
                    (server, 80),
                    vec![Msg::bytes(true, req), Msg::bytes(false, http_ok("{}"))],
                );
                ph.plants.extend(plants);
                ph.ending = ending;
                phases.push(ph);
                "http gzip post"
            }
        };
        (category, phases)
    }

    /// A DNS name carrying the IMEI in one label, as telemetry SDKs and DNS tunnels do, in one of
    /// the encodings a label can hold.
    fn leaky_name(&mut self) -> (String, Option<(&'static str, &'static str, &'static str)>) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (label, encoding) = match self.rng.range(0, 5) {
            0 => (IMEI.to_string(), "plain"),
            1 => (hex::encode(IMEI), "hex"),
            2 => (base32_lower(IMEI.as_bytes()), "base32"),
            3 => (hex::encode(md5::Md5::digest(IMEI.as_bytes())), "md5"),
            // SHA-1 of this IMEI in base64url has `-` and `_`: it is not also base64.
            _ => (
                URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(IMEI.as_bytes())),
                "sha1+base64url",
            ),
        };
        let zone = *self
            .rng
            .pick(&["t.tracker.example", "dns.telemetry.example"]);
        *self.planted.entry("imei:dns.qname").or_default() += 1;
        (
            format!("{label}.{zone}"),
            Some(("imei", encoding, "dns.qname")),
        )
    }

    /// Draws one session from the traffic mix.
    fn session(&mut self) -> (&'static str, Vec<Phase>) {
        let v6 = self.rng.chance(25);
        let phone = self.phone_addr(v6);
        let host = *self.rng.pick(HOSTS);
        let server = Self::server_addr(host, v6);
        let mut phases = Vec::new();
        let kind = self.rng.range(0, 100);
        // Resolution first (cached names skip it), so DNS can name the flow.
        if kind < 12 || self.rng.chance(70) {
            let ph = self.lookup(phone, host, server);
            phases.push(ph);
        }
        let client = (phone, self.port());
        let tls = |msgs| Phase::new(true, client, (server, 443), msgs);
        let http = |msgs| Phase::new(true, client, (server, 80), msgs);
        match kind {
            // Lookup only (a name resolved for later or for a connectivity probe).
            0..12 => {}
            // TLS API call: ClientHello, server handshake, a request and an answer (an image or
            // a page for the last few percent).
            12..50 | 95.. => {
                let mut msgs = tls_handshake(&mut self.rng, host);
                let req = self.rng.range(200, 3000) as usize;
                let resp = if kind >= 95 {
                    self.rng.range(20_000, 200_000)
                } else {
                    self.rng.range(500, 20_000)
                } as usize;
                let (o1, o2) = (self.bulk_off(), self.bulk_off());
                msgs.push(tls_data(true, req, o1));
                msgs.push(tls_data(false, resp, o2));
                phases.push(tls(msgs));
            }
            // Plain HTTP API call, a quarter of them with an identifier.
            50..70 => {
                let (req, _) = self.http_request(host);
                let body = format!(
                    "{{\"status\":\"ok\",\"ttl\":{}}}",
                    self.rng.range(60, 86_400)
                );
                phases.push(http(vec![
                    Msg::bytes(true, req),
                    Msg::bytes(false, http_ok(&body)),
                ]));
            }
            // HTTP POST of a gzip JSON body (telemetry batches).
            70..78 => {
                let (req, _) = self.http_gzip_post(host);
                phases.push(http(vec![
                    Msg::bytes(true, req),
                    Msg::bytes(false, http_ok("{}")),
                ]));
            }
            // NTP.
            78..81 => {
                let mut q = vec![0u8; 48];
                q[0] = 0x23;
                let mut a = vec![0u8; 48];
                a[0] = 0x24;
                a[1] = 2;
                phases.push(Phase::new(
                    false,
                    (phone, 123),
                    (server, 123),
                    vec![Msg::bytes(true, q), Msg::bytes(false, a)],
                ));
            }
            // TLS download (app update, images, video segments).
            81..85 => {
                let mut msgs = tls_handshake(&mut self.rng, host);
                let len = self.rng.range(100_000, 2_000_000) as usize;
                let (o1, o2) = (self.bulk_off(), self.bulk_off());
                msgs.push(tls_data(true, 400, o1));
                msgs.push(tls_data(false, len, o2));
                phases.push(tls(msgs));
            }
            // Plain HTTP download (OTA and CDN content still travel in clear).
            85..87 => {
                let len = self.rng.range(100_000, 2_000_000) as usize;
                let req = format!(
                    "GET /pkg/{:08x}.bin HTTP/1.1\r\nHost: {host}\r\nUser-Agent: AndroidDownloadManager/14\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n",
                    self.rng.next_u64() as u32
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\n\r\n"
                );
                let off = self.bulk_off();
                phases.push(http(vec![
                    Msg::bytes(true, req.into_bytes()),
                    Msg {
                        from_client: false,
                        head: head.into_bytes(),
                        bulk: Bulk::Raw { len, off },
                    },
                ]));
            }
            // QUIC streaming: an Initial, then server datagrams with client ACKs.
            87..90 => {
                let mut msgs = Vec::new();
                let mut initial = vec![0xc3, 0, 0, 0, 1, 8];
                for _ in 0..1246 {
                    initial.push(self.rng.next_u64() as u8);
                }
                msgs.push(Msg::bytes(true, initial));
                let total = self.rng.range(100_000, 1_500_000) as usize;
                let mut sent = 0;
                let mut n = 0;
                while sent < total {
                    let off = self.bulk_off();
                    msgs.push(Msg {
                        from_client: false,
                        head: vec![0x40 | (self.rng.next_u64() as u8 & 0x3f)],
                        bulk: Bulk::Raw { len: 1251, off },
                    });
                    sent += 1252;
                    n += 1;
                    if n % 10 == 0 {
                        let off = self.bulk_off();
                        msgs.push(Msg {
                            from_client: true,
                            head: vec![0x41],
                            bulk: Bulk::Raw { len: 40, off },
                        });
                    }
                }
                phases.push(Phase::new(false, client, (server, 443), msgs));
            }
            // TLS upload (photo backup).
            90..93 => {
                let mut msgs = tls_handshake(&mut self.rng, host);
                let len = self.rng.range(50_000, 1_000_000) as usize;
                let (o1, o2) = (self.bulk_off(), self.bulk_off());
                msgs.push(tls_data(true, len, o1));
                msgs.push(tls_data(false, 300, o2));
                phases.push(tls(msgs));
            }
            // Plain HTTP upload (crash logs): client bytes the matcher must search.
            93..95 => {
                let len = self.rng.range(50_000, 500_000) as usize;
                let head = format!(
                    "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
                );
                let off = self.bulk_off();
                phases.push(http(vec![
                    Msg {
                        from_client: true,
                        head: head.into_bytes(),
                        bulk: Bulk::Raw { len, off },
                    },
                    Msg::bytes(false, http_ok("{}")),
                ]));
            }
        }
        (category(kind), phases)
    }

    /// A GET or form POST; one in four carries an identifier in one of the usual forms (in the
    /// URL of a GET, the body of a POST).
    fn http_request(
        &mut self,
        host: &str,
    ) -> (Vec<u8>, Option<(&'static str, &'static str, &'static str)>) {
        let tag = self.rng.next_u64() as u32;
        let ua = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240205.004)";
        let get = self.rng.chance(60);
        let location = if get { "http.url" } else { "http.body" };
        let (id_param, plant) = if self.rng.chance(25) {
            let (kind, encoding, param) = match self.rng.range(0, 6) {
                0 => ("imei", "plain", format!("&imei={IMEI}")),
                1 => ("phone_number", "url", format!("&msisdn={}", pct(PHONE))),
                2 => (
                    "imei",
                    "md5",
                    format!("&did={}", hex::encode(md5::Md5::digest(IMEI.as_bytes()))),
                ),
                3 => (
                    "imei",
                    "base64",
                    format!(
                        "&d={}",
                        pct(&base64::engine::general_purpose::STANDARD.encode(IMEI))
                    ),
                ),
                4 => (
                    "phone_number",
                    "md5",
                    format!("&h={}", hex::encode(md5::Md5::digest(PHONE.as_bytes()))),
                ),
                _ => ("phone_number", "plain", format!("&tel={PHONE}")),
            };
            let form = match (kind, encoding) {
                ("imei", "plain") => "imei:plain",
                ("imei", "md5") => "imei:md5",
                ("imei", _) => "imei:base64",
                ("phone_number", "url") => "phone_number:url",
                ("phone_number", "md5") => "phone_number:md5",
                _ => "phone_number:plain",
            };
            *self.planted.entry(form).or_default() += 1;
            (param, Some((kind, encoding, location)))
        } else {
            (String::new(), None)
        };
        let req = if get {
            format!(
                "GET /v1/config?app=com.vendor.app&v=14.2.{}&r={tag:08x}{id_param} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n",
                tag % 100
            )
            .into_bytes()
        } else {
            let body = format!(
                "event=app_open&ts=17000{tag:05}&lang=en-SG&net=wifi{id_param}&pad={}",
                "x".repeat(self.rng.range(0, 600) as usize)
            );
            format!(
                "POST /v1/events HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        (req, plant)
    }

    /// A gzip JSON batch; three in ten carry the IMEI and the phone number inside.
    fn http_gzip_post(
        &mut self,
        host: &str,
    ) -> (Vec<u8>, Vec<(&'static str, &'static str, &'static str)>) {
        let mut json = String::from("{\"events\":[");
        for i in 0..self.rng.range(5, 80) {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&format!(
                "{{\"name\":\"screen_view\",\"t\":{},\"dur\":{}}}",
                1_700_000_000u64 + self.rng.range(0, 100_000),
                self.rng.range(1, 9999)
            ));
        }
        json.push(']');
        let mut plants = Vec::new();
        if self.rng.chance(30) {
            *self.planted.entry("imei:gzip").or_default() += 1;
            plants.push(("imei", "gzip", "http.body"));
            plants.push(("phone_number", "gzip", "http.body"));
            json.push_str(&format!(
                ",\"device\":{{\"imei\":\"{IMEI}\",\"line1\":\"{PHONE}\"}}"
            ));
        }
        json.push('}');
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.as_bytes()).expect("gzip to memory");
        let body = gz.finish().expect("gzip to memory");
        let mut req = format!(
            "POST /batch HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        (req, plants)
    }
}

/// The traffic category of a session drawn with `kind` (see `Generator::session`).
fn category(kind: u64) -> &'static str {
    match kind {
        0..12 => "dns only",
        12..50 => "tls api call",
        95.. => "tls image/page",
        50..70 => "http api (get/form)",
        70..78 => "http gzip post",
        78..81 => "ntp",
        81..85 => "tls download",
        85..87 => "http download",
        87..90 => "quic stream",
        90..93 => "tls upload",
        _ => "http upload",
    }
}

/// Percent-encodes every byte but ASCII letters and digits.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 4648 base32, lower case, unpadded: how DNS tunnels put bytes in a label. Encoded by a
/// crate, not by the matcher's own code, so that a mistake there is not planted here too.
fn base32_lower(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD
        .encode(bytes)
        .to_ascii_lowercase()
}

fn http_ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn dns_query(id: u16, name: &str, v6: bool) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    dns_name(&mut q, name);
    q.extend_from_slice(&(if v6 { 28u16 } else { 1u16 }).to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

fn dns_answer(id: u16, name: &str, addr: IpAddr) -> Vec<u8> {
    let mut a = Vec::with_capacity(96);
    a.extend_from_slice(&id.to_be_bytes());
    a.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    dns_name(&mut a, name);
    let (rtype, rdata): (u16, Vec<u8>) = match addr {
        IpAddr::V4(v4) => (1, v4.octets().to_vec()),
        IpAddr::V6(v6) => (28, v6.octets().to_vec()),
    };
    a.extend_from_slice(&rtype.to_be_bytes());
    a.extend_from_slice(&1u16.to_be_bytes());
    a.extend_from_slice(&[0xc0, 0x0c]);
    a.extend_from_slice(&rtype.to_be_bytes());
    a.extend_from_slice(&1u16.to_be_bytes());
    a.extend_from_slice(&300u32.to_be_bytes());
    a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    a.extend_from_slice(&rdata);
    a
}

/// A TLS 1.3-style ClientHello (SNI, ALPN, groups, key share, padding to 512 bytes) and the server's
/// answer (ServerHello, ChangeCipherSpec, encrypted handshake as application data).
fn tls_handshake(rng: &mut Rng, sni: &str) -> Vec<Msg> {
    let mut ext = Vec::new();
    let mut push_ext = |ty: u16, body: &[u8]| {
        ext.extend_from_slice(&ty.to_be_bytes());
        ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
        ext.extend_from_slice(body);
    };
    let mut sn = Vec::new();
    sn.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
    sn.push(0);
    sn.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sn.extend_from_slice(sni.as_bytes());
    push_ext(0x0000, &sn);
    push_ext(0x0017, &[]);
    push_ext(0xff01, &[0]);
    push_ext(0x000a, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]);
    push_ext(0x000b, &[1, 0]);
    push_ext(0x0023, &[]);
    push_ext(0x0010, b"\x00\x0c\x02h2\x08http/1.1");
    push_ext(0x000d, &[0, 8, 4, 3, 8, 4, 4, 1, 5, 3]);
    let mut ks = vec![0, 36, 0, 0x1d, 0, 32];
    ks.extend((0..32).map(|_| rng.next_u64() as u8));
    push_ext(0x0033, &ks);
    push_ext(0x002d, &[1, 1]);
    push_ext(0x002b, &[4, 3, 4, 3, 3]);
    let mut body = vec![3, 3];
    body.extend((0..32).map(|_| rng.next_u64() as u8));
    body.push(32);
    body.extend((0..32).map(|_| rng.next_u64() as u8));
    let suites: &[u16] = &[
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        0x009c, 0x009d, 0x002f, 0x0035,
    ];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    // Padding (RFC 7685) to a 512-byte hello, as Chrome/Conscrypt do.
    let unpadded = 4 + body.len() + 2 + ext.len() + 4;
    if unpadded < 512 {
        ext.extend_from_slice(&0x0015u16.to_be_bytes());
        ext.extend_from_slice(&((512 - unpadded) as u16).to_be_bytes());
        ext.resize(ext.len() + 512 - unpadded, 0);
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hello = vec![0x16, 3, 1];
    hello.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    hello.push(1);
    hello.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hello.extend_from_slice(&body);

    // ServerHello (TLS 1.3 shape: session id echo, TLS_AES_128_GCM_SHA256, supported_versions,
    // key_share), then the encrypted rest of the handshake.
    let mut sh = vec![3, 3];
    sh.extend((0..32).map(|_| rng.next_u64() as u8));
    sh.push(32);
    sh.extend_from_slice(&body[35..67]);
    sh.extend_from_slice(&[0x13, 0x01, 0]);
    sh.extend_from_slice(&[0, 46, 0, 0x2b, 0, 2, 3, 4, 0, 0x33, 0, 36, 0, 0x1d, 0, 32]);
    sh.extend((0..32).map(|_| rng.next_u64() as u8));
    let mut server = vec![0x16, 3, 3];
    server.extend_from_slice(&((sh.len() + 4) as u16).to_be_bytes());
    server.push(2);
    server.extend_from_slice(&(sh.len() as u32).to_be_bytes()[1..]);
    server.extend_from_slice(&sh);
    server.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    let enc = rng.range(2500, 5000) as usize;
    server.extend_from_slice(&[0x17, 3, 3]);
    server.extend_from_slice(&(enc as u16).to_be_bytes());
    server.extend((0..enc).map(|_| rng.next_u64() as u8));
    let mut fin = vec![0x14, 3, 3, 0, 1, 1, 0x17, 3, 3, 0, 53];
    fin.extend((0..53).map(|_| rng.next_u64() as u8));
    vec![
        Msg::bytes(true, hello),
        Msg::bytes(false, server),
        Msg::bytes(true, fin),
    ]
}

/// `len` bytes (rounded so the last record is not empty) of TLS application data.
fn tls_data(from_client: bool, len: usize, off: usize) -> Msg {
    let len = if (1..=5).contains(&(len % TLS_RECORD)) {
        len + 6
    } else {
        len.max(6)
    };
    Msg {
        from_client,
        head: Vec::new(),
        bulk: Bulk::Tls { len, off },
    }
}
