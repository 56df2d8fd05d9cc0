//! The text tools of toybox that scripts use in one-liners: `echo` (with `-n`/`-e`/`-E` and toybox's
//! escapes) and the filters a pipe feeds — `grep` (literal, `^`/`$` anchors, `-civq`), `head`, `wc`.
//!
//! Must not touch: the handset's state (these only see their arguments and their input), the streams.

use super::CmdResult;

pub(super) fn echo(args: &[String]) -> CmdResult {
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

pub(super) fn grep(args: &[String], input: Option<&[u8]>) -> CmdResult {
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

pub(super) fn head(args: &[String], input: Option<&[u8]>) -> CmdResult {
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

pub(super) fn wc(args: &[String], input: Option<&[u8]>) -> CmdResult {
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
