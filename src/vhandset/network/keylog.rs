//! The handset's TLS key log: the NSS key log lines (`CLIENT_RANDOM …`, `CLIENT_TRAFFIC_SECRET_0 …`)
//! its TLS client writes when the profile says the build has one (`handset.tls_keylog:`).
//!
//! On a phone such a file comes from a debug build or an instrumented app (a Frida key log script, an
//! app built with a key log hook) writing to a path the shell can read; tattle pulls it with
//! `--keylog device:PATH`. The handset imitates that: rustls hands each secret to [`KeyLogLines`], and
//! the handset moves the pending lines into its file system at the profile's path
//! (`Handset::state`), where `adb pull` and `cat` find them like any file.
//!
//! Must not touch: the handset's file system (the handset owns it), sockets.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Lines not yet moved into the handset's files, at most this many bytes; a handset whose file system
/// nobody reads drops later lines (and says so once) rather than growing.
const MAX_PENDING: usize = 1024 * 1024;

/// NSS key log lines waiting to be written to the handset's key log file.
#[derive(Default)]
pub struct KeyLogLines {
    pending: Mutex<Vec<u8>>,
    warned: AtomicBool,
}

impl std::fmt::Debug for KeyLogLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("KeyLogLines").finish_non_exhaustive()
    }
}

impl KeyLogLines {
    /// The lines written since the last call.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl rustls::KeyLog for KeyLogLines {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        // The format of NSS's SSLKEYLOGFILE (RFC 9850 §3): LABEL, the client random and the secret in hex.
        let mut line =
            String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
        line.push_str(label);
        line.push(' ');
        for b in client_random {
            let _ = write!(line, "{b:02x}");
        }
        line.push(' ');
        for b in secret {
            let _ = write!(line, "{b:02x}");
        }
        line.push('\n');
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() + line.len() > MAX_PENDING {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the handset's TLS key log holds {MAX_PENDING} bytes nobody wrote out; later secrets are dropped"
                );
            }
            return;
        }
        pending.extend_from_slice(line.as_bytes());
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::KeyLog;

    #[test]
    fn lines_are_nss_key_log_lines_and_bounded() {
        let k = KeyLogLines::default();
        k.log("CLIENT_RANDOM", &[0xab; 32], &[0x01; 48]);
        let text = String::from_utf8(k.take()).unwrap();
        assert_eq!(
            text,
            format!("CLIENT_RANDOM {} {}\n", "ab".repeat(32), "01".repeat(48))
        );
        assert!(k.take().is_empty(), "taken lines are gone");
        let stats = tattle_analysis::keylog::KeyLog::new().add_text(text.as_bytes());
        assert_eq!(
            (stats.secrets, stats.malformed),
            (1, 0),
            "tattle's own parser reads it"
        );
        for _ in 0..(MAX_PENDING / 100 + 10) {
            k.log("CLIENT_TRAFFIC_SECRET_0", &[1; 32], &[2; 32]);
        }
        let held = k.take().len();
        assert!(held <= MAX_PENDING && held > MAX_PENDING - 200, "{held}");
    }
}
