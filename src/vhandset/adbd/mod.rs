//! The handset's adbd: the ADB transport over TCP (CNXN/OPEN/OKAY/WRTE/CLSE), as Debian's adb server
//! speaks it to a device, and the services it offers on its streams.
//!
//! Submodules, one concern each: `message` (the wire format of one message), `connection` (accepting
//! connections, the CNXN handshake and banner, multiplexing streams on one connection), `stream` (one
//! stream's flow control as a service sees it), `services` (which services exist and who serves them),
//! `shell_service` (running a shell command on a stream, raw or shell v2), `shell_protocol` (the
//! shell-v2 packets) and `reverse` (`adb reverse`: streams the handset opens towards the host). Starting and stopping a whole handset is `lifecycle`, one level up.
//!
//! Protocol facts come from AOSP's protocol.txt / SERVICES.TXT and from /work/shared/notes/adb-wire-facts.md
//! (measured against Debian's adb server): no AUTH, no STLS, no `delayed_ack`; one WRTE in flight per
//! stream; every incoming WRTE acknowledged (here: when the service consumes it, which is the
//! backpressure); the data checksum is sent but never checked.
//!
//! Everything the peer sends is untrusted: lengths are checked against the negotiated maximum before any
//! allocation, per-stream queues are bounded, and a protocol violation closes that connection only.
//!
//! Must not touch: command semantics (that is `shell`), the sync wire format (`sync`), traffic (`network`).

mod connection;
mod message;
mod reverse;
mod services;
mod shell_protocol;
mod shell_service;
mod stream;

pub use connection::{FEATURES, banner, serve};
pub use message::{
    A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_STLS, A_VERSION, A_WRTE, CodecError, HEADER_LEN,
    Header, MAX_PAYLOAD, Message, parse_header,
};
pub use reverse::{ReverseError, Reverses};
pub use services::{Service, parse_service};
pub use shell_protocol::{MAX_SHELL_PACKET, ShellPacketParser, shell_packet};
pub use stream::{AdbStream, StreamClosed};

/// Aborts a spawned task when dropped, so a command dies with the stream that runs it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
