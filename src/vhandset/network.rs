//! The handset's network: resolver, sinks and the traffic emitter.
//! (STUB — being written.)
