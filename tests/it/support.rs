//! Shared test set-up: a private adb server (never the user's) and virtual handsets registered with it.

use std::sync::Arc;
use std::time::Duration;

use tattle::adb::{AdbServer, PrivateAdbServer};
use tattle::vhandset::{self, HandsetConfig, Profile, RunningHandset};

/// A private adb server with virtual handsets connected to it. Shuts everything down on `finish`.
pub struct Bench {
    pub adb: PrivateAdbServer,
    pub handsets: Vec<RunningHandset>,
}

impl Bench {
    pub async fn start(profiles: &[&str]) -> Bench {
        let adb = PrivateAdbServer::start().await.expect("private adb server");
        let mut handsets = Vec::new();
        for name in profiles {
            let profile = Arc::new(Profile::builtin(name).expect("built-in profile"));
            let handset = vhandset::start(HandsetConfig {
                profile,
                adb_port: 0,
            })
            .await
            .expect("virtual handset");
            adb.server()
                .connect(&handset.serial())
                .await
                .expect("adb connect");
            adb.server()
                .wait_for_device(&handset.serial(), Duration::from_secs(20))
                .await
                .expect("device ready");
            handsets.push(handset);
        }
        Bench { adb, handsets }
    }

    pub fn server(&self) -> &AdbServer {
        self.adb.server()
    }

    pub async fn finish(self) {
        for h in self.handsets {
            let _ = self.adb.server().disconnect(&h.serial()).await;
            h.shutdown().await;
        }
    }
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
