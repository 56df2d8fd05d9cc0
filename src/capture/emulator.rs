//! The `emulator` source: the Android emulator captures its own virtual NIC on the host, started
//! and stopped through its console (`network capture start FILE` / `stop`, see
//! [`crate::emulator_console`]). The emulator writes the file into the run directory; tattle copies
//! it into `capture.pcap` when the run ends (the file is complete only after `stop`: the emulator's
//! stdio buffer is flushed then). Timestamps are the host's: qemu runs there.
//!
//! Owns: when the console is asked, and what becomes of the emulator's file. Must not touch: the
//! console protocol (`emulator_console`), the device, the run's order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CaptureError, RunningCapture, Tee, start_file};
use crate::emulator_console::{ConsoleError, ConsoleSettings, EmulatorConsole};

/// The emulator's own file in the run directory, before tattle copies it to `capture.pcap`.
pub(crate) const EMULATOR_FILE: &str = "emulator-capture.pcap";

/// An emulator console, connected and authenticated, whose `network capture` works.
pub(crate) struct EmulatorCapture {
    console: EmulatorConsole,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for EmulatorCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorCapture")
            .field("port", &self.console.port())
            .finish_non_exhaustive()
    }
}

impl EmulatorCapture {
    /// Connects to the console of the emulator `serial` (`emulator-5554` → 5554, or the
    /// `console_port` given) and checks it can capture. Before the run: a console that is not
    /// there or refuses is an error with the fix.
    pub(crate) async fn connect(
        serial: &str,
        console_port: Option<u16>,
    ) -> Result<EmulatorCapture, CaptureError> {
        let settings = ConsoleSettings::for_device(serial, console_port)?;
        let mut console = EmulatorConsole::connect(&settings).await?;
        if !console.supports_capture().await? {
            return Err(CaptureError::Console(ConsoleError::CaptureRefused {
                port: console.port(),
                reply: "its `help network` lists no `network capture`".into(),
            }));
        }
        Ok(EmulatorCapture {
            console,
            file: None,
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.console.port()
    }

    /// Asks the emulator to capture into the run directory `dir`, and returns the capture that
    /// copies its file to `pcap_path` (and the tee) when the run ends.
    pub(crate) async fn start(
        &mut self,
        dir: &Path,
        pcap_path: PathBuf,
        tee: Tee,
    ) -> Result<RunningCapture, CaptureError> {
        let file = dir.join(EMULATOR_FILE);
        self.console.capture_start(&file).await?;
        self.file = Some(file.clone());
        Ok(start_file(file, pcap_path, tee, Duration::ZERO))
    }

    /// `network capture stop`, so the emulator flushes and closes its file; then the console is
    /// left. `Some(why)` when the console could not be told (the emulator went away: the file
    /// holds what its buffer had written).
    pub(crate) async fn stop(&mut self) -> Option<String> {
        match self.console.capture_stop().await {
            Ok(()) => None,
            Err(e) => Some(format!(
                "the emulator's console could not stop the capture ({e}); the capture file holds \
                 what the emulator had written out"
            )),
        }
    }

    /// Removes the emulator's own file once it was copied into `capture.pcap`.
    pub(crate) fn remove_file(&self) {
        if let Some(file) = &self.file {
            let _ = std::fs::remove_file(file);
        }
    }
}
