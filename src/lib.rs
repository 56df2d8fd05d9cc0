//! tattle audits what an Android handset tells the network.
//!
//! # Architecture: the rooms, and one-way data flow
//!
//! ```text
//!                                   cli  (arguments, progress, messages, exit codes: the only
//!                                    │    place that prints)
//!                                    ▼
//!   scenario ──▶ runner ──▶ device (over adb) ─┐
//!                  │                           ├─▶ analysis ──▶ outcome ──▶ snapshot / report
//!                  └──▶ capture (concurrent) ──┘   (tattle-analysis crate, fed live)
//!
//!   vhandset (+ virtual_device): a device like any other, below everything, reached through adb
//! ```
//!
//! Each room owns one concept, says so in its module doc, and lists what it must not touch:
//!
//! - `scenario`: YAML scenarios, validated with `file:line:col` and the fix, canaries expanded.
//! - `adb`: the client of the adb server (smart sockets, shell v2, exec, sync).
//! - `device`: what a handset can do, as Android shell commands (identity, identifiers, steps,
//!   its clock), and the parsing of their output.
//! - `capture`: the capture sources (`device`: tcpdump over `adb exec-out`, as root where needed;
//!   `pcapdroid`; `emulator`; `iface:NAME`; `file:PATH`; `file:-`), the private capture file, and
//!   the tee of its bytes. Two protocols it drives live in rooms of their own: `pcapdroid` (the
//!   PCAPdroid app's Intent API and TCP exporter over `adb reverse`) and `emulator_console` (the
//!   emulator's console: auth, `network capture`). `host_tools` finds the host's tcpdump.
//! - `runner`: the order of a run in short phases, the live analysis of the capture as it arrives,
//!   the run directory (0700, files 0600); `--differential N` repeats it with planted values.
//! - `differential`: differential canaries, pure: the values each repeated run plants, and which
//!   encrypted flows' sizes follow them.
//! - analysis — the `tattle_analysis` crate: capture bytes in, flows, DNS and identifier findings
//!   out; streaming, pure; its `Redactor` and `sanitize` are the one way any text from a device or
//!   the network is shown.
//! - `outcome`: findings placed in step windows; the redacted, deterministic `Outcome` and its
//!   evidence.
//! - `snapshot`: snapshot names (`<scenario>@<firmware>.snap`, `.snap.new`), insta's file format,
//!   comparison.
//! - `diff`: build A's outcomes against build B's (a snapshot, a run directory or a folder of
//!   either), each change in a sentence a regulator can quote; its typed JSON (`diff::model`).
//! - `report` (private: the runner and the CLI use it): outcomes and diffs in words, the typed
//!   JSON documents (`report::json`), the `tattle analyze` report.
//! - `vhandset`: the virtual handset (adbd with `adb reverse`, shell and its commands, apps such
//!   as PCAPdroid, profiles, its network in a user + network namespace of its own, tcpdump, an
//!   emulator console); depends on nothing above it (but `host_tools`). `virtual_device` starts one and registers it with an adb server.
//! - `policy`: policy files (deny/allow rules, `FILE:LINE:COL` errors) and their verdict on a
//!   run's findings and contacts, each violation with its frame.
//! - `evidence`: a run directory's `manifest.json` (SHA-256 of every file, device, scenario
//!   hash, clock), `tattle verify`, minisign signatures.
//! - `cli` (private): on top of everything; the binary calls [`main`].
//!
//! The public surface is what the integration tests, the fuzz targets and a library user driving a
//! run need (`runner::run` and what its signature names; `snapshot::{name, render, load_outcome}`;
//! the adb client; the virtual handset); everything else is `pub(crate)`.
//!
//! Data flows one way: a room takes what it needs from the rooms before it and never calls back
//! into them; `runner` orchestrates a run across them, `cli` everything. Details, and where the
//! design sketch was departed from: docs/architecture.md.

pub mod adb;
pub mod capture;
mod cli;
pub mod device;
pub mod diff;
pub mod differential;
pub mod emulator_console;
pub mod evidence;
pub mod host_tools;
pub mod outcome;
pub mod pcapdroid;
pub mod policy;
mod report;
pub mod runner;
pub mod scenario;
pub mod snapshot;
pub mod vhandset;
pub mod virtual_device;

/// The `tattle` command line: parses the arguments, runs the command, prints, and returns the exit
/// code (0 clean or equal to the accepted snapshot, 1 findings or a difference, 2 usage or
/// environment error).
pub fn main() -> std::process::ExitCode {
    cli::main()
}
