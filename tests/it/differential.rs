//! `tattle run --differential N` through the real adb server on the `differential-lab` virtual
//! handset, whose HTTPS requests carry the planted values as typed, base64, hex, gzip-compressed
//! and hashed, beside a constant-size and a random-size request: the carriers are found with the
//! right kind and slope class, the controls are not, N < 4 is refused before any device is touched.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::Bench;

/// A small scenario: one contact, one SMS, the default canaries' lengths. Settle times leave room
/// for a loaded CI machine: a request that spills past its step's window lands in another group,
/// missing from the other runs (the likely cause of one mismatch seen under load with 1 s).
const SCENARIO: &str = "\
name: differential
identifiers:
  contact_name: Wei Ling Tan
  contact_phone: \"+6598765432\"
  sms_body: \"tattle canary {run_id}\"
steps:
  - add-contact: { name: \"{contact_name}\", phone: \"{contact_phone}\", settle: 2s }
  - send-sms: { to: \"{contact_phone}\", body: \"{sms_body}\", settle: 3s }
";

/// The profile's ground truth: (step, host, planted kind, slope class) of every carrier whose size
/// can show it. The hashes (hash.difflab.net) carry values too, but at a constant size.
const CARRIERS: &[(&str, &str, &str, &str)] = &[
    (
        "1 add-contact",
        "contacts.difflab.net",
        "contact_name",
        "plain",
    ),
    (
        "1 add-contact",
        "people.difflab.net",
        "contact_phone",
        "base64",
    ),
    ("2 send-sms", "b64.difflab.net", "sms_body", "base64"),
    ("2 send-sms", "gzip.difflab.net", "sms_body", "compressed"),
    ("2 send-sms", "hex.difflab.net", "sms_body", "hex"),
    (
        "2 send-sms",
        "recipient.difflab.net",
        "contact_phone",
        "plain",
    ),
    ("2 send-sms", "sms.difflab.net", "sms_body", "plain"),
];

fn tattle(port: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(args)
        .env("ANDROID_ADB_SERVER_PORT", port)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_finds_the_carriers_and_not_the_controls() {
    let bench = Bench::start(&["differential-lab"]).await;
    let serial = bench.handsets[0].serial().to_string();
    let port = bench.server().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("differential.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let runs = dir.path().join("runs");
    let args: Vec<String> = [
        "run",
        scenario.to_str().unwrap(),
        "--device",
        &serial,
        "--runs",
        runs.to_str().unwrap(),
        "--differential",
        "4",
        "--format",
        "json",
    ]
    .map(String::from)
    .to_vec();
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tattle(&port, &args)
    })
    .await
    .unwrap();
    let took = started.elapsed();
    bench.finish().await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings: exit 1\n{stdout}\n{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(doc["format_version"], 1);
    // The checked-in schema (docs/json-schema.md) accepts it.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/differential.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(doc["interrupted"].is_null(), "{}", doc["interrupted"]);

    let found: BTreeSet<(String, String, String, String)> = doc["follows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_string();
            (s("step"), s("host"), s("kind"), s("class"))
        })
        .collect();
    let truth: BTreeSet<(String, String, String, String)> = CARRIERS
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    let right = found.intersection(&truth).count();
    eprintln!(
        "differential-lab, N=4, {took:.0?}: precision {right}/{} recall {right}/{}",
        found.len(),
        truth.len()
    );
    assert_eq!(found, truth, "{stdout}");
    // The random-size control is not judged: its baseline differs (noise) or, when the two
    // baseline sizes happen to be close, its sizes follow no planted value.
    let not_judged = doc["not_judged"].as_array().unwrap();
    assert!(
        not_judged.iter().any(|n| n["host"] == "random.difflab.net"
            && (n["reason"] == "noisy_baseline" || n["reason"] == "no_single_fit")),
        "{stdout}"
    );
    for quiet in ["hash.difflab.net", "const.difflab.net"] {
        assert!(
            !not_judged.iter().any(|n| n["host"] == quiet),
            "{quiet} kept its size: {stdout}"
        );
    }

    // The outcome carries the same verdicts: step, host, kind, class; no sizes.
    let in_outcome: BTreeSet<(String, String, String, String)> = doc["outcome"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|step| {
            let label = step["step"].as_str().unwrap().to_string();
            step["size_correlations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |c| {
                    let s = |k: &str| c[k].as_str().unwrap().to_string();
                    (
                        label.clone(),
                        s("host"),
                        s("identifier").trim_matches(['<', '>']).to_string(),
                        s("slope"),
                    )
                })
        })
        .collect();
    assert_eq!(in_outcome, truth);

    // Four private run directories; the verdict in the last; no planted value anywhere in it.
    let dirs: Vec<&str> = doc["run_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(dirs.len(), 4);
    for d in &dirs {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{d}");
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(Path::new(d).join("run.json")).unwrap())
                .unwrap();
        assert!(run["interrupted"].is_null());
    }
    // The verdict has a directory of its own; each run's directory is as its manifest says.
    let series_dir = doc["series_dir"].as_str().unwrap();
    assert!(
        series_dir.contains("differential-differential@"),
        "{series_dir}"
    );
    let verdict = std::fs::read_to_string(Path::new(series_dir).join("differential.json")).unwrap();
    // The series' own reports show its correlations; `tattle diff` reads a series' directory.
    let report = |name: &str| std::fs::read_to_string(Path::new(series_dir).join(name)).unwrap();
    let (txt, md, html) = (
        report("report.txt"),
        report("report.md"),
        report("report.html"),
    );
    assert!(html.contains("<table id=\"size-correlations\">"), "{html}");
    for (step, host, kind, class) in &truth {
        assert!(
            md.contains(&format!("| {step} | `<{kind}>` | `{host}` | {class} |")),
            "{md}"
        );
        assert!(
            txt.contains(&format!(
                "SIZE TLS traffic to {host} grows with <{kind}>'s length ({class})"
            )),
            "{txt}"
        );
    }
    let same = tattle("1", &["diff", series_dir, series_dir]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&same.stdout),
        String::from_utf8_lossy(&same.stderr)
    );
    for d in [series_dir, dirs[3]] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{d}");
    }
    let verified = tattle("1", &["verify", dirs[3]]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let lengths = &doc["planted"];
    for kind in lengths.as_array().unwrap() {
        let l: Vec<u64> = kind["lengths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(l[0], l[1], "a baseline pair");
        assert_eq!(l.iter().collect::<BTreeSet<_>>().len(), 3);
    }
    let record: serde_json::Value = serde_json::from_str(&verdict).unwrap();
    assert_eq!(record["follows"], doc["follows"]);
}

/// Fewer than four runs cannot measure noise and fit a line: refused before any device is asked.
#[test]
fn fewer_than_four_runs_are_refused() {
    let out = tattle("1", &["run", "send-sms", "--differential", "3"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--differential 3: at least 4 runs"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
