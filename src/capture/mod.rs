//! Capture: records the handset's traffic while a scenario runs.
//!
//! Owns the capture sources ([`CaptureSource`]: `device`, `file:PATH`, `file:-`), the capture file
//! in the run directory and the tee of its bytes. Whatever the source, the bytes reach the run
//! directory as they arrive (flushed after every chunk, so a run that is interrupted keeps every
//! byte received) and then go, in the same order, to a [`Tee`] (the runner's live analysis).
//! Counters are shared for progress display.
//!
//! - `device` (`tcpdump`): tcpdump on the device over `adb exec-out`, run as root where the shell
//!   may not capture; timestamps on the device's clock.
//! - `file:-` (`file`): a pcap/pcapng stream on stdin, read from the moment the run starts.
//! - `file:PATH` (`file`): a file another capturer writes during the run, copied when it ends.
//! - `iface:NAME` (`iface`): the host's tcpdump on its interface NAME, filtered to the phone.
//! - `emulator` (`emulator`): the Android emulator's own capture, through its console.
//! - `pcapdroid` (`pcapdroid`, over `crate::pcapdroid`): the PCAPdroid app on the phone, no root;
//!   timestamps on the device's clock.
//!
//! TLS key logs for the capture (`--keylog`, host files or `device:PATH`) are collected into the run
//! directory when it stops (`keylog`).
//!
//! The `file:`, `iface:` and `emulator` sources' timestamps are the host's (the capturer is on the host or the
//! network). The run directory's capture is `capture.pcap`, or `capture.pcapng` when the stream
//! is pcapng.
//!
//! Must not touch: the analysis of the bytes (it only counts records, with the analysis crate's own
//! framing: `tattle_analysis::pcap::RecordCounter`), the terminal, the order of a run (`runner`).

mod emulator;
mod file;
pub mod iface;
pub mod keylog;
mod pcapdroid;
pub mod source;
pub mod tcpdump;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::adb::{AdbDevice, AdbError, ExecStream};
use crate::device::DeviceError;
pub(crate) use emulator::EmulatorCapture;
pub(crate) use file::{FILE_SETTLE, StdinFeed, check_file_source, start_file, start_stdin};
pub(crate) use iface::{check_iface, start_iface};
pub(crate) use pcapdroid::start_pcapdroid;
pub use source::{CaptureSource, PcapdroidMode, SourceError};
use tattle_analysis::pcap::RecordCounter;

/// A capture stops growing here (a device streaming without end must not fill the disk); the run
/// then ends like one whose device went away, keeping what it has.
const MAX_CAPTURE_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// How long the device may take to start tcpdump and send the pcap header.
const START_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Adb(#[from] AdbError),
    #[error(transparent)]
    Device(Box<DeviceError>),
    #[error("cannot write the capture {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the device sent no capture data within {0:?}: `tcpdump` hangs or waits for something \
         (see docs/capture.md)"
    )]
    NoData(Duration),
    #[error(
        "tcpdump on the device stopped before it sent a pcap header ({0} bytes came): it cannot \
         capture as the user it runs as"
    )]
    Ended(usize),
    #[error(
        "the capture does not start with a pcap or pcapng header (got {0}): is it `tcpdump -w -`?"
    )]
    NotPcap(String),
    #[error(
        "this device's adbd (SDK {sdk}) has no `exec:` service (it came with Android 5.0, SDK 21), \
         which the on-device capture streams through\n  help: capture on the network the phone uses and give \
         it to tattle: `--capture file:PATH` or `--capture file:-` (docs/capture.md)"
    )]
    NoExec { sdk: u32 },
    #[error(
        "the device has no `tcpdump`, which the `device` capture source runs\n  help: give a \
         static tcpdump built for the device's ABI ({abi}) with `--tcpdump-binary PATH` (tattle \
         pushes it to /data/local/tmp/tcpdump), or use another source: `--capture file:PATH` or \
         `--capture file:-` with a capture taken on the network (docs/capture.md)"
    )]
    NoTcpdump { abi: String },
    #[error(
        "tcpdump needs root to capture on this device, and tattle found none ({note})\n  help: {fix}"
    )]
    NoRoot { note: String, fix: String },
    #[error("tcpdump sent no capture through `{form}` either: {detail}")]
    RootCaptureFailed { form: &'static str, detail: String },
    #[error("--tcpdump-binary {}: {why}", tcpdump::shown(.path).display())]
    Binary { path: PathBuf, why: String },
    #[error("--tcpdump-binary {}: not for this device: {why}", tcpdump::shown(.path).display())]
    AbiMismatch { path: PathBuf, why: String },
    #[error(
        "no capture data arrived on stdin within {0:?} (`--capture file:-`): pipe a pcap stream \
         in, e.g. `ssh ap tcpdump -U -w - 'host PHONE_IP' | tattle run …`"
    )]
    StdinNoData(Duration),
    #[error("--capture file:{}: {why}", tcpdump::shown(.path).display())]
    File { path: PathBuf, why: String },
    #[error("--capture pcapdroid: {0}")]
    Pcapdroid(#[from] crate::pcapdroid::PcapdroidError),
    #[error(
        "--capture pcapdroid: the scenario reboots the phone (line {line}), which ends PCAPdroid's \
         capture, and tattle does not start it again\n  help: use the `device` source for this \
         scenario, or run the steps after the reboot as a scenario of their own"
    )]
    PcapdroidReboot { line: usize },
    #[error("--capture emulator: {0}")]
    Console(#[from] crate::emulator_console::ConsoleError),
    #[error("--capture iface:{name}: {why}")]
    Iface { name: String, why: String },
    #[error(
        "--capture iface:{0}: tattle needs the phone's address to keep only its traffic, and the \
         device reported neither its Wi-Fi MAC nor a wlan0 address\n  help: pass \
         `--phone-address MAC_OR_IP` (the phone's Settings > About > Status shows both)"
    )]
    NoPhoneAddress(String),
}

impl CaptureError {
    /// A start that failed the way tcpdump fails without the right to capture: no header.
    pub(crate) fn may_need_root(&self) -> bool {
        matches!(
            self,
            CaptureError::NoData(_) | CaptureError::Ended(_) | CaptureError::NotPcap(_)
        )
    }
}

impl From<DeviceError> for CaptureError {
    fn from(e: DeviceError) -> Self {
        CaptureError::Device(Box::new(e))
    }
}

/// Which capture source a run used, for run.json and the reader.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct SourceRecord {
    /// `device`, `file:PATH` (the path redacted) or `file:-`.
    pub source: String,
    /// In words: which tcpdump and as whom, or where the capture came from.
    pub detail: String,
}

impl SourceRecord {
    /// The on-device tcpdump run as it is, as tattle always did: reports name the source only
    /// when it is anything else.
    pub fn is_plain_device(&self) -> bool {
        self.source == "device"
            && self.detail.contains("the device's own")
            && self.detail.ends_with("as the shell user")
    }
}

/// Where a capture also sends every byte it writes to the capture file, chunk by chunk. Unbounded:
/// the capture never waits for its reader; the channel closes when the capture ends.
pub(crate) type Tee = mpsc::UnboundedSender<Vec<u8>>;

/// Live counters of a running capture.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    pub bytes: AtomicU64,
    pub packets: AtomicU64,
}

/// What a finished capture recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub packets: u64,
    /// The stream ended before tattle stopped it: the device went away, tcpdump died, stdin closed.
    pub ended_early: bool,
}

/// A running capture. Stop it with `stop`; dropping it also ends the capture task.
pub(crate) struct RunningCapture {
    counters: Arc<CaptureCounters>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<CaptureSummary, CaptureError>>,
    ended: Arc<AtomicBool>,
}

impl RunningCapture {
    pub(crate) fn counters(&self) -> Arc<CaptureCounters> {
        self.counters.clone()
    }

    /// True once the stream has ended on its own (device lost, stdin closed).
    pub(crate) fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Lets in-flight packets arrive, then closes the stream (the device side sees its stdout closed
    /// and stops tcpdump) and returns what was written.
    pub(crate) async fn stop(mut self, grace: Duration) -> Result<CaptureSummary, CaptureError> {
        tokio::time::sleep(grace).await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(CaptureError::Write {
                path: PathBuf::new(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }
}

/// Where the bytes of a streaming capture come from.
enum Input {
    Adb(ExecStream),
    /// Chunks read by a thread (stdin).
    Chunks(mpsc::Receiver<Vec<u8>>),
    /// A byte stream: a host program's output (`iface:`).
    Reader(std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>),
}

impl Input {
    /// The next bytes into `buf`; 0 at the end of the stream.
    async fn read(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            Input::Adb(stream) => {
                buf.resize(64 * 1024, 0);
                let n = stream.read(buf).await?;
                buf.truncate(n);
                Ok(n)
            }
            Input::Reader(reader) => {
                buf.resize(64 * 1024, 0);
                let n = reader.read(buf).await?;
                buf.truncate(n);
                Ok(n)
            }
            Input::Chunks(rx) => match rx.recv().await {
                Some(chunk) => {
                    *buf = chunk;
                    Ok(buf.len())
                }
                None => Ok(0),
            },
        }
    }
}

/// The pcap magic numbers (micro- and nanosecond, both byte orders) and pcapng's Section Header
/// Block type.
pub(crate) fn is_capture_magic(head: &[u8]) -> bool {
    head.len() >= 4
        && matches!(
            u32::from_le_bytes([head[0], head[1], head[2], head[3]]),
            0xa1b2c3d4 | 0xd4c3b2a1 | 0xa1b23c4d | 0x4d3cb2a1 | 0x0a0d0d0a
        )
}

/// `capture.pcapng` beside `pcap_path` when the stream is pcapng, else `pcap_path` itself.
pub(crate) fn path_for(pcap_path: &Path, head: &[u8]) -> PathBuf {
    if head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        pcap_path.with_extension("pcapng")
    } else {
        pcap_path.to_path_buf()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Starts `command` (a tcpdump writing pcap to stdout) on the device through `exec:` and writes its
/// output to `path` (created 0600) and to `tee`. Returns once the pcap header has arrived, i.e.
/// tcpdump is capturing.
pub(crate) async fn start_on_device(
    device: &AdbDevice,
    command: &str,
    path: &Path,
    tee: Tee,
) -> Result<RunningCapture, CaptureError> {
    let mut stream = device.exec_out(command).await?;
    let mut header = [0u8; 24];
    let mut have = 0;
    let read_header = async {
        while have < header.len() {
            let n = stream.read(&mut header[have..]).await?;
            if n == 0 {
                break;
            }
            have += n;
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(START_TIMEOUT, read_header).await {
        Err(_) => return Err(CaptureError::NoData(START_TIMEOUT)),
        Ok(Ok(())) if have < header.len() => return Err(CaptureError::Ended(have)),
        Ok(Err(e)) => return Err(CaptureError::Adb(AdbError::Io(e))),
        _ => {}
    }
    if !is_capture_magic(&header) {
        return Err(CaptureError::NotPcap(hex(&header)));
    }
    let file = create_private(path).await?;
    stream_to_file(Input::Adb(stream), header.to_vec(), file, path, tee).await
}

/// Writes `head` (the stream's first bytes, already checked to be a capture's) and then everything
/// `input` gives to `file` and `tee`, until stopped or the stream ends.
async fn stream_to_file(
    mut input: Input,
    head: Vec<u8>,
    mut file: tokio::fs::File,
    path: &Path,
    tee: Tee,
) -> Result<RunningCapture, CaptureError> {
    let mut tracker = RecordCounter::new();
    let first_records = tracker
        .feed(&head)
        .map_err(|_| CaptureError::NotPcap(hex(&head)))?;
    write_all(&mut file, path, &head).await?;
    // A reader that went away loses the rest; the file keeps everything.
    let _ = tee.send(head.clone());

    let counters = Arc::new(CaptureCounters::default());
    counters.bytes.store(head.len() as u64, Ordering::Relaxed);
    counters.packets.store(first_records, Ordering::Relaxed);
    let ended = Arc::new(AtomicBool::new(false));
    let (stop_tx, mut stop_rx) = oneshot::channel();
    let task_counters = counters.clone();
    let task_ended = ended.clone();
    let path_buf = path.to_path_buf();
    let task = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut ended_early = false;
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                read = input.read(&mut buf) => match read {
                    Ok(0) | Err(_) => {
                        ended_early = true;
                        task_ended.store(true, Ordering::SeqCst);
                        break;
                    }
                    Ok(n) => {
                        if task_counters.bytes.load(Ordering::Relaxed) + n as u64 > MAX_CAPTURE_BYTES {
                            tracing::warn!("capture reached {MAX_CAPTURE_BYTES} bytes; stopping it");
                            ended_early = true;
                            task_ended.store(true, Ordering::SeqCst);
                            break;
                        }
                        write_all(&mut file, &path_buf, &buf[..n]).await?;
                        let _ = tee.send(buf[..n].to_vec());
                        task_counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        // A stream that stops making sense stops counting; the analysis says why.
                        let records = tracker.feed(&buf[..n]).unwrap_or(0);
                        task_counters.packets.fetch_add(records, Ordering::Relaxed);
                    }
                }
            }
        }
        drop(input);
        file.flush().await.map_err(|source| CaptureError::Write {
            path: path_buf.clone(),
            source,
        })?;
        Ok(CaptureSummary {
            path: path_buf,
            bytes: task_counters.bytes.load(Ordering::Relaxed),
            packets: task_counters.packets.load(Ordering::Relaxed),
            ended_early,
        })
    });
    Ok(RunningCapture {
        counters,
        stop: Some(stop_tx),
        task,
        ended,
    })
}

/// A new file only its owner may read (0600), refused when the path exists: captures hold
/// personal data, and a run never writes over what is there. Shared with `crate::pcapdroid`.
pub(crate) async fn open_private(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

async fn create_private(path: &Path) -> Result<tokio::fs::File, CaptureError> {
    open_private(path)
        .await
        .map_err(|source| CaptureError::Write {
            path: path.to_path_buf(),
            source,
        })
}

async fn write_all(
    file: &mut tokio::fs::File,
    path: &Path,
    bytes: &[u8],
) -> Result<(), CaptureError> {
    // Flushed per chunk: an interrupted run keeps everything received.
    async {
        file.write_all(bytes).await?;
        file.flush().await
    }
    .await
    .map_err(|source| CaptureError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_and_file_names() {
        let pcap = tattle_analysis::pcap::to_vec(1, &[b"x"]);
        assert!(is_capture_magic(&pcap));
        assert!(is_capture_magic(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0]));
        assert!(!is_capture_magic(
            b"tcpdump: socket: Operation not permitted"
        ));
        assert!(!is_capture_magic(b"ab"));
        let base = Path::new("/runs/r/capture.pcap");
        assert_eq!(path_for(base, &pcap), base);
        assert_eq!(
            path_for(base, &[0x0a, 0x0d, 0x0d, 0x0a]),
            Path::new("/runs/r/capture.pcapng")
        );
    }

    #[tokio::test]
    async fn chunks_stream_to_the_file_and_the_tee() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capture.pcap");
        let capture = tattle_analysis::pcap::to_vec(101, &[b"\x45abc", b"\x60", b"\x45"]);
        let (tx, rx) = mpsc::channel(4);
        let (tee, mut teed) = mpsc::unbounded_channel();
        let file = create_private(&path).await.unwrap();
        let running = stream_to_file(Input::Chunks(rx), capture[..24].to_vec(), file, &path, tee)
            .await
            .unwrap();
        tx.send(capture[24..40].to_vec()).await.unwrap();
        tx.send(capture[40..].to_vec()).await.unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), async {
            while !running.has_ended() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        let summary = running.stop(Duration::ZERO).await.unwrap();
        assert_eq!(summary.packets, 3);
        assert!(summary.ended_early, "stdin closed before tattle stopped it");
        assert_eq!(std::fs::read(&path).unwrap(), capture);
        let mut all = Vec::new();
        while let Ok(chunk) = teed.try_recv() {
            all.extend(chunk);
        }
        assert_eq!(all, capture);
    }
}
