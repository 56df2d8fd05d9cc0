//! The snapshot workflow as a user drives it: `tattle review` in a real pseudo-terminal (a pty
//! from the kernel, driven by expectrl: keys in, the screen out), `tattle accept` / `reject` /
//! `pending` for scripts, with stale and orphaned snapshots reported. The files are the committed
//! snapshots' (written by insta), so what is reviewed is what insta wrote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect as _, Session};

use crate::support::profile_values;

const DEFAULT_FW: &str = "kestrel-wren-TP1A.220624.014-V14.0.3.0.TGLMIXM";
const OPTIN_FW: &str = "kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM";
const AOSP_FW: &str = "Android-vhandset-AP3A.240905.015-12350235";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed(scenario: &str, firmware: &str) -> String {
    std::fs::read_to_string(repo().join(format!("snapshots/{scenario}@{firmware}.snap"))).unwrap()
}

/// A project folder with three pending snapshots — a new one (add-contact), two changed ones
/// (fresh-setup: other hosts; send-sms: the opt-in build's outcome over the default build's) —,
/// the run directory that produced send-sms's, and a stale snapshot of a scenario that is gone.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let snaps = dir.path().join("snapshots");
        std::fs::create_dir_all(&snaps).unwrap();
        let put = |name: String, text: String| std::fs::write(snaps.join(name), text).unwrap();
        put(
            format!("add-contact@{OPTIN_FW}.snap.new"),
            committed("add-contact", OPTIN_FW),
        );
        put(
            format!("fresh-setup@{OPTIN_FW}.snap"),
            committed("fresh-setup", AOSP_FW),
        );
        put(
            format!("fresh-setup@{OPTIN_FW}.snap.new"),
            committed("fresh-setup", OPTIN_FW),
        );
        put(
            format!("send-sms@{OPTIN_FW}.snap"),
            committed("send-sms", DEFAULT_FW),
        );
        put(
            format!("send-sms@{OPTIN_FW}.snap.new"),
            committed("send-sms", OPTIN_FW),
        );
        put(
            "retired@fw.snap".into(),
            committed("send-sms", DEFAULT_FW).replace("scenario: send-sms", "scenario: retired"),
        );
        let run = dir
            .path()
            .join(format!("runs/send-sms@{OPTIN_FW}-20261130T101500Z-0"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("outcome.snap"), committed("send-sms", OPTIN_FW)).unwrap();
        Project { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn snap(&self, name: &str) -> PathBuf {
        self.path("snapshots").join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tattle"));
        cmd.args(args)
            .arg("--scenarios")
            .arg(repo().join("scenarios"))
            .current_dir(self.dir.path());
        cmd
    }
}

/// `tattle review` on a pty; returns the session.
fn review(project: &Project) -> OsSession {
    let mut session = Session::spawn(project.command(&["review"])).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session
}

fn exit_code(session: &OsSession) -> Option<i32> {
    match session.get_process().wait().unwrap() {
        WaitStatus::Exited(_, code) => Some(code),
        _ => None,
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[test]
fn review_in_a_pseudo_terminal_accepts_rejects_and_skips() {
    let project = Project::new();
    let mut s = review(&project);
    // 1/3: a first snapshot, shown as the outcome it records.
    s.expect(format!("Reviewing [1/3]: snapshots/add-contact@{OPTIN_FW}.snap.new").as_str())
        .unwrap();
    s.expect("orphaned").unwrap();
    s.expect("no accepted snapshot yet").unwrap();
    s.expect("contacted api.kestrelcloud.net").unwrap();
    s.expect("accept   keep the new outcome").unwrap();
    s.send("a").unwrap();
    // 2/3: a change, said in sentences, then the line diff.
    s.expect("Reviewing [2/3]").unwrap();
    s.expect(
        "Build B contacts activate.kestrelcloud.net (dns and tls) during setup; build A did not.",
    )
    .unwrap();
    s.expect("www.google.com").unwrap();
    s.expect("quit     stop").unwrap();
    s.send("r").unwrap();
    // 3/3: the opt-in build no longer leaks; its run is kept. A stray key asks again.
    s.expect("Reviewing [3/3]").unwrap();
    s.expect(format!("From run: runs/send-sms@{OPTIN_FW}-20261130T101500Z-0").as_str())
        .unwrap();
    s.expect(
        "Build B no longer sends <imei> (plain and md5, in the clear over HTTP) to msg.kestrelcloud.net when an SMS is sent.",
    )
    .unwrap();
    s.expect("-  - identifier: <imei>").unwrap();
    s.expect("skip     keep both").unwrap();
    s.send("x").unwrap();
    s.expect("press a, r, s or q").unwrap();
    s.send("s").unwrap();
    s.expect("tattle review finished").unwrap();
    s.expect("accepted").unwrap();
    s.expect("rejected").unwrap();
    s.expect("skipped (still pending)").unwrap();
    s.expect("stale: snapshots/retired@fw.snap").unwrap();
    let rest = s.expect(Eof).unwrap();
    let rest = String::from_utf8_lossy(rest.before()).into_owned();
    assert_eq!(exit_code(&s), Some(1), "something was skipped: {rest}");

    // Accepted: the .snap.new became the .snap, byte for byte.
    let add = project.snap(&format!("add-contact@{OPTIN_FW}.snap"));
    assert_eq!(read(&add), Some(committed("add-contact", OPTIN_FW)));
    assert!(
        !project
            .snap(&format!("add-contact@{OPTIN_FW}.snap.new"))
            .exists()
    );
    // Rejected: the .snap.new is gone, the .snap as it was.
    let setup = project.snap(&format!("fresh-setup@{OPTIN_FW}.snap"));
    assert_eq!(read(&setup), Some(committed("fresh-setup", AOSP_FW)));
    assert!(
        !project
            .snap(&format!("fresh-setup@{OPTIN_FW}.snap.new"))
            .exists()
    );
    // Skipped: both stay.
    let sms = project.snap(&format!("send-sms@{OPTIN_FW}.snap"));
    assert_eq!(read(&sms), Some(committed("send-sms", DEFAULT_FW)));
    assert!(
        project
            .snap(&format!("send-sms@{OPTIN_FW}.snap.new"))
            .exists()
    );

    // Again: quit leaves it pending (1); then accept it (0, nothing left).
    let mut s = review(&project);
    s.expect("Reviewing [1/1]").unwrap();
    s.expect("quit     stop").unwrap();
    s.send("q").unwrap();
    s.expect("skipped (still pending)").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), Some(1));
    assert_eq!(read(&sms), Some(committed("send-sms", DEFAULT_FW)));
    let mut s = review(&project);
    s.expect("Reviewing [1/1]").unwrap();
    s.expect("quit     stop").unwrap();
    s.send("a").unwrap();
    s.expect("tattle review finished").unwrap();
    let rest = s.expect(Eof).unwrap();
    let rest = String::from_utf8_lossy(rest.before()).into_owned();
    assert!(!rest.contains("skipped"), "{rest}");
    assert_eq!(exit_code(&s), Some(0));
    assert_eq!(read(&sms), Some(committed("send-sms", OPTIN_FW)));
}

#[test]
fn accept_reject_and_pending_for_scripts() {
    let project = Project::new();
    let run = |args: &[&str]| {
        let out = project.command(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for value in profile_values("miui-cloud-default") {
            assert!(!text.contains(&value), "raw identifier: {text}");
        }
        (out.status.code(), text)
    };
    // Not a terminal: review says what to use instead.
    let (code, text) = run(&["review"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("tattle accept"), "{text}");

    let (code, text) = run(&["pending"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "pending (new): snapshots/add-contact@{OPTIN_FW}.snap.new"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "pending (changed, from runs/send-sms@{OPTIN_FW}-20261130T101500Z-0): snapshots/send-sms@{OPTIN_FW}.snap.new"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "orphaned: snapshots/fresh-setup@{OPTIN_FW}.snap.new"
        )),
        "{text}"
    );
    assert!(
        !text.contains(&format!("orphaned: snapshots/send-sms@{OPTIN_FW}")),
        "{text}"
    );
    assert!(text.contains("stale: snapshots/retired@fw.snap"), "{text}");

    // By name, by .snap path; unknown names are usage errors and change nothing.
    let (code, text) = run(&["accept", &format!("send-sms@{OPTIN_FW}")]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        read(&project.snap(&format!("send-sms@{OPTIN_FW}.snap"))),
        Some(committed("send-sms", OPTIN_FW))
    );
    let (code, text) = run(&["reject", "nothing@here"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("tattle pending"), "{text}");
    let (code, text) = run(&["reject", &format!("snapshots/fresh-setup@{OPTIN_FW}.snap")]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        read(&project.snap(&format!("fresh-setup@{OPTIN_FW}.snap"))),
        Some(committed("fresh-setup", AOSP_FW))
    );
    // No names: all that is left.
    let (code, text) = run(&["accept"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        project
            .snap(&format!("add-contact@{OPTIN_FW}.snap"))
            .exists()
    );
    let (code, text) = run(&["pending"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no pending snapshots"), "{text}");
    assert!(text.contains("stale: snapshots/retired@fw.snap"), "{text}");
}
