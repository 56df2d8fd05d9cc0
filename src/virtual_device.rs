//! A virtual handset as an adb device: started with a firmware profile, registered with an adb server
//! (`host:connect`, as `adb connect` does), ready once the server lists it as `device`; and, at the end,
//! disconnected and stopped. `tattle demo` and the integration tests get their handsets here.
//!
//! Why a module of its own: this is where the virtual handset and the adb client meet, and neither may
//! know the other. `vhandset` depends on nothing above it (its adbd is written from Android's sources,
//! not from tattle's client, so tests between them prove something); `adb` knows servers and serials,
//! not what answers behind them; `device` drives any handset and must not know which one it drives. So
//! the join lives one level above `adb` and `vhandset`, beside `device`, below `cli`.
//!
//! Must not touch: the handset's internals (only `vhandset::start` and `RunningHandset`), the adb wire
//! protocol (only `AdbServer`'s requests), what commands mean (`device`), the terminal.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::adb::{AdbDevice, AdbError, AdbServer};
use crate::vhandset::{
    self, EmulatorConfig, HandsetConfig, Profile, RunningHandset, VhandsetError,
};

/// How long a freshly connected handset may take to be listed as `device`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a virtual handset could not be started or registered. Whatever was started is stopped again.
#[derive(Debug, thiserror::Error)]
pub enum VirtualDeviceError {
    #[error("starting the virtual handset `{profile}`")]
    Start {
        profile: String,
        #[source]
        source: VhandsetError,
    },
    #[error("registering the virtual handset `{profile}` ({serial}) with the adb server")]
    Register {
        profile: String,
        serial: String,
        #[source]
        source: AdbError,
    },
}

/// How a handset started as an emulator is made known to the adb server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// `adb connect 127.0.0.1:ADB_PORT`, as for any network device: serial `127.0.0.1:ADB_PORT`.
    Connect,
    /// `host:emulator:ADB_PORT`, what an emulator tells the adb server when it starts: serial
    /// `emulator-CONSOLE_PORT`, found by the same code path as the emulators the server's scan of
    /// 5555–5585 finds. The server forgets it only when the handset stops (and then retries its port
    /// for a minute, as it does for every emulator that went away).
    AsEmulator,
}

/// A running virtual handset registered with an adb server. Derefs to the `RunningHandset` (its
/// profile, state, network). Dropping it neither disconnects nor stops it: call `shutdown`.
pub struct VirtualDevice {
    handset: RunningHandset,
    server: AdbServer,
    /// The serial the server lists it under.
    serial: String,
    registration: Registration,
}

impl VirtualDevice {
    /// Starts a handset with `profile` on a free port and registers it with `server`; returns once the
    /// server lists it as `device`.
    pub async fn start(
        profile: Arc<Profile>,
        server: &AdbServer,
    ) -> Result<VirtualDevice, VirtualDeviceError> {
        Self::start_with(
            HandsetConfig {
                profile,
                adb_port: 0,
            },
            server,
        )
        .await
    }

    /// Same, with the handset's own settings (e.g. a fixed adbd port).
    pub async fn start_with(
        config: HandsetConfig,
        server: &AdbServer,
    ) -> Result<VirtualDevice, VirtualDeviceError> {
        let profile = config.profile.name.clone();
        let handset =
            vhandset::start(config)
                .await
                .map_err(|source| VirtualDeviceError::Start {
                    profile: profile.clone(),
                    source,
                })?;
        let serial = handset.serial();
        if let Err(source) = register(server, &serial).await {
            let _ = server.disconnect(&serial).await;
            handset.shutdown().await;
            return Err(VirtualDeviceError::Register {
                profile,
                serial,
                source,
            });
        }
        Ok(VirtualDevice {
            handset,
            server: server.clone(),
            serial,
            registration: Registration::Connect,
        })
    }

    /// Starts a handset as an Android emulator (its console on an even port, its adbd on the next; see
    /// `vhandset::start_emulator`) and registers it with `server` as `registration` says; returns once
    /// the server lists it as `device`.
    pub async fn start_emulator(
        config: HandsetConfig,
        emulator: EmulatorConfig,
        registration: Registration,
        server: &AdbServer,
    ) -> Result<VirtualDevice, VirtualDeviceError> {
        let profile = config.profile.name.clone();
        let handset = vhandset::start_emulator(config, emulator)
            .await
            .map_err(|source| VirtualDeviceError::Start {
                profile: profile.clone(),
                source,
            })?;
        let (serial, registered) = match registration {
            Registration::Connect => {
                let serial = handset.serial();
                let r = register(server, &serial).await;
                (serial, r)
            }
            Registration::AsEmulator => {
                // Always `Some` for a handset started as an emulator.
                let serial = handset
                    .emulator_serial()
                    .unwrap_or_else(|| handset.serial());
                let r = match server.register_emulator(handset.port()).await {
                    Ok(()) => server.wait_for_device(&serial, READY_TIMEOUT).await,
                    Err(e) => Err(e),
                };
                (serial, r)
            }
        };
        if let Err(source) = registered {
            if registration == Registration::Connect {
                let _ = server.disconnect(&serial).await;
            }
            handset.shutdown().await;
            return Err(VirtualDeviceError::Register {
                profile,
                serial,
                source,
            });
        }
        Ok(VirtualDevice {
            handset,
            server: server.clone(),
            serial,
            registration,
        })
    }

    /// The serial the adb server lists it under: `127.0.0.1:PORT` after `adb connect`,
    /// `emulator-N` when registered as an emulator.
    pub fn adb_serial(&self) -> &str {
        &self.serial
    }

    /// The handset as the adb server serves it: what `device::Device` drives.
    pub fn adb(&self) -> AdbDevice {
        self.server.device(&self.serial)
    }

    /// The adb server it is registered with.
    pub fn server(&self) -> &AdbServer {
        &self.server
    }

    /// Disconnects it from the server (`host:disconnect`), then stops the handset. A server that is
    /// already gone, or has already forgotten the handset, is no error here. A handset registered as an
    /// emulator cannot be disconnected by serial (`host:disconnect` takes a network address): the
    /// server drops it when the handset stops.
    pub async fn shutdown(self) {
        if self.registration == Registration::Connect {
            let serial = &self.serial;
            if let Err(e) = self.server.disconnect(serial).await {
                tracing::debug!(%serial, "adb disconnect at shutdown: {e}");
            }
        }
        self.handset.shutdown().await;
    }

    /// Gives up the registration without undoing it: the server keeps listing the serial, so stopping
    /// the returned handset looks to the server like a device that went away.
    pub fn into_handset(self) -> RunningHandset {
        self.handset
    }
}

impl Deref for VirtualDevice {
    type Target = RunningHandset;

    fn deref(&self) -> &RunningHandset {
        &self.handset
    }
}

/// Registers a device reachable over TCP (`HOST:PORT`) with `server` and waits up to `READY_TIMEOUT`
/// until the server lists it as `device`: what `VirtualDevice::start` does once its handset listens,
/// and what a handset reached through something else (a relay, another machine) needs too.
pub async fn register(server: &AdbServer, serial: &str) -> Result<(), AdbError> {
    server.connect(serial).await?;
    server.wait_for_device(serial, READY_TIMEOUT).await
}
