//! The streaming analyser: capture bytes in (a file, a pipe, or pieces as they arrive), records
//! framed, packets decoded and handed to the flow engine; what could not be read becomes damage,
//! skipped frames or limits, never an error past the capture's first bytes.
//!
//! Must not touch: what happens inside flows (see `flows`), what a sink keeps.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use crate::flows::Engine;
use crate::identifier::Identifier;
use crate::keylog::{KeyLog, KeyLogStats};
use crate::matcher::Matcher;
use crate::packet::{self, DecodeError};
use crate::reader::CaptureReader;
use crate::sink::Sink;
use crate::{Analysis, AnalysisError, Damage, Keys, Limit, Needles};

/// Bytes read from the capture at a time: large enough that system calls are rare, small enough
/// to stay in the CPU's cache while the records in it are analysed.
pub(crate) const READ_CHUNK: usize = 256 << 10;

/// Analyses a capture file, keeping everything ([`Analysis`]). (Mapping the file instead was
/// measured slower: page faults in this VM cost more than the copy `read` makes from the page
/// cache.)
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

/// Analyses a capture from any reader (a file, a pipe), keeping everything. A read error part-way
/// is damage, not an error: what was read is analysed.
pub fn analyze_reader(
    reader: impl Read,
    identifiers: &[Identifier],
) -> Result<Analysis, AnalysisError> {
    let mut analyzer = Analyzer::new(identifiers);
    analyzer.read_all(reader)?;
    Ok(analyzer.finish())
}

/// What an analysis ended with: the sink, and what the capture did not let it do.
#[derive(Debug)]
pub struct Finished<S> {
    /// The sink, with everything it was given.
    pub sink: S,
    /// Frames read (Wireshark's numbering ends here).
    pub frames: u64,
    /// Where the capture could not be read as it claims to be.
    pub damage: Vec<Damage>,
    /// Bounds that cut the analysis short.
    pub limits: Vec<Limit>,
    /// Frames not analysed by design (not IP, unsupported link types).
    pub skipped: Vec<Limit>,
    /// What the capture's own Decryption Secrets Blocks carried.
    pub secrets: CaptureSecrets,
}

/// The key log text a pcapng carried in Decryption Secrets Blocks, read automatically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureSecrets {
    /// TLS key log blocks (`TLSK`).
    pub blocks: u64,
    /// Blocks of other kinds (WireGuard, SSH…), skipped.
    pub other_blocks: u64,
    /// Their lines, as `KeyLog::add_text` counted them (line numbers within a block).
    pub stats: KeyLogStats,
}

impl<S> Finished<S> {
    /// The same result with the sink changed (a sink that wraps another gives it up).
    pub fn map_sink<T>(self, f: impl FnOnce(S) -> T) -> Finished<T> {
        Finished {
            sink: f(self.sink),
            frames: self.frames,
            damage: self.damage,
            limits: self.limits,
            skipped: self.skipped,
            secrets: self.secrets,
        }
    }
}

impl Finished<Analysis> {
    /// One `Analysis`: the sink's flows, findings and questions, in capture order, with the
    /// frames, damage, limits and skipped frames.
    pub fn into_analysis(self) -> Analysis {
        let mut a = self.sink;
        a.frames = self.frames;
        a.damage = self.damage;
        a.limits = self.limits;
        a.skipped = self.skipped;
        a.sort();
        a
    }
}

/// Frames that yielded no packet, by reason: (count, first frame, its offset).
#[derive(Debug, Default)]
pub(crate) struct Undecoded {
    damage: BTreeMap<String, (u64, u64, u64)>,
    limits: BTreeMap<String, (u64, u64, u64)>,
    skipped: BTreeMap<String, (u64, u64, u64)>,
}

impl Undecoded {
    /// Files a decode error under damage (the frame is broken), a limit (IP fragments: the
    /// analysis does not reassemble them) or skipped (not IP, link types it does not read).
    pub fn add(&mut self, e: DecodeError, frame: u64, offset: u64) {
        let (map, reason) = match e {
            DecodeError::OtherTransport => return,
            DecodeError::Malformed(_) => (&mut self.damage, "malformed packet".to_string()),
            DecodeError::Fragment => (&mut self.limits, e.to_string()),
            DecodeError::NotIp(_) | DecodeError::UnknownLinkType(_) => {
                (&mut self.skipped, e.to_string())
            }
        };
        map.entry(reason).or_insert((0, frame, offset)).0 += 1;
    }

    /// (damage, limits, skipped) lines.
    pub fn into_notes(self) -> (Vec<Damage>, Vec<Limit>, Vec<Limit>) {
        let text = |reason: &str, count: u64, first: u64| {
            format!("{count} frame(s) not analysed: {reason} (first: frame {first})")
        };
        let damage = self
            .damage
            .into_iter()
            .map(|(r, (n, first, offset))| Damage {
                offset: Some(offset),
                after_frame: first - 1,
                what: text(&r, n, first),
            })
            .collect();
        let limit = |m: BTreeMap<String, (u64, u64, u64)>| {
            m.into_iter()
                .map(|(r, (n, first, _))| Limit {
                    after_frame: first - 1,
                    what: text(&r, n, first),
                })
                .collect()
        };
        (damage, limit(self.limits), limit(self.skipped))
    }
}

/// Streaming analysis: `feed` capture bytes as they arrive (from a pipe, a live tcpdump), then
/// `end` (or `finish` for an [`Analysis`]). Memory stays bounded by the flows open at once (see
/// the limits in docs/analysis.md) as long as the sink's own memory is bounded.
#[derive(Debug)]
pub struct Analyzer<S: Sink = Analysis> {
    reader: CaptureReader,
    engine: Engine<S>,
    undecoded: Undecoded,
    secrets: CaptureSecrets,
}

impl Analyzer<Analysis> {
    /// An analyser that keeps everything.
    pub fn new(identifiers: &[Identifier]) -> Self {
        Self::with_sink(identifiers, Analysis::default())
    }

    /// Ends the capture: every flow still open is ended, and everything learnt returned, sorted.
    pub fn finish(self) -> Analysis {
        let a = self.end().into_analysis();
        tracing::debug!(
            frames = a.frames,
            flows = a.flows.len(),
            findings = a.findings.len(),
            damage = a.damage.len(),
            "analysis done"
        );
        a
    }
}

impl<S: Sink> Analyzer<S> {
    /// An analyser for `identifiers` that hands what it learns to `sink`.
    pub fn with_sink(identifiers: &[Identifier], sink: S) -> Self {
        Self::with_matcher(Arc::new(Matcher::new(identifiers)), sink)
    }

    /// An analyser with needles compiled before (many analysers, one automaton).
    pub fn with_needles(needles: &Needles, sink: S) -> Self {
        Self::with_matcher(needles.0.clone(), sink)
    }

    pub(crate) fn with_matcher(matcher: Arc<Matcher>, sink: S) -> Self {
        Analyzer {
            reader: CaptureReader::new(),
            engine: Engine::new(matcher, sink),
            undecoded: Undecoded::default(),
            secrets: CaptureSecrets::default(),
        }
    }

    /// Decrypts TLS flows whose secrets `keys` holds (in addition to the capture's own
    /// Decryption Secrets Blocks, always read).
    pub fn with_keys(mut self, keys: &Keys) -> Self {
        self.engine = self.engine.with_keys(keys.0.clone());
        self
    }

    /// Analyses the next bytes of the capture. Fails only if the capture does not start like a
    /// pcap or pcapng.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), AnalysisError> {
        self.reader.push(bytes);
        self.analyse_buffered()
    }

    /// Reads `reader` to its end (straight into the capture reader's own buffer: one copy from
    /// the kernel, none after). Fails only if nothing could be read or it is not a capture.
    pub fn read_all(&mut self, mut reader: impl Read) -> Result<(), AnalysisError> {
        while self.reader.read_chunk(&mut reader, READ_CHUNK)? {
            self.analyse_buffered()?;
        }
        self.reader.check_read()
    }

    /// Analyses the records now complete in the reader's buffer.
    fn analyse_buffered(&mut self) -> Result<(), AnalysisError> {
        loop {
            while let Some(rec) = self.reader.next_record()? {
                let Some(linktype) = rec.linktype else {
                    continue;
                };
                if rec.may_carry_secrets {
                    self.engine.expect_keys();
                }
                match packet::decode(linktype, rec.data) {
                    Ok(p) => self.engine.packet(rec.frame, rec.ts, &p),
                    Err(e) => self.undecoded.add(e, rec.frame, rec.offset),
                }
            }
            // A Decryption Secrets Block paused the records: its keys come before the next one.
            let Some(text) = self.reader.take_secrets() else {
                return Ok(());
            };
            self.secrets.blocks += 1;
            self.secrets.stats.add(&count_lines(&text));
            self.engine.learn_keys(&text);
        }
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.reader.frames()
    }

    /// The sink (what it has received so far).
    pub fn sink(&self) -> &S {
        self.engine.sink()
    }

    /// The sink, to take out what it has kept so far (a live display).
    pub fn sink_mut(&mut self) -> &mut S {
        self.engine.sink_mut()
    }

    /// Flows open now (a progress display's figure).
    pub fn open_flows(&self) -> usize {
        self.engine.open_flows()
    }

    /// Ends the capture: every flow still open is ended and handed to the sink.
    pub fn end(mut self) -> Finished<S> {
        let mut damage = self.reader.finish();
        let frames = self.reader.frames();
        let (sink, mut limits) = self.engine.finish();
        let (mut undecodable, mut cut, skipped) = self.undecoded.into_notes();
        damage.append(&mut undecodable);
        damage.sort_by_key(|d| (d.after_frame, d.offset));
        limits.append(&mut cut);
        limits.sort_by_key(|l| l.after_frame);
        let mut secrets = self.secrets;
        secrets.other_blocks = self.reader.other_secrets();
        Finished {
            sink,
            frames,
            damage,
            limits,
            skipped,
            secrets,
        }
    }
}

/// What a key log text holds, counted (the engine keeps the secrets; this keeps the numbers).
pub(crate) fn count_lines(text: &[u8]) -> KeyLogStats {
    KeyLog::new().add_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tests::{ethernet, ipv4_tcp, ipv4_udp};
    use crate::reader::tests::pcap;
    use crate::{HostSource, Protocol, dns, tls};

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
                "imei plain dns.qname 356938035643809.t.example #1",
                "imei plain tcp.payload 127.1.0.1 #10"
            ]
        );
        let firsts: Vec<u64> = a.flows.iter().map(|f| f.first_frame).collect();
        assert_eq!(firsts, vec![1, 2, 9]);
    }

    #[test]
    fn non_ip_frames_and_unknown_link_types_are_skipped_and_broken_ones_are_damage() {
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&0x0806u16.to_be_bytes());
        arp.extend_from_slice(&[0u8; 28]);
        // An IPv4 header claiming more bytes than the frame has.
        let mut broken = c(0, b"x");
        broken[16] = 0xff;
        let a = run(&[arp.clone(), arp, c(0, b"x"), broken]);
        assert_eq!(a.frames, 4);
        assert_eq!(a.skipped.len(), 1, "{:?}", a.skipped);
        assert_eq!(a.skipped[0].after_frame, 0);
        assert!(
            a.skipped[0]
                .what
                .starts_with("2 frame(s) not analysed: not an IP packet"),
            "{}",
            a.skipped[0].what
        );
        assert_eq!(a.damage.len(), 1, "{:?}", a.damage);
        assert!(a.damage[0].what.contains("malformed"), "{:?}", a.damage);
        assert_eq!(a.damage[0].after_frame, 3);
        let odd = analyze_reader(&pcap(147, &[b"abc"])[..], &ids()).expect("analysis");
        assert_eq!(odd.frames, 1);
        assert!(odd.damage.is_empty());
        assert!(odd.skipped[0].what.contains("link type 147"));
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

    /// A reader that fails part-way: what came before is analysed, the failure is damage; one
    /// that fails at once is an error.
    #[test]
    fn a_read_error_is_damage_after_the_first_bytes() {
        struct Failing<'a>(&'a [u8]);
        impl std::io::Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("cable pulled"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut frames = handshake();
        frames.push(c(0, IMEI.as_bytes()));
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let file = pcap(1, &refs);
        let a = analyze_reader(Failing(&file), &ids()).expect("analysed up to the error");
        assert_eq!(a.frames, 4);
        assert_eq!(a.findings.len(), 1);
        assert_eq!(a.damage.len(), 1, "{:?}", a.damage);
        assert!(a.damage[0].what.contains("read error: cable pulled"));
        assert_eq!(a.damage[0].offset, Some(file.len() as u64));
        assert!(matches!(
            analyze_reader(Failing(&[]), &ids()),
            Err(AnalysisError::Open { .. })
        ));
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
