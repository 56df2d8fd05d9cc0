//! `tattle devices` through Debian's adb server against every built-in virtual handset profile:
//! what it prints (text and JSON, the JSON against docs/devices.md), its exit codes, and that no
//! identifier value reaches its output or its logs.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use serde_json::Value;
use tattle::device::Fingerprint;
use tattle::vhandset::Profile;

use crate::support::{Bench, json_document, profile_values};

async fn tattle_devices(bench: &Bench, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("devices")
        .args(args)
        .env("ANDROID_ADB_SERVER_PORT", bench.server().port().to_string())
        // Every log line tattle can write, so the check for raw values covers the logs too.
        .env("RUST_LOG", "tattle=trace,debug")
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `doc` at a path of docs/devices.md's headings: `devices[]` is the first element of `devices`.
fn at<'a>(doc: &'a Value, path: &str) -> &'a Value {
    let mut v = doc;
    for part in path
        .split('.')
        .filter(|p| !p.is_empty() && *p != "document")
    {
        let (name, array) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        v = &v[name];
        if array {
            v = &v[0];
        }
    }
    v
}

/// The field tables of docs/devices.md: for each `### `PATH`` heading, the backticked names in
/// the first column of the table under it.
fn documented_fields() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/devices.md"))
        .expect("docs/devices.md");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### `") {
            current = h.split('`').next().map(str::to_string);
            continue;
        }
        if line.starts_with("## ") || line.starts_with("### ") {
            current = None;
        }
        if let Some(path) = &current
            && let Some(rest) = line.strip_prefix("| `")
            && let Some(name) = rest.split('`').next()
        {
            out.entry(path.clone())
                .or_default()
                .insert(name.to_string());
        }
    }
    out
}

/// Every built-in profile at once: each is listed, examined, and named as its profile says; the
/// JSON has exactly the fields docs/devices.md documents; no raw identifier anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_json_of_every_builtin_profile() {
    let names = Profile::builtin_names();
    let bench = Bench::start(names).await;
    let out = tattle_devices(&bench, &["--format", "json"]).await;
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let (doc, keys) = json_document(&stdout);
    assert_eq!(doc["format_version"], 1);

    // The document's shape is the documented one, field for field.
    let documented = documented_fields();
    assert!(documented.len() >= 6, "{documented:?}");
    for (path, fields) in &documented {
        let value = at(&doc, path);
        let real: BTreeSet<String> = if path == "document" {
            keys.clone()
        } else {
            value
                .as_object()
                .unwrap_or_else(|| panic!("no object at {path}"))
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(&real, fields, "fields of {path}: real vs docs/devices.md");
    }

    let devices = doc["devices"].as_array().unwrap();
    assert_eq!(devices.len(), names.len());
    for (handset, name) in bench.handsets.iter().zip(names) {
        let profile = Profile::builtin(name).unwrap();
        let serial = handset.adb().serial().to_string();
        let d = devices
            .iter()
            .find(|d| d["serial"] == serial.as_str())
            .unwrap_or_else(|| panic!("{name} ({serial}) not listed"));
        assert_eq!(d["state"], "device", "{name}");
        assert!(d["error"].is_null(), "{name}: {}", d["error"]);
        assert_eq!(d["model"], profile.props["ro.product.model"].as_str());
        assert_eq!(
            d["sdk"].as_u64().unwrap().to_string(),
            profile.props["ro.build.version.sdk"]
        );
        assert_eq!(
            d["firmware_key"],
            Fingerprint::parse(&profile.props["ro.build.fingerprint"])
                .unwrap()
                .key()
                .as_str(),
            "{name}"
        );
        assert_eq!(d["firmware_source"], "fingerprint");
        assert!(d["clock_offset_seconds"].is_number());
        assert!(d["tcpdump"].is_boolean());
        let sources: Vec<&str> = d["capture_sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["source"].as_str().unwrap())
            .collect();
        assert_eq!(sources[..2], ["device-tcpdump", "pcapdroid"], "{name}");
        // Every identifier the profile holds is accounted for: read, or missing with a reason
        // and the fix; none silently left out.
        let readings = d["identifiers"].as_array().unwrap();
        for kind in profile.identifiers.keys() {
            let kind = kind.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_');
            let r = readings
                .iter()
                .find(|r| r["kind"] == kind)
                .unwrap_or_else(|| panic!("{name}: no reading of {kind}"));
            match r["status"].as_str().unwrap() {
                "read" => assert!(r["method"].is_string() && r["via"].is_string()),
                "missing" => assert!(
                    r["reason"].is_string()
                        && r["fix"]
                            .as_str()
                            .unwrap()
                            .contains(&format!("--id {kind}=")),
                    "{name}: {r}"
                ),
                other => panic!("{name}: {kind} is {other}: {r}"),
            }
        }
    }
    for name in names {
        for value in profile_values(name) {
            assert!(
                !stdout.contains(&value),
                "{name}: raw identifier in the JSON"
            );
            assert!(
                !stderr.contains(&value),
                "{name}: raw identifier in the logs"
            );
        }
    }
    assert!(stderr.contains("identifier read"), "trace logs were on");
    bench.finish().await;
}

/// What a person sees for the clean AOSP 13 profile (userdebug: AOSP's `su`): the shell reads the
/// SIM identifiers with Android 11–15's codes, per subscription (`dumpsys isub`'s ids), with the
/// shell's own package; root is found but not needed; what the device lacks is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_text_for_the_clean_profile() {
    let bench = Bench::start(&["aosp-clean"]).await;
    let out = tattle_devices(&bench, &[]).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for line in [
        "AOSP AOSP on vhandset — Android 13 (SDK 33), userdebug build",
        "firmware      Android-vhandset-TP1A.220624.014-eng.vhandset.20221004 (from the build fingerprint)",
        "root          su 0 (`su 0` gives uid 0)",
        "capture       device-tcpdump: works",
        "identifiers   6 readable, 0 missing, 2 absent (service call codes of Android 11–15)",
        "imei            slot 0  read     service call iphonesubinfo 1 s16 com.android.shell [shell]",
        "imsi            slot 0  read     service call iphonesubinfo 10 i32 SUBID s16 com.android.shell [shell]",
        "iccid           slot 0  read     service call iphonesubinfo 14 i32 SUBID s16 com.android.shell [shell]",
        "phone_number    slot 0  read     service call iphonesubinfo 16 i32 SUBID s16 com.android.shell [shell]",
        "android_id              read     settings get secure android_id [shell]",
        "serial                  read     getprop ro.serialno [shell]",
        "wifi_mac                absent   the device has no wlan0 interface",
        "advertising_id          absent   no Google Play services",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    for value in profile_values("aosp-clean") {
        assert!(!stdout.contains(&value), "raw identifier printed");
    }
    // --no-root: root is not looked at, and the report says so.
    let device = bench.device();
    let out = tattle_devices(&bench, &["--no-root", "--device", device.serial()]).await;
    assert!(text(&out.stdout).contains("root          not tried (--no-root)"));
    bench.finish().await;
}

/// No device, or a serial the server does not list: exit 2 with the way to attach one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_exit_2_without_a_device() {
    let bench = Bench::start(&[]).await;
    let out = tattle_devices(&bench, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no device is connected to the adb server"),
        "{}",
        text(&out.stderr)
    );
    let out = tattle_devices(&bench, &["--device", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no device `nope`"));
    assert!(out.stdout.is_empty());
    bench.finish().await;
}

/// One persona per Android generation, as a person sees them: each reads its identifiers the way
/// its release answers (4.4: `dumpsys` and argument-less codes over the legacy shell; 9: codes
/// 1/8/11/13 with the package; 12: 11–15's codes; a vendor 14 that refuses the shell: both IMEIs
/// from the `*#06#` dialog, the SIM values missing with Android 14's refusal and the fix; AOSP 15:
/// 11–15's codes with the package, the subscription id from 15's `dumpsys isub`), and root as each
/// build has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_text_for_each_generation() {
    let personas = [
        "aosp-4.4-rooted",
        "aosp-9-userdebug",
        "aosp-12",
        "vendor-14-locked",
        "aosp-15",
    ];
    let bench = Bench::start(&personas).await;
    let expected: [&[&str]; 5] = [
        &[
            "Android 4.4.4 (SDK 19), userdebug build",
            "root          su 0 (`su 0` gives uid 0)",
            "device-tcpdump: fails — this adbd has no `exec:` service (SDK 19; it came with Android 5.0)",
            "identifiers   6 readable, 0 missing, 2 absent (service call codes of Android 4.4)",
            "imei            slot 0  read     dumpsys iphonesubinfo [shell]",
            "imsi            slot 0  read     service call iphonesubinfo 3 [shell]",
            "iccid           slot 0  read     service call iphonesubinfo 5 [shell]",
            "phone_number    slot 0  read     service call iphonesubinfo 6 [shell]",
        ],
        &[
            "Android 9 (SDK 28), userdebug build",
            "root          su 0 (`su 0` gives uid 0)",
            "imei            slot 0  read     service call iphonesubinfo 1 s16 com.android.shell [shell]",
            "imsi            slot 0  read     service call iphonesubinfo 8 i32 SUBID s16 com.android.shell [shell]",
            "iccid           slot 0  read     service call iphonesubinfo 11 i32 SUBID s16 com.android.shell [shell]",
            "phone_number    slot 0  read     service call iphonesubinfo 13 i32 SUBID s16 com.android.shell [shell]",
        ],
        &[
            "Android 12 (SDK 31), user build",
            "root          none (no `su` on the PATH)",
            "imei            slot 0  read     service call iphonesubinfo 1 s16 com.android.shell [shell]",
            "imsi            slot 0  read     service call iphonesubinfo 10 i32 SUBID s16 com.android.shell [shell]",
            "phone_number    slot 0  read     service call iphonesubinfo 16 i32 SUBID s16 com.android.shell [shell]",
        ],
        &[
            "Nimbus Nimbus X5 Dual — Android 14 (SDK 34), user build",
            "root          none (no `su` on the PATH)",
            "identifiers   4 readable, 6 missing, 2 absent (service call codes of Android 11–15)",
            "imei            slot 0  read     dialer *#06# (uiautomator dump) [screen]",
            "imei            slot 1  read     dialer *#06# (uiautomator dump) [screen]",
            "imsi            slot 1  MISSING  this build refuses it to the shell (SecurityException: getSubscriberIdForSubscriber: The uid 2000 does not meet the requirements to access device identifiers.); no root (no `su` on the PATH); pass --id imsi=VALUE",
            "iccid           slot 0  MISSING  this build refuses it to the shell (SecurityException: getIccSerialNumber: The uid 2000",
            "phone_number    slot 0  MISSING  this build refuses it to the shell (SecurityException: getLine1Number: Neither user 2000 nor current process has android.permission.READ_PHONE_STATE, android.permission.READ_SMS, or android.permission.READ_PHONE_NUMBERS); no root (no `su` on the PATH); pass --id phone_number=VALUE",
        ],
        &[
            "AOSP AOSP on vhandset — Android 15 (SDK 35), user build",
            "firmware      Android-vhandset-AP3A.240905.015-12350235 (from the build fingerprint)",
            "root          none (no `su` on the PATH)",
            "identifiers   6 readable, 0 missing, 2 absent (service call codes of Android 11–15)",
            "imei            slot 0  read     service call iphonesubinfo 1 s16 com.android.shell [shell]",
            "imsi            slot 0  read     service call iphonesubinfo 10 i32 SUBID s16 com.android.shell [shell]",
            "iccid           slot 0  read     service call iphonesubinfo 14 i32 SUBID s16 com.android.shell [shell]",
            "phone_number    slot 0  read     service call iphonesubinfo 16 i32 SUBID s16 com.android.shell [shell]",
            "android_id              read     settings get secure android_id [shell]",
            "serial                  read     getprop ro.serialno [shell]",
        ],
    ];
    for ((handset, persona), lines) in bench.handsets.iter().zip(personas).zip(expected) {
        let adb = handset.adb();
        let out = tattle_devices(&bench, &["--device", adb.serial()]).await;
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{persona}: {stdout}");
        for line in lines {
            assert!(
                stdout.contains(line),
                "{persona}: no `{line}` in:\n{stdout}"
            );
        }
        for value in profile_values(persona) {
            assert!(
                !stdout.contains(&value),
                "{persona}: raw identifier printed"
            );
            assert!(
                !text(&out.stderr).contains(&value),
                "{persona}: raw identifier logged"
            );
        }
    }
    // The `*#06#` dialog was closed and the screen left at HOME: typing it again works the same.
    let locked = bench.handsets[3].adb();
    let again = tattle_devices(&bench, &["--device", locked.serial()]).await;
    assert!(text(&again.stdout).contains("imei            slot 1  read     dialer *#06#"));
    // Without the screen, the IMEI is missing, with the refusal in words and the fix.
    let out = tattle_devices(&bench, &["--no-screen", "--device", locked.serial()]).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("imei            slot 0  MISSING  this build refuses it to the shell (SecurityException: getDeviceId: The uid 2000 does not meet the requirements to access device identifiers.); no root (no `su` on the PATH); pass --id imei=VALUE (dial *#06# on the phone to see it)"),
        "{stdout}"
    );
    bench.finish().await;
}
