//! `adb reverse`: the handset's table of reverse forwards, and connections opened through them from
//! the handset to the host.
//!
//! What a phone's adbd does (adb.cpp `handle_forward_request`, adb_listeners.cpp, system/core
//! android-9 … 11): `reverse:forward:[norebind:]LOCAL;REMOTE` installs a listener on the phone's
//! LOCAL (`tcp:PORT`) that the transport it came on owns, answering one `OKAY` (the device side sends
//! a single one; only the host's own forward sends two); `reverse:killforward:LOCAL` and
//! `reverse:killforward-all` remove them; `reverse:list-forward` answers a length-prefixed list of
//! `(reverse) LOCAL REMOTE` lines. When something on the phone connects to LOCAL, adbd OPENs REMOTE
//! on that transport and the adb server connects to it on the host. A listener dies with its
//! transport.
//!
//! Here, the "something on the phone" is the handset's own emulated apps (PCAPdroid's exporter), which
//! ask this table for a connection instead of going through a socket: `connect_tcp(PORT)`.
//!
//! Must not touch: the ADB messages (the connection turns an [`OpenRequest`] into OPEN/OKAY/CLSE),
//! what the bytes mean.

use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot};

use super::stream::AdbStream;

/// Bytes buffered between an app and the adb stream of a reverse connection.
const BRIDGE_BUFFER: usize = 256 * 1024;
/// Reverse forwards one handset keeps (adbd has no limit; a host asking for thousands is broken).
const MAX_REVERSES: usize = 64;

/// A request to a connection to OPEN `destination` towards the host.
pub(super) struct OpenRequest {
    pub(super) destination: String,
    pub(super) reply: oneshot::Sender<Option<AdbStream>>,
}

/// The handle through which a connection accepts OPEN requests.
pub(super) type Opener = mpsc::Sender<OpenRequest>;

struct Reverse {
    local: String,
    remote: String,
    opener: Opener,
}

/// Why a reverse request was refused: the text adbd sends after `FAIL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refused(pub(super) String);

/// What the handset's apps get when they connect through a reverse forward.
#[derive(Debug, thiserror::Error)]
pub enum ReverseError {
    /// Nothing listens on the phone's port: as `connect()` gets ECONNREFUSED.
    #[error("connection refused: no `adb reverse` on tcp:{0}")]
    NotForwarded(u16),
    /// The host refused the OPEN (nothing listens on the host side) or the transport is gone.
    #[error("the host refused the reverse connection to {0}")]
    HostRefused(String),
}

/// The handset's reverse forwards, across its adbd connections.
#[derive(Default)]
pub struct Reverses {
    table: Mutex<Vec<Reverse>>,
}

impl std::fmt::Debug for Reverses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reverses").finish_non_exhaustive()
    }
}

/// `tcp:PORT` with a port adbd could listen on (`tcp:0` asks for any free one).
fn tcp_port(spec: &str) -> Option<u16> {
    spec.strip_prefix("tcp:")?.parse().ok()
}

impl Reverses {
    fn table(&self) -> std::sync::MutexGuard<'_, Vec<Reverse>> {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        // A listener dies with its transport.
        t.retain(|r| !r.opener.is_closed());
        t
    }

    /// Serves one `reverse:` request (the text after `reverse:`) that came on the connection
    /// `opener` belongs to; returns the reply bytes adbd writes on the stream.
    pub(super) fn handle(&self, request: &str, opener: &Opener) -> Vec<u8> {
        match self.serve(request, opener) {
            Ok(reply) => reply,
            Err(Refused(text)) => {
                let mut out = b"FAIL".to_vec();
                out.extend_from_slice(format!("{:04x}", text.len()).as_bytes());
                out.extend_from_slice(text.as_bytes());
                out
            }
        }
    }

    fn serve(&self, request: &str, opener: &Opener) -> Result<Vec<u8>, Refused> {
        if request == "list-forward" {
            let list: String = self
                .table()
                .iter()
                .map(|r| format!("(reverse) {} {}\n", r.local, r.remote))
                .collect();
            return Ok(format!("{:04x}{list}", list.len()).into_bytes());
        }
        if request == "killforward-all" {
            self.table().clear();
            return Ok(b"OKAY".to_vec());
        }
        if let Some(local) = request.strip_prefix("killforward:") {
            if local.is_empty() || local.contains(';') {
                return Err(Refused(format!("bad killforward: {local}")));
            }
            let mut t = self.table();
            let before = t.len();
            t.retain(|r| r.local != local);
            return if t.len() < before {
                Ok(b"OKAY".to_vec())
            } else {
                Err(Refused(format!("listener '{local}' not found")))
            };
        }
        if let Some(spec) = request.strip_prefix("forward:") {
            let (no_rebind, spec) = match spec.strip_prefix("norebind:") {
                Some(rest) => (true, rest),
                None => (false, spec),
            };
            let pieces: Vec<&str> = spec.split(';').collect();
            if pieces.len() != 2
                || pieces[0].is_empty()
                || pieces[1].is_empty()
                || pieces[1].starts_with('*')
            {
                return Err(Refused(format!("bad forward: {spec}")));
            }
            let (local, remote) = (pieces[0], pieces[1]);
            let Some(port) = tcp_port(local) else {
                // local:/localabstract: listeners exist on phones; no app here would use them.
                return Err(Refused(format!(
                    "cannot bind listener: unknown local portname '{local}'"
                )));
            };
            let mut t = self.table();
            let mut resolved = None;
            let local = if port == 0 {
                // adbd binds port 0 and reports the port the kernel chose; pick a free one the same way.
                let used: Vec<u16> = t.iter().filter_map(|r| tcp_port(&r.local)).collect();
                let p = (40_000..60_000u16)
                    .find(|p| !used.contains(p))
                    .unwrap_or(40_000);
                resolved = Some(p);
                format!("tcp:{p}")
            } else {
                local.to_string()
            };
            if let Some(existing) = t.iter_mut().find(|r| r.local == local) {
                if no_rebind {
                    return Err(Refused("cannot rebind existing socket".into()));
                }
                existing.remote = remote.to_string();
                existing.opener = opener.clone();
            } else {
                if t.len() >= MAX_REVERSES {
                    return Err(Refused(
                        "cannot bind listener: too many reverse forwards".into(),
                    ));
                }
                t.push(Reverse {
                    local,
                    remote: remote.to_string(),
                    opener: opener.clone(),
                });
            }
            let mut reply = b"OKAY".to_vec();
            if let Some(p) = resolved {
                let text = p.to_string();
                reply.extend_from_slice(format!("{:04x}{text}", text.len()).as_bytes());
            }
            return Ok(reply);
        }
        // adbd's reverse_service answers anything else with the forward handler's "not a
        // forwarding request", which the host prints as an unknown service.
        Err(Refused(format!("unknown reverse request: {request}")))
    }

    /// Connects to the phone's `tcp:PORT` as an app would, through the reverse forward installed
    /// there: the bytes go to the host's REMOTE through the adb server. The returned stream is the
    /// app's socket.
    pub async fn connect_tcp(&self, port: u16) -> Result<DuplexStream, ReverseError> {
        let local = format!("tcp:{port}");
        let (remote, opener) = {
            let t = self.table();
            let r = t
                .iter()
                .find(|r| r.local == local)
                .ok_or(ReverseError::NotForwarded(port))?;
            (r.remote.clone(), r.opener.clone())
        };
        let (reply, answer) = oneshot::channel();
        let request = OpenRequest {
            destination: remote.clone(),
            reply,
        };
        if opener.send(request).await.is_err() {
            return Err(ReverseError::HostRefused(remote));
        }
        let Ok(Some(stream)) = answer.await else {
            return Err(ReverseError::HostRefused(remote));
        };
        let (app, bridge) = tokio::io::duplex(BRIDGE_BUFFER);
        tokio::spawn(pump(stream, bridge));
        Ok(app)
    }
}

/// Moves bytes between the app's end and the adb stream until either side closes.
async fn pump(mut stream: AdbStream, mut app: DuplexStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            n = app.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => if stream.write(&buf[..n]).await.is_err() { break },
            },
            data = stream.recv_unacked() => match data {
                None => break,
                Some(d) => {
                    if app.write_all(&d).await.is_err() { break }
                    stream.ack().await;
                }
            },
        }
    }
    let _ = app.shutdown().await;
    stream.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opener() -> (Opener, mpsc::Receiver<OpenRequest>) {
        mpsc::channel(1)
    }

    #[test]
    fn forward_list_kill_as_adbd_answers() {
        let r = Reverses::default();
        let (o, _rx) = opener();
        assert_eq!(r.handle("forward:tcp:5123;tcp:6000", &o), b"OKAY");
        assert_eq!(
            r.handle("list-forward", &o),
            b"001c(reverse) tcp:5123 tcp:6000\n"
        );
        assert_eq!(
            r.handle("forward:norebind:tcp:5123;tcp:7000", &o),
            b"FAIL001dcannot rebind existing socket"
        );
        assert_eq!(r.handle("forward:tcp:5123;tcp:7000", &o), b"OKAY");
        let any = r.handle("forward:tcp:0;tcp:7001", &o);
        assert!(any.starts_with(b"OKAY0005"), "{any:?}");
        assert_eq!(r.handle("killforward:tcp:5123", &o), b"OKAY");
        assert!(
            r.handle("killforward:tcp:5123", &o)
                .starts_with(b"FAIL001dlistener 'tcp:5123' not found")
        );
        assert!(r.handle("forward:tcp:1", &o).starts_with(b"FAIL"));
        assert_eq!(r.handle("killforward-all", &o), b"OKAY");
        assert_eq!(r.handle("list-forward", &o), b"0000");
    }

    #[tokio::test]
    async fn a_forward_dies_with_its_connection() {
        let r = Reverses::default();
        let (o, rx) = opener();
        assert_eq!(r.handle("forward:tcp:5123;tcp:6000", &o), b"OKAY");
        drop(rx);
        assert_eq!(r.handle("list-forward", &o), b"0000");
        assert!(matches!(
            r.connect_tcp(5123).await,
            Err(ReverseError::NotForwarded(5123))
        ));
    }
}
