//! Analysis: capture bytes in, hosts and findings out.
//!
//! Pure: reads a pcap/pcapng (file or any `Read`), decodes packets, groups them into flows, parses DNS,
//! TLS ClientHello and HTTP/1.x, and looks for identifiers in every encoding it knows. It knows nothing
//! of scenarios, steps, devices or snapshots — timestamps and frame numbers let `outcome` place results
//! in steps — so it works as a library on captures taken by anything (PCAPdroid, a router, tcpdump).
//!
//! Must not touch: the device, the terminal, the file system (besides reading the capture).

pub mod dns;
pub mod flows;
pub mod http;
pub mod identifier;
pub mod matcher;
pub mod packet;
pub mod quic;
pub mod reader;
pub mod tls;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::identifier::Identifier;

/// How a flow's host name was learnt, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostSource {
    /// TLS ClientHello server_name (or QUIC Initial).
    Sni,
    /// HTTP `Host` header.
    Http,
    /// A DNS answer seen earlier in the capture mapped the server address to this name.
    Dns,
    /// No name known: the server's IP address.
    Ip,
}

/// Application protocol of a flow or finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Dns,
    Http,
    Tls,
    Quic,
    Ntp,
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Dns => "dns",
            Protocol::Http => "http",
            Protocol::Tls => "tls",
            Protocol::Quic => "quic",
            Protocol::Ntp => "ntp",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Capture timestamp in seconds since the Unix epoch (the capturing machine's clock).
pub type Timestamp = f64;

/// One TCP connection or UDP conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// `tcp` or `udp`.
    pub transport: &'static str,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// Best name known for the server; the IP as text if none.
    pub host: String,
    pub host_source: HostSource,
    pub protocol: Protocol,
    /// Wireshark frame number (1-based) of the flow's first packet.
    pub first_frame: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Payload bytes client → server and server → client.
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Payload bytes that could not be inspected (TLS application data, undecodable payload).
    pub opaque_bytes: u64,
    /// TCP bytes never seen (lost in capture): the stream was searched on both sides of the hole.
    pub gap_bytes: u64,
    /// ALPN protocols offered in the TLS ClientHello, in order.
    pub alpn: Vec<String>,
}

/// A DNS question seen in the capture.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsQuery {
    pub name: String,
    pub frame: u64,
    pub ts: Timestamp,
}

/// An identifier found in traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The identifier's kind (`imei`), never its value.
    pub identifier: String,
    /// Transformations between the identifier and the wire, innermost first, joined by `+`:
    /// `plain`, `url`, `md5`, `md5+base64`, `gzip`…
    pub encoding: String,
    pub host: String,
    pub host_source: HostSource,
    pub protocol: Protocol,
    /// Where in the message: `dns.qname`, `http.url`, `http.header:Cookie`, `http.body`, `tcp.payload`…
    pub location: String,
    /// Wireshark frame number (1-based) of the packet that completed the match.
    pub frame: u64,
    pub ts: Timestamp,
}

/// A place where the capture could not be read as it claims to be.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// Byte offset in the capture file, if known.
    pub offset: Option<u64>,
    /// Frame number after which the damage happened (0 = before the first frame).
    pub after_frame: u64,
    pub what: String,
}

/// Everything the analysis learnt from one capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// Frames read (Wireshark's numbering ends here).
    pub frames: u64,
    pub flows: Vec<Flow>,
    pub dns_queries: Vec<DnsQuery>,
    pub findings: Vec<Finding>,
    pub damage: Vec<Damage>,
}

/// Errors that stop an analysis before it starts. Damage inside a capture is not an error: it is
/// reported in `Analysis::damage` and everything before it is analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("cannot read capture {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("not a pcap or pcapng capture (first bytes {magic})")]
    NotACapture { magic: String },
}

/// Analyses a capture file. (Mapping the file instead was measured slower: page faults in this
/// VM cost more than the copy `read` makes from the page cache.)
pub fn analyze_file(
    path: &std::path::Path,
    identifiers: &[Identifier],
) -> Result<Analysis, AnalysisError> {
    let file = std::fs::File::open(path).map_err(|source| AnalysisError::Open {
        path: path.display().to_string(),
        source,
    })?;
    analyze_reader(file, identifiers)
}

/// Analyses a capture from any reader (a file, a pipe). A read error part-way is damage, not an
/// error: what was read is analysed.
pub fn analyze_reader(
    mut reader: impl std::io::Read,
    identifiers: &[Identifier],
) -> Result<Analysis, AnalysisError> {
    let mut analyzer = Analyzer::new(identifiers);
    let mut total = 0u64;
    loop {
        // Read into the capture reader's own buffer: one copy from the kernel, none after.
        match analyzer.reader.fill_from(&mut reader, READ_CHUNK) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                analyzer.analyse_buffered()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if total == 0 {
                    return Err(AnalysisError::Open {
                        path: "(reader)".into(),
                        source: e,
                    });
                }
                analyzer.read_error(total, &e);
                break;
            }
        }
    }
    if total < 4 {
        return Err(AnalysisError::NotACapture {
            magic: hex::encode(&analyzer.head),
        });
    }
    Ok(analyzer.finish())
}

/// Bytes read from the capture at a time: large enough that system calls are rare, small enough
/// to stay in the CPU's cache while the records in it are analysed.
const READ_CHUNK: usize = 256 << 10;

/// Streaming analysis: `feed` capture bytes as they arrive (from a pipe, a live tcpdump), then
/// `finish`. Memory stays bounded whatever the capture size (see the limits in docs/analysis.md).
#[derive(Debug)]
pub struct Analyzer {
    reader: reader::CaptureReader,
    engine: flows::Engine,
    /// Undecodable records by reason: (count, first frame, its offset).
    undecoded: std::collections::BTreeMap<String, (u64, u64, u64)>,
    damage: Vec<Damage>,
    /// The first bytes, for the "not a capture" message.
    head: Vec<u8>,
}

impl Analyzer {
    pub fn new(identifiers: &[Identifier]) -> Self {
        Analyzer {
            reader: reader::CaptureReader::new(),
            engine: flows::Engine::new(matcher::Matcher::new(identifiers)),
            undecoded: Default::default(),
            damage: Vec::new(),
            head: Vec::new(),
        }
    }

    /// Analyses the next bytes of the capture. Fails only if the capture does not start like a
    /// pcap or pcapng.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), AnalysisError> {
        self.reader.push(bytes);
        self.analyse_buffered()
    }

    /// Analyses the records now complete in the reader's buffer.
    fn analyse_buffered(&mut self) -> Result<(), AnalysisError> {
        if self.head.len() < 8 && self.reader.head(8).len() > self.head.len() {
            self.head = self.reader.head(8).to_vec();
        }
        while let Some(rec) = self.reader.next_record()? {
            let Some(linktype) = rec.linktype else {
                continue;
            };
            match packet::decode(linktype, rec.data) {
                Ok(p) => self.engine.packet(rec.frame, rec.ts, &p),
                Err(packet::DecodeError::OtherTransport) => {}
                Err(e) => {
                    let reason = match e {
                        packet::DecodeError::Malformed(_) => "malformed packet".to_string(),
                        other => other.to_string(),
                    };
                    let entry = self
                        .undecoded
                        .entry(reason)
                        .or_insert((0, rec.frame, rec.offset));
                    entry.0 += 1;
                }
            }
        }
        Ok(())
    }

    fn read_error(&mut self, offset: u64, e: &std::io::Error) {
        self.damage.push(Damage {
            offset: Some(offset),
            after_frame: self.reader.frames(),
            what: format!("read error: {e}"),
        });
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.reader.frames()
    }

    /// Ends the capture: flushes every flow and returns what was learnt, sorted.
    pub fn finish(mut self) -> Analysis {
        let mut damage = self.reader.finish();
        damage.append(&mut self.damage);
        for (reason, (count, first, offset)) in self.undecoded {
            damage.push(Damage {
                offset: Some(offset),
                after_frame: first - 1,
                what: format!("{count} frame(s) not analysed: {reason} (first: frame {first})"),
            });
        }
        let frames = self.reader.frames();
        let (flows, findings, dns_queries, mut limits) = self.engine.finish();
        damage.append(&mut limits);
        damage.sort_by_key(|d| (d.after_frame, d.offset));
        tracing::debug!(
            frames,
            flows = flows.len(),
            findings = findings.len(),
            damage = damage.len(),
            "analysis done"
        );
        Analysis {
            frames,
            flows,
            dns_queries,
            findings,
            damage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet::tests::{ethernet, ipv4_tcp, ipv4_udp};
    use reader::tests::pcap;

    const IMEI: &str = "356938035643809";
    const C: [u8; 4] = [127, 1, 0, 2];
    const S: [u8; 4] = [127, 1, 0, 1];
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    const FIN_ACK: u8 = 0x11;

    fn ids() -> Vec<Identifier> {
        vec![
            Identifier::new("imei", IMEI),
            Identifier::new("phone_number", "+6598765432"),
            Identifier::new("contact_phone", "98765432"),
        ]
    }

    fn run(frames: &[Vec<u8>]) -> Analysis {
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        analyze_reader(&pcap(1, &refs)[..], &ids()).expect("analysis")
    }

    /// Client segment with payload at relative offset `off` (ISN 1000).
    fn c(off: u32, data: &[u8]) -> Vec<u8> {
        ethernet(&ipv4_tcp(C, S, 40000, 8000, 1001 + off, PSH_ACK, data))
    }

    fn handshake() -> Vec<Vec<u8>> {
        vec![
            ethernet(&ipv4_tcp(C, S, 40000, 8000, 1000, SYN, b"")),
            ethernet(&ipv4_tcp(S, C, 8000, 40000, 5000, SYN | ACK, b"")),
            ethernet(&ipv4_tcp(C, S, 40000, 8000, 1001, ACK, b"")),
        ]
    }

    fn summary(a: &Analysis) -> Vec<String> {
        a.findings
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {} #{}",
                    f.identifier, f.encoding, f.location, f.host, f.frame
                )
            })
            .collect()
    }

    #[test]
    fn out_of_order_retransmitted_and_overlapping_segments_reassemble() {
        let msg = format!("hello imei={IMEI} bye");
        let b = msg.as_bytes();
        let mut frames = handshake();
        frames.push(c(10, &b[10..20])); // 4: out of order
        frames.push(c(0, &b[0..12])); // 5: fills the hole, overlaps frame 4
        frames.push(c(0, &b[0..12])); // 6: retransmission
        frames.push(c(20, &b[20..])); // 7: completes the IMEI
        let a = run(&frames);
        assert_eq!(a.frames, 7);
        assert_eq!(summary(&a), vec!["imei plain tcp.payload 127.1.0.1 #7"]);
        assert_eq!(a.flows.len(), 1);
        let f = &a.flows[0];
        assert_eq!(f.client, ("127.1.0.2".parse().unwrap(), 40000));
        assert_eq!(f.bytes_out, b.len() as u64);
        assert_eq!(f.gap_bytes, 0);
        assert!(a.damage.is_empty(), "{:?}", a.damage);
    }

    #[test]
    fn a_gap_is_counted_and_does_not_join_bytes() {
        let mut frames = handshake();
        frames.push(c(0, &IMEI.as_bytes()[..8]));
        frames.push(c(100, &IMEI.as_bytes()[8..]));
        frames.push(c(200, IMEI.as_bytes()));
        let a = run(&frames);
        assert_eq!(summary(&a), vec!["imei plain tcp.payload 127.1.0.1 #6"]);
        assert_eq!(a.flows[0].gap_bytes, 100 - 8 + 200 - 107);
    }

    #[test]
    fn http_host_dns_name_and_nested_identifiers() {
        let dns_a = dns::tests::answer(
            1,
            "api.vendor.example",
            std::net::Ipv4Addr::new(127, 1, 0, 1),
        );
        let dns_q = dns::tests::query(1, "api.vendor.example");
        let req = "POST /r HTTP/1.1\r\nHost: api.vendor.example\r\nContent-Length: 15\r\n\r\nm=+6598765432&x";
        let mut frames = vec![
            ethernet(&ipv4_udp(C, [127, 1, 0, 53], 5555, 53, &dns_q)),
            ethernet(&ipv4_udp([127, 1, 0, 53], C, 53, 5555, &dns_a)),
        ];
        frames.extend(handshake());
        frames.push(c(0, req.as_bytes()));
        // A raw flow to the same server: named through DNS.
        frames.push(ethernet(&ipv4_tcp(
            C,
            S,
            40001,
            9000,
            1,
            PSH_ACK,
            IMEI.as_bytes(),
        )));
        let a = run(&frames);
        assert_eq!(a.dns_queries.len(), 1);
        assert_eq!(a.dns_queries[0].name, "api.vendor.example");
        assert_eq!(a.dns_queries[0].frame, 1);
        assert_eq!(
            summary(&a),
            vec![
                "contact_phone plain http.body api.vendor.example #6",
                "phone_number plain http.body api.vendor.example #6",
                "imei plain tcp.payload api.vendor.example #7",
            ]
        );
        assert_eq!(a.flows[1].host_source, HostSource::Http);
        assert_eq!(a.flows[1].protocol, Protocol::Http);
        assert_eq!(a.flows[2].host_source, HostSource::Dns);
        assert_eq!(a.flows[0].protocol, Protocol::Dns);
    }

    #[test]
    fn tls_sni_and_opaque_bytes() {
        let hello = tls::tests::hello_records("secure.example", &["h2"], 1000);
        let mut frames = handshake();
        frames.push(c(0, &hello));
        frames.push(c(hello.len() as u32, &[0x17, 3, 3, 0, 3, 1, 2, 3]));
        frames.push(ethernet(&ipv4_tcp(
            S,
            C,
            8000,
            40000,
            5001,
            PSH_ACK,
            &[0x16; 40],
        )));
        let a = run(&frames);
        let f = &a.flows[0];
        assert_eq!(
            (f.host.as_str(), f.host_source, f.protocol),
            ("secure.example", HostSource::Sni, Protocol::Tls)
        );
        assert_eq!(f.alpn, vec!["h2"]);
        assert_eq!(f.opaque_bytes, 8 + 40);
        assert_eq!(f.bytes_in, 40);
    }

    #[test]
    fn dns_qname_finding_and_port_reuse_makes_two_flows() {
        let q = dns::tests::query(9, &format!("{IMEI}.t.example"));
        let mut frames = vec![ethernet(&ipv4_udp(C, S, 4444, 53, &q))];
        frames.extend(handshake());
        frames.push(c(0, b"one"));
        frames.push(ethernet(&ipv4_tcp(C, S, 40000, 8000, 1004, FIN_ACK, b"")));
        frames.push(ethernet(&ipv4_tcp(S, C, 8000, 40000, 5001, FIN_ACK, b"")));
        frames.push(ethernet(&ipv4_tcp(C, S, 40000, 8000, 1005, ACK, b"")));
        frames.push(ethernet(&ipv4_tcp(C, S, 40000, 8000, 7000, SYN, b"")));
        frames.push(ethernet(&ipv4_tcp(
            C,
            S,
            40000,
            8000,
            7001,
            PSH_ACK,
            IMEI.as_bytes(),
        )));
        let a = run(&frames);
        assert_eq!(
            summary(&a),
            vec![
                "imei plain dns.qname 127.1.0.1 #1",
                "imei plain tcp.payload 127.1.0.1 #10"
            ]
        );
        let firsts: Vec<u64> = a.flows.iter().map(|f| f.first_frame).collect();
        assert_eq!(firsts, vec![1, 2, 9]);
    }

    #[test]
    fn non_ip_and_unknown_link_types_are_damage_not_errors() {
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&0x0806u16.to_be_bytes());
        arp.extend_from_slice(&[0u8; 28]);
        let a = run(&[arp.clone(), arp, c(0, b"x")]);
        assert_eq!(a.frames, 3);
        assert_eq!(a.damage.len(), 1, "{:?}", a.damage);
        assert_eq!(a.damage[0].after_frame, 0);
        assert!(
            a.damage[0].what.starts_with("2 frame(s)"),
            "{}",
            a.damage[0].what
        );
        let odd = analyze_reader(&pcap(147, &[b"abc"])[..], &ids()).expect("analysis");
        assert_eq!(odd.frames, 1);
        assert!(odd.damage[0].what.contains("link type 147"));
    }

    #[test]
    fn truncated_capture_keeps_what_came_before() {
        let mut frames = handshake();
        frames.push(c(0, IMEI.as_bytes()));
        frames.push(c(15, b"more bytes here"));
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let file = pcap(1, &refs);
        let full = analyze_reader(&file[..], &ids()).expect("full");
        for cut in 24..file.len() {
            let a = analyze_reader(&file[..cut], &ids()).expect("cut");
            assert!(a.frames <= full.frames);
            if a.frames >= 4 {
                assert_eq!(a.findings.len(), 1, "cut {cut}");
            }
        }
        assert!(matches!(
            analyze_reader(&b""[..], &ids()),
            Err(AnalysisError::NotACapture { .. })
        ));
        assert!(matches!(
            analyze_reader(&b"\x00\x01\x02\x03"[..], &ids()),
            Err(AnalysisError::NotACapture { .. })
        ));
    }

    #[test]
    fn streaming_feed_matches_whole_file() {
        let mut frames = handshake();
        frames.push(c(
            0,
            format!("GET /?imei={IMEI} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
        ));
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let file = pcap(1, &refs);
        let whole = analyze_reader(&file[..], &ids()).expect("whole");
        let mut an = Analyzer::new(&ids());
        for piece in file.chunks(5) {
            an.feed(piece).expect("feed");
        }
        assert_eq!(an.finish(), whole);
        assert_eq!(whole.findings.len(), 1);
        assert_eq!(whole.findings[0].location, "http.url");
    }

    /// A file is analysed exactly as the same bytes given to `analyze_reader`, cut anywhere; an
    /// empty or 3-byte file is not a capture either way.
    #[test]
    fn file_equals_read_bytes() {
        let file: &[u8] = include_bytes!("../tests/data/http-imei.pcap");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.pcap");
        let imei = [Identifier::new("imei", IMEI)];
        for cut in [file.len(), file.len() - 1, file.len() / 2, 30, 24] {
            std::fs::write(&path, &file[..cut]).expect("write");
            let mapped = analyze_file(&path, &imei).expect("mapped");
            let read = analyze_reader(&file[..cut], &imei).expect("read");
            assert_eq!(mapped, read, "cut {cut}");
        }
        for bad in [&b""[..], b"\xd4\xc3\xb2", b"not a capture at all"] {
            std::fs::write(&path, bad).expect("write");
            assert!(matches!(
                analyze_file(&path, &imei),
                Err(AnalysisError::NotACapture { .. })
            ));
        }
        let full = analyze_file(&path.with_file_name("missing.pcap"), &imei);
        assert!(matches!(full, Err(AnalysisError::Open { .. })));
    }

    /// A real tcpdump capture (crates/tattle-analysis/tests/data/http-imei.pcap): cut at every offset and with
    /// bytes corrupted at every offset, the analysis never panics and never errors past the header.
    #[test]
    fn real_capture_cut_or_corrupted_anywhere() {
        let file: &[u8] = include_bytes!("../tests/data/http-imei.pcap");
        let full = analyze_reader(file, &ids()).expect("fixture");
        assert_eq!(full.frames, 8);
        assert_eq!(full.findings.len(), 3, "{:?}", full.findings);
        // One identifier keeps the automaton small: these loops run ~1500 analyses.
        let imei = [Identifier::new("imei", IMEI)];
        for cut in 24..file.len() {
            let a = analyze_reader(&file[..cut], &imei).expect("cut");
            assert!(a.frames <= full.frames);
        }
        for at in 24..file.len() {
            let mut bad = file.to_vec();
            bad[at] ^= 0xff;
            let a = analyze_reader(&bad[..], &imei).expect("corrupt");
            assert!(a.frames <= full.frames + 1);
        }
    }
}
