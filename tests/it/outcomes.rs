//! End to end through the real adb server: every built-in scenario on every shipped firmware profile,
//! outcomes checked against the insta snapshots in `snapshots/` (the same files `tattle run` compares
//! with), no raw identifier in any file of a run directory but the capture, private run directories.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tattle::device::Device;
use tattle::runner::{self, Quiet, RunOptions, RunResult};
use tattle::scenario::{self, Scenario};
use tattle::snapshot;

use tattle::vhandset::Profile;

use crate::support::{Bench, profile_values};

const PROFILES: [&str; 3] = ["aosp-clean", "miui-cloud-default", "miui-cloud-optin"];

fn builtin_scenario(name: &str) -> Scenario {
    let (file, text) = scenario::builtin(name).expect("built-in scenario");
    Scenario::parse(text, Path::new(file)).expect("valid scenario")
}

async fn run_all(scenario_name: &str) -> Vec<(String, RunResult, tempfile::TempDir)> {
    run_on(&PROFILES, scenario_name).await
}

async fn run_on(
    profiles: &[&str],
    scenario_name: &str,
) -> Vec<(String, RunResult, tempfile::TempDir)> {
    let bench = Bench::start(profiles).await;
    let scenario = builtin_scenario(scenario_name);
    // The three handsets run the scenario at the same time, as a bench of phones would.
    let mut tasks = Vec::new();
    for handset in &bench.handsets {
        let runs_root = tempfile::tempdir().unwrap();
        let device = Device::new(bench.server().device(&handset.serial()));
        let options = RunOptions {
            runs_root: runs_root.path().to_path_buf(),
            ..RunOptions::default()
        };
        let scenario = scenario.clone();
        let profile = handset.profile().name.clone();
        tasks.push(tokio::spawn(async move {
            let result = runner::run(&scenario, &device, &options, &Quiet)
                .await
                .expect("run");
            (profile, result, runs_root)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("run task"));
    }
    bench.finish().await;
    results
}

fn check_run(profile: &str, result: &RunResult) {
    assert!(
        result.interrupted.is_none(),
        "{profile}: {:?}",
        result.interrupted
    );
    assert!(result.capture.packets > 0, "{profile}: empty capture");
    // Private run directory, private files.
    let mode = std::fs::metadata(&result.dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{profile}: run dir mode");
    // No raw identifier value in any file but the capture.
    let mut values = profile_values(profile);
    values.extend(result.identifiers.iter().map(|i| i.value.clone()));
    for entry in std::fs::read_dir(&result.dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: file mode", path.display());
        // The captures (the raw one, and its annotated pcapng copy) are the evidence: raw by design.
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("capture.")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for value in &values {
            assert!(
                !text.contains(value.as_str()),
                "{}: holds a raw identifier value",
                path.display()
            );
        }
        if path.extension().is_some_and(|e| e == "json") {
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(doc["format_version"], 1, "{}", path.display());
        }
    }
    // The run directory's outcome is the run's, in the snapshot format.
    assert_eq!(
        snapshot::load_outcome(&result.dir).unwrap(),
        result.outcome,
        "{profile}"
    );
}

/// What a real phone of the profile's build is known by: brand, device, build id and incremental of
/// its fingerprint (every part of the built-in profiles is file-safe already).
fn firmware_key_of(profile: &str) -> String {
    let p = tattle::vhandset::Profile::builtin(profile).unwrap();
    let fingerprint = p.prop("ro.build.fingerprint").unwrap();
    let (left, rest) = fingerprint.split_once(':').unwrap();
    let brand_product_device: Vec<&str> = left.split('/').collect();
    let release_id_incremental: Vec<&str> = rest.split(':').next().unwrap().split('/').collect();
    format!(
        "{}-{}-{}-{}",
        brand_product_device[0],
        brand_product_device[2],
        release_id_incremental[1],
        release_id_incremental[2]
    )
}

fn assert_outcome_snapshot(scenario: &str, profile: &str, result: &RunResult) {
    let firmware = firmware_key_of(profile);
    assert_eq!(result.outcome.firmware, firmware, "{profile}");
    let body = snapshot::render(&result.outcome);
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(snapshot::name(scenario, &firmware), body);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_sms_on_every_profile() {
    for (profile, result, _dir) in run_all("send-sms").await {
        check_run(&profile, &result);
        let leaks = result.outcome.leak_count();
        match profile.as_str() {
            "miui-cloud-default" => {
                let sms_step = result
                    .outcome
                    .steps
                    .iter()
                    .find(|s| s.step.ends_with("send-sms"))
                    .unwrap();
                let kinds: Vec<&str> = sms_step
                    .leaks
                    .iter()
                    .map(|l| l.identifier.as_str())
                    .collect();
                assert!(
                    kinds.contains(&"<imei>") && kinds.contains(&"<phone_number>"),
                    "{kinds:?}"
                );
            }
            _ => assert_eq!(
                leaks, 0,
                "{profile} must not leak: {:?}",
                result.outcome.steps
            ),
        }
        assert_outcome_snapshot("send-sms", &profile, &result);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_setup_on_every_profile() {
    for (profile, result, _dir) in run_all("fresh-setup").await {
        check_run(&profile, &result);
        assert_outcome_snapshot("fresh-setup", &profile, &result);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_contact_on_every_profile() {
    for (profile, result, _dir) in run_all("add-contact").await {
        check_run(&profile, &result);
        assert_outcome_snapshot("add-contact", &profile, &result);
    }
}

/// Every built-in scenario on the Android 15 persona (a user build whose shell reads its identifiers
/// with 14's codes): the run reads them, completes, leaks nothing, and matches its snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_scenarios_on_android_15() {
    let profile = Profile::builtin("aosp-15").unwrap();
    // One handset per scenario, the three at once (their runs mostly wait).
    let (a, b, c) = tokio::join!(
        run_on(&["aosp-15"], "fresh-setup"),
        run_on(&["aosp-15"], "add-contact"),
        run_on(&["aosp-15"], "send-sms"),
    );
    for (scenario, mut runs) in [("fresh-setup", a), ("add-contact", b), ("send-sms", c)] {
        let (name, result, _dir) = runs.pop().unwrap();
        check_run(&name, &result);
        // IMEI, IMSI, ICCID and number read from the handset itself, each the profile's own.
        for kind in ["imei", "imsi", "iccid", "phone_number"] {
            let read: Vec<&str> = result
                .identifiers
                .iter()
                .filter(|i| i.kind == kind)
                .map(|i| i.value.as_str())
                .collect();
            assert_eq!(
                read,
                [profile.identifiers[kind].as_str()],
                "{scenario}: {kind} not read as the profile holds it"
            );
        }
        assert_eq!(
            result.outcome.leak_count(),
            0,
            "{scenario}: {:?}",
            result.outcome.steps
        );
        assert_outcome_snapshot(scenario, &name, &result);
    }
}

/// Snapshots and the README are committed and shared: they must hold kinds, never values.
#[test]
fn committed_outcomes_hold_no_raw_identifier() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(repo.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 9, "a snapshot per scenario and profile");
    files.push(repo.join("README.md"));
    let values: Vec<String> = tattle::vhandset::Profile::builtin_names()
        .iter()
        .flat_map(|name| profile_values(name))
        .collect();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for value in &values {
            assert!(
                !text.contains(value.as_str()),
                "{} holds a raw identifier value",
                file.display()
            );
        }
    }
}
