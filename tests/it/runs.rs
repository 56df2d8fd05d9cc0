//! `tattle run` as CI uses it, and runs that go wrong: the device unplugged mid-run keeps the capture
//! taken so far and says what happened.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use tattle::device::Device;
use tattle::runner::{self, Quiet, RunObserver, RunOptions};
use tattle::scenario::Scenario;

use crate::support::{Bench, json_document, profile_values};

/// A scenario given inline.
fn scenario(name: &str, steps: &str) -> Scenario {
    Scenario::parse(
        &format!("name: {name}\nsteps:\n{steps}"),
        Path::new("inline.yaml"),
    )
    .unwrap()
}

/// Run options with run directories under `runs`.
fn options(runs: &tempfile::TempDir) -> RunOptions {
    RunOptions {
        runs_root: runs.path().to_path_buf(),
        ..RunOptions::default()
    }
}

/// Collects the live findings a run announces.
#[derive(Default)]
struct LiveNotices(Mutex<Vec<String>>);

impl RunObserver for LiveNotices {
    fn live_finding(&self, notice: &str) {
        self.0.lock().unwrap().push(notice.to_string());
    }
}

/// The capture is analysed as it arrives: the run announces findings while it runs, and its
/// analysis is exactly what analysing the capture file afterwards gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_analysis_equals_the_capture_file_analysed_afterwards() {
    let bench = Bench::start(&["miui-cloud-default"]).await;
    let scenario = scenario(
        "live",
        "  - fresh-setup\n  - send-sms: { to: \"+6598765432\", body: \"hi {run_id}\" }\n",
    );
    let device = Device::new(bench.device());
    let runs = tempfile::tempdir().unwrap();
    let options = options(&runs);
    let notices = LiveNotices::default();
    let result = runner::run(&scenario, &device, &options, &notices)
        .await
        .expect("run");
    bench.finish().await;
    assert!(result.interrupted.is_none(), "{:?}", result.interrupted);
    let afterwards =
        tattle_analysis::analyze_file(&result.capture.path, &result.identifiers).expect("analysis");
    assert!(afterwards.frames > 0 && !afterwards.findings.is_empty());
    assert!(
        result.analysis == afterwards,
        "live and file analyses differ"
    );
    assert_eq!(result.capture.packets, afterwards.frames);

    let notices = notices.0.into_inner().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("<imei> → msg.kestrelcloud.net (")
                && n.ends_with("in step 2 send-sms")),
        "{notices:?}"
    );
    let mut values = profile_values("miui-cloud-default");
    values.extend(result.identifiers.iter().map(|i| i.value.clone()));
    for n in &notices {
        for v in &values {
            assert!(!n.contains(v.as_str()), "raw identifier in a live notice");
        }
    }
}

/// The activation's IMEI travels inside TLS: the live pass cannot see it, the keyed pass over the
/// kept capture with the build's key log does, and the run announces it like a live finding, marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaks_only_the_key_log_shows_are_announced_too() {
    let bench = Bench::start(&["miui-cloud-default"]).await;
    let device = Device::new(bench.device());
    let runs = tempfile::tempdir().unwrap();
    let options = RunOptions {
        keylogs: vec![tattle::capture::keylog::KeylogSource::Device(
            "/data/local/tmp/sslkeys.log".into(),
        )],
        ..options(&runs)
    };
    let notices = LiveNotices::default();
    let result = runner::run(
        &scenario("keyed", "  - fresh-setup\n"),
        &device,
        &options,
        &notices,
    )
    .await
    .expect("run");
    bench.finish().await;
    let notices = notices.0.into_inner().unwrap();
    let keyed: Vec<&String> = notices
        .iter()
        .filter(|n| n.contains(", found with the key log ("))
        .collect();
    assert!(
        keyed.iter().any(|n| n.starts_with("<imei> → activate.kestrelcloud.net (http.body as plain) in step 1 fresh-setup, found with the key log (decrypted TLS 1.3 ")),
        "{notices:?}"
    );
    // Each evidence item inside decrypted TLS was announced that way, and nothing seen live twice.
    let inside = result.evidence.iter().filter(|e| e.tls.is_some()).count();
    assert!(inside > 0 && keyed.len() <= inside, "{notices:?}");
    assert!(
        keyed.iter().all(|n| !notices
            .iter()
            .any(|m| *m != **n && n.starts_with(m.as_str()))),
        "{notices:?}"
    );
    let values = profile_values("miui-cloud-default");
    for n in &notices {
        for v in &values {
            assert!(!n.contains(v.as_str()), "raw identifier in a notice");
        }
    }
}

fn snapshot_pending(snap: &Path) -> std::path::PathBuf {
    let mut name = snap.as_os_str().to_owned();
    name.push(".new");
    name.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_equal_to_snapshot_exits_0_and_changed_exits_1() {
    let bench = Bench::start(&["miui-cloud-optin"]).await;
    let serial = bench.handsets[0].serial();
    let port = bench.server().port().to_string();
    let runs = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run_with = |snapshots: &Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
            .args(["run", "send-sms", "--device", &serial, "--runs"])
            .arg(runs.path())
            .arg("--snapshots")
            .arg(snapshots)
            .args(extra)
            .env("ANDROID_ADB_SERVER_PORT", &port)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let run = |snapshots: &Path| run_with(snapshots, &[]);
    let run_json = |snapshots: &Path| run_with(snapshots, &["--format", "json"]);
    // The accepted snapshot in the repository: equal → 0.
    let (code, stdout) = run(&repo.join("snapshots"));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("equals the accepted snapshot"), "{stdout}");

    // An accepted snapshot that says otherwise (the default build's): different → 1, .snap.new + diff.
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo.join("snapshots/send-sms@kestrel-wren-TP1A.220624.014-V14.0.3.0.TGLMIXM.snap"),
        other
            .path()
            .join("send-sms@kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM.snap"),
    )
    .unwrap();
    let (code, stdout) = tokio::task::block_in_place(|| run(other.path()));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("differs from the accepted snapshot"),
        "{stdout}"
    );
    let snap = other
        .path()
        .join("send-sms@kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM.snap");
    let pending = snapshot_pending(&snap);
    assert!(pending.exists());
    // The snapshot workflow on what the run left (docs/snapshots.md): pending names the run that
    // produced it, diff says what accepting means, accept makes it the snapshot.
    let tattle = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
            .args(args)
            .arg("--snapshots")
            .arg(other.path())
            .arg("--runs")
            .arg(runs.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = tattle(&["pending"]);
    assert_eq!(code, Some(1), "{stdout}");
    // Two runs made this outcome (the equal one and this one): the newest is named.
    let newest = std::fs::read_dir(runs.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            std::fs::read(p.join("outcome.snap")).ok().as_deref()
                == Some(std::fs::read(&pending).unwrap().as_slice())
        })
        .max()
        .expect("a run directory holds the pending outcome");
    assert!(
        stdout.contains(&format!("pending (changed, from {})", newest.display())),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("diff")
        .arg(&snap)
        .arg(&pending)
        .output()
        .unwrap();
    let diff = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{diff}");
    assert!(
        diff.contains("Build B no longer sends <imei> (plain and md5, in the clear over HTTP) to msg.kestrelcloud.net when an SMS is sent."),
        "{diff}"
    );
    let (code, stdout) = tattle(&["accept"]);
    assert_eq!(code, Some(0), "{stdout}");
    let optin = tattle::snapshot::load_outcome(
        &repo.join("snapshots/send-sms@kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM.snap"),
    )
    .unwrap();
    assert_eq!(tattle::snapshot::load_outcome(&snap).unwrap(), optin);
    assert!(!pending.exists());

    // --update=always writes the snapshot itself, says so, and passes (as INSTA_UPDATE=always).
    std::fs::copy(
        repo.join("snapshots/send-sms@kestrel-wren-TP1A.220624.014-V14.0.3.0.TGLMIXM.snap"),
        &snap,
    )
    .unwrap();
    let (code, stdout) =
        tokio::task::block_in_place(|| run_with(other.path(), &["--update", "always"]));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("replaced"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with('-') && l.contains("identifier: <imei>")),
        "{stdout}"
    );
    assert_eq!(tattle::snapshot::load_outcome(&snap).unwrap(), optin);
    assert!(!pending.exists());

    // No snapshot and no findings → 0, and a .snap.new to accept; as JSON (docs/run-json.md).
    let empty = tempfile::tempdir().unwrap();
    let (code, stdout) = tokio::task::block_in_place(|| run_json(empty.path()));
    assert_eq!(code, Some(0), "{stdout}");
    let pending = empty
        .path()
        .join("send-sms@kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM.snap.new");
    assert!(pending.exists());
    let (doc, keys) = json_document(&stdout);
    for field in [
        "format_version",
        "run_dir",
        "outcome",
        "evidence",
        "traffic",
        "snapshot",
        "comparison",
        "pending",
        "interrupted",
        "identifiers_missing",
        "capture",
    ] {
        assert!(keys.contains(field), "no `{field}` in {keys:?}");
    }
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["comparison"], "missing");
    assert_eq!(doc["pending"], pending.display().to_string());
    assert_eq!(
        doc["outcome"]["firmware"],
        "kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM"
    );
    assert!(doc["capture"]["packets"].as_u64().unwrap() > 0);
    assert!(Path::new(doc["run_dir"].as_str().unwrap()).is_dir());
    for value in profile_values("miui-cloud-optin") {
        assert!(!stdout.contains(&value), "raw identifier in the JSON");
    }
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_unplugged_mid_run_keeps_the_capture() {
    let bench = Bench::start(&["miui-cloud-default"]).await;
    let scenario = scenario(
        "unplug",
        "  - fresh-setup\n  - idle: 4s\n  - send-sms: { to: \"+6598765432\", body: \"hello {run_id}\" }\n",
    );
    let device = Device::new(bench.device());
    let runs = tempfile::tempdir().unwrap();
    let options = options(&runs);
    let run = tokio::spawn(async move { runner::run(&scenario, &device, &options, &Quiet).await });
    // Unplug during the idle step, after fresh-setup's traffic.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let Bench { adb, handsets } = bench;
    for h in handsets {
        h.shutdown().await;
    }
    let result = run.await.unwrap().expect("the run returns what it has");
    let why = result.interrupted.clone().expect("interrupted");
    assert!(why.contains("idle") || why.contains("send-sms"), "{why}");
    assert!(
        result.capture.ended_early || why.contains("send-sms"),
        "{why}"
    );
    assert!(result.capture.packets > 0, "{:?} {why}", result.capture);
    let setup = &result
        .outcome
        .steps
        .iter()
        .find(|s| s.step == "1 fresh-setup")
        .unwrap();
    assert!(
        setup
            .hosts
            .iter()
            .any(|h| h.host == "activate.kestrelcloud.net"),
        "the traffic before the unplug is analysed: {:?}",
        result.outcome
    );
    assert!(result.dir.join("capture.pcap").exists());
    let record = std::fs::read_to_string(result.dir.join("run.json")).unwrap();
    assert!(record.contains("\"interrupted\""), "{record}");
    // The clock was read before the first step; after the unplug it cannot be, and says why.
    assert_eq!(result.clock.timestamps, "device");
    assert!(
        result.clock.start.offset_seconds.is_some(),
        "{:?}",
        result.clock
    );
    let why = result.clock.end.unmeasured.as_deref().expect("unmeasured");
    assert!(why.contains("date"), "{why}");
    let (doc, _) = json_document(&record);
    assert_eq!(
        doc["clock"]["end"]["offset_seconds"],
        serde_json::Value::Null
    );
    assert_eq!(doc["capture_source"]["source"], "device");
    drop(adb);
}

/// Ctrl-C during a run: stepping stops, the capture taken so far is analysed and kept, no `.snap.new`
/// is offered, and the exit code is 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_keeps_the_capture_and_exits_2() {
    let bench = Bench::start(&["miui-cloud-default"]).await;
    let runs = tempfile::tempdir().unwrap();
    let snapshots = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args([
            "run",
            "send-sms",
            "--device",
            &bench.handsets[0].serial(),
            "--runs",
        ])
        .arg(runs.path())
        .arg("--snapshots")
        .arg(snapshots.path())
        .env("ANDROID_ADB_SERVER_PORT", bench.server().port().to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Into the idle step after fresh-setup.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = child.id().expect("running") as i32;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("tattle stops after Ctrl-C")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("RUN INTERRUPTED: stopped by the user"),
        "{stdout}"
    );
    assert!(stdout.contains("not compared"), "{stdout}");
    assert_eq!(
        std::fs::read_dir(snapshots.path()).unwrap().count(),
        0,
        "no .snap.new for a partial run"
    );
    let dir = std::fs::read_dir(runs.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(std::fs::metadata(dir.join("capture.pcap")).unwrap().len() > 24);
    assert!(
        stdout.contains("activate.kestrelcloud.net"),
        "fresh-setup's traffic was analysed: {stdout}"
    );
    bench.finish().await;
}

/// The other ways a phone is lost mid-run — `adb disconnect`, and the adb server dying — keep the
/// capture taken so far, analyse it, and say which step was cut short and how.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_or_a_dead_adb_server_mid_run_keeps_the_capture() {
    for way in ["adb disconnect", "adb server killed"] {
        let bench = Bench::start(&["miui-cloud-default"]).await;
        let serial = bench.handsets[0].serial();
        let scenario = scenario(
            "unplug",
            "  - fresh-setup\n  - idle: 4s\n  - send-sms: { to: \"+6598765432\", body: \"hello\" }\n",
        );
        let device = Device::new(bench.device());
        let runs = tempfile::tempdir().unwrap();
        let options = options(&runs);
        let run =
            tokio::spawn(async move { runner::run(&scenario, &device, &options, &Quiet).await });
        tokio::time::sleep(Duration::from_secs(4)).await;
        let Bench { adb, handsets } = bench;
        match way {
            "adb disconnect" => adb.server().disconnect(&serial).await.expect("disconnect"),
            _ => {
                let port = adb.server().port().to_string();
                let out = Command::new("adb")
                    .args(["-P", &port, "kill-server"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
            }
        }
        let result = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .unwrap_or_else(|_| panic!("{way}: the run must end"))
            .unwrap()
            .unwrap_or_else(|e| panic!("{way}: the run returns what it has: {e}"));
        let why = result
            .interrupted
            .clone()
            .unwrap_or_else(|| panic!("{way}: interrupted"));
        assert!(
            why.contains("idle") || why.contains("send-sms"),
            "{way}: {why}"
        );
        assert!(result.capture.packets > 0, "{way}: {:?}", result.capture);
        assert!(
            result.outcome.steps.iter().any(|s| s
                .hosts
                .iter()
                .any(|h| h.host == "activate.kestrelcloud.net")),
            "{way}: the traffic before the loss is analysed"
        );
        assert!(result.dir.join("capture.pcap").exists());
        let cause = match way {
            "adb disconnect" => "the device left the adb server",
            _ => "stopped answering",
        };
        assert!(why.contains(cause) && why.contains("UTC"), "{way}: {why}");
        for h in handsets {
            h.shutdown().await;
        }
        drop(adb);
    }
}

/// A capture taken off the device (here `file:PATH`) goes on without the phone: a phone pulled
/// during an idle step is still noticed at the end of that step, the run is interrupted there, and
/// the capture is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_pulled_during_an_off_device_capture_is_noticed() {
    use tattle_analysis::testgen::frame::{self, L4};
    let bench = Bench::start(&["aosp-clean"]).await;
    let dir = tempfile::tempdir().unwrap();
    let capture_file = dir.path().join("ap.pcap");
    let mut packet = Vec::new();
    frame::ethernet(
        &mut packet,
        ("10.0.0.15".parse().unwrap(), 40_000),
        ("10.0.0.1".parse().unwrap(), 53),
        L4::Udp,
        b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04ping\x07example\x00\x00\x01\x00\x01",
    );
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let mut w = tattle_analysis::pcap::PcapWriter::new(Vec::new(), 1).unwrap();
    w.record(now_us + 1_000_000, &packet).unwrap();
    std::fs::write(&capture_file, w.into_inner()).unwrap();

    let scenario = scenario("pulled", "  - idle: 2s\n  - idle: 4s\n  - idle: 2s\n");
    let device = Device::new(bench.device());
    let runs = tempfile::tempdir().unwrap();
    let options = RunOptions {
        capture: tattle::capture::CaptureSource::File(capture_file),
        ..options(&runs)
    };
    let run = tokio::spawn(async move { runner::run(&scenario, &device, &options, &Quiet).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let Bench { adb, handsets } = bench;
    for h in handsets {
        h.shutdown().await;
    }
    let result = run.await.unwrap().expect("the run returns what it has");
    let why = result.interrupted.clone().expect("interrupted");
    assert!(
        why.starts_with("the device went away during step 2 idle: the device left the adb server"),
        "{why}"
    );
    assert_eq!(
        result
            .outcome
            .steps
            .iter()
            .filter(|s| s.step.ends_with("idle"))
            .count(),
        2
    );
    assert_eq!(result.capture.packets, 1, "the capture file was kept");
    assert!(result.dir.join("capture.pcap").exists());
    drop(adb);
}
