//! The ADB transport's wire format: the 24-byte message header (command, two arguments, payload length,
//! checksum, magic), its encoding and its validation, and reading one message off a socket.
//!
//! Protocol facts come from AOSP's protocol.txt and /work/shared/notes/adb-wire-facts.md: the data
//! checksum is sent (as the byte sum old peers expect) but never checked. A header is validated before
//! its payload is allocated: the length is bounded by the negotiated maximum.
//!
//! Must not touch: streams and their flow control (`stream`), what a message means to a connection
//! (`connection`), services.

use tokio::io::AsyncReadExt;

pub const A_CNXN: u32 = u32::from_le_bytes(*b"CNXN");
pub const A_OPEN: u32 = u32::from_le_bytes(*b"OPEN");
pub const A_OKAY: u32 = u32::from_le_bytes(*b"OKAY");
pub const A_WRTE: u32 = u32::from_le_bytes(*b"WRTE");
pub const A_CLSE: u32 = u32::from_le_bytes(*b"CLSE");
pub const A_AUTH: u32 = u32::from_le_bytes(*b"AUTH");
pub const A_STLS: u32 = u32::from_le_bytes(*b"STLS");
/// Protocol version with checksums optional (what current adbd and the server both send).
pub const A_VERSION: u32 = 0x0100_0001;
/// Largest payload we accept and advertise: what the server offers too (1 MiB).
pub const MAX_PAYLOAD: usize = 1024 * 1024;
pub const HEADER_LEN: usize = 24;

/// One ADB message.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Message {
    // Payloads may carry identifiers (shell output); show only their size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}({:#x}, {:#x}, {} bytes)",
            command_name(self.command),
            self.arg0,
            self.arg1,
            self.payload.len()
        )
    }
}

fn command_name(command: u32) -> String {
    let bytes = command.to_le_bytes();
    if bytes.iter().all(|b| b.is_ascii_uppercase()) {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        format!("{command:#010x}")
    }
}

/// A parsed message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub length: u32,
}

/// Why a peer's bytes are not an ADB message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("bad magic for command {0:#010x}")]
    BadMagic(u32),
    #[error("unknown command {0:#010x}")]
    UnknownCommand(u32),
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLong { len: u32, max: usize },
}

impl Message {
    pub fn new(command: u32, arg0: u32, arg1: u32, payload: Vec<u8>) -> Self {
        Self {
            command,
            arg0,
            arg1,
            payload,
        }
    }

    /// Header + payload as sent on the wire (checksum = byte sum, as old peers expect).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        let checksum = self
            .payload
            .iter()
            .fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)));
        for word in [
            self.command,
            self.arg0,
            self.arg1,
            self.payload.len() as u32,
            checksum,
            self.command ^ 0xffff_ffff,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.payload);
        out
    }
}

/// Parses and validates a header; `max_payload` bounds the length before anything is allocated.
pub fn parse_header(bytes: &[u8; HEADER_LEN], max_payload: usize) -> Result<Header, CodecError> {
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let command = word(0);
    let length = word(12);
    if word(20) != command ^ 0xffff_ffff {
        return Err(CodecError::BadMagic(command));
    }
    if ![A_CNXN, A_OPEN, A_OKAY, A_WRTE, A_CLSE, A_AUTH, A_STLS].contains(&command) {
        return Err(CodecError::UnknownCommand(command));
    }
    if length as usize > max_payload {
        return Err(CodecError::TooLong {
            len: length,
            max: max_payload,
        });
    }
    Ok(Header {
        command,
        arg0: word(4),
        arg1: word(8),
        length,
    })
}

/// Reads one message; `None` on a clean EOF at a message boundary.
pub(super) async fn read_message<R: AsyncReadExt + Unpin>(
    reader: &mut R,
    max_payload: usize,
) -> Result<Option<Message>, ConnError> {
    let mut header = [0u8; HEADER_LEN];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ConnError::Io(e)),
    }
    let h = parse_header(&header, max_payload)?;
    let mut payload = vec![0u8; h.length as usize];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(ConnError::Io)?;
    Ok(Some(Message::new(h.command, h.arg0, h.arg1, payload)))
}

#[derive(Debug, thiserror::Error)]
pub(super) enum ConnError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("i/o: {0}")]
    Io(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(m: &Message) -> [u8; HEADER_LEN] {
        m.encode()[..HEADER_LEN].try_into().unwrap()
    }

    #[test]
    fn encode_parse_round_trip() {
        let m = Message::new(A_WRTE, 7, 9, b"hello".to_vec());
        let bytes = m.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 5);
        assert_eq!(&bytes[0..4], b"WRTE");
        // checksum is the byte sum
        let sum: u32 = b"hello".iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), sum);
        let h = parse_header(&header_bytes(&m), MAX_PAYLOAD).unwrap();
        assert_eq!(
            h,
            Header {
                command: A_WRTE,
                arg0: 7,
                arg1: 9,
                length: 5
            }
        );
    }

    #[test]
    fn garbage_headers_are_rejected_without_panic() {
        let mut bad = header_bytes(&Message::new(A_OKAY, 1, 2, vec![]));
        bad[20] ^= 1;
        assert!(matches!(
            parse_header(&bad, MAX_PAYLOAD),
            Err(CodecError::BadMagic(_))
        ));
        let unknown = header_bytes(&Message::new(0x1234_5678, 0, 0, vec![]));
        assert!(matches!(
            parse_header(&unknown, MAX_PAYLOAD),
            Err(CodecError::UnknownCommand(0x1234_5678))
        ));
        let mut long = header_bytes(&Message::new(A_WRTE, 1, 1, vec![]));
        long[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_header(&long, MAX_PAYLOAD),
            Err(CodecError::TooLong { .. })
        ));
        // Pseudo-random garbage: never panics, almost never parses.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            let mut b = [0u8; HEADER_LEN];
            for byte in &mut b {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *byte = x as u8;
            }
            let _ = parse_header(&b, MAX_PAYLOAD);
        }
    }

    #[tokio::test]
    async fn read_message_handles_truncation() {
        let m = Message::new(A_OPEN, 1, 0, b"shell:ls\0".to_vec()).encode();
        let mut cut = &m[..m.len() - 2];
        assert!(read_message(&mut cut, MAX_PAYLOAD).await.is_err());
        let mut whole = &m[..];
        let got = read_message(&mut whole, MAX_PAYLOAD)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.payload, b"shell:ls\0");
        let mut empty: &[u8] = &[];
        assert!(
            read_message(&mut empty, MAX_PAYLOAD)
                .await
                .unwrap()
                .is_none()
        );
    }
}
