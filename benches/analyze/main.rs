//! `cargo bench --bench analyze`: throughput and peak memory of `tattle analyze` on large captures,
//! against tshark extracting the same names (DNS, SNI, HTTP Host) from the same file.
//!
//! Owns the benchmark procedure only; the traffic model is in `pcapgen`. Must not touch src/ (the
//! analysis is what is measured) and never runs timed assertions: it prints figures and targets.
//!
//! Environment:
//! - `TATTLE_BENCH_FULL=1`: also the 1 GiB capture (disk and minutes).
//! - `TATTLE_BENCH_ADVERSARIAL=1`: also three captures crafted to amplify memory or time (DNS
//!   names by compression pointers, a SYN flood, gzip bombs).
//! - `TATTLE_BENCH_RUNS` (default 5), `TATTLE_BENCH_TSHARK_RUNS` (default 1): runs per median.
//! - `TATTLE_BENCH_NO_TSHARK=1`: skip tshark (its runs dominate the bench time).
//! - `TATTLE_BENCH_DIR`: where captures go (default: a temp dir, removed afterwards).
//! - `TATTLE_BENCH_KEEP=1`: keep the generated captures (to profile them, see docs/performance.md).
//! - `TATTLE_BIN`: the tattle binary (default: the one cargo built for this bench, release profile).
//!
//! Arguments (after `--`): `--write-seeds DIR` writes small generated captures with a leading
//! control byte as fuzz seeds (fuzz/seeds/analyze) and exits.

mod pcapgen;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tattle_analysis::Analyzer;
use tattle_analysis::identifier::Identifier;

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
}

/// Spawns `cmd` (stdout and stderr to /dev/null) and reaps it with wait4 to read its own rusage.
///
/// Linux carries a process's peak RSS across exec, and a child spawned with vfork/posix_spawn
/// starts from its parent's memory: spawned straight from this bench (which holds a capture in
/// memory for the microbench), tattle would report the bench's peak as its own. So the measuring is
/// done by a fresh, small copy of this binary (`--rusage-of`, see `launcher`), whose own peak is a
/// few MiB.
fn run_child(cmd: &Command) -> Run {
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let me = std::env::current_exe().expect("own path");
    let mut launcher = Command::new(me);
    launcher
        .arg("--rusage-of")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::null())
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
    }
}

/// `--rusage-of REPORT PROGRAM ARGS…`: runs the program with this process's stdio, reaps it with
/// wait4 and writes `wall_ns max_rss_kib exit_status` to REPORT.
fn launcher(args: &[String]) -> ! {
    let [report, program, rest @ ..] = args else {
        eprintln!("usage: --rusage-of REPORT PROGRAM [ARGS…]");
        std::process::exit(2);
    };
    let start = Instant::now();
    let child = Command::new(program)
        .args(rest)
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

fn tattle_cmd(file: &Path) -> Command {
    let mut c = Command::new(tattle_bin());
    c.arg("analyze")
        .arg(file)
        .args(["--id", &format!("imei={}", pcapgen::IMEI)])
        .args(["--id", &format!("phone_number={}", pcapgen::PHONE)])
        .args(["--format", "json"]);
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

struct Generated {
    path: PathBuf,
    bytes: u64,
    frames: u64,
    planted: std::collections::BTreeMap<&'static str, u64>,
}

fn generate(dir: &Path, name: &str, target: u64) -> Generated {
    let path = dir.join(name);
    let start = Instant::now();
    let file = File::create(&path).expect("create capture");
    let mut g = pcapgen::Generator::new(SEED ^ target);
    let w = g
        .write(BufWriter::with_capacity(1 << 20, file), target)
        .expect("write capture");
    let (bytes, frames) = (w.bytes, w.frames);
    drop(w.into_inner());
    println!(
        "generated {name}: {:.1} MB, {frames} frames ({:.1} s)",
        mb(bytes),
        start.elapsed().as_secs_f64()
    );
    if target == 100 * MIB {
        println!("  traffic mix (sessions include their DNS lookup):");
        for (cat, (sessions, f, b)) in &g.mix {
            println!(
                "    {cat:<20} {sessions:>6} sessions {:>5.1}% of frames {:>5.1}% of bytes",
                100.0 * *f as f64 / frames as f64,
                100.0 * *b as f64 / bytes as f64
            );
        }
    }
    Generated {
        path,
        bytes,
        frames,
        planted: std::mem::take(&mut g.planted),
    }
}

/// Median throughput (MB/s) and the largest peak RSS (KiB) over `runs` runs.
fn measure(name: &str, bytes: u64, runs: usize, mut cmd: impl FnMut() -> Command) -> (f64, u64) {
    let mut rates = Vec::new();
    let mut rss = 0;
    for _ in 0..runs {
        let r = run_child(&cmd());
        // tattle exits 1 when it finds leaks (the planted identifiers): both are success.
        assert!(
            r.status == 0 || r.status == 1,
            "{name} failed with status {}",
            r.status
        );
        rates.push(mb(bytes) / r.wall.as_secs_f64());
        rss = rss.max(r.max_rss_kib);
    }
    (median(rates), rss)
}

/// Engine speed without process start or file I/O: the whole capture in memory, fed in 64 KiB
/// chunks as `analyze_reader` does.
fn microbench(g: &Generated, runs: usize) {
    let data = std::fs::read(&g.path).expect("read capture");
    let ids = [
        Identifier::new("imei", pcapgen::IMEI),
        Identifier::new("phone_number", pcapgen::PHONE),
    ];
    let mut rates = Vec::new();
    let mut last = None;
    let mut setup = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut a = Analyzer::new(&ids);
        setup.push(start.elapsed().as_secs_f64() * 1e3);
        for chunk in data.chunks(64 << 10) {
            a.feed(chunk).expect("feed");
        }
        let result = a.finish();
        rates.push(mb(data.len() as u64) / start.elapsed().as_secs_f64());
        last = Some(result);
    }
    let a = last.expect("at least one run");
    let mut found: Vec<String> = a
        .findings
        .iter()
        .map(|f| format!("{}:{}", f.identifier, f.encoding))
        .collect();
    found.sort();
    found.dedup();
    println!(
        "in-process Analyzer::feed ({:.0} MB, single thread): {:.0} MB/s median of {runs}",
        mb(data.len() as u64),
        median(rates)
    );
    println!(
        "  Analyzer::new (needles + automaton for 2 identifiers): {:.2} ms median",
        median(setup)
    );
    println!(
        "  sanity: {} frames, {} flows, {} DNS queries, {} findings, {} damage; kinds found: {}",
        a.frames,
        a.flows.len(),
        a.dns_queries.len(),
        a.findings.len(),
        a.damage.len(),
        found.join(" ")
    );
    // What was planted must be found, or the throughput figure measures a broken engine.
    for (&form, &n) in &g.planted {
        let hit = if let Some(kind) = form.strip_suffix(":gzip") {
            found
                .iter()
                .any(|f| f.starts_with(&format!("{kind}:")) && f.contains("gzip"))
        } else {
            found.iter().any(|f| f == form)
        };
        assert!(hit, "planted {form} ({n} times) not found");
    }
    println!("  planted: {:?}", g.planted);
    if !env_flag("TATTLE_BENCH_NO_TSHARK") {
        compare_names(&g.path, &a);
    }
}

/// The names tattle learnt (DNS questions; SNI and HTTP hosts of flows) against tshark's fields on
/// the same file: the generated traffic must read the same to both, or the comparison of their
/// speeds compares different work.
fn compare_names(file: &Path, a: &tattle_analysis::Analysis) {
    use std::collections::BTreeSet;
    use tattle_analysis::HostSource;
    let out = tshark_cmd(file)
        .stderr(Stdio::null())
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut t_dns, mut t_named) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        let mut fields = line.split('\t');
        if let Some(q) = fields.next().filter(|q| !q.is_empty()) {
            t_dns.extend(q.split(',').map(str::to_string));
        }
        t_named.extend(fields.filter(|f| !f.is_empty()).map(str::to_string));
    }
    let ours_dns: BTreeSet<String> = a.dns_queries.iter().map(|q| q.name.clone()).collect();
    let ours_named: BTreeSet<String> = a
        .flows
        .iter()
        .filter(|f| matches!(f.host_source, HostSource::Sni | HostSource::Http))
        .map(|f| f.host.clone())
        .collect();
    println!(
        "  names vs tshark: DNS {} ({} names), SNI/HTTP hosts {} ({} names)",
        if ours_dns == t_dns { "agree" } else { "DIFFER" },
        t_dns.len(),
        if ours_named == t_named {
            "agree"
        } else {
            "DIFFER"
        },
        t_named.len()
    );
    assert!(
        ours_dns == t_dns && ours_named == t_named,
        "tattle and tshark disagree: dns {:?}, hosts {:?}",
        ours_dns.symmetric_difference(&t_dns).collect::<Vec<_>>(),
        ours_named
            .symmetric_difference(&t_named)
            .collect::<Vec<_>>()
    );
}

/// Captures built to make the analysis hold more than they contain (see `pcapgen`).
fn adversarial(dir: &Path, runs: usize) {
    type Gen = fn(BufWriter<File>, u64) -> std::io::Result<pcapgen::PcapWriter<BufWriter<File>>>;
    let cases: [(&str, &str, Gen, u64); 3] = [
        (
            "dns-amplification.pcap",
            "64 questions per query by compression pointers",
            pcapgen::dns_amplification,
            30_000,
        ),
        (
            "syn-flood.pcap",
            "300 000 connections opened, none closed",
            pcapgen::syn_flood,
            300_000,
        ),
        (
            "gzip-bombs.pcap",
            "100 POSTs of 8 KB gzip inflating to 8 MiB each",
            pcapgen::gzip_bombs,
            100,
        ),
    ];
    for (name, what, generate, packets) in cases {
        let path = dir.join(name);
        let file = File::create(&path).expect("create capture");
        let w = generate(BufWriter::new(file), packets).expect("write capture");
        let bytes = w.bytes;
        drop(w.into_inner());
        let (rate, rss) = measure("tattle", bytes, runs, || tattle_cmd(&path));
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
    for (i, size) in [2_000u64, 6_000, 12_000].into_iter().enumerate() {
        let mut g = pcapgen::Generator::new(SEED + i as u64);
        g.concurrency = 3;
        g.hard_limit = Some(size);
        let mut bytes = Vec::new();
        let w = g.write(&mut bytes, size).expect("write to memory");
        drop(w);
        for control in [0u8, 1, 2, 3] {
            let mut seed = vec![control];
            seed.extend_from_slice(&bytes);
            let path = dir.join(format!("gen{i}-{control}"));
            std::fs::write(&path, &seed).expect("write seed");
        }
    }
    println!("seeds written to {}", dir.display());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--rusage-of") {
        launcher(&args[2..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--write-seeds") {
        let dir = args.get(i + 1).expect("--write-seeds DIR");
        write_seeds(Path::new(dir));
        return;
    }
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored: there is one bench.
    let runs = env_num("TATTLE_BENCH_RUNS", 5);
    let tshark_runs = env_num("TATTLE_BENCH_TSHARK_RUNS", 1);
    let tmp;
    let dir = match std::env::var_os("TATTLE_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!("tattle: {}", tattle_bin().display());
    let mut sizes = vec![
        ("capture-100M.pcap", 100 * MIB),
        ("capture-256M.pcap", 256 * MIB),
    ];
    if env_flag("TATTLE_BENCH_FULL") {
        sizes.push(("capture-1G.pcap", 1024 * MIB));
    }
    let mut rss_rows = Vec::new();
    for (name, size) in sizes {
        let g = generate(&dir, name, size);
        let (rate, rss) = measure("tattle", g.bytes, runs, || tattle_cmd(&g.path));
        println!(
            "{name}: tattle analyze {:.0} MB/s (median of {runs}), peak RSS {:.1} MiB",
            rate,
            rss as f64 / 1024.0
        );
        rss_rows.push((name, g.bytes, g.frames, rss));
        if size == 100 * MIB {
            microbench(&g, runs.min(3));
        }
        if size == 256 * MIB && !env_flag("TATTLE_BENCH_NO_TSHARK") {
            let (trate, trss) = measure("tshark", g.bytes, tshark_runs, || tshark_cmd(&g.path));
            let ratio = rate / trate;
            println!(
                "{name}: tshark fields {:.1} MB/s (median of {tshark_runs}), peak RSS {:.0} MiB",
                trate,
                trss as f64 / 1024.0
            );
            println!(
                "{name}: tattle/tshark = {ratio:.1}x (target >= {TARGET_RATIO}x: {})",
                if ratio >= TARGET_RATIO {
                    "met"
                } else {
                    "NOT met"
                }
            );
        }
        if !env_flag("TATTLE_BENCH_KEEP") {
            let _ = std::fs::remove_file(&g.path);
        }
    }
    if env_flag("TATTLE_BENCH_ADVERSARIAL") {
        adversarial(&dir, runs.min(3));
    }
    println!("peak RSS by capture size (target <= {TARGET_RSS_MIB} MiB, flat):");
    for (name, bytes, frames, rss) in rss_rows {
        let mib = rss as f64 / 1024.0;
        println!(
            "  {name:<20} {:>8.1} MB {frames:>9} frames  {mib:>6.1} MiB  {}",
            mb(bytes),
            if mib <= TARGET_RSS_MIB { "ok" } else { "OVER" }
        );
    }
}
