//! Integration tests, one binary (one link step) with a module per area.
//! Tests that need the real adb server start a private one (`ANDROID_ADB_SERVER_PORT`), never the user's.

mod support;
mod outcomes;
mod vhandset_traffic;
mod cli;
mod vhandset_adb;
mod analysis_tshark;
mod scenario_files;
