//! The handset's adbd: the ADB transport over TCP (CNXN/OPEN/OKAY/WRTE/CLSE), stream multiplexing and
//! the services `shell,v2,…:`, legacy `shell:`, `exec:` and `sync:`.
//! (STUB — being written.)

use std::sync::Arc;

use super::{Profile, VhandsetError};

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
    _private: (),
}

impl RunningHandset {
    /// The serial the adb server will give it after `adb connect`: `127.0.0.1:PORT`.
    pub fn serial(&self) -> String {
        unimplemented!()
    }
    pub fn port(&self) -> u16 {
        unimplemented!()
    }
    pub fn profile(&self) -> &Profile {
        unimplemented!()
    }
    /// Stops the adbd, the network sinks and every running command (tcpdump included).
    pub async fn shutdown(self) {}
}

/// Starts the adbd, the handset's network and its state. Returns once it is listening.
pub async fn start(_config: HandsetConfig) -> Result<RunningHandset, VhandsetError> {
    unimplemented!()
}
