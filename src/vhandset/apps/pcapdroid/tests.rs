//! PCAPdroid's Intent handling, windows and settings on a handset without a network (the capture
//! itself is exercised end to end in tests/it/pcapdroid.rs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::vhandset::Profile;
use crate::vhandset::apps::Extra;
use crate::vhandset::profile::PcapdroidSetup;
use crate::vhandset::shell::tests::{sh, test_profile};
use crate::vhandset::shell::ui::dump_xml;

const KEY: &str = "k3yK3yk3yK3yk3yK3yk3yK3yk3yK3y12";
const CTRL: &str = "am start -n com.emanuelef.remote_capture/.activities.CaptureCtrl";

fn with_pcapdroid(version_code: u32, vpn_consented: bool) -> Arc<Handset> {
    let mut profile: Profile = (*test_profile()).clone();
    profile.persona.pcapdroid = Some(PcapdroidSetup {
        version_name: "1.9.1".into(),
        version_code,
        api_key: Some(KEY.into()),
        vpn_consented,
        mitm_addon: None,
    });
    Handset::new(Arc::new(profile), None)
}

fn screen_xml(h: &Handset) -> String {
    let ctx = h.ui_context();
    dump_xml(&h.state().ui.tree(&ctx))
}

fn toasts(h: &Handset) -> Vec<String> {
    h.state().pcapdroid.toasts.iter().cloned().collect()
}

/// The centre of the node with resource id `id` in the foreground window.
fn centre(h: &Handset, id: &str) -> (i32, i32) {
    fn find(n: &crate::vhandset::shell::ui::Node, id: &str) -> Option<(i32, i32)> {
        if n.resource_id == id {
            let (l, t, r, b) = n.bounds;
            return Some(((l + r) / 2, (t + b) / 2));
        }
        n.children.iter().find_map(|c| find(c, id))
    }
    let ctx = h.ui_context();
    find(&h.state().ui.tree(&ctx), id).unwrap_or_else(|| panic!("{id} not on screen"))
}

/// Makes the consent window old enough for its Allow button to be enabled.
fn age_consent(h: &Handset) {
    if let Screen::Pcapdroid(Window::Consent { shown_at, .. }) = &mut h.state().ui.screen {
        *shown_at = Instant::now() - Duration::from_secs(2);
    }
}

#[tokio::test]
async fn absent_pcapdroid_is_error_type_3() {
    let h = Handset::new(test_profile(), None);
    let (out, err, code) = sh(&h, &format!("{CTRL} -e action start")).await;
    assert_eq!(
        out,
        "Starting: Intent { cmp=com.emanuelef.remote_capture/.activities.CaptureCtrl (has extras) }\n"
    );
    assert_eq!(
        err,
        "Error type 3\nError: Activity class {com.emanuelef.remote_capture/com.emanuelef.remote_capture.activities.CaptureCtrl} does not exist.\n"
    );
    assert_eq!(code, 0, "am's exit code says nothing");
    assert!(
        !sh(&h, "pm list packages")
            .await
            .0
            .contains("remote_capture")
    );
    assert_eq!(
        sh(&h, "dumpsys package com.emanuelef.remote_capture")
            .await
            .0,
        ""
    );
}

#[tokio::test]
async fn installed_pcapdroid_shows_in_pm_and_dumpsys() {
    let h = with_pcapdroid(91, false);
    let list = sh(&h, "pm list packages").await.0;
    assert!(
        list.contains("package:com.emanuelef.remote_capture\n"),
        "{list}"
    );
    assert_eq!(
        sh(&h, "pm list packages -3").await.0,
        "package:com.emanuelef.remote_capture\n"
    );
    assert!(
        sh(&h, "pm path com.emanuelef.remote_capture")
            .await
            .0
            .ends_with("/base.apk\n")
    );
    let dump = sh(&h, "dumpsys package com.emanuelef.remote_capture")
        .await
        .0;
    assert!(
        dump.contains("  Package [com.emanuelef.remote_capture] (")
            && dump.contains("\n    versionCode=91 minSdk=21 targetSdk=35\n")
            && dump.contains("\n    versionName=1.9.1\n"),
        "{dump}"
    );
}

#[tokio::test]
async fn consent_window_then_vpn_notice_then_android_dialog() {
    let h = with_pcapdroid(91, false);
    let (out, err, _) = sh(
        &h,
        &format!("{CTRL} -e action start -e pcap_dump_mode tcp_exporter -e collector_port 5123"),
    )
    .await;
    assert!(
        out.starts_with("Starting: Intent {") && err.is_empty(),
        "{out}{err}"
    );
    let xml = screen_xml(&h);
    for needle in [
        "text=\"PCAPdroid control request\"",
        "text=\"An app wants to capture your device traffic.&#10;Deny it if you are not sure\"",
        "resource-id=\"com.emanuelef.remote_capture:id/deny_btn\"",
    ] {
        assert!(xml.contains(needle), "{needle} in {xml}");
    }
    // No calling app over adb: the caller_app group with Once/Forever is GONE.
    assert!(!xml.contains("Forever") && !xml.contains("choice_once"));
    // Allow is disabled for 1500 ms, and a tap on it then does nothing.
    assert!(
        xml.contains("text=\"ALLOW\" resource-id=\"com.emanuelef.remote_capture:id/allow_btn\" class=\"android.widget.Button\" package=\"com.emanuelef.remote_capture\" content-desc=\"\" checkable=\"false\" checked=\"false\" clickable=\"true\" enabled=\"false\""),
        "{xml}"
    );
    let (x, y) = centre(&h, "com.emanuelef.remote_capture:id/allow_btn");
    sh(&h, &format!("input tap {x} {y}")).await;
    assert!(screen_xml(&h).contains("allow_btn"), "still waiting");
    // A second request while the window is on top is delivered to it, and dropped.
    let (_, err, _) = sh(&h, &format!("{CTRL} -e action stop")).await;
    assert_eq!(
        err,
        "Warning: Activity not started, intent has been delivered to currently running top-most instance.\n"
    );
    age_consent(&h);
    assert!(screen_xml(&h).contains("clickable=\"true\" enabled=\"true\" focusable=\"true\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[540,1382][1001,1508]\""));
    sh(&h, &format!("input tap {x} {y}")).await;
    // First start: PCAPdroid's notice, then Android's dialog.
    let xml = screen_xml(&h);
    assert!(
        xml.contains("text=\"PCAPdroid simulates a VPN in order to capture the network traffic without root.&#10;&#10;")
            && xml.contains("resource-id=\"android:id/button1\""),
        "{xml}"
    );
    let (x, y) = centre(&h, "android:id/button1");
    sh(&h, &format!("input tap {x} {y}")).await;
    let xml = screen_xml(&h);
    assert!(
        xml.contains("text=\"Connection request\" resource-id=\"android:id/alertTitle\"")
            && xml.contains("package=\"com.android.vpndialogs\"")
            && xml.contains("PCAPdroid wants to set up a VPN connection that allows it to monitor network traffic."),
        "{xml}"
    );
    // BACK does nothing on Android's dialog; OK consents and starts (no network here: the VPN
    // cannot be established).
    sh(&h, "input keyevent 4").await;
    assert!(screen_xml(&h).contains("Connection request"));
    let (x, y) = centre(&h, "android:id/button1");
    sh(&h, &format!("input tap {x} {y}")).await;
    assert!(h.state().pcapdroid.vpn_consented);
    assert!(!screen_xml(&h).contains("vpndialogs"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(toasts(&h), [TOAST_ALLOWED, VPN_SETUP_FAILED]);
    assert_eq!(
        h.state().pcapdroid.log.iter().cloned().collect::<Vec<_>>(),
        ["Starting capture, caller=null"]
    );
}

#[tokio::test]
async fn deny_back_and_cancel_abort_with_their_toasts() {
    let h = with_pcapdroid(91, false);
    sh(&h, &format!("{CTRL} -e action start")).await;
    let (x, y) = centre(&h, "com.emanuelef.remote_capture:id/deny_btn");
    sh(&h, &format!("input tap {x} {y}")).await;
    assert!(!screen_xml(&h).contains("remote_capture"));
    sh(&h, &format!("{CTRL} -e action start")).await;
    sh(&h, "input keyevent BACK").await;
    assert!(!screen_xml(&h).contains("remote_capture"));
    // With the key: straight to the notice; cancelling it fails the start.
    sh(&h, &format!("{CTRL} -e action start -e api_key {KEY}")).await;
    assert!(screen_xml(&h).contains("PCAPdroid simulates a VPN"));
    sh(&h, "input keyevent 4").await;
    // And Android's Cancel.
    sh(&h, &format!("{CTRL} -e action start -e api_key {KEY}")).await;
    let (x, y) = centre(&h, "android:id/button1");
    sh(&h, &format!("input tap {x} {y}")).await;
    let (x, y) = centre(&h, "android:id/button2");
    sh(&h, &format!("input tap {x} {y}")).await;
    assert!(!h.state().pcapdroid.vpn_consented);
    assert_eq!(
        toasts(&h),
        [
            TOAST_DENIED,
            TOAST_DENIED,
            TOAST_ALLOWED,
            VPN_SETUP_FAILED,
            TOAST_ALLOWED,
            VPN_SETUP_FAILED
        ]
    );
}

#[tokio::test]
async fn api_key_and_appops_skip_every_window() {
    let h = with_pcapdroid(91, false);
    // A wrong key is no error: the consent window.
    sh(&h, &format!("{CTRL} -e action start -e api_key wrong")).await;
    assert!(screen_xml(&h).contains("PCAPdroid control request"));
    sh(&h, "input keyevent 4").await;
    // --es works as -e; the VPN pre-consent by appops (unverified on devices) skips the dialogs.
    let (out, err, code) = sh(
        &h,
        "appops set com.emanuelef.remote_capture ACTIVATE_VPN allow",
    )
    .await;
    assert_eq!((out.as_str(), err.as_str(), code), ("", "", 0));
    assert_eq!(
        sh(&h, "appops get com.emanuelef.remote_capture ACTIVATE_VPN")
            .await
            .0,
        "ACTIVATE_VPN: allow\n"
    );
    sh(&h, &format!("{CTRL} --es action start --es api_key {KEY}")).await;
    assert!(!screen_xml(&h).contains("remote_capture"), "no window");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        toasts(&h)[1..],
        [TOAST_ALLOWED, VPN_SETUP_FAILED],
        "no network namespace here: the VPN cannot be established"
    );
    // An older PCAPdroid ignores the key (1.8.5 has no api_key extra).
    let old = with_pcapdroid(85, true);
    sh(&old, &format!("{CTRL} -e action start -e api_key {KEY}")).await;
    assert!(screen_xml(&old).contains("PCAPdroid control request"));
    // appops' own errors.
    let (_, err, code) = sh(&h, "appops set com.nope ACTIVATE_VPN allow").await;
    assert_eq!(
        (err.as_str(), code),
        ("Error: No UID for com.nope in user 0\n", 255)
    );
    let (_, err, _) = sh(&h, "appops set com.emanuelef.remote_capture NOPE allow").await;
    assert_eq!(err, "Error: Unknown operation string: NOPE\n");
}

#[tokio::test]
async fn remote_collector_and_unknown_actions_are_refused() {
    let h = with_pcapdroid(91, true);
    sh(
        &h,
        &format!("{CTRL} -e action start -e api_key {KEY} -e pcap_dump_mode tcp_exporter -e collector_ip_address 192.0.2.7"),
    )
    .await;
    sh(&h, &format!("{CTRL} -e action start -e api_key {KEY} -e pcap_dump_mode tcp_exporter -e collector_ip_address localhost")).await;
    sh(&h, &format!("{CTRL} -e action frobnicate -e api_key {KEY}")).await;
    sh(&h, &format!("{CTRL} -e api_key {KEY}")).await;
    assert_eq!(
        toasts(&h),
        [
            TOAST_ALLOWED,
            "For security reasons, sending traffic to the remote server \"192.0.2.7\" is not allowed",
            TOAST_DENIED,
            TOAST_ALLOWED,
            "For security reasons, sending traffic to the remote server \"localhost\" is not allowed",
            TOAST_DENIED,
            TOAST_ALLOWED,
            TOAST_DENIED,
            TOAST_DENIED,
        ]
    );
    let log: Vec<String> = h.state().pcapdroid.log.iter().cloned().collect();
    assert_eq!(
        log[log.len() - 2..],
        ["unknown action: frobnicate", "no action provided"]
    );
}

fn bundle(pairs: &[(&str, Extra)]) -> Bundle {
    Bundle(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

#[test]
fn settings_read_extras_as_capture_settings_does() {
    let s = |v: &str| Extra::Str(v.into());
    let all = bundle(&[
        ("pcap_dump_mode", s("tcp_exporter")),
        ("collector_port", s("5123")),
        ("snaplen", Extra::Int(200)),
        ("dump_extensions", s("TRUE")),
        ("pcapng_format", Extra::Bool(true)),
        ("app_filter", s("a.b,c.d,")),
        ("unknown_extra", s("ignored")),
    ]);
    let got = Settings::from_intent(&all, 91).unwrap();
    assert_eq!(got.dump_mode, DumpMode::TcpExporter);
    assert_eq!(got.collector_port, 5123);
    assert_eq!(got.collector_address, "127.0.0.1");
    assert_eq!(got.snaplen, 200);
    assert!(got.dump_extensions);
    assert!(!got.pcapng_format, "no licence: plain pcap");
    assert_eq!(got.app_filter, ["a.b", "c.d"]);
    // Booleans as strings: only "true" is true; an int for a string key is ignored.
    let b = bundle(&[
        ("dump_extensions", s("1")),
        ("pcap_dump_mode", Extra::Int(3)),
        ("collector_ip_address", Extra::Int(1)),
        ("collector_port", Extra::Bool(true)),
    ]);
    let got = Settings::from_intent(&b, 91).unwrap();
    assert!(!got.dump_extensions);
    assert_eq!(got.dump_mode, DumpMode::None);
    assert_eq!(got.collector_address, "127.0.0.1");
    assert_eq!(
        got.collector_port, 1234,
        "a Boolean is no Integer: the default"
    );
    // Unknown dump mode: none. tcp_exporter before 1.8.6: unknown. A non-number: the crash.
    let got = Settings::from_intent(&bundle(&[("pcap_dump_mode", s("tcp"))]), 91).unwrap();
    assert_eq!(got.dump_mode, DumpMode::None);
    let got = Settings::from_intent(&bundle(&[("pcap_dump_mode", s("tcp_exporter"))]), 85).unwrap();
    assert_eq!(got.dump_mode, DumpMode::None);
    let err = Settings::from_intent(&bundle(&[("snaplen", s("big"))]), 91).unwrap_err();
    assert_eq!(
        err,
        "java.lang.NumberFormatException: For input string: \"big\""
    );
    // app_filter before 1.7.0: one package name, commas and all.
    let got = Settings::from_intent(&bundle(&[("app_filter", s("a,b"))]), 64).unwrap();
    assert_eq!(got.app_filter, ["a,b"]);
}

#[test]
fn tls_extras_are_read_from_the_versions_that_know_them() {
    let s = |v: &str| Extra::Str(v.into());
    let tls = bundle(&[
        ("tls_decryption", s("true")),
        ("sslkeylog_name", s("k.log")),
        (
            "decryption_rules",
            s(r#"[{"type":"HOST","value":"example.com"}]"#),
        ),
    ]);
    let got = Settings::from_intent(&tls, 91).unwrap();
    assert!(got.tls_decryption);
    assert_eq!(got.sslkeylog_name, "k.log");
    let rules = got.decryption_rules.expect("rules given");
    assert!(rules.matches("api.example.com", std::net::Ipv4Addr::LOCALHOST, None));
    // 1.8.6: tls_decryption yes, sslkeylog_name and decryption_rules not yet (1.8.8).
    let got = Settings::from_intent(&tls, 86).unwrap();
    assert!(got.tls_decryption);
    assert_eq!(got.sslkeylog_name, "");
    assert_eq!(got.decryption_rules, None);
    // Before 1.5.0 the key was tls_decryption_enabled.
    assert!(!Settings::from_intent(&tls, 46).unwrap().tls_decryption);
    let old = bundle(&[("tls_decryption_enabled", s("true"))]);
    assert!(Settings::from_intent(&old, 46).unwrap().tls_decryption);
    assert!(!Settings::from_intent(&old, 91).unwrap().tls_decryption);
}

/// MainActivity copies the cached key log to Downloads only for a capture it saw run, once it is in
/// front again, and only with a name; the cache goes either way.
#[tokio::test]
async fn main_activity_copies_the_key_log_of_a_capture_it_saw() {
    let h = with_pcapdroid(91, true);
    let main = "am start -n com.emanuelef.remote_capture/.activities.MainActivity";
    let ended = |name: &str| EndedCapture {
        api_capture: true,
        decrypting: true,
        sslkeylog_name: name.into(),
    };
    let cache = |h: &Handset| {
        h.state()
            .fs
            .write(
                mitm::KEYLOG_CACHE,
                b"CLIENT_RANDOM a b\n".to_vec(),
                0o600,
                1,
            )
            .unwrap()
    };
    // Never launched: nothing saw the capture, nothing is copied.
    cache(&h);
    capture_ended(&h, ended("k.log"));
    sh(&h, main).await;
    assert!(
        h.state()
            .fs
            .read("/sdcard/Download/PCAPdroid/k.log")
            .is_err()
    );
    // Launched, saw it run, stopped: copied when it comes to the front, then the cache is gone.
    h.state().pcapdroid.main.saw_started = true;
    capture_ended(&h, ended("k.log"));
    assert!(
        h.state()
            .fs
            .read("/sdcard/Download/PCAPdroid/k.log")
            .is_err(),
        "not before it is in front"
    );
    let (out, _, _) = sh(&h, main).await;
    assert!(out.contains("Starting: Intent"), "{out}");
    // In two stages, as v1.9.1's: the Downloads entry (empty), then the copy.
    let copied = || {
        h.state()
            .fs
            .read("/sdcard/Download/PCAPdroid/k.log")
            .map(<[u8]>::to_vec)
    };
    assert_eq!(copied().unwrap(), b"", "the entry first, empty");
    assert!(!toasts(&h).contains(&mitm::SAVE_OK.to_string()));
    tokio::time::sleep(KEYLOG_COPY_GAP + Duration::from_millis(100)).await;
    assert_eq!(copied().unwrap(), b"CLIENT_RANDOM a b\n");
    assert!(h.state().fs.read(mitm::KEYLOG_CACHE).is_err());
    assert!(toasts(&h).contains(&mitm::SAVE_OK.to_string()));
    // A blank name: no copy, the cache is still deleted.
    cache(&h);
    h.state().pcapdroid.main.saw_started = true;
    capture_ended(&h, ended(" "));
    sh(&h, main).await;
    assert!(h.state().fs.read(mitm::KEYLOG_CACHE).is_err());
}

#[tokio::test]
async fn am_types_extras_as_intent_parse_command_args() {
    let h = with_pcapdroid(91, true);
    // --ez 1 is a Boolean true; -e dump_extensions 1 would be false. A bad --ei is am's exception.
    let (_, err, code) = sh(&h, &format!("{CTRL} --ei collector_port x5")).await;
    assert!(
        err.contains("java.lang.NumberFormatException: For input string: \"x5\"") && code != 0,
        "{err}"
    );
    let (_, err, code) = sh(&h, &format!("{CTRL} --ez dump_extensions maybe")).await;
    assert!(
        err.contains("Invalid boolean value: maybe") && code != 0,
        "{err}"
    );
}
