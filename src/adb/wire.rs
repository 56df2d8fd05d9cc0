//! Smart-socket framing: a request is 4 hex digits of length plus the request text; the server answers
//! `OKAY` or `FAIL` + hex4 length + message. Also the one TCP connection to the server that carries it.
//!
//! Owns: encoding/decoding of that framing and mapping the server's FAIL texts to `AdbError`. Must not
//! touch: device services (shell, sync) beyond handing over the raw stream once the server said OKAY.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{AdbError, sanitize};

/// The largest request or reply body hex4 can describe.
pub const MAX_HEX4: usize = 0xFFFF;

/// `000chost:version` for `host:version`. Fails for an empty request or one longer than hex4 allows.
pub fn encode_request(request: &str) -> Result<Vec<u8>, AdbError> {
    if request.is_empty() || request.len() > MAX_HEX4 {
        return Err(AdbError::InvalidRequest {
            message: format!(
                "request of {} bytes (must be 1..={MAX_HEX4})",
                request.len()
            ),
        });
    }
    let mut out = format!("{:04x}", request.len()).into_bytes();
    out.extend_from_slice(request.as_bytes());
    Ok(out)
}

/// Four ASCII hex digits (either case) to a length.
pub fn parse_hex4(digits: &[u8; 4]) -> Result<usize, AdbError> {
    let mut value = 0usize;
    for &d in digits {
        let v = (d as char)
            .to_digit(16)
            .ok_or_else(|| AdbError::protocol(format!("bad hex length {:?}", sanitize(digits))))?;
        value = value * 16 + v as usize;
    }
    Ok(value)
}

/// What a FAIL message means, for the device `serial` the request was about (if any).
pub fn classify_fail(message: &[u8], serial: Option<&str>) -> AdbError {
    let text = sanitize(message);
    let lower = text.to_ascii_lowercase();
    if let Some(serial) = serial {
        let serial = serial.to_string();
        if lower.contains("not found") || lower.contains("no devices/emulators") {
            return AdbError::DeviceNotFound { serial };
        }
        if lower.contains("offline") {
            return AdbError::DeviceOffline { serial };
        }
        if lower.contains("unauthorized") || lower.contains("authorizing") {
            return AdbError::Unauthorized { serial };
        }
    }
    AdbError::Failed { message: text }
}

/// One connection to the adb server. Each request that is not a `host:transport` switch uses a fresh one,
/// as the server closes it after answering.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> Result<Conn, AdbError> {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Shell and sync exchanges are small request/response steps: don't let Nagle delay them.
                let _ = stream.set_nodelay(true);
                Ok(Conn { stream })
            }
            Err(e) => Err(AdbError::ServerUnreachable {
                addr,
                reason: e.to_string(),
            }),
        }
    }

    pub(crate) async fn send(&mut self, request: &str) -> Result<(), AdbError> {
        let bytes = encode_request(request)?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// Reads OKAY, or FAIL + message turned into an error.
    pub(crate) async fn status(&mut self, serial: Option<&str>) -> Result<(), AdbError> {
        read_status(&mut self.stream, serial).await
    }

    /// A hex4-length-prefixed body (at most 64 KiB, so bounded by construction).
    pub(crate) async fn read_hex4_body(&mut self) -> Result<Vec<u8>, AdbError> {
        read_hex4_body(&mut self.stream).await
    }

    /// Everything until the server closes, bounded.
    pub(crate) async fn read_to_end_bounded(&mut self, limit: usize) -> Result<Vec<u8>, AdbError> {
        read_to_end_bounded(&mut self.stream, limit).await
    }
}

// The reading half of the framing works on any byte stream, so that it can be tested (and fuzzed) on
// in-memory streams split at every possible point; `Conn` applies it to its TCP stream.

/// Reads the server's answer to a request: `OKAY`, or `FAIL` + hex4 length + message, turned into an
/// error for the device `serial` the request was about (see [`classify_fail`]).
pub async fn read_status<R: AsyncRead + Unpin>(
    r: &mut R,
    serial: Option<&str>,
) -> Result<(), AdbError> {
    let mut tag = [0u8; 4];
    read_exact_or_eof(r, &mut tag, "the server's reply").await?;
    match &tag {
        b"OKAY" => Ok(()),
        b"FAIL" => {
            let message = read_hex4_body(r).await?;
            Err(classify_fail(&message, serial))
        }
        other => Err(AdbError::protocol(format!(
            "expected OKAY or FAIL, got {:?}",
            sanitize(other)
        ))),
    }
}

/// Reads a hex4-length-prefixed body. The length is at most [`MAX_HEX4`] by construction, and the buffer
/// is made only once the four digits were read and checked.
pub async fn read_hex4_body<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, AdbError> {
    let mut digits = [0u8; 4];
    read_exact_or_eof(r, &mut digits, "a reply length").await?;
    let len = parse_hex4(&digits)?;
    let mut body = vec![0u8; len];
    read_exact_or_eof(r, &mut body, "a reply body").await?;
    Ok(body)
}

/// Reads everything until the stream ends, failing `TooLarge` as soon as more than `limit` bytes came.
pub async fn read_to_end_bounded<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Vec<u8>, AdbError> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > limit {
            return Err(AdbError::TooLarge {
                what: "reply from the adb server".into(),
                limit: limit as u64,
            });
        }
        out.extend_from_slice(&buf[..n]);
    }
}

async fn read_exact_or_eof<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    what: &str,
) -> Result<(), AdbError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(AdbError::protocol(
            format!("the server closed the connection while sending {what}"),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex4_round_trip() {
        assert_eq!(encode_request("host:version").unwrap(), b"000chost:version");
        assert_eq!(parse_hex4(b"000c").unwrap(), 12);
        assert_eq!(parse_hex4(b"FFff").unwrap(), 0xFFFF);
        assert!(parse_hex4(b"00g0").is_err());
        assert!(parse_hex4(b"-001").is_err());
        assert!(encode_request("").is_err());
        assert!(encode_request(&"x".repeat(MAX_HEX4 + 1)).is_err());
        assert_eq!(
            &encode_request(&"x".repeat(MAX_HEX4)).unwrap()[..4],
            b"ffff"
        );
    }

    /// Drives one of the readers over an in-memory stream (`&[u8]` ends like a closed socket).
    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn replies_read_from_any_stream() {
        let mut r: &[u8] = b"OKAY000bdevice\tokay";
        run(read_status(&mut r, None)).unwrap();
        assert_eq!(run(read_hex4_body(&mut r)).unwrap(), b"device\tokay");
        assert!(r.is_empty());
        let mut r: &[u8] = b"FAIL0006closed";
        assert!(matches!(
            run(read_status(&mut r, Some("s"))),
            Err(AdbError::Failed { message }) if message == "closed"
        ));
        let mut r: &[u8] = b"HTTP/1.1";
        assert!(matches!(
            run(read_status(&mut r, None)),
            Err(AdbError::Protocol { .. })
        ));
        // A body shorter than its length, or no length at all, is the server closing mid-reply.
        for short in [&b"OKAY0010abc"[..], b"OKAY00", b"OK"] {
            let mut r = short;
            let got = run(async {
                read_status(&mut r, None).await?;
                read_hex4_body(&mut r).await
            });
            assert!(
                matches!(&got, Err(AdbError::Protocol { message }) if message.contains("closed")),
                "{got:?}"
            );
        }
        let mut r: &[u8] = b"0123456789";
        assert_eq!(run(read_to_end_bounded(&mut r, 10)).unwrap(), b"0123456789");
        let mut r: &[u8] = b"0123456789";
        assert!(matches!(
            run(read_to_end_bounded(&mut r, 9)),
            Err(AdbError::TooLarge { limit: 9, .. })
        ));
    }

    #[test]
    fn fail_messages_map_to_device_errors() {
        let s = Some("127.0.0.1:7001");
        assert!(matches!(
            classify_fail(b"device '127.0.0.1:7001' not found", s),
            AdbError::DeviceNotFound { .. }
        ));
        assert!(matches!(
            classify_fail(b"no devices/emulators found", s),
            AdbError::DeviceNotFound { .. }
        ));
        assert!(matches!(
            classify_fail(b"device offline", s),
            AdbError::DeviceOffline { .. }
        ));
        assert!(matches!(
            classify_fail(
                b"device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set",
                s
            ),
            AdbError::Unauthorized { .. }
        ));
        assert!(matches!(
            classify_fail(b"closed", s),
            AdbError::Failed { message } if message == "closed"
        ));
        assert!(matches!(
            classify_fail(b"device offline", None),
            AdbError::Failed { .. }
        ));
    }
}
