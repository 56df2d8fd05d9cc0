//! The handset's network: resolver, sinks and the traffic emitter.
//! (Being written: the API below is fixed.)

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::{HandsetEvent, Profile, VhandsetError};

/// The network of one virtual handset.
pub struct HandsetNetwork {
    profile: Arc<Profile>,
}

impl HandsetNetwork {
    pub async fn start(profile: Arc<Profile>) -> Result<HandsetNetwork, VhandsetError> {
        Ok(HandsetNetwork { profile })
    }
    /// Plays the profile's traffic for `event` in a spawned task; returns at once.
    pub fn emit(&self, event: HandsetEvent) {
        tracing::debug!(profile = %self.profile.name, ?event, "event (network not yet written)");
    }
    pub fn handset_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(127, 77, 1, 2)
    }
    pub async fn shutdown(&self) {}
}
