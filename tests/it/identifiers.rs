//! Identifiers read through Debian's adb server from every built-in virtual handset profile: every
//! value read is the profile's own (never another identifier from a wrong transaction code), every
//! value not read is named with a reason, and nothing reaches the logs.

use tattle::device::identifiers::Status;
use tattle::device::{Device, ReadOptions};
use tattle::vhandset::Profile;

use crate::support::Bench;

/// The profile's values of `kind`: `imei`, and any numbered variant a profile keeps for a second
/// SIM (`imei2`, `imei_1`).
fn profile_values_of(profile: &Profile, kind: &str) -> Vec<String> {
    profile
        .identifiers
        .iter()
        .filter(|(k, _)| k.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_') == kind)
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_read_is_the_profiles_own() {
    let names = Profile::builtin_names();
    let bench = Bench::start(names).await;
    for (handset, name) in bench.handsets.iter().zip(names) {
        let profile = Profile::builtin(name).unwrap();
        let device = Device::new(handset.adb());
        let identity = device.identity().await.expect("identity");
        let report = device
            .read_identifiers(&identity, ReadOptions::default())
            .await
            .expect("identifiers");
        let read = report.identifiers();
        assert!(!read.is_empty(), "{name}: nothing read");
        for id in &read {
            let known = profile_values_of(&profile, &id.kind);
            assert!(
                known.contains(&id.value),
                "{name}: a {} was read that the profile does not hold",
                id.kind
            );
        }
        for reading in &report.readings {
            match reading.status {
                Status::Read => assert!(reading.value().is_some() && reading.method.is_some()),
                Status::Missing | Status::Absent => {
                    assert!(reading.value().is_none());
                    assert!(
                        reading.reason.as_deref().is_some_and(|r| r.len() > 10),
                        "{name}: {reading:?}"
                    );
                }
            }
        }
        // What the run gets: the values, and the rest as missing with a reason.
        let (ids, missing) = (report.identifiers(), report.missing());
        for kind in profile.identifiers.keys() {
            let kind = kind.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_');
            assert!(
                ids.iter().any(|i| i.kind == kind) || missing.iter().any(|m| m.kind == kind),
                "{name}: {kind} neither read nor reported missing"
            );
        }
    }
    bench.finish().await;
}

/// The dual-SIM vendor 14 that refuses the shell: both IMEIs, slot 0 and slot 1 in order, from
/// the `*#06#` dialog; afterwards the dialog is gone from the screen (closed with its button,
/// then HOME).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_sim_imeis_from_the_dialer_and_the_screen_left_clean() {
    let bench = Bench::start(&["vendor-14-locked"]).await;
    let profile = Profile::builtin("vendor-14-locked").unwrap();
    let adb = bench.device();
    let device = Device::new(adb.clone());
    let identity = device.identity().await.unwrap();
    let report = device
        .read_identifiers(&identity, ReadOptions::default())
        .await
        .unwrap();
    for (slot, key) in [(0, "imei"), (1, "imei2")] {
        let r = report
            .readings
            .iter()
            .find(|r| r.kind == "imei" && r.slot == Some(slot))
            .unwrap();
        assert_eq!(
            r.value(),
            Some(profile.identifiers[key].as_str()),
            "slot {slot}"
        );
        assert_eq!(r.via, Some("screen"));
    }
    let screen = tattle::device::screen::dump(&adb, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        !screen
            .iter()
            .any(|n| n.text.contains(&profile.identifiers["imei"])),
        "the IMEI dialog is still on screen"
    );
    bench.finish().await;
}
