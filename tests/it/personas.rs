//! The virtual handset's generations, through Debian's `adb` client and server: each built-in persona
//! answers `service call iphonesubinfo`, `dumpsys iphonesubinfo`, `su`, `adb root`, `content` and
//! `uiautomator dump` the way its Android release does (the texts are those of the AOSP sources named in
//! src/vhandset/generation.rs and docs/profiles.md), the locked vendor build refuses the shell with
//! Android 14's SecurityException, its IMEIs are on the dialer's `*#06#` screen only after the code is
//! typed, and its Send button sends (and the SMS traffic leaves the handset) only when tapped.

use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::time::Duration;

use tattle::vhandset::HandsetEvent;
use tokio::io::AsyncReadExt;

use crate::support::Bench;

/// Debian's `adb` client, talking to a bench's private server.
struct AdbCli {
    port: String,
}

impl AdbCli {
    fn new(bench: &Bench) -> AdbCli {
        AdbCli {
            port: bench.server().port().to_string(),
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("adb");
        cmd.arg("-P")
            .arg(&self.port)
            .args(args)
            .env("ANDROID_ADB_SERVER_PORT", &self.port)
            .kill_on_drop(true);
        cmd
    }

    async fn on(&self, serial: &str, args: &[&str]) -> Output {
        let mut all = vec!["-s", serial];
        all.extend_from_slice(args);
        tokio::time::timeout(Duration::from_secs(60), self.command(&all).output())
            .await
            .unwrap_or_else(|_| panic!("adb {all:?} timed out"))
            .expect("run adb")
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

    /// stdout of `adb shell CMD`.
    async fn out(&self, serial: &str, cmd: &str) -> String {
        self.shell(serial, cmd).await.0
    }
}

/// The words of a `Result: Parcel(…)` dump, as little-endian u32s (both one-line and multi-line forms).
fn parcel_words(dump: &str) -> Vec<u32> {
    let body = dump
        .split_once("Parcel(")
        .map_or("", |(_, b)| b)
        .trim_start_matches('\t');
    let mut words = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        let line = line.split_once(": ").map_or(line, |(_, rest)| rest);
        let hex = line.split('\'').next().unwrap_or("");
        for w in hex.split_whitespace() {
            if w.len() == 8 {
                words.push(u32::from_str_radix(w, 16).expect("hex word"));
            }
        }
    }
    words
}

/// A reply Parcel decoded: the exception code and the String16 that follows it.
fn parcel_reply(dump: &str) -> (i32, Option<String>) {
    let words = parcel_words(dump);
    assert!(words.len() >= 2, "not a reply parcel: {dump:?}");
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let len = i32::from_le_bytes(bytes[4..8].try_into().unwrap());
    if len < 0 {
        return (words[0] as i32, None);
    }
    let units: Vec<u16> = bytes[8..8 + len as usize * 2]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    (words[0] as i32, Some(String::from_utf16(&units).unwrap()))
}

/// The `uiautomator dump` XML parsed just enough to prove it well-formed: every element opened is
/// closed in order, every attribute is `name="value"`. Returns the `<node>` attributes in document
/// order.
fn parse_dump(xml: &str) -> Vec<BTreeMap<String, String>> {
    let rest = xml
        .strip_prefix("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>")
        .unwrap_or_else(|| panic!("no XML declaration: {xml:.80}"));
    let mut nodes = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut s = rest;
    while let Some(start) = s.find('<') {
        assert!(s[..start].trim().is_empty(), "text outside tags: {s:.60}");
        let end = s[start..].find('>').expect("unclosed tag") + start;
        let tag = &s[start + 1..end];
        s = &s[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            continue;
        }
        let self_closing = tag.ends_with(" /");
        let tag = tag.trim_end_matches(" /");
        let (name, mut attrs_text) = tag.split_once(' ').unwrap_or((tag, ""));
        let mut attrs = BTreeMap::new();
        while !attrs_text.trim().is_empty() {
            let t = attrs_text.trim_start();
            let (key, after) = t.split_once("=\"").expect("attribute without =\"");
            let (value, after) = after.split_once('"').expect("unterminated attribute");
            assert!(!value.contains('<'), "raw < in an attribute");
            let value = value
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            attrs.insert(key.to_string(), value);
            attrs_text = after;
        }
        if name == "node" {
            nodes.push(attrs);
        } else {
            assert_eq!(name, "hierarchy", "unexpected element <{name}>");
            assert_eq!(attrs.get("rotation").map(String::as_str), Some("0"));
        }
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert!(!nodes.is_empty(), "no nodes");
    nodes
}

/// The centre of the node with `key` = `value`.
fn centre(nodes: &[BTreeMap<String, String>], key: &str, value: &str) -> (i32, i32) {
    let n = nodes
        .iter()
        .find(|n| n.get(key).map(String::as_str) == Some(value))
        .unwrap_or_else(|| panic!("no node with {key}={value:?} in {nodes:?}"));
    let nums: Vec<i32> = n["bounds"]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    ((nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2)
}

/// The screen as `adb exec-out uiautomator dump /dev/tty` prints it (XML, then the message).
async fn screen(adb: &AdbCli, serial: &str) -> Vec<BTreeMap<String, String>> {
    let out = adb
        .on(serial, &["exec-out", "uiautomator dump /dev/tty"])
        .await;
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let xml = text
        .strip_suffix("UI hierchary dumped to: /dev/tty\n")
        .unwrap_or_else(|| panic!("no dump message: {text:?}"));
    parse_dump(xml)
}

fn texts(nodes: &[BTreeMap<String, String>], id: &str) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| n.get("resource-id").map(String::as_str) == Some(id))
        .map(|n| n["text"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kitkat_rooted_answers_as_android_4_4() {
    let bench = Bench::start(&["aosp-4.4-rooted"]).await;
    let adb = AdbCli::new(&bench);
    let s = bench.handset().serial();

    // KitKat's adbd has no shell_v2: the legacy shell runs under a pty (CRLF) and loses exit codes.
    assert_eq!(adb.shell(&s, "false").await.2, 0);
    assert_eq!(adb.out(&s, "getprop ro.build.version.sdk").await, "19\r\n");
    assert_eq!(adb.out(&s, "getprop sys.boot_completed").await, "1\r\n");
    // …and no exec: service (5.0+).
    let out = adb.on(&s, &["exec-out", "id"]).await;
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());

    // PhoneSubInfo.dump, opt/telephony android-4.4.3_r1.
    assert_eq!(
        adb.out(&s, "dumpsys iphonesubinfo").await,
        "Phone Subscriber Info:\r\n  Phone Type = GSM\r\n  Device ID = 358240050000447\r\n"
    );
    // KitKat's IPhoneSubInfo: getDeviceId() is code 1 and takes no argument; libbinder indents.
    assert_eq!(
        adb.out(&s, "service call iphonesubinfo 1").await,
        "Result: Parcel(\r\n  0x00000000: 00000000 0000000f 00350033 00320038 '........3.5.8.2.'\r\n  0x00000010: 00300034 00350030 00300030 00300030 '4.0.0.5.0.0.0.0.'\r\n  0x00000020: 00340034 00000037                   '4.4.7...        ')\r\n"
    );
    for (code, want) in [
        (3, "310260000000019"),
        (5, "8901260000000000193"),
        (6, "+15555550119"),
    ] {
        let dump = adb
            .out(&s, &format!("service call iphonesubinfo {code}"))
            .await;
        assert_eq!(parcel_reply(&dump), (0, Some(want.to_string())), "{code}");
    }
    // service.cpp of 4.4 knows no i64: it complains, still makes the call, then prints its usage.
    // (The legacy shell merges stderr into stdout.)
    let (out, _, _) = adb.shell(&s, "service call iphonesubinfo 1 i64 1").await;
    assert!(
        out.starts_with(
            "service: unknown option i64\r\nResult: Parcel(\r\n  0x00000000: 00000000 0000000f"
        ),
        "{out:?}"
    );
    assert!(out.ends_with("')\r\nUsage: service [-h|-?]\r\n       service list\r\n       service check SERVICE\r\n       service call SERVICE CODE [i32 INT | s16 STR] ...\r\nOptions:\r\n   i32: Write the integer INT into the send parcel.\r\n   s16: Write the UTF-16 string STR into the send parcel.\r\n"), "{out:?}");

    // su.c of system/extras (android-4.4.4_r1): `su 0 CMD ARGS` runs as root; `-c` is atoi'ed to uid 0
    // and a lone command is exec'ed without arguments.
    assert!(
        adb.out(&s, "su 0 id")
            .await
            .starts_with("uid=0(root) gid=0(root)")
    );
    assert!(
        adb.out(&s, "su -c id")
            .await
            .starts_with("uid=0(root) gid=0(root)")
    );
    assert_eq!(
        adb.out(&s, "su -c 'service call iphonesubinfo 1'").await,
        "su: exec failed for service call iphonesubinfo 1 Error:No such file or directory\r\n"
    );
    assert_eq!(
        parcel_reply(&adb.out(&s, "su 0 service call iphonesubinfo 1").await),
        (0, Some("358240050000447".into()))
    );

    // KitKat's Content.java: an empty cursor prints "No reuslt found." (sic); no `call` verb.
    assert_eq!(
        adb.out(&s, "content query --uri content://sms").await,
        "No reuslt found.\r\n"
    );
    assert!(
        adb.out(
            &s,
            "content call --uri content://settings --method GET_secure"
        )
        .await
        .ends_with("\r\n[ERROR] Unsupported operation: call\r\n")
    );

    // uiautomator writes to $EXTERNAL_STORAGE, /storage/emulated/legacy on 4.4; the dialer's IMEI
    // dialog is KitKat's setMessage() one.
    assert_eq!(
        adb.out(&s, "uiautomator dump").await,
        "UI hierchary dumped to: /storage/emulated/legacy/window_dump.xml\r\n"
    );
    let xml = adb
        .out(&s, "cat /storage/emulated/legacy/window_dump.xml")
        .await;
    assert!(parse_dump(&xml).iter().any(|n| n["text"] == "Phone"));
    adb.out(
        &s,
        "monkey -p com.android.dialer -c android.intent.category.LAUNCHER 1",
    )
    .await;
    adb.out(
        &s,
        "input keyevent KEYCODE_STAR KEYCODE_POUND 7 13 KEYCODE_POUND",
    )
    .await;
    let shell_dump = adb.out(&s, "uiautomator dump /dev/tty").await;
    let xml = shell_dump
        .split("UI hierchary dumped to")
        .next()
        .unwrap()
        .to_string();
    let nodes = parse_dump(&xml);
    assert_eq!(texts(&nodes, "android:id/message"), ["358240050000447"]);
    assert_eq!(texts(&nodes, "android:id/alertTitle"), ["IMEI"]);

    // adbd's restart_root_service: ro.debuggable=1, so adbd restarts as root.
    let out = adb.on(&s, &["root"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "restarting adbd as root\n"
    );
    adb.on(&s, &["wait-for-device"]).await;
    let mut id = String::new();
    for _ in 0..50 {
        id = adb.out(&s, "id").await;
        if id.starts_with("uid=0(root)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(id.starts_with("uid=0(root)"), "{id}");
    let out = adb.on(&s, &["root"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "adbd is already running as root\n"
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pie_userdebug_answers_as_android_9() {
    let bench = Bench::start(&["aosp-9-userdebug"]).await;
    let adb = AdbCli::new(&bench);
    let s = bench.handset().serial();
    assert_eq!(adb.shell(&s, "false").await.2, 1);
    // Android 9's IPhoneSubInfo: 1 / 7 / 10 / 12 with the calling package.
    assert_eq!(
        adb.out(&s, "service call iphonesubinfo 1 s16 com.android.shell")
            .await,
        "Result: Parcel(\n  0x00000000: 00000000 0000000f 00350033 00320038 '........3.5.8.2.'\n  0x00000010: 00300034 00350030 00300030 00300030 '4.0.0.5.0.0.0.0.'\n  0x00000020: 00350034 00000034                   '4.5.4...        ')\n"
    );
    for (code, want) in [
        (7, "234150000000028"),
        (10, "8944150000000000282"),
        (12, "+447700900028"),
    ] {
        let dump = adb
            .out(
                &s,
                &format!("service call iphonesubinfo {code} s16 com.android.shell"),
            )
            .await;
        assert_eq!(parcel_reply(&dump), (0, Some(want.to_string())), "{code}");
    }
    // From 5.0 the iphonesubinfo binder does not override dump(): nothing.
    assert_eq!(
        adb.shell(&s, "dumpsys iphonesubinfo").await,
        (String::new(), String::new(), 0)
    );
    assert_eq!(
        adb.out(&s, "dumpsys isub").await,
        " sSlotIndexToSubId[0]: subId=1\n"
    );
    // su.cpp of 9: WHO must be a user or a number.
    assert_eq!(
        adb.shell(&s, "su -c id").await,
        (String::new(), "su: invalid uid/gid '-c'\n".into(), 1)
    );
    assert_eq!(
        adb.shell(&s, "su --help").await.1,
        "usage: su [UID[,GID[,GID2]...]] [COMMAND [ARG...]]\n\nSwitch to WHO (default 'root') and run the given command (default sh).\n\nwhere WHO is a comma-separated list of user, group,\nand supplementary groups in that order.\n\n"
    );
    assert_eq!(
        adb.shell(&s, "su 0 nosuch").await,
        (
            String::new(),
            "su: failed to exec nosuch: No such file or directory\n".into(),
            1
        )
    );
    assert_eq!(adb.out(&s, "su root whoami").await, "root\n");
    // service.cpp of 9 knows i64, not fd: it complains, calls with what it wrote (no package: 9's
    // AppOpsService resolves the shell's uid to com.android.shell), then prints its usage.
    let (out, err, code) = adb.shell(&s, "service call iphonesubinfo 1 fd /x").await;
    assert_eq!((err.as_str(), code), ("service: unknown option fd\n", 10));
    assert!(
        out.starts_with("Result: Parcel(\n  0x00000000: 00000000 0000000f"),
        "{out:?}"
    );
    assert!(out.contains(")\nUsage: service [-h|-?]\n"), "{out:?}");
    // adb root / unroot on a userdebug build.
    let out = adb.on(&s, &["root"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "restarting adbd as root\n"
    );
    adb.on(&s, &["wait-for-device"]).await;
    let mut who = String::new();
    for _ in 0..50 {
        who = adb.out(&s, "whoami").await;
        if who == "root\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(who, "root\n");
    let out = adb.on(&s, &["unroot"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "restarting adbd as non root\n"
    );
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn android_12_shell_reads_the_imei_without_root() {
    let bench = Bench::start(&["aosp-12", "aosp-clean"]).await;
    let adb = AdbCli::new(&bench);
    let s = bench.handsets[0].serial();
    for (code, want) in [
        (1, "353456100000196"),
        (8, "262010000000031"),
        (12, "8949010000000000318"),
        (15, "+4915100000031"),
    ] {
        let dump = adb
            .out(
                &s,
                &format!("service call iphonesubinfo {code} s16 com.android.shell"),
            )
            .await;
        assert_eq!(parcel_reply(&dump), (0, Some(want.to_string())), "{code}");
    }
    // 12 (SDK 31) does not check the calling package yet (12L does), and its stubs do not refuse
    // extra arguments.
    let dump = adb.out(&s, "service call iphonesubinfo 1").await;
    assert_eq!(parcel_reply(&dump), (0, Some("353456100000196".into())));
    let dump = adb
        .out(
            &s,
            "service call iphonesubinfo 1 s16 com.android.shell s16 extra",
        )
        .await;
    assert_eq!(parcel_reply(&dump), (0, Some("353456100000196".into())));
    // A subscription that does not exist: getIccSerialNumberForSubscriber finds no phone, a null
    // String (`ffffffff`) on one line.
    assert_eq!(
        adb.out(
            &s,
            "service call iphonesubinfo 14 i32 7 s16 com.android.shell"
        )
        .await,
        "Result: Parcel(00000000 ffffffff   '........')\n"
    );
    // A user build: no su, no adb root.
    assert_eq!(
        adb.shell(&s, "su 0 id").await,
        (String::new(), "/system/bin/sh: su: not found\n".into(), 127)
    );
    let out = adb.on(&s, &["root"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "adbd cannot run as root in production builds\n"
    );
    // A reboot: adbd answers before the boot completes, then sys.boot_completed becomes 1.
    assert_eq!(adb.out(&s, "getprop sys.boot_completed").await, "1\n");
    assert!(adb.on(&s, &["reboot"]).await.status.success());
    adb.on(&s, &["wait-for-device"]).await;
    let mut seen = Vec::new();
    for _ in 0..60 {
        let (out, _, code) = adb.shell(&s, "getprop sys.boot_completed").await;
        if code == 0 && seen.last() != Some(&out) {
            seen.push(out.clone());
        }
        if out == "1\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        seen,
        ["\n", "1\n"],
        "boot_completed while booting, then after"
    );

    // Android 13 (the existing profiles): getDeviceId checks the calling package from 12L; without
    // one, AppOpsService's requireNonNull is a NullPointerException parcel.
    let c = bench.handsets[1].serial();
    assert_eq!(
        adb.out(&c, "service call iphonesubinfo 1").await,
        "Result: Parcel(fffffffc ffffffff 00000000  '............')\n"
    );
    let dump = adb
        .out(&c, "service call iphonesubinfo 1 s16 com.android.settings")
        .await;
    assert_eq!(
        parcel_reply(&dump),
        (
            -1,
            Some("Package com.android.settings does not belong to 2000".into())
        )
    );
    assert_eq!(
        parcel_reply(
            &adb.out(&c, "service call iphonesubinfo 1 s16 com.android.shell")
                .await
        ),
        (0, Some("353915110000421".into()))
    );
    bench.finish().await;
}

/// Android 15 (AOSP user build, one SIM): the shell reads every identifier with Android 14's codes and
/// the package argument (AOSP's Shell holds READ_PRIVILEGED_PHONE_STATE); 14's package checks, stub
/// argument check and libbinder print; `dumpsys isub` with 15's `mUserIdToAvailableSubs` line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn android_15_shell_reads_its_identifiers_with_14_s_codes() {
    let bench = Bench::start(&["aosp-15"]).await;
    let adb = AdbCli::new(&bench);
    let s = bench.handset().serial();
    assert_eq!(adb.out(&s, "getprop ro.build.version.sdk").await, "35\n");
    // getDeviceId(callingPackage), code 1; a tab after `Parcel(`, lines unindented (libbinder
    // Parcel::print at the 24Q3 base f7274fca, as 14's).
    assert_eq!(
        adb.out(&s, "service call iphonesubinfo 1 s16 com.android.shell")
            .await,
        "Result: Parcel(\t\n0x00000000: 00000000 0000000f 00350033 00380032 '........3.5.2.8.'\n0x00000010: 00370034 00310031 00300030 00300030 '4.7.1.1.0.0.0.0.'\n0x00000020: 00350033 00000031                   '3.5.1...        ')\n"
    );
    // The default SIM (8 / 12 / 15) and per slot or subscription (4 / 5 / 10 / 14 / 16): the
    // 37-method interface of 14, which 15 keeps (16's getGroupIdLevel2ForSubscriber would move 12
    // and 15 up by one).
    for (args, want) in [
        ("8 s16 com.android.shell", "208010000000035"),
        ("12 s16 com.android.shell", "8933010000000000351"),
        ("15 s16 com.android.shell", "+33612340035"),
        ("4 i32 0 s16 com.android.shell", "352847110000351"),
        ("5 i32 1 s16 com.android.shell", "352847110000351"),
        ("10 i32 1 s16 com.android.shell", "208010000000035"),
        ("14 i32 1 s16 com.android.shell", "8933010000000000351"),
        ("16 i32 1 s16 com.android.shell", "+33612340035"),
    ] {
        let dump = adb
            .out(&s, &format!("service call iphonesubinfo {args}"))
            .await;
        assert_eq!(parcel_reply(&dump), (0, Some(want.to_string())), "{args}");
    }
    // 12L+'s package check in getDeviceIdForPhone and 14+'s in getSubscriberIdForSubscriber (S4
    // android-35 PhoneSubInfoController lines 101 and 189): none is a NullPointerException, another
    // package a SecurityException.
    assert_eq!(
        adb.out(&s, "service call iphonesubinfo 1").await,
        "Result: Parcel(\tfffffffc ffffffff 00000000  '............')\n"
    );
    for code in [1, 8] {
        let dump = adb
            .out(
                &s,
                &format!("service call iphonesubinfo {code} s16 com.android.settings"),
            )
            .await;
        assert_eq!(
            parcel_reply(&dump),
            (
                -1,
                Some("Package com.android.settings does not belong to 2000".into())
            ),
            "{code}"
        );
    }
    // getIccSerialNumber has no package check: the IMSI getters do, the ICCID ones do not.
    let dump = adb
        .out(&s, "service call iphonesubinfo 12 s16 nobody")
        .await;
    assert_eq!(parcel_reply(&dump), (0, Some("8933010000000000351".into())));
    // Generated stubs call enforceNoDataAvail(): `s16 null` is a fourth argument to code 15's two.
    let dump = adb
        .out(
            &s,
            "service call iphonesubinfo 15 s16 com.android.shell s16 x s16 null",
        )
        .await;
    assert_eq!(
        parcel_reply(&dump),
        (
            -2,
            Some("Parcel data not fully consumed, unread size: 16".into())
        )
    );
    // dumpsys: iphonesubinfo has no dump(); isub is SubscriptionManagerService's, with 15's line
    // (24Q3 base 34cccdc8 line 4825) and the ICCID masked on a user build.
    assert_eq!(adb.out(&s, "dumpsys iphonesubinfo").await, "");
    assert_eq!(
        adb.out(&s, "dumpsys isub").await,
        "SubscriptionManagerService:\nActive modem count=1\nLogical SIM slot sub id mapping:\n  Logical SIM slot 0: subId=1\nICCID:\n  slot 0: 893301000[****]\n\ndefaultSubId=1\ndefaultVoiceSubId=1\ndefaultDataSubId=1\nactiveDataSubId=1\ndefaultSmsSubId=1\nareAllSubscriptionsLoaded=true\nmUserIdToAvailableSubs={-10000=[1]}\n\nmSimState[0]=LOADED\n"
    );
    // service.cpp of 15 is 14's: an unknown option, the call still made, then the 13+ usage.
    let (out, err, code) = adb
        .shell(&s, "service call iphonesubinfo 1 s16 com.android.shell x")
        .await;
    assert_eq!((err.as_str(), code), ("service: unknown option x\n", 10));
    assert!(
        out.starts_with("Result: Parcel(\t\n0x00000000: 00000000 0000000f"),
        "{out:?}"
    );
    assert!(
        out.ends_with("   afd: Write an ashmem file descriptor for a region containing the data from\n          file f into the send parcel.\n"),
        "{out:?}"
    );
    // A user build: no su, no adb root.
    assert_eq!(
        adb.shell(&s, "su 0 id").await,
        (String::new(), "/system/bin/sh: su: not found\n".into(), 127)
    );
    let out = adb.on(&s, &["root"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "adbd cannot run as root in production builds\n"
    );
    bench.finish().await;
}

/// Starts `adb exec-out tcpdump` on the handset and returns the child and a task collecting its pcap,
/// once the pcap header has arrived (tcpdump is capturing).
async fn start_capture(
    adb: &AdbCli,
    serial: &str,
) -> (tokio::process::Child, tokio::task::JoinHandle<Vec<u8>>) {
    let mut child = adb
        .command(&[
            "-s",
            serial,
            "exec-out",
            "tcpdump -i any -U -s 0 -w - 2>/dev/null",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("adb exec-out tcpdump");
    let mut stdout = child.stdout.take().unwrap();
    let mut header = vec![0u8; 24];
    tokio::time::timeout(Duration::from_secs(15), stdout.read_exact(&mut header))
        .await
        .expect("pcap header in time")
        .expect("pcap header");
    let collector = tokio::spawn(async move {
        let mut pcap = header;
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            pcap.extend_from_slice(&buf[..n]);
        }
        pcap
    });
    (child, collector)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_14_refuses_the_shell_and_shows_imeis_on_the_dialer() {
    let bench = Bench::start(&["vendor-14-locked"]).await;
    let adb = AdbCli::new(&bench);
    let s = bench.handset().serial();

    // Android 14's refusal (TelephonyPermissions, S4 android-34), printed by Android 14's libbinder:
    // a tab after `Parcel(` and no indentation.
    assert_eq!(
        adb.out(&s, "service call iphonesubinfo 1 s16 com.android.shell")
            .await,
        "Result: Parcel(\t\n0x00000000: ffffffff 00000056 00650067 00440074 '....V...g.e.t.D.'\n0x00000010: 00760065 00630069 00490065 003a0064 'e.v.i.c.e.I.d.:.'\n0x00000020: 00540020 00650068 00750020 00640069 ' .T.h.e. .u.i.d.'\n0x00000030: 00320020 00300030 00200030 006f0064 ' .2.0.0.0. .d.o.'\n0x00000040: 00730065 006e0020 0074006f 006d0020 'e.s. .n.o.t. .m.'\n0x00000050: 00650065 00200074 00680074 00200065 'e.e.t. .t.h.e. .'\n0x00000060: 00650072 00750071 00720069 006d0065 'r.e.q.u.i.r.e.m.'\n0x00000070: 006e0065 00730074 00740020 0020006f 'e.n.t.s. .t.o. .'\n0x00000080: 00630061 00650063 00730073 00640020 'a.c.c.e.s.s. .d.'\n0x00000090: 00760065 00630069 00200065 00640069 'e.v.i.c.e. .i.d.'\n0x000000a0: 006e0065 00690074 00690066 00720065 'e.n.t.i.f.i.e.r.'\n0x000000b0: 002e0073 00000000 00000000          's...........    ')\n"
    );
    let refused = |label: &str| {
        (
            -1,
            Some(format!(
                "{label}: The uid 2000 does not meet the requirements to access device identifiers."
            )),
        )
    };
    for (args, label) in [
        ("4 i32 1 s16 com.android.shell", "getDeviceId"),
        ("5 i32 2 s16 com.android.shell", "getImei"),
        ("8 s16 com.android.shell", "getSubscriberIdForSubscriber"),
        ("12 s16 com.android.shell", "getIccSerialNumber"),
    ] {
        let dump = adb
            .out(&s, &format!("service call iphonesubinfo {args}"))
            .await;
        assert_eq!(parcel_reply(&dump), refused(label), "{args}");
    }
    let dump = adb
        .out(&s, "service call iphonesubinfo 15 s16 com.android.shell")
        .await;
    assert_eq!(
        parcel_reply(&dump),
        (-1, Some("getLine1Number: Neither user 2000 nor current process has android.permission.READ_PHONE_STATE, android.permission.READ_SMS, or android.permission.READ_PHONE_NUMBERS".into()))
    );
    // No calling package: AppOpsService.checkPackage's requireNonNull.
    assert_eq!(
        adb.out(&s, "service call iphonesubinfo 1").await,
        "Result: Parcel(\tfffffffc ffffffff 00000000  '............')\n"
    );
    // Android 14 stubs call enforceNoDataAvail(): `s16 null` after getDeviceId's one argument.
    let dump = adb
        .out(
            &s,
            "service call iphonesubinfo 1 s16 com.android.shell s16 null",
        )
        .await;
    assert_eq!(
        parcel_reply(&dump),
        (
            -2,
            Some("Parcel data not fully consumed, unread size: 16".into())
        )
    );
    // 5.0+: dumpsys iphonesubinfo prints nothing; dumpsys isub maps both slots.
    assert_eq!(adb.out(&s, "dumpsys iphonesubinfo").await, "");
    let isub = adb.out(&s, "dumpsys isub").await;
    assert!(
        isub.starts_with("SubscriptionManagerService:\nActive modem count=2\nLogical SIM slot sub id mapping:\n  Logical SIM slot 0: subId=1\n  Logical SIM slot 1: subId=2\nICCID:\n  slot 0: 893108000[****]\n  slot 1: 893116000[****]\n"),
        "{isub}"
    );
    // No root of any kind.
    assert_eq!(adb.shell(&s, "su 0 id").await.2, 127);
    let out = adb.on(&s, &["root"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "adbd cannot run as root in production builds\n"
    );

    // The dialer: a tel: intent only fills the pad; the code typed on it shows both IMEIs.
    assert_eq!(
        adb.out(&s, "uiautomator dump").await,
        "UI hierchary dumped to: /sdcard/window_dump.xml\n"
    );
    let home = parse_dump(&adb.out(&s, "cat /sdcard/window_dump.xml").await);
    assert!(texts(&home, "com.android.dialer:id/deviceid_hex").is_empty());
    adb.out(
        &s,
        "am start -a android.intent.action.DIAL -d tel:*%2306%23",
    )
    .await;
    let nodes = screen(&adb, &s).await;
    assert_eq!(texts(&nodes, "com.android.dialer:id/digits"), ["*#06#"]);
    assert!(texts(&nodes, "com.android.dialer:id/deviceid_hex").is_empty());
    let del = centre(&nodes, "resource-id", "com.android.dialer:id/deleteButton");
    for _ in 0..5 {
        adb.out(&s, &format!("input tap {} {}", del.0, del.1)).await;
    }
    for key in ["*", "#", "0", "6", "#"] {
        let nodes = screen(&adb, &s).await;
        let (x, y) = centre(
            &nodes,
            "content-desc",
            if key == "6" { "6,MNO" } else { key },
        );
        adb.out(&s, &format!("input tap {x} {y}")).await;
    }
    let nodes = screen(&adb, &s).await;
    assert_eq!(
        texts(&nodes, "com.android.dialer:id/deviceid_hex"),
        ["352099140000015", "352099140000023"]
    );
    assert_eq!(texts(&nodes, "android:id/alertTitle"), ["IMEI"]);
    // Not cancelable: BACK leaves it up; its OK button closes it.
    adb.out(&s, "input keyevent KEYCODE_BACK").await;
    let nodes = screen(&adb, &s).await;
    let ok = centre(&nodes, "resource-id", "android:id/button1");
    adb.out(&s, &format!("input tap {} {}", ok.0, ok.1)).await;
    let nodes = screen(&adb, &s).await;
    assert!(texts(&nodes, "com.android.dialer:id/deviceid_hex").is_empty());
    assert_eq!(texts(&nodes, "com.android.dialer:id/digits"), [""]);
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_14_sends_only_when_send_is_tapped_and_the_sms_traffic_leaves() {
    let bench = Bench::start(&["vendor-14-locked"]).await;
    let adb = AdbCli::new(&bench);
    let h = bench.handset();
    let s = h.serial();
    let (mut tcpdump, collector) = start_capture(&adb, &s).await;

    adb.out(
        &s,
        "am start -a android.intent.action.SENDTO -d sms:+31600000001 --es sms_body 'canary 77' --ez exit_on_sent true",
    )
    .await;
    // The keyboard route does not reach this app's Send button: ENTER is a newline in the text.
    adb.out(&s, "input keyevent 22; input keyevent 66").await;
    assert_eq!(
        adb.out(&s, "content query --uri content://sms/sent").await,
        "No result found.\n"
    );
    assert!(h.handset().events().is_empty());
    let nodes = screen(&adb, &s).await;
    let send = nodes
        .iter()
        .find(|n| n["resource-id"] == "com.android.messaging:id/send_message_button")
        .expect("send button");
    assert_eq!(
        (send["content-desc"].as_str(), send["focusable"].as_str()),
        ("Send Message", "false")
    );
    let (x, y) = centre(
        &nodes,
        "resource-id",
        "com.android.messaging:id/send_message_button",
    );
    adb.out(&s, &format!("input tap {x} {y}")).await;
    assert_eq!(
        adb.out(
            &s,
            "content query --uri content://sms/sent --projection address:body"
        )
        .await,
        "Row: 0 address=+31600000001, body=canary 77\n\n"
    );
    assert_eq!(
        h.handset().events(),
        vec![HandsetEvent::SmsSent {
            to: "+31600000001".into(),
            body: "canary 77\n".into()
        }]
    );

    // The contacts editor: Save stores the contact and raises contact_added.
    adb.out(
        &s,
        "am start -a android.intent.action.INSERT -t vnd.android.cursor.dir/contact -e name 'Wei Ling' -e phone +6598765432",
    )
    .await;
    let nodes = screen(&adb, &s).await;
    assert!(nodes.iter().any(|n| n["text"] == "Wei"));
    let (x, y) = centre(
        &nodes,
        "resource-id",
        "com.android.contacts:id/editor_menu_save_button",
    );
    adb.out(&s, &format!("input tap {x} {y}")).await;
    assert_eq!(
        adb.out(
            &s,
            "content query --uri content://com.android.contacts/data/phones --projection display_name:number"
        )
        .await,
        "Row: 0 display_name=Wei Ling, number=+6598765432\n"
    );

    // The profile's sms_sent traffic, captured on the handset: both IMEIs and the number in plain HTTP.
    let mut pcap = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if collector.is_finished() {
            break;
        }
        if h.handset().events().len() >= 2 {
            tokio::time::sleep(Duration::from_millis(800)).await;
            break;
        }
    }
    let _ = tcpdump.start_kill();
    if let Ok(Ok(bytes)) = tokio::time::timeout(Duration::from_secs(10), collector).await {
        pcap = bytes;
    }
    for needle in [
        "POST /msg/v1/sent",
        "Host: sync.nimbus-cloud.net",
        "imei1=352099140000015&imei2=352099140000023",
        "from=%2B31612345034",
    ] {
        assert!(contains(&pcap, needle), "{needle} not in the capture");
    }
    bench.finish().await;
}

#[test]
fn vhandset_list_names_each_profile_s_generation_and_the_generations() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(["vhandset", "--list"])
        .output()
        .expect("tattle vhandset --list");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for (profile, generation) in [
        ("aosp-clean", "android-13"),
        ("aosp-4.4-rooted", "android-4.4"),
        ("aosp-9-userdebug", "android-9"),
        ("aosp-12", "android-12"),
        ("vendor-14-locked", "android-14"),
        ("aosp-15", "android-15"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{profile} ")))
            .unwrap_or_else(|| panic!("{profile} not listed: {text}"));
        assert!(line.contains(&format!(" {generation} ")), "{line}");
    }
    let generations = text
        .split("generations (a profile's `generation:`):\n")
        .nth(1)
        .expect("generations section");
    let ids: Vec<&str> = generations
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        ids,
        [
            "android-4.4",
            "android-9",
            "android-12",
            "android-13",
            "android-14",
            "android-15"
        ]
    );
}
