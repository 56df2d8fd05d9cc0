//! The capture sources (`--capture`, `capture:`): a capture written by something else into a file
//! or piped in on stdin, aligned to the steps by host time; `--tcpdump-binary` pushed and run, or
//! refused for another ABI; the choice's errors, as the CLI and the scenario report them.
//!
//! The captures the `file:` tests feed are written here during the run with the analysis crate's
//! writers (DNS queries for names unique to each moment), the way an access point's tcpdump would.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tattle::capture::CaptureSource;
use tattle::device::Device;
use tattle::runner::{self, RunError, RunObserver, RunOptions};
use tattle::scenario::Scenario;
use tattle_analysis::pcap::{PcapWriter, linktype};
use tattle_analysis::testgen::frame::{self, L4};

use crate::support::{Bench, json_document};

/// An Ethernet frame with a DNS query (A, IN) for `name` from the phone to its resolver.
fn dns_query(name: &str, id: u16) -> Vec<u8> {
    let mut dns = id.to_be_bytes().to_vec();
    dns.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        dns.push(label.len() as u8);
        dns.extend(label.as_bytes());
    }
    dns.extend([0, 0, 1, 0, 1]);
    let mut out = Vec::new();
    frame::ethernet(
        &mut out,
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 15)), 40_000 + id),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 53),
        L4::Udp,
        &dns,
    );
    out
}

/// One pcap record (microseconds, little-endian, as `PcapWriter` writes them).
fn record(ts_us: u64, frame: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(16 + frame.len());
    r.extend(((ts_us / 1_000_000) as u32).to_le_bytes());
    r.extend(((ts_us % 1_000_000) as u32).to_le_bytes());
    r.extend((frame.len() as u32).to_le_bytes());
    r.extend((frame.len() as u32).to_le_bytes());
    r.extend(frame);
    r
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn scenario(name: &str, steps: &str) -> Scenario {
    Scenario::parse(
        &format!("name: {name}\nsteps:\n{steps}"),
        Path::new("inline.yaml"),
    )
    .unwrap()
}

/// A capturer outside the phone: at the start of every step it writes a DNS query for
/// `stepN.ap.test` to its file, stamped with the host's clock.
struct ApCapturer(Mutex<PcapWriter<std::fs::File>>);

impl RunObserver for ApCapturer {
    fn step_started(&self, index: usize, _total: usize, _name: &str) {
        let mut w = self.0.lock().unwrap();
        w.record(
            now_us(),
            &dns_query(&format!("step{index}.ap.test"), index as u16),
        )
        .unwrap();
        w.flush().unwrap();
    }
}

/// `--capture file:PATH`: the steps run on the device while something else writes the capture;
/// at the end the file is copied into the run directory and each packet lands in the step whose
/// window (host clock) holds it. The device's own traffic is not captured: tattle captured nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_file_written_during_the_run_is_aligned_to_the_steps() {
    let bench = Bench::start(&["miui-cloud-default"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ap = dir.path().join("ap.pcap");
    let mut writer =
        PcapWriter::new(std::fs::File::create(&ap).unwrap(), linktype::ETHERNET).unwrap();
    // Traffic an hour before the run: before the steps.
    writer
        .record(now_us() - 3_600_000_000, &dns_query("earlier.ap.test", 99))
        .unwrap();
    writer.flush().unwrap();
    let observer = ApCapturer(Mutex::new(writer));
    let runs = tempfile::tempdir().unwrap();
    let options = RunOptions {
        runs_root: runs.path().to_path_buf(),
        capture: CaptureSource::File(ap.clone()),
        ..RunOptions::default()
    };
    let s = scenario(
        "ap-file",
        "  - fresh-setup\n  - idle: 1s\n  - shell: { command: \"true\" }\n",
    );
    let device = Device::new(bench.device());
    let result = runner::run(&s, &device, &options, &observer)
        .await
        .expect("run");
    bench.finish().await;
    assert!(result.interrupted.is_none(), "{:?}", result.interrupted);
    let hosts = |label: &str| -> Vec<String> {
        result
            .outcome
            .steps
            .iter()
            .find(|s| s.step == label)
            .map(|s| s.hosts.iter().map(|h| h.host.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(hosts("0 before-steps"), ["earlier.ap.test"]);
    assert_eq!(
        hosts("1 fresh-setup"),
        ["step1.ap.test"],
        "{:?}",
        result.outcome
    );
    assert_eq!(hosts("2 idle"), ["step2.ap.test"]);
    assert_eq!(hosts("3 shell"), ["step3.ap.test"]);
    // Nothing of the handset's own traffic (fresh-setup's activation) was captured.
    assert!(!format!("{:?}", result.outcome).contains("kestrelcloud"));
    assert_eq!(result.capture.packets, 4);
    assert_eq!(
        std::fs::read(result.dir.join("capture.pcap")).unwrap(),
        std::fs::read(&ap).unwrap(),
        "the run directory holds what the file held"
    );
    let (record, _) = json_document(&std::fs::read_to_string(result.dir.join("run.json")).unwrap());
    assert_eq!(
        record["capture_source"]["source"],
        format!("file:{}", ap.display())
    );
    assert_eq!(record["clock"]["timestamps"], "host");
    assert_eq!(record["clock_offset_seconds"], 0.0);
    assert!(
        record["clock"]["start"]["unmeasured"]
            .as_str()
            .unwrap()
            .contains("capturer")
    );
}

/// `--capture file:-`: a capturer pipes a pcap stream into the CLI for the whole run; tattle writes
/// it to the run directory as it arrives and places each packet by the step windows of run.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_piped_into_the_cli_is_captured_and_aligned() {
    let bench = Bench::start(&["aosp-12"]).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario_file = dir.path().join("piped.yaml");
    std::fs::write(
        &scenario_file,
        "name: piped\nsteps:\n  - idle: 1500ms\n  - shell: { command: \"true\", settle: 1500ms }\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(["run"])
        .arg(&scenario_file)
        .args(["--device", &bench.handset().serial(), "--capture", "file:-"])
        .args(["--format", "json", "--runs"])
        .arg(&runs)
        .arg("--snapshots")
        .arg(dir.path().join("snapshots"))
        .env("ANDROID_ADB_SERVER_PORT", bench.server().port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The capturer: a packet every 200 ms with a name of its own, until tattle stops reading.
    let writer = std::thread::spawn(move || {
        let mut sent: Vec<(String, f64)> = Vec::new();
        let mut written = Vec::new();
        let mut header = PcapWriter::new(Vec::new(), linktype::ETHERNET)
            .unwrap()
            .into_inner();
        for n in 0..200u16 {
            let name = format!("p{n}.pipe.test");
            let ts = now_us();
            let mut bytes = std::mem::take(&mut header);
            bytes.extend(record(ts, &dns_query(&name, n)));
            if stdin
                .write_all(&bytes)
                .and_then(|()| stdin.flush())
                .is_err()
            {
                break;
            }
            written.extend(bytes);
            sent.push((name, ts as f64 / 1e6));
            std::thread::sleep(Duration::from_millis(200));
        }
        (sent, written)
    });
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let (sent, written) = writer.join().unwrap();
    bench.finish().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sent.len() < 200,
        "tattle stopped reading when the run ended"
    );
    let (doc, _) = json_document(&stdout);
    assert_eq!(doc["capture_source"]["source"], "file:-");
    let run_dir = PathBuf::from(doc["run_dir"].as_str().unwrap());
    let captured = std::fs::read(run_dir.join("capture.pcap")).unwrap();
    assert!(
        captured.len() > 24 && written.starts_with(&captured),
        "the stream, as it came"
    );
    let (record, _) = json_document(&std::fs::read_to_string(run_dir.join("run.json")).unwrap());
    assert_eq!(record["clock"]["timestamps"], "host");
    let windows: Vec<(String, f64, f64)> = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                format!("{} {}", w["index"], w["name"].as_str().unwrap()),
                w["start"].as_f64().unwrap(),
                w["end"].as_f64().unwrap(),
            )
        })
        .collect();
    let step_hosts = |label: &str| -> Vec<String> {
        doc["outcome"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == label)
            .map(|s| {
                s["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["host"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut checked = 0;
    for (label, start, end) in &windows {
        let inside: Vec<&String> = sent
            .iter()
            .filter(|(_, ts)| *ts > start + 0.05 && *ts < end - 0.05)
            .map(|(name, _)| name)
            .collect();
        assert!(!inside.is_empty(), "no packet was sent during step {label}");
        let hosts = step_hosts(label);
        for name in inside {
            assert!(
                hosts.contains(name),
                "{name} not in step {label}: {hosts:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
}

/// `capture:` in a scenario, its path taken from the scenario's folder; `--capture` wins over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_names_the_source_and_the_flag_overrides_it() {
    let bench = Bench::start(&["aosp-12"]).await;
    let lab = tempfile::tempdir().unwrap();
    let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET).unwrap();
    w.record(now_us(), &dns_query("already.ap.test", 1))
        .unwrap();
    std::fs::write(lab.path().join("ap.pcap"), w.into_inner()).unwrap();
    std::fs::write(
        lab.path().join("lab.yaml"),
        "name: lab\ncapture: file:ap.pcap\nsteps:\n  - idle: 500ms\n",
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
            .current_dir(elsewhere.path())
            .arg("run")
            .arg(lab.path().join("lab.yaml"))
            .args(["--device", &bench.handset().serial(), "--format", "json"])
            .args(["--runs", "runs", "--snapshots", "snapshots"])
            .args(extra)
            .env("ANDROID_ADB_SERVER_PORT", bench.server().port().to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_document(&stdout).0
    };
    let from_yaml = tokio::task::block_in_place(|| run(&[]));
    assert_eq!(
        from_yaml["capture_source"]["source"],
        format!("file:{}", lab.path().join("ap.pcap").display())
    );
    assert_eq!(from_yaml["capture"]["packets"], 1);
    let overridden = tokio::task::block_in_place(|| run(&["--capture", "device"]));
    assert_eq!(overridden["capture_source"]["source"], "device");
    assert_eq!(
        overridden["capture_source"]["detail"],
        "tcpdump on the device (the device's own), as the shell user"
    );
    bench.finish().await;
}

/// Bad sources never reach a device: a usage error (exit 2) with the valid forms on the command
/// line, `file:line:col` for the scenario, and a `file:` path that cannot be is refused before the
/// run.
#[test]
fn bad_sources_are_usage_errors_with_the_valid_forms() {
    let tattle = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
            .args(args)
            // No adb server may be reached: every refusal here comes first.
            .env("ANDROID_ADB_SERVER_PORT", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = tattle(&["run", "send-sms", "--capture", "iface:"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`iface:` needs the name"), "{err}");
    assert!(
        err.contains("`file:PATH`") && err.contains("`device`") && err.contains("`pcapdroid`"),
        "{err}"
    );
    let (code, err) = tattle(&[
        "run",
        "send-sms",
        "--capture",
        "device",
        "--pcapdroid-api-key",
        "k",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("are for `--capture pcapdroid`"), "{err}");
    let (code, err) = tattle(&["run", "send-sms", "--capture", "wifi"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown capture source `wifi`"), "{err}");
    let (code, err) = tattle(&[
        "run",
        "send-sms",
        "--capture",
        "file:-",
        "--tcpdump-binary",
        "/bin/sh",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--tcpdump-binary is for the `device` source"),
        "{err}"
    );
    let (code, err) = tattle(&["run", "send-sms", "--tcpdump-binary", "/no/such/tcpdump"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/no/such/tcpdump"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: bad\nsteps:\n  - idle: 1s\ncapture: wireshark\n",
    )
    .unwrap();
    let (code, err) = tattle(&["run", file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "{}:4:10: error: `capture`: unknown capture source `wireshark`",
            file.display()
        )),
        "{err}"
    );
    assert!(err.contains("help: valid sources"), "{err}");
}

/// `--tcpdump-binary`: a binary for another ABI is refused before anything is pushed or captured;
/// one for the device's is pushed to /data/local/tmp/tcpdump (0755) and is what the run captures
/// with, the device's clock read at both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcpdump_binary_is_checked_against_the_abi_then_pushed_and_run() {
    let bench = Bench::start(&["aosp-12"]).await;
    let device = Device::new(bench.device());
    let dir = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let s = scenario(
        "pushed",
        "  - shell: { command: \"true\", settle: 200ms }\n",
    );
    let options = |binary: PathBuf| RunOptions {
        runs_root: runs.path().to_path_buf(),
        tcpdump_binary: Some(binary),
        ..RunOptions::default()
    };

    let x86 = dir.path().join("tcpdump-x86_64");
    std::fs::write(&x86, elf(true, 62)).unwrap();
    let refused = runner::run(&s, &device, &options(x86), &runner::Quiet).await;
    let Err(RunError::Capture(e)) = refused else {
        panic!("not refused: {:?}", refused.err());
    };
    let text = e.to_string();
    assert!(
        text.contains(
            "not for this device: the binary is built for x86_64, the device runs arm64-v8a"
        ),
        "{text}"
    );
    assert_eq!(
        bench
            .device()
            .stat("/data/local/tmp/tcpdump")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        std::fs::read_dir(runs.path()).unwrap().count(),
        0,
        "no run started"
    );

    let script = dir.path().join("tcpdump.sh");
    std::fs::write(&script, "#!/system/bin/sh\nexec tcpdump \"$@\"\n").unwrap();
    let refused = runner::run(&s, &device, &options(script), &runner::Quiet).await;
    assert!(
        refused
            .err()
            .unwrap()
            .to_string()
            .contains("not an ELF binary"),
        "a script is not a static tcpdump"
    );

    let arm64 = dir.path().join("tcpdump-arm64");
    let bytes = elf(true, 183);
    std::fs::write(&arm64, &bytes).unwrap();
    let result = runner::run(&s, &device, &options(arm64), &runner::Quiet)
        .await
        .expect("run with the pushed tcpdump");
    assert!(result.interrupted.is_none(), "{:?}", result.interrupted);
    assert!(
        result.capture_source.detail.starts_with(
            "tcpdump on the device (/data/local/tmp/tcpdump, pushed from --tcpdump-binary)"
        ),
        "{:?}",
        result.capture_source
    );
    assert!(result.capture.bytes >= 24);
    let stat = bench
        .device()
        .stat("/data/local/tmp/tcpdump")
        .await
        .unwrap()
        .expect("pushed");
    assert_eq!(stat.mode & 0o777, 0o755);
    assert_eq!(
        bench
            .device()
            .pull("/data/local/tmp/tcpdump", 1 << 20)
            .await
            .unwrap(),
        bytes
    );
    assert_eq!(result.clock.timestamps, "device");
    for reading in [&result.clock.start, &result.clock.end] {
        assert_eq!(reading.command, Some("date +%s.%N"), "{reading:?}");
        assert!(reading.offset_seconds.unwrap().abs() < 1.0, "{reading:?}");
    }
    bench.finish().await;
}

/// A minimal static ELF executable header for `machine` (what the ABI check reads).
fn elf(class64: bool, machine: u16) -> Vec<u8> {
    let mut b = vec![0u8; if class64 { 64 } else { 52 }];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = if class64 { 2 } else { 1 };
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes());
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b.extend(b"not really tcpdump");
    b
}

/// `iface:NAME`: the host's tcpdump on one of its interfaces, filtered to the phone. Runs in a user +
/// network namespace of its own as a normal user (see `support::OWN_NETWORK`), where a veth pair
/// stands for the hotspot interface the phone's Wi-Fi traffic crosses.
#[test]
fn the_hosts_interface_is_captured_for_the_phone_only() {
    crate::support::rerun_unprivileged(
        "capture_sources::iface_inside",
        crate::support::OWN_NETWORK,
    );
}

fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("`ip` (iproute2) is needed: .ci/run installs it");
    assert!(out.status.success(), "ip {args}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the_hosts_interface_is_captured_for_the_phone_only in a namespace of its own"]
async fn iface_inside() {
    if !crate::support::in_unprivileged_child() {
        return;
    }
    crate::support::loopback_up();
    // tv0 is the host's hotspot side. The phone is 10.9.0.1, another device on the same network
    // 10.9.0.5; both reach the resolver 10.9.0.77 through tv0 (a fixed neighbour: nothing answers).
    ip("link add tv0 type veth peer name tv1");
    ip("addr add 10.9.0.1/24 dev tv0");
    ip("addr add 10.9.0.5/24 dev tv0");
    ip("link set tv0 up");
    ip("link set tv1 up");
    ip("neigh add 10.9.0.77 lladdr 02:00:00:00:00:77 dev tv0 nud permanent");

    let bench = Bench::start(&["aosp-clean"]).await;
    let serial = bench.handsets[0].serial();
    let port = bench.server().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("iface.yaml");
    std::fs::write(&yaml, "name: iface\nsteps:\n  - idle: 3s\n").unwrap();

    let talking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let talker = {
        let talking = talking.clone();
        std::thread::spawn(move || {
            let phone = std::net::UdpSocket::bind("10.9.0.1:0").unwrap();
            let other = std::net::UdpSocket::bind("10.9.0.5:0").unwrap();
            let mut id = 1u16;
            while talking.load(std::sync::atomic::Ordering::SeqCst) {
                let query = |name: &str, id: u16| dns_query(name, id)[42..].to_vec();
                let _ = phone.send_to(&query("iface-phone.example", id), "10.9.0.77:53");
                let _ = other.send_to(&query("other-device.example", id), "10.9.0.77:53");
                id = id.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("run")
        .arg(&yaml)
        .args(["--device", &serial, "--capture", "iface:tv0"])
        .args(["--phone-address", "10.9.0.1", "--format", "json"])
        .arg("--runs")
        .arg(dir.path().join("runs"))
        .arg("--snapshots")
        .arg(dir.path().join("snapshots"))
        .env("ANDROID_ADB_SERVER_PORT", &port)
        .output()
        .unwrap();
    talking.store(false, std::sync::atomic::Ordering::SeqCst);
    talker.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (doc, _) = json_document(&stdout);
    assert_eq!(doc["capture_source"]["source"], "iface:tv0");
    let hosts = doc["outcome"]["steps"].to_string();
    assert!(hosts.contains("iface-phone.example"), "{hosts}");
    assert!(
        !hosts.contains("other-device.example"),
        "another device's traffic is not the phone's: {hosts}"
    );
    assert!(doc["capture"]["packets"].as_u64().unwrap() >= 5);

    // An interface the host does not have: refused before the run, naming what it has.
    let out = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("run")
        .arg(&yaml)
        .args(["--device", &serial, "--capture", "iface:nosuch0"])
        .arg("--runs")
        .arg(dir.path().join("runs"))
        .env("ANDROID_ADB_SERVER_PORT", &port)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no interface `nosuch0`") && err.contains("tv0"),
        "{err}"
    );
    bench.finish().await;
}
