//! `tattle analyze` end to end: the real binary on a real tcpdump capture (crates/tattle-analysis/tests/data/):
//! exit codes, text and versioned JSON, stdin, YAML identifiers, and no identifier value in any output.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use md5::Digest as _;

const IMEI: &str = "356938035643809";
const PHONE: &str = "+6598765432";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/tattle-analysis/tests/data/http-imei.pcap")
}

fn tattle(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tattle binary");
    if let Some(bytes) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write stdin");
    }
    child.wait_with_output().expect("tattle output")
}

/// Every form of the values a careless output could show.
fn assert_no_value(out: &Output) {
    let md5 = hex::encode(md5::Md5::digest(IMEI.as_bytes()));
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        for needle in [&IMEI[..14], "6598765432", "98765432", md5.as_str()] {
            assert!(!text.contains(needle), "output shows a value:\n{text}");
        }
    }
}

#[test]
fn json_and_text_report_findings_without_values() {
    let f = fixture();
    let f = f.to_str().expect("path");
    let ids = [
        "--id",
        &format!("imei={IMEI}"),
        "--id",
        &format!("phone_number={PHONE}"),
    ];
    let mut args = vec!["analyze", f, "--format", "json"];
    args.extend(ids.iter().map(|s| &**s));
    let json = tattle(&args, None);
    assert_eq!(
        json.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    assert_no_value(&json);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(doc["format_version"], 3);
    // No key log, no TLS: nothing was seen decrypted.
    assert_eq!(doc["keylog"]["files"], serde_json::json!([]));
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["tls"].is_null())
    );
    assert_eq!(doc["frames"], 8);
    let findings = doc["findings"].as_array().expect("findings");
    assert!(!findings.is_empty());
    for f in findings {
        for key in [
            "identifier",
            "encoding",
            "host",
            "protocol",
            "location",
            "flows",
            "first_frame",
            "frames",
        ] {
            assert!(!f[key].is_null(), "{key} missing in {f}");
        }
    }
    assert!(
        findings
            .iter()
            .any(|f| f["identifier"] == "imei" && f["encoding"] == "plain")
    );
    let hosts = doc["hosts"].as_array().expect("hosts");
    assert!(
        hosts
            .iter()
            .all(|h| !h["how"].as_array().unwrap().is_empty())
    );
    assert!(doc["summary"]["readable_bytes"].as_u64().unwrap() > 0);

    let mut args = vec!["analyze", f];
    args.extend(ids.iter().map(|s| &**s));
    let text = tattle(&args, None);
    assert_eq!(text.status.code(), Some(1));
    assert_no_value(&text);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("<imei> as plain"), "{t}");
    assert!(
        t.contains("finding(s) in") && t.contains("readable;"),
        "{t}"
    );

    // The same capture through a pipe gives the same document.
    let bytes = std::fs::read(fixture()).expect("fixture");
    let mut args = vec!["analyze", "-", "--format", "json"];
    args.extend(ids.iter().map(|s| &**s));
    let piped = tattle(&args, Some(&bytes));
    assert_eq!(piped.status.code(), Some(1));
    assert_eq!(piped.stdout, json.stdout);
}

#[test]
fn yaml_identifiers_and_a_clean_capture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = dir.path().join("ids.yaml");
    // An unquoted IMEI is a YAML integer; a list gives several values of one kind.
    std::fs::write(
        &yaml,
        format!("imei: {IMEI}\nphone_number: [\"{PHONE}\", \"+6500000000\"]\n"),
    )
    .expect("yaml");
    let f = fixture();
    let out = tattle(
        &[
            "analyze",
            f.to_str().unwrap(),
            "--identifiers",
            yaml.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_value(&out);
    let clean = tattle(
        &[
            "analyze",
            f.to_str().unwrap(),
            "--id",
            "email=nobody@example.org",
        ],
        None,
    );
    assert_eq!(clean.status.code(), Some(0));
    let t = String::from_utf8_lossy(&clean.stdout);
    assert!(t.contains("no findings in") && t.contains("opaque"), "{t}");
}

#[test]
fn usage_and_environment_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_pcap = dir.path().join("notes.txt");
    std::fs::write(&not_pcap, "hello, this is not a capture").expect("write");
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "- just\n- a list\n").expect("write");
    let f = fixture();
    let f = f.to_str().unwrap();
    for args in [
        vec!["analyze", "/nonexistent/capture.pcap"],
        vec!["analyze", not_pcap.to_str().unwrap()],
        vec!["analyze", f, "--id", "IMEI=1"],
        vec!["analyze", f, "--id", "imei"],
        vec!["analyze", f, "--identifiers", bad_yaml.to_str().unwrap()],
        vec!["analyze", f, "--format", "xml"],
    ] {
        let out = tattle(&args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
    }
    let empty = tattle(&["analyze", "-"], Some(b""));
    assert_eq!(empty.status.code(), Some(2));
}
