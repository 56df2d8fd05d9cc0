//! The handset's `tcpdump`: the host's real tcpdump on the handset's own traffic.
//! (STUB — being written.)
