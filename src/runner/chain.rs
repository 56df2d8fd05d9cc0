//! The run's capture across reboots: one capture file and one stream for the live analysis, even
//! when a `reboot` step kills tcpdump with the phone.
//!
//! Owns the segments: the first capture writes `capture.pcap`; after a reboot a new tcpdump writes
//! `capture-after-reboot-N.pcap`, and its records (without its 24-byte pcap header, when that
//! header matches the first one: same byte order, version, snap length and link type) go on to the
//! live analysis as if the capture had never stopped. When the run ends, those records are appended
//! to `capture.pcap` and the segment file is removed, so frame numbers in the evidence are frame
//! numbers in `capture.pcap`. A segment whose header differs is neither analysed nor merged: it is
//! kept beside it, and the run says so.
//!
//! Only the `device` source has segments: a `file:` source's capturer is outside the phone and goes
//! on through a reboot.
//!
//! Must not touch: how a capture is taken (`crate::capture`), the analysis (it only forwards bytes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::capture::tcpdump::{self, TcpdumpPlan};
use crate::capture::{CaptureCounters, CaptureError, CaptureSummary, RunningCapture, Tee};
use crate::device::Device;

/// A pcap file's global header: magic, version, thiszone, sigfigs, snaplen, linktype.
const PCAP_HEADER: usize = 24;

/// Header check of a segment: not yet known, the same as the first capture's, different.
const UNKNOWN: u8 = 0;
const SAME: u8 = 1;
const DIFFERENT: u8 = 2;

struct Segment {
    path: PathBuf,
    header: Arc<AtomicU8>,
}

/// The capture of a run, made of one segment per boot.
pub(super) struct CaptureChain {
    current: Option<RunningCapture>,
    /// The live analysis's stream, for segments after the first.
    tee: Tee,
    first_path: PathBuf,
    later: Vec<Segment>,
    /// Summaries of segments that have ended (the first one first).
    ended: Vec<CaptureSummary>,
    /// How tcpdump runs on the device; `None` for a source outside the phone.
    plan: Option<TcpdumpPlan>,
}

/// Whether two pcap global headers describe the same stream format (thiszone and sigfigs are 0
/// in tcpdump's output and not compared).
fn same_format(a: &[u8], b: &[u8]) -> bool {
    a.len() >= PCAP_HEADER
        && b.len() >= PCAP_HEADER
        && a[..8] == b[..8]
        && a[16..PCAP_HEADER] == b[16..PCAP_HEADER]
}

impl CaptureChain {
    /// The first segment, already running; `tee` is a sender of the live analysis's stream.
    pub(super) fn new(
        first: RunningCapture,
        first_path: PathBuf,
        tee: Tee,
        plan: Option<TcpdumpPlan>,
    ) -> CaptureChain {
        CaptureChain {
            current: Some(first),
            tee,
            first_path,
            later: Vec::new(),
            ended: Vec::new(),
            plan,
        }
    }

    /// The capture runs on the device (a reboot ends it).
    pub(super) fn on_device(&self) -> bool {
        self.plan.is_some()
    }

    /// How tcpdump runs, as last started.
    pub(super) fn plan(&self) -> Option<&TcpdumpPlan> {
        self.plan.as_ref()
    }

    /// Why a capture stream ends by itself, in words.
    pub(super) fn end_words(&self) -> &'static str {
        if self.on_device() {
            "the device went away or tcpdump stopped"
        } else {
            "stdin was closed: the capturer upstream stopped"
        }
    }

    /// True when no capture is running: its stream ended (device lost, tcpdump died, a reboot).
    pub(super) fn has_ended(&self) -> bool {
        self.current.as_ref().is_none_or(RunningCapture::has_ended)
    }

    /// Starts a new segment after a reboot: the ended capture is collected, a new tcpdump starts,
    /// and its records are forwarded to the live analysis. Returns the new counters.
    pub(super) async fn restart(
        &mut self,
        device: &Device,
    ) -> Result<Arc<CaptureCounters>, CaptureError> {
        if let Some(old) = self.current.take() {
            // Its stream is gone with the old boot; stop collects what it wrote.
            match old.stop(Duration::ZERO).await {
                Ok(summary) => self.ended.push(summary),
                Err(e) => tracing::warn!("collecting the capture before the reboot: {e}"),
            }
        }
        let first_header = read_header(&self.first_path).await;
        let path = self.first_path.with_file_name(format!(
            "capture-after-reboot-{}.pcap",
            self.later.len() + 1
        ));
        let (segment_tee, mut segment) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let Some(plan) = self.plan.as_mut() else {
            return Err(CaptureError::Write {
                path,
                source: std::io::Error::other("a capture outside the phone does not restart"),
            });
        };
        plan.after_reboot();
        let running = match tcpdump::start(device, plan, &path, segment_tee).await {
            Ok(running) => running,
            Err(e) => {
                // At most a partial header: nothing to keep, and a retry reuses the name.
                let _ = tokio::fs::remove_file(&path).await;
                return Err(e);
            }
        };
        let counters = running.counters();
        let verdict = Arc::new(AtomicU8::new(UNKNOWN));
        let forward_verdict = verdict.clone();
        let main = self.tee.clone();
        tokio::spawn(async move {
            // The capture sends its 24-byte header first; everything after it is records.
            let mut head = Vec::with_capacity(PCAP_HEADER);
            while let Some(chunk) = segment.recv().await {
                match forward_verdict.load(Ordering::SeqCst) {
                    SAME => {
                        let _ = main.send(chunk);
                    }
                    DIFFERENT => {}
                    _ => {
                        head.extend_from_slice(&chunk);
                        if head.len() < PCAP_HEADER {
                            continue;
                        }
                        let same = first_header
                            .as_deref()
                            .is_some_and(|first| same_format(first, &head));
                        forward_verdict
                            .store(if same { SAME } else { DIFFERENT }, Ordering::SeqCst);
                        if same && head.len() > PCAP_HEADER {
                            let _ = main.send(head[PCAP_HEADER..].to_vec());
                        }
                    }
                }
            }
        });
        self.later.push(Segment {
            path,
            header: verdict,
        });
        self.current = Some(running);
        Ok(counters)
    }

    /// Stops the running segment after `grace`, merges the later segments into the first file and
    /// sums them up. The note says what could not be merged or completed.
    pub(super) async fn stop(mut self, grace: Duration) -> (CaptureSummary, Option<String>) {
        let mut notes = Vec::new();
        if let Some(current) = self.current.take() {
            match current.stop(grace).await {
                Ok(summary) => self.ended.push(summary),
                Err(e) => notes.push(format!("the capture could not be completed: {e}")),
            }
        }
        let mut packets = 0;
        let mut ended_early = self.ended.last().is_none_or(|s| s.ended_early);
        for (i, summary) in self.ended.iter().enumerate() {
            // Segment i ≥ 1 is later[i - 1]; only merged segments count towards capture.pcap.
            let merged = i == 0
                || self
                    .later
                    .get(i - 1)
                    .is_some_and(|s| s.header.load(Ordering::SeqCst) == SAME);
            if merged {
                packets += summary.packets;
            }
        }
        for segment in &self.later {
            let file = segment.path.display().to_string();
            if segment.header.load(Ordering::SeqCst) != SAME {
                notes.push(format!(
                    "the capture after a reboot ({file}) has another pcap format than the first: \
                     kept apart and not analysed"
                ));
                continue;
            }
            if let Err(e) = append_records(&self.first_path, &segment.path).await {
                notes.push(format!("could not merge {file} into the capture: {e}"));
                ended_early = true;
            }
        }
        // A `file:` source names its file by the stream's format (`capture.pcapng`).
        let path = self
            .ended
            .first()
            .map_or(self.first_path.clone(), |s| s.path.clone());
        let summary = CaptureSummary {
            bytes: tokio::fs::metadata(&path)
                .await
                .map(|m| m.len())
                .unwrap_or(0),
            path,
            packets,
            ended_early,
        };
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        (summary, note)
    }
}

async fn read_header(path: &Path) -> Option<Vec<u8>> {
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let mut header = vec![0u8; PCAP_HEADER];
    file.read_exact(&mut header).await.ok()?;
    Some(header)
}

/// Appends `segment`'s records (all but its pcap header) to `first`, then removes `segment`.
async fn append_records(first: &Path, segment: &Path) -> std::io::Result<()> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let mut from = tokio::fs::File::open(segment).await?;
    from.seek(std::io::SeekFrom::Start(PCAP_HEADER as u64))
        .await?;
    let mut to = tokio::fs::OpenOptions::new()
        .append(true)
        .open(first)
        .await?;
    tokio::io::copy(&mut from, &mut to).await?;
    to.flush().await?;
    drop(from);
    tokio::fs::remove_file(segment).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(linktype: u8) -> Vec<u8> {
        let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        h.extend([0; 8]);
        h.extend([0xff, 0xff, 0, 0, linktype, 0, 0, 0]);
        h
    }

    #[test]
    fn formats_compare_by_magic_version_snaplen_and_link_type() {
        assert!(same_format(&header(113), &header(113)));
        assert!(!same_format(&header(113), &header(1)));
        assert!(!same_format(&header(113), &header(113)[..20]));
        let mut swapped = header(113);
        swapped[..4].copy_from_slice(&[0xa1, 0xb2, 0xc3, 0xd4]);
        assert!(!same_format(&header(113), &swapped));
    }

    #[tokio::test]
    async fn segments_merge_into_the_first_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("capture.pcap");
        let second = dir.path().join("capture-after-reboot-1.pcap");
        let mut a = header(113);
        a.extend(b"records-of-boot-1");
        let mut b = header(113);
        b.extend(b"records-of-boot-2");
        std::fs::write(&first, &a).unwrap();
        std::fs::write(&second, &b).unwrap();
        append_records(&first, &second).await.unwrap();
        let mut want = a.clone();
        want.extend(b"records-of-boot-2");
        assert_eq!(std::fs::read(&first).unwrap(), want);
        assert!(!second.exists());
        assert_eq!(read_header(&first).await.unwrap(), header(113));
    }
}
