//! The one thing the identifier readers need from a device: a shell command run with a timeout.
//!
//! Owns the `Shell` trait, implemented by `AdbDevice` (the real path, through the adb server) and,
//! in unit tests, by scripted devices that answer with the output AOSP's tools print, so the order
//! of attempts (shell, root, screen) is tested for releases no virtual handset persona covers.
//!
//! Must not touch: what commands mean (`identifiers`, `access`, `dialer`, `screen`).

use std::future::Future;
use std::time::Duration;

use crate::adb::{AdbDevice, AdbError, ShellOutput};

/// Runs shell commands on a device.
pub trait Shell: Sync {
    fn run(
        &self,
        command: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<ShellOutput, AdbError>> + Send;
}

impl Shell for AdbDevice {
    fn run(
        &self,
        command: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<ShellOutput, AdbError>> + Send {
        self.shell_with_timeout(command, timeout)
    }
}
