//! HTTP/2 with prior knowledge (h2c) from real peers: Debian's `nghttpd --no-tls` serving, `curl
//! --http2-prior-knowledge` and `nghttp` (nghttp2's client) asking, the real tcpdump capturing `lo`
//! in a user + network namespace of its own, and tattle's findings (paths, header values, bodies,
//! with their frames) compared with what tshark decodes from the same file (`http2.header.name`,
//! `http2.header.value`, `http2.data.data`). Needs nghttp2-server, nghttp2-client, curl, tcpdump
//! and tshark (`.ci/run` installs them).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::analysis_tshark::Tcpdump;
use crate::support;
use tattle_analysis::identifier::Identifier;
use tattle_analysis::{Analysis, HostSource, Protocol, analyze_file};

const IMEI: &str = "356938035643809";
const PHONE: &str = "+6598765432";
const PHONE_URL: &str = "%2B6598765432";
const SERVER: &str = "127.88.47.1";
const PORT: u16 = 8080;

fn identifiers() -> Vec<Identifier> {
    vec![
        Identifier::new("imei", IMEI),
        Identifier::new("phone_number", PHONE),
    ]
}

/// `nghttpd` serving `dir` without TLS; killed when dropped.
struct Nghttpd(Child);

impl Nghttpd {
    fn start(dir: &Path) -> Nghttpd {
        let child = Command::new("nghttpd")
            .args(["--no-tls", &format!("--address={SERVER}"), "-d"])
            .arg(dir)
            .arg(PORT.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nghttpd must be installed (apt install nghttp2-server)");
        let addr = SocketAddr::new(SERVER.parse().expect("ip"), PORT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nghttpd did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nghttpd(child)
    }
}

impl Drop for Nghttpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} must be installed (apt install curl nghttp2-client): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What tshark decodes in the client→server HTTP/2 frames: per frame, its TCP stream, the stream
/// ids of its frames, its (header name, value) pairs and its DATA (decompressed by tshark).
struct H2Row {
    tcp_stream: u64,
    stream_ids: BTreeSet<u64>,
    headers: Vec<(String, String)>,
    data: Vec<Vec<u8>>,
}

fn tshark_h2(file: &Path) -> BTreeMap<u64, H2Row> {
    // Header values hold commas ("gzip, deflate"): fields are joined with the unit separator.
    const SEP: char = '\u{1f}';
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-d", &format!("tcp.port=={PORT},http2")])
        .args(["-Y", &format!("http2 && tcp.dstport=={PORT}")])
        .args(["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"])
        .arg(format!("-Eaggregator={SEP}"))
        .args([
            "-e",
            "frame.number",
            "-e",
            "tcp.stream",
            "-e",
            "http2.streamid",
        ])
        .args(["-e", "http2.header.name", "-e", "http2.header.value"])
        .args(["-e", "http2.data.data"])
        .output()
        .expect("tshark must be installed (apt install tshark)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = |s: &str| -> Vec<String> {
        s.split(SEP)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut rows = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "tshark line {line:?}");
        let (names, values) = (list(f[3]), list(f[4]));
        assert_eq!(
            names.len(),
            values.len(),
            "one value per header name: {line:?}"
        );
        rows.insert(
            f[0].parse().expect("frame number"),
            H2Row {
                tcp_stream: f[1].parse().expect("tcp stream"),
                stream_ids: list(f[2]).iter().map(|s| s.parse().expect("id")).collect(),
                headers: names.into_iter().zip(values).collect(),
                data: list(f[5])
                    .iter()
                    .map(|h| hex::decode(h.replace(':', "")).expect("hex data"))
                    .collect(),
            },
        );
    }
    rows
}

/// (TCP stream, identifier kind, location) → the first frame it is in, as tshark decodes it.
fn tshark_findings(rows: &BTreeMap<u64, H2Row>) -> BTreeMap<(u64, String, String), u64> {
    let needles = [
        ("imei", vec![IMEI]),
        ("phone_number", vec![PHONE, PHONE_URL]),
    ];
    let mut found = BTreeMap::new();
    for (frame, row) in rows {
        let mut places: Vec<(String, &[u8])> = Vec::new();
        for (name, value) in &row.headers {
            let location = match name.as_str() {
                ":path" => "http.url".to_string(),
                _ => format!("http.header:{name}"),
            };
            places.push((location, value.as_bytes()));
        }
        for data in &row.data {
            places.push(("http.body".to_string(), data));
        }
        for (location, hay) in places {
            for (kind, forms) in &needles {
                if forms
                    .iter()
                    .any(|n| hay.windows(n.len()).any(|w| w == n.as_bytes()))
                {
                    found
                        .entry((row.tcp_stream, kind.to_string(), location.clone()))
                        .or_insert(*frame);
                }
            }
        }
    }
    found
}

/// The same from tattle's analysis, its flows named by tshark's TCP stream of their frames.
fn tattle_findings(
    a: &Analysis,
    rows: &BTreeMap<u64, H2Row>,
) -> BTreeMap<(u64, String, String), u64> {
    let mut found = BTreeMap::new();
    for f in &a.findings {
        let row = rows
            .get(&f.frame)
            .unwrap_or_else(|| panic!("finding {f:?} in a frame tshark shows no HTTP/2 in"));
        let key = (row.tcp_stream, f.identifier.clone(), f.location.clone());
        let first = found.entry(key).or_insert(f.frame);
        *first = (*first).min(f.frame);
    }
    found
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn h2c_from_curl_and_nghttp_agrees_with_tshark() {
    support::rerun_unprivileged(
        "http2_peers::h2c_from_curl_and_nghttp_agrees_with_tshark_inside",
        support::OWN_NETWORK,
    );
}

#[test]
#[ignore = "run by h2c_from_curl_and_nghttp_agrees_with_tshark in a namespace of its own"]
fn h2c_from_curl_and_nghttp_agrees_with_tshark_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    let dir = tempfile::tempdir().expect("tempdir");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).expect("www");
    std::fs::write(www.join("index.html"), "ok\n").expect("index");
    let gz = {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(format!("{{\"imei\":\"{IMEI}\"}}").as_bytes())
            .expect("gzip");
        e.finish().expect("gzip")
    };
    let gz_file = dir.path().join("body.gz");
    std::fs::write(&gz_file, &gz).expect("body.gz");
    let form = dir.path().join("form.txt");
    std::fs::write(&form, format!("msisdn={PHONE_URL}&n=2")).expect("form");
    let file = dir.path().join("h2c.pcap");

    let server = Nghttpd::start(&www);
    let dump = Tcpdump::start("lo", "127.88.47.0/24", &file);
    let url = |q: &str| format!("http://{SERVER}:{PORT}/index.html{q}");
    let curl = |extra: &[&str], target: &str| {
        let mut args = vec!["-sS", "--http2-prior-knowledge", "-o", "/dev/null"];
        args.extend_from_slice(extra);
        args.push(target);
        client("curl", &args);
    };
    // A GET with the IMEI in the path and two headers (nghttp2's encoder: Huffman, dynamic table).
    let device = format!("X-Device: {IMEI}");
    let cookie = format!("Cookie: uid={IMEI}");
    curl(
        &["-H", &device, "-H", &cookie],
        &url(&format!("?imei={IMEI}")),
    );
    // A form POST body.
    let body = format!("imei={IMEI}&phone={PHONE_URL}");
    curl(&["--data-binary", &body], &url(""));
    // A gzip body.
    let gz_arg = format!("@{}", gz_file.display());
    curl(
        &["-H", "Content-Encoding: gzip", "--data-binary", &gz_arg],
        &url(""),
    );
    // Two concurrent streams on one connection, each with a body. curl 7.88 cannot do it over h2c
    // (reusing a prior-knowledge connection fails with "Error in the HTTP2 framing layer"); nghttp
    // sends both requests at once.
    let msisdn = format!("x-msisdn: {PHONE}");
    let form_arg = form.display().to_string();
    client(
        "nghttp",
        &[
            "-H",
            &msisdn,
            "-d",
            &form_arg,
            &url(&format!("?a={IMEI}")),
            &url(&format!("?b={IMEI}")),
        ],
    );
    dump.stop();
    drop(server);

    let a = analyze_file(&file, &identifiers()).expect("analysis");
    let rows = tshark_h2(&file);
    assert!(a.damage.is_empty(), "{:?}", a.damage);

    // Every connection is read as HTTP, named by its :authority.
    let flows: Vec<_> = a
        .flows
        .iter()
        .filter(|f| f.protocol != Protocol::Dns)
        .collect();
    assert_eq!(flows.len(), 4, "{flows:?}");
    for f in &flows {
        assert_eq!(f.protocol, Protocol::Http, "{f:?}");
        assert_eq!((f.host.as_str(), f.host_source), (SERVER, HostSource::Http));
    }
    // nghttp's connection carried two request streams with DATA at once.
    let concurrent = rows
        .values()
        .filter(|r| !r.data.is_empty())
        .map(|r| (r.tcp_stream, r.stream_ids.len()))
        .any(|(_, ids)| ids >= 2);
    assert!(concurrent, "no frame with DATA of two streams");

    // Paths, header values and bodies agree with tshark, frame for frame.
    let want = tshark_findings(&rows);
    let got = tattle_findings(&a, &rows);
    assert_eq!(got, want);
    // And they are the places the identifiers were planted, in the encodings they were sent in.
    let kinds: BTreeSet<String> = a
        .findings
        .iter()
        .map(|f| format!("{} {} {}", f.identifier, f.encoding, f.location))
        .collect();
    let planted: BTreeSet<String> = [
        "imei plain http.url",
        "imei plain http.header:x-device",
        "imei plain http.header:cookie",
        "imei plain http.body",
        "phone_number url http.body",
        "imei gzip http.body",
        "phone_number plain http.header:x-msisdn",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(kinds, planted);
}
