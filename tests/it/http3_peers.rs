//! HTTP/3 from real peers: ngtcp2's example client and server (Debian's `gtlsclient` from
//! ngtcp2-client, `gtlsserver` from ngtcp2-server) exchanging three POSTs, captured by the real
//! tcpdump on `lo` in a user + network namespace of its own (no root). tshark decrypts the
//! client's QUIC packets with the client's key log and gives each STREAM frame's bytes; those
//! streams go to tattle's HTTP/3 reader (QPACK with the dynamic table ngtcp2 uses from the first
//! request) and its findings are checked against what gtlsclient was told to send, at frames
//! where tshark shows an HTTP/3 HEADERS (paths) or DATA (bodies) frame. Debian's tshark 4.0
//! decodes no QPACK, so header values are compared with the request, not with tshark. Needs
//! ngtcp2-client, ngtcp2-server, openssl, tcpdump and tshark (`.ci/run` installs them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::analysis_tshark::Tcpdump;
use crate::support;
use tattle_analysis::identifier::Identifier;

const IMEI: &str = "356938035643809";
const PHONE: &str = "+6598765432";
const ADDR: &str = "127.88.53.1";
const PORT: u16 = 4443;

/// A child killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every object with a `quic.stream.stream_id` in tshark's JSON, in document order.
fn stream_frames<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(o) => {
            if o.contains_key("quic.stream.stream_id") {
                out.push(v);
            }
            o.values().for_each(|x| stream_frames(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| stream_frames(x, out)),
        _ => {}
    }
}

fn text<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|x| x.as_str()).unwrap_or("")
}

/// Runs in a network namespace of its own, as a normal user: see [`support::OWN_NETWORK`].
#[test]
fn ngtcp2_requests_are_read_as_sent() {
    support::rerun_unprivileged(
        "http3_peers::ngtcp2_requests_are_read_as_sent_inside",
        support::OWN_NETWORK,
    );
}

#[test]
#[ignore = "run by ngtcp2_requests_are_read_as_sent in a namespace of its own"]
fn ngtcp2_requests_are_read_as_sent_inside() {
    if !support::in_unprivileged_child() {
        return;
    }
    support::loopback_up();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::analysis_tls::ec_certificate(d);
    std::fs::create_dir(d.join("www")).unwrap();
    std::fs::write(d.join("www/index.html"), "hi\n").unwrap();
    std::fs::write(d.join("body.txt"), format!("imei={IMEI}")).unwrap();
    let cap = d.join("h3.pcap");
    let keys = d.join("keys.log");
    let dump = Tcpdump::start("lo", "127.88.53.0/24", &cap);
    let _server = Peer(
        Command::new("gtlsserver")
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
    // UDP: nothing to connect to; the server binds at once.
    std::thread::sleep(Duration::from_millis(300));
    let base = format!("https://{ADDR}:{PORT}");
    let mut client = Peer(
        Command::new("gtlsclient")
            .args([
                "-q",
                "--exit-on-all-streams-close",
                "-n",
                "3",
                "-m",
                "POST",
                "-d",
            ])
            .arg(d.join("body.txt"))
            .args([ADDR, &PORT.to_string()])
            .arg(format!("{base}/index.html?imei={IMEI}"))
            .arg(format!("{base}/b?n=%2B6598765432"))
            .arg(format!("{base}/c?imei={IMEI}"))
            .env("SSLKEYLOGFILE", &keys)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gtlsclient must be installed (apt install ngtcp2-client)"),
    );
    let start = Instant::now();
    while client.0.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(client);
    dump.stop();

    // The client's STREAM frames as tshark decrypts them, in capture order.
    let pref = format!("tls.keylog_file:{}", keys.display());
    let f = cap.to_str().unwrap();
    let filter = format!("quic.stream_data && udp.dstport=={PORT}");
    let out = Command::new("tshark")
        .args(["-r", f, "-o", &pref, "-Y", &filter, "-T", "json"])
        .args(["--no-duplicate-keys", "-J", "frame quic"])
        .output()
        .expect("tshark is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tshark json");
    // (frame, stream, offset, fin, bytes), retransmitted bytes trimmed as a reassembler would.
    let mut deliveries = Vec::new();
    let mut frames = Vec::new();
    let mut next: HashMap<u64, u64> = HashMap::new();
    for p in packets.as_array().expect("packets") {
        let layers = &p["_source"]["layers"];
        let frame: u64 = text(&layers["frame"], "frame.number").parse().unwrap();
        let mut found = Vec::new();
        stream_frames(layers, &mut found);
        for s in found {
            let id: u64 = text(s, "quic.stream.stream_id").parse().unwrap();
            let off: u64 = text(s, "quic.stream.offset").parse().unwrap_or(0);
            let fin = text(&s["quic.frame_type_tree"], "quic.stream.fin") == "1";
            let data = hex::decode(text(s, "quic.stream_data").replace(':', "")).unwrap();
            let seen = next.entry(id).or_default();
            let skip = seen.saturating_sub(off).min(data.len() as u64) as usize;
            if skip == data.len() && (skip > 0 || !fin) {
                continue;
            }
            *seen = (*seen).max(off + data.len() as u64);
            deliveries.push((id, off + skip as u64, fin, data[skip..].to_vec()));
            frames.push(frame);
        }
    }
    assert!(
        deliveries.iter().any(|d| d.0 == 0) && deliveries.iter().any(|d| d.0 % 4 == 2),
        "tshark decrypted no request stream: {deliveries:?}"
    );

    let ids = [
        Identifier::new("imei", IMEI),
        Identifier::new("phone_number", PHONE),
    ];
    let got = tattle_analysis::testgen::http3_run_streams(&ids, &deliveries);
    assert_eq!(got.host.as_deref(), Some(ADDR));
    assert_eq!((got.requests, got.desync, got.opaque), (3, 0, 0));
    // The frames where tshark shows HTTP/3 HEADERS (1) and DATA (0) frames from the client.
    let filter = format!("http3 && udp.dstport=={PORT}");
    let mut kinds: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for row in support::tshark_rows(&[
        "-r",
        f,
        "-o",
        &pref,
        "-Y",
        &filter,
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "http3.frame_type",
    ]) {
        let set = kinds.entry(row[0].parse().unwrap()).or_default();
        set.extend(
            row.get(1)
                .into_iter()
                .flat_map(|t| t.split(',').map(String::from)),
        );
    }
    let mut found: Vec<String> = Vec::new();
    for (id, encoding, location, i) in &got.hits {
        let frame = frames[*i];
        let kind = if location == "http.body" { "0" } else { "1" };
        assert!(
            kinds.get(&frame).is_some_and(|k| k.contains(kind)),
            "{location} at frame {frame}, where tshark shows HTTP/3 frames {:?}",
            kinds.get(&frame)
        );
        if location == "http.body" {
            // The body is sent as is: tshark's bytes of that stream hold it.
            let data = &deliveries[*i].3;
            assert!(data.windows(IMEI.len()).any(|w| w == IMEI.as_bytes()));
        }
        found.push(format!("{}:{encoding}:{location}", ids[*id].kind));
    }
    found.sort();
    assert_eq!(
        found,
        vec![
            "imei:plain:http.body",
            "imei:plain:http.body",
            "imei:plain:http.body",
            "imei:plain:http.url",
            "imei:plain:http.url",
            "phone_number:url:http.url",
        ]
    );
}
