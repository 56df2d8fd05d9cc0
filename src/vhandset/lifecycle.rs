//! Starting and stopping one virtual handset: `start` binds the adbd's port, starts the handset's network
//! and its state (`shell::Handset`) and serves adb connections until `RunningHandset::shutdown`.
//!
//! Must not touch: the ADB protocol (`adbd`), command semantics (`shell`), traffic (`network`); and
//! nothing above `vhandset` (registering with an adb server is `crate::virtual_device`'s).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

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

/// A started handset. Dropping it does not stop it; call `shutdown`.
pub struct RunningHandset {
    port: u16,
    profile: Arc<Profile>,
    handset: Arc<Handset>,
    network: Arc<HandsetNetwork>,
    stop: watch::Sender<bool>,
    acceptor: tokio::task::JoinHandle<()>,
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
    /// Stops the adbd, the network sinks and every running command (tcpdump included).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.acceptor.await;
        self.network.shutdown().await;
    }
}

/// Starts the adbd, the handset's network and its state. Returns once it is listening.
pub async fn start(config: HandsetConfig) -> Result<RunningHandset, VhandsetError> {
    let addr = format!("127.0.0.1:{}", config.adb_port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| VhandsetError::Bind {
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                " (port in use: pick another, or 0 for a free one)"
            } else {
                ""
            },
            addr: addr.clone(),
            source,
        })?;
    let port = listener.local_addr()?.port();
    let network = Arc::new(HandsetNetwork::start(config.profile.clone()).await?);
    let handset = Handset::new(config.profile.clone(), Some(network.clone()));
    let banner = adbd::banner(&config.profile);
    let (stop, stopped) = watch::channel(false);
    let acceptor = tokio::spawn(adbd::serve(listener, handset.clone(), banner, stopped));
    tracing::info!(port, profile = %config.profile.name, "virtual handset listening");
    Ok(RunningHandset {
        port,
        profile: config.profile,
        handset,
        network,
        stop,
        acceptor,
    })
}
