//! A run directory's reports against real readers: the HTML opened by headless Chromium (no console
//! message, every leak linked to its frame), JUnit read by Python's `junitparser`, the HAR by the
//! `har` crate, the pcapng's packet comments and every flow's Community ID by tshark; no raw
//! identifier in any of them; `tattle report` re-renders an old run (also one without flows.json).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Bench, profile_values};

fn tattle(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(args)
        .arg(dir)
        .output()
        .expect("tattle runs")
}

fn tshark_fields(file: &Path, extra: &[&str], fields: &[&str]) -> Vec<Vec<String>> {
    let mut args: Vec<std::ffi::OsString> = vec!["-r".into(), file.into()];
    args.extend(extra.iter().map(Into::into));
    args.extend(["-T".into(), "fields".into()]);
    for f in fields {
        args.extend(["-e".into(), (*f).into()]);
    }
    crate::support::tshark_rows(&args)
}

/// Runs send-sms on the cloud-by-default build (leaks over HTTP) once, for every check below.
async fn run_dir(runs: &Path) -> PathBuf {
    let bench = Bench::start(&["miui-cloud-default"]).await;
    let port = bench.server().port().to_string();
    let serial = bench.handsets[0].serial();
    let snapshots = tempfile::tempdir().unwrap();
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_tattle"))
            .args(["run", "send-sms", "--device", &serial, "--runs"])
            .arg(runs)
            .arg("--snapshots")
            .arg(snapshots.path())
            // The build writes a TLS key log: the HAR then has the decrypted requests too.
            .args(["--keylog", "device:/data/local/tmp/sslkeys.log"])
            .env("ANDROID_ADB_SERVER_PORT", &port)
            .output()
            .unwrap()
    });
    bench.finish().await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a run directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_is_read_by_a_real_reader() {
    let runs = tempfile::tempdir().unwrap();
    let dir = run_dir(runs.path()).await;
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("evidence.json")).unwrap()).unwrap();
    let findings = evidence["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    let flows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("flows.json")).unwrap()).unwrap();

    // No raw identifier in anything tattle wrote besides the captures themselves.
    let secrets = profile_values("miui-cloud-default");
    for name in [
        "report.txt",
        "report.md",
        "report.html",
        "junit.xml",
        "flows.har",
        "flows.json",
        "run.json",
        "evidence.json",
    ] {
        let text =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        for value in &secrets {
            assert!(
                !text.contains(value.as_str()),
                "{name} holds a raw identifier"
            );
        }
    }

    // pcapng: tshark reads each finding back as its frame's comment, and the step boundaries.
    let comments: BTreeMap<u64, String> = tshark_fields(
        &dir.join("capture.pcapng"),
        &["-Y", "frame.comment"],
        &["frame.number", "frame.comment"],
    )
    .into_iter()
    .map(|row| (row[0].parse().unwrap(), row[1..].join("\t")))
    .collect();
    for f in findings {
        let frame = f["frame"].as_u64().unwrap();
        let comment = comments
            .get(&frame)
            .unwrap_or_else(|| panic!("frame {frame}: no comment"));
        let want = format!(
            "tattle finding: {} -> {}",
            f["identifier"].as_str().unwrap(),
            f["host"].as_str().unwrap()
        );
        assert!(comment.contains(&want), "frame {frame}: {comment}");
    }
    assert!(
        comments
            .values()
            .any(|c| c.contains("step 4 send-sms starts")),
        "{comments:?}"
    );
    for value in &secrets {
        assert!(!comments.values().any(|c| c.contains(value.as_str())));
    }
    // Same frames as the capture, so frame numbers in reports hold for both files.
    let frames = |f: &str| tshark_fields(&dir.join(f), &[], &["frame.number"]).len();
    assert_eq!(frames("capture.pcapng"), frames("capture.pcap"));

    // The run's key log rides in the pcapng: tshark decrypts it with no key log option.
    let hosts = tshark_fields(
        &dir.join("capture.pcapng"),
        &["-Y", "http.request"],
        &["http.host"],
    );
    assert!(
        hosts.iter().any(|h| h[0] == "activate.kestrelcloud.net"),
        "{hosts:?}"
    );

    // A capture that carries its own secrets (PCAPdroid's pcapng with TLS decryption, kept as
    // capture.pcap; here made by editcap from this run's), in a run directory without tls-keys.log:
    // its annotated pcapng keeps them, and tshark decrypts it with no option.
    let carried = runs.path().join("carried-secrets");
    std::fs::create_dir(&carried).unwrap();
    for name in ["run.json", "evidence.json", "flows.json", "outcome.snap"] {
        std::fs::copy(dir.join(name), carried.join(name)).unwrap();
    }
    let status = Command::new("editcap")
        .arg("--inject-secrets")
        .arg(format!("tls,{}", dir.join("tls-keys.log").display()))
        .arg(dir.join("capture.pcap"))
        .arg(carried.join("capture.pcap"))
        .status()
        .expect("editcap (wireshark-common)");
    assert!(status.success());
    let annotated = carried.join("annotated.pcapng");
    let out = tattle(
        &[
            "report",
            "--format",
            "pcapng",
            "-o",
            annotated.to_str().unwrap(),
        ],
        &carried,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run's findings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts = tshark_fields(&annotated, &["-Y", "http.request"], &["http.host"]);
    assert!(
        hosts.iter().any(|h| h[0] == "activate.kestrelcloud.net"),
        "the capture's own secrets carried: {hosts:?}"
    );

    // Community ID: tshark's own dissector agrees on every flow's first frame.
    let tshark_ids: BTreeMap<u64, String> = tshark_fields(
        &dir.join("capture.pcap"),
        &["--enable-protocol", "communityid"],
        &["frame.number", "communityid"],
    )
    .into_iter()
    .filter(|row| row.len() == 2 && !row[1].is_empty())
    .map(|row| (row[0].parse().unwrap(), row[1].clone()))
    .collect();
    let listed = flows["flows"].as_array().unwrap();
    assert!(listed.len() > 5);
    for flow in listed {
        let frame = flow["first_frame"].as_u64().unwrap();
        assert_eq!(
            flow["community_id"].as_str(),
            tshark_ids.get(&frame).map(String::as_str),
            "flow at frame {frame}"
        );
    }

    // HAR: the `har` crate reads it; the leaking requests are there, values redacted.
    let har = har::from_path(dir.join("flows.har")).expect("a HAR 1.2 document");
    let har::Spec::V1_2(log) = har.log else {
        panic!("not HAR 1.2")
    };
    assert_eq!(log.entries.len(), flows["http"].as_array().unwrap().len());
    assert!(!log.entries.is_empty());
    for entry in &log.entries {
        assert!(
            entry
                .request
                .headers
                .iter()
                .all(|h| h.value == "<redacted>")
        );
        assert!(entry.response.status >= 200, "{}", entry.request.url);
    }
    let urls: Vec<&str> = log.entries.iter().map(|e| e.request.url.as_str()).collect();
    assert!(
        urls.contains(&"http://msg.kestrelcloud.net/cm/v2/status?did=<value>&pn=<value>"),
        "{urls:?}"
    );
    assert!(
        urls.contains(&"https://activate.kestrelcloud.net/v2/device/activate"),
        "decrypted with the run's key log: {urls:?}"
    );

    // JUnit: junitparser reads one case per step and the policy, the leaking step failed.
    let script = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    for case in suite:
        failed = any(isinstance(r, Failure) for r in case.result)
        print(case.classname + "|" + case.name + "|" + ("failed" if failed else "passed"))
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(dir.join("junit.xml"))
        .output()
        .expect("python3 (.ci/run installs python3-junitparser)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(cases.contains(".steps|4 send-sms|failed"), "{cases}");
    // The activation's IMEI, found inside TLS with the build's key log.
    assert!(cases.contains(".steps|1 fresh-setup|failed"), "{cases}");
    assert!(cases.contains(".steps|2 idle|passed"), "{cases}");
    assert!(
        cases.contains(".policy|no identifier leaves the handset|failed"),
        "{cases}"
    );

    // HTML in a real browser: no console message at all (a blocked load, a script error), and
    // each leak links to a frame row that exists.
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", dir.join("report.html").display()))
        .output()
        .expect("chromium (.ci/run installs it)");
    let log = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let dom = String::from_utf8_lossy(&out.stdout);
    for f in findings {
        let frame = f["frame"].as_u64().unwrap();
        assert!(
            dom.contains(&format!("href=\"#frame-{frame}\"")),
            "no link to frame {frame}"
        );
        assert!(
            dom.contains(&format!("id=\"frame-{frame}\"")),
            "no row for frame {frame}"
        );
    }
    assert!(dom.contains("first party"), "destinations are classified");

    // `tattle report` renders the same files again from the directory, and says "findings".
    let md = tattle(&["report", "--format", "markdown"], &dir);
    assert_eq!(md.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&md.stdout),
        std::fs::read_to_string(dir.join("report.md")).unwrap()
    );
    let text = tattle(&["report", "--format", "text"], &dir);
    assert!(
        !String::from_utf8_lossy(&text.stdout).contains('\x1b'),
        "no colour when piped"
    );
    // On a terminal (`script` gives it one): coloured, unless NO_COLOR says not to.
    let on_a_terminal = |no_color: Option<&str>| {
        let mut cmd = Command::new("script");
        cmd.arg("-qc")
            .arg(format!(
                "{} report {} --format text",
                env!("CARGO_BIN_EXE_tattle"),
                dir.display()
            ))
            .arg("/dev/null")
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().expect("script (util-linux)");
        String::from_utf8_lossy(&out.stdout).contains("\x1b[1;31m")
    };
    assert!(on_a_terminal(None), "leaks in red on a terminal");
    assert!(!on_a_terminal(Some("1")), "NO_COLOR=1: no colour");
    // An old run, made before flows.json: every format still renders.
    std::fs::remove_file(dir.join("flows.json")).unwrap();
    let rewritten = tattle(&["report"], &dir);
    assert_eq!(
        rewritten.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&rewritten.stderr)
    );
    let har = std::fs::read_to_string(dir.join("flows.har")).unwrap();
    assert!(har.contains("no flows.json"), "{har}");
    let missing = tattle(&["report", "--format", "html"], &dir.join("nope"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("run.json"));
}

/// Runs in a network namespace of its own, as a normal user: captures h2c and h2 over TLS between
/// Debian's nghttpd and curl/nghttp into its HOME for [`http2_exchanges_are_in_the_har`].
#[test]
#[ignore = "run by http2_exchanges_are_in_the_har in a namespace of its own"]
fn http2_exchanges_are_in_the_har_capture_inside() {
    use std::process::Stdio;
    if !crate::support::in_unprivileged_child() {
        return;
    }
    crate::support::loopback_up();
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    crate::analysis_tls::ec_certificate(d);
    std::fs::create_dir(d.join("www")).unwrap();
    std::fs::write(d.join("www/index.html"), "ok\n").unwrap();
    // 8080 and 4433: ports tshark reads as HTTP and TLS without being told.
    let serve = |tls: bool, address: &str, port: u16| {
        let mut cmd = Command::new("nghttpd");
        if !tls {
            cmd.arg("--no-tls");
        }
        cmd.arg(format!("--address={address}"))
            .arg("-d")
            .arg(d.join("www"))
            .arg(port.to_string());
        if tls {
            cmd.arg(d.join("key.pem")).arg(d.join("cert.pem"));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nghttpd (apt install nghttp2-server)");
        for _ in 0..200 {
            if std::net::TcpStream::connect((address, port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        child
    };
    let mut servers = [
        serve(false, "127.88.53.1", 8080),
        serve(true, "127.88.53.2", 4433),
    ];
    let keys = home.join("h2.keys");
    let dump =
        crate::analysis_tshark::Tcpdump::start("lo", "127.88.53.0/24", &home.join("h2.pcap"));
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program)
            .env("SSLKEYLOGFILE", &keys)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} (apt install curl nghttp2-client): {e}"));
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
    };
    let imei = "356938035643809";
    let device = format!("X-Device: {imei}");
    // h2c: a GET with a query and a header, a POST, and two streams at once from nghttp.
    run(
        "curl",
        &[
            "-sS",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-H",
            &device,
            &format!("http://127.88.53.1:8080/index.html?imei={imei}"),
        ],
    );
    run(
        "curl",
        &[
            "-sS",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "--data-binary",
            "a=1",
            "http://127.88.53.1:8080/index.html",
        ],
    );
    let body = d.join("www/index.html");
    run(
        "nghttp",
        &[
            "-d",
            body.to_str().unwrap(),
            "http://127.88.53.1:8080/index.html?a=1",
            "http://127.88.53.1:8080/index.html?b=2",
        ],
    );
    // h2 inside TLS 1.3, decrypted with curl's key log.
    run(
        "curl",
        &[
            "-sSk",
            "--http2",
            "-o",
            "/dev/null",
            "-H",
            &device,
            "--data-binary",
            "imei=1",
            &format!("https://127.88.53.2:4433/index.html?id={imei}"),
        ],
    );
    dump.stop();
    for s in &mut servers {
        let _ = s.kill();
        let _ = s.wait();
    }
}

/// HTTP/2 requests — h2c with prior knowledge and h2 inside TLS decrypted with the run's key log —
/// are in `flows.har` as the `har` crate reads it, one entry per request tshark decodes in the same
/// capture, with its status, header names (values redacted) and query values replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_exchanges_are_in_the_har() {
    let home = tokio::task::block_in_place(|| {
        crate::support::rerun_unprivileged_keeping_home(
            "reports::http2_exchanges_are_in_the_har_capture_inside",
            crate::support::OWN_NETWORK,
        )
    });
    let (pcap, keys) = (home.path().join("h2.pcap"), home.path().join("h2.keys"));
    // What tshark decodes: each request's method and URL, query values replaced as the HAR does.
    let pref = format!("tls.keylog_file:{}", keys.display());
    let mut want: Vec<String> = tshark_fields(
        &pcap,
        &[
            "-o",
            &pref,
            "-Y",
            "http2.headers.method",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
        ],
        &[
            "http2.headers.method",
            "http2.headers.scheme",
            "http2.headers.authority",
            "http2.headers.path",
        ],
    )
    .into_iter()
    .flat_map(|row| {
        let col = |i: usize| row[i].split('|').map(str::to_string).collect::<Vec<_>>();
        let (m, s, a, p) = (col(0), col(1), col(2), col(3));
        (0..m.len())
            .map(|i| {
                let path = match p[i].split_once('?') {
                    Some((path, q)) => format!(
                        "{path}?{}",
                        q.split('&')
                            .map(|kv| format!("{}=<value>", kv.split('=').next().unwrap()))
                            .collect::<Vec<_>>()
                            .join("&")
                    ),
                    None => p[i].clone(),
                };
                format!("{} {}://{}{path}", m[i], s[i], a[i])
            })
            .collect::<Vec<_>>()
    })
    .collect();
    want.sort();
    assert_eq!(want.len(), 5, "{want:?}");

    // A run whose capture is that file (`file:`), with that key log.
    let bench = Bench::start(&["aosp-clean"]).await;
    let port = bench.server().port().to_string();
    let serial = bench.handsets[0].serial();
    let work = tempfile::tempdir().unwrap();
    let scenario = work.path().join("h2.yaml");
    std::fs::write(&scenario, "name: h2\nsteps:\n  - idle: 1s\n").unwrap();
    let runs = work.path().join("runs");
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_tattle"))
            .arg("run")
            .arg(&scenario)
            .args(["--device", &serial, "--runs"])
            .arg(&runs)
            .arg("--snapshots")
            .arg(work.path())
            .arg("--capture")
            .arg(format!("file:{}", pcap.display()))
            .arg("--keylog")
            .arg(&keys)
            .env("ANDROID_ADB_SERVER_PORT", &port)
            .output()
            .unwrap()
    });
    bench.finish().await;
    let dir = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no run directory: {out:?}"));

    let text = std::fs::read_to_string(dir.join("flows.har")).unwrap();
    assert!(!text.contains("356938035643809"), "a raw value in the HAR");
    let har = har::from_str(&text).expect("a HAR 1.2 document");
    let har::Spec::V1_2(log) = har.log else {
        panic!("not HAR 1.2")
    };
    let h2: Vec<_> = log
        .entries
        .iter()
        .filter(|e| e.request.http_version == "HTTP/2")
        .collect();
    let mut got: Vec<String> = h2
        .iter()
        .map(|e| format!("{} {}", e.request.method, e.request.url))
        .collect();
    got.sort();
    assert_eq!(got, want);
    for e in &h2 {
        assert_eq!(e.response.status, 200, "{}", e.request.url);
        assert_eq!(e.response.content.mime_type.as_deref(), Some("text/html"));
        assert!(e.response.headers.iter().any(|h| h.name == "content-type"));
        assert!(
            e.request
                .headers
                .iter()
                .chain(&e.response.headers)
                .all(|h| h.value == "<redacted>")
        );
        assert!(e.timings.wait >= 0.0, "{}", e.request.url);
    }
    assert!(
        h2.iter()
            .filter(
                |e| e.request.url.contains("imei=<value>") || e.request.url.contains("id=<value>")
            )
            .all(|e| e.request.headers.iter().any(|h| h.name == "x-device")),
        "{got:?}"
    );
    assert_eq!(
        h2.iter()
            .filter(|e| e.request.url.starts_with("https://"))
            .count(),
        1,
        "the TLS request, decrypted with the key log: {got:?}"
    );
}
