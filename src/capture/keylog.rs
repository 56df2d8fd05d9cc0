//! TLS key logs of a run: where they come from (`--keylog FILE`, `--keylog device:PATH`, a scenario's
//! `keylog:`) and how they reach the run directory (`tls-keys.log`, 0600), for the analysis to
//! decrypt the capture with.
//!
//! A key log on the phone is written by whatever holds the secrets (an app built or instrumented to
//! log them, a debug build): tattle pulls it over adb's sync service **after** the capture stops, so
//! every secret of the run is in it. Host files are read at the same moment (a proxy or a Frida
//! script on the host may still be writing). A source that cannot be read is a note of the run, not
//! its failure: the capture is still analysed, and flows without keys stay opaque.
//!
//! Must not touch: the key log's contents (the analysis crate parses them: `tattle_analysis::keylog`),
//! the terminal, the order of a run (`runner`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::adb::{AdbDevice, AdbError, RemoteStat};

/// The key log's file name in a run directory.
pub const RUN_DIR_FILE: &str = "tls-keys.log";

/// A key log larger than this is refused, and so are the run's key logs together (NSS lines are
/// ~180 bytes: a million secrets).
pub const MAX_KEYLOG_BYTES: u64 = 256 * 1024 * 1024;

/// How long a key log on the phone may take to pull: its own bound, not adb's usual one (a busy
/// app's key log of a long run is megabytes, which a phone on Wi-Fi adb sends slowly), scaled by the
/// size a sync `stat` reports just before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullBound {
    /// For any file: the connection, the sync exchange.
    pub base: Duration,
    /// Per MiB of the file: 1 s is 1 MiB/s, below USB 2 and most Wi-Fi adb links.
    pub per_mib: Duration,
}

impl PullBound {
    pub const DEFAULT: PullBound = PullBound {
        base: Duration::from_secs(30),
        per_mib: Duration::from_secs(1),
    };

    /// The bound for a file of `size` bytes (at most 30 s + 256 s for the largest key log).
    pub fn for_size(self, size: u64) -> Duration {
        let size = size.min(MAX_KEYLOG_BYTES);
        self.base + self.per_mib.mul_f64(size as f64 / (1024.0 * 1024.0))
    }
}

/// The bound on the `stat` before a pull (a few bytes each way).
const STAT_BOUND: Duration = Duration::from_secs(20);

/// Where a key log comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeylogSource {
    /// A file on the host, read when the capture stops.
    Host(PathBuf),
    /// A file on the phone (`device:PATH`, absolute), pulled when the capture stops.
    Device(String),
    /// The key log PCAPdroid copies to Downloads when its capture with TLS decryption stops
    /// (`pcapdroid:tls`): waited for a moment (its main screen copies it), pulled, then deleted from
    /// the phone (it holds the run's secrets). Never parsed from text.
    Pcapdroid(String),
}

/// How long PCAPdroid may take to copy its key log after its main screen came to the front.
const PCAPDROID_KEYLOG_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeylogSourceError {
    #[error("`device:{0}`: a key log on the phone is named by its absolute path")]
    RelativeDevicePath(String),
    #[error("an empty key log path")]
    Empty,
    #[error("`-`: a key log cannot come from stdin (stdin may carry the capture); name a file")]
    Stdin,
}

impl KeylogSourceError {
    /// The fix, for messages that show one.
    pub fn help(&self) -> &'static str {
        match self {
            KeylogSourceError::RelativeDevicePath(_) => {
                "e.g. device:/data/local/tmp/sslkeys.log (where the shell may read it)"
            }
            KeylogSourceError::Empty | KeylogSourceError::Stdin => {
                "a host file (keys.log) or a file on the phone (device:/data/local/tmp/sslkeys.log)"
            }
        }
    }
}

impl std::str::FromStr for KeylogSource {
    type Err = KeylogSourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Err(KeylogSourceError::Empty),
            "-" => Err(KeylogSourceError::Stdin),
            _ => match s.strip_prefix("device:") {
                Some(path) if path.starts_with('/') => Ok(KeylogSource::Device(path.to_string())),
                Some(path) => Err(KeylogSourceError::RelativeDevicePath(path.to_string())),
                None => Ok(KeylogSource::Host(PathBuf::from(s))),
            },
        }
    }
}

impl std::fmt::Display for KeylogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeylogSource::Host(p) => write!(f, "{}", p.display()),
            KeylogSource::Device(p) => write!(f, "device:{p}"),
            KeylogSource::Pcapdroid(p) => write!(f, "PCAPdroid's (device:{p})"),
        }
    }
}

/// What collecting a run's key logs gave.
#[derive(Default)]
pub struct Collected {
    /// The key log text of every source that could be read, in the order given.
    pub text: Vec<u8>,
    /// The run directory's copy (`tls-keys.log`), when any source gave bytes.
    pub file: Option<PathBuf>,
    /// One line per source: what it gave, or why it gave nothing (no secret in them).
    pub notes: Vec<String>,
}

impl std::fmt::Debug for Collected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Collected")
            .field("bytes", &self.text.len())
            .field("file", &self.file)
            .field("notes", &self.notes)
            .finish()
    }
}

/// The lines of `bytes` shaped like NSS key log secrets (`LABEL CLIENT_RANDOM SECRET`: an upper-case
/// label, 64 hex digits, an even number of hex digits), each ended by a newline. Only these are kept
/// in the run directory and the annotated pcapng, which people share: a source that is not a key log
/// (a wrong path), comments and broken lines stay out. Returns them and how many lines were left out.
fn secret_lines(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut kept = Vec::with_capacity(bytes.len());
    let mut dropped = 0;
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            continue;
        }
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let shaped = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(label), Some(random), Some(secret), None) => {
                label
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
                    && random.len() == 64
                    && random.iter().all(u8::is_ascii_hexdigit)
                    && secret.len() % 2 == 0
                    && (2..=256).contains(&secret.len())
                    && secret.iter().all(u8::is_ascii_hexdigit)
            }
            _ => false,
        };
        if shaped {
            kept.extend_from_slice(line);
            kept.push(b'\n');
        } else {
            dropped += 1;
        }
    }
    (kept, dropped)
}

/// Reads every source (pulling the phone's over adb) and writes what they hold, in order, to
/// `run_dir/tls-keys.log` (0600). Never fails the run: what went wrong is in the notes.
pub async fn collect(sources: &[KeylogSource], device: &AdbDevice, run_dir: &Path) -> Collected {
    collect_within(sources, device, run_dir, PullBound::DEFAULT).await
}

/// `collect` with the phone's key logs pulled within `bound` (tests cut a pull with a small one).
pub async fn collect_within(
    sources: &[KeylogSource],
    device: &AdbDevice,
    run_dir: &Path,
    bound: PullBound,
) -> Collected {
    let mut out = Collected::default();
    for source in sources {
        let read = match source {
            KeylogSource::Host(path) => read_host(path).await,
            KeylogSource::Device(path) => noting_cut(
                &mut out.notes,
                source,
                pull_device(device, path, bound).await,
            ),
            KeylogSource::Pcapdroid(path) => noting_cut(
                &mut out.notes,
                source,
                pull_pcapdroid(device, path, bound).await,
            ),
        };
        match read {
            Ok(bytes) if bytes.is_empty() => {
                out.notes.push(format!("key log {source}: empty"));
            }
            Ok(bytes) => {
                let (lines, dropped) = secret_lines(&bytes);
                let mut note = format!("key log {source}: {} bytes", bytes.len());
                if dropped > 0 {
                    note.push_str(&format!(
                        ", {dropped} line(s) that are not key log secrets left out"
                    ));
                }
                out.notes.push(note);
                if out.text.len() as u64 + lines.len() as u64 > MAX_KEYLOG_BYTES {
                    out.notes.push(format!(
                        "key log {source}: left out, the run's key logs would pass {} MiB",
                        MAX_KEYLOG_BYTES >> 20
                    ));
                    continue;
                }
                out.text.extend_from_slice(&lines);
            }
            Err(why) => out.notes.push(format!("key log {source}: {why}")),
        }
    }
    if !out.text.is_empty() {
        let path = run_dir.join(RUN_DIR_FILE);
        match write_private(&path, &out.text).await {
            Ok(()) => out.file = Some(path),
            Err(e) => out.notes.push(format!(
                "key log: could not keep a copy in the run directory ({e}); used for this analysis only"
            )),
        }
    }
    out
}

/// Pulls a key log from the phone within a bound made from its size. A pull cut by that bound gives
/// the complete lines that arrived, with a sentence saying so (the secrets logged first, of the
/// run's first connections, are still worth having).
async fn pull_device(
    device: &AdbDevice,
    path: &str,
    bound: PullBound,
) -> Result<(Vec<u8>, Option<String>), String> {
    let stat = device
        .clone()
        .with_timeout(STAT_BOUND)
        .stat(path)
        .await
        .map_err(|e| format!("could not stat it ({e})"))?
        .ok_or(
            "not on the phone, or the shell may not read it (adb reads files as the shell user)",
        )?;
    if !stat.is_file() {
        // Without `stat_v2` (Android 7 and older) adbd answers STAT v1 with lstat: a symbolic link
        // to the key log is seen as the link. Its target's size is unknown, so the pull gets the
        // bound of the largest key log (the byte limit still holds, a cut keeps whole lines).
        let v1 = !device.has_feature("stat_v2").await.unwrap_or(true);
        if !v1 || stat.is_dir() {
            return Err("not a file".into());
        }
        return pull_bounded(
            device,
            path,
            bound,
            MAX_KEYLOG_BYTES,
            "its size unknown (a link)",
        )
        .await;
    }
    if stat.size > MAX_KEYLOG_BYTES {
        return Err(format!(
            "{} bytes, more than the {} MiB a key log may have",
            stat.size,
            MAX_KEYLOG_BYTES >> 20
        ));
    }
    pull_bounded(
        device,
        path,
        bound,
        stat.size,
        &format!("{} bytes", stat.size),
    )
    .await
}

/// The pull of `pull_device`, within the bound for `size` bytes (`what`: that size, said in a cut's
/// note).
async fn pull_bounded(
    device: &AdbDevice,
    path: &str,
    bound: PullBound,
    size: u64,
    what: &str,
) -> Result<(Vec<u8>, Option<String>), String> {
    let within = bound.for_size(size);
    let mut bytes = Vec::new();
    match device
        .pull_into(path, MAX_KEYLOG_BYTES, within, &mut bytes)
        .await
    {
        Ok(()) => Ok((bytes, None)),
        Err(AdbError::Timeout { .. }) => {
            let got = bytes.len();
            // A line the cut went through is not a secret: only whole lines are kept.
            bytes.truncate(bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
            let cut = format!(
                "pull cut after {:.1} s (the bound for {what}: {} s + {} s per MiB) with {got} bytes \
                 pulled; its complete lines are used, flows whose secrets came later stay opaque \
                 (pull it by hand with `adb pull {path}` and run `tattle analyze` with `--keylog`)",
                within.as_secs_f64(),
                bound.base.as_secs(),
                bound.per_mib.as_secs(),
            );
            Ok((bytes, Some(cut)))
        }
        Err(e) => Err(format!(
            "could not pull it ({e}); the shell must be able to read it"
        )),
    }
}

/// A pull's bytes, its cut (if any) said in `notes`.
fn noting_cut(
    notes: &mut Vec<String>,
    source: &KeylogSource,
    pulled: Result<(Vec<u8>, Option<String>), String>,
) -> Result<Vec<u8>, String> {
    let (bytes, cut) = pulled?;
    notes.extend(cut.map(|cut| format!("key log {source}: {cut}")));
    Ok(bytes)
}

/// PCAPdroid's copy of its key log: it appears once PCAPdroid's main screen has handled the stop;
/// pulled once it is whole, then deleted from the phone (it holds the run's TLS secrets) unless the
/// pull was cut (the note then tells the user to pull it by hand).
///
/// "Whole" is two stats `KEYLOG_SETTLE` apart agreeing on size and mtime: v1.9.1's MainActivity
/// inserts the Downloads entry first (an empty file) and only then copies the cached key log into
/// it, so the first stat that finds it may see it empty or half written.
async fn pull_pcapdroid(
    device: &AdbDevice,
    path: &str,
    bound: PullBound,
) -> Result<(Vec<u8>, Option<String>), String> {
    let deadline = tokio::time::Instant::now() + PCAPDROID_KEYLOG_WAIT;
    let mut seen: Option<RemoteStat> = None;
    let last = loop {
        let why = match settled(device, path, &mut seen).await {
            Ok(true) => return pull_and_remove(device, path, bound).await,
            Ok(false) => None,
            Err(why) => Some(why),
        };
        if tokio::time::Instant::now() >= deadline {
            break why;
        }
        let pause = if seen.is_some() {
            KEYLOG_SETTLE
        } else {
            Duration::from_millis(250)
        };
        tokio::time::sleep(pause).await;
    };
    // The copy may land just after the window: one more look, so that its secrets are not left
    // in shared storage unsaid.
    let mut seen = None;
    let _ = settled(device, path, &mut seen).await;
    if seen.is_some() {
        tokio::time::sleep(KEYLOG_SETTLE).await;
        if let Ok(true) = settled(device, path, &mut seen).await {
            return pull_and_remove(device, path, bound).await;
        }
    }
    if let Some(st) = seen {
        return Err(format!(
            "PCAPdroid was still writing it ({} bytes) when tattle stopped waiting for it; it \
             holds the run's TLS secrets: pull it with `adb pull {path}` (then run `tattle analyze` \
             with `--keylog`) and delete it with `adb shell rm {}`",
            st.size,
            crate::adb::shell_quote(path)
        ));
    }
    let last = last.map_or_else(String::new, |why| format!(" ({why})"));
    Err(format!(
        "PCAPdroid wrote none{last}: it copies its key log there when its main screen comes \
         to the front after a capture that decrypted TLS (tattle opens it); none is written when no \
         connection was decrypted, and with pcapng the keys are inside the capture instead"
    ))
}

/// How far apart two stats of PCAPdroid's key log must agree before it is taken as whole.
const KEYLOG_SETTLE: Duration = Duration::from_millis(500);

/// One stat of `path`: true when it is a file and agrees on size and mtime with the one before
/// (`seen`, updated); an error when the stat itself failed.
async fn settled(
    device: &AdbDevice,
    path: &str,
    seen: &mut Option<RemoteStat>,
) -> Result<bool, String> {
    let now = device
        .clone()
        .with_timeout(STAT_BOUND)
        .stat(path)
        .await
        .map_err(|e| format!("could not stat it ({e})"));
    let now = match now {
        Ok(Some(st)) => st,
        Ok(None) => {
            *seen = None;
            return Ok(false);
        }
        Err(e) => {
            *seen = None;
            return Err(e);
        }
    };
    let agree = seen.is_some_and(|before| {
        (before.mode, before.size, before.mtime) == (now.mode, now.size, now.mtime)
    });
    *seen = Some(now);
    Ok(agree)
}

/// Pulls PCAPdroid's key log and deletes it from the phone, unless the pull was cut: then the file
/// stays for the user to pull by hand, and the note says to delete it after.
async fn pull_and_remove(
    device: &AdbDevice,
    path: &str,
    bound: PullBound,
) -> Result<(Vec<u8>, Option<String>), String> {
    let (bytes, cut) = pull_device(device, path, bound).await?;
    if let Some(cut) = cut {
        let cut = format!(
            "{cut}; it stays on the phone and holds the run's TLS secrets: delete it after with \
             `adb shell rm {}`",
            crate::adb::shell_quote(path)
        );
        return Ok((bytes, Some(cut)));
    }
    let rm = format!("rm -f {}", crate::adb::shell_quote(path));
    if let Err(e) = device.shell(&rm).await {
        tracing::warn!(error = %e, "removing PCAPdroid's key log from the phone");
    }
    Ok((bytes, None))
}

async fn read_host(path: &Path) -> Result<Vec<u8>, String> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    if meta.len() > MAX_KEYLOG_BYTES {
        return Err(format!(
            "{} bytes, more than the {} MiB a key log may have",
            meta.len(),
            MAX_KEYLOG_BYTES >> 20
        ));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| format!("cannot read it: {e}"))
}

async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut file = super::open_private(path).await?;
    file.write_all(bytes).await?;
    file.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_with_their_fix() {
        assert_eq!(
            "keys.log".parse(),
            Ok(KeylogSource::Host(PathBuf::from("keys.log")))
        );
        assert_eq!(
            "device:/data/local/tmp/k.log".parse(),
            Ok(KeylogSource::Device("/data/local/tmp/k.log".into()))
        );
        let e = "device:k.log".parse::<KeylogSource>().unwrap_err();
        assert_eq!(e, KeylogSourceError::RelativeDevicePath("k.log".into()));
        assert!(e.help().contains("device:/"));
        assert_eq!("-".parse::<KeylogSource>(), Err(KeylogSourceError::Stdin));
        assert_eq!("".parse::<KeylogSource>(), Err(KeylogSourceError::Empty));
        assert_eq!(
            KeylogSource::Device("/x".into()).to_string(),
            "device:/x",
            "shown as written"
        );
    }

    #[test]
    fn only_secret_lines_are_kept() {
        let random = "ab".repeat(32);
        let text = format!(
            "# SSL/TLS secrets log file\r\nCLIENT_RANDOM {random} {}\r\n\nroot:x:0:0:root:/root:/bin/bash\n\
             CLIENT_TRAFFIC_SECRET_0  {random} {}\nCLIENT_RANDOM {random} zz\nCLIENT_RANDOM {random}",
            "01".repeat(48),
            "02".repeat(32)
        );
        let (kept, dropped) = secret_lines(text.as_bytes());
        assert_eq!(
            String::from_utf8(kept).unwrap(),
            format!(
                "CLIENT_RANDOM {random} {}\nCLIENT_TRAFFIC_SECRET_0  {random} {}\n",
                "01".repeat(48),
                "02".repeat(32)
            )
        );
        assert_eq!(dropped, 3, "the passwd line, bad hex, a cut line");
    }

    #[test]
    fn a_pulls_bound_grows_with_the_file() {
        let b = PullBound::DEFAULT;
        assert_eq!(b.for_size(0), Duration::from_secs(30));
        assert_eq!(b.for_size(64 << 20), Duration::from_secs(94));
        assert_eq!(
            b.for_size(u64::MAX),
            Duration::from_secs(30 + 256),
            "never more than the largest key log's"
        );
    }

    #[tokio::test]
    async fn host_files_are_bounded_and_missing_ones_are_notes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_host(&dir.path().join("absent")).await.is_err());
        assert_eq!(read_host(dir.path()).await.unwrap_err(), "not a file");
        let f = dir.path().join("k");
        std::fs::write(&f, b"CLIENT_RANDOM aa bb").unwrap();
        assert_eq!(read_host(&f).await.unwrap(), b"CLIENT_RANDOM aa bb");
    }
}
