//! The handset's `tcpdump`, as a phone's writes it.
//!
//! Accepts what device-side capture uses (`tcpdump -i any -U -w - [-s 0] [--immediate-mode] [-p]
//! [-c N] [FILTER…]`). In a handset with a private network namespace (the default, see
//! `network::netns`) the capture is the handset's own packet socket on that namespace's `lo`
//! (`run_private`, no root), re-framed as the phone's interface would show it
//! (`network::phone_link`): `-i any` as Linux cooked v1 up to Android 12 and v2 from 13, `wlan0` (or
//! no `-i`) as Ethernet between the phone's Wi-Fi MAC and its access point's, with each release's
//! banner and snaplen. A filter expression is compiled by the host's tcpdump (`-ddd`, for whole
//! frames; the snaplen is applied when writing) and text output printed by `tcpdump -r -`.
//!
//! On the host's loopback (the fallback, root needed) it runs the host's tcpdump: `tcpdump -i lo -U
//! --immediate-mode -s SNAPLEN -w - -Z root '(net 127.77.N.0/24) and (FILTER)'`, its stdout into
//! the shell's stdout and its stderr into the shell's stderr; the `-i` value is then ignored.
//! Stopping: when the host closes the stream (`io.stdout.closed()`) or the handset's network shuts
//! down, tcpdump gets SIGINT (SIGTERM loses packets still buffered), then SIGKILL after a grace.
//!
//! Must not touch: the handset's sockets (that is `network`), the adbd, anything above `vhandset`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::ShellIo;
use super::network::loopback_capture::{Frame, LoopbackCapture};
use super::network::netns::Netns;
use super::network::phone_link::{Framing, parse_mac};
use super::network::{HandsetNetwork, stopped};

const USAGE: &str =
    "Usage: tcpdump [-AbdDefhHIJKlLnNOpqStuUvxX#] [ -B size ] [ -c count ] [--count]
\t\t[ -C file_size ] [ -E algo:secret ] [ -F file ] [ -G seconds ]
\t\t[ -i interface ] [ --immediate-mode ] [ -j tstamptype ]
\t\t[ -M secret ] [ --number ] [ --print ] [ -Q in|out|inout ]
\t\t[ -r file ] [ -s snaplen ] [ -T type ] [ --version ]
\t\t[ -V file ] [ -w file ] [ -W filecount ] [ -y datalinktype ]
\t\t[ --time-stamp-precision precision ] [ --micro ] [ --nano ]
\t\t[ -z postrotate-command ] [ -Z user ] [ expression ]
";
/// How long tcpdump gets to flush and exit after SIGINT.
const GRACE: Duration = Duration::from_secs(3);
const MAX_FILTER: usize = 4096;
/// Largest frame on the host's loopback: 65536-byte MTU plus the 14-byte Ethernet header.
const LO_MAX_FRAME: u32 = 65_550;
const PERMISSION_FIX: &str = "tattle: capturing on the host's loopback needs root or CAP_NET_RAW on tcpdump: run \
tattle as root, or `sudo setcap cap_net_raw,cap_net_admin+eip \"$(command -v tcpdump)\"`\n";
const NOT_FOUND_FIX: &str = "tattle: the virtual handset's tcpdump runs the host's tcpdump, which is not installed \
here: `sudo apt-get install tcpdump` (or set TATTLE_TCPDUMP to its path)\n";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-w -`: pcap to stdout. Without `-w`, text lines (`-n -l` on the host).
    pub write_pcap: bool,
    pub snaplen: u32,
    pub count: Option<u64>,
    /// Flags passed through to the host in text mode (`-n`, `-v`, `-q`, `-e`, `-t`, `-x`…).
    pub text_flags: Vec<char>,
    pub filter: Option<String>,
    pub help: bool,
    /// `-i NAME`, as given.
    pub interface: Option<String>,
}

/// Why the command line is refused; shown on stderr before the usage text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// Parses argv after `tcpdump`, the way tcpdump's getopt does for the options that matter here.
pub fn parse_args(args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options {
        write_pcap: false,
        snaplen: 262_144,
        count: None,
        text_flags: Vec::new(),
        filter: None,
        help: false,
        interface: None,
    };
    let mut filter: Vec<&str> = Vec::new();
    let mut i = 0;
    let value = |i: &mut usize, inline: &str, opt: &str| -> Result<String, UsageError> {
        if !inline.is_empty() {
            return Ok(inline.to_string());
        }
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| UsageError(format!("tcpdump: option requires an argument -- '{opt}'")))
    };
    while i < args.len() {
        let arg = args[i].as_str();
        if !filter.is_empty() || !arg.starts_with('-') || arg == "-" {
            filter.push(arg);
            i += 1;
            continue;
        }
        if arg == "--" {
            filter.extend(args[i + 1..].iter().map(String::as_str));
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = long.split_once('=').unwrap_or((long, ""));
            match name {
                "immediate-mode" | "packet-buffered" | "no-promiscuous-mode" | "no-optimize" => {}
                "help" | "version" => o.help = true,
                "interface" => o.interface = Some(value(&mut i, inline, name)?),
                "snapshot-length" => o.snaplen = snaplen(&value(&mut i, inline, name)?)?,
                "count" => {} // `--count` prints only the count; treat as capture
                _ => return Err(UsageError(format!("tcpdump: unrecognized option '{arg}'"))),
            }
            i += 1;
            continue;
        }
        let cluster = &arg[1..];
        for (pos, c) in cluster.char_indices() {
            let rest = &cluster[pos + c.len_utf8()..];
            match c {
                'i' => {
                    o.interface = Some(value(&mut i, rest, "i")?);
                    break;
                }
                'Z' | 'B' | 'j' | 'y' | 'T' => {
                    value(&mut i, rest, &c.to_string())?;
                    break;
                }
                'w' => {
                    let v = value(&mut i, rest, "w")?;
                    if v != "-" {
                        return Err(UsageError(format!(
                            "tcpdump: {v}: the virtual handset writes captures to stdout only; use -w -"
                        )));
                    }
                    o.write_pcap = true;
                    break;
                }
                's' => {
                    o.snaplen = snaplen(&value(&mut i, rest, "s")?)?;
                    break;
                }
                'c' => {
                    let v = value(&mut i, rest, "c")?;
                    match v.parse::<u64>() {
                        Ok(n) if n > 0 => o.count = Some(n),
                        _ => return Err(UsageError(format!("tcpdump: invalid packet count {v}"))),
                    }
                    break;
                }
                'r' | 'F' | 'C' | 'G' | 'W' | 'z' | 'V' | 'E' | 'M' | 'Q' => {
                    return Err(UsageError(format!(
                        "tcpdump: option -{c} is not supported on the virtual handset"
                    )));
                }
                'U' | 'p' | 'l' | 'K' | 'O' | 'S' | 'u' | '#' => {}
                'n' | 'v' | 'q' | 'e' | 't' | 'x' | 'X' | 'A' | 'N' => o.text_flags.push(c),
                'h' | 'D' | 'L' => o.help = true,
                _ => return Err(UsageError(format!("tcpdump: invalid option -- '{c}'"))),
            }
        }
        i += 1;
    }
    if !filter.is_empty() {
        let f = filter.join(" ");
        check_filter(&f)?;
        o.filter = Some(f);
    }
    Ok(o)
}

fn snaplen(v: &str) -> Result<u32, UsageError> {
    match v.parse::<u32>() {
        Ok(0) => Ok(262_144),
        Ok(n) if n <= 262_144 => Ok(n),
        _ => Err(UsageError(format!("tcpdump: invalid snaplen {v}"))),
    }
}

/// The user's filter is and-ed with the handset's network inside parentheses; unbalanced ones could
/// close that group and widen the capture to other handsets, so they are refused.
fn check_filter(f: &str) -> Result<(), UsageError> {
    if f.len() > MAX_FILTER || f.chars().any(|c| c.is_control()) {
        return Err(UsageError(
            "tcpdump: filter expression too long or not printable".into(),
        ));
    }
    // The expression reaches the host's tcpdump as an argument: one that looks like an option
    // (`-F FILE` after `--`) must never become one there.
    if f.trim_start().starts_with('-') {
        return Err(UsageError(
            "tcpdump: syntax error in filter expression: it may not start with `-`".into(),
        ));
    }
    let mut depth = 0i32;
    for c in f.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if depth != 0 {
        return Err(UsageError(
            "tcpdump: syntax error in filter expression: unbalanced parentheses".into(),
        ));
    }
    Ok(())
}

/// The host tcpdump's argv for the handset on `subnet` (`127.77.N.0/24`).
pub fn host_args(o: &Options, subnet: &str) -> Vec<String> {
    let mut a: Vec<String> = vec!["-i".into(), "lo".into()];
    if o.write_pcap {
        a.extend([
            "-U".into(),
            "--immediate-mode".into(),
            "-w".into(),
            "-".into(),
        ]);
    } else {
        a.extend(["-l".into(), "--immediate-mode".into()]);
        let flags: String = o.text_flags.iter().collect();
        if !flags.is_empty() {
            a.push(format!("-{flags}"));
        }
    }
    // Immediate mode gives every packet a ring slot of snaplen bytes: with tcpdump's 262144 default and
    // its 2 MiB buffer only 8 slots exist and a burst of handset traffic is dropped by the kernel. On
    // `lo` no frame exceeds the 65536-byte MTU + 14-byte Ethernet header, so capping the snaplen there
    // truncates nothing, and a 32 MiB buffer holds ~500 full frames.
    a.extend([
        "-s".into(),
        o.snaplen.min(LO_MAX_FRAME).to_string(),
        "-B".into(),
        "32768".into(),
    ]);
    // Debian's tcpdump switches to user `tcpdump` after opening the device; as root keep root so the
    // process can still write to the pipes it was given (a no-op when not started as root).
    a.extend(["-Z".into(), "root".into()]);
    if let Some(c) = o.count {
        a.extend(["-c".into(), c.to_string()]);
    }
    a.push(match &o.filter {
        Some(f) => format!("(net {subnet}) and ({f})"),
        None => format!("net {subnet}"),
    });
    a
}

pub use crate::host_tools::find_tcpdump;

async fn say(io: &ShellIo, text: &str) {
    let _ = io.stderr.send(text.as_bytes().to_vec()).await;
}

/// Runs the handset's `tcpdump` with `args` (argv after "tcpdump"); returns the exit status.
pub async fn run(args: &[String], network: &HandsetNetwork, io: ShellIo) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(UsageError(msg)) => {
            say(&io, &format!("{msg}\n{USAGE}")).await;
            return 1;
        }
    };
    if opts.help {
        say(
            &io,
            &format!("tcpdump (tattle virtual handset; runs the host's tcpdump)\n{USAGE}"),
        )
        .await;
        return 0;
    }
    if let Some(ns) = network.private_netns() {
        return run_private(&opts, ns, network, io).await;
    }
    let Some(bin) = find_tcpdump() else {
        say(
            &io,
            &format!("tcpdump: lo: no tcpdump on the host\n{NOT_FOUND_FIX}"),
        )
        .await;
        return 1;
    };
    let host_args = host_args(&opts, &network.subnet());
    tracing::debug!(tcpdump = %bin.display(), args = ?host_args, "starting host tcpdump");
    let mut child = match Command::new(&bin)
        .args(&host_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            say(
                &io,
                &format!("tcpdump: {}: {e}\n{NOT_FOUND_FIX}", bin.display()),
            )
            .await;
            return 1;
        }
        Err(e) => {
            say(&io, &format!("tcpdump: lo: You don't have permission to capture on that device ({e})\n{PERMISSION_FIX}"))
                .await;
            return 1;
        }
    };
    let pid = child.id();
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill().await;
        return 1;
    };

    // stderr: forwarded as it comes ("listening on …" tells the host the capture is live); the start of
    // it is kept to recognise a permission failure.
    let err_tx = io.stderr.clone();
    let stderr_task = tokio::spawn(async move {
        let mut head = Vec::new();
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = err.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if head.len() < 4096 {
                head.extend_from_slice(&buf[..n.min(4096 - head.len())]);
            }
            let _ = err_tx.send(buf[..n].to_vec()).await;
        }
        head
    });

    enum End {
        Exited,
        HostGone,
        Shutdown,
    }
    let mut shutdown = network.shutdown_signal();
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        tokio::select! {
            r = out.read(&mut buf) => match r {
                Ok(0) | Err(_) => break End::Exited,
                Ok(n) => {
                    if io.stdout.send(buf[..n].to_vec()).await.is_err() {
                        break End::HostGone;
                    }
                }
            },
            _ = io.stdout.closed() => break End::HostGone,
            _ = stopped(&mut shutdown) => break End::Shutdown,
        }
    };
    if !matches!(end, End::Exited) {
        interrupt(pid);
    }
    if matches!(end, End::Shutdown) {
        // The host is still reading: pass on what tcpdump flushes after SIGINT.
        let _ = tokio::time::timeout(GRACE, async {
            while let Ok(n) = out.read(&mut buf).await {
                if n == 0 || io.stdout.send(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    let status = match tokio::time::timeout(GRACE, child.wait()).await {
        Ok(Ok(s)) => s.code().unwrap_or(1),
        Ok(Err(_)) => 1,
        Err(_) => {
            tracing::warn!("host tcpdump ignored SIGINT for {GRACE:?}; killing it");
            let _ = child.kill().await;
            1
        }
    };
    let head = tokio::time::timeout(GRACE, stderr_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if status != 0 {
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if text.contains("permission") || text.contains("operation not permitted") {
            say(&io, PERMISSION_FIX).await;
        }
    }
    tracing::debug!(status, "host tcpdump ended");
    status
}

/// The capture in the handset's private namespace: its own packet socket on the namespace's `lo`
/// (no root, no host tcpdump needed to capture), written as tcpdump writes it. The host's tcpdump is
/// still used where tcpdump itself is the point: compiling a filter expression (`-ddd`) and printing
/// text (`-r -`), so both behave exactly as the real one does.
async fn run_private(opts: &Options, ns: &Netns, network: &HandsetNetwork, io: ShellIo) -> i32 {
    let sdk: u32 = network
        .profile()
        .prop("ro.build.version.sdk")
        .and_then(|s| s.parse().ok())
        .unwrap_or(network.profile().generation.sdk.0);
    let framing = Framing::for_capture(opts.interface.as_deref(), sdk);
    let snaplen = opts.snaplen.min(Framing::max_snaplen(sdk));
    let phone_mac = network
        .profile()
        .identifiers
        .get("wifi_mac")
        .and_then(|m| parse_mac(m))
        .unwrap_or([0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc]);
    let handset_ip = network.handset_ip();
    let program = match &opts.filter {
        None => None,
        // Compiled for whole frames: the filter's `ret` would otherwise trim in the kernel, and the
        // wire length would be lost; the user's snaplen is applied when each record is written.
        Some(expr) => match compile_filter(expr, LO_MAX_FRAME).await {
            Ok(p) => Some(p),
            Err(text) => {
                say(&io, &text).await;
                return 1;
            }
        },
    };
    let mut capture = match LoopbackCapture::open(ns, program.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            say(&io, &format!("tcpdump: lo: {e}\n")).await;
            return 1;
        }
    };
    // Text output: the host's tcpdump reads our pcap and prints it, flags and all.
    let mut printer = None;
    if !opts.write_pcap {
        let Some(bin) = find_tcpdump() else {
            say(&io, &format!("tcpdump: lo: printing packets as text needs the host's tcpdump\n{NOT_FOUND_FIX}")).await;
            return 1;
        };
        let mut args: Vec<String> = vec!["-r".into(), "-".into(), "-l".into()];
        let flags: String = opts.text_flags.iter().collect();
        if !flags.is_empty() {
            args.push(format!("-{flags}"));
        }
        match Command::new(&bin)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(mut child) => {
                let (Some(stdin), Some(mut out)) = (child.stdin.take(), child.stdout.take()) else {
                    return 1;
                };
                let tx = io.stdout.clone();
                let forward = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = out.read(&mut buf).await {
                        if n == 0 || tx.send(buf[..n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                });
                printer = Some((child, stdin, forward));
            }
            Err(e) => {
                say(
                    &io,
                    &format!("tcpdump: {}: {e}\n{NOT_FOUND_FIX}", bin.display()),
                )
                .await;
                return 1;
            }
        }
    }
    let interface = opts.interface.as_deref().unwrap_or("wlan0");
    say(&io, &framing.banner(interface, sdk, snaplen)).await;
    // tcpdump flushes the file header as soon as it opens the dump with -U (tcpdump.c: `if (Uflag)
    // pcap_dump_flush(pdd)`); hosts wait for those 24 bytes to know the capture is live.
    let header = pcap_header(snaplen, framing.linktype());
    let mut sent_header = printer.is_none() && io.stdout.send(header.to_vec()).await.is_ok();
    let mut shutdown = network.shutdown_signal();
    let mut buf = vec![0u8; LO_MAX_FRAME as usize];
    let mut captured = 0u64;
    loop {
        let frame = tokio::select! {
            f = capture.next(&mut buf) => match f {
                Ok(f) => f,
                Err(e) => {
                    say(&io, &format!("tcpdump: pcap_loop: {e}\n")).await;
                    break;
                }
            },
            _ = io.stdout.closed() => break,
            _ = stopped(&mut shutdown) => break,
        };
        // The loopback's Ethernet header becomes the phone's: wlan0's frame, or a cooked header.
        let Some(link) = framing.header(&buf[..frame.captured], handset_ip, phone_mac) else {
            continue;
        };
        let body = &buf[Framing::LO_HEADER..frame.captured];
        let wire = frame.wire - Framing::LO_HEADER + link.len();
        let keep = (link.len() + body.len()).min(snaplen as usize);
        let mut chunk = Vec::with_capacity(header.len() + 16 + keep);
        if !sent_header {
            chunk.extend_from_slice(&header);
            sent_header = true;
        }
        chunk.extend_from_slice(&record_header(&frame, keep, wire));
        chunk.extend_from_slice(&link[..link.len().min(keep)]);
        chunk.extend_from_slice(&body[..keep.saturating_sub(link.len())]);
        let delivered = match &mut printer {
            Some((_, stdin, _)) => stdin.write_all(&chunk).await.is_ok(),
            None => io.stdout.send(chunk).await.is_ok(),
        };
        if !delivered {
            break;
        }
        captured += 1;
        if opts.count.is_some_and(|c| captured >= c) {
            break;
        }
    }
    if let Some((mut child, stdin, forward)) = printer {
        drop(stdin);
        let _ = tokio::time::timeout(GRACE, child.wait()).await;
        let _ = tokio::time::timeout(GRACE, forward).await;
    }
    let stats = capture.stats();
    say(
        &io,
        &format!(
            "{captured} packets captured\n{} packets received by filter\n{} packets dropped by kernel\n",
            stats.received, stats.dropped
        ),
    )
    .await;
    0
}

/// The pcap file header tcpdump writes: native byte order, microsecond stamps, `linktype`.
fn pcap_header(snaplen: u32, linktype: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
    h[4..6].copy_from_slice(&2u16.to_ne_bytes());
    h[6..8].copy_from_slice(&4u16.to_ne_bytes());
    h[16..20].copy_from_slice(&snaplen.to_ne_bytes());
    h[20..24].copy_from_slice(&linktype.to_ne_bytes());
    h
}

fn record_header(frame: &Frame, kept: usize, wire: usize) -> [u8; 16] {
    let since = frame
        .time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&(since.as_secs() as u32).to_ne_bytes());
    h[4..8].copy_from_slice(&since.subsec_micros().to_ne_bytes());
    h[8..12].copy_from_slice(&(kept as u32).to_ne_bytes());
    h[12..16].copy_from_slice(&(wire as u32).to_ne_bytes());
    h
}

/// Compiles `expr` to classic BPF with the host's tcpdump (`-ddd` on an Ethernet pcap header fed on
/// stdin, which needs no capture permission), so the handset's filters mean exactly what tcpdump's
/// mean. Errors are tcpdump's own text.
async fn compile_filter(expr: &str, snaplen: u32) -> Result<Vec<libc::sock_filter>, String> {
    let Some(bin) = find_tcpdump() else {
        return Err(format!(
            "tcpdump: a filter expression is compiled by the host's tcpdump, which is not installed\n{NOT_FOUND_FIX}"
        ));
    };
    let mut child = Command::new(&bin)
        .args(["-r", "-", "-ddd", "-s", &snaplen.to_string(), "--", expr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("tcpdump: {}: {e}\n{NOT_FOUND_FIX}", bin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // Compiled for the loopback's Ethernet frames, which the kernel filters before re-framing.
        let _ = stdin.write_all(&pcap_header(snaplen, 1)).await;
    }
    let out = tokio::time::timeout(GRACE, child.wait_with_output())
        .await
        .map_err(|_| "tcpdump: compiling the filter took too long\n".to_string())?
        .map_err(|e| format!("tcpdump: {e}\n"))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("reading from file"))
            .map(|l| format!("{l}\n"))
            .collect();
        return Err(text);
    }
    parse_bpf(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "tcpdump: could not read the compiled filter\n".to_string())
}

/// `tcpdump -ddd` output: a count line, then one `code jt jf k` line per instruction.
fn parse_bpf(text: &str) -> Option<Vec<libc::sock_filter>> {
    let mut lines = text.lines();
    let count: usize = lines.next()?.trim().parse().ok()?;
    let program: Vec<libc::sock_filter> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<u32> = l
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let [code, jt, jf, k] = v[..] else {
                return None;
            };
            Some(libc::sock_filter {
                code: u16::try_from(code).ok()?,
                jt: u8::try_from(jt).ok()?,
                jf: u8::try_from(jf).ok()?,
                k,
            })
        })
        .collect::<Option<_>>()?;
    (program.len() == count && count > 0).then_some(program)
}

fn interrupt(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped: `wait` comes after).
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn device_side_capture_command_lines() {
        let o = parse_args(&args("-i any -U -w - -s 0 --immediate-mode -p")).unwrap();
        assert!(o.write_pcap);
        assert_eq!(
            (o.snaplen, o.count, o.filter.as_deref()),
            (262_144, None, None)
        );
        let o = parse_args(&args("-i any -U -w - -c 5 udp port 53")).unwrap();
        assert_eq!(o.count, Some(5));
        assert_eq!(o.filter.as_deref(), Some("udp port 53"));
        let o = parse_args(&args("-iany -Uw- -s1500 tcp")).unwrap();
        assert!(o.write_pcap);
        assert_eq!(o.snaplen, 1500);
        let a = host_args(&o, "127.77.9.0/24");
        assert_eq!(a.last().unwrap(), "(net 127.77.9.0/24) and (tcp)");
        assert!(a.windows(2).any(|w| w == ["-Z", "root"]));
        let o = parse_args(&args("-nn")).unwrap();
        assert!(!o.write_pcap);
        assert_eq!(o.text_flags, ['n', 'n']);
    }

    #[test]
    fn nonsense_is_a_usage_error() {
        assert!(
            parse_args(&args("-k"))
                .unwrap_err()
                .0
                .contains("invalid option -- 'k'")
        );
        assert!(
            parse_args(&args("-w"))
                .unwrap_err()
                .0
                .contains("requires an argument")
        );
        assert!(parse_args(&args("-w /sdcard/x.pcap")).is_err());
        assert!(parse_args(&args("-c zero")).is_err());
        assert!(parse_args(&args("--frobnicate")).is_err());
        // Closing the handset's group would widen the capture to other handsets.
        assert!(parse_args(&args("-w - tcp) or (udp")).is_err());
        // A filter reaches the host's tcpdump as an argument: it must never read as an option there.
        let e = parse_args(&args("-w - -- -F/etc/passwd")).unwrap_err();
        assert!(e.0.contains("may not start with `-`"), "{}", e.0);
    }
}
