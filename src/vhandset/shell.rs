//! The handset's shell: an Android-like `/system/bin/sh` for the commands scenarios use.
//! (STUB — being written.)
