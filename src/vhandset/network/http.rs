//! HTTP/1.1 over any byte stream, both ends: the handset's client request and the sinks' request reader
//! and canned answers (`204` for connectivity checks, `200` with a small JSON body otherwise).
//!
//! Must not touch: sockets or TLS setup (the caller hands in a connected stream).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The request head a sink accepts; more is a misbehaving peer.
const MAX_HEAD: usize = 64 * 1024;
/// The body a sink reads (and discards); more is cut off.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// What the handset reads of an answer.
const MAX_RESPONSE: usize = 64 * 1024;

/// The bytes of one request as the handset sends it.
pub(super) fn build_request(
    method: &str,
    host: &str,
    path: &[u8],
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// Sends `request` and reads the answer (until the server closes, bounded); returns the status code.
pub(super) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
) -> io::Result<u16> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: the answer is already in.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 || buf.len() + n > MAX_RESPONSE {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&buf) {
        Ok(_) => resp
            .code
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "truncated HTTP answer")),
        Err(e) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad HTTP answer: {e}"),
        )),
    }
}

/// Reads one request fully (bounded), answers it, and closes the write side.
pub(super) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let (head_len, path, body_len, chunked) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // closed before a whole request: nothing to answer
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let mut body_len = 0usize;
                let mut chunked = false;
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        body_len = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = h.value.to_ascii_lowercase().ends_with(b"chunked");
                    }
                }
                break (len, req.path.unwrap_or("/").to_string(), body_len, chunked);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) | Err(_) => {
                stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await?;
                return stream.shutdown().await;
            }
        }
    };
    // Drain the body so the client never sees a reset while still sending.
    let mut have = buf.len() - head_len;
    if chunked {
        let mut tail = buf[head_len..].to_vec();
        while !tail.windows(5).any(|w| w == b"0\r\n\r\n") && have < MAX_BODY {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            have += n;
            tail.extend_from_slice(&chunk[..n]);
            if tail.len() > 16 {
                tail.drain(..tail.len() - 16);
            }
        }
    } else {
        let want = body_len.min(MAX_BODY);
        while have < want {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            have += n;
        }
    }
    let answer: &[u8] = if path
        .split('?')
        .next()
        .is_some_and(|p| p.ends_with("/generate_204"))
    {
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"code\":0}\n"
    };
    stream.write_all(answer).await?;
    stream.flush().await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_answer_roundtrip() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let sink = tokio::spawn(async move { serve(&mut server).await });
        let req = build_request(
            "POST",
            "msg.vendor-cloud.net",
            b"/x?a=1",
            &[("Content-Type".into(), b"text/plain".to_vec())],
            &vec![b'z'; 20_000],
        );
        assert!(req.starts_with(b"POST /x?a=1 HTTP/1.1\r\nHost: msg.vendor-cloud.net\r\n"));
        assert_eq!(exchange(&mut client, &req).await.unwrap(), 200);
        sink.await.unwrap().unwrap();

        let (mut client, mut server) = tokio::io::duplex(4096);
        let sink = tokio::spawn(async move { serve(&mut server).await });
        let req = build_request("GET", "c.gstatic.example", b"/generate_204", &[], b"");
        assert_eq!(exchange(&mut client, &req).await.unwrap(), 204);
        sink.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn garbage_gets_400_not_a_panic() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let sink = tokio::spawn(async move { serve(&mut server).await });
        assert_eq!(
            exchange(&mut client, b"\x00\x01\x02 nonsense\r\n\r\n")
                .await
                .unwrap(),
            400
        );
        sink.await.unwrap().unwrap();
    }
}
