//! UI steps end to end, through Debian's adb server against the virtual handset's personas with
//! screens: `uiautomator dump` read and parsed, nodes found and tapped (`input tap` on their
//! bounds' centre), a `wait-for` that times out saying what was on the screen, the built-in
//! `send-sms` sending through the messaging app's Send button on a persona where keys do not send,
//! the preflight refusing before any capture, a reboot that keeps one capture file.

use std::path::Path;

use tattle::device::Device;
use tattle::runner::{self, Quiet, RunError, RunOptions, RunResult};
use tattle::scenario::{self, Scenario};

use crate::support::{Bench, profile_values};

/// A persona whose messaging app sends only when its Send button is tapped (Android 14, vendor).
const TAP_TO_SEND: &str = "vendor-14-locked";
/// The host `vendor-14-locked` posts to when an SMS was sent (its `sms_sent` traffic).
const SMS_SYNC_HOST: &str = "sync.nimbus-cloud.net";

async fn run_on(profile: &str, yaml: &str) -> (Result<RunResult, RunError>, tempfile::TempDir) {
    let scenario = Scenario::parse(yaml, Path::new("ui.yaml")).expect("valid scenario");
    run_scenario(profile, &scenario).await
}

async fn run_scenario(
    profile: &str,
    scenario: &Scenario,
) -> (Result<RunResult, RunError>, tempfile::TempDir) {
    run_observed(profile, scenario, &Quiet).await
}

async fn run_observed(
    profile: &str,
    scenario: &Scenario,
    observer: &dyn tattle::runner::RunObserver,
) -> (Result<RunResult, RunError>, tempfile::TempDir) {
    let bench = Bench::start(&[profile]).await;
    let runs = tempfile::tempdir().unwrap();
    let device = Device::new(bench.device());
    let options = RunOptions {
        runs_root: runs.path().to_path_buf(),
        ..RunOptions::default()
    };
    let result = runner::run(scenario, &device, &options, observer).await;
    bench.finish().await;
    (result, runs)
}

/// Hosts the outcome lists for the step labelled `label` (`3 tap`).
fn hosts_of(result: &RunResult, label: &str) -> Vec<String> {
    result
        .outcome
        .steps
        .iter()
        .find(|s| s.step == label)
        .unwrap_or_else(|| panic!("no step {label} in {:?}", result.outcome.steps))
        .hosts
        .iter()
        .map(|h| h.host.clone())
        .collect()
}

fn assert_no_raw_values(profile: &str, result: &RunResult, text: &str) {
    let mut values = profile_values(profile);
    values.extend(result.identifiers.iter().map(|i| i.value.clone()));
    for v in values.iter().filter(|v| v.len() >= 4) {
        assert!(!text.contains(v.as_str()), "a raw identifier in {text:?}");
    }
}

#[tokio::test]
async fn a_node_is_found_in_the_dump_and_tapped() {
    let yaml = r#"name: ui-tap
identifiers:
  contact_phone: "+6598765432"
  sms_body: "tattle canary {run_id}"
steps:
  - launch: { action: android.intent.action.SENDTO, data: "sms:{contact_phone}", extras: { sms_body: "{sms_body}" } }
  - wait-for: { resource-id: "com.android.messaging:id/compose_message_text" }
  - tap: { content-desc: "send message" }
  - idle: 1s
"#;
    let (result, _runs) = run_on(TAP_TO_SEND, yaml).await;
    let result = result.expect("run");
    assert_eq!(result.interrupted, None);
    // The tap on the Send button's centre sent the message: its sync traffic is in the tap's window.
    assert!(
        hosts_of(&result, "3 tap").contains(&SMS_SYNC_HOST.to_string()),
        "{:?}",
        result.outcome.steps
    );
    assert!(hosts_of(&result, "2 wait-for").is_empty());
}

#[tokio::test]
async fn wait_for_times_out_saying_what_was_on_the_screen() {
    let yaml = r#"name: ui-timeout
identifiers:
  contact_phone: "+6598765432"
steps:
  - launch: { action: android.intent.action.SENDTO, data: "sms:{contact_phone}" }
  - wait-for: { text: "No such button", timeout: 2s }
  - idle: 1s
"#;
    let started = std::time::Instant::now();
    let (result, _runs) = run_on("aosp-12", yaml).await;
    let result = result.expect("run");
    let why = result.interrupted.clone().expect("the wait-for failed");
    assert!(
        why.starts_with(
            "step 2 wait-for (line 6) failed: no text \"No such button\" appeared on the screen \
             within 2s; it showed com.android.messaging: "
        ),
        "{why}"
    );
    // What the compose screen shows: its ids and descriptions, the recipient as the run's
    // placeholder (a canary), never the raw number.
    assert!(
        why.contains("resource-id \"com.android.messaging:id/compose_message_text\""),
        "{why}"
    );
    assert!(why.contains("content-desc \"Add an attachment\""), "{why}");
    assert!(
        why.contains("; help: check the value against `adb shell uiautomator dump`"),
        "{why}"
    );
    assert!(!why.contains('?'), "one clean line: {why}");
    assert_no_raw_values("aosp-12", &result, &why);
    assert!(!why.contains("6598765432"), "{why}");
    // The run stopped at the failing step: step 3 never ran.
    assert_eq!(
        result
            .outcome
            .steps
            .iter()
            .filter(|s| s.step == "3 idle")
            .count(),
        0
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    // The run directory's files hold the message redacted too.
    let record = std::fs::read_to_string(result.dir.join("run.json")).unwrap();
    assert_no_raw_values("aosp-12", &result, &record);
}

#[tokio::test]
async fn built_in_send_sms_taps_send_where_keys_do_not_send() {
    let (file, text) = scenario::builtin("send-sms").unwrap();
    let builtin = Scenario::parse(text, Path::new(file)).unwrap();
    let (result, _runs) = run_scenario(TAP_TO_SEND, &builtin).await;
    let result = result.expect("run");
    assert_eq!(result.interrupted, None, "notes: {:?}", result.notes);
    assert!(
        hosts_of(&result, "4 send-sms").contains(&SMS_SYNC_HOST.to_string()),
        "{:?}",
        result.outcome.steps
    );
    // Sent through the screen: no note of a fallback to keys.
    assert!(
        !result.notes.iter().any(|n| n.contains("keys")),
        "{:?}",
        result.notes
    );
    // The contact went through the editor's Save button: its backup upload is in step 3.
    assert!(
        hosts_of(&result, "3 add-contact").contains(&"contacts.nimbus-cloud.net".to_string()),
        "{:?}",
        result.outcome.steps
    );

    // The same step with keys only: this phone's Send button takes no key focus, nothing is sent,
    // and the step says so instead of passing.
    let keys_only = text.replace(
        "body: \"{sms_body}\" }",
        "body: \"{sms_body}\", via: keys }",
    );
    assert_ne!(keys_only, text);
    let (result, _runs) = run_on(TAP_TO_SEND, &keys_only).await;
    let result = result.expect("run");
    let why = result.interrupted.expect("keys do not send here");
    assert!(why.contains("step 4 send-sms"), "{why}");
    assert!(why.contains("no sent message"), "{why}");
}

#[tokio::test]
async fn the_preflight_refuses_before_any_capture() {
    let yaml = "name: pre\nsteps:\n  - key: [WAKEUP, HOME]\n  - toggle: { wifi: off }\n";
    let (result, runs) = run_on("aosp-4.4-rooted", yaml).await;
    let err = match result {
        Err(e) => e.to_string(),
        Ok(r) => panic!("ran: {:?}", r.interrupted),
    };
    assert!(
        err.starts_with(
            "this scenario cannot run on this device:\n  step 1 `key` (line 3): key \
             WAKEUP needs Android SDK 20 or later; this device has SDK 19"
        ),
        "{err}"
    );
    // Nothing was captured: no run directory.
    assert_eq!(
        std::fs::read_dir(runs.path())
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[tokio::test]
async fn a_reboot_keeps_one_capture() {
    /// Counts the capture segments the observer is told of (the progress line sums them).
    #[derive(Default)]
    struct Segments(std::sync::atomic::AtomicUsize);
    impl tattle::runner::RunObserver for Segments {
        fn capture_started(&self, _: std::sync::Arc<tattle::capture::CaptureCounters>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let yaml = "name: reboot\nsteps:\n  - idle: 1s\n  - reboot: { timeout: 60s }\n  - fresh-setup: {}\n  - idle: 2s\n";
    let scenario = Scenario::parse(yaml, Path::new("ui.yaml")).expect("valid scenario");
    let segments = Segments::default();
    let (result, _runs) = run_observed("aosp-12", &scenario, &segments).await;
    let result = result.expect("run");
    assert_eq!(
        segments.0.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the observer hears of the capture started again after the reboot"
    );
    assert_eq!(result.interrupted, None, "notes: {:?}", result.notes);
    assert!(
        result
            .notes
            .iter()
            .any(|n| n.starts_with("step 2 reboot (line 4): rebooted in ")),
        "{:?}",
        result.notes
    );
    // The notes are in run.json too, for whoever reads the run directory later.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result.dir.join("run.json")).unwrap())
            .unwrap();
    assert_eq!(record["notes"], serde_json::json!(result.notes));
    // After the reboot the capture went on: fresh-setup's activation traffic was captured and
    // placed in its step, and the segments were merged into capture.pcap.
    assert!(
        !hosts_of(&result, "3 fresh-setup").is_empty(),
        "{:?}",
        result.outcome.steps
    );
    let files: Vec<String> = std::fs::read_dir(&result.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().all(|f| !f.starts_with("capture-after-reboot")),
        "{files:?}"
    );
    let bytes = std::fs::read(result.dir.join("capture.pcap")).unwrap();
    let reread = tattle_analysis::analyze_reader(&bytes[..], &result.identifiers).unwrap();
    assert_eq!(
        reread.frames, result.analysis.frames,
        "the file is the stream analysed"
    );
    assert!(reread.damage.is_empty(), "{:?}", reread.damage);
}

#[tokio::test]
async fn launch_type_key_and_toggle_run_their_commands() {
    let yaml = r#"name: ui-misc
identifiers:
  contact_phone: "+6598765432"
steps:
  - launch: com.android.messaging
  - key: HOME
  - launch: { action: android.intent.action.SENDTO, data: "sms:{contact_phone}" }
  - type: { text: "50%s off, it's {run_id}", into: { resource-id: compose_message_text } }
  - wait-for: { text: "50%s off, it's {run_id}", timeout: 5s }
  - toggle: { wifi: off, mobile-data: off }
  - toggle: { wifi: on, mobile-data: on }
"#;
    let (result, _runs) = run_on("aosp-12", yaml).await;
    let result = result.expect("run");
    // The typed text (spaces as %s, a literal %s split in two) arrived exactly: wait-for found it.
    assert_eq!(result.interrupted, None, "notes: {:?}", result.notes);
}
