//! `cargo bench --bench analyze`: throughput and peak memory of `tattle analyze`, on one core and
//! on all of them, against tshark extracting three fields (DNS name, TLS SNI, HTTP Host) from the
//! same file in the same run — for both shapes of capture: a phone's bytes (few big flows) and a
//! day of connections (tens of thousands of short flows that end every way a connection ends).
//!
//! Owns the benchmark procedure only; the traffic is `tattle_analysis::testgen`'s. Never asserts a
//! time: it prints figures and targets. It does assert correctness — every planted identifier
//! found exactly once per flow, no damage, no limit hit, names as tshark reads them — since a
//! figure of a wrong analysis is worth nothing.
//!
//! Environment:
//! - `TATTLE_BENCH_FULL=1`: also the 1 GiB captures (disk and minutes).
//! - `TATTLE_BENCH_PIPE_GB=N`: also N GB of the many-flow shape generated on the fly and piped
//!   into `tattle analyze -` (never on disk): memory must stay flat.
//! - `TATTLE_BENCH_ADVERSARIAL=1`: also three captures crafted to amplify memory or time.
//! - `TATTLE_BENCH_TLS_MB` (default 32): the decrypting case (`tls`): rustls sessions of every
//!   TLS 1.3/1.2 AEAD suite, `tattle analyze --keylog` against tshark decrypting with the same
//!   key log; `TATTLE_BENCH_TLS_ONLY=1` runs only it.
//! - `TATTLE_BENCH_RUNS` (default 3), `TATTLE_BENCH_TSHARK_RUNS` (default 1): runs per median.
//! - `TATTLE_BENCH_NO_TSHARK=1`: skip tshark (its runs dominate the bench time).
//! - `TATTLE_BENCH_DIR`, `TATTLE_BENCH_KEEP=1`: where captures go, and keep them.
//! - `TATTLE_BIN`: the tattle binary (default: the one cargo built for this bench).
//!
//! Arguments (after `--`): `--write-seeds DIR` writes small generated captures with a leading
//! control byte as fuzz seeds and exits; `--generate phone|many-flows SIZE` writes a capture to
//! stdout (the pipe run's source).

mod tls;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tattle_analysis::Analysis;
use tattle_analysis::testgen::tshark::Names;
use tattle_analysis::testgen::{self, Generator, Shape};

const MIB: u64 = 1 << 20;
const SEED: u64 = 0x7a77_1e00_0000_0004;
const TARGET_RATIO: f64 = 40.0;
const TARGET_RSS_MIB: f64 = 64.0;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// One child run: wall time and peak resident set (ru_maxrss of the reaped child).
struct Run {
    wall: Duration,
    max_rss_kib: u64,
    status: i32,
    stdout: Vec<u8>,
}

/// Runs `cmd` and reaps it with wait4 to read its own rusage, through a fresh, small copy of this
/// binary (`--rusage-of`, see `launcher`): Linux carries a process's peak RSS across exec, and a
/// child spawned straight from this bench would start from the bench's own memory.
/// `stdin_gen`: feed the child's stdin from `--generate SHAPE SIZE` of this binary.
fn run_child(cmd: &Command, stdin_gen: Option<(&str, u64)>) -> Run {
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let me = std::env::current_exe().expect("own path");
    let mut launcher = Command::new(me);
    launcher.arg("--rusage-of").arg(report.path());
    if let Some((shape, size)) = stdin_gen {
        launcher.args(["--stdin-gen", shape, &size.to_string()]);
    }
    launcher
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(File::create(out.path()).expect("stdout file"))
        .stderr(Stdio::null());
    let status = launcher.status().expect("start the launcher");
    let text = std::fs::read_to_string(report.path()).unwrap_or_default();
    let fields: Vec<u64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [wall_ns, max_rss_kib, child_status] = fields[..] else {
        panic!("launcher failed ({status}) for {cmd:?}");
    };
    Run {
        wall: Duration::from_nanos(wall_ns),
        max_rss_kib,
        status: child_status as i32,
        stdout: std::fs::read(out.path()).unwrap_or_default(),
    }
}

/// `--rusage-of REPORT [--stdin-gen SHAPE SIZE] PROGRAM ARGS…`: runs the program with this
/// process's stdout, reaps it with wait4 and writes `wall_ns max_rss_kib exit_status` to REPORT.
fn launcher(args: &[String]) -> ! {
    let (report, rest) = args.split_first().expect("--rusage-of REPORT PROGRAM");
    let mut gen_child = None;
    let mut rest = rest;
    let mut stdin = Stdio::inherit();
    if let [flag, shape, size, tail @ ..] = rest
        && flag == "--stdin-gen"
    {
        let me = std::env::current_exe().expect("own path");
        let mut g = Command::new(me)
            .args(["--generate", shape, size])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the generator");
        stdin = Stdio::from(g.stdout.take().expect("generator stdout"));
        gen_child = Some(g);
        rest = tail;
    }
    let (program, program_args) = rest.split_first().expect("PROGRAM");
    let start = Instant::now();
    let child = Command::new(program)
        .args(program_args)
        .stdin(stdin)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills; the child is ours and std has not reaped it
    // (the Child handle is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    if let Some(mut g) = gen_child {
        let _ = g.wait();
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        255
    };
    std::fs::write(
        report,
        format!("{} {} {code}\n", wall.as_nanos(), usage.ru_maxrss),
    )
    .expect("write report");
    std::process::exit(0);
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn tattle_bin() -> PathBuf {
    std::env::var_os("TATTLE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tattle")))
}

fn tattle_cmd(file: &str, threads: Option<usize>) -> Command {
    let mut c = Command::new(tattle_bin());
    c.arg("analyze")
        .arg(file)
        .args(["--id", &format!("imei={}", testgen::IMEI)])
        .args(["--id", &format!("phone_number={}", testgen::PHONE)])
        .args(["--format", "json"]);
    if let Some(t) = threads {
        c.args(["--threads", &t.to_string()]);
    }
    c
}

fn tshark_cmd(file: &Path) -> Command {
    let mut c = Command::new("/usr/bin/tshark");
    c.arg("-r").arg(file).args([
        "-T",
        "fields",
        "-e",
        "dns.qry.name",
        "-e",
        "tls.handshake.extensions_server_name",
        "-e",
        "http.host",
    ]);
    c
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Phone => "phone",
        Shape::ManyFlows => "many-flows",
    }
}

fn parse_shape(s: &str) -> Shape {
    match s {
        "phone" => Shape::Phone,
        "many-flows" => Shape::ManyFlows,
        other => panic!("unknown shape {other}"),
    }
}

struct Generated {
    path: PathBuf,
    bytes: u64,
    frames: u64,
    g: Generator,
}

fn generate(dir: &Path, shape: Shape, target: u64) -> Generated {
    let name = format!("{}-{}M.pcap", shape_name(shape), target / MIB);
    let path = dir.join(&name);
    let start = Instant::now();
    let file = File::create(&path).expect("create capture");
    let mut g = Generator::with_shape(SEED ^ target, shape);
    let w = g
        .write(BufWriter::with_capacity(1 << 20, file), target)
        .expect("write capture");
    let (bytes, frames) = (w.bytes(), w.frames());
    drop(w.into_inner());
    println!(
        "generated {name}: {:.1} MB, {frames} frames, {} flows ({:.1} s)",
        mb(bytes),
        g.endings.values().sum::<u64>(),
        start.elapsed().as_secs_f64()
    );
    Generated {
        path,
        bytes,
        frames,
        g,
    }
}

/// Median throughput (MB/s), the largest peak RSS (KiB) over `runs` runs, and the last output.
fn measure(
    name: &str,
    bytes: u64,
    runs: usize,
    stdin_gen: Option<(&str, u64)>,
    mut cmd: impl FnMut() -> Command,
) -> (f64, u64, Vec<u8>) {
    let mut rates = Vec::new();
    let mut rss = 0;
    let mut out = Vec::new();
    for _ in 0..runs {
        let r = run_child(&cmd(), stdin_gen);
        // tattle exits 1 when it finds leaks (the planted identifiers): both are success.
        assert!(
            r.status == 0 || r.status == 1,
            "{name} failed with status {}",
            r.status
        );
        rates.push(mb(bytes) / r.wall.as_secs_f64());
        rss = rss.max(r.max_rss_kib);
        out = r.stdout;
    }
    (median(rates), rss, out)
}

/// The JSON report must show every plant exactly once per flow (by kind, encoding and place),
/// and no damage and no limit: a benign capture read whole.
fn check_report(json: &[u8], g: &Generator, shape: Shape) {
    let v: serde_json::Value = serde_json::from_slice(json).expect("tattle's JSON");
    assert_eq!(
        v["damage"].as_array().map(Vec::len),
        Some(0),
        "damage: {}",
        v["damage"]
    );
    assert_eq!(
        v["limits"].as_array().map(Vec::len),
        Some(0),
        "limits: {}",
        v["limits"]
    );
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for f in v["findings"].as_array().expect("findings") {
        let key = format!(
            "{}:{}:{}",
            f["identifier"].as_str().unwrap_or(""),
            f["encoding"].as_str().unwrap_or(""),
            f["location"].as_str().unwrap_or("")
        );
        *found.entry(key).or_default() += f["flows"].as_u64().unwrap_or(0);
    }
    match shape {
        Shape::ManyFlows => {
            let mut planted: BTreeMap<String, u64> = BTreeMap::new();
            for p in &g.plants {
                *planted
                    .entry(format!("{}:{}:{}", p.kind, p.encoding, p.location))
                    .or_default() += 1;
            }
            assert_eq!(found, planted, "findings by kind:encoding:location (flows)");
            println!(
                "  check: {} plants found once per flow, no damage, no limit; flows by end {}",
                g.plants.len(),
                v["flow_ends"]
            );
        }
        Shape::Phone => {
            for (&form, &n) in &g.planted {
                let (kind, enc) = form.split_once(':').expect("kind:encoding");
                let hit = found.keys().any(|k| {
                    k.starts_with(&format!("{kind}:"))
                        && (k.contains(&format!(":{enc}:"))
                            || (enc == "gzip" && k.contains("gzip")))
                });
                assert!(hit, "planted {form} ({n} times) not found");
            }
            println!("  check: every planted form found, no damage, no limit");
        }
    }
}

/// The names tattle learnt (DNS questions; SNI and HTTP hosts of flows) against tshark's on the
/// same file: the generated traffic must read the same to both, or comparing their speeds
/// compares different work.
fn compare_names(file: &Path, a: &Analysis) {
    let theirs = Names::from_tshark(file).expect("run tshark");
    let ours = Names::from_analysis(a);
    let verdict = |agree: bool| if agree { "agree" } else { "DIFFER" };
    println!(
        "  names vs tshark: DNS {} ({} names), SNI/HTTP hosts {} ({} names)",
        verdict(ours.dns == theirs.dns),
        theirs.dns.len(),
        verdict(ours.named() == theirs.named()),
        theirs.named().len()
    );
    assert!(
        ours.dns == theirs.dns && ours.named() == theirs.named(),
        "tattle and tshark read different names: {ours:?} vs {theirs:?}"
    );
}

/// One row of the table.
struct Row {
    capture: String,
    bytes: u64,
    frames: u64,
    one_core: (f64, u64),
    all_cores: (f64, u64),
    tshark: Option<(f64, u64)>,
}

fn bench_file(
    dir: &Path,
    shape: Shape,
    size: u64,
    runs: usize,
    tshark_runs: usize,
    cores: usize,
) -> Row {
    let capture = generate(dir, shape, size);
    let file = capture.path.to_string_lossy().into_owned();
    let (r1, rss1, out1) = measure("tattle --threads 1", capture.bytes, runs, None, || {
        tattle_cmd(&file, Some(1))
    });
    check_report(&out1, &capture.g, shape);
    let (rn, rssn, outn) = measure("tattle", capture.bytes, runs, None, || {
        tattle_cmd(&file, Some(cores))
    });
    check_report(&outn, &capture.g, shape);
    let tshark = (!env_flag("TATTLE_BENCH_NO_TSHARK") && size <= 256 * MIB).then(|| {
        let (t, trss, _) = measure("tshark", capture.bytes, tshark_runs, None, || {
            tshark_cmd(&capture.path)
        });
        (t, trss)
    });
    if size == 100 * MIB && !env_flag("TATTLE_BENCH_NO_TSHARK") {
        let a = tattle_analysis::analyze_file(&capture.path, &testgen::identifiers())
            .expect("in-process analysis");
        compare_names(&capture.path, &a);
    }
    if !env_flag("TATTLE_BENCH_KEEP") {
        let _ = std::fs::remove_file(&capture.path);
    }
    let row = Row {
        capture: format!("{} {}M", shape_name(shape), size / MIB),
        bytes: capture.bytes,
        frames: capture.frames,
        one_core: (r1, rss1),
        all_cores: (rn, rssn),
        tshark,
    };
    print_row(&row, cores);
    row
}

fn print_row(r: &Row, cores: usize) {
    let ratio = |x: f64| match r.tshark {
        Some((t, _)) => format!("{:.1}x", x / t),
        None => "-".into(),
    };
    println!(
        "{:<16} {:>7.1} MB {:>9} fr | 1 core {:>6.0} MB/s {:>5.1} MiB {:>7} | {cores} cores {:>6.0} MB/s {:>5.1} MiB {:>7} | tshark {}",
        r.capture,
        mb(r.bytes),
        r.frames,
        r.one_core.0,
        r.one_core.1 as f64 / 1024.0,
        ratio(r.one_core.0),
        r.all_cores.0,
        r.all_cores.1 as f64 / 1024.0,
        ratio(r.all_cores.0),
        match r.tshark {
            Some((t, rss)) => format!("{t:.1} MB/s {:.0} MiB", rss as f64 / 1024.0),
            None => "not run".into(),
        }
    );
}

/// N GB of many-flow traffic generated on the fly and piped into `tattle analyze -`.
/// The decrypting case: a capture of TLS sessions and their key log, `tattle analyze --keylog`
/// (every session's plant must be found decrypted) against tshark decrypting the same file.
fn bench_tls(dir: &Path, runs: usize, tshark_runs: usize, cores: usize) -> Row {
    let mb_target = env_num("TATTLE_BENCH_TLS_MB", 32) as u64;
    let sessions = 60;
    let per = (mb_target * MIB / sessions as u64) as usize;
    let start = Instant::now();
    let (path, keys, bytes) = tls::generate(dir, sessions, per);
    println!(
        "generated tls.pcap: {:.1} MB, {sessions} TLS sessions (6 suites) ({:.1} s)",
        mb(bytes),
        start.elapsed().as_secs_f64()
    );
    let file = path.to_str().expect("path");
    let keyed = |threads| {
        let mut c = tattle_cmd(file, threads);
        c.arg("--keylog").arg(&keys);
        c
    };
    let (one, one_rss, out) = measure("tattle --keylog", bytes, runs, None, || keyed(Some(1)));
    let v: serde_json::Value = serde_json::from_slice(&out).expect("tattle's JSON");
    assert_eq!(
        v["summary"]["tls_flows"]["decrypted"].as_u64(),
        Some(sessions as u64),
        "every session decrypted: {}",
        v["summary"]
    );
    let url = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["location"] == "http.url" && f["identifier"] == "imei")
        .expect("the planted IMEI in the decrypted URLs");
    assert_eq!(url["flows"].as_u64(), Some(sessions as u64));
    let (all, all_rss, _) = measure("tattle --keylog", bytes, runs, None, || keyed(None));
    let tshark = (!env_flag("TATTLE_BENCH_NO_TSHARK")).then(|| {
        let (t, trss, out) = measure("tshark", bytes, tshark_runs, None, || {
            tls::tshark_cmd(&path, &keys)
        });
        let uris = String::from_utf8_lossy(&out).lines().count();
        println!("  tshark decrypted {uris} requests");
        (t, trss)
    });
    let frames = v["frames"].as_u64().unwrap_or(0);
    let row = Row {
        capture: format!("tls+keylog {}M", mb_target),
        bytes,
        frames,
        one_core: (one, one_rss),
        all_cores: (all, all_rss),
        tshark,
    };
    print_row(&row, cores);
    if !env_flag("TATTLE_BENCH_KEEP") {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&keys);
    }
    row
}

fn pipe_run(gb: u64, cores: usize) {
    let size = gb << 30;
    for threads in [1, cores] {
        let (rate, rss, out) = measure("tattle -", size, 1, Some(("many-flows", size)), || {
            tattle_cmd("-", Some(threads))
        });
        let v: serde_json::Value = serde_json::from_slice(&out).expect("tattle's JSON");
        println!(
            "pipe {gb} GB many-flows, {threads} thread(s): {rate:.0} MB/s (generator-bound), peak RSS {:.1} MiB, {} frames, {} flows, {} finding flows, damage {}, limits {}",
            rss as f64 / 1024.0,
            v["frames"],
            v["summary"]["flows"],
            v["summary"]["finding_flows"],
            v["damage"].as_array().map_or(0, Vec::len),
            v["limits"].as_array().map_or(0, Vec::len),
        );
    }
}

/// Captures built to make the analysis hold more than they contain (see `testgen::adversarial`).
fn adversarial(dir: &Path, runs: usize) {
    use testgen::adversarial as adv;
    type Gen = fn(BufWriter<File>, u64) -> std::io::Result<testgen::Wire<BufWriter<File>>>;
    let cases: [(&str, &str, Gen, u64); 3] = [
        (
            "dns-amplification.pcap",
            "64 questions per query by compression pointers",
            adv::dns_amplification,
            30_000,
        ),
        (
            "syn-flood.pcap",
            "300 000 connections opened, none closed",
            adv::syn_flood,
            300_000,
        ),
        (
            "gzip-bombs.pcap",
            "100 POSTs of 8 KB gzip inflating to 8 MiB each",
            adv::gzip_bombs,
            100,
        ),
    ];
    for (name, what, generate, packets) in cases {
        let path = dir.join(name);
        let file = File::create(&path).expect("create capture");
        let w = generate(BufWriter::new(file), packets).expect("write capture");
        let bytes = w.bytes();
        drop(w.into_inner());
        let p = path.to_string_lossy().into_owned();
        let (rate, rss, _) = measure("tattle", bytes, runs, None, || tattle_cmd(&p, Some(1)));
        println!(
            "{name} ({:.1} MB, {what}): tattle {rate:.1} MB/s, peak RSS {:.0} MiB ({:.0}x the file)",
            mb(bytes),
            rss as f64 / 1024.0,
            rss as f64 * 1024.0 / bytes as f64
        );
        if !env_flag("TATTLE_BENCH_KEEP") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn write_seeds(dir: &Path) {
    std::fs::create_dir_all(dir).expect("seed dir");
    for (i, (size, shape)) in [
        (2_000u64, Shape::Phone),
        (6_000, Shape::Phone),
        (12_000, Shape::ManyFlows),
    ]
    .into_iter()
    .enumerate()
    {
        let mut g = Generator::with_shape(SEED + i as u64, shape);
        g.concurrency = 3;
        g.hard_limit = Some(size);
        let mut bytes = Vec::new();
        let w = g.write(&mut bytes, size).expect("write to memory");
        drop(w);
        for control in [0u8, 1, 2, 3] {
            let mut seed = vec![control];
            seed.extend_from_slice(&bytes);
            std::fs::write(dir.join(format!("gen{i}-{control}")), &seed).expect("write seed");
        }
    }
    println!("seeds written to {}", dir.display());
}

fn parse_size(text: &str) -> u64 {
    let (num, mult) = match text.as_bytes().last() {
        Some(b'G') => (&text[..text.len() - 1], 1u64 << 30),
        Some(b'M') => (&text[..text.len() - 1], 1 << 20),
        _ => (text, 1),
    };
    num.parse::<u64>().expect("a size") * mult
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--rusage-of") {
        launcher(&args[2..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--generate") {
        let shape = parse_shape(args.get(i + 1).expect("--generate SHAPE SIZE"));
        let size = parse_size(args.get(i + 2).expect("--generate SHAPE SIZE"));
        let out = std::io::stdout().lock();
        let mut g = Generator::with_shape(SEED ^ size, shape);
        // A closed pipe (the analysis stopped) ends the generator quietly.
        if let Ok(w) = g.write(BufWriter::with_capacity(1 << 20, out), size) {
            let _ = w.into_inner().flush();
        }
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--write-seeds") {
        let dir = args.get(i + 1).expect("--write-seeds DIR");
        write_seeds(Path::new(dir));
        return;
    }
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored: there is one bench.
    let runs = env_num("TATTLE_BENCH_RUNS", 3);
    let tshark_runs = env_num("TATTLE_BENCH_TSHARK_RUNS", 1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tmp;
    let dir = match std::env::var_os("TATTLE_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!("tattle: {} ({cores} cores)", tattle_bin().display());
    let mut sizes = vec![100 * MIB, 256 * MIB];
    if env_flag("TATTLE_BENCH_FULL") {
        sizes.push(1024 * MIB);
    }
    let tls_row = bench_tls(&dir, runs, tshark_runs, cores);
    let mut rows = Vec::new();
    for shape in [Shape::Phone, Shape::ManyFlows] {
        if env_flag("TATTLE_BENCH_TLS_ONLY") {
            break;
        }
        for &size in &sizes {
            rows.push(bench_file(&dir, shape, size, runs, tshark_runs, cores));
        }
    }
    if let Some(gb) = std::env::var("TATTLE_BENCH_PIPE_GB")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        pipe_run(gb, cores);
    }
    if env_flag("TATTLE_BENCH_ADVERSARIAL") {
        adversarial(&dir, runs.min(3));
    }
    println!(
        "\nsummary (medians; ratio = tattle / tshark on the same file; targets: >= {TARGET_RATIO}x on one core, peak RSS <= {TARGET_RSS_MIB} MiB and flat):"
    );
    print_row(&tls_row, cores);
    for r in &rows {
        print_row(r, cores);
        let over = r.one_core.1.max(r.all_cores.1) as f64 / 1024.0 > TARGET_RSS_MIB;
        let slow = r
            .tshark
            .is_some_and(|(t, _)| r.one_core.0 / t < TARGET_RATIO);
        if over || slow {
            println!(
                "  NOT met:{}{}",
                if slow { " ratio" } else { "" },
                if over { " memory" } else { "" }
            );
        }
    }
}
