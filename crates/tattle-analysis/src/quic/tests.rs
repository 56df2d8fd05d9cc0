//! QUIC decryption checked against an independent implementation: rustls' `quic` module runs a
//! handshake in memory (each suite QUIC uses; a resumed one with 0-RTT), its key log is collected
//! through rustls' `KeyLog`, and the client packets are sealed with the packet and header keys
//! rustls hands out (including its key updates). The tests build the packets; this module opens
//! them.

use std::sync::{Arc, Mutex};

use rustls::crypto::ring::{cipher_suite as cs, default_provider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::quic::{self as rq, KeyChange, Version};
use rustls::{Side, SupportedCipherSuite};

use super::*;
use crate::identifier::Identifier;
use crate::keylog::KeyLog;
use crate::packet::tests::{ethernet, ipv4_udp};
use crate::reader::tests::pcap;
use crate::{Analyzer, Keys};

const IMEI: &str = "356938035643809";
const SERVER_CID: [u8; 8] = [0x5e; 8];
const CLIENT_CID: [u8; 5] = [0xc1; 5];
const ORIGINAL_DCID: [u8; 8] = [0x0d; 8];

#[derive(Debug, Default)]
struct Lines(Mutex<String>);

impl rustls::KeyLog for Lines {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format!(
            "{label} {} {}\n",
            hex::encode(client_random),
            hex::encode(secret)
        );
        self.0.lock().unwrap().push_str(&line);
    }
}

/// What a client sent in one in-memory QUIC handshake, and the keys to seal more.
struct Session {
    hello: Vec<u8>,
    finished: Vec<u8>,
    handshake: rq::DirectionalKeys,
    one_rtt: rq::DirectionalKeys,
    next: rq::Secrets,
    /// 0-RTT keys when the session was resumed with early data.
    early: Option<rq::DirectionalKeys>,
    log: String,
}

fn configs(
    suite: SupportedCipherSuite,
) -> (
    Arc<rustls::ClientConfig>,
    Arc<rustls::ServerConfig>,
    Arc<Lines>,
) {
    let ck = rcgen::generate_simple_self_signed(vec!["api.example".to_string()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut provider = default_provider();
    provider.cipher_suites = vec![suite];
    let provider = Arc::new(provider);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let log = Arc::new(Lines::default());
    client.key_log = log.clone();
    client.alpn_protocols = vec![b"h3".to_vec()];
    client.enable_early_data = true;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    server.alpn_protocols = vec![b"h3".to_vec()];
    server.max_early_data_size = u32::MAX;
    (Arc::new(client), Arc::new(server), log)
}

/// One handshake between a client and a server of `configs`; the server's tickets are given to
/// the client (so a second session may resume with 0-RTT).
fn handshake(
    client_cfg: &Arc<rustls::ClientConfig>,
    server_cfg: &Arc<rustls::ServerConfig>,
    log: &Lines,
) -> Session {
    let params = vec![0x01, 0x01, 0x00];
    let mut client = rq::ClientConnection::new(
        client_cfg.clone(),
        Version::V1,
        "api.example".try_into().unwrap(),
        params.clone(),
    )
    .unwrap();
    let mut server = rq::ServerConnection::new(server_cfg.clone(), Version::V1, params).unwrap();
    let mut hello = Vec::new();
    assert!(client.write_hs(&mut hello).is_none());
    let early = client.zero_rtt_keys();
    server.read_hs(&hello).unwrap();
    let mut s_initial = Vec::new();
    assert!(matches!(
        server.write_hs(&mut s_initial),
        Some(KeyChange::Handshake { .. })
    ));
    let mut s_handshake = Vec::new();
    assert!(matches!(
        server.write_hs(&mut s_handshake),
        Some(KeyChange::OneRtt { .. })
    ));
    client.read_hs(&s_initial).unwrap();
    let mut none = Vec::new();
    let Some(KeyChange::Handshake { keys: handshake }) = client.write_hs(&mut none) else {
        panic!("client handshake keys")
    };
    client.read_hs(&s_handshake).unwrap();
    let mut finished = Vec::new();
    let Some(KeyChange::OneRtt { keys, next }) = client.write_hs(&mut finished) else {
        panic!("client 1-RTT keys")
    };
    server.read_hs(&finished).unwrap();
    let mut tickets = Vec::new();
    server.write_hs(&mut tickets);
    if !tickets.is_empty() {
        client.read_hs(&tickets).unwrap();
    }
    let text = std::mem::take(&mut *log.0.lock().unwrap());
    Session {
        hello,
        finished,
        handshake: handshake.local,
        one_rtt: keys.local,
        next,
        early,
        log: text,
    }
}

fn suite(s: SupportedCipherSuite) -> Session {
    let (c, s, log) = configs(s);
    handshake(&c, &s, &log)
}

fn crypto_frame(data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06, 0x00];
    put_varint(&mut f, data.len() as u64);
    f.extend_from_slice(data);
    f
}

fn stream_frame(id: u64, off: u64, data: &[u8], fin: bool) -> Vec<u8> {
    let mut f = vec![0x08 | 0x04 | 0x02 | u8::from(fin)];
    put_varint(&mut f, id);
    put_varint(&mut f, off);
    put_varint(&mut f, data.len() as u64);
    f.extend_from_slice(data);
    f
}

/// Seals `frames` as packet `pn` under `keys`: a short header (`phase` = KEY_PHASE) when `ty` is
/// `None`, else a long header of that type (1 = 0-RTT, 2 = Handshake) to `dcid`.
fn seal(
    keys: &rq::DirectionalKeys,
    packet: Option<&dyn rq::PacketKey>,
    ty: Option<u8>,
    dcid: &[u8],
    pn: u64,
    phase: bool,
    frames: &[u8],
) -> Vec<u8> {
    let mut payload = frames.to_vec();
    if payload.len() < 4 {
        payload.resize(4, 0);
    }
    let mut header = Vec::new();
    match ty {
        None => {
            header.push(0x41 | if phase { 0x04 } else { 0 });
            header.extend_from_slice(dcid);
        }
        Some(t) => {
            header.push(0xc1 | (t << 4));
            header.extend_from_slice(&1u32.to_be_bytes());
            header.push(dcid.len() as u8);
            header.extend_from_slice(dcid);
            header.push(CLIENT_CID.len() as u8);
            header.extend_from_slice(&CLIENT_CID);
            let len = 2 + payload.len() + 16;
            header.extend_from_slice(&(0x4000u16 | len as u16).to_be_bytes());
        }
    }
    let pn_off = header.len();
    header.extend_from_slice(&(pn as u16).to_be_bytes());
    let packet = packet.unwrap_or(&*keys.packet);
    let tag = packet.encrypt_in_place(pn, &header, &mut payload).unwrap();
    let mut pkt = header;
    pkt.extend_from_slice(&payload);
    pkt.extend_from_slice(tag.as_ref());
    let sample = pkt[pn_off + 4..pn_off + 20].to_vec();
    let (head, rest) = pkt.split_at_mut(pn_off);
    keys.header
        .encrypt_in_place(&sample, &mut head[0], &mut rest[..2])
        .unwrap();
    pkt
}

/// A short-header packet with its fixed bit greased to 0 (RFC 9287), as ngtcp2 sends them.
fn seal_greased(keys: &rq::DirectionalKeys, pn: u64, frames: &[u8]) -> Vec<u8> {
    let mut payload = frames.to_vec();
    payload.resize(payload.len().max(4), 0);
    let mut header = vec![0x01];
    header.extend_from_slice(&SERVER_CID);
    let pn_off = header.len();
    header.extend_from_slice(&(pn as u16).to_be_bytes());
    let tag = keys
        .packet
        .encrypt_in_place(pn, &header, &mut payload)
        .unwrap();
    let mut pkt = header;
    pkt.extend_from_slice(&payload);
    pkt.extend_from_slice(tag.as_ref());
    let sample = pkt[pn_off + 4..pn_off + 20].to_vec();
    let (head, rest) = pkt.split_at_mut(pn_off);
    keys.header
        .encrypt_in_place(&sample, &mut head[0], &mut rest[..2])
        .unwrap();
    pkt
}

fn key_view(text: &str) -> KeyView {
    let mut log = KeyLog::new();
    log.add_text(text.as_bytes());
    KeyView {
        base: Arc::new(log),
        ..KeyView::default()
    }
}

fn initial(s: &Session) -> Vec<u8> {
    seal_client_initial(&ORIGINAL_DCID, &CLIENT_CID, 0, 0, &s.hello, 1200)
}

/// Stream bytes handed on: (stream, offset, bytes, frame).
type Got = Vec<(u64, u64, Vec<u8>, u64)>;

fn feed(q: &mut QuicClient, keys: &KeyView, frame: u64, d: &[u8], got: &mut Got) -> Read {
    q.datagram(d, keys, Origin { frame, ts: 0.0 }, &mut |x| {
        if !x.data.is_empty() {
            got.push((x.stream, x.offset, x.data.to_vec(), x.origin.frame));
        }
    })
}

/// Stream `id`'s bytes in the order handed on.
fn joined(got: &Got, id: u64) -> Vec<u8> {
    got.iter()
        .filter(|g| g.0 == id)
        .flat_map(|g| g.2.clone())
        .collect()
}

#[test]
fn every_suite_with_key_updates_reordering_and_out_of_order_streams() {
    let suites = [
        (cs::TLS13_AES_128_GCM_SHA256, 0x1301),
        (cs::TLS13_AES_256_GCM_SHA384, 0x1302),
        (cs::TLS13_CHACHA20_POLY1305_SHA256, 0x1303),
    ];
    for (rs, id) in suites {
        let mut s = suite(rs);
        assert!(s.log.contains("CLIENT_TRAFFIC_SECRET_0"), "{}", s.log);
        let keys = key_view(&s.log);
        let mut q = QuicClient::new();
        let mut got = Got::new();
        let r = feed(&mut q, &keys, 1, &initial(&s), &mut got);
        assert!(r.hello.is_some());
        // The client's Finished in a Handshake packet, coalesced with its first 1-RTT packet.
        let mut d = seal(
            &s.handshake,
            None,
            Some(2),
            &SERVER_CID,
            0,
            false,
            &crypto_frame(&s.finished),
        );
        let body = format!("imei={IMEI}&x=1");
        d.extend(seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            0,
            false,
            &stream_frame(0, 0, &body.as_bytes()[..8], false),
        ));
        feed(&mut q, &keys, 3, &d, &mut got);
        // A Handshake PING padded with zeros after the packet: the zeros are no packet.
        let mut padded = seal(&s.handshake, None, Some(2), &SERVER_CID, 1, false, &[0x01]);
        padded.extend_from_slice(&[0; 30]);
        feed(&mut q, &keys, 3, &padded, &mut got);
        // Packet 2 before packet 1: stream 0's bytes after a hole are held, then handed on.
        let p2 = seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            2,
            false,
            &stream_frame(0, 14, &body.as_bytes()[14..], true),
        );
        let p1 = seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            1,
            false,
            &stream_frame(0, 8, &body.as_bytes()[8..14], false),
        );
        feed(&mut q, &keys, 4, &p2, &mut got);
        assert!(q.buffered() > 0);
        feed(&mut q, &keys, 5, &p1, &mut got);
        assert_eq!(q.buffered(), 0);
        assert_eq!(joined(&got, 0), body.as_bytes());
        assert_eq!(
            got.last().unwrap().3,
            4,
            "the held piece keeps its own frame"
        );
        // Key update: generation 1 (KEY_PHASE 1), then a late generation-0 packet, then
        // generation 2 (KEY_PHASE 0 again).
        let g1 = s.next.next_packet_keys().local;
        let g2 = s.next.next_packet_keys().local;
        let mut datagram = stream_frame(4, 0, b"gen1", true);
        datagram.extend_from_slice(&[0x31, 4]);
        datagram.extend_from_slice(b"dgrm");
        let u1 = seal(
            &s.one_rtt,
            Some(&*g1),
            None,
            &SERVER_CID,
            4,
            true,
            &datagram,
        );
        let late = seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            3,
            false,
            &stream_frame(8, 0, b"late", true),
        );
        let u2 = seal(
            &s.one_rtt,
            Some(&*g2),
            None,
            &SERVER_CID,
            5,
            false,
            &stream_frame(12, 0, b"gen2", true),
        );
        // A packet whose fixed bit is greased opens too.
        let greased = seal_greased(&s.one_rtt, 6, &stream_frame(16, 0, b"grease", true));
        assert_eq!(greased[0] & 0x40, 0);
        let r = feed(&mut q, &keys, 6, &u1, &mut got);
        assert_eq!(r.datagrams, vec![b"dgrm".to_vec()]);
        feed(&mut q, &keys, 7, &late, &mut got);
        feed(&mut q, &keys, 8, &u2, &mut got);
        assert_eq!(joined(&got, 4), b"gen1");
        assert_eq!(joined(&got, 8), b"late");
        assert_eq!(joined(&got, 12), b"gen2");
        // Sent under generation 0 after generation 2 is current: too old, it does not open
        // (only the previous generation is kept)...
        feed(&mut q, &keys, 9, &greased, &mut got);
        assert!(joined(&got, 16).is_empty());
        // ...but under generation 2 it does.
        let g2_again = rq::DirectionalKeys {
            header: s.one_rtt.header,
            packet: g2,
        };
        let greased = seal_greased(&g2_again, 7, &stream_frame(16, 0, b"grease", true));
        feed(&mut q, &keys, 10, &greased, &mut got);
        assert_eq!(joined(&got, 16), b"grease");
        assert_eq!(q.protected.updates(), 2);
        let t = q.summary().unwrap();
        assert_eq!(
            t.decryption,
            Decryption::Partial,
            "suite {id:04x}: the too-old packet"
        );
        assert_eq!((t.version, t.cipher), (Some(QUIC_V1), Some(id)));
        assert_eq!(t.app, Some("h3"));
        assert_eq!(
            q.opaque,
            30 + greased.len() as u64,
            "every client byte was read but the padding and the too-old packet"
        );
    }
}

#[test]
fn zero_rtt_packets_open_with_the_early_secret() {
    let (c, s, log) = configs(cs::TLS13_AES_128_GCM_SHA256);
    let _first = handshake(&c, &s, &log);
    let resumed = handshake(&c, &s, &log);
    let early = resumed.early.as_ref().expect("0-RTT keys on resumption");
    assert!(resumed.log.contains("CLIENT_EARLY_TRAFFIC_SECRET"));
    let keys = key_view(&resumed.log);
    let mut q = QuicClient::new();
    let mut got = Got::new();
    // 0-RTT coalesced after the Initial (to the client's original DCID), as clients send it.
    let mut d = initial(&resumed);
    let body = format!("GET /?imei={IMEI}");
    d.extend(seal(
        early,
        None,
        Some(1),
        &ORIGINAL_DCID,
        0,
        false,
        &stream_frame(0, 0, body.as_bytes(), true),
    ));
    let r = feed(&mut q, &keys, 1, &d, &mut got);
    assert!(r.hello.is_some());
    assert_eq!(joined(&got, 0), body.as_bytes());
    // Then 1-RTT in the same packet number space (its CID length learnt from the server).
    let mut server_long = vec![0xe0, 0, 0, 0, 1, CLIENT_CID.len() as u8];
    server_long.extend_from_slice(&CLIENT_CID);
    server_long.push(SERVER_CID.len() as u8);
    server_long.extend_from_slice(&SERVER_CID);
    server_long.push(0);
    q.server_datagram(&server_long);
    let p = seal(
        &resumed.one_rtt,
        None,
        None,
        &SERVER_CID,
        1,
        false,
        &stream_frame(4, 0, b"after", true),
    );
    feed(&mut q, &keys, 2, &p, &mut got);
    assert_eq!(joined(&got, 4), b"after");
    assert_eq!(q.summary().unwrap().decryption, Decryption::Decrypted);
}

/// The client's Handshake packet (its Finished) and a 1-RTT packet whose stream 0 carries
/// `imei` and ends, both to the server's connection ID.
fn handshake_then_request(s: &Session) -> (Vec<u8>, Vec<u8>) {
    let hs = seal(
        &s.handshake,
        None,
        Some(2),
        &SERVER_CID,
        0,
        false,
        &crypto_frame(&s.finished),
    );
    let p = seal(
        &s.one_rtt,
        None,
        None,
        &SERVER_CID,
        0,
        false,
        &stream_frame(0, 0, b"imei", true),
    );
    (hs, p)
}

#[test]
fn wrong_missing_and_no_keys() {
    let s = suite(cs::TLS13_AES_128_GCM_SHA256);
    let (hs, p) = handshake_then_request(&s);
    // Every secret's first hex digit flipped.
    let bad: String = s
        .log
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
            let first = if f[2].starts_with('0') { "1" } else { "0" };
            f[2] = format!("{first}{}", &f[2][1..]);
            f.join(" ") + "\n"
        })
        .collect();
    // A key log for another connection only.
    let other = format!(
        "CLIENT_TRAFFIC_SECRET_0 {} {}\n",
        "00".repeat(32),
        "11".repeat(32)
    );
    for (log, want) in [
        (bad.as_str(), Decryption::KeysDoNotMatch { frame: 2 }),
        (other.as_str(), Decryption::NoKey),
    ] {
        let keys = key_view(log);
        let mut q = QuicClient::new();
        let mut got = Got::new();
        feed(&mut q, &keys, 1, &initial(&s), &mut got);
        feed(&mut q, &keys, 2, &hs, &mut got);
        feed(&mut q, &keys, 3, &p, &mut got);
        assert!(got.is_empty());
        assert_eq!(q.summary().unwrap().decryption, want);
        assert_eq!(q.opaque, (hs.len() + p.len()) as u64);
    }
    // No key log: nothing is tried, no summary.
    let mut q = QuicClient::new();
    let mut got = Got::new();
    feed(&mut q, &KeyView::default(), 1, &initial(&s), &mut got);
    feed(&mut q, &KeyView::default(), 3, &p, &mut got);
    assert!(q.summary().is_none() && got.is_empty());
    assert_eq!(q.opaque, p.len() as u64);
    // Short headers before any CID length is known: not tried, `incomplete`.
    let keys = key_view(&s.log);
    let mut q = QuicClient::new();
    feed(&mut q, &keys, 1, &initial(&s), &mut got);
    feed(&mut q, &keys, 3, &p, &mut got);
    assert_eq!(q.summary().unwrap().decryption, Decryption::Incomplete);
}

/// A key log with the handshake secrets but no `CLIENT_TRAFFIC_SECRET_0`: the Handshake packet
/// opens, the 1-RTT one cannot be tried — not `decrypted`.
#[test]
fn a_missing_traffic_secret_is_not_decrypted() {
    let s = suite(cs::TLS13_AES_128_GCM_SHA256);
    let (hs, p) = handshake_then_request(&s);
    let handshake_only: String = s
        .log
        .lines()
        .filter(|l| !l.starts_with("CLIENT_TRAFFIC_SECRET_0"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(handshake_only.contains("CLIENT_HANDSHAKE_TRAFFIC_SECRET"));
    let keys = key_view(&handshake_only);
    let mut q = QuicClient::new();
    let mut got = Got::new();
    feed(&mut q, &keys, 1, &initial(&s), &mut got);
    feed(&mut q, &keys, 2, &hs, &mut got);
    // Only the handshake so far: everything given was read.
    assert_eq!(q.summary().unwrap().decryption, Decryption::Decrypted);
    feed(&mut q, &keys, 3, &p, &mut got);
    assert!(got.is_empty());
    assert_eq!(q.opaque, p.len() as u64);
    assert_eq!(q.summary().unwrap().decryption, Decryption::NoKey);
    // With the whole log the same 1-RTT packet opens: `decrypted`.
    let keys = key_view(&s.log);
    let mut q = QuicClient::new();
    feed(&mut q, &keys, 1, &initial(&s), &mut got);
    feed(&mut q, &keys, 2, &hs, &mut got);
    feed(&mut q, &keys, 3, &p, &mut got);
    assert_eq!(joined(&got, 0), b"imei");
    assert_eq!(q.summary().unwrap().decryption, Decryption::Decrypted);
}

/// Keys that come after the connection began (a pcapng Decryption Secrets Block later in the
/// capture) are used from then on; packets read before them make the connection `partial`.
#[test]
fn keys_that_come_later_are_used() {
    let s = suite(cs::TLS13_AES_128_GCM_SHA256);
    let (hs, p) = handshake_then_request(&s);
    let none = KeyView::default();
    let keys = key_view(&s.log);
    // The keys come after the Initial: everything protected opens.
    let mut q = QuicClient::new();
    let mut got = Got::new();
    feed(&mut q, &none, 1, &initial(&s), &mut got);
    assert!(q.summary().is_none());
    feed(&mut q, &keys, 2, &hs, &mut got);
    feed(&mut q, &keys, 3, &p, &mut got);
    assert_eq!(joined(&got, 0), b"imei");
    assert_eq!(q.summary().unwrap().decryption, Decryption::Decrypted);
    // They come after the Handshake packet (whose CID still gives the 1-RTT packet's): `partial`.
    let mut q = QuicClient::new();
    let mut got = Got::new();
    feed(&mut q, &none, 1, &initial(&s), &mut got);
    feed(&mut q, &none, 2, &hs, &mut got);
    feed(&mut q, &keys, 3, &p, &mut got);
    assert_eq!(joined(&got, 0), b"imei");
    assert_eq!(q.summary().unwrap().decryption, Decryption::Partial);
}

/// The whole engine: UDP datagrams in a capture, a finding at the frame that carried the byte
/// that completed the identifier (here the out-of-order packet that arrived first).
#[test]
fn findings_name_the_datagram_that_carried_the_identifier() {
    let s = suite(cs::TLS13_CHACHA20_POLY1305_SHA256);
    let c = [10, 0, 0, 2];
    let srv = [10, 0, 0, 1];
    // An HTTP/3 request on stream 0 (ALPN h3): HEADERS (QPACK: `:method POST`, `:path /` from
    // the static table), then DATA with the identifier.
    let form = format!("imei={IMEI}");
    let mut body = vec![0x01, 0x04, 0x00, 0x00, 0xd4, 0xc1, 0x00, form.len() as u8];
    body.extend_from_slice(form.as_bytes());
    let split = body.len() - 6;
    let mut server_long = vec![0xe0, 0, 0, 0, 1, CLIENT_CID.len() as u8];
    server_long.extend_from_slice(&CLIENT_CID);
    server_long.push(SERVER_CID.len() as u8);
    server_long.extend_from_slice(&SERVER_CID);
    server_long.push(0);
    let out = |d: &[u8]| ethernet(&ipv4_udp(c, srv, 50000, 443, d));
    let frames = [
        out(&initial(&s)),
        ethernet(&ipv4_udp(srv, c, 443, 50000, &server_long)),
        // Frame 3: the identifier's end, out of order; frame 4: the request up to it.
        out(&seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            1,
            false,
            &stream_frame(0, split as u64, &body[split..], true),
        )),
        out(&seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            0,
            false,
            &stream_frame(0, 0, &body[..split], false),
        )),
        // Frame 5: a DATAGRAM frame with the identifier, searched whole; frame 6: a stream of
        // the server's (bidirectional, id 1) the client writes on, searched raw.
        out(&seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            2,
            false,
            &[&[0x30][..], IMEI.as_bytes()].concat(),
        )),
        out(&seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            3,
            false,
            &stream_frame(1, 0, IMEI.as_bytes(), true),
        )),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let file = pcap(1, &refs);
    let mut log = KeyLog::new();
    log.add_text(s.log.as_bytes());
    let keys = Keys::new(log);
    let ids = [Identifier::new("imei", IMEI)];
    let mut a = Analyzer::new(&ids).with_keys(&keys);
    a.read_all(&file[..]).unwrap();
    let a = a.finish();
    // The parallel analyzer's shards: the same.
    let sharded =
        crate::analyze_parallel_with_keys(&file[..], &ids, &keys, 2, crate::Analysis::default)
            .unwrap()
            .map_sink(|sinks| {
                let mut all = crate::Analysis::default();
                for s in sinks {
                    all.merge(s);
                }
                all
            })
            .into_analysis();
    assert_eq!(sharded.findings, a.findings);
    assert_eq!(sharded.flows, a.flows);
    let where_: Vec<(&str, u64)> = a
        .findings
        .iter()
        .map(|f| (f.location.as_str(), f.frame))
        .collect();
    assert!(where_.contains(&("http.body", 3)), "{where_:?}");
    assert!(where_.contains(&("quic.datagram", 5)), "{where_:?}");
    assert!(where_.contains(&("quic.stream", 6)), "{where_:?}");
    let t = a.flows[0].tls.unwrap();
    assert_eq!(t.decryption, Decryption::Decrypted);
    assert_eq!(
        a.findings[0].tls.map(|t| t.to_string()).as_deref(),
        Some("QUIC v1 / TLS 1.3 TLS_CHACHA20_POLY1305_SHA256")
    );
}

/// Hostile datagrams after a real handshake: cut or corrupted anywhere, frames with absurd
/// lengths, streams that never fill their holes. Never a panic; what is held stays bounded.
#[test]
fn hostile_packets_never_panic_and_stay_bounded() {
    let s = suite(cs::TLS13_AES_128_GCM_SHA256);
    let keys = key_view(&s.log);
    let start = |got: &mut Got| {
        let mut q = QuicClient::new();
        feed(&mut q, &keys, 1, &initial(&s), got);
        let hs = seal(
            &s.handshake,
            None,
            Some(2),
            &SERVER_CID,
            0,
            false,
            &crypto_frame(&s.finished),
        );
        feed(&mut q, &keys, 2, &hs, got);
        q
    };
    let mut got = Got::new();
    let good = seal(
        &s.one_rtt,
        None,
        None,
        &SERVER_CID,
        0,
        false,
        &stream_frame(0, 0, b"hello", true),
    );
    for cut in 0..good.len() {
        let mut q = start(&mut got);
        feed(&mut q, &keys, 3, &good[..cut], &mut got);
        let mut bad = good.clone();
        bad[cut] ^= 0x5a;
        feed(&mut q, &keys, 4, &bad, &mut got);
    }
    // Frames that lie about their lengths, unknown types, huge offsets and stream ids.
    let lies: [&[u8]; 6] = [
        &[
            0x0e, 0x00, 0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff,
        ],
        &[0x0a, 0x04, 0x7f, 0xff, 0x01],
        &[0x18, 0x01, 0x00, 0xff, 0x01],
        &[0x1c, 0x00, 0x00, 0x7f, 0xff],
        &[0x31, 0x7f, 0xff],
        &[0x40, 0x99, 0x01, 0x02, 0x03],
    ];
    let mut q = start(&mut got);
    for (i, f) in lies.iter().enumerate() {
        let p = seal(&s.one_rtt, None, None, &SERVER_CID, i as u64, false, f);
        feed(&mut q, &keys, 10 + i as u64, &p, &mut got);
    }
    // Thousands of pieces after holes on many streams: held bytes stay under the bound.
    let piece = [0x41u8; 1000];
    for i in 0..3000u64 {
        let p = seal(
            &s.one_rtt,
            None,
            None,
            &SERVER_CID,
            100 + i,
            false,
            &stream_frame(4 * (i % 50), 1 + 2000 * (i / 50), &piece, false),
        );
        feed(&mut q, &keys, 100 + i, &p, &mut got);
        assert!(q.buffered() <= streams::MAX_HELD);
    }
    q.flush(&mut |_| {});
    assert_eq!(q.buffered(), 0);
    assert_eq!(q.summary().unwrap().decryption, Decryption::Decrypted);
}

/// A client Initial carrying `crypto` (padded to 1100 bytes of frames) with packet number `pn`,
/// sealed and header-protected by rustls' own QUIC Initial keys for `dcid` (an independent
/// implementation: it encrypts, tattle decrypts). Shared with `initial`'s tests.
pub(super) fn rustls_sealed_initial(dcid: &[u8], pn: u8, crypto: &[u8]) -> Vec<u8> {
    let SupportedCipherSuite::Tls13(aes128) = cs::TLS13_AES_128_GCM_SHA256 else {
        unreachable!()
    };
    let keys = rq::Keys::initial(
        Version::V1,
        aes128,
        aes128.quic.expect("quic"),
        dcid,
        Side::Client,
    );
    let mut frames = crypto_frame(crypto);
    frames.resize(1100, 0);
    let mut header = vec![0xc1, 0, 0, 0, 1, dcid.len() as u8];
    header.extend_from_slice(dcid);
    header.extend_from_slice(&[0, 0]);
    header.extend_from_slice(&(0x4000u16 | (2 + frames.len() + 16) as u16).to_be_bytes());
    let pn_off = header.len();
    header.extend_from_slice(&[0, pn]);
    let tag = keys
        .local
        .packet
        .encrypt_in_place(u64::from(pn), &header, &mut frames)
        .unwrap();
    let mut pkt = header;
    pkt.extend_from_slice(&frames);
    pkt.extend_from_slice(tag.as_ref());
    let sample = pkt[pn_off + 4..pn_off + 20].to_vec();
    let (head, rest) = pkt.split_at_mut(pn_off);
    keys.local
        .header
        .encrypt_in_place(&sample, &mut head[0], &mut rest[..2])
        .unwrap();
    pkt
}

/// RFC 9001 Appendix A.2's client Initial keys and header protection (also in `initial`), and
/// an Initial from rustls' own keys read by `Initials` through the datagram loop.
#[test]
fn rustls_initial_through_the_datagram_loop() {
    let s = suite(cs::TLS13_AES_128_GCM_SHA256);
    let pkt = rustls_sealed_initial(&ORIGINAL_DCID, 0, &s.hello);
    let mut q = QuicClient::new();
    let mut got = Got::new();
    let r = feed(&mut q, &key_view(&s.log), 1, &pkt, &mut got);
    assert_eq!(r.hello.unwrap().sni.as_deref(), Some("api.example"));
}
