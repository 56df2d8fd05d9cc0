//! Structure-aware fuzz target for the protocol readers behind the analysis: the input is what one
//! flow carries (HTTP, TLS, DNS, QUIC, NTP or raw bytes), and the target wraps it in a valid
//! capture (Ethernet, IPv4 or IPv6, a TCP handshake or UDP datagrams) before `analyze_reader`. The
//! `analyze` target mutates capture containers; this one spends its mutations on the payloads, which
//! a container-level fuzzer rarely gets past the pcap, IP and TCP headers intact.
//!
//! Input layout: byte 0 chooses the service and the transport shape (see `Shape`), byte 1 the
//! segment size, the rest is the client's bytes; with `REPLY` set, the bytes after the first
//! `\xff\xfe\xfd` go from the server instead.
//!
//! `PAYLOAD_DUMP=FILE` writes the capture built from the (last) input run, for tshark or
//! `tattle analyze`.
//!
//! Owns nothing in src/: a failure is reported with its input under
//! crates/tattle-analysis/fuzz/regressions/.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;
use std::sync::OnceLock;

use tattle_analysis::identifier::Identifier;
use tattle_analysis::pcap::{PcapWriter, linktype};
use tattle_analysis::testgen::frame::{self, L4};
use tattle_analysis::{Analysis, Analyzer, Needles};

/// Server ports by the low 3 bits of the control byte: (port, tcp).
const SERVICES: [(u16, bool); 8] = [
    (80, true),
    (443, true),
    (53, true),
    (53, false),
    (443, false),
    (123, false),
    (8080, true),
    (5000, false),
];
const V6: u8 = 0x08;
/// Segments delivered in reverse pairs (out of order).
const SWAP: u8 = 0x10;
/// Every other segment sent twice, the copy overlapping the next one by a byte.
const OVERLAP: u8 = 0x20;
const REPLY: u8 = 0x40;
/// No handshake: the capture starts mid-connection.
const MIDSTREAM: u8 = 0x80;

/// A capture being built: Ethernet frames of one client and one server, through the workspace's
/// one frame builder and pcap writer.
struct Capture {
    pcap: PcapWriter<Vec<u8>>,
    frame: Vec<u8>,
    v6: bool,
}

impl Capture {
    fn new(v6: bool) -> Self {
        Capture {
            pcap: PcapWriter::new(Vec::new(), linktype::ETHERNET).expect("to memory"),
            frame: Vec::new(),
            v6,
        }
    }

    /// One packet from the client (`outbound`) or the server.
    fn packet(&mut self, outbound: bool, port: u16, tcp: Option<(u32, u32, u8)>, data: &[u8]) {
        let (client, server): (IpAddr, IpAddr) = if self.v6 {
            ("fd00::15".parse().unwrap(), "2001::1".parse().unwrap())
        } else {
            ("10.0.2.15".parse().unwrap(), "142.250.0.1".parse().unwrap())
        };
        let (c, s) = ((client, 41_000u16), (server, port));
        let (src, dst) = if outbound { (c, s) } else { (s, c) };
        let l4 = match tcp {
            Some((seq, ack, flags)) => L4::Tcp { seq, ack, flags },
            None => L4::Udp,
        };
        self.frame.clear();
        frame::ethernet(&mut self.frame, src, dst, l4, data);
        let ts = 1_700_000_000_000_000 + self.pcap.frames * 10;
        self.pcap.record(ts, &self.frame).expect("to memory");
    }
}

/// Compiled once per process: building the automaton costs more than analysing most inputs.
fn needles() -> &'static Needles {
    static NEEDLES: OnceLock<Needles> = OnceLock::new();
    NEEDLES.get_or_init(|| {
        Needles::new(&[
            Identifier::new("imei", "356938035643809"),
            Identifier::new("phone_number", "+6598765432"),
            Identifier::new("contact_name", "Wei Ling Tan"),
        ])
    })
}

fuzz_target!(|data: &[u8]| {
    let [control, seg, body @ ..] = data else {
        return;
    };
    let (port, tcp) = SERVICES[usize::from(control & 7)];
    let seg = usize::from(*seg).max(1) * 8;
    let (client, server) = match body.windows(3).position(|w| w == b"\xff\xfe\xfd") {
        Some(at) if control & REPLY != 0 => (&body[..at], &body[at + 3..]),
        _ => (body, &body[..0]),
    };
    let mut cap = Capture::new(control & V6 != 0);
    let (cisn, sisn) = (1000u32, 9000u32);
    if tcp {
        if control & MIDSTREAM == 0 {
            cap.packet(true, port, Some((cisn - 1, 0, 0x02)), b"");
            cap.packet(false, port, Some((sisn - 1, cisn, 0x12)), b"");
            cap.packet(true, port, Some((cisn, sisn, 0x10)), b"");
        }
        let mut pieces: Vec<(usize, &[u8])> = Vec::new();
        let mut off = 0;
        for piece in client.chunks(seg) {
            pieces.push((off, piece));
            off += piece.len();
        }
        if control & SWAP != 0 {
            for pair in pieces.chunks_mut(2) {
                pair.reverse();
            }
        }
        for (i, (off, piece)) in pieces.iter().enumerate() {
            let seq = cisn.wrapping_add(*off as u32);
            cap.packet(true, port, Some((seq, sisn, 0x18)), piece);
            if control & OVERLAP != 0 && i % 2 == 0 {
                let more = client
                    .get(off + piece.len()..off + piece.len() + 1)
                    .unwrap_or(&[]);
                let copy = [*piece, more].concat();
                cap.packet(true, port, Some((seq, sisn, 0x18)), &copy);
            }
        }
        let mut soff = 0u32;
        for piece in server.chunks(seg) {
            let ack = cisn.wrapping_add(client.len() as u32);
            cap.packet(
                false,
                port,
                Some((sisn.wrapping_add(soff), ack, 0x18)),
                piece,
            );
            soff = soff.wrapping_add(piece.len() as u32);
        }
        let end = cisn.wrapping_add(client.len() as u32);
        cap.packet(true, port, Some((end, sisn.wrapping_add(soff), 0x11)), b"");
    } else {
        for piece in client.chunks(seg) {
            cap.packet(true, port, None, piece);
        }
        for piece in server.chunks(seg) {
            cap.packet(false, port, None, piece);
        }
    }
    // PAYLOAD_DUMP=FILE: write the capture built from the input, to open a crashing input in
    // tshark or `tattle analyze`.
    static DUMP: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    if let Some(path) = DUMP.get_or_init(|| std::env::var_os("PAYLOAD_DUMP")) {
        let _ = std::fs::write(path, cap.pcap.get_ref());
    }
    let frames = cap.pcap.frames;
    let out = cap.pcap.into_inner();
    let mut analyzer = Analyzer::with_needles(needles(), Analysis::default());
    analyzer
        .read_all(&out[..])
        .expect("a well-formed pcap is always accepted");
    let a = analyzer.finish();
    assert_eq!(
        a.frames,
        frames,
        "every frame written is counted"
    );
    assert!(
        a.damage.is_empty(),
        "a well-formed capture reports no damage: {:?}",
        a.damage.iter().map(|d| &d.what).collect::<Vec<_>>()
    );
    for f in &a.findings {
        assert!(
            f.frame >= 1 && f.frame <= a.frames,
            "finding past the last frame"
        );
    }
});
