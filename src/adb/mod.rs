//! Client of the adb server: the smart-socket protocol spoken to Debian's (or Google's) `adb` server on
//! 127.0.0.1:5037, and through it the device services tattle needs (shell v2, `exec:`, sync).
//!
//! Owns: framing of server requests (`wire`), the server handle and a private server for tests and
//! `tattle demo --private-adb` (`server`), one device behind the server (`device`), shell v2 decoding and
//! shell quoting (`shell`), and the sync protocol for push/pull/stat (`sync`).
//!
//! Must not touch: what a handset *means* (getprop keys, content providers, Android-version quirks: that is
//! `device`), printing or exit codes (`cli`), and the virtual handset (`vhandset`), which is reached only
//! through the real adb server like any other device.
//!
//! Why tattle writes this itself instead of using a crate: the Rust crates judged in November 2026 lose shell
//! exit codes, and an audit must not mistake a failed command for a success. `adb_client` 3.2.3 returns no
//! exit code for any shell command; `forensic-adb` 0.8.1 and `mozdevice` 0.5.5 use the legacy `shell:`
//! service (no exit codes, stderr merged into stdout) and sync v1 only. Re-judge this choice if one of them
//! gains shell v2 with exit codes. The API follows mozdevice's Host/Device split, async on tokio.
//!
//! Robustness rules: every wait has a timeout (a stopped device leaves the server hanging: there is no
//! keepalive), every read from the server or the device is bounded, and a shell v2 stream that ends without an
//! exit packet is `DeviceLost`, never success. Shell commands are never logged whole, since they can carry
//! canaries (contact names, SMS bodies): only the program name is.

mod device;
mod server;
mod shell;
mod sync;
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

// Public beyond what the crate's own users need: the wire readers and decoders (`encode_request`,
// `parse_hex4`, `read_status`, `read_hex4_body`, `read_to_end_bounded`, `parse_devices_l`,
// `ShellV2Decoder`) are what the fuzz targets in fuzz/ exercise.
pub use device::{AdbDevice, ExecStream};
pub use server::{AdbServer, DeviceInfo, DeviceState, PrivateAdbServer, parse_devices_l};
pub use shell::{ShellEvent, ShellOutput, ShellV2Decoder, shell_quote};
pub use sync::RemoteStat;
pub use wire::{encode_request, parse_hex4, read_hex4_body, read_status, read_to_end_bounded};

/// Default bound on a shell command's stdout + stderr.
pub(crate) const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024 * 1024;

/// Everything that can go wrong talking to the adb server or a device behind it. Each variant is meant to be
/// turned by the CLI into one clear message (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum AdbError {
    #[error(
        "cannot reach the adb server at {addr}: {reason} (start one with `adb start-server`, or set ANDROID_ADB_SERVER_PORT)"
    )]
    ServerUnreachable { addr: SocketAddr, reason: String },
    #[error("`{0}` is not an adb server address (-H HOST -P PORT, e.g. -H farm.example -P 5037)")]
    BadServerAddress(String),
    #[error(
        "the `adb` program was not found (looked for `{binary}`); install it with `apt-get install adb`"
    )]
    AdbMissing { binary: String },
    #[error("could not start the adb server on port {port}: {message}")]
    ServerStart { port: u16, message: String },
    #[error(
        "device `{serial}` not found by the adb server (`adb devices -l` lists the devices it sees)"
    )]
    DeviceNotFound { serial: String },
    #[error("device `{serial}` is offline (reconnect it, or `adb reconnect`)")]
    DeviceOffline { serial: String },
    #[error(
        "device `{serial}` is unauthorized: accept the \"Allow USB debugging\" prompt on the phone"
    )]
    Unauthorized { serial: String },
    #[error(
        "device `{serial}` was lost during {during}: its stream ended before the command finished"
    )]
    DeviceLost { serial: String, during: String },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("adb protocol error: {message}")]
    Protocol { message: String },
    #[error("adb: {message}")]
    Failed { message: String },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("invalid adb request: {message}")]
    InvalidRequest { message: String },
    #[error("I/O error talking to the adb server: {0}")]
    Io(#[from] std::io::Error),
}

impl AdbError {
    pub(crate) fn protocol(message: impl Into<String>) -> AdbError {
        AdbError::Protocol {
            message: message.into(),
        }
    }
}

/// Bytes from the server or the device, made safe to put in an error message by
/// `tattle_analysis::sanitize_lines` (control characters become `?`, lines kept, length capped);
/// only a prefix longer than it ever shows is decoded, and trailing whitespace goes.
pub(crate) fn sanitize(bytes: &[u8]) -> String {
    const DECODED: usize = 4096;
    tattle_analysis::sanitize_lines(
        String::from_utf8_lossy(&bytes[..bytes.len().min(DECODED)]).trim_end(),
    )
}

/// The program name of a shell command, the only part of it that goes into logs and errors.
pub(crate) fn command_label(command: &str) -> String {
    let first = command.split_whitespace().next().unwrap_or("");
    let name = first.rsplit('/').next().unwrap_or(first);
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(40)
        .collect();
    format!("`{clean}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_label_keeps_only_the_program() {
        assert_eq!(
            command_label("content insert --uri content://contacts --bind name:s:Wei Ling"),
            "`content`"
        );
        assert_eq!(command_label("/system/bin/am start"), "`am`");
        assert_eq!(command_label("   "), "``");
    }

    #[test]
    fn sanitize_neutralises_escapes() {
        assert_eq!(sanitize(b"bad\x1b[31mred\r\n"), "bad?[31mred");
        assert_eq!(sanitize(b"two\nlines\n"), "two\nlines");
        let long = vec![b'a'; 20_000];
        let shown = sanitize(&long);
        assert!(
            shown.chars().count() <= 513 && shown.ends_with('…'),
            "{shown}"
        );
    }
}
