//! tattle audits what an Android handset tells the network.
//!
//! Data flows one way: `scenario` → `device` (over `adb`) + `capture` → `analysis` → `outcome` →
//! `snapshot` / `report`. `vhandset` is the embedded virtual handset, a device like any other to the rest
//! of the crate; `virtual_device` starts one and registers it with an adb server. `cli` is the only module
//! that prints or picks exit codes.

pub mod adb;
pub mod capture;
pub mod cli;
pub mod device;
pub mod outcome;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod snapshot;
pub mod vhandset;
pub mod virtual_device;
