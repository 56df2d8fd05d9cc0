//! The `tattle` binary as a user runs it: exit codes, messages, the demo end to end through the real
//! adb server, and the demo's captures checked with tshark.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tattle::adb::PrivateAdbServer;
use tattle_analysis::{self as analysis, HostSource};

use crate::support::{json_document, profile_values};

fn tattle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tattle"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn scenario_typo_fails_before_touching_any_device() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(repo().join("scenarios/send-sms.yaml")).unwrap();
    assert!(original.contains("- send-sms:"));
    let typo = original.replace("- send-sms:", "- send-smss:");
    let path = dir.path().join("send-sms.yaml");
    std::fs::write(&path, &typo).unwrap();
    let line = typo.lines().position(|l| l.contains("send-smss")).unwrap() + 1;
    let column = typo
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("send-smss")
        .unwrap()
        + 1;
    // Port 1: nothing listens there, so any attempt to reach an adb server would fail differently.
    let out = tattle()
        .args(["run", path.to_str().unwrap(), "--device", "none"])
        .env("ANDROID_ADB_SERVER_PORT", "1")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("send-sms.yaml:{line}:{column}")),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `send-sms`"), "{stderr}");
    assert!(
        !stderr.contains("adb"),
        "the adb server must not be contacted: {stderr}"
    );
}

#[test]
fn diff_of_snapshots_names_what_went_away() {
    let a = repo().join("snapshots/send-sms@kestrel-wren-TP1A.220624.014-V14.0.3.0.TGLMIXM.snap");
    let b = repo().join("snapshots/send-sms@kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM.snap");
    let out = tattle().args(["diff"]).arg(&a).arg(&b).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "  - Build B no longer sends <imei> (plain and md5, in the clear over HTTP) to \
             msg.kestrelcloud.net when an SMS is sent."
        ),
        "{stdout}"
    );
    let same = tattle().args(["diff"]).arg(&a).arg(&a).output().unwrap();
    assert_eq!(same.status.code(), Some(0));
    assert!(text(&same.stdout).contains("no difference"));

    // As JSON (docs/diff-json.md).
    let out = tattle()
        .args(["diff", "--format", "json"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let (doc, keys) = json_document(&stdout);
    assert_eq!(
        keys,
        ["format_version", "a", "b", "same", "scenarios", "sentences"]
            .map(String::from)
            .into()
    );
    assert_eq!(doc["format_version"], 3);
    assert_eq!(doc["same"], false);
    assert_eq!(
        doc["b"]["firmwares"][0],
        "kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM"
    );
    let change = &doc["scenarios"][0]["changes"][0];
    assert_eq!(change["kind"], "leak_removed");
    assert_eq!(change["step"], "4 send-sms");
    assert_eq!(change["when"], "when an SMS is sent");
    assert_eq!(change["identifier"], "<imei>");
    assert_eq!(change["carried_in_a"][0]["protocol"], "http");
    assert_eq!(change["carried_in_b"].as_array().unwrap().len(), 0);
    assert_eq!(doc["sentences"][0], change["sentence"]);
    for value in profile_values("miui-cloud-default") {
        assert!(!stdout.contains(&value), "raw identifier in the diff");
    }

    // Whole folders, one build's outcomes each; as Markdown.
    let (fa, fb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for entry in std::fs::read_dir(repo().join("snapshots")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("V14.0.3.0") {
            std::fs::copy(&path, fa.path().join(&name)).unwrap();
        } else if name.contains("V14.0.4.0") && !name.starts_with("add-contact") {
            std::fs::copy(&path, fb.path().join(&name)).unwrap();
        }
    }
    let out = tattle()
        .args(["diff", "--format", "markdown"])
        .arg(fa.path())
        .arg(fb.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("# What changed from build A to build B"),
        "{stdout}"
    );
    assert!(stdout.contains("## `fresh-setup`\n"), "{stdout}");
    assert!(
        stdout.contains("- Build B has no outcome of the `add-contact` scenario to compare"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "- Build B no longer sends `<phone_number>` (plain, md5 and url, in the clear over \
             HTTP) to `msg.kestrelcloud.net` when an SMS is sent in the `send-sms` scenario."
        ),
        "{stdout}"
    );
    // The repository's folder holds several builds: not one build's set (2, with the fix).
    let out = tattle()
        .args(["diff"])
        .arg(repo().join("snapshots"))
        .arg(fb.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("one outcome per scenario"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = tattle().args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = tattle()
        .args(["analyze", "/nonexistent.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent.pcap"));
    // A bad update mode, by flag or environment, before any device is touched.
    let out = tattle()
        .args([
            "run",
            "send-sms",
            "--device",
            "none",
            "--update",
            "sometimes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("always"),
        "{}",
        text(&out.stderr)
    );
    let out = tattle()
        .args(["run", "send-sms", "--device", "none"])
        .env("TATTLE_UPDATE", "sometimes")
        .env("ANDROID_ADB_SERVER_PORT", "1")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("TATTLE_UPDATE=sometimes"), "{stderr}");
    assert!(!stderr.contains("adb"), "{stderr}");
}

/// Hosts tshark sees in a capture: DNS names asked, TLS SNI, HTTP Host.
fn tshark_hosts(capture: &Path) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "dns.qry.name",
            "-e",
            "tls.handshake.extensions_server_name",
            "-e",
            "http.host",
        ])
        .args([
            "-Y",
            "dns.flags.response == 0 || tls.handshake.type == 1 || http.request",
        ])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark: {}", text(&out.stderr));
    let (mut dns, mut sni, mut http) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for line in text(&out.stdout).lines() {
        let fields: Vec<&str> = line.split('|').collect();
        for (i, set) in [&mut dns, &mut sni, &mut http].into_iter().enumerate() {
            if let Some(v) = fields.get(i).filter(|v| !v.is_empty()) {
                set.insert(v.to_string());
            }
        }
    }
    (dns, sni, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_end_to_end_agrees_with_tshark() {
    let adb = PrivateAdbServer::start().await.expect("private adb server");
    let runs = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(["demo", "--runs"])
        .arg(runs.path())
        .env("ANDROID_ADB_SERVER_PORT", adb.server().port().to_string())
        .output()
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for sentence in [
        "Build B no longer sends <imei> (plain, inside TLS 1.3) to activate.kestrelcloud.net during setup.",
        "Build B no longer sends <imei> (plain and md5, in the clear over HTTP) to msg.kestrelcloud.net when an SMS is sent.",
        "Build B no longer sends <phone_number> (plain, md5 and url, in the clear over HTTP) to msg.kestrelcloud.net when an SMS is sent.",
    ] {
        assert!(stdout.contains(sentence), "{sentence}\n{stdout}");
    }
    // No raw identifier in what the demo printed.
    for profile in ["miui-cloud-default", "miui-cloud-optin"] {
        for value in profile_values(profile) {
            assert!(
                !stdout.contains(&value) && !text(&out.stderr).contains(&value),
                "raw identifier printed"
            );
        }
    }
    // The demo cleaned up: the private server lists no device.
    assert!(
        adb.server().devices().await.unwrap().is_empty(),
        "demo left devices registered"
    );

    // Every capture: what tattle names, tshark names too, and the other way round.
    let mut captures = 0;
    for entry in std::fs::read_dir(runs.path()).unwrap() {
        let capture = entry.unwrap().path().join("capture.pcap");
        let analysis = analysis::analyze_file(&capture, &[]).expect("analysis");
        assert!(analysis.damage.is_empty(), "{:?}", analysis.damage);
        let (dns, sni, http) = tshark_hosts(&capture);
        let ours_dns: BTreeSet<String> = analysis
            .dns_queries
            .iter()
            .map(|q| q.name.clone())
            .collect();
        let ours_sni: BTreeSet<String> = analysis
            .flows
            .iter()
            .filter(|f| f.host_source == HostSource::Sni)
            .map(|f| f.host.clone())
            .collect();
        let ours_http: BTreeSet<String> = analysis
            .flows
            .iter()
            .filter(|f| f.host_source == HostSource::Http)
            .map(|f| f.host.clone())
            .collect();
        assert!(
            !dns.is_empty() && !sni.is_empty(),
            "capture without DNS or TLS: {}",
            capture.display()
        );
        assert_eq!(ours_dns, dns, "DNS names");
        assert_eq!(ours_sni, sni, "TLS SNI");
        assert_eq!(ours_http, http, "HTTP hosts");
        captures += 1;
    }
    assert_eq!(captures, 2);
    // What tattle found inside TLS, tshark decrypts with the key log the run pulled from the
    // handset: the same frame holds an HTTP request to the same host.
    let mut inside_tls = 0;
    for entry in std::fs::read_dir(runs.path()).unwrap() {
        let dir = entry.unwrap().path();
        let evidence: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("evidence.json")).unwrap()).unwrap();
        for item in evidence["findings"].as_array().unwrap() {
            let Some(tls) = item["tls"].as_str() else {
                continue;
            };
            assert!(tls.starts_with("TLS 1.3 TLS_"), "{tls}");
            let frame = item["frame"].as_u64().unwrap();
            let out = Command::new("tshark")
                .arg("-r")
                .arg(dir.join("capture.pcap"))
                .arg("-o")
                .arg(format!(
                    "tls.keylog_file:{}",
                    dir.join("tls-keys.log").display()
                ))
                .args(["-Y", &format!("frame.number == {frame} && http.request")])
                .args([
                    "-T",
                    "fields",
                    "-e",
                    "http.host",
                    "-e",
                    "http.request.method",
                ])
                .output()
                .expect("tshark");
            assert_eq!(
                text(&out.stdout).trim(),
                format!("{}\tPOST", item["host"].as_str().unwrap()),
                "frame {frame}"
            );
            inside_tls += 1;
        }
    }
    assert_eq!(inside_tls, 1, "the activation's IMEI, in build A only");
}

/// The README's first command as a normal user: `tattle demo` needs no root (its handsets live in
/// user + network namespaces of their own). When the suite runs as root, this reruns itself as
/// `nobody` with a HOME of its own, and the adb server it uses is started by that user.
#[test]
fn the_demo_runs_as_a_normal_user() {
    crate::support::rerun_unprivileged("cli::demo_as_a_normal_user_child", &[]);
}

#[test]
#[ignore = "run by the_demo_runs_as_a_normal_user as a normal user"]
fn demo_as_a_normal_user_child() {
    if !crate::support::in_unprivileged_child() {
        return;
    }
    assert_ne!(unsafe { libc::geteuid() }, 0, "must run unprivileged");
    // A port of its own, so the adb server the demo starts is this user's.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let runs = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(["demo", "--runs"])
        .arg(runs.path())
        .env("ANDROID_ADB_SERVER_PORT", &port)
        .output()
        .unwrap();
    let _ = std::process::Command::new("adb")
        .args(["-P", &port, "kill-server"])
        .output();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("Build B no longer sends <imei> (plain, inside TLS 1.3)"),
        "{stdout}"
    );
}
