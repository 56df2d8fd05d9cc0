//! `am` (and `cmd activity`): `start` / `broadcast` with intent options, printed the way
//! `Intent.toString()` shows them (`Starting: Intent { … }`, data masked by `Uri.toSafeString` for sms:
//! and tel:-like schemes), `force-stop`; and `monkey -p PKG`, which launches an app (its own output is
//! not modelled). Intents open screens of `shell::ui`: SENDTO/SEND to an sms: URI the messaging app's
//! compose screen, DIAL/VIEW to a tel: URI the dial pad with the number filled in (the dialer ignores
//! codes that arrive this way), INSERT of a contact the contacts editor (`name`/`phone` extras), a
//! component or a launcher intent the app's first screen.
//!
//! An Intent to an emulated third-party app's component (PCAPdroid's CaptureCtrl) goes to that app
//! (`vhandset::apps`) with its extras typed as `am` puts them in the Bundle; `am` prints what the
//! launch result says (`Error type 3` for a class that does not exist, the delivered-to-top warning).
//!
//! Must not touch: the keys and taps on those screens (`input`, `shell::ui`), the SMS tables
//! (`providers`), what an app does with its Intent (`apps`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::apps::{self, Extra};
use crate::vhandset::shell::ui::{App, Dialer, Editor, Screen};
use crate::vhandset::shell::{Compose, Handset};

/// `Uri.toSafeString`: sms/tel-like schemes keep only `-@.` of the (decoded) scheme-specific part, the
/// rest becomes `x`.
pub fn safe_uri(uri: &str) -> String {
    match uri.split_once(':') {
        Some((scheme, ssp))
            if ["tel", "sip", "sms", "smsto", "mailto", "nfc"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme)) =>
        {
            // getSchemeSpecificPart(): without the fragment, percent-decoded.
            let ssp = ssp.split('#').next().unwrap_or("");
            let ssp = percent_encoding::percent_decode_str(ssp).decode_utf8_lossy();
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
    /// The same extras with the type each option gives them (what an app reads).
    typed: apps::Bundle,
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
            "-e" | "--es" | "--ez" | "--ei" | "--el" | "--ef" | "--eu" | "--ecn" | "--eia"
            | "--ela" | "--efa" | "--esa" => {
                need(i, 2)?;
                let value = typed_extra(a, &args[i + 2])?;
                if intent.extras.len() < 256 {
                    intent
                        .extras
                        .insert(args[i + 1].clone(), args[i + 2].clone());
                    intent.typed.0.insert(args[i + 1].clone(), value);
                }
                i += 3;
            }
            "--esn" => {
                need(i, 1)?;
                if intent.extras.len() < 256 {
                    intent.extras.insert(args[i + 1].clone(), String::new());
                    intent.typed.0.insert(args[i + 1].clone(), Extra::Null);
                }
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

/// The Bundle value of one extra option (Intent.parseCommandArgs, frameworks/base
/// core/java/android/content/Intent.java, Android 7+): `--ei` is `Integer.parseInt`, `--ez` takes
/// `true`/`t`/`false`/`f` or a number (`Integer.decode`, non-zero is true); a value that does not
/// parse is the exception `am` reports.
fn typed_extra(option: &str, value: &str) -> Result<Extra, String> {
    let exception = |what: String| format!("\nException occurred while executing 'start':\n{what}");
    Ok(match option {
        "-e" | "--es" => Extra::Str(value.to_string()),
        "--ei" => Extra::Int(apps::java_parse_int(value).ok_or_else(|| {
            exception(format!(
                "java.lang.NumberFormatException: For input string: \"{value}\""
            ))
        })?),
        "--ez" => match value.to_ascii_lowercase().as_str() {
            "true" | "t" => Extra::Bool(true),
            "false" | "f" => Extra::Bool(false),
            v => Extra::Bool(
                java_decode(v).ok_or_else(|| {
                    exception(format!(
                        "java.lang.IllegalArgumentException: Invalid boolean value: {v}"
                    ))
                })? != 0,
            ),
        },
        _ => Extra::Other,
    })
}

/// `Integer.decode`: decimal, `0x`/`#` hex or leading-`0` octal, with an optional sign.
fn java_decode(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix('#')) {
        i64::from_str_radix(h, 16).ok()?
    } else if rest.len() > 1 && rest.starts_with('0') {
        i64::from_str_radix(&rest[1..], 8).ok()?
    } else {
        rest.parse::<i64>().ok()?
    };
    let v = if neg { -v } else { v };
    i32::try_from(v).ok().map(i64::from)
}

/// `ComponentName.unflattenFromString`: `pkg/cls`, a class starting with `.` is in the package.
fn unflatten(component: &str) -> Option<(String, String)> {
    let (pkg, cls) = component.split_once('/')?;
    let cls = if cls.starts_with('.') {
        format!("{pkg}{cls}")
    } else {
        cls.to_string()
    };
    Some((pkg.to_string(), cls))
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

/// The number of a tel: URI as the dialer fills it in: `Uri.getSchemeSpecificPart()` (percent-decoded;
/// a raw `#` starts the fragment, so `tel:*#06#` is just `*`).
fn tel_number(data: &str) -> Option<String> {
    let (scheme, ssp) = data.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("tel") {
        return None;
    }
    let ssp = ssp.split('#').next().unwrap_or("");
    Some(
        percent_encoding::percent_decode_str(ssp)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The screen an intent opens, if the handset models one.
fn screen_for(intent: &Intent) -> Option<Screen> {
    let action = intent.action.as_deref().unwrap_or("");
    let data = intent.data.as_deref();
    match action {
        "android.intent.action.SENDTO" | "android.intent.action.SEND" => {
            let to = data.and_then(sms_recipient)?;
            let body = intent.extras.get("sms_body").cloned().unwrap_or_default();
            return Some(Screen::Compose(Compose {
                to,
                body,
                send_focused: false,
            }));
        }
        "android.intent.action.DIAL" | "android.intent.action.VIEW"
            if data.is_some_and(|d| tel_number(d).is_some()) =>
        {
            let digits = data.and_then(tel_number).unwrap_or_default();
            return Some(Screen::Dialer(Dialer {
                filled_by_intent: !digits.is_empty(),
                digits,
                imei_dialog: false,
            }));
        }
        "android.intent.action.DIAL" => return Some(Screen::Dialer(Dialer::default())),
        "android.intent.action.INSERT"
            if intent.mime.as_deref().is_some_and(|t| {
                t == "vnd.android.cursor.dir/contact" || t == "vnd.android.cursor.dir/raw_contact"
            }) || data.is_some_and(|d| d.starts_with("content://com.android.contacts")) =>
        {
            let get = |k: &str| intent.extras.get(k).cloned().unwrap_or_default();
            return Some(Screen::ContactEditor(Editor::new(
                &get("name"),
                &get("phone"),
            )));
        }
        _ => {}
    }
    let package = intent
        .component
        .as_deref()
        .map(|c| c.split('/').next().unwrap_or(c))
        .or(intent.package.as_deref())?;
    let mut ui = crate::vhandset::shell::ui::Ui::default();
    ui.launch(App::from_package(package)?);
    Some(ui.screen)
}

/// `monkey -p PKG …`: launches the package's launcher activity.
pub(super) fn monkey(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    let package = args
        .windows(2)
        .find(|w| w[0] == "-p")
        .map(|w| w[1].as_str());
    if let Some(app) = package.and_then(App::from_package) {
        handset.state().ui.launch(app);
    }
    CmdResult::default()
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
            // An emulated app's component: the app decides; `am` prints the launch result (to
            // stderr, or to stdout with -W).
            if let Some((pkg, cls)) = intent.component.as_deref().and_then(unflatten)
                && let Some(launch) =
                    apps::pcapdroid::start_activity(handset, &pkg, &cls, &intent.typed)
            {
                let mut err = String::new();
                let mut report = |line: String| {
                    if wait {
                        out.push_str(&line);
                    } else {
                        err.push_str(&line);
                    }
                };
                match launch {
                    apps::pcapdroid::Launch::Started { activity } => {
                        if wait {
                            out.push_str(&format!("Status: ok\nLaunchState: COLD\nActivity: {activity}\nTotalTime: 388\nWaitTime: 395\nComplete\n"));
                        }
                    }
                    apps::pcapdroid::Launch::DeliveredToTop { .. } => report(
                        "Warning: Activity not started, intent has been delivered to currently running top-most instance.\n".into(),
                    ),
                    apps::pcapdroid::Launch::ClassNotFound { component } => report(format!(
                        "Error type 3\nError: Activity class {component} does not exist.\n"
                    )),
                }
                return CmdResult {
                    out: out.into_bytes(),
                    err: err.into_bytes(),
                    ..Default::default()
                };
            }
            let sendto = matches!(
                intent.action.as_deref(),
                Some("android.intent.action.SENDTO" | "android.intent.action.SEND")
            );
            let screen = screen_for(&intent);
            let activity = match &screen {
                Some(Screen::Compose(_)) => {
                    "com.android.messaging/.ui.conversation.LaunchConversationActivity".to_string()
                }
                Some(Screen::Dialer(_)) => handset.profile().generation.ui.dialer_activity.into(),
                Some(Screen::ContactEditor(_)) => {
                    "com.android.contacts/.activities.ContactEditorActivity".into()
                }
                Some(Screen::ConversationList) => {
                    "com.android.messaging/.ui.conversationlist.ConversationListActivity".into()
                }
                Some(Screen::Contacts) => "com.android.contacts/.activities.PeopleActivity".into(),
                Some(Screen::Home | Screen::Pcapdroid(_)) | None => {
                    intent.component.clone().unwrap_or_default()
                }
            };
            match screen {
                Some(s) => handset.state().ui.open(s),
                None if sendto => {
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
                None => {}
            }
            if wait {
                out.push_str(&format!("Status: ok\nLaunchState: COLD\nActivity: {activity}\nTotalTime: 412\nWaitTime: 418\nComplete\n"));
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
            if let Some(app) = args.get(1).and_then(|p| App::from_package(p)) {
                handset.state().ui.close_app(app);
            }
            if args.get(1).is_some_and(|p| p == apps::pcapdroid::PACKAGE) {
                apps::pcapdroid::force_stop(handset);
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
        assert_eq!(safe_uri("tel:*%2306%23"), "tel:xxxxx");
        assert_eq!(tel_number("tel:*%2306%23").as_deref(), Some("*#06#"));
        assert_eq!(tel_number("tel:*#06#").as_deref(), Some("*"));
    }
}
