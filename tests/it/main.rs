//! Integration tests, one binary (one link step) with a module per area.
//! Tests that need the real adb server start a private one (`ANDROID_ADB_SERVER_PORT`), never the user's.

mod adb_client;
mod analysis_quic;
mod analysis_tls;
mod analysis_tshark;
mod analyze_cli;
mod capture_sources;
mod cli;
mod devices;
mod differential;
mod emulator_console;
mod http2_peers;
mod http3_peers;
mod identifiers;
mod many_devices;
mod outcomes;
mod pcapdroid;
mod personas;
mod policy_evidence;
mod reports;
mod review;
mod runs;
mod scenario_files;
mod support;
mod ui_steps;
mod unplug;
mod vhandset_adb;
mod vhandset_traffic;
