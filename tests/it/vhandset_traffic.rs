//! The virtual handset's firmware profiles and the real traffic they emit, captured by the handset's own
//! `tcpdump` (a packet socket in the handset's private network namespace) and read back with the real
//! tshark. Needs no root: the tests that prove it run again as `nobody` when the suite runs as root.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::support;
use tattle::vhandset::network::HandsetNetwork;
use tattle::vhandset::profile::{Context, Template};
use tattle::vhandset::{HandsetEvent, Profile, ShellIo, VhandsetError, tcpdump};
use tattle_analysis::testgen::tshark::Names;
use tokio::sync::mpsc;

fn sms() -> HandsetEvent {
    HandsetEvent::SmsSent {
        to: "+6598765432".into(),
        body: "tattle canary 4242".into(),
    }
}

#[test]
fn every_builtin_profile_loads_with_valid_identifiers() {
    for name in Profile::builtin_names() {
        let p = Profile::builtin(name).unwrap_or_else(|e| panic!("built-in {name}: {e}"));
        let sdk: u32 = p.prop("ro.build.version.sdk").unwrap().parse().unwrap();
        assert!(
            (p.generation.sdk.0..=p.generation.sdk.1).contains(&sdk),
            "{name}: SDK {sdk} outside {}",
            p.generation.id
        );
        let imei = &p.identifiers["imei"];
        assert!(
            imei.len() == 15 && tattle_analysis::identifier::luhn_valid(imei),
            "{name}: IMEI not Luhn-valid"
        );
        assert!(
            p.identifiers["phone_number"].starts_with('+'),
            "{name}: phone number not E.164"
        );
        assert_eq!(
            p.identifiers["android_id"].len(),
            16,
            "{name}: android_id length"
        );
        assert!(!p.actions("setup").is_empty(), "{name}: no setup traffic");
    }
    assert!(matches!(
        Profile::builtin("nope"),
        Err(VhandsetError::UnknownProfile { .. })
    ));
}

#[test]
fn the_two_miui_builds_differ_only_in_the_build() {
    let a = Profile::builtin("miui-cloud-default").unwrap();
    let b = Profile::builtin("miui-cloud-optin").unwrap();
    // Like two OTA builds of one phone: the same display id (build id + keys), so only the
    // fingerprint's incremental tells them apart, and the firmware key must use it.
    assert_eq!(
        a.props["ro.build.display.id"],
        b.props["ro.build.display.id"]
    );
    let build_keys = [
        "ro.build.version.incremental",
        "ro.build.fingerprint",
        "ro.build.version.security_patch",
    ];
    for (k, v) in &a.props {
        if !build_keys.contains(&k.as_str()) {
            assert_eq!(b.prop(k), Some(v.as_str()), "prop {k} differs");
        }
    }
    assert_eq!(a.props.len(), b.props.len());
    assert_ne!(
        a.prop("ro.build.fingerprint"),
        b.prop("ro.build.fingerprint")
    );
    assert!(
        a.identifiers == b.identifiers,
        "same phone, same identifiers"
    );
    assert_eq!(a.hosts(), b.hosts(), "same hosts for both builds");
}

#[test]
fn templates_expand_with_filters() {
    let p = Profile::builtin("miui-cloud-default").unwrap();
    let ctx = Context::new(&p, Some(&sms()));
    let expand = |t: &str| Template::parse(t).unwrap().expand_string(&ctx);
    // md5("867654032178903"), computed independently with coreutils md5sum.
    let md5 = expand("{imei|md5}");
    let want = Command::new("sh")
        .args(["-c", "printf %s 867654032178903 | md5sum | cut -c1-32"])
        .output()
        .unwrap();
    assert!(
        md5.as_bytes() == want.stdout.trim_ascii(),
        "md5 filter disagrees with md5sum"
    );
    assert_eq!(expand("{phone_number|url}"), "%2B6588880142");
    assert_eq!(expand("{sms_to|base64}"), "KzY1OTg3NjU0MzI=");
    assert_eq!(expand("{sms_to|hex}"), "2b36353938373635343332");
    assert_eq!(
        expand("{{\"m\":\"{prop:ro.product.model}\"}}"),
        "{\"m\":\"Kestrel Note 7 Lite\"}"
    );
    assert_eq!(expand("{serial|sha1}").len(), 40);
    assert_eq!(expand("{serial | sha256}").len(), 64);
}

fn write_profile(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_profile_files_give_clear_errors() {
    let good = include_str!("../../profiles/aosp-clean.yaml");
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, String, &str)] = &[
        (
            "placeholder.yaml",
            good.replace(
                "path: /generate_204\n        headers:\n          User-Agent: \"Dalvik",
                "path: /x?i={imie}\n        headers:\n          User-Agent: \"Dalvik",
            ),
            "unknown placeholder `{imie}`; did you mean `{imei}`?",
        ),
        (
            "filter.yaml",
            good.replace(
                "path: /generate_204\n        headers:\n          User-Agent: \"Dalvik",
                "path: /x?i={imei|md4}\n        headers:\n          User-Agent: \"Dalvik",
            ),
            "unknown filter `md4`",
        ),
        (
            "luhn.yaml",
            good.replace("\"353915110000421\"", "\"353915110000422\""),
            "identifiers.imei must be 15 digits with a valid Luhn",
        ),
        (
            "event.yaml",
            good.replace("  sms_sent: []", "  sms_sen: []"),
            "unknown event `sms_sen`; did you mean `sms_sent`?",
        ),
        (
            "field.yaml",
            good.replace("  sms_sent: []", "  sms_sent:\n    - ftp: x.y"),
            "ftp",
        ),
        (
            "wrong-event-field.yaml",
            good.replace(
                "  sms_sent: []",
                "  sms_sent:\n    - dns: \"{contact_name}.x.net\"",
            ),
            "only in `contact_added`",
        ),
        ("yaml.yaml", "name: [unclosed".into(), ""),
        (
            "syntax.yaml",
            good.replace("imei: \"353915110000421\"", "imei: [353915110000421"),
            "line 3",
        ),
    ];
    for (file, text, want) in cases {
        let path = write_profile(&dir, file, text);
        let err = Profile::load(&path).expect_err(file).to_string();
        assert!(
            err.contains(file),
            "{file}: error does not name the file: {err}"
        );
        assert!(err.contains(want), "{file}: got {err}");
        assert!(
            !err.contains("35391511000042"),
            "{file}: error shows an identifier value"
        );
    }
    let ok = write_profile(&dir, "ok.yaml", good);
    assert_eq!(Profile::load(&ok).unwrap().name, "aosp-clean");
    let missing = Profile::load(&dir.path().join("absent.yaml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("absent.yaml"), "{missing}");
}

/// Starts `profile`'s network and the handset's tcpdump, plays `setup` (awaited) and emits `SmsSent`,
/// shuts the network down (which stops tcpdump) and returns the pcap bytes.
async fn capture(profile: &str) -> Vec<u8> {
    let net = HandsetNetwork::start(Arc::new(Profile::builtin(profile).unwrap()))
        .await
        .expect("handset network");
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let (err_tx, mut err_rx) = mpsc::channel::<Vec<u8>>(64);
    let (_stdin_tx, stdin_rx) = mpsc::channel(1);
    let io = ShellIo {
        stdout: out_tx,
        stderr: err_tx,
        stdin: stdin_rx,
    };
    let args: Vec<String> = "-i any -U -w - -s 0 --immediate-mode -p"
        .split(' ')
        .map(String::from)
        .collect();
    let dump_net = net.clone();
    let dump = tokio::spawn(async move { tcpdump::run(&args, &dump_net, io).await });
    let collector = tokio::spawn(async move {
        let mut pcap = Vec::new();
        while let Some(chunk) = out_rx.recv().await {
            pcap.extend(chunk);
        }
        pcap
    });
    // Wait for "listening on": from then on every packet is captured.
    let mut stderr = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !stderr.contains("listening on") {
            match err_rx.recv().await {
                Some(c) => stderr.push_str(&String::from_utf8_lossy(&c)),
                None => break,
            }
        }
    })
    .await
    .expect("tcpdump did not start listening");
    assert!(stderr.contains("listening on"), "tcpdump failed: {stderr}");
    let stderr_task = tokio::spawn(async move { while err_rx.recv().await.is_some() {} });

    let setup = net.play(&HandsetEvent::SetupComplete).await;
    assert_eq!(setup.failed, 0, "setup traffic failed ({setup:?})");
    let t0 = std::time::Instant::now();
    net.emit(sms());
    net.wait_idle().await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "sms_sent traffic took {:?}",
        t0.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    net.shutdown().await;
    let status = dump.await.unwrap();
    assert_eq!(status, 0, "tcpdump exit status");
    let pcap = collector.await.unwrap();
    stderr_task.abort();
    pcap
}

fn tshark_names(pcap: &[u8]) -> Names {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.pcap");
    std::fs::write(&file, pcap).unwrap();
    Names::from_tshark(&file).expect("tshark")
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miui_cloud_default_leaks_imei_and_number_on_sms() {
    let pcap = capture("miui-cloud-default").await;
    assert!(
        pcap.starts_with(&[0xd4, 0xc3, 0xb2, 0xa1]) || pcap.starts_with(&[0xa1, 0xb2, 0xc3, 0xd4]),
        "not a pcap"
    );
    let names = tshark_names(&pcap);
    for host in [
        "msg.kestrelcloud.net",
        "api.kestrelcloud.net",
        "activate.kestrelcloud.net",
        "connectivitycheck.gstatic.com",
        "time.android.com",
    ] {
        assert!(
            names.dns.contains(host),
            "{host} not asked, says tshark: {names:?}"
        );
    }
    assert!(
        names.http.contains("msg.kestrelcloud.net"),
        "HTTP Host of the messaging host"
    );
    assert!(
        names.sni.contains("activate.kestrelcloud.net"),
        "TLS SNI of the activation host"
    );
    assert!(
        names.sni.contains("connectivitycheck.gstatic.com"),
        "TLS SNI of the connectivity check"
    );

    let p = Profile::builtin("miui-cloud-default").unwrap();
    let imei = &p.identifiers["imei"];
    let phone = &p.identifiers["phone_number"];
    assert!(contains(&pcap, imei), "plain IMEI not in the capture");
    assert!(
        contains(&pcap, phone),
        "plain phone number not in the capture"
    );
    assert!(
        contains(&pcap, &phone.replace('+', "%2B")),
        "URL-encoded phone number not in the capture"
    );
    let md5 = Template::parse("{imei|md5}")
        .unwrap()
        .expand_string(&Context::new(&p, None));
    assert!(contains(&pcap, &md5), "md5 of the IMEI not in the capture");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miui_cloud_optin_sends_nothing_personal() {
    let pcap = capture("miui-cloud-optin").await;
    let names = tshark_names(&pcap);
    for host in [
        "msg.kestrelcloud.net",
        "api.kestrelcloud.net",
        "activate.kestrelcloud.net",
    ] {
        assert!(
            names.dns.contains(host),
            "{host} not asked, says tshark: {names:?}"
        );
    }
    let p = Profile::builtin("miui-cloud-optin").unwrap();
    let ctx = Context::new(&p, None);
    for (kind, value) in &p.identifiers {
        assert!(
            !contains(&pcap, value),
            "{kind} found in the opt-in capture"
        );
        for f in ["url", "md5", "sha1", "sha256", "base64", "hex"] {
            let enc = Template::parse(&format!("{{{kind}|{f}}}"))
                .unwrap()
                .expand_string(&ctx);
            assert!(
                !contains(&pcap, &enc),
                "{kind}|{f} found in the opt-in capture"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_networks_get_different_subnets_and_shut_down_cleanly() {
    let p = Arc::new(Profile::builtin("aosp-clean").unwrap());
    let a = HandsetNetwork::start(p.clone())
        .await
        .expect("first network");
    let b = HandsetNetwork::start(p.clone())
        .await
        .expect("second network");
    assert_ne!(a.subnet_index(), b.subnet_index());
    assert_eq!(a.handset_ip().octets()[..3], [127, 77, a.subnet_index()]);
    assert_eq!(a.handset_ip().octets()[3], 2);
    // Both resolve and serve on their own addresses.
    let ra = a.play(&HandsetEvent::SetupComplete).await;
    let rb = b.play(&HandsetEvent::SetupComplete).await;
    assert_eq!((ra.failed, rb.failed), (0, 0));
    assert!(ra.actions >= 3);
    let n = a.subnet_index();
    a.shutdown().await;
    // The sinks are gone: their ports can be bound again (in the handset's own network).
    let resolver = a.udp_socket(std::net::SocketAddr::from(([127, 77, n, 1], 53)));
    assert!(resolver.is_ok(), "resolver port still bound after shutdown");
    drop(resolver);
    // After shutdown events are dropped, not played.
    a.emit(sms());
    a.wait_idle().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcpdump_usage_errors() {
    let net = HandsetNetwork::start(Arc::new(Profile::builtin("aosp-clean").unwrap()))
        .await
        .expect("network");
    let (out_tx, _out_rx) = mpsc::channel(4);
    let (err_tx, mut err_rx) = mpsc::channel(16);
    let (_stdin_tx, stdin_rx) = mpsc::channel(1);
    let io = ShellIo {
        stdout: out_tx,
        stderr: err_tx,
        stdin: stdin_rx,
    };
    let status = tcpdump::run(&["-k".to_string()], &net, io).await;
    assert_eq!(status, 1);
    let mut err = Vec::new();
    while let Ok(c) = err_rx.try_recv() {
        err.extend(c);
    }
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("invalid option") && err.contains("Usage: tcpdump"),
        "{err}"
    );
    net.shutdown().await;
}

/// A normal user runs handsets: each lives in its own user + network namespace, where its servers
/// take ports 53/80/123/443 and its tcpdump captures its loopback, with no root and no capability.
#[test]
fn handsets_run_and_capture_as_a_normal_user() {
    support::rerun_unprivileged("vhandset_traffic::unprivileged_child", &[]);
}

#[test]
#[ignore = "run by handsets_run_and_capture_as_a_normal_user as a normal user"]
fn unprivileged_child() {
    if !support::in_unprivileged_child() {
        return;
    }
    assert_ne!(unsafe { libc::geteuid() }, 0, "must run unprivileged");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pcap = rt.block_on(capture("miui-cloud-default"));
    let names = tshark_names(&pcap);
    let vendor = Profile::builtin("miui-cloud-default").unwrap().hosts();
    for host in &vendor {
        assert!(
            names.dns.contains(host) || names.sni.contains(host) || names.http.contains(host),
            "{host} missing from the unprivileged capture: {names:?}"
        );
    }
    assert!(contains(&pcap, "POST "), "the SMS upload is in clear");
    // Asked for the host's loopback instead, the same user gets the bind error and its fix.
    // SAFETY: set before any other thread of this child reads the environment.
    unsafe { std::env::set_var("TATTLE_VHANDSET_NET", "host") };
    let err = rt
        .block_on(HandsetNetwork::start(Arc::new(
            Profile::builtin("aosp-clean").unwrap(),
        )))
        .err()
        .expect("binding port 53 on the host's loopback must fail without privileges");
    let msg = err.to_string();
    assert!(matches!(err, VhandsetError::Bind { .. }), "{msg}");
    assert!(
        msg.contains(":53")
            && msg.contains("CAP_NET_BIND_SERVICE")
            && msg.contains("run tattle as root"),
        "{msg}"
    );
}

/// Where the host forbids user namespaces (here: a namespace whose `user.max_user_namespaces` is 0, as
/// RHEL 7 ships it), starting a handset says why and what to do, in one message.
#[test]
fn forbidden_namespaces_name_the_fix() {
    support::rerun_unprivileged(
        "vhandset_traffic::forbidden_namespaces_child",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"",
            "sh",
        ],
    );
}

#[test]
#[ignore = "run by forbidden_namespaces_name_the_fix inside a namespace that allows no more"]
fn forbidden_namespaces_child() {
    if !support::in_unprivileged_child() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(HandsetNetwork::start(Arc::new(
            Profile::builtin("aosp-clean").unwrap(),
        )))
        .err()
        .expect("no namespace and no privilege: the handset cannot start");
    let msg = err.to_string();
    assert!(matches!(err, VhandsetError::NoNetwork { .. }), "{msg}");
    assert!(
        msg.contains("max_user_namespaces") && msg.contains("run as root") && msg.contains(":53"),
        "{msg}"
    );
}

fn shell_io() -> (ShellIo, mpsc::Receiver<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
    let (out_tx, out_rx) = mpsc::channel(64);
    let (err_tx, err_rx) = mpsc::channel(64);
    let (_stdin_tx, stdin_rx) = mpsc::channel(1);
    (
        ShellIo {
            stdout: out_tx,
            stderr: err_tx,
            stdin: stdin_rx,
        },
        out_rx,
        err_rx,
    )
}

async fn wait_listening(err_rx: &mut mpsc::Receiver<Vec<u8>>) {
    let mut stderr = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !stderr.contains("listening on") {
            match err_rx.recv().await {
                Some(c) => stderr.push_str(&String::from_utf8_lossy(&c)),
                None => break,
            }
        }
    })
    .await
    .expect("tcpdump did not start listening");
    assert!(stderr.contains("listening on"), "tcpdump failed: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcpdump_count_and_filter_are_honoured() {
    let net = HandsetNetwork::start(Arc::new(Profile::builtin("aosp-clean").unwrap()))
        .await
        .expect("network");
    let (io, mut out_rx, mut err_rx) = shell_io();
    let args: Vec<String> = "-i any -U -w - -c 4 udp port 53"
        .split(' ')
        .map(String::from)
        .collect();
    let dump_net = net.clone();
    let dump = tokio::spawn(async move { tcpdump::run(&args, &dump_net, io).await });
    wait_listening(&mut err_rx).await;
    let drain = tokio::spawn(async move { while err_rx.recv().await.is_some() {} });
    assert_eq!(net.play(&HandsetEvent::SetupComplete).await.failed, 0);
    let status = tokio::time::timeout(Duration::from_secs(5), dump)
        .await
        .expect("tcpdump -c 4 did not exit")
        .unwrap();
    assert_eq!(status, 0);
    let mut pcap = Vec::new();
    while let Some(c) = out_rx.recv().await {
        pcap.extend(c);
    }
    drain.abort();
    // Exactly the 4 packets asked for, all lookups of the connectivity check.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.pcap");
    std::fs::write(&file, &pcap).unwrap();
    let a = tattle_analysis::analyze_file(&file, &[]).expect("a capture");
    assert_eq!(a.frames, 4);
    let names = Names::from_tshark(&file).expect("tshark");
    assert_eq!(
        names.dns.into_iter().collect::<Vec<_>>(),
        ["connectivitycheck.gstatic.com"]
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcpdump_stops_when_the_host_closes_the_stream() {
    let net = HandsetNetwork::start(Arc::new(Profile::builtin("aosp-clean").unwrap()))
        .await
        .expect("network");
    let (io, out_rx, mut err_rx) = shell_io();
    let args: Vec<String> = "-i any -U -w -".split(' ').map(String::from).collect();
    let dump_net = net.clone();
    let dump = tokio::spawn(async move { tcpdump::run(&args, &dump_net, io).await });
    wait_listening(&mut err_rx).await;
    drop(out_rx);
    let status = tokio::time::timeout(Duration::from_secs(5), dump)
        .await
        .expect("tcpdump kept running after the host closed the stream")
        .unwrap();
    assert_eq!(status, 0, "tcpdump stopped by SIGINT exits 0");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_profile_plays_every_event_even_with_odd_event_fields() {
    let net = HandsetNetwork::start(Arc::new(Profile::builtin("hostile").unwrap()))
        .await
        .expect("network");
    let contact = HandsetEvent::ContactAdded {
        name: "Wei Ling Tan".into(),
        phone: "+6598765432".into(),
    };
    for event in [HandsetEvent::SetupComplete, contact, sms()] {
        let r = net.play(&event).await;
        assert!(r.actions > 0 && r.failed == 0, "{event:?}: {r:?}");
    }
    // A huge body with CR/LF and a recipient too long for a DNS label: actions may fail, nothing panics,
    // and the event still finishes quickly.
    let odd = HandsetEvent::SmsSent {
        to: "9".repeat(200),
        body: "line\r\nX-Injected: 1\r\n\r\n".repeat(5000),
    };
    let t0 = std::time::Instant::now();
    let r = net.play(&odd).await;
    assert_eq!(r.actions, 3);
    assert!(r.failed >= 1, "the over-long DNS label must fail: {r:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    net.shutdown().await;
}
