//! The shell's commands that finish with an output (everything but `sleep`, `exit`, `tcpdump` and
//! stdin-reading `cat`, which the executor runs itself): `run` dispatches a command line to its family,
//! and `CmdResult` is what every family returns. Output formats follow Android's own tools, one file per
//! family: toybox's text tools (`text`: echo, grep, head, wc), identity (`identity`: id, whoami, uname),
//! `date`, file tools (`files`: ls, cat, rm, mkdir), `getprop`/`setprop` (`props`), `am` (`activity`),
//! `pm` (`package`), `appops` (`appops`), `input` and `uiautomator` (`input`: the screens of `shell::ui`), `service`
//! (`service`: binder replies) and `dumpsys`/`wm` (`dumpsys`); `settings` and `content` live with their
//! tables in `shell::providers`. What differs between Android releases is read from the profile's
//! `Generation`, never decided here by SDK numbers.
//!
//! Must not touch: the streams (commands return bytes), the network (events are returned).

mod activity;
mod appops;
mod date;
mod dumpsys;
mod files;
mod identity;
mod input;
mod package;
mod props;
pub mod service;
mod text;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::providers::{self, Output};
use super::{Handset, now_ms};
use crate::vhandset::HandsetEvent;

pub use activity::safe_uri;
pub use date::strftime;
pub(crate) use package::installed_packages;

/// What a command produced.
#[derive(Debug, Default)]
pub struct CmdResult {
    pub out: Vec<u8>,
    pub err: Vec<u8>,
    pub code: i32,
    pub events: Vec<HandsetEvent>,
    /// The command wrote its stderr before its stdout (what matters where the two are merged: a legacy
    /// shell, `exec:`).
    pub err_first: bool,
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
            err_first: false,
        }
    }
}

/// Runs a finished-output command. `input` is a pipe's or a `<` redirection's bytes.
pub fn run(
    handset: &Arc<Handset>,
    args: &[String],
    input: Option<&[u8]>,
    vars: &BTreeMap<String, String>,
    uid: u32,
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
        "echo" => text::echo(rest),
        "id" => identity::id(uid),
        "whoami" => identity::whoami(uid),
        "pwd" => CmdResult::ok(format!("{cwd}\n")),
        "uname" => identity::uname(handset, rest),
        "date" => date::date(rest),
        "env" | "printenv" => {
            let mut out = String::new();
            for (k, v) in vars {
                out.push_str(&format!("{k}={v}\n"));
            }
            CmdResult::ok(out)
        }
        "ls" => files::ls(handset, rest, cwd),
        "cat" => files::cat(handset, rest, input, cwd),
        "rm" => files::rm(handset, rest, cwd),
        "mkdir" => files::mkdir(handset, rest, cwd),
        "grep" => text::grep(rest, input),
        "head" => text::head(rest, input),
        "wc" => text::wc(rest, input),
        "getprop" => props::getprop(handset, rest),
        "setprop" => props::setprop(handset, rest),
        "settings" => providers::settings_cmd(&mut handset.state().settings, rest).into(),
        "content" => providers::content_cmd(
            &mut handset.state().providers,
            rest,
            now_ms(),
            &handset.profile().generation.content,
        )
        .into(),
        "am" => activity::am(handset, rest),
        "pm" => package::pm(handset, rest),
        "appops" => appops::appops(handset, rest),
        "cmd" => match rest.first().map(String::as_str) {
            Some("package") => package::pm(handset, &rest[1..]),
            Some("appops") => appops::appops(handset, &rest[1..]),
            Some("activity") => activity::am(handset, &rest[1..]),
            Some("settings") => {
                providers::settings_cmd(&mut handset.state().settings, &rest[1..]).into()
            }
            Some(s) => CmdResult::fail(format!("cmd: Can't find service: {s}\n"), 20),
            None => CmdResult::fail(
                "cmd: No service specified; use -l to list all running services.\n",
                20,
            ),
        },
        "input" => input::input_cmd(handset, rest),
        "uiautomator" => input::uiautomator(handset, rest, cwd),
        "service" => service::command(handset, rest, uid),
        "wm" => dumpsys::wm(rest),
        "dumpsys" => dumpsys::dumpsys(handset, rest),
        "logcat" => CmdResult::default(),
        "sh" | "mksh" => CmdResult::fail(
            "/system/bin/sh: only `sh -c COMMAND` without redirections is supported here\n",
            2,
        ),
        "monkey" => activity::monkey(handset, rest),
        "svc" | "sync" => CmdResult::default(),
        "which" => {
            let mut out = String::new();
            let mut code = 0;
            let has_su = handset.state().has_su();
            for a in rest {
                if a == "su" && has_su {
                    out.push_str("/system/xbin/su\n");
                } else if is_known(a) {
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

/// Whether the handset has a program of that name (what `which` and `su` find).
pub(crate) fn is_known(name: &str) -> bool {
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
            | "appops"
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
            | "uiautomator"
    )
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhandset::shell::tests::{sh, test_profile};

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
        assert!(h.state().compose().is_none());
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
