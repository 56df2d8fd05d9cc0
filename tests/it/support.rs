//! Shared test set-up: a private adb server (never the user's) and virtual handsets registered with it
//! (`tattle::virtual_device`), or started alone.

use std::sync::Arc;

use tattle::adb::{AdbDevice, AdbServer, PrivateAdbServer};
use tattle::vhandset::{self, HandsetConfig, Profile, RunningHandset};
use tattle::virtual_device::VirtualDevice;

/// A private adb server with virtual handsets registered with it. Shuts everything down on `finish`.
pub struct Bench {
    pub adb: PrivateAdbServer,
    pub handsets: Vec<VirtualDevice>,
}

impl Bench {
    pub async fn start(profiles: &[&str]) -> Bench {
        let adb = PrivateAdbServer::start().await.expect("private adb server");
        let mut handsets = Vec::new();
        for name in profiles {
            let handset = VirtualDevice::start(builtin(name), adb.server())
                .await
                .expect("virtual handset registered with adb");
            handsets.push(handset);
        }
        Bench { adb, handsets }
    }

    pub fn server(&self) -> &AdbServer {
        self.adb.server()
    }

    /// The first handset.
    pub fn handset(&self) -> &VirtualDevice {
        &self.handsets[0]
    }

    /// The first handset as the adb server serves it.
    pub fn device(&self) -> AdbDevice {
        self.handset().adb()
    }

    /// Disconnects and stops every handset still here, then the adb server.
    pub async fn finish(self) {
        for h in self.handsets {
            h.shutdown().await;
        }
    }
}

/// A built-in firmware profile.
pub fn builtin(name: &str) -> Arc<Profile> {
    Arc::new(Profile::builtin(name).expect("built-in profile"))
}

/// A virtual handset on a free port that no adb server knows: for tests that speak the ADB transport
/// themselves, or put something between the server and the handset.
pub async fn unregistered_handset(profile: &str) -> RunningHandset {
    vhandset::start(HandsetConfig {
        profile: builtin(profile),
        adb_port: 0,
    })
    .await
    .expect("virtual handset")
}

/// Every raw value a profile holds, for "never written anywhere" checks.
pub fn profile_values(name: &str) -> Vec<String> {
    Profile::builtin(name)
        .expect("profile")
        .identifiers
        .values()
        .cloned()
        .collect()
}

/// A JSON document printed by tattle, parsed, with its top-level field names.
pub fn json_document(text: &str) -> (serde_json::Value, std::collections::BTreeSet<String>) {
    let doc: serde_json::Value = serde_json::from_str(text).expect("one JSON document");
    let keys = doc
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    (doc, keys)
}

/// `len` pseudo-random bytes (xorshift64), reproducible from `seed`: binary test payloads.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
