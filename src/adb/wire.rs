//! Smart-socket framing: a request is 4 hex digits of length plus the request text; the server answers
//! `OKAY` or `FAIL` + hex4 length + message. Also the one TCP connection to the server that carries it.
//!
//! Owns: encoding/decoding of that framing and mapping the server's FAIL texts to `AdbError`. Must not
//! touch: device services (shell, sync) beyond handing over the raw stream once the server said OKAY.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        let mut tag = [0u8; 4];
        self.read_exact_or_eof(&mut tag, "the server's reply")
            .await?;
        match &tag {
            b"OKAY" => Ok(()),
            b"FAIL" => {
                let message = self.read_hex4_body().await?;
                Err(classify_fail(&message, serial))
            }
            other => Err(AdbError::protocol(format!(
                "expected OKAY or FAIL, got {:?}",
                sanitize(other)
            ))),
        }
    }

    /// A hex4-length-prefixed body (at most 64 KiB, so bounded by construction).
    pub(crate) async fn read_hex4_body(&mut self) -> Result<Vec<u8>, AdbError> {
        let mut digits = [0u8; 4];
        self.read_exact_or_eof(&mut digits, "a reply length")
            .await?;
        let len = parse_hex4(&digits)?;
        let mut body = vec![0u8; len];
        self.read_exact_or_eof(&mut body, "a reply body").await?;
        Ok(body)
    }

    pub(crate) async fn read_exact_or_eof(
        &mut self,
        buf: &mut [u8],
        what: &str,
    ) -> Result<(), AdbError> {
        match self.stream.read_exact(buf).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(AdbError::protocol(
                format!("the server closed the connection while sending {what}"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Everything until the server closes, bounded.
    pub(crate) async fn read_to_end_bounded(&mut self, limit: usize) -> Result<Vec<u8>, AdbError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = self.stream.read(&mut buf).await?;
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
