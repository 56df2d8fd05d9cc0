//! Policies and evidence end to end: `tattle run --policy --sign` on a virtual handset, the
//! violation's frame looked up by tshark, the manifest's hashes by sha256sum, its signature by
//! Debian's `minisign`, `tattle check` on the stored run, and `tattle verify` catching tampering.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{Bench, json_document, profile_values};

fn tattle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tattle"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A key pair made by the real `minisign -G` (without a password: what CI uses).
fn minisign_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let (public, secret) = (dir.join("tattle.pub"), dir.join("tattle.key"));
    let out = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .expect("minisign (apt-get install minisign)");
    assert!(out.status.success(), "{}", text(&out));
    (public, secret)
}

fn minisign_verifies(file: &Path, public: &Path) -> (bool, String) {
    let out = Command::new("minisign")
        .arg("-Vm")
        .arg(file)
        .arg("-p")
        .arg(public)
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

/// What tshark says frame `n` of `capture` is: `(http.host, frame.protocols)`.
fn tshark_frame(capture: &Path, n: u64) -> (String, String) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-Y", &format!("frame.number == {n}")])
        .args([
            "-T",
            "fields",
            "-e",
            "http.host",
            "-e",
            "dns.qry.name",
            "-e",
            "frame.protocols",
        ])
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("tshark");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut fields = line.split('\t');
    let host = fields.next().unwrap_or_default().to_string();
    let qname = fields.next().unwrap_or_default().to_string();
    let protocols = fields.next().unwrap_or_default().to_string();
    (if host.is_empty() { qname } else { host }, protocols)
}

fn sha256sum(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// `doc` validates against the checked-in `schema/NAME` (docs/json-schema.md).
fn assert_valid(name: &str, doc: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{doc:#}");
}

fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `tattle ARGS` printed one JSON document (exit code aside).
fn json_output(args: &[&std::ffi::OsStr], port: &str) -> serde_json::Value {
    let out = tattle()
        .args(args)
        .env("ANDROID_ADB_SERVER_PORT", port)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

const DENY_IMEI: &str = "\
rules:
  - name: no-imei-to-vendor
    deny: { identifier: imei, to: '*.kestrelcloud.net' }
  - name: expected-hosts-at-setup
    allow: ['*.kestrelcloud.net', '*.gstatic.com', time.android.com]
    steps: [fresh-setup]
";

const ALLOW_ONLY_VENDOR: &str = "\
rules:
  - name: vendor-only
    allow: ['*.kestrelcloud.net']
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_run_signed_checked_and_verified() {
    let bench = Bench::start(&["miui-cloud-default"]).await;
    let serial = bench.handsets[0].serial();
    let port = bench.server().port().to_string();
    let work = tempfile::tempdir().unwrap();
    let (public, secret) = minisign_keys(work.path());
    let policy = work.path().join("policy.yaml");
    std::fs::write(&policy, DENY_IMEI).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runs = work.path().join("runs");

    let out = tokio::task::block_in_place(|| {
        tattle()
            .args([
                "run", "send-sms", "--device", &serial, "--format", "json", "--runs",
            ])
            .arg(&runs)
            .arg("--snapshots")
            .arg(repo.join("snapshots"))
            .arg("--policy")
            .arg(&policy)
            .arg("--sign")
            .arg(&secret)
            .env("ANDROID_ADB_SERVER_PORT", &port)
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Equal to the accepted snapshot, but the policy is broken: exit 1.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (doc, _) = json_document(&stdout);
    assert_eq!(doc["comparison"], "equal", "{stdout}");
    let verdict = &doc["policy"];
    assert_eq!(verdict["passed"], false);
    let violations = verdict["violations"].as_array().unwrap();
    assert!(!violations.is_empty());
    let run_dir = PathBuf::from(doc["run_dir"].as_str().unwrap());
    let capture = run_dir.join("capture.pcap");
    for v in violations {
        assert_eq!(v["rule"], "no-imei-to-vendor", "{v}");
        assert_eq!(v["step"], "4 send-sms");
        assert_eq!(v["identifier"], "<imei>");
        // The frame named is the HTTP request to that host, as tshark reads the kept capture.
        let (host, protocols) = tshark_frame(&capture, v["frame"].as_u64().unwrap());
        assert_eq!(host, v["host"].as_str().unwrap(), "{v}");
        assert!(protocols.contains("http"), "{protocols}");
    }
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(run_dir.join("policy.json")).unwrap()
        )
        .unwrap(),
        *verdict
    );
    // The run's JUnit report has a case per rule: the broken one failed, the kept one passed.
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    let case = |rule: &str| {
        let at = junit
            .find(&format!("name=\"{rule} ("))
            .unwrap_or_else(|| panic!("no case for {rule}: {junit}"));
        junit[at..].split("<testcase").next().unwrap().to_string()
    };
    assert!(case("no-imei-to-vendor").contains("<failure"), "{junit}");
    assert!(
        !case("expected-hosts-at-setup").contains("<failure"),
        "{junit}"
    );

    // Every document of the run validates against its checked-in schema; so do the other
    // commands' documents on the same run.
    assert_valid("run.schema.json", &doc);
    assert_valid(
        "run-record.schema.json",
        &json_file(&run_dir.join("run.json")),
    );
    assert_valid(
        "evidence.schema.json",
        &json_file(&run_dir.join("evidence.json")),
    );
    assert_valid(
        "manifest.schema.json",
        &json_file(&run_dir.join("manifest.json")),
    );
    assert_valid(
        "policy.schema.json",
        &json_file(&run_dir.join("policy.json")),
    );
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let analyze = tokio::task::block_in_place(|| {
        json_output(
            &[
                os("analyze"),
                os("--format"),
                os("json"),
                capture.as_os_str(),
            ],
            &port,
        )
    });
    assert_valid("analyze.schema.json", &analyze);
    let a = repo.join("snapshots/send-sms@kestrel-wren-TP1A.220624.014-V14.0.3.0.TGLMIXM.snap");
    let b = repo.join("snapshots/send-sms@kestrel-wren-TP1A.220624.014-V14.0.4.0.TGLMIXM.snap");
    let diff = json_output(
        &[
            os("diff"),
            os("--format"),
            os("json"),
            a.as_os_str(),
            b.as_os_str(),
        ],
        &port,
    );
    assert_eq!(diff["same"], false);
    assert_valid("diff.schema.json", &diff);
    let devices = tokio::task::block_in_place(|| {
        json_output(&[os("devices"), os("--format"), os("json")], &port)
    });
    assert!(!devices["devices"].as_array().unwrap().is_empty());
    assert_valid("devices.schema.json", &devices);

    // The manifest: every file, hashes as sha256sum computes them, no raw identifier.
    let manifest_path = run_dir.join("manifest.json");
    let manifest_text = std::fs::read_to_string(&manifest_path).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest_text).unwrap();
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for file in [
        "capture.pcap",
        "run.json",
        "evidence.json",
        "outcome.snap",
        "report.txt",
        "policy.json",
    ] {
        assert!(listed.contains(&file), "{file} not in {listed:?}");
    }
    for f in manifest["files"].as_array().unwrap() {
        let path = run_dir.join(f["path"].as_str().unwrap());
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            sha256sum(&path),
            "{}",
            path.display()
        );
    }
    assert_eq!(manifest["tattle_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["scenario"]["name"], "send-sms");
    let builtin = std::fs::read(repo.join("scenarios/send-sms.yaml")).unwrap();
    assert_eq!(
        manifest["scenario"]["sha256"].as_str().unwrap(),
        tattle::evidence::sha256_hex(&builtin)
    );
    assert!(
        manifest["device"]["fingerprint"]
            .as_str()
            .unwrap()
            .contains("V14.0.3.0.TGLMIXM")
    );
    assert!(manifest["device"].get("serial").is_none());
    assert_eq!(manifest["clock"]["timestamps"], "device");
    assert_eq!(manifest["capture_source"]["source"], "device");
    let values = profile_values("miui-cloud-default");
    for file in ["manifest.json", "policy.json", "evidence.json", "run.json"] {
        let content = std::fs::read_to_string(run_dir.join(file)).unwrap();
        for value in &values {
            assert!(
                !content.contains(value.as_str()),
                "raw identifier in {file}"
            );
        }
    }
    for value in &values {
        assert!(!stdout.contains(value.as_str()), "raw identifier on stdout");
    }

    // Debian's minisign verifies tattle's signature; tattle verifies its own too.
    let (ok, said) = minisign_verifies(&manifest_path, &public);
    assert!(ok, "{said}");
    assert!(said.contains("manifest of run"), "{said}");
    let out = tattle()
        .arg("verify")
        .arg(&run_dir)
        .arg("--key")
        .arg(&public)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("signature: good"), "{}", text(&out));

    // `tattle check` re-judges the stored run: the same verdict; another policy, another verdict.
    let out = tattle()
        .args(["check", "--format", "json"])
        .arg(&run_dir)
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (again, _) = json_document(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(again, *verdict);
    assert_valid("policy.schema.json", &again);
    let vendor_only = work.path().join("vendor-only.yaml");
    std::fs::write(&vendor_only, ALLOW_ONLY_VENDOR).unwrap();
    let out = tattle()
        .arg("check")
        .arg(&run_dir)
        .arg("--policy")
        .arg(&vendor_only)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("rule `vendor-only`"), "{said}");
    assert!(
        said.contains("time.android.com contacted over dns"),
        "{said}"
    );
    let pass = work.path().join("pass.yaml");
    std::fs::write(
        &pass,
        "rules:\n  - deny: { identifier: imei, to: '*.xiaomi.com' }\n",
    )
    .unwrap();
    let out = tattle()
        .arg("check")
        .arg(&run_dir)
        .arg("--policy")
        .arg(&pass)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A broken policy file is a usage error, with its position.
    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, "rules:\n  - deny: { identifier: imie }\n").unwrap();
    let out = tattle()
        .arg("check")
        .arg(&run_dir)
        .arg("--policy")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("bad.yaml:2:25: error: unknown identifier kind `imie`"),
        "{}",
        text(&out)
    );

    // Tampering: a changed file is named by `verify` (and refused by `check`)...
    let evidence = run_dir.join("evidence.json");
    let original = std::fs::read(&evidence).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"\n");
    std::fs::write(&evidence, &changed).unwrap();
    let out = tattle().arg("verify").arg(&run_dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("evidence.json: changed"),
        "{}",
        text(&out)
    );
    let out = tattle()
        .arg("check")
        .arg(&run_dir)
        .arg("--policy")
        .arg(&pass)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("tampered"), "{}", text(&out));
    std::fs::write(&evidence, &original).unwrap();
    // ... and a changed manifest breaks the signature, for minisign and for tattle alike.
    std::fs::write(
        &manifest_path,
        manifest_text.replace("send-sms", "send-sms "),
    )
    .unwrap();
    let (ok, said) = minisign_verifies(&manifest_path, &public);
    assert!(!ok, "{said}");
    let out = tattle()
        .arg("verify")
        .arg(&run_dir)
        .arg("--key")
        .arg(&public)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("manifest.json.minisig: does not verify"),
        "{}",
        text(&out)
    );
    bench.finish().await;
}

#[test]
fn signing_needs_a_usable_key_before_anything_runs() {
    let work = tempfile::tempdir().unwrap();
    let (public, _) = minisign_keys(work.path());
    // The public key is no secret key: refused before any device is looked for (exit 2).
    let out = tattle()
        .args(["run", "send-sms", "--sign"])
        .arg(&public)
        .env("ANDROID_ADB_SERVER_PORT", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not a minisign secret key"),
        "{}",
        text(&out)
    );
    let out = tattle().arg("verify").arg(work.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no manifest.json"), "{}", text(&out));
}
