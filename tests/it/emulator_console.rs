//! The emulator console, both sides: the virtual handset's console (`vhandset::console`, written from
//! the emulator's console.cpp / console_auth.cpp / qemu-tcpdump.c) against tattle's client
//! (`tattle::emulator_console`, written separately), Google's own `adb emu` client, and raw bytes.
//! The capture files it writes are read back with the real tshark.
//!
//! Ports: every handset here takes a free even/odd pair outside 5554–5585 (the range every adb server
//! scans for emulators: a handset there would be picked up by the private adb servers of every other
//! test running in parallel). The `emulator-N` serial is still exercised: the handset is registered the
//! way a starting emulator registers itself (`host:emulator:ADB_PORT`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tattle::adb::PrivateAdbServer;
use tattle::emulator_console::{ConsoleError, ConsoleSettings, EmulatorConsole, Outcome};
use tattle::vhandset::{self, EmulatorConfig, HandsetConfig, HandsetEvent, RunningHandset};
use tattle::virtual_device::{Registration, VirtualDevice};
use tattle_analysis::testgen::tshark::Names;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

const TOKEN: &str = "Zt0kenFromF1le+/";

/// A token file holding `contents` in a fresh directory (kept alive by the returned guard).
fn token_file(contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".emulator_console_auth_token");
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

/// A handset started as an emulator on a free port pair, known to no adb server.
async fn emulator(token_file: &Path) -> RunningHandset {
    vhandset::start_emulator(
        HandsetConfig {
            profile: support::builtin("miui-cloud-default"),
            adb_port: 0,
        },
        EmulatorConfig {
            console_port: 0,
            token_file: Some(token_file.to_path_buf()),
        },
    )
    .await
    .expect("virtual handset as an emulator")
}

/// A handset started as an emulator with `profile` and `token_file`, registered with `adb`'s server
/// the way a starting emulator registers itself (`host:emulator:ADB_PORT`), so it is `emulator-N`.
async fn registered_emulator(
    profile: &str,
    token_file: &Path,
    adb: &PrivateAdbServer,
) -> VirtualDevice {
    VirtualDevice::start_emulator(
        HandsetConfig {
            profile: support::builtin(profile),
            adb_port: 0,
        },
        EmulatorConfig {
            console_port: 0,
            token_file: Some(token_file.to_path_buf()),
        },
        Registration::AsEmulator,
        adb.server(),
    )
    .await
    .expect("registered as an emulator")
}

fn settings(handset: &RunningHandset, token_file: &Path) -> ConsoleSettings {
    ConsoleSettings::new(handset.console_port().unwrap()).with_token_file(token_file)
}

/// A console client speaking raw bytes.
struct Raw {
    s: TcpStream,
}

impl Raw {
    async fn open(port: u16) -> Raw {
        Raw {
            s: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
        }
    }

    /// Exactly `n` bytes, within 5 s.
    async fn read(&mut self, n: usize) -> String {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(Duration::from_secs(5), self.s.read_exact(&mut buf))
            .await
            .expect("the console stopped answering")
            .expect("the console closed the connection");
        String::from_utf8(buf).unwrap()
    }

    /// Sends `line` and asserts the reply is exactly `reply` (byte for byte, `\r\n` and all).
    async fn says(&mut self, line: &[u8], reply: &str) {
        self.s.write_all(line).await.unwrap();
        let got = self.read(reply.len()).await;
        assert_eq!(got, reply, "reply to {:?}", String::from_utf8_lossy(line));
    }

    /// True when the console closed the connection (with nothing more to say) within 5 s.
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.s.read_to_end(&mut rest)).await,
            Ok(Ok(0))
        )
    }
}

fn banner(token_file: &Path) -> String {
    // console.cpp `control_global_accept`, CONSOLE_AUTH_STATUS_REQUIRED.
    format!(
        "Android Console: Authentication required\r\n\
         Android Console: type 'auth <auth_token>' to authenticate\r\n\
         Android Console: you can find your <auth_token> in \r\n\
         '{}'\r\nOK\r\n",
        token_file.display()
    )
}

const HELP_PROMPT: &str = "Android Console: type 'help' for a list of commands\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_authenticates_or_says_why_not() {
    let (_d, right) = token_file(&format!("  {TOKEN}\n"));
    let handset = emulator(&right).await;

    // Auth required, right token (the file is trimmed, as the emulator trims it).
    let mut c = EmulatorConsole::connect(&settings(&handset, &right))
        .await
        .expect("authenticated");
    assert!(c.authenticated());
    let ping = c.command("ping").await.unwrap();
    assert_eq!(ping.lines, ["I am alive!"]);
    assert!(ping.is_ok());
    assert!(c.supports_capture().await.unwrap());
    c.quit().await;

    // Wrong token: refused, the file and the fix named, no token shown.
    let (_d2, wrong) = token_file("not-the-token");
    let e = EmulatorConsole::connect(&settings(&handset, &wrong))
        .await
        .expect_err("a wrong token");
    let msg = e.to_string();
    assert!(matches!(e, ConsoleError::AuthRefused { .. }), "{msg}");
    assert!(
        msg.contains(&wrong.display().to_string())
            && msg
                .contains("KO: authentication token does not match ~/.emulator_console_auth_token")
            && msg.contains(&format!("the console names '{}'", right.display()))
            && msg.contains("copy that file"),
        "{msg}"
    );
    assert!(
        !msg.contains(TOKEN) && !msg.contains("not-the-token"),
        "{msg}"
    );

    // No token file on the client's side.
    let e = EmulatorConsole::connect(&settings(&handset, &right.with_extension("absent")))
        .await
        .expect_err("no token file");
    assert!(
        matches!(e, ConsoleError::AuthRefused { .. }) && e.to_string().contains("cannot read"),
        "{e}"
    );

    // Auth off: the emulator reads its file at every connection; emptied, it asks for nothing.
    std::fs::write(&right, "").unwrap();
    let mut c = EmulatorConsole::connect(&settings(&handset, &wrong))
        .await
        .expect("no auth needed");
    assert!(!c.authenticated());
    assert!(c.command("help").await.unwrap().is_ok());
    c.quit().await;

    // Nothing on the port.
    let port = handset.console_port().unwrap();
    handset.shutdown().await;
    let e = EmulatorConsole::connect(&ConsoleSettings::new(port))
        .await
        .expect_err("no console any more");
    assert!(matches!(e, ConsoleError::NoConsole { .. }), "{e}");

    // Something else on the port: an adbd is no console.
    let (_d3, f) = token_file(TOKEN);
    let other = emulator(&f).await;
    let e = EmulatorConsole::connect(&ConsoleSettings {
        connect_timeout: Duration::from_secs(1),
        ..ConsoleSettings::new(other.port())
    })
    .await
    .expect_err("the adbd's port");
    assert!(
        matches!(e, ConsoleError::NoConsole { .. }) && e.to_string().contains("banner"),
        "{e}"
    );
    other.shutdown().await;
}

/// The console creates a missing token file as the emulator does (0600, a 16-character token, no
/// newline) and closes every client at once when it cannot read or create it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_is_created_when_missing_and_its_absence_closes_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".emulator_console_auth_token");
    let handset = emulator(&path).await;
    let mut raw = Raw::open(handset.console_port().unwrap()).await;
    assert_eq!(raw.read(banner(&path).len()).await, banner(&path));
    let token = std::fs::read_to_string(&path).unwrap();
    assert_eq!(token.len(), 16, "12 random bytes in base64");
    assert!(!token.contains('\n'));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    raw.says(
        format!("auth {token}\n").as_bytes(),
        &format!("{HELP_PROMPT}OK\r\n"),
    )
    .await;
    let c = EmulatorConsole::connect(&settings(&handset, &path))
        .await
        .unwrap();
    assert!(c.authenticated());
    c.quit().await;
    handset.shutdown().await;

    // A token file that can be neither read nor created: every client is closed at once.
    let unusable = dir.path().join("no-such-dir").join("token");
    let handset = emulator(&unusable).await;
    let mut raw = Raw::open(handset.console_port().unwrap()).await;
    assert!(raw.closed().await, "closed without a banner");
    let e = EmulatorConsole::connect(&settings(&handset, &path))
        .await
        .expect_err("no banner");
    assert!(
        e.to_string()
            .contains("cannot read or create its token file"),
        "{e}"
    );
    handset.shutdown().await;
}

/// The console's texts, byte for byte as console.cpp writes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_commands_and_bad_arguments_get_the_console_s_texts() {
    let (_d, path) = token_file(TOKEN);
    let handset = emulator(&path).await;
    let port = handset.console_port().unwrap();
    let mut c = Raw::open(port).await;
    assert_eq!(c.read(banner(&path).len()).await, banner(&path));

    // Before auth only the pre-auth commands exist.
    c.says(
        b"network capture stop\n",
        "KO: unknown command, try 'help'\r\n",
    )
    .await;
    c.says(b"ping\r\n", "I am alive!\r\nOK\r\n").await;
    c.says(b"avd name\n", "miui-cloud-default\r\nOK\r\n").await;
    c.says(b"help\n",
        "Android console commands:\r\n    help|h|?\r\n    help-verbose\r\n    ping\r\n    avd\r\n    \
         auth\r\n    quit|exit\r\n\r\nTry 'help-verbose' for more description\r\nTry 'help <command>' \
         for command-specific help\r\nOK\r\n").await;
    c.says(b"auth\n", "KO: missing authentication token\r\n")
        .await;
    c.says(
        b"auth nope\n",
        "KO: authentication token does not match ~/.emulator_console_auth_token\r\n",
    )
    .await;
    // The comparison includes the C string's NUL: a trailing space is a different token.
    c.says(
        format!("auth {TOKEN} \n").as_bytes(),
        "KO: authentication token does not match ~/.emulator_console_auth_token\r\n",
    )
    .await;
    c.says(
        format!("auth   {TOKEN}\r\n").as_bytes(),
        &format!("{HELP_PROMPT}OK\r\n"),
    )
    .await;

    // After auth.
    c.says(b"help\n",
        "Android console commands:\r\n    help|h|?\r\n    help-verbose\r\n    ping\r\n    kill\r\n    \
         network\r\n    quit|exit\r\n    sms\r\n    avd\r\n\r\nTry 'help-verbose' for more description\r\nTry \
         'help <command>' for command-specific help\r\nOK\r\n").await;
    let network_help = "allows you to manage the settings related to the network data connection of the\r\n\
                        emulated device.\r\n\r\navailable sub-commands:\r\n";
    c.says(b"network\n", &format!(
        "{network_help}    capture          dump network packets to file\r\n\r\nKO: missing sub-command\r\n"
    )).await;
    c.says(b"network speed full\n", &format!(
        "{network_help}    capture          dump network packets to file\r\n\r\nKO:  bad sub-command\r\n"
    )).await;
    c.says(
        b"help network\n",
        &format!(
            "{network_help}   network capture          dump network packets to file\r\n\r\nOK\r\n"
        ),
    )
    .await;
    c.says(b"network capture\n",
        "allows to start/stop capture of network packets to a file for later analysis\r\n\r\n\
         available sub-commands:\r\n    start            start network capture\r\n    stop             \
         stop network capture\r\n\r\nKO: missing sub-command\r\n").await;
    c.says(
        b"network capture start\n",
        "KO: missing <file> argument, see 'help network capture start'\r\n",
    )
    .await;
    c.says(
        b"network capture start    \n",
        "KO: missing <file> argument, see 'help network capture start'\r\n",
    )
    .await;
    // The start failure has no line ending: the next reply follows on the same line.
    c.says(
        b"network capture start /nonexistent-dir/x.pcap\n",
        "KO: could not start capture: No such file or directory",
    )
    .await;
    c.says(b"ping\n", "I am alive!\r\nOK\r\n").await;
    c.says(b"network capture stop\n", "OK\r\n").await;
    c.says(b"help nothing\n", "Android console commands:\r\n    help|h|?\r\n    help-verbose\r\n    \
         ping\r\n    kill\r\n    network\r\n    quit|exit\r\n    sms\r\n    avd\r\n\r\nTry 'help-verbose' for \
         more description\r\nTry 'help <command>' for command-specific help\r\n\r\nKO: unknown command\r\n").await;
    c.says(b"auth x\n", "KO: unknown command, try 'help'\r\n")
        .await;
    c.says(b"\n", "KO: unknown command, try 'help'\r\n").await;
    c.says(b"help-verbose\n",
        "Android console command help:\r\n\r\n    help|h|?         print a list of commands\r\n    \
         help-verbose     print a list of commands with descriptions\r\n    ping             check if \
         the emulator is alive\r\n    kill             kill the emulator instance\r\n    network          \
         manage network settings\r\n    quit|exit        quit control session\r\n    sms              \
         SMS related commands\r\n    avd              \
         control virtual device execution\r\n\r\ntry 'help <command>' for command-specific help\r\nOK\r\n").await;
    // A line past 4095 bytes starts over: only its tail is the command.
    let mut long = vec![b'a'; 2 * 4095];
    long.extend_from_slice(b"ping\n");
    c.says(&long, "I am alive!\r\nOK\r\n").await;
    // `exit` is `quit`: the connection ends, with no OK.
    c.s.write_all(b"exit\n").await.unwrap();
    assert!(c.closed().await);

    // An HTTP request line, and bytes that are not UTF-8: said so, and the connection closed.
    let mut c = Raw::open(port).await;
    c.read(banner(&path).len()).await;
    c.says(
        b"GET / HTTP/1.1\r\n",
        "KO: Forbidden HTTP request. Aborting\r\n",
    )
    .await;
    assert!(c.closed().await);
    let mut c = Raw::open(port).await;
    c.read(banner(&path).len()).await;
    c.says(
        b"\xff\xfe help\n",
        "KO: Forbidden binary request. Aborting\r\n",
    )
    .await;
    assert!(c.closed().await);
    // A NUL ends the command, as the C string does: noise after a leading NUL is an empty command,
    // and `ping\0…` is `ping`.
    let mut c = Raw::open(port).await;
    c.read(banner(&path).len()).await;
    let mut noise = vec![0u8];
    noise.extend(
        support::random_bytes(7, 2000)
            .into_iter()
            .filter(|&b| b != b'\n'),
    );
    noise.push(b'\n');
    c.says(&noise, "KO: unknown command, try 'help'\r\n").await;
    c.says(b"ping\0garbage\xff\n", "I am alive!\r\nOK\r\n")
        .await;
    handset.shutdown().await;
}

/// Traffic played while the console captures: the file is the emulator's pcap (header and records
/// as qemu-tcpdump.c writes them), tshark reads it, and the hosts it finds are the analysis' too.
/// Through the real adb server, with the emulator's serial, and with Google's `adb emu` as a second
/// client of the same console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_through_the_console_is_a_pcap_tshark_reads() {
    let (_d, token) = token_file(TOKEN);
    let adb = PrivateAdbServer::start().await.expect("private adb server");
    let device = registered_emulator("miui-cloud-default", &token, &adb).await;
    let serial = device.adb_serial().to_string();
    let console_port = device.console_port().unwrap();
    assert_eq!(serial, format!("emulator-{console_port}"));
    assert_eq!(device.port(), console_port + 1, "adb port = console + 1");
    assert_eq!(
        device
            .adb()
            .shell("getprop ro.product.model")
            .await
            .unwrap()
            .stdout_text()
            .trim(),
        "Kestrel Note 7 Lite"
    );

    // tattle's side: the console found from the serial alone.
    let mut c = EmulatorConsole::connect(
        &ConsoleSettings::for_device(&serial, None)
            .unwrap()
            .with_token_file(&token),
    )
    .await
    .expect("console");
    assert!(c.supports_capture().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("emulator capture.pcap");
    c.capture_start(&file).await.expect("capture started");
    assert!(device.console().unwrap().capturing().await);

    let network = device.network();
    assert_eq!(network.play(&HandsetEvent::SetupComplete).await.failed, 0);
    network.emit(HandsetEvent::SmsSent {
        to: "+6598765432".into(),
        body: "tattle canary 4242".into(),
    });
    network.wait_idle().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // While the capture runs, the file grows in whole stdio buffers (the emulator never flushes).
    let live = std::fs::metadata(&file).unwrap().len();
    assert_eq!(live % 4096, 0, "mid-capture size {live}");

    // Google's client on the same console: `adb emu` authenticates with the token file in its
    // HOME and prints what follows the two OKs.
    let home = tempfile::tempdir().unwrap();
    std::fs::copy(&token, home.path().join(".emulator_console_auth_token")).unwrap();
    let out = tokio::process::Command::new("adb")
        .args([
            "-P",
            &adb.server().port().to_string(),
            "-s",
            &serial,
            "emu",
            "avd",
            "name",
        ])
        .env("HOME", home.path())
        .env_remove("ANDROID_ADB_SERVER_PORT")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.lines().next() == Some("miui-cloud-default"),
        "adb emu avd name: {said:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    c.capture_stop().await.expect("capture stopped");
    assert!(!device.console().unwrap().capturing().await);
    c.quit().await;

    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() as u64 >= live);
    let (records, frames_len) = check_qemu_pcap(&bytes);
    assert!(records > 20, "only {records} records");
    let names = Names::from_tshark(&file).expect("tshark reads the console's capture");
    let profile = vhandset::Profile::builtin("miui-cloud-default").unwrap();
    for host in profile.hosts() {
        assert!(
            names.dns.contains(&host) || names.named().contains(&host),
            "{host} missing from the console's capture: {names:?}"
        );
    }
    let analysis = tattle_analysis::analyze_file(&file, &[]).expect("the analysis reads it");
    assert_eq!(analysis.frames as usize, records);
    let ours = Names::from_analysis(&analysis);
    assert_eq!(ours.dns, names.dns, "DNS names: analysis vs tshark");
    assert_eq!(
        ours.named(),
        names.named(),
        "flow names: analysis vs tshark"
    );
    assert!(frames_len > 0);

    // What tshark says about the file itself: Ethernet, the snaplen, every frame.
    let info = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-T", "fields", "-e", "frame.protocols", "-c", "1"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&info.stdout).starts_with("eth:ethertype:ip"),
        "{}",
        String::from_utf8_lossy(&info.stdout)
    );
    device.shutdown().await;
}

/// An emulator known to adb by another serial (`adb connect 127.0.0.1:ADB_PORT`, as a device farm
/// or `-ports` would give): its serial says nothing of the console, so tattle needs the console port
/// given, and then works the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_under_another_serial_needs_its_console_port_given() {
    let (_d, token) = token_file(TOKEN);
    let adb = PrivateAdbServer::start().await.expect("private adb server");
    let device = VirtualDevice::start_emulator(
        HandsetConfig {
            profile: support::builtin("aosp-clean"),
            adb_port: 0,
        },
        EmulatorConfig {
            console_port: 0,
            token_file: Some(token.clone()),
        },
        Registration::Connect,
        adb.server(),
    )
    .await
    .expect("registered with adb connect");
    let serial = device.adb_serial().to_string();
    assert_eq!(serial, format!("127.0.0.1:{}", device.port()));
    let listed = adb.server().devices().await.unwrap();
    assert!(
        listed.iter().any(|d| d.serial == serial)
            && !listed.iter().any(|d| d.serial.starts_with("emulator-")),
        "{listed:?}"
    );
    let e = ConsoleSettings::for_device(&serial, None).unwrap_err();
    assert!(
        matches!(e, ConsoleError::NotAnEmulator { .. })
            && e.to_string().contains("give the console port"),
        "{e}"
    );
    let settings = ConsoleSettings::for_device(&serial, device.console_port())
        .unwrap()
        .with_token_file(&token);
    let mut c = EmulatorConsole::connect(&settings).await.expect("console");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.pcap");
    c.capture_start(&file).await.unwrap();
    // Traffic caused through adb, the way a scenario causes it.
    let out = device
        .adb()
        .shell("settings put secure user_setup_complete 1")
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    device.network().wait_idle().await;
    c.capture_stop().await.unwrap();
    let names = Names::from_tshark(&file).expect("tshark");
    assert!(
        names.dns.contains("connectivitycheck.gstatic.com"),
        "{names:?}"
    );
    c.quit().await;
    device.shutdown().await;
}

/// Checks the file against qemu-tcpdump.c: the header (native byte order, v2.4, snaplen 65535,
/// LINKTYPE_ETHERNET), then whole records up to the end, each `incl_len <= 65535 <= ...`. Returns the
/// record count and the bytes of frames.
fn check_qemu_pcap(bytes: &[u8]) -> (usize, usize) {
    let u32_at = |i: usize| u32::from_ne_bytes(bytes[i..i + 4].try_into().unwrap());
    let u16_at = |i: usize| u16::from_ne_bytes(bytes[i..i + 2].try_into().unwrap());
    assert!(bytes.len() >= 24, "no header");
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "magic in the host's byte order");
    assert_eq!((u16_at(4), u16_at(6)), (2, 4), "version");
    assert_eq!((u32_at(8), u32_at(12)), (0, 0), "thiszone, sigfigs");
    assert_eq!(u32_at(16), 65535, "snaplen");
    assert_eq!(u32_at(20), 1, "LINKTYPE_ETHERNET");
    let (mut at, mut records, mut frames) = (24usize, 0usize, 0usize);
    while at < bytes.len() {
        assert!(bytes.len() - at >= 16, "a partial record header at {at}");
        let (usec, incl, orig) = (
            u32_at(at + 4),
            u32_at(at + 8) as usize,
            u32_at(at + 12) as usize,
        );
        assert!(
            usec < 1_000_000 && incl <= 65535 && incl <= orig,
            "record at {at}"
        );
        assert!(incl == orig || incl == 65535, "cut only at the snaplen");
        at += 16 + incl;
        frames += incl;
        records += 1;
    }
    assert_eq!(at, bytes.len(), "the last record runs past the end");
    (records, frames)
}

/// The capture belongs to the emulator, not to the client: a client that leaves mid-capture ends
/// its session (no task left behind) and leaves the capture running until another client stops it or
/// the handset stops, which closes the file as the emulator's exit does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_capture_leaves_no_stuck_task() {
    let (_d, token) = token_file(TOKEN);
    let handset = emulator(&token).await;
    let console = handset.console().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.pcap");
    let mut c = EmulatorConsole::connect(&settings(&handset, &token))
        .await
        .unwrap();
    c.capture_start(&first).await.unwrap();
    assert_eq!(console.sessions(), 1);
    drop(c); // no stop, no quit: the connection just goes away
    wait_for(|| console.sessions() == 0, "the session to end").await;
    assert!(console.capturing().await, "the capture outlives its client");
    handset.network().play(&HandsetEvent::SetupComplete).await;

    // Another client stops it: the first file is complete.
    let mut c = EmulatorConsole::connect(&settings(&handset, &token))
        .await
        .unwrap();
    c.capture_stop().await.unwrap();
    let (records, _) = check_qemu_pcap(&std::fs::read(&first).unwrap());
    assert!(records > 0);
    // A second start replaces the first capture; the handset's stop closes the second file.
    let second = dir.path().join("second.pcap");
    c.capture_start(&second).await.unwrap();
    c.capture_start(&second).await.unwrap();
    handset.network().play(&HandsetEvent::SetupComplete).await;
    // Many idle clients, one that floods without reading, and one mid-line: all ended by the stop.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(Raw::open(handset.console_port().unwrap()).await);
    }
    idle[0].s.write_all(b"ping").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), handset.shutdown())
        .await
        .expect("the handset stopped with clients connected");
    for mut raw in idle {
        let mut sink = Vec::new();
        let ended =
            tokio::time::timeout(Duration::from_secs(5), raw.s.read_to_end(&mut sink)).await;
        assert!(ended.is_ok(), "a client's connection outlived the handset");
    }
    let (records, _) = check_qemu_pcap(&std::fs::read(&second).unwrap());
    assert!(
        records > 0,
        "the handset's stop closed the file with its records"
    );
    drop(c);
}

/// The emulator writes a frame as it passes the tap, so `stop` right after the traffic still has all
/// of it: here the last exchange of the setup traffic (NTP, whose answer `play` waited for) is in the
/// file, round after round, with no pause before `stop`. (On an idle machine the recorder has read
/// every frame before `stop` arrives; what is still queued at `stop` under load is drained by it, which
/// this test does not force.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_crossed_before_stop_are_in_the_file() {
    let (_d, token) = token_file("");
    let handset = vhandset::start_emulator(
        HandsetConfig {
            profile: support::builtin("aosp-clean"),
            adb_port: 0,
        },
        EmulatorConfig {
            console_port: 0,
            token_file: Some(token.clone()),
        },
    )
    .await
    .unwrap();
    let mut c = EmulatorConsole::connect(&settings(&handset, &token))
        .await
        .unwrap();
    // The handset plays its boot traffic (an NTP query too) as it starts; under load that can still be
    // crossing when round 0 starts, so it must be over first or round 0 holds two answers.
    handset.network().wait_idle().await;
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let file = dir.path().join(format!("{round}.pcap"));
        c.capture_start(&file).await.unwrap();
        assert_eq!(
            handset
                .network()
                .play(&HandsetEvent::SetupComplete)
                .await
                .failed,
            0
        );
        c.capture_stop().await.unwrap();
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&file)
            .args([
                "-Y",
                "ntp.flags.mode == 4",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ])
            .output()
            .unwrap();
        let answers = String::from_utf8_lossy(&out.stdout).lines().count();
        assert_eq!(answers, 1, "round {round}: NTP answers in the file");
    }
    handset.shutdown().await;
}

/// Untrusted clients are bounded: a 17th client is closed at once, and one that never reads its
/// replies is dropped, while the others are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_too_slow_clients_are_dropped() {
    let (_d, token) = token_file("");
    let handset = emulator(&token).await;
    let port = handset.console_port().unwrap();
    let console = handset.console().unwrap();
    let mut clients = Vec::new();
    for _ in 0..vhandset::console::MAX_SESSIONS {
        let mut raw = Raw::open(port).await;
        raw.read(format!("{HELP_PROMPT}OK\r\n").len()).await;
        clients.push(raw);
    }
    let mut extra = Raw::open(port).await;
    assert!(
        extra.closed().await,
        "the 17th client is closed without a banner"
    );
    // One client asks for a lot and never reads: it is dropped, and a new client is served.
    let flood: Vec<u8> = b"help-verbose\n".repeat(50_000);
    let mut slow = clients.pop().unwrap();
    let writer = tokio::spawn(async move {
        let _ = slow.s.write_all(&flood).await;
        slow
    });
    wait_for(
        || console.sessions() < vhandset::console::MAX_SESSIONS,
        "the reader that does not read to be dropped",
    )
    .await;
    let mut fresh = Raw::open(port).await;
    assert_eq!(
        fresh.read(format!("{HELP_PROMPT}OK\r\n").len()).await,
        format!("{HELP_PROMPT}OK\r\n")
    );
    fresh.says(b"ping\n", "I am alive!\r\nOK\r\n").await;
    writer.abort();
    handset.shutdown().await;
}

/// `kill` answers as console.cpp's `do_kill` does, then the handset stops: adb and console ports
/// close; `shutdown` afterwards is quick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_stops_the_handset() {
    let (_d, token) = token_file("");
    let handset = emulator(&token).await;
    let (console_port, adb_port) = (handset.console_port().unwrap(), handset.port());
    let mut c = Raw::open(console_port).await;
    c.read(format!("{HELP_PROMPT}OK\r\n").len()).await;
    c.says(b"kill\n", "OK: killing emulator, bye bye\r\nOK\r\n")
        .await;
    assert!(c.closed().await);
    wait_for(|| handset.stopped(), "the handset to stop").await;
    for port in [console_port, adb_port] {
        let mut refused = false;
        for _ in 0..50 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(refused, "port {port} still accepts after kill");
    }
    tokio::time::timeout(Duration::from_secs(5), handset.shutdown())
        .await
        .expect("shutdown after kill");
}

/// The console's port pair is the emulator's: even console, adb next to it; anything else is refused
/// with the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_ports_follow_the_emulator_s_rule() {
    let (_d, token) = token_file("");
    let start = |console_port: u16, adb_port: u16| {
        let token = token.clone();
        async move {
            vhandset::start_emulator(
                HandsetConfig {
                    profile: support::builtin("aosp-clean"),
                    adb_port,
                },
                EmulatorConfig {
                    console_port,
                    token_file: Some(token),
                },
            )
            .await
        }
    };
    for (console, adb, says) in [
        (6001, 0, "is even"),
        (6000, 6005, "console port + 1"),
        (0, 6001, "give the console port"),
    ] {
        let e = start(console, adb)
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(says), "{console}/{adb}: {e}");
    }
    let h = start(0, 0).await.unwrap();
    let n = h.console_port().unwrap();
    assert_eq!((n % 2, h.port()), (0, n + 1));
    assert_eq!(h.emulator_serial().unwrap(), format!("emulator-{n}"));
    assert_eq!(h.serial(), format!("127.0.0.1:{}", n + 1));
    // The same pair again: taken, said so.
    let e = start(n, 0).await.err().expect("taken").to_string();
    assert!(e.contains("port in use"), "{e}");
    h.shutdown().await;
}

/// A normal user (no root, no capability) runs the console's capture: the handset's network and its
/// capture live in its own namespace.
#[test]
fn the_console_captures_as_a_normal_user() {
    support::rerun_unprivileged("emulator_console::unprivileged_child", &[]);
}

#[test]
#[ignore = "run by the_console_captures_as_a_normal_user as a normal user"]
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
    rt.block_on(async {
        let (_d, token) = token_file(TOKEN);
        let handset = emulator(&token).await;
        let mut c = EmulatorConsole::connect(&settings(&handset, &token))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.pcap");
        c.capture_start(&file).await.unwrap();
        assert_eq!(
            handset
                .network()
                .play(&HandsetEvent::SetupComplete)
                .await
                .failed,
            0
        );
        c.capture_stop().await.unwrap();
        let names = Names::from_tshark(&file).expect("tshark");
        assert!(names.dns.contains("activate.kestrelcloud.net"), "{names:?}");
        handset.shutdown().await;
    });
}

/// A handset on the host's loopback (the fallback where namespaces are forbidden) has no interface
/// of its own to tap: `network capture start` fails the way the emulator's does when a capture cannot
/// start — no line ending — and tattle's client turns it into the `-tcpdump` advice. The fallback
/// binds port 53 on the host, so it needs root: as a normal user the child checks the bind error.
#[test]
fn capture_without_a_private_network_is_refused_like_the_emulator() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "emulator_console::host_fallback_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env("TATTLE_VHANDSET_NET", "host")
        .env("TATTLE_UNPRIVILEGED_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run by capture_without_a_private_network_is_refused_like_the_emulator with TATTLE_VHANDSET_NET=host"]
fn host_fallback_child() {
    if !support::in_unprivileged_child() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_d, token) = token_file("");
        let handset = match vhandset::start_emulator(
            HandsetConfig {
                profile: Arc::new(vhandset::Profile::builtin("aosp-clean").unwrap()),
                adb_port: 0,
            },
            EmulatorConfig {
                console_port: 0,
                token_file: Some(token.clone()),
            },
        )
        .await
        {
            Ok(h) => h,
            Err(e) => {
                assert!(
                    unsafe { libc::geteuid() } != 0,
                    "root starts the fallback: {e}"
                );
                assert!(e.to_string().contains("CAP_NET_BIND_SERVICE"), "{e}");
                return;
            }
        };
        assert!(handset.network().private_netns().is_none());
        let mut raw = Raw::open(handset.console_port().unwrap()).await;
        raw.read(format!("{HELP_PROMPT}OK\r\n").len()).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.pcap");
        raw.says(
            format!("network capture start {}\n", file.display()).as_bytes(),
            "KO: could not start capture: Operation not supported",
        )
        .await;
        raw.says(b"ping\n", "I am alive!\r\nOK\r\n").await;
        assert!(!file.exists(), "a refused capture leaves no file");
        let mut c = EmulatorConsole::connect(&settings(&handset, &token))
            .await
            .unwrap();
        let e = c.capture_start(&file).await.expect_err("refused");
        let msg = e.to_string();
        assert!(matches!(e, ConsoleError::CaptureRefused { .. }), "{msg}");
        assert!(
            msg.contains("Operation not supported") && msg.contains("-tcpdump FILE"),
            "{msg}"
        );
        // The client saw the reply with no line ending, and the conversation goes on.
        assert!(c.command("ping").await.unwrap().is_ok());
        handset.shutdown().await;
    });
}

/// The client's reading of replies the console cannot give: a stubbed `network capture` that says
/// nothing (found in a fork of the emulator), a console that disappears mid-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_or_vanishing_consoles_are_clear_errors() {
    use tokio::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        // Two clients: the first gets silence for `network capture start`, the second is cut off.
        for round in 0..2 {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(format!("{HELP_PROMPT}OK\r\n").as_bytes())
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await;
            if round == 1 {
                drop(s);
            } else {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }
    });
    let quick = ConsoleSettings {
        reply_timeout: Duration::from_millis(800),
        ..ConsoleSettings::new(port)
    };
    let mut c = EmulatorConsole::connect(&quick).await.unwrap();
    let e = c.capture_start(Path::new("/tmp/x.pcap")).await.unwrap_err();
    assert!(
        matches!(e, ConsoleError::CaptureRefused { .. }) && e.to_string().contains("no answer"),
        "{e}"
    );
    let mut c = EmulatorConsole::connect(&quick).await.unwrap();
    let e = c.capture_stop().await.unwrap_err();
    assert!(
        matches!(e, ConsoleError::Gone { .. }) && e.to_string().contains("went away"),
        "{e}"
    );
    server.abort();
    // Reply outcome types are public for the capture source: an unterminated KO is told apart.
    assert_ne!(Outcome::Ko("x".into()), Outcome::UnterminatedKo("x".into()));
}

async fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// `tattle run --capture emulator` end to end: the handset registered as `emulator-N` with Debian's
/// adb server, tattle finds the console from the serial, reads the token from `$HOME` as the
/// emulator's own users do, starts and stops `network capture`, and analyses the file; the cloud
/// build's SMS leak is found in its step. Then the console going away mid-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tattle_run_captures_through_the_emulator_console() {
    let (home, token) = token_file(TOKEN);
    let adb = PrivateAdbServer::start().await.expect("private adb server");
    let device = registered_emulator("miui-cloud-default", &token, &adb).await;
    let serial = device.adb_serial().to_string();
    let port = adb.server().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let tattle = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
            .args([
                "run",
                "send-sms",
                "--device",
                &serial,
                "--capture",
                "emulator",
            ])
            .args(["--format", "json", "--runs"])
            .arg(dir.path().join("runs"))
            .arg("--snapshots")
            .arg(dir.path().join("snapshots"))
            .args(extra)
            .env("ANDROID_ADB_SERVER_PORT", &port)
            .env("HOME", home.path())
            .output()
            .unwrap()
    };
    let out = tattle(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings, no accepted snapshot\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (doc, _) = support::json_document(&stdout);
    assert_eq!(doc["capture_source"]["source"], "emulator");
    let outcome = doc["outcome"].to_string();
    assert!(
        outcome.contains("<imei>") && outcome.contains("msg.kestrelcloud.net"),
        "{outcome}"
    );
    let run_dir = std::path::PathBuf::from(doc["run_dir"].as_str().unwrap());
    assert!(run_dir.join("capture.pcap").exists());
    assert!(
        !run_dir.join("emulator-capture.pcap").exists(),
        "the emulator's own file is not kept twice"
    );
    for v in support::profile_values("miui-cloud-default") {
        assert!(!stdout.contains(&v), "raw identifier in the output");
    }

    // A wrong token: refused before the run, with the fix.
    std::fs::write(&token, "another-token-xx").unwrap();
    let wrong = tempfile::tempdir().unwrap();
    std::fs::write(
        wrong.path().join(".emulator_console_auth_token"),
        "not-the-token-00",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args([
            "run",
            "send-sms",
            "--device",
            &serial,
            "--capture",
            "emulator",
        ])
        .arg("--runs")
        .arg(dir.path().join("runs"))
        .env("ANDROID_ADB_SERVER_PORT", &port)
        .env("HOME", wrong.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused authentication"), "{err}");
    assert!(
        !err.contains("not-the-token-00"),
        "the token is never shown"
    );
    device.shutdown().await;
    drop(adb);
}

/// `sms send` on the handset's console delivers to its inbox, with the console's escapes and its
/// refusals; and the `receive-sms` step drives it through tattle's one console client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_send_reaches_the_inbox_and_receive_sms_uses_it() {
    let (home, token) = token_file(TOKEN);
    let adb = PrivateAdbServer::start().await.expect("private adb server");
    let device = registered_emulator("aosp-clean", &token, &adb).await;
    let serial = device.adb_serial().to_string();
    let mut c = EmulatorConsole::connect(
        &ConsoleSettings::for_device(&serial, None)
            .unwrap()
            .with_token_file(&token),
    )
    .await
    .unwrap();
    // console.cpp do_sms_send's refusals, word for word.
    let ko = |r: tattle::emulator_console::Reply| match r.outcome {
        Outcome::Ko(k) | Outcome::UnterminatedKo(k) => k,
        Outcome::Ok => panic!("expected KO"),
    };
    assert!(
        ko(c.command("sms send +31").await.unwrap())
            .contains("missing argument, try 'sms send <phonenumber> <text message>'")
    );
    assert!(
        ko(c.command("sms send 12a34 hi").await.unwrap())
            .contains("bad phone number format, must be [+](0-9)*")
    );
    let bad = c.command("sms send +31 a\\qb").await.unwrap();
    assert!(ko(bad.clone()).contains("badly formatted text"));
    assert!(
        bad.lines
            .iter()
            .any(|l| l.contains("anything else is an error"))
    );
    assert!(
        c.command("sms send +31600000002 caf\\u00e9\\nline2")
            .await
            .unwrap()
            .is_ok()
    );
    c.quit().await;
    let inbox = device
        .adb()
        .shell("content query --uri content://sms/inbox --projection address:body")
        .await
        .unwrap()
        .stdout_text();
    assert!(
        inbox.contains("address=+31600000002, body=café\nline2"),
        "{inbox}"
    );

    // The scenario step, through the CLI (the token from $HOME as the emulator's users keep it).
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("rx.yaml");
    std::fs::write(
        &yaml,
        "name: rx\nsteps:\n  - receive-sms: { from: \"+6598765432\", body: \"tattle {run_id}\" }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tattle"))
        .arg("run")
        .arg(&yaml)
        .args(["--device", &serial, "--format", "json", "--runs"])
        .arg(dir.path().join("runs"))
        .arg("--snapshots")
        .arg(dir.path().join("snapshots"))
        .env("ANDROID_ADB_SERVER_PORT", adb.server().port().to_string())
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (doc, _) = support::json_document(&stdout);
    assert!(
        doc["interrupted"].is_null(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inbox = device
        .adb()
        .shell("content query --uri content://sms/inbox --projection address")
        .await
        .unwrap()
        .stdout_text();
    assert!(inbox.contains("address=+6598765432"), "{inbox}");
    device.shutdown().await;
    drop(adb);
}
