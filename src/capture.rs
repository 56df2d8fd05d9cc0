//! Capture: records the handset's traffic while a scenario runs.
//!
//! Owns the capture sources and the capture file. The default source runs tcpdump on the device over
//! `adb exec-out` (works on the emulator, rooted phones and the virtual handset alike) and writes the
//! pcap stream to the run directory as it arrives, flushed after every chunk, so a run that is
//! interrupted (device unplugged, Ctrl-C) keeps every byte received, and hands the same bytes, in
//! the same order, to a [`Tee`] (the runner's live analysis) once they are on disk. Counters are
//! shared for progress display.
//!
//! Must not touch: the analysis of the bytes (it only counts records, with the analysis crate's own
//! pcap framing: `tattle_analysis::pcap::RecordCounter`), the terminal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::adb::{AdbDevice, AdbError};
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
    #[error("cannot write the capture {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the device sent no capture data within {0:?}: `tcpdump` is missing on the device or needs \
         root (on a real phone: `adb root` on an eng/userdebug build or the emulator; see docs/device.md)"
    )]
    NoData(Duration),
    #[error(
        "the device's capture does not start with a pcap header (got {0}): is `tcpdump -w -` supported?"
    )]
    NotPcap(String),
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
    /// The stream ended before tattle stopped it: the device went away or tcpdump died.
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

    /// True once the stream from the device has ended on its own (device lost).
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
    let mut file = create_private(path).await?;

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
        Err(_) | Ok(Ok(())) if have < header.len() => {
            // Keep whatever came: it is evidence of what the device answered.
            let _ = file.write_all(&header[..have]).await;
            return Err(CaptureError::NoData(START_TIMEOUT));
        }
        Ok(Err(e)) => return Err(CaptureError::Adb(AdbError::Io(e))),
        _ => {}
    }
    let mut tracker = RecordCounter::new();
    tracker.feed(&header).map_err(|_| {
        CaptureError::NotPcap(
            header[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
    })?;
    write_all(&mut file, path, &header).await?;
    // A reader that went away loses the rest; the file keeps everything.
    let _ = tee.send(header.to_vec());

    let counters = Arc::new(CaptureCounters::default());
    counters.bytes.store(header.len() as u64, Ordering::Relaxed);
    let ended = Arc::new(AtomicBool::new(false));
    let (stop_tx, mut stop_rx) = oneshot::channel();
    let task_counters = counters.clone();
    let task_ended = ended.clone();
    let path_buf = path.to_path_buf();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut ended_early = false;
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                read = stream.read(&mut buf) => match read {
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
        drop(stream);
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

async fn create_private(path: &Path) -> Result<tokio::fs::File, CaptureError> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
        .open(path)
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
