//! The `pcapdroid` source in a run: [`crate::pcapdroid`]'s capture (PCAPdroid on the phone, its
//! TCP exporter through `adb reverse`) seen as a [`RunningCapture`] like every other source — its
//! counters mirrored for the progress line, its early end flagged for the runner, its stop turned
//! into a [`CaptureSummary`] that keeps the file in every case.
//!
//! Owns: the adaptation. Must not touch: the PCAPdroid protocol (`crate::pcapdroid`), the run's
//! order.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{CaptureCounters, CaptureError, CaptureSummary, RunningCapture, Tee};
use crate::adb::AdbDevice;
use crate::pcapdroid::{self, End, PcapdroidCapture, PcapdroidError, Summary};

/// How often the mirrored counters and the end flag are refreshed.
const MIRROR_EVERY: Duration = Duration::from_millis(200);

/// Starts PCAPdroid's capture into `path`, teed; returns once PCAPdroid has connected.
pub(crate) async fn start_pcapdroid(
    device: &AdbDevice,
    path: &Path,
    options: pcapdroid::Options,
    tee: Tee,
) -> Result<RunningCapture, CaptureError> {
    let capture = PcapdroidCapture::start(device, path, options, Some(tee)).await?;
    let counters = Arc::new(CaptureCounters::default());
    let ended = Arc::new(AtomicBool::new(false));
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let (mirror_counters, mirror_ended) = (counters.clone(), ended.clone());
    let task = tokio::spawn(async move {
        let theirs = capture.counters();
        loop {
            mirror_counters
                .packets
                .store(theirs.packets.load(Ordering::Relaxed), Ordering::Relaxed);
            mirror_counters
                .bytes
                .store(theirs.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
            if capture.has_ended() {
                mirror_ended.store(true, Ordering::SeqCst);
            }
            tokio::select! {
                _ = &mut stop_rx => break,
                () = tokio::time::sleep(MIRROR_EVERY) => {}
            }
        }
        summary_of(capture.stop().await)
    });
    Ok(RunningCapture {
        counters,
        stop: Some(stop_tx),
        task,
        ended,
    })
}

/// The run's summary: the file is kept whatever the end; an end tattle did not ask for is
/// `ended_early` (the runner has already said why, from the adb server's answer).
fn summary_of(stopped: Result<Summary, PcapdroidError>) -> Result<CaptureSummary, CaptureError> {
    let summary = match stopped {
        Ok(s) => s,
        Err(PcapdroidError::StoppedOnPhone(s) | PcapdroidError::DeviceGone(s)) => s,
        Err(e) => return Err(e.into()),
    };
    Ok(CaptureSummary {
        path: summary.path,
        bytes: summary.bytes,
        packets: summary.packets,
        ended_early: matches!(summary.end, End::StoppedOnPhone | End::DeviceGone),
    })
}
