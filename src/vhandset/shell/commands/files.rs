//! toybox's file tools on the handset's in-memory file system: `ls` (`-l` with toybox's mode string and
//! `%Y-%m-%d %H:%M` times), `cat` (files, `-`, piped input), `rm` (`-r`, `-f`) and `mkdir` (`-p`), with
//! toybox's error lines (`ls: PATH: No such file or directory`).
//!
//! Must not touch: the file system's rules and limits (`shell::fs`), the host's files.

use std::sync::Arc;

use super::CmdResult;
use super::date::strftime;
use crate::vhandset::shell::{Handset, fs};

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

pub(super) fn ls(handset: &Arc<Handset>, args: &[String], cwd: &str) -> CmdResult {
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

pub(super) fn cat(
    handset: &Arc<Handset>,
    args: &[String],
    input: Option<&[u8]>,
    cwd: &str,
) -> CmdResult {
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

pub(super) fn rm(handset: &Arc<Handset>, args: &[String], cwd: &str) -> CmdResult {
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

pub(super) fn mkdir(handset: &Arc<Handset>, args: &[String], cwd: &str) -> CmdResult {
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
