//! The sync protocol (`sync:` service) for push/pull/stat/list, over the handset's in-memory file system.
//!
//! Wire format from AOSP's SYNC.TXT / file_sync_protocol.h and the measured facts: 8-byte requests
//! (id + u32 LE length) that arrive split or merged across WRTEs, so they are parsed as a byte stream;
//! STA2/LST2 replies of 72 bytes; LIS2 entries of 76 bytes + name and a DONE padded to 76 bytes; DATA
//! chunks of at most 64 KiB; SEND ends with DONE carrying the mtime and is answered OKAY or FAIL.
//!
//! Lengths from the host are checked before anything is buffered: paths ≤ 1024 bytes, DATA ≤ 64 KiB,
//! a pushed file ≤ the space left on the handset.
//!
//! Must not touch: the ADB transport (it uses `AdbStream`), command semantics (`shell`).

use std::sync::Arc;

use super::adbd::AdbStream;
use super::shell::fs::{self, FsError, Stat};
use super::shell::{Handset, now_secs};

/// Longest path in a request (SYNC.TXT: 1024).
pub const MAX_PATH: usize = 1024;
/// Largest DATA chunk, both ways.
pub const MAX_DATA: usize = 64 * 1024;

fn id(tag: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*tag)
}

/// A byte-stream view over the sync stream's WRTEs.
struct Reader {
    buf: Vec<u8>,
    pos: usize,
}

impl Reader {
    /// Exactly `n` bytes, or `None` when the host closed the stream first.
    async fn take(&mut self, stream: &mut AdbStream, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() - self.pos < n {
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let data = stream.read().await?;
            self.buf.extend_from_slice(&data);
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Some(out)
    }

    async fn request(&mut self, stream: &mut AdbStream) -> Option<(u32, u32)> {
        let h = self.take(stream, 8).await?;
        Some((
            u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
        ))
    }
}

fn fail(msg: &str) -> Vec<u8> {
    let mut out = id(b"FAIL").to_le_bytes().to_vec();
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(msg.as_bytes());
    out
}

/// The 72-byte STA2/LST2 body after the id (errno, dev, ino, mode, nlink, uid, gid, size, times).
fn stat2_body(st: Result<Stat, FsError>, ino: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(68);
    match st {
        Ok(s) => {
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&0xfd00u64.to_le_bytes());
            out.extend_from_slice(&ino.to_le_bytes());
            out.extend_from_slice(&s.mode.to_le_bytes());
            out.extend_from_slice(&(if s.is_dir { 2u32 } else { 1 }).to_le_bytes());
            out.extend_from_slice(&2000u32.to_le_bytes());
            out.extend_from_slice(&2000u32.to_le_bytes());
            out.extend_from_slice(&s.size.to_le_bytes());
            for _ in 0..3 {
                out.extend_from_slice(&(s.mtime as i64).to_le_bytes());
            }
        }
        Err(e) => {
            out.extend_from_slice(&e.errno().to_le_bytes());
            out.resize(68, 0);
        }
    }
    out
}

/// A stable fake inode number per path.
fn ino(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) & 0xffff_ffff
}

/// Serves one `sync:` stream until QUIT, a protocol error, or the host closing it.
pub async fn serve(stream: &mut AdbStream, handset: &Arc<Handset>) {
    let mut reader = Reader {
        buf: Vec::new(),
        pos: 0,
    };
    loop {
        let Some((cmd, len)) = reader.request(stream).await else {
            return;
        };
        let len = len as usize;
        if cmd == id(b"QUIT") {
            return;
        }
        let known = [
            b"STAT", b"STA2", b"LST2", b"LIST", b"LIS2", b"SEND", b"RECV",
        ];
        if !known.iter().any(|k| id(k) == cmd) {
            let _ = stream.write(&fail("unknown sync command")).await;
            return;
        }
        if len > MAX_PATH {
            let _ = stream.write(&fail("path too long")).await;
            return;
        }
        let Some(raw) = reader.take(stream, len).await else {
            return;
        };
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let reply = if cmd == id(b"SEND") {
            match receive_file(stream, &mut reader, handset, &raw).await {
                Some(r) => r,
                None => return,
            }
        } else if cmd == id(b"RECV") {
            if send_file(stream, handset, &raw).await.is_err() {
                return;
            }
            continue;
        } else if cmd == id(b"LIS2") || cmd == id(b"LIST") {
            list(handset, &raw, cmd == id(b"LIS2"))
        } else if cmd == id(b"STAT") {
            // adbd's v1 STAT answers with lstat (file_sync_service.cpp `do_stat`): a symbolic
            // link is seen as the link, not its target; STA2 (`do_stat_v2`) follows it.
            let st = fs::normalize(&raw, "/").and_then(|p| handset.state().fs.lstat(&p));
            let mut out = id(b"STAT").to_le_bytes().to_vec();
            let (mode, size, mtime) =
                st.map_or((0, 0, 0), |s| (s.mode, s.size as u32, s.mtime as u32));
            for w in [mode, size, mtime] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out
        } else {
            // STA2 / LST2
            let path = fs::normalize(&raw, "/");
            let st = path.clone().and_then(|p| {
                let fs = &handset.state().fs;
                if cmd == id(b"LST2") {
                    fs.lstat(&p)
                } else {
                    fs.stat(&p)
                }
            });
            let mut out = cmd.to_le_bytes().to_vec();
            out.extend(stat2_body(st, path.map_or(0, |p| ino(&p))));
            out
        };
        if stream.write(&reply).await.is_err() {
            return;
        }
    }
}

fn list(handset: &Arc<Handset>, raw: &str, v2: bool) -> Vec<u8> {
    let st = handset.state();
    let entries = fs::normalize(raw, "/").and_then(|p| {
        let mut e = st.fs.list(&p)?;
        let me = st.fs.stat(&p)?;
        e.insert(0, ("..".to_string(), me));
        e.insert(0, (".".to_string(), me));
        Ok(e)
    });
    let mut out = Vec::new();
    for (name, s) in entries.unwrap_or_default() {
        if v2 {
            out.extend_from_slice(&id(b"DNT2").to_le_bytes());
            out.extend(stat2_body(Ok(s), ino(&name)));
        } else {
            out.extend_from_slice(&id(b"DENT").to_le_bytes());
            for w in [s.mode, s.size as u32, s.mtime as u32] {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    // DONE has the size of an entry header, zero-filled; a short one makes `adb ls` hang.
    out.extend_from_slice(&id(b"DONE").to_le_bytes());
    out.extend(std::iter::repeat_n(0u8, if v2 { 72 } else { 16 }));
    out
}

/// SEND: DATA… DONE(mtime) → the reply (OKAY/FAIL), or `None` when the stream died.
async fn receive_file(
    stream: &mut AdbStream,
    reader: &mut Reader,
    handset: &Arc<Handset>,
    spec: &str,
) -> Option<Vec<u8>> {
    let (path, mode) = match spec.rsplit_once(',') {
        Some((p, m)) => (p, m.parse::<u32>().unwrap_or(0o644)),
        None => (spec, 0o644),
    };
    let path = fs::normalize(path, "/");
    let mut error: Option<String> = match &path {
        Ok(p) if handset.state().fs.is_dir(p) => Some(format!("{p}: {}", FsError::IsDir)),
        Ok(_) => None,
        Err(e) => Some(format!("{spec}: {e}")),
    };
    let budget = handset.state().fs.available();
    let mut data: Vec<u8> = Vec::new();
    loop {
        let (cmd, len) = reader.request(stream).await?;
        if cmd == id(b"DATA") {
            let len = len as usize;
            if len > MAX_DATA {
                let _ = stream.write(&fail("data chunk too large")).await;
                return None;
            }
            let chunk = reader.take(stream, len).await?;
            if error.is_none() {
                if data.len() + chunk.len() > budget {
                    error = Some(format!(
                        "{}: {}",
                        path.as_deref().unwrap_or(spec),
                        FsError::NoSpace
                    ));
                    data = Vec::new();
                } else {
                    data.extend_from_slice(&chunk);
                }
            }
        } else if cmd == id(b"DONE") {
            let mtime = if len == 0 { now_secs() } else { u64::from(len) };
            if let (None, Ok(p)) = (&error, &path) {
                let r = handset.state().fs.write(p, data, mode, mtime);
                if let Err(e) = r {
                    error = Some(format!("{p}: {e}"));
                }
            }
            return Some(match error {
                None => {
                    let mut ok = id(b"OKAY").to_le_bytes().to_vec();
                    ok.extend_from_slice(&0u32.to_le_bytes());
                    ok
                }
                Some(msg) => fail(&msg),
            });
        } else {
            let _ = stream.write(&fail("unexpected command during SEND")).await;
            return None;
        }
    }
}

/// RECV: DATA chunks then DONE, or FAIL.
async fn send_file(stream: &mut AdbStream, handset: &Arc<Handset>, raw: &str) -> Result<(), ()> {
    let data =
        fs::normalize(raw, "/").and_then(|p| handset.state().fs.read(&p).map(<[u8]>::to_vec));
    let data = match data {
        Ok(d) => d,
        Err(e) => {
            return stream
                .write(&fail(&format!("{raw}: {e}")))
                .await
                .map_err(|_| ());
        }
    };
    // Several DATA messages per WRTE: fewer round trips, same bytes on the wire for the client.
    let mut batch = Vec::with_capacity(4 * (MAX_DATA + 8));
    for chunk in data.chunks(MAX_DATA) {
        batch.extend_from_slice(&id(b"DATA").to_le_bytes());
        batch.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        batch.extend_from_slice(chunk);
        if batch.len() >= 3 * MAX_DATA {
            stream.write(&batch).await.map_err(|_| ())?;
            batch.clear();
        }
    }
    batch.extend_from_slice(&id(b"DONE").to_le_bytes());
    batch.extend_from_slice(&0u32.to_le_bytes());
    stream.write(&batch).await.map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat2_is_68_bytes_after_the_id() {
        let s = Stat {
            mode: fs::S_IFREG | 0o644,
            size: 300_000,
            mtime: 5,
            is_dir: false,
        };
        let b = stat2_body(Ok(s), 7);
        assert_eq!(b.len(), 68);
        assert_eq!(&b[0..4], &0u32.to_le_bytes());
        assert_eq!(u64::from_le_bytes(b[36..44].try_into().unwrap()), 300_000);
        let e = stat2_body(Err(FsError::NotFound), 0);
        assert_eq!(e.len(), 68);
        assert_eq!(&e[0..4], &2u32.to_le_bytes());
    }
}
