//! The `pcapdroid` capture source end to end: tattle's client (`tattle::pcapdroid`) against the
//! virtual handset's PCAPdroid, through Debian's adb server and `adb reverse`, as a normal user.
//! Windows on the phone are answered the way a person or a script would: `adb shell input tap` on
//! what `adb shell uiautomator dump` shows.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tattle::adb::{AdbDevice, AdbError};
use tattle::pcapdroid::{ApiKey, End, Options, PcapdroidCapture, PcapdroidError, Prompt, Summary};
use tattle::vhandset::{HandsetEvent, Profile};
use tattle::virtual_device::VirtualDevice;
use tattle_analysis::testgen::tshark::Names;

use crate::support::Bench;

const VENDOR: &str = "vendor-14-locked";
const PKG: &str = "com.emanuelef.remote_capture";

/// vendor-14-locked with its profile text changed by `edit` (another PCAPdroid setup).
fn vendor_with(edit: impl Fn(&str) -> String) -> Arc<Profile> {
    let text = include_str!("../../profiles/vendor-14-locked.yaml");
    Arc::new(Profile::from_yaml(&edit(text), "test").expect("edited profile"))
}

async fn bench_with(profile: Arc<Profile>) -> Bench {
    let adb = tattle::adb::PrivateAdbServer::start()
        .await
        .expect("private adb server");
    let handset = VirtualDevice::start(profile, adb.server())
        .await
        .expect("virtual handset");
    Bench {
        adb,
        handsets: vec![handset],
    }
}

fn api_key() -> ApiKey {
    let p = Profile::builtin(VENDOR).unwrap();
    let setup = p.persona.pcapdroid.expect("vendor-14-locked has PCAPdroid");
    ApiKey::new(setup.api_key.expect("an API key")).unwrap()
}

/// Debian's `adb` against the bench's server.
async fn adb(bench: &Bench, args: &[&str]) -> (String, String) {
    let port = bench.server().port().to_string();
    let serial = bench.handset().serial();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("adb")
            .args(["-P", &port, "-s", &serial])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("adb in time")
    .expect("adb runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `appops set … ACTIVATE_VPN allow`: the VPN pre-consent, so a test is about something else.
async fn pre_consent_vpn(bench: &Bench) {
    let out = bench
        .device()
        .shell(&format!("appops set {PKG} ACTIVATE_VPN allow"))
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
}

/// The centre of the node with `id` on the screen, once it is enabled, read with `uiautomator dump`.
async fn wait_enabled(bench: &Bench, id: &str) -> (i32, i32) {
    for _ in 0..100 {
        let (xml, _) = adb(bench, &["shell", "uiautomator dump /dev/tty"]).await;
        if let Some(at) = xml.find(&format!("resource-id=\"{id}\"")) {
            let node = &xml[xml[..at].rfind("<node").unwrap()..];
            let node = &node[..node.find('>').unwrap()];
            if node.contains("enabled=\"true\"") {
                let b = &node[node.find("bounds=\"[").unwrap() + 9..];
                let b = &b[..b.find("]\"").unwrap()];
                let n: Vec<i32> = b
                    .split([',', ']', '['])
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect();
                return ((n[0] + n[2]) / 2, (n[1] + n[3]) / 2);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{id} never enabled on the screen");
}

async fn tap(bench: &Bench, (x, y): (i32, i32)) {
    adb(bench, &["shell", &format!("input tap {x} {y}")]).await;
}

/// Plays firmware events on the handset (their traffic is what PCAPdroid sees).
async fn play(bench: &Bench, events: &[HandsetEvent]) {
    for e in events {
        let report = bench.handset().network().play(e).await;
        assert_eq!(report.failed, 0, "{report:?}");
    }
}

fn sms() -> HandsetEvent {
    HandsetEvent::SmsSent {
        to: "+31600000001".into(),
        body: "pcapdroid canary".into(),
    }
}

fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn options(key: Option<ApiKey>) -> Options {
    Options {
        api_key: key,
        connect_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

/// PCAPdroid started into `file` with the persona's API key and no tee.
async fn start_with_key(bench: &Bench, file: &Path) -> Result<PcapdroidCapture, PcapdroidError> {
    PcapdroidCapture::start(&bench.device(), file, options(Some(api_key())), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adb_reverse_through_tattles_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bench = Bench::start(&[VENDOR]).await;
    let device: AdbDevice = bench.device();
    let host = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = format!("tcp:{}", host.local_addr().unwrap().port());
    assert_eq!(
        device.reverse_forward("tcp:5123", &remote).await.unwrap(),
        None
    );
    // tcp:0: the phone picks a port and says which.
    let any = device
        .reverse_forward("tcp:0", &remote)
        .await
        .unwrap()
        .expect("the chosen port");
    let list = device.reverse_list().await.unwrap();
    assert!(
        list.contains(&("tcp:5123".to_string(), remote.clone())),
        "{list:?}"
    );
    assert!(
        list.contains(&(format!("tcp:{any}"), remote.clone())),
        "{list:?}"
    );
    // Debian's client sees the same forwards.
    let (text, _) = adb(&bench, &["reverse", "--list"]).await;
    assert!(text.contains(&format!("tcp:5123 {remote}")), "{text}");

    // An app on the phone connecting to its tcp:5123 reaches the host.
    let mut app = bench
        .handset()
        .handset()
        .reverses()
        .connect_tcp(5123)
        .await
        .unwrap();
    let (mut peer, _) = tokio::time::timeout(Duration::from_secs(10), host.accept())
        .await
        .unwrap()
        .unwrap();
    app.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");

    device.reverse_remove("tcp:5123").await.unwrap();
    // The device's "not found" is about the listener, not the device.
    match device.reverse_remove("tcp:5123").await {
        Err(AdbError::Failed { message }) => {
            assert!(
                message.contains("listener 'tcp:5123' not found"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        device
            .reverse_forward("tcp:1;x", "tcp:2")
            .await
            .is_err_and(|e| matches!(e, AdbError::InvalidRequest { .. }))
    );
    device.reverse_remove(&format!("tcp:{any}")).await.unwrap();
    assert!(device.reverse_list().await.unwrap().is_empty());
    bench.finish().await;
}

/// Every IPv4 address in the capture, and every TCP port.
fn addresses_and_ports(file: &Path) -> (Vec<String>, Vec<String>) {
    let mut addrs = Vec::new();
    let mut ports = Vec::new();
    for line in tshark_fields(file, &["ip.src", "ip.dst", "tcp.srcport", "tcp.dstport"]) {
        let f: Vec<&str> = line.split('\t').collect();
        addrs.extend(
            f[..2]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string()),
        );
        ports.extend(
            f[2..]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string()),
        );
    }
    (addrs, ports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_with_an_api_key_is_a_raw_pcap_of_the_handsets_traffic() {
    let t0 = std::time::Instant::now();
    let bench = Bench::start(&[VENDOR]).await;
    pre_consent_vpn(&bench).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.pcap");
    let (tee, mut teed) = tokio::sync::mpsc::unbounded_channel();
    let mut capture =
        PcapdroidCapture::start(&bench.device(), &path, options(Some(api_key())), Some(tee))
            .await
            .expect("PCAPdroid capture starts");
    assert_eq!(capture.version().code, 91);
    assert_eq!(capture.version().name, "1.9.1");
    play(&bench, &[HandsetEvent::SetupComplete, sms()]).await;
    assert_eq!(
        capture
            .wait_for_data(Duration::from_secs(10))
            .await
            .unwrap(),
        Some(101),
        "LINKTYPE_RAW"
    );
    let port = capture.port();
    let summary: Summary = capture.stop().await.expect("a clean stop");
    assert_eq!(summary.end, End::Stopped);
    assert_eq!(summary.linktype, Some(101));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(summary.bytes, bytes.len() as u64);
    assert!(summary.packets > 10, "{summary:?}");
    // The tee had the same bytes, in order.
    let mut tee_bytes = Vec::new();
    while let Ok(chunk) = teed.try_recv() {
        tee_bytes.extend(chunk);
    }
    assert!(tee_bytes == bytes, "tee and file differ");
    assert_eq!(
        &bytes[..24],
        &[
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 101, 0, 0, 0
        ],
        "PCAPdroid's header: snaplen 32768, LINKTYPE_RAW"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // tshark reads it, with the handset's hosts.
    let names = Names::from_tshark(&path).expect("tshark");
    for host in [
        "connectivitycheck.gstatic.com",
        "www.google.com",
        "sync.nimbus-cloud.net",
    ] {
        assert!(names.dns.contains(host), "{host}: {names:?}");
    }
    assert!(names.http.contains("sync.nimbus-cloud.net"), "{names:?}");
    assert!(names.sni.contains("www.google.com"), "{names:?}");
    // Only the handset's own packets: its /24, never the exporter's connection.
    let subnet = format!(
        "{}.",
        bench
            .handset()
            .network()
            .subnet()
            .rsplit_once('.')
            .unwrap()
            .0
    );
    let (addrs, ports) = addresses_and_ports(&path);
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.starts_with(&subnet)), "{addrs:?}");
    assert!(
        !ports.contains(&port.to_string()),
        "the exporter's own connection"
    );
    // The leak is in there, and tattle's analysis reads the capture as tshark does.
    let imei = &Profile::builtin(VENDOR).unwrap().identifiers["imei"];
    assert!(bytes.windows(imei.len()).any(|w| w == imei.as_bytes()));
    let analysis = tattle_analysis::analyze_file(&path, &[]).unwrap();
    assert_eq!(Names::from_analysis(&analysis).named(), names.named());
    // No reverse forward left behind.
    assert!(bench.device().reverse_list().await.unwrap().is_empty());
    eprintln!("capture with an API key: {:?}", t0.elapsed());
    bench.finish().await;
}

/// One pcap record's frame at a time: (incl_len, orig_len, frame).
fn records(pcap: &[u8]) -> Vec<(u32, u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap());
        let orig = u32::from_le_bytes(pcap[at + 12..at + 16].try_into().unwrap());
        let end = at + 16 + incl as usize;
        out.push((incl, orig, &pcap[at + 16..end]));
        at = end;
    }
    assert_eq!(at, pcap.len(), "records end with the file");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_extensions_and_app_filter_carry_the_trailer() {
    let bench = Bench::start(&[VENDOR]).await;
    pre_consent_vpn(&bench).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messaging.pcap");
    let mut opts = options(Some(api_key()));
    opts.dump_extensions = true;
    opts.app_filter = vec!["com.android.messaging".into()];
    let mut capture = PcapdroidCapture::start(&bench.device(), &path, opts, None)
        .await
        .unwrap();
    play(&bench, &[HandsetEvent::SetupComplete, sms()]).await;
    assert_eq!(
        capture
            .wait_for_data(Duration::from_secs(10))
            .await
            .unwrap(),
        Some(1)
    );
    let summary = capture.stop().await.unwrap();
    assert_eq!(summary.linktype, Some(1), "Ethernet with the trailer");
    let pcap = std::fs::read(&path).unwrap();
    let recs = records(&pcap);
    assert_eq!(recs.len() as u64, summary.packets);
    for (incl, orig, frame) in &recs {
        assert_eq!(incl, orig);
        assert_eq!(
            &frame[..14],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]
        );
        let ip_len = u16::from_be_bytes([frame[16], frame[17]]) as usize;
        let trailer_at = frame.len() - 32;
        assert_eq!(trailer_at % 4, 0, "the trailer starts 4-byte aligned");
        assert!(trailer_at - (14 + ip_len) < 4, "0-3 bytes of padding");
        let t = &frame[trailer_at..];
        assert_eq!(&t[..4], &[0x01, 0x07, 0x20, 0x21], "magic");
        assert_eq!(
            i32::from_be_bytes(t[4..8].try_into().unwrap()),
            10067,
            "messaging's uid"
        );
        assert_eq!(&t[8..28], b"Messaging\0\0\0\0\0\0\0\0\0\0\0");
        let mut crc = flate2::Crc::new();
        crc.update(&frame[..frame.len() - 4]);
        assert_eq!(u32::from_le_bytes(t[28..32].try_into().unwrap()), crc.sum());
    }
    // Only the messaging app's traffic: its sync host, none of the setup's.
    let names = Names::from_tshark(&path).expect("tshark reads the Ethernet capture");
    assert!(names.dns.contains("sync.nimbus-cloud.net"), "{names:?}");
    assert!(
        !names.dns.contains("connectivitycheck.gstatic.com"),
        "{names:?}"
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_stops_the_first_and_a_force_stop_is_reported() {
    let bench = Bench::start(&[VENDOR]).await;
    pre_consent_vpn(&bench).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = start_with_key(&bench, &dir.path().join("a.pcap"))
        .await
        .unwrap();
    play(&bench, &[HandsetEvent::SetupComplete]).await;
    first.wait_for_data(Duration::from_secs(10)).await.unwrap();
    let second = start_with_key(&bench, &dir.path().join("b.pcap"))
        .await
        .unwrap();
    for _ in 0..50 {
        if first.has_ended() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match first.stop().await {
        Err(PcapdroidError::StoppedOnPhone(s)) => {
            assert!(s.bytes > 24 && s.packets > 0, "kept: {s:?}");
            assert_eq!(s.end, End::StoppedOnPhone);
        }
        other => panic!("{other:?}"),
    }
    // Stopped on the phone (a killed process: the buffered records are lost, the stream ends).
    play(&bench, &[sms()]).await;
    adb(&bench, &["shell", &format!("am force-stop {PKG}")]).await;
    // The runner notices mid-run (has_ended), then stops.
    for _ in 0..50 {
        if second.has_ended() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = second.stop().await.unwrap_err();
    assert!(matches!(err, PcapdroidError::StoppedOnPhone(_)), "{err:?}");
    assert!(
        err.to_string().contains("PCAPdroid stopped on the phone"),
        "{err}"
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_api_key_the_consent_window_is_a_clear_error_or_a_tap_on_allow() {
    let bench = Bench::start(&[VENDOR]).await;
    pre_consent_vpn(&bench).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pcap");
    let err = PcapdroidCapture::start(&bench.device(), &path, options(None), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PcapdroidError::ConsentRequired), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("PCAPdroid control request")
            && text.contains("Settings → Control permissions → ⋮ → Generate API key")
            && text.contains("tap Allow"),
        "{text}"
    );
    assert!(!path.exists(), "no empty capture left behind");
    // tattle withdrew its request: nothing of PCAPdroid's is left on the screen.
    let (xml, _) = adb(&bench, &["shell", "uiautomator dump /dev/tty"]).await;
    assert!(!xml.contains(PKG), "{xml}");

    // Waiting for the user, who taps Allow (for the start, and again for the stop).
    let (prompts, mut asked) = tokio::sync::mpsc::unbounded_channel();
    let mut opts = options(None);
    opts.wait_for_user = Some(Duration::from_secs(30));
    opts.prompts = Some(prompts);
    let allow = format!("{PKG}:id/allow_btn");
    let user = async {
        for _ in 0..2 {
            assert_eq!(asked.recv().await, Some(Prompt::Consent));
            let at = wait_enabled(&bench, &allow).await;
            tap(&bench, at).await;
        }
    };
    let run = async {
        let capture = PcapdroidCapture::start(&bench.device(), &path, opts, None)
            .await
            .expect("starts once Allow is tapped");
        play(&bench, &[HandsetEvent::SetupComplete]).await;
        capture.stop().await
    };
    let (summary, ()) = tokio::join!(run, user);
    let summary = summary.expect("stops once Allow is tapped again");
    assert_eq!(summary.end, End::Stopped);
    assert!(summary.packets > 0, "{summary:?}");
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_capture_asks_for_the_vpn_once() {
    let bench = Bench::start(&[VENDOR]).await;
    let dir = tempfile::tempdir().unwrap();
    let err = start_with_key(&bench, &dir.path().join("1.pcap"))
        .await
        .unwrap_err();
    assert!(matches!(err, PcapdroidError::VpnConsentRequired), "{err:?}");
    assert!(
        err.to_string().contains("tap OK on PCAPdroid's notice"),
        "{err}"
    );
    // The user accepts, on the phone: PCAPdroid's notice, then Android's dialog.
    let (xml, _) = adb(&bench, &["shell", "uiautomator dump /dev/tty"]).await;
    assert!(xml.contains("PCAPdroid simulates a VPN"), "{xml}");
    let ok = wait_enabled(&bench, "android:id/button1").await;
    tap(&bench, ok).await;
    let (xml, _) = adb(&bench, &["shell", "uiautomator dump /dev/tty"]).await;
    assert!(xml.contains("text=\"Connection request\""), "{xml}");
    tap(&bench, wait_enabled(&bench, "android:id/button1").await).await;
    // From now on no dialog: the capture starts.
    let capture = start_with_key(&bench, &dir.path().join("2.pcap"))
        .await
        .expect("starts without the VPN dialogs");
    play(&bench, &[HandsetEvent::SetupComplete]).await;
    assert!(capture.stop().await.unwrap().packets > 0);
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reverse_forward_pcapdroid_stops_and_the_host_sees_nothing() {
    let bench = Bench::start(&[VENDOR]).await;
    pre_consent_vpn(&bench).await;
    let host = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = host.local_addr().unwrap().port();
    let key = Profile::builtin(VENDOR)
        .unwrap()
        .persona
        .pcapdroid
        .unwrap()
        .api_key
        .unwrap();
    let (out, err) = adb(
        &bench,
        &[
            "shell",
            &format!("am start -n {PKG}/.activities.CaptureCtrl -e action start -e api_key {key} -e pcap_dump_mode tcp_exporter -e collector_ip_address 127.0.0.1 -e collector_port {port}"),
        ],
    )
    .await;
    assert_eq!(
        out,
        format!("Starting: Intent {{ cmp={PKG}/.activities.CaptureCtrl (has extras) }}\n")
    );
    assert!(err.is_empty(), "{err}");
    let handset = bench.handset().handset().clone();
    for _ in 0..50 {
        if !tattle::vhandset::apps::pcapdroid::is_running(&handset) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !tattle::vhandset::apps::pcapdroid::is_running(&handset),
        "stopped at once"
    );
    let toasts: Vec<String> = handset.state().pcapdroid.toasts.iter().cloned().collect();
    assert!(
        toasts.iter().any(|t| t.contains("ECONNREFUSED")),
        "the connect failure is reported: {toasts:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), host.accept())
            .await
            .is_err(),
        "nothing reached the host"
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_and_old_pcapdroid_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bench = Bench::start(&["aosp-12"]).await;
    let err = start_with_key(&bench, &dir.path().join("a.pcap"))
        .await
        .unwrap_err();
    assert!(matches!(err, PcapdroidError::NotInstalled), "{err:?}");
    assert!(
        err.to_string().contains("install PCAPdroid 1.8.6 or later"),
        "{err}"
    );
    assert!(bench.device().reverse_list().await.unwrap().is_empty());
    bench.finish().await;

    let old = vendor_with(|t| {
        t.replace("version_name: \"1.9.1\"", "version_name: \"1.8.5\"")
            .replace("version_code: 91", "version_code: 85")
    });
    let bench = bench_with(old).await;
    let err = start_with_key(&bench, &dir.path().join("b.pcap"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, PcapdroidError::TooOld(ref v) if v.code == 85)
            && text.contains("PCAPdroid 1.8.5 (versionCode 85) is too old")
            && text.contains("update PCAPdroid"),
        "{text}"
    );
    assert!(!text.contains(&api_key_text()), "the key never shows");
    bench.finish().await;
}

fn api_key_text() -> String {
    Profile::builtin(VENDOR)
        .unwrap()
        .persona
        .pcapdroid
        .unwrap()
        .api_key
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handset_killed_mid_capture_keeps_the_bytes_so_far() {
    let mut bench = Bench::start(&[VENDOR]).await;
    pre_consent_vpn(&bench).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pcap");
    let mut capture =
        PcapdroidCapture::start(&bench.device(), &path, options(Some(api_key())), None)
            .await
            .unwrap();
    play(&bench, &[HandsetEvent::SetupComplete, sms()]).await;
    capture
        .wait_for_data(Duration::from_secs(10))
        .await
        .unwrap();
    // Let the last buffer out (PCAPdroid exports at most a second after the previous export).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = capture
        .counters()
        .bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    // The handset dies; the adb server still lists it (offline).
    let handset = bench.handsets.pop().unwrap().into_handset();
    handset.shutdown().await;
    for _ in 0..50 {
        if capture.has_ended() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match capture.stop().await {
        Err(PcapdroidError::DeviceGone(s)) => {
            assert_eq!(s.end, End::DeviceGone);
            assert!(s.bytes >= before && s.bytes > 24, "{s:?}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), s.bytes);
            let names = Names::from_tshark(&path).expect("what was kept is a capture");
            assert!(names.dns.contains("sync.nimbus-cloud.net"), "{names:?}");
        }
        other => panic!("{other:?}"),
    }
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_nobody_allows_is_closed_by_tattle() {
    let bench = Bench::start(&[VENDOR]).await;
    pre_consent_vpn(&bench).await;
    let dir = tempfile::tempdir().unwrap();
    let (prompts, mut asked) = tokio::sync::mpsc::unbounded_channel();
    let mut opts = options(None);
    opts.wait_for_user = Some(Duration::from_secs(2));
    opts.stop_timeout = Duration::from_secs(2);
    opts.prompts = Some(prompts);
    let allow = format!("{PKG}:id/allow_btn");
    let user = async {
        // Allows the start, then ignores the stop's window.
        assert_eq!(asked.recv().await, Some(Prompt::Consent));
        tap(&bench, wait_enabled(&bench, &allow).await).await;
        assert_eq!(asked.recv().await, Some(Prompt::Consent));
    };
    let run = async {
        let capture =
            PcapdroidCapture::start(&bench.device(), &dir.path().join("s.pcap"), opts, None)
                .await
                .unwrap();
        play(&bench, &[HandsetEvent::SetupComplete]).await;
        capture.stop().await
    };
    let (summary, ()) = tokio::join!(run, user);
    let summary = summary.expect("the capture so far is kept");
    assert_eq!(summary.end, End::ClosedByTattle);
    assert!(summary.packets > 0, "{summary:?}");
    // The stop's window was withdrawn, and PCAPdroid ends at its next write into the closed stream.
    let (xml, _) = adb(&bench, &["shell", "uiautomator dump /dev/tty"]).await;
    assert!(!xml.contains(PKG), "{xml}");
    let handset = bench.handset().handset().clone();
    for _ in 0..50 {
        play(&bench, &[HandsetEvent::SetupComplete]).await;
        if !tattle::vhandset::apps::pcapdroid::is_running(&handset) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!tattle::vhandset::apps::pcapdroid::is_running(&handset));
    bench.finish().await;
}

/// A handset without a private network namespace (`TATTLE_VHANDSET_NET=host`) cannot give PCAPdroid
/// its VPN. Runs in a network namespace of its own, as a normal user, where the host stack may bind
/// the handset's low ports: see [`support::OWN_NETWORK`].
#[test]
fn without_a_private_network_the_vpn_cannot_be_established() {
    let mut wrapper = crate::support::OWN_NETWORK.to_vec();
    wrapper.extend(["env", "TATTLE_VHANDSET_NET=host"]);
    crate::support::rerun_unprivileged(
        "pcapdroid::without_a_private_network_the_vpn_cannot_be_established_inside",
        &wrapper,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by without_a_private_network_the_vpn_cannot_be_established in a namespace of its own"]
async fn without_a_private_network_the_vpn_cannot_be_established_inside() {
    use tattle::vhandset::apps::pcapdroid::{self as app, CAPTURE_CTRL, Launch};
    use tattle::vhandset::apps::{Bundle, Extra};
    if !crate::support::in_unprivileged_child() {
        return;
    }
    crate::support::loopback_up();
    let running = crate::support::unregistered_handset(VENDOR).await;
    assert!(
        running.network().private_netns().is_none(),
        "the host's stack, as asked"
    );
    let handset = running.handset().clone();
    handset.state().pcapdroid.vpn_consented = true;
    let extras = Bundle(
        [
            ("action", "start".to_string()),
            ("api_key", api_key_text()),
            ("pcap_dump_mode", "tcp_exporter".into()),
            ("collector_port", "5123".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Extra::Str(v)))
        .collect(),
    );
    let launch = app::start_activity(&handset, PKG, CAPTURE_CTRL, &extras);
    assert!(matches!(launch, Some(Launch::Started { .. })), "{launch:?}");
    for _ in 0..50 {
        if handset.state().pcapdroid.toasts.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let toasts: Vec<String> = handset.state().pcapdroid.toasts.iter().cloned().collect();
    assert_eq!(toasts, [app::TOAST_ALLOWED, app::VPN_SETUP_FAILED]);
    assert!(!app::is_running(&handset));
    running.shutdown().await;
}

/// `tattle run --capture pcapdroid` end to end on the stock, unrooted vendor 14 persona: the first
/// run stops before its first step at the VPN consent PCAPdroid needs once (exit 2, what to tap);
/// once consented, the run captures through PCAPdroid, with the API key from the environment, and
/// finds the SMS leak in its step; the key never reaches the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tattle_run_captures_through_pcapdroid() {
    let bench = crate::support::Bench::start(&[VENDOR]).await;
    let serial = bench.handset().serial();
    let port = bench.server().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let key = Profile::builtin(VENDOR)
        .unwrap()
        .persona
        .pcapdroid
        .and_then(|p| p.api_key)
        .expect("vendor-14-locked's PCAPdroid has an API key");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
            .args([
                "run",
                "send-sms",
                "--device",
                &serial,
                "--capture",
                "pcapdroid",
            ])
            .args(["--format", "json", "--runs"])
            .arg(dir.path().join("runs"))
            .arg("--snapshots")
            .arg(dir.path().join("snapshots"))
            .args(extra)
            .env("ANDROID_ADB_SERVER_PORT", &port)
            .env("TATTLE_PCAPDROID_API_KEY", &key)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.to_ascii_lowercase().contains("vpn"), "{err}");

    pre_consent_vpn(&bench).await;
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings, no snapshot\n{stdout}{err}"
    );
    let (doc, _) = crate::support::json_document(&stdout);
    assert_eq!(doc["capture_source"]["source"], "pcapdroid");
    assert_eq!(doc["capture"]["file"], "capture.pcap");
    let outcome = doc["outcome"].to_string();
    assert!(
        outcome.contains("<imei>"),
        "the SMS leak, seen through PCAPdroid: {outcome}"
    );
    for text in [&stdout, &err] {
        assert!(!text.contains(&key), "the API key is never shown");
    }
    // The reverse forward is gone after the run.
    let (list, _) = adb(&bench, &["reverse", "--list"]).await;
    assert!(list.trim().is_empty(), "{list}");
    bench.finish().await;
}

/// `tattle run` with `--capture pcapdroid` and a capture option, on `bench`'s handset; the run
/// directories go under `dir`.
fn run_through_pcapdroid(
    bench: &Bench,
    dir: &Path,
    scenario: &str,
    extra: &[&str],
) -> std::process::Output {
    let key = api_key_text();
    std::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(["run", scenario, "--device", &bench.handset().serial()])
        .args(["--format", "json", "--runs"])
        .arg(dir.join("runs"))
        .arg("--snapshots")
        .arg(dir.join("snapshots"))
        .args(extra)
        .env("ANDROID_ADB_SERVER_PORT", bench.server().port().to_string())
        .env("TATTLE_PCAPDROID_API_KEY", key)
        .output()
        .unwrap()
}

/// The run directory a `--format json` run printed.
fn run_dir_of(stdout: &str) -> std::path::PathBuf {
    let (doc, _) = crate::support::json_document(stdout);
    std::path::PathBuf::from(doc["run_dir"].as_str().expect("run_dir in the JSON"))
}

/// PCAPdroid's TLS decryption end to end: the same add-contact run on the vendor 14 persona, once
/// with `--capture pcapdroid` (the contact backup is opaque HTTPS) and once with `pcapdroid:tls`:
/// PCAPdroid's mitm add-on (virtual) logs the secrets, its main screen copies them to
/// Download/PCAPdroid/ on the stop, tattle pulls and removes that file, and the contact is found
/// inside TLS 1.3. tshark decrypts the kept capture with the run's `tls-keys.log`: the POST is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tattle_run_decrypts_tls_through_pcapdroids_mitm_addon() {
    let bench = Bench::start(&[VENDOR]).await;
    pre_consent_vpn(&bench).await;
    let dir = tempfile::tempdir().unwrap();

    let plain = tokio::task::block_in_place(|| {
        run_through_pcapdroid(
            &bench,
            dir.path(),
            "add-contact",
            &["--capture", "pcapdroid"],
        )
    });
    let plain_out = String::from_utf8_lossy(&plain.stdout).into_owned();
    assert!(
        matches!(plain.status.code(), Some(0 | 1)),
        "{plain_out}{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let (doc, _) = crate::support::json_document(&plain_out);
    let outcome = doc["outcome"].to_string();
    assert!(
        !outcome.contains("<contact_name>"),
        "without decryption the contact backup is opaque: {outcome}"
    );
    assert!(!run_dir_of(&plain_out).join("tls-keys.log").exists());

    let keyed = tokio::task::block_in_place(|| {
        run_through_pcapdroid(
            &bench,
            dir.path(),
            "add-contact",
            &["--capture", "pcapdroid:tls"],
        )
    });
    let out = String::from_utf8_lossy(&keyed.stdout).into_owned();
    let err = String::from_utf8_lossy(&keyed.stderr).into_owned();
    assert_eq!(keyed.status.code(), Some(1), "a finding\n{out}{err}");
    let (doc, _) = crate::support::json_document(&out);
    let outcome = doc["outcome"].to_string();
    assert!(
        outcome.contains("<contact_name>") && outcome.contains("contacts.nimbus-cloud.net"),
        "the contact inside TLS: {outcome}"
    );
    assert!(outcome.contains("TLS 1.3"), "{outcome}");
    assert!(
        doc["capture_source"]["detail"]
            .as_str()
            .unwrap()
            .contains("mitm add-on"),
        "{}",
        doc["capture_source"]
    );
    assert!(!out.contains(&api_key_text()) && !err.contains(&api_key_text()));
    let run = run_dir_of(&out);
    let record = std::fs::read_to_string(run.join("run.json")).unwrap();
    assert!(
        record.contains("key log PCAPdroid's (device:/sdcard/Download/PCAPdroid/tattle-")
            && record.contains("TLS flows: 2 decrypted"),
        "the run's notes say where the keys came from and what they gave: {record}"
    );

    // The pulled keys decrypt the kept capture in tshark: the contact backup's POST.
    let keys = run.join("tls-keys.log");
    assert!(keys.is_file(), "tls-keys.log kept");
    let args: Vec<std::ffi::OsString> = vec![
        "-r".into(),
        run.join("capture.pcap").into(),
        "-o".into(),
        format!("tls.keylog_file:{}", keys.display()).into(),
        "-Y".into(),
        "http.request".into(),
        "-T".into(),
        "fields".into(),
        "-e".into(),
        "http.request.method".into(),
        "-e".into(),
        "http.host".into(),
    ];
    let rows = crate::support::tshark_rows(&args);
    assert!(
        rows.iter()
            .any(|r| r[0] == "POST" && r[1] == "contacts.nimbus-cloud.net"),
        "{rows:?}"
    );
    // The key log does not stay on the phone.
    let (list, _) = adb(&bench, &["shell", "ls /sdcard/Download/PCAPdroid/"]).await;
    assert!(!list.contains(".keylog"), "{list}");
    bench.finish().await;
}

/// Without the mitm add-on, PCAPdroid cannot decrypt: the virtual PCAPdroid does what v1.9.1 does
/// (toast `mitm_start_failed`, no capture), and tattle says what to install before any step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_decryption_without_the_mitm_addon_is_a_clear_error() {
    use tattle::vhandset::apps::pcapdroid::{self as app, mitm};
    let profile = vendor_with(|t| {
        t.replace(
            "    mitm_addon:\n      version_name: \"1.4\"\n      version_code: 21\n",
            "",
        )
    });
    assert!(
        profile
            .persona
            .pcapdroid
            .as_ref()
            .unwrap()
            .mitm_addon
            .is_none()
    );
    let bench = bench_with(profile).await;
    pre_consent_vpn(&bench).await;
    let handset = bench.handset().handset().clone();

    // PCAPdroid itself, asked over adb.
    let (out, _) = adb(
        &bench,
        &[
            "shell",
            &format!(
                "am start -n {PKG}/.activities.CaptureCtrl -e action start -e api_key {} \
                 -e pcap_dump_mode tcp_exporter -e collector_port 5123 -e tls_decryption true",
                api_key_text()
            ),
        ],
    )
    .await;
    assert!(out.contains("Starting: Intent"), "{out}");
    for _ in 0..50 {
        if handset
            .state()
            .pcapdroid
            .toasts
            .iter()
            .any(|t| t == mitm::MITM_START_FAILED)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let toasts: Vec<String> = handset.state().pcapdroid.toasts.iter().cloned().collect();
    assert_eq!(toasts, [app::TOAST_ALLOWED, mitm::MITM_START_FAILED]);
    assert!(!app::is_running(&handset));

    // tattle, before the first step.
    let dir = tempfile::tempdir().unwrap();
    let run = tokio::task::block_in_place(|| {
        run_through_pcapdroid(
            &bench,
            dir.path(),
            "add-contact",
            &["--capture", "pcapdroid", "--pcapdroid-tls"],
        )
    });
    let err = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mitm add-on (com.pcapdroid.mitm), which is not installed"),
        "{err}"
    );
    assert!(
        err.contains("PCAPdroid-mitm/releases"),
        "what to install: {err}"
    );
    assert!(!app::is_running(&handset), "no capture was started");
    bench.finish().await;
}

/// Root mode with TLS decryption is refused before any device is asked, with PCAPdroid's reason;
/// the same from the scenario file names its line.
#[test]
fn tls_decryption_in_root_mode_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--capture", "pcapdroid:root,tls"][..],
        &["--capture", "pcapdroid:root", "--pcapdroid-tls"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
            .args(["run", "add-contact", "--runs"])
            .arg(dir.path())
            .args(args)
            // No adb server there: the refusal comes first.
            .env("ANDROID_ADB_SERVER_PORT", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("root mode") && err.contains("#531"), "{err}");
        assert!(
            err.contains("help: decrypt in PCAPdroid's VPN mode"),
            "{err}"
        );
    }
    let scenario = dir.path().join("root-tls.yaml");
    std::fs::write(
        &scenario,
        "name: root-tls\ncapture: pcapdroid:tls,root\nsteps:\n  - idle: 1s\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("run")
        .arg(&scenario)
        .env("ANDROID_ADB_SERVER_PORT", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("root-tls.yaml:2:"), "the line: {err}");
    assert!(err.contains("#531"), "{err}");
}
