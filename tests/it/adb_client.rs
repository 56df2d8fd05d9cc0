//! tattle's client of the adb server (`tattle::adb`) against Debian's real `adb` server, each test on a
//! private server (free port, killed at the end), and the virtual handset as the device behind it.
//!
//! Proves: server lifecycle and `host:` services, the errors a CLI turns into clear messages, shell v2 exit
//! codes and split stderr, `exec:` raw bytes, sync push/pull/stat, a lost device, and timeouts.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tattle::adb::{AdbDevice, AdbError, AdbServer, DeviceState, PrivateAdbServer};
use tattle::vhandset::RunningHandset;
use tattle::virtual_device::register;
use tokio::io::AsyncReadExt;

use crate::support::{Bench, unregistered_handset};

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    l.local_addr().expect("addr")
}

#[tokio::test]
async fn private_server_answers_and_is_gone_after_drop() {
    let adb = PrivateAdbServer::start().await.expect("start");
    let server = adb.server().clone();
    assert_ne!(server.port(), 5037, "never the user's server");
    assert_eq!(
        server.version().await.expect("version"),
        41,
        "Debian's adb 29 speaks protocol 41"
    );
    assert!(server.devices().await.expect("devices").is_empty());
    drop(adb);
    assert!(
        matches!(
            server.version().await,
            Err(AdbError::ServerUnreachable { .. })
        ),
        "server still answering after drop"
    );
}

#[tokio::test]
async fn ensure_running_starts_a_daemon_and_kill_stops_it() {
    let server = AdbServer::at(free_addr());
    assert!(matches!(
        server.version().await,
        Err(AdbError::ServerUnreachable { .. })
    ));
    server.ensure_running().await.expect("ensure_running");
    assert_eq!(server.version().await.expect("version"), 41);
    // Already running: nothing to do.
    server
        .ensure_running()
        .await
        .expect("second ensure_running");
    server.kill().await.expect("kill");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.version().await.is_ok() {
        assert!(Instant::now() < deadline, "server survived host:kill");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn missing_adb_binary_says_how_to_install_it() {
    let server = AdbServer::at(free_addr()).with_adb_binary("/nonexistent/bin/adb");
    let err = server.ensure_running().await.expect_err("no adb");
    assert!(matches!(err, AdbError::AdbMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("apt-get install adb"), "{err}");
    let err = PrivateAdbServer::start_with("/nonexistent/bin/adb".into())
        .await
        .err()
        .expect("no adb");
    assert!(matches!(err, AdbError::AdbMissing { .. }), "{err:?}");
}

#[tokio::test]
async fn ensure_running_does_not_try_to_start_a_remote_server() {
    // 192.0.2.0/24 is TEST-NET-1: not loopback, so it must not spawn `adb`; the connect fails or times out.
    let server =
        AdbServer::at("192.0.2.1:5037".parse().unwrap()).with_adb_binary("/nonexistent/bin/adb");
    let err = server.ensure_running().await.expect_err("unreachable");
    assert!(
        matches!(
            err,
            AdbError::ServerUnreachable { .. } | AdbError::Timeout { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_serials_and_closed_ports_are_clear_errors() {
    let adb = PrivateAdbServer::start().await.expect("start");
    let server = adb.server();
    let closed = free_addr().to_string();
    let err = server.connect(&closed).await.expect_err("closed port");
    assert!(
        matches!(&err, AdbError::Failed { message } if message.contains("failed to connect")),
        "{err:?}"
    );
    let ghost = server.device("no-such-serial");
    assert!(matches!(
        ghost.shell("true").await,
        Err(AdbError::DeviceNotFound { serial }) if serial == "no-such-serial"
    ));
    assert!(matches!(
        ghost.features().await,
        Err(AdbError::DeviceNotFound { .. })
    ));
    assert!(matches!(
        ghost.pull("/x", 10).await,
        Err(AdbError::DeviceNotFound { .. })
    ));
    assert!(matches!(
        ghost.exec_out("echo").await,
        Err(AdbError::DeviceNotFound { .. })
    ));
    assert!(matches!(
        server.disconnect(&closed).await,
        Err(AdbError::DeviceNotFound { .. })
    ));
    let err = server
        .wait_for_device("no-such-serial", Duration::from_millis(400))
        .await
        .expect_err("never appears");
    assert!(matches!(err, AdbError::Timeout { .. }), "{err:?}");
    assert!(matches!(
        ghost.shell("").await,
        Err(AdbError::InvalidRequest { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_lists_the_handset_with_its_banner() {
    let bench = Bench::start(&["aosp-clean"]).await;
    let (h, device) = (bench.handset(), bench.device());
    let list = bench.server().devices().await.expect("devices");
    let info = list
        .iter()
        .find(|d| d.serial == h.serial())
        .expect("listed");
    assert_eq!(info.state, DeviceState::Device);
    let model = h
        .profile()
        .prop("ro.product.model")
        .unwrap()
        .replace(' ', "_");
    assert_eq!(info.model.as_deref(), Some(model.as_str()));
    assert_eq!(info.product.as_deref(), h.profile().prop("ro.product.name"));
    assert_eq!(
        info.device.as_deref(),
        h.profile().prop("ro.product.device")
    );
    assert!(info.transport_id.is_some());
    let features = device.features().await.expect("features");
    assert!(features.iter().any(|f| f == "shell_v2"), "{features:?}");
    assert!(device.has_feature("stat_v2").await.unwrap());

    bench
        .server()
        .disconnect(&h.serial())
        .await
        .expect("disconnect");
    let fresh = bench.server().device(&h.serial());
    assert!(matches!(
        fresh.shell("true").await,
        Err(AdbError::DeviceNotFound { .. })
    ));
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_v2_exit_codes_and_split_stderr() {
    let bench = Bench::start(&["aosp-clean"]).await;
    let (h, device) = (bench.handset(), bench.device());
    let out = device
        .shell("getprop ro.product.model")
        .await
        .expect("getprop");
    assert_eq!(
        out.stdout_text(),
        h.profile().prop("ro.product.model").unwrap()
    );
    assert_eq!(out.exit_code, Some(0));
    assert!(out.success());
    assert_eq!(device.shell("false").await.unwrap().exit_code, Some(1));
    assert_eq!(device.shell("exit 3").await.unwrap().exit_code, Some(3));
    let missing = device.shell("nosuchcommand arg").await.unwrap();
    assert_eq!(missing.exit_code, Some(127));
    assert!(!missing.success());
    assert!(missing.stdout.is_empty());
    assert!(
        missing.stderr_text().contains("not found"),
        "{:?}",
        missing.stderr_text()
    );
    let split = device
        .shell("echo out; echo err >&2; exit 42")
        .await
        .unwrap();
    assert_eq!(
        (split.stdout.as_slice(), split.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(split.exit_code, Some(42));
    // Quoting survives the device's shell.
    let tricky = "it's a \"test\"; $HOME `x`";
    let echoed = device
        .shell(&format!("echo {}", tattle::adb::shell_quote(tricky)))
        .await
        .unwrap();
    assert_eq!(echoed.stdout_text(), tricky);
    let argv = device.shell_argv(&["echo", tricky, "b  c"]).await.unwrap();
    assert_eq!(argv.stdout_text(), format!("{tricky} b  c"));
    // Bounded output: beyond the limit is an error, not a truncated success.
    let small = device.clone().with_output_limit(4);
    assert!(matches!(
        small.shell("echo 0123456789").await,
        Err(AdbError::TooLarge { .. })
    ));
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_out_is_raw_and_push_pull_round_trip_300k() {
    let bench = Bench::start(&["aosp-clean"]).await;
    let device = bench.device();
    let data = crate::support::random_bytes(0x9e37_79b9_7f4a_7c15, 300_000);
    let path = "/data/local/tmp/adb_client.bin";
    assert_eq!(device.stat(path).await.expect("stat missing"), None);
    device.push(&data, path, 0o644).await.expect("push");
    let st = device.stat(path).await.expect("stat").expect("exists");
    assert!(st.is_file());
    assert_eq!(st.size, 300_000);
    assert!(
        device
            .stat("/data/local/tmp")
            .await
            .unwrap()
            .unwrap()
            .is_dir()
    );
    let back = device.pull(path, 1 << 20).await.expect("pull");
    assert!(back == data, "pulled bytes differ");
    assert!(matches!(
        device.pull(path, 1000).await,
        Err(AdbError::TooLarge { .. })
    ));
    let err = device
        .pull("/data/local/tmp/none", 10)
        .await
        .expect_err("missing");
    assert!(matches!(err, AdbError::Failed { .. }), "{err:?}");

    // exec: carries the bytes untouched (CR, NUL, high bytes), no shell v2 framing.
    let mut stream = device.exec_out(&format!("cat {path}")).await.expect("exec");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("exec read timed out")
        .expect("exec read");
    assert!(
        raw == data,
        "exec-out bytes differ ({} vs {})",
        raw.len(),
        data.len()
    );
    let mut stream = device
        .exec_out("echo -e 'a\\tb\\r\\nc'")
        .await
        .expect("exec");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    assert_eq!(raw, b"a\tb\r\nc\n");
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_bound_every_wait() {
    let bench = Bench::start(&["aosp-clean"]).await;
    let device = bench.device();
    let started = Instant::now();
    let err = device
        .shell_with_timeout("sleep 5", Duration::from_millis(500))
        .await
        .expect_err("must time out");
    assert!(matches!(err, AdbError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The command line is not in the message (it may carry canaries), only the program name.
    let err = device
        .shell_with_timeout("sleep 5; echo secret-canary", Duration::from_millis(200))
        .await
        .expect_err("must time out");
    assert!(!err.to_string().contains("secret-canary"), "{err}");
    // The device is still usable afterwards.
    assert_eq!(device.shell("true").await.unwrap().exit_code, Some(0));
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handset_gone_mid_command_is_device_lost_never_success() {
    let mut bench = Bench::start(&["aosp-clean"]).await;
    let device = bench.device();
    // Stopped while the server still lists it: a device lost, not one disconnected.
    let h = bench.handsets.pop().expect("handset").into_handset();
    let running = tokio::spawn({
        let device = device.clone();
        async move {
            device
                .shell_with_timeout("echo started; sleep 5; echo done", Duration::from_secs(30))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    h.shutdown().await;
    let result = tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("shell did not notice the loss")
        .expect("join");
    match result {
        Err(AdbError::DeviceLost { serial, during }) => {
            assert_eq!(serial, device.serial());
            assert!(during.contains("`echo`"), "{during}");
        }
        other => panic!("expected DeviceLost, got {other:?}"),
    }
    // Afterwards the server reports it gone or offline, or never answers: all errors, none a success.
    let after = device
        .shell_with_timeout("true", Duration::from_secs(5))
        .await
        .expect_err("device is gone");
    assert!(
        matches!(
            after,
            AdbError::DeviceOffline { .. }
                | AdbError::DeviceNotFound { .. }
                | AdbError::Timeout { .. }
        ),
        "{after:?}"
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_shell_state_and_refused_push() {
    let bench = Bench::start(&["aosp-clean"]).await;
    let device = bench.device();
    assert_eq!(device.state().await.expect("state"), DeviceState::Device);
    // Legacy `shell:`: stderr merged, no exit status, so never counted as success.
    let out = device
        .shell_legacy("echo out; echo err >&2; exit 3")
        .await
        .expect("legacy");
    assert_eq!(out.exit_code, None);
    assert!(!out.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("out") && text.contains("err"), "{text:?}");
    assert!(out.stderr.is_empty());
    // A push the device refuses (the path is a directory) is an error with the device's reason, and the device stays usable.
    let err = device
        .push(b"x", "/data/local/tmp", 0o644)
        .await
        .expect_err("refused");
    assert!(matches!(err, AdbError::Failed { .. }), "{err:?}");
    assert_eq!(device.shell("true").await.unwrap().exit_code, Some(0));
    bench.finish().await;
}

/// A TCP relay between the adb server and a handset that can be frozen: it stops passing bytes but keeps
/// both sockets open, which is what a SIGSTOPped device looks like to the server (no keepalive).
struct Relay {
    addr: SocketAddr,
    frozen: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Copies `from` to `to`, holding data back while `frozen` is set.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    frozen: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::AsyncWriteExt;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Passes the device's first message (its CNXN) on with `features` removed from the banner's, so the
/// server sees an older device (no `shell_v2`: only the legacy shell; no `stat_v2`: Android 7 and
/// older, STAT v1). Header length and checksum are rewritten.
async fn strip_from_banner(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    features: &[&str],
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut header = [0u8; 24];
    from.read_exact(&mut header).await?;
    let len = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
    assert!(len <= 1 << 20, "CNXN payload of {len} bytes");
    let mut payload = vec![0u8; len];
    from.read_exact(&mut payload).await?;
    assert_eq!(&header[..4], b"CNXN");
    let banner = String::from_utf8(payload).expect("banner is text");
    let mut stripped = banner.clone();
    for feature in features {
        let before = stripped.clone();
        stripped = stripped
            .replace(&format!("{feature},"), "")
            .replace(&format!(",{feature}"), "");
        assert_ne!(stripped, before, "banner had no {feature}: {banner}");
    }
    let sum: u32 = stripped.bytes().map(u32::from).sum();
    header[12..16].copy_from_slice(&(stripped.len() as u32).to_le_bytes());
    header[16..20].copy_from_slice(&sum.to_le_bytes());
    to.write_all(&header).await?;
    to.write_all(stripped.as_bytes()).await
}

/// A virtual handset the server reaches only through a relay, registered under the relay's address; the
/// handset itself is not registered. `hide`: the features the relay hides from the banner.
async fn relayed_handset(
    server: &AdbServer,
    hide: &'static [&'static str],
) -> (RunningHandset, Relay, AdbDevice) {
    let handset = unregistered_handset("aosp-clean").await;
    let relay = relay(
        SocketAddr::from((Ipv4Addr::LOCALHOST, handset.port())),
        hide,
    )
    .await;
    let serial = relay.addr.to_string();
    register(server, &serial)
        .await
        .expect("relay registered with adb");
    (handset, relay, server.device(&serial))
}

async fn relay(target: SocketAddr, hide: &'static [&'static str]) -> Relay {
    use std::sync::atomic::AtomicBool;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind relay");
    let addr = listener.local_addr().expect("addr");
    let frozen = Arc::new(AtomicBool::new(false));
    let flag = frozen.clone();
    let task = tokio::spawn(async move {
        let mut pumps = tokio::task::JoinSet::new();
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            pumps.spawn(pump(ri, wo, flag.clone()));
            let flag = flag.clone();
            pumps.spawn(async move {
                let (mut ro, mut wi) = (ro, wi);
                if !hide.is_empty() && strip_from_banner(&mut ro, &mut wi, hide).await.is_err() {
                    return;
                }
                pump(ro, wi, flag).await
            });
        }
    });
    Relay { addr, frozen, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_device_times_out_instead_of_hanging() {
    use std::sync::atomic::Ordering;
    let adb = PrivateAdbServer::start().await.expect("private adb server");
    let (handset, relay, device) = relayed_handset(adb.server(), &[]).await;
    let device = device.with_timeout(Duration::from_secs(1));
    assert_eq!(
        device.shell("true").await.expect("before freeze").exit_code,
        Some(0)
    );

    relay.frozen.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let err = device.shell("true").await.expect_err("frozen");
    assert!(matches!(err, AdbError::Timeout { .. }), "{err:?}");
    let err = device
        .pull("/data/local/tmp", 10)
        .await
        .expect_err("frozen");
    assert!(matches!(err, AdbError::Timeout { .. }), "{err:?}");
    let err = device
        .push(&[0u8; 200_000], "/data/local/tmp/f", 0o644)
        .await
        .expect_err("frozen");
    assert!(matches!(err, AdbError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // The server still believes in it: only our own timeouts protect the run.
    assert_eq!(device.state().await.expect("state"), DeviceState::Device);

    relay.frozen.store(false, Ordering::SeqCst);
    relay.task.abort();
    handset.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_and_wait_for_the_device_to_come_back() {
    let bench = Bench::start(&["aosp-clean"]).await;
    let device = bench.device();
    device
        .push(b"kept", "/sdcard/k", 0o644)
        .await
        .expect("push");
    device.reboot("").await.expect("reboot");
    bench
        .server()
        .wait_for_device(device.serial(), Duration::from_secs(30))
        .await
        .expect("came back");
    // Right after the server sees it again the first stream can still race the reconnect: retry briefly.
    let mut back = None;
    for _ in 0..50 {
        match device.pull("/sdcard/k", 100).await {
            Ok(bytes) => {
                back = Some(bytes);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(back.as_deref(), Some(&b"kept"[..]));
    // Proof that it really rebooted: run-time properties are gone.
    let prop = device.shell("getprop debug.tattle").await.expect("getprop");
    assert_eq!((prop.stdout_text().as_str(), prop.exit_code), ("", Some(0)));
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_without_shell_v2_falls_back_to_the_legacy_shell() {
    let adb = PrivateAdbServer::start().await.expect("private adb server");
    let (handset, relay, device) = relayed_handset(adb.server(), &["shell_v2"]).await;
    let features = device.features().await.expect("features");
    assert!(!features.iter().any(|f| f == "shell_v2"), "{features:?}");
    assert!(features.iter().any(|f| f == "stat_v2"), "{features:?}");
    let out = device
        .shell("echo out; echo err >&2; false")
        .await
        .expect("shell");
    // No exit status over the legacy service: unknown, not success; stderr arrives merged.
    assert_eq!(out.exit_code, None);
    assert!(!out.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("out") && text.contains("err"), "{text:?}");
    relay.task.abort();
    handset.shutdown().await;
}

/// A key log on the phone is pulled within a bound of its own, made from its size (stat first), not
/// within adb's usual timeout; a pull cut by that bound keeps the whole lines that arrived and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_key_log_is_pulled_within_a_bound_made_from_its_size() {
    use tattle::capture::keylog::{KeylogSource, PullBound, collect, collect_within};
    let bench = Bench::start(&["aosp-clean"]).await;
    let path = "/data/local/tmp/sslkeys.log";
    let text: String = (0..24_000u32)
        .map(|i| format!("CLIENT_RANDOM {:064x} {:096x}\n", i, u64::from(i) * 7919))
        .collect();
    bench
        .device()
        .push(text.as_bytes(), path, 0o644)
        .await
        .expect("push the key log");
    let source = [KeylogSource::Device(path.into())];

    // adb's usual bound far too short for 4 MiB: the key log's own bound still fits it.
    let hurried = bench.device().with_timeout(Duration::from_millis(1));
    let dir = tempfile::tempdir().unwrap();
    let keys = collect(&source, &hurried, dir.path()).await;
    assert!(
        keys.text == text.as_bytes(),
        "{} of {} bytes; {:?}",
        keys.text.len(),
        text.len(),
        keys.notes
    );
    assert_eq!(
        keys.notes,
        [format!("key log device:{path}: {} bytes", text.len())]
    );

    // A bound of a few milliseconds cuts it: the whole lines that arrived, and a note.
    let dir = tempfile::tempdir().unwrap();
    let tight = PullBound {
        base: Duration::from_millis(3),
        per_mib: Duration::ZERO,
    };
    let keys = collect_within(&source, &bench.device(), dir.path(), tight).await;
    assert!(keys.text.len() < text.len(), "{:?}", keys.notes);
    assert!(text.as_bytes().starts_with(&keys.text));
    assert!(keys.text.is_empty() || keys.text.ends_with(b"\n"));
    assert!(
        keys.notes[0].starts_with(&format!(
            "key log device:{path}: pull cut after 0.0 s (the bound for {} bytes",
            text.len()
        )),
        "{:?}",
        keys.notes
    );
    assert!(
        !keys.notes.iter().any(|n| n.contains("not key log secrets")),
        "{:?}",
        keys.notes
    );

    // Missing files and directories are notes too, found by the stat.
    let keys = collect(
        &[
            KeylogSource::Device("/data/local/tmp/none.log".into()),
            KeylogSource::Device("/data/local/tmp".into()),
        ],
        &bench.device(),
        dir.path(),
    )
    .await;
    assert!(keys.text.is_empty());
    assert!(
        keys.notes[0].contains("not on the phone"),
        "{:?}",
        keys.notes
    );
    assert!(keys.notes[1].ends_with("not a file"), "{:?}", keys.notes);
    bench.finish().await;
}

/// PCAPdroid's key log as v1.9.1's MainActivity writes it: the Downloads entry first (empty), the
/// copy a moment later. tattle waits until two stats agree, pulls the whole of it, then deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcapdroids_key_log_is_pulled_once_whole_then_deleted() {
    use tattle::capture::keylog::{KeylogSource, collect};
    let bench = Bench::start(&["aosp-clean"]).await;
    let path = "/sdcard/Download/PCAPdroid/tattle-staged.keylog";
    let text: String = (0..40u32)
        .map(|i| format!("CLIENT_RANDOM {:064x} {:096x}\n", i, u64::from(i) * 31))
        .collect();
    let device = bench.device();
    device
        .push(b"", path, 0o660)
        .await
        .expect("the empty entry");
    let copier = {
        let device = device.clone();
        let text = text.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            device.push(text.as_bytes(), path, 0o660).await
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = collect(&[KeylogSource::Pcapdroid(path.into())], &device, dir.path()).await;
    copier.await.unwrap().expect("the copy");
    assert!(keys.text == text.as_bytes(), "{:?}", keys.notes);
    assert_eq!(device.stat(path).await.expect("stat"), None, "deleted");
    bench.finish().await;
}

/// A pull of PCAPdroid's key log cut by its bound: the complete lines are used, and the file stays on
/// the phone for the user to pull by hand, as the note says (with how to delete it after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_pull_of_pcapdroids_key_log_leaves_it_on_the_phone() {
    use tattle::capture::keylog::{KeylogSource, PullBound, collect_within};
    let bench = Bench::start(&["aosp-clean"]).await;
    let path = "/sdcard/Download/PCAPdroid/tattle-big.keylog";
    let text: String = (0..24_000u32)
        .map(|i| format!("CLIENT_RANDOM {:064x} {:096x}\n", i, u64::from(i) * 7919))
        .collect();
    let device = bench.device();
    device
        .push(text.as_bytes(), path, 0o660)
        .await
        .expect("push");
    let tight = PullBound {
        base: Duration::from_millis(3),
        per_mib: Duration::ZERO,
    };
    let dir = tempfile::tempdir().unwrap();
    let source = [KeylogSource::Pcapdroid(path.into())];
    let keys = collect_within(&source, &device, dir.path(), tight).await;
    assert!(keys.text.len() < text.len(), "{:?}", keys.notes);
    assert!(text.as_bytes().starts_with(&keys.text));
    let cut = &keys.notes[0];
    assert!(
        cut.contains("pull cut after") && cut.contains(&format!("adb pull {path}")),
        "{cut}"
    );
    assert!(cut.contains(&format!("adb shell rm {path}")), "{cut}");
    let left = device.stat(path).await.expect("stat").expect("still there");
    assert_eq!(left.size, text.len() as u64);
    bench.finish().await;
}

/// A copy that lands at the very end of the wait (too late for two agreeing stats inside it) is
/// still pulled and deleted: its secrets are not left in shared storage under a "wrote none".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcapdroids_key_log_landing_at_the_end_of_the_wait_is_still_pulled() {
    use tattle::capture::keylog::{KeylogSource, collect};
    let bench = Bench::start(&["aosp-clean"]).await;
    let path = "/sdcard/Download/PCAPdroid/tattle-late.keylog";
    let text = format!("CLIENT_RANDOM {} {}\n", "ab".repeat(32), "cd".repeat(48));
    let device = bench.device();
    let copier = {
        let device = device.clone();
        let text = text.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(4_850)).await;
            device.push(text.as_bytes(), path, 0o660).await
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let keys = collect(&[KeylogSource::Pcapdroid(path.into())], &device, dir.path()).await;
    copier.await.unwrap().expect("the copy");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "waited the window"
    );
    assert!(keys.text == text.as_bytes(), "{:?}", keys.notes);
    assert_eq!(device.stat(path).await.expect("stat"), None, "deleted");
    bench.finish().await;
}

/// `device:PATH` that is a symbolic link, on a device without `stat_v2` (Android 7 and older): adbd's
/// STAT v1 answers with lstat, so the stat sees a link, not a file. The key log is pulled anyway (the
/// pull follows the link), within the bound for the largest key log; a directory is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_log_behind_a_symlink_is_pulled_from_a_device_without_stat_v2() {
    use tattle::capture::keylog::{KeylogSource, collect};
    let adb = PrivateAdbServer::start().await.expect("private adb server");
    let (handset, relay, device) = relayed_handset(adb.server(), &["stat_v2"]).await;
    assert!(
        !device.has_feature("stat_v2").await.expect("features"),
        "STAT v1 only"
    );
    let text = format!("CLIENT_RANDOM {} {}\n", "ab".repeat(32), "cd".repeat(48));
    let (target, link) = ("/data/local/tmp/app/keys.log", "/data/local/tmp/keys.log");
    device
        .push(text.as_bytes(), target, 0o644)
        .await
        .expect("push");
    handset
        .handset()
        .state()
        .fs
        .symlink(target, link)
        .expect("ln -s");
    let st = device.stat(link).await.expect("stat").expect("the link");
    assert!(!st.is_file() && !st.is_dir(), "lstat sees the link: {st:?}");

    let dir = tempfile::tempdir().unwrap();
    let keys = collect(
        &[
            KeylogSource::Device(link.into()),
            KeylogSource::Device("/data/local/tmp".into()),
        ],
        &device,
        dir.path(),
    )
    .await;
    assert!(keys.text == text.as_bytes(), "{:?}", keys.notes);
    assert_eq!(
        keys.notes[0],
        format!("key log device:{link}: {} bytes", text.len())
    );
    assert!(keys.notes[1].ends_with("not a file"), "{:?}", keys.notes);
    relay.task.abort();
    handset.shutdown().await;
}
