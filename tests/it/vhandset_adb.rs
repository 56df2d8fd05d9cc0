//! The virtual handset's adbd against Debian's real `adb` (client + server on a private port): connect,
//! `devices -l`, shell v2 exit codes and stderr, `exec-out`, push/pull, parallel streams, the contacts
//! provider, the SMS compose flow, `service call iphonesubinfo`, disconnect.
//!
//! Every test starts its own adb server on a free port and kills it at the end (`support::Bench`); the
//! handset is registered through `tattle::virtual_device`, then driven with Debian's `adb` client only
//! (`adb connect` itself is exercised in `disconnect_and_shutdown`).

use std::process::Output;
use std::time::Duration;

use tattle::vhandset::HandsetEvent;

use crate::support::{Bench, unregistered_handset};

/// Debian's `adb` client, talking to a bench's private server.
#[derive(Clone)]
struct AdbCli {
    port: String,
}

impl AdbCli {
    /// `adb -P PORT ARGS…` against the server; killed if dropped.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("adb");
        cmd.arg("-P")
            .arg(&self.port)
            .args(args)
            .env("ANDROID_ADB_SERVER_PORT", &self.port)
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("adb {args:?} timed out"))
            .expect("run adb")
    }

    async fn on(&self, serial: &str, args: &[&str]) -> Output {
        let mut all = vec!["-s", serial];
        all.extend_from_slice(args);
        self.run(&all).await
    }

    /// `adb shell CMD` → (stdout, stderr, exit code).
    async fn shell(&self, serial: &str, cmd: &str) -> (String, String, i32) {
        let out = self.on(serial, &["shell", cmd]).await;
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }
}

/// A handset on a free port, registered with a fresh private adb server, and Debian's client for it.
async fn bench() -> (Bench, AdbCli) {
    let bench = Bench::start(&["aosp-clean"]).await;
    let adb = AdbCli {
        port: bench.server().port().to_string(),
    };
    (bench, adb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_lists_the_profile_and_shell_reports_status() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let serial = h.serial();
    let model = h.profile().prop("ro.product.model").unwrap().to_string();
    let product = h.profile().prop("ro.product.name").unwrap().to_string();
    let device = h.profile().prop("ro.product.device").unwrap().to_string();

    let devices = String::from_utf8_lossy(&adb.run(&["devices", "-l"]).await.stdout).into_owned();
    let line = devices
        .lines()
        .find(|l| l.starts_with(&serial))
        .unwrap_or_else(|| panic!("{serial} not in {devices}"));
    assert!(line.contains(" device "), "{line}");
    assert!(line.contains(&format!("product:{product}")), "{line}");
    assert!(
        line.contains(&format!("model:{}", model.replace(' ', "_"))),
        "{line}"
    );
    assert!(line.contains(&format!("device:{device}")), "{line}");

    assert_eq!(
        adb.shell(&serial, "getprop ro.product.model").await,
        (format!("{model}\n"), String::new(), 0)
    );
    assert_eq!(adb.shell(&serial, "true").await.2, 0);
    assert_eq!(adb.shell(&serial, "false").await.2, 1);
    assert_eq!(adb.shell(&serial, "exit 3").await.2, 3);
    let (out, err, code) = adb.shell(&serial, "nosuchcommand arg").await;
    assert_eq!((out.as_str(), code), ("", 127));
    assert_eq!(err, "/system/bin/sh: nosuchcommand: not found\n");
    // stdout and stderr stay apart under shell v2
    assert_eq!(
        adb.shell(&serial, "echo out; echo err >&2; exit 42").await,
        ("out\n".into(), "err\n".into(), 42)
    );
    assert_eq!(adb.shell(&serial, "false; echo $?").await.0, "1\n");
    // adbd is not root yet: `adb unroot` says so (root itself is covered in personas.rs)
    let out = adb.on(&serial, &["unroot"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "adbd not running as root\n",
        "{out:?}"
    );
    // several arguments are joined into one command line, as adb does
    let out = adb.on(&serial, &["shell", "echo", "a", "b"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a b\n");

    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_out_is_raw_and_merges_stderr() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let serial = h.serial();
    let out = adb
        .on(&serial, &["exec-out", "echo hi; echo err >&2"])
        .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\nerr\n");
    let out = adb.on(&serial, &["exec-out", "echo kept; echo dropped 2>/dev/null >&2; echo also-kept >&2 2>/dev/null; nosuch 2>/dev/null"]).await;
    // redirections apply left to right, as in any sh
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\nalso-kept\n");
    // exec-out carries bytes untouched (no pty CR/LF rewriting)
    let out = adb
        .on(&serial, &["exec-out", "echo -e 'a\\tb\\r\\nc'"])
        .await;
    assert_eq!(out.stdout, b"a\tb\r\nc\n");
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_round_trip_300k_and_ls() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let serial = h.serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("blob.bin");
    let back = dir.path().join("back.bin");
    let data = crate::support::random_bytes(0x1234_5678_9abc_def0, 300_000);
    std::fs::write(&src, &data).unwrap();

    let out = adb
        .on(
            &serial,
            &["push", src.to_str().unwrap(), "/data/local/tmp/"],
        )
        .await;
    assert!(out.status.success(), "push: {out:?}");
    let stored = h
        .handset()
        .state()
        .fs
        .read("/data/local/tmp/blob.bin")
        .map(<[u8]>::to_vec);
    assert_eq!(stored.as_deref(), Ok(&data[..]));

    let out = adb
        .on(
            &serial,
            &["pull", "/data/local/tmp/blob.bin", back.to_str().unwrap()],
        )
        .await;
    assert!(out.status.success(), "pull: {out:?}");
    assert_eq!(std::fs::read(&back).unwrap(), data);

    // the shell and `adb ls` (LIS2) see the same file system
    let (ls, _, code) = adb.shell(&serial, "ls /data/local/tmp").await;
    assert_eq!((ls.as_str(), code), ("blob.bin\n", 0));
    let listing =
        String::from_utf8_lossy(&adb.on(&serial, &["ls", "/data/local/tmp"]).await.stdout)
            .into_owned();
    assert!(
        listing
            .lines()
            .any(|l| l.ends_with(" blob.bin") && l.contains("000493e0")),
        "{listing}"
    );
    // missing files fail cleanly
    let out = adb
        .on(
            &serial,
            &["pull", "/data/local/tmp/nope", back.to_str().unwrap()],
        )
        .await;
    assert!(!out.status.success());
    let (_, _, code) = adb.shell(&serial, "rm /data/local/tmp/blob.bin").await;
    assert_eq!(code, 0);
    assert_eq!(
        adb.shell(&serial, "cat /data/local/tmp/blob.bin").await.2,
        1
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_shells_do_not_mix() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let serial = h.serial();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let adb = adb.clone();
        let serial = serial.clone();
        tasks.push(tokio::spawn(async move {
            let cmd = format!("sleep 0.2; echo stream-{i}; exit {i}");
            (i, adb.shell(&serial, &cmd).await)
        }));
    }
    for t in tasks {
        let (i, (out, err, code)) = t.await.unwrap();
        assert_eq!(
            (out, err, code),
            (format!("stream-{i}\n"), String::new(), i)
        );
    }
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_insert_query_and_event() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let s = h.serial();
    let cmds = [
        "content insert --uri content://com.android.contacts/raw_contacts --bind account_type:n: --bind account_name:n:",
        "content insert --uri content://com.android.contacts/data --bind raw_contact_id:i:1 --bind mimetype:s:vnd.android.cursor.item/name --bind data1:s:'Wei Ling Tan'",
        "content insert --uri content://com.android.contacts/data --bind raw_contact_id:i:1 --bind mimetype:s:vnd.android.cursor.item/phone_v2 --bind data1:s:+6598765432",
    ];
    for c in cmds {
        let (out, err, code) = adb.shell(&s, c).await;
        assert_eq!((out.as_str(), err.as_str(), code), ("", "", 0), "{c}");
    }
    let (out, _, _) = adb
        .shell(&s, "content query --uri content://com.android.contacts/contacts --projection _id:display_name")
        .await;
    assert_eq!(out, "Row: 0 _id=1, display_name=Wei Ling Tan\n");
    let (out, _, _) = adb
        .shell(
            &s,
            "content query --uri content://com.android.contacts/data/phones --projection number",
        )
        .await;
    assert_eq!(out, "Row: 0 number=+6598765432\n");
    assert_eq!(
        h.handset().events(),
        vec![HandsetEvent::ContactAdded {
            name: "Wei Ling Tan".into(),
            phone: "+6598765432".into()
        }]
    );
    assert_eq!(
        adb.shell(&s, "pm clear com.android.providers.contacts")
            .await
            .0,
        "Success\n"
    );
    let (out, _, _) = adb
        .shell(
            &s,
            "content query --uri content://com.android.contacts/raw_contacts",
        )
        .await;
    assert_eq!(out, "No result found.\n");
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_compose_send_flow_and_setup() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let s = h.serial();
    let (out, _, code) = adb
        .shell(&s, "am start -a android.intent.action.SENDTO -d sms:+6598765432 --es sms_body 'tattle canary 7' --ez exit_on_sent true")
        .await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Starting: Intent { act=android.intent.action.SENDTO dat=sms:xxxxxxxxxxx (has extras) }\n"
    );
    assert!(h.handset().events().is_empty());
    assert_eq!(adb.shell(&s, "input keyevent 22").await.2, 0);
    assert_eq!(adb.shell(&s, "input keyevent 66").await.2, 0);
    assert_eq!(
        h.handset().events(),
        vec![HandsetEvent::SmsSent {
            to: "+6598765432".into(),
            body: "tattle canary 7".into()
        }]
    );
    let (out, _, _) = adb
        .shell(
            &s,
            "content query --uri content://sms/sent --projection address:body:type",
        )
        .await;
    assert_eq!(
        out,
        "Row: 0 address=+6598765432, body=tattle canary 7, type=2\n"
    );

    assert_eq!(
        adb.shell(&s, "settings get secure user_setup_complete")
            .await
            .0,
        "0\n"
    );
    adb.shell(
        &s,
        "settings put global device_provisioned 1 && settings put secure user_setup_complete 1",
    )
    .await;
    assert_eq!(
        h.handset().events().last(),
        Some(&HandsetEvent::SetupComplete)
    );
    let android_id = h
        .profile()
        .identifiers
        .get("android_id")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        adb.shell(&s, "settings get secure android_id").await.0,
        format!("{android_id}\n")
    );
    bench.finish().await;
}

/// Decodes the String16 of a `service call` reply from its hex dump, independently of the handset.
fn parcel_string(dump: &str) -> Option<String> {
    let mut bytes = Vec::new();
    for line in dump.lines() {
        let Some(start) = line.find("0x") else {
            continue;
        };
        let rest = &line[start..];
        let hex = rest.split_once(": ")?.1;
        let hex = hex.split('\'').next()?;
        for word in hex.split_whitespace() {
            let v = u32::from_str_radix(word, 16).ok()?;
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let exception = i32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let len = i32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if exception != 0 || len < 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .get(8..8 + 2 * len as usize)?
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_call_iphonesubinfo_returns_identifiers() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let s = h.serial();
    let ids = h.profile().identifiers.clone();
    // SDK 33 (Android 13): 1 getDeviceId, 9 getSubscriberIdWithFeature, 15 getLine1Number.
    for (code, kind) in [(1, "imei"), (9, "imsi"), (15, "phone_number")] {
        let (out, _, status) = adb
            .shell(
                &s,
                &format!("service call iphonesubinfo {code} s16 com.android.shell s16 null"),
            )
            .await;
        assert_eq!(status, 0);
        assert!(out.starts_with("Result: Parcel("), "{out}");
        assert_eq!(
            parcel_string(&out).as_deref(),
            ids.get(kind).map(String::as_str),
            "code {code}: {out}"
        );
    }
    let (out, _, _) = adb.shell(&s, "service call iphonesubinfo 9999").await;
    assert_eq!(out, "Result: Parcel(NULL)\n");
    assert_eq!(
        adb.shell(&s, "service check iphonesubinfo").await.0,
        "Service iphonesubinfo: found\n"
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_and_shutdown() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let s = h.serial();
    let out = adb.run(&["disconnect", &s]).await;
    assert!(out.status.success(), "{out:?}");
    let devices = String::from_utf8_lossy(&adb.run(&["devices"]).await.stdout).into_owned();
    assert!(!devices.contains(&s), "{devices}");
    // reconnect works, then the handset goes away for good
    let out = adb.run(&["connect", &s]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("connected to"),
        "{out:?}"
    );
    let port = h.port();
    bench.finish().await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn garbage_peer_only_loses_its_own_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = unregistered_handset("aosp-clean").await;
    // Garbage, then a header claiming a 4 GiB payload: the connection is closed, nothing allocated.
    let mut bad = tokio::net::TcpStream::connect(("127.0.0.1", h.port()))
        .await
        .unwrap();
    bad.write_all(&[0xde; 24]).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), bad.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "connection should be closed");
    // A well-behaved peer still gets its CNXN answered.
    let mut good = tokio::net::TcpStream::connect(("127.0.0.1", h.port()))
        .await
        .unwrap();
    let payload = b"host::features=shell_v2\0";
    let mut msg = Vec::new();
    let cnxn = u32::from_le_bytes(*b"CNXN");
    for w in [
        cnxn,
        0x0100_0001,
        1 << 20,
        payload.len() as u32,
        0,
        cnxn ^ 0xffff_ffff,
    ] {
        msg.extend_from_slice(&w.to_le_bytes());
    }
    msg.extend_from_slice(payload);
    good.write_all(&msg).await.unwrap();
    let mut header = [0u8; 24];
    tokio::time::timeout(Duration::from_secs(5), good.read_exact(&mut header))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&header[0..4], b"CNXN");
    let len = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
    let mut banner = vec![0u8; len];
    good.read_exact(&mut banner).await.unwrap();
    assert!(String::from_utf8_lossy(&banner).starts_with("device::ro.product.name="));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_reads_commands_from_stdin_without_a_tty() {
    use tokio::io::AsyncWriteExt;
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let mut child = adb
        .command(&["-s", &h.serial(), "shell"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn adb shell");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"getprop ro.product.device\necho second; exit 5\n")
        .await
        .unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("adb shell finished")
        .unwrap();
    let device = h.profile().prop("ro.product.device").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{device}\nsecond\n")
    );
    assert_eq!(out.status.code(), Some(5));
    bench.finish().await;
}

/// Speaks the ADB transport directly: legacy `shell:`, flow control, unknown services.
#[tokio::test]
async fn raw_protocol_legacy_shell_and_unknown_service() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    fn msg(cmd: &[u8; 4], a0: u32, a1: u32, payload: &[u8]) -> Vec<u8> {
        let c = u32::from_le_bytes(*cmd);
        let mut m = Vec::new();
        let sum: u32 = payload.iter().map(|&b| u32::from(b)).sum();
        for w in [c, a0, a1, payload.len() as u32, sum, c ^ 0xffff_ffff] {
            m.extend_from_slice(&w.to_le_bytes());
        }
        m.extend_from_slice(payload);
        m
    }
    async fn read(s: &mut tokio::net::TcpStream) -> ([u8; 4], u32, u32, Vec<u8>) {
        let mut h = [0u8; 24];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut h))
            .await
            .expect("message in time")
            .expect("read header");
        let w = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
        let mut p = vec![0u8; w(12) as usize];
        s.read_exact(&mut p).await.unwrap();
        (h[0..4].try_into().unwrap(), w(4), w(8), p)
    }
    let h = unregistered_handset("aosp-clean").await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", h.port()))
        .await
        .unwrap();
    // A small max payload (256) forces the reply to be split into several WRTEs.
    s.write_all(&msg(b"CNXN", 0x0100_0001, 256, b"host::\0"))
        .await
        .unwrap();
    assert_eq!(&read(&mut s).await.0, b"CNXN");

    s.write_all(&msg(b"OPEN", 7, 0, b"framebuffer:\0"))
        .await
        .unwrap();
    let (cmd, a0, a1, _) = read(&mut s).await;
    assert_eq!((&cmd, a0, a1), (b"CLSE", 0, 7));

    s.write_all(&msg(b"OPEN", 9, 0, b"shell:getprop\0"))
        .await
        .unwrap();
    let (cmd, local, remote, _) = read(&mut s).await;
    assert_eq!((&cmd, remote), (b"OKAY", 9));
    let mut output = Vec::new();
    loop {
        let (cmd, a0, a1, p) = read(&mut s).await;
        assert_eq!((a0, a1), (local, 9));
        match &cmd {
            b"WRTE" => {
                assert!(p.len() <= 256, "WRTE larger than negotiated: {}", p.len());
                output.extend(p);
                // One WRTE in flight: nothing more arrives until this OKAY.
                s.write_all(&msg(b"OKAY", 9, local, b"")).await.unwrap();
            }
            b"CLSE" => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let text = String::from_utf8_lossy(&output).into_owned();
    assert!(text.len() > 256, "{text}");
    assert!(text.contains("[ro.product.model]: ["), "{text}");

    // A peer that ignores flow control loses that stream, not the connection.
    s.write_all(&msg(b"OPEN", 11, 0, b"shell:cat\0"))
        .await
        .unwrap();
    let (cmd, local, _, _) = read(&mut s).await;
    assert_eq!(&cmd, b"OKAY");
    let flood = msg(b"WRTE", 11, local, &[b'x'; 200]);
    for _ in 0..50 {
        s.write_all(&flood).await.unwrap();
    }
    let mut closed = false;
    for _ in 0..200 {
        let (cmd, a0, a1, _) = read(&mut s).await;
        if &cmd == b"CLSE" && (a0, a1) == (local, 11) {
            closed = true;
            break;
        }
        if &cmd == b"WRTE" {
            s.write_all(&msg(b"OKAY", 11, local, b"")).await.unwrap();
        }
    }
    assert!(closed, "flooded stream was not closed");
    s.write_all(&msg(b"OPEN", 13, 0, b"shell:echo alive\0"))
        .await
        .unwrap();
    let local = loop {
        let (cmd, a0, a1, _) = read(&mut s).await;
        if (&cmd, a1) == (b"OKAY", 13) {
            break a0;
        }
        // Leftovers of the flooded stream may still arrive first.
        assert_eq!(a1, 11, "unexpected {cmd:?}");
    };
    let (cmd, _, _, p) = read(&mut s).await;
    assert_eq!((&cmd, p.as_slice()), (b"WRTE", &b"alive\n"[..]));
    s.write_all(&msg(b"OKAY", 13, local, b"")).await.unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_out_tcpdump_streams_the_handsets_traffic() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: capturing needs root");
        return;
    }
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let mut child = adb
        .command(&[
            "-s",
            &h.serial(),
            "exec-out",
            "tcpdump -i any -U -w - 2>/dev/null",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn adb exec-out");
    let mut stdout = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut all = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(8), stdout.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if all
                .windows(b"connectivitycheck".len())
                .any(|w| w == b"connectivitycheck")
            {
                break;
            }
        }
        all
    });
    // Give tcpdump time to start, then trigger the setup traffic.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        adb.shell(&h.serial(), "settings put secure user_setup_complete 1")
            .await
            .2,
        0
    );
    let pcap = reader.await.unwrap();
    let _ = child.kill().await;
    assert!(pcap.len() > 24, "no capture bytes");
    let magic = u32::from_le_bytes(pcap[0..4].try_into().unwrap());
    assert!(
        [0xa1b2c3d4, 0xa1b23c4d, 0x0a0d0d0a].contains(&magic),
        "not a capture: {magic:#x}"
    );
    assert!(
        pcap.windows(b"connectivitycheck".len())
            .any(|w| w == b"connectivitycheck"),
        "setup traffic not in the capture ({} bytes)",
        pcap.len()
    );
    // The stream's end stops the handset's tcpdump; the handset stays usable.
    assert_eq!(
        adb.shell(&h.serial(), "echo still-here").await.0,
        "still-here\n"
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_drops_the_connection_and_the_handset_comes_back() {
    let (bench, adb) = bench().await;
    let h = bench.handset();
    let s = h.serial();
    adb.shell(&s, "setprop debug.tattle 1; echo kept > /sdcard/k")
        .await;
    let out = adb.on(&s, &["reboot"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = tokio::time::timeout(Duration::from_secs(30), adb.on(&s, &["wait-for-device"]))
        .await
        .expect("handset came back");
    assert!(out.status.success(), "{out:?}");
    let mut back = String::new();
    for _ in 0..50 {
        back = adb.shell(&s, "cat /sdcard/k; getprop debug.tattle").await.0;
        if !back.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // files survive a reboot; properties set at run time do not
    assert_eq!(back, "kept\n\n");
    bench.finish().await;
}

/// A peer that connects and never sends CNXN is dropped, so silent connections cannot use up the
/// handset's few connection slots.
#[tokio::test]
async fn silent_connections_are_closed_after_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;
    let handset = unregistered_handset("aosp-clean").await;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", handset.port()))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(20), socket.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the handset kept a silent connection open: {read:?}"
    );
    handset.shutdown().await;
}

/// `adb reverse` through Debian's client and server: the handset's table answers as adbd does, and a
/// connection an app on the handset makes to the phone's port reaches the host's listener (and back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_forward_carries_an_apps_connection_to_the_host() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (bench, adb) = bench().await;
    let serial = bench.handset().serial();
    let host = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host_port = host.local_addr().unwrap().port();
    let remote = format!("tcp:{host_port}");

    // Nothing forwarded yet: an app's connect is refused, as on a phone.
    assert!(matches!(
        bench.handset().handset().reverses().connect_tcp(5123).await,
        Err(tattle::vhandset::adbd::ReverseError::NotForwarded(5123))
    ));
    let out = adb.on(&serial, &["reverse", "tcp:5123", &remote]).await;
    assert!(out.status.success(), "{out:?}");
    let list = adb.on(&serial, &["reverse", "--list"]).await;
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.contains(&format!("tcp:5123 {remote}")),
        "reverse --list: {list:?}"
    );
    let refused = adb
        .on(&serial, &["reverse", "--no-rebind", "tcp:5123", &remote])
        .await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot rebind existing socket"),
        "{refused:?}"
    );

    let mut app = bench
        .handset()
        .handset()
        .reverses()
        .connect_tcp(5123)
        .await
        .expect("reverse connection");
    let (mut peer, _) = tokio::time::timeout(Duration::from_secs(10), host.accept())
        .await
        .expect("the adb server connects to the host's listener")
        .unwrap();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let payload = payload.clone();
        tokio::spawn(async move {
            app.write_all(&payload).await.unwrap();
            let mut back = [0u8; 5];
            app.read_exact(&mut back).await.unwrap();
            app.shutdown().await.unwrap();
            back
        })
    };
    let mut got = vec![0u8; payload.len()];
    peer.read_exact(&mut got).await.unwrap();
    assert!(got == payload, "bytes arrive in order, intact");
    peer.write_all(b"hello").await.unwrap();
    assert_eq!(&writer.await.unwrap(), b"hello");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), peer.read_to_end(&mut rest))
        .await
        .expect("the app's close reaches the host")
        .unwrap();
    assert!(rest.is_empty());

    let out = adb.on(&serial, &["reverse", "--remove", "tcp:5123"]).await;
    assert!(out.status.success(), "{out:?}");
    let list = adb.on(&serial, &["reverse", "--list"]).await;
    assert!(String::from_utf8_lossy(&list.stdout).trim().is_empty());
    bench.finish().await;
}

/// A build that keeps a TLS key log (`handset.tls_keylog`) has the secrets of its HTTPS in that file,
/// which Debian's `adb pull` fetches like any other; tattle's parser reads every line of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builds_tls_key_log_is_pulled_like_any_file() {
    let bench = Bench::start(&["miui-cloud-default"]).await;
    let adb = AdbCli {
        port: bench.server().port().to_string(),
    };
    let h = bench.handset();
    let serial = h.serial();
    let network = h.handset().network().expect("a network").clone();
    network.wait_idle().await;
    let report = network.play(&HandsetEvent::SetupComplete).await;
    assert_eq!(report.failed, 0, "{report:?}");
    let dir = tempfile::tempdir().unwrap();
    let back = dir.path().join("keys.log");
    let out = adb
        .on(
            &serial,
            &[
                "pull",
                "/data/local/tmp/sslkeys.log",
                back.to_str().unwrap(),
            ],
        )
        .await;
    assert!(out.status.success(), "pull: {out:?}");
    let text = std::fs::read(&back).unwrap();
    let mut keys = tattle_analysis::keylog::KeyLog::new();
    let stats = keys.add_text(&text);
    assert_eq!(stats.malformed, 0);
    // Setup makes two HTTPS connections (the connectivity check and the activation): TLS 1.3, so
    // each logs its handshake and traffic secrets.
    let lines = String::from_utf8(text).unwrap();
    let sessions = lines
        .lines()
        .filter(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0 "))
        .count();
    assert_eq!(sessions, 2, "{} lines", lines.lines().count());
    assert_eq!(keys.len(), 2, "two client randoms");
    bench.finish().await;
}
