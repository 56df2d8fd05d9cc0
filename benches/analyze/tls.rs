//! The decrypting case of the bench: TLS 1.3 and 1.2 sessions run in memory by rustls (each
//! uploading HTTP/1.1 requests with a planted IMEI), written as a capture with their key log, then
//! `tattle analyze --keylog` against `tshark -o tls.keylog_file:…` decrypting the same file (both
//! reading every request's URI). Asserts every session's plant is found decrypted; prints MB/s and
//! the ratio.
//!
//! Owns the TLS traffic of the bench only.

use std::io::{BufWriter, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use rustls::crypto::ring::{cipher_suite as cs, default_provider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConnection, ServerConnection, SupportedCipherSuite};
use tattle_analysis::pcap::PcapWriter;
use tattle_analysis::testgen::{
    self,
    frame::{ACK, L4, PSH, SYN, ethernet},
};

#[derive(Debug, Default)]
struct Lines(Mutex<String>);

impl rustls::KeyLog for Lines {
    fn log(&self, label: &str, random: &[u8], secret: &[u8]) {
        let line = format!("{label} {} {}\n", hex::encode(random), hex::encode(secret));
        self.0.lock().unwrap().push_str(&line);
    }
}

const SUITES: [SupportedCipherSuite; 6] = [
    cs::TLS13_AES_128_GCM_SHA256,
    cs::TLS13_AES_256_GCM_SHA384,
    cs::TLS13_CHACHA20_POLY1305_SHA256,
    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// Writes `sessions` TLS sessions (suites in turn), each uploading `upload` bytes of request
/// bodies, to `dir/tls.pcap` and their key log to `dir/tls.keys`.
pub fn generate(dir: &Path, sessions: usize, upload: usize) -> (PathBuf, PathBuf, u64) {
    let ck = rcgen::generate_simple_self_signed(vec!["api.example".to_string()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let log = Arc::new(Lines::default());
    let path = dir.join("tls.pcap");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file), 1).unwrap();
    let mut ts = 1_700_000_000_000_000u64;
    let mut frame = Vec::with_capacity(2048);
    let body = "x".repeat(16 << 10);
    for s in 0..sessions {
        let suite = SUITES[s % SUITES.len()];
        let mut provider = default_provider();
        provider.cipher_suites = vec![suite];
        let provider = Arc::new(provider);
        let version = match suite {
            SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
            SupportedCipherSuite::Tls12(_) => &rustls::version::TLS12,
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        let mut cc = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cc.key_log = log.clone();
        let sc = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key.clone_key())
            .unwrap();
        let mut client =
            ClientConnection::new(Arc::new(cc), "api.example".try_into().unwrap()).unwrap();
        let mut server = ServerConnection::new(Arc::new(sc)).unwrap();
        let c = (
            IpAddr::V4(Ipv4Addr::new(10, 0, (s >> 8) as u8, s as u8)),
            40000,
        );
        let srv = (IpAddr::V4(Ipv4Addr::new(93, 184, 0, 1)), 443);
        let (mut cseq, mut sseq) = (1000u32, 9000u32);
        let mut put = |w: &mut PcapWriter<_>, from_client: bool, flags: u8, data: &[u8]| {
            for piece in data.chunks(1448).chain(data.is_empty().then_some(&[][..])) {
                frame.clear();
                let (src, dst, seq, ack) = if from_client {
                    (c, srv, cseq, sseq)
                } else {
                    (srv, c, sseq, cseq)
                };
                ethernet(&mut frame, src, dst, L4::Tcp { seq, ack, flags }, piece);
                ts += 20;
                w.record(ts, &frame).unwrap();
                let adv = piece.len() as u32 + u32::from(flags & SYN != 0);
                if from_client {
                    cseq = cseq.wrapping_add(adv);
                } else {
                    sseq = sseq.wrapping_add(adv);
                }
            }
        };
        put(&mut w, true, SYN, &[]);
        put(&mut w, false, SYN | ACK, &[]);
        let mut sent = 0usize;
        let mut i = 0;
        loop {
            loop {
                let mut moved = false;
                while client.wants_write() {
                    let mut out = Vec::new();
                    client.write_tls(&mut out).unwrap();
                    // rustls reads a bounded amount at a time; the server's plaintext is drained.
                    let mut rd = &out[..];
                    while !rd.is_empty() {
                        server.read_tls(&mut rd).unwrap();
                        server.process_new_packets().unwrap();
                        let _ = std::io::copy(&mut server.reader(), &mut std::io::sink());
                    }
                    put(&mut w, true, PSH | ACK, &out);
                    moved = true;
                }
                while server.wants_write() {
                    let mut out = Vec::new();
                    server.write_tls(&mut out).unwrap();
                    let mut rd = &out[..];
                    while !rd.is_empty() {
                        client.read_tls(&mut rd).unwrap();
                        client.process_new_packets().unwrap();
                    }
                    put(&mut w, false, PSH | ACK, &out);
                    moved = true;
                }
                if !moved {
                    break;
                }
            }
            if sent >= upload {
                break;
            }
            let req = format!(
                "POST /u{i}?imei={} HTTP/1.1\r\nHost: api.example\r\nContent-Length: {}\r\n\r\n{body}",
                testgen::IMEI,
                body.len()
            );
            client.writer().write_all(req.as_bytes()).unwrap();
            sent += req.len();
            i += 1;
        }
    }
    let bytes = w.get_ref().get_ref().metadata().map_or(0, |m| m.len());
    w.flush().unwrap();
    drop(w);
    let keys = dir.join("tls.keys");
    std::fs::write(&keys, log.0.lock().unwrap().as_bytes()).unwrap();
    let bytes = std::fs::metadata(&path).map_or(bytes, |m| m.len());
    (path, keys, bytes)
}

pub fn tshark_cmd(file: &Path, keys: &Path) -> Command {
    let mut c = Command::new("/usr/bin/tshark");
    c.arg("-r")
        .arg(file)
        .arg("-o")
        .arg(format!("tls.keylog_file:{}", keys.display()))
        .args([
            "-Y",
            "http.request",
            "-T",
            "fields",
            "-e",
            "http.request.uri",
        ]);
    c
}
