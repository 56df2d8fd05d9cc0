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
//! Owns nothing in src/: a failure is reported with its input under fuzz/regressions/.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tattle_analysis::analyze_reader;
use tattle_analysis::identifier::Identifier;

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

struct Capture {
    out: Vec<u8>,
    frames: u32,
    v6: bool,
}

impl Capture {
    fn new(v6: bool) -> Self {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&262_144u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        Capture { out, frames: 0, v6 }
    }

    /// One packet from the client (`outbound`) or the server.
    fn packet(&mut self, outbound: bool, port: u16, tcp: Option<(u32, u32, u8)>, data: &[u8]) {
        let (cport, sport) = (41_000u16, port);
        let (sp, dp) = if outbound {
            (cport, sport)
        } else {
            (sport, cport)
        };
        let mut l4 = Vec::with_capacity(20 + data.len());
        l4.extend_from_slice(&sp.to_be_bytes());
        l4.extend_from_slice(&dp.to_be_bytes());
        match tcp {
            Some((seq, ack, flags)) => {
                l4.extend_from_slice(&seq.to_be_bytes());
                l4.extend_from_slice(&ack.to_be_bytes());
                l4.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
            }
            None => {
                l4.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
            }
        }
        l4.extend_from_slice(data);
        let proto = if tcp.is_some() { 6 } else { 17 };
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        let (client4, server4) = ([10, 0, 2, 15], [142, 250, 0, 1]);
        let mut client6 = [0u8; 16];
        client6[0] = 0xfd;
        client6[15] = 0x15;
        let mut server6 = [0u8; 16];
        server6[0] = 0x20;
        server6[1] = 0x01;
        server6[15] = 1;
        if self.v6 {
            frame.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            frame.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            frame.extend_from_slice(&[proto, 64]);
            let (s, d) = if outbound {
                (client6, server6)
            } else {
                (server6, client6)
            };
            frame.extend_from_slice(&s);
            frame.extend_from_slice(&d);
        } else {
            frame.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            frame.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
            let (s, d) = if outbound {
                (client4, server4)
            } else {
                (server4, client4)
            };
            frame.extend_from_slice(&s);
            frame.extend_from_slice(&d);
        }
        frame.extend_from_slice(&l4);
        self.frames += 1;
        self.out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        self.out
            .extend_from_slice(&(self.frames * 10).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&frame);
    }
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
        let _ = std::fs::write(path, &cap.out);
    }
    let ids = [
        Identifier::new("imei", "356938035643809"),
        Identifier::new("phone_number", "+6598765432"),
        Identifier::new("contact_name", "Wei Ling Tan"),
    ];
    let a = analyze_reader(&cap.out[..], &ids).expect("a well-formed pcap is always accepted");
    assert_eq!(
        a.frames,
        u64::from(cap.frames),
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
