//! Shared test set-up: a private adb server (never the user's) and virtual handsets registered with it
//! (`tattle::virtual_device`), or started alone.

use std::sync::Arc;

use tattle::adb::{AdbDevice, AdbServer, PrivateAdbServer};
use tattle::vhandset::{self, HandsetConfig, Profile, RunningHandset};
use tattle::virtual_device::VirtualDevice;

/// A private adb server with virtual handsets registered with it. Shuts everything down on `finish`.
pub struct Bench {
    pub adb: PrivateAdbServer,
    pub handsets: Vec<VirtualDevice>,
}

impl Bench {
    pub async fn start(profiles: &[&str]) -> Bench {
        let adb = PrivateAdbServer::start().await.expect("private adb server");
        let mut handsets = Vec::new();
        for name in profiles {
            let handset = VirtualDevice::start(builtin(name), adb.server())
                .await
                .expect("virtual handset registered with adb");
            handsets.push(handset);
        }
        Bench { adb, handsets }
    }

    pub fn server(&self) -> &AdbServer {
        self.adb.server()
    }

    /// The first handset.
    pub fn handset(&self) -> &VirtualDevice {
        &self.handsets[0]
    }

    /// The first handset as the adb server serves it.
    pub fn device(&self) -> AdbDevice {
        self.handset().adb()
    }

    /// Disconnects and stops every handset still here, then the adb server.
    pub async fn finish(self) {
        for h in self.handsets {
            h.shutdown().await;
        }
    }
}

/// A built-in firmware profile.
pub fn builtin(name: &str) -> Arc<Profile> {
    Arc::new(Profile::builtin(name).expect("built-in profile"))
}

/// A virtual handset on a free port that no adb server knows: for tests that speak the ADB transport
/// themselves, or put something between the server and the handset.
pub async fn unregistered_handset(profile: &str) -> RunningHandset {
    vhandset::start(HandsetConfig {
        profile: builtin(profile),
        adb_port: 0,
    })
    .await
    .expect("virtual handset")
}

/// Every raw value a profile holds, for "never written anywhere" checks.
pub fn profile_values(name: &str) -> Vec<String> {
    Profile::builtin(name)
        .expect("profile")
        .identifiers
        .values()
        .cloned()
        .collect()
}

/// A JSON document printed by tattle, parsed, with its top-level field names.
pub fn json_document(text: &str) -> (serde_json::Value, std::collections::BTreeSet<String>) {
    let doc: serde_json::Value = serde_json::from_str(text).expect("one JSON document");
    let keys = doc
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    (doc, keys)
}

/// `len` pseudo-random bytes (xorshift64), reproducible from `seed`: binary test payloads.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs the ignored test `child` of this binary again as a normal user — `nobody` through setpriv
/// (which drops every capability with the uid change) when the suite runs as root, as is when not —
/// behind `wrapper` (a command that execs its arguments), and asserts it passed.
pub fn rerun_unprivileged(child: &str, wrapper: &[&str]) {
    drop(rerun_unprivileged_keeping_home(child, wrapper));
}

/// [`rerun_unprivileged`], returning the child's HOME: what the child left there (a capture) is
/// the parent's to read.
pub fn rerun_unprivileged_keeping_home(child: &str, wrapper: &[&str]) -> tempfile::TempDir {
    let exe = std::env::current_exe().unwrap();
    let mut argv: Vec<String> = Vec::new();
    if unsafe { libc::geteuid() } == 0 {
        argv.extend(
            [
                "setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--",
            ]
            .map(String::from),
        );
    }
    argv.extend(wrapper.iter().map(|s| s.to_string()));
    argv.push(exe.display().to_string());
    argv.extend(["--exact", child, "--ignored", "--test-threads=1"].map(String::from));
    let home = tempfile::tempdir().unwrap();
    // The child writes its HOME (tshark keeps its profile there): as root, hand it to `nobody`;
    // never open it to other users (they could plant tshark plugins or adb keys in it).
    if unsafe { libc::geteuid() } == 0 {
        let path = std::ffi::CString::new(home.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: chown(2) on a path we just created.
        assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
    }
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env("TATTLE_UNPRIVILEGED_CHILD", "1")
        .env("HOME", home.path())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{child} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    home
}

pub fn in_unprivileged_child() -> bool {
    std::env::var_os("TATTLE_UNPRIVILEGED_CHILD").is_some()
}

/// The wrapper that runs a test in a user + network namespace of its own as the same (normal) user,
/// keeping the namespace's capabilities across exec (so the host's tcpdump may capture there without
/// root, and the test may bind low ports). Call [`loopback_up`] first thing inside.
pub const OWN_NETWORK: &[&str] = &[
    "unshare",
    "--user",
    "--map-current-user",
    "--net",
    "--keep-caps",
];

/// Brings up `lo` in the current network namespace (a new one starts with it down).
pub fn loopback_up() {
    // SAFETY: two ioctls on a fresh datagram socket with a zeroed ifreq naming "lo".
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(s >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        assert_eq!(libc::ioctl(s, libc::SIOCGIFFLAGS as _, &mut req), 0);
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(
            libc::ioctl(s, libc::SIOCSIFFLAGS as _, &mut req),
            0,
            "lo up: {}",
            std::io::Error::last_os_error()
        );
        libc::close(s);
    }
}

/// tshark's output rows split at tabs (`-T fields` prints one row per packet): `args` as on its command
/// line. A tshark that fails fails the test with its stderr.
pub fn tshark_rows<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<Vec<String>> {
    let out = std::process::Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}
