//! The `file:` sources: a capture taken by anything else during the run.
//!
//! Owns `file:-` — stdin read by a thread from the moment the run starts (so a capturer piping in
//! is never held up while tattle reads the device), the first bytes waited for before the first
//! step, then streamed to the run directory as they arrive — and `file:PATH` — checked before the
//! run, copied into the run directory when it ends, after a settle for the capturer's last
//! writes. Both keep the stream's format (pcap or pcapng) and its timestamps (the capturer's
//! clock: the host's, or the access point's).
//!
//! Must not touch: the device, the run's order, the analysis (bytes go to the tee).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::sync::{mpsc, oneshot};

use super::{
    CaptureCounters, CaptureError, CaptureSummary, Input, MAX_CAPTURE_BYTES, RunningCapture, Tee,
    create_private, hex, is_capture_magic, path_for, stream_to_file, write_all,
};
use tattle_analysis::pcap::RecordCounter;

/// Chunks of stdin buffered while nothing drains them (before the capture starts): 1024 × 64 KiB.
const STDIN_BUFFER_CHUNKS: usize = 1024;
/// How long after tattle stops stepping a `file:PATH` capturer gets to write its last packets
/// (tcpdump without `-U` holds a buffer until it fills or exits).
pub(crate) const FILE_SETTLE: Duration = Duration::from_secs(2);

/// stdin, read by a thread into a bounded channel: the thread blocks when it is full, which a
/// capturer upstream sees as a slow pipe; it ends at end of file, or when the run no longer reads.
pub(crate) struct StdinFeed {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl StdinFeed {
    /// Starts reading `reader` (the process's stdin) now.
    pub(crate) fn spawn(mut reader: impl std::io::Read + Send + 'static) -> StdinFeed {
        let (tx, rx) = mpsc::channel(STDIN_BUFFER_CHUNKS);
        // A thread, not tokio's stdin: a blocking read cannot be cancelled, and the process must
        // be free to exit while the capturer upstream is quiet.
        let spawned = std::thread::Builder::new()
            .name("tattle-stdin".into())
            .spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::warn!("reading the capture on stdin: {e}");
                            break;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the thread that reads stdin: {e}");
        }
        StdinFeed { rx }
    }
}

/// Waits up to `timeout` for the stream's first 4 bytes, checks they start a pcap or pcapng
/// capture, and streams everything to `pcap_path` (`capture.pcapng` beside it for pcapng) and `tee`.
pub(crate) async fn start_stdin(
    mut feed: StdinFeed,
    pcap_path: &Path,
    tee: Tee,
    timeout: Duration,
) -> Result<RunningCapture, CaptureError> {
    let mut head = Vec::new();
    let wait = async {
        while head.len() < 4 {
            match feed.rx.recv().await {
                Some(chunk) => head.extend(chunk),
                None => break,
            }
        }
    };
    if tokio::time::timeout(timeout, wait).await.is_err() || head.is_empty() {
        return Err(CaptureError::StdinNoData(timeout));
    }
    if !is_capture_magic(&head) {
        return Err(CaptureError::NotPcap(hex(&head)));
    }
    let path = path_for(pcap_path, &head);
    let file = create_private(&path).await?;
    stream_to_file(Input::Chunks(feed.rx), head, file, &path, tee).await
}

/// Checks `path` before the run: a regular file holding a capture, or (not there yet) a path in
/// an existing folder. Returns a note when the file is not there yet.
pub(crate) fn check_file_source(path: &Path) -> Result<Option<String>, CaptureError> {
    let err = |why: String| CaptureError::File {
        path: path.to_path_buf(),
        why,
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(err("not a regular file".into())),
        Ok(meta) => {
            if meta.len() >= 4 {
                let mut head = [0u8; 4];
                std::fs::File::open(path)
                    .and_then(|mut f| f.read_exact(&mut head))
                    .map_err(|e| err(format!("cannot read it: {e}")))?;
                if !is_capture_magic(&head) {
                    return Err(err(format!(
                        "it does not start like a pcap or pcapng capture (got {})",
                        hex(&head)
                    )));
                }
            }
            Ok(None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if parent.is_dir() {
                Ok(Some(format!(
                    "{} does not exist yet: the capturer must write it during the run (tattle \
                     copies it when the run ends)",
                    super::tcpdump::shown(path).display()
                )))
            } else {
                Err(err(format!(
                    "neither it nor its folder {} exists",
                    super::tcpdump::shown(parent).display()
                )))
            }
        }
        Err(e) => Err(err(format!("cannot read it: {e}"))),
    }
}

/// A `file:PATH` capture: nothing happens until it is stopped; then, after [`FILE_SETTLE`], what
/// `source` holds is copied to `pcap_path` (`capture.pcapng` for pcapng) and sent to `tee`.
pub(crate) fn start_file(
    source: PathBuf,
    pcap_path: PathBuf,
    tee: Tee,
    settle: Duration,
) -> RunningCapture {
    let counters = Arc::new(CaptureCounters::default());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task_counters = counters.clone();
    let task = tokio::spawn(async move {
        // Stopped or dropped: either way the run is over.
        let _ = stop_rx.await;
        tokio::time::sleep(settle).await;
        copy_capture(&source, &pcap_path, &tee, &task_counters).await
    });
    RunningCapture {
        counters,
        stop: Some(stop_tx),
        task,
        ended: Arc::new(AtomicBool::new(false)),
    }
}

/// Copies what `source` holds now (its length when opened: a capturer still writing does not make
/// the copy endless) to the run directory and the tee, counting records.
async fn copy_capture(
    source: &Path,
    pcap_path: &Path,
    tee: &Tee,
    counters: &CaptureCounters,
) -> Result<CaptureSummary, CaptureError> {
    let err = |why: String| CaptureError::File {
        path: source.to_path_buf(),
        why,
    };
    let mut input = tokio::fs::File::open(source).await.map_err(|e| {
        err(if e.kind() == std::io::ErrorKind::NotFound {
            "the file does not exist at the end of the run: nothing wrote the capture there".into()
        } else {
            format!("cannot read it: {e}")
        })
    })?;
    let len = input
        .metadata()
        .await
        .map_err(|e| err(format!("cannot read it: {e}")))?
        .len();
    if len > MAX_CAPTURE_BYTES {
        return Err(err(format!(
            "it holds {len} bytes; tattle copies captures of at most {MAX_CAPTURE_BYTES}: \
             analyse it with `tattle analyze` instead"
        )));
    }
    let mut head = [0u8; 4];
    if len < 4 || input.read_exact(&mut head).await.is_err() {
        return Err(err("it holds no capture (fewer than 4 bytes)".into()));
    }
    if !is_capture_magic(&head) {
        return Err(err(format!(
            "it does not start like a pcap or pcapng capture (got {})",
            hex(&head)
        )));
    }
    let path = path_for(pcap_path, &head);
    let mut file = create_private(&path).await?;
    let mut tracker = RecordCounter::new();
    let mut left = len;
    let mut chunk = head.to_vec();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        write_all(&mut file, &path, &chunk).await?;
        let _ = tee.send(chunk.clone());
        left = left.saturating_sub(chunk.len() as u64);
        counters
            .bytes
            .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let records = tracker.feed(&chunk).unwrap_or(0);
        counters.packets.fetch_add(records, Ordering::Relaxed);
        if left == 0 {
            break;
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = input
            .read(&mut buf[..want])
            .await
            .map_err(|e| err(format!("reading it: {e}")))?;
        if n == 0 {
            break;
        }
        chunk = buf[..n].to_vec();
    }
    Ok(CaptureSummary {
        path,
        bytes: counters.bytes.load(Ordering::Relaxed),
        packets: counters.packets.load(Ordering::Relaxed),
        ended_early: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(n: usize) -> Vec<u8> {
        let frames: Vec<&[u8]> = (0..n).map(|_| &b"\x45\0\0\x14"[..]).collect();
        tattle_analysis::pcap::to_vec(101, &frames)
    }

    #[tokio::test]
    async fn stdin_streams_as_it_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = capture(5);
        let feed = StdinFeed::spawn(std::io::Cursor::new(bytes.clone()));
        let (tee, mut teed) = mpsc::unbounded_channel();
        let running = start_stdin(
            feed,
            &dir.path().join("capture.pcap"),
            tee,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !running.has_ended() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        let summary = running.stop(Duration::ZERO).await.unwrap();
        assert_eq!((summary.packets, summary.bytes), (5, bytes.len() as u64));
        assert_eq!(
            std::fs::read(dir.path().join("capture.pcap")).unwrap(),
            bytes
        );
        let mut all = Vec::new();
        while let Ok(c) = teed.try_recv() {
            all.extend(c);
        }
        assert_eq!(all, bytes);
    }

    #[tokio::test]
    async fn stdin_that_is_not_a_capture_or_is_silent_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (tee, _teed) = mpsc::unbounded_channel();
        let feed = StdinFeed::spawn(std::io::Cursor::new(b"Welcome to the AP shell\n".to_vec()));
        let e = start_stdin(
            feed,
            &dir.path().join("capture.pcap"),
            tee.clone(),
            Duration::from_secs(5),
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, CaptureError::NotPcap(_)), "{e}");
        let feed = StdinFeed::spawn(std::io::empty());
        let e = start_stdin(
            feed,
            &dir.path().join("c2.pcap"),
            tee,
            Duration::from_secs(5),
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, CaptureError::StdinNoData(_)), "{e}");
        assert!(!dir.path().join("capture.pcap").exists());
    }

    #[tokio::test]
    async fn a_file_is_copied_when_the_run_ends_with_what_it_holds_then() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("ap.pcapng");
        // Not there when the run starts: a note, not an error.
        assert!(check_file_source(&source).unwrap().is_some());
        assert!(check_file_source(&dir.path().join("no/such/dir/x.pcap")).is_err());
        assert!(check_file_source(dir.path()).is_err());
        let (tee, mut teed) = mpsc::unbounded_channel();
        let out = dir.path().join("run");
        std::fs::create_dir(&out).unwrap();
        let running = start_file(
            source.clone(),
            out.join("capture.pcap"),
            tee,
            Duration::ZERO,
        );
        let bytes = capture(3);
        std::fs::write(&source, &bytes).unwrap();
        assert_eq!(check_file_source(&source).unwrap(), None);
        let summary = running.stop(Duration::ZERO).await.unwrap();
        assert_eq!(summary.packets, 3);
        assert_eq!(summary.path, out.join("capture.pcap"));
        assert_eq!(std::fs::read(out.join("capture.pcap")).unwrap(), bytes);
        let mut all = Vec::new();
        while let Ok(c) = teed.try_recv() {
            all.extend(c);
        }
        assert_eq!(all, bytes);
    }

    #[tokio::test]
    async fn a_missing_or_foreign_file_at_the_end_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let (tee, _teed) = mpsc::unbounded_channel();
        let running = start_file(
            dir.path().join("never.pcap"),
            dir.path().join("capture.pcap"),
            tee.clone(),
            Duration::ZERO,
        );
        let e = running.stop(Duration::ZERO).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("does not exist at the end of the run"),
            "{e}"
        );
        let foreign = dir.path().join("notes.txt");
        std::fs::write(&foreign, "not a capture").unwrap();
        assert!(check_file_source(&foreign).is_err());
        let running = start_file(
            foreign,
            dir.path().join("capture.pcap"),
            tee,
            Duration::ZERO,
        );
        let e = running.stop(Duration::ZERO).await.unwrap_err();
        assert!(e.to_string().contains("does not start like a pcap"), "{e}");
        assert!(!dir.path().join("capture.pcap").exists());
    }
}
