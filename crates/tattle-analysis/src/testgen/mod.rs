//! Synthetic captures with known content, for tests, the benchmark and fuzz seeds (cargo feature
//! `testgen`; the crate's own tests always have it).
//!
//! Owns two traffic models and three adversarial captures, all seeded and deterministic (the same
//! seed gives the same capture, byte for byte):
//! - [`Shape::Phone`]: a handset's bytes — a few sessions at once, bulk downloads and uploads that
//!   carry most of the bytes, API calls over TLS and plain HTTP, QUIC, NTP;
//! - [`Shape::ManyFlows`]: a handset's (or a router's) day by connections — tens of thousands of
//!   short flows interleaved, most TCP connections ending with one FIN, a reset, or nothing at all.
//!
//! Both plant identifiers ([`IMEI`], [`PHONE`]) in known flows and record each [`Plant`], so a test
//! can demand that every one is found exactly once in its flow. The models are written from the
//! formats (pcap, IP, TCP, DNS, TLS, HTTP), not from the analysis, so the analysis is measured on
//! traffic it did not shape.
//!
//! Must not touch: the analysis (it is what is tested), the file system besides the writer given.

pub mod adversarial;
pub mod frame;
pub mod tls;
mod traffic;
pub mod tshark;

use std::io::{self, Write};

pub use crate::hpack::fuzz_blocks as hpack_fuzz_blocks;
pub use crate::http3::{
    Http3Outcome, fuzz_streams as http3_fuzz_streams, run_streams as http3_run_streams,
};
pub use crate::qpack::fuzz_records as qpack_fuzz_records;
pub use crate::quic::seal_client_initial;
pub use traffic::{Generator, Shape};

use crate::pcap::{PcapWriter, linktype};
use frame::{Endpoint, L4};

/// The identifiers planted in the traffic; a test or the bench searches for exactly these.
pub const IMEI: &str = "356938035643809";
pub const PHONE: &str = "+6598765432";

/// The identifiers planted, as the analysis takes them.
pub fn identifiers() -> Vec<crate::identifier::Identifier> {
    vec![
        crate::identifier::Identifier::new("imei", IMEI),
        crate::identifier::Identifier::new("phone_number", PHONE),
    ]
}

/// One identifier planted in one flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Plant {
    /// Frame number (1-based, Wireshark's) of the flow's first packet: the flow's id in findings.
    pub flow: u64,
    /// `imei`, `phone_number`.
    pub kind: &'static str,
    /// The encoding chain the analysis must report (`plain`, `md5`, `base64`, `url`, `gzip`…);
    /// `*+gzip` forms are listed as `gzip` alone, the chain inside depends on the JSON.
    pub encoding: &'static str,
    /// Where the analysis must find it: `http.url`, `http.body`, `dns.qname`…
    pub location: &'static str,
}

/// Deterministic PRNG (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi` exclusive, `hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

/// A pcap of Ethernet frames being written, with a clock that advances the way a phone talks: in
/// bursts, mostly back-to-back packets, sometimes a pause.
#[derive(Debug)]
pub struct Wire<W: Write> {
    pcap: PcapWriter<W>,
    ts_us: u64,
    /// Multiplies the gaps between packets: a capture that spans more capture time.
    pub time_scale: u64,
    frame: Vec<u8>,
    /// The next frame's payload (filled by the caller before `emit`).
    pub payload: Vec<u8>,
}

/// 2023-11-14T22:13:20Z: captures start here.
pub const START_US: u64 = 1_700_000_000_000_000;

impl<W: Write> Wire<W> {
    pub fn new(out: W) -> io::Result<Self> {
        Ok(Wire {
            pcap: PcapWriter::new(out, linktype::ETHERNET)?,
            ts_us: START_US,
            time_scale: 1,
            frame: Vec::with_capacity(2048),
            payload: Vec::with_capacity(2048),
        })
    }

    /// Frames written so far; the next frame's number is `frames() + 1`.
    pub fn frames(&self) -> u64 {
        self.pcap.frames
    }

    /// File bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.pcap.bytes
    }

    /// The capture clock (µs since the epoch) of the last frame.
    pub fn now_us(&self) -> u64 {
        self.ts_us
    }

    /// Lets capture time pass without a packet (a flow going quiet).
    pub fn pause(&mut self, us: u64) {
        self.ts_us += us;
    }

    /// Writes one frame carrying `self.payload` from `src` to `dst`.
    pub fn emit(&mut self, rng: &mut Rng, src: Endpoint, dst: Endpoint, l4: L4) -> io::Result<()> {
        self.frame.clear();
        frame::ethernet(&mut self.frame, src, dst, l4, &self.payload);
        self.ts_us += self.time_scale
            * if rng.chance(2) {
                rng.range(1_000, 200_000)
            } else {
                rng.range(2, 300)
            };
        self.pcap.record(self.ts_us, &self.frame)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.pcap.flush()
    }

    pub fn into_inner(self) -> W {
        self.pcap.into_inner()
    }
}
