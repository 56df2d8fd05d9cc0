//! A phone lost mid-run, for the capture sources that run on or through the phone besides tcpdump
//! (`runs.rs` covers `device` and `file:`): PCAPdroid (its export rides on adb) and the emulator's
//! console. Each of the three ways — the handset killed, `adb disconnect` (not for an emulator: its
//! transport is not a connection the server made), the adb server killed —
//! keeps the capture file, analyses it, marks the run interrupted in the step it happened, and says
//! how, asked of the adb server.

use std::time::Duration;

use tattle::adb::PrivateAdbServer;
use tattle::capture::CaptureSource;
use tattle::device::Device;
use tattle::runner::{self, Quiet, RunOptions};
use tattle::scenario::Scenario;
use tattle::vhandset::{EmulatorConfig, HandsetConfig};
use tattle::virtual_device::{Registration, VirtualDevice};

use crate::support;

#[derive(Clone, Copy, Debug)]
enum Loss {
    HandsetKilled,
    AdbDisconnect,
    ServerKilled,
}

const WAYS: [Loss; 3] = [Loss::HandsetKilled, Loss::AdbDisconnect, Loss::ServerKilled];

fn scenario() -> Scenario {
    Scenario::parse(
        "name: unplug\nsteps:\n  - fresh-setup\n  - idle: 5s\n  - send-sms: { to: \"+6598765432\", body: hi }\n",
        std::path::Path::new("unplug.yaml"),
    )
    .unwrap()
}

/// Starts the run, loses the phone 3.5 s in (during the idle step), and checks what the run says.
async fn lose_during_a_run(
    adb: PrivateAdbServer,
    device: VirtualDevice,
    options: RunOptions,
    loss: Loss,
    source: &str,
) {
    let serial = device.adb_serial().to_string();
    let phone = Device::new(device.adb());
    let run = tokio::spawn(async move { runner::run(&scenario(), &phone, &options, &Quiet).await });
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut device = Some(device);
    match loss {
        Loss::HandsetKilled => device.take().unwrap().into_handset().shutdown().await,
        Loss::AdbDisconnect => adb.server().disconnect(&serial).await.expect("disconnect"),
        Loss::ServerKilled => {
            let port = adb.server().port().to_string();
            let out = std::process::Command::new("adb")
                .args(["-P", &port, "kill-server"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }
    let result = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .unwrap_or_else(|_| panic!("{source} {loss:?}: the run must end"))
        .unwrap()
        .unwrap_or_else(|e| panic!("{source} {loss:?}: the run returns what it has: {e}"));
    let why = result
        .interrupted
        .clone()
        .unwrap_or_else(|| panic!("{source} {loss:?}: the run must be interrupted"));
    assert!(why.contains("step 2 idle"), "{source} {loss:?}: {why}");
    // A killed handset's transport may first show as `offline` (the server retries it) or be gone.
    let said = match loss {
        Loss::ServerKilled => why.contains("stopped answering"),
        Loss::AdbDisconnect => why.contains("the device left the adb server"),
        Loss::HandsetKilled => {
            why.contains("the device left the adb server") || why.contains("is `offline`")
        }
    };
    assert!(said, "{source} {loss:?}: {why}");
    assert!(
        result.capture.path.exists(),
        "{source} {loss:?}: the capture file is kept"
    );
    assert!(
        result.dir.join("run.json").exists(),
        "{source} {loss:?}: the run is recorded"
    );
    if let Some(d) = device {
        d.into_handset().shutdown().await;
    }
    drop(adb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcapdroid_keeps_its_capture_however_the_phone_is_lost() {
    for loss in WAYS {
        let adb = PrivateAdbServer::start().await.expect("private adb server");
        let profile = support::builtin("vendor-14-locked");
        let key = profile
            .persona
            .pcapdroid
            .clone()
            .and_then(|p| p.api_key)
            .expect("an API key");
        let device = VirtualDevice::start(profile, adb.server()).await.unwrap();
        let out = device
            .adb()
            .shell("appops set com.emanuelef.remote_capture ACTIVATE_VPN allow")
            .await
            .unwrap();
        assert!(out.success());
        let runs = tempfile::tempdir().unwrap();
        let options = RunOptions {
            runs_root: runs.path().to_path_buf(),
            capture: CaptureSource::Pcapdroid(Default::default()),
            pcapdroid_api_key: Some(tattle::pcapdroid::ApiKey::new(key).unwrap()),
            ..RunOptions::default()
        };
        lose_during_a_run(adb, device, options, loss, "pcapdroid").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_source_keeps_its_capture_however_the_phone_is_lost() {
    // `adb disconnect` does not apply to an emulator (its transport is `emulator-N`, not an address
    // the server connected to): the emulator is lost by being killed, or with the server.
    for loss in [Loss::HandsetKilled, Loss::ServerKilled] {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join(".emulator_console_auth_token");
        std::fs::write(&token, "").unwrap(); // auth off: the runner finds no token file here
        let adb = PrivateAdbServer::start().await.expect("private adb server");
        let device = VirtualDevice::start_emulator(
            HandsetConfig {
                profile: support::builtin("miui-cloud-default"),
                adb_port: 0,
            },
            EmulatorConfig {
                console_port: 0,
                token_file: Some(token),
            },
            Registration::AsEmulator,
            adb.server(),
        )
        .await
        .unwrap();
        let runs = tempfile::tempdir().unwrap();
        let options = RunOptions {
            runs_root: runs.path().to_path_buf(),
            capture: CaptureSource::Emulator,
            ..RunOptions::default()
        };
        lose_during_a_run(adb, device, options, loss, "emulator").await;
    }
}
