//! Starting and stopping one virtual handset: `start` binds the adbd's port, starts the handset's network
//! and its state (`shell::Handset`) and serves adb connections until `RunningHandset::shutdown`.
//! `start_emulator` does the same on an emulator's port pair (console N, adbd N+1) and serves the
//! emulator console (`console`) on N as well.
//!
//! Must not touch: the ADB protocol (`adbd`), command semantics (`shell`), traffic (`network`), the
//! console protocol (`console`); and nothing above `vhandset` (registering with an adb server is
//! `crate::virtual_device`'s).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::console::{self, ConsoleHandle};
use super::network::HandsetNetwork;
use super::shell::Handset;
use super::{Profile, VhandsetError, adbd};

/// How to start one virtual handset.
#[derive(Debug, Clone)]
pub struct HandsetConfig {
    pub profile: Arc<Profile>,
    /// TCP port of the adbd on 127.0.0.1; 0 picks a free one. Avoid 5555–5585: the adb server probes
    /// those at start-up and would list the handset as an emulator.
    pub adb_port: u16,
}

/// What makes a handset look like an Android emulator: an emulator console, and the port pair an
/// emulator takes (`emulator -port N`: console on N, even; adbd on N+1). A separate value rather than
/// fields of `HandsetConfig`, which callers build as a struct literal.
#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    /// The console's TCP port on 127.0.0.1, even; the adbd listens on the next one. 0 picks a free
    /// pair. The adb server finds emulators by scanning adb ports 5555–5585: a pair there is found by
    /// every adb server on the machine (see docs/virtual-handset.md before choosing one).
    pub console_port: u16,
    /// The console's auth token file. `None`: the emulator's own, `$HOME/.emulator_console_auth_token`,
    /// created with a fresh token when missing, exactly as the emulator does. An empty file turns auth
    /// off.
    pub token_file: Option<PathBuf>,
}

/// A started handset. Dropping it does not stop it; call `shutdown`.
pub struct RunningHandset {
    port: u16,
    profile: Arc<Profile>,
    handset: Arc<Handset>,
    network: Arc<HandsetNetwork>,
    /// The handset's stop signal: `shutdown` sends it, and so does the console's `kill`.
    stop: Arc<watch::Sender<bool>>,
    acceptor: tokio::task::JoinHandle<()>,
    console: Option<ConsoleHandle>,
}

impl RunningHandset {
    /// The serial the adb server will give it after `adb connect`: `127.0.0.1:PORT`.
    pub fn serial(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    /// The handset's shared state (what its shell sees), e.g. to inspect contacts or events in tests.
    pub fn handset(&self) -> &Arc<Handset> {
        &self.handset
    }
    /// The handset's network (its address, to filter a capture on).
    pub fn network(&self) -> &HandsetNetwork {
        &self.network
    }
    /// The emulator console, when started with `start_emulator`.
    pub fn console(&self) -> Option<&ConsoleHandle> {
        self.console.as_ref()
    }
    /// The console's port, when the handset is an emulator.
    pub fn console_port(&self) -> Option<u16> {
        self.console.as_ref().map(ConsoleHandle::port)
    }
    /// The serial an adb server gives an emulator whose console is on N: `emulator-N` (adb's
    /// `getEmulatorSerialString`), when the server finds it by its adb port (its scan of 5555–5585, or
    /// `host:emulator:N+1`); `adb connect` gives `serial()` instead.
    pub fn emulator_serial(&self) -> Option<String> {
        self.console_port().map(|n| format!("emulator-{n}"))
    }
    /// Whether the handset was told to stop (by `shutdown`, or the console's `kill`): its adbd and
    /// console no longer answer.
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }
    /// Stops the adbd, the console (closing its capture file), the network sinks and every running
    /// command (tcpdump included).
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.acceptor.await;
        if let Some(console) = self.console {
            console.join().await;
        }
        self.network.shutdown().await;
    }
}

/// Starts the adbd, the handset's network and its state. Returns once it is listening.
pub async fn start(config: HandsetConfig) -> Result<RunningHandset, VhandsetError> {
    let listener = bind(config.adb_port).await?;
    launch(config.profile, listener, None).await
}

/// Starts a handset that looks like an Android emulator: its console on `emulator.console_port` and
/// its adbd on the port after it (`config.adb_port` must be 0 or that port). Returns once both listen.
pub async fn start_emulator(
    config: HandsetConfig,
    emulator: EmulatorConfig,
) -> Result<RunningHandset, VhandsetError> {
    let token_file = match emulator.token_file {
        Some(path) => path,
        None => console::default_token_file().ok_or_else(|| VhandsetError::Emulator {
            message: "no $HOME for the console's token file (~/.emulator_console_auth_token): \
                      set HOME, or give the token file"
                .into(),
        })?,
    };
    let (console_listener, adb_listener) = match emulator.console_port {
        0 if config.adb_port == 0 => free_pair().await?,
        0 => {
            return Err(VhandsetError::Emulator {
                message: format!(
                    "adb port {} asked with a free console port: an emulator's adb port is its \
                     console port + 1; give the console port (even) instead",
                    config.adb_port
                ),
            });
        }
        n if n % 2 != 0 || n == u16::MAX => {
            return Err(VhandsetError::Emulator {
                message: format!(
                    "console port {n}: an emulator's console port is even and its adb port is the \
                     next one (5554/5555, 5556/5557, ...)"
                ),
            });
        }
        n if config.adb_port != 0 && config.adb_port != n + 1 => {
            return Err(VhandsetError::Emulator {
                message: format!(
                    "adb port {} with console port {n}: an emulator's adb port is its console port \
                     + 1 ({})",
                    config.adb_port,
                    n + 1
                ),
            });
        }
        n => (bind(n).await?, bind(n + 1).await?),
    };
    launch(
        config.profile,
        adb_listener,
        Some((console_listener, token_file)),
    )
    .await
}

async fn bind(port: u16) -> Result<TcpListener, VhandsetError> {
    let addr = format!("127.0.0.1:{port}");
    TcpListener::bind(&addr)
        .await
        .map_err(|source| VhandsetError::Bind {
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                " (port in use: pick another, or 0 for a free one)"
            } else {
                ""
            },
            addr: addr.clone(),
            source,
        })
}

/// A free even port and the odd one after it, both bound. The kernel hands out one free port at a
/// time, so the pair is built around it and retried when its neighbour is taken.
async fn free_pair() -> Result<(TcpListener, TcpListener), VhandsetError> {
    for _ in 0..64 {
        let first = bind(0).await?;
        let port = first.local_addr()?.port();
        let pair = if port % 2 == 0 {
            match port.checked_add(1) {
                Some(next) => bind(next).await.ok().map(|adb| (first, adb)),
                None => None,
            }
        } else {
            bind(port - 1).await.ok().map(|console| (console, first))
        };
        if let Some(pair) = pair {
            return Ok(pair);
        }
    }
    Err(VhandsetError::Emulator {
        message: "no free pair of ports (even console, adb next to it) on 127.0.0.1 after 64 tries"
            .into(),
    })
}

async fn launch(
    profile: Arc<Profile>,
    listener: TcpListener,
    console: Option<(TcpListener, PathBuf)>,
) -> Result<RunningHandset, VhandsetError> {
    let port = listener.local_addr()?.port();
    let network = Arc::new(HandsetNetwork::start(profile.clone()).await?);
    let handset = Handset::new(profile.clone(), Some(network.clone()));
    let banner = adbd::banner(&profile);
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    let console = match console {
        Some((console_listener, token_file)) => Some(console::spawn(
            console_listener,
            token_file,
            profile.name.clone(),
            network.clone(),
            Some(handset.clone()),
            stopped.clone(),
            stop.clone(),
        )?),
        None => None,
    };
    let acceptor = tokio::spawn(adbd::serve(listener, handset.clone(), banner, stopped));
    tracing::info!(
        port,
        console = console.as_ref().map(ConsoleHandle::port),
        profile = %profile.name,
        "virtual handset listening"
    );
    Ok(RunningHandset {
        port,
        profile,
        handset,
        network,
        stop,
        acceptor,
        console,
    })
}
