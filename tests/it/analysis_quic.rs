//! QUIC decryption against real peers: Debian's ngtcp2 examples (`gtlsserver`, and `gtlsclient`
//! whose GnuTLS honours `SSLKEYLOGFILE`) POST an IMEI in the URL and the body over HTTP/3, once per
//! suite QUIC uses (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305 — so both AES header protections
//! and ChaCha20's), captured by the real tcpdump on `lo` in a user + network namespace of its own
//! (no root), and checked against `tshark -o tls.keylog_file:…` on the same file: the identifier is
//! found in the decrypted stream data on the frames where tshark shows it, with the suite tshark
//! reads from the handshake. Then a session resumed with 0-RTT (`--session-file`, `--tp-file`): the
//! POST in 0-RTT packets (`CLIENT_EARLY_TRAFFIC_SECRET`), found at the frame tshark shows it in.
//! Wrong keys, no keys, no key log, and the key log injected into a pcapng by
//! `editcap --inject-secrets` are checked too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::analysis_tls::{Server, ec_certificate, flip_secrets};
use crate::analysis_tshark::Tcpdump;
use crate::support;
use tattle_analysis::identifier::Identifier;
use tattle_analysis::keylog::KeyLog;
use tattle_analysis::{Analysis, Analyzer, Decryption, Keys, Protocol};

const IMEI: &str = "356938035643809";
const ADDR: &str = "127.88.52.1";
const PORT: u16 = 4443;
/// GnuTLS priority strings, one connection each.
const SUITES: [&str; 3] = ["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"];

fn analyse(file: &Path, keys: Option<&[u8]>) -> Analysis {
    let ids = [Identifier::new("imei", IMEI)];
    let mut a = Analyzer::new(&ids);
    if let Some(keys) = keys {
        let mut log = KeyLog::new();
        log.add_text(keys);
        a = a.with_keys(&Keys::new(log));
    }
    a.read_all(std::fs::File::open(file).unwrap()).unwrap();
    a.finish()
}

/// Whether something listens on UDP `port` (the namespace's own /proc view).
fn udp_listening(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| t.contains(&needle))
}

/// What tshark shows of one QUIC connection.
#[derive(Debug, Default)]
struct Seen {
    /// Frames whose decrypted client stream data holds the IMEI.
    imei: BTreeSet<u64>,
    cipher: Option<u16>,
    /// Client frames with a 0-RTT packet.
    zero_rtt: BTreeSet<u64>,
    /// Client frames carrying data of stream 0 (the request: HEADERS, DATA).
    stream0: BTreeSet<u64>,
}

/// udp.stream → what tshark shows of it.
fn tshark_view(cap: &Path, keys: &Path) -> BTreeMap<usize, Seen> {
    let pref = format!("tls.keylog_file:{}", keys.display());
    let rows = support::tshark_rows(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        &pref,
        "-Y",
        "quic",
        "-T",
        "fields",
        "-e",
        "udp.stream",
        "-e",
        "frame.number",
        "-e",
        "udp.dstport",
        "-e",
        "quic.stream_data",
        "-e",
        "tls.handshake.ciphersuite",
        "-e",
        "quic.long.packet_type",
        "-e",
        "quic.stream.stream_id",
    ]);
    let imei_hex = hex::encode(IMEI);
    let mut out: BTreeMap<usize, Seen> = BTreeMap::new();
    for r in rows {
        let e = out.entry(r[0].parse().unwrap()).or_default();
        let frame: u64 = r[1].parse().unwrap();
        let client = r[2] == PORT.to_string();
        if client && r[3].contains(&imei_hex) {
            e.imei.insert(frame);
        }
        if let Some(c) = r[4].split(',').find(|c| !c.is_empty()) {
            e.cipher = Some(u16::from_str_radix(c.trim_start_matches("0x"), 16).unwrap());
        }
        if client && r[5].split(',').any(|t| t == "1") {
            e.zero_rtt.insert(frame);
        }
        if client && r[6].split(',').any(|t| t == "0") {
            e.stream0.insert(frame);
        }
    }
    out
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn ngtcp2_http3_decrypts_as_tshark_does() {
    support::rerun_unprivileged(
        "analysis_quic::ngtcp2_http3_decrypts_as_tshark_does_inside",
        support::OWN_NETWORK,
    );
}

#[test]
#[ignore = "run by ngtcp2_http3_decrypts_as_tshark_does in a namespace of its own"]
fn ngtcp2_http3_decrypts_as_tshark_does_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ec_certificate(d);
    std::fs::create_dir(d.join("www")).unwrap();
    std::fs::write(d.join("www/index.html"), "hi\n").unwrap();
    std::fs::write(d.join("body.txt"), format!("imei={IMEI}")).unwrap();
    // Debian puts it in /usr/sbin, which a normal user's PATH may lack.
    let gtlsserver = ["/usr/sbin/gtlsserver", "/usr/bin/gtlsserver"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("gtlsserver");
    let server = Server(
        Command::new(gtlsserver)
            .args(["-q", "-d"])
            .arg(d.join("www"))
            .args([ADDR, &PORT.to_string()])
            .arg(d.join("key.pem"))
            .arg(d.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gtlsserver must be installed (apt install ngtcp2-server)"),
    );
    for _ in 0..100 {
        if udp_listening(PORT) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cap = d.join("quic.pcap");
    let keys = d.join("quic.keys");
    let dump = Tcpdump::start("lo", "127.88.52.0/24", &cap);
    for suite in SUITES {
        let status = Command::new("gtlsclient")
            .env("SSLKEYLOGFILE", &keys)
            .args(["-q", "--exit-on-all-streams-close", "-m", "POST", "-d"])
            .arg(d.join("body.txt"))
            .arg(format!(
                "--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+{suite}"
            ))
            .args([ADDR, &PORT.to_string()])
            .arg(format!(
                "https://{ADDR}:{PORT}/index.html?imei={IMEI}&suite={suite}"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("gtlsclient must be installed (apt install ngtcp2-client)");
        assert!(status.success(), "gtlsclient {suite}");
    }
    // A session ticket, then the same POST resumed in 0-RTT.
    for query in ["ticket", "early"] {
        let status = Command::new("gtlsclient")
            .env("SSLKEYLOGFILE", &keys)
            .args(["-q", "--exit-on-all-streams-close", "--session-file"])
            .arg(d.join("session"))
            .arg("--tp-file")
            .arg(d.join("tp"))
            .args(["-m", "POST", "-d"])
            .arg(d.join("body.txt"))
            .args([ADDR, &PORT.to_string()])
            .arg(format!(
                "https://{ADDR}:{PORT}/index.html?imei={IMEI}&{query}"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "gtlsclient {query}");
    }
    drop(server);
    dump.stop();

    let key_text = std::fs::read(&keys).unwrap();
    let a = analyse(&cap, Some(&key_text));
    let expected = tshark_view(&cap, &keys);
    assert_eq!(a.flows.len(), SUITES.len() + 2);
    assert_eq!(expected.len(), SUITES.len() + 2);
    let mut ciphers = BTreeSet::new();
    // udp.stream numbers flows in order of their first packet, as `a.flows` is sorted.
    for (stream, flow) in a.flows.iter().enumerate() {
        assert_eq!(flow.protocol, Protocol::Quic);
        let Seen {
            imei: frames,
            cipher,
            zero_rtt,
            stream0,
        } = &expected[&stream];
        if stream == SUITES.len() + 1 {
            // The resumed session sent its request in 0-RTT: that is where it is found first.
            assert!(
                zero_rtt.contains(frames.first().unwrap()),
                "tshark shows the IMEI in 0-RTT first: {frames:?} {zero_rtt:?}"
            );
        }
        assert!(
            !frames.is_empty(),
            "tshark shows the body of stream {stream}"
        );
        let tls = flow
            .tls
            .expect("a QUIC flow with a key log has a TLS summary");
        assert_eq!(tls.decryption, Decryption::Decrypted, "stream {stream}");
        assert_eq!(tls.version, Some(tattle_analysis::QUIC_V1));
        assert_eq!(
            tls.cipher, *cipher,
            "the suite tshark reads, stream {stream}"
        );
        assert_eq!(tls.app, Some("h3"));
        assert!(tls.decrypted_bytes > 0 && tls.decrypted_bytes <= flow.bytes_out);
        if stream < SUITES.len() {
            ciphers.insert(tls.cipher);
        }
        let at = |location: &str| -> BTreeSet<u64> {
            a.findings
                .iter()
                .filter(|f| f.flow == flow.first_frame && f.location == location)
                .map(|f| f.frame)
                .collect()
        };
        // The HTTP/3 reader: the body where tshark shows the decrypted stream data holding it
        // (a finding is kept once per flow, at the first frame that showed it); the URL, which
        // QPACK sends Huffman-coded, in a frame carrying the request stream.
        let body = at("http.body");
        assert!(
            body.is_subset(frames) && body.contains(frames.first().unwrap()),
            "stream {stream}: {body:?}, tshark: {frames:?}"
        );
        let url = at("http.url");
        assert!(
            !url.is_empty() && url.is_subset(stream0),
            "stream {stream}: {url:?}, tshark: {stream0:?}"
        );
        assert!(
            at("quic.stream").is_empty(),
            "stream {stream}: nothing left raw"
        );
        let f = a
            .findings
            .iter()
            .find(|f| f.flow == flow.first_frame)
            .unwrap();
        assert_eq!(
            f.tls.map(|t| t.to_string()),
            Some(format!(
                "QUIC v1 / TLS 1.3 {}",
                tattle_analysis::cipher_suite_name(cipher.unwrap()).unwrap()
            ))
        );
    }
    assert_eq!(ciphers.len(), SUITES.len(), "each suite once: {ciphers:?}");

    // The key log inside the capture (a Decryption Secrets Block): the same analysis.
    let ng = d.join("quic-dsb.pcapng");
    let status = Command::new("editcap")
        .arg("--inject-secrets")
        .arg(format!("tls,{}", keys.display()))
        .arg(&cap)
        .arg(&ng)
        .status()
        .expect("editcap (wireshark-common)");
    assert!(status.success());
    let from_dsb = analyse(&ng, Some(b""));
    assert_eq!(from_dsb.findings, a.findings);
    assert_eq!(from_dsb.flows, a.flows);

    // Wrong keys (the first hex digit of every secret flipped): tshark shows no stream data, every
    // flow is `keys_do_not_match` at a frame after its first (the ClientHello's).
    let bad = flip_secrets(&key_text);
    let bad_file = d.join("bad.log");
    std::fs::write(&bad_file, &bad).unwrap();
    assert!(
        tshark_view(&cap, &bad_file)
            .values()
            .all(|s| s.imei.is_empty())
    );
    let wrong = analyse(&cap, Some(bad.as_bytes()));
    assert!(wrong.findings.is_empty());
    for (stream, flow) in wrong.flows.iter().enumerate() {
        match flow.tls.unwrap().decryption {
            // The first protected packet: a Handshake packet after the Initial, or the 0-RTT one
            // coalesced with the Initial.
            Decryption::KeysDoNotMatch { frame } => {
                let early = expected[&stream].zero_rtt.first();
                assert!(
                    frame > flow.first_frame || early == Some(&frame),
                    "{stream}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    // A key log without these connections: opaque, `no_key`, nothing found.
    let other = format!(
        "CLIENT_TRAFFIC_SECRET_0 {} {}\n",
        "ab".repeat(32),
        "cd".repeat(32)
    );
    let none = analyse(&cap, Some(other.as_bytes()));
    assert!(none.findings.is_empty());
    for (flow, with) in none.flows.iter().zip(&a.flows) {
        assert_eq!(flow.tls.unwrap().decryption, Decryption::NoKey);
        assert!(flow.opaque_bytes > with.opaque_bytes);
    }
    // No key log at all: as before decryption existed (no TLS summary, same counters).
    let plain = analyse(&cap, None);
    assert!(plain.findings.is_empty());
    for (flow, without) in plain.flows.iter().zip(&none.flows) {
        assert_eq!(flow.tls, None);
        assert_eq!(flow.opaque_bytes, without.opaque_bytes);
    }

    // The command line: the identifier found in decrypted QUIC, never printed.
    let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("analyze")
        .arg(&cap)
        .args(["--id", &format!("imei={IMEI}"), "--keylog"])
        .arg(&keys)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("in decrypted QUIC v1 / TLS 1.3"), "{text}");
    assert!(!text.contains(IMEI), "{text}");
}
