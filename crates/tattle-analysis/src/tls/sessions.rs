//! Decryption checked against an independent TLS implementation: rustls sessions run in memory
//! (every TLS 1.3 and TLS 1.2 AEAD suite, KeyUpdate, records cut at every segment size), their
//! key logs collected through rustls' `KeyLog`, their bytes framed as a TCP capture and analysed.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use rustls::crypto::ring::{cipher_suite as cs, default_provider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConnection, ServerConnection, SupportedCipherSuite};

use crate::identifier::Identifier;
use crate::keylog::KeyLog;
use crate::packet::tests::{ethernet, ipv4_tcp};
use crate::reader::tests::pcap;
use crate::{Analysis, Analyzer, Decryption, Keys, Protocol};

pub(super) const IMEI: &str = "356938035643809";
const C: [u8; 4] = [10, 0, 0, 2];
const S: [u8; 4] = [10, 0, 0, 1];

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

/// Bytes each side sent, in the order they were sent: (from the client, bytes).
pub(super) type Wire = Vec<(bool, Vec<u8>)>;

/// A session of `suite`: handshake, then `requests` written by the client (a KeyUpdate before
/// each after the first when `key_update`). Returns the wire and the key log.
fn session(suite: SupportedCipherSuite, requests: &[String], key_update: bool) -> (Wire, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["api.example".to_string()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut provider = default_provider();
    provider.cipher_suites = vec![suite];
    let provider = Arc::new(provider);
    let version = match suite {
        SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
        SupportedCipherSuite::Tls12(_) => &rustls::version::TLS12,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut client_cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let log = Arc::new(Lines::default());
    client_cfg.key_log = log.clone();
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let mut client =
        ClientConnection::new(Arc::new(client_cfg), "api.example".try_into().unwrap()).unwrap();
    let mut server = ServerConnection::new(Arc::new(server_cfg)).unwrap();
    let mut wire = Wire::new();
    let pump = |client: &mut ClientConnection, server: &mut ServerConnection, wire: &mut Wire| {
        loop {
            let mut moved = false;
            while client.wants_write() {
                let mut out = Vec::new();
                client.write_tls(&mut out).unwrap();
                server.read_tls(&mut &out[..]).unwrap();
                server.process_new_packets().unwrap();
                wire.push((true, out));
                moved = true;
            }
            while server.wants_write() {
                let mut out = Vec::new();
                server.write_tls(&mut out).unwrap();
                client.read_tls(&mut &out[..]).unwrap();
                client.process_new_packets().unwrap();
                wire.push((false, out));
                moved = true;
            }
            if !moved {
                break;
            }
        }
    };
    pump(&mut client, &mut server, &mut wire);
    for (i, req) in requests.iter().enumerate() {
        if key_update && i > 0 {
            client.refresh_traffic_keys().unwrap();
        }
        client.writer().write_all(req.as_bytes()).unwrap();
        pump(&mut client, &mut server, &mut wire);
    }
    let text = log.0.lock().unwrap().clone();
    (wire, text)
}

/// The wire as a capture: a TCP handshake, then each side's bytes in segments of at most `mss`.
pub(super) fn capture(wire: &Wire, mss: usize) -> Vec<u8> {
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut frames = vec![
        ethernet(&ipv4_tcp(C, S, 40000, 443, cseq, 0x02, b"")),
        ethernet(&ipv4_tcp(S, C, 443, 40000, sseq, 0x12, b"")),
        ethernet(&ipv4_tcp(C, S, 40000, 443, cseq + 1, 0x10, b"")),
    ];
    cseq += 1;
    sseq += 1;
    for (from_client, bytes) in wire {
        for piece in bytes.chunks(mss) {
            let frame = if *from_client {
                let f = ipv4_tcp(C, S, 40000, 443, cseq, 0x18, piece);
                cseq += piece.len() as u32;
                f
            } else {
                let f = ipv4_tcp(S, C, 443, 40000, sseq, 0x18, piece);
                sseq += piece.len() as u32;
                f
            };
            frames.push(ethernet(&frame));
        }
    }
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    pcap(1, &refs)
}

pub(super) fn analyse(file: &[u8], keys: &str) -> Analysis {
    let mut log = KeyLog::new();
    log.add_text(keys.as_bytes());
    let ids = [Identifier::new("imei", IMEI)];
    let mut a = Analyzer::new(&ids).with_keys(&Keys::new(log));
    a.feed(file).unwrap();
    a.finish()
}

fn requests(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let body = format!("n={i}&imei={IMEI}");
            format!(
                "POST /r{i}?id={IMEI} HTTP/1.1\r\nHost: api.example\r\nX-Device: {IMEI}\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        })
        .collect()
}

/// Each finding as "location@frame", and the frames where the client bytes of each request
/// ended (where the record holding its last byte was completed).
fn located(a: &Analysis) -> Vec<String> {
    a.findings
        .iter()
        .map(|f| format!("{}@{}", f.location, f.frame))
        .collect()
}

const SUITES: [(SupportedCipherSuite, u16, u16); 6] = [
    (cs::TLS13_AES_128_GCM_SHA256, 0x0304, 0x1301),
    (cs::TLS13_AES_256_GCM_SHA384, 0x0304, 0x1302),
    (cs::TLS13_CHACHA20_POLY1305_SHA256, 0x0304, 0x1303),
    (cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0x0303, 0xc02b),
    (cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, 0x0303, 0xc02c),
    (
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        0x0303,
        0xcca9,
    ),
];

#[test]
fn every_suite_decrypts_http_with_the_frame_that_completed_the_record() {
    for (suite, version, cipher) in SUITES {
        let (wire, keys) = session(suite, &requests(2), false);
        let file = capture(&wire, 1400);
        let a = analyse(&file, &keys);
        let name = format!("{:?}", suite.suite());
        assert_eq!(a.flows.len(), 1, "{name}");
        let f = &a.flows[0];
        assert_eq!(f.protocol, Protocol::Tls);
        let tls = f.tls.expect("tls facts");
        assert_eq!(
            (tls.version, tls.cipher),
            (Some(version), Some(cipher)),
            "{name}"
        );
        assert_eq!(tls.decryption, Decryption::Decrypted, "{name}");
        assert_eq!(tls.app, Some("http/1.1"), "{name}");
        assert!(tls.decrypted_bytes > 0);
        let mut locs: Vec<&str> = a.findings.iter().map(|f| f.location.as_str()).collect();
        locs.sort();
        assert_eq!(
            locs,
            ["http.body", "http.header:X-Device", "http.url"],
            "{name}: {:?}",
            a.findings
        );
        for finding in &a.findings {
            let t = finding.tls.expect("seen in decrypted TLS");
            assert_eq!((t.version, t.cipher), (version, cipher));
        }
        // The first request is in the first client frame after the handshake's last client one.
        let first_app = request_frames(&wire, 1400);
        assert!(
            a.findings.iter().all(|f| f.frame == first_app[0]),
            "{name}: {:?} vs {first_app:?}",
            located(&a)
        );
        // Without keys: the same facts, opaque, nothing found.
        let none = analyse(&file, "");
        let t = none.flows[0].tls.unwrap();
        assert_eq!(t.decryption, Decryption::NotAttempted);
        assert_eq!((t.version, t.cipher), (Some(version), Some(cipher)));
        assert!(none.findings.is_empty());
        assert!(none.flows[0].opaque_bytes > a.flows[0].opaque_bytes);
    }
}

/// The frame numbers (1-based) of the client segments that end each request's record.
fn request_frames(wire: &Wire, mss: usize) -> Vec<u64> {
    let mut frame = 3u64;
    let mut out = Vec::new();
    let handshake_chunks = wire.len();
    let _ = handshake_chunks;
    for (from_client, bytes) in wire {
        let n = bytes.len().div_ceil(mss) as u64;
        frame += n;
        if *from_client && bytes.first() == Some(&0x17) && bytes.len() > 100 {
            out.push(frame);
        }
    }
    out
}

#[test]
fn key_update_and_records_cut_at_every_segment_size() {
    let (wire, keys) = session(cs::TLS13_AES_128_GCM_SHA256, &requests(3), true);
    assert!(keys.contains("CLIENT_TRAFFIC_SECRET_0"));
    let whole = analyse(&capture(&wire, 1400), &keys);
    assert_eq!(
        whole.flows[0].tls.unwrap().decryption,
        Decryption::Decrypted
    );
    // Three requests, each in its own record after a KeyUpdate: each header finding repeats
    // once per request, so the url finding's first frame is the first request's.
    let urls: Vec<&str> = whole.findings.iter().map(|f| f.location.as_str()).collect();
    assert!(urls.contains(&"http.url"), "{urls:?}");
    for mss in 1..=40 {
        let a = analyse(&capture(&wire, mss), &keys);
        let mut locs: Vec<&str> = a.findings.iter().map(|f| f.location.as_str()).collect();
        locs.sort();
        assert_eq!(
            locs,
            ["http.body", "http.header:X-Device", "http.url"],
            "mss {mss}"
        );
        let t = a.flows[0].tls.unwrap();
        assert_eq!(t.decryption, Decryption::Decrypted, "mss {mss}");
        assert_eq!(
            t.decrypted_bytes,
            whole.flows[0].tls.unwrap().decrypted_bytes
        );
    }
}

#[test]
fn wrong_missing_and_malformed_keys() {
    let (wire, keys) = session(cs::TLS13_CHACHA20_POLY1305_SHA256, &requests(1), false);
    let file = capture(&wire, 1400);
    // One hex digit of every client secret flipped: the first protected record fails.
    let bad: String = keys
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
            if f[0].starts_with("CLIENT_") {
                let first = if f[2].starts_with('0') { "1" } else { "0" };
                f[2] = format!("{first}{}", &f[2][1..]);
            }
            f.join(" ") + "\n"
        })
        .collect();
    let a = analyse(&file, &bad);
    let t = a.flows[0].tls.unwrap();
    match t.decryption {
        Decryption::KeysDoNotMatch { frame } => {
            assert!(frame > 3, "{frame}");
        }
        other => panic!("{other:?}"),
    }
    assert!(a.findings.is_empty());
    // Another connection's keys only: no key, opaque, counted.
    let (_, other) = session(cs::TLS13_CHACHA20_POLY1305_SHA256, &requests(1), false);
    let a = analyse(&file, &other);
    assert_eq!(a.flows[0].tls.unwrap().decryption, Decryption::NoKey);
    assert!(a.findings.is_empty());
    let sent = a.flows[0].bytes_out;
    assert_eq!(
        a.flows[0].opaque_bytes,
        sent + a.flows[0].bytes_in - hello_len(&wire)
    );
    // Garbage lines around the right keys change nothing.
    let noisy = format!("garbage\nCLIENT_RANDOM zz 11\n{keys}# comment\nNOT A LINE\n");
    let clean = analyse(&file, &keys);
    assert_eq!(analyse(&file, &noisy), clean);
    assert_eq!(clean.findings.len(), 3);
}

fn hello_len(wire: &Wire) -> u64 {
    let first = &wire[0].1;
    (5 + u16::from_be_bytes([first[3], first[4]]) as usize) as u64
}

/// With keys, a capture cut anywhere or corrupted anywhere never panics; fed in small pieces it
/// gives the whole file's analysis; sharded over threads, the single-threaded one.
#[test]
fn cut_corrupted_streamed_and_sharded_with_keys() {
    let (wire, keys) = session(
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        &requests(1),
        false,
    );
    let file = capture(&wire, 300);
    let whole = analyse(&file, &keys);
    assert_eq!(whole.findings.len(), 3);
    let mut log = KeyLog::new();
    log.add_text(keys.as_bytes());
    let keys = Keys::new(log);
    let ids = [Identifier::new("imei", IMEI)];
    // One automaton for the ~1000 analyses below.
    let needles = crate::Needles::new(&ids);
    let run = |bytes: &[u8]| {
        let mut a = Analyzer::with_needles(&needles, Analysis::default()).with_keys(&keys);
        a.feed(bytes).unwrap();
        a.finish()
    };
    for cut in (24..file.len()).step_by(7) {
        assert!(run(&file[..cut]).frames <= whole.frames);
    }
    for at in (24..file.len()).step_by(5) {
        let mut bad = file.clone();
        bad[at] ^= 0x5a;
        assert!(run(&bad).frames <= whole.frames + 1);
    }
    let mut a = Analyzer::new(&ids).with_keys(&keys);
    for piece in file.chunks(7) {
        a.feed(piece).unwrap();
    }
    assert_eq!(a.finish(), whole);
    let sharded = crate::analyze_parallel_with_keys(&file[..], &ids, &keys, 2, Analysis::default)
        .unwrap()
        .map_sink(|sinks| {
            let mut all = Analysis::default();
            for s in sinks {
                all.merge(s);
            }
            all
        })
        .into_analysis();
    assert_eq!(sharded.findings, whole.findings);
    assert_eq!(sharded.flows, whole.flows);
}
