//! The engine's life-of-a-flow rules, driven packet by packet.

use std::sync::Arc;

use super::*;
use crate::packet::decode;
use crate::packet::tests::{ethernet, ipv4_tcp, ipv4_udp};
use crate::{Analysis, Decryption, Flow, Limit, dns, identifier::Identifier, tls};

const IMEI: &str = "356938035643809";
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;
const C: [u8; 4] = [10, 0, 0, 2];
const S: [u8; 4] = [10, 0, 0, 1];

fn engine() -> Engine<Analysis> {
    let m = Matcher::new(&[Identifier::new("imei", IMEI)]);
    Engine::new(Arc::new(m), Analysis::default())
}

/// Packets into an engine, on a clock the test moves.
struct Feed {
    e: Engine<Analysis>,
    frame: u64,
    /// Capture time, seconds.
    t: f64,
}

impl Feed {
    fn new() -> Self {
        Feed {
            e: engine(),
            frame: 0,
            t: 1000.0,
        }
    }

    /// One frame, a millisecond after the last.
    fn send(&mut self, frame: &[u8]) {
        self.frame += 1;
        self.t += 1e-3;
        let p = decode(1, frame).expect("packet");
        self.e.packet(self.frame, self.t, &p);
    }

    fn tcp(&mut self, from_client: bool, port: u16, seq: u32, flags: u8, data: &[u8]) {
        let frame = if from_client {
            ipv4_tcp(C, S, port, 80, seq, flags, data)
        } else {
            ipv4_tcp(S, C, 80, port, seq, flags, data)
        };
        self.send(&ethernet(&frame));
    }

    /// Handshake and `data` from the client (ISN 100, server ISN 500); returns the client's next
    /// sequence number.
    fn open(&mut self, port: u16, data: &[u8]) -> u32 {
        self.tcp(true, port, 100, SYN, b"");
        self.tcp(false, port, 500, SYN | ACK, b"");
        self.tcp(true, port, 101, PSH_ACK, data);
        101 + data.len() as u32
    }

    /// A whole connection: handshake, `data`, FIN both ways, last ACK.
    fn connection(&mut self, port: u16, data: &[u8]) {
        let end = self.open(port, data);
        self.tcp(true, port, end, FIN_ACK, b"");
        self.tcp(false, port, 501, FIN_ACK, b"");
        self.tcp(true, port, end + 1, ACK, b"");
    }

    fn finish(self) -> (Analysis, Vec<Limit>) {
        let (mut a, limits) = self.e.finish();
        a.sort();
        (a, limits)
    }
}

#[test]
fn ended_flows_free_their_slot_and_trailing_packets_start_nothing() {
    let mut f = Feed::new();
    // One UDP conversation stays open throughout.
    f.send(&ethernet(&ipv4_udp(C, S, 5000, 9999, b"hello")));
    for i in 0..3000u16 {
        f.connection(20_000 + i, format!("id={IMEI}").as_bytes());
    }
    assert_eq!(f.e.slots.len(), 2, "slots are reused");
    assert_eq!(f.e.open_flows(), 1);
    assert_eq!(f.e.held, 0);
    // A retransmitted FIN and a trailing ACK on an ended connection; then a new SYN opens a new one.
    f.tcp(true, 20_000, 101 + 19, FIN_ACK, b"");
    f.tcp(true, 20_000, 200, ACK, b"");
    f.tcp(true, 20_000, 9000, SYN, b"");
    let (a, limits) = f.finish();
    assert_eq!(a.flows.len(), 3002);
    assert_eq!(a.findings.len(), 3000);
    assert!(a.findings.iter().all(|x| x.location == "tcp.payload"));
    assert!(limits.is_empty(), "{limits:?}");
    let ends: Vec<FlowEnd> = a.flows.iter().map(|x| x.end).collect();
    assert_eq!(ends.iter().filter(|e| **e == FlowEnd::Fin).count(), 3000);
    // Each finding names its flow by the flow's first frame.
    for x in &a.findings {
        assert!(
            a.flows
                .iter()
                .any(|fl| fl.first_frame == x.flow && x.frame == fl.first_frame + 2)
        );
    }
}

/// Connections that end with one FIN, a reset or nothing at all end (by their rule or idle
/// timeout), so the table holds only what is active: no cap is hit, nothing is reported, every
/// identifier is found once per flow.
#[test]
fn every_way_a_connection_ends_frees_it() {
    let mut f = Feed::new();
    let mut most_open = 0;
    for i in 0..40_000u32 {
        let port = 1024 + (i % 60_000) as u16;
        let end = f.open(
            port,
            format!("GET /?imei={IMEI} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
        );
        match i % 5 {
            0 => {
                f.tcp(true, port, end, FIN_ACK, b"");
                f.tcp(false, port, 501, ACK, b"");
            }
            1 => {
                f.tcp(false, port, 501, FIN_ACK, b"");
                f.tcp(true, port, end, ACK, b"");
            }
            2 => f.tcp(true, port, end, RST | ACK, b""),
            3 => f.tcp(false, port, 501, RST | ACK, b""),
            _ => {} // goes quiet
        }
        // 20 connections a second of capture time.
        f.t += 0.05;
        most_open = most_open.max(f.e.open_flows());
    }
    // Open at most: the last CLOSING_IDLE seconds of one-FIN flows, the last TCP_IDLE seconds of
    // quiet ones.
    let bound = (20.0 * (CLOSING_IDLE * 2.0 / 5.0 + TCP_IDLE / 5.0)) as usize + 10;
    assert!(
        most_open <= bound,
        "{most_open} open at once (bound {bound})"
    );
    let (a, limits) = f.finish();
    assert!(limits.is_empty(), "{limits:?}");
    assert_eq!(a.flows.len(), 40_000);
    assert_eq!(a.findings.len(), 40_000);
    let mut per_flow: Vec<u64> = a.findings.iter().map(|x| x.flow).collect();
    per_flow.dedup();
    assert_eq!(per_flow.len(), 40_000, "one finding per flow");
    let count = |e: FlowEnd| a.flows.iter().filter(|x| x.end == e).count();
    assert_eq!(count(FlowEnd::Reset), 16_000);
    assert!(
        count(FlowEnd::HalfFin) >= 15_900,
        "{}",
        count(FlowEnd::HalfFin)
    );
    // All quiet ones but those of the last TCP_IDLE seconds (4 a second).
    assert!(
        count(FlowEnd::Idle) >= 8_000 - 4 * TCP_IDLE as usize - 10,
        "{}",
        count(FlowEnd::Idle)
    );
    let rest = count(FlowEnd::HalfFin) + count(FlowEnd::Idle) + count(FlowEnd::CaptureEnd);
    assert_eq!(rest, 24_000);
    assert!(a.flows.iter().all(|x| x.gap_bytes == 0 && !x.resumed));
}

/// Open flows beyond the state budget: the least recently active are ended early — which loses
/// nothing and is not reported — and one that sends again is resumed, which is reported.
#[test]
fn the_state_budget_ends_the_oldest_flows_and_resumes_one_that_comes_back() {
    let mut f = Feed::new();
    f.e.set_limits(MAX_BUFFERED, 100 * FLOW_STATE_BYTES);
    for i in 0..1000u16 {
        f.open(10_000 + i, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
        assert!(f.e.open_flows() <= 100);
    }
    assert_eq!(f.e.open_flows(), 100);
    // The first connection, long evicted, sends a request with the IMEI.
    let req = format!("GET /?imei={IMEI} HTTP/1.1\r\nHost: a.example\r\n\r\n");
    f.tcp(true, 10_000, 101 + 35, PSH_ACK, req.as_bytes());
    let (a, limits) = f.finish();
    assert_eq!(a.flows.len(), 1001);
    assert_eq!(
        a.flows.iter().filter(|x| x.end == FlowEnd::Evicted).count(),
        901
    );
    let resumed: Vec<&Flow> = a.flows.iter().filter(|x| x.resumed).collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].client.1, 10_000);
    assert_eq!(resumed[0].host, "a.example");
    assert_eq!(
        resumed[0].gap_bytes, 0,
        "the resumed stream continues where it was"
    );
    assert_eq!(a.findings.len(), 1);
    assert_eq!(a.findings[0].location, "http.url");
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert!(
        limits[0].what.contains("went on after being ended early"),
        "{limits:?}"
    );
}

/// A TLS connection silent past `TCP_IDLE` ends idle; when it speaks again it is the same
/// encrypted conversation, with the same name.
#[test]
fn an_idle_connection_that_speaks_again_is_resumed_with_its_name() {
    let mut f = Feed::new();
    let hello = tls::tests::hello_records("push.example", &["h2"], 1000);
    let end = f.open(443, &hello);
    f.tcp(true, 443, end, PSH_ACK, &[0x17, 3, 3, 0, 2, 1, 2]);
    f.t += TCP_IDLE + 1.0;
    // Any packet moves the clock: the connection ends idle.
    f.send(&ethernet(&ipv4_udp(C, S, 5000, 9999, b"tick")));
    assert_eq!(f.e.open_flows(), 1);
    f.tcp(true, 443, end + 7, PSH_ACK, &[0x17, 3, 3, 0, 1, 9]);
    let (a, limits) = f.finish();
    assert!(limits.is_empty(), "{limits:?}");
    let tls: Vec<&Flow> = a.flows.iter().filter(|x| x.server.1 == 80).collect();
    assert_eq!(tls.len(), 2);
    assert_eq!(tls[0].end, FlowEnd::Idle);
    assert!(!tls[0].resumed && tls[1].resumed);
    assert_eq!(
        (tls[1].host.as_str(), tls[1].protocol),
        ("push.example", Protocol::Tls)
    );
    assert_eq!(tls[1].opaque_bytes, 6);
    assert_eq!(tls[1].gap_bytes, 0);
}

/// A SYN with a new sequence number on a connection that never ended (it went quiet) is a new
/// connection, not a jump of gigabytes in the old stream.
#[test]
fn a_new_syn_on_a_quiet_connection_starts_a_new_flow() {
    let mut f = Feed::new();
    f.open(40_000, b"hello");
    f.tcp(true, 40_000, 100, SYN, b""); // a retransmitted SYN: the same connection
    f.tcp(true, 40_000, 3_000_000_000, SYN, b"");
    f.tcp(false, 40_000, 7, SYN | ACK, b"");
    f.tcp(true, 40_000, 3_000_000_001, PSH_ACK, IMEI.as_bytes());
    let (a, limits) = f.finish();
    assert!(limits.is_empty(), "{limits:?}");
    assert_eq!(a.flows.len(), 2);
    assert_eq!(a.flows[0].end, FlowEnd::Reused);
    assert!(a.flows.iter().all(|x| x.gap_bytes == 0), "{:?}", a.flows);
    assert_eq!(a.findings.len(), 1);
    assert_eq!(a.findings[0].flow, a.flows[1].first_frame);
}

#[test]
fn the_buffer_budget_flushes_the_largest_holders() {
    let mut f = Feed::new();
    f.e.set_limits(256 << 10, MAX_FLOW_STATE);
    let chunk = vec![b'x'; 1000];
    // 20 connections, each holding 100 kB out of order (its first byte never comes), with the
    // IMEI in the held bytes.
    for c in 0..20u16 {
        let port = 30_000 + c;
        f.tcp(true, port, 100, SYN, b"");
        let mut seq = 102;
        f.tcp(true, port, seq, PSH_ACK, IMEI.as_bytes());
        seq += IMEI.len() as u32;
        for _ in 0..100 {
            f.tcp(true, port, seq, PSH_ACK, &chunk);
            seq += chunk.len() as u32;
            assert!(f.e.held <= 256 << 10, "{}", f.e.held);
        }
    }
    let evicted = f.e.notes.budget.count;
    assert!(evicted >= 10, "{evicted}");
    let (a, limits) = f.finish();
    // Flushed or ended, every connection's bytes were searched, its missing byte a gap.
    assert_eq!(a.findings.len(), 20);
    assert!(a.flows.iter().all(|x| x.gap_bytes == 1));
    assert!(
        limits.iter().any(|d| d.what.contains("flushed early")),
        "{limits:?}"
    );
}

#[test]
fn idle_udp_conversations_end() {
    let mut f = Feed::new();
    let q = dns::tests::query(1, "a.example");
    // A lookup a second, each from its own port; a conversation active throughout.
    for i in 0..2000u16 {
        f.t += 1.0;
        f.send(&ethernet(&ipv4_udp(C, S, 10_000 + i, 53, &q)));
        f.send(&ethernet(&ipv4_udp(C, S, 7000, 7001, &i.to_be_bytes())));
        assert!(
            f.e.open_flows() <= UDP_IDLE as usize + 3,
            "{}",
            f.e.open_flows()
        );
    }
    let (a, limits) = f.finish();
    assert!(limits.is_empty(), "{limits:?}");
    assert_eq!(a.flows.len(), 2001);
    assert_eq!(a.dns_queries.len(), 2000);
    let long = a.flows.iter().find(|x| x.client.1 == 7000).unwrap();
    assert_eq!(long.bytes_out, 2 * 2000);
    assert_eq!(long.end, FlowEnd::CaptureEnd);
}

/// An identifier in a DNS name is attributed to the name asked, in every encoding a label holds.
#[test]
fn identifiers_in_dns_names_are_about_the_name() {
    use base64::Engine as _;
    use md5::Digest as _;
    let sha1 = sha1::Sha1::digest(IMEI.as_bytes());
    let sha256 = hex::encode(sha2::Sha256::digest(IMEI.as_bytes()));
    let names = [
        (format!("{IMEI}.t.example"), "plain"),
        (format!("{}.t.example", hex::encode(IMEI)), "hex"),
        (
            format!("{}.t.example", hex::encode(IMEI).to_uppercase()),
            "hex",
        ),
        (
            format!("{}.t.example", crate::matcher::base32(IMEI.as_bytes())),
            "base32",
        ),
        (
            format!(
                "x{}.t.example",
                crate::matcher::base32(IMEI.as_bytes()).to_uppercase()
            ),
            "base32",
        ),
        (
            format!(
                "{}.t.example",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1)
            ),
            "sha1+base64url",
        ),
        // A SHA-256 in hex is longer than a label: split in two.
        (
            format!("{}.{}.t.example", &sha256[..32], &sha256[32..]),
            "sha256",
        ),
        (
            format!("{}.t.example", hex::encode(md5::Md5::digest(IMEI))),
            "md5",
        ),
        (
            format!(
                "{}.t.example",
                crate::matcher::base32(&md5::Md5::digest(IMEI))
            ),
            "md5+base32",
        ),
        (
            format!(
                "{}.t.example",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(IMEI)
            ),
            "base64",
        ),
        // 0x20 randomisation of a base32 label.
        (
            format!(
                "{}.t.example",
                crate::matcher::base32(IMEI.as_bytes())
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    })
                    .collect::<String>()
            ),
            "base32",
        ),
    ];
    let mut f = Feed::new();
    for (i, (name, _)) in names.iter().enumerate() {
        let q = dns::tests::query(i as u16, name);
        f.send(&ethernet(&ipv4_udp(C, S, 40_000 + i as u16, 53, &q)));
    }
    let (a, _) = f.finish();
    let got: Vec<(&str, &str, &str, HostSource)> = a
        .findings
        .iter()
        .map(|x| {
            (
                x.host.as_str(),
                x.encoding.as_str(),
                x.location.as_str(),
                x.host_source,
            )
        })
        .collect();
    let want: Vec<(&str, &str, &str, HostSource)> = names
        .iter()
        .map(|(n, e)| (n.as_str(), *e, "dns.qname", HostSource::Qname))
        .collect();
    assert_eq!(got, want);
}

/// A decrypting TLS flow's keys and record state count in the flow-state budget: the engine's
/// total follows them as they appear and go, and fewer decrypting flows than plain ones fit.
#[test]
fn decrypting_flows_count_their_keys_in_the_state_budget() {
    use crate::testgen::tls::Tls13Client;
    let clients: Vec<Tls13Client> = (0..40).map(Tls13Client::new).collect();
    let mut log = crate::keylog::KeyLog::new();
    for c in &clients {
        log.add_text(c.key_log().as_bytes());
    }
    let log = Arc::new(log);
    let mut f = Feed::new();
    f.e = engine().with_keys(log.clone());
    let port = |i: usize| 30_000 + i as u16;
    let tls = |f: &mut Feed, i: usize, c: &mut Tls13Client| {
        let hello = c.client_hello("api.example");
        let mut seq = f.open(port(i), &hello);
        let sh = c.server_hello();
        f.tcp(false, port(i), 501, PSH_ACK, &sh);
        for rec in [c.finished(), c.data(b"GET / HTTP/1.1\r\n\r\n", 0)] {
            f.tcp(true, port(i), seq, PSH_ACK, &rec);
            seq += rec.len() as u32;
        }
    };
    let mut clients = clients;
    tls(&mut f, 0, &mut clients[0]);
    let one = f.e.open;
    assert!(one > FLOW_STATE_BYTES, "keys counted: {one}");
    let extra = one - FLOW_STATE_BYTES;
    // The same flow without keys costs the base only.
    let mut plain = Feed::new();
    tls(&mut plain, 0, &mut Tls13Client::new(0));
    assert_eq!(plain.e.open, FLOW_STATE_BYTES);
    // A budget of 20 base flows holds fewer decrypting ones, never more than the budget.
    let mut f = Feed::new();
    f.e = engine().with_keys(log);
    f.e.set_limits(MAX_BUFFERED, 20 * FLOW_STATE_BYTES);
    for (i, c) in clients.iter_mut().enumerate().skip(1) {
        tls(&mut f, i, c);
        assert!(f.e.open <= 20 * FLOW_STATE_BYTES);
    }
    let fits = 20 * FLOW_STATE_BYTES / (FLOW_STATE_BYTES + extra);
    assert!(
        f.e.open_flows() <= fits + 1,
        "{} > {fits}",
        f.e.open_flows()
    );
    let (a, _) = f.finish();
    assert_eq!(a.flows.len(), 39);
    assert!(
        a.flows
            .iter()
            .all(|x| x.tls.unwrap().decryption == Decryption::Decrypted)
    );
}
