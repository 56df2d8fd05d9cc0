//! The analysis engine against real captures: real sockets on a private 127.x network, captured by
//! the real tcpdump (on `lo`: Ethernet; on `any`: Linux cooked v2), checked against tshark on the
//! same file. Needs tcpdump + tshark on PATH, and no root: each capture test runs again in a user +
//! network namespace of its own (`unshare`, util-linux), where the host's tcpdump may capture.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::support;
use base64::Engine as _;
use md5::Digest as _;
use tattle_analysis::identifier::Identifier;
use tattle_analysis::{Analysis, HostSource, Protocol, analyze_file};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};

const IMEI: &str = "356938035643809";
const PHONE: &str = "+6598765432";
const API: &str = "api.vendor.test";
const SECURE: &str = "secure.vendor.test";

fn identifiers() -> Vec<Identifier> {
    vec![
        Identifier::new("imei", IMEI),
        Identifier::new("phone_number", PHONE),
    ]
}

/// tcpdump writing `file`, filtered to one private /24 of 127/8 (also used by `http2_peers` and
/// `analysis_tls`).
pub(crate) struct Tcpdump {
    child: Child,
}

impl Tcpdump {
    pub(crate) fn start(iface: &str, net: &str, file: &Path) -> Tcpdump {
        let mut child = Command::new("tcpdump")
            // In immediate mode each ring slot is snaplen-sized: the default 2 MiB buffer holds only
            // 8 packets of 256 KiB and a loopback burst overflows it ("dropped by kernel").
            .args([
                "-i",
                iface,
                "-U",
                "--immediate-mode",
                "-B",
                "65536",
                "-Z",
                "root",
                "-w",
            ])
            .arg(file)
            .args(["net", net])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump must be installed (apt install tcpdump)");
        // tcpdump says "listening on …" once the filter is installed: only then is nothing missed.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("tcpdump did not start listening");
        Tcpdump { child }
    }

    pub(crate) fn stop(mut self) {
        // Let the last packets through the kernel buffer before the interrupt.
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: signalling our own child process by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn ip(net: [u8; 3], last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], last))
}

async fn client_socket(net: [u8; 3]) -> TcpSocket {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(SocketAddr::new(ip(net, 2), 0)).expect("bind client");
    s
}

/// A UDP resolver answering every A question with the server address.
async fn resolver(net: [u8; 3]) -> tokio::task::JoinHandle<()> {
    let sock = UdpSocket::bind(SocketAddr::new(ip(net, 1), 53))
        .await
        .expect("bind :53");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            let Ok(q) = simple_dns::Packet::parse(&buf[..n]) else {
                continue;
            };
            let mut reply = simple_dns::Packet::new_reply(q.id());
            for question in &q.questions {
                reply.questions.push(question.clone());
                reply.answers.push(simple_dns::ResourceRecord::new(
                    question.qname.clone(),
                    simple_dns::CLASS::IN,
                    60,
                    simple_dns::rdata::RData::A(simple_dns::rdata::A {
                        address: u32::from(Ipv4Addr::new(net[0], net[1], net[2], 1)),
                    }),
                ));
            }
            if let Ok(bytes) = reply.build_bytes_vec() {
                let _ = sock.send_to(&bytes, peer).await;
            }
        }
    })
}

async fn dns_query(net: [u8; 3], name: &str, id: u16) {
    let sock = UdpSocket::bind(SocketAddr::new(ip(net, 2), 0))
        .await
        .expect("bind");
    let mut q = simple_dns::Packet::new_query(id);
    q.questions.push(simple_dns::Question::new(
        simple_dns::Name::new_unchecked(name),
        simple_dns::QTYPE::TYPE(simple_dns::TYPE::A),
        simple_dns::QCLASS::CLASS(simple_dns::CLASS::IN),
        false,
    ));
    sock.send_to(
        &q.build_bytes_vec().expect("query"),
        SocketAddr::new(ip(net, 1), 53),
    )
    .await
    .expect("send");
    let mut buf = [0u8; 2048];
    tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("dns answer")
        .expect("recv");
}

/// A sink that reads each connection to its end.
async fn sink(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let l = TcpListener::bind(addr).await.expect("bind sink");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    })
}

/// HTTP writes over one connection; each element is one `write` (with a pause between, so the
/// kernel sends separate segments).
async fn http(net: [u8; 3], writes: &[Vec<u8>]) {
    let s = client_socket(net).await;
    let mut c = s
        .connect(SocketAddr::new(ip(net, 1), 80))
        .await
        .expect("connect :80");
    c.set_nodelay(true).expect("nodelay");
    for (i, w) in writes.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        c.write_all(w).await.expect("write");
        c.flush().await.expect("flush");
    }
    c.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut rest)).await;
}

async fn tls(net: [u8; 3]) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ck = rcgen::generate_simple_self_signed(vec![SECURE.to_string()]).expect("cert");
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let l = TcpListener::bind(SocketAddr::new(ip(net, 1), 443))
        .await
        .expect("bind :443");
    let srv = tokio::spawn(async move {
        let (s, _) = l.accept().await.expect("accept");
        let mut t = acceptor.accept(s).await.expect("tls accept");
        let mut buf = Vec::new();
        let _ = t.read_to_end(&mut buf).await;
        buf
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let mut client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let s = client_socket(net).await;
    let tcp = s
        .connect(SocketAddr::new(ip(net, 1), 443))
        .await
        .expect("connect :443");
    let name = rustls::pki_types::ServerName::try_from(SECURE).expect("name");
    let mut t = connector.connect(name, tcp).await.expect("tls connect");
    // Inside TLS the IMEI is invisible: it must not become a finding.
    t.write_all(format!("imei={IMEI}").as_bytes())
        .await
        .expect("write");
    t.shutdown().await.expect("close");
    let got = srv.await.expect("server");
    assert_eq!(got, format!("imei={IMEI}").as_bytes());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// One row per frame from tshark.
#[derive(Debug, Default, Clone)]
struct Row {
    tcp_stream: Option<u64>,
    dns: Vec<String>,
    sni: Vec<String>,
    http_host: Vec<String>,
}

fn tshark(file: &Path) -> BTreeMap<u64, Row> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=\t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ])
        .args([
            "-e",
            "frame.number",
            "-e",
            "tcp.stream",
            "-e",
            "dns.qry.name",
        ])
        .args([
            "-e",
            "tls.handshake.extensions_server_name",
            "-e",
            "http.host",
        ])
        .output()
        .expect("tshark must be installed (apt install tshark)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut rows = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 {
            continue;
        }
        let frame: u64 = f[0].parse().expect("frame number");
        rows.insert(
            frame,
            Row {
                tcp_stream: f[1].parse().ok(),
                dns: list(f[2]),
                sni: list(f[3]),
                http_host: list(f[4]).iter().map(|h| strip_port(h)).collect(),
            },
        );
    }
    rows
}

fn strip_port(h: &str) -> String {
    match h.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_string(),
        _ => h.to_string(),
    }
}

/// What tattle reports agrees with tshark: names, SNI, HTTP hosts, frame count, and every finding's
/// frame is one tshark shows in a stream carrying that finding's host.
fn agree(a: &Analysis, rows: &BTreeMap<u64, Row>) {
    assert_eq!(a.frames, rows.len() as u64, "frame count");
    assert!(a.damage.is_empty(), "{:?}", a.damage);
    let tshark_dns: BTreeSet<String> = rows.values().flat_map(|r| r.dns.clone()).collect();
    let tattle_dns: BTreeSet<String> = a.dns_queries.iter().map(|q| q.name.clone()).collect();
    assert_eq!(tattle_dns, tshark_dns, "DNS names");
    for q in &a.dns_queries {
        assert!(
            rows[&q.frame].dns.contains(&q.name),
            "query frame {}",
            q.frame
        );
    }
    let set = |src: HostSource| -> BTreeSet<String> {
        a.flows
            .iter()
            .filter(|f| f.host_source == src)
            .map(|f| f.host.clone())
            .collect()
    };
    let tshark_sni: BTreeSet<String> = rows.values().flat_map(|r| r.sni.clone()).collect();
    assert_eq!(set(HostSource::Sni), tshark_sni, "SNI");
    let tshark_http: BTreeSet<String> = rows.values().flat_map(|r| r.http_host.clone()).collect();
    assert_eq!(set(HostSource::Http), tshark_http, "HTTP hosts");
    // Streams tshark attributes to each HTTP host / SNI.
    let mut streams: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for r in rows.values() {
        if let Some(s) = r.tcp_stream {
            for h in r.http_host.iter().chain(&r.sni) {
                streams.entry(h.clone()).or_default().insert(s);
            }
        }
    }
    for f in &a.findings {
        let row = rows
            .get(&f.frame)
            .unwrap_or_else(|| panic!("finding frame {} unknown to tshark", f.frame));
        match f.protocol {
            Protocol::Dns => assert!(!row.dns.is_empty(), "{f:?}"),
            Protocol::Http | Protocol::Tls => {
                let s = row.tcp_stream.expect("tcp frame");
                assert!(
                    streams.get(&f.host).is_some_and(|set| set.contains(&s)),
                    "finding {} {} at frame {} is not in a stream tshark gives host {}",
                    f.identifier,
                    f.encoding,
                    f.frame,
                    f.host
                );
            }
            _ => {}
        }
    }
}

fn finding_set(a: &Analysis) -> BTreeSet<String> {
    a.findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {}",
                f.identifier,
                f.encoding,
                f.protocol.as_str(),
                f.location,
                f.host
            )
        })
        .collect()
}

fn capture_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn lo_capture_agrees_with_tshark() {
    support::rerun_unprivileged(
        "analysis_tshark::lo_capture_agrees_with_tshark_inside",
        support::OWN_NETWORK,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by lo_capture_agrees_with_tshark in a namespace of its own"]
async fn lo_capture_agrees_with_tshark_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    let net = [127, 88, 41];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = capture_file(&dir, "lo.pcap");
    let dump = Tcpdump::start("lo", "127.88.41.0/24", &file);
    let dns = resolver(net).await;
    let http_sink = sink(SocketAddr::new(ip(net, 1), 80)).await;

    // The IMEI query goes first: once `API` is answered, the resolver's own address is named by it.
    dns_query(net, &format!("{IMEI}.id.vendor.test"), 2).await;
    dns_query(net, API, 1).await;
    tls(net).await;

    let md5 = hex::encode(md5::Md5::digest(IMEI.as_bytes()));
    let form = format!("imei={IMEI}&msisdn=%2B6598765432&h={md5}");
    let b64_phone = base64::engine::general_purpose::STANDARD.encode(PHONE);
    let post = format!(
        "POST /activate HTTP/1.1\r\nHost: {API}\r\nX-Msisdn: {b64_phone}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let gz = gzip(format!("{{\"imei\":\"{IMEI}\"}}").as_bytes());
    let mut gz_post = format!(
        "POST /gz HTTP/1.1\r\nHost: {API}\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    gz_post.extend_from_slice(&gz);
    let chunked = format!(
        "POST /chunked HTTP/1.1\r\nHost: {API}\r\nTransfer-Encoding: chunked\r\n\r\n\
         7\r\nsms_to=\r\nb\r\n{PHONE}\r\n0\r\n\r\n"
    );
    http(net, &[post.into_bytes(), gz_post]).await;
    http(net, &[chunked.into_bytes()]).await;
    // The IMEI split over two segments: the finding is the second segment's frame.
    let split_head = format!("GET /ping?d={}", &IMEI[..6]);
    let split_tail = format!(
        "{}&x=1 HTTP/1.1\r\nHost: split.vendor.test\r\n\r\n",
        &IMEI[6..]
    );
    http(net, &[split_head.into_bytes(), split_tail.into_bytes()]).await;

    dump.stop();
    dns.abort();
    http_sink.abort();

    let a = analyze_file(&file, &identifiers()).expect("analysis");
    let rows = tshark(&file);
    agree(&a, &rows);
    every_prefix(&file, &identifiers());

    let got = finding_set(&a);
    let want: BTreeSet<String> = [
        // About the name asked, not the resolver it was asked of.
        "imei plain dns dns.qname 356938035643809.id.vendor.test".to_string(),
        format!("imei plain http http.body {API}"),
        format!("imei md5 http http.body {API}"),
        format!("phone_number url http http.body {API}"),
        format!("phone_number base64 http http.header:X-Msisdn {API}"),
        format!("imei gzip http http.body {API}"),
        format!("phone_number plain http http.body {API}"),
        "imei plain http http.url split.vendor.test".to_string(),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);

    // The TLS flow: named by SNI, encrypted bytes opaque, ALPN read, the IMEI inside not found.
    let t = a
        .flows
        .iter()
        .find(|f| f.protocol == Protocol::Tls)
        .expect("tls flow");
    assert_eq!((t.host.as_str(), t.host_source), (SECURE, HostSource::Sni));
    assert_eq!(t.alpn, vec!["http/1.1"]);
    assert!(t.opaque_bytes > 0);
    // The split IMEI completes in the frame of the second write, the one tshark reassembles on.
    let split = a
        .findings
        .iter()
        .find(|f| f.host == "split.vendor.test")
        .expect("split");
    let host_frames: Vec<u64> = rows
        .iter()
        .filter(|(_, r)| r.http_host.iter().any(|h| h == "split.vendor.test"))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(host_frames, vec![split.frame]);
    let first_data = rows
        .iter()
        .filter(|(n, r)| r.tcp_stream == rows[&split.frame].tcp_stream && **n < split.frame)
        .count();
    assert!(
        first_data >= 4,
        "handshake and first write precede the completing frame"
    );
    // Flows are sorted and the DNS flows are named by IP.
    let firsts: Vec<u64> = a.flows.iter().map(|f| f.first_frame).collect();
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        a.flows
            .iter()
            .any(|f| f.protocol == Protocol::Dns && f.host_source == HostSource::Ip)
    );
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn any_capture_is_sll2_and_agrees_with_tshark() {
    support::rerun_unprivileged(
        "analysis_tshark::any_capture_is_sll2_and_agrees_with_tshark_inside",
        support::OWN_NETWORK,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by any_capture_is_sll2_and_agrees_with_tshark in a namespace of its own"]
async fn any_capture_is_sll2_and_agrees_with_tshark_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    let net = [127, 88, 42];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = capture_file(&dir, "any.pcap");
    let dump = Tcpdump::start("any", "127.88.42.0/24", &file);
    let dns = resolver(net).await;
    let http_sink = sink(SocketAddr::new(ip(net, 1), 80)).await;
    let raw_sink = sink(SocketAddr::new(ip(net, 1), 7000)).await;

    dns_query(net, API, 7).await;
    let q = format!("imei={}", urlencode(IMEI));
    http(
        net,
        &[format!("GET /v?{q}&p=%2b6598765432 HTTP/1.1\r\nHost: {API}:80\r\n\r\n").into_bytes()],
    )
    .await;
    // A raw TCP flow to a port nothing dissects, named through the DNS answer.
    let s = client_socket(net).await;
    let mut c = s
        .connect(SocketAddr::new(ip(net, 1), 7000))
        .await
        .expect("connect");
    c.write_all(hex::encode(IMEI).as_bytes())
        .await
        .expect("write");
    c.shutdown().await.expect("shutdown");
    drop(c);

    dump.stop();
    dns.abort();
    http_sink.abort();
    raw_sink.abort();

    let bytes = std::fs::read(&file).expect("capture");
    assert_eq!(
        u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
        276,
        "SLL2"
    );
    let a = analyze_file(&file, &identifiers()).expect("analysis");
    let rows = tshark(&file);
    agree(&a, &rows);
    every_prefix(&file, &identifiers());
    let got = finding_set(&a);
    let want: BTreeSet<String> = [
        format!("imei plain http http.url {API}"),
        format!("phone_number url http http.url {API}"),
        format!("imei hex tcp tcp.payload {API}"),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    let raw = a
        .flows
        .iter()
        .find(|f| f.server.1 == 7000)
        .expect("raw flow");
    assert_eq!(raw.host_source, HostSource::Dns);
}

/// Cuts a pcap at every record boundary, in every record header and mid-record: the analysis of
/// each prefix never panics, never errors past the file header, and never sees more than the whole.
fn every_prefix(file: &Path, ids: &[Identifier]) {
    let bytes = std::fs::read(file).expect("capture");
    let full = tattle_analysis::analyze_reader(&bytes[..], ids).expect("full");
    let mut cuts = vec![0, 10, 24];
    let mut pos = 24usize;
    while pos + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        cuts.extend([pos + 7, pos + 16 + caplen / 2, pos + 16 + caplen]);
        pos += 16 + caplen;
    }
    for cut in cuts.into_iter().filter(|&c| c <= bytes.len()) {
        match tattle_analysis::analyze_reader(&bytes[..cut], ids) {
            Ok(a) => {
                assert!(a.frames <= full.frames, "cut {cut}");
                assert!(a.findings.len() <= full.findings.len() + 2, "cut {cut}");
            }
            Err(_) => assert!(cut < 24, "cut {cut}: error past the header"),
        }
    }
}

/// A real QUIC v1 Initial: rustls' QUIC client writes the ClientHello (with QUIC transport
/// parameters), `seal_client_initial` protects it as RFC 9001 says, a real UDP socket sends it.
async fn quic_initial(net: [u8; 3], sni: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cfg = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h3".to_vec()];
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).expect("name");
    let mut conn = rustls::quic::ClientConnection::new(
        Arc::new(cfg),
        rustls::quic::Version::V1,
        name,
        vec![0x01, 0x02, 0x67, 0x10], // max_idle_timeout = 10000
    )
    .expect("quic client");
    let mut hello = Vec::new();
    conn.write_hs(&mut hello);
    assert_eq!(hello[0], 1, "ClientHello");
    let pkt = tattle_analysis::testgen::seal_client_initial(
        &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08],
        &[0xaa, 0xbb],
        0,
        0,
        &hello,
        1200,
    );
    let sock = UdpSocket::bind(SocketAddr::new(ip(net, 2), 0))
        .await
        .expect("bind");
    sock.send_to(&pkt, SocketAddr::new(ip(net, 1), 443))
        .await
        .expect("send");
}

fn brotli(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
    w.write_all(data).expect("brotli");
    w.into_inner()
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn every_encoding_brotli_quic_and_dns_names_agree_with_tshark() {
    support::rerun_unprivileged(
        "analysis_tshark::every_encoding_brotli_quic_and_dns_names_agree_with_tshark_inside",
        support::OWN_NETWORK,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by every_encoding_brotli_quic_and_dns_names_agree_with_tshark in a namespace of its own"]
async fn every_encoding_brotli_quic_and_dns_names_agree_with_tshark_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    use base64::engine::general_purpose::STANDARD;
    let net = [127, 88, 43];
    let ids = vec![
        Identifier::new("imei", IMEI),
        Identifier::new("phone_number", PHONE),
        Identifier::new("contact_name", "Zoë Tan"),
        Identifier::new("wifi_mac", "02:1a:2b:3c:4d:5e"),
        Identifier::new("email", "wei.ling@example.org"),
        Identifier::new("advertising_id", "38400000-8cf0-11bd-b23e-10b96e40000d"),
        Identifier::new("android_id", "9774d56d682e549c"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = capture_file(&dir, "enc.pcap");
    let dump = Tcpdump::start("lo", "127.88.43.0/24", &file);
    let dns = resolver(net).await;
    let http_sink = sink(SocketAddr::new(ip(net, 1), 80)).await;

    let md5 = hex::encode(md5::Md5::digest(IMEI.as_bytes()));
    dns_query(net, &format!("9774d56d682e549c.{md5}.m.vendor.test"), 3).await;
    quic_initial(net, "quic.vendor.test").await;

    let ad_sha = STANDARD.encode(sha2::Sha256::digest(
        b"38400000-8cf0-11bd-b23e-10b96e40000d",
    ));
    let blob = STANDARD.encode(br#"{"aid":"9774d56d682e549c","v":1}"#);
    let cookie = urlencode(&STANDARD.encode(format!("imei={IMEI}")));
    assert!(cookie.contains("%3D"), "{cookie}");
    let get = format!(
        "GET /c?i={}&e=wei.ling%40example.org&m=021a2b3c4d5e HTTP/1.1\r\nHost: {API}\r\n\
         X-Ad: {ad_sha}\r\nX-Blob: {blob}\r\nCookie: t={cookie}\r\n\r\n",
        &IMEI[..14]
    );
    let json = r#"{"name":"Zo\u00eb Tan","tel":"9876 5432","mac":"02-1A-2B-3C-4D-5E"}"#;
    let post = format!(
        "POST /j HTTP/1.1\r\nHost: {API}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{json}",
        json.len()
    );
    let sha1 = hex::encode_upper(sha1::Sha1::digest(b"wei.ling@example.org"));
    let br = brotli(format!("imei={IMEI}&s={sha1}").as_bytes());
    let mut br_post = format!(
        "POST /br HTTP/1.1\r\nHost: {API}\r\nContent-Encoding: br\r\nContent-Length: {}\r\n\r\n",
        br.len()
    )
    .into_bytes();
    br_post.extend_from_slice(&br);
    let gz = gzip(format!("d={}", STANDARD.encode(PHONE)).as_bytes());
    let mut gz_post = format!(
        "POST /gz HTTP/1.1\r\nHost: {API}\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    gz_post.extend_from_slice(&gz);
    http(
        net,
        &[get.into_bytes(), post.into_bytes(), br_post, gz_post],
    )
    .await;

    dump.stop();
    dns.abort();
    http_sink.abort();

    let a = analyze_file(&file, &ids).expect("analysis");
    let rows = tshark(&file);
    agree(&a, &rows);
    every_prefix(&file, &ids);
    let q = a
        .flows
        .iter()
        .find(|f| f.protocol == Protocol::Quic)
        .expect("quic flow");
    assert_eq!(
        (q.host.as_str(), q.host_source),
        ("quic.vendor.test", HostSource::Sni)
    );
    assert_eq!(q.alpn, vec!["h3"]);
    let got = finding_set(&a);
    let want: BTreeSet<String> = [
        "imei md5 dns dns.qname 9774d56d682e549c.af2d48f2495881aed1737bb21017f9b6.m.vendor.test"
            .to_string(),
        "android_id plain dns dns.qname 9774d56d682e549c.af2d48f2495881aed1737bb21017f9b6.m.vendor.test"
            .to_string(),
        format!("imei plain http http.url {API}"),
        format!("email url http http.url {API}"),
        format!("wifi_mac plain http http.url {API}"),
        format!("advertising_id sha256+base64 http http.header:X-Ad {API}"),
        format!("android_id base64 http http.header:X-Blob {API}"),
        format!("imei base64+url http http.header:Cookie {API}"),
        format!("contact_name json http http.body {API}"),
        format!("phone_number plain http http.body {API}"),
        format!("wifi_mac plain http http.body {API}"),
        format!("imei brotli http http.body {API}"),
        format!("email sha1+brotli http http.body {API}"),
        format!("phone_number base64+gzip http http.body {API}"),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[test]
fn damaged_capture_from_a_real_file_is_analysed_up_to_the_damage() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/tattle-analysis/tests/data/http-imei.pcap");
    let bytes = std::fs::read(&file).expect("fixture");
    let full = analyze_file(&file, &identifiers()).expect("fixture analysis");
    assert!(!full.findings.is_empty());
    assert!(full.damage.is_empty());
    let cut = &bytes[..bytes.len() - 7];
    let a = tattle_analysis::analyze_reader(cut, &identifiers()).expect("cut analysis");
    assert_eq!(a.frames, full.frames - 1);
    assert_eq!(a.damage.len(), 1);
    assert_eq!(a.damage[0].after_frame, full.frames - 1);
    let mut garbage = bytes.clone();
    garbage.extend_from_slice(&[0xff; 40]);
    let g = tattle_analysis::analyze_reader(&garbage[..], &identifiers()).expect("garbage");
    assert_eq!(g.frames, full.frames);
    assert_eq!(g.findings, full.findings);
    assert_eq!(g.damage.len(), 1, "{:?}", g.damage);
}
