//! The sync protocol (`sync:` service) for push, pull and stat.
//!
//! Owns: sync requests (4-byte id + u32 LE length + data) and the device's replies, read as a byte stream
//! with every length bounded. Must not touch: opening the service (`device` does, then hands the stream
//! here). Works on any async byte stream so the reply parsing can be checked on byte strings.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{AdbError, sanitize};

/// adbd's own bound on one DATA chunk; tattle sends no more.
const CHUNK: usize = 64 * 1024;
/// Bound on a DATA chunk or FAIL message accepted from the device (generous: only to stop lying lengths).
const MAX_REPLY: usize = 1024 * 1024;
/// adbd refuses longer paths.
const MAX_PATH: usize = 1024;
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// What `stat` says about a remote path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteStat {
    /// Type and permission bits, as in `st_mode`.
    pub mode: u32,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
}

impl RemoteStat {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
}

/// One sync exchange on `stream`, for device `serial`. A stream that ends early means the device went away.
pub(crate) struct Sync<'a, S> {
    pub stream: &'a mut S,
    pub serial: &'a str,
    pub during: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sync<'_, S> {
    fn lost(&self) -> AdbError {
        AdbError::DeviceLost {
            serial: self.serial.to_string(),
            during: self.during.clone(),
        }
    }

    async fn request(&mut self, id: &[u8; 4], data: &[u8]) -> Result<(), AdbError> {
        let mut buf = Vec::with_capacity(8 + data.len());
        buf.extend_from_slice(id);
        buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        buf.extend_from_slice(data);
        self.write(&buf).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), AdbError> {
        match self.stream.write_all(bytes).await {
            Ok(()) => Ok(()),
            Err(e) if is_disconnect(&e) => Err(self.lost()),
            Err(e) => Err(e.into()),
        }
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), AdbError> {
        match self.stream.read_exact(buf).await {
            Ok(_) => Ok(()),
            Err(e) if is_disconnect(&e) => Err(self.lost()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads an 8-byte reply header: id and the u32 that follows it.
    async fn header(&mut self) -> Result<([u8; 4], u32), AdbError> {
        let mut h = [0u8; 8];
        self.read_exact(&mut h).await?;
        Ok((
            [h[0], h[1], h[2], h[3]],
            u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
        ))
    }

    async fn body(&mut self, len: u32) -> Result<Vec<u8>, AdbError> {
        let len = len as usize;
        if len > MAX_REPLY {
            return Err(AdbError::protocol(format!(
                "sync reply of {len} bytes during {}",
                self.during
            )));
        }
        let mut body = vec![0u8; len];
        self.read_exact(&mut body).await?;
        Ok(body)
    }

    async fn fail(&mut self, len: u32) -> AdbError {
        match self.body(len).await {
            Ok(msg) => AdbError::Failed {
                message: format!("{}: {}", self.during, sanitize(&msg)),
            },
            Err(e) => e,
        }
    }

    fn check_path(&self, path: &str) -> Result<(), AdbError> {
        if path.is_empty() || path.len() > MAX_PATH || path.contains('\0') {
            return Err(AdbError::InvalidRequest {
                message: format!(
                    "remote path of {} bytes (must be 1..={MAX_PATH}, no NUL)",
                    path.len()
                ),
            });
        }
        Ok(())
    }

    /// Ends the sync session politely; the device may already be gone, which is fine then.
    pub async fn quit(&mut self) {
        let _ = self.request(b"QUIT", &[]).await;
    }

    pub async fn push(
        &mut self,
        data: &[u8],
        remote_path: &str,
        mode: u32,
        mtime: u32,
    ) -> Result<(), AdbError> {
        self.check_path(remote_path)?;
        // adbd reads the file type from the mode; without one it would not know this is a regular file.
        let mode = if mode & S_IFMT == 0 {
            mode | S_IFREG
        } else {
            mode
        };
        self.request(b"SEND", format!("{remote_path},{mode}").as_bytes())
            .await?;
        for chunk in data.chunks(CHUNK) {
            self.request(b"DATA", chunk).await?;
        }
        let mut done = *b"DONE\0\0\0\0";
        done[4..].copy_from_slice(&mtime.to_le_bytes());
        self.write(&done).await?;
        let (id, len) = self.header().await?;
        match &id {
            b"OKAY" => Ok(()),
            b"FAIL" => Err(self.fail(len).await),
            other => Err(AdbError::protocol(format!(
                "sync SEND answered {:?}",
                sanitize(other)
            ))),
        }
    }

    pub async fn pull(&mut self, remote_path: &str, limit: u64) -> Result<Vec<u8>, AdbError> {
        let mut out = Vec::new();
        self.pull_into(remote_path, limit, &mut out).await?;
        Ok(out)
    }

    /// `pull` into `out`, chunk by chunk: what arrived stays there when the exchange is cut.
    pub async fn pull_into(
        &mut self,
        remote_path: &str,
        limit: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), AdbError> {
        self.check_path(remote_path)?;
        self.request(b"RECV", remote_path.as_bytes()).await?;
        let start = out.len();
        loop {
            let (id, len) = self.header().await?;
            match &id {
                b"DATA" => {
                    if (out.len() - start) as u64 + len as u64 > limit {
                        return Err(AdbError::TooLarge {
                            what: format!("remote file {remote_path}"),
                            limit,
                        });
                    }
                    let chunk = self.body(len).await?;
                    out.extend_from_slice(&chunk);
                }
                b"DONE" => return Ok(()),
                b"FAIL" => return Err(self.fail(len).await),
                other => {
                    return Err(AdbError::protocol(format!(
                        "sync RECV answered {:?}",
                        sanitize(other)
                    )));
                }
            }
        }
    }

    /// `STA2` when the device has `stat_v2` (64-bit sizes, errno), else `STAT` v1.
    pub async fn stat(
        &mut self,
        remote_path: &str,
        v2: bool,
    ) -> Result<Option<RemoteStat>, AdbError> {
        self.check_path(remote_path)?;
        if v2 {
            self.request(b"STA2", remote_path.as_bytes()).await?;
            let mut r = [0u8; 72];
            self.read_exact(&mut r).await?;
            if &r[..4] != b"STA2" {
                return Err(AdbError::protocol(format!(
                    "sync STA2 answered {:?}",
                    sanitize(&r[..4])
                )));
            }
            let u32_at = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().unwrap_or([0; 4]));
            let u64_at = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().unwrap_or([0; 8]));
            let errno = u32_at(4);
            // Layout after id+errno: dev u64 @8, ino u64 @16, mode @24, nlink @28, uid @32, gid @36,
            // size u64 @40, atime @48, mtime @56, ctime @64.
            match errno {
                0 => Ok(Some(RemoteStat {
                    mode: u32_at(24),
                    size: u64_at(40),
                    mtime: u64_at(56) as i64,
                })),
                // ENOENT, ENOTDIR: the path does not exist.
                2 | 20 => Ok(None),
                e => Err(AdbError::Failed {
                    message: format!("{}: errno {e}", self.during),
                }),
            }
        } else {
            self.request(b"STAT", remote_path.as_bytes()).await?;
            let mut r = [0u8; 16];
            self.read_exact(&mut r).await?;
            if &r[..4] != b"STAT" {
                return Err(AdbError::protocol(format!(
                    "sync STAT answered {:?}",
                    sanitize(&r[..4])
                )));
            }
            let field = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
            // v1 cannot tell "missing" from "no access": both are all zeroes.
            let (mode, size, mtime) = (field(4), field(8), field(12));
            if mode == 0 && size == 0 && mtime == 0 {
                return Ok(None);
            }
            Ok(Some(RemoteStat {
                mode,
                size: size as u64,
                mtime: mtime as i64,
            }))
        }
    }
}

fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    /// Runs `f` against a stream whose device side has `device_bytes` queued, returns the result and what
    /// the client wrote.
    async fn with_device<T>(
        device_bytes: Vec<u8>,
        f: impl AsyncFnOnce(&mut Sync<'_, tokio::io::DuplexStream>) -> T,
    ) -> (T, Vec<u8>) {
        let (mut client, mut device) = tokio::io::duplex(1 << 20);
        device.write_all(&device_bytes).await.unwrap();
        // The device side says everything it will say, then its write half ends: a short reply is EOF.
        device.shutdown().await.unwrap();
        let result = {
            let mut s = Sync {
                stream: &mut client,
                serial: "s",
                during: "test".into(),
            };
            // A parser that waits for bytes that never come must fail the test, not hang it.
            tokio::time::timeout(std::time::Duration::from_secs(5), f(&mut s))
                .await
                .expect("sync exchange hung")
        };
        drop(client);
        let mut written = Vec::new();
        device.read_to_end(&mut written).await.unwrap();
        (result, written)
    }

    #[tokio::test]
    async fn pull_reassembles_and_bounds() {
        let mut dev = reply(b"DATA", b"hello ");
        dev.extend(reply(b"DATA", b"world"));
        dev.extend(reply(b"DONE", b""));
        let (r, written) = with_device(dev.clone(), async |s| s.pull("/sdcard/x", 100).await).await;
        assert_eq!(r.unwrap(), b"hello world");
        assert_eq!(written, reply(b"RECV", b"/sdcard/x"));
        let (r, _) = with_device(dev, async |s| s.pull("/sdcard/x", 8).await).await;
        assert!(matches!(r, Err(AdbError::TooLarge { .. })));
    }

    #[tokio::test]
    async fn pull_errors() {
        let (r, _) = with_device(reply(b"FAIL", b"No such file"), async |s| {
            s.pull("/x", 10).await
        })
        .await;
        assert!(matches!(r, Err(AdbError::Failed { message }) if message.contains("No such file")));
        let (r, _) = with_device(reply(b"DATA", b"cut"), async |s| s.pull("/x", 10).await).await;
        assert!(matches!(r, Err(AdbError::DeviceLost { .. })));
        let (r, _) = with_device(b"JUNKJUNKJUNK".to_vec(), async |s| s.pull("/x", 10).await).await;
        assert!(matches!(r, Err(AdbError::Protocol { .. })));
        let mut lying = b"DATA".to_vec();
        lying.extend_from_slice(&u32::MAX.to_le_bytes());
        let (r, _) = with_device(lying, async |s| s.pull("/x", u64::MAX).await).await;
        assert!(matches!(r, Err(AdbError::Protocol { .. })));
    }

    #[tokio::test]
    async fn push_frames_chunks_and_mode() {
        let data = vec![7u8; CHUNK + 10];
        let (r, written) = with_device(reply(b"OKAY", b""), async |s| {
            s.push(&data, "/data/local/tmp/f", 0o644, 5).await
        })
        .await;
        r.unwrap();
        let mut expected = reply(b"SEND", b"/data/local/tmp/f,33188");
        expected.extend(reply(b"DATA", &data[..CHUNK]));
        expected.extend(reply(b"DATA", &data[CHUNK..]));
        expected.extend(b"DONE\x05\0\0\0");
        assert_eq!(written, expected);
        let (r, _) = with_device(reply(b"FAIL", b"Read-only file system"), async |s| {
            s.push(b"x", "/system/f", 0o644, 0).await
        })
        .await;
        assert!(matches!(r, Err(AdbError::Failed { .. })));
    }

    #[tokio::test]
    async fn stat_v1_and_v2() {
        let mut sta2 = b"STA2".to_vec();
        sta2.extend_from_slice(&0u32.to_le_bytes()); // errno
        sta2.extend_from_slice(&[0; 16]); // dev, ino
        sta2.extend_from_slice(&(S_IFREG | 0o644).to_le_bytes());
        sta2.extend_from_slice(&[0; 12]); // nlink, uid, gid
        sta2.extend_from_slice(&300_000u64.to_le_bytes());
        sta2.extend_from_slice(&[0; 8]); // atime
        sta2.extend_from_slice(&1_700_000_000i64.to_le_bytes());
        sta2.extend_from_slice(&[0; 8]); // ctime
        assert_eq!(sta2.len(), 72);
        let (r, _) = with_device(sta2, async |s| s.stat("/f", true).await).await;
        let st = r.unwrap().unwrap();
        assert!(st.is_file() && !st.is_dir());
        assert_eq!((st.size, st.mtime), (300_000, 1_700_000_000));

        let mut missing = b"STA2".to_vec();
        missing.extend_from_slice(&2u32.to_le_bytes());
        missing.extend_from_slice(&[0; 64]);
        let (r, _) = with_device(missing, async |s| s.stat("/nope", true).await).await;
        assert_eq!(r.unwrap(), None);

        let mut v1 = b"STAT".to_vec();
        v1.extend_from_slice(&(S_IFDIR | 0o755).to_le_bytes());
        v1.extend_from_slice(&4096u32.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        let (r, _) = with_device(v1, async |s| s.stat("/d", false).await).await;
        assert!(r.unwrap().unwrap().is_dir());
        let (r, _) = with_device([b"STAT".as_slice(), &[0; 12]].concat(), async |s| {
            s.stat("/n", false).await
        })
        .await;
        assert_eq!(r.unwrap(), None);
    }

    #[tokio::test]
    async fn bad_paths_are_refused_before_sending() {
        let (r, written) = with_device(vec![], async |s| s.pull("", 1).await).await;
        assert!(matches!(r, Err(AdbError::InvalidRequest { .. })));
        assert!(written.is_empty());
    }
}
