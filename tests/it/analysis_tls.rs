//! TLS decryption against real peers: `openssl s_server -www` and curl (`SSLKEYLOGFILE`) over TLS
//! 1.3 and 1.2 with each AEAD suite and a CBC suite (encrypt-then-MAC, OpenSSL's default), and
//! `openssl s_client -no_etm -keylogfile` for CBC MAC-then-encrypt, captured by the
//! real tcpdump on `lo` in a user + network namespace of its own (no root), checked against
//! `tshark -o tls.keylog_file:…` on the same file: the same requests decrypted at the same
//! frames, the same version and suite per flow. Wrong keys, missing keys, and the same key log
//! injected into a pcapng by `editcap --inject-secrets` are checked too.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::analysis_tshark::Tcpdump;
use crate::support;
use tattle_analysis::identifier::Identifier;
use tattle_analysis::keylog::KeyLog;
use tattle_analysis::{Analysis, Analyzer, Decryption, Keys};

const IMEI: &str = "356938035643809";
const ADDR: &str = "127.88.50.1";
const PORT: u16 = 4433;

/// (TLS version flag, suite option, suite name) curl is run with, one connection each; then
/// `openssl s_client -no_etm` with each of `MTE`.
const RUNS: [(&str, &str, &str); 7] = [
    ("--tlsv1.3", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256"),
    ("--tlsv1.3", "--tls13-ciphers", "TLS_AES_256_GCM_SHA384"),
    (
        "--tlsv1.3",
        "--tls13-ciphers",
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    ("--tlsv1.2", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("--tlsv1.2", "--ciphers", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("--tlsv1.2", "--ciphers", "ECDHE-RSA-CHACHA20-POLY1305"),
    ("--tlsv1.2", "--ciphers", "ECDHE-RSA-AES128-SHA"),
];
const MTE: [&str; 2] = ["ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA"];
const FLOWS: usize = RUNS.len() + MTE.len();

fn analyse(file: &Path, keys: &[u8]) -> Analysis {
    let mut log = KeyLog::new();
    log.add_text(keys);
    let ids = [Identifier::new("imei", IMEI)];
    let mut a = Analyzer::new(&ids).with_keys(&Keys::new(log));
    a.read_all(std::fs::File::open(file).unwrap()).unwrap();
    a.finish()
}

/// A key and self-signed certificate for localhost: `DIR/{STEM}key.pem`, `DIR/{STEM}cert.pem`;
/// `key` as openssl's `-newkey` and `-pkeyopt` arguments.
fn self_signed(d: &Path, key: &[&str], stem: &str) {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey"])
        .args(key)
        .args(["-nodes", "-subj", "/CN=localhost", "-days", "2", "-keyout"])
        .arg(d.join(format!("{stem}key.pem")))
        .arg("-out")
        .arg(d.join(format!("{stem}cert.pem")))
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed");
    assert!(status.success());
}

/// A P-256 key and self-signed certificate for localhost: `DIR/key.pem`, `DIR/cert.pem`.
pub(crate) fn ec_certificate(d: &Path) {
    self_signed(d, &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "");
}

fn tshark(args: &[&str]) -> Vec<Vec<String>> {
    support::tshark_rows(args)
}

fn tshark_requests(file: &Path, keys: &Path) -> BTreeMap<usize, (u64, String)> {
    let pref = format!("tls.keylog_file:{}", keys.display());
    let f = file.to_str().unwrap();
    let args = ["-r", f, "-o", &pref, "-Y", "http.request", "-T", "fields"];
    let mut args = args.to_vec();
    args.extend([
        "-e",
        "tcp.stream",
        "-e",
        "frame.number",
        "-e",
        "http.request.uri",
    ]);
    tshark(&args)
        .into_iter()
        .map(|r| (r[0].parse().unwrap(), (r[1].parse().unwrap(), r[2].clone())))
        .collect()
}

pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn curl_and_openssl_captures_decrypt_as_tshark_does() {
    support::rerun_unprivileged(
        "analysis_tls::curl_and_openssl_captures_decrypt_as_tshark_does_inside",
        support::OWN_NETWORK,
    );
}

#[test]
#[ignore = "run by curl_and_openssl_captures_decrypt_as_tshark_does in a namespace of its own"]
fn curl_and_openssl_captures_decrypt_as_tshark_does_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ec_certificate(d);
    // RSA suites need an RSA key: the server gets both (the client's suite picks one).
    self_signed(d, &["rsa:2048"], "rsa-");
    let cap = d.join("tls.pcap");
    let keys = d.join("keys.log");
    let server = Server(
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("{ADDR}:{PORT}"),
                "-www",
                "-quiet",
            ])
            .arg("-cert")
            .arg(d.join("rsa-cert.pem"))
            .arg("-key")
            .arg(d.join("rsa-key.pem"))
            .arg("-dcert")
            .arg(d.join("cert.pem"))
            .arg("-dkey")
            .arg(d.join("key.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Until it listens.
    for _ in 0..100 {
        if std::net::TcpStream::connect((ADDR, PORT)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Started after the probes above, so the capture holds curl's connections only.
    let dump = Tcpdump::start("lo", "127.88.50.0/24", &cap);
    for (version, option, suite) in RUNS {
        let url = format!("https://localhost:{PORT}/?imei={IMEI}&suite={suite}");
        let status = Command::new("curl")
            .env("SSLKEYLOGFILE", &keys)
            .args(["-sk", "--resolve", &format!("localhost:{PORT}:{ADDR}")])
            .args([version, "--tls-max", &version[6..], option, suite, &url])
            .args(["-o", "/dev/null"])
            .status()
            .expect("curl must be installed");
        assert!(status.success(), "curl {suite}");
    }
    for suite in MTE {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &format!("{ADDR}:{PORT}")])
            .args([
                "-servername",
                "localhost",
                "-tls1_2",
                "-no_etm",
                "-cipher",
                suite,
            ])
            .arg("-keylogfile")
            .arg(&keys)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let req = format!("GET /?imei={IMEI}&suite={suite} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), req.as_bytes()).unwrap();
        // s_server answers and closes: s_client ends then.
        let status = child.wait().unwrap();
        assert!(status.success(), "s_client {suite}");
    }
    drop(server);
    dump.stop();

    let key_text = std::fs::read(&keys).unwrap();
    let a = analyse(&cap, &key_text);
    let expected = tshark_requests(&cap, &keys);
    assert_eq!(expected.len(), FLOWS, "tshark decrypts every request");
    let hellos = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-Y",
        "tls.handshake.type==2",
        "-T",
        "fields",
        "-e",
        "tcp.stream",
        "-e",
        "tls.handshake.ciphersuite",
        "-e",
        "tls.handshake.extensions.supported_version",
    ]);
    assert_eq!(a.flows.len(), FLOWS);
    // tcp.stream numbers flows in order of their first packet, as `a.flows` is sorted.
    for (stream, flow) in a.flows.iter().enumerate() {
        let tls = flow.tls.expect("a TLS flow");
        let hello = &hellos[stream];
        let cipher = u16::from_str_radix(hello[1].trim_start_matches("0x"), 16).unwrap();
        let version = if hello[2].is_empty() { 0x0303 } else { 0x0304 };
        assert_eq!(
            (tls.cipher, tls.version),
            (Some(cipher), Some(version)),
            "stream {stream}"
        );
        let (frame, uri) = &expected[&stream];
        let found: Vec<u64> = a
            .findings
            .iter()
            .filter(|f| f.flow == flow.first_frame && f.location == "http.url")
            .map(|f| f.frame)
            .collect();
        assert!(uri.contains(IMEI));
        assert_eq!(tls.decryption, Decryption::Decrypted, "stream {stream}");
        assert_eq!(
            found,
            vec![*frame],
            "stream {stream}: the frame tshark shows"
        );
        let f = a
            .findings
            .iter()
            .find(|f| f.flow == flow.first_frame)
            .unwrap();
        assert_eq!(f.tls.map(|t| t.cipher), Some(cipher));
    }

    // The key log inside the capture (a Decryption Secrets Block): the same analysis.
    let ng = d.join("tls-dsb.pcapng");
    let status = Command::new("editcap")
        .arg("--inject-secrets")
        .arg(format!("tls,{}", keys.display()))
        .arg(&cap)
        .arg(&ng)
        .status()
        .expect("editcap (wireshark-common)");
    assert!(status.success());
    let from_dsb = analyse(&ng, b"");
    assert_eq!(from_dsb.findings, a.findings);
    assert_eq!(from_dsb.flows, a.flows);

    // Wrong keys (the first hex digit of every secret flipped): no request for tshark, every
    // supported flow `keys_do_not_match` at the frame of its first protected record.
    let bad = flip_secrets(&key_text);
    let bad_file = d.join("bad.log");
    std::fs::write(&bad_file, &bad).unwrap();
    assert!(tshark_requests(&cap, &bad_file).is_empty());
    let wrong = analyse(&cap, bad.as_bytes());
    assert!(wrong.findings.is_empty());
    for flow in &wrong.flows {
        match flow.tls.unwrap().decryption {
            Decryption::KeysDoNotMatch { frame } => assert!(frame > flow.first_frame),
            other => panic!("{other:?}"),
        }
    }
    // No keys for these connections: opaque, `no_key`, nothing found; malformed lines counted.
    let other = format!(
        "CLIENT_RANDOM {} {}\nnot a key log line\n",
        "ab".repeat(32),
        "cd".repeat(48)
    );
    let none = analyse(&cap, other.as_bytes());
    assert!(none.findings.is_empty());
    assert!(
        none.flows
            .iter()
            .all(|f| f.tls.unwrap().decryption == Decryption::NoKey)
    );

    // The command line: the key log line and the exit code.
    let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("analyze")
        .arg(&cap)
        .args(["--id", &format!("imei={IMEI}"), "--keylog"])
        .arg(&keys)
        .arg("--keylog")
        .arg(d.join("bad-lines.log"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing key log is a usage error"
    );
    std::fs::write(d.join("bad-lines.log"), "garbage line\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("analyze")
        .arg(&cap)
        .args(["--id", &format!("imei={IMEI}"), "--keylog"])
        .arg(&keys)
        .arg("--keylog")
        .arg(d.join("bad-lines.log"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("1 malformed line(s) skipped")
            && text.contains(
                "TLS flows: 9 decrypted, 0 partial, 0 no key, 0 keys do not match, 0 unsupported"
            ),
        "{text}"
    );
    assert!(
        text.contains("in decrypted TLS 1.3 TLS_AES_128_GCM_SHA256"),
        "{text}"
    );
    assert!(!text.contains(IMEI), "{text}");
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn http2_over_tls_decrypts_as_tshark_does() {
    support::rerun_unprivileged(
        "analysis_tls::http2_over_tls_decrypts_as_tshark_does_inside",
        support::OWN_NETWORK,
    );
}

/// nghttpd (TLS, h2 by ALPN) and curl `--http2` over TLS 1.3 and 1.2: the decrypted HTTP/2 goes
/// to the HTTP/2 reader; every URL, header and body finding is at a frame where tshark shows the
/// value in a decrypted HEADERS or DATA frame of the same connection.
#[test]
#[ignore = "run by http2_over_tls_decrypts_as_tshark_does in a namespace of its own"]
fn http2_over_tls_decrypts_as_tshark_does_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    const H2: &str = "127.88.51.1";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ec_certificate(d);
    std::fs::create_dir(d.join("www")).unwrap();
    std::fs::write(d.join("www/index.html"), "hi\n").unwrap();
    let server = Server(
        Command::new("nghttpd")
            .arg(format!("--address={H2}"))
            .arg("-d")
            .arg(d.join("www"))
            .arg(PORT.to_string())
            .arg(d.join("key.pem"))
            .arg(d.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nghttpd must be installed (apt install nghttp2-server)"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect((H2, PORT)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cap = d.join("h2.pcap");
    let keys = d.join("h2.keys");
    let dump = Tcpdump::start("lo", "127.88.51.0/24", &cap);
    for version in ["--tlsv1.3", "--tlsv1.2"] {
        let status = Command::new("curl")
            .env("SSLKEYLOGFILE", &keys)
            .args(["-sk", "--http2", version, "--tls-max", &version[6..]])
            .args(["-H", &format!("X-Device: {IMEI}")])
            .args(["--data-binary", &format!("imei={IMEI}")])
            .arg(format!("https://{H2}:{PORT}/index.html?imei={IMEI}"))
            .args(["-o", "/dev/null"])
            .status()
            .expect("curl");
        assert!(status.success(), "curl {version}");
    }
    drop(server);
    dump.stop();

    let a = analyse(&cap, &std::fs::read(&keys).unwrap());
    assert_eq!(a.flows.len(), 2);
    let pref = format!("tls.keylog_file:{}", keys.display());
    let filter = format!(
        "tcp.dstport=={PORT} && (http2.header.value contains \"{IMEI}\" || http2.data.data contains \"{IMEI}\")"
    );
    let rows = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        &pref,
        "-Y",
        &filter,
        "-T",
        "fields",
        "-e",
        "tcp.stream",
        "-e",
        "frame.number",
    ]);
    for (stream, flow) in a.flows.iter().enumerate() {
        let tls = flow.tls.unwrap();
        assert_eq!(tls.decryption, Decryption::Decrypted, "stream {stream}");
        assert_eq!(tls.app, Some("h2"));
        let theirs: Vec<u64> = rows
            .iter()
            .filter(|r| r[0] == stream.to_string())
            .map(|r| r[1].parse().unwrap())
            .collect();
        let ours: Vec<(&str, u64)> = a
            .findings
            .iter()
            .filter(|f| f.flow == flow.first_frame)
            .map(|f| (f.location.as_str(), f.frame))
            .collect();
        for loc in ["http.url", "http.header:x-device", "http.body"] {
            let frame = ours
                .iter()
                .find(|(l, _)| *l == loc)
                .unwrap_or_else(|| panic!("stream {stream}: no {loc} in {ours:?}"))
                .1;
            assert!(
                theirs.contains(&frame),
                "stream {stream} {loc}@{frame}: tshark {theirs:?}"
            );
        }
    }
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn resumption_late_keys_and_losses_as_tshark_sees_them() {
    support::rerun_unprivileged(
        "analysis_tls::resumption_late_keys_and_losses_as_tshark_sees_them_inside",
        support::OWN_NETWORK,
    );
}

/// `openssl s_client` against `openssl s_server`, key logs of every connection:
/// - resumed sessions — TLS 1.3 PSK (`-sess_out`/`-sess_in`), TLS 1.2 by ticket and by session
///   ID (`-no_ticket`) — decrypt, each request at the frame tshark shows it;
/// - the capture as pcapng with the key log in a Decryption Secrets Block placed after the first
///   client application record (as PCAPdroid writes one when it learns the keys): the same
///   analysis as with the key log given, and tshark (`-2`) shows the same requests;
/// - five requests written apart on one TLS 1.3 connection, two of them deleted from the
///   capture (`editcap`): the flow is `partial` and the requests after the loss are found at the
///   frames tshark shows them at in the whole capture.
#[test]
#[ignore = "run by resumption_late_keys_and_losses_as_tshark_sees_them in a namespace of its own"]
fn resumption_late_keys_and_losses_as_tshark_sees_them_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    const HOST: &str = "127.88.52.1";
    const ECHO: u16 = PORT + 1;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ec_certificate(d);
    let server_args = |port: u16| {
        let mut c = Command::new("openssl");
        c.args(["s_server", "-accept", &format!("{HOST}:{port}"), "-quiet"])
            .arg("-cert")
            .arg(d.join("cert.pem"))
            .arg("-key")
            .arg(d.join("key.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let www = Server(server_args(PORT).arg("-www").spawn().unwrap());
    // The echo server (no -www) reads what each connection sends until the client closes; its
    // stdin stays open so it never sends on its own.
    let echo = Server(server_args(ECHO).stdin(Stdio::piped()).spawn().unwrap());
    for port in [PORT, ECHO] {
        for _ in 0..100 {
            if std::net::TcpStream::connect((HOST, port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let cap = d.join("resumed.pcap");
    let keys = d.join("keys.log");
    let dump = Tcpdump::start("lo", "127.88.52.0/24", &cap);
    // (label, extra s_client arguments): a full handshake then its resumption, three times.
    let sessions: [(&str, &[&str]); 6] = [
        ("full13", &["-sess_out", "s13"]),
        ("psk13", &["-sess_in", "s13"]),
        ("full12", &["-tls1_2", "-sess_out", "s12"]),
        ("ticket12", &["-tls1_2", "-sess_in", "s12"]),
        ("full12id", &["-tls1_2", "-no_ticket", "-sess_out", "s12n"]),
        ("id12", &["-tls1_2", "-no_ticket", "-sess_in", "s12n"]),
    ];
    for (label, extra) in sessions {
        let out = Command::new("openssl")
            .current_dir(d)
            .args(["s_client", "-connect", &format!("{HOST}:{PORT}")])
            // Until the server closes (after its answer): a TLS 1.3 ticket comes after the
            // handshake, and a client that left at its stdin's end could miss it.
            .args(["-ign_eof", "-servername", "localhost", "-keylogfile"])
            .arg(&keys)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut child| {
                let req = format!("GET /?imei={IMEI}&c={label} HTTP/1.0\r\n\r\n");
                std::io::Write::write_all(child.stdin.as_mut().unwrap(), req.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let want = if extra.contains(&"-sess_in") {
            "Reused,"
        } else {
            "New,"
        };
        assert!(text.contains(want), "{label}: {want} in {text}");
    }
    // Five requests written 200 ms apart: five records in five segments.
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-no_ign_eof"])
        .args(["-connect", &format!("{HOST}:{ECHO}")])
        .args(["-ciphersuites", "TLS_AES_128_GCM_SHA256", "-keylogfile"])
        .arg(&keys)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.as_mut().unwrap();
    for i in 1..=5 {
        let req = match i {
            4 => format!("GET /w4?imei={IMEI} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            5 => format!("GET /w5 HTTP/1.1\r\nHost: localhost\r\nX-Device: {IMEI}\r\n\r\n"),
            _ => format!("GET /w{i} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        };
        std::io::Write::write_all(stdin, req.as_bytes()).unwrap();
        std::io::Write::flush(stdin).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    drop((www, echo));
    dump.stop();

    let key_text = std::fs::read(&keys).unwrap();
    let a = analyse(&cap, &key_text);
    assert_eq!(a.flows.len(), 7);
    let decode = format!("tcp.port=={ECHO},tls");
    let requests = |file: &Path, extra: &[&str]| -> Vec<(usize, u64, String)> {
        let mut args = vec!["-r", file.to_str().unwrap(), "-d", &decode];
        args.extend(extra);
        args.extend([
            "-Y",
            "http.request",
            "-T",
            "fields",
            "-e",
            "tcp.stream",
            "-e",
            "frame.number",
            "-e",
            "http.request.uri",
        ]);
        tshark(&args)
            .into_iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap(), r[2].clone()))
            .collect()
    };
    let pref = format!("tls.keylog_file:{}", keys.display());
    let expected = requests(&cap, &["-o", &pref]);
    assert_eq!(
        expected.len(),
        6 + 5,
        "tshark decrypts every request: {expected:?}"
    );
    for (stream, flow) in a.flows.iter().enumerate() {
        let tls = flow.tls.expect("a TLS flow");
        assert_eq!(tls.decryption, Decryption::Decrypted, "stream {stream}");
        let theirs: Vec<u64> = expected
            .iter()
            .filter(|r| r.0 == stream && r.2.contains(IMEI))
            .map(|r| r.1)
            .collect();
        let ours: Vec<u64> = a
            .findings
            .iter()
            .filter(|f| f.flow == flow.first_frame && f.location == "http.url")
            .map(|f| f.frame)
            .collect();
        assert_eq!(ours, theirs, "stream {stream}");
    }

    // The key log as a secrets block after the first client application record.
    let first_request = expected.iter().map(|r| r.1).min().unwrap();
    let late = d.join("late.pcapng");
    std::fs::write(&late, with_secrets_after(&cap, first_request, &key_text)).unwrap();
    let from_late = analyse(&late, b"");
    assert_eq!(from_late.findings, a.findings);
    assert_eq!(from_late.flows, a.flows);
    // tshark (two passes) opens the records after the block, not the ones before it, which
    // tattle's analysis above held and opened: the same requests but the first.
    let after_block: Vec<_> = expected
        .iter()
        .filter(|r| r.1 > first_request)
        .cloned()
        .collect();
    assert_eq!(requests(&late, &["-2"]), after_block);
    assert!(
        from_late
            .findings
            .iter()
            .any(|f| f.frame == first_request && f.location == "http.url")
    );

    // Requests 2 and 3 of the echo connection deleted: two whole records lost.
    let echo_frames: Vec<u64> = expected.iter().filter(|r| r.0 == 6).map(|r| r.1).collect();
    assert_eq!(echo_frames.len(), 5);
    let cut = d.join("cut.pcap");
    let status = Command::new("editcap")
        .arg(&cap)
        .arg(&cut)
        .arg(echo_frames[1].to_string())
        .arg(echo_frames[2].to_string())
        .status()
        .expect("editcap");
    assert!(status.success());
    let lossy = analyse(&cut, &key_text);
    let flow = &lossy.flows[6];
    assert_eq!(flow.tls.unwrap().decryption, Decryption::Partial);
    let mut ours: Vec<(&str, u64)> = lossy
        .findings
        .iter()
        .filter(|f| f.flow == flow.first_frame)
        .map(|f| (f.location.as_str(), f.frame))
        .collect();
    ours.sort();
    // Two frames before them are gone: tshark's frames in the whole capture, less two.
    assert_eq!(
        ours,
        vec![
            ("http.header:X-Device", echo_frames[4] - 2),
            ("http.url", echo_frames[3] - 2)
        ]
    );
    // The other flows are untouched.
    for (i, f) in lossy.flows.iter().enumerate().take(6) {
        assert_eq!(f.tls.unwrap().decryption, Decryption::Decrypted, "flow {i}");
    }
}

/// The pcap `file` rewritten as pcapng (Ethernet), with `key_log` in a Decryption Secrets Block
/// right after frame `after`.
fn with_secrets_after(file: &Path, after: u64, key_log: &[u8]) -> Vec<u8> {
    use tattle_analysis::testgen::tls::PcapngWriter;
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes(), "tcpdump's pcap");
    assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1);
    let mut out = PcapngWriter::new(Vec::new()).unwrap();
    let mut pos = 24;
    let mut frame = 0;
    while pos + 16 <= bytes.len() {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let (sec, usec, caplen) = (word(pos), word(pos + 4), word(pos + 8) as usize);
        let data = &bytes[pos + 16..pos + 16 + caplen];
        out.packet(u64::from(sec) * 1_000_000 + u64::from(usec), data)
            .unwrap();
        frame += 1;
        if frame == after {
            out.secrets(key_log).unwrap();
        }
        pos += 16 + caplen;
    }
    out.into_inner()
}

/// A key log whose every secret has its first hex digit flipped: the same connections, keys
/// that cannot open them.
pub(crate) fn flip_secrets(key_text: &[u8]) -> String {
    String::from_utf8_lossy(key_text)
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
            if f.len() == 3 {
                let first = if f[2].starts_with('0') { "1" } else { "0" };
                f[2] = format!("{first}{}", &f[2][1..]);
            }
            f.join(" ") + "\n"
        })
        .collect()
}
