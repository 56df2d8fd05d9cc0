//! The shell's commands that finish with an output (everything but `sleep`, `exit`, `tcpdump` and
//! stdin-reading `cat`, which the executor runs itself). Output formats follow Android's own tools:
//! toybox (`date`, `ls`, `id`, `uname`, `echo`), `getprop`/`setprop`, `SettingsCmd`, `cmds/content`,
//! `am` (`Starting: Intent { … }` with `Uri.toSafeString` masking for sms:), `pm`, `input`, `wm`,
//! `service`.
//!
//! Must not touch: the streams (commands return bytes), the network (events are returned).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::providers::{self, Output};
use super::{Compose, Handset, fs, now_ms, service};
use crate::vhandset::HandsetEvent;
use tattle_analysis::identifier::kinds;

/// What a command produced.
#[derive(Debug, Default)]
pub struct CmdResult {
    pub out: Vec<u8>,
    pub err: Vec<u8>,
    pub code: i32,
    pub events: Vec<HandsetEvent>,
}

impl CmdResult {
    fn ok(out: impl Into<Vec<u8>>) -> Self {
        CmdResult {
            out: out.into(),
            ..Default::default()
        }
    }
    fn fail(err: impl Into<Vec<u8>>, code: i32) -> Self {
        CmdResult {
            err: err.into(),
            code,
            ..Default::default()
        }
    }
}

impl From<Output> for CmdResult {
    fn from(o: Output) -> Self {
        CmdResult {
            out: o.out.into_bytes(),
            err: o.err.into_bytes(),
            code: o.code,
            events: o.events,
        }
    }
}

/// Packages the handset has, with their APK paths.
const PACKAGES: &[(&str, &str)] = &[
    ("android", "/system/framework/framework-res.apk"),
    (
        "com.android.contacts",
        "/product/priv-app/Contacts/Contacts.apk",
    ),
    (
        "com.android.messaging",
        "/product/app/messaging/messaging.apk",
    ),
    (
        "com.android.phone",
        "/system/priv-app/TeleService/TeleService.apk",
    ),
    (
        "com.android.providers.contacts",
        "/system/priv-app/ContactsProvider/ContactsProvider.apk",
    ),
    (
        "com.android.providers.settings",
        "/system/priv-app/SettingsProvider/SettingsProvider.apk",
    ),
    (
        "com.android.providers.telephony",
        "/system/priv-app/TelephonyProvider/TelephonyProvider.apk",
    ),
    (
        "com.android.settings",
        "/system_ext/priv-app/Settings/Settings.apk",
    ),
    ("com.android.shell", "/system/priv-app/Shell/Shell.apk"),
    (
        "com.android.systemui",
        "/system_ext/priv-app/SystemUI/SystemUI.apk",
    ),
    (
        "com.google.android.apps.messaging",
        "/product/app/PrebuiltBugle/PrebuiltBugle.apk",
    ),
];

const MESSAGING: &[&str] = &["com.android.messaging", "com.google.android.apps.messaging"];

/// Runs a finished-output command. `input` is a pipe's or a `<` redirection's bytes.
pub fn run(
    handset: &Arc<Handset>,
    args: &[String],
    input: Option<&[u8]>,
    vars: &BTreeMap<String, String>,
) -> CmdResult {
    let name = args[0].rsplit('/').next().unwrap_or(&args[0]);
    let rest = &args[1..];
    let cwd = vars.get("PWD").map_or("/", String::as_str);
    match name {
        "true" | ":" => CmdResult::default(),
        "false" => CmdResult {
            code: 1,
            ..Default::default()
        },
        "echo" => echo(rest),
        "id" => CmdResult::ok(
            "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs) context=u:r:shell:s0\n",
        ),
        "whoami" => CmdResult::ok("shell\n"),
        "pwd" => CmdResult::ok(format!("{cwd}\n")),
        "uname" => uname(handset, rest),
        "date" => date(rest),
        "env" | "printenv" => {
            let mut out = String::new();
            for (k, v) in vars {
                out.push_str(&format!("{k}={v}\n"));
            }
            CmdResult::ok(out)
        }
        "ls" => ls(handset, rest, cwd),
        "cat" => cat(handset, rest, input, cwd),
        "rm" => rm(handset, rest, cwd),
        "mkdir" => mkdir(handset, rest, cwd),
        "grep" => grep(rest, input),
        "head" => head(rest, input),
        "wc" => wc(rest, input),
        "getprop" => getprop(handset, rest),
        "setprop" => setprop(handset, rest),
        "settings" => providers::settings_cmd(&mut handset.state().settings, rest).into(),
        "content" => providers::content_cmd(&mut handset.state().providers, rest, now_ms()).into(),
        "am" => am(handset, rest),
        "pm" => pm(handset, rest),
        "cmd" => match rest.first().map(String::as_str) {
            Some("package") => pm(handset, &rest[1..]),
            Some("activity") => am(handset, &rest[1..]),
            Some("settings") => {
                providers::settings_cmd(&mut handset.state().settings, &rest[1..]).into()
            }
            Some(s) => CmdResult::fail(format!("cmd: Can't find service: {s}\n"), 20),
            None => CmdResult::fail(
                "cmd: No service specified; use -l to list all running services.\n",
                20,
            ),
        },
        "input" => input_cmd(handset, rest),
        "service" => service_cmd(handset, rest),
        "wm" => match rest.first().map(String::as_str) {
            Some("size") => CmdResult::ok("Physical size: 1080x2400\n"),
            Some("density") => CmdResult::ok("Physical density: 420\n"),
            _ => CmdResult::fail("Error: unknown command\n", 1),
        },
        "dumpsys" => dumpsys(rest),
        "logcat" => CmdResult::default(),
        "sh" | "mksh" => CmdResult::fail(
            "/system/bin/sh: only `sh -c COMMAND` without redirections is supported here\n",
            2,
        ),
        "svc" | "monkey" | "sync" => CmdResult::default(),
        "which" => {
            let mut out = String::new();
            let mut code = 0;
            for a in rest {
                if is_known(a) {
                    out.push_str(&format!("/system/bin/{a}\n"));
                } else {
                    code = 1;
                }
            }
            CmdResult {
                out: out.into_bytes(),
                code,
                ..Default::default()
            }
        }
        _ => {
            let msg = if args[0].contains('/') && !is_known(name) {
                format!("/system/bin/sh: {}: inaccessible or not found\n", args[0])
            } else {
                format!("/system/bin/sh: {}: not found\n", args[0])
            };
            CmdResult::fail(msg, 127)
        }
    }
}

fn is_known(name: &str) -> bool {
    matches!(
        name,
        "echo"
            | "id"
            | "whoami"
            | "pwd"
            | "uname"
            | "date"
            | "env"
            | "printenv"
            | "ls"
            | "cat"
            | "rm"
            | "mkdir"
            | "grep"
            | "head"
            | "wc"
            | "getprop"
            | "setprop"
            | "settings"
            | "content"
            | "am"
            | "pm"
            | "cmd"
            | "input"
            | "service"
            | "wm"
            | "dumpsys"
            | "logcat"
            | "svc"
            | "sleep"
            | "tcpdump"
            | "true"
            | "false"
            | "which"
            | "sh"
            | "monkey"
            | "sync"
    )
}

fn echo(args: &[String]) -> CmdResult {
    let mut newline = true;
    let mut escapes = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-n" => newline = false,
            "-e" => escapes = true,
            "-E" => escapes = false,
            "-ne" | "-en" => {
                newline = false;
                escapes = true;
            }
            _ => break,
        }
        i += 1;
    }
    let joined = args[i..].join(" ");
    let mut text = String::with_capacity(joined.len());
    if escapes {
        let mut chars = joined.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                text.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => text.push('\n'),
                Some('t') => text.push('\t'),
                Some('r') => text.push('\r'),
                Some('a') => text.push('\x07'),
                Some('b') => text.push('\x08'),
                Some('e') => text.push('\x1b'),
                Some('\\') => text.push('\\'),
                // \c: stop output here, no newline.
                Some('c') => {
                    newline = false;
                    break;
                }
                Some(o) => {
                    text.push('\\');
                    text.push(o);
                }
                None => text.push('\\'),
            }
        }
    } else {
        text = joined;
    }
    if newline {
        text.push('\n');
    }
    CmdResult::ok(text)
}

fn uname(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let release = handset
        .state()
        .props
        .get("ro.kernel.version")
        .cloned()
        .unwrap_or_else(|| "5.15.110-android13-8-00001-gtattle".into());
    let version = "#1 SMP PREEMPT Mon Nov 20 00:00:00 UTC 2023";
    let out = match args.first().map(String::as_str) {
        None | Some("-s") => "Linux".to_string(),
        Some("-a") => format!("Linux localhost {release} {version} aarch64 Toybox"),
        Some("-r") => release,
        Some("-m") => "aarch64".into(),
        Some("-n") => "localhost".into(),
        Some("-v") => version.into(),
        Some(o) => return CmdResult::fail(format!("uname: Unknown option '{o}'\n"), 1),
    };
    CmdResult::ok(format!("{out}\n"))
}

// ---- date ----

/// Days since 1970-01-01 → (year, month 1-12, day 1-31). Proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// strftime for UTC, the specifiers toybox's date users write.
pub fn strftime(fmt: &str, secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
    let wday = (days + 4).rem_euclid(7) as usize;
    let yday = days - {
        // days since epoch of Jan 1st of `y`
        let mut lo = days - 366;
        while civil_from_days(lo + 1).0 < y {
            lo += 1;
        }
        lo + 1
    } + 1;
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('a') => out.push_str(&DAYS[wday][..3]),
            Some('A') => out.push_str(DAYS[wday]),
            Some('b' | 'h') => out.push_str(&MONTHS[m as usize - 1][..3]),
            Some('B') => out.push_str(MONTHS[m as usize - 1]),
            Some('C') => out.push_str(&format!("{:02}", y / 100)),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('D') => out.push_str(&format!("{m:02}/{d:02}/{:02}", y % 100)),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('F') => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('I') => out.push_str(&format!("{:02}", (hh + 11) % 12 + 1)),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('k') => out.push_str(&format!("{hh:2}")),
            Some('l') => out.push_str(&format!("{:2}", (hh + 11) % 12 + 1)),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('n') => out.push('\n'),
            Some('N') => out.push_str(&format!("{nanos:09}")),
            Some('p') => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            Some('R') => out.push_str(&format!("{hh:02}:{mm:02}")),
            Some('s') => out.push_str(&secs.to_string()),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('t') => out.push('\t'),
            Some('T') => out.push_str(&format!("{hh:02}:{mm:02}:{ss:02}")),
            Some('u') => out.push_str(&(if wday == 0 { 7 } else { wday }).to_string()),
            Some('w') => out.push_str(&wday.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y % 100)),
            Some('Y') => out.push_str(&y.to_string()),
            Some('z') => out.push_str("+0000"),
            Some('Z') => out.push_str("UTC"),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

fn date(args: &[String]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut fmt = "%a %b %e %H:%M:%S %Z %Y".to_string();
    for a in args {
        if let Some(f) = a.strip_prefix('+') {
            fmt = f.to_string();
        } else if a == "-u" {
        } else {
            // Setting the clock needs root.
            return CmdResult::fail("date: cannot set date: Operation not permitted\n", 1);
        }
    }
    CmdResult::ok(format!(
        "{}\n",
        strftime(&fmt, now.as_secs() as i64, now.subsec_nanos())
    ))
}

// ---- files ----

fn mode_string(st: &fs::Stat) -> String {
    let mut s = String::with_capacity(10);
    s.push(if st.is_dir { 'd' } else { '-' });
    for shift in [6u32, 3, 0] {
        let bits = (st.mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn ls(handset: &Arc<Handset>, args: &[String], cwd: &str) -> CmdResult {
    let long = args.iter().any(|a| a.starts_with('-') && a.contains('l'));
    let mut paths: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let here = cwd.to_string();
    if paths.is_empty() {
        paths.push(&here);
    }
    let st = handset.state();
    let mut res = CmdResult::default();
    let mut out = String::new();
    let line = |name: &str, s: &fs::Stat| {
        if long {
            let when = strftime("%Y-%m-%d %H:%M", s.mtime as i64, 0);
            format!(
                "{} {} shell shell {} {when} {name}\n",
                mode_string(s),
                if s.is_dir { 2 } else { 1 },
                s.size
            )
        } else {
            format!("{name}\n")
        }
    };
    let many = paths.len() > 1;
    for p in paths {
        let path = match fs::normalize(p, cwd) {
            Ok(p) => p,
            Err(e) => {
                res.err.extend(format!("ls: {p}: {e}\n").into_bytes());
                res.code = 1;
                continue;
            }
        };
        match st.fs.stat(&path) {
            Err(e) => {
                res.err.extend(format!("ls: {p}: {e}\n").into_bytes());
                res.code = 1;
            }
            Ok(s) if !s.is_dir => out.push_str(&line(p, &s)),
            Ok(_) => {
                if many {
                    out.push_str(&format!("{p}:\n"));
                }
                let entries = st.fs.list(&path).unwrap_or_default();
                if long {
                    out.push_str(&format!("total {}\n", entries.len() * 8));
                }
                for (name, s) in entries {
                    out.push_str(&line(&name, &s));
                }
            }
        }
    }
    res.out = out.into_bytes();
    res
}

fn cat(handset: &Arc<Handset>, args: &[String], input: Option<&[u8]>, cwd: &str) -> CmdResult {
    let mut res = CmdResult::default();
    if args.is_empty() {
        res.out = input.unwrap_or_default().to_vec();
        return res;
    }
    let st = handset.state();
    for a in args {
        if a == "-" {
            res.out.extend_from_slice(input.unwrap_or_default());
            continue;
        }
        match fs::normalize(a, cwd) {
            Ok(p) if p == "/dev/null" => {}
            Ok(p) => match st.fs.read(&p) {
                Ok(d) => res.out.extend_from_slice(d),
                Err(e) => {
                    res.err.extend(format!("cat: {a}: {e}\n").into_bytes());
                    res.code = 1;
                }
            },
            Err(e) => {
                res.err.extend(format!("cat: {a}: {e}\n").into_bytes());
                res.code = 1;
            }
        }
    }
    res
}

fn rm(handset: &Arc<Handset>, args: &[String], cwd: &str) -> CmdResult {
    let flags: String = args
        .iter()
        .filter(|a| a.starts_with('-'))
        .flat_map(|a| a.chars())
        .collect();
    let (recursive, force) = (
        flags.contains('r') || flags.contains('R'),
        flags.contains('f'),
    );
    let mut st = handset.state();
    let mut res = CmdResult::default();
    for a in args.iter().filter(|a| !a.starts_with('-')) {
        let r = fs::normalize(a, cwd).and_then(|p| {
            if recursive {
                st.fs.remove_tree(&p)
            } else {
                st.fs.remove(&p)
            }
        });
        match r {
            Ok(()) => {}
            Err(fs::FsError::NotFound) if force => {}
            Err(e) => {
                res.err.extend(format!("rm: {a}: {e}\n").into_bytes());
                res.code = 1;
            }
        }
    }
    res
}

fn mkdir(handset: &Arc<Handset>, args: &[String], cwd: &str) -> CmdResult {
    let parents = args.iter().any(|a| a == "-p");
    let mut st = handset.state();
    let mut res = CmdResult::default();
    for a in args.iter().filter(|a| !a.starts_with('-')) {
        let r = fs::normalize(a, cwd).and_then(|p| {
            if st.fs.stat(&p).is_ok() {
                return if parents {
                    Ok(())
                } else {
                    Err(fs::FsError::Invalid)
                };
            }
            st.fs.mkdir_all(&p)
        });
        if let Err(e) = r {
            let msg = if e == fs::FsError::Invalid {
                "File exists".to_string()
            } else {
                e.to_string()
            };
            res.err
                .extend(format!("mkdir: '{a}': {msg}\n").into_bytes());
            res.code = 1;
        }
    }
    res
}

fn grep(args: &[String], input: Option<&[u8]>) -> CmdResult {
    let mut invert = false;
    let mut icase = false;
    let mut count = false;
    let mut quiet = false;
    let mut pattern = None;
    for a in args {
        if a.starts_with('-') && a.len() > 1 && pattern.is_none() {
            for f in a[1..].chars() {
                match f {
                    'v' => invert = true,
                    'i' => icase = true,
                    'c' => count = true,
                    'q' => quiet = true,
                    _ => {}
                }
            }
        } else if pattern.is_none() {
            pattern = Some(a.clone());
        }
    }
    let Some(pattern) = pattern else {
        return CmdResult::fail("usage: grep [-civq] PATTERN\n", 2);
    };
    // Literal matching with ^/$ anchors: enough for one-liners.
    let (anchored_start, anchored_end) = (
        pattern.starts_with('^'),
        pattern.ends_with('$') && pattern.len() > 1,
    );
    let mut pat = pattern.trim_start_matches('^').to_string();
    if anchored_end {
        pat.pop();
    }
    if icase {
        pat = pat.to_lowercase();
    }
    let text = String::from_utf8_lossy(input.unwrap_or_default()).into_owned();
    let mut out = String::new();
    let mut n = 0;
    for line in text.lines() {
        let l = if icase {
            line.to_lowercase()
        } else {
            line.to_string()
        };
        let hit = match (anchored_start, anchored_end) {
            (true, true) => l == pat,
            (true, false) => l.starts_with(&pat),
            (false, true) => l.ends_with(&pat),
            (false, false) => l.contains(&pat),
        };
        if hit != invert {
            n += 1;
            if !count && !quiet {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if count {
        out = format!("{n}\n");
    }
    CmdResult {
        out: out.into_bytes(),
        code: if n > 0 { 0 } else { 1 },
        ..Default::default()
    }
}

fn head(args: &[String], input: Option<&[u8]>) -> CmdResult {
    let mut n = 10usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-n" {
            n = it.next().and_then(|v| v.parse().ok()).unwrap_or(10);
        } else if let Some(v) = a.strip_prefix("-n").or_else(|| a.strip_prefix('-')) {
            n = v.parse().unwrap_or(10);
        }
    }
    let data = input.unwrap_or_default();
    let mut out = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n').take(n) {
        out.extend_from_slice(line);
    }
    CmdResult::ok(out)
}

fn wc(args: &[String], input: Option<&[u8]>) -> CmdResult {
    let data = input.unwrap_or_default();
    let lines = data.iter().filter(|&&b| b == b'\n').count();
    let out = match args.first().map(String::as_str) {
        Some("-l") => format!("{lines}\n"),
        Some("-c") => format!("{}\n", data.len()),
        _ => {
            let words = String::from_utf8_lossy(data).split_whitespace().count();
            format!("{lines} {words} {}\n", data.len())
        }
    };
    CmdResult::ok(out)
}

// ---- properties ----

fn getprop(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let st = handset.state();
    match args {
        [] => {
            let mut out = String::new();
            for (k, v) in &st.props {
                out.push_str(&format!("[{k}]: [{v}]\n"));
            }
            CmdResult::ok(out)
        }
        [key] => CmdResult::ok(format!(
            "{}\n",
            st.props.get(key).map_or("", String::as_str)
        )),
        [key, default, ..] => CmdResult::ok(format!(
            "{}\n",
            st.props.get(key).map_or(default.as_str(), String::as_str)
        )),
    }
}

fn setprop(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let [key, value] = args else {
        return CmdResult::fail(
            "usage: setprop NAME VALUE\n\nSets an Android system property.\n",
            1,
        );
    };
    let mut st = handset.state();
    let immutable = key.starts_with("ro.") && st.props.contains_key(key);
    if immutable || key.is_empty() || key.len() > 256 || value.len() > 92 || st.props.len() > 4096 {
        return CmdResult::fail(
            format!("Failed to set property '{key}' to '{value}'.\nSee dmesg for error reason.\n"),
            1,
        );
    }
    st.props.insert(key.clone(), value.clone());
    CmdResult::default()
}

// ---- am ----

/// `Uri.toSafeString`: sms/tel-like schemes keep only `-@.`, the rest becomes `x`.
pub fn safe_uri(uri: &str) -> String {
    match uri.split_once(':') {
        Some((scheme, ssp))
            if ["tel", "sip", "sms", "smsto", "mailto", "nfc"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme)) =>
        {
            let masked: String = ssp
                .chars()
                .map(|c| if matches!(c, '-' | '@' | '.') { c } else { 'x' })
                .collect();
            format!("{scheme}:{masked}")
        }
        _ => uri.to_string(),
    }
}

#[derive(Debug, Default)]
struct Intent {
    action: Option<String>,
    data: Option<String>,
    mime: Option<String>,
    categories: Vec<String>,
    component: Option<String>,
    package: Option<String>,
    flags: u32,
    extras: BTreeMap<String, String>,
}

impl Intent {
    /// `Intent.toString()` with secure data, as `am` prints it.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.action {
            parts.push(format!("act={a}"));
        }
        if !self.categories.is_empty() {
            parts.push(format!("cat=[{}]", self.categories.join(",")));
        }
        if let Some(d) = &self.data {
            parts.push(format!("dat={}", safe_uri(d)));
        }
        if let Some(t) = &self.mime {
            parts.push(format!("typ={t}"));
        }
        if self.flags != 0 {
            parts.push(format!("flg=0x{:x}", self.flags));
        }
        if let Some(p) = &self.package {
            parts.push(format!("pkg={p}"));
        }
        if let Some(c) = &self.component {
            parts.push(format!("cmp={c}"));
        }
        if !self.extras.is_empty() {
            parts.push("(has extras)".into());
        }
        format!("Intent {{ {} }}", parts.join(" "))
    }
}

/// Parses `am start`/`broadcast` intent options; returns the intent and the `-W` flag.
fn parse_intent(args: &[String]) -> Result<(Intent, bool), String> {
    let mut intent = Intent::default();
    let mut wait = false;
    let mut i = 0;
    let need = |i: usize, n: usize| -> Result<(), String> {
        if i + n < args.len() {
            Ok(())
        } else {
            Err(format!("Error: No argument supplied for '{}'", args[i]))
        }
    };
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-a" => {
                need(i, 1)?;
                intent.action = Some(args[i + 1].clone());
                i += 2;
            }
            "-d" => {
                need(i, 1)?;
                intent.data = Some(args[i + 1].clone());
                i += 2;
            }
            "-t" => {
                need(i, 1)?;
                intent.mime = Some(args[i + 1].clone());
                i += 2;
            }
            "-c" => {
                need(i, 1)?;
                intent.categories.push(args[i + 1].clone());
                i += 2;
            }
            "-n" => {
                need(i, 1)?;
                intent.component = Some(args[i + 1].clone());
                i += 2;
            }
            "-p" => {
                need(i, 1)?;
                intent.package = Some(args[i + 1].clone());
                i += 2;
            }
            "-f" => {
                need(i, 1)?;
                let v = &args[i + 1];
                intent.flags = match v.strip_prefix("0x") {
                    Some(h) => u32::from_str_radix(h, 16),
                    None => v.parse(),
                }
                .map_err(|_| format!("Error: bad flags '{v}'"))?;
                i += 2;
            }
            "--es" | "--ez" | "--ei" | "--el" | "--ef" | "--eu" | "--ecn" | "--eia" | "--ela"
            | "--efa" | "--esa" => {
                need(i, 2)?;
                if intent.extras.len() < 256 {
                    intent
                        .extras
                        .insert(args[i + 1].clone(), args[i + 2].clone());
                }
                i += 3;
            }
            "--esn" => {
                need(i, 1)?;
                intent.extras.insert(args[i + 1].clone(), String::new());
                i += 2;
            }
            "-W" => {
                wait = true;
                i += 1;
            }
            "-S"
            | "-D"
            | "-N"
            | "--activity-clear-task"
            | "--activity-new-task"
            | "--activity-single-top"
            | "--activity-clear-top"
            | "--receiver-foreground"
            | "--include-stopped-packages" => i += 1,
            "--user" | "-R" | "-P" | "--start-profiler" | "--display" | "--windowingMode" => {
                need(i, 1)?;
                i += 2;
            }
            _ if a.starts_with('-') => return Err(format!("Error: Unknown option: {a}")),
            _ => {
                // A bare argument is the data URI (or a component if it has a slash and no scheme).
                if a.contains(':') {
                    intent.data = Some(a.to_string());
                } else {
                    intent.component = Some(a.to_string());
                }
                i += 1;
            }
        }
    }
    Ok((intent, wait))
}

/// Percent-decodes the recipient of an sms:/smsto: URI.
fn sms_recipient(data: &str) -> Option<String> {
    let (scheme, ssp) = data.split_once(':')?;
    if !["sms", "smsto", "mms", "mmsto"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return None;
    }
    let ssp = ssp.trim_start_matches("//");
    let ssp = ssp.split('?').next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(ssp)
        .decode_utf8_lossy()
        .into_owned();
    Some(decoded)
}

fn am(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let Some(verb) = args.first() else {
        return CmdResult::fail(
            "Activity manager (activity) commands:\n  help\n  start [options] INTENT\n  broadcast [options] INTENT\n  force-stop PACKAGE\n",
            1,
        );
    };
    match verb.as_str() {
        "start" | "start-activity" => {
            let (intent, wait) = match parse_intent(&args[1..]) {
                Ok(x) => x,
                Err(e) => return CmdResult::fail(format!("{e}\n"), 1),
            };
            let mut out = format!("Starting: {}\n", intent.describe());
            let sendto = matches!(
                intent.action.as_deref(),
                Some("android.intent.action.SENDTO" | "android.intent.action.SEND")
            );
            if sendto {
                match intent.data.as_deref().and_then(sms_recipient) {
                    Some(to) => {
                        let body = intent.extras.get("sms_body").cloned().unwrap_or_default();
                        handset.state().compose = Some(Compose {
                            to,
                            body,
                            send_focused: false,
                        });
                    }
                    None => {
                        return CmdResult {
                            out: out.into_bytes(),
                            err: format!(
                                "Error: Activity not started, unable to resolve {}\n",
                                intent.describe()
                            )
                            .into_bytes(),
                            code: 1,
                            ..Default::default()
                        };
                    }
                }
            }
            if wait {
                out.push_str("Status: ok\nLaunchState: COLD\nActivity: com.android.messaging/.ui.conversation.LaunchConversationActivity\nTotalTime: 412\nWaitTime: 418\nComplete\n");
            }
            CmdResult::ok(out)
        }
        "broadcast" => match parse_intent(&args[1..]) {
            Ok((mut intent, _)) => {
                // am adds FLAG_RECEIVER_INCLUDE_BACKGROUND to shell broadcasts.
                intent.flags |= 0x0040_0000;
                CmdResult::ok(format!(
                    "Broadcasting: {}\nBroadcast completed: result=0\n",
                    intent.describe()
                ))
            }
            Err(e) => CmdResult::fail(format!("{e}\n"), 1),
        },
        "force-stop" | "kill" => {
            if let Some(pkg) = args.get(1)
                && MESSAGING.contains(&pkg.as_str())
            {
                handset.state().compose = None;
            }
            CmdResult::default()
        }
        "kill-all" | "stack" | "task" => CmdResult::default(),
        other => CmdResult::fail(format!("Unknown command: {other}\n"), 255),
    }
}

// ---- pm ----

fn pm(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("list") if args.get(1).is_some_and(|a| a == "packages") => {
            let with_path = args.iter().any(|a| a == "-f");
            let third_party = args.iter().any(|a| a == "-3");
            let filter = args[2..].iter().find(|a| !a.starts_with('-'));
            let mut out = String::new();
            if !third_party {
                for (pkg, path) in PACKAGES {
                    if filter.is_some_and(|f| !pkg.contains(f.as_str())) {
                        continue;
                    }
                    if with_path {
                        out.push_str(&format!("package:{path}={pkg}\n"));
                    } else {
                        out.push_str(&format!("package:{pkg}\n"));
                    }
                }
            }
            CmdResult::ok(out)
        }
        Some("path") => match args
            .get(1)
            .and_then(|p| PACKAGES.iter().find(|(n, _)| n == p))
        {
            Some((_, path)) => CmdResult::ok(format!("package:{path}\n")),
            None => CmdResult {
                code: 1,
                ..Default::default()
            },
        },
        Some("clear") => {
            let Some(pkg) = args.iter().skip(1).find(|a| !a.starts_with('-')) else {
                return CmdResult::fail("Error: no package specified\n", 1);
            };
            if !PACKAGES.iter().any(|(n, _)| n == pkg) {
                return CmdResult::ok("Failed\n");
            }
            let mut st = handset.state();
            match pkg.as_str() {
                "com.android.providers.contacts" => st.providers.clear_contacts(),
                "com.android.providers.telephony" => st.providers.clear_sms(),
                p if MESSAGING.contains(&p) => st.compose = None,
                _ => {}
            }
            CmdResult::ok("Success\n")
        }
        Some("grant" | "revoke" | "enable" | "disable-user" | "set-home-activity") => {
            CmdResult::default()
        }
        Some(other) => CmdResult::fail(format!("Unknown command: {other}\n"), 1),
        None => CmdResult::fail(
            "Package manager (package) commands:\n  help\n  list packages [-f] [-3] [FILTER]\n  path PACKAGE\n  clear PACKAGE\n",
            1,
        ),
    }
}

// ---- input ----

fn keycode(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    Some(match name.trim_start_matches("KEYCODE_") {
        "HOME" => 3,
        "BACK" => 4,
        "DPAD_UP" => 19,
        "DPAD_DOWN" => 20,
        "DPAD_LEFT" => 21,
        "DPAD_RIGHT" => 22,
        "DPAD_CENTER" => 23,
        "TAB" => 61,
        "ENTER" => 66,
        "DEL" => 67,
        "MENU" => 82,
        "WAKEUP" => 224,
        "POWER" => 26,
        _ => return None,
    })
}

fn input_cmd(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    // Optional input source first (`input keyboard keyevent 66`).
    let mut args: &[String] = args;
    if args.first().is_some_and(|a| {
        matches!(
            a.as_str(),
            "keyboard"
                | "touchscreen"
                | "touchpad"
                | "mouse"
                | "dpad"
                | "gamepad"
                | "stylus"
                | "trackball"
                | "joystick"
                | "touchnavigation"
        )
    }) {
        args = &args[1..];
    }
    let mut res = CmdResult::default();
    match args.first().map(String::as_str) {
        Some("keyevent") => {
            let mut st = handset.state();
            for k in args[1..].iter().filter(|a| !a.starts_with("--")) {
                let Some(code) = keycode(k) else {
                    res.err
                        .extend(format!("Error: Unknown keycode: {k}\n").into_bytes());
                    res.code = 1;
                    break;
                };
                match (code, st.compose.as_mut()) {
                    (22 | 61, Some(c)) => c.send_focused = true,
                    (21, Some(c)) => c.send_focused = false,
                    (66 | 23, Some(c)) if c.send_focused && !c.body.is_empty() => {
                        let (to, body) = (c.to.clone(), c.body.clone());
                        st.compose = None;
                        if st.providers.store_sent_sms(&to, &body, now_ms()).is_ok() {
                            res.events.push(HandsetEvent::SmsSent { to, body });
                        }
                    }
                    // The send button is disabled while the message is empty.
                    (66 | 23, Some(c)) if c.send_focused => {}
                    (66, Some(c)) => c.body.push('\n'),
                    (67, Some(c)) if !c.send_focused => {
                        c.body.pop();
                    }
                    (3 | 4, Some(_)) => st.compose = None,
                    _ => {}
                }
            }
        }
        Some("text") => {
            let Some(text) = args.get(1) else {
                return CmdResult::fail("Error: text requires an argument\n", 1);
            };
            let mut st = handset.state();
            if let Some(c) = st.compose.as_mut()
                && !c.send_focused
                && c.body.len() + text.len() <= 64 * 1024
            {
                // `input text` turns %s into spaces.
                c.body.push_str(&text.replace("%s", " "));
            }
        }
        Some(
            "tap" | "swipe" | "draganddrop" | "press" | "roll" | "motionevent" | "keycombination",
        ) => {}
        _ => {
            return CmdResult::fail("Usage: input [<source>] <command> [<arg>...]\n", 1);
        }
    }
    res
}

// ---- service ----

fn service_cmd(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("list") => {
            let mut out = format!("Found {} services:\n", service::SERVICES.len());
            for (i, (name, iface)) in service::SERVICES.iter().enumerate() {
                out.push_str(&format!("{i}\t{name}: [{iface}]\n"));
            }
            CmdResult::ok(out)
        }
        Some("check") => {
            let Some(name) = args.get(1) else {
                return CmdResult::fail("service: No service specified for check\n", 10);
            };
            let found = service::SERVICES.iter().any(|(n, _)| n == name);
            CmdResult::ok(format!(
                "Service {name}: {}\n",
                if found { "found" } else { "not found" }
            ))
        }
        Some("call") => {
            let (Some(name), Some(code)) = (args.get(1), args.get(2)) else {
                return CmdResult::fail("service: No service specified for call\n", 10);
            };
            if !service::SERVICES.iter().any(|(n, _)| n == name) {
                return CmdResult::fail(format!("service: Service {name} does not exist\n"), 10);
            }
            let Ok(code) = code.parse::<u32>() else {
                return CmdResult::fail("service: No code specified for call\n", 10);
            };
            let mut i = 3;
            while i < args.len() {
                let needs_value = match args[i].as_str() {
                    "i32" | "i64" | "f" | "d" | "s16" => true,
                    "null" => false,
                    t => return CmdResult::fail(format!("service: unknown option {t}\n"), 10),
                };
                if needs_value {
                    let Some(v) = args.get(i + 1) else {
                        let what = if args[i] == "s16" {
                            "string"
                        } else {
                            "integer"
                        };
                        return CmdResult::fail(
                            format!("service: no {what} supplied for '{}'\n", args[i]),
                            10,
                        );
                    };
                    let ok = match args[i].as_str() {
                        "i32" => v.parse::<i32>().is_ok(),
                        "i64" => v.parse::<i64>().is_ok(),
                        "f" | "d" => v.parse::<f64>().is_ok(),
                        _ => true,
                    };
                    if !ok {
                        return CmdResult::fail(
                            format!("service: bad value for '{}'\n", args[i]),
                            10,
                        );
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            let reply = if name == "iphonesubinfo" {
                let sdk = handset.state().sdk();
                match service::iphonesubinfo_method(sdk, code) {
                    None => Vec::new(),
                    Some(service::SubInfo::DeviceSvn) => service::string_reply(Some("01")),
                    Some(m) => {
                        let value = m
                            .identifier_kind()
                            .and_then(|k| handset.profile().identifiers.get(k).map(String::as_str))
                            .or(if m == service::SubInfo::Imei {
                                handset
                                    .profile()
                                    .identifiers
                                    .get(kinds::IMEI)
                                    .map(String::as_str)
                            } else {
                                None
                            });
                        service::string_reply(value)
                    }
                }
            } else {
                // Other services: a bare "no exception" reply.
                0i32.to_le_bytes().to_vec()
            };
            CmdResult::ok(service::format_result(&reply))
        }
        _ => CmdResult::fail(
            "usage: service [-h|-?]\n       service list\n       service check SERVICE\n       service call SERVICE CODE [i32 N | i64 N | f N | d N | s16 STR | null] ...\n",
            10,
        ),
    }
}

fn dumpsys(args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("battery") => CmdResult::ok(
            "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  Wireless powered: false\n  Max charging current: 500000\n  status: 2\n  health: 2\n  present: true\n  level: 100\n  scale: 100\n  voltage: 4300\n  temperature: 250\n  technology: Li-ion\n",
        ),
        Some("window") | Some("activity") => CmdResult::ok(""),
        Some(s) if !s.starts_with('-') => CmdResult::fail(format!("Can't find service: {s}\n"), 0),
        _ => CmdResult::ok(
            "Currently running services:\n  activity\n  battery\n  iphonesubinfo\n  package\n  phone\n  settings\n  window\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{sh, test_profile};
    use super::*;

    #[test]
    fn strftime_known_instants() {
        // 2026-11-25 07:00:00 UTC was a Wednesday.
        let t = 1_795_590_000;
        assert_eq!(
            strftime("%a %b %e %H:%M:%S %Z %Y", t, 0),
            "Wed Nov 25 07:00:00 UTC 2026"
        );
        assert_eq!(
            strftime("%Y-%m-%d %s %N %j", t, 5),
            "2026-11-25 1795590000 000000005 329"
        );
        assert_eq!(strftime("%a %e", 0, 0), "Thu  1");
        assert_eq!(strftime("%F", 951_782_400, 0), "2000-02-29");
    }

    #[test]
    fn safe_uri_masks_numbers() {
        assert_eq!(safe_uri("sms:+6598765432"), "sms:xxxxxxxxxxx");
        assert_eq!(safe_uri("smsto:a.b-c@d"), "smsto:x.x-x@x");
        assert_eq!(safe_uri("http://x/y"), "http://x/y");
    }

    #[tokio::test]
    async fn sms_compose_and_send() {
        let h = Handset::new(test_profile(), None);
        let (out, _, code) = sh(&h, "am start -a android.intent.action.SENDTO -d sms:+6598765432 --es sms_body 'hello canary' --ez exit_on_sent true").await;
        assert_eq!(code, 0);
        assert_eq!(
            out,
            "Starting: Intent { act=android.intent.action.SENDTO dat=sms:xxxxxxxxxxx (has extras) }\n"
        );
        sh(&h, "input keyevent 66").await; // ENTER in the text field: a newline, not a send
        assert!(h.events().is_empty());
        sh(
            &h,
            "input keyevent 67; input keyevent 22 && input keyevent 66",
        )
        .await;
        assert_eq!(
            h.events(),
            vec![HandsetEvent::SmsSent {
                to: "+6598765432".into(),
                body: "hello canary".into()
            }]
        );
        let (out, _, _) = sh(
            &h,
            "content query --uri content://sms/sent --projection address:body",
        )
        .await;
        assert_eq!(out, "Row: 0 address=+6598765432, body=hello canary\n");
        assert!(h.state().compose.is_none());
        sh(&h, "pm clear com.android.providers.telephony").await;
        assert_eq!(
            sh(&h, "content query --uri content://sms").await.0,
            "No result found.\n"
        );
    }

    #[tokio::test]
    async fn iphonesubinfo_and_props() {
        let h = Handset::new(test_profile(), None);
        let (out, _, code) = sh(&h, "service call iphonesubinfo 1 s16 com.android.shell").await;
        assert_eq!(code, 0);
        assert!(out.starts_with("Result: Parcel(\n  0x00000000: 00000000 0000000f 00350033 00380039 '........3.5.9.8.'\n"), "{out}");
        let (out, _, _) = sh(
            &h,
            "service call iphonesubinfo 15 s16 com.android.shell s16 null",
        )
        .await;
        assert!(out.contains("'........+.6.5.9.'"), "{out}");
        assert_eq!(
            sh(&h, "service call iphonesubinfo 500").await.0,
            "Result: Parcel(NULL)\n"
        );
        assert_eq!(sh(&h, "service call nosuch 1").await.2, 10);
        assert_eq!(
            sh(&h, "getprop ro.product.model").await.0,
            "Virtual Phone 1\n"
        );
        assert_eq!(sh(&h, "getprop no.such").await.0, "\n");
        assert_eq!(sh(&h, "setprop ro.product.model x").await.2, 1);
        assert_eq!(sh(&h, "setprop debug.x 1; getprop debug.x").await.0, "1\n");
        assert_eq!(
            sh(&h, "settings get secure android_id").await.0,
            "9774d56d682e549c\n"
        );
        sh(&h, "settings put secure user_setup_complete 1").await;
        assert_eq!(h.events(), vec![HandsetEvent::SetupComplete]);
        assert_eq!(
            sh(&h, "pm clear com.android.providers.contacts").await.0,
            "Success\n"
        );
        assert_eq!(
            sh(&h, "pm path com.android.shell").await.0,
            "package:/system/priv-app/Shell/Shell.apk\n"
        );
        assert!(
            sh(&h, "id")
                .await
                .0
                .starts_with("uid=2000(shell) gid=2000(shell)")
        );
        let date = sh(&h, "date").await.0;
        let fields: Vec<&str> = date.split_whitespace().collect();
        assert_eq!(fields.len(), 6, "{date}");
        assert_eq!(fields[4], "UTC");
        assert!(fields[5].parse::<u32>().is_ok_and(|y| y >= 2024), "{date}");
        // `\\n` stays a backslash + n; `\t` becomes a tab
        assert_eq!(sh(&h, r"echo -e 'a\\nb\tc'").await.0, "a\\nb\tc\n");
        assert_eq!(sh(&h, "echo -n a; echo b").await.0, "ab\n");
    }
}
