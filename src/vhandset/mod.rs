//! The virtual handset: tattle's own Android device, reachable through the real adb server.
//!
//! It owns an adbd speaking the ADB transport over TCP on loopback (`adbd`), the start and stop of a
//! whole handset (`lifecycle`: `start`, `RunningHandset`), an Android-like shell
//! (`shell`), the sync protocol for push/pull (`sync`), firmware profiles loaded from data files
//! (`profile`) and the real network traffic those profiles emit (`network`: a DNS resolver and HTTP/TLS/NTP
//! sinks on the handset's own 127.77.N.0/24 addresses, plus the traffic emitter), the on-"device"
//! `tcpdump` that runs the host's real tcpdump on that traffic (`tcpdump`), an Android emulator's
//! console for handsets started as emulators (`console`: auth, `network capture` into a pcap file), and
//! the Android releases a handset can imitate (`generation`: per-release tables the shell and adbd
//! consult, selected by the profile's `generation:`); and the third-party apps a persona may install
//! (`apps`: PCAPdroid, driven with its Intent API and exporting its capture through `adb reverse`).
//!
//! It depends on nothing above it in the crate (not `adb`, not `device`, not `analysis`): the handset and
//! the code that drives real phones are written separately from Android's own sources, so that tests
//! between them prove something.

pub mod adbd;
pub mod apps;
pub mod console;
pub mod generation;
pub mod lifecycle;
pub mod network;
pub mod profile;
pub mod shell;
pub mod sync;
pub mod tcpdump;

use tokio::sync::mpsc;

pub use generation::{GENERATIONS, Generation};
pub use lifecycle::{EmulatorConfig, HandsetConfig, RunningHandset, start, start_emulator};
pub use profile::{Persona, Profile, SendButton};

/// Something that happened on the handset that a firmware may react to with network traffic.
/// The shell raises these; `network` plays the profile's traffic for them.
#[derive(Clone, PartialEq, Eq)]
pub enum HandsetEvent {
    /// The setup wizard finished (`settings put secure user_setup_complete 1`).
    SetupComplete,
    /// A contact with a phone number was saved through the contacts provider.
    ContactAdded { name: String, phone: String },
    /// An SMS left the messaging app.
    SmsSent { to: String, body: String },
}

impl HandsetEvent {
    /// The key under which a profile lists this event's traffic.
    pub fn profile_key(&self) -> &'static str {
        match self {
            HandsetEvent::SetupComplete => "setup",
            HandsetEvent::ContactAdded { .. } => "contact_added",
            HandsetEvent::SmsSent { .. } => "sms_sent",
        }
    }
}

impl std::fmt::Debug for HandsetEvent {
    // Contact names and SMS bodies are canaries: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.profile_key())
    }
}

/// The standard streams of one shell command, as the adbd carries them.
///
/// A command writes to `stdout`/`stderr`; when the host closes the ADB stream the adbd drops the
/// receivers, so `stdout.closed()` resolving (or a failed send) means "stop now".
pub struct ShellIo {
    pub stdout: mpsc::Sender<Vec<u8>>,
    pub stderr: mpsc::Sender<Vec<u8>>,
    /// Bytes the host sent on stdin; ends when the host closes stdin.
    pub stdin: mpsc::Receiver<Vec<u8>>,
}

/// Errors of the virtual handset.
#[derive(Debug, thiserror::Error)]
pub enum VhandsetError {
    #[error("unknown firmware profile `{name}`; built-in profiles: {known}")]
    UnknownProfile { name: String, known: String },
    #[error("firmware profile {path}: {message}")]
    BadProfile { path: String, message: String },
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: String,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error(
        "the virtual handset has no network: {private}; and the host's loopback refuses {addr} \
         ({host})"
    )]
    NoNetwork {
        private: network::netns::NetnsError,
        addr: String,
        host: std::io::Error,
    },
    #[error("cannot start the handset as an emulator: {message}")]
    Emulator { message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
