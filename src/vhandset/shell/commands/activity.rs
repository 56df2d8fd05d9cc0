//! `am` (and `cmd activity`): `start` / `broadcast` with intent options, printed the way
//! `Intent.toString()` shows them (`Starting: Intent { … }`, data masked by `Uri.toSafeString` for sms:
//! and tel:-like schemes), `force-stop`. A SENDTO/SEND intent to an sms: URI opens the messaging app's
//! compose screen (`shell::Compose`), which `input` then drives.
//!
//! Must not touch: the keys pressed on the compose screen (`input`), the SMS tables (`providers`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CmdResult;
use super::package::MESSAGING;
use crate::vhandset::shell::{Compose, Handset};

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

pub(super) fn am(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_uri_masks_numbers() {
        assert_eq!(safe_uri("sms:+6598765432"), "sms:xxxxxxxxxxx");
        assert_eq!(safe_uri("smsto:a.b-c@d"), "smsto:x.x-x@x");
        assert_eq!(safe_uri("http://x/y"), "http://x/y");
    }
}
