//! tattle's analysis engine: capture bytes in, hosts and personal-identifier findings out.
//!
//! It reads a pcap or pcapng (a file, a pipe, bytes as they arrive), decodes packets, follows each
//! TCP connection and UDP conversation, reads DNS, the TLS ClientHello, HTTP/1.x, HTTP/2 with
//! prior knowledge (h2c) and the QUIC Initial, and looks for identifiers (an IMEI, a phone number,
//! a contact's name…) in every encoding it knows — plain, URL, base64, base32, hex,
//! md5/sha1/sha256, JSON escapes, gzip inside base64… — in a single pass. It knows nothing of
//! devices, scenarios or snapshots: frame numbers and timestamps let the caller place results
//! (tattle places them in a scenario's steps), so it works as a library on a capture taken by
//! anything (tcpdump, PCAPdroid, a router, PiRogue).
//!
//! # Using it
//! ```
//! use tattle_analysis::{Analyzer, Summary, identifier::Identifier};
//! # fn main() -> Result<(), tattle_analysis::AnalysisError> {
//! # let capture = tattle_analysis::pcap::to_vec(1, &[]);
//! let ids = [Identifier::new("imei", "356938035643809")];
//! // Everything kept (small captures, tests):
//! let all = tattle_analysis::analyze_reader(&capture[..], &ids)?;
//! // Memory bounded by the flows open at once, whatever the capture's size:
//! let mut analyzer = Analyzer::with_sink(&ids, Summary::default());
//! analyzer.feed(&capture)?; // as bytes arrive
//! let done = analyzer.end();
//! assert_eq!(done.frames, all.frames);
//! # Ok(()) }
//! ```
//! A [`Sink`] receives each flow when it ends (with its findings), each DNS question, and each
//! finding the moment it is made; [`Analysis`] keeps them all, [`Summary`] keeps totals per host
//! and per kind of finding. [`analyze_parallel`] shards flows over threads. Every name that comes
//! out of a capture may carry an identifier: show it through a [`Redactor`].
//!
//! # Inside (one way: bytes → records → packets → flows → readers → matcher → sink)
//! `reader` (pcap/pcapng records), `packet` (link, IP, TCP/UDP headers), `flows` (each flow's life,
//! reassembly, and its readers), `dns`, `tls`, `http`, `http2` (over `hpack`), `quic` (protocol readers), `matcher` (every
//! identifier's needles in one automaton), `sink`/`summary` (what is kept), `parallel`
//! (sharding), `redact` (names shown to people), `domain` (registrable domains).
//!
//! Must not touch: the device, the terminal, the file system (besides reading a capture it is
//! given), an async runtime.

#![warn(missing_docs)]

mod analyzer;
mod dns;
mod domain;
mod flows;
mod hpack;
mod http;
mod http2;
mod http3;
pub mod identifier;
mod inflate;
pub mod keylog;
mod matcher;
mod packet;
mod parallel;
pub mod pcap;
mod qpack;
mod quic;
mod reader;
mod redact;
mod sink;
mod summary;
// Test support, documented by module; not part of the engine's API.
#[cfg(any(test, feature = "testgen"))]
#[allow(missing_docs)]
pub mod testgen;
mod tls;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use analyzer::{Analyzer, CaptureSecrets, Finished, analyze_file, analyze_reader};
pub use domain::registrable_domain;
pub use flows::limits::{
    CLOSING_IDLE, FLOW_STATE_BYTES, MAX_BUFFERED, MAX_FLOW_STATE, TCP_IDLE, UDP_IDLE,
};
pub use parallel::{analyze_parallel, analyze_parallel_with_keys};
pub use redact::{Redactor, sanitize, sanitize_lines};
pub use sink::Sink;
pub use summary::{
    FRAMES_PER_GROUP, FindingGroup, HostSummary, NameSummary, Summary, Unlisted, merge_suites,
};

/// The identifiers of an analysis compiled into one automaton of every form and encoding: built
/// once, shared by any number of analysers and threads (cheap to clone).
#[derive(Debug, Clone)]
pub struct Needles(std::sync::Arc<matcher::Matcher>);

impl Needles {
    /// Every form and encoding of every identifier, in one automaton.
    pub fn new(identifiers: &[identifier::Identifier]) -> Self {
        Needles(std::sync::Arc::new(matcher::Matcher::new(identifiers)))
    }
}

/// How a name was learnt, best first.
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
    /// The finding is about a name the handset asked DNS for (`dns.qname`): this is that name.
    Qname,
}

/// Application protocol of a flow or finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// DNS, mDNS, LLMNR (UDP, or TCP with its length prefix).
    Dns,
    /// HTTP/1.x requests.
    Http,
    /// TLS: the ClientHello read, the rest opaque.
    Tls,
    /// QUIC v1: the client's Initial read, the rest opaque.
    Quic,
    /// NTP (port 123).
    Ntp,
    /// Any other TCP stream, searched raw.
    Tcp,
    /// Any other UDP datagrams, searched raw.
    Udp,
}

impl Protocol {
    /// The name reports use: `dns`, `http`, `tls`, `quic`, `ntp`, `tcp`, `udp`.
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

/// How a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowEnd {
    /// FIN from both sides.
    Fin,
    /// FIN from one side, then silence for [`CLOSING_IDLE`].
    HalfFin,
    /// RST from either side.
    Reset,
    /// Silence for [`TCP_IDLE`] or [`UDP_IDLE`]: if it speaks again, a resumed flow follows.
    Idle,
    /// A new connection (a SYN with a new sequence number) took its addresses.
    Reused,
    /// Ended early to keep the open flows within [`MAX_FLOW_STATE`].
    Evicted,
    /// Still open when the capture ended.
    CaptureEnd,
}

/// Capture timestamp in seconds since the Unix epoch (the capturing machine's clock).
pub type Timestamp = f64;

/// One TCP connection or UDP conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// `tcp` or `udp`.
    pub transport: &'static str,
    /// The side that opened the conversation (the handset, on a handset's capture).
    pub client: (IpAddr, u16),
    /// The other side.
    pub server: (IpAddr, u16),
    /// Best name known for the server; the IP as text if none.
    pub host: String,
    /// How `host` was learnt.
    pub host_source: HostSource,
    /// What the client spoke, as far as it could be told.
    pub protocol: Protocol,
    /// Wireshark frame number (1-based) of the flow's first packet: the flow's id in findings.
    pub first_frame: u64,
    /// Capture time of the first packet.
    pub first_ts: Timestamp,
    /// Capture time of the last packet.
    pub last_ts: Timestamp,
    /// Payload bytes client → server.
    pub bytes_out: u64,
    /// Payload bytes server → client.
    pub bytes_in: u64,
    /// Payload bytes that could not be inspected (TLS application data, undecodable payload).
    pub opaque_bytes: u64,
    /// TCP bytes never seen (lost in capture): the stream was searched on both sides of the hole.
    pub gap_bytes: u64,
    /// ALPN protocols offered in the TLS ClientHello, in order.
    pub alpn: Vec<String>,
    /// How it ended.
    pub end: FlowEnd,
    /// This flow continues one that ended idle (or was evicted): same addresses, client,
    /// protocol and host; its earlier bytes are in that flow's record.
    pub resumed: bool,
    /// TLS facts of a TLS flow (version, cipher, whether it was decrypted); `None` otherwise.
    pub tls: Option<TlsSummary>,
}

/// What became of a TLS flow's client records (docs/analysis.md "TLS decryption").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decryption {
    /// No key log was given (and the capture carries no secrets).
    NotAttempted,
    /// The key log has no secrets for this connection's client random: opaque.
    NoKey,
    /// As `NoKey`, but the ClientHello offered Encrypted Client Hello (the key log names the
    /// inner random, which the capture does not show).
    Ech,
    /// Every protected client record seen was opened.
    Decrypted,
    /// Records were opened, then one was lost or failed: the rest is opaque.
    Partial,
    /// The first protected record did not authenticate with the logged secrets: this frame.
    KeysDoNotMatch {
        /// The frame that completed that record.
        frame: u64,
    },
    /// A cipher suite not decrypted here (IANA id), e.g. AES-CBC, CCM.
    UnsupportedCipher(u16),
    /// A protocol version not decrypted here (only TLS 1.2 and 1.3 are).
    UnsupportedVersion(u16),
    /// The handshake was not all in the capture (no ServerHello, bytes missing before it, or
    /// the stream stopped looking like TLS).
    Incomplete,
}

impl Decryption {
    /// The name reports use: `decrypted`, `no_key`, `keys_do_not_match`…
    pub fn as_str(self) -> &'static str {
        match self {
            Decryption::NotAttempted => "not_attempted",
            Decryption::NoKey => "no_key",
            Decryption::Ech => "ech",
            Decryption::Decrypted => "decrypted",
            Decryption::Partial => "partial",
            Decryption::KeysDoNotMatch { .. } => "keys_do_not_match",
            Decryption::UnsupportedCipher(_) => "unsupported_cipher",
            Decryption::UnsupportedVersion(_) => "unsupported_version",
            Decryption::Incomplete => "incomplete",
        }
    }
}

/// A TLS flow's handshake facts and how far it was decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsSummary {
    /// 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3), from the ServerHello; `None` if it was not seen.
    /// [`QUIC_V1`] for QUIC v1 (TLS 1.3 inside).
    pub version: Option<u16>,
    /// The IANA cipher suite id from the ServerHello ([`cipher_suite_name`]).
    pub cipher: Option<u16>,
    /// What became of the client's protected records.
    pub decryption: Decryption,
    /// Client record bytes (headers and tags included) that authenticated and were read.
    pub decrypted_bytes: u64,
    /// What the decrypted bytes spoke: `http/1.1`, `h2`, `dns` or `other`.
    pub app: Option<&'static str>,
}

/// The TLS "version" of a QUIC v1 flow (its version number; the handshake inside is TLS 1.3).
pub const QUIC_V1: u16 = quic::QUIC_V1;

/// How a finding inside TLS was seen: decrypted with this version and cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlsUse {
    /// 0x0303, 0x0304, or [`QUIC_V1`].
    pub version: u16,
    /// IANA cipher suite id.
    pub cipher: u16,
}

impl std::fmt::Display for TlsUse {
    /// `TLS 1.3 TLS_AES_128_GCM_SHA256`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ", tls_version_name(self.version))?;
        match cipher_suite_name(self.cipher) {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:04x}", self.cipher),
        }
    }
}

/// `TLS 1.2`, `TLS 1.3`, `QUIC v1 / TLS 1.3` ([`QUIC_V1`]), else the number (`0x0301`).
pub fn tls_version_name(version: u16) -> String {
    match version {
        QUIC_V1 => "QUIC v1 / TLS 1.3".into(),
        0x0304 => "TLS 1.3".into(),
        0x0303 => "TLS 1.2".into(),
        0x0302 => "TLS 1.1".into(),
        0x0301 => "TLS 1.0".into(),
        v => format!("0x{v:04x}"),
    }
}

/// The IANA name of a common cipher suite (`TLS_AES_128_GCM_SHA256`); `None` for others.
pub fn cipher_suite_name(id: u16) -> Option<&'static str> {
    tls::crypto::cipher_name(id)
}

/// Key logs to decrypt TLS with, parsed once and shared by every analyser and shard (cheap to
/// clone). A capture's own Decryption Secrets Blocks are read in addition, always.
#[derive(Debug, Clone, Default)]
pub struct Keys(std::sync::Arc<keylog::KeyLog>);

impl Keys {
    /// Keys from a parsed key log.
    pub fn new(log: keylog::KeyLog) -> Self {
        Keys(std::sync::Arc::new(log))
    }
}

/// A DNS question seen in the capture.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsQuery {
    /// The name asked, dotted, without the trailing dot.
    pub name: String,
    /// Frame of the question.
    pub frame: u64,
    /// Its capture time.
    pub ts: Timestamp,
    /// The first frame of the flow that asked.
    pub flow: u64,
}

/// An identifier found in traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The identifier's kind (`imei`), never its value.
    pub identifier: String,
    /// Transformations between the identifier and the wire, innermost first, joined by `+`:
    /// `plain`, `url`, `md5`, `md5+base64`, `gzip`…
    pub encoding: String,
    /// The flow's host; for a DNS question (`dns.qname`), the name asked (`host_source: qname`).
    pub host: String,
    /// How `host` was learnt.
    pub host_source: HostSource,
    /// The flow's protocol.
    pub protocol: Protocol,
    /// Where in the message: `dns.qname`, `http.url`, `http.header:NAME`, `http.body`,
    /// `tcp.payload`…
    pub location: String,
    /// The flow: its first frame ([`Flow::first_frame`]).
    pub flow: u64,
    /// Wireshark frame number (1-based) of the packet that completed the match.
    pub frame: u64,
    /// That frame's capture time.
    pub ts: Timestamp,
    /// Seen in decrypted TLS (version and cipher suite); `None`: seen as sent (plain, or a TLS
    /// flow's ClientHello).
    pub tls: Option<TlsUse>,
}

/// A place where the capture could not be read as it claims to be.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// Byte offset in the capture file, if known.
    pub offset: Option<u64>,
    /// Frame number after which the damage happened (0 = before the first frame).
    pub after_frame: u64,
    /// What was wrong, in words.
    pub what: String,
}

/// Something the analysis did not do: a bound that cut it short (a decompression budget, the
/// open-flow memory), or frames it does not read (not IP, an unsupported link type). The capture
/// itself may be perfectly healthy.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Frame number after which it first happened (0 = before the first frame).
    pub after_frame: u64,
    /// What was cut or skipped, how often, and where first.
    pub what: String,
}

/// Everything the analysis learnt from one capture (the [`Sink`] that keeps it all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// Frames read (Wireshark's numbering ends here).
    pub frames: u64,
    /// Sorted by first frame.
    pub flows: Vec<Flow>,
    /// Sorted by frame.
    pub dns_queries: Vec<DnsQuery>,
    /// Sorted by frame.
    pub findings: Vec<Finding>,
    /// Where the capture is damaged.
    pub damage: Vec<Damage>,
    /// Bounds that cut the analysis short.
    pub limits: Vec<Limit>,
    /// Frames not analysed by design (not IP, unsupported link types).
    pub skipped: Vec<Limit>,
}

/// Errors that stop an analysis before it starts. Damage inside a capture is not an error: it is
/// reported in `Analysis::damage` and everything before it is analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The capture could not be opened, or nothing could be read from it.
    #[error("cannot read capture {path}: {source}")]
    Open {
        /// The file (or `(reader)`).
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The first bytes are not those of a pcap or pcapng file.
    #[error("not a pcap or pcapng capture (first bytes {magic})")]
    NotACapture {
        /// Those bytes, in hex.
        magic: String,
    },
}
