//! Synthetic phone traffic for the analysis benchmark: a seeded, deterministic pcap writer.
//!
//! Owns the traffic model of the bench (what a handset's capture looks like by bytes and by packets)
//! and its pcap encoding (Ethernet, IPv4/IPv6, TCP/UDP with sane headers and checksums). It is written
//! from the formats themselves (pcap, IP, TCP, DNS, TLS, HTTP), not from the analysis code, so the
//! bench measures the analysis on traffic it did not shape.
//!
//! The model: several sessions open at once, their packets interleaved. A session is DNS resolution
//! followed by one connection: TLS API calls (ClientHello with SNI and ALPN, opaque records), plain
//! HTTP/1.1 GETs and form POSTs (a minority carrying the IMEI or phone number as plain, URL-encoded,
//! MD5 or base64 text, some with gzip bodies), NTP, and bulk transfers (TLS and HTTP downloads, QUIC
//! streaming, uploads) that carry most of the bytes, as on a real phone. Server data is ACKed every
//! second segment; a few segments are retransmitted.
//!
//! Must not touch: the analysis (it is the thing measured), the file system besides the writer given.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use md5::Digest as _;

/// The identifiers planted in the traffic; the bench searches for exactly these.
pub const IMEI: &str = "356938035643809";
pub const PHONE: &str = "+6598765432";

/// Deterministic PRNG (splitmix64): the same seed gives the same capture, byte for byte.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi` exclusive, `hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

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

/// One flow of a session: its endpoints and what each side sends, in order.
struct Phase {
    tcp: bool,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    msgs: Vec<Msg>,
}

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Syn,
    SynAck,
    Ack,
    Data,
    Fin1,
    Fin2,
    LastAck,
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
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Frames one packet at a time into a pcap stream (little-endian, µs, Ethernet).
pub struct PcapWriter<W: Write> {
    out: W,
    ts_us: u64,
    pub frames: u64,
    pub bytes: u64,
    frame: Vec<u8>,
    payload: Vec<u8>,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W, start_ts_us: u64) -> io::Result<Self> {
        let mut hdr = Vec::with_capacity(24);
        hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        hdr.extend_from_slice(&2u16.to_le_bytes());
        hdr.extend_from_slice(&4u16.to_le_bytes());
        hdr.extend_from_slice(&0i32.to_le_bytes());
        hdr.extend_from_slice(&0u32.to_le_bytes());
        hdr.extend_from_slice(&262_144u32.to_le_bytes());
        hdr.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter {
            out,
            ts_us: start_ts_us,
            frames: 0,
            bytes: 24,
            frame: Vec::with_capacity(2048),
            payload: Vec::with_capacity(2048),
        })
    }

    /// Writes one Ethernet frame carrying `self.payload` from `src` to `dst`.
    fn emit(
        &mut self,
        rng: &mut Rng,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        tcp: Option<(u32, u32, u8)>,
    ) -> io::Result<()> {
        let f = &mut self.frame;
        f.clear();
        let client_mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x15];
        let gw_mac = [0x52, 0x54, 0x00, 0x12, 0x35, 0x02];
        let from_phone = matches!(src.0, IpAddr::V4(a) if a.octets()[0] == 10)
            || matches!(src.0, IpAddr::V6(a) if a.segments()[0] == 0xfd00);
        let (dmac, smac) = if from_phone {
            (gw_mac, client_mac)
        } else {
            (client_mac, gw_mac)
        };
        f.extend_from_slice(&dmac);
        f.extend_from_slice(&smac);
        let l4_len = if tcp.is_some() { 20 } else { 8 } + self.payload.len();
        let proto = if tcp.is_some() { 6u8 } else { 17u8 };
        let addr_sum = match (src.0, dst.0) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let ip_start = f.len();
                f.push(0x45);
                f.push(0);
                f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
                f.extend_from_slice(&(self.frames as u16).to_be_bytes());
                f.extend_from_slice(&0x4000u16.to_be_bytes());
                f.push(64);
                f.push(proto);
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                let ck = !fold(sum16(&f[ip_start..ip_start + 20]));
                f[ip_start + 10..ip_start + 12].copy_from_slice(&ck.to_be_bytes());
                sum16(&s.octets()) + sum16(&d.octets())
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4_len as u16).to_be_bytes());
                f.push(proto);
                f.push(64);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                sum16(&s.octets()) + sum16(&d.octets())
            }
            _ => unreachable!("mixed address families in one flow"),
        };
        let pseudo = addr_sum + u32::from(proto) + l4_len as u32;
        let l4_start = f.len();
        f.extend_from_slice(&src.1.to_be_bytes());
        f.extend_from_slice(&dst.1.to_be_bytes());
        match tcp {
            Some((seq, ack, flags)) => {
                f.extend_from_slice(&seq.to_be_bytes());
                f.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
                f.push(5 << 4);
                f.push(flags);
                f.extend_from_slice(&65535u16.to_be_bytes());
                f.extend_from_slice(&[0, 0, 0, 0]);
            }
            None => {
                f.extend_from_slice(&(l4_len as u16).to_be_bytes());
                f.extend_from_slice(&[0, 0]);
            }
        }
        f.extend_from_slice(&self.payload);
        let ck = !fold(pseudo + sum16(&f[l4_start..]));
        let at = l4_start + if tcp.is_some() { 16 } else { 6 };
        let ck = if tcp.is_none() && ck == 0 { 0xffff } else { ck };
        f[at..at + 2].copy_from_slice(&ck.to_be_bytes());

        // Phones talk in bursts: mostly back-to-back packets, sometimes a pause.
        self.ts_us += if rng.chance(2) {
            rng.range(1_000, 200_000)
        } else {
            rng.range(2, 300)
        };
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((self.ts_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(f.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(f.len() as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(f)?;
        self.frames += 1;
        self.bytes += 16 + f.len() as u64;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn sum16(bytes: &[u8]) -> u32 {
    let mut s = 0u32;
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Generates the capture: sessions drawn from the traffic mix until `target_bytes` are written.
pub struct Generator {
    rng: Rng,
    pool: Vec<u8>,
    next_port: u16,
    /// Sessions open at once (their packets interleave).
    pub concurrency: usize,
    /// Stop at this file size even inside sessions (small fuzz seeds); `None` drains them.
    pub hard_limit: Option<u64>,
    /// Identifier occurrences planted, by `kind:encoding` as the analysis names them (`gzip`
    /// for any form inside a gzip body): what a correct analysis must report.
    pub planted: std::collections::BTreeMap<&'static str, u64>,
    /// Per traffic category: (sessions, frames, pcap bytes), to document the mix.
    pub mix: std::collections::BTreeMap<&'static str, (u64, u64, u64)>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut pool = Vec::with_capacity(POOL_LEN);
        while pool.len() < POOL_LEN {
            pool.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        Generator {
            rng,
            pool,
            next_port: 40_000,
            concurrency: 6,
            hard_limit: None,
            planted: Default::default(),
            mix: Default::default(),
        }
    }

    /// Writes a capture of at least `target_bytes` (pcap file size) to `out`.
    pub fn write<W: Write>(&mut self, out: W, target_bytes: u64) -> io::Result<PcapWriter<W>> {
        let mut w = PcapWriter::new(out, 1_700_000_000_000_000)?;
        let mut active: Vec<Session> = Vec::new();
        loop {
            while active.len() < self.concurrency && w.bytes < target_bytes {
                let (category, phases) = self.session();
                self.mix.entry(category).or_default().0 += 1;
                active.push(Session::new(category, phases, &mut self.rng));
            }
            if active.is_empty() || self.hard_limit.is_some_and(|h| w.bytes >= h) {
                break;
            }
            let i = self.rng.range(0, active.len() as u64) as usize;
            let (frames, bytes) = (w.frames, w.bytes);
            let more = self.step(&mut w, &mut active[i])?;
            let m = self.mix.entry(active[i].category).or_default();
            m.1 += w.frames - frames;
            m.2 += w.bytes - bytes;
            if !more {
                active.swap_remove(i);
            }
        }
        w.out.flush()?;
        Ok(w)
    }

    /// Emits the next packet of `s`; false when the session is over.
    fn step<W: Write>(&mut self, w: &mut PcapWriter<W>, s: &mut Session) -> io::Result<bool> {
        loop {
            let Some(ph) = s.phases.get(s.phase) else {
                return Ok(false);
            };
            let (c, sv) = (ph.client, ph.server);
            if !ph.tcp {
                let Some(m) = ph.msgs.get(s.msg) else {
                    s.phase += 1;
                    s.msg = 0;
                    continue;
                };
                w.payload.clear();
                m.fill(&self.pool, 0, m.len(), &mut w.payload);
                let (src, dst) = if m.from_client { (c, sv) } else { (sv, c) };
                w.emit(&mut self.rng, src, dst, None)?;
                s.msg += 1;
                return Ok(true);
            }
            let mss = if c.0.is_ipv4() { MSS_V4 } else { MSS_V6 };
            w.payload.clear();
            let [cs, ss] = s.seq;
            match s.step {
                Step::Syn => {
                    w.emit(&mut self.rng, c, sv, Some((cs, 0, SYN)))?;
                    s.seq[0] = cs.wrapping_add(1);
                    s.step = Step::SynAck;
                }
                Step::SynAck => {
                    w.emit(&mut self.rng, sv, c, Some((ss, s.seq[0], SYN | ACK)))?;
                    s.seq[1] = ss.wrapping_add(1);
                    s.step = Step::Ack;
                }
                Step::Ack => {
                    w.emit(&mut self.rng, c, sv, Some((cs, ss, ACK)))?;
                    s.step = Step::Data;
                }
                Step::Data => {
                    if s.unacked >= 2 {
                        w.emit(&mut self.rng, c, sv, Some((cs, ss, ACK)))?;
                        s.unacked = 0;
                        return Ok(true);
                    }
                    let Some(m) = ph.msgs.get(s.msg) else {
                        s.step = Step::Fin1;
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
                    w.emit(&mut self.rng, src, dst, Some((seq, ack, flags)))?;
                    // A lost segment on a phone link: the same bytes again a little later.
                    if self.rng.range(0, 2000) == 0 {
                        w.emit(&mut self.rng, src, dst, Some((seq, ack, flags)))?;
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
                Step::Fin1 => {
                    w.emit(&mut self.rng, c, sv, Some((cs, ss, FIN | ACK)))?;
                    s.seq[0] = cs.wrapping_add(1);
                    s.step = Step::Fin2;
                }
                Step::Fin2 => {
                    w.emit(&mut self.rng, sv, c, Some((ss, s.seq[0], FIN | ACK)))?;
                    s.seq[1] = ss.wrapping_add(1);
                    s.step = Step::LastAck;
                }
                Step::LastAck => {
                    w.emit(&mut self.rng, c, sv, Some((cs, s.seq[1], ACK)))?;
                    s.step = Step::Done;
                }
                Step::Done => {
                    s.phase += 1;
                    s.msg = 0;
                    s.pos = 0;
                    s.step = Step::Syn;
                    s.unacked = 0;
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

    fn bulk_off(&mut self) -> usize {
        self.rng.range(0, POOL_LEN as u64) as usize
    }

    /// Draws one session from the traffic mix.
    fn session(&mut self) -> (&'static str, Vec<Phase>) {
        let v6 = self.rng.chance(25);
        let phone: IpAddr = if v6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x15))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15))
        };
        let resolver: IpAddr = if v6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x3))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3))
        };
        let host = *self.rng.pick(HOSTS);
        let server = Self::server_addr(host, v6);
        let mut phases = Vec::new();
        let kind = self.rng.range(0, 100);
        // Resolution first (cached names skip it), so DNS can name the flow.
        if kind < 12 || self.rng.chance(70) {
            let id = self.rng.next_u64() as u16;
            let cport = self.port();
            phases.push(Phase {
                tcp: false,
                client: (phone, cport),
                server: (resolver, 53),
                msgs: vec![
                    Msg::bytes(true, dns_query(id, host, v6)),
                    Msg::bytes(false, dns_answer(id, host, server)),
                ],
            });
        }
        let client = (phone, self.port());
        let tls = |msgs| Phase {
            tcp: true,
            client,
            server: (server, 443),
            msgs,
        };
        let http = |msgs| Phase {
            tcp: true,
            client,
            server: (server, 80),
            msgs,
        };
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
                let req = self.http_request(host);
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
                let req = self.http_gzip_post(host);
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
                phases.push(Phase {
                    tcp: false,
                    client: (phone, 123),
                    server: (server, 123),
                    msgs: vec![Msg::bytes(true, q), Msg::bytes(false, a)],
                });
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
                phases.push(Phase {
                    tcp: false,
                    client,
                    server: (server, 443),
                    msgs,
                });
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

    /// A GET or form POST; one in four carries an identifier in one of the usual forms.
    fn http_request(&mut self, host: &str) -> Vec<u8> {
        let tag = self.rng.next_u64() as u32;
        let ua = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240205.004)";
        let id_param = if self.rng.chance(25) {
            let (form, param) = match self.rng.range(0, 6) {
                0 => ("imei:plain", format!("&imei={IMEI}")),
                1 => ("phone_number:url", format!("&msisdn={}", pct(PHONE))),
                2 => (
                    "imei:md5",
                    format!("&did={}", hex::encode(md5::Md5::digest(IMEI.as_bytes()))),
                ),
                3 => (
                    "imei:base64",
                    format!(
                        "&d={}",
                        pct(&base64::engine::general_purpose::STANDARD.encode(IMEI))
                    ),
                ),
                4 => (
                    "phone_number:md5",
                    format!("&h={}", hex::encode(md5::Md5::digest(PHONE.as_bytes()))),
                ),
                _ => ("phone_number:plain", format!("&tel={PHONE}")),
            };
            *self.planted.entry(form).or_default() += 1;
            param
        } else {
            String::new()
        };
        if self.rng.chance(60) {
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
        }
    }

    fn http_gzip_post(&mut self, host: &str) -> Vec<u8> {
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
        if self.rng.chance(30) {
            *self.planted.entry("imei:gzip").or_default() += 1;
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
        req
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

fn pct(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
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

/// An adversarial capture: DNS queries of 64 questions each, the first a 253-character name and
/// the other 63 two-byte compression pointers to it (6 bytes on the wire, 253 characters once
/// read). Measures how the analysis' memory and time grow with what a capture *claims*, not with
/// its size (see docs/performance.md, "Adversarial input").
pub fn dns_amplification<W: Write>(out: W, packets: u64) -> io::Result<PcapWriter<W>> {
    let mut rng = Rng::new(7);
    let mut w = PcapWriter::new(out, 1_700_000_000_000_000)?;
    let mut name = Vec::new();
    for (i, len) in [63u8, 63, 63, 61].into_iter().enumerate() {
        name.push(len);
        name.extend(std::iter::repeat_n(b'a' + i as u8, len as usize));
    }
    name.push(0);
    let phone = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15));
    let resolver = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3));
    for k in 0..packets {
        w.payload.clear();
        w.payload.extend_from_slice(&(k as u16).to_be_bytes());
        w.payload
            .extend_from_slice(&[0x01, 0x00, 0, 64, 0, 0, 0, 0, 0, 0]);
        w.payload.extend_from_slice(&name);
        w.payload.extend_from_slice(&[0, 1, 0, 1]);
        for _ in 1..64 {
            w.payload.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        }
        let port = 40_000 + (k % 1000) as u16;
        w.emit(&mut rng, (phone, port), (resolver, 53), None)?;
    }
    w.out.flush()?;
    Ok(w)
}

/// An adversarial capture: `packets` SYNs, each opening a new connection (distinct port and
/// server), none ever closed: 70 bytes of capture per flow the analysis must track or evict.
pub fn syn_flood<W: Write>(out: W, packets: u64) -> io::Result<PcapWriter<W>> {
    let mut rng = Rng::new(8);
    let mut w = PcapWriter::new(out, 1_700_000_000_000_000)?;
    let phone = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15));
    for k in 0..packets {
        w.payload.clear();
        let server = IpAddr::V4(Ipv4Addr::new(142, 250, (k / 60_000) as u8, 1));
        let port = 1024 + (k % 60_000) as u16;
        w.emit(
            &mut rng,
            (phone, port),
            (server, 443),
            Some((k as u32, 0, SYN)),
        )?;
    }
    w.out.flush()?;
    Ok(w)
}

/// An adversarial capture: `posts` HTTP POSTs, each a ~8 KB gzip body that inflates to 8 MiB (the
/// analysis' decoded-body cap) of text: CPU per capture byte, not memory.
pub fn gzip_bombs<W: Write>(out: W, posts: u64) -> io::Result<PcapWriter<W>> {
    let mut rng = Rng::new(9);
    let mut w = PcapWriter::new(out, 1_700_000_000_000_000)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let line = [b'a'; 1024];
    for _ in 0..8 * 1024 {
        gz.write_all(&line)?;
    }
    let body = gz.finish()?;
    let mut req = format!(
        "POST /batch HTTP/1.1\r\nHost: bomb.example\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let phone = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15));
    let server = (IpAddr::V4(Ipv4Addr::new(142, 250, 0, 1)), 80);
    for k in 0..posts {
        let client = (phone, 20_000 + k as u16);
        w.payload.clear();
        w.emit(&mut rng, client, server, Some((999, 0, SYN)))?;
        for (i, seg) in req.chunks(MSS_V4).enumerate() {
            w.payload.clear();
            w.payload.extend_from_slice(seg);
            let seq = 1000 + (i * MSS_V4) as u32;
            w.emit(&mut rng, client, server, Some((seq, 1, PSH | ACK)))?;
        }
        w.payload.clear();
        let end = 1000 + req.len() as u32;
        w.emit(&mut rng, client, server, Some((end, 1, FIN | ACK)))?;
    }
    w.out.flush()?;
    Ok(w)
}
