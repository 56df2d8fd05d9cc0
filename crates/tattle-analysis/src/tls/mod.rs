//! TLS handshake facts: the ClientHello (server name, ALPN, the client random a key log is keyed
//! by, whether it offers ECH or early data) and the ServerHello (version, cipher suite, server
//! random, encrypt-then-MAC), each possibly fragmented over several records, read with
//! tls-parser. `crypto` opens protected records; `stream` follows a client's records after its
//! ClientHello and decrypts them when a key log has its secrets (docs/analysis.md "TLS").
//!
//! Must not touch: flows, matching, I/O.

pub(crate) mod crypto;
#[cfg(test)]
mod rfc8448;
#[cfg(test)]
mod sessions;
pub(crate) mod stream;
#[cfg(test)]
mod timing;

use tls_parser::{
    TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extensions,
    parse_tls_message_handshake, parse_tls_server_hello_extensions,
};

/// A ClientHello larger than this is not waited for (real ones are a few hundred bytes, up to a few
/// KiB with post-quantum key shares).
pub const MAX_HELLO: usize = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// The key log's key for this connection.
    pub random: [u8; 32],
    /// Offers `encrypted_client_hello` (0xfe0d): a key log then names the inner random.
    pub ech: bool,
    /// Offers 0-RTT (`early_data`).
    pub early_data: bool,
}

/// What the server chose (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello {
    /// 0x0304 when `supported_versions` says TLS 1.3, else `legacy_version`.
    pub version: u16,
    pub cipher: u16,
    pub random: [u8; 32],
    /// `encrypt_then_mac` (RFC 7366) was accepted.
    pub etm: bool,
}

/// The random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256 of "HelloRetryRequest".
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Reading the start of the server's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerProgress {
    NeedMore,
    Hello(ServerHello),
    /// Not a ServerHello (or too large or malformed to read): version and cipher stay unknown.
    NotHello,
}

/// Reads the ServerHello at the start of the server's `stream`, past a HelloRetryRequest and
/// the change_cipher_spec records that may follow it.
pub fn server_hello(stream: &[u8]) -> ServerProgress {
    let mut hs: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    loop {
        while hs.len() >= 4 {
            let need = 4 + u32::from_be_bytes([0, hs[1], hs[2], hs[3]]) as usize;
            if hs[0] != 2 || need > MAX_HELLO {
                return ServerProgress::NotHello;
            }
            if hs.len() < need {
                break;
            }
            match decode_server(&hs[..need]) {
                Some(h) if h.random == HRR_RANDOM => {
                    hs.drain(..need);
                }
                Some(h) => return ServerProgress::Hello(h),
                None => return ServerProgress::NotHello,
            }
        }
        let Some(head) = stream.get(pos..pos + 5) else {
            return ServerProgress::NeedMore;
        };
        if head[1] != 0x03 || !matches!(head[0], 0x14 | 0x16) {
            return ServerProgress::NotHello;
        }
        let len = u16::from_be_bytes([head[3], head[4]]) as usize;
        let Some(body) = stream.get(pos + 5..pos + 5 + len) else {
            return ServerProgress::NeedMore;
        };
        if head[0] == 0x16 {
            hs.extend_from_slice(body);
        }
        pos += 5 + len;
        if hs.len() > MAX_HELLO || pos > MAX_HELLO {
            return ServerProgress::NotHello;
        }
    }
}

fn decode_server(msg: &[u8]) -> Option<ServerHello> {
    let (_, parsed) = parse_tls_message_handshake(msg).ok()?;
    let TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)) = parsed else {
        return None;
    };
    let mut hello = ServerHello {
        version: sh.version.0,
        cipher: sh.cipher.0,
        random: sh.random.try_into().ok()?,
        etm: false,
    };
    if let Some(ext) = sh.ext
        && let Ok((_, exts)) = parse_tls_server_hello_extensions(ext)
    {
        for e in exts {
            match e {
                TlsExtension::SupportedVersions(v) => {
                    if let Some(v) = v.first() {
                        hello.version = v.0;
                    }
                }
                // tls-parser 0.12.2 reads a ServerHello's type 21 (padding) as EncryptThenMac and
                // leaves the real one (22, RFC 7366) unknown.
                TlsExtension::Unknown(t, _) if t.0 == 22 => hello.etm = true,
                _ => {}
            }
        }
    }
    Some(hello)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Not enough bytes yet.
    NeedMore,
    /// The ClientHello, and how many stream bytes its records took.
    Hello(ClientHello, usize),
    /// Not a TLS ClientHello (or one too large or malformed to read).
    NotHello,
}

/// Does this stream start like a TLS handshake record? Needs 3 bytes.
pub fn looks_like_tls(start: &[u8]) -> bool {
    start.len() >= 3 && start[0] == 0x16 && start[1] == 0x03 && start[2] <= 0x04
}

/// Reads the ClientHello at the start of `stream`.
pub fn client_hello(stream: &[u8]) -> Progress {
    let mut hs: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    loop {
        if hs.len() >= 4 {
            let need = 4 + u32::from_be_bytes([0, hs[1], hs[2], hs[3]]) as usize;
            if hs[0] != 1 || need > MAX_HELLO {
                return Progress::NotHello;
            }
            if hs.len() >= need {
                return match decode(&hs[..need]) {
                    Some(h) => Progress::Hello(h, pos),
                    None => Progress::NotHello,
                };
            }
        }
        let Some(head) = stream.get(pos..pos + 5) else {
            return Progress::NeedMore;
        };
        if head[0] != 0x16 || head[1] != 0x03 {
            return Progress::NotHello;
        }
        let len = u16::from_be_bytes([head[3], head[4]]) as usize;
        let Some(body) = stream.get(pos + 5..pos + 5 + len) else {
            return Progress::NeedMore;
        };
        hs.extend_from_slice(body);
        pos += 5 + len;
        if hs.len() > MAX_HELLO {
            return Progress::NotHello;
        }
    }
}

/// A ClientHello from one whole handshake message (type, 3-byte length, body), as QUIC carries it in
/// CRYPTO frames without the record layer.
pub fn hello_from_handshake(msg: &[u8]) -> Option<ClientHello> {
    decode(msg)
}

fn decode(msg: &[u8]) -> Option<ClientHello> {
    let (_, parsed) = parse_tls_message_handshake(msg).ok()?;
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = parsed else {
        return None;
    };
    let mut hello = ClientHello {
        random: ch.random.try_into().ok()?,
        ..ClientHello::default()
    };
    let Some(ext) = ch.ext else {
        return Some(hello);
    };
    let (_, exts) = parse_tls_client_hello_extensions(ext).ok()?;
    for e in exts {
        match e {
            TlsExtension::SNI(names) => {
                if let Some((_, name)) = names.first() {
                    hello.sni = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            TlsExtension::ALPN(protos) => {
                hello.alpn = protos
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
            }
            TlsExtension::EarlyData(_) => hello.early_data = true,
            TlsExtension::Unknown(t, _) if t.0 == 0xfe0d => hello.ech = true,
            _ => {}
        }
    }
    Some(hello)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal TLS 1.2-style ClientHello record with SNI and ALPN, split into records of at most
    /// `frag` handshake bytes.
    pub(crate) fn hello_records(sni: &str, alpn: &[&str], frag: usize) -> Vec<u8> {
        let mut ext = Vec::new();
        let mut sni_list = vec![0u8];
        sni_list.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        sni_list.extend_from_slice(sni.as_bytes());
        ext.extend_from_slice(&0u16.to_be_bytes());
        ext.extend_from_slice(&((sni_list.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(sni_list.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sni_list);
        let mut protos = Vec::new();
        for p in alpn {
            protos.push(p.len() as u8);
            protos.extend_from_slice(p.as_bytes());
        }
        ext.extend_from_slice(&16u16.to_be_bytes());
        ext.extend_from_slice(&((protos.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(protos.len() as u16).to_be_bytes());
        ext.extend_from_slice(&protos);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1u8];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut out = Vec::new();
        for chunk in hs.chunks(frag.max(1)) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn sni_and_alpn_in_one_or_many_records() {
        for frag in [1000, 50, 7] {
            let recs = hello_records("tls.example.net", &["h2", "http/1.1"], frag);
            let mut stream = recs.clone();
            stream.extend_from_slice(&[0x17, 0x03, 0x03, 0, 1, 0xaa]);
            match client_hello(&stream) {
                Progress::Hello(h, used) => {
                    assert_eq!(h.sni.as_deref(), Some("tls.example.net"));
                    assert_eq!(h.alpn, vec!["h2", "http/1.1"]);
                    assert_eq!(used, recs.len());
                }
                other => panic!("frag {frag}: {other:?}"),
            }
            for cut in 0..recs.len() {
                assert_eq!(client_hello(&recs[..cut]), Progress::NeedMore, "cut {cut}");
            }
        }
    }

    #[test]
    fn not_a_hello() {
        assert_eq!(client_hello(b"GET / HTTP/1.1\r\n"), Progress::NotHello);
        assert_eq!(
            client_hello(&[0x16, 0x03, 0x01, 0, 4, 2, 0, 0, 0]),
            Progress::NotHello
        );
        let huge = [0x16, 0x03, 0x01, 0, 4, 1, 0xff, 0xff, 0xff];
        assert_eq!(client_hello(&huge), Progress::NotHello);
        assert!(looks_like_tls(&[0x16, 0x03, 0x01]));
        assert!(!looks_like_tls(b"POST"));
    }
}
