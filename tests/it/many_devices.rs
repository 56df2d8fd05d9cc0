//! Several phones at once (`tattle run --device A --device B --device C`, `--all-devices`): one capture
//! each, per-device outcomes and exit codes, no packet of one in another's outcome; and a remote adb
//! server reached with `-H`/`-P` or `ADB_SERVER_SOCKET`, as device farms expose phones.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{Bench, json_document, profile_values};
use tattle::vhandset::Profile;

/// Every host a run's outcome says was contacted.
fn hosts(run: &serde_json::Value) -> BTreeSet<String> {
    run["outcome"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["hosts"].as_array().cloned().unwrap_or_default())
        .filter_map(|h| h["host"].as_str().map(String::from))
        .collect()
}

/// The checked-in `schema/run-many.schema.json` (`tattle schema run-many`) accepts a real several-device
/// document, and entries that say why a device has no run; an entry with both or neither is refused.
fn assert_schema_accepts(doc: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/run-many.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let with_entry = |entry: serde_json::Value| {
        let mut doc = doc.clone();
        doc["runs"].as_array_mut().unwrap().push(entry);
        validator.is_valid(&doc)
    };
    let run = doc["runs"][0]["run"].clone();
    assert!(with_entry(
        serde_json::json!({"serial": "emulator-5554", "error": "running send-sms on emulator-5554: gone"})
    ));
    assert!(!with_entry(
        serde_json::json!({"serial": "emulator-5554", "error": "x", "run": run})
    ));
    assert!(!with_entry(serde_json::json!({"serial": "emulator-5554"})));
    assert!(!with_entry(serde_json::json!({"error": "no serial"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_phones_at_once_keep_their_captures_apart() {
    let profiles = ["miui-cloud-default", "miui-cloud-optin", "aosp-clean"];
    let bench = Bench::start(&profiles).await;
    let port = bench.server().port().to_string();
    let serials: Vec<String> = bench.handsets.iter().map(|h| h.serial()).collect();
    let runs = tempfile::tempdir().unwrap();
    let snapshots = tempfile::tempdir().unwrap();
    let tattle = |extra: &[&str], remote: &dyn Fn(&mut Command)| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tattle"));
        cmd.args(["run", "send-sms", "--format", "json", "--runs"])
            .arg(runs.path())
            .arg("--snapshots")
            .arg(snapshots.path())
            .args(extra)
            .env_remove("ANDROID_ADB_SERVER_PORT")
            .env_remove("ADB_SERVER_SOCKET");
        remote(&mut cmd);
        cmd.output().unwrap()
    };

    // Three named devices, through `-H`/`-P` as `adb -H -P` takes them.
    let mut args: Vec<&str> = Vec::new();
    for s in &serials {
        args.extend(["--device", s.as_str()]);
    }
    let by_flags = |c: &mut Command| {
        c.args(["-H", "127.0.0.1", "-P", &port]);
    };
    let out = tattle(&args, &by_flags);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings and no accepted snapshots: exit 1\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (doc, keys) = json_document(&stdout);
    assert_eq!(keys, ["format_version", "runs"].map(String::from).into());
    assert_schema_accepts(&doc);
    let entries = doc["runs"].as_array().expect("runs");
    assert_eq!(entries.len(), 3);
    for ((entry, serial), profile) in entries.iter().zip(&serials).zip(profiles) {
        assert_eq!(entry["serial"], serial.as_str());
        let run = &entry["run"];
        let contacted = hosts(run);
        let own: BTreeSet<String> = Profile::builtin(profile)
            .unwrap()
            .hosts()
            .into_iter()
            .collect();
        // Each outcome holds its own phone's hosts and none that only another phone contacts.
        assert!(!contacted.is_empty(), "{profile}: no hosts");
        for h in &contacted {
            assert!(
                own.contains(h),
                "{profile} shows {h}, a host of another phone's capture"
            );
        }
        let leaks = run["outcome"].to_string();
        assert_eq!(
            leaks.contains("<imei>"),
            profile == "miui-cloud-default",
            "{profile}: only the cloud-default build sends the IMEI"
        );
        assert!(std::path::Path::new(run["run_dir"].as_str().unwrap()).is_dir());
    }
    let dirs: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["run"]["run_dir"].as_str().unwrap())
        .collect();
    assert_eq!(dirs.len(), 3, "one run directory each");
    for p in profiles {
        for v in profile_values(p) {
            assert!(!stdout.contains(&v), "raw identifier of {p} in the output");
        }
    }

    // Every ready device, through ADB_SERVER_SOCKET: the same three, and the accepted snapshots the
    // first run wrote as pending compare per device.
    for pending in std::fs::read_dir(snapshots.path()).unwrap() {
        let pending = pending.unwrap().path();
        if pending.extension().is_some_and(|e| e == "new") {
            std::fs::rename(&pending, pending.with_extension("")).unwrap();
        }
    }
    let by_socket = |c: &mut Command| {
        c.env("ADB_SERVER_SOCKET", format!("tcp:127.0.0.1:{port}"));
    };
    let out = tattle(&["--all-devices"], &by_socket);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "every outcome equals its accepted snapshot: exit 0\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (doc, _) = json_document(&stdout);
    assert_schema_accepts(&doc);
    let got: BTreeSet<&str> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["serial"].as_str().unwrap())
        .collect();
    assert_eq!(got, serials.iter().map(String::as_str).collect());
    assert!(
        doc["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["run"]["comparison"] == "equal"),
        "{stdout}"
    );

    // A named device that is not there: nothing runs (no half experiment), exit 2, the message
    // names it and what is connected.
    let out = tattle(
        &["--device", &serials[0], "--device", "emulator-5590"],
        &by_flags,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no device `emulator-5590`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bench.finish().await;
}

#[test]
fn a_bad_server_address_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(["-H", "no such host.invalid", "devices"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an adb server address"), "{err}");
}
