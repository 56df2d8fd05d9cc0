//! Analysis: capture bytes in, hosts and findings out.
//!
//! Pure: reads a pcap/pcapng (file or any `Read`), decodes packets, groups them into flows, parses DNS,
//! TLS ClientHello and HTTP/1.x, and looks for identifiers in every encoding it knows. It knows nothing
//! of scenarios, steps, devices or snapshots — timestamps and frame numbers let `outcome` place results
//! in steps — so it works as a library on captures taken by anything (PCAPdroid, a router, tcpdump).
//!
//! Must not touch: the device, the terminal, the file system (besides reading the capture).
//! (Types fixed; implementation being written.)

pub mod dns;
pub mod http;
pub mod matcher;
pub mod packet;
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

/// Analyses a capture file.
pub fn analyze_file(
    path: &std::path::Path,
    identifiers: &[Identifier],
) -> Result<Analysis, AnalysisError> {
    let file = std::fs::File::open(path).map_err(|source| AnalysisError::Open {
        path: path.display().to_string(),
        source,
    })?;
    analyze_reader(std::io::BufReader::new(file), identifiers)
}

/// Analyses a capture from any reader (a file, a pipe).
pub fn analyze_reader(
    _reader: impl std::io::Read,
    _identifiers: &[Identifier],
) -> Result<Analysis, AnalysisError> {
    unimplemented!("analysis being written")
}
